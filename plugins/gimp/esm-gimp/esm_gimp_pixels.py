"""Pixel bookkeeping of the GIMP plug-in that needs no GIMP: which Babl format to read a
drawable in, where the fill region lies, turning a selection into a hole mask.

Rectangles are (x, y, width, height) tuples.
"""
from __future__ import annotations

from esm_contract.images import MASK_THRESHOLD  # stdlib only (the vendor folder or a checkout)

# A feathered or anti-aliased selection is thresholded as the engine reads a mask: a pixel belongs
# to the hole when it is at least half selected (selection value >= 128 of 255, read as linear "Y u8").
_THRESHOLD_TABLE = bytes(0 if v < MASK_THRESHOLD else 255 for v in range(256))

# Babl format per channel count; the perceptual (') u8 formats work for every GIMP precision
# (8-bit to 32-bit float, linear or not): GEGL converts on read and on write.
FORMATS = {1: "Y' u8", 3: "R'G'B' u8", 4: "R'G'B'A u8"}


def channels_for(is_gray: bool, has_alpha: bool) -> int:
    """Channels to send for a drawable: grey 1 (also with alpha: the wire has no grey+alpha,
    and grey synthesised as one channel beats grey replicated to RGBA), RGB 3, RGBA 4."""
    if is_gray:
        return 1
    return 4 if has_alpha else 3


def intersect(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> tuple[int, int, int, int] | None:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    return (x1, y1, x2 - x1, y2 - y1) if x2 > x1 and y2 > y1 else None


def grow(rect: tuple[int, int, int, int], margin: int, bounds: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """``rect`` widened by ``margin`` on every side, clipped to ``bounds``."""
    x, y, w, h = rect
    grown = intersect((x - margin, y - margin, w + 2 * margin, h + 2 * margin), bounds)
    assert grown is not None, "rect lies inside bounds"
    return grown


def threshold(selection_u8: bytes) -> bytes:
    """Selection values (one byte a pixel) -> hole mask: 255 = fill, 0 = keep."""
    return selection_u8.translate(_THRESHOLD_TABLE)


def mask_bounds(mask: bytes, width: int, height: int) -> tuple[int, int, int, int] | None:
    """Bounding box of the non-zero pixels of a width x height mask, or None when empty."""
    rows = [y for y in range(height) if mask.find(b"\xff", y * width, (y + 1) * width) >= 0]
    if not rows:
        return None
    left, right = width, -1
    for y in rows:
        row = mask[y * width:(y + 1) * width]
        left = min(left, row.find(b"\xff"))
        right = max(right, row.rfind(b"\xff"))
    return left, rows[0], right - left + 1, rows[-1] - rows[0] + 1


def crop(data: bytes, width: int, channels: int, rect: tuple[int, int, int, int]) -> bytes:
    """The ``rect`` part of an interleaved image ``width`` pixels wide."""
    x, y, w, h = rect
    stride, start = width * channels, x * channels
    return b"".join(data[(y + row) * stride + start:(y + row) * stride + start + w * channels] for row in range(h))
