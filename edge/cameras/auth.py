"""HTTP authentication for RTSP and HTTP requests: Basic (RFC 7617) and Digest (RFC 2617,
RFC 7616), written for the two clients of this package.

A request goes out without credentials first; on 401 the client parses every challenge
of the ``WWW-Authenticate`` headers, picks the strongest it supports and retries once.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass, field

_DIGEST_HASHES = {
    "MD5": "md5",
    "SHA-256": "sha256",
    "SHA-512-256": "sha512_256",
}


class AuthError(ValueError):
    """A challenge this client cannot answer (unknown scheme or algorithm)."""


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class Challenge:
    scheme: str  # lower-case: "basic", "digest", ...
    params: dict[str, str]

    @property
    def algorithm(self) -> str:
        return self.params.get("algorithm", "MD5")

    def qops(self) -> list[str]:
        return [q.strip() for q in self.params.get("qop", "").split(",") if q.strip()]


def parse_challenges(headers: list[str]) -> list[Challenge]:
    """Every challenge in the given ``WWW-Authenticate`` header values.

    One header may carry several challenges (``Digest realm="a", nonce="b", Basic
    realm="a"``): a token not followed by ``=`` starts a new challenge.
    """
    out: list[Challenge] = []
    for header in headers:
        for token, params in _challenge_parts(header):
            out.append(Challenge(token.lower(), params))
    return out


def _challenge_parts(text: str) -> list[tuple[str, dict[str, str]]]:
    parts: list[tuple[str, dict[str, str]]] = []
    i, n = 0, len(text)
    current: dict[str, str] | None = None
    while i < n:
        while i < n and text[i] in " \t,":
            i += 1
        if i >= n:
            break
        start = i
        while i < n and text[i] not in " \t,=":
            i += 1
        token = text[start:i]
        j = i
        while j < n and text[j] in " \t":
            j += 1
        if j < n and text[j] == "=" and current is not None and not _is_token68_end(text, j):
            value, i = _read_value(text, j + 1)
            current[token.lower()] = value
        elif j < n and text[j] == "=" and current is not None:
            # token68 form (e.g. "Negotiate abc=="): keep it whole, it has no params
            while j < n and text[j] == "=":
                j += 1
            i = j
        else:
            current = {}
            parts.append((token, current))
            i = j
    return parts


def _is_token68_end(text: str, eq: int) -> bool:
    """``=`` followed by more ``=``, a comma or the end is token68 padding, not a param."""
    rest = text[eq + 1:].lstrip(" \t")
    return rest == "" or rest[0] in ",="


def _read_value(text: str, i: int) -> tuple[str, int]:
    n = len(text)
    while i < n and text[i] in " \t":
        i += 1
    if i < n and text[i] == '"':
        i += 1
        buf = []
        while i < n and text[i] != '"':
            if text[i] == "\\" and i + 1 < n:
                i += 1
            buf.append(text[i])
            i += 1
        return "".join(buf), i + 1
    start = i
    while i < n and text[i] not in ",":
        i += 1
    return text[start:i].strip(), i


def choose(challenges: list[Challenge]) -> Challenge:
    """The strongest supported challenge: Digest (SHA-512-256 > SHA-256 > MD5) before Basic."""
    def rank(ch: Challenge) -> int:
        if ch.scheme == "digest":
            algo = ch.algorithm.upper().removesuffix("-SESS")
            order = ["MD5", "SHA-256", "SHA-512-256"]
            if algo in order and _hash_available(algo) and "nonce" in ch.params:
                return 10 + order.index(algo)
            return -1
        if ch.scheme == "basic":
            return 1
        return -1

    ranked = sorted(challenges, key=rank, reverse=True)
    if not ranked or rank(ranked[0]) < 0:
        schemes = ", ".join(sorted({c.scheme for c in challenges})) or "none"
        raise AuthError(f"no supported authentication scheme offered (offered: {schemes})")
    return ranked[0]


def _hash_available(algo: str) -> bool:
    try:
        hashlib.new(_DIGEST_HASHES[algo])
    except (KeyError, ValueError):
        return False
    return True


class Authorizer:
    """Builds ``Authorization`` header values answering one challenge; keeps the Digest
    nonce count so requests on one connection can reuse the challenge."""

    def __init__(self, challenge: Challenge, credentials: Credentials, cnonce: str | None = None) -> None:
        self.challenge = challenge
        self.credentials = credentials
        self._nc = 0
        self._cnonce = cnonce or secrets.token_hex(8)

    def header(self, method: str, uri: str) -> str:
        if self.challenge.scheme == "basic":
            raw = f"{self.credentials.username}:{self.credentials.password}".encode()
            return "Basic " + base64.b64encode(raw).decode("ascii")
        return self._digest(method, uri)

    def _digest(self, method: str, uri: str) -> str:
        p = self.challenge.params
        algorithm = self.challenge.algorithm
        base = algorithm.upper().removesuffix("-SESS")
        name = _DIGEST_HASHES.get(base)
        if name is None:
            raise AuthError(f"unsupported Digest algorithm {algorithm}")

        def h(text: str) -> str:
            return hashlib.new(name, text.encode()).hexdigest()

        realm, nonce = p.get("realm", ""), p["nonce"]
        user = self.credentials.username
        ha1 = h(f"{user}:{realm}:{self.credentials.password}")
        if algorithm.upper().endswith("-SESS"):
            ha1 = h(f"{ha1}:{nonce}:{self._cnonce}")
        qops = self.challenge.qops()
        qop = "auth" if "auth" in qops else ("auth-int" if "auth-int" in qops else None)
        ha2 = h(f"{method}:{uri}") if qop != "auth-int" else h(f"{method}:{uri}:{h('')}")
        fields = []
        if p.get("userhash", "").lower() == "true":
            fields.append(f'username="{h(f"{user}:{realm}")}"')
            fields.append("userhash=true")
        else:
            fields.append(f'username="{_quote(user)}"')
        fields += [f'realm="{_quote(realm)}"', f'nonce="{_quote(nonce)}"', f'uri="{_quote(uri)}"']
        if qop is None:
            response = h(f"{ha1}:{nonce}:{ha2}")
        else:
            self._nc += 1
            nc = f"{self._nc:08x}"
            response = h(f"{ha1}:{nonce}:{nc}:{self._cnonce}:{qop}:{ha2}")
            fields += [f"qop={qop}", f"nc={nc}", f'cnonce="{self._cnonce}"']
        fields.append(f'response="{response}"')
        if "algorithm" in p:
            fields.append(f"algorithm={algorithm}")
        if "opaque" in p:
            fields.append(f'opaque="{_quote(p["opaque"])}"')
        return "Digest " + ", ".join(fields)


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')
