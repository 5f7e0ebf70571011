"""Backend conformance: one suite that every :class:`~gmat_sweep.backends.base.Pool` passes.

Each test runs unchanged on LocalPool, DaskPool (a real ``LocalCluster``),
LocalJoblibPool (loky) and RayPool (a real local Ray runtime). Every pool
starts once for the module with two workers; the one-worker run and the
clean-up check use a fresh interpreter per backend, because one process can
hold only one Ray runtime and because processes a pool leaks would outlive it.
Process checks read ``/proc`` and only ever look at processes this test
process (or its child) started, so other work on the machine cannot disturb
them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from gmat_sweep import (
    DaskPool,
    LocalJoblibPool,
    LocalPool,
    Pool,
    RayPool,
    Sweep,
    expand_grid_to_run_specs,
    sweep,
)
from gmat_sweep.errors import BackendError, SweepConfigError
from gmat_sweep.manifest import read_all_entries
from gmat_sweep.spec import RunSpec, RunStatus

KINDS = ("local", "dask", "joblib", "ray")
POOL_CLASSES: dict[str, type[Pool]] = {
    "local": LocalPool,
    "dask": DaskPool,
    "joblib": LocalJoblibPool,
    "ray": RayPool,
}
GRID = {"Sat.SMA": [6900.0, 7000.0], "Sat.ECC": [0.001, 0.02]}
TIMEOUT_S = 1.0
# The timeout clock starts once the mission is loaded, so a run's recorded duration
# is its load (cold: ~0.3 s, more on a busy machine) plus the timeout. Left to
# finish, the timed-out run (Days.Value 0.3) would take well over 3 s.
TIMEOUT_MARGIN_S = 1.5
KILL_AFTER_S = 0.5
HOST_MARK = b"gmat_sweep.backends._subprocess import serve"
TAG_VARIABLE = "GMAT_SWEEP_TEST_TAG"


def make_pool(kind: str, workers: int, *, reuse_gmat_context: bool = True) -> Pool:
    """A new pool of ``kind`` running ``workers`` runs at once."""
    if kind == "local":
        return LocalPool(workers, reuse_gmat_context=reuse_gmat_context)
    if kind == "dask":
        return DaskPool(n_workers=workers, reuse_gmat_context=reuse_gmat_context)
    if kind == "joblib":
        return LocalJoblibPool(workers, reuse_gmat_context=reuse_gmat_context)
    return RayPool(num_cpus=workers, reuse_gmat_context=reuse_gmat_context)


def sibling(pool: Pool, *, reuse_gmat_context: bool) -> Pool:
    """A pool like ``pool`` in another GMAT-context mode, on the same cluster when it has one."""
    if isinstance(pool, DaskPool):
        return DaskPool(client=pool.client, reuse_gmat_context=reuse_gmat_context)
    if isinstance(pool, RayPool):
        return RayPool(reuse_gmat_context=reuse_gmat_context)  # joins the running runtime
    if isinstance(pool, LocalJoblibPool):
        return LocalJoblibPool(pool.workers, reuse_gmat_context=reuse_gmat_context)
    assert isinstance(pool, LocalPool)
    return LocalPool(pool.workers, reuse_gmat_context=reuse_gmat_context)


@pytest.fixture(scope="module", params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    """The backend under test."""
    value: str = request.param
    return value


@pytest.fixture(scope="module")
def pool(kind: str) -> Iterator[Pool]:
    """A two-worker pool of ``kind``, started once for the module."""
    with make_pool(kind, 2) as started:
        yield started


@pytest.fixture(scope="module")
def reference(leo_basic: Path, tmp_path_factory: pytest.TempPathFactory) -> Sweep:
    """The grid swept by one default-backend worker: what every backend must reproduce."""
    out = tmp_path_factory.mktemp("reference") / "sweep"
    with LocalPool(1) as one:
        return sweep(leo_basic, GRID, backend=one, out=out, progress=False)


# -- helpers ---------------------------------------------------------------------------


def specs_for(script: Path, rows: list[dict[str, float]], out: Path) -> list[RunSpec]:
    """One spec per row of overrides, numbered from 0."""
    return [
        RunSpec(script, dict(row), out / f"run-{i:06d}", i, None, {}) for i, row in enumerate(rows)
    ]


def run_sweep(pool: Pool, specs: list[RunSpec], out: Path, *, retries: int = 1) -> Sweep:
    """Run ``specs`` through :class:`Sweep` (no validation probe, so it is quick)."""
    return Sweep(
        runs=specs,
        backend=pool,
        manifest_path=out / "manifest.jsonl",
        output_dir=out,
        script_path=specs[0].script_path,
        parameter_spec={"_kind": "samples", "rows": [spec.overrides for spec in specs]},
        progress=False,
        retries=retries,
    ).run()


def reference_report(reference: Sweep, overrides: dict[str, float]) -> pd.DataFrame:
    """The reference sweep's RF report for the run with ``overrides``."""
    (entry,) = [e for e in reference.manifest.entries if e.overrides == overrides]
    return pd.read_parquet(Path(reference.output_dir) / entry.output_paths["report__RF"])


def mixed_specs(leo_basic: Path, multi_output: Path, out: Path) -> list[RunSpec]:
    """Runs alternating between two scripts, so each worker has to switch missions."""
    rows = [
        (leo_basic, {"Sat.SMA": 6900.0, "Sat.ECC": 0.001}),
        (multi_output, {"Hours.Value": 1.0}),
        (leo_basic, {"Sat.SMA": 7000.0, "Sat.ECC": 0.02}),
        (multi_output, {"Hours.Value": 2.0}),
    ]
    return [
        RunSpec(script, row, out / f"run-{i:06d}", i, None, {})
        for i, (script, row) in enumerate(rows)
    ]


def assert_each_run_used_its_own_script(result: Sweep, reference: Sweep) -> None:
    """leo_basic runs equal the reference bit for bit; multi_output runs have its outputs."""
    root = Path(result.output_dir)
    for spec in result.runs:
        entry = result.manifest.entry_for(spec.run_id)
        assert entry is not None
        assert entry.status is RunStatus.OK, entry.stderr
        if spec.script_path.name == "leo_basic.script":
            assert set(entry.output_paths) == {"report__RF"}
            got = pd.read_parquet(root / entry.output_paths["report__RF"])
            pd.testing.assert_frame_equal(got, reference_report(reference, spec.overrides))
        else:
            assert set(entry.output_paths) == {
                "report__StateReport",
                "report__KeplerReport",
                "ephemeris__OEMEphem",
                "ephemeris__STKEphem",
            }
            state = pd.read_parquet(root / entry.output_paths["report__StateReport"])
            span = state["time"].iloc[-1] - state["time"].iloc[0]
            assert span == pd.Timedelta(hours=spec.overrides["Hours.Value"])


def _processes() -> dict[int, tuple[int, bytes]]:
    """pid -> (parent pid, command line) of every process visible in /proc."""
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
            cmdline = Path(entry.path, "cmdline").read_bytes()
        except OSError:
            continue
        found[int(entry.name)] = (int(stat.rsplit(")", 1)[1].split()[1]), cmdline)
    return found


def gmat_hosts() -> list[int]:
    """GMAT host processes in this test process's tree (its own or its pools' workers')."""
    table = _processes()
    me = os.getpid()

    def in_my_tree(pid: int) -> bool:
        while pid > 1:
            pid = table[pid][0] if pid in table else 0
            if pid == me:
                return True
        return False

    return [pid for pid, (_, cmd) in table.items() if HOST_MARK in cmd and in_my_tree(pid)]


def running_a_mission(pid: int) -> bool:
    """Whether host ``pid`` is inside a run.

    While a run is in progress, :func:`gmat_sweep.worker.run_one` keeps a
    ``gmat-sweep-run-*`` scratch directory in the host's private ``TMPDIR``.
    """
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False
    tmpdirs = [item[len(b"TMPDIR=") :] for item in environ if item.startswith(b"TMPDIR=")]
    if not tmpdirs:
        return False
    try:
        return any(
            name.startswith("gmat-sweep-run-") for name in os.listdir(os.fsdecode(tmpdirs[0]))
        )
    except OSError:
        return False


class HostKiller(threading.Thread):
    """SIGKILL the first GMAT host seen running a mission, ``KILL_AFTER_S`` into the run."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.killed: int | None = None
        self._done = threading.Event()

    def run(self) -> None:
        seen: dict[int, float] = {}
        while not self._done.wait(0.02):
            now = time.monotonic()
            for pid in gmat_hosts():
                if running_a_mission(pid):
                    seen.setdefault(pid, now)
                    if now - seen[pid] >= KILL_AFTER_S:
                        os.kill(pid, signal.SIGKILL)
                        self.killed = pid
                        return

    def stop(self) -> None:
        self._done.set()
        self.join()


def tagged_processes(tag: str) -> list[str]:
    """Command lines of live processes whose environment carries ``tag``."""
    marker = f"{TAG_VARIABLE}={tag}".encode()
    found = []
    for pid in _processes():
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        if marker in environ.split(b"\0") and "\nState:\tZ" not in status:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            found.append(f"{pid}: {cmdline.replace(b'\0', b' ').decode(errors='replace')[:160]}")
    return found


def child_main(kind: str, script: Path, out: Path) -> None:
    """Body of the fresh interpreter: sweep the grid with one worker, report leftovers."""
    specs = expand_grid_to_run_specs(GRID, script, out / "sweep")
    with make_pool(kind, 1) as one:
        result = run_sweep(one, specs, out / "sweep")
    result.to_pandas().to_pickle(out / "frame.pkl")
    tag = os.environ[TAG_VARIABLE]
    own = str(os.getpid())
    # Interpreter-wide helpers (multiprocessing's and loky's resource trackers) belong
    # to this interpreter, not to the pool, and exit with it.
    leftovers = [
        line
        for line in tagged_processes(tag)
        if line.split(":")[0] != own and "resource_tracker" not in line
    ]
    (out / "leftovers.json").write_text(json.dumps(leftovers))


_CHILD = """
import sys
from pathlib import Path

sys.path.insert(0, sys.argv[1])
from test_backends import child_main

child_main(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]))
"""


@pytest.fixture(scope="module")
def fresh_process_run(
    kind: str, leo_basic: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Frame of a one-worker sweep in a new interpreter, its leftovers, and survivors.

    Leftovers are the processes still alive when the pool's ``with`` block has
    closed; survivors those still alive after the interpreter exited.
    """
    out = tmp_path_factory.mktemp(f"fresh-{kind}")
    tag = uuid.uuid4().hex
    env = dict(os.environ, **{TAG_VARIABLE: tag})
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(Path(__file__).parent), kind, str(leo_basic), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    deadline = time.monotonic() + 5.0
    while (survivors := tagged_processes(tag)) and time.monotonic() < deadline:
        time.sleep(0.1)
    leftovers: list[str] = json.loads((out / "leftovers.json").read_text())
    return pd.read_pickle(out / "frame.pkl"), leftovers, survivors


# -- the conformance suite -------------------------------------------------------------


@pytest.mark.slow
def test_grid_sweep_is_bit_equal_to_the_reference(
    pool: Pool, reference: Sweep, leo_basic: Path, tmp_path: Path
) -> None:
    result = sweep(leo_basic, GRID, backend=pool, out=tmp_path / "s", progress=False)
    assert result.manifest.backend == pool.name
    assert pool.workers == 2
    pd.testing.assert_frame_equal(result.to_pandas(), reference.to_pandas(), check_exact=True)


def test_a_bad_field_path_is_refused_before_any_run(
    pool: Pool, leo_basic: Path, tmp_path: Path
) -> None:
    # Every pool validates field paths in a GMAT process before dispatching runs.
    with pytest.raises(SweepConfigError, match=r"Sat\.SMAX.*unknown field 'SMAX'"):
        sweep(leo_basic, {"Sat.SMAX": [7000.0]}, backend=pool, out=tmp_path / "s", progress=False)
    assert not (tmp_path / "s").exists()


@pytest.mark.slow
def test_one_worker_gives_the_same_frame(
    fresh_process_run: tuple[pd.DataFrame, list[str], list[str]], reference: Sweep
) -> None:
    frame, _, _ = fresh_process_run
    pd.testing.assert_frame_equal(frame, reference.to_pandas(), check_exact=True)


@pytest.mark.slow
def test_leaving_the_with_block_leaves_no_process(
    fresh_process_run: tuple[pd.DataFrame, list[str], list[str]],
) -> None:
    _, leftovers, survivors = fresh_process_run
    assert leftovers == []
    assert survivors == []


@pytest.mark.slow
def test_failed_runs_are_rows(pool: Pool, fails_at_runtime: Path, tmp_path: Path) -> None:
    out = tmp_path / "s"
    specs = specs_for(fails_at_runtime, [{"Idx.Value": 1}, {"Idx.Value": 4}, {"Idx.Value": 3}], out)
    result = run_sweep(pool, specs, out)
    assert result.failed_run_ids == [1]
    entry = result.manifest.entry_for(1)
    assert entry is not None and entry.stderr is not None
    assert "index out-of-bounds" in entry.stderr
    frame = result.to_pandas()
    status = frame.groupby(level="run_id")["__status"].first()
    assert status.to_dict() == {0: "ok", 1: "failed", 2: "ok"}
    failed = frame.xs(1, level="run_id", drop_level=False).reset_index()
    assert len(failed) == 1
    assert failed["time"].isna().all()
    assert failed["Sat.Earth.RMAG"].isna().all()


@pytest.mark.slow
def test_a_run_past_its_timeout_is_a_failed_row(pool: Pool, slow: Path, tmp_path: Path) -> None:
    out = tmp_path / "s"
    # Only the long run has a timeout, so the short one cannot be cut off on a busy machine.
    stopped_spec, short_spec = specs_for(slow, [{"Days.Value": 0.3}, {"Days.Value": 0.001}], out)
    stopped_spec = dataclasses.replace(stopped_spec, run_options={"timeout_s": TIMEOUT_S})
    result = run_sweep(pool, [stopped_spec, short_spec], out, retries=0)
    stopped = result.manifest.entry_for(0)
    assert stopped is not None and stopped.stderr is not None
    assert stopped.status is RunStatus.FAILED
    assert stopped.stderr.startswith("timed out after 1 s")
    assert TIMEOUT_S <= stopped.duration_s < TIMEOUT_S + TIMEOUT_MARGIN_S
    finished = result.manifest.entry_for(1)
    assert finished is not None and finished.status is RunStatus.OK
    # slow.script's report has no epoch column, so the frame is keyed by run_id alone.
    frame = result.to_dataframe().compute()
    assert frame.groupby(level="run_id")["__status"].first().tolist() == ["failed", "ok"]


@pytest.mark.slow
@pytest.mark.parametrize("retries", [0, 1])
def test_a_killed_gmat_host_fails_the_run_or_is_retried(
    pool: Pool, slow: Path, tmp_path: Path, retries: int
) -> None:
    out = tmp_path / "s"
    specs = specs_for(slow, [{"Days.Value": 0.1}], out)
    killer = HostKiller()
    killer.start()
    try:
        result = run_sweep(pool, specs, out, retries=retries)
    finally:
        killer.stop()
    assert killer.killed is not None, "no GMAT host was seen running the mission"
    attempts = [
        json.loads(line)
        for line in (out / "manifest.jsonl").read_text().splitlines()[1:]
        if line.strip()
    ]
    entry = result.manifest.entry_for(0)
    assert entry is not None
    if retries == 0:
        assert len(attempts) == 1
        assert entry.status is RunStatus.FAILED
        assert entry.stderr is not None
        assert entry.stderr.startswith("worker process died (killed by SIGKILL)")
    else:
        assert len(attempts) == 2
        assert attempts[0]["status"] == "failed"
        assert entry.status is RunStatus.OK


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


def test_a_ray_task_whose_worker_crashed_is_a_failed_attempt_then_retried(
    kind: str, pool: Pool, leo_basic: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ray gives up on a task whose worker keeps dying with WorkerCrashedError (Dask's
    # KilledWorker has its own test in test_sweep.py); the runs of that task become
    # failed attempts and the sweep retries them.
    if kind != "ray":
        pytest.skip("WorkerCrashedError is Ray's; the other pools have no such task error")
    ray = CrashFirstTask(pool._ray)  # type: ignore[attr-defined]
    monkeypatch.setattr(pool, "_ray", ray)
    out = tmp_path / "s"
    result = run_sweep(pool, specs_for(leo_basic, [{"Sat.SMA": 7000.0}], out), out)
    assert ray.crashed
    first, second = read_all_entries(out / "manifest.jsonl")
    assert first.status is RunStatus.FAILED
    assert first.stderr is not None
    assert first.stderr.startswith("worker process died (the Ray worker running it died")
    assert second.status is RunStatus.OK
    assert result.manifest.find_failed() == []


@pytest.mark.slow
def test_isolated_runs_each_load_their_own_script(
    pool: Pool, reference: Sweep, leo_basic: Path, multi_output: Path, tmp_path: Path
) -> None:
    out = tmp_path / "s"
    with sibling(pool, reuse_gmat_context=False) as isolated:
        assert not isolated.reuse_gmat_context
        # One run of each script: every isolated run pays for a new interpreter.
        result = run_sweep(isolated, mixed_specs(leo_basic, multi_output, out)[:2], out)
    assert_each_run_used_its_own_script(result, reference)


@pytest.mark.slow
def test_reused_context_reloads_when_the_script_changes(
    pool: Pool, reference: Sweep, leo_basic: Path, multi_output: Path, tmp_path: Path
) -> None:
    # With reuse_gmat_context=True a worker's GMAT host caches its mission keyed
    # by the script's hash, so a run of another script reloads: mixing scripts
    # costs reloads but never gives a run another script's results.
    out = tmp_path / "s"
    assert pool.reuse_gmat_context
    result = run_sweep(pool, mixed_specs(leo_basic, multi_output, out), out)
    assert_each_run_used_its_own_script(result, reference)


def test_subprocess_isolation_cannot_be_switched_off(kind: str) -> None:
    with pytest.raises(BackendError, match=r"subprocess_isolated = False.*remove the override"):
        type("Unisolated", (POOL_CLASSES[kind],), {"subprocess_isolated": False})


# -- adapter specifics -----------------------------------------------------------------


@pytest.mark.parametrize("workers", [0, -2, True])
def test_joblib_pool_rejects_a_bad_worker_count(workers: int) -> None:
    with pytest.raises(BackendError, match=rf"workers={workers!r}: .*-1 for one per core"):
        LocalJoblibPool(workers)


def test_ray_pool_without_ray_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(BackendError, match=r"pip install 'gmat_sweep\[ray\]'"):
        RayPool()


@pytest.mark.slow
def test_importing_gmat_sweep_imports_neither_ray_nor_joblib() -> None:
    code = "import sys, gmat_sweep; print([m for m in ('ray', 'joblib') if m in sys.modules])"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == "[]"


def test_cli_builds_joblib_and_ray_pools() -> None:
    from gmat_sweep.cli import _parser, _pool

    args = _parser().parse_args(["demo", "--backend", "joblib", "--workers", "1"])
    with _pool(args) as built:
        assert isinstance(built, LocalJoblibPool)
        assert built.workers == 1
    assert _parser().parse_args(["demo", "--backend", "ray"]).backend == "ray"
