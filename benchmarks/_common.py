"""Shared by the benchmarks: the reference mission, the bare gmat-run loop, and reporting.

The *bare loop* is what GMAT alone can do, with no gmat_sweep in the way: load
the mission once, then for every run override ``Sat.SMA``, run, and parse the
``RF`` report into pandas.

Run as a script, this module is one engine-limit process for
``throughput.py``: it loads the mission, makes one untimed warm-up run, prints
``READY``, waits for a line on stdin (so that all such processes start timing
together), times its bare runs and prints ``ELAPSED <seconds>``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
ENGINE_LIMIT_SCRIPT = Path(__file__).resolve()
"""Run this module as a script to get one engine-limit process (see the module docstring)."""
LEO_BASIC = REPO_ROOT / "tests" / "data" / "leo_basic.script"
SMA_FIELD = "Sat.SMA"
REPORT = "RF"
READY = "READY"
ELAPSED = "ELAPSED"


def sma_values(count: int, first: int = 0) -> list[float]:
    """``Sat.SMA`` of runs ``first`` .. ``first + count - 1``: 6800 km plus 0.1 km per run."""
    return [6800.0 + 0.1 * i for i in range(first, first + count)]


def load_mission(script: Path = LEO_BASIC) -> Any:
    """Load ``script`` with gmat-run on gmat_sweep's engine (re-points this process's GMAT)."""
    from gmat_run import Mission

    from gmat_sweep.engine import ensure_engine

    return Mission.load(script, gmat_root=ensure_engine().root)


def bare_run(mission: Any, sma: float) -> int:
    """One bare run: override, run, parse the report; returns its row count."""
    mission[SMA_FIELD] = sma
    results = mission.run()  # kept alive until parsed: the lazy parse reads its temp dir
    return len(results.reports[REPORT])


def time_loop(run: Callable[[float], object], values: Sequence[float]) -> float:
    """Wall seconds taken by ``run(value)`` for every value, one after another."""
    start = time.perf_counter()
    for value in values:
        run(value)
    return time.perf_counter() - start


def require_complete(result: Any, runs: int) -> None:
    """Raise unless the finished sweep ``result`` recorded ``runs`` runs, none failed."""
    manifest = result.manifest
    if len(manifest.entries) != runs or manifest.find_failed():
        raise RuntimeError(
            f"sweep into {result.output_dir} recorded {len(manifest.entries)} of {runs} runs, "
            f"failed: {manifest.find_failed()[:10]}"
        )


def median(values: Sequence[float]) -> float:
    """Median of ``values``."""
    return statistics.median(values)


def print_figure(
    kind: str, bench: str, label: str, value: float, note: str, fmt: str = ".3g"
) -> None:
    """Print one result line, e.g. ``RATIO bench a/b = 0.93 (target >= 0.90)``."""
    print(f"{kind} {bench} {label} = {value:{fmt}} ({note})", flush=True)


def _serve_timed_runs(count: int, first: int) -> None:
    mission = load_mission()
    bare_run(mission, sma_values(1, first)[0])  # warm-up: first run in a process is slower
    print(READY, flush=True)
    sys.stdin.readline()
    elapsed = time_loop(lambda sma: bare_run(mission, sma), sma_values(count, first))
    print(f"{ELAPSED} {elapsed!r}", flush=True)


def _main() -> None:
    parser = argparse.ArgumentParser(description="One timed bare gmat-run loop (engine limit).")
    parser.add_argument("--runs", type=int, required=True, help="timed runs")
    parser.add_argument("--first", type=int, default=0, help="index of the first Sat.SMA value")
    args = parser.parse_args()
    _serve_timed_runs(args.runs, args.first)


if __name__ == "__main__":
    _main()
