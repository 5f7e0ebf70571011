"""Report and archive of a 10,000-run sweep: size and time, with replicated outputs.

One real 2-run sweep of leo_basic gives a real ``RF`` report and a real
manifest header. A synthetic sweep of ``--runs`` runs (a 100 x N/100 grid of
``Sat.SMA`` x ``Sat.Cd``) is then written beside it: every ok run gets its own
Parquet, the real report with its position columns scaled by a per-run factor
(seeded, so outcomes spread as a dispersion's would), ``--failed`` of the runs
are failed entries with a GMAT-like error, and run times are drawn from a
lognormal. The sweep is rebuilt with ``Sweep.from_manifest`` and measured:

a. ``gmat_sweep.report.write_report``: seconds and file size (target < 5 MB);
b. ``gmat_sweep.archive.write_archive``: seconds and file size (no target).

Usage: ``.venv/bin/python benchmarks/report.py [--runs 10000] [--failed 0.02]``
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from _common import LEO_BASIC, print_figure

from gmat_sweep import Sweep, sweep
from gmat_sweep.archive import write_archive
from gmat_sweep.manifest import Manifest, ManifestEntry
from gmat_sweep.report import write_report
from gmat_sweep.spec import RunStatus, to_builtins

BENCH = "report"
SMA_VALUES = 100
POSITION = ("Sat.EarthMJ2000Eq.X", "Sat.EarthMJ2000Eq.Y", "Sat.EarthMJ2000Eq.Z")
ERROR = (
    "GmatRunError: GMAT RunScript returned status 0; expected 1\n"
    "Atmosphere model exception: Exponential atmosphere: Position vector is inside central body"
)


def grid_of(runs: int) -> dict[str, list[float]]:
    """``Sat.SMA`` x ``Sat.Cd``: :data:`SMA_VALUES` x ``runs // SMA_VALUES`` points."""
    cd_values = runs // SMA_VALUES
    return {
        "Sat.Cd": [2.0 + 0.4 * i / max(cd_values - 1, 1) for i in range(cd_values)],
        "Sat.SMA": [7000.0 + i for i in range(SMA_VALUES)],
    }


def replicate(root: Path, runs: int, failed_share: float) -> Path:
    """Write the synthetic sweep under ``root``; return its manifest path."""
    real = sweep(LEO_BASIC, {"Sat.SMA": [7000.0, 7100.0]}, out=root / "real", progress=False)
    header = real.manifest
    report = pq.read_table(Path(real.output_dir) / "run-000000" / "report__RF.parquet")
    log = (Path(real.output_dir) / "run-000000" / "gmat.log").read_bytes()
    grid = grid_of(runs)
    study = root / "study"
    study.mkdir()
    path = study / "manifest.jsonl"
    Manifest(
        script_sha256=header.script_sha256,
        gmat_sweep_version=header.gmat_sweep_version,
        gmat_run_version=header.gmat_run_version,
        gmat_install_version=header.gmat_install_version,
        python_version=header.python_version,
        os_platform=header.os_platform,
        sweep_seed=None,
        parameter_spec={"_kind": "grid", "grid": grid},
        run_count=runs,
        backend="local",
        script_includes=header.script_includes,
        script_path=header.script_path,
        numpy_version=header.numpy_version,
        scipy_version=header.scipy_version,
    ).save(path)
    rng = np.random.default_rng(20261202)
    durations = rng.lognormal(np.log(0.06), 0.3, runs)
    failed = rng.random(runs) < failed_share
    scale = 1.0 + 1e-3 * rng.standard_normal((runs, len(POSITION)))
    start = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    lines = []
    run_id = 0
    for cd in grid["Sat.Cd"]:
        for sma in grid["Sat.SMA"]:
            run_dir = study / f"run-{run_id:06d}"
            run_dir.mkdir()
            (run_dir / "gmat.log").write_bytes(log)
            outputs = {}
            if not failed[run_id]:
                table = report
                for index, column in enumerate(POSITION):
                    values = table[column].to_numpy() * scale[run_id, index]
                    table = table.set_column(
                        table.schema.get_field_index(column), column, pa.array(values)
                    )
                pq.write_table(table, run_dir / "report__RF.parquet")
                outputs["report__RF"] = Path(run_dir.name) / "report__RF.parquet"
            began = start + timedelta(seconds=0.03 * run_id)
            entry = ManifestEntry(
                run_id=run_id,
                overrides={"Sat.Cd": cd, "Sat.SMA": sma},
                status=RunStatus.FAILED if failed[run_id] else RunStatus.OK,
                output_paths=outputs,
                started_at=began,
                ended_at=began + timedelta(seconds=float(durations[run_id])),
                duration_s=float(durations[run_id]),
                stderr=ERROR if failed[run_id] else None,
                log_path=Path(run_dir.name) / "gmat.log",
                script_sha256=header.script_sha256,
            )
            lines.append(json.dumps({"kind": "entry", **to_builtins(entry)}))
            run_id += 1
    with path.open("a", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10_000, help="a multiple of 100")
    parser.add_argument("--failed", type=float, default=0.02, help="share of failed runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        manifest = replicate(root, args.runs, args.failed)
        study = Sweep.from_manifest(manifest, LEO_BASIC, backend=None, progress=False)
        start = time.perf_counter()
        page = write_report(study, root / "report.html")
        seconds = time.perf_counter() - start
        megabytes = page.stat().st_size / 1e6
        print_figure("SCALE", BENCH, "report_s", seconds, f"no target; {args.runs} runs")
        print_figure("SCALE", BENCH, "report_mb", megabytes, f"target < 5; {args.runs} runs")
        start = time.perf_counter()
        archive = write_archive(study, root / "study.zip")
        seconds = time.perf_counter() - start
        print_figure("INFO", BENCH, "archive_s", seconds, f"no target; {args.runs} runs")
        size = archive.stat().st_size / 1e6
        print_figure("INFO", BENCH, "archive_mb", size, f"no target; {args.runs} runs")


if __name__ == "__main__":
    main()
