"""The people part of a commune for the tenancy walk: presses at its counter, a dossier (with its
notice, failed so a requeue would change it, and rated by reply), an opt-out of the citizen's
number, an alarm contact with an on-call shift, and a weekly pattern, a leave and a one-off day
of its officer at its counter."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from thanthien.hub.db.models import DossierRating, SmsMessage
from thanthien.hub.notify.settings import SmsSettings
from thanthien.hub.roles import SYSTEM
from thanthien.hub.services import dossiers, paging, ratings, roster, sms_outbox
from thanthien.hub.services import registry as registry_service
from thanthien.protocol.payloads import RatingEvent

TZ = "Asia/Ho_Chi_Minh"
PHONES = {"xa": "0912000101", "xb": "0912000202"}


def seed(session: Session, *, commune: str, prefix: str, marker: str, now: datetime,
         registry: dict[str, Any]) -> dict[str, Any]:
    """Rows of this room in the commune (named with ``marker``); the ids the walk fills paths with."""
    counter, officer_id, box_node = registry["counter"], registry["officer_id"], registry["box_node"]
    events = [RatingEvent(event_id=uuid.uuid4(), node=box_node, seq=i + 1, box="hop", counter=counter,
                          score=score, pressed_at=now - timedelta(minutes=10 + i))
              for i, score in enumerate((4, 3, 1))]
    ratings.store_ratings(session, events=events, now=now)
    phone = PHONES.get(prefix, "0912000303")
    dossier = dossiers.create(session, actor=SYSTEM, code=f"{prefix}-hs-1", procedure=f"Cấp giấy {marker}",
                              citizen_name=f"Người dân {marker}", phone=phone, counter=counter,
                              officer_id=officer_id, due_at=now + timedelta(days=3), source="api", now=now,
                              tz=ZoneInfo(TZ), cfg=SmsSettings())
    message = session.scalar(select(SmsMessage).where(SmsMessage.dossier_id == dossier.id))
    assert message is not None
    message.status, message.last_error = "failed", f"Lỗi thử {marker}"
    session.add(DossierRating(dossier_id=dossier.id, score=4, counter_code=counter, officer_id=officer_id,
                              rated_at=now - timedelta(minutes=1)))
    sms_outbox.opt_out(session, phone=phone, by=f"{prefix}-admin", reason=f"Người dân {marker} từ chối",
                       now=now)
    contact = paging.create_contact(session, actor=SYSTEM, name=f"Trực {marker}", audience="it",
                                    phone=phone.replace("0912", "0913"), commune=commune)
    shift = paging.add_shift(session, actor=SYSTEM, contact_id=contact.id, starts_at=now,
                             ends_at=now + timedelta(days=2))
    day = roster.local_day(now, TZ) + timedelta(days=7)
    pattern = roster.apply(session, roster.new_pattern(
        session, actor=SYSTEM, counter=counter, officer_id=officer_id, weekdays=[1, 2, 3, 4, 5],
        starts="07:30", ends="11:30", valid_from=day, tz=TZ), actor=SYSTEM, now=now).patterns[0]
    leave_at = roster.local_span(day, day, None, None, TZ)
    leave = roster.apply(session, roster.new_exception(
        session, actor=SYSTEM, kind="leave", officer_id=officer_id, counter=None, starts_at=leave_at[0],
        ends_at=leave_at[1], note=f"Nghỉ {marker}", tz=TZ),
        actor=SYSTEM, now=now).exceptions[0]
    entry = registry_add_extra(session, officer_id=officer_id, counter=counter, now=now)
    session.flush()
    return {
        "dossiers.code": dossier.code, "dossier_id": dossier.id, "dossier": dossier.code,
        "message_id": message.id, "phone": phone, "kind": "received",
        "contact_id": contact.id, "shift_id": shift.id,
        "pattern_id": pattern.id, "exception_id": leave.id, "entry_id": entry.id,
    }


def registry_add_extra(session: Session, *, officer_id: int, counter: str, now: datetime) -> Any:
    """A one-off day (the roster's shifts before the weekly pattern) two weeks from now."""
    start = now + timedelta(days=14)
    return registry_service.add_shift(session, actor=SYSTEM, officer_id=officer_id, counter=counter,
                                      starts_at=start, ends_at=start + timedelta(hours=4), now=now)
