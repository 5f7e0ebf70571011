"""Per-run metrics (postprocess): computed after each run, kept by resume and open_sweep."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from gmat_sweep import open_sweep, sweep
from gmat_sweep.errors import SweepConfigError
from gmat_sweep.testing import final_sma

pytestmark = pytest.mark.slow

GRID = {"Sat.SMA": [6900.0, 7000.0], "Sat.Cd": [2.0, 2.4]}


def broken(outputs: dict[str, pd.DataFrame], overrides: dict[str, Any]) -> dict[str, Any]:
    if overrides["Sat.Cd"] > 2.2:
        raise RuntimeError("no metric for high drag")
    return {"rows": len(outputs["RF"])}


@pytest.fixture(scope="module")
def measured(leo_basic: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("measured") / "s"
    sweep(leo_basic, GRID, out=out, progress=False, postprocess="gmat_sweep.testing:final_sma")
    return out


def test_metrics_are_the_reduction_of_each_runs_outputs(measured: Path) -> None:
    study = open_sweep(measured)  # kept in the manifest: reopened sweeps have them
    metrics = study.metrics()
    last = study.to_pandas().groupby(level="run_id")["Sat.Earth.SMA"].last()
    pd.testing.assert_series_equal(metrics["final_sma"], last, check_names=False)
    assert list(metrics.columns) == [
        "final_sma",
        "rows",
        "Sat.Cd",
        "Sat.SMA",
        "__status",
        "__error",
    ]
    assert metrics["__status"].eq("ok").all()
    assert (measured / "run-000000" / "metrics.parquet").is_file()
    assert study.manifest.parameter_spec["postprocess"] == "gmat_sweep.testing:final_sma"


def test_a_gone_metrics_file_is_named_with_add_metrics_as_the_fix(
    measured: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(measured, copy)
    gone = copy / "run-000001" / "metrics.parquet"
    gone.unlink()
    study = open_sweep(copy)
    message = rf"{re.escape(str(gone))} is gone .* metrics of run 1: .*add_metrics"
    with pytest.raises(FileNotFoundError, match=message):
        study.metrics()
    study.add_metrics("gmat_sweep.testing:final_sma")  # the fix the message gives
    pd.testing.assert_frame_equal(study.metrics(), open_sweep(measured).metrics())


def test_a_failing_postprocess_fails_the_metric_row_not_the_run(
    leo_basic: Path, tmp_path: Path
) -> None:
    study = sweep(leo_basic, GRID, out=tmp_path / "s", progress=False, postprocess=broken)
    assert study.failed_run_ids == []  # the runs are ok
    metrics = study.metrics()
    # Runs 2 and 3 have Sat.Cd = 2.4 (grid keys vary in sorted order, the last fastest).
    assert list(metrics["__status"]) == ["ok", "ok", "failed", "failed"]
    assert "RuntimeError: no metric for high drag" in metrics.loc[2, "__error"]
    assert metrics.loc[0, "rows"] == len(study.to_pandas().loc[0])
    assert pd.isna(metrics.loc[2, "rows"])


def test_resume_computes_the_recorded_metrics(measured: Path, tmp_path: Path) -> None:
    partial = tmp_path / "partial"
    shutil.copytree(measured, partial)
    lines = (partial / "manifest.jsonl").read_text().splitlines()
    (partial / "manifest.jsonl").write_text("\n".join(lines[:2]) + "\n")
    resumed = open_sweep(partial).resume()
    pd.testing.assert_frame_equal(resumed.metrics(), open_sweep(measured).metrics())


def test_add_metrics_starts_no_gmat_process(measured: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(measured, copy)
    code = (
        "import sys\n"
        "from gmat_sweep import open_sweep\n"
        f"study = open_sweep({str(copy)!r}).add_metrics('gmat_sweep.testing:final_sma')\n"
        "print(study.metrics()['final_sma'].round(6).tolist())\n"
        "assert not {'gmat_run', 'gmatpy'} & set(sys.modules)\n"
        "import os\n"
        "def parent(p):\n"
        "    try:\n"
        "        return open(f'/proc/{p}/stat').read().rsplit(')', 1)[1].split()[1]\n"
        "    except FileNotFoundError:  # another machine process ended while we listed\n"
        "        return None\n"
        "me = str(os.getpid())\n"
        "children = [p for p in os.listdir('/proc') if p.isdigit() and parent(p) == me]\n"
        "assert not children, children\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    expected = open_sweep(measured).metrics()["final_sma"].round(6).tolist()
    assert done.stdout.strip() == str(expected)


def test_add_metrics_with_a_callable(measured: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(measured, copy)
    study = open_sweep(copy).add_metrics(broken)
    assert list(study.metrics()["__status"]) == ["ok", "ok", "failed", "failed"]
    assert final_sma is not None


def test_resume_after_add_metrics_computes_the_added_function(
    measured: Path, tmp_path: Path
) -> None:
    """add_metrics replaces the metrics, so the rule a resume follows is the added one."""
    copy = tmp_path / "copy"
    shutil.copytree(measured, copy)
    open_sweep(copy).add_metrics("test_metrics:outputs_read")
    assert open_sweep(copy).manifest.parameter_spec["postprocess"] == ("test_metrics:outputs_read")
    lines = (copy / "manifest.jsonl").read_text().splitlines()
    (copy / "manifest.jsonl").write_text("\n".join(lines[:3]) + "\n")  # runs 2 and 3 lost
    metrics = open_sweep(copy).resume().metrics()
    assert list(metrics.columns) == ["outputs", "Sat.Cd", "Sat.SMA", "__status", "__error"]
    assert metrics["outputs"].tolist() == [1, 1, 1, 1]


def test_add_metrics_with_an_unrecordable_function_forgets_the_recorded_one(
    measured: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(measured, copy)
    study = open_sweep(copy).add_metrics(lambda outputs, overrides: {"one": 1})
    assert "postprocess" not in open_sweep(copy).manifest.parameter_spec
    assert study.metrics()["one"].tolist() == [1, 1, 1, 1]


def test_a_postprocess_that_cannot_be_imported_is_refused_before_any_run(
    leo_basic: Path, tmp_path: Path
) -> None:
    with pytest.raises(SweepConfigError, match=r"postprocess='nowhere:fn' cannot be imported"):
        sweep(leo_basic, GRID, out=tmp_path / "s", progress=False, postprocess="nowhere:fn")
    assert not (tmp_path / "s").exists()


def outputs_read(outputs: dict[str, pd.DataFrame], overrides: dict[str, Any]) -> dict[str, Any]:
    return {"outputs": len(outputs)}


def test_add_metrics_gives_a_run_that_wrote_no_file_the_metrics_a_sweep_gives_it(
    data_dir: Path, tmp_path: Path
) -> None:
    # branches.script at Mode 1 toggles its only report off: an ok run with no output file.
    grid = {"Mode.Value": [0, 1]}
    out = tmp_path / "s"
    study = sweep(
        data_dir / "branches.script", grid, out=out, progress=False, postprocess=outputs_read
    )
    silent = study.manifest.entry_for(1)
    assert silent is not None and silent.output_paths == {}
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    added = open_sweep(copy).add_metrics(outputs_read).metrics()
    assert added["outputs"].tolist() == [1, 0]
    pd.testing.assert_frame_equal(added, study.metrics())


def test_add_metrics_refuses_an_ok_entry_that_records_no_directory(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from gmat_sweep.errors import ManifestCorruptError
    from gmat_sweep.manifest import ManifestEntry
    from gmat_sweep.metrics import compute_stored
    from gmat_sweep.spec import RunStatus

    now = datetime.now(UTC)
    entry = ManifestEntry(3, {}, RunStatus.OK, {}, now, now, 0.0, None, None)
    with pytest.raises(ManifestCorruptError, match=r"run 3 is ok but .* neither an output nor"):
        compute_stored([entry], tmp_path, outputs_read)
