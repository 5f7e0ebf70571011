"""What gmat-run gives alone: the baseline a sweep's numbers are compared with bit for bit."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pandas as pd

_RUN = textwrap.dedent(
    """
    import json, sys
    from gmat_run import Mission
    from gmat_sweep.engine import ensure_engine
    mission = Mission.load(sys.argv[1], gmat_root=ensure_engine().root)
    for path, value in json.loads(sys.argv[2]).items():
        mission[path] = value
    results = mission.run()  # kept while the report is parsed: the parse reads its temp dir
    results.reports[sys.argv[3]].to_parquet(sys.argv[4])
    """
)


def bare_report(
    script: Path, report: str, scratch: Path, overrides: dict[str, Any] | None = None
) -> pd.DataFrame:
    """``report`` of ``script`` run by gmat-run alone, in a fresh process.

    ``overrides`` are written through gmat-run's API after the load; the
    frame passes through a Parquet file in ``scratch``.
    """
    frame = scratch / f"bare-{script.stem}-{report}.parquet"
    subprocess.run(
        [sys.executable, "-c", _RUN, str(script), json.dumps(overrides or {}), report, str(frame)],
        capture_output=True, text=True, timeout=240, check=True,
    )  # fmt: skip
    return pd.read_parquet(frame)


def bare_last_row(
    script: Path, report: str, scratch: Path, overrides: dict[str, Any] | None = None
) -> pd.Series:
    """The numbers of the last row of :func:`bare_report`, as floats."""
    frame = bare_report(script, report, scratch, overrides)
    return frame.select_dtypes("number").iloc[-1].astype(float)
