"""Enrollment with a one-time code through the API, against a real Mosquitto: the node gets a
broker identity that works, a wrong, reused or expired code is refused and changes nothing,
re-enrolling rotates the identity, retiring the node revokes it (the broker refuses its next
connect), and no secret shows in a log line or a later answer. On SQLite and PostgreSQL."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from hub.hub_helpers import hub_settings
from support import HUB, bearer, mqtt_settings, wait_until
from thanthien.broker import Broker, users_in
from thanthien.hub.app import create_app
from thanthien.hub.context import HubContext
from thanthien.hub.db.models import AuditEntry, EnrollmentCode, NodeCredential, NodeMediaToken
from thanthien.hub.roles import SYSTEM
from thanthien.hub.services import registry, users
from thanthien.mqtt import MqttLink

pytestmark = pytest.mark.usefixtures("cheap_hashing")
PASSWORD = "mat-khau-it-2026"
NODE = "loa-ban-moi"


@pytest.fixture
def node_broker(broker_factory) -> Broker:
    return broker_factory(HUB)


@pytest.fixture
def hub_ctx(db, clock, tmp_path: Path, node_broker: Broker) -> HubContext:
    settings = hub_settings(tmp_path, enrollment={"broker_data": str(node_broker.data_dir),
                                                  "code_ttl_s": 3600, "address_failures": 3},
                            auth={"first_delay_s": 60, "max_delay_s": 600})
    ctx = HubContext(settings=settings, db=db, clock=clock)
    with db.session() as s:
        for role in ("it", "officer", "admin"):
            users.create_user(s, actor=SYSTEM, username=role, password=PASSWORD, role=role, now=clock())
        registry.create_zone(s, actor=SYSTEM, code="ban-moi", name="Bản Mới")
        registry.register_node(s, actor=SYSTEM, node_id=NODE, name="Cụm loa Bản Mới")
        registry.upsert_device(s, actor=SYSTEM, node_id=NODE, code="loa", kind="speaker", zone="ban-moi")
    return ctx


@pytest.fixture
def client(hub_ctx) -> Iterator[TestClient]:
    with TestClient(create_app(hub_ctx.settings, hub_ctx.db, ctx=hub_ctx)) as c:
        yield c


@pytest.fixture
def it(client) -> dict[str, str]:
    return bearer(client, "it", PASSWORD)


def _code(client, headers, node: str = NODE) -> str:
    response = client.post(f"/api/v1/nodes/{node}/enrollment", headers=headers)
    assert response.status_code == 201, response.text
    return response.json()["code"]


def _connects(port: int, username: str, password: str, timeout: float = 5.0) -> tuple[bool, str | None]:
    link = MqttLink(client_id=username, persistent=False,
                    settings=mqtt_settings(port, None, username=username, password=password))
    link.start()
    try:
        return link.wait_connected(timeout), link.last_connect_error
    finally:
        link.stop()


def _refused(port: int, username: str, password: str) -> bool:
    """The broker answered the CONNECT with a refusal (not merely: not connected yet)."""
    link = MqttLink(client_id=f"{username}-try", persistent=False,
                    settings=mqtt_settings(port, None, username=username, password=password))
    link.start()
    try:
        refused = wait_until(lambda: link.last_connect_error is not None, timeout=5)
        return refused and not link.connected.is_set()
    finally:
        link.stop()


def test_it_gets_a_code_with_its_qr_code_and_only_its_hash_is_kept(client, it, hub_ctx):
    response = client.post(f"/api/v1/nodes/{NODE}/enrollment", headers=it)
    body = response.json()
    assert response.status_code == 201
    assert len(body["code"]) == 19 and body["code"].count("-") == 3
    assert body["command"].endswith(f"--code {body['code']}") and "edge enroll --hub http" in body["command"]
    assert body["qr_svg"].startswith("<svg")
    with hub_ctx.db.session(write=False) as s:
        stored = s.scalars(select(EnrollmentCode.code_sha256)).all()
        audits = [str(e.details) for e in s.scalars(select(AuditEntry))]
    assert len(stored) == 1 and body["code"] not in stored
    assert not any(body["code"] in a for a in audits)


def test_officer_may_not_ask_for_a_code(client):
    officer = bearer(client, "officer", PASSWORD)
    assert client.post(f"/api/v1/nodes/{NODE}/enrollment", headers=officer).status_code == 403


def test_enrolled_node_connects_to_the_broker_with_its_new_password(client, it, node_broker):
    code = _code(client, it)
    response = client.post("/api/v1/enroll", json={"code": code})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["node_id"] == NODE and body["media_token"].startswith("tn_")
    broker = body["broker"]
    assert (broker["username"], broker["port"], broker["tls"]) == (NODE, 1883, False)
    assert body["config"]["version"] == 1 and body["config"]["settings"]["speakers"]["volume"] == 80
    assert _connects(node_broker.port, NODE, broker["password"]) == (True, None)


def test_code_typed_in_lower_case_without_dashes_is_accepted(client, it):
    code = _code(client, it)
    assert client.post("/api/v1/enroll", json={"code": code.lower().replace("-", " ")}).status_code == 200


def test_wrong_code_is_refused_and_changes_nothing(client, it, hub_ctx, node_broker):
    _code(client, it)
    before = node_broker.passwd_path.read_bytes()
    response = client.post("/api/v1/enroll", json={"code": "AAAA-BBBB-CCCC-DDDD"})
    assert response.status_code == 403
    assert "không đúng" in response.json()["detail"]
    with hub_ctx.db.session(write=False) as s:
        assert s.scalar(select(func.count()).select_from(NodeCredential)) == 0
        assert s.scalar(select(EnrollmentCode.used_at)) is None
        assert s.get(NodeMediaToken, NODE) is None
    assert node_broker.passwd_path.read_bytes() == before


def test_reused_code_is_refused_and_the_first_identity_still_works(client, it, node_broker):
    code = _code(client, it)
    first = client.post("/api/v1/enroll", json={"code": code}).json()
    again = client.post("/api/v1/enroll", json={"code": code})
    assert again.status_code == 403 and "đã được dùng" in again.json()["detail"]
    assert _connects(node_broker.port, NODE, first["broker"]["password"]) == (True, None)


def test_expired_code_is_refused(client, it, clock, hub_ctx):
    code = _code(client, it)
    clock.advance(3601)
    response = client.post("/api/v1/enroll", json={"code": code})
    assert response.status_code == 403 and "hết hạn" in response.json()["detail"]
    with hub_ctx.db.session(write=False) as s:
        assert s.scalar(select(func.count()).select_from(NodeCredential)) == 0


def _wrong_codes(client, times: int) -> list[int]:
    return [client.post("/api/v1/enroll", json={"code": f"AAAA-BBBB-CCCC-{n:04d}"}).status_code
            for n in range(times)]


def test_an_address_guessing_codes_is_locked_out_after_the_allowed_failures(client):
    statuses = _wrong_codes(client, 4)
    assert statuses == [403, 403, 403, 429]


def test_a_locked_address_is_refused_even_a_good_code_and_told_when_to_retry(client, it, hub_ctx):
    _wrong_codes(client, 4)
    response = client.post("/api/v1/enroll", json={"code": _code(client, it)})
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "60"
    assert "Nhập sai mã đăng ký quá nhiều lần" in response.json()["detail"]
    with hub_ctx.db.session(write=False) as s:
        assert s.scalar(select(func.count()).select_from(NodeCredential)) == 0


def test_the_lock_ends_after_its_delay(client, it, clock):
    _wrong_codes(client, 4)
    clock.advance(61)
    assert client.post("/api/v1/enroll", json={"code": _code(client, it)}).status_code == 200


def test_locking_an_address_is_audited(client, hub_ctx):
    _wrong_codes(client, 4)
    with hub_ctx.db.session(write=False) as s:
        actions = s.scalars(select(AuditEntry.action)).all()
    assert "enroll.locked" in actions


def test_a_newer_code_replaces_an_unused_one(client, it):
    old = _code(client, it)
    _code(client, it)
    response = client.post("/api/v1/enroll", json={"code": old})
    assert response.status_code == 403 and "mã mới hơn" in response.json()["detail"]


def test_re_enrolling_rotates_the_password(client, it, node_broker):
    first = client.post("/api/v1/enroll", json={"code": _code(client, it)}).json()["broker"]["password"]
    second = client.post("/api/v1/enroll", json={"code": _code(client, it)}).json()["broker"]["password"]
    assert first != second
    assert _refused(node_broker.port, NODE, first)
    assert _connects(node_broker.port, NODE, second) == (True, None)


def test_retiring_the_node_revokes_its_identity_and_the_broker_refuses_it(client, it, node_broker, hub_ctx):
    password = client.post("/api/v1/enroll", json={"code": _code(client, it)}).json()["broker"]["password"]
    link = MqttLink(client_id=NODE, persistent=False,
                    settings=mqtt_settings(node_broker.port, None, username=NODE, password=password))
    link.start()
    try:
        assert link.wait_connected(5)
        response = client.post(f"/api/v1/nodes/{NODE}/retire", headers=it)
        assert response.status_code == 200, response.text
        assert wait_until(lambda: not link.connected.is_set(), timeout=5)  # the broker dropped it
        assert wait_until(lambda: link.last_connect_error is not None, timeout=5)  # and refuses it again
    finally:
        link.stop()
    assert NODE not in users_in(node_broker.passwd_path)
    assert HUB.username in users_in(node_broker.passwd_path)  # users enrollment does not manage stay
    with hub_ctx.db.session(write=False) as s:
        assert s.get(NodeMediaToken, NODE) is None
    retired = client.post(f"/api/v1/nodes/{NODE}/enrollment", headers=it)
    assert retired.status_code == 409


def test_no_secret_appears_in_a_log_line_or_a_later_answer(client, it, caplog):
    caplog.set_level(logging.DEBUG)
    code = _code(client, it)
    body = client.post("/api/v1/enroll", json={"code": code}).json()
    secrets_ = [code, body["broker"]["password"], body["media_token"]]
    admin = bearer(client, "admin", PASSWORD)
    later = "".join(client.get(path, headers=admin).text for path in (
        f"/api/v1/nodes/{NODE}", f"/api/v1/nodes/{NODE}/config", f"/api/v1/nodes/{NODE}/commands",
        "/api/v1/audit", "/api/v1/nodes"))
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for secret in secrets_:
        assert secret not in logged
        assert secret not in later


def test_deleting_the_node_revokes_its_identity(client, it, node_broker):
    client.post("/api/v1/enroll", json={"code": _code(client, it)})
    assert NODE in users_in(node_broker.passwd_path)
    assert client.delete(f"/api/v1/nodes/{NODE}", headers=it).status_code == 204
    assert NODE not in users_in(node_broker.passwd_path)


def test_certificate_identity_without_a_ca_is_a_config_problem():
    from thanthien.config import ConfigError, validate_data
    from thanthien.hub.settings import HubSettings

    with pytest.raises(ConfigError, match=r"enrollment\.pki_dir"):
        validate_data(HubSettings, {"enrollment": {"identity": "certificate"}})


def test_a_retired_node_raises_no_offline_alarm_when_its_last_will_arrives(client, it, hub_ctx, clock):
    from thanthien.hub.db.models import Alarm
    from thanthien.hub.services import health
    from thanthien.protocol.payloads import NodeState

    def state(value: str) -> NodeState:
        return NodeState(node=NODE, state=value, session=2, at=clock(), agent_version="0.1.0")  # type: ignore[arg-type]

    with hub_ctx.db.session() as s:
        health.apply_node_state(s, state=state("online"), now=clock(), notify=False)
    assert client.post(f"/api/v1/nodes/{NODE}/retire", headers=it).status_code == 200
    with hub_ctx.db.session() as s:  # the broker ended its connection: its Will comes
        health.apply_node_state(s, state=state("lost"), now=clock(), notify=False)
    with hub_ctx.db.session(write=False) as s:
        active = select(Alarm).where(Alarm.kind == "node_offline", Alarm.cleared_at.is_(None))
        assert s.scalars(active).all() == []
