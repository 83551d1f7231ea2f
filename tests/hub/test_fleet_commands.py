"""Commands to one node through the API (each answer shown, kept and audited) against a real
edge agent, enrolled with a code, over a real Mosquitto: ping, set volume (the node reports the
new volume and keeps it in its config), identify, reload config, a node that does not answer,
one that is offline (refused at once)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from hub.fleet_helpers import FleetHub, start_fleet_hub
from support import HUB, bearer, wait_until
from thanthien.config import validate_data
from thanthien.edge.agent import EdgeAgent
from thanthien.edge.audio import NullOutput
from thanthien.edge.devices.speaker import SpeakerDevice
from thanthien.edge.settings import EdgeSettings
from thanthien.hub.app import create_app
from thanthien.hub.db.models import AuditEntry, Node, NodeCommand, NodeConfigRow
from thanthien.hub.roles import SYSTEM, ActingUser
from thanthien.hub.services import enrollment, health, registry, users
from thanthien.protocol.payloads import NodeState, utc_now

pytestmark = [pytest.mark.usefixtures("cheap_hashing"), pytest.mark.timeout(90)]
NODE = "loa-ban-moi"
PASSWORD = "mat-khau-it-2026"
IT = ActingUser(username="it", role="it")


@pytest.fixture
def db_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """SQLite: the commands' rows are plain; the storage rules run on both in test_enrollment.py."""
    return f"sqlite:///{tmp_path_factory.getbasetemp() / 'hub-sqlite.db'}"


@pytest.fixture
def hub(db, tmp_path, broker_factory) -> Iterator[FleetHub]:
    started = start_fleet_hub(db, tmp_path / "hub", broker_factory(HUB))
    with db.session() as s:
        for role in ("it", "officer"):
            users.create_user(s, actor=SYSTEM, username=role, password=PASSWORD, role=role, now=utc_now())
        registry.create_zone(s, actor=SYSTEM, code="ban-moi", name="Bản Mới")
        registry.register_node(s, actor=SYSTEM, node_id=NODE, name="Cụm loa Bản Mới")
        registry.upsert_device(s, actor=SYSTEM, node_id=NODE, code="loa", kind="speaker", zone="ban-moi")
    yield started
    started.stop()


@pytest.fixture
def api(hub) -> Iterator[TestClient]:
    with TestClient(create_app(hub.ctx.settings, hub.ctx.db, hub.ctx.mqtt, ctx=hub.ctx)) as client:
        yield client


@pytest.fixture
def it(api) -> dict[str, str]:
    return bearer(api, "it", PASSWORD)


def _enrolled_agent(hub: FleetHub, tmp_path) -> EdgeAgent:
    """The node enrolled with a code (as `edge enroll` does) and its agent running."""
    cfg = hub.ctx.settings.enrollment
    with hub.ctx.db.session() as s:
        code = enrollment.issue_code(s, actor=IT, node_id=NODE, now=utc_now(), settings=cfg)
    with hub.ctx.db.session() as s:
        got = enrollment.redeem(s, code=code.code, csr_pem=None, now=utc_now(), settings=cfg,
                                throttle=hub.ctx.settings.auth, enrolled_via=hub.url + "/",
                                client="127.0.0.1")
    data = {"node": {"id": NODE, "hardware": "mock", "data_dir": str(tmp_path / "pi")},
            "mqtt": {"host": got.broker_host, "port": got.broker_port, "password": got.password,
                     "reconnect_min_s": 0.1, "reconnect_max_s": 0.5},
            "hub": {"url": got.hub_url, "media_token": got.media_token}, "audio": {"output": "null"}}
    agent = EdgeAgent(validate_data(EdgeSettings, data), audio=NullOutput())
    agent.start()
    assert agent.link is not None and agent.link.wait_connected(10) and agent.link.subscribed.wait(10)

    def online() -> bool:
        with hub.ctx.db.session(write=False) as s:
            node = s.get(Node, NODE)
            return node is not None and node.state == "online"

    assert wait_until(online)
    return agent


@pytest.fixture
def agent(hub, tmp_path) -> Iterator[EdgeAgent]:
    running = _enrolled_agent(hub, tmp_path)
    yield running
    running.stop()


def _send(api: TestClient, headers: dict[str, str], name: str, **args: object):
    return api.post(f"/api/v1/nodes/{NODE}/commands", headers=headers, json={"name": name, "args": args})


def test_ping_is_answered_and_the_answer_kept_and_audited(api, it, agent, hub):
    response = _send(api, it, "ping")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok" and body["result"]["pong"] is True and body["actor"] == "it"
    listed = api.get(f"/api/v1/nodes/{NODE}/commands", headers=it).json()
    assert [c["id"] for c in listed] == [body["id"]]
    with hub.ctx.db.session(write=False) as s:
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "node.command"))
    assert entry is not None and entry.actor_username == "it" and entry.details["command"] == "ping"


def test_set_volume_is_reported_by_the_node_and_kept_in_its_config(api, it, agent, hub):
    speaker = agent.device(SpeakerDevice)
    response = _send(api, it, "set-volume", volume=35)
    assert response.json()["result"] == {"volume": 35}
    assert speaker.player is not None and speaker.player.settings.volume == 35

    def config_in_force() -> bool:
        with hub.ctx.db.session(write=False) as s:
            row = s.get(NodeConfigRow, NODE)
            return row is not None and row.settings["speaker"]["volume"] == 35 and row.reported_version == 2

    assert wait_until(config_in_force)  # version 2 carries the volume; the node runs it
    assert agent.remote is not None and agent.remote.version == 2


def test_identify_makes_the_speaker_beep(api, it, agent):
    body = _send(api, it, "identify", seconds=2).json()
    assert body["status"] == "ok" and body["result"]["identifying"] == "speaker"


def test_reload_config_republishes_the_config_and_the_node_applies_it(api, it, agent, hub):
    body = _send(api, it, "reload-config").json()
    assert body["status"] == "ok" and body["result"]["config_version"] >= 1


def test_bad_arguments_are_refused_before_anything_is_sent(api, it, agent, hub):
    assert _send(api, it, "set-volume", volume=150).status_code == 422
    assert _send(api, it, "format-disk").status_code == 422
    with hub.ctx.db.session(write=False) as s:
        assert s.scalars(select(NodeCommand)).all() == []


def test_command_to_an_offline_node_is_refused_at_once_and_kept(api, it, hub):
    with hub.ctx.db.session() as s:
        health.apply_node_state(s, state=NodeState(node=NODE, state="lost", session=3, at=utc_now(),
                                                   agent_version="0.1.0"), now=utc_now(), notify=False)
    response = _send(api, it, "ping")
    assert response.status_code == 409
    assert "mất kết nối" in response.json()["detail"] and "không được gửi" in response.json()["detail"]
    [kept] = api.get(f"/api/v1/nodes/{NODE}/commands", headers=it).json()
    assert kept["status"] == "offline"


def test_a_node_that_does_not_answer_times_out(api, it, hub):
    with hub.ctx.db.session() as s:  # the hub holds it online, but nothing runs behind it
        health.apply_node_state(s, state=NodeState(node=NODE, state="online", session=3, at=utc_now(),
                                                   agent_version="0.1.0"), now=utc_now(), notify=False)
    hub.ctx.settings.fleet.command_timeout_s = 0.5
    body = _send(api, it, "ping").json()
    assert body["status"] == "timeout" and "không trả lời" in body["error"]


def test_officer_may_not_send_commands(api):
    officer = bearer(api, "officer", PASSWORD)
    assert _send(api, officer, "ping").status_code == 403
