"""Ray backend: a sweep's graph as Ray tasks, on a local Ray runtime or an existing cluster.

Mapping onto Ray: each of the sweep's grouped tasks becomes one Ray task (one
CPU) executing :func:`~gmat_sweep.backends._subprocess.run_nodes` on its
consecutive runs; a ``ray.wait`` loop on the driver records each run in the
manifest as its group finishes (Ray's own Dask scheduler, ``ray_dask_get``,
has no per-task hook on the driver; it runs any other graph). Ray's per-task cost
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

Ray is an optional dependency (the ``ray`` extra: ``pip install 'ray[default]'``): it is
imported when a :class:`RayPool` is built, never when :mod:`gmat_sweep` is.
On a remote cluster every node needs ``gmat_sweep`` installed, and the
missions and output directory must be reachable from the nodes (a shared
filesystem or an fsspec URL).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from gmat_sweep import graph
from gmat_sweep.backends._subprocess import check_node, run_node, run_nodes
from gmat_sweep.backends.base import Pool, check_positive, drain, field_problems
from gmat_sweep.errors import BackendError
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
        (default) lets Ray use every core. Ignored when connecting to an
        existing cluster via ``address`` (the cluster has its own size);
        otherwise anything but ``None`` or a positive integer is rejected with
        :class:`~gmat_sweep.errors.BackendError`.
    reuse_gmat_context:
        ``True`` (default) gives each Ray worker one persistent GMAT host that
        keeps its loaded mission between runs. The host's mission cache is
        keyed by the script's hash and path, so a spec for another script reloads —
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
        if num_cpus is not None and address is None:
            check_positive("num_cpus", num_cpus, "or None for every core")
        try:
            import ray
        except ImportError as exc:
            raise BackendError(
                "RayPool needs Ray, which is not installed: "
                "pip install 'ray[default]' (the 'ray' extra)"
            ) from exc
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
        self._single: Any = ray.remote(num_cpus=1)(run_node)
        self._check: Any = ray.remote(num_cpus=1)(check_node)
        self._in_flight: set[Any] = set()
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

    def check_fields(self, script_path: Path, values: Mapping[str, Sequence[Any]]) -> list[str]:
        """Check overrides on a Ray worker: its GMAT host then starts warm."""
        self._check_open()
        return field_problems(self, self._check.remote(script_path, values).future())

    def group_for(self, runs: int) -> int:
        """Runs per Ray task: grouped, which measured ~8% more runs/s on two cores."""
        return graph.group_size(runs, self.workers)

    def get(self, dsk: Mapping[Hashable, Any], keys: Any, **kwargs: Any) -> Any:
        """Run a sweep's grouped tasks as Ray tasks, recording runs as groups finish."""
        self._check_open()
        pairs = graph.run_keys_only(dsk, keys)
        if pairs is None:
            from ray.util.dask import ray_dask_get

            return ray_dask_get(dsk, keys, **kwargs)
        return graph.pack(keys, graph.drive(pairs, self._run_round))

    def _run_round(self, groups: list[graph.Group]) -> Iterator[tuple[int, list[RunOutcome] | str]]:
        ray = self._ray
        position = {}
        for index, (run_graph, _, specs) in enumerate(groups):
            task = self._remote.remote(
                specs, run_graph.reuse_gmat_context, run_graph.retries, run_graph.postprocess
            )
            position[task] = index
        self._in_flight.update(position)
        pending = list(position)
        while pending:
            (task,), pending = ray.wait(pending, num_returns=1)
            self._in_flight.discard(task)
            index = position[task]
            try:
                outcomes: list[RunOutcome] = ray.get(task)
            except ray.exceptions.WorkerCrashedError as exc:
                yield index, f"the Ray worker running it died and Ray gave up retrying: {exc}"
                continue
            except Exception as exc:
                raise BackendError(
                    f"a Ray task running {len(groups[index][2])} GMAT runs failed outside GMAT: "
                    f"{type(exc).__name__}: {exc}. Start a new pool and finish the sweep with "
                    "Sweep.from_manifest(...).resume()"
                ) from exc
            yield index, outcomes

    def submit(self, spec: RunSpec) -> Future[RunOutcome]:
        """Send ``spec`` to Ray as one task (the per-run ``Pool`` interface)."""
        self._check_open()
        task = self._single.remote(spec, self._reuse_gmat_context)
        self._in_flight.add(task)
        future: Future[RunOutcome] = task.future()
        future.add_done_callback(lambda _: self._in_flight.discard(task))
        return future

    def _check_open(self) -> None:
        if self._closed:
            raise BackendError("this RayPool is closed; create a new pool to run more specs")

    def as_completed(self, futures: Iterable[Future[RunOutcome]]) -> Iterator[RunOutcome]:
        """Yield outcomes as runs finish."""
        return drain(self, futures)

    def close(self) -> None:
        """Shut down the runtime this pool started, or cancel its unfinished tasks."""
        if self._closed:
            return
        self._closed = True
        if self._owns_connection:
            self._ray.shutdown()
            return
        # force=True stops a running task by killing its Ray worker (and so its GMAT host).
        for task in list(self._in_flight):
            self._ray.cancel(task, force=True)
        self._in_flight.clear()
