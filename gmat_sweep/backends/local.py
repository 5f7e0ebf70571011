"""The default backend: driver threads feeding one GMAT host process per core.

Each of ``workers`` threads owns a persistent GMAT host
(:class:`~gmat_sweep.backends._subprocess.GmatHost`), started as soon as the
pool is built, and pulls runs from one queue. A thread waiting on its host
holds no GIL, so the driver stays free to write the manifest. This is the
fastest way measured on a small machine to execute the per-run graph nodes
(DESIGN.md: ~0.93 of the engine limit against ~0.84 for a distributed
``LocalCluster``), and it needs no ``if __name__ == "__main__"`` guard: hosts
are started with ``subprocess``, never by re-importing the caller's script.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from gmat_sweep.backends._subprocess import GmatHost, run_spec_in_subprocess
from gmat_sweep.backends.base import Pool, drain, resolve_workers
from gmat_sweep.errors import BackendError
from gmat_sweep.spec import RunOutcome, RunSpec

_Check = tuple[Path, Mapping[str, Sequence[Any]]]
_Item = tuple[Future[Any], RunSpec | _Check] | None


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
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._hosts: list[GmatHost] = []
        self._closed = False
        self._threads = [
            threading.Thread(target=self._serve, name=f"gmat-sweep-host-{i}", daemon=True)
            for i in range(self._workers)
        ]
        for thread in self._threads:
            thread.start()

    @property
    def workers(self) -> int:
        """Number of host processes (runs executed at once)."""
        return self._workers

    def submit(self, spec: RunSpec) -> Future[RunOutcome]:
        """Queue ``spec`` for the next free host."""
        if self._closed:
            raise BackendError("this LocalPool is closed; create a new pool to run more specs")
        future: Future[RunOutcome] = Future()
        self._queue.put((future, spec))
        return future

    def check_fields(self, script_path: Path, values: Mapping[str, Sequence[Any]]) -> list[str]:
        """Check field paths on one of the pool's hosts, which keeps the mission loaded."""
        if self._closed:
            raise BackendError("this LocalPool is closed; create a new pool")
        future: Future[list[str]] = Future()
        self._queue.put((future, (script_path, values)))
        return future.result()

    def as_completed(self, futures: Iterable[Future[RunOutcome]]) -> Iterator[RunOutcome]:
        """Yield outcomes as runs finish."""
        return drain(self, futures)

    def close(self) -> None:
        """Cancel queued runs, stop every host process and join the threads."""
        if self._closed:
            return
        self._closed = True
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                item[0].cancel()
        for _ in self._threads:
            self._queue.put(None)
        for host in list(self._hosts):
            host.interrupt()  # a run in flight ends now; its thread then closes the host
        for thread in self._threads:
            thread.join()

    def _serve(self) -> None:
        host = GmatHost()
        self._hosts.append(host)
        start_error: BaseException | None = None
        if self._reuse_gmat_context:
            try:
                host.start()
            except BackendError as exc:
                start_error = exc
        while (item := self._queue.get()) is not None:
            future, spec = item
            if not future.set_running_or_notify_cancel():
                continue
            if start_error is not None:
                future.set_exception(start_error)
                continue
            if not isinstance(spec, RunSpec):
                try:
                    future.set_result(host.check_fields(*spec))
                except BaseException as exc:
                    future.set_exception(exc)
                continue
            try:
                if self._reuse_gmat_context:
                    outcome = host.run(spec, timeout_s=spec.run_options.get("timeout_s"))
                else:
                    outcome = run_spec_in_subprocess(spec)
            except BaseException as exc:  # pragma: no cover - reported through the future
                future.set_exception(exc)
            else:
                future.set_result(outcome)
        host.close()
