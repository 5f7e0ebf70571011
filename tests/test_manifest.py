"""Manifest: JSON Lines round trip, durable appends, torn-line tolerance, script hashes."""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import math
import os
import re
import tempfile
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gmat_sweep.errors import ManifestCorruptError, SweepConfigError
from gmat_sweep.manifest import (
    MANIFEST_SCHEMA_VERSION,
    Manifest,
    ManifestEntry,
    _entry_line,
    canonical_script_sha256,
    read_all_entries,
    script_includes_sha256,
    unreadable_ok_runs,
)
from gmat_sweep.spec import RunOutcome, RunStatus, decode, encode, to_builtins

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
file_io = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --------------------------------------------------------------------------- builders


def make_manifest(**changes: Any) -> Manifest:
    fields: dict[str, Any] = {
        "script_sha256": "ab" * 32,
        "gmat_sweep_version": "0.1.0",
        "gmat_run_version": "0.6.0",
        "gmat_install_version": "gmatpy 0.2.1 (GMAT R2026a, embedded)",
        "python_version": "3.12.1",
        "os_platform": "Linux-x86_64",
        "sweep_seed": 42,
        "parameter_spec": {"_kind": "grid", "grid": {"Sat.SMA": [7000.0, 7100.0]}},
        "run_count": 10,
        "backend": "local",
    }
    return Manifest(**(fields | changes))


def make_entry(run_id: int, status: RunStatus = RunStatus.OK, **changes: Any) -> ManifestEntry:
    run_dir = Path(f"run-{run_id:06d}")
    fields: dict[str, Any] = {
        "run_id": run_id,
        "overrides": {"Sat.SMA": 7000.0 + run_id},
        "status": status,
        "output_paths": {"report__RF": run_dir / "report__RF.parquet"}
        if status == RunStatus.OK
        else {},
        "started_at": T0 + timedelta(seconds=run_id),
        "ended_at": T0 + timedelta(seconds=run_id, milliseconds=40),
        "duration_s": 0.04,
        "stderr": None if status == RunStatus.OK else f"GmatRunError: run {run_id} diverged",
        "log_path": run_dir / "gmat.log",
    }
    return ManifestEntry(**(fields | changes))


def saved(directory: Path, entries: list[ManifestEntry]) -> tuple[Manifest, Path]:
    path = directory / "manifest.jsonl"
    manifest = make_manifest(entries=list(entries))
    manifest.save(path)
    return manifest, path


def assert_valid_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every non-blank line of the file is a JSON object; return them."""
    objects = [json.loads(line) for line in path.read_bytes().split(b"\n") if line.strip()]
    assert all(isinstance(obj, dict) for obj in objects)
    return objects


@pytest.fixture
def fsync_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = os.fsync

    def spy(descriptor: int) -> None:
        calls.append(descriptor)
        real(descriptor)

    monkeypatch.setattr(os, "fsync", spy)
    return calls


# --------------------------------------------------------------------------- strategies

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
numpy_scalars = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(np.float64),
    st.floats(allow_nan=False, allow_infinity=False, width=32).map(np.float32),
    st.integers(min_value=-(2**62), max_value=2**62).map(np.int64),
    st.booleans().map(np.bool_),
)
override_values = st.one_of(json_scalars, numpy_scalars, st.lists(json_scalars, max_size=3))
relative_paths = st.builds(
    lambda run, name: Path(f"run-{run:06d}") / name,
    st.integers(0, 999_999),
    st.from_regex(
        r"(report|ephemeris|contact)__[A-Za-z][A-Za-z0-9_]{0,8}\.parquet", fullmatch=True
    ),
)
locations = st.one_of(
    relative_paths,
    relative_paths.map(lambda p: Path("/data/sweeps") / p),
    relative_paths.map(lambda p: f"s3://bucket/study/{p.as_posix()}"),
)
offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
moments = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(2100, 1, 1), timezones=offsets
)


@st.composite
def entries(draw: st.DrawFn, run_id: int | None = None) -> ManifestEntry:
    started = draw(moments)
    return ManifestEntry(
        run_id=draw(st.integers(0, 10**6)) if run_id is None else run_id,
        overrides=draw(st.dictionaries(st.text(max_size=16), override_values, max_size=4)),
        status=draw(st.sampled_from(RunStatus)),
        output_paths=draw(st.dictionaries(st.text(min_size=1, max_size=16), locations, max_size=3)),
        started_at=started,
        ended_at=started + draw(st.timedeltas(timedelta(0), timedelta(hours=2))),
        duration_s=draw(st.floats(min_value=0, allow_infinity=False)),
        stderr=draw(st.none() | st.text(max_size=200)),
        log_path=draw(st.none() | locations),
    )


entry_lists = st.lists(entries(), max_size=6, unique_by=lambda entry: entry.run_id)
manifests = st.builds(
    make_manifest,
    script_sha256=st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
    sweep_seed=st.none() | st.integers(0, 2**64),
    parameter_spec=st.dictionaries(st.text(max_size=8), json_values, max_size=4),
    run_count=st.integers(0, 10**6),
    backend=st.sampled_from(["local", "dask", "joblib", "ray", "unknown"]),
    entries=entry_lists,
    script_includes=st.dictionaries(
        st.from_regex(r"[a-z]{1,6}/[a-z]{1,6}\.script", fullmatch=True),
        st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
        max_size=3,
    ),
    script_inputs=st.none()
    | st.dictionaries(
        st.from_regex(r"[a-z]{1,6}/[a-z]{1,6}\.(?:cof|bsp)", fullmatch=True),
        st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
        max_size=3,
    ),
)


# --------------------------------------------------------------------------- round trip


@file_io
@given(manifest=manifests)
def test_save_load_round_trip(manifest: Manifest) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "manifest.jsonl"
        manifest.save(path)
        loaded = Manifest.load(path)
    assert loaded == manifest
    for entry in loaded.entries:
        for location in [*entry.output_paths.values(), entry.log_path]:
            assert isinstance(location, Path | str | None)
            if isinstance(location, str):
                assert location.startswith("s3://")


def entry_json(entry: ManifestEntry, **extra: Any) -> str:
    """An entry line as another JSON writer might spell it (keys spaced, extra keys)."""
    return json.dumps({"kind": "entry", **to_builtins(entry), **extra})


@given(entry=entries())
def test_entry_round_trips_through_the_codec_as_plain_json(entry: ManifestEntry) -> None:
    text = encode(entry)
    assert json.loads(text)["run_id"] == entry.run_id
    assert decode(text, ManifestEntry) == entry


@file_io
@given(entry=entries())
def test_whole_file_and_line_by_line_parsers_agree(entry: ManifestEntry) -> None:
    # A file of entry lines is decoded in one call; a line of another kind sends
    # the file through the line-by-line loop. Both must give the same entry, down
    # to the UTC offset and the sign of zero (repr shows both; == compares instants).
    canonical = _entry_line(entry)
    spaced = json.dumps(json.loads(canonical), indent=1).replace("\n", " ").encode() + b"\n"
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "manifest.jsonl"
        make_manifest().save(path)
        with path.open("ab") as handle:
            handle.write(canonical + spaced)
        whole = read_all_entries(path)
        with path.open("ab") as handle:
            handle.write(b'{"kind": "note"}\n')
        by_line = read_all_entries(path)
    assert repr(whole) == repr(by_line)
    assert whole == [entry, entry]


def test_written_entry_lines_take_the_typed_decoder(tmp_path: Path) -> None:
    _, path = saved(tmp_path, [make_entry(0), make_entry(1, RunStatus.FAILED)])
    lines = path.read_bytes().splitlines()[1:]
    decoded = [decode(line, ManifestEntry) for line in lines]
    assert decoded == [make_entry(0), make_entry(1, RunStatus.FAILED)]
    assert [vars(entry) for entry in decoded] == [
        vars(e) for e in (make_entry(0), make_entry(1, RunStatus.FAILED))
    ]
    assert type(decoded[0].log_path) is type(Path("x"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        decoded[0].status = RunStatus.FAILED  # type: ignore[misc]


def test_relative_paths_stay_relative_and_urls_stay_strings(tmp_path: Path) -> None:
    entry = make_entry(
        3,
        output_paths={
            "report__RF": Path("run-000003/report__RF.parquet"),
            "ephemeris__Eph": "s3://bucket/study/run-000003/ephemeris__Eph.parquet",
        },
    )
    _, path = saved(tmp_path, [entry])
    line = json.loads(path.read_text().splitlines()[1])
    assert line["output_paths"]["report__RF"] == "run-000003/report__RF.parquet"
    assert line["log_path"] == "run-000003/gmat.log"
    loaded = Manifest.load(path).entries[0]
    assert loaded.output_paths["report__RF"] == Path("run-000003/report__RF.parquet")
    assert not Path(loaded.output_paths["report__RF"]).is_absolute()
    assert loaded.output_paths["ephemeris__Eph"] == (
        "s3://bucket/study/run-000003/ephemeris__Eph.parquet"
    )
    assert loaded.log_path == Path("run-000003/gmat.log")


def test_negative_zero_round_trips_and_non_finite_overrides_are_refused(tmp_path: Path) -> None:
    _, path = saved(tmp_path, [make_entry(0, overrides={"c": -0.0})])
    assert math.copysign(1.0, Manifest.load(path).entries[0].overrides["c"]) == -1.0
    outcome = RunOutcome.ok(0, {}, T0, T0)
    for bad in (math.nan, np.float64("inf"), [1.0, -math.inf]):
        with pytest.raises(SweepConfigError, match=r"cannot be recorded: it is not finite"):
            ManifestEntry.from_outcome(outcome, overrides={"a": bad})


def test_non_finite_header_values_are_refused_not_written_as_null(tmp_path: Path) -> None:
    # msgspec writes NaN and infinity as null: the header must refuse them as entries do.
    for bad in (math.nan, np.float64("-inf")):
        manifest = make_manifest(parameter_spec={"_kind": "grid", "grid": {"Sat.Cd": [bad]}})
        with pytest.raises(SweepConfigError, match=r"cannot be recorded: it is not finite"):
            manifest.save(tmp_path / "manifest.jsonl")
        assert not (tmp_path / "manifest.jsonl").exists()


def test_timestamps_keep_their_offset(tmp_path: Path) -> None:
    tz = timezone(timedelta(hours=5, minutes=30))
    entry = make_entry(0, started_at=datetime(2026, 3, 1, 8, 0, 0, 123456, tzinfo=tz))
    _, path = saved(tmp_path, [entry])
    started = Manifest.load(path).entries[0].started_at
    assert started == entry.started_at
    assert started.utcoffset() == timedelta(hours=5, minutes=30)
    assert started.microsecond == 123456


def test_from_outcome_copies_the_outcome_and_plains_the_overrides() -> None:
    ended = T0 + timedelta(seconds=2)
    ok = RunOutcome.ok(4, {"report__RF": Path("run-000004/report__RF.parquet")}, T0, ended)
    entry = ManifestEntry.from_outcome(
        ok,
        overrides={"Sat.SMA": np.float64(7000.5), "Sat.N": np.int64(3)},
        log_path=Path("run-000004/gmat.log"),
    )
    assert (entry.run_id, entry.status, entry.duration_s, entry.stderr) == (4, "ok", 2.0, None)
    assert entry.output_paths == ok.output_paths
    assert (entry.started_at, entry.ended_at) == (T0, ended)
    assert entry.overrides == {"Sat.SMA": 7000.5, "Sat.N": 3}
    assert type(entry.overrides["Sat.SMA"]) is float
    assert type(entry.overrides["Sat.N"]) is int
    assert entry.log_path == Path("run-000004/gmat.log")

    failed = ManifestEntry.from_outcome(RunOutcome.failed(5, "boom", T0, ended), overrides={})
    assert (failed.status, failed.stderr, failed.output_paths, failed.log_path) == (
        RunStatus.FAILED,
        "boom",
        {},
        None,
    )


# --------------------------------------------------------------------------- save / append


def test_save_creates_parents_binds_and_leaves_no_temporary_files(
    tmp_path: Path, fsync_calls: list[int]
) -> None:
    path = tmp_path / "deep" / "er" / "manifest.jsonl"
    manifest = make_manifest(entries=[make_entry(0)])
    manifest.save(path)
    assert manifest.path == path
    # deep/ and er/ into their parents, then the file, then its directory
    assert len(fsync_calls) == 4
    assert os.listdir(path.parent) == ["manifest.jsonl"]
    header, entry = assert_valid_jsonl(path)
    assert header["kind"] == "header"
    assert header["schema_version"] == MANIFEST_SCHEMA_VERSION
    assert entry["kind"] == "entry"

    manifest.entries.clear()
    fsync_calls.clear()
    manifest.save(path)
    assert len(fsync_calls) == 2  # the directories exist now: the file, then its directory
    assert len(path.read_text().splitlines()) == 1


def test_append_is_durable_after_every_call(tmp_path: Path, fsync_calls: list[int]) -> None:
    manifest, path = saved(tmp_path, [])
    fsync_calls.clear()
    for run_id in range(5):
        status = RunStatus.FAILED if run_id % 2 else RunStatus.OK
        manifest.append_entry(make_entry(run_id, status))
        assert len(fsync_calls) == run_id + 1
        objects = assert_valid_jsonl(path)
        assert [obj["run_id"] for obj in objects[1:]] == list(range(run_id + 1))
        assert Manifest.load(path) == manifest


def test_append_writes_one_line_in_one_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest, _ = saved(tmp_path, [])
    writes: list[bytes] = []
    real = os.write

    def spy(descriptor: int, data: Any) -> int:
        writes.append(bytes(data))
        return real(descriptor, data)

    monkeypatch.setattr(os, "write", spy)
    manifest.append_entry(make_entry(0, stderr="x" * 100_000))
    assert len(writes) == 1
    assert writes[0].endswith(b"\n")
    assert writes[0].count(b"\n") == 1


def test_append_without_a_bound_file_says_to_save_first() -> None:
    with pytest.raises(RuntimeError, match=r"call save\(path\) first"):
        make_manifest().append_entry(make_entry(0))


def test_object_store_manifest_appends_entry_objects_and_compacts() -> None:
    import fsspec

    fs = fsspec.filesystem("memory")
    url = f"memory://manifest-test-{uuid.uuid4().hex}/study/manifest.jsonl"
    root = url.rsplit("/", 1)[0].removeprefix("memory://")
    manifest = make_manifest()
    manifest.save(url)
    manifest.append_entry(make_entry(0))
    manifest.append_entry(make_entry(1, RunStatus.FAILED))
    manifest.append_entry(make_entry(1, RunStatus.OK))
    # Objects cannot be appended to: each entry is its own object until compaction,
    # so a driver killed now has lost nothing.
    assert len(fs.ls(f"/{root}/manifest.d", detail=False)) == 3
    crashed = Manifest.load(url)
    assert crashed == manifest
    assert [(e.run_id, e.status) for e in read_all_entries(url)] == [
        (0, "ok"),
        (1, "failed"),
        (1, "ok"),
    ]
    manifest.compact()
    assert not fs.exists(f"/{root}/manifest.d") or not fs.ls(f"/{root}/manifest.d")
    assert Manifest.load(url) == manifest
    assert len(read_all_entries(url)) == 3  # every attempt survives compaction
    crashed.append_entry(make_entry(2))  # a resumed driver appends after compaction
    assert [e.run_id for e in Manifest.load(url).entries] == [0, 1, 2]


def test_missing_object_store_manifest_is_a_clear_error() -> None:
    with pytest.raises(ManifestCorruptError, match="does not exist"):
        Manifest.load(f"memory://nothing-{uuid.uuid4().hex}/manifest.jsonl")


# --------------------------------------------------------------------------- last entry wins


def test_last_entry_wins_in_memory_on_disk_and_in_history(tmp_path: Path) -> None:
    manifest, path = saved(tmp_path, [make_entry(0), make_entry(1, RunStatus.FAILED)])
    manifest.append_entry(make_entry(2, RunStatus.FAILED))
    manifest.append_entry(make_entry(1, RunStatus.OK))

    assert [entry.run_id for entry in manifest.entries] == [0, 2, 1]
    assert manifest.find_failed() == [2]
    loaded = Manifest.load(path)
    assert loaded == manifest
    assert [(e.run_id, e.status) for e in read_all_entries(path)] == [
        (0, "ok"),
        (1, "failed"),
        (2, "failed"),
        (1, "ok"),
    ]

    loaded.append_entry(make_entry(2, RunStatus.OK))
    assert [entry.run_id for entry in loaded.entries] == [0, 1, 2]
    assert loaded.find_failed() == []
    assert Manifest.load(path) == loaded
    assert len(read_all_entries(path)) == 5


@file_io
@given(
    run_ids=st.lists(st.integers(0, 5), max_size=20),
    poke_at=st.integers(0, 8),
    poke=st.sampled_from(["copy", "reverse"]),
)
def test_append_matches_a_reference_model(run_ids: list[int], poke_at: int, poke: str) -> None:
    with tempfile.TemporaryDirectory() as directory:
        manifest, path = saved(Path(directory), [])
        expected: dict[int, ManifestEntry] = {}
        for attempt, run_id in enumerate(run_ids):
            entry = make_entry(run_id, duration_s=float(attempt))
            manifest.append_entry(entry)
            expected.pop(run_id, None)
            expected[run_id] = entry
            if attempt == poke_at:  # callers may replace or reorder the list: the index copes
                if poke == "copy":
                    manifest.entries = list(manifest.entries)
                else:
                    manifest.entries.reverse()
                    expected = dict(reversed(expected.items()))
            assert manifest.entries == list(expected.values())
        for run_id in range(10):
            assert manifest.entry_for(run_id) == expected.get(run_id)
        assert [entry.duration_s for entry in read_all_entries(path)] == [
            float(attempt) for attempt in range(len(run_ids))
        ]


def test_entries_reordered_in_place_are_reindexed(tmp_path: Path) -> None:
    manifest, _ = saved(tmp_path, [make_entry(0), make_entry(1)])
    manifest.append_entry(make_entry(2))
    manifest.entries.reverse()
    assert manifest.entry_for(0) == make_entry(0)
    manifest.append_entry(make_entry(0, RunStatus.FAILED))
    assert [(e.run_id, e.status) for e in manifest.entries] == [(2, "ok"), (1, "ok"), (0, "failed")]


def test_find_failed_and_find_missing(tmp_path: Path) -> None:
    manifest, _ = saved(
        tmp_path,
        [
            make_entry(5, RunStatus.FAILED),
            make_entry(0),
            make_entry(3, RunStatus.SKIPPED),
            make_entry(2, RunStatus.FAILED),
        ],
    )
    assert manifest.find_failed() == [5, 2]
    assert manifest.find_missing(range(7)) == [1, 4, 6]
    assert manifest.find_missing(iter([6, 1, 0, 9])) == [6, 1, 9]
    assert manifest.entry_for(3) == make_entry(3, RunStatus.SKIPPED)
    assert manifest.entry_for(4) is None


# --------------------------------------------------------------------------- torn and corrupt files


@st.composite
def torn_cuts(draw: st.DrawFn) -> tuple[list[ManifestEntry], int, bool]:
    count = draw(st.integers(1, 4))
    run_entries = [draw(entries(run_id=run_id)) for run_id in range(count)]
    return run_entries, draw(st.integers(0, 10**9)), draw(st.booleans())


@file_io
@given(case=torn_cuts())
def test_a_torn_final_line_is_ignored_and_cut_before_the_next_append(
    case: tuple[list[ManifestEntry], int, bool],
) -> None:
    run_entries, cut_seed, extend_first = case
    with tempfile.TemporaryDirectory() as directory:
        _, path = saved(Path(directory), run_entries)
        data = path.read_bytes()
        last_start = data.rindex(b"\n", 0, len(data) - 1) + 1
        cut = last_start + cut_seed % (len(data) - 1 - last_start)  # never the whole object
        path.write_bytes(data[:cut])

        loaded = Manifest.load(path)
        assert loaded.entries == run_entries[:-1]
        assert read_all_entries(path) == run_entries[:-1]

        if extend_first:  # a header rewrite (extend) also drops the torn bytes
            loaded.run_count += 1
            loaded.rewrite_header()
            assert_valid_jsonl(path)
        replacement = make_entry(len(run_entries))
        loaded.append_entry(replacement)
        assert_valid_jsonl(path)
        assert Manifest.load(path).entries == [*run_entries[:-1], replacement]
        assert data[:last_start].partition(b"\n")[2] in path.read_bytes()


@file_io
@given(case=torn_cuts())
def test_a_cut_line_that_ends_with_a_newline_is_an_error_naming_the_line(
    case: tuple[list[ManifestEntry], int, bool],
) -> None:
    run_entries, cut_seed, _ = case
    with tempfile.TemporaryDirectory() as directory:
        _, path = saved(Path(directory), run_entries)
        data = path.read_bytes()
        last_start = data.rindex(b"\n", 0, len(data) - 1) + 1
        cut = last_start + 1 + cut_seed % (len(data) - 2 - last_start)  # not blank, not whole
        path.write_bytes(data[:cut] + b"\n")
        line = 1 + len(run_entries)
        with pytest.raises(ManifestCorruptError, match=f"line {line}: not valid JSON"):
            Manifest.load(path)
        with pytest.raises(ManifestCorruptError, match=f"line {line}: .*complete line"):
            read_all_entries(path)


def test_a_complete_malformed_last_line_is_an_error_not_a_torn_line(tmp_path: Path) -> None:
    _, path = saved(tmp_path, [make_entry(0)])
    with path.open("ab") as handle:
        handle.write(b'{"kind": "entry", "run_id": 1, oops}\n')
    with pytest.raises(ManifestCorruptError, match="line 3: not valid JSON") as caught:
        Manifest.load(path)
    assert caught.value.path == path
    assert b"oops" in path.read_bytes()  # nothing was truncated


def test_rewrite_header_drops_a_torn_line_so_the_next_append_is_a_line_of_its_own(
    tmp_path: Path,
) -> None:
    _, path = saved(tmp_path, [make_entry(0), make_entry(1)])
    path.write_bytes(path.read_bytes() + b'{"kind":"entry","run_id":2,"sta')
    loaded = Manifest.load(path)
    loaded.run_count = 10
    loaded.rewrite_header()
    loaded.append_entry(make_entry(3))
    again = Manifest.load(path)
    assert again.run_count == 10
    assert [entry.run_id for entry in again.entries] == [0, 1, 3]
    assert [obj.get("run_id") for obj in assert_valid_jsonl(path)] == [None, 0, 1, 3]


def test_rewrite_header_ends_a_last_line_that_has_no_newline(tmp_path: Path) -> None:
    _, path = saved(tmp_path, [make_entry(0), make_entry(1)])
    path.write_bytes(path.read_bytes().rstrip(b"\n"))
    loaded = Manifest.load(path)
    loaded.run_count = 10
    loaded.rewrite_header()
    loaded.append_entry(make_entry(2))
    assert [entry.run_id for entry in Manifest.load(path).entries] == [0, 1, 2]


def test_rewrite_header_refuses_a_torn_file_that_grew_since_it_was_loaded(
    tmp_path: Path,
) -> None:
    _, path = saved(tmp_path, [make_entry(0)])
    path.write_bytes(path.read_bytes() + b'{"kind":"ent')
    loaded = Manifest.load(path)
    with path.open("ab") as handle:
        handle.write(b'ry"}\n')
    with pytest.raises(RuntimeError, match="changed on disk since it was loaded"):
        loaded.rewrite_header()


def test_string_statuses_are_coerced_at_construction(tmp_path: Path) -> None:
    entry = make_entry(0, status="ok")  # type: ignore[arg-type]
    assert entry.status is RunStatus.OK
    manifest, path = saved(tmp_path, [entry])
    manifest.append_entry(make_entry(1, status="failed"))  # type: ignore[arg-type]
    assert [e.status for e in Manifest.load(path).entries] == [RunStatus.OK, RunStatus.FAILED]
    outcome = RunOutcome(1, "skipped", {}, 0.0, None, T0, T0)  # type: ignore[arg-type]
    assert outcome.status is RunStatus.SKIPPED
    assert decode(encode(outcome), RunOutcome) == outcome


@pytest.mark.parametrize("status", ["OK", "done", 1])
def test_unknown_statuses_are_refused_at_construction(status: Any) -> None:
    with pytest.raises(ValueError, match=r"is not a run status; use one of 'ok', 'failed'"):
        make_entry(0, status=status)
    with pytest.raises(ValueError, match=r"is not a run status"):
        RunOutcome(1, status, {}, 0.0, None, T0, T0)


def test_a_complete_last_line_without_newline_is_kept(tmp_path: Path) -> None:
    _, path = saved(tmp_path, [make_entry(0), make_entry(1)])
    path.write_bytes(path.read_bytes().rstrip(b"\n"))
    loaded = Manifest.load(path)
    assert [entry.run_id for entry in loaded.entries] == [0, 1]
    loaded.append_entry(make_entry(2))
    assert [obj.get("run_id") for obj in assert_valid_jsonl(path)] == [None, 0, 1, 2]


def test_repair_refuses_a_file_that_grew_since_it_was_loaded(tmp_path: Path) -> None:
    _, path = saved(tmp_path, [make_entry(0)])
    path.write_bytes(path.read_bytes() + b'{"kind":"ent')
    loaded = Manifest.load(path)
    with path.open("ab") as handle:
        handle.write(b'ry"}\n')
    with pytest.raises(RuntimeError, match="changed on disk since it was loaded"):
        loaded.append_entry(make_entry(1))


def test_a_damaged_middle_line_is_an_error_naming_file_and_line(tmp_path: Path) -> None:
    _, path = saved(tmp_path, [make_entry(0), make_entry(1), make_entry(2)])
    lines = path.read_bytes().split(b"\n")
    lines[2] = lines[2][:25]
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(ManifestCorruptError) as caught:
        Manifest.load(path)
    assert caught.value.path == path
    message = str(caught.value)
    assert str(path) in message
    assert "line 3" in message
    assert "restore it from a backup" in message
    with pytest.raises(ManifestCorruptError, match="line 3"):
        read_all_entries(path)


def test_only_one_torn_line_is_tolerated(tmp_path: Path) -> None:
    _, path = saved(tmp_path, [make_entry(0)])
    path.write_bytes(path.read_bytes() + b'{"kind": "en\n{"kind": "en')
    with pytest.raises(ManifestCorruptError, match="line 3: not valid JSON"):
        Manifest.load(path)


def test_a_valid_json_line_that_is_not_an_entry_is_an_error(tmp_path: Path) -> None:
    _, path = saved(tmp_path, [make_entry(0)])
    with path.open("a") as handle:
        handle.write('{"kind": "entry", "run_id": 1}\n')
    missing = r"line 3: not a valid entry \(Object missing required field `\w+`"
    with pytest.raises(ManifestCorruptError, match=missing):
        Manifest.load(path)


@pytest.mark.parametrize(
    ("line", "what"),
    [('{"kind": "header"}', "a second header"), ("[1, 2]", 'without a "kind"')],
)
def test_stray_lines_are_errors(tmp_path: Path, line: str, what: str) -> None:
    _, path = saved(tmp_path, [make_entry(0)])
    with path.open("a") as handle:
        handle.write(line + "\n" + entry_json(make_entry(1)) + "\n")
    with pytest.raises(ManifestCorruptError, match=what):
        Manifest.load(path)


def test_missing_and_empty_files_and_bad_headers(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "manifest.jsonl"
    with pytest.raises(ManifestCorruptError, match="does not exist") as caught:
        Manifest.load(missing)
    assert caught.value.path == missing

    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    with pytest.raises(ManifestCorruptError, match="is empty"):
        Manifest.load(empty)

    headless = tmp_path / "headless.jsonl"
    headless.write_text(entry_json(make_entry(0)) + "\n")
    with pytest.raises(ManifestCorruptError, match="line 1: not a manifest header"):
        Manifest.load(headless)

    _, path = saved(tmp_path, [])
    header = json.loads(path.read_text())
    del header["run_count"]
    path.write_text(json.dumps(header) + "\n")
    with pytest.raises(ManifestCorruptError, match="Object missing required field `run_count`"):
        Manifest.load(path)
    header["run_count"] = "ten"
    path.write_text(json.dumps(header) + "\n")
    wrong_type = r"Expected `int`, got `str` - at `\$.run_count`"
    with pytest.raises(ManifestCorruptError, match=wrong_type):
        Manifest.load(path)


def _rewrite_header(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    header, *rest = path.read_text().splitlines(keepends=True)
    data = json.loads(header)
    change(data)
    path.write_text(json.dumps(data) + "\n" + "".join(rest))


def test_a_newer_schema_is_refused_with_both_versions_and_the_upgrade(tmp_path: Path) -> None:
    _, path = saved(tmp_path, [make_entry(0)])
    newer = MANIFEST_SCHEMA_VERSION + 1

    def bump(header: dict[str, Any]) -> None:
        header["schema_version"] = newer
        header["gmat_sweep_version"] = "9.0.0"

    _rewrite_header(path, bump)
    with pytest.raises(ManifestCorruptError) as caught:
        Manifest.load(path)
    message = str(caught.value)
    assert f"schema_version {newer}" in message
    assert f"schema_version {MANIFEST_SCHEMA_VERSION} or older" in message
    assert "9.0.0" in message
    assert "upgrade gmat_sweep to that version or newer" in message
    assert caught.value.path == path


def test_a_missing_schema_version_means_1(tmp_path: Path) -> None:
    _, path = saved(tmp_path, [make_entry(0)])
    _rewrite_header(path, lambda header: header.pop("schema_version"))
    assert Manifest.load(path).schema_version == 1


def test_unknown_keys_and_line_kinds_are_ignored(tmp_path: Path) -> None:
    _, path = saved(tmp_path, [make_entry(0)])

    def extend(header: dict[str, Any]) -> None:
        header["from_the_future"] = {"x": 1}
        del header["backend"]
        del header["script_includes"]
        del header["script_inputs"]

    _rewrite_header(path, extend)
    with path.open("a") as handle:
        handle.write(json.dumps({"kind": "note", "text": "hello"}) + "\n")
        handle.write(entry_json(make_entry(1), gpu=3) + "\n")
    loaded = Manifest.load(path)
    assert loaded.backend == "unknown"
    assert loaded.script_includes == {}
    assert loaded.script_inputs is None  # written before input files were recorded
    assert loaded.entries == [make_entry(0), make_entry(1)]


def test_blank_lines_and_crlf_line_ends_are_tolerated(tmp_path: Path) -> None:
    _, path = saved(tmp_path, [make_entry(0), make_entry(1)])
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n\n"))
    assert [entry.run_id for entry in Manifest.load(path).entries] == [0, 1]


# Lines exactly as gmat_sweep wrote them before its msgspec codec (json.dumps with
# allow_nan=True): "+00:00" offsets, optional keys omitted, \u escapes, and the JSON
# extensions NaN (a non-finite override) and Infinity (a one-sided truncnorm bound).
_LEGACY_HEADER = (
    '{"kind":"header","schema_version":1,"script_sha256":"' + "ab" * 32 + '",'
    '"script_includes":{},"gmat_sweep_version":"0.1","gmat_run_version":"0.6",'
    '"gmat_install_version":"x","python_version":"3.12","os_platform":"linux",'
    '"backend":"local","sweep_seed":1,"run_count":2,"parameter_spec":{"_kind":"monte_carlo",'
    '"n":2,"seed":1,"perturb":{"Sat.Cd":{"dist":"scipy","name":"truncnorm",'
    '"args":[-2.0,Infinity],"kwds":{"loc":2.2,"scale":0.1}}}},"script_path":"",'
    '"numpy_version":"","scipy_version":""}\n'
)
_LEGACY_ENTRIES = (
    '{"kind":"entry","run_id":0,"status":"ok","overrides":{"Sat.Cd":2.1,"Sat.Id":"\\u00e9"},'
    '"output_paths":{"report__RF":"run-000000/report__RF.parquet"},'
    '"log_path":"run-000000/gmat.log","started_at":"2026-01-01T12:00:00.012000+00:00",'
    '"ended_at":"2026-01-01T12:00:00.055000+00:00","duration_s":0.043,"stderr":null}\n',
    '{"kind":"entry","run_id":1,"status":"failed","overrides":{"Sat.Cd":NaN},'
    '"output_paths":{},"log_path":null,"started_at":"2026-01-01T14:00:00+02:00",'
    '"ended_at":"2026-01-01T14:00:01+02:00","duration_s":1.0,"stderr":"boom"}\n',
)


def test_manifests_older_versions_wrote_with_nan_and_infinity_still_load(tmp_path: Path) -> None:
    import fsspec

    path = tmp_path / "manifest.jsonl"
    path.write_text(_LEGACY_HEADER + "".join(_LEGACY_ENTRIES))
    url = f"memory://legacy-{uuid.uuid4().hex}/manifest.jsonl"
    fs = fsspec.filesystem("memory")
    fs.pipe(url, _LEGACY_HEADER.encode())
    for number, line in enumerate(_LEGACY_ENTRIES):  # uncompacted entry objects
        fs.pipe(
            url.replace("manifest.jsonl", f"manifest.d/{number:020d}-{number:012x}.json"),
            line.encode(),
        )
    for manifest in (Manifest.load(path), Manifest.load(url)):
        args = manifest.parameter_spec["perturb"]["Sat.Cd"]["args"]
        assert args == [-2.0, math.inf]
        ok, failed = manifest.entries
        assert ok.overrides == {"Sat.Cd": 2.1, "Sat.Id": "\u00e9"}
        assert ok.output_paths == {"report__RF": Path("run-000000/report__RF.parquet")}
        assert ok.started_at == T0 + timedelta(microseconds=12000)
        assert math.isnan(failed.overrides["Sat.Cd"])
        assert failed.started_at.utcoffset() == timedelta(hours=2)


def test_load_binds_the_manifest(tmp_path: Path) -> None:
    _, path = saved(tmp_path, [])
    loaded = Manifest.load(str(path))
    assert loaded.path == path
    loaded.append_entry(make_entry(0))
    assert len(read_all_entries(path)) == 1


def test_the_dataclass_fields_are_the_records_fields_only(tmp_path: Path) -> None:
    # The reference's signature, in order, then this version's additions; the file the
    # manifest is bound to is not a field, so asdict() of a loaded manifest equals the
    # saved one's.
    names = [field.name for field in dataclasses.fields(Manifest)]
    assert names[:12] == [
        "script_sha256",
        "gmat_sweep_version",
        "gmat_run_version",
        "gmat_install_version",
        "python_version",
        "os_platform",
        "sweep_seed",
        "parameter_spec",
        "run_count",
        "backend",
        "schema_version",
        "entries",
    ]
    assert not [name for name in names if name.startswith("_")]
    manifest, path = saved(tmp_path, [make_entry(0)])
    manifest.append_entry(make_entry(1, RunStatus.FAILED))
    assert dataclasses.asdict(Manifest.load(path)) == dataclasses.asdict(manifest)


# --------------------------------------------------------------------------- script hashes


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


lines_of_text = st.lists(
    st.text(st.characters(exclude_characters="\r\n", exclude_categories=["Cs"]), max_size=20),
    min_size=1,
    max_size=8,
)


@settings(deadline=None)
@given(
    lines=lines_of_text,
    ending=st.sampled_from(["\n", "\r\n", "\r"]),
    trailing=st.lists(st.sampled_from(["\n", "\r\n", "\r"]), max_size=3),
)
def test_script_hash_ignores_line_endings_and_trailing_newlines(
    lines: list[str], ending: str, trailing: list[str]
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        unix = Path(directory) / "unix.script"
        unix.write_bytes("\n".join(lines).encode())
        other = Path(directory) / "other.script"
        other.write_bytes((ending.join(lines) + "".join(trailing)).encode())
        assert canonical_script_sha256(other) == canonical_script_sha256(unix)
        assert canonical_script_sha256(unix) == _sha("\n".join(lines).rstrip("\n") + "\n")


def test_script_hash_known_values(tmp_path: Path) -> None:
    script = tmp_path / "m.script"
    script.write_bytes(b"Create Spacecraft Sat;\r\nSat.SMA = 7000;\r\n\r\n\r\n")
    assert canonical_script_sha256(script) == _sha("Create Spacecraft Sat;\nSat.SMA = 7000;\n")
    script.write_bytes(b"")
    assert canonical_script_sha256(str(script)) == _sha("\n")
    script.write_bytes(b"Sat.SMA = 7000;")
    assert canonical_script_sha256(script) != _sha("Sat.SMA = 7001;\n")


def test_script_hash_errors(tmp_path: Path) -> None:
    with pytest.raises(SweepConfigError, match="does not exist"):
        canonical_script_sha256(tmp_path / "missing.script")
    latin1 = tmp_path / "latin1.script"
    latin1.write_bytes("% caf\u00e9\n".encode("latin-1"))
    with pytest.raises(SweepConfigError, match="not UTF-8 text"):
        canonical_script_sha256(latin1)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_includes_are_hashed_recursively_relative_to_the_including_file(tmp_path: Path) -> None:
    top = _write(
        tmp_path / "mission" / "top.script",
        "Create Spacecraft Sat;\n"
        "#Include 'sub/a.script'\n"
        '   #Include "b.script"\n'
        "% #Include 'commented_out.script'\n"
        "#include 'lowercase_is_not_gmat.script'\n"
        "#Include ../common/env.script;\n",
    )
    a = _write(tmp_path / "mission" / "sub" / "a.script", "#Include c.script % inner\n")
    c = _write(tmp_path / "mission" / "sub" / "c.script", "#Include '../top.script'\nX = 1;\n")
    b = _write(tmp_path / "mission" / "b.script", "\t#Include 'sub/a.script'\n")
    env = _write(tmp_path / "common" / "env.script", "Y = 2;\r\n")

    hashes = script_includes_sha256(top)
    assert hashes == {
        "sub/a.script": canonical_script_sha256(a),
        "sub/c.script": canonical_script_sha256(c),
        "b.script": canonical_script_sha256(b),
        "../common/env.script": canonical_script_sha256(env),
    }
    assert list(hashes) == ["sub/a.script", "sub/c.script", "b.script", "../common/env.script"]

    c.write_text("#Include '../top.script'\nX = 2;\n")
    assert script_includes_sha256(top)["sub/c.script"] != hashes["sub/c.script"]


def test_a_script_without_includes_has_none(tmp_path: Path) -> None:
    assert script_includes_sha256(_write(tmp_path / "m.script", "Create Spacecraft Sat;\n")) == {}


def test_a_self_include_is_not_listed(tmp_path: Path) -> None:
    top = _write(tmp_path / "top.script", "#Include 'top.script'\n")
    assert script_includes_sha256(top) == {}


def test_an_absolute_include_keeps_its_absolute_key(tmp_path: Path) -> None:
    shared = _write(tmp_path / "shared" / "env.script", "Y = 2;\n")
    top = _write(tmp_path / "m" / "top.script", f"#Include '{shared.as_posix()}'\n")
    assert script_includes_sha256(top) == {shared.as_posix(): canonical_script_sha256(shared)}


def test_a_missing_include_names_script_line_and_file(tmp_path: Path) -> None:
    top = _write(tmp_path / "top.script", "#Include 'sub/a.script'\n")
    a = _write(tmp_path / "sub" / "a.script", "X = 1;\n\n#Include 'gone.script'\n")
    with pytest.raises(SweepConfigError) as caught:
        script_includes_sha256(top)
    message = str(caught.value)
    assert str(a) in message
    assert "line 3" in message
    assert "'gone.script'" in message
    assert str(tmp_path / "sub" / "gone.script") in message


# --------------------------------------------------------------------------- docs


def test_the_schema_doc_example_loads_as_documented(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = (Path(__file__).parents[1] / "docs" / "reference" / "manifest-schema.md").read_text()
    example = doc.split("```json\n")[1].split("```")[0]
    objects: list[str] = []
    for line in example.splitlines():
        if line.startswith(" "):  # the header is wrapped in the doc for reading
            objects[-1] += line[1:]
        else:
            objects.append(line)
    study = tmp_path / "study"
    study.mkdir()
    (study / "manifest.jsonl").write_text("".join(obj + "\n" for obj in objects))
    monkeypatch.chdir(tmp_path)
    exec(doc.split("```python\n")[1].split("```")[0], {})
    assert len(read_all_entries(study / "manifest.jsonl")) == 3


def test_unreadable_ok_runs_names_ok_runs_with_a_missing_or_broken_output(
    tmp_path: Path,
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    entries = [make_entry(run_id) for run_id in range(4)] + [make_entry(4, RunStatus.FAILED)]
    manifest, _ = saved(tmp_path, entries)
    for run_id in range(4):
        (tmp_path / f"run-{run_id:06d}").mkdir()
        pq.write_table(pa.table({"x": [1.0]}), tmp_path / f"run-{run_id:06d}/report__RF.parquet")
    (tmp_path / "run-000001/report__RF.parquet").write_bytes(b"")  # a crash lost the data
    (tmp_path / "run-000003/report__RF.parquet").unlink()  # a crash lost the file
    assert unreadable_ok_runs(manifest, tmp_path) == [1, 3]


@pytest.mark.parametrize("moment", ["list_files", "read_many"])
def test_a_reader_racing_a_compaction_reads_again_and_misses_nothing(
    moment: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gmat_sweep import storage

    url = f"memory://manifest-test-{uuid.uuid4().hex}/study/manifest.jsonl"
    writer = make_manifest()
    writer.save(url)
    for run_id in range(3):
        writer.append_entry(make_entry(run_id))
    real = getattr(storage, moment)
    compacted: list[bool] = []

    def racing(*args: Any, **kwargs: Any) -> Any:
        if not compacted:  # the writer compacts between the reader's steps
            compacted.append(True)
            writer.compact()
        return real(*args, **kwargs)

    monkeypatch.setattr(storage, moment, racing)
    assert [entry.run_id for entry in Manifest.load(url).entries] == [0, 1, 2]
    assert compacted


@pytest.mark.parametrize("run_count", [-1, 10_000_001, 10**15])
def test_a_header_run_count_beyond_the_cap_is_refused_at_load(
    tmp_path: Path, run_count: int
) -> None:
    _, path = saved(tmp_path, [])
    header = json.loads(path.read_text())
    header["run_count"] = run_count
    path.write_text(json.dumps(header) + "\n")
    with pytest.raises(ManifestCorruptError, match=f"run_count {run_count} is outside 0..10000000"):
        Manifest.load(path)


def test_an_append_the_disk_refuses_names_the_manifest_and_says_to_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest, path = saved(tmp_path, [make_entry(0)])

    def full(descriptor: int, data: Any) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with monkeypatch.context() as patched:
        patched.setattr(os, "write", full)
        with pytest.raises(OSError, match="No space left on device") as refused:
            manifest.append_entry(make_entry(1))
    message = str(refused.value)
    assert refused.value.errno == errno.ENOSPC
    assert str(path) in message and "No space left on device" in message
    assert "resume" in message
    assert [entry.run_id for entry in Manifest.load(path).entries] == [0]
    # The sweep directory removed while the sweep runs: the same, not a bare FileNotFoundError.
    path.unlink()
    with pytest.raises(FileNotFoundError) as gone:
        manifest.append_entry(make_entry(1))
    assert str(path) in str(gone.value) and "resume" in str(gone.value)


def _first_cells(doc: str, heading: str) -> set[str]:
    """The keys named in the first column of the first table under ``heading``."""
    section = doc.split(f"\n{heading}\n", 1)[1]
    table_end = section.index("\n\n", section.index("\n|"))
    rows = [line for line in section[:table_end].splitlines() if line.startswith("| `")]
    return {key for row in rows for key in re.findall(r"`(\w+)`", row.split("|")[1])}


def test_the_schema_doc_lists_every_key_the_writer_writes(tmp_path: Path) -> None:
    doc = (Path(__file__).parents[1] / "docs" / "reference" / "manifest-schema.md").read_text()
    _, path = saved(tmp_path, [make_entry(0)])
    header, entry = assert_valid_jsonl(path)
    assert _first_cells(doc, "## Header line") == set(header)
    assert _first_cells(doc, "## Entry lines") == set(entry)
