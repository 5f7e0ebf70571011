"""Records that describe work and its results: runs, sweeps and outcomes.

Every record is a frozen dataclass (the API reference's type). One codec,
msgspec's, turns any of them into JSON and back (:func:`encode`,
:func:`decode`): paths and fsspec URLs come back as they went in, datetimes
keep their timezone, numpy scalars in overrides are written as plain JSON
numbers, and a value of the wrong type is refused with where it sits.
Nothing here is ever pickled to disk.
"""

from __future__ import annotations

import abc
import math
import numbers
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any, Self, TypedDict, TypeGuard

import msgspec

from gmat_sweep.errors import SweepConfigError

if TYPE_CHECKING:
    PathLike = str | Path
else:

    class PathLike(abc.ABC):  # noqa: B024 - a marker: str and paths are registered below
        """A local path or an fsspec URL such as ``s3://bucket/prefix`` (``str | Path``).

        For type checkers this is ``str | Path``. At run time it is an abstract
        class that ``str`` and every path are registered with, so the codec
        (:func:`decode`) knows a record's field holds a location and reads it
        with :func:`as_location`; msgspec cannot decode a ``str | Path`` union
        itself.
        """

    PathLike.register(str)
    PathLike.register(PurePath)


LOG_NAME = "gmat.log"
"""File name of the per-run GMAT log kept beside the run's outputs."""

CONVERGED = "converged"
"""Column of a ``solver__<name>`` output: did that solver reach its goals in this run."""


class RunStatus(StrEnum):
    """Terminal state of one run.

    ``SKIPPED`` is reserved: readers accept it, this version never writes it.
    """

    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"


class FailureKind(StrEnum):
    """Why a run failed, which decides whether running it again can help.

    ``ERROR`` is the mission's own failure (a load, override or run error):
    GMAT is deterministic, so it fails again. ``TIMEOUT`` (the run was stopped
    after ``timeout_s``) and ``WORKER_DIED`` (its process or executor worker
    was lost) are transient and are retried up to the sweep's ``retries``.
    """

    ERROR = "error"
    TIMEOUT = "timeout"
    WORKER_DIED = "worker_died"

    @property
    def transient(self) -> bool:
        """Whether running the same run again may succeed."""
        return self is not FailureKind.ERROR


def as_status(value: RunStatus | str) -> RunStatus:
    """Return ``value`` as a :class:`RunStatus`; plain strings such as ``"ok"`` are accepted.

    Raises
    ------
    ValueError
        ``value`` names no status; the message lists the allowed ones.
    """
    if type(value) is RunStatus:
        return value
    try:
        return RunStatus(value)
    except ValueError:
        allowed = ", ".join(repr(status.value) for status in RunStatus)
        raise ValueError(f"status={value!r} is not a run status; use one of {allowed}") from None


def is_url(location: PathLike) -> bool:
    """Return True when ``location`` is an fsspec URL rather than a local path."""
    return isinstance(location, str) and "://" in location and not location.startswith("file://")


def as_location(value: PathLike) -> PathLike:
    """The one reading of a location given by a user or stored in a record.

    An fsspec URL stays the ``str`` it is; anything else — a path, or a
    ``file://`` URL — becomes a :class:`~pathlib.Path`.
    """
    return value if is_url(value) else local_path(value)


def local_path(value: PathLike) -> Path:
    """A location already known to be local (a path or a ``file://`` URL) as a :class:`Path`."""
    if isinstance(value, Path):
        return value
    if not isinstance(value, str | os.PathLike):  # str() would read None as a path 'None'
        raise SweepConfigError(
            f"location {value!r} of type {type(value).__name__} is not a path or URL; pass a "
            "str, a pathlib.Path or an fsspec URL such as 's3://bucket/prefix'"
        )
    return Path(os.fspath(value).removeprefix("file://"))


def is_whole(value: object) -> TypeGuard[int]:
    """An integer, numpy's included (``np.int64`` from an array), but not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value: object) -> TypeGuard[float]:
    """A real number, numpy's included (``np.float32``), but not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def to_plain(value: Any) -> Any:
    """Convert numpy scalars, arrays and paths into plain JSON-ready values.

    Raises
    ------
    SweepConfigError
        ``value`` is, or holds, a NaN or an infinity (JSON has neither, and no
        GMAT field takes one), or something that is not a number, string,
        bool, path or list of those.
    """
    if value is None or type(value) in (bool, int, str):
        return value
    for plain in (bool, int, float, str):  # numpy scalars may subclass these
        if isinstance(value, plain):
            value = plain(value)
            if plain is float and not math.isfinite(value):
                raise SweepConfigError(
                    f"value {value!r} cannot be recorded: it is not finite; sweep values must "
                    "be finite numbers (no GMAT field takes NaN or infinity), so remove it"
                )
            return value
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", 0) == 0:
        return to_plain(item())
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return to_plain(tolist())
    raise SweepConfigError(
        f"value {value!r} of type {type(value).__name__} cannot be recorded as JSON; "
        "use a number, string, bool, or a list of those"
    )


def plain_overrides(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``overrides`` with every value made JSON-plain (numpy -> Python).

    Raises
    ------
    SweepConfigError
        As :func:`to_plain`, with the field path the value was given for.
    """
    plain = {}
    for key, value in overrides.items():
        try:
            plain[str(key)] = to_plain(value)
        except SweepConfigError as exc:
            raise SweepConfigError(f"{key!r}: {exc}") from None
    return plain


def _encode_hook(value: Any) -> Any:
    """How the codec writes what JSON has no type for: paths as POSIX strings, numpy as plain."""
    return value.as_posix() if isinstance(value, PurePath) else to_plain(value)


def _decode_hook(kind: type, value: Any) -> Any:
    """How the codec reads a location field: :func:`as_location` (a URL stays a ``str``)."""
    if type(value) is not str:
        raise TypeError(f"expected a path or URL string, got {value!r}")
    if "://" in value and kind is not Path:  # a 1M-run manifest holds 2M paths: keep this short
        return as_location(value)
    return _PATH_CLASS(value)


_PATH_CLASS = type(Path())
"""The concrete class ``Path()`` builds here (``PosixPath``): building it directly skips a step."""


_ENCODER = msgspec.json.Encoder(enc_hook=_encode_hook)


def encode(record: Any) -> bytes:
    """One record (or a mapping or list of them) as compact JSON bytes.

    JSON has no NaN or infinity: msgspec writes them as ``null``. Sweep values
    never hold one (:func:`plain_overrides` refuses them when a sweep is
    planned and when a run is recorded).

    Raises
    ------
    SweepConfigError
        A value cannot be written as JSON (see :func:`to_plain`).
    """
    return _ENCODER.encode(record)


_DECODERS: dict[type, msgspec.json.Decoder[Any]] = {}


def decoder[Record](kind: type[Record]) -> msgspec.json.Decoder[Record]:
    """The JSON decoder of one record type (built once; ``decode_lines`` reads JSON Lines)."""
    found = _DECODERS.get(kind)
    if found is None:
        found = _DECODERS[kind] = msgspec.json.Decoder(kind, dec_hook=_decode_hook)
    return found


def decode[Record](data: bytes | str, kind: type[Record]) -> Record:
    """Read one record of type ``kind`` from the JSON that :func:`encode` wrote.

    Raises
    ------
    msgspec.DecodeError
        ``data`` is not JSON, or a field is missing or has the wrong type; the
        message says which, and where (e.g. ``at `$.run_id```).
    """
    return decoder(kind).decode(data)


def to_builtins(record: Any) -> Any:
    """A record as the plain dicts, lists, strings and numbers :func:`encode` would write."""
    return msgspec.to_builtins(record, enc_hook=_encode_hook)


def convert[Record](payload: Any, kind: type[Record]) -> Record:
    """A record of type ``kind`` from already-parsed JSON values, checked as :func:`decode` does."""
    return msgspec.convert(payload, kind, dec_hook=_decode_hook)


class RunOptions(TypedDict, total=False):
    """How one run executes: :attr:`RunSpec.run_options` (a plain ``dict`` at run time).

    Attributes
    ----------
    timeout_s:
        Seconds the run may take before it is stopped and recorded as a
        ``timeout`` failure (``run_options={"timeout_s": ...}`` of the entry
        points); absent for no limit.
    storage_options:
        fsspec options for writing the run's outputs to a URL. The sweep fills
        this in from its own ``storage_options``; it is never recorded in the
        manifest.
    """

    timeout_s: float
    storage_options: dict[str, Any]


@dataclass(frozen=True, slots=True)
class RunSpec:
    """A single run's worth of work — script + overrides + run_id + seed.

    A worker reconstructs the full run from this record alone: instantiate
    :class:`gmat_run.Mission` from ``script_path``, apply ``overrides`` via
    the dotted-path setter, run with ``run_options``, write outputs under
    ``output_dir``.

    Parameters
    ----------
    script_path:
        The GMAT ``.script`` to load.
    overrides:
        Dotted-path field values applied before the run, e.g.
        ``{"Sat.SMA": 7000.0}``.
    output_dir:
        Directory (local path or fsspec URL) the run's Parquet files and GMAT
        log are written under.
    run_id:
        Position of the run in its sweep, from 0.
    seed:
        The per-run seed for stochastic sweeps; ``None`` for grids.
    run_options:
        Per-run execution options (:class:`RunOptions`), e.g. ``{"timeout_s": 60}``.
    """

    script_path: Path
    overrides: dict[str, Any]
    output_dir: PathLike
    run_id: int
    seed: int | None
    run_options: RunOptions = field(default_factory=lambda: RunOptions())


@dataclass(frozen=True, slots=True)
class SweepSpec:
    """A whole sweep's metadata — script, runs, backend, outputs.

    :attr:`Sweep.spec <gmat_sweep.sweep.Sweep.spec>` describes a sweep as
    one: every run it makes, the backend's name and options, its directory,
    manifest and seed, with a lossless JSON round trip (:func:`encode`, :func:`decode`).

    ``runs`` is a materialised :class:`tuple` of :class:`RunSpec` so the spec
    round-trips through JSON cleanly. ``run_id`` ordering is the contract the
    manifest and resume flow depend on: ``runs[i].run_id == i`` for every
    well-formed sweep.

    Examples
    --------
    >>> from gmat_sweep import SweepSpec, sweep
    >>> planned = sweep("mission.script", {"Sat.Cd": [2.0, 2.4]},
    ...                 compute=False)  # doctest: +SKIP
    >>> from gmat_sweep.spec import decode, encode
    >>> text = encode(planned.spec)  # doctest: +SKIP
    >>> decode(text, SweepSpec) == planned.spec  # doctest: +SKIP
    True
    """

    mission_script_path: Path
    runs: tuple[RunSpec, ...]
    backend: str
    backend_kwargs: dict[str, Any]
    output_dir: PathLike
    manifest_path: PathLike
    sweep_seed: int | None = None


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """The result of one run after the worker returns.

    ``output_paths`` maps a worker-chosen key (``report__<name>``,
    ``ephemeris__<name>``, ``contact__<name>``, ``solver__<name>``) to the Parquet artefact
    written under :attr:`RunSpec.output_dir`. Empty for failed and skipped
    runs. ``stderr`` is ``None`` for successful runs and the captured worker
    stderr / traceback for failed runs. ``duration_s`` is computed by the
    :meth:`ok` / :meth:`failed` helpers from the bookend timestamps so the
    three values cannot disagree. ``failure`` says why a failed run failed
    (:class:`FailureKind`); ``previous`` holds the earlier attempts of this
    run that failed transiently and were retried, oldest first (each is
    recorded in the manifest before this one). ``script_sha256`` is the
    SHA-256 of the script text the run loaded (its load-time overrides
    rendered in), or ``None`` when the run did not get as far as loading it.
    ``metrics_path`` / ``metrics_error`` are the run's per-run metrics file
    or the traceback of the ``postprocess`` function that raised on it.
    ``unwritten`` names, keyed as ``output_paths`` is, the outputs of the
    mission this ok run wrote no file for (a ``ReportFile`` toggled off, or
    written only by a ``Report`` command in a branch the run did not take).
    """

    run_id: int
    status: RunStatus
    output_paths: dict[str, PathLike]
    duration_s: float
    stderr: str | None
    started_at: datetime
    ended_at: datetime
    failure: FailureKind | None = None
    previous: tuple[RunOutcome, ...] = ()
    script_sha256: str | None = None
    metrics_path: PathLike | None = None
    metrics_error: str | None = None
    unwritten: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", as_status(self.status))

    @classmethod
    def ok(
        cls,
        run_id: int,
        output_paths: Mapping[str, PathLike],
        started_at: datetime,
        ended_at: datetime,
        script_sha256: str | None = None,
        unwritten: tuple[str, ...] = (),
    ) -> Self:
        """Build a successful outcome; ``duration_s`` comes from the timestamps."""
        return cls(
            run_id=run_id,
            status=RunStatus.OK,
            output_paths=dict(output_paths),
            duration_s=_duration(started_at, ended_at),
            stderr=None,
            started_at=started_at,
            ended_at=ended_at,
            script_sha256=script_sha256,
            unwritten=unwritten,
        )

    @classmethod
    def failed(
        cls,
        run_id: int,
        stderr: str,
        started_at: datetime,
        ended_at: datetime,
        failure: FailureKind = FailureKind.ERROR,
        script_sha256: str | None = None,
    ) -> Self:
        """Build a failed outcome carrying the captured error text and why it failed."""
        return cls(
            run_id=run_id,
            status=RunStatus.FAILED,
            output_paths={},
            duration_s=_duration(started_at, ended_at),
            stderr=stderr,
            started_at=started_at,
            ended_at=ended_at,
            failure=failure,
            script_sha256=script_sha256,
        )


def _duration(started_at: datetime, ended_at: datetime) -> float:
    seconds = (ended_at - started_at).total_seconds()
    return seconds if math.isfinite(seconds) and seconds > 0 else 0.0
