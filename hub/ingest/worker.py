"""The ingest worker: drains the queue in batches, one transaction per batch, acks after commit."""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from typing import Any
from uuid import UUID

from sqlalchemy import and_, bindparam, case, func, inspect, or_, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from thanthien.hub.context import HubContext
from thanthien.hub.db.models import Node
from thanthien.hub.ingest.base import Incoming, Outcome, dead_letter, run_after_node_rows
from thanthien.hub.ingest.table import BATCHED, HANDLERS, ORDER, SHAREABLE
from thanthien.hub.services import alarms, registry
from thanthien.mqtt import Message, MqttLink
from thanthien.protocol.payloads import MAX_ACK_IDS, Ack

log = logging.getLogger(__name__)

Commit = Callable[[HubContext, list[Incoming]], Outcome]
"""Stores one batch in one transaction and says what it did (:func:`commit_batch`)."""


def commit_batch(ctx: HubContext, batch: list[Incoming]) -> Outcome:
    """One transaction for the whole batch, by the batch, not by the message:

    - the batch is grouped by kind (:data:`~thanthien.hub.ingest.table.ORDER`: node states
      first; each kind's messages in arrival order) and each kind goes once to its handler in
      ``HANDLERS``; a kind without a handler is dead-lettered;
    - what the batch needs is read once: its node rows (:func:`registry.read_nodes`), the active
      alarms of its nodes (:func:`alarms.read_active`), the devices they declare (at the first
      claim check), then per kind one query each (officers on duty, stored events, the counters'
      presses for the spike rule);
    - node rows are written once per node, at the end, in node id order: the handlers of ratings,
      telemetry and playback run without autoflush and change them in memory only; then one
      statement writes every node's last seen time and sequence (:func:`_write_node_bookkeeping`)
      and the commit's flush the rarer changes (SQLAlchemy's unit of work takes its tables in a
      fixed order and the rows of each by primary key). A batch with a kind outside
      :data:`~thanthien.hub.ingest.table.BATCHED` (node states, camera reports: their services
      write as they go) locks its node rows first, in the same order. Two workers take the rows
      in one order and cannot deadlock on them."""
    outcome = Outcome()
    groups = _groups(batch)
    with ctx.db.session() as session:
        nodes = frozenset(m.node for m in batch if m.node is not None)
        session.info[registry.BATCH_NODES] = nodes
        registry.read_nodes(session, node_ids=nodes, lock=not BATCHED.issuperset(groups))
        alarms.read_active(session, subjects=nodes)
        for kind, run in groups.items():
            outcome.count("thanthien_hub_ingest_messages_total", kind, len(run))
            handler = HANDLERS.get(kind)
            if handler is None:
                for item in run:
                    dead_letter(session, item, f"no handler for topic {item.topic}", outcome)
            elif kind in BATCHED:
                with session.no_autoflush:
                    handler(session, ctx, run, outcome)
            else:
                handler(session, ctx, run, outcome)
        _write_node_bookkeeping(session)
        run_after_node_rows(session)
    return outcome


_NODES = Node.__table__


def _forward(seq: Any, seen: Any) -> dict[str, Any]:
    """The new sequence and last seen time of a node row: each only ever moves forward (two
    workers sharing a node's messages each write the later of theirs and the stored one)."""
    c = _NODES.c
    later = and_(seen.is_not(None), or_(c.last_seen_at.is_(None), c.last_seen_at < seen))
    return {"last_seq": case((c.last_seq > seq, c.last_seq), else_=seq),
            "last_seen_at": case((later, seen), else_=c.last_seen_at)}


_BOOKKEEPING = update(_NODES).where(_NODES.c.id == bindparam("b_id")).values(_forward(
    bindparam("b_seq", type_=_NODES.c.last_seq.type), bindparam("b_seen", type_=_NODES.c.last_seen_at.type)))
"""One node row's bookkeeping (executemany: the rows in the order given)."""


def _write_node_bookkeeping(session: Session) -> None:
    """The per-node bookkeeping of the batch (last seen, last sequence), once per node, in node
    id order: on SQLite one executemany in that order; on PostgreSQL the rows locked in that
    order (``SELECT … ORDER BY id FOR UPDATE``), then one ``UPDATE … FROM unnest(…)`` for all
    of them. The rarer changes (state, session, first seen) are left to the unit of work, which
    writes them at the commit, also in node id order, on rows this batch already holds."""
    rows = []
    for node in sorted((o for o in session.dirty if isinstance(o, Node)), key=lambda n: n.id):
        state = inspect(node)
        changed = [key for key in ("last_seq", "last_seen_at") if state.attrs[key].history.has_changes()]
        if not changed:
            continue
        rows.append({"b_id": node.id, "b_seq": node.last_seq or 0, "b_seen": node.last_seen_at})
        for key in changed:
            set_committed_value(node, key, getattr(node, key))  # written here, not again by the flush
    if not rows:
        return
    with session.no_autoflush:  # before the unit of work's own writes to these rows
        if session.get_bind().dialect.name != "postgresql":
            session.execute(_BOOKKEEPING, rows)
            return
        ids = [r["b_id"] for r in rows]
        session.execute(select(_NODES.c.id).where(_NODES.c.id.in_(ids)).order_by(_NODES.c.id).with_for_update())
        arrays = [bindparam(key, [r[key] for r in rows], type_=postgresql.ARRAY(column.type))
                  for key, column in (("b_id", _NODES.c.id), ("b_seq", _NODES.c.last_seq),
                                      ("b_seen", _NODES.c.last_seen_at))]
        given = func.unnest(*arrays).table_valued("b_id", "b_seq", "b_seen").render_derived()
        session.execute(update(_NODES).where(_NODES.c.id == given.c.b_id)
                        .values(_forward(given.c.b_seq, given.c.b_seen)))


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
        self._topics: dict[str, tuple[str, str | None]] = {}
        self._caught_up_at: Any = None

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
        kind, node = self._route_of(message.topic)
        item = Incoming(topic=message.topic, payload=message.payload, kind=kind, node=node,
                        received_at=self.ctx.clock())
        with self._idle:
            self._busy += 1
        self._queue.put(item)  # blocks the network thread when full: back-pressure to the broker

    def _route_of(self, topic: str) -> tuple[str, str | None]:
        """The kind and node of a topic, parsed once per topic (a fleet sends on a bounded set of
        topics; parsing matches every topic pattern, on the network thread)."""
        known = self._topics.get(topic)
        if known is None:
            if len(self._topics) >= TOPICS_KEPT:
                self._topics.clear()
            parsed = self.ctx.topics.parse(topic)
            known = (parsed.kind, parsed.node) if parsed else ("unknown", None)
            self._topics[topic] = known
        return known

    def depth(self) -> int:
        return self._queue.qsize()

    def heard_until(self) -> Any:
        """The last time (``ctx.clock``) this worker found its queue empty with every message taken
        before committed: what reached the hub until then is stored (``None`` before the first
        time). Behind a backlog it stays where the backlog began."""
        return self._caught_up_at

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
        if self._queue.empty():  # the previous batch is committed and nothing waits
            self._caught_up_at = self.ctx.clock()
        try:
            first = self._queue.get(timeout=0.2)
        except queue.Empty:
            self._caught_up_at = self.ctx.clock()
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
        """Commit, retrying the whole unit of work when the database chose this transaction as
        the victim of a conflict with another ingest worker: a deadlock, a serialization
        failure, or a unique key another worker committed first (an alarm raised by both). The
        transaction rolled back whole, wherever the error surfaced (a statement, an autoflush,
        the commit), and trying again is the standard answer."""
        for attempt in range(1, RETRIES_ON_CONFLICT + 1):
            try:
                return self._commit(self.ctx, batch)
            except DBAPIError as exc:
                if attempt == RETRIES_ON_CONFLICT or not is_conflict(exc):
                    raise
                log.info("batch of %d lost a database conflict (%s); retrying", len(batch), sqlstate(exc))
                self.ctx.metrics.inc("thanthien_hub_ingest_retries_total")
                self._stop.wait(random.uniform(0, 0.01 * attempt))  # do not meet the same worker again
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
            outcome = self._commit_retrying([item])
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


TOPICS_KEPT = 200_000
"""Parsed topics the worker remembers (about 5 per node: a province's fleet several times)."""

RETRIES_ON_CONFLICT = 8
CONFLICT_SQLSTATES = frozenset({"40P01", "40001", "23505"})
"""deadlock detected, serialization failure, unique violation (a row another worker committed
while this transaction ran: it sees it when tried again)."""


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a database error, looked for along its causes (SQLAlchemy wraps the
    driver's error as ``orig``; an autoflush or a commit re-raises it)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        orig = getattr(current, "orig", None)
        state = getattr(current, "sqlstate", None) or getattr(orig, "sqlstate", None)
        if state:
            return str(state)
        current = current.__cause__ or current.__context__
    return None


def is_conflict(exc: BaseException) -> bool:
    return sqlstate(exc) in CONFLICT_SQLSTATES


def _groups(batch: list[Incoming]) -> dict[str, list[Incoming]]:
    """The batch by kind, in :data:`ORDER` (unknown kinds last), each in arrival order."""
    groups: dict[str, list[Incoming]] = {}
    for item in batch:
        groups.setdefault(item.kind, []).append(item)
    rank = {kind: i for i, kind in enumerate(ORDER)}
    return dict(sorted(groups.items(), key=lambda kv: rank.get(kv[0], len(rank))))
