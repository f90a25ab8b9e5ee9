"""Where a fill's hole lies, at every scale: reading the mask, growing the hole, and which
feature positions and 3x3 feature patches of the random network depend on its pixels.

Masks here are boolean numpy arrays (H, W), True inside the hole. With ``circular`` the
image is one period of a tiling: growth wraps around the edges.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import maximum_filter

from esm_contract.images import MASK_THRESHOLD

from ..images import ImageError
from .patches import PATCH

RESAMPLE_RADIUS = 2  # bicubic support, in pixels of the smaller image, when shrinking


def read_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The hole of a uint8 mask (H, W) or (H, W, 1): values >= 128. ``shape`` is the
    image's (height, width)."""
    if not isinstance(mask, np.ndarray) or mask.dtype != np.uint8:
        raise ImageError("mask must be a uint8 array")
    if mask.ndim == 3 and mask.shape[2] == 1:
        mask = mask[..., 0]
    if mask.ndim != 2:
        raise ImageError(f"mask must be HxW or HxWx1 (one channel), got shape {mask.shape}")
    if mask.shape != tuple(shape):
        raise ImageError(f"mask is {mask.shape[1]}x{mask.shape[0]} but the image is {shape[1]}x{shape[0]}")
    hole = mask >= MASK_THRESHOLD
    if not hole.any():
        faint = int(np.count_nonzero(mask))
        detail = f" ({faint} pixels are below the threshold {MASK_THRESHOLD})" if faint else ""
        raise ImageError(f"the mask selects no pixel: nothing to fill{detail}")
    return hole


def grey_pixels(mask: np.ndarray) -> int:
    """How many mask pixels are neither 0 nor 255 (they were thresholded)."""
    return int(np.count_nonzero((mask != 0) & (mask != 255)))


def grow(mask: np.ndarray, radius: int, circular: bool) -> np.ndarray:
    """Every pixel within ``radius`` (horizontally and vertically: a square) of the mask."""
    if radius <= 0:
        return mask.copy()
    return maximum_filter(mask, size=2 * radius + 1, mode="wrap" if circular else "constant", cval=False)


def shrink(mask: np.ndarray, size: tuple[int, int], circular: bool) -> np.ndarray:
    """The hole at (width, height) ``size``: every pixel whose bicubic downsampling reads a
    hole pixel, so that the pixels left outside it are untouched by the hole's content."""
    width, height = size
    if mask.shape == (height, width):
        return mask.copy()
    pooled = F.adaptive_max_pool2d(torch.from_numpy(mask)[None, None].float(), (height, width))
    return grow(pooled[0, 0].numpy() > 0, RESAMPLE_RADIUS, circular)


def feature_cells(mask: np.ndarray, scale: int, radius: int, circular: bool) -> np.ndarray:
    """Which positions of a layer (``scale`` pixels per position, reading ``radius`` pixels
    beyond its cell) see a pixel of ``mask``. Strided layers drop the image's last
    ``size % scale`` rows and columns, as the network does."""
    grown = grow(mask, radius, circular)
    rows, cols = mask.shape[0] // scale, mask.shape[1] // scale
    return grown[:rows * scale, :cols * scale].reshape(rows, scale, cols, scale).any(axis=(1, 3))


def patches_touching(cells: np.ndarray, circular: bool) -> np.ndarray:
    """For each 3x3 patch in ``extract_patches`` order (flat, row-major): does it contain a
    marked cell? Without ``circular``: (H-2)(W-2) patches; with it: H*W, wrapping."""
    touched = maximum_filter(cells, size=PATCH, mode="wrap" if circular else "constant", cval=False)
    if not circular:
        half = PATCH // 2
        touched = touched[half:touched.shape[0] - half, half:touched.shape[1] - half]
    return touched.reshape(-1)


def patch_centres(cells: np.ndarray) -> np.ndarray:
    """For each 3x3 patch taken without wrapping (flat, row-major): is its centre cell marked?"""
    half = PATCH // 2
    return cells[half:cells.shape[0] - half, half:cells.shape[1] - half].reshape(-1)
