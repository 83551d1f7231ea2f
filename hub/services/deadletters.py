"""Messages the hub could not accept: kept with the reason, counted, never retried."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from thanthien.hub.db.models import DeadLetter
from thanthien.hub.tenancy import Tenant, require_province

log = logging.getLogger(__name__)

KEEP_BYTES = 4096


def record_dead_letter(session: Session, *, topic: str, kind: str, node_id: str | None, reason: str,
                       payload: bytes, now: datetime) -> DeadLetter:
    row = DeadLetter(received_at=now, topic=topic[:500], kind=kind, node_id=node_id, reason=reason,
                     size=len(payload), payload=payload[:KEEP_BYTES])
    session.add(row)
    log.warning("dead letter from %s: %s", topic, reason)
    return row


def list_dead_letters(session: Session, *, viewer: Tenant, limit: int = 100,
                      offset: int = 0) -> list[DeadLetter]:
    """Messages the hub refused, newest first: the hub's own, for the province only."""
    require_province(viewer)
    query = select(DeadLetter).order_by(DeadLetter.id.desc()).limit(limit).offset(offset)
    return list(session.scalars(query))


def count_by_kind(session: Session, *, viewer: Tenant) -> dict[str, int]:
    require_province(viewer)
    rows = session.execute(select(DeadLetter.kind, func.count()).group_by(DeadLetter.kind)).all()
    return {kind: int(n) for kind, n in rows}
