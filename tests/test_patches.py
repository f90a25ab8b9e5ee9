"""Patch extraction and exact matching against a brute-force reference."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from esm_core.features.patches import extract_patches, match_exact, normalise_rows


def brute_force(current: np.ndarray, style: np.ndarray, variety: float, history: np.ndarray | None):
    cur = current / np.maximum(np.linalg.norm(current, axis=1, keepdims=True), 1e-8)
    sty = style / np.maximum(np.linalg.norm(style, axis=1, keepdims=True), 1e-8)
    scores = cur @ sty.T
    best_per_style = scores.max(axis=0)
    if history is not None:
        scores = scores - variety * history
    return scores.argmax(axis=1), best_per_style


def test_extract_patches_matches_manual_slicing() -> None:
    features = torch.arange(2 * 5 * 4, dtype=torch.float32).reshape(1, 2, 5, 4)
    patches = extract_patches(features)
    assert patches.shape == (3 * 2, 2 * 9)  # (5-2) x (4-2) positions of C*3*3 values
    # the patch whose top-left corner is (row 1, col 1) is the 4th (row-major over 3x2)
    assert torch.equal(patches[1 * 2 + 1], features[0, :, 1:4, 1:4].reshape(-1))


def test_circular_patches_wrap_around() -> None:
    features = torch.rand(1, 3, 4, 5)
    patches = extract_patches(features, circular=True)
    assert patches.shape == (4 * 5, 27)
    corner = patches[0].reshape(3, 3, 3)  # centred on (0, 0): top-left neighbour is (-1, -1)
    assert torch.equal(corner[:, 0, 0], features[0, :, -1, -1])


@pytest.mark.parametrize("variety", [0.0, 0.5])
@pytest.mark.parametrize("budget", [64, 1 << 20])  # 64 bytes forces one-row slices
def test_exact_matching_equals_brute_force(variety: float, budget: int) -> None:
    rng = np.random.default_rng(3)
    current = rng.normal(size=(57, 18)).astype(np.float32)
    style = rng.normal(size=(41, 18)).astype(np.float32)
    history = rng.uniform(0, 1, size=41).astype(np.float32) if variety else None
    result = match_exact(normalise_rows(torch.from_numpy(current)), normalise_rows(torch.from_numpy(style)),
                         variety, None if history is None else torch.from_numpy(history), budget_bytes=budget)
    expected_idx, expected_best = brute_force(current, style, variety, history)
    np.testing.assert_array_equal(result.indices.numpy(), expected_idx)
    np.testing.assert_allclose(result.style_best.numpy(), expected_best, rtol=1e-5, atol=1e-6)


def test_variety_spreads_the_choice_over_more_style_patches() -> None:
    rng = np.random.default_rng(0)
    style = normalise_rows(torch.from_numpy(rng.normal(size=(200, 8)).astype(np.float32)))
    current = normalise_rows(style[:5].repeat(40, 1) + 0.05 * torch.randn(200, 8, generator=torch.Generator().manual_seed(1)))
    plain = match_exact(current, style)
    biased = match_exact(current, style, variety=2.0, style_history=plain.style_best)
    assert len(set(biased.indices.tolist())) > len(set(plain.indices.tolist()))
