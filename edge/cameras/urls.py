"""Camera URLs split into what the probes need, with the credentials kept apart.

Cameras are often configured as ``rtsp://user:pass@host/path``. The probes take the
credentials out of the URL at start-up, and everything that is logged or published uses
:attr:`Endpoint.url` or :attr:`Endpoint.display`, which never carry them.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from thanthien.edge.cameras.auth import Credentials

DEFAULT_PORTS = {"rtsp": 554, "http": 80}


@dataclass(frozen=True)
class Endpoint:
    scheme: str
    host: str
    port: int
    url: str
    """The URL without credentials (what goes in the RTSP request line and Digest uri)."""
    target: str
    """Path and query, as an HTTP request line wants it."""
    credentials: Credentials | None

    @property
    def display(self) -> str:
        """Short form for reasons and logs."""
        return f"{self.host}:{self.port}"


def parse_endpoint(url: str, schemes: tuple[str, ...], credentials: Credentials | None = None
                   ) -> Endpoint:
    """Split ``url``; explicit ``credentials`` win over any in the URL. Raises ValueError
    with a message that does not repeat the URL (it may hold a password)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in schemes:
        raise ValueError(f"scheme must be one of {', '.join(schemes)} (got {scheme or 'none'!r})")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        raise ValueError("invalid port") from None
    if not host:
        raise ValueError("no host")
    if credentials is None and parts.username is not None:
        credentials = Credentials(unquote(parts.username), unquote(parts.password or ""))
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    clean = urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Endpoint(scheme, host, port or DEFAULT_PORTS[scheme], clean, target, credentials)


def with_credentials(endpoint: Endpoint) -> str:
    """The URL with credentials inlined, for tools such as ffmpeg that take them that way."""
    if endpoint.credentials is None:
        return endpoint.url
    parts = urlsplit(endpoint.url)
    user = quote(endpoint.credentials.username, safe="")
    password = quote(endpoint.credentials.password, safe="")
    return urlunsplit((parts.scheme, f"{user}:{password}@{parts.netloc}", parts.path, parts.query, ""))


def scrub(text: str, credentials: Credentials | None) -> str:
    """``text`` with the password (plain and URL-quoted) replaced by ``***``."""
    if credentials is None or not credentials.password:
        return text
    for secret in {credentials.password, quote(credentials.password, safe="")}:
        text = text.replace(secret, "***")
    return text
