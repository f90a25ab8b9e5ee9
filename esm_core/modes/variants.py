"""Style variants, fantasy styles and style transfer from randomised Gram matrices
(docs/variants.md; the method of shared/seeds/randomizing-neural-style-transfer.txt).

The style of a layer is its Gram matrix G = V diag(λ) Vᵀ. ``variant`` multiplies every
element of V by a random factor in [low, high]; ``fantasy`` replaces V by random unit
vectors; ``none`` keeps G. Either way G' = V' diag(λ) V'ᵀ with λ >= 0 is symmetric positive
semi-definite for any V'. Image i of a job has the seed ``seed + i``, which draws both its
randomisation and its starting noise, so a seed names one image. The images of a job are
optimised together, ``batch`` at a time, through one network pass per step
(esm_core.optimisation.lockstep), each by its own L-BFGS.
"""
from __future__ import annotations

import functools
from typing import Callable

import numpy as np
import torch

from esm_contract.params import LAYER_NAMES, VariantParams

from ..features.exemplar import exemplar_features, image_digest, to_tensor, to_uint8
from ..features.networks import layer_scale, min_image_side, normalise_pixels
from ..features.resample import resize
from ..images import check_image, split_alpha
from ..losses import gram_targets
from ..losses.objectives import ContentLoss, GramLoss, total_variation
from ..optimisation.lockstep import minimise_lockstep
from ..optimisation.multiscale import Phase, SizeError, plan_phases
from ..optimisation.phases import run_phases
from ..progress import CancelToken, ProgressCallback
from .synthesis import Resources, style_key

MAX_SCALE_RATIO = 8.0  # content and style sides may differ by at most this factor


def eigen(gram: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(λ ascending, V) of a symmetric matrix, in float64 on the CPU (reproducible across
    devices); eigenvalues below zero are rounding error of a Gram matrix and become 0."""
    values, vectors = torch.linalg.eigh(gram.detach().to("cpu", torch.float64))
    return values.clamp_min(0.0), vectors


def random_vectors(mode: str, vectors: torch.Tensor, rng: np.random.Generator, low: float, high: float) -> torch.Tensor:
    """V' for ``mode``: V times elementwise factors from U[low, high] (variant), or a random
    orthonormal basis (fantasy; Haar-distributed, the QR of a Gaussian matrix with the signs
    fixed), so that G' has exactly G's eigenvalues: the energy per component survives."""
    if mode == "variant":
        return vectors * torch.from_numpy(rng.uniform(low, high, vectors.shape))
    if mode == "fantasy":
        q, r = np.linalg.qr(rng.standard_normal(vectors.shape))
        return torch.from_numpy(q * np.sign(np.diag(r)))
    return vectors


def randomise_gram(
    gram: torch.Tensor, mode: str, seed: int, layer: str, low: float = 0.1, high: float = 1.9,
) -> torch.Tensor:
    """The target G' = V' diag(λ) V'ᵀ for one layer: same dtype and device as ``gram``,
    exactly symmetric, positive semi-definite. The draws depend only on (seed, layer)."""
    if mode == "none":
        return gram
    values, vectors = eigen(gram)
    rng = np.random.default_rng([seed, LAYER_NAMES.index(layer)])
    changed = random_vectors(mode, vectors, rng, low, high)
    target = (changed * values) @ changed.T
    return ((target + target.T) / 2).to(gram.device, gram.dtype)


def level_adjust(image: np.ndarray, clip: float = 0.5) -> np.ndarray:
    """Per-channel percentile stretch (an automatic levels): the darkest and brightest
    ``clip`` percent of each channel's pixels become 0 and 255. Flat channels stay."""
    image = check_image(image, "image")
    out = image.copy()
    for c in range(3 if image.shape[2] >= 3 else 1):
        low, high = np.percentile(image[..., c], (clip, 100.0 - clip))
        if high - low >= 1.0:
            stretched = (image[..., c].astype(np.float64) - low) * (255.0 / (high - low))
            out[..., c] = np.clip(np.round(stretched), 0, 255).astype(np.uint8)
    return out


def image_seeds(params: VariantParams) -> list[int]:
    """One seed per output image, in output order (the original first when requested)."""
    seeds = [params.seed + i for i in range(params.count)]
    return ([params.seed] if params.original and params.mode != "none" else []) + seeds


def _modes(params: VariantParams) -> list[str]:
    """The randomisation of each output image."""
    extra = 1 if params.original and params.mode != "none" else 0
    return ["none"] * extra + [params.mode] * params.count


def _as_channels(image: np.ndarray, channels: int) -> np.ndarray:
    return np.repeat(image, 3, axis=2) if image.shape[2] < channels else image


def _check_scales(style: np.ndarray, content: np.ndarray) -> None:
    ratio = max(style.shape[0] / content.shape[0], content.shape[0] / style.shape[0],
                style.shape[1] / content.shape[1], content.shape[1] / style.shape[1])
    if ratio > MAX_SCALE_RATIO:
        raise SizeError(f"content {content.shape[1]}x{content.shape[0]} and style {style.shape[1]}x{style.shape[0]} "
                        f"differ in scale by {ratio:.0f}x (at most {MAX_SCALE_RATIO:g}x): resize one of them")


def synthesize_variants(
    resources: Resources,
    style: np.ndarray,
    params: VariantParams,
    content: np.ndarray | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> list[np.ndarray]:
    """The images of ``params`` (uint8 HxWxC, in ``image_seeds`` order): textures in the
    randomised style of ``style`` or, with ``content``, ``content`` repainted in it."""
    style, _ = split_alpha(check_image(style, "style"))
    alpha = None
    if content is not None:
        content, alpha = split_alpha(check_image(content, "content"))
        _check_scales(style, content)
    channels = max(style.shape[2], 1 if content is None else content.shape[2])
    style = _as_channels(style, channels)
    base = style if content is None else _as_channels(content, channels)
    size = (params.width or base.shape[1], params.height or base.shape[0])
    layers = params.layers + params.base_layers
    feature_layers = tuple(dict.fromkeys(layers + (() if content is None else (params.content_layer,))))
    align = max(layer_scale(name) for name in feature_layers) if params.tileable else 1
    plan = plan_phases(size, (style.shape[1], style.shape[0]), params.phases, min_image_side(feature_layers), align)
    net = resources.network(params.network)
    # Textures wrap the network's padding: zero padding lets the image's border positions
    # reach Gram statistics the interior cannot, and randomised targets then grow dark and
    # white blobs along the edges. A content image keeps its borders (zero padding).
    wrap = params.tileable or content is None
    seeds, modes = image_seeds(params), _modes(params)

    def content_target(phase: Phase) -> torch.Tensor:
        def features() -> torch.Tensor:
            pixels = resize(to_tensor(base, resources.device), *phase.size).clamp(0, 255)
            with torch.no_grad():
                return net(normalise_pixels(pixels), (params.content_layer,))[params.content_layer]
        key = ("content", image_digest(base), params.network, params.content_layer, phase.size)
        return resources.cached(key, features)

    results: list[np.ndarray] = []
    for start in range(0, len(seeds), params.batch):
        chunk = list(zip(seeds, modes))[start:start + params.batch]

        def make_loss(phase: Phase, chunk: list[tuple[int, str]] = chunk) -> Callable[[torch.Tensor], torch.Tensor]:
            grams = gram_targets(resources, style_key(style, phase, params.network, layers, "gram"),
                                 lambda: exemplar_features(resources, style, phase.style_size, params.network, layers))
            targets = {name: torch.stack([randomise_gram(grams[name], mode, seed, name, params.low, params.high)
                                          for seed, mode in chunk]) for name in params.layers}
            targets.update({name: grams[name] for name in params.base_layers})
            style_loss = GramLoss(targets, params.style_weight)
            content_loss = None if content is None else ContentLoss(
                params.content_layer, content_target(phase), params.content_weight)

            def loss(pixels: torch.Tensor) -> torch.Tensor:
                features = net(normalise_pixels(pixels), feature_layers, circular=wrap)
                total = style_loss.per_image(features)
                if content_loss is not None:
                    total = total + content_loss.per_image(features)
                if params.smoothness:
                    total = total + params.smoothness * torch.stack(
                        [total_variation(image[None], circular=params.tileable) for image in pixels])
                return total

            return loss

        initial = None
        if content is not None and params.init == "content":
            def initial(phase: Phase, count: int = len(chunk)) -> torch.Tensor:
                pixels = resize(to_tensor(base, resources.device), *phase.size).clamp(0, 255)
                return pixels.expand(count, -1, -1, -1).contiguous()

        pixels = run_phases(resources, plan, channels, [seed for seed, _ in chunk], make_loss, params.iterations,
                            params.tileable, progress, cancel, initial=initial,
                            minimise=functools.partial(minimise_lockstep, batch=len(chunk)))
        pixels = resize(pixels, *size, circular=params.tileable)
        for (seed, mode), image in zip(chunk, pixels):
            result = to_uint8(image)
            if params.levels == "on" or (params.levels == "auto" and mode == "fantasy"):
                result = level_adjust(result, params.level_clip)
            results.append(result)
    if alpha is not None:
        mask = resize(to_tensor(alpha, resources.device), *size).clamp(0, 255)
        results = [np.concatenate([image, to_uint8(mask)], axis=2) for image in results]
    return results

