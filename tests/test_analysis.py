"""Analysis of finished sweeps: Wilks bounds, QMC draws, sensitivity, convergence, resampling.

The sensitivity tests run the Ishigami function through GMAT's own math
(tests/data/ishigami.script: no spacecraft, Variables and arithmetic in the
mission sequence) and compare with its analytic Sobol' indices.
"""

from __future__ import annotations

import inspect
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.stats import qmc

from gmat_sweep import Sweep, monte_carlo, morris, open_sweep, plan, sobol, sweep, wilks_n
from gmat_sweep.analysis import (
    convergence,
    order_statistic_bound,
    resample,
    sensitivity,
    stop_rule,
    tolerance_bound,
)
from gmat_sweep.backends.local import LocalPool
from gmat_sweep.errors import SweepConfigError
from gmat_sweep.sampling import monte_carlo_rows, morris_rows, sobol_rows

DATA = Path(__file__).parent / "data"
ISHIGAMI = DATA / "ishigami.script"
FIELDS = ["X1.Value", "X2.Value", "X3.Value"]
CUBE = {field: (-math.pi, math.pi) for field in FIELDS}
# Analytic indices of Y = sin X1 + 7 sin^2 X2 + 0.1 X3^4 sin X1 on [-pi, pi]^3.
S1_TRUE = np.array([0.3139, 0.4424, 0.0])
ST_TRUE = np.array([0.5576, 0.4424, 0.2437])


def ishigami(x: np.ndarray) -> np.ndarray:
    return np.sin(x[:, 0]) + 7 * np.sin(x[:, 1]) ** 2 + 0.1 * x[:, 2] ** 4 * np.sin(x[:, 0])


# -- Wilks ------------------------------------------------------------------------

# Published Wilks sample sizes (e.g. Guba, Makai & Pal 2003, Table 1; Dakota's
# "sampling wilks"): (coverage, confidence, sided, order) -> n.
WILKS_TABLE = [
    (0.95, 0.95, "one", 1, 59),
    (0.95, 0.95, "one", 2, 93),
    (0.95, 0.95, "one", 3, 124),
    (0.95, 0.95, "one", 4, 153),
    (0.95, 0.95, "two", 1, 93),
    (0.95, 0.95, "two", 2, 153),
    (0.95, 0.95, "two", 3, 208),
    (0.95, 0.99, "one", 1, 90),
    (0.95, 0.99, "two", 1, 130),
    (0.90, 0.90, "one", 1, 22),
    (0.90, 0.90, "two", 1, 38),
    (0.99, 0.95, "one", 1, 299),
]


@pytest.mark.parametrize(("coverage", "confidence", "sided", "order", "n"), WILKS_TABLE)
def test_wilks_n_matches_the_published_table(
    coverage: float, confidence: float, sided: Any, order: int, n: int
) -> None:
    assert wilks_n(coverage, confidence, sided=sided, order=order) == n


def test_wilks_n_defaults_to_one_sided_95_95() -> None:
    assert wilks_n() == 59


@pytest.mark.parametrize(
    "kwargs",
    [{"coverage": 1.0}, {"confidence": 0.0}, {"order": 0}, {"sided": "both"}, {"order": True}],
)
def test_wilks_n_refuses_bad_arguments(kwargs: dict[str, Any]) -> None:
    with pytest.raises(SweepConfigError):
        wilks_n(**kwargs)


def test_bound_is_the_right_order_statistic() -> None:
    values = np.random.default_rng(5).permutation(np.arange(200.0))
    upper = order_statistic_bound(values, sided="upper", order=2)
    assert (upper.upper, upper.upper_rank, upper.lower) == (198.0, 199, None)
    assert upper.n_needed == 93 and upper.achieved_confidence >= 0.95
    lower = order_statistic_bound(values, sided="lower", order=3)
    assert (lower.lower, lower.lower_rank) == (2.0, 3)
    two = order_statistic_bound(values, sided="two", order=1)
    assert (two.lower, two.upper, two.lower_rank, two.upper_rank) == (0.0, 199.0, 1, 200)


def test_too_few_runs_states_the_number_needed() -> None:
    with pytest.raises(SweepConfigError, match="at least 59") as raised:
        order_statistic_bound(np.arange(58.0))
    # How to add them, from Python and from the command line (where `bound` reports it).
    assert "an upper 0.95/0.95 bound" in str(raised.value)
    assert "Sweep.extend(1)" in str(raised.value)
    assert "gmat-sweep extend OUT_DIR -n 1" in str(raised.value)
    with pytest.raises(SweepConfigError, match="at least 93"):
        order_statistic_bound(np.arange(92.0), sided="two")
    with pytest.raises(SweepConfigError, match="not finite"):
        order_statistic_bound([*range(60), math.nan])


def test_numpy_numbers_are_numbers() -> None:
    # A value from an array (np.int64, np.float32) keeps the rule: before, order=np.int64(2)
    # was refused as not "a whole number >= 1", and max_n=np.int64(16) as not ">= n".
    assert wilks_n(np.float32(0.95), np.float64(0.95), order=np.int64(2)) == 93
    bound = order_statistic_bound(np.arange(93.0), order=np.int64(2))
    assert (bound.upper, bound.upper_rank) == (91.0, 92) and type(bound.order) is int
    rule = stop_rule(
        {"column": "Y", "half_width": np.float32(0.5), "confidence": np.float64(0.9)},
        n=4, batch=np.int64(4), max_n=np.int64(16),
    )  # fmt: skip
    assert json.loads(json.dumps(rule)) == rule  # recorded in the manifest as plain JSON
    assert (rule["batch"], rule["max_n"], rule["until"]["half_width"]) == (4, 16, 0.5)
    for wrong in (np.bool_(True), np.int64(0)):
        with pytest.raises(SweepConfigError, match="order="):
            wilks_n(order=wrong)


def test_designs_take_numpy_integers_and_record_plain_ones() -> None:
    # The in-memory header (sweep.manifest.parameter_spec) held np.int64 n and seed, which
    # json.dumps refuses; and morris(levels=np.int64(4)) was refused as not even and >= 2.
    bounds = {"X1.Value": (0.0, 1.0), "X2.Value": (0.0, 1.0)}
    four, seed = np.int64(4), np.int64(7)
    assert morris_rows(bounds, four, four, seed) == morris_rows(bounds, 4, 4, 7)
    perturb = {"X1.Value": ("uniform", 0.0, 1.0)}
    records = [
        plan.stochastic_spec("monte_carlo", perturb, four, seed, sampler="sobol"),
        plan.sobol_spec(bounds, four, seed, second_order=False),
        plan.morris_spec(bounds, four, four, seed),
    ]
    for record in records:
        assert json.loads(json.dumps(record)) == record


# -- quasi-Monte Carlo draws ---------------------------------------------------


UNIT = {f"U{i}.Value": ("uniform", 0.0, 1.0) for i in range(3)}


def _unit_points(sampler: str, n: int, seed: int) -> np.ndarray:
    rows = monte_carlo_rows(UNIT, n, seed, sampler=sampler)
    return np.array([[row[field] for field in sorted(UNIT)] for row in rows])


@pytest.mark.parametrize("sampler", ["sobol", "halton"])
def test_qmc_discrepancy_is_lower_than_random(sampler: str) -> None:
    random = qmc.discrepancy(_unit_points("random", 256, 11))
    quasi = qmc.discrepancy(_unit_points(sampler, 256, 11))
    assert quasi < random / 2


@pytest.mark.parametrize("sampler", ["sobol", "halton"])
def test_qmc_is_seeded_reproducible_and_extends(sampler: str) -> None:
    perturb = {"A.Value": ("normal", 0.0, 1.0), "B.Value": ("lognormal", 0.0, 0.5)}
    first = monte_carlo_rows(perturb, 64, 3, sampler=sampler)
    assert monte_carlo_rows(perturb, 64, 3, sampler=sampler) == first
    assert monte_carlo_rows(perturb, 64, 4, sampler=sampler) != first
    assert monte_carlo_rows(perturb, 128, 3, sampler=sampler)[:64] == first


@pytest.mark.parametrize("sampler", ["sobol", "halton"])
def test_qmc_draws_are_scipys_scrambled_sequence_through_each_inverse_cdf(sampler: str) -> None:
    # The documented construction, computed independently: one scrambled scipy engine of
    # dimension D seeded with numpy.random.default_rng(seed), fields in sorted order.
    perturb = {"B.Value": ("uniform", 500.0, 1000.0), "A.Value": ("normal", 2.2, 0.1)}
    engine = {"sobol": qmc.Sobol, "halton": qmc.Halton}[sampler]
    unit = engine(d=2, scramble=True, rng=np.random.default_rng(5)).random(16)
    expected = {
        "A.Value": stats.norm(2.2, 0.1).ppf(unit[:, 0]),
        "B.Value": stats.uniform(500.0, 500.0).ppf(unit[:, 1]),
    }
    rows = monte_carlo_rows(perturb, 16, 5, sampler=sampler)
    for field, values in expected.items():
        np.testing.assert_array_equal([row[field] for row in rows], values)


def test_qmc_normal_draws_are_never_infinite() -> None:
    # An unscrambled Sobol' sequence starts at exactly 0; scrambled points can land
    # arbitrarily close to 0 or 1. The inverse CDF is fed the open interval.
    perturb: dict[Any, Any] = {
        "A.Value": ("normal", 0.0, 1.0),
        ("B.Value", "C.Value"): ("mvnormal", [0.0, 1.0], [[1.0, 0.8], [0.8, 2.0]]),
    }
    rows = monte_carlo_rows(perturb, 4096, 0, sampler="sobol")
    values = np.array([list(row.values()) for row in rows])
    assert np.isfinite(values).all()
    correlation = np.corrcoef(values[:, 1], values[:, 2])[0, 1]
    assert correlation == pytest.approx(0.8 / math.sqrt(2.0), abs=0.02)


def test_random_sampler_keeps_todays_draws() -> None:
    perturb = {"A.Value": ("normal", 0.0, 1.0)}
    assert monte_carlo_rows(perturb, 16, 9, sampler="random") == monte_carlo_rows(perturb, 16, 9)
    assert "sampler" not in plan.stochastic_spec("monte_carlo", perturb, 16, 9)


def test_unknown_sampler_and_sobol_n_warning() -> None:
    with pytest.raises(SweepConfigError, match="'lattice' is not a known sampler"):
        monte_carlo_rows({"A.Value": ("normal", 0.0, 1.0)}, 8, 0, sampler="lattice")
    with (
        pytest.warns(UserWarning, match="n=100: not a power of two.* 64 and 128; e.g. n=128"),
        pytest.raises(SweepConfigError, match="perturb is empty"),
    ):
        monte_carlo(ISHIGAMI, n=100, perturb={}, sampler="sobol")


def test_designs_are_rebuilt_bit_for_bit_from_their_record(tmp_path: Path) -> None:
    perturb = {"X1.Value": ("normal", 0.0, 1.0)}
    records = [
        (plan.stochastic_spec("monte_carlo", perturb, 32, 7, sampler="halton"),
         monte_carlo_rows(perturb, 32, 7, sampler="halton")),
        (plan.sobol_spec(CUBE, 8, 7, second_order=True),
         sobol_rows(CUBE, 8, 7, second_order=True)),
        (plan.morris_spec(CUBE, 4, 6, 7), morris_rows(CUBE, 4, 6, 7)),
    ]  # fmt: skip
    for record, rows in records:
        runs = plan.expand(record, ISHIGAMI, tmp_path)
        assert [run.overrides for run in runs] == rows
    assert len(records[1][1]) == 8 * (2 * 3 + 2)
    assert len(records[2][1]) == 4 * (3 + 1)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: sobol_rows({}, 8, 0), "non-empty mapping"),
        (lambda: sobol_rows({"X1.Value": (1.0, 1.0)}, 8, 0), "low < high"),
        (lambda: sobol_rows({"X1.Value": (0.0, 1.0)}, 8, 0, second_order=True), "two fields"),
        (lambda: morris_rows(CUBE, 4, 3, 0), "even number of levels"),
        (lambda: morris_rows(CUBE, 1, 4, 0), "at least 2 trajectories"),
        (lambda: morris_rows(CUBE, 0, 4, 0), r"^trajectories=0: too few"),
        (lambda: morris_rows(CUBE, 2.5, 4, 0), r"^trajectories=2\.5 of type float"),
    ],
)
def test_design_arguments_are_checked(call: Any, match: str) -> None:
    with pytest.raises(SweepConfigError, match=match):
        call()


# -- real GMAT sweeps ------------------------------------------------------------


@pytest.fixture(scope="module")
def sobol_sweep(pool: LocalPool, tmp_path_factory: pytest.TempPathFactory) -> Sweep:
    out = tmp_path_factory.mktemp("sobol")
    return sobol(ISHIGAMI, CUBE, 64, seed=1, backend=pool, out=out, progress=False)


@pytest.fixture(scope="module")
def qmc_sweep(pool: LocalPool, tmp_path_factory: pytest.TempPathFactory) -> Sweep:
    perturb = {field: ("uniform", -math.pi, math.pi) for field in FIELDS}
    out = tmp_path_factory.mktemp("qmc")
    return monte_carlo(
        ISHIGAMI, n=256, perturb=perturb, seed=3, sampler="sobol", backend=pool, out=out,
        progress=False,
    )  # fmt: skip


def _inputs(result: Sweep) -> np.ndarray:
    return np.array([[run.overrides[field] for field in FIELDS] for run in result.runs])


@pytest.mark.slow
def test_gmat_computes_the_ishigami_function(sobol_sweep: Sweep) -> None:
    final = sobol_sweep.to_pandas().groupby(level="run_id")["Y"].last()
    np.testing.assert_allclose(final.to_numpy(), ishigami(_inputs(sobol_sweep)), rtol=1e-12)


@pytest.mark.slow
def test_sobol_indices_match_the_analytic_ones(sobol_sweep: Sweep) -> None:
    table = sensitivity(sobol_sweep, "Y")
    assert list(table.index) == FIELDS
    assert table.attrs == {"method": "sobol", "column": "Y", "n_used": 320, "n_failed": 0}
    # Every estimate lies within its own 95 % bootstrap half-width of the truth.
    assert (np.abs(table["S1"].to_numpy() - S1_TRUE) <= table["S1_conf"].to_numpy()).all()
    assert (np.abs(table["ST"].to_numpy() - ST_TRUE) <= table["ST_conf"].to_numpy()).all()
    assert list(table["ST"].sort_values(ascending=False).index) == FIELDS


@pytest.mark.slow
def test_sobol_sweep_resumes_to_the_same_design(sobol_sweep: Sweep, pool: LocalPool) -> None:
    again = Sweep.from_manifest(sobol_sweep.manifest_path, ISHIGAMI, backend=pool, progress=False)
    assert [run.overrides for run in again.runs] == [run.overrides for run in sobol_sweep.runs]
    assert again.manifest.parameter_spec["_kind"] == "sobol"


@pytest.mark.slow
def test_morris_screens_out_the_narrow_input(pool: LocalPool, tmp_path: Path) -> None:
    bounds = {**CUBE, "X3.Value": (-1.0, 1.0)}  # 0.1 X3^4 sin X1 stays below 0.1
    result = morris(ISHIGAMI, bounds, 10, seed=2, backend=pool, out=tmp_path, progress=False)
    table = sensitivity(result, "Y")
    assert table.attrs["method"] == "morris"
    assert list(table.columns[:3]) == ["mu_star", "mu_star_conf", "sigma"]
    assert table["mu_star"].idxmin() == "X3.Value"
    assert table.loc["X3.Value", "mu_star"] < table["mu_star"].max() / 10
    from SALib.analyze import morris as salib_morris

    problem = {"num_vars": 3, "names": FIELDS, "bounds": [list(bounds[f]) for f in FIELDS]}
    x = _inputs(result)
    truth = salib_morris.analyze(problem, x, ishigami(x), num_levels=4, seed=2)
    np.testing.assert_allclose(table["mu_star"], truth["mu_star"], rtol=1e-9)


@pytest.mark.slow
def test_given_data_method_ranks_a_monte_carlo_sweep(qmc_sweep: Sweep) -> None:
    table = sensitivity(qmc_sweep, "Y")
    assert table.attrs == {"method": "pawn", "column": "Y", "n_used": 256, "n_failed": 0}
    # The analytic first-order ranking, X2 > X1 > X3 (S1 = 0.44, 0.31, 0); PAWN gives
    # it for each of 30 seeds of this design checked with SALib's Ishigami.
    assert list(table["median"].sort_values(ascending=False).index) == [
        "X2.Value", "X1.Value", "X3.Value",
    ]  # fmt: skip


@pytest.mark.slow
def test_qmc_sweep_records_its_sampler(qmc_sweep: Sweep, pool: LocalPool) -> None:
    assert qmc_sweep.manifest.parameter_spec["sampler"] == "sobol"
    perturb = {field: ("uniform", -math.pi, math.pi) for field in FIELDS}
    drawn = monte_carlo_rows(perturb, 256, 3, sampler="sobol")
    assert [run.overrides for run in qmc_sweep.runs] == drawn
    again = Sweep.from_manifest(qmc_sweep.manifest_path, ISHIGAMI, backend=pool, progress=False)
    assert [run.overrides for run in again.runs] == drawn


@pytest.mark.slow
def test_given_data_refuses_correlated_inputs(pool: LocalPool, tmp_path: Path) -> None:
    perturb = {("X1.Value", "X2.Value"): ("mvnormal", [0.0, 0.0], [[1.0, 0.5], [0.5, 1.0]])}
    result = monte_carlo(
        ISHIGAMI, n=2, perturb=perturb, seed=0, backend=pool, out=tmp_path, progress=False
    )
    with pytest.raises(SweepConfigError, match=r"\['X1.Value\|X2.Value'\] are correlated"):
        sensitivity(result, "Y")


@pytest.mark.slow
def test_sweep_tolerance_bound_and_reduce(qmc_sweep: Sweep) -> None:
    y = np.sort(qmc_sweep.to_pandas().groupby(level="run_id")["Y"].last().to_numpy())
    bound = tolerance_bound(qmc_sweep, "Y", order=3)
    assert (bound.upper, bound.upper_rank, bound.n) == (y[-3], 254, 256)
    assert tolerance_bound(qmc_sweep, "Y", sided="lower", reduce="min").lower == y[0]
    by_callable = tolerance_bound(qmc_sweep, "Y", reduce=lambda rows: float(rows["Y"].iloc[-1]))
    assert by_callable.upper == y[-1]
    with pytest.raises(SweepConfigError, match="at least 257"):
        tolerance_bound(qmc_sweep, "Y", sided="two", order=2, coverage=0.97)
    with pytest.raises(SweepConfigError, match="column 'Z' is not in the report"):
        tolerance_bound(qmc_sweep, "Z")


@pytest.mark.slow
def test_convergence_running_estimates(qmc_sweep: Sweep) -> None:
    y = qmc_sweep.to_pandas().groupby(level="run_id")["Y"].last().to_numpy()
    mean = convergence(qmc_sweep, "Y")
    assert list(mean.index) == list(range(1, 257)) and list(mean["run_id"]) == list(range(256))
    last = mean.iloc[-1]
    assert last["estimate"] == pytest.approx(y.mean(), rel=1e-12)
    half = stats.t.ppf(0.975, 255) * y.std(ddof=1) / math.sqrt(256)
    assert last["half_width"] == pytest.approx(half, rel=1e-9)
    assert mean["half_width"].iloc[-1] < mean["half_width"].iloc[9]
    std = convergence(qmc_sweep, "Y", stat="std").iloc[-1]
    assert std["estimate"] == pytest.approx(y.std(ddof=1), rel=1e-12)
    assert std["lower"] < std["estimate"] < std["upper"]
    q95 = convergence(qmc_sweep, "Y", stat="q95")
    assert q95["estimate"].iloc[-1] == pytest.approx(np.quantile(y, 0.95))
    assert math.isnan(q95["upper"].iloc[10])  # 11 runs cannot bracket a 95 % quantile
    assert q95["lower"].iloc[-1] <= q95["estimate"].iloc[-1] <= q95["upper"].iloc[-1]
    with pytest.raises(SweepConfigError, match="stat='q100'"):
        convergence(qmc_sweep, "Y", stat="q100")


@pytest.fixture(scope="module")
def failing_sobol(pool: LocalPool, tmp_path_factory: pytest.TempPathFactory) -> Sweep:
    # Idx.Value must be 1, 2 or 3: most points of a design on (0.5, 3.5) fail in GMAT.
    return sobol(
        DATA / "fails_at_runtime.script", {"Idx.Value": (0.5, 3.5)}, 4, seed=0,
        backend=pool, out=tmp_path_factory.mktemp("failing"), progress=False,
    )  # fmt: skip


@pytest.mark.slow
def test_designs_with_failed_runs_are_refused(failing_sobol: Sweep) -> None:
    failed = failing_sobol.failed_run_ids
    assert failed
    with pytest.raises(SweepConfigError, match=r"runs \[.*\] have none.*resume") as info:
        sensitivity(failing_sobol, "Sat.Earth.RMAG")
    assert str(sorted(failed)) in str(info.value)
    with pytest.raises(SweepConfigError, match="resume"):
        tolerance_bound(failing_sobol, "Sat.Earth.RMAG", coverage=0.5, confidence=0.5)


@pytest.mark.slow
def test_given_data_method_drops_failed_runs(pool: LocalPool, tmp_path: Path) -> None:
    # Idx.Value 2 succeeds and 4 fails; among the runs that succeed only Sat.SMA varies.
    rows = [{"Idx.Value": 2 + 2 * (k % 2), "Sat.SMA": 7000.0 + 7.0 * k} for k in range(64)]
    result = sweep(
        DATA / "fails_at_runtime.script", samples=rows, backend=pool, out=tmp_path,
        progress=False,
    )  # fmt: skip
    table = sensitivity(result, "Sat.Earth.RMAG")
    assert table.attrs["n_used"] == 32 and table.attrs["n_failed"] == 32
    assert list(table.index) == ["Sat.SMA"]
    mean = convergence(result, "Sat.Earth.RMAG")
    assert len(mean) == 32 and mean["n_failed"].iloc[-1] == 31  # run 63 fails after
    assert list(mean["run_id"]) == list(range(0, 64, 2))


@pytest.mark.slow
def test_resample_matches_a_fixed_step_truth(pool: LocalPool, tmp_path: Path) -> None:
    # multi_output integrates with a fixed step: its own 120 s step is the truth at
    # 120 s spacing, a 360 s run is interpolated onto it.
    steps = [
        {"Prop.InitialStepSize": s, "Prop.MinStep": s, "Prop.MaxStep": s, "Hours.Value": 1}
        for s in (360, 120)
    ]
    result = sweep(
        DATA / "multi_output.script", samples=steps, backend=pool, out=tmp_path,
        progress=False,
    )  # fmt: skip
    column = "Sat.EarthMJ2000Eq.X"
    truth = result.to_pandas("StateReport").loc[1]
    assert len(truth) == 31  # one row per 120 s step over an hour
    errors = {}
    for method in ("linear", "cubic"):
        lazy = resample(result, 120, name="StateReport", method=method)
        frame = lazy.compute()
        coarse = frame.loc[0]
        assert list(coarse["time"]) == [pd.Timedelta(seconds=120 * k) for k in range(31)]
        errors[method] = np.abs(coarse[column].to_numpy() - truth[column].to_numpy()).max()
        # Grid points that are rows of the 120 s run reproduce them.
        knots = result.to_pandas("StateReport").loc[0][column].to_numpy()
        np.testing.assert_allclose(coarse[column].to_numpy()[::3], knots, rtol=0, atol=1e-6)
        assert set(coarse["Prop.MaxStep"]) == {360}
        # The rows have the dtypes the lazy frame promises, as to_pandas has them (every
        # run ok: __status was once pandas' default str dtype, not the meta's).
        pd.testing.assert_series_equal(frame.dtypes, lazy.dtypes)
        assert frame["__status"].dtype == result.to_pandas("StateReport")["__status"].dtype
    # Interpolation error bounds for x = R cos(w t), R = 7200 km, w = 2 pi / 6080 s,
    # h = 360 s: linear h^2 w^2 R / 8 = 124 km, cubic spline 5 h^4 w^4 R / 384 = 1.8 km.
    assert errors["linear"] < 124.0
    assert errors["cubic"] < 1.8
    assert errors["linear"] > 30 * errors["cubic"]


@pytest.mark.slow
def test_resample_keeps_failed_runs_as_rows(pool: LocalPool, tmp_path: Path) -> None:
    result = sweep(
        DATA / "fails_at_runtime.script", grid={"Idx.Value": [2, 4]}, backend=pool,
        out=tmp_path, progress=False,
    )  # fmt: skip
    frame = resample(result, 300, start=0, stop=900).compute()
    by_numpy = resample(result, np.int64(300), start=np.int64(0), stop=np.float32(900))
    pd.testing.assert_frame_equal(by_numpy.compute(), frame)
    ok, failed = frame.loc[[0]], frame.loc[[1]]
    assert list(ok["time"]) == [pd.Timedelta(seconds=s) for s in (0, 300, 600, 900)]
    assert len(failed) == 1 and pd.isna(failed["time"].iloc[0])
    assert failed["__status"].iloc[0] == "failed" and failed["Idx.Value"].iloc[0] == 4
    with pytest.raises(SweepConfigError, match="step=0"):
        resample(result, 0)


UNIFORM_CUBE = {field: ("uniform", -math.pi, math.pi) for field in FIELDS}


@pytest.mark.slow
def test_adaptive_stopping_stops_near_the_analytic_n(pool: LocalPool, tmp_path: Path) -> None:
    # Var(Y) of the Ishigami function on [-pi, pi]^3 is
    # 7^2/8 + 0.1^2 pi^8/18 + 0.1 pi^4/5 + 1/2 = 13.845; a 95 % half-width of 0.75
    # needs n = (1.96 sigma / 0.75)^2 = 94.6 runs.
    sigma = math.sqrt(49 / 8 + 0.01 * math.pi**8 / 18 + 0.1 * math.pi**4 / 5 + 0.5)
    analytic = (stats.norm.ppf(0.975) * sigma / 0.75) ** 2
    result = monte_carlo(
        ISHIGAMI, n=16, perturb=UNIFORM_CUBE, seed=21, until={"column": "Y", "half_width": 0.75},
        max_n=400, backend=pool, out=tmp_path / "adaptive", progress=False,
    )  # fmt: skip
    stopped = result.stopping
    assert stopped is not None
    assert stopped.reason == "half_width" and stopped.half_width < 0.75
    assert abs(stopped.n - analytic) <= 16 and stopped.n % 16 == 0
    assert stopped.n == len(result.runs) == result.manifest.run_count == len(result.final())
    last = convergence(result, "Y").iloc[-1]
    assert (stopped.estimate, stopped.half_width) == (last["estimate"], last["half_width"])
    # The runs are those of a fixed-n sweep with the same seed (planned, not run).
    fixed = monte_carlo(
        ISHIGAMI, n=stopped.n, perturb=UNIFORM_CUBE, seed=21, backend=pool,
        out=tmp_path / "fixed", compute=False,
    )  # fmt: skip
    assert [run.overrides for run in result.runs] == [run.overrides for run in fixed.runs]
    # The manifest records the rule (defaults filled in) and why it stopped.
    header = json.loads((tmp_path / "adaptive" / "manifest.jsonl").read_text().splitlines()[0])
    spec = header["parameter_spec"]
    assert spec["until"] == {
        "column": "Y", "half_width": 0.75, "stat": "mean", "confidence": 0.95, "name": None,
        "reduce": "last",
    }  # fmt: skip
    assert (spec["batch"], spec["max_n"], spec["n"]) == (16, 400, stopped.n)
    assert spec["stopped"] == {
        "reason": "half_width", "n": stopped.n, "estimate": stopped.estimate,
        "half_width": stopped.half_width,
    }  # fmt: skip
    assert open_sweep(tmp_path / "adaptive").stopping == stopped


@pytest.mark.slow
def test_adaptive_stopping_spends_at_most_max_n(pool: LocalPool, tmp_path: Path) -> None:
    until = {"column": "Y", "half_width": 0.01, "stat": "q90", "reduce": "max"}
    result = monte_carlo(
        ISHIGAMI, n=8, perturb=UNIFORM_CUBE, seed=4, until=until, batch=6, max_n=20,
        backend=pool, out=tmp_path, progress=False,
    )  # fmt: skip
    stopped = result.stopping
    assert stopped is not None and (stopped.reason, stopped.n) == ("max_n", 20)  # 8 + 6 + 6
    assert [run.overrides for run in result.runs] == monte_carlo_rows(UNIFORM_CUBE, 20, 4)
    q90 = convergence(result, "Y", stat="q90", reduce="max").iloc[-1]
    assert stopped.estimate == q90["estimate"]
    # Extending keeps the rule: the budget is spent, so it stops again at once.
    result.extend(3, backend=pool)
    again = result.stopping
    assert again is not None and (again.reason, again.n) == ("max_n", 23)
    assert result.manifest.run_count == 23 == len(result.final())


def test_until_is_checked_before_anything_runs(tmp_path: Path) -> None:
    def call(**options: Any) -> None:
        monte_carlo(ISHIGAMI, n=8, perturb=UNIFORM_CUBE, seed=0, out=tmp_path, **options)

    good = {"column": "Y", "half_width": 0.5}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"until": {**good, "colour": "red"}, "max_n": 9}, r"unknown keys \['colour'\]"),
        ({"until": {"column": "Y"}, "max_n": 9}, r"lacks \['half_width'\]"),
        ({"until": {**good, "half_width": 0}, "max_n": 9}, r"until\['half_width'\]=0: use a"),
        ({"until": {**good, "column": ""}, "max_n": 9}, r"until\['column'\]=''"),
        ({"until": {**good, "stat": "median"}, "max_n": 9}, r"stat='median': use mean, std"),
        ({"until": {**good, "confidence": 95}, "max_n": 9}, r"until\['confidence'\]=95"),
        ({"until": {**good, "reduce": max}, "max_n": 9}, "a function cannot be recorded"),
        ({"until": {**good, "name": 3}, "max_n": 9}, r"until\['name'\]=3"),
        ({"until": good}, "until= needs max_n="),
        ({"until": good, "max_n": 4}, "max_n=4: use a whole number of runs >= n=8"),
        ({"until": good, "max_n": 9, "batch": 0}, "batch=0: use a whole number"),
        ({"until": "Y<0.5", "max_n": 9}, "until='Y<0.5': pass a dict"),
        ({"batch": 10}, "batch=10: batch and max_n belong to adaptive stopping"),
        ({"max_n": 10}, r"pass until=\{'column': \.\.\., 'half_width': \.\.\.\} too,"),
    ]
    for options, match in cases:
        with pytest.raises(SweepConfigError, match=match):
            call(**options)
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_sobol_and_morris_compute_postprocess_metrics(pool: LocalPool, tmp_path: Path) -> None:
    bounds = {"X1.Value": (-1.0, 1.0)}
    designs = [
        sobol(ISHIGAMI, bounds, 2, seed=0, backend=pool, out=tmp_path / "sobol",
              progress=False, postprocess=y_squared),
        morris(ISHIGAMI, bounds, 2, seed=0, backend=pool, out=tmp_path / "morris",
               progress=False, postprocess="test_analysis:y_squared"),
    ]  # fmt: skip
    for design in designs:
        metrics = design.metrics()
        y = design.final()["Y"]
        assert len(metrics) == len(design.runs) > 0
        np.testing.assert_array_equal(metrics["y2"].to_numpy(), (y**2).to_numpy())
        assert design.manifest.parameter_spec["postprocess"] == "test_analysis:y_squared"


def y_squared(outputs: dict[str, pd.DataFrame], overrides: dict[str, Any]) -> dict[str, float]:
    """A per-run metric of the Ishigami mission: Y squared."""
    return {"y2": float(outputs["Summary"]["Y"].iloc[-1]) ** 2}


@pytest.mark.slow
def test_sweep_methods_give_the_analysis_functions_results(qmc_sweep: Sweep) -> None:
    pd.testing.assert_frame_equal(qmc_sweep.sensitivity("Y"), sensitivity(qmc_sweep, "Y"))
    assert qmc_sweep.tolerance_bound("Y") == tolerance_bound(qmc_sweep, "Y")
    pd.testing.assert_frame_equal(qmc_sweep.convergence("Y"), convergence(qmc_sweep, "Y"))


@pytest.mark.parametrize(
    ("method", "function"),
    [
        (Sweep.sensitivity, sensitivity),
        (Sweep.tolerance_bound, tolerance_bound),
        (Sweep.convergence, convergence),
        (Sweep.resample, resample),
    ],
    ids=lambda f: getattr(f, "__qualname__", ""),
)
def test_sweep_methods_have_the_analysis_functions_signatures(method: Any, function: Any) -> None:
    # Issue 18 names the methods' keywords (Sweep.sensitivity(column, *, name=None,
    # reduce="last"), ...); inspect.signature and help() must show them, not **options.
    own = list(inspect.signature(method).parameters.values())[1:]
    documented = list(inspect.signature(function).parameters.values())[1:]
    assert [(p.name, p.kind, p.default) for p in own] == [
        (p.name, p.kind, p.default) for p in documented
    ]


@pytest.mark.slow
@pytest.mark.parametrize("stat", [5, None, ["mean"]])
def test_convergence_refuses_a_stat_that_is_not_a_string(qmc_sweep: Sweep, stat: Any) -> None:
    # Before, re.fullmatch raised a bare TypeError ("expected string or bytes-like object").
    with pytest.raises(SweepConfigError, match=rf"stat={re.escape(repr(stat))}: use mean, std"):
        convergence(qmc_sweep, "Y", stat=stat)


@pytest.mark.slow
def test_reduce_first_is_the_row_a_run_wrote_first(pool: LocalPool, tmp_path: Path) -> None:
    # A backward propagation writes its rows latest time first. "first" and "last" are the
    # rows GMAT wrote first and last (final()'s rule), not the earliest and latest times;
    # "first" was the earliest time, so here the same row as "last".
    backward = tmp_path / "backward.script"
    backward.write_text(
        (DATA / "loop_reports.script")
        .read_text()
        .replace(
            "Propagate DefaultProp(Sat) {Sat.ElapsedSecs = StepSecs};",
            "Propagate BackProp DefaultProp(Sat) {Sat.ElapsedSecs = StepSecs};",
        )
    )
    grid = {"N.Value": [2, 3], "StepSecs.Value": [-600], "GoalSMA.Value": [0]}
    study = sweep(backward, grid, out=tmp_path / "s", backend=pool, progress=False)

    def running_mean(reduce: Any) -> list[float]:
        frame = convergence(study, "I", name="Passes", reduce=reduce)
        return [float(value) for value in frame["estimate"]]

    # Pass I = 1, 2 in run 0 and I = 1, 2, 3 in run 1, in that order.
    assert running_mean("first") == [1.0, 1.0]
    assert running_mean("last") == [2.0, 2.5]
    assert running_mean("min") == [1.0, 1.0]
