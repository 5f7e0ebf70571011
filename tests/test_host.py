"""GMAT host processes: timeouts kill the run, a dead host is a failed outcome."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from gmat_sweep.backends._subprocess import GmatHost, run_nodes, run_spec_in_subprocess
from gmat_sweep.spec import FailureKind, RunSpec, RunStatus
from gmat_sweep.testing import ENDLESS_DAYS

pytestmark = pytest.mark.slow


def _spec(script: Path, overrides: dict[str, object], out: Path, run_id: int = 0) -> RunSpec:
    return RunSpec(script, dict(overrides), out, run_id, None, {})


def test_timeout_kills_the_run_and_the_host_recovers(
    slow: Path, leo_basic: Path, tmp_path: Path
) -> None:
    host = GmatHost()
    try:
        host.start()
        # A run that would outlast the test's timeout: only the 1 s timeout can end it.
        endless = _spec(slow, {"Days.Value": ENDLESS_DAYS}, tmp_path / "slow")
        outcome = host.run(endless, timeout_s=1.0)
        assert outcome.status is RunStatus.FAILED
        assert outcome.stderr is not None
        assert outcome.stderr.startswith("timed out after 1 s")
        assert outcome.duration_s >= 1.0
        assert host.pid is None  # killed
        after = host.run(_spec(leo_basic, {}, tmp_path / "next", 1))
        assert after.status is RunStatus.OK
    finally:
        host.close()


def test_killed_host_is_a_failed_outcome(slow: Path, leo_basic: Path, tmp_path: Path) -> None:
    host = GmatHost()
    try:
        host.start()
        pid = host.pid
        assert pid is not None
        threading.Timer(0.5, os.kill, (pid, signal.SIGKILL)).start()
        outcome = host.run(_spec(slow, {"Days.Value": 2.0}, tmp_path / "slow"))
        assert outcome.status is RunStatus.FAILED
        assert outcome.stderr is not None
        assert outcome.stderr.startswith("worker process died (killed by SIGKILL)")
        assert host.run(_spec(leo_basic, {}, tmp_path / "next", 1)).status is RunStatus.OK
    finally:
        host.close()


def test_check_fields_reports_unknown_paths_and_parse_errors(
    leo_basic: Path, parse_error: Path
) -> None:
    host = GmatHost()
    try:
        assert host.check_fields(leo_basic, {"Sat.SMA": [7000.0], "Prop.MaxStep": [60]}) == []
        problems = host.check_fields(leo_basic, {"Sat.SMAX": [1.0], "Nope.Value": [1.0]})
        assert len(problems) == 2
        assert "did you mean: SMA" in problems[0]
        assert "Nope" in problems[1]
        (problem,) = host.check_fields(parse_error, {"Sat.SMA": [7000.0]})
        assert "GmatLoadError" in problem
        assert "SMAX" in problem
        (refused,) = host.check_fields(leo_basic, {"Sat.Cd": [2.2, float("nan")]})
        assert "'Sat.Cd'=nan" in refused and "finite number" in refused
    finally:
        host.close()


def test_fresh_interpreter_per_run(multi_output: Path, tmp_path: Path) -> None:
    outcome = run_spec_in_subprocess(_spec(multi_output, {"Hours.Value": 1.0}, tmp_path / "run"))
    assert outcome.status is RunStatus.OK
    assert len(outcome.output_paths) == 4


def test_closing_leaves_no_process(leo_basic: Path, tmp_path: Path) -> None:
    host = GmatHost()
    host.run(_spec(leo_basic, {}, tmp_path / "run"))
    pid = host.pid
    assert pid is not None
    host.close()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_host_that_cannot_be_spawned_leaks_no_descriptor_and_no_scratch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess
    import tempfile

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(subprocess, "Popen", refuse)
    before = set(os.listdir("/proc/self/fd"))
    host = GmatHost()
    with pytest.raises(OSError, match="Too many open files"):
        host.start()
    assert set(os.listdir("/proc/self/fd")) == before
    assert list(tmp_path.iterdir()) == []
    assert host.pid is None


def test_an_interrupted_host_starts_no_new_process(leo_basic: Path, tmp_path: Path) -> None:
    # A pool interrupts its hosts when it closes; a check or run that gets one of them
    # afterwards (a thread that was waiting for it) must not start a child of its own.
    from gmat_sweep.errors import BackendError

    host = GmatHost()
    host.interrupt()
    with pytest.raises(BackendError, match=r"stopped.*pool was closed.*new pool"):
        host.check_fields(leo_basic, {"Sat.SMA": [7000.0]})
    assert host.pid is None
    outcome = host.run(_spec(leo_basic, {}, tmp_path / "run"))
    assert outcome.status is RunStatus.FAILED
    assert outcome.stderr == "worker process died (its pool was closed)"
    assert host.pid is None


def _on_a_thread_of_its_own[T](function: Callable[..., T], *args: object) -> T:
    """``function(*args)`` on a new thread, whose own GMAT host is closed afterwards."""
    from gmat_sweep.backends._subprocess import forget_at_exit, thread_host

    results: list[T] = []

    def body() -> None:
        try:
            results.append(function(*args))
        finally:
            host = thread_host()
            host.close()
            forget_at_exit(host)

    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    return results[0]


def test_grouped_runs_send_the_next_run_before_fsyncing_the_last(
    monkeypatch: pytest.MonkeyPatch, leo_basic: Path, tmp_path: Path
) -> None:
    # In a group on a thread's own host, run k+1 is on its way before run k's outputs are
    # fsynced, so GMAT never waits for the disk; every ok run is fsynced before it is returned.
    from gmat_sweep import storage

    events: list[tuple[object, ...]] = []
    send, settle = GmatHost.send, storage.settle

    def sending(host: GmatHost, spec: RunSpec, durable: bool | None = None) -> object:
        events.append(("send", spec.run_id, durable))
        return send(host, spec, durable)

    def settling(directory: Path, files: list[Path]) -> None:
        events.append(("settle", Path(directory).name))
        settle(directory, files)

    monkeypatch.setattr(GmatHost, "send", sending)
    monkeypatch.setattr(storage, "settle", settling)
    specs = [
        _spec(leo_basic, {"Sat.SMA": 7000.0 + 100 * i}, tmp_path / f"run-{i}", i) for i in range(3)
    ]
    outcomes = _on_a_thread_of_its_own(run_nodes, specs)
    assert [outcome.status for outcome in outcomes] == [RunStatus.OK] * 3
    assert events == [
        ("send", 0, False),
        ("send", 1, False),
        ("settle", "run-0"),
        ("send", 2, False),
        ("settle", "run-1"),
        ("settle", "run-2"),
    ]


def test_a_grouped_run_that_times_out_is_retried_and_the_group_goes_on(
    slow: Path, leo_basic: Path, tmp_path: Path
) -> None:
    specs = [
        _spec(leo_basic, {}, tmp_path / "run-0", 0),
        RunSpec(slow, {"Days.Value": 2.0}, tmp_path / "run-1", 1, None, {"timeout_s": 0.5}),
        _spec(leo_basic, {}, tmp_path / "run-2", 2),
    ]
    first, timed_out, last = _on_a_thread_of_its_own(run_nodes, specs, True, 1)
    assert first.status is RunStatus.OK and last.status is RunStatus.OK
    assert timed_out.failure is FailureKind.TIMEOUT
    assert len(timed_out.previous) == 1  # tried again once, on a fresh host
    assert (tmp_path / "run-2" / "report__RF.parquet").exists()


def test_a_host_whose_start_up_fails_after_its_parent_died_removes_its_scratch(
    tmp_path: Path,
) -> None:
    """The engine error cannot reach a dead parent (BrokenPipeError): the host cleans up itself."""
    import subprocess
    import sys

    scratch = tmp_path / "gmat-sweep-host-x"
    scratch.mkdir()
    (scratch / "mission.script").write_text("% a rendered copy\n")
    child = (
        "import os, sys\n"
        "import gmat_sweep.engine\n"
        "def broken():\n"
        "    raise RuntimeError('no engine here')\n"
        "gmat_sweep.engine.ensure_engine = broken\n"
        "from gmat_sweep.backends._subprocess import serve\n"
        "requests, _ = os.pipe()\n"
        "gone, answers = os.pipe()\n"
        "os.close(gone)  # the parent that would read the answer is dead\n"
        "sys.exit(serve(requests, answers, sys.argv[1]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", child, str(scratch)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1, done.stderr
    assert not scratch.exists(), f"the host left its scratch directory: {done.stderr}"
