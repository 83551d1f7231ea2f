"""Node health: retained states with sessions, heartbeat expiry, threshold alarms, retention."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text

from hub.hub_helpers import incoming, node_state, telemetry
from thanthien.hub.db.models import Alarm, Node, TelemetryHourly, TelemetrySample
from thanthien.hub.ingest.worker import IngestWorker
from thanthien.hub.jobs import contexts, maintenance
from thanthien.hub.roles import IT, SYSTEM, ActingUser
from thanthien.hub.services import alarms, health, registry
from thanthien.protocol import Topics

T = Topics()


@pytest.fixture(autouse=True)
def _registered(ctx):
    with ctx.db.session() as s:
        registry.register_node(s, actor=SYSTEM, node_id="node-a", name="")


def feed(ctx, *messages) -> None:
    IngestWorker(ctx).process(list(messages))


def state_msg(ctx, state: str, session: int):
    return incoming(T.node_state("node-a"), node_state(state, session).to_bytes(), ctx.clock())


def tele_msg(ctx, session: int = 1, **over):
    return incoming(T.telemetry("node-a"), telemetry(session=session, **over).to_bytes(), ctx.clock())


def node(ctx) -> Node:
    with ctx.db.session() as s:
        return s.get(Node, "node-a")


def alarm(ctx, kind: str = "node_offline", subject: str = "node-a") -> Alarm | None:
    with ctx.db.session() as s:
        return alarms.active_alarm(s, kind=kind, subject=subject)


def test_will_of_the_same_session_marks_node_lost(ctx):
    feed(ctx, state_msg(ctx, "online", 3))
    feed(ctx, state_msg(ctx, "lost", 3))
    assert node(ctx).state == "lost"
    assert alarm(ctx).severity == "critical"


def test_late_will_of_an_older_session_does_not_mark_a_new_session_lost(ctx):
    feed(ctx, state_msg(ctx, "online", 4))
    feed(ctx, state_msg(ctx, "lost", 3))
    assert (node(ctx).state, node(ctx).session) == ("online", 4)
    assert alarm(ctx) is None


def test_clean_stop_is_offline_with_a_warning(ctx):
    feed(ctx, state_msg(ctx, "online", 1), state_msg(ctx, "offline", 1))
    assert node(ctx).state == "offline"
    assert alarm(ctx).severity == "warning"


def test_new_session_online_clears_the_offline_alarm(ctx):
    feed(ctx, state_msg(ctx, "online", 1), state_msg(ctx, "lost", 1))
    ctx.clock.advance(60)
    feed(ctx, state_msg(ctx, "online", 2))
    assert node(ctx).state == "online"
    assert alarm(ctx) is None


def test_silent_node_is_offline_within_two_heartbeats(ctx):
    hb = ctx.settings.health.heartbeat_s
    feed(ctx, state_msg(ctx, "online", 1), tele_msg(ctx))
    with ctx.db.session() as s:
        ctx.clock.advance(hb)
        assert health.expire_heartbeats(s, now=ctx.clock(), heartbeat_s=hb, factor=1.5, notify=False) == []
        ctx.clock.advance(hb * 0.75)
        assert health.expire_heartbeats(s, now=ctx.clock(), heartbeat_s=hb, factor=1.5, notify=False) == \
            ["node-a"]
    assert node(ctx).state == "offline"
    assert node(ctx).state_reason == health.REASON_HEARTBEAT


def test_silence_is_counted_only_up_to_what_the_hub_has_heard(ctx):
    hb = ctx.settings.health.heartbeat_s
    feed(ctx, state_msg(ctx, "online", 1), tele_msg(ctx))
    heard = ctx.clock()
    ctx.clock.advance(hb * 3)
    with ctx.db.session() as s:
        assert health.expire_heartbeats(s, now=ctx.clock(), heard_until=heard, heartbeat_s=hb, factor=1.5,
                                        notify=False) == []
    assert node(ctx).state == "online"


def test_heartbeat_expiry_skips_a_node_row_an_ingest_batch_holds_instead_of_waiting_for_it(ctx):
    if ctx.db.is_sqlite:
        pytest.skip("SQLite has one writer at a time: no row locks to skip")
    hb = ctx.settings.health.heartbeat_s
    feed(ctx, state_msg(ctx, "online", 1), tele_msg(ctx))
    ctx.clock.advance(hb * 3)
    with ctx.db.session() as ingest:  # an ingest batch holding the node's row (as its bookkeeping does)
        ingest.execute(select(Node.id).where(Node.id == "node-a").with_for_update())
        with ctx.db.session() as job:
            job.execute(text("SET LOCAL lock_timeout = '5s'"))  # waiting would fail the test, not hang it
            expired = health.expire_heartbeats(job, now=ctx.clock(), heartbeat_s=hb, factor=1.5, notify=False)
            assert expired == []
    with ctx.db.session() as job:
        assert health.expire_heartbeats(job, now=ctx.clock(), heartbeat_s=hb, factor=1.5, notify=False) == \
            ["node-a"]


def test_a_node_whose_telemetry_waits_in_the_ingest_backlog_is_not_marked_offline(ctx):
    from thanthien.hub.ingest.worker import commit_batch
    from thanthien.mqtt import Message

    feed(ctx, state_msg(ctx, "online", 1), tele_msg(ctx))
    release, taken = threading.Event(), threading.Event()

    def slow_commit(c, batch):  # the database is busy with a backlog
        taken.set()
        assert release.wait(10)
        return commit_batch(c, batch)

    worker = IngestWorker(ctx, commit=slow_commit)
    ctx.heard_until = worker.heard_until
    contexts.register("t-backlog", ctx)
    try:
        worker.start()
        telemetry_bytes = telemetry(session=1).to_bytes()
        worker.enqueue(Message(T.telemetry("node-a"), telemetry_bytes, False, None, 0))
        assert taken.wait(10)
        ctx.clock.advance(ctx.settings.health.heartbeat_s * 3)  # the node's next telemetry waits behind it
        worker.enqueue(Message(T.telemetry("node-a"), telemetry_bytes, False, None, 0))
        assert maintenance.check_heartbeats("t-backlog") == []
        assert node(ctx).state == "online"
        release.set()
        assert worker.wait_idle(10)
        assert worker.heard_until() is not None
        assert maintenance.check_heartbeats("t-backlog") == []  # heard from: not silent
        assert node(ctx).state == "online"
    finally:
        release.set()
        worker.stop()
        contexts.unregister("t-backlog")


def test_telemetry_after_heartbeat_expiry_brings_node_back_and_clears_alarm(ctx):
    feed(ctx, state_msg(ctx, "online", 1))
    ctx.clock.advance(100)
    contexts.register("t-hb", ctx)
    try:
        assert maintenance.check_heartbeats("t-hb") == ["node-a"]
    finally:
        contexts.unregister("t-hb")
    assert alarm(ctx) is not None
    feed(ctx, tele_msg(ctx))
    assert node(ctx).state == "online"
    assert alarm(ctx) is None


def test_offline_alarm_is_raised_once_reminds_is_acknowledged_and_clears(ctx):
    feed(ctx, state_msg(ctx, "online", 1), state_msg(ctx, "lost", 1))
    feed(ctx, state_msg(ctx, "lost", 1))  # the retained Will again: still one alarm
    with ctx.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Alarm).where(Alarm.kind == "node_offline")) == 1
    remind = ctx.settings.alarms.remind_s
    ctx.clock.advance(remind + 1)
    with ctx.db.session() as s:
        assert len(alarms.send_reminders(s, now=ctx.clock(), remind_s=remind, notify=False)) == 1
        assert alarms.send_reminders(s, now=ctx.clock(), remind_s=remind, notify=False) == []
    with ctx.db.session() as s:
        alarms.acknowledge_alarm(s, alarm_id=alarm(ctx).id, actor=ActingUser("it1", IT), now=ctx.clock(),
                                 notify=False)
    ctx.clock.advance(remind + 1)
    with ctx.db.session() as s:
        assert alarms.send_reminders(s, now=ctx.clock(), remind_s=remind, notify=False) == []
    feed(ctx, state_msg(ctx, "online", 2))
    with ctx.db.session() as s:
        only = s.scalars(select(Alarm).where(Alarm.kind == "node_offline")).one()
    assert only.reminders == 1 and only.acknowledged_by == "it1" and only.cleared_at == ctx.clock()


def test_threshold_alarms_follow_telemetry(ctx):
    feed(ctx, state_msg(ctx, "online", 1))
    feed(ctx, tele_msg(ctx, outbox_depth=500, disk_used_pct=97, cpu_temp_c=82, clock_synced=False))
    for kind in ("outbox_backlog", "disk_full", "high_temperature", "clock_unsynced"):
        assert alarm(ctx, kind) is not None, kind
    feed(ctx, tele_msg(ctx))
    for kind in ("outbox_backlog", "disk_full", "high_temperature", "clock_unsynced"):
        assert alarm(ctx, kind) is None, kind


def test_telemetry_is_rolled_up_hourly_and_pruned_after_retention(ctx):
    start = ctx.clock()
    for minute in range(0, 120, 10):  # two hours of samples
        ctx.clock.now = start + timedelta(minutes=minute)
        feed(ctx, tele_msg(ctx, cpu_temp_c=40 + minute / 10))
    ctx.clock.now = start + timedelta(days=31)
    contexts.register("t-tel", ctx)
    try:
        rolled, pruned = maintenance.maintain_telemetry("t-tel")
    finally:
        contexts.unregister("t-tel")
    assert (rolled, pruned) == (2, 12)
    with ctx.db.session() as s:
        assert s.scalar(select(func.count()).select_from(TelemetrySample)) == 0
        hours = list(s.scalars(select(TelemetryHourly).order_by(TelemetryHourly.hour)))
    assert [h.samples for h in hours] == [6, 6]
    assert hours[0].cpu_temp_max == 45 and hours[1].cpu_temp_avg == sum(46 + i for i in range(6)) / 6


def test_rolling_up_again_rewrites_the_same_hours(ctx):
    start = ctx.clock()
    for minute in (0, 30, 60):
        ctx.clock.now = start + timedelta(minutes=minute)
        feed(ctx, tele_msg(ctx))
    ctx.clock.now = start + timedelta(hours=2)
    for _ in range(2):
        with ctx.db.session() as s:
            health.rollup_telemetry(s, now=ctx.clock())
    with ctx.db.session() as s:
        hours = s.scalars(select(TelemetryHourly).order_by(TelemetryHourly.hour))
        assert [h.samples for h in hours] == [2, 1]
