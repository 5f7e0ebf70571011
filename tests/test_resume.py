"""Crash safety: kill the driver or a worker anywhere, resume, get the same bits."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
import warnings
from pathlib import Path

import pandas as pd
import pytest

from gmat_sweep import Sweep, monte_carlo, open_sweep, sweep
from gmat_sweep.backends.local import LocalPool
from gmat_sweep.cli import main
from gmat_sweep.errors import ManifestCorruptError, SweepConfigError
from gmat_sweep.manifest import Manifest, read_all_entries
from gmat_sweep.spec import RunStatus
from gmat_sweep.testing import ENDLESS_DAYS, running_a_mission

pytestmark = pytest.mark.slow

GRID = {"Sat.SMA": [6800.0 + 25.0 * i for i in range(12)], "Sat.Cd": [2.0, 2.4]}
HOST_MARKER = "gmat_sweep.backends._subprocess import serve"

_DIE_AT_APPEND = textwrap.dedent(
    """
    import json, os, signal, sys
    from gmat_sweep.manifest import Manifest

    kill_at, script, out, arguments = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    appended = 0
    real_append = Manifest.append_entry

    def append(self, entry):
        # Fault injection: die after the run's outputs are written, before its line is.
        global appended
        if appended == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        appended += 1
        real_append(self, entry)

    Manifest.append_entry = append
    """
)
_DRIVER = _DIE_AT_APPEND + textwrap.dedent(
    """
    from gmat_sweep import sweep
    sweep(script, json.loads(arguments), out=out, progress=False)
    """
)
_ADAPTIVE_DRIVER = _DIE_AT_APPEND + textwrap.dedent(
    """
    from gmat_sweep import monte_carlo
    options = json.loads(arguments)
    options["perturb"] = {key: tuple(spec) for key, spec in options["perturb"].items()}
    monte_carlo(script, out=out, progress=False, **options)
    """
)


@pytest.fixture(scope="module")
def reference(
    tmp_path_factory: pytest.TempPathFactory, leo_basic: Path, pool: LocalPool
) -> pd.DataFrame:
    """The uninterrupted sweep every resumed one must equal bit for bit."""
    out = tmp_path_factory.mktemp("reference")
    return sweep(leo_basic, GRID, backend=pool, out=out, progress=False).to_pandas()


def _hosts(tag: str | None = None) -> set[int]:
    """pids of live GMAT hosts: children of this process, or (``tag``) of a tagged driver.

    A driver's hosts outlive it only as orphans re-parented to init, so they are
    found by an environment variable the driver was started with, which they inherit.
    """
    pids = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            environ = (entry / "environ").read_bytes() if tag else b""
        except OSError:
            continue
        if HOST_MARKER not in cmdline or stat[0] == "Z":
            continue
        mine = tag.encode() in environ if tag else int(stat[1]) == os.getpid()
        if mine:
            pids.add(int(entry.name))
    return pids


def _wait_gone(pids: set[int], timeout: float = 20.0) -> set[int]:
    deadline = time.monotonic() + timeout
    alive = set(pids)
    while alive and time.monotonic() < deadline:
        alive = {pid for pid in alive if Path(f"/proc/{pid}").exists() and not _zombie(pid)}
        time.sleep(0.1)
    return alive


def _wait_removed(directory: Path, pattern: str, timeout: float = 20.0) -> list[str]:
    """The names matching ``pattern`` still in ``directory`` once they are gone or time is up."""
    deadline = time.monotonic() + timeout
    while (left := sorted(p.name for p in directory.glob(pattern))) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _tagged_env() -> tuple[dict[str, str], str]:
    tag = f"GMAT_SWEEP_TEST_TAG={uuid.uuid4().hex}"
    key, value = tag.split("=")
    return dict(os.environ, **{key: value}), tag


@pytest.mark.parametrize("kill_at", [0, 7, 23])
def test_driver_sigkill_then_resume_is_bit_identical(
    kill_at: int,
    leo_basic: Path,
    tmp_path: Path,
    reference: pd.DataFrame,
    pool: LocalPool,
) -> None:
    out = tmp_path / "study"
    env, tag = _tagged_env()
    scratch = tmp_path / "tmp"  # where the driver's hosts make their scratch directories
    scratch.mkdir()
    env["TMPDIR"] = str(scratch)
    driver = subprocess.run(
        [sys.executable, "-c", _DRIVER, str(kill_at), str(leo_basic), str(out), json.dumps(GRID)],
        capture_output=True,
        timeout=300,
        check=False,
        env=env,
    )
    assert driver.returncode == -signal.SIGKILL, driver.stderr.decode()[-2000:]
    orphans = _wait_gone(_hosts(tag))
    assert not orphans, f"GMAT hosts outlived their driver: {orphans}"
    # A host that finishes its run after the driver died finds no one to answer: it must
    # still remove its scratch directory (a rendered copy of the mission) as it exits.
    # A host killed by its watchdog has its directory removed by the watchdog just after.
    left = _wait_removed(scratch, "gmat-sweep-host-*")
    assert not left, f"hosts of the killed driver left their scratch directories: {left}"

    manifest = Manifest.load(out / "manifest.jsonl")
    assert len(manifest.entries) == kill_at
    for entry in manifest.entries:  # every ok line's Parquet is complete
        assert entry.status is RunStatus.OK
        assert pd.read_parquet(out / entry.output_paths["report__RF"]).shape[0] > 10
    assert not list(out.rglob(".*.tmp"))  # no half-written file under any name

    resumed = Sweep.from_manifest(out / "manifest.jsonl", leo_basic, backend=pool, progress=False)
    resumed.resume()
    executed = len(read_all_entries(out / "manifest.jsonl")) - kill_at
    assert executed == 24 - kill_at  # nothing that finished ran again
    pd.testing.assert_frame_equal(resumed.to_pandas(), reference)


# An adaptive Monte Carlo sweep of the Ishigami function: batches of 8 until the mean's 95 %
# half-width is below 2, which these draws reach after four batches (32 runs).
ADAPTIVE = {
    "n": 8,
    "batch": 8,
    "max_n": 200,
    "seed": 5,
    "until": {"column": "Y", "half_width": 2.0},
    "perturb": {f"X{i}.Value": ["uniform", -math.pi, math.pi] for i in (1, 2, 3)},
}


def test_a_killed_adaptive_sweep_resumes_the_same_batches(
    data_dir: Path, tmp_path: Path, pool: LocalPool, capsys: pytest.CaptureFixture[str]
) -> None:
    ishigami = data_dir / "ishigami.script"
    options = {**ADAPTIVE, "perturb": {k: tuple(v) for k, v in ADAPTIVE["perturb"].items()}}
    reference = monte_carlo(
        ishigami, out=tmp_path / "reference", backend=pool, progress=False, **options
    )
    assert reference.stopping is not None and reference.stopping.n >= 24  # three batches or more

    out = tmp_path / "study"
    env, tag = _tagged_env()
    driver = subprocess.run(
        [sys.executable, "-c", _ADAPTIVE_DRIVER, "13", str(ishigami), str(out),
         json.dumps(ADAPTIVE)],
        capture_output=True, timeout=300, check=False, env=env,
    )  # fmt: skip
    assert driver.returncode == -signal.SIGKILL, driver.stderr.decode()[-2000:]
    assert not _wait_gone(_hosts(tag))
    killed = Manifest.load(out / "manifest.jsonl")
    assert (len(killed.entries), killed.run_count) == (13, 16)  # in the second batch
    assert "stopped" not in killed.parameter_spec

    assert main(["resume", str(out), "--no-progress", "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    resumed = Manifest.load(out / "manifest.jsonl")
    assert resumed.parameter_spec == reference.manifest.parameter_spec  # same n, rule, stop
    assert facts["stopped"] == reference.manifest.parameter_spec["stopped"]
    assert len(read_all_entries(out / "manifest.jsonl")) == reference.manifest.run_count
    pd.testing.assert_frame_equal(open_sweep(out).to_pandas(), reference.to_pandas())


def test_torn_last_line_and_moved_directory_resume(
    leo_basic: Path, tmp_path: Path, reference: pd.DataFrame, pool: LocalPool
) -> None:
    first = tmp_path / "first"
    sweep(leo_basic, GRID, backend=pool, out=first, progress=False)
    path = first / "manifest.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-3]) + lines[-3][:40])  # lose 2 runs, tear a third
    moved = tmp_path / "elsewhere" / "study"
    moved.parent.mkdir()
    first.rename(moved)
    resumed = Sweep.from_manifest(moved / "manifest.jsonl", leo_basic, backend=pool, progress=False)
    assert len(resumed.manifest.entries) == 21
    resumed.resume()
    pd.testing.assert_frame_equal(resumed.to_pandas(), reference)
    assert len(Manifest.load(moved / "manifest.jsonl").entries) == 24


def test_failed_runs_are_rerun_on_resume(
    fails_at_runtime: Path, tmp_path: Path, pool: LocalPool
) -> None:
    out = tmp_path / "s"
    sweep(fails_at_runtime, {"Idx.Value": [1, 4, 2]}, backend=pool, out=out, progress=False)
    resumed = Sweep.from_manifest(out / "manifest.jsonl", fails_at_runtime, backend=pool)
    assert resumed.manifest.find_failed() == [1]
    resumed.resume()
    history = read_all_entries(out / "manifest.jsonl")
    assert [e.run_id for e in history].count(1) == 2  # every attempt is kept
    assert Manifest.load(out / "manifest.jsonl").find_failed() == [1]


def test_script_drift_is_refused_unless_allowed(
    leo_basic: Path, tmp_path: Path, pool: LocalPool
) -> None:
    script = tmp_path / "mission.script"
    script.write_text(leo_basic.read_text())
    out = tmp_path / "s"
    sweep(script, {"Sat.Cd": [2.0]}, backend=pool, out=out, progress=False)
    recorded = Manifest.load(out / "manifest.jsonl").script_sha256
    script.write_text(leo_basic.read_text() + "\n% an edit\n")
    with pytest.raises(SweepConfigError) as info:
        Sweep.from_manifest(out / "manifest.jsonl", script, backend=pool)
    assert recorded in str(info.value)
    assert "allow_script_drift=True" in str(info.value)
    with pytest.warns(RuntimeWarning, match="changed since the sweep ran"):
        Sweep.from_manifest(out / "manifest.jsonl", script, backend=pool, allow_script_drift=True)


def test_drift_in_an_included_file_is_named(tmp_path: Path, leo_basic: Path) -> None:
    from gmat_sweep.manifest import script_includes_sha256
    from gmat_sweep.plan import script_drift

    part = tmp_path / "forces.script"
    part.write_text("% forces\n")
    script = tmp_path / "mission.script"
    script.write_text("#Include 'forces.script'\n" + leo_basic.read_text())
    manifest = Manifest(
        script_sha256="0" * 64,
        gmat_sweep_version="x",
        gmat_run_version="x",
        gmat_install_version="x",
        python_version="x",
        os_platform="x",
        sweep_seed=None,
        parameter_spec={},
        run_count=0,
        script_includes=script_includes_sha256(script),
    )
    part.write_text("% forces, edited\n")
    problems = script_drift(manifest, script)
    assert any("forces.script" in problem for problem in problems)


def test_manifest_problems_surface_with_the_path(
    tmp_path: Path, leo_basic: Path, pool: LocalPool
) -> None:
    out = tmp_path / "s"
    sweep(leo_basic, {"Sat.Cd": [2.0, 2.1, 2.2]}, backend=pool, out=out, progress=False)
    path = out / "manifest.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text(lines[0] + "{not json\n" + "".join(lines[2:]))
    with pytest.raises(ManifestCorruptError) as info:
        Sweep.from_manifest(path, leo_basic, backend=pool)
    assert Path(info.value.path) == path
    header = json.loads(lines[0])
    header["schema_version"] = 99
    path.write_text(json.dumps(header) + "\n")
    with pytest.raises(ManifestCorruptError, match="newer gmat_sweep"):
        Sweep.from_manifest(path, leo_basic, backend=pool)


def test_resume_needs_a_sweep_from_a_manifest(
    leo_basic: Path, tmp_path: Path, pool: LocalPool
) -> None:
    result = sweep(leo_basic, {"Sat.Cd": [2.0]}, backend=pool, out=tmp_path / "s", progress=False)
    with pytest.raises(RuntimeError, match="from_manifest"):
        result.resume()


def test_unknown_kind_is_a_config_error(leo_basic: Path, tmp_path: Path, pool: LocalPool) -> None:
    out = tmp_path / "s"
    sweep(leo_basic, {"Sat.Cd": [2.0]}, backend=pool, out=out, progress=False)
    path = out / "manifest.jsonl"
    header, *rest = path.read_text().splitlines(keepends=True)
    data = json.loads(header)
    data["parameter_spec"]["_kind"] = "bayesian"
    path.write_text(json.dumps(data) + "\n" + "".join(rest))
    with pytest.raises(SweepConfigError, match="bayesian"):
        Sweep.from_manifest(path, leo_basic, backend=pool)
    # A known kind whose record lacks a field is refused with the field's name.
    data["parameter_spec"]["_kind"] = "sobol"
    path.write_text(json.dumps(data) + "\n" + "".join(rest))
    with pytest.raises(SweepConfigError, match="lacks 'bounds'"):
        Sweep.from_manifest(path, leo_basic, backend=pool)


def test_timeout_is_a_failed_row_and_the_sweep_goes_on(
    slow: Path, tmp_path: Path, pool: LocalPool
) -> None:
    # Run 0 would outlast the test's timeout: only its own timeout can end it. Run 1 has the
    # same timeout: ~0.1 s of propagation, but more than 2 s on a machine loaded 6 times over.
    result = sweep(
        slow,
        {"Days.Value": [ENDLESS_DAYS, 0.01]},
        backend=pool,
        out=tmp_path / "s",
        run_options={"timeout_s": 6.0},
        retries=0,
        progress=False,
    )
    entry = result.manifest.entry_for(0)
    assert entry is not None and entry.status is RunStatus.FAILED
    assert entry.stderr is not None and entry.stderr.startswith("timed out after 6 s")
    assert entry.duration_s >= 6.0
    ok = result.manifest.entry_for(1)
    assert ok is not None and ok.status is RunStatus.OK, ok.stderr


def _kill_host_when_running(pool: LocalPool, run_dir: Path) -> None:
    """SIGKILL the pool's (only) GMAT host 0.5 s after it starts writing ``run_dir``."""
    import threading

    def kill() -> None:
        deadline = time.monotonic() + 60
        while not run_dir.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.5)
        pid = pool._hosts[0].pid
        if pid is not None:
            os.kill(pid, signal.SIGKILL)

    threading.Thread(target=kill, daemon=True).start()


@pytest.mark.parametrize("retries", [0, 1])
def test_worker_death_is_a_failed_row_or_a_retry(retries: int, slow: Path, tmp_path: Path) -> None:
    before = _hosts()  # the module's shared pool has hosts too
    with LocalPool(1) as local:
        _kill_host_when_running(local, tmp_path / "s" / "run-000000")
        result = sweep(
            slow,
            {"Days.Value": [0.3, 0.011]},
            backend=local,
            out=tmp_path / "s",
            retries=retries,
            progress=False,
        )
    history = read_all_entries(tmp_path / "s" / "manifest.jsonl")
    died = [e for e in history if e.stderr and e.stderr.startswith("worker process died")]
    assert len(died) == 1
    assert "SIGKILL" in (died[0].stderr or "")
    final = result.manifest.entry_for(died[0].run_id)
    assert final is not None
    if retries:
        assert final.status is RunStatus.OK
        assert len(history) == 3
    else:
        assert final.status is RunStatus.FAILED
        assert len(history) == 2
    assert all(e.status is RunStatus.OK for e in result.manifest.entries if e is not final)
    assert not _wait_gone(_hosts() - before)


def test_ctrl_c_stops_the_driver_and_leaves_no_process(leo_basic: Path, tmp_path: Path) -> None:
    out = tmp_path / "s"
    env, tag = _tagged_env()
    # Ctrl-C raises KeyboardInterrupt, as at a terminal, even where this test runs with SIGINT
    # ignored (a background job of a script), which the driver would inherit.
    code = (
        "import signal, sys; from gmat_sweep import sweep\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "sweep(sys.argv[1], {'Sat.SMA': [6800.0 + i for i in range(400)]}, out=sys.argv[2],"
        " progress=False)\n"
    )
    driver = subprocess.Popen(
        [sys.executable, "-c", code, str(leo_basic), str(out)], stderr=subprocess.PIPE, env=env
    )
    manifest = out / "manifest.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if manifest.exists() and len(manifest.read_bytes().splitlines()) > 5:
            break
        time.sleep(0.1)
    driver.send_signal(signal.SIGINT)
    _, err = driver.communicate(timeout=60)
    assert driver.returncode != 0
    assert b"KeyboardInterrupt" in err
    assert not _wait_gone(_hosts(tag), timeout=10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = Manifest.load(manifest)
    assert 5 <= len(loaded.entries) < 400


def test_an_ok_run_whose_parquet_was_lost_runs_again(
    leo_basic: Path, tmp_path: Path, pool: LocalPool
) -> None:
    out = tmp_path / "s"
    first = sweep(leo_basic, {"Sat.Cd": [2.0, 2.2, 2.4]}, backend=pool, out=out, progress=False)
    expected = first.to_pandas()
    manifest = first.manifest
    (out / manifest.entry_for(1).output_paths["report__RF"]).write_bytes(b"")  # type: ignore[union-attr]
    (out / manifest.entry_for(2).output_paths["report__RF"]).unlink()  # type: ignore[union-attr]
    resumed = Sweep.from_manifest(out / "manifest.jsonl", leo_basic, backend=pool, progress=False)
    resumed.resume()
    assert sorted(e.run_id for e in read_all_entries(out / "manifest.jsonl")[3:]) == [1, 2]
    pd.testing.assert_frame_equal(resumed.to_pandas(), expected)


def test_a_header_that_does_not_match_its_runs_is_refused_before_resume(
    leo_basic: Path, tmp_path: Path, pool: LocalPool
) -> None:
    out = tmp_path / "s"
    sweep(leo_basic, {"Sat.Cd": [2.0, 2.2]}, backend=pool, out=out, progress=False)
    path = out / "manifest.jsonl"
    header, *rest = path.read_text().splitlines(keepends=True)
    data = json.loads(header)
    assert data["numpy_version"] and data["scipy_version"]
    data["run_count"] = 5
    path.write_text(json.dumps(data) + "\n" + "".join(rest))
    with pytest.raises(SweepConfigError, match="run_count=5, but its parameter_spec rebuilds 2"):
        Sweep.from_manifest(path, leo_basic, backend=pool)
    data["run_count"] = 2
    entry = json.loads(rest[1])
    entry["overrides"]["Sat.Cd"] = 1234.5
    path.write_text(json.dumps(data) + "\n" + rest[0] + json.dumps(entry) + "\n")
    with pytest.raises(SweepConfigError, match=r"recorded \{\"Sat.Cd\": 1234.5\}"):
        Sweep.from_manifest(path, leo_basic, backend=pool)


def _start_hanging_driver(
    command: list[str], tmp_path: Path, busy: int
) -> tuple[subprocess.Popen[bytes], str, Path]:
    """A driver with ``busy`` GMAT hosts inside long runs; returns it, its tag and its TMPDIR."""
    env, tag = _tagged_env()
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env["TMPDIR"] = str(scratch)
    driver = subprocess.Popen(command, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 120
    # Inside a run a host reads no pipe: only its watchdog or its driver can stop it.
    while sum(map(running_a_mission, _hosts(tag))) < busy:
        assert driver.poll() is None, driver.communicate()[1].decode()[-2000:]
        assert time.monotonic() < deadline, f"{busy} GMAT hosts of the driver never ran a mission"
        time.sleep(0.1)
    return driver, tag, scratch


def test_a_sigkilled_driver_takes_its_busy_hosts_and_their_scratch_along(
    slow: Path, tmp_path: Path
) -> None:
    code = (
        "import sys; from gmat_sweep import sweep\n"
        "sweep(sys.argv[1], {'Days.Value': [100.0, 200.0]}, out=sys.argv[2], progress=False)\n"
    )
    command = [sys.executable, "-c", code, str(slow), str(tmp_path / "s")]
    busy = min(2, os.cpu_count() or 1)  # the default pool's hosts, one run each
    driver, tag, scratch = _start_hanging_driver(command, tmp_path, busy)
    hosts = _hosts(tag)
    assert list(scratch.glob("gmat-sweep-host-*"))
    driver.kill()
    driver.communicate()
    # Deadlines for a loaded machine; the watchdogs act within about 0.5 s.
    assert not _wait_gone(hosts), "GMAT hosts outlived their SIGKILLed driver"
    deadline = time.monotonic() + 20
    while list(scratch.glob("gmat-sweep-host-*")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not list(scratch.glob("gmat-sweep-host-*"))


def test_sigterm_stops_the_cli_like_ctrl_c(slow: Path, tmp_path: Path) -> None:
    command = [
        sys.executable, "-m", "gmat_sweep", "run", str(slow), "--param", "Days.Value=100",
        "--out", str(tmp_path / "s"), "--no-progress",
    ]  # fmt: skip
    driver, tag, scratch = _start_hanging_driver(command, tmp_path, 1)
    driver.send_signal(signal.SIGTERM)
    _, err = driver.communicate(timeout=60)
    assert driver.returncode == 130, err.decode()[-2000:]
    assert b"interrupted; finished runs are in the manifest" in err
    assert not _wait_gone(_hosts(tag), timeout=10)
    assert not list(scratch.glob("gmat-sweep-host-*"))


def test_a_script_edited_between_from_manifest_and_resume_is_refused_before_any_run(
    leo_basic: Path, tmp_path: Path, pool: LocalPool
) -> None:
    # resume() documents a drifted script as a SweepConfigError "checked before any run";
    # an edit after from_manifest checked the hashes must not run the edited mission.
    script = tmp_path / "mission.script"
    script.write_text(leo_basic.read_text())
    out = tmp_path / "s"
    sweep(script, {"Sat.Cd": [2.0, 2.1]}, backend=pool, out=out, progress=False)
    path = out / "manifest.jsonl"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:2]))  # run 1 missing
    resumed = Sweep.from_manifest(path, script, backend=pool, progress=False)
    script.write_text(leo_basic.read_text() + "\n% an edit after from_manifest\n")
    with pytest.raises(SweepConfigError, match="since from_manifest") as info:
        resumed.resume()
    assert "allow_script_drift=True" in str(info.value)
    manifest = Manifest.load(path)
    assert len(read_all_entries(path)) == 1 and manifest.mission_changed == []
    script.write_text(leo_basic.read_text())  # restored: the resume goes on
    assert len(resumed.resume().manifest.entries) == 2


def test_a_script_edited_between_from_manifest_and_extend_is_refused_before_any_run(
    leo_basic: Path, tmp_path: Path, pool: LocalPool
) -> None:
    script = tmp_path / "mission.script"
    script.write_text(leo_basic.read_text())
    out = tmp_path / "s"
    perturb = {"Sat.Cd": ("uniform", 2.0, 2.4)}
    monte_carlo(script, n=1, perturb=perturb, seed=3, backend=pool, out=out, progress=False)
    opened = Sweep.from_manifest(out / "manifest.jsonl", script, backend=pool, progress=False)
    script.write_text(leo_basic.read_text() + "\n% an edit after from_manifest\n")
    with pytest.raises(SweepConfigError, match="since from_manifest"):
        opened.extend(1)
    assert len(read_all_entries(out / "manifest.jsonl")) == 1
    assert Manifest.load(out / "manifest.jsonl").run_count == 1
