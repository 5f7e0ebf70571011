"""Sweep orchestrator: owns the run iterable, backend, manifest, and output dir.

The single public class is :class:`Sweep`. It binds a list of
:class:`~gmat_sweep.spec.RunSpec` to a backend
:class:`~gmat_sweep.backends.base.Pool`, fans the specs out, drains the
resulting outcomes in completion order, and records each one as a
:class:`~gmat_sweep.manifest.ManifestEntry` with an fsynced append, so a
mid-sweep Ctrl-C (or SIGKILL) leaves a parseable manifest on disk.

The class does not own the pool's lifecycle — wrap the supplied
:class:`~gmat_sweep.backends.base.Pool` in a ``with`` block at the call site
(or call ``close()``) so worker processes are cleaned up. The thin
:func:`gmat_sweep.api.sweep` wrapper takes care of this for the common case.

Retries: a run that failed because its worker process died or because it
exceeded its timeout is submitted again, up to ``retries`` times (default
:data:`DEFAULT_RETRIES`); a run that failed inside GMAT is deterministic and
is not retried. Every attempt is a manifest line; the last one wins.
"""

from __future__ import annotations

import os
import platform
import time
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gmat_sweep import graph, plan, storage
from gmat_sweep.backends._subprocess import FAILURE_TIMEOUT, FAILURE_WORKER_DIED
from gmat_sweep.backends.base import Pool
from gmat_sweep.engine import ensure_engine
from gmat_sweep.errors import SweepConfigError
from gmat_sweep.lock import hold
from gmat_sweep.manifest import (
    Manifest,
    ManifestEntry,
    canonical_script_sha256,
    script_includes_sha256,
    unreadable_ok_runs,
)
from gmat_sweep.plan import installed_version as _version
from gmat_sweep.spec import PathLike, RunOutcome, RunSpec, RunStatus, is_url
from gmat_sweep.worker import LOG_NAME

if TYPE_CHECKING:
    import dask.dataframe as dd
    import pandas as pd

DEFAULT_RETRIES = 1
"""Automatic re-runs of a run whose worker died or that timed out."""

MANIFEST_NAME = "manifest.jsonl"


class Sweep:
    """Bind run specs, a pool, and a manifest path into a runnable orchestrator.

    Parameters
    ----------
    runs:
        The :class:`RunSpec` instances to dispatch. ``run_id`` values must be
        unique. Order is preserved on the submission side; outcomes return in
        completion order.
    backend:
        A constructed :class:`Pool`. The caller owns its lifecycle —
        typically a ``with LocalJoblibPool(...) as pool:`` block.
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
        Optional integer seed recorded on the manifest. ``Sweep`` does not
        consume it directly; the Monte Carlo and Latin hypercube wrappers in
        :mod:`gmat_sweep.api` use it to derive their per-run draws.
    progress:
        ``True`` (default) wraps the drain loop in a :mod:`tqdm` bar with
        the ETA and a live failed count. Set to ``False`` for
        non-interactive use (tests, CI logs).
    retries:
        How many times a run whose worker died or that timed out is
        re-submitted automatically (default :data:`DEFAULT_RETRIES`).
    storage_options:
        fsspec options (endpoint, credentials) for an ``output_dir`` URL.
        Never written to the manifest.
    """

    def __init__(
        self,
        *,
        runs: Sequence[RunSpec],
        backend: Pool,
        manifest_path: PathLike,
        output_dir: PathLike,
        script_path: Path,
        parameter_spec: Mapping[str, Any],
        sweep_seed: int | None = None,
        progress: bool = True,
        retries: int = DEFAULT_RETRIES,
        storage_options: Mapping[str, Any] | None = None,
    ) -> None:
        counts = Counter(spec.run_id for spec in runs)
        duplicates = sorted(run_id for run_id, count in counts.items() if count > 1)
        if duplicates:
            raise SweepConfigError(
                f"run_id values must be unique; {duplicates[:10]} appear more than once. "
                "Number the runs 0..n-1, as expand_grid_to_run_specs does."
            )
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise SweepConfigError(f"retries={retries!r}: use a whole number >= 0")
        self._runs = list(runs)
        self._backend = backend
        self._manifest_path = manifest_path
        self._output_dir = output_dir
        self._script_path = Path(script_path)
        self._parameter_spec = dict(parameter_spec)
        self._sweep_seed = sweep_seed
        self._progress = progress
        self._retries = retries
        self._storage_options = dict(storage_options or {})
        self._manifest: Manifest | None = None
        self._from_manifest = False
        self._wall_s: float | None = None

    # -- running -----------------------------------------------------------

    def run(self) -> Sweep:
        """Submit every run, drain outcomes in completion order, return self.

        Builds and saves the manifest header up front (one fsync, with the
        parent directory created on demand). For each completed
        :class:`RunOutcome` an entry is appended via
        :meth:`Manifest.append_entry`, which fsyncs each line — a Ctrl-C
        between any two iterations leaves a parseable file containing exactly
        the runs that finished.

        :exc:`KeyboardInterrupt` is not caught; it propagates so the caller's
        ``with``-managed pool exits and cancels still-pending futures.
        """
        manifest = Manifest(
            script_sha256=canonical_script_sha256(self._script_path),
            gmat_sweep_version=_version("gmat_sweep"),
            gmat_run_version=_version("gmat-run"),
            gmat_install_version=ensure_engine().version,
            python_version=platform.python_version(),
            os_platform=platform.platform(),
            sweep_seed=self._sweep_seed,
            parameter_spec=self._parameter_spec,
            run_count=len(self._runs),
            backend=self._backend.name,
            script_includes=script_includes_sha256(self._script_path),
            script_path=str(self._script_path.resolve()),
            numpy_version=_version("numpy"),
            scipy_version=_version("scipy"),
        )
        with hold(self._output_dir, self._storage_options, what="run"):
            manifest.save(self._manifest_path, storage_options=self._storage_options)
            self._manifest = manifest
            self._execute(self._runs, self._backend)
        return self

    @classmethod
    def from_manifest(
        cls,
        manifest_path: PathLike,
        script_path: str | Path,
        *,
        backend: Pool,
        allow_script_drift: bool = False,
        allow_version_drift: bool = False,
        progress: bool = True,
        retries: int = DEFAULT_RETRIES,
        storage_options: Mapping[str, Any] | None = None,
    ) -> Sweep:
        """Rebuild a :class:`Sweep` from a manifest written by a prior run.

        Reads ``manifest_path``, validates that the on-disk script (and every
        file it ``#Include``\\ s) still matches the hashes the manifest
        recorded, reconstructs the run iterable from the manifest's
        ``parameter_spec``, and returns a :class:`Sweep` whose manifest is
        pre-bound to the loaded one. The returned sweep is suitable input to
        :meth:`resume`; calling :meth:`run` on it would re-execute every run
        from scratch and is not the intended flow.

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
            A constructed :class:`Pool`. The caller owns its lifecycle.
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
        progress:
            Forwarded to the constructor — controls the :mod:`tqdm` bar in
            :meth:`resume`.
        retries:
            Forwarded to the constructor.
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
        """
        if is_url(manifest_path):
            root: PathLike = str(manifest_path).rsplit("/", 1)[0]
        else:
            manifest_path = Path(str(manifest_path).removeprefix("file://")).resolve()
            root = manifest_path.parent
        if not storage.exists(root, storage_options):
            raise SweepConfigError(
                f"the sweep directory {str(root)!r} does not exist, so the outputs of the runs "
                "that finished cannot be found; pass the manifest.jsonl inside the sweep's "
                "output directory"
            )
        script = Path(script_path)
        if not script.is_file():
            raise SweepConfigError(
                f"script {str(script)!r} does not exist; pass the .script the sweep ran"
            )
        manifest = Manifest.load(manifest_path, storage_options=storage_options)
        drift = _drift(manifest, script)
        if drift:
            if not allow_script_drift:
                raise SweepConfigError(
                    "; ".join(drift) + ". Resuming would mix results of two different missions. "
                    "Restore the original files, or pass allow_script_drift=True "
                    "(CLI: --allow-script-drift) if the change cannot affect results."
                )
            warnings.warn(
                "; ".join(drift) + "; resuming anyway (allow_script_drift=True)",
                RuntimeWarning,
                stacklevel=2,
            )
        parameter_spec = manifest.parameter_spec
        run_options = dict(parameter_spec.get("run_options") or {})
        if storage_options:
            run_options["storage_options"] = dict(storage_options)
        runs = plan.expand(parameter_spec, script.resolve(), root, run_options)
        plan.check_recorded(
            manifest,
            runs,
            engine_version=ensure_engine().version,
            allow_version_drift=allow_version_drift,
        )
        sweep = cls(
            runs=runs,
            backend=backend,
            manifest_path=manifest_path,
            output_dir=root,
            script_path=script,
            parameter_spec=parameter_spec,
            sweep_seed=manifest.sweep_seed,
            progress=progress,
            retries=retries,
            storage_options=storage_options,
        )
        sweep._manifest = manifest
        sweep._from_manifest = True
        return sweep

    def resume(self) -> Sweep:
        """Re-run only the failed and missing runs from the loaded manifest.

        Submits specs for the union of ``manifest.find_failed()``,
        ``manifest.find_missing(...)`` and the ``ok`` runs whose output files
        are missing or unreadable (:func:`~gmat_sweep.manifest.unreadable_ok_runs`)
        through the bound backend, appends one
        new :class:`ManifestEntry` per outcome (with the same ``run_id`` as
        the original), and reloads the manifest so the in-memory entries
        reflect the last-wins merge. Returns ``self`` for chaining.

        Raises :exc:`RuntimeError` when called on a :class:`Sweep` not
        produced by :meth:`from_manifest`, and
        :class:`~gmat_sweep.errors.SweepConfigError` when an object-store
        sweep directory cannot be written (checked before any run starts).
        """
        if not self._from_manifest or self._manifest is None:
            raise RuntimeError(
                "resume() needs a sweep rebuilt from its manifest: use "
                "Sweep.from_manifest(manifest_path, script_path, backend=...).resume()"
            )
        storage.check_writable(self._output_dir, self._storage_options)
        with hold(self._output_dir, self._storage_options, what="resume"):
            # Read again under the hold: another driver may have written since from_manifest.
            manifest = self._manifest = Manifest.load(
                self._manifest_path, storage_options=self._storage_options
            )
            wanted = set(manifest.find_failed())
            wanted.update(manifest.find_missing(spec.run_id for spec in self._runs))
            # An ok line whose files a machine crash lost is a run still to do.
            wanted.update(unreadable_ok_runs(manifest, self._output_dir, self._storage_options))
            todo = [spec for spec in self._runs if spec.run_id in wanted]
            self._execute(todo, self._backend)
        return self

    def extend(self, n_more: int, *, backend: Pool | None = None) -> Sweep:
        """Add ``n_more`` runs to a finished Monte Carlo sweep and run them.

        The new runs get run_ids ``n .. n + n_more - 1``; the first ``n`` runs'
        draws are unchanged (every parameter draws from its own stream, and a
        longer stream starts with the shorter one), so the extended sweep is
        exactly the sweep you would have got with ``n + n_more`` from the
        start. The manifest header is updated in place and every earlier
        entry is kept.

        Latin-hypercube designs cannot be extended: the strata of an
        ``n + m`` point design are not those of an ``n`` point design, so
        adding points would break the stratification the method exists for.
        Run a new, larger study instead.

        Parameters
        ----------
        n_more:
            How many runs to add, at least 1.
        backend:
            Pool to run them on; ``None`` starts (and closes) a default
            :class:`~gmat_sweep.backends.local.LocalPool`.

        Raises
        ------
        SweepConfigError
            The sweep is not a Monte Carlo sweep, ``n_more`` is not a
            positive whole number, or an object-store sweep directory cannot
            be written.
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
        storage.check_writable(self._output_dir, self._storage_options)
        grown = {**manifest.parameter_spec, "n": int(manifest.parameter_spec["n"]) + n_more}
        run_options = dict(grown.get("run_options") or {})
        if self._storage_options:
            run_options["storage_options"] = dict(self._storage_options)
        runs = plan.expand(grown, self._script_path.resolve(), self._output_dir, run_options)
        count = len(self._runs)
        with hold(self._output_dir, self._storage_options, what="extend"):
            manifest.parameter_spec = grown
            manifest.run_count = len(runs)
            manifest.rewrite_header()
            self._parameter_spec = grown
            self._runs = runs
            if backend is not None:
                self._execute(runs[count:], backend)
                return self
            from gmat_sweep.backends.local import LocalPool

            with LocalPool() as pool:
                self._execute(runs[count:], pool)
        return self

    def _execute(self, specs: Sequence[RunSpec], backend: Pool) -> None:
        """Run ``specs`` (retrying dead-worker and timed-out runs) and record each outcome."""
        from tqdm.auto import tqdm

        assert self._manifest is not None
        manifest = self._manifest
        by_id = {spec.run_id: spec for spec in specs}
        attempts: Counter[int] = Counter()
        failed = 0
        started = time.perf_counter()
        with tqdm(
            total=len(specs), unit="run", disable=not self._progress, dynamic_ncols=True
        ) as bar:
            todo = list(specs)
            while todo:
                futures = [backend.submit(spec) for spec in todo]
                todo = []
                for outcome in backend.as_completed(futures):
                    spec = by_id[outcome.run_id]
                    manifest.append_entry(self._entry(outcome, spec))
                    if _retryable(outcome) and attempts[spec.run_id] < self._retries:
                        attempts[spec.run_id] += 1
                        todo.append(spec)
                        continue
                    failed += outcome.status is RunStatus.FAILED
                    bar.set_postfix(failed=failed, refresh=False)
                    bar.update(1)
        manifest.compact()
        self._wall_s = time.perf_counter() - started

    def _entry(self, outcome: RunOutcome, spec: RunSpec) -> ManifestEntry:
        paths = {key: self._relative(path) for key, path in outcome.output_paths.items()}
        outcome = RunOutcome(
            outcome.run_id,
            outcome.status,
            paths,
            outcome.duration_s,
            outcome.stderr,
            outcome.started_at,
            outcome.ended_at,
        )
        log_path = self._relative(storage.join(spec.output_dir, LOG_NAME))
        return ManifestEntry.from_outcome(outcome, overrides=spec.overrides, log_path=log_path)

    def _relative(self, location: PathLike) -> PathLike:
        """``location`` relative to the sweep root when it lies inside it."""
        root = str(self._output_dir).rstrip("/")
        text = str(location)
        if is_url(self._output_dir):
            return text[len(root) + 1 :] if text.startswith(root + "/") else text
        try:
            return Path(os.path.relpath(Path(text).resolve(), Path(root).resolve()))
        except ValueError:
            return location

    # -- results -----------------------------------------------------------

    @property
    def manifest(self) -> Manifest:
        """The sweep's manifest (header plus the last entry of every run)."""
        if self._manifest is None:
            raise RuntimeError("this sweep has not run yet: call run() first")
        return self._manifest

    @property
    def runs(self) -> list[RunSpec]:
        """The run specs of this sweep, in run_id order."""
        return list(self._runs)

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
    def failed_run_ids(self) -> list[int]:
        """run_ids whose last attempt failed."""
        return self.manifest.find_failed()

    def to_delayed(self) -> list[Any]:
        """One :class:`dask.delayed.Delayed` per run, computing to its :class:`RunOutcome`.

        Computing them runs the missions wherever the Dask scheduler puts the
        tasks; it does not write the manifest.
        """
        return graph.to_delayed(self._runs, self._backend.reuse_gmat_context)

    def to_dataframe(self, name: str | None = None, *, parameters: bool = True) -> dd.DataFrame:
        """Aggregate the sweep's ReportFile outputs into one lazy DataFrame.

        ``name`` selects which report to aggregate when the sweep produced
        multiple ReportFile resources per run; ``None`` (default) picks the
        sole report when exactly one was produced. The frame is indexed by
        ``run_id`` with known divisions, so ``.loc[run_id]`` reads one file;
        each run's overrides appear as columns unless ``parameters=False``.
        See :func:`gmat_sweep.aggregate.report_frame` for the full contract
        and :meth:`to_pandas` for the ``(run_id, time)`` pandas form.
        """
        from gmat_sweep import aggregate

        return aggregate.report_frame(
            self.manifest,
            self._output_dir,
            name=name,
            parameters=parameters,
            storage_options=self._storage_options,
        )

    def to_ephemerides(self, name: str | None = None, *, parameters: bool = True) -> dd.DataFrame:
        """Aggregate the sweep's EphemerisFile outputs into one lazy DataFrame.

        See :func:`gmat_sweep.aggregate.ephemeris_frame` for the contract.
        """
        from gmat_sweep import aggregate

        return aggregate.ephemeris_frame(
            self.manifest,
            self._output_dir,
            name=name,
            parameters=parameters,
            storage_options=self._storage_options,
        )

    def to_contacts(self, name: str | None = None, *, parameters: bool = True) -> dd.DataFrame:
        """Aggregate the sweep's ContactLocator outputs into one lazy DataFrame.

        See :func:`gmat_sweep.aggregate.contact_frame` for the contract.
        """
        from gmat_sweep import aggregate

        return aggregate.contact_frame(
            self.manifest,
            self._output_dir,
            name=name,
            parameters=parameters,
            storage_options=self._storage_options,
        )

    def to_pandas(
        self, name: str | None = None, *, kind: str = "report", parameters: bool = True
    ) -> pd.DataFrame:
        """Materialise one output kind as the reference's MultiIndexed pandas frame.

        ``kind="report"`` (default) and ``"ephemeris"`` give a
        ``(run_id, time)`` MultiIndex, ``"contact"`` a ``(run_id,
        interval_id)`` one; rows are ordered by run_id, then time. A failed
        run is one NaN row with ``__status="failed"``.
        """
        from gmat_sweep import aggregate

        readers = {
            "report": aggregate.lazy_multiindex,
            "ephemeris": aggregate.lazy_ephemerides,
        }
        if kind == "contact":
            return aggregate.lazy_contacts(
                self.manifest,
                self._output_dir,
                name=name,
                parameters=parameters,
                storage_options=self._storage_options,
            )
        if kind not in readers:
            raise SweepConfigError(f"kind={kind!r}: use 'report', 'ephemeris' or 'contact'")
        return readers[kind](
            self.manifest,
            self._output_dir,
            name=name,
            parameters=parameters,
            storage_options=self._storage_options,
        )

    def __repr__(self) -> str:
        if self._manifest is None:
            return f"<Sweep of {len(self._runs)} runs of {self._script_path.name}, not run yet>"
        entries = self._manifest.entries
        status = Counter(entry.status for entry in entries)
        missing = len(self._runs) - len(entries)
        lines = [
            f"Sweep of {len(self._runs)} runs of {self._script_path.name}",
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


def _retryable(outcome: RunOutcome) -> bool:
    return outcome.status is RunStatus.FAILED and (outcome.stderr or "").startswith(
        (FAILURE_TIMEOUT, FAILURE_WORKER_DIED)
    )


def _drift(manifest: Manifest, script: Path) -> list[str]:
    """Describe every file whose hash differs from what the manifest recorded."""
    problems = []
    current = canonical_script_sha256(script)
    if current != manifest.script_sha256:
        problems.append(
            f"script {str(script)!r} changed since the sweep ran: manifest sha256 "
            f"{manifest.script_sha256}, file now {current}"
        )
    includes = script_includes_sha256(script)
    for name, recorded in sorted(manifest.script_includes.items()):
        now = includes.get(name)
        if now != recorded:
            problems.append(
                f"included file {name!r} changed since the sweep ran: manifest sha256 {recorded}, "
                f"file now {now or 'missing'}"
            )
    for name in sorted(set(includes) - set(manifest.script_includes)):
        problems.append(f"the script now includes {name!r}, which the sweep did not use")
    return problems
