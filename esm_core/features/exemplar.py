"""An exemplar's pixels as tensors and back, its identity for caching, and its features at
a phase's scale: what every mode needs before its losses."""
from __future__ import annotations

import hashlib
from typing import Protocol, Sequence

import numpy as np
import torch

from esm_contract.params import NetworkParams

from .networks import RandomNetwork, normalise_pixels
from .resample import resize


class Networks(Protocol):
    """The device and the networks of an Engine (esm_core.modes.synthesis.Resources extends it)."""

    device: torch.device

    def network(self, params: NetworkParams) -> RandomNetwork: ...


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


def exemplar_features(
    resources: Networks, exemplar: np.ndarray, size: tuple[int, int], network: NetworkParams, layers: Sequence[str],
) -> dict[str, torch.Tensor]:
    """The exemplar's features at ``layers``, the exemplar resized to ``size`` (a phase's style size)."""
    style = resize(to_tensor(exemplar, resources.device), *size)
    with torch.no_grad():
        return resources.network(network)(normalise_pixels(style.clamp(0, 255)), layers)
