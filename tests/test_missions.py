"""Missions unlike the bundled examples, driven through the public API as an analyst would.

``drag_pd78`` keeps GMAT's default resource names (``DefaultProp``,
``DefaultProp_ForceModel``) and has Jacchia-Roberts drag and a
PrinceDormand78 integrator; ``two_sats`` has two spacecraft in different
coordinate systems and epoch formats.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from gmat_sweep import LocalPool, Sweep, SweepConfigError, sweep
from gmat_sweep.errors import RunOutputError
from gmat_sweep.script import script_value
from gmat_sweep.spec import RunSpec, RunStatus
from gmat_sweep.worker import LOAD_TIME, list_fields, run_one, same_value

FM = "DefaultProp_ForceModel"


@pytest.fixture(scope="module")
def drag_pd78(data_dir: Path) -> Path:
    return data_dir / "drag_pd78.script"


def test_a_whole_float_is_written_as_an_integer() -> None:
    # GMAT refuses "Degree = 2.0" for an Integer field; "2" reads the same in a Real one.
    assert script_value(2.0) == "2"
    assert script_value(-0.0) == "0"
    assert script_value(2.5) == "2.5"
    assert script_value(1e300) == "1e+300"


def test_an_integer_field_swept_with_whole_floats_runs_like_integers(
    pool: LocalPool, drag_pd78: Path, tmp_path: Path
) -> None:
    # What `--param FM.GravityField.Earth.Degree=2:8:2` and numpy.linspace produce.
    path = f"{FM}.GravityField.Earth.Degree"
    floats = sweep(drag_pd78, {path: [2.0, 4.0]}, out=tmp_path / "f", backend=pool, progress=False)
    ints = sweep(drag_pd78, {path: [2, 4]}, out=tmp_path / "i", backend=pool, progress=False)
    assert floats.failed_run_ids == []
    pd.testing.assert_frame_equal(floats.to_pandas(), ints.to_pandas(), check_exact=True)
    final = floats.final()["Sat.Earth.SMA"]
    assert final[0] != final[1]


def test_an_output_switched_off_in_the_script_is_left_out_not_a_failure(
    pool: LocalPool, data_dir: Path, tmp_path: Path
) -> None:
    # FixedEph has WriteEphemeris = false: GMAT writes no file for it.
    mission = data_dir / "burn_ephemeris.script"
    study = sweep(
        mission, {"Kick.Element1": [0.0, 0.02]}, out=tmp_path / "s", backend=pool, progress=False
    )
    assert study.failed_run_ids == []
    assert sorted(study.manifest.entries[0].output_paths) == ["ephemeris__Oem", "report__Track"]
    oem = study.to_ephemerides(name="Oem").compute()
    assert oem.groupby(level="run_id").size().tolist() == [92, 92]  # two segments of 46
    final = study.final()["Sat.Earth.SMA"]
    assert final[1] > final[0] + 20  # the burn raised the orbit
    with pytest.raises(SweepConfigError, match="'Oem'"):
        study.to_ephemerides(name="FixedEph")


def test_an_stk_ephemeris_split_at_a_burn_is_read(
    pool: LocalPool, data_dir: Path, tmp_path: Path
) -> None:
    # A burn splits GMAT's STK ephemeris into segments, listed in a
    # "BEGIN SegmentBoundaryTimes" block that gmat-run 0.6's parser refuses.
    text = (data_dir / "burn_ephemeris.script").read_text()
    mission = tmp_path / "burn_stk.script"
    mission.write_text(
        text.replace("FixedEph.WriteEphemeris = false", "FixedEph.WriteEphemeris = true")
    )
    study = sweep(
        mission, {"Kick.Element1": [0.0, 0.02]}, out=tmp_path / "s", backend=pool, progress=False
    )
    assert study.failed_run_ids == []
    stk = study.to_ephemerides(name="FixedEph").compute()
    oem = study.to_ephemerides(name="Oem").compute()
    assert stk.groupby(level="run_id").size().tolist() == [92, 92]  # two segments of 46
    # Same epochs as the OEM, in an Earth-fixed frame: same radius, other axes.
    lag = stk["time"].to_numpy() - oem["time"].to_numpy()
    assert abs(lag).max() < pd.Timedelta("1ms")  # STK epochs carry ~1e-7 s of float noise
    radius = {
        name: (frame[["X", "Y", "Z"]] ** 2).sum(axis=1) ** 0.5
        for name, frame in (("stk", stk), ("oem", oem))
    }
    assert (radius["stk"] - radius["oem"]).abs().max() < 1e-3
    assert (stk["X"] - oem["X"]).abs().max() > 100


def test_a_modjulian_epoch_given_to_more_digits_than_gmat_prints_is_applied(
    pool: LocalPool, data_dir: Path, tmp_path: Path
) -> None:
    # Geo's epoch is TAIModJulian; GMAT prints it back to 16 significant digits.
    study = sweep(
        data_dir / "two_sats.script",
        {"Geo.Epoch": ["31041.500428240741"], "Leo.Epoch": ["01 Jan 2026 00:00:00.000"]},
        out=tmp_path / "s",
        backend=pool,
        progress=False,
    )
    assert study.failed_run_ids == []
    frame = study.to_pandas()
    epochs = ["Leo.UTCGregorian", "Leo.TAIModJulian", "Geo.A1ModJulian"]
    assert (frame[epochs].dtypes == "datetime64[ns]").all()
    assert frame.index.names == ["run_id", "time"]


def test_same_value_compares_modjulian_epochs_as_numbers() -> None:
    assert same_value("31041.500428240741", "31041.50042824074")
    assert same_value("31041.5", "31041.50000000000")
    assert not same_value("31041.5", "31041.50001")


def test_drag_and_srp_numbers_of_a_force_model_can_be_swept(
    pool: LocalPool, drag_pd78: Path, tmp_path: Path
) -> None:
    # GMAT's ForceModel does not route reads of these to its drag and SRP forces.
    listed = {f.path: f for f in list_fields(drag_pd78)}
    for field, nominal in (("Drag.F107", 150), ("Drag.MagneticIndex", 3), ("SRP.Flux", 1367)):
        assert listed[f"{FM}.{field}"].value == nominal
        assert listed[f"{FM}.{field}"].override == LOAD_TIME
    grid = {f"{FM}.Drag.F107": [100.0, 250.0], f"{FM}.Drag.MagneticIndex": [3]}
    study = sweep(drag_pd78, grid, out=tmp_path / "s", backend=pool, progress=False)
    assert study.failed_run_ids == []
    final = study.final()["Sat.Earth.SMA"]
    assert final[1] < final[0]  # more solar flux, denser air, faster decay


@pytest.mark.parametrize(
    ("field", "value", "diagnostic"),
    [
        ("Drag.AtmosphereModel", "Jacchia", 'Unable to create AtmosphereModel "Jacchia"'),
        ("GravityField.Earth.PotentialFile", "JGM9.cof", '"JGM9.cof" does not exist'),
    ],
)
def test_a_load_time_value_gmat_cannot_load_is_refused_before_any_run(
    pool: LocalPool, drag_pd78: Path, tmp_path: Path, field: str, value: str, diagnostic: str
) -> None:
    path = f"{FM}.{field}"
    good = "MSISE90" if "Atmosphere" in field else "JGM2.cof"
    with pytest.raises(SweepConfigError) as refused:
        sweep(drag_pd78, {path: [good, value]}, out=tmp_path / "s", backend=pool, progress=False)
    message = str(refused.value)
    assert f"{path!r}={value!r}" in message and diagnostic in message
    assert "gmat-sweep-rendered" not in message  # no temporary file names
    assert not (tmp_path / "s").exists()


def test_the_html_report_of_a_per_run_summary_report(
    pool: LocalPool, data_dir: Path, tmp_path: Path
) -> None:
    # Result is written once by a Report command after a Target loop: no epoch column.
    lazy = sweep(
        data_dir / "plane_change.script",
        {"TargetApo.Value": [7400, 7600]},
        out=tmp_path / "s",
        backend=pool,
        progress=False,
        compute=False,
    )
    study = lazy.compute()
    final = study.final(name="Result")
    assert final["Burn.Element1"][1] > final["Burn.Element1"][0]  # a higher apoapsis costs more
    page = study.report(tmp_path / "report.html", name="Result").read_text()
    assert "Burn.Element1" in page


def test_drag_and_srp_switched_off_drop_their_settings_from_the_script(
    pool: LocalPool, drag_pd78: Path, tmp_path: Path
) -> None:
    # GMAT refuses FM.Drag.F107 (or FM.SRP.Flux) once drag (or SRP) is off, as a GUI-saved
    # script has them: turning a force off removes its settings, as GMAT's GUI does.
    grid = {f"{FM}.Drag.AtmosphereModel": ["None", "JacchiaRoberts"], f"{FM}.SRP": ["Off", "On"]}
    study = sweep(drag_pd78, grid, out=tmp_path / "s", backend=pool, progress=False)
    assert study.failed_run_ids == []
    final = study.final()["Sat.Earth.SMA"]
    assert final[0] > final[2] and final[1] > final[3]  # without drag the orbit decays less
    assert final[0] != final[1] and final[2] != final[3]  # SRP reaches the propagator
    replay = study.script(1)
    assert f"{FM}.Drag.F107 =" not in replay and f"{FM}.Drag.AtmosphereModel = None;" in replay


def test_one_process_runs_drag_off_then_on(leo_basic: Path, tmp_path: Path) -> None:
    # A host that loaded the drag-off rendering classifies the next run's override
    # on the script as written, where FM.Drag.AtmosphereModel exists.
    path = "FM.Drag.AtmosphereModel"
    for run_id, model in enumerate(["None", "Exponential", "None"]):
        spec = RunSpec(leo_basic, {path: model}, tmp_path / f"run-{run_id}", run_id, None)
        outcome = run_one(spec)
        assert outcome.status is RunStatus.OK, outcome.stderr


@pytest.fixture(scope="module")
def branches(pool: LocalPool, data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Sweep:
    """branches.script at every Mode: what each run writes depends on the branch it takes."""
    out = tmp_path_factory.mktemp("branches") / "s"
    return sweep(data_dir / "branches.script", {"Mode.Value": [0, 1, 2, 3, 4]}, out=out,
                 backend=pool, progress=False)  # fmt: skip


def test_a_run_that_writes_no_file_is_a_row_of_missing_values(branches: Sweep) -> None:
    # Mode 1 toggles RF off before any data: GMAT creates no file at all for that run.
    assert {e.run_id: e.status for e in branches.manifest.entries}[1] is RunStatus.OK
    frame = branches.to_pandas(name="RF")
    silent = frame.xs(1, level="run_id")
    assert silent["__status"].tolist() == ["ok"]
    assert silent["Sat.Earth.RMAG"].isna().all()
    assert frame.xs(0, level="run_id")["Sat.Earth.RMAG"].notna().all()
    final = branches.final(name="RF")["Sat.ElapsedSecs"]
    assert final[0] == pytest.approx(1200) and math.isnan(final[1])


def test_a_report_whose_columns_differ_between_runs_is_refused_not_cut(
    branches: Sweep,
) -> None:
    # Report commands in different branches write (Mode, RMAG) in run 2 and (Mode, Ratio)
    # in run 3 into one ReportFile: the frame follows run 2's columns and may not drop Ratio.
    with pytest.raises(RunOutputError, match=r"run 3.*\['Ratio'\].*run 2") as refused:
        branches.to_pandas(name="Summary")
    assert "own ReportFile" in str(refused.value)
    with pytest.raises(RunOutputError, match="'Ratio'"):
        branches.final(name="Summary")


def test_a_run_ended_by_a_stop_command_fails_saying_so(branches: Sweep) -> None:
    entry = {entry.run_id: entry for entry in branches.manifest.entries}[4]
    assert entry.status is RunStatus.FAILED and entry.output_paths == {}
    head = (entry.stderr or "").split("\n\n", 1)[0]
    assert "GMAT execution stopped by user" in head and "Stop command" in head
    assert branches.failed_run_ids == [4]
