"""What the CLI checks before any work (the real `esm` command in a subprocess): outputs,
devices, sizes and what this machine can hold, all before torch loads where they can be;
and that each command's --help offers exactly what it accepts."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from esm_contract.params import LAYER_NAMES, SynthesisParams
from esm_contract.schema import STYLE_SAMPLES
from esm_cli.checks import BASE_BYTES, BYTES_PER_PIXEL, available_memory, min_side

ROOT = Path(__file__).resolve().parents[1]
BRICK = ROOT / "esm_core" / "data" / "brick.png"
FAST = ["--size", "32x32", "--phases", "1", "--iterations", "3", "--no-daemon"]


def esm(*args: str, python_flags: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *python_flags, "-m", "esm_cli.main", *args], capture_output=True,
                          text=True, timeout=300, cwd=ROOT)


def one_line_error(run: subprocess.CompletedProcess[str], message: str) -> None:
    assert run.returncode == 2, run.stderr
    assert message in run.stderr and "Traceback" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr


def test_an_output_that_is_a_folder_is_refused_before_the_work(tmp_path: Path) -> None:
    run = esm("synth", str(BRICK), "-o", str(tmp_path), *FAST)
    one_line_error(run, "is a folder")
    run = esm("fill", str(BRICK), "--mask", str(BRICK), "-o", str(tmp_path), "--phases", "1", "--no-daemon")
    one_line_error(run, "is a folder")


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has a CUDA GPU")
def test_a_missing_gpu_is_one_line() -> None:
    run = esm("synth", str(BRICK), "-o", "never.png", *FAST, "--device", "cuda")
    one_line_error(run, "--device cuda: torch sees no CUDA GPU")
    assert not (ROOT / "never.png").exists()


@pytest.mark.parametrize("args, message", [
    (["synth", "missing.png", "-o", "out.png"], "no such file"),
    (["synth", str(BRICK), "-o", "no-such-folder/out.png"], "output folder does not exist"),
    (["synth", str(BRICK), "-o", "out.png", "--size", "0x0"], "at least 24x24"),
    (["variants", "missing.png", "-o", "out"], "no such file"),
    (["fill", str(BRICK), "--mask", "missing.png", "-o", "out.png"], "no such file"),
    (["grid", str(BRICK), "-o", "out.png", "--phases", "0"], "phases must be between"),
])
def test_bad_input_is_refused_before_torch_loads(args: list[str], message: str) -> None:
    run = esm(*args, python_flags=("-X", "importtime"))
    assert run.returncode == 2 and message in run.stderr, run.stderr
    imported = [line.rsplit("|", 1)[-1].strip() for line in run.stderr.splitlines() if line.startswith("import time:")]
    assert imported and not [name for name in imported if name.split(".")[0] == "torch"]


def test_sizes_blame_what_the_user_gave(tmp_path: Path) -> None:
    tiny = tmp_path / "tiny.png"
    Image.new("L", (1, 1), 128).save(tiny)
    one_line_error(esm("synth", str(tiny), "-o", str(tmp_path / "o.png")),
                   "exemplar 1x1 is too small for layers 3_1,4_1: at least 24x24")
    one_line_error(esm("synth", str(BRICK), "-o", str(tmp_path / "o.png"), "--size", "0x0"),
                   "output size (--size) 0x0 is too small for layers 3_1,4_1: at least 24x24")
    one_line_error(esm("variants", str(tiny), "-o", str(tmp_path / "v")), "style 1x1 is too small")
    assert list(tmp_path.iterdir()) == [tiny]


def test_the_minimum_side_is_the_engines() -> None:
    """esm_cli.checks.min_side is esm_core.modes.synthesis.min_side_for without torch."""
    from esm_core.modes.synthesis import min_side_for

    for layer in LAYER_NAMES:
        for loss, sample in STYLE_SAMPLES.items():
            assert min_side((layer, "1_1"), sample) == min_side_for(SynthesisParams(layers=(layer, "1_1"), loss=loss))


def test_a_job_this_machine_cannot_hold_is_refused_with_the_estimate_and_force(tmp_path: Path) -> None:
    estimate = BASE_BYTES + BYTES_PER_PIXEL * 8192 * 8192
    free = available_memory()
    if free is None or free > estimate:
        pytest.skip(f"this machine has {free} bytes free, more than 8192x8192 needs")
    run = esm("synth", str(BRICK), "-o", str(tmp_path / "o.png"), "--size", "8192x8192", "--no-daemon")
    one_line_error(run, "GiB of memory")
    assert "--force" in run.stderr and " min " in run.stderr
    assert list(tmp_path.iterdir()) == []


def test_help_offers_only_what_the_command_accepts(tmp_path: Path) -> None:
    fill_help = esm("fill", "--help").stdout
    assert "--size" not in fill_help and "at most" in fill_help
    refused = esm("fill", str(BRICK), "--mask", str(BRICK), "-o", str(tmp_path / "o.png"), "--size", "32x32")
    one_line_error(refused, "unrecognized arguments: --size")
    grid_help = esm("grid", "--help").stdout
    for flag in ("--activation", "--downsample", "--units", "--depth"):
        assert flag not in grid_help
    assert "--init" in grid_help and "--network-seed" in grid_help
    synth_help = esm("synth", "--help").stdout
    assert "about 5x" not in synth_help and "depends on the machine" in " ".join(synth_help.split())

