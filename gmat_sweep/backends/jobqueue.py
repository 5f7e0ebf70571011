"""Batch-system clusters: a :class:`~gmat_sweep.backends.dask.DaskPool` on Slurm, PBS, SGE ...

:func:`jobqueue_pool` builds a `dask-jobqueue <https://jobqueue.dask.org>`_
cluster of the requested kind, sizes it (a fixed number of jobs, or adaptive
between a minimum and a maximum) and returns a pool that owns it: closing the
pool closes the client, cancels the batch jobs and stops the scheduler.

Every option the cluster class accepts (``cores``, ``memory``, ``queue``,
``walltime``, ``account``, ``interface``, ``job_script_prologue`` ...) may be
passed as a keyword argument; whatever is not passed comes from Dask's own
configuration under ``jobqueue.<kind>`` (``~/.config/dask/jobqueue.yaml``,
``DASK_JOBQUEUE__SLURM__QUEUE=...`` environment variables,
:func:`dask.config.set`), exactly as dask-jobqueue resolves it. Any other Dask
cluster works through ``DaskPool(client=Client(cluster))``.

Each worker job bootstraps the embedded GMAT engine itself on first use (the
engine cache is safe when many workers build it at once); a worker whose
engine cannot start fails the sweep with a
:class:`~gmat_sweep.errors.BackendError` naming its host.
"""

from __future__ import annotations

import math
from typing import Any

from gmat_sweep.backends.base import check_reuse
from gmat_sweep.backends.dask import DaskPool
from gmat_sweep.errors import BackendError

CLUSTER_KINDS: dict[str, str] = {
    "slurm": "SLURMCluster",
    "pbs": "PBSCluster",
    "sge": "SGECluster",
    "lsf": "LSFCluster",
    "htcondor": "HTCondorCluster",
    "oar": "OARCluster",
    "moab": "MoabCluster",
}
"""Cluster kinds :func:`jobqueue_pool` accepts, and their dask-jobqueue classes."""


def jobqueue_pool(
    kind: str = "slurm",
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    jobs: int | None = None,
    reuse_gmat_context: bool = True,
    **cluster_kwargs: Any,
) -> DaskPool:
    """Start a dask-jobqueue cluster on a batch system and return a pool that owns it.

    Parameters
    ----------
    kind:
        The batch system: ``"slurm"`` (default), ``"pbs"``, ``"sge"``,
        ``"lsf"``, ``"htcondor"``, ``"oar"`` or ``"moab"``.
    minimum, maximum:
        Scale adaptively between ``minimum`` and ``maximum`` *workers*
        (:meth:`distributed.deploy.Cluster.adapt`): jobs are submitted while
        runs are queued and cancelled once their workers are idle. One of
        them may be omitted (``minimum`` then defaults to 0, ``maximum`` to
        no limit). With ``processes=1`` per job, one worker is one job.
    jobs:
        Instead of adaptive scaling: submit exactly this many batch jobs
        (``cluster.scale(jobs=jobs)``).
    reuse_gmat_context:
        Forwarded to :class:`~gmat_sweep.backends.dask.DaskPool`.
    **cluster_kwargs:
        Options of the dask-jobqueue cluster class (``cores``, ``memory``,
        ``queue``, ``walltime``, ``python``, ``interface``,
        ``job_script_prologue``, ``log_directory`` ...). Options not given
        here are read from Dask's configuration under ``jobqueue.<kind>``.

    Returns
    -------
    DaskPool
        A pool over the new cluster. Its :meth:`~DaskPool.close` (or leaving
        its ``with`` block) closes the client, cancels every batch job and
        stops the scheduler.

    Raises
    ------
    BackendError
        ``kind`` is unknown, dask-jobqueue is not installed, the sizing
        arguments are contradictory or absent, or the cluster could not be
        created (for instance no ``cores``/``memory`` in the arguments or the
        configuration).

    Examples
    --------
    >>> from gmat_sweep import sweep
    >>> from gmat_sweep.backends.jobqueue import jobqueue_pool
    >>> with jobqueue_pool("slurm", jobs=8, cores=1, memory="2GB",
    ...                    walltime="01:00:00") as pool:  # doctest: +SKIP
    ...     result = sweep("mission.script", {"Sat.SMA": [7000, 7100]}, backend=pool)
    """
    if kind not in CLUSTER_KINDS:
        raise BackendError(
            f"cluster kind {kind!r} is not supported; use one of {', '.join(CLUSTER_KINDS)}, "
            "or build any Dask cluster yourself and pass DaskPool(client=Client(cluster))"
        )
    _check_sizing(minimum, maximum, jobs, cluster_kwargs)
    check_reuse(reuse_gmat_context)
    try:
        import dask
        import dask_jobqueue
    except ImportError as exc:
        raise BackendError(
            f"jobqueue_pool({kind!r}) needs dask-jobqueue: "
            "pip install dask-jobqueue (the 'hpc' extra)"
        ) from exc
    cluster_class = getattr(dask_jobqueue, CLUSTER_KINDS[kind])
    section = cluster_kwargs.get("config_name") or kind
    missing = [
        name
        for name in ("cores", "memory")
        if cluster_kwargs.get(name) is None
        and dask.config.get(f"jobqueue.{section}.{name}", None) is None
    ]
    if missing:
        # Checked here rather than left to dask-jobqueue, whose half-built cluster then
        # prints an ignored exception when it is garbage-collected.
        raise BackendError(
            f"a {cluster_class.__name__} needs {' and '.join(missing)} per job: pass "
            f"{', '.join(f'{name}=...' for name in missing)} or set "
            f"{', '.join(f'jobqueue.{section}.{name}' for name in missing)} in Dask's "
            "configuration (~/.config/dask/jobqueue.yaml)"
        )
    try:
        cluster = cluster_class(**cluster_kwargs)
    except Exception as exc:
        raise BackendError(
            f"could not create a dask-jobqueue {cluster_class.__name__}: {type(exc).__name__}: "
            f"{exc}. Pass the options as keyword arguments (cores=..., memory=..., queue=..., "
            f"walltime=...) or set them under jobqueue.{kind} in ~/.config/dask/jobqueue.yaml"
        ) from exc
    # dask-jobqueue's own template job knows how one job splits into workers and threads.
    job = getattr(cluster, "_dummy_job", None)
    processes = int(getattr(job, "worker_processes", 1))
    threads = int(getattr(job, "worker_process_threads", 1))
    try:
        planned_workers = _scale(cluster, minimum, maximum, jobs, processes)
        return DaskPool.adopt(
            cluster,
            planned_threads=planned_workers * threads,
            reuse_gmat_context=reuse_gmat_context,
        )
    except BaseException:
        cluster.close()
        raise


def _check_sizing(
    minimum: int | None, maximum: int | None, jobs: int | None, cluster_kwargs: dict[str, Any]
) -> None:
    for name, value in (("minimum", minimum), ("maximum", maximum), ("jobs", jobs)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise BackendError(f"{name}={value!r}: use a whole number")
    adaptive = minimum is not None or maximum is not None
    if jobs is not None and adaptive:
        raise BackendError(
            f"jobs={jobs} with minimum={minimum}/maximum={maximum}: give jobs=N for a fixed "
            "cluster or minimum/maximum for adaptive scaling, not both"
        )
    if jobs is not None and jobs < 1:
        raise BackendError(f"jobs={jobs}: a cluster needs at least 1 job")
    if minimum is not None and minimum < 0:
        raise BackendError(f"minimum={minimum}: use 0 or more workers")
    if maximum is not None and maximum < max(1, minimum or 0):
        raise BackendError(
            f"maximum={maximum}: must be at least 1 and at least minimum={minimum or 0}"
        )
    if jobs is None and not adaptive and not cluster_kwargs.get("n_workers"):
        raise BackendError(
            "the cluster would have no workers and the sweep would wait forever: pass jobs=N "
            "for a fixed cluster, or minimum=/maximum= for adaptive scaling"
        )


def _scale(
    cluster: Any, minimum: int | None, maximum: int | None, jobs: int | None, processes: int
) -> int:
    """Apply the sizing to ``cluster``; return the number of workers it is scaled towards."""
    if jobs is not None:
        cluster.scale(jobs=jobs)
        return jobs * processes
    if minimum is not None or maximum is not None:
        low = minimum or 0
        cluster.adapt(minimum=low, maximum=math.inf if maximum is None else maximum)
        return low if maximum is None else maximum
    return len(cluster.worker_spec) * processes
