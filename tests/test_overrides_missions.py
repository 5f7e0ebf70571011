"""Force-model, propagator and integrator overrides on other missions equal hand-edited scripts.

Missions: ``two_props`` (two spacecraft, each with its own propagator and force
model; the second force model is created after the propagator naming it) and
``lunar_fm`` (a Luna-centred force model), both saved as GMAT's GUI saves
scripts. Each override is run through the worker a sweep's hosts use and
compared bit for bit with the script edited by hand.
"""

from __future__ import annotations

from itertools import count
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from bare_gmat import bare_last_row

from gmat_sweep import LocalPool, latin_hypercube, monte_carlo, sweep
from gmat_sweep.errors import SweepConfigError
from gmat_sweep.script import script_value
from gmat_sweep.spec import RunSpec, RunStatus
from gmat_sweep.worker import run_one

TWO = "two_props.script"
LUNAR = "lunar_fm.script"
LEO_FM = "LeoProp_ForceModel"
ABM_FM = "AbmProp_ForceModel"
LUNAR_FM = "LunarProp_ForceModel"
_runs = count()


def _report(script: Path, overrides: dict[str, Any], tmp_path: Path) -> pd.DataFrame:
    """The one report of ``script`` run with ``overrides`` by the worker."""
    run_id = next(_runs)
    outcome = run_one(RunSpec(script, overrides, tmp_path / f"run{run_id}", run_id, None))
    assert outcome.status is RunStatus.OK, outcome.stderr
    (key,) = [key for key in outcome.output_paths if key.startswith("report__")]
    return pd.read_parquet(outcome.output_paths[key])


def _edited(script: Path, tmp_path: Path, old: str, new: str) -> Path:
    """A copy of ``script`` beside it in ``tmp_path`` with ``old`` replaced by ``new`` by hand."""
    text = script.read_text()
    assert text.count(old) == 1, old
    target = tmp_path / f"edited-{script.name}"
    target.write_text(text.replace(old, new))
    return target


@pytest.fixture(scope="module")
def plain(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, pd.DataFrame]:
    """Each mission's report with no override."""
    tmp = tmp_path_factory.mktemp("plain")
    return {name: _report(data_dir / name, {}, tmp) for name in (TWO, LUNAR)}


def _line(path: str, value: str) -> str:
    return f"GMAT {path} = {value};"


CASES: dict[str, tuple[str, str, Any, str]] = {
    # id: (mission, path, value, the script's own value as written)
    # Integrator settings (live: the Propagate command copies the propagator at run start).
    "accuracy": (TWO, "LeoProp.Accuracy", 1e-6, "1e-11"),
    "initial-step": (TWO, "LeoProp.InitialStepSize", 5.0, "60"),
    "max-step": (TWO, "LeoProp.MaxStep", 30.0, "120"),
    "abm-max-step": (TWO, "AbmProp.MaxStep", 20.0, "60"),
    "abm-initial-step": (TWO, "AbmProp.InitialStepSize", 10.0, "30"),
    "lunar-accuracy": (LUNAR, "LunarProp.Accuracy", 1e-7, "1e-10"),
    # Integrator types (load-time: the engine drops an API write of Type).
    **{kind: (TWO, "LeoProp.Type", kind, "RungeKutta89")
       for kind in ("PrinceDormand78", "PrinceDormand45", "RungeKutta68", "RungeKutta56")},
    "lunar-rk89": (LUNAR, "LunarProp.Type", "RungeKutta89", "PrinceDormand45"),
    # Force models (load-time: each propagator holds a parse-time clone of its force model).
    "f107": (TWO, f"{LEO_FM}.Drag.F107", 250.0, "150"),
    "f107a": (TWO, f"{LEO_FM}.Drag.F107A", 90.0, "150"),
    "kp": (TWO, f"{LEO_FM}.Drag.MagneticIndex", 7.0, "3"),
    "msise90": (TWO, f"{LEO_FM}.Drag.AtmosphereModel", "MSISE90", "JacchiaRoberts"),
    "srp-flux": (TWO, f"{LEO_FM}.SRP.Flux", 1400.0, "1367"),
    "tides": (TWO, f"{LEO_FM}.GravityField.Earth.TideModel", "SolidAndPole", "'None'"),
    "relativity": (TWO, f"{LEO_FM}.RelativisticCorrection", "On", "Off"),
    "fixed-step": (TWO, f"{LEO_FM}.ErrorControl", "None", "RSSStep"),  # steps of InitialStepSize
    "late-fm-drag": (TWO, f"{ABM_FM}.Drag.AtmosphereModel", "JacchiaRoberts", "MSISE90"),
    "late-fm-degree": (TWO, f"{ABM_FM}.GravityField.Earth.Degree", 8, "2"),
    "other-fm": (TWO, "AbmProp.FM", LEO_FM, ABM_FM),
    "lunar-points": (LUNAR, f"{LUNAR_FM}.PointMasses", ["Luna", "Earth"], "{Luna, Earth, Sun}"),
    "lunar-central-body": (LUNAR, f"{LUNAR_FM}.CentralBody", "Earth", "Luna"),
    "lunar-srp-flux": (LUNAR, f"{LUNAR_FM}.SRP.Flux", 1400.0, "1367"),
    "lunar-relativity": (LUNAR, f"{LUNAR_FM}.RelativisticCorrection", "On", "Off"),
    "lunar-error-control": (LUNAR, f"{LUNAR_FM}.ErrorControl", "LargestState", "RSSStep"),
}  # fmt: skip


@pytest.mark.parametrize(("mission", "path", "value", "own"), CASES.values(), ids=CASES)
def test_override_equals_the_hand_edited_script(
    data_dir: Path,
    tmp_path: Path,
    plain: dict[str, pd.DataFrame],
    mission: str,
    path: str,
    value: Any,
    own: str,
) -> None:
    script = data_dir / mission
    swept = _report(script, {path: value}, tmp_path)
    edited = _edited(script, tmp_path, _line(path, own), _line(path, script_value(value)))
    pd.testing.assert_frame_equal(swept, _report(edited, {}, tmp_path), check_exact=True)
    assert not swept.equals(plain[mission]), f"{path}={value!r} changed nothing"


def test_srp_switched_off_drops_its_settings_as_a_hand_edit_does(
    data_dir: Path, tmp_path: Path, plain: dict[str, pd.DataFrame]
) -> None:
    script = data_dir / LUNAR
    swept = _report(script, {f"{LUNAR_FM}.SRP": "Off"}, tmp_path)
    text = script.read_text().replace(
        _line(f"{LUNAR_FM}.SRP", "On"), _line(f"{LUNAR_FM}.SRP", "Off")
    )
    edited = tmp_path / "srp-off.script"
    edited.write_text("".join(line for line in text.splitlines(True) if ".SRP." not in line))
    pd.testing.assert_frame_equal(swept, _report(edited, {}, tmp_path), check_exact=True)
    assert not swept.equals(plain[LUNAR])


LOW = ["Low.EarthMJ2000Eq.X", "Low.EarthMJ2000Eq.Y", "Low.EarthMJ2000Eq.Z", "Low.Earth.SMA"]
HIGH = ["High.EarthMJ2000Eq.X", "High.EarthMJ2000Eq.Y", "High.EarthMJ2000Eq.Z", "High.Earth.SMA"]


@pytest.mark.parametrize(
    ("path", "moved", "kept"),
    [(f"{ABM_FM}.Drag.F107", HIGH, LOW), (f"{LEO_FM}.Drag.F107", LOW, HIGH)],
    ids=["abm-fm", "leo-fm"],
)
def test_overriding_one_force_model_leaves_the_other_propagator_alone(
    data_dir: Path,
    tmp_path: Path,
    plain: dict[str, pd.DataFrame],
    path: str,
    moved: list[str],
    kept: list[str],
) -> None:
    swept = _report(data_dir / TWO, {path: 300.0}, tmp_path)
    pd.testing.assert_frame_equal(swept[kept], plain[TWO][kept], check_exact=True)
    assert not swept[moved].equals(plain[TWO][moved])


@pytest.mark.parametrize(
    ("path", "value", "rule"),
    [
        # ABM's own settings (LowerError, TargetError) do not exist on RungeKutta89.
        ("AbmProp.Type", "RungeKutta89", "GMAT cannot load the mission with this value"),
        # This engine names ABM's settings LowerError and TargetError.
        ("AbmProp.MinIntegrationError", 1e-12, "unknown field 'MinIntegrationError'"),
        (f"{LUNAR_FM}.SRP.Flux", 1000.0, "is not an allowed value"),
        # Jacchia-Roberts' space-weather settings are not Exponential's.
        (f"{LEO_FM}.Drag.AtmosphereModel", "Exponential", "GMAT cannot load the mission"),
    ],
)
def test_what_the_engine_cannot_take_is_refused_before_any_run(
    pool: LocalPool, data_dir: Path, tmp_path: Path, path: str, value: Any, rule: str
) -> None:
    mission = data_dir / (LUNAR if path.startswith(LUNAR_FM) else TWO)
    out = tmp_path / "s"
    with pytest.raises(SweepConfigError, match=rf"{path}.*{rule}"):
        sweep(mission, grid={path: [value]}, out=out, backend=pool, progress=False)
    assert not out.exists()


PHYSICAL = {
    "Low.Cd": ("uniform", 1.8, 2.6),
    "Low.DragArea": ("uniform", 2.0, 6.0),
    "Low.Cr": ("uniform", 1.0, 2.0),
    "Low.SRPArea": ("uniform", 2.0, 9.0),
    "Low.DryMass": ("uniform", 80.0, 300.0),
}


def _set(text: str, path: str, value: str) -> str:
    """Script ``text`` with ``path`` set to ``value`` by hand: its own line, or one added."""
    own = [line for line in text.splitlines() if line.startswith(f"GMAT {path} = ")]
    if own:
        return text.replace(own[0], _line(path, value))
    return text.replace("BeginMissionSequence;", f"{_line(path, value)}\nBeginMissionSequence;")


def _hand_edited(script: Path, tmp_path: Path, values: dict[str, float]) -> Path:
    """``script`` with each of ``values`` written over its own assignment by hand."""
    text = script.read_text()
    for path, value in values.items():
        text = _set(text, path, repr(value))
    target = tmp_path / f"hand-{next(_runs)}.script"
    target.write_text(text)
    return target


def test_monte_carlo_draws_of_drag_and_srp_properties_equal_hand_edited_scripts(
    pool: LocalPool, data_dir: Path, tmp_path: Path
) -> None:
    script = data_dir / TWO
    study = monte_carlo(
        script, n=2, perturb=PHYSICAL, seed=7, out=tmp_path / "s", backend=pool, progress=False
    )
    frame = study.to_pandas()
    for run_id, spec in enumerate(study.runs):
        expected = _report(_hand_edited(script, tmp_path, dict(spec.overrides)), {}, tmp_path)
        ran = frame.xs(run_id, level="run_id").reset_index()
        pd.testing.assert_frame_equal(
            ran[LOW + HIGH], expected[LOW + HIGH], check_exact=True, check_dtype=False
        )


def test_latin_hypercube_of_load_time_and_live_fields_equals_bare_gmat_runs(
    pool: LocalPool, data_dir: Path, tmp_path: Path
) -> None:
    script = data_dir / TWO
    perturb = {
        f"{LEO_FM}.Drag.F107": ("uniform", 70.0, 250.0),
        "LeoProp.InitialStepSize": ("uniform", 10.0, 60.0),
        "Low.Cd": ("uniform", 1.8, 2.6),
        "Earth.Mu": ("uniform", 398500.0, 398700.0),  # Low's elements are converted through it
    }
    study = latin_hypercube(
        script, n=2, perturb=perturb, seed=3, out=tmp_path / "s", backend=pool, progress=False
    )
    last = study.to_pandas().groupby(level="run_id").tail(1).droplevel("time")
    assert last["Low.Earth.SMA"].nunique() == 2
    for run_id, spec in enumerate(study.runs):
        edited = _hand_edited(script, tmp_path, dict(spec.overrides))
        bare = bare_last_row(edited, "Both", tmp_path)
        assert last.loc[run_id, LOW].astype(float).tolist() == bare[LOW].tolist()


@pytest.mark.parametrize(
    ("mission", "path", "value"),
    [
        (TWO, "Earth.Mu", 398000.0),  # Low's Keplerian elements become a state through it
        (LUNAR, "Luna.Mu", 4900.0),
        (LUNAR, "LunaInertial.Origin", "Earth"),  # the frame Orbiter's elements are given in
    ],
)
def test_a_field_the_scripts_state_is_converted_through_equals_the_hand_edited_script(
    data_dir: Path,
    tmp_path: Path,
    plain: dict[str, pd.DataFrame],
    mission: str,
    path: str,
    value: Any,
) -> None:
    # GMAT converts a spacecraft's elements to its internal state when the script
    # is loaded: an API write afterwards would leave the state of the old value.
    script = data_dir / mission
    swept = _report(script, {path: value}, tmp_path)
    edited = tmp_path / f"edited-{mission}"
    edited.write_text(_set(script.read_text(), path, script_value(value)))
    pd.testing.assert_frame_equal(swept, _report(edited, {}, tmp_path), check_exact=True)
    assert not swept.equals(plain[mission])


def test_an_added_setting_that_would_reset_the_scripts_own_is_refused(
    pool: LocalPool, leo_basic: Path, tmp_path: Path
) -> None:
    # With no Prop.Type line the sweep adds one after Prop's settings, and GMAT's new
    # integrator drops Prop.MaxStep = 120 for its default: a run of another mission.
    script = tmp_path / "no_type.script"
    script.write_text(leo_basic.read_text().replace("Prop.Type = RungeKutta89;\n", ""))
    out = tmp_path / "s"
    with pytest.raises(SweepConfigError, match=r"'Prop.Type'.*Prop\.MaxStep.*120.*2700"):
        sweep(
            script, grid={"Prop.Type": ["PrinceDormand78"]}, out=out, backend=pool, progress=False
        )
    assert not out.exists()
