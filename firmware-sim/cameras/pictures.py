"""Pictures a simulated camera serves: a moving scene, the same scene again and again, or
black. Pixels are made here; ffmpeg encodes them to JPEG like a camera would."""

from __future__ import annotations

import functools
import random
import shutil
import subprocess

WIDTH = 320
HEIGHT = 240


def scene(frame: int) -> bytes:
    """8-bit grey pixels of a moving scene: a diagonal gradient that slides with ``frame``,
    a bright block (the OSD clock of a real camera) that moves, and sensor noise."""
    rng = random.Random(frame)
    shift = (frame * 37) % 256
    block_x = (frame * 29) % (WIDTH - 40)
    out = bytearray(WIDTH * HEIGHT)
    for y in range(HEIGHT):
        row = y * WIDTH
        for x in range(WIDTH):
            out[row + x] = (x + y + shift) % 200 + 20
        if 10 <= y < 40:
            out[row + block_x: row + block_x + 40] = b"\xf0" * 40
    noise = rng.randbytes(len(out))
    return bytes((p + (n & 7)) & 0xFF for p, n in zip(out, noise, strict=True))


def black() -> bytes:
    """A lens cap or a dead sensor: near-black with a little noise."""
    rng = random.Random(0)
    return bytes(n & 3 for n in rng.randbytes(WIDTH * HEIGHT))


def blank() -> bytes:
    """A uniform mid-grey picture (a camera showing its "no signal" screen)."""
    return bytes([128]) * (WIDTH * HEIGHT)


def encode_jpeg(pixels: bytes, quality: int = 4, timeout: float = 10.0) -> bytes:
    """Encode grey pixels as a baseline JPEG (standard Huffman tables, as RTP/JPEG needs).
    ``quality`` is ffmpeg's -q:v, 2 (best) to 31 (worst)."""
    ffmpeg = shutil.which("ffmpeg") or "/usr/bin/ffmpeg"
    args = [ffmpeg, "-nostdin", "-hide_banner", "-v", "error", "-f", "rawvideo", "-pix_fmt", "gray",
            "-s", f"{WIDTH}x{HEIGHT}", "-i", "pipe:0", "-frames:v", "1", "-pix_fmt", "yuvj420p",
            "-c:v", "mjpeg", "-huffman", "default", "-q:v", str(quality), "-f", "image2pipe", "pipe:1"]
    done = subprocess.run(args, input=pixels, capture_output=True, timeout=timeout, check=True)
    return done.stdout


SCENE_FRAMES = 6
"""A moving camera cycles through this many different scenes."""


def scene_jpeg(index: int) -> bytes:
    return _scene_jpeg(index % SCENE_FRAMES)


@functools.lru_cache(maxsize=SCENE_FRAMES)
def _scene_jpeg(index: int) -> bytes:
    return encode_jpeg(scene(index))


@functools.lru_cache(maxsize=4)
def still_jpeg(quality: int) -> bytes:
    """One fixed scene; different qualities give different bytes for the same picture."""
    return encode_jpeg(scene(1000), quality)


@functools.lru_cache(maxsize=1)
def black_jpeg() -> bytes:
    return encode_jpeg(black())


@functools.lru_cache(maxsize=1)
def blank_jpeg() -> bytes:
    return encode_jpeg(blank())
