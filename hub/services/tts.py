"""Vietnamese text-to-speech for announcements: the text is normalised first
(``tts_text.py``: the pronunciation dictionary, numbers, dates, times and phone numbers in
words), an engine renders it at a chosen speed, optionally framed by a chime, and the result
goes through the media library's conversion, loudness normalisation and store like any
upload.

Two engines sit behind one seam (:class:`Engine`):

* **espeak-ng** (the default): a Northern, Central or Southern Vietnamese voice;
* **Piper** (``piper-tts``, run as its own program, ``[tts] piper_command``): a neural voice
  the admin installs as a file pair ``<name>.onnx`` + ``<name>.onnx.json`` in
  ``[tts] piper_voices_dir`` (e.g. ``vi_VN-vais1000-medium``). The hub never downloads a voice:
  a voice is offered only when its files are there, and chosen as ``piper:<name>``.

The chime is synthesised here (no sound files shipped): three bell-like notes rising
(C5-E5-G5) before the announcement and falling after it, as public-address systems do.
"""

from __future__ import annotations

import array
import json
import logging
import math
import re
import shutil
import sys
import tempfile
import unicodedata
import wave
from pathlib import Path
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from thanthien.hub.services.media import MediaError, MediaLibrary, MediaRecord, run_tool
from thanthien.hub.services.tts_text import Lexicon, normalise

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


PIPER_PREFIX = "piper:"
_PIPER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,70}$")


class TtsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_chars: int = Field(3000, ge=10, le=20000, description="Longest accepted text.")
    timeout_s: float = Field(60.0, gt=0, description="Time limit of one rendering (either engine).")
    piper_voices_dir: Path | None = Field(
        None, description="Where the admin installs Piper voices: <name>.onnx with its <name>.onnx.json "
                          "(none: Piper is not offered). Nothing is ever downloaded.")
    piper_command: str = Field(
        "piper", min_length=1, max_length=500,
        description="The Piper program (piper-tts): a path, or a name looked up beside the hub's Python "
                    "and then on PATH.")


class TtsRequest(BaseModel):
    """What an officer asks for. Validation of the text itself happens in :meth:`Tts.render`
    so that its messages are the service's (Vietnamese) ones."""

    model_config = ConfigDict(extra="forbid")

    text: str
    voice: str = Field("northern", max_length=80,
                       description="An espeak-ng voice (northern, central, southern) or "
                                   "piper:<installed voice>.")
    speed_wpm: int = Field(DEFAULT_WPM, ge=MIN_WPM, le=MAX_WPM, description="Words per minute.")
    chime: bool = True


class Rendered(MediaRecord):
    """The stored file, with what the engine read and which engine read it."""

    spoken: str
    engine: str


class Engine(Protocol):
    """The seam: text in, a 16-bit mono WAV file out (or a :class:`MediaError`)."""

    name: str

    def synthesise(self, text: str, voice: str, wpm: int, out: Path) -> None: ...


class EspeakEngine:
    name = "espeak-ng"

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s

    def synthesise(self, text: str, voice: str, wpm: int, out: Path) -> None:
        args = ["espeak-ng", "-v", ESPEAK_VOICES[voice], "-s", str(wpm), "-b", "1",
                "-w", str(out), "--stdin"]
        proc = run_tool(args, self.timeout_s, "espeak-ng", input_text=text)
        if proc.returncode != 0 or not out.exists() or out.stat().st_size <= 44:
            log.warning("espeak-ng failed (%s): %s", proc.returncode, proc.stderr.strip()[-300:])
            raise MediaError("conversion_failed", "Không đọc được văn bản thành tiếng nói.")


class PiperEngine:
    """Piper run as a program with a voice file from ``voices_dir`` (its speed as a length scale)."""

    name = "piper"

    def __init__(self, settings: TtsSettings) -> None:
        self.settings = settings

    def command(self) -> str:
        cmd = self.settings.piper_command
        if "/" in cmd:
            return cmd
        beside = Path(sys.executable).parent / cmd
        return str(beside) if beside.exists() else (shutil.which(cmd) or cmd)

    def model(self, name: str) -> Path:
        base = self.settings.piper_voices_dir
        if base is None or not _PIPER_NAME.match(name):
            raise MediaError("no_voice", f"Không có giọng đọc Piper “{name[:80]}”.")
        model = base / f"{name}.onnx"
        if not model.is_file() or not (base / f"{name}.onnx.json").is_file():
            raise MediaError("no_voice", f"Chưa cài giọng đọc Piper “{name}” ({name}.onnx và "
                                         f"{name}.onnx.json trong thư mục giọng đọc).")
        return model

    def synthesise(self, text: str, voice: str, wpm: int, out: Path) -> None:
        model = self.model(voice)
        args = [self.command(), "--model", str(model), "--data-dir", str(model.parent), "--output-file",
                str(out), "--length-scale", f"{DEFAULT_WPM / wpm:.3f}"]
        try:
            proc = run_tool(args, self.settings.timeout_s, "piper", input_text=text)
        except RuntimeError:
            log.warning("piper program not found: %s", args[0])
            raise MediaError("conversion_failed", "Chưa cài chương trình đọc Piper trên máy chủ.") from None
        if proc.returncode != 0 or not out.exists() or out.stat().st_size <= 44:
            log.warning("piper failed (%s): %s", proc.returncode, proc.stderr.strip()[-300:])
            raise MediaError("conversion_failed", "Không đọc được văn bản thành tiếng nói (Piper).")


def piper_voices(settings: TtsSettings) -> dict[str, str]:
    """The Piper voices installed: ``piper:<name>`` -> a label (from the voice's own config)."""
    base = settings.piper_voices_dir
    if base is None or not base.is_dir():
        return {}
    out = {}
    for model in sorted(base.glob("*.onnx")):
        name = model.name[: -len(".onnx")]
        config = model.with_name(model.name + ".json")
        if not _PIPER_NAME.match(name) or not config.is_file():
            continue
        try:
            lang = json.loads(config.read_text(encoding="utf-8")).get("language", {}).get("code", "")
        except (OSError, ValueError, AttributeError):
            continue
        out[PIPER_PREFIX + name] = f"Piper: {name}" + (f" ({lang})" if lang else "")
    return out


def voices(settings: TtsSettings) -> dict[str, str]:
    """Every voice an officer may choose: espeak-ng's three, then the Piper voices installed."""
    return {**VOICE_LABELS, **piper_voices(settings)}


class Tts:
    """Renders announcements into a :class:`MediaLibrary`."""

    def __init__(self, library: MediaLibrary, settings: TtsSettings | None = None) -> None:
        self.library = library
        self.settings = settings or TtsSettings()

    def clean_text(self, text: str) -> str:
        """The text as the officer wrote it, tidied, or a :class:`MediaError` saying why not."""
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

    def engine(self, voice: str) -> tuple[Engine, str]:
        """The engine and its own voice name for a request's ``voice``."""
        if voice.startswith(PIPER_PREFIX):
            return PiperEngine(self.settings), voice[len(PIPER_PREFIX):]
        if voice not in ESPEAK_VOICES:
            raise MediaError("no_voice", f"Không có giọng đọc “{voice[:80]}”.")
        return EspeakEngine(self.settings.timeout_s), voice

    def spoken(self, text: str, lexicon: Lexicon | None = None) -> str:
        """What the engine will be given: the cleaned text, normalised (dictionary, numbers, …)."""
        return normalise(self.clean_text(text), lexicon)

    def render(self, request: TtsRequest, *, lexicon: Lexicon | None = None) -> Rendered:
        """Normalise, synthesise, frame with the chime and store; returns the stored record."""
        cleaned = self.clean_text(request.text)
        text = normalise(cleaned, lexicon)
        engine, voice = self.engine(request.voice)
        with tempfile.TemporaryDirectory(prefix="tts-") as tmp:
            speech = Path(tmp) / "speech.wav"
            engine.synthesise(text, voice, request.speed_wpm, speech)
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
            label = VOICE_LABELS.get(request.voice) or f"Piper {voice}"
            name = f"TTS {label}: {cleaned[:80]}"
            record = self.library.add_rendered(framed, name, "TTS")
        log.info("rendered %d chars with %s voice %s at %d wpm (chime=%s) -> %s", len(text), engine.name,
                 voice, request.speed_wpm, request.chime, record.sha256[:12])
        return Rendered(**record.model_dump(), spoken=text, engine=engine.name)


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

