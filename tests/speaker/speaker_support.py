"""Helpers for the speaker tests: clips, plan items, a loopback media server, an event
collector and a GPIO pin that stamps its changes with wall-clock time."""

from __future__ import annotations

import array
import hashlib
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from gpiozero.pins.mock import MockPin

from support import EventCollector
from thanthien.edge.audio import AudioClip
from thanthien.protocol.payloads import PlanItem, PlaybackEvent

NODE = "node-a"
TOKEN = "node-a-media-token"


def tone(seconds: float, freq: float = 440.0, rate: int = 8000) -> AudioClip:
    n = int(seconds * rate)
    samples = array.array("h", (int(8000 * math.sin(2 * math.pi * freq * i / rate)) for i in range(n)))
    return AudioClip(samples.tobytes(), rate, 1, f"tone-{freq:g}")


def wav_and_sha(seconds: float, freq: float = 440.0) -> tuple[bytes, str]:
    data = tone(seconds, freq).to_wav()
    return data, hashlib.sha256(data).hexdigest()


def item(occ: str, start: datetime, sha: str, *, priority: str = "normal", duration: float = 1.0,
         volume: int = 100, url: str = "") -> PlanItem:
    return PlanItem(occurrence_id=occ, broadcast_id=1, title=f"Bản tin {occ}", start_at=start,
                    media_sha256=sha, media_url=url or f"media/{sha}", duration_s=duration,
                    priority=priority, volume=volume)  # type: ignore[arg-type]


def in_s(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


class Events:
    """Collects playback events; tests wait on it with a timeout."""

    def __init__(self) -> None:
        self._log = EventCollector[PlaybackEvent]()

    @property
    def items(self) -> list[PlaybackEvent]:
        return self._log.items

    def __call__(self, event: PlaybackEvent) -> None:
        self._log.add(event)

    def wait_for(self, occ: str, status: str, timeout: float = 5.0) -> PlaybackEvent:
        found = self._log.first(lambda e: e.occurrence_id == occ and e.status == status, timeout)
        assert found is not None, (
            f"no {status} for {occ}; got {[(e.occurrence_id, e.status) for e in self._log.snapshot()]}")
        return found

    def statuses(self, occ: str) -> list[str]:
        return [e.status for e in self._log.snapshot() if e.occurrence_id == occ]


@dataclass
class MediaServer:
    """A loopback HTTP server serving ``files`` (path -> bytes) to requests bearing
    ``token``; ``fail_next`` answers that many requests with 503 first."""

    token: str = TOKEN
    files: dict[str, bytes] = field(default_factory=dict)
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    fail_next: int = 0
    port: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"


@contextmanager
def media_server() -> Iterator[MediaServer]:
    server_state = MediaServer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            auth = self.headers.get("Authorization")
            server_state.requests.append((self.path, auth))
            if server_state.fail_next > 0:
                server_state.fail_next -= 1
                self.send_error(503)
                return
            if auth != f"Bearer {server_state.token}":
                self.send_error(401)
                return
            body = server_state.files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "audio/wav")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server_state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server_state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


class StampedPin(MockPin):
    """A mock pin that records each change with the wall-clock time."""

    def __init__(self, factory: object, info: object) -> None:
        self._stamps = EventCollector[tuple[float, bool]]()
        super().__init__(factory, info)

    @property
    def changes(self) -> list[tuple[float, bool]]:
        return self._stamps.items

    def _change_state(self, value: bool) -> bool:
        changed = super()._change_state(value)
        if changed:
            self._stamps.add((time.time(), bool(value)))
        return changed

    def wait_changes(self, n: int, timeout: float = 5.0) -> list[tuple[float, bool]]:
        assert self._stamps.wait_count(n, timeout), self._stamps.snapshot()
        return self._stamps.snapshot()
