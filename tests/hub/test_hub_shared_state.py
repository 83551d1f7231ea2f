"""Retained node state and camera health with several ingest workers (PostgreSQL, an MQTT v5
shared subscription): they are not shared, so one worker owns them (elected by an advisory
lock) and the others do not handle them; a worker that takes over gets the retained copies
again and applying them leaves one row per node and camera and no second alarm."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from hub.hub_helpers import hub_settings, node_state
from hub.pg_private import migrated_database
from support import HUB, NODE_A, NODE_B, connected_link, wait_until
from thanthien.hub.db.models import Alarm, CameraPeriod, CameraStatus, DeadLetter, Node
from thanthien.hub.runtime import HubRuntime
from thanthien.protocol import Topics
from thanthien.protocol.payloads import CameraHealth

pytestmark = pytest.mark.postgres
T = Topics()


@pytest.fixture
def pg_db() -> Iterator[str]:
    with migrated_database("thanthien_state") as url:
        yield url


def settings(tmp_path: Path, url: str, port: int, name: str):  # type: ignore[no-untyped-def]
    return hub_settings(
        tmp_path / name,
        database={"url": url},
        mqtt={"host": "127.0.0.1", "port": port, "username": HUB.username, "password": HUB.password,
              "reconnect_min_s": 0.1, "reconnect_max_s": 0.5},
        ingest={"client_id": f"hub-{name}", "shared_group": "hubs", "flush_ms": 5},
        cameras={"alarm_after_s": 0},
        registry={"nodes": [{"id": "node-a", "devices": [{"code": "cam-1", "kind": "camera"}]},
                            {"id": "node-b"}]},
    )


def started(runtime: HubRuntime) -> HubRuntime:
    runtime.start()
    assert runtime.link is not None and runtime.link.wait_connected(10) and runtime.link.subscribed.wait(10)
    return runtime


def handled(runtime: HubRuntime, kind: str) -> float:
    return runtime.ctx.metrics.value("thanthien_hub_ingest_messages_total", kind=kind)


def camera(state: str, since: datetime) -> bytes:
    return CameraHealth(node="node-a", camera="cam-1", state=state, reason=f"camera {state}", since=since,
                        at=since).to_bytes()  # type: ignore[arg-type]


def test_one_worker_owns_the_retained_state_and_a_takeover_leaves_one_row_and_one_alarm(
        tmp_path, pg_db, broker_factory):
    broker = broker_factory()
    first = started(HubRuntime(settings(tmp_path, pg_db, broker.port, "a"), roles=("ingest",),
                               election_retry_s=0.2))
    second = None
    nodes = []
    try:
        assert first.owns_state and first.state_link is not None
        assert first.state_link.wait_connected(10) and first.state_link.subscribed.wait(10)
        second = started(HubRuntime(settings(tmp_path, pg_db, broker.port, "b"), roles=("ingest",),
                                    election_retry_s=0.2))
        assert not second.owns_state and second.state_link is None
        assert first.role_status()["retained_state"]["this_process"] is True
        status = second.role_status()["retained_state"]
        assert status["this_process"] is False and status["holder"] == first.state_election.lease.label

        # node-a is online with a camera down; node-b went away (its Will): one alarm each
        since = datetime.now(UTC) - timedelta(minutes=5)
        a = connected_link(broker.port, NODE_A, "node-a")
        b = connected_link(broker.port, NODE_B, "node-b")
        nodes = [a, b]
        a.publish_confirmed(T.node_state("node-a"), node_state("online", 1, "node-a").to_bytes(), retain=True)
        a.publish_confirmed(T.camera_health("node-a", "cam-1"), camera("down", since), retain=True)
        b.publish_confirmed(T.node_state("node-b"), node_state("online", 1, "node-b").to_bytes(), retain=True)
        b.publish_confirmed(T.node_state("node-b"), node_state("lost", 1, "node-b").to_bytes(), retain=True)
        db = first.db

        def node(node_id: str) -> Node | None:
            with db.session(write=False) as s:
                return s.get(Node, node_id)

        assert wait_until(lambda: (n := node("node-b")) is not None and n.state == "lost"
                          and handled(first, "camera_health") >= 1)
        assert first.worker is not None and first.worker.wait_idle(10)
        assert handled(second, "node_state") == 0 and handled(second, "camera_health") == 0

        # the owner goes; the other takes over and gets every retained copy again
        first.stop()
        assert wait_until(lambda: second.owns_state, timeout=10)
        assert wait_until(lambda: handled(second, "node_state") >= 2
                          and handled(second, "camera_health") >= 1)
        assert second.worker is not None and second.worker.wait_idle(10)
        assert second.role_status()["retained_state"]["this_process"] is True

        with second.db.session(write=False) as s:
            assert s.scalar(select(func.count()).select_from(Node)) == 2
            rows = {n.id: (n.state, n.session) for n in s.scalars(select(Node))}
            assert rows == {"node-a": ("online", 1), "node-b": ("lost", 1)}
            alarms = [(x.kind, x.subject, x.cleared_at is None) for x in s.scalars(select(Alarm))]
            assert sorted(alarms) == [("camera_down", "node-a/cam-1", True), ("node_offline", "node-b", True)]
            assert [(c.state, c.camera) for c in s.scalars(select(CameraStatus))] == [("down", "cam-1")]
            periods = list(s.scalars(select(CameraPeriod)))
            assert [(p.state, p.ended_at) for p in periods] == [("down", None)]
            assert s.scalar(select(func.count()).select_from(DeadLetter)) == 0

        # node-b comes back (a new session): the one alarm clears, none is raised again
        b.publish_confirmed(T.node_state("node-b"), node_state("online", 2, "node-b").to_bytes(), retain=True)
        assert wait_until(lambda: (n := node("node-b")) is not None and n.state == "online")
        with second.db.session(write=False) as s:
            offline = list(s.scalars(select(Alarm).where(Alarm.kind == "node_offline")))
            assert len(offline) == 1 and offline[0].cleared_at is not None
        for runtime in (first, second):
            assert runtime.ctx.metrics.value("thanthien_hub_ingest_errors_total") == 0
    finally:
        for link in nodes:
            link.stop()
        if second is not None:
            second.stop()
        first.stop()

