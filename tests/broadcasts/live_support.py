"""Speaking live to a Town's hub as the browser does: log in to the UI, open the live socket,
send 16 kHz PCM in real time."""

from __future__ import annotations

import array
import math
import threading
from typing import Any

import httpx

from broadcasts.town import PASSWORD, Town
from thanthien.bench.live_client import LiveSocket
from thanthien.hub.web.auth import COOKIE, csrf_for

RATE = 16000
CHUNK_S = 0.032  # what the page's ScriptProcessor hands over at a time


def voice(seconds: float, freq: float = 500.0, amplitude: int = 12000) -> bytes:
    n = int(seconds * RATE)
    samples = (int(amplitude * math.sin(2 * math.pi * freq * i / RATE)) for i in range(n))
    return array.array("h", samples).tobytes()


def ui_cookie(town: Town, role: str) -> str:
    with httpx.Client(base_url=f"http://127.0.0.1:{town.http_port}", follow_redirects=False) as c:
        r = c.post("/ui/login", data={"username": role, "password": PASSWORD})
        assert r.status_code == 303, r.text
        return str(c.cookies[COOKIE])


def open_live(town: Town, role: str = "officer", **request: Any) -> tuple[LiveSocket, dict[str, Any]]:
    token = ui_cookie(town, role)
    sock = LiveSocket("127.0.0.1", town.http_port, cookie=f"{COOKIE}={token}")
    sock.send_json({"csrf": csrf_for(town.hub.ctx, token), "target_kind": "zones",
                    "target_zones": ["ban-a"], "priority": "priority", **request})
    return sock, sock.recv_json()


def speak(sock: LiveSocket, pcm: bytes, stop: threading.Event | None = None) -> None:
    """Send ``pcm`` paced as a microphone would."""
    step = int(CHUNK_S * RATE) * 2
    waiter = stop or threading.Event()
    for i in range(0, len(pcm), step):
        sock.send_bytes(pcm[i:i + step])
        if waiter.wait(CHUNK_S):
            return
