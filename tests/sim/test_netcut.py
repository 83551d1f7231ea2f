"""The fault proxy cuts a node off a real broker in the two ways field links fail."""

from __future__ import annotations

import threading

import pytest

from support import HUB, NODE_A, Collector, connected_link, mqtt_settings
from thanthien.mqtt import MqttLink, Will
from thanthien.protocol import Topics
from thanthien.sim.netcut import NetCut

T = Topics()


@pytest.fixture
def proxy(broker):
    with NetCut(broker.port) as cut:
        yield cut


def _node_link(port: int, keepalive: int = 30, will: Will | None = None,
               on_disconnected=None) -> MqttLink:
    settings = mqtt_settings(port, NODE_A, keepalive_s=keepalive)
    link = MqttLink(client_id="node-a-netcut", settings=settings, will=will, persistent=False,
                    on_disconnected=on_disconnected)
    link.start()
    assert link.wait_connected(10), link.last_connect_error
    return link


def test_pass_mode_forwards_both_ways(broker, proxy):
    inbox = Collector()
    hub = connected_link(broker.port, HUB, "hub-netcut-pass", {T.telemetry("node-a"): inbox})
    node = _node_link(proxy.port)
    try:
        node.publish_confirmed(T.telemetry("node-a"), b"through the proxy")
        assert inbox.wait_count(1)
    finally:
        node.stop()
        hub.stop()


def test_reset_disconnects_and_pass_lets_the_node_back(broker, proxy):
    dropped = threading.Event()
    node = _node_link(proxy.port, on_disconnected=lambda _link: dropped.set())
    try:
        proxy.set_mode("reset")
        assert dropped.wait(10)
        assert not node.wait_connected(0.5)
        proxy.set_mode("pass")
        assert node.wait_connected(10)
    finally:
        node.stop()


@pytest.mark.slow
def test_blackhole_makes_the_broker_fire_the_will(broker, proxy):
    states = Collector()
    hub = connected_link(broker.port, HUB, "hub-netcut-will", {T.node_state("node-a"): states})
    node = _node_link(proxy.port, keepalive=5,
                      will=Will(T.node_state("node-a"), b"lost", retain=False))
    try:
        proxy.set_mode("blackhole")
        assert states.wait_for(lambda ms: any(m.payload == b"lost" for m in ms), timeout=15)
    finally:
        proxy.set_mode("pass")
        node.stop()
        hub.stop()
