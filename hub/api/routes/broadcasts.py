"""Broadcasts: drafts, approval, audit, the calendar of occurrences, delivery reports,
play-now / emergency and stop.

Roles: officers, leaders and admins draft and edit; leaders and admins approve, play now
(emergency needs ``confirm``) and stop. Everyone logged in reads. Times in bodies are
ISO 8601 with an offset; answers are UTC plus ``*_local`` in the hub's zone.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from thanthien.hub import broadcast_jobs
from thanthien.hub.api.deps import ADMIN, EVERYONE, LEADER, OFFICER, CurrentUser, DbSession, Hub, RowId, allow
from thanthien.hub.context import HubContext
from thanthien.hub.db.models import Broadcast, BroadcastAudit
from thanthien.hub.services import broadcasts, deliveries, plans
from thanthien.hub.services.broadcasts import BroadcastSpec, Priority, TargetKind
from thanthien.hub.services.schedule import HOLIDAYS, describe, holiday_dates
from thanthien.protocol.payloads import Command

log = logging.getLogger(__name__)
router = APIRouter(tags=["broadcasts"])
EDITORS = (ADMIN, OFFICER, LEADER)
APPROVERS = (ADMIN, LEADER)


def _tz(hub: HubContext) -> ZoneInfo:
    return ZoneInfo(hub.settings.hub.timezone)


def _local(at: datetime | None, tz: ZoneInfo) -> str | None:
    return at.astimezone(tz).isoformat() if at else None


class BroadcastOut(BaseModel):
    id: int
    title: str
    media_sha256: str
    target_kind: str
    target_zones: list[str]
    target_nodes: list[str]
    volume: int
    priority: str
    schedule_kind: str
    schedule_text: str
    start_at: datetime | None
    start_at_local: str | None
    local_time: str | None
    weekdays: list[int]
    rrule: str | None
    holidays: list[str]
    valid_from: datetime | None
    valid_until: datetime | None
    status: str
    created_by: str
    created_at: datetime
    updated_at: datetime
    approved_by: str | None
    approved_at: datetime | None

    @classmethod
    def of(cls, b: Broadcast, tz: ZoneInfo) -> BroadcastOut:
        return cls(
            id=b.id,
            title=b.title,
            media_sha256=b.media_sha256,
            target_kind=b.target_kind,
            target_zones=list(b.target_zones or []),
            target_nodes=list(b.target_nodes or []),
            volume=b.volume,
            priority=b.priority,
            schedule_kind=b.schedule_kind,
            schedule_text=describe(broadcasts.schedule_of(b), tz),
            start_at=b.start_at,
            start_at_local=_local(b.start_at, tz),
            local_time=b.local_time,
            weekdays=list(b.weekdays or []),
            rrule=b.rrule,
            holidays=list(b.holidays or []),
            valid_from=b.valid_from,
            valid_until=b.valid_until,
            status=b.status,
            created_by=b.created_by,
            created_at=b.created_at,
            updated_at=b.updated_at,
            approved_by=b.approved_by,
            approved_at=b.approved_at,
        )


class AuditOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: datetime
    username: str
    action: str
    details: dict[str, Any]


class DeliveryOut(BaseModel):
    node_id: str
    status: str
    status_label: str
    started_at: datetime | None
    ended_at: datetime | None
    start_error_s: float | None
    detail: str


class ReportOut(BaseModel):
    occurrence_id: str
    broadcast_id: int
    title: str
    start_at: datetime
    start_at_local: str
    priority: str
    checked: bool
    counts: dict[str, int]
    played: int
    start_spread_s: float | None
    max_start_error_s: float | None
    deliveries: list[DeliveryOut]

    @classmethod
    def of(cls, r: deliveries.DeliveryReport, tz: ZoneInfo) -> ReportOut:
        o = r.occurrence
        return cls(
            occurrence_id=o.id,
            broadcast_id=o.broadcast_id,
            title=o.title,
            start_at=o.start_at,
            start_at_local=o.start_at.astimezone(tz).isoformat(),
            priority=o.priority,
            checked=o.checked_at is not None,
            counts=r.counts,
            played=sum(r.counts.get(s, 0) for s in ("finished", "interrupted", "started")),
            start_spread_s=r.start_spread_s,
            max_start_error_s=r.max_start_error_s,
            deliveries=[
                DeliveryOut(
                    node_id=d.node_id,
                    status=d.status,
                    status_label=deliveries.STATUS_LABELS.get(d.status, d.status),
                    started_at=d.started_at,
                    ended_at=d.ended_at,
                    detail=d.detail,
                    start_error_s=(d.started_at - o.start_at).total_seconds() if d.started_at else None,
                )
                for d in r.deliveries
            ],
        )


class OccurrenceOut(BaseModel):
    occurrence_id: str
    broadcast_id: int
    title: str
    start_at: datetime
    start_at_local: str
    duration_s: float
    priority: str
    targets: int
    command: bool


class PlayNowIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    media_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    title: str = Field("", max_length=200)
    priority: Priority = "emergency"
    volume: int = Field(100, ge=0, le=100)
    target_kind: TargetKind = "all"
    target_zones: list[str] = Field(default_factory=list)
    target_nodes: list[str] = Field(default_factory=list)
    confirm: bool = Field(False, description="Must be true for an emergency broadcast.")


class PlayNowOut(BaseModel):
    broadcast_id: int
    occurrence_id: str
    start_at: datetime
    targets: list[str]


class StopIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target_kind: TargetKind = "all"
    target_zones: list[str] = Field(default_factory=list)
    target_nodes: list[str] = Field(default_factory=list)


class HolidayOut(BaseModel):
    key: str
    name: str
    next_dates: list[str]


# -- read ----------------------------------------------------------------------------------
@router.get(
    "/broadcasts/holidays",
    response_model=list[HolidayOut],
    dependencies=[allow(*EVERYONE)],
    summary="Holidays a greeting can be set for, with their next dates",
)
def list_holidays(hub: Hub) -> list[HolidayOut]:
    today = hub.clock().astimezone(_tz(hub)).date()
    out = []
    for key, (_en, vi) in HOLIDAYS.items():
        dates = [
            d
            for y in (today.year, today.year + 1, today.year + 2)
            if (d := holiday_dates(key, y)) is not None and d >= today
        ]
        out.append(HolidayOut(key=key, name=vi, next_dates=[d.isoformat() for d in dates[:2]]))
    return out


@router.get("/broadcasts", response_model=list[BroadcastOut], dependencies=[allow(*EVERYONE)])
def list_broadcasts(
    hub: Hub,
    session: DbSession,
    status_: Literal["draft", "approved", "archived"] | None = Query(None, alias="status"),
    include_play_now: bool = False,
) -> list[BroadcastOut]:
    tz = _tz(hub)
    return [
        BroadcastOut.of(b, tz)
        for b in broadcasts.list_broadcasts(session, status=status_, include_now=include_play_now)
    ]


@router.get("/broadcasts/{broadcast_id}", response_model=BroadcastOut, dependencies=[allow(*EVERYONE)])
def get_broadcast(hub: Hub, session: DbSession, broadcast_id: RowId) -> BroadcastOut:
    return BroadcastOut.of(broadcasts.get_broadcast(session, broadcast_id=broadcast_id), _tz(hub))


@router.get(
    "/broadcasts/{broadcast_id}/audit", response_model=list[AuditOut], dependencies=[allow(*EVERYONE)]
)
def get_audit(session: DbSession, broadcast_id: RowId) -> list[BroadcastAudit]:
    return broadcasts.audit_log(session, broadcast_id=broadcast_id)


@router.get(
    "/broadcasts/{broadcast_id}/reports",
    response_model=list[ReportOut],
    dependencies=[allow(*EVERYONE)],
    summary="Delivery report of each occurrence, newest first",
)
def get_reports(hub: Hub, session: DbSession, broadcast_id: RowId) -> list[ReportOut]:
    broadcasts.get_broadcast(session, broadcast_id=broadcast_id)
    tz = _tz(hub)
    return [ReportOut.of(r, tz) for r in deliveries.broadcast_reports(session, broadcast_id=broadcast_id)]


@router.get(
    "/occurrences",
    response_model=list[OccurrenceOut],
    dependencies=[allow(*EVERYONE)],
    summary="The calendar: occurrences in [start, end) (default: the next 7 days)",
)
def list_occurrences(
    hub: Hub, session: DbSession, start: AwareDatetime | None = None, end: AwareDatetime | None = None
) -> list[OccurrenceOut]:
    start = start or hub.clock()
    if not 2000 <= start.year <= 2200 or (end is not None and not 2000 <= end.year <= 2200):
        raise HTTPException(422, "Thời điểm phải nằm trong các năm 2000–2200")
    end = end or start + timedelta(days=7)
    if end <= start or end - start > timedelta(days=62):
        raise HTTPException(422, "Khoảng thời gian phải dương và tối đa 62 ngày")
    tz = _tz(hub)
    return [
        OccurrenceOut(
            occurrence_id=o.id,
            broadcast_id=o.broadcast_id,
            title=o.title,
            start_at=o.start_at,
            start_at_local=o.start_at.astimezone(tz).isoformat(),
            duration_s=o.duration_s,
            priority=o.priority,
            targets=n,
            command=o.command,
        )
        for o, n in plans.upcoming(session, start=start, end=end)
    ]


@router.get("/occurrences/{occurrence_id}/report", response_model=ReportOut, dependencies=[allow(*EVERYONE)])
def get_report(hub: Hub, session: DbSession, occurrence_id: str) -> ReportOut:
    return ReportOut.of(deliveries.report(session, occurrence_id=occurrence_id), _tz(hub))


# -- write ---------------------------------------------------------------------------------
@router.post(
    "/broadcasts",
    response_model=BroadcastOut,
    status_code=status.HTTP_201_CREATED,
    dependencies=[allow(*EDITORS)],
    summary="Draft a broadcast",
)
def create_broadcast(hub: Hub, session: DbSession, user: CurrentUser, body: BroadcastSpec) -> BroadcastOut:
    b = broadcasts.create_broadcast(
        session, spec=body, username=user.username, now=hub.clock(), tz=_tz(hub), cfg=hub.settings.broadcasts
    )
    session.commit()
    return BroadcastOut.of(b, _tz(hub))


@router.put(
    "/broadcasts/{broadcast_id}",
    response_model=BroadcastOut,
    dependencies=[allow(*EDITORS)],
    summary="Edit a broadcast (it goes back to draft)",
)
def update_broadcast(
    hub: Hub, session: DbSession, user: CurrentUser, broadcast_id: RowId, body: BroadcastSpec
) -> BroadcastOut:
    b = broadcasts.update_broadcast(
        session,
        broadcast_id=broadcast_id,
        spec=body,
        username=user.username,
        now=hub.clock(),
        tz=_tz(hub),
        cfg=hub.settings.broadcasts,
    )
    session.commit()
    out = BroadcastOut.of(b, _tz(hub))
    broadcast_jobs.after_change(hub)
    return out


@router.post(
    "/broadcasts/{broadcast_id}/approve", response_model=BroadcastOut, dependencies=[allow(*APPROVERS)]
)
def approve_broadcast(hub: Hub, session: DbSession, user: CurrentUser, broadcast_id: RowId) -> BroadcastOut:
    b = broadcasts.approve_broadcast(
        session,
        broadcast_id=broadcast_id,
        username=user.username,
        now=hub.clock(),
        tz=_tz(hub),
        cfg=hub.settings.broadcasts,
    )
    session.commit()
    out = BroadcastOut.of(b, _tz(hub))
    broadcast_jobs.after_change(hub)
    return out


@router.delete(
    "/broadcasts/{broadcast_id}",
    response_model=BroadcastOut,
    dependencies=[allow(*EDITORS)],
    summary="Archive a broadcast: its future occurrences leave the plans",
)
def archive_broadcast(hub: Hub, session: DbSession, user: CurrentUser, broadcast_id: RowId) -> BroadcastOut:
    b = broadcasts.archive_broadcast(
        session, broadcast_id=broadcast_id, username=user.username, now=hub.clock()
    )
    session.commit()
    out = BroadcastOut.of(b, _tz(hub))
    broadcast_jobs.after_change(hub)
    return out


@router.post(
    "/broadcasts/play-now",
    response_model=PlayNowOut,
    status_code=status.HTTP_201_CREATED,
    dependencies=[allow(*APPROVERS)],
    summary="Phát ngay / khẩn cấp: a command to every target",
)
def play_now(hub: Hub, session: DbSession, user: CurrentUser, body: PlayNowIn) -> PlayNowOut:
    if body.priority == "emergency" and not body.confirm:
        raise HTTPException(
            422,
            "Phát khẩn cấp sẽ ngắt mọi bản tin đang phát: cần xác nhận (confirm = true).",
        )
    if hub.mqtt is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "Hub chưa kết nối MQTT, không gửi được lệnh")
    now = hub.clock()
    cfg = hub.settings.broadcasts
    p = plans.create_play_now(
        session,
        media_sha256=body.media_sha256,
        title=body.title,
        priority=body.priority,
        volume=body.volume,
        target_kind=body.target_kind,
        target_zones=body.target_zones,
        target_nodes=body.target_nodes,
        username=user.username,
        now=now,
        cfg=cfg,
    )
    session.commit()
    command = plans.play_now_command(p, now=now, cfg=cfg).to_bytes()
    for node in p.targets:
        hub.mqtt.publish(hub.topics.command(node, "play-now"), command, qos=1)
    log.warning(
        "play-now %s (%s) by %s to %d node(s)", p.occurrence.id, body.priority, user.username, len(p.targets)
    )
    broadcast_jobs.after_change(hub)
    return PlayNowOut(
        broadcast_id=p.broadcast.id,
        occurrence_id=p.occurrence.id,
        start_at=p.occurrence.start_at,
        targets=p.targets,
    )


@router.post(
    "/broadcasts/stop",
    response_model=list[str],
    dependencies=[allow(*APPROVERS)],
    summary="Stop what the targets play now (and their queued play-now items)",
)
def stop(hub: Hub, session: DbSession, user: CurrentUser, body: StopIn) -> list[str]:
    if hub.mqtt is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "Hub chưa kết nối MQTT, không gửi được lệnh")
    targets = plans.stop_targets(
        session, target_kind=body.target_kind, target_zones=body.target_zones, target_nodes=body.target_nodes
    )
    now = hub.clock()
    command = Command(
        args={}, issued_at=now, expires_at=now + timedelta(seconds=hub.settings.broadcasts.command_ttl_s)
    ).to_bytes()
    for node in targets:
        hub.mqtt.publish(hub.topics.command(node, "stop"), command, qos=1)
    log.warning("stop sent by %s to %d node(s)", user.username, len(targets))
    return targets
