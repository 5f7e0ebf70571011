"""Ray backend: runs as Ray tasks, on a local Ray runtime or an existing cluster.

Mapping onto Ray: each Ray task (one CPU) executes
:func:`gmat_sweep.graph.run_nodes` on a group of consecutive runs, grouped as
for Dask (:class:`~gmat_sweep.backends.base.RunGroups`): Ray's per-task cost
and its raylet's scheduling work would otherwise take a measurable share of
two busy cores from GMAT (about 8% more runs/s with groups, measured on
leo_basic). Every run still gets its own future, outcome and manifest line.
Ray runs tasks on the main thread of its worker processes, so each Ray
worker keeps one persistent GMAT host
(:func:`~gmat_sweep.backends._subprocess.thread_host`) with its loaded
mission; a timeout or an engine crash kills only that host and becomes a
``failed`` outcome, never a dead Ray worker. A task whose Ray worker died
anyway (killed from outside, out of memory) is retried by Ray; when Ray gives
up, its runs are recorded as failed attempts, which the sweep may retry.

Ray is an optional dependency (``pip install 'gmat_sweep[ray]'``): it is
imported when a :class:`RayPool` is built, never when :mod:`gmat_sweep` is.
On a remote cluster every node needs ``gmat_sweep`` installed, and the
missions and output directory must be reachable from the nodes (a shared
filesystem or an fsspec URL).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from gmat_sweep.backends.base import Pool, RunGroups, field_problems, lost
from gmat_sweep.errors import BackendError
from gmat_sweep.graph import check_node, run_nodes
from gmat_sweep.spec import RunOutcome, RunSpec


class RayPool(Pool):
    """Distributed pool backed by Ray.

    Parameters
    ----------
    address:
        Forwarded to :func:`ray.init` to connect to an existing cluster
        (``"auto"`` for a local cluster started with ``ray start``,
        ``"ray://host:port"`` for a Ray Client server, or a raw GCS address).
        ``None`` (default) starts a new local Ray runtime.
    num_cpus:
        CPUs of the local runtime, i.e. runs executed at once. ``None``
        (default) lets Ray use every core. Only for the local runtime: it
        cannot be combined with ``address``.
    reuse_gmat_context:
        ``True`` (default) gives each Ray worker one persistent GMAT host that
        keeps its loaded mission between runs. The host's mission cache is
        keyed by the script's hash, so a spec for another script reloads —
        sweeps that mix scripts stay correct, only slower. ``False`` runs
        each spec in a fresh interpreter that bootstraps GMAT from scratch.
    **ray_init_kwargs:
        Extra keyword arguments forwarded verbatim to :func:`ray.init`. A
        local runtime starts with ``include_dashboard=False`` unless given.

    Notes
    -----
    If this process is already connected to Ray (``ray.init`` was called
    before), the pool uses that connection; pass no ``address``, ``num_cpus``
    or ``ray_init_kwargs`` then. :meth:`close` shuts down a runtime the pool
    started (and disconnects from a cluster it connected to), which stops
    every Ray worker and GMAT host; on a connection it did not make it only
    cancels the pool's unfinished tasks.

    Raises
    ------
    BackendError
        Ray is not installed, ``ray.init`` failed, or connection arguments
        were given while this process is already connected to Ray.
    """

    name = "ray"

    def __init__(
        self,
        *,
        address: str | None = None,
        num_cpus: int | None = None,
        reuse_gmat_context: bool = True,
        **ray_init_kwargs: Any,
    ) -> None:
        super().__init__(reuse_gmat_context=reuse_gmat_context)
        try:
            import ray
        except ImportError as exc:
            raise BackendError(
                "RayPool needs Ray, which is not installed: pip install 'gmat_sweep[ray]'"
            ) from exc
        if address is not None and num_cpus is not None:
            raise BackendError(
                f"RayPool(address={address!r}, num_cpus={num_cpus!r}): num_cpus sizes a local "
                "runtime and cannot be set for an existing cluster; drop one of the two"
            )
        self._ray: Any = ray
        self._owns_connection = not ray.is_initialized()
        if not self._owns_connection:
            if address is not None or num_cpus is not None or ray_init_kwargs:
                raise BackendError(
                    "Ray is already initialised in this process, so RayPool cannot apply "
                    "address, num_cpus or ray_init_kwargs; build RayPool() without them to use "
                    "the current runtime, or call ray.shutdown() first"
                )
        elif address is None:
            # "local" starts a new runtime even when a `ray start` cluster is running here.
            options = {"include_dashboard": False, **ray_init_kwargs}
            self._init(address="local", num_cpus=num_cpus, **options)
        else:
            self._init(address=address, **ray_init_kwargs)
        self._remote: Any = ray.remote(num_cpus=1)(run_nodes)
        self._check: Any = ray.remote(num_cpus=1)(check_node)
        self._groups = RunGroups()
        self._closed = False

    def _init(self, **options: Any) -> None:
        try:
            self._ray.init(**options)
        except Exception as exc:
            # Only the argument names: values (an address, a runtime_env) can hold secrets.
            raise BackendError(
                f"ray.init({', '.join(f'{key}=...' for key in options)}) failed: "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    @property
    def workers(self) -> int:
        """CPUs across the Ray cluster (runs executed at once)."""
        return max(1, int(self._ray.cluster_resources().get("CPU", 1)))

    def check_fields(self, script_path: Path, paths: list[str]) -> list[str]:
        """Check field paths on a Ray worker: its GMAT host then starts warm."""
        self._check_open()
        return field_problems(self, self._check.remote(script_path, paths).future())

    def submit(self, spec: RunSpec) -> Future[RunOutcome]:
        """Queue ``spec``; it is sent to Ray (grouped) when outcomes are drained."""
        self._check_open()
        return self._groups.add(spec)

    def _check_open(self) -> None:
        if self._closed:
            raise BackendError("this RayPool is closed; create a new pool to run more specs")

    def as_completed(self, futures: Iterable[Future[RunOutcome]]) -> Iterator[RunOutcome]:
        """Send queued runs to Ray and yield outcomes as their tasks finish."""
        ray = self._ray
        wanted = set(futures)
        self._groups.flush(self.workers, self._send)
        pending = self._groups.tasks_for(wanted)
        while pending:
            (task,), pending = ray.wait(pending, num_returns=1)
            try:
                outcomes: list[RunOutcome] = ray.get(task)
            except ray.exceptions.WorkerCrashedError as exc:
                detail = f"the Ray worker running it died and Ray gave up retrying: {exc}"
                outcomes = [lost(spec, detail) for spec in self._groups.specs(task)]
            except Exception as exc:
                raise BackendError(
                    f"a Ray task running {len(self._groups.specs(task))} GMAT runs failed "
                    f"outside GMAT: {type(exc).__name__}: {exc}. Start a new pool and finish "
                    "the sweep with Sweep.from_manifest(...).resume()"
                ) from exc
            for future in self._groups.settle(task, outcomes):
                if future in wanted:
                    yield future.result()

    def _send(self, specs: list[RunSpec]) -> Any:
        return self._remote.remote(specs, self._reuse_gmat_context)

    def close(self) -> None:
        """Shut down the runtime this pool started, or cancel its unfinished tasks."""
        if self._closed:
            return
        self._closed = True
        if self._owns_connection:
            self._ray.shutdown()
            return
        # force=True stops a running task by killing its Ray worker (and so its GMAT host).
        for task in self._groups.drop():
            self._ray.cancel(task, force=True)
