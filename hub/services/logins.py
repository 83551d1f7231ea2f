"""Logging in, the one rule the API login and the web login page share: the password check
and the throttle on wrong passwords.

The throttle counts wrong logins per account name (any name typed, known or not: a locked
name looks the same whether an account has it, and only its SHA-256 is stored) and per
client address, in the database (``login_throttle``), so every hub process sees the same
counts. After ``[auth] account_failures`` wrong logins of one name, or ``address_failures``
from one address, each further wrong login locks that name or address for
``first_delay_s``, doubling with each failure up to ``max_delay_s``. While either is locked,
every attempt is refused with the time to try again (the password is not even checked, so a
refusal says nothing about it) and is not counted. A right password resets its account's
count; the address's count is kept (one valid account must not reset an address that guesses
at others). Counts are forgotten ``forget_after_s`` after the last failure. Each lock is
written to the audit log.

The address is the client's as the HTTP server sees it: behind a reverse proxy on the same
machine, uvicorn takes it from ``X-Forwarded-For`` (its ``forwarded_allow_ips``, 127.0.0.1).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from thanthien.hub.db.models import LoginThrottle, User
from thanthien.hub.roles import SYSTEM
from thanthien.hub.services import audit, users
from thanthien.hub.settings import AuthSection

ACCOUNT: Final = "account"
ADDRESS: Final = "address"
ENROLL_ADDRESS: Final = "enroll"  # fits login_throttle.scope (8)
"""Wrong enrollment codes per client address (``services/enrollment.py``), same table and delays."""
WRONG: Final = "Sai tên đăng nhập hoặc mật khẩu"
UNKNOWN_ADDRESS: Final = "unknown"


@dataclass(frozen=True)
class LoginResult:
    """The user logged in, or the refusal: a Vietnamese message and, when the throttle refused
    (HTTP 429), the seconds until the next attempt may be made (``Retry-After``)."""

    user: User | None
    message: str = ""
    retry_after_s: int | None = None

    @property
    def throttled(self) -> bool:
        return self.retry_after_s is not None


def _account(username: str) -> str:
    return hashlib.sha256(username.encode("utf-8", "surrogatepass")).hexdigest()


def _keys(username: str, address: str | None) -> tuple[tuple[str, str], tuple[str, str]]:
    return (ACCOUNT, _account(username)), (ADDRESS, (address or UNKNOWN_ADDRESS)[:255])


def _wait_text(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} giây"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} phút" + (f" {secs} giây" if secs else "")
    hours, minutes = divmod(minutes, 60)
    return f"{hours} giờ" + (f" {minutes} phút" if minutes else "")


def throttled_message(*, until: datetime, now: datetime, tz: str,
                      what: str = "Đăng nhập sai") -> tuple[str, int]:
    """The refusal shown while locked (``what`` was done wrong too often), and the ``Retry-After`` seconds."""
    seconds = max(1, math.ceil((until - now).total_seconds()))
    zone = ZoneInfo(tz)
    local = until.astimezone(zone)
    same_day = local.date() == now.astimezone(zone).date()
    at = f"{local:%H:%M:%S}" if same_day else f"{local:%H:%M:%S ngày %d/%m/%Y}"
    return (f"{what} quá nhiều lần. Vui lòng thử lại sau {_wait_text(seconds)} (lúc {at}).",
            seconds)


def _refused(until: datetime, now: datetime, tz: str) -> LoginResult:
    message, seconds = throttled_message(until=until, now=now, tz=tz)
    return LoginResult(user=None, message=message, retry_after_s=seconds)


def locked_until(session: Session, *, username: str, address: str | None, now: datetime) -> datetime | None:
    """When the later of the account's and the address's locks ends, if either holds now."""
    keys = _keys(username, address)
    rows = session.scalars(select(LoginThrottle).where(
        or_(*(and_(LoginThrottle.scope == scope, LoginThrottle.name == name) for scope, name in keys))))
    return max((r.locked_until for r in rows if r.locked_until is not None and r.locked_until > now),
               default=None)


def address_locked_until(session: Session, *, scope: str, address: str | None,
                         now: datetime) -> datetime | None:
    """When the lock on this client address under ``scope`` ends, if one holds now."""
    where = (address or UNKNOWN_ADDRESS)[:255]
    row = session.scalar(select(LoginThrottle).where(LoginThrottle.scope == scope,
                                                     LoginThrottle.name == where))
    until = row.locked_until if row is not None else None
    return until if until is not None and until > now else None


def count_address_failure(session: Session, *, scope: str, address: str | None, threshold: int, now: datetime,
                          cfg: AuthSection) -> datetime | None:
    """One more failure of this address under ``scope`` (with the same delays as logins); when
    the address is now locked, until when (the lock is audited)."""
    _forget_old(session, now=now, cfg=cfg)
    where = (address or UNKNOWN_ADDRESS)[:255]
    row = _count_failure(session, scope=scope, name=where, threshold=threshold, now=now, cfg=cfg)
    if row.locked_until is not None:
        audit.record(session, actor=SYSTEM, action=f"{scope}.locked", subject=f"address:{where}", at=now,
                     details={"failures": row.failures, "locked_until": row.locked_until})
    return row.locked_until


def _delay_s(failures: int, threshold: int, cfg: AuthSection) -> float | None:
    over = failures - threshold
    if over < 0:
        return None
    return min(cfg.first_delay_s * 2.0 ** min(over, 60), cfg.max_delay_s)


def _insert_missing(session: Session) -> Any:
    module: Any = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return module.insert(LoginThrottle).on_conflict_do_nothing(index_elements=["scope", "name"])


def _count_failure(session: Session, *, scope: str, name: str, threshold: int, now: datetime,
                   cfg: AuthSection) -> LoginThrottle:
    """One more failure for this key (a row lock serialises hub processes failing at once)."""
    session.execute(_insert_missing(session), [{"scope": scope, "name": name, "failures": 0,
                                                "last_failure_at": now, "locked_until": None}])
    mine = select(LoginThrottle).where(LoginThrottle.scope == scope, LoginThrottle.name == name)
    row = session.scalars(mine.with_for_update().execution_options(populate_existing=True)).one()
    if (now - row.last_failure_at).total_seconds() > cfg.forget_after_s:
        row.failures = 0
    row.failures += 1
    row.last_failure_at = now
    delay = _delay_s(row.failures, threshold, cfg)
    row.locked_until = now + timedelta(seconds=delay) if delay is not None else None
    return row


def _forget_old(session: Session, *, now: datetime, cfg: AuthSection) -> None:
    session.execute(delete(LoginThrottle).where(
        LoginThrottle.last_failure_at < now - timedelta(seconds=cfg.forget_after_s),
        or_(LoginThrottle.locked_until.is_(None), LoginThrottle.locked_until <= now)))


def _audit_lock(session: Session, *, row: LoginThrottle, username: str, address: str, now: datetime) -> None:
    if row.scope == ADDRESS:
        subject = f"address:{address}"
    else:  # a name no account has may be a password typed in the wrong field: never stored
        known = session.scalar(select(User.id).where(User.username == username)) is not None
        subject = f"user:{username}" if known else "user:?"
    audit.record(session, actor=SYSTEM, action="login.locked", subject=subject, at=now,
                 details={"failures": row.failures, "locked_until": row.locked_until, "address": address})


def attempt(session: Session, *, username: str, password: str, address: str | None, now: datetime,
            cfg: AuthSection, tz: str) -> LoginResult:
    """Check a login under the throttle. The caller commits whatever the result (failures and
    resets are written in ``session``) and answers 429 with ``Retry-After`` when throttled."""
    until = locked_until(session, username=username, address=address, now=now)
    if until is not None:
        return _refused(until, now, tz)
    user = users.authenticate(session, username=username, password=password)
    (account_scope, account), (address_scope, where) = _keys(username, address)
    if user is not None:
        session.execute(delete(LoginThrottle).where(LoginThrottle.scope == account_scope,
                                                    LoginThrottle.name == account))
        return LoginResult(user=user)
    _forget_old(session, now=now, cfg=cfg)
    rows = [_count_failure(session, scope=account_scope, name=account, threshold=cfg.account_failures,
                           now=now, cfg=cfg),
            _count_failure(session, scope=address_scope, name=where, threshold=cfg.address_failures,
                           now=now, cfg=cfg)]
    locks = [r for r in rows if r.locked_until is not None]
    for row in locks:
        _audit_lock(session, row=row, username=username, address=where, now=now)
    if locks:
        return _refused(max(r.locked_until for r in locks if r.locked_until is not None), now, tz)
    return LoginResult(user=None, message=WRONG)
