"""From runs to answers: sensitivity, tolerance bounds, convergence, adaptive stopping, time grids.

Every function here reads a finished :class:`~gmat_sweep.sweep.Sweep` and
turns one report column into one scalar per run first (``reduce``: the run's
last row by default, or ``"first"``, ``"min"``, ``"max"``, ``"mean"``, or a
callable on the run's frame). What happens to runs without a value (failed,
skipped, never run, or an ok run whose value is missing) is part of each
function's contract, because the answer depends on it:

- :func:`tolerance_bound` and the Sobol' and Morris branches of
  :func:`sensitivity` refuse, naming the runs: their statistics assume every
  run of the design, and dropping runs silently would make a bound optimistic
  or break the design. Resume the sweep first.
- The given-data branch of :func:`sensitivity` and :func:`convergence` drop
  them and say how many they dropped.
- :func:`resample` keeps a failed run as one row of missing values, like
  :meth:`~gmat_sweep.sweep.Sweep.to_pandas`.

The numerical work is SciPy's (order statistics, binomial tails) and SALib's
(Sobol', Morris and PAWN estimators); SALib is imported only when a
sensitivity function runs.
"""

from __future__ import annotations

import bisect
import math
import re
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from gmat_sweep.errors import ArgumentError, SweepConfigError
from gmat_sweep.spec import is_real, is_whole

if TYPE_CHECKING:
    import dask.dataframe as dd

    from gmat_sweep.sweep import Sweep

Reduce = Literal["last", "first", "min", "max", "mean"] | Callable[[pd.DataFrame], float]
"""How one run's report becomes one number: a named reduction or a callable on the run's
frame (its rows of the ``(run_id, time)`` frame, one run only). ``"first"`` and ``"last"``
are the rows GMAT wrote first and last (as :meth:`~gmat_sweep.sweep.Sweep.final` reads
them), which for a backward propagation are its latest and earliest times."""

_REDUCERS = ("last", "first", "min", "max", "mean")


# -- order-statistic tolerance bounds ------------------------------------------


def wilks_n(
    coverage: float = 0.95,
    confidence: float = 0.95,
    *,
    sided: Literal["one", "two"] = "one",
    order: int = 1,
) -> int:
    """The fewest runs for a distribution-free (Wilks) tolerance bound.

    With ``n`` independent runs, the ``order``-th largest value is an upper
    bound on the ``coverage`` quantile with probability ``P(B >= order)``,
    ``B ~ Binomial(n, 1 - coverage)``; a two-sided interval from the
    ``order``-th smallest to the ``order``-th largest value covers a fraction
    ``coverage`` with probability ``P(B >= 2 order)``. This is the smallest
    ``n`` for which that probability reaches ``confidence``: 59 for a
    one-sided 95 %/95 % bound, 93 two-sided.

    Parameters
    ----------
    coverage:
        Fraction of the population the bound must cover, in (0, 1).
    confidence:
        Probability that it does, in (0, 1).
    sided:
        ``"one"`` for an upper (or lower) bound, ``"two"`` for an interval.
    order:
        Which order statistic bounds: 1 is the extreme value, higher orders
        need more runs and give a bound less driven by one outlier.

    Returns
    -------
    int
        The number of runs needed.

    Raises
    ------
    SweepConfigError
        An argument outside its range.
    """
    _check_probability("coverage", coverage)
    _check_probability("confidence", confidence)
    successes = _check_order(order) * _sides(sided)
    low, high = successes, successes
    while _confidence(high, successes, coverage) < confidence:
        low, high = high, high * 2
    while low < high:
        middle = (low + high) // 2
        if _confidence(middle, successes, coverage) >= confidence:
            high = middle
        else:
            low = middle + 1
    return high


@dataclass(frozen=True, slots=True)
class ToleranceBound:
    """A distribution-free tolerance bound and the order statistics it was read from.

    Attributes
    ----------
    lower, upper:
        The bound(s); ``None`` for the side not asked for.
    lower_rank, upper_rank:
        The order statistics used, as 1-based ranks in ascending order (the
        upper bound of ``n`` values at ``order`` 1 has rank ``n``).
    n:
        Number of values the bound was computed from.
    n_needed:
        :func:`wilks_n` for this coverage, confidence, sides and order.
    coverage, confidence, sided, order:
        What was asked for.
    achieved_confidence:
        The confidence these ``n`` values actually give (at least
        ``confidence``; more when ``n > n_needed``).
    """

    lower: float | None
    upper: float | None
    lower_rank: int | None
    upper_rank: int | None
    n: int
    n_needed: int
    coverage: float
    confidence: float
    sided: str
    order: int
    achieved_confidence: float


_BOUND_KINDS = {"upper": "an upper", "lower": "a lower", "two": "a two-sided"}


def order_statistic_bound(
    values: Any,
    *,
    coverage: float = 0.95,
    confidence: float = 0.95,
    sided: Literal["upper", "lower", "two"] = "upper",
    order: int = 1,
) -> ToleranceBound:
    """The Wilks tolerance bound of a set of values (see :func:`wilks_n`).

    Parameters
    ----------
    values:
        One-dimensional array-like of finite numbers, one per independent run.
    coverage, confidence, order:
        As for :func:`wilks_n`.
    sided:
        ``"upper"`` (the ``order``-th largest value), ``"lower"`` (the
        ``order``-th smallest) or ``"two"`` (both).

    Returns
    -------
    ToleranceBound
        The bound and the ranks it was read at.

    Raises
    ------
    SweepConfigError
        Fewer values than :func:`wilks_n` needs (the message gives the
        number), a value that is not finite, or an argument out of range.
    """
    if sided not in ("upper", "lower", "two"):
        raise SweepConfigError(f"sided={sided!r}: use 'upper', 'lower' or 'two'")
    order = _check_order(order)
    array = np.asarray(values, dtype=np.float64).ravel()
    if not np.isfinite(array).all():
        bad = np.flatnonzero(~np.isfinite(array))[:10].tolist()
        raise SweepConfigError(
            f"values at positions {bad} are not finite; a tolerance bound needs one finite "
            "value per run: drop or fix those runs first"
        )
    sides: Literal["one", "two"] = "two" if sided == "two" else "one"
    needed = wilks_n(coverage, confidence, sided=sides, order=order)
    count = len(array)
    if count < needed:
        more = needed - count
        raise SweepConfigError(
            f"{count} runs are too few for {_BOUND_KINDS[sided]} {coverage:g}/{confidence:g} "
            f"bound at order {order}: it needs at least {needed} "
            f"(wilks_n); add {more} runs to a Monte Carlo sweep (Sweep.extend({more}), CLI: "
            f"gmat-sweep extend OUT_DIR -n {more}) or lower the coverage, confidence or order"
        )
    ordered = np.sort(array)
    lower_rank = order if sided in ("lower", "two") else None
    upper_rank = count - order + 1 if sided in ("upper", "two") else None
    return ToleranceBound(
        lower=None if lower_rank is None else float(ordered[lower_rank - 1]),
        upper=None if upper_rank is None else float(ordered[upper_rank - 1]),
        lower_rank=lower_rank,
        upper_rank=upper_rank,
        n=count,
        n_needed=needed,
        coverage=coverage,
        confidence=confidence,
        sided=sided,
        order=order,
        achieved_confidence=_confidence(count, order * _sides(sides), coverage),
    )


def tolerance_bound(
    sweep: Sweep,
    column: str,
    *,
    coverage: float = 0.95,
    confidence: float = 0.95,
    sided: Literal["upper", "lower", "two"] = "upper",
    order: int = 1,
    name: str | None = None,
    reduce: Reduce = "last",
) -> ToleranceBound:
    """The Wilks tolerance bound of one report column over a sweep's runs.

    Each run gives one value (``reduce`` of ``column``); the bound is
    :func:`order_statistic_bound` of those values. The runs must be
    independent draws (a Monte Carlo sweep, any ``sampler``, or a Latin
    hypercube); every run must have a value.

    Parameters
    ----------
    sweep, column, name, reduce:
        As for :func:`sensitivity`.
    coverage, confidence, sided, order:
        As for :func:`order_statistic_bound`.

    Returns
    -------
    ToleranceBound
        The bound; ranks refer to the runs' values sorted ascending.

    Raises
    ------
    SweepConfigError
        A run has no value (failed, not run, or missing): the message lists
        them and points to resume, since dropping them would make the bound
        optimistic. Too few runs, an unknown column, or a bad argument.
    """
    values = _usable(sweep, column, name=name, reduce=reduce, why="a tolerance bound")
    return order_statistic_bound(
        values.to_numpy(), coverage=coverage, confidence=confidence, sided=sided, order=order
    )


def _confidence(n: int, successes: int, coverage: float) -> float:
    from scipy.stats import binom

    return float(binom.sf(successes - 1, n, 1.0 - coverage))


def _check_probability(label: str, value: object) -> None:
    if not is_real(value) or not 0 < value < 1:
        raise SweepConfigError(f"{label}={value!r}: use a probability strictly between 0 and 1")


def _check_order(order: object) -> int:
    if not is_whole(order) or order < 1:
        raise SweepConfigError(
            f"order={order!r}: use a whole number >= 1 (1 bounds by the extreme value)"
        )
    return int(order)


def _sides(sided: str) -> int:
    if sided not in ("one", "two"):
        raise SweepConfigError(f"sided={sided!r}: use 'one' or 'two'")
    return 1 if sided == "one" else 2


# -- one value per run -----------------------------------------------------------


def _run_values(
    sweep: Sweep, column: str, *, name: str | None, reduce: Reduce
) -> tuple[pd.Series, pd.Series]:
    """``column`` reduced to one float per run of the sweep, and each run's status.

    Both series are indexed by every run_id of the sweep; a run missing from
    the manifest has status ``"missing"`` and value NaN.
    """
    from gmat_sweep import aggregate

    if not (callable(reduce) or reduce in _REDUCERS):
        raise SweepConfigError(
            f"reduce={reduce!r}: use one of {', '.join(_REDUCERS)} or a callable taking a "
            "run's frame and returning one number"
        )
    if reduce in ("first", "last"):  # the row GMAT wrote first or last, as final() reads it
        options = sweep._storage_options
        frame = aggregate.end_frame(
            reduce, sweep.manifest, sweep.output_dir, name=name, storage_options=options
        )
        status = frame["__status"].astype(object)
    else:
        frame = sweep.to_pandas(name)
        grouped = frame.groupby(level="run_id", sort=True)
        status = grouped["__status"].first().astype(object)
    if not _check_column(frame, column):  # every run failed: no values (NaN once reindexed)
        values = pd.Series(dtype=np.float64)
    elif reduce in ("first", "last"):
        values = _numeric(frame[column], column)
    elif callable(reduce):
        ok = frame[frame["__status"] == "ok"].groupby(level="run_id", sort=True)
        values = pd.Series({run_id: float(reduce(rows)) for run_id, rows in ok}, dtype=np.float64)
    else:
        values = _numeric(grouped[column].agg(reduce), column)
    every = pd.RangeIndex(len(sweep.runs), name="run_id")
    return (
        values.reindex(every).astype(np.float64),
        status.reindex(every).fillna("missing"),
    )


def _usable(sweep: Sweep, column: str, *, name: str | None, reduce: Reduce, why: str) -> pd.Series:
    """Every run's value, or a refusal naming the runs that have none."""
    values, status = _run_values(sweep, column, name=name, reduce=reduce)
    lacking = values.index[(status != "ok").to_numpy() | ~np.isfinite(values.to_numpy())]
    if len(lacking):
        shown = lacking[:20].tolist()
        more = f" and {len(lacking) - 20} more" if len(lacking) > 20 else ""
        raise SweepConfigError(
            f"{why} needs a value of {column!r} from every run, but runs {shown}{more} have "
            f"none (status {sorted(set(status[lacking]))}); dropping them would bias the "
            f"answer. Resume the sweep (Sweep.from_manifest(...).resume(), CLI: gmat-sweep "
            f"resume {shlex.quote(str(sweep.output_dir))}) or fix the mission so those runs succeed"
        )
    return values


def _check_column(frame: pd.DataFrame, column: str) -> bool:
    """Whether the report has ``column``; refuse it only if some run succeeded.

    When every run failed, no report was written and no column is known: the
    caller then sees runs without values and says so.
    """
    if column in frame.columns:
        return True
    if (frame["__status"] == "ok").any():
        available = [c for c in frame.columns if c not in ("__status", "row", "time")]
        raise SweepConfigError(
            f"column {column!r} is not in the report; its columns are {available}"
        )
    return False


def _numeric(values: pd.Series, column: str) -> pd.Series:
    try:
        return values.astype(np.float64)
    except (TypeError, ValueError):
        raise SweepConfigError(
            f"column {column!r} holds {values.dtype} values, not numbers; pick a numeric "
            "column or pass reduce= a callable that returns a number"
        ) from None


# -- sensitivity -------------------------------------------------------------------


def sensitivity(
    sweep: Sweep,
    column: str,
    *,
    name: str | None = None,
    reduce: Reduce = "last",
) -> pd.DataFrame:
    """Which inputs matter: sensitivity indices of one report column, by field path.

    The method follows the sweep's design (its manifest ``parameter_spec``):

    - :func:`gmat_sweep.sobol` sweep: Sobol' indices (SALib
      :func:`SALib.analyze.sobol.analyze`): columns ``S1``, ``S1_conf``,
      ``ST``, ``ST_conf``, and with ``second_order`` ``S2:<field>`` and
      ``S2_conf:<field>`` (symmetric).
    - :func:`gmat_sweep.morris` sweep: elementary effects (SALib
      :func:`SALib.analyze.morris.analyze`): ``mu_star``, ``mu_star_conf``,
      ``sigma``, ``mu``.
    - Any other sweep (Monte Carlo, Latin hypercube, grid, samples): PAWN
      (SALib :func:`SALib.analyze.pawn.analyze`), a given-data,
      distribution-based method that needs no special design. It splits each
      input's range into 10 slices (5 below 50 runs) and measures the
      Kolmogorov-Smirnov distance between the output's distribution in a
      slice and overall: columns ``median`` (the PAWN index), ``mean``,
      ``minimum``, ``maximum`` and ``CV`` over the slices. Runs without a
      value are dropped (``n_failed``); fields that take one value in the
      remaining runs are left out. Correlated (``mvnormal``) inputs are
      refused: the slices assume independent inputs.

    ``*_conf`` columns are half-widths of 95 % bootstrap confidence intervals.
    Bootstraps are seeded with the sweep's seed (or 0), so the same sweep
    gives the same table. ``attrs`` hold ``method`` (``"sobol"``,
    ``"morris"`` or ``"pawn"``), ``column``, ``n_used`` and ``n_failed``.

    Parameters
    ----------
    sweep:
        A finished sweep.
    column:
        The report column.
    name:
        The ReportFile; ``None`` picks the only one.
    reduce:
        How a run's rows become one value (default: its last row).

    Returns
    -------
    pandas.DataFrame
        One row per input field path (index ``field``).

    Raises
    ------
    SweepConfigError
        A Sobol' or Morris sweep with runs that have no value (listed; resume
        first); a given-data sweep with fewer than :data:`PAWN_MIN_RUNS`
        usable runs, correlated inputs or a non-numeric input; an unknown
        column.
    ImportError
        SALib is not installed.
    """
    from gmat_sweep.sampling import salib_problem

    spec = sweep.manifest.parameter_spec
    kind = spec.get("_kind")
    seed = sweep.seed if sweep.seed is not None else 0
    if kind in ("sobol", "morris"):
        values = _usable(sweep, column, name=name, reduce=reduce, why=f"a {kind} analysis")
        problem = salib_problem(spec["bounds"])
        if kind == "sobol":
            table = _sobol_table(problem, values.to_numpy(), bool(spec["second_order"]), seed)
        else:
            inputs = _inputs(sweep, problem["names"], values.index)
            table = _morris_table(problem, inputs, values.to_numpy(), int(spec["levels"]), seed)
        n_used, n_failed = len(values), 0
    else:
        table, n_used, n_failed = _given_data(sweep, column, name, reduce, seed)
    table.index.name = "field"
    table.attrs.update(method=kind if kind in ("sobol", "morris") else "pawn")
    table.attrs.update(column=column, n_used=n_used, n_failed=n_failed)
    return table


def _sobol_table(
    problem: dict[str, Any], outputs: np.ndarray, second_order: bool, seed: int
) -> pd.DataFrame:
    from gmat_sweep.sampling import salib_module

    result = salib_module("SALib.analyze.sobol").analyze(
        problem, outputs, calc_second_order=second_order, seed=seed
    )
    names = problem["names"]
    table = _salib_table(result, ("S1", "S1_conf", "ST", "ST_conf"), names)
    if second_order:
        for key in ("S2", "S2_conf"):
            matrix = np.asarray(result[key], dtype=np.float64)
            symmetric = np.where(np.isnan(matrix), matrix.T, matrix)
            for index, other in enumerate(names):
                table[f"{key}:{other}"] = symmetric[:, index]
    return table


def _morris_table(
    problem: dict[str, Any], inputs: np.ndarray, outputs: np.ndarray, levels: int, seed: int
) -> pd.DataFrame:
    from gmat_sweep.sampling import salib_module

    result = salib_module("SALib.analyze.morris").analyze(
        problem, inputs, outputs, num_levels=levels, seed=seed
    )
    return _salib_table(result, ("mu_star", "mu_star_conf", "sigma", "mu"), problem["names"])


def _salib_table(result: Mapping[str, Any], keys: Sequence[str], names: list[str]) -> pd.DataFrame:
    """SALib's per-field results ``keys`` as float columns, one row per field."""
    return pd.DataFrame(
        {key: np.asarray(result[key], dtype=np.float64) for key in keys}, index=pd.Index(names)
    )


PAWN_MIN_RUNS = 25
"""Fewest usable runs for a PAWN analysis: it compares the output's distribution in
slices of each input (5 slices below 50 runs, 10 from 50), and a slice needs at least
five runs."""


def _given_data(
    sweep: Sweep, column: str, name: str | None, reduce: Reduce, seed: int
) -> tuple[pd.DataFrame, int, int]:
    from gmat_sweep.sampling import salib_module

    correlated = [
        key
        for key, entry in sweep.manifest.parameter_spec.get("perturb", {}).items()
        if isinstance(entry, dict) and entry.get("dist") == "mvnormal"
    ]
    if correlated:
        raise SweepConfigError(
            f"the inputs {correlated} are correlated (mvnormal); the given-data method (PAWN) "
            "compares output distributions in slices of one input at a time, which assumes "
            "independent inputs. Analyse the independent inputs in a sweep of their own"
        )
    values, status = _run_values(sweep, column, name=name, reduce=reduce)
    usable = values[(status == "ok").to_numpy() & np.isfinite(values.to_numpy())]
    fields = sorted({field for run in sweep.runs for field in run.overrides})
    inputs = _inputs(sweep, fields, usable.index)
    varied = [j for j in range(len(fields)) if np.ptp(inputs[:, j]) > 0] if len(usable) else []
    if len(usable) < PAWN_MIN_RUNS or not varied:
        raise SweepConfigError(
            f"a given-data sensitivity analysis of {column!r} needs at least {PAWN_MIN_RUNS} "
            f"runs with a value and an input that varies; this sweep has {len(usable)} usable "
            f"runs of {len(values)} and varies {[fields[j] for j in varied]}. Resume failed "
            "runs or run more"
        )
    names = [fields[j] for j in varied]
    inputs = inputs[:, varied]
    problem = {
        "num_vars": len(names),
        "names": names,
        "bounds": [[float(column.min()), float(column.max())] for column in inputs.T],
    }
    # 5 or 10, not len // 5: SALib builds the slice edges with np.arange(0, 1 + 1/S, 1/S),
    # which overshoots 1 for some S (6, for one) and then fails.
    slices = 10 if len(usable) >= 2 * PAWN_MIN_RUNS else 5
    result = salib_module("SALib.analyze.pawn").analyze(
        problem, inputs, usable.to_numpy(), S=slices, seed=seed
    )
    table = _salib_table(result, ("median", "mean", "minimum", "maximum", "CV"), names)
    return table, len(usable), len(values) - len(usable)


def _inputs(sweep: Sweep, fields: list[str], run_ids: pd.Index) -> np.ndarray:
    """The runs' override values of ``fields`` as a float matrix, one row per run id."""
    runs = sweep.runs
    try:
        return np.array(
            [[float(runs[run_id].overrides[field]) for field in fields] for run_id in run_ids],
            dtype=np.float64,
        ).reshape(len(run_ids), len(fields))
    except (TypeError, ValueError, KeyError) as exc:
        raise SweepConfigError(
            f"the sweep's inputs {fields} are not all numbers set in every run ({exc}); "
            "sensitivity analysis needs numeric overrides"
        ) from None


# -- convergence --------------------------------------------------------------------


def convergence(
    sweep: Sweep,
    column: str,
    *,
    stat: str = "mean",
    confidence: float = 0.95,
    name: str | None = None,
    reduce: Reduce = "last",
) -> pd.DataFrame:
    """The running estimate of a statistic and its confidence interval, run by run.

    Runs are taken in run_id order (the order a Monte Carlo sweep draws
    them); runs without a value are skipped and counted in ``n_failed``.
    Row ``k`` uses the first ``k`` values:

    - ``"mean"``: the sample mean, Student-t interval.
    - ``"std"``: the sample standard deviation, chi-square interval (exact
      for normal values, approximate otherwise).
    - ``"q<p>"`` (``"q95"``, ``"q99.9"``, ``"q50"``): the ``p`` % empirical
      quantile (linear interpolation) and the distribution-free interval
      between the order statistics whose binomial ranks bracket it; missing
      (NaN) until there are enough runs.

    Parameters
    ----------
    sweep, column, name, reduce:
        As for :func:`sensitivity`.
    stat:
        ``"mean"``, ``"std"`` or ``"q<percent>"``.
    confidence:
        Confidence level of the interval, in (0, 1).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``n`` (1, 2, ...: values used so far), columns
        ``run_id`` (the run that row added), ``estimate``, ``lower``,
        ``upper``, ``half_width`` (half of ``upper - lower``) and
        ``n_failed`` (runs skipped so far); ready for
        ``frame.plot(y=["estimate", "lower", "upper"])``.

    Raises
    ------
    SweepConfigError
        An unknown ``stat``, column or ``reduce``, or a bad ``confidence``.
    """
    from scipy import stats

    _check_probability("confidence", confidence)
    quantile = _quantile_level(stat)
    values, status = _run_values(sweep, column, name=name, reduce=reduce)
    good = (status == "ok").to_numpy() & np.isfinite(values.to_numpy())
    data = values.to_numpy()[good]
    run_ids = values.index.to_numpy()[good]
    n_failed = np.cumsum(~good)[good]
    n = np.arange(1, len(data) + 1)
    alpha = 1.0 - confidence
    with np.errstate(divide="ignore", invalid="ignore"):
        if stat == "mean":
            estimate = np.cumsum(data) / n
            spread = pd.Series(data).expanding().std().to_numpy()
            half = stats.t.ppf(1 - alpha / 2, n - 1) * spread / np.sqrt(n)
            lower, upper = estimate - half, estimate + half
        elif stat == "std":
            estimate = pd.Series(data).expanding().std().to_numpy()
            dof = n - 1
            lower = np.sqrt(dof * estimate**2 / stats.chi2.ppf(1 - alpha / 2, dof))
            upper = np.sqrt(dof * estimate**2 / stats.chi2.ppf(alpha / 2, dof))
        else:
            estimate, lower, upper = _running_quantile(data, quantile, alpha)
    frame = pd.DataFrame(
        {
            "run_id": run_ids,
            "estimate": estimate,
            "lower": lower,
            "upper": upper,
            "half_width": (upper - lower) / 2,
            "n_failed": n_failed,
        },
        index=pd.Index(n, name="n"),
    )
    frame.attrs.update(stat=stat, column=column, confidence=confidence)
    return frame


# -- adaptive stopping ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Stopping:
    """Why an adaptive Monte Carlo sweep (``monte_carlo(..., until=...)``) stopped.

    Read it with :attr:`gmat_sweep.sweep.Sweep.stopping`; the manifest
    records it as ``parameter_spec["stopped"]``.

    Attributes
    ----------
    reason:
        ``"half_width"`` (the interval is narrow enough) or ``"max_n"`` (the
        run budget was spent first).
    n:
        Runs in the sweep when it stopped.
    estimate, half_width:
        The last row of :func:`convergence` (NaN when no run had a value yet,
        or, for ``half_width``, when the interval was not defined).
    """

    reason: Literal["half_width", "max_n"]
    n: int
    estimate: float
    half_width: float


_UNTIL_DEFAULTS: dict[str, Any] = {
    "stat": "mean",
    "confidence": 0.95,
    "name": None,
    "reduce": "last",
}
_UNTIL_KEYS = ("column", "half_width", *_UNTIL_DEFAULTS)


def stop_rule(
    until: Mapping[str, Any], *, n: int, batch: int | None, max_n: int | None
) -> dict[str, Any]:
    """Check an adaptive sweep's stop rule; return it as the manifest's ``parameter_spec`` keys.

    ``until`` holds ``column`` and ``half_width`` (required), ``stat``,
    ``confidence``, ``name`` and ``reduce`` (as for :func:`convergence`);
    ``batch`` defaults to ``n``, the first batch. The result,
    ``{"until": {...every key...}, "batch": ..., "max_n": ...}``, is what
    :func:`grow_until` reads back, so a resumed sweep follows the same rule.

    Raises
    ------
    SweepConfigError
        Naming the bad key or value, the rule and the fix.
    """
    if not isinstance(until, Mapping):
        raise SweepConfigError(
            f"until={until!r}: pass a dict such as {{'column': 'Sat.Earth.SMA', "
            "'half_width': 0.5}, optionally with 'stat', 'confidence', 'name' and 'reduce'"
        )
    unknown = sorted(str(key) for key in until if key not in _UNTIL_KEYS)
    if unknown:
        raise SweepConfigError(
            f"until has unknown keys {unknown}; the keys are {', '.join(map(repr, _UNTIL_KEYS))}"
        )
    missing = [key for key in ("column", "half_width") if key not in until]
    if missing:
        raise SweepConfigError(
            f"until lacks {missing}: give the report column to watch and the target half-width "
            "of its confidence interval, e.g. until={'column': 'Sat.Earth.SMA', 'half_width': 0.5}"
        )
    rule = {**_UNTIL_DEFAULTS, **until}
    if max_n is None:
        raise SweepConfigError(
            "until= needs max_n=, the most runs the sweep may grow to: a budget, so a half-width "
            "that is never reached cannot run forever; e.g. max_n=2000"
        )
    batch = n if batch is None else batch
    if not is_whole(batch) or batch < 1:
        raise SweepConfigError(f"batch={batch!r}: use a whole number of runs >= 1 per batch")
    if not is_whole(max_n) or max_n < n:
        raise SweepConfigError(
            f"max_n={max_n!r}: use a whole number of runs >= n={n}, the first batch (max_n is "
            "the most runs the sweep may grow to)"
        )
    return {"until": _checked_until(rule), "batch": int(batch), "max_n": int(max_n)}


def _checked_until(rule: dict[str, Any]) -> dict[str, Any]:
    column, half_width, name, reduce = (rule[k] for k in ("column", "half_width", "name", "reduce"))
    if not isinstance(column, str) or not column:
        raise SweepConfigError(
            f"until['column']={column!r}: use the name of a report column, e.g. 'Sat.Earth.SMA'"
        )
    if not is_real(half_width) or not (math.isfinite(half_width) and half_width > 0):
        raise SweepConfigError(
            f"until['half_width']={half_width!r}: use a positive, finite number in the "
            "column's unit (the widest acceptable half-width of the confidence interval)"
        )
    if not isinstance(rule["stat"], str):
        raise SweepConfigError(
            f"until['stat']={rule['stat']!r}: use 'mean', 'std' or a quantile such as 'q95'"
        )
    _quantile_level(rule["stat"])
    _check_probability("until['confidence']", rule["confidence"])
    if name is not None and not isinstance(name, str):
        raise SweepConfigError(
            f"until['name']={name!r}: use the ReportFile's name, or leave it out when the "
            "mission writes one report"
        )
    if reduce not in _REDUCERS:
        raise SweepConfigError(
            f"until['reduce']={reduce!r}: use one of {', '.join(_REDUCERS)}. The rule is "
            "recorded in the manifest so that resume continues it, and a function cannot be "
            "recorded; to watch a derived value, add it as a report column in the mission"
        )
    checked = {key: rule[key] for key in _UNTIL_KEYS}
    return checked | {"half_width": float(half_width), "confidence": float(rule["confidence"])}


def grow_until(sweep: Sweep, grow: Callable[[int], None]) -> Stopping:
    """Run an adaptive sweep's batches until its stop rule holds; say why it stopped.

    The rule is the one :func:`stop_rule` recorded in the sweep's
    ``parameter_spec``. After each batch the :func:`convergence` interval of
    the rule's statistic is checked; the loop stops once its half-width is
    below ``half_width``, or when the sweep has ``max_n`` runs (the last batch
    is cut to fit). Otherwise ``grow(k)`` adds and runs the next ``k`` runs
    (:meth:`~gmat_sweep.sweep.Sweep.extend`'s step). Each decision depends only
    on the values of the runs made so far, so a sweep killed mid-batch and
    resumed finishes that batch and then takes the same decisions as an
    uninterrupted one. Runs without a value do not count towards the interval.

    Raises
    ------
    SweepConfigError
        The recorded rule is malformed (the manifest was edited), or its
        column is not in the report.
    """
    spec = sweep.manifest.parameter_spec
    try:
        recorded = stop_rule(spec["until"], n=0, batch=spec["batch"], max_n=spec["max_n"])
    except KeyError as exc:
        raise SweepConfigError(
            f"the manifest's adaptive rule lacks {exc.args[0]!r}; the header was edited or "
            "damaged: restore it from a backup"
        ) from None
    rule, batch, max_n = recorded["until"], recorded["batch"], recorded["max_n"]
    while True:
        # The rule's stat, confidence, name and reduce are convergence()'s keywords.
        running = convergence(sweep, rule["column"], **{key: rule[key] for key in _UNTIL_DEFAULTS})
        last = running.iloc[-1] if len(running) else None
        width = math.nan if last is None else float(last["half_width"])
        estimate = math.nan if last is None else float(last["estimate"])
        count = len(sweep.runs)
        if width < rule["half_width"]:
            return Stopping("half_width", count, estimate, width)
        if count >= max_n:
            return Stopping("max_n", count, estimate, width)
        grow(min(batch, max_n - count))


def stopping_record(stopping: Stopping) -> dict[str, Any]:
    """``stopping`` as ``parameter_spec["stopped"]`` (JSON-plain: NaN becomes null)."""
    return {
        key: None if isinstance(value, float) and not math.isfinite(value) else value
        for key, value in asdict(stopping).items()
    }


def recorded_stopping(parameter_spec: Mapping[str, Any]) -> Stopping | None:
    """The :class:`Stopping` a ``parameter_spec`` records, or ``None``."""
    record = parameter_spec.get("stopped")
    if not isinstance(record, Mapping):
        return None
    estimate, half_width = (
        math.nan if value is None else float(value)
        for value in (record["estimate"], record["half_width"])
    )
    return Stopping(record["reason"], int(record["n"]), estimate, half_width)


def _quantile_level(stat: object) -> float:
    if stat in ("mean", "std"):
        return math.nan
    match = re.fullmatch(r"q(\d+(?:\.\d+)?)", stat) if isinstance(stat, str) else None
    level = float(match.group(1)) / 100 if match else math.nan
    if not 0 < level < 1:
        rule = "use mean, std or a quantile q<percent> with 0 < percent < 100"
        raise ArgumentError("stat", None, stat, rule, "q95")
    return level


def _running_quantile(
    data: np.ndarray, level: float, alpha: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Quantile of every prefix of ``data`` with its order-statistic confidence interval."""
    from scipy.stats import binom

    count = len(data)
    estimate = np.full(count, np.nan)
    lower = np.full(count, np.nan)
    upper = np.full(count, np.nan)
    ordered: list[float] = []
    for k, value in enumerate(data, start=1):
        bisect.insort(ordered, float(value))
        estimate[k - 1] = np.quantile(ordered, level)
        # Ranks l < u (1-based) with P(X_(l) <= q <= X_(u)) >= 1 - alpha.
        low_rank = int(binom.ppf(alpha / 2, k, level))
        high_rank = int(binom.ppf(1 - alpha / 2, k, level)) + 1
        if low_rank >= 1:
            lower[k - 1] = ordered[low_rank - 1]
        if high_rank <= k:
            upper[k - 1] = ordered[high_rank - 1]
    return estimate, lower, upper


# -- a common time grid ------------------------------------------------------------


def resample(
    sweep: Sweep,
    step: float | pd.Timedelta,
    *,
    name: str | None = None,
    start: float | pd.Timedelta | None = None,
    stop: float | pd.Timedelta | None = None,
    method: Literal["linear", "cubic"] = "linear",
) -> dd.DataFrame:
    """Interpolate every run's report onto one elapsed-time grid, lazily.

    GMAT's variable-step integrators write rows at times that differ from run
    to run; on a common grid, runs compare point by point (quantile bands,
    differences). Elapsed time is measured from each run's first report row.
    The grid is ``start, start + step, ...`` up to ``stop``; a run
    contributes the grid points inside its own time span (no extrapolation).
    Every numeric report column is interpolated (``"linear"``:
    :func:`numpy.interp`; ``"cubic"``: :class:`scipy.interpolate.CubicSpline`,
    not-a-knot); other report columns are dropped; parameter columns and
    ``__status`` are carried. Rows at the same time keep the last one (GMAT
    repeats an epoch around a maneuver or a stop).

    Failed-run policy: a failed or skipped run (or an ok run without this
    report) is one row with ``time`` missing (NaT), the report columns
    missing, its parameters and status, exactly as in
    :meth:`~gmat_sweep.sweep.Sweep.to_pandas`, so ``frame[frame.__status ==
    "ok"]`` selects the runs that did.

    Parameters
    ----------
    sweep:
        A finished sweep.
    step:
        Grid spacing, seconds or a :class:`pandas.Timedelta`, > 0.
    name:
        The ReportFile; ``None`` picks the only one.
    start, stop:
        Grid limits as elapsed times; default 0 and each run's end.
    method:
        ``"linear"`` or ``"cubic"``.

    Returns
    -------
    dask.dataframe.DataFrame
        Indexed by ``run_id`` (known divisions, as
        :meth:`~gmat_sweep.sweep.Sweep.to_dataframe`), first column ``time``
        (``timedelta64[ns]``, elapsed since the run's first row), so it is
        keyed ``(run_id, time)``; nothing is read until it is computed.

    Raises
    ------
    SweepConfigError
        A bad ``step``, ``start``, ``stop`` or ``method``, or a report without
        an epoch column (a summary report has no time to resample).
    """
    if method not in ("linear", "cubic"):
        raise SweepConfigError(f"method={method!r}: use 'linear' or 'cubic'")
    spacing = _seconds("step", step)
    if spacing is None or spacing <= 0:
        raise SweepConfigError(f"step={step!r}: use a positive number of seconds, e.g. 60")
    first = _seconds("start", start) or 0.0
    last = _seconds("stop", stop)
    if first < 0 or (last is not None and last < first):
        raise SweepConfigError(
            f"start={start!r}, stop={stop!r}: use 0 <= start <= stop (elapsed seconds)"
        )
    frame = sweep.to_dataframe(name)
    if "time" not in frame.columns:
        raise SweepConfigError(
            f"report {name or '(the only one)'!r} has no epoch column, so its rows have no "
            "time to resample (a summary report is keyed by row); pick a report with an "
            "epoch column such as Sat.UTCGregorian"
        )
    fields = {field for run in sweep.runs for field in run.overrides}
    parameters = [c for c in frame.columns if c.removesuffix(" [override]") in fields]
    options = (parameters, spacing, first, last, method)
    resampled: dd.DataFrame = frame.map_partitions(  # type: ignore[no-untyped-call]
        _resampled, *options, meta=_resampled(frame._meta, *options), align_dataframes=False
    )
    return resampled


def _seconds(label: str, value: float | pd.Timedelta | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, pd.Timedelta):
        return float(value.total_seconds())
    if not is_real(value) or not math.isfinite(value):
        raise SweepConfigError(
            f"{label}={value!r}: use a finite number of seconds or a pandas.Timedelta"
        )
    return float(value)


def _resampled(
    part: pd.DataFrame,
    parameters: list[str],
    step: float,
    start: float,
    stop: float | None,
    method: str,
) -> pd.DataFrame:
    """One partition (whole runs, index run_id) interpolated onto the grid."""
    numeric = [
        c
        for c in part.columns
        if c not in ("time", "__status", *parameters)
        and pd.api.types.is_numeric_dtype(part[c])
        and not pd.api.types.is_bool_dtype(part[c])
    ]
    carried = [*parameters, "__status"]
    pieces: list[pd.DataFrame] = []
    for run_id, rows in part.groupby(level=0, sort=True):
        times = rows["time"]
        if rows["__status"].iloc[0] != "ok" or times.isna().all():
            pieces.append(_no_time(rows.iloc[:1], numeric, carried))
            continue
        elapsed = (times - times.iloc[0]).dt.total_seconds().to_numpy()
        keep = np.append(elapsed[1:] != elapsed[:-1], True)
        elapsed = elapsed[keep]
        end = elapsed[-1] if stop is None else min(stop, elapsed[-1])
        grid = start + step * np.arange(int(np.floor((end - start) / step + 1e-9)) + 1)
        grid = grid[grid <= elapsed[-1]]
        data: dict[str, Any] = {"time": pd.to_timedelta(grid, unit="s").astype("timedelta64[ns]")}
        for c in numeric:
            known = rows[c].to_numpy(dtype=np.float64, na_value=np.nan)[keep]
            data[c] = _interpolate(elapsed, known, grid, method)
        for c in carried:
            data[c] = rows[c].iloc[0]
        pieces.append(pd.DataFrame(data, index=pd.Index([run_id] * len(grid), name="run_id")))
    columns = ["time", *numeric, *carried]
    result = pd.concat(pieces) if pieces else _no_time(part.iloc[:0], numeric, carried)
    result = result.reindex(columns=columns)
    for c in numeric:
        result[c] = result[c].astype(np.float64)
    for c in carried:  # a run's scalar would take pandas' default dtype, not the frame's
        result[c] = result[c].astype(part[c].dtype)
    return result


def _no_time(rows: pd.DataFrame, numeric: list[str], carried: list[str]) -> pd.DataFrame:
    """``rows`` with ``time`` as missing elapsed times: a failed run's row, or the empty meta."""
    frame = rows[[*numeric, *carried]].copy()
    frame.insert(0, "time", pd.Series(pd.NaT, index=frame.index, dtype="timedelta64[ns]"))
    return frame


def _interpolate(x: np.ndarray, y: np.ndarray, grid: np.ndarray, method: str) -> np.ndarray:
    if method == "linear" or len(x) < 4:
        return np.asarray(np.interp(grid, x, y), dtype=np.float64)
    from scipy.interpolate import CubicSpline

    return np.asarray(CubicSpline(x, y)(grid), dtype=np.float64)
