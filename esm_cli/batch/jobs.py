"""A batch job's typed ``Job``: its images read and checked as ``esm synth``, ``esm fill``
and ``esm variants`` read and check theirs (same functions), so the same job gives the same
pixels. Runs in the driver: workers get images, never paths, and need no shared disk."""
from __future__ import annotations

from typing import TYPE_CHECKING

from esm_contract import params as P
from esm_contract.jobs import Job
from esm_contract.schema import STYLE_SAMPLES
from esm_cli.batch.manifest import BatchJob
from esm_cli.checks import check_size
from esm_cli.commands.fill import mask_channel

if TYPE_CHECKING:
    import numpy as np


def load_job(job: BatchJob) -> Job[np.ndarray]:
    """The Job; raises esm_contract's errors (an unreadable image) or UserError (too small)."""
    from esm_core.images import load_image

    images = {name: load_image(path) for name, path in job.images.items()}
    if "mask" in images:
        images["mask"] = mask_channel(images["mask"])
    params = job.params
    if isinstance(params, P.VariantParams):
        layers = params.layers + params.base_layers + ((params.content_layer,) if "content" in images else ())
        checked, sample = ("style", "content"), STYLE_SAMPLES["gram"]
        if params.width and params.height:
            check_size("output size", (params.width, params.height), layers, sample)
    else:
        layers, sample = params.layers, STYLE_SAMPLES[params.loss]
        checked = ("exemplar", "image")
    for name in checked:
        if name in images:
            check_size(name, (images[name].shape[1], images[name].shape[0]), layers, sample)
    return Job(job.mode, params, images)
