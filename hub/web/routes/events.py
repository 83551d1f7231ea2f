"""Live updates by server-sent events.

The stream polls cheap fingerprints in the database (so it sees changes made by any hub
process: an ingest worker, the scheduler, another API worker) and, when one changes, sends
the re-rendered fragment of that part of the page as a named event. The page's script swaps
the fragment into the element with the same ``data-live`` name.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from thanthien.hub.context import HubContext
from thanthien.hub.web import periods, queries
from thanthien.hub.web.auth import AnyUser, UiUser, hub_of, session_user
from thanthien.hub.web.routes import health, satisfaction
from thanthien.hub.web.templating import render_fragment

log = logging.getLogger(__name__)
router = APIRouter()

KEEPALIVE_S = 15.0


def _today_start(hub: HubContext) -> datetime:
    tz = hub.settings.hub.timezone
    day = periods.today(hub.clock(), tz)
    return periods.Period(day, day, tz).start


@dataclass(frozen=True)
class Topic:
    roles: tuple[str, ...]
    fingerprint: Callable[[Session, HubContext], Any]
    template: str
    context: Callable[[Session, HubContext, UiUser], dict[str, Any]]


TOPICS: dict[str, Topic] = {
    "health-nodes": Topic(("admin", "it"), lambda s, _h: queries.health_fingerprint(s),
                          "partials/nodes.html", health.live_context),
    "health-alarms": Topic(("admin", "it"), lambda s, _h: queries.health_fingerprint(s),
                           "partials/alarms.html", health.live_context),
    "today": Topic(("admin", "leader"), lambda s, h: queries.presses_fingerprint(s, since=_today_start(h)),
                   "partials/today.html", satisfaction.today_context),
    "leader-alarms": Topic(("admin", "leader"), lambda s, _h: queries.leader_alarms_fingerprint(s),
                           "partials/alarms.html", satisfaction.alarms_context),
}


def _poll(hub: HubContext, user: UiUser, names: list[str], seen: dict[str, Any]) -> list[tuple[str, str]]:
    """The (topic, fragment) pairs whose fingerprint changed since the last poll."""
    out = []
    with hub.db.new_session(write=False) as session:
        for name in names:
            topic = TOPICS[name]
            mark = (hub.clock().date(), topic.fingerprint(session, hub))
            if seen.get(name) == mark:
                continue
            seen[name] = mark
            out.append((name, render_fragment(topic.template, {**topic.context(session, hub, user),
                                                               "csrf": user.csrf})))
    return out


def sse(event: str, data: str) -> str:
    lines = "".join(f"data: {line}\n" for line in data.splitlines() or [""])
    return f"event: {event}\n{lines}\n"


@router.get("/events")
async def events(request: Request, user: AnyUser, topics: str = "") -> StreamingResponse:
    hub = hub_of(request)
    poll_s: float = request.app.state.ui_poll_s
    names = [n for n in dict.fromkeys(topics.split(",")) if n in TOPICS and user.role in TOPICS[n].roles]

    async def stream() -> AsyncIterator[str]:
        seen: dict[str, Any] = {}
        quiet = 0.0
        yield "retry: 3000\n\n"
        while not await request.is_disconnected():
            try:
                if await anyio.to_thread.run_sync(session_user, request) is None:
                    break  # logged out, disabled or password reset: the stream ends with the session
                changed = await anyio.to_thread.run_sync(_poll, hub, user, names, seen)
            except Exception as exc:  # a database hiccup must not end the stream; the next poll retries
                log.warning("live updates: poll failed: %s", exc)
                changed = []
            for name, html in changed:
                yield sse(name, html)
            quiet = 0.0 if changed else quiet + poll_s
            if quiet >= KEEPALIVE_S:
                quiet = 0.0
                yield ": keep-alive\n\n"
            await anyio.sleep(poll_s)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
