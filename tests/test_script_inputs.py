"""The files a mission reads, recorded by content: a sweep can say which gravity field made it.

A mission that reads a gravity model, SPICE kernels or other files given in
the script gets their SHA-256 in the manifest header (``script_inputs``),
checked on resume like the script's own hash. A worker that keeps a mission
loaded between runs must never run it with files that changed since the load.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from dask.callbacks import Callback

from gmat_sweep import LocalPool, Manifest, Sweep, SweepConfigError, sweep
from gmat_sweep.archive import write_archive
from gmat_sweep.cli import main
from gmat_sweep.engine import ensure_engine
from gmat_sweep.errors import MissionChangedError
from gmat_sweep.script import canonical_script_sha256, script_inputs_sha256
from gmat_sweep.spec import RunOutcome, RunSpec, RunStatus
from gmat_sweep.worker import run_one

COF = "gravity/jgm2_4x4.cof"
J2 = "RECOEF    2  0   -4.84165390000000e-04"
NO_J2 = "RECOEF    2  0    0.00000000000000e+00"
CHANGED = re.escape(f"input file '{COF}' changed since the sweep ran")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _copy_mission(data_dir: Path, directory: Path) -> Path:
    """custom_gravity.script with its own gravity file, copied to ``directory / "m"``."""
    (directory / "m" / "gravity").mkdir(parents=True)
    shutil.copy(data_dir / COF, directory / "m" / COF)
    return Path(shutil.copy(data_dir / "custom_gravity.script", directory / "m"))


@pytest.fixture
def mission(data_dir: Path, tmp_path: Path) -> Path:
    """A copy of custom_gravity.script with its own gravity file, free to edit."""
    return _copy_mission(data_dir, tmp_path)


@pytest.fixture(scope="module")
def swept(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with a copy of the mission (``m/``) and a one-run sweep of it (``s/``)."""
    root = tmp_path_factory.mktemp("swept")
    sweep(_copy_mission(data_dir, root), {"Sat.Cd": [2.2]}, out=root / "s", progress=False)
    return root


@pytest.fixture
def swept_copy(swept: Path, tmp_path: Path) -> tuple[Path, Path]:
    """``(mission, sweep directory)``: a copy of :func:`swept`, free to edit."""
    shutil.copytree(swept, tmp_path, dirs_exist_ok=True)
    return tmp_path / "m" / "custom_gravity.script", tmp_path / "s"


def test_the_inputs_are_hashed_as_gmat_resolves_them(tmp_path: Path) -> None:
    (tmp_path / "kernels").mkdir()
    (tmp_path / "kernels" / "sat.bsp").write_bytes(b"\x00DAF/SPK\r\n")
    elsewhere = tmp_path / "elsewhere.cof"
    elsewhere.write_text("x")
    (tmp_path / "part.script").write_text(
        "Create ForceModel FM;\nFM.GravityField.Earth.PotentialFile = 'JGM2.cof';\n"
    )
    script = tmp_path / "m.script"
    script.write_text(
        "Create Spacecraft Sat;\n"
        "Sat.OrbitSpiceKernelName = {'kernels/sat.bsp'};\n"
        "#Include 'part.script'\n"  # 'JGM2.cof' is GMAT's own: not beside the script
        "Create ForceModel Other;\n"
        f"Other.GravityField.Earth.PotentialFile = '{elsewhere.as_posix()}';\n"
        "Create ReportFile RF;\nRF.Filename = 'out.txt';\n"
        "BeginMissionSequence;\n",
        encoding="utf-8",
    )
    assert script_inputs_sha256(script) == {
        "kernels/sat.bsp": _sha256(tmp_path / "kernels" / "sat.bsp"),  # bytes, as read
        elsewhere.as_posix(): _sha256(elsewhere),
    }


def test_an_edited_input_file_is_recorded_shown_and_refused_on_resume(
    swept_copy: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mission, out = swept_copy
    cof = mission.parent / COF
    recorded = _sha256(cof)
    study = Sweep.from_manifest(out / "manifest.jsonl", mission, backend=None)
    assert study.manifest.script_inputs == {COF: recorded}
    header = json.loads((out / "manifest.jsonl").read_text().splitlines()[0])
    assert header["script_inputs"] == {COF: recorded}

    assert main(["show", str(out)]) == 0
    assert f"input file {COF}: sha256 {recorded}" in capsys.readouterr().out
    assert main(["show", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["inputs"] == {COF: recorded}

    with zipfile.ZipFile(write_archive(study, tmp_path / "study.zip")) as archive:
        archived = json.loads(archive.read("manifest.jsonl").splitlines()[0])
        assert archived["script_inputs"] == {COF: recorded}
        assert hashlib.sha256(archive.read(f"mission/{COF}")).hexdigest() == recorded

    cof.write_text(cof.read_text().replace(J2, NO_J2))
    now = _sha256(cof)
    with pytest.raises(SweepConfigError) as refused:
        Sweep.from_manifest(out / "manifest.jsonl", mission, backend=None)
    message = str(refused.value)
    for part in (repr(COF), recorded, now, "allow_script_drift=True", "Restore"):
        assert part in message
    with pytest.warns(RuntimeWarning, match=CHANGED):
        Sweep.from_manifest(out / "manifest.jsonl", mission, backend=None, allow_script_drift=True)
    with pytest.raises(SweepConfigError, match=CHANGED):
        write_archive(study, tmp_path / "study.zip")


def test_a_manifest_from_before_inputs_were_recorded_resumes_without_comparing_them(
    swept_copy: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    mission, out = swept_copy
    path = out / "manifest.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    header = json.loads(lines[0])
    del header["script_inputs"]
    path.write_text(json.dumps(header) + "\n" + "".join(lines[1:]))
    assert Manifest.load(path).script_inputs is None
    cof = mission.parent / COF
    cof.write_text(cof.read_text().replace(J2, NO_J2))
    Sweep.from_manifest(path, mission, backend=None)  # nothing recorded to compare with
    assert main(["show", str(out)]) == 0
    assert "input files: not recorded" in capsys.readouterr().out


def _last(outcome_paths: dict[str, Path], key: str, column: str) -> float:
    return float(pd.read_parquet(outcome_paths[key])[column].iloc[-1])


def test_a_gravity_file_edited_between_runs_of_a_kept_mission_is_read_again(
    mission: Path, tmp_path: Path
) -> None:
    # GMAT reads the PotentialFile when each run starts, not when the script loads:
    # a mission kept loaded across an edit runs with the new field (measured).
    cof = mission.parent / COF

    def final_sma(tag: str) -> float:
        outcome = run_one(RunSpec(mission, {"Sat.Cd": 2.2}, tmp_path / tag, 0, None))
        assert outcome.status is RunStatus.OK, outcome.stderr
        return _last(dict(outcome.output_paths), "report__RF", "Sat.Earth.SMA")

    first = final_sma("a")
    cof.write_text(cof.read_text().replace(J2, NO_J2))
    edited = final_sma("b")
    assert edited != first
    with LocalPool(1) as pool:
        fresh = sweep(mission, {"Sat.Cd": [2.2]}, backend=pool, out=tmp_path / "s", progress=False)
    assert fresh.final()["Sat.Earth.SMA"].iloc[0] == edited


def _engine_spk() -> Path:
    """The planetary ephemeris (SPK) the GMAT engine ships."""
    startup = ensure_engine().root / "bin" / "api_startup_file.txt"
    for line in startup.read_text().splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "PLANETARY_EPHEM_SPK_PATH":
            return min(Path(value.strip()).glob("*.bsp"))
    raise AssertionError(f"{startup} names no PLANETARY_EPHEM_SPK_PATH")


def test_a_spice_kernel_replaced_between_runs_of_a_kept_mission_is_read_again(
    leo_basic: Path, tmp_path: Path
) -> None:
    # GMAT opens the SPK when each run starts: a kept mission never runs on a replaced one.
    kernel = tmp_path / "de.bsp"
    shutil.copy(_engine_spk(), kernel)
    script = tmp_path / "spk.script"
    script.write_text(
        leo_basic.read_text().replace(
            "FM.SRP = On;",
            "FM.SRP = On;\nFM.PointMasses = {Luna, Sun};\nSolarSystem.EphemerisSource = 'SPICE';\n"
            f"SolarSystem.SPKFilename = '{kernel.as_posix()}';",  # GMAT wants it absolute
        )
    )
    assert script_inputs_sha256(script) == {kernel.as_posix(): _sha256(kernel)}
    spec = RunSpec(script, {"Sat.Cd": 2.3}, tmp_path / "a", 0, None)
    assert run_one(spec).status is RunStatus.OK
    data = kernel.read_bytes()
    kernel.unlink()  # a new file under the old name: an open handle would still read the old
    kernel.write_bytes(data[:1024] + bytes(len(data) - 1024))
    failed = run_one(replace(spec, output_dir=tmp_path / "b"))
    assert failed.status is RunStatus.FAILED
    assert failed.stderr is not None and "GmatRunError" in failed.stderr


def test_an_included_file_edited_between_runs_reloads_the_mission(
    data_dir: Path, tmp_path: Path
) -> None:
    # GMAT reads an #Include while it parses the script: a kept mission would run the old text.
    for name in ("included_main.script", "included_spacecraft.script"):
        shutil.copy(data_dir / name, tmp_path)
    part = tmp_path / "included_spacecraft.script"

    def final_sma(tag: str) -> float:
        main = tmp_path / "included_main.script"
        outcome = run_one(RunSpec(main, {"Probe.INC": 30.0}, tmp_path / tag, 0, None))
        assert outcome.status is RunStatus.OK, outcome.stderr
        return _last(dict(outcome.output_paths), "report__Elements", "Probe.Earth.SMA")

    assert final_sma("a") == pytest.approx(8000, abs=1)
    part.write_text(part.read_text().replace("Probe.SMA = 8000", "Probe.SMA = 8100"))
    assert final_sma("b") == pytest.approx(8100, abs=1)


def test_a_ground_track_plot_in_an_included_file_does_not_silence_the_report(
    data_dir: Path, tmp_path: Path
) -> None:
    # lunar_gui with its GUI subscribers moved into an include the script pulls in
    # before its ReportFile: the headless engine would write no report and succeed.
    lines = (data_dir / "lunar_gui.script").read_text().split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith("Create OrbitView"))
    end = next(i for i, line in enumerate(lines) if line.startswith("Create ReportFile"))
    (tmp_path / "plots.script").write_text("\n".join(lines[start:end]) + "\n")
    script = tmp_path / "lunar.script"
    script.write_text("\n".join([*lines[:start], "#Include 'plots.script'", *lines[end:]]))
    for overrides in ({}, {"LunaProp.Type": "PrinceDormand78"}):  # plain and load-time
        outcome = run_one(RunSpec(script, overrides, tmp_path / f"run{len(overrides)}", 0, None))
        assert outcome.status is RunStatus.OK, outcome.stderr
        assert outcome.unwritten == ()
        report = pd.read_parquet(outcome.output_paths["report__LunarReport"])
        assert report["LunaSat.ElapsedSecs"].iloc[-1] == pytest.approx(3600)


def _edit_after_first_run(edit: Callable[[], None]) -> Callback:
    """A Dask callback that calls ``edit`` once, when the sweep's first run has finished."""
    done: list[bool] = []

    def posttask(key: object, result: object, *_: object) -> None:
        if isinstance(result, RunOutcome) and not done:
            done.append(True)
            edit()

    return Callback(posttask=posttask)


def test_a_script_edited_while_the_sweep_runs_is_recorded_raised_and_refused_on_resume(
    slow: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Runs load the script as they start: those after the edit run the edited mission.
    script = Path(shutil.copy(slow, tmp_path / "slow.script"))
    before = canonical_script_sha256(script)

    def edit() -> None:
        script.write_text(script.read_text().replace("Sat.Cd = 2.2;", "Sat.Cd = 2.3;"))

    out = tmp_path / "s"
    grid = {"Days.Value": [0.002, 0.003, 0.004]}
    with (
        _edit_after_first_run(edit),
        LocalPool(workers=1) as pool,
        pytest.raises(MissionChangedError) as raised,
    ):
        sweep(script, grid, out=out, backend=pool, progress=False)
    after = canonical_script_sha256(script)
    message = str(raised.value)
    for part in (f"script {str(script)!r} changed while the sweep ran", before, after, "run()"):
        assert part in message
    # Every run is recorded, and the manifest keeps the change for later readers.
    manifest = Manifest.load(out / "manifest.jsonl")
    assert sorted(entry.run_id for entry in manifest.entries) == [0, 1, 2]
    assert manifest.script_sha256 == before
    assert len(manifest.mission_changed) == 1 and after in manifest.mission_changed[0]
    assert main(["show", str(out)]) == 0
    shown = capsys.readouterr().out
    assert f"WARNING: script {str(script)!r} changed while the sweep ran" in shown

    # Restoring the script does not make the mixed runs one mission again.
    script.write_text(script.read_text().replace("Sat.Cd = 2.3;", "Sat.Cd = 2.2;"))
    with pytest.raises(SweepConfigError, match=r"changed while the sweep ran.*Run the sweep again"):
        Sweep.from_manifest(out / "manifest.jsonl", script, backend=None)
    with pytest.warns(RuntimeWarning, match="changed while the sweep ran"):
        Sweep.from_manifest(out / "manifest.jsonl", script, backend=None, allow_script_drift=True)


def test_an_input_file_edited_while_the_sweep_runs_is_named(mission: Path, tmp_path: Path) -> None:
    cof = mission.parent / COF

    def edit() -> None:
        cof.write_text(cof.read_text().replace(J2, NO_J2))

    with _edit_after_first_run(edit), pytest.raises(MissionChangedError) as raised:
        sweep(mission, {"Sat.Cd": [2.0, 2.2]}, out=tmp_path / "s", progress=False)
    assert f"input file {COF!r} changed while the sweep ran" in str(raised.value)
    assert _sha256(cof) in str(raised.value)


def test_a_sweep_whose_mission_did_not_change_records_no_change(
    swept: Path,
) -> None:
    assert Manifest.load(swept / "s" / "manifest.jsonl").mission_changed == []
