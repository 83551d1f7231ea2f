"""Publishes the outbox: new events at once, everything again after a reconnect, and
whatever is still unacked on a timer; oldest first, in bounded batches.

One thread owns all publishing of outbox events, so the order on the wire follows the
order of storage. A batch is published with QoS 1 and the sender waits for its PUBACKs
before the next batch, so a long backlog (a node cut off for days) flows out at the pace
the broker takes it instead of flooding paho's queue.
"""

from __future__ import annotations

import logging
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
        clock: Callable[[], float] = time.monotonic,
        prepare: Callable[[], None] | None = None,
    ) -> None:
        self.outbox = outbox
        self.link = link
        self.topic_for = topic_for
        self.stop_event = stop
        self.resend_interval_s = resend_interval_s
        self.batch_size = batch_size
        self.clock = clock
        self.prepare = prepare
        """Runs before every pass (the agent settles events held for a corrected time)."""
        self._wake = threading.Event()
        self._sent_at: dict[UUID, float] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.published = 0
        """Publishes made (first sends and re-sends), for telemetry and tests."""

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="outbox-sender", daemon=True)
        self._thread.start()

    def poke(self) -> None:
        """Something new was stored: send it now (if connected)."""
        self._wake.set()

    def on_connected(self) -> None:
        """After a (re)connect everything unacked goes out again, oldest first."""
        with self._lock:
            self._sent_at.clear()
        self._wake.set()

    def on_acked(self, event_ids: list[UUID]) -> None:
        with self._lock:
            for event_id in event_ids:
                self._sent_at.pop(event_id, None)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def join(self, timeout: float = 5.0) -> None:
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        # The timer: wake at least every half resend interval to find overdue events.
        tick = max(self.resend_interval_s / 2, 0.05)
        while not self.stop_event.is_set():
            self._wake.wait(tick)
            self._wake.clear()
            if self.stop_event.is_set():
                break
            try:
                self.send_due()
            except Exception:
                log.exception("outbox sender failed; retrying on the next tick")

    def _due(self, event: StoredEvent, now: float) -> bool:
        sent = self._sent_at.get(event.event_id)
        return sent is None or now - sent >= self.resend_interval_s

    def send_due(self) -> int:
        """Publish every event never sent on this connection or sent too long ago,
        batch by batch. Returns how many were published."""
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
                batch = [e for e in rows if self._due(e, now)][: self.batch_size]
            if batch:
                after_id = batch[-1].id
                sent = self._publish_batch(batch)
                total += sent
                if sent < len(batch):
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
                self._sent_at[event.event_id] = self.clock()
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
