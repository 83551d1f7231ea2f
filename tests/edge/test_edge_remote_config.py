"""The node's configuration held by the hub: received retained and versioned, validated with
the models of the local file, applied live, kept across restarts, its version reported (or why
it was refused); the restart command."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from edge_helpers import LED_1, T, edge_settings

from support import HUB, Collector, connected_link
from thanthien.edge.agent import EdgeAgent
from thanthien.edge.devices.rating_box import RatingBoxes
from thanthien.edge.devices.speaker import SpeakerDevice
from thanthien.edge.remote_config import CONFIG_FILE
from thanthien.mqtt import MqttLink, request_properties
from thanthien.protocol.payloads import Command, CommandResult, ConfigStatus, NodeConfig, decode, utc_now

pytestmark = pytest.mark.timeout(60)
NODE = "node-a"
ONE_BOX = {"rating_boxes": [{"id": "hop-moi", "counter": "quay-9", "led_pin": LED_1, "bounce_ms": 5}],
           "cameras": [], "speakers": None}


class HubSide:
    """The hub's part: publishes the node's retained config and hears its status."""

    def __init__(self, port: int) -> None:
        self.statuses = Collector()
        self.link: MqttLink = connected_link(port, HUB, "test-config-hub",
                                             {T.config_status(NODE): self.statuses})

    def publish(self, version: int, settings: dict[str, Any], node: str = NODE) -> None:
        config = NodeConfig(node=node, version=version, issued_at=utc_now(), settings=settings)
        self.link.publish_confirmed(T.node_config(NODE), config.to_bytes(), retain=True)

    def status(self, match: Any) -> ConfigStatus:
        found = self.statuses.first(lambda m: bool(m.payload) and match(decode(ConfigStatus, m.payload)))
        seen = [decode(ConfigStatus, m.payload) for m in self.statuses.snapshot() if m.payload]
        assert found is not None, seen
        return decode(ConfigStatus, found.payload)

    def close(self) -> None:
        for topic in (T.node_config(NODE), T.config_status(NODE)):
            self.link.publish_confirmed(topic, b"", retain=True)  # nothing retained for the next test
        self.link.stop()


@pytest.fixture
def hub(broker) -> Iterator[HubSide]:
    side = HubSide(broker.port)
    yield side
    side.close()


def _agent(tmp_path, broker, **kwargs: Any) -> EdgeAgent:
    agent = EdgeAgent(edge_settings(tmp_path / "node", broker.port), **kwargs)
    agent.start()
    assert agent.link is not None and agent.link.wait_connected(10)
    return agent


def test_node_reports_version_zero_while_it_runs_its_local_file(tmp_path, broker, hub):
    agent = _agent(tmp_path, broker)
    try:
        status = hub.status(lambda s: s.session == agent.session)
        assert status.version == 0 and status.error is None
    finally:
        agent.stop()


def test_config_from_the_hub_replaces_the_local_devices_and_its_version_is_reported(tmp_path, broker, hub):
    agent = _agent(tmp_path, broker)
    try:
        hub.publish(3, {**ONE_BOX, "telemetry": {"interval_s": 12}})
        assert hub.status(lambda s: s.version == 3).refused_version is None
        assert [b.id for b in agent.device(RatingBoxes).configs] == ["hop-moi"]
        assert agent.settings.telemetry.interval_s == 12
        assert agent.settings.mqtt == agent.local_settings.mqtt  # the bootstrap stays the file's
    finally:
        agent.stop()


def test_config_that_does_not_validate_is_refused_with_the_reason_and_the_old_stays(tmp_path, broker, hub):
    agent = _agent(tmp_path, broker)
    try:
        hub.publish(1, ONE_BOX)
        hub.status(lambda s: s.version == 1)
        bad = {"rating_boxes": [{"id": "hop-a", "counter": "quay-1", "led_pin": 5},  # 5 is a button too
                                {"id": "hop-b", "counter": "quay-2", "led_pin": 99}]}
        hub.publish(2, bad)
        refused = hub.status(lambda s: s.refused_version == 2)
        assert refused.version == 1
        assert "led_pin" in (refused.error or "")
        assert [b.id for b in agent.device(RatingBoxes).configs] == ["hop-moi"]
    finally:
        agent.stop()


def test_config_for_another_node_is_refused(tmp_path, broker, hub):
    agent = _agent(tmp_path, broker)
    try:
        hub.publish(5, ONE_BOX, node="node-b")
        refused = hub.status(lambda s: s.refused_version == 5)
        assert "node-b" in (refused.error or "") and refused.version == 0
    finally:
        agent.stop()


def test_last_good_config_is_kept_across_a_restart_without_the_broker(tmp_path, broker, hub):
    agent = _agent(tmp_path, broker)
    try:
        hub.publish(4, ONE_BOX)
        hub.status(lambda s: s.version == 4)
    finally:
        agent.stop()
    saved = tmp_path / "node" / CONFIG_FILE
    assert saved.stat().st_mode & 0o777 == 0o600
    offline = edge_settings(tmp_path / "node", 9)  # nothing listens on port 9
    with EdgeAgent(offline) as again:
        assert [b.id for b in again.device(RatingBoxes).configs] == ["hop-moi"]
        assert again.remote is not None and again.remote.version == 4


def test_a_new_volume_is_taken_by_the_running_speaker_without_rebuilding_it(tmp_path, broker, hub):
    speaker = {"rating_boxes": [], "cameras": [],
               "speakers": {"hub_url": "http://127.0.0.1:9/api/v1/", "volume": 80, "warmup_s": 0.1}}
    agent = _agent(tmp_path, broker)
    try:
        hub.publish(1, speaker)
        hub.status(lambda s: s.version == 1)
        device = agent.device(SpeakerDevice)
        hub.publish(2, {**speaker, "speakers": {**speaker["speakers"], "volume": 35, "warmup_s": 0.4}})
        hub.status(lambda s: s.version == 2)
        assert agent.device(SpeakerDevice) is device
        assert device.player is not None
        assert (device.player.settings.volume, device.player.settings.warmup_s) == (35, 0.4)
    finally:
        agent.stop()


def test_restart_command_answers_then_restarts_the_agent(tmp_path, broker, hub):
    agent = _agent(tmp_path, broker)
    restarted = threading.Event()
    agent.on_restart = restarted.set
    replies = Collector()
    hub.link.route(T.command_result(NODE), replies)
    assert hub.link.subscribed.wait(5) and agent.link is not None and agent.link.subscribed.wait(5)
    try:
        correlation = uuid.uuid4().bytes
        hub.link.publish_confirmed(T.command(NODE, "restart"), Command(issued_at=utc_now()).to_bytes(),
                                   properties=request_properties(T.command_result(NODE), correlation))
        reply = replies.first(lambda m: getattr(m.properties, "CorrelationData", None) == correlation)
        assert reply is not None
        assert decode(CommandResult, reply.payload).result["restarting"] is True
        assert restarted.wait(5) and agent.restart_requested
    finally:
        agent.stop()
