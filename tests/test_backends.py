"""Backend conformance: the shipped suite (:mod:`gmat_sweep.testing`) on every built-in pool.

Each ``Test*Pool`` class runs :class:`~gmat_sweep.testing.PoolTests` unchanged
on LocalPool, DaskPool (a real ``LocalCluster``), LocalJoblibPool (loky) and
RayPool (a real local Ray runtime); adapter specifics follow.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from gmat_sweep import DaskPool, LocalJoblibPool, LocalPool, Pool, RayPool, Sweep, sweep
from gmat_sweep.backends import KNOWN_BACKENDS, make_backend
from gmat_sweep.errors import BackendError
from gmat_sweep.manifest import read_all_entries
from gmat_sweep.spec import RunStatus
from gmat_sweep.testing import PoolTests, mission, run_sweep, specs_for

pytestmark = pytest.mark.slow

Studies = dict[str, tuple[Path, dict[str, list[Any]]]]


@pytest.fixture(scope="module")
def studies(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Studies:
    """Missions whose runs cross the worker/driver boundary in ways leo_basic's do not.

    A solver that converges and one that does not (solver log, ``converged``);
    runs that write no file for some outputs (``unwritten``); a relative input
    file read through a load-time override (a rendered script) into a report
    in a subdirectory; an STK ephemeris split at a burn.
    """
    burn = (data_dir / "burn_ephemeris.script").read_text()
    stk = tmp_path_factory.mktemp("missions") / "burn_stk.script"
    stk.write_text(
        burn.replace("FixedEph.WriteEphemeris = false", "FixedEph.WriteEphemeris = true")
    )
    return {
        "solver": (data_dir / "hohmann_target.script", {"TargetRadius.Value": [42164.0, 5000.0]}),
        "unwritten": (data_dir / "branches.script", {"Mode.Value": [0, 1]}),
        "inputs": (
            data_dir / "custom_gravity.script",
            {"FM.Drag.AtmosphereModel": ["None", "Exponential"]},
        ),
        "stk": (stk, {"Kick.Element1": [0.0, 0.02]}),
    }


def swept(studies: Studies, root: Path, backend: Pool | None = None) -> dict[str, Any]:
    """Each study swept on ``backend`` (the default one for ``None``), as the reader sees it."""
    seen = {}
    for label, (script, grid) in studies.items():
        result = sweep(script, grid, backend=backend, out=root / label, progress=False)
        seen[label] = _observed(result)
    return seen


def _observed(result: Sweep) -> dict[str, Any]:
    """The manifest's per-run records (but their times) and every frame of the sweep's outputs."""
    entries = sorted(result.manifest.entries, key=lambda entry: entry.run_id)
    seen: dict[str, Any] = {
        "entries": [
            (e.run_id, e.status, e.output_paths, e.unwritten, e.log_path, e.script_sha256)
            for e in entries
        ],
        "converged": result.converged(),
    }
    for key in sorted({key for entry in entries for key in entry.output_paths}):
        kind, _, name = key.partition("__")
        seen[key] = result.to_pandas(name, kind=kind)
        if kind == "report":
            seen[f"final {key}"] = result.final(name)
    return seen


@pytest.fixture(scope="module")
def default_studies(studies: Studies, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """:func:`studies` swept on the default backend: what every backend must give."""
    return swept(studies, tmp_path_factory.mktemp("default"))


class Named(PoolTests):
    """The suite on a backend built by name from the one registry, as the API builds it."""

    backend = "local"

    def make_pool(self, workers: int, *, reuse_gmat_context: bool = True) -> Pool:
        return make_backend(self.backend, workers, reuse_gmat_context=reuse_gmat_context)

    def test_missions_with_solvers_unwritten_outputs_and_input_files_match_the_default(
        self, pool: Pool, studies: Studies, default_studies: dict[str, Any], tmp_path: Path
    ) -> None:
        got = swept(studies, tmp_path, pool)
        assert got.keys() == default_studies.keys()
        for label, want in default_studies.items():
            assert got[label].keys() == want.keys(), label
            assert got[label]["entries"] == want["entries"], label
            for key, frame in want.items():
                if isinstance(frame, pd.DataFrame):
                    pd.testing.assert_frame_equal(
                        got[label][key], frame, check_exact=True, obj=f"{label} {key}"
                    )


class TestLocalPool(Named):
    backend = "local"


class TestDaskPool(Named):
    backend = "dask"

    def isolated_pool(self, pool: Pool) -> Pool:
        assert isinstance(pool, DaskPool)
        return DaskPool(client=pool.client, reuse_gmat_context=False)


class TestLocalJoblibPool(Named):
    backend = "joblib"


class CrashFirstTask:
    """Stands in for the ray module; ``get`` of the first task reports a crashed worker."""

    def __init__(self, ray: object) -> None:
        self._ray = ray
        self.crashed = False

    def __getattr__(self, name: str) -> object:
        return getattr(self._ray, name)

    def get(self, task: object) -> object:
        result = self._ray.get(task)  # type: ignore[attr-defined]
        if not self.crashed:
            self.crashed = True
            raise self._ray.exceptions.WorkerCrashedError()  # type: ignore[attr-defined]
        return result


class TestRayPool(Named):
    backend = "ray"

    def isolated_pool(self, pool: Pool) -> Pool:
        return RayPool(reuse_gmat_context=False)  # joins the running runtime

    def test_a_task_whose_worker_crashed_is_a_failed_attempt_then_retried(
        self, pool: Pool, tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Ray gives up on a task whose worker keeps dying with WorkerCrashedError (Dask's
        # KilledWorker has its own test in test_sweep.py); the runs of that task become
        # failed attempts and the sweep runs them again.
        ray = CrashFirstTask(pool._ray)  # type: ignore[attr-defined]
        monkeypatch.setattr(pool, "_ray", ray)
        out = tmp_path / "s"  # type: ignore[operator]
        result = run_sweep(pool, specs_for(mission("leo_basic"), [{"Sat.SMA": 7000.0}], out), out)
        assert ray.crashed
        first, second = read_all_entries(out / "manifest.jsonl")
        assert first.status is RunStatus.FAILED
        assert first.stderr is not None
        assert first.stderr.startswith("worker process died (the Ray worker running it died")
        assert second.status is RunStatus.OK
        assert result.manifest.find_failed() == []


# -- adapter specifics -----------------------------------------------------------------


def test_every_known_backend_runs_the_suite() -> None:
    tested = {cls.backend for cls in Named.__subclasses__()}
    assert tested == set(KNOWN_BACKENDS)


@pytest.mark.parametrize("workers", [0, -2, True])
def test_joblib_pool_rejects_a_bad_worker_count(workers: int) -> None:
    with pytest.raises(BackendError, match=rf"workers={workers!r}: .*-1 for one per core"):
        LocalJoblibPool(workers)


def test_ray_pool_without_ray_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(BackendError, match=r"pip install 'ray\[default\]'"):
        RayPool()


class RecordsRayInit:
    """Stands in for the ray module: records the arguments of ``ray.init``, starts nothing."""

    def __init__(self) -> None:
        self.inits: list[dict[str, object]] = []

    def is_initialized(self) -> bool:
        return False

    def init(self, **options: object) -> None:
        self.inits.append(options)

    def remote(self, **options: object) -> object:
        return lambda function: function

    def shutdown(self) -> None:
        pass


def test_ray_pool_ignores_num_cpus_when_it_connects_to_a_cluster(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # num_cpus sizes a local runtime; a cluster has its own size.
    ray = RecordsRayInit()
    monkeypatch.setitem(sys.modules, "ray", ray)
    RayPool(address="ray://head:10001", num_cpus=4).close()
    RayPool(num_cpus=4).close()
    assert ray.inits == [
        {"address": "ray://head:10001"},
        {"address": "local", "num_cpus": 4, "include_dashboard": False},
    ]


def test_importing_gmat_sweep_imports_neither_ray_nor_joblib() -> None:
    code = "import sys, gmat_sweep; print([m for m in ('ray', 'joblib') if m in sys.modules])"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == "[]"


def test_local_pool_checks_the_mission_on_every_host(
    monkeypatch: pytest.MonkeyPatch, leo_basic: Path
) -> None:
    # Each host loads the mission during the check, in parallel, so none loads it at its
    # first run while the others run.
    from gmat_sweep.backends._subprocess import GmatHost

    hosts: list[int | None] = []
    check_fields = GmatHost.check_fields

    def recorded(host: GmatHost, script: Path, values: Mapping[str, Sequence[object]]) -> list[str]:
        problems = check_fields(host, script, values)
        hosts.append(host.pid)
        return problems

    monkeypatch.setattr(GmatHost, "check_fields", recorded)
    with LocalPool(2) as pool:
        assert pool.check_fields(leo_basic, {"Sat.SMA": [7000.0]}) == []
        assert len(set(hosts)) == 2, hosts
        problems = pool.check_fields(leo_basic, {"Sat.SMAX": [1.0]})
    assert len(problems) == 1 and "Sat.SMAX" in problems[0], problems
    assert len(set(hosts)) == 2, hosts
    hosts.clear()
    with LocalPool(2, reuse_gmat_context=False) as pool:  # runs get fresh interpreters
        assert pool.check_fields(leo_basic, {"Sat.SMA": [7000.0]}) == []
    assert len(hosts) == 1


def test_cli_builds_joblib_and_ray_pools() -> None:
    from gmat_sweep.cli import _parser, _pool

    args = _parser().parse_args(["demo", "--backend", "joblib", "--workers", "1"])
    with _pool(args) as built:
        assert isinstance(built, LocalJoblibPool)
        assert built.workers == 1
    assert _parser().parse_args(["demo", "--backend", "ray"]).backend == "ray"


def test_dask_pool_closes_its_cluster_when_the_client_cannot_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import distributed

    closed: list[bool] = []

    class Cluster:
        def __init__(self, **options: object) -> None:
            pass

        def close(self) -> None:
            closed.append(True)

    def no_client(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the scheduler refused the client")

    monkeypatch.setattr(distributed, "LocalCluster", Cluster)
    monkeypatch.setattr(distributed, "Client", no_client)
    with pytest.raises(RuntimeError, match="refused the client"):
        DaskPool(n_workers=1)
    assert closed == [True]


def test_local_pool_outputs_are_durable_before_the_manifest_records_them(
    monkeypatch: pytest.MonkeyPatch, leo_basic: Path, tmp_path: Path
) -> None:
    # The hosts write without fsync; the pool fsyncs each run's files, its directory and
    # the sweep directory on the driver, before the outcome reaches the manifest writer.
    import os

    from gmat_sweep import sweep
    from gmat_sweep.manifest import Manifest, ManifestEntry

    synced: set[str] = set()
    real_fsync = os.fsync

    def fsync(descriptor: int) -> None:
        synced.add(os.readlink(f"/proc/self/fd/{descriptor}"))
        real_fsync(descriptor)

    recorded: list[int] = []
    append_entry = Manifest.append_entry

    def checked(manifest: Manifest, entry: ManifestEntry) -> None:
        outputs = {str(tmp_path / "out" / path) for path in entry.output_paths.values()}
        run_dir = os.path.dirname(next(iter(outputs)))
        assert outputs | {run_dir, str(tmp_path / "out")} <= synced, (outputs, synced)
        recorded.append(entry.run_id)
        append_entry(manifest, entry)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(Manifest, "append_entry", checked)
    grid = {"Sat.SMA": [7000.0, 7100.0, 7200.0]}
    with LocalPool(2) as pool:
        result = sweep(leo_basic, grid, backend=pool, out=tmp_path / "out", progress=False)
    assert sorted(recorded) == [0, 1, 2]
    assert all(e.status is RunStatus.OK for e in result.manifest.entries)


def test_a_slow_disk_does_not_idle_a_local_pool_host(
    monkeypatch: pytest.MonkeyPatch, leo_basic: Path, tmp_path: Path
) -> None:
    # Run 0's outputs cannot be fsynced until run 1 has finished on the pool's only host:
    # that works only if the host is given back before its outputs are settled.
    import threading

    from gmat_sweep import storage, sweep
    from gmat_sweep.backends._subprocess import GmatHost
    from gmat_sweep.spec import RunOutcome, RunSpec

    run_1_done = threading.Event()
    waited: list[bool] = []
    settle, run = storage.settle, GmatHost.run

    def slow_settle(directory: Path, files: list[Path]) -> None:
        if str(directory).endswith("run-000000"):
            waited.append(run_1_done.wait(60))
        settle(directory, files)

    def watched(host: GmatHost, spec: RunSpec, timeout_s: float | None = None) -> RunOutcome:
        outcome = run(host, spec, timeout_s)
        if outcome.run_id == 1:
            run_1_done.set()
        return outcome

    monkeypatch.setattr(storage, "settle", slow_settle)
    monkeypatch.setattr(GmatHost, "run", watched)
    grid = {"Sat.SMA": [7000.0, 7100.0]}
    with LocalPool(1) as pool:
        result = sweep(leo_basic, grid, backend=pool, out=tmp_path / "out", progress=False)
    assert waited == [True]
    assert [e.status for e in result.manifest.entries] == [RunStatus.OK, RunStatus.OK]


def test_dask_pool_checks_the_mission_on_every_worker(leo_basic: Path) -> None:
    # Every worker's GMAT host starts and loads the mission during the check, in parallel,
    # rather than one of them at its first run while the others run.
    from gmat_sweep.testing import gmat_hosts

    with DaskPool(n_workers=2) as pool:
        assert gmat_hosts() == []
        assert pool.check_fields(leo_basic, {"Sat.SMA": [7000.0]}) == []
        assert len(gmat_hosts()) == 2


def test_dask_pool_workers_do_not_profile_the_driver() -> None:
    # In-process workers' statistical profiler samples every thread of the driver every
    # 10 ms: CPU taken from the GMAT hosts for profiles of threads that wait on pipes.
    with DaskPool(n_workers=2) as pool:
        workers = pool.client.cluster.workers.values()
        assert len(workers) == 2
        assert all("profile" not in worker.periodic_callbacks for worker in workers)
        assert all("heartbeat" in worker.periodic_callbacks for worker in workers)


def test_dask_pool_works_from_an_unguarded_script_and_closes_its_hosts(
    leo_basic: Path, tmp_path: Path
) -> None:
    # DaskPool() owns an in-process cluster: nothing re-imports the calling script, and
    # close() ends the GMAT hosts its workers started.
    script = tmp_path / "analysis.py"
    script.write_text(
        "from gmat_sweep import sweep\n"
        "from gmat_sweep.backends.dask import DaskPool\n"
        "from gmat_sweep.testing import gmat_hosts\n"
        "with DaskPool(n_workers=1) as pool:\n"
        f"    result = sweep({str(leo_basic)!r}, {{'Sat.Cd': [2.0, 2.2]}}, backend=pool,"
        " out='study', progress=False)\n"
        "    print('HOSTS DURING', len(gmat_hosts()))\n"
        "print('RUNS', len(result.manifest.entries), 'FAILED', result.failed_run_ids)\n"
        "print('HOSTS AFTER', len(gmat_hosts()))\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "RUNS 2 FAILED []" in done.stdout, done.stdout
    assert "HOSTS DURING 1" in done.stdout, done.stdout
    assert "HOSTS AFTER 0" in done.stdout, done.stdout


def test_dask_pool_workers_are_not_paused_by_the_memory_the_driver_holds(
    leo_basic: Path, tmp_path: Path
) -> None:
    # In-process workers measure this whole process's memory: a driver holding data (a
    # notebook's frames; 1.3 GB paused 16 workers on 23 GB for good) must not stall
    # them. Here a tiny pause fraction stands in for that driver.
    import dask
    import distributed  # noqa: F401  (its config defaults, before the config is set)

    from gmat_sweep import sweep

    with (
        dask.config.set({"distributed.worker.memory.pause": 0.001}),
        DaskPool(n_workers=1) as pool,
    ):
        limits = pool.client.run(lambda dask_worker: dask_worker.memory_manager.memory_limit)
        assert list(limits.values()) == [None]
        result = sweep(
            leo_basic, {"Sat.Cd": [2.0]}, backend=pool, out=tmp_path / "s", progress=False
        )
    assert result.failed_run_ids == []


def test_closing_a_dask_pool_stops_its_runs_in_flight(tmp_path: Path) -> None:
    # Its workers are threads of this process: close() cannot end them, it must stop the
    # GMAT hosts they wait on, as LocalPool.close does (else close waits 30 s, and the
    # run goes on, and its host lives until exit).
    import time

    from gmat_sweep.testing import gmat_hosts, running_a_mission

    with DaskPool(n_workers=1) as pool:
        spec = specs_for(mission("slow"), [{"Days.Value": 30.0}], tmp_path / "s")[0]
        future = pool.submit(spec)
        while not future.done() and not any(running_a_mission(p) for p in gmat_hosts()):
            time.sleep(0.05)
        assert not future.done(), future.result()
    assert gmat_hosts() == []


def test_a_local_pool_run_whose_outputs_cannot_be_fsynced_is_a_failed_row(
    monkeypatch: pytest.MonkeyPatch, leo_basic: Path, tmp_path: Path
) -> None:
    # The pool fsyncs a run's outputs after its host wrote them: a disk error there (EIO,
    # ENOSPC) fails that run, as it did when the host fsynced, and the sweep goes on.
    import errno
    import os

    from gmat_sweep import sweep

    real_fsync = os.fsync

    def fsync(descriptor: int) -> None:
        if "run-000001" in os.readlink(f"/proc/self/fd/{descriptor}"):
            raise OSError(errno.EIO, "Input/output error")
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", fsync)
    grid = {"Sat.SMA": [7000.0, 7100.0, 7200.0]}
    with LocalPool(1) as pool:
        result = sweep(leo_basic, grid, backend=pool, out=tmp_path / "out", progress=False)
    assert result.failed_run_ids == [1]
    entry = result.manifest.entry_for(1)
    assert entry is not None and entry.stderr is not None
    assert "run-000001" in entry.stderr and "Input/output error" in entry.stderr, entry.stderr
    assert [e.status for e in result.manifest.entries if e.run_id != 1] == [RunStatus.OK] * 2


def test_local_pools_built_and_closed_again_and_again_leave_nothing_behind() -> None:
    # Each pool registers its hosts to be closed at exit; closing the pool forgets them,
    # so a long session that builds many pools holds no dead hosts.
    import threading

    from gmat_sweep.backends import _subprocess

    # Threads of earlier tests in this process may still be ending: only new ones count.
    threads = set(threading.enumerate())
    registered = len(_subprocess._all_hosts)
    for _ in range(3):
        with LocalPool(2, reuse_gmat_context=False):
            assert len(_subprocess._all_hosts) == registered + 2
    assert len(_subprocess._all_hosts) == registered
    assert set(threading.enumerate()) <= threads


def test_closing_a_local_pool_while_it_checks_a_mission_does_not_wait_for_the_check(
    monkeypatch: pytest.MonkeyPatch, leo_basic: Path
) -> None:
    # A check task keeps its host until every check task has one. When the pool closes
    # with one of them still queued (cancelled), the others must not wait for it.
    import threading

    from gmat_sweep.backends import local
    from gmat_sweep.backends._subprocess import GmatHost

    monkeypatch.setattr(local, "_GATHER_TIMEOUT_S", 600.0)
    check_fields = GmatHost.check_fields
    checked_a_host = threading.Event()

    def signalled(host: GmatHost, *args: Any) -> list[str]:
        problems = check_fields(host, *args)
        checked_a_host.set()  # its task now waits for the other one
        return problems

    monkeypatch.setattr(GmatHost, "check_fields", signalled)
    with LocalPool(2) as pool:
        assert pool.check_fields(leo_basic, {"Sat.SMA": [7000.0]}) == []  # both hosts warm
        checked_a_host.clear()
        executor = pool._running()
        release = threading.Event()
        for _ in range(3):  # three of the four threads busy until the check has ended
            executor.submit(release.wait, 120.0)
        failures: list[BaseException] = []

        def check() -> None:
            try:
                pool.check_fields(leo_basic, {"Sat.SMA": [7000.0]})
            except BaseException as exc:
                failures.append(exc)

        checking = threading.Thread(target=check)
        checking.start()
        # One check task has checked on the fourth thread, the other is queued behind the busy
        # ones.
        assert checked_a_host.wait(60.0)
        while executor._work_queue.qsize() < 1:
            assert checking.is_alive()
            threading.Event().wait(0.01)
        closing = threading.Thread(target=pool.close)
        closing.start()
        checking.join(60.0)
        release.set()
        closing.join(60.0)
        assert not checking.is_alive(), "close() waits for a check task that was cancelled"
        assert not closing.is_alive()
    assert len(failures) == 1
    assert isinstance(failures[0], BackendError), failures
    assert "closed" in str(failures[0])
