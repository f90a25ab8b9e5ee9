"""Extreme Style Machines engine: texture synthesis with random, untrained networks."""
from esm_api.params import FillParams, NetworkParams, ParamError, SynthesisParams

from .engine import Engine
from .evaluate import boundary_seam_score, colour_distance, evaluate, patch_swd, seam_score
from .images import ImageError, load_image, save_image
from .multiscale import SizeError
from .progress import CancelToken, Cancelled, Progress

__all__ = [
    "CancelToken", "Cancelled", "Engine", "FillParams", "ImageError", "NetworkParams", "ParamError", "Progress",
    "SizeError", "SynthesisParams", "load_image", "save_image",
    "boundary_seam_score", "colour_distance", "evaluate", "patch_swd", "seam_score",
]
