"""Byte layouts between Krita and the daemon, in pure Python (Krita's Python has no numpy).

Krita hands out 8-bit RGBA pixels in B, G, R, A order; the wire carries R, G, B(, A) or grey.
Extended slice assignment does the per-channel copies in C, so a 4k x 4k layer takes well
under a second.
"""
from __future__ import annotations


def swap_red_blue(data: bytes | bytearray) -> bytearray:
    """BGRA <-> RGBA (the same swap both ways)."""
    out = bytearray(data)
    out[0::4] = data[2::4]
    out[2::4] = data[0::4]
    return out


def is_opaque(bgra: bytes | bytearray) -> bool:
    alpha = bgra[3::4]
    return alpha.count(255) == len(alpha)


def rgba_to_rgb(rgba: bytes | bytearray) -> bytearray:
    out = bytearray(len(rgba) // 4 * 3)
    for channel in range(3):
        out[channel::3] = rgba[channel::4]
    return out


def to_bgra(data: bytes | bytearray, channels: int) -> bytearray:
    """Wire pixels (1 grey, 3 RGB, 4 RGBA) -> Krita's BGRA; missing alpha is opaque."""
    if channels == 4:
        return swap_red_blue(data)
    count = len(data) // channels
    out = bytearray(b"\xff" * (count * 4))
    if channels == 1:
        for channel in range(3):
            out[channel::4] = data
    elif channels == 3:
        out[0::4] = data[2::3]
        out[1::4] = data[1::3]
        out[2::4] = data[0::3]
    else:
        raise ValueError(f"images with {channels} channels are not supported")
    return out


def repeat(data: bytes | bytearray, width: int, height: int, pixel_bytes: int,
           times_x: int, times_y: int) -> bytes:
    """The image laid out ``times_x`` x ``times_y`` times (row-major, top row first)."""
    stride = width * pixel_bytes
    rows = b"".join(bytes(data[y * stride:(y + 1) * stride]) * times_x for y in range(height))
    return rows * times_y
