"""``node/{node}/camera/{camera}/health`` (retained): a camera alarm while it is not ok."""

from __future__ import annotations

from sqlalchemy.orm import Session

from thanthien.hub.context import HubContext
from thanthien.hub.ingest.base import Incoming, Outcome, accept
from thanthien.hub.services import alarms, health
from thanthien.protocol.payloads import CameraHealth

LABELS = {"down": "mất tín hiệu", "frozen": "đứng hình", "black": "màn hình đen", "degraded": "chập chờn"}


def handle(session: Session, ctx: HubContext, batch: list[Incoming], out: Outcome) -> None:
    for msg in batch:
        if not msg.payload:
            continue  # retained state cleared (camera removed)
        cam = accept(session, msg, CameraHealth, out)
        if cam is None:
            continue
        health.seen(session, node_id=cam.node, now=msg.received_at, notify=ctx.notify)
        subject = f"{cam.node}/{cam.camera}"
        if cam.state == "ok":
            alarms.clear_alarm(session, kind="camera_down", subject=subject, now=msg.received_at,
                               notify=ctx.notify)
            continue
        severity: alarms.Severity = "warning" if cam.state == "degraded" else "major"
        alarms.raise_alarm(session, kind="camera_down", subject=subject, severity=severity,
                           now=msg.received_at, notify=ctx.notify,
                           message=f"Camera {cam.camera} ({cam.node}) {LABELS[cam.state]}: {cam.reason}",
                           details={"node": cam.node, "camera": cam.camera, "state": cam.state,
                                    "since": cam.since.isoformat()})
