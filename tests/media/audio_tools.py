"""ffmpeg helpers for the media tests: make fixture files, measure loudness."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

CODECS = {"wav": ["-c:a", "pcm_s16le"], "mp3": ["-c:a", "libmp3lame"],
          "ogg": ["-c:a", "libvorbis"], "m4a": ["-c:a", "aac"], "flac": ["-c:a", "flac"]}


def make_tone(path: Path, seconds: float = 2.0, *, freq: int = 440, gain_db: float = -6.0,
              channels: int = 2, rate: int = 44100) -> Path:
    """A sine tone encoded by ffmpeg in the format the suffix names."""
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
         "-i", f"sine=frequency={freq}:duration={seconds}:sample_rate={rate}",
         "-af", f"volume={gain_db}dB", "-ac", str(channels),
         *CODECS[path.suffix.lstrip(".")], str(path)],
        check=True, timeout=30,
    )
    return path


def integrated_loudness(path: Path) -> float:
    """Integrated loudness (LUFS) as ffmpeg's ebur128 filter measures it."""
    proc = subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostats", "-i", str(path), "-af", "ebur128", "-f", "null", "-"],
        capture_output=True, text=True, timeout=30, check=True,
    )
    summary = proc.stderr[proc.stderr.rfind("Summary:"):]
    match = re.search(r"I:\s+(-?[\d.]+|-inf) LUFS", summary)
    assert match, proc.stderr[-500:]
    return float(match.group(1))
