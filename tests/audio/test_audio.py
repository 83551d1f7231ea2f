"""The audio seam: clips, volume and the WAV sink the simulator and tests listen to."""

from __future__ import annotations

import array
import math
import threading
from pathlib import Path

import pytest

from thanthien.edge.audio import FLOOR_DBFS, AudioClip, NullOutput, WavSink, level_dbfs, open_output


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


def test_level_of_a_full_scale_sine_is_three_db_below_full_scale_and_silence_is_the_floor():
    assert level_dbfs(tone(1.0, amplitude=32767).frames) == pytest.approx(-3.0, abs=0.1)
    assert level_dbfs(bytes(16000)) == FLOOR_DBFS


def test_wav_sink_reports_the_level_of_each_second_it_sent_after_the_volume(tmp_path: Path):
    clip = AudioClip(tone(1.0, amplitude=20000).frames + bytes(16000), 8000, 1, "tone then silence")
    with WavSink(tmp_path) as sink:
        result = sink.play(clip, volume=50)
    loud, quiet = result.sent_dbfs
    assert loud == pytest.approx(level_dbfs(tone(1.0, amplitude=10000).frames), abs=0.2)
    assert quiet == FLOOR_DBFS
    assert result.heard_dbfs is None  # no microphone fitted
    assert sink.entries()[0]["sent_dbfs"] == [loud, quiet]


def test_wav_sink_microphone_hears_each_second_as_it_plays(tmp_path: Path):
    heard_calls: list[float] = []

    def hears(level: float) -> float:
        heard_calls.append(level)
        return level - 10

    with WavSink(tmp_path, hears=hears) as sink:
        result = sink.play(tone(2.0, amplitude=10000))
    assert result.heard_dbfs == tuple(round(v - 10, 1) for v in result.sent_dbfs)
    assert len(heard_calls) == 2


def test_wav_stream_keeps_what_was_written_as_one_file_with_its_levels(tmp_path: Path):
    with WavSink(tmp_path) as sink:
        stream = sink.open_stream(8000, 1, label="relay", volume=100)
        for _ in range(4):
            stream.write(tone(0.5).frames)
        result = stream.close()
    [entry] = sink.entries()
    assert entry["label"] == "relay"
    assert AudioClip.from_wav(tmp_path / entry["file"]).duration_s == pytest.approx(2.0)
    assert len(result.sent_dbfs) == 2
