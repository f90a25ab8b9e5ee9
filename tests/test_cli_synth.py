"""esm synth end to end: real processes for the happy path, main() for the error paths."""
from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from esm_cli.main import main

ROOT = Path(__file__).resolve().parents[1]
BRICK = ROOT / "esm_core" / "data" / "brick.png"
FAST = ["--size", "32x32", "--phases", "1", "--iterations", "3"]


def esm(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "esm_cli.main", *args], capture_output=True, text=True,
                          timeout=300, cwd=ROOT, env=env)


def test_synth_writes_a_png_and_is_bit_identical_per_seed(tmp_path: Path) -> None:
    """Same seed, same bytes, in a new process and in this one, with as many torch threads in
    both: another thread count sums in another order, and the grain step's ranks (esm_core.modes.grain)
    can turn a last-bit difference into a grey level."""
    import torch

    first, second = tmp_path / "a.png", tmp_path / "b.png"
    threads = str(torch.get_num_threads())
    run = esm("synth", str(BRICK), "-o", str(first), *FAST, "--seed", "4",
              env={**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads})
    assert run.returncode == 0, run.stderr
    assert main(["synth", str(BRICK), "-o", str(second), *FAST, "--seed", "4", "-q"]) == 0
    assert hashlib.sha256(first.read_bytes()).digest() == hashlib.sha256(second.read_bytes()).digest()
    with Image.open(first) as image:
        assert image.size == (32, 32) and image.mode == "L"


def test_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    run = esm("synth", str(corrupt), "-o", str(tmp_path / "out.png"), *FAST)
    assert run.returncode == 2
    assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1
    assert "not a readable image" in run.stderr
    assert not (tmp_path / "out.png").exists()


def exit_code(argv: list[str]) -> int:
    """main()'s status, whether it returns it or argparse exits with it."""
    try:
        return main(argv)
    except SystemExit as exit:
        return int(exit.code or 0)


@pytest.mark.parametrize("args,message", [
    (["missing.png"], "no such file"),
    ([str(BRICK), "--size", "0x10"], "0x10 is too small for layers 3_1,4_1: at least 24x24"),
    ([str(BRICK), "--size", "100000x10"], "width must be between"),
    ([str(BRICK), "--size", "abc"], "size must look like"),
    ([str(BRICK), "--size", "16x16"], "too small"),
    ([str(BRICK), "--layers", "9_9"], "layer must be one of"),
    ([str(BRICK), "--phases", "0"], "phases must be between"),
    ([str(BRICK), "--activation", "tanh"], "invalid choice"),
    ([str(BRICK), "--preset", "blog"], "invalid choice"),
    ([str(BRICK), "--swd-weight", "-1"], "swd weight must be >= 0"),
    ([str(BRICK), "--copy-penalty", "-0.5"], "copy penalty must be >= 0"),
    ([str(BRICK), "--swd-weight", "0"], "layout phases match feature distributions: they need a swd weight"),
    ([str(BRICK), "--swd-layers", "5_1"], "layer must be one of"),
    ([str(BRICK), "--no-such-option"], "unrecognized arguments"),
])
def test_bad_input_exits_2_with_a_clear_message(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 args: list[str], message: str) -> None:
    out = tmp_path / "out.png"
    assert exit_code(["synth", *args, "-o", str(out), "-q"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_output_gets_a_new_files_permissions_or_keeps_the_replaced_files(tmp_path: Path) -> None:
    new, existing = tmp_path / "new.png", tmp_path / "existing.png"
    existing.write_bytes(b"old")
    existing.chmod(0o640)
    previous = os.umask(0o022)
    try:
        for output in (new, existing):
            assert main(["synth", str(BRICK), "-o", str(output), *FAST, "-q"]) == 0
    finally:
        os.umask(previous)
    assert stat.S_IMODE(new.stat().st_mode) == 0o644  # not the temporary file's 0600
    assert stat.S_IMODE(existing.stat().st_mode) == 0o640
    with Image.open(existing) as image:
        assert image.size == (32, 32)


def test_output_folder_must_exist(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert exit_code(["synth", str(BRICK), "-o", str(tmp_path / "nope" / "o.png"), *FAST, "-q"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_rgb_exemplar_gives_rgb_output(tmp_path: Path) -> None:
    rgb = tmp_path / "rgb.png"
    rng = np.random.default_rng(0)
    Image.fromarray(np.kron(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8), np.ones((5, 5, 1), np.uint8))).save(rgb)
    assert main(["synth", str(rgb), "-o", str(tmp_path / "o.png"), *FAST, "-q"]) == 0
    with Image.open(tmp_path / "o.png") as image:
        assert image.mode == "RGB" and image.size == (32, 32)


def test_preset_reference_is_the_blogs_flags_and_explicit_flags_override_it(tmp_path: Path) -> None:
    """--preset reference sets the blog's settings; a flag given with it wins; the defaults differ."""
    small = ["--size", "32x32", "-q", "--no-daemon"]
    outputs = {name: tmp_path / f"{name}.png" for name in ("preset", "spelled", "override", "spelled_override",
                                                            "default")}
    blog = ["--phases", "4", "--iterations", "10", "--style-weight", "100", "--variety", "0.1",
            "--smoothness", "0.1", "--swd-weight", "0", "--layout-phases", "0", "--copy-penalty", "0", "--grain", "0",
            "--start", "noise"]
    runs = {
        "preset": ["--preset", "reference"],
        "spelled": blog,
        "override": ["--preset", "reference", "--iterations", "4"],
        "spelled_override": [*blog[:2], "--iterations", "4", *blog[4:]],
        "default": [],
    }
    for name, flags in runs.items():
        assert main(["synth", str(BRICK), "-o", str(outputs[name]), *small, *flags]) == 0
    digest = {name: hashlib.sha256(path.read_bytes()).hexdigest() for name, path in outputs.items()}
    assert digest["preset"] == digest["spelled"]
    assert digest["override"] == digest["spelled_override"] != digest["preset"]
    assert digest["default"] != digest["preset"]
