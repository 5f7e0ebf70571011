"""Cluster: runs/s of the same sweep on a local Dask cluster and on Slurm batch-job workers.

Runs N (default 500) runs of ``tests/data/leo_basic.script``, a grid over
``Sat.SMA``, through :func:`gmat_sweep.sweep` on

* ``DaskPool(n_workers=2)``: a distributed ``LocalCluster`` of 2 one-thread
  worker processes;
* ``jobqueue_pool("slurm", jobs=2, cores=1, processes=1, ...)``: 2 Slurm batch
  jobs, one one-thread Dask worker each, on this machine's single-node Slurm.

Each pool is built and its 2 workers have joined before the timer starts; the
timed sweep includes the workers' GMAT host start-up. Pool start-up is printed
separately. With ``--repeat K`` the two alternate K times and the medians are
compared, so load from other processes hits both sides. Target:
slurm/local >= 0.85 (batch-job workers cost no more per run than local ones).

Needs a running Slurm with partition ``debug``; start one (as root) with
``bash scripts/slurm-single-node.sh``.

Usage: ``.venv/bin/python benchmarks/cluster.py [--runs 500] [--repeat 1]``
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _common import (
    LEO_BASIC,
    REPO_ROOT,
    SMA_FIELD,
    median,
    print_figure,
    require_complete,
    sma_values,
)

from gmat_sweep.api import sweep
from gmat_sweep.backends.dask import DaskPool
from gmat_sweep.backends.jobqueue import jobqueue_pool

BENCH = "cluster"
WORKERS = 2
TARGET = 0.85


def local_pool() -> DaskPool:
    """Two local worker processes."""
    return DaskPool(n_workers=WORKERS)


def slurm_pool(log_dir: Path) -> DaskPool:
    """Two Slurm jobs of one single-thread worker each."""
    return jobqueue_pool(
        "slurm",
        jobs=WORKERS,
        cores=1,
        processes=1,
        memory="1GB",
        queue="debug",
        interface="lo",
        walltime="00:30:00",
        python=sys.executable,
        job_name="gmat-sweep-bench",
        log_directory=str(log_dir),
        scheduler_options={"dashboard_address": ":0"},
    )


def timed_sweep(make_pool: Callable[[], DaskPool], runs: int, out: Path) -> tuple[float, float]:
    """(start-up seconds, sweep seconds) of ``runs`` runs on a fresh pool."""
    started = time.perf_counter()
    with make_pool() as pool:
        pool.client.wait_for_workers(WORKERS, timeout=300)
        ready = time.perf_counter()
        result = sweep(
            LEO_BASIC, {SMA_FIELD: sma_values(runs)}, backend=pool, out=out, progress=False
        )
        elapsed = time.perf_counter() - ready
    require_complete(result, runs)
    return ready - started, elapsed


def slurm_is_up() -> bool:
    """Whether a Slurm controller answers on this machine."""
    if shutil.which("scontrol") is None:
        return False
    ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, check=False)
    return "UP" in ping.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500, help="runs per sweep (default 500)")
    parser.add_argument("--repeat", type=int, default=1, help="alternations of local and slurm")
    args = parser.parse_args()
    if not slurm_is_up():
        script = REPO_ROOT / "scripts" / "slurm-single-node.sh"
        print(f"no Slurm controller answers; start one as root with: bash {script}")
        return 2
    local: list[float] = []
    slurm: list[float] = []
    with tempfile.TemporaryDirectory(prefix="gmat-sweep-bench-cluster-") as tmp:
        root = Path(tmp)
        for i in range(args.repeat):
            for name, make, times in (
                ("local", local_pool, local),
                ("slurm", lambda: slurm_pool(root / "logs"), slurm),
            ):
                startup, elapsed = timed_sweep(make, args.runs, root / f"{name}-{i}")
                times.append(elapsed)
                print(f"{name}: pool ready in {startup:.1f} s, {args.runs} runs in {elapsed:.2f} s")
    local_rate = args.runs / median(local)
    slurm_rate = args.runs / median(slurm)
    print_figure("RATE", BENCH, "local", local_rate, f"runs/s, {WORKERS} LocalCluster workers")
    print_figure("RATE", BENCH, "slurm", slurm_rate, f"runs/s, {WORKERS} Slurm job workers")
    print_figure(
        "RATIO", BENCH, "slurm/local", slurm_rate / local_rate, f"target >= {TARGET}", ".2f"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
