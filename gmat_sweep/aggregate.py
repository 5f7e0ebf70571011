"""One table over every run of a sweep, built from the manifest alone.

Each run writes its outputs as Parquet (``report__<Name>``,
``ephemeris__<Name>``, ``contact__<Name>`` in
:attr:`~gmat_sweep.manifest.ManifestEntry.output_paths`). This module stacks
one output across all runs, in two forms with one implementation:

* lazy :mod:`dask.dataframe` frames (:func:`report_frame`,
  :func:`ephemeris_frame`, :func:`contact_frame`): one partition per run,
  indexed by ``run_id`` with known divisions, built from the manifest and the
  schema of a single file, so building one over 100,000 runs reads no data
  and ``frame.loc[run_id]`` reads one file;
* the reference's pandas frames (:func:`lazy_multiindex`,
  :func:`lazy_ephemerides`, :func:`lazy_contacts`), indexed by
  ``(run_id, time)`` or ``(run_id, interval_id)``, whose contents are those
  of the lazy frame with ``time`` / ``interval_id`` moved into the index.

Failure is data: a failed or skipped run, or an ok run that did not write the
requested output, is one row with missing values and its ``__status``.

Every column has one dtype across all runs, fixed before any data is read:
numbers are ``float64`` (GMAT writes a column as int64 in one run and float64
in another), booleans ``boolean``, strings ``string`` (pyarrow-backed, the
dtype Dask converts strings to), timestamps ``datetime64[ns]``, and the
``row`` / ``interval_id`` keys nullable ``Int64``. Every read goes through
fsspec, so sweeps on ``s3://`` or ``memory://`` work like local ones.
"""

from __future__ import annotations

import hashlib
import json
import numbers
import os
import pickle
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, overload

import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from gmat_sweep.errors import SweepConfigError
from gmat_sweep.spec import PathLike, RunStatus, is_url, to_plain

if TYPE_CHECKING:
    import dask.dataframe as dd

    from gmat_sweep.manifest import Manifest, ManifestEntry

RUN_ID = "run_id"
"""Name of the index level that holds each row's run."""

TIME = "time"
"""Epoch column every report and ephemeris Parquet carries when it has an epoch."""

ROW = "row"
"""Fallback key of a report without an epoch column: the row's position in its run."""

INTERVAL_ID = "interval_id"
"""Key of a contact row: the visibility interval's position in its run."""

STATUS = "__status"
"""Column holding each row's run status: ``"ok"``, ``"failed"`` or ``"skipped"``."""

OVERRIDE_SUFFIX = " [override]"
"""Appended to a parameter column whose field path is also an output column's name."""

_STRING = pd.StringDtype("pyarrow")
_FLOAT = "float64"
_BOOLEAN = "boolean"
_STATUS_TEXT = {status.value: status.value for status in RunStatus}
_ARROW_TYPES = {_FLOAT: pa.float64(), _BOOLEAN: pa.bool_(), "string": pa.large_string()}


@dataclass(frozen=True, slots=True)
class _Kind:
    """One kind of run output and the names users know it by."""

    prefix: str
    key: str
    lazy_function: str
    pandas_function: str

    def output_key(self, name: str) -> str:
        return f"{self.prefix}__{name}"


_REPORT = _Kind("report", TIME, "report_frame", "lazy_multiindex")
_EPHEMERIS = _Kind("ephemeris", TIME, "ephemeris_frame", "lazy_ephemerides")
_CONTACT = _Kind("contact", INTERVAL_ID, "contact_frame", "lazy_contacts")
_KINDS = (_REPORT, _EPHEMERIS, _CONTACT)


class _Run(NamedTuple):
    """What one partition needs to know about its run; small, so it ships cheaply."""

    run_id: int
    location: str | None
    status: str
    parameters: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class _Runs(Sequence[_Run]):
    """The frame's runs, stored by column; item ``i`` is partition ``i``'s :class:`_Run`.

    Dask tokenizes ``from_map``'s iterables element by element, about a second
    per 100,000 runs; hashing these columns' pickle takes a few hundredths.
    ``parameters`` holds one column of values per parameter.
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

    @overload
    def __getitem__(self, index: int) -> _Run: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[_Run]: ...

    def __getitem__(self, index: int | slice) -> _Run | Sequence[_Run]:
        if isinstance(index, slice):
            return [self[position] for position in range(*index.indices(len(self)))]
        values = tuple(column[index] for column in self.parameters)
        return _Run(self.run_ids[index], self.locations[index], self.statuses[index], values)

    def __iter__(self) -> Iterator[_Run]:
        return (self[position] for position in range(len(self)))

    def __dask_tokenize__(self) -> str:
        return self.token


@dataclass(frozen=True, slots=True)
class _Layout:
    """The columns of one aggregated output and the Arrow type each is read as.

    ``sources`` lists the key and then the output's own columns in file order,
    each with the Arrow type every run's values are cast to before conversion
    to pandas, so all runs share one pandas dtype. A ``row`` key, and an
    ``interval_id`` a file does not carry, is the row's position in its run.
    """

    kind: _Kind
    name: str
    key: str
    sources: tuple[tuple[str, pa.DataType], ...]
    parameter_columns: tuple[str, ...]
    parameter_dtypes: tuple[str, ...]
    schema_run: int
    schema_location: str

    @property
    def columns(self) -> list[str]:
        """Every column of the frame, in order."""
        return [*(column for column, _ in self.sources), *self.parameter_columns, STATUS]


@dataclass(frozen=True)
class _RunReader:
    """Builds one run's partition; the function ``dask.dataframe.from_map`` maps.

    Its ``columns`` keyword lets Dask push column selections down into the
    Parquet read.
    """

    layout: _Layout
    storage_options: dict[str, Any]
    spool: bool

    def __call__(self, run: _Run, columns: Sequence[str] | None = None) -> pd.DataFrame:
        wanted = self.layout.columns if columns is None else list(columns)
        if run.location is None:
            sources = self._sources(wanted)
            nulls = [pa.nulls(1, kind) for _, kind in sources]
            missing = pa.table(nulls, names=[column for column, _ in sources])
            return self._partition(run, missing, 1, wanted)
        return self._read(run, run.location, wanted)

    def meta(self) -> pd.DataFrame:
        """The frame's empty prototype: every column with its final dtype."""
        wanted = self.layout.columns
        sources = self._sources(wanted)
        empty = pa.schema(list(sources)).empty_table()
        nobody = _Run(0, None, "", (None,) * len(self.layout.parameter_columns))
        return self._partition(nobody, empty, 0, wanted)

    def _sources(self, wanted: Sequence[str]) -> list[tuple[str, pa.DataType]]:
        chosen = set(wanted)
        return [(column, kind) for column, kind in self.layout.sources if column in chosen]

    def _read(self, run: _Run, location: str, wanted: Sequence[str]) -> pd.DataFrame:
        layout = self.layout
        with fsspec.open(location, "rb", **self.storage_options) as handle:
            parquet = pq.ParquetFile(handle)
            present = set(parquet.schema_arrow.names)
            if layout.key == TIME and TIME not in present:
                raise ValueError(_no_time_message(layout, run.run_id, location))
            names = [
                column for column, _ in self._sources(wanted) if column in present and column != ROW
            ]
            rows = parquet.metadata.num_rows
            if self.spool:
                schema = pa.schema([parquet.schema_arrow.field(column) for column in names])
                batches = parquet.iter_batches(columns=names, use_threads=False)
                table = pa.Table.from_batches(batches, schema=schema)
            else:
                table = parquet.read(columns=names, use_threads=False)
        return self._partition(run, table, rows, wanted)

    def _partition(
        self, run: _Run, table: pa.Table, rows: int, wanted: Sequence[str]
    ) -> pd.DataFrame:
        """Assemble one run's rows; the single place where columns get their dtypes.

        Every column, parameters and status included, is built as Arrow and
        converted in one ``to_pandas`` call with :func:`_pandas_dtype`, so a
        data partition, a missing-output row and the meta agree by construction.
        """
        layout = self.layout
        names: list[str] = []
        arrays: list[pa.Array | pa.ChunkedArray] = []
        for column, kind in self._sources(wanted):
            if column in table.column_names:
                values = _cast(table.column(column), kind, column, layout, run)
            elif column in (ROW, INTERVAL_ID):
                # The worker numbers intervals by position, so a key the file
                # does not carry is that position.
                values = pa.array(np.arange(rows, dtype=np.int64))
            else:
                values = pa.nulls(rows, kind)
            names.append(column)
            arrays.append(values)
        chosen = set(wanted)
        for column, dtype, value in zip(
            layout.parameter_columns, layout.parameter_dtypes, run.parameters, strict=True
        ):
            if column in chosen:
                names.append(column)
                arrays.append(pa.repeat(pa.scalar(value, _ARROW_TYPES[dtype]), rows))
        if STATUS in chosen:
            names.append(STATUS)
            arrays.append(pa.repeat(pa.scalar(run.status, pa.large_string()), rows))
        assembled = pa.Table.from_arrays(arrays, names=names)
        frame: pd.DataFrame = assembled.to_pandas(types_mapper=_pandas_dtype)
        frame.index = pd.Index(np.full(rows, run.run_id, dtype=np.int64), name=RUN_ID)
        return frame if names == list(wanted) else frame[list(wanted)]


def _cast(
    values: pa.ChunkedArray, kind: pa.DataType, column: str, layout: _Layout, run: _Run
) -> pa.ChunkedArray:
    if values.type == kind:
        return values
    try:
        return values.cast(kind)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        raise ValueError(
            f"{layout.kind.prefix} {layout.name!r} of run {run.run_id}: column {column!r} is "
            f"{values.type}, which cannot be read as {kind} like the same column of run "
            f"{layout.schema_run} ({layout.schema_location}, whose schema the frame follows); "
            f"the runs disagree on this column's type, so re-run the odd run or aggregate the "
            f"runs separately ({error})"
        ) from error


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


def _no_time_message(layout: _Layout, run_id: int, location: str) -> str:
    kind, name = layout.kind, layout.name
    fallback = f"{kind.lazy_function}(..., name={name!r})"
    if kind is _REPORT:
        fix = "add an epoch parameter such as Sat.UTCGregorian to the ReportFile's Add list"
        fallback = f"Sweep.to_dataframe(name={name!r}) / {fallback}"
    else:
        fix = "re-run the run so gmat_sweep's worker rewrites the file with its epoch"
    return (
        f"{kind.prefix} {name!r} has no epoch column, so its rows have no time (run {run_id}'s "
        f"file {location} has no 'time' column); {fix}, or use {fallback} which indexes by "
        "run_id alone and keeps a 'row' column"
    )


def _latest_entries(manifest: Manifest) -> list[ManifestEntry]:
    """Entries sorted by run_id; should a run appear twice, its last entry wins."""
    latest = {entry.run_id: entry for entry in manifest.entries}
    return [latest[run_id] for run_id in sorted(latest)]


def _produced(entries: Iterable[ManifestEntry]) -> dict[str, dict[str, ManifestEntry]]:
    """For each kind, the output names ok runs wrote, each with the first run that wrote it."""
    produced: dict[str, dict[str, ManifestEntry]] = {kind.prefix: {} for kind in _KINDS}
    for entry in entries:
        if entry.status != RunStatus.OK:
            continue
        if not entry.output_paths:
            raise ValueError(
                f"run {entry.run_id} is recorded as ok but lists no output_paths; a run that "
                "succeeded always writes at least one output, so this manifest entry is "
                "inconsistent; re-run that run (resume the sweep) or restore its outputs"
            )
        for key in entry.output_paths:
            prefix, _, name = key.partition("__")
            if prefix in produced and name:
                produced[prefix].setdefault(name, entry)
    return produced


def _resolve_name(
    kind: _Kind, entries: Sequence[ManifestEntry], name: str | None
) -> tuple[str, ManifestEntry]:
    """The output to aggregate, and the first run (by run_id) that wrote it."""
    produced = _produced(entries)
    available = produced[kind.prefix]
    if name is not None and name in available:
        return name, available[name]
    if len(available) == 1 and name is None:
        return next(iter(available.items()))
    listed = ", ".join(repr(found) for found in available)
    if len(available) > 1 and name is None:
        raise SweepConfigError(
            f"the sweep produced {len(available)} {kind.prefix} outputs ({listed}); "
            f"pass name= to choose one, e.g. name={next(iter(available))!r}"
        )
    if available:
        raise SweepConfigError(
            f"{kind.prefix} {name!r} was not produced by any ok run; the sweep's "
            f"{kind.prefix} outputs are {listed}; pass one of those as name="
        )
    asked = "" if name is None else f"{kind.prefix} {name!r} was not produced by any ok run: "
    raise SweepConfigError(asked + _nothing_of_kind(kind, entries, produced))


def _nothing_of_kind(
    kind: _Kind, entries: Sequence[ManifestEntry], produced: Mapping[str, Mapping[str, Any]]
) -> str:
    others = [
        f"{other.prefix} {found!r} (use {other.lazy_function} / {other.pandas_function})"
        for other in _KINDS
        if other is not kind
        for found in produced[other.prefix]
    ]
    if others:
        return (
            f"the sweep produced no {kind.prefix} outputs; its ok runs produced {', '.join(others)}"
        )
    counts = Counter(str(entry.status) for entry in entries)
    tally = ", ".join(f"{count} {status}" for status, count in sorted(counts.items())) or "none"
    return (
        f"the sweep produced no {kind.prefix} outputs: no run finished ok with outputs "
        f"(runs in the manifest: {tally}); fix the failures (see each entry's stderr and "
        "log_path) and resume the sweep"
    )


def _sweep_root(output_dir: PathLike) -> str:
    """``output_dir`` as a string prefix; local roots made absolute for remote workers."""
    if is_url(output_dir) or str(output_dir).startswith("file://"):
        return str(output_dir).rstrip("/")
    return os.path.abspath(output_dir)


def _locate(path: PathLike, root: str) -> str:
    text = path if isinstance(path, str) else path.as_posix()
    if "://" in text or os.path.isabs(text):
        return text
    return f"{root}/{text}"


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
    spool: bool,
) -> tuple[_RunReader, _Runs]:
    """Everything both forms need: the reader and one item per run, from the manifest.

    Works column by column over the entries, never opening a run's file: only
    the first run that wrote the output is read, and only its schema.
    """
    entries = _latest_entries(manifest)
    name, first = _resolve_name(kind, entries, name)
    output_key = kind.output_key(name)
    root = _sweep_root(output_dir)

    fields: list[str] = []
    dtypes: list[str] = []
    columns: list[tuple[Any, ...]] = []
    if parameters:
        fields = sorted(set().union(*(entry.overrides for entry in entries)))
        for path in fields:
            dtype, values = _parameter_column([entry.overrides.get(path) for entry in entries])
            dtypes.append(dtype)
            columns.append(tuple(values))
    runs = _Runs(
        run_ids=tuple(entry.run_id for entry in entries),
        locations=tuple(
            _locate(entry.output_paths[output_key], root)
            if entry.status == RunStatus.OK and output_key in entry.output_paths
            else None
            for entry in entries
        ),
        statuses=tuple(_STATUS_TEXT[entry.status] for entry in entries),
        parameters=tuple(columns),
    )

    options = dict(storage_options or {})
    schema_location = _locate(first.output_paths[output_key], root)
    with fsspec.open(schema_location, "rb", **options) as handle:
        schema = pq.read_schema(handle)
    layout = _layout(kind, name, schema, (first.run_id, schema_location), fields, dtypes)
    return _RunReader(layout, options, spool), runs


def _layout(
    kind: _Kind,
    name: str,
    schema: pa.Schema,
    schema_source: tuple[int, str],
    fields: Sequence[str],
    dtypes: Sequence[str],
) -> _Layout:
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
        key, key_type = (INTERVAL_ID if kind is _CONTACT else ROW), pa.int64()
    sources.insert(0, (key, key_type))
    taken = {column for column, _ in sources} | {key, STATUS}
    columns = tuple(path + OVERRIDE_SUFFIX if path in taken else path for path in fields)
    return _Layout(kind, name, key, tuple(sources), columns, tuple(dtypes), *schema_source)


def _lazy(
    kind: _Kind,
    manifest: Manifest,
    output_dir: PathLike,
    name: str | None,
    parameters: bool,
    storage_options: Mapping[str, Any] | None,
) -> dd.DataFrame:
    import dask.dataframe as dd

    reader, runs = _plan(kind, manifest, output_dir, name, parameters, storage_options, False)
    run_ids = runs.run_ids
    frame: dd.DataFrame = dd.from_map(  # type: ignore[no-untyped-call]
        reader,
        runs,
        meta=reader.meta(),
        divisions=(*run_ids, run_ids[-1]),
        label=f"gmat-sweep-{kind.prefix}",
    )
    return frame


def _eager(
    kind: _Kind,
    manifest: Manifest,
    output_dir: PathLike,
    name: str | None,
    parameters: bool,
    storage_options: Mapping[str, Any] | None,
    spool: bool,
) -> pd.DataFrame:
    reader, runs = _plan(kind, manifest, output_dir, name, parameters, storage_options, spool)
    layout = reader.layout
    if layout.key == ROW:
        raise ValueError(_no_time_message(layout, layout.schema_run, layout.schema_location))
    key = layout.key
    parts = [_ordered(reader(run), key) for run in runs]
    return pd.concat(parts).set_index(key, append=True)


def _ordered(part: pd.DataFrame, key: str) -> pd.DataFrame:
    """One run's rows sorted by ``key``; ties keep file order."""
    if len(part) < 2 or part[key].is_monotonic_increasing:
        return part
    return part.sort_values(key, kind="stable", na_position="last")


def report_frame(
    manifest: Manifest,
    output_dir: PathLike,
    *,
    name: str | None = None,
    parameters: bool = True,
    storage_options: Mapping[str, Any] | None = None,
) -> dd.DataFrame:
    """Stack one ReportFile output across all runs as a lazy Dask frame.

    The frame is built from the manifest and the schema of one run's file; no
    data is read until it is computed. It has one partition per run, ordered
    by ``run_id``, and an ``int64`` index named ``run_id`` with known
    divisions, so ``frame.loc[run_id]`` reads that run's file only.

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
        Sweep root (local path or fsspec URL) that relative paths in the
        manifest are resolved against. Absolute paths and URLs are used as-is.
    name:
        The ReportFile to stack. ``None`` picks the only report the sweep
        produced.
    parameters:
        ``False`` leaves out the parameter columns.
    storage_options:
        Passed to fsspec for every file read (e.g. credentials for ``s3://``).

    Returns
    -------
    dask.dataframe.DataFrame
        One row per (run, report line), plus one row per run without output.

    Raises
    ------
    SweepConfigError
        ``name`` is ``None`` and the sweep produced several reports or none,
        or no ok run produced the report ``name``; the message lists the
        available names.
    ValueError
        An ok entry lists no output files at all.
    """
    return _lazy(_REPORT, manifest, output_dir, name, parameters, storage_options)


def ephemeris_frame(
    manifest: Manifest,
    output_dir: PathLike,
    *,
    name: str | None = None,
    parameters: bool = True,
    storage_options: Mapping[str, Any] | None = None,
) -> dd.DataFrame:
    """Stack one EphemerisFile output across all runs as a lazy Dask frame.

    Mirrors :func:`report_frame` for ``ephemeris__<name>`` outputs, whose
    ``time`` column is a copy of the ephemeris epoch.

    Parameters
    ----------
    manifest:
        The sweep manifest; it alone decides which runs appear.
    output_dir:
        Sweep root that relative paths in the manifest are resolved against.
    name:
        The EphemerisFile to stack; ``None`` picks the only one.
    parameters:
        ``False`` leaves out the parameter columns.
    storage_options:
        Passed to fsspec for every file read.

    Returns
    -------
    dask.dataframe.DataFrame
        One row per (run, ephemeris line), plus one row per run without output.

    Raises
    ------
    SweepConfigError
        As for :func:`report_frame`.
    ValueError
        An ok entry lists no output files at all.
    """
    return _lazy(_EPHEMERIS, manifest, output_dir, name, parameters, storage_options)


def contact_frame(
    manifest: Manifest,
    output_dir: PathLike,
    *,
    name: str | None = None,
    parameters: bool = True,
    storage_options: Mapping[str, Any] | None = None,
) -> dd.DataFrame:
    """Stack one ContactLocator output across all runs as a lazy Dask frame.

    Mirrors :func:`report_frame` for ``contact__<name>`` outputs. The first
    column is ``interval_id`` (nullable ``Int64``, 0..K-1 within each run),
    then the contact report's other columns in file order. Runs without the
    output have ``interval_id`` = ``<NA>``.

    Parameters
    ----------
    manifest:
        The sweep manifest; it alone decides which runs appear.
    output_dir:
        Sweep root that relative paths in the manifest are resolved against.
    name:
        The ContactLocator to stack; ``None`` picks the only one.
    parameters:
        ``False`` leaves out the parameter columns.
    storage_options:
        Passed to fsspec for every file read.

    Returns
    -------
    dask.dataframe.DataFrame
        One row per (run, visibility interval), plus one row per run without
        output.

    Raises
    ------
    SweepConfigError
        As for :func:`report_frame`.
    ValueError
        An ok entry lists no output files at all.
    """
    return _lazy(_CONTACT, manifest, output_dir, name, parameters, storage_options)


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

    For each ok entry the Parquet listed in
    :attr:`~gmat_sweep.manifest.ManifestEntry.output_paths` under the
    ``report__<name>`` key is read and tagged with its ``run_id``. For each
    failed or skipped entry, and for any ok entry that did not produce the
    requested report, one NaN-filled row is materialised with ``time = NaT``
    and ``__status`` set to the run-level status (``"failed"`` /
    ``"skipped"`` for non-ok runs, ``"ok"`` for ok runs missing this report).
    Rows are ordered by ``run_id``, then ``time`` (ties keep file order).

    The contents are those of :func:`report_frame` computed, with ``time``
    moved into the index; columns and dtypes are described there.

    Parameters
    ----------
    manifest:
        The sweep manifest. Drives both the set of runs and their status.
    output_dir:
        Sweep output root (local path or fsspec URL), used to anchor any
        relative paths recorded in the manifest; absolute paths are used
        as-is.
    name:
        Report resource name to aggregate. ``None`` (default) picks the sole
        report if exactly one report is present across the sweep.
    spool:
        ``True`` (default) streams each run's record batches into pandas one
        batch at a time. ``False`` reads each run's Parquet in one shot. The
        result is the same.
    parameters:
        ``False`` leaves out the parameter columns.
    storage_options:
        Passed to fsspec for every file read.

    Returns
    -------
    pandas.DataFrame
        One row per (run, report line), indexed by ``(run_id, time)``.

    Raises
    ------
    SweepConfigError
        ``name=None`` was passed but the sweep produced more than one report
        or none (the message lists the available names), or the
        explicitly-named report does not appear in any ok run's outputs.
    ValueError
        An ok entry has no ``output_paths`` at all, or a per-run Parquet is
        missing the ``time`` column required for the index (the message says
        which epoch parameter to add, or to use :func:`report_frame`).
    """
    return _eager(_REPORT, manifest, output_dir, name, parameters, storage_options, spool)


def lazy_ephemerides(
    manifest: Manifest,
    output_dir: PathLike,
    *,
    name: str | None = None,
    spool: bool = True,
    parameters: bool = True,
    storage_options: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Assemble the ``(run_id, time)``-indexed ephemeris DataFrame from a sweep's outputs.

    Mirrors :func:`lazy_multiindex` but dispatches on ``ephemeris__<name>``
    keys instead of ``report__<name>``. The worker copies the first datetime
    column of each ephemeris frame (``Epoch`` for OEM, STK and SPK formats)
    to a column named ``time``, so the same ``(run_id, time)`` index applies.

    Parameters
    ----------
    manifest:
        The sweep manifest.
    output_dir:
        Sweep output root that relative paths are resolved against.
    name:
        EphemerisFile resource name; ``None`` picks the only one.
    spool:
        Stream record batches (``True``) or read each file at once.
    parameters:
        ``False`` leaves out the parameter columns.
    storage_options:
        Passed to fsspec for every file read.

    Returns
    -------
    pandas.DataFrame
        One row per (run, ephemeris line), indexed by ``(run_id, time)``.

    Raises
    ------
    SweepConfigError
        As for :func:`lazy_multiindex`.
    ValueError
        As for :func:`lazy_multiindex`.
    """
    return _eager(_EPHEMERIS, manifest, output_dir, name, parameters, storage_options, spool)


def lazy_contacts(
    manifest: Manifest,
    output_dir: PathLike,
    *,
    name: str | None = None,
    parameters: bool = True,
    storage_options: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Assemble the ``(run_id, interval_id)``-indexed contact DataFrame from a sweep's outputs.

    Mirrors :func:`lazy_multiindex` but dispatches on ``contact__<name>``
    keys and uses ``interval_id`` (the per-run row position the worker
    assigns at write time, 0..K-1 per run) as the secondary index level.
    Contact outputs are tiny, so each file is read at once. Failed, skipped
    and contact-less ok runs are one row with ``interval_id = pd.NA``; the
    level is nullable ``Int64`` so interval numbers and missing values share
    it.

    Parameters
    ----------
    manifest:
        The sweep manifest.
    output_dir:
        Sweep output root that relative paths are resolved against.
    name:
        ContactLocator resource name; ``None`` picks the only one.
    parameters:
        ``False`` leaves out the parameter columns.
    storage_options:
        Passed to fsspec for every file read.

    Returns
    -------
    pandas.DataFrame
        One row per (run, visibility interval), indexed by
        ``(run_id, interval_id)``.

    Raises
    ------
    SweepConfigError
        As for :func:`lazy_multiindex`.
    ValueError
        An ok entry has no ``output_paths`` at all.
    """
    return _eager(_CONTACT, manifest, output_dir, name, parameters, storage_options, False)
