"""One table over every run of a sweep, built from the manifest alone.

Each run writes its outputs as Parquet (``report__<Name>``,
``ephemeris__<Name>``, ``contact__<Name>``, ``solver__<Name>`` in
:attr:`~gmat_sweep.manifest.ManifestEntry.output_paths`). This module stacks
one output across all runs, in three forms with one implementation:

* lazy :mod:`dask.dataframe` frames (:func:`report_frame`,
  :func:`ephemeris_frame`, :func:`contact_frame`, :func:`solver_frame`),
  indexed by ``run_id`` with known divisions and built from the manifest and
  the metadata of a single file, so building one over 100,000 runs reads no
  data;
* pandas frames (:func:`lazy_multiindex`, :func:`lazy_ephemerides`,
  :func:`lazy_contacts`, :func:`lazy_solver_runs`), indexed by
  ``(run_id, time)``, ``(run_id, row)`` for a report without an epoch
  column, ``(run_id, interval_id)`` or ``(run_id, iteration)``: the same
  rows, read with one dataset scan over every file and no per-run Python
  step;
* :func:`final_frame`: the last row of every run, indexed by ``run_id``;
  :func:`converged_frame`: whether each solver converged in each run.

Failure is data: a failed or skipped run, or an ok run that did not write the
requested output, is one row with missing values and its ``__status``; a
sweep in which no run wrote anything is one such row per run.

Every column has one dtype across all runs, fixed before any data is read:
numbers are ``float64`` (GMAT writes a column as int64 in one run and float64
in another), booleans ``boolean``, strings ``string`` (pyarrow-backed, the
dtype Dask converts strings to), timestamps ``datetime64[ns]``, and the
``row`` / ``interval_id`` keys nullable ``Int64``. The scan casts each file
to that schema. Every path in the manifest must lie inside the sweep
(:func:`gmat_sweep.containment.locate`), and every read goes through the
sweep's filesystem, so sweeps on ``s3://`` (or any fsspec filesystem) read
like local ones.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import numbers
import pickle
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from gmat_sweep import storage
from gmat_sweep.containment import locator, sweep_root
from gmat_sweep.errors import (
    NoOutputFilesError,
    OutputNameError,
    RunOutputError,
    SweepConfigError,
)
from gmat_sweep.spec import CONVERGED, PathLike, RunStatus, is_url, is_whole, to_plain

if TYPE_CHECKING:
    import dask.dataframe as dd

    from gmat_sweep.manifest import Manifest, ManifestEntry

RUN_ID = "run_id"
"""Name of the index level that holds each row's run."""

TIME = "time"
"""Epoch column every report and ephemeris Parquet carries when it has an epoch."""

ROW = "row"
"""Key of a report without an epoch column: the row's position in its run."""

INTERVAL_ID = "interval_id"
"""Key of a contact row: the visibility interval's position in its run."""

ITERATION = "iteration"
"""Key of a solver row: the iteration number GMAT's solver log gives the pass."""

STATUS = "__status"
"""Column holding each row's run status: ``"ok"``, ``"failed"`` or ``"skipped"``."""

OVERRIDE_SUFFIX = " [override]"
"""Appended to a parameter column whose field path is also an output column's name."""

PARTITION_ROWS = 100_000
"""Default target rows per partition of the lazy frames.

About 10 MB of a typical report per partition: few enough tasks that Dask's
per-task cost vanishes next to the read (100 partitions for 100,000 runs of a
100-row report), small enough that ``.loc[run_id]`` reads a bounded number of
files (about 1,400 for a 72-row report)."""

_STRING = pd.StringDtype("pyarrow")
_FLOAT = "float64"
_BOOLEAN = "boolean"
_STATUS_TEXT = {status.value: status.value for status in RunStatus}
_ARROW_TYPES = {_FLOAT: pa.float64(), _BOOLEAN: pa.bool_(), "string": pa.large_string()}
_NO_TIME = np.iinfo(np.int64).max
"""Sort value of a missing key: missing times and intervals sort last within their run."""
End = Literal["first", "last"]
"""Which of a run's rows, in the order GMAT wrote them."""


@dataclass(frozen=True, slots=True)
class _Kind:
    """One kind of run output and the names users know it by."""

    prefix: str
    key: str
    lazy_function: str
    pandas_function: str


_REPORT = _Kind("report", TIME, "report_frame", "lazy_multiindex")
_EPHEMERIS = _Kind("ephemeris", TIME, "ephemeris_frame", "lazy_ephemerides")
_CONTACT = _Kind("contact", INTERVAL_ID, "contact_frame", "lazy_contacts")
_SOLVER = _Kind("solver", ITERATION, "solver_frame", "lazy_solver_runs")
_KINDS = (_REPORT, _EPHEMERIS, _CONTACT, _SOLVER)


@dataclass(frozen=True, slots=True)
class _Runs:
    """Consecutive runs of the frame, by column: what one partition (or the whole read) needs.

    ``locations`` holds each run's file, or ``None`` for a run without this
    output; ``parameters`` one column of values per parameter. Dask tokenizes
    ``from_map``'s iterables element by element; hashing these columns'
    pickle once is far cheaper than tokenizing each value.
    """

    run_ids: tuple[int, ...]
    locations: tuple[str | None, ...]
    statuses: tuple[str, ...]
    parameters: tuple[tuple[Any, ...], ...]
    token: str = field(init=False)

    def __post_init__(self) -> None:
        payload = (self.run_ids, self.locations, self.statuses, self.parameters)
        digest = hashlib.sha256(pickle.dumps(payload, protocol=5)).hexdigest()
        object.__setattr__(self, "token", digest)

    def __len__(self) -> int:
        return len(self.run_ids)

    def __dask_tokenize__(self) -> str:
        return self.token

    def part(self, start: int, stop: int) -> _Runs:
        """Runs ``start`` .. ``stop - 1``."""
        return _Runs(
            self.run_ids[start:stop],
            self.locations[start:stop],
            self.statuses[start:stop],
            tuple(column[start:stop] for column in self.parameters),
        )


@dataclass(frozen=True, slots=True)
class _Layout:
    """The columns of one aggregated output and the Arrow type each is read as.

    ``sources`` lists the key and then the output's own columns in file order,
    each with the Arrow type every run's values are cast to before conversion
    to pandas, so all runs share one pandas dtype. A ``row`` key, and an
    ``interval_id`` a file does not carry, is the row's position in its run.
    ``schema_run`` / ``schema_location`` name the file the layout follows
    (``None`` when no run wrote anything), ``rows_per_run`` its row count.
    """

    kind: _Kind
    name: str | None
    key: str
    sources: tuple[tuple[str, pa.DataType], ...]
    parameter_columns: tuple[str, ...]
    parameter_dtypes: tuple[str, ...]
    schema_run: int | None
    schema_location: str | None
    rows_per_run: int

    @property
    def columns(self) -> list[str]:
        """Every column of the frame, in order."""
        return [*(column for column, _ in self.sources), *self.parameter_columns, STATUS]

    @property
    def label(self) -> str:
        return f"{self.kind.prefix} {self.name!r}"


class _Rows(NamedTuple):
    """Rows of several runs, in order: Arrow columns plus each row's run (position in ``_Runs``)."""

    table: pa.Table
    runs: np.ndarray


@dataclass(frozen=True)
class _Reader:
    """Reads the rows of some runs; the function ``dask.dataframe.from_map`` maps over partitions.

    Every read is one pyarrow dataset scan of the runs' files, cast to the
    layout's schema. Its ``columns`` keyword lets Dask push column selections
    down into the scan.
    """

    layout: _Layout
    root: str
    storage_options: dict[str, Any]
    only: End | None = None
    """Read only the row each run wrote first or last, in file order (:func:`end_frame`)."""

    def __call__(self, runs: _Runs, columns: Sequence[str] | None = None) -> pd.DataFrame:
        return self.frame(runs, self.layout.columns if columns is None else list(columns))

    def meta(self) -> pd.DataFrame:
        """The frame's empty prototype: every column with its final dtype."""
        nobody = _Runs((), (), (), tuple(() for _ in self.layout.parameter_columns))
        return self(nobody)

    def frame(self, runs: _Runs, wanted: Sequence[str]) -> pd.DataFrame:
        """The rows of ``runs`` as pandas, indexed by ``run_id``, columns ``wanted``."""
        rows = self.rows(runs, wanted)
        return _to_pandas(_end_rows(rows, self.only) if self.only else rows, runs)

    def rows(self, runs: _Runs, wanted: Sequence[str]) -> _Rows:
        """The rows of ``runs``: ordered by run, then key (ties keep file order).

        With :attr:`only` each run's rows keep their file order.

        Each run contributes its file's rows, or one row of missing values
        when it has no file. The key is read even when not ``wanted``, so
        every column selection sees the same row order.
        """
        layout = self.layout
        key = layout.key
        chosen = set(wanted)
        sources = [
            (column, kind)
            for column, kind in layout.sources
            if column != ROW and (column in chosen or column == key)
        ]
        schema = pa.schema(sources)
        codes, files = pd.factorize(pd.Series(runs.locations, dtype=object), use_na_sentinel=True)
        data, counts = self._scan(list(files), schema, runs, codes)
        starts = np.cumsum(counts) - counts
        has_file = codes >= 0
        run_rows = np.where(has_file, np.append(counts, 0)[codes], 1)
        run_of_row = np.repeat(np.arange(len(runs)), run_rows)
        within = np.arange(len(run_of_row)) - np.repeat(np.cumsum(run_rows) - run_rows, run_rows)
        filler = np.repeat(~has_file, run_rows)
        if key == INTERVAL_ID and key in schema.names and data.column(key).null_count:
            # The worker numbers intervals by position, so a key the file
            # does not carry is that position.
            position = np.arange(data.num_rows) - np.repeat(starts, counts)
            numbered = pc.coalesce(data.column(key), pa.array(position))
            data = data.set_column(schema.get_field_index(key), key, numbered)
        if filler.any() or not np.array_equal(codes, np.arange(len(files))):
            nulls = pa.table([pa.nulls(1, kind) for kind in schema.types], schema=schema)
            picks = np.where(
                filler, data.num_rows, np.repeat(np.append(starts, 0)[codes], run_rows) + within
            )
            data = pa.concat_tables([data, nulls]).take(picks)
        if key in schema.names and data.num_rows > 1 and not self.only:
            data = _sorted_within_runs(data, key, run_of_row)
        arrays: list[pa.Array | pa.ChunkedArray] = []
        dtypes = dict(zip(layout.parameter_columns, layout.parameter_dtypes, strict=True))
        values = dict(zip(layout.parameter_columns, runs.parameters, strict=True))
        for column in wanted:
            if column == STATUS:
                arrays.append(pa.array(runs.statuses, pa.large_string()).take(run_of_row))
            elif column in values:
                kind = _ARROW_TYPES[dtypes[column]]
                arrays.append(pa.array(values[column], kind).take(run_of_row))
            elif column == ROW:
                arrays.append(pa.array(within, mask=filler))
            else:
                arrays.append(data.column(column))
        return _Rows(pa.Table.from_arrays(arrays, names=list(wanted)), run_of_row)

    def _scan(
        self, files: list[str], schema: pa.Schema, runs: _Runs, codes: np.ndarray
    ) -> tuple[pa.Table, np.ndarray]:
        """One dataset scan of ``files``, each once, in order: their rows and row counts."""
        counts = np.zeros(len(files), dtype=np.int64)
        if not files:
            return schema.empty_table(), counts
        opened = _filesystem(self.root, self.storage_options)
        paths = [opened.path_of(file) for file in files]
        position = {path: index for index, path in enumerate(paths)}
        batches = []
        known = {column for column, _ in self.layout.sources} | {TIME}
        try:
            with storage.reading(self.root):  # a store that stops answering mid-scan
                dataset = ds.dataset(
                    paths, schema=schema, format="parquet", filesystem=opened.filesystem
                )
                for tagged in dataset.scanner(
                    columns=schema.names, use_threads=True
                ).scan_batches():
                    batches.append(tagged.record_batch)
                    file = position[tagged.fragment.path]
                    if not counts[file]:
                        names = tagged.fragment.physical_schema.names
                        extra = [n for n in names if n not in known]
                        if extra:
                            run = self._first_run(file, runs, codes)
                            self._refuse_extra(extra, files[file], run)
                    counts[file] += tagged.record_batch.num_rows
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as error:
            self._explain(error, files, runs, codes)
            raise
        except FileNotFoundError as missing:
            gone = position.get(str(missing.args[0]) if missing.args else "")
            if gone is None:
                raise
            run = self._first_run(gone, runs, codes)
            with _reading(opened, self.layout.label, run, files[gone]):
                raise
        table = pa.Table.from_batches(batches, schema=schema)
        if self.layout.key == TIME and TIME in schema.names and table.column(TIME).null_count:
            self._check_time(table, files, counts, runs, codes)
        return table, counts

    def _refuse_extra(self, extra: list[str], location: str, run: int) -> None:
        """Raise: run ``run``'s file has columns ``extra`` the frame's layout lacks."""
        layout = self.layout
        raise RunOutputError(
            f"{layout.label} of run {run} ({location}) has the columns {extra}, which run "
            f"{layout.schema_run}'s file ({layout.schema_location}, whose columns the frame "
            "follows) has not; reading it would drop them, so it is refused. The mission "
            "writes different values into this report on different runs (Report commands "
            "with different parameter lists, in branches the runs take differently): give "
            "each Report command its own ReportFile with its own column list, or read the "
            "runs' Parquet files one by one with pandas.read_parquet"
        )

    def _first_run(self, file: int, runs: _Runs, codes: np.ndarray) -> int:
        return runs.run_ids[int(np.argmax(codes == file))]

    def _check_time(
        self, table: pa.Table, files: list[str], counts: np.ndarray, runs: _Runs, codes: np.ndarray
    ) -> None:
        """Raise if a file with missing times has no ``time`` column at all (the layout's has)."""
        layout = self.layout
        missing = table.column(TIME).is_null().to_numpy(zero_copy_only=False)
        suspects = np.unique(np.repeat(np.arange(len(files)), counts)[missing])
        opened = _filesystem(self.root, self.storage_options)
        for file in suspects:
            run, location = self._first_run(file, runs, codes), files[file]
            if TIME not in _read_file(opened, layout.label, run, location, pq.read_schema).names:
                raise RunOutputError(
                    f"{layout.label} has no epoch column in run {run}'s file {location} (no "
                    f"'time' column), while run {layout.schema_run}'s file, whose layout the "
                    "frame follows, has one; re-run that run so gmat_sweep's worker rewrites the "
                    "file with its epoch, or keep the epoch parameter (such as Sat.UTCGregorian) "
                    "in the output's Add list in every run"
                )

    def _explain(self, error: Exception, files: list[str], runs: _Runs, codes: np.ndarray) -> None:
        """Raise a message naming the run (and column) the scan failed on, if one is found."""
        layout = self.layout
        opened = _filesystem(self.root, self.storage_options)
        for file, location in enumerate(files):
            run = self._first_run(file, runs, codes)
            table = _read_file(opened, layout.label, run, location, pq.read_table)
            for column, kind in layout.sources:
                if column not in table.column_names:
                    continue
                try:
                    table.column(column).cast(kind)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
                    raise RunOutputError(
                        f"{layout.label} of run {run}: column {column!r} is "
                        f"{table.column(column).type}, which cannot be read as {kind} like the "
                        f"same column of run {layout.schema_run} ({layout.schema_location}, whose "
                        "schema the frame follows); the runs disagree on this column's type, so "
                        f"re-run the odd run or aggregate the runs separately ({error})"
                    ) from error


class _Opened(NamedTuple):
    """A sweep's filesystem, a location's path on it, and its options (:func:`_filesystem`)."""

    filesystem: pafs.FileSystem
    path_of: Callable[[str], str]
    storage_options: Mapping[str, Any]


def _read_file[T](
    opened: _Opened, label: str, run_id: int, location: str, read: Callable[[Any], T]
) -> T:
    """``read`` of run ``run_id``'s file; a file that is not valid Parquet is reported as its."""
    try:
        with (
            _reading(opened, label, run_id, location),
            opened.filesystem.open_input_file(opened.path_of(location)) as handle,
        ):
            return read(handle)
    except pa.ArrowInvalid as error:
        raise RunOutputError(
            f"{label} of run {run_id}: the file {location} cannot be read as Parquet "
            f"({error}); it is damaged or incomplete (e.g. cut short by a crash or a full "
            "disk): re-run that run (resume the sweep) or restore the file"
        ) from error


def _reading(
    opened: _Opened, label: str, run_id: int, location: str
) -> contextlib.AbstractContextManager[None]:
    """:func:`gmat_sweep.storage.reading` of run ``run_id``'s file; resume reruns a gone one."""
    return storage.reading(
        location,
        opened.storage_options,
        gone=(
            f"it is the {label} of run {run_id}, which the manifest records as ok: resume the "
            "sweep (gmat-sweep resume OUT_DIR, or Sweep.resume()) to run that run again, or "
            "restore the file"
        ),
    )


def _filesystem(root: str, storage_options: Mapping[str, Any]) -> _Opened:
    """The filesystem the sweep's files are read from, and a location's path on it."""
    if not is_url(root):
        return _Opened(pafs.LocalFileSystem(), str, storage_options)
    filesystem, _ = storage.filesystem(root, storage_options)
    handler = pafs.FSSpecHandler(filesystem)
    return _Opened(pafs.PyFileSystem(handler), filesystem._strip_protocol, storage_options)


def _sorted_within_runs(data: pa.Table, key: str, runs: np.ndarray) -> pa.Table:
    """``data`` with each run's rows sorted by ``key``, missing keys last; ties keep file order."""
    values = data.column(key)
    if pa.types.is_timestamp(values.type):
        values = values.cast(pa.int64())
    keys = pc.fill_null(values, _NO_TIME).to_numpy()
    if not ((np.diff(keys) < 0) & (runs[1:] == runs[:-1])).any():
        return data
    return data.take(np.lexsort((keys, runs)))


def _to_pandas(rows: _Rows, runs: _Runs) -> pd.DataFrame:
    """``rows`` as pandas, one conversion for all columns, indexed by ``run_id``."""
    index = pd.Index(np.asarray(runs.run_ids, dtype=np.int64)[rows.runs], name=RUN_ID)
    if not rows.table.num_columns:
        return pd.DataFrame(index=index)
    frame: pd.DataFrame = rows.table.to_pandas(types_mapper=_pandas_dtype)
    frame.index = index
    return frame


def _pandas_dtype(kind: pa.DataType) -> Any:
    """``types_mapper`` for Arrow -> pandas: nullable types where NumPy has no missing value."""
    if pa.types.is_boolean(kind):
        return pd.BooleanDtype()
    if pa.types.is_int64(kind):
        return pd.Int64Dtype()
    if pa.types.is_large_string(kind):
        return _STRING
    return None


def _frame_type(kind: pa.DataType) -> pa.DataType:
    """The Arrow type an output column is read as, whatever run it comes from."""
    if pa.types.is_dictionary(kind):
        return _frame_type(kind.value_type)
    if (
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_decimal(kind)
        or pa.types.is_null(kind)
    ):
        return pa.float64()
    if pa.types.is_timestamp(kind):
        return pa.timestamp("ns", tz=kind.tz)
    if pa.types.is_date(kind):
        return pa.timestamp("ns")
    if pa.types.is_duration(kind):
        return pa.duration("ns")
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return pa.large_string()
    return kind


def _latest_entries(manifest: Manifest) -> list[ManifestEntry]:
    """Entries sorted by run_id; should a run appear twice, its last entry wins."""
    latest = {entry.run_id: entry for entry in manifest.entries}
    return [latest[run_id] for run_id in sorted(latest)]


def produced_outputs(entries: Iterable[ManifestEntry]) -> dict[str, dict[str, ManifestEntry]]:
    """For each kind, the output names ok runs wrote, each with the first run that wrote it."""
    produced: dict[str, dict[str, ManifestEntry]] = {kind.prefix: {} for kind in _KINDS}
    seen: set[tuple[str, ...]] = set()  # runs mostly write the same outputs: look once
    for entry in entries:
        if entry.status != RunStatus.OK:
            continue
        keys = tuple(entry.output_paths)
        if keys in seen:
            continue
        seen.add(keys)
        for key in keys:
            prefix, _, name = key.partition("__")
            if prefix in produced and name:
                produced[prefix].setdefault(name, entry)
    return produced


def _silent_runs_message(
    kind: _Kind, silent: list[int], produced: Mapping[str, Mapping[str, ManifestEntry]]
) -> str:
    """What is wrong when the ok runs ``silent`` recorded no output files, and the fix."""
    writers = [
        (entry.run_id, prefix, name)
        for prefix, names in produced.items()
        for name, entry in names.items()
    ]
    if not writers:
        return (
            f"the sweep's {len(silent)} ok runs wrote no output files, so there is no "
            f"{kind.prefix} to read: the mission has no ReportFile, EphemerisFile or "
            "ContactLocator (GUI subscribers such as OrbitView and XYPlot write no files). Add a "
            "ReportFile with the values you need to the script, e.g. Create ReportFile RF; "
            "RF.Add = {Sat.UTCGregorian, Sat.Earth.SMA}; then run the sweep again "
            "(overwrite=True, or gmat-sweep run ... --overwrite)"
        )
    run_id, prefix, name = min(writers)
    runs = f"runs {silent[:10]}" if len(silent) > 1 else f"run {silent[0]}"
    return (
        f"{runs} ended ok but recorded no output files, while run {run_id} wrote {prefix} "
        f"{name!r}; an ok run records each output of its mission it wrote or left unwritten, "
        "so the manifest was edited or damaged, or written by a gmat_sweep that did not yet "
        "record which outputs a run left unwritten; restore the manifest from a backup, or "
        "run the sweep again (overwrite=True)"
    )


def _resolve_name(
    kind: _Kind, entries: Sequence[ManifestEntry], name: str | None
) -> tuple[str | None, ManifestEntry | None]:
    """The output to aggregate, and the first run (by run_id) that wrote it.

    When no run wrote any output at all because none succeeded (every run
    failed, or none ran), any ``name`` is accepted and there is no first run:
    each run is one row of missing values. So is each run, with a warning
    naming the outputs there are, when ``name`` is ``None`` and no run wrote
    an output of this kind.
    """
    produced = produced_outputs(entries)
    silent = [
        e.run_id
        for e in entries
        if e.status == RunStatus.OK and not e.output_paths and not e.unwritten
    ]
    if silent:
        raise NoOutputFilesError(_silent_runs_message(kind, silent, produced))
    available = produced[kind.prefix]
    if name is not None and name in available:
        return name, available[name]
    if len(available) == 1 and name is None:
        return next(iter(available.items()))
    if not any(produced.values()):  # no ok run: each run is a row of missing values
        return name, None
    if available:  # several and no name, or a name that is not one of them
        raise OutputNameError(kind.prefix, list(available), name)
    others = ", ".join(
        f"{other.prefix} {found!r} (use {other.lazy_function} / {other.pandas_function})"
        for other in _KINDS
        if other is not kind
        for found in produced[other.prefix]
    )
    produced_instead = f"the sweep produced no {kind.prefix} outputs; its ok runs produced {others}"
    if name is not None:
        raise SweepConfigError(
            f"{kind.prefix} {name!r} was not produced by any ok run: {produced_instead}"
        )
    # The reference: an ok run without this kind of output is one row of missing values.
    warnings.warn(
        f"{produced_instead}; each run is one row of missing values", UserWarning, stacklevel=4
    )
    return None, None


def _parameter_column(values: list[Any]) -> tuple[str, list[Any]]:
    """One parameter's dtype and per-run values (``None`` where a run did not set it).

    ``float64`` when every value is a number, ``boolean`` when every value is
    a bool, else ``string`` with non-string values written as JSON. Types are
    classified once per distinct type, not per value, to stay fast at 100k runs.
    """
    kinds = set()
    for kind in {type(value) for value in values} - {type(None)}:
        if issubclass(kind, bool | np.bool_):
            kinds.add(_BOOLEAN)
        elif issubclass(kind, numbers.Real):
            kinds.add(_FLOAT)
        else:
            kinds.add("string")
    dtype = kinds.pop() if len(kinds) == 1 else ("string" if kinds else _FLOAT)
    if dtype == _FLOAT:
        return dtype, [None if value is None else float(value) for value in values]
    if dtype == _BOOLEAN:
        return dtype, [None if value is None else bool(value) for value in values]
    return dtype, [
        value if value is None or isinstance(value, str) else json.dumps(to_plain(value))
        for value in values
    ]


def _plan(
    kind: _Kind,
    manifest: Manifest,
    output_dir: PathLike,
    name: str | None,
    parameters: bool,
    storage_options: Mapping[str, Any] | None,
) -> tuple[_Reader, _Runs]:
    """Everything every form needs: the reader and the runs, from the manifest.

    Works column by column over the entries, never opening a run's file: only
    the first run that wrote the output is opened, for its footer (schema and
    row count), or the first with rows when that file is empty. Every recorded
    path is checked to lie inside the sweep.
    """
    entries = _latest_entries(manifest)
    name, first = _resolve_name(kind, entries, name)
    root = sweep_root(output_dir)
    locate = locator(root)
    options = dict(storage_options or {})

    fields: list[str] = []
    dtypes: list[str] = []
    columns: list[tuple[Any, ...]] = []
    if parameters:
        fields = sorted(set().union(*(entry.overrides for entry in entries)))
        for path in fields:
            dtype, values = _parameter_column([entry.overrides.get(path) for entry in entries])
            dtypes.append(dtype)
            columns.append(tuple(values))
    locations: list[str | None] = [None] * len(entries)
    if first is not None:
        output_key = f"{kind.prefix}__{name}"
        for position, entry in enumerate(entries):
            recorded = entry.output_paths.get(output_key)
            if recorded is not None and entry.status == RunStatus.OK:
                locations[position] = locate(recorded, entry.run_id)
    runs = _Runs(
        run_ids=tuple(entry.run_id for entry in entries),
        locations=tuple(locations),
        statuses=tuple(_STATUS_TEXT[entry.status] for entry in entries),
        parameters=tuple(columns),
    )
    if first is None:
        return _Reader(_layout(kind, name, None, fields, dtypes), root, options), runs
    opened = _filesystem(root, options)
    source = None
    for run_id, location in zip(runs.run_ids, locations, strict=True):
        if location is None:
            continue
        footer = _read_file(opened, f"{kind.prefix} {name!r}", run_id, location, pq.ParquetFile)
        source = _Source(run_id, location, footer.schema_arrow, footer.metadata.num_rows)
        if source.rows:  # an empty file may not know its columns' types (pandas writes null)
            break
    return _Reader(_layout(kind, name, source, fields, dtypes), root, options), runs


class _Source(NamedTuple):
    """The file a layout follows: the first run that wrote the output, and its footer."""

    run_id: int
    location: str
    schema: pa.Schema
    rows: int


def _layout(
    kind: _Kind,
    name: str | None,
    source: _Source | None,
    fields: Sequence[str],
    dtypes: Sequence[str],
) -> _Layout:
    """The columns of the frame; with no ``source`` (nothing written), just the kind's key."""
    if source is None:
        key = kind.key
        sources = [(key, pa.timestamp("ns") if key == TIME else pa.int64())]
    else:
        schema = source.schema
        index_columns = {
            column
            for column in (schema.pandas_metadata or {}).get("index_columns", [])
            if isinstance(column, str)
        }
        sources = [
            (column.name, _frame_type(column.type))
            for column in schema
            if column.name not in index_columns and column.name != kind.key
        ]
        if kind.key == TIME and TIME in schema.names:
            key, key_type = TIME, _frame_type(schema.field(TIME).type)
        else:
            key, key_type = (ROW if kind.key == TIME else kind.key), pa.int64()
        sources.insert(0, (key, key_type))
    taken = {column for column, _ in sources} | {key, STATUS}
    columns = tuple(path + OVERRIDE_SUFFIX if path in taken else path for path in fields)
    return _Layout(
        kind,
        name,
        key,
        tuple(sources),
        columns,
        tuple(dtypes),
        None if source is None else source.run_id,
        None if source is None else source.location,
        1 if source is None else max(1, source.rows),
    )


def _lazy(
    kind: _Kind,
    manifest: Manifest,
    output_dir: PathLike,
    name: str | None,
    parameters: bool,
    storage_options: Mapping[str, Any] | None,
    partition_rows: int,
    *,
    only: End | None = None,
) -> dd.DataFrame:
    import dask.dataframe as dd

    rows = _checked_partition_rows(partition_rows)
    reader, runs = _plan(kind, manifest, output_dir, name, parameters, storage_options)
    reader = replace(reader, only=only)
    meta = reader.meta()
    if not len(runs):
        empty: dd.DataFrame = dd.from_pandas(meta, npartitions=1)  # type: ignore[no-untyped-call]
        return empty
    step = max(1, rows // reader.layout.rows_per_run)
    starts = range(0, len(runs), step)
    frame: dd.DataFrame = dd.from_map(  # type: ignore[no-untyped-call]
        reader,
        [runs.part(start, start + step) for start in starts],
        meta=meta,
        divisions=(*(runs.run_ids[start] for start in starts), runs.run_ids[-1]),
        label=f"gmat-sweep-{kind.prefix}",
    )
    return frame


def _checked_partition_rows(partition_rows: object) -> int:
    """``partition_rows`` as an ``int``: a positive integer, numpy's (from an array) included."""
    if is_whole(partition_rows) and partition_rows >= 1:
        return int(partition_rows)
    raise SweepConfigError(
        f"partition_rows={partition_rows!r}: the target rows per partition must be a "
        f"positive integer; pass e.g. partition_rows={PARTITION_ROWS}"
    )


def _eager(
    kind: _Kind,
    manifest: Manifest,
    output_dir: PathLike,
    name: str | None,
    parameters: bool,
    storage_options: Mapping[str, Any] | None,
) -> pd.DataFrame:
    reader, runs = _plan(kind, manifest, output_dir, name, parameters, storage_options)
    layout = reader.layout
    return reader.frame(runs, layout.columns).set_index(layout.key, append=True)


def final_frame(
    manifest: Manifest,
    output_dir: PathLike,
    *,
    name: str | None = None,
    parameters: bool = True,
    storage_options: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """The last row of one ReportFile in every run, indexed by ``run_id``.

    Answers "the final state of every run": each run's last row of the report
    in file order, the row GMAT wrote last (so the end of a backward
    propagation, whose time is its earliest), with the columns of
    :func:`report_frame`; the key (``time``, or ``row`` for a report without
    an epoch column) stays a column. A failed or skipped run, or an ok run
    without this report, is one row of missing values with its parameters and
    status. Parameters and errors are those of :func:`lazy_multiindex`.
    """
    return end_frame(
        "last", manifest, output_dir, name=name, parameters=parameters,
        storage_options=storage_options,
    )  # fmt: skip


def end_frame(
    which: End,
    manifest: Manifest,
    output_dir: PathLike,
    *,
    name: str | None = None,
    parameters: bool = True,
    storage_options: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """The row of one ReportFile each run wrote ``which`` (``"first"`` or ``"last"``), by run_id.

    In file order, not time order: :func:`final_frame` is ``"last"``, and the
    analysis functions' ``reduce="first"`` reads ``"first"`` (a run's
    starting row, also when it propagates backward). Otherwise as
    :func:`final_frame`.
    """
    reader, runs = _plan(_REPORT, manifest, output_dir, name, parameters, storage_options)
    return replace(reader, only=which).frame(runs, reader.layout.columns)


def lazy_final_frame(
    manifest: Manifest,
    output_dir: PathLike,
    *,
    name: str | None = None,
    parameters: bool = True,
    storage_options: Mapping[str, Any] | None = None,
    partition_rows: int = PARTITION_ROWS,
) -> dd.DataFrame:
    """:func:`final_frame` as a lazy Dask frame, partitioned as :func:`report_frame`."""
    return _lazy(
        _REPORT, manifest, output_dir, name, parameters, storage_options, partition_rows,
        only="last",
    )  # fmt: skip


def _end_rows(rows: _Rows, which: End) -> _Rows:
    """The first or last of each run's rows (every run has at least one)."""
    run_of_row = rows.runs
    changes = run_of_row[1:] != run_of_row[:-1]
    marks = np.insert(changes, 0, True) if which == "first" else np.append(changes, True)
    picked = np.flatnonzero(marks) if len(run_of_row) else run_of_row
    return _Rows(rows.table.take(picked), run_of_row[picked])


def converged_frame(
    manifest: Manifest,
    output_dir: PathLike,
    *,
    name: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Whether each Solver converged in each run: one ``boolean`` column per solver.

    Indexed by ``run_id`` (every run with a manifest entry), one column per
    Solver resource whose iteration log an ok run recorded
    (``solver__<name>`` outputs), in sorted order, or only ``name``'s.
    ``True`` when the solver's last iteration met its goals (GMAT's
    DifferentialCorrector: every goal within tolerance; Yukon: GMAT's
    converged stamp), ``False`` when it stopped at ``MaximumIterations`` or
    failed, and ``<NA>`` for a failed or skipped run or an ok run that did not
    execute that solver. A mission without solvers gives no columns and opens
    no file; otherwise only the ``converged`` column of each log is read.

    A run whose solver did not converge is still ``ok`` (GMAT finished the
    mission), but its outputs follow the solver's last iterate, not a
    solution: filter such runs out, or look at their iterations with
    :func:`solver_frame`.

    Raises
    ------
    SweepConfigError
        ``name`` is not a solver any ok run recorded (the message lists those
        there are).
    ManifestCorruptError, NoOutputFilesError, RunOutputError
        As for :func:`lazy_multiindex`.
    """
    entries = _latest_entries(manifest)
    names = [name] if name is not None else sorted(produced_outputs(entries)[_SOLVER.prefix])
    index = pd.Index([entry.run_id for entry in entries], dtype=np.int64, name=RUN_ID)
    frame = pd.DataFrame(index=index)
    for solver in names:
        reader, runs = _plan(_SOLVER, manifest, output_dir, solver, False, storage_options)
        wanted = [CONVERGED] if CONVERGED in reader.layout.columns else []
        last = _to_pandas(_end_rows(reader.rows(runs, wanted), "last"), runs)
        frame[solver] = last[CONVERGED].array if wanted else pd.NA  # one row per run, in order
    return frame.astype(pd.BooleanDtype())


def unconverged_runs(converged: pd.DataFrame) -> dict[str, list[int]]:
    """For each solver of :func:`converged_frame` that did not converge in some run, those runs.

    ``{}`` when every solver converged in every ok run (or the mission has none).
    """
    failed = {
        str(solver): [int(run_id) for run_id in column.index[column.eq(False).fillna(False)]]
        for solver, column in converged.items()
    }
    return {solver: run_ids for solver, run_ids in failed.items() if run_ids}


def describe_unconverged(unconverged: Mapping[str, Sequence[int]], ok: int, shown: int) -> str:
    """One sentence on :func:`unconverged_runs`, listing at most ``shown`` run_ids per solver."""
    runs = len(set().union(*unconverged.values()))

    def listed(run_ids: Sequence[int]) -> str:
        more = len(run_ids) - shown
        return ", ".join(map(str, run_ids[:shown])) + (f" ... and {more} more" if more > 0 else "")

    solvers = "; ".join(f"{solver}: run_ids {listed(ids)}" for solver, ids in unconverged.items())
    return (
        f"{runs} of {ok} ok runs ended with a solver that did not converge ({solvers}); their "
        "outputs follow the solver's last iterate, not a solution"
    )


def report_frame(
    manifest: Manifest,
    output_dir: PathLike,
    *,
    name: str | None = None,
    parameters: bool = True,
    storage_options: Mapping[str, Any] | None = None,
    partition_rows: int = PARTITION_ROWS,
) -> dd.DataFrame:
    """Stack one ReportFile output across all runs as a lazy Dask frame.

    The frame is built from the manifest and the footer of one run's file; no
    data is read until it is computed. Its index is ``run_id`` (``int64``)
    with known divisions. Each partition holds consecutive runs, as many as
    make about ``partition_rows`` rows (judged by that one file's row count),
    and reads their files with one pyarrow dataset scan; so
    ``frame.loc[run_id]`` reads the files of one partition only. Rows are
    ordered by ``run_id``, then ``time`` (ties keep file order).

    Columns, in order: ``time`` (``datetime64[ns]``), the report's own
    columns in file order, one column per overridden field path in sorted
    order (named by the path, or ``"<path> [override]"`` when the report has a
    column of that name), and ``__status``. A report with no epoch column has
    no ``time``; its first column is then ``row`` (nullable ``Int64``, the
    row's position within its run). A failed or skipped run, or an ok run
    that did not write this report, is one row: ``time`` is NaT, the report's
    values are missing, the parameter columns hold its overrides and
    ``__status`` its status (``"ok"`` for an ok run missing the report).

    Parameters
    ----------
    manifest:
        The sweep manifest; it alone decides which runs appear.
    output_dir:
        Sweep root (local path or fsspec URL) that the manifest's paths are
        resolved against; every path must lie inside it.
    name:
        The ReportFile to stack. ``None`` picks the only report the sweep
        produced. When no run wrote any output (every run failed), any name
        is accepted and each run is one row: ``time``, the parameter columns
        and ``__status``. So with ``None`` when the runs wrote outputs of
        other kinds only (say, only ephemerides), with a ``UserWarning``
        naming them.
    parameters:
        ``False`` leaves out the parameter columns.
    storage_options:
        Passed to fsspec for every file read (e.g. credentials for ``s3://``).
    partition_rows:
        Target rows per partition (default :data:`PARTITION_ROWS`); lower it
        to make ``.loc`` of one run read fewer files, raise it for fewer,
        larger partitions. At least one run per partition.

    Returns
    -------
    dask.dataframe.DataFrame
        One row per (run, report line), plus one row per run without output.

    Raises
    ------
    SweepConfigError
        ``name`` is ``None`` and the sweep produced several reports, or ok
        runs produced outputs but not the report ``name`` (the message lists
        the available names), or ``partition_rows`` is not a positive integer.
    ManifestCorruptError
        A path in the manifest lies outside the sweep root.
    NoOutputFilesError
        An ok entry lists no output files at all (a ``SweepConfigError`` and
        a ``ValueError``; a run that succeeded must have written something).
    RunOutputError
        The first run's file is not valid Parquet; when computed, a run's file
        is not valid Parquet, has a column of a type that cannot be read as the
        frame's, or lacks the ``time`` column the frame has. (A subclass of
        ``ValueError``.)
    """
    return _lazy(_REPORT, manifest, output_dir, name, parameters, storage_options, partition_rows)


def ephemeris_frame(
    manifest: Manifest,
    output_dir: PathLike,
    *,
    name: str | None = None,
    parameters: bool = True,
    storage_options: Mapping[str, Any] | None = None,
    partition_rows: int = PARTITION_ROWS,
) -> dd.DataFrame:
    """:func:`report_frame` for an EphemerisFile (``ephemeris__<name>`` outputs).

    The ``time`` column is a copy of the ephemeris epoch; ``name`` picks the
    EphemerisFile. Everything else is as for :func:`report_frame`.
    """
    return _lazy(
        _EPHEMERIS, manifest, output_dir, name, parameters, storage_options, partition_rows
    )


def contact_frame(
    manifest: Manifest,
    output_dir: PathLike,
    *,
    name: str | None = None,
    parameters: bool = True,
    storage_options: Mapping[str, Any] | None = None,
    partition_rows: int = PARTITION_ROWS,
) -> dd.DataFrame:
    """:func:`report_frame` for a ContactLocator (``contact__<name>`` outputs).

    The first column is ``interval_id`` (nullable ``Int64``, 0..K-1 within
    each run, ``<NA>`` for a run without the output), then the contact
    report's own columns in file order; ``name`` picks the ContactLocator.
    Everything else is as for :func:`report_frame`.
    """
    return _lazy(_CONTACT, manifest, output_dir, name, parameters, storage_options, partition_rows)


def solver_frame(
    manifest: Manifest,
    output_dir: PathLike,
    *,
    name: str | None = None,
    parameters: bool = True,
    storage_options: Mapping[str, Any] | None = None,
    partition_rows: int = PARTITION_ROWS,
) -> dd.DataFrame:
    """:func:`report_frame` for a Solver's iteration log (``solver__<name>`` outputs).

    One row per nominal pass of the solver (a Target or Optimize loop) in each
    run. The first column is ``iteration`` (nullable ``Int64``, GMAT's
    iteration number; a Yukon optimizer repeats it when one iteration takes
    several function evaluations), then the columns gmat-run parses from the
    log: one per ``Vary`` variable, ``status`` (``"running"`` on every row
    but the last, which holds ``"converged"``, ``"max_iter"`` or
    ``"failed"``), per DifferentialCorrector goal ``<goal>``,
    ``<goal>_desired``, ``<goal>_residual`` and ``<goal>_tolerance``, or for
    Yukon ``cost`` and ``<constraint>_residual``; and ``converged``
    (``boolean``, the same on every row of a run). ``name`` picks the
    Solver resource. Everything else is as for :func:`report_frame`.
    """
    return _lazy(_SOLVER, manifest, output_dir, name, parameters, storage_options, partition_rows)


def lazy_multiindex(
    manifest: Manifest,
    output_dir: PathLike,
    *,
    name: str | None = None,
    spool: bool = True,
    parameters: bool = True,
    storage_options: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Assemble the ``(run_id, time)``-indexed report DataFrame from a sweep's outputs.

    The rows of :func:`report_frame`, read with one pyarrow dataset scan,
    with the key moved into the index: ``time``, or ``row`` for a report
    without an epoch column (a per-run summary).

    Parameters
    ----------
    manifest, output_dir, name, parameters, storage_options:
        As for :func:`report_frame`.
    spool:
        Accepted for compatibility; both values give the same result, as
        every read streams record batches from one dataset scan.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``(run_id, time)`` or ``(run_id, row)``.

    Raises
    ------
    SweepConfigError, ManifestCorruptError, NoOutputFilesError, RunOutputError
        As for :func:`report_frame`, all raised by this call (it reads every file).
    """
    return _eager(_REPORT, manifest, output_dir, name, parameters, storage_options)


def lazy_ephemerides(
    manifest: Manifest,
    output_dir: PathLike,
    *,
    name: str | None = None,
    spool: bool = True,
    parameters: bool = True,
    storage_options: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """:func:`lazy_multiindex` for an EphemerisFile (``ephemeris__<name>`` outputs).

    The worker copies the first datetime column of each ephemeris frame
    (``Epoch`` for OEM, STK and SPK formats) to ``time``, so the frame is
    indexed ``(run_id, time)``; ``name`` picks the EphemerisFile. Everything
    else is as for :func:`lazy_multiindex`.
    """
    return _eager(_EPHEMERIS, manifest, output_dir, name, parameters, storage_options)


def lazy_contacts(
    manifest: Manifest,
    output_dir: PathLike,
    *,
    name: str | None = None,
    parameters: bool = True,
    storage_options: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """:func:`lazy_multiindex` for a ContactLocator (``contact__<name>`` outputs).

    Indexed ``(run_id, interval_id)``: the interval's position in its run
    (0..K-1, assigned by the worker), nullable ``Int64`` so that the one row
    of a failed, skipped or contact-less ok run holds ``<NA>``; ``name``
    picks the ContactLocator. Everything else is as for
    :func:`lazy_multiindex`.
    """
    return _eager(_CONTACT, manifest, output_dir, name, parameters, storage_options)


def lazy_solver_runs(
    manifest: Manifest,
    output_dir: PathLike,
    *,
    name: str | None = None,
    parameters: bool = True,
    storage_options: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """:func:`lazy_multiindex` for a Solver's iteration log (``solver__<name>`` outputs).

    Indexed ``(run_id, iteration)`` with the columns of :func:`solver_frame`;
    a failed, skipped or solver-less ok run is one row with ``<NA>``
    iteration. Everything else is as for :func:`lazy_multiindex`.
    """
    return _eager(_SOLVER, manifest, output_dir, name, parameters, storage_options)
