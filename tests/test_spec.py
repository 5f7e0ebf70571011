"""RunSpec, SweepSpec and RunOutcome: lossless JSON round trips."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gmat_sweep.errors import RunFailed, SweepConfigError
from gmat_sweep.spec import RunOutcome, RunSpec, RunStatus, SweepSpec, decode, encode, to_plain

field_paths = st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,8}\.[A-Za-z][A-Za-z0-9.]{0,12}", fullmatch=True)
scalars = st.one_of(
    # JSON has no NaN or infinity (msgspec writes them as null); sweeps refuse them up front.
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(2**62), max_value=2**62),
    st.text(max_size=20),
    st.booleans(),
)
locations = st.one_of(
    st.builds(lambda p: Path("/data") / p, st.from_regex(r"[a-z0-9_-]{1,10}", fullmatch=True)),
    st.builds(
        lambda b, p: f"s3://{b}/{p}",
        st.from_regex(r"[a-z]{3,8}", fullmatch=True),
        st.from_regex(r"[a-z0-9/]{1,12}", fullmatch=True),
    ),
)
moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)

run_specs = st.builds(
    RunSpec,
    script_path=st.just(Path("/missions/leo.script")),
    overrides=st.dictionaries(field_paths, scalars, max_size=5),
    output_dir=locations,
    run_id=st.integers(min_value=0, max_value=10**6),
    seed=st.one_of(st.none(), st.integers(min_value=0, max_value=2**63 - 1)),
    run_options=st.dictionaries(st.sampled_from(["timeout_s"]), st.floats(0.1, 1e4)),
)


@given(run_specs)
def test_run_spec_round_trip(spec: RunSpec) -> None:
    assert decode(encode(spec), RunSpec) == spec


@given(st.lists(run_specs, max_size=4), locations, st.one_of(st.none(), st.integers(0, 2**63 - 1)))
def test_sweep_spec_round_trip(runs: list[RunSpec], out: Path | str, seed: int | None) -> None:
    spec = SweepSpec(
        mission_script_path=Path("/missions/leo.script"),
        runs=tuple(runs),
        backend="dask",
        backend_kwargs={"n_workers": 2},
        output_dir=out,
        manifest_path=out / "manifest.jsonl" if isinstance(out, Path) else f"{out}/manifest.jsonl",
        sweep_seed=seed,
    )
    assert decode(encode(spec), SweepSpec) == spec


@given(
    st.integers(0, 10**6),
    moments,
    st.floats(0, 1e5),
    st.dictionaries(st.sampled_from(["report__RF", "ephemeris__OEM"]), locations),
    st.text(),
)
def test_outcome_round_trip_and_duration(
    run_id: int, start: datetime, seconds: float, paths: dict[str, Path | str], err: str
) -> None:
    end = start + timedelta(seconds=seconds)
    ok = RunOutcome.ok(run_id, paths, start, end)
    failed = RunOutcome.failed(run_id, err, start, end)
    for outcome in (ok, failed):
        again = decode(encode(outcome), RunOutcome)
        assert again == outcome
        assert again.started_at.tzinfo is not None
        assert outcome.duration_s == pytest.approx((end - start).total_seconds(), abs=1e-6)
    assert ok.status is RunStatus.OK and ok.stderr is None
    assert failed.status is RunStatus.FAILED and failed.output_paths == {}


def test_datetimes_keep_their_timezone() -> None:
    zone = timezone(timedelta(hours=5, minutes=30))
    start = datetime(2026, 1, 1, 12, tzinfo=zone)
    outcome = RunOutcome.ok(1, {}, start, start + timedelta(seconds=2))
    assert decode(encode(outcome), RunOutcome).started_at.utcoffset() == timedelta(hours=5.5)


def test_numpy_scalars_become_plain_json_numbers() -> None:
    spec = RunSpec(
        Path("/m.script"),
        {"Sat.SMA": np.float64(7000.5), "N.Value": np.int64(3), "Flag.Value": np.bool_(True)},
        Path("/out/run-000000"),
        0,
        None,
        {},
    )
    text = encode(spec).decode()
    assert '"Sat.SMA":7000.5' in text
    again = decode(text, RunSpec)
    assert type(again.overrides["Sat.SMA"]) is float
    assert type(again.overrides["N.Value"]) is int
    assert again.overrides["Flag.Value"] is True


def test_unrecordable_value_is_a_clear_error() -> None:
    with pytest.raises(SweepConfigError, match="cannot be recorded as JSON"):
        to_plain(object())


def test_run_failed_quotes_the_first_line_of_stderr_not_the_log_tail() -> None:
    stderr = (
        "GmatRunError: GMAT RunScript returned status 0; expected 1\n\n"
        "--- GMAT log (tail) ---\nThis error occurred on line 46\n"
    )
    error = RunFailed(3, stderr)
    assert str(error) == "run 3 failed: GmatRunError: GMAT RunScript returned status 0; expected 1"
    assert error.stderr == stderr
    assert str(RunFailed(4, None)) == "run 4 failed: no error text was captured"
    assert str(RunFailed(5, "\n  \n")) == "run 5 failed: no error text was captured"
