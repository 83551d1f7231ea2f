"""The node's audio output seam: PyAudio for the sound card, a WAV sink for the simulator
and tests, a null output that discards.

Every output plays 16-bit PCM clips, blocks until the clip ends or ``stop`` is set, and
reports when it really started. Use as a context manager or call ``close()`` (safe twice).
"""

from __future__ import annotations

import array
import io
import json
import logging
import threading
import wave
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
        samples = array.array("h", self.frames)
        factor = max(volume, 0) / 100
        samples = array.array("h", (int(s * factor) for s in samples))
        return AudioClip(samples.tobytes(), self.sample_rate, self.channels, self.label)


@dataclass(frozen=True)
class PlayResult:
    started_at: datetime
    finished_at: datetime
    interrupted: bool


class AudioOutput(Protocol):
    def play(self, clip: AudioClip, *, volume: int = 100,
             stop: threading.Event | None = None) -> PlayResult: ...

    def close(self) -> None: ...


def _now() -> datetime:
    return datetime.now(UTC)


class NullOutput:
    """Discards audio at once (nodes without a speaker)."""

    def play(self, clip: AudioClip, *, volume: int = 100,
             stop: threading.Event | None = None) -> PlayResult:
        now = _now()
        return PlayResult(now, now, False)

    def close(self) -> None:
        pass

    def __enter__(self) -> NullOutput:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class WavSink:
    """Writes every played clip to ``directory`` as a WAV file and appends a line to
    ``playlog.jsonl`` (start, end, label, file, interrupted), so tests and the simulator
    can inspect what a speaker played and when.

    With ``realtime`` the call lasts as long as the clip (interruptible by ``stop``), as a
    sound card would; without it, it returns at once.
    """

    def __init__(self, directory: Path, *, realtime: bool = False) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.realtime = realtime
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
        interrupted = False
        if self.realtime:
            waiter = stop or threading.Event()
            interrupted = waiter.wait(clip.duration_s)
        finished = _now()
        played = clip.scaled(volume)
        if interrupted:  # keep only what was heard
            heard = (finished - started).total_seconds()
            n = int(heard * clip.sample_rate) * 2 * clip.channels
            played = AudioClip(played.frames[:n], clip.sample_rate, clip.channels, clip.label)
        with self._lock:
            self._count += 1
            name = f"{started:%Y%m%dT%H%M%S.%f}-{self._count:05d}.wav"
            (self.directory / name).write_bytes(played.to_wav())
            entry = {"file": name, "label": clip.label, "volume": volume,
                     "started_at": started.isoformat(), "finished_at": finished.isoformat(),
                     "duration_s": round(clip.duration_s, 3), "interrupted": interrupted}
            with self.playlog.open("a", encoding="utf-8") as f:
                f.write(json.dumps(entry, ensure_ascii=False) + "\n")
        return PlayResult(started, finished, interrupted)

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


class PyAudioOutput:
    """The sound card through PyAudio (PortAudio). One stream per clip, written in chunks
    so that ``stop`` interrupts within about 50 ms."""

    CHUNK_S = 0.05

    def __init__(self, device_index: int | None = None) -> None:
        import pyaudio  # imported here: the simulator and tests do not need a sound card

        self._pyaudio_mod = pyaudio
        self._pa = pyaudio.PyAudio()
        self._device_index = device_index
        self._closed = False

    def play(self, clip: AudioClip, *, volume: int = 100,
             stop: threading.Event | None = None) -> PlayResult:
        if self._closed:
            raise RuntimeError("audio output is closed")
        played = clip.scaled(volume)
        stream = self._pa.open(
            format=self._pyaudio_mod.paInt16, channels=clip.channels, rate=clip.sample_rate,
            output=True, output_device_index=self._device_index,
        )
        started = _now()
        interrupted = False
        step = int(clip.sample_rate * self.CHUNK_S) * 2 * clip.channels
        try:
            for offset in range(0, len(played.frames), step):
                if stop is not None and stop.is_set():
                    interrupted = True
                    break
                stream.write(played.frames[offset:offset + step])
        finally:
            stream.stop_stream()
            stream.close()
        return PlayResult(started, _now(), interrupted)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._pa.terminate()

    def __enter__(self) -> PyAudioOutput:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_output(kind: str, *, wav_dir: Path | None = None, device_index: int | None = None,
                realtime: bool = False) -> AudioOutput:
    """The output named in the config's ``[audio] output``."""
    if kind == "pyaudio":
        return PyAudioOutput(device_index)
    if kind == "wav":
        if wav_dir is None:
            raise ValueError("the wav output needs a directory")
        return WavSink(wav_dir, realtime=realtime)
    if kind == "null":
        return NullOutput()
    raise ValueError(f"unknown audio output {kind!r}")
