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

import math
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import as_completed as _as_completed
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Self

from gmat_sweep.backends._subprocess import FAILURE_WORKER_DIED
from gmat_sweep.errors import BackendError
from gmat_sweep.spec import RunOutcome, RunSpec

MAX_GROUP = 10
"""Most runs a pool that groups (Dask, Ray) puts into one task."""

_TASKS_PER_WORKER = 4


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

    def check_fields(self, script_path: Path, values: Mapping[str, Sequence[Any]]) -> list[str]:
        """Load ``script_path`` once in a GMAT process; one message per refused override.

        ``values`` maps each field path to the values the sweep gives it;
        see :func:`gmat_sweep.worker.check_fields` for what is refused.
        Used to validate a sweep before any run is dispatched. The default
        starts a short-lived probe process on this machine; a local pool
        overrides it to use one of its own (then warm) GMAT hosts.
        """
        from gmat_sweep.backends._subprocess import GmatHost

        host = GmatHost()
        try:
            return host.check_fields(script_path, values)
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


def field_problems(pool: Pool, task: Any) -> list[str]:
    """Wait for a :func:`~gmat_sweep.graph.check_node` task sent to ``pool``'s workers.

    ``task`` is the executor's future (``concurrent.futures``, Dask or Ray
    style: anything with ``result()``). Pools that check on one of their own
    workers warm that worker's GMAT host for the runs and prove, before any
    run is dispatched, that the workers can read the script and start GMAT.
    """
    try:
        problems: list[str] = task.result()
    except BackendError:
        raise
    except Exception as exc:
        raise BackendError(
            f"could not check the mission on a {type(pool).__name__} worker: "
            f"{type(exc).__name__}: {exc}; make sure the workers can read the script "
            "and import gmat_sweep"
        ) from exc
    return problems


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


class RunGroups:
    """Runs buffered by a pool and sent to its executor in groups, one task per group.

    For executors whose per-task cost is comparable to a fast GMAT run (Dask,
    Ray): :meth:`add` hands out one future per run at once; :meth:`flush`
    sends the buffered runs as tasks of :func:`group_size` consecutive runs;
    :meth:`settle` resolves a finished task's per-run futures. Every run
    still gets its own outcome and manifest line.
    """

    def __init__(self) -> None:
        self._buffer: list[tuple[Future[RunOutcome], RunSpec]] = []
        self._sent: dict[Hashable, list[tuple[Future[RunOutcome], RunSpec]]] = {}

    def add(self, spec: RunSpec) -> Future[RunOutcome]:
        """Buffer ``spec``; its future resolves once its group's task has finished."""
        future: Future[RunOutcome] = Future()
        self._buffer.append((future, spec))
        return future

    def flush(self, workers: int, send: Callable[[list[RunSpec]], Hashable]) -> None:
        """Send every buffered run: ``send(specs)`` starts one task and returns its handle."""
        if not self._buffer:
            return
        size = group_size(len(self._buffer), workers)
        buffer, self._buffer = self._buffer, []
        for start in range(0, len(buffer), size):
            chunk = buffer[start : start + size]
            self._sent[send([spec for _, spec in chunk])] = chunk

    def tasks_for(self, wanted: set[Future[RunOutcome]]) -> list[Any]:
        """Handles of the sent tasks that carry any of the ``wanted`` futures."""
        return [task for task, group in self._sent.items() if any(f in wanted for f, _ in group)]

    def specs(self, task: Hashable) -> list[RunSpec]:
        """The runs ``task`` carries."""
        return [spec for _, spec in self._sent[task]]

    def settle(self, task: Hashable, outcomes: list[RunOutcome]) -> list[Future[RunOutcome]]:
        """Resolve the futures of ``task``'s runs with ``outcomes``; return those futures."""
        group = self._sent.pop(task)
        for (future, _), outcome in zip(group, outcomes, strict=True):
            future.set_result(outcome)
        return [future for future, _ in group]

    def drop(self) -> list[Any]:
        """Forget every run, buffered or sent; return the sent tasks' handles to cancel."""
        tasks = list(self._sent)
        self._buffer.clear()
        self._sent.clear()
        return tasks


def group_size(queued: int, workers: int) -> int:
    """Runs per task: large enough to amortise per-task cost, small enough to balance."""
    return max(1, min(MAX_GROUP, math.ceil(queued / (workers * _TASKS_PER_WORKER))))


def lost(spec: RunSpec, detail: str) -> RunOutcome:
    """A failed outcome for a run whose executor worker died; :class:`Sweep` may retry it."""
    now = datetime.now(UTC)
    return RunOutcome.failed(spec.run_id, f"{FAILURE_WORKER_DIED} ({detail})", now, now)
