"""Commands from the hub over MQTT v5 request/response."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from edge_helpers import (
    BOX_1_PINS,
    LED_1,
    Outcomes,
    T,
    bouncy_press,
    edge_config,
    edge_settings,
    recording_factory,
    to_toml,
)

from support import HUB, Collector, connected_link
from thanthien.config import load_config
from thanthien.edge.agent import EdgeAgent
from thanthien.edge.devices.rating_box import RatingBoxes
from thanthien.edge.settings import EdgeSettings
from thanthien.mqtt import request_properties
from thanthien.protocol.payloads import Command, CommandResult, HubState, decode, utc_now

RESPONSE = T.command_result("node-a")


@pytest.fixture
def node(tmp_path, broker):
    """A running agent started from a config file, and the file's path."""
    path = tmp_path / "edge.toml"
    path.write_text(to_toml(edge_config(tmp_path / "node", broker.port, response_interval_s=0)),
                    encoding="utf-8")
    agent = EdgeAgent(load_config(EdgeSettings, path), config_path=path, pin_factory=recording_factory())
    agent.start()
    assert agent.link is not None and agent.link.wait_connected(10) and agent.link.subscribed.wait(10)
    yield agent, path
    agent.stop()


@pytest.fixture
def hub(broker):
    replies = Collector()
    link = connected_link(broker.port, HUB, "test-commander", {RESPONSE: replies})

    def send(name: str, payload: bytes) -> tuple[CommandResult, bytes]:
        correlation = uuid.uuid4().bytes
        link.publish_confirmed(T.command("node-a", name), payload,
                               properties=request_properties(RESPONSE, correlation))
        assert replies.wait_for(lambda ms: any(_corr(m) == correlation for m in ms))
        message = next(m for m in replies.messages if _corr(m) == correlation)
        return decode(CommandResult, message.payload), correlation

    yield send
    link.stop()


def _corr(message) -> bytes | None:
    return getattr(message.properties, "CorrelationData", None)


def command(**args) -> bytes:
    return Command(args=args, issued_at=utc_now()).to_bytes()


def test_ping_is_answered_with_the_same_correlation_data(node, hub):
    agent, _path = node
    result, _corr_data = hub("ping", command())
    assert result.ok and result.name == "ping"
    assert result.result["session"] == agent.session
    assert result.result["outbox_depth"] == 0


def test_unknown_command_gets_an_error_result(node, hub):
    result, _ = hub("self-destruct", command())
    assert not result.ok and "unknown command 'self-destruct'" in (result.error or "")


def test_malformed_command_payload_gets_an_error_result(node, hub):
    result, _ = hub("ping", b"{not json")
    assert not result.ok and "invalid Command" in (result.error or "")


def test_expired_command_is_refused(node, hub):
    stale = Command(issued_at=utc_now() - timedelta(minutes=2),
                    expires_at=utc_now() - timedelta(minutes=1)).to_bytes()
    result, _ = hub("ping", stale)
    assert not result.ok and "expired" in (result.error or "")


def test_identify_blinks_the_box_led(node, hub):
    agent, _path = node
    result, _ = hub("identify", command(seconds=2, box="box-1"))
    assert result.ok and result.result["identifying"] == "box-1"
    assert agent.pin_factory.pin(LED_1).wait_changes(3)


def test_identify_with_bad_arguments_is_an_error(node, hub):
    result, _ = hub("identify", command(seconds="long"))
    assert not result.ok and "'seconds' must be a number" in (result.error or "")
    result, _ = hub("identify", command(box="box-9"))
    assert not result.ok and "box-9" in (result.error or "")


def test_reload_config_applies_a_new_box_counter(node, hub):
    agent, path = node
    data = edge_config(agent.data_dir, agent.settings.mqtt.port, response_interval_s=0)
    data["rating_boxes"][0]["counter"] = "quay-7"
    path.write_text(to_toml(data), encoding="utf-8")
    result, _ = hub("reload-config", command())
    assert result.ok and result.result["restart_required"] is False
    outcomes = Outcomes()
    agent.device(RatingBoxes).add_listener(outcomes)
    bouncy_press(agent.pin_factory.pin(BOX_1_PINS[4]), lambda: outcomes.wait_count(1))
    assert outcomes.items[0].counter == "quay-7"


def test_reload_of_a_bad_config_lists_the_problems_and_keeps_the_old_one(node, hub):
    agent, path = node
    data = edge_config(agent.data_dir, agent.settings.mqtt.port, response_interval_s=0)
    data["rating_boxes"][0]["response_interval_s"] = -1
    data["telemetry"]["interval_s"] = 0
    path.write_text(to_toml(data), encoding="utf-8")
    result, _ = hub("reload-config", command())
    assert not result.ok
    assert "rating_boxes[0].response_interval_s" in (result.error or "")
    assert "telemetry.interval_s" in (result.error or "")
    outcomes = Outcomes()
    agent.device(RatingBoxes).add_listener(outcomes)
    bouncy_press(agent.pin_factory.pin(BOX_1_PINS[4]), lambda: outcomes.wait_count(1))
    assert outcomes.items[0].counter == "quay-1"


def test_reload_reports_changes_that_need_a_restart_without_applying_them(node, hub):
    agent, path = node
    data = edge_config(agent.data_dir, agent.settings.mqtt.port, response_interval_s=0)
    data["mqtt"]["keepalive_s"] = 60
    path.write_text(to_toml(data), encoding="utf-8")
    result, _ = hub("reload-config", command())
    assert result.ok and result.result["restart_required"] is True
    assert result.result["not_applied"] == "mqtt"
    assert agent.settings.mqtt.keepalive_s == 5  # still the running connection's value


def test_reload_without_a_config_file_applies_the_settings_in_force_again(tmp_path):
    with EdgeAgent(edge_settings(tmp_path / "node", 9)) as agent:
        result = agent.commands.execute("reload-config", command())
    assert result.ok, result.error
    assert result.result["config_version"] == 0 and result.result["restart_required"] is False


def test_ping_reports_the_hub_state_the_node_has_seen(node, broker, hub):
    link = connected_link(broker.port, HUB, "test-hub-presence")
    try:
        state = HubState(state="online", at=utc_now(), version="test")
        link.publish_confirmed(T.hub_state(), state.to_bytes(), retain=True)
        result, _ = hub("ping", command())  # sent after the state, on the same broker
        assert result.result["hub_state"] == "online"
    finally:
        link.publish_confirmed(T.hub_state(), b"", retain=True)  # clear the retained state
        link.stop()
