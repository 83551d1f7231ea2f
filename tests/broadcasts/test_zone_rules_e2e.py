"""Volume by the hour end to end: a real Mosquitto, the real hub, real speaker agents on mock
hardware with WAV sinks. What each speaker played (its sink) follows its zone's volume profile,
a speaker's override, and an emergency's own volume."""

from __future__ import annotations

import array
import io
import wave
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from media.audio_tools import make_tone

from broadcasts.town import Town, label_of, node_accounts
from support import HUB

pytestmark = pytest.mark.timeout(120)



def local_now(town: Town) -> datetime:
    """Now in the hub's zone (the town runs in one where it is about noon)."""
    return datetime.now(ZoneInfo(town.settings.hub.timezone))


@pytest.fixture
def town(broker_factory, tmp_path):
    accounts = node_accounts(3)
    broker = broker_factory(HUB, *accounts)
    # loa-01 and loa-03 serve ban-b, loa-02 serves ban-a
    zones = {a.username: ("ban-a" if i % 2 else "ban-b") for i, a in enumerate(accounts)}
    t = Town(tmp_path, broker.port, HUB, accounts, zones=zones)
    t.broker = broker
    away = local_now(t) + timedelta(hours=6)  # runs at any hour: quiet hours are moved away from now
    t.settings.broadcasts.quiet_start = away.strftime("%H:%M")
    t.settings.broadcasts.quiet_end = (away + timedelta(hours=1)).strftime("%H:%M")
    yield t.start()
    t.stop()


def band_around_now(town: Town, volume: int) -> dict:
    now = local_now(town)
    return {"start": (now - timedelta(minutes=2)).strftime("%H:%M"),
            "end": (now + timedelta(minutes=20)).strftime("%H:%M"), "volume": volume}


def peak(data: bytes) -> int:
    with wave.open(io.BytesIO(data)) as w:
        return max(abs(s) for s in array.array("h", w.readframes(w.getnframes())))


def put_rule(town: Town, path: str, body: dict) -> None:
    r = town.http.put(path, headers=town.headers("admin"), json=body)
    assert r.status_code == 200, r.text


def test_each_speaker_plays_at_the_volume_its_zone_or_its_own_profile_allows_now(town, tmp_path):
    put_rule(town, "/zones/ban-a/broadcast-rules", {"volume_profile": [band_around_now(town, 30)]})
    put_rule(town, "/nodes/loa-03/broadcast-rules", {"volume_profile": [band_around_now(town, 50)]})
    media = town.upload_tone(make_tone(tmp_path / "tb.wav", 1.0, freq=600), "Thông báo")
    start = (datetime.now(UTC) + timedelta(seconds=8)).replace(microsecond=0)
    body = {"title": "Thông báo sáng", "media_sha256": media["sha256"], "schedule_kind": "once",
            "start_at": start.isoformat(), "volume": 80}
    r = town.post("/broadcasts", "officer", json=body)
    assert r.status_code == 201, r.text
    assert town.post(f"/broadcasts/{r.json()['id']}/approve", "leader").status_code == 200
    town.wait_cached(media["sha256"])
    played = town.wait_played(sorted(town.agents), label_of(media["sha256"]), timeout=20)

    assert {n: e["volume"] for n, e in played.items()} == {"loa-01": 80, "loa-02": 30, "loa-03": 50}
    full = peak(town.library_file(media["sha256"]))
    for node, entry in played.items():  # the samples sent to the amplifier, not only the number
        assert peak(town.sink_file(node, entry)) == pytest.approx(full * entry["volume"] / 100, rel=0.02)


def test_an_emergency_play_now_keeps_its_volume_in_a_quiet_band(town, tmp_path):
    put_rule(town, "/broadcast-rules", {"volume_profile": [band_around_now(town, 20)]})
    media = town.upload_tone(make_tone(tmp_path / "khan.wav", 1.0, freq=900), "Báo cháy")
    r = town.post("/broadcasts/play-now", "leader",
                  json={"media_sha256": media["sha256"], "priority": "emergency", "confirm": True,
                        "volume": 90})
    assert r.status_code == 201, r.text
    played = town.wait_played(sorted(town.agents), label_of(media["sha256"]), timeout=20)
    assert {e["volume"] for e in played.values()} == {90}


def test_a_normal_play_now_plays_at_the_profiles_level(town, tmp_path):
    put_rule(town, "/broadcast-rules", {"volume_profile": [band_around_now(town, 20)]})
    media = town.upload_tone(make_tone(tmp_path / "tb.wav", 1.0, freq=500), "Thông báo")
    r = town.post("/broadcasts/play-now", "leader",
                  json={"media_sha256": media["sha256"], "priority": "normal", "volume": 90})
    assert r.status_code == 201, r.text
    played = town.wait_played(sorted(town.agents), label_of(media["sha256"]), timeout=20)
    assert {e["volume"] for e in played.values()} == {20}


def test_a_schedule_outside_the_allowed_slots_is_refused_and_no_speaker_plays_it(town, tmp_path):
    now = local_now(town)
    elsewhere = (now + timedelta(hours=3)).strftime("%H:%M")
    put_rule(town, "/broadcast-rules", {"slots": [{"start": elsewhere, "minutes": 60}]})
    media = town.upload_tone(make_tone(tmp_path / "tb.wav", 1.0, freq=650), "Thông báo")
    start = (datetime.now(UTC) + timedelta(seconds=5)).replace(microsecond=0)
    r = town.post("/broadcasts", "officer", json={"title": "Ngoài giờ", "media_sha256": media["sha256"],
                                                  "schedule_kind": "once", "start_at": start.isoformat()})
    assert r.status_code == 422 and "ngoài khung giờ được phép của toàn xã" in r.text
    assert town.get("/broadcasts") == []
