"""The project's broker config: authentication and the per-node ACL, on a real Mosquitto."""

from __future__ import annotations

import threading

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from support import HUB, NODE_A, NODE_B, Account, Collector, connected_link, mqtt_settings
from thanthien.mqtt import MqttLink, PublishError
from thanthien.protocol import Topics

T = Topics()
NOT_AUTHORIZED = 135


@pytest.fixture
def hub_inbox(broker):
    collector = Collector()
    link = connected_link(broker.port, HUB, "test-hub-inbox", {f"{T.root}/#": collector})
    yield collector
    link.stop()


def test_node_can_publish_under_its_own_subtree(broker, hub_inbox):
    node = connected_link(broker.port, NODE_A, "node-a")
    try:
        node.publish_confirmed(T.telemetry("node-a"), b"{}", qos=1)
        assert hub_inbox.wait_for(lambda ms: any(m.topic == T.telemetry("node-a") for m in ms))
    finally:
        node.stop()


def test_node_publishing_as_another_node_is_refused_and_nothing_arrives(broker, hub_inbox):
    node = connected_link(broker.port, NODE_A, "node-a-spoof")
    try:
        with pytest.raises(PublishError, match=str(NOT_AUTHORIZED)):
            node.publish_confirmed(T.rating("node-b"), b'{"spoofed": true}', qos=1)
        # A later own message proves the broker is processing; the spoofed one is not before it.
        node.publish_confirmed(T.telemetry("node-a"), b"marker", qos=1)
        assert hub_inbox.wait_for(lambda ms: any(m.payload == b"marker" for m in ms))
        assert not [m for m in hub_inbox.messages if m.topic == T.rating("node-b")]
    finally:
        node.stop()


def test_node_cannot_write_hub_topics(broker):
    node = connected_link(broker.port, NODE_A, "node-a-acker")
    try:
        with pytest.raises(PublishError, match=str(NOT_AUTHORIZED)):
            node.publish_confirmed(T.ack("node-a"), b"{}", qos=1)
    finally:
        node.stop()


def test_node_cannot_read_another_nodes_commands(broker):
    # Mosquitto 2.0 grants the subscription but checks "read" on delivery.
    snooped = Collector()
    node = connected_link(broker.port, NODE_B, "node-b-snoop",
                          {T.command("node-a", "+"): snooped, T.command("node-b", "+"): snooped})
    hub = connected_link(broker.port, HUB, "test-hub-commander")
    try:
        hub.publish_confirmed(T.command("node-a", "ping"), b"secret", qos=1)
        hub.publish_confirmed(T.command("node-b", "ping"), b"marker", qos=1)
        assert snooped.wait_for(lambda ms: any(m.payload == b"marker" for m in ms))
        assert [m.payload for m in snooped.messages] == [b"marker"]
    finally:
        hub.stop()
        node.stop()


def test_node_receives_what_the_hub_sends_it(broker):
    collector = Collector()
    node = connected_link(broker.port, NODE_B, "node-b", {T.ack("node-b"): collector})
    hub = connected_link(broker.port, HUB, "test-hub-sender")
    try:
        hub.publish_confirmed(T.ack("node-b"), b"ack", qos=1)
        assert collector.wait_count(1)
        assert collector.messages[0].payload == b"ack"
    finally:
        hub.stop()
        node.stop()


def _connect_result(port: int, account: Account | None) -> str:
    """Connect once without retrying and return the CONNACK reason."""
    done = threading.Event()
    result: list[str] = []
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="probe", protocol=paho.MQTTv5)
    if account is not None:
        client.username_pw_set(account.username, account.password)

    def on_connect(_c, _u, _f, reason, _p):
        result.append(str(reason))
        done.set()

    client.on_connect = on_connect
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        assert done.wait(10), "no CONNACK"
        return result[0]
    finally:
        client.disconnect()
        client.loop_stop()


def test_anonymous_client_is_refused(broker):
    assert _connect_result(broker.port, None) == "Not authorized"


def test_wrong_password_is_refused(broker):
    assert _connect_result(broker.port, Account("node-a", "wrong")) in (
        "Bad user name or password", "Not authorized")


def test_link_without_credentials_never_connects(broker):
    link = MqttLink(client_id="anon", settings=mqtt_settings(broker.port, None), persistent=False)
    link.start()
    try:
        assert not link.wait_connected(1.0)
        assert link.last_connect_error == "Not authorized"
    finally:
        link.stop()
