"""What the public page (``/p/``, no login) tells residents: this month's satisfaction per
counter, the broadcasts of the coming days, how many speakers and cameras work, how fast
faults were put right and how residents' reports were answered.

Only figures, counter and zone names and broadcast titles: never an officer's or a user's name,
a phone number, a dossier or a node's address. One function builds it all, so the page (and a
later API or a province view) cannot show more than this.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import median
from typing import Final
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from thanthien.hub.db.models import Alarm, Broadcast, CameraStatus, Device, FaultReport, Node, Zone
from thanthien.hub.roles import SYSTEM
from thanthien.hub.services import plans, registry, reports
from thanthien.hub.services.ratings import RatingFilter
from thanthien.hub.settings import PublicSection

FAULT_KINDS: Final = ("node_offline", "camera_down")
"""The alarms whose open time is a fault's repair time."""
FAULT_WINDOW: Final = timedelta(days=30)


@dataclass(frozen=True)
class CounterFigure:
    name: str
    presses: int
    index: float | None


@dataclass(frozen=True)
class UpcomingBroadcast:
    start_at: datetime
    title: str
    where: str


@dataclass(frozen=True)
class PublicSummary:
    month: str
    counters: list[CounterFigure]
    upcoming: list[UpcomingBroadcast]
    speakers_total: int
    speakers_working: int
    cameras_total: int
    cameras_ok: int
    faults_fixed: int
    fault_median_hours: float | None
    reports_received: int
    reports_answered: int
    reports_answered_in_time: int


def _month_start(now: datetime, tz: ZoneInfo) -> datetime:
    local = now.astimezone(tz)
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _counters(session: Session, *, start: datetime, now: datetime, tz: ZoneInfo) -> list[CounterFigure]:
    rows = reports.summarize(session, group_by=["counter"], flt=RatingFilter(start=start, end=now),
                             tz=str(tz))
    by_code = {row.key["counter"]: row for row in rows}
    return [CounterFigure(name=c.name, presses=by_code[c.code].total if c.code in by_code else 0,
                          index=by_code[c.code].index if c.code in by_code else None)
            for c in registry.list_counters(session, viewer=SYSTEM, active=True)]


def _where(broadcast: Broadcast | None, zones: dict[str, str]) -> str:
    if broadcast is None or broadcast.target_kind == "all":
        return "Toàn địa bàn"
    if broadcast.target_kind == "zones":
        return ", ".join(zones.get(code, code) for code in broadcast.target_zones)
    return "Một số cụm loa"


def _upcoming(session: Session, *, now: datetime, days: int) -> list[UpcomingBroadcast]:
    zones = {z.code: z.name for z in registry.list_zones(session, viewer=SYSTEM)}
    out = []
    for occurrence, _targets in plans.upcoming(session, start=now, end=now + timedelta(days=days)):
        if occurrence.command:
            continue
        broadcast = session.get(Broadcast, occurrence.broadcast_id)
        out.append(UpcomingBroadcast(start_at=occurrence.start_at, title=occurrence.title,
                                     where=_where(broadcast, zones)))
    return out


def _speakers(session: Session) -> tuple[int, int]:
    rows = session.execute(
        select(Node.state).join(Device, Device.node_id == Node.id)
        .where(Device.kind == "speaker", Device.retired_at.is_(None), Node.retired_at.is_(None))).all()
    return len(rows), sum(1 for (state,) in rows if state == "online")


def _cameras(session: Session) -> tuple[int, int]:
    rows = session.execute(
        select(CameraStatus.state).join(Node, Node.id == CameraStatus.node_id)
        .outerjoin(Device, (Device.node_id == CameraStatus.node_id) & (Device.code == CameraStatus.camera))
        .where(Node.retired_at.is_(None), Device.retired_at.is_(None))).all()
    return len(rows), sum(1 for (state,) in rows if state == "ok")


def _fault_hours(session: Session, *, now: datetime) -> list[float]:
    rows = session.execute(select(Alarm.raised_at, Alarm.cleared_at).where(
        Alarm.kind.in_(FAULT_KINDS), Alarm.cleared_at.is_not(None),
        Alarm.cleared_at >= now - FAULT_WINDOW)).all()
    return [(cleared - raised).total_seconds() / 3600 for raised, cleared in rows]


def summary(session: Session, *, now: datetime, tz: ZoneInfo, cfg: PublicSection) -> PublicSummary:
    start = _month_start(now, tz)
    speakers_total, speakers_working = _speakers(session)
    cameras_total, cameras_ok = _cameras(session)
    hours = _fault_hours(session, now=now)
    since = now - FAULT_WINDOW
    received = session.scalar(select(func.count()).select_from(FaultReport)
                              .where(FaultReport.created_at >= since)) or 0
    answered = session.execute(select(FaultReport.answered_at, FaultReport.due_at).where(
        FaultReport.created_at >= since, FaultReport.status == "answered")).all()
    return PublicSummary(
        month=start.strftime("%m/%Y"),
        counters=_counters(session, start=start, now=now, tz=tz),
        upcoming=_upcoming(session, now=now, days=cfg.upcoming_days),
        speakers_total=speakers_total, speakers_working=speakers_working,
        cameras_total=cameras_total, cameras_ok=cameras_ok,
        faults_fixed=len(hours), fault_median_hours=round(median(hours), 1) if hours else None,
        reports_received=received, reports_answered=len(answered),
        reports_answered_in_time=sum(1 for at, due in answered if at is not None and at <= due),
    )


def zone_names(session: Session) -> dict[int, str]:
    return {z.id: z.name for z in session.scalars(select(Zone))}
