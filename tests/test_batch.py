"""esm batch on a real local Ray instance (2 CPUs, started here): the three modes, a corrupt
exemplar, an invalid line, resume, a worker killed mid-batch and Ctrl-C (docs/batch.md)."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest
import ray
import torch

from esm_cli.main import main
from esm_core.images import load_image, save_image

SMALL = {"phases": 1, "iterations": 3}
TIMEOUT_S = 300.0


def _rows(outdir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (outdir / "results.jsonl").read_text().splitlines()]


def _write_manifest(path: Path, lines: list[Any]) -> Path:
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Small exemplars (48 px crops of the bundled ones), a mask and a corrupt PNG."""
    folder = tmp_path_factory.mktemp("inputs")
    data = Path(__file__).resolve().parents[1] / "esm_core" / "data"
    save_image(load_image(data / "grass.png")[:48, :48], folder / "grass.png")
    save_image(load_image(data / "brick.png")[:48, :48], folder / "brick.png")
    mask = np.zeros((48, 48, 1), np.uint8)
    mask[16:32, 16:32] = 255
    save_image(mask, folder / "hole.png")
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return folder


def _texture_lines(count: int) -> list[dict[str, Any]]:
    """Jobs slow enough (about 0.4 s each on one core) that a signal or a kill sent once the
    first result is written still finds work running: at 48 px and 12 iterations a quiet
    machine finished all eight before the signal arrived."""
    return [{"mode": "texture", "images": {"exemplar": "grass.png"},
             "params": {"width": 64, "height": 64, "phases": 1, "iterations": 40},
             "output": f"slow{i}.png"} for i in range(count)]


def _sigint_as_in_a_terminal() -> None:
    """SIGINT's default action, as a foreground command in a terminal has it: a suite started in
    the background (`cmd &` in a script) passes SIGINT on ignored, and Python keeps it ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_sigint_leaves_a_resumable_folder(inputs: Path, tmp_path: Path) -> None:
    """A real `esm batch` process on its own local Ray instance (the default), interrupted after
    its first result: rc 130, finished outputs and their rows stay, no half-written file, and the
    next run does only the rest. (Runs before this module starts Ray in-process.)"""
    manifest = _write_manifest(inputs / "sigint.jsonl", _texture_lines(8))
    outdir = tmp_path / "out"
    ray_tmp = tempfile.mkdtemp(prefix="esmray", dir="/tmp")  # short: Ray's socket paths have a length limit
    env = {**os.environ, "RAY_TMPDIR": ray_tmp, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "esm_cli.main", "batch", str(manifest), "-o", str(outdir), "-q"]
    try:
        process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True,
                                   preexec_fn=_sigint_as_in_a_terminal)
        deadline = time.monotonic() + TIMEOUT_S
        while not (outdir / "results.jsonl").is_file() or not (outdir / "results.jsonl").read_text():
            assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 130, stderr
        assert "resume" in stderr
        rows = _rows(outdir)
        ok = [row for row in rows if row["status"] == "ok"]
        assert ok and len(ok) < 8
        assert {row["status"] for row in rows} <= {"ok", "cancelled"}
        written = sorted(p.name for p in outdir.glob("*.png"))
        assert written == sorted(row["output"] for row in ok)  # every output recorded, nothing half-written
        assert not list(outdir.glob(".esm-*"))
        before = {row["output"]: (outdir / row["output"]).stat().st_mtime_ns for row in ok}
        resumed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
        assert resumed.returncode == 0, resumed.stderr
        rows = _rows(outdir)
        assert sorted(row["output"] for row in rows if row["status"] == "ok") == sorted(f"slow{i}.png" for i in range(8))
        assert {name: (outdir / name).stat().st_mtime_ns for name in before} == before  # not run again
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """A local Ray instance in this process, as CI can afford it: 2 CPUs, no dashboard, a small
    object store. esm batch uses it (cluster.connect keeps a running Ray)."""
    temp = tempfile.mkdtemp(prefix="esmray", dir="/tmp")
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=150 << 20, _temp_dir=temp,
             log_to_driver=False, logging_level="warning")
    yield
    ray.shutdown()
    shutil.rmtree(temp, ignore_errors=True)


MANIFEST = [
    {"mode": "texture", "images": {"exemplar": "grass.png"}, "params": {"width": 48, "height": 40, **SMALL},
     "output": "grass.png", "seeds": [1, 2, 3]},
    {"mode": "texture", "images": {"exemplar": "brick.png"}, "params": {"tileable": True, **SMALL},
     "output": "tiles/brick.png"},
    {"mode": "texture", "images": {"exemplar": "corrupt.png"}, "params": SMALL, "output": "corrupt.png"},
    {"mode": "texture", "images": {"exemplar": "grass.png"}, "params": {"phases": 0}, "output": "invalid.png"},
    {"mode": "fill", "images": {"image": "grass.png", "mask": "hole.png"}, "params": {"context": 16, **SMALL},
     "output": "filled.png", "seeds": [4, 5]},
    {"mode": "fill", "images": {"image": "grass.png", "mask": "hole.png", "source": "brick.png"},
     "params": {**SMALL, "output": "layer"}, "output": "layer.png"},
    {"mode": "variants", "images": {"style": "brick.png"}, "params": {"count": 2, **SMALL},
     "output": "brick.png", "seeds": [0, 7]},
    {"mode": "variants", "images": {"style": "grass.png"}, "params": {"count": 1, "mode": "fantasy", **SMALL},
     "output": "fantasy.png"},
]
# The same jobs through the CLI: output file(s) in the batch's folder -> esm arguments.
SAME_JOBS = {
    **{(f"grass-s{s}.png",): ["synth", "grass.png", "--size", "48x40", "--seed", str(s)] for s in (1, 2, 3)},
    ("tiles/brick.png",): ["synth", "brick.png", "--tileable"],
    **{(f"filled-s{s}.png",): ["fill", "grass.png", "--mask", "hole.png", "--context", "16", "--seed", str(s)]
       for s in (4, 5)},
    ("layer.png",): ["fill", "grass.png", "--mask", "hole.png", "--source", "brick.png", "--output-layer"],
    **{(f"brick-s{s}-variant-{s}.png", f"brick-s{s}-variant-{s + 1}.png"):
       ["variants", "brick.png", "-n", "2", "--seed", str(s)] for s in (0, 7)},
    ("fantasy-fantasy-0.png",): ["variants", "grass.png", "-n", "1", "--mode", "fantasy"],
}


@pytest.fixture(scope="module")
def batch(local_ray: None, inputs: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, int]:
    """The manifest run once on 2 workers of 1 CPU: (manifest, OUTDIR, exit status)."""
    manifest = _write_manifest(inputs / "manifest.jsonl", MANIFEST)
    outdir = tmp_path_factory.mktemp("batch") / "out"
    status = main(["batch", str(manifest), "-o", str(outdir), "--workers", "2", "--skip-invalid", "-q"])
    return manifest, outdir, status


def test_an_invalid_line_stops_the_batch_before_anything_runs(inputs: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    manifest = _write_manifest(inputs / "refused.jsonl", [*MANIFEST[:3], "{not json", MANIFEST[3]])
    assert main(["batch", str(manifest), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"{manifest}:4: not JSON" in err
    assert f"{manifest}:5: phases must be" in err
    assert "2 invalid line(s)" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("line", "message"), [
    ({"images": {}}, "mode must be one of texture, fill, variants"),
    ({"mode": "texture", "images": {"exemplar": "grass.png"}, "output": "../x.png"}, "inside OUTDIR"),
    ({"mode": "texture", "images": {"exemplar": "nope.png"}, "output": "x.png"}, "nope.png: no such file"),
    ({"mode": "fill", "images": {"image": "grass.png"}, "output": "x.png"}, "mode fill takes images image, mask"),
    ({"mode": "texture", "images": {"exemplar": "grass.png"}, "params": {"sizee": 3}, "output": "x.png"},
     "unknown parameter(s): sizee"),
    ({"mode": "texture", "images": {"exemplar": "grass.png"}, "output": "x.png", "seeds": [1, 1]},
     "seeds must be a non-empty list of different whole numbers"),
    ({"mode": "texture", "images": {"exemplar": "grass.png"}, "output": "grass-s2.png"},
     "output grass-s2.png is already written by line 1"),
])
def test_each_invalid_line_says_what_is_wrong(inputs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               line: dict[str, Any], message: str) -> None:
    manifest = _write_manifest(inputs / f"{tmp_path.name}.jsonl", [MANIFEST[0], line])
    assert main(["batch", str(manifest), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"{manifest}:2: " in err and message in err
    assert f"{manifest}:1:" not in err


def test_the_batch_writes_what_the_cli_writes(batch: tuple[Path, Path, int], inputs: Path, tmp_path: Path) -> None:
    """Byte for byte the outputs of esm synth / fill / variants --no-daemon for the same jobs on
    the same device: a CPU with as many torch threads as each worker has (1 of the 2 CPUs), since
    another thread count sums in another order and can change the last bits."""
    _, outdir, status = batch
    assert status == 1  # the corrupt exemplar and the invalid line
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _compare_with_cli(outdir, inputs, tmp_path)
    finally:
        torch.set_num_threads(threads)


def _compare_with_cli(outdir: Path, inputs: Path, tmp_path: Path) -> None:
    for names, arguments in SAME_JOBS.items():
        cli = tmp_path / arguments[0]
        target = cli if arguments[0] == "variants" else cli.with_suffix(".png")
        argv = [arguments[0], str(inputs / arguments[1]), *[str(inputs / a) if a.endswith(".png") else a
                                                             for a in arguments[2:]]]
        assert main([*argv, "-o", str(target), "--phases", "1", "--iterations", "3", "--no-daemon", "-q"]) == 0
        for name in names:
            expected = target / name.split("-", 2 if "-s" in name else 1)[-1] if arguments[0] == "variants" else target
            assert (outdir / name).read_bytes() == expected.read_bytes(), name
        shutil.rmtree(cli, ignore_errors=True) if cli.is_dir() else target.unlink()


def test_results_record_every_job_and_its_figures(batch: tuple[Path, Path, int]) -> None:
    _, outdir, _ = batch
    rows = _rows(outdir)
    by_output = {row["output"]: row for row in rows}
    assert len(rows) == 12  # 11 jobs from 7 valid lines, and the invalid line
    assert {row["output"] for row in rows if row["status"] == "ok"} == {
        "grass-s1.png", "grass-s2.png", "grass-s3.png", "tiles/brick.png", "filled-s4.png", "filled-s5.png",
        "layer.png", "brick-s0.png", "brick-s7.png", "fantasy.png"}
    corrupt = by_output["corrupt.png"]
    assert (corrupt["status"], corrupt["line"], corrupt["code"]) == ("error", 3, "bad_params")
    assert "not a readable image" in corrupt["message"]
    invalid = by_output["invalid.png"]
    assert (invalid["status"], invalid["line"], invalid["code"]) == ("error", 4, "bad_params")
    assert not (outdir / "corrupt.png").exists() and not (outdir / "invalid.png").exists()
    ok = by_output["tiles/brick.png"]
    assert ok["line"] == 2 and ok["seconds"] > 0 and ok["worker"] and ok["runs"] == 1
    assert set(ok["eval"]["tiles/brick.png"]) >= {"patch_swd", "colour_distance", "flat", "copy", "seam_score"}
    assert set(by_output["brick-s7.png"]["eval"]) == {"brick-s7-variant-7.png", "brick-s7-variant-8.png"}
    assert len({row["worker"] for row in rows if row["worker"]}) == 2  # both workers ran jobs


def test_resume_reruns_no_finished_job(batch: tuple[Path, Path, int]) -> None:
    manifest, outdir, _ = batch
    files = {path: path.stat().st_mtime_ns for path in outdir.rglob("*.png")}
    before = len(_rows(outdir))
    assert main(["batch", str(manifest), "-o", str(outdir), "--skip-invalid", "-q"]) == 1
    again = _rows(outdir)[before:]
    assert sorted(row["output"] for row in again) == ["corrupt.png", "invalid.png"]  # only the failed ones
    assert {path: path.stat().st_mtime_ns for path in outdir.rglob("*.png")} == files


def test_a_killed_worker_loses_no_job(local_ray: None, inputs: Path, tmp_path: Path) -> None:
    """ray.kill on a worker actor once the first job has finished: its jobs run on another
    worker; every job ends ok."""
    manifest = _write_manifest(inputs / "kill.jsonl", _texture_lines(6))
    outdir = tmp_path / "out"
    killed: list[str] = []

    def kill_one() -> None:
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            if (outdir / "results.jsonl").is_file() and (outdir / "results.jsonl").read_text():
                names = sorted(a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
                               if a["name"].startswith("esm-batch-"))
                ray.kill(ray.get_actor(names[0]))
                killed.append(names[0])
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_one)
    killer.start()
    status = main(["batch", str(manifest), "-o", str(outdir), "--workers", "2", "-q"])
    killer.join()
    assert killed
    rows = _rows(outdir)
    assert status == 0
    assert sorted(row["output"] for row in rows) == sorted(f"slow{i}.png" for i in range(6))
    assert all(row["status"] == "ok" for row in rows)
    assert max(row["runs"] for row in rows) == 2  # the killed worker's jobs ran again elsewhere
    assert all((outdir / f"slow{i}.png").is_file() for i in range(6))
