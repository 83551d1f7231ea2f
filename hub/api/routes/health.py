"""Telemetry history, alarms and dead letters: what IT staff watch."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from thanthien.hub.api.deps import MAX_ROW_ID, CurrentUser, DbSession, Hub, RowId, allow
from thanthien.hub.api.schemas import AlarmOut, DeadLetterOut, TelemetryHourlyOut, TelemetryOut
from thanthien.hub.roles import ALARM_HANDLERS, DEVICE_STAFF
from thanthien.hub.services import alarms, deadletters, health

router = APIRouter(tags=["health"])


@router.get("/nodes/{node_id}/telemetry", response_model=list[TelemetryOut],
            dependencies=[allow(*DEVICE_STAFF)],
            summary="Raw telemetry (kept for the retention period); default the last 24 hours")
def telemetry(hub: Hub, session: DbSession, user: CurrentUser, node_id: str,
              start: AwareDatetime | None = None,
              end: AwareDatetime | None = None) -> list[TelemetryOut]:
    end = end or hub.clock()
    start = start or end - timedelta(days=1)
    return [TelemetryOut.model_validate(t)
            for t in health.telemetry_history(session, viewer=user, node_id=node_id, start=start, end=end)]


@router.get("/nodes/{node_id}/telemetry/hourly", response_model=list[TelemetryHourlyOut],
            dependencies=[allow(*DEVICE_STAFF)], summary="Hourly roll-ups; default the last 30 days")
def telemetry_hourly(hub: Hub, session: DbSession, user: CurrentUser, node_id: str,
                     start: AwareDatetime | None = None,
                     end: AwareDatetime | None = None) -> list[TelemetryHourlyOut]:
    end = end or hub.clock()
    start = start or end - timedelta(days=30)
    return [TelemetryHourlyOut.model_validate(t)
            for t in health.hourly_history(session, viewer=user, node_id=node_id, start=start, end=end)]


@router.get("/alarms", response_model=list[AlarmOut], dependencies=[allow(*ALARM_HANDLERS)],
            summary="Alarms (IT staff see device alarms, leaders rating alarms, admins all)")
def list_alarms(session: DbSession, user: CurrentUser, active: bool | None = None,
                limit: Annotated[int, Query(ge=1, le=1000)] = 200,
                offset: Annotated[int, Query(ge=0, le=MAX_ROW_ID)] = 0) -> list[AlarmOut]:
    return [AlarmOut.model_validate(a)
            for a in alarms.alarms_for(session, viewer=user, active=active, limit=limit, offset=offset)]


@router.post("/alarms/{alarm_id}/acknowledge", response_model=AlarmOut,
             dependencies=[allow(*ALARM_HANDLERS)],
             summary="Xác nhận cảnh báo: stops the reminders; the alarm clears when its condition ends")
def acknowledge(hub: Hub, session: DbSession, user: CurrentUser, alarm_id: RowId) -> AlarmOut:
    alarm = alarms.acknowledge_alarm(session, alarm_id=alarm_id, actor=user, now=hub.clock(),
                                     notify=hub.notify)
    session.commit()
    return AlarmOut.model_validate(alarm)


@router.get("/dead-letters", response_model=list[DeadLetterOut], dependencies=[allow(*DEVICE_STAFF)])
def list_dead_letters(session: DbSession, user: CurrentUser,
                      limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                      offset: Annotated[int, Query(ge=0, le=MAX_ROW_ID)] = 0) -> list[DeadLetterOut]:
    return [DeadLetterOut.model_validate(d)
            for d in deadletters.list_dead_letters(session, viewer=user, limit=limit, offset=offset)]


@router.get("/dead-letters/counts",
            dependencies=[allow(*DEVICE_STAFF)], summary="Dead letters per topic kind")
def dead_letter_counts(session: DbSession, user: CurrentUser) -> dict[str, int]:
    return deadletters.count_by_kind(session, viewer=user)
