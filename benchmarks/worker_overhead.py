"""Worker overhead: ``gmat_sweep.worker.run_one`` against a bare gmat-run loop, in one process.

Measures what gmat_sweep's worker (cached mission restored before every run,
a private scratch directory, Parquet outputs, the kept GMAT log) costs on top
of gmat-run alone (override ``Sat.SMA``, run, parse the ``RF`` report) on
``tests/data/leo_basic.script``, with the same overrides for both.
Target: run_one's rate >= 0.90 x the bare rate.

Both share this process's single GMAT context, so they run in alternating
blocks, the order swapped every round so machine noise hits both. Before each
``run_one`` block the worker's cached mission is dropped and before each bare
block the mission is reloaded; every block starts with one untimed warm-up run
that also absorbs the load. The ratio is the median of the per-round ratios;
the rates are over all timed runs.

Usage: ``.venv/bin/python benchmarks/worker_overhead.py [--runs 300] [--block 25]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from _common import LEO_BASIC, SMA_FIELD, bare_run, load_mission, median, print_figure, sma_values

from gmat_sweep import worker
from gmat_sweep.spec import RunSpec, RunStatus

BENCH = "worker_overhead"
TARGET = 0.90
WARM_UP_SMA = sma_values(1)[0]


@dataclass
class Timings:
    """Timed seconds per block of one contender."""

    blocks: list[float] = field(default_factory=list)
    runs: int = 0

    def add(self, seconds: float, runs: int) -> None:
        self.blocks.append(seconds)
        self.runs += runs

    @property
    def rate(self) -> float:
        """Runs per second over every timed run."""
        return self.runs / sum(self.blocks)


def bare_block(values: list[float]) -> float:
    """Reload the mission, warm up, then time bare runs over ``values``."""
    mission = load_mission()
    bare_run(mission, WARM_UP_SMA)
    start = time.perf_counter()
    for sma in values:
        bare_run(mission, sma)
    return time.perf_counter() - start


def spec_for(sma: float, out: Path, run_id: int, name: str | None = None) -> RunSpec:
    """The run_one spec of one run writing under ``out``."""
    return RunSpec(
        script_path=LEO_BASIC,
        overrides={SMA_FIELD: sma},
        output_dir=out / (name or f"run-{run_id:06d}"),
        run_id=run_id,
        seed=None,
        run_options={},
    )


def run_one_block(values: list[float], out: Path, first_id: int) -> float:
    """Drop the worker's cached mission, warm up, then time ``run_one`` over ``values``."""
    worker._loaded = None  # the bare block's load left the cached handle stale
    specs = [spec_for(sma, out, first_id + i) for i, sma in enumerate(values)]
    check(worker.run_one(spec_for(WARM_UP_SMA, out, 0, name="warm-up")).status)
    start = time.perf_counter()
    statuses = [worker.run_one(spec).status for spec in specs]
    elapsed = time.perf_counter() - start
    for status in statuses:
        check(status)
    return elapsed


def check(status: RunStatus) -> None:
    """Stop the benchmark when a run failed: its timing would mean nothing."""
    if status is not RunStatus.OK:
        raise RuntimeError(f"run_one returned {status}; see the run's gmat.log")


def measure(runs: int, block: int, out: Path) -> tuple[Timings, Timings, list[float]]:
    """Alternate bare and run_one blocks; return both timings and the per-round ratios."""
    bare, one = Timings(), Timings()
    ratios = []
    for round_index, first in enumerate(range(0, runs, block)):
        values = sma_values(min(block, runs - first), first + 1)
        if round_index % 2 == 0:
            bare_s = bare_block(values)
            one_s = run_one_block(values, out, first)
        else:
            one_s = run_one_block(values, out, first)
            bare_s = bare_block(values)
        bare.add(bare_s, len(values))
        one.add(one_s, len(values))
        ratios.append(bare_s / one_s)
    return bare, one, ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300, help="timed runs of each (default 300)")
    parser.add_argument("--block", type=int, default=25, help="runs per block (default 25)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gmat-sweep-bench-") as out:
        bare, one, ratios = measure(args.runs, args.block, Path(out))
    rounds = f"{len(ratios)} rounds of <= {args.block} runs each"
    print_figure("RATE", BENCH, "bare", bare.rate, f"runs/s over {bare.runs} runs, {rounds}")
    print_figure("RATE", BENCH, "run_one", one.rate, f"runs/s over {one.runs} runs, {rounds}")
    spread = f"per-round min {min(ratios):.2f}, max {max(ratios):.2f}"
    note = f"target >= {TARGET:.2f}; median of rounds, {spread}"
    print_figure("RATIO", BENCH, "run_one/bare", median(ratios), note, fmt=".2f")


if __name__ == "__main__":
    main()
