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

import pytest

from gmat_sweep import sweep
from gmat_sweep.backends.local import LocalPool


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
    burned = 600.0 * (1.0 - math.exp(-100.0 / (300.0 * 9.81)))  # 0.1 km/s at Isp 300 s
    assert final.loc[1, "Sat.Tank.FuelMass"] == pytest.approx(100.0 - burned, rel=1e-12)
