"""Edge agent -> Mosquitto -> hub, all real: exactly once through replays and hub crashes,
and node health as the hub sees it."""

from __future__ import annotations

import signal
import subprocess
import sys
import uuid

import pytest
from sqlalchemy import func, select

from hub.e2e import REPO, PressingAgent, edge_data, start_hub_process, write_toml
from hub.hub_helpers import Hook, hub_settings
from support import HUB, NODE_A, NODE_B, Collector, connected_link, wait_until
from thanthien.hub.db.models import Node, Rating
from thanthien.hub.roles import IT, ActingUser
from thanthien.hub.runtime import HubRuntime
from thanthien.hub.services import alarms
from thanthien.protocol import Topics
from thanthien.protocol.payloads import Ack, NodeState, RatingEvent, Telemetry, decode, utc_now

pytestmark = pytest.mark.chaos
T = Topics()


def mqtt_section(port: int) -> dict:
    return {"host": "127.0.0.1", "port": port, "username": HUB.username, "password": HUB.password,
            "reconnect_min_s": 0.1, "reconnect_max_s": 0.5}


def db_url(db) -> str:
    return db.url.render_as_string(hide_password=False)


def stored_ids(db) -> list[uuid.UUID]:
    with db.session() as s:
        return list(s.scalars(select(Rating.event_id)))


def test_500_presses_are_stored_exactly_once_and_replays_change_nothing(broker_factory, db, tmp_path):
    broker = broker_factory()
    hub = HubRuntime(hub_settings(tmp_path, database={"url": db_url(db)}, mqtt=mqtt_section(broker.port)),
                     roles=("ingest",))
    hub.start()
    node = PressingAgent(edge_data(tmp_path / "node", broker.port, NODE_A.username, NODE_A.password)).start()
    try:
        for i in range(500):
            node.press((i % 4) + 1)
        assert wait_until(lambda: node.outbox_depth() == 0, timeout=30), "outbox not drained by acks"
        ids = stored_ids(db)
        assert len(ids) == 500 and set(ids) == node.event_ids()

        with db.session() as s:
            events = [RatingEvent(event_id=r.event_id, node=r.node_id, seq=r.seq, box=r.box,
                                  counter=r.counter_code, score=r.score, pressed_at=r.pressed_at)
                      for r in s.scalars(select(Rating))]
        acks = Collector()
        replay = connected_link(broker.port, NODE_A, "node-a-replay", {T.ack("node-a"): acks})
        try:
            for e in events:
                replay.publish(T.rating("node-a"), e.to_bytes(), qos=1)
            assert acks.wait_for(lambda ms: {i for m in ms for i in decode(Ack, m.payload).event_ids}
                                 >= set(ids), timeout=30)
        finally:
            replay.stop()
        assert len(stored_ids(db)) == 500
        assert hub.ctx.metrics.value("thanthien_hub_ratings_duplicate_total") >= 500
    finally:
        node.stop()
        hub.stop()


def test_hub_killed_while_a_node_presses_loses_and_doubles_nothing(broker_factory, db, tmp_path):
    broker = broker_factory()
    config = write_toml(tmp_path / "hub.toml", {
        "hub": {"data_dir": str(tmp_path / "hub")}, "database": {"url": db_url(db)},
        "mqtt": mqtt_section(broker.port), "ingest": {"client_id": "hub-e2e"},
        "http": {"secret_key": "e2e-secret-key-0123456789"}, "logging": {"level": "WARNING"}})
    hub = start_hub_process(config)
    node = PressingAgent(edge_data(tmp_path / "node", broker.port, NODE_A.username, NODE_A.password)).start()
    restarted: subprocess.Popen[bytes] | None = None
    try:
        for i in range(60):
            node.press((i % 4) + 1)
            if i == 30:
                assert wait_until(lambda: len(stored_ids(db)) > 0), "hub stored nothing before the kill"
                hub.send_signal(signal.SIGKILL)
                hub.wait(10)
        assert node.outbox_depth() > 0  # what the dead hub never committed waits at the node
        restarted = start_hub_process(config)
        assert wait_until(lambda: node.outbox_depth() == 0, timeout=40), "outbox not drained after restart"
        ids = stored_ids(db)
        assert len(ids) == 60 and set(ids) == node.event_ids()
    finally:
        node.stop()
        for proc in (hub, restarted):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(15)


@pytest.fixture
def broker(broker_factory):
    """A private broker per test: no retained state of another test reaches this hub."""
    return broker_factory()


@pytest.fixture
def hook():
    h = Hook()
    yield h
    h.close()


@pytest.fixture
def live_hub(broker, db, tmp_path, hook):
    settings = hub_settings(tmp_path, database={"url": db_url(db)}, mqtt=mqtt_section(broker.port),
                            ingest={"client_id": f"hub-health-{uuid.uuid4().hex[:6]}"},
                            health={"heartbeat_s": 1.0},
                            alarms={"remind_s": 1.0, "check_s": 0.2, "webhook_url": hook.url},
                            registry={"nodes": [{"id": "node-a"}, {"id": "node-b"}]})
    hub = HubRuntime(settings, roles=("ingest", "scheduler"))
    hub.start()
    assert hub.link.wait_connected(10) and hub.link.subscribed.wait(10)
    yield hub
    hub.stop()


def node_row(db, node_id: str = "node-b") -> Node | None:
    with db.session() as s:
        return s.get(Node, node_id)


def test_node_killed_with_sigkill_shows_lost_at_once(broker, live_hub, db, tmp_path):
    data = edge_data(tmp_path / "node", broker.port, NODE_B.username, NODE_B.password)
    config = write_toml(tmp_path / "edge.toml", {t: data[t] for t in ("node", "mqtt", "telemetry", "audio")})
    agent = subprocess.Popen([sys.executable, "-m", "thanthien.cli", "edge", "run", "--config", str(config)],
                             cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: (n := node_row(db)) is not None and n.state == "online"), "never online"
        agent.send_signal(signal.SIGKILL)
        agent.wait(10)
        assert wait_until(lambda: node_row(db).state == "lost", timeout=5)
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()


def test_silent_node_goes_offline_within_two_heartbeats_and_its_alarm_lives_and_clears(broker, live_hub, db,
                                                                                        hook):
    node = connected_link(broker.port, NODE_A, f"node-a-quiet-{uuid.uuid4().hex[:6]}")

    def say(state: str, session: int) -> None:
        payload = NodeState(node="node-a", state=state, session=session, at=utc_now(), agent_version="t")
        node.publish_confirmed(T.node_state("node-a"), payload.to_bytes(), retain=True)

    def telemetry(session: int) -> None:
        t = Telemetry(node="node-a", session=session, at=utc_now(), uptime_s=1, agent_version="t",
                      load_1m=0, load_5m=0, load_15m=0, mem_used_pct=1, disk_used_pct=1, disk_free_mb=100,
                      outbox_depth=0, ignored_presses=0)
        node.publish_confirmed(T.telemetry("node-a"), t.to_bytes())

    def offline_alarm():
        with db.session() as s:
            return alarms.active_alarm(s, kind="node_offline", subject="node-a")

    try:
        say("online", 7)
        telemetry(7)
        assert wait_until(lambda: (n := node_row(db, "node-a")) is not None and n.state == "online")
        silent_since = node_row(db, "node-a").last_seen_at
        assert wait_until(lambda: node_row(db, "node-a").state == "offline", timeout=3)
        went_offline = node_row(db, "node-a").state_at
        assert (went_offline - silent_since).total_seconds() <= 2 * 1.0 + 0.3
        assert wait_until(lambda: (a := offline_alarm()) is not None and a.reminders >= 1, timeout=5)
        with db.session() as s:
            alarms.acknowledge_alarm(s, alarm_id=offline_alarm().id, actor=ActingUser("it", IT),
                                     now=utc_now(), notify=live_hub.ctx.notify)
        telemetry(7)  # the node speaks again
        assert wait_until(lambda: offline_alarm() is None)
        with db.session() as s:
            raised = s.scalar(select(func.count()).select_from(alarms.Alarm).where(
                alarms.Alarm.kind == "node_offline", alarms.Alarm.subject == "node-a"))
        assert raised == 1

        def events(bodies) -> list[str]:
            return [b["event"] for b in bodies if b["alarm"]["kind"] == "node_offline"]

        assert hook.wait_for(lambda bodies: "cleared" in events(bodies))
        seen = events(hook.bodies)
        assert seen[0] == "raised" and "reminder" in seen and seen[-2:] == ["acknowledged", "cleared"]
    finally:
        node.stop()
