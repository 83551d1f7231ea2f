"""Provisioning with TLS: a deployment CA, the broker's certificate and per-node client
certificates whose common name is the node id, against a real Mosquitto TLS listener."""

from __future__ import annotations

from pathlib import Path

import pytest

from support import HUB, Account, make_broker, mqtt_settings
from thanthien.broker import BrokerTls, free_port
from thanthien.cli import main
from thanthien.config import load_config
from thanthien.edge.settings import EdgeSettings
from thanthien.mqtt import MqttLink, PublishError
from thanthien.pki import create_ca, issue_client, issue_server
from thanthien.protocol import Topics

T = Topics()


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory):
    pki = tmp_path_factory.mktemp("pki")
    create_ca(pki)
    server = issue_server(pki, ["localhost", "127.0.0.1"])
    tls = BrokerTls(ca=pki / "ca.crt", cert=server.cert, key=server.key, port=free_port(),
                    bind="127.0.0.1")
    broker = make_broker(tmp_path_factory.mktemp("tls-broker"), (HUB,))
    broker.tls = tls
    broker.start()
    yield broker, pki
    broker.stop()


def _link(port: int, client_id: str, **tls: object) -> MqttLink:
    settings = mqtt_settings(port, None, **tls)
    return MqttLink(client_id=client_id, settings=settings, persistent=False)


def test_node_with_its_certificate_publishes_under_its_own_id(tls_broker):
    broker, pki = tls_broker
    files = issue_client(pki, "loa-ban-na")
    link = _link(broker.tls.port, "loa-ban-na", tls_ca=pki / "ca.crt", tls_cert=files.cert,
                 tls_key=files.key)
    link.start()
    try:
        assert link.wait_connected(10), link.last_connect_error
        link.publish_confirmed(T.telemetry("loa-ban-na"), b"{}")
        with pytest.raises(PublishError, match="135"):
            link.publish_confirmed(T.telemetry("another-node"), b"{}")
    finally:
        link.stop()


def test_client_without_certificate_is_refused(tls_broker):
    broker, pki = tls_broker
    link = _link(broker.tls.port, "anon", tls_ca=pki / "ca.crt")
    link.start()
    try:
        assert not link.wait_connected(1.5)
    finally:
        link.stop()


def test_certificate_from_another_ca_is_refused(tls_broker, tmp_path: Path):
    broker, pki = tls_broker
    create_ca(tmp_path)
    rogue = issue_client(tmp_path, "loa-ban-na")
    link = _link(broker.tls.port, "rogue", tls_ca=pki / "ca.crt", tls_cert=rogue.cert,
                 tls_key=rogue.key)
    link.start()
    try:
        assert not link.wait_connected(1.5)
    finally:
        link.stop()


def test_provision_node_with_tls_writes_a_working_config(tls_broker, tmp_path: Path):
    broker, pki = tls_broker
    out = tmp_path / "node.toml"
    assert main(["provision", "node", "mo-quay-2", "--tls-dir", str(pki), "--out", str(out),
                 "--port", str(broker.tls.port), "--hardware", "mock"]) == 0
    settings = load_config(EdgeSettings, out)
    assert settings.mqtt.password is None
    link = MqttLink(client_id="mo-quay-2", settings=settings.mqtt.model_copy(
        update={"reconnect_min_s": 0.1}), persistent=False)
    link.start()
    try:
        assert link.wait_connected(10), link.last_connect_error
        link.publish_confirmed(T.node_state("mo-quay-2"), b"{}")
    finally:
        link.stop()


def test_provision_server_without_ca_is_a_clear_error(tmp_path: Path, capsys):
    assert main(["provision", "server", "--dir", str(tmp_path), "--host", "hub.local"]) == 2
    assert "provision ca" in capsys.readouterr().out


def test_password_over_tls_listener_takes_passwords(tmp_path: Path):
    pki = tmp_path / "pki"
    create_ca(pki)
    server = issue_server(pki, ["127.0.0.1"])
    broker = make_broker(tmp_path / "b", (HUB,))
    broker.tls = BrokerTls(ca=pki / "ca.crt", cert=server.cert, key=server.key,
                           port=free_port(), bind="127.0.0.1", client_certs=False)
    broker.start()
    try:
        link = MqttLink(client_id="hub-tls", settings=mqtt_settings(
            broker.tls.port, Account(HUB.username, HUB.password), tls_ca=pki / "ca.crt"),
            persistent=False)
        link.start()
        try:
            assert link.wait_connected(10), link.last_connect_error
        finally:
            link.stop()
    finally:
        broker.stop()
