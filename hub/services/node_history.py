"""What the node page shows of a node's past: its state changes (``node_state_changes``, written
by every flush that changes a node's state, see ``db/models.py``) and the last picture each of
its cameras sent with a change of health."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from thanthien.hub.db.models import CameraThumbnailRow, NodeStateChange
from thanthien.hub.services import registry
from thanthien.hub.services.errors import NotFound
from thanthien.hub.tenancy import Tenant


@dataclass(frozen=True)
class StateChange:
    at: datetime
    state: str
    reason: str
    session: int


def state_history(session: Session, *, viewer: Tenant, node_id: str, start: datetime, end: datetime,
                  limit: int = 500) -> list[StateChange]:
    """The node's state changes in [start, end), newest first (a node of a commune ``viewer``
    does not reach is not found)."""
    registry.get_node(session, node_id=node_id, viewer=viewer)
    rows = session.scalars(select(NodeStateChange).where(
        NodeStateChange.node_id == node_id, NodeStateChange.at >= start, NodeStateChange.at < end)
        .order_by(NodeStateChange.at.desc(), NodeStateChange.id.desc()).limit(limit))
    return [StateChange(r.at, r.state, r.reason, r.session) for r in rows]


@dataclass(frozen=True)
class Thumbnail:
    camera: str
    state: str
    taken_at: datetime
    jpeg: bytes


def thumbnails(session: Session, *, viewer: Tenant, node_id: str) -> dict[str, Thumbnail]:
    """Camera -> its last picture (cameras that sent none are left out); a node of a commune
    ``viewer`` does not reach is not found."""
    registry.get_node(session, node_id=node_id, viewer=viewer)
    rows = session.scalars(select(CameraThumbnailRow).where(CameraThumbnailRow.node_id == node_id))
    return {r.camera: Thumbnail(r.camera, r.state, r.taken_at, r.jpeg) for r in rows}


def thumbnail(session: Session, *, viewer: Tenant, node_id: str, camera: str) -> Thumbnail:
    found = thumbnails(session, viewer=viewer, node_id=node_id).get(camera)
    if found is None:
        raise NotFound(f"Camera {camera} của thiết bị {node_id} chưa gửi hình nào.")
    return found
