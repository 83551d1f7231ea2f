"""The UI's own read queries, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from hub.hub_helpers import node_state, rating, telemetry

from thanthien.hub.db.models import Device
from thanthien.hub.roles import SYSTEM
from thanthien.hub.services import cameras, enrollment, health, ratings, registry
from thanthien.hub.services.health import Thresholds
from thanthien.hub.web import queries
from thanthien.protocol.payloads import CameraHealth

pytestmark = pytest.mark.postgres


def _node(session, node_id: str, name: str = "") -> None:
    registry.register_node(session, actor=SYSTEM, node_id=node_id, name=name)


def test_state_history_lists_going_down_and_coming_back_newest_first(db, clock):
    t0 = clock.now
    with db.session() as s:
        _node(s, "node-a")
        health.apply_node_state(s, state=node_state("online", 1, at=t0), now=t0, notify=False)
        health.apply_node_state(s, state=node_state("lost", 1, at=t0), now=t0 + timedelta(minutes=5),
                                notify=False)
        health.apply_node_state(s, state=node_state("online", 2, at=t0), now=t0 + timedelta(minutes=9),
                                notify=False)
    with db.session() as s:
        history = queries.state_history(s, node_id="node-a", start=t0, end=t0 + timedelta(hours=1))
        earlier = queries.state_history(s, node_id="node-a", start=t0 - timedelta(hours=1), end=t0)
    assert [(h.state, h.at - t0) for h in history] == [("online", timedelta(minutes=9)),
                                                       ("lost", timedelta(minutes=5))]
    assert history[1].reason == health.REASON_WILL
    assert earlier == []


def test_node_overview_puts_nodes_needing_attention_first_with_their_latest_telemetry(db, clock):
    t0 = clock.now
    with db.session() as s:
        for node_id in ("node-a", "node-b", "node-c"):
            _node(s, node_id)
            health.apply_node_state(s, state=node_state("online", 1, node=node_id, at=t0), now=t0,
                                    notify=False)
        health.record_telemetry(s, t=telemetry("node-b", outbox_depth=3), now=t0, thresholds=Thresholds(),
                                notify=False)
        health.record_telemetry(s, t=telemetry("node-b", outbox_depth=7), now=t0 + timedelta(seconds=30),
                                thresholds=Thresholds(), notify=False)
        health.apply_node_state(s, state=node_state("lost", 1, node="node-c", at=t0), now=t0, notify=False)
    with db.session() as s:
        views = queries.node_overview(s, viewer=SYSTEM)
    assert [v.node.id for v in views] == ["node-c", "node-a", "node-b"]
    assert views[0].open_alarms == 1
    assert views[2].latest is not None and views[2].latest.outbox_depth == 7
    assert views[1].latest is None


def _two_nodes_with_a_camera_each(session, clock) -> None:
    for node_id in ("node-a", "node-b"):
        _node(session, node_id)
        health.apply_node_state(session, state=node_state("online", 1, node=node_id, at=clock.now),
                                now=clock.now, notify=False)
        registry.upsert_device(session, actor=SYSTEM, node_id=node_id, code="cam-1", kind="camera")
        cameras.apply_health(session, health=CameraHealth(node=node_id, camera="cam-1", state="ok", reason="",
                                                          since=clock.now, at=clock.now),
                             now=clock.now, alarm_after_s=60, tz=ZoneInfo("UTC"), notify=False)


def test_a_retired_node_leaves_the_overview_and_the_camera_counts(db, clock):
    with db.session() as s:
        _two_nodes_with_a_camera_each(s, clock)
        enrollment.retire_node(s, actor=SYSTEM, node_id="node-b", now=clock.now)
    with db.session() as s:
        assert [v.node.id for v in queries.node_overview(s, viewer=SYSTEM)] == ["node-a"]
        assert queries.camera_counts(s, viewer=SYSTEM) == {"ok": 1}


def test_a_retired_camera_is_neither_listed_nor_counted_nor_shown_as_undeclared(db, clock):
    with db.session() as s:
        _two_nodes_with_a_camera_each(s, clock)
        device = next(d for d in registry.list_devices(s, viewer=SYSTEM, node_id="node-b"))
        registry.retire(s, actor=SYSTEM, model=Device, ident=device.id, now=clock.now)
    with db.session() as s:
        devices = {v.node.id: [d.code for d in v.devices] for v in queries.node_overview(s, viewer=SYSTEM)}
        assert devices == {"node-a": ["cam-1"], "node-b": []}
        assert queries.camera_counts(s, viewer=SYSTEM) == {"ok": 1}


def test_health_fingerprint_changes_when_a_node_goes_offline(db, clock):
    with db.session() as s:
        _node(s, "node-a")
        health.apply_node_state(s, state=node_state("online", 1), now=clock.now, notify=False)
    with db.session() as s:
        before = queries.health_fingerprint(s, viewer=SYSTEM)
        assert queries.health_fingerprint(s, viewer=SYSTEM) == before
    with db.session() as s:
        health.apply_node_state(s, state=node_state("offline", 1), now=clock.advance(10), notify=False)
    with db.session() as s:
        assert queries.health_fingerprint(s, viewer=SYSTEM) != before


def test_presses_fingerprint_moves_only_for_presses_since_the_start(db, clock):
    start = clock.now
    with db.session() as s:
        _node(s, "node-a")
        before = queries.presses_fingerprint(s, since=start)
        ratings.store_ratings(s, events=[rating(seq=1, pressed_at=start - timedelta(hours=1))], now=start)
    with db.session() as s:
        assert queries.presses_fingerprint(s, since=start) == before
        ratings.store_ratings(s, events=[rating(seq=2, pressed_at=start + timedelta(minutes=1))], now=start)
    with db.session() as s:
        assert queries.presses_fingerprint(s, since=start)[0] == 1


def test_charts_over_more_than_two_days_use_the_hourly_rollups(db, clock):
    t0 = clock.now
    with db.session() as s:
        _node(s, "node-a")
        for minutes in (0, 20, 40, 70):
            at = t0 + timedelta(minutes=minutes)
            health.record_telemetry(s, t=telemetry(at=at, cpu_temp_c=40.0 + minutes / 10), now=at,
                                    thresholds=Thresholds(), notify=False)
        health.rollup_telemetry(s, now=t0 + timedelta(hours=3))
    with db.session() as s:
        raw, raw_hourly = queries.telemetry_series(s, viewer=SYSTEM, node_id="node-a", start=t0,
                                                   end=t0 + timedelta(days=1))
        folded, hourly = queries.telemetry_series(s, viewer=SYSTEM, node_id="node-a",
                                                  start=t0 - timedelta(days=3),
                                                  end=t0 + timedelta(days=1))
    temps = {series.key: series for series in raw}["cpu_temp_c"]
    assert raw_hourly is False and [v for _t, v in temps.points] == [40.0, 42.0, 44.0, 47.0]
    assert hourly is True
    assert [v for _t, v in {series.key: series for series in folded}["cpu_temp_c"].points] == [44.0, 47.0]
