"""Rating ingest on SQLite and PostgreSQL: exactly once, dead letters, registry, attribution."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from hub.hub_helpers import incoming, rating, rating_msg
from thanthien.hub.db.models import DeadLetter, Node, Rating
from thanthien.hub.ingest.base import Outcome
from thanthien.hub.ingest.table import HANDLERS, SHAREABLE
from thanthien.hub.ingest.worker import IngestWorker, commit_batch
from thanthien.hub.roles import SYSTEM
from thanthien.hub.services import registry
from thanthien.hub.settings import RegistrySection
from thanthien.protocol import EVENT_KINDS, Topics
from thanthien.protocol.payloads import MAX_PAYLOAD_BYTES, Ack, PlaybackEvent, decode

T = Topics()


def count(db, model) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(model))


def test_each_rating_is_stored_once_even_when_sent_again(ctx, clock):
    events = [rating(seq=i) for i in range(1, 51)]
    worker = IngestWorker(ctx)
    worker.process([rating_msg(e, clock()) for e in events])
    worker.process([rating_msg(e, clock()) for e in events[:20]])
    assert count(ctx.db, Rating) == 50
    assert ctx.metrics.value("thanthien_hub_ratings_stored_total") == 50
    assert ctx.metrics.value("thanthien_hub_ratings_duplicate_total") == 20


def test_a_rating_the_node_could_not_correct_is_stored_marked_uncertain(ctx, clock):
    sure, unsure = rating(seq=1), rating(seq=2).model_copy(update={"clock_uncertain": True})
    IngestWorker(ctx).process([rating_msg(sure, clock()), rating_msg(unsure, clock())])
    with ctx.db.session(write=False) as s:
        marks = dict(s.execute(select(Rating.seq, Rating.clock_uncertain)).all())
    assert marks == {1: False, 2: True}


def test_same_event_twice_in_one_batch_is_stored_once(ctx, clock):
    event = rating()
    IngestWorker(ctx).process([rating_msg(event, clock()), rating_msg(event, clock())])
    assert count(ctx.db, Rating) == 1


def test_same_event_id_from_two_nodes_is_two_ratings(ctx, clock):
    a = rating(node="node-a")
    b = rating(node="node-b", event_id=a.event_id)
    IngestWorker(ctx).process([rating_msg(a, clock()), rating_msg(b, clock())])
    assert count(ctx.db, Rating) == 2


def test_malformed_payload_goes_to_dead_letters_with_reason(ctx, clock):
    IngestWorker(ctx).process([incoming(T.rating("node-a"), b'{"event_id": "nope"}', clock())])
    with ctx.db.session() as s:
        letter = s.scalars(select(DeadLetter)).one()
    assert letter.kind == "rating" and letter.node_id == "node-a"
    assert "invalid RatingEvent" in letter.reason
    assert count(ctx.db, Rating) == 0
    assert ctx.metrics.value("thanthien_hub_dead_letters_total", kind="rating") == 1


def test_spoofed_node_id_goes_to_dead_letters(ctx, clock):
    IngestWorker(ctx).process([rating_msg(rating(node="node-b"), clock(), topic_node="node-a")])
    with ctx.db.session() as s:
        letter = s.scalars(select(DeadLetter)).one()
    assert "does not match topic node 'node-a'" in letter.reason
    assert count(ctx.db, Rating) == 0


def test_oversized_payload_goes_to_dead_letters_truncated(ctx, clock):
    IngestWorker(ctx).process([incoming(T.rating("node-a"), b"x" * (MAX_PAYLOAD_BYTES + 1), clock())])
    with ctx.db.session() as s:
        letter = s.scalars(select(DeadLetter)).one()
    assert "exceeds" in letter.reason and letter.size == MAX_PAYLOAD_BYTES + 1
    assert len(letter.payload) < letter.size


def test_bad_message_does_not_stop_the_good_ones_in_its_batch(ctx, clock):
    good = [rating(seq=i) for i in (1, 2)]
    batch = [rating_msg(good[0], clock()), incoming(T.rating("node-a"), b"{", clock()),
             rating_msg(good[1], clock())]
    IngestWorker(ctx).process(batch)
    assert count(ctx.db, Rating) == 2
    assert count(ctx.db, DeadLetter) == 1


def test_unknown_node_is_listed_as_unregistered_with_an_alarm(ctx, clock):
    IngestWorker(ctx).process([rating_msg(rating(node="node-x"), clock())])
    with ctx.db.session() as s:
        unregistered = registry.list_nodes(s, viewer=SYSTEM, registered=False)
        assert [n.id for n in unregistered] == ["node-x"]
        from thanthien.hub.services.alarms import active_alarm
        assert active_alarm(s, kind="node_unregistered", subject="node-x") is not None


def test_declared_node_is_registered(ctx, clock):
    declared = RegistrySection(counters=[{"code": "quay-1", "name": "Quầy 1"}], nodes=[
        {"id": "node-a", "name": "Một cửa", "devices": [{"code": "box-1", "kind": "rating_box",
                                                          "counter": "quay-1"}]}])
    with ctx.db.session() as s:
        registry.apply_declarations(s, registry=declared)
    IngestWorker(ctx).process([rating_msg(rating(node="node-a"), clock())])
    with ctx.db.session() as s:
        assert registry.list_nodes(s, viewer=SYSTEM, registered=False) == []
    assert count(ctx.db, Rating) == 1


def test_sequence_gap_is_logged(ctx, clock, caplog):
    worker = IngestWorker(ctx)
    with caplog.at_level(logging.WARNING):
        worker.process([rating_msg(rating(seq=1), clock()), rating_msg(rating(seq=5), clock())])
    assert "gap: 2..4" in caplog.text
    assert ctx.metrics.value("thanthien_hub_sequence_gaps_total") == 1
    with ctx.db.session() as s:
        assert s.get(Node, "node-a").last_seq == 5


def test_rating_is_attributed_to_the_officer_on_duty_at_press_time(ctx, clock):
    t0 = clock()
    with ctx.db.session() as s:
        registry.create_counter(s, actor=SYSTEM, code="quay-1", name="Quầy 1")
        lan = registry.create_officer(s, actor=SYSTEM, code="lan", full_name="Nguyễn Thị Lan")
        minh = registry.create_officer(s, actor=SYSTEM, code="minh", full_name="Trần Văn Minh")
        registry.add_shift(s, actor=SYSTEM, officer_id=lan.id, counter="quay-1",
                           starts_at=t0 - timedelta(hours=1), ends_at=t0 + timedelta(hours=1))
        registry.add_shift(s, actor=SYSTEM, officer_id=minh.id, counter="quay-1",
                           starts_at=t0 + timedelta(hours=1), ends_at=t0 + timedelta(hours=4))
        lan_id, minh_id = lan.id, minh.id
    events = [rating(seq=1, pressed_at=t0), rating(seq=2, pressed_at=t0 + timedelta(hours=2)),
              rating(seq=3, pressed_at=t0 + timedelta(hours=5))]
    received = t0 + timedelta(hours=5)  # after the last press: the hub refuses presses from the future
    IngestWorker(ctx).process([rating_msg(e, received) for e in events])
    with ctx.db.session() as s:
        got = dict(s.execute(select(Rating.seq, Rating.officer_id)).all())
    assert got == {1: lan_id, 2: minh_id, 3: None}


def test_shift_added_later_attributes_ratings_already_stored(ctx, clock):
    t0 = clock()
    IngestWorker(ctx).process([rating_msg(rating(pressed_at=t0), clock())])
    with ctx.db.session() as s:
        registry.create_counter(s, actor=SYSTEM, code="quay-1", name="Quầy 1")
        lan = registry.create_officer(s, actor=SYSTEM, code="lan", full_name="Nguyễn Thị Lan")
        registry.add_shift(s, actor=SYSTEM, officer_id=lan.id, counter="quay-1", starts_at=t0,
                           ends_at=t0 + timedelta(hours=8))
    with ctx.db.session() as s:
        assert s.scalar(select(Rating.officer_id)) == lan.id


def test_message_whose_handler_fails_is_dead_lettered_and_the_rest_of_the_batch_is_stored(ctx, clock,
                                                                                          monkeypatch):
    def broken(session, ctx, batch, out):
        raise RuntimeError("boom")

    monkeypatch.setitem(HANDLERS, "telemetry", broken)
    batch = [rating_msg(rating(seq=1), clock()), incoming(T.telemetry("node-a"), b"{}", clock()),
             rating_msg(rating(seq=2), clock())]
    IngestWorker(ctx).process(batch)
    assert count(ctx.db, Rating) == 2
    with ctx.db.session() as s:
        letter = s.scalars(select(DeadLetter)).one()
    assert letter.reason == "storage error: RuntimeError: boom"
    assert ctx.metrics.value("thanthien_hub_ingest_errors_total") == 1


def test_database_outage_stores_nothing_acks_nothing_and_does_not_raise(tmp_path, clock):
    from hub.hub_helpers import hub_settings
    from thanthien.hub.context import HubContext
    from thanthien.hub.db.session import Database

    down = Database("postgresql+psycopg://postgres@127.0.0.1:1/nowhere")
    ctx = HubContext(settings=hub_settings(tmp_path), db=down, clock=clock)
    try:
        IngestWorker(ctx).process([rating_msg(rating(), clock())])
    finally:
        down.dispose()
    assert ctx.metrics.value("thanthien_hub_ingest_errors_total") == 1
    assert ctx.metrics.value("thanthien_hub_ingest_batches_total") == 0  # no commit, so no acks


def test_a_batch_that_loses_a_deadlock_is_retried_at_once_and_acked(ctx):
    import psycopg
    from sqlalchemy.exc import OperationalError

    calls: list[int] = []

    def deadlock_once(ctx, batch):
        calls.append(len(batch))
        if len(calls) == 1:  # what PostgreSQL answers the victim of two workers' lock cycle
            raise OperationalError("UPDATE nodes ...", {}, psycopg.errors.DeadlockDetected("deadlock"))
        return commit_batch(ctx, batch)

    worker = IngestWorker(ctx, commit=deadlock_once)
    events = [rating(seq=i) for i in range(1, 4)]
    worker.process([rating_msg(e, ctx.clock()) for e in events])
    assert calls == [3, 3]
    with ctx.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Rating)) == 3
    assert ctx.metrics.value("thanthien_hub_ingest_retries_total") == 1


@pytest.fixture
def sent_acks(ctx) -> list[tuple[str, Ack]]:
    """Every ack the worker publishes, as (topic, Ack), through a stand-in for the hub's link."""
    sent: list[tuple[str, Ack]] = []
    ctx.mqtt = SimpleNamespace(publish=lambda topic, payload, qos: sent.append((topic, decode(Ack, payload))))
    return sent


def playback(node: str = "loa-1") -> PlaybackEvent:
    return PlaybackEvent(event_id=uuid.uuid4(), node=node, occurrence_id="b1-20260302T0630",
                         status="finished", at=rating().pressed_at, media_sha256="0" * 64)


def test_a_rating_batch_is_acked_as_rating_to_its_node(ctx, clock, sent_acks):
    event = rating(node="node-a")
    IngestWorker(ctx).process([rating_msg(event, clock())])
    assert [(topic, ack.kind, ack.event_ids) for topic, ack in sent_acks] == [
        (T.ack("node-a"), "rating", [event.event_id])]


def test_a_playback_batch_is_acked_as_playback_to_its_node(ctx, clock, sent_acks):
    event = playback()
    IngestWorker(ctx).process([incoming(T.event("playback", "loa-1"), event.to_bytes(), clock())])
    assert [(topic, ack.kind, ack.event_ids) for topic, ack in sent_acks] == [
        (T.ack("loa-1"), "playback", [event.event_id])]


def test_a_mixed_batch_acks_each_kind_under_its_own_kind(ctx, clock, sent_acks):
    r, pb = rating(node="node-a"), playback(node="node-a")
    IngestWorker(ctx).process([rating_msg(r, clock()),
                               incoming(T.event("playback", "node-a"), pb.to_bytes(), clock())])
    assert sorted((ack.kind, ack.event_ids) for _, ack in sent_acks) == [
        ("playback", [pb.event_id]), ("rating", [r.event_id])]


def test_every_event_kind_has_an_ingest_handler():
    assert set(EVENT_KINDS) <= set(HANDLERS)


def test_only_kinds_that_are_not_retained_are_shared_between_workers():
    # node state, camera health and config status are retained: every worker (or the owner) reads them
    assert {"rating", "playback", "telemetry", "camera_thumbnail"} == SHAREABLE


def test_an_outcome_refuses_to_ack_a_kind_that_is_not_an_event():
    with pytest.raises(ValueError, match="not a node event kind"):
        Outcome().ack("telemetry", {"node-a": [uuid.uuid4()]})
