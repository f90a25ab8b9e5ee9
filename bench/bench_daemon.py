"""The daemon's costs and gains, side by side in one run:

1. ping round trip, idle, while a job runs (another client's) and while --load-clients clients
   (20) each run --load-jobs jobs (5) one after another, with how long each client took;
2. a job through the daemon against the same job in-process on an already warm Engine
   (what the daemon adds: transfer, queueing, threads) -- interleaved, medians;
3. the warm-cache speed-up: a job on an exemplar the daemon has seen (networks and style
   features cached) against one on a new exemplar; and, for scale, a fresh in-process
   Engine per job (what `esm synth --no-daemon` pays every time, minus the torch import).

It starts its own daemon (foreground, free loopback port, private runtime folders). This
process runs torch with OMP_WAIT_POLICY=PASSIVE so that its idle OpenMP threads do not spin on
the cores the daemon computes on (on 2 cores that alone doubled the daemon's job times); the
daemon gets the policy given by --daemon-omp-wait. On a shared machine absolute times are
inflated: read the ratios and medians.

    .venv/bin/python bench/bench_daemon.py
    .venv/bin/python bench/bench_daemon.py --size 128 --iterations 10 --repeats 7
    .venv/bin/python bench/bench_daemon.py --ping-only     # part 1 only
"""
from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

os.environ["OMP_WAIT_POLICY"] = "PASSIVE"  # before torch is imported, see above

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from esm_client.autostart import wait_until_answering  # noqa: E402
from esm_client.client import Client, JobCancelled  # noqa: E402
from esm_client.protocol import RawImage  # noqa: E402
from esm_client.runtime import RUNTIME_DIR_ENV  # noqa: E402
from esm_contract.jobs import parse_job  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def brick() -> np.ndarray:
    return np.asarray(Image.open(ROOT / "esm_core/data/brick.png").convert("L"))[..., None].copy()


def raw(array: np.ndarray) -> RawImage:
    return RawImage(array.shape[1], array.shape[0], array.shape[2], array.tobytes())


def percentiles(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    pick = lambda q: ms[min(len(ms) - 1, int(q * len(ms)))]  # noqa: E731
    return f"median {statistics.median(ms):7.3f} ms   p90 {pick(0.9):7.3f} ms   p99 {pick(0.99):7.3f} ms   (n={len(ms)})"


def timed(action: Callable[[], Any]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def ping_under_load(endpoint: str, pinger: Client, params: dict[str, Any], exemplar: RawImage, clients: int,
                    jobs: int) -> tuple[list[float], list[float], int]:
    """Pings while ``clients`` threads, each with its own connection, run ``jobs`` jobs one after
    another. Returns the ping times, each client's total time and the jobs that failed."""
    totals: list[float] = []
    failed = [0]
    started = threading.Barrier(clients + 1)

    def one_client() -> None:
        with Client(endpoint, timeout_s=600) as client:
            started.wait()
            begin = time.perf_counter()
            for _ in range(jobs):
                try:
                    client.run("texture", params, {"exemplar": exemplar})
                except Exception:  # counted and reported: the bench goes on
                    failed[0] += 1
            totals.append(time.perf_counter() - begin)

    threads = [threading.Thread(target=one_client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    started.wait()
    pings = []
    while any(thread.is_alive() for thread in threads):
        pings.append(timed(pinger.ping))
        time.sleep(0.005)
    for thread in threads:
        thread.join()
    return pings, totals, failed[0]


def start_daemon(home: Path, omp_wait: str) -> tuple[subprocess.Popen, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        endpoint = f"tcp://127.0.0.1:{sock.getsockname()[1]}"
    (home / "run").mkdir(mode=0o700)
    os.environ[RUNTIME_DIR_ENV] = str(home / "run")  # the daemon's secret goes there; this process's clients read it
    env = {**os.environ, "XDG_STATE_HOME": str(home / "state"), "XDG_CONFIG_HOME": str(home / "config")}
    env.pop("OMP_WAIT_POLICY")
    if omp_wait != "default":
        env["OMP_WAIT_POLICY"] = omp_wait.upper()
    log = open(home / "daemon.log", "wb+")
    process = subprocess.Popen([sys.executable, "-m", "esm_cli.main", "daemon", "start", "--foreground",
                                "--endpoint", endpoint, "--device", "cpu"],
                               env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    wait_until_answering(endpoint, process, 300, log)
    return process, endpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64, help="output side (default %(default)s)")
    parser.add_argument("--exemplar", type=int, default=256, help="exemplar side, a crop of brick.png (default %(default)s)")
    parser.add_argument("--phases", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5, help="runs per variant (default %(default)s)")
    parser.add_argument("--pings", type=int, default=300)
    parser.add_argument("--load-clients", type=int, default=20, help="clients of the load test (default %(default)s)")
    parser.add_argument("--load-jobs", type=int, default=5, help="jobs per load client (default %(default)s)")
    parser.add_argument("--ping-only", action="store_true", help="measure the ping round trips only (part 1)")
    parser.add_argument("--daemon-omp-wait", choices=("default", "passive", "active"), default="default",
                        help="OMP_WAIT_POLICY of the daemon (default: none set, so the OpenMP runtime's own: "
                             "libgomp spins for about 3 ms, then sleeps)")
    args = parser.parse_args()

    import torch

    from esm_core import Engine

    full = brick()
    exemplar = np.ascontiguousarray(full[:args.exemplar, :args.exemplar])
    params = {"width": args.size, "height": args.size, "phases": args.phases, "iterations": args.iterations}
    print(f"# bench_daemon: {platform.node()}, {os.cpu_count()} CPUs, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), device cpu, daemon OMP_WAIT_POLICY {args.daemon_omp_wait}")
    print(f"# job: texture {args.size}x{args.size} from a {args.exemplar}x{args.exemplar} grey exemplar, "
          f"{args.phases} phases x {args.iterations} iterations; {args.repeats} repeats per variant")

    with tempfile.TemporaryDirectory(prefix="esm-bench-") as home:
        process, endpoint = start_daemon(Path(home), args.daemon_omp_wait)
        try:
            with Client(endpoint, timeout_s=600) as client, Client(endpoint, timeout_s=60) as pinger:
                for _ in range(20):  # connection set-up, first-call costs
                    pinger.ping()
                idle = [timed(pinger.ping) for _ in range(args.pings)]
                job = client.submit("texture", {**params, "iterations": 10_000}, {"exemplar": raw(exemplar)})
                job.poll(timeout_ms=600_000)  # running: its first loss evaluation is done
                busy = []
                for _ in range(args.pings):
                    busy.append(timed(pinger.ping))
                    job.poll()  # keep the job's heartbeat going, as a plug-in would
                job.cancel()
                try:
                    job.wait()
                except JobCancelled:
                    pass
                print(f"\nping round trip, idle:          {percentiles(idle)}")
                print(f"ping round trip, during a job:  {percentiles(busy)}")
                loaded, totals, failed = ping_under_load(endpoint, pinger, params, raw(exemplar),
                                                         args.load_clients, args.load_jobs)
                print(f"ping round trip, {args.load_clients} clients x {args.load_jobs} jobs: {percentiles(loaded)}")
                print(f"  clients' total times: min {min(totals):.1f} s, median {statistics.median(totals):.1f} s, "
                      f"max {max(totals):.1f} s; {failed} of {args.load_clients * args.load_jobs} jobs failed")
                if args.ping_only:
                    return

                # 2. daemon vs in-process, both warm, interleaved
                engine = Engine("cpu")
                job = parse_job("texture", params, {"exemplar": exemplar})
                in_process = lambda: engine.run(job)  # noqa: E731
                via_daemon = lambda: client.run("texture", params, {"exemplar": raw(exemplar)})  # noqa: E731
                in_process(), via_daemon()  # warm both caches
                local, remote = [], []
                for _ in range(args.repeats):
                    local.append(timed(in_process))
                    remote.append(timed(via_daemon))
                lm, rm = statistics.median(local), statistics.median(remote)
                print(f"\njob in-process (warm Engine):   median {lm * 1000:8.1f} ms")
                print(f"job via daemon (warm):          median {rm * 1000:8.1f} ms")
                print(f"daemon overhead:                {(rm - lm) * 1000:+8.1f} ms per job ({rm / lm:.3f}x)")

                # 3. warm cache vs new exemplars (each cold run a crop never seen before)
                cold, warm, fresh = [], [], []
                for repeat in range(args.repeats):
                    new = np.ascontiguousarray(np.roll(full, 7 * repeat + 1, axis=1)[:args.exemplar, :args.exemplar])
                    cold.append(timed(lambda: client.run("texture", params, {"exemplar": raw(new)})))
                    warm.append(timed(via_daemon))
                    fresh.append(timed(lambda: Engine("cpu").run(job)))
                cm, wm, fm = statistics.median(cold), statistics.median(warm), statistics.median(fresh)
                print(f"\ndaemon, new exemplar (cold features):   median {cm * 1000:8.1f} ms")
                print(f"daemon, repeated exemplar (warm cache): median {wm * 1000:8.1f} ms")
                print(f"in-process, fresh Engine per job:       median {fm * 1000:8.1f} ms")
                print(f"warm-cache speed-up: {cm / wm:.2f}x against a new exemplar, {fm / wm:.2f}x against a fresh Engine")
                info = client.info()["caches"]
                print("caches: " + ", ".join(f"{k} {v['entries']} entries {v['bytes'] / 2**20:.1f} MiB "
                                             f"{v['hits']} hits {v['misses']} misses" for k, v in info.items()))
        finally:
            if process.poll() is None:
                process.terminate()
            process.wait(60)


if __name__ == "__main__":
    main()
