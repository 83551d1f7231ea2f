"""Camera states that match the picture, against a real RTSP server the project did not write
(GStreamer's gst-rtsp-server: videotestsrc scenes, clockoverlay, H.264 by x264, grabbed by
ffmpeg) and against the project's simulator: an office at night (a still scene with the
camera's clock running, a dark scene with a small thing moving) is live; identical frames are
frozen; black or uniform frames are black."""

from __future__ import annotations

from typing import Any

import pytest
from camera_support import Recorder, camera_config, sim_factory_fixture, sim_fixture  # noqa: F401 (fixtures)
from gst_camera import GstServer, gst_fixture  # noqa: F401 (fixture)

from thanthien.edge.cameras.check import CameraChecker, Observation
from thanthien.edge.cameras.config import CameraSection
from thanthien.edge.cameras.monitor import CameraMonitor
from thanthien.sim.cameras.pictures import OSD_REGION

CLOCK_REGION = (0.0, 0.0, 0.5, 0.2)
"""Where clockoverlay draws the date and time in the GStreamer scenes (top left)."""


def gst_config(gst: GstServer, scene: str, **overrides: Any) -> CameraSection:
    values: dict[str, Any] = {"id": scene, "rtsp_url": gst.url(scene), "interval_s": 0.1,
                              "connect_timeout_s": 2.0, "rtsp_timeout_s": 5.0, "frame_timeout_s": 10.0,
                              "slow_ms": 5000, "frozen_checks": 2, "hold_checks": 1}
    values.update(overrides)
    return CameraSection(**values)


def checks(config: CameraSection, n: int) -> list[Observation]:
    checker = CameraChecker(config)
    return [checker.check() for _ in range(n)]


def checks_seconds_apart(config: CameraSection, n: int) -> list[Observation]:
    """``n`` checks by the monitor, ``interval_s`` apart: the clock on the picture shows
    seconds, so two pictures must be more than a second apart for it to have moved."""
    rec = Recorder()
    with CameraMonitor("node-a", [config], rec.publish, on_observation=rec.observe):
        assert rec.wait_observations(config.id, n, timeout=n * config.interval_s + 30)
    return rec.seen(config.id)[:n]


# -- GStreamer's RTSP server -----------------------------------------------------------------
@pytest.mark.parametrize("scene", ["still-clock", "night-clock"])
def test_a_still_scene_with_a_running_clock_is_ok(gst, scene):
    seen = checks_seconds_apart(gst_config(gst, scene, interval_s=1.5), 3)
    assert [o.state for o in seen] == ["ok"] * 3, [o.reason for o in seen]
    assert all(0.005 < o.changed_pct < 1 for o in seen[1:])  # the clock: a few hundredths of a percent


def test_a_dark_scene_with_a_small_moving_object_is_ok(gst):
    seen = checks(gst_config(gst, "dark-moving"), 3)
    assert [o.state for o in seen] == ["ok"] * 3, [o.reason for o in seen]
    assert seen[-1].brightness < 16 < seen[-1].peak  # dark on average, its brightest part lit


def test_a_dim_still_scene_is_frozen_not_black(gst):
    first, second = checks(gst_config(gst, "night"), 2)
    assert first.brightness < 16 < first.peak
    assert (first.state, second.state) == ("ok", "frozen")


@pytest.mark.parametrize("scene", ["still", "night"])
def test_identical_frames_are_frozen(gst, scene):
    seen = checks(gst_config(gst, scene, frozen_checks=3), 3)
    assert [o.state for o in seen] == ["ok", "ok", "frozen"]
    assert seen[-1].changed_pct == 0
    assert seen[-1].reason.startswith("picture unchanged over the last 3 checks (at most 0.0000 %")


def test_black_frames_are_black(gst):
    [obs] = checks(gst_config(gst, "black"), 1)
    assert (obs.state, obs.reason) == ("black", "picture is black (brightest part 0 of 255, limit 16)")


def test_uniform_frames_are_black_as_blank(gst):
    [obs] = checks(gst_config(gst, "grey"), 1)
    assert obs.state == "black"
    assert obs.reason.startswith("picture is blank (contrast 0.")


def test_a_black_picture_with_the_camera_clock_is_black_once_the_osd_region_is_set(gst):
    [obs] = checks(gst_config(gst, "black-clock", osd_region=CLOCK_REGION), 1)
    assert obs.state == "black"


def test_without_an_osd_region_a_black_picture_with_the_clock_reads_as_a_dark_live_one(gst):
    [obs] = checks(gst_config(gst, "black-clock"), 1)
    assert obs.state == "ok" and obs.peak > 100


def test_a_still_scene_with_the_clock_is_not_black_with_the_osd_region_set(gst):
    [obs] = checks(gst_config(gst, "night-clock", osd_region=CLOCK_REGION), 1)
    assert obs.state == "ok"


# -- the project's simulator -----------------------------------------------------------------
def _sim_checks(sim, mode: str, n: int, **overrides: Any) -> list[Observation]:
    sim.set_mode(mode)
    return checks(camera_config(sim, **overrides), n)


@pytest.mark.parametrize("snapshot", [True, False], ids=["snapshot", "rtsp"])
def test_the_simulated_night_office_with_its_clock_is_ok(sim, snapshot):
    seen = _sim_checks(sim, "night", 3, snapshot=snapshot, frozen_checks=2)
    assert [o.state for o in seen] == ["ok"] * 3, [o.reason for o in seen]


def test_the_simulated_dark_room_with_a_moving_torch_is_ok(sim):
    seen = _sim_checks(sim, "dark_moving", 3, frozen_checks=2)
    assert [o.state for o in seen] == ["ok"] * 3, [o.reason for o in seen]
    assert seen[-1].brightness < 16


def test_the_simulated_covered_lens_with_its_clock_is_black_with_the_osd_region(sim):
    [obs] = _sim_checks(sim, "black_osd", 1, osd_region=OSD_REGION)
    assert obs.state == "black"
    assert obs.reason.startswith("picture is black (brightest part ")
