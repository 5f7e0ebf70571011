"""Resume after a crash: nothing that finished is run again.

A sweep of ``--runs`` leo_basic runs (default 300) is started as a driver
process and SIGKILLed when about half of its runs are in the manifest; the
sweep is then resumed with ``Sweep.from_manifest(...).resume()``. In the same
invocation the same sweep runs uninterrupted. Printed:

- runs re-executed by the resume against runs that were missing or failed
  when it started (target: equal — nothing finished is re-run);
- total time of killed sweep + resume against the uninterrupted sweep
  (the overhead of crashing: re-starting processes, the runs in flight);
- whether the resumed frame equals the uninterrupted one bit for bit.

Usage: python benchmarks/resume.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from _common import LEO_BASIC, SMA_FIELD, sma_values

from gmat_sweep import LocalPool, Sweep, sweep
from gmat_sweep.manifest import Manifest, read_all_entries

_DRIVER = (
    "import json, sys\n"
    "from gmat_sweep import sweep\n"
    "sweep(sys.argv[1], json.loads(sys.argv[2]), out=sys.argv[3], progress=False)\n"
)


def _killed_at_half(grid: dict[str, list[float]], out: Path, runs: int) -> float:
    """Run the sweep in a driver process and SIGKILL it at ~50%; return its wall time."""
    started = time.perf_counter()
    driver = subprocess.Popen(
        [sys.executable, "-c", _DRIVER, str(LEO_BASIC), json.dumps(grid), str(out)]
    )
    manifest = out / "manifest.jsonl"
    while driver.poll() is None:
        lines = len(manifest.read_bytes().splitlines()) - 1 if manifest.exists() else 0
        if lines >= runs // 2:
            driver.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    driver.wait()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()
    grid = {SMA_FIELD: sma_values(args.runs)}
    with tempfile.TemporaryDirectory(prefix="gmat-sweep-bench-resume-") as scratch:
        root = Path(scratch)
        started = time.perf_counter()
        whole = sweep(LEO_BASIC, grid, out=root / "whole", progress=False)
        uninterrupted = time.perf_counter() - started

        crashed = root / "crashed"
        killed_s = _killed_at_half(grid, crashed, args.runs)
        before = Manifest.load(crashed / "manifest.jsonl")
        todo = len(before.find_failed()) + len(before.find_missing(range(args.runs)))
        lines_before = len(read_all_entries(crashed / "manifest.jsonl"))
        started = time.perf_counter()
        with LocalPool() as pool:
            resumed = Sweep.from_manifest(
                crashed / "manifest.jsonl", LEO_BASIC, backend=pool, progress=False
            ).resume()
        resume_s = time.perf_counter() - started
        executed = len(read_all_entries(crashed / "manifest.jsonl")) - lines_before
        identical = resumed.to_pandas().equals(whole.to_pandas())
        pd.testing.assert_frame_equal(resumed.to_pandas(), whole.to_pandas())

    print(f"RESUME resume runs_re_executed = {executed}, runs_missing_or_failed = {todo} "
          f"(target: equal; {args.runs - todo} finished runs were kept)")  # fmt: skip
    print(f"TIME resume killed_sweep_s = {killed_s:.1f}, resume_s = {resume_s:.1f}, "
          f"uninterrupted_s = {uninterrupted:.1f}")  # fmt: skip
    ratio = (killed_s + resume_s) / uninterrupted
    print(f"RATIO resume (killed + resume)/uninterrupted = {ratio:.2f} "
          "(no target; crash and restart cost)")  # fmt: skip
    print(f"CHECK resume frame_bit_identical = {identical}")


if __name__ == "__main__":
    main()
