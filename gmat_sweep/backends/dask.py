"""Dask backend: runs as tasks on a ``distributed`` cluster.

Mapping onto Dask: each task executes :func:`gmat_sweep.graph.run_nodes` on a
group of consecutive runs, inside the worker thread's persistent GMAT host
process. Dask's per-task cost (several ms of scheduler CPU) is comparable to
a fast GMAT run, so when many runs are queued they are grouped
(:class:`~gmat_sweep.backends.base.RunGroups`) — up to
:data:`~gmat_sweep.backends.base.MAX_GROUP` runs per task, and never fewer
than four tasks per worker so late-joining workers still get work. Every run
still gets its own future, outcome and manifest line. A task whose worker is
lost is retried by Dask on another worker
(``distributed.scheduler.allowed-failures``); runs that finished inside it
are simply written again, bit for bit.

``DaskPool()`` with no client starts and owns a :class:`distributed.LocalCluster`
of worker processes (one thread each); ``DaskPool(client=...)`` uses any
existing cluster — dask-jobqueue, a remote scheduler, a ``LocalCluster`` — and
never closes it. :func:`gmat_sweep.backends.jobqueue.jobqueue_pool` builds a
batch-system cluster and hands it to a pool that owns and closes it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from gmat_sweep.backends.base import Pool, RunGroups, field_problems, lost
from gmat_sweep.errors import BackendError
from gmat_sweep.graph import check_node, run_nodes
from gmat_sweep.spec import RunOutcome, RunSpec


class DaskPool(Pool):
    """Distributed pool backed by :mod:`dask.distributed`.

    Parameters
    ----------
    client:
        An existing :class:`distributed.Client` to dispatch through. When
        supplied, the pool does not create or own a cluster, and
        :meth:`close` does not shut the client down.
    n_workers:
        Number of workers in the auto-spawned :class:`distributed.LocalCluster`.
        Ignored when ``client`` is supplied. ``None`` (default) uses
        :func:`os.cpu_count`.
    threads_per_worker:
        Threads per worker for the auto-spawned cluster. Ignored when
        ``client`` is supplied. Defaults to 1 so each worker runs one mission
        at a time.
    reuse_gmat_context:
        ``True`` (default) lets each worker thread reuse one GMAT host process
        (and its loaded mission) across tasks. ``False`` runs each task in a
        fresh interpreter that bootstraps GMAT from scratch — slower, but
        supports sweeps that mix scripts.
    """

    name = "dask"

    def __init__(
        self,
        *,
        client: Any | None = None,
        n_workers: int | None = None,
        threads_per_worker: int = 1,
        reuse_gmat_context: bool = True,
    ) -> None:
        super().__init__(reuse_gmat_context=reuse_gmat_context)
        try:
            import distributed
        except ImportError as exc:  # pragma: no cover - a hard dependency
            raise BackendError(
                "DaskPool needs dask.distributed: pip install 'dask[distributed]'"
            ) from exc
        self._owned: Any | None = None
        self._owns_client = client is None
        self._planned_threads = 0
        if client is None:
            workers = n_workers or os.cpu_count() or 1
            try:
                self._owned = distributed.LocalCluster(  # type: ignore[no-untyped-call]
                    n_workers=workers,
                    threads_per_worker=threads_per_worker,
                    processes=True,
                    dashboard_address=":0",
                )
            except Exception as exc:
                raise BackendError(
                    f"could not start a Dask LocalCluster with {workers} workers: {exc}. "
                    "From a script, put the sweep under `if __name__ == '__main__':` (Dask "
                    "spawns workers that re-import it), or use the default backend."
                ) from exc
            client = distributed.Client(self._owned)  # type: ignore[no-untyped-call]
        self._client = client
        self._groups = RunGroups()

    @classmethod
    def _owning(
        cls, cluster: Any, *, planned_threads: int = 0, reuse_gmat_context: bool = True
    ) -> DaskPool:
        """A pool over ``cluster`` that closes its client and ``cluster`` in :meth:`close`.

        ``planned_threads`` is the size the cluster is being scaled to; runs
        are grouped for that size, so workers that join after the sweep was
        submitted still find tasks to take.
        """
        import distributed

        try:
            client = distributed.Client(cluster)  # type: ignore[no-untyped-call]
        except Exception:
            cluster.close()
            raise
        pool = cls(client=client, reuse_gmat_context=reuse_gmat_context)
        pool._owned = cluster
        pool._owns_client = True
        pool._planned_threads = planned_threads
        return pool

    @classmethod
    def _connect(cls, address: str, *, reuse_gmat_context: bool = True) -> DaskPool:
        """A pool over the scheduler at ``address``; closes its client, not the cluster."""
        import distributed

        try:
            client = distributed.Client(address, timeout="30s")  # type: ignore[no-untyped-call]
        except Exception as exc:
            raise BackendError(
                f"cannot reach the Dask scheduler at {address!r}: {type(exc).__name__}: {exc}. "
                "Check the address (e.g. tcp://host:8786) and that the scheduler is running."
            ) from exc
        pool = cls(client=client, reuse_gmat_context=reuse_gmat_context)
        pool._owns_client = True
        return pool

    @property
    def client(self) -> Any:
        """The :class:`distributed.Client` runs are dispatched through."""
        return self._client

    @property
    def workers(self) -> int:
        """Threads across the cluster's current workers, or its planned size when larger."""
        info = self._client.scheduler_info(n_workers=-1)["workers"]
        current = sum(int(w.get("nthreads", 1)) for w in info.values())
        return max(1, current, self._planned_threads)

    def check_fields(self, script_path: Path, values: Mapping[str, Sequence[Any]]) -> list[str]:
        """Check field paths on a cluster worker: its GMAT host then starts warm.

        This also proves the workers can read the script and start the engine
        before any run is submitted.
        """
        return field_problems(
            self, self._client.submit(check_node, script_path, values, pure=False)
        )

    def submit(self, spec: RunSpec) -> Future[RunOutcome]:
        """Queue ``spec``; it is sent to the cluster (grouped) when outcomes are drained."""
        return self._groups.add(spec)

    def as_completed(self, futures: Iterable[Future[RunOutcome]]) -> Iterator[RunOutcome]:
        """Send queued runs to the cluster and yield outcomes as their tasks finish."""
        from distributed import as_completed
        from distributed.scheduler import KilledWorker

        wanted = set(futures)
        self._groups.flush(self.workers, self._send)
        for task in as_completed(self._groups.tasks_for(wanted)):  # type: ignore[no-untyped-call]
            try:
                outcomes: list[RunOutcome] = task.result()
            except BackendError:
                raise
            except KilledWorker as exc:
                # Dask retried the task on other workers and every one died: the runs
                # are recorded as failed (Sweep may retry them), the sweep goes on.
                detail = (
                    f"every Dask worker that ran it was lost: {exc}; see the worker logs for "
                    "out-of-memory kills or job wall-time limits"
                )
                outcomes = [lost(spec, detail) for spec in self._groups.specs(task)]
            except Exception as exc:
                raise BackendError(
                    f"a Dask task running {len(self._groups.specs(task))} GMAT runs failed "
                    f"outside GMAT: {type(exc).__name__}: {exc}"
                ) from exc
            for future in self._groups.settle(task, outcomes):
                if future in wanted:
                    yield future.result()

    def _send(self, specs: list[RunSpec]) -> Any:
        return self._client.submit(
            run_nodes,
            specs,
            self._reuse_gmat_context,
            pure=False,
            key=f"gmat-runs-{specs[0].run_id}-{specs[-1].run_id}-{id(specs):x}",
        )

    def close(self) -> None:
        """Cancel outstanding tasks; shut down the cluster if this pool owns it."""
        for task in self._groups.drop():
            task.cancel()
        cluster, self._owned = self._owned, None
        owns_client, self._owns_client = self._owns_client, False
        try:
            if owns_client:
                self._client.close()
        finally:  # a batch cluster's jobs must be cancelled even if the client is broken
            if cluster is not None:
                cluster.close()
