"""Choosing the torch device: CUDA, then Apple MPS, then CPU."""
from __future__ import annotations

import torch

from esm_contract.errors import ParamError


class DeviceError(ParamError):
    """The requested device is not available on this machine."""


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise DeviceError("--device cuda: torch sees no CUDA GPU on this machine (use --device auto or cpu)")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise DeviceError("--device mps: Apple MPS is not available on this machine (use --device auto or cpu)")
    return torch.device(name)
