"""Alarms to people: contacts per audience, on-call shifts, escalation, quiet hours, a digest,
and the e-mail outbox.

An active, unacknowledged alarm of ``notify.min_severity`` or worse pages the first contact of
its audience's chain (the contacts on call now, by shift rank; when nobody is on call, every
active contact of the audience by rank), by SMS and by e-mail, whichever the contact has. Not
acknowledged ``escalate_after_s`` after a page, it pages the next contact of the chain; past
the end of the chain the last contact is paged again every ``repeat_s``. Each page is a row
(``alarm_pages``, unique per alarm, step and contact) and its messages carry dedupe keys, so a
job that runs twice or a hub that restarts pages nobody twice. A contact's quiet hours hold
their pages until the quiet hours end, except for critical alarms. An acknowledgement (or the
alarm clearing) stops it all. When an alarm clears, the pages still waiting (held by quiet
hours, or not yet sent) are cancelled, and each contact whose page went out is told once that
it is over (:func:`cleared_notices`: step -1, reason ``cleared``, never urgent), so nobody
drives out to a hamlet for a loudspeaker that came back. Every day at ``digest_time`` each
contact who wants it gets one e-mail summing up the open alarms of their audience.

The alarms themselves are ``services/alarms.py``'s: this module reads the ``alarms`` table and
changes nothing in it.

Communes (issue 20): a contact belongs to a commune (``NotifyContact.commune_id``) or to the
province (``None``). An alarm of a commune pages that commune's contacts and the province's (the
chain takes both, by rank); an alarm of no commune (the hub's own) pages only the province's
contacts; a digest sums up, for each contact, only the alarms it would be paged for. A commune
admin lists, adds, switches and puts on call only their commune's contacts (another commune's
contact or shift is not found to them, and the province's are the province admins'); the e-mails
of an alarm are its commune's, the digests the province's.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session

from thanthien.hub.db.models import Alarm, AlarmPage, EmailMessage, NotifyContact, OnCallShift, SmsMessage
from thanthien.hub.db.session import Database
from thanthien.hub.notify.gateway import GatewayError
from thanthien.hub.notify.mail import SmtpMailer
from thanthien.hub.notify.settings import LOCAL_TIME, NotifySettings
from thanthien.hub.roles import ADMINS, Actor, require
from thanthien.hub.services import phones, sms_outbox, sms_text
from thanthien.hub.services.alarms import SEVERITIES
from thanthien.hub.services.errors import Invalid, NotFound
from thanthien.hub.tenancy import Tenant, commune_for_new, require_reach, visible_clause

log = logging.getLogger(__name__)

AUDIENCES: Final[dict[str, str]] = {"it": "Cán bộ kỹ thuật (CNTT)", "leader": "Lãnh đạo"}
SEVERITY_WORDS: Final[dict[str, str]] = {
    "info": "THONG TIN",
    "warning": "CANH BAO",
    "major": "NGHIEM TRONG",
    "critical": "KHAN CAP",
}
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{2,}$")


def _hhmm(value: str) -> time:
    h, m = value.split(":")
    return time(int(h), int(m))


# -- contacts and shifts ---------------------------------------------------------------------
def _check_contact(
    name: str,
    audience: str,
    phone: str | None,
    email: str | None,
    quiet_start: str | None,
    quiet_end: str | None,
) -> tuple[str, str | None, str | None]:
    name = " ".join(name.split())
    if not 1 <= len(name) <= 200:
        raise Invalid("Tên người nhận không được để trống (tối đa 200 ký tự)")
    if audience not in AUDIENCES:
        raise Invalid(f"Nhóm nhận cảnh báo phải là một trong: {', '.join(AUDIENCES)}")
    number = phones.normalise(phone) if phone else None
    email = email.strip() if email else None
    if email and not EMAIL.match(email):
        raise Invalid("Địa chỉ e-mail không hợp lệ")
    if not number and not email:
        raise Invalid("Cần ít nhất một số điện thoại hoặc một địa chỉ e-mail")
    if bool(quiet_start) != bool(quiet_end):
        raise Invalid("Giờ nghỉ cần cả giờ bắt đầu và giờ kết thúc")
    for value in (quiet_start, quiet_end):
        if value and not re.match(LOCAL_TIME, value):
            raise Invalid("Giờ nghỉ viết dạng HH:MM")
    return name, number, email


def create_contact(
    session: Session,
    *,
    actor: Actor,
    name: str,
    audience: str,
    phone: str | None = None,
    email: str | None = None,
    rank: int = 1,
    quiet_start: str | None = None,
    quiet_end: str | None = None,
    digest: bool = True,
    commune: str | None = None,
) -> NotifyContact:
    """A contact of ``commune`` (a commune admin's: their own); a province admin's contact
    without a commune is the province's, paged for every commune's alarms."""
    require(actor, ADMINS)
    name, number, email = _check_contact(name, audience, phone, email, quiet_start, quiet_end)
    commune_id = commune_for_new(session, actor=actor, requested=commune) \
        if commune or actor.commune_id is not None else None
    if not 1 <= rank <= 99:
        raise Invalid("Thứ tự báo (1-99)")
    contact = NotifyContact(
        name=name,
        audience=audience,
        phone=number,
        email=email,
        rank=rank,
        quiet_start=quiet_start or None,
        quiet_end=quiet_end or None,
        digest=digest,
        active=True,
        commune_id=commune_id,
    )
    session.add(contact)
    session.flush()
    return contact


def get_contact(session: Session, *, viewer: Tenant, contact_id: int) -> NotifyContact:
    """The contact; one of another commune (or the province's, to a commune user) is not found."""
    contact = session.get(NotifyContact, contact_id)
    if contact is None:
        raise NotFound("Không có người nhận này")
    require_reach(viewer, contact.commune_id, what="Người nhận này")
    return contact


def set_contact_active(session: Session, *, actor: Actor, contact_id: int, active: bool) -> NotifyContact:
    require(actor, ADMINS)
    contact = get_contact(session, viewer=actor, contact_id=contact_id)
    contact.active = active
    return contact


def list_contacts(session: Session, *, viewer: Tenant) -> list[NotifyContact]:
    """The contacts ``viewer`` manages: a commune's own (the province's all)."""
    return list(
        session.scalars(
            select(NotifyContact).where(visible_clause(viewer, NotifyContact.commune_id))
            .order_by(NotifyContact.audience, NotifyContact.rank, NotifyContact.id)
        )
    )


def add_shift(
    session: Session, *, actor: Actor, contact_id: int, starts_at: datetime, ends_at: datetime, rank: int = 1
) -> OnCallShift:
    require(actor, ADMINS)
    get_contact(session, viewer=actor, contact_id=contact_id)
    if ends_at <= starts_at:
        raise Invalid("Ca trực phải kết thúc sau khi bắt đầu")
    if ends_at - starts_at > timedelta(days=31):
        raise Invalid("Một ca trực dài tối đa 31 ngày")
    shift = OnCallShift(contact_id=contact_id, starts_at=starts_at, ends_at=ends_at, rank=rank)
    session.add(shift)
    session.flush()
    return shift


def remove_shift(session: Session, *, actor: Actor, shift_id: int) -> None:
    require(actor, ADMINS)
    shift = session.get(OnCallShift, shift_id)
    contact = session.get(NotifyContact, shift.contact_id) if shift is not None else None
    if shift is None or contact is None:
        raise NotFound("Không có ca trực này")
    require_reach(actor, contact.commune_id, what="Ca trực này")
    session.delete(shift)


def list_shifts(session: Session, *, viewer: Tenant, since: datetime) -> list[OnCallShift]:
    """The shifts (ending after ``since``) of the contacts ``viewer`` manages."""
    return list(
        session.scalars(
            select(OnCallShift)
            .join(NotifyContact, NotifyContact.id == OnCallShift.contact_id)
            .where(OnCallShift.ends_at > since, visible_clause(viewer, NotifyContact.commune_id))
            .order_by(OnCallShift.starts_at, OnCallShift.rank)
        )
    )


def _reached_by(commune_id: int | None) -> object:
    """The contacts an alarm of ``commune_id`` pages: the commune's and the province's."""
    if commune_id is None:
        return NotifyContact.commune_id.is_(None)
    return or_(NotifyContact.commune_id == commune_id, NotifyContact.commune_id.is_(None))


def chain(session: Session, *, audience: str, at: datetime,
          commune_id: int | None = None) -> list[NotifyContact]:
    """Whom an alarm of ``audience`` (of ``commune_id``; ``None``: the hub's own) reaches, in
    order: those on call at ``at`` (by shift rank), or every active contact of the audience (by
    rank) when nobody is; the commune's contacts and the province's."""
    on_call = session.execute(
        select(NotifyContact, OnCallShift.rank)
        .join(OnCallShift, OnCallShift.contact_id == NotifyContact.id)
        .where(
            _reached_by(commune_id),
            NotifyContact.audience == audience,
            NotifyContact.active.is_(True),
            OnCallShift.starts_at <= at,
            OnCallShift.ends_at > at,
        )
        .order_by(OnCallShift.rank, NotifyContact.rank, NotifyContact.id)
    ).all()
    if on_call:
        seen: dict[int, NotifyContact] = {}
        for contact, _rank in on_call:
            seen.setdefault(contact.id, contact)
        return list(seen.values())
    return list(
        session.scalars(
            select(NotifyContact)
            .where(_reached_by(commune_id), NotifyContact.audience == audience,
                   NotifyContact.active.is_(True))
            .order_by(NotifyContact.rank, NotifyContact.id)
        )
    )


def quiet_until(contact: NotifyContact, *, at: datetime, tz: ZoneInfo) -> datetime | None:
    """The end of the contact's quiet hours when ``at`` falls inside them, else ``None``."""
    if not contact.quiet_start or not contact.quiet_end:
        return None
    start, end = _hhmm(contact.quiet_start), _hhmm(contact.quiet_end)
    local = at.astimezone(tz)
    now_t = local.time()
    inside = (start <= now_t < end) if start < end else (now_t >= start or now_t < end)
    if not inside:
        return None
    day = local.date() if now_t < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, tz).astimezone(at.tzinfo)


# -- paging ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class PageText:
    sms: str
    subject: str
    body: str


CLEARED: Final = "cleared"
CLEARED_STEP: Final = -1
CLEARED_LOOKBACK: Final = timedelta(days=2)
"""Alarms cleared longer ago than this are not looked at for a cleared notice any more."""


def _cleared_text(alarm: Alarm, *, brand: str | None, site: str, tz: ZoneInfo) -> PageText:
    at = alarm.cleared_at.astimezone(tz) if alarm.cleared_at else None
    sms = f"{brand + ': ' if brand else ''}DA HET CANH BAO{f' luc {at:%H:%M %d/%m}' if at else ''}"
    sms = sms_text.strip_diacritics(f"{sms} - {alarm.message}")
    if len(sms) > 306:
        sms = sms[:303] + "..."
    subject = f"[{site}] ĐÃ HẾT: {alarm.kind} {alarm.subject}"
    body = (f"Cảnh báo đã hết{f' lúc {at:%H:%M %d/%m/%Y}' if at else ''}: {alarm.message}\n"
            f"Đối tượng: {alarm.subject}\nBắt đầu: {alarm.raised_at.astimezone(tz):%H:%M %d/%m/%Y}\n\n"
            "Không cần xử lý thêm.")
    return PageText(sms=sms, subject=sms_text.strip_diacritics(subject)[:300], body=body)


def page_text(alarm: Alarm, *, brand: str | None, site: str, reason: str,
              tz: ZoneInfo | None = None) -> PageText:
    if reason == CLEARED:
        return _cleared_text(alarm, brand=brand, site=site, tz=tz or ZoneInfo("UTC"))
    word = SEVERITY_WORDS.get(alarm.severity, alarm.severity.upper())
    again = {"escalated": " (chuyen tiep: chua ai xac nhan)", "repeat": " (nhac lai)"}.get(reason, "")
    sms = f"{brand + ': ' if brand else ''}{word}{again} - {alarm.message}"
    sms = sms_text.strip_diacritics(sms)
    if len(sms) > 306:  # at most two parts
        sms = sms[:303] + "..."
    subject = f"[{site}] {word}{again}: {alarm.kind} {alarm.subject}"
    body = (
        f"Cảnh báo: {alarm.message}\nMức độ: {alarm.severity}\nĐối tượng: {alarm.subject}\n"
        f"Bắt đầu: {alarm.raised_at.isoformat()}\nNhắc lại: {alarm.reminders}\n\n"
        "Xác nhận cảnh báo trên trang Tình trạng thiết bị của hệ thống để dừng thông báo."
    )
    return PageText(sms=sms, subject=sms_text.strip_diacritics(subject)[:300], body=body)


def _page(
    session: Session,
    *,
    alarm: Alarm,
    contact: NotifyContact,
    step: int,
    level: int,
    reason: str,
    now: datetime,
    tz: ZoneInfo,
    brand: str | None,
    site: str,
) -> AlarmPage:
    text = page_text(alarm, brand=brand, site=site, reason=reason, tz=tz)
    urgent = alarm.severity == "critical" and reason != CLEARED
    hold = None if urgent else quiet_until(contact, at=now, tz=tz)
    page = AlarmPage(alarm_id=alarm.id, step=step, level=level, contact_id=contact.id, at=now, reason=reason)
    session.add(page)
    if contact.phone:
        sms = sms_outbox.enqueue(
            session,
            phone=contact.phone,
            text=text.sms,
            kind="alarm",
            audience=sms_outbox.STAFF,
            now=now,
            urgent=urgent,
            alarm_id=alarm.id,
            dedupe_key=f"page:{alarm.id}:{step}:{contact.id}:sms",
            not_before=hold,
            hold_reason="giờ nghỉ của người nhận" if hold else "",
        )
        page.sms_id = sms.id
    if contact.email:
        mail = queue_email(
            session,
            to=contact.email,
            subject=text.subject,
            body=text.body,
            kind="alarm",
            alarm_id=alarm.id,
            now=now,
            not_before=hold,
            dedupe_key=f"page:{alarm.id}:{step}:{contact.id}:email",
        )
        page.email_id = mail.id
    session.flush()
    log.warning(
        "alarm %d (%s %s) paged %s, step %d (%s)%s",
        alarm.id,
        alarm.kind,
        alarm.subject,
        contact.name,
        step,
        reason,
        f", held until {hold.isoformat()}" if hold else "",
    )
    return page


def page_alarms(
    session: Session, *, now: datetime, tz: ZoneInfo, cfg: NotifySettings, brand: str | None, site: str
) -> list[AlarmPage]:
    """Page, escalate and repeat for every alarm that needs it now (see the module's docstring).

    A fixed number of queries whatever the number of alarms (after a typhoon a province holds
    thousands of ``node_offline`` alarms at once): the alarms, their latest pages in one query,
    and each chain once per audience and commune."""
    worst = SEVERITIES[SEVERITIES.index(cfg.min_severity) :]
    pending = (Alarm.cleared_at.is_(None), Alarm.acknowledged_at.is_(None), Alarm.severity.in_(worst))
    alarms = list(session.scalars(select(Alarm).where(*pending).order_by(Alarm.id)))
    latest = _latest_pages(session, select(Alarm.id).where(*pending)) if alarms else {}
    chains: dict[tuple[str, int | None], list[NotifyContact]] = {}
    out = []
    for alarm in alarms:
        key = (alarm.audience, alarm.commune_id)
        if key not in chains:
            chains[key] = chain(session, audience=alarm.audience, at=now, commune_id=alarm.commune_id)
        people = chains[key]
        if not people:
            continue
        last = latest.get(alarm.id)
        if last is None:
            out.append(
                _page(
                    session,
                    alarm=alarm,
                    contact=people[0],
                    step=0,
                    level=0,
                    reason="raised",
                    now=now,
                    tz=tz,
                    brand=brand,
                    site=site,
                )
            )
            continue
        waited = (now - last.at).total_seconds()
        if last.level + 1 < len(people) and waited >= cfg.escalate_after_s:
            out.append(
                _page(
                    session,
                    alarm=alarm,
                    contact=people[last.level + 1],
                    step=last.step + 1,
                    level=last.level + 1,
                    reason="escalated",
                    now=now,
                    tz=tz,
                    brand=brand,
                    site=site,
                )
            )
        elif last.level + 1 >= len(people) and waited >= max(cfg.repeat_s, cfg.escalate_after_s):
            level = min(last.level, len(people) - 1)
            out.append(
                _page(
                    session,
                    alarm=alarm,
                    contact=people[level],
                    step=last.step + 1,
                    level=level,
                    reason="repeat",
                    now=now,
                    tz=tz,
                    brand=brand,
                    site=site,
                )
            )
    return out + cleared_notices(session, now=now, tz=tz, brand=brand, site=site)


NOT_SENT: Final = frozenset({"queued", "cancelled", "failed", "blocked"})
"""Message states in which nothing reached the contact."""


def _cancel_waiting(session: Session, page: AlarmPage) -> bool:
    """Cancel what of this page has not gone out yet; whether nothing of it reached the contact."""
    reached = False
    for model, ident in ((SmsMessage, page.sms_id), (EmailMessage, page.email_id)):
        message = session.get(model, ident) if ident is not None else None
        if message is None:
            continue
        if message.status == "queued":
            message.status = "cancelled"
            if isinstance(message, SmsMessage):
                message.hold_reason = "cảnh báo đã hết"
        reached = reached or message.status not in NOT_SENT
    return not reached


def cleared_notices(session: Session, *, now: datetime, tz: ZoneInfo, brand: str | None,
                    site: str) -> list[AlarmPage]:
    """For each alarm cleared (in the last :data:`CLEARED_LOOKBACK`) after it paged people:
    cancel its pages still waiting, and tell each contact whose page went out that it is over."""
    paged = session.scalars(
        select(AlarmPage.alarm_id).join(Alarm, Alarm.id == AlarmPage.alarm_id)
        .where(Alarm.cleared_at.is_not(None), Alarm.cleared_at >= now - CLEARED_LOOKBACK)
        .distinct().order_by(AlarmPage.alarm_id)).all()
    out: list[AlarmPage] = []
    for alarm_id in paged:
        pages = pages_of(session, alarm_id)
        if any(p.reason == CLEARED for p in pages):
            continue
        alarm = session.get(Alarm, alarm_id)
        assert alarm is not None
        reached = {p.contact_id for p in pages if not _cancel_waiting(session, p)}
        for contact_id in sorted(reached):
            contact = session.get(NotifyContact, contact_id)
            if contact is None or not contact.active:
                continue
            out.append(_page(session, alarm=alarm, contact=contact, step=CLEARED_STEP, level=-1,
                             reason=CLEARED, now=now, tz=tz, brand=brand, site=site))
        session.flush()
    return out


def _latest_pages(session: Session, alarm_ids: Select[tuple[int]]) -> dict[int, AlarmPage]:
    """Alarm id -> its latest page (the highest step), for the alarms ``alarm_ids`` selects."""
    top = (select(AlarmPage.alarm_id, func.max(AlarmPage.step).label("step"))
           .where(AlarmPage.alarm_id.in_(alarm_ids.scalar_subquery())).group_by(AlarmPage.alarm_id).subquery())
    rows = session.scalars(select(AlarmPage).join(top, and_(AlarmPage.alarm_id == top.c.alarm_id,
                                                            AlarmPage.step == top.c.step))
                           .order_by(AlarmPage.id))
    latest: dict[int, AlarmPage] = {}
    for page in rows:
        latest.setdefault(page.alarm_id, page)
    return latest


def pages_of(session: Session, alarm_id: int) -> list[AlarmPage]:
    return list(
        session.scalars(select(AlarmPage).where(AlarmPage.alarm_id == alarm_id).order_by(AlarmPage.step))
    )


def digest(session: Session, *, now: datetime, tz: ZoneInfo, cfg: NotifySettings, site: str) -> int:
    """Once a local day, from ``digest_time`` on: one e-mail per contact with ``digest``."""
    local = now.astimezone(tz)
    if local.time() < _hhmm(cfg.digest_time):
        return 0
    day = local.date().isoformat()
    n = 0
    for contact in session.scalars(
        select(NotifyContact).where(
            NotifyContact.active.is_(True), NotifyContact.digest.is_(True), NotifyContact.email.is_not(None)
        )
    ):
        key = f"digest:{contact.id}:{day}"
        if session.scalar(select(EmailMessage.id).where(EmailMessage.dedupe_key == key)) is not None:
            continue
        open_ = list(
            session.scalars(
                select(Alarm)
                .where(Alarm.cleared_at.is_(None), Alarm.audience == contact.audience,
                       visible_clause(contact, Alarm.commune_id))
                .order_by(Alarm.raised_at)
            )
        )
        lines = [
            f"Các cảnh báo đang mở ngày {local.strftime('%d/%m/%Y')} ({AUDIENCES[contact.audience]}):",
            "",
        ]
        for a in open_:
            ack = f"đã xác nhận bởi {a.acknowledged_by}" if a.acknowledged_at else "CHƯA XÁC NHẬN"
            lines.append(
                f"- [{a.severity}] {a.message} (từ {a.raised_at.astimezone(tz).strftime('%d/%m %H:%M')}, "
                f"{ack})"
            )
        if not open_:
            lines.append("Không có cảnh báo nào đang mở.")
        assert contact.email is not None
        queue_email(
            session,
            to=contact.email,
            subject=f"[{site}] Tong hop canh bao {local.strftime('%d/%m/%Y')}: {len(open_)} dang mo",
            body="\n".join(lines),
            kind="digest",
            alarm_id=None,
            now=now,
            dedupe_key=key,
        )
        n += 1
    return n


# -- the e-mail outbox -------------------------------------------------------------------------
def queue_email(
    session: Session,
    *,
    to: str,
    subject: str,
    body: str,
    kind: str,
    alarm_id: int | None,
    now: datetime,
    dedupe_key: str | None = None,
    not_before: datetime | None = None,
) -> EmailMessage:
    if dedupe_key is not None:
        existing = session.scalar(select(EmailMessage).where(EmailMessage.dedupe_key == dedupe_key))
        if existing is not None:
            return existing
    mail = EmailMessage(
        dedupe_key=dedupe_key,
        to_addr=to,
        subject=subject[:300],
        body=body,
        kind=kind,
        alarm_id=alarm_id,
        status="queued",
        created_at=now,
        next_attempt_at=not_before or now,
        attempts=0,
        last_error="",
    )
    session.add(mail)
    session.flush()
    return mail


def send_emails(
    db: Database, mailer: SmtpMailer, *, clock: Callable[[], datetime], cfg: NotifySettings, limit: int = 50
) -> int:
    """Send the due e-mails; a failed try is retried after ``email_backoff_s`` × 2^(tries−1).
    A mail found ``sending`` (a hub that died mid-send) is sent again with the same Message-ID."""
    if not mailer.configured:
        return 0
    with db.session() as session:
        for mail in session.scalars(select(EmailMessage).where(EmailMessage.status == "sending")):
            mail.status = "queued"
        due = list(
            session.scalars(
                select(EmailMessage.id)
                .where(EmailMessage.status == "queued", EmailMessage.next_attempt_at <= clock())
                .order_by(EmailMessage.id)
                .limit(limit)
            )
        )
    sent = 0
    with mailer:
        for mail_id in due:
            with db.session() as session:
                mail = session.get(EmailMessage, mail_id)
                if mail is None or mail.status != "queued":
                    continue
                mail.status = "sending"
                mail.attempts += 1
                to, subject, body = mail.to_addr, mail.subject, mail.body
            try:
                mailer.send(to=to, subject=subject, body=body, ident=f"thanthien-mail-{mail_id}")
            except GatewayError as exc:
                with db.session() as session:
                    mail = session.get(EmailMessage, mail_id)
                    assert mail is not None
                    mail.last_error = str(exc)[:500]
                    if not exc.retry or mail.attempts >= cfg.email_attempts:
                        mail.status = "failed"
                    else:
                        mail.status = "queued"
                        mail.next_attempt_at = clock() + timedelta(
                            seconds=cfg.email_backoff_s * 2 ** (mail.attempts - 1)
                        )
                log.warning("e-mail %d to %s: %s", mail_id, to, exc)
                if exc.retry:
                    break
                continue
            with db.session() as session:
                mail = session.get(EmailMessage, mail_id)
                assert mail is not None
                mail.status, mail.sent_at, mail.last_error = "sent", clock(), ""
            sent += 1
    return sent


def list_emails(session: Session, *, viewer: Tenant, limit: int = 200) -> list[EmailMessage]:
    """The e-mails: a commune user's are those of their commune's alarms (digests: the province's)."""
    query = select(EmailMessage)
    if viewer.commune_id is not None:
        query = query.where(EmailMessage.alarm_id.in_(
            select(Alarm.id).where(visible_clause(viewer, Alarm.commune_id))))
    return list(
        session.scalars(query.order_by(EmailMessage.created_at.desc(), EmailMessage.id.desc()).limit(limit))
    )


def alarm_sms(session: Session, alarm_id: int) -> list[SmsMessage]:
    return list(
        session.scalars(select(SmsMessage).where(SmsMessage.alarm_id == alarm_id).order_by(SmsMessage.id))
    )
