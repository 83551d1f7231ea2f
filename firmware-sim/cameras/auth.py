"""The camera's side of Basic and Digest authentication (RFC 7617, RFC 7616): challenges
out, ``Authorization`` headers checked. Written apart from the edge's client on purpose, so
a mistake on one side is not mirrored on the other."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import threading
from dataclasses import dataclass
from typing import Literal

AuthScheme = Literal["none", "basic", "digest"]

_PARAM = re.compile(r'([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')
_HASHES = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}


@dataclass
class AuthPolicy:
    scheme: AuthScheme = "digest"
    username: str = "admin"
    password: str = "camera-pass"
    realm: str = "IP Camera"
    algorithm: Literal["MD5", "SHA-256"] = "MD5"
    qop: bool = True
    """Offer ``qop="auth"``; many RTSP cameras still answer the RFC 2069 form without it."""


class Authenticator:
    """Issues nonces and checks answers; ``reject_all`` plays a changed camera password."""

    def __init__(self, policy: AuthPolicy) -> None:
        self.policy = policy
        self._nonces: set[str] = set()
        self._lock = threading.Lock()

    def challenges(self) -> list[str]:
        """``WWW-Authenticate`` values, weakest first (a client must pick the best)."""
        p = self.policy
        if p.scheme == "basic":
            return [f'Basic realm="{p.realm}"']
        nonce = secrets.token_hex(16)
        with self._lock:
            self._nonces.add(nonce)
        digest = f'Digest realm="{p.realm}", nonce="{nonce}", algorithm={p.algorithm}'
        if p.qop:
            digest += ', qop="auth"'
        return [f'Basic realm="{p.realm}"', digest]

    def accepts(self, header: str | None, method: str, uri: str, reject_all: bool = False) -> bool:
        p = self.policy
        if p.scheme == "none":
            return True
        if header is None or reject_all:
            return False
        scheme, _, rest = header.partition(" ")
        if p.scheme == "basic":
            if scheme.lower() != "basic":
                return False
            try:
                user, _, password = base64.b64decode(rest.strip()).decode().partition(":")
            except ValueError:
                return False
            return (user, password) == (p.username, p.password)
        if scheme.lower() != "digest":
            return False  # a Basic answer to a Digest camera is refused
        params = {m[1].lower(): (m[2] if m[2] is not None else m[3]) for m in _PARAM.finditer(rest)}
        return self._digest_ok(params, method, uri)

    def _digest_ok(self, params: dict[str, str], method: str, uri: str) -> bool:
        p = self.policy
        with self._lock:
            known = params.get("nonce") in self._nonces
        if not known or params.get("username") != p.username or params.get("realm") != p.realm:
            return False
        if params.get("uri") != uri:
            return False
        h = _HASHES[p.algorithm]

        def hx(text: str) -> str:
            return h(text.encode()).hexdigest()

        ha1 = hx(f"{p.username}:{p.realm}:{p.password}")
        ha2 = hx(f"{method}:{uri}")
        nonce = params["nonce"]
        if p.qop:
            if params.get("qop") != "auth" or "nc" not in params or "cnonce" not in params:
                return False
            expected = hx(f"{ha1}:{nonce}:{params['nc']}:{params['cnonce']}:auth:{ha2}")
        else:
            expected = hx(f"{ha1}:{nonce}:{ha2}")
        return secrets.compare_digest(expected, params.get("response", ""))
