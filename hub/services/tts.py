"""Vietnamese text-to-speech for announcements: espeak-ng renders the text with a Northern,
Central or Southern voice at a chosen speed, optionally framed by a chime, and the result
goes through the media library's conversion, loudness normalisation and store like any
upload.

The chime is synthesised here (no sound files shipped): three bell-like notes rising
(C5-E5-G5) before the announcement and falling after it, as public-address systems do.
"""

from __future__ import annotations

import array
import logging
import math
import re
import tempfile
import unicodedata
import wave
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from thanthien.hub.services.media import MediaError, MediaLibrary, MediaRecord, run_tool

log = logging.getLogger(__name__)

Voice = Literal["northern", "central", "southern"]

ESPEAK_VOICES: dict[str, str] = {
    "northern": "vi",
    "central": "vi-vn-x-central",
    "southern": "vi-vn-x-south",
}
VOICE_LABELS: dict[str, str] = {
    "northern": "Giọng miền Bắc",
    "central": "Giọng miền Trung",
    "southern": "Giọng miền Nam",
}

MIN_WPM, MAX_WPM, DEFAULT_WPM = 80, 260, 150
CHIME_NOTES_HZ = (523.25, 659.25, 783.99)  # C5, E5, G5
CHIME_NOTE_S = 0.42
CHIME_GAP_S = 0.45
"""Silence between a chime and the speech."""

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class TtsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_chars: int = Field(3000, ge=10, le=20000, description="Longest accepted text.")
    timeout_s: float = Field(60.0, gt=0, description="espeak-ng time limit.")


class TtsRequest(BaseModel):
    """What an officer asks for. Validation of the text itself happens in :meth:`Tts.render`
    so that its messages are the service's (Vietnamese) ones."""

    model_config = ConfigDict(extra="forbid")

    text: str
    voice: Voice = "northern"
    speed_wpm: int = Field(DEFAULT_WPM, ge=MIN_WPM, le=MAX_WPM, description="Words per minute.")
    chime: bool = True


class Tts:
    """Renders announcements into a :class:`MediaLibrary`."""

    def __init__(self, library: MediaLibrary, settings: TtsSettings | None = None) -> None:
        self.library = library
        self.settings = settings or TtsSettings()

    def clean_text(self, text: str) -> str:
        """The text as espeak-ng will read it, or a :class:`MediaError` saying why not."""
        text = unicodedata.normalize("NFC", text)
        text = _CONTROL.sub(" ", text)
        text = re.sub(r"[ \t\r\n]+", " ", text).strip()
        if not any(ch.isalnum() for ch in text):
            raise MediaError("empty", "Nội dung thông báo trống, không có gì để đọc.")
        if len(text) > self.settings.max_chars:
            raise MediaError(
                "too_long",
                f"Nội dung quá dài: {len(text)} ký tự, tối đa {self.settings.max_chars} ký tự.",
            )
        return text

    def render(self, request: TtsRequest) -> MediaRecord:
        """Synthesise, frame with the chime, normalise and store; returns the stored record."""
        text = self.clean_text(request.text)
        with tempfile.TemporaryDirectory(prefix="tts-") as tmp:
            speech = Path(tmp) / "speech.wav"
            self._espeak(text, request.voice, request.speed_wpm, speech)
            with wave.open(str(speech), "rb") as w:
                rate, channels, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
                frames = w.readframes(w.getnframes())
            if width != 2 or channels != 1:
                raise MediaError("conversion_failed", "Bộ đọc văn bản trả về định dạng lạ.")
            if request.chime:
                gap = bytes(2 * int(CHIME_GAP_S * rate))
                frames = chime(rate, rising=True) + gap + frames + gap + chime(rate, rising=False)
            framed = Path(tmp) / "announcement.wav"
            with wave.open(str(framed), "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(rate)
                w.writeframes(frames)
            name = f"TTS {VOICE_LABELS[request.voice]}: {text[:80]}"
            record = self.library.add_rendered(framed, name, "TTS")
        log.info("rendered %d chars with voice %s at %d wpm (chime=%s) -> %s", len(text),
                 request.voice, request.speed_wpm, request.chime, record.sha256[:12])
        return record

    def _espeak(self, text: str, voice: Voice, wpm: int, out: Path) -> None:
        args = ["espeak-ng", "-v", ESPEAK_VOICES[voice], "-s", str(wpm), "-b", "1",
                "-w", str(out), "--stdin"]
        proc = run_tool(args, self.settings.timeout_s, "espeak-ng", input_text=text)
        if proc.returncode != 0 or not out.exists() or out.stat().st_size <= 44:
            log.warning("espeak-ng failed (%s): %s", proc.returncode, proc.stderr.strip()[-300:])
            raise MediaError("conversion_failed", "Không đọc được văn bản thành tiếng nói.")


def chime(rate: int, *, rising: bool = True, amplitude: float = 0.5) -> bytes:
    """Three bell notes as 16-bit mono PCM: a fundamental with two soft overtones, a short
    attack and an exponential decay."""
    notes = CHIME_NOTES_HZ if rising else tuple(reversed(CHIME_NOTES_HZ))
    n = int(CHIME_NOTE_S * rate)
    attack = max(1, int(0.005 * rate))
    samples = array.array("h")
    for freq in notes:
        for i in range(n):
            t = i / rate
            env = min(1.0, i / attack) * math.exp(-5.0 * t)
            v = (math.sin(2 * math.pi * freq * t) + 0.3 * math.sin(4 * math.pi * freq * t)
                 + 0.1 * math.sin(6 * math.pi * freq * t)) / 1.4
            samples.append(int(32767 * amplitude * env * v))
    return samples.tobytes()

