"""The speaker node's media cache: playback files fetched from the hub over HTTP with the
node's bearer token, verified against their SHA-256 and stored content-addressed
(``<cache>/<sha[:2]>/<sha>.wav``, the hub library's own layout).

A download goes to a private temporary file and is renamed into place only when its hash
matches, so the cache never holds a partial or wrong file under a valid name. Files are
verified again when loaded for playback (an SD card can rot); a corrupt one is deleted so
the prefetcher fetches it anew. What no plan references any more is evicted.

The bearer token is sent only to the configured hub (same scheme, host and port), never to
another host a plan item's URL might name.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import urllib.error
import urllib.request
import wave
from collections.abc import Iterable
from http.client import HTTPResponse
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from thanthien.edge.audio import AudioClip

log = logging.getLogger(__name__)

CHUNK = 64 * 1024


class MediaFetchError(Exception):
    """A file that could not be fetched; ``reason`` is one line, ``retry`` says whether
    trying again later may help (network down, hub busy) or not (bad token, wrong file)."""

    def __init__(self, reason: str, *, retry: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry = retry


class MediaCorrupt(Exception):
    """A cached file whose content no longer matches its name; it has been deleted."""


def is_sha256(value: str) -> bool:
    return len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


class MediaCache:
    """Thread-safe for distinct files; two fetches of one file both end well (the second
    rename replaces an identical file)."""

    def __init__(self, directory: Path, *, base_url: str | None = None, token: str | None = None,
                 timeout_s: float = 30.0, max_bytes: int = 1024 * 1024 * 1024) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._partial = self.directory / ".partial"
        self._partial.mkdir(exist_ok=True)
        self.base_url = base_url.rstrip("/") + "/" if base_url else None
        self._token = token
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        for stale in self._partial.iterdir():  # left by a crash during a download
            stale.unlink(missing_ok=True)

    # -- lookup ---------------------------------------------------------------------------

    def path_for(self, sha256: str) -> Path:
        if not is_sha256(sha256):
            raise ValueError(f"not a sha256: {sha256!r}")
        return self.directory / sha256[:2] / f"{sha256}.wav"

    def has(self, sha256: str) -> bool:
        return self.path_for(sha256).is_file()

    def cached(self) -> list[str]:
        return sorted(p.stem for p in self.directory.glob("??/*.wav") if is_sha256(p.stem))

    # -- filling --------------------------------------------------------------------------

    def resolve(self, sha256: str, url: str | None) -> str:
        """The absolute URL to fetch ``sha256`` from: ``url`` relative to the hub's base URL,
        or the hub's ``media/<sha>`` when the plan gave none."""
        if not url:
            if self.base_url is None:
                raise MediaFetchError("no media URL and no hub base URL configured", retry=False)
            return urljoin(self.base_url, f"media/{sha256}")
        if self.base_url is None:
            if not urlsplit(url).scheme:
                raise MediaFetchError(f"relative media URL {url!r} without a hub base URL", retry=False)
            return url
        return urljoin(self.base_url, url)

    def fetch(self, sha256: str, url: str | None = None) -> Path:
        """The cached file, downloading it first if needed. Raises :class:`MediaFetchError`."""
        target = self.path_for(sha256)
        if target.is_file():
            return target
        full = self.resolve(sha256, url)
        if urlsplit(full).scheme not in ("http", "https"):
            raise MediaFetchError(f"unsupported media URL {full!r}", retry=False)
        headers = {"Accept": "audio/wav, application/octet-stream"}
        if self._token:
            if self.base_url is not None and _origin(full) != _origin(self.base_url):
                raise MediaFetchError(f"media URL {full!r} is not on the hub; token not sent",
                                      retry=False)
            headers["Authorization"] = f"Bearer {self._token}"
        request = urllib.request.Request(full, headers=headers, method="GET")
        fd, tmp_name = tempfile.mkstemp(dir=self._partial, suffix=".part")
        tmp = Path(tmp_name)
        try:
            digest = hashlib.sha256()
            size = 0
            with os.fdopen(fd, "wb") as out, self._open(request, full) as resp:
                while block := resp.read(CHUNK):
                    size += len(block)
                    if size > self.max_bytes:
                        raise MediaFetchError(f"{full} is larger than {self.max_bytes} bytes",
                                              retry=False)
                    digest.update(block)
                    out.write(block)
                out.flush()
                os.fsync(out.fileno())
            got = digest.hexdigest()
            if got != sha256:
                raise MediaFetchError(
                    f"hash mismatch for {sha256[:12]}: the hub sent {size} bytes hashing to "
                    f"{got[:12]}", retry=False,
                )
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        log.info("cached media %s (%d bytes) from %s", sha256[:12], size, full)
        return target

    def _open(self, request: urllib.request.Request, url: str) -> HTTPResponse:
        try:
            return urllib.request.urlopen(request, timeout=self.timeout_s)
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code in (401, 403):
                raise MediaFetchError(f"hub refused the node token for {url} (HTTP {exc.code})",
                                      retry=False) from None
            raise MediaFetchError(f"HTTP {exc.code} for {url}", retry=exc.code >= 500 or exc.code == 404) \
                from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise MediaFetchError(f"cannot reach {url}: {reason}") from None

    def put(self, data: bytes) -> str:
        """Store bytes this node produced itself (a test tone); returns their sha256."""
        sha = hashlib.sha256(data).hexdigest()
        target = self.path_for(sha)
        if not target.is_file():
            fd, tmp_name = tempfile.mkstemp(dir=self._partial, suffix=".part")
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp_name, target)
        return sha

    # -- using ----------------------------------------------------------------------------

    def load(self, sha256: str) -> AudioClip:
        """The verified clip. Raises :class:`MediaCorrupt` (and deletes the file) when the
        content does not match, ``FileNotFoundError`` when it is not cached."""
        path = self.path_for(sha256)
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != sha256:
            path.unlink(missing_ok=True)
            log.error("cached media %s was corrupt; deleted", sha256[:12])
            raise MediaCorrupt(f"cached media {sha256[:12]} was corrupt")
        try:
            return AudioClip.from_wav(data, label=sha256[:12])
        except (ValueError, EOFError, wave.Error) as exc:
            raise MediaCorrupt(f"media {sha256[:12]} is not playable: {exc}") from None

    def evict(self, keep: Iterable[str]) -> list[str]:
        """Delete every cached file not in ``keep``; returns what was deleted."""
        keep = set(keep)
        gone = []
        for sha in self.cached():
            if sha not in keep:
                with contextlib.suppress(FileNotFoundError):
                    self.path_for(sha).unlink()
                    gone.append(sha)
        for folder in self.directory.glob("??"):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only when empty
        if gone:
            log.info("evicted %d media file(s) no plan references", len(gone))
        return gone
