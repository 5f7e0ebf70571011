"""The execution-backend interface every pool implements.

A :class:`Pool` is a **scheduler adapter**: it runs a sweep's Dask graph
(:mod:`gmat_sweep.graph`) on its executor — local threads that borrow GMAT
host processes, a Dask cluster, loky workers, Ray — and lets the sweep's
manifest writer record every run as it finishes. Everything else (manifest,
progress, retries, failure capture, timeouts) lives once in
:mod:`gmat_sweep.graph`, :mod:`gmat_sweep.sweep` and the host code, so an
adapter only maps the graph onto its executor.

A third-party pool need only implement the abstract :meth:`Pool.submit`
and :meth:`Pool.as_completed`: the generic :meth:`Pool.get` then runs sweeps
through them. :mod:`gmat_sweep.testing` holds the conformance suite every
pool must pass.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import as_completed as _as_completed
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Self

from gmat_sweep import graph
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
    ``self._reuse_gmat_context`` to choose between persistent GMAT hosts
    that keep the mission loaded (fast path) and
    :func:`gmat_sweep.backends._subprocess.run_spec_in_subprocess`
    (a fresh interpreter per run).

    A pool is a context manager; leaving the ``with`` block calls
    :meth:`close`, which stops every process the pool started.

    As a Dask scheduler, a pool offers :meth:`get` (``get(dsk, keys)``, the
    signature of every Dask scheduler); the built-in pools override it to run
    the graph on their executor, and the default runs the sweeps in it
    through :meth:`submit` and :meth:`as_completed`.
    """

    subprocess_isolated: ClassVar[bool] = True
    name: ClassVar[str] = "pool"
    _reuse_gmat_context: bool = True
    """The default for a user's pool whose ``__init__`` does not call ``Pool.__init__``."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        value = cls.__dict__.get("subprocess_isolated", True)
        if value is not True:
            raise BackendError(
                f"{cls.__qualname__}.subprocess_isolated = {value!r}: every Pool must run GMAT "
                "in worker processes and keep subprocess_isolated = True; remove the override"
            )

    def __init__(self, *, reuse_gmat_context: bool = True) -> None:
        self._reuse_gmat_context = check_reuse(reuse_gmat_context)

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

    def close(self) -> None:  # noqa: B027 (concrete on purpose: a pool may own nothing)
        """Release every process and thread the pool started. Idempotent.

        The default does nothing: a pool that starts processes overrides it.
        """

    def group_for(self, runs: int) -> int:
        """Runs per task for a sweep of ``runs`` runs on this pool (1: a task per run)."""
        return 1

    def get(self, dsk: Mapping[Hashable, Any], keys: Any, **kwargs: Any) -> Any:
        """Run the sweeps whose run keys are ``keys``, recording each run as it finishes.

        The generic adapter: each run is sent with :meth:`submit` and
        collected with :meth:`as_completed`; a run that failed transiently
        (timeout, dead worker) is sent again up to the sweep's ``retries``.

        Raises
        ------
        BackendError
            ``keys`` are not all run keys of sweeps (this adapter runs sweeps
            only; compose other work with the default backend or ``DaskPool``).
        """
        pairs = graph.run_keys_only(dsk, keys)
        if pairs is None:
            raise BackendError(
                f"{type(self).__name__} runs sweep graphs only, and this computation holds "
                "other tasks; compute the sweep on its own first, or use the default backend "
                "or DaskPool to run it inside a larger Dask graph"
            )

        def run_round(groups: list[graph.Group]) -> Iterator[tuple[int, list[RunOutcome] | str]]:
            # One sweep at a time (an outcome names its run_id, unique within a sweep);
            # this pool's groups hold one run each (group_for is 1).
            for sweep_graph in {id(g): g for g, _, _ in groups}.values():
                position = {specs[0].run_id: i for i, (g, _, specs) in enumerate(groups)
                            if g is sweep_graph}  # fmt: skip
                futures = [self.submit(groups[i][2][0]) for i in position.values()]
                for outcome in self.as_completed(futures):
                    yield position[outcome.run_id], [outcome]

        results = graph.drive(pairs, run_round, retry_outcomes=True, postprocess_here=True)
        return graph.pack(keys, results)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def check_reuse(reuse_gmat_context: object) -> bool:
    """``reuse_gmat_context`` if it is a bool; a :class:`BackendError` otherwise.

    Called before a pool starts anything (a cluster, a client), so a bad
    value leaves nothing behind.
    """
    if not isinstance(reuse_gmat_context, bool):  # "no" would be truthy: reuse
        raise BackendError(
            f"reuse_gmat_context={reuse_gmat_context!r}: use True (workers keep the mission "
            "loaded between runs) or False (a fresh interpreter per run)"
        )
    return reuse_gmat_context


def resolve_workers(workers: int) -> int:
    """Turn the ``workers`` argument into a count (``-1`` = every core)."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers == 0 or workers < -1:
        raise BackendError(
            f"workers={workers!r}: use a positive number of worker processes, or -1 for one "
            "per core"
        )
    return (os.cpu_count() or 1) if workers == -1 else workers


def check_positive(argument: str, value: object, alternative: str) -> None:
    """Refuse a worker or CPU count a backend would accept and then never run anything on.

    ``DaskPool(n_workers=-1)`` starts a cluster with no workers and
    ``RayPool(num_cpus=0)`` a runtime with no CPU for a run: a sweep on either
    would wait for good.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BackendError(f"{argument}={value!r}: use a positive whole number, {alternative}")


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


def drain(
    pool: Pool,
    futures: Iterable[Future[RunOutcome]],
    completed: Callable[[list[Any]], Iterable[Any]] = _as_completed,
) -> Iterator[RunOutcome]:
    """Yield the outcomes of ``futures`` in completion order.

    The shared ``as_completed`` of the built-in pools; ``completed`` is the
    executor's own ``as_completed`` (default: :mod:`concurrent.futures`'). A run's own failure (GMAT
    error, timeout, dead GMAT host) is already a ``failed`` outcome, so an
    exception here means the executor itself failed; it is raised as
    :class:`~gmat_sweep.errors.BackendError` naming ``pool``.
    """
    for future in completed(list(futures)):
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
