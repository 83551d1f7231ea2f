"""Broadcasts: drafts, approval, audit, the calendar of occurrences, delivery reports,
play-now / emergency and stop.

Roles: officers, leaders and admins draft and edit; leaders and admins approve (not a broadcast
they drafted or edited: four eyes), grant a quiet-hours exception, play now (emergency needs
``confirm``) and stop; the services decide (``services/broadcasts.py``). Everyone logged in
reads. Times in bodies are ISO 8601 with an offset; answers are UTC plus ``*_local`` in the
hub's zone. A change that moves plans (edit, approve, archive, play now) is followed up by the
service on commit.
"""

from __future__ import annotations

from typing import Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, status
from pydantic import AwareDatetime
from sqlalchemy.orm import Session

from thanthien.hub.api.deps import CurrentUser, DbSession, Hub, RowId, allow
from thanthien.hub.api.schemas import (
    AuditOut,
    BroadcastOut,
    HolidayOut,
    OccurrenceOut,
    PlayNowOut,
    QuietExceptionIn,
    ReportOut,
)
from thanthien.hub.context import HubContext
from thanthien.hub.db.models import Broadcast, BroadcastAudit
from thanthien.hub.roles import BROADCAST_APPROVERS, BROADCAST_EDITORS, BROADCAST_READERS
from thanthien.hub.services import broadcasts, deliveries, plans, speaker_commands
from thanthien.hub.services.broadcasts import BroadcastSpec
from thanthien.hub.services.schedule import HOLIDAYS, holiday_dates
from thanthien.hub.services.speaker_commands import PlayNowRequest, StopRequest

router = APIRouter(tags=["broadcasts"])


def _tz(hub: HubContext) -> ZoneInfo:
    return ZoneInfo(hub.settings.hub.timezone)


def _rules(hub: HubContext) -> dict[str, Any]:
    """What the broadcast services decide by besides the actor: now, the zone, ``[broadcasts]``."""
    return {"now": hub.clock(), "tz": _tz(hub), "cfg": hub.settings.broadcasts}


def _saved(hub: HubContext, session: Session, b: Broadcast) -> BroadcastOut:
    """Commit the service's change (its follow-up runs then) and answer with the broadcast."""
    session.commit()
    return BroadcastOut.of(b, _tz(hub))


# -- read ----------------------------------------------------------------------------------
@router.get(
    "/broadcasts/holidays",
    response_model=list[HolidayOut],
    dependencies=[allow(*BROADCAST_READERS)],
    summary="Holidays a greeting can be set for, with their next dates",
)
def list_holidays(hub: Hub) -> list[HolidayOut]:
    today = hub.clock().astimezone(_tz(hub)).date()
    out = []
    for key, holiday in HOLIDAYS.items():
        dates = [
            d
            for y in (today.year, today.year + 1, today.year + 2)
            if (d := holiday_dates(key, y)) is not None and d >= today
        ]
        out.append(HolidayOut(key=key, name=holiday.label, next_dates=[d.isoformat() for d in dates[:2]]))
    return out


@router.get("/broadcasts", response_model=list[BroadcastOut], dependencies=[allow(*BROADCAST_READERS)])
def list_broadcasts(
    hub: Hub,
    session: DbSession,
    user: CurrentUser,
    status_: Literal["draft", "approved", "archived"] | None = Query(None, alias="status"),
    include_play_now: bool = False,
) -> list[BroadcastOut]:
    tz = _tz(hub)
    return [
        BroadcastOut.of(b, tz)
        for b in broadcasts.list_broadcasts(session, viewer=user, status=status_,
                                            include_now=include_play_now)
    ]


@router.get("/broadcasts/{broadcast_id}", response_model=BroadcastOut,
            dependencies=[allow(*BROADCAST_READERS)])
def get_broadcast(hub: Hub, session: DbSession, user: CurrentUser, broadcast_id: RowId) -> BroadcastOut:
    b = broadcasts.get_broadcast(session, viewer=user, broadcast_id=broadcast_id)
    return BroadcastOut.of(b, _tz(hub))


@router.get(
    "/broadcasts/{broadcast_id}/audit", response_model=list[AuditOut],
    dependencies=[allow(*BROADCAST_READERS)]
)
def get_audit(session: DbSession, user: CurrentUser, broadcast_id: RowId) -> list[BroadcastAudit]:
    return broadcasts.audit_log(session, viewer=user, broadcast_id=broadcast_id)


@router.get(
    "/broadcasts/{broadcast_id}/reports",
    response_model=list[ReportOut],
    dependencies=[allow(*BROADCAST_READERS)],
    summary="Delivery report of each occurrence, newest first",
)
def get_reports(hub: Hub, session: DbSession, user: CurrentUser, broadcast_id: RowId) -> list[ReportOut]:
    tz = _tz(hub)
    return [ReportOut.of(r, tz)
            for r in deliveries.broadcast_reports(session, viewer=user, broadcast_id=broadcast_id)]


@router.get(
    "/occurrences",
    response_model=list[OccurrenceOut],
    dependencies=[allow(*BROADCAST_READERS)],
    summary="The calendar: occurrences in [start, end) (default: the next 7 days)",
)
def list_occurrences(
    hub: Hub, session: DbSession, user: CurrentUser, start: AwareDatetime | None = None,
    end: AwareDatetime | None = None
) -> list[OccurrenceOut]:
    tz = _tz(hub)
    found = plans.upcoming(session, viewer=user, start=start or hub.clock(), end=end)
    return [OccurrenceOut.of(o, n, tz) for o, n in found]


@router.get("/occurrences/{occurrence_id}/report", response_model=ReportOut,
            dependencies=[allow(*BROADCAST_READERS)])
def get_report(hub: Hub, session: DbSession, user: CurrentUser, occurrence_id: str) -> ReportOut:
    return ReportOut.of(deliveries.report(session, viewer=user, occurrence_id=occurrence_id), _tz(hub))


# -- write ---------------------------------------------------------------------------------
@router.post(
    "/broadcasts",
    response_model=BroadcastOut,
    status_code=status.HTTP_201_CREATED,
    dependencies=[allow(*BROADCAST_EDITORS)],
    summary="Draft a broadcast",
)
def create_broadcast(hub: Hub, session: DbSession, user: CurrentUser, body: BroadcastSpec) -> BroadcastOut:
    return _saved(hub, session, broadcasts.create_broadcast(session, spec=body, actor=user, lib=hub.media,
                                                            **_rules(hub)))


@router.put(
    "/broadcasts/{broadcast_id}",
    response_model=BroadcastOut,
    dependencies=[allow(*BROADCAST_EDITORS)],
    summary="Edit a broadcast (it goes back to draft)",
)
def update_broadcast(
    hub: Hub, session: DbSession, user: CurrentUser, broadcast_id: RowId, body: BroadcastSpec
) -> BroadcastOut:
    b = broadcasts.update_broadcast(session, broadcast_id=broadcast_id, spec=body, actor=user, lib=hub.media,
                                    **_rules(hub))
    return _saved(hub, session, b)


@router.post(
    "/broadcasts/{broadcast_id}/approve",
    response_model=BroadcastOut,
    dependencies=[allow(*BROADCAST_APPROVERS)],
    summary="Approve a draft (not one the caller drafted or edited, unless allow_self_approval)",
)
def approve_broadcast(hub: Hub, session: DbSession, user: CurrentUser, broadcast_id: RowId) -> BroadcastOut:
    b = broadcasts.approve_broadcast(session, broadcast_id=broadcast_id, actor=user, **_rules(hub))
    return _saved(hub, session, b)


@router.post(
    "/broadcasts/{broadcast_id}/quiet-exception",
    response_model=BroadcastOut,
    dependencies=[allow(*BROADCAST_APPROVERS)],
    summary="Grant this broadcast, as it is, leave to play inside quiet hours (with the reason)",
)
def grant_quiet_exception(
    hub: Hub, session: DbSession, user: CurrentUser, broadcast_id: RowId, body: QuietExceptionIn
) -> BroadcastOut:
    b = broadcasts.grant_quiet_exception(session, broadcast_id=broadcast_id, actor=user, reason=body.reason,
                                         **_rules(hub))
    return _saved(hub, session, b)


@router.delete(
    "/broadcasts/{broadcast_id}/quiet-exception",
    response_model=BroadcastOut,
    dependencies=[allow(*BROADCAST_APPROVERS)],
    summary="Withdraw the quiet-hours exception (an approved broadcast that needs it goes back to draft)",
)
def revoke_quiet_exception(
    hub: Hub, session: DbSession, user: CurrentUser, broadcast_id: RowId
) -> BroadcastOut:
    b = broadcasts.revoke_quiet_exception(session, broadcast_id=broadcast_id, actor=user, **_rules(hub))
    return _saved(hub, session, b)


@router.delete(
    "/broadcasts/{broadcast_id}",
    response_model=BroadcastOut,
    dependencies=[allow(*BROADCAST_EDITORS)],
    summary="Archive a broadcast: its future occurrences leave the plans",
)
def archive_broadcast(hub: Hub, session: DbSession, user: CurrentUser, broadcast_id: RowId) -> BroadcastOut:
    b = broadcasts.archive_broadcast(session, broadcast_id=broadcast_id, actor=user, now=hub.clock())
    return _saved(hub, session, b)


@router.post(
    "/broadcasts/play-now",
    response_model=PlayNowOut,
    status_code=status.HTTP_201_CREATED,
    dependencies=[allow(*BROADCAST_APPROVERS)],
    summary="Phát ngay / khẩn cấp: a command to every target",
)
def play_now(hub: Hub, user: CurrentUser, body: PlayNowRequest) -> PlayNowOut:
    result = speaker_commands.play_now(hub, actor=user, request=body)
    return PlayNowOut(broadcast_id=result.broadcast_id, occurrence_id=result.occurrence_id,
                      start_at=result.start_at, targets=result.targets)


@router.post(
    "/broadcasts/stop",
    response_model=list[str],
    dependencies=[allow(*BROADCAST_APPROVERS)],
    summary="Stop what the targets play now (and their queued play-now items)",
)
def stop(hub: Hub, user: CurrentUser, body: StopRequest) -> list[str]:
    return speaker_commands.stop(hub, actor=user, request=body)
