"""The ``[[cameras]]`` tables of the edge config: clear errors, credentials kept apart."""

from __future__ import annotations

import pytest

from thanthien.config import ConfigError, validate_data
from thanthien.edge.cameras.auth import Credentials
from thanthien.edge.settings import EdgeSettings

RTSP = "rtsp://10.0.0.64:554/Streaming/Channels/101"
SNAP = "http://10.0.0.64/ISAPI/Streaming/channels/101/picture"


def _edge(*cameras: dict) -> EdgeSettings:
    return validate_data(EdgeSettings, {"node": {"id": "mo-quay"}, "cameras": list(cameras)})


def _problems(*cameras: dict) -> list[str]:
    with pytest.raises(ConfigError) as err:
        _edge(*cameras)
    return err.value.problems


def test_a_camera_needs_only_an_id_and_an_rtsp_url():
    [cam] = _edge({"id": "cam-1", "rtsp_url": RTSP}).cameras
    assert (cam.interval_s, cam.hold_checks, cam.frozen_checks, cam.snapshot_endpoint()) == (60, 2, 3, None)


def test_an_edge_config_without_cameras_has_none():
    assert _edge().cameras == []


def test_bad_urls_are_reported_without_echoing_them():
    problems = _problems({"id": "cam-1", "rtsp_url": "http://admin:topsecret@10.0.0.1/x",
                          "snapshot_url": "ftp://admin:topsecret@10.0.0.1/x"})
    assert len(problems) == 1
    assert "rtsp_url: scheme must be one of rtsp (got 'http')" in problems[0]
    assert "snapshot_url: scheme must be one of http (got 'ftp')" in problems[0]
    assert "topsecret" not in problems[0]


def test_a_password_without_a_username_is_refused():
    assert "password given without username" in _problems({"id": "c", "rtsp_url": RTSP, "password": "x"})[0]


def test_two_cameras_with_one_id_are_refused():
    problems = _problems({"id": "cam-1", "rtsp_url": RTSP}, {"id": "cam-1", "rtsp_url": RTSP})
    assert "camera id 'cam-1' appears more than once" in problems[0]


def test_an_id_that_cannot_be_a_topic_level_is_refused():
    assert _problems({"id": "cam/1", "rtsp_url": RTSP})[0].startswith("cameras[0].id:")


def test_the_explicit_account_wins_over_one_in_the_url():
    [cam] = _edge({"id": "c", "rtsp_url": RTSP.replace("//", "//old:pw@"), "username": "giamsat",
                   "password": "mới"}).cameras
    assert cam.rtsp_endpoint().credentials == Credentials("giamsat", "mới")
    assert cam.rtsp_endpoint().url == RTSP


def test_the_snapshot_uses_the_rtsp_account_when_it_has_none_of_its_own():
    [cam] = _edge({"id": "c", "rtsp_url": RTSP.replace("//", "//admin:pw@"), "snapshot_url": SNAP}).cameras
    assert cam.snapshot_endpoint().credentials == Credentials("admin", "pw")


def test_the_password_does_not_show_in_the_settings_repr():
    settings = _edge({"id": "c", "rtsp_url": RTSP, "username": "u", "password": "topsecret"})
    assert "topsecret" not in repr(settings)


def test_credentials_in_a_url_move_out_of_it():
    [cam] = _edge({"id": "c", "rtsp_url": RTSP.replace("//", "//admin:topsecret@")}).cameras
    assert cam.rtsp_url == RTSP
    assert cam.rtsp_endpoint().credentials == Credentials("admin", "topsecret")
    assert "topsecret" not in repr(cam) and "topsecret" not in cam.model_dump_json()


def test_a_snapshot_url_keeps_its_own_account():
    [cam] = _edge({"id": "c", "rtsp_url": RTSP.replace("//", "//admin:a@"),
                   "snapshot_url": SNAP.replace("//", "//viewer:v@")}).cameras
    assert cam.snapshot_endpoint().credentials == Credentials("viewer", "v")


def test_an_osd_region_must_lie_inside_the_picture():
    problems = _problems({"id": "c", "rtsp_url": RTSP, "osd_region": [0.5, 0, 0.2, 0.1]})
    assert "osd_region: expected left < right and top < bottom, all between 0 and 1" in problems[0]


def test_an_osd_region_is_read_from_a_list_of_four_fractions():
    [cam] = _edge({"id": "c", "rtsp_url": RTSP, "osd_region": [0, 0, 0.4, 0.1]}).cameras
    assert cam.osd_region == (0, 0, 0.4, 0.1)
