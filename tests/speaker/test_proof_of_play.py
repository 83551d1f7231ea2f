"""Proof of play at the node: the player reports with each playback the level of each second
it sent to the amplifier and what the microphone by the horn heard (the simulator's model of
the amplifier, horn and microphone); with the amplifier muted the microphone hears only the
background."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory
from speaker_support import NODE, TOKEN, Events, in_s, item, tone

from thanthien.edge.audio import FLOOR_DBFS, AudioClip, WavSink
from thanthien.edge.speaker.media_cache import MediaCache
from thanthien.edge.speaker.player import PlanPlayer, PlayerSettings
from thanthien.edge.speaker.relay import AmplifierRelay
from thanthien.protocol.payloads import Plan
from thanthien.sim.acoustics import NOISE_DBFS, SimAcoustics

pytestmark = pytest.mark.timeout(30)

FAST = PlayerSettings(warmup_s=0.1, relay_off_delay_s=0.1, prepare_s=0.1)


class Rig:
    def __init__(self, tmp: Path) -> None:
        self.relay = AmplifierRelay(17, pin_factory=MockFactory())
        self.acoustics = SimAcoustics(lambda: self.relay.is_on, seed=1)
        self.sink = WavSink(tmp / "sink", realtime=True, hears=self.acoustics)
        self.cache = MediaCache(tmp / "cache", base_url=None, token=TOKEN)
        self.events = Events()
        self.player = PlanPlayer(NODE, self.sink, self.cache, on_event=self.events, relay=self.relay,
                                 settings=FAST)
        self.player.start()

    def play(self, occ: str, clip: AudioClip) -> None:
        sha = self.cache.put(clip.to_wav())
        now = datetime.now(UTC)
        self.player.set_plan(Plan(node=NODE, revision=len(self.events.items) + 1, generated_at=now,
                                  valid_until=now + timedelta(days=1),
                                  items=[item(occ, in_s(0.3), sha, duration=clip.duration_s)]))

    def close(self) -> None:
        self.player.close()
        self.relay.close()


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = Rig(tmp_path)
    yield r
    r.close()


def test_finished_report_carries_the_level_sent_and_heard_each_second(rig: Rig):
    rig.play("o1", tone(2.0))
    levels = rig.events.wait_for("o1", "finished").levels
    assert levels is not None and levels.step_s == 1
    assert len(levels.sent_dbfs) == 2 and all(v > -30 for v in levels.sent_dbfs)
    assert levels.heard_dbfs is not None
    assert all(h > -40 for h in levels.heard_dbfs)  # the amplifier was on: the horn was heard


def test_muted_amplifier_sends_audio_that_the_microphone_does_not_hear(rig: Rig):
    rig.acoustics.mute()
    rig.play("o1", tone(2.0))
    levels = rig.events.wait_for("o1", "finished").levels
    assert levels is not None and all(v > -30 for v in levels.sent_dbfs)
    assert levels.heard_dbfs is not None
    assert all(abs(h - NOISE_DBFS) <= 2.1 for h in levels.heard_dbfs)


def test_a_silent_file_is_reported_at_the_floor_level(rig: Rig):
    rig.play("o1", AudioClip(bytes(2 * 8000 * 2), 8000, 1, "silence"))
    levels = rig.events.wait_for("o1", "finished").levels
    assert levels is not None and levels.sent_dbfs == [FLOOR_DBFS, FLOOR_DBFS]


def test_an_interrupted_playback_reports_the_seconds_it_played(rig: Rig):
    rig.play("o1", tone(5.0))
    rig.events.wait_for("o1", "started")
    threading.Event().wait(1.3)  # the sink plays in real time: let a second and a bit go out
    rig.player.stop()
    levels = rig.events.wait_for("o1", "interrupted").levels
    assert levels is not None and 1 <= len(levels.sent_dbfs) <= 3
