"""Picture analysis on small grey thumbnails: brightness, contrast and change between checks.

Pictures are compared as decoded, downscaled grey pixels rather than as JPEG bytes: a
camera re-encodes every snapshot, so the bytes differ even when the picture does not, and
the downscale averages away most of the encoder's noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

THUMB_WIDTH = 64
THUMB_HEIGHT = 36


@dataclass(frozen=True)
class Thumbnail:
    width: int
    height: int
    pixels: bytes
    """8-bit grey, row by row."""

    def __post_init__(self) -> None:
        if len(self.pixels) != self.width * self.height:
            raise ValueError(f"expected {self.width * self.height} pixels, got {len(self.pixels)}")

    @property
    def brightness(self) -> float:
        """Mean grey level, 0 (black) to 255 (white)."""
        return sum(self.pixels) / len(self.pixels)

    @property
    def contrast(self) -> float:
        """Standard deviation of the grey levels: near 0 for a blank, uniform picture."""
        mean = self.brightness
        return math.sqrt(sum((p - mean) ** 2 for p in self.pixels) / len(self.pixels))

    def difference(self, other: Thumbnail) -> float:
        """Mean absolute grey difference to ``other`` (0 = the same picture)."""
        if (self.width, self.height) != (other.width, other.height):
            raise ValueError("thumbnails of different sizes cannot be compared")
        return sum(abs(a - b) for a, b in zip(self.pixels, other.pixels, strict=True)) / len(self.pixels)
