"""`thanthien edge enroll` on a simulated Pi against a hub served over HTTP and a real Mosquitto:
the files it writes, the agent they start with the hub's config, a refused code that leaves
nothing behind, and the certificate identity whose private key never leaves the node (revoked
through the CRL when the node is retired)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.fleet_helpers import FleetHub, free_port, start_fleet_hub
from support import HUB, make_broker, mqtt_settings, wait_until
from thanthien.broker import Broker, BrokerTls
from thanthien.cli import main
from thanthien.config import load_config
from thanthien.edge.agent import EdgeAgent
from thanthien.edge.audio import NullOutput
from thanthien.edge.devices.speaker import SpeakerDevice
from thanthien.edge.remote_config import CONFIG_FILE
from thanthien.edge.settings import EdgeSettings
from thanthien.hub.db.models import NodeConfigRow
from thanthien.hub.roles import SYSTEM, ActingUser
from thanthien.hub.services import enrollment, registry
from thanthien.mqtt import MqttLink
from thanthien.pki import CRL_FILE, create_ca, issue_server, write_crl

pytestmark = pytest.mark.timeout(90)
NODE = "loa-ban-moi"
IT = ActingUser(username="kythuat", role="it")


@pytest.fixture
def db_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """SQLite: the storage rules run on both back ends in test_enrollment.py."""
    return f"sqlite:///{tmp_path_factory.getbasetemp() / 'hub-sqlite.db'}"


def _declare(hub: FleetHub) -> None:
    with hub.ctx.db.session() as s:
        registry.create_zone(s, actor=SYSTEM, code="ban-moi", name="Bản Mới")
        registry.register_node(s, actor=SYSTEM, node_id=NODE, name="Cụm loa Bản Mới")
        registry.upsert_device(s, actor=SYSTEM, node_id=NODE, code="loa", kind="speaker", zone="ban-moi")


def _code(hub: FleetHub) -> str:
    with hub.ctx.db.session() as s:
        return enrollment.issue_code(s, actor=IT, node_id=NODE, now=hub.ctx.clock(),
                                     settings=hub.ctx.settings.enrollment).code


@pytest.fixture
def hub(db, tmp_path, broker_factory) -> Iterator[FleetHub]:
    started = start_fleet_hub(db, tmp_path / "hub", broker_factory(HUB))
    _declare(started)
    yield started
    started.stop()


def _enroll(hub: FleetHub, code: str, pi: Path) -> int:
    return main(["edge", "enroll", "--hub", hub.url, "--code", code, "--data", str(pi / "data"),
                 "--config", str(pi / "edge.toml"), "--hardware", "mock"])


def test_enrolled_pi_runs_the_hub_config_and_reports_its_version(hub, tmp_path, capsys):
    pi = tmp_path / "pi"
    assert _enroll(hub, _code(hub), pi) == 0
    assert "start it with: thanthien edge run --config" in capsys.readouterr().out
    for path in (pi / "edge.toml", pi / "data" / CONFIG_FILE):
        assert path.stat().st_mode & 0o777 == 0o600
    settings = load_config(EdgeSettings, pi / "edge.toml")
    assert settings.node.id == NODE and settings.speakers is None  # the devices come from the hub
    with EdgeAgent(settings, config_path=pi / "edge.toml", audio=NullOutput()) as agent:
        assert agent.link is not None and agent.link.wait_connected(10)
        speaker = agent.device(SpeakerDevice)
        assert speaker.config.volume == 80 and speaker.config.hub_url == f"{hub.url}/api/v1/"

        def reported() -> bool:
            with hub.ctx.db.session(write=False) as s:
                row = s.get(NodeConfigRow, NODE)
                return row is not None and row.reported_version == 1

        assert wait_until(reported)


def test_refused_code_writes_nothing_on_the_pi(hub, tmp_path, capsys):
    _code(hub)
    pi = tmp_path / "pi"
    assert _enroll(hub, "AAAA-BBBB-CCCC-DDDD", pi) == 3
    assert "Mã đăng ký không đúng" in capsys.readouterr().err
    assert not pi.exists()


def test_unreachable_hub_is_said_plainly(tmp_path, capsys):
    code = main(["edge", "enroll", "--hub", f"http://127.0.0.1:{free_port()}", "--code",
                 "AAAA-BBBB-CCCC-DDDD", "--data", str(tmp_path / "d"), "--config", str(tmp_path / "e.toml")])
    assert code == 3 and "cannot be reached" in capsys.readouterr().err


# -- certificates ----------------------------------------------------------------------------
@pytest.fixture
def tls_hub(db, tmp_path) -> Iterator[tuple[FleetHub, Broker, Path]]:
    pki = tmp_path / "pki"
    create_ca(pki)
    server = issue_server(pki, ["127.0.0.1"])
    write_crl(pki, [])
    broker = make_broker(tmp_path / "broker", (HUB,))
    broker.tls = BrokerTls(ca=pki / "ca.crt", cert=server.cert, key=server.key, port=free_port(),
                           bind="127.0.0.1", crl=pki / CRL_FILE)
    broker.start()
    started = start_fleet_hub(db, tmp_path / "hub", broker, enrollment={
        "identity": "certificate", "pki_dir": str(pki), "broker_host": "127.0.0.1",
        "broker_port": broker.tls.port})
    _declare(started)
    yield started, broker, pki
    started.stop()
    broker.stop()


def test_certificate_identity_keeps_the_key_on_the_pi_and_retiring_revokes_it(tls_hub, tmp_path):
    hub, broker, pki = tls_hub
    pi = tmp_path / "pi"
    assert _enroll(hub, _code(hub), pi) == 0
    settings = load_config(EdgeSettings, pi / "edge.toml")
    assert settings.mqtt.password is None and settings.mqtt.tls_key is not None
    key = settings.mqtt.tls_key.read_bytes()
    assert b"PRIVATE KEY" in key and settings.mqtt.tls_key.stat().st_mode & 0o777 == 0o600
    hub_files = b"".join(p.read_bytes() for p in (tmp_path / "hub").rglob("*") if p.is_file())
    assert key not in hub_files and key not in b"".join(p.read_bytes() for p in pki.iterdir())
    tls = {k: getattr(settings.mqtt, k) for k in ("tls_ca", "tls_cert", "tls_key")}
    link = MqttLink(client_id=NODE, persistent=False, settings=mqtt_settings(broker.tls.port, None, **tls))
    link.start()
    try:
        assert link.wait_connected(10), link.last_connect_error
        with hub.ctx.db.session() as s:
            enrollment.retire_node(s, actor=IT, node_id=NODE, now=hub.ctx.clock())
        assert wait_until(lambda: not link.connected.is_set(), timeout=10)  # its connection taken over
    finally:
        link.stop()
    again = MqttLink(client_id=f"{NODE}-again", persistent=False,
                     settings=mqtt_settings(broker.tls.port, None, **tls))
    again.start()
    try:
        assert not again.wait_connected(3)  # the CRL refuses it at the TLS handshake
    finally:
        again.stop()
    crl = (pki / CRL_FILE).read_bytes()
    assert b"BEGIN X509 CRL" in crl
