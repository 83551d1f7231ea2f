"""What the live-update stream watches: a cheap fingerprint per topic, and its short mark.

A page puts the marks of its live regions in the HTML it renders; the stream starts from
them, so it sends a fragment only when something changed after the page was rendered (and
misses nothing that changed in between)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from thanthien.hub.context import HubContext
from thanthien.hub.web import periods, queries


def _today_start(hub: HubContext) -> Any:
    tz = hub.settings.hub.timezone
    day = periods.today(hub.clock(), tz)
    return periods.Period(day, day, tz).start


FINGERPRINTS: dict[str, Callable[[Session, HubContext], Any]] = {
    "health-nodes": lambda s, _h: queries.health_fingerprint(s),
    "health-alarms": lambda s, _h: queries.health_fingerprint(s),
    "today": lambda s, h: (_today_start(h), queries.presses_fingerprint(s, since=_today_start(h))),
    "leader-alarms": lambda s, _h: queries.leader_alarms_fingerprint(s),
}


def mark(session: Session, hub: HubContext, topic: str) -> str:
    """A short digest of the topic's fingerprint (the date too, so relative times refresh daily)."""
    value = repr((hub.clock().date(), FINGERPRINTS[topic](session, hub)))
    return hashlib.sha1(value.encode()).hexdigest()[:16]


def marks(session: Session, hub: HubContext, *topics: str) -> dict[str, str]:
    return {t: mark(session, hub, t) for t in topics}
