"""The backend conformance suite every :class:`~gmat_sweep.backends.base.Pool` must pass.

As ``zarr.testing`` ships ``StoreTests``, this module ships :class:`PoolTests`:
subclass it in a test module, say how to build your pool, and pytest runs
the whole suite against it with real GMAT runs on missions bundled with
gmat_sweep::

    from gmat_sweep.testing import PoolTests

    class TestMyPool(PoolTests):
        def make_pool(self, workers, *, reuse_gmat_context=True):
            return MyPool(workers, reuse_gmat_context=reuse_gmat_context)

Every test compares the pool with a reference sweep run by the default
backend on one worker, bit for bit. The suite needs ``pytest`` (it is a test
helper, never imported by gmat_sweep itself). Process checks read ``/proc``
(Linux) and only look at processes the test process started.
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
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd
import pytest

from gmat_sweep.api import sweep
from gmat_sweep.backends.base import Pool
from gmat_sweep.backends.local import LocalPool
from gmat_sweep.errors import BackendError, SweepConfigError
from gmat_sweep.grid import expand_grid_to_run_specs
from gmat_sweep.manifest import read_all_entries
from gmat_sweep.spec import RunSpec, RunStatus
from gmat_sweep.sweep import Sweep
from gmat_sweep.worker import running_in

GRID = {"Sat.SMA": [6900.0, 7000.0], "Sat.ECC": [0.001, 0.02]}
"""The swept grid: four fast runs of the bundled ``leo_basic`` mission."""

TIMEOUT_S = 1.0
ENDLESS_DAYS = 100.0
"""``Days.Value`` of a ``slow`` run that only a timeout or a kill can end (hours of propagation)."""
KILL_AFTER_S = 0.5
HOST_MARK = b"gmat_sweep.backends._subprocess import serve"
TAG_VARIABLE = "GMAT_SWEEP_TEST_TAG"


def mission(name: str) -> Path:
    """Path of a mission bundled with gmat_sweep (``leo_basic``, ``slow`` ...)."""
    return Path(str(resources.files("gmat_sweep") / "data" / f"{name}.script"))


def final_sma(outputs: dict[str, pd.DataFrame], overrides: dict[str, Any]) -> dict[str, Any]:
    """A per-run metric for the suite: the last ``Sat.Earth.SMA`` of report RF, and its rows."""
    report = outputs["RF"]
    return {"final_sma": float(report["Sat.Earth.SMA"].iloc[-1]), "rows": len(report)}


def specs_for(script: Path, rows: list[dict[str, Any]], out: Path) -> list[RunSpec]:
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
    """Whether host ``pid`` is inside a run (GMAT's run log is in its run directory)."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False
    tmpdirs = [item[len(b"TMPDIR=") :] for item in environ if item.startswith(b"TMPDIR=")]
    return bool(tmpdirs) and running_in(Path(os.fsdecode(tmpdirs[0])))


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
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:  # it ended while we looked
            continue
        if marker in environ.split(b"\0") and "\nState:\tZ" not in status:
            found.append(f"{pid}: {cmdline.replace(b'\0', b' ').decode(errors='replace')[:160]}")
    return found


def child_main(suite: str, out: Path) -> None:
    """Body of a fresh interpreter: sweep the grid with one worker, report leftovers.

    ``suite`` is ``module:Class`` of the :class:`PoolTests` subclass whose
    :meth:`PoolTests.make_pool` builds the pool.
    """
    module, _, name = suite.partition(":")
    __import__(module)
    tests: PoolTests = getattr(sys.modules[module], name)()
    specs = expand_grid_to_run_specs(GRID, mission("leo_basic"), out / "sweep")
    with tests.make_pool(1) as one:
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


class FreshRun(NamedTuple):
    """What a one-worker sweep of :data:`GRID` in a fresh interpreter left behind."""

    frame: pd.DataFrame
    """Its frame (``Sweep.to_pandas``)."""
    leftovers: list[str]
    """Processes the pool left running when its ``with`` block ended."""
    survivors: list[str]
    """Processes of the pool still running after the interpreter exited."""
    started: list[int]
    """Run ids in the order the runs started."""


_CHILD = """
import sys
from pathlib import Path

from gmat_sweep.testing import child_main

child_main(sys.argv[1], Path(sys.argv[2]))
"""


class PoolTests:
    """The conformance suite; subclass it and implement :meth:`make_pool`.

    Each pool is started once per subclass with two workers. The one-worker
    run and the clean-up check use a fresh interpreter, because one process
    can hold only one runtime of some executors (Ray) and because processes a
    pool leaks would outlive it.

    The run of the timeout test is endless: only ``run_options["timeout_s"]``
    can end it, so a pool that ignores timeouts hangs that test. Run the suite
    with a per-test timeout (pytest-timeout, e.g. ``timeout = 300`` in the
    ``[tool.pytest.ini_options]`` table, as this project does).
    """

    def make_pool(self, workers: int, *, reuse_gmat_context: bool = True) -> Pool:
        """A new pool running ``workers`` runs at once."""
        raise NotImplementedError("subclass PoolTests and return your pool from make_pool()")

    def isolated_pool(self, pool: Pool) -> Pool:
        """A pool like ``pool`` with ``reuse_gmat_context=False`` (override to share a cluster)."""
        return self.make_pool(pool.workers or 2, reuse_gmat_context=False)

    # -- fixtures ------------------------------------------------------------------

    @pytest.fixture(scope="class")
    @classmethod
    def pool(cls) -> Iterator[Pool]:
        """A two-worker pool, started once for the suite."""
        with cls().make_pool(2) as started:
            yield started

    @pytest.fixture(scope="class")
    @classmethod
    def reference(cls, tmp_path_factory: pytest.TempPathFactory) -> Sweep:
        """The grid swept by one default-backend worker: what every pool must reproduce."""
        out = tmp_path_factory.mktemp("reference") / "sweep"
        with LocalPool(1) as one:
            return sweep(mission("leo_basic"), GRID, backend=one, out=out, progress=False)

    @pytest.fixture(scope="class")
    @classmethod
    def fresh_process_run(cls, tmp_path_factory: pytest.TempPathFactory) -> FreshRun:
        """The one-worker sweep of the grid in a new interpreter (:class:`FreshRun`)."""
        out = tmp_path_factory.mktemp("fresh")
        tag = uuid.uuid4().hex
        suite = f"{cls.__module__}:{cls.__qualname__}"
        env = dict(os.environ, **{TAG_VARIABLE: tag, "PYTHONPATH": os.pathsep.join(sys.path)})
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, suite, str(out)],
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
        entries = read_all_entries(out / "sweep" / "manifest.jsonl")
        started = [entry.run_id for entry in sorted(entries, key=lambda entry: entry.started_at)]
        return FreshRun(pd.read_pickle(out / "frame.pkl"), leftovers, survivors, started)

    # -- the suite -----------------------------------------------------------------

    def test_grid_sweep_is_bit_equal_to_the_reference(
        self, pool: Pool, reference: Sweep, tmp_path: Path
    ) -> None:
        result = sweep(mission("leo_basic"), GRID, backend=pool, out=tmp_path / "s", progress=False)
        assert result.manifest.backend == pool.name
        assert pool.workers in (None, 2)  # a pool that does not know its size says None
        pd.testing.assert_frame_equal(result.to_pandas(), reference.to_pandas(), check_exact=True)

    def test_postprocess_metrics_equal_the_frame(self, pool: Pool, tmp_path: Path) -> None:
        result = sweep(
            mission("leo_basic"),
            GRID,
            backend=pool,
            out=tmp_path / "s",
            progress=False,
            postprocess=final_sma,
        )
        metrics = result.metrics()
        last = result.to_pandas().groupby(level="run_id")["Sat.Earth.SMA"].last()
        pd.testing.assert_series_equal(metrics["final_sma"], last, check_names=False)
        assert metrics["__status"].eq("ok").all()
        assert list(metrics["Sat.SMA"]) == [6900.0, 7000.0, 6900.0, 7000.0]

    def test_a_bad_field_path_is_refused_before_any_run(self, pool: Pool, tmp_path: Path) -> None:
        with pytest.raises(SweepConfigError, match=r"Sat\.SMAX.*unknown field 'SMAX'"):
            sweep(
                mission("leo_basic"),
                {"Sat.SMAX": [7000.0]},
                backend=pool,
                out=tmp_path / "s",
                progress=False,
            )
        assert not (tmp_path / "s").exists()

    def test_one_worker_gives_the_same_frame(
        self, fresh_process_run: FreshRun, reference: Sweep
    ) -> None:
        pd.testing.assert_frame_equal(
            fresh_process_run.frame, reference.to_pandas(), check_exact=True
        )

    def test_one_worker_starts_the_runs_in_run_id_order(self, fresh_process_run: FreshRun) -> None:
        # Dask orders independent tasks by their key names, backwards: unless the sweep says
        # otherwise, run 3 would start first (and a sweep stopped half-way would hold its
        # second half). Neighbours may swap: a pool may hand out two runs per worker at once.
        place = {run_id: i for i, run_id in enumerate(fresh_process_run.started)}
        assert sorted(place) == list(range(len(place)))
        assert all(place[run_id] < place[run_id + 2] for run_id in range(len(place) - 2)), place

    def test_leaving_the_with_block_leaves_no_process(self, fresh_process_run: FreshRun) -> None:
        assert fresh_process_run.leftovers == []
        assert fresh_process_run.survivors == []

    def test_failed_runs_are_rows(self, pool: Pool, tmp_path: Path) -> None:
        out = tmp_path / "s"
        rows = [{"Idx.Value": 1}, {"Idx.Value": 4}, {"Idx.Value": 3}]
        result = run_sweep(pool, specs_for(mission("fails_at_runtime"), rows, out), out)
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

    def test_a_run_past_its_timeout_is_a_failed_row(self, pool: Pool, tmp_path: Path) -> None:
        out = tmp_path / "s"
        # Only the long run has a timeout, so the short one cannot be cut off on a busy machine.
        # Left to finish, the long run would outlast any test timeout: only its own timeout
        # can end it, however slow the machine, so no clock has to tell late from on time.
        rows = [{"Days.Value": ENDLESS_DAYS}, {"Days.Value": 0.001}]
        stopped_spec, short_spec = specs_for(mission("slow"), rows, out)
        stopped_spec = dataclasses.replace(stopped_spec, run_options={"timeout_s": TIMEOUT_S})
        result = run_sweep(pool, [stopped_spec, short_spec], out, retries=0)
        stopped = result.manifest.entry_for(0)
        assert stopped is not None and stopped.stderr is not None
        assert stopped.status is RunStatus.FAILED
        assert stopped.stderr.startswith("timed out after 1 s")
        assert stopped.duration_s >= TIMEOUT_S  # the clock starts once the script is loaded
        finished = result.manifest.entry_for(1)
        assert finished is not None and finished.status is RunStatus.OK
        # slow.script's report has no epoch column, so the frame is keyed by run_id alone.
        frame = result.to_dataframe().compute()  # type: ignore[no-untyped-call]
        assert frame.groupby(level="run_id")["__status"].first().tolist() == ["failed", "ok"]

    @pytest.mark.parametrize("retries", [0, 1])
    def test_a_killed_gmat_host_fails_the_run_or_is_retried(
        self, pool: Pool, tmp_path: Path, retries: int
    ) -> None:
        out = tmp_path / "s"
        specs = specs_for(mission("slow"), [{"Days.Value": 0.1}], out)
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

    def test_isolated_runs_each_load_their_own_script(
        self, pool: Pool, reference: Sweep, tmp_path: Path
    ) -> None:
        out = tmp_path / "s"
        with self.isolated_pool(pool) as isolated:
            assert not isolated.reuse_gmat_context
            # One run of each script: every isolated run pays for a new interpreter.
            result = run_sweep(isolated, _mixed_specs(out)[:2], out)
        _assert_each_run_used_its_own_script(result, reference)

    def test_reused_context_reloads_when_the_script_changes(
        self, pool: Pool, reference: Sweep, tmp_path: Path
    ) -> None:
        # With reuse_gmat_context=True a worker's GMAT host caches its mission keyed
        # by the script's hash and path, so a run of another script reloads: mixing scripts
        # costs reloads but never gives a run another script's results.
        out = tmp_path / "s"
        assert pool.reuse_gmat_context
        result = run_sweep(pool, _mixed_specs(out), out)
        _assert_each_run_used_its_own_script(result, reference)

    def test_subprocess_isolation_cannot_be_switched_off(self, pool: Pool) -> None:
        with pytest.raises(BackendError, match=r"subprocess_isolated = False.*remove the override"):
            type("Unisolated", (type(pool),), {"subprocess_isolated": False})


def _mixed_specs(out: Path) -> list[RunSpec]:
    """Runs alternating between two scripts, so each worker has to switch missions."""
    leo, multi = mission("leo_basic"), mission("multi_output")
    rows: list[tuple[Path, dict[str, Any]]] = [
        (leo, {"Sat.SMA": 6900.0, "Sat.ECC": 0.001}),
        (multi, {"Hours.Value": 1.0}),
        (leo, {"Sat.SMA": 7000.0, "Sat.ECC": 0.02}),
        (multi, {"Hours.Value": 2.0}),
    ]
    return [
        RunSpec(script, row, out / f"run-{i:06d}", i, None, {})
        for i, (script, row) in enumerate(rows)
    ]


def _assert_each_run_used_its_own_script(result: Sweep, reference: Sweep) -> None:
    """leo_basic runs equal the reference bit for bit; multi_output runs have its outputs."""
    root = Path(result.output_dir)
    for spec in result.runs:
        entry = result.manifest.entry_for(spec.run_id)
        assert entry is not None
        assert entry.status is RunStatus.OK, entry.stderr
        if spec.script_path.name == "leo_basic.script":
            assert set(entry.output_paths) == {"report__RF"}
            got = pd.read_parquet(root / entry.output_paths["report__RF"])
            (expected,) = [e for e in reference.manifest.entries if e.overrides == spec.overrides]
            want = pd.read_parquet(Path(reference.output_dir) / expected.output_paths["report__RF"])
            pd.testing.assert_frame_equal(got, want)
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
