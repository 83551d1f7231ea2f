"""CCTV health: every camera's state, its history and its uptime per day or month."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, status
from pydantic import AwareDatetime

from thanthien.hub.api.deps import CurrentUser, DbSession, Hub, allow
from thanthien.hub.api.schemas import CameraOut, CameraPeriodOut, CameraUptimeOut
from thanthien.hub.roles import CAMERA_READERS
from thanthien.hub.services import cameras

router = APIRouter(prefix="/cameras", tags=["cameras"], dependencies=[allow(*CAMERA_READERS)])

MAX_UPTIME_DAYS = 3 * 366


@router.get("", response_model=list[CameraOut],
            summary="Current state of every camera (unknown while its node is offline or lost)")
def list_cameras(session: DbSession, user: CurrentUser) -> list[CameraOut]:
    return [CameraOut.model_validate({**_fields(s), "state_label": cameras.LABELS[s.state]})
            for s in cameras.list_status(session, viewer=user)]


def _fields(status_row: object) -> dict[str, object]:
    names = ("node_id", "camera", "state", "reason", "since", "reported_at", "connect_ms", "brightness")
    return {n: getattr(status_row, n) for n in names}


@router.get("/uptime", response_model=list[CameraUptimeOut],
            summary="Uptime per camera per local day or month over [start, end)")
def camera_uptime(hub: Hub, session: DbSession, user: CurrentUser, start: date, end: date,
                  granularity: Literal["day", "month"] = "day", node_id: str | None = None,
                  camera: str | None = None) -> list[CameraUptimeOut]:
    if end <= start:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "end must be after start")
    if (end - start).days > MAX_UPTIME_DAYS:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"at most {MAX_UPTIME_DAYS} days per request")
    rows = cameras.uptime(session, viewer=user, start=start, end=end, granularity=granularity,
                          tz=ZoneInfo(hub.settings.hub.timezone), now=hub.clock(), node_id=node_id,
                          camera=camera)
    return [CameraUptimeOut(node_id=r.node_id, camera=r.camera, period=r.period.isoformat(),
                            uptime_pct=r.uptime_pct, seconds=r.seconds, unknown_s=r.unknown_s)
            for r in rows]


@router.get("/{node_id}/{camera}/history", response_model=list[CameraPeriodOut],
            summary="The camera's states over a period; default the last 7 days")
def camera_history(hub: Hub, session: DbSession, user: CurrentUser, node_id: str, camera: str,
                   start: AwareDatetime | None = None, end: AwareDatetime | None = None
                   ) -> list[CameraPeriodOut]:
    end = end or hub.clock()
    start = start or end - timedelta(days=7)
    return [CameraPeriodOut.model_validate(p)
            for p in cameras.history(session, viewer=user, node_id=node_id, camera=camera, start=start,
                                     end=end)]
