"""Live updates by server-sent events.

The stream polls cheap fingerprints in the database (so it sees changes made by any hub
process: an ingest worker, the scheduler, another API worker) and, when one changes, sends
the re-rendered fragment of that part of the page as a named event. The page's script swaps
the fragment into the element with the same ``data-live`` name.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from thanthien.hub.context import HubContext
from thanthien.hub.web.auth import AnyUser, UiUser, hub_of, session_user
from thanthien.hub.web.regions import REGIONS, mark
from thanthien.hub.web.templating import render_fragment

log = logging.getLogger(__name__)
router = APIRouter()

MAX_STREAM_S = 15.0
RETRY_MS = 1000
MARK = re.compile(r"^[0-9a-f]{16}$")


def _poll(hub: HubContext, user: UiUser, names: list[str], seen: dict[str, str]) -> list[tuple[str, str]]:
    """The (topic, fragment) pairs whose mark changed since the page or the last poll."""
    out = []
    with hub.db.new_session(write=False) as session:
        for name in names:
            now = mark(session, hub, name, user)
            if seen.get(name) == now:
                continue
            seen[name] = now
            region = REGIONS[name]
            out.append((name, render_fragment(region.template, {**region.context(session, hub, user),
                                                                "csrf": user.csrf})))
    return out


def requested(topics: str, role: str) -> dict[str, str]:
    """The regions (with the page's marks) this role may follow, from ``name:mark,…``."""
    asked = {name: m for name, _, m in (part.partition(":") for part in topics.split(",") if part)}
    return {n: (m if MARK.match(m) else "") for n, m in asked.items()
            if n in REGIONS and role in REGIONS[n].roles}


def sse(event: str, data: str, event_id: str) -> str:
    lines = "".join(f"data: {line}\n" for line in data.splitlines() or [""])
    return f"event: {event}\nid: {event_id}\n{lines}\n"


@router.get("/events")
async def events(request: Request, user: AnyUser, topics: str = "") -> StreamingResponse:
    """``topics`` is ``name:mark,…`` with the marks the page was rendered with.

    A stream lasts at most MAX_STREAM_S (a hub that stops is not held up by open pages); the
    browser reconnects by itself and sends the marks of the last event as Last-Event-ID, so
    nothing is sent twice or missed across reconnects."""
    hub = hub_of(request)
    poll_s: float = request.app.state.ui_poll_s
    asked = requested(topics, user.role)
    resumed = requested(request.headers.get("last-event-id", ""), user.role)
    asked.update({n: m for n, m in resumed.items() if m})
    names = list(asked)

    async def stream() -> AsyncIterator[str]:
        seen = {n: m for n, m in asked.items() if m}
        ends = anyio.current_time() + MAX_STREAM_S
        yield f"retry: {RETRY_MS}\n\n"
        while anyio.current_time() < ends and not await request.is_disconnected():
            try:
                if await anyio.to_thread.run_sync(session_user, request) is None:
                    break  # logged out, disabled or password reset: the stream ends with the session
                changed = await anyio.to_thread.run_sync(_poll, hub, user, names, seen)
            except Exception as exc:  # a database hiccup must not end the stream; the next poll retries
                log.warning("live updates: poll failed: %s", exc)
                changed = []
            marks = ",".join(f"{n}:{m}" for n, m in seen.items())
            for name, html in changed:
                yield sse(name, html, marks)
            await anyio.sleep(poll_s)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
