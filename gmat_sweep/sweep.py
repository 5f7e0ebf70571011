"""Sweep orchestrator: owns the run iterable, backend, manifest, and output dir.

The single public class is :class:`Sweep`, the result of :func:`~gmat_sweep.sweep`
and its siblings. It binds a list of :class:`~gmat_sweep.spec.RunSpec` to a
backend :class:`~gmat_sweep.backends.base.Pool` and is a **Dask collection**:
its graph has one key per run (:mod:`gmat_sweep.graph`), ``compute()`` runs
it on the backend's scheduler, and a completion callback records each
finished run as a :class:`~gmat_sweep.manifest.ManifestEntry` with an
fsynced append, so a mid-sweep Ctrl-C (or SIGKILL) leaves a parseable
manifest on disk. ``dask.compute(a, b)`` runs two sweeps in one graph, each
with its own manifest; ``persist()`` on a distributed backend returns at once
while the manifest fills in.

The class does not own the pool's lifecycle — wrap the supplied
:class:`~gmat_sweep.backends.base.Pool` in a ``with`` block at the call site
(or call ``close()``) so worker processes are cleaned up. The thin
:func:`gmat_sweep.api.sweep` wrapper takes care of this for the common case.

Retries: a run that failed because its worker process died or because it
exceeded its timeout is run again, up to ``retries`` times (default
:data:`DEFAULT_RETRIES`), as part of executing the graph; a run that failed
inside GMAT is deterministic and is not retried. Every attempt is a manifest
line; the last one wins.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import platform
import threading
import time
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NoReturn, cast

from dask.base import DaskMethodsMixin

from gmat_sweep import graph, plan, storage
from gmat_sweep.backends import check_backend, make_backend
from gmat_sweep.backends.base import Pool
from gmat_sweep.containment import escape_check
from gmat_sweep.engine import ensure_engine
from gmat_sweep.errors import MissionChangedError, SweepConfigError
from gmat_sweep.lock import hold
from gmat_sweep.manifest import (
    Manifest,
    ManifestEntry,
    unreadable_ok_runs,
)
from gmat_sweep.metrics import Postprocess
from gmat_sweep.mission import checked_script
from gmat_sweep.plan import installed_version as _version
from gmat_sweep.progress import progress_bar
from gmat_sweep.spec import (
    LOG_NAME,
    PathLike,
    RunOptions,
    RunOutcome,
    RunSpec,
    RunStatus,
    SweepSpec,
    is_url,
    local_path,
)

if TYPE_CHECKING:
    import dask.dataframe as dd
    import pandas as pd

    from gmat_sweep.analysis import Reduce, Stopping, ToleranceBound

DEFAULT_RETRIES = 1
"""Automatic re-runs of a run whose worker died or that timed out."""

MANIFEST_NAME = "manifest.jsonl"


class Sweep(DaskMethodsMixin):
    """The result of :func:`~gmat_sweep.sweep`: a sweep's runs, its manifest and its results.

    Every entry point (:func:`~gmat_sweep.sweep`, :func:`~gmat_sweep.monte_carlo`,
    :func:`~gmat_sweep.latin_hypercube`, :func:`~gmat_sweep.sobol`,
    :func:`~gmat_sweep.morris`) returns one, completed or (``compute=False``)
    not yet run, and :func:`~gmat_sweep.open_sweep` reopens one from its
    directory; the constructor below binds run specs, a pool and a manifest
    path, for code that builds sweeps itself. A ``Sweep`` is a Dask
    collection: :meth:`compute` runs it, ``dask.compute(a, b)`` runs several
    in one graph, :meth:`persist` starts it in the background on a
    distributed backend, :meth:`visualize` draws its graph and
    :meth:`to_delayed` hands out one node per run.

    Parameters
    ----------
    runs:
        The :class:`RunSpec` instances to dispatch; ``run_id`` values must be
        unique and number the runs ``0..n-1`` (in any order; :meth:`resume`
        rebuilds run ``i`` as the ``i``-th run of ``parameter_spec``), and each
        run's ``output_dir`` must lie under ``output_dir``.
    backend:
        A constructed :class:`Pool`. The caller owns its lifecycle —
        typically a ``with LocalJoblibPool(...) as pool:`` block. A backend
        name (``"local"``, ``"dask"``, ``"joblib"``, ``"ray"``, a Dask
        scheduler address) or ``None`` (a
        :class:`~gmat_sweep.backends.local.LocalPool` on every core) starts a
        pool for each computation and closes it afterwards.
    manifest_path:
        Where the JSON Lines manifest will be written. Parent directories
        are created on :meth:`run`.
    output_dir:
        Sweep root the per-run output directories live under. Used as the
        anchor for the relative paths the manifest records.
    script_path:
        The ``.script`` every run loads. Hashed via
        :func:`canonical_script_sha256` for the manifest header.
    parameter_spec:
        The original sweep parameterisation (e.g. the materialised grid) —
        recorded verbatim in the manifest header for reproducibility.
    sweep_seed:
        Optional integer seed recorded on the manifest (the parent seed the
        stochastic entry points drew ``runs`` from); anything else is refused
        with :class:`~gmat_sweep.errors.SweepConfigError`.
    progress:
        Whether to draw a :mod:`tqdm` bar (ETA, failed count).
    retries:
        Automatic re-runs of a run whose worker died or that timed out
        (default :data:`DEFAULT_RETRIES`).
    storage_options:
        fsspec options (endpoint, credentials) for an ``output_dir`` URL.
        Never written to the manifest.
    postprocess:
        Per-run metrics ``f(outputs, overrides) -> {name: scalar}`` (or an
        importable ``"module:function"``), computed on the worker that ran
        each run, after it (:mod:`gmat_sweep.metrics`); see :meth:`metrics`.

    Raises
    ------
    SweepConfigError
        Two runs share a ``run_id``, a run's ``output_dir`` is outside
        ``output_dir``, or ``retries`` is not a whole number >= 0.
    BackendError
        ``backend`` is not a :class:`Pool`, a backend name or address, or ``None``.
    """

    def __init__(
        self,
        *,
        runs: Sequence[RunSpec],
        backend: Pool | str | None,
        manifest_path: PathLike,
        output_dir: PathLike,
        script_path: Path,
        parameter_spec: Mapping[str, Any],
        sweep_seed: int | None = None,
        progress: bool = True,
        retries: int = DEFAULT_RETRIES,
        storage_options: Mapping[str, Any] | None = None,
        postprocess: Postprocess | None = None,
    ) -> None:
        runs = _checked_runs(runs)
        if not isinstance(parameter_spec, Mapping):
            raise SweepConfigError(
                f"parameter_spec={parameter_spec!r} of type {type(parameter_spec).__name__} is "
                "not a mapping; pass the sweep's parameterisation, recorded in the manifest "
                "header, e.g. {'_kind': 'grid', 'grid': grid}"
            )
        counts = Counter(spec.run_id for spec in runs)
        duplicates = sorted(run_id for run_id, count in counts.items() if count > 1)
        if duplicates:
            raise SweepConfigError(
                f"run_id values must be unique; {duplicates[:10]} appear more than once. "
                "Number the runs 0..n-1, as expand_grid_to_run_specs does."
            )
        outside = sorted(run_id for run_id in counts if not 0 <= run_id < len(runs))
        if outside:  # from_manifest and resume rebuild run i as the i-th run of the spec
            raise SweepConfigError(
                f"run_id values must be 0..n-1 for a sweep of n={len(runs)} runs; "
                f"{outside[:10]} are not. Number the runs 0..n-1, as "
                "expand_grid_to_run_specs does."
            )
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise SweepConfigError(f"retries={retries!r}: use a whole number >= 0")
        if sweep_seed is not None:  # recorded on the manifest, whose header reads int | null
            from gmat_sweep.distributions import checked_integer  # scipy: only with a seed

            sweep_seed = checked_integer("sweep_seed=", sweep_seed, "give an integer or None")
        check_backend(backend)
        refuse_a_file(output_dir, "output_dir")
        _refuse_runs_outside(runs, output_dir)
        self._runs: list[RunSpec] | None = runs
        self._backend = backend
        self._manifest_path = manifest_path
        self._output_dir = output_dir
        self._script_path = Path(script_path)
        self._parameter_spec = dict(parameter_spec)
        self._sweep_seed = sweep_seed
        self._progress = progress
        self._retries = retries
        self._storage_options = dict(storage_options or {})
        self._postprocess = postprocess
        self._manifest: Manifest | None = None
        self._from_manifest = False
        self._verified = False
        self._wall_s: float | None = None
        self._recorder: _Recorder | None = None
        self._background: threading.Thread | None = None
        self._background_errors: list[BaseException] = []  # what a persist() thread raised
        self._prepare: Callable[[], None] | None = None
        self._recorded: set[int] = set()
        self._held: contextlib.ExitStack | None = None
        self._begun_hold = False
        self._mission: plan.MissionHashes | None = None
        """The mission's files as the runs of this sweep must find them (see :meth:`_end`)."""
        self._changed: MissionChangedError | None = None
        self._allow_script_drift = False  # as from_manifest was given it
        self._plan(self._runs)

    # -- the graph -----------------------------------------------------------

    def _plan(self, runs: Sequence[RunSpec]) -> None:
        """Make ``runs`` what the next computation executes."""
        pool = self._backend if isinstance(self._backend, Pool) else None
        self._graph = graph.RunGraph(
            runs,
            token=graph.sweep_token(self._output_dir),
            reuse_gmat_context=True if pool is None else pool.reuse_gmat_context,
            retries=self._retries,
            group=1 if pool is None else pool.group_for(len(runs)),
            postprocess=self._postprocess,
        )
        graph.register(self._graph.final_name, self)

    def _use_backend(self, backend: Pool | str | None) -> None:
        """Run later computations on ``backend`` (a pool, a name, ``None``: the default)."""
        self._backend = backend
        self._plan(self._graph.runs)

    @property
    def run_graph(self) -> graph.RunGraph:
        """The runs the next computation executes, as a graph."""
        return self._graph

    @property
    def backend(self) -> Pool | str | None:
        """The pool this sweep runs on, a backend name, or ``None`` for the default."""
        return self._backend

    def __dask_graph__(self) -> Any:
        from dask.highlevelgraph import HighLevelGraph

        layer: dict[Any, Any] = self._graph.layer()
        return HighLevelGraph.from_collections(self._graph.name, layer, ())

    def __dask_keys__(self) -> list[Hashable]:
        return list(self._graph.run_keys())

    def __dask_layers__(self) -> tuple[str, ...]:
        return (self._graph.name,)

    def __dask_tokenize__(self) -> Hashable:
        return ("gmat_sweep.Sweep", self._graph.token, tuple(s.run_id for s in self._graph.runs))

    __dask_scheduler__ = staticmethod(graph.get)
    __dask_optimize__ = None  # every task is a GMAT run: nothing to fuse or cull

    def __dask_postcompute__(self) -> tuple[Any, tuple[Any, ...]]:
        return self._finish, ()

    def __dask_postpersist__(self) -> tuple[Any, tuple[Any, ...]]:
        return self._rebuild, ()

    def __reduce__(self) -> NoReturn:
        # A default distributed Client takes dask.compute's graphs, finalize step included.
        raise TypeError(
            "a Sweep cannot be sent to a distributed scheduler: the driver that holds it "
            "records its runs. dask.compute sent it to the process's default distributed "
            "Client; call .compute() or .persist() on the sweep (with "
            "backend=DaskPool(client=client) to run on that cluster), or pass "
            "scheduler=Sweep.__dask_scheduler__ to dask.compute"
        )

    def _finish(self, outcomes: Sequence[RunOutcome]) -> Sweep:
        """Finalise a computation: record any outcome no callback saw (a foreign scheduler).

        A sweep of no runs gets its manifest header here: no callback began recording.
        """
        unseen = [o for o in outcomes if o.run_id not in self._recorded]
        if unseen or self._manifest is None:
            recorder = self._begin()
            try:
                for outcome in unseen:
                    recorder.record(outcome)
            finally:
                self._end()
        changed, self._changed = self._changed, None
        if changed is not None:
            raise changed
        return self

    def _rebuild(self, dsk: Any, *, rename: Any = None) -> Sweep:
        return self

    def compute(self, **kwargs: Any) -> Sweep:
        """Run every run of this sweep on its backend and record it; return the sweep.

        Runs on the sweep's backend (``kwargs`` such as ``scheduler=`` are
        passed to :func:`dask.compute`). After :meth:`persist`, waits for the
        background computation instead, and raises what it raised.

        Returns
        -------
        Sweep
            ``self``; its manifest holds one entry per finished run.

        Raises
        ------
        SweepLockedError
            Another driver holds the sweep.
        EngineError
            No GMAT engine can be set up (the manifest header records its version).
        BackendError
            The backend's GMAT processes cannot start.
        OSError
            The sweep directory cannot be written.

        See Also
        --------
        persist : start the runs in the background on a distributed backend.
        dask.compute : run several sweeps in one graph (``dask.compute(a, b)``).

        Examples
        --------
        >>> planned = sweep("mission.script", {"Sat.Cd": [2.0, 2.4]},
        ...                 compute=False)  # doctest: +SKIP
        >>> planned.compute().final()  # doctest: +SKIP
        """
        if self._background is not None:
            self._background.join()
            self._background = None
            if self._background_errors:
                raise self._background_errors.pop(0)
            return self
        self._compute_runs(**kwargs)
        self._continue(**kwargs)
        return self

    def _compute_runs(self, **kwargs: Any) -> None:
        """Run the runs planned for this computation (one Dask computation)."""
        kwargs.setdefault("scheduler", graph.get)
        super().compute(**kwargs)  # type: ignore[no-untyped-call]

    def _continue(self, **kwargs: Any) -> None:
        """Grow an adaptive sweep batch by batch until its stop rule holds; record why.

        Does nothing for a sweep without an ``until`` rule, or while runs are
        missing (a resume of only the failed runs): the rule is checked on
        complete batches only, so every decision is the one an uninterrupted
        sweep takes. A named or default backend's pool is started once for all
        the batches.
        """
        manifest = self._manifest
        if (
            manifest is None
            or "until" not in manifest.parameter_spec
            or manifest.find_missing(range(manifest.run_count))
        ):
            return
        # Imported here, not above: it brings pandas into a driver that may not need it.
        from gmat_sweep.analysis import grow_until, stopping_record

        with contextlib.ExitStack() as stack:
            if self._acquire("run"):
                stack.callback(self._release)

            def grow(n_more: int) -> None:
                if not isinstance(self._backend, Pool):
                    stack.enter_context(self._own_pool())
                self._grow(n_more, **kwargs)

            record = stopping_record(grow_until(self, grow))
            if manifest.parameter_spec.get("stopped") != record:
                self._rewrite_spec({**manifest.parameter_spec, "stopped": record})

    @property
    def stopping(self) -> Stopping | None:
        """Why an adaptive sweep (``monte_carlo(..., until=...)``) stopped, or ``None``.

        A :class:`~gmat_sweep.analysis.Stopping` (reason, runs, estimate,
        half-width) once the sweep has stopped; ``None`` for any other sweep,
        and for an adaptive sweep still to be resumed.
        """
        from gmat_sweep.analysis import recorded_stopping

        return recorded_stopping(self.manifest.parameter_spec)

    @contextlib.contextmanager
    def _own_pool(self) -> Iterator[Pool]:
        """The sweep's pool; a named or default backend's is started here and closed after."""
        backend = self._backend
        if isinstance(backend, Pool):
            yield backend
            return
        pool = make_backend(backend or "local")
        self._use_backend(pool)
        try:
            yield pool
        finally:
            pool.close()
            self._use_backend(backend)

    def persist(self, **kwargs: Any) -> Sweep:
        """Start the sweep; on a distributed backend return at once while runs go on.

        The manifest fills in as runs finish; :meth:`compute` waits for the
        end. On a local backend this computes the sweep, as Dask's local
        schedulers persist eagerly.

        Returns
        -------
        Sweep
            ``self``.

        Raises
        ------
        SweepLockedError, EngineError, BackendError, OSError
            On a local backend, as :meth:`compute`.

        See Also
        --------
        compute : wait for the runs.

        Examples
        --------
        >>> from gmat_sweep import DaskPool
        >>> with DaskPool(n_workers=4) as pool:  # doctest: +SKIP
        ...     planned = sweep("mission.script", {"Sat.Cd": [2.0, 2.4]}, backend=pool,
        ...                     compute=False)
        ...     planned.persist()  # returns at once
        ...     planned.compute()  # waits for the end
        """
        from gmat_sweep.backends.dask import DaskPool

        if not isinstance(self._backend, DaskPool):
            return self.compute(**kwargs)
        errors = self._background_errors = []

        def work() -> None:
            try:
                Sweep.compute(self, **kwargs)
            except BaseException as exc:  # re-raised by compute()
                errors.append(exc)

        thread = threading.Thread(target=work, name="gmat-sweep-persist", daemon=True)
        thread.start()
        self._background = thread
        return self

    def to_delayed(self) -> list[Any]:
        """One :class:`dask.delayed.Delayed` per run, computing to its :class:`RunOutcome`.

        These are the keys a computation of this sweep executes. Computed
        with a local Dask scheduler they write the manifest like
        :meth:`compute` does, so a sweep composes into a larger Dask
        workflow; on a distributed client use :meth:`compute` or
        :meth:`persist`, whose callbacks record the runs.

        Returns
        -------
        list of dask.delayed.Delayed
            One per run, in run_id order.

        See Also
        --------
        compute : run them all and record them.

        Examples
        --------
        >>> import dask
        >>> nodes = planned.to_delayed()  # doctest: +SKIP
        >>> outcomes = dask.compute(*nodes, scheduler="threads")  # doctest: +SKIP
        >>> [outcome.status for outcome in outcomes]  # doctest: +SKIP
        """
        from dask.delayed import Delayed

        hlg = self.__dask_graph__()
        name = self._graph.name
        return [Delayed(key, hlg, layer=name) for key in self._graph.run_keys()]  # type: ignore[no-untyped-call]

    # -- recording -----------------------------------------------------------

    def _begin(self) -> _Recorder:
        """Start recording a computation: header (first time), progress bar; idempotent."""
        if self._recorder is not None:
            return self._recorder
        self._begun_hold = self._acquire("run")
        if self._manifest is None:
            mission = self._mission = plan.MissionHashes.of(self._script_path)
            manifest = Manifest(
                script_sha256=mission.script,
                gmat_sweep_version=_version("gmat_sweep"),
                gmat_run_version=_version("gmat-run"),
                gmat_install_version=ensure_engine().version,
                python_version=platform.python_version(),
                os_platform=platform.platform(),
                sweep_seed=self._sweep_seed,
                parameter_spec=self._parameter_spec,
                run_count=len(self._all_runs()),
                backend=_backend_name(self._backend),
                script_includes=dict(mission.includes),
                script_inputs=None if mission.inputs is None else dict(mission.inputs),
                script_path=str(self._script_path.resolve()),
                numpy_version=_version("numpy"),
                scipy_version=_version("scipy"),
            )
            if self._prepare is not None:
                self._prepare()
                self._prepare = None
            storage.make_dirs(self._output_dir, self._storage_options)
            manifest.save(self._manifest_path, storage_options=self._storage_options)
            self._manifest = manifest
        elif self._mission is None:
            self._mission = plan.MissionHashes.of(self._script_path)
        self._recorded = set()
        self._recorder = _Recorder(self, len(self._graph.runs))
        return self._recorder

    def _end(self) -> None:
        """Finish recording a computation: compact the manifest, close the bar."""
        recorder, self._recorder = self._recorder, None
        if recorder is None:
            return
        try:
            self._check_mission()
            self.manifest.compact()
        finally:
            recorder.close()
            self._wall_s = recorder.wall_s()
            if self._begun_hold:
                self._release()

    def _check_mission(self) -> None:
        """Record in the manifest, and raise from the computation, a mission edited mid-sweep.

        Workers load the script, its includes and the files it reads as each
        run starts, so a run started after an edit runs the edited mission.
        The files are hashed again when a computation ends and compared with
        :attr:`_mission`: each change is added to the header's
        ``mission_changed`` and :meth:`_finish` raises it.
        """
        if self._mission is None:
            return
        try:
            problems = plan.mission_changes(
                self._mission, self._script_path, when="while the sweep ran", was="at the start"
            )
        except SweepConfigError as exc:  # deleted or unreadable now
            problems = [str(exc)]
        manifest = self.manifest
        new = [problem for problem in problems if problem not in manifest.mission_changed]
        if not new:
            return
        manifest.mission_changed = [*manifest.mission_changed, *new]
        manifest.rewrite_header()
        self._changed = MissionChangedError(
            "; ".join(new) + ". Runs load the mission as they start, so the runs started after "
            "the edit ran the edited files: this sweep's results may mix two missions under "
            "the hashes its manifest records (its header now lists the change, and a resume "
            "refuses it). Restore the files and run the sweep again from the start "
            "(Sweep.run(), or gmat-sweep run into a new --out), or keep the edit and start a "
            "new sweep of it in another directory"
        )

    def _acquire(self, what: str) -> bool:
        """Hold the sweep (one writer per sweep) unless this sweep holds it already."""
        if self._held is not None:
            return False
        stack = contextlib.ExitStack()
        stack.enter_context(hold(self._output_dir, self._storage_options, what=what))
        self._held = stack
        return True

    def _release(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            held.close()

    def run(self) -> Sweep:
        """Run every run from the start, under a new manifest header; return self.

        Each finished run is one fsynced manifest line, so a Ctrl-C leaves a
        parseable manifest of the runs that finished; :exc:`KeyboardInterrupt`
        propagates so the caller's ``with``-managed pool exits.

        Returns
        -------
        Sweep
            ``self``.

        Raises
        ------
        SweepLockedError, EngineError, BackendError, OSError
            As :meth:`compute`.

        See Also
        --------
        compute : run the runs planned now (after :meth:`resume` planning, the
            failed and missing ones).
        resume : finish a sweep instead of starting it again.

        Examples
        --------
        >>> planned = sweep("mission.script", {"Sat.Cd": [2.0, 2.4]},
        ...                 compute=False)  # doctest: +SKIP
        >>> planned.run().manifest.find_failed()  # doctest: +SKIP
        []
        """
        self._manifest = None
        self._plan(self._all_runs())
        return self.compute()

    @classmethod
    def from_manifest(
        cls,
        manifest_path: PathLike,
        script_path: str | Path,
        *,
        backend: Pool | str | None,
        allow_script_drift: bool = False,
        allow_version_drift: bool = False,
        progress: bool = True,
        retries: int = DEFAULT_RETRIES,
        storage_options: Mapping[str, Any] | None = None,
    ) -> Sweep:
        """Rebuild a :class:`Sweep` from a manifest written by a prior run, to :meth:`resume` it.

        The script (and every file it ``#Include``\\ s) must still match the
        hashes the manifest recorded; the runs are rebuilt from the manifest's
        ``parameter_spec``.

        Parameters
        ----------
        manifest_path:
            Path to the existing ``manifest.jsonl``. Its parent is treated as
            the sweep's ``output_dir`` and must still exist on disk —
            successful runs' Parquet files are read from there as-is, so a
            sweep directory moved or copied elsewhere resumes in place.
        script_path:
            Path to the GMAT ``.script`` to load. The file's canonical SHA-256
            must equal the manifest's ``script_sha256`` unless
            ``allow_script_drift`` is set.
        backend:
            A constructed :class:`Pool` (the caller owns its lifecycle), or a
            backend name or ``None`` as for the constructor.
        allow_script_drift:
            ``False`` (default) raises :class:`SweepConfigError` on a hash
            mismatch with both hashes in the message. ``True`` proceeds
            anyway and emits a :class:`RuntimeWarning`.
        allow_version_drift:
            ``False`` (default) raises :class:`SweepConfigError` when the
            rebuilt runs' overrides differ from the recorded ones, or the GMAT
            engine (or, for stochastic sweeps, numpy or scipy) is another
            version than the sweep ran with; ``True`` warns and proceeds. See
            :func:`gmat_sweep.plan.check_recorded`.
        progress, retries:
            As for the constructor.
        storage_options:
            fsspec options when ``manifest_path`` is a URL (e.g. ``s3://...``).

        Raises
        ------
        SweepConfigError
            If ``manifest_path``'s parent directory does not exist, the script
            hash drifted and ``allow_script_drift`` is ``False``, the
            manifest's ``parameter_spec`` carries an unknown ``_kind`` or
            describes more than :data:`gmat_sweep.plan.MAX_RUNS` runs, or the
            rebuilt runs do not match the recorded ones
            (:func:`gmat_sweep.plan.check_recorded`).
        ManifestCorruptError
            The manifest cannot be parsed.
        EngineError
            No GMAT engine can be set up to compare its version with the
            recorded one.

        See Also
        --------
        gmat_sweep.open_sweep : open a sweep from its directory (the recorded
            script and the default backend).
        resume : run what the manifest lacks.

        Examples
        --------
        >>> from gmat_sweep import LocalPool, Sweep
        >>> with LocalPool(4) as pool:  # doctest: +SKIP
        ...     study = Sweep.from_manifest("leo-study/manifest.jsonl",
        ...                                 "moved/leo_basic.script", backend=pool)
        ...     study.resume()
        """
        sweep = cls._opened(
            manifest_path,
            storage_options,
            backend=backend,
            progress=progress,
            retries=retries,
        )
        sweep._verify(
            checked_script(script_path, "script_path"),
            allow_script_drift=allow_script_drift,
            allow_version_drift=allow_version_drift,
        )
        return sweep

    @classmethod
    def _opened(
        cls,
        manifest_path: PathLike,
        storage_options: Mapping[str, Any] | None,
        *,
        backend: Pool | str | None = None,
        progress: bool = True,
        retries: int = DEFAULT_RETRIES,
    ) -> Sweep:
        """The sweep a manifest describes, read from the manifest alone (no script, no GMAT)."""
        if is_url(manifest_path):
            root: PathLike = str(manifest_path).rsplit("/", 1)[0]
        else:
            manifest_path = local_path(manifest_path).resolve()
            root = manifest_path.parent
        if not storage.exists(root, storage_options):
            raise SweepConfigError(
                f"the sweep directory {str(root)!r} does not exist, so the outputs of the runs "
                "that finished cannot be found; pass the manifest.jsonl inside the sweep's "
                "output directory"
            )
        manifest = Manifest.load(manifest_path, storage_options=storage_options)
        sweep = cls(
            runs=[],
            backend=backend,
            manifest_path=manifest_path,
            output_dir=root,
            script_path=Path(manifest.script_path),
            parameter_spec=manifest.parameter_spec,
            sweep_seed=manifest.sweep_seed,
            progress=progress,
            retries=retries,
            storage_options=storage_options,
            postprocess=manifest.parameter_spec.get("postprocess"),
        )
        sweep._manifest = manifest
        sweep._from_manifest = True
        sweep._runs = None  # rebuilt from the parameter_spec when first needed
        return sweep

    def _verify(self, script: Path, *, allow_script_drift: bool, allow_version_drift: bool) -> None:
        """Check ``script`` and the manifest against each other before runs are added to it.

        The script (and every file it ``#Include``\\ s) must hash as recorded,
        and the rebuilt runs must match the recorded ones
        (:func:`gmat_sweep.plan.check_recorded`); then the failed and missing
        runs are what the next computation runs.
        """
        manifest = self.manifest
        if not script.is_file():
            raise SweepConfigError(
                f"script {str(script)!r} does not exist; pass the .script the sweep ran"
            )
        # Hashed once (the input files can be large kernels): compared here, kept for _end.
        current = plan.MissionHashes.of(script)
        plan.refuse_or_warn(
            plan.script_drift(manifest, script, current),
            allowed=allow_script_drift,
            refusal=". Resuming would mix results of two different missions. Restore the "
            "original files, or pass allow_script_drift=True (CLI: --allow-script-drift) if the "
            "change cannot affect results.",
            flag="allow_script_drift",
        )
        plan.refuse_or_warn(
            [f"{problem} (a change the sweep recorded)" for problem in manifest.mission_changed],
            allowed=allow_script_drift,
            refusal=". The mission changed while the sweep ran, so its finished runs may be of "
            "two missions, and a resume would add to them. Run the sweep again from the start "
            "(Sweep.run(), or a new sweep in another directory), or pass "
            "allow_script_drift=True (CLI: --allow-script-drift) to resume anyway.",
            flag="allow_script_drift",
        )
        self._mission = current
        self._allow_script_drift = allow_script_drift
        self._script_path = script
        self._runs = runs = self._expand(self._parameter_spec, script.resolve())
        plan.check_recorded(
            manifest,
            runs,
            engine_version=ensure_engine().version,
            allow_version_drift=allow_version_drift,
        )
        self._verified = True
        wanted = set(manifest.find_failed())
        wanted.update(manifest.find_missing(spec.run_id for spec in runs))
        self._plan([spec for spec in runs if spec.run_id in wanted])

    def _check_mission_files(self) -> None:
        """Check the mission's files before a resume or an extend of a manifest's sweep adds runs.

        A sweep opened with :func:`open_sweep` is verified now, against the
        script its manifest records. One that :meth:`from_manifest` verified
        is checked again: its runs load the files as they start, so an edit
        since then would run a mission the checks never saw. Either is
        refused (or, with ``allow_script_drift``, warned about) before any run.
        """
        if not self._verified:
            self._verify(self._script_path, allow_script_drift=False, allow_version_drift=False)
            return
        verified = self._mission
        assert verified is not None  # _verify hashed it
        current = plan.MissionHashes.of(self._script_path)
        plan.refuse_or_warn(
            plan.mission_changes(
                verified,
                self._script_path,
                when="since from_manifest checked it",
                was="then",
                current=current,
            ),
            allowed=self._allow_script_drift,
            refusal=". Resuming would run the edited mission under the checks of the old one. "
            "Restore the files and call resume() again, or call Sweep.from_manifest again to "
            "check the edited files (allow_script_drift=True if the change cannot affect "
            "results).",
            flag="allow_script_drift",
        )
        self._mission = current

    def _expand(self, parameter_spec: Mapping[str, Any], script: Path) -> list[RunSpec]:
        """The runs ``parameter_spec`` describes, as workers receive them."""
        run_options = cast(RunOptions, dict(parameter_spec.get("run_options") or {}))
        if self._storage_options:
            run_options["storage_options"] = dict(self._storage_options)
        return plan.expand(parameter_spec, script, self._output_dir, run_options)

    def _all_runs(self) -> list[RunSpec]:
        if self._runs is None:
            self._runs = self._expand(self._parameter_spec, self._script_path)
        return self._runs

    def resume(self, *, only: str = "all", timeout_s: float | None = None) -> Sweep:
        """Re-run only the failed and missing runs from the loaded manifest.

        Missing runs include ``ok`` runs whose output files are gone or
        unreadable (:func:`~gmat_sweep.manifest.unreadable_ok_runs`). Each
        outcome is a new manifest entry with the run's ``run_id`` (the last
        one wins); their recorded overrides are checked on a GMAT host first,
        like a new sweep's. Returns ``self`` for chaining.

        Parameters
        ----------
        only:
            ``"all"`` (default) re-runs failed and missing runs, ``"failed"``
            only the failed ones, ``"missing"`` only the missing ones (an ok
            run whose output files are gone counts as missing).
        timeout_s:
            A per-run timeout in seconds for the re-run runs, replacing the
            one the sweep was started with; ``None`` keeps the recorded one.
            It is not written to the manifest header.

        Raises
        ------
        RuntimeError
            Called on a :class:`Sweep` not produced by :meth:`from_manifest`
            or :func:`~gmat_sweep.open_sweep`.
        SweepConfigError
            An unknown ``only``, a ``timeout_s`` that is not a positive
            number, a script that drifted, a manifest that does not match the
            runs it describes, a refused override, or an object-store sweep
            directory that cannot be written (all checked before any run).
        SweepLockedError
            Another driver holds the sweep.
        ManifestCorruptError
            The manifest, read again under the hold, cannot be parsed.
        EngineError, BackendError, OSError
            As :meth:`compute`.

        See Also
        --------
        gmat_sweep.open_sweep, from_manifest : get a sweep to resume.
        extend : add runs to a Monte Carlo sweep.

        Examples
        --------
        >>> from gmat_sweep import open_sweep
        >>> study = open_sweep("leo-study").resume()  # doctest: +SKIP
        >>> open_sweep("leo-study").resume(only="failed", timeout_s=600)  # doctest: +SKIP
        """
        if only not in ("all", "failed", "missing"):
            raise SweepConfigError(f"only={only!r}: use 'all', 'failed' or 'missing'")
        if timeout_s is not None:
            from gmat_sweep.api import _check_run_options  # the one timeout rule

            _check_run_options({"timeout_s": timeout_s})
        if not self._from_manifest or self._manifest is None:
            raise RuntimeError(
                "resume() needs a sweep rebuilt from its manifest: use "
                "Sweep.from_manifest(manifest_path, script_path, backend=...).resume() or "
                "open_sweep(path).resume()"
            )
        self._check_mission_files()
        storage.check_writable(self._output_dir, self._storage_options)
        acquired = self._acquire("resume")
        try:
            # Read again under the hold: another driver may have written since from_manifest.
            manifest = self._manifest = Manifest.load(
                self._manifest_path, storage_options=self._storage_options
            )
            runs = self._all_runs()
            failed = set(manifest.find_failed())
            missing = set(manifest.find_missing(spec.run_id for spec in runs))
            # An ok line whose files a machine crash lost is a run still to do.
            missing.update(unreadable_ok_runs(manifest, self._output_dir, self._storage_options))
            wanted = {"all": failed | missing, "failed": failed, "missing": missing}[only]
            todo = [spec for spec in runs if spec.run_id in wanted]
            if timeout_s is not None:
                todo = [
                    dataclasses.replace(
                        spec, run_options={**spec.run_options, "timeout_s": timeout_s}
                    )
                    for spec in todo
                ]
            with contextlib.ExitStack() as stack:
                if todo:
                    # A manifest is data from disk: its overrides are checked like new ones.
                    pool = stack.enter_context(self._own_pool())
                    check_overrides(pool, self._script_path, todo)
                self._plan(todo)
                return self.compute()
        finally:
            if acquired:
                self._release()

    def extend(self, n_more: int, *, backend: Pool | None = None) -> Sweep:
        """Add ``n_more`` runs to a finished Monte Carlo sweep and run them.

        The new runs get run_ids ``n .. n + n_more - 1``; the first ``n`` runs'
        draws are unchanged, so the extended sweep is exactly the sweep you
        would have got with ``n + n_more`` from the start. The manifest header
        is updated in place and every earlier entry is kept. An adaptive
        sweep's stop rule stays in force: it is checked again afterwards, and
        the sweep grows on while it asks for more runs. Latin-hypercube
        designs cannot be extended (their strata depend on ``n``).

        Parameters
        ----------
        n_more:
            How many runs to add, at least 1.
        backend:
            Pool to run them on; ``None`` keeps the sweep's own backend.

        Raises
        ------
        SweepConfigError
            The sweep is not a Monte Carlo sweep, ``n_more`` is not a
            positive whole number, the mission script (or a file it includes)
            changed since a reopened sweep ran (as for :meth:`resume`), or an
            object-store sweep directory cannot be written.
        RuntimeError
            The sweep has not run yet.
        SweepLockedError
            Another driver holds the sweep.
        EngineError, BackendError, OSError
            As :meth:`compute`.

        See Also
        --------
        monte_carlo : ``until=`` grows a sweep batch by batch until an
            estimate converges.

        Examples
        --------
        >>> from gmat_sweep import open_sweep
        >>> study = open_sweep("dispersion")  # doctest: +SKIP
        >>> len(study.extend(100).runs)  # 200 runs, the first 100 unchanged  # doctest: +SKIP
        200
        """
        manifest = self.manifest
        kind = manifest.parameter_spec.get("_kind", "grid")
        if kind != "monte_carlo":
            hint = (
                "a Latin-hypercube design is stratified for its own n, so points cannot be added "
                "without breaking it; run a new, larger latin_hypercube study"
                if kind == "latin_hypercube"
                else "only Monte Carlo sweeps grow by drawing more samples; run a new sweep"
            )
            raise SweepConfigError(f"cannot extend a {kind!r} sweep: {hint}")
        if isinstance(n_more, bool) or not isinstance(n_more, int) or n_more < 1:
            raise SweepConfigError(f"n_more={n_more!r}: use a whole number of runs >= 1")
        if self._from_manifest:
            self._check_mission_files()
        storage.check_writable(self._output_dir, self._storage_options)
        if backend is not None:
            self._backend = backend
        acquired = self._acquire("extend")
        try:
            self._grow(n_more)
            self._continue()
            return self
        finally:
            if acquired:
                self._release()

    def _grow(self, n_more: int, **kwargs: Any) -> None:
        """Add ``n_more`` Monte Carlo runs to the manifest header, then run them.

        The header is rewritten before the runs start, so a driver killed
        mid-batch leaves a manifest whose missing runs ``resume`` finishes. A
        recorded stop (``"stopped"``) is dropped: the sweep is growing again.
        The caller holds the sweep.
        """
        spec = {k: v for k, v in self.manifest.parameter_spec.items() if k != "stopped"}
        grown = {**spec, "n": int(spec["n"]) + n_more}
        runs = self._expand(grown, self._script_path.resolve())
        count = len(self._all_runs())
        self._rewrite_spec(grown, run_count=len(runs))
        self._runs = runs
        self._plan(runs[count:])
        self._compute_runs(**kwargs)

    def _rewrite_spec(
        self, parameter_spec: dict[str, Any], *, run_count: int | None = None
    ) -> None:
        """Record a new ``parameter_spec`` (and run count) in the manifest header, in place."""
        manifest = self.manifest
        manifest.parameter_spec = parameter_spec
        if run_count is not None:
            manifest.run_count = run_count
        manifest.rewrite_header()
        self._parameter_spec = parameter_spec

    def _entry(self, outcome: RunOutcome, spec: RunSpec) -> ManifestEntry:
        paths = {key: self._relative(path) for key, path in outcome.output_paths.items()}
        metrics = outcome.metrics_path
        outcome = dataclasses.replace(
            outcome,
            output_paths=paths,
            previous=(),
            metrics_path=None if metrics is None else self._relative(metrics),
        )
        log_path = self._relative(storage.join(spec.output_dir, LOG_NAME))
        return ManifestEntry.from_outcome(outcome, overrides=spec.overrides, log_path=log_path)

    def _relative(self, location: PathLike) -> PathLike:
        """``location`` relative to the sweep root when it lies inside it."""
        root = str(self._output_dir).rstrip("/")
        text = str(location)
        if is_url(self._output_dir):
            return text[len(root) + 1 :] if text.startswith(root + "/") else text
        # Run outputs are joined onto the root by this library: no symlinks to resolve
        # (resolving costs a stat per path component, twice per run on the driver).
        root, text = os.path.normpath(root), os.path.normpath(text)
        if os.path.isabs(text) and text.startswith(root + os.sep):
            return Path(text[len(root) + 1 :])
        try:
            return Path(os.path.relpath(Path(text).resolve(), Path(root).resolve()))
        except ValueError:
            return location

    # -- results -----------------------------------------------------------

    @property
    def manifest(self) -> Manifest:
        """The sweep's manifest (header plus the last entry of every run).

        Raises :class:`RuntimeError` before the sweep has run.
        """
        if self._manifest is None:
            raise RuntimeError("this sweep has not run yet: call run() first")
        return self._manifest

    @property
    def runs(self) -> list[RunSpec]:
        """The run specs of this sweep, in run_id order."""
        return list(self._all_runs())

    @property
    def output_dir(self) -> PathLike:
        """The sweep root: manifest, ``run-NNNNNN/`` directories."""
        return self._output_dir

    @property
    def manifest_path(self) -> PathLike:
        """Where the manifest lives."""
        return self._manifest_path

    @property
    def seed(self) -> int | None:
        """The parent seed of a stochastic sweep (recorded even when drawn from entropy)."""
        return self._sweep_seed

    @property
    def spec(self) -> SweepSpec:
        """The whole sweep as one record: mission, every run, backend, directories and seed.

        A :class:`~gmat_sweep.spec.SweepSpec` with a lossless JSON round trip
        (:func:`gmat_sweep.spec.encode`), for handing the sweep's exact runs to another
        tool or keeping them beside a study. ``backend`` is the name the
        manifest records; ``backend_kwargs`` holds, for a pool you passed,
        its ``reuse_gmat_context`` and its worker count (``workers``, when
        the pool knows it), as :func:`~gmat_sweep.backends.make_backend`
        takes them, and is empty for a backend given by name.

        Examples
        --------
        >>> planned = sweep("mission.script", {"Sat.Cd": [2.0, 2.4]},
        ...                 compute=False)  # doctest: +SKIP
        >>> [run.overrides for run in planned.spec.runs]  # doctest: +SKIP
        [{'Sat.Cd': 2.0}, {'Sat.Cd': 2.4}]
        """
        kwargs: dict[str, Any] = {}
        if isinstance(self._backend, Pool):
            workers = self._backend.workers
            kwargs = {} if workers is None else {"workers": workers}
            kwargs["reuse_gmat_context"] = self._backend.reuse_gmat_context
        return SweepSpec(
            mission_script_path=self._script_path,
            runs=tuple(self._all_runs()),
            backend=_backend_name(self._backend),
            backend_kwargs=kwargs,
            output_dir=self._output_dir,
            manifest_path=self._manifest_path,
            sweep_seed=self._sweep_seed,
        )

    @property
    def failed_run_ids(self) -> list[int]:
        """run_ids whose last attempt failed."""
        return self.manifest.find_failed()

    def to_dataframe(
        self,
        name: str | None = None,
        *,
        parameters: bool = True,
        partition_rows: int | None = None,
    ) -> dd.DataFrame:
        """Aggregate the sweep's ReportFile outputs into one lazy DataFrame.

        ``name`` selects which report to aggregate when the sweep produced
        multiple ReportFile resources per run; ``None`` (default) picks the
        sole report when exactly one was produced. ``parameters`` and
        ``partition_rows`` (default :data:`gmat_sweep.aggregate.PARTITION_ROWS`)
        are those of :func:`gmat_sweep.aggregate.report_frame`, which gives the
        full contract. Runs with no manifest entry yet are absent.

        Returns
        -------
        dask.dataframe.DataFrame
            Indexed by ``run_id`` with known divisions (``.loc[run_id]`` reads
            one partition's files).

        Raises
        ------
        SweepConfigError, ManifestCorruptError, RunOutputError
            As :func:`gmat_sweep.aggregate.report_frame`.
        RuntimeError
            The sweep has not run yet.

        See Also
        --------
        to_pandas : the same rows in memory, ``(run_id, time)``-indexed.
        final : one row per run.
        resample : every run on one elapsed-time grid.

        Examples
        --------
        >>> lazy = study.to_dataframe()  # doctest: +SKIP
        >>> lazy.loc[17].compute()  # reads run 17's file only  # doctest: +SKIP
        >>> lazy.groupby("Sat.INC")["Sat.Earth.SMA"].max().compute()  # doctest: +SKIP
        """
        from gmat_sweep import aggregate

        return self._lazy(aggregate.report_frame, name, parameters, partition_rows)

    def metrics(self) -> pd.DataFrame:
        """The per-run metrics of the sweep's ``postprocess``, one row per run.

        Indexed by ``run_id``: the metric columns, the parameter columns, then
        ``__status`` (``"ok"``; ``"failed"`` when the run failed or its
        ``postprocess`` raised) and ``__error`` (the run's first error line or
        the function's traceback). Runs without metrics are rows of missing
        values. See :mod:`gmat_sweep.metrics`.

        Raises
        ------
        RuntimeError
            The sweep has not run yet.
        ManifestCorruptError
            A path in the manifest leaves the sweep directory.
        OSError
            A run's metrics file cannot be read.

        See Also
        --------
        add_metrics : compute metrics from stored outputs, without GMAT.

        Examples
        --------
        >>> def final_radius(outputs, overrides):
        ...     return {"radius_km": float(outputs["RF"]["Sat.Earth.SMA"].iloc[-1])}
        >>> study = sweep("mission.script", {"Sat.Cd": [2.0, 2.4]},
        ...               postprocess=final_radius)  # doctest: +SKIP
        >>> study.metrics()["radius_km"]  # doctest: +SKIP
        """
        from gmat_sweep.metrics import metrics_frame

        return metrics_frame(self.manifest, self._output_dir, self._storage_options)

    def add_metrics(self, postprocess: Postprocess) -> Sweep:
        """Compute ``postprocess`` on every ok run's stored outputs, without running GMAT.

        The function runs as a Dask graph (one task per run, on threads),
        each run's metrics are written beside its outputs, and one manifest
        line per run records them (the sweep is held while they are written).
        They replace the metrics recorded before, and ``postprocess`` becomes
        the sweep's: the manifest header records it (when it is an importable
        ``"module:function"``), so runs a later :meth:`resume` or
        :meth:`extend` makes get the same metrics.
        Returns ``self``; read the result with :meth:`metrics`.

        Raises
        ------
        SweepConfigError
            ``postprocess`` is not a function or an importable
            ``"module:function"``.
        RuntimeError
            The sweep has not run yet.
        SweepLockedError
            Another driver holds the sweep.

        See Also
        --------
        metrics : read them back.

        Examples
        --------
        >>> study.add_metrics(final_radius).metrics()["radius_km"]  # doctest: +SKIP
        """
        from gmat_sweep.metrics import compute_stored, describe, resolve

        resolve(postprocess)  # a bad function or name fails before any task
        manifest = self.manifest
        acquired = self._acquire("add_metrics")
        try:
            entries = [e for e in manifest.entries if e.status is RunStatus.OK]
            for entry in compute_stored(
                entries, self._output_dir, postprocess, self._storage_options
            ):
                manifest.append_entry(entry)
            manifest.compact()
            # The runs' metrics are now this function's: resume and extend compute it too.
            spec = {k: v for k, v in manifest.parameter_spec.items() if k != "postprocess"}
            recorded = describe(postprocess)
            if recorded is not None:
                spec["postprocess"] = recorded
            if spec != manifest.parameter_spec:
                self._rewrite_spec(spec)
            self._postprocess = postprocess
        finally:
            if acquired:
                self._release()
        return self

    def sensitivity(
        self, column: str, *, name: str | None = None, reduce: Reduce = "last"
    ) -> pd.DataFrame:
        """Which inputs matter for ``column``; see :func:`gmat_sweep.analysis.sensitivity`.

        Raises :class:`SweepConfigError` and :class:`ImportError` as that
        function does.

        Examples
        --------
        >>> study.sensitivity("Sat.Earth.SMA")  # doctest: +SKIP
        """
        from gmat_sweep.analysis import sensitivity

        return sensitivity(self, column, name=name, reduce=reduce)

    def tolerance_bound(
        self,
        column: str,
        *,
        coverage: float = 0.95,
        confidence: float = 0.95,
        sided: Literal["upper", "lower", "two"] = "upper",
        order: int = 1,
        name: str | None = None,
        reduce: Reduce = "last",
    ) -> ToleranceBound:
        """A Wilks bound on ``column``; see :func:`gmat_sweep.analysis.tolerance_bound`.

        Raises :class:`SweepConfigError` as that function does (too few runs
        says how many are needed).

        Examples
        --------
        >>> study.tolerance_bound("Sat.Earth.SMA", coverage=0.95, confidence=0.95)  # doctest: +SKIP
        """
        from gmat_sweep.analysis import tolerance_bound

        return tolerance_bound(
            self,
            column,
            coverage=coverage,
            confidence=confidence,
            sided=sided,
            order=order,
            name=name,
            reduce=reduce,
        )

    def convergence(
        self,
        column: str,
        *,
        stat: str = "mean",
        confidence: float = 0.95,
        name: str | None = None,
        reduce: Reduce = "last",
    ) -> pd.DataFrame:
        """A running estimate and its interval; see :func:`gmat_sweep.analysis.convergence`.

        Raises :class:`SweepConfigError` as that function does.

        Examples
        --------
        >>> study.convergence("Sat.Earth.SMA", stat="mean").tail(1)  # doctest: +SKIP
        """
        from gmat_sweep.analysis import convergence

        return convergence(self, column, stat=stat, confidence=confidence, name=name, reduce=reduce)

    def resample(
        self,
        step: float | pd.Timedelta,
        *,
        name: str | None = None,
        start: float | pd.Timedelta | None = None,
        stop: float | pd.Timedelta | None = None,
        method: Literal["linear", "cubic"] = "linear",
    ) -> dd.DataFrame:
        """Every run on one elapsed-time grid; see :func:`gmat_sweep.analysis.resample`.

        Raises :class:`SweepConfigError` as that function does.

        Examples
        --------
        >>> study.resample(60.0).compute()  # one row a minute per run  # doctest: +SKIP
        """
        from gmat_sweep.analysis import resample

        return resample(self, step, name=name, start=start, stop=stop, method=method)

    def report(self, path: str | Path, *, name: str | None = None) -> Path:
        """Write one self-contained, reproducible HTML report of the sweep to ``path``.

        Summary, provenance, failures grouped by their first error line,
        timing, parameter coverage and the outcome distributions, with the
        plots inline; see :func:`gmat_sweep.report.write_report`.

        Raises
        ------
        SweepConfigError
            ``path`` is a directory or its directory does not exist, or ``name``
            does not pick one report.
        RuntimeError
            The sweep has not run yet.
        ImportError
            matplotlib is not installed (``pip install matplotlib``, the ``plot`` extra).
        OSError
            ``path`` cannot be written.

        See Also
        --------
        archive : the sweep itself, as one zip.

        Examples
        --------
        >>> study.report("study-report.html")  # doctest: +SKIP
        PosixPath('study-report.html')
        """
        from gmat_sweep.report import write_report

        return write_report(self, path, name=name)

    def archive(self, path: str | Path) -> Path:
        """Write the sweep (manifest, outputs, mission, checksums, rerun recipe) to one zip.

        The zip is byte-identical when written twice; see
        :func:`gmat_sweep.archive.write_archive`.

        Raises
        ------
        SweepConfigError
            ``path`` is a directory or its directory does not exist, or the
            mission (or a file it includes) cannot be read or changed since the sweep ran.
        RuntimeError
            The sweep has not run yet.
        OSError
            The sweep's files cannot be read or ``path`` written.

        See Also
        --------
        report : a readable summary of the sweep.

        Examples
        --------
        >>> study.archive("study.zip")  # doctest: +SKIP
        PosixPath('study.zip')
        """
        from gmat_sweep.archive import write_archive

        return write_archive(self, path, storage_options=self._storage_options)

    def _repr_html_(self) -> str:
        from gmat_sweep.report import summary_html

        return summary_html(self)

    def final(self, name: str | None = None, *, parameters: bool = True, lazy: bool = False) -> Any:
        """One row per run: the last row of report ``name``, its parameters and ``__status``.

        See :func:`gmat_sweep.aggregate.final_frame`. ``lazy=True`` returns
        the same rows as a lazy ``dask.dataframe`` (one task per partition of
        :meth:`to_dataframe`), for sweeps too large to hold in memory.

        Raises
        ------
        SweepConfigError, RuntimeError, ManifestCorruptError, RunOutputError
            As :meth:`to_pandas`.

        See Also
        --------
        to_pandas : every row of every run.

        Examples
        --------
        >>> study.final()["Sat.Earth.SMA"]  # doctest: +SKIP
        >>> study.final().pivot_table(index="Sat.SMA", columns="Sat.INC",
        ...                           values="Sat.Earth.SMA")  # doctest: +SKIP
        >>> study.final(lazy=True)["Sat.Earth.SMA"].max().compute()  # doctest: +SKIP
        """
        from gmat_sweep import aggregate

        if lazy:
            return self._lazy(aggregate.lazy_final_frame, name, parameters, None)
        return self._read(aggregate.final_frame, name, parameters)

    def to_ephemerides(
        self,
        name: str | None = None,
        *,
        parameters: bool = True,
        partition_rows: int | None = None,
    ) -> dd.DataFrame:
        """Aggregate the sweep's EphemerisFile outputs into one lazy DataFrame.

        See :func:`gmat_sweep.aggregate.ephemeris_frame` for the contract;
        it raises as :meth:`to_dataframe` does.

        See Also
        --------
        to_pandas : ``kind="ephemeris"`` gives the same rows in memory.

        Examples
        --------
        >>> study.to_ephemerides("OEMEphem").loc[0].compute()  # doctest: +SKIP
        """
        from gmat_sweep import aggregate

        return self._lazy(aggregate.ephemeris_frame, name, parameters, partition_rows)

    def to_contacts(
        self,
        name: str | None = None,
        *,
        parameters: bool = True,
        partition_rows: int | None = None,
    ) -> dd.DataFrame:
        """Aggregate the sweep's ContactLocator outputs into one lazy DataFrame.

        See :func:`gmat_sweep.aggregate.contact_frame` for the contract;
        it raises as :meth:`to_dataframe` does.

        See Also
        --------
        to_pandas : ``kind="contact"`` gives the same rows in memory.

        Examples
        --------
        >>> study.to_contacts().compute()  # doctest: +SKIP
        """
        from gmat_sweep import aggregate

        return self._lazy(aggregate.contact_frame, name, parameters, partition_rows)

    def to_solver_runs(
        self,
        name: str | None = None,
        *,
        parameters: bool = True,
        partition_rows: int | None = None,
    ) -> dd.DataFrame:
        """Aggregate the sweep's Solver iteration logs (Target, Optimize) into one lazy DataFrame.

        One row per solver pass in each run; see
        :func:`gmat_sweep.aggregate.solver_frame` for the contract. It raises
        as :meth:`to_dataframe` does.

        See Also
        --------
        converged : whether each solver converged in each run.
        to_pandas : ``kind="solver"`` gives the same rows in memory.

        Examples
        --------
        >>> study.to_solver_runs("DC").loc[3].compute()  # doctest: +SKIP
        """
        from gmat_sweep import aggregate

        return self._lazy(aggregate.solver_frame, name, parameters, partition_rows)

    def converged(self, name: str | None = None) -> pd.DataFrame:
        """Whether each Solver converged in each run: one ``boolean`` column per solver.

        Indexed by ``run_id``; ``<NA>`` for a failed or skipped run, or one that did not execute
        that solver; no columns for a mission without solvers. A run whose
        solver did not converge is still ``ok``, but its outputs follow the
        solver's last iterate. A solver that ran several times in a run (a
        Target in a loop) converged when every execution did. See
        :func:`gmat_sweep.aggregate.converged_frame`.

        Raises
        ------
        SweepConfigError
            ``name`` is not a solver any ok run recorded.
        RuntimeError, ManifestCorruptError, RunOutputError
            As :meth:`to_dataframe`.

        Examples
        --------
        >>> converged = study.converged()  # doctest: +SKIP
        >>> study.final().loc[converged.all(axis=1)]  # doctest: +SKIP
        """
        from gmat_sweep import aggregate

        return aggregate.converged_frame(
            self.manifest, self._output_dir, name=name, storage_options=self._storage_options
        )

    def to_pandas(
        self, name: str | None = None, *, kind: str = "report", parameters: bool = True
    ) -> pd.DataFrame:
        """Materialise one output kind as a MultiIndexed pandas frame.

        ``kind="report"`` (default) and ``"ephemeris"`` give a
        ``(run_id, time)`` MultiIndex, ``"contact"`` a ``(run_id,
        interval_id)`` one and ``"solver"`` a ``(run_id, iteration)`` one (see
        :func:`gmat_sweep.aggregate.lazy_multiindex`).
        A failed run is one NaN row with ``__status="failed"``; a run with no
        manifest entry yet is absent.

        Raises
        ------
        SweepConfigError
            An unknown ``kind``, or as :meth:`to_dataframe`.
        RuntimeError, ManifestCorruptError, RunOutputError
            As :meth:`to_dataframe`.

        See Also
        --------
        to_dataframe : the same rows as a lazy Dask frame.
        final : one row per run.

        Examples
        --------
        >>> frame = study.to_pandas()  # doctest: +SKIP
        >>> frame.xs(0, level="run_id")["Sat.Earth.SMA"]  # doctest: +SKIP
        >>> study.to_pandas("OEMEphem", kind="ephemeris")  # doctest: +SKIP
        """
        from gmat_sweep import aggregate

        readers = {
            "report": aggregate.lazy_multiindex,
            "ephemeris": aggregate.lazy_ephemerides,
            "contact": aggregate.lazy_contacts,
            "solver": aggregate.lazy_solver_runs,
        }
        if kind not in readers:
            raise SweepConfigError(
                f"kind={kind!r}: use 'report', 'ephemeris', 'contact' or 'solver'"
            )
        return self._read(readers[kind], name, parameters)

    def _lazy(
        self,
        reader: Callable[..., dd.DataFrame],
        name: str | None,
        parameters: bool,
        partition_rows: int | None,
    ) -> dd.DataFrame:
        """:meth:`_read` of a lazy frame, ``partition_rows`` defaulting to the aggregate's."""
        from gmat_sweep import aggregate

        rows = aggregate.PARTITION_ROWS if partition_rows is None else partition_rows
        return self._read(reader, name, parameters, partition_rows=rows)

    def _read[F](
        self, reader: Callable[..., F], name: str | None, parameters: bool, **options: Any
    ) -> F:
        """``reader``, a function of :mod:`gmat_sweep.aggregate`, over this sweep's outputs."""
        return reader(
            self.manifest,
            self._output_dir,
            name=name,
            parameters=parameters,
            storage_options=self._storage_options,
            **options,
        )

    def __repr__(self) -> str:
        if self._manifest is None:
            count = len(self._all_runs())
            return f"<Sweep of {count} runs of {self._script_path.name}, not run yet>"
        entries = self._manifest.entries
        status = Counter(entry.status for entry in entries)
        count = self._manifest.run_count
        missing = count - len(entries)
        lines = [
            f"Sweep of {count} runs of {self._script_path.name}",
            f"  ok: {status[RunStatus.OK]}   failed: {status[RunStatus.FAILED]}"
            + (f"   missing: {missing}" if missing else ""),
        ]
        failed_ids = self._manifest.find_failed()
        if failed_ids:
            shown = ", ".join(map(str, failed_ids[:10])) + (" ..." if len(failed_ids) > 10 else "")
            lines.append(f"  failed run_ids: {shown}")
        if self._wall_s is not None:
            lines.append(f"  wall time: {self._wall_s:.1f} s")
        lines.append(f"  outputs: {self._output_dir}")
        lines.append(f"  manifest: {self._manifest_path}")
        return "\n".join(lines)

    def script(self, run_id: int) -> str:
        """Run ``run_id`` as a standalone GMAT script: its overrides written into the text.

        Loading the text in GMAT (or the GUI) with no overrides reproduces the
        run bit for bit: see :func:`gmat_sweep.script.render_replay`, whose
        spacecraft starting states are computed by loading the mission once in
        a GMAT process. A spacecraft whose ``CoordinateSystem`` is not
        ``EarthMJ2000Eq`` has its state written in that frame, which GMAT
        converts each way with round-off: such a replay agrees with the run to
        about 1e-10 relative, not bit for bit.

        Raises
        ------
        SweepConfigError
            ``run_id`` is not a run of this sweep.
        BackendError
            The GMAT process that computes the starting state failed.

        See Also
        --------
        runs : every run's overrides.

        Examples
        --------
        >>> from pathlib import Path
        >>> Path("run17.script").write_text(study.script(17))  # doctest: +SKIP
        """
        runs = self._all_runs()
        if not 0 <= run_id < len(runs):
            raise SweepConfigError(
                f"run_id {run_id} is not in this sweep; pass one of 0..{len(runs) - 1}"
            )
        return replay_text(runs[run_id].script_path, runs[run_id].overrides)


def replay_text(script: Path, overrides: Mapping[str, Any]) -> str:
    """The script text of one run, reproducing it bit for bit; see :meth:`Sweep.script`."""
    from gmat_sweep.backends._subprocess import GmatHost
    from gmat_sweep.script import render_replay, resource_of, spacecraft

    touched = spacecraft(script, {resource_of(path) for path in overrides})
    states: dict[str, dict[str, float]] = {}
    if touched:
        host = GmatHost()
        try:
            states = host.initial_states(RunSpec(script, dict(overrides), Path(), 0, None), touched)
        finally:
            host.close()
    return render_replay(script, overrides, states)


def check_overrides(pool: Pool, script: Path, runs: Sequence[RunSpec]) -> None:
    """Check every override ``runs`` apply (and its values) on one of ``pool``'s GMAT hosts.

    Raises
    ------
    SweepConfigError
        An override would be refused (unknown field, wrong value type, an
        output-file field); the message lists each one and how to fix it.
    """
    values: dict[str, dict[str, Any]] = {}
    for run in runs:
        for field, value in run.overrides.items():
            values.setdefault(field, {}).setdefault(repr(value), value)
    problems = pool.check_fields(script, {f: list(v.values()) for f, v in sorted(values.items())})
    if problems:
        raise SweepConfigError(
            f"mission {script.name}: " + "; ".join(problems) + ". Fix the overrides (field paths "
            "are 'Resource.Field' as written in the script, e.g. 'Sat.SMA' or 'MyVar.Value', or "
            "'A(2, 1)' for an Array element) "
            "or the script, then run again."
        )


def _checked_runs(runs: object) -> list[RunSpec]:
    """``runs`` as a list, refused unless it is an iterable of :class:`RunSpec`."""
    if isinstance(runs, str | bytes | Mapping) or not isinstance(runs, Iterable):
        raise SweepConfigError(
            f"runs={runs!r} of type {type(runs).__name__} is not a sequence of RunSpec; build "
            "the runs with expand_grid_to_run_specs(grid, script_path, output_dir)"
        )
    checked = list(runs)
    for index, spec in enumerate(checked):
        if not isinstance(spec, RunSpec):
            raise SweepConfigError(
                f"runs[{index}]={spec!r} of type {type(spec).__name__} is not a RunSpec; build "
                "the runs with expand_grid_to_run_specs(grid, script_path, output_dir)"
            )
    return checked


def refuse_a_file(location: PathLike, argument: str) -> None:
    """Refuse a local sweep directory that is, or lies below, an existing file.

    Checked before anything starts: ``mkdir`` would fail there at the first
    computation with a bare ``FileExistsError`` or ``NotADirectoryError``.
    """
    if is_url(location):
        return
    path = local_path(location).expanduser().absolute()
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        raise SweepConfigError(
            f"{argument}={str(location)!r}: {existing} is an existing file, not a directory; "
            "a sweep writes a directory of files: pass a directory path (new or existing)"
        )


def _refuse_runs_outside(runs: Sequence[RunSpec], output_dir: PathLike) -> None:
    """Refuse runs that would write outside the sweep, where its manifest may not point."""
    escapes = escape_check(output_dir)
    outside = [spec for spec in runs if escapes(spec.output_dir)]
    if outside:
        spec = outside[0]
        raise SweepConfigError(
            f"run {spec.run_id}'s output_dir {str(spec.output_dir)!r} is not inside the "
            f"sweep's output_dir {str(output_dir)!r} ({len(outside)} run(s) like it): every run "
            "writes under the sweep root, whose manifest may only point at files inside it; "
            "build the runs with expand_grid_to_run_specs(grid, script_path, output_dir), or "
            "put each run's output_dir under output_dir"
        )


def _backend_name(backend: Pool | str | None) -> str:
    if isinstance(backend, Pool):
        return backend.name
    return "dask" if backend and "://" in backend else backend or "local"


class _Recorder:
    """The manifest writer of one computation of a sweep: thread-safe, on the driver."""

    def __init__(self, sweep: Sweep, total: int) -> None:
        self._sweep = sweep
        self._by_id = {spec.run_id: spec for spec in sweep.run_graph.runs}
        self._lock = threading.Lock()
        self._failed = 0
        self._started = time.perf_counter()
        self._bar = progress_bar(total, enabled=sweep._progress)

    def record(self, outcome: RunOutcome, *, final: bool = True) -> None:
        """Append ``outcome``'s earlier attempts, then ``outcome``, to the manifest."""
        sweep = self._sweep
        spec = self._by_id.get(outcome.run_id)
        if spec is None:
            return
        with self._lock:
            for attempt in (*outcome.previous, outcome):
                sweep.manifest.append_entry(sweep._entry(attempt, spec))
            if final:
                sweep._recorded.add(outcome.run_id)
                self._failed += outcome.status is RunStatus.FAILED
                self._bar.set_postfix(failed=self._failed, refresh=False)
                self._bar.update(1)

    def wall_s(self) -> float:
        return time.perf_counter() - self._started

    def close(self) -> None:
        self._bar.close()
