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
import math
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import datetime
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
    as_status,
    convert,
    decode,
    decoder,
    encode,
    is_url,
    plain_overrides,
    to_plain,
)

MANIFEST_SCHEMA_VERSION = 1
"""On-disk manifest schema version this gmat-sweep writes and reads.

:meth:`Manifest.load` accepts any header whose ``schema_version`` is at most
this (a missing one is 1) and rejects anything greater; see
``docs/reference/manifest-schema.md`` for the compatibility policy.
"""

_RESTORE_HINT = "restore it from a backup, or delete the sweep's manifest and start a new sweep"


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
        ``report__<Name>`` / ``ephemeris__<Name>`` / ``contact__<Name>`` /
        ``solver__<Name>`` (a Solver's iteration log) -> Parquet file. Paths
        are stored relative to the sweep root (the manifest's directory),
        e.g. ``Path("run-000003/report__RF.parquet")``; absolute paths and
        fsspec URLs (kept as ``str``) are used as they are. Empty for failed
        and skipped runs.
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
    unwritten:
        Keys, as in ``output_paths``, of the mission's outputs this ok run
        wrote no file for (GMAT creates a report's file only when it writes
        data to it); empty for older manifests.
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
    unwritten: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", as_status(self.status))
        if not math.isfinite(self.duration_s):  # JSON has no NaN or infinity to record
            raise ValueError(
                f"duration_s={self.duration_s!r} is not finite; give the run's wall-clock seconds"
            )

    @classmethod
    def from_outcome(
        cls,
        outcome: RunOutcome,
        *,
        overrides: Mapping[str, Any],
        log_path: PathLike | None = None,
    ) -> Self:
        """The entry of a worker's :class:`~gmat_sweep.spec.RunOutcome`, to append.

        ``overrides`` are the run's (numpy scalars become plain Python
        values), ``log_path`` its GMAT log if one was kept; every other field
        is copied from ``outcome``.
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
            unwritten=outcome.unwritten,
        )


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
    script_inputs:
        :func:`gmat_sweep.script.script_inputs_sha256` of the mission script:
        the SHA-256 of each file it reads (a gravity model, SPICE kernels);
        ``None`` when not recorded (manifests written before this field
        existed), ``{}`` when the script reads no file of its own.
    mission_changed:
        One problem per file of the mission (the script, an included file, an
        input file) found changed when a computation of the sweep ended, as
        :func:`gmat_sweep.plan.mission_changes` words it: runs loaded after
        the edit ran another mission than the hashes above. Empty when none
        changed (and in manifests written before this field existed); a
        resume refuses a sweep with any unless ``allow_script_drift=True``.

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
    script_inputs: dict[str, str] | None = None
    mission_changed: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        # State of this object, not of the record: attributes rather than fields, so
        # dataclasses.fields() and asdict() hold the manifest's fields only.
        self._journal: Journal | None = None  # the file it is bound to
        self._arrivals: _Arrivals | None = None

    @property
    def path(self) -> PathLike | None:
        """The absolute path (or URL) of the file this manifest is bound to, or ``None``.

        Set by :meth:`save` and :meth:`load`; :meth:`append_entry` writes there.
        """
        return None if self._journal is None else self._journal.location

    def save(self, path: PathLike, *, storage_options: Mapping[str, Any] | None = None) -> None:
        """Write header + all current entries as JSON Lines, fsyncing file and parent dir.

        The file is replaced atomically, so a crash leaves either the old file
        or the new one; parent directories are created. Afterwards the
        manifest is bound to ``path`` and :meth:`append_entry` writes there.

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
        lines = [self._header_line(), *map(_entry_line, self.entries)]
        journal = open_journal(path, dict(storage_options or {}))
        if self._journal is not None and self._journal.location == journal.location:
            journal = self._journal  # it knows the entry objects this save folds in
        journal.save(b"".join(lines))
        self._journal = journal

    def append_entry(self, entry: ManifestEntry) -> None:
        """Append one entry to the bound file with fsync, and to the in-memory list.

        Once this returns the entry survives a crash; a torn final line the
        file was loaded with is cut off first. In memory, an earlier entry for
        the same ``run_id`` is replaced and the new one goes to the end of
        :attr:`entries` (last entry wins).

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
        self._journal.append(_entry_line(entry))
        self._remember(entry)

    def rewrite_header(self) -> None:
        """Replace the bound file's header line with the current header fields.

        Every complete entry line (the full attempt history) is kept and a
        torn final line is dropped; the file is replaced atomically, as in
        :meth:`save`. Used when a sweep grows (:meth:`~gmat_sweep.sweep.Sweep.extend`).

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
        self._journal.rewrite_header(self._header_line())

    def compact(self) -> None:
        """Fold an object-store manifest's entry objects back into ``manifest.jsonl``.

        Every attempt is kept, in arrival order; a crash at any point loses
        nothing (see :meth:`gmat_sweep.journal.ObjectJournal.compact`), and a
        reader racing the compaction reads again. Only the driver holding the
        sweep (:func:`gmat_sweep.lock.hold`) may compact. A no-op for local
        files, which are appended to directly.

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
        ignored; any other damage is an error. :attr:`entries` keep the last
        line of each ``run_id``, ordered by where it sits. Unknown keys and
        line kinds are ignored. The returned manifest is bound to ``path``.

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
            entries = parsed.entries
            winners = {entry.run_id: entry for entry in entries}
            if len(winners) < len(entries):  # runs tried again: each goes where its last line is
                winners = {}
                for entry in entries:
                    winners.pop(entry.run_id, None)
                    winners[entry.run_id] = entry
            manifest = convert(parsed.header, cls)
            manifest.entries = list(winners.values())
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

    def _header_line(self) -> bytes:
        """The header line; a NaN or infinity in it raises (msgspec would write ``null``)."""
        header = {name: getattr(self, name) for name in _HEADER_FIELDS}
        to_plain(self.parameter_spec)
        return encode({"kind": "header", **header}) + b"\n"


_HEADER_FIELDS = tuple(item.name for item in fields(Manifest) if item.name != "entries")
"""The header line's fields: every :class:`Manifest` field but the entries."""


def _entry_line(entry: ManifestEntry) -> bytes:
    """An entry's manifest line: ``{"kind":"entry", ...its fields}`` and a newline.

    Raises :class:`~gmat_sweep.errors.SweepConfigError` for an override JSON
    cannot hold (NaN, infinity), which msgspec would silently write as ``null``.
    """
    plain_overrides(entry.overrides)
    return b'{"kind":"entry",' + encode(entry)[1:] + b"\n"


def read_all_entries(
    path: PathLike, *, storage_options: Mapping[str, Any] | None = None
) -> list[ManifestEntry]:
    """Every entry line of a manifest, in file order, including superseded attempts.

    :meth:`Manifest.load` keeps only the last attempt of each run; this is the
    full history (e.g. how often a run was retried), read by the same rules.

    Parameters
    ----------
    path, storage_options:
        As for :meth:`Manifest.load`.

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
    owners = ok_outputs(manifest, root)
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


def ok_outputs(manifest: Manifest, root: PathLike) -> dict[str, int]:
    """Every output file the manifest records for a run whose last entry is ``ok``, and its run.

    Keyed by location under ``root`` (:func:`gmat_sweep.containment.locator`),
    in the manifest's entry order.

    Raises
    ------
    ManifestCorruptError
        A recorded path lies outside the sweep root.
    """
    from gmat_sweep.containment import locator

    locate = locator(root)
    return {
        locate(path, entry.run_id): entry.run_id
        for entry in manifest.entries
        if entry.status is RunStatus.OK
        for path in entry.output_paths.values()
    }


def _read_manifest(path: PathLike, options: dict[str, Any]) -> tuple[Journal, _Parsed]:
    """Read and parse a manifest; on an object store, its entry objects are merged in too."""
    journal = open_journal(path, options)
    with _collector_paused():
        data, objects = journal.read()
        parsed = _parse(journal.location, data)
        for name, content in objects:
            parsed.entries.append(_entry_object(name, content))
    journal.repair = parsed.repair
    return journal, parsed


def _entry_object(name: str, data: bytes) -> ManifestEntry:
    try:
        try:
            return decode(data, ManifestEntry)
        except msgspec.DecodeError:
            return convert(_loads(data), ManifestEntry)
    except (msgspec.MsgspecError, ValueError) as exc:
        raise ManifestCorruptError(
            f"manifest entry object {name} is not a valid entry ({exc}); entry objects are "
            f"written in one put, so it was edited or damaged; {_RESTORE_HINT}",
            name,
        ) from None


@dataclass(frozen=True)
class _Parsed:
    header: dict[str, Any]
    entries: list[ManifestEntry]
    repair: TailRepair | None


class _Kind(msgspec.Struct):
    kind: Any = None


_kinds = msgspec.json.Decoder(_Kind).decode_lines


def _parse(path: PathLike, data: bytes) -> _Parsed:
    begin = len(data) - len(data.lstrip())  # the header is the first line that is not blank
    if begin == len(data):
        raise ManifestCorruptError(
            f"manifest {path} is empty: it has no header line; the sweep that created it "
            "never finished saving it; delete it and start a new sweep",
            path,
        )
    end = data.find(b"\n", begin)
    end = len(data) if end < 0 else end
    header_index = data.count(b"\n", 0, begin)
    header = _header(path, data[begin:end], header_index + 1)
    body = memoryview(data)[end + 1 :]
    try:
        # The common case, in C: every line after the header an entry.
        if all(line.kind == "entry" for line in _kinds(body)):
            entries = decoder(ManifestEntry).decode_lines(body)
            return _Parsed(header, entries, _tail_repair(data, len(data)))
    except (msgspec.MsgspecError, ValueError):
        pass  # the line loop below finds the line and says what is wrong with it

    lines = data.split(b"\n")
    entries = []
    for index in range(header_index + 1, len(lines)):
        line = lines[index]
        if not line.strip():
            continue
        try:
            payload = _loads(line)
        except msgspec.DecodeError as exc:
            if index < len(lines) - 1:
                # A crash cuts the last write short before its newline; a complete line
                # (newline-terminated) that does not parse was written that way.
                where = (
                    "it is a complete line (it ends with a newline)"
                    if not any(rest.strip() for rest in lines[index + 1 :])
                    else "only the last line may be cut short by a crash"
                )
                raise ManifestCorruptError(
                    f"manifest {path}, line {index + 1}: not valid JSON ({exc}); {where}, so "
                    f"the file was edited or damaged; {_RESTORE_HINT}",
                    path,
                ) from None
            torn = len(b"\n".join(lines[index:]))
            return _Parsed(header, entries, _tail_repair(data, len(data) - torn))
        kind = payload.get("kind") if type(payload) is dict else None
        if kind == "entry":
            try:
                entries.append(convert(payload, ManifestEntry))
            except (msgspec.MsgspecError, ValueError) as exc:
                raise ManifestCorruptError(
                    f"manifest {path}, line {index + 1}: not a valid entry ({exc}); "
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
    return _Parsed(header, entries, _tail_repair(data, len(data)))


def _loads(line: bytes) -> Any:
    """One JSON value, NaN and Infinity included: older versions wrote them (``json.dumps``).

    Raises
    ------
    msgspec.DecodeError
        ``line`` is not JSON even with those extensions; msgspec's message says where.
    """
    try:
        return msgspec.json.decode(line)
    except msgspec.DecodeError as error:
        try:
            return json.loads(line)
        except ValueError:
            raise error from None


def _tail_repair(data: bytes, keep: int) -> TailRepair | None:
    """How to mend the end of a manifest whose valid bytes are ``data[:keep]``, if it needs it."""
    add_newline = keep > 0 and data[keep - 1 : keep] != b"\n"
    return TailRepair(len(data), keep, add_newline) if keep < len(data) or add_newline else None


def _header(path: PathLike, line: bytes, lineno: int) -> dict[str, Any]:
    """The header line's fields, checked: a :class:`Manifest` can be built from them."""
    try:
        payload = _loads(line)
    except msgspec.DecodeError:
        payload = None
    if type(payload) is not dict or payload.get("kind") != "header":
        raise ManifestCorruptError(
            f'manifest {path}, line {lineno}: not a manifest header (a JSON object with "kind": '
            '"header"); the file is not a gmat_sweep manifest, or its start was damaged; '
            f"{_RESTORE_HINT}",
            path,
        )
    version = payload.get("schema_version", 1)
    if type(version) is int and version > MANIFEST_SCHEMA_VERSION:
        writer = payload.get("gmat_sweep_version", "a newer version")
        raise ManifestCorruptError(
            f"manifest {path} has schema_version {version}, but this gmat_sweep reads "
            f"schema_version {MANIFEST_SCHEMA_VERSION} or older; it was written by a newer "
            f"gmat_sweep ({writer}); upgrade gmat_sweep to that version or newer "
            "(in a clone: git pull, then pip install -e .)",
            path,
        )
    header = {name: payload[name] for name in _HEADER_FIELDS if name in payload}
    try:
        manifest = convert(header, Manifest)
        if manifest.schema_version < 1:
            raise ValueError(f"schema_version {manifest.schema_version} is not positive")
        if not 0 <= manifest.run_count <= MAX_RUNS:  # readers build per-run lists from it
            raise ValueError(
                f"run_count {manifest.run_count} is outside 0..{MAX_RUNS}, the most runs a "
                "sweep may have"
            )
    except (msgspec.MsgspecError, ValueError) as exc:
        raise ManifestCorruptError(
            f"manifest {path}, line {lineno}: the header is not valid ({exc}); "
            f"the file was edited or damaged; {_RESTORE_HINT}",
            path,
        ) from None
    return header


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many small acyclic objects.

    With the collector running, a 100k-line manifest's parse triggers repeated
    full collections that double the load time.
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
