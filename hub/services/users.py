"""Users, argon2 password hashes and signed bearer tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from thanthien.hub.db.models import User
from thanthien.hub.roles import ROLE_LABELS, ROLES, Actor
from thanthien.hub.services import audit
from thanthien.hub.services.errors import Conflict, Forbidden, Invalid, NotFound
from thanthien.hub.tenancy import Tenant, commune_for_new, is_province, visible_clause

# The rules of an account, used by the checks below and by the API schema (so OpenAPI shows them).
USERNAME_PATTERN = r"^[A-Za-z0-9_.@-]{1,64}$"
MAX_USERNAME = 64
MAX_FULL_NAME = 200
MIN_PASSWORD = 8
MAX_PASSWORD = 200
_USERNAME = re.compile(USERNAME_PATTERN)

_hasher = PasswordHasher()
_dummy: str | None = None


def _dummy_hash() -> str:
    """A hash of the current hasher's cost to verify against when the user does not exist, so
    timing does not reveal usernames; made at the first such login, not at import (every hub
    process, CLI command and test worker imports this module: one argon2 hash each)."""
    global _dummy
    if _dummy is None:
        _dummy = _hasher.hash("not-a-real-password")
    return _dummy


def use_hasher(hasher: PasswordHasher) -> PasswordHasher:
    """Swap the argon2 parameters (tests use cheap ones); returns the hasher it replaced."""
    global _hasher, _dummy
    previous, _hasher, _dummy = _hasher, hasher, None
    return previous


def check_password(password: str) -> str:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise Invalid(f"Mật khẩu phải có từ {MIN_PASSWORD} đến {MAX_PASSWORD} ký tự")
    return password


def check_role(role: str) -> str:
    if role not in ROLES:
        raise Invalid(f"Vai trò không hợp lệ: hãy chọn một trong {', '.join(ROLE_LABELS.values())}")
    return role


def check_full_name(full_name: str) -> str:
    full_name = full_name.strip()
    if len(full_name) > MAX_FULL_NAME:
        raise Invalid(f"Họ tên quá dài (tối đa {MAX_FULL_NAME} ký tự)")
    return full_name


def check_username(username: str) -> str:
    username = username.strip()
    if not _USERNAME.match(username):
        raise Invalid(f"Tên đăng nhập chỉ gồm chữ không dấu, số và . _ @ - (tối đa {MAX_USERNAME} ký tự)")
    return username


def hash_password(password: str) -> str:
    return _hasher.hash(check_password(password))


def create_user(session: Session, *, actor: Actor, username: str, password: str, role: str, now: datetime,
                full_name: str = "", commune: str | None = None) -> User:
    """A new account. ``commune``: the commune it belongs to; without one, a commune admin's new
    user is of their commune and a province admin's a province user (only they make those)."""
    username, role, full_name = check_username(username), check_role(role), check_full_name(full_name)
    check_password(password)
    commune_id = commune_for_new(session, actor=actor, requested=commune) if commune \
        else getattr(actor, "commune_id", None)
    if session.scalar(select(User).where(User.username == username)) is not None:
        raise Conflict(f"Tên đăng nhập {username} đã có người dùng")
    user = User(username=username, full_name=full_name, role=role, commune_id=commune_id,
                password_hash=hash_password(password), active=True, token_version=0, created_at=now)
    session.add(user)
    session.flush()
    audit.record(session, actor=actor, action="user.create", subject=_subject(user), at=now,
                 details={"role": role, "full_name": full_name, "commune": commune}, commune_id=commune_id)
    return user


def _subject(user: User) -> str:
    return f"user:{user.username}"


def get_user(session: Session, *, user_id: int, viewer: Tenant | None = None) -> User:
    """The account; ``viewer``: a province user is not found by a commune user, nor another
    commune's."""
    user = session.get(User, user_id)
    if user is None or (viewer is not None and not is_province(viewer)
                        and user.commune_id != viewer.commune_id):
        raise NotFound("Không tìm thấy người dùng")
    return user


def list_users(session: Session, *, viewer: Tenant) -> list[User]:
    """The accounts ``viewer`` reaches: a commune user sees their commune's only."""
    query = select(User).where(visible_clause(viewer, User.commune_id))
    return list(session.scalars(query.order_by(User.username)))


def update_user(session: Session, *, actor: Actor, user_id: int, role: str | None = None,
                active: bool | None = None, password: str | None = None,
                full_name: str | None = None, now: datetime | None = None) -> User:
    """Change an account. Nobody changes their own role or locks themselves out (a hub whose
    only admin demoted themselves has no admin left). Each change is audited (at ``now``)."""
    return _update(session, actor=actor, user_id=user_id, role=role, active=active, password=password,
                   full_name=full_name, password_action="user.password_change", now=now)


def _update(session: Session, *, actor: Actor, user_id: int, role: str | None, active: bool | None,
            password: str | None, full_name: str | None, password_action: str, now: datetime | None) -> User:
    user = get_user(session, user_id=user_id, viewer=actor)
    if user.id == actor.id and ((role is not None and role != user.role) or active is False):
        raise Forbidden("Không thể tự đổi vai trò hay khóa tài khoản của chính mình")
    trail: list[tuple[str, dict[str, object]]] = []
    if role is not None and check_role(role) != user.role:
        trail.append(("user.role", {"role": {"from": user.role, "to": role}}))
        user.role = role
    if active is not None and active != user.active:
        trail.append(("user.unlock" if active else "user.lock", {}))
        user.active = active
        if not active:
            user.token_version += 1
    if password is not None:
        user.password_hash = hash_password(password)
        user.token_version += 1  # existing tokens stop working
        trail.append((password_action, {}))
    if full_name is not None and check_full_name(full_name) != user.full_name:
        trail.append(("user.rename", {"full_name": {"from": user.full_name, "to": full_name.strip()}}))
        user.full_name = full_name.strip()
    session.flush()
    for action, details in trail:
        audit.record(session, actor=actor, action=action, subject=_subject(user), details=details, at=now)
    return user


def reset_password(session: Session, *, actor: Actor, user_id: int,
                   now: datetime | None = None) -> tuple[User, str]:
    """A new random password for someone else (shown once to the admin); their sessions end."""
    if user_id == actor.id:
        raise Forbidden("Không thể tự đặt lại mật khẩu của chính mình; hãy đổi mật khẩu của mình")
    password = secrets.token_urlsafe(9)
    user = _update(session, actor=actor, user_id=user_id, role=None, active=None, password=password,
                   full_name=None, password_action="user.password_reset", now=now)
    return user, password


def authenticate(session: Session, *, username: str, password: str) -> User | None:
    """The active user with this password, or ``None`` (same work either way)."""
    user = session.scalar(select(User).where(User.username == username))
    try:
        _hasher.verify(user.password_hash if user else _dummy_hash(), password)
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
