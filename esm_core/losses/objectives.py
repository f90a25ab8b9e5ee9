"""Loss terms on network features and pixels: Neural Patches, Gram matrices, smoothness."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Mapping

import torch

from ..features.patches import MatchResult, extract_patches, match_exact, normalise_rows, patch_distance, position_major
from .copies import OffsetTable, spread_copies
from .matching import SearchState

Matcher = Callable[..., MatchResult]


@dataclass
class StyleLayer:
    """The style patches of one layer: raw and position-major (the loss's targets,
    ``patches.position_major``) and row-normalised in ``extract_patches`` order (matching)."""

    targets: torch.Tensor
    normalised: torch.Tensor
    grid: tuple[int, int] | None = None  # the full patch grid (rows, columns) of the features
    positions: torch.Tensor | None = None  # each patch's row-major place in ``grid`` (None: all, in order)
    index: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)  # matchers' search data

    @classmethod
    def from_features(cls, features: torch.Tensor, keep: torch.Tensor | None = None) -> "StyleLayer":
        """``keep`` (bool, one entry per patch) drops patches, e.g. those overlapping a hole."""
        patches = extract_patches(features)
        positions = None
        if keep is not None:
            patches = patches[keep]
            positions = keep.nonzero()[:, 0] if keep.dtype == torch.bool else keep
        if patches.shape[0] == 0:
            raise ValueError("no style patches left at this layer: the exemplar is too small")
        grid = (features.shape[-2] - 2, features.shape[-1] - 2)
        return cls(position_major(patches), normalise_rows(patches), grid, positions)

    @cached_property
    def squared_norms(self) -> torch.Tensor:
        return self.targets.pow(2).sum(1)

    @property
    def nbytes(self) -> int:
        return 2 * self.targets.numel() * self.targets.element_size()


class PatchLoss:
    """Mean squared distance between every current 3x3 feature patch and its best-matching
    style patch, averaged over layers and times ``weight``. Matches are recomputed at every
    call; ``variety`` keeps each style patch's best score of the previous call as a penalty
    (the first call warms that history up by matching twice). A matcher with
    ``match_features`` (esm_core.losses.matching.FeatureMatcher) searches on the feature maps and
    keeps per-layer state in ``states``; any other is called on the normalised patches.
    Passing the same ``states`` to every phase's loss lets such a matcher start a phase's
    search from the coarser phase's matches. ``copy_penalty`` keeps the matches from copying
    large regions of the exemplar (``esm_core.losses.copies``; not with ``select``)."""

    def __init__(
        self,
        style: Mapping[str, StyleLayer],
        weight: float,
        variety: float = 0.0,
        circular: bool = False,
        select: Mapping[str, torch.Tensor] | None = None,
        matcher: Matcher = match_exact,
        states: dict[str, SearchState] | None = None,
        copy_penalty: float = 0.0,
    ) -> None:
        self.style = dict(style)
        self.weight = weight
        self.variety = variety
        self.circular = circular
        self.select = dict(select or {})
        self.matcher = matcher
        self.history: dict[str, torch.Tensor] = {}
        self.last_matches: dict[str, torch.Tensor] = {}
        self.states = {} if states is None else states
        self.copy_penalty = copy_penalty

    @property
    def layers(self) -> list[str]:
        return list(self.style)

    def _match(self, name: str, features: torch.Tensor) -> torch.Tensor:
        layer = self.style[name]
        select = self.select.get(name)
        search = getattr(self.matcher, "match_features", None)
        if search is not None and layer.grid is not None:
            state = self.states.setdefault(name, SearchState())

            def run() -> MatchResult:
                return search(features, layer, self.variety, self.history.get(name), self.circular, select, state)
        else:
            current = extract_patches(features, self.circular)
            current = normalise_rows(current if select is None else current[select])

            def run() -> MatchResult:
                return self.matcher(current, layer.normalised, self.variety, self.history.get(name))
        rounds = 2 if (self.variety and name not in self.history) else 1
        result, history = None, None
        for _ in range(rounds):
            history = self.history.get(name)
            result = run()
            self.history[name] = result.style_best
        assert result is not None
        indices = result.indices
        if self.copy_penalty and layer.grid is not None and select is None:
            indices = self._spread_copies(name, features, indices, history)
        self.last_matches[name] = indices
        return indices

    def _spread_copies(self, name: str, features: torch.Tensor, indices: torch.Tensor,
                       history: torch.Tensor | None) -> torch.Tensor:
        layer = self.style[name]
        assert layer.grid is not None
        height, width = features.shape[-2:]
        table = OffsetTable((height, width) if self.circular else (height - 2, width - 2), layer.grid)
        positions = layer.positions if layer.positions is not None else torch.arange(
            len(layer.normalised), device=indices.device)
        spread = spread_copies(features, self.circular, layer.normalised, indices, table, positions,
                               self.copy_penalty, self.variety, history)
        adopt = getattr(self.matcher, "adopt_matches", None)
        if adopt is not None and spread is not indices:  # the next search starts from the spread matches
            adopt(self.states[name], positions[spread])
        return spread

    def __call__(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        total = features[self.layers[0]].new_zeros(())
        for name, layer in self.style.items():
            with torch.no_grad():
                indices = self._match(name, features[name].detach())
            total = total + patch_distance(features[name], layer.targets, layer.squared_norms, indices,
                                           self.circular, self.select.get(name))
        return total * (self.weight / len(self.style))


def gram_matrices(features: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, C), one per image, normalised by the number of positions so
    that the Gram of a texture does not depend on its size."""
    flat = features.flatten(2)
    return flat @ flat.transpose(1, 2) / flat.shape[2]


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """(1, C, H, W) -> (C, C)."""
    return gram_matrices(features)[0]


class GramLoss:
    """Squared Frobenius distance between Gram matrices, normalised by C², averaged over
    layers, times ``weight`` (Gatys et al.; random networks: Ustyuzhaninov et al.). A target
    is (C, C), shared by a batch, or (N, C, C), one per image."""

    def __init__(self, targets: Mapping[str, torch.Tensor], weight: float) -> None:
        self.targets = dict(targets)
        self.weight = weight

    @property
    def layers(self) -> list[str]:
        return list(self.targets)

    def per_image(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """(N,) losses of a batch of N images."""
        total = features[self.layers[0]].new_zeros(features[self.layers[0]].shape[0])
        for name, target in self.targets.items():
            total = total + ((gram_matrices(features[name]) - target) ** 2).mean(dim=(1, 2))
        return total * (self.weight / len(self.targets))

    def __call__(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.per_image(features).sum()


class ContentLoss:
    """Mean squared difference between one layer's features and the content image's
    (Gatys et al.'s content loss), times ``weight``."""

    def __init__(self, layer: str, target: torch.Tensor, weight: float) -> None:
        self.layer = layer
        self.target = target
        self.weight = weight

    def per_image(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """(N,) losses of a batch of N images, each against the one (1, C, H, W) target."""
        return ((features[self.layer] - self.target) ** 2).mean(dim=(1, 2, 3)) * self.weight

    def __call__(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.per_image(features).sum()


def total_variation(pixels: torch.Tensor, circular: bool = False) -> torch.Tensor:
    """Mean over pixels of (dx² + dy²)^1.25 (the reference's smoothness), measured on the
    network's input scale [-1, 1] so that it balances the feature losses of a random network
    (on [0, 255] it would outweigh them by about 10^5; docs/engine.md). With ``circular`` the
    differences wrap around the edges."""
    pixels = pixels / 127.5
    if circular:
        dx = pixels - torch.roll(pixels, -1, dims=-1)
        dy = pixels - torch.roll(pixels, -1, dims=-2)
    else:
        dx = (pixels[..., :-1, :-1] - pixels[..., :-1, 1:])
        dy = (pixels[..., :-1, :-1] - pixels[..., 1:, :-1])
    # the epsilon keeps the gradient of x^1.25 finite where an area is perfectly flat
    return torch.mean((dx * dx + dy * dy + 1e-8) ** 1.25)
