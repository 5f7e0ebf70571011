"""Per-run metrics: a user's ``postprocess`` function, run next to each run's outputs.

``sweep(..., postprocess=f)`` adds one node per run to the sweep's graph,
downstream of the run's node: ``f(outputs, overrides)`` receives the run's
outputs (report / ephemeris / contact / solver name -> pandas frame, read from the
run's Parquet files on the worker that ran it) and its overrides, and
returns a mapping of named scalars. They are written beside the outputs as
``metrics.parquet`` (one row) and recorded in the run's manifest entry, so
resume and :func:`~gmat_sweep.open_sweep` keep them; nothing but the path
travels to the driver. A function that raises leaves the run ``ok`` and
records its traceback as the run's ``metrics_error``.

On a distributed cluster ``f`` may also be an importable ``"module:function"``
string, so workers import it rather than unpickle it.
"""

from __future__ import annotations

import dataclasses
import io
import numbers
import traceback
from collections.abc import Callable, Mapping, Sequence
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gmat_sweep import storage
from gmat_sweep.errors import ManifestCorruptError, SweepConfigError
from gmat_sweep.spec import PathLike, RunOptions, RunOutcome, RunSpec, RunStatus, as_location

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from gmat_sweep.manifest import Manifest, ManifestEntry

METRICS_NAME = "metrics.parquet"
"""File name of a run's metrics, beside its outputs."""

Postprocess = Callable[[dict[str, Any], dict[str, Any]], Mapping[str, Any]] | str
"""``f(outputs, overrides) -> {name: scalar}``, or ``"module:function"`` naming one."""


def resolve(postprocess: Postprocess) -> Callable[[dict[str, Any], dict[str, Any]], Any]:
    """The function ``postprocess`` is or names.

    Raises
    ------
    SweepConfigError
        A string that is not ``"module:function"``, a module that cannot be
        imported, or a name that is not a callable in it.
    """
    if not isinstance(postprocess, str):
        if not callable(postprocess):
            raise SweepConfigError(
                f"postprocess={postprocess!r} is not callable; pass a function "
                "f(outputs, overrides) -> dict of scalars, or 'module:function'"
            )
        return postprocess
    module, _, name = postprocess.partition(":")
    if not module or not name:
        raise SweepConfigError(
            f"postprocess={postprocess!r}: write an importable 'module:function', "
            "e.g. 'mypackage.metrics:miss_distance'"
        )
    try:
        found = import_module(module)
        for part in name.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError) as exc:
        raise SweepConfigError(
            f"postprocess={postprocess!r} cannot be imported ({exc}); the module must be "
            "importable on every worker (installed, or on PYTHONPATH)"
        ) from None
    if not callable(found):
        raise SweepConfigError(f"postprocess={postprocess!r} names {found!r}, not a function")
    function: Callable[[dict[str, Any], dict[str, Any]], Any] = found
    return function


def describe(postprocess: Postprocess | None) -> str | None:
    """``postprocess`` as a ``"module:function"`` string when it is importable, else ``None``.

    Recorded in the manifest so a resumed sweep computes the same metrics.
    """
    if postprocess is None or isinstance(postprocess, str):
        return postprocess
    module = getattr(postprocess, "__module__", None)
    qualname = getattr(postprocess, "__qualname__", "")
    if not module or module == "__main__" or "<" in qualname:
        return None
    return f"{module}:{qualname}"


def apply(outcome: RunOutcome, spec: RunSpec, postprocess: Postprocess) -> RunOutcome:
    """Compute ``postprocess`` on one finished run; never raises for the function's failure."""
    if outcome.status is not RunStatus.OK:
        return outcome
    options = spec.run_options.get("storage_options") or {}
    try:
        function = resolve(postprocess)
        outputs = {
            key.partition("__")[2]: _read_table(location, options).to_pandas(use_threads=False)
            for key, location in outcome.output_paths.items()
        }
        values = _scalars(function(outputs, dict(spec.overrides)))
        location = storage.join(spec.output_dir, METRICS_NAME)
        storage.atomic_write(location, _parquet(values), options)
    except Exception:
        return dataclasses.replace(outcome, metrics_error=traceback.format_exc())
    return dataclasses.replace(outcome, metrics_path=location, metrics_error=None)


def _read_table(
    location: Any, options: Mapping[str, Any] | None, *, gone: str | None = None
) -> pa.Table:
    import pyarrow.parquet as pq

    # One small file, read on an executor thread: Arrow's own thread pool would add
    # nothing, and its threads must not be started from threads that come and go.
    data = storage.read_bytes(location, options, gone=gone)
    return pq.read_table(io.BytesIO(data), use_threads=False)


def _scalars(values: Any) -> dict[str, Any]:
    """Check that a postprocess result is a mapping of names to scalars."""
    if not isinstance(values, Mapping):
        raise TypeError(
            f"postprocess returned {type(values).__name__}; return a dict of named scalars, "
            "e.g. {'miss_km': 1.2}"
        )
    checked: dict[str, Any] = {}
    for name, value in values.items():
        if not isinstance(name, str) or not name or name.startswith("__"):
            raise TypeError(f"metric name {name!r}: use a non-empty string not starting with '__'")
        item = getattr(value, "item", None)
        plain = item() if callable(item) and getattr(value, "ndim", 0) == 0 else value
        if plain is not None and not isinstance(plain, bool | numbers.Real | str):
            raise TypeError(
                f"metric {name!r} = {value!r} is not a scalar; return numbers, booleans or strings"
            )
        if isinstance(plain, numbers.Real) and not isinstance(plain, bool | int):
            plain = float(plain)
        checked[name] = plain
    return checked


def _parquet(values: Mapping[str, Any]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    pq.write_table(pa.table({name: [value] for name, value in values.items()}), sink)
    return sink.getvalue()


def compute_stored(
    entries: Sequence[ManifestEntry],
    root: PathLike,
    postprocess: Postprocess,
    storage_options: Mapping[str, Any] | None = None,
) -> list[ManifestEntry]:
    """Compute ``postprocess`` on the stored outputs of ``entries``, as a Dask graph.

    No GMAT process starts: each task reads its run's Parquet files and
    writes its metrics beside them. Returns the entries with their
    ``metrics_path`` / ``metrics_error`` set, ready to append to the manifest.
    """
    from dask.base import compute
    from dask.delayed import delayed

    from gmat_sweep.containment import locator

    locate = locator(root)
    options = RunOptions(storage_options=dict(storage_options)) if storage_options else RunOptions()
    tasks = []
    for entry in entries:
        outputs = {key: locate(path, entry.run_id) for key, path in entry.output_paths.items()}
        run_dir = locate(_recorded_dir(entry, root), entry.run_id)
        outcome = RunOutcome.ok(entry.run_id, outputs, entry.started_at, entry.ended_at)
        spec = RunSpec(Path(), dict(entry.overrides), run_dir, entry.run_id, None, options)
        tasks.append(delayed(apply, pure=False)(outcome, spec, postprocess))
    outcomes = compute(*tasks, scheduler="threads")  # type: ignore[no-untyped-call]
    updated = []
    for entry, outcome in zip(entries, outcomes, strict=True):
        relative = None
        if outcome.metrics_path is not None:
            relative = as_location(f"{_recorded_dir(entry, root)}/{METRICS_NAME}")
        updated.append(
            dataclasses.replace(entry, metrics_path=relative, metrics_error=outcome.metrics_error)
        )
    return updated


def _recorded_dir(entry: ManifestEntry, root: PathLike) -> str:
    """The ok run's directory as its entry records it: where its outputs, or its GMAT log, are.

    A run that wrote no output file (``unwritten``) still has its log there; an
    entry that records neither (no version of this library writes one) is corrupt.
    """
    recorded = next(iter(entry.output_paths.values()), entry.log_path)
    if recorded is None:
        raise ManifestCorruptError(
            f"run {entry.run_id} is ok but its manifest entry records neither an output nor a "
            "GMAT log, so its metrics have no directory to go in; remove that line from the "
            "manifest and resume() the sweep to run it again",
            root,
        )
    return str(recorded).rsplit("/", 1)[0]


def metrics_frame(
    manifest: Manifest, root: PathLike, storage_options: Mapping[str, Any] | None = None
) -> pd.DataFrame:
    """One row per run: its metrics, its parameters, ``__status`` and ``__error``.

    The table behind :meth:`gmat_sweep.sweep.Sweep.metrics`; see there.
    """
    import pandas as pd

    from gmat_sweep.containment import locator

    locate = locator(root)
    latest = {entry.run_id: entry for entry in manifest.entries}
    rows: list[dict[str, Any]] = []
    for run_id in sorted(latest):
        entry = latest[run_id]
        row: dict[str, Any] = {}
        error: str | None = None
        if entry.status is not RunStatus.OK:
            status = "failed"
            error = (entry.stderr or "").strip().split("\n", 1)[0] or None
        elif entry.metrics_error is not None:
            status, error = "failed", entry.metrics_error
        elif entry.metrics_path is not None:
            status, location = "ok", locate(entry.metrics_path, run_id)
            gone = (
                f"it holds the metrics of run {run_id}: compute them again with "
                "Sweep.add_metrics(postprocess), or restore the file"
            )
            row = _read_table(location, storage_options, gone=gone).to_pylist()[0]
        else:
            status = "missing"
        rows.append(
            {"metrics": row, "overrides": entry.overrides, "status": status, "error": error}
        )
    metrics = pd.DataFrame(
        [r["metrics"] for r in rows], index=pd.Index(sorted(latest), name="run_id")
    )
    taken = set(metrics.columns) | {"__status", "__error"}
    parameters = pd.DataFrame([r["overrides"] for r in rows], index=metrics.index)
    parameters.columns = [
        f"{name} [override]" if name in taken else name for name in parameters.columns
    ]
    frame = pd.concat([metrics, parameters], axis=1)
    frame["__status"] = [r["status"] for r in rows]
    frame["__error"] = [r["error"] for r in rows]
    return frame
