"""Pictures a simulated camera serves: a moving scene, the same scene again and again, black,
and the two scenes of an office at night that a checker must still call live: a still dark
room with the camera's on-screen clock running, and a dark room with one small bright thing
moving. Pixels are made here; ffmpeg encodes them to JPEG like a camera would."""

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
    shift = (frame * 37) % 256
    block_x = (frame * 29) % (WIDTH - 40)
    ramp = bytes((i % 200) + 20 for i in range(WIDTH + HEIGHT + 256))
    out = bytearray()
    for y in range(HEIGHT):
        out += ramp[y + shift:y + shift + WIDTH]
        if 10 <= y < 40:
            out[y * WIDTH + block_x:y * WIDTH + block_x + 40] = b"\xf0" * 40
    return _noisy(out, frame)


def black() -> bytes:
    """A lens cap or a dead sensor: near-black with a little noise."""
    rng = random.Random(0)
    return bytes(n & 3 for n in rng.randbytes(WIDTH * HEIGHT))


def blank() -> bytes:
    """A uniform mid-grey picture (a camera showing its "no signal" screen)."""
    return bytes([128]) * (WIDTH * HEIGHT)


# 3x5 digits of the on-screen clock, drawn 4 times larger
_DIGITS = ("111101101101111", "010110010010111", "111001111100111", "111001111001111", "101101111001001",
           "111100111001111", "111100111101111", "111001001001001", "111101111101111", "111101111001111")
_COLON = "000010000010000"
OSD_SCALE = 4
OSD_X, OSD_Y = 8, 8
OSD_REGION = (0.0, 0.0, 0.45, 0.15)
"""Where the clock is, as fractions of the picture (an edge config's ``osd_region``)."""


def _osd_clock(out: bytearray, tick: int) -> None:
    """The camera's running clock ``HH:MM:SS`` (``tick`` seconds after 08:00), white on the
    picture, top left, as a camera draws it."""
    seconds = 8 * 3600 + tick
    text = f"{seconds // 3600 % 24:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    x = OSD_X
    for ch in text:
        glyph = _COLON if ch == ":" else _DIGITS[int(ch)]
        for gy in range(5):
            for gx in range(3):
                if glyph[gy * 3 + gx] == "1":
                    for dy in range(OSD_SCALE):
                        row = (OSD_Y + gy * OSD_SCALE + dy) * WIDTH + x + gx * OSD_SCALE
                        out[row:row + OSD_SCALE] = b"\xf0" * OSD_SCALE
        x += 4 * OSD_SCALE


_MASKS = {bits: bytes(i & ((1 << bits) - 1) for i in range(256)) for bits in (2, 3)}


def _noisy(out: bytearray, seed: int, bits: int = 3) -> bytes:
    """Sensor noise: up to ``2**bits - 1`` grey levels added to every pixel. The pictures here
    stay at 247 or below, so the sum of the two rows of bytes, added as one big number, never
    carries from one pixel into the next (fast without numpy)."""
    noise = random.Random(seed).randbytes(len(out)).translate(_MASKS[bits])
    total = int.from_bytes(out, "big") + int.from_bytes(noise, "big")
    return total.to_bytes(len(out), "big")


def night(tick: int) -> bytes:
    """An office at night: a still, dim room (grey levels 4 to 30, a dark desk and a door a
    little lighter) with sensor noise, and the camera's clock showing ``tick``."""
    out = bytearray(_night_room())
    _osd_clock(out, tick)
    return _noisy(out, tick)


@functools.cache
def _night_room() -> bytes:
    walls = bytes(4 + (x // 40) * 2 for x in range(WIDTH))
    out = bytearray()
    for y in range(HEIGHT):
        row = bytearray(walls.translate(bytes(min(255, i + y // 60) for i in range(256))))
        if 100 <= y < 200:
            row[60:140] = bytes([30]) * 80
        out += row
    return bytes(out)


def dark_moving(frame: int) -> bytes:
    """A dark room with one small bright thing (12x12 pixels, 0.2 % of the picture, a torch)
    moving across it."""
    out = bytearray(WIDTH * HEIGHT)
    x, y = 20 + (frame * 53) % (WIDTH - 52), 20 + (frame * 31) % (HEIGHT - 52)
    for dy in range(12):
        out[(y + dy) * WIDTH + x:(y + dy) * WIDTH + x + 12] = b"\xe0" * 12
    return _noisy(out, frame, bits=2)


def black_osd(tick: int) -> bytes:
    """A covered lens: black, with only the camera's clock running on it."""
    out = bytearray(WIDTH * HEIGHT)
    _osd_clock(out, tick)
    return _noisy(out, tick, bits=2)


def encode_jpegs(frames: list[bytes], quality: int = 4, timeout: float = 30.0) -> list[bytes]:
    """Encode pictures of grey pixels as baseline JPEGs (standard Huffman tables, as RTP/JPEG
    needs), all in one ffmpeg run. ``quality`` is ffmpeg's -q:v, 2 (best) to 31 (worst)."""
    ffmpeg = shutil.which("ffmpeg") or "/usr/bin/ffmpeg"
    args = [ffmpeg, "-nostdin", "-hide_banner", "-v", "error", "-f", "rawvideo", "-pix_fmt", "gray",
            "-s", f"{WIDTH}x{HEIGHT}", "-i", "pipe:0", "-pix_fmt", "yuvj420p", "-c:v", "mjpeg",
            "-huffman", "default", "-q:v", str(quality), "-f", "image2pipe", "pipe:1"]
    done = subprocess.run(args, input=b"".join(frames), capture_output=True, timeout=timeout, check=True)
    # one JPEG after the other; the end marker cannot occur inside one (0xFF is stuffed there)
    jpegs = [part + b"\xff\xd9" for part in done.stdout.split(b"\xff\xd9")[:-1]]
    if len(jpegs) != len(frames):
        raise RuntimeError(f"ffmpeg encoded {len(jpegs)} pictures of {len(frames)}")
    return jpegs


def encode_jpeg(pixels: bytes, quality: int = 4, timeout: float = 10.0) -> bytes:
    return encode_jpegs([pixels], quality, timeout)[0]


SCENE_FRAMES = 6
"""A moving camera cycles through this many different scenes."""
CLOCK_TICKS = 60
"""The night scenes cycle through this many clock readings (one per picture)."""


def scene_jpeg(index: int) -> bytes:
    return _encoded("scene")[index % SCENE_FRAMES]


def night_jpeg(tick: int) -> bytes:
    return _encoded("night")[tick % CLOCK_TICKS]


def dark_moving_jpeg(frame: int) -> bytes:
    return _encoded("dark_moving")[frame % SCENE_FRAMES]


def black_osd_jpeg(tick: int) -> bytes:
    return _encoded("black_osd")[tick % CLOCK_TICKS]


_SERIES = {"scene": (scene, SCENE_FRAMES), "night": (night, CLOCK_TICKS),
           "dark_moving": (dark_moving, SCENE_FRAMES), "black_osd": (black_osd, CLOCK_TICKS)}


@functools.cache
def _encoded(series: str) -> tuple[bytes, ...]:
    """Every picture of a series, encoded once per process in one ffmpeg run (a snapshot served
    from the cache is as quick as a camera's, even on a loaded machine)."""
    make, count = _SERIES[series]
    return tuple(encode_jpegs([make(i) for i in range(count)]))


@functools.lru_cache(maxsize=4)
def still_jpeg(quality: int) -> bytes:
    """One fixed scene; different qualities give different bytes for the same picture."""
    return encode_jpeg(scene(1000), quality)


@functools.cache
def black_jpeg() -> bytes:
    return encode_jpeg(black())


@functools.cache
def blank_jpeg() -> bytes:
    return encode_jpeg(blank())
