"""Fast (approximate) patch matching against the exact reference, the fold-based patch loss,
memory back-off, and determinism of whole syntheses with ``--matching fast``."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from esm_contract.params import MATCHINGS, FillParams, NetworkParams, ParamError, SynthesisParams
from esm_cli.main import main
from esm_core import Engine
from esm_core.images import load_image
from esm_core.losses.matching import (PatchMatcher, SearchState, matcher, patch_scores, principal_basis, rescale_matches,
                               style_index)
from esm_core.features.networks import RandomNetwork, normalise_pixels
from esm_core.losses.objectives import PatchLoss, StyleLayer
from esm_core.features.patches import (extract_patches, match_exact, normalise_rows, patch_distance, patch_map,
                              position_major, with_backoff)
from esm_core.features.resample import resize
from esm_core.features.exemplar import to_tensor

DATA = __import__("pathlib").Path(__file__).resolve().parent.parent / "esm_core" / "data"
LAYERS = ("3_1", "4_1")
# The default matcher hands layers this small to exact matching; the tests search them.
SEARCH = PatchMatcher(exact_below=0)


@pytest.fixture(scope="module")
def features() -> dict[str, dict[str, torch.Tensor]]:
    """Features of real textures at small sizes: a style (brick) and two current images
    (grass, and brick shifted with noise), as the matcher sees them during a synthesis."""
    net = RandomNetwork(NetworkParams())
    brick = to_tensor(load_image(DATA / "brick.png"), torch.device("cpu"))
    grass = to_tensor(load_image(DATA / "grass.png"), torch.device("cpu"))
    noise = torch.rand(brick.shape, generator=torch.Generator().manual_seed(0)) * 255
    images = {
        "style": resize(brick, 96, 96),
        "grass": resize(grass, 64, 80),
        "shifted": resize(torch.roll(brick, (41, 17), (2, 3)) * 0.8 + noise * 0.2, 72, 64),
    }
    with torch.no_grad():
        return {name: net(normalise_pixels(image), LAYERS) for name, image in images.items()}


def exact_scores(current: torch.Tensor, style: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    return (current * style[indices]).sum(1)


@pytest.mark.parametrize("image", ["grass", "shifted"])
@pytest.mark.parametrize("layer", LAYERS)
def test_fast_matches_score_close_to_exact(features, image: str, layer: str) -> None:
    style = StyleLayer.from_features(features["style"][layer])
    current_features = features[image][layer]
    current = normalise_rows(extract_patches(current_features))
    exact = match_exact(current, style.normalised)
    state = SearchState()
    fast = None
    for _ in range(3):  # a cold search, then warm ones from its matches
        fast = SEARCH.match_features(current_features, style, 0.0, None, False, None, state)
    assert fast is not None
    assert fast.indices.shape == exact.indices.shape and fast.indices.dtype == torch.long
    assert int(fast.indices.min()) >= 0 and int(fast.indices.max()) < len(style.targets)
    best = exact_scores(current, style.normalised, exact.indices)
    got = exact_scores(current, style.normalised, fast.indices)
    random = exact_scores(current, style.normalised,
                          torch.randint(0, len(style.targets), (len(current),), generator=torch.Generator().manual_seed(1)))
    gap = float((best - got).mean())
    assert gap >= 0.0
    # Within a tenth of what a random choice loses, and within 0.01 correlation on average.
    assert gap < 0.1 * float((best - random).mean())
    assert gap < 0.01


def test_fast_style_best_is_close_to_exact(features) -> None:
    style = StyleLayer.from_features(features["style"]["3_1"])
    current_features = features["grass"]["3_1"]
    current = normalise_rows(extract_patches(current_features))
    exact = match_exact(current, style.normalised, 0.1, torch.zeros(len(style.targets)))
    state = SearchState()
    for _ in range(3):
        fast = SEARCH.match_features(current_features, style, 0.1, exact.style_best, False, None, state)
    # estimated in the projected space: at most the exact value, and close to it
    difference = exact.style_best - fast.style_best
    assert float(difference.mean()) < 0.02
    assert float(np.corrcoef(exact.style_best.numpy(), fast.style_best.numpy())[0, 1]) > 0.8


@pytest.mark.parametrize("circular", [False, True])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_patch_scores_equal_the_unfolded_dot_products(circular: bool, layout: torch.memory_format) -> None:
    generator = torch.Generator().manual_seed(3)
    features = torch.randn(1, 5, 9, 11, generator=generator).contiguous(memory_format=layout)
    targets = position_major(torch.randn(30, 5 * 9, generator=generator))
    unfolded = position_major(extract_patches(features, circular))
    candidates = torch.randint(0, 30, (len(unfolded), 3), generator=generator)
    expected = (unfolded[:, None, :] * targets[candidates]).sum(-1)
    # slices of a few rows only, so that the slicing is exercised too
    got = patch_scores(patch_map(features, circular), targets, candidates, budget_bytes=4 * 4 * targets.shape[1] * 7)
    assert torch.allclose(got, expected, atol=1e-5)


def test_rescoring_in_full_dimension_never_picks_a_worse_candidate(features) -> None:
    """One search from the same start, with and without re-scoring its best 4 candidates:
    the re-scored choice correlates at least as well with every patch, and better on average."""
    style = StyleLayer.from_features(features["style"]["3_1"])
    current_features = features["grass"]["3_1"]
    current = normalise_rows(extract_patches(current_features))
    rescored, projected = (PatchMatcher(exact_below=0, rerank=rerank, dims=16).match_features(
        current_features, style, 0.0, None, False, None, SearchState()) for rerank in (4, 0))
    better = exact_scores(current, style.normalised, rescored.indices)
    plain = exact_scores(current, style.normalised, projected.indices)
    assert bool((better >= plain - 1e-5).all())
    assert float((better - plain).mean()) > 0.0


def test_inverse_candidates_are_style_patches_whose_best_image_patch_it_is(features) -> None:
    style = StyleLayer.from_features(features["style"]["3_1"])
    index = style_index(style, 16)
    image_positions = 50
    start = torch.arange(image_positions) % len(index.positions)
    reverse = torch.zeros(len(index.valid), dtype=torch.long)
    reverse[index.positions] = (index.positions * 7) % 40  # image patches 40..49 own no style patch
    inverse = PatchMatcher._inverse(SearchState(reverse=reverse), index, start)
    assert inverse is not None and inverse.shape == (image_positions, 1)
    owned = inverse[:40, 0]
    assert torch.equal(reverse[owned], torch.arange(40))  # each owns the style patch it gets
    assert torch.equal(inverse[40:, 0], start[40:])  # the others keep their start
    assert PatchMatcher._inverse(SearchState(), index, start) is None  # no reverse search yet


def test_dropped_style_patches_are_never_chosen_and_select_picks_patches(features) -> None:
    style_features = features["style"]["3_1"]
    rows, cols = style_features.shape[-2] - 2, style_features.shape[-1] - 2
    keep = torch.zeros(rows, cols, dtype=torch.bool)
    keep[:, : cols // 2] = True  # only the left half of the exemplar
    style = StyleLayer.from_features(style_features, keep.flatten())
    current_features = features["shifted"]["3_1"]
    count = (current_features.shape[-2] - 2) * (current_features.shape[-1] - 2)
    select = torch.arange(count) % 3 == 0
    result = SEARCH.match_features(current_features, style, 0.1, None, False, select, SearchState())
    assert result.indices.shape == (int(select.sum()),)
    assert int(result.indices.max()) < len(style.targets)  # indices into the kept patches
    assert result.style_best.shape == (len(style.targets),)
    current = normalise_rows(extract_patches(current_features))[select]
    best = exact_scores(current, style.normalised, match_exact(current, style.normalised).indices)
    assert float((best - exact_scores(current, style.normalised, result.indices)).mean()) < 0.02


def test_circular_matching_covers_every_position(features) -> None:
    style = StyleLayer.from_features(features["style"]["4_1"])
    current_features = features["grass"]["4_1"]
    result = SEARCH.match_features(current_features, style, 0.0, None, True, None, SearchState())
    assert result.indices.shape == (current_features.shape[-2] * current_features.shape[-1],)
    current = normalise_rows(extract_patches(current_features, circular=True))
    best = exact_scores(current, style.normalised, match_exact(current, style.normalised).indices)
    assert float((best - exact_scores(current, style.normalised, result.indices)).mean()) < 0.02


def test_flat_fallback_is_close_to_exact(features) -> None:
    style = StyleLayer.from_features(features["style"]["3_1"])
    current = normalise_rows(extract_patches(features["grass"]["3_1"]))
    result = SEARCH(current, style.normalised)
    best = exact_scores(current, style.normalised, match_exact(current, style.normalised).indices)
    assert float((best - exact_scores(current, style.normalised, result.indices)).mean()) < 0.005


@pytest.mark.parametrize("layer", LAYERS)
def test_principal_basis_is_orthonormal_and_captures_nearly_the_optimal_energy(features, layer: str) -> None:
    patches = StyleLayer.from_features(features["style"][layer]).normalised
    basis = principal_basis(patches, 32)
    assert torch.allclose(basis.T @ basis, torch.eye(32), atol=1e-4)
    kept = float((patches @ basis).pow(2).sum() / patches.pow(2).sum())
    singular = torch.linalg.svdvals(patches.double())
    optimal = float(singular[:32].pow(2).sum() / singular.pow(2).sum())  # the best any 32 directions keep
    assert kept > 0.99 * optimal
    assert torch.equal(basis, principal_basis(patches, 32))  # deterministic


@pytest.mark.parametrize("circular", [False, True])
@pytest.mark.parametrize("selected", [False, True])
def test_patch_distance_equals_the_unfolded_loss(circular: bool, selected: bool) -> None:
    generator = torch.Generator().manual_seed(2)
    style_features = torch.rand(1, 5, 9, 8, generator=generator)
    style = StyleLayer.from_features(style_features)
    features = torch.rand(1, 5, 10, 7, generator=generator)
    count = extract_patches(features, circular).shape[0]
    select = torch.rand(count, generator=generator) > 0.4 if selected else None
    chosen = int(select.sum()) if selected else count
    indices = torch.randint(0, len(style.targets), (chosen,), generator=generator)

    reference_input = features.clone().requires_grad_(True)
    unfolded = extract_patches(reference_input, circular)
    unfolded = unfolded if select is None else unfolded[select]
    reference = torch.mean((unfolded - extract_patches(style_features)[indices]) ** 2)
    reference.backward()

    folded_input = features.clone().requires_grad_(True)
    value = patch_distance(folded_input, style.targets, style.squared_norms, indices, circular, select,
                           budget_bytes=256)  # a small budget: several bands of rows
    value.backward()
    assert float(value.detach()) == pytest.approx(float(reference.detach()), rel=1e-5)
    assert torch.allclose(folded_input.grad, reference_input.grad, rtol=1e-4, atol=1e-9)


def test_backoff_retries_with_smaller_budgets_only_on_out_of_memory() -> None:
    seen: list[int] = []

    def run(budget: int) -> int:
        seen.append(budget)
        if budget > 4 << 20:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return budget

    assert with_backoff(run, 64 << 20) == 4 << 20
    assert seen == [64 << 20, 16 << 20, 4 << 20]

    def broken(budget: int) -> int:
        raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        with_backoff(broken)

    def always(budget: int) -> int:
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory")

    with pytest.raises(RuntimeError, match="allocate"):
        with_backoff(always, 8 << 20)


def test_patch_loss_with_fast_matcher_keeps_state_and_fills_history(features) -> None:
    style = {name: StyleLayer.from_features(features["style"][name]) for name in LAYERS}
    loss = PatchLoss(style, 1.0, variety=0.1, matcher=SEARCH)
    current = {name: features["grass"][name].clone().requires_grad_(True) for name in LAYERS}
    first = loss(current)
    first.backward()
    assert set(loss.states) == set(LAYERS) and all(s.forward is not None for s in loss.states.values())
    assert all(torch.isfinite(h).all() for h in loss.history.values())
    second = loss(current).detach()
    exact = PatchLoss(style, 1.0, variety=0.1, matcher=matcher("exact"))(current).detach()
    assert float(second) <= float(first.detach()) + 1e-6  # warm start: the matches only get better
    assert float(second) == pytest.approx(float(exact), rel=0.05)


def test_matching_names() -> None:
    assert set(MATCHINGS) == {"exact", "fast"}
    assert hasattr(Engine("cpu").matcher("fast"), "match_features")
    SynthesisParams(matching="fast").validate()
    with pytest.raises(ParamError, match="matching"):
        SynthesisParams(matching="nearest").validate()
    with pytest.raises(ValueError):
        matcher("nearest")


def test_texture_synthesis_defaults_to_fast_and_fill_to_exact(capsys: pytest.CaptureFixture[str]) -> None:
    """The defaults docs/performance.md argues for, in the engine's parameters and in ``--help``."""
    assert SynthesisParams().matching == "fast"
    assert FillParams().matching == "exact"
    for command, default in (("synth", "fast"), ("fill", "exact")):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert f"(default {default})" in " ".join(capsys.readouterr().out.split())


def test_default_fast_matcher_matches_small_layers_exactly(features) -> None:
    style = StyleLayer.from_features(features["style"]["3_1"])
    current_features = features["grass"]["3_1"]
    current = normalise_rows(extract_patches(current_features))
    result = matcher("fast").match_features(current_features, style, 0.0, None, False, None, SearchState())
    assert torch.equal(result.indices, match_exact(current, style.normalised).indices)


def test_search_is_deterministic(features) -> None:
    style = StyleLayer.from_features(features["style"]["3_1"])
    runs = []
    for _ in range(2):
        state = SearchState()
        runs.append([SEARCH.match_features(features["grass"]["3_1"], style, 0.1, None, False, None, state)
                     for _ in range(2)])
    for first, second in zip(*runs):
        assert torch.equal(first.indices, second.indices)
        assert torch.equal(first.style_best, second.style_best)


def test_rescale_matches_carries_a_coarse_map_to_the_finer_grids() -> None:
    coarse = ((4, 5), (6, 7))
    fine = ((8, 10), (12, 14))
    # each coarse position matched to the target position one row down and two columns right
    y, x = torch.arange(4)[:, None], torch.arange(5)[None, :]
    shifted = ((y + 1) * 7 + (x + 2)).flatten()
    result = rescale_matches(shifted, coarse, fine).view(8, 10)
    fy, fx = torch.arange(8)[:, None], torch.arange(10)[None, :]
    assert torch.equal(result, ((fy + 2) * 14 + (fx + 4)).expand(8, 10))  # the shift, at twice the scale
    # any sizes: every result is a valid target position, and neighbours stay neighbours
    uneven = rescale_matches(torch.randint(0, 42, (20,), generator=torch.Generator().manual_seed(0)),
                             coarse, ((9, 11), (13, 15)))
    assert uneven.shape == (99,) and int(uneven.min()) >= 0 and int(uneven.max()) < 13 * 15


def test_a_phase_search_starts_from_the_coarser_phase_matches() -> None:
    """The first search of a finer phase, given the coarser phase's state, finds better
    matches in its few iterations than a search from random matches with as many."""
    net = RandomNetwork(NetworkParams())
    brick = to_tensor(load_image(DATA / "brick.png"), torch.device("cpu"))
    noise = torch.rand(brick.shape, generator=torch.Generator().manual_seed(0)) * 255
    image = torch.roll(brick, (41, 17), (2, 3)) * 0.8 + noise * 0.2
    with torch.no_grad():
        coarse, fine = ({name: net(normalise_pixels(resize(picture, side, side)), ("3_1",))["3_1"]
                         for name, picture in (("style", brick), ("image", image))} for side in (56, 112))
    searcher = PatchMatcher(exact_below=0, cold=8, coarse=2)
    state = SearchState()
    for _ in range(2):
        searcher.match_features(coarse["image"], StyleLayer.from_features(coarse["style"]), 0.0, None, False,
                                None, state)
    style = StyleLayer.from_features(fine["style"])
    started = searcher.match_features(fine["image"], style, 0.0, None, False, None, state)
    cold = PatchMatcher(exact_below=0, cold=2).match_features(fine["image"], style, 0.0, None, False, None, SearchState())
    current = normalise_rows(extract_patches(fine["image"]))
    best = exact_scores(current, style.normalised, match_exact(current, style.normalised).indices)

    def gap(result) -> float:
        return float((best - exact_scores(current, style.normalised, result.indices)).mean())

    assert gap(started) < 0.5 * gap(cold)


class SearchingEngine(Engine):
    """An engine whose ``fast`` matcher searches every layer, however small."""

    def matcher(self, name: str):  # type: ignore[override]
        return SEARCH if name == "fast" else super().matcher(name)


def test_fast_synthesis_is_deterministic_per_seed() -> None:
    exemplar = load_image(DATA / "grass.png")[:96, :96]
    params = SynthesisParams(width=48, height=40, phases=2, iterations=4, seed=5, matching="fast")
    first = SearchingEngine("cpu").synthesize(exemplar, params)
    second = SearchingEngine("cpu").synthesize(exemplar, params)
    other = SearchingEngine("cpu").synthesize(exemplar, SynthesisParams(**{**params.__dict__, "seed": 6}))
    exact = Engine("cpu").synthesize(exemplar, SynthesisParams(**{**params.__dict__, "matching": "exact"}))
    assert first.shape == (40, 48, 1)
    assert np.array_equal(first, second)
    assert not np.array_equal(first, other)
    assert not np.array_equal(first, exact)  # the search really ran: its matches differ somewhere
