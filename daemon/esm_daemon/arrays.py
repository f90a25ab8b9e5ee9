"""RawImage (wire) <-> numpy uint8 HxWxC (engine), without copying pixels where possible."""
from __future__ import annotations

import numpy as np

from esm_api.protocol import RawImage


def to_array(image: RawImage) -> np.ndarray:
    """A read-only view of the image's bytes as (H, W, C) uint8."""
    return np.frombuffer(memoryview(image.data), dtype=np.uint8).reshape(image.height, image.width, image.channels)


def from_array(array: np.ndarray) -> RawImage:
    """Wraps a uint8 (H, W, C) or (H, W) array; the RawImage shares its memory."""
    if array.ndim == 2:
        array = array[..., None]
    array = np.ascontiguousarray(array, dtype=np.uint8)
    height, width, channels = array.shape
    return RawImage(width, height, channels, memoryview(array).cast("B"))
