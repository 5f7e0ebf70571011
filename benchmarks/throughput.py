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
before the first sweep and again after every sweep; each sweep is compared
with the mean of the limits measured right before and right after it, so
load from other processes on the machine hits both sides of each ratio.
Targets (start-up included): default/limit >= 0.90, DaskPool/limit >= 0.85.
Also printed: the default backend's fixed cost, the wall time of a sweep of
one run per core (time to first result is not observable from ``sweep``).

Usage: ``.venv/bin/python benchmarks/throughput.py [--runs 1000] [--repeat 1]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from _common import (
    ELAPSED,
    ENGINE_LIMIT_SCRIPT,
    LEO_BASIC,
    READY,
    SMA_FIELD,
    median,
    print_figure,
    sma_values,
)

from gmat_sweep import sweep
from gmat_sweep.backends.base import Pool
from gmat_sweep.backends.dask import DaskPool

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
    command = [sys.executable, str(ENGINE_LIMIT_SCRIPT), "--runs", str(runs_each)]
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


@dataclass
class Repeat:
    """One pass: engine limits around every contender, the start-up figure, the rates."""

    limits: list[float] = field(default_factory=list)
    startup_s: float = 0.0
    rates: dict[str, float] = field(default_factory=dict)

    def ratio(self, index: int) -> float:
        """Contender ``index``'s rate over the mean of the limits taken just before and after."""
        name = CONTENDERS[index].name
        return self.rates[name] / ((self.limits[index] + self.limits[index + 1]) / 2)


def measure_limit(repeat: Repeat, runs: int) -> None:
    """Append one engine-limit measurement (``runs`` split over every core) to ``repeat``."""
    repeat.limits.append(engine_limit(CORES, max(1, runs // CORES)))
    print_figure("RATE", BENCH, f"limit_{len(repeat.limits) - 1}", repeat.limits[-1], "runs/s")


def one_repeat(runs: int, scratch: Path) -> Repeat:
    """Limit, default start-up, then each contender followed by a limit."""
    repeat = Repeat()
    measure_limit(repeat, runs)
    repeat.startup_s = default_seconds(CORES, scratch / "startup")
    shutil.rmtree(scratch / "startup")
    for contender in CONTENDERS:
        out = scratch / contender.name
        repeat.rates[contender.name] = runs / contender.seconds(runs, out)
        shutil.rmtree(out)
        print_figure("RATE", BENCH, contender.name, repeat.rates[contender.name], "runs/s")
        measure_limit(repeat, runs)
    return repeat


def report(runs: int, repeats: list[Repeat]) -> None:
    """Print the medians over repeats: rates, start-up, and each contender's ratio."""
    print(f"--- {runs} runs of leo_basic on {CORES} cores, median of {len(repeats)} repeat(s) ---")
    limit = median([statistics.mean(r.limits) for r in repeats])
    note = f"runs/s; {CORES} concurrent bare loops of {max(1, runs // CORES)} runs, mean of all"
    print_figure("RATE", BENCH, "engine_limit", limit, note)
    for contender in CONTENDERS:
        rate = median([r.rates[contender.name] for r in repeats])
        print_figure("RATE", BENCH, contender.name, rate, f"runs/s; {contender.note}")
    note = f"s; sweep() of {CORES} runs, one per worker: probe, host start-up, runs, close"
    print_figure("TIME", BENCH, "default_startup", median([r.startup_s for r in repeats]), note)
    for index, contender in enumerate(CONTENDERS):
        ratio = median([r.ratio(index) for r in repeats])
        target = "no target" if contender.target is None else f"target >= {contender.target:.2f}"
        note = f"{target}; {contender.note}; limit = mean of the ones just before and after"
        print_figure("RATIO", BENCH, f"{contender.name}/limit", ratio, note, ".2f")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000, help="runs per sweep (default 1000)")
    parser.add_argument("--repeat", type=int, default=1, help="repeats; medians reported")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gmat-sweep-bench-") as scratch:
        repeats = [one_repeat(args.runs, Path(scratch)) for _ in range(args.repeat)]
    report(args.runs, repeats)


if __name__ == "__main__":
    main()
