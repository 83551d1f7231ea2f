"""Users, argon2 password hashes and signed bearer tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from thanthien.hub.db.models import User
from thanthien.hub.services.errors import Conflict, Invalid, NotFound

UserRole = Literal["admin", "officer", "it", "leader"]
ROLES: tuple[UserRole, ...] = ("admin", "officer", "it", "leader")
MIN_PASSWORD = 8

_hasher = PasswordHasher()
# A hash to verify against when the user does not exist, so timing does not reveal usernames.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise Invalid(f"mật khẩu phải có ít nhất {MIN_PASSWORD} ký tự")
    return _hasher.hash(password)


def create_user(session: Session, *, username: str, password: str, role: str, now: datetime,
                full_name: str = "") -> User:
    if role not in ROLES:
        raise Invalid(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    if session.scalar(select(User).where(User.username == username)) is not None:
        raise Conflict(f"user {username!r} already exists")
    user = User(username=username, full_name=full_name, role=role,
                password_hash=hash_password(password), active=True, token_version=0, created_at=now)
    session.add(user)
    session.flush()
    return user


def get_user(session: Session, *, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} not found")
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))


def update_user(session: Session, *, user_id: int, role: str | None = None, active: bool | None = None,
                password: str | None = None, full_name: str | None = None) -> User:
    user = get_user(session, user_id=user_id)
    if role is not None:
        if role not in ROLES:
            raise Invalid(f"unknown role {role!r}")
        user.role = role
    if active is not None:
        user.active = active
        if not active:
            user.token_version += 1
    if password is not None:
        user.password_hash = hash_password(password)
        user.token_version += 1  # existing tokens stop working
    if full_name is not None:
        user.full_name = full_name
    session.flush()
    return user


def authenticate(session: Session, *, username: str, password: str) -> User | None:
    """The active user with this password, or ``None`` (same work either way)."""
    user = session.scalar(select(User).where(User.username == username))
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or not user.active:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue_token(*, user: User, secret: str, now: datetime, ttl_s: int) -> str:
    """``<claims>.<HMAC-SHA256>``: user id, token version and expiry, signed with the hub secret."""
    claims = {"u": user.id, "v": user.token_version, "exp": int(now.timestamp()) + ttl_s}
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    sig = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(sig)}"


def user_from_token(session: Session, *, token: str, secret: str, now: datetime) -> User | None:
    """The active user a valid, unexpired token names; ``None`` for anything else."""
    try:
        body, sig = token.split(".")
        expected = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, _unb64(sig)):
            return None
        claims = json.loads(_unb64(body))
        user_id, version, exp = int(claims["u"]), int(claims["v"]), int(claims["exp"])
    except (ValueError, KeyError, TypeError):
        return None
    if exp <= now.timestamp():
        return None
    user = session.get(User, user_id)
    if user is None or not user.active or user.token_version != version:
        return None
    return user
