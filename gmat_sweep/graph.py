"""A sweep is one Dask graph: one key per run, run by the backend's scheduler.

:class:`RunGraph` turns a sweep's :class:`~gmat_sweep.spec.RunSpec` list
into Dask tasks. Every run has its own key ``("gmat-run-<token>", run_id)``
computing to its :class:`~gmat_sweep.spec.RunOutcome`; the token is derived
from the sweep's output directory, so two sweeps never collide in one graph
and a resumed sweep reuses its keys. Short runs may be grouped into one task,
``("gmat-group-<token>", first_run_id, last_run_id)``, to amortise an
executor's per-task cost; each run's key is then a ``getitem`` of its group,
so the per-run keys are still the ones executed. The task function,
:func:`~gmat_sweep.backends._subprocess.run_node`, retries transient failures
(a timeout, a dead GMAT host) itself, so a retry is part of executing the
graph.

The manifest is written by a completion callback on the driver:

- under Dask's local schedulers (the default backend, joblib, and any
  ``dask.compute(..., scheduler="threads"/"sync")``) it is :class:`ManifestWriter`,
  a :class:`dask.callbacks.Callback` whose ``_posttask`` records each run key
  as it finishes, next to any callback of the user's (``ProgressBar``,
  ``Profiler``);
- distributed and Ray adapters call :meth:`Recorder.record` from their own
  ``as_completed`` loops.

Which sweeps a graph holds is found from its key names through a registry of
live sweeps, so ``dask.compute(sweep_a, sweep_b)`` writes each sweep's own
manifest.
"""

from __future__ import annotations

import hashlib
import math
import operator
import threading
import weakref
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from dask.callbacks import Callback

from gmat_sweep.backends._subprocess import run_node, run_nodes
from gmat_sweep.spec import RunOutcome, RunSpec

if TYPE_CHECKING:
    from gmat_sweep.backends.base import Pool
    from gmat_sweep.metrics import Postprocess

RUN_PREFIX = "gmat-run-"
GROUP_PREFIX = "gmat-group-"
METRICS_PREFIX = "gmat-metrics-"

MAX_GROUP = 10
"""Most runs a grouped task carries (grouping is for executors with a per-task cost)."""

_TASKS_PER_WORKER = 4

Key = tuple[str, int]
GroupKey = tuple[str, int, int]


def sweep_token(output_dir: object) -> str:
    """The token in a sweep's key names: a digest of where the sweep lives."""
    return hashlib.blake2b(str(output_dir).encode(), digest_size=8).hexdigest()


def group_size(runs: int, workers: int) -> int:
    """Runs per task: large enough to amortise per-task cost, small enough to balance."""
    return max(1, min(MAX_GROUP, math.ceil(runs / (max(1, workers) * _TASKS_PER_WORKER))))


class RunGraph:
    """The runs of one sweep as Dask tasks, one key per run.

    Parameters
    ----------
    runs:
        The runs to execute, in run_id order.
    token:
        The sweep's token (:func:`sweep_token`); key names carry it.
    reuse_gmat_context:
        Run in a persistent GMAT host (the worker thread's own, or one its
        pool lends it run by run) (``True``) or in a
        fresh interpreter per run.
    retries:
        How often a run that failed transiently is run again.
    group:
        Runs per task; 1 gives one task per run.
    postprocess:
        A per-run metrics function (:mod:`gmat_sweep.metrics`): each run then
        has a second key, ``("gmat-metrics-<token>", run_id)``, downstream of
        its run key, computing to the run's outcome with its metrics.
    """

    def __init__(
        self,
        runs: Sequence[RunSpec],
        *,
        token: str,
        reuse_gmat_context: bool,
        retries: int,
        group: int = 1,
        postprocess: Postprocess | None = None,
    ) -> None:
        self.runs = list(runs)
        self.token = token
        self.name = RUN_PREFIX + token
        self.group_name = GROUP_PREFIX + token
        self.final_name = self.name if postprocess is None else METRICS_PREFIX + token
        self.reuse_gmat_context = reuse_gmat_context
        self.retries = retries
        self.group = max(1, group)
        self.postprocess = postprocess

    def run_keys(self) -> list[Key]:
        """The key of each run's last node (its metrics node, if any), in run order.

        A computation's result for each is the run's
        :class:`~gmat_sweep.spec.RunOutcome`; the manifest records a run when
        this key finishes.
        """
        return [(self.final_name, spec.run_id) for spec in self.runs]

    @property
    def names(self) -> tuple[str, ...]:
        """Every key name of this graph's tasks."""
        return tuple(dict.fromkeys((self.name, self.group_name, self.final_name)))

    def groups(self) -> list[tuple[GroupKey, list[RunSpec]]]:
        """The grouped tasks: ``(group key, runs)``; one run per group when ``group == 1``."""
        size = self.group
        return [
            (
                (self.group_name, chunk[0].run_id, chunk[-1].run_id),
                chunk,
            )
            for chunk in (
                self.runs[start : start + size] for start in range(0, len(self.runs), size)
            )
        ]

    def layer(self) -> dict[Hashable, Any]:
        """The tasks, keyed by run (and by group when runs are grouped)."""
        reuse, retries = self.reuse_gmat_context, self.retries
        tasks: dict[Hashable, Any]
        if self.group == 1:
            tasks = {(self.name, s.run_id): (run_node, s, reuse, retries) for s in self.runs}
        else:
            tasks = {}
            for key, specs in self.groups():
                tasks[key] = (run_nodes, specs, reuse, retries)
                for position, spec in enumerate(specs):
                    tasks[(self.name, spec.run_id)] = (operator.getitem, key, position)
        if self.postprocess is not None:
            from gmat_sweep.metrics import apply

            for spec in self.runs:
                run_key = (self.name, spec.run_id)
                tasks[(self.final_name, spec.run_id)] = (apply, run_key, spec, self.postprocess)
        return tasks


class Recorder(Protocol):
    """What a sweep's completion callback calls on the driver for each finished run."""

    def record(self, outcome: RunOutcome, *, final: bool = True) -> None:
        """Write ``outcome`` (and its earlier attempts) to the manifest.

        ``final=False`` marks a failed attempt that will be run again.
        """


class Computing(Protocol):
    """The part of a :class:`~gmat_sweep.sweep.Sweep` the scheduler machinery uses."""

    @property
    def backend(self) -> Pool | str | None:
        """The pool the sweep runs on, a backend name, or ``None`` for the default."""

    def _use_backend(self, backend: Pool | str | None) -> None:
        """Run later computations on ``backend``."""

    @property
    def run_graph(self) -> RunGraph:
        """The sweep's runs as a graph."""

    def _begin(self) -> Recorder:
        """Start recording (header, lock, progress bar); idempotent while computing."""

    def _end(self) -> None:
        """Finish recording (compaction, progress bar, wall time)."""


_live: weakref.WeakValueDictionary[str, Computing] = weakref.WeakValueDictionary()
_live_lock = threading.Lock()


def register(name: str, sweep: Computing) -> None:
    """Make the sweep whose run keys are named ``name`` findable from a graph."""
    with _live_lock:
        _live[name] = sweep
    _writer.ensure_registered()


def sweeps_in(keys: Iterable[Hashable]) -> dict[str, Computing]:
    """The live sweeps that own any of ``keys``, by key name."""
    with _live_lock:
        if not _live:
            return {}
        names = set(_live.keys())
        live = dict(_live.items())
    found = {key[0] for key in keys if type(key) is tuple and key and key[0] in names}
    return {name: live[name] for name in found}


class _Recording:
    """The recorders of the sweeps one computation holds, keyed by run-key name."""

    def __init__(self, sweeps: Mapping[str, Computing]) -> None:
        self._sweeps = dict(sweeps)
        self.recorders = {name: sweep._begin() for name, sweep in self._sweeps.items()}

    def record(self, key: Hashable, outcome: RunOutcome, *, final: bool = True) -> None:
        if type(key) is tuple and key and key[0] in self.recorders:
            self.recorders[key[0]].record(outcome, final=final)

    def end(self) -> None:
        for sweep in self._sweeps.values():
            sweep._end()


class ManifestWriter(Callback):
    """The manifest-writer callback of Dask's local schedulers.

    Registered globally (:meth:`dask.callbacks.Callback.register`) once a sweep
    exists, so it fires under any local-scheduler computation of a sweep's
    keys; it ignores computations that hold none.
    """

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._registered = False
        self._lock = threading.Lock()
        self._recordings: dict[int, _Recording] = {}

    def ensure_registered(self) -> None:
        with self._lock:
            if not self._registered:
                self.register()
                self._registered = True

    def _start(self, dsk: Mapping[Hashable, Any]) -> None:
        sweeps = sweeps_in(dsk)
        if sweeps:
            self._recordings[id(dsk)] = _Recording(sweeps)

    def _start_state(self, dsk: Mapping[Hashable, Any], state: dict[str, Any]) -> None:
        if id(dsk) in self._recordings:
            # The scheduler pops from the end of its ready list: runs, lowest run_id last.
            state["ready"].sort(key=dispatch_rank, reverse=True)

    def _posttask(
        self, key: Hashable, result: Any, dsk: Mapping[Hashable, Any], state: Any, worker: Any
    ) -> None:
        recording = self._recordings.get(id(dsk))
        if recording is not None and isinstance(result, RunOutcome):
            recording.record(key, result)

    def _finish(self, dsk: Mapping[Hashable, Any], state: Any, errored: bool) -> None:
        recording = self._recordings.pop(id(dsk), None)
        if recording is not None:
            recording.end()


_writer = ManifestWriter()


def dispatch_rank(key: Hashable) -> int:
    """Where ``key`` goes in a scheduler's queue: by run_id for a sweep's task, else first (-1).

    Dask orders independent tasks by their key names, so on its own it would
    start a sweep's runs from the last (``("gmat-run-…", 9)`` sorts after
    ``(…, 10)``, backwards). Schedulers dispatch a sweep's runs in run_id
    order instead: a sweep stopped half-way holds its first runs.
    """
    if (
        type(key) is tuple
        and len(key) > 1
        and type(key[1]) is int
        and str(key[0]).startswith((RUN_PREFIX, GROUP_PREFIX, METRICS_PREFIX))
    ):
        return key[1]
    return -1


def get(dsk: Any, keys: Any, **kwargs: Any) -> Any:
    """The Dask scheduler of a sweep: run the sweeps in ``dsk`` on their backend.

    This is every :class:`~gmat_sweep.sweep.Sweep`'s ``__dask_scheduler__``.
    The sweeps' tasks go to their backend's :meth:`~gmat_sweep.backends.base.Pool.get`,
    which records every run as it finishes; whatever else the graph holds
    (Dask's finalize step, tasks composed downstream of the runs) then runs
    on the driver with the run outcomes as inputs. The sweeps must share one
    backend, or all use the default, for which a
    :class:`~gmat_sweep.backends.local.LocalPool` on every core is started
    and closed here.
    """
    from dask.local import get_sync

    from gmat_sweep.backends import make_backend
    from gmat_sweep.backends.base import Pool
    from gmat_sweep.errors import BackendError

    tasks: dict[Hashable, Any] = dict(dsk if isinstance(dsk, Mapping) else dsk.__dask_graph__())
    sweeps = sweeps_in(tasks)
    names = {name for sweep in sweeps.values() for name in sweep.run_graph.names}
    mine: dict[Hashable, Any] = {
        key: task for key, task in tasks.items() if type(key) is tuple and key[0] in names
    }
    run_keys = [key for key in mine if key[0] in sweeps]  # type: ignore[index]
    backends = {repr(sweep.backend): sweep.backend for sweep in sweeps.values()}
    if len(backends) > 1:
        described = ", ".join(
            "the default" if b is None else repr(b) if isinstance(b, str) else type(b).__name__
            for b in backends.values()
        )
        raise BackendError(
            f"these sweeps run on different backends ({described}), so one computation cannot "
            "run them together; compute them one by one, or build them with the same backend="
        )
    backend = next(iter(backends.values()), None)
    if not run_keys:  # sweeps of no runs: no pool to start
        outcomes = []
    elif isinstance(backend, Pool):
        outcomes = backend.get(mine, run_keys, **kwargs)
    else:
        # A named or default backend lives for this computation only.
        with make_backend(backend or "local") as pool:
            for sweep in sweeps.values():
                sweep._use_backend(pool)
            try:
                outcomes = pool.get(mine, run_keys, **kwargs)
            finally:
                for sweep in sweeps.values():
                    sweep._use_backend(backend)
    done = dict(zip(run_keys, outcomes, strict=True))
    rest = {key: task for key, task in tasks.items() if key not in mine}
    if not rest:
        return pack(keys, done)
    return get_sync(rest, keys, cache=done)


def _flatten(keys: Any) -> Iterable[Hashable]:
    if isinstance(keys, list):
        for item in keys:
            yield from _flatten(item)
    else:
        yield keys


def run_keys_only(dsk: Mapping[Hashable, Any], keys: Any) -> list[tuple[Computing, Key]] | None:
    """``(sweep, key)`` for every requested key if all are run keys of live sweeps, else None.

    Adapters that execute a sweep's grouped tasks directly (distributed, Ray,
    a user's :class:`~gmat_sweep.backends.base.Pool`) use this to recognise a
    graph made only of sweeps.
    """
    flat = list(_flatten(keys))
    sweeps = sweeps_in(flat)
    pairs: list[tuple[Computing, Key]] = []
    for key in flat:
        if type(key) is not tuple or not key or key[0] not in sweeps:
            return None
        pairs.append((sweeps[key[0]], (key[0], key[1])))
    return pairs


def pack(keys: Any, results: Mapping[Hashable, Any]) -> Any:
    """Arrange ``results`` in the nested-list shape of ``keys``, as a Dask ``get`` returns."""
    if isinstance(keys, list):
        return [pack(item, results) for item in keys]
    return results[keys]


Group = tuple[RunGraph, Hashable | None, list[RunSpec]]
"""A task to send: its graph, its group key (``None`` for a re-sent run) and its runs."""

Round = Callable[[list[Group]], Iterable[tuple[int, list[RunOutcome] | str]]]
"""An executor's way to run groups: yield ``(group index, outcomes)`` as groups
finish, or ``(group index, detail)`` for a group whose executor worker was lost."""


def drive(
    pairs: Sequence[tuple[Computing, Key]],
    run_round: Round,
    *,
    retry_outcomes: bool = False,
    postprocess_here: bool = False,
) -> dict[Hashable, RunOutcome]:
    """Execute the runs behind ``pairs`` as their graphs' grouped tasks, recording each.

    The shared body of the adapters whose executors hand back futures
    (distributed, Ray, a user's :class:`~gmat_sweep.backends.base.Pool`).
    A group whose executor worker was lost becomes failed attempts of its
    runs, which are sent again (up to the sweep's ``retries``) in a next
    round. ``retry_outcomes`` also re-sends runs whose outcome failed
    transiently, and ``postprocess_here`` computes the runs' metrics on the
    driver, for executors whose tasks do neither by themselves (a user's
    pool). Returns the final outcome of every run, by run key.
    """
    from gmat_sweep.backends._subprocess import worker_died

    names = {sweep.run_graph.final_name: sweep for sweep, _ in pairs}
    active = _Recording(names)
    attempts: dict[Key, int] = {}
    results: dict[Hashable, RunOutcome] = {}
    todo: list[Group] = []
    try:
        for name, sweep in names.items():
            graph = sweep.run_graph
            wanted = {key[1] for _, key in pairs if key[0] == name}
            for group_key, specs in graph.groups():
                chosen = [spec for spec in specs if spec.run_id in wanted]
                if chosen:
                    todo.append((graph, group_key if chosen == specs else None, chosen))
        while todo:
            groups, todo = todo, []
            for index, got in run_round(groups):
                graph, _, specs = groups[index]
                lost = isinstance(got, str)
                outcomes = (
                    [worker_died(spec, got) for spec in specs] if isinstance(got, str) else got
                )
                for spec, outcome in zip(specs, outcomes, strict=True):
                    key = (graph.final_name, spec.run_id)
                    transient = outcome.failure is not None and outcome.failure.transient
                    again = (lost or retry_outcomes) and transient
                    if again and attempts.get(key, 0) < graph.retries:
                        attempts[key] = attempts.get(key, 0) + 1
                        active.record(key, outcome, final=False)
                        todo.append((graph, None, [spec]))
                        continue
                    if postprocess_here and graph.postprocess is not None:
                        from gmat_sweep.metrics import apply

                        outcome = apply(outcome, spec, graph.postprocess)
                    active.record(key, outcome)
                    results[key] = outcome
    finally:
        active.end()
    return results
