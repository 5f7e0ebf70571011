"""Throughput: runs/s of whole sweeps on every backend against the engine limit.

Runs N (default 1000) runs of ``tests/data/leo_basic.script``, a grid over
``Sat.SMA``, through :func:`gmat_sweep.sweep` (``progress=False``, outputs to a
temporary directory) on each backend, all in this one process:

* ``LocalPool`` — what ``sweep(backend=None)`` builds: every core, closed at
  the end;
* ``DaskPool()`` — an owned distributed ``LocalCluster``;
* ``LocalJoblibPool()`` — loky worker processes;
* ``RayPool()`` — a local Ray runtime started by the pool.

Each backend is measured over one pool's life: build it, warm it up with a
small sweep (a few runs per worker: worker processes, GMAT hosts and loaded
missions come up), sweep N runs, close it. Two ratios per backend:

* start-up included: (warm-up runs + N) / (build + warm-up sweep + N-run
  sweep + close) — the whole life of a user's
  ``with Pool() as pool: sweep(...)``;
* steady state: N / (N-run sweep) — a pool that is already running.

The *start-up cost* printed for each backend is build + warm-up sweep + close
minus what the warm-up runs cost in steady state: the fixed price of
starting that backend.

The *engine limit* is what GMAT alone can do here: one bare gmat-run loop
(load once; then override, run, parse) per core, each in its own process,
all timing together; their rates summed. It is measured before the first
backend and again after each one; a backend is compared with the mean of the
limits measured right before and right after it, so load from other
processes on the machine hits both sides of each ratio.

Targets: every backend >= 0.85 of the limit in steady state;
``LocalPool`` (the default backend) >= 0.93 and ``DaskPool`` >= 0.85 with
start-up included (issue 14). Also printed: the per-run overhead of the isolation mode
(``LocalPool(reuse_gmat_context=False)``: a fresh interpreter per run),
measured on a warm pool against the steady ``LocalPool`` figure.

Usage: ``.venv/bin/python benchmarks/throughput.py [--runs 1000]
[--limit-runs 500] [--isolated-runs 20] [--backends LocalPool,DaskPool,...]
[--repeat 1]``
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
    require_complete,
    sma_values,
)

from gmat_sweep import sweep
from gmat_sweep.backends.base import Pool
from gmat_sweep.backends.dask import DaskPool
from gmat_sweep.backends.joblib import LocalJoblibPool
from gmat_sweep.backends.local import LocalPool
from gmat_sweep.backends.ray import RayPool

BENCH = "throughput"
CORES = os.cpu_count() or 1
STEADY_TARGET = 0.85
WARMUP_RUNS_PER_WORKER = 4


@dataclass(frozen=True)
class Backend:
    """One pool class under test, with its start-up-included target (if any)."""

    name: str
    make: Callable[[], Pool]
    cold_target: float | None


BACKENDS = (
    Backend("LocalPool", LocalPool, 0.93),
    Backend("DaskPool", DaskPool, 0.85),
    Backend("LocalJoblibPool", LocalJoblibPool, None),
    Backend("RayPool", RayPool, None),
)


@dataclass
class Timing:
    """Wall seconds of one pool's life: build, warm-up sweep, N-run sweep, close."""

    runs: int
    warmup_runs: int
    build_s: float
    warmup_s: float
    steady_s: float
    close_s: float

    @property
    def lifetime_s(self) -> float:
        return self.build_s + self.warmup_s + self.steady_s + self.close_s

    @property
    def with_startup_rate(self) -> float:
        return (self.warmup_runs + self.runs) / self.lifetime_s

    @property
    def steady_rate(self) -> float:
        return self.runs / self.steady_s

    @property
    def startup_cost_s(self) -> float:
        return self.lifetime_s - (self.warmup_runs + self.runs) / self.steady_rate


def run_sweep(values: list[float], backend: Pool, out: Path) -> float:
    """Wall seconds of sweeping ``values`` into ``out``; raise unless every run is ok."""
    start = time.perf_counter()
    result = sweep(LEO_BASIC, {SMA_FIELD: values}, backend=backend, out=out, progress=False)
    seconds = time.perf_counter() - start
    require_complete(result, len(values))
    shutil.rmtree(out)
    return seconds


def time_backend(backend: Backend, runs: int, scratch: Path) -> Timing:
    """Build the pool, warm it up, sweep ``runs`` runs, close it; time each step."""
    warmup_runs = WARMUP_RUNS_PER_WORKER * CORES
    start = time.perf_counter()
    pool = backend.make()
    build_s = time.perf_counter() - start
    try:
        warmup_s = run_sweep(sma_values(warmup_runs), pool, scratch / f"{backend.name}-warm-up")
        steady_s = run_sweep(sma_values(runs, warmup_runs), pool, scratch / backend.name)
    finally:
        start = time.perf_counter()
        pool.close()
        close_s = time.perf_counter() - start
    return Timing(runs, warmup_runs, build_s, warmup_s, steady_s, close_s)


def time_isolated(runs: int, scratch: Path) -> float:
    """Wall seconds of ``runs`` runs on a warm ``LocalPool(reuse_gmat_context=False)``."""
    with LocalPool(reuse_gmat_context=False) as pool:
        run_sweep(sma_values(CORES), pool, scratch / "isolated-warm-up")  # engine cache, imports
        return run_sweep(sma_values(runs), pool, scratch / "isolated")


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
    """One pass: engine limits around every backend, each backend's timing, isolation."""

    limits: list[float] = field(default_factory=list)
    timings: dict[str, Timing] = field(default_factory=dict)
    isolated_per_run_s: float | None = None

    def limit_around(self, index: int) -> float:
        """Mean of the limits measured just before and just after backend ``index``."""
        return (self.limits[index] + self.limits[index + 1]) / 2


def measure_limit(repeat: Repeat, runs: int) -> None:
    """Append one engine-limit measurement (``runs`` split over every core)."""
    repeat.limits.append(engine_limit(CORES, max(1, runs // CORES)))
    print_figure("RATE", BENCH, f"limit_{len(repeat.limits) - 1}", repeat.limits[-1], "runs/s")


def one_repeat(args: argparse.Namespace, backends: list[Backend], scratch: Path) -> Repeat:
    """A limit, then each backend followed by a limit, then the isolation mode."""
    repeat = Repeat()
    measure_limit(repeat, args.limit_runs)
    for backend in backends:
        timing = time_backend(backend, args.runs, scratch)
        repeat.timings[backend.name] = timing
        print_figure("RATE", BENCH, f"{backend.name}_steady", timing.steady_rate, "runs/s")
        measure_limit(repeat, args.limit_runs)
    if args.isolated_runs:
        seconds = time_isolated(args.isolated_runs, scratch)
        repeat.isolated_per_run_s = CORES * seconds / args.isolated_runs
    return repeat


def report(args: argparse.Namespace, backends: list[Backend], repeats: list[Repeat]) -> None:
    """Print medians over repeats: each backend's rates, start-up cost and ratios."""
    print(
        f"--- {args.runs} runs of leo_basic per sweep on {CORES} cores, "
        f"median of {len(repeats)} repeat(s) ---"
    )
    limit = median([statistics.mean(r.limits) for r in repeats])
    note = f"runs/s; {CORES} concurrent bare loops of {args.limit_runs // CORES} runs, mean"
    print_figure("RATE", BENCH, "engine_limit", limit, note)
    for index, backend in enumerate(backends):
        name = backend.name
        timings = [r.timings[name] for r in repeats]
        with_startup = median_of(timings, "with_startup_rate")
        print_figure("RATE", BENCH, f"{name}_with_startup", with_startup, "runs/s")
        print_figure("RATE", BENCH, f"{name}_steady", median_of(timings, "steady_rate"), "runs/s")
        parts = ", ".join(
            f"{label} {median_of(timings, attr):.2f} s"
            for label, attr in (("build", "build_s"), ("warm-up", "warmup_s"), ("close", "close_s"))
        )
        note = f"s; {parts}, less the warm-up runs' steady-state time"
        print_figure(
            "TIME", BENCH, f"{name}_startup_cost", median_of(timings, "startup_cost_s"), note
        )
        target = "no target" if backend.cold_target is None else f"target >= {backend.cold_target}"
        ratio = median([r.timings[name].with_startup_rate / r.limit_around(index) for r in repeats])
        note = f"{target}; build + warm-up + sweep + close; limit = mean of the ones around it"
        print_figure("RATIO", BENCH, f"{name}_with_startup/limit", ratio, note, ".2f")
        ratio = median([r.timings[name].steady_rate / r.limit_around(index) for r in repeats])
        note = f"target >= {STEADY_TARGET}; pool already running"
        print_figure("RATIO", BENCH, f"{name}_steady/limit", ratio, note, ".2f")
    isolated = [r.isolated_per_run_s for r in repeats if r.isolated_per_run_s is not None]
    if isolated:
        report_isolation(args, repeats, median(isolated))


def median_of(timings: list[Timing], attr: str) -> float:
    """Median of one :class:`Timing` attribute over repeats."""
    return median([getattr(t, attr) for t in timings])


def report_isolation(args: argparse.Namespace, repeats: list[Repeat], isolated: float) -> None:
    """Per-run wall time on one worker, isolated vs reused context, and the difference."""
    note = f"s per run per worker; {args.isolated_runs} runs, a fresh interpreter each"
    print_figure("TIME", BENCH, "isolated_per_run", isolated, note)
    if not all("LocalPool" in r.timings for r in repeats):
        return
    reused = median([CORES / r.timings["LocalPool"].steady_rate for r in repeats])
    print_figure("TIME", BENCH, "reused_per_run", reused, "s per run per worker; LocalPool steady")
    note = "s per run; LocalPool(reuse_gmat_context=False) minus LocalPool(), both warm"
    print_figure("TIME", BENCH, "isolation_overhead_per_run", isolated - reused, note)


def main() -> None:
    names = [backend.name for backend in BACKENDS]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000, help="runs per sweep (default 1000)")
    parser.add_argument(
        "--limit-runs", type=int, default=500, help="runs per engine-limit measurement"
    )
    parser.add_argument(
        "--isolated-runs", type=int, default=10 * CORES, help="runs in isolation mode (0: skip)"
    )
    parser.add_argument(
        "--backends", default=",".join(names), help=f"comma-separated subset of {names}"
    )
    parser.add_argument("--repeat", type=int, default=1, help="repeats; medians reported")
    args = parser.parse_args()
    chosen = [name.strip() for name in args.backends.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(names))
    if unknown:
        parser.error(f"unknown backend(s) {unknown}; choose from {names}")
    backends = [backend for backend in BACKENDS if backend.name in chosen]
    with tempfile.TemporaryDirectory(prefix="gmat-sweep-bench-") as scratch:
        repeats = [one_repeat(args, backends, Path(scratch)) for _ in range(args.repeat)]
    report(args, backends, repeats)


if __name__ == "__main__":
    main()
