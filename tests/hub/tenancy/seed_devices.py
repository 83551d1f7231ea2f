"""The devices part of a commune for the tenancy walk (filled in by the devices room's work)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session


def seed(session: Session, *, commune: str, prefix: str, marker: str, now: datetime,
         registry: dict[str, Any]) -> dict[str, Any]:
    """Rows of this room in the commune (named with ``marker``); the ids the walk fills paths with."""
    return {}
