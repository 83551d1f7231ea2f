"""The hub's ingest on a real Mosquitto: commit first, then ack; dead letters; hub presence."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from hub.hub_helpers import hub_settings, rating
from support import HUB, NODE_A, Collector, connected_link
from thanthien.hub.db.models import DeadLetter, Rating
from thanthien.hub.runtime import HubRuntime
from thanthien.protocol import Topics
from thanthien.protocol.payloads import MAX_PAYLOAD_BYTES, Ack, HubState, decode

T = Topics()


@pytest.fixture
def hub(broker, db, tmp_path):
    settings = hub_settings(
        tmp_path, database={"url": db.url.render_as_string(hide_password=False)},
        mqtt={"host": "127.0.0.1", "port": broker.port, "username": HUB.username, "password": HUB.password,
              "reconnect_min_s": 0.1, "reconnect_max_s": 1.0},
        ingest={"client_id": f"hub-test-{uuid.uuid4().hex[:8]}"})
    runtime = HubRuntime(settings, roles=("ingest",))
    runtime.start()
    assert runtime.link.wait_connected(10) and runtime.link.subscribed.wait(10)
    yield runtime
    runtime.stop()


@pytest.fixture
def node(broker):
    acks = Collector()
    link = connected_link(broker.port, NODE_A, f"node-a-{uuid.uuid4().hex[:6]}", {T.ack("node-a"): acks})
    yield link, acks
    link.stop()


def acked_ids(acks: Collector) -> set[uuid.UUID]:
    return {i for m in acks.messages for i in decode(Ack, m.payload).event_ids}


def stored(db) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(Rating))


def test_ratings_over_mqtt_are_stored_then_acked(hub, node, db):
    link, acks = node
    events = [rating(seq=i) for i in range(1, 101)]
    for e in events:
        link.publish(T.rating("node-a"), e.to_bytes(), qos=1)
    want = {e.event_id for e in events}
    assert acks.wait_for(lambda _m: acked_ids(acks) >= want, timeout=15)
    assert stored(db) == 100


def test_replayed_ratings_are_acked_again_and_not_counted(hub, node, db):
    link, acks = node
    events = [rating(seq=i) for i in range(1, 11)]
    for _round in range(2):
        for e in events:
            link.publish(T.rating("node-a"), e.to_bytes(), qos=1)
    assert acks.wait_for(lambda msgs: sum(len(decode(Ack, m.payload).event_ids) for m in msgs) >= 20, 15)
    assert stored(db) == 10


def test_malformed_spoofed_and_oversized_payloads_land_in_dead_letters(hub, node, db):
    link, acks = node
    link.publish_confirmed(T.rating("node-a"), b"not json")
    link.publish_confirmed(T.rating("node-a"), rating(node="node-b").to_bytes())
    link.publish_confirmed(T.rating("node-a"), b"{" + b" " * MAX_PAYLOAD_BYTES + b"}")
    marker = rating(seq=1)  # in order after the bad ones: its ack means they were handled
    link.publish_confirmed(T.rating("node-a"), marker.to_bytes())
    assert acks.wait_for(lambda _m: marker.event_id in acked_ids(acks))
    with db.session() as s:
        reasons = sorted(s.scalars(select(DeadLetter.reason)))
    assert len(reasons) == 3
    assert any("does not match topic node" in r for r in reasons)
    assert any("exceeds" in r for r in reasons)
    assert any("invalid RatingEvent" in r for r in reasons)
    assert stored(db) == 1


def test_hub_publishes_retained_presence(hub, broker):
    seen = Collector()
    watcher = connected_link(broker.port, NODE_A, f"presence-{uuid.uuid4().hex[:6]}", {T.hub_state(): seen})
    try:
        assert seen.wait_for(lambda msgs: any(decode(HubState, m.payload).state == "online" for m in msgs))
        hub.stop()
        assert seen.wait_for(lambda msgs: decode(HubState, msgs[-1].payload).state == "offline")
    finally:
        watcher.stop()


def test_two_ingest_workers_share_the_ratings_and_store_each_once(broker_factory, db, tmp_path):
    private = broker_factory()
    runtimes = []
    for n in range(2):
        settings = hub_settings(
            tmp_path / f"w{n}", database={"url": db.url.render_as_string(hide_password=False)},
            mqtt={"host": "127.0.0.1", "port": private.port, "username": HUB.username,
                  "password": HUB.password, "reconnect_min_s": 0.1, "reconnect_max_s": 1.0},
            ingest={"client_id": f"hub-worker-{n}", "shared_group": "ingest", "batch_size": 20})
        runtime = HubRuntime(settings, roles=("ingest",))
        runtime.start()
        assert runtime.link.wait_connected(10) and runtime.link.subscribed.wait(10)
        runtimes.append(runtime)
    acks = Collector()
    link = connected_link(private.port, NODE_A, "node-a-shared", {T.ack("node-a"): acks})
    try:
        events = [rating(seq=i) for i in range(1, 201)]
        for e in events:
            link.publish(T.rating("node-a"), e.to_bytes(), qos=1)
        assert acks.wait_for(lambda _m: acked_ids(acks) >= {e.event_id for e in events}, timeout=20)
        shares = [r.ctx.metrics.value("thanthien_hub_ratings_stored_total") for r in runtimes]
        assert sum(shares) == 200 and min(shares) > 0
        assert stored(db) == 200
    finally:
        link.stop()
        for runtime in runtimes:
            runtime.stop()


def test_every_ack_arrives_after_its_rating_is_committed(hub, broker, db):
    unseen: list[uuid.UUID] = []
    checked = Collector()

    def on_ack(message) -> None:
        ids = decode(Ack, message.payload).event_ids
        with db.session(write=False) as s:  # what another connection sees when the ack arrives
            present = set(s.scalars(select(Rating.event_id).where(Rating.event_id.in_(ids))))
        unseen.extend(i for i in ids if i not in present)
        checked(message)

    link = connected_link(broker.port, NODE_A, f"node-a-{uuid.uuid4().hex[:6]}", {T.ack("node-a"): on_ack})
    try:
        events = [rating(seq=i) for i in range(1, 51)]
        for e in events:
            link.publish(T.rating("node-a"), e.to_bytes(), qos=1)
        assert checked.wait_for(lambda _m: acked_ids(checked) >= {e.event_id for e in events}, timeout=15)
    finally:
        link.stop()
    assert unseen == []
