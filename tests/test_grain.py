"""The grain step (esm_core.modes.grain): a soft image gets the exemplar's fine detail back, in
each fine octave, without its coarser content moving; tileable images stay tileable, strength 0
changes nothing."""
from __future__ import annotations

import torch

from esm_core.features.resample import finest_octave, resize
from esm_core.modes.grain import match_grain


def _texture(seed: int, size: int = 64) -> torch.Tensor:
    """Noise with structure at every scale, in [0, 255]."""
    generator = torch.Generator().manual_seed(seed)
    image = sum(resize(torch.rand(1, 3, size // step, size // step, generator=generator), size, size) * step
                for step in (1, 2, 4, 8))
    return (image - image.min()) / (image.max() - image.min()) * 255


def _detail_rms(image: torch.Tensor, level: int = 0) -> float:
    """RMS of the image's octave ``level`` (0: the finest), measured at that octave's scale."""
    side = image.shape[-1] >> level
    return float(finest_octave(resize(image, side, side)).pow(2).mean().sqrt())


def _second_octave(image: torch.Tensor) -> torch.Tensor:
    """The detail between a half and a quarter of ``image``'s resolution, at full size."""
    side = image.shape[-1]
    return resize(finest_octave(resize(image, side // 2, side // 2)), side, side)


def _soft(image: torch.Tensor, circular: bool = False) -> torch.Tensor:
    """``image`` with most of its finest octave gone, as the optimisation leaves it in places."""
    return image - 0.7 * finest_octave(image, circular)


def test_a_soft_image_gets_the_exemplars_grain_and_keeps_its_coarse_content() -> None:
    exemplar = _texture(0, 128)
    soft = _soft(_texture(1, 128))  # the same kind of texture
    sharpened = match_grain(soft, exemplar, 1.0, circular=False)
    assert _detail_rms(soft) < 0.6 * _detail_rms(exemplar)
    assert abs(_detail_rms(sharpened) / _detail_rms(exemplar) - 1) < 0.25
    # the image at a sixteenth of its size barely moves: what was added is the fine octaves' detail
    # (the third octave lies between a quarter and an eighth of the resolution)
    coarse_change = (resize(sharpened, 8, 8) - resize(soft, 8, 8)).abs().mean()
    assert coarse_change < 0.15 * (sharpened - soft).abs().mean()  # measured 0.06


def test_an_octave_above_the_finest_gets_its_strength_back_too() -> None:
    """The optimisation also leaves the shading of large shapes (leaves, beans) soft, one and two
    octaves above the finest (docs/quality.md, tenth round)."""
    exemplar, texture = _texture(0, 128), _texture(1, 128)
    soft = texture - 0.7 * _second_octave(texture)
    sharpened = match_grain(soft, exemplar, 1.0, circular=False)
    assert _detail_rms(soft, 1) < 0.7 * _detail_rms(exemplar, 1)  # measured 0.65
    assert abs(_detail_rms(sharpened, 1) / _detail_rms(exemplar, 1) - 1) < 0.25  # measured 0.83


def test_an_octave_above_the_finest_already_as_strong_as_the_exemplars_is_left_alone() -> None:
    """Matching such an octave reshaped the marble's soft cells into sharper ones (docs/quality.md,
    tenth round); only the finest octave is always matched."""
    exemplar, texture = _texture(0, 128), _texture(1, 128)
    strong = texture + 0.5 * _second_octave(texture)
    result = match_grain(strong, exemplar, 1.0, circular=False)
    assert _detail_rms(strong, 1) > 1.2 * _detail_rms(exemplar, 1)  # measured 1.25
    assert abs(_detail_rms(result, 1) / _detail_rms(strong, 1) - 1) < 0.05  # measured 0.017; matched: 0.13


def _colour_rms(image: torch.Tensor, level: int) -> float:
    """RMS of the colour (each channel minus the channels' mean) in the image's octave ``level``."""
    side = image.shape[-1] >> level
    octave = finest_octave(resize(image, side, side))
    return float((octave - octave.mean(1, keepdim=True)).pow(2).mean().sqrt())


def test_colour_noise_far_above_a_grey_exemplars_is_matched_where_the_octave_is_left_alone() -> None:
    """A grey exemplar (the rough canvas): the optimisation leaves colour speckle one octave
    above the finest, 35-77 times the exemplar's (docs/quality.md, eleventh round). The octave is
    as strong as the exemplar's as a whole, so the gate leaves its shading alone; its colour is
    taken down to the exemplar's."""
    generator = torch.Generator().manual_seed(3)
    grey = _texture(0, 128).mean(1, keepdim=True)
    exemplar = (grey + 0.5 * torch.randn(1, 3, 128, 128, generator=generator)).clamp(0, 255)
    texture = _texture(1, 128).mean(1, keepdim=True).expand(1, 3, 128, 128)
    speckle = resize(torch.randn(1, 3, 64, 64, generator=generator), 128, 128) * 8.0
    noisy = texture + 0.5 * _second_octave(texture) + (speckle - speckle.mean(1, keepdim=True))
    result = match_grain(noisy, exemplar, 1.0, circular=False)
    assert _detail_rms(noisy, 1) > 1.2 * _detail_rms(exemplar, 1)  # measured 1.48: the gate leaves it alone
    assert _colour_rms(noisy, 1) > 10 * _colour_rms(exemplar, 1)  # measured 25
    assert _colour_rms(result, 1) < 0.5 * _colour_rms(noisy, 1)  # measured 0.28; with the gate alone 0.76
    shading = _detail_rms(noisy.mean(1, keepdim=True), 1)
    assert abs(_detail_rms(result.mean(1, keepdim=True), 1) / shading - 1) < 0.05  # it stays (measured 0.017)


def test_half_strength_goes_half_way_and_zero_changes_nothing() -> None:
    exemplar, soft = _texture(0), _soft(_texture(1))
    full, half = (match_grain(soft, exemplar, strength, circular=False) for strength in (1.0, 0.5))
    assert torch.allclose(half - soft, 0.5 * (full - soft), atol=1e-3)
    assert match_grain(soft, exemplar, 0.0, circular=False) is soft


def test_tileable_images_stay_tileable() -> None:
    """With ``circular`` the step has no edges: shifting the tile shifts the result (by a
    multiple of 8 pixels: the third octave is matched at a quarter of the resolution)."""
    exemplar, tile = _texture(0), _soft(torch.roll(_texture(1), (5, 9), dims=(2, 3)), circular=True)
    shifted = torch.roll(tile, (16, 40), dims=(2, 3))
    assert torch.allclose(torch.roll(match_grain(tile, exemplar, 1.0, circular=True), (16, 40), dims=(2, 3)),
                          match_grain(shifted, exemplar, 1.0, circular=True), atol=0.05)  # ties may swap
