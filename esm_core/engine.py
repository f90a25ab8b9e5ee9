"""The Engine: one device, its random networks and cached style features, and every
synthesis mode as a method. The CLI makes one per run; the daemon keeps one alive."""
from __future__ import annotations

from typing import Any, Callable, Hashable, Mapping

import numpy as np
import torch

from esm_contract.jobs import Job
from esm_contract.params import FillParams, NetworkParams, SynthesisParams, VariantParams

from .cache import LRUCache
from .devices import resolve_device
from .features.networks import RandomNetwork
from .images import check_image, from_grey, is_grey, to_grey
from .losses import matching
from .losses.matching import Matcher
from .progress import CancelToken, ProgressCallback

DEFAULT_CACHE_BYTES = 1 << 30


def _tensor_bytes(value: Any) -> int:
    """Bytes held by tensors inside nested dicts/lists/objects with ``nbytes``."""
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        return sum(_tensor_bytes(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_tensor_bytes(v) for v in value)
    if isinstance(value, torch.nn.Module):
        return sum(p.numel() * p.element_size() for p in value.parameters())
    return int(getattr(value, "nbytes", 0))


def grey_inputs(images: Mapping[str, np.ndarray | None]) -> dict[str, np.ndarray] | None:
    """Grey in, grey out: when every input image is grey but some are stored as RGB(A) (a
    grey photo saved as RGB, a grey+alpha PNG), those as their one grey channel (+ alpha), so
    the job synthesises one channel and no colour can creep in; None when some input has
    colour or all are already grey. The caller expands the results with ``from_grey``."""
    given = {name: check_image(image, name) for name, image in images.items() if image is not None}
    if all(image.shape[2] <= 2 for image in given.values()) or not all(map(is_grey, given.values())):
        return None
    return {name: to_grey(image) if image.shape[2] >= 3 else image for name, image in given.items()}


def _in_colour(image: np.ndarray) -> np.ndarray:
    """A result of a job run on ``grey_inputs``, in the colour layout its inputs had."""
    return from_grey(image) if image.shape[2] <= 2 else image  # fill's RGBA layer is laid out already


class Engine:
    def __init__(self, device: str = "auto", cache_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.device = resolve_device(device)
        self._networks: LRUCache[RandomNetwork] = LRUCache(cache_bytes // 4, _tensor_bytes)
        self._features: LRUCache[Any] = LRUCache(cache_bytes, _tensor_bytes)

    # -- resources used by the synthesis modules
    def network(self, params: NetworkParams) -> RandomNetwork:
        return self._networks.get_or_create(
            (params, str(self.device), "float32"), lambda: RandomNetwork(params).to(self.device))

    def cached(self, key: Hashable, create: Callable[[], Any]) -> Any:
        return self._features.get_or_create((key, str(self.device)), create)

    def matcher(self, name: str) -> Matcher:
        return matching.matcher(name)

    def cache_info(self) -> dict[str, dict[str, int]]:
        return {"networks": self._networks.info(), "style_features": self._features.info()}

    def clear_caches(self) -> None:
        self._networks.clear()
        self._features.clear()

    # -- modes
    def run(
        self,
        job: Job[np.ndarray],
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> list[np.ndarray]:
        """Runs a validated job (esm_contract.jobs.Job with uint8 HxWxC images) by its mode's
        entry in ``MODES``. The CLI and the daemon both run jobs this way."""
        return MODES[job.mode](self, job, progress, cancel)

    def synthesize(
        self,
        exemplar: np.ndarray,
        params: SynthesisParams,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> np.ndarray:
        from .modes.synthesis import synthesize_texture

        grey = grey_inputs({"exemplar": exemplar})
        with torch.inference_mode(False), torch.enable_grad():
            result = synthesize_texture(self, grey["exemplar"] if grey else exemplar, params, progress, cancel)
        return _in_colour(result) if grey else result

    def fill(
        self,
        image: np.ndarray,
        mask: np.ndarray,
        params: FillParams,
        source: np.ndarray | None = None,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> np.ndarray:
        """``image`` with its hole (``mask`` >= 128) filled from the surroundings or from
        ``source`` (docs/fill.md)."""
        from .modes.fill import fill_hole  # loads scipy's ndimage and signal: only fills pay for them

        grey = grey_inputs({"image": image, "source": source})
        if grey:
            image, source = grey["image"], grey.get("source")
        with torch.inference_mode(False), torch.enable_grad():
            result = fill_hole(self, image, mask, params, source, progress, cancel)
        return _in_colour(result) if grey else result

    def variants(
        self,
        style: np.ndarray,
        params: VariantParams,
        content: np.ndarray | None = None,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> list[np.ndarray]:
        """Style variants, fantasy styles or style transfer from randomised Gram matrices:
        ``params.count`` images (plus the original style's first when ``params.original``),
        in the order of ``esm_core.modes.variants.image_seeds(params)`` (docs/variants.md)."""
        from .modes.variants import synthesize_variants

        grey = grey_inputs({"style": style, "content": content})
        if grey:
            style, content = grey["style"], grey.get("content")
        with torch.inference_mode(False), torch.enable_grad():
            results = synthesize_variants(self, style, params, content, progress, cancel)
        return [_in_colour(result) for result in results] if grey else results


ModeRunner = Callable[[Engine, Job[np.ndarray], "ProgressCallback | None", "CancelToken | None"], list[np.ndarray]]

# The engine's modes, by the name esm_contract.jobs.MODES gives them (tests/test_architecture.py
# checks that both name the same modes). A mode's code loads on its first job.
MODES: dict[str, ModeRunner] = {
    "texture": lambda engine, job, progress, cancel: [
        engine.synthesize(job.images["exemplar"], job.params, progress, cancel)],
    "fill": lambda engine, job, progress, cancel: [
        engine.fill(job.images["image"], job.images["mask"], job.params, job.images.get("source"), progress, cancel)],
    "variants": lambda engine, job, progress, cancel: engine.variants(
        job.images["style"], job.params, job.images.get("content"), progress, cancel),
}
