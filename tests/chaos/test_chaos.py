"""The chaos drill (bounded form): while a simulated fleet presses buttons, the broker is
SIGKILLed and restarted, the hub is SIGKILLed twice, a node dies as in a power cut and a
real agent process is SIGKILLed, a node is cut off the broker, and every rating is sent a
second time. At the end the hub holds exactly the ratings the devices stored.

THANTHIEN_CHAOS_CUT_S lengthens the network cut (default 20 s; the field drill uses 300).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from edge.edge_helpers import edge_config, to_toml
from hub.e2e import start_hub_process, write_toml
from sqlalchemy import create_engine, func, select

from support import HUB, Account, connected_link, wait_until
from thanthien.hub.db.models import Rating
from thanthien.protocol import Topics
from thanthien.protocol.payloads import RatingEvent
from thanthien.sim.fleet import Fleet, FleetOptions, broker_users, make_specs, parse_mix
from thanthien.sim.group import CitizenHabits
from thanthien.sim.ledger import Key, compare, read_ledger

# Under pytest-xdist (make test) the drills share one worker, one after another: they SIGKILL
# brokers and hubs and hold timing tolerances, so never beside each other or the benchmarks.
pytestmark = [pytest.mark.chaos, pytest.mark.slow, pytest.mark.xdist_group("serial")]

T = Topics()
CUT_S = float(os.environ.get("THANTHIEN_CHAOS_CUT_S", "20"))
REPO = Path(__file__).resolve().parents[2]


class HubProcess:
    """The hub as its own process, so it can be SIGKILLed and started again on its data."""

    def __init__(self, tmp: Path, broker_port: int) -> None:
        self.db_url = f"sqlite:///{tmp / 'hub.db'}"
        self.config = write_toml(tmp / "hub.toml", {
            "hub": {"data_dir": str(tmp / "hub")},
            "database": {"url": self.db_url},
            "http": {"secret_key": "chaos-secret-key-0123456789"},
            "mqtt": {"host": "127.0.0.1", "port": broker_port, "username": HUB.username,
                     "password": HUB.password, "reconnect_min_s": 0.1, "reconnect_max_s": 0.5},
            "ingest": {"client_id": f"hub-chaos-{uuid.uuid4().hex[:6]}"},
        })
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = start_hub_process(self.config, roles="ingest")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(20)

    def stored(self, nodes: set[str]) -> list[tuple[str, str, int]]:
        engine = create_engine(self.db_url)
        try:
            with engine.connect() as conn:
                rows = conn.execute(select(Rating.node_id, Rating.event_id, Rating.score)
                                    .where(Rating.node_id.in_(nodes))).all()
                return [(n, str(e), s) for n, e, s in rows]
        except Exception:  # not created yet (the hub migrates at start)
            return []
        finally:
            engine.dispose()

    def count_rows(self) -> tuple[int, int]:
        engine = create_engine(self.db_url)
        try:
            with engine.connect() as conn:
                return (conn.scalar(select(func.count()).select_from(Rating)) or 0,
                        conn.scalar(select(func.count(func.distinct(Rating.event_id)))) or 0)
        finally:
            engine.dispose()


class PressAgent:
    """A real agent process (tests/edge/press_agent.py) that can be SIGKILLed."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.stored: dict[Key, dict[str, Any]] = {}
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, str(REPO / "tests" / "edge" / "press_agent.py"),
                                      str(self.config)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, cwd=REPO)
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().startswith("ready")

    def press(self, node: str, score: int) -> None:
        assert self.proc is not None and self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"press box-1 {score}\n")
        self.proc.stdin.flush()
        word, event_id, _seq = self.proc.stdout.readline().split()
        if word == "stored":
            self.stored[(node, event_id)] = {"score": score}

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait(20)


def _replay(port: int, password: str, node: str, entries: dict[Key, dict[str, Any]]) -> int:
    """Send every stored rating of ``node`` once more, as the node itself (the ACL allows
    nothing else)."""
    link = connected_link(port, Account(node, password), f"{node}-replay")
    sent = 0
    try:
        for (n, event_id), e in entries.items():
            if n != node or "seq" not in e:
                continue
            event = RatingEvent(event_id=uuid.UUID(event_id), node=node, seq=e["seq"], box=e["box"],
                                counter=e["counter"], score=e["score"],
                                pressed_at=datetime.fromisoformat(e["pressed_at"]))
            link.publish_confirmed(T.rating(node), event.to_bytes())
            sent += 1
    finally:
        link.stop()
    return sent


def test_chaos_ends_with_the_ledger_equal_to_the_stored_ratings(broker_factory, tmp_path, chaos_report):
    broker = broker_factory(HUB)
    specs = make_specs(6, parse_mix("rating=5,office=1"), seed=11, prefix="chaos")
    solo = Account("chaos-solo", "solo-secret-123")
    broker.add_users({**broker_users(specs), solo.username: solo.password})
    hub = HubProcess(tmp_path, broker.port)
    hub.start()
    ledger_path = tmp_path / "ledger.jsonl"
    fleet = Fleet(specs, FleetOptions(
        broker_port=broker.port, data_root=tmp_path / "fleet", ledger=ledger_path, workers=2,
        habits=CitizenHabits(press_rate=30, repeat_probability=0.2), faultable=len(specs), seed=11,
        env={"keepalive_s": 5, "resend_s": 1.0, "camera_interval_s": 2.0}))
    solo_cfg = tmp_path / "solo.toml"
    solo_cfg.write_text(to_toml(edge_config(tmp_path / "solo", broker.port, solo, bounce_ms=1,
                                            response_interval_s=0, resend_interval_s=1.0)))
    agent = PressAgent(solo_cfg)
    events: list[str] = []
    tick = threading.Event()
    fleet.start()
    try:
        assert fleet.wait_connected(timeout=60), fleet.apply("status", [])
        agent.start()
        nodes = {s.node_id for s in specs}

        def pressed() -> int:
            return len(read_ledger(ledger_path))

        assert wait_until(lambda: pressed() >= 10, timeout=30)

        broker.kill()
        events.append("broker SIGKILL")
        for score in (4, 1, 3):
            agent.press(solo.username, score)  # into the outbox while the broker is gone
        tick.wait(2)
        broker.start()
        events.append("broker restarted")

        for round_ in (1, 2):
            hub.kill()
            events.append(f"hub SIGKILL #{round_}")
            tick.wait(2)
            hub.start()
            events.append(f"hub restarted #{round_}")

        victim, cut = specs[0].node_id, specs[1].node_id
        fleet.apply("kill", [victim])
        events.append(f"node {victim} killed (power cut)")
        for score in (2, 2, 4):
            agent.press(solo.username, score)
        agent.kill()
        events.append("agent process chaos-solo SIGKILL")
        tick.wait(1)
        fleet.apply("revive", [victim])
        agent.start()
        agent.press(solo.username, 3)
        events.append(f"node {victim} revived, chaos-solo restarted")

        fleet.apply("cut", [cut, "blackhole"])
        events.append(f"node {cut} cut off for {CUT_S:.0f} s")
        tick.wait(CUT_S)
        fleet.apply("restore", [cut])
        events.append(f"node {cut} back")

        assert fleet.apply("pause", [])["idle"]
        agent.stop()
        ledger = {k: v for k, v in read_ledger(ledger_path).items() if k[0] in nodes}
        for spec in specs:
            _replay(broker.port, spec.password, spec.node_id, ledger)
        events.append(f"every one of {len(ledger)} fleet ratings sent a second time")

        want = {**ledger, **agent.stored}
        all_nodes = nodes | {solo.username}
        assert wait_until(lambda: fleet.apply("status", [])["outbox"] == 0, timeout=60)
        assert wait_until(lambda: len(hub.stored(all_nodes)) >= len(want), timeout=60)
        result = compare(want, hub.stored(all_nodes))
        rows, distinct = hub.count_rows()
        chaos_report(events, f"{result.summary()}; {len(want)} ratings stored by the devices, "
                             f"{rows} rows at the hub")
        assert result.same, result.summary()
        assert rows == distinct == len(want)
    finally:
        fleet.stop()
        agent.stop()
        hub.stop()
