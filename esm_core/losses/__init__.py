"""Pipeline step 2, losses: terms on network features and pixels, behind one interface.

A loss term (``LossTerm``) is any object with ``layers`` (the feature layers it reads) and
``__call__(features) -> Tensor`` (a scalar); a mode sums its terms over one network pass.
The terms: Neural Patches (``objectives.PatchLoss``, with the patch search of ``matching``
and the copy penalty of ``copies``), Gram matrices (``objectives.GramLoss``), content
(``objectives.ContentLoss``), the sliced Wasserstein distribution term (``distribution``),
the fill's anchor (``anchor``) and smoothness (``objectives.total_variation``).

``STYLE_LOSSES`` maps the style loss a job names (``SynthesisParams.loss``; its choices in
esm_contract.schema) to how that loss is built. Adding a style loss: its term class (here),
an entry in ``STYLE_LOSSES``, its name and sample size in the schema's ``STYLE_SAMPLES``; plus
its test and its line in docs/engine.md (docs/architecture.md, "How to add a loss").
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Hashable, Mapping, Protocol

import torch

from esm_contract.params import SynthesisParams

from .matching import SearchState
from .objectives import GramLoss, PatchLoss, StyleLayer, gram_matrix


class LossTerm(Protocol):
    @property
    def layers(self) -> list[str]: ...

    def __call__(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor: ...


@dataclass(frozen=True)
class StyleRequest:
    """What a style loss is built from: the job's resources (device, networks, cache,
    matchers: esm_core.modes.synthesis.Resources), the cache key of the exemplar's style at
    this phase, the exemplar's features (computed only on a cache miss), the settings, and,
    for Neural Patches, the patches to match (fill), the search states shared by a run's
    phases and the copy penalty."""

    resources: Any
    key: Hashable
    features: Callable[[], dict[str, torch.Tensor]]
    params: SynthesisParams
    select: Mapping[str, torch.Tensor] | None = None
    states: dict[str, SearchState] | None = None
    copy_penalty: float = 0.0


def gram_targets(resources: Any, key: Hashable, features: Callable[[], dict[str, torch.Tensor]],
                 ) -> dict[str, torch.Tensor]:
    """The Gram matrix of each layer of the exemplar's features, cached under ``key``."""
    return resources.cached(key, lambda: {name: gram_matrix(f) for name, f in features().items()})


def _patches(request: StyleRequest) -> PatchLoss:
    params = request.params
    style = request.resources.cached(
        request.key, lambda: {name: StyleLayer.from_features(f) for name, f in request.features().items()})
    return PatchLoss(style, params.style_weight, params.variety, circular=params.tileable, select=request.select,
                     matcher=request.resources.matcher(params.matching), states=request.states,
                     copy_penalty=request.copy_penalty)


def _gram(request: StyleRequest) -> GramLoss:
    return GramLoss(gram_targets(request.resources, request.key, request.features), request.params.style_weight)


# Each style loss's sample size (feature positions per side: it sets the smallest image) is
# esm_contract.schema.STYLE_SAMPLES', which the CLI checks sizes with before torch loads.
STYLE_LOSSES: dict[str, Callable[[StyleRequest], LossTerm]] = {
    "patches": _patches,  # Neural Patches: 3x3 feature patches, matched (the reference)
    "gram": _gram,  # Gram matrices (Gatys et al.): per-position feature statistics
}
