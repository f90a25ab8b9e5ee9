"""The copy penalty (esm_core.losses.copies): offsets as table keys, and matches spread away from
an offset that copies a large region, leaving small coherent regions alone."""
from __future__ import annotations

import itertools

import pytest
import torch

from esm_core.features.patches import extract_patches, normalise_rows
from esm_core.losses.copies import (FADED_AREA, FADED_SHARE, FULL_AREA, OffsetTable, offset_penalties,
                                    spread_copies, strength_for_size)


def test_two_pairs_have_the_same_key_exactly_when_they_have_the_same_offset() -> None:
    table = OffsetTable((3, 4), (5, 2))
    pairs = list(itertools.product(range(12), range(10)))
    keys = table.keys(torch.tensor([q for q, _ in pairs]), torch.tensor([s for _, s in pairs]))
    offsets = [(s // 2 - q // 4, s % 2 - q % 4) for q, s in pairs]
    assert int(keys.min()) >= 0 and int(keys.max()) < table.size
    for (key_a, offset_a), (key_b, offset_b) in itertools.combinations(zip(keys.tolist(), offsets), 2):
        assert (key_a == key_b) == (offset_a == offset_b)


def test_an_offset_is_free_up_to_its_share_and_penalised_beyond() -> None:
    table = OffsetTable((40, 40), (40, 40))
    keys = torch.cat([torch.full((1000,), 7), torch.full((10,), 9)])
    penalties = offset_penalties(table, keys, 0.5)
    assert float(penalties[7]) == 0.5 and float(penalties[9]) == 0.0
    assert int((penalties > 0).sum()) == 1


def test_the_strength_is_full_near_the_exemplars_size_and_faded_from_twice_its_side() -> None:
    exemplar = 256 * 256
    assert strength_for_size(0.5, exemplar, exemplar) == 0.5
    assert strength_for_size(0.5, 272 * 272, exemplar) == 0.5  # own size with the 8 px margin
    assert strength_for_size(0.5, int(FADED_AREA * exemplar), exemplar) == pytest.approx(0.5 * FADED_SHARE)
    assert strength_for_size(0.5, 16 * exemplar, exemplar) == pytest.approx(0.5 * FADED_SHARE)
    assert 0 < FADED_SHARE < 1
    sizes = [int(exemplar * (FULL_AREA + step * (FADED_AREA - FULL_AREA) / 10)) for step in range(11)]
    strengths = [strength_for_size(0.5, size, exemplar) for size in sizes]
    assert all(a > b for a, b in zip(strengths, strengths[1:]))  # falls all the way between


def features(seed: int, size: int) -> torch.Tensor:
    return torch.randn(1, 8, size, size, generator=torch.Generator().manual_seed(seed))


def test_a_verbatim_copy_is_spread_over_other_offsets() -> None:
    """The image is the exemplar, every patch matched to itself (one offset, as a copy). On
    random features any other patch correlates far worse: a strength above 1 pays for it."""
    style = features(0, 26)
    normalised = normalise_rows(extract_patches(style))
    table = OffsetTable((24, 24), (24, 24))
    copy = torch.arange(24 * 24)
    positions = torch.arange(24 * 24)
    spread = spread_copies(style, False, normalised, copy, table, positions, 2.0)
    counts = torch.bincount(table.keys(positions, spread), minlength=table.size)
    assert int(counts.max()) < 0.25 * len(copy)  # the copy's offset held them all


def test_matches_without_a_crowded_offset_are_left_alone() -> None:
    style = features(0, 26)
    normalised = normalise_rows(extract_patches(style))
    table = OffsetTable((24, 24), (24, 24))
    scattered = torch.randperm(24 * 24, generator=torch.Generator().manual_seed(1))
    assert spread_copies(features(1, 26), False, normalised, scattered, table, torch.arange(24 * 24), 0.5) is scattered
