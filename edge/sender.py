"""Publishes the outbox: new events at once, everything again after a reconnect, and
whatever is still unacked on a timer; oldest first, in bounded batches.

One thread owns all publishing of outbox events, so the order on the wire follows the
order of storage. A batch is published with QoS 1 and the sender waits for its PUBACKs
before the next batch, so a long backlog (a node cut off for days) flows out at the pace
the broker takes it instead of flooding paho's queue.

A node holds back what the hub has not acked yet, so that a province coming back at once
does not bury its hub (5,000 nodes re-sending days of events every minute while the first
copies still wait in the broker's queues):

- at most ``max_in_flight`` events are out unacked at a time: the next ones go as the hub's
  acks come in (an ack wakes the sender);
- an unacked event is sent again after ``resend_interval_s``, then after twice that, four
  times, ... up to ``resend_max_s``, each delay stretched by a random quarter at most, so the
  nodes of a province drift apart instead of re-sending together. A reconnect sends what is
  unacked again at once (the broker may have lost it with the session), the window still
  applies, and the delays go on growing from where they were until the event is acked.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from uuid import UUID

from paho.mqtt.enums import MQTTErrorCode

from thanthien.edge.outbox import Outbox, StoredEvent
from thanthien.mqtt import MqttLink

log = logging.getLogger(__name__)

PUBACK_TIMEOUT_S = 10.0


class OutboxSender:
    def __init__(
        self,
        outbox: Outbox,
        link: MqttLink,
        topic_for: Callable[[str], str],
        stop: threading.Event,
        *,
        resend_interval_s: float,
        batch_size: int,
        max_in_flight: int = 200,
        resend_max_s: float = 900.0,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] | None = None,
        prepare: Callable[[], None] | None = None,
    ) -> None:
        self.outbox = outbox
        self.link = link
        self.topic_for = topic_for
        self.stop_event = stop
        self.resend_interval_s = resend_interval_s
        self.batch_size = batch_size
        self.max_in_flight = max_in_flight
        self.resend_max_s = resend_max_s
        self.clock = clock
        self._jitter = jitter or (lambda: random.uniform(1.0, 1.25))
        self.prepare = prepare
        """Runs before every pass (the agent settles events held for a corrected time)."""
        self._wake = threading.Event()
        self._due_at: dict[UUID, float] = {}
        """Events out unacked on this connection (the window) and when each is sent again."""
        self._sends: dict[UUID, int] = {}
        """How many times each unacked event was sent (its next delay grows with it)."""
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.published = 0
        """Publishes made (first sends and re-sends), for telemetry and tests."""
        self.resent = 0
        """Of those, the re-sends of an event already sent."""

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="outbox-sender", daemon=True)
        self._thread.start()

    def poke(self) -> None:
        """Something new was stored: send it now (if connected)."""
        self._wake.set()

    def on_connected(self) -> None:
        """After a (re)connect everything unacked goes out again, oldest first."""
        with self._lock:
            self._due_at.clear()
        self._wake.set()

    def on_acked(self, event_ids: list[UUID]) -> None:
        """The hub committed these: they leave the window, and the next events may go."""
        with self._lock:
            for event_id in event_ids:
                self._due_at.pop(event_id, None)
                self._sends.pop(event_id, None)
        self._wake.set()

    @property
    def in_flight(self) -> int:
        """Events sent on this connection and not acked yet."""
        with self._lock:
            return len(self._due_at)

    def resend_delay(self, sends: int) -> float:
        """How long after its ``sends``-th send an unacked event goes again (before the jitter)."""
        cap = max(self.resend_max_s, self.resend_interval_s)
        return float(min(self.resend_interval_s * 2 ** max(0, sends - 1), cap))

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def join(self, timeout: float = 5.0) -> None:
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self.stop_event.is_set():
            # The timer: wake at least every half resend interval to find overdue events.
            self._wake.wait(max(self.resend_interval_s / 2, 0.05))
            self._wake.clear()
            if self.stop_event.is_set():
                break
            try:
                self.send_due()
            except Exception:
                log.exception("outbox sender failed; retrying on the next tick")

    def send_due(self) -> int:
        """Publish, batch by batch, the events of the window that are due again and, while the
        window has room, the next events never sent on this connection. Returns how many were
        published."""
        if self.prepare is not None:
            try:
                self.prepare()
            except Exception:
                log.exception("preparing the outbox failed; sending what is ready")
        total = 0
        after_id = 0
        while not self.stop_event.is_set() and self.link.connected.is_set():
            rows = self.outbox.pending(limit=self.batch_size * 4, after_id=after_id)
            if not rows:
                break
            after_id = rows[-1].id
            now = self.clock()
            with self._lock:
                room = self.max_in_flight - len(self._due_at)
                batch: list[StoredEvent] = []
                window_left = len(self._due_at)
                for event in rows:
                    due = self._due_at.get(event.event_id)
                    if due is not None:
                        window_left -= 1
                        if now >= due:
                            batch.append(event)
                    elif room > 0:
                        room -= 1
                        batch.append(event)
                    if len(batch) >= self.batch_size:
                        break
                full = room <= 0 and window_left <= 0  # nothing further on can go now
            if batch:
                after_id = batch[-1].id
                sent = self._publish_batch(batch)
                total += sent
                if sent < len(batch):
                    break
            elif full:
                break
        return total

    def _publish_batch(self, batch: list[StoredEvent]) -> int:
        infos = []
        for event in batch:
            info = self.link.publish(self.topic_for(event.kind), event.payload, qos=1)
            if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                log.info("outbox: publish paused (%s); will resend on reconnect", info.rc)
                break
            with self._lock:
                sends = self._sends.get(event.event_id, 0) + 1
                self.resent += sends > 1
                self._sends[event.event_id] = sends
                self._due_at[event.event_id] = self.clock() + self.resend_delay(sends) * self._jitter()
            infos.append(info)
        self.published += len(infos)
        deadline = time.monotonic() + PUBACK_TIMEOUT_S
        for info in infos:
            while not info.is_published():  # in short slices, so a stop is not held up
                remaining = deadline - time.monotonic()
                if self.stop_event.is_set() or remaining <= 0 or not self.link.connected.is_set():
                    return 0
                try:
                    info.wait_for_publish(min(remaining, 0.2))
                except (RuntimeError, ValueError):  # the connection went away under us
                    return 0
        log.debug("outbox: batch of %d acknowledged by the broker", len(infos))
        return len(infos)
