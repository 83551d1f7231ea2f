"""What a node says about itself beside its events: the config version it runs
(``node/{node}/config/status``, retained) and the last picture of a camera whose health changed
(``node/{node}/camera/{camera}/thumbnail``). Neither is acked (nothing is kept in an outbox)."""

from __future__ import annotations

import base64

from sqlalchemy import select
from sqlalchemy.orm import Session

from thanthien.hub.context import HubContext
from thanthien.hub.db.models import CameraThumbnailRow, Node
from thanthien.hub.ingest.base import Incoming, Outcome, accept, dead_letter
from thanthien.hub.services import node_config, registry, releases
from thanthien.protocol.payloads import CameraThumbnail, ConfigStatus, ReleaseStatus


def handle_config_status(session: Session, ctx: HubContext, batch: list[Incoming], out: Outcome) -> None:
    for msg in batch:
        if not msg.payload:
            continue  # retained status cleared
        status = accept(session, msg, ConfigStatus, out)
        if status is not None:
            node_config.record_status(session, status=status, now=msg.received_at)


def handle_release_status(session: Session, ctx: HubContext, batch: list[Incoming], out: Outcome) -> None:
    for msg in batch:
        if not msg.payload:
            continue
        status = accept(session, msg, ReleaseStatus, out)
        if status is not None:
            releases.record_status(session, status=status, now=msg.received_at)


def handle_thumbnail(session: Session, ctx: HubContext, batch: list[Incoming], out: Outcome) -> None:
    for msg in batch:
        thumb = accept(session, msg, CameraThumbnail, out)
        if thumb is None:
            continue
        topic_camera = parsed.camera if (parsed := ctx.topics.parse(msg.topic)) else None
        if topic_camera is not None and thumb.camera != topic_camera:
            dead_letter(session, msg, f"camera {thumb.camera!r} in the payload does not match topic camera "
                                      f"{topic_camera!r}", out)
            continue
        if session.get(Node, thumb.node) is None:
            dead_letter(session, msg, f"thumbnail from node {thumb.node!r}, which the hub does not know", out)
            continue
        declared = registry.declared_devices(session, node_ids=[thumb.node], kind="camera")
        if thumb.node in declared and thumb.camera not in declared[thumb.node]:
            dead_letter(session, msg, f"camera {thumb.camera!r} is not a camera the registry places on node "
                                      f"{thumb.node!r}", out)
            continue
        row = session.scalar(select(CameraThumbnailRow).where(CameraThumbnailRow.node_id == thumb.node,
                                                              CameraThumbnailRow.camera == thumb.camera))
        if row is None:
            row = CameraThumbnailRow(node_id=thumb.node, camera=thumb.camera)
            session.add(row)
        elif row.taken_at > thumb.at:
            continue  # a late picture never replaces a newer one
        row.state, row.taken_at, row.received_at = thumb.state, thumb.at, msg.received_at
        row.jpeg = base64.b64decode(thumb.jpeg_b64)
