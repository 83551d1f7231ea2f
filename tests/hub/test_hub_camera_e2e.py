"""CCTV health end to end: simulated cameras -> the real edge probes in an agent -> Mosquitto
-> the hub's ingest and scheduler: state and reason at the hub, the delayed alarm, recovery."""

from __future__ import annotations

import json
import uuid

import pytest
from cameras.camera_support import PASSWORD, USER, sim_factory_fixture, sim_fixture  # noqa: F401 (fixtures)

from hub.hub_helpers import hub_settings
from support import HUB, NODE_A, wait_until
from thanthien.config import validate_data
from thanthien.edge.agent import EdgeAgent
from thanthien.edge.settings import EdgeSettings
from thanthien.hub.db.models import CameraStatus
from thanthien.hub.roles import SYSTEM
from thanthien.hub.runtime import HubRuntime
from thanthien.hub.services import alarms

ALARM_AFTER_S = 1.0
SUBJECT = f"{NODE_A.username}/cam-quay-1"


@pytest.fixture
def hub(broker, tmp_path):
    settings = hub_settings(
        tmp_path, database={"url": f"sqlite:///{tmp_path / 'hub.db'}"},
        mqtt={"host": "127.0.0.1", "port": broker.port, "username": HUB.username,
              "password": HUB.password, "reconnect_min_s": 0.1, "reconnect_max_s": 1.0},
        ingest={"client_id": f"hub-cam-{uuid.uuid4().hex[:8]}"},
        alarms={"check_s": 0.2}, cameras={"alarm_after_s": ALARM_AFTER_S})
    runtime = HubRuntime(settings, roles=("ingest", "scheduler"))
    runtime.start()
    assert runtime.link.wait_connected(10) and runtime.link.subscribed.wait(10)
    yield runtime
    runtime.stop()


def agent_settings(tmp_path, broker, sim) -> EdgeSettings:
    return validate_data(EdgeSettings, {
        "node": {"id": NODE_A.username, "hardware": "mock", "data_dir": str(tmp_path / "node")},
        "mqtt": {"host": "127.0.0.1", "port": broker.port, "password": NODE_A.password,
                 "reconnect_min_s": 0.1, "reconnect_max_s": 0.5},
        "audio": {"output": "null"},
        "cameras": [{"id": "cam-quay-1", "rtsp_url": sim.rtsp_url, "snapshot_url": sim.snapshot_url,
                     "username": USER, "password": PASSWORD, "interval_s": 0.1, "slow_ms": 300,
                     "frozen_checks": 3, "hold_checks": 2, "publish_interval_s": 60}],
    })


@pytest.fixture
def agent(tmp_path, broker, sim, hub):
    with EdgeAgent(agent_settings(tmp_path, broker, sim)) as running:
        yield running


def status(hub: HubRuntime) -> CameraStatus | None:
    with hub.db.session(write=False) as s:
        row = s.query(CameraStatus).filter_by(camera="cam-quay-1").one_or_none()
        if row is not None:
            s.expunge(row)
        return row


def active(hub: HubRuntime):
    with hub.db.session(write=False) as s:
        return alarms.active_alarm(s, kind="camera_down", subject=SUBJECT)


CASES = [
    ("down", "down", "refused", True),
    ("wrong_credentials", "down", "401 Unauthorized", True),
    ("frozen", "frozen", "", True),
    ("black", "black", "black", True),
    ("slow", "degraded", "", False),
]


@pytest.mark.parametrize(("mode", "state", "reason_part", "alarms_"), CASES, ids=[c[0] for c in CASES])
def test_failure_mode_reaches_the_hub_alarms_after_the_delay_and_recovery_clears_it(
        hub, agent, sim, mode, state, reason_part, alarms_):
    assert wait_until(lambda: (s := status(hub)) is not None and s.state == "ok", timeout=20)
    sim.set_mode(mode)
    assert wait_until(lambda: status(hub).state == state, timeout=20), status(hub).state
    assert reason_part in status(hub).reason
    if alarms_:
        assert wait_until(lambda: active(hub) is not None, timeout=10)
        assert state_label_in(active(hub).message, state)
    else:
        assert not wait_until(lambda: active(hub) is not None, timeout=ALARM_AFTER_S * 3)
    sim.set_mode("ok")
    assert wait_until(lambda: status(hub).state == "ok", timeout=20)
    assert active(hub) is None
    assert PASSWORD not in json.dumps([status(hub).reason, *(a.message for a in all_alarms(hub))])


def state_label_in(message: str, state: str) -> bool:
    from thanthien.hub.services.cameras import LABELS

    return LABELS[state] in message


def all_alarms(hub: HubRuntime):
    with hub.db.session(write=False) as s:
        return alarms.list_alarms(s, viewer=SYSTEM, active=None, audience=None, limit=100, offset=0)


def test_the_cameras_of_a_stopped_node_are_unknown_at_the_hub_until_it_is_back(hub, tmp_path, broker, sim):
    settings = agent_settings(tmp_path, broker, sim)
    with EdgeAgent(settings):
        assert wait_until(lambda: (s := status(hub)) is not None and s.state == "ok", timeout=20)
    # the agent stopped cleanly (retained "offline"): its camera is unknown, not its last "ok"
    assert wait_until(lambda: status(hub).state == "unknown", timeout=20), status(hub).state
    assert status(hub).reason == "node offline: clean stop"
    with EdgeAgent(settings):
        assert wait_until(lambda: status(hub).state == "ok", timeout=20), status(hub).state
