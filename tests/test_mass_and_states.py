"""Missions with propellant bookkeeping and orbit states of less common types.

``impulsive_tank`` fires an ImpulsiveBurn in MJ2000Eq axes that draws its
propellant from a ChemicalTank (``DecrementMass = true``), coasts to apoapsis
and writes a ReportFile filled only by ``Report`` commands. ``state_types``
gives one spacecraft in SphericalAZFPA elements, a hyperbolic flyby in
OutgoingAsymptote elements and a MEO in Delaunay variables, each coasting to
its own stopping condition, one of them an altitude held in a Variable.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from bare_gmat import bare_last_row

from gmat_sweep import latin_hypercube, monte_carlo, open_sweep, sweep
from gmat_sweep.backends.local import LocalPool
from gmat_sweep.cli import main


def _burned(isp: float, dv: float = 0.1, mass: float = 600.0) -> float:
    """Propellant (kg) an impulsive ``dv`` (km/s) burns at ``isp`` (s): the rocket equation."""
    return mass * (1.0 - math.exp(-dv * 1000.0 / (isp * 9.81)))


@pytest.fixture(scope="module")
def impulsive_tank(data_dir: Path) -> Path:
    return data_dir / "impulsive_tank.script"


@pytest.fixture(scope="module")
def state_types(data_dir: Path) -> Path:
    return data_dir / "state_types.script"


def test_a_tank_too_small_for_its_fuel_fails_its_own_run_only(
    impulsive_tank: Path, tmp_path: Path
) -> None:
    # GMAT accepts the write, refuses to run with it, and refuses to copy the tank back
    # to its loaded state: the host must not die, and the next run on it must be clean.
    with LocalPool(workers=1) as pool:
        study = sweep(
            impulsive_tank, {"Tank.Volume": [0.001, 0.75]}, out=tmp_path / "s", backend=pool,
            progress=False,
        )  # fmt: skip
        # The check before the runs writes the value and restores the tank too.
        alone = sweep(
            impulsive_tank, {"Tank.Volume": [0.001]}, out=tmp_path / "alone", backend=pool,
            progress=False,
        )  # fmt: skip
    assert alone.failed_run_ids == [0]
    assert study.failed_run_ids == [0]
    failed = next(entry for entry in study.manifest.entries if entry.run_id == 0)
    assert "Fuel volume exceeds tank capacity" in (failed.stderr or "")
    final = study.final()
    assert final.loc[1, "Sat.Tank.FuelMass"] == pytest.approx(100.0 - _burned(300.0), rel=1e-12)


def test_an_impulsive_burn_spends_the_swept_tank_at_the_swept_isp(
    pool: LocalPool, impulsive_tank: Path, tmp_path: Path
) -> None:
    # 5 kg cannot pay for 0.1 km/s: GMAT stops the run when the tank would go negative.
    grid = {"Burn.Isp": [250.0, 300.0], "Tank.FuelMass": [5.0, 100.0]}
    study = sweep(impulsive_tank, grid, out=tmp_path / "s", backend=pool, progress=False)
    assert sorted(study.failed_run_ids) == [0, 2]  # in arrival order: two hosts race
    entries = {entry.run_id: entry for entry in study.manifest.entries}
    assert 'for field "FuelMass" on object "Tank" is not an allowed value' in str(entries[0].stderr)
    masses = study.to_pandas()  # the ReportFile has no Add list: two Report commands
    assert masses.groupby(level="run_id").size().tolist() == [1, 2, 1, 2]
    assert masses["Sat.TotalMass"].tolist()[1::3] == [600.0, 600.0]
    final = study.final()
    spent = 100.0 - final["Sat.Tank.FuelMass"][[1, 3]]
    assert spent.tolist() == pytest.approx([_burned(250.0), _burned(300.0)], rel=1e-12)
    assert final["Sat.TotalMass"][[1, 3]].tolist() == pytest.approx((600.0 - spent).tolist())
    assert final["Sat.TotalMass"].isna().tolist() == [True, False, True, False]


def test_a_burn_swept_into_local_axes_from_the_cli_matches_the_edited_script(
    impulsive_tank: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Element2 = 0.1 is along MJ2000 Y in the script; in VNB axes it is out of plane.
    assert main(["fields", str(impulsive_tank), "Burn", "--match", "Isp"]) == 0
    assert "Burn.Isp" in capsys.readouterr().out
    out = tmp_path / "s"
    assert main([
        "run", str(impulsive_tank), "--param", "Burn.CoordinateSystem=Local",
        "--param", "Burn.Axes=VNB,LVLH", "--out", str(out), "--no-progress", "-q",
    ]) == 0  # fmt: skip
    csv = tmp_path / "masses.csv"
    assert main(["export", str(out), "--to", str(csv), "--name", "Masses"]) == 0
    assert len(pd.read_csv(csv)) == 4
    final = open_sweep(out).final()
    vnb = tmp_path / "vnb.script"
    vnb.write_text(
        impulsive_tank.read_text().replace(
            "GMAT Burn.CoordinateSystem = EarthMJ2000Eq;",
            "GMAT Burn.CoordinateSystem = Local;\nGMAT Burn.Origin = Earth;\nGMAT Burn.Axes = VNB;",
        )
    )
    bare = bare_last_row(vnb, "Masses", tmp_path)
    assert final.loc[0, bare.index].astype(float).tolist() == bare.tolist()  # bit for bit
    assert final["Raise"][0] < 20.0 < final["Raise"][1]  # a plane change raises little


def test_elements_of_uncommon_state_types_are_swept_and_replayed(
    pool: LocalPool, state_types: Path, tmp_path: Path
) -> None:
    # Delaunay G may not exceed L: raising both needs L written first (sorted order is G, L).
    grid = {
        "Flyby.OutgoingC3Energy": [3.0, 20.0], "Meo.DelaunayG": [105000.0],
        "Meo.DelaunayL": [110000.0], "Probe.RMagnitude": [6700.0], "StopAlt.Value": [20000.0],
    }  # fmt: skip
    study = sweep(state_types, grid, out=tmp_path / "s", backend=pool, progress=False)
    assert study.failed_run_ids == []
    ends = study.to_pandas(name="Ends")
    by_run = ends.droplevel("time").groupby(level="run_id")
    first, last = by_run.head(1), by_run.tail(1)
    assert first["Probe.Earth.RMAG"].tolist() == pytest.approx([6700.0] * 2, rel=1e-12)
    assert first["Flyby.Earth.C3Energy"].tolist() == pytest.approx([3.0, 20.0], rel=1e-10)
    assert first["Meo.Earth.SMA"].tolist() == pytest.approx([110000.0**2 / 398600.4415] * 2)
    assert first["Meo.Earth.ECC"][0] == pytest.approx(math.sqrt(1 - (105000 / 110000) ** 2))
    assert last["Flyby.Earth.Altitude"].tolist() == pytest.approx([20000.0] * 2, abs=1e-4)
    replay = tmp_path / "run1.script"
    replay.write_text(study.script(1))
    bare = bare_last_row(replay, "Ends", tmp_path)
    assert last.loc[1, bare.index].astype(float).tolist() == bare.tolist()  # bit for bit


def test_uncommon_state_types_are_dispersed(
    pool: LocalPool, state_types: Path, tmp_path: Path
) -> None:
    perturb = {"Probe.FPA": ("uniform", 80.0, 95.0), "Flyby.OutgoingRadPer": ("normal", 7000, 50)}
    drawn = monte_carlo(state_types, n=2, perturb=perturb, seed=5, out=tmp_path / "mc",
                        backend=pool, progress=False)  # fmt: skip
    tilts = {"Meo.DelaunayH": ("uniform", -100000.0, 100000.0)}
    spread = latin_hypercube(state_types, n=2, perturb=tilts, seed=6, out=tmp_path / "lhs",
                             backend=pool, progress=False)  # fmt: skip
    assert drawn.failed_run_ids == [] and spread.failed_run_ids == []
    first = drawn.to_dataframe(name="Ends").compute().groupby(level="run_id").head(1)
    assert first["Probe.EarthMJ2000Eq.FPA"].tolist() == pytest.approx(first["Probe.FPA"].tolist())
    assert first["Flyby.Earth.RMAG"].tolist() == pytest.approx(
        first["Flyby.OutgoingRadPer"].tolist()  # TA = 0: the flyby starts at periapsis
    )
    final = spread.final(name="Ends")
    inclination = final["Meo.DelaunayH"].map(lambda h: math.degrees(math.acos(h / 102800.0)))
    assert final["Meo.EarthMJ2000Eq.INC"].tolist() == pytest.approx(inclination.tolist())


def test_brouwer_mean_elements_are_swept(leo_basic: Path, tmp_path: Path) -> None:
    # GMAT turns mean elements into its Cartesian state by iteration: they read back to
    # about 1e-11 (BrouwerMeanShort) and 1e-8 (BrouwerMeanLong) relative, 1e-4 deg.
    nominal = "Sat.DisplayStateType = Keplerian;"
    studies = []
    with LocalPool(workers=1) as pool:
        for kind, grid in (
            ("Short", {"Sat.BrouwerShortSMA": [6800.0, 7000.0], "Sat.BrouwerShortECC": [0.01]}),
            ("Long", {"Sat.BrouwerLongSMA": [6800.0], "Sat.BrouwerLongMA": [10.0, 200.0]}),
        ):
            mission = tmp_path / f"brouwer_{kind.lower()}.script"
            mission.write_text(
                leo_basic.read_text().replace(
                    nominal, f"{nominal}\nSat.DisplayStateType = BrouwerMean{kind};"
                )
            )
            study = sweep(mission, grid, out=tmp_path / kind, backend=pool, progress=False)
            studies.append(study)
    assert [study.failed_run_ids for study in studies] == [[], []]
    short, long = (study.to_pandas().groupby(level="run_id").head(1) for study in studies)
    assert short["Sat.Earth.SMA"].tolist() == pytest.approx([6800.0, 7000.0], abs=15.0)
    assert long["Sat.Earth.SMA"].tolist() == pytest.approx([6800.0] * 2, abs=15.0)


def test_a_date_format_sets_the_time_scale_of_the_epoch_after_it(
    impulsive_tank: Path, tmp_path: Path
) -> None:
    # As in the script, the Epoch that follows is read on the swept scale (TT = UTC + 69.184
    # s); written after the load, DateFormat would only re-express the same instant.
    # A ModJulian format needs an epoch of its own: the script's Gregorian one does not parse.
    scales = {"Sat.DateFormat": ["UTCGregorian", "TTGregorian"]}
    days = {"Sat.DateFormat": ["UTCModJulian"], "Sat.Epoch": [29000.5]}
    with LocalPool(workers=1) as pool:
        study = sweep(impulsive_tank, scales, out=tmp_path / "s", backend=pool, progress=False)
        modjulian = sweep(impulsive_tank, days, out=tmp_path / "d", backend=pool, progress=False)
    assert study.failed_run_ids == [] and modjulian.failed_run_ids == []
    starts = study.to_pandas().groupby(level="run_id").head(1)["Sat.UTCGregorian"]
    assert starts.tolist() == [pd.Timestamp("2026-06-01"), pd.Timestamp("2026-05-31 23:58:50.816")]
    start = modjulian.to_pandas()["Sat.UTCGregorian"].iloc[0]
    assert start == pd.Timestamp("1941-01-05 12:00") + pd.Timedelta(days=29000.5)
    replay = study.script(1)
    assert replay.index("Sat.DateFormat = TTGregorian;") < replay.index("Sat.Epoch = ")


def test_an_eccentric_orbit_starts_at_its_periapsis_or_apoapsis(
    pool: LocalPool, leo_basic: Path, tmp_path: Path
) -> None:
    # GMAT derives TA from the Cartesian state with an arccosine, which loses half its
    # digits at 0 and 180 deg: a GTO's TA = 0 reads back 359.9999988.
    grid = {"Sat.ECC": [0.73], "Sat.SMA": [24400.0], "Sat.TA": [0.0, 180.0]}
    study = sweep(leo_basic, grid, out=tmp_path / "s", backend=pool, progress=False)
    assert study.failed_run_ids == []
    first = study.to_pandas().groupby(level="run_id").head(1)
    radius = first[["Sat.EarthMJ2000Eq.X", "Sat.EarthMJ2000Eq.Y", "Sat.EarthMJ2000Eq.Z"]] ** 2
    assert (radius.sum(axis=1) ** 0.5).tolist() == pytest.approx([24400 * 0.27, 24400 * 1.73])
