"""open_sweep: reopen any sweep from its manifest alone; final(); resume re-checks overrides."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from gmat_sweep import open_sweep, sweep
from gmat_sweep.errors import SweepConfigError
from gmat_sweep.manifest import Manifest

pytestmark = pytest.mark.slow

GRID = {"Sat.SMA": [6900.0, 7000.0], "Sat.INC": [28.5, 51.6]}


@pytest.fixture(scope="module")
def finished(leo_basic: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("finished") / "study"
    sweep(leo_basic, GRID, out=out, progress=False)
    return out


def test_open_sweep_of_a_moved_directory_needs_no_gmat(finished: Path, tmp_path: Path) -> None:
    moved = tmp_path / "elsewhere" / "copy"
    shutil.copytree(finished, moved)
    code = (
        "import sys\n"
        "from gmat_sweep import open_sweep\n"
        f"study = open_sweep({str(moved)!r})\n"
        "frame = study.to_pandas()\n"
        "final = study.final()\n"
        "print(repr(study).splitlines()[1])\n"
        "print(len(frame), len(final), sorted(final.index))\n"
        "assert not {'gmat_run', 'gmatpy'} & set(sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "ok: 4   failed: 0" in done.stdout
    assert "4 [0, 1, 2, 3]" in done.stdout


def test_open_sweep_frames_equal_the_sweeps_own(finished: Path) -> None:
    study = open_sweep(finished)
    by_manifest = open_sweep(finished / "manifest.jsonl")
    frame = study.to_pandas()
    pd.testing.assert_frame_equal(by_manifest.to_pandas(), frame)
    last = frame.groupby(level="run_id").tail(1).reset_index(level="time", drop=True)
    final = study.final()
    assert list(final.index) == [0, 1, 2, 3]
    pd.testing.assert_series_equal(final["Sat.Earth.SMA"], last["Sat.Earth.SMA"])
    assert (final["__status"] == "ok").all()
    assert study.to_dataframe().npartitions >= 1


def test_open_sweep_refuses_a_directory_without_a_manifest(tmp_path: Path) -> None:
    with pytest.raises(SweepConfigError, match=r"is not a sweep: it has no manifest\.jsonl"):
        open_sweep(tmp_path)


def test_an_opened_sweep_resumes_with_its_recorded_mission(finished: Path, tmp_path: Path) -> None:
    partial = tmp_path / "partial"
    shutil.copytree(finished, partial)
    lines = (partial / "manifest.jsonl").read_text().splitlines()
    (partial / "manifest.jsonl").write_text("\n".join(lines[:2]) + "\n")  # header + 1 run
    study = open_sweep(partial)
    assert "missing: 3" in repr(study)
    study.resume()
    assert sorted(e.run_id for e in Manifest.load(partial / "manifest.jsonl").entries) == [
        0,
        1,
        2,
        3,
    ]
    pd.testing.assert_frame_equal(study.to_pandas(), open_sweep(finished).to_pandas())


def test_resume_checks_the_recorded_overrides_before_any_run(
    finished: Path, tmp_path: Path
) -> None:
    # A manifest is data from disk: consistent with itself, but naming a field the
    # mission does not have. Resume must refuse it on a GMAT host, running nothing.
    crafted = tmp_path / "crafted"
    shutil.copytree(finished, crafted)
    lines = (crafted / "manifest.jsonl").read_text().replace("Sat.INC", "Sat.INCX").splitlines()
    (crafted / "manifest.jsonl").write_text("\n".join(lines[:2]) + "\n")
    before = sorted(p.name for p in crafted.iterdir())
    with pytest.raises(SweepConfigError, match=r"Sat\.INCX"):
        open_sweep(crafted).resume()
    assert sorted(p.name for p in crafted.iterdir()) == before
    assert len((crafted / "manifest.jsonl").read_text().splitlines()) == 2


def test_final_lazy_gives_the_same_rows(finished: Path) -> None:
    study = open_sweep(finished)
    lazy = study.final(lazy=True)
    assert lazy.known_divisions
    pd.testing.assert_frame_equal(lazy.compute(), study.final())


def test_reading_an_opened_sweep_writes_nothing(
    finished: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The tests run as root, for whom a read-only directory is writable; instead
    # every way this package writes a file or a directory is made to fail.
    import os

    from gmat_sweep import storage

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError("read-only: the reader tried to write")

    for name in ("atomic_write", "make_dirs"):
        monkeypatch.setattr(storage, name, refuse)
    monkeypatch.setattr(os, "replace", refuse)
    monkeypatch.setattr(Path, "mkdir", refuse)
    monkeypatch.setattr(Path, "write_bytes", refuse)
    study = open_sweep(finished)
    assert len(study.to_pandas().index.get_level_values("run_id").unique()) == 4
    assert list(study.final().index) == [0, 1, 2, 3]
    assert study.to_dataframe().npartitions >= 1
    assert "ok: 4" in repr(study)


@pytest.mark.parametrize("wrong", [0, False, -1, 2.5])
def test_lazy_readers_refuse_a_partition_size_that_is_not_a_positive_integer(
    finished: Path, wrong: object
) -> None:
    # 0 and False used to fall back to the default partition size without a word.
    study = open_sweep(finished)
    readers = (study.to_dataframe, study.to_ephemerides, study.to_contacts, study.to_solver_runs)
    message = rf"partition_rows={wrong!r}: .*positive integer"
    for reader in readers:
        with pytest.raises(SweepConfigError, match=message):
            reader(partition_rows=wrong)  # type: ignore[arg-type]


def test_a_numpy_partition_size_is_a_partition_size(finished: Path) -> None:
    study = open_sweep(finished)
    by_numpy = study.to_dataframe(partition_rows=np.int64(80))
    assert by_numpy.divisions == study.to_dataframe(partition_rows=80).divisions


@pytest.mark.parametrize("options", [[1], "key=abc", 5])
def test_storage_options_that_are_not_a_mapping_are_refused_by_name(
    options: Any, finished: Path, leo_basic: Path, tmp_path: Path
) -> None:
    # Before, dict(options) raised a bare TypeError or ValueError, in open_sweep from
    # deep inside fsspec.
    message = rf"storage_options={re.escape(repr(options))}: pass a dict"
    with pytest.raises(SweepConfigError, match=message):
        open_sweep(finished, storage_options=options)
    new = tmp_path / "new"
    with pytest.raises(SweepConfigError, match=message):
        sweep(leo_basic, {"Sat.SMA": [7000.0]}, out=new, storage_options=options)
    assert not new.exists()
