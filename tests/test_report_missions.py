"""A mission whose sequence computes its Variables in a ScriptEvent and reports twice.

``reports_mix`` sets ``Seconds`` and ``Twice`` in a ``BeginScript ...
EndScript`` block (GMAT runs its commands in order, like any other), stops a
``Propagate`` at an altitude held in a Variable or after ``Seconds``, and
writes one ReportFile into a subdirectory at every step and another, filled
by a ``Report`` command, once at the end.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gmat_sweep import SweepConfigError, sweep
from gmat_sweep.cli import main
from gmat_sweep.script import overwritten_values


@pytest.fixture(scope="module")
def reports_mix(data_dir: Path) -> Path:
    return data_dir / "reports_mix.script"


def test_a_variable_a_script_event_sets_first_is_refused(reports_mix: Path, tmp_path: Path) -> None:
    # Sweeping Seconds would change nothing: the ScriptEvent sets it from Hours.
    with pytest.raises(SweepConfigError, match=r"'Seconds.Value': the mission sequence sets it"):
        sweep(reports_mix, {"Seconds.Value": [100.0, 200.0]}, out=tmp_path / "s", progress=False)
    assert not (tmp_path / "s").exists()
    assert overwritten_values(reports_mix) == {  # Track publishes Twice while propagating
        "Seconds.Value": "line 53: Seconds = Hours * 3600;",
        "Perigee.Value": "line 57: Perigee = Sat.Earth.RadPer - 6378.1363;",
    }


def test_two_reports_of_different_lengths_and_a_variable_stopping_altitude(
    reports_mix: Path, tmp_path: Path
) -> None:
    # From apogee (2422 km) the orbit falls to 1000 km in 2871 s and never climbs to 3000 km.
    grid = {"Floor.Value": [1000.0, 3000.0], "Hours.Value": [1.0]}
    study = sweep(reports_mix, grid, out=tmp_path / "s", progress=False)
    assert study.failed_run_ids == []
    summary = study.final(name="Summary")
    assert summary["Sat.Earth.Altitude"][0] == pytest.approx(1000.0, abs=1e-6)
    assert summary["Sat.ElapsedSecs"].round(6).tolist() == [2870.713511, 3600.0]
    assert summary["Twice"].tolist() == [16000.0, 16000.0]  # set by the ScriptEvent
    track = study.to_dataframe(name="Track").compute()  # written into out/sub/ by GMAT
    assert (track.groupby(level="run_id").size() > 10).all()
    assert track.groupby(level="run_id")["time"].last().tolist() == summary["time"].tolist()
    a1 = track["Sat.A1ModJulian"] - track["Sat.UTCGregorian"]  # the A1 scale runs ahead
    assert a1.dt.total_seconds().round(2).unique().tolist() == [37.03]


def test_a_dispersion_of_the_mission_from_the_cli(
    reports_mix: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "mc"
    args = ["monte-carlo", str(reports_mix), "-n", "2", "--perturb", "Sat.ECC=uniform(0.05, 0.1)"]
    assert main([*args, "--seed", "3", "--out", str(out), "--no-progress", "-q"]) == 0
    assert main(["show", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "ok 2, failed 0" in shown and "report__Summary: 2 runs, 2 rows" in shown
