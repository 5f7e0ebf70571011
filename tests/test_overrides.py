"""Every override takes effect or is refused: load-time rendering, read-back, refusals, replay."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from gmat_sweep import LocalPool, sweep
from gmat_sweep.errors import SweepConfigError
from gmat_sweep.manifest import Manifest
from gmat_sweep.script import (
    canonical_script_sha256,
    file_outputs,
    overwritten_values,
    render_script,
    resources,
)
from gmat_sweep.spec import RunSpec, RunStatus
from gmat_sweep.worker import LIVE, LOAD_TIME, _classify, _mission_for, check_fields, run_one

COLUMN = "Sat.Earth.SMA"


def _edited(leo_basic: Path, tmp_path: Path, name: str, old: str, new: str) -> Path:
    """A copy of leo_basic with one line edited by hand."""
    text = leo_basic.read_text()
    assert old in text
    target = tmp_path / f"{name}.script"
    target.write_text(text.replace(old, new))
    return target


def _frame(script: Path, out: Path, pool: LocalPool, **grid: list[Any]) -> pd.DataFrame:
    grid = grid or {"Sat.Cd": [2.2]}
    return sweep(script, grid=grid, backend=pool, out=out, progress=False).to_pandas()


@pytest.fixture(scope="module")
def plain(
    leo_basic: Path, pool: LocalPool, tmp_path_factory: pytest.TempPathFactory
) -> pd.DataFrame:
    """The unedited mission's frame, which every load-time case's default run must equal."""
    return _frame(leo_basic, tmp_path_factory.mktemp("plain"), pool)


def _run_frame(frame: pd.DataFrame, run_id: int) -> pd.DataFrame:
    return frame.xs(run_id, level="run_id").drop(columns=list(_parameter_columns(frame)))


def _parameter_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c.startswith(("FM.", "Prop.", "Sat.Cd"))]


CASES = [
    pytest.param(
        "FM.GravityField.Earth.Degree",
        [2, 4],
        "FM.GravityField.Earth.Degree = 4;",
        "FM.GravityField.Earth.Degree = 2;",
        id="degree",
    ),
    pytest.param(
        "FM.GravityField.Earth.Order",
        [0, 4],
        "FM.GravityField.Earth.Order = 4;",
        "FM.GravityField.Earth.Order = 0;",
        id="order",
    ),
    pytest.param(
        "FM.GravityField.Earth.PotentialFile",
        ["JGM3.cof", "JGM2.cof"],
        "FM.GravityField.Earth.PotentialFile = 'JGM2.cof';",
        "FM.GravityField.Earth.PotentialFile = 'JGM3.cof';",
        id="potential-file",
    ),
    pytest.param("FM.SRP", ["Off", "On"], "FM.SRP = On;", "FM.SRP = Off;", id="srp"),
    pytest.param(
        "FM.Drag.AtmosphereModel",
        ["None", "Exponential"],
        "FM.Drag.AtmosphereModel = Exponential;",
        "FM.Drag.AtmosphereModel = None;",
        id="drag",
    ),
    pytest.param(
        "FM.PointMasses",
        [["Luna", "Sun"], []],
        "FM.SRP = On;",
        "FM.SRP = On;\nFM.PointMasses = {Luna, Sun};",
        id="point-masses",
    ),
    pytest.param(
        "Prop.Type",
        ["PrinceDormand78", "RungeKutta89"],
        "Prop.Type = RungeKutta89;",
        "Prop.Type = PrinceDormand78;",
        id="integrator",
    ),
]


@pytest.mark.parametrize(("path", "values", "old", "new"), CASES)
def test_load_time_override_equals_the_hand_edited_script(
    leo_basic: Path,
    tmp_path: Path,
    pool: LocalPool,
    plain: pd.DataFrame,
    path: str,
    values: list[Any],
    old: str,
    new: str,
) -> None:
    swept = _frame(leo_basic, tmp_path / "swept", pool, **{path: values})
    edited = _frame(_edited(leo_basic, tmp_path, "edited", old, new), tmp_path / "edited", pool)
    changed, default = _run_frame(swept, 0), _run_frame(swept, 1)
    pd.testing.assert_frame_equal(changed, _run_frame(edited, 0), check_exact=True)
    pd.testing.assert_frame_equal(default, _run_frame(plain, 0), check_exact=True)
    assert not changed.equals(default), f"{path}={values[0]!r} changed nothing"


def test_gravity_degree_sweep_from_the_issue_shows_different_results(
    leo_basic: Path, tmp_path: Path
) -> None:
    result = sweep(
        leo_basic,
        grid={"FM.GravityField.Earth.Degree": [2, 4]},
        out=tmp_path / "s",
        progress=False,
    )
    final = result.to_pandas().groupby(level="run_id")[COLUMN].last()
    assert final[0] != final[1]
    entries = [Manifest.load(tmp_path / "s" / "manifest.jsonl").entry_for(i) for i in (0, 1)]
    assert all(e is not None and e.script_sha256 for e in entries)
    assert entries[0].script_sha256 != entries[1].script_sha256  # type: ignore[union-attr]


def test_mixed_load_time_and_live_grid_matches_edited_scripts(
    leo_basic: Path, tmp_path: Path, pool: LocalPool
) -> None:
    grid = {"FM.GravityField.Earth.Degree": [2, 4], "Sat.Cd": [2.2, 3.0]}
    swept = sweep(leo_basic, grid=grid, backend=pool, out=tmp_path / "s", progress=False)
    frame = swept.to_pandas()
    edited = _edited(
        leo_basic,
        tmp_path,
        "deg2",
        "FM.GravityField.Earth.Degree = 4;",
        "FM.GravityField.Earth.Degree = 2;",
    )
    expected = _frame(edited, tmp_path / "e", pool, **{"Sat.Cd": [2.2, 3.0]})
    for run_id, spec in enumerate(swept.runs):
        if spec.overrides["FM.GravityField.Earth.Degree"] == 2:
            other = 0 if spec.overrides["Sat.Cd"] == 2.2 else 1
            pd.testing.assert_frame_equal(
                _run_frame(frame, run_id), _run_frame(expected, other), check_exact=True
            )
    shas = {swept.manifest.entry_for(i).script_sha256 for i in range(4)}  # type: ignore[union-attr]
    assert len(shas) == 2  # one rendered text per degree, shared by both Cd values


def test_classification_comes_from_the_engine(leo_basic: Path, tmp_path: Path) -> None:
    loaded = _mission_for(leo_basic, canonical_script_sha256(leo_basic), tmp_path / "load.log")
    assert _classify(loaded, "FM.GravityField.Earth.Degree") == LOAD_TIME  # Prop clones FM
    assert _classify(loaded, "Prop.FM") == LOAD_TIME  # names the clone Prop holds
    assert _classify(loaded, "FM.SRP") == LOAD_TIME  # On/Off: the API cannot write it
    assert _classify(loaded, "Sat.Cd") == LIVE
    assert _classify(loaded, "Prop.MaxStep") == LIVE


def test_filename_override_is_refused_before_any_run(leo_basic: Path, tmp_path: Path) -> None:
    out = tmp_path / "s"
    with pytest.raises(SweepConfigError, match=r"RF\.Filename.*names the file a ReportFile"):
        sweep(leo_basic, grid={"RF.Filename": ["elsewhere.txt"]}, out=out, progress=False)
    assert not out.exists()


def test_a_solvers_report_file_override_is_refused(data_dir: Path, tmp_path: Path) -> None:
    # The solver writes its progress report there: an absolute path would land
    # outside the sweep, where no run directory contains it.
    escape = tmp_path / "escaped.data"
    with pytest.raises(
        SweepConfigError, match=r"DC\.ReportFile.*names the file a DifferentialCorrector writes"
    ):
        sweep(
            data_dir / "hohmann_target.script",
            grid={"DC.ReportFile": [str(escape)]},
            out=tmp_path / "s",
            progress=False,
        )
    assert not escape.exists() and not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    ("path", "value", "rule"),
    [
        ("Sat.Cd", float("nan"), "finite number"),
        ("Sat.Cd", "2.2", "finite number"),
        ("Sat.Cd", [2.2], "finite number"),
        ("FM.GravityField.Earth.Degree", 2.5, "whole number"),
        ("FM.SRP", True, "'On' or 'Off'"),
        ("FM.PointMasses", [["Luna"]], "flat list of strings"),
        ("Prop.Type", {"a": 1}, "pass a string"),
    ],
)
def test_values_are_checked_against_the_field_type(
    leo_basic: Path, tmp_path: Path, path: str, value: Any, rule: str
) -> None:
    (problem,) = check_fields(leo_basic, {path: [value]})
    assert path in problem and repr(value) in problem and rule in problem


def test_read_back_mismatch_fails_the_run(leo_basic: Path, tmp_path: Path) -> None:
    # The engine keeps |SMA| of an elliptical orbit: -20000 reads back as 20000.
    spec = RunSpec(leo_basic, {"Sat.SMA": -20000.0}, tmp_path / "run", 0, None)
    outcome = run_one(spec)
    assert outcome.status is RunStatus.FAILED
    assert outcome.stderr is not None
    first = outcome.stderr.splitlines()[0]
    assert "OverrideNotAppliedError" in first
    assert "Sat.SMA: requested -20000.0, the engine holds 20000.0" in first


def test_keplerian_round_off_is_within_the_read_back_tolerance(
    leo_basic: Path, tmp_path: Path
) -> None:
    spec = RunSpec(leo_basic, {"Sat.SMA": 7000.0, "Sat.ECC": 0.0}, tmp_path / "run", 0, None)
    assert run_one(spec).status is RunStatus.OK


def test_monte_carlo_over_a_load_time_parameter_is_reproducible(
    leo_basic: Path, tmp_path: Path
) -> None:
    rows = [
        {"FM.PointMasses": ["Luna"], "Sat.Cd": 2.0},
        {"FM.PointMasses": ["Sun"], "Sat.Cd": 2.4},
        {"FM.PointMasses": ["Luna"], "Sat.Cd": 2.4},
    ]
    first = sweep(leo_basic, samples=rows, out=tmp_path / "a", progress=False)
    second = sweep(leo_basic, samples=rows, out=tmp_path / "b", progress=False)
    pd.testing.assert_frame_equal(first.to_pandas(), second.to_pandas(), check_exact=True)
    final = first.to_pandas().groupby(level="run_id")[COLUMN].last()
    assert final[1] != final[2]  # the point-mass choice reaches the propagator


@pytest.mark.parametrize(
    "grid",
    [
        {"FM.GravityField.Earth.Degree": [2], "Prop.Type": ["PrinceDormand78"], "Sat.Cd": [3.0]},
        # Orbital elements: written through the API they become Cartesian state.
        {"Sat.SMA": [7012.345678], "Sat.TA": [359.0], "Sat.ECC": [0.0], "Prop.Accuracy": [1e-10]},
    ],
)
def test_replayed_script_reproduces_the_run_bit_for_bit(
    leo_basic: Path, tmp_path: Path, grid: dict[str, list[Any]], pool: LocalPool
) -> None:
    swept = sweep(leo_basic, grid=grid, backend=pool, out=tmp_path / "s", progress=False)
    replay = tmp_path / "replay.script"
    replay.write_text(swept.script(0))
    entry = swept.manifest.entry_for(0)
    assert entry is not None
    ran = pd.read_parquet(tmp_path / "s" / entry.output_paths["report__RF"])
    outcome = run_one(RunSpec(replay, {}, tmp_path / "replayed", 0, None))
    assert outcome.status is RunStatus.OK
    replayed = pd.read_parquet(outcome.output_paths["report__RF"])
    pd.testing.assert_frame_equal(ran, replayed, check_exact=True)


def test_render_replaces_inserts_and_keeps_includes_working(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "env.script").write_text("Create Variable Days;\nDays = 1;\n")
    main = tmp_path / "main.script"
    main.write_text(
        "#Include 'sub/env.script'\n"
        "Create Spacecraft Sat;\n"
        "GMAT Sat.Cd = 2.2;\n"
        "Create ForceModel FM;\n"
        "FM.PrimaryBodies = {Earth};\n"
        "BeginMissionSequence;\n"
        "Sat.Cd = 9;\n"
    )
    text = render_script(main, {"Sat.Cd": 3.0, "FM.PointMasses": ["Luna", "Sun"]})
    include = (tmp_path / "sub" / "env.script").as_posix()
    assert text == (
        f"#Include '{include}'\n"
        "Create Spacecraft Sat;\n"
        "Sat.Cd = 3;\n"
        "Create ForceModel FM;\n"
        "FM.PrimaryBodies = {Earth};\n"
        "FM.PointMasses = {Luna, Sun};\n"
        "BeginMissionSequence;\n"
        "Sat.Cd = 9;\n"
    )
    # The included file sets Days: it is written inline, with the override in its place.
    variable = render_script(main, {"Days.Value": 2})
    assert variable.startswith("Create Variable Days;\nDays = 2;\n")
    assert "#Include" not in variable and variable.count("Days =") == 1


def test_resources_follow_includes_and_name_arrays_without_their_dimensions(
    tmp_path: Path,
) -> None:
    (tmp_path / "env.script").write_text("Create Variable Days;\nCreate ReportFile RF;\n")
    main = tmp_path / "main.script"
    main.write_text(
        "Create Spacecraft Sat;\n"
        "#Include 'env.script'\n"
        "Create Array Slots[1,3] Weights[2, 2];\n"
        "Create XYPlot Plot;\n"
        "Create EphemerisFile OEM;\n"
        "BeginMissionSequence;\n"
        "Create Variable Late;\n"
    )
    assert resources(main) == {
        "Sat": "Spacecraft",
        "Days": "Variable",
        "RF": "ReportFile",
        "Slots": "Array",
        "Weights": "Array",
        "Plot": "XYPlot",
        "OEM": "EphemerisFile",
    }
    assert file_outputs(main) == ["RF", "OEM"]


def test_cli_script_prints_the_run_as_a_script(
    leo_basic: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], pool: LocalPool
) -> None:
    from gmat_sweep.cli import main

    grid = {"Prop.Type": ["PrinceDormand78"], "Sat.Cd": [3.0]}
    result = sweep(leo_basic, grid=grid, backend=pool, out=tmp_path / "s", progress=False)
    assert main(["script", str(tmp_path / "s"), "0"]) == 0
    printed = capsys.readouterr().out
    assert printed == result.script(0)
    assert "Prop.Type = PrinceDormand78;\n" in printed and "Sat.Cd = 3;\n" in printed
    assert main(["script", str(tmp_path / "s"), "5"]) == 2
    assert "run 5 has no entry" in capsys.readouterr().err


def test_runs_sharing_a_rendered_text_share_one_load(leo_basic: Path, tmp_path: Path) -> None:
    from gmat_sweep import worker

    def run(run_id: int, cd: float) -> Any:
        overrides = {"FM.GravityField.Earth.Degree": 2, "Sat.Cd": cd}
        outcome = run_one(RunSpec(leo_basic, overrides, tmp_path / str(run_id), run_id, None))
        assert outcome.status is RunStatus.OK
        assert worker._loaded is not None
        return worker._loaded.mission

    assert run(0, 2.0) is run(1, 2.5)


def test_a_dropped_write_found_at_run_time_becomes_load_time(
    leo_basic: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gmat_sweep import worker

    # Prop.Type is known dropped beforehand; without that record the run finds it.
    monkeypatch.setattr(worker, "_DROPPED", frozenset())
    worker._loaded = None
    worker._scripts.clear()  # as on a host that did not check the sweep
    spec = RunSpec(leo_basic, {"Prop.Type": "PrinceDormand78"}, tmp_path / "a", 0, None)
    outcome = run_one(spec)
    assert outcome.status is RunStatus.OK
    default = run_one(RunSpec(leo_basic, {}, tmp_path / "b", 1, None))
    changed = pd.read_parquet(outcome.output_paths["report__RF"])
    assert not changed.equals(pd.read_parquet(default.output_paths["report__RF"]))
    assert outcome.script_sha256 != default.script_sha256


def test_load_time_override_of_a_resource_in_an_included_file(
    leo_basic: Path, tmp_path: Path
) -> None:
    text = leo_basic.read_text()
    resources, rest = text.split("Create ReportFile RF;")
    (tmp_path / "parts").mkdir()
    (tmp_path / "parts" / "resources.script").write_text(resources)
    main = tmp_path / "main.script"
    main.write_text("#Include 'parts/resources.script'\nCreate ReportFile RF;" + rest)
    degree = {"FM.GravityField.Earth.Degree": 2}
    included = run_one(RunSpec(main, degree, tmp_path / "included", 0, None))
    direct = run_one(RunSpec(leo_basic, degree, tmp_path / "direct", 1, None))
    assert included.status is RunStatus.OK and direct.status is RunStatus.OK
    pd.testing.assert_frame_equal(
        pd.read_parquet(included.output_paths["report__RF"]),
        pd.read_parquet(direct.output_paths["report__RF"]),
        check_exact=True,
    )


def test_an_unchecked_filename_override_fails_the_run(leo_basic: Path, tmp_path: Path) -> None:
    # A run that never went through the sweep's check (e.g. a manifest from elsewhere).
    outcome = run_one(RunSpec(leo_basic, {"RF.Filename": "/tmp/x.txt"}, tmp_path / "r", 0, None))
    assert outcome.status is RunStatus.FAILED
    assert outcome.stderr is not None
    assert "SweepConfigError: 'RF.Filename' names the file a ReportFile writes" in outcome.stderr


def test_script_sha256_round_trips_through_outcome_and_entry() -> None:
    from datetime import UTC, datetime

    from gmat_sweep.manifest import ManifestEntry
    from gmat_sweep.spec import RunOutcome, decode, encode

    now = datetime(2026, 1, 1, tzinfo=UTC)
    outcome = RunOutcome.ok(3, {}, now, now, "ab" * 32)
    assert decode(encode(outcome), RunOutcome) == outcome
    entry = ManifestEntry.from_outcome(outcome, overrides={"FM.SRP": "Off"})
    assert entry.script_sha256 == "ab" * 32
    assert decode(encode(entry), ManifestEntry) == entry
    unknown = ManifestEntry.from_outcome(RunOutcome.ok(4, {}, now, now), overrides={})
    assert unknown.script_sha256 is None


_VARY_TOI = (
    "Vary DC(TOI.Element1 = 1.0, {Perturbation = 1e-4, Lower = 0.0, Upper = 5.0, MaxStep = 0.5});"
)


def test_a_field_a_vary_sets_before_anything_reads_it_is_refused(
    pool: LocalPool, data_dir: Path, tmp_path: Path
) -> None:
    # Sweeping TOI.Element1 changed nothing: the Vary starts every run from its guess of 1.0.
    hohmann = data_dir / "hohmann_target.script"
    with pytest.raises(SweepConfigError) as refused:
        sweep(hohmann, {"TOI.Element1": [2.0]}, out=tmp_path / "s", backend=pool, progress=False)
    message = str(refused.value)
    assert "'TOI.Element1': the mission sequence sets it before reading it" in message
    assert f"(line 69: {_VARY_TOI})" in message and "initial value" in message
    assert not (tmp_path / "s").exists()
    varied = {"TOI.Element1", "GOI.Element1"}
    assert varied <= set(overwritten_values(hohmann))  # with TotalDV.Value, set by the sequence
    # A guess read from a Variable is that Variable's to override; a burn applied before the
    # Target reads the override; a Target inside an If may not run.
    text = hohmann.read_text()
    guessed = tmp_path / "guessed.script"
    guessed.write_text(
        text.replace(
            "Create Variable TotalDV;",
            "Create Variable Guess;\nGuess = 1.0;\nCreate Variable TotalDV;",
        ).replace("TOI.Element1 = 1.0,", "TOI.Element1 = Guess,")
    )
    assert "Guess.Value" not in overwritten_values(guessed)  # the override the message suggests
    early = tmp_path / "early.script"
    early.write_text(text.replace("Target DC", "Maneuver GOI(Sat);\nTarget DC"))
    assert set(overwritten_values(early)) & varied == {"TOI.Element1"}
    branch = tmp_path / "branch.script"
    branch.write_text(
        text.replace("Target DC", "If TargetRadius > 1\nTarget DC").replace(
            "EndTarget;", "EndTarget;\nEndIf;"
        )
    )
    assert not set(overwritten_values(branch)) & varied  # the Target may not run


def test_each_field_of_a_burn_two_varies_set_is_refused(data_dir: Path) -> None:
    # plane_change varies Burn.Element1 from a Variable, then Burn.Element2 from 0.0: the first
    # Vary does not read Burn.Element2, so sweeping it changes nothing either.
    overwritten = overwritten_values(data_dir / "plane_change.script")
    assert overwritten["Burn.Element2"].startswith("line 68: Vary DC(Burn.Element2 = 0.0")
    assert overwritten["Burn.Element1"].startswith("line 67: Vary DC(Burn.Element1 = DVGuess")
    assert "DVGuess.Value" not in overwritten  # the guess to sweep instead


def test_every_field_of_a_spacecraft_the_sequence_copies_over_is_refused(
    pool: LocalPool, leo_basic: Path, tmp_path: Path
) -> None:
    # 'Sat2 = Sat;' replaces all of Sat2 before the run reads it: Sat2.Cd changed nothing.
    script = tmp_path / "copy.script"
    script.write_text(
        leo_basic.read_text()
        .replace(
            "Create ForceModel FM;",
            "Create Spacecraft Sat2;\nSat2.Cd = 2.2;\nCreate ForceModel FM;",
        )
        .replace("Propagate Prop(Sat)", "Sat2 = Sat;\nPropagate Prop(Sat2)")
        .replace("Sat.ElapsedSecs = 5560", "Sat2.ElapsedSecs = 5560")
    )
    with pytest.raises(SweepConfigError) as refused:
        sweep(script, {"Sat2.Cd": [3.0]}, out=tmp_path / "s", backend=pool, progress=False)
    assert "'Sat2.Cd': the mission sequence sets it before reading it" in str(refused.value)
    assert "Sat2 = Sat;)" in str(refused.value)
    assert not (tmp_path / "s").exists()
    copied = sweep(script, {"Sat.Cd": [3.0]}, out=tmp_path / "t", backend=pool, progress=False)
    assert copied.failed_run_ids == []  # the source of the copy is read by it
