"""Records that describe work and its results: runs, sweeps and outcomes.

Every record is a frozen dataclass with a lossless JSON round trip
(``to_json()`` / ``from_json()``): paths and fsspec URLs come back as they
went in, datetimes keep their timezone, and numpy scalars in overrides are
written as plain JSON numbers. Nothing here is ever pickled to disk.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path, PurePath
from typing import Any, Self, TypedDict, cast

from gmat_sweep.errors import SweepConfigError

PathLike = str | Path
"""A local path or an fsspec URL such as ``s3://bucket/prefix``."""

LOG_NAME = "gmat.log"
"""File name of the per-run GMAT log kept beside the run's outputs."""


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
    return value if isinstance(value, Path) else Path(str(value).removeprefix("file://"))


def to_plain(value: Any) -> Any:
    """Convert numpy scalars, arrays and paths into plain JSON-ready values."""
    if value is None or type(value) in (bool, int, float, str):
        return value
    for plain in (bool, int, float, str):  # numpy scalars may subclass these
        if isinstance(value, plain):
            return plain(value)
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
    """Return ``overrides`` with every value made JSON-plain (numpy -> Python)."""
    return {str(key): to_plain(value) for key, value in overrides.items()}


def _dumps(payload: Mapping[str, Any]) -> str:
    return json.dumps(payload, allow_nan=True, separators=(",", ":"))


def _loads(text: str) -> dict[str, Any]:
    payload = json.loads(text)
    if not isinstance(payload, dict):
        raise ValueError(f"expected a JSON object, got {type(payload).__name__}")
    return payload


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

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready mapping of this spec."""
        return {
            "script_path": str(self.script_path),
            "overrides": plain_overrides(self.overrides),
            "output_dir": str(self.output_dir),
            "run_id": self.run_id,
            "seed": self.seed,
            "run_options": plain_overrides(self.run_options),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Rebuild a spec from :meth:`to_dict` output."""
        return cls(
            script_path=Path(data["script_path"]),
            overrides=dict(data["overrides"]),
            output_dir=as_location(data["output_dir"]),
            run_id=int(data["run_id"]),
            seed=None if data["seed"] is None else int(data["seed"]),
            run_options=cast(RunOptions, dict(data.get("run_options", {}))),
        )

    def to_json(self) -> str:
        """Serialise to a JSON string."""
        return _dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> Self:
        """Parse a spec written by :meth:`to_json`."""
        return cls.from_dict(_loads(text))


@dataclass(frozen=True, slots=True)
class SweepSpec:
    """A whole sweep's metadata — script, runs, backend, outputs.

    :attr:`Sweep.spec <gmat_sweep.sweep.Sweep.spec>` describes a sweep as
    one: every run it makes, the backend's name and options, its directory,
    manifest and seed, with a lossless JSON round trip (:meth:`to_json`,
    :meth:`from_json`).

    ``runs`` is a materialised :class:`tuple` of :class:`RunSpec` so the spec
    round-trips through JSON cleanly. ``run_id`` ordering is the contract the
    manifest and resume flow depend on: ``runs[i].run_id == i`` for every
    well-formed sweep.

    Examples
    --------
    >>> from gmat_sweep import SweepSpec, sweep
    >>> planned = sweep("mission.script", {"Sat.Cd": [2.0, 2.4]},
    ...                 compute=False)  # doctest: +SKIP
    >>> text = planned.spec.to_json()  # doctest: +SKIP
    >>> SweepSpec.from_json(text) == planned.spec  # doctest: +SKIP
    True
    """

    mission_script_path: Path
    runs: tuple[RunSpec, ...]
    backend: str
    backend_kwargs: dict[str, Any]
    output_dir: PathLike
    manifest_path: PathLike
    sweep_seed: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready mapping of this sweep."""
        return {
            "mission_script_path": str(self.mission_script_path),
            "runs": [run.to_dict() for run in self.runs],
            "backend": self.backend,
            "backend_kwargs": plain_overrides(self.backend_kwargs),
            "output_dir": str(self.output_dir),
            "manifest_path": str(self.manifest_path),
            "sweep_seed": self.sweep_seed,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Rebuild a sweep spec from :meth:`to_dict` output."""
        return cls(
            mission_script_path=Path(data["mission_script_path"]),
            runs=tuple(RunSpec.from_dict(run) for run in data["runs"]),
            backend=str(data["backend"]),
            backend_kwargs=dict(data["backend_kwargs"]),
            output_dir=as_location(data["output_dir"]),
            manifest_path=as_location(data["manifest_path"]),
            sweep_seed=None if data["sweep_seed"] is None else int(data["sweep_seed"]),
        )

    def to_json(self) -> str:
        """Serialise to a JSON string."""
        return _dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> Self:
        """Parse a sweep spec written by :meth:`to_json`."""
        return cls.from_dict(_loads(text))


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """The result of one run after the worker returns.

    ``output_paths`` maps a worker-chosen key (``report__<name>``,
    ``ephemeris__<name>``, ``contact__<name>``) to the Parquet artefact
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

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready mapping of this outcome."""
        return {
            "run_id": self.run_id,
            "status": self.status.value,
            "output_paths": {k: str(v) for k, v in self.output_paths.items()},
            "duration_s": self.duration_s,
            "stderr": self.stderr,
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat(),
            "failure": None if self.failure is None else self.failure.value,
            "previous": [attempt.to_dict() for attempt in self.previous],
            "script_sha256": self.script_sha256,
            "metrics_path": None if self.metrics_path is None else str(self.metrics_path),
            "metrics_error": self.metrics_error,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Rebuild an outcome from :meth:`to_dict` output."""
        return cls(
            run_id=int(data["run_id"]),
            status=RunStatus(data["status"]),
            output_paths={k: as_location(v) for k, v in data["output_paths"].items()},
            duration_s=float(data["duration_s"]),
            stderr=data["stderr"],
            started_at=datetime.fromisoformat(data["started_at"]),
            ended_at=datetime.fromisoformat(data["ended_at"]),
            failure=None if data.get("failure") is None else FailureKind(data["failure"]),
            previous=tuple(cls.from_dict(attempt) for attempt in data.get("previous", ())),
            script_sha256=data.get("script_sha256"),
            metrics_path=None
            if data.get("metrics_path") is None
            else as_location(data["metrics_path"]),
            metrics_error=data.get("metrics_error"),
        )

    def to_json(self) -> str:
        """Serialise to a JSON string."""
        return _dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> Self:
        """Parse an outcome written by :meth:`to_json`."""
        return cls.from_dict(_loads(text))


def _duration(started_at: datetime, ended_at: datetime) -> float:
    seconds = (ended_at - started_at).total_seconds()
    return seconds if math.isfinite(seconds) and seconds > 0 else 0.0
