"""Helpers for the edge agent tests: configs, a fake clock, bouncing presses on MockFactory
pins, an acking peer that plays the hub's part, and the agent as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar
from uuid import UUID

from gpiozero.pins.mock import MockFactory, MockPin

from support import HUB, NODE_A, Account, Collector, EventCollector, connected_link
from thanthien.config import validate_data
from thanthien.edge.devices.rating_box import PressOutcome
from thanthien.edge.settings import EdgeSettings
from thanthien.mqtt import Message
from thanthien.protocol import Topics
from thanthien.protocol.payloads import Ack, NodeState, RatingEvent, decode, utc_now

T = Topics()
REPO = Path(__file__).resolve().parents[2]

BOX_1_PINS = {4: 5, 3: 6, 2: 13, 1: 19}  # score -> BCM pin (the defaults)
BOX_2_PINS = {4: 12, 3: 16, 2: 20, 1: 26}
LED_1, LED_2 = 21, 17


def edge_config(data_dir: Path, port: int, account: Account = NODE_A, *, bounce_ms: float = 15,
                response_interval_s: float = 5.0, resend_interval_s: float = 60.0,
                telemetry_s: float = 30.0, audio: dict[str, Any] | None = None) -> dict[str, Any]:
    """A mock-hardware node with two rating boxes, as the dict a TOML file would give."""
    def box(box_id: str, counter: str, pins: dict[int, int], led: int) -> dict[str, Any]:
        labels = {4: "Rất hài lòng", 3: "Hài lòng", 2: "Bình thường", 1: "Không hài lòng"}
        return {"id": box_id, "counter": counter, "led_pin": led, "bounce_ms": bounce_ms,
                "response_interval_s": response_interval_s,
                "buttons": [{"pin": pin, "score": score, "label": labels[score]}
                            for score, pin in pins.items()]}

    return {
        "node": {"id": account.username, "hardware": "mock", "data_dir": str(data_dir)},
        "mqtt": {"host": "127.0.0.1", "port": port, "password": account.password,
                 "reconnect_min_s": 0.1, "reconnect_max_s": 0.5, "keepalive_s": 5},
        "telemetry": {"interval_s": telemetry_s},
        "outbox": {"resend_interval_s": resend_interval_s},
        "audio": audio or {"output": "null"},
        "rating_boxes": [box("box-1", "quay-1", BOX_1_PINS, LED_1),
                         box("box-2", "quay-2", BOX_2_PINS, LED_2)],
    }


def edge_settings(data_dir: Path, port: int, **kwargs: Any) -> EdgeSettings:
    return validate_data(EdgeSettings, edge_config(data_dir, port, **kwargs))


def to_toml(data: dict[str, Any]) -> str:
    """Enough TOML for the configs above (tables, arrays of tables, scalars)."""
    def scalar(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v)
        return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines: list[str] = []

    def table(prefix: str, values: dict[str, Any], header: str) -> None:
        lines.append(header)
        nested = []
        for k, v in values.items():
            if isinstance(v, dict):
                nested.append((k, v, False))
            elif isinstance(v, list) and v and isinstance(v[0], dict):
                nested.append((k, v, True))
            else:
                lines.append(f"{k} = " + (f"[{', '.join(scalar(x) for x in v)}]"
                                          if isinstance(v, list) else scalar(v)))
        for k, v, is_array in nested:
            name = f"{prefix}.{k}" if prefix else k
            if is_array:
                for item in v:
                    table(name, item, f"[[{name}]]")
            else:
                table(name, v, f"[{name}]")

    for key, value in data.items():
        if isinstance(value, list):
            for item in value:
                table(key, item, f"[[{key}]]")
        else:
            table(key, value, f"[{key}]")
    return "\n".join(lines) + "\n"


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Outcomes(EventCollector[PressOutcome]):
    """Collects rating box press outcomes; tests wait on the count."""

    timeout = 5.0


def glitch(pin: Any) -> None:
    """A spike far shorter than the bounce filter: must never count."""
    pin.drive_low()
    pin.drive_high()


def bouncy_press(pin: Any, confirmed: Callable[[], bool]) -> None:
    """Close the contact with bounce, hold it until ``confirmed()``, release with bounce."""
    pin.drive_low()
    pin.drive_high()
    pin.drive_low()
    assert confirmed(), "press was not confirmed in time"
    pin.drive_high()
    pin.drive_low()
    pin.drive_high()


class AckingPeer:
    """Plays the hub: receives the node's ratings with the HUB account, counts each event id
    once, and acks them (optionally not yet)."""

    def __init__(self, port: int, node: str = NODE_A.username, client_id: str = "test-acking-peer",
                 ack: bool = True) -> None:
        self.node = node
        self.ack_enabled = ack
        self._events = EventCollector[RatingEvent]()
        self.counted: dict[UUID, RatingEvent] = {}
        self.link = connected_link(port, HUB, client_id, {T.rating(node): self._on_rating})

    @property
    def received(self) -> list[RatingEvent]:
        return self._events.items

    def _on_rating(self, message: Message) -> None:
        event = decode(RatingEvent, message.payload)
        with self._events.changing():
            self._events.items.append(event)
            self.counted.setdefault(event.event_id, event)
        if self.ack_enabled:
            ack = Ack(kind="rating", event_ids=[event.event_id], at=utc_now())
            self.link.publish(T.ack(self.node), ack.to_bytes(), qos=1)

    def wait_counted(self, n: int, timeout: float = 10.0) -> bool:
        return self._events.wait_until(lambda: len(self.counted) >= n, timeout)

    def wait_received(self, event_id: UUID, times: int, timeout: float = 10.0) -> bool:
        """Until the event arrived ``times`` times (sent again because nobody acked)."""
        return self._events.wait_for(lambda events: sum(e.event_id == event_id for e in events) >= times,
                                     timeout)

    def duplicates(self) -> int:
        return len(self.received) - len(self.counted)

    def close(self) -> None:
        self.link.stop()


class StateWatcher(Collector):
    """The node's retained state messages as they arrive."""

    def states(self) -> list[NodeState]:
        return [decode(NodeState, m.payload) for m in self.messages if m.payload]

    def wait_state(self, state: str, session: int | None = None, timeout: float = 10.0) -> NodeState:
        def match(_msgs: list[Message]) -> bool:
            return any(s.state == state and session in (None, s.session) for s in self.states())

        assert self.wait_for(match, timeout), f"no {state!r} state; got {self.states()}"
        return [s for s in self.states() if s.state == state and session in (None, s.session)][-1]


def watch_state(port: int, node: str = NODE_A.username, client_id: str = "test-state-watcher"):
    watcher = StateWatcher()
    link = connected_link(port, HUB, client_id, {T.node_state(node): watcher})
    return watcher, link


def start_agent_process(config_file: Path, *args: str) -> subprocess.Popen[str]:
    """The real command line: ``python -m thanthien.cli edge run --config FILE``."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "thanthien.cli", "edge", "run", "--config",
                             str(config_file), *args], cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


class RecordingPin(MockPin):
    """A MockPin whose state changes can be waited on (an LED blinking in gpiozero's thread)."""

    changed: ClassVar[EventCollector[None]] = EventCollector()
    """One lock for every pin: a change wakes the waiters, which look at their pin's states."""

    def _change_state(self, value: Any) -> bool:
        with RecordingPin.changed.changing():
            return super()._change_state(value)

    def wait_changes(self, n: int, timeout: float = 5.0) -> bool:
        """Until the pin has changed state at least ``n`` times."""
        return RecordingPin.changed.wait_until(lambda: len(self.states) - 1 >= n, timeout)


def recording_factory() -> MockFactory:
    return MockFactory(pin_class=RecordingPin)
