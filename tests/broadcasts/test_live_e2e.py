"""Live announcements end to end: a real Mosquitto, the real hub (uvicorn, WebSocket), real
speaker agents with WAV sinks. The officer's voice goes through the live socket as the page
sends it; each speaker plays it live, a lower broadcast gives way, a node cut off mid-sentence
stops within a second and says so, and the broadcast log keeps the recording."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from media.audio_tools import make_tone

from broadcasts.live_support import open_live, speak, voice
from broadcasts.town import Town, label_of, node_accounts
from support import HUB, wait_until
from thanthien.edge.audio import AudioClip, level_dbfs
from thanthien.sim.netcut import NetCut

pytestmark = [pytest.mark.timeout(120)]


@pytest.fixture
def town(broker_factory, tmp_path):
    accounts = node_accounts(3)
    broker = broker_factory(HUB, *accounts)
    zones = {"loa-01": "ban-a", "loa-02": "ban-a", "loa-03": "ban-b"}
    t = Town(tmp_path, broker.port, HUB, accounts, zones=zones, realtime=True, cut=("loa-02",))
    t.broker = broker
    yield t.start()
    t.stop()


def live_entry(town: Town, node: str, occ: str) -> dict | None:
    return next((e for e in town.playlog(node) if e["label"] == f"live:{occ}"), None)


def test_the_zone_hears_the_voice_live_and_the_log_keeps_who_where_when_and_the_recording(town):
    sock, opened = open_live(town, title="Thông báo mất điện")
    assert opened["state"] == "open" and sorted(opened["targets"]) == ["loa-01", "loa-02"]
    occ = opened["occurrence_id"]
    speak(sock, voice(2.5))
    sock.send_json({"end": True})
    ended = sock.recv_json()
    sock.close()
    assert ended["state"] == "ended" and ended["recorded_s"] == pytest.approx(2.5, abs=0.1)
    report = town.wait_report(occ, lambda r: r["counts"]["finished"] == 2, timeout=20)
    for d in report["deliveries"]:
        [span] = d["sources"]
        assert span["source"] == "live" and 1.5 <= span["seconds"] <= 2.6, d
        assert d["proof"] == "ok"
    for node in ("loa-01", "loa-02"):
        entry = live_entry(town, node, occ)
        assert entry is not None
        clip = AudioClip.from_wav(town.tmp / "nodes" / node / "sink" / entry["file"])
        assert level_dbfs(clip.frames) > -25  # the voice, not silence
    assert live_entry(town, "loa-03", occ) is None  # another zone heard nothing
    b = town.get(f"/broadcasts/{opened['broadcast_id']}")
    assert b["created_by"] == "officer" and b["title"] == "Thông báo mất điện"
    [media] = [m for m in town.get("/media") if m["sha256"] == b["media_sha256"]]  # the recording
    assert media["duration_s"] == pytest.approx(2.5, abs=0.2)
    audit = town.get(f"/broadcasts/{opened['broadcast_id']}/audit")
    ended_entry = next(a for a in audit if a["action"] == "live_ended")
    assert ended_entry["username"] == "officer" and ended_entry["details"]["targets"] == ["loa-01", "loa-02"]
    assert ended_entry["details"]["duration_s"] >= 2.5


def test_a_live_announcement_interrupts_a_normal_broadcast_playing(town, tmp_path):
    normal = town.upload_tone(make_tone(tmp_path / "dai.wav", 15.0, freq=300), "Bản tin dài")
    start = (datetime.now(UTC) + timedelta(seconds=4)).replace(microsecond=0)
    bid = town.schedule_once(normal["sha256"], start, title="Bản tin chiều", target_kind="zones",
                             target_zones=["ban-a"])
    occ = town.get(f"/broadcasts/{bid}/reports")[0]["occurrence_id"]
    town.wait_report(occ, lambda r: r["counts"]["started"] == 2, timeout=20)
    sock, opened = open_live(town)
    speak(sock, voice(1.5))
    sock.send_json({"end": True})
    sock.recv_json()
    sock.close()
    report = town.wait_report(occ, lambda r: r["counts"]["interrupted"] == 2, timeout=15)
    assert all("ưu tiên" in d["detail"] for d in report["deliveries"])
    town.wait_report(opened["occurrence_id"], lambda r: r["counts"]["finished"] == 2, timeout=15)
    labels = [e["label"] for e in town.playlog("loa-01")]
    assert labels == [label_of(normal["sha256"]), f"live:{opened['occurrence_id']}"]


def test_a_node_cut_off_mid_sentence_stops_within_a_second_and_reports_it(town):
    cut: NetCut = town.cuts["loa-02"]
    sock, opened = open_live(town)
    occ = opened["occurrence_id"]
    talking = threading.Thread(target=speak, args=(sock, voice(6.0)), daemon=True)
    talking.start()
    assert wait_until(lambda: town.speaker("loa-02").player.status()["playing"] == occ, 10)
    threading.Event().wait(1.0)
    cut.set_mode("blackhole")
    cut_at = datetime.now(UTC)
    assert wait_until(lambda: town.speaker("loa-02").player.status()["playing"] is None, 5)
    stopped_at = datetime.now(UTC)
    talking.join(timeout=10)
    sock.send_json({"end": True})
    sock.recv_json()
    sock.close()
    assert (stopped_at - cut_at).total_seconds() < 1.2  # the node's timeout (0.8 s) and a poll
    cut.set_mode("pass")  # back on the network: its report arrives
    report = town.wait_report(occ, lambda r: r["counts"]["finished"] == 1 and r["counts"]["interrupted"] == 1,
                              timeout=30)
    d = {x["node_id"]: x for x in report["deliveries"]}["loa-02"]
    assert d["status"] == "interrupted" and "mất luồng phát trực tiếp" in d["detail"]
    entry = live_entry(town, "loa-02", occ)
    assert entry is not None
    assert (datetime.fromisoformat(entry["finished_at"]) - cut_at).total_seconds() < 1.2


@pytest.mark.parametrize(("role", "request_", "reason"), [
    ("officer", {"priority": "emergency"}, "không được phép"),
    ("officer", {"target_zones": []}, "Chọn ít nhất một khu vực phát"),
])
def test_a_live_announcement_that_may_not_go_out_is_refused_with_the_reason(town, role, request_, reason):
    sock, answer = open_live(town, role, **request_)
    sock.close()
    assert answer["state"] == "refused" and reason in answer["message"], answer
