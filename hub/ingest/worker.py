"""The ingest worker: drains the queue in batches, one transaction per batch, acks after commit."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from itertools import groupby
from uuid import UUID

from sqlalchemy.exc import OperationalError

from thanthien.hub.context import HubContext
from thanthien.hub.ingest.base import Incoming, Outcome, dead_letter
from thanthien.hub.ingest.table import HANDLERS, SHAREABLE
from thanthien.hub.services import registry
from thanthien.mqtt import Message, MqttLink
from thanthien.protocol.payloads import MAX_ACK_IDS, Ack

log = logging.getLogger(__name__)

Commit = Callable[[HubContext, list[Incoming]], Outcome]
"""Stores one batch in one transaction and says what it did (:func:`commit_batch`)."""


def commit_batch(ctx: HubContext, batch: list[Incoming]) -> Outcome:
    """One transaction: every run of one topic kind goes to its handler in ``HANDLERS``; a kind
    without a handler is dead-lettered."""
    outcome = Outcome()
    with ctx.db.session() as session:
        session.info[registry.BATCH_NODES] = frozenset(m.node for m in batch if m.node is not None)
        for kind, run in _runs(batch):
            outcome.count("thanthien_hub_ingest_messages_total", kind, len(run))
            handler = HANDLERS.get(kind)
            if handler is None:
                for item in run:
                    dead_letter(session, item, f"no handler for topic {item.topic}", outcome)
                continue
            handler(session, ctx, run, outcome)
    return outcome


class IngestWorker:
    """Subscribes the handled topics on a link and stores what arrives.

    The network thread only parses the topic and queues; a single worker thread commits up to
    ``batch_size`` messages per transaction. If a batch fails, its messages are retried one
    per transaction, and one that still fails is dead-lettered: the loop never dies.

    ``commit`` stores a batch (default :func:`commit_batch`); tests wrap it to inject
    database failures."""

    def __init__(self, ctx: HubContext, *, commit: Commit = commit_batch) -> None:
        self.ctx = ctx
        self._commit = commit
        cfg = ctx.settings.ingest
        self.batch_size = cfg.batch_size
        self.flush_s = cfg.flush_ms / 1000
        self._queue: queue.Queue[Incoming] = queue.Queue(maxsize=cfg.queue_max)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._idle = threading.Condition()
        self._busy = 0
        self._observers: list[Callable[[Outcome, int], None]] = []

    def on_commit(self, observer: Callable[[Outcome, int], None]) -> None:
        """Call ``observer(outcome, batch_size)`` after each commit, once its acks are out
        (the benchmarks time commits this way)."""
        self._observers.append(observer)

    # -- MQTT side -----------------------------------------------------------------------
    def attach(self, link: MqttLink) -> None:
        topics = self.ctx.topics
        group = self.ctx.settings.ingest.shared_group
        for kind in HANDLERS:
            topic_filter = topics.wildcard(kind)
            if group and kind in SHAREABLE:
                topic_filter = f"$share/{group}/{topic_filter}"
            link.route(topic_filter, self.enqueue, qos=1)

    def enqueue(self, message: Message) -> None:
        parsed = self.ctx.topics.parse(message.topic)
        item = Incoming(topic=message.topic, payload=message.payload,
                        kind=parsed.kind if parsed else "unknown", node=parsed.node if parsed else None,
                        received_at=self.ctx.clock())
        with self._idle:
            self._busy += 1
        self._queue.put(item)  # blocks the network thread when full: back-pressure to the broker

    def depth(self) -> int:
        return self._queue.qsize()

    def wait_idle(self, timeout: float) -> bool:
        """True once every queued message has been committed (for tests and shutdown)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._busy == 0, timeout)

    # -- worker side ---------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="hub-ingest", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        """Commit what is queued, then stop."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            batch = self._take()
            if batch:
                self.process(batch)
                with self._idle:
                    self._busy -= len(batch)
                    self._idle.notify_all()
            elif self._stop.is_set():
                return

    def _take(self) -> list[Incoming]:
        try:
            first = self._queue.get(timeout=0.2)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + self.flush_s
        while len(batch) < self.batch_size:
            try:
                remaining = deadline - time.monotonic()
                item = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
                batch.append(item)
            except queue.Empty:
                break
        return batch

    def _commit_retrying(self, batch: list[Incoming]) -> Outcome:
        """Commit, retrying at once when the database chose this transaction as the victim
        of a deadlock or a serialization conflict (two ingest workers touching the same node
        rows): the transaction rolled back whole, and trying again is the standard answer."""
        for attempt in range(1, RETRIES_ON_CONFLICT + 1):
            try:
                return self._commit(self.ctx, batch)
            except OperationalError as exc:
                if attempt == RETRIES_ON_CONFLICT or not _is_conflict(exc):
                    raise
                log.info("batch of %d lost a database conflict (%s); retrying", len(batch),
                         getattr(exc.orig, "sqlstate", "?"))
                self.ctx.metrics.inc("thanthien_hub_ingest_retries_total")
        raise AssertionError("unreachable")

    def process(self, batch: list[Incoming]) -> None:
        try:
            outcome = self._commit_retrying(batch)
        except OperationalError as exc:  # the database is down or locked: nothing was stored
            log.error("database unavailable; %d messages not acked (their nodes send them again): %s",
                      len(batch), exc)
            self.ctx.metrics.inc("thanthien_hub_ingest_errors_total")
            self._stop.wait(1.0)  # do not spin while it is down
            return
        except Exception:
            log.exception("ingest batch of %d failed; retrying one by one", len(batch))
            self.ctx.metrics.inc("thanthien_hub_ingest_errors_total")
            for item in batch:
                self._process_one(item)
            return
        self._after_commit(outcome, len(batch))

    def _process_one(self, item: Incoming) -> None:
        try:
            outcome = self._commit(self.ctx, [item])
        except OperationalError as exc:  # database unreachable or locked: not the message's fault
            log.error("database error on %s, not acked (the node sends it again): %s", item.topic, exc)
            return
        except Exception as exc:
            log.exception("message on %s failed alone", item.topic)
            outcome = Outcome()
            try:
                with self.ctx.db.session() as session:
                    dead_letter(session, item, f"storage error: {type(exc).__name__}: {exc}"[:1000], outcome)
            except Exception:
                log.exception("could not dead-letter a message on %s (database down?)", item.topic)
                return  # not acked: the node sends it again
        self._after_commit(outcome, 1)

    def _after_commit(self, outcome: Outcome, size: int) -> None:
        metrics = self.ctx.metrics
        metrics.inc("thanthien_hub_ingest_batches_total")
        for (name, label), n in outcome.counts.items():
            if label:
                metrics.inc(name, n, kind=label)
            else:
                metrics.inc(name, n)
        for kind, ids_by_node in outcome.acks_by_kind.items():
            for node, ids in ids_by_node.items():
                self._publish_acks(kind, node, ids)
        for observer in self._observers:
            observer(outcome, size)

    def _publish_acks(self, kind: str, node: str, ids: list[UUID]) -> None:
        link = self.ctx.mqtt
        if link is None:
            return
        for start in range(0, len(ids), MAX_ACK_IDS):
            ack = Ack(kind=kind, event_ids=ids[start:start + MAX_ACK_IDS], at=self.ctx.clock())  # type: ignore[arg-type]
            link.publish(self.ctx.topics.ack(node), ack.to_bytes(), qos=1)
            self.ctx.metrics.inc("thanthien_hub_acks_published_total")


RETRIES_ON_CONFLICT = 5
CONFLICT_SQLSTATES = frozenset({"40P01", "40001"})  # deadlock detected, serialization failure


def _is_conflict(exc: OperationalError) -> bool:
    return getattr(exc.orig, "sqlstate", None) in CONFLICT_SQLSTATES


def _runs(batch: list[Incoming]) -> Iterator[tuple[str, list[Incoming]]]:
    """Consecutive messages of one kind, in arrival order."""
    for kind, items in groupby(batch, key=lambda m: m.kind):
        yield kind, list(items)
