"""Real sweeps: default backend and a Dask LocalCluster, manifests, lazy frames."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from gmat_sweep import Sweep, sweep
from gmat_sweep.backends.dask import DaskPool
from gmat_sweep.backends.local import LocalPool
from gmat_sweep.errors import RunFailed, SweepConfigError
from gmat_sweep.manifest import Manifest
from gmat_sweep.spec import RunStatus

pytestmark = pytest.mark.slow

GRID = {"Sat.SMA": [6800.0, 6900.0, 7000.0], "Sat.INC": [28.5, 51.6, 82.0, 97.8]}


@pytest.fixture(scope="module")
def dask_pool() -> Iterator[DaskPool]:
    with DaskPool(n_workers=2) as pool:
        yield pool


@pytest.fixture(scope="module")
def local_pool() -> Iterator[LocalPool]:
    with LocalPool(2) as pool:
        yield pool


def _by_hand(out: Path, manifest: Manifest) -> pd.DataFrame:
    """Read every run's Parquet and concatenate: what to_pandas() must equal."""
    frames = []
    for entry in sorted(manifest.entries, key=lambda e: e.run_id):
        frame = pd.read_parquet(out / entry.output_paths["report__RF"])
        frame.insert(0, "run_id", entry.run_id)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def test_grid_sweep_on_a_local_cluster(
    leo_basic: Path, tmp_path: Path, dask_pool: DaskPool
) -> None:
    out = tmp_path / "study"
    result = sweep(leo_basic, GRID, backend=dask_pool, out=out, progress=False)
    assert isinstance(result, Sweep)
    manifest = Manifest.load(out / "manifest.jsonl")
    assert manifest.run_count == 12
    assert sorted(e.run_id for e in manifest.entries) == list(range(12))
    assert all(e.status is RunStatus.OK for e in manifest.entries)
    assert manifest.parameter_spec["_kind"] == "grid"
    # Paths are relative to the sweep root, so the directory can move.
    assert str(manifest.entries[0].output_paths["report__RF"]).startswith("run-0000")
    assert manifest.gmat_install_version.startswith("gmatpy")

    frame = result.to_pandas()
    assert frame.index.names == ["run_id", "time"]
    assert frame.index.get_level_values("run_id").nunique() == 12
    by_hand = _by_hand(out, manifest)
    report_columns = [c for c in by_hand.columns if c not in ("run_id", "time")]
    got = frame.reset_index()
    pd.testing.assert_frame_equal(
        got[["run_id", "time", *report_columns]].reset_index(drop=True),
        by_hand[["run_id", "time", *report_columns]],
        check_dtype=False,
    )
    # Parameter columns: each run's overrides, named by field path.
    first = got[got["run_id"] == 0]
    assert (first["Sat.INC"] == 28.5).all()
    assert (first["Sat.SMA"] == 6800.0).all()
    assert (got["__status"] == "ok").all()


def test_lazy_frame_loc_reads_one_partition(
    leo_basic: Path, tmp_path: Path, local_pool: LocalPool
) -> None:
    result = sweep(leo_basic, GRID, backend=local_pool, out=tmp_path / "s", progress=False)
    lazy = result.to_dataframe()
    assert lazy.known_divisions
    assert lazy.npartitions == 1  # 12 runs of ~72 rows: far below one partition's 100,000
    one = lazy.loc[5]
    assert one.npartitions == 1
    got = one.compute()
    expected = result.to_pandas().xs(5, level="run_id")
    assert len(got) == len(expected)
    assert (got["Sat.SMA"] == GRID["Sat.SMA"][5 % 3]).all()  # INC varies slowest


def test_failed_runs_are_rows_and_the_sweep_completes(
    fails_at_runtime: Path, tmp_path: Path, dask_pool: DaskPool
) -> None:
    result = sweep(
        fails_at_runtime,
        {"Idx.Value": [1, 2, 4, 3, 0]},
        backend=dask_pool,
        out=tmp_path / "f",
        progress=False,
    )
    assert result.manifest.find_failed() == [2, 4] or sorted(result.manifest.find_failed()) == [
        2,
        4,
    ]
    frame = result.to_pandas()
    failed = frame[frame["__status"] == "failed"].reset_index()
    assert sorted(failed["run_id"]) == [2, 4]
    assert failed["time"].isna().all()
    assert failed["Sat.Earth.RMAG"].isna().all()
    assert sorted(failed["Idx.Value"]) == [0, 4]
    entry = result.manifest.entry_for(2)
    assert entry is not None and entry.stderr is not None
    assert "index out-of-bounds" in entry.stderr
    assert (tmp_path / "f" / str(entry.log_path)).is_file()
    with pytest.raises(RunFailed) as info:
        sweep(
            fails_at_runtime,
            {"Idx.Value": [4]},
            backend=dask_pool,
            out=tmp_path / "g",
            progress=False,
            raise_on_failure=True,
        )
    assert info.value.run_id == 0


def test_memory_filesystem_is_refused_up_front(leo_basic: Path, local_pool: LocalPool) -> None:
    # memory:// is private to one process and GMAT runs in worker processes.
    with pytest.raises(SweepConfigError, match="memory:// filesystem lives inside one process"):
        sweep(leo_basic, {"Sat.Cd": [2.0]}, backend=local_pool, out="memory://x/y")


def test_default_backend_matches_dask_bit_for_bit(
    leo_basic: Path, tmp_path: Path, dask_pool: DaskPool
) -> None:
    grid = {"Sat.SMA": [6900.0, 7000.0], "Sat.ECC": [0.001, 0.02]}
    default = sweep(leo_basic, grid, out=tmp_path / "a", progress=False).to_pandas()
    on_dask = sweep(leo_basic, grid, backend=dask_pool, out=tmp_path / "b", progress=False)
    pd.testing.assert_frame_equal(default, on_dask.to_pandas())


def test_out_holding_a_sweep_is_refused(
    leo_basic: Path, tmp_path: Path, local_pool: LocalPool
) -> None:
    out = tmp_path / "s"
    sweep(leo_basic, {"Sat.Cd": [2.2]}, backend=local_pool, out=out, progress=False)
    before = (out / "manifest.jsonl").read_bytes()
    with pytest.raises(SweepConfigError, match=r"already holds a sweep.*resume"):
        sweep(leo_basic, {"Sat.Cd": [2.3]}, backend=local_pool, out=out, progress=False)
    assert (out / "manifest.jsonl").read_bytes() == before
    again = sweep(
        leo_basic, {"Sat.Cd": [2.3]}, backend=local_pool, out=out, progress=False, overwrite=True
    )
    assert again.manifest.entries[0].overrides == {"Sat.Cd": 2.3}


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        ({"Sat.SMAX": [7000.0]}, "did you mean: SMA"),
        ({"Nope.Value": [1.0]}, "Nope"),
        ({"Sat.SMA": []}, "has no values"),
        ({"Sat.SMA": "7000"}, "string"),
        ({"Sat.Cd": [2.0, float("nan")]}, r"'Sat.Cd': value nan cannot be recorded: it is not fin"),
        ({"Sat.Cd": [float("inf")]}, r"'Sat.Cd': value inf .* \(no GMAT field takes NaN"),
    ],
)
def test_bad_grids_are_rejected_before_any_run(
    leo_basic: Path, tmp_path: Path, grid: dict[str, object], message: str, local_pool: LocalPool
) -> None:
    out = tmp_path / "never"
    with pytest.raises(SweepConfigError, match=message):
        sweep(leo_basic, grid, backend=local_pool, out=out, progress=False)  # type: ignore[arg-type]
    assert not out.exists()


def test_non_finite_sample_values_are_rejected_before_any_run(
    leo_basic: Path, tmp_path: Path
) -> None:
    out = tmp_path / "never"
    with pytest.raises(SweepConfigError, match=r"'Sat.SMA': value -inf .* not finite"):
        sweep(leo_basic, samples=[{"Sat.SMA": float("-inf")}], out=out, progress=False)
    assert not out.exists()


def test_missing_and_unparsable_missions_are_config_errors(
    tmp_path: Path, parse_error: Path, local_pool: LocalPool
) -> None:
    with pytest.raises(SweepConfigError, match="is not a file"):
        sweep(tmp_path / "nope.script", {"Sat.SMA": [7000.0]}, out=tmp_path / "a")
    with pytest.raises(SweepConfigError, match="SMAX"):
        sweep(parse_error, {"Sat.SMA": [7000.0]}, backend=local_pool, out=tmp_path / "b")
    assert not (tmp_path / "a").exists()
    assert not (tmp_path / "b").exists()


def test_explicit_samples(leo_basic: Path, tmp_path: Path, local_pool: LocalPool) -> None:
    rows = pd.DataFrame({"Sat.SMA": [7000.0, 7050.0, 6950.0], "Sat.Cd": [2.0, 2.2, 2.4]})
    result = sweep(leo_basic, samples=rows, backend=local_pool, out=tmp_path / "s", progress=False)
    header = json.loads((tmp_path / "s" / "manifest.jsonl").read_text().splitlines()[0])
    assert header["parameter_spec"]["_kind"] == "samples"
    got = result.to_pandas().groupby(level="run_id")[["Sat.SMA", "Sat.Cd"]].first()
    assert got.to_dict("list") == rows.to_dict("list")


def test_to_delayed_gives_one_node_per_run(
    leo_basic: Path, tmp_path: Path, local_pool: LocalPool
) -> None:
    import dask

    result = sweep(
        leo_basic, {"Sat.Cd": [2.0, 2.4]}, backend=local_pool, out=tmp_path / "s", progress=False
    )
    nodes = result.to_delayed()
    assert len(nodes) == 2
    outcomes = dask.compute(*nodes, scheduler="threads")
    assert [o.run_id for o in outcomes] == [0, 1]
    assert all(o.status is RunStatus.OK for o in outcomes)


def test_default_backend_works_from_an_unguarded_script(leo_basic: Path, tmp_path: Path) -> None:
    # No `if __name__ == "__main__":` guard: nothing may re-import this file.
    script = tmp_path / "analysis.py"
    script.write_text(
        "from gmat_sweep import sweep\n"
        f"result = sweep({str(leo_basic)!r}, {{'Sat.Cd': [2.0, 2.2]}}, out='study',"
        " progress=False)\n"
        "print('RUNS', len(result.to_pandas().index.get_level_values('run_id').unique()))\n"
    )
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "RUNS 2" in done.stdout
    no_out = subprocess.run(
        [sys.executable, "-c", f"from gmat_sweep import sweep; sweep({str(leo_basic)!r}, "
         "{'Sat.Cd': [2.0]}, progress=False)"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert no_out.returncode == 0, no_out.stderr
    assert "writing results to" in no_out.stderr
    created = [p for p in tmp_path.iterdir() if p.name.startswith("gmat-sweep-leo_basic-")]
    assert len(created) == 1
    assert (created[0] / "manifest.jsonl").is_file()


def test_a_sweep_imports_no_pandas_in_the_driver(leo_basic: Path, tmp_path: Path) -> None:
    # GMAT hosts parse and write the outputs; the driver only records them, and pandas,
    # pyarrow and scipy cost ~0.9 s of its CPU, taken from the hosts while they start.
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from gmat_sweep import sweep\n"
        f"sweep({str(leo_basic)!r}, {{'Sat.Cd': [2.0]}}, out='study', progress=False)\n"
        "print('HEAVY', sorted({'pandas', 'pyarrow', 'scipy'} & set(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stdout, done.stdout


def test_lost_dask_worker_is_a_failed_attempt_then_retried(slow: Path, tmp_path: Path) -> None:
    import os
    import signal
    import threading
    import time

    import dask
    import distributed

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, dashboard_address=":0"
        )
        client = distributed.Client(cluster)
        try:
            pool = DaskPool(client=client)

            def kill_the_busy_worker() -> None:
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    busy = [w for w, keys in client.processing().items() if keys]
                    if busy and (tmp_path / "s" / "run-000000").exists():
                        time.sleep(0.5)
                        pid = client.run(os.getpid, workers=busy[:1])[busy[0]]
                        os.kill(pid, signal.SIGKILL)
                        return
                    time.sleep(0.05)

            threading.Thread(target=kill_the_busy_worker, daemon=True).start()
            result = sweep(
                slow, {"Days.Value": [0.4]}, backend=pool, out=tmp_path / "s", progress=False
            )
        finally:
            client.close()
            cluster.close()
    from gmat_sweep.manifest import read_all_entries

    history = read_all_entries(tmp_path / "s" / "manifest.jsonl")
    assert [e.status for e in history] == [RunStatus.FAILED, RunStatus.OK]
    assert (history[0].stderr or "").startswith("worker process died")
    assert result.manifest.find_failed() == []


def test_overwrite_deletes_only_what_the_library_wrote(
    leo_basic: Path, tmp_path: Path, local_pool: LocalPool
) -> None:
    out = tmp_path / "project"
    sweep(leo_basic, {"Sat.Cd": [2.0, 2.2]}, backend=local_pool, out=out, progress=False)
    (out / "run-all.sh").write_text("#!/bin/sh\n")
    (out / "run-notes.txt").write_text("notes\n")
    (out / "run-configs").mkdir()
    (out / "run-configs" / "a.json").write_text("{}\n")
    (out / "run-42").mkdir()
    again = sweep(
        leo_basic, {"Sat.Cd": [2.3]}, backend=local_pool, out=out, progress=False, overwrite=True
    )
    assert again.manifest.run_count == 1
    assert not (out / "run-000001").exists()  # the old sweep's second run is gone
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "manifest.jsonl",
        "run-000000",
        "run-42",
        "run-all.sh",
        "run-configs",
        "run-notes.txt",
    ]
    assert (out / "run-configs" / "a.json").read_text() == "{}\n"


def test_bad_retries_fail_before_out_is_touched(
    leo_basic: Path, tmp_path: Path, local_pool: LocalPool
) -> None:
    fresh = tmp_path / "fresh"
    with pytest.raises(SweepConfigError, match="retries=-1"):
        sweep(leo_basic, {"Sat.Cd": [2.0]}, backend=local_pool, out=fresh, retries=-1)
    assert not fresh.exists()
    old = tmp_path / "old"
    sweep(leo_basic, {"Sat.Cd": [2.0]}, backend=local_pool, out=old, progress=False)
    before = sorted(p.name for p in old.iterdir())
    with pytest.raises(SweepConfigError, match="retries=-1"):
        sweep(leo_basic, {"Sat.Cd": [2.1]}, backend=local_pool, out=old, retries=-1, overwrite=True)
    assert sorted(p.name for p in old.iterdir()) == before


def test_out_that_is_a_file_is_a_config_error(
    leo_basic: Path, tmp_path: Path, local_pool: LocalPool
) -> None:
    out = tmp_path / "results.csv"
    out.write_text("a,b\n")
    with pytest.raises(SweepConfigError, match="is an existing file, not a directory"):
        sweep(leo_basic, {"Sat.Cd": [2.0]}, backend=local_pool, out=out, progress=False)
    assert out.read_text() == "a,b\n"


@pytest.mark.parametrize("timeout", [float("inf"), float("nan"), 1e7, 2_147_483.648, 0, -1])
def test_timeouts_poll_cannot_wait_for_are_refused_up_front(
    leo_basic: Path, tmp_path: Path, timeout: float
) -> None:
    out = tmp_path / "never"
    with pytest.raises(SweepConfigError, match=r"timeout_s.*finite, positive number of seconds"):
        sweep(leo_basic, {"Sat.Cd": [2.0]}, out=out, run_options={"timeout_s": timeout})
    assert not out.exists()


def test_a_mission_without_file_outputs_warns_then_says_what_to_add(
    data_dir: Path, tmp_path: Path, local_pool: LocalPool
) -> None:
    mission = data_dir / "no_file_outputs.script"  # its only subscriber is an XYPlot
    with pytest.warns(UserWarning, match=r"no_file_outputs.script creates no ReportFile") as seen:
        result = sweep(
            mission, {"Sat.Cd": [2.0, 2.4]}, backend=local_pool, out=tmp_path / "s", progress=False
        )
    assert len(seen) == 1
    assert seen[0].filename == __file__  # points at the caller's line
    assert [e.status for e in result.manifest.entries] == [RunStatus.OK, RunStatus.OK]
    for read in (result.to_pandas, result.final, result.to_dataframe):
        with pytest.raises(SweepConfigError, match=r"2 ok runs wrote no output files"):
            read()


def test_a_sweep_of_no_runs_still_saves_its_manifest_header(
    leo_basic: Path, tmp_path: Path, local_pool: LocalPool
) -> None:
    # run() builds and saves the header up front, whether or not any run follows.
    out = tmp_path / "s"
    result = Sweep(
        runs=[],
        backend=local_pool,
        manifest_path=out / "manifest.jsonl",
        output_dir=out,
        script_path=leo_basic,
        parameter_spec={},
        progress=False,
    ).run()
    loaded = Manifest.load(out / "manifest.jsonl")
    assert loaded == result.manifest
    assert (loaded.run_count, loaded.entries) == (0, [])
    frame = result.to_pandas()
    assert frame.empty
    assert frame.index.names == ["run_id", "time"]
