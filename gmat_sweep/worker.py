"""Run one GMAT mission: the only code in gmat_sweep that touches GMAT.

:func:`run_one` turns a :class:`~gmat_sweep.spec.RunSpec` into a
:class:`~gmat_sweep.spec.RunOutcome`. It loads each script once per process
and reuses the loaded mission for every later run of the same script (the
cache is keyed by the script's canonical SHA-256, so an edited script is
reloaded). GMAT keeps one live configuration per process, so the cache holds
one mission at a time.

Reusing a loaded mission must not let one run's overrides leak into the next:
GMAT keeps a spacecraft's orbit as Cartesian state, so writing ``Sat.SMA``
on top of an earlier run's write leaves round-off in the other elements and
the result differs from a fresh load in the last bits. Before its first
write to a resource the worker keeps a clone of it, and before every run it
copies the clone back over each resource an earlier run touched. Runs are
therefore bit-identical to runs on a freshly loaded script, whatever ran
before them in the same process.

Each run gets a private scratch directory for GMAT; the parsed outputs are
written as Parquet under ``spec.output_dir`` (any fsspec URL) through
:func:`gmat_sweep.storage.atomic_write`, next to the run's own GMAT log
``gmat.log``. A run's own failure (load, override or run error) is returned
as a ``failed`` outcome carrying the traceback and the tail of the engine
log; :func:`run_one` never raises for it.
"""

from __future__ import annotations

import io
import shutil
import tempfile
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from gmat_sweep import storage
from gmat_sweep.engine import ensure_engine
from gmat_sweep.manifest import canonical_script_sha256
from gmat_sweep.spec import PathLike, RunOutcome, RunSpec

LOG_NAME = "gmat.log"
"""File name of the per-run GMAT log kept beside the run's outputs."""

_LOG_TAIL_LINES = 40
_DIAGNOSTIC_LINES = 4


@dataclass
class _Loaded:
    """The one mission this process has loaded, with what runs have changed on it."""

    key: str
    mission: Any
    snapshots: dict[str, Any] = field(default_factory=dict)
    dirty: set[str] = field(default_factory=set)


_loaded: _Loaded | None = None


def run_one(spec: RunSpec, on_start: Callable[[], None] | None = None) -> RunOutcome:
    """Run one mission and write its outputs; never raises for the run's own failure.

    Parameters
    ----------
    spec:
        What to run. ``spec.run_options["storage_options"]`` (optional) is
        passed to fsspec when writing under ``spec.output_dir``.
    on_start:
        Called once the mission is loaded and overridden, just before GMAT
        runs it (the host process uses it to start the run's timeout clock,
        so a cold script load does not count against ``timeout_s``).

    Returns
    -------
    RunOutcome
        ``ok`` with ``output_paths`` keyed ``report__<name>``,
        ``ephemeris__<name>`` and ``contact__<name>``, or ``failed`` with the
        error text and the tail of GMAT's log in ``stderr``.
    """
    started = datetime.now(UTC)
    options = spec.run_options.get("storage_options") or {}
    scratch = Path(tempfile.mkdtemp(prefix=f"gmat-sweep-run-{spec.run_id}-"))
    logs = (scratch / "load.log", scratch / "work" / "GmatLog.txt")
    try:
        storage.make_dirs(spec.output_dir, options)
        try:
            paths = _run(spec, scratch, logs[0], options, on_start)
        except Exception as exc:
            log = _read_logs(logs)
            detail = _describe_failure(exc, log)
            return RunOutcome.failed(spec.run_id, detail, started, datetime.now(UTC))
        finally:
            log = _read_logs(logs)
            storage.atomic_write(storage.join(spec.output_dir, LOG_NAME), log.encode(), options)
        return RunOutcome.ok(spec.run_id, paths, started, datetime.now(UTC))
    except Exception:
        return RunOutcome.failed(spec.run_id, traceback.format_exc(), started, datetime.now(UTC))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def check_fields(script_path: Path, paths: list[str]) -> list[str]:
    """Load ``script_path`` and return one message per field path it does not have.

    A script GMAT cannot parse yields a single message with GMAT's own
    diagnostic lines. An empty list means every path can be overridden.
    """
    scratch = Path(tempfile.mkdtemp(prefix="gmat-sweep-check-"))
    log_path = scratch / "load.log"
    try:
        try:
            mission = _mission_for(script_path, log_path).mission
        except Exception as exc:
            return [_describe_failure(exc, _read_logs((log_path,))).split("\n\n", 1)[0]]
        problems = []
        for path in paths:
            try:
                mission[path]
            except Exception as exc:
                problems.append(f"{path!r}: {exc}")
        return problems
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _run(
    spec: RunSpec,
    scratch: Path,
    log_path: Path,
    options: Mapping[str, Any],
    on_start: Callable[[], None] | None,
) -> dict[str, PathLike]:
    loaded = _mission_for(spec.script_path, log_path)
    mission = loaded.mission
    _restore(loaded)
    for path in sorted(spec.overrides):
        resource = path.split(".", 1)[0]
        if resource not in loaded.snapshots:
            loaded.snapshots[resource] = _clone(mission, resource)
        loaded.dirty.add(resource)
        mission[path] = spec.overrides[path]
    if on_start is not None:
        on_start()
    results = mission.run(working_dir=scratch / "work")
    paths: dict[str, PathLike] = {}
    for key, table in output_tables(results).items():
        target = storage.join(spec.output_dir, f"{key}.parquet")
        storage.atomic_write(target, _parquet_bytes(table), options)
        paths[key] = target
    return paths


def output_tables(results: Any) -> dict[str, pa.Table]:
    """Every output of a gmat-run ``Results`` as an Arrow table, keyed for the manifest.

    Reports and ephemerides get a ``time`` column (a copy of their first
    datetime column, when they have one); contact tables get ``interval_id``
    (0..K-1 in file order).
    """
    tables: dict[str, pa.Table] = {}
    for name in results.reports:
        tables[f"report__{name}"] = _table(results.reports[name], time=True)
    for name in results.ephemerides:
        tables[f"ephemeris__{name}"] = _table(results.ephemerides[name], time=True)
    for name in results.contacts:
        contacts = _table(results.contacts[name], time=False)
        interval_id = pa.array(range(contacts.num_rows), type=pa.int64())
        tables[f"contact__{name}"] = contacts.append_column("interval_id", interval_id)
    return tables


def _mission_for(script_path: Path, log_path: Path) -> _Loaded:
    """Return this process's mission for ``script_path``, loading it if needed."""
    global _loaded
    from gmat_run import Mission

    key = canonical_script_sha256(script_path)
    if _loaded is not None and _loaded.key == key:
        return _loaded
    engine = ensure_engine()
    _point_log_at(engine.root, log_path)
    _loaded = None  # a failed load breaks every older handle
    mission = Mission.load(script_path, gmat_root=engine.root)
    _loaded = _Loaded(key=key, mission=mission)
    return _loaded


def _point_log_at(root: Path, log_path: Path) -> None:
    """Send GMAT's log to ``log_path`` so a parse error is kept with the run."""
    from gmat_run.install import locate_gmat
    from gmat_run.runtime import bootstrap

    gmat = bootstrap(locate_gmat(root))
    gmat.UseLogFile(str(log_path))


def _clone(mission: Any, resource: str) -> Any:
    obj = mission.gmat.GetObject(resource)
    return None if obj is None else obj.Clone()


def _restore(loaded: _Loaded) -> None:
    """Copy each resource an earlier run wrote back to its state at load time."""
    gmat = loaded.mission.gmat
    for resource in sorted(loaded.dirty):
        snapshot = loaded.snapshots.get(resource)
        obj = gmat.GetObject(resource)
        if snapshot is not None and obj is not None:
            obj.Copy(snapshot)
    loaded.dirty.clear()


def _table(frame: pd.DataFrame, *, time: bool) -> pa.Table:
    """Arrow table of a parsed GMAT frame (attrs dropped: they hold wall-clock stamps).

    With ``time=True`` a ``time`` column, copied from the first datetime
    column, is put first when the frame has one.
    """
    frame = frame.copy(deep=False)
    frame.attrs = {}
    table = pa.Table.from_pandas(frame, preserve_index=False)
    if time and "time" not in table.column_names:
        for index, column_type in enumerate(table.schema.types):
            if pa.types.is_timestamp(column_type):
                table = table.add_column(0, "time", table.column(index))
                break
    return table


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def _read_logs(paths: tuple[Path, ...]) -> str:
    """The run's GMAT log: the load log (when this run loaded the script), then the run log."""
    parts = []
    for path in paths:
        try:
            parts.append(path.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            continue
    return "".join(parts)


def _describe_failure(exc: BaseException, log: str) -> str:
    """Failure text: the error, GMAT's own diagnostic lines, traceback, then the log tail.

    The first line always names the error, so summaries can group failures by it.
    """
    lines = log.splitlines()
    diagnostics = [
        line.strip()
        for line in lines
        if "ERROR" in line or "exception" in line.lower() or "error occurred" in line
    ]
    parts = [f"{type(exc).__name__}: {exc}".splitlines()[0]]
    parts += diagnostics[:_DIAGNOSTIC_LINES]
    parts.append("")
    parts.append("".join(traceback.format_exception(exc)).rstrip())
    if lines:
        parts.append(f"--- last lines of the GMAT log ({LOG_NAME}) ---")
        parts += lines[-_LOG_TAIL_LINES:]
    return "\n".join(parts)
