"""The plan player with a real-time WAV sink: start times, priorities, missing media, the
amplifier relay. Items are scheduled a few tenths of a second ahead to keep tests short."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory
from speaker_support import NODE, TOKEN, Events, StampedPin, in_s, item, media_server, tone, wav_and_sha

from thanthien.edge.audio import WavSink
from thanthien.edge.speaker.media_cache import MediaCache
from thanthien.edge.speaker.player import PlanPlayer, PlayerSettings
from thanthien.edge.speaker.prefetch import Prefetcher
from thanthien.edge.speaker.relay import AmplifierRelay
from thanthien.protocol.payloads import Plan

pytestmark = pytest.mark.timeout(30)

START_TOLERANCE_S = 0.04
FAST = PlayerSettings(warmup_s=0.1, relay_off_delay_s=0.1, prepare_s=0.1)

_revision = iter(range(1, 1_000_000))


def plan(*items, node: str = NODE) -> Plan:
    now = datetime.now(UTC)
    return Plan(node=node, revision=next(_revision), generated_at=now,
                valid_until=now + timedelta(days=2), items=list(items))


class Rig:
    """A player on a real-time WAV sink with a cache in ``tmp``."""

    def __init__(self, tmp: Path, settings: PlayerSettings = FAST, *, relay: AmplifierRelay | None = None,
                 prefetcher_for: str | None = None, state_path: Path | None = None) -> None:
        self.sink = WavSink(tmp / "sink", realtime=True)
        self.cache = MediaCache(tmp / "cache", base_url=prefetcher_for, token=TOKEN)
        self.events = Events()
        self.prefetcher = None
        if prefetcher_for is not None:
            self.prefetcher = Prefetcher(self.cache, on_ready=lambda sha: self.player.wake(),
                                         retry_min_s=0.05)
        self.player = PlanPlayer(NODE, self.sink, self.cache, on_event=self.events, relay=relay,
                                 settings=settings, prefetcher=self.prefetcher, state_path=state_path)
        if self.prefetcher is not None:
            self.prefetcher.start()
        self.player.start()

    def media(self, seconds: float, freq: float = 440.0) -> str:
        return self.cache.put(tone(seconds, freq).to_wav())

    def played(self) -> list[dict]:
        return self.sink.entries()

    def close(self) -> None:
        self.player.close()
        if self.prefetcher is not None:
            self.prefetcher.close()


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = Rig(tmp_path)
    yield r
    r.close()


def started_at(entry: dict) -> datetime:
    return datetime.fromisoformat(str(entry["started_at"]))


def test_items_start_at_their_times(rig: Rig):
    a, b = rig.media(0.2, 440), rig.media(0.2, 660)
    first, second = item("o1", in_s(0.3), a), item("o2", in_s(0.7), b)
    rig.player.set_plan(plan(first, second))
    rig.events.wait_for("o2", "finished")
    entries = rig.played()
    assert [e["label"] for e in entries] == [a[:12], b[:12]]
    for entry, it in zip(entries, (first, second), strict=True):
        assert abs((started_at(entry) - it.start_at).total_seconds()) < START_TOLERANCE_S
    assert rig.events.statuses("o1") == ["started", "finished"]


def test_started_event_carries_the_actual_start_and_the_schedule(rig: Rig):
    sha = rig.media(0.1)
    it = item("o1", in_s(0.3), sha, volume=60)
    rig.player.set_plan(plan(it))
    started = rig.events.wait_for("o1", "started")
    rig.events.wait_for("o1", "finished")
    assert started.scheduled_at == it.start_at
    assert started.media_sha256 == sha and started.node == NODE
    # the event and the WAV sink read the clock a few ms apart (14 ms on a loaded machine)
    assert abs((started.at - started_at(rig.played()[0])).total_seconds()) < 0.1
    assert rig.played()[0]["volume"] == 60


def test_higher_priority_interrupts_lower_at_its_start_time(rig: Rig):
    long, short = rig.media(2.0, 440), rig.media(0.2, 880)
    normal = item("n", in_s(0.2), long, duration=2.0)
    urgent = item("p", in_s(0.6), short, priority="priority")
    rig.player.set_plan(plan(normal, urgent))
    rig.events.wait_for("p", "finished")
    interrupted = rig.events.wait_for("n", "interrupted")
    assert "ưu tiên" in interrupted.detail
    first, second = rig.played()
    assert first["interrupted"] is True and second["label"] == short[:12]
    assert abs((started_at(second) - urgent.start_at).total_seconds()) < START_TOLERANCE_S + 0.03


def test_equal_priority_waits_its_turn(rig: Rig):
    a, b = rig.media(0.5, 440), rig.media(0.2, 660)
    first = item("a", in_s(0.2), a)
    second = item("b", in_s(0.4), b)
    rig.player.set_plan(plan(first, second))
    rig.events.wait_for("b", "finished")
    assert rig.events.statuses("a") == ["started", "finished"]
    one, two = rig.played()
    assert one["interrupted"] is False
    assert started_at(two) >= datetime.fromisoformat(str(one["finished_at"]))


def test_emergency_play_now_interrupts_at_once(rig: Rig):
    long = rig.media(3.0, 440)
    rig.player.set_plan(plan(item("n", in_s(0.2), long, duration=3.0)))
    rig.events.wait_for("n", "started")
    alarm = rig.media(0.2, 990)  # cached after the plan came (a new plan evicts the rest)
    issued = datetime.now(UTC)
    rig.player.play_now(item("e", issued, alarm, priority="emergency"))
    rig.events.wait_for("e", "finished")
    assert "khẩn cấp" in rig.events.wait_for("n", "interrupted").detail
    emergency = rig.played()[1]
    assert (started_at(emergency) - issued).total_seconds() < 0.15  # relay already on: no warm-up


def test_normal_play_now_does_not_interrupt_a_normal_broadcast(rig: Rig):
    a = rig.media(0.4, 440)
    rig.player.set_plan(plan(item("n", in_s(0.2), a)))
    rig.events.wait_for("n", "started")
    b = rig.media(0.1, 660)
    rig.player.play_now(item("c", datetime.now(UTC), b))
    rig.events.wait_for("c", "finished")
    assert rig.events.statuses("n") == ["started", "finished"]


def test_play_now_without_its_media_fails_at_once(rig: Rig):
    _, missing = wav_and_sha(0.2)
    rig.player.play_now(item("x", datetime.now(UTC), missing, priority="emergency"))
    assert "chưa tải được" in rig.events.wait_for("x", "failed", timeout=2).detail


def test_play_now_waiting_for_its_download_does_not_hold_back_the_plan(tmp_path: Path):
    data, sha = wav_and_sha(0.2)
    _, missing = wav_and_sha(0.2, freq=880)
    with media_server() as hub:
        hub.files[f"/api/media/{sha}"] = data
        settings = PlayerSettings(warmup_s=0.1, prepare_s=0.1, play_now_wait_s=1.0)
        rig = Rig(tmp_path, settings, prefetcher_for=hub.base_url)
        try:
            scheduled = item("o", in_s(0.4), sha)
            rig.player.set_plan(plan(scheduled))
            rig.player.play_now(item("c", datetime.now(UTC), missing))  # the hub answers 404
            rig.events.wait_for("o", "finished")
            entry = rig.played()[0]
            assert abs((started_at(entry) - scheduled.start_at).total_seconds()) < START_TOLERANCE_S
            assert "HTTP 404" in rig.events.wait_for("c", "failed").detail
        finally:
            rig.close()


def test_stop_ends_what_is_playing(rig: Rig):
    sha = rig.media(3.0)
    rig.player.play_now(item("e", datetime.now(UTC), sha, priority="emergency"))
    rig.events.wait_for("e", "started")
    assert rig.player.stop() == ["e"]
    assert rig.events.wait_for("e", "interrupted").detail == "dừng theo lệnh"


def test_media_not_cached_by_start_time_is_reported_failed(rig: Rig):
    _, missing = wav_and_sha(0.2)
    it = item("m", in_s(0.3), missing)
    rig.player.set_plan(plan(it))
    failed = rig.events.wait_for("m", "failed")
    assert "chưa tải được tệp âm thanh" in failed.detail
    assert failed.at >= it.start_at - timedelta(seconds=0.01)
    assert rig.played() == []
    assert rig.events.statuses("m") == ["failed"]


def test_item_too_late_to_play_is_reported_missed(tmp_path: Path):
    rig = Rig(tmp_path, PlayerSettings(warmup_s=0.1, prepare_s=0.1, max_delay_s=5))
    try:
        sha = rig.media(0.1)
        rig.player.set_plan(plan(item("old", in_s(-60), sha), item("new", in_s(0.2), sha)))
        assert "5 giây" in rig.events.wait_for("old", "missed").detail
        rig.events.wait_for("new", "finished")
        assert len(rig.played()) == 1
    finally:
        rig.close()


def test_relay_is_on_from_the_warm_up_before_the_audio_until_after_it(tmp_path: Path):
    factory = MockFactory(pin_class=StampedPin)
    relay = AmplifierRelay(17, pin_factory=factory)
    settings = PlayerSettings(warmup_s=0.25, relay_off_delay_s=0.1, prepare_s=0.1)
    rig = Rig(tmp_path, settings, relay=relay)
    try:
        it = item("r", in_s(0.5), rig.media(0.2))
        rig.player.set_plan(plan(it))
        rig.events.wait_for("r", "finished")
        pin = factory.pin(17)
        (on_t, on), (off_t, off) = pin.wait_changes(2)
        entry = rig.played()[0]
        audio_start = started_at(entry).timestamp()
        audio_end = datetime.fromisoformat(str(entry["finished_at"])).timestamp()
        assert (on, off) == (True, False)
        assert audio_start - on_t >= settings.warmup_s - 0.01
        assert audio_start - on_t < settings.warmup_s + 0.1
        assert off_t >= audio_end + settings.relay_off_delay_s - 0.01
        assert pin.state is False
    finally:
        rig.close()
        relay.close()


def test_relay_stays_on_between_back_to_back_items(tmp_path: Path):
    factory = MockFactory(pin_class=StampedPin)
    relay = AmplifierRelay(17, pin_factory=factory)
    rig = Rig(tmp_path, PlayerSettings(warmup_s=0.1, relay_off_delay_s=0.3, prepare_s=0.1), relay=relay)
    try:
        a = rig.media(0.2)
        rig.player.set_plan(plan(item("x", in_s(0.2), a), item("y", in_s(0.5), a)))
        rig.events.wait_for("y", "finished")
        changes = factory.pin(17).wait_changes(2)
        assert [state for _, state in changes] == [True, False]
    finally:
        rig.close()
        relay.close()


def test_played_occurrence_is_not_played_again_after_a_restart(tmp_path: Path):
    state = tmp_path / "played.json"
    rig = Rig(tmp_path / "one", state_path=state)
    sha = rig.media(0.1)
    first = item("once", in_s(0.2), sha)
    try:
        rig.player.set_plan(plan(first))
        rig.events.wait_for("once", "finished")
    finally:
        rig.close()
    again = Rig(tmp_path / "two", state_path=state)
    try:
        again.media(0.1)
        again.player.set_plan(plan(first, item("next", in_s(0.2), sha)))
        again.events.wait_for("next", "finished")
        assert [e["label"] for e in again.played()] == [sha[:12]]
        assert again.events.statuses("once") == []
    finally:
        again.close()


def test_plan_for_another_node_is_ignored(rig: Rig):
    assert rig.player.set_plan(plan(node="node-b")) is False
    assert rig.player.plan is None


def test_older_plan_is_ignored(rig: Rig):
    newer = plan()
    older = Plan(node=NODE, revision=1, generated_at=newer.generated_at - timedelta(minutes=5),
                 valid_until=newer.valid_until, items=[])
    assert rig.player.set_plan(newer) is True
    assert rig.player.set_plan(older) is False
    assert rig.player.set_plan(newer) is False  # a retained repeat
    assert rig.player.plan == newer


def test_new_plan_evicts_media_no_item_references(rig: Rig):
    old = rig.media(0.1, 440)
    rig.player.set_plan(plan(item("a", in_s(60), old)))
    new = rig.media(0.1, 660)  # as the prefetcher would, once it knows the new plan
    rig.player.set_plan(plan(item("b", in_s(60), new)))
    assert rig.cache.cached() == [new]


def test_media_prefetched_from_the_hub_plays_on_time(tmp_path: Path):
    data, sha = wav_and_sha(0.2)
    with media_server() as hub:
        hub.files[f"/api/media/{sha}"] = data
        rig = Rig(tmp_path, prefetcher_for=hub.base_url)
        try:
            it = item("h", in_s(0.6), sha)
            rig.player.set_plan(plan(it))
            rig.events.wait_for("h", "finished")
            entry = rig.played()[0]
            assert abs((started_at(entry) - it.start_at).total_seconds()) < START_TOLERANCE_S
        finally:
            rig.close()


def test_play_now_waits_for_its_download(tmp_path: Path):
    data, sha = wav_and_sha(0.2)
    with media_server() as hub:
        hub.files[f"/api/media/{sha}"] = data
        rig = Rig(tmp_path, prefetcher_for=hub.base_url)
        try:
            rig.player.play_now(item("now", datetime.now(UTC), sha, priority="emergency"))
            rig.events.wait_for("now", "finished")
            assert rig.cache.has(sha)
        finally:
            rig.close()
