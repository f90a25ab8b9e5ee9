"""Texture synthesis from an exemplar: Neural Patches (default) or Gram loss, multi-scale
L-BFGS on pixels, optionally tileable."""
from __future__ import annotations

from typing import Any, Callable, Hashable, Mapping, Protocol, Sequence

import numpy as np
import torch

from esm_contract.params import NetworkParams, SynthesisParams
from esm_contract.schema import STYLE_SAMPLES

from ..features.exemplar import Networks, exemplar_features, image_digest, to_tensor, to_uint8
from ..features.networks import layer_scale, min_image_side, normalise_pixels
from ..features.resample import resize
from ..images import check_image, split_alpha
from ..losses import STYLE_LOSSES, LossTerm, StyleRequest
from ..losses.copies import strength_for_size
from ..losses.distribution import SlicedWassersteinLoss
from ..losses.matching import SearchState
from ..losses.objectives import Matcher, total_variation
from ..optimisation.multiscale import Phase, plan_phases
from ..optimisation.phases import run_phases
from ..progress import CancelToken, ProgressCallback, map_previews
from .grain import match_grain
from .spotnoise import spot_noise


class Resources(Networks, Protocol):
    """What a synthesis needs from its Engine: the device, networks, a cache and matchers."""

    def cached(self, key: Hashable, create: Callable[[], Any]) -> Any: ...

    def matcher(self, name: str) -> Matcher: ...


# the distribution term also matches the fine layers' local RMS over windows of this many
# pixels (the `flat` measure's window), with this weight relative to the features' (docs/quality.md)
LOCAL_WINDOW = 16
LOCAL_WEIGHT = 3.0

MARGIN = 8  # px synthesised around a non-tileable texture and cut off: the network's zero
# padding leaves the outermost pixels weakly constrained (colour fringes, docs/quality.md)


def min_side_for(params: SynthesisParams) -> int:
    return min_image_side(params.layers, STYLE_SAMPLES[params.loss])


def style_objective(
    resources: Resources, exemplar: np.ndarray, phase: Phase, params: SynthesisParams,
    select: Mapping[str, torch.Tensor] | None = None, match_states: dict[str, SearchState] | None = None,
    copy_penalty: float = 0.0,
) -> LossTerm:
    """The loss that pulls an image towards ``exemplar`` at this phase's scale; the style's
    features come from the cache when the same exemplar and settings were seen before.
    ``select`` (Neural Patches only) restricts the loss to some of the image's patches (fill);
    ``match_states``, shared by a run's phases, carries the matcher's search state from one
    phase to the next; ``copy_penalty`` keeps the matches from copying (``PatchLoss``)."""
    return STYLE_LOSSES[params.loss](StyleRequest(
        resources, style_key(exemplar, phase, params.network, params.layers, params.loss),
        lambda: exemplar_features(resources, exemplar, phase.style_size, params.network, params.layers),
        params, select, match_states, copy_penalty))


def style_key(exemplar: np.ndarray, phase: Phase, network: NetworkParams, layers: Sequence[str],
              loss: str) -> Hashable:
    """The cache key of ``exemplar``'s style targets at this phase's scale."""
    return ("style", image_digest(exemplar), network, tuple(layers), phase.style_size, loss)


def distribution_objective(
    resources: Resources, exemplar: np.ndarray, phase: Phase, params: SynthesisParams, layers: Sequence[str],
) -> SlicedWassersteinLoss:
    """The sliced Wasserstein term at ``layers``, and at the ``swd_layers`` also on the local
    detail (``LOCAL_WINDOW``); its directions are drawn from the seed and the phase, so a
    seed names one image."""
    key = ("distribution", image_digest(exemplar), params.network, tuple(layers), phase.style_size)
    targets = resources.cached(key, lambda: exemplar_features(resources, exemplar, phase.style_size, params.network, layers))
    seed = int(np.random.SeedSequence([params.seed, phase.index]).generate_state(1)[0])
    local = {name: max(1, LOCAL_WINDOW // layer_scale(name)) for name in params.swd_layers if name in layers}
    return SlicedWassersteinLoss(targets, params.swd_weight, torch.Generator().manual_seed(seed), local, LOCAL_WEIGHT)


def layout_phase_count(params: SynthesisParams, size: tuple[int, int], exemplar_size: tuple[int, int],
                       phase_count: int) -> int:
    """How many first phases match distributions only: ``params.layout_phases``, never the last
    phase, and none for outputs of ``params.layout_below_scale`` times the exemplar's size or
    more (by area). Measured (docs/quality.md, seventh round): at twice the exemplar's side the
    distribution-only layout leaves soft blotches and merged shapes that the structure phases
    keep; near its size the structure loss alone would rebuild the exemplar."""
    if size[0] * size[1] >= params.layout_below_scale ** 2 * exemplar_size[0] * exemplar_size[1]:
        return 0
    return min(params.layout_phases, phase_count - 1)


def texture_terms(
    resources: Resources, exemplar: np.ndarray, phase: Phase, params: SynthesisParams, layout_phases: int,
    match_states: dict[str, SearchState], last_phase: int,
) -> list[LossTerm]:
    """A texture phase's loss terms: in the first ``layout_phases`` the distribution term
    alone, on the structure layers too; then the structure loss plus the distribution term,
    if any. The copy penalty acts in every structure phase but the last, with a strength that
    falls as the output grows past the exemplar's size (``strength_for_size``): with the
    default variety the matches drift back onto copies in every phase the penalty leaves out
    (docs/quality.md, sixth round), and the spread matches leave the image soft, which the
    last phase, free of it, sharpens again (in the last phase, 0.5 left 40x32 drafts flat)."""
    if phase.index < layout_phases:
        layers = tuple(dict.fromkeys(params.swd_layers + params.layers))
        return [distribution_objective(resources, exemplar, phase, params, layers)]
    copy_penalty = 0.0
    if layout_phases <= phase.index < last_phase:
        copy_penalty = strength_for_size(params.copy_penalty, phase.size[0] * phase.size[1],
                                         phase.style_size[0] * phase.style_size[1])
    terms: list[LossTerm] = [
        style_objective(resources, exemplar, phase, params, match_states=match_states, copy_penalty=copy_penalty)]
    if params.swd_weight:
        terms.append(distribution_objective(resources, exemplar, phase, params, params.swd_layers))
    return terms


def image_loss(
    resources: Resources, style_loss: Callable[[dict[str, torch.Tensor]], torch.Tensor],
    params: SynthesisParams, layers: Sequence[str] | None = None,
) -> Callable[[torch.Tensor], torch.Tensor]:
    """Style loss on the image's features at ``layers`` (default ``params.layers``) plus
    smoothness on its pixels."""
    net = resources.network(params.network)
    layers = tuple(params.layers if layers is None else layers)

    def loss(pixels: torch.Tensor) -> torch.Tensor:
        features = net(normalise_pixels(pixels), layers, circular=params.tileable)
        total = style_loss(features)
        if params.smoothness:
            total = total + params.smoothness * total_variation(pixels, circular=params.tileable)
        return total

    return loss


def without_margin(progress: ProgressCallback | None, margin: int, width: int) -> ProgressCallback | None:
    """``progress`` whose previews leave out the margin (``margin`` of ``width`` pixels at the
    final scale, proportionally less in coarser phases)."""
    if not margin:
        return progress

    def crop(image: np.ndarray) -> np.ndarray:
        cut = round(margin * image.shape[1] / width)
        return image[cut:image.shape[0] - cut, cut:image.shape[1] - cut]

    return map_previews(progress, crop)


def synthesize_texture(
    resources: Resources,
    exemplar: np.ndarray,
    params: SynthesisParams,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> np.ndarray:
    """A new texture like ``exemplar`` (uint8 HxWxC, C = 1, 3 or 4). The result has the
    exemplar's channel count; alpha is not synthesised (the result is opaque). The first
    phases given by ``layout_phase_count`` use the distribution term alone; the first phase
    starts from ``params.start`` (``spotnoise.spot_noise`` or uniform noise); the result then
    gets the exemplar's grain (``grain.match_grain``, ``params.grain``)."""
    exemplar = check_image(exemplar, "exemplar")
    colour, alpha = split_alpha(exemplar)
    height, width = colour.shape[:2]
    size = (params.width or width, params.height or height)
    align = max(layer_scale(name) for name in params.layers) if params.tileable else 1
    margin = 0 if params.tileable else MARGIN
    plan_phases(size, (width, height), params.phases, min_side_for(params), align)  # refuses too small sizes
    plan = plan_phases((size[0] + 2 * margin, size[1] + 2 * margin), (width, height), params.phases,
                       min_side_for(params), align)
    layout_phases = layout_phase_count(params, size, (width, height), len(plan))
    match_states: dict[str, SearchState] = {}

    def make_loss(phase: Phase) -> Callable[[torch.Tensor], torch.Tensor]:
        terms = texture_terms(resources, colour, phase, params, layout_phases, match_states, plan[-1].index)
        layers = tuple(dict.fromkeys(name for term in terms for name in term.layers))
        return image_loss(resources, lambda features: sum(term(features) for term in terms), params, layers)

    style = to_tensor(colour, resources.device)  # the spot noise's source and the grain step's target
    initial = None
    if params.start == "spot":
        initial = lambda phase: spot_noise(resize(style, *phase.style_size), phase.size, params.seed)  # noqa: E731
    pixels = run_phases(resources, plan, colour.shape[2], params.seed, make_loss, params.iterations,
                        params.tileable, without_margin(progress, margin, size[0] + 2 * margin), cancel, initial=initial)
    pixels = resize(pixels, size[0] + 2 * margin, size[1] + 2 * margin, circular=params.tileable)
    pixels = pixels[..., margin:margin + size[1], margin:margin + size[0]]
    result = to_uint8(match_grain(pixels, style, params.grain, params.tileable))
    if alpha is not None:
        result = np.concatenate([result, np.full(result.shape[:2] + (1,), 255, np.uint8)], axis=2)
    return result
