"""The spoken thank-you of the rating box: "Xin cảm ơn", rendered once with espeak-ng's
Vietnamese voice into the data directory and reused from there. Without espeak-ng the box
plays a short generated two-tone chime instead (and says so in the log)."""

from __future__ import annotations

import array
import logging
import math
import os
import shutil
import subprocess
import threading
import wave
from pathlib import Path

from thanthien.edge.audio import AudioClip

log = logging.getLogger(__name__)

THANK_YOU_TEXT = "Xin cảm ơn"
THANK_YOU_FILE = "xin-cam-on.wav"
CHIME_RATE = 22050


def render_speech(text: str, target: Path, voice: str = "vi") -> bool:
    """Render ``text`` with espeak-ng to a WAV file; False if espeak-ng is missing or fails."""
    tool = shutil.which("espeak-ng")
    if tool is None:
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    # A private temporary name: several processes (a simulated fleet) may render at once.
    tmp = target.with_name(f".{target.stem}.{os.getpid()}.{threading.get_ident()}.tmp.wav")
    try:
        proc = subprocess.run([tool, "-v", voice, "-w", str(tmp), text],
                              capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("espeak-ng failed: %s", exc)
        return False
    if proc.returncode != 0 or not tmp.exists() or tmp.stat().st_size <= 44:
        log.warning("espeak-ng failed (exit %s): %s", proc.returncode, proc.stderr.strip())
        tmp.unlink(missing_ok=True)
        return False
    tmp.replace(target)
    return True


def chime(duration_s: float = 0.6, rate: int = CHIME_RATE) -> AudioClip:
    """Two soft tones (E6 then C6) with a fade, as a stand-in for the spoken thank-you."""
    samples = array.array("h")
    half = int(duration_s * rate / 2)
    for freq in (1318.5, 1046.5):
        for i in range(half):
            envelope = math.sin(math.pi * i / half)
            samples.append(int(9000 * envelope * math.sin(2 * math.pi * freq * i / rate)))
    return AudioClip(samples.tobytes(), rate, 1, label="chime")


def thank_you_clip(sound_dir: Path) -> AudioClip:
    """The cached "Xin cảm ơn" clip, rendering it on first use; the chime as a fallback."""
    path = Path(sound_dir) / THANK_YOU_FILE
    if path.exists() or render_speech(THANK_YOU_TEXT, path):
        try:
            return AudioClip.from_wav(path, label=THANK_YOU_TEXT)
        except (OSError, ValueError, EOFError, wave.Error) as exc:
            log.warning("cached thank-you %s is unusable (%s); using a chime", path, exc)
            return chime()
    log.warning("espeak-ng is not available: the rating box plays a chime instead of %r",
                THANK_YOU_TEXT)
    return chime()
