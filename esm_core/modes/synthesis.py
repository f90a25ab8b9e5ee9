"""Texture synthesis from an exemplar: Neural Patches (default) or Gram loss, multi-scale
L-BFGS on pixels, optionally tileable."""
from __future__ import annotations

import hashlib
from typing import Any, Callable, Hashable, Mapping, Protocol, Sequence

import numpy as np
import torch

from esm_contract.params import NetworkParams, SynthesisParams

from ..losses.distribution import SlicedWassersteinLoss
from ..images import check_image, split_alpha
from ..optimisation.multiscale import Phase, plan_phases
from ..features.networks import RandomNetwork, layer_scale, min_image_side, normalise_pixels
from ..losses.matching import SearchState
from ..losses import STYLE_LOSSES, LossTerm, StyleRequest
from ..losses.objectives import Matcher, total_variation
from ..optimisation.optimize import minimise_pixels
from ..progress import CancelToken, Progress, ProgressCallback, map_previews
from ..features.resample import resize


class Resources(Protocol):
    """What a synthesis needs from its Engine: the device, networks, and a cache."""

    device: torch.device

    def network(self, params: NetworkParams) -> RandomNetwork: ...

    def cached(self, key: Hashable, create: Callable[[], Any]) -> Any: ...

    def matcher(self, name: str) -> Matcher: ...


def image_digest(array: np.ndarray) -> str:
    """Identifies an exemplar's content for caching."""
    return hashlib.blake2b(array.tobytes() + repr(array.shape).encode(), digest_size=16).hexdigest()


def to_tensor(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 (H, W, C) -> float32 (1, C, H, W) in [0, 255]."""
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1))).to(device, torch.float32)[None]


def to_uint8(pixels: np.ndarray | torch.Tensor) -> np.ndarray:
    """float (C, H, W) or (N, C, H, W) in [0, 255] -> uint8 (H, W, C) of the first image."""
    if isinstance(pixels, torch.Tensor):
        pixels = pixels.detach().to("cpu").numpy()
    pixels = pixels.reshape(-1, *pixels.shape[-3:])[0]
    return np.clip(np.round(pixels), 0, 255).astype(np.uint8).transpose(1, 2, 0).copy()


# the distribution term also matches the fine layers' local RMS over windows of this many
# pixels (the `flat` measure's window), with this weight relative to the features' (docs/quality.md)
LOCAL_WINDOW = 16
LOCAL_WEIGHT = 3.0

MARGIN = 8  # px synthesised around a non-tileable texture and cut off: the network's zero
# padding leaves the outermost pixels weakly constrained (colour fringes, docs/quality.md)


def min_side_for(params: SynthesisParams) -> int:
    return min_image_side(params.layers, STYLE_LOSSES[params.loss].sample)


def exemplar_features(
    resources: Resources, exemplar: np.ndarray, phase: Phase, network: NetworkParams, layers: Sequence[str],
) -> dict[str, torch.Tensor]:
    """The exemplar's features at ``layers``, at this phase's scale."""
    style = resize(to_tensor(exemplar, resources.device), *phase.style_size)
    with torch.no_grad():
        return resources.network(network)(normalise_pixels(style.clamp(0, 255)), layers)


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
    return STYLE_LOSSES[params.loss].build(StyleRequest(
        resources, style_key(exemplar, phase, params.network, params.layers, params.loss),
        lambda: exemplar_features(resources, exemplar, phase, params.network, params.layers),
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
    targets = resources.cached(key, lambda: exemplar_features(resources, exemplar, phase, params.network, layers))
    seed = int(np.random.SeedSequence([params.seed, phase.index]).generate_state(1)[0])
    local = {name: max(1, LOCAL_WINDOW // layer_scale(name)) for name in params.swd_layers if name in layers}
    return SlicedWassersteinLoss(targets, params.swd_weight, torch.Generator().manual_seed(seed), local, LOCAL_WEIGHT)


def texture_terms(
    resources: Resources, exemplar: np.ndarray, phase: Phase, params: SynthesisParams, layout_phases: int,
    match_states: dict[str, SearchState],
) -> list[LossTerm]:
    """A texture phase's loss terms: in the first ``layout_phases`` the distribution term
    alone, on the structure layers too; then the structure loss plus the distribution term,
    if any. The copy penalty acts in the first structure phase, where the layout settles on
    the exemplar's patches (docs/quality.md: in every phase it cost detail at 512x512)."""
    if phase.index < layout_phases:
        layers = tuple(dict.fromkeys(params.swd_layers + params.layers))
        return [distribution_objective(resources, exemplar, phase, params, layers)]
    copy_penalty = params.copy_penalty if phase.index == layout_phases else 0.0
    terms: list[LossTerm] = [
        style_objective(resources, exemplar, phase, params, match_states=match_states, copy_penalty=copy_penalty)]
    if params.swd_weight:
        terms.append(distribution_objective(resources, exemplar, phase, params, params.swd_layers))
    return terms


KnownPixels = Callable[[Phase], tuple[torch.Tensor, torch.Tensor]]


def _free_pixels(
    pixels: torch.Tensor, known: tuple[torch.Tensor, torch.Tensor] | None,
) -> tuple[torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]:
    """(the optimiser's start vector, vector -> image): every pixel, or only the free ones."""
    shape = pixels.shape
    if known is None:
        return pixels.flatten(), lambda flat: flat.view(shape)
    fixed, free = known
    index = free.expand(shape).flatten().nonzero().squeeze(1)
    base = fixed.flatten()
    return pixels.flatten()[index], lambda flat: base.index_put((index,), flat).view(shape)


def run_phases(
    resources: Resources,
    plan: list[Phase],
    channels: int,
    seed: int | Sequence[int],
    make_loss: Callable[[Phase], Callable[[torch.Tensor], torch.Tensor]],
    iterations: int,
    circular: bool,
    progress: ProgressCallback | None,
    cancel: CancelToken | None,
    known: KnownPixels | None = None,
    initial: Callable[[Phase], torch.Tensor] | None = None,
    minimise: Callable[..., np.ndarray] = minimise_pixels,
) -> torch.Tensor:
    """Runs the phases of ``plan``: uniform noise in [0, 255] first, then each phase starts
    from the previous result, upscaled (bicubic). Returns (1, C, H, W) float pixels.
    With ``known`` (fill), ``known(phase)`` gives (pixels, free) at the phase's size: only
    where the bool (1, 1, H, W) ``free`` is set are pixels optimised; the rest is held at
    ``pixels``. ``initial(phase)`` replaces the first phase's noise. A sequence of seeds optimises a batch, one noise image per seed, with
    ``minimise`` (e.g. esm_core.optimisation.lockstep.minimise_lockstep); the result is (N, C, H, W)."""
    pixels: torch.Tensor | None = None
    for phase in plan:
        width, height = phase.size
        if pixels is None and initial is not None:
            pixels = initial(phase)
        elif pixels is None:
            noise = np.concatenate([np.random.default_rng(s).uniform(0.0, 255.0, (1, channels, height, width))
                                    for s in ([seed] if isinstance(seed, int) else seed)])
            pixels = torch.from_numpy(noise).to(resources.device, torch.float32)
        else:
            pixels = resize(pixels, width, height, circular=circular).clamp(0, 255)
        loss_of_image = make_loss(phase)
        start, compose = _free_pixels(pixels, None if known is None else known(phase))

        def loss_of(flat: torch.Tensor) -> torch.Tensor:
            return loss_of_image(compose(flat))

        def after(step: int, loss: float, x: np.ndarray, phase: Phase = phase,
                  compose: Callable[[torch.Tensor], torch.Tensor] = compose) -> None:
            if cancel is not None:
                cancel.check()
            if progress is not None:
                snapshot = x.copy()  # the optimiser may reuse x's buffer before preview() is called
                image = lambda: compose(torch.from_numpy(snapshot).to(resources.device, torch.float32))  # noqa: E731
                progress(Progress(phase.index, len(plan), step, iterations, loss,
                                  preview=lambda: to_uint8(image())))

        if cancel is not None:
            cancel.check()
        best = minimise(loss_of, start.double().cpu().numpy(), iterations, resources.device, after)
        pixels = compose(torch.from_numpy(best).to(resources.device, torch.float32))
    assert pixels is not None
    return pixels


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
    ``params.layout_phases`` phases (never the last) use the distribution term alone."""
    params.validate()
    exemplar = check_image(exemplar, "exemplar")
    colour, alpha = split_alpha(exemplar)
    height, width = colour.shape[:2]
    size = (params.width or width, params.height or height)
    align = max(layer_scale(name) for name in params.layers) if params.tileable else 1
    margin = 0 if params.tileable else MARGIN
    plan_phases(size, (width, height), params.phases, min_side_for(params), align)  # refuses too small sizes
    plan = plan_phases((size[0] + 2 * margin, size[1] + 2 * margin), (width, height), params.phases,
                       min_side_for(params), align)
    layout_phases = min(params.layout_phases, len(plan) - 1)
    match_states: dict[str, SearchState] = {}

    def make_loss(phase: Phase) -> Callable[[torch.Tensor], torch.Tensor]:
        terms = texture_terms(resources, colour, phase, params, layout_phases, match_states)
        layers = tuple(dict.fromkeys(name for term in terms for name in term.layers))
        return image_loss(resources, lambda features: sum(term(features) for term in terms), params, layers)

    pixels = run_phases(resources, plan, colour.shape[2], params.seed, make_loss, params.iterations,
                        params.tileable, without_margin(progress, margin, size[0] + 2 * margin), cancel)
    pixels = resize(pixels, size[0] + 2 * margin, size[1] + 2 * margin, circular=params.tileable)
    result = to_uint8(pixels[..., margin:margin + size[1], margin:margin + size[0]])
    if alpha is not None:
        result = np.concatenate([result, np.full(result.shape[:2] + (1,), 255, np.uint8)], axis=2)
    return result
