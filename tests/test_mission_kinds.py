"""Missions of kinds an analyst writes that the other mission tests do not cover.

``strings_arrays`` has a ``String`` label, an ``Array`` of gains and a
``Variable`` duration, all used in the mission sequence. ``lunar_gui`` is a
low lunar orbit in Keplerian elements of a Moon-centred frame, with a
TAIModJulian epoch and GMAT's GUI subscribers saved beside its ReportFile.
``included_main`` takes its spacecraft, force model and propagator from
``included_spacecraft`` with ``#Include``.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pandas as pd
import pytest

from gmat_sweep import LocalPool, SweepConfigError, monte_carlo, open_sweep, sweep
from gmat_sweep.script import overwritten_values
from gmat_sweep.worker import LIVE, LOAD_TIME, REFUSED, list_fields


@pytest.fixture(scope="module")
def lunar_gui(data_dir: Path) -> Path:
    return data_dir / "lunar_gui.script"


@pytest.fixture(scope="module")
def strings_arrays(data_dir: Path) -> Path:
    return data_dir / "strings_arrays.script"


def test_a_string_value_is_swept_and_reaches_the_report(
    pool: LocalPool, strings_arrays: Path, tmp_path: Path
) -> None:
    labels = ["alpha", "two words", "42"]
    study = sweep(
        strings_arrays, {"Label.Value": labels}, out=tmp_path / "s", backend=pool, progress=False
    )
    assert study.failed_run_ids == []
    final = study.final(name="Summary")
    assert final["Label"].astype(str).tolist() == labels
    assert final["Label.Value"].tolist() == labels
    assert "Label = 'two words';" in study.script(1)  # the replay script sets it too


def test_an_empty_string_is_refused_before_any_run(
    pool: LocalPool, strings_arrays: Path, tmp_path: Path
) -> None:
    # GMAT writes nothing in its report column: the report's columns no longer line up.
    with pytest.raises(SweepConfigError, match=r"'Label.Value'='  ': a String with no text"):
        sweep(
            strings_arrays,
            {"Label.Value": ["a", "  "]},
            out=tmp_path / "s",
            backend=pool,
            progress=False,
        )


def test_a_string_field_is_listed_with_its_text(strings_arrays: Path) -> None:
    listed = {f.path: f for f in list_fields(strings_arrays)}
    assert listed["Label.Value"].value == "nominal"
    assert listed["Label.Value"].override == LOAD_TIME


def test_an_array_element_and_a_duration_variable_are_swept(
    pool: LocalPool, strings_arrays: Path, tmp_path: Path
) -> None:
    # Dv = Gains(2, 1) is the burn; Seconds is the Propagate stopping value.
    grid = {"Gains(2, 1)": [0.01, 0.05], "Seconds.Value": [300, 600]}
    study = sweep(strings_arrays, grid, out=tmp_path / "s", backend=pool, progress=False)
    assert study.failed_run_ids == []
    final = study.final(name="Summary")
    assert final["Dv"].tolist() == [0.01, 0.01, 0.05, 0.05]
    assert final["Sat.ElapsedSecs"].round(3).tolist() == [300, 600, 300, 600]
    assert final["Sat.Earth.SMA"][2] > final["Sat.Earth.SMA"][0] + 50  # a bigger burn
    assert "Gains(2, 1) = 0.05;" in study.script(2)


def test_an_array_element_outside_the_array_is_refused_before_any_run(
    pool: LocalPool, strings_arrays: Path, tmp_path: Path
) -> None:
    with pytest.raises(SweepConfigError, match=r"Gains is 3x2, so rows run 1\.\.3"):
        sweep(
            strings_arrays, {"Gains(4,1)": [0.1]}, out=tmp_path / "s", backend=pool, progress=False
        )
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    ("bare", "meant"),
    [("Seconds", "'Seconds.Value'"), ("Label", "'Label.Value'"), ("Gains", "'Gains(1, 1)'")],
)
def test_a_variable_named_without_its_field_is_refused_with_the_path_to_write(
    pool: LocalPool, strings_arrays: Path, tmp_path: Path, bare: str, meant: str
) -> None:
    # A newcomer writes the Variable's name, as the script assigns it (`Seconds = 600`).
    with pytest.raises(SweepConfigError) as refused:
        sweep(strings_arrays, {bare: [1]}, out=tmp_path / "s", backend=pool, progress=False)
    assert meant in str(refused.value), str(refused.value)
    assert not (tmp_path / "s").exists()


def test_array_elements_are_listed_as_fields(strings_arrays: Path) -> None:
    listed = {f.path: f for f in list_fields(strings_arrays)}
    assert listed["Gains(2, 1)"].value == 0.01
    assert listed["Gains(1, 2)"].field_type == "Real"
    assert listed["Gains(1, 2)"].override == LIVE
    assert listed["Gains(3, 2)"].override == REFUSED  # the sequence sets it first


def test_a_report_created_after_a_ground_track_plot_is_written(
    pool: LocalPool, lunar_gui: Path, tmp_path: Path
) -> None:
    # The headless engine writes no file for a ReportFile created after a GroundTrackPlot.
    grid = {"LunaSat.ECC": [0.01, 0.05], "LunaSat.TA": [90.0], "LunaSat.Epoch": ["31001.25"]}
    study = sweep(lunar_gui, grid, out=tmp_path / "s", backend=pool, progress=False)
    assert study.failed_run_ids == []
    assert list(study.manifest.entries[0].output_paths) == ["report__LunarReport"]  # no plots
    frame = study.to_pandas()
    assert (frame.groupby(level="run_id").size() > 30).all()  # one hour of adaptive steps
    first = frame.groupby(level="run_id").head(1)
    assert first["LunaSat.Luna.ECC"].round(12).tolist() == [0.01, 0.05]  # in the Moon's frame
    assert first["LunaSat.Luna.TA"].round(9).tolist() == [90.0, 90.0]
    assert (first["LunaSat.TAIModJulian"] == pd.Timestamp("2025-11-21 18:00:00")).all()
    replay = study.script(1)
    assert replay.index("Create ReportFile LunarReport") < replay.index("Create GroundTrackPlot")


def test_a_modjulian_epoch_is_dispersed_as_a_number(
    pool: LocalPool, lunar_gui: Path, tmp_path: Path
) -> None:
    # LunaSat.DateFormat is TAIModJulian: a draw of the epoch is a number of days.
    perturb = {"LunaSat.Epoch": ("uniform", 31000.5, 31001.5)}
    study = monte_carlo(
        lunar_gui, n=2, perturb=perturb, seed=3, out=tmp_path / "s", backend=pool, progress=False
    )
    assert study.failed_run_ids == []
    first = study.to_pandas().groupby(level="run_id").head(1)
    mjd_zero = pd.Timestamp("1941-01-05 12:00:00")  # GMAT's ModJulian day 0
    days = (first["LunaSat.TAIModJulian"] - mjd_zero) / pd.Timedelta(days=1)
    assert days.round(8).tolist() == first["LunaSat.Epoch"].round(8).tolist()


def test_the_fields_of_resources_from_an_include_are_listed(data_dir: Path) -> None:
    listed = {f.path: f for f in list_fields(data_dir / "included_main.script")}
    assert listed["Probe.INC"].value == pytest.approx(63.4)
    assert listed["J2Only.GravityField.Earth.Degree"].override == LOAD_TIME
    assert listed["J2Prop.MaxStep"].value == 600
    assert listed["Hours.Value"].value == 2


def test_a_finite_burn_uses_the_swept_thrust_and_masses(
    pool: LocalPool, data_dir: Path, tmp_path: Path
) -> None:
    # A 300 s burn at Isp K1 = 300 s burns C1 * 300 / (300 * 9.81) kg of the tank's fuel.
    grid = {"Thruster.C1": [400.0, 800.0], "Tank.FuelMass": [150.0], "Sat.DryMass": [500.0]}
    study = sweep(
        data_dir / "finite_burn.script", grid, out=tmp_path / "s", backend=pool, progress=False
    )
    assert study.failed_run_ids == []
    final = study.final()
    burned = 150.0 - final["Sat.Tank.FuelMass"]
    assert burned.tolist() == pytest.approx([400 / 9.81, 800 / 9.81], rel=1e-9)
    assert final["Sat.TotalMass"].tolist() == pytest.approx((500.0 + 150.0 - burned).tolist())
    assert final["Sat.Earth.SMA"][1] > final["Sat.Earth.SMA"][0] + 300


def test_a_mission_with_an_include_is_resumed_replayed_and_archived(
    pool: LocalPool, data_dir: Path, tmp_path: Path
) -> None:
    mission = data_dir / "included_main.script"
    grid = {"J2Only.GravityField.Earth.Degree": [0, 2], "Probe.INC": [50.0, 63.4]}
    out = tmp_path / "s"
    reference = sweep(mission, grid, out=out, backend=pool, progress=False).to_pandas()
    raan = reference.groupby(level="run_id")["Probe.EarthMJ2000Eq.RAAN"].last()
    assert raan[0] == pytest.approx(10.0) and raan[2] < 10.0  # J2 turns the node westward
    path = out / "manifest.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-2]))  # an interrupted sweep: two runs not recorded
    resumed = open_sweep(out).resume()
    pd.testing.assert_frame_equal(resumed.to_pandas(), reference)
    replay = resumed.script(3)  # the included file, inline: the overrides replace its settings
    assert "\n#Include" not in replay and "\nCreate Spacecraft Probe;\n" in replay
    assert replay.count("Earth.Degree =") == 1
    assert "\nJ2Only.GravityField.Earth.Degree = 2;\n" in replay
    archive = resumed.archive(tmp_path / "study.zip")
    names = zipfile.ZipFile(archive).namelist()
    assert {"mission/included_main.script", "mission/included_spacecraft.script"} <= set(names)


def test_apoapsis_and_periapsis_lowered_together_are_applied(
    pool: LocalPool, leo_basic: Path, tmp_path: Path
) -> None:
    # GMAT refuses RadApo below the current RadPer: lowering both needs RadPer written first.
    grid = {"Sat.RadApo": [6700.0, 6800.0], "Sat.RadPer": [6650.0]}
    study = sweep(leo_basic, grid, out=tmp_path / "s", backend=pool, progress=False)
    assert study.failed_run_ids == []
    first = study.to_pandas().groupby(level="run_id").head(1)
    assert first["Sat.Earth.SMA"].tolist() == pytest.approx([6675.0, 6725.0], rel=1e-12)


def test_an_apoapsis_below_every_periapsis_is_refused_before_any_run(
    pool: LocalPool, leo_basic: Path, tmp_path: Path
) -> None:
    grid = {"Sat.RadApo": [6600.0], "Sat.RadPer": [6650.0, 6700.0]}
    with pytest.raises(SweepConfigError, match=r"'Sat.RadApo'=6600.0: the engine refused"):
        sweep(leo_basic, grid, out=tmp_path / "s", backend=pool, progress=False)


def test_a_variable_the_sequence_sets_before_reading_is_refused(
    pool: LocalPool, strings_arrays: Path, data_dir: Path, tmp_path: Path
) -> None:
    # "Dv = Gains(2, 1);" opens the sequence: a swept Dv would never reach the burn.
    with pytest.raises(SweepConfigError, match=r"'Dv.Value': the mission sequence sets it") as e:
        sweep(
            strings_arrays,
            {"Dv.Value": [0.02, 0.05]},
            out=tmp_path / "s",
            backend=pool,
            progress=False,
        )
    assert "line 112: Dv = Gains(2, 1);" in str(e.value)
    assert not (tmp_path / "s").exists()
    with pytest.raises(SweepConfigError, match=r"'Gains\(3, 2\)': the mission sequence sets it"):
        sweep(
            strings_arrays, {"Gains(3,2)": [1.0]}, out=tmp_path / "s", backend=pool, progress=False
        )
    listed = {f.path: f.override for f in list_fields(data_dir / "included_main.script")}
    assert listed["Seconds.Value"] == REFUSED  # Seconds = Hours * 3600;
    assert listed["Hours.Value"] == LIVE


def test_only_a_value_set_before_anything_reads_it_counts_as_overwritten(tmp_path: Path) -> None:
    script = tmp_path / "sequence.script"
    script.write_text(
        "Create Variable A B C D E;\nCreate String S;\nCreate Array G[2,2] H[1,2];\n"
        "Create ReportFile RF;\nRF.Add = {E};\n"
        "BeginMissionSequence;\n"
        "If B > 0\n  A = 1;\nEndIf;\n"  # A is set in a block that may not run
        "C = C + 1;\n"  # C is read first
        "D = 2; % the sequence sets D\n"
        "E = 3;\n"  # E is published by RF before this line could run
        "S = 'text';\n"
        "G(1,2) = 7;\n"  # G(1, 2) is set before anything reads G
        "H(1, 1) = H(1, 2);\n"  # H is read
        "A = G(2, 1);\n",
        encoding="utf-8",
    )
    assert overwritten_values(script) == {
        "D.Value": "line 11: D = 2;",
        "S.Value": "line 13: S = 'text';",
        "G(1, 2)": "line 14: G(1,2) = 7;",
    }
