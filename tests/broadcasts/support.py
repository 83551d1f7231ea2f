"""Helpers for the broadcast tests: registry rows for speaker nodes, a library row, specs."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from thanthien.hub.db.models import MediaItem
from thanthien.hub.roles import LEADER, OFFICER, SYSTEM, ActingUser
from thanthien.hub.services import registry
from thanthien.hub.services.broadcasts import BroadcastSpec

TZ_NAME = "Asia/Ho_Chi_Minh"
DRAFTER = ActingUser("can-bo", OFFICER)
"""The officer who drafts in service tests."""
APPROVER = ActingUser("lanh-dao", LEADER)
"""The leader who approves in service tests (not the drafter: four eyes)."""


def speakers(session: Session, zones: dict[str, list[str]]) -> None:
    """Zones (code -> node ids), each node with one speaker device serving its zone."""
    for zone, nodes in zones.items():
        registry.create_zone(session, actor=SYSTEM, code=zone, name=f"Bản {zone}")
        for node in nodes:
            registry.register_node(session, actor=SYSTEM, node_id=node, name=f"Cụm loa {node}")
            registry.upsert_device(session, actor=SYSTEM, node_id=node, code="loa", kind="speaker", zone=zone)
    session.flush()


def media_row(session: Session, now: datetime, *, name: str = "ban-tin", duration_s: float = 60.0) -> str:
    sha = hashlib.sha256(name.encode()).hexdigest()
    session.add(
        MediaItem(
            sha256=sha,
            title=name,
            duration_s=duration_s,
            size_bytes=1000,
            source_format="WAV",
            source_sha256=sha,
            created_at=now,
            created_by="officer",
        )
    )
    session.flush()
    return sha


def spec(sha: str, **over: Any) -> BroadcastSpec:
    values: dict[str, Any] = {
        "title": "Bản tin sáng",
        "media_sha256": sha,
        "schedule_kind": "daily",
        "local_time": "07:00",
    }
    values.update(over)
    return BroadcastSpec(**values)
