"""Store and forward: nothing a citizen gives is lost or counted twice, whatever happens to
the broker or the agent process."""

from __future__ import annotations

import signal
import subprocess
import sys
from uuid import UUID

import pytest
from edge_helpers import (
    BOX_1_PINS,
    BOX_2_PINS,
    REPO,
    AckingPeer,
    Outcomes,
    T,
    bouncy_press,
    edge_config,
    edge_settings,
    start_agent_process,
    to_toml,
    watch_state,
)

from support import HUB, Collector, connected_link
from thanthien.edge.agent import EdgeAgent
from thanthien.edge.devices.rating_box import RatingBoxes
from thanthien.edge.outbox import Outbox
from thanthien.mqtt import Message
from thanthien.protocol.payloads import Telemetry, decode

pytestmark = pytest.mark.chaos


def _expect_line(proc: subprocess.Popen[str], prefix: str) -> list[str]:
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(prefix):
            return line.split()
    raise AssertionError(f"process ended (exit {proc.wait()}) before printing {prefix!r}")


def test_presses_while_the_broker_is_down_are_delivered_when_it_is_back(tmp_path, broker_factory):
    broker = broker_factory()
    agent = EdgeAgent(edge_settings(tmp_path / "node", broker.port, response_interval_s=0,
                                    resend_interval_s=0.5))
    outcomes = Outcomes()
    peer = AckingPeer(broker.port)
    try:
        agent.start()
        agent.device(RatingBoxes).add_listener(outcomes)
        assert agent.link is not None and agent.link.wait_connected(10)
        broker.stop()
        pins = [BOX_1_PINS[4], BOX_2_PINS[1], BOX_1_PINS[2], BOX_2_PINS[3], BOX_1_PINS[1]]
        for n, pin in enumerate(pins, start=1):
            bouncy_press(agent.pin_factory.pin(pin), lambda n=n: outcomes.wait_count(n))
        assert agent.outbox is not None and agent.outbox.depth() == 5
        assert not agent.link.connected.is_set()

        broker.start()
        assert peer.wait_counted(5, timeout=15)
        assert set(peer.counted) == {o.event_id for o in outcomes.items}
        assert agent.link.wait_connected(5)
    finally:
        agent.stop()
        peer.close()
    with Outbox.in_dir(tmp_path / "node") as outbox:
        assert outbox.depth() == 0  # acked by the peer, gone from the outbox


def test_ratings_pending_when_the_agent_is_killed_are_delivered_once_after_a_restart(
        tmp_path, broker_factory):
    broker = broker_factory()
    config = tmp_path / "edge.toml"
    config.write_text(to_toml(edge_config(tmp_path / "node", broker.port, response_interval_s=0,
                                          telemetry_s=1)), encoding="utf-8")
    watcher, watch_link = watch_state(broker.port)
    telemetry = Collector()
    telemetry_link = connected_link(broker.port, HUB, "test-telemetry", {T.telemetry("node-a"): telemetry})
    env_tests = f"{REPO / 'tests'}"
    pressing = subprocess.Popen(
        [sys.executable, str(REPO / "tests/edge/press_agent.py"), str(config)],
        cwd=REPO, text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env={"PYTHONPATH": env_tests, "PATH": "/usr/bin:/bin", "PYTHONUNBUFFERED": "1"})
    peer = None
    restarted = None
    try:
        assert _expect_line(pressing, "ready")[1] == "1"
        watcher.wait_state("online", session=1)
        stored: list[UUID] = []
        assert pressing.stdin is not None
        for box, score in [("box-1", 4), ("box-2", 1), ("box-1", 3), ("box-2", 2)] * 3:
            pressing.stdin.write(f"press {box} {score}\n")
            pressing.stdin.flush()
            stored.append(UUID(_expect_line(pressing, "stored")[1]))
        pressing.send_signal(signal.SIGKILL)  # nobody has acked anything yet
        pressing.wait(10)
        assert watcher.wait_state("lost", session=1)  # the Will

        with Outbox.in_dir(tmp_path / "node") as outbox:
            assert {e.event_id for e in outbox.pending()} == set(stored)

        peer = AckingPeer(broker.port)
        restarted = start_agent_process(config)
        assert peer.wait_counted(len(stored), timeout=15)
        assert set(peer.counted) == set(stored)
        assert sorted(e.seq for e in peer.counted.values()) == list(range(1, len(stored) + 1))
        watcher.wait_state("online", session=2)
        # the restarted agent reports its outbox drained by the acks
        assert telemetry.wait_for(lambda ms: any(
            t.session == 2 and t.outbox_depth == 0 for t in map(_telemetry, ms)), timeout=10)

        restarted.send_signal(signal.SIGTERM)
        assert restarted.wait(15) == 0
        watcher.wait_state("offline", session=2)
    finally:
        for proc in (pressing, restarted):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
        if peer is not None:
            peer.close()
        watch_link.stop()
        telemetry_link.stop()


def _telemetry(message: Message) -> Telemetry:
    return decode(Telemetry, message.payload)

