"""The hub's side of clock trust (issue 14 item 5): the time beacon on a real Mosquitto, what
telemetry says about a node's clock, and the ``clock_unsynced`` alarm counting the broadcasts a
node holds; on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from clock_support import HOURS, NodeClock
from sqlalchemy import select

from hub.hub_helpers import telemetry
from support import HUB, NODE_A, Collector, connected_link, wait_until
from thanthien.config import validate_data
from thanthien.edge.agent import EdgeAgent
from thanthien.edge.settings import EdgeSettings
from thanthien.hub.db.models import TelemetrySample
from thanthien.hub.jobs import broadcasts, contexts, maintenance
from thanthien.hub.jobs.scheduler import build_scheduler
from thanthien.hub.services import alarms, health
from thanthien.mqtt import Message
from thanthien.protocol import Topics
from thanthien.protocol.payloads import HubState, decode, utc_now

T = Topics()


@pytest.fixture
def named(ctx) -> Iterator[str]:
    name = f"t-clock-{uuid.uuid4().hex[:6]}"
    contexts.register(name, ctx)
    yield name
    contexts.unregister(name)


@pytest.fixture
def hub_link(ctx, broker):
    link = connected_link(broker.port, HUB, f"test-hub-time-{uuid.uuid4().hex[:6]}")
    ctx.mqtt = link
    yield link
    link.publish_confirmed(T.hub_state(), b"", retain=True)  # clear the retained presence
    ctx.mqtt = None
    link.stop()


def record(ctx, **over) -> None:
    with ctx.db.session() as s:
        health.record_telemetry(s, t=telemetry(**over), now=ctx.clock(), thresholds=ctx.thresholds,
                                notify=False)


def clock_alarm(ctx):
    with ctx.db.session() as s:
        return alarms.active_alarm(s, kind="clock_unsynced", subject="node-a")


# -- the beacon ----------------------------------------------------------------------------
def test_hub_time_beacon_carries_the_hubs_time_live_and_leaves_the_retained_presence(ctx, broker, named,
                                                                                      hub_link):
    connected_at = ctx.clock()
    presence = HubState(state="online", at=connected_at, version="t")  # what ingest publishes on connect
    hub_link.publish_confirmed(T.hub_state(), presence.to_bytes(), retain=True)
    live = Collector()
    node = connected_link(broker.port, NODE_A, f"node-a-{uuid.uuid4().hex[:6]}", {T.hub_state(): live})
    try:
        assert live.wait_count(1)  # the retained presence, on subscribing
        ctx.clock.advance(90)
        assert maintenance.publish_hub_time(named) is True
        assert live.wait_count(2)
        beacon: Message = live.messages[1]
        assert beacon.retain is False
        sent = decode(HubState, beacon.payload)
        assert sent.at == ctx.clock() and sent.state == "online"
        later = Collector()
        again = connected_link(broker.port, NODE_A, f"node-a-{uuid.uuid4().hex[:6]}", {T.hub_state(): later})
        try:
            assert later.wait_count(1)
            # the beacon did not replace the retained presence
            assert decode(HubState, later.messages[0].payload).at == connected_at
        finally:
            again.stop()
    finally:
        node.stop()


def test_hub_time_beacon_is_not_sent_without_a_connected_link(ctx, named):
    assert ctx.mqtt is None
    assert maintenance.publish_hub_time(named) is False


def test_scheduler_sends_the_hub_time_twice_a_heartbeat(ctx):
    name = f"t-sched-{uuid.uuid4().hex[:6]}"
    scheduler = build_scheduler(ctx, name=name)
    try:
        job = scheduler.get_job("hub-time")
        assert job is not None and job.func is maintenance.publish_hub_time and job.args == (name,)
        assert job.trigger.interval == timedelta(seconds=ctx.settings.health.heartbeat_s / 2)
    finally:
        broadcasts.unfollow_changes(ctx)
        contexts.unregister(name)


def test_a_node_hours_ahead_stops_trusting_its_clock_on_the_hubs_beacon(ctx, broker, named, hub_link,
                                                                         tmp_path):
    ctx.clock = utc_now  # the real time: the node compares it with its own
    clock = NodeClock(3 * HOURS, synced=None)  # a system that cannot tell: trusted until the hub speaks
    settings = validate_data(EdgeSettings, {
        "node": {"id": NODE_A.username, "hardware": "mock", "data_dir": str(tmp_path / "node")},
        "mqtt": {"host": "127.0.0.1", "port": broker.port, "password": NODE_A.password,
                 "reconnect_min_s": 0.1, "reconnect_max_s": 0.5},
        "audio": {"output": "null"},
    })
    agent = EdgeAgent(settings, wall_clock=clock.time, ntp=clock.ntp)
    lost = threading.Event()
    agent.clock_trust.add_listener(lambda trusted: None if trusted else lost.set())
    agent.start()
    try:
        assert agent.link is not None and agent.link.wait_connected(10) and agent.link.subscribed.wait(10)
        assert agent.clock_trust.trusted()
        assert wait_until(lambda: maintenance.publish_hub_time(named) and lost.wait(0.5), timeout=10)
        offset = agent.clock_trust.hub_offset_s()
        assert offset is not None and offset == pytest.approx(-3 * HOURS, abs=2.0)
    finally:
        agent.stop()


# -- telemetry and the alarm ---------------------------------------------------------------
def test_telemetry_keeps_what_the_node_says_about_its_clock(ctx):
    record(ctx, clock_synced=False, clock_trusted=False, hub_offset_ms=-10_800_000.0, held_broadcasts=3)
    with ctx.db.session() as s:
        sample = s.scalars(select(TelemetrySample)).one()
        assert (sample.clock_trusted, sample.hub_offset_ms, sample.held_broadcasts) == \
            (False, -10_800_000.0, 3)


def test_a_node_holding_broadcasts_raises_a_major_alarm_that_counts_them(ctx):
    record(ctx, clock_synced=False, clock_offset_ms=None, clock_trusted=False, hub_offset_ms=-10_800_000.0,
           held_broadcasts=3)
    alarm = clock_alarm(ctx)
    assert alarm is not None and alarm.severity == "major"
    assert alarm.message == ("Thiết bị node-a: đồng hồ chưa được đồng bộ (nhanh 3,0 giờ so với trung tâm), "
                             "đang giữ 3 bản tin chưa phát")


def test_the_alarm_follows_the_held_count_and_clears_once_the_clock_is_trusted(ctx):
    record(ctx, clock_synced=False, clock_trusted=False, held_broadcasts=0)
    assert clock_alarm(ctx).severity == "warning"
    assert clock_alarm(ctx).message.endswith("các bản tin theo lịch sẽ chờ")
    ctx.clock.advance(30)
    record(ctx, clock_synced=False, clock_trusted=False, held_broadcasts=2)
    assert clock_alarm(ctx).severity == "major" and "đang giữ 2 bản tin" in clock_alarm(ctx).message
    ctx.clock.advance(30)
    record(ctx, clock_synced=True, clock_trusted=True, hub_offset_ms=-4.0, held_broadcasts=0)
    assert clock_alarm(ctx) is None


def test_a_clock_far_from_the_hubs_time_alarms_even_when_ntp_says_synchronised(ctx):
    record(ctx, clock_synced=True, clock_trusted=True, hub_offset_ms=45_000.0, held_broadcasts=0)
    alarm = clock_alarm(ctx)
    assert alarm is not None and alarm.severity == "warning"
    assert "chậm 45 giây so với trung tâm" in alarm.message


def test_telemetry_of_an_older_node_keeps_the_old_alarm_text(ctx):
    record(ctx, clock_synced=False, clock_offset_ms=1500.0)
    assert clock_alarm(ctx).message == "Thiết bị node-a: đồng hồ chưa được đồng bộ (lệch 1500 ms)"


@pytest.mark.parametrize(("ms", "text"), [
    (-1.5, "nhanh 2 ms"), (4_000.0, "chậm 4000 ms"), (45_000.0, "chậm 45 giây"),
    (-600_000.0, "nhanh 10 phút"), (10_800_000.0, "chậm 3,0 giờ"), (-93_600_000.0, "nhanh 26,0 giờ"),
])
def test_offsets_read_as_people_say_them(ms, text):
    assert health.offset_text(ms) == text
