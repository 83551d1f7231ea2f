"""Relays at the node: a plan item that plays a station's stream for its slot, served by a real
ffmpeg on loopback; the station killed mid-slot, gone silent or never there falls back to the
item's file or to silence, and the report says what really went out. The WAV sink shows what
the speaker played."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from speaker_support import NODE, TOKEN, Events, in_s, item, tone
from station import free_port, station

from thanthien.edge.audio import AudioClip, WavSink, level_dbfs
from thanthien.edge.speaker.media_cache import MediaCache
from thanthien.edge.speaker.player import PlanPlayer, PlayerSettings
from thanthien.protocol.payloads import Plan, PlanItem, StreamSource

pytestmark = pytest.mark.timeout(60)

FAST = PlayerSettings(warmup_s=0.1, relay_off_delay_s=0.1, prepare_s=0.1)


class Rig:
    def __init__(self, tmp: Path) -> None:
        self.sink = WavSink(tmp / "sink", realtime=True)
        self.cache = MediaCache(tmp / "cache", base_url=None, token=TOKEN)
        self.events = Events()
        self.player = PlanPlayer(NODE, self.sink, self.cache, on_event=self.events, settings=FAST)
        self.player.start()
        self.fallback_sha = self.cache.put(tone(8.0, 660).to_wav())  # longer than any slot here

    def relay(self, occ: str, url: str, slot_s: float, fallback: str = "file", **watch: float) -> PlanItem:
        src = StreamSource(url=url, fallback=fallback, **watch)  # type: ignore[arg-type]
        it = item(occ, in_s(0.3), self.fallback_sha, duration=slot_s).model_copy(update={"stream": src})
        now = datetime.now(UTC)
        self.player.set_plan(Plan(node=NODE, revision=1, generated_at=now,
                                  valid_until=now + timedelta(days=1), items=[it]))
        return it

    def played(self) -> AudioClip:
        [entry] = self.sink.entries()
        return AudioClip.from_wav(self.sink.directory / str(entry["file"]))

    def close(self) -> None:
        self.player.close()


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = Rig(tmp_path)
    yield r
    r.close()


def seconds(clip: AudioClip, a: float, b: float) -> bytes:
    step = 2 * clip.sample_rate
    return clip.frames[int(a * step) // 2 * 2:int(b * step) // 2 * 2]


def test_a_relay_plays_the_station_for_its_slot(rig: Rig):
    with station() as st:
        rig.relay("r1", st.url, slot_s=3.0)
        done = rig.events.wait_for("r1", "finished", timeout=15)
    assert [(s.source, s.reason) for s in done.sources or []] == [("stream", "")]
    assert 1.5 <= done.sources[0].seconds <= 3.3  # the slot, less the time to tune in
    clip = rig.played()
    assert clip.duration_s == pytest.approx(done.sources[0].seconds, abs=0.2)
    assert level_dbfs(seconds(clip, 1.0, 2.0)) > -30  # the station's tone went out
    assert done.levels is not None and max(done.levels.sent_dbfs) > -30


def test_a_station_killed_mid_slot_falls_back_to_the_file_and_the_report_says_so(rig: Rig):
    with station() as st:
        rig.relay("r1", st.url, slot_s=5.0, stall_s=1.0)
        rig.events.wait_for("r1", "started", timeout=10)
        threading.Event().wait(1.5)  # the station plays a while, then dies mid-slot
        st.kill()
        done = rig.events.wait_for("r1", "finished", timeout=15)
    kinds = [s.source for s in done.sources or []]
    assert kinds == ["stream", "fallback"]
    stream, fallback = done.sources
    assert 0.5 <= stream.seconds <= 3.0
    assert "luồng" in fallback.reason and fallback.seconds >= 1.0
    assert "tiếp sóng" in done.detail
    clip = rig.played()
    assert clip.duration_s == pytest.approx(5.0, abs=0.8)
    assert level_dbfs(seconds(clip, clip.duration_s - 1.0, clip.duration_s)) > -30  # the fallback tone


def test_a_silent_station_falls_back_to_silence_for_the_rest_of_the_slot(rig: Rig):
    with station("sine=frequency=440:sample_rate=22050:duration=1,apad") as st:
        rig.relay("r1", st.url, slot_s=5.0, fallback="silence", silence_s=1.0)
        done = rig.events.wait_for("r1", "finished", timeout=15)
    assert [s.source for s in done.sources or []] == ["stream", "silence"]
    assert "im lặng" in done.sources[1].reason
    clip = rig.played()
    assert level_dbfs(seconds(clip, 0.2, 0.8)) > -30
    assert level_dbfs(clip.frames[-2 * clip.sample_rate // 2:]) < -60


def test_a_station_that_is_not_there_falls_back_at_once(rig: Rig):
    rig.relay("r1", f"http://127.0.0.1:{free_port()}/khong-co.mp3", slot_s=3.0)
    done = rig.events.wait_for("r1", "finished", timeout=15)
    stream, fallback = done.sources or []
    assert stream.seconds == 0 and fallback.source == "fallback"
    assert level_dbfs(seconds(rig.played(), 0.5, 1.5)) > -30
