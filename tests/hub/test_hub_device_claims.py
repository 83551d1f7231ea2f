"""A device speaks only for itself (issue 14 item 4), and press times from a clock that runs
ahead are refused: on SQLite and PostgreSQL through the ingest worker, and over a real
Mosquitto. The office node ``mot-cua`` has boxes at quay-1 and quay-2 and a camera; the hamlet
loudspeaker node ``loa-ban-hon`` has a speaker only."""

from __future__ import annotations

import uuid
from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import event, func, select

from hub.e2e import PressingAgent, edge_data
from hub.hub_helpers import hub_settings, incoming, rating, rating_msg, telemetry
from support import HUB, NODE_A, NODE_B, Collector, connected_link, wait_until
from thanthien.hub.db.models import (
    Alarm,
    Broadcast,
    CameraStatus,
    DeadLetter,
    Delivery,
    MediaItem,
    Occurrence,
    PlaybackReport,
    Rating,
)
from thanthien.hub.ingest.worker import IngestWorker
from thanthien.hub.runtime import HubRuntime
from thanthien.hub.services import alarms
from thanthien.hub.services.registry import apply_declarations
from thanthien.hub.settings import RegistrySection
from thanthien.protocol import Topics
from thanthien.protocol.payloads import Ack, CameraHealth, PlaybackEvent, decode

T = Topics()
OFFICE, SPEAKER = "mot-cua", "loa-ban-hon"
OCCURRENCE = "b1-20260302T023000Z"


def declarations(office: str = OFFICE, speaker: str = SPEAKER) -> dict:
    return {
        "counters": [{"code": "quay-1", "name": "Quầy 1"}, {"code": "quay-2", "name": "Quầy 2"}],
        "zones": [{"code": "ban-hon", "name": "Bản Hón"}],
        "nodes": [
            {"id": office, "name": "Bộ phận một cửa",
             "devices": [{"code": "box-1", "kind": "rating_box", "counter": "quay-1"},
                         {"code": "box-2", "kind": "rating_box", "counter": "quay-2"},
                         {"code": "cam-sanh", "kind": "camera"}]},
            {"id": speaker, "name": "Cụm loa Bản Hón",
             "devices": [{"code": "loa", "kind": "speaker", "zone": "ban-hon"}]},
        ],
    }


@pytest.fixture
def town(ctx):
    with ctx.db.session() as s:
        apply_declarations(s, registry=RegistrySection(**declarations()))
    return ctx


@pytest.fixture
def sent_acks(ctx) -> list[tuple[str, Ack]]:
    """Every ack the worker publishes, as (topic, Ack)."""
    sent: list[tuple[str, Ack]] = []
    ctx.mqtt = SimpleNamespace(publish=lambda topic, payload, qos: sent.append((topic, decode(Ack, payload))))
    return sent


def ingest(ctx, *messages) -> None:
    IngestWorker(ctx).process(list(messages))


def stored(ctx, model) -> int:
    with ctx.db.session(write=False) as s:
        return int(s.scalar(select(func.count()).select_from(model)))


def letters(ctx) -> list[DeadLetter]:
    with ctx.db.session(write=False) as s:
        rows = list(s.scalars(select(DeadLetter).order_by(DeadLetter.id)))
        s.expunge_all()
        return rows


def security_alarms(ctx) -> list[Alarm]:
    with ctx.db.session(write=False) as s:
        rows = list(s.scalars(select(Alarm).where(Alarm.kind == "claim_refused").order_by(Alarm.id)))
        s.expunge_all()
        return rows


# -- ratings -------------------------------------------------------------------------------
def test_a_rating_for_a_box_on_the_node_at_the_counter_it_serves_is_stored(town, clock):
    ingest(town, rating_msg(rating(node=OFFICE, box="box-2", counter="quay-2"), clock()))
    assert stored(town, Rating) == 1 and letters(town) == []


def test_a_speaker_nodes_rating_for_an_office_counter_is_dead_lettered_with_the_reason(town, clock):
    ingest(town, rating_msg(rating(node=SPEAKER, box="box-1", counter="quay-1", score=1), clock()))
    assert stored(town, Rating) == 0
    [letter] = letters(town)
    assert (letter.kind, letter.node_id) == ("rating", SPEAKER)
    assert letter.reason == "box 'box-1' is not a rating box the registry places on node 'loa-ban-hon'"


def test_a_rating_naming_another_counter_than_its_box_serves_is_dead_lettered(town, clock):
    ingest(town, rating_msg(rating(node=OFFICE, box="box-1", counter="quay-2"), clock()))
    assert stored(town, Rating) == 0
    [letter] = letters(town)
    assert letter.reason == "box 'box-1' of node 'mot-cua' serves 'quay-1', not counter 'quay-2'"


def test_a_refused_rating_is_acked_so_the_node_stops_sending_it(town, clock, sent_acks):
    forged = rating(node=SPEAKER, box="box-1")
    ingest(town, rating_msg(forged, clock()))
    assert [(topic, ack.kind, ack.event_ids) for topic, ack in sent_acks] == [
        (T.ack(SPEAKER), "rating", [forged.event_id])]


def test_refused_claims_are_counted_by_kind(town, clock):
    ingest(town, *[rating_msg(rating(node=SPEAKER, seq=i), clock()) for i in (1, 2, 3)])
    assert town.metrics.value("thanthien_hub_claims_refused_total", kind="rating") == 3
    assert town.metrics.value("thanthien_hub_dead_letters_total", kind="rating") == 3


def test_refusals_raise_one_security_alarm_per_node_for_it_staff_that_counts_them(town, clock):
    worker = IngestWorker(town)
    for batch in range(3):
        worker.process([rating_msg(rating(node=SPEAKER, seq=batch * 2 + i), clock()) for i in (1, 2)])
        clock.advance(60)
    [alarm] = security_alarms(town)
    assert (alarm.subject, alarm.audience, alarm.severity) == (SPEAKER, "it", "major")
    assert alarm.details["refused"] == {"rating": 6}
    assert "loa-ban-hon" in alarm.message and "6 đánh giá" in alarm.message


def test_each_node_speaking_for_others_has_its_own_security_alarm(town, clock):
    ingest(town, rating_msg(rating(node=SPEAKER), clock()),
           rating_msg(rating(node=OFFICE, box="box-9"), clock()))
    assert sorted(a.subject for a in security_alarms(town)) == sorted([OFFICE, SPEAKER])


def test_an_unregistered_nodes_ratings_are_kept_and_the_node_is_flagged(town, clock):
    ingest(town, rating_msg(rating(node="node-x", box="box-7", counter="quay-1"), clock()))
    assert stored(town, Rating) == 1 and security_alarms(town) == []
    with town.db.session(write=False) as s:
        assert alarms.active_alarm(s, kind="node_unregistered", subject="node-x") is not None


# -- press times ---------------------------------------------------------------------------
def test_a_press_time_ahead_of_the_hub_beyond_the_tolerance_is_dead_lettered_with_why(town, clock):
    town.settings.ingest.future_press_tolerance_s = 120
    ahead = rating(node=OFFICE, pressed_at=clock() + timedelta(hours=3))
    ingest(town, rating_msg(ahead, clock()))
    assert stored(town, Rating) == 0
    [letter] = letters(town)
    assert "is 10800 s ahead of the hub's clock" in letter.reason
    assert "ingest.future_press_tolerance_s = 120 s: the node's clock is wrong" in letter.reason
    assert town.metrics.value("thanthien_hub_future_presses_total", kind="rating") == 1


def test_a_press_time_ahead_within_the_tolerance_is_stored(town, clock):
    town.settings.ingest.future_press_tolerance_s = 120
    ingest(town, rating_msg(rating(node=OFFICE, pressed_at=clock() + timedelta(seconds=119)), clock()))
    assert stored(town, Rating) == 1


def test_a_press_time_from_a_clock_ahead_is_acked_and_raises_no_security_alarm(town, clock, sent_acks):
    ahead = rating(node=OFFICE, pressed_at=clock() + timedelta(days=1))
    ingest(town, rating_msg(ahead, clock()))
    assert [ack.event_ids for _, ack in sent_acks] == [[ahead.event_id]]
    assert security_alarms(town) == []


def test_the_press_time_tolerance_defaults_to_five_minutes(tmp_path):
    assert hub_settings(tmp_path).ingest.future_press_tolerance_s == 300


# -- playback reports ----------------------------------------------------------------------
@pytest.fixture
def occurrence(town, clock) -> str:
    """One occurrence of a broadcast that targeted the speaker node only."""
    now, sha = clock(), "a" * 64
    with town.db.session() as s:
        s.add(MediaItem(sha256=sha, title="Bản tin", duration_s=30.0, size_bytes=1, source_format="wav",
                        source_sha256=sha, created_at=now, created_by="can-bo"))
        s.flush()
        b = Broadcast(title="Bản tin sáng", media_sha256=sha, target_kind="nodes", target_zones=[],
                      target_nodes=[SPEAKER], volume=100, priority="normal", schedule_kind="once",
                      start_at=now + timedelta(minutes=30), weekdays=[], holidays=[], status="approved",
                      created_by="can-bo", created_at=now, updated_at=now)
        s.add(b)
        s.flush()
        s.add(Occurrence(id=OCCURRENCE, broadcast_id=b.id, start_at=now + timedelta(minutes=30),
                         duration_s=30.0, media_sha256=sha, priority="normal", volume=100,
                         title="Bản tin sáng", command=False))
        s.flush()
        s.add(Delivery(occurrence_id=OCCURRENCE, node_id=SPEAKER, status="pending", detail=""))
    return OCCURRENCE


def playback_msg(node: str, occurrence_id: str, at) -> tuple[PlaybackEvent, object]:
    e = PlaybackEvent(event_id=uuid.uuid4(), node=node, occurrence_id=occurrence_id, status="finished",
                      at=at, media_sha256="a" * 64)
    return e, incoming(T.playback(node), e.to_bytes(), at)


def test_a_playback_report_on_an_occurrence_that_targeted_the_node_moves_its_delivery(town, occurrence,
                                                                                     clock):
    _, msg = playback_msg(SPEAKER, occurrence, clock())
    ingest(town, msg)
    with town.db.session(write=False) as s:
        assert s.scalar(select(Delivery.status).where(Delivery.node_id == SPEAKER)) == "finished"
    assert letters(town) == []


def test_a_playback_report_on_an_occurrence_that_did_not_target_the_node_is_dead_lettered(town, occurrence,
                                                                                         clock):
    _, msg = playback_msg(OFFICE, occurrence, clock())
    ingest(town, msg)
    assert stored(town, PlaybackReport) == 0
    [letter] = letters(town)
    assert letter.reason == f"occurrence {occurrence!r} did not target node 'mot-cua' (no delivery for it)"
    assert [a.details["refused"] for a in security_alarms(town)] == [{"playback": 1}]


def test_a_refused_playback_report_is_acked_as_playback(town, occurrence, clock, sent_acks):
    e, msg = playback_msg(SPEAKER, "b9-20260302T023000Z", clock())
    ingest(town, msg)
    assert [(topic, ack.kind, ack.event_ids) for topic, ack in sent_acks] == [
        (T.ack(SPEAKER), "playback", [e.event_id])]


# -- camera health -------------------------------------------------------------------------
def camera_msg(node: str, camera: str, at, topic_camera: str | None = None):
    health = CameraHealth(node=node, camera=camera, state="ok", reason="", since=at, at=at)
    return incoming(T.camera_health(node, topic_camera or camera), health.to_bytes(), at)


def test_health_of_a_camera_declared_on_the_node_is_recorded(town, clock):
    ingest(town, camera_msg(OFFICE, "cam-sanh", clock()))
    assert stored(town, CameraStatus) == 1 and letters(town) == []


def test_health_of_a_camera_not_declared_on_the_node_is_dead_lettered_and_alarms(town, clock):
    ingest(town, camera_msg(SPEAKER, "cam-sanh", clock()))
    assert stored(town, CameraStatus) == 0
    [letter] = letters(town)
    assert letter.reason == "camera 'cam-sanh' is not declared on node 'loa-ban-hon'"
    assert [a.details["refused"] for a in security_alarms(town)] == [{"camera_health": 1}]


def test_a_camera_named_otherwise_in_the_payload_than_in_its_topic_is_dead_lettered(town, clock):
    ingest(town, camera_msg(OFFICE, "cam-sanh", clock(), topic_camera="cam-khac"))
    assert stored(town, CameraStatus) == 0
    [letter] = letters(town)
    assert letter.reason == "camera 'cam-sanh' in the payload does not match topic camera 'cam-khac'"


def test_an_unregistered_nodes_camera_health_is_kept(town, clock):
    ingest(town, camera_msg("node-x", "cam-1", clock()))
    assert stored(town, CameraStatus) == 1 and security_alarms(town) == []


# -- the cost of the check -----------------------------------------------------------------
@pytest.fixture
def statements(town):
    """The SQL statements the ingest runs from now on."""
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        seen.append(statement)

    event.listen(town.db.engine, "before_cursor_execute", record)
    yield seen
    event.remove(town.db.engine, "before_cursor_execute", record)


@pytest.mark.parametrize("size", [1, 200])
def test_a_batch_is_checked_with_one_registry_query_whatever_its_size(town, clock, statements, size):
    nodes = (OFFICE, SPEAKER)
    runs = []  # ratings between telemetry: each rating is a run of its own for the handlers
    for i in range(size):
        runs.append(rating_msg(rating(node=nodes[i % 2], seq=i + 1), clock()))
        runs.append(incoming(T.telemetry(nodes[i % 2]), telemetry(node=nodes[i % 2]).to_bytes(), clock()))
    runs.append(camera_msg(OFFICE, "cam-sanh", clock()))
    ingest(town, *runs)
    assert len([s for s in statements if "JOIN devices" in s]) == 1


def test_a_box_declared_after_a_refusal_is_accepted_in_the_next_batch(town, clock):
    worker = IngestWorker(town)
    worker.process([rating_msg(rating(node=OFFICE, box="box-3", counter="quay-1", seq=1), clock())])
    more = declarations()
    more["nodes"][0]["devices"].append({"code": "box-3", "kind": "rating_box", "counter": "quay-1"})
    with town.db.session() as s:
        apply_declarations(s, registry=RegistrySection(**more))
    worker.process([rating_msg(rating(node=OFFICE, box="box-3", counter="quay-1", seq=2), clock())])
    assert stored(town, Rating) == 1 and len(letters(town)) == 1


@pytest.mark.parametrize("size", [1, 200])
def test_a_playback_batch_is_checked_with_one_delivery_query_whatever_its_size(town, occurrence, clock,
                                                                              statements, size):
    ingest(town, *[playback_msg((SPEAKER, OFFICE)[i % 2], occurrence, clock())[1] for i in range(size)])
    reads = [s for s in statements if "FROM broadcast_deliveries" in s and "UPDATE" not in s]
    assert len(reads) == 1  # the check reads the rows, and the store moves the same rows


# -- over a real Mosquitto -----------------------------------------------------------------
@pytest.fixture
def broker(broker_factory):
    """A private broker: no retained message of another test reaches this hub."""
    return broker_factory()


@pytest.fixture
def live_hub(broker, db, tmp_path):
    """The hub's ingest on a real Mosquitto, declaring node-a as the office and node-b as a
    hamlet loudspeaker."""
    settings = hub_settings(tmp_path, database={"url": db.url.render_as_string(hide_password=False)},
                            mqtt={"host": "127.0.0.1", "port": broker.port, "username": HUB.username,
                                  "password": HUB.password, "reconnect_min_s": 0.1, "reconnect_max_s": 0.5},
                            ingest={"client_id": f"hub-claims-{uuid.uuid4().hex[:6]}"},
                            registry=declarations(office=NODE_A.username, speaker=NODE_B.username))
    hub = HubRuntime(settings, roles=("ingest",))
    hub.start()
    assert hub.link.wait_connected(10) and hub.link.subscribed.wait(10)
    yield hub
    hub.stop()


def test_over_mqtt_a_loudspeaker_rating_an_office_counter_is_acked_but_not_stored(broker, live_hub, db):
    acks = Collector()
    node = connected_link(broker.port, NODE_B, f"node-b-{uuid.uuid4().hex[:6]}", {T.ack("node-b"): acks})
    forged = rating(node="node-b", box="box-1", counter="quay-1", score=1, pressed_at=live_hub.ctx.clock())
    try:
        node.publish_confirmed(T.rating("node-b"), forged.to_bytes())
        assert acks.wait_for(lambda ms: any(forged.event_id in decode(Ack, m.payload).event_ids for m in ms),
                             timeout=10)
    finally:
        node.stop()
    with db.session(write=False) as s:
        assert s.scalar(select(func.count()).select_from(Rating)) == 0
        assert alarms.active_alarm(s, kind="claim_refused", subject="node-b") is not None


def test_over_mqtt_the_office_agents_presses_on_its_declared_box_are_stored(broker, live_hub, db, tmp_path):
    agent = PressingAgent(edge_data(tmp_path / "node", broker.port, NODE_A.username, NODE_A.password)).start()
    try:
        for score in (4, 3, 2):
            agent.press(score)
        assert wait_until(lambda: agent.outbox_depth() == 0, timeout=20), "outbox not drained by acks"
    finally:
        agent.stop()
    with db.session(write=False) as s:
        assert set(s.scalars(select(Rating.event_id))) == agent.event_ids()
        assert s.scalar(select(func.count()).select_from(DeadLetter)) == 0
