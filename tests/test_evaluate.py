"""Quality measures (esm_core.evaluate) and `esm eval`: each measure must separate what it
claims to separate, on the bundled photos and on images built here."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import gaussian_filter

from esm_core import Engine, ImageError, SynthesisParams, load_image
from esm_core.evaluate import (
    boundary_seam_score, coarse_flat_fraction, colour_distance, copy_fraction, copy_square_side, evaluate,
    flat_fraction, patch_swd, patch_swd_levels, seam_components, seam_score, shape_swd,
)

ROOT = Path(__file__).resolve().parents[1]
BRICK_PATH = ROOT / "esm_core" / "data" / "brick.png"
BRICK = load_image(BRICK_PATH)
GRASS = load_image(ROOT / "esm_core" / "data" / "grass.png")


def blur(image: np.ndarray, sigma: float = 2.0) -> np.ndarray:
    return np.clip(np.round(gaussian_filter(image.astype(float), (sigma, sigma, 0))), 0, 255).astype(np.uint8)


def noise_like(image: np.ndarray, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, image.shape, dtype=np.uint8)


def shrink(image: np.ndarray, side: int) -> np.ndarray:
    return np.array(Image.fromarray(image[..., 0]).resize((side, side), Image.Resampling.LANCZOS))[..., None]


def periodic_field(width: int, height: int, seed: int) -> np.ndarray:
    """A stationary random texture that tiles exactly: filtered noise built from sinusoids
    with integer periods (an inverse FFT)."""
    rng = np.random.default_rng(seed)
    fy, fx = np.fft.fftfreq(height)[:, None], np.fft.fftfreq(width)[None, :]
    amplitude = 1.0 / (np.hypot(fx, fy) + 0.02) ** 1.5
    field = np.real(np.fft.ifft2(np.fft.fft2(rng.standard_normal((height, width))) * amplitude))
    field = (field - field.mean()) / field.std()
    return np.clip(np.round(128 + 40 * field), 0, 255).astype(np.uint8)[..., None]


# -- patch SWD

def test_patch_swd_of_an_image_with_itself_is_zero() -> None:
    assert patch_swd(BRICK, BRICK) == pytest.approx(0.0, abs=1e-9)
    assert patch_swd(BRICK, BRICK, seed=3) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("texture, wrong", [(BRICK, GRASS), (GRASS, BRICK)], ids=["brick", "grass"])
def test_another_crop_of_the_same_texture_is_much_closer_than_noise_blur_or_another_texture(
        texture: np.ndarray, wrong: np.ndarray) -> None:
    left, right = texture[:, :128], texture[:, 128:]
    same = patch_swd(left, right)
    others = {"noise": patch_swd(left, noise_like(right)), "blurred": patch_swd(left, blur(right)),
              "wrong texture": patch_swd(left, wrong[:, 128:])}
    for name, distance in others.items():
        assert same < 0.6 * distance, (name, same, distance)


@pytest.mark.parametrize("texture", [BRICK, GRASS], ids=["brick", "grass"])
def test_shape_swd_is_blind_to_contrast_but_sees_blur_and_noise(texture: np.ndarray) -> None:
    """patch_swd counts a crop at half its contrast as far off as a blurred one; shape_swd
    counts it as the crop itself (measured: 1.01x and 1.13x), and blur and noise still
    count (1.46-3.0x)."""
    left, right = texture[:, :128], texture[:, 128:]
    mean = right.mean(axis=(0, 1))
    faint = np.clip(np.round(mean + 0.5 * (right - mean)), 0, 255).astype(np.uint8)
    assert patch_swd(left, faint) > 2 * patch_swd(left, right)
    same = shape_swd(left, right)
    assert shape_swd(left, faint) < 1.2 * same
    for name, other in {"blurred": blur(right), "noise": noise_like(right)}.items():
        assert shape_swd(left, other) > 1.3 * same, name


def test_patch_swd_is_deterministic_and_symmetric_in_its_normalisation() -> None:
    first = patch_swd(BRICK[:, :128], GRASS[:, :128], seed=5)
    assert patch_swd(BRICK[:, :128], GRASS[:, :128], seed=5) == first
    assert patch_swd(GRASS[:, :128], BRICK[:, :128], seed=5) == pytest.approx(first, rel=0.25)


def test_levels_default_to_halving_down_to_16_pixels() -> None:
    assert len(patch_swd_levels(BRICK, BRICK)) == 5  # 256, 128, 64, 32, 16
    assert len(patch_swd_levels(BRICK[:64, :64], BRICK)) == 3
    with pytest.raises(ImageError):
        patch_swd(BRICK[:6, :6], BRICK)
    with pytest.raises(ImageError):
        patch_swd(BRICK[:40, :40], BRICK, levels=4)


def test_masks_restrict_the_patches_to_a_region() -> None:
    # Left half brick, right half grass; the mask picks the grass side.
    mixed = np.concatenate([BRICK[:, :128], GRASS[:, 128:]], axis=1)
    grass_side = np.zeros(mixed.shape[:2], bool)
    grass_side[:, 128:] = True
    to_grass = patch_swd(mixed, GRASS[:, :128], mask_a=grass_side)
    to_brick = patch_swd(mixed, BRICK[:, 128:], mask_a=grass_side)
    assert to_grass < 0.6 * to_brick
    with pytest.raises(ImageError):
        patch_swd(mixed, GRASS, mask_a=np.zeros(mixed.shape[:2], bool))
    with pytest.raises(ImageError):
        patch_swd(mixed, GRASS, mask_a=np.ones((10, 10), bool))


def test_grey_against_colour_compares_luma() -> None:
    rgb = np.repeat(BRICK, 3, axis=2)
    rgba = np.concatenate([rgb, np.zeros_like(BRICK)], axis=2)  # alpha is ignored
    assert patch_swd(BRICK, rgb) == pytest.approx(0.0, abs=1e-9)
    assert patch_swd(rgba, BRICK) == pytest.approx(0.0, abs=1e-9)
    assert colour_distance(rgba, BRICK) == pytest.approx(0.0, abs=1e-9)


def test_a_real_synthesis_scores_far_closer_than_noise_blur_or_a_wrong_texture() -> None:
    exemplar = shrink(BRICK, 64)
    result = Engine("cpu").synthesize(exemplar, SynthesisParams(width=64, height=64, phases=2, iterations=10))
    synthesis = patch_swd(exemplar, result)
    baselines = {"noise": noise_like(result), "blurred synthesis": blur(result, 1.5),
                 "blurred exemplar": blur(exemplar, 1.5), "grass": shrink(GRASS, 64)}
    for name, image in baselines.items():
        assert synthesis < 0.5 * patch_swd(exemplar, image), name


# -- colour distance

def test_colour_distance_measures_shifts_in_8_bit_levels() -> None:
    darker = (BRICK.astype(int) // 2).astype(np.uint8)
    assert colour_distance(BRICK, BRICK) == 0.0
    # Grey: the exact 1-D Wasserstein distance, here the mean of the halving's change.
    assert colour_distance(BRICK, darker) == pytest.approx(np.mean(BRICK - darker), rel=0.02)
    rgb = np.random.default_rng(0).integers(0, 200, (64, 64, 3), dtype=np.uint8)
    shifted = rgb + np.uint8(40)
    assert 10.0 < colour_distance(rgb, shifted) <= 40.0 * np.sqrt(3) + 1e-6
    assert colour_distance(rgb, rgb[::-1, ::-1]) == pytest.approx(0.0, abs=1e-9)  # a permutation


def test_colour_distance_within_masks() -> None:
    mixed = BRICK.copy()
    mixed[:, 128:] = 255 - mixed[:, 128:]
    left = np.zeros(mixed.shape[:2], bool)
    left[:, :128] = True
    assert colour_distance(mixed, BRICK, left, left) == pytest.approx(0.0, abs=1e-9)
    assert colour_distance(mixed, BRICK, ~left, ~left) > 20.0


# -- seams

@pytest.mark.parametrize("seed", range(4))
def test_periodic_images_have_an_invisible_seam(seed: int) -> None:
    field = periodic_field(128, 96, seed)
    for image in (field, np.tile(field, (2, 3, 1)), np.roll(field, (30, 50), axis=(0, 1))):
        assert 0.75 < seam_score(image) < 1.35


@pytest.mark.parametrize("seed", range(4))
def test_an_off_period_crop_has_a_visible_seam(seed: int) -> None:
    field = periodic_field(256, 256, seed)
    assert seam_score(field[:128, :128]) > 4.0
    assert seam_score(field[10:150, 37:190]) > 4.0


def test_photos_do_not_tile() -> None:
    assert seam_score(BRICK) > 3.0
    assert seam_score(BRICK[:100, :100]) > 3.0
    seam_x, seam_y = seam_components(BRICK)
    assert seam_score(BRICK) == max(seam_x, seam_y)


def test_seam_score_of_stripes_and_tiny_images() -> None:
    row = periodic_field(240, 1, 3)  # a periodic 1-D texture, repeated down 40 rows
    stripes = np.ascontiguousarray(np.broadcast_to(row, (40, 240, 1)))
    assert seam_components(stripes)[1] == 1.0  # no vertical change anywhere: no seam either
    assert 0.75 < seam_score(stripes) < 1.35
    assert seam_score(stripes[:, :150]) > 4.0  # cut off-period
    with pytest.raises(ImageError):
        seam_score(stripes[:5])


@pytest.mark.parametrize("phase", np.linspace(0.0, 3.0, 7))
def test_sinusoids_with_integer_periods_tile_whatever_their_phase(phase: float) -> None:
    y, x = np.mgrid[0:60, 0:80]
    waves = 128 + 60 * np.sin(2 * np.pi * x / 20 + phase) + 40 * np.cos(2 * np.pi * (y / 30 + x / 40) + 2 * phase)
    image = np.round(waves).astype(np.uint8)[..., None]
    assert 0.75 < seam_score(image) < 1.4
    assert seam_score(image[:, :70]) > 2.0  # 70 is no multiple of the periods


def test_a_soft_edge_lying_on_the_boundary_is_no_seam() -> None:
    # A tileable texture with a soft bright line whose flank crosses the wrap boundary: the jump
    # across the boundary is 3x the image's average gradient, but no larger than beside it.
    field = periodic_field(128, 96, 0).astype(float)
    x = np.arange(128)
    position = np.where(x < 64, x, x - 128)  # column 127 is -1: the boundary lies between -1 and 0
    line = 120 * np.exp(-((position - 1) / 4) ** 2)
    image = np.clip(np.round(field * 0.5 + line[None, :, None]), 0, 255).astype(np.uint8)
    assert 0.75 < seam_score(image) < 1.35
    assert seam_score(np.roll(image, 40, axis=1)[:, :100]) > 2.0  # the same image cut off-period


def test_boundary_seam_score_sees_a_pasted_patch() -> None:
    hole = np.zeros(GRASS.shape[:2], bool)
    hole[80:170, 60:180] = True
    assert 0.7 < boundary_seam_score(GRASS, hole) < 1.3  # untouched: nothing to see
    pasted = GRASS.copy()
    pasted[hole] = BRICK[hole]
    assert boundary_seam_score(pasted, hole) > 1.8
    flat = GRASS.copy()
    flat[hole] = 128
    assert boundary_seam_score(flat, hole) > 1.2
    with pytest.raises(ImageError):
        boundary_seam_score(GRASS, np.ones(GRASS.shape[:2], bool))


# -- evaluate and esm eval

def test_evaluate_reports_the_documented_keys() -> None:
    report = evaluate(BRICK, GRASS[:128, :192])
    assert set(report) == {"patch_swd", "patch_swd_levels", "patch_swd_reference", "patch_swd_shape",
                           "colour_distance", "flat", "flat_coarse", "copy", "levels", "exemplar_size", "output_size"}
    assert report["patch_swd_shape"] == shape_swd(BRICK, GRASS[:128, :192], levels=4)
    assert report["levels"] == len(report["patch_swd_levels"]) == 4
    assert report["patch_swd"] == pytest.approx(np.mean(report["patch_swd_levels"]))
    assert report["patch_swd_reference"] < report["patch_swd"]
    assert report["output_size"] == [192, 128]
    tiled = evaluate(BRICK, periodic_field(96, 96, 0), tile=True)
    assert 0.75 < tiled["seam_score"] < 1.35 and tiled["seam_score"] == max(tiled["seam_x"], tiled["seam_y"])
    small = evaluate(BRICK[:10, :10], BRICK[:30, :30])
    assert small["patch_swd_reference"] is None and small["flat"] is None  # halves, exemplar too small
    assert small["flat_coarse"] is None


def esm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "esm_cli.main", *args], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)


def test_esm_eval_prints_json(tmp_path: Path) -> None:
    tile = tmp_path / "tile.png"
    Image.fromarray(periodic_field(128, 128, 1)[..., 0]).save(tile)
    run = esm("eval", str(BRICK_PATH), str(tile), "--tile")
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report == evaluate(BRICK, load_image(tile), tile=True)
    assert report["patch_swd"] > 2 * report["patch_swd_reference"]  # a smooth field is no brick wall
    plain = json.loads(esm("eval", str(BRICK_PATH), str(BRICK_PATH)).stdout)
    assert plain["patch_swd"] == 0.0 and plain["colour_distance"] == 0.0 and "seam_score" not in plain


@pytest.mark.parametrize("args, message", [
    (["missing.png", "{brick}"], "no such file"),
    (["{brick}", "{corrupt}"], "not a readable image"),
    (["{brick}", "{tiny}"], "at least 7x7"),
    (["{brick}", "{brick}", "--seed", "-1"], "--seed"),
    (["{brick}", "{brick}", "--bogus"], "unrecognized arguments"),
])
def test_esm_eval_errors_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    tiny = tmp_path / "tiny.png"
    Image.new("L", (5, 5)).save(tiny)
    paths = {"brick": str(BRICK_PATH), "corrupt": str(corrupt), "tiny": str(tiny)}
    run = esm("eval", *(a.format(**paths) for a in args))
    assert run.returncode == 2
    assert run.stdout == ""
    assert len(run.stderr.strip().splitlines()) == 1 and message in run.stderr, run.stderr


# -- flat and copy: washed-out areas and verbatim copies

def test_flat_separates_a_fresh_crop_from_a_blurred_one() -> None:
    exemplar, fresh = GRASS[:128, :128], GRASS[128:, 128:]
    assert flat_fraction(exemplar, fresh) < 0.2
    assert flat_fraction(exemplar, blur(fresh)) > 0.9
    assert flat_fraction(exemplar, np.full_like(fresh, 90)) == 1.0


def test_coarse_flat_finds_blotches_that_kept_their_fine_grain() -> None:
    exemplar, fresh = GRASS[:128, :128], GRASS[128:, 128:].astype(float)
    grain = fresh - gaussian_filter(fresh, (1, 1, 0))
    blotch = np.clip(np.round(gaussian_filter(fresh, (4, 4, 0)) + grain), 0, 255).astype(np.uint8)
    assert coarse_flat_fraction(exemplar, GRASS[128:, 128:]) < 0.2
    assert flat_fraction(exemplar, blotch) < 0.5 < coarse_flat_fraction(exemplar, blotch)


def test_copy_separates_new_texture_from_the_exemplar_tiled_or_shifted() -> None:
    exemplar, fresh = GRASS[:128, :128], GRASS[128:, 128:]
    assert copy_fraction(exemplar, fresh) == 0.0
    assert copy_fraction(exemplar, np.tile(exemplar, (2, 2, 1))) > 0.99
    shifted = np.roll(exemplar, (40, 17), axis=(0, 1))  # four pieces of the exemplar, each 40 px or more
    assert copy_fraction(exemplar, shifted) > 0.6
    assert copy_fraction(exemplar, noise_like(exemplar)) == 0.0


def test_copy_counts_only_squares_of_the_measured_side() -> None:
    exemplar = GRASS[:128, :128]
    side = copy_square_side(exemplar.shape)
    pasted = GRASS[128:, 128:].copy()
    pasted[:side - 4, :side - 4] = exemplar[:side - 4, :side - 4]  # a copied piece just too small to count
    assert copy_fraction(exemplar, pasted) == 0.0
    pasted[:side, :side] = exemplar[:side, :side]
    assert copy_fraction(exemplar, pasted) == pytest.approx(side * side / pasted[..., 0].size)


def test_eval_reports_flat_and_copy() -> None:
    report = evaluate(GRASS[:128, :128], np.tile(GRASS[:128, :128], (2, 2, 1)))
    assert report["copy"] > 0.99 and report["flat"] < 0.2
