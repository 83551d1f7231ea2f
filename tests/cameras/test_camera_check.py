"""One check per simulator mode gives the right observed state and reason through the real
probes (TCP, RTSP, HTTP snapshot, ffmpeg decode)."""

from __future__ import annotations

import pytest
from camera_support import camera_config, sim_factory_fixture, sim_fixture  # noqa: F401 (fixtures)

from thanthien.edge.cameras.check import CameraChecker


def _check(sim, mode, **overrides):
    sim.set_mode(mode)
    return CameraChecker(camera_config(sim, **overrides)).check()


def test_a_working_camera_is_ok_with_its_measurements(sim):
    obs = _check(sim, "ok")
    assert obs.state == "ok"
    assert obs.reason == "RTSP answers, JPEG video offered, picture changing"
    assert obs.connect_ms is not None and 20 < obs.brightness < 235 and obs.contrast > 20


def test_a_camera_with_closed_ports_is_down(sim):
    obs = _check(sim, "down")
    assert obs.state == "down"
    assert obs.reason == f"TCP connect to 127.0.0.1:{sim.rtsp_port} refused"


def test_a_changed_camera_password_is_down_with_the_401_reason(sim):
    obs = _check(sim, "wrong_credentials")
    assert (obs.state, obs.reason) == ("down", "RTSP DESCRIBE answered 401 Unauthorized")


def test_a_stream_without_video_is_down(sim):
    obs = _check(sim, "no_video")
    assert (obs.state, obs.reason) == ("down", "RTSP DESCRIBE: the SDP offers no video stream")


def test_a_slow_camera_is_degraded(sim):
    obs = _check(sim, "slow")
    assert obs.state == "degraded"
    assert obs.reason.startswith("slow (limit 300 ms): RTSP ")
    assert "snapshot took" in obs.reason


def test_a_failing_snapshot_makes_the_camera_degraded(sim):
    obs = _check(sim, "snapshot_error")
    assert (obs.state, obs.reason) == ("degraded", "snapshot: HTTP GET answered 500 Internal Server Error")


def test_a_black_picture_is_black(sim):
    obs = _check(sim, "black")
    assert obs.state == "black"
    assert obs.reason.startswith("picture is black (brightest part ")
    assert obs.peak < 16


def test_a_uniform_picture_is_reported_as_blank(sim):
    obs = _check(sim, "blank")
    assert obs.state == "black"
    assert obs.reason.startswith("picture is blank (contrast ")


def test_a_camera_that_never_answers_is_down_once_the_timeout_passes(sim):
    obs = _check(sim, "hang", rtsp_timeout_s=0.3)
    assert (obs.state, obs.reason) == ("down", "RTSP OPTIONS: no answer within 0.3 s")


def test_frozen_needs_the_configured_number_of_unchanged_pictures(sim):
    sim.set_mode("frozen")
    checker = CameraChecker(camera_config(sim, frozen_checks=3))
    states = [checker.check().state for _ in range(4)]
    assert states == ["ok", "ok", "frozen", "frozen"]


def test_frozen_is_found_although_the_camera_re_encodes_each_snapshot(sim):
    sim.set_mode("frozen")
    checker = CameraChecker(camera_config(sim, frozen_checks=2))
    checker.check()
    obs = checker.check()
    assert obs.state == "frozen"
    assert obs.reason.startswith("picture unchanged over the last 2 checks (at most 0.0000 % of it changed")


def test_frozen_bytes_differ_between_two_snapshots(sim):
    from thanthien.edge.cameras.snapshot import fetch_snapshot

    sim.set_mode("frozen")
    endpoint = camera_config(sim).snapshot_endpoint()
    first, second = (fetch_snapshot(endpoint, 1.0, 2.0).jpeg for _ in range(2))
    assert first != second


def test_a_moving_picture_is_never_frozen(sim):
    checker = CameraChecker(camera_config(sim, frozen_checks=2))
    assert {checker.check().state for _ in range(4)} == {"ok"}


def test_a_failed_picture_restarts_the_frozen_count(sim):
    sim.set_mode("frozen")
    checker = CameraChecker(camera_config(sim, frozen_checks=2))
    checker.check()
    sim.set_mode("snapshot_error")
    assert checker.check().state == "degraded"
    sim.set_mode("frozen")
    assert checker.check().state == "ok"


@pytest.mark.parametrize("mode", ["ok", "down", "black"])
def test_without_a_snapshot_url_the_probe_grabs_a_frame_over_rtsp(sim, mode):
    obs = _check(sim, mode, snapshot=False)
    assert obs.state == mode
