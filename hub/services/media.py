"""The hub's media library: validate an uploaded audio file, convert it to the one playback
format, normalise its loudness and store it content-addressed.

Playback format: 16-bit PCM WAV, mono, 22 050 Hz (:data:`PLAYBACK_FORMAT`).
    * PCM because the edge plays raw 16-bit PCM through ``edge/audio.py`` (``AudioClip``)
      with no decoder on the Pi, and a WAV can be checked sample for sample in tests.
    * Mono because a village speaker cluster is one amplifier channel.
    * 22 050 Hz because horn speakers reproduce little above 8-10 kHz, espeak-ng renders at
      this rate, and it halves what every node downloads compared with 44.1 kHz
      (about 2.6 MB per minute).

Loudness: two-pass EBU R128 with ffmpeg's ``loudnorm`` (the first pass measures, the
second applies the measured values as one linear gain), so a chairman's recorded greeting,
an MP3 of music and a synthesised bulletin come out of the horns equally loud. The target is
R128's own: -23 LUFS integrated, -1 dBTP true peak. Its 22 dB of headroom fits the peak to
loudness ratio of speech (espeak-ng's is about 19 dB) and of music, so the gain stays linear
and exact; a hotter target such as -16 LUFS would force loudnorm into its dynamic mode on
peaky speech, which misses the target by 1-2 LU on short clips and colours the sound. How
loud a village hears it is set once per site with the amplifier gain.

Storage: ``<media dir>/<sha[:2]>/<sha>.wav`` where ``sha`` is the SHA-256 of the stored WAV
(what nodes download and verify). Conversion is bit-exact (no encoder tag, no metadata), so
the same upload always yields the same file and adding it twice stores it once.

Messages in :class:`MediaError` are Vietnamese (officers read them); ``code`` is for programs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import subprocess
import tempfile
import wave
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

log = logging.getLogger(__name__)

PLAYBACK_SAMPLE_RATE = 22050
PLAYBACK_CHANNELS = 1
PLAYBACK_FORMAT = "wav/pcm_s16le/22050/mono"

ACCEPTED_FORMATS: dict[str, str] = {
    # ffprobe format_name component -> the name officers know
    "wav": "WAV",
    "mp3": "MP3",
    "ogg": "OGG",
    "mov": "M4A",
    "mp4": "M4A",
    "m4a": "M4A",
}
ACCEPTED_LABEL = "WAV, MP3, OGG hoặc M4A"

SILENCE_LUFS = -70.0
"""Integrated loudness below the EBU R128 absolute gate: nothing audible in the file."""

MediaErrorCode = Literal[
    "empty", "too_big", "not_audio", "unsupported_format", "too_long", "silent",
    "conversion_failed", "timeout",
]


class MediaError(ValueError):
    """An upload or rendering that cannot be stored; ``message`` is for people (Vietnamese)."""

    def __init__(self, code: MediaErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class MediaSettings(BaseModel):
    """Limits and targets of the media library (a hub config section may embed this)."""

    model_config = ConfigDict(extra="forbid")

    max_bytes: int = Field(100 * 1024 * 1024, ge=1024, description="Largest accepted upload.")
    max_duration_s: float = Field(
        30 * 60, gt=0, le=4 * 3600, description="Longest accepted audio (a plan item is at most 4 h)."
    )
    target_lufs: float = Field(-23.0, ge=-40, le=-5, description="Integrated loudness target.")
    true_peak_db: float = Field(-1.0, ge=-9, le=0, description="True-peak ceiling (dBTP).")
    loudness_range: float = Field(11.0, ge=1, le=50, description="Target loudness range (LU).")
    probe_timeout_s: float = Field(30.0, gt=0, description="ffprobe time limit.")
    convert_timeout_s: float = Field(
        120.0, gt=0, description="Base ffmpeg time limit per pass; grows with the duration."
    )


class MediaRecord(BaseModel):
    """One stored playback file."""

    model_config = ConfigDict(frozen=True)

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    duration_s: float
    size_bytes: int
    original_name: str
    format: str = PLAYBACK_FORMAT
    source_format: str = Field(description="WAV, MP3, OGG, M4A, or TTS for rendered speech.")
    source_sha256: str = Field(description="SHA-256 of what was uploaded or rendered.")
    created: bool = Field(description="False when the same file was already in the library.")


def _tail(text: str, n: int = 400) -> str:
    text = text.strip()
    return text[-n:]


def run_tool(args: list[str], timeout_s: float, what: str,
             input_text: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ffmpeg/ffprobe/espeak-ng with a time limit (and ``input_text`` on stdin); a
    timeout is a :class:`MediaError`."""
    stdin = {"input": input_text} if input_text is not None else {"stdin": subprocess.DEVNULL}
    try:
        return subprocess.run(args, capture_output=True, text=True, encoding="utf-8",
                              errors="replace", timeout=timeout_s, check=False, **stdin)
    except subprocess.TimeoutExpired:
        log.warning("%s timed out after %.0f s: %s", what, timeout_s, args[0])
        raise MediaError("timeout", f"Xử lý tệp âm thanh quá lâu ({what}), đã dừng.") from None
    except FileNotFoundError:
        raise RuntimeError(f"{args[0]} is not installed (needed for {what})") from None


class MediaLibrary:
    """Validated, normalised, content-addressed playback files in one directory."""

    def __init__(self, directory: Path, settings: MediaSettings | None = None) -> None:
        self.directory = Path(directory)
        self.settings = settings or MediaSettings()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._tmp_root = self.directory / ".incoming"
        self._tmp_root.mkdir(exist_ok=True)

    # -- lookup ---------------------------------------------------------------------------

    def path_for(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a sha256: {sha256!r}")
        return self.directory / sha256[:2] / f"{sha256}.wav"

    def exists(self, sha256: str) -> bool:
        return self.path_for(sha256).is_file()

    def stored(self) -> list[str]:
        """The sha256 of every stored file."""
        return sorted(p.stem for p in self.directory.glob("??/*.wav"))

    # -- adding ---------------------------------------------------------------------------

    def add_bytes(self, data: bytes, original_name: str) -> MediaRecord:
        """Validate, convert and store an upload held in memory."""
        self._check_size(len(data))
        with tempfile.TemporaryDirectory(dir=self._tmp_root) as tmp:
            src = Path(tmp) / "upload"
            src.write_bytes(data)
            return self._add(src, original_name, Path(tmp), source_format=None)

    def add_file(self, path: Path, original_name: str | None = None) -> MediaRecord:
        """Validate, convert and store an upload saved to ``path`` (left in place)."""
        path = Path(path)
        self._check_size(path.stat().st_size)
        with tempfile.TemporaryDirectory(dir=self._tmp_root) as tmp:
            return self._add(path, original_name or path.name, Path(tmp), source_format=None)

    def add_rendered(self, path: Path, name: str, source_format: str) -> MediaRecord:
        """Store audio the hub produced itself (speech synthesis): same conversion, and the
        same limits except the byte limit, which is for uploads."""
        with tempfile.TemporaryDirectory(dir=self._tmp_root) as tmp:
            return self._add(Path(path), name, Path(tmp), source_format=source_format)

    def _check_size(self, size: int) -> None:
        if size == 0:
            raise MediaError("empty", "Tệp rỗng (0 byte), không có âm thanh.")
        if size > self.settings.max_bytes:
            raise MediaError(
                "too_big",
                f"Tệp quá lớn: {_mb(size)} MB, tối đa {_mb(self.settings.max_bytes)} MB.",
            )

    def _add(self, src: Path, original_name: str, tmp: Path,
             source_format: str | None) -> MediaRecord:
        duration, probed_format = self._probe(src, check_format=source_format is None)
        detected = source_format or probed_format
        timeout = self.settings.convert_timeout_s + duration / 2
        measured = self._measure(src, timeout)
        out = tmp / "playback.wav"
        self._convert(src, out, measured, timeout)
        sha, size = _sha256_file(out), out.stat().st_size
        final_duration = _wav_duration(out)
        if final_duration > self.settings.max_duration_s:
            raise MediaError("too_long", self._too_long_message(final_duration))
        target = self.path_for(sha)
        created = not target.exists()
        if created:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(out, target)  # atomic: a reader sees the whole file or none
        log.info("media %s %s (%s, %.1f s, %d bytes) from %r", "stored" if created else "known",
                 sha[:12], detected, final_duration, size, original_name)
        return MediaRecord(
            sha256=sha, duration_s=round(final_duration, 3), size_bytes=size,
            original_name=original_name[:255], source_format=detected,
            source_sha256=_sha256_file(src), created=created,
        )

    # -- ffprobe / ffmpeg -----------------------------------------------------------------

    def _probe(self, src: Path, *, check_format: bool) -> tuple[float, str]:
        """Duration and format name of the audio in ``src``; refuses what is not accepted."""
        proc = run_tool(
            ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(src)],
            self.settings.probe_timeout_s, "ffprobe",
        )
        not_audio = MediaError("not_audio",
                               f"Tệp không phải âm thanh hoặc đã hỏng (chỉ nhận {ACCEPTED_LABEL}).")
        if proc.returncode != 0:
            log.info("ffprobe refused the upload: %s", _tail(proc.stderr))
            raise not_audio
        try:
            info = json.loads(proc.stdout)
        except json.JSONDecodeError:
            raise not_audio from None
        streams = info.get("streams", [])
        fmt = info.get("format", {})
        audio = [s for s in streams if s.get("codec_type") == "audio"]
        moving = [s for s in streams if s.get("codec_type") == "video"
                  and not s.get("disposition", {}).get("attached_pic")]
        if not audio:
            raise not_audio
        if moving:
            raise MediaError("not_audio", "Tệp có hình ảnh (video); chỉ nhận tệp âm thanh "
                                          f"{ACCEPTED_LABEL}.")
        names = str(fmt.get("format_name", "")).split(",")
        known = [ACCEPTED_FORMATS[n] for n in names if n in ACCEPTED_FORMATS]
        if check_format and not known:
            raise MediaError("unsupported_format",
                             f"Định dạng {fmt.get('format_long_name') or names[0]!s} không được "
                             f"hỗ trợ; chỉ nhận {ACCEPTED_LABEL}.")
        duration = _float(fmt.get("duration")) or max(
            (_float(s.get("duration")) or 0.0 for s in audio), default=0.0)
        if duration <= 0:
            raise MediaError("empty", "Tệp không có nội dung âm thanh (độ dài 0 giây).")
        if duration > self.settings.max_duration_s:
            raise MediaError("too_long", self._too_long_message(duration))
        return duration, known[0] if known else names[0].upper()

    def _too_long_message(self, duration: float) -> str:
        return (f"Tệp quá dài: {_minutes(duration)}, tối đa {_minutes(self.settings.max_duration_s)}.")

    def _pre_filter(self) -> str:
        return "aformat=channel_layouts=mono"

    def _measure(self, src: Path, timeout: float) -> dict[str, str]:
        s = self.settings
        proc = run_tool(
            ["ffmpeg", "-hide_banner", "-nostdin", "-nostats", "-i", str(src), "-vn", "-sn", "-dn",
             "-af", f"{self._pre_filter()},loudnorm=I={s.target_lufs}:TP={s.true_peak_db}"
                    f":LRA={s.loudness_range}:print_format=json",
             "-f", "null", "-"],
            timeout, "ffmpeg loudness measurement",
        )
        if proc.returncode != 0:
            log.info("ffmpeg could not decode the upload: %s", _tail(proc.stderr))
            raise MediaError("not_audio", "Không giải mã được tệp âm thanh (tệp hỏng?).")
        measured = _last_json_object(proc.stderr)
        if measured is None:
            raise MediaError("conversion_failed", "Không đo được độ lớn âm thanh của tệp.")
        loudness = _float(measured.get("input_i"))
        if loudness is None or loudness < SILENCE_LUFS:
            raise MediaError("silent", "Tệp chỉ có im lặng, không nghe được gì.")
        return measured

    def _convert(self, src: Path, out: Path, m: dict[str, str], timeout: float) -> None:
        s = self.settings
        loudnorm = (
            f"loudnorm=I={s.target_lufs}:TP={s.true_peak_db}:LRA={s.loudness_range}"
            f":measured_I={m['input_i']}:measured_TP={m['input_tp']}"
            f":measured_LRA={m['input_lra']}:measured_thresh={m['input_thresh']}"
            f":offset={m['target_offset']}:linear=true"
        )
        chain = (f"{self._pre_filter()},{loudnorm},aresample={PLAYBACK_SAMPLE_RATE},"
                 f"aformat=sample_fmts=s16:sample_rates={PLAYBACK_SAMPLE_RATE}:channel_layouts=mono")
        proc = run_tool(
            ["ffmpeg", "-hide_banner", "-nostdin", "-nostats", "-y", "-i", str(src),
             "-vn", "-sn", "-dn", "-af", chain, "-map_metadata", "-1",
             "-fflags", "+bitexact", "-flags:a", "+bitexact", "-c:a", "pcm_s16le", "-f", "wav",
             str(out)],
            timeout, "ffmpeg conversion",
        )
        if proc.returncode != 0 or not out.exists():
            log.warning("ffmpeg conversion failed: %s", _tail(proc.stderr))
            raise MediaError("conversion_failed", "Không chuyển đổi được tệp âm thanh.")


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _wav_duration(path: Path) -> float:
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / w.getframerate()


def _float(value: object) -> float | None:
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _last_json_object(text: str) -> dict[str, str] | None:
    start, end = text.rfind("{"), text.rfind("}")
    if start < 0 or end < start:
        return None
    try:
        data = json.loads(text[start:end + 1])
    except json.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.1f}".rstrip("0").rstrip(".")


def _minutes(seconds: float) -> str:
    """``12 phút 5 giây`` or ``1,5 giây`` (Vietnamese decimal comma)."""
    m, s = divmod(round(seconds, 1), 60)
    sec = f"{s:.1f}".rstrip("0").rstrip(".").replace(".", ",")
    if not m:
        return f"{sec} giây"
    return f"{int(m)} phút" if sec == "0" else f"{int(m)} phút {sec} giây"


def ffmpeg_available() -> bool:
    return all(shutil.which(tool) for tool in ("ffmpeg", "ffprobe"))

