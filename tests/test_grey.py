"""Grey in, grey out: a grey photo stored as RGB, or a grey+alpha PNG, gives a grey result in
every mode, through the CLI (the real `esm` command) and through a real daemon (what the
GIMP and Krita plug-ins use). Before, the three colour channels were synthesised apart and
drifted: thousands of pixels with chroma above 10, mostly along the borders."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from esm_contract import params as P
from esm_client.client import Client
from esm_core.images import from_array, to_array

ROOT = Path(__file__).resolve().parents[1]
SHORT = ["--phases", "1", "--iterations", "3", "--no-daemon", "-q"]


def grey_texture(seed: int = 0, side: int = 64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.kron(rng.integers(0, 255, (side // 5, side // 5), dtype=np.uint8), np.ones((5, 5), np.uint8))


def chroma(image: np.ndarray) -> int:
    """The largest difference between two colour channels of any pixel."""
    colour = image[..., :3].astype(int)
    return int((colour.max(axis=2) - colour.min(axis=2)).max())


def esm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "esm_cli.main", *args], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, Path]:
    grey = grey_texture()
    paths = {"rgb": tmp_path / "rgb.png", "la": tmp_path / "la.png", "mask": tmp_path / "mask.png"}
    Image.fromarray(np.dstack([grey] * 3)).save(paths["rgb"])
    Image.fromarray(np.dstack([grey, np.full_like(grey, 200)]), "LA").save(paths["la"])
    mask = np.zeros_like(grey)
    mask[20:40, 20:40] = 255
    Image.fromarray(mask).save(paths["mask"])
    return paths


def read(path: Path) -> tuple[str, np.ndarray]:
    with Image.open(path) as image:
        return image.mode, np.asarray(image)


@pytest.mark.parametrize("kind, mode", [("rgb", "RGB"), ("la", "RGBA")])
def test_cli_synth_fill_and_variants_keep_grey_inputs_grey(tmp_path: Path, inputs: dict[str, Path], kind: str,
                                                           mode: str) -> None:
    source = str(inputs[kind])
    runs = {
        "synth": esm("synth", source, "-o", str(tmp_path / "synth.png"), "--size", "48x48", *SHORT),
        "fill": esm("fill", source, "--mask", str(inputs["mask"]), "-o", str(tmp_path / "fill.png"), *SHORT),
        "variants": esm("variants", source, "-o", str(tmp_path / "v"), "-n", "1", "--mode", "fantasy",
                        "--content", source, *SHORT),
    }
    for name, run in runs.items():
        assert run.returncode == 0, (name, run.stderr)
    for path in (tmp_path / "synth.png", tmp_path / "fill.png", tmp_path / "v" / "fantasy-0.png"):
        found, image = read(path)
        assert found == mode and chroma(image) == 0, (path.name, found, chroma(image))
    _, filled = read(tmp_path / "fill.png")
    outside = np.asarray(Image.open(inputs["mask"])) < 128
    assert (filled[outside] == np.asarray(Image.open(inputs[kind]).convert(mode))[outside]).all()


def test_the_daemon_keeps_grey_inputs_grey(daemon_endpoint: str) -> None:
    grey = grey_texture(1)
    rgba = np.dstack([grey, grey, grey, np.full_like(grey, 255)])
    params = P.to_dict(P.SynthesisParams(width=48, height=48, phases=1, iterations=3))
    with Client(daemon_endpoint) as client:
        [result] = client.run("texture", params, {"exemplar": from_array(rgba)})
    image = to_array(result)
    assert image.shape == (48, 48, 4) and chroma(image) == 0
