"""Aggregation over synthetic sweeps: Parquet files written here, no GMAT needed."""

from __future__ import annotations

import contextlib
import pickle
import re
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import fsspec
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gmat_sweep import aggregate
from gmat_sweep.aggregate import (
    PARTITION_ROWS,
    contact_frame,
    ephemeris_frame,
    final_frame,
    lazy_contacts,
    lazy_ephemerides,
    lazy_multiindex,
    report_frame,
)
from gmat_sweep.errors import (
    ManifestCorruptError,
    OutputNameError,
    RunOutputError,
    SweepConfigError,
)
from gmat_sweep.manifest import Manifest, ManifestEntry
from gmat_sweep.spec import PathLike, RunStatus

STRING = pd.StringDtype("pyarrow")
EPOCH = pd.Timestamp("2026-01-01T12:00:00")
OK, FAILED, SKIPPED = RunStatus.OK, RunStatus.FAILED, RunStatus.SKIPPED


def _entry(
    run_id: int,
    status: RunStatus,
    output_paths: Mapping[str, PathLike] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> ManifestEntry:
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    return ManifestEntry(
        run_id=run_id,
        overrides=dict(overrides or {}),
        status=status,
        output_paths=dict(output_paths or {}),
        started_at=moment,
        ended_at=moment,
        duration_s=0.0,
        stderr=None if status is OK else "GmatRunError: boom",
        log_path=None,
    )


def _manifest(entries: list[ManifestEntry]) -> Manifest:
    return Manifest(
        script_sha256="0" * 64,
        gmat_sweep_version="0.1.0",
        gmat_run_version="0.6.0",
        gmat_install_version="test",
        python_version="3.12",
        os_platform="linux",
        sweep_seed=None,
        parameter_spec={},
        run_count=len(entries),
        entries=entries,
    )


def _report(run_id: int, rows: int = 3, *, integer_count: bool = True) -> pd.DataFrame:
    epochs = EPOCH + pd.to_timedelta(np.arange(rows) * 60, unit="s")
    count = np.arange(rows) + run_id
    return pd.DataFrame(
        {
            "Sat.UTCGregorian": epochs.as_unit("us"),
            "Sat.X": np.linspace(7000.0, 7100.0, rows) + run_id,
            "Sat.Count": count if integer_count else count.astype(np.float64),
            "Sat.SMA": np.full(rows, 7000.5 + run_id),
            "Sat.Tag": [f"r{run_id}-{i}" if i != 1 else None for i in range(rows)],
            "Sat.Flag": [i % 2 == 0 for i in range(rows)],
            # The worker adds `time` as a copy of the first datetime column.
            "time": epochs,
        }
    )


def _write(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)


REPORT_COLUMNS = [
    "time",
    "Sat.UTCGregorian",
    "Sat.X",
    "Sat.Count",
    "Sat.SMA",
    "Sat.Tag",
    "Sat.Flag",
    "Sat.Mode",
    "Sat.SMA [override]",
    "__status",
]


@pytest.fixture
def sweep(tmp_path: Path) -> tuple[Manifest, Path]:
    """Five runs, listed out of order: ok, failed, ok (float count), skipped, ok without report."""
    _write(_report(0), tmp_path / "run-000000" / "report__RF.parquet")
    _write(_report(2, integer_count=False), tmp_path / "run-000002" / "report__RF.parquet")
    _write(_report(4).drop(columns="Sat.Tag"), tmp_path / "run-000004" / "ephemeris__EPH.parquet")
    entries = [
        _entry(
            2,
            OK,
            {"report__RF": Path("run-000002/report__RF.parquet")},
            {"Sat.SMA": 7002, "Sat.Mode": "b"},
        ),
        _entry(1, FAILED, {}, {"Sat.SMA": 7001.0, "Sat.Mode": "a"}),
        _entry(
            0,
            OK,
            {"report__RF": "run-000000/report__RF.parquet"},
            {"Sat.SMA": 7000.0, "Sat.Mode": "a"},
        ),
        _entry(4, OK, {"ephemeris__EPH": "run-000004/ephemeris__EPH.parquet"}, {"Sat.SMA": 7004}),
        _entry(3, SKIPPED, {}, {"Sat.SMA": 7003.0, "Sat.Mode": "b"}),
    ]
    return _manifest(entries), tmp_path


def test_lazy_report_columns_dtypes_and_divisions(sweep: tuple[Manifest, Path]) -> None:
    manifest, root = sweep
    frame = report_frame(manifest, root, partition_rows=3)
    assert list(frame.columns) == REPORT_COLUMNS
    assert frame.npartitions == 5
    assert frame.divisions == (0, 1, 2, 3, 4, 4)
    expected = {
        "time": np.dtype("datetime64[ns]"),
        "Sat.UTCGregorian": np.dtype("datetime64[ns]"),
        "Sat.X": np.dtype("float64"),
        "Sat.Count": np.dtype("float64"),
        "Sat.SMA": np.dtype("float64"),
        "Sat.Tag": STRING,
        "Sat.Flag": pd.BooleanDtype(),
        "Sat.Mode": STRING,
        "Sat.SMA [override]": np.dtype("float64"),
        "__status": STRING,
    }
    assert frame.dtypes.to_dict() == expected
    computed = frame.compute()
    assert computed.dtypes.to_dict() == expected
    assert computed.index.name == "run_id"
    assert computed.index.dtype == np.dtype("int64")
    assert computed.index.tolist() == [0, 0, 0, 1, 2, 2, 2, 3, 4]


def test_failed_skipped_and_missing_output_are_one_row_each(
    sweep: tuple[Manifest, Path],
) -> None:
    manifest, root = sweep
    frame = report_frame(manifest, root).compute()
    for run_id, status in [(1, "failed"), (3, "skipped"), (4, "ok")]:
        row = frame.loc[[run_id]]
        assert len(row) == 1
        assert row["time"].isna().all()
        assert row[["Sat.X", "Sat.Count", "Sat.SMA"]].isna().all(axis=None)
        assert row["Sat.Tag"].isna().all()
        assert row["Sat.Flag"].isna().all()
        assert row["__status"].tolist() == [status]
        assert row["Sat.SMA [override]"].tolist() == [7000.0 + run_id]
    assert frame.loc[[3], "Sat.Mode"].tolist() == ["b"]
    assert frame.loc[[4], "Sat.Mode"].isna().all()  # run 4 did not override it
    assert (frame.loc[[0, 2], "__status"] == "ok").all()


def test_int64_and_float64_runs_unify_to_float64(sweep: tuple[Manifest, Path]) -> None:
    manifest, root = sweep
    frame = report_frame(manifest, root).compute()
    assert frame["Sat.Count"].dtype == np.dtype("float64")
    assert frame.loc[[0], "Sat.Count"].tolist() == [0.0, 1.0, 2.0]
    assert frame.loc[[2], "Sat.Count"].tolist() == [2.0, 3.0, 4.0]


def test_values_match_the_files(sweep: tuple[Manifest, Path]) -> None:
    manifest, root = sweep
    frame = report_frame(manifest, root).compute()
    source = pd.read_parquet(root / "run-000002" / "report__RF.parquet")
    run = frame.loc[[2]]
    assert run["time"].tolist() == source["time"].tolist()
    assert run["Sat.UTCGregorian"].tolist() == source["Sat.UTCGregorian"].tolist()
    assert run["Sat.X"].tolist() == source["Sat.X"].tolist()
    assert run["Sat.Tag"].tolist() == ["r2-0", pd.NA, "r2-2"]
    assert run["Sat.Flag"].tolist() == [True, False, True]
    assert run["Sat.SMA"].tolist() == [7002.5] * 3
    assert run["Sat.SMA [override]"].tolist() == [7002.0] * 3
    assert run["Sat.Mode"].tolist() == ["b"] * 3


def test_loc_touches_only_that_runs_file(sweep: tuple[Manifest, Path]) -> None:
    manifest, root = sweep
    frame = report_frame(manifest, root, partition_rows=3)
    assert frame.loc[2].optimize().npartitions == 1
    (root / "run-000000" / "report__RF.parquet").unlink()
    assert frame.loc[2].compute()["Sat.X"].tolist() == [7002.0, 7052.0, 7102.0]
    with pytest.raises(FileNotFoundError):
        frame.loc[0].compute()


def test_a_gone_file_of_an_ok_run_is_named_with_resume_as_the_fix(
    sweep: tuple[Manifest, Path],
) -> None:
    manifest, root = sweep
    for run in (2, 0):  # one the scan reads, then the one whose footer sets the layout
        gone = root / f"run-00000{run}" / "report__RF.parquet"
        gone.unlink()
        message = rf"{re.escape(str(gone))} is gone .* report 'RF' of run {run}, .* resume the"
        with pytest.raises(FileNotFoundError, match=message):
            final_frame(manifest, root)
        with pytest.raises(FileNotFoundError, match=message):
            report_frame(manifest, root).compute()


def test_column_selection_is_pushed_into_the_read(sweep: tuple[Manifest, Path]) -> None:
    manifest, root = sweep
    frame = report_frame(manifest, root)
    selected = frame[["__status", "Sat.X"]].compute()
    assert list(selected.columns) == ["__status", "Sat.X"]
    pd.testing.assert_frame_equal(selected, frame.compute()[["__status", "Sat.X"]])
    assert frame["Sat.Mode"].compute().tolist() == ["a"] * 4 + ["b"] * 3 + ["b", pd.NA]


def test_frame_survives_pickling(sweep: tuple[Manifest, Path]) -> None:
    manifest, root = sweep
    frame = report_frame(manifest, root)
    clone = pickle.loads(pickle.dumps(frame))
    pd.testing.assert_frame_equal(clone.compute(), frame.compute())


def test_pandas_form_is_the_lazy_frame_with_time_in_the_index(
    sweep: tuple[Manifest, Path],
) -> None:
    manifest, root = sweep
    eager = lazy_multiindex(manifest, root)
    lazy = report_frame(manifest, root).compute().set_index("time", append=True)
    pd.testing.assert_frame_equal(eager, lazy)
    assert eager.index.names == ["run_id", "time"]


def test_pandas_form_matches_reading_every_file_by_hand(sweep: tuple[Manifest, Path]) -> None:
    manifest, root = sweep
    result = lazy_multiindex(manifest, root)
    pieces = []
    for entry in sorted(manifest.entries, key=lambda entry: entry.run_id):
        path = entry.output_paths.get("report__RF")
        if entry.status is OK and path is not None:
            piece = pd.read_parquet(root / path)
            piece = piece[["time", *(c for c in piece.columns if c != "time")]]
        else:
            piece = pd.DataFrame({"time": [pd.NaT]})
        piece["Sat.Mode"] = entry.overrides.get("Sat.Mode")
        piece["Sat.SMA [override]"] = float(entry.overrides["Sat.SMA"])
        piece["__status"] = str(entry.status)
        piece.index = pd.Index([entry.run_id] * len(piece), name="run_id")
        pieces.append(piece)
    expected = pd.concat(pieces).astype(result.dtypes.to_dict() | {"time": "datetime64[ns]"})
    expected = expected[["time", *result.columns]].set_index("time", append=True)
    pd.testing.assert_frame_equal(result, expected)


def test_pandas_form_orders_by_time_within_a_run(tmp_path: Path) -> None:
    report = _report(0, rows=4)
    report = report.iloc[[2, 0, 3, 1]].reset_index(drop=True)
    report.loc[3, "time"] = report.loc[0, "time"]  # a tie keeps file order
    _write(report, tmp_path / "r0.parquet")
    manifest = _manifest([_entry(0, OK, {"report__RF": "r0.parquet"})])
    result = lazy_multiindex(manifest, tmp_path)
    times = report["time"]
    order = [1, 0, 3, 2]
    assert result.index.get_level_values("time").tolist() == times[order].tolist()
    assert result["Sat.X"].tolist() == report["Sat.X"][order].tolist()


def test_spool_and_eager_reads_agree(tmp_path: Path) -> None:
    big = _report(0, rows=2500)
    path = tmp_path / "run-000000" / "report__RF.parquet"
    path.parent.mkdir()
    big.to_parquet(path, index=False, row_group_size=700)
    manifest = _manifest(
        [
            _entry(0, OK, {"report__RF": "run-000000/report__RF.parquet"}),
            _entry(1, FAILED),
        ]
    )
    spooled = lazy_multiindex(manifest, tmp_path, spool=True)
    eager = lazy_multiindex(manifest, tmp_path, spool=False)
    pd.testing.assert_frame_equal(spooled, eager)
    assert len(spooled) == 2501


def test_parameters_false_drops_parameter_columns(sweep: tuple[Manifest, Path]) -> None:
    manifest, root = sweep
    frame = report_frame(manifest, root, parameters=False)
    assert list(frame.columns) == [
        c for c in REPORT_COLUMNS if c not in ("Sat.Mode", "Sat.SMA [override]")
    ]
    eager = lazy_multiindex(manifest, root, parameters=False)
    assert list(eager.columns) == [c for c in frame.columns if c != "time"]
    assert len(eager) == 9


def test_parameter_dtypes(tmp_path: Path) -> None:
    _write(_report(0), tmp_path / "r.parquet")
    overrides = [
        {"A.Int": 3, "B.Flag": True, "C.Mixed": 1.5, "D.List": [1, 2]},
        {"A.Int": 4.5, "B.Flag": False, "C.Mixed": "x"},
    ]
    manifest = _manifest(
        [
            _entry(0, OK, {"report__RF": "r.parquet"}, overrides[0]),
            _entry(1, FAILED, {}, overrides[1]),
        ]
    )
    frame = report_frame(manifest, tmp_path)
    assert frame["A.Int"].dtype == np.dtype("float64")
    assert frame["B.Flag"].dtype == pd.BooleanDtype()
    assert frame["C.Mixed"].dtype == STRING
    assert frame["D.List"].dtype == STRING
    computed = frame.compute()
    assert computed["A.Int"].tolist() == [3.0] * 3 + [4.5]
    assert computed["B.Flag"].tolist() == [True] * 3 + [False]
    assert computed["C.Mixed"].tolist() == ["1.5"] * 3 + ["x"]
    assert computed["D.List"].tolist() == ["[1, 2]"] * 3 + [pd.NA]


def test_name_none_picks_the_only_report(sweep: tuple[Manifest, Path]) -> None:
    manifest, root = sweep
    explicit = report_frame(manifest, root, name="RF").compute()
    pd.testing.assert_frame_equal(report_frame(manifest, root).compute(), explicit)


def test_name_none_with_several_reports_lists_them(tmp_path: Path) -> None:
    _write(_report(0), tmp_path / "a.parquet")
    manifest = _manifest(
        [
            _entry(0, OK, {"report__Orbit": "a.parquet", "report__Final": "a.parquet"}),
        ]
    )
    for build in (report_frame, lazy_multiindex):
        with pytest.raises(OutputNameError, match=r"'Orbit', 'Final'.*pass name=") as raised:
            build(manifest, tmp_path)
        # What a front end needs to word the choice its own way (the CLI's --name).
        assert (raised.value.kind, raised.value.available) == ("report", ("Orbit", "Final"))
        assert raised.value.requested is None
        assert isinstance(raised.value, SweepConfigError)


def test_a_sweep_without_that_kind_of_output_is_a_row_per_run_with_a_warning(
    sweep: tuple[Manifest, Path],
) -> None:
    # The reference: report-only ok runs materialise as one row with interval_id = pd.NA.
    manifest, root = sweep
    produced = r"no contact outputs.*report 'RF'.*ephemeris 'EPH'"
    with pytest.warns(UserWarning, match=produced):
        eager = lazy_contacts(manifest, root)
    run_ids = sorted(entry.run_id for entry in manifest.entries)
    assert eager.index.names == ["run_id", "interval_id"]
    assert eager.index.get_level_values("run_id").tolist() == run_ids
    assert eager.index.get_level_values("interval_id").dtype == pd.Int64Dtype()
    assert eager.index.get_level_values("interval_id").isna().all()
    by_run = sorted(manifest.entries, key=lambda entry: entry.run_id)
    assert eager["__status"].tolist() == [entry.status.value for entry in by_run]
    with pytest.warns(UserWarning, match=produced):
        lazy = contact_frame(manifest, root)
    assert lazy.compute()["interval_id"].isna().all()
    # A name asked for explicitly that no ok run produced is still refused.
    with pytest.raises(SweepConfigError, match=r"contact 'Visibility' was not produced"):
        lazy_contacts(manifest, root, name="Visibility")


def test_a_sweep_where_every_run_failed_is_one_row_per_run(tmp_path: Path) -> None:
    entries = [
        _entry(0, FAILED, {}, {"Sat.SMA": 7000.0}),
        _entry(1, SKIPPED, {}, {"Sat.SMA": 7001.0}),
        _entry(2, FAILED, {}, {"Sat.SMA": 7002.0}),
    ]
    manifest = _manifest(entries)
    for name in (None, "RF"):
        eager = lazy_multiindex(manifest, tmp_path, name=name)
        assert eager.index.names == ["run_id", "time"]
        assert eager.index.get_level_values("run_id").tolist() == [0, 1, 2]
        assert eager.index.get_level_values("time").isna().all()
        assert list(eager.columns) == ["Sat.SMA", "__status"]
        assert eager["__status"].tolist() == ["failed", "skipped", "failed"]
        assert eager["Sat.SMA"].tolist() == [7000.0, 7001.0, 7002.0]
        lazy = report_frame(manifest, tmp_path, name=name)
        pd.testing.assert_frame_equal(lazy.compute().set_index("time", append=True), eager)
    contacts = lazy_contacts(manifest, tmp_path)
    assert contacts.index.names == ["run_id", "interval_id"]
    assert contacts["__status"].tolist() == ["failed", "skipped", "failed"]
    final = final_frame(manifest, tmp_path)
    assert final.index.tolist() == [0, 1, 2]
    assert final["time"].isna().all()


def test_an_empty_manifest_is_an_empty_frame(tmp_path: Path) -> None:
    manifest = _manifest([])
    eager = lazy_multiindex(manifest, tmp_path)
    assert len(eager) == 0
    assert list(eager.columns) == ["__status"]
    assert eager.index.names == ["run_id", "time"]
    lazy = report_frame(manifest, tmp_path)
    assert list(lazy.columns) == ["time", "__status"]
    assert len(lazy.compute()) == 0


def test_unknown_name_lists_available_names(sweep: tuple[Manifest, Path]) -> None:
    manifest, root = sweep
    with pytest.raises(OutputNameError, match=r"report 'Nope' was not produced.*'RF'") as raised:
        report_frame(manifest, root, name="Nope")
    assert (raised.value.available, raised.value.requested) == (("RF",), "Nope")
    with pytest.raises(SweepConfigError, match=r"ephemeris 'RF' was not produced.*'EPH'"):
        lazy_ephemerides(manifest, root, name="RF")


def test_ok_runs_that_wrote_no_files_say_what_to_add_to_the_script(tmp_path: Path) -> None:
    manifest = _manifest([_entry(0, OK, {}), _entry(1, OK, {}), _entry(2, FAILED)])
    expected = (
        r"the sweep's 2 ok runs wrote no output files.*no ReportFile, EphemerisFile or "
        r"ContactLocator.*GUI subscribers.*Create ReportFile RF"
    )
    for read in (lazy_multiindex, report_frame, final_frame, lazy_ephemerides, lazy_contacts):
        with pytest.raises(SweepConfigError, match=expected) as raised:
            read(manifest, tmp_path)
        assert isinstance(raised.value, ValueError)  # the reference's type for this case


def test_an_ok_run_that_recorded_no_output_files_is_a_value_error(
    sweep: tuple[Manifest, Path],
) -> None:
    # An ok run records what it wrote or left unwritten; unlike an ok run that wrote
    # other outputs than the one read (a row of missing values), this is an error.
    manifest, root = sweep
    manifest.entries.append(_entry(9, OK, {}))
    manifest.entries.append(_entry(7, OK, {}))
    expected = (
        r"runs \[7, 9\] ended ok but recorded no output files.*run 0 wrote report 'RF'"
        r".*did not yet record which outputs a run left unwritten.*overwrite=True"
    )
    for read in (lazy_multiindex, report_frame, final_frame, lazy_ephemerides, lazy_contacts):
        with pytest.raises(ValueError, match=expected):
            read(manifest, root)


def test_an_ok_run_without_the_output_is_a_row_of_missing_values(
    sweep: tuple[Manifest, Path],
) -> None:
    manifest, root = sweep
    eph = "run-000004/ephemeris__EPH.parquet"
    manifest.entries.append(_entry(9, OK, {"ephemeris__EPH": eph}))
    frame = lazy_multiindex(manifest, root)
    row = frame.xs(9, level="run_id")
    assert len(row) == 1
    assert row["__status"].tolist() == ["ok"]
    assert row.drop(columns="__status").isna().all(axis=None)


def test_ephemeris_dispatches_on_its_own_key(sweep: tuple[Manifest, Path]) -> None:
    manifest, root = sweep
    frame = ephemeris_frame(manifest, root)
    assert "Sat.Tag" not in frame.columns
    computed = frame.compute()
    assert computed.loc[[4], "Sat.X"].tolist() == [7004.0, 7054.0, 7104.0]
    assert computed.loc[[0, 1, 2, 3], "__status"].tolist() == ["ok", "failed", "ok", "skipped"]
    assert computed.loc[[0, 1, 2, 3], "time"].isna().all()
    eager = lazy_ephemerides(manifest, root)
    pd.testing.assert_frame_equal(eager, computed.set_index("time", append=True))


def _contacts(rows: int, *, interval_id: bool = True) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "Start Time (UTC)": EPOCH + pd.to_timedelta(np.arange(rows) * 600, unit="s"),
            "Stop Time (UTC)": EPOCH + pd.to_timedelta(np.arange(rows) * 600 + 300, unit="s"),
            "Duration (s)": np.full(rows, 300, dtype=np.int64),
            "Observer": ["GS1"] * rows,
        }
    )
    if interval_id:
        frame.insert(0, "interval_id", np.arange(rows, dtype=np.int64))
    return frame


def test_contacts_interval_id_is_nullable_int64(tmp_path: Path) -> None:
    # A file without interval_id numbers its intervals by position, like the worker does.
    _write(_contacts(2, interval_id=False), tmp_path / "run-000000" / "contact__GS.parquet")
    _write(_contacts(3), tmp_path / "run-000002" / "contact__GS.parquet")
    _write(_report(3), tmp_path / "run-000003" / "report__RF.parquet")
    manifest = _manifest(
        [
            _entry(0, OK, {"contact__GS": "run-000000/contact__GS.parquet"}, {"Sat.SMA": 1}),
            _entry(1, FAILED, {}, {"Sat.SMA": 2}),
            _entry(2, OK, {"contact__GS": "run-000002/contact__GS.parquet"}, {"Sat.SMA": 3}),
            _entry(3, OK, {"report__RF": "run-000003/report__RF.parquet"}, {"Sat.SMA": 4}),
        ]
    )
    lazy = contact_frame(manifest, tmp_path)
    assert list(lazy.columns) == [
        "interval_id",
        "Start Time (UTC)",
        "Stop Time (UTC)",
        "Duration (s)",
        "Observer",
        "Sat.SMA",
        "__status",
    ]
    assert lazy["interval_id"].dtype == pd.Int64Dtype()
    assert lazy["Duration (s)"].dtype == np.dtype("float64")
    eager = lazy_contacts(manifest, tmp_path)
    assert eager.index.names == ["run_id", "interval_id"]
    assert eager.index.get_level_values("interval_id").dtype == pd.Int64Dtype()
    assert eager.index.tolist() == [(0, 0), (0, 1), (1, pd.NA), (2, 0), (2, 1), (2, 2), (3, pd.NA)]
    assert eager["__status"].tolist() == ["ok", "ok", "failed", "ok", "ok", "ok", "ok"]
    pd.testing.assert_frame_equal(eager, lazy.compute().set_index("interval_id", append=True))


def test_absolute_paths_and_urls_inside_the_root_are_read(tmp_path: Path) -> None:
    root = tmp_path / "root"
    inside = root / "run-000001" / "report__RF.parquet"
    _write(_report(0), root / "run-000000" / "report__RF.parquet")
    _write(_report(1), inside)
    manifest = _manifest(
        [
            _entry(0, OK, {"report__RF": "run-000000/report__RF.parquet"}),
            _entry(1, OK, {"report__RF": inside}),
            _entry(2, OK, {"report__RF": str(inside)}),
            _entry(3, OK, {"report__RF": f"file://{inside}"}),
            _entry(4, OK, {"report__RF": "run-000000/../run-000001/report__RF.parquet"}),
        ]
    )
    for where in (root, str(root), f"file://{root}", f"{root}/"):
        frame = lazy_multiindex(manifest, where)
        assert frame.loc[0, "Sat.X"].tolist() == [7000.0, 7050.0, 7100.0]
        for run_id in (1, 2, 3, 4):
            assert frame.loc[run_id, "Sat.X"].tolist() == [7001.0, 7051.0, 7101.0]


@pytest.mark.parametrize(
    "recorded",
    [
        "../outside/secret.parquet",
        "run-000000/../../outside/secret.parquet",
        "OUTSIDE",  # replaced by the absolute path of the file outside the root
        "s3://other-bucket/secret.parquet",
        "memory://root/secret.parquet",
        "",
    ],
)
def test_paths_outside_the_sweep_are_refused(tmp_path: Path, recorded: str) -> None:
    root = tmp_path / "root"
    secret = tmp_path / "outside" / "secret.parquet"
    _write(_report(0), root / "run-000000" / "report__RF.parquet")
    _write(_report(9), secret)
    recorded = str(secret) if recorded == "OUTSIDE" else recorded
    manifest = _manifest(
        [
            _entry(0, OK, {"report__RF": "run-000000/report__RF.parquet"}),
            _entry(1, OK, {"report__RF": recorded}),
        ]
    )
    for read in (lazy_multiindex, report_frame, final_frame):
        with pytest.raises(ManifestCorruptError, match=r"run 1: .* not inside the sweep root"):
            read(manifest, root)


def test_relative_output_dir_is_anchored_at_build_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(_report(0), tmp_path / "sweep" / "r.parquet")
    monkeypatch.chdir(tmp_path)
    frame = report_frame(_manifest([_entry(0, OK, {"report__RF": "r.parquet"})]), "sweep")
    monkeypatch.chdir("/")
    assert len(frame.compute()) == 3


@pytest.fixture
def memory_root() -> Iterator[str]:
    root = f"memory://gmat-sweep-test-{uuid.uuid4().hex}"
    yield root
    fsspec.filesystem("memory").rm(root, recursive=True)


def test_memory_filesystem(memory_root: str) -> None:
    _report(0).to_parquet(f"{memory_root}/run-000000/report__RF.parquet", index=False)
    _report(1, integer_count=False).to_parquet(f"{memory_root}/r1.parquet", index=False)
    manifest = _manifest(
        [
            _entry(0, OK, {"report__RF": "run-000000/report__RF.parquet"}, {"Sat.Mass": 1}),
            _entry(1, OK, {"report__RF": f"{memory_root}/r1.parquet"}, {"Sat.Mass": 2}),
            _entry(2, FAILED, {}, {"Sat.Mass": 3}),
        ]
    )
    lazy = report_frame(manifest, memory_root, storage_options={}, partition_rows=3)
    assert lazy.divisions == (0, 1, 2, 2)
    computed = lazy.compute()
    assert computed["Sat.Count"].tolist()[:6] == [0.0, 1.0, 2.0, 1.0, 2.0, 3.0]
    assert computed["Sat.Mass"].tolist() == [1.0] * 3 + [2.0] * 3 + [3.0]
    eager = lazy_multiindex(manifest, memory_root)
    pd.testing.assert_frame_equal(eager, computed.set_index("time", append=True))


def test_report_without_epoch_is_keyed_by_row(tmp_path: Path) -> None:
    final = _report(0).drop(columns=["time", "Sat.UTCGregorian"])
    _write(final, tmp_path / "run-000000" / "report__Final.parquet")
    _write(final.iloc[:2], tmp_path / "run-000002" / "report__Final.parquet")
    manifest = _manifest(
        [
            _entry(0, OK, {"report__Final": "run-000000/report__Final.parquet"}),
            _entry(1, FAILED),
            _entry(2, OK, {"report__Final": "run-000002/report__Final.parquet"}),
        ]
    )
    frame = report_frame(manifest, tmp_path)
    assert list(frame.columns)[:2] == ["row", "Sat.X"]
    assert "time" not in frame.columns
    assert frame["row"].dtype == pd.Int64Dtype()
    assert frame.compute()["row"].tolist() == [0, 1, 2, pd.NA, 0, 1]
    eager = lazy_multiindex(manifest, tmp_path, name="Final")
    assert eager.index.names == ["run_id", "row"]
    assert eager.index.tolist() == [(0, 0), (0, 1), (0, 2), (1, pd.NA), (2, 0), (2, 1)]
    assert eager["Sat.X"].tolist()[:3] == final["Sat.X"].tolist()
    pd.testing.assert_frame_equal(eager, frame.compute().set_index("row", append=True))


def test_a_run_missing_time_fails_its_partition_with_the_same_message(tmp_path: Path) -> None:
    _write(_report(0), tmp_path / "r0.parquet")
    _write(_report(1).drop(columns="time"), tmp_path / "r1.parquet")
    manifest = _manifest(
        [
            _entry(0, OK, {"report__RF": "r0.parquet"}),
            _entry(1, OK, {"report__RF": "r1.parquet"}),
        ]
    )
    frame = report_frame(manifest, tmp_path, partition_rows=3)
    assert len(frame.loc[0].compute()) == 3
    with pytest.raises(ValueError, match=r"report 'RF' has no epoch column.*run 1's file"):
        frame.loc[1].compute()
    with pytest.raises(ValueError, match=r"run 1's file"):
        lazy_multiindex(manifest, tmp_path)


def test_incompatible_column_types_name_both_runs(tmp_path: Path) -> None:
    _write(_report(0), tmp_path / "r0.parquet")
    odd = _report(1)
    odd["Sat.X"] = ["a", "b", "c"]
    _write(odd, tmp_path / "r1.parquet")
    manifest = _manifest(
        [
            _entry(0, OK, {"report__RF": "r0.parquet"}),
            _entry(1, OK, {"report__RF": "r1.parquet"}),
        ]
    )
    with pytest.raises(ValueError, match=r"run 1: column 'Sat.X'.*run 0"):
        lazy_multiindex(manifest, tmp_path)


def _runs_on(root: str, count: int, rows: int = 3) -> Manifest:
    """``count`` ok runs of ``rows`` rows each under ``root`` (a memory:// URL), one file each."""
    entries = []
    for run_id in range(count):
        relative = f"run-{run_id:06d}/report__RF.parquet"
        _report(run_id, rows).to_parquet(f"{root}/{relative}", index=False)
        entries.append(_entry(run_id, OK, {"report__RF": relative}, {"Sat.SMA": 7000.0 + run_id}))
    return _manifest(entries)


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every file opened on the memory:// filesystem, by path, in order."""
    memory = type(fsspec.filesystem("memory"))
    paths: list[str] = []
    real_open = memory._open

    def counting_open(self: Any, path: str, *args: Any, **kwargs: Any) -> Any:
        paths.append(path)
        return real_open(self, path, *args, **kwargs)

    monkeypatch.setattr(memory, "_open", counting_open)
    return paths


def test_partitions_group_runs_by_target_rows(memory_root: str) -> None:
    manifest = _runs_on(memory_root, 7)
    assert report_frame(manifest, memory_root).npartitions == 1
    frame = report_frame(manifest, memory_root, partition_rows=6)
    assert frame.npartitions == 4
    assert frame.divisions == (0, 2, 4, 6, 6)
    whole = report_frame(manifest, memory_root, partition_rows=PARTITION_ROWS).compute()
    pd.testing.assert_frame_equal(frame.compute(), whole)
    assert whole.index.tolist() == [run_id for run_id in range(7) for _ in range(3)]
    for wrong in (0, -1, 2.5, True):
        with pytest.raises(SweepConfigError, match=r"partition_rows=.*positive integer"):
            report_frame(manifest, memory_root, partition_rows=wrong)  # type: ignore[arg-type]


def test_loc_reads_only_the_files_of_its_partition(memory_root: str, opened: list[str]) -> None:
    manifest = _runs_on(memory_root, 6)
    frame = report_frame(manifest, memory_root, partition_rows=6)
    opened.clear()
    one = frame.loc[3].compute()
    assert one["Sat.SMA [override]"].tolist() == [7003.0] * 3
    assert sorted(set(opened)) == [
        f"/{memory_root.removeprefix('memory://')}/run-{run_id:06d}/report__RF.parquet"
        for run_id in (2, 3)
    ]


def test_pandas_form_reads_every_file_once_in_one_scan(
    memory_root: str, opened: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = _runs_on(memory_root, 5)
    scans: list[int] = []
    real_dataset = aggregate.ds.dataset

    def counting_dataset(source: list[str], *args: Any, **kwargs: Any) -> Any:
        scans.append(len(source))
        return real_dataset(source, *args, **kwargs)

    monkeypatch.setattr(aggregate.ds, "dataset", counting_dataset)
    opened.clear()
    frame = lazy_multiindex(manifest, memory_root)
    assert scans == [5]
    assert len(frame) == 15
    assert frame.index.is_monotonic_increasing
    # The footer of run 0 for the layout, then each file once for the data.
    assert len(opened) == 6
    assert len(set(opened)) == 5


def test_runs_sharing_one_file_each_get_its_rows(tmp_path: Path) -> None:
    _write(_report(0), tmp_path / "shared.parquet")
    manifest = _manifest(
        [
            _entry(0, OK, {"report__RF": "shared.parquet"}, {"Sat.SMA": 1}),
            _entry(1, FAILED, {}, {"Sat.SMA": 2}),
            _entry(2, OK, {"report__RF": "shared.parquet"}, {"Sat.SMA": 3}),
        ]
    )
    frame = lazy_multiindex(manifest, tmp_path)
    assert frame.index.get_level_values("run_id").tolist() == [0, 0, 0, 1, 2, 2, 2]
    assert frame.loc[2, "Sat.X"].tolist() == frame.loc[0, "Sat.X"].tolist()
    assert frame["Sat.SMA [override]"].tolist() == [1.0] * 3 + [2.0] + [3.0] * 3


def test_final_frame_is_the_last_row_of_each_run(sweep: tuple[Manifest, Path]) -> None:
    manifest, root = sweep
    final = final_frame(manifest, root)
    assert final.index.name == "run_id"
    assert final.index.tolist() == [0, 1, 2, 3, 4]
    assert list(final.columns) == REPORT_COLUMNS
    full = lazy_multiindex(manifest, root).reset_index("time")
    expected = full.groupby(level="run_id").tail(1)
    pd.testing.assert_frame_equal(final, expected)
    assert final.loc[2, "Sat.X"] == 7102.0
    assert final.loc[1, "__status"] == "failed"
    assert pd.isna(final.loc[1, "Sat.X"])
    assert final.loc[1, "Sat.SMA [override]"] == 7001.0


def test_final_frame_is_the_row_written_last_not_the_latest(tmp_path: Path) -> None:
    # A mission that propagates backward ends at its earliest time.
    report = _report(0, rows=4).iloc[[0, 3, 1, 2]].reset_index(drop=True)
    _write(report, tmp_path / "r0.parquet")
    manifest = _manifest([_entry(0, OK, {"report__RF": "r0.parquet"})])
    final = final_frame(manifest, tmp_path, parameters=False)
    assert final["time"].tolist() == [report["time"].iloc[-1]]
    assert final["Sat.X"].tolist() == [report["Sat.X"].iloc[-1]]
    assert report["time"].iloc[-1] < report["time"].max()


def test_summary_and_epoch_reports_in_one_sweep(tmp_path: Path) -> None:
    summary = _report(0, rows=1).drop(columns=["time", "Sat.UTCGregorian"])
    entries = []
    for run_id in range(3):
        paths = {
            "report__Orbit": f"run-{run_id:06d}/report__Orbit.parquet",
            "report__Final": f"run-{run_id:06d}/report__Final.parquet",
        }
        _write(_report(run_id), tmp_path / paths["report__Orbit"])
        _write(summary.assign(**{"Sat.X": 1.0 + run_id}), tmp_path / paths["report__Final"])
        entries.append(_entry(run_id, OK, paths, {"Sat.SMA": 7000 + run_id}))
    entries.append(_entry(3, FAILED, {}, {"Sat.SMA": 7003}))
    manifest = _manifest(entries)
    orbit = lazy_multiindex(manifest, tmp_path, name="Orbit")
    assert orbit.index.names == ["run_id", "time"]
    assert len(orbit) == 10
    final = lazy_multiindex(manifest, tmp_path, name="Final")
    assert final.index.names == ["run_id", "row"]
    assert final["Sat.X"].tolist()[:3] == [1.0, 2.0, 3.0]
    assert final["Sat.X"].isna().tolist() == [False, False, False, True]
    last = final_frame(manifest, tmp_path, name="Final")
    assert last["row"].tolist() == [0, 0, 0, pd.NA]
    assert last["Sat.X"].tolist()[:3] == [1.0, 2.0, 3.0]
    assert last["__status"].tolist() == ["ok", "ok", "ok", "failed"]
    orbit_last = final_frame(manifest, tmp_path, name="Orbit")
    assert orbit_last["Sat.X"].tolist()[:3] == [7100.0, 7101.0, 7102.0]


@pytest.mark.parametrize("damaged", [0, 1])
def test_a_damaged_file_names_its_run(tmp_path: Path, damaged: int) -> None:
    for run_id in (0, 1):
        _write(_report(run_id), tmp_path / f"r{run_id}.parquet")
    (tmp_path / f"r{damaged}.parquet").write_bytes(b"")  # e.g. cut short by a power loss
    manifest = _manifest(
        [
            _entry(0, OK, {"report__RF": "r0.parquet"}),
            _entry(1, OK, {"report__RF": "r1.parquet"}),
        ]
    )
    pattern = rf"report 'RF' of run {damaged}: the file .*r{damaged}.parquet cannot be read"
    with pytest.raises(RunOutputError, match=pattern):
        lazy_multiindex(manifest, tmp_path)


@settings(max_examples=30, deadline=None)
@given(
    runs=st.lists(
        st.tuples(
            st.sampled_from(["ok", "failed", "other-output"]),
            st.integers(min_value=0, max_value=4),  # rows
            st.booleans(),  # an integer column in this run, else float
            st.booleans(),  # rows written newest first
        ),
        min_size=1,
        max_size=7,
    ),
    partition_rows=st.integers(min_value=1, max_value=12),
)
def test_any_sweep_reads_like_each_file_by_hand(
    runs: list[tuple[str, int, bool, bool]], partition_rows: int
) -> None:
    with tempfile.TemporaryDirectory() as scratch, contextlib.ExitStack() as stack:
        root = Path(scratch)
        entries = []
        for run_id, (kind, rows, integer, reverse) in enumerate(runs):
            report = _report(run_id, rows, integer_count=integer)
            _write(report.iloc[::-1] if reverse else report, root / f"r{run_id}.parquet")
            paths = {"report__RF" if kind == "ok" else "ephemeris__E": f"r{run_id}.parquet"}
            status = FAILED if kind == "failed" else OK
            entries.append(_entry(run_id, status, {} if kind == "failed" else paths, {"P": run_id}))
        manifest = _manifest(entries[::-1])
        kinds = {kind for kind, *_ in runs}
        if "ok" not in kinds and "other-output" in kinds:
            # Only other outputs: every run is a row of missing values, with a warning.
            stack.enter_context(pytest.warns(UserWarning, match="produced no report outputs"))
        eager = lazy_multiindex(manifest, root)
        pieces, lasts = [], []  # each run's rows by time; the row it wrote last
        for run_id, (kind, *_) in enumerate(runs):
            if kind == "ok":
                written = pd.read_parquet(root / f"r{run_id}.parquet")
                written = written[["time", *(c for c in written.columns if c != "time")]]
                piece = written.sort_values("time", kind="stable")
            else:
                written = piece = pd.DataFrame({"time": [pd.NaT]})
            for frame in (piece, written):
                frame["P"] = float(run_id)
                frame["__status"] = "failed" if kind == "failed" else "ok"
                frame.index = pd.Index([run_id] * len(frame), dtype="int64", name="run_id")
            pieces.append(piece)
            lasts.append(written.tail(1) if len(written) else piece.tail(1))
        expected = pd.concat(pieces)
        expected = expected.astype(eager.dtypes.to_dict() | {"time": "datetime64[ns]"})
        expected = expected[["time", *eager.columns]].set_index("time", append=True)
        pd.testing.assert_frame_equal(eager, expected)
        lazy = report_frame(manifest, root, partition_rows=partition_rows)
        pd.testing.assert_frame_equal(lazy.compute().set_index("time", append=True), eager)
        final = final_frame(manifest, root)
        last = pd.concat(lasts).astype(eager.dtypes.to_dict() | {"time": "datetime64[ns]"})
        pd.testing.assert_frame_equal(final, last[["time", *eager.columns]])


def test_an_empty_first_file_does_not_decide_the_column_types(tmp_path: Path) -> None:
    # pandas writes the columns of an empty frame without a type (null): the
    # layout follows the first file that has rows.
    _write(_report(0, rows=0), tmp_path / "r0.parquet")
    _write(_report(1), tmp_path / "r1.parquet")
    manifest = _manifest(
        [
            _entry(0, OK, {"report__RF": "r0.parquet"}),
            _entry(1, OK, {"report__RF": "r1.parquet"}),
        ]
    )
    frame = lazy_multiindex(manifest, tmp_path)
    assert frame["Sat.Tag"].dtype == STRING
    assert frame["Sat.Tag"].tolist() == ["r1-0", pd.NA, "r1-2"]


def test_run_files_with_and_without_pandas_metadata_read_as_one_frame(tmp_path: Path) -> None:
    # A sweep resumed or extended across versions: earlier workers wrote each table with
    # pandas metadata (pa.Table.from_pandas), later ones build it column by column.
    import pyarrow as pa
    import pyarrow.parquet as pq

    from gmat_sweep.worker import output_tables

    def older(frame: pd.DataFrame) -> pa.Table:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        return table.add_column(0, "time", table.column("Sat.UTCGregorian"))

    def newer(frame: pd.DataFrame) -> pa.Table:
        results = SimpleNamespace(
            reports={"RF": frame},
            report_paths={"RF": Path(__file__)},
            ephemerides={},
            ephemeris_paths={},
            contacts={},
            contact_paths={},
            solver_runs={},
            solver_paths={},
        )
        table: pa.Table = output_tables(results)["report__RF"]
        return table

    frames = {}
    for mix in ("older", "newer", "mixed"):
        entries = []
        for run_id in range(4):
            report = _report(run_id).drop(columns="time")
            write = older if mix == "older" or (mix == "mixed" and run_id % 2) else newer
            path = tmp_path / mix / f"run-{run_id:06d}" / "report__RF.parquet"
            path.parent.mkdir(parents=True)
            pq.write_table(write(report), path)
            assert (pq.read_schema(path).pandas_metadata is None) is (write is newer)
            entries.append(_entry(run_id, OK, {"report__RF": path}, {"Sat.SMA": 7000 + run_id}))
        manifest = _manifest(entries)
        frames[mix] = lazy_multiindex(manifest, tmp_path / mix)
        lazy = report_frame(manifest, tmp_path / mix, partition_rows=3)
        pd.testing.assert_frame_equal(lazy.compute().set_index("time", append=True), frames[mix])
    pd.testing.assert_frame_equal(frames["mixed"], frames["older"])
    pd.testing.assert_frame_equal(frames["mixed"], frames["newer"])
