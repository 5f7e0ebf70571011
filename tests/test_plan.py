"""plan: rebuilding runs from a manifest, and checking them against what it recorded."""

from __future__ import annotations

import dataclasses
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gmat_sweep import plan
from gmat_sweep.errors import SweepConfigError
from gmat_sweep.manifest import Manifest, ManifestEntry
from gmat_sweep.plan import MAX_RUNS, check_recorded, expand
from gmat_sweep.spec import RunStatus

ENGINE = "gmatpy 0.2.1 (GMAT R2026a, embedded)"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
SCRIPT = Path("/missions/leo.script")


def _entry(run_id: int, overrides: dict[str, Any]) -> ManifestEntry:
    return ManifestEntry(run_id, overrides, RunStatus.OK, {}, T0, T0, 0.0, None, None)


def _manifest(spec: dict[str, Any], run_count: int, **changes: Any) -> Manifest:
    fields: dict[str, Any] = {
        "script_sha256": "0" * 64,
        "gmat_sweep_version": "0",
        "gmat_run_version": "0",
        "gmat_install_version": ENGINE,
        "python_version": "3.12",
        "os_platform": "linux",
        "sweep_seed": None,
        "parameter_spec": spec,
        "run_count": run_count,
        "numpy_version": plan.installed_version("numpy"),
        "scipy_version": plan.installed_version("scipy"),
    }
    return Manifest(**{**fields, **changes})


GRID = plan.grid_spec({"Sat.SMA": [7000.0, 7100.0]})


def test_a_matching_manifest_passes() -> None:
    runs = expand(GRID, SCRIPT, "/out")
    manifest = _manifest(GRID, 2, entries=[_entry(1, {"Sat.SMA": 7100.0})])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_recorded(manifest, runs, engine_version=ENGINE)


def test_a_header_run_count_that_the_spec_does_not_rebuild_is_refused() -> None:
    runs = expand(GRID, SCRIPT, "/out")
    with pytest.raises(SweepConfigError, match=r"run_count=5, but its parameter_spec rebuilds 2"):
        check_recorded(_manifest(GRID, 5), runs, engine_version=ENGINE)
    with pytest.raises(SweepConfigError, match="run_count=5"):  # no opt-out for damage
        check_recorded(_manifest(GRID, 5), runs, engine_version=ENGINE, allow_version_drift=True)


@pytest.mark.parametrize("run_id", [99, -3, 2])
def test_entries_of_runs_the_sweep_does_not_have_are_refused(run_id: int) -> None:
    runs = expand(GRID, SCRIPT, "/out")
    manifest = _manifest(GRID, 2, entries=[_entry(0, {"Sat.SMA": 7000.0}), _entry(run_id, {})])
    with pytest.raises(SweepConfigError, match=rf"run_ids \[{run_id}\] that are not runs"):
        check_recorded(manifest, runs, engine_version=ENGINE)


def test_recorded_overrides_must_equal_the_rebuilt_ones_exactly() -> None:
    runs = expand(GRID, SCRIPT, "/out")
    manifest = _manifest(GRID, 2, entries=[_entry(1, {"Sat.SMA": 1234.5})])
    with pytest.raises(SweepConfigError, match=r"run 1: recorded \{\"Sat.SMA\": 1234.5\}") as e:
        check_recorded(manifest, runs, engine_version=ENGINE)
    assert "7100.0" in str(e.value) and "allow_version_drift=True" in str(e.value)
    nudged = _manifest(GRID, 2, entries=[_entry(1, {"Sat.SMA": 7100.000000000001})])
    with pytest.raises(SweepConfigError, match="other overrides"):
        check_recorded(nudged, runs, engine_version=ENGINE)
    with pytest.warns(RuntimeWarning, match="resuming anyway"):
        check_recorded(manifest, runs, engine_version=ENGINE, allow_version_drift=True)


def test_regenerated_draws_are_compared_with_the_recorded_ones() -> None:
    spec = plan.stochastic_spec("monte_carlo", {"Sat.SMA": ("normal", 7000.0, 10.0)}, 3, 42)
    runs = expand(spec, SCRIPT, "/out")
    honest = [_entry(r.run_id, dict(r.overrides)) for r in runs]
    check_recorded(_manifest(spec, 3, entries=honest), runs, engine_version=ENGINE)
    forged = [*honest[:2], dataclasses.replace(honest[2], overrides={"Sat.SMA": 6995.72})]
    with pytest.raises(SweepConfigError, match="run 2: recorded"):
        check_recorded(_manifest(spec, 3, entries=forged), runs, engine_version=ENGINE)


def test_engine_numpy_and_scipy_versions_are_compared() -> None:
    spec = plan.stochastic_spec("monte_carlo", {"Sat.SMA": ("normal", 7000.0, 10.0)}, 2, 1)
    runs = expand(spec, SCRIPT, "/out")
    with pytest.raises(SweepConfigError, match="the GMAT engine is other 1, but the sweep ran"):
        check_recorded(_manifest(spec, 2), runs, engine_version="other 1")
    for name in ("numpy", "scipy"):
        old = _manifest(spec, 2, **{f"{name}_version": "1.0.0"})
        with pytest.raises(SweepConfigError, match=f"{name} is .*, but the sweep ran with 1.0.0"):
            check_recorded(old, runs, engine_version=ENGINE)
        with pytest.warns(RuntimeWarning, match=name):
            check_recorded(old, runs, engine_version=ENGINE, allow_version_drift=True)
    grid_runs = expand(GRID, SCRIPT, "/out")  # a grid draws nothing: numpy does not matter
    check_recorded(_manifest(GRID, 2, numpy_version="1.0.0"), grid_runs, engine_version=ENGINE)
    unknown = _manifest(spec, 2, numpy_version="", scipy_version="")  # an older writer
    check_recorded(unknown, runs, engine_version=ENGINE)


@pytest.mark.parametrize(
    ("spec", "what"),
    [
        ({"_kind": "monte_carlo", "n": MAX_RUNS + 1, "seed": 1, "perturb": {}}, "n"),
        ({"_kind": "latin_hypercube", "n": 10**15, "seed": 1, "perturb": {}}, "n"),
        ({"_kind": "grid", "grid": {f"A{i}.Value": list(range(10)) for i in range(8)}}, "grid"),
    ],
)
def test_sizes_read_from_a_manifest_are_capped_before_anything_is_built(
    spec: dict[str, Any], what: str
) -> None:
    with pytest.raises(SweepConfigError, match=rf"runs \(.*{what}.*\), more than the 10000000"):
        expand(spec, SCRIPT, "/out")
