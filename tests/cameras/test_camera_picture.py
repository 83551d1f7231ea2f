"""The picture measures on thumbnails (pure logic, no ffmpeg)."""

from __future__ import annotations

import pytest

from thanthien.edge.cameras.picture import CHANGE_LEVEL, THUMB_HEIGHT, THUMB_WIDTH, Levels, Thumbnail

N = THUMB_WIDTH * THUMB_HEIGHT


def _thumb(pixels: bytearray | bytes) -> Thumbnail:
    return Thumbnail(THUMB_WIDTH, THUMB_HEIGHT, bytes(pixels))


def _dark_with_bright(count: int, level: int = 200, start: int = 0) -> bytearray:
    pixels = bytearray(N)
    pixels[start:start + count] = bytes([level]) * count
    return pixels


def test_the_peak_is_the_level_the_brightest_tenth_of_a_percent_reach():
    assert _thumb(_dark_with_bright(N // 1000 + 1)).levels().peak == 200


def test_a_few_bright_pixels_do_not_make_a_peak():
    assert _thumb(_dark_with_bright(N // 1000 - 5)).levels().peak == 0


def test_mean_and_spread_come_from_every_pixel():
    levels = Levels.of(bytes([0, 10] * 50))
    assert (levels.brightness, levels.contrast) == (5.0, 5.0)


def test_only_pixels_that_moved_more_than_the_change_level_count_as_changed():
    base = bytearray([100]) * N
    noisy = bytearray([100 + CHANGE_LEVEL]) * N  # every pixel moved, none by more than the level
    moved = bytearray(base)
    moved[:576] = bytes([100 + CHANGE_LEVEL + 1]) * 576
    assert _thumb(base).changed_share(_thumb(noisy)) == 0
    assert _thumb(base).changed_share(_thumb(moved)) == pytest.approx(0.01)


def test_levels_outside_a_region_leave_the_region_out():
    pixels = bytearray(N)
    for y in range(THUMB_HEIGHT // 10):  # the top left corner lit: the camera's clock
        pixels[y * THUMB_WIDTH:y * THUMB_WIDTH + THUMB_WIDTH // 4] = b"\xf0" * (THUMB_WIDTH // 4)
    thumb = _thumb(pixels)
    assert thumb.levels().peak == 0xF0
    assert thumb.levels((0.0, 0.0, 0.25, 0.1)).peak == 0


def test_thumbnails_of_different_sizes_are_not_compared():
    with pytest.raises(ValueError, match="different sizes"):
        _thumb(bytes(N)).changed_share(Thumbnail(2, 1, b"\x00\x00"))
