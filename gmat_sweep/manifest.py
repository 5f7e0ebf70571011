"""The sweep manifest: a crash-safe JSON Lines record of a sweep and its runs.

A manifest file is one header line (the sweep's fingerprint: script hash,
versions, parameter spec, seed) followed by one line per finished run attempt.
Lines are appended with ``fsync`` as runs complete, so killing the driver at
any moment leaves a file that :meth:`Manifest.load` can read: at worst the
final line is torn, and that one line is ignored.

The file keeps every attempt of a run (a resumed sweep appends a new line for
each re-run); the in-memory :attr:`Manifest.entries` keeps only the last
attempt of each run ("last entry wins"). ``docs/reference/manifest-schema.md`` is the
field-by-field contract and the schema-version compatibility policy.

Only JSON is ever written or read; nothing is pickled.
"""

from __future__ import annotations

import gc
import json
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Self

import msgspec

from gmat_sweep import storage
from gmat_sweep.errors import ManifestCorruptError
from gmat_sweep.journal import ENTRIES_DIR as ENTRIES_DIR
from gmat_sweep.journal import Journal, TailRepair, open_journal
from gmat_sweep.plan import MAX_RUNS
from gmat_sweep.script import canonical_script_sha256 as canonical_script_sha256
from gmat_sweep.script import script_includes_sha256 as script_includes_sha256
from gmat_sweep.spec import (
    PathLike,
    RunOutcome,
    RunStatus,
    as_location,
    as_status,
    is_url,
    plain_overrides,
    to_plain,
)

MANIFEST_SCHEMA_VERSION = 1
"""On-disk manifest schema version this gmat-sweep writes and reads.

:meth:`Manifest.load` accepts any header whose ``schema_version`` is
``<= MANIFEST_SCHEMA_VERSION`` (a missing field is treated as 1 for backwards
compatibility with manifests written before the field was introduced) and
rejects anything greater. See ``docs/reference/manifest-schema.md`` for the
field-by-field contract and the compatibility policy that governs future bumps.
"""

_RESTORE_HINT = "restore it from a backup, or delete the sweep's manifest and start a new sweep"

_REQUIRED: Any = object()
_JSON_NAMES = {str: "string", int: "integer", dict: "object"}

_DECODER = json.JSONDecoder()
_STATUSES = {status.value: status for status in RunStatus}


def _stored(location: PathLike) -> str:
    """How a path is written into the manifest: URLs verbatim, local paths as POSIX."""
    return location if isinstance(location, str) else location.as_posix()


_PATH_CLASS = type(Path())  # PosixPath or WindowsPath: what Path(...) builds here
_new_object = object.__new__
_set_attribute = object.__setattr__


def _location(stored: str) -> PathLike:
    """Inverse of :func:`_stored`; skips :func:`as_location`'s checks for plain paths.

    A plain path is built as ``Path(stored)`` is, minus ``Path.__new__``'s
    choice of class (made once, above): loading a 100k-run manifest builds
    200k paths.
    """
    if "://" in stored:
        return as_location(stored)
    path: Path = _new_object(_PATH_CLASS)
    _PATH_CLASS.__init__(path, stored)
    return path


@dataclass(frozen=True)
class ManifestEntry:
    """One run's record in the manifest — overrides, status, outputs, timing.

    Parameters
    ----------
    run_id:
        Position of the run in its sweep, from 0.
    overrides:
        The dotted-path field values the run applied, JSON-plain.
    status:
        How the run ended: a :class:`~gmat_sweep.spec.RunStatus`, or its value
        as a string (``"ok"``), which is converted; any other value raises
        :class:`ValueError`.
    output_paths:
        ``report__<Name>`` / ``ephemeris__<Name>`` / ``contact__<Name>`` ->
        Parquet file. Paths are stored relative to the sweep root (the
        manifest's directory), e.g. ``Path("run-000003/report__RF.parquet")``;
        absolute paths and fsspec URLs (kept as ``str``) are used as they are.
        Empty for failed and skipped runs.
    started_at, ended_at:
        Timezone-aware bookend timestamps of the run.
    duration_s:
        Wall-clock seconds between the bookends.
    stderr:
        ``None`` for successful runs, the captured stderr / traceback otherwise.
    log_path:
        The run's GMAT log, with the same path rules as ``output_paths``, or
        ``None`` when no log was kept.
    script_sha256:
        SHA-256 of the script text the run loaded (its load-time overrides
        rendered in), or ``None`` when unknown.
    metrics_path:
        The run's per-run metrics (``metrics.parquet``, from the sweep's
        ``postprocess``), with the same path rules as ``output_paths``, or
        ``None``.
    metrics_error:
        The traceback of a ``postprocess`` function that raised on this run
        (the run itself stays ``ok``), or ``None``.
    """

    run_id: int
    overrides: dict[str, Any]
    status: RunStatus
    output_paths: dict[str, PathLike]
    started_at: datetime
    ended_at: datetime
    duration_s: float
    stderr: str | None
    log_path: PathLike | None
    script_sha256: str | None = None
    metrics_path: PathLike | None = None
    metrics_error: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", as_status(self.status))

    @classmethod
    def from_outcome(
        cls,
        outcome: RunOutcome,
        *,
        overrides: Mapping[str, Any],
        log_path: PathLike | None = None,
    ) -> Self:
        """Build a manifest entry from a worker :class:`~gmat_sweep.spec.RunOutcome`.

        Parameters
        ----------
        outcome:
            The worker's result; run id, status, output paths, timestamps,
            duration and stderr are copied from it.
        overrides:
            The run's overrides; numpy scalars become plain Python values.
        log_path:
            The run's GMAT log, if one was kept.

        Returns
        -------
        ManifestEntry
            The entry to pass to :meth:`Manifest.append_entry`.
        """
        return cls(
            run_id=outcome.run_id,
            overrides=plain_overrides(overrides),
            status=outcome.status,
            output_paths=dict(outcome.output_paths),
            started_at=outcome.started_at,
            ended_at=outcome.ended_at,
            duration_s=outcome.duration_s,
            stderr=outcome.stderr,
            log_path=log_path,
            script_sha256=outcome.script_sha256,
            metrics_path=outcome.metrics_path,
            metrics_error=outcome.metrics_error,
        )

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready mapping of this entry.

        Datetimes become ISO 8601 strings (with their UTC offset), paths
        POSIX strings, numpy scalars plain numbers. Floats round-trip exactly;
        NaN and infinities are written as the JSON extensions ``NaN`` /
        ``Infinity``. ``script_sha256``, ``metrics_path`` and
        ``metrics_error`` are written only when set.
        """
        data: dict[str, Any] = {
            "run_id": self.run_id,
            "status": self.status.value,
            "overrides": plain_overrides(self.overrides),
            "output_paths": {key: _stored(value) for key, value in self.output_paths.items()},
            "log_path": None if self.log_path is None else _stored(self.log_path),
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat(),
            "duration_s": self.duration_s,
            "stderr": self.stderr,
        }
        if self.script_sha256 is not None:
            data["script_sha256"] = self.script_sha256
        if self.metrics_path is not None:
            data["metrics_path"] = _stored(self.metrics_path)
        if self.metrics_error is not None:
            data["metrics_error"] = self.metrics_error
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Rebuild an entry from :meth:`to_dict` output; unknown keys are ignored.

        Stored path strings come back as :class:`~pathlib.Path` (relative ones
        stay relative) and URLs as ``str``.

        Raises
        ------
        KeyError, TypeError, ValueError
            If a required key is missing or a value has the wrong type.
        """
        run_id = data["run_id"]
        if type(run_id) is not int:
            raise TypeError(f"run_id must be an integer, got {run_id!r}")
        overrides = data["overrides"]
        if type(overrides) is not dict:
            raise TypeError(f"overrides must be a JSON object, got {overrides!r}")
        stderr = data["stderr"]
        if stderr is not None and type(stderr) is not str:
            raise TypeError(f"stderr must be a string or null, got {stderr!r}")
        log_path = data.get("log_path")
        script_sha256 = data.get("script_sha256")
        if script_sha256 is not None and type(script_sha256) is not str:
            raise TypeError(f"script_sha256 must be a string or null, got {script_sha256!r}")
        metrics_path, metrics_error = data.get("metrics_path"), data.get("metrics_error")
        for key, value in (("metrics_path", metrics_path), ("metrics_error", metrics_error)):
            if value is not None and type(value) is not str:
                raise TypeError(f"{key} must be a string or null, got {value!r}")
        return cls(
            run_id=run_id,
            overrides=overrides,
            status=_STATUSES[data["status"]],
            output_paths={k: _location(v) for k, v in data["output_paths"].items()},
            started_at=datetime.fromisoformat(data["started_at"]),
            ended_at=datetime.fromisoformat(data["ended_at"]),
            duration_s=float(data["duration_s"]),
            stderr=stderr,
            log_path=None if log_path is None else _location(log_path),
            script_sha256=script_sha256,
            metrics_path=None if metrics_path is None else _location(metrics_path),
            metrics_error=metrics_error,
        )


class _EntryLine(msgspec.Struct):
    """An entry line as this version writes it, decoded and type-checked in C.

    The fast path of loading a big manifest: a line that does not fit this
    shape (NaN overrides, a torn or hand-edited line, another ``kind``) goes
    through :func:`json` and :meth:`ManifestEntry.from_dict`, which give the
    same entry or a precise error.
    """

    kind: str
    run_id: int
    status: RunStatus
    overrides: dict[str, Any]
    output_paths: dict[str, str]
    started_at: datetime
    ended_at: datetime
    duration_s: float
    stderr: str | None
    log_path: str | None = None
    script_sha256: str | None = None
    metrics_path: str | None = None
    metrics_error: str | None = None

    def to_entry(self) -> ManifestEntry:
        log_path, metrics_path = self.log_path, self.metrics_path
        entry: ManifestEntry = _new_object(ManifestEntry)
        # The values are decoded and type-checked: set the frozen record's fields in
        # one step rather than by nine object.__setattr__ calls in __init__, which
        # cost a quarter of loading a 100k-run manifest.
        _set_attribute(
            entry,
            "__dict__",
            {
                "run_id": self.run_id,
                "overrides": self.overrides,
                "status": self.status,
                "output_paths": {key: _location(path) for key, path in self.output_paths.items()},
                "started_at": self.started_at,
                "ended_at": self.ended_at,
                "duration_s": self.duration_s,
                "stderr": self.stderr,
                "log_path": None if log_path is None else _location(log_path),
                "script_sha256": self.script_sha256,
                "metrics_path": None if metrics_path is None else _location(metrics_path),
                "metrics_error": self.metrics_error,
            },
        )
        return entry


_decode_entry_line = msgspec.json.Decoder(_EntryLine).decode
_decode_entry_lines = msgspec.json.Decoder(_EntryLine).decode_lines


@dataclass
class _Arrivals:
    """Where each run's entry sits in ``Manifest.entries``, for O(log n) replacement.

    Every entry gets an increasing ticket when it arrives; ``tickets`` is kept
    parallel to the entries list, so it stays sorted and a run's position is a
    binary search. The index only trusts itself while it still describes the
    same list object with the same length; otherwise it is rebuilt.
    """

    owner: list[ManifestEntry]
    ticket_of: dict[int, int]
    tickets: list[int]

    @classmethod
    def of(cls, entries: list[ManifestEntry]) -> _Arrivals:
        return cls(
            owner=entries,
            ticket_of={entry.run_id: i for i, entry in enumerate(entries)},
            tickets=list(range(len(entries))),
        )

    def describes(self, entries: list[ManifestEntry]) -> bool:
        return self.owner is entries and len(self.tickets) == len(entries)

    def position(self, run_id: int) -> int | None:
        ticket = self.ticket_of.get(run_id)
        return None if ticket is None else bisect_left(self.tickets, ticket)

    def push(self, entry: ManifestEntry) -> None:
        ticket = self.tickets[-1] + 1 if self.tickets else 0
        self.ticket_of[entry.run_id] = ticket
        self.tickets.append(ticket)
        self.owner.append(entry)

    def remove(self, position: int) -> None:
        del self.ticket_of[self.owner[position].run_id]
        del self.tickets[position]
        del self.owner[position]


@dataclass
class Manifest:
    """Sweep manifest — header fingerprint plus a growing list of per-run entries.

    The header fields are written once by :meth:`save`; entries are appended
    one durable line at a time by :meth:`append_entry`. ``entries`` holds one
    entry per run — the last one recorded — in the order those entries
    arrived. Read it freely, but grow it only through :meth:`append_entry`.
    A manifest is not thread-safe: append to it from one thread.

    Parameters
    ----------
    script_sha256:
        :func:`canonical_script_sha256` of the mission script.
    gmat_sweep_version, gmat_run_version:
        Versions of gmat_sweep and gmat-run that ran the sweep.
    gmat_install_version:
        Identity of the GMAT engine, e.g.
        ``"gmatpy 0.2.1 (GMAT R2026a, embedded)"``.
    python_version, os_platform:
        The driver's interpreter version and platform string.
    sweep_seed:
        The sweep's parent seed, or ``None``.
    parameter_spec:
        The sweep's parameterisation (JSON-plain), enough to rebuild its runs.
    run_count:
        Number of runs in the sweep.
    backend:
        Name of the execution backend.
    schema_version:
        Schema version of the file this manifest was loaded from (or will be
        saved as).
    entries:
        One entry per run, last attempt wins, in arrival order.
    script_includes:
        :func:`script_includes_sha256` of the mission script.
    script_path:
        Absolute path of the mission script when the sweep ran (so
        ``gmat-sweep resume DIR`` can find it); ``""`` when unknown.
    numpy_version, scipy_version:
        Versions of numpy and scipy in the driver, which Monte Carlo and
        Latin-hypercube draws depend on; ``""`` when unknown (manifests
        written before these fields existed).

    Notes
    -----
    Object stores (``s3://``, ``gs://``, ``memory://`` ...) cannot append to
    an object, so there the manifest is the header object ``manifest.jsonl``
    plus one small object per appended entry under ``manifest.d/`` beside it
    (names sort in arrival order). :meth:`load` merges both (last wins) and
    :meth:`compact` folds the entry objects back into ``manifest.jsonl``. A
    crash of the driver therefore loses at most the runs in flight.
    """

    script_sha256: str
    gmat_sweep_version: str
    gmat_run_version: str
    gmat_install_version: str
    python_version: str
    os_platform: str
    sweep_seed: int | None
    parameter_spec: dict[str, Any]
    run_count: int
    backend: str = "unknown"
    schema_version: int = MANIFEST_SCHEMA_VERSION
    entries: list[ManifestEntry] = field(default_factory=list)
    script_includes: dict[str, str] = field(default_factory=dict)
    script_path: str = ""
    numpy_version: str = ""
    scipy_version: str = ""
    _journal: Journal | None = field(default=None, init=False, repr=False, compare=False)
    _arrivals: _Arrivals | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def path(self) -> PathLike | None:
        """The absolute path (or URL) of the file this manifest is bound to, or ``None``.

        Set by :meth:`save` and :meth:`load`; :meth:`append_entry` writes there.
        """
        return None if self._journal is None else self._journal.location

    def save(self, path: PathLike, *, storage_options: Mapping[str, Any] | None = None) -> None:
        """Write header + all current entries as JSON Lines, fsyncing file and parent dir.

        The file is replaced atomically (written to a temporary file in the
        same directory, fsynced, renamed over ``path``, then the directory is
        fsynced), so a crash leaves either the old file or the new one. Parent
        directories are created. Afterwards the manifest is bound to ``path``
        and :meth:`append_entry` writes there.

        Parameters
        ----------
        path:
            File to write, conventionally ``<sweep root>/manifest.jsonl``: a
            local path, or an fsspec URL (written with one atomic put).
        storage_options:
            fsspec options for a URL (kept for later appends, never written).

        Raises
        ------
        OSError
            The file or its directory cannot be written.

        See Also
        --------
        load : read a manifest back.
        append_entry : add one run's entry durably.

        Examples
        --------
        >>> manifest = Manifest.load("study/manifest.jsonl")  # doctest: +SKIP
        >>> manifest.save("copy/manifest.jsonl")  # header and winning entries  # doctest: +SKIP
        """
        lines = [_encode_line(self._header_dict())]
        lines.extend(_encode_line({"kind": "entry", **entry.to_dict()}) for entry in self.entries)
        journal = open_journal(path, dict(storage_options or {}))
        if self._journal is not None and self._journal.location == journal.location:
            journal = self._journal  # it knows the entry objects this save folds in
        journal.save(b"".join(lines))
        self._journal = journal

    def append_entry(self, entry: ManifestEntry) -> None:
        """Append one entry to the bound file with fsync, and to the in-memory list.

        The line is written with a single ``write`` call on a file opened for
        appending, then fsynced, so once this returns the entry survives a
        crash. If the file was loaded with a torn final line, that line is cut
        off first so the file stays valid JSON Lines. In memory, an earlier
        entry for the same ``run_id`` is replaced and the new one goes to the
        end of :attr:`entries` (last entry wins).

        Parameters
        ----------
        entry:
            The run's record, typically from :meth:`ManifestEntry.from_outcome`.

        Raises
        ------
        RuntimeError
            If the manifest is not bound to a file yet (call :meth:`save`
            first, or get it from :meth:`load`), or the file changed on disk
            since it was loaded with a torn final line.
        OSError
            The file (or, on an object store, the entry object) cannot be
            written.

        See Also
        --------
        ManifestEntry.from_outcome : an entry from a run's outcome.
        compact : fold an object store's entry objects into the file.

        Examples
        --------
        >>> manifest = Manifest.load("study/manifest.jsonl")  # doctest: +SKIP
        >>> entry = manifest.entry_for(3)  # doctest: +SKIP
        >>> manifest.append_entry(entry)  # recorded again, now the last line  # doctest: +SKIP
        """
        if self._journal is None:
            raise RuntimeError(
                "this Manifest is not bound to a file, so append_entry has nowhere to write; "
                "call save(path) first (or get the manifest from Manifest.load(path))"
            )
        self._journal.append(_encode_line({"kind": "entry", **entry.to_dict()}))
        self._remember(entry)

    def rewrite_header(self) -> None:
        """Replace the bound file's header line with the current header fields.

        Every complete entry line (the full attempt history) is kept; a torn
        final line left by a crash is dropped and a last line without its
        newline gets one, so the next append starts on a line of its own. Used
        when a sweep grows (:meth:`gmat_sweep.sweep.Sweep.extend`). The file
        is replaced atomically, as in :meth:`save`.

        Raises
        ------
        RuntimeError
            The manifest is not bound to a file, or the file was loaded with a
            damaged end and changed on disk since.
        OSError
            The file cannot be read or replaced.

        See Also
        --------
        save : write the whole manifest.

        Examples
        --------
        >>> manifest = Manifest.load("study/manifest.jsonl")  # doctest: +SKIP
        >>> manifest.run_count += 10  # doctest: +SKIP
        >>> manifest.rewrite_header()  # doctest: +SKIP
        """
        if self._journal is None:
            raise RuntimeError("this Manifest is not bound to a file; call save(path) first")
        self._journal.rewrite_header(_encode_line(self._header_dict()))

    def compact(self) -> None:
        """Fold an object-store manifest's entry objects back into ``manifest.jsonl``.

        Every attempt is kept, in arrival order; the entry objects are deleted
        (in one batch where the store allows) only after the rewritten file is
        in place, so a crash at any point loses nothing (a leftover object
        duplicates a line, and last wins). A reader racing the compaction
        notices that ``manifest.jsonl`` changed under it and reads again, so it
        neither misses an entry nor fails on a vanished object. The manifest
        keeps the content of its entry objects, so only ``manifest.jsonl`` is
        read back. Only the driver holding the sweep
        (:func:`gmat_sweep.lock.hold`) may compact: two compactions that
        interleave would each rewrite the file without the other's lines. A
        no-op for local files, which are appended to directly.

        Raises
        ------
        OSError
            The object store cannot be read or written.

        See Also
        --------
        load : merges the entry objects too, so readers need no compaction.

        Examples
        --------
        >>> manifest = Manifest.load("s3://bucket/study/manifest.jsonl")  # doctest: +SKIP
        >>> manifest.compact()  # doctest: +SKIP
        """
        if self._journal is not None:
            self._journal.compact()

    def _remember(self, entry: ManifestEntry) -> None:
        """Record ``entry`` in memory: it replaces the run's earlier entry (last wins)."""
        position = self._position(entry.run_id)
        arrivals = self._index()
        if position is not None:
            arrivals.remove(position)
        arrivals.push(entry)

    @classmethod
    def load(cls, path: PathLike, *, storage_options: Mapping[str, Any] | None = None) -> Self:
        """Load a manifest from disk, tolerating a single torn final line.

        A last line that is not valid JSON (a write cut short by a crash) is
        ignored; any other damage is an error. The file keeps every attempt of
        a run; the loaded :attr:`entries` keep one per ``run_id`` — the last
        one in the file — ordered by where that line sits. Unknown header and
        entry keys, and lines of an unknown ``kind``, are ignored. The
        returned manifest is bound to ``path``.

        Parameters
        ----------
        path:
            The ``manifest.jsonl`` to read: a local path or an fsspec URL. On an
            object store, the entry objects under ``manifest.d/`` are merged in
            after the file's own lines.
        storage_options:
            fsspec options for a URL.

        Returns
        -------
        Manifest
            The header fields and the winning entries.

        Raises
        ------
        ManifestCorruptError
            If the file does not exist, has no valid header, was written by a
            newer gmat_sweep (``schema_version`` above
            :data:`MANIFEST_SCHEMA_VERSION`), or has an unreadable line other
            than the last. The message names the file, the line and the fix.
        OSError
            The file or object store cannot be read.

        See Also
        --------
        gmat_sweep.open_sweep : the sweep a manifest describes, with its frames.
        read_all_entries : every attempt, not only each run's last.

        Examples
        --------
        >>> from gmat_sweep import Manifest
        >>> manifest = Manifest.load("study/manifest.jsonl")  # doctest: +SKIP
        >>> manifest.run_count, len(manifest.entries), manifest.sweep_seed  # doctest: +SKIP
        (20, 20, None)
        >>> manifest.gmat_install_version  # doctest: +SKIP
        'gmatpy 0.2.1 (GMAT R2026a, embedded)'
        """
        options = dict(storage_options or {})
        with _collector_paused():
            journal, parsed = _read_manifest(path, options)
            winners: dict[int, ManifestEntry] = {}
            for entry in parsed.entries:
                if entry.run_id in winners:
                    del winners[entry.run_id]  # re-inserting moves the run to its latest position
                winners[entry.run_id] = entry
            manifest = cls(
                **parsed.header_fields,
                schema_version=parsed.schema_version,
                entries=list(winners.values()),
            )
        manifest._journal = journal
        return manifest

    def find_failed(self) -> list[int]:
        """Return run_ids of entries with status failed, in arrival order.

        Only each run's last entry counts: a run that failed and then
        succeeded on resume is not listed.

        See Also
        --------
        find_missing : runs with no entry at all.
        entry_for : a failed run's error text (``stderr``) and log.

        Examples
        --------
        >>> manifest.find_failed()  # doctest: +SKIP
        [2, 4]
        >>> manifest.entry_for(2).stderr.splitlines()[0]  # doctest: +SKIP
        """
        return [entry.run_id for entry in self.entries if entry.status == RunStatus.FAILED]

    def find_missing(self, expected_run_ids: Iterable[int]) -> list[int]:
        """Return run_ids in ``expected_run_ids`` with no entry recorded, in input order.

        Parameters
        ----------
        expected_run_ids:
            Every run of the sweep, typically ``range(manifest.run_count)``.

        See Also
        --------
        find_failed : runs whose last attempt failed.

        Examples
        --------
        >>> manifest.find_missing(range(manifest.run_count))  # doctest: +SKIP
        [18, 19]
        """
        recorded = self._index().ticket_of
        return [run_id for run_id in expected_run_ids if run_id not in recorded]

    def entry_for(self, run_id: int) -> ManifestEntry | None:
        """Return the (last) entry recorded for ``run_id``, or ``None`` if there is none.

        Examples
        --------
        >>> entry = manifest.entry_for(0)  # doctest: +SKIP
        >>> entry.status, entry.overrides, entry.output_paths  # doctest: +SKIP
        """
        position = self._position(run_id)
        return None if position is None else self.entries[position]

    def _position(self, run_id: int) -> int | None:
        position = self._index().position(run_id)
        if position is not None and self.entries[position].run_id != run_id:
            self._arrivals = None  # ``entries`` was edited in place: re-index it
            position = self._index().position(run_id)
        return position

    def _index(self) -> _Arrivals:
        arrivals = self._arrivals
        if arrivals is None or not arrivals.describes(self.entries):
            arrivals = self._arrivals = _Arrivals.of(self.entries)
        return arrivals

    def _header_dict(self) -> dict[str, Any]:
        return {
            "kind": "header",
            "schema_version": self.schema_version,
            "script_sha256": self.script_sha256,
            "script_includes": dict(self.script_includes),
            "gmat_sweep_version": self.gmat_sweep_version,
            "gmat_run_version": self.gmat_run_version,
            "gmat_install_version": self.gmat_install_version,
            "python_version": self.python_version,
            "os_platform": self.os_platform,
            "backend": self.backend,
            "sweep_seed": self.sweep_seed,
            "run_count": self.run_count,
            "parameter_spec": to_plain(self.parameter_spec),
            "script_path": self.script_path,
            "numpy_version": self.numpy_version,
            "scipy_version": self.scipy_version,
        }


def read_all_entries(
    path: PathLike, *, storage_options: Mapping[str, Any] | None = None
) -> list[ManifestEntry]:
    """Every entry line of a manifest, in file order, including superseded attempts.

    :meth:`Manifest.load` keeps only the last attempt of each run; this is for
    tools that want the full history (e.g. how often a run was retried). The
    same rules apply: one torn final line is ignored, any other damage raises.

    Parameters
    ----------
    path:
        The ``manifest.jsonl`` to read (local path or fsspec URL).
    storage_options:
        fsspec options for a URL.

    Returns
    -------
    list[ManifestEntry]
        One entry per entry line (and per entry object on an object store).

    Raises
    ------
    ManifestCorruptError
        For the same reasons as :meth:`Manifest.load`.
    """
    return _read_manifest(path, dict(storage_options or {}))[1].entries


def unreadable_ok_runs(
    manifest: Manifest, root: PathLike, storage_options: Mapping[str, Any] | None = None
) -> list[int]:
    """run_ids whose last entry is ``ok`` but whose recorded output files cannot be read.

    A machine crash can lose a file a manifest line names; resume treats such
    a run as missing and runs it again. See :func:`gmat_sweep.storage.unreadable`
    for what counts as readable.

    Parameters
    ----------
    manifest:
        The loaded manifest.
    root:
        The sweep root that relative output paths are stored against.
    storage_options:
        fsspec options for a URL root.

    Returns
    -------
    list[int]
        In the manifest's entry order.

    Raises
    ------
    ManifestCorruptError
        A recorded path lies outside the sweep root.
    """
    from gmat_sweep.containment import locator

    locate = locator(root)  # a path outside the sweep raises ManifestCorruptError
    owners: dict[str, int] = {}
    for entry in manifest.entries:
        if entry.status is RunStatus.OK:
            for path in entry.output_paths.values():
                owners[locate(path, entry.run_id)] = entry.run_id
    by_filesystem: dict[str, list[str]] = {}
    for location in owners:
        protocol = location.split("://", 1)[0] if is_url(location) else "file"
        by_filesystem.setdefault(protocol, []).append(location)
    lost = {
        owners[location]
        for locations in by_filesystem.values()
        for location in storage.unreadable(locations, storage_options)
    }
    return [entry.run_id for entry in manifest.entries if entry.run_id in lost]


def _read_manifest(path: PathLike, options: dict[str, Any]) -> tuple[Journal, _Parsed]:
    """Read and parse a manifest; on an object store, its entry objects are merged in too."""
    journal = open_journal(path, options)
    with _collector_paused():
        data, objects = journal.read()
        parsed = _parse(journal.location, data)
        for name, content in objects:
            parsed.entries.extend(_parse_entry_object(name, content))
    journal.repair = parsed.repair
    return journal, parsed


def _parse_entry_object(name: str, data: bytes) -> list[ManifestEntry]:
    try:
        payload = json.loads(data)
        return [ManifestEntry.from_dict(payload)]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ManifestCorruptError(
            f"manifest entry object {name} is not a valid entry ({_reason(exc)}); entry objects "
            f"are written in one put, so it was edited or damaged; {_RESTORE_HINT}",
            name,
        ) from None


@dataclass(frozen=True)
class _Parsed:
    header_fields: dict[str, Any]
    schema_version: int
    entries: list[ManifestEntry]
    repair: TailRepair | None


def _parse(path: PathLike, data: bytes) -> _Parsed:
    lines = data.split(b"\n")
    header_index = next((i for i, line in enumerate(lines) if line.strip()), None)
    if header_index is None:
        raise ManifestCorruptError(
            f"manifest {path} is empty: it has no header line; the sweep that created it "
            "never finished saving it; delete it and start a new sweep",
            path,
        )
    header = _header(path, lines[header_index], header_index + 1)
    schema_version = _schema_version(path, header, header_index + 1)
    header_fields = _header_fields(path, header, header_index + 1)

    entries: list[ManifestEntry] = []
    torn: int | None = None
    start = sum(len(line) + 1 for line in lines[: header_index + 1])
    try:
        # The common case in one C call: every line after the header an entry as this
        # version writes it. Anything else (a torn or hand-edited line, NaN, another
        # kind) fails here and goes through the line loop, which says what is wrong.
        decoded = _decode_entry_lines(data[start:])
    except msgspec.MsgspecError:
        decoded = None
    if decoded is not None and all(line.kind == "entry" for line in decoded):
        entries = [line.to_entry() for line in decoded]
        lines = lines[: header_index + 1]
    # raw_decode on a stripped line is json.loads minus its per-call encoding
    # sniffing and whitespace regexes.
    decode = _DECODER.raw_decode
    from_dict = ManifestEntry.from_dict
    for index in range(header_index + 1, len(lines)):
        line = lines[index]
        try:
            fast = _decode_entry_line(line)
        except msgspec.MsgspecError:
            fast = None
        if fast is not None and fast.kind == "entry":
            entries.append(fast.to_entry())
            continue
        try:
            text = line.decode("utf-8").strip()
            payload, end = decode(text)
            if end != len(text):
                raise ValueError(f"extra data after the JSON object at column {end + 1}")
        except ValueError as exc:
            if not line.strip():
                continue
            if index < len(lines) - 1:
                # A crash cuts the last write short before its newline; a complete line
                # (newline-terminated) that does not parse was written that way.
                where = (
                    "it is a complete line (it ends with a newline)"
                    if not any(rest.strip() for rest in lines[index + 1 :])
                    else "only the last line may be cut short by a crash"
                )
                raise ManifestCorruptError(
                    f"manifest {path}, line {index + 1}: not valid JSON ({_reason(exc)}); "
                    f"{where}, so the file was edited or damaged; {_RESTORE_HINT}",
                    path,
                ) from None
            torn = index
            break
        kind = payload.get("kind") if type(payload) is dict else None
        if kind == "entry":
            try:
                entries.append(from_dict(payload))
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise ManifestCorruptError(
                    f"manifest {path}, line {index + 1}: not a valid entry ({_reason(exc)}); "
                    f"the file was edited or damaged; {_RESTORE_HINT}",
                    path,
                ) from None
        elif kind == "header" or not isinstance(kind, str):
            what = "a second header" if kind == "header" else 'a JSON object without a "kind"'
            raise ManifestCorruptError(
                f"manifest {path}, line {index + 1}: found {what}, expected an entry line; "
                f"the file was edited or damaged; {_RESTORE_HINT}",
                path,
            )
        # Other kinds come from newer writers' additive extensions: skip them.

    keep = len(data) if torn is None else len(data) - len(b"\n".join(lines[torn:]))
    add_newline = keep > 0 and data[keep - 1 : keep] != b"\n"
    repair = TailRepair(len(data), keep, add_newline) if torn is not None or add_newline else None
    return _Parsed(header_fields, schema_version, entries, repair)


def _header(path: PathLike, line: bytes, lineno: int) -> dict[str, Any]:
    try:
        payload = json.loads(line)
    except ValueError:
        payload = None
    if type(payload) is not dict or payload.get("kind") != "header":
        raise ManifestCorruptError(
            f'manifest {path}, line {lineno}: not a manifest header (a JSON object with "kind": '
            '"header"); the file is not a gmat_sweep manifest, or its start was damaged; '
            f"{_RESTORE_HINT}",
            path,
        )
    return payload


def _schema_version(path: PathLike, header: dict[str, Any], lineno: int) -> int:
    version = header.get("schema_version", 1)
    if type(version) is not int or version < 1:
        raise ManifestCorruptError(
            f"manifest {path}, line {lineno}: header schema_version {version!r} is not a "
            f"positive integer; the file was edited or damaged; {_RESTORE_HINT}",
            path,
        )
    if version > MANIFEST_SCHEMA_VERSION:
        writer = header.get("gmat_sweep_version", "a newer version")
        raise ManifestCorruptError(
            f"manifest {path} has schema_version {version}, but this gmat_sweep reads "
            f"schema_version {MANIFEST_SCHEMA_VERSION} or older; it was written by a newer "
            f"gmat_sweep ({writer}); upgrade gmat_sweep to that version or newer "
            "(in a clone: git pull, then pip install -e .)",
            path,
        )
    return version


def _header_fields(path: PathLike, header: Mapping[str, Any], lineno: int) -> dict[str, Any]:
    """The header's values as :class:`Manifest` keyword arguments, type-checked."""
    try:
        fields = {
            "script_sha256": _field(header, "script_sha256", str),
            "gmat_sweep_version": _field(header, "gmat_sweep_version", str),
            "gmat_run_version": _field(header, "gmat_run_version", str),
            "gmat_install_version": _field(header, "gmat_install_version", str),
            "python_version": _field(header, "python_version", str),
            "os_platform": _field(header, "os_platform", str),
            "sweep_seed": _field(header, "sweep_seed", int, nullable=True),
            "parameter_spec": _field(header, "parameter_spec", dict),
            "run_count": _field(header, "run_count", int),
            "backend": _field(header, "backend", str, default="unknown"),
            "script_includes": _field(header, "script_includes", dict, default={}),
            "script_path": _field(header, "script_path", str, default=""),
            "numpy_version": _field(header, "numpy_version", str, default=""),
            "scipy_version": _field(header, "scipy_version", str, default=""),
        }
    except (KeyError, TypeError) as exc:
        raise ManifestCorruptError(
            f"manifest {path}, line {lineno}: the header is not valid ({_reason(exc)}); "
            f"the file was edited or damaged; {_RESTORE_HINT}",
            path,
        ) from None
    if not 0 <= fields["run_count"] <= MAX_RUNS:  # readers build per-run lists from it
        raise ManifestCorruptError(
            f"manifest {path}, line {lineno}: the header's run_count {fields['run_count']} is "
            f"outside 0..{MAX_RUNS}, the most runs a sweep may have; the file was edited or "
            f"damaged; {_RESTORE_HINT}",
            path,
        )
    return fields


def _field(
    header: Mapping[str, Any],
    key: str,
    kind: type,
    *,
    default: Any = _REQUIRED,
    nullable: bool = False,
) -> Any:
    value = header[key] if default is _REQUIRED else header.get(key, default)
    if nullable and value is None:
        return value
    if type(value) is not kind:
        raise TypeError(f"{key} must be a JSON {_JSON_NAMES[kind]}, got {value!r}")
    return value


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many small acyclic objects.

    Parsing creates several objects per line; with the collector running, a
    100k-line manifest triggers repeated full collections that double the load
    time. Nothing built here forms reference cycles.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            # Re-enabled as is, the collector's next young-generation pass would
            # walk every object built here (and two older passes after it): about
            # as long again as the parse. Promote them to the oldest generation
            # unexamined instead (freeze, then unfreeze into that generation).
            gc.freeze()
            gc.unfreeze()
            gc.enable()


def _reason(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"missing key {exc.args[0]!r}"
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at column {exc.colno}"
    return str(exc)


def _encode_line(payload: Mapping[str, Any]) -> bytes:
    return (json.dumps(payload, allow_nan=True, separators=(",", ":")) + "\n").encode("ascii")
