"""Helpers for the hub tests: a hand-moved UTC clock and settings for a temporary hub."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from support import EventCollector
from thanthien.hub.ingest.base import Incoming
from thanthien.hub.settings import HubSettings
from thanthien.protocol import Topics
from thanthien.protocol.payloads import NodeState, RatingEvent, Telemetry


class Clock:
    """UTC 'now' that the test moves by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # Monday 09:00 in Hà Nội

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def hub_settings(tmp_path: Path, **sections: Any) -> HubSettings:
    values: dict[str, Any] = {"hub": {"data_dir": str(tmp_path / "hub")},
                              "http": {"secret_key": "test-secret-key-0123456789"}}
    for name, section in sections.items():
        values[name] = {**values.get(name, {}), **section}
    return HubSettings(**values)




def rating(node: str = "node-a", seq: int = 1, score: int = 4, counter: str = "quay-1",
           pressed_at: datetime | None = None, event_id: uuid.UUID | None = None,
           box: str = "box-1") -> RatingEvent:
    return RatingEvent(event_id=event_id or uuid.uuid4(), node=node, seq=seq, box=box, counter=counter,
                       score=score, pressed_at=pressed_at or datetime(2026, 3, 2, 2, 0, tzinfo=UTC))


T = Topics()


def incoming(topic: str, payload: bytes, received_at: datetime) -> Incoming:
    parsed = T.parse(topic)
    return Incoming(topic=topic, payload=payload, kind=parsed.kind if parsed else "unknown",
                    node=parsed.node if parsed else None, received_at=received_at)


def rating_msg(event: RatingEvent, received_at: datetime, topic_node: str | None = None) -> Incoming:
    return incoming(Topics().rating(topic_node or event.node), event.to_bytes(), received_at)


def telemetry(node: str = "node-a", session: int = 1, at: datetime | None = None, **over: Any) -> Telemetry:
    values: dict[str, Any] = dict(node=node, session=session, at=at or datetime(2026, 3, 2, 2, 0, tzinfo=UTC),
                                  uptime_s=10, agent_version="0.1.0", cpu_temp_c=50.0, load_1m=0.1,
                                  load_5m=0.1, load_15m=0.1, mem_used_pct=30, disk_used_pct=40,
                                  disk_free_mb=1000, outbox_depth=0, ignored_presses=0, clock_synced=True,
                                  clock_offset_ms=3.0)
    values.update(over)
    return Telemetry(**values)


def node_state(state: str, session: int, node: str = "node-a", at: datetime | None = None) -> NodeState:
    return NodeState(node=node, state=state, session=session, at=at or datetime(2026, 3, 2, 2, 0, tzinfo=UTC),
                     agent_version="0.1.0", capabilities=["rating_box"])


class Hook:
    """A loopback HTTP server that fails the first ``fail`` POSTs with 500."""

    def __init__(self, fail: int = 0) -> None:
        self._delivered = EventCollector[dict]()
        self.fail = fail
        self.calls = 0
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                body = json.loads(self.rfile.read(length))
                hook.calls += 1
                status = 500 if hook.calls <= hook.fail else 204
                if status == 204:
                    hook._delivered.add(body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alarms"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def bodies(self) -> list[dict]:
        """The JSON bodies delivered (answered 204)."""
        return self._delivered.items

    def wait_for(self, predicate: Callable[[list[dict]], bool], timeout: float = 10.0) -> bool:
        """True once ``predicate(bodies)`` holds for the delivered JSON bodies."""
        return self._delivered.wait_for(predicate, timeout)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
