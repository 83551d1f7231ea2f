"""Commands from the hub: ``{root}/node/{node}/cmd/{name}`` with MQTT v5 request/response.

A command is answered with a :class:`CommandResult` on the request's ``ResponseTopic``
(the node's ``reply`` topic when absent, the only one the ACL lets it write), carrying
the request's ``CorrelationData``. Handlers run on one worker thread, never on the MQTT
network thread. An unknown command, a malformed or expired payload, bad arguments or a
failing handler all give an error result; nothing here raises into the agent.

The agent registers ``ping``, ``identify``, ``reload-config`` and ``restart``; a device can add
its own (e.g. the speaker's ``play-now``) with ``context.commands.register(name, handler)``. A
handler that must act after its answer is out (``restart``) hands that to ``defer``.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from typing import TypeVar

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from thanthien.mqtt import Message
from thanthien.protocol.payloads import Command, CommandResult, PayloadError, ScalarArg, decode, utc_now

log = logging.getLogger(__name__)

Args = dict[str, ScalarArg]
Result = dict[str, ScalarArg]
CommandHandler = Callable[[Args], Result]
QUEUE_SIZE = 64


class CommandError(Exception):
    """A command that cannot be carried out; the message goes into the error result."""


N = TypeVar("N", int, float)


def number_arg(args: Args, name: str, default: N, low: N, high: N) -> N:
    """A numeric argument within [low, high], or :class:`CommandError`."""
    value = args.get(name, default)
    kind = type(default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CommandError(f"argument {name!r} must be a number, got {value!r}")
    if kind is int and not float(value).is_integer():
        raise CommandError(f"argument {name!r} must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise CommandError(f"argument {name!r} must be between {low} and {high}, got {value!r}")
    return kind(value)


def str_arg(args: Args, name: str) -> str | None:
    value = args.get(name)
    if value is not None and not isinstance(value, str):
        raise CommandError(f"argument {name!r} must be text, got {value!r}")
    return value


class CommandTable:
    """Name -> handler. Thread-safe; devices register while the agent runs."""

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        self._handlers: dict[str, CommandHandler] = {}
        self._lock = threading.Lock()
        self._deferred: list[Callable[[], None]] = []

    def defer(self, action: Callable[[], None]) -> None:
        """Run ``action`` once the answer of the command being handled is published (``restart``
        answers first, then stops the agent)."""
        with self._lock:
            self._deferred.append(action)

    def take_deferred(self) -> list[Callable[[], None]]:
        with self._lock:
            actions, self._deferred = self._deferred, []
        return actions

    def register(self, name: str, handler: CommandHandler) -> None:
        with self._lock:
            if name in self._handlers:
                raise ValueError(f"command {name!r} is already registered")
            self._handlers[name] = handler

    def unregister(self, name: str) -> None:
        with self._lock:
            self._handlers.pop(name, None)

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._handlers)

    def _error(self, name: str, error: str) -> CommandResult:
        return CommandResult(node=self.node_id, name=name[:64], ok=False, at=utc_now(), error=error[:500])

    def execute(self, name: str, raw: bytes) -> CommandResult:
        """Run one command; every failure becomes an error result."""
        with self._lock:
            handler = self._handlers.get(name)
        if handler is None:
            return self._error(name, f"unknown command {name!r}; known: {', '.join(self.names())}")
        try:
            command = decode(Command, raw)
        except PayloadError as exc:
            return self._error(name, exc.reason)
        if command.expires_at is not None and command.expires_at <= utc_now():
            return self._error(name, f"command expired at {command.expires_at.isoformat()}")
        try:
            result = handler(dict(command.args))
        except CommandError as exc:
            return self._error(name, str(exc))
        except Exception as exc:
            log.exception("command %s failed", name)
            return self._error(name, f"{type(exc).__name__}: {exc}")
        try:
            return CommandResult(node=self.node_id, name=name, ok=True, at=utc_now(), result=result)
        except ValueError as exc:
            log.error("command %s returned an unusable result: %s", name, exc)
            return self._error(name, "the handler returned an unusable result")


Publisher = Callable[[str, bytes, Properties | None], None]


class MessageWorker:
    """MQTT messages taken off the network thread (``on_message`` only queues) and handled one
    at a time by :meth:`handle` on a worker thread, which loops until the stop event or
    :meth:`join`. Commands and the hub's config both arrive this way."""

    thread_name = "worker"

    def __init__(self, stop: threading.Event, size: int = QUEUE_SIZE) -> None:
        self.stop_event = stop
        self._queue: queue.Queue[Message | None] = queue.Queue(size)
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def join(self, timeout: float = 5.0) -> None:
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)
        if self._thread is not None:
            self._thread.join(timeout)

    def on_message(self, message: Message) -> None:
        """MQTT route handler (network thread): queue, never block."""
        try:
            self._queue.put_nowait(message)
        except queue.Full:
            log.warning("%s queue full; dropping %s", self.thread_name, message.topic)

    def _run(self) -> None:
        while not self.stop_event.is_set():
            message = self._queue.get()
            if message is None:
                break
            try:
                self.handle(message)
            except Exception:
                log.exception("handling %s failed", message.topic)

    def handle(self, message: Message) -> None:
        raise NotImplementedError


class CommandService(MessageWorker):
    """Takes command messages off the network thread and answers them on a worker."""

    thread_name = "commands"

    def __init__(self, table: CommandTable, reply_topic: str, publish: Publisher,
                 stop: threading.Event) -> None:
        super().__init__(stop)
        self.table = table
        self.reply_topic = reply_topic
        self._publish = publish

    def handle(self, message: Message) -> None:
        self.answer(message)

    def answer(self, message: Message) -> CommandResult:
        name = message.topic.rsplit("/", 1)[-1]
        result = self.table.execute(name, message.payload)
        props_in = message.properties
        response_topic = getattr(props_in, "ResponseTopic", None) or self.reply_topic
        correlation = getattr(props_in, "CorrelationData", None)
        props = Properties(PacketTypes.PUBLISH)
        if correlation is not None:
            props.CorrelationData = correlation
        log.info("command %s -> %s", name, "ok" if result.ok else f"error: {result.error}")
        self._publish(response_topic, result.to_bytes(), props)
        for action in self.table.take_deferred():
            try:
                action()
            except Exception:
                log.exception("the follow-up of command %s failed", name)
        return result
