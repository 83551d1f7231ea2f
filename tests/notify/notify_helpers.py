"""Helpers of the notification tests: a hub context with SMS settings, dossiers, the outbox."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from hub.hub_helpers import Clock, hub_settings
from sqlalchemy import select

from thanthien.hub.context import HubContext
from thanthien.hub.db.models import Dossier, SmsMessage
from thanthien.hub.db.session import Database
from thanthien.hub.notify.gateway import Gateway
from thanthien.hub.roles import SYSTEM, ActingUser
from thanthien.hub.services import dossiers, registry, sms_outbox

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
CITIZEN = "0912345678"
CITIZEN_E164 = "+84912345678"
OFFICER = ActingUser(username="canbo", role="officer", id=0)


def notify_ctx(db: Database, clock: Clock, tmp_path: Path, **sms: Any) -> HubContext:
    return HubContext(settings=hub_settings(tmp_path, sms={"brand": "UBND MA", **sms}), db=db, clock=clock)


def local(ctx_clock: Clock, hh: int, mm: int = 0) -> datetime:
    """Move the clock to hh:mm Hà Nội time on its current local day; returns it."""
    day = ctx_clock.now.astimezone(TZ).date()
    ctx_clock.now = datetime(day.year, day.month, day.day, hh, mm, tzinfo=TZ).astimezone(ctx_clock.now.tzinfo)
    return ctx_clock.now


def new_dossier(
    ctx: HubContext,
    code: str = "H15-0001",
    phone: str = CITIZEN,
    *,
    due_in_h: float | None = 48,
    actor: Any = OFFICER,
    officer_id: int | None = None,
) -> int:
    with ctx.db.session() as s:
        due = ctx.clock() + timedelta(hours=due_in_h) if due_in_h is not None else None
        d = dossiers.create(
            s,
            actor=actor,
            code=code,
            procedure="Chứng thực bản sao",
            citizen_name="Lò Văn Minh",
            phone=phone,
            counter=None,
            officer_id=officer_id,
            due_at=due,
            source="counter",
            now=ctx.clock(),
            tz=TZ,
            cfg=ctx.settings.sms,
        )
        return d.id


def event(ctx: HubContext, code: str, kind: str, note: str = "", key: str | None = None) -> bool:
    with ctx.db.session() as s:
        return dossiers.add_event(
            s,
            actor=OFFICER,
            code=code,
            kind=kind,
            note=note,
            key=key,
            now=ctx.clock(),
            tz=TZ,
            cfg=ctx.settings.sms,
        ).created


def messages(ctx: HubContext, **where: Any) -> list[SmsMessage]:
    with ctx.db.session(write=False) as s:
        q = select(SmsMessage).order_by(SmsMessage.id)
        for k, v in where.items():
            q = q.where(getattr(SmsMessage, k) == v)
        return list(s.scalars(q))


def dispatch(ctx: HubContext, gateway: Gateway) -> sms_outbox.DispatchReport:
    return sms_outbox.dispatch(ctx.db, gateway, clock=ctx.clock, tz=TZ, cfg=ctx.settings.sms)


def officer_with_user(ctx: HubContext, user_id: int) -> int:
    with ctx.db.session() as s:
        return registry.create_officer(
            s, actor=SYSTEM, code="cb-01", full_name="Quàng Thị Hoa", title="", user_id=user_id
        ).id


def dossier_row(ctx: HubContext, code: str) -> Dossier:
    with ctx.db.session(write=False) as s:
        row = s.scalar(select(Dossier).where(Dossier.code == code))
        assert row is not None
        return row
