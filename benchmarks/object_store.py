"""Object store: runs/s of one sweep written to a local S3 server against local disk.

Runs the same N-run (default 300) grid over ``Sat.SMA`` of
``tests/data/leo_basic.script`` through :func:`gmat_sweep.sweep` with the
default backend (start-up, validation and shutdown timed), twice per repeat:
outputs to a temporary local directory, and outputs plus manifest to
``s3://`` on a SeaweedFS server that this benchmark starts on 127.0.0.1
(``tests/s3_server.py``; server start-up is not timed). Both run in this
one process, one after the other, alternating which goes first from repeat to
repeat; the ratio of each repeat is taken, and the median reported.
Target: s3/local >= 0.8.

Usage: ``.venv/bin/python benchmarks/object_store.py [--runs 300] [--repeat 1]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from _common import (
    LEO_BASIC,
    REPO_ROOT,
    SMA_FIELD,
    median,
    print_figure,
    require_complete,
    sma_values,
)

from gmat_sweep import sweep
from gmat_sweep.spec import PathLike

sys.path.insert(0, str(REPO_ROOT / "tests"))  # the server helper lives with the tests
from s3_server import S3Server, seaweedfs

BENCH = "object_store"
TARGET = 0.8


def rate(runs: int, out: PathLike, storage_options: dict[str, Any] | None = None) -> float:
    """runs/s of a default-backend sweep of ``runs`` runs into ``out``; raise unless all ok."""
    start = time.perf_counter()
    result = sweep(
        LEO_BASIC,
        {SMA_FIELD: sma_values(runs)},
        out=out,
        storage_options=storage_options,
        progress=False,
    )
    seconds = time.perf_counter() - start
    require_complete(result, runs)
    return runs / seconds


def one_repeat(index: int, runs: int, scratch: Path, server: S3Server) -> float:
    """Both sweeps (order alternating with ``index``); returns s3 rate / local rate."""
    rates: dict[str, float] = {}
    order = ["local", "s3"] if index % 2 == 0 else ["s3", "local"]
    for where in order:
        if where == "local":
            rates[where] = rate(runs, scratch / f"local-{index}")
        else:
            out = server.url(f"bench-{uuid.uuid4().hex[:8]}")
            rates[where] = rate(runs, out, server.storage_options())
        print_figure("RATE", BENCH, where, rates[where], f"runs/s; repeat {index}")
    return rates["s3"] / rates["local"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300, help="runs per sweep (default 300)")
    parser.add_argument("--repeat", type=int, default=1, help="repeats; median ratio reported")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="gmat-sweep-bench-") as scratch,
        seaweedfs(bucket="gmat-sweep-bench") as server,
    ):
        ratios = [one_repeat(i, args.runs, Path(scratch), server) for i in range(args.repeat)]
    note = f"target >= {TARGET}; {args.runs} runs of leo_basic, median of {len(ratios)}"
    print_figure("RATIO", BENCH, "s3/local", median(ratios), note, ".2f")


if __name__ == "__main__":
    main()
