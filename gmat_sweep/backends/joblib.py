"""joblib backend: Dask's local scheduler over a pool of loky worker processes.

Mapping onto loky: loky's executor slots straight into Dask's executor
interface, so a sweep's graph runs through :func:`dask.local.get_async` over
it (tasks and results travel pickled with cloudpickle, as in Dask's
multiprocessing scheduler), and every local Dask callback — the manifest
writer included — fires on the driver. Each run key is one loky task (one
run per message: on a small machine that is the fastest way measured,
~0.5 ms per task). Inside its loky worker the node
sends the run to the worker's persistent GMAT host process
(:func:`~gmat_sweep.backends._subprocess.thread_host`), so a timeout or an
engine crash kills only that host and becomes a ``failed`` outcome: the
loky worker itself never dies, and loky never breaks the whole executor
(which it does, with ``TerminatedWorkerError``, when a worker dies).

The pool owns a dedicated :class:`loky.ProcessPoolExecutor
<joblib.externals.loky.ProcessPoolExecutor>` — not loky's process-wide
reusable executor, so closing it never disturbs other joblib code in the same
program. Loky starts workers with its own fork+exec launcher, which does not
re-import the caller's ``__main__``: no ``if __name__ == "__main__"`` guard
is needed. Workers start on the first :meth:`~LocalJoblibPool.submit` and stay
up (with their loaded missions) until :meth:`~LocalJoblibPool.close`.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from gmat_sweep.backends._subprocess import check_node, run_node
from gmat_sweep.backends.base import Pool, drain, field_problems, resolve_workers
from gmat_sweep.errors import BackendError
from gmat_sweep.spec import RunOutcome, RunSpec

_QUEUED_PER_WORKER = 2


class LocalJoblibPool(Pool):
    """Local process pool backed by joblib's loky executor.

    Parameters
    ----------
    workers:
        Number of loky worker processes (runs executed at once). ``-1`` (the
        default) uses every core (:func:`os.cpu_count`). ``0`` or any other
        negative value raises :class:`~gmat_sweep.errors.BackendError`.
    reuse_gmat_context:
        ``True`` (default) gives each worker one persistent GMAT host that
        keeps its loaded mission between runs. The host's mission cache is
        keyed by the script's hash and path, so a spec for another script reloads —
        sweeps that mix scripts stay correct, only slower. ``False`` runs
        each spec in a fresh interpreter that bootstraps GMAT from scratch.

    Notes
    -----
    :meth:`close` lets idle workers exit normally (each closes its GMAT host
    on the way out). If runs are still in flight — an interrupted sweep — it
    kills every worker and its GMAT host instead of waiting for them.
    """

    name = "joblib"

    def __init__(self, workers: int = -1, *, reuse_gmat_context: bool = True) -> None:
        super().__init__(reuse_gmat_context=reuse_gmat_context)
        self._workers = resolve_workers(workers)
        try:
            from joblib.externals.loky import ProcessPoolExecutor
        except ImportError as exc:
            raise BackendError(
                "LocalJoblibPool needs joblib, which is not installed: pip install joblib"
            ) from exc
        self._executor: Any | None = ProcessPoolExecutor(max_workers=self._workers)
        self._in_flight: set[Future[Any]] = set()

    @property
    def workers(self) -> int:
        """Number of loky worker processes."""
        return self._workers

    def check_fields(self, script_path: Path, values: Mapping[str, Sequence[Any]]) -> list[str]:
        """Check overrides on a loky worker: its GMAT host then starts warm."""
        return field_problems(self, self._running().submit(check_node, script_path, values))

    def get(self, dsk: Mapping[Hashable, Any], keys: Any, **kwargs: Any) -> Any:
        """Run ``dsk`` with Dask's local scheduler on this pool's loky workers."""
        import cloudpickle  # type: ignore[import-untyped]
        from dask.local import get_async

        return get_async(  # type: ignore[no-untyped-call]
            self._send,
            self._workers * _QUEUED_PER_WORKER,
            dsk,
            keys,
            dumps=cloudpickle.dumps,
            loads=cloudpickle.loads,
            **kwargs,
        )

    def submit(self, spec: RunSpec) -> Future[RunOutcome]:
        """Send ``spec`` to the next free loky worker."""
        future: Future[RunOutcome] = self._send(run_node, spec, self._reuse_gmat_context)
        return future

    def _send(self, function: Any, *args: Any) -> Future[Any]:
        """Submit to loky, keeping track of what is in flight for :meth:`close`."""
        future: Future[Any] = self._running().submit(function, *args)
        self._in_flight.add(future)
        future.add_done_callback(self._in_flight.discard)
        return future

    def _running(self) -> Any:
        if self._executor is None:
            raise BackendError(
                "this LocalJoblibPool is closed; create a new pool to run more specs"
            )
        return self._executor

    def as_completed(self, futures: Iterable[Future[RunOutcome]]) -> Iterator[RunOutcome]:
        """Yield outcomes as runs finish."""
        return drain(self, futures)

    def close(self) -> None:
        """Cancel queued runs and shut the workers (and their GMAT hosts) down."""
        executor, self._executor = self._executor, None
        if executor is None:
            return
        for future in list(self._in_flight):
            future.cancel()
        executor.shutdown(wait=True, kill_workers=bool(self._in_flight))
