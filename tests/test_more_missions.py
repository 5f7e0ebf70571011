"""Mission kinds beyond the other mission tests, checked against bare gmat-run.

``frames_points`` gives spacecraft states in frames built on calculated
points (a Sun-Earth ``LibrationPoint``, an Earth-Moon ``Barycenter`` with
``ObjectReferenced`` axes) and propagates two spacecraft ``Synchronized``.
``burn_sequence`` burns in VNB axes and then runs a ``Write``, a ``Toggle``
off and on, a ``BackProp`` propagation, a ``Report`` command and a ``Stop``
in an ``If`` branch. ``stop_events`` stops at apsides, a swept duration and
the first of two conditions; ``lvlh_loop`` burns in LVLH axes and in a ``For``
loop with swept bounds; ``script_event`` computes a burn in a ``BeginScript``
block from swept Array cells. A sweep's run must equal, bit for bit, the hand-edited
script run by gmat-run alone. Resource types the bundled engine leaves out
(event locators, ground stations, optimizers, formations, GMAT functions)
are refused before any run.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from bare_gmat import bare_report

from gmat_sweep import LocalPool, Sweep, SweepConfigError, monte_carlo, sweep


def _bare_report(script: Path, edits: dict[str, str], report: str, tmp_path: Path) -> pd.DataFrame:
    """``report`` from gmat-run alone, in a fresh process, on ``script`` with lines edited.

    ``edits`` maps a field path to the value written in place of its assignment.
    Rows are ordered by time (stable), as a sweep's frame orders them.
    """
    text = script.read_text()
    for path, value in edits.items():
        text, count = re.subn(rf"^{re.escape(path)} = .*;$", f"{path} = {value};", text, flags=re.M)
        assert count == 1, path
    edited = tmp_path / script.name  # beside nothing it reads: the script names no input file
    edited.write_text(text)
    bare = bare_report(edited, report, tmp_path)
    return bare.sort_values(bare.columns[0], kind="stable").reset_index(drop=True)


def _run_frame(study: Sweep, run_id: int, report: str, columns: pd.Index) -> pd.DataFrame:
    return study.to_pandas(name=report).loc[run_id].reset_index(drop=True)[columns]


@pytest.fixture(scope="module")
def frames_points(data_dir: Path) -> Path:
    return data_dir / "frames_points.script"


@pytest.fixture(scope="module")
def burn_sequence(data_dir: Path) -> Path:
    return data_dir / "burn_sequence.script"


@pytest.fixture(scope="module")
def frames(pool: LocalPool, frames_points: Path, tmp_path_factory: pytest.TempPathFactory) -> Sweep:
    grid = {"SEL.Point": ["L1", "L2"], "LFrame.Axes": ["MJ2000Eq", "MJ2000Ec"]}
    out = tmp_path_factory.mktemp("frames") / "s"
    return sweep(frames_points, grid, out=out, backend=pool, progress=False)


@pytest.fixture(scope="module")
def burns(pool: LocalPool, burn_sequence: Path, tmp_path_factory: pytest.TempPathFactory) -> Sweep:
    grid = {"DV.Axes": ["VNB", "MJ2000Eq"], "Flag.Value": [1, 2]}
    out = tmp_path_factory.mktemp("burns") / "s"
    return sweep(burn_sequence, grid, out=out, backend=pool, progress=False)


def test_a_state_in_a_libration_point_frame_follows_the_swept_point(
    frames: Sweep, frames_points: Path, tmp_path: Path
) -> None:
    # Sat's state is given in LFrame, centred on SEL: moving the point moves the spacecraft.
    assert frames.failed_run_ids == []
    first = frames.to_pandas().groupby(level="run_id").head(1).droplevel("time")
    assert first["Sat.LFrame.X"].round(6).tolist() == [10000.0] * 4  # the state as written
    assert first["Sat.EarthMJ2000Eq.Y"].round(3).nunique() == 4  # L1/L2, equator/ecliptic
    # Runs in grid order: (MJ2000Eq, L1), (MJ2000Eq, L2), (MJ2000Ec, L1), (MJ2000Ec, L2).
    l1_to_l2 = abs(first.loc[1, "Sat.EarthMJ2000Eq.Y"] - first.loc[0, "Sat.EarthMJ2000Eq.Y"])
    assert 2.5e6 < l1_to_l2 < 3.5e6  # the two points are ~1.5 million km either side of Earth
    edits = {"SEL.Point": "L1", "LFrame.Axes": "MJ2000Ec"}
    bare = _bare_report(frames_points, edits, "RF", tmp_path)
    pd.testing.assert_frame_equal(_run_frame(frames, 2, "RF", bare.columns), bare)  # bit for bit


def test_two_spacecraft_propagated_synchronized_share_every_row(frames: Sweep) -> None:
    rf = frames.to_pandas()
    assert rf.notna().all().all()  # Sat and Moonish reported at the same epochs
    # Moonish does not see SEL; one step control for both spacecraft moves its end by ~1e-6 km
    moonish = rf.groupby(level="run_id")["Moonish.RotFrame.X"].last()
    assert moonish.tolist() == pytest.approx([moonish[0]] * 4, abs=1e-5)
    assert moonish.nunique() > 1


def test_a_state_in_an_object_referenced_barycentric_frame_is_dispersed(
    pool: LocalPool, frames_points: Path, tmp_path: Path
) -> None:
    perturb = {"Moonish.X": ("uniform", 90000.0, 110000.0), "Moonish.VY": ("normal", 0.5, 0.01)}
    study = monte_carlo(
        frames_points,
        n=2,
        perturb=perturb,
        seed=5,
        out=tmp_path / "s",
        backend=pool,
        progress=False,
    )
    assert study.failed_run_ids == []
    first = study.to_pandas().groupby(level="run_id").head(1)
    assert first["Moonish.RotFrame.X"].tolist() == pytest.approx(first["Moonish.X"].tolist())
    assert first["Moonish.RotFrame.Y"].abs().max() < 1e-6  # Y = 0 in the rotating frame


def test_a_burn_in_swept_axes_matches_the_edited_script_and_stop_fails_its_run(
    burns: Sweep, burn_sequence: Path, tmp_path: Path
) -> None:
    assert burns.failed_run_ids == [1, 3]  # Flag 2 takes the Stop branch
    stderr = burns.manifest.entry_for(1).stderr  # type: ignore[union-attr]
    assert stderr is not None and "A Stop command in the mission sequence ended the run" in stderr
    summary = burns.final(name="Sum")
    assert summary.loc[[0, 2], "Flag"].tolist() == [1, 1]
    sma = summary["Sat.Earth.SMA"]
    assert sma[0] > sma[2] + 100  # 0.1 km/s along velocity (VNB) raises the orbit more
    bare = _bare_report(burn_sequence, {"DV.Axes": "MJ2000Eq"}, "RF", tmp_path)
    pd.testing.assert_frame_equal(_run_frame(burns, 2, "RF", bare.columns), bare)  # bit for bit


def test_a_toggled_off_report_skips_its_rows_and_back_propagation_fills_them(
    burns: Sweep,
) -> None:
    rf = burns.to_pandas(name="RF").loc[0]
    times = rf.index.get_level_values("time")
    assert times.is_monotonic_increasing
    # RF is off for 12:10-12:20 forward; BackProp 12:20 -> 12:15 and the last leg report.
    off = (times > pd.Timestamp("2026-01-01 12:10")) & (times < pd.Timestamp("2026-01-01 12:15"))
    assert not off.any()
    assert (times == pd.Timestamp("2026-01-01 12:20")).sum() == 2  # BackProp start, final row


@pytest.mark.parametrize("parameters", ["Sat.UTCGregorian Sat.Earth.SMA", "Sat.ElapsedSecs Flag"])
def test_a_report_command_into_a_report_file_with_an_add_list_is_refused(
    pool: LocalPool, burn_sequence: Path, tmp_path: Path, parameters: str
) -> None:
    # GMAT writes a second header line into RF: every run would fail to read it (and a
    # report with as many columns and no epoch would read one parameter as another).
    mixed = tmp_path / "mixed.script"
    mixed.write_text(
        burn_sequence.read_text().replace(
            "Report Sum Sat.UTCGregorian Sat.Earth.SMA Flag;", f"Report RF {parameters};"
        )
    )
    with pytest.raises(SweepConfigError) as refused:
        sweep(mixed, {"DV.Element1": [0.1]}, out=tmp_path / "s", backend=pool, progress=False)
    message = str(refused.value)
    assert f"line 51: Report RF {parameters};" in message
    assert "RF.Add" in message and "a ReportFile of its own" in message
    assert not (tmp_path / "s").exists()


_UNSUPPORTED = {
    "EclipseLocator": (
        "Create EclipseLocator Shadows;\nShadows.Spacecraft = Sat;\n"
        "Shadows.Filename = 'eclipses.txt';\nShadows.OccultingBodies = {Earth};\n",
        "EclipseLocator is not part",
    ),
    "ContactLocator": (
        "Create GroundStation Cape;\nCape.Location1 = 28.5;\nCape.Location2 = -80.6;\n"
        "Create ContactLocator Passes;\nPasses.Target = Sat;\nPasses.Observers = {Cape};\n"
        "Passes.Filename = 'passes.txt';\n",
        "ContactLocator and GroundStation are not part",
    ),
    "Optimize": ("Create Yukon Opt;\n", "Yukon is not part"),
    "Formation": ("Create Formation Form;\nForm.Add = {Sat};\n", "Formation is not part"),
    "GmatFunction": ("Create GmatFunction Fn;\n", "GmatFunction is not part"),
}


@pytest.mark.parametrize("kind", sorted(_UNSUPPORTED))
def test_a_resource_the_bundled_engine_lacks_is_refused_before_any_run(
    pool: LocalPool, leo_basic: Path, tmp_path: Path, kind: str
) -> None:
    created, said = _UNSUPPORTED[kind]
    script = tmp_path / f"{kind}.script"
    script.write_text(
        leo_basic.read_text().replace("Create ReportFile RF;", f"{created}Create ReportFile RF;")
    )
    with pytest.raises(SweepConfigError) as refused:
        sweep(script, {"Sat.SMA": [7000.0]}, out=tmp_path / "s", backend=pool, progress=False)
    message = str(refused.value)
    assert said in message and "set GMAT_ROOT to its directory" in message
    assert not (tmp_path / "s").exists()


def test_a_field_of_a_frame_s_axes_is_refused_as_one_the_api_cannot_reach(
    pool: LocalPool, frames_points: Path, tmp_path: Path
) -> None:
    # The script sets RotFrame.Secondary, but GMAT keeps it on the frame's ObjectReferenced
    # axes, which the API does not reach: "unknown field" would send the user looking for a typo.
    with pytest.raises(SweepConfigError) as refused:
        sweep(
            frames_points,
            {"RotFrame.Secondary": ["Sun"]},
            out=tmp_path / "s",
            backend=pool,
            progress=False,
        )
    message = str(refused.value)
    assert "'RotFrame.Secondary': the script sets it (RotFrame.Secondary = Luna;)" in message
    assert "one script per value" in message and "unknown field" not in message
    assert not (tmp_path / "s").exists()


@pytest.fixture(scope="module")
def srp_bodyfixed(data_dir: Path) -> Path:
    return data_dir / "srp_bodyfixed.script"


INTEGRATORS = ["RungeKutta68", "PrinceDormand45", "AdamsBashforthMoulton"]


@pytest.fixture(scope="module")
def integrators(
    pool: LocalPool, srp_bodyfixed: Path, tmp_path_factory: pytest.TempPathFactory
) -> Sweep:
    grid = {
        "Prop.Type": INTEGRATORS,
        "Prop.Accuracy": [1e-9],
        "Prop.InitialStepSize": [30],
        "Prop.MinStep": [0.01],
    }
    out = tmp_path_factory.mktemp("integrators") / "s"
    return sweep(srp_bodyfixed, grid, out=out, backend=pool, progress=False)


def test_each_integrator_with_swept_step_settings_matches_the_edited_script(
    integrators: Sweep, srp_bodyfixed: Path, tmp_path: Path
) -> None:
    assert integrators.failed_run_ids == []
    final = integrators.final(name="RF")
    assert final["Sat.EarthMJ2000Eq.X"].round(9).nunique() == 3  # three integrators, three ends
    assert final["Sat.EarthMJ2000Eq.X"].tolist() == pytest.approx(
        [final["Sat.EarthMJ2000Eq.X"][0]] * 3, abs=1e-3
    )
    edits = {
        "Prop.Type": "AdamsBashforthMoulton",
        "Prop.Accuracy": "1e-09",
        "Prop.InitialStepSize": "30",
        "Prop.MinStep": "0.01",
    }
    bare = _bare_report(srp_bodyfixed, edits, "RF", tmp_path)
    pd.testing.assert_frame_equal(_run_frame(integrators, 2, "RF", bare.columns), bare)


def test_an_integrator_the_engine_lacks_is_refused_before_any_run(
    pool: LocalPool, srp_bodyfixed: Path, tmp_path: Path
) -> None:
    grid = {"Prop.Type": ["RungeKutta68", "BulirschStoer"]}
    with pytest.raises(SweepConfigError) as refused:
        sweep(srp_bodyfixed, grid, out=tmp_path / "s", backend=pool, progress=False)
    message = str(refused.value)
    assert "'Prop.Type'='BulirschStoer': GMAT cannot load the mission with this value" in message
    assert '"BulirschStoer" is an invalid value for field "Type"' in message
    assert not (tmp_path / "s").exists()


def test_swept_srp_with_point_masses_matches_the_edited_script_in_an_earth_fixed_frame(
    pool: LocalPool, srp_bodyfixed: Path, tmp_path: Path
) -> None:
    grid = {"Sat.Cr": [1.0, 2.0], "Sat.SRPArea": [50]}
    study = sweep(srp_bodyfixed, grid, out=tmp_path / "s", backend=pool, progress=False)
    assert study.failed_run_ids == []
    final = study.final(name="RF")
    assert 1e-4 < abs(final["Sat.EarthFixedCS.X"][1] - final["Sat.EarthFixedCS.X"][0]) < 1.0
    bare = _bare_report(srp_bodyfixed, {"Sat.Cr": "2", "Sat.SRPArea": "50"}, "RF", tmp_path)
    pd.testing.assert_frame_equal(_run_frame(study, 1, "RF", bare.columns), bare)
    # The ephemeris in the Earth-fixed frame starts and ends at the report's Earth-fixed state.
    eph = study.to_pandas(name="Eph", kind="ephemeris").loc[1].iloc[[0, -1]]
    rf = study.to_pandas(name="RF").loc[1].iloc[[0, -1]]
    assert abs(eph.index - rf.index).max() < pd.Timedelta("1ms")
    assert eph["X"].tolist() == pytest.approx(rf["Sat.EarthFixedCS.X"].tolist(), abs=1e-6)


def test_a_swept_epoch_in_another_time_system_matches_the_edited_script(
    pool: LocalPool, srp_bodyfixed: Path, tmp_path: Path
) -> None:
    # The script gives its epoch in UTCModJulian; the sweep gives it in A1ModJulian.
    grid = {"Sat.DateFormat": ["A1ModJulian"], "Sat.Epoch": [30001.75, 30003.1]}
    study = sweep(srp_bodyfixed, grid, out=tmp_path / "s", backend=pool, progress=False)
    assert study.failed_run_ids == []
    start = study.to_pandas(name="RF").loc[1].index[0]  # UTC
    a1 = pd.Timestamp("2000-01-01 12:00") + pd.Timedelta(days=30003.1 - 21545)  # ModJulian 21545
    assert (a1 - start).total_seconds() == pytest.approx(37.0343817, abs=1e-3)  # A1 - UTC
    edits = {"Sat.DateFormat": "A1ModJulian", "Sat.Epoch": "30003.1"}
    bare = _bare_report(srp_bodyfixed, edits, "RF", tmp_path)
    pd.testing.assert_frame_equal(_run_frame(study, 1, "RF", bare.columns), bare)


def test_an_ephemeris_format_swept_between_the_readable_ones_reads_both(
    pool: LocalPool, srp_bodyfixed: Path, tmp_path: Path
) -> None:
    grid = {"Eph.FileFormat": ["CCSDS-OEM", "STK-TimePosVel"]}
    study = sweep(srp_bodyfixed, grid, out=tmp_path / "s", backend=pool, progress=False)
    assert study.failed_run_ids == []
    eph = study.to_pandas(name="Eph", kind="ephemeris")
    oem, stk = eph.loc[0], eph.loc[1]
    assert len(oem) == len(stk) > 2
    assert stk["X"].tolist() == pytest.approx(oem["X"].tolist(), abs=1e-6)
    grid = {"Eph.FileFormat": ["CCSDS-OEM", "Code-500"]}
    with pytest.raises(SweepConfigError, match=r"'Eph.FileFormat'='Code-500': gmat-run reads only"):
        sweep(srp_bodyfixed, grid, out=tmp_path / "c", backend=pool, progress=False)


_KINDS = {
    # mission: (grid, the edits by hand giving run 1, reports)
    "stop_events": (
        {"Days.Value": [0.05, 0.11], "Alt.Value": [500.0]},
        {"Days.Value": "0.11", "Alt.Value": "500"},
        ["RF", "Ev"],
    ),
    "lvlh_loop": (
        {"Lv.Element1": [0.01, -0.03], "Lv.Element3": [0.04], "Vn.Element2": [0.002],
         "First.Value": [0], "Step.Value": [2], "Last.Value": [4]},
        {"Lv.Element1": "-0.03", "Lv.Element3": "0.04", "Vn.Element2": "0.002",
         "First": "0", "Step": "2", "Last": "4"},
        ["RF"],
    ),
    "script_event": (
        {"Gains(1,2)": [0.002, 0.005], "Scale.Value": [3], "Tag.Value": ["swept"],
         "Gains(2,3)": [900]},
        {"Gains(1,2)": "0.005", "Scale": "3", "Tag": "'swept'", "Gains(2,3)": "900"},
        ["RF", "Sum"],
    ),
}  # fmt: skip


@pytest.fixture(scope="module")
def kinds(
    pool: LocalPool, data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Sweep]:
    out = tmp_path_factory.mktemp("kinds")
    return {
        name: sweep(data_dir / f"{name}.script", grid, out=out / name, backend=pool,
                    progress=False)
        for name, (grid, _, _) in _KINDS.items()
    }  # fmt: skip


@pytest.mark.parametrize("name", sorted(_KINDS))
def test_stop_conditions_loop_burns_and_script_events_match_the_edited_script(
    kinds: dict[str, Sweep], data_dir: Path, tmp_path: Path, name: str
) -> None:
    study = kinds[name]
    _, edits, reports = _KINDS[name]
    assert study.failed_run_ids == []
    for report in reports:
        bare = _bare_report(data_dir / f"{name}.script", edits, report, tmp_path)
        swept = _run_frame(study, 1, report, bare.columns)
        # Numbers aggregate as float64, text as pandas strings: the values must be the same.
        pd.testing.assert_frame_equal(swept, bare.astype(swept.dtypes.to_dict()))
        assert not study.to_pandas(name=report).loc[0].equals(study.to_pandas(name=report).loc[1])
