"""gmat_sweep.archive: a deterministic zip that reads back, checks and reruns to the same frames."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from gmat_sweep import LocalPool, Manifest, Sweep, monte_carlo, open_sweep, sweep
from gmat_sweep.aggregate import lazy_multiindex
from gmat_sweep.archive import ZIP_EPOCH, reproduce_text, write_archive
from gmat_sweep.engine import ensure_engine
from gmat_sweep.errors import SweepConfigError
from gmat_sweep.spec import RunStatus

pytestmark = pytest.mark.slow

GRID = {"Sat.SMA": [6000, 7000, 7100], "Sat.Cd": [2.0, 2.4]}
"""6 runs; the two at Sat.SMA = 6000 fail inside GMAT."""


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory, leo_basic: Path) -> Sweep:
    out = tmp_path_factory.mktemp("archive") / "study"
    return sweep(leo_basic, GRID, out=out, progress=False, backend="local")


def _extract(archive: Path, where: Path) -> Path:
    with zipfile.ZipFile(archive) as opened:
        opened.extractall(where)
    return where


def _block(text: str, lang: str) -> str:
    found = re.search(rf"```{lang}\n(.*?)```", text, flags=re.DOTALL)
    assert found is not None, text
    return found[1]


def _run(argv: list[str], cwd: Path, *, returncode: int = 0) -> None:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    done = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == returncode, done.stderr[-4000:]


def test_archive_is_byte_identical_with_fixed_metadata(study: Sweep, tmp_path: Path) -> None:
    first = write_archive(study, tmp_path / "a.zip").read_bytes()
    second = write_archive(study, tmp_path / "b.zip").read_bytes()
    assert first == second
    with zipfile.ZipFile(tmp_path / "a.zip") as opened:
        infos = opened.infolist()
    names = [info.filename for info in infos]
    assert names == sorted(names)
    assert {info.date_time for info in infos} == {ZIP_EPOCH}
    assert {info.external_attr >> 16 for info in infos} == {0o100644}
    expected = {"manifest.jsonl", "mission/leo_basic.script", "REPRODUCE.md", "SHA256SUMS"}
    assert expected <= set(names)
    for entry in study.manifest.entries:
        for location in entry.output_paths.values():
            assert Path(location).as_posix() in names
        assert entry.log_path is not None and Path(entry.log_path).as_posix() in names


def test_extracted_archive_checks_and_reads_as_the_sweep(
    study: Sweep, tmp_path: Path, leo_basic: Path
) -> None:
    root = _extract(write_archive(study, tmp_path / "study.zip"), tmp_path / "x")
    sums = (root / "SHA256SUMS").read_text(encoding="utf-8").splitlines()
    listed = {}
    for line in sums:
        digest, name = line.split("  ", 1)
        listed[name] = digest
    on_disk = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} - {
        "SHA256SUMS"
    }
    assert set(listed) == on_disk
    for name, digest in listed.items():
        assert hashlib.sha256((root / name).read_bytes()).hexdigest() == digest
    assert (root / "mission" / "leo_basic.script").read_bytes() == leo_basic.read_bytes()

    loaded = Manifest.load(root / "manifest.jsonl")
    assert loaded.entries == study.manifest.entries
    original = study.to_pandas()
    pd.testing.assert_frame_equal(lazy_multiindex(loaded, root), original)
    reopened = Sweep.from_manifest(
        root / "manifest.jsonl", root / "mission" / "leo_basic.script", backend=None
    )
    pd.testing.assert_frame_equal(reopened.to_pandas(), original)
    pd.testing.assert_frame_equal(open_sweep(root).to_pandas(), original)
    pd.testing.assert_frame_equal(open_sweep(root).final(), study.final())


def test_the_reproduce_command_reruns_the_grid_bit_for_bit(study: Sweep, tmp_path: Path) -> None:
    root = _extract(write_archive(study, tmp_path / "study.zip"), tmp_path / "x")
    command = _block((root / "REPRODUCE.md").read_text(encoding="utf-8"), "bash").strip()
    assert command == "gmat-sweep run mission/leo_basic.script --spec spec.json --out rerun"
    # The rerun fails the same two runs, so the command exits 1, as for any sweep with failures.
    _run(["bash", "-c", command + " --quiet --no-progress"], root, returncode=1)
    rerun = Manifest.load(root / "rerun" / "manifest.jsonl")
    pd.testing.assert_frame_equal(lazy_multiindex(rerun, root / "rerun"), study.to_pandas())


def test_the_reproduce_python_reruns_a_monte_carlo_bit_for_bit(
    tmp_path: Path, leo_basic: Path, pool: LocalPool
) -> None:
    perturb = {"Sat.SMA": ("normal", 7000.0, 5.0), "Sat.Cd": ("uniform", 2.0, 2.4)}
    original = monte_carlo(
        leo_basic, n=3, perturb=perturb, seed=11, out=tmp_path / "mc", backend=pool, progress=False
    )
    root = _extract(write_archive(original, tmp_path / "mc.zip"), tmp_path / "x")
    text = (root / "REPRODUCE.md").read_text(encoding="utf-8")
    assert _block(text, "bash").strip() == (
        "gmat-sweep monte-carlo mission/leo_basic.script -n 3 "
        "--perturb 'Sat.Cd=uniform(2.0,2.4)' --perturb 'Sat.SMA=normal(7000.0,5.0)' "
        "--seed 11 --out rerun"
    )
    (root / "rerun.py").write_text(_block(text, "python"), encoding="utf-8")
    _run([sys.executable, "rerun.py"], root)
    rerun = Manifest.load(root / "rerun" / "manifest.jsonl")
    pd.testing.assert_frame_equal(lazy_multiindex(rerun, root / "rerun"), original.to_pandas())
    command = _block(text, "bash").strip().replace("--out rerun", "--out rerun-cli")
    _run(["bash", "-e", "-c", command + " --quiet --no-progress"], root)
    rerun = Manifest.load(root / "rerun-cli" / "manifest.jsonl")
    pd.testing.assert_frame_equal(lazy_multiindex(rerun, root / "rerun-cli"), original.to_pandas())


def test_reproduce_text_without_a_cli_form_gives_python_and_the_timeout() -> None:
    spec = {
        "_kind": "latin_hypercube",
        "n": 4,
        "seed": 3,
        "perturb": {
            "Sat.SMA|Sat.ECC": {"dist": "mvnormal", "mean": [0, 0], "cov": [[1, 0], [0, 1]]}
        },
        "run_options": {"timeout_s": 30},
    }
    text = reproduce_text(spec, "mission/m.script")
    assert "```bash" not in text
    assert 'latin_hypercube("mission/m.script", n=spec["n"]' in text
    assert 'run_options=spec["run_options"]' in text
    grid = reproduce_text({"_kind": "grid", "grid": {}, "run_options": {"timeout_s": 30}}, "m")
    assert "gmat-sweep run m --spec spec.json --out rerun --timeout 30" in grid


def test_archive_holds_included_files_where_the_script_finds_them(
    tmp_path: Path, leo_basic: Path, pool: LocalPool
) -> None:
    (tmp_path / "mission").mkdir()
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "leo.script").write_bytes(leo_basic.read_bytes())
    top = tmp_path / "mission" / "main.script"
    top.write_text("% the body lives beside\n#Include '../shared/leo.script'\n", encoding="utf-8")
    original = sweep(top, {"Sat.SMA": [7000]}, out=tmp_path / "out", backend=pool, progress=False)
    root = _extract(write_archive(original, tmp_path / "inc.zip"), tmp_path / "x")
    assert (root / "mission" / "mission" / "main.script").read_bytes() == top.read_bytes()
    assert (root / "mission" / "shared" / "leo.script").read_bytes() == leo_basic.read_bytes()
    reopened = Sweep.from_manifest(
        root / "manifest.jsonl", root / "mission" / "mission" / "main.script", backend=None
    )
    pd.testing.assert_frame_equal(reopened.to_pandas(), original.to_pandas())


def test_archive_of_a_sweep_with_lost_outputs_warns_and_names_the_runs(
    study: Sweep, tmp_path: Path
) -> None:
    # An archive is kept to reproduce and read the sweep later: one whose ok runs' files
    # are gone (or torn) would read as broken a year later, so the archive says so now.
    copy = tmp_path / "study"
    shutil.copytree(study.output_dir, copy)
    ok = [entry.run_id for entry in study.manifest.entries if entry.status is RunStatus.OK]
    deleted, torn = ok[0], ok[-1]
    (copy / f"run-{deleted:06d}" / "report__RF.parquet").unlink()
    (copy / f"run-{torn:06d}" / "report__RF.parquet").write_bytes(b"\0" * 64)
    with pytest.warns(RuntimeWarning) as warned:
        write_archive(open_sweep(copy), tmp_path / "study.zip")
    message = str(warned[0].message)
    assert f"[{deleted}, {torn}]" in message
    assert f"run-{deleted:06d}/report__RF.parquet" in message and "resume" in message
    with zipfile.ZipFile(tmp_path / "study.zip") as archive:
        assert "manifest.jsonl" in archive.namelist()


def test_archive_into_a_missing_directory_is_refused(study: Sweep, tmp_path: Path) -> None:
    with pytest.raises(SweepConfigError, match="does not exist; create it first"):
        write_archive(study, tmp_path / "nowhere" / "study.zip")


def test_archive_onto_a_directory_is_refused_and_the_cli_exits_2(
    study: Sweep, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gmat_sweep.cli import main

    taken = tmp_path / "archives"
    taken.mkdir()
    with pytest.raises(SweepConfigError, match=r"archive path .*archives.* is a directory"):
        write_archive(study, taken)
    assert main(["archive", str(study.output_dir), "--to", str(taken), "-q"]) == 2
    err = capsys.readouterr().err
    assert "is a directory" in err and "Errno" not in err, err
    assert list(taken.iterdir()) == []


def test_archive_refuses_a_mission_that_changed_and_takes_a_moved_one(
    tmp_path: Path, leo_basic: Path, pool: LocalPool
) -> None:
    # The archive's recipe reruns its mission: it must hold the files the sweep ran.
    (tmp_path / "mission").mkdir()
    (tmp_path / "mission" / "leo.script").write_bytes(leo_basic.read_bytes())
    top = tmp_path / "mission" / "main.script"
    top.write_text("#Include 'leo.script'\n", encoding="utf-8")
    study = sweep(top, {"Sat.SMA": [7000]}, out=tmp_path / "out", backend=pool, progress=False)
    (tmp_path / "mission").rename(tmp_path / "moved")
    moved = tmp_path / "moved" / "main.script"
    with pytest.raises(SweepConfigError, match=r"does not exist \(moved or deleted.*--script PATH"):
        write_archive(study, tmp_path / "a.zip")
    root = _extract(write_archive(study, tmp_path / "a.zip", script=moved), tmp_path / "x")
    assert (root / "mission" / "leo.script").read_bytes() == leo_basic.read_bytes()

    included = tmp_path / "moved" / "leo.script"
    included.write_text(leo_basic.read_text().replace("Sat.Cd = 2.2", "Sat.Cd = 2.3"))
    with pytest.raises(SweepConfigError, match=r"included file 'leo\.script' changed since"):
        write_archive(study, tmp_path / "b.zip", script=moved)
    assert not (tmp_path / "b.zip").exists()


def test_archive_copies_files_named_by_absolute_paths_and_reruns_without_them(
    tmp_path: Path, data_dir: Path, pool: LocalPool
) -> None:
    # The mission includes its spacecraft and reads its gravity model by absolute paths.
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "parts").mkdir(parents=True)
    cof = elsewhere / "jgm2_4x4.cof"
    shutil.copy(data_dir / "gravity" / "jgm2_4x4.cof", cof)
    text = (data_dir / "custom_gravity.script").read_text(encoding="utf-8")
    spacecraft, rest = text.split("Create ForceModel FM;")
    state, body = spacecraft.split("Sat.DryMass")
    # The included file includes another beside it, by a relative name.
    (elsewhere / "parts" / "body.script").write_text("Sat.DryMass" + body, encoding="utf-8")
    (elsewhere / "parts" / "sat.script").write_text(
        state + "#Include 'body.script'\n", encoding="utf-8"
    )
    # GMAT's own data file named by its path in this engine: the engine's, not copied.
    jgm3 = ensure_engine().data / "gravity" / "earth" / "JGM3.cof"
    top = tmp_path / "mission" / "main.script"
    top.parent.mkdir()
    top.write_text(
        f"#Include '{(elsewhere / 'parts' / 'sat.script').as_posix()}'\n"
        f"Create ForceModel Unused;\nUnused.GravityField.Earth.PotentialFile = '{jgm3}';\n"
        "Create ForceModel FM;" + rest.replace("'gravity/jgm2_4x4.cof'", f"'{cof.as_posix()}'"),
        encoding="utf-8",
    )
    original = sweep(
        top, {"Sat.Cd": [2.0, 2.4]}, out=tmp_path / "out", backend=pool, progress=False
    )
    root = _extract(write_archive(original, tmp_path / "abs.zip"), tmp_path / "x")

    copies = {
        "mission/external" + cof.as_posix(): cof.as_posix(),
        "mission/external" + (elsewhere / "parts" / "sat.script").as_posix(): (
            elsewhere / "parts" / "sat.script"
        ).as_posix(),
    }
    record = json.loads((root / "external_files.json").read_text(encoding="utf-8"))
    assert record == {"copies": copies, "rewritten": ["mission/main.script"]}
    for archived, source in copies.items():
        assert (root / archived).read_bytes() == Path(source).read_bytes()
    beside = root / f"mission/external{elsewhere.as_posix()}/parts/body.script"
    assert beside.read_bytes() == (elsewhere / "parts" / "body.script").read_bytes()
    archived_top = (root / "mission" / "main.script").read_text(encoding="utf-8")
    assert f"'{elsewhere.as_posix()}" not in archived_top  # no absolute name left
    assert f"#Include 'external{elsewhere.as_posix()}/parts/sat.script'" in archived_top
    assert str(jgm3) in archived_top and not list(root.rglob("JGM3.cof"))
    reproduce = (root / "REPRODUCE.md").read_text(encoding="utf-8")
    assert "external_files.json" in reproduce and "allow_script_drift=True" in reproduce

    # An edit of a file named by an absolute path is drift, as for any input.
    cof.write_text(
        cof.read_text(encoding="utf-8").replace("RECOEF    2  0   -4.8", "RECOEF    2  0   -4.7")
    )
    with pytest.raises(SweepConfigError, match=re.escape(f"input file {cof.as_posix()!r} changed")):
        write_archive(original, tmp_path / "edited.zip")

    # The archive reruns to the same numbers with the originals gone.
    shutil.rmtree(elsewhere)
    command = _block(reproduce, "bash").strip()
    _run(["bash", "-c", command + " --quiet --no-progress"], root)
    rerun = Manifest.load(root / "rerun" / "manifest.jsonl")
    assert [entry.status for entry in rerun.entries] == [RunStatus.OK, RunStatus.OK]
    pd.testing.assert_frame_equal(lazy_multiindex(rerun, root / "rerun"), original.to_pandas())
