"""storage: durable atomic writes, directories that survive a crash, readable outputs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from s3_server import S3Server, s3_server  # noqa: F401  (the fixture, used by name)

from gmat_sweep import storage


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Every fsync (with the path its descriptor names) and rename, in order."""
    seen: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(descriptor: int) -> None:
        seen.append(("fsync", os.readlink(f"/proc/self/fd/{descriptor}")))
        real_fsync(descriptor)

    def replace(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
        seen.append(("replace", os.fspath(target)))
        real_replace(source, target)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return seen


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def test_atomic_write_fsyncs_the_file_before_the_rename_then_the_directory(
    tmp_path: Path, events: list[tuple[str, str]]
) -> None:
    target = tmp_path / "report__RF.parquet"
    storage.atomic_write(target, b"data")
    assert target.read_bytes() == b"data"
    (fsync_file, temporary), rename, directory = events
    assert fsync_file == "fsync" and Path(temporary).parent == tmp_path
    assert Path(temporary).name.startswith(".report__RF.parquet.")
    assert rename == ("replace", str(target))
    assert directory == ("fsync", str(tmp_path))
    assert os.listdir(tmp_path) == [target.name]


def test_atomic_write_respects_the_umask(tmp_path: Path, umask_022: None) -> None:
    target = tmp_path / "out.parquet"
    storage.atomic_write(target, b"data")
    assert target.stat().st_mode & 0o777 == 0o644  # group and others may read, as the manifest


def test_a_failed_atomic_write_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(source: str, target: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError, match="disk full"):
        storage.atomic_write(tmp_path / "x.parquet", b"data")
    assert os.listdir(tmp_path) == []


def test_make_dirs_fsyncs_the_parent_of_every_directory_it_creates(
    tmp_path: Path, events: list[tuple[str, str]]
) -> None:
    storage.make_dirs(tmp_path / "study" / "run-000000")
    assert events == [("fsync", str(tmp_path)), ("fsync", str(tmp_path / "study"))]
    events.clear()
    storage.make_dirs(tmp_path / "study" / "run-000001")
    assert events == [("fsync", str(tmp_path / "study"))]
    events.clear()
    storage.make_dirs(tmp_path / "study")
    assert events == []


def _parquet(path: Path) -> Path:
    pq.write_table(pa.table({"x": [1.0, 2.0]}), path)
    return path


def test_unreadable_names_missing_files_and_parquet_files_without_a_footer(
    tmp_path: Path,
) -> None:
    good = _parquet(tmp_path / "good.parquet")
    empty = tmp_path / "empty.parquet"
    empty.write_bytes(b"")
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(good.read_bytes()[:-20])
    zeros = tmp_path / "zeros.parquet"  # data that never reached the disk reads as zeros
    zeros.write_bytes(bytes(good.stat().st_size))
    log = tmp_path / "gmat.log"
    log.write_text("")
    locations = [str(p) for p in (good, empty, cut, zeros, log)]
    locations += [str(tmp_path / "missing.parquet"), str(tmp_path / "missing.log")]
    assert storage.unreadable(locations) == locations[1:4] + locations[5:]
    assert storage.unreadable([]) == []


def test_unreadable_on_s3(s3_server: S3Server, tmp_path: Path) -> None:  # noqa: F811
    options = s3_server.storage_options()
    good = s3_server.url("unreadable", "good.parquet")
    storage.atomic_write(good, _parquet(tmp_path / "g.parquet").read_bytes(), options)
    empty = s3_server.url("unreadable", "empty.parquet")
    storage.atomic_write(empty, b"", options)
    missing = s3_server.url("unreadable", "missing.parquet")
    assert storage.unreadable([good, empty, missing], options) == [empty, missing]


def test_a_write_that_need_not_be_durable_skips_the_fsyncs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    monkeypatch.setattr(os, "fsync", lambda descriptor: calls.append(descriptor))
    storage.atomic_write(tmp_path / "gmat.log", b"log", durable=False)
    assert (tmp_path / "gmat.log").read_bytes() == b"log"
    assert calls == []
    storage.atomic_write(tmp_path / "report.parquet", b"data")
    assert len(calls) == 2  # the file, then its directory


def test_settle_fsyncs_the_files_then_their_directory_then_its_parent(
    tmp_path: Path, events: list[tuple[str, str]]
) -> None:
    run_dir = tmp_path / "study" / "run-000000"
    storage.make_dirs(run_dir.parent)
    events.clear()
    storage.make_dirs(run_dir, durable=False)
    files = [run_dir / "report__RF.parquet", run_dir / "ephemeris__EF.parquet"]
    for file in files:
        storage.atomic_write(file, b"data", durable=False)
    assert [kind for kind, _ in events] == ["replace", "replace"]  # nothing durable yet
    events.clear()
    storage.settle(run_dir, files)
    assert events == [
        ("fsync", str(files[0])),
        ("fsync", str(files[1])),
        ("fsync", str(run_dir)),
        ("fsync", str(run_dir.parent)),
    ]


def test_make_dirs_not_durable_still_fsyncs_the_ancestors_it_creates(
    tmp_path: Path, events: list[tuple[str, str]]
) -> None:
    # settle() covers the run directory's own entry only; missing ancestors are made durable now.
    storage.make_dirs(tmp_path / "study" / "run-000000", durable=False)
    assert events == [("fsync", str(tmp_path))]


def test_settle_leaves_urls_alone(events: list[tuple[str, str]]) -> None:
    storage.settle("s3://bucket/study/run-000000", ["s3://bucket/study/run-000000/x.parquet"])
    assert events == []


def test_settle_on_windows_opens_files_for_writing_and_skips_directories(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Windows flushes a file (FlushFileBuffers) only through a handle open for writing,
    # and cannot open a directory at all.
    file = tmp_path / "report__RF.parquet"
    file.write_bytes(b"data")
    opened: list[tuple[str, int]] = []
    real_open = os.open
    monkeypatch.setattr(storage.sys, "platform", "win32")
    monkeypatch.setattr(
        os,
        "open",
        lambda path, flags, *a: opened.append((str(path), flags)) or real_open(path, flags, *a),
    )
    monkeypatch.setattr(os, "fsync", lambda descriptor: None)
    storage.settle(tmp_path, [file])
    assert opened == [(str(file), os.O_RDWR | getattr(os, "O_BINARY", 0))]
