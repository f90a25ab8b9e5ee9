"""Extreme Style Machines engine: texture synthesis with random, untrained networks.

The names below load on first use (PEP 562): ``esm_core.images`` (image files, numpy and
Pillow only) can be imported without torch, so the CLI checks its input before the engine loads.
"""
from __future__ import annotations

import importlib
from typing import Any

from esm_contract.errors import ParamError
from esm_contract.params import FillParams, NetworkParams, SynthesisParams

_SOURCES = {
    "Engine": "engine", "ImageError": "images", "load_image": "images", "save_image": "images",
    "SizeError": "optimisation.multiscale", "CancelToken": "progress", "Cancelled": "progress", "Progress": "progress",
    "boundary_seam_score": "evaluate", "colour_distance": "evaluate", "evaluate": "evaluate",
    "patch_swd": "evaluate", "seam_score": "evaluate", "DeviceError": "devices",
}

__all__ = ["FillParams", "NetworkParams", "ParamError", "SynthesisParams", *_SOURCES]


def __getattr__(name: str) -> Any:
    if name not in _SOURCES:
        raise AttributeError(f"module 'esm_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_SOURCES[name]}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value
