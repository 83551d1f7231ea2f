"""Relays: a plan item that plays the district or province station's Icecast/HTTP stream for
its slot (``PlanItem.stream``), watched as it plays.

ffmpeg (a Debian package on every node, as for the camera probes) opens the URL and decodes
whatever the station sends (MP3, AAC, Ogg) to 16-bit mono PCM on a pipe; a reader thread hands
it over in tenths of a second, and the relay writes it to the node's output stream
(``AudioOutput.open_stream``), paced to real time. The stream **fails** when

* no audio arrives for ``stall_s`` (the station or the network died; ffmpeg's own read timeout
  is the same), or ffmpeg ends or cannot open the URL (refused, 404, not audio);
* the audio stays below ``silence_dbfs`` for ``silence_s`` (the station is on air but silent).

Then ffmpeg is stopped and the rest of the slot gets the fallback: the item's file
(``fallback = "file"``; played once, cut at the slot's end; silence if it is not in the cache)
or silence (``"silence"``: nothing goes out until the slot ends). The relay does not go back to
the stream within the slot. ``RelayOutcome.sources`` says what really went out, in order
(``stream`` 12 s, ``fallback`` 48 s, or ``silence``), with why the fallback began.
"""

from __future__ import annotations

import logging
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from thanthien.edge.audio import AudioClip, AudioOutput, OutputStream, PlayResult, level_dbfs
from thanthien.protocol.payloads import PlanItem, SourceSpan, StreamSource

log = logging.getLogger(__name__)

RATE = 22050
CHUNK_S = 0.1
LEAD_S = 0.3
"""The output is kept at most this far ahead of real time (a sound card's buffer)."""


@dataclass
class RelayOutcome:
    result: PlayResult
    sources: list[SourceSpan] = field(default_factory=list)
    detail: str = ""


class _Decoder:
    """ffmpeg decoding ``url`` to PCM; ``chunks`` receives bytes, then ``None`` at the end."""

    def __init__(self, ffmpeg: str, url: str, stall_s: float) -> None:
        self.chunks: queue.Queue[bytes | None] = queue.Queue()
        self.error = ""
        self._proc = subprocess.Popen(
            [ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-fflags", "nobuffer",
             "-probesize", "2048", "-analyzeduration", "0",
             "-rw_timeout", str(int(stall_s * 1_000_000)), "-i", url,
             "-vn", "-f", "s16le", "-ac", "1", "-ar", str(RATE), "-flush_packets", "1", "pipe:1"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._reader = threading.Thread(target=self._read, name="relay-decoder", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        size = int(RATE * CHUNK_S) * 2
        try:
            while True:
                data = self._proc.stdout.read(size)
                if not data:
                    break
                self.chunks.put(data)
        finally:
            self.chunks.put(None)

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=2)
        if self._proc.stderr is not None and not self._proc.stderr.closed:
            lines = self._proc.stderr.read().decode("utf-8", "replace").strip().splitlines()
            self._proc.stderr.close()
            self.error = lines[-1] if lines else ""
        self._reader.join(timeout=2)
        if self._proc.stdout is not None:
            self._proc.stdout.close()


class StreamRelay:
    def __init__(self, ffmpeg: str | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.ffmpeg = ffmpeg or shutil.which("ffmpeg") or "ffmpeg"
        self.clock = clock

    def play(self, item: PlanItem, output: AudioOutput, *, stop: threading.Event, volume: int,
             fallback: AudioClip | None) -> RelayOutcome:
        """Relay ``item.stream`` for ``item.duration_s`` (the slot) or until ``stop``."""
        src = item.stream
        assert src is not None
        t0 = self.clock()
        end = t0 + item.duration_s
        out = output.open_stream(RATE, 1, label=f"relay:{item.occurrence_id}", volume=volume)
        pacer = _Pacer(self.clock, stop, t0)
        sources: list[SourceSpan] = []
        interrupted = False
        try:
            reason, streamed = self._relay(src, out, pacer, end, stop)
            sources.append(SourceSpan(source="stream", seconds=round(streamed, 1)))
            if reason is None:
                interrupted = stop.is_set()
                return RelayOutcome(out.close(interrupted=interrupted), sources)
            log.warning("relay %s: %s; falling back to %s", item.occurrence_id, reason, src.fallback)
            left = max(0.0, end - self.clock())
            if src.fallback == "file" and fallback is not None and left > 0:
                played = self._fallback(fallback, out, pacer, end, stop)
                sources.append(SourceSpan(source="fallback", seconds=round(played, 1), reason=reason[:200]))
                left = max(0.0, end - self.clock())
                if left > 0.05 and not stop.is_set():
                    sources.append(SourceSpan(source="silence", seconds=round(left, 1),
                                              reason="hết tệp dự phòng"))
            elif left > 0:
                why = reason if src.fallback == "silence" else f"{reason}; tệp dự phòng chưa có"
                sources.append(SourceSpan(source="silence", seconds=round(left, 1), reason=why[:200]))
            if not stop.is_set():
                stop.wait(max(0.0, end - self.clock()))
            interrupted = stop.is_set()
            detail = f"tiếp sóng {streamed:.0f} giây rồi {reason}"
            return RelayOutcome(out.close(interrupted=interrupted), sources, detail[:500])
        except BaseException:
            out.close(interrupted=True)
            raise

    def _relay(self, src: StreamSource, out: OutputStream, pacer: _Pacer, end: float,
               stop: threading.Event) -> tuple[str | None, float]:
        """Play the stream until the slot ends (``None``) or it fails (the reason); the seconds
        of stream that went out."""
        try:
            decoder = _Decoder(self.ffmpeg, src.url, src.stall_s)
        except OSError as exc:
            return f"không chạy được ffmpeg ({exc.strerror or exc})", 0.0
        streamed = 0.0
        quiet_since: float | None = None
        try:
            while not stop.is_set():
                now = self.clock()
                if now >= end:
                    return None, streamed
                try:
                    chunk = decoder.chunks.get(timeout=min(src.stall_s, end - now, 0.5))
                except queue.Empty:
                    if self.clock() - pacer.last_audio >= src.stall_s:
                        return f"luồng không có dữ liệu {src.stall_s:g} giây (mất tín hiệu)", streamed
                    continue
                if chunk is None:
                    decoder.close()
                    why = decoder.error[:120]
                    return f"luồng bị ngắt{f' ({why})' if why else ''}", streamed
                pacer.write(out, chunk)
                streamed += len(chunk) / (2 * RATE)
                if level_dbfs(chunk) < src.silence_dbfs:
                    quiet_since = quiet_since if quiet_since is not None else self.clock()
                    if self.clock() - quiet_since >= src.silence_s:
                        return f"luồng im lặng {src.silence_s:g} giây", streamed
                else:
                    quiet_since = None
            return None, streamed
        finally:
            decoder.close()

    def _fallback(self, clip: AudioClip, out: OutputStream, pacer: _Pacer, end: float,
                  stop: threading.Event) -> float:
        frames = clip.frames if (clip.sample_rate, clip.channels) == (RATE, 1) else _resample(clip)
        step = int(RATE * CHUNK_S) * 2
        played = 0.0
        for offset in range(0, len(frames), step):
            if stop.is_set() or self.clock() >= end:
                break
            chunk = frames[offset:offset + step]
            pacer.write(out, chunk)
            played += len(chunk) / (2 * RATE)
        return played


class _Pacer:
    """Writes to the output no further ahead of real time than ``LEAD_S``."""

    def __init__(self, clock: Callable[[], float], stop: threading.Event, t0: float) -> None:
        self.clock = clock
        self.stop = stop
        self.t0 = t0
        self.written_s = 0.0
        self.last_audio = t0

    def write(self, out: OutputStream, chunk: bytes) -> None:
        ahead = self.t0 + self.written_s - LEAD_S - self.clock()
        if ahead > 0:
            self.stop.wait(ahead)
        out.write(chunk)
        self.written_s += len(chunk) / (2 * RATE)
        self.last_audio = self.clock()


def _resample(clip: AudioClip) -> bytes:
    """The clip as mono at :data:`RATE` (nearest sample; a fallback announcement, not music)."""
    import array

    samples = array.array("h", clip.frames)
    if clip.channels > 1:
        samples = array.array("h", (sum(samples[i:i + clip.channels]) // clip.channels
                                    for i in range(0, len(samples), clip.channels)))
    n = int(len(samples) * RATE / clip.sample_rate)
    ratio = clip.sample_rate / RATE
    return array.array("h", (samples[min(int(i * ratio), len(samples) - 1)] for i in range(n))).tobytes()
