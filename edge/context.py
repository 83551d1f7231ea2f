"""What a device gets from the agent, and what the agent expects of a device.

Adding a kind of device (the speaker, the camera probes) never touches the agent core:

1. write a class with ``name``, ``capability``, ``start(context)`` and ``close()``
   (the :class:`Device` protocol below; optionally ``identify(seconds, target)``);
2. write ``from_settings(settings) -> list[Device]`` next to it, in a module of
   ``thanthien/edge/devices/``;
3. add that function to ``FACTORIES`` in ``thanthien/edge/devices/__init__.py`` (one line).

In ``start`` a device uses the :class:`DeviceContext`: ``store_event`` to put an event in
the outbox (it is published and re-sent until the hub acks it), ``publish`` for
fire-and-forget or retained messages, ``route`` to receive a topic, ``commands`` to add a
command, ``audio`` (the node's one output), ``pin_factory`` (gpiozero; a ``MockFactory``
in mock mode), ``stop_event`` for its threads to loop on, ``clock`` (monotonic,
injectable in tests), ``wall_clock`` (epoch seconds as the node believes them; injectable, so
tests run a node hours off) and ``clock_trust`` (whether that wall clock may be trusted,
``edge/clock.py``). ``close`` must stop its threads and release its pins; the agent
calls it on stop and before rebuilding devices on ``reload-config``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

from thanthien.edge.audio import AudioOutput
from thanthien.edge.clock import ClockTrust
from thanthien.edge.commands import CommandTable
from thanthien.edge.outbox import EventFactory, StoredEvent
from thanthien.mqtt import Handler, Message
from thanthien.protocol import EventKind, Topics
from thanthien.protocol.payloads import Payload

if TYPE_CHECKING:
    from gpiozero import Factory

    from thanthien.edge.settings import EdgeSettings

log = logging.getLogger(__name__)

Capability = Literal["rating_box", "speaker", "camera"]


@runtime_checkable
class Device(Protocol):
    name: str
    capability: Capability | None

    def start(self, context: DeviceContext) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class Identifiable(Protocol):
    def identify(self, seconds: float, target: str | None) -> list[str]:
        """Make the device noticeable (blink, beep) for ``seconds``; ``target`` picks one
        sub-device by id. Returns the ids that are identifying themselves."""
        ...


@runtime_checkable
class Retunable(Protocol):
    def retune(self, settings: EdgeSettings) -> bool:
        """Take new settings without being rebuilt, if only values it can change as it runs
        differ (a speaker's volume); ``False``: rebuild me."""
        ...


class NodeStats:
    """Counters since the agent started, shown in telemetry."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.ignored_presses = 0
        self.held_broadcasts: int | None = None
        """Scheduled broadcasts held for an untrusted clock (set by the speaker; None without one)."""

    def add_ignored_press(self) -> None:
        with self._lock:
            self.ignored_presses += 1


class RouteTable:
    """Topic filter -> handlers, on top of the link's own routes, so that devices rebuilt by
    ``reload-config`` can drop their handlers (the link subscribes each filter once)."""

    def __init__(self, subscribe: Callable[[str, Handler], None]) -> None:
        self._subscribe = subscribe
        self._handlers: dict[str, list[Handler]] = {}
        self._lock = threading.Lock()

    def add(self, topic_filter: str, handler: Handler) -> None:
        with self._lock:
            new = topic_filter not in self._handlers
            self._handlers.setdefault(topic_filter, []).append(handler)
        if new:
            self._subscribe(topic_filter, lambda msg, f=topic_filter: self._dispatch(f, msg))

    def clear_handlers(self) -> None:
        with self._lock:
            for handlers in self._handlers.values():
                handlers.clear()

    def _dispatch(self, topic_filter: str, message: Message) -> None:
        with self._lock:
            handlers = list(self._handlers.get(topic_filter, ()))
        for handler in handlers:
            try:
                handler(message)
            except Exception:
                log.exception("handler for %s failed", message.topic)


@dataclass
class DeviceContext:
    node_id: str
    session: int
    settings: EdgeSettings
    topics: Topics
    data_dir: Path
    audio: AudioOutput
    pin_factory: Factory
    stop_event: threading.Event
    clock: Callable[[], float]
    stats: NodeStats
    commands: CommandTable
    store: Callable[[EventKind, EventFactory], StoredEvent] = field(repr=False)
    send: Callable[[str, bytes, int, bool], None] = field(repr=False)
    routes: RouteTable = field(repr=False)
    wall_clock: Callable[[], float] = time.time
    clock_trust: ClockTrust = field(default_factory=ClockTrust, repr=False)

    def store_event(self, kind: EventKind, make: EventFactory) -> StoredEvent:
        """Durably store an event of a node event kind (``thanthien.protocol.EVENT_KINDS``) and
        queue it for sending. Returns once it is committed: give feedback only after this."""
        return self.store(kind, make)

    def publish(self, topic: str, payload: Payload, *, qos: int = 1, retain: bool = False) -> None:
        """Fire and forget (dropped while the broker is unreachable, unlike ``store_event``)."""
        self.send(topic, payload.to_bytes(), qos, retain)

    def route(self, topic_filter: str, handler: Handler) -> None:
        self.routes.add(topic_filter, handler)
