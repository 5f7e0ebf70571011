"""Dask backend: a sweep's graph on a ``distributed`` cluster.

Mapping onto Dask: the sweep's grouped tasks (``("gmat-group-<token>", first, last)``,
each executing :func:`~gmat_sweep.backends._subprocess.run_nodes` on
consecutive runs inside the worker thread's persistent GMAT host) are sent
with ``client.get(..., sync=False)``; a :func:`distributed.as_completed` loop
on the driver records each run in the manifest as its group finishes and
derives the per-run keys from the group. Dask's per-task cost (several ms of
scheduler CPU) is comparable to a fast GMAT run, hence the groups: up to
:data:`~gmat_sweep.graph.MAX_GROUP` runs per task, and never fewer than four
tasks per worker so late-joining workers still get work. A task whose worker
is lost is retried by Dask on another worker
(``distributed.scheduler.allowed-failures``); when Dask gives up
(``KilledWorker``) its runs become failed attempts, sent again up to the
sweep's ``retries``. Any other graph (a sweep composed with other work) runs
through ``client.get`` as it is.

``DaskPool()`` with no client starts and owns an in-process
:class:`distributed.LocalCluster` (one thread per worker, each driving its own
GMAT host process): no worker processes to spawn, so it starts in
milliseconds and needs no ``__main__`` guard (the scheduler's CPU per task is
spent in this process); ``DaskPool(client=...)`` uses any
existing cluster — dask-jobqueue, a remote scheduler, a ``LocalCluster`` — and
never closes it. :func:`gmat_sweep.backends.jobqueue.jobqueue_pool` builds a
batch-system cluster and hands it to a pool that owns and closes it.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from functools import partial
from pathlib import Path
from typing import Any

from gmat_sweep import graph
from gmat_sweep.backends._subprocess import (
    check_node,
    close_hosts_of_ended_threads,
    interrupt_hosts_of,
    run_node,
    run_nodes,
)
from gmat_sweep.backends.base import Pool, check_positive, check_reuse, drain, field_problems
from gmat_sweep.errors import BackendError
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
        :func:`os.cpu_count`. Anything but ``None`` or a positive integer is
        rejected with :class:`~gmat_sweep.errors.BackendError`.
    threads_per_worker:
        Threads per worker for the auto-spawned cluster. Ignored when
        ``client`` is supplied. Defaults to 1 so each worker runs one mission
        at a time. Anything but a positive integer is rejected with
        :class:`~gmat_sweep.errors.BackendError`.
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
            import dask
            import distributed
        except ImportError as exc:  # pragma: no cover - a hard dependency
            raise BackendError(
                "DaskPool needs dask.distributed: pip install 'dask[distributed]'"
            ) from exc
        if client is not None and not isinstance(client, distributed.Client):
            raise BackendError(
                f"client={client!r} of type {type(client).__name__} is not a distributed.Client; "
                "pass Client(address) or Client(cluster), or for a scheduler address use "
                "DaskPool.connect(address) or backend='tcp://host:8786'"
            )
        self._owned: Any | None = None
        self._owns_client = client is None
        self._planned_threads = 0
        if client is None:
            workers = (os.cpu_count() or 1) if n_workers is None else n_workers
            check_positive("n_workers", workers, "or None for one per core (os.cpu_count())")
            check_positive("threads_per_worker", threads_per_worker, "e.g. 1 (the default)")
            # Its workers' profiler would sample every thread of this process every 10 ms:
            # 1 ms or so of CPU per run for profiles of threads that only wait on their
            # GMAT hosts, where the runs are. The scheduler and every worker would also
            # measure this same process (CPU, memory, disk and network counters) twice a
            # second and time their event loops 50 times a second: together about as much
            # again, taken from the GMAT hosts.
            quiet = {
                "distributed.worker.profile.enabled": False,
                "distributed.admin.system-monitor.interval": "5s",
                "distributed.admin.system-monitor.disk": False,
                "distributed.admin.tick.interval": "1s",
            }
            try:
                with dask.config.set(quiet):
                    self._owned = distributed.LocalCluster(  # type: ignore[no-untyped-call]
                        n_workers=workers,
                        threads_per_worker=threads_per_worker,
                        processes=False,
                        # A worker would measure this whole process, the caller's data
                        # included, and could pause for good; GMAT's memory is in the hosts.
                        memory_limit=0,
                        dashboard_address=":0",
                    )
            except Exception as exc:
                raise BackendError(
                    f"could not start a Dask LocalCluster with {workers} workers: {exc}. "
                    "Use the default backend, or start a cluster yourself and pass its "
                    "client: DaskPool(client=Client(cluster))."
                ) from exc
            try:
                # Not the process's default scheduler: dask.compute(sweep) must keep
                # running sweeps through their own scheduler and manifest writer.
                client = distributed.Client(self._owned, set_as_default=False)  # type: ignore[no-untyped-call]
            except BaseException:
                self._owned.close()
                raise
        self._client: Any = client

    @classmethod
    def adopt(
        cls, cluster: Any, *, planned_threads: int = 0, reuse_gmat_context: bool = True
    ) -> DaskPool:
        """A pool over ``cluster`` that closes its client and ``cluster`` in :meth:`close`.

        ``planned_threads`` is the size the cluster is being scaled to; runs
        are grouped for that size, so workers that join after the sweep was
        submitted still find tasks to take.
        """
        import distributed

        check_reuse(reuse_gmat_context)  # before a client is made that would then leak
        try:
            client = distributed.Client(cluster, set_as_default=False)  # type: ignore[no-untyped-call]
        except Exception:
            cluster.close()
            raise
        pool = cls(client=client, reuse_gmat_context=reuse_gmat_context)
        pool._owned = cluster
        pool._owns_client = True
        pool._planned_threads = planned_threads
        return pool

    @classmethod
    def connect(cls, address: str, *, reuse_gmat_context: bool = True) -> DaskPool:
        """A pool over the scheduler at ``address`` (e.g. ``tcp://host:8786``).

        :meth:`close` closes the pool's client, never the cluster.

        Raises
        ------
        BackendError
            The scheduler cannot be reached within 30 s.
        """
        import distributed

        check_reuse(reuse_gmat_context)
        try:
            client = distributed.Client(  # type: ignore[no-untyped-call]
                address, timeout="30s", set_as_default=False
            )
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
        """Check field paths on every current worker at once: each GMAT host then starts warm.

        This also proves the workers can read the script and start the engine
        before any run is submitted. A cluster with no worker yet (one still
        scaling up) checks on the first worker that joins.
        """
        submit = partial(self._client.submit, check_node, script_path, values, pure=False)
        workers = list(self._client.scheduler_info(n_workers=-1)["workers"])
        if workers:
            checks = [submit(workers=[w], allow_other_workers=True) for w in workers]
        else:
            checks = [submit()]
        problems = [field_problems(self, check) for check in checks]  # every failure surfaces
        return problems[0]

    def group_for(self, runs: int) -> int:
        """Runs per Dask task: grouped, because a task costs several ms of scheduler CPU."""
        return graph.group_size(runs, self.workers)

    def get(self, dsk: Mapping[Hashable, Any], keys: Any, **kwargs: Any) -> Any:
        """Run a sweep's grouped tasks on the cluster, recording runs as groups finish."""
        pairs = graph.run_keys_only(dsk, keys)
        if pairs is None:
            return self._client.get(dsk, keys, **kwargs)
        return graph.pack(keys, graph.drive(pairs, self._run_round))

    def _run_round(self, groups: list[graph.Group]) -> Iterator[tuple[int, list[RunOutcome] | str]]:
        from dask.base import annotate
        from distributed import as_completed
        from distributed.scheduler import KilledWorker

        tasks: dict[Hashable, Any] = {}
        position: dict[Hashable, int] = {}
        for index, (run_graph, key, specs) in enumerate(groups):
            # A re-sent run gets a key of its own: its group's key may still be held.
            if key is None:
                again = f"{run_graph.group_name}-again-{uuid.uuid4().hex[:8]}"
                key = (again, specs[0].run_id, specs[-1].run_id)
            tasks[key] = (
                run_nodes,
                specs,
                run_graph.reuse_gmat_context,
                run_graph.retries,
                run_graph.postprocess,
            )
            position[key] = index
        # Higher priorities start first: the groups, in run_id order (graph.dispatch_rank).
        with annotate(priority=lambda key: -position[key]):
            futures = self._client.get(tasks, list(tasks), sync=False)
        for future in as_completed(futures, loop=self._client.loop):  # type: ignore[no-untyped-call]
            index = position[future.key]
            try:
                outcomes: list[RunOutcome] = future.result()
            except KilledWorker as exc:
                yield (
                    index,
                    (
                        f"every Dask worker that ran it was lost: {exc}; see the worker logs for "
                        "out-of-memory kills or job wall-time limits"
                    ),
                )
                continue
            except Exception as exc:
                raise BackendError(
                    f"a Dask task running {len(groups[index][2])} GMAT runs failed outside "
                    f"GMAT: {type(exc).__name__}: {exc}"
                ) from exc
            finally:
                future.release()
            yield index, outcomes

    def submit(self, spec: RunSpec) -> Future[RunOutcome]:
        """Send ``spec`` to the cluster as one task (the per-run ``Pool`` interface)."""
        future: Any = self._client.submit(run_node, spec, self._reuse_gmat_context, pure=False)
        return future  # type: ignore[no-any-return]  # distributed's Future has this interface

    def as_completed(self, futures: Iterable[Future[RunOutcome]]) -> Iterator[RunOutcome]:
        """Yield outcomes as runs finish."""
        from distributed import as_completed

        return drain(self, futures, partial(as_completed, loop=self._client.loop))

    def close(self) -> None:
        """Shut down the client and the cluster if this pool owns them.

        The runs in flight on an owned in-process cluster are stopped (their
        GMAT hosts killed, as :class:`~gmat_sweep.backends.local.LocalPool`
        does), and the GMAT hosts of in-process workers that have ended (this
        pool's own cluster, or any in-process ``LocalCluster`` closed before)
        are closed.
        """
        cluster, self._owned = self._owned, None
        owns_client, self._owns_client = self._owns_client, False
        try:
            if cluster is not None:
                interrupt_hosts_of(_in_process_threads(cluster))
            if owns_client:
                self._client.close()
        finally:  # a batch cluster's jobs must be cancelled even if the client is broken
            if cluster is not None:
                cluster.close()
            close_hosts_of_ended_threads()


def _in_process_threads(cluster: Any) -> list[threading.Thread]:
    """The task threads of ``cluster``'s in-process workers (none for worker processes or jobs)."""
    from distributed import Worker

    workers = getattr(cluster, "workers", None)  # a SpecCluster's: name -> Worker, Nanny or job
    if not isinstance(workers, Mapping):
        return []
    # ThreadPoolExecutor keeps its threads in _threads (distributed's subclass relies on it
    # too); were that to go, close would still end the runs, only without stopping them first.
    executors = [w.executor for w in workers.values() if isinstance(w, Worker)]
    return [thread for executor in executors for thread in getattr(executor, "_threads", ())]
