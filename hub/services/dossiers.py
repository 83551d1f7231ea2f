"""Dossiers (hồ sơ) handed in at the one-stop office and the notices their events send.

An officer at the counter (a page) or the province's one-stop software (the API) records a
dossier: its code, the procedure, counter, officer, the citizen's name and mobile number, the
due time. Each event on it, received, needs supplement (with what is missing), result ready,
due soon, overdue, is recorded once per key (the caller's event id, or the kind itself for
the one-off kinds: a retried call changes nothing) and queues the notice from the admin's
template, once (the outbox's dedupe key is the event's). The due-soon and overdue events are
the deadline job's (``check_deadlines``).

The citizen's number is shown in full only to the officer handling the dossier (the user
linked to its officer); everyone else, in pages, logs and exports, sees it masked.

A reply 1-4 to a result notice that asked for it becomes one rating of that dossier's counter
and officer (``dossier_ratings``, apart from the box presses).

A dossier is its commune's (``Dossier.commune_id``, the counter's commune when it has one): a
commune user lists, fetches, adds events to and exports only their commune's dossiers, and the
ratings by reply are counted per commune the same way (another commune's dossier is not found).
"""

from __future__ import annotations

import csv
import io
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from thanthien.hub.db.models import (
    Counter,
    Dossier,
    DossierEvent,
    DossierRating,
    Officer,
    SmsMessage,
)
from thanthien.hub.notify.settings import SmsSettings
from thanthien.hub.roles import DOSSIER_OFFICERS, REPORT_READERS, SYSTEM, Actor, require
from thanthien.hub.services import phones, sms_outbox, sms_templates
from thanthien.hub.services.errors import Conflict, Invalid, NotFound
from thanthien.hub.tenancy import Tenant, commune_for_new, reaches, require_reach, visible_clause

log = logging.getLogger(__name__)

CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-_/]{0,63}$")
STATUSES: Final[dict[str, str]] = {
    "processing": "Đang giải quyết",
    "supplement": "Chờ bổ sung",
    "ready": "Đã có kết quả",
}
EVENT_STATUS: Final[dict[str, str]] = {
    "received": "processing",
    "supplement": "supplement",
    "result_ready": "ready",
}
ONE_OFF: Final = ("received", "result_ready", "due_soon", "overdue")
"""Kinds that happen once per dossier (a supplement may be asked for again: its key is the
caller's event id, or a counter)."""
SOURCES: Final = ("counter", "api")


@dataclass(frozen=True)
class DossierView:
    """A dossier as one viewer may see it (the number masked unless they handle it)."""

    id: int
    code: str
    procedure: str
    counter_code: str | None
    officer_id: int | None
    officer_name: str | None
    citizen_name: str
    phone: str
    phone_masked: bool
    status: str
    received_at: datetime
    due_at: datetime | None
    source: str
    created_by: str
    rating: int | None


@dataclass(frozen=True)
class EventOutcome:
    event: DossierEvent
    created: bool
    message: SmsMessage | None


@dataclass(frozen=True)
class ReplyOutcome:
    outcome: str  # rating | rated_already | no_dossier
    dossier_id: int | None = None


def handles(session: Session, viewer: Actor, dossier: Dossier) -> bool:
    """Whether ``viewer`` is the officer handling ``dossier`` (their user is its officer's)."""
    if dossier.officer_id is None or not viewer.id:
        return False
    officer = session.get(Officer, dossier.officer_id)
    return officer is not None and officer.user_id == viewer.id


def view(session: Session, dossier: Dossier, *, viewer: Actor) -> DossierView:
    full = handles(session, viewer, dossier)
    officer = session.get(Officer, dossier.officer_id) if dossier.officer_id else None
    rating = session.scalar(select(DossierRating.score).where(DossierRating.dossier_id == dossier.id))
    return DossierView(
        id=dossier.id,
        code=dossier.code,
        procedure=dossier.procedure,
        counter_code=dossier.counter_code,
        officer_id=dossier.officer_id,
        officer_name=officer.full_name if officer else None,
        citizen_name=dossier.citizen_name,
        phone=phones.national(dossier.phone) if full else phones.mask(dossier.phone),
        phone_masked=not full,
        status=dossier.status,
        received_at=dossier.received_at,
        due_at=dossier.due_at,
        source=dossier.source,
        created_by=dossier.created_by,
        rating=rating,
    )


def get(session: Session, code: str, *, viewer: Tenant) -> Dossier:
    """The dossier of ``code``; one of a commune ``viewer`` does not reach is not found."""
    dossier = session.scalar(select(Dossier).where(Dossier.code == code))
    if dossier is None:
        raise NotFound(f"Không có hồ sơ {code!r}")
    require_reach(viewer, dossier.commune_id, what=f"Hồ sơ {code!r}")
    return dossier


def create(
    session: Session,
    *,
    actor: Actor,
    code: str,
    procedure: str,
    citizen_name: str,
    phone: str,
    counter: str | None,
    officer_id: int | None,
    due_at: datetime | None,
    source: str,
    now: datetime,
    tz: ZoneInfo,
    cfg: SmsSettings,
    notify: bool = True,
) -> Dossier:
    """Record a dossier (and its ``received`` event, whose notice goes to the citizen)."""
    require(actor, DOSSIER_OFFICERS)
    code = code.strip()
    if not CODE.match(code):
        raise Invalid("Mã hồ sơ gồm chữ, số và . - _ / (tối đa 64 ký tự)")
    procedure, citizen_name = " ".join(procedure.split()), " ".join(citizen_name.split())
    if not 1 <= len(procedure) <= 300:
        raise Invalid("Tên thủ tục không được để trống (tối đa 300 ký tự)")
    if not 1 <= len(citizen_name) <= 200:
        raise Invalid("Họ tên người nộp không được để trống (tối đa 200 ký tự)")
    number = phones.normalise(phone)
    if source not in SOURCES:
        raise Invalid(f"Nguồn hồ sơ không hợp lệ: {source!r}")
    counter_row = session.scalar(select(Counter).where(Counter.code == counter)) if counter else None
    if counter and (counter_row is None or not reaches(actor, counter_row.commune_id)):
        raise Invalid(f"Không có quầy {counter!r}")
    # the dossier is the counter's commune's (else the actor's, or the only one)
    commune_id = counter_row.commune_id if counter_row is not None else commune_for_new(session, actor=actor)
    officer = session.get(Officer, officer_id) if officer_id is not None else None
    if officer_id is not None and (officer is None or officer.commune_id != commune_id):
        raise Invalid(f"Không có cán bộ số {officer_id}")
    if due_at is not None and due_at <= now - timedelta(days=365):
        raise Invalid("Hạn trả kết quả không hợp lệ")
    if session.scalar(select(Dossier.id).where(Dossier.code == code)) is not None:
        raise Conflict(f"Hồ sơ {code} đã được ghi nhận trước đó")
    dossier = Dossier(
        code=code,
        procedure=procedure,
        counter_code=counter or None,
        officer_id=officer_id,
        citizen_name=citizen_name,
        phone=number,
        status="processing",
        received_at=now,
        due_at=due_at,
        source=source,
        created_by=actor.username,
        updated_at=now,
        commune_id=commune_id,
    )
    session.add(dossier)
    session.flush()
    log.info("dossier %s recorded by %s (%s, citizen %s)", code, actor.username, source, phones.mask(number))
    record_event(
        session,
        actor=actor,
        dossier=dossier,
        kind="received",
        note="",
        key=None,
        now=now,
        tz=tz,
        cfg=cfg,
        notify=notify,
    )
    return dossier


def _values(dossier: Dossier, *, note: str, tz: ZoneInfo, cfg: SmsSettings) -> dict[str, str]:
    due = dossier.due_at.astimezone(tz).strftime("%H:%M %d/%m/%Y") if dossier.due_at else "theo giấy hẹn"
    return {
        "ma_ho_so": dossier.code,
        "thu_tuc": dossier.procedure,
        "ho_ten": dossier.citizen_name,
        "han": due,
        "thieu": note or "giay to theo huong dan",
        "co_quan": cfg.office_name,
    }


def record_event(
    session: Session,
    *,
    actor: Actor,
    dossier: Dossier,
    kind: str,
    note: str,
    key: str | None,
    now: datetime,
    tz: ZoneInfo,
    cfg: SmsSettings,
    notify: bool = True,
) -> EventOutcome:
    """Record an event once per key and queue its notice; the same key again changes nothing."""
    require(actor, DOSSIER_OFFICERS)
    require_reach(actor, dossier.commune_id, what=f"Hồ sơ {dossier.code!r}")
    if kind not in sms_templates.KINDS:
        raise Invalid(f"Loại sự kiện không hợp lệ: {kind!r} (một trong {', '.join(sms_templates.KINDS)})")
    note = " ".join(note.split())
    if len(note) > 300:
        raise Invalid("Ghi chú tối đa 300 ký tự")
    if kind == "supplement" and not note:
        raise Invalid("Cần ghi rõ giấy tờ phải bổ sung")
    if key is not None and not re.match(r"^[\w.:\-]{1,64}$", key):
        raise Invalid("Mã sự kiện (event_id) gồm chữ, số và . : - _ (tối đa 64 ký tự)")
    if key is None:
        if kind in ONE_OFF:
            key = kind
        else:
            n = (
                session.scalar(
                    select(func.count())
                    .select_from(DossierEvent)
                    .where(DossierEvent.dossier_id == dossier.id, DossierEvent.kind == kind)
                )
                or 0
            )
            key = f"{kind}-{n + 1}"
    existing = session.scalar(
        select(DossierEvent).where(DossierEvent.dossier_id == dossier.id, DossierEvent.key == key)
    )
    if existing is not None:
        msg = session.get(SmsMessage, existing.message_id) if existing.message_id else None
        return EventOutcome(existing, created=False, message=msg)
    event = DossierEvent(dossier_id=dossier.id, key=key, kind=kind, at=now, by=actor.username, note=note)
    session.add(event)
    if kind in EVENT_STATUS:
        dossier.status = EVENT_STATUS[kind]
    dossier.updated_at = now
    msg = None
    if notify:
        template = sms_templates.get(session, kind)
        rendered = sms_templates.render(
            template, _values(dossier, note=note, tz=tz, cfg=cfg), brand=sms_templates.brand_in_text(cfg)
        )
        msg = sms_outbox.enqueue(
            session,
            phone=dossier.phone,
            text=rendered.text,
            kind=kind,
            audience=sms_outbox.CITIZEN,
            now=now,
            urgent=template.urgent,
            asks_rating=template.ask_rating,
            dossier_id=dossier.id,
            dedupe_key=f"dossier:{dossier.id}:{key}",
        )
        event.message_id = msg.id
    session.flush()
    return EventOutcome(event, created=True, message=msg)


def add_event(
    session: Session,
    *,
    actor: Actor,
    code: str,
    kind: str,
    note: str = "",
    key: str | None = None,
    now: datetime,
    tz: ZoneInfo,
    cfg: SmsSettings,
) -> EventOutcome:
    if kind in ("due_soon", "overdue"):
        raise Invalid("Tin sắp đến hạn và quá hạn do hệ thống tự gửi theo hạn trả kết quả")
    return record_event(
        session,
        actor=actor,
        dossier=get(session, code, viewer=actor),
        kind=kind,
        note=note,
        key=key,
        now=now,
        tz=tz,
        cfg=cfg,
    )


def check_deadlines(session: Session, *, now: datetime, tz: ZoneInfo, cfg: SmsSettings) -> int:
    """Due-soon and overdue notices for the dossiers still open (each once)."""
    soon = now + timedelta(hours=cfg.due_soon_hours)
    open_ = list(
        session.scalars(
            select(Dossier).where(
                Dossier.status.in_(("processing", "supplement")),
                Dossier.due_at.is_not(None),
                Dossier.due_at <= soon,
            )
        )
    )
    n = 0
    for dossier in open_:
        assert dossier.due_at is not None
        kind = "overdue" if dossier.due_at <= now else "due_soon"
        if (
            kind == "due_soon"
            and session.scalar(
                select(DossierEvent.id).where(
                    DossierEvent.dossier_id == dossier.id, DossierEvent.key == "overdue"
                )
            )
            is not None
        ):
            continue
        if record_event(
            session, actor=SYSTEM, dossier=dossier, kind=kind, note="", key=None, now=now, tz=tz, cfg=cfg
        ).created:
            n += 1
    return n


def list_dossiers(
    session: Session,
    *,
    viewer: Actor,
    query: str = "",
    status: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[DossierView]:
    require(viewer, DOSSIER_OFFICERS)
    q = (select(Dossier).where(visible_clause(viewer, Dossier.commune_id))
         .order_by(Dossier.received_at.desc(), Dossier.id.desc()))
    if query.strip():
        like = f"%{query.strip()}%"
        q = q.where(
            or_(Dossier.code.ilike(like), Dossier.citizen_name.ilike(like), Dossier.procedure.ilike(like))
        )
    if status:
        q = q.where(Dossier.status == status)
    return [view(session, d, viewer=viewer) for d in session.scalars(q.limit(limit).offset(offset))]


def events_of(session: Session, dossier: Dossier, *, viewer: Tenant) -> list[DossierEvent]:
    require_reach(viewer, dossier.commune_id, what=f"Hồ sơ {dossier.code!r}")
    dossier_id = dossier.id
    return list(
        session.scalars(
            select(DossierEvent)
            .where(DossierEvent.dossier_id == dossier_id)
            .order_by(DossierEvent.at, DossierEvent.id)
        )
    )


# -- ratings by reply ------------------------------------------------------------------------
def rate_by_reply(
    session: Session, *, phone: str, score: int, now: datetime, within_days: int, inbound_id: int | None
) -> ReplyOutcome:
    """The latest notice to ``phone`` that asked for a rating in the last ``within_days``: its
    dossier gets this rating, once (a second reply is kept as an inbound text, not counted)."""
    msg = session.scalar(
        select(SmsMessage)
        .where(
            SmsMessage.phone == phone,
            SmsMessage.asks_rating.is_(True),
            SmsMessage.dossier_id.is_not(None),
            SmsMessage.status.in_(sms_outbox.ACCEPTED),
            SmsMessage.sent_at >= now - timedelta(days=within_days),
        )
        .order_by(SmsMessage.sent_at.desc(), SmsMessage.id.desc())
        .limit(1)
    )
    if msg is None or msg.dossier_id is None:
        return ReplyOutcome("no_dossier")
    if session.scalar(select(DossierRating.id).where(DossierRating.dossier_id == msg.dossier_id)) is not None:
        return ReplyOutcome("rated_already", msg.dossier_id)
    dossier = session.get(Dossier, msg.dossier_id)
    assert dossier is not None
    session.add(
        DossierRating(
            dossier_id=dossier.id,
            score=score,
            counter_code=dossier.counter_code,
            officer_id=dossier.officer_id,
            rated_at=now,
            inbound_id=inbound_id,
        )
    )
    session.flush()
    log.info("dossier %s rated %d by reply", dossier.code, score)
    return ReplyOutcome("rating", dossier.id)


@dataclass(frozen=True)
class RatingRow:
    group: str
    label: str
    counts: dict[int, int]
    total: int
    index: float | None


def rating_summary(
    session: Session, *, viewer: Actor, start: datetime, end: datetime, by: str = "counter"
) -> list[RatingRow]:
    """Ratings by SMS reply per counter or officer over [start, end), with the satisfaction
    index 100 × Σ(score − 1) / (3 × n), as for the box presses but counted apart."""
    require(viewer, REPORT_READERS)
    column = DossierRating.counter_code if by == "counter" else DossierRating.officer_id
    rows = session.execute(
        select(column, DossierRating.score, func.count())
        .join(Dossier, Dossier.id == DossierRating.dossier_id)
        .where(DossierRating.rated_at >= start, DossierRating.rated_at < end,
               visible_clause(viewer, Dossier.commune_id))
        .group_by(column, DossierRating.score)
    ).all()
    groups: dict[str, dict[int, int]] = {}
    for key, score, n in rows:
        groups.setdefault("" if key is None else str(key), {1: 0, 2: 0, 3: 0, 4: 0})[int(score)] += int(n)
    names: dict[str, str] = {}
    if by == "officer":
        names = {str(o.id): o.full_name for o in session.scalars(select(Officer))}
    else:
        names = {c.code: c.name for c in session.scalars(select(Counter))}
    out = []
    for key, counts in sorted(groups.items()):
        total = sum(counts.values())
        index = 100 * sum((s - 1) * n for s, n in counts.items()) / (3 * total) if total else None
        out.append(
            RatingRow(
                group=key,
                label=names.get(key, key or "—"),
                counts=counts,
                total=total,
                index=round(index, 1) if index is not None else None,
            )
        )
    return out


EXPORT_HEADINGS: Final = (
    "Mã hồ sơ",
    "Thủ tục",
    "Quầy",
    "Cán bộ",
    "Người nộp",
    "Số điện thoại",
    "Trạng thái",
    "Ngày tiếp nhận",
    "Hạn trả",
    "Đánh giá qua tin nhắn",
)


def export_csv(views: list[DossierView], *, tz: ZoneInfo) -> bytes:
    """The dossiers as the viewer may see them (numbers masked), UTF-8 with a BOM for Excel."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(EXPORT_HEADINGS)
    for v in views:
        writer.writerow(
            [
                v.code,
                v.procedure,
                v.counter_code or "",
                v.officer_name or "",
                v.citizen_name,
                v.phone,
                STATUSES.get(v.status, v.status),
                v.received_at.astimezone(tz).strftime("%d/%m/%Y %H:%M"),
                v.due_at.astimezone(tz).strftime("%d/%m/%Y %H:%M") if v.due_at else "",
                v.rating or "",
            ]
        )
    return ("\ufeff" + out.getvalue()).encode("utf-8")
