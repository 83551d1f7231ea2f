"""The RTSP and HTTP snapshot probes against simulated cameras on real loopback sockets."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from camera_support import PASSWORD, USER, camera_config, sim_factory_fixture, sim_fixture  # noqa: F401 (fixtures)

from thanthien.edge.cameras.auth import Credentials
from thanthien.edge.cameras.ffmpeg import grab_rtsp_frame
from thanthien.edge.cameras.rtsp import probe_rtsp, video_encoding
from thanthien.edge.cameras.snapshot import fetch_snapshot
from thanthien.edge.cameras.urls import parse_endpoint
from thanthien.edge.cameras.wire import ProbeError


def _rtsp(cam, **overrides):
    cfg = camera_config(cam, **overrides)
    return probe_rtsp(cfg.rtsp_endpoint(), cfg.connect_timeout_s, cfg.rtsp_timeout_s)


def _authorizations(cam, protocol="rtsp"):
    return [r.authorization for r in cam.requests if r.protocol == protocol and r.authorization]


def test_rtsp_probe_answers_a_digest_md5_camera(sim):
    result = _rtsp(sim)
    assert result.video == "JPEG"
    assert result.connect_ms >= 0
    [auth] = _authorizations(sim)
    assert auth.startswith("Digest ") and "algorithm=MD5" in auth and "qop=auth" in auth


def test_rtsp_probe_answers_a_digest_sha256_camera(sim_factory):
    cam = sim_factory(algorithm="SHA-256")
    assert _rtsp(cam).video == "JPEG"
    assert "algorithm=SHA-256" in _authorizations(cam)[0]


def test_rtsp_probe_answers_a_digest_camera_without_qop(sim_factory):
    cam = sim_factory(qop=False)
    assert _rtsp(cam).video == "JPEG"
    assert "qop=" not in _authorizations(cam)[0]


def test_rtsp_probe_answers_a_basic_camera(sim_factory):
    cam = sim_factory(scheme="basic")
    assert _rtsp(cam).video == "JPEG"
    assert _authorizations(cam)[0].startswith("Basic ")


def test_rtsp_probe_reconnects_when_the_camera_hangs_up_after_its_401(sim_factory):
    cam = sim_factory(hang_up_after_401=True)
    assert _rtsp(cam).video == "JPEG"
    assert len(_authorizations(cam)) == 1


def test_rtsp_probe_takes_credentials_from_the_url(sim):
    userinfo = f"{quote(USER, safe='')}:{quote(PASSWORD, safe='')}@"
    url = sim.rtsp_url.replace("rtsp://", "rtsp://" + userinfo)
    assert _rtsp(sim, rtsp_url=url, username=None, password=None).video == "JPEG"


def test_rtsp_probe_reports_refused_credentials_as_401(sim):
    with pytest.raises(ProbeError) as err:
        _rtsp(sim, password="wrong")
    assert err.value.reason == "RTSP DESCRIBE answered 401 Unauthorized"


def test_rtsp_probe_without_credentials_says_none_are_configured(sim):
    with pytest.raises(ProbeError, match=r"401 Unauthorized \(no credentials configured\)"):
        _rtsp(sim, username=None, password=None)


def test_rtsp_probe_requires_a_video_media_line(sim):
    sim.set_mode("no_video")
    with pytest.raises(ProbeError, match="SDP offers no video stream"):
        _rtsp(sim)


def test_rtsp_probe_reports_a_closed_port(sim):
    sim.set_mode("down")
    with pytest.raises(ProbeError, match=r"TCP connect to 127\.0\.0\.1:\d+ refused"):
        _rtsp(sim)


def test_rtsp_probe_is_cut_at_its_timeout_when_the_camera_never_answers(sim):
    sim.set_mode("hang")
    started = time.monotonic()
    with pytest.raises(ProbeError, match=r"RTSP OPTIONS: no answer within 0\.4 s"):
        _rtsp(sim, rtsp_timeout_s=0.4)
    assert 0.35 < time.monotonic() - started < 1.5


def test_rtsp_probe_measures_a_slow_camera(sim):
    sim.set_mode("slow")
    result = _rtsp(sim)
    assert result.slowest_ms >= 450  # the simulator waits 0.5 s before each answer


@pytest.fixture
def dripping_server() -> Iterator[int]:
    """Accepts and sends one byte of an answer every 0.1 s, forever."""
    srv = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        conn, _ = srv.accept()
        with conn:
            conn.recv(4096)
            for byte in b"RTSP/1.0 200 OK\r\nCSeq: 1\r\nX-Pad: " + b"a" * 1000:
                if stop.wait(0.1):
                    return
                conn.sendall(bytes([byte]))

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield srv.getsockname()[1]
    stop.set()
    srv.close()
    t.join(2)


def test_rtsp_probe_deadline_cuts_a_camera_that_drips_bytes(dripping_server):
    endpoint = parse_endpoint(f"rtsp://127.0.0.1:{dripping_server}/x", ("rtsp",))
    started = time.monotonic()
    with pytest.raises(ProbeError, match=r"no answer within 0\.5 s"):
        probe_rtsp(endpoint, 1.0, 0.5)
    assert time.monotonic() - started < 1.0


def test_snapshot_probe_fetches_a_jpeg_with_digest(sim):
    cfg = camera_config(sim)
    snap = fetch_snapshot(cfg.snapshot_endpoint(), 1.0, 2.0)
    assert snap.jpeg[:2] == b"\xff\xd8"
    assert _authorizations(sim, "http")[0].startswith("Digest ")


def test_snapshot_probe_reports_refused_credentials(sim):
    cfg = camera_config(sim, password="wrong")
    with pytest.raises(ProbeError, match=r"^snapshot: HTTP GET answered 401 Unauthorized$"):
        fetch_snapshot(cfg.snapshot_endpoint(), 1.0, 2.0)


def test_snapshot_probe_reports_a_server_error(sim):
    sim.set_mode("snapshot_error")
    cfg = camera_config(sim)
    with pytest.raises(ProbeError, match="snapshot: HTTP GET answered 500"):
        fetch_snapshot(cfg.snapshot_endpoint(), 1.0, 2.0)


def test_snapshot_probe_is_cut_at_its_timeout(sim):
    sim.set_mode("hang")
    cfg = camera_config(sim)
    started = time.monotonic()
    with pytest.raises(ProbeError, match=r"snapshot: HTTP GET: no answer within 0\.3 s"):
        fetch_snapshot(cfg.snapshot_endpoint(), 1.0, 0.3)
    assert time.monotonic() - started < 1.0


def test_sdp_video_encoding_is_read_from_rtpmap():
    sdp = "v=0\r\nm=audio 0 RTP/AVP 0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
    assert video_encoding(sdp) == "H264"
    assert video_encoding("v=0\r\nm=audio 0 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n") is None


def test_credentials_in_a_url_never_reach_the_clean_url():
    ep = parse_endpoint("rtsp://admin:s3cret@10.0.0.5:554/live?x=1", ("rtsp",))
    assert ep.url == "rtsp://10.0.0.5:554/live?x=1"
    assert ep.credentials == Credentials("admin", "s3cret")
    assert "s3cret" not in repr(ep)


def test_frame_grab_reads_one_picture_from_the_rtsp_stream(sim):
    thumb = grab_rtsp_frame(camera_config(sim).rtsp_endpoint(), 5.0)
    assert thumb.levels().contrast > 20


def test_frame_grab_failure_reason_never_carries_the_password(sim):
    endpoint = camera_config(sim, password="sai-" + PASSWORD).rtsp_endpoint()
    with pytest.raises(ProbeError) as err:
        grab_rtsp_frame(endpoint, 5.0)
    assert err.value.reason.startswith("RTSP frame grab: ffmpeg failed")
    assert "401" in err.value.reason
    assert PASSWORD not in err.value.reason and quote(PASSWORD, safe="") not in err.value.reason


def test_frame_grab_is_killed_at_its_timeout(sim):
    sim.set_mode("hang")
    started = time.monotonic()
    with pytest.raises(ProbeError, match=r"RTSP frame grab: no picture within 0\.5 s"):
        grab_rtsp_frame(camera_config(sim).rtsp_endpoint(), 0.5)
    assert time.monotonic() - started < 1.5


@pytest.fixture
def chunked_server() -> Iterator[int]:
    """Answers one HTTP request with a chunked JPEG-looking body."""
    srv = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = srv.accept()
        with conn:
            conn.recv(4096)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nTransfer-Encoding: chunked\r\n\r\n"
                         b"4\r\n\xff\xd8\xff\xe0\r\n3;ext=1\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n")

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield srv.getsockname()[1]
    srv.close()
    t.join(2)


def test_snapshot_probe_reads_a_chunked_answer(chunked_server):
    endpoint = parse_endpoint(f"http://127.0.0.1:{chunked_server}/snap.jpg", ("http",))
    assert fetch_snapshot(endpoint, 1.0, 2.0).jpeg == b"\xff\xd8\xff\xe0abc"
