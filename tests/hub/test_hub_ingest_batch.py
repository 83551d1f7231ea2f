"""Ingest by the batch (issue 16 item 1), on SQLite and PostgreSQL: a batch costs a bounded number
of statements whatever its size, its kinds are grouped without changing what each node ends up
as, node rows are written once per node in node id order, conflicts with another worker are
retried whole, and a retained message handled again (delivered again on a reconnect, or by two
ingest transactions at once while the retained state changes owner) ends as if handled once."""

from __future__ import annotations

import random
import threading
from types import SimpleNamespace

import psycopg
import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import OperationalError

from hub.hub_helpers import incoming, node_state, rating, rating_msg, telemetry
from thanthien.hub.db.models import (
    Alarm,
    AlarmNotification,
    CameraPeriod,
    CameraStatus,
    Node,
    NodeStateChange,
    Rating,
)
from thanthien.hub.ingest.worker import IngestWorker, commit_batch
from thanthien.hub.services import alarms, registry
from thanthien.hub.settings import RegistrySection
from thanthien.protocol import Topics
from thanthien.protocol.payloads import Ack, CameraHealth, decode

T = Topics()


def declare(ctx, n_nodes: int, *, cameras: bool = False) -> list[str]:
    """``n_nodes`` registered nodes, each with box-1 at counter quay-<i % 5> (and cam-1)."""
    nodes = [f"node-{i:02d}" for i in range(n_nodes)]
    devices = lambda i: [{"code": "box-1", "kind": "rating_box", "counter": f"quay-{i % 5}"}] + (  # noqa: E731
        [{"code": "cam-1", "kind": "camera"}] if cameras else [])
    with ctx.db.session() as s:
        registry.apply_declarations(s, registry=RegistrySection(
            counters=[{"code": f"quay-{i}", "name": f"Quầy {i}"} for i in range(5)],
            nodes=[{"id": n, "devices": devices(i)} for i, n in enumerate(nodes)]))
    return nodes


def mixed_batch(ctx, nodes: list[str], size: int, *, seed: int = 1, first_seq: int = 1) -> list:
    """Ratings and telemetry interleaved over the nodes, as they come off the broker."""
    rng = random.Random(seed)
    seqs = dict.fromkeys(nodes, first_seq - 1)
    out = []
    for i in range(size):
        node = nodes[rng.randrange(len(nodes))]
        if i % 4 == 3:
            sample = telemetry(node=node, at=ctx.clock())
            out.append(incoming(T.telemetry(node), sample.to_bytes(), ctx.clock()))
        else:
            seqs[node] += 1
            counter = f"quay-{int(node.rsplit('-', 1)[1]) % 5}"  # where declare() put its box
            out.append(rating_msg(rating(node=node, seq=seqs[node], counter=counter, pressed_at=ctx.clock()),
                                  ctx.clock()))
    return out


def bring_online(ctx, nodes: list[str]) -> None:
    """Every node seen and online (its first telemetry), so a later batch is steady state."""
    commit_batch(ctx, [incoming(T.telemetry(n), telemetry(node=n, at=ctx.clock()).to_bytes(), ctx.clock())
                       for n in nodes])
    ctx.clock.advance(1)


class Statements:
    """Every SQL statement the engine runs while this is attached, with its parameters."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.seen: list[tuple[str, object]] = []

    def __enter__(self) -> Statements:
        event.listen(self.engine, "before_cursor_execute", self._on)
        return self

    def __exit__(self, *_exc) -> None:
        event.remove(self.engine, "before_cursor_execute", self._on)

    def _on(self, _conn, _cursor, statement, parameters, _context, _many) -> None:
        self.seen.append((statement, parameters))


def count(db, model) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(model))


def test_a_batch_costs_the_same_statements_whatever_its_messages_and_nodes(ctx):
    nodes = declare(ctx, 40)
    bring_online(ctx, nodes)
    with Statements(ctx.db.engine) as small:
        commit_batch(ctx, mixed_batch(ctx, nodes[:4], 20, seed=2, first_seq=100))
    ctx.clock.advance(1)
    with Statements(ctx.db.engine) as large:
        commit_batch(ctx, mixed_batch(ctx, nodes, 400, seed=3, first_seq=200))
    assert len(large.seen) <= len(small.seen) + 2, "\n".join(s[:60] for s, _ in large.seen)


def test_a_batch_of_node_states_costs_the_same_statements_for_forty_nodes_as_for_four(ctx, clock):
    """After an outage a batch brings hundreds of nodes back online: their rows, and the rows
    of their state history, are written by the batch, not one statement per node."""
    nodes = declare(ctx, 44)

    def online(names: list[str]) -> list:
        return [incoming(T.node_state(n), node_state("online", 1, node=n).to_bytes(), clock()) for n in names]

    with Statements(ctx.db.engine) as small:
        commit_batch(ctx, online(nodes[:4]))
    with Statements(ctx.db.engine) as large:
        commit_batch(ctx, online(nodes[4:]))
    assert len(large.seen) == len(small.seen), "\n".join(s[:60] for s, _ in large.seen)
    with ctx.db.session() as s:
        history = s.execute(select(NodeStateChange.node_id, NodeStateChange.state)).all()
    assert sorted(history) == [(n, "online") for n in nodes]


def test_node_rows_are_taken_once_per_node_in_node_id_order(ctx):
    nodes = declare(ctx, 12)
    bring_online(ctx, nodes[:6])  # the other six come online in the batch: their state changes too
    with Statements(ctx.db.engine) as run:
        commit_batch(ctx, mixed_batch(ctx, list(reversed(nodes)), 120, seed=5, first_seq=100))
    takes = [ids for statement, parameters in run.seen if (ids := _node_rows_taken(statement, parameters))]
    first, later = takes[0], takes[1:]
    assert first == sorted(set(first)) and len(first) >= 6
    for ids in later:  # rows the first statement holds already, in the same order
        assert ids == sorted(ids) and set(ids) <= set(first)


def _node_rows_taken(statement: str, parameters) -> list[str]:
    """The node rows a statement locks or writes, in the order it takes them."""
    text = " ".join(statement.upper().split())
    if text.startswith("SELECT NODES.ID FROM NODES") and "FOR UPDATE" in text:
        assert "ORDER BY NODES.ID" in text  # PostgreSQL locks the sorted rows one by one
        return sorted(parameters.values())
    if not text.startswith("UPDATE NODES"):
        return []
    if isinstance(parameters, dict) and isinstance(parameters.get("b_id"), list):
        return parameters["b_id"]  # one UPDATE ... FROM unnest(...) on rows locked before
    rows = parameters if isinstance(parameters, list) else [parameters]
    return [next(v for k, v in p.items() if k.endswith("id")) if isinstance(p, dict) else p[-1]
            for p in rows]  # positional (SQLite): WHERE nodes.id = ? comes last


def test_a_clean_stop_in_the_batch_of_the_nodes_last_telemetry_leaves_it_offline(ctx, clock):
    declare(ctx, 1)
    online = incoming(T.node_state("node-00"), node_state("online", 1, node="node-00").to_bytes(), clock())
    IngestWorker(ctx).process([online])
    sample = incoming(T.telemetry("node-00"), telemetry(node="node-00", session=1).to_bytes(), clock())
    stop = incoming(T.node_state("node-00"), node_state("offline", 1, node="node-00").to_bytes(), clock())
    IngestWorker(ctx).process([sample, stop])
    with ctx.db.session() as s:
        assert s.get(Node, "node-00").state == "offline"


def test_telemetry_of_a_new_session_before_its_online_state_in_one_batch_is_online(ctx, clock):
    declare(ctx, 1)
    IngestWorker(ctx).process([incoming(T.node_state("node-00"), node_state("lost", 1, node="node-00")
                                        .to_bytes(), clock())])
    sample = incoming(T.telemetry("node-00"), telemetry(node="node-00", session=2).to_bytes(), clock())
    online = incoming(T.node_state("node-00"), node_state("online", 2, node="node-00").to_bytes(), clock())
    IngestWorker(ctx).process([sample, online])
    with ctx.db.session() as s:
        node = s.get(Node, "node-00")
        assert (node.state, node.session) == ("online", 2)
        assert alarms.active_alarm(s, kind="node_offline", subject="node-00") is None


def test_the_spike_rule_counts_every_rating_of_the_batch_once(ctx, clock):
    declare(ctx, 3)
    batch = []
    for i, node in enumerate(["node-00", "node-00", "node-00", "node-00", "node-00", "node-00"]):
        batch.append(rating_msg(rating(node=node, seq=i + 1, score=1, counter="quay-0", pressed_at=clock()),
                                clock()))
        batch.append(incoming(T.telemetry("node-01"), telemetry(node="node-01").to_bytes(), clock()))
    with Statements(ctx.db.engine) as run:
        IngestWorker(ctx).process(batch)
    with ctx.db.session() as s:
        alarm = alarms.active_alarm(s, kind="negative_spike", subject="quay-0")
        assert alarm is not None and alarm.details["presses"] == 6
    assert sum(1 for st, _ in run.seen if "count(" in st.lower() and "ratings" in st.lower()) == 1


def test_an_alarm_raised_and_cleared_within_one_batch_is_one_cleared_row(ctx, clock):
    declare(ctx, 1)
    full = telemetry(node="node-00", outbox_depth=500)
    drained = telemetry(node="node-00", outbox_depth=0)
    IngestWorker(ctx).process([incoming(T.telemetry("node-00"), full.to_bytes(), clock()),
                               incoming(T.telemetry("node-00"), drained.to_bytes(), clock())])
    with ctx.db.session() as s:
        rows = list(s.scalars(select(Alarm).where(Alarm.kind == "outbox_backlog")))
    assert [(a.subject, a.cleared_at is not None) for a in rows] == [("node-00", True)]


def test_alarms_raised_in_a_batch_reach_the_webhook_queue_with_their_ids(ctx, clock):
    ctx.settings.alarms.webhook_url = "http://127.0.0.1:9/alarms"
    sample = telemetry(node="node-new", outbox_depth=500)
    IngestWorker(ctx).process([incoming(T.telemetry("node-new"), sample.to_bytes(), clock())])
    with ctx.db.session() as s:
        ids = {a.kind: a.id for a in s.scalars(select(Alarm))}
        queued = {(n.alarm_id, n.body["alarm"]["id"], n.event) for n in s.scalars(select(AlarmNotification))}
    assert set(ids) == {"node_unregistered", "outbox_backlog"}
    assert queued == {(i, i, "raised") for i in ids.values()}


def test_a_node_first_seen_in_a_batch_is_stored_once_with_its_sequence(ctx, clock):
    events = [rating(node="node-x", seq=i) for i in (1, 2, 3)]
    sample = incoming(T.telemetry("node-x"), telemetry(node="node-x").to_bytes(), clock())
    IngestWorker(ctx).process([rating_msg(e, clock()) for e in events] + [sample])
    with ctx.db.session() as s:
        node = s.get(Node, "node-x")
        assert (node.registered, node.last_seq, node.state) == (False, 3, "online")
    assert count(ctx.db, Rating) == 3


def test_a_deadlock_in_the_autoflush_of_the_node_rows_is_retried_whole_and_acked(ctx, clock):
    declare(ctx, 4)
    sent: list[Ack] = []
    ctx.mqtt = SimpleNamespace(publish=lambda topic, payload, qos: sent.append(decode(Ack, payload)))
    failed: list[str] = []

    def deadlock_once(_conn, _cursor, statement, _parameters, _context, _many) -> None:
        if not failed and statement.lstrip().upper().startswith("UPDATE NODES"):
            failed.append(statement)  # what PostgreSQL answers the victim of two workers' lock cycle
            raise OperationalError(statement, {}, psycopg.errors.DeadlockDetected("deadlock detected"))

    batch = mixed_batch(ctx, ["node-00", "node-01", "node-02", "node-03"], 40)
    event.listen(ctx.db.engine, "before_cursor_execute", deadlock_once)
    try:
        IngestWorker(ctx).process(batch)
    finally:
        event.remove(ctx.db.engine, "before_cursor_execute", deadlock_once)
    ratings = sum(1 for m in batch if m.kind == "rating")
    assert failed and count(ctx.db, Rating) == ratings
    assert sum(len(a.event_ids) for a in sent) == ratings
    assert ctx.metrics.value("thanthien_hub_ingest_retries_total") == 1
    assert ctx.metrics.value("thanthien_hub_ingest_errors_total") == 0


def test_two_workers_on_one_database_store_and_ack_every_message_without_a_conflict(ctx, clock):
    nodes = declare(ctx, 10)
    bring_online(ctx, nodes)
    sent: list[Ack] = []
    lock = threading.Lock()

    def publish(_topic, payload, qos) -> None:
        with lock:
            sent.append(decode(Ack, payload))
    ctx.mqtt = SimpleNamespace(publish=publish)
    shares = [[mixed_batch(ctx, nodes, 60, seed=10 * w + b, first_seq=1000 * (w + 1) + 100 * b)
               for b in range(6)] for w in range(2)]  # every press the best level: no spike alarm
    workers = [IngestWorker(ctx), IngestWorker(ctx)]
    threads = [threading.Thread(target=lambda w=w, share=share: [w.process(b) for b in share])
               for w, share in zip(workers, shares, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    ratings = sum(1 for share in shares for b in share for m in b if m.kind == "rating")
    assert count(ctx.db, Rating) == ratings
    assert sum(len(a.event_ids) for a in sent) == ratings
    assert ctx.metrics.value("thanthien_hub_ingest_retries_total") == 0
    assert ctx.metrics.value("thanthien_hub_ingest_errors_total") == 0


# -- retained kinds: a message handled again ends as if handled once --------------------------
def test_a_retained_node_state_handled_again_is_one_state_and_one_alarm(ctx, clock):
    declare(ctx, 1)
    lost = incoming(T.node_state("node-00"), node_state("lost", 3, node="node-00").to_bytes(), clock())
    IngestWorker(ctx).process([lost])
    clock.advance(0.5)
    IngestWorker(ctx).process([lost])  # the same retained message again (a reconnect, a new owner)
    with ctx.db.session() as s:
        node = s.get(Node, "node-00")
        offline = list(s.scalars(select(Alarm).where(Alarm.kind == "node_offline")))
    assert (node.state, node.session) == ("lost", 3)
    assert [(a.subject, a.cleared_at) for a in offline] == [("node-00", None)]


def test_a_retained_camera_report_handled_again_is_one_status_and_one_period(ctx, clock):
    declare(ctx, 1, cameras=True)
    report = CameraHealth(node="node-00", camera="cam-1", state="down", reason="no frames", since=clock(),
                          at=clock())
    msg = incoming(T.camera_health("node-00", "cam-1"), report.to_bytes(), clock())
    IngestWorker(ctx).process([msg])
    clock.advance(1)
    IngestWorker(ctx).process([msg])
    with ctx.db.session() as s:
        statuses = [(c.state, c.since) for c in s.scalars(select(CameraStatus))]
        periods = [(p.state, p.ended_at) for p in s.scalars(select(CameraPeriod))]
    assert statuses == [("down", report.since)]
    assert periods == [("down", None)]


@pytest.mark.parametrize("kind", ["node_state", "camera_health"])
def test_the_same_retained_messages_committed_by_two_workers_at_once_end_as_one(ctx, clock, kind):
    declare(ctx, 6, cameras=True)
    if kind == "node_state":
        msgs = [incoming(T.node_state(n), node_state("lost", 2, node=n).to_bytes(), clock())
                for n in [f"node-{i:02d}" for i in range(6)]]
    else:
        msgs = [incoming(T.camera_health(n, "cam-1"), CameraHealth(
            node=n, camera="cam-1", state="ok", reason="", since=clock(), at=clock()).to_bytes(), clock())
            for n in [f"node-{i:02d}" for i in range(6)]]
    workers = [IngestWorker(ctx), IngestWorker(ctx)]
    threads = [threading.Thread(target=w.process, args=(list(order),))
               for w, order in zip(workers, (msgs, list(reversed(msgs))), strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    with ctx.db.session() as s:
        if kind == "node_state":
            assert {n.state for n in s.scalars(select(Node))} == {"lost"}
            assert s.scalar(select(func.count()).select_from(Alarm).where(Alarm.kind == "node_offline")) == 6
        else:
            assert s.scalar(select(func.count()).select_from(CameraStatus)) == 6
            assert s.scalar(select(func.count()).select_from(CameraPeriod)) == 6
    assert ctx.metrics.value("thanthien_hub_ingest_errors_total") == 0
