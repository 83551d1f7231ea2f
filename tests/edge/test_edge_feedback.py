"""Feedback to the citizen: LED blink and "Xin cảm ơn", after the rating is stored and
never in the way of the next press."""

from __future__ import annotations

import shutil
import threading

import pytest
from edge_helpers import (
    BOX_1_PINS,
    BOX_2_PINS,
    LED_1,
    Outcomes,
    bouncy_press,
    edge_settings,
    recording_factory,
)

from thanthien.edge.agent import EdgeAgent
from thanthien.edge.audio import AudioClip, NullOutput, PlayResult, WavSink
from thanthien.edge.devices.rating_box import RatingBoxes
from thanthien.edge.sounds import THANK_YOU_TEXT, chime, thank_you_clip

HAS_ESPEAK = shutil.which("espeak-ng") is not None
SPOKEN = THANK_YOU_TEXT if HAS_ESPEAK else "chime"


class RecordingOutput(NullOutput):
    """Records the outbox depth at the moment each clip starts; can hold playback."""

    def __init__(self, agent_ref: list[EdgeAgent], hold: threading.Event | None = None) -> None:
        self.agent_ref = agent_ref
        self.hold = hold
        self.depth_at_play: list[int] = []
        self.labels: list[str] = []
        self.started = threading.Event()

    def play(self, clip: AudioClip, *, volume: int = 100, stop: threading.Event | None = None) -> PlayResult:
        outbox = self.agent_ref[0].outbox
        assert outbox is not None
        self.depth_at_play.append(outbox.depth())
        self.labels.append(clip.label)
        self.started.set()
        if self.hold is not None:
            self.hold.wait(10)
        return super().play(clip, volume=volume, stop=stop)


@pytest.fixture
def make_agent(tmp_path):
    agents: list[EdgeAgent] = []

    def factory(audio, **kwargs) -> tuple[EdgeAgent, Outcomes]:
        # port 9 (discard): no broker needed, feedback is local
        agent = EdgeAgent(edge_settings(tmp_path / "node", 9, response_interval_s=0, **kwargs),
                          audio=audio, pin_factory=recording_factory())
        agents.append(agent)
        if isinstance(audio, RecordingOutput):
            audio.agent_ref.append(agent)
        outcomes = Outcomes()
        agent.start()
        agent.device(RatingBoxes).add_listener(outcomes)
        return agent, outcomes

    yield factory
    for agent in agents:
        agent.stop()


def test_thank_you_plays_only_after_the_rating_is_in_the_outbox(make_agent):
    audio = RecordingOutput([])
    agent, outcomes = make_agent(audio)
    bouncy_press(agent.pin_factory.pin(BOX_1_PINS[4]), lambda: outcomes.wait_count(1))
    assert audio.started.wait(5)
    assert audio.depth_at_play == [1]
    assert audio.labels == [SPOKEN]


def test_box_led_blinks_after_a_counted_press(make_agent):
    agent, outcomes = make_agent(NullOutput())
    led = agent.pin_factory.pin(LED_1)
    bouncy_press(agent.pin_factory.pin(BOX_1_PINS[2]), lambda: outcomes.wait_count(1))
    assert led.wait_changes(2)  # on, off, ...


def test_a_playing_thank_you_does_not_block_the_next_press(make_agent):
    hold = threading.Event()
    audio = RecordingOutput([], hold=hold)
    agent, outcomes = make_agent(audio)
    try:
        bouncy_press(agent.pin_factory.pin(BOX_1_PINS[4]), lambda: outcomes.wait_count(1))
        assert audio.started.wait(5)  # the first thank-you is playing and held there
        bouncy_press(agent.pin_factory.pin(BOX_2_PINS[3]), lambda: outcomes.wait_count(2))
        assert [o.counted for o in outcomes.items] == [True, True]
        assert agent.outbox is not None and agent.outbox.depth() == 2
    finally:
        hold.set()


def test_wav_output_records_the_spoken_thank_you(make_agent, tmp_path):
    sink = WavSink(tmp_path / "wav")
    agent, outcomes = make_agent(sink)
    bouncy_press(agent.pin_factory.pin(BOX_1_PINS[1]), lambda: outcomes.wait_count(1))
    feedback = agent.device(RatingBoxes).feedback
    assert feedback is not None
    agent.stop()  # joins the feedback worker after it played
    assert [e["label"] for e in sink.entries()] == [SPOKEN]


@pytest.mark.skipif(not HAS_ESPEAK, reason="espeak-ng is not installed")
def test_thank_you_is_rendered_once_and_cached(tmp_path, monkeypatch):
    first = thank_you_clip(tmp_path)
    assert first.label == THANK_YOU_TEXT and first.duration_s > 0.3
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # espeak-ng no longer reachable
    assert thank_you_clip(tmp_path) == first


def test_without_espeak_ng_a_chime_plays_and_a_warning_is_logged(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    clip = thank_you_clip(tmp_path)
    assert clip == chime()
    assert "espeak-ng is not available" in caplog.text


def test_unusable_audio_output_leaves_the_buttons_working(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the wav directory should be")
    settings = edge_settings(tmp_path / "node", 9, response_interval_s=0,
                             audio={"output": "wav", "wav_dir": str(blocker / "wav")})
    with EdgeAgent(settings) as agent:
        outcomes = Outcomes()
        agent.device(RatingBoxes).add_listener(outcomes)
        bouncy_press(agent.pin_factory.pin(BOX_1_PINS[3]), lambda: outcomes.wait_count(1))
        assert outcomes.items[0].counted
        assert isinstance(agent.audio, NullOutput)
