"""The execution-backend interface every pool implements.

A :class:`Pool` executes per-run graph nodes (:func:`gmat_sweep.graph.run_node`)
somewhere — local threads feeding GMAT host processes, a Dask cluster, loky
workers, Ray — and hands back one :class:`~gmat_sweep.spec.RunOutcome` per
:class:`~gmat_sweep.spec.RunSpec`. Everything else (manifest, progress,
retries, failure capture, timeouts) lives once in :mod:`gmat_sweep.sweep`
and :mod:`gmat_sweep.graph`, so an adapter only maps ``submit`` and
``as_completed`` onto its executor.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from concurrent.futures import as_completed as _as_completed
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Self

from gmat_sweep.errors import BackendError
from gmat_sweep.spec import RunOutcome, RunSpec


class Pool(ABC):
    """Abstract execution backend.

    Subclasses MUST keep :attr:`subprocess_isolated` set to :data:`True`,
    signalling that they implement both the per-worker-reuse and
    per-task-fresh-bootstrap modes correctly. Setting the attribute to
    anything else (``False``, ``None``, a truthy non-``True`` value) raises
    :class:`~gmat_sweep.errors.BackendError` from :meth:`__init_subclass__`,
    so the error fires when the bad backend's module is imported, not at
    sweep time.

    Subclasses accept ``reuse_gmat_context: bool = True`` as a keyword-only
    parameter on ``__init__`` and store it; dispatch reads
    ``self._reuse_gmat_context`` to choose between a persistent GMAT host
    per worker (fast path) and
    :func:`gmat_sweep.backends._subprocess.run_spec_in_subprocess`
    (a fresh interpreter per run).

    A pool is a context manager; leaving the ``with`` block calls
    :meth:`close`, which stops every process the pool started.
    """

    subprocess_isolated: ClassVar[bool] = True
    name: ClassVar[str] = "pool"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        value = cls.__dict__.get("subprocess_isolated", True)
        if value is not True:
            raise BackendError(
                f"{cls.__qualname__}.subprocess_isolated = {value!r}: every Pool must run GMAT "
                "in worker processes and keep subprocess_isolated = True; remove the override"
            )

    def __init__(self, *, reuse_gmat_context: bool = True) -> None:
        self._reuse_gmat_context = reuse_gmat_context

    @property
    def reuse_gmat_context(self) -> bool:
        """Whether workers keep a loaded mission between runs."""
        return self._reuse_gmat_context

    @property
    def workers(self) -> int | None:
        """Number of runs the pool executes at once, when it knows."""
        return None

    @abstractmethod
    def submit(self, spec: RunSpec) -> Future[RunOutcome]:
        """Enqueue ``spec`` and return a future that resolves once it runs."""

    @abstractmethod
    def as_completed(self, futures: Iterable[Future[RunOutcome]]) -> Iterator[RunOutcome]:
        """Drain ``futures``, yielding outcomes in completion order."""

    def check_fields(self, script_path: Path, paths: list[str]) -> list[str]:
        """Load ``script_path`` once in a GMAT process; one message per bad field path.

        Used to validate a sweep before any run is dispatched. The default
        starts a short-lived probe process on this machine; a local pool
        overrides it to use one of its own (then warm) GMAT hosts.
        """
        from gmat_sweep.backends._subprocess import GmatHost

        host = GmatHost()
        try:
            return host.check_fields(script_path, paths)
        finally:
            host.close()

    @abstractmethod
    def close(self) -> None:
        """Release every process and thread the pool started. Idempotent."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def resolve_workers(workers: int) -> int:
    """Turn the ``workers`` argument into a count (``-1`` = every core)."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers == 0 or workers < -1:
        raise BackendError(
            f"workers={workers!r}: use a positive number of worker processes, or -1 for one "
            "per core"
        )
    return (os.cpu_count() or 1) if workers == -1 else workers


def drain(pool: Pool, futures: Iterable[Future[RunOutcome]]) -> Iterator[RunOutcome]:
    """Yield the outcomes of ``futures`` in completion order.

    The shared ``as_completed`` of pools whose executor hands back
    :class:`concurrent.futures.Future` objects. A run's own failure (GMAT
    error, timeout, dead GMAT host) is already a ``failed`` outcome, so an
    exception here means the executor itself failed; it is raised as
    :class:`~gmat_sweep.errors.BackendError` naming ``pool``.
    """
    for future in _as_completed(list(futures)):
        try:
            outcome = future.result()
        except BackendError:
            raise
        except Exception as exc:
            raise BackendError(
                f"{type(pool).__name__} could not execute a GMAT run: {type(exc).__name__}: "
                f"{exc}. GMAT failures are recorded as failed runs, so the executor itself "
                "failed (a worker killed from outside, out of memory, or the pool was closed); "
                "start a new pool and finish the sweep with Sweep.from_manifest(...).resume()"
            ) from exc
        yield outcome
