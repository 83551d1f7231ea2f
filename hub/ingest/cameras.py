"""``node/{node}/camera/{camera}/health`` (retained): state, history and the camera alarm."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from thanthien.hub.context import HubContext
from thanthien.hub.ingest.base import Incoming, Outcome, accept
from thanthien.hub.services import cameras, health
from thanthien.protocol.payloads import CameraHealth


def handle(session: Session, ctx: HubContext, batch: list[Incoming], out: Outcome) -> None:
    tz = ZoneInfo(ctx.settings.hub.timezone)
    for msg in batch:
        if not msg.payload:
            continue  # retained state cleared (camera removed)
        cam = accept(session, msg, CameraHealth, out)
        if cam is None:
            continue
        health.seen(session, node_id=cam.node, now=msg.received_at, notify=ctx.notify)
        cameras.apply_health(session, health=cam, now=msg.received_at, tz=tz, notify=ctx.notify,
                             alarm_after_s=ctx.settings.cameras.alarm_after_s)
