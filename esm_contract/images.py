"""Images as the contract knows them, and the image constants every part shares."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CHANNELS = (1, 3, 4)  # channel counts on the wire: grey, RGB, RGBA
# A fill's mask (and a plug-in's selection) marks the hole where a value is >= this (of 255):
# a feathered or anti-aliased selection is in the hole where it is at least half selected.
MASK_THRESHOLD = 128


@dataclass(frozen=True)
class RawImage:
    """An image as on the wire: ``height`` rows of ``width`` pixels of ``channels`` interleaved
    uint8 samples (1 grey, 3 RGB, 4 RGBA), top row first. ``data`` is any bytes-like object
    (bytes, bytearray, memoryview) of exactly width * height * channels bytes."""

    width: int
    height: int
    channels: int
    data: Any

    def __post_init__(self) -> None:
        for name in ("width", "height", "channels"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"image {name} must be a positive integer, got {value!r}")
        if self.channels not in CHANNELS:
            raise ValueError(f"image channels must be 1, 3 or 4, got {self.channels}")
        size = memoryview(self.data).nbytes
        if size != self.nbytes:
            raise ValueError(f"image data has {size} bytes; {self.width}x{self.height}x{self.channels} "
                             f"needs {self.nbytes}")

    @property
    def nbytes(self) -> int:
        return self.width * self.height * self.channels

    def descriptor(self, frame: int) -> dict[str, int]:
        return {"width": self.width, "height": self.height, "channels": self.channels, "frame": frame}

    def __repr__(self) -> str:  # never dump megabytes of pixels
        return f"RawImage({self.width}x{self.height}x{self.channels})"
