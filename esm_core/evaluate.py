"""Texture quality measures that need no trained weights (docs/evaluation.md).

- ``patch_swd``: sliced Wasserstein distance between the multi-scale 7x7 patch
  distributions of two images (Laplacian pyramid, as in the GAN evaluation of Karras et
  al. 2018, "Progressive growing of GANs", section 5); ``shape_swd``: the same on the
  patches' shapes alone (each patch at unit norm), blind to contrast.
- ``colour_distance``: sliced Wasserstein distance between the two images' pixel colours.
- ``seam_score``: how visible the wrap-around seam of a tiling is (1.0 = invisible).
- ``boundary_seam_score``: how visible the border of a filled hole is (1.0 = invisible);
  ``border_steps``: the colour steps across a hole's outline.
- ``flat_fraction``: how much of an image lacks the exemplar's fine detail (washed-out blotches);
  ``coarse_flat_fraction``: the same one pyramid level down (blotches that kept a fine grain).
- ``copy_fraction``: how much of an image is the exemplar copied verbatim.

Images are uint8 (H, W, C) with C = 1, 3 or 4; alpha is ignored. When one image is grey
and the other colour, the colour one is converted to grey (ITU-R BT.601 luma) so both are
compared on the same channels. Every random choice comes from ``seed``: the same inputs
give the same numbers.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.ndimage import convolve1d

from .images import ImageError, check_image

PATCH = 7
MIN_LEVEL_SIDE = 16  # the coarsest pyramid level is at least this many pixels (Karras et al.)
PROJECTIONS = 512
SHAPE_FLOOR = 0.1  # shape_swd: patches are divided by their norm plus this share of the median norm
SAMPLES = 4096  # patch centres per image and level (all of them when fewer are available)
COLOUR_PROJECTIONS = 128
COLOUR_SAMPLES = 65536
_BINOMIAL = np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0  # the 5-tap Gaussian of the pyramid
_LUMA = np.array([0.299, 0.587, 0.114])


# -- channels and masks

def _colour(image: np.ndarray, what: str) -> np.ndarray:
    """float64 (H, W, C) in [0, 255] without alpha."""
    image = check_image(image, what)
    channels = 1 if image.shape[2] == 1 else 3
    return image[..., :channels].astype(np.float64)


def _grey(pixels: np.ndarray) -> np.ndarray:
    """(H, W, 1): the channel of a grey image, the luma of a colour one."""
    return pixels if pixels.shape[2] == 1 else (pixels @ _LUMA)[..., None]


def _common_channels(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Grey against colour: the colour image becomes luma, so both have one channel."""
    if a.shape[2] == b.shape[2]:
        return a, b
    return _grey(a), _grey(b)


def _check_mask(mask: np.ndarray | None, image: np.ndarray, what: str) -> np.ndarray | None:
    if mask is None:
        return None
    mask = np.asarray(mask)
    if mask.ndim == 3 and mask.shape[2] == 1:
        mask = mask[..., 0]
    if mask.shape != image.shape[:2]:
        raise ImageError(f"{what} must be HxW {image.shape[:2]}, got shape {mask.shape}")
    mask = mask.astype(bool)
    if not mask.any():
        raise ImageError(f"{what} selects no pixel")
    return mask


# -- Laplacian pyramid

def _blur(image: np.ndarray) -> np.ndarray:
    image = convolve1d(image, _BINOMIAL, axis=0, mode="reflect")
    return convolve1d(image, _BINOMIAL, axis=1, mode="reflect")


def _down(image: np.ndarray) -> np.ndarray:
    return _blur(image)[::2, ::2]


def _up(image: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Zero-insertion upsampling to ``shape`` followed by the blur (x4 keeps the mean)."""
    big = np.zeros(shape, dtype=image.dtype)
    big[::2, ::2] = image
    return _blur(big) * 4.0


def laplacian_pyramid(image: np.ndarray, levels: int) -> list[np.ndarray]:
    """``levels`` band-pass images, finest first; the last one is the low-pass residual."""
    pyramid: list[np.ndarray] = []
    current = image
    for _ in range(levels - 1):
        smaller = _down(current)
        pyramid.append(current - _up(smaller, current.shape))
        current = smaller
    pyramid.append(current)
    return pyramid


def auto_levels(*shapes: tuple[int, ...]) -> int:
    """Karras et al.'s rule: halve down to a side of 16 pixels (at least one level)."""
    side = min(min(shape[:2]) for shape in shapes)
    if side < PATCH:
        raise ImageError(f"images must be at least {PATCH}x{PATCH} pixels for patch statistics")
    return max(1, int(math.floor(math.log2(side / MIN_LEVEL_SIDE))) + 1) if side >= MIN_LEVEL_SIDE else 1


def _level_mask(mask: np.ndarray, level: int, shape: tuple[int, ...]) -> np.ndarray:
    """The mask at pyramid ``level``: a position counts when at least half of the
    full-resolution pixels it stands for are selected."""
    step = 2 ** level
    height, width = shape[:2]
    padded = np.zeros((height * step, width * step), dtype=np.float64)
    h, w = min(mask.shape[0], height * step), min(mask.shape[1], width * step)
    padded[:h, :w] = mask[:h, :w]
    return padded.reshape(height, step, width, step).mean(axis=(1, 3)) >= 0.5


# -- sliced Wasserstein

def _sample_patches(level: np.ndarray, mask: np.ndarray | None, samples: int, rng: np.random.Generator,
                    patch: int) -> np.ndarray:
    """(N, C, patch, patch) neighbourhoods around random centres (inside ``mask`` if given)."""
    height, width = level.shape[:2]
    half = patch // 2
    valid = np.zeros((height, width), dtype=bool)
    valid[half:height - (patch - 1 - half), half:width - (patch - 1 - half)] = True
    if mask is not None:
        valid &= mask
    ys, xs = np.nonzero(valid)
    if len(ys) == 0:
        return np.zeros((0, level.shape[2], patch, patch))
    if len(ys) > samples:
        pick = rng.choice(len(ys), size=samples, replace=False)
        ys, xs = ys[pick], xs[pick]
    offsets = np.arange(patch) - half
    rows = ys[:, None, None] + offsets[None, :, None]
    cols = xs[:, None, None] + offsets[None, None, :]
    return level[rows, cols].transpose(0, 3, 1, 2)  # (N, patch, patch, C) -> (N, C, patch, patch)


def _quantiles(sorted_values: np.ndarray, count: int) -> np.ndarray:
    """The empirical quantile function of each row (sorted along the last axis) at ``count`` evenly spaced midpoints."""
    n = sorted_values.shape[-1]
    if n == count:
        return sorted_values
    index = np.minimum(((np.arange(count) + 0.5) * n / count).astype(np.int64), n - 1)
    return sorted_values[..., index]


def sliced_wasserstein(a: np.ndarray, b: np.ndarray, projections: int, rng: np.random.Generator) -> float:
    """Mean over random unit directions of the 1-D Wasserstein-1 distance between the
    projections of point sets ``a`` (N, D) and ``b`` (M, D); N and M may differ."""
    directions = rng.standard_normal((a.shape[1], projections))
    directions = (directions / np.linalg.norm(directions, axis=0, keepdims=True)).astype(np.float32)
    # float32 (projections, N): sorting along the contiguous axis is several times faster.
    pa = np.sort((a.astype(np.float32) @ directions).T, axis=1)
    pb = np.sort((b.astype(np.float32) @ directions).T, axis=1)
    count = max(pa.shape[1], pb.shape[1])
    return float(np.mean(np.abs(_quantiles(pa, count) - _quantiles(pb, count)), dtype=np.float64))


def _unit_patches(patches: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(patches, axis=1, keepdims=True)
    return patches / (norms + SHAPE_FLOOR * np.median(norms) + 1e-8)


def patch_swd_levels(
    a: np.ndarray,
    b: np.ndarray,
    *,
    levels: int | None = None,
    patch: int = PATCH,
    projections: int = PROJECTIONS,
    samples: int = SAMPLES,
    seed: int = 0,
    mask_a: np.ndarray | None = None,
    mask_b: np.ndarray | None = None,
    shapes: bool = False,
) -> list[float]:
    """Per-level patch SWD, finest level first (see ``patch_swd``). A level where either
    mask leaves no patch centre is reported as NaN. With ``shapes``, the band-pass levels
    only, each patch divided by its own norm (see ``shape_swd``)."""
    ca, cb = _common_channels(_colour(a, "first image"), _colour(b, "second image"))
    mask_a = _check_mask(mask_a, ca, "first mask")
    mask_b = _check_mask(mask_b, cb, "second mask")
    levels = auto_levels(ca.shape, cb.shape) if levels is None else levels
    if levels < 1 or min(min(ca.shape[:2]), min(cb.shape[:2])) < patch * 2 ** (levels - 1):
        raise ImageError(f"images too small for {levels} pyramid levels of {patch}x{patch} patches")
    pyramid_a = laplacian_pyramid(ca / 255.0, levels)
    pyramid_b = laplacian_pyramid(cb / 255.0, levels)
    result: list[float] = []
    if shapes:  # the low-pass residual's patches are its colours, not shapes
        pyramid_a, pyramid_b = pyramid_a[:-1], pyramid_b[:-1]
    for level, (la, lb) in enumerate(zip(pyramid_a, pyramid_b)):
        # The same seed for both images: identical images sample identical patches (distance 0).
        da = _sample_patches(la, None if mask_a is None else _level_mask(mask_a, level, la.shape),
                             samples, np.random.default_rng([seed, level, 0]), patch)
        db = _sample_patches(lb, None if mask_b is None else _level_mask(mask_b, level, lb.shape),
                             samples, np.random.default_rng([seed, level, 0]), patch)
        if len(da) == 0 or len(db) == 0:
            result.append(float("nan"))
            continue
        if shapes:
            da, db = da.reshape(len(da), -1), db.reshape(len(db), -1)
            # each patch at unit norm, softened by a floor (a share of its image's median norm,
            # so that contrast does not count) that keeps nearly flat patches small, not noise
            da, db = (_unit_patches(d) for d in (da, db))
        else:
            # Per-level, per-channel normalisation as in Karras et al., but with statistics pooled
            # over both sets: a loss of contrast (blur) must still count.
            pooled = np.concatenate([da, db])
            mean = pooled.mean(axis=(0, 2, 3), keepdims=True)
            std = pooled.std(axis=(0, 2, 3), keepdims=True) + 1e-8
            da = ((da - mean) / std).reshape(len(da), -1)
            db = ((db - mean) / std).reshape(len(db), -1)
        result.append(sliced_wasserstein(da, db, projections, np.random.default_rng([seed, level, 1])))
    return result


def patch_swd(
    a: np.ndarray,
    b: np.ndarray,
    *,
    levels: int | None = None,
    patch: int = PATCH,
    projections: int = PROJECTIONS,
    samples: int = SAMPLES,
    seed: int = 0,
    mask_a: np.ndarray | None = None,
    mask_b: np.ndarray | None = None,
) -> float:
    """Sliced Wasserstein distance between the multi-scale patch distributions of ``a`` and
    ``b`` (uint8 HxWxC; sizes may differ), averaged over pyramid levels.

    Each image is decomposed into a Laplacian pyramid (``levels``; default: halve down to a
    16-pixel side); at every level up to ``samples`` random ``patch`` x ``patch``
    neighbourhoods are taken (centres restricted to ``mask_a`` / ``mask_b`` when given,
    boolean HxW), normalised per channel with the mean and standard deviation of both sets
    together, and compared by the mean 1-D Wasserstein-1 distance along ``projections``
    random directions. 0 = same distribution; levels without any patch centre are skipped.
    """
    values = [v for v in patch_swd_levels(a, b, levels=levels, patch=patch, projections=projections,
                                          samples=samples, seed=seed, mask_a=mask_a, mask_b=mask_b)
              if not math.isnan(v)]
    if not values:
        raise ImageError("the masks leave no patch centre at any pyramid level")
    return float(np.mean(values))


def shape_swd(a: np.ndarray, b: np.ndarray, *, levels: int | None = None, seed: int = 0,
              mask_a: np.ndarray | None = None, mask_b: np.ndarray | None = None) -> float:
    """``patch_swd`` of the patches' shapes: on the band-pass levels only, every patch divided
    by its own norm (plus ``SHAPE_FLOOR`` times its image's median patch norm, so that flat
    patches stay small). Contrast and the distribution of each band's values no longer
    count, which ``patch_swd`` weighs heavily: a histogram-matched image improves
    ``patch_swd`` a lot and this barely (docs/evaluation.md)."""
    values = [v for v in patch_swd_levels(a, b, levels=levels, seed=seed, mask_a=mask_a, mask_b=mask_b, shapes=True)
              if not math.isnan(v)]
    if not values:
        raise ImageError("no band-pass pyramid level with a patch centre to compare")
    return float(np.mean(values))


def colour_distance(
    a: np.ndarray,
    b: np.ndarray,
    mask_a: np.ndarray | None = None,
    mask_b: np.ndarray | None = None,
    *,
    projections: int = COLOUR_PROJECTIONS,
    samples: int = COLOUR_SAMPLES,
    seed: int = 0,
) -> float:
    """Sliced Wasserstein-1 distance between the pixel colours of ``a`` and ``b`` (within the
    masks, if given), in 8-bit levels: the mean over ``projections`` random unit directions
    in RGB space of the average shift between the sorted projected colours. Grey images
    (or grey against colour, compared as luma) use the exact 1-D distance."""
    ca, cb = _common_channels(_colour(a, "first image"), _colour(b, "second image"))
    mask_a = _check_mask(mask_a, ca, "first mask")
    mask_b = _check_mask(mask_b, cb, "second mask")
    pixels_a = ca.reshape(-1, ca.shape[2]) if mask_a is None else ca[mask_a]
    pixels_b = cb.reshape(-1, cb.shape[2]) if mask_b is None else cb[mask_b]
    rng = np.random.default_rng([seed, 2])
    if len(pixels_a) > samples:
        pixels_a = pixels_a[rng.choice(len(pixels_a), samples, replace=False)]
    if len(pixels_b) > samples:
        pixels_b = pixels_b[rng.choice(len(pixels_b), samples, replace=False)]
    if ca.shape[2] == 1:
        count = max(len(pixels_a), len(pixels_b))
        return float(np.mean(np.abs(_quantiles(np.sort(pixels_a[:, 0]), count)
                                    - _quantiles(np.sort(pixels_b[:, 0]), count))))
    return sliced_wasserstein(pixels_a, pixels_b, projections, rng)


# -- seams

def _energy(differences: np.ndarray) -> float:
    """Mean over pixel pairs of the squared difference, summed over channels."""
    return float(np.mean(np.sum(differences ** 2, axis=-1))) if differences.size else 0.0


def _ratio(seam: float, interior: float) -> float:
    if interior <= 1e-12:
        return 1.0 if seam <= 1e-12 else float("inf")
    return seam / interior


SEAM_NEIGHBOURS = 2  # pixel pairs on each side of a seam that form its local reference


def seam_components(img: np.ndarray) -> tuple[float, float]:
    """(x, y): the seam ratios across the vertical and the horizontal wrap boundary."""
    pixels = _colour(img, "image")
    height, width = pixels.shape[:2]
    if min(height, width) < 2 * SEAM_NEIGHBOURS + 2:
        raise ImageError(f"image must be at least {2 * SEAM_NEIGHBOURS + 2}x{2 * SEAM_NEIGHBOURS + 2} "
                         "pixels for a seam score")
    ratios = []
    for axis in (1, 0):
        lines = np.moveaxis(pixels, axis, 0)  # lines[i]: column (axis 1) or row (axis 0) i
        # In a 2x2 tiling, the neighbour after the last line is the first line.
        seam = _energy(lines[:1] - lines[-1:])
        steps = np.diff(lines, axis=0)
        near = np.concatenate([steps[:SEAM_NEIGHBOURS], steps[-SEAM_NEIGHBOURS:]])
        ratios.append(_ratio(seam, max(_energy(steps), _energy(near))))
    return ratios[0], ratios[1]


def seam_score(img: np.ndarray) -> float:
    """How visible the seams of a 2x2 tiling of ``img`` are; 1.0 = invisible.

    Across the vertical seam, the gradient energy is the mean over rows of the squared
    colour difference between the last and the first column (summed over channels). It is
    divided by the larger of two interior energies, computed the same way: over every pair
    of horizontally adjacent pixels in the image, and over the 2 pairs of columns on each
    side of the seam. (An edge of the texture that happens to lie on the boundary brings
    strong gradients beside it too, and is not a seam.) Likewise for the horizontal seam
    with rows. The score is the larger of the two ratios: the more visible seam. A periodic
    image scores about 1 (its seam is a step like any other); a photo crop whose opposite
    edges do not match scores well above 1.
    """
    return max(seam_components(img))


def border_steps(image: np.ndarray, hole: np.ndarray) -> float:
    """Mean squared colour step between the neighbour pixels on either side of ``hole``'s
    outline (bool HxW). Over the same pairs of the untouched image it is issue #14's fill
    border measure: about 1 where a fill's border looks like the photo's own."""
    pixels = _colour(image, "image")
    steps = [(pixels[:, 1:] - pixels[:, :-1])[hole[:, 1:] != hole[:, :-1]],
             (pixels[1:] - pixels[:-1])[hole[1:] != hole[:-1]]]
    return float(np.mean(np.concatenate(steps) ** 2))


def boundary_seam_score(img: np.ndarray, mask: np.ndarray) -> float:
    """How visible the border of a filled region is; 1.0 = invisible. ``mask`` (boolean
    HxW) is True inside the filled hole. The mean squared colour difference (summed over
    channels) of horizontally or vertically adjacent pixel pairs with one pixel inside the
    hole and one outside, divided by the same mean over all other adjacent pairs of the
    image (both inside or both outside)."""
    pixels = _colour(img, "image")
    mask = _check_mask(mask, pixels, "mask")
    if mask.all():
        raise ImageError("mask covers the whole image: the hole has no border")
    crossing: list[np.ndarray] = []
    other: list[np.ndarray] = []
    for axis in (0, 1):
        difference = np.diff(pixels, axis=axis)
        across = np.diff(mask.astype(np.int8), axis=axis) != 0
        crossing.append(difference[across])
        other.append(difference[~across])
    return _ratio(_energy(np.concatenate(crossing)), _energy(np.concatenate(other)))


# -- blotches and verbatim copies

FLAT_WINDOW, FLAT_STRIDE = 16, 8
FLAT_PERCENTILE = 5.0
COPY_BLOCK = 8  # side of the blocks whose nearest exemplar block proposes copy offsets
_NN_CHUNK = 512


def _luma(image: np.ndarray, what: str) -> np.ndarray:
    return _grey(_colour(image, what))[..., 0]


def _box_sums(values: np.ndarray, side: int) -> np.ndarray:
    """Sums of every ``side`` x ``side`` window of a 2-D array (valid positions only)."""
    table = np.zeros((values.shape[0] + 1, values.shape[1] + 1))
    table[1:, 1:] = values.cumsum(0).cumsum(1)
    return table[side:, side:] - table[:-side, side:] - table[side:, :-side] + table[:-side, :-side]


def detail_rms(image: np.ndarray, what: str = "image") -> np.ndarray:
    """RMS of the luma's fine detail (luma minus the 5-tap binomial blur applied twice) in
    ``FLAT_WINDOW``-pixel windows at a stride of ``FLAT_STRIDE``, as a flat array."""
    luma = _luma(image, what)
    if min(luma.shape) < FLAT_WINDOW:
        raise ImageError(f"{what} must be at least {FLAT_WINDOW}x{FLAT_WINDOW} pixels for the detail measure")
    detail = luma - _blur(_blur(luma))
    mean_square = _box_sums(detail ** 2, FLAT_WINDOW)[::FLAT_STRIDE, ::FLAT_STRIDE] / FLAT_WINDOW ** 2
    return np.sqrt(mean_square).ravel()


def flat_fraction(exemplar: np.ndarray, output: np.ndarray) -> float:
    """The fraction of ``output``'s windows whose fine detail (``detail_rms``) is below the
    exemplar's 5th percentile: 0.05 for a fresh crop of the same texture, 1.0 for a blurred
    one. Washed-out blotches of a synthesis raise it."""
    threshold = np.percentile(detail_rms(exemplar, "exemplar"), FLAT_PERCENTILE)
    return float(np.mean(detail_rms(output, "output") < threshold))


def coarse_flat_fraction(exemplar: np.ndarray, output: np.ndarray) -> float:
    """``flat_fraction`` of both images one pyramid level down (5-tap blur, every second
    pixel): the detail of structures twice as large. A blotch that lost its shapes but kept a
    pixel-level grain passes ``flat`` and shows here (measured: docs/evaluation.md)."""
    def down(image: np.ndarray, what: str) -> np.ndarray:
        return np.clip(np.round(_down(_colour(image, what))), 0, 255).astype(np.uint8)
    return flat_fraction(down(exemplar, "exemplar"), down(output, "output"))


def copy_square_side(exemplar_shape: tuple[int, ...]) -> int:
    return max(32, min(exemplar_shape[:2]) // 4)


def _blocks(luma: np.ndarray, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, COPY_BLOCK²) blocks at a ``stride`` grid and their (N, 2) top-left corners."""
    ys = np.arange(0, luma.shape[0] - COPY_BLOCK + 1, stride)
    xs = np.arange(0, luma.shape[1] - COPY_BLOCK + 1, stride)
    corners = np.stack(np.meshgrid(ys, xs, indexing="ij"), -1).reshape(-1, 2)
    offsets = np.arange(COPY_BLOCK)
    rows = corners[:, 0, None, None] + offsets[None, :, None]
    cols = corners[:, 1, None, None] + offsets[None, None, :]
    return luma[rows, cols].reshape(len(corners), -1).astype(np.float32), corners


def _copy_offsets(output: np.ndarray, exemplar: np.ndarray, stride: int) -> set[tuple[int, int]]:
    """Offsets (exemplar corner - output corner) of each strided output block's nearest
    exemplar block: the only places where a copied square can lie, since a copied square's
    blocks find their own source (up to repeats in the exemplar, which are copies too)."""
    queries, query_corners = _blocks(output, stride)
    keys, key_corners = _blocks(exemplar, 1)
    key_norms = (keys ** 2).sum(1)
    offsets: set[tuple[int, int]] = set()
    for start in range(0, len(queries), _NN_CHUNK):
        chunk = queries[start:start + _NN_CHUNK]
        nearest = np.argmin(key_norms[None, :] - 2.0 * chunk @ keys.T, axis=1)
        for (qy, qx), (ky, kx) in zip(query_corners[start:start + _NN_CHUNK], key_corners[nearest]):
            offsets.add((int(ky - qy), int(kx - qx)))
    return offsets


def copy_fraction(exemplar: np.ndarray, output: np.ndarray) -> float:
    """The fraction of ``output``'s pixels covered by an axis-aligned square of side
    max(32, exemplar side / 4) that equals a square of the exemplar (at one offset, no
    rotation) within max(4, 0.1 x the exemplar's luma standard deviation) grey levels RMS of
    luma. 0 for new texture, 1 for a tiling of the exemplar."""
    source, target = _luma(exemplar, "exemplar"), _luma(output, "output")
    side = copy_square_side(source.shape)
    if min(source.shape) < side or min(target.shape) < side:
        return 0.0  # no square of that side fits: nothing can be a copy of one
    tolerance = max(4.0, 0.1 * float(source.std()))
    covered = np.zeros(target.shape, dtype=bool)
    for dy, dx in _copy_offsets(target, source, max(COPY_BLOCK, side // 4)):
        # the overlap of the output with the exemplar shifted by (dy, dx), in output coordinates
        top, left = max(0, -dy), max(0, -dx)
        bottom, right = min(target.shape[0], source.shape[0] - dy), min(target.shape[1], source.shape[1] - dx)
        if bottom - top < side or right - left < side:
            continue
        difference = target[top:bottom, left:right] - source[top + dy:bottom + dy, left + dx:right + dx]
        close = _box_sums(difference ** 2, side) <= tolerance ** 2 * side * side
        if close.any():
            # every pixel of a close square is covered: dilate the corners by the square
            reach = _box_sums(np.pad(close.astype(np.float64), side - 1), side) > 0.5
            covered[top:bottom, left:right] |= reach
    return float(covered.mean())


# -- the report printed by ``esm eval``

def _halves(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The image cut in two across its longer side."""
    height, width = image.shape[:2]
    if width >= height:
        return image[:, : width // 2], image[:, width // 2:]
    return image[: height // 2], image[height // 2:]


def evaluate(exemplar: np.ndarray, output: np.ndarray, tile: bool = False, seed: int = 0) -> dict[str, Any]:
    """The numbers ``esm eval`` prints (docs/evaluation.md): patch SWD per level and
    averaged, the same SWD between the exemplar's two halves as a reference, the colour
    distance, the flat and copy fractions and, with ``tile``, the output's seam score."""
    exemplar = check_image(exemplar, "exemplar")
    output = check_image(output, "output")
    first, second = _halves(exemplar)
    halves_usable = min(first.shape[:2]) >= PATCH  # ``first`` is never the larger half
    levels = auto_levels(exemplar.shape, output.shape, *((first.shape, second.shape) if halves_usable else ()))
    per_level = patch_swd_levels(exemplar, output, levels=levels, seed=seed)
    smallest = min(*exemplar.shape[:2], *output.shape[:2])  # the detail measures need whole windows
    report: dict[str, Any] = {
        "patch_swd": float(np.mean(per_level)),
        "patch_swd_levels": per_level,
        "patch_swd_reference": patch_swd(first, second, levels=levels, seed=seed) if halves_usable else None,
        "patch_swd_shape": shape_swd(exemplar, output, levels=levels, seed=seed) if levels > 1 else None,
        "colour_distance": colour_distance(exemplar, output, seed=seed),
        "flat": flat_fraction(exemplar, output) if smallest >= FLAT_WINDOW else None,
        "flat_coarse": coarse_flat_fraction(exemplar, output) if smallest >= 2 * FLAT_WINDOW else None,
        "copy": copy_fraction(exemplar, output),
        "levels": levels,
        "exemplar_size": [exemplar.shape[1], exemplar.shape[0]],
        "output_size": [output.shape[1], output.shape[0]],
    }
    if tile:
        seam_x, seam_y = seam_components(output)
        report.update(seam_score=max(seam_x, seam_y), seam_x=seam_x, seam_y=seam_y)
    return report
