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
that also absorbs the load. The ratio is the median of the per-round ratios
of wall time; the same ratio of process CPU time is printed as well, since it
is less disturbed by other processes on a busy machine. The rates are over
all timed runs.

It then prices load-time overrides (written into the script text, which is
loaded again whenever the text changes): ``--load-time-runs`` runs each of
live overrides only, of a load-time override with every run's text distinct,
and with 10 runs per distinct text, printed as rates against the live rate.
Every run overrides ``Sat.SMA``; the load-time runs also set
``FM.GravityField.Earth.Degree`` to the script's own value, so all three do
the same physics; they run in interleaved rounds, the order rotated every
round. A distinct text per run is made by marking the cached
rendering stale before each run (the next run reloads it, as a new text
would be loaded, with the script's classification already known, as it is
for every run after a sweep's first).

Usage: ``.venv/bin/python benchmarks/worker_overhead.py [--runs 300] [--block 10]
[--load-time-runs 40]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from _common import LEO_BASIC, SMA_FIELD, bare_run, load_mission, median, print_figure, sma_values

from gmat_sweep import worker
from gmat_sweep.spec import RunSpec, RunStatus

BENCH = "worker_overhead"
TARGET = 0.90
LOAD_TIME_FIELD = "FM.GravityField.Earth.Degree"
LOAD_TIME_VALUE = 4  # the script's own value: the same physics as the live runs
RUNS_PER_TEXT = 10
WARM_UP_SMA = sma_values(1)[0]


@dataclass(frozen=True)
class Elapsed:
    """Wall and process-CPU seconds of one timed block."""

    wall: float
    cpu: float


def stopwatch(action: Callable[[], object]) -> Elapsed:
    """Time ``action()`` by the wall clock and by this process's CPU clock."""
    wall, cpu = time.perf_counter(), time.process_time()
    action()
    return Elapsed(time.perf_counter() - wall, time.process_time() - cpu)


def bare_block(values: list[float]) -> Elapsed:
    """Reload the mission, warm up, then time bare runs over ``values``."""
    mission = load_mission()
    bare_run(mission, WARM_UP_SMA)
    return stopwatch(lambda: [bare_run(mission, sma) for sma in values])


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


def run_one_block(values: list[float], out: Path, first_id: int) -> Elapsed:
    """Drop the worker's cached mission, warm up, then time ``run_one`` over ``values``."""
    worker._loaded = None  # the bare block's load left the cached handle stale
    specs = [spec_for(sma, out, first_id + i) for i, sma in enumerate(values)]
    check(worker.run_one(spec_for(WARM_UP_SMA, out, 0, name="warm-up")).status)
    statuses: list[RunStatus] = []
    elapsed = stopwatch(lambda: statuses.extend(worker.run_one(spec).status for spec in specs))
    for status in statuses:
        check(status)
    return elapsed


def check(status: RunStatus) -> None:
    """Stop the benchmark when a run failed: its timing would mean nothing."""
    if status is not RunStatus.OK:
        raise RuntimeError(f"run_one returned {status}; see the run's gmat.log")


def measure(runs: int, block: int, out: Path) -> list[tuple[Elapsed, Elapsed]]:
    """Alternate bare and run_one blocks (order swapped every round); (bare, run_one) per round."""
    rounds = []
    for index, first in enumerate(range(0, runs, block)):
        values = sma_values(min(block, runs - first), first + 1)
        if index % 2 == 0:
            bare = bare_block(values)
            one = run_one_block(values, out, first)
        else:
            one = run_one_block(values, out, first)
            bare = bare_block(values)
        rounds.append((bare, one))
    return rounds


LOAD_TIME_CASES: dict[str, int | None] = {
    "live": None,
    "load_time_distinct": 1,
    "load_time_shared": RUNS_PER_TEXT,
}
"""Case name -> runs per distinct script text (``None``: live overrides only)."""


def load_time_block(values: list[float], out: Path, runs_per_text: int | None) -> float:
    """Seconds of ``run_one`` over ``values``; a new script text every ``runs_per_text`` runs."""
    overrides = {} if runs_per_text is None else {LOAD_TIME_FIELD: LOAD_TIME_VALUE}
    specs = [
        RunSpec(
            script_path=LEO_BASIC,
            overrides={SMA_FIELD: sma, **overrides},
            output_dir=out / f"load-time-{runs_per_text}-{i:06d}",
            run_id=i,
            seed=None,
            run_options={},
        )
        for i, sma in enumerate(values)
    ]
    worker._loaded = None
    check(worker.run_one(spec_for(WARM_UP_SMA, out, 0, name="warm-up")).status)
    check(worker.run_one(specs[0]).status)  # warm-up: classifies and loads the first text
    started = time.perf_counter()
    for index, spec in enumerate(specs):
        if runs_per_text is not None and index % runs_per_text == 0 and worker._loaded:
            worker._loaded.key = "stale"  # the next run loads its text again, as a new text
        check(worker.run_one(spec).status)
    return time.perf_counter() - started


def measure_load_time(runs: int, out: Path) -> list[dict[str, float]]:
    """Rounds of 2 x RUNS_PER_TEXT runs per case, the case order rotated every round."""
    per_round = 2 * RUNS_PER_TEXT
    names = list(LOAD_TIME_CASES)
    rounds = []
    for index in range(max(1, runs // per_round)):
        values = sma_values(per_round, index * per_round + 1)
        order = names[index % len(names) :] + names[: index % len(names)]
        rounds.append({name: load_time_block(values, out, LOAD_TIME_CASES[name]) for name in order})
    return rounds


def print_ratio(label: str, ratios: list[float], target: str) -> None:
    """Print the median per-round ratio with its spread."""
    spread = f"median of rounds, per-round min {min(ratios):.2f}, max {max(ratios):.2f}"
    print_figure("RATIO", BENCH, label, median(ratios), f"{target}; {spread}", fmt=".2f")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300, help="timed runs of each (default 300)")
    parser.add_argument("--block", type=int, default=10, help="runs per block (default 10)")
    parser.add_argument(
        "--load-time-runs", type=int, default=40, help="timed runs of each case (default 40)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gmat-sweep-bench-") as out:
        rounds = measure(args.runs, args.block, Path(out))
        load_time = measure_load_time(args.load_time_runs, Path(out))
    how = f"runs/s over {args.runs} runs, {len(rounds)} rounds of <= {args.block}"
    for name, side in (("bare", 0), ("run_one", 1)):
        rate = args.runs / sum(r[side].wall for r in rounds)
        print_figure("RATE", BENCH, name, rate, how)
    print_ratio("run_one/bare", [b.wall / o.wall for b, o in rounds], f"target >= {TARGET:.2f}")
    cpu_ratios = [b.cpu / o.cpu for b, o in rounds]
    print_ratio("run_one/bare_cpu", cpu_ratios, "no target; process CPU time, less load-sensitive")
    timed = len(load_time) * 2 * RUNS_PER_TEXT
    for name, runs_per_text in LOAD_TIME_CASES.items():
        what = "live overrides only" if runs_per_text is None else f"{runs_per_text} runs per text"
        rate = timed / sum(r[name] for r in load_time)
        print_figure("RATE", BENCH, name, rate, f"run_one runs/s over {timed} runs, {what}")
    for name in ("load_time_distinct", "load_time_shared"):
        ratios = [r["live"] / r[name] for r in load_time]
        print_ratio(f"{name}/live", ratios, "no target; rate against the live rate")


if __name__ == "__main__":
    main()
