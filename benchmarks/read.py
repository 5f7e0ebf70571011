"""Read: aggregating a sweep's outputs against a bare pyarrow read of the same files.

Builds the outputs of a real 1,000-run sweep of ``tests/data/leo_basic.script``
(``Sat.SMA`` varied, real GMAT through ``gmat_sweep.sweep``), then a
10,000-run sweep made of those runs' files copied ten times under a synthetic
manifest written with the :class:`~gmat_sweep.manifest.Manifest` API. Both are
kept in ``--cache DIR`` so a rerun skips the GMAT runs. Measured side by side
in one process, each figure the median of ``--repeat`` interleaved rounds:

a. ``lazy_multiindex`` (what ``Sweep.to_pandas()`` calls) against a bare
   ``pyarrow.dataset.dataset(files).to_table().to_pandas()``, at 1k and 10k
   runs — target <= 1.3;
b. ``report_frame(...).compute()`` (``Sweep.to_dataframe().compute()``)
   against the same bare read, at 1k and 10k runs — target <= 1.5;
c. opening the 10k-run sweep: ``Manifest.load`` plus building the lazy
   frame — target < 0.3 s;
d. the files ``frame.loc[one run]`` hands to its scan (its partition's files),
   at 10k runs;
e. ``final_frame`` (the last row of every run) against the bare read, at 10k
   runs — no target.

The files are read once before timing, so every read finds them in the page
cache. Usage: ``.venv/bin/python benchmarks/read.py --cache /tmp/read-bench``
(``--small``: 100 runs and 1,000 copies, a quick check).
"""

from __future__ import annotations

import argparse
import gc
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
from _common import LEO_BASIC, REPORT, SMA_FIELD, median, print_figure, require_complete, sma_values

import gmat_sweep
from gmat_sweep import aggregate
from gmat_sweep.aggregate import final_frame, lazy_multiindex, report_frame
from gmat_sweep.manifest import Manifest

BENCH = "read"
MANIFEST = "manifest.jsonl"
OUTPUT_KEY = f"report__{REPORT}"
COPIES = 10


def real_sweep(root: Path, runs: int) -> Manifest:
    """The manifest of a complete ``runs``-run sweep of leo_basic at ``root``; run it if needed."""
    if (root / MANIFEST).exists():
        manifest = Manifest.load(root / MANIFEST)
        if len(manifest.entries) == runs and not manifest.find_failed():
            return manifest
    print(f"INFO {BENCH} building {runs} real GMAT runs into {root} ...", flush=True)
    started = time.perf_counter()
    result = gmat_sweep.sweep(
        LEO_BASIC, {SMA_FIELD: sma_values(runs)}, out=root, progress=False, overwrite=True
    )
    require_complete(result, runs)
    print(f"INFO {BENCH} built in {time.perf_counter() - started:.0f} s", flush=True)
    return result.manifest


def replicated_sweep(source_root: Path, source: Manifest, root: Path) -> Manifest:
    """``COPIES`` times the runs of ``source``: files copied, one synthetic manifest."""
    runs = len(source.entries) * COPIES
    if (root / MANIFEST).exists():
        manifest = Manifest.load(root / MANIFEST)
        if len(manifest.entries) == runs:
            return manifest
        shutil.rmtree(root)
    entries = []
    ordered = sorted(source.entries, key=lambda entry: entry.run_id)
    for copy in range(COPIES):
        for entry in ordered:
            run_id = copy * len(ordered) + entry.run_id
            relative = Path(f"run-{run_id:06d}") / f"{OUTPUT_KEY}.parquet"
            (root / relative).parent.mkdir(parents=True)
            shutil.copyfile(source_root / entry.output_paths[OUTPUT_KEY], root / relative)
            overrides = {SMA_FIELD: sma_values(1, run_id)[0]}
            paths = {OUTPUT_KEY: relative}
            entries.append(
                replace(
                    entry, run_id=run_id, overrides=overrides, output_paths=paths, log_path=None
                )
            )
    manifest = replace(source, run_count=runs, entries=entries)
    manifest.save(root / MANIFEST)
    return Manifest.load(root / MANIFEST)


def files_of(manifest: Manifest, root: Path) -> list[str]:
    """Every run's report file, in run order: what the bare read reads."""
    ordered = sorted(manifest.entries, key=lambda entry: entry.run_id)
    return [str(root / entry.output_paths[OUTPUT_KEY]) for entry in ordered]


def bare_read(files: list[str]) -> Any:
    """The yardstick: one pyarrow dataset read of the files, to pandas."""
    return ds.dataset(files, format="parquet").to_table().to_pandas()


def side_by_side(
    ours: Callable[[], Any], bare: Callable[[], Any], repeat: int
) -> tuple[float, float, Any]:
    """Median seconds of ``ours`` and of ``bare`` over ``repeat`` interleaved rounds."""
    times: dict[str, list[float]] = {"ours": [], "bare": []}
    result: Any = None
    for round_ in range(repeat):
        order = [("ours", ours), ("bare", bare)]
        for label, action in order if round_ % 2 == 0 else order[::-1]:
            if label == "ours":
                result = None  # each call starts without the previous frame alive
            gc.collect()
            start = time.perf_counter()
            value = action()
            times[label].append(time.perf_counter() - start)
            if label == "ours":
                result = value
            del value
    return median(times["ours"]), median(times["bare"]), result


def ratio(label: str, ours: float, bare: float, target: str, rows: int, repeat: int) -> None:
    note = f"target {target}; {ours:.3f} s vs {bare:.3f} s, {rows} rows, median of {repeat}"
    print_figure("RATIO", BENCH, f"{label}/pyarrow", ours / bare, note, ".2f")


def read_to_pandas(manifest: Manifest, root: Path, label: str, repeat: int) -> None:
    """Figure (a) at one size."""
    files = files_of(manifest, root)
    bare_read(files)  # warm the page cache
    ours, bare, frame = side_by_side(
        lambda: lazy_multiindex(manifest, root), lambda: bare_read(files), repeat
    )
    if len(frame) != len(bare_read(files)):
        raise RuntimeError(f"to_pandas read {len(frame)} rows, the files hold a different count")
    ratio(f"to_pandas_{label}", ours, bare, "<= 1.3", len(frame), repeat)


def read_lazy(manifest: Manifest, root: Path, label: str, repeat: int) -> None:
    """Figure (b)."""
    files = files_of(manifest, root)
    ours, bare, frame = side_by_side(
        lambda: report_frame(manifest, root).compute(), lambda: bare_read(files), repeat
    )
    ratio(f"to_dataframe_compute_{label}", ours, bare, "<= 1.5", len(frame), repeat)


def read_final(manifest: Manifest, root: Path, label: str, repeat: int) -> None:
    """Figure (e)."""
    files = files_of(manifest, root)
    ours, bare, frame = side_by_side(
        lambda: final_frame(manifest, root), lambda: bare_read(files), repeat
    )
    note = f"no target; {ours:.3f} s vs {bare:.3f} s, {len(frame)} runs, median of {repeat}"
    print_figure("INFO", BENCH, f"final_{label}/pyarrow", ours / bare, note, ".2f")


def open_and_loc(root: Path, label: str, repeat: int) -> None:
    """Figures (c) and (d)."""
    times = []
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        frame = report_frame(Manifest.load(root / MANIFEST), root)
        times.append(time.perf_counter() - start)
    runs = frame.divisions[-1] + 1
    note = f"target < 0.3; Manifest.load + report_frame of {runs} runs, median of {repeat}"
    print_figure("SCALE", BENCH, f"open_{label}_s", median(times), note)

    scanned: list[int] = []
    real_dataset = aggregate.ds.dataset

    def counting_dataset(source: list[str], *args: Any, **kwargs: Any) -> Any:
        scanned.append(len(source))
        return real_dataset(source, *args, **kwargs)

    aggregate.ds.dataset = counting_dataset
    try:
        start = time.perf_counter()
        one = frame.loc[runs // 2].compute()
        seconds = time.perf_counter() - start
    finally:
        aggregate.ds.dataset = real_dataset
    note = (
        f"files scanned by frame.loc[{runs // 2}] ({len(one)} rows, {seconds:.3f} s); "
        f"{frame.npartitions} partitions of {runs} runs, target: one partition's files"
    )
    print_figure("COUNT", BENCH, "loc_files", sum(scanned), note, "d")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, help="keep the built sweeps here (default: temp)")
    parser.add_argument("--small", action="store_true", help="100 real runs, 1,000 copies")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds per figure")
    args = parser.parse_args()
    runs = 100 if args.small else 1000
    with tempfile.TemporaryDirectory(prefix="gmat-sweep-read-") as scratch:
        cache = args.cache or Path(scratch)
        small_root = cache / f"real-{runs}"
        big_root = cache / f"copies-{runs * COPIES}"
        small = real_sweep(small_root, runs)
        big = replicated_sweep(small_root, small, big_root)
        small_label, big_label = ("100", "1k") if args.small else ("1k", "10k")
        read_to_pandas(small, small_root, small_label, args.repeat)
        read_to_pandas(big, big_root, big_label, args.repeat)
        read_lazy(small, small_root, small_label, args.repeat)
        read_lazy(big, big_root, big_label, args.repeat)
        read_final(big, big_root, big_label, args.repeat)
        open_and_loc(big_root, big_label, args.repeat)


if __name__ == "__main__":
    main()
