"""What the public page (``/p/``, no login) tells residents: this month's satisfaction per
counter, the broadcasts of the coming days, how many speakers and cameras work, how fast
faults were put right and how residents' reports were answered.

Only figures, counter and zone names and broadcast titles: never an officer's or a user's name,
a phone number, a dossier or a node's address. One function builds it all, so the page (and a
later API or a province view) cannot show more than this.

Per commune (issue 20): each commune has its page (``/p/<code>/``) with only its counters,
speakers, cameras, faults, residents' reports and broadcasts (its own, and the province's that
reach it: to every commune, or to its zones or nodes); ``/p/`` lists the communes in service,
or is the page of the only one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import median
from typing import Final
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from thanthien.hub.db.models import Alarm, Broadcast, CameraStatus, Commune, Device, FaultReport, Node, Zone
from thanthien.hub.roles import SYSTEM
from thanthien.hub.services import broadcasts, plans, registry, reports
from thanthien.hub.services.errors import NotFound
from thanthien.hub.services.ratings import RatingFilter
from thanthien.hub.settings import PublicSection
from thanthien.hub.tenancy import commune_by_code, list_communes

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
class Of:
    """A commune as a viewer (:mod:`~thanthien.hub.tenancy`): the page sees what its users see."""

    commune_id: int | None


@dataclass(frozen=True)
class PublicSummary:
    commune_code: str
    commune_name: str
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


def _counters(session: Session, *, of: Of, start: datetime, now: datetime,
              tz: ZoneInfo) -> list[CounterFigure]:
    rows = reports.summarize(session, viewer=of, group_by=["counter"], flt=RatingFilter(start=start, end=now),
                             tz=str(tz))
    by_code = {row.key["counter"]: row for row in rows}
    return [CounterFigure(name=c.name, presses=by_code[c.code].total if c.code in by_code else 0,
                          index=by_code[c.code].index if c.code in by_code else None)
            for c in registry.list_counters(session, viewer=of, active=True)]


def _where(broadcast: Broadcast | None, zones: dict[str, str]) -> str:
    if broadcast is None or broadcast.target_kind == "all":
        return "Toàn địa bàn"
    if broadcast.target_kind == "zones":
        return ", ".join(zones.get(code, code) for code in broadcast.target_zones)
    return "Một số cụm loa"


def _upcoming(session: Session, *, of: Of, now: datetime, days: int) -> list[UpcomingBroadcast]:
    zones = {z.code: z.name for z in registry.list_zones(session, viewer=of)}
    reach = broadcasts.reach_of(session, of.commune_id)
    out = []
    for occurrence, _targets in plans.upcoming(session, viewer=SYSTEM, start=now,
                                               end=now + timedelta(days=days)):
        if occurrence.command:
            continue
        broadcast = session.get(Broadcast, occurrence.broadcast_id)
        if broadcast is None or not broadcasts.sees(session, of, broadcast, reach=reach):
            continue
        out.append(UpcomingBroadcast(start_at=occurrence.start_at, title=occurrence.title,
                                     where=_where(broadcast, zones)))
    return out


def _speakers(session: Session, of: Of) -> tuple[int, int]:
    rows = session.execute(
        select(Node.state).join(Device, Device.node_id == Node.id)
        .where(Device.kind == "speaker", Device.retired_at.is_(None), Node.retired_at.is_(None),
               Node.commune_id == of.commune_id)).all()
    return len(rows), sum(1 for (state,) in rows if state == "online")


def _cameras(session: Session, of: Of) -> tuple[int, int]:
    rows = session.execute(
        select(CameraStatus.state).join(Node, Node.id == CameraStatus.node_id)
        .outerjoin(Device, (Device.node_id == CameraStatus.node_id) & (Device.code == CameraStatus.camera))
        .where(Node.retired_at.is_(None), Device.retired_at.is_(None),
               Node.commune_id == of.commune_id)).all()
    return len(rows), sum(1 for (state,) in rows if state == "ok")


def _fault_hours(session: Session, *, of: Of, now: datetime) -> list[float]:
    rows = session.execute(select(Alarm.raised_at, Alarm.cleared_at).where(
        Alarm.kind.in_(FAULT_KINDS), Alarm.cleared_at.is_not(None), Alarm.commune_id == of.commune_id,
        Alarm.cleared_at >= now - FAULT_WINDOW)).all()
    return [(cleared - raised).total_seconds() / 3600 for raised, cleared in rows]


def communes(session: Session) -> list[Commune]:
    """The communes in service, each with its public page (by name)."""
    return list_communes(session, actor=SYSTEM, active=True)


def commune(session: Session, code: str) -> Commune:
    """The commune of a public page; one retired (or unknown) has none."""
    row = commune_by_code(session, code)
    if row.retired_at is not None:
        raise NotFound(f"Không có xã/phường mã {code}")
    return row


def summary(session: Session, *, commune: Commune, now: datetime, tz: ZoneInfo,
            cfg: PublicSection) -> PublicSummary:
    """The figures of ``commune``'s page: only its counters, devices, faults and broadcasts."""
    of = Of(commune.id)
    start = _month_start(now, tz)
    speakers_total, speakers_working = _speakers(session, of)
    cameras_total, cameras_ok = _cameras(session, of)
    hours = _fault_hours(session, of=of, now=now)
    since = now - FAULT_WINDOW
    received = session.scalar(select(func.count()).select_from(FaultReport)
                              .where(FaultReport.created_at >= since,
                                     FaultReport.commune_id == of.commune_id)) or 0
    answered = session.execute(select(FaultReport.answered_at, FaultReport.due_at).where(
        FaultReport.created_at >= since, FaultReport.status == "answered",
        FaultReport.commune_id == of.commune_id)).all()
    return PublicSummary(
        commune_code=commune.code, commune_name=commune.name,
        month=start.strftime("%m/%Y"),
        counters=_counters(session, of=of, start=start, now=now, tz=tz),
        upcoming=_upcoming(session, of=of, now=now, days=cfg.upcoming_days),
        speakers_total=speakers_total, speakers_working=speakers_working,
        cameras_total=cameras_total, cameras_ok=cameras_ok,
        faults_fixed=len(hours), fault_median_hours=round(median(hours), 1) if hours else None,
        reports_received=received, reports_answered=len(answered),
        reports_answered_in_time=sum(1 for at, due in answered if at is not None and at <= due),
    )


def zone_names(session: Session) -> dict[int, str]:
    return {z.id: z.name for z in session.scalars(select(Zone))}
