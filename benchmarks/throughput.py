"""Throughput: runs/s of whole sweeps against the engine limit of this machine.

Runs N (default 1000) runs of ``tests/data/leo_basic.script``, a grid over
``Sat.SMA``, through :func:`gmat_sweep.sweep` (``progress=False``, outputs to a
temporary directory) with

* the default backend (``backend=None``: a ``LocalPool`` on every core that
  ``sweep`` starts and closes) — timed including start-up, validation and
  shutdown;
* ``DaskPool()`` (an owned distributed ``LocalCluster``) — timed from before
  the pool is built until it is closed;
* ``DaskPool()`` in steady state — the pool is built before the timer starts
  (its workers still start their GMAT host processes inside the timer).

The *engine limit* is what GMAT alone can do here: one bare gmat-run loop
(load once; then override, run, parse) per core, each in its own process and
doing N/cores runs, all timing together; their rates summed. It is measured
right before and right after the sweeps, and the mean is the reference.
Targets (start-up included): default/limit >= 0.90, DaskPool/limit >= 0.85.
Also printed: the default backend's fixed cost, the wall time of a sweep of
one run per core (time to first result is not observable from ``sweep``).

Usage: ``.venv/bin/python benchmarks/throughput.py [--runs 1000] [--repeat 1]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import _common
from _common import ELAPSED, LEO_BASIC, READY, SMA_FIELD, median, print_figure, sma_values

from gmat_sweep import DaskPool, sweep
from gmat_sweep.backends.base import Pool

BENCH = "throughput"
CORES = os.cpu_count() or 1


@dataclass(frozen=True)
class Contender:
    """One way of running the sweep, with its target ratio to the engine limit."""

    name: str
    seconds: Callable[[int, Path], float]
    target: float | None
    note: str


def run_sweep(runs: int, backend: Pool | None, out: Path) -> None:
    """Sweep ``runs`` grid points into ``out``; raise if any run did not finish ok."""
    result = sweep(
        LEO_BASIC, {SMA_FIELD: sma_values(runs)}, backend=backend, out=out, progress=False
    )
    manifest = result.manifest
    if len(manifest.entries) != runs or manifest.find_failed():
        raise RuntimeError(
            f"sweep into {out} recorded {len(manifest.entries)} of {runs} runs, "
            f"failed: {manifest.find_failed()[:10]}"
        )


def default_seconds(runs: int, out: Path) -> float:
    """Wall seconds of ``sweep`` with the default backend, start-up included."""
    start = time.perf_counter()
    run_sweep(runs, None, out)
    return time.perf_counter() - start


def dask_seconds(runs: int, out: Path) -> float:
    """Wall seconds of building a ``DaskPool``, sweeping on it and closing it."""
    start = time.perf_counter()
    with DaskPool() as pool:
        run_sweep(runs, pool, out)
    return time.perf_counter() - start


def dask_steady_seconds(runs: int, out: Path) -> float:
    """Wall seconds of ``sweep`` on a ``DaskPool`` built before the timer starts."""
    with DaskPool() as pool:
        start = time.perf_counter()
        run_sweep(runs, pool, out)
        return time.perf_counter() - start


CONTENDERS = (
    Contender("default", default_seconds, 0.90, "start-up included"),
    Contender("DaskPool", dask_seconds, 0.85, "start-up included"),
    Contender("DaskPool-steady", dask_steady_seconds, None, "pool built before the timer"),
)


def engine_limit(processes: int, runs_each: int) -> float:
    """Summed runs/s of ``processes`` concurrent bare loops of ``runs_each`` runs."""
    command = [sys.executable, _common.__file__, "--runs", str(runs_each)]
    children = [
        subprocess.Popen(
            [*command, "--first", str(i * runs_each)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(processes)
    ]
    try:
        for child in children:
            read_marker(child, READY)
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        elapsed = [float(read_marker(child, ELAPSED)) for child in children]
    finally:
        for child in children:
            child.kill()
            child.wait()
    return sum(runs_each / seconds for seconds in elapsed)


def read_marker(child: subprocess.Popen[str], marker: str) -> str:
    """Read ``child``'s stdout up to the line starting with ``marker``; return the rest of it."""
    assert child.stdout is not None
    for line in child.stdout:
        if line.startswith(marker):
            return line[len(marker) :].strip()
    raise RuntimeError(f"engine-limit process {child.pid} exited before printing {marker}")


def one_repeat(runs: int, scratch: Path) -> tuple[float, float, dict[str, float]]:
    """Limit, default start-up, every contender, limit again; returns (limit, start-up, rates)."""
    runs_each = max(1, runs // CORES)
    before = engine_limit(CORES, runs_each)
    print_figure("RATE", BENCH, "limit_before", before, "runs/s")
    startup = default_seconds(CORES, scratch / "startup")
    shutil.rmtree(scratch / "startup")
    rates = {}
    for contender in CONTENDERS:
        out = scratch / contender.name
        rates[contender.name] = runs / contender.seconds(runs, out)
        shutil.rmtree(out)
        print_figure("RATE", BENCH, contender.name, rates[contender.name], "runs/s")
    after = engine_limit(CORES, runs_each)
    print_figure("RATE", BENCH, "limit_after", after, "runs/s")
    return (before + after) / 2, startup, rates


def report(
    runs: int, limits: list[float], startups: list[float], rates: list[dict[str, float]]
) -> None:
    """Print the medians over repeats: rates, start-up, and each contender's ratio."""
    repeats = f"median of {len(limits)} repeat(s)"
    runs_each = max(1, runs // CORES)
    print(f"--- {runs} runs of leo_basic on {CORES} cores, {repeats} ---")
    limit = median(limits)
    note = f"runs/s; {CORES} concurrent bare loops of {runs_each} runs, mean of before/after"
    print_figure("RATE", BENCH, "engine_limit", limit, note)
    for contender in CONTENDERS:
        rate = median([r[contender.name] for r in rates])
        print_figure("RATE", BENCH, contender.name, rate, f"runs/s; {contender.note}")
    note = f"s; sweep() of {CORES} runs, one per worker: probe, host start-up, runs, close"
    print_figure("TIME", BENCH, "default_startup", median(startups), note)
    for contender in CONTENDERS:
        ratios = [r[contender.name] / lim for r, lim in zip(rates, limits, strict=True)]
        target = "no target" if contender.target is None else f"target >= {contender.target:.2f}"
        label = f"{contender.name}/limit"
        print_figure("RATIO", BENCH, label, median(ratios), f"{target}; {contender.note}", ".2f")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000, help="runs per sweep (default 1000)")
    parser.add_argument("--repeat", type=int, default=1, help="repeats; medians reported")
    args = parser.parse_args()
    limits, startups, rates = [], [], []
    with tempfile.TemporaryDirectory(prefix="gmat-sweep-bench-") as scratch:
        for _ in range(args.repeat):
            limit, startup, repeat_rates = one_repeat(args.runs, Path(scratch))
            limits.append(limit)
            startups.append(startup)
            rates.append(repeat_rates)
    report(args.runs, limits, startups, rates)


if __name__ == "__main__":
    main()
