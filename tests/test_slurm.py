"""Clusters: dask-jobqueue on a real single-node Slurm, adaptive scaling, lost jobs, bad nodes.

Every Slurm test submits real batch jobs running real GMAT missions and
compares the aggregated frame with the same sweep on the default backend.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dask
import distributed
import pandas as pd
import pytest
from slurm_fixture import JOB_NAME, our_job_ids, slurm  # noqa: F401  (the fixture, used by name)

from gmat_sweep.aggregate import lazy_multiindex
from gmat_sweep.api import sweep
from gmat_sweep.backends.dask import DaskPool
from gmat_sweep.backends.jobqueue import jobqueue_pool
from gmat_sweep.cli import main
from gmat_sweep.errors import BackendError
from gmat_sweep.manifest import Manifest
from gmat_sweep.spec import RunStatus
from gmat_sweep.sweep import Sweep

pytestmark = pytest.mark.slow

LEO_GRID = {
    "Sat.SMA": [6800.0 + 10.0 * i for i in range(6)],
    "Sat.INC": [28.5, 51.6, 82.0, 97.8, 45.0],
}
"""30 fast runs (~50 ms each)."""

SLOW_GRID = {"Days.Value": [0.01 + 0.002 * i for i in range(12)]}
"""12 runs of ~0.5 s each: slow enough to kill a job while runs are in flight."""


def _job_options(log_dir: Path) -> dict[str, Any]:
    """One single-core worker per batch job, as a small Slurm site would configure it."""
    return {
        "cores": 1,
        "processes": 1,
        "memory": "1GB",
        "queue": "debug",
        "interface": "lo",
        "walltime": "00:10:00",
        "python": sys.executable,
        "job_name": JOB_NAME,
        "log_directory": str(log_dir),
        # A random port: a fixed default port may be held by another scheduler on the machine.
        "scheduler_options": {"dashboard_address": ":0"},
    }


@pytest.fixture(scope="module")
def leo_reference(leo_basic: Path, tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """LEO_GRID on the default backend."""
    out = tmp_path_factory.mktemp("leo-reference")
    return sweep(leo_basic, LEO_GRID, out=out / "s", progress=False).to_pandas()


@pytest.fixture(scope="module")
def slow_reference(slow: Path, tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """SLOW_GRID on the default backend (its one-row report has no epoch: frame by run_id)."""
    out = tmp_path_factory.mktemp("slow-reference")
    return sweep(slow, SLOW_GRID, out=out / "s", progress=False).to_dataframe().compute()


def _assert_complete(result: Sweep, runs: int) -> None:
    """Every run has exactly one ok outcome in the manifest."""
    entries = result.manifest.entries
    assert sorted(entry.run_id for entry in entries) == list(range(runs))
    assert all(entry.status is RunStatus.OK for entry in entries)


@pytest.mark.usefixtures("slurm")
def test_sweep_on_slurm_equals_the_local_sweep(
    leo_basic: Path, tmp_path: Path, leo_reference: pd.DataFrame
) -> None:
    with jobqueue_pool("slurm", jobs=2, **_job_options(tmp_path / "logs")) as pool:
        assert pool.workers == 2  # planned size, before the jobs have started
        result = sweep(leo_basic, LEO_GRID, backend=pool, out=tmp_path / "s", progress=False)
        assert len(our_job_ids()) == 2
    _assert_complete(result, 30)
    pd.testing.assert_frame_equal(result.to_pandas(), leo_reference)
    deadline = time.monotonic() + 30
    while our_job_ids() and time.monotonic() < deadline:  # closing the pool cancels the jobs
        time.sleep(0.5)
    assert our_job_ids() == []


@pytest.mark.usefixtures("slurm")
def test_cancelled_job_mid_sweep_loses_no_run(
    slow: Path, tmp_path: Path, slow_reference: pd.DataFrame
) -> None:
    from dask_jobqueue import SLURMCluster

    out = tmp_path / "s"
    done: dict[str, Any] = {}
    with (
        SLURMCluster(**_job_options(tmp_path / "logs")) as cluster,
        distributed.Client(cluster) as client,
        DaskPool(client=client) as pool,
    ):
        cluster.scale(jobs=2)
        client.wait_for_workers(2, timeout=120)

        def run() -> None:
            try:
                done["result"] = sweep(slow, SLOW_GRID, backend=pool, out=out, progress=False)
            except BaseException as exc:
                done["error"] = exc

        driver = threading.Thread(target=run)
        driver.start()
        victim, in_flight = _wait_for_runs_in_flight(client, out / "manifest.jsonl", driver)
        job_id = cluster.workers[client.scheduler_info()["workers"][victim]["name"]].job_id
        killed_at = datetime.now(UTC)
        subprocess.run(["scancel", job_id], check=True)
        driver.join(timeout=240)
        assert not driver.is_alive(), "the sweep did not finish after a job was cancelled"
        assert job_id not in our_job_ids()
    assert "error" not in done, done.get("error")
    result: Sweep = done["result"]
    _assert_complete(result, len(SLOW_GRID["Days.Value"]))
    pd.testing.assert_frame_equal(result.to_dataframe().compute(), slow_reference)

    attempts = [line for line in (out / "manifest.jsonl").read_text().splitlines()[1:] if line]
    failed_attempts = len(attempts) - len(result.manifest.entries)
    rerun = [
        run_id
        for run_id in in_flight
        if (entry := result.manifest.entry_for(run_id)) and entry.started_at >= killed_at
    ]
    print(  # observed scenario, shown with pytest -s
        f"\nscancel {job_id}: {len(in_flight)} runs in flight on the cancelled worker "
        f"{sorted(in_flight)}, {len(rerun)} re-run after the kill, {failed_attempts} failed "
        f"attempts recorded, final: {len(result.manifest.entries)} runs ok"
    )
    assert rerun, "the runs of the cancelled worker were not executed again"


def _wait_for_runs_in_flight(
    client: Any, manifest: Path, driver: threading.Thread
) -> tuple[str, set[int]]:
    """Wait until some runs finished and a worker is busy; return it and its runs in flight."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and driver.is_alive():
        finished = len(manifest.read_text().splitlines()) - 1 if manifest.exists() else 0
        busy = {worker: keys for worker, keys in client.processing().items() if keys}
        if finished >= 1 and len(busy) == 2:
            victim = sorted(busy)[0]
            runs: set[int] = set()
            for key in busy[victim]:
                # A task of the sweep's graph: ("gmat-group-<token>", first run_id, last run_id).
                _, first, last = key
                runs.update(range(first, last + 1))
            return victim, runs
        time.sleep(0.05)
    raise AssertionError("no moment with runs in flight on both workers was observed")


@pytest.mark.usefixtures("slurm")
def test_adaptive_cluster_gives_late_workers_work(
    slow: Path, tmp_path: Path, slow_reference: pd.DataFrame
) -> None:
    # A short target duration makes the scheduler ask for the second job as soon as runs queue.
    with (
        dask.config.set({"distributed.adaptive.target-duration": "1s"}),
        jobqueue_pool("slurm", minimum=1, maximum=2, **_job_options(tmp_path / "logs")) as pool,
        distributed.get_task_stream(pool.client) as stream,
    ):
        # Twice SLOW_GRID's runs: ~12 s on one worker leaves the second job time to start on
        # a busy machine (its first 12 runs are SLOW_GRID's).
        grid = {"Days.Value": [0.01 + 0.002 * i for i in range(24)]}
        result = sweep(slow, grid, backend=pool, out=tmp_path / "s", progress=False)
    _assert_complete(result, 24)
    frame = result.to_dataframe().compute()
    pd.testing.assert_frame_equal(frame.loc[slow_reference.index], slow_reference)
    workers = {task["worker"] for task in stream.data}
    assert len(workers) == 2, f"the worker that joined late got no tasks: {workers}"


@pytest.mark.usefixtures("slurm")
def test_cli_cluster_takes_job_options_from_dask_config(
    leo_basic: Path, tmp_path: Path, leo_reference: pd.DataFrame
) -> None:
    options = _job_options(tmp_path / "logs")
    config = {
        f"jobqueue.slurm.{key.replace('_', '-')}": value
        for key, value in options.items()
        if key not in ("job_name", "scheduler_options")
    }
    config["jobqueue.slurm.name"] = JOB_NAME
    config["jobqueue.slurm.scheduler-options"] = options["scheduler_options"]
    out = tmp_path / "s"
    argv = ["run", str(leo_basic), "--param", "Sat.SMA=6800:6850:6"]
    argv += ["--param", "Sat.INC=28.5,51.6,82.0,97.8,45.0", "--cluster", "slurm", "--jobs", "2"]
    with dask.config.set(config):
        assert main([*argv, "--out", str(out), "--quiet"]) == 0
    frame = lazy_multiindex(Manifest.load(out / "manifest.jsonl"), out)
    pd.testing.assert_frame_equal(frame, leo_reference)


@pytest.mark.usefixtures("slurm")
def test_worker_without_engine_fails_naming_its_node(leo_basic: Path, tmp_path: Path) -> None:
    options = _job_options(tmp_path / "logs")
    options["job_script_prologue"] = ["export GMAT_ROOT=/nonexistent"]
    with (
        jobqueue_pool("slurm", jobs=1, **options) as pool,
        pytest.raises(BackendError, match=re.escape(socket.gethostname())) as info,
    ):
        sweep(leo_basic, LEO_GRID, backend=pool, out=tmp_path / "s", progress=False)
    assert "/nonexistent" in str(info.value)
    # Raised while the mission is checked on a worker: before anything is written.
    assert not (tmp_path / "s").exists()


@pytest.fixture
def engineless_cluster() -> Iterator[Any]:
    """A LocalCluster whose worker processes see GMAT_ROOT pointing nowhere."""
    with distributed.LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        env={"GMAT_ROOT": "/nonexistent"},
    ) as cluster:
        yield cluster


def test_worker_without_engine_fails_the_sweep_not_the_runs(
    leo_basic: Path, tmp_path: Path, engineless_cluster: Any
) -> None:
    with (
        distributed.Client(engineless_cluster) as client,
        DaskPool(client=client) as pool,
        pytest.raises(BackendError, match=re.escape(socket.gethostname())) as info,
    ):
        sweep(leo_basic, LEO_GRID, backend=pool, out=tmp_path / "s", progress=False)
    assert "GMAT engine could not start" in str(info.value)
    # Raised while the mission is checked on a worker: before anything is written.
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "kubernetes", "jobs": 1}, "cluster kind 'kubernetes' is not supported"),
        ({"jobs": 2, "maximum": 4}, "not both"),
        ({}, "no workers"),
        ({"jobs": 0}, "at least 1 job"),
        ({"minimum": 3, "maximum": 2}, "at least minimum=3"),
        ({"jobs": 1.5}, "whole number"),
    ],
)
def test_jobqueue_pool_rejects_bad_sizing(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(BackendError, match=re.escape(message)):
        jobqueue_pool(**kwargs)


def test_jobqueue_pool_refuses_a_bad_reuse_gmat_context_before_making_a_cluster(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import dask_jobqueue

    made: list[object] = []
    monkeypatch.setattr(dask_jobqueue, "PBSCluster", lambda **kwargs: made.append(kwargs))
    with pytest.raises(BackendError, match=re.escape("reuse_gmat_context='no'")):
        jobqueue_pool("pbs", jobs=1, cores=1, memory="1GB", reuse_gmat_context="no")  # type: ignore[arg-type]
    assert made == [], "a cluster (and its client) was made for a pool that was then refused"


def test_jobqueue_pool_without_dask_jobqueue_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "dask_jobqueue", None)
    with pytest.raises(BackendError, match=re.escape("pip install dask-jobqueue")):
        jobqueue_pool("pbs", jobs=1)


def test_jobqueue_pool_without_cores_or_memory_names_the_config() -> None:
    with (
        dask.config.set({"jobqueue.pbs.cores": None, "jobqueue.pbs.memory": None}),
        pytest.raises(BackendError, match=re.escape("jobqueue.pbs")),
    ):
        jobqueue_pool("pbs", jobs=1)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--jobs", "2"], "add --cluster KIND"),
        (["--cluster", "slurm"], "give either --jobs N"),
        (["--cluster", "slurm", "--jobs", "1", "--adapt", "0:2"], "give either --jobs N"),
        (["--cluster", "slurm", "--adapt", "two"], "write MIN:MAX"),
    ],
)
def test_cli_cluster_options_are_checked(
    leo_basic: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    argv = ["run", str(leo_basic), "--param", "Sat.SMA=6800", "--out", str(tmp_path / "s")]
    assert main([*argv, *extra]) == 2
    assert message in capsys.readouterr().err
