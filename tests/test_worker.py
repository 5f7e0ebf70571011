"""run_one with the real engine: outputs, failures, targets, and reuse without leaks."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import fsspec
import pandas as pd
import pyarrow.parquet as pq
import pytest
from gmat_run.parsers.contact import parse as parse_contacts

from gmat_sweep.spec import RunSpec, RunStatus
from gmat_sweep.worker import output_tables, run_one

pytestmark = pytest.mark.slow


def _spec(script: Path, overrides: dict[str, object], out: Path | str, run_id: int = 0) -> RunSpec:
    return RunSpec(
        script_path=script,
        overrides=dict(overrides),
        output_dir=out,
        run_id=run_id,
        seed=None,
        run_options={},
    )


def _report(path: str | Path) -> pd.DataFrame:
    return pd.read_parquet(path)


def _results(written: Path, **reports: pd.DataFrame) -> SimpleNamespace:
    """A gmat-run ``Results`` holding ``reports``, each recorded at ``written`` (a file)."""
    return SimpleNamespace(
        reports=reports,
        report_paths=dict.fromkeys(reports, written),
        ephemerides={},
        ephemeris_paths={},
        contacts={},
        contact_paths={},
        solver_runs={},
        solver_paths={},
    )


def test_override_changes_the_output(leo_basic: Path, tmp_path: Path) -> None:
    a = run_one(_spec(leo_basic, {"Sat.SMA": 7000.0}, tmp_path / "a"))
    b = run_one(_spec(leo_basic, {"Sat.SMA": 7200.0}, tmp_path / "b"))
    assert a.status is RunStatus.OK
    assert b.status is RunStatus.OK
    fa, fb = _report(a.output_paths["report__RF"]), _report(b.output_paths["report__RF"])
    assert fa["Sat.Earth.SMA"].iloc[0] == pytest.approx(7000.0)
    assert fb["Sat.Earth.SMA"].iloc[0] == pytest.approx(7200.0)


def test_reports_and_ephemerides_land_with_keys_and_time(
    multi_output: Path, tmp_path: Path
) -> None:
    outcome = run_one(_spec(multi_output, {}, tmp_path / "run"))
    assert outcome.status is RunStatus.OK, outcome.stderr
    assert sorted(outcome.output_paths) == [
        "ephemeris__OEMEphem",
        "ephemeris__STKEphem",
        "report__KeplerReport",
        "report__StateReport",
    ]
    for key, path in outcome.output_paths.items():
        frame = pd.read_parquet(path)
        assert frame.columns[0] == "time", key
        assert frame["time"].dtype == "datetime64[ns]"
        first_datetime = next(c for c in frame.columns[1:] if frame[c].dtype == "datetime64[ns]")
        assert (frame["time"] == frame[first_datetime]).all()
        assert len(frame) == 181
    assert (tmp_path / "run" / "gmat.log").read_text().strip()
    assert not [p for p in (tmp_path / "run").iterdir() if p.name.startswith(".")]


def test_contact_tables_get_interval_ids(tmp_path: Path) -> None:
    # The wheel's engine has no ContactLocator: parse a report GMAT would write.
    report = tmp_path / "contacts.txt"
    report.write_text(
        "Target: Sat\n\n"
        "Observer       Duration (s)    Start Time (UTCGregorian)     Stop Time (UTCGregorian)"
        "      Start Range (km)    Stop Range (km)\n"
        "-----------    ------------    --------------------------    --------------------------"
        "    ----------------    ---------------\n"
        "Station1       600.000         01 Jan 2026 12:00:00.000      01 Jan 2026 12:10:00.000"
        "      1000.0              1200.0\n"
        "Station2       300.500         01 Jan 2026 13:00:00.000      01 Jan 2026 13:05:00.500"
        "      1500.5              1100.25\n"
    )
    results = SimpleNamespace(
        reports={},
        report_paths={},
        ephemerides={},
        ephemeris_paths={},
        contacts={"GS": parse_contacts(report)},
        contact_paths={"GS": report},
        solver_runs={},
        solver_paths={},
    )
    tables = output_tables(results)
    assert list(tables) == ["contact__GS"]
    frame = tables["contact__GS"].to_pandas()
    assert frame["interval_id"].tolist() == [0, 1]
    assert frame["Observer"].tolist() == ["Station1", "Station2"]


def test_output_tables_hold_every_column_as_pandas_would_convert_it() -> None:
    # Built column by column (no pandas metadata): the same values, types and nulls.
    import numpy as np
    import pyarrow as pa

    frame = pd.DataFrame(
        {
            "Sat.ElapsedSecs": [0.0, np.nan],
            "Sat.UTCGregorian": pd.to_datetime(["2026-01-01 12:00", None]),
            "Observer": ["Station1", None],
            "Count": [1, 2],
            "Visible": [True, False],
        }
    )
    frame.attrs = {"run_started": "2026-12-02T23:00:00"}  # wall-clock stamps stay out
    table = output_tables(_results(Path(__file__), RF=frame))["report__RF"]
    expected = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)
    assert table.column_names == ["time", *frame.columns]
    assert table.drop_columns(["time"]).equals(expected)
    assert table.column("time").equals(expected.column("Sat.UTCGregorian"))
    assert table.column("Sat.ElapsedSecs").null_count == 1
    assert table.schema.metadata is None


def test_an_output_that_repeats_a_column_is_refused_with_its_name() -> None:
    frame = pd.DataFrame([[1.0, 2.0, 3.0]], columns=["Sat.X", "Sat.Y", "Sat.X"])
    with pytest.raises(ValueError, match=r"repeats the columns \['Sat.X'\]; list each"):
        output_tables(_results(Path(__file__), RF=frame))


def test_failed_run_is_an_outcome_with_the_engine_message(
    fails_at_runtime: Path, tmp_path: Path
) -> None:
    outcome = run_one(_spec(fails_at_runtime, {"Idx.Value": 4}, tmp_path / "run"))
    assert outcome.status is RunStatus.FAILED
    assert outcome.output_paths == {}
    assert outcome.stderr is not None
    first, second = outcome.stderr.splitlines()[:2]
    assert first.startswith("GmatRunError: GMAT RunScript returned status")
    assert "index out-of-bounds" in second
    assert "*** Mission run failed" in (tmp_path / "run" / "gmat.log").read_text()


def test_failed_load_is_an_outcome_with_the_parse_error(parse_error: Path, tmp_path: Path) -> None:
    outcome = run_one(_spec(parse_error, {}, tmp_path / "run"))
    assert outcome.status is RunStatus.FAILED
    assert outcome.stderr is not None
    assert outcome.stderr.startswith("GmatLoadError")
    assert 'The field name "SMAX" on object "Sat" is not permitted' in outcome.stderr


def test_unknown_field_is_a_failed_outcome(leo_basic: Path, tmp_path: Path) -> None:
    outcome = run_one(_spec(leo_basic, {"Sat.SMAX": 1.0}, tmp_path / "run"))
    assert outcome.status is RunStatus.FAILED
    assert outcome.stderr is not None
    assert "did you mean: SMA" in outcome.stderr


def test_memory_filesystem_target(leo_basic: Path) -> None:
    outcome = run_one(_spec(leo_basic, {"Sat.Cd": 2.5}, "memory://worker-test/run-000000"))
    assert outcome.status is RunStatus.OK
    assert outcome.output_paths == {
        "report__RF": "memory://worker-test/run-000000/report__RF.parquet"
    }
    with fsspec.open(outcome.output_paths["report__RF"], "rb") as handle:
        assert pq.read_table(handle).num_rows > 10
    fs = fsspec.filesystem("memory")
    assert fs.exists("/worker-test/run-000000/gmat.log")


def test_reused_mission_gives_the_same_bits_as_a_fresh_load(
    leo_basic: Path, tmp_path: Path
) -> None:
    # Keplerian writes leave round-off in the stored Cartesian state; the worker
    # must restore the loaded state so run order never changes results.
    sequence = [{"Sat.SMA": 7000.0, "Sat.ECC": 0.01}, {"Sat.SMA": 7100.0}, {}]
    reused = [run_one(_spec(leo_basic, ov, tmp_path / f"r{i}")) for i, ov in enumerate(sequence)]
    fresh = []
    for i, overrides in enumerate(sequence):
        from gmat_sweep import worker

        worker._loaded = None  # force a fresh Mission.load
        fresh.append(run_one(_spec(leo_basic, overrides, tmp_path / f"f{i}")))
    for a, b in zip(reused, fresh, strict=True):
        pd.testing.assert_frame_equal(
            _report(a.output_paths["report__RF"]), _report(b.output_paths["report__RF"])
        )


def test_a_solver_log_gmat_run_cannot_parse_is_left_out(tmp_path: Path) -> None:
    from gmat_run.results import _LazySolverRuns

    log = tmp_path / "SQPOpt.data"
    log.write_text("*** some optimizer gmat-run does not read\nIteration 1\n")
    solvers = {"Opt": log}
    results = SimpleNamespace(
        reports={},
        report_paths={},
        ephemerides={},
        ephemeris_paths={},
        contacts={},
        contact_paths={},
        solver_runs=_LazySolverRuns(solvers, {}),
        solver_paths=solvers,
    )
    assert output_tables(results) == {}


def test_a_process_loads_a_mission_once_for_its_runs(
    leo_basic: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Kept per text and file: runs of the script, and of one rendering of it, load once.
    from gmat_run import Mission

    from gmat_sweep import worker

    loaded: list[Path] = []
    load = Mission.load

    def counted(path: Path, **options: object) -> object:
        loaded.append(Path(path))
        return load(path, **options)

    monkeypatch.setattr(worker, "_loaded", None)
    monkeypatch.setattr(Mission, "load", counted)
    drag = "FM.Drag.AtmosphereModel"  # written into the script text (load-time)
    sequence = [{"Sat.SMA": 7000.0}, {"Sat.SMA": 7100.0}, {drag: "None"}, {drag: "None"}]
    for i, overrides in enumerate(sequence):
        assert run_one(_spec(leo_basic, overrides, tmp_path / f"r{i}")).status is RunStatus.OK
    assert len(loaded) == 2 and loaded[0] == leo_basic, loaded


def test_a_failure_with_no_gmat_log_is_described_by_its_error() -> None:
    # A cached mission's run logs nothing at load: the log can be empty.
    from gmat_sweep.worker import _describe_failure

    assert _describe_failure(ValueError("bad"), "").splitlines()[0] == "ValueError: bad"


def _run_directories(temporary: Path) -> list[Path]:
    return sorted(temporary.glob("gmat-sweep-run-*"))


def test_a_process_runs_in_one_run_directory_emptied_after_each_run(
    leo_basic: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One scratch directory per process, not one made and removed per run.
    import tempfile

    from gmat_sweep import worker

    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    monkeypatch.setattr(worker, "_run_dir", None, raising=False)
    seen = []
    for i in range(2):
        outcome = run_one(_spec(leo_basic, {"Sat.SMA": 7000.0 + i}, tmp_path / f"r{i}"))
        assert outcome.status is RunStatus.OK
        seen.append(_run_directories(temporary))
        assert len(seen[-1]) == 1, seen
        assert [p for p in seen[-1][0].rglob("*") if not p.is_dir()] == []
    assert seen[0] == seen[1]
    assert not worker.running_in(temporary)


def test_a_run_keeps_no_file_of_the_run_before(multi_output: Path, tmp_path: Path) -> None:
    # The run directory is reused: a run's log and outputs must still be its own.
    from gmat_sweep import worker

    worker._loaded = None
    switch = "OEMEphem.WriteEphemeris"  # load-time: "b" loads its own text, "c" reuses it
    runs = {"a": True, "b": False, "c": False}
    outcomes = {
        run: run_one(_spec(multi_output, {switch: on}, tmp_path / run)) for run, on in runs.items()
    }
    assert "ephemeris__OEMEphem" in outcomes["a"].output_paths
    for run in "bc":
        assert "ephemeris__OEMEphem" not in outcomes[run].output_paths
        assert "ephemeris__OEMEphem" in outcomes[run].unwritten
    # A load's log opens with GMAT's banner, as the run's own log does.
    banners = [(tmp_path / run / "gmat.log").read_text().count("GMAT Build Date") for run in runs]
    assert banners == [2, 2, 1]
