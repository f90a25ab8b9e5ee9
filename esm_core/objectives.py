"""Loss terms on network features and pixels: Neural Patches, Gram matrices, smoothness."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import torch

from .patches import MatchResult, extract_patches, match_exact, normalise_rows

Matcher = Callable[..., MatchResult]


@dataclass
class StyleLayer:
    """The style patches of one layer, raw (loss targets) and row-normalised (matching)."""

    patches: torch.Tensor
    normalised: torch.Tensor

    @classmethod
    def from_features(cls, features: torch.Tensor, keep: torch.Tensor | None = None) -> "StyleLayer":
        """``keep`` (bool, one entry per patch) drops patches, e.g. those overlapping a hole."""
        patches = extract_patches(features)
        if keep is not None:
            patches = patches[keep]
        if patches.shape[0] == 0:
            raise ValueError("no style patches left at this layer: the exemplar is too small")
        return cls(patches, normalise_rows(patches))

    @property
    def nbytes(self) -> int:
        return 2 * self.patches.numel() * self.patches.element_size()


class PatchLoss:
    """Mean squared distance between every current 3x3 feature patch and its best-matching
    style patch, averaged over layers and times ``weight``. Matches are recomputed at every
    call; ``variety`` keeps each style patch's best score of the previous call as a penalty
    (the first call warms that history up by matching twice)."""

    def __init__(
        self,
        style: Mapping[str, StyleLayer],
        weight: float,
        variety: float = 0.0,
        circular: bool = False,
        select: Mapping[str, torch.Tensor] | None = None,
        matcher: Matcher = match_exact,
    ) -> None:
        self.style = dict(style)
        self.weight = weight
        self.variety = variety
        self.circular = circular
        self.select = dict(select or {})
        self.matcher = matcher
        self.history: dict[str, torch.Tensor] = {}
        self.last_matches: dict[str, torch.Tensor] = {}

    @property
    def layers(self) -> list[str]:
        return list(self.style)

    def _match(self, name: str, current: torch.Tensor) -> torch.Tensor:
        layer = self.style[name]
        rounds = 2 if (self.variety and name not in self.history) else 1
        result = None
        for _ in range(rounds):
            result = self.matcher(current, layer.normalised, self.variety, self.history.get(name))
            self.history[name] = result.style_best
        assert result is not None
        self.last_matches[name] = result.indices
        return result.indices

    def __call__(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        total = features[self.layers[0]].new_zeros(())
        for name, layer in self.style.items():
            current = extract_patches(features[name], self.circular)
            if name in self.select:
                current = current[self.select[name]]
            with torch.no_grad():
                indices = self._match(name, normalise_rows(current))
            total = total + torch.mean((current - layer.patches[indices]) ** 2)
        return total * (self.weight / len(self.style))


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """(1, C, H, W) -> (C, C), normalised by the number of positions so that the Gram of a
    texture does not depend on its size."""
    flat = features.reshape(features.shape[1], -1)
    return flat @ flat.T / flat.shape[1]


class GramLoss:
    """Squared Frobenius distance between Gram matrices, normalised by C², averaged over
    layers, times ``weight`` (Gatys et al.; random networks: Ustyuzhaninov et al.)."""

    def __init__(self, targets: Mapping[str, torch.Tensor], weight: float) -> None:
        self.targets = dict(targets)
        self.weight = weight

    @property
    def layers(self) -> list[str]:
        return list(self.targets)

    def __call__(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        total = features[self.layers[0]].new_zeros(())
        for name, target in self.targets.items():
            total = total + torch.mean((gram_matrix(features[name]) - target) ** 2)
        return total * (self.weight / len(self.targets))


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
