"""The SMS outbox and the rules of Decree 91/2020 on it.

A message is a row before it is anything else: it waits (``queued``) until the gateway
accepts it. Each time the dispatcher picks it up the rules are applied again: a number that
opted out gets nothing (``blocked``); a citizen's message outside the sending window
(07:00-22:00, ``sms.window_start``/``window_end``) waits for the next window unless its kind is
urgent; a citizen number that already got ``sms.daily_cap`` messages this local day waits for
the next day. Staff alarms are not bound by the window or the cap (their contacts' own quiet
hours are, see ``services/paging.py``).

The hand-over is claimed first (``sending``, committed), then the gateway is called, then the
outcome is committed: ``handed``/``sent`` with the gateway's reference, or back to ``queued``
after ``backoff_s`` × 2^(tries−1) (at most ``backoff_max_s``) when the gateway is down, or
``failed`` when it refused for good or after ``attempts`` tries. A row found ``sending`` when a
hub starts was being handed over when the last one died: a gateway that can tell (gammu-smsd's
outbox names each file after its message) settles it; one that cannot (an SMSC) leaves it
``unknown`` for the admin to look at, so nothing is ever sent twice by the hub's doing. So
does a link that breaks after the message left for the gateway and before its answer
(``GatewayError.maybe_sent``): the admin may send it again from the page, knowing it may arrive
twice.

What comes back: delivery reports (stored once per reference and status, even when they come
before the reference is known) and texts. A text "TU CHOI" stops every further message to its
number; a reply 1-4 rates the dossier whose result notice asked for it (``services/dossiers``).

Communes (issue 20): a message is the commune of its dossier (a citizen's notice) or of its
alarm (a staff page); one tied to neither is the province's. A commune admin lists, counts and
sends again only their commune's messages. Opt-outs are a number's, for every commune: a
commune admin sees those of the numbers of their commune's dossiers, and only a province admin
adds or removes one (adding one blocks the number's waiting messages of every commune).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, func, or_, select, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from thanthien.hub.db.models import Alarm, Dossier, SmsInbound, SmsMessage, SmsOptOut, SmsReport
from thanthien.hub.db.session import Database
from thanthien.hub.notify.gateway import (
    Accepted,
    CannotTell,
    Event,
    Gateway,
    GatewayError,
    Outgoing,
    Received,
    Report,
)
from thanthien.hub.notify.settings import SmsSettings
from thanthien.hub.roles import ADMINS, Actor, require
from thanthien.hub.services import phones, sms_text
from thanthien.hub.services.errors import Conflict, Invalid, NotFound
from thanthien.hub.tenancy import Tenant, require_province

log = logging.getLogger(__name__)

STATUSES: Final[dict[str, str]] = {
    "queued": "Đang chờ gửi",
    "sending": "Đang gửi",
    "handed": "Đã chuyển cho modem",
    "sent": "Đã gửi",
    "delivered": "Đã đến máy",
    "undelivered": "Không đến được máy",
    "failed": "Không gửi được",
    "blocked": "Không gửi: số đã từ chối nhận tin",
    "cancelled": "Không gửi: không còn cần (cảnh báo đã hết)",
    "unknown": "Không rõ đã gửi chưa (cần kiểm tra)",
}
ACCEPTED: Final = ("handed", "sent", "delivered", "undelivered")
"""The gateway took these: they count against the daily cap."""
OPT_OUT_WORDS: Final = frozenset({"TU CHOI", "TUCHOI", "TC", "STOP", "HUY"})
CITIZEN, STAFF = "citizen", "staff"


# -- the sending window and the cap -------------------------------------------------------------
def _hhmm(value: str) -> time:
    h, m = value.split(":")
    return time(int(h), int(m))


def in_window(at: datetime, *, tz: ZoneInfo, cfg: SmsSettings) -> bool:
    local = at.astimezone(tz).time()
    return _hhmm(cfg.window_start) <= local < _hhmm(cfg.window_end)


def next_window(at: datetime, *, tz: ZoneInfo, cfg: SmsSettings) -> datetime:
    """The next moment the window opens (``at`` itself when it is open)."""
    if in_window(at, tz=tz, cfg=cfg):
        return at
    local = at.astimezone(tz)
    start = datetime.combine(local.date(), _hhmm(cfg.window_start), tz)
    if local >= start:
        start = datetime.combine(local.date() + timedelta(days=1), _hhmm(cfg.window_start), tz)
    return start.astimezone(at.tzinfo)


def _local_day(at: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    day = at.astimezone(tz).date()
    start = datetime.combine(day, time(0), tz)
    return start, start + timedelta(days=1)


def sent_today(session: Session, *, phone: str, at: datetime, tz: ZoneInfo) -> int:
    start, end = _local_day(at, tz)
    return int(
        session.scalar(
            select(func.count())
            .select_from(SmsMessage)
            .where(
                SmsMessage.phone == phone,
                SmsMessage.audience == CITIZEN,
                SmsMessage.status.in_(ACCEPTED),
                SmsMessage.sent_at >= start,
                SmsMessage.sent_at < end,
            )
        )
        or 0
    )


def is_opted_out(session: Session, phone: str) -> bool:
    return session.get(SmsOptOut, phone) is not None


# -- putting messages in ----------------------------------------------------------------------
def enqueue(
    session: Session,
    *,
    phone: str,
    text: str,
    kind: str,
    audience: str,
    now: datetime,
    urgent: bool = False,
    asks_rating: bool = False,
    dossier_id: int | None = None,
    alarm_id: int | None = None,
    dedupe_key: str | None = None,
    not_before: datetime | None = None,
    hold_reason: str = "",
) -> SmsMessage:
    """A message in the outbox; with ``dedupe_key`` at most one such message ever (the one
    already there is returned). A number that opted out gets the row ``blocked``."""
    phone = phones.normalise(phone)
    if dedupe_key is not None:
        existing = session.scalar(select(SmsMessage).where(SmsMessage.dedupe_key == dedupe_key))
        if existing is not None:
            return existing
    c = sms_text.cost(text)
    blocked = is_opted_out(session, phone)
    msg = SmsMessage(
        dedupe_key=dedupe_key,
        phone=phone,
        audience=audience,
        kind=kind,
        body=text,
        encoding=c.encoding,
        segments=c.segments,
        urgent=urgent,
        asks_rating=asks_rating,
        dossier_id=dossier_id,
        alarm_id=alarm_id,
        status="blocked" if blocked else "queued",
        hold_reason="số đã từ chối nhận tin" if blocked else hold_reason,
        created_at=now,
        next_attempt_at=not_before or now,
        attempts=0,
        last_error="",
    )
    session.add(msg)
    session.flush()
    log.info(
        "sms %d queued: %s to %s (%d part(s), %s)%s",
        msg.id,
        kind,
        phones.mask(phone),
        c.segments,
        c.encoding,
        " blocked: opted out" if blocked else "",
    )
    return msg


# -- working the outbox -----------------------------------------------------------------------
@dataclass(frozen=True)
class DispatchReport:
    accepted: int = 0
    held: int = 0
    retried: int = 0
    failed: int = 0
    blocked: int = 0
    unknown: int = 0


def _backoff(cfg: SmsSettings, attempts: int) -> float:
    return min(cfg.backoff_s * 2 ** max(attempts - 1, 0), cfg.backoff_max_s)


def _claim(session: Session, msg: SmsMessage, *, now: datetime, tz: ZoneInfo, cfg: SmsSettings) -> str:
    """Apply the rules to a due message: ``send`` (claimed), ``held`` or ``blocked``."""
    if is_opted_out(session, msg.phone):
        msg.status, msg.hold_reason = "blocked", "số đã từ chối nhận tin"
        return "blocked"
    if msg.audience == CITIZEN and not msg.urgent and not in_window(now, tz=tz, cfg=cfg):
        msg.next_attempt_at = next_window(now, tz=tz, cfg=cfg)
        msg.hold_reason = f"ngoài giờ gửi tin ({cfg.window_start}-{cfg.window_end})"
        return "held"
    if msg.audience == CITIZEN and sent_today(session, phone=msg.phone, at=now, tz=tz) >= cfg.daily_cap:
        _start, end = _local_day(now, tz)
        msg.next_attempt_at = next_window(end, tz=tz, cfg=cfg)
        msg.hold_reason = f"đã đủ {cfg.daily_cap} tin trong ngày cho số này"
        return "held"
    msg.status, msg.hold_reason = "sending", ""
    msg.attempts += 1
    return "send"


def _accepted(session: Session, msg: SmsMessage, accepted: Accepted, *, gateway: str, now: datetime) -> None:
    msg.status, msg.gateway, msg.gateway_ref, msg.sent_at, msg.last_error = (
        accepted.state,
        gateway,
        accepted.ref,
        now,
        "",
    )
    for report in session.scalars(
        select(SmsReport)
        .where(SmsReport.gateway == gateway, SmsReport.ref == accepted.ref)
        .order_by(SmsReport.id)
    ):
        _apply_report(msg, report.status, report.at)


def dispatch(
    db: Database,
    gateway: Gateway,
    *,
    clock: Callable[[], datetime],
    tz: ZoneInfo,
    cfg: SmsSettings,
    limit: int = 100,
) -> DispatchReport:
    """Work through the due messages, one hand-over at a time (see the module's docstring)."""
    counts = {"accepted": 0, "held": 0, "retried": 0, "failed": 0, "blocked": 0, "unknown": 0}
    with db.session(write=False) as session:
        due = list(
            session.scalars(
                select(SmsMessage.id)
                .where(SmsMessage.status == "queued", SmsMessage.next_attempt_at <= clock())
                .order_by(SmsMessage.urgent.desc(), SmsMessage.next_attempt_at, SmsMessage.id)
                .limit(limit)
            )
        )
    for msg_id in due:
        with db.session() as session:
            msg = session.get(SmsMessage, msg_id)
            if msg is None or msg.status != "queued":
                continue  # another dispatcher took it
            decision = _claim(session, msg, now=clock(), tz=tz, cfg=cfg)
            out = Outgoing(
                id=msg.id,
                phone=msg.phone,
                body=msg.body,
                encoding=msg.encoding,  # type: ignore[arg-type]
                urgent=msg.urgent,
            )
        if decision != "send":
            counts[decision] += 1
            continue
        try:
            accepted = gateway.submit(out)
        except GatewayError as exc:
            with db.session() as session:
                msg = session.get(SmsMessage, msg_id)
                assert msg is not None
                msg.last_error = str(exc)[:500]
                if exc.maybe_sent:
                    msg.status = "unknown"
                    msg.last_error = ("mất kết nối sau khi đã chuyển tin cho tổng đài; "
                                      f"không rõ tổng đài đã nhận chưa ({exc})")[:500]
                    counts["unknown"] += 1
                    log.warning("sms %d: the link broke after the message left for %s; marked unknown, "
                                "not sent again", msg.id, gateway.name)
                elif not exc.retry or msg.attempts >= cfg.attempts:
                    msg.status = "failed"
                    counts["failed"] += 1
                    log.error(
                        "sms %d to %s given up after %d tries: %s",
                        msg.id,
                        phones.mask(msg.phone),
                        msg.attempts,
                        exc,
                    )
                else:
                    msg.status = "queued"
                    msg.next_attempt_at = clock() + timedelta(seconds=_backoff(cfg, msg.attempts))
                    counts["retried"] += 1
                    log.warning(
                        "sms %d try %d failed (%s); next at %s",
                        msg.id,
                        msg.attempts,
                        exc,
                        msg.next_attempt_at.isoformat(),
                    )
            if exc.retry:
                break  # the gateway is down: the rest wait for the next round
            continue
        with db.session() as session:
            msg = session.get(SmsMessage, msg_id)
            assert msg is not None
            _accepted(session, msg, accepted, gateway=gateway.name, now=clock())
            counts["accepted"] += 1
        log.info("sms %d accepted by %s (%s)", msg_id, gateway.name, accepted.ref)
    return DispatchReport(**counts)


def recover(db: Database, gateway: Gateway, *, now: datetime) -> int:
    """Settle the messages a dead hub left ``sending`` (at start-up, before dispatching)."""
    n = 0
    with db.session() as session:
        for msg in session.scalars(select(SmsMessage).where(SmsMessage.status == "sending")):
            try:
                earlier = gateway.find(msg.id)
            except CannotTell:
                msg.status = "unknown"
                msg.last_error = "hub dừng khi đang chuyển tin cho tổng đài; không rõ tổng đài đã nhận chưa"
                log.warning(
                    "sms %d: in flight when the hub stopped; the SMSC cannot tell, marked unknown", msg.id
                )
            else:
                if earlier is None:
                    msg.status = "queued"
                else:
                    _accepted(session, msg, earlier, gateway=gateway.name, now=now)
            n += 1
    return n


def track(db: Database, gateway: Gateway) -> int:
    """Ask a gateway that holds messages (gammu-smsd) what became of them."""
    with db.session(write=False) as session:
        refs = list(
            session.scalars(
                select(SmsMessage.gateway_ref).where(
                    SmsMessage.status == "handed", SmsMessage.gateway == gateway.name
                )
            )
        )
    reports = gateway.track([r for r in refs if r]) if refs else []
    for report in reports:
        store_report(db, gateway=gateway.name, report=report)
    return len(reports)


# -- what comes back --------------------------------------------------------------------------
RANK: Final = {"handed": 0, "sent": 1, "undelivered": 2, "failed": 2, "delivered": 3}


def _apply_report(msg: SmsMessage, status: str, at: datetime) -> None:
    if msg.status not in RANK or RANK.get(status, 0) <= RANK[msg.status]:
        return
    msg.status = status
    if status == "delivered":
        msg.delivered_at = at


def store_report(db: Database, *, gateway: str, report: Report) -> None:
    with db.session() as session:
        try:
            with session.begin_nested():
                session.add(
                    SmsReport(
                        gateway=gateway,
                        ref=report.ref[:200],
                        status=report.status,
                        at=report.at,
                        raw=report.raw[:500],
                    )
                )
        except IntegrityError:
            return  # stored already
        for msg in session.scalars(
            select(SmsMessage).where(SmsMessage.gateway == gateway, SmsMessage.gateway_ref == report.ref)
        ):
            _apply_report(msg, report.status, report.at)


def store_received(db: Database, *, gateway: str, received: Received, now: datetime, cfg: SmsSettings) -> str:
    """A text from a citizen, stored once per gateway reference, and what it did."""
    from thanthien.hub.services import dossiers

    with db.session() as session:
        if (
            session.scalar(
                select(SmsInbound.id).where(
                    SmsInbound.gateway == gateway, SmsInbound.ref == received.ref[:200]
                )
            )
            is not None
        ):
            return "duplicate"
        phone = phones.parse_sender(received.sender)
        words = sms_text.normalise_reply(received.text)
        row = SmsInbound(
            gateway=gateway,
            ref=received.ref[:200],
            phone=received.sender[:32],
            text=received.text[:1000],
            received_at=now,
            outcome="unknown",
        )
        session.add(row)
        session.flush()
        if phone is not None and words in OPT_OUT_WORDS:
            opt_out(session, phone=phone, by="citizen", reason=f"trả lời {words!r}", now=now)
            row.outcome = "opt_out"
        elif phone is not None and words.rstrip(".") in {"1", "2", "3", "4"}:
            outcome = dossiers.rate_by_reply(
                session,
                phone=phone,
                score=int(words.rstrip(".")),
                now=now,
                within_days=cfg.rating_reply_days,
                inbound_id=row.id,
            )
            row.outcome, row.dossier_id = outcome.outcome, outcome.dossier_id
        log.info("sms received from %s: %s", phones.mask(phone) if phone else "(not a mobile)", row.outcome)
        return row.outcome


def handler(
    db: Database, *, gateway: str, clock: Callable[[], datetime], cfg: SmsSettings
) -> Callable[[Event], None]:
    """What a gateway calls with each event; it returns once the event is committed."""

    def handle(event: Event) -> None:
        if isinstance(event, Report):
            store_report(db, gateway=gateway, report=event)
        else:
            store_received(db, gateway=gateway, received=event, now=clock(), cfg=cfg)

    return handle


# -- opt-outs ----------------------------------------------------------------------------------
def opt_out(session: Session, *, phone: str, by: str, reason: str, now: datetime) -> SmsOptOut:
    """No more messages to ``phone``; the ones waiting are blocked."""
    phone = phones.normalise(phone)
    row = session.get(SmsOptOut, phone)
    if row is None:
        row = SmsOptOut(phone=phone, at=now, by=by[:64], reason=reason[:200])
        session.add(row)
    session.execute(
        update(SmsMessage)
        .where(SmsMessage.phone == phone, SmsMessage.status == "queued")
        .values(status="blocked", hold_reason="số đã từ chối nhận tin")
    )
    log.info("sms: %s opted out (%s)", phones.mask(phone), by)
    return row


def admin_opt_out(session: Session, *, actor: Actor, phone: str, reason: str, now: datetime) -> SmsOptOut:
    require(actor, ADMINS)
    require_province(actor)
    if is_opted_out(session, phones.normalise(phone)):
        raise Conflict("Số này đã ở trong danh sách từ chối nhận tin")
    return opt_out(session, phone=phone, by=actor.username, reason=reason or "quản trị chặn", now=now)


def remove_opt_out(session: Session, *, actor: Actor, phone: str) -> None:
    """The admin lets messages go to a number again (the citizen asked in person)."""
    require(actor, ADMINS)
    require_province(actor)
    row = session.get(SmsOptOut, phones.normalise(phone))
    if row is None:
        raise NotFound("Số này không ở trong danh sách từ chối nhận tin")
    session.delete(row)


def list_opt_outs(session: Session, *, viewer: Tenant) -> list[SmsOptOut]:
    """The opt-outs; a commune user's: those of the numbers of their commune's dossiers."""
    query = select(SmsOptOut)
    if viewer.commune_id is not None:
        query = query.where(SmsOptOut.phone.in_(
            select(Dossier.phone).where(Dossier.commune_id == viewer.commune_id)))
    return list(session.scalars(query.order_by(SmsOptOut.at.desc())))


def visible_messages(viewer: Tenant) -> ColumnElement[bool]:
    """The messages ``viewer`` reaches: of their commune's dossiers and alarms (a province user: all)."""
    mine = viewer.commune_id
    if mine is None:
        return true()
    return or_(SmsMessage.dossier_id.in_(select(Dossier.id).where(Dossier.commune_id == mine)),
               SmsMessage.alarm_id.in_(select(Alarm.id).where(Alarm.commune_id == mine)))


def requeue(session: Session, *, actor: Actor, message_id: int, now: datetime) -> SmsMessage:
    """The admin sends a ``failed`` or ``unknown`` message again (knowing it may arrive twice)."""
    require(actor, ADMINS)
    msg = session.scalar(select(SmsMessage).where(SmsMessage.id == message_id, visible_messages(actor)))
    if msg is None:
        raise NotFound("Không có tin nhắn này")
    if msg.status not in ("failed", "unknown"):
        raise Invalid("Chỉ gửi lại được tin nhắn lỗi hoặc không rõ trạng thái")
    msg.status, msg.next_attempt_at, msg.attempts, msg.last_error = "queued", now, 0, ""
    return msg


def list_messages(
    session: Session,
    *,
    viewer: Tenant,
    status: str | None = None,
    kind: str | None = None,
    dossier_id: int | None = None,
    limit: int = 200,
    offset: int = 0,
) -> list[SmsMessage]:
    query = (select(SmsMessage).where(visible_messages(viewer))
             .order_by(SmsMessage.created_at.desc(), SmsMessage.id.desc()))
    if status:
        query = query.where(SmsMessage.status == status)
    if kind:
        query = query.where(SmsMessage.kind == kind)
    if dossier_id is not None:
        query = query.where(SmsMessage.dossier_id == dossier_id)
    return list(session.scalars(query.limit(limit).offset(offset)))


def status_counts(session: Session, *, viewer: Tenant) -> dict[str, int]:
    rows = session.execute(select(SmsMessage.status, func.count()).where(visible_messages(viewer))
                           .group_by(SmsMessage.status)).all()
    return {s: int(n) for s, n in rows}
