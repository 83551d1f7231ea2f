"""Phát trực tiếp: the live announcement page and its WebSocket.

The page (``GET /ui/live``) has the zones, the priority and a hold-to-talk button; its script
takes the microphone (getUserMedia), resamples it to 16 kHz 16-bit mono and sends it over
``/ui/live/ws``. The socket is thin: it authenticates the session cookie and the page's CSRF
token, then calls ``services/live.py`` to open and close the broadcast log entry and hands
the audio to a :class:`~thanthien.hub.live_relay.LiveRelay` that sends it to the speakers.

Messages: the page sends one JSON text first (``csrf``, ``target_kind``, ``target_zones``,
``target_nodes``, ``priority``, ``title``), then binary audio, then ``{"end": true}`` (or just
closes); the hub answers ``{"state": "open", "occurrence_id", "broadcast_id", "targets",
"lead_s"}``, ``{"state": "refused", "message"}`` or, at the end, ``{"state": "ended",
"duration_s", "recorded_s"}``.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from thanthien.hub.context import HubContext
from thanthien.hub.live_relay import LiveRelay
from thanthien.hub.roles import BROADCAST_APPROVERS, LIVE_SPEAKERS
from thanthien.hub.services import live, registry
from thanthien.hub.services.broadcasts import speaker_nodes
from thanthien.hub.services.errors import ServiceError
from thanthien.hub.web.auth import COOKIE, Require, UiUser, csrf_for, hub_of, session_user
from thanthien.hub.web.templating import render

log = logging.getLogger(__name__)

router = APIRouter()
Speaker = Annotated[UiUser, Depends(Require(*LIVE_SPEAKERS))]
PRIORITY_LABELS = {"normal": "Thông thường", "priority": "Ưu tiên", "emergency": "Khẩn cấp"}


@router.get("/live", response_class=HTMLResponse)
def live_page(request: Request, user: Speaker) -> Response:
    hub = hub_of(request)
    with hub.db.session(write=False) as session:
        zones = sorted(registry.list_zones(session, viewer=user, active=True), key=lambda z: (z.name, z.code))
        context = {
            "zones": zones,
            "speakers": sorted(speaker_nodes(session, within=user)),
            "priorities": {k: v for k, v in PRIORITY_LABELS.items()
                           if k != "emergency" or user.role in BROADCAST_APPROVERS},
            "recent": live.recent(session, viewer=user),
        }
        return render(request, "live.html", context, user=user)


@router.websocket("/live/ws")
async def live_socket(ws: WebSocket) -> None:
    hub = hub_of(ws)  # type: ignore[arg-type]
    user = session_user(ws)  # type: ignore[arg-type]
    origin = ws.headers.get("origin")
    host = ws.headers.get("host", "")
    if user is None or user.role not in LIVE_SPEAKERS or (origin and origin.split("://", 1)[-1] != host):
        await ws.close(code=4403)
        return
    await ws.accept()
    try:
        first = json.loads(await ws.receive_text())
        token = ws.cookies.get(COOKIE, "")
        if not isinstance(first, dict) or not hmac.compare_digest(str(first.pop("csrf", "")),
                                                                   csrf_for(hub, token)):
            await _refuse(ws, "Phiên làm việc không hợp lệ, hãy tải lại trang.")
            return
        request = live.LiveRequest.model_validate(first)
        opened = await asyncio.to_thread(_open, hub, user, request)
    except WebSocketDisconnect:
        return
    except ValidationError as exc:
        await _refuse(ws, f"Thông tin chưa hợp lệ: {exc.errors(include_url=False)[0]['loc'][0]}.")
        return
    except (ServiceError, ValueError) as exc:
        await _refuse(ws, str(exc))
        return
    if hub.mqtt is None:
        await _refuse(ws, "Hub chưa kết nối MQTT, không phát được.")
        return
    relay = LiveRelay(hub.mqtt, hub.topics, opened, clock=hub.clock)
    relay.start()
    await ws.send_json({"state": "open", "occurrence_id": opened.occurrence_id,
                        "broadcast_id": opened.broadcast_id, "targets": opened.targets,
                        "lead_s": hub.settings.live.lead_s})
    connected = True
    try:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                connected = False
                break
            if message.get("bytes"):
                relay.audio(message["bytes"])
            elif message.get("text"):
                break  # {"end": true}
    except WebSocketDisconnect:
        connected = False
    pcm = relay.end()
    duration = await asyncio.to_thread(_close, hub, user, opened.occurrence_id, pcm)  # ffmpeg stores it
    if connected:
        await ws.send_json({"state": "ended", "duration_s": duration,
                            "recorded_s": round(len(pcm) / (2 * live.SAMPLE_RATE), 1)})
        await ws.close()


def _open(hub: HubContext, user: UiUser, request: live.LiveRequest) -> live.LiveOpened:
    with hub.db.session() as session:
        return live.open_live(session, actor=user, request=request, lib=hub.media, now=hub.clock())


def _close(hub: HubContext, user: UiUser, occurrence_id: str, pcm: bytes) -> float | None:
    with hub.db.session() as session:
        b = live.close_live(session, actor=user, occurrence_id=occurrence_id, pcm=pcm, lib=hub.media,
                            now=hub.clock())
        return b.live_s


async def _refuse(ws: WebSocket, message: str) -> None:
    await ws.send_json({"state": "refused", "message": message})
    await ws.close(code=1008)
