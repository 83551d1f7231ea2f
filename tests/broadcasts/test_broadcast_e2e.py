"""Broadcasts end to end: a real Mosquitto, the real hub, real speaker agents on mock hardware
with WAV sinks. Start errors are measured from the sinks' playlogs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from media.audio_tools import make_tone

from broadcasts.town import Town, label_of, node_accounts, wav_frames
from support import HUB, wait_until

pytestmark = [pytest.mark.timeout(120), pytest.mark.chaos]

# 20 agents and the hub share two cores with three other test workers: typically a few ms, but
# one agent of twenty started 175 and 187 ms late in two suite runs on 2026-12-01, when the
# hypervisor took half the CPU (50 % steal). The start skew itself is measured by
# `thanthien bench start_skew`; this checks that every node starts on the hub's time.
START_TOLERANCE_S = 0.3


@pytest.fixture
def town_factory(broker_factory, tmp_path):
    towns: list[Town] = []

    def make(n: int, **kw) -> Town:
        accounts = node_accounts(n)
        broker = broker_factory(HUB, *accounts)
        zones = {a.username: ("ban-a" if i % 2 else "ban-b") for i, a in enumerate(accounts)}
        town = Town(tmp_path, broker.port, HUB, accounts, zones=zones, **kw)
        town.broker = broker
        towns.append(town)
        return town.start()

    yield make
    for town in towns:
        town.stop()


def test_a_broadcast_plays_on_every_speaker_on_time_even_one_cut_off_and_the_report_fills_in(
    town_factory, tmp_path
):
    town = town_factory(20, cut=("loa-07",))
    media = town.upload_tone(make_tone(tmp_path / "ban-tin.wav", 1.5, freq=600), "Bản tin thử")
    sha = media["sha256"]
    start = (datetime.now(UTC) + timedelta(seconds=8)).replace(microsecond=0)
    bid = town.schedule_once(sha, start, title="Thông báo tiêm chủng")
    town.wait_cached(sha)  # every node prefetched the media over HTTP with its token
    town.cuts["loa-07"].set_mode("reset")  # cut off from the broker before the start
    nodes = sorted(town.agents)
    played = town.wait_played(nodes, label_of(sha), timeout=20)

    normalised = wav_frames(town.library_file(sha))
    for node, entry in played.items():
        error = (datetime.fromisoformat(entry["started_at"]) - start).total_seconds()
        assert abs(error) < START_TOLERANCE_S, (node, error)
        assert wav_frames(town.sink_file(node, entry)) == normalised, node

    [occ] = town.get(f"/broadcasts/{bid}/reports")
    occurrence_id = occ["occurrence_id"]
    # past the deadline the hub counts the silent node missed and raises the alarm ...
    report = town.wait_report(occurrence_id, lambda r: r["checked"] and r["counts"]["finished"] == 19)
    assert {d["node_id"]: d["status"] for d in report["deliveries"]}["loa-07"] == "missed"
    alarms = town.get("/alarms?active=true", role="admin")
    assert [a["subject"] for a in alarms if a["kind"] == "broadcast_missed"] == [occurrence_id]
    # ... and once the node is back, its report (made offline) fills the report in
    town.cuts["loa-07"].set_mode("pass")
    report = town.wait_report(occurrence_id, lambda r: r["counts"]["finished"] == 20)
    assert report["played"] == 20 and report["counts"]["missed"] == 0
    assert report["start_spread_s"] < START_TOLERANCE_S and report["max_start_error_s"] < START_TOLERANCE_S
    assert wait_until(
        lambda: (
            not [a for a in town.get("/alarms?active=true", role="admin") if a["kind"] == "broadcast_missed"]
        ),
        10,
    )


def test_an_emergency_play_now_interrupts_a_normal_broadcast_which_is_reported_interrupted(
    town_factory, tmp_path
):
    town = town_factory(2, realtime=True)
    normal = town.upload_tone(make_tone(tmp_path / "dai.wav", 6.0, freq=400), "Bản tin dài")
    urgent = town.upload_tone(make_tone(tmp_path / "khan.wav", 1.0, freq=900), "Báo cháy")
    start = (datetime.now(UTC) + timedelta(seconds=6)).replace(microsecond=0)
    bid = town.schedule_once(normal["sha256"], start, title="Bản tin chiều")
    town.wait_cached(normal["sha256"])
    [occ] = town.get(f"/broadcasts/{bid}/reports")
    town.wait_report(occ["occurrence_id"], lambda r: r["counts"]["started"] == 2, timeout=15)

    r = town.post(
        "/broadcasts/play-now",
        "leader",
        json={
            "media_sha256": urgent["sha256"],
            "priority": "emergency",
            "confirm": True,
            "title": "Báo cháy",
        },
    )
    assert r.status_code == 201, r.text
    now = r.json()
    assert sorted(now["targets"]) == sorted(town.agents)

    report = town.wait_report(occ["occurrence_id"], lambda r: r["counts"]["interrupted"] == 2, timeout=15)
    assert all("khẩn cấp" in d["detail"] for d in report["deliveries"])
    emergency = town.wait_report(now["occurrence_id"], lambda r: r["counts"]["finished"] == 2, timeout=15)
    common = datetime.fromisoformat(now["start_at"])
    for d in emergency["deliveries"]:  # the nodes started together at the common start
        assert abs((datetime.fromisoformat(d["started_at"]) - common).total_seconds()) < START_TOLERANCE_S
    for node in town.agents:
        entries = town.playlog(node)
        assert [(e["label"], e["interrupted"]) for e in entries] == [
            (label_of(normal["sha256"]), True),
            (label_of(urgent["sha256"]), False),
        ]


def test_a_node_with_a_wrong_token_cannot_download_and_its_failure_is_reported(town_factory, tmp_path, db):
    town = town_factory(2, wrong_token=("loa-02",), db_url=db.url.render_as_string(hide_password=False))
    media = town.upload_tone(make_tone(tmp_path / "tb.wav", 1.0, freq=500), "Thông báo")
    start = (datetime.now(UTC) + timedelta(seconds=5)).replace(microsecond=0)
    bid = town.schedule_once(media["sha256"], start)
    town.wait_cached(media["sha256"])
    [occ] = town.get(f"/broadcasts/{bid}/reports")
    report = town.wait_report(
        occ["occurrence_id"], lambda r: r["counts"]["finished"] + r["counts"]["failed"] == 2
    )
    statuses = {d["node_id"]: (d["status"], d["detail"]) for d in report["deliveries"]}
    assert statuses["loa-01"][0] == "finished"
    assert statuses["loa-02"][0] == "failed" and "HTTP 401" in statuses["loa-02"][1]
    assert not town.speaker("loa-02").cache.has(media["sha256"])  # type: ignore[union-attr]
    assert town.playlog("loa-02") == []


def test_with_the_broker_stopped_before_the_start_every_node_plays_on_time_and_reports_later(
    town_factory, tmp_path
):
    town = town_factory(3)
    media = town.upload_tone(make_tone(tmp_path / "tb.wav", 1.0, freq=700), "Thông báo")
    # 10 s of set-up (plans out, media cached) before the broker is stopped 10 s before the start:
    # a loaded CI machine took more than 3 s
    start = (datetime.now(UTC) + timedelta(seconds=20)).replace(microsecond=0)
    bid = town.schedule_once(media["sha256"], start)
    [occ] = town.get(f"/broadcasts/{bid}/reports")
    town.wait_cached(media["sha256"])
    assert datetime.now(UTC) < start - timedelta(seconds=10), "set-up too slow for this test"
    assert wait_until(lambda: datetime.now(UTC) >= start - timedelta(seconds=10), 15)
    town.broker.stop()
    played = town.wait_played(sorted(town.agents), label_of(media["sha256"]), timeout=20)
    for node, entry in played.items():
        error = (datetime.fromisoformat(entry["started_at"]) - start).total_seconds()
        assert abs(error) < START_TOLERANCE_S, (node, error)
    town.broker.start()
    report = town.wait_report(occ["occurrence_id"], lambda r: r["counts"]["finished"] == 3, timeout=30)
    assert report["start_spread_s"] < START_TOLERANCE_S


def test_a_stop_command_ends_the_broadcast_playing_which_is_reported_interrupted(town_factory, tmp_path):
    town = town_factory(1, realtime=True)
    media = town.upload_tone(make_tone(tmp_path / "dai.wav", 8.0, freq=300), "Bản tin dài")
    start = (datetime.now(UTC) + timedelta(seconds=5)).replace(microsecond=0)
    bid = town.schedule_once(media["sha256"], start)
    [occ] = town.get(f"/broadcasts/{bid}/reports")
    town.wait_report(occ["occurrence_id"], lambda r: r["counts"]["started"] == 1, timeout=15)
    r = town.post("/broadcasts/stop", "leader", json={"target_kind": "zones", "target_zones": ["ban-b"]})
    assert r.status_code == 200 and r.json() == ["loa-01"]
    report = town.wait_report(occ["occurrence_id"], lambda r: r["counts"]["interrupted"] == 1, timeout=10)
    assert report["deliveries"][0]["detail"] == "dừng theo lệnh"
    [entry] = town.playlog("loa-01")
    assert entry["interrupted"] is True
