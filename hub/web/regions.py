"""The live regions of the pages: what each shows, who may follow it, and its fingerprint.

A region is a part of a page (``data-live="<name>"``) that the live stream (``routes/events.py``)
re-renders when its fingerprint in the database changes, so it sees changes made by any hub
process. A page puts the marks of its regions in the HTML it renders; the stream starts from
them, so it sends a fragment only when something changed after the page was rendered (and
misses nothing that changed in between). The context builders here are the ones the pages
render with too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from thanthien.hub.context import HubContext
from thanthien.hub.roles import DEVICE_STAFF, LEADER, REPORT_READERS, Role
from thanthien.hub.services import alarms, health, registry, reports
from thanthien.hub.services.ratings import RatingFilter
from thanthien.hub.services.reports import LEVEL_LABELS, LEVELS
from thanthien.hub.web import periods, queries
from thanthien.hub.web.auth import UiUser


# -- what the regions show -------------------------------------------------------------------
def health_context(session: Session, hub: HubContext, user: UiUser) -> dict[str, Any]:
    """The health page's nodes and the alarms this user handles."""
    return {
        "nodes": queries.node_overview(session, viewer=user),
        "alarms": alarms.alarms_for(session, viewer=user, active=True),
        "counts": health.state_counts(session, viewer=user),
        "camera_counts": queries.camera_counts(session, viewer=user),
        "thresholds": hub.thresholds,
        "now": hub.clock(),
        "tz": hub.settings.hub.timezone,
        "user": user,
        "back": "/ui/health",
    }


def today_context(session: Session, hub: HubContext, user: UiUser) -> dict[str, Any]:
    """Today's presses per counter."""
    tz = hub.settings.hub.timezone
    day = periods.today(hub.clock(), tz)
    today = periods.Period(day, day, tz)
    rows = reports.summarize(session, viewer=user, group_by=["counter"],
                             flt=RatingFilter(start=today.start, end=today.end), tz=tz)
    return {"today_rows": rows, "today_totals": reports.Totals.of(rows), "today": day,
            "counter_names": {c.code: c.name for c in registry.list_counters(session, viewer=user)},
            "levels": LEVELS, "level_labels": LEVEL_LABELS, "tz": tz, "now": hub.clock(), "user": user}


def rating_alarms_context(session: Session, hub: HubContext, user: UiUser) -> dict[str, Any]:
    """The open rating alarms (negative-press spikes) leaders acknowledge."""
    return {"alarms": alarms.list_alarms(session, viewer=user, active=True, audience=LEADER),
            "back": "/ui/satisfaction", "tz": hub.settings.hub.timezone, "now": hub.clock(), "user": user}


# -- fingerprints ----------------------------------------------------------------------------
def _today_start(hub: HubContext) -> Any:
    tz = hub.settings.hub.timezone
    day = periods.today(hub.clock(), tz)
    return periods.Period(day, day, tz).start


def _health(session: Session, _hub: HubContext, user: UiUser) -> Any:
    return queries.health_fingerprint(session, viewer=user)


def _today(session: Session, hub: HubContext, _user: UiUser) -> Any:
    return _today_start(hub), queries.presses_fingerprint(session, since=_today_start(hub))


def _rating_alarms(session: Session, _hub: HubContext, user: UiUser) -> Any:
    return queries.leader_alarms_fingerprint(session, viewer=user)


# -- the table -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Region:
    roles: tuple[Role, ...]
    template: str
    context: Callable[[Session, HubContext, UiUser], dict[str, Any]]
    fingerprint: Callable[[Session, HubContext, UiUser], Any]
    """What changes when the region would show something new, of what ``user`` reaches only (a
    change in another commune does not re-render it)."""


REGIONS: dict[str, Region] = {
    "health-nodes": Region(DEVICE_STAFF, "partials/nodes.html", health_context, _health),
    "health-alarms": Region(DEVICE_STAFF, "partials/alarms.html", health_context, _health),
    "today": Region(REPORT_READERS, "partials/today.html", today_context, _today),
    "leader-alarms": Region(REPORT_READERS, "partials/alarms.html", rating_alarms_context, _rating_alarms),
}


def mark(session: Session, hub: HubContext, name: str, user: UiUser) -> str:
    """A short digest of the region's fingerprint (the date too, so relative times refresh daily)."""
    value = repr((hub.clock().date(), REGIONS[name].fingerprint(session, hub, user)))
    return hashlib.sha1(value.encode()).hexdigest()[:16]


def marks(session: Session, hub: HubContext, user: UiUser, *names: str) -> dict[str, str]:
    return {n: mark(session, hub, n, user) for n in names}
