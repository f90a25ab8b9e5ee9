"""esm batch's throughput on this machine: the same texture jobs through 1 and 2 Ray workers
(a local Ray instance, started once) against one after another through one warm daemon, and
what Ray adds per job.

- daemon: a real `esm daemon start --foreground` (bench_daemon.start_daemon), warmed by one
  job, then the N jobs one after another through esm_client;
- batch: esm_cli.batch.cluster.Batch on a fresh set of workers, timed from the workers' start
  to the last results row (engine start-up, the `esm eval` figures and the PNG writes included:
  what a user waits for);
- Ray's own cost: the round trip of an actor call carrying one job's exemplar and returning
  one output, without any synthesis.

    .venv/bin/python bench/bench_batch.py
    .venv/bin/python bench/bench_batch.py --jobs 16 --size 128 --phases 2 --iterations 10
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from bench_daemon import raw, start_daemon  # also sets OMP_WAIT_POLICY=PASSIVE before torch loads

import numpy as np  # noqa: E402

from esm_client.client import Client  # noqa: E402
from esm_cli.batch import cluster  # noqa: E402
from esm_cli.batch.manifest import BatchJob, read_manifest  # noqa: E402
from esm_cli.batch.results import Results  # noqa: E402
from esm_contract.params import to_dict  # noqa: E402
from esm_core.images import load_image, save_image  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def write_jobs(folder: Path, jobs: int, size: int, exemplar: int, phases: int, iterations: int) -> Path:
    """N texture jobs over two exemplars (alternating: the workers' exemplar caches matter)."""
    for name in ("grass", "brick"):
        save_image(load_image(ROOT / f"esm_core/data/{name}.png")[:exemplar, :exemplar], folder / f"{name}.png")
    manifest = folder / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(
        {"mode": "texture", "images": {"exemplar": ("grass", "brick")[i % 2] + ".png"},
         "params": {"width": size, "height": size, "phases": phases, "iterations": iterations, "seed": i},
         "output": f"job{i}.png"}) + "\n" for i in range(jobs)))
    return manifest


def through_daemon(endpoint: str, jobs: list[BatchJob]) -> float:
    """Seconds for the jobs one after another through one warm daemon."""
    with Client(endpoint) as client:
        def one(job: BatchJob) -> None:
            client.run(job.mode, to_dict(job.params), {k: raw(load_image(p)) for k, p in job.images.items()})

        one(jobs[0])  # warm: networks built, torch's first-call costs paid
        started = time.monotonic()
        for job in jobs:
            one(job)
        return time.monotonic() - started


def through_batch(outdir: Path, jobs: list[BatchJob], workers: int) -> tuple[float, list[float]]:
    """(seconds from the workers' start to the last row, each job's seconds in its worker)."""
    outdir.mkdir()
    results = Results(outdir, fresh=True)
    started = time.monotonic()
    cluster.Batch(outdir, cluster.plan(workers, "cpu"), results, lambda: None).run(jobs)
    wall = time.monotonic() - started
    results.close()
    rows = [json.loads(line) for line in (outdir / "results.jsonl").read_text().splitlines()]
    assert all(row["status"] == "ok" for row in rows), rows
    return wall, [row["seconds"] for row in rows]


class Echo:
    def back(self, image: np.ndarray) -> np.ndarray:
        return image


def ray_round_trip(image: np.ndarray, calls: int) -> float:
    """Median seconds of an actor call that carries ``image`` there and back."""
    import ray

    actor = ray.remote(num_cpus=1)(Echo).remote()
    ray.get(actor.back.remote(image))
    times = []
    for _ in range(calls):
        started = time.monotonic()
        ray.get(actor.back.remote(image))
        times.append(time.monotonic() - started)
    ray.kill(actor)
    return statistics.median(times)


def eval_seconds(exemplar: np.ndarray, output: np.ndarray) -> float:
    """Median seconds of the ``esm eval`` figures a worker adds to each job (the daemon adds none)."""
    from esm_core import evaluate

    times = []
    for _ in range(5):
        started = time.monotonic()
        evaluate(exemplar, output)
        times.append(time.monotonic() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=16)
    parser.add_argument("--size", type=int, default=96, help="output side (default %(default)s)")
    parser.add_argument("--exemplar", type=int, default=128, help="exemplar side (default %(default)s)")
    parser.add_argument("--phases", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2,
                        help="rounds of daemon, 1 worker, 2 workers, interleaved; the best of each is shown "
                             "(a shared machine's load comes and goes)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="esmbench") as temp:
        folder = Path(temp)
        manifest = write_jobs(folder, args.jobs, args.size, args.exemplar, args.phases, args.iterations)
        jobs = [job for job in read_manifest(manifest) if isinstance(job, BatchJob)]
        (folder / "daemon").mkdir()
        # PASSIVE as the Ray workers have it (they inherit this process's): spinning OpenMP threads cost 2-3x on 2 cores
        process, endpoint = start_daemon(folder / "daemon", "passive")
        started = time.monotonic()
        cluster.connect(None)
        ray_start = time.monotonic() - started
        daemon_runs: list[float] = []
        runs: dict[int, list[tuple[float, list[float]]]] = {1: [], 2: []}
        try:
            for round_ in range(args.rounds):
                daemon_runs.append(through_daemon(endpoint, jobs))
                for workers in runs:
                    runs[workers].append(through_batch(folder / f"r{round_}w{workers}", jobs, workers))
        finally:
            process.terminate()
            process.wait(30)
        trip = ray_round_trip(load_image(folder / "grass.png"), 50)
        evaluation = eval_seconds(load_image(folder / "grass.png"), load_image(folder / "r0w1" / "job0.png"))
        cluster.shutdown()
    daemon_s = min(daemon_runs)
    n = len(jobs)
    print(f"best of {args.rounds} interleaved rounds; {n} texture jobs, {args.size}x{args.size} from {args.exemplar} px exemplars, "
          f"{args.phases} phases x {args.iterations} iterations, {os.cpu_count()} cores, CPU")
    print(f"{'run':<24} {'wall s':>7} {'jobs/s':>7} {'in worker s/job':>16} {'overhead s/job':>15}")
    print(f"{'daemon, one by one':<24} {daemon_s:7.1f} {n / daemon_s:7.2f} {'-':>16} {'-':>15}")
    for workers, measured in runs.items():
        wall, seconds = min(measured)
        inside = statistics.mean(seconds)
        # per job and worker, what the worker did not spend on the job: start-up, scheduling, transfer, writes
        overhead = wall * workers / n - inside
        print(f"{f'esm batch, {workers} worker(s)':<24} {wall:7.1f} {n / wall:7.2f} {inside:16.2f} {overhead:15.2f}")
    print(f"in worker = synthesis + esm eval figures ({evaluation:.2f} s/job here, in this process)")
    print(f"Ray: local instance start {ray_start:.1f} s (once per run); actor round trip with a "
          f"{args.exemplar} px image there and back {trip * 1000:.1f} ms (median of 50)")


if __name__ == "__main__":
    main()
