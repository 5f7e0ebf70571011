"""Missions that read files given relative to the script, and write into subdirectories.

GMAT resolves a relative input file (``FM.GravityField.Earth.PotentialFile =
'gravity/jgm2_4x4.cof'``) against the directory of the script it loads, not
the current directory. A run with a load-time override loads a rendered copy
of the script from a temporary directory, and a replayed or archived script
is saved elsewhere: both must still find the user's files.
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from gmat_sweep import LocalPool, SweepConfigError, sweep
from gmat_sweep.archive import write_archive
from gmat_sweep.script import output_settings, render_script
from gmat_sweep.spec import RunSpec, RunStatus
from gmat_sweep.worker import run_one

GRAVITY = "FM.GravityField.Earth.PotentialFile = '{}';"


@pytest.fixture(scope="module")
def custom_gravity(data_dir: Path) -> Path:
    return data_dir / "custom_gravity.script"


def test_a_relative_input_file_is_found_with_load_time_overrides_from_any_directory(
    custom_gravity: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # FM.Drag.AtmosphereModel is rendered into a copy of the script loaded from a temp
    # directory; the copy must still read gravity/jgm2_4x4.cof from beside the script.
    monkeypatch.chdir(tmp_path)
    grid = {"FM.Drag.AtmosphereModel": ["None", "Exponential"], "Sat.Cd": [2.2]}
    study = sweep(custom_gravity, grid, out="s", progress=False)
    assert study.failed_run_ids == []
    final = study.final()["Sat.Earth.SMA"]
    assert final[0] > final[1]  # without drag the orbit decays less
    # The report is written to 'sub/custom_gravity.txt' inside each run's directory.
    assert sorted(study.manifest.entries[0].output_paths) == ["report__RF"]

    replay = study.script(0)
    absolute = (custom_gravity.parent / "gravity" / "jgm2_4x4.cof").as_posix()
    assert GRAVITY.format(absolute) in replay
    saved = tmp_path / "elsewhere" / "run0.script"
    saved.parent.mkdir()
    saved.write_text(replay, encoding="utf-8")
    outcome = run_one(RunSpec(saved, {}, tmp_path / "replayed", 0, None))
    assert outcome.status is RunStatus.OK, outcome.stderr


def test_a_pool_runs_a_copy_of_a_script_elsewhere_with_the_files_beside_the_copy(
    custom_gravity: Path, tmp_path: Path
) -> None:
    # The same text beside a gravity file without J2: a GMAT host that kept the first
    # script's mission loaded (same text, same hash) would run the copy with the first
    # script's gravity file.
    copy = tmp_path / "copy" / custom_gravity.name
    (copy.parent / "gravity").mkdir(parents=True)
    shutil.copy(custom_gravity, copy)
    cof = (custom_gravity.parent / "gravity" / "jgm2_4x4.cof").read_text()
    j2 = "RECOEF    2  0   -4.84165390000000e-04"
    assert j2 in cof
    no_j2 = cof.replace(j2, "RECOEF    2  0    0.00000000000000e+00")
    (copy.parent / "gravity" / "jgm2_4x4.cof").write_text(no_j2)
    grid = {"Sat.Cd": [2.2]}  # a live override: the script as written is loaded
    alone = sweep(copy, grid, out=tmp_path / "alone", progress=False).to_pandas()
    with LocalPool(1) as pool:
        first = sweep(custom_gravity, grid, backend=pool, out=tmp_path / "a", progress=False)
        after = sweep(copy, grid, backend=pool, out=tmp_path / "b", progress=False).to_pandas()
    assert not first.to_pandas()["Sat.Earth.SMA"].equals(alone["Sat.Earth.SMA"])
    pd.testing.assert_frame_equal(after, alone, check_exact=True)


def test_render_makes_only_the_input_files_beside_the_script_absolute(tmp_path: Path) -> None:
    (tmp_path / "kernels").mkdir()
    (tmp_path / "functions").mkdir()  # a full GMAT install's GmatFunction directory
    for name in ("kernels/sat.bsp", "kernels/sat.bc", "out.txt", "JGM2.cof.bak", "DC.data"):
        (tmp_path / name).write_text("x")
    script = tmp_path / "m.script"
    script.write_text(
        "Create Spacecraft Sat;\n"
        "Sat.OrbitSpiceKernelName = {'kernels/sat.bsp', kernels/sat.bc};\n"
        "Sat.Id = 'out.txt';\n"  # not a file field
        "Create ForceModel FM;\n"
        "FM.GravityField.Earth.PotentialFile = 'JGM2.cof';\n"  # from GMAT's data directory
        "Create GmatFunction F;\n"
        "F.FunctionPath = 'functions';\n"
        "Create DifferentialCorrector DC;\n"
        "DC.ReportFile = 'DC.data';\n"  # a file the solver writes
        "Create ReportFile RF;\n"
        "RF.Filename = 'out.txt';\n"  # a file the run writes
        "BeginMissionSequence;\n",
        encoding="utf-8",
    )
    text = render_script(script, {})
    root = tmp_path.as_posix()
    assert (
        f"Sat.OrbitSpiceKernelName = {{'{root}/kernels/sat.bsp', '{root}/kernels/sat.bc'}};" in text
    )
    for kept in ("Sat.Id = 'out.txt';", GRAVITY.format("JGM2.cof"), "DC.ReportFile = 'DC.data';"):
        assert kept in text
    assert "RF.Filename = 'out.txt';" in text


def test_an_absolute_output_filename_is_refused_before_any_run(
    leo_basic: Path, tmp_path: Path
) -> None:
    # gmat-run leaves an absolute Filename alone: every run would write the same file.
    target = tmp_path / "all runs.txt"
    mission = tmp_path / "m.script"
    mission.write_text(
        leo_basic.read_text().replace("'leo_basic.txt'", f"'{target}'"),
        encoding="utf-8",
    )
    assert output_settings(mission, "Filename") == {"RF": str(target)}
    with pytest.raises(SweepConfigError) as refused:
        sweep(mission, {"Sat.Cd": [2.0, 2.4]}, out=tmp_path / "s", progress=False)
    message = str(refused.value)
    assert "RF.Filename" in message and str(target) in message and "relative" in message
    assert not (tmp_path / "s").exists()
    assert not target.exists()


def test_the_archive_holds_the_files_the_mission_reads_and_reruns_from_them(
    custom_gravity: Path, tmp_path: Path
) -> None:
    grid = {"FM.Drag.AtmosphereModel": ["None"]}
    study = sweep(custom_gravity, grid, out=tmp_path / "s", progress=False)
    with zipfile.ZipFile(write_archive(study, tmp_path / "study.zip")) as archive:
        archive.extractall(tmp_path / "x")
    mission = tmp_path / "x" / "mission"
    cof = custom_gravity.parent / "gravity" / "jgm2_4x4.cof"
    assert (mission / "gravity" / "jgm2_4x4.cof").read_bytes() == cof.read_bytes()
    rerun = sweep(mission / "custom_gravity.script", grid, out=tmp_path / "r", progress=False)
    replayed = rerun.script(0)
    assert GRAVITY.format((mission / "gravity" / "jgm2_4x4.cof").as_posix()) in replayed
    pd.testing.assert_frame_equal(rerun.to_pandas(), study.to_pandas())


def test_a_resource_type_the_bundled_engine_lacks_is_refused_with_what_to_do(
    leo_basic: Path, tmp_path: Path
) -> None:
    # The gmatpy wheel leaves GMAT functions out: the script cannot load on it.
    (tmp_path / "double.gmf").write_text(
        "function [y] = double(x)\nBeginMissionSequence\ny = 2 * x;\n", encoding="utf-8"
    )
    mission = tmp_path / "f.script"
    mission.write_text(
        leo_basic.read_text().replace(
            "BeginMissionSequence;",
            "Create GmatFunction double;\ndouble.FunctionPath = 'double.gmf';\n"
            "Create Variable X Y;\nBeginMissionSequence;\nGMAT [Y] = double(X);",
        ),
        encoding="utf-8",
    )
    with pytest.raises(SweepConfigError) as refused:
        sweep(mission, {"X.Value": [1, 2]}, out=tmp_path / "s", progress=False)
    message = str(refused.value)
    assert '"GmatFunction" is an unknown object type' in message
    assert "not part of the GMAT engine bundled" in message and "GMAT_ROOT" in message
    assert not (tmp_path / "s").exists()
