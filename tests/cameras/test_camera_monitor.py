"""The monitor: one thread per camera, states published through the callback on change
and at an interval, hysteresis on the running loop, hung probes isolated."""

from __future__ import annotations

import logging
import time
from urllib.parse import quote

import pytest
from camera_support import PASSWORD, Recorder, camera_config, sim_factory_fixture, sim_fixture  # noqa: F401 (fixtures)

from thanthien.edge.cameras.monitor import CameraMonitor


def _monitor(rec: Recorder, *configs) -> CameraMonitor:
    return CameraMonitor("node-a", list(configs), rec.publish, on_observation=rec.observe)


@pytest.mark.slow
def test_each_failure_mode_is_published_with_its_reason_and_recovery_too(sim):
    rec = Recorder()
    expected = {
        "down": f"TCP connect to 127.0.0.1:{sim.rtsp_port} refused",
        "wrong_credentials": "RTSP DESCRIBE answered 401 Unauthorized",
        "slow": "slow (limit 300 ms): RTSP",
        "black": "picture is black",
        "frozen": "picture unchanged over the last 2 checks",
    }
    state_of = {"down": "down", "wrong_credentials": "down", "slow": "degraded", "black": "black",
                "frozen": "frozen"}
    with _monitor(rec, camera_config(sim, frozen_checks=2, interval_s=0.05)):
        rec.wait_state("cam-1", "ok")
        for mode, reason in expected.items():
            sim.set_mode(mode)
            health = rec.wait_state("cam-1", state_of[mode])
            assert health.reason.startswith(reason), (mode, health.reason)
            sim.set_mode("ok")
            rec.wait_for(lambda: rec.states("cam-1")[-1] == "ok")
            rec.published.clear()


def test_published_health_carries_node_camera_and_measurements(sim):
    rec = Recorder()
    with _monitor(rec, camera_config(sim)) as monitor:
        health = rec.wait_state("cam-1", "ok")
        assert (health.node, health.camera) == ("node-a", "cam-1")
        assert health.connect_ms is not None and health.brightness is not None and health.contrast > 0
        assert monitor.latest("cam-1") is not None


def test_a_single_failed_check_on_the_running_monitor_publishes_nothing_new(sim):
    rec = Recorder()
    with _monitor(rec, camera_config(sim, hold_checks=3, publish_interval_s=3600)):
        rec.wait_state("cam-1", "ok")
        sim.set_mode("down")
        assert rec.wait_for(lambda: any(o.state == "down" for o in rec.seen("cam-1")))
        sim.set_mode("ok")
        n = len(rec.seen("cam-1"))
        assert rec.wait_observations("cam-1", n + 3)
    assert "down" in {o.state for o in rec.seen("cam-1")}
    assert rec.states("cam-1") == ["ok"]


def test_a_hanging_camera_does_not_delay_the_others(sim_factory):
    hung, good = sim_factory(), sim_factory()
    hung.set_mode("hang")
    rec = Recorder()
    configs = [camera_config(hung, id="cam-hung", rtsp_timeout_s=1.5, hold_checks=1),
               camera_config(good, id="cam-good", hold_checks=1)]
    started = time.monotonic()
    with _monitor(rec, *configs):
        assert rec.wait_observations("cam-good", 3, timeout=5)
        assert rec.seen("cam-hung") == []  # still inside its first probe
        health = rec.wait_state("cam-hung", "down", timeout=5)
    assert health.reason == "RTSP OPTIONS: no answer within 1.5 s"
    assert time.monotonic() - started < 4


def test_health_is_published_again_at_the_interval_without_a_change(sim):
    rec = Recorder()
    with _monitor(rec, camera_config(sim, publish_interval_s=0.2)):
        assert rec.wait_for(lambda: len(rec.published) >= 3)
    assert set(rec.states("cam-1")) == {"ok"}
    first, later = rec.published[0], rec.published[-1]
    assert later.since == first.since and later.at > first.at


def test_a_failing_publish_callback_does_not_stop_the_checks(sim):
    rec = Recorder()

    def broken(_health):
        raise RuntimeError("link gone")

    with CameraMonitor("node-a", [camera_config(sim, publish_interval_s=0.05)], broken, rec.observe):
        assert rec.wait_observations("cam-1", 3)


def test_close_returns_at_once_between_checks(sim):
    rec = Recorder()
    monitor = _monitor(rec, camera_config(sim, interval_s=30))
    monitor.start()
    assert rec.wait_observations("cam-1", 1)
    started = time.monotonic()
    monitor.close()
    monitor.close()
    assert time.monotonic() - started < 0.5


def test_credentials_never_appear_in_logs_or_published_health(sim, caplog):
    caplog.set_level(logging.DEBUG)
    rec = Recorder()
    with _monitor(rec, camera_config(sim, hold_checks=1)):
        rec.wait_state("cam-1", "ok")
        for mode in ("wrong_credentials", "down", "ok"):
            sim.set_mode(mode)
            rec.wait_for(lambda m=mode: rec.states("cam-1")[-1] == ("ok" if m == "ok" else "down"))
    text = caplog.text + "".join(h.model_dump_json() for h in rec.published)
    assert len(rec.published) >= 3
    for secret in (PASSWORD, quote(PASSWORD, safe="")):
        assert secret not in text
