"""The hub's half of a live announcement: what the browser says goes out at once to every
targeted speaker as :class:`~thanthien.protocol.payloads.LiveFrame` messages on
``node/{node}/live`` (QoS 0), and is kept for the recording.

The rules (who, where, the broadcast log) are in ``hub/services/live.py``; this is transport.
While the officer holds the button but says nothing the browser still sends (silent) audio,
so a node that hears nothing for ``timeout_s`` knows its stream dropped.
"""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Callable
from datetime import datetime

from thanthien.hub.services.live import SAMPLE_RATE, LiveOpened
from thanthien.mqtt import MqttLink
from thanthien.protocol import Topics
from thanthien.protocol.payloads import MAX_LIVE_PCM_BYTES, LiveFrame

log = logging.getLogger(__name__)

NODE_TIMEOUT_S = 0.8
"""A node stops an announcement it heard nothing of for this long (and reports it)."""
MAX_RECORDING_BYTES = 2 * SAMPLE_RATE * 1800


class LiveRelay:
    def __init__(self, link: MqttLink, topics: Topics, opened: LiveOpened, *,
                 clock: Callable[[], datetime], sample_rate: int = SAMPLE_RATE) -> None:
        self.link = link
        self.topics = topics
        self.opened = opened
        self.clock = clock
        self.sample_rate = sample_rate
        self._seq = 0
        self._lock = threading.Lock()
        self._recording = bytearray()
        self._pending = bytearray()  # an odd byte carried over to the next piece
        self.ended = False

    def _send(self, kind: str, pcm: bytes = b"") -> None:
        o = self.opened
        frame = LiveFrame(
            occurrence_id=o.occurrence_id, seq=self._seq, kind=kind, sent_at=self.clock(),  # type: ignore[arg-type]
            broadcast_id=o.broadcast_id, title=o.title, priority=o.priority, volume=o.volume,  # type: ignore[arg-type]
            timeout_s=NODE_TIMEOUT_S, sample_rate=self.sample_rate,
            pcm_b64=base64.b64encode(pcm).decode("ascii") if pcm else "",
        ).to_bytes()
        self._seq += 1
        for node in o.targets:
            self.link.publish(self.topics.live(node), frame, qos=0)

    def start(self) -> None:
        with self._lock:
            self._send("start")

    def audio(self, data: bytes) -> None:
        """A piece of the voice from the browser (16-bit mono PCM at ``sample_rate``)."""
        with self._lock:
            if self.ended:
                return
            self._pending += data
            whole = len(self._pending) - len(self._pending) % 2
            pcm, self._pending = bytes(self._pending[:whole]), self._pending[whole:]
            for i in range(0, len(pcm), MAX_LIVE_PCM_BYTES):
                piece = pcm[i:i + MAX_LIVE_PCM_BYTES]
                self._send("audio", piece)
                if len(self._recording) < MAX_RECORDING_BYTES:
                    self._recording += piece

    def end(self) -> bytes:
        """Close the announcement on every speaker (the ``end`` frame twice: QoS 0 may lose
        one, and a node that missed both stops on its timeout); what was said (PCM)."""
        with self._lock:
            if not self.ended:
                self.ended = True
                self._send("end")
                self._send("end")
            return bytes(self._recording)
