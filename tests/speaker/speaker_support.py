"""Helpers for the speaker tests: clips, plan items, a loopback media server, an event
collector, a GPIO pin that stamps its changes with wall-clock time, and the speaker node as
a real edge agent with the hub's MQTT part beside it."""

from __future__ import annotations

import array
import hashlib
import math
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from gpiozero.pins.mock import MockPin

from support import HUB, NODE_A, Collector, EventCollector, connected_link
from thanthien.config import validate_data
from thanthien.edge.agent import EdgeAgent
from thanthien.edge.audio import AudioClip, AudioOutput
from thanthien.edge.settings import EdgeSettings
from thanthien.mqtt import MqttLink, request_properties
from thanthien.protocol import Topics
from thanthien.protocol.payloads import (
    Command,
    CommandResult,
    Plan,
    PlanItem,
    PlaybackEvent,
    decode,
    utc_now,
)

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


# -- the speaker as a device of the real edge agent, with the hub's MQTT part ---------------
T = Topics()


def agent_settings(data_dir: Path, port: int, hub: MediaServer, **clock: Any) -> EdgeSettings:
    """A mock-hardware speaker node; ``clock`` fills the ``[clock]`` table."""
    data: dict[str, Any] = {
        "node": {"id": NODE_A.username, "hardware": "mock", "data_dir": str(data_dir)},
        "mqtt": {"host": "127.0.0.1", "port": port, "password": NODE_A.password,
                 "reconnect_min_s": 0.1, "reconnect_max_s": 0.5},
        "audio": {"output": "null"},
        "speakers": {"hub_url": hub.base_url, "token": TOKEN, "relay_pin": 22, "warmup_s": 0.1,
                     "relay_off_delay_s": 0.1},
    }
    if clock:
        data["clock"] = clock
    return validate_data(EdgeSettings, data)


def make_plan(*items: PlanItem, revision: int = 1) -> Plan:
    now = datetime.now(UTC)
    return Plan(node=NODE, revision=revision, generated_at=now, valid_until=now + timedelta(days=1),
                items=list(items))


def events(collector: Collector) -> list[PlaybackEvent]:
    return [decode(PlaybackEvent, m.payload) for m in collector.messages]


def wait_event(collector: Collector, occ: str, status: str, timeout: float = 10.0) -> PlaybackEvent:
    def found(_msgs: object) -> bool:
        return any(e.occurrence_id == occ and e.status == status for e in events(collector))

    assert collector.wait_for(found, timeout), [(e.occurrence_id, e.status) for e in events(collector)]
    return next(e for e in events(collector) if e.occurrence_id == occ and e.status == status)


class Hub:
    """Plays the hub's MQTT part: publishes plans and commands, hears playback reports."""

    def __init__(self, port: int) -> None:
        self.reports = Collector()
        self.replies = Collector()
        self.link: MqttLink = connected_link(port, HUB, f"test-speaker-hub-{uuid.uuid4().hex[:6]}", {
            T.playback(NODE): self.reports, T.command_result(NODE): self.replies})

    def publish_plan(self, plan: Plan) -> None:
        self.link.publish_confirmed(T.plan(NODE), plan.to_bytes(), retain=True)

    def command(self, name: str, **args: object) -> CommandResult:
        correlation = uuid.uuid4().bytes
        payload = Command(args=args, issued_at=utc_now()).to_bytes()  # type: ignore[arg-type]
        self.link.publish_confirmed(T.command(NODE, name), payload,
                                    properties=request_properties(T.command_result(NODE), correlation))

        def corr(m: object) -> bytes | None:
            return getattr(getattr(m, "properties", None), "CorrelationData", None)

        assert self.replies.wait_for(lambda ms: any(corr(m) == correlation for m in ms))
        return decode(CommandResult, next(m for m in self.replies.messages if corr(m) == correlation).payload)

    def close(self) -> None:
        self.link.publish_confirmed(T.plan(NODE), b"", retain=True)  # clear the retained plan
        self.link.stop()


def start_agent(data_dir: Path, port: int, hub_http: MediaServer, sink: AudioOutput, *,
                connected: bool = True, wall_clock: Callable[[], float] = time.time,
                ntp: Callable[[], bool | None] | None = None, **clock: Any) -> EdgeAgent:
    """A started agent; with ``connected`` once its subscriptions are in place (a command
    published before that would be lost). ``wall_clock`` and ``ntp`` stand for the node's
    clock and NTP's answer about it; ``clock`` fills the ``[clock]`` table."""
    agent = EdgeAgent(agent_settings(data_dir, port, hub_http, **clock), audio=sink, wall_clock=wall_clock,
                      ntp=ntp)
    agent.start()
    if connected:
        assert agent.link is not None and agent.link.wait_connected(10) and agent.link.subscribed.wait(10)
    return agent
