"""Filling a hole (esm_core.modes.fill, esm fill): exact geometry, bit-identical surroundings,
texture statistics, wrap-around fill, the result forms, errors, the CLI and the daemon."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from esm_contract.jobs import parse_job
from esm_contract.params import FillParams, NetworkParams, ParamError, from_dict
from esm_cli.main import main
from esm_core import CancelToken, Cancelled, Engine, ImageError, load_image
from esm_core.evaluate import border_steps, patch_swd, seam_score
from esm_core.modes.fill import _geometry, fill_hole, footprint, restore_grain
from esm_core.modes.fillstart import BLEND_REACH, StartCopy, blend_seams, copy_start, seam_distance, start_image
from esm_core.features.holes import feature_cells, grow
from esm_core.optimisation.multiscale import plan_phases
from esm_core.features.networks import RandomNetwork, layer_scale, normalise_pixels, receptive_radius
from esm_core.features.patches import extract_patches
from esm_core.features.exemplar import to_tensor

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "esm_core" / "data"
FAST = {"phases": 1, "iterations": 4}


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine("cpu")


@pytest.fixture(scope="module")
def grass() -> np.ndarray:
    return load_image(DATA / "grass.png")


@pytest.fixture(scope="module")
def brick() -> np.ndarray:
    return load_image(DATA / "brick.png")


def square_mask(size: int, *boxes: tuple[int, int, int, int]) -> np.ndarray:
    mask = np.zeros((size, size, 1), np.uint8)
    for top, left, bottom, right in boxes:
        mask[top:bottom, left:right] = 255
    return mask


def coloured(grey: np.ndarray) -> np.ndarray:
    """A colour image from a grey texture (the channels differ, so a channel mix-up shows)."""
    g = grey[..., 0].astype(np.int32)
    return np.stack([g, (g * 3) // 4 + 40, 255 - g], axis=2).astype(np.uint8)


# -- geometry: which pixels and patches count


@pytest.mark.parametrize("name,network", [
    ("3_1", NetworkParams()), ("4_1", NetworkParams()), ("4_1", NetworkParams(depth=2)),
    ("3_1", NetworkParams(downsample="avg")), ("2_1", NetworkParams(downsample="max")),
])
def test_receptive_radius_is_exactly_what_a_pixel_changes(name: str, network: NetworkParams) -> None:
    net = RandomNetwork(network)
    image = torch.rand(1, 3, 64, 64) * 2 - 1
    changed_pixel = np.zeros((64, 64), bool)
    changed_pixel[29, 34] = True
    poked = image.clone()
    poked[..., 29, 34] += 0.5
    with torch.no_grad():
        changed = (net(image, [name])[name] - net(poked, [name])[name]).abs().amax(1)[0] > 0
    predicted = feature_cells(changed_pixel, layer_scale(name), receptive_radius(name, network), False)
    assert np.array_equal(changed.numpy(), predicted)


def test_style_patches_never_read_the_hole_and_every_patch_that_does_is_penalised(grass: np.ndarray) -> None:
    params = FillParams(context=1000)
    image = grass[:96, :96]
    hole = square_mask(96, (30, 40, 62, 70), (0, 0, 10, 12))[..., 0] > 0
    phase = plan_phases((96, 96), (96, 96), 1, 24)[-1]
    geometry = _geometry(hole, phase, params, from_source=False)
    net = RandomNetwork(params.network)
    pixels = to_tensor(image, torch.device("cpu"))
    other = pixels.clone()
    other[..., torch.from_numpy(hole)] = torch.rand(int(hole.sum())) * 255
    with torch.no_grad():
        before = net(normalise_pixels(pixels), params.layers)
        after = net(normalise_pixels(other), params.layers)
    for name in params.layers:
        differs = (extract_patches(before[name]) - extract_patches(after[name])).abs().amax(1) > 0
        keep, select = torch.from_numpy(geometry.keep[name]), torch.from_numpy(geometry.select[name])
        assert not (differs & keep).any()  # no style patch sees a hole pixel
        assert torch.equal(differs, select)  # exactly the patches that see one are matched
        assert keep.sum() > 0


def test_start_copies_known_texture_and_marks_its_seams(grass: np.ndarray) -> None:
    image = grass[:96, :96]
    hole = square_mask(96, (32, 32, 56, 60))[..., 0] > 0
    copy = copy_start(image, hole, None, 12, False, 0)
    pieces = copy.pieces
    assert np.array_equal(copy.pixels[~hole], image[~hole]) and (pieces[~hole] == 0).all() and (pieces[hole] > 0).all()
    ys, xs = np.nonzero(hole)
    rows, cols = copy.origin[ys, xs, 0], copy.origin[ys, xs, 1]
    assert not hole[rows, cols].any() and np.array_equal(copy.pixels[ys, xs], image[rows, cols])
    start, start_pieces = start_image(image, hole, None, 12, False, 0)
    assert np.array_equal(start[~hole], image[~hole]) and np.array_equal(start_pieces, pieces)
    depth = seam_distance(pieces, False)
    assert depth[~hole].max() == 0 and depth[44, 46] > depth[33, 46] > 0


def test_blending_gives_the_border_the_steps_of_the_copy_origin_and_keeps_its_inside(grass: np.ndarray) -> None:
    image = grass[:96, :96].astype(np.int32)
    image[:, 50:] += 40  # the copy comes from a brighter region: a seam of about 40 grey levels
    image = image.clip(0, 255).astype(np.uint8)
    hole = square_mask(96, (28, 8, 68, 48))[..., 0] > 0
    origin = np.full(hole.shape + (2,), -1, np.int64)
    ys, xs = np.nonzero(hole)
    origin[ys, xs] = np.stack([ys, xs + 44], axis=1)
    pixels = image.astype(np.float64)
    pixels[ys, xs] = image[ys, xs + 44]
    copy = StartCopy(pixels, hole.astype(np.int32), origin)
    blended = blend_seams(copy, image, hole, None, False)
    assert np.array_equal(blended[~hole], image[~hole])
    copied = np.clip(np.round(pixels), 0, 255).astype(np.uint8)
    natural = border_steps(np.roll(image, -44, axis=1), hole)  # the same outline around the origin
    excess = border_steps(blended, hole) - natural, border_steps(copied, hole) - natural
    assert excess[0] < 0.3 * excess[1]  # most of the seam is gone
    assert abs(int(blended[48, 28, 0]) - int(copied[48, 28, 0])) <= 1  # 20 px = 5 reaches inside: held
    assert BLEND_REACH * 5 <= 20


def test_grain_is_given_back_where_the_copy_is_held(grass: np.ndarray) -> None:
    start = to_tensor(grass[:64, :64], "cpu")
    blurred = torch.nn.functional.interpolate(torch.nn.functional.avg_pool2d(start, 2), scale_factor=2,
                                              mode="bilinear", align_corners=False)
    held = torch.zeros(1, 1, 64, 64)
    held[..., :, 32:] = 1.0
    restored = restore_grain(blurred, start, held, False)
    assert torch.equal(restored[..., :32], blurred[..., :32])  # not held: the optimised pixels as they are
    error_before = (blurred - start)[..., 40:].abs().mean()
    assert (restored - start)[..., 40:].abs().mean() < 0.5 * error_before


# -- results


def test_pixels_outside_the_holes_are_bit_identical(engine: Engine, brick: np.ndarray) -> None:
    image = coloured(brick[:80, :80])
    mask = square_mask(80, (0, 0, 14, 20), (30, 36, 50, 60), (66, 70, 80, 80))  # corner, middle, border
    mask[40, 10] = 200  # grey values >= 128 are hole
    mask[5, 60] = 127  # and below are not
    result = engine.fill(image, mask, FillParams(**FAST))
    hole = mask[..., 0] >= 128
    assert result.shape == image.shape and result.dtype == np.uint8
    assert np.array_equal(result[~hole], image[~hole])
    assert (result[hole] != image[hole]).any()


def test_rgba_keeps_alpha_outside_and_makes_the_hole_opaque(engine: Engine, brick: np.ndarray) -> None:
    image = np.concatenate([coloured(brick[:64, :64]), np.full((64, 64, 1), 90, np.uint8)], axis=2)
    mask = square_mask(64, (20, 20, 40, 40))
    hole = mask[..., 0] > 0
    result = engine.fill(image, mask, FillParams(**FAST))
    assert result.shape == (64, 64, 4)
    assert np.array_equal(result[~hole], image[~hole])
    assert (result[hole, 3] == 255).all()


def test_layer_output_holds_only_the_hole(engine: Engine, grass: np.ndarray) -> None:
    image, mask = grass[:64, :64], square_mask(64, (20, 24, 40, 44))
    hole = mask[..., 0] > 0
    composite = engine.fill(image, mask, FillParams(**FAST))
    layer = engine.run(parse_job("fill", {**FAST, "output": "layer"}, {"image": image, "mask": mask}))[0]
    assert layer.shape == (64, 64, 4)
    assert (layer[hole, 3] == 255).all() and (layer[~hole] == 0).all()
    assert all(np.array_equal(layer[hole, c], composite[hole, 0]) for c in range(3))  # grey as RGB


def test_hole_statistics_match_the_surroundings_far_better_than_a_flat_fill(
        engine: Engine, grass: np.ndarray) -> None:
    image, mask = grass[:96, :96], square_mask(96, (32, 32, 64, 64))
    hole = mask[..., 0] > 0
    surroundings = grow(hole, 24, False) & ~hole
    result = engine.fill(image, mask, FillParams(phases=2, iterations=5))
    flat = image.copy()
    flat[hole] = int(round(image[~hole].mean()))
    filled_swd = patch_swd(result, image, mask_a=hole, mask_b=surroundings)
    flat_swd = patch_swd(flat, image, mask_a=hole, mask_b=surroundings)
    assert filled_swd < 0.5 * flat_swd


def test_fill_border_steps_are_closer_to_the_photo_than_the_copy_it_starts_from(
        engine: Engine, grass: np.ndarray) -> None:
    image, mask = grass[:96, :96], square_mask(96, (32, 32, 64, 64))
    hole = mask[..., 0] > 0
    params = FillParams(phases=2, iterations=5)
    copy = copy_start(image, hole, None, footprint(params), False, params.seed)
    copied = np.clip(np.round(copy.pixels), 0, 255).astype(np.uint8)
    result = engine.fill(image, mask, params)
    natural = border_steps(image, hole)
    assert abs(np.log(border_steps(result, hole) / natural)) < abs(np.log(border_steps(copied, hole) / natural))


def test_wrap_around_fill_makes_an_image_tile(engine: Engine, grass: np.ndarray) -> None:
    image = grass[10:74, 30:94].copy()
    assert seam_score(image) > 1.8  # the crop does not tile
    mask = np.zeros((64, 64, 1), np.uint8)
    mask[:8], mask[-8:], mask[:, :8], mask[:, -8:] = 255, 255, 255, 255  # a cross over the wrap seam
    result = engine.fill(image, mask, FillParams(tileable=True, phases=2, iterations=5))
    assert seam_score(result) < 1.3
    assert np.array_equal(result[8:-8, 8:-8], image[8:-8, 8:-8])


def test_source_image_with_other_channels_supplies_the_texture(engine: Engine, grass: np.ndarray) -> None:
    image = coloured(grass[:48, :48])
    mask = np.full((48, 48, 1), 255, np.uint8)  # everything: only the source can say what to paint
    source = grass[100:180, 100:180]
    result = engine.fill(image, mask, FillParams(**FAST), source=source).astype(np.int32)
    assert result.shape == (48, 48, 3)
    assert np.abs(result[..., 0] - result[..., 2]).mean() < 3  # a grey source gives grey texture
    assert result.std() > 0.6 * source.std()  # texture, not a flat wash


def test_progress_previews_have_the_result_size_and_cancel_stops(engine: Engine, grass: np.ndarray) -> None:
    image, mask = grass[:64, :64], square_mask(64, (20, 20, 40, 40))
    previews = []
    engine.fill(image, mask, FillParams(phases=2, iterations=2), progress=lambda p: previews.append(p.preview()))
    assert previews and all(p.shape == (64, 64, 1) for p in previews)
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        engine.fill(image, mask, FillParams(**FAST), cancel=token)


# -- errors


@pytest.mark.parametrize("mask,message", [
    (np.zeros((32, 64, 1), np.uint8), "mask is 64x32 but the image is 64x64"),
    (np.zeros((64, 64, 1), np.uint8), "selects no pixel"),
    (np.full((64, 64, 1), 100, np.uint8), "below the threshold 128"),
    (np.full((64, 64, 1), 255, np.uint8), "covers the whole image"),
    (np.zeros((64, 64, 3), np.uint8), "one channel"),
    (np.zeros((64, 64, 1), np.float32), "uint8"),
])
def test_bad_masks_are_refused(engine: Engine, grass: np.ndarray, mask: np.ndarray, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        engine.fill(grass[:64, :64], mask, FillParams(**FAST))


@pytest.mark.parametrize("params,message", [
    ({"width": 64}, "no width/height"), ({"context": 0}, "context"), ({"output": "png"}, "output"),
    ({"loss": "gram"}, "loss=patches"), ({"swd_weight": 1.0}, "distribution term"),
    ({"copy_penalty": 0.1}, "copy penalty must be 0"),
    ({"grain": 0.5}, "grain must be 0"),
    ({"start": "spot"}, "start must be copy"),
])
def test_bad_fill_params_are_refused(params: dict, message: str) -> None:
    with pytest.raises(ParamError, match=message):
        from_dict(FillParams, params)


def test_job_needs_image_and_mask(grass: np.ndarray) -> None:
    with pytest.raises(ParamError, match="mask"):
        parse_job("fill", FAST, {"image": grass[:64, :64]})


def test_too_little_context_is_refused(engine: Engine, grass: np.ndarray) -> None:
    image = grass[:40, :40]
    with pytest.raises(ImageError, match="not enough known pixels"):
        fill_hole(engine, image, square_mask(40, (4, 4, 36, 36)), FillParams(**FAST))


# -- the command


def esm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "esm_cli.main", *args], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)


def write_inputs(folder: Path, grass: np.ndarray) -> tuple[Path, Path]:
    image, mask = folder / "image.png", folder / "mask.png"
    Image.fromarray(coloured(grass[:64, :64])).save(image)
    rgb_mask = np.zeros((64, 64, 3), np.uint8)
    rgb_mask[20:40, 16:44] = 255
    rgb_mask[50, 50] = 180  # a grey pixel: thresholded, and the user is told
    Image.fromarray(rgb_mask).save(mask)
    return image, mask


def test_cli_fills_and_writes_a_layer(tmp_path: Path, grass: np.ndarray) -> None:
    image, mask = write_inputs(tmp_path, grass)
    out, layer = tmp_path / "out.png", tmp_path / "layer.png"
    run = esm("fill", str(image), "--mask", str(mask), "-o", str(out), "--phases", "1", "--iterations", "3",
              "--no-daemon")
    assert run.returncode == 0, run.stderr
    assert "1 mask pixels are neither black nor white" in run.stderr
    original, result = np.asarray(Image.open(image)), np.asarray(Image.open(out))
    hole = np.zeros((64, 64), bool)
    hole[20:40, 16:44] = True
    hole[50, 50] = True
    assert np.array_equal(result[~hole], original[~hole])
    assert main(["fill", str(image), "--mask", str(mask), "-o", str(layer), "--phases", "1", "--iterations", "3",
                 "--output-layer", "--no-daemon", "-q"]) == 0
    rgba = np.asarray(Image.open(layer))
    assert rgba.shape == (64, 64, 4) and np.array_equal(rgba[..., 3] == 255, hole)


@pytest.mark.parametrize("extra,message", [
    (["--context", "0"], "context must be between"),  # --size is not offered (tests/test_cli_checks.py)
])
def test_cli_refuses_bad_options(tmp_path: Path, grass: np.ndarray, capsys: pytest.CaptureFixture[str],
                                 extra: list[str], message: str) -> None:
    image, mask = write_inputs(tmp_path, grass)
    assert main(["fill", str(image), "--mask", str(mask), "-o", str(tmp_path / "o.png"), "--no-daemon",
                 *extra]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o.png").exists()


def test_cli_fill_runs_on_the_daemon(tmp_path: Path, grass: np.ndarray, daemon) -> None:
    image, mask = write_inputs(tmp_path, grass)
    out = tmp_path / "out.png"
    run = subprocess.run([sys.executable, "-m", "esm_cli.main", "fill", str(image), "--mask", str(mask), "-o",
                          str(out), "--phases", "1", "--iterations", "2", "--output-layer", "--daemon", "-q"],
                         capture_output=True, text=True, timeout=300, cwd=ROOT, env=daemon.env)
    assert run.returncode == 0, run.stderr
    rgba = np.asarray(Image.open(out))
    assert rgba.shape == (64, 64, 4) and (rgba[20:40, 16:44, 3] == 255).all() and rgba[0, 0, 3] == 0
