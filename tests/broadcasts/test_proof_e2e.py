"""Proof of play end to end: a real Mosquitto, the real hub, two speaker agents whose WAV sinks
hear through the simulator's microphone model; one node's amplifier is muted (the simulator's
fault). Both "play" the broadcast; the delivery report says which one was heard, the muted
node gets the speaker_silent alarm, and its next broadcast, heard again, clears it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from media.audio_tools import make_tone

from broadcasts.town import Town, node_accounts
from support import HUB, wait_until

pytestmark = [pytest.mark.timeout(120)]


@pytest.fixture
def town(broker_factory, tmp_path):
    accounts = node_accounts(2)
    broker = broker_factory(HUB, *accounts)
    t = Town(tmp_path, broker.port, HUB, accounts, zones={a.username: "ban-a" for a in accounts},
             microphones=True)
    t.broker = broker
    yield t.start()
    t.stop()


def silent_alarms(town: Town) -> list[str]:
    return sorted(a["subject"] for a in town.get("/alarms?active=true", role="admin")
                  if a["kind"] == "speaker_silent")


def play_once(town: Town, sha: str, title: str) -> dict:
    start = (datetime.now(UTC) + timedelta(seconds=4)).replace(microsecond=0)
    bid = town.schedule_once(sha, start, title=title)
    town.wait_cached(sha)
    occ = town.get(f"/broadcasts/{bid}/reports")[0]
    return town.wait_report(occ["occurrence_id"], lambda r: r["counts"]["finished"] == 2, timeout=30)


def test_a_muted_amplifier_is_reported_unheard_with_an_alarm_that_its_next_good_playback_clears(
        town, tmp_path):
    media = town.upload_tone(make_tone(tmp_path / "tb.wav", 3.0, freq=600), "Thông báo")
    town.acoustics["loa-02"].mute()
    report = play_once(town, media["sha256"], "Thông báo họp dân")
    proof = {d["node_id"]: d for d in report["deliveries"]}
    assert proof["loa-01"]["proof"] == "ok"
    assert proof["loa-02"]["proof"] == "unheard"
    assert all(v > -40 for v in proof["loa-02"]["levels"]["sent_dbfs"])  # it did send the audio
    assert report["proof_counts"]["unheard"] == 1
    assert wait_until(lambda: silent_alarms(town) == ["loa-02"], 10)
    assert town.playlog("loa-02")[0]["heard_dbfs"][0] < -60  # the sink's record agrees

    town.acoustics["loa-02"].unmute()
    again = town.upload_tone(make_tone(tmp_path / "tb2.wav", 2.0, freq=500), "Thông báo 2")
    report = play_once(town, again["sha256"], "Thông báo lần 2")
    assert {d["proof"] for d in report["deliveries"]} == {"ok"}
    assert wait_until(lambda: silent_alarms(town) == [], 10)
