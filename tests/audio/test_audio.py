"""The audio seam: clips, volume and the WAV sink the simulator and tests listen to."""

from __future__ import annotations

import array
import math
import threading
from pathlib import Path

import pytest

from thanthien.edge.audio import AudioClip, NullOutput, WavSink, open_output


def tone(seconds: float = 0.2, rate: int = 8000, amplitude: int = 10000) -> AudioClip:
    samples = array.array("h", (int(amplitude * math.sin(2 * math.pi * 440 * i / rate))
                                for i in range(int(seconds * rate))))
    return AudioClip(samples.tobytes(), rate, 1, "tone")


def test_wav_round_trip_keeps_samples():
    clip = tone()
    again = AudioClip.from_wav(clip.to_wav())
    assert again.frames == clip.frames
    assert again.sample_rate == 8000
    assert again.duration_s == pytest.approx(0.2)


def test_volume_scales_samples():
    clip = tone()
    half = array.array("h", clip.scaled(50).frames)
    assert max(half) == pytest.approx(max(array.array("h", clip.frames)) / 2, abs=1)


def test_eight_bit_wav_is_refused(tmp_path: Path):
    import wave

    path = tmp_path / "x.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(8000)
        w.writeframes(b"\x80" * 100)
    with pytest.raises(ValueError, match="16-bit"):
        AudioClip.from_wav(path)


def test_wav_sink_records_what_it_played(tmp_path: Path):
    with WavSink(tmp_path) as sink:
        result = sink.play(tone(), volume=80)
    [entry] = sink.entries()
    assert entry["label"] == "tone"
    assert entry["volume"] == 80
    assert entry["interrupted"] is False
    written = AudioClip.from_wav(tmp_path / entry["file"])
    assert written.duration_s == pytest.approx(0.2)
    assert result.started_at <= result.finished_at


def test_realtime_wav_sink_is_interrupted_by_stop(tmp_path: Path):
    sink = WavSink(tmp_path, realtime=True)
    stop = threading.Event()
    stop.set()
    result = sink.play(tone(seconds=30), stop=stop)
    assert result.interrupted
    assert sink.entries()[0]["interrupted"] is True


def test_closed_sink_refuses_to_play_and_closes_twice(tmp_path: Path):
    sink = WavSink(tmp_path)
    sink.close()
    sink.close()
    with pytest.raises(RuntimeError, match="closed"):
        sink.play(tone())


def test_open_output_builds_the_configured_kind(tmp_path: Path):
    assert isinstance(open_output("null"), NullOutput)
    assert isinstance(open_output("wav", wav_dir=tmp_path), WavSink)
    with pytest.raises(ValueError, match="directory"):
        open_output("wav")
