"""Scale: the driver's cost of a 100,000-run sweep, with synthetic outputs (no GMAT).

Measures, for a grid of 100,000 runs (``Sat.SMA`` x 1000 values, ``Sat.INC``
x 100 values):

a. building the run specs (``expand_grid_to_run_specs``) plus the sweep's
   Dask graph (a ``Sweep`` not yet run, its graph materialised as
   ``compute()`` does) — target < 10 s;
b. ``Manifest.load`` of a 100,000-entry manifest whose ok entries all point at
   one small real Parquet report (relative path) — target < 1 s;
c. building the lazy frame ``aggregate.report_frame(manifest, root)`` —
   target < 2 s;
d. the driver's peak RSS over all of the above (everything kept alive, as a
   driver holding specs, manifest and frame would) — target < 1 GiB.

With ``--runs 1000000`` (a day of a few hundred cores) the targets are
60 s, 10 s, 10 s and 4 GiB.

The manifest's entry lines are written in bulk from one ``ManifestEntry``
template (setup, not timed); loading goes through ``Manifest.load``. Load
and frame times are medians of ``--repeat``.

Usage: ``.venv/bin/python benchmarks/scale.py [--runs 100000] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from _common import LEO_BASIC, median, print_figure

from gmat_sweep.aggregate import report_frame
from gmat_sweep.grid import expand_grid_to_run_specs
from gmat_sweep.manifest import Manifest, ManifestEntry
from gmat_sweep.spec import RunSpec, RunStatus, to_builtins
from gmat_sweep.sweep import Sweep

BENCH = "scale"
TARGETS = {100_000: (10, 1, 2, 1), 1_000_000: (60, 10, 10, 4)}
"""(graph build s, manifest load s, lazy frame s, peak RSS GiB) by sweep size."""


def targets(runs: int) -> tuple[float, float, float, float]:
    """The targets of the largest listed size not above ``runs``."""
    return TARGETS[max([size for size in TARGETS if size <= runs], default=100_000)]


INC_VALUES = 100
REPORT_KEY = "report__RF"
SHARED_REPORT = Path("shared") / f"{REPORT_KEY}.parquet"
ROWS_PER_REPORT = 72
FLOAT_COLUMNS = (
    "Sat.ElapsedSecs",
    "Sat.EarthMJ2000Eq.X",
    "Sat.EarthMJ2000Eq.Y",
    "Sat.EarthMJ2000Eq.Z",
    "Sat.Earth.SMA",
    "Sat.Earth.ECC",
    "Sat.EarthMJ2000Eq.INC",
)


def timed[T](action: Callable[[], T]) -> tuple[float, T]:
    """Wall seconds of ``action()`` and its result."""
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def median_seconds[T](action: Callable[[], T], repeat: int) -> tuple[float, T]:
    """Median wall seconds of ``repeat`` (>= 1) calls of ``action``, and the last result.

    Each call starts from the same state, as a driver's one call would: the
    previous result is dropped and a full garbage collection runs first (not
    timed). The collector stays on while timing, so a call pays for the
    collections its own allocations trigger.
    """
    times: list[float] = []
    result: T | None = None
    for _ in range(max(1, repeat)):
        result = None
        gc.collect()
        seconds, result = timed(action)
        times.append(seconds)
    assert result is not None
    return median(times), result


def peak_rss_gib() -> float:
    """This process's peak resident memory so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def grid_of(runs: int) -> dict[str, list[float]]:
    """A full-factorial grid of ``runs`` points (a multiple of 100)."""
    return {
        "Sat.SMA": [7000.0 + 0.1 * i for i in range(runs // INC_VALUES)],
        "Sat.INC": [0.5 * i for i in range(INC_VALUES)],
    }


def write_report(root: Path) -> None:
    """One leo_basic-shaped report Parquet: ``time`` + the 8 ``RF`` columns, 72 rows."""
    step = np.timedelta64(77, "s")
    epochs = np.datetime64("2027-01-01T12:00:00", "ns") + np.arange(ROWS_PER_REPORT) * step
    values = np.linspace(0.0, 1.0, ROWS_PER_REPORT)
    columns: dict[str, Any] = {"time": epochs, "Sat.UTCGregorian": epochs}
    columns.update(dict.fromkeys(FLOAT_COLUMNS, values))
    target = root / SHARED_REPORT
    target.parent.mkdir(parents=True)
    pq.write_table(pa.table(columns), target)


def log_of(spec: RunSpec) -> str:
    """The run's GMAT log as a sweep records it: relative to the sweep root."""
    return f"run-{spec.run_id:06d}/gmat.log"


def write_manifest(root: Path, specs: Sequence[RunSpec]) -> Path:
    """Save a manifest header, then append one ok entry line per spec in bulk.

    Every entry names the one shared report (one small file keeps the setup
    cheap; only its schema is read) and its own log path, as a sweep records it.
    """
    path = root / "manifest.jsonl"
    Manifest(
        script_sha256="0" * 64,
        gmat_sweep_version="benchmark",
        gmat_run_version="benchmark",
        gmat_install_version="synthetic (no GMAT)",
        python_version="3.12",
        os_platform="benchmark",
        sweep_seed=None,
        parameter_spec={"_kind": "grid", "grid": grid_of(len(specs))},
        run_count=len(specs),
    ).save(path)
    now = datetime.now(UTC)
    template = ManifestEntry(
        run_id=0,
        overrides={},
        status=RunStatus.OK,
        output_paths={REPORT_KEY: SHARED_REPORT},
        started_at=now,
        ended_at=now,
        duration_s=0.05,
        stderr=None,
        log_path=None,
    )
    entry = {"kind": "entry", **to_builtins(template)}
    lines = [
        json.dumps({**entry, "run_id": s.run_id, "overrides": s.overrides, "log_path": log_of(s)})
        for s in specs
    ]
    with path.open("a", encoding="ascii") as handle:
        handle.write("\n".join(lines) + "\n")
    return path


def sweep_graph(specs: list[RunSpec], root: Path) -> dict[Any, Any]:
    """The graph a computation of the sweep of ``specs`` runs, as ``compute()`` builds it."""
    lazy = Sweep(
        runs=specs,
        backend=None,
        manifest_path=root / "manifest.jsonl",
        output_dir=root,
        script_path=LEO_BASIC,
        parameter_spec={"_kind": "grid", "grid": grid_of(len(specs))},
        progress=False,
    )
    return dict(lazy.__dask_graph__())


def build_specs_and_graph(runs: int, root: Path) -> tuple[list[RunSpec], dict[Any, Any]]:
    """Time (a); return the specs and the graph (kept alive for the RSS figure)."""
    spec_s, specs = timed(lambda: expand_grid_to_run_specs(grid_of(runs), LEO_BASIC, root))
    graph_s, nodes = timed(lambda: sweep_graph(specs, root))
    note = f"s; {len(specs)} specs {spec_s:.2f} s + a {len(nodes)}-task graph {graph_s:.2f} s"
    target = targets(runs)[0]
    print_figure("SCALE", BENCH, "graph_build_s", spec_s + graph_s, f"target < {target}; {note}")
    return specs, nodes


def load_manifest(path: Path, repeat: int) -> Manifest:
    """Time (b); return the loaded manifest."""
    seconds, manifest = median_seconds(lambda: Manifest.load(path), repeat)
    target = targets(len(manifest.entries))[1]
    note = f"target < {target}; {len(manifest.entries)} entries, median of {repeat}"
    print_figure("SCALE", BENCH, "manifest_load_s", seconds, note)
    return manifest


def build_frame(manifest: Manifest, root: Path, repeat: int) -> Any:
    """Time (c), then read one run back through ``.loc`` as a check of the frame."""
    seconds, frame = median_seconds(lambda: report_frame(manifest, root), repeat)
    target = targets(len(manifest.entries))[2]
    note = f"target < {target}; {frame.npartitions} partitions, median of {repeat}"
    print_figure("SCALE", BENCH, "report_frame_s", seconds, note)
    run_id = len(manifest.entries) // 2
    loc_s, part = timed(lambda: frame.loc[run_id].compute())
    if len(part) != ROWS_PER_REPORT:
        raise RuntimeError(f"frame.loc[{run_id}] has {len(part)} rows, expected {ROWS_PER_REPORT}")
    print_figure("INFO", BENCH, "loc_one_run_s", loc_s, f"no target; frame.loc[{run_id}].compute()")
    return frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000, help="runs, a multiple of 100")
    parser.add_argument("--repeat", type=int, default=3, help="repeats of (b) and (c)")
    args = parser.parse_args()
    import dask.dataframe  # noqa: F401  (imported once per driver: not a cost of scale)

    with tempfile.TemporaryDirectory(prefix="gmat-sweep-bench-") as scratch:
        root = Path(scratch)
        specs, nodes = build_specs_and_graph(args.runs, root)
        write_report(root)
        manifest = load_manifest(write_manifest(root, specs), args.repeat)
        frame = build_frame(manifest, root, args.repeat)
        alive = f"{len(specs)} specs, {len(nodes)} tasks, manifest, {frame.npartitions}-part frame"
        note = f"target < {targets(args.runs)[3]}; GiB, with {alive} alive"
        print_figure("SCALE", BENCH, "peak_rss_gib", peak_rss_gib(), note, ".2f")


if __name__ == "__main__":
    main()
