"""The node's audio output seam: PyAudio for the sound card, a WAV sink for the simulator
and tests, a null output that discards.

Every output plays 16-bit PCM clips, blocks until the clip ends or ``stop`` is set, and
reports when it really started. Use as a context manager or call ``close()`` (safe twice).
``open_stream`` plays audio that arrives as it goes (a relayed station, a live announcement):
``write`` chunks, then ``close`` for the same :class:`PlayResult`.

**Proof of play.** Every output meters what it sends to the amplifier: ``PlayResult.sent_dbfs``
is the RMS level of each second of the output (dBFS, after the volume). Where a microphone or a
line-in loopback is fitted (``PyAudioOutput(loopback_device_index=...)``; in the simulator the
WAV sink's ``hears``, a model of the amplifier, horn and microphone) ``heard_dbfs`` is the level
it heard over the same seconds; ``None`` without one. The hub judges them
(``hub/services/proof.py``).
"""

from __future__ import annotations

import array
import io
import json
import logging
import math
import operator
import threading
import wave
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AudioClip:
    """Decoded 16-bit PCM audio."""

    frames: bytes
    sample_rate: int
    channels: int
    label: str = ""

    @property
    def duration_s(self) -> float:
        return len(self.frames) / (2 * self.channels * self.sample_rate)

    @classmethod
    def from_wav(cls, data: bytes | Path, label: str = "") -> AudioClip:
        src = io.BytesIO(data) if isinstance(data, bytes) else str(data)
        with wave.open(src, "rb") as w:
            if w.getsampwidth() != 2:
                raise ValueError(f"only 16-bit PCM WAV is supported (got {8 * w.getsampwidth()}-bit)")
            return cls(w.readframes(w.getnframes()), w.getframerate(), w.getnchannels(), label)

    def to_wav(self) -> bytes:
        buf = io.BytesIO()
        with wave.open(buf, "wb") as w:
            w.setnchannels(self.channels)
            w.setsampwidth(2)
            w.setframerate(self.sample_rate)
            w.writeframes(self.frames)
        return buf.getvalue()

    def scaled(self, volume: int) -> AudioClip:
        """The clip at ``volume`` percent (0-100), clipped to 16-bit range."""
        if volume >= 100:
            return self
        return AudioClip(scale(self.frames, volume), self.sample_rate, self.channels, self.label)


FLOOR_DBFS = -120.0
"""The level of digital silence (and the lowest level ever reported)."""


def level_dbfs(frames: bytes) -> float:
    """RMS level of 16-bit PCM relative to full scale (0 dBFS: a full-scale square wave)."""
    samples = array.array("h", frames[: len(frames) - len(frames) % 2])
    if not samples:
        return FLOOR_DBFS
    mean_square = sum(map(operator.mul, samples, samples)) / len(samples)
    if mean_square <= 0:
        return FLOOR_DBFS
    return max(FLOOR_DBFS, round(10 * math.log10(mean_square / 32768**2), 1))


class LevelMeter:
    """The level of each second of audio as it is written (a last part second of at least a
    quarter of a second counts as a second)."""

    def __init__(self, sample_rate: int, channels: int,
                 hears: Callable[[float], float] | None = None) -> None:
        self._second = 2 * channels * sample_rate
        self._pending = bytearray()
        self.sent: list[float] = []
        self.heard: list[float] | None = [] if hears is not None else None
        self._hears = hears

    def feed(self, frames: bytes) -> None:
        self._pending += frames
        while len(self._pending) >= self._second:
            self._take(bytes(self._pending[: self._second]))
            del self._pending[: self._second]

    def _take(self, frames: bytes) -> None:
        level = level_dbfs(frames)
        self.sent.append(level)
        if self.heard is not None and self._hears is not None:
            self.heard.append(round(self._hears(level), 1))

    def finish(self) -> tuple[tuple[float, ...], tuple[float, ...] | None]:
        if len(self._pending) >= self._second // 4:
            self._take(bytes(self._pending))
        self._pending.clear()
        return tuple(self.sent), None if self.heard is None else tuple(self.heard)


@dataclass(frozen=True)
class PlayResult:
    started_at: datetime
    finished_at: datetime
    interrupted: bool
    sent_dbfs: tuple[float, ...] = ()
    """RMS level of each second sent to the amplifier (after the volume)."""
    heard_dbfs: tuple[float, ...] | None = None
    """What the microphone or line-in loopback heard over the same seconds; ``None``: none fitted."""


class OutputStream(Protocol):
    def write(self, frames: bytes) -> None:
        """Play these 16-bit PCM frames (the stream's rate and channels) after what came before."""
        ...

    def close(self, *, interrupted: bool = False) -> PlayResult: ...


class AudioOutput(Protocol):
    def play(self, clip: AudioClip, *, volume: int = 100,
             stop: threading.Event | None = None) -> PlayResult: ...

    def open_stream(self, sample_rate: int, channels: int, *, label: str = "",
                    volume: int = 100) -> OutputStream: ...

    def close(self) -> None: ...


def scale(frames: bytes, volume: int) -> bytes:
    if volume >= 100:
        return frames
    samples = array.array("h", frames[: len(frames) - len(frames) % 2])
    factor = max(volume, 0) / 100
    return array.array("h", (int(s * factor) for s in samples)).tobytes()


def _now() -> datetime:
    return datetime.now(UTC)


class NullOutput:
    """Discards audio at once (nodes without a speaker)."""

    def play(self, clip: AudioClip, *, volume: int = 100,
             stop: threading.Event | None = None) -> PlayResult:
        now = _now()
        return PlayResult(now, now, False)

    def open_stream(self, sample_rate: int, channels: int, *, label: str = "",
                    volume: int = 100) -> OutputStream:
        return _NullStream(sample_rate, channels)

    def close(self) -> None:
        pass

    def __enter__(self) -> NullOutput:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _NullStream:
    def __init__(self, sample_rate: int, channels: int) -> None:
        self._started = _now()

    def write(self, frames: bytes) -> None:
        pass

    def close(self, *, interrupted: bool = False) -> PlayResult:
        return PlayResult(self._started, _now(), interrupted)


class WavSink:
    """Writes every played clip to ``directory`` as a WAV file and appends a line to
    ``playlog.jsonl`` (start, end, label, file, interrupted, the level of each second sent and
    heard), so tests and the simulator can inspect what a speaker played and when.

    With ``realtime`` the call lasts as long as the clip (interruptible by ``stop``), as a
    sound card would; without it, it returns at once. ``hears`` models what a microphone
    beside the horn picks up: given the level sent in a second, the level heard in it (called
    as that second plays, so a fault that mutes the amplifier mid-clip shows from then on).
    """

    def __init__(self, directory: Path, *, realtime: bool = False,
                 hears: Callable[[float], float] | None = None) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.realtime = realtime
        self.hears = hears
        self._lock = threading.Lock()
        self._count = 0
        self._closed = False

    @property
    def playlog(self) -> Path:
        return self.directory / "playlog.jsonl"

    def play(self, clip: AudioClip, *, volume: int = 100,
             stop: threading.Event | None = None) -> PlayResult:
        if self._closed:
            raise RuntimeError("audio output is closed")
        started = _now()
        played = clip.scaled(volume)
        meter = LevelMeter(clip.sample_rate, clip.channels, self.hears)
        second = 2 * clip.channels * clip.sample_rate
        interrupted = False
        if self.realtime:
            waiter = stop or threading.Event()
            t0 = started.timestamp()
            for offset in range(0, len(played.frames), second):
                chunk = played.frames[offset:offset + second]
                end = offset / second + len(chunk) / second
                if waiter.wait(max(0.0, t0 + end - _now().timestamp())):
                    interrupted = True
                    heard = int((_now().timestamp() - t0) * clip.sample_rate) * 2 * clip.channels
                    meter.feed(played.frames[offset:max(offset, heard)])
                    played = AudioClip(played.frames[:max(offset, heard)], clip.sample_rate,
                                       clip.channels, clip.label)
                    break
                meter.feed(chunk)
        else:
            meter.feed(played.frames)
        finished = _now()
        sent, heard_levels = meter.finish()
        self._record(played, clip.label, volume, started, finished, clip.duration_s, interrupted,
                     sent, heard_levels)
        return PlayResult(started, finished, interrupted, sent, heard_levels)

    def open_stream(self, sample_rate: int, channels: int, *, label: str = "",
                    volume: int = 100) -> OutputStream:
        if self._closed:
            raise RuntimeError("audio output is closed")
        return _WavStream(self, sample_rate, channels, label, volume)

    def _record(self, played: AudioClip, label: str, volume: int, started: datetime,
                finished: datetime, duration_s: float, interrupted: bool, sent: tuple[float, ...],
                heard: tuple[float, ...] | None) -> None:
        with self._lock:
            self._count += 1
            name = f"{started:%Y%m%dT%H%M%S.%f}-{self._count:05d}.wav"
            (self.directory / name).write_bytes(played.to_wav())
            entry = {"file": name, "label": label, "volume": volume,
                     "started_at": started.isoformat(), "finished_at": finished.isoformat(),
                     "duration_s": round(duration_s, 3), "interrupted": interrupted,
                     "sent_dbfs": list(sent), "heard_dbfs": None if heard is None else list(heard)}
            with self.playlog.open("a", encoding="utf-8") as f:
                f.write(json.dumps(entry, ensure_ascii=False) + "\n")

    def entries(self) -> list[dict[str, object]]:
        if not self.playlog.exists():
            return []
        return [json.loads(line) for line in self.playlog.read_text(encoding="utf-8").splitlines()]

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> WavSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _WavStream:
    """A stream into the WAV sink: written as it arrives (the source sets the pace), kept as
    one file and one playlog line at ``close``."""

    def __init__(self, sink: WavSink, sample_rate: int, channels: int, label: str, volume: int) -> None:
        self._sink = sink
        self._rate, self._channels, self._label, self._volume = sample_rate, channels, label, volume
        self._frames = bytearray()
        self._meter = LevelMeter(sample_rate, channels, sink.hears)
        self._started = _now()

    def write(self, frames: bytes) -> None:
        scaled = scale(frames, self._volume)
        self._frames += scaled
        self._meter.feed(scaled)

    def close(self, *, interrupted: bool = False) -> PlayResult:
        finished = _now()
        sent, heard = self._meter.finish()
        clip = AudioClip(bytes(self._frames), self._rate, self._channels, self._label)
        self._sink._record(clip, self._label, self._volume, self._started, finished, clip.duration_s,
                           interrupted, sent, heard)
        return PlayResult(self._started, finished, interrupted, sent, heard)


class _Loopback:
    """A PyAudio input (a microphone by the horn or a line-in from the amplifier's output)
    metered while a clip plays."""

    def __init__(self, pa: object, pyaudio_mod: object, device_index: int, sample_rate: int) -> None:
        self.levels = LevelMeter(sample_rate, 1)
        self._stream = pa.open(  # type: ignore[attr-defined]
            format=pyaudio_mod.paInt16, channels=1, rate=sample_rate, input=True,  # type: ignore[attr-defined]
            input_device_index=device_index, stream_callback=self._on_audio)

    def _on_audio(self, data: bytes, _count: int, _info: object, _flags: int) -> tuple[None, int]:
        self.levels.feed(data)
        return None, 0  # paContinue

    def stop(self) -> tuple[float, ...]:
        self._stream.stop_stream()
        self._stream.close()
        return self.levels.finish()[0]


class PyAudioOutput:
    """The sound card through PyAudio (PortAudio). One stream per clip, written in chunks
    so that ``stop`` interrupts within about 50 ms. With ``loopback_device_index`` an input
    (microphone or line-in) is metered while each clip plays."""

    CHUNK_S = 0.05

    def __init__(self, device_index: int | None = None, *,
                 loopback_device_index: int | None = None) -> None:
        import pyaudio  # imported here: the simulator and tests do not need a sound card

        self._pyaudio_mod = pyaudio
        self._pa = pyaudio.PyAudio()
        self._device_index = device_index
        self._loopback_index = loopback_device_index
        self._closed = False

    def _listen(self, sample_rate: int) -> _Loopback | None:
        if self._loopback_index is None:
            return None
        try:
            return _Loopback(self._pa, self._pyaudio_mod, self._loopback_index, sample_rate)
        except OSError as exc:
            log.error("loopback input %s unavailable: %s", self._loopback_index, exc)
            return None

    def play(self, clip: AudioClip, *, volume: int = 100,
             stop: threading.Event | None = None) -> PlayResult:
        if self._closed:
            raise RuntimeError("audio output is closed")
        stream = self.open_stream(clip.sample_rate, clip.channels, label=clip.label, volume=volume)
        step = int(clip.sample_rate * self.CHUNK_S) * 2 * clip.channels
        interrupted = False
        try:
            for offset in range(0, len(clip.frames), step):
                if stop is not None and stop.is_set():
                    interrupted = True
                    break
                stream.write(clip.frames[offset:offset + step])
        finally:
            result = stream.close(interrupted=interrupted)
        return result

    def open_stream(self, sample_rate: int, channels: int, *, label: str = "",
                    volume: int = 100) -> OutputStream:
        if self._closed:
            raise RuntimeError("audio output is closed")
        stream = self._pa.open(
            format=self._pyaudio_mod.paInt16, channels=channels, rate=sample_rate,
            output=True, output_device_index=self._device_index,
        )
        return _PyAudioStream(stream, LevelMeter(sample_rate, channels), volume, self._listen(sample_rate))

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._pa.terminate()

    def __enter__(self) -> PyAudioOutput:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _PyAudioStream:
    def __init__(self, stream: object, meter: LevelMeter, volume: int, loopback: _Loopback | None) -> None:
        self._stream = stream
        self._meter = meter
        self._volume = volume
        self._loopback = loopback
        self._started = _now()

    def write(self, frames: bytes) -> None:
        scaled = scale(frames, self._volume)
        self._stream.write(scaled)  # type: ignore[attr-defined]
        self._meter.feed(scaled)

    def close(self, *, interrupted: bool = False) -> PlayResult:
        try:
            self._stream.stop_stream()  # type: ignore[attr-defined]
            self._stream.close()  # type: ignore[attr-defined]
        finally:
            heard = self._loopback.stop() if self._loopback is not None else None
        sent, _ = self._meter.finish()
        return PlayResult(self._started, _now(), interrupted, sent, heard)


def open_output(kind: str, *, wav_dir: Path | None = None, device_index: int | None = None,
                realtime: bool = False, loopback_device_index: int | None = None) -> AudioOutput:
    """The output named in the config's ``[audio] output``."""
    if kind == "pyaudio":
        return PyAudioOutput(device_index, loopback_device_index=loopback_device_index)
    if kind == "wav":
        if wav_dir is None:
            raise ValueError("the wav output needs a directory")
        return WavSink(wav_dir, realtime=realtime)
    if kind == "null":
        return NullOutput()
    raise ValueError(f"unknown audio output {kind!r}")
