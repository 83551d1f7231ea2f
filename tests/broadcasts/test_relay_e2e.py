"""Relays end to end: a real Mosquitto, the real hub, two speaker agents with WAV sinks and a
station that a real ffmpeg serves on loopback. A relay is drafted and approved through the API;
the speakers tune in at its time; the station is killed mid-slot; each speaker falls back to the
relay's file and the delivery report says what really went out."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from media.audio_tools import make_tone
from speaker.station import station

from broadcasts.town import Town, node_accounts
from support import HUB

pytestmark = [pytest.mark.timeout(120)]


@pytest.fixture
def town(broker_factory, tmp_path):
    accounts = node_accounts(2)
    broker = broker_factory(HUB, *accounts)
    t = Town(tmp_path, broker.port, HUB, accounts, zones={a.username: "ban-a" for a in accounts})
    t.broker = broker
    yield t.start()
    t.stop()


def relay(town: Town, url: str, start: datetime, **fields) -> int:
    body = {"title": "Tiếp sóng Đài tỉnh", "schedule_kind": "once", "start_at": start.isoformat(),
            "stream_url": url, "slot_s": 12, **fields}
    r = town.post("/broadcasts", "officer", json=body)
    assert r.status_code == 201, r.text
    assert town.post(f"/broadcasts/{r.json()['id']}/approve", "leader").status_code == 200
    return int(r.json()["id"])


def test_a_station_killed_mid_slot_falls_back_to_the_file_and_the_report_says_what_went_out(town, tmp_path):
    fallback = town.upload_tone(make_tone(tmp_path / "du-phong.wav", 20.0, freq=500), "Bản tin dự phòng")
    with station() as st1, station() as st2:
        # each node is one listener of its own mount (ffmpeg serves one listener per process)
        start = (datetime.now(UTC) + timedelta(seconds=5)).replace(microsecond=0)
        ids = [relay(town, st.url, start, target_kind="nodes", target_nodes=[node],
                     media_sha256=fallback["sha256"]) for st, node in ((st1, "loa-01"), (st2, "loa-02"))]
        occs = [town.get(f"/broadcasts/{bid}/reports")[0]["occurrence_id"] for bid in ids]
        for occ in occs:
            town.wait_report(occ, lambda r: r["counts"]["started"] == 1, timeout=20)
        threading.Event().wait(3.0)  # the station plays a few seconds, then dies mid-slot
        st1.kill()
        st2.kill()
        reports = [town.wait_report(occ, lambda r: r["counts"]["finished"] == 1, timeout=30) for occ in occs]
    for report in reports:
        [d] = report["deliveries"]
        kinds = [s["source"] for s in d["sources"]]
        assert kinds == ["stream", "fallback"], d
        assert 1.0 <= d["sources"][0]["seconds"] <= 6.0
        assert d["sources"][1]["seconds"] >= 3.0 and "luồng" in d["sources"][1]["reason"]
        assert d["proof"] == "ok"  # the fallback kept the speaker audible
    [entry] = town.playlog("loa-01")
    assert entry["label"].startswith("relay:")
    assert 11.0 <= entry["duration_s"] <= 12.8  # the slot, less the time to tune in


def test_a_relay_falling_back_to_silence_needs_no_file_and_goes_silent_once_the_stream_dies(town):
    with station() as st:
        start = (datetime.now(UTC) + timedelta(seconds=4)).replace(microsecond=0)
        bid = relay(town, st.url, start, stream_fallback="silence", slot_s=10)
        occ = town.get(f"/broadcasts/{bid}/reports")[0]["occurrence_id"]
        town.wait_report(occ, lambda r: r["counts"]["started"] >= 1, timeout=20)
        threading.Event().wait(2.0)
        st.kill()
        report = town.wait_report(occ, lambda r: r["counts"]["finished"] == 2, timeout=30)
    by_node = {d["node_id"]: d for d in report["deliveries"]}
    # one node got the station (ffmpeg serves one listener); the other found no station at all
    kinds = sorted(tuple(s["source"] for s in d["sources"]) for d in by_node.values())
    assert kinds == [("stream", "silence"), ("stream", "silence")]
    assert any(d["sources"][0]["seconds"] >= 1.0 for d in by_node.values())


@pytest.mark.parametrize(("fields", "reason"), [
    ({"stream_url": "rtsp://dai-tinh/vov1", "slot_s": 60}, "http://"),
    ({"stream_url": "http://dai-tinh:8000/vov1"}, "Thời lượng tiếp sóng"),
    ({"stream_url": "http://dai-tinh:8000/vov1", "slot_s": 60, "stream_fallback": "file"}, "tệp dự phòng"),
])
def test_a_relay_that_does_not_fit_together_is_refused_with_the_reason(town, fields, reason):
    start = datetime.now(UTC) + timedelta(hours=2)
    body = {"title": "Tiếp sóng", "schedule_kind": "once", "start_at": start.isoformat(), **fields}
    r = town.post("/broadcasts", "officer", json=body)
    assert r.status_code == 422 and reason in r.text, r.text
    assert town.get("/broadcasts") == []
