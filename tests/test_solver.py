"""Solver iteration logs: recorded per run, aggregated, and reported when a solver did not converge.

One CLI sweep of hohmann_target.script over two target radii: 42164 km
converges, 5000 km (below the start orbit) ends at DC.MaximumIterations with
the last iterate as its trajectory.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pandas as pd
import pytest

from gmat_sweep.cli import main
from gmat_sweep.errors import SweepConfigError
from gmat_sweep.sweep import Sweep

RADII = "TargetRadius.Value=42164,5000"


class Ran(NamedTuple):
    out: Path
    script: Path
    code: int
    stdout: str
    stderr: str


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Ran:
    root = tmp_path_factory.mktemp("solver")
    script = data_dir / "hohmann_target.script"
    done = subprocess.run(
        [sys.executable, "-m", "gmat_sweep", "run", str(script), "--param", RADII,
         "--out", "study", "--workers", "1"],
        cwd=root, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    return Ran(root / "study", script, done.returncode, done.stdout, done.stderr)


def opened(ran: Ran) -> Sweep:
    return Sweep.from_manifest(ran.out / "manifest.jsonl", ran.script, backend=None)


def test_each_run_records_its_solver_log_and_stays_ok(ran: Ran) -> None:
    assert ran.code == 0, ran.stderr
    study = opened(ran)
    entries = sorted(study.manifest.entries, key=lambda e: e.run_id)
    assert [str(e.status) for e in entries] == ["ok", "ok"]
    assert all({"report__Trajectory", "report__Summary", "solver__DC"} == set(e.output_paths)
               for e in entries)  # fmt: skip
    log = pd.read_parquet(ran.out / entries[1].output_paths["solver__DC"])
    assert list(log["status"])[-1] == "max_iter"
    assert not log["converged"].any()
    assert log["iteration"].tolist() == list(range(1, 26))


def test_converged_is_one_boolean_column_per_solver(ran: Ran) -> None:
    converged = opened(ran).converged()
    assert converged.index.name == "run_id"
    assert converged.index.tolist() == [0, 1]
    assert list(converged.columns) == ["DC"]
    assert str(converged["DC"].dtype) == "boolean"
    assert converged["DC"].tolist() == [True, False]
    assert opened(ran).converged("DC").equals(converged)
    with pytest.raises(SweepConfigError, match="'DC'"):
        opened(ran).converged("Nope")


def test_to_solver_runs_stacks_every_iteration_with_parameters(ran: Ran) -> None:
    lazy = opened(ran).to_solver_runs()
    frame = lazy.compute()
    assert frame.index.name == "run_id"
    assert list(frame.columns[:3]) == ["iteration", "TOI.Element1", "GOI.Element1"]
    assert {"status", "converged", "Sat.Earth.RMAG_residual", "TargetRadius.Value",
            "__status"} <= set(frame.columns)  # fmt: skip
    last = frame.groupby(level="run_id").tail(1)
    assert last["status"].tolist() == ["converged", "max_iter"]
    assert last["TargetRadius.Value"].tolist() == [42164.0, 5000.0]
    assert len(frame.loc[1]) == 25
    eager = opened(ran).to_pandas(kind="solver")
    assert eager.index.names == ["run_id", "iteration"]
    assert len(eager) == len(frame)


def test_report_reads_pick_the_sole_report_despite_solver_outputs(ran: Ran) -> None:
    study = opened(ran)
    with pytest.raises(SweepConfigError, match="Summary"):
        study.to_pandas()  # two reports, as before: the solver log is not a third
    final = study.final("Summary")
    assert final["TargetRadius"].tolist() == [42164.0, 5000.0]


def test_cli_summary_names_the_runs_whose_solver_did_not_converge(ran: Ran) -> None:
    assert "1 of 2 ok runs ended with a solver that did not converge" in ran.stderr, ran.stderr
    assert "DC: run_ids 1" in ran.stderr
    assert "--kind solver" in ran.stderr


def test_show_states_convergence(ran: Ran, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", str(ran.out)]) == 0
    text = capsys.readouterr().out
    assert "1 of 2 ok runs ended with a solver that did not converge" in text, text
    assert "output solver__DC: 2 runs" in text
    assert main(["show", str(ran.out), "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["not_converged"] == {"DC": [1]}


def test_export_kind_solver(ran: Ran, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "solver.parquet"
    assert main(["export", str(ran.out), "--kind", "solver", "--to", str(target)]) == 0
    expected = opened(ran).to_pandas(kind="solver")
    # Parquet gives the nullable Int64 iteration level back as int64.
    pd.testing.assert_frame_equal(pd.read_parquet(target), expected, check_index_type=False)
    assert main(["export", str(ran.out), "--name", "DC", "--to", str(tmp_path / "r.csv")]) == 2
    assert "--kind solver" in capsys.readouterr().err


def test_html_report_states_convergence(ran: Ran, tmp_path: Path) -> None:
    page = opened(ran).report(tmp_path / "r.html", name="Summary").read_text()
    assert "1 of 2 ok runs ended with a solver that did not converge" in page
    assert "DC: run_ids 1" in page


def test_resume_records_the_solver_log_of_a_rerun(ran: Ran, tmp_path: Path) -> None:
    import shutil

    out = tmp_path / "study"
    shutil.copytree(ran.out, out)
    lines = (out / "manifest.jsonl").read_text().splitlines(keepends=True)
    last = max(i for i, line in enumerate(lines) if json.loads(line)["kind"] == "entry")
    (out / "manifest.jsonl").write_text("".join(lines[:last] + lines[last + 1 :]))
    dropped = json.loads(lines[last])["run_id"]
    assert main(["resume", str(out), "--quiet", "--workers", "1"]) == 0
    resumed = Sweep.from_manifest(out / "manifest.jsonl", ran.script, backend=None)
    entry = next(e for e in resumed.manifest.entries if e.run_id == dropped)
    assert "solver__DC" in entry.output_paths
    assert resumed.converged()["DC"].tolist() == [True, False]


def test_a_mission_without_solvers_has_no_solver_outputs(leo_basic: Path, tmp_path: Path) -> None:
    from gmat_sweep import sweep

    study = sweep(leo_basic, {"Sat.Cd": [2.2]}, out=tmp_path / "s", progress=False)
    assert set(study.manifest.entries[0].output_paths) == {"report__RF"}
    converged = study.converged()
    assert converged.index.tolist() == [0] and converged.columns.empty
    with pytest.raises(SweepConfigError, match="no solver outputs"):
        study.to_solver_runs("DC")
