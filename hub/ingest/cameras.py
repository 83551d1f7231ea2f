"""``node/{node}/camera/{camera}/health`` (retained): state, history and the camera alarm, for
the cameras the registry declares on the node."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from thanthien.hub.context import HubContext
from thanthien.hub.ingest.base import Incoming, Outcome, Refused, accept, dead_letter, refuse
from thanthien.hub.services import cameras, health
from thanthien.protocol.payloads import CameraHealth


def handle(session: Session, ctx: HubContext, batch: list[Incoming], out: Outcome) -> None:
    tz = ZoneInfo(ctx.settings.hub.timezone)
    reports: list[tuple[Incoming, CameraHealth]] = []
    for msg in batch:
        if not msg.payload:
            continue  # retained state cleared (camera removed)
        cam = accept(session, msg, CameraHealth, out)
        if cam is None:
            continue
        topic_camera = parsed.camera if (parsed := ctx.topics.parse(msg.topic)) else None
        if topic_camera is not None and cam.camera != topic_camera:
            dead_letter(session, msg, f"camera {cam.camera!r} in the payload does not match topic camera "
                                      f"{topic_camera!r}", out)
            continue
        health.seen(session, node_id=cam.node, now=msg.received_at, notify=ctx.notify)
        reports.append((msg, cam))
    if not reports:
        return
    claims = cameras.check_claims(session, reports=[cam for _, cam in reports])
    refuse(session, ctx, [Refused(msg, reason) for (msg, _), reason in zip(reports, claims, strict=True)
                          if reason is not None], out)
    for (msg, cam), reason in zip(reports, claims, strict=True):
        if reason is None:
            cameras.apply_health(session, health=cam, now=msg.received_at, tz=tz, notify=ctx.notify,
                                 alarm_after_s=ctx.settings.cameras.alarm_after_s)
