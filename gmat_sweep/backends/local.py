"""The default backend: Dask's local scheduler over threads that borrow GMAT hosts.

:class:`LocalPool` is a Dask scheduler. It owns ``workers`` persistent GMAT
host processes (:class:`~gmat_sweep.backends._subprocess.GmatHost`), started
in parallel as soon as the pool is built, and an executor with twice as many
threads, each holding one queued task. A sweep's graph runs through
:func:`dask.local.get_async` over that executor. A thread borrows a free host
for each run (:func:`~gmat_sweep.backends._subprocess.borrowed_host`) and
gives it back the moment the run ends, so the next queued run starts on it at
once; only then does the thread fsync the run's outputs
(:func:`~gmat_sweep.storage.settle`) and hand the outcome to the scheduler,
whose manifest writer appends the run's line. Neither a slow disk nor the
manifest writer ever leaves a host idle. Every local Dask callback — the
manifest writer and any of the user's (``ProgressBar``, ``Profiler``) — sees
every run's task.

A thread waiting on its host holds no GIL, so the driver stays free to write
the manifest. It measures 0.83-0.94 of the engine limit, start-up included
(``benchmarks/throughput.py``, 2 noisy cores), and needs no
``if __name__ == "__main__"`` guard: hosts are started with ``subprocess``,
never by re-importing the caller's script.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from gmat_sweep.backends._subprocess import (
    GmatHost,
    borrowed_host,
    forget_at_exit,
    lend_hosts,
    register_for_exit,
    run_node,
)
from gmat_sweep.backends.base import Pool, drain, resolve_workers
from gmat_sweep.errors import BackendError
from gmat_sweep.spec import RunOutcome, RunSpec

_QUEUED_PER_HOST = 2


class LocalPool(Pool):
    """Local pool of GMAT host processes, owned and closed by the caller.

    Parameters
    ----------
    workers:
        Number of runs executed at once. ``-1`` (default) uses every core
        (:func:`os.cpu_count`); ``0`` or any other negative value raises
        :class:`~gmat_sweep.errors.BackendError`.
    reuse_gmat_context:
        ``True`` (default) keeps one loaded mission per host between runs.
        ``False`` runs each spec in a fresh interpreter, so specs over several
        scripts may share one sweep.
    """

    name = "local"

    def __init__(self, workers: int = -1, *, reuse_gmat_context: bool = True) -> None:
        super().__init__(reuse_gmat_context=reuse_gmat_context)
        self._workers = resolve_workers(workers)
        # Fresh interpreters need no lent hosts: then one thread per run at once.
        self._hosts = [GmatHost(durable=False) for _ in range(self._workers)]
        lender: queue.SimpleQueue[GmatHost] = queue.SimpleQueue()
        for host in self._hosts:
            register_for_exit(host)
            lender.put(host)
        self._executor: ThreadPoolExecutor | None = ThreadPoolExecutor(
            max_workers=self._workers * (_QUEUED_PER_HOST if reuse_gmat_context else 1),
            thread_name_prefix="gmat-sweep-run",
            initializer=lend_hosts,
            initargs=(lender,),
        )
        self._gatherings: set[threading.Barrier] = set()  # check_fields in progress
        if reuse_gmat_context:
            for _ in self._hosts:  # all at once, in parallel
                self._executor.submit(_start_a_host)

    @property
    def workers(self) -> int:
        """Number of host processes (runs executed at once)."""
        return self._workers

    def _running(self) -> ThreadPoolExecutor:
        if self._executor is None:
            raise self._closed()
        return self._executor

    @staticmethod
    def _closed() -> BackendError:
        return BackendError("this LocalPool is closed; create a new pool to run more specs")

    def get(self, dsk: Mapping[Hashable, Any], keys: Any, **kwargs: Any) -> Any:
        """Run ``dsk`` with Dask's local scheduler on this pool's threads."""
        from dask.local import get_async

        executor = self._running()
        depth = self._workers * _QUEUED_PER_HOST
        return get_async(executor.submit, depth, dsk, keys, **kwargs)  # type: ignore[no-untyped-call]

    def submit(self, spec: RunSpec) -> Future[RunOutcome]:
        """Queue ``spec`` for the next free host."""
        return self._running().submit(run_node, spec, self._reuse_gmat_context)

    def as_completed(self, futures: Iterable[Future[RunOutcome]]) -> Iterator[RunOutcome]:
        """Yield outcomes as runs finish."""
        return drain(self, futures)

    def check_fields(self, script_path: Path, values: Mapping[str, Sequence[Any]]) -> list[str]:
        """Check overrides on every host at once; each keeps the mission loaded for the runs.

        Every host loads the mission in parallel, so no host loads it at its
        first run while the others run. A host that cannot start raises here,
        before any run is dispatched. With ``reuse_gmat_context=False`` runs
        start fresh interpreters, so one host checks.
        """
        executor = self._running()
        hosts = self._workers if self._reuse_gmat_context else 1
        together = threading.Barrier(hosts)
        self._gatherings.add(together)
        try:
            checks = [
                executor.submit(_check_one_host, together, script_path, values)
                for _ in range(hosts)
            ]
            problems = [check.result() for check in checks]  # every host's failure surfaces
        except CancelledError:
            raise self._closed() from None
        finally:
            self._gatherings.discard(together)
        return problems[0]

    def close(self) -> None:
        """Cancel queued runs, stop every host process and join the threads."""
        executor, self._executor = self._executor, None
        if executor is None:
            return
        executor.shutdown(wait=False, cancel_futures=True)
        for together in list(self._gatherings):
            together.abort()  # a cancelled check task will never join the others
        for host in self._hosts:
            host.interrupt()  # a run in flight ends now
        executor.shutdown(wait=True)
        for host in self._hosts:
            host.close()
            forget_at_exit(host)


_GATHER_TIMEOUT_S = 60.0


def _check_one_host(
    together: threading.Barrier, script_path: Path, values: Mapping[str, Sequence[Any]]
) -> list[str]:
    """Check the overrides on a lent host, and keep it until each check task holds one.

    Holding the host makes the next check task borrow another one (each loads
    the mission at once, as soon as it has started). A check that waits
    longer than :data:`_GATHER_TIMEOUT_S` for the others, or whose pool closes,
    gives its host back.
    """
    with borrowed_host() as host:
        try:
            return host.check_fields(script_path, values)
        finally:
            with contextlib.suppress(threading.BrokenBarrierError):
                together.wait(_GATHER_TIMEOUT_S)


def _start_a_host() -> None:
    """Start a lent host that is not running; on failure its first run retries and reports."""
    with borrowed_host() as host, contextlib.suppress(BackendError):
        if host.pid is None:
            host.start()
