"""Cameras configured on an edge agent are monitored by it and their health reaches the
broker retained on the camera's topic, published with the node's own account (ACL)."""

from __future__ import annotations

import time

import pytest
from camera_support import PASSWORD, USER, sim_factory_fixture, sim_fixture  # noqa: F401 (fixtures)

from support import HUB, NODE_A, Collector, connected_link
from thanthien.config import validate_data
from thanthien.edge.agent import EdgeAgent
from thanthien.edge.settings import EdgeSettings
from thanthien.protocol import Topics
from thanthien.protocol.payloads import CameraHealth, HubState, NodeState, decode, utc_now

T = Topics()


def _settings(tmp_path, port, sim) -> EdgeSettings:
    return validate_data(EdgeSettings, {
        "node": {"id": NODE_A.username, "hardware": "mock", "data_dir": str(tmp_path / "node")},
        "mqtt": {"host": "127.0.0.1", "port": port, "password": NODE_A.password,
                 "reconnect_min_s": 0.1, "reconnect_max_s": 0.5},
        "audio": {"output": "null"},
        "cameras": [{"id": "cam-quay-1", "rtsp_url": sim.rtsp_url, "snapshot_url": sim.snapshot_url,
                     "username": USER, "password": PASSWORD, "interval_s": 0.1, "slow_ms": 300,
                     "hold_checks": 2, "publish_interval_s": 60}],
    })


def _health(collector: Collector) -> list[CameraHealth]:
    return [decode(CameraHealth, m.payload) for m in collector.messages
            if m.topic == T.camera_health(NODE_A.username, "cam-quay-1")]


@pytest.fixture
def agent(tmp_path, broker, sim):
    with EdgeAgent(_settings(tmp_path, broker.port, sim)) as running:
        yield running


def test_agent_publishes_camera_health_retained_on_the_camera_topic(agent, broker, sim):
    watcher = Collector()
    link = connected_link(broker.port, HUB, "hub-camera-watch", {T.wildcard("camera_health"): watcher})
    try:
        assert watcher.wait_for(lambda _m: any(h.state == "ok" for h in _health(watcher)))
        sim.set_mode("black")
        assert watcher.wait_for(lambda _m: any(h.state == "black" for h in _health(watcher)))
        black = next(h for h in _health(watcher) if h.state == "black")
        assert black.node == NODE_A.username and black.reason.startswith("picture is black")
    finally:
        link.stop()
    late = Collector()
    link = connected_link(broker.port, HUB, "hub-camera-late", {T.wildcard("camera_health"): late})
    try:
        assert late.wait_count(1)
        assert late.messages[0].retain
        assert decode(CameraHealth, late.messages[0].payload).state == "black"
    finally:
        link.stop()


def test_agent_sends_its_camera_health_again_when_the_hub_presence_arrives(agent, broker):
    watcher = Collector()
    link = connected_link(broker.port, HUB, "hub-camera-again", {T.wildcard("camera_health"): watcher})
    try:
        def fresh() -> list[CameraHealth]:  # what this agent sent (not a retained one of an earlier test)
            return [decode(CameraHealth, m.payload) for m in watcher.messages if not m.retain
                    and m.topic == T.camera_health(NODE_A.username, "cam-quay-1")]

        assert watcher.wait_for(lambda _m: any(h.state == "ok" for h in fresh()))
        first = fresh()
        # not retained: the broker is shared with other tests
        link.publish_confirmed(T.hub_state(), HubState(state="online", at=utc_now(), version="t").to_bytes())
        assert watcher.wait_for(lambda _m: len(fresh()) > len(first))  # publish_interval_s is 60
        again = fresh()[-1]
        assert (again.state, again.since) == ("ok", first[-1].since)
    finally:
        link.stop()


def test_agent_lists_the_camera_capability_in_its_state(agent, broker):
    watcher = Collector()
    link = connected_link(broker.port, HUB, "hub-state-watch", {T.node_state(NODE_A.username): watcher})
    try:
        assert watcher.wait_for(
            lambda msgs: any(decode(NodeState, m.payload).state == "online" for m in msgs))
        online = next(decode(NodeState, m.payload) for m in watcher.messages
                      if decode(NodeState, m.payload).state == "online")
        assert "camera" in online.capabilities
    finally:
        link.stop()


def test_hanging_camera_probes_do_not_delay_a_rating_press(tmp_path, broker, sim_factory):
    cams = [sim_factory(), sim_factory()]
    data = _settings(tmp_path, broker.port, cams[0]).model_dump(mode="python")
    data["mqtt"]["password"] = NODE_A.password
    data["cameras"] = [
        {**data["cameras"][0], "id": f"cam-{i}", "rtsp_url": cam.rtsp_url, "snapshot_url": cam.snapshot_url,
         "password": PASSWORD, "rtsp_timeout_s": 30}
        for i, cam in enumerate(cams)]
    data["rating_boxes"] = [{"id": "box-1", "counter": "quay-1", "bounce_ms": 15}]
    for cam in cams:
        cam.set_mode("hang")
    with EdgeAgent(validate_data(EdgeSettings, data)) as agent:
        assert all(cam.behaviour.wait_requests(1, 5) for cam in cams)  # both probes now hang
        pin = agent.pin_factory.pin(5)  # "Rất hài lòng" on the default box
        started = time.monotonic()
        pin.drive_low()
        try:
            assert agent.outbox.wait_depth(lambda n: n >= 1, timeout=2)
        finally:
            pin.drive_high()
        assert time.monotonic() - started < 1.0


def test_a_camera_turning_black_sends_the_picture_it_saw_with_the_change(agent, broker, sim):
    import base64

    from thanthien.protocol.payloads import CameraThumbnail

    pictures = Collector()
    link = connected_link(broker.port, HUB, "hub-camera-pictures", {T.wildcard("camera_thumbnail"): pictures})
    try:
        assert pictures.wait_for(lambda ms: any(decode(CameraThumbnail, m.payload).state == "ok" for m in ms))
        sim.set_mode("black")
        black = pictures.first(lambda m: decode(CameraThumbnail, m.payload).state == "black")
        assert black is not None and not black.retain
        thumb = decode(CameraThumbnail, black.payload)
        jpeg = base64.b64decode(thumb.jpeg_b64)
        assert thumb.camera == "cam-quay-1" and jpeg.startswith(b"\xff\xd8") and len(jpeg) < 16 * 1024
    finally:
        link.stop()
