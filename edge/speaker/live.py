"""Live announcements at the node: the voice of an officer speaking in a browser, relayed by
the hub as :class:`~thanthien.protocol.payloads.LiveFrame` messages on ``node/{node}/live``.

The speaker device hands every frame to the :class:`LiveFeed` of its announcement (the first
frame of an unknown one opens it: a lost ``start`` costs nothing); the plan player plays the
feed as a play-now job of the announcement's priority, so it interrupts lower ones and waits
for higher ones. Playing, the feed writes each piece to the output stream as it arrives and
keeps the delay bounded: pieces that queued up while the amplifier warmed up are dropped down
to ``max_backlog_s``, so the voice is heard live, not seconds late.

It ends ``finished`` on the ``end`` frame, or ``interrupted`` (reported with why) when nothing
came for the frame's ``timeout_s`` (below a second): a node whose stream dropped goes quiet and
says so instead of holding the amplifier on.
"""

from __future__ import annotations

import base64
import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import datetime

from thanthien.edge.audio import AudioOutput
from thanthien.edge.speaker.stream import RelayOutcome
from thanthien.protocol.payloads import LiveFrame, SourceSpan

log = logging.getLogger(__name__)

MAX_BACKLOG_S = 0.25
LIVE_URL = "live:"
"""The ``media_url`` of a live announcement's plan item: it has no file."""
NO_MEDIA = "0" * 64


class LiveFeed:
    def __init__(self, first: LiveFrame, *, clock: Callable[[], float] = time.monotonic,
                 max_backlog_s: float = MAX_BACKLOG_S) -> None:
        self.occurrence_id = first.occurrence_id
        self.sample_rate = first.sample_rate
        self.timeout_s = first.timeout_s
        self.clock = clock
        self.max_backlog = int(max_backlog_s * first.sample_rate) * 2
        self._queue: queue.Queue[bytes | None] = queue.Queue()
        self._last_seq = -1
        self._lock = threading.Lock()
        self.ended = False
        self.last_frame_at = clock()
        self.first_write_at: datetime | None = None
        """Wall time of the first piece written to the output (the latency benchmark reads it)."""
        self.dropped_s = 0.0
        self.push(first)

    def push(self, frame: LiveFrame) -> None:
        """Take a frame (any thread); repeats and frames older than the last one are dropped."""
        with self._lock:
            if self.ended or frame.seq <= self._last_seq:
                return
            self._last_seq = frame.seq
            self.last_frame_at = self.clock()
            if frame.kind == "audio" and frame.pcm_b64:
                self._queue.put(base64.b64decode(frame.pcm_b64))
            elif frame.kind == "end":
                self.ended = True
                self._queue.put(None)
            else:
                self._queue.put(b"")  # start: proof of life

    def play(self, output: AudioOutput, *, stop: threading.Event, volume: int) -> RelayOutcome:
        out = output.open_stream(self.sample_rate, 1, label=f"live:{self.occurrence_id}", volume=volume)
        written = 0
        reason = ""
        interrupted = False
        self._drain_backlog()
        try:
            while not stop.is_set():
                try:
                    piece = self._queue.get(timeout=min(self.timeout_s, 0.1))
                except queue.Empty:
                    if self.clock() - self.last_frame_at >= self.timeout_s:
                        reason = ("mất luồng phát trực tiếp (không nhận được âm thanh "
                                  f"{self.timeout_s:g} giây)")
                        interrupted = True
                        break
                    continue
                if piece is None:
                    break
                if piece:
                    if self.first_write_at is None:
                        self.first_write_at = datetime.now().astimezone()
                    out.write(piece)
                    written += len(piece)
                if self._queue.qsize() > 3:
                    self._drain_backlog()
            interrupted = interrupted or stop.is_set()
        finally:
            result = out.close(interrupted=interrupted)
        seconds = round(written / (2 * self.sample_rate), 1)
        if reason:
            log.warning("live %s stopped: %s", self.occurrence_id, reason)
        return RelayOutcome(result, [SourceSpan(source="live", seconds=seconds, reason=reason[:200])],
                            reason)

    def _drain_backlog(self) -> None:
        """Drop the oldest queued audio beyond ``max_backlog`` (it queued while nothing played)."""
        with self._lock:
            self._drain_locked()

    def _drain_locked(self) -> None:
        pieces: list[bytes | None] = []
        while True:
            try:
                pieces.append(self._queue.get_nowait())
            except queue.Empty:
                break
        total = sum(len(p) for p in pieces if p)
        keep: list[bytes | None] = []
        for p in pieces:
            if p and total > self.max_backlog:
                total -= len(p)
                self.dropped_s += len(p) / (2 * self.sample_rate)
                continue
            keep.append(p)
        for p in keep:
            self._queue.put(p)
