"""Picture analysis on grey thumbnails: how bright the brightest part is, how uniform the
picture is, and how much of it changed between two checks.

The measures are chosen for what a camera at a one-stop office shows (measured figures per
scene in docs/cameras.md):

* an office at night is a still, dark scene with the camera's on-screen clock running; the
  clock changes a few dozen pixels out of tens of thousands, far too few to move a mean, so
  *change* is the share of pixels that changed clearly (by more than ``CHANGE_LEVEL``), at
  a resolution where a digit of the clock is still several pixels;
* a dark scene with one small bright object is dark on average, so *black* looks at the
  brightest part of the picture (the level only its brightest ``PEAK_SHARE`` reach), not
  at the mean.

Pictures are compared as decoded, downscaled grey pixels rather than as JPEG bytes: a
camera re-encodes every snapshot, so the bytes differ even when the picture does not; the
encoder's noise stays well under ``CHANGE_LEVEL``.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

THUMB_WIDTH = 320
THUMB_HEIGHT = 180
CHANGE_LEVEL = 32
"""A pixel changed when its grey level moved by more than this (0-255). Re-encoding the same
picture moves pixels by up to 23 (JPEG at -q:v 3 against 9); a clock digit moves them by
60 to 250."""
PEAK_SHARE = 0.001
"""The brightest part of a picture is its brightest 0.1 % (58 pixels of the thumbnail): a
small lit thing fills it (a 20-pixel ball in a 640x360 picture is 1 %), a few hot pixels do not."""

Region = tuple[float, float, float, float]
"""Left, top, right, bottom as fractions (0-1) of the picture's width and height."""


@dataclass(frozen=True)
class Levels:
    """Grey-level statistics of a set of pixels."""

    brightness: float
    """Mean grey level, 0 (black) to 255 (white)."""
    contrast: float
    """Standard deviation of the grey levels: near 0 for a blank, uniform picture."""
    peak: float
    """The grey level the brightest ``PEAK_SHARE`` of the pixels reach (the brightest part)."""

    @classmethod
    def of(cls, pixels: bytes) -> Levels:
        if not pixels:
            raise ValueError("no pixels to measure")
        histogram = Counter(pixels)
        n = len(pixels)
        mean = sum(level * count for level, count in histogram.items()) / n
        var = sum(count * (level - mean) ** 2 for level, count in histogram.items()) / n
        brightest = max(1, math.ceil(n * PEAK_SHARE))
        seen, peak = 0, 0
        for level in sorted(histogram, reverse=True):
            seen += histogram[level]
            if seen >= brightest:
                peak = level
                break
        return cls(mean, math.sqrt(var), float(peak))


@dataclass(frozen=True)
class Thumbnail:
    width: int
    height: int
    pixels: bytes
    """8-bit grey, row by row."""

    def __post_init__(self) -> None:
        if len(self.pixels) != self.width * self.height:
            raise ValueError(f"expected {self.width * self.height} pixels, got {len(self.pixels)}")

    def levels(self, outside: Region | None = None) -> Levels:
        """Brightness, contrast and peak of the picture, or of the part outside ``outside``
        (where the camera draws its on-screen text)."""
        if outside is None:
            return Levels.of(self.pixels)
        left, top, right, bottom = outside
        x0, x1 = round(left * self.width), round(right * self.width)
        y0, y1 = round(top * self.height), round(bottom * self.height)
        rows = []
        for y in range(self.height):
            row = self.pixels[y * self.width:(y + 1) * self.width]
            rows.append(row[:x0] + row[x1:] if y0 <= y < y1 else row)
        kept = b"".join(rows)
        return Levels.of(kept or self.pixels)

    def changed_share(self, other: Thumbnail) -> float:
        """The share of pixels (0-1) whose grey level differs from ``other``'s by more than
        ``CHANGE_LEVEL``: 0 for the same picture, re-encoded or not."""
        if (self.width, self.height) != (other.width, other.height):
            raise ValueError("thumbnails of different sizes cannot be compared")
        changed = sum(1 for a, b in zip(self.pixels, other.pixels, strict=True) if abs(a - b) > CHANGE_LEVEL)
        return changed / len(self.pixels)
