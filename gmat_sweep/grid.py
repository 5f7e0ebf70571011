"""Turning parameter grids and sample tables into run specs.

A sweep is a list of :class:`~gmat_sweep.spec.RunSpec`, one per run, numbered
from 0. This module builds that list from a full-factorial grid
(:func:`expand_grid_to_run_specs`) or from explicit rows of field values
(:func:`samples_to_rows` then :func:`rows_to_run_specs`). Everything here is
pure: no files are read or written and GMAT is never touched.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from gmat_sweep.errors import SweepConfigError

if TYPE_CHECKING:
    import pandas as pd

from gmat_sweep import storage
from gmat_sweep.spec import PathLike, RunSpec, as_location


def full_factorial(grid: Mapping[str, Iterable[Any]]) -> Iterator[dict[str, Any]]:
    """Yield override dicts for the cartesian product of ``grid``.

    Keys are emitted in lexicographic order, and the first key varies slowest
    (:func:`itertools.product` order): ``{"a": [1, 2], "b": [10, 20, 30]}``
    gives (a=1, b=10), (a=1, b=20), (a=1, b=30), (a=2, b=10), ...

    Each iterable is materialised once (:func:`materialise_grid`), so every
    validation error is raised by the call itself. An empty mapping yields a
    single empty override dict. Values are kept exactly as given.

    Parameters
    ----------
    grid:
        Mapping from dotted field path (e.g. ``"Sat.SMA"``) to the values that
        field takes, e.g. ``{"Sat.SMA": [7000, 7100], "Sat.ECC": [0.0, 0.01]}``.

    Returns
    -------
    Iterator[dict[str, Any]]
        One override dict per grid point.

    Raises
    ------
    SweepConfigError
        If ``grid`` is not a mapping, a key is not a non-empty :class:`str`, or
        a value is a string, a set, not iterable, or materialises to nothing.
    """
    columns = materialise_grid(grid)
    keys = list(columns)
    return (dict(zip(keys, combo, strict=True)) for combo in itertools.product(*columns.values()))


def materialise_grid(grid: Mapping[str, Iterable[Any]]) -> dict[str, list[Any]]:
    """Validate ``grid`` and materialise each of its iterables once, as :func:`full_factorial` does.

    Parameters
    ----------
    grid:
        Mapping from dotted field path to the values it takes.

    Returns
    -------
    dict[str, list[Any]]
        The same fields, keys in lexicographic order, each value a list.

    Raises
    ------
    SweepConfigError
        For the same reasons as :func:`full_factorial`.
    """
    if not isinstance(grid, Mapping):
        raise SweepConfigError(
            f"grid must be a mapping from field path to values, got {type(grid).__name__}; "
            "pass e.g. {'Sat.SMA': [7000, 7100]}"
        )
    for key in grid:
        if not isinstance(key, str) or not key:
            raise SweepConfigError(
                f"grid key {key!r} is not a field path: keys must be non-empty strings "
                "naming a GMAT field, e.g. 'Sat.SMA'"
            )
    return {key: _materialise(key, grid[key]) for key in sorted(grid)}


def _materialise(key: str, values: object) -> list[Any]:
    label = f"grid[{key!r}]"
    if isinstance(values, str | bytes | bytearray):
        raise SweepConfigError(
            f"{label} is the string {values!r}, which would sweep over its characters; "
            "give a list of values such as [7000, 7100]"
        )
    if isinstance(values, set | frozenset):
        raise SweepConfigError(
            f"{label} is a set, whose iteration order can change between Python processes "
            "and would reorder the runs; give a list such as sorted(...)"
        )
    if isinstance(values, Mapping):
        keys = ", ".join(map(repr, list(values)[:3])) + (", ..." if len(values) > 3 else "")
        raise SweepConfigError(
            f"{label} is a dict, which would sweep over its keys ({keys}) and drop its "
            "values; give a list of values, e.g. list(...values())"
        )
    if not isinstance(values, Iterable):
        raise SweepConfigError(
            f"{label} is {values!r} of type {type(values).__name__}, which is not iterable; "
            f"wrap a single value in a list, e.g. [{values!r}]"
        )
    materialised = list(values)
    if not materialised:
        raise SweepConfigError(
            f"{label} has no values, so the grid would have no runs; "
            "give at least one value, e.g. [7000], or drop the key"
        )
    return materialised


def run_dir_name(run_id: int) -> str:
    """The directory name of run ``run_id`` inside a sweep's output directory: ``run-000042``.

    Zero-padded to six digits so that a plain directory listing sorts runs
    numerically for sweeps of up to 999,999 runs; larger run_ids get wider.
    """
    return f"run-{run_id:06d}"


def samples_to_rows(samples: pd.DataFrame | Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Validate an explicit sample table and return it as one dict per run.

    Parameters
    ----------
    samples:
        Either a :class:`pandas.DataFrame` with one row per run and one column
        per field path (the index is ignored; rows are taken in order), or a
        sequence of mappings ``{field_path: value}``, one per run, all with the
        same keys.

    Returns
    -------
    list[dict[str, Any]]
        One override dict per run, in the given order. Every dict has its keys
        in the order of the first row (the DataFrame's column order).

    Raises
    ------
    SweepConfigError
        If there are no rows or no fields, a field name is not a non-empty
        :class:`str`, a DataFrame repeats a column, a row is not a mapping, or
        a row's keys differ from the first row's.
    """
    rows: list[Mapping[Any, Any]]
    # A DataFrame can only exist if pandas was imported: no need to import it here.
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(samples, pandas.DataFrame):
        rows = _frame_rows(samples)
    elif isinstance(samples, Mapping):
        raise SweepConfigError(
            "samples is a mapping, but it must be a table with one row per run; "
            "for columns of values pass pandas.DataFrame(samples)"
        )
    elif isinstance(samples, str | bytes | bytearray) or not isinstance(samples, Iterable):
        raise SweepConfigError(
            f"samples is {type(samples).__name__}, but it must be a pandas.DataFrame or a "
            "list of dicts, e.g. [{'Sat.SMA': 7000.0}, {'Sat.SMA': 7100.0}]"
        )
    else:
        rows = list(cast("Iterable[Mapping[Any, Any]]", samples))
    if not rows:
        raise SweepConfigError(
            "samples has no rows, so the sweep would have no runs; give at least one row"
        )
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise SweepConfigError(
                f"samples[{index}] is {type(row).__name__}, but each row must be a mapping "
                "{field_path: value}, e.g. {'Sat.SMA': 7000.0}"
            )
    fields = list(rows[0])
    if not fields:
        raise SweepConfigError(
            "samples rows have no fields; each row must set at least one field, "
            "e.g. {'Sat.SMA': 7000.0}"
        )
    for field in fields:
        if not isinstance(field, str) or not field:
            raise SweepConfigError(
                f"samples field {field!r} is not a field path: field names must be non-empty "
                "strings naming a GMAT field, e.g. 'Sat.SMA'"
            )
    expected = set(fields)
    for index, row in enumerate(rows):
        keys = set(row)
        if keys != expected:
            missing = sorted(map(repr, expected - keys))
            extra = sorted(map(repr, keys - expected))
            raise SweepConfigError(
                f"samples[{index}] has different fields from samples[0] "
                f"(missing: {', '.join(missing) or 'none'}; extra: {', '.join(extra) or 'none'}); "
                "every row must set the same fields"
            )
    return [{field: row[field] for field in fields} for row in rows]


def _frame_rows(frame: pd.DataFrame) -> list[Mapping[Any, Any]]:
    duplicated = frame.columns[frame.columns.duplicated()]
    if len(duplicated):
        raise SweepConfigError(
            f"samples repeats the columns {', '.join(sorted(map(repr, set(duplicated))))}; "
            "each field path must be one column"
        )
    if frame.shape[1] == 0:
        raise SweepConfigError(
            "samples has no columns; give one column per field path, e.g. 'Sat.SMA'"
        )
    return list(frame.to_dict(orient="records"))


def rows_to_run_specs(
    rows: Sequence[Mapping[str, Any]],
    script_path: str | Path,
    output_dir: PathLike,
    seeds: Sequence[int | None] | None = None,
) -> list[RunSpec]:
    """Build one :class:`RunSpec` per row of overrides.

    Parameters
    ----------
    rows:
        Override dicts, one per run; ``rows[i]`` becomes run ``i``.
    script_path:
        The GMAT script every run loads; kept as given (as a
        :class:`~pathlib.Path`). A relative path is resolved where the file is
        opened, against that process's current directory: pass an absolute
        path when runs execute on other machines.
    output_dir:
        The sweep's output directory, a local path or an fsspec URL such as
        ``"s3://bucket/study"``. Run ``i`` writes under
        ``<output_dir>/run-<i:06d>`` (see :func:`run_dir_name`): a
        :class:`~pathlib.Path` for local directories, a ``/``-joined string
        for URLs.
    seeds:
        Per-run seeds, one per row; ``None`` (default) gives every run
        ``seed=None``.

    Returns
    -------
    list[RunSpec]
        ``specs[i].run_id == i``, with ``run_options={}``.

    Raises
    ------
    SweepConfigError
        If ``seeds`` is given and its length differs from the number of rows.
    """
    if seeds is not None and len(seeds) != len(rows):
        raise SweepConfigError(
            f"got {len(seeds)} seeds for {len(rows)} runs; give exactly one seed per run"
        )
    script = Path(script_path)
    location = as_location(output_dir)
    return [
        RunSpec(
            script_path=script,
            overrides=dict(row),
            output_dir=storage.join(location, run_dir_name(run_id)),
            run_id=run_id,
            seed=None if seeds is None else seeds[run_id],
            run_options={},
        )
        for run_id, row in enumerate(rows)
    ]


def expand_grid_to_run_specs(
    grid: Mapping[str, Iterable[Any]],
    script_path: str | Path,
    output_dir: PathLike,
) -> list[RunSpec]:
    """Build a list of :class:`RunSpec` from a full-factorial expansion of ``grid``.

    :func:`rows_to_run_specs` of the :func:`full_factorial` rows, in their
    order (``specs[i].run_id == i``).

    Raises
    ------
    SweepConfigError
        For the same reasons as :func:`full_factorial`.
    """
    return rows_to_run_specs(list(full_factorial(grid)), script_path, output_dir)
