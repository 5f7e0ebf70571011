"""Missions saved from GMAT's GUI, with loops, two spacecraft and ephemerides of every format.

``loop_reports`` writes a row per pass of a ``For`` and of a ``While`` loop
with ``Report`` commands, one of its ReportFiles saved with
``WriteHeaders = false``. ``gui_pair`` propagates two spacecraft together,
one in Keplerian elements with a Gregorian epoch, the other in Equinoctial
elements of an ecliptic frame with a TAIModJulian epoch, beside an
``OrbitView``, an ``XYPlot``, a ``Write`` command, an STK and an OEM
ephemeris and a Code-500 one switched off.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pandas as pd
import pytest
from bare_gmat import bare_last_row

from gmat_sweep import (
    LocalPool,
    Sweep,
    SweepConfigError,
    latin_hypercube,
    monte_carlo,
    open_sweep,
    sweep,
)
from gmat_sweep.cli import main
from gmat_sweep.worker import same_angle


@pytest.fixture(scope="module")
def loop_reports(data_dir: Path) -> Path:
    return data_dir / "loop_reports.script"


@pytest.fixture(scope="module")
def gui_pair(data_dir: Path) -> Path:
    return data_dir / "gui_pair.script"


@pytest.fixture(scope="module")
def climbs(pool: LocalPool, loop_reports: Path, tmp_path_factory: pytest.TempPathFactory) -> Sweep:
    """Two climbs of loop_reports: to SMA 7001 (one burn, ending before ClimbOem's window), 7030."""
    out = tmp_path_factory.mktemp("climbs") / "s"
    return sweep(
        loop_reports, {"GoalSMA.Value": [7001, 7030]}, out=out, backend=pool, progress=False
    )


def test_a_report_saved_without_headers_keeps_its_columns_and_first_row(climbs: Sweep) -> None:
    # Climb has WriteHeaders = false: read as written, its first row became column names.
    study = climbs
    assert study.failed_run_ids == []
    climb = study.to_pandas(name="Climb")
    assert list(climb.columns[:3]) == ["Sat.UTCGregorian", "Sat.Earth.SMA", "Sat.Earth.ECC"]
    # one row per burn: the loop ends at the first periapsis above the goal
    assert climb.groupby(level="run_id").size().tolist() == [1, 4]
    assert (climb.groupby(level="run_id")["Sat.Earth.SMA"].last() > [7001, 7030]).all()
    first = climb.groupby(level="run_id").head(1)
    assert first["Sat.UTCGregorian"].tolist() == [pd.Timestamp("2026-03-21 02:17:04.512")] * 2
    assert "Climb.WriteHeaders = true;" in study.script(0)


def test_a_for_loop_count_is_swept(pool: LocalPool, loop_reports: Path, tmp_path: Path) -> None:
    study = sweep(loop_reports, {"N.Value": [2, 5], "StepSecs.Value": [300]}, out=tmp_path / "s",
                  backend=pool, progress=False)  # fmt: skip
    assert study.failed_run_ids == []
    passes = study.to_pandas(name="Passes")
    assert passes.groupby(level="run_id").size().tolist() == [2, 5]
    assert passes["I"].tolist() == [1, 2, 1, 2, 3, 4, 5]
    elapsed = passes.index.get_level_values("time") - pd.Timestamp("2026-03-21")
    assert (elapsed / pd.Timedelta(seconds=300)).tolist() == [1, 2, 1, 2, 3, 4, 5]


def test_an_unreadable_ephemeris_format_is_refused_before_any_run(
    pool: LocalPool, gui_pair: Path, tmp_path: Path
) -> None:
    # gmat-run cannot read a Code-500 file (binary): every run would fail reading it.
    text = gui_pair.read_text()
    code500 = tmp_path / "code500.script"
    code500.write_text(
        text.replace("C500Eph.WriteEphemeris = false", "C500Eph.WriteEphemeris = true")
    )
    with pytest.raises(SweepConfigError, match=r"C500Eph.FileFormat = Code-500") as refused:
        sweep(code500, {"Sat.INC": [30.0]}, out=tmp_path / "s", backend=pool, progress=False)
    assert "CCSDS-OEM" in str(refused.value) and "WriteEphemeris = false" in str(refused.value)
    assert not (tmp_path / "s").exists()


def test_an_spk_ephemeris_is_read_or_refused_before_any_run(
    pool: LocalPool, gui_pair: Path, tmp_path: Path
) -> None:
    # gmat-run reads SPK (binary) files only with spiceypy installed.
    spk = tmp_path / "spk.script"
    spk.write_text(
        gui_pair.read_text()
        .replace("SatStk.FileFormat = STK-TimePosVel", "SatStk.FileFormat = SPK")
        .replace("'pair_sat.e'", "'pair_sat.bsp'")
    )
    if importlib.util.find_spec("spiceypy") is None:
        with pytest.raises(SweepConfigError, match=r"SatStk.FileFormat = SPK: .*spiceypy"):
            sweep(spk, {"Sat.INC": [30.0]}, out=tmp_path / "s", backend=pool, progress=False)
        return
    study = sweep(spk, {"Sat.INC": [30.0]}, out=tmp_path / "s", backend=pool, progress=False)
    assert study.failed_run_ids == []
    assert len(study.to_ephemerides(name="SatStk").compute()) > 10


def test_an_override_to_an_unreadable_ephemeris_is_refused_before_any_run(
    pool: LocalPool, gui_pair: Path, tmp_path: Path
) -> None:
    # The same rule as for the script's own settings: a swept FileFormat gmat-run cannot
    # read, or switching on the Code-500 ephemeris, would fail every run that takes it.
    grid = {"OemEph.FileFormat": ["CCSDS-OEM", "Code-500"], "C500Eph.WriteEphemeris": [True]}
    with pytest.raises(SweepConfigError) as refused:
        sweep(gui_pair, grid, out=tmp_path / "s", backend=pool, progress=False)
    message = str(refused.value)
    assert re.search(r"'OemEph.FileFormat'='Code-500': [^;]*CCSDS-OEM", message)
    assert re.search(r"'C500Eph.WriteEphemeris'=True: [^;]*Code-500", message)
    assert "'CCSDS-OEM'" not in message
    assert not (tmp_path / "s").exists()


def test_a_report_layout_and_a_for_loop_index_are_refused_as_overrides(
    pool: LocalPool, loop_reports: Path, tmp_path: Path
) -> None:
    # Without its header a report's first row is taken for column names; without fixed
    # widths its rows cannot be split into columns. "For I = 1:N" sets I before anything
    # reads it: an override of I would change nothing. One check reports all three.
    grid = {"Passes.WriteHeaders": [True, False], "Climb.FixedWidth": [False], "I.Value": [3]}
    with pytest.raises(SweepConfigError) as refused:
        sweep(loop_reports, grid, out=tmp_path / "s", backend=pool, progress=False)
    message = str(refused.value)
    for path in ("Passes.WriteHeaders", "Climb.FixedWidth"):
        assert re.search(rf"'{path}'=False: [^;]*fixed-width[^;]*; leave it out", message)
    assert "'I.Value': the mission sequence sets it before reading it" in message
    assert "For I = 1:N;" in message
    assert not (tmp_path / "s").exists()


def test_small_true_anomalies_of_a_near_circular_orbit_are_dispersed(
    pool: LocalPool, gui_pair: Path, tmp_path: Path
) -> None:
    # ECC = 0.001: TA comes back from GMAT's Cartesian state up to ~1e-11 deg off, beyond
    # a 1e-12 absolute tolerance for a small angle.
    perturb = {"Sat.TA": ("uniform", 0.0, 1.0), "Chaser.EquinoctialP": ("normal", 0.1, 0.01)}
    study = monte_carlo(
        gui_pair, n=4, perturb=perturb, seed=4, out=tmp_path / "s", backend=pool, progress=False
    )
    assert study.failed_run_ids == []
    sep = study.to_pandas()
    first = sep.groupby(level="run_id").head(1)
    assert (first["Sat.Earth.TA"] - first["Sat.TA"]).abs().max() < 1e-8
    last = sep.groupby(level="run_id").tail(1).droplevel("time").loc[3]
    bare = bare_last_row(gui_pair, "Sep", tmp_path, {p: float(last[p]) for p in perturb})
    assert last[bare.index].astype(float).tolist() == bare.tolist()  # bit for bit


def test_two_spacecraft_study_is_resumed_and_exported(
    pool: LocalPool, gui_pair: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Chaser is in Equinoctial elements of an ecliptic frame: INC and RAAN are written there.
    perturb = {"Chaser.INC": ("uniform", 10.0, 80.0), "Chaser.RAAN": ("uniform", 0.0, 360.0)}
    out = tmp_path / "s"
    study = latin_hypercube(
        gui_pair, n=3, perturb=perturb, seed=1, out=out, backend=pool, progress=False
    )
    assert study.failed_run_ids == []
    assert sorted(study.manifest.entries[0].output_paths) == [
        "ephemeris__OemEph", "ephemeris__SatStk", "report__Sep"
    ]  # fmt: skip
    oem = study.to_ephemerides(name="OemEph").compute()
    assert oem.groupby(level="run_id").size().tolist() == [101] * 3  # every 30 s for 3000 s
    reference = study.to_pandas()
    path = out / "manifest.jsonl"
    path.write_bytes(b"".join(path.read_bytes().splitlines(keepends=True)[:-1]))  # interrupted
    resumed = open_sweep(out).resume()
    pd.testing.assert_frame_equal(resumed.to_pandas(), reference)
    assert main(["fields", str(gui_pair), "Chaser", "--match", "MLONG"]) == 0
    assert "Chaser.MLONG" in capsys.readouterr().out
    csv = tmp_path / "oem.csv"
    assert (
        main(["export", str(out), "--to", str(csv), "--kind", "ephemeris", "--name", "OemEph"]) == 0
    )
    assert len(pd.read_csv(csv)) == 303


def test_a_spacecraft_coordinate_system_reinterprets_its_elements(
    pool: LocalPool, gui_pair: Path, tmp_path: Path
) -> None:
    # In the script the elements that follow are given in Sat.CoordinateSystem; an API
    # write after the load would only re-express the same state (the runs would be equal).
    grid = {"Sat.CoordinateSystem": ["EarthMJ2000Eq", "EarthEcliptic"]}
    study = sweep(gui_pair, grid, out=tmp_path / "s", backend=pool, progress=False)
    assert study.failed_run_ids == []
    last = study.to_pandas().groupby(level="run_id").tail(1).droplevel("time")
    assert last["Sat.EarthMJ2000Eq.X"][0] != last["Sat.EarthMJ2000Eq.X"][1]
    ecliptic = tmp_path / "ecliptic.script"
    nominal = "GMAT Sat.CoordinateSystem = EarthMJ2000Eq;"
    ecliptic.write_text(
        gui_pair.read_text().replace(nominal, nominal.replace("MJ2000Eq", "Ecliptic"))
    )
    bare = bare_last_row(ecliptic, "Sep", tmp_path)
    assert last.loc[1, bare.index].astype(float).tolist() == bare.tolist()


def test_an_orbit_angle_is_compared_on_the_circle() -> None:
    assert same_angle(359.99999999999994, 1e-13)
    assert same_angle(0.42466211342026106, 0.4246621134189606)
    assert same_angle(370.0, 10.000000000001)
    assert not same_angle(10.0, 10.00001)
    assert not same_angle(0.0, 180.0)


def test_a_target_in_a_loop_converges_only_when_every_execution_does(
    pool: LocalPool, data_dir: Path, tmp_path: Path
) -> None:
    # N = 3 targetings a run; with StepSMA = 5000 the first one stops at 25 iterations,
    # the later ones (from the higher orbit it left) converge. GMAT's DC file keeps the last.
    mission = data_dir / "target_loop.script"
    study = sweep(
        mission, {"StepSMA.Value": [10, 5000]}, out=tmp_path / "s", backend=pool, progress=False
    )
    assert study.failed_run_ids == []
    assert study.converged()["DC"].tolist() == [True, False]
    burns = study.to_pandas(name="Burns")
    assert burns.groupby(level="run_id").size().tolist() == [3, 3]
    assert burns["Raise.Element1"].max() == 1.0  # the upper bound of the Vary


def test_a_script_gmat_cannot_load_is_refused_quoting_its_line(
    pool: LocalPool, gui_pair: Path, tmp_path: Path
) -> None:
    # GMAT logs the script line it refuses on the log line after "... in line:".
    formation = tmp_path / "formation.script"
    formation.write_text(
        gui_pair.read_text().replace(
            "Create CoordinateSystem EarthEcliptic;",
            "Create Formation Pair;\nPair.Add = {Sat};\nCreate CoordinateSystem EarthEcliptic;",
        )
    )
    with pytest.raises(SweepConfigError, match=r"Formation.* in line: .*Create Formation Pair;"):
        sweep(formation, {"Sat.INC": [30.0]}, out=tmp_path / "s", backend=pool, progress=False)


def test_an_ephemeris_window_a_run_never_reaches_leaves_the_run_ok(climbs: Sweep) -> None:
    # ClimbOem covers 06:00-07:00; with GoalSMA 7001 the climb ends at 02:17 and GMAT
    # leaves the file empty.
    study = climbs
    assert study.failed_run_ids == []
    entries = {entry.run_id: entry for entry in study.manifest.entries}  # completion order
    assert "ephemeris__ClimbOem" not in entries[0].output_paths
    assert "ephemeris__ClimbOem" in entries[1].output_paths
    oem = study.to_ephemerides(name="ClimbOem").compute()
    assert oem.groupby(level="run_id").size().tolist() == [1, 13]  # run 0: one empty row
    assert pd.isna(oem.loc[0, "time"]) and oem.loc[1, "X"].notna().all()
    assert len(study.final(name="Climb")) == 2


def test_the_final_row_of_a_backward_propagation_is_its_end(
    pool: LocalPool, loop_reports: Path, tmp_path: Path
) -> None:
    # Rows are ordered by time; the state a run ends in is the row GMAT wrote last.
    backward = tmp_path / "backward.script"
    backward.write_text(
        loop_reports.read_text().replace(
            "Propagate DefaultProp(Sat) {Sat.ElapsedSecs = StepSecs};",
            "Propagate BackProp DefaultProp(Sat) {Sat.ElapsedSecs = StepSecs};",
        )
    )
    grid = {"N.Value": [2, 3], "StepSecs.Value": [-600], "GoalSMA.Value": [0]}
    study = sweep(backward, grid, out=tmp_path / "s", backend=pool, progress=False)
    assert study.failed_run_ids == []
    ends = [pd.Timestamp("2026-03-20 23:40"), pd.Timestamp("2026-03-20 23:30")]
    assert study.final(name="Passes")["time"].tolist() == ends
    assert study.final(name="Passes", lazy=True)["time"].compute().tolist() == ends
    passes = study.to_pandas(name="Passes")
    assert passes.loc[1, "I"].tolist() == [3, 2, 1]  # ordered by time
