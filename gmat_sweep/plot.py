"""Figures of a sweep: trajectories, parameters against outcomes, distributions, failures.

Every function takes a :class:`~gmat_sweep.sweep.Sweep` (complete, partial or
rebuilt from its manifest) and returns a :class:`matplotlib.figure.Figure`
built without :mod:`matplotlib.pyplot`: no global figure registry, no GUI
backend, so the figures work under Agg and in threads, and are not shown
until the caller shows or saves them. Styles are fixed (colours, markers,
sizes) and nothing is random, so the same sweep draws the same figure.
Failed runs are always marked: drawn in red crosses where they have
parameters to place them, and counted in the title where they have no values.
A sweep whose every run failed draws them alone (no run wrote the report,
so its columns cannot be checked).

matplotlib is an optional dependency (the ``plot`` extra): ``pip install matplotlib``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from gmat_sweep.errors import SweepConfigError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from gmat_sweep.sweep import Sweep

HEXBIN_RUNS = 2000
"""Above this many ok runs, :func:`corner` bins its panels instead of scattering points."""

HIST_BINS = 30
"""Bins of :func:`hist`."""

GRID_POINTS = 200
"""Points of the common elapsed-time grid :func:`fan` computes its quantile band on."""

STATUS = "__status"
OK_COLOR = "#1f77b4"
BAND_COLOR = "#08306b"
FAILED_COLOR = "#d62728"
MISSING_COLOR = "#7f7f7f"
_SIGMA_COLORS = ("#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2")
_RC = {
    "font.size": 9.0,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "figure.dpi": 100.0,
    "savefig.dpi": 100.0,
    "svg.hashsalt": "gmat_sweep",
    "svg.fonttype": "path",
}
"""Settings every figure is drawn with, over matplotlib's defaults (not the caller's rcParams)."""


def fan(
    sweep: Sweep,
    column: str,
    *,
    name: str | None = None,
    quantiles: Sequence[float] = (0.05, 0.5, 0.95),
) -> Figure:
    """``column`` against elapsed time: every run thin, the quantile band bold.

    GMAT's adaptive integrators give every run its own row times, so the x
    axis is the time since each run's first row (seconds), and the quantiles
    are taken across runs after linear interpolation onto a common grid of
    :data:`GRID_POINTS` elapsed times (a run contributes where it has data).
    A report without an epoch column is drawn against its row number.

    Parameters
    ----------
    sweep:
        The sweep to draw.
    column:
        A column of the report.
    name:
        The ReportFile; ``None`` picks the only report the sweep produced.
    quantiles:
        Quantile levels in [0, 1] drawn bold; the band is filled between the
        lowest and the highest.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    SweepConfigError
        ``column`` is not in the report, or a quantile is outside [0, 1].
    """
    levels = sorted(float(q) for q in quantiles)
    if not levels or levels[0] < 0 or levels[-1] > 1:
        raise SweepConfigError(
            f"quantiles={tuple(quantiles)!r}: give one or more levels between 0 and 1, "
            "e.g. (0.05, 0.5, 0.95)"
        )
    frame = sweep.to_pandas(name, parameters=False)
    frame = _check_columns(frame, [column])
    key = frame.index.names[1]
    failed = _failed_ids(frame)
    ok = frame[frame[STATUS] == "ok"]
    runs = ok.index.get_level_values(0).to_numpy()
    keys = ok.index.get_level_values(1)
    if key == "time" and len(keys):
        x_all = (keys - keys[0]).total_seconds().to_numpy(dtype=np.float64)
    else:
        x_all = np.asarray(keys, dtype=np.float64)
    y_all = ok[column].to_numpy(dtype=np.float64, na_value=np.nan)
    starts = np.flatnonzero(np.r_[True, runs[1:] != runs[:-1]]) if len(runs) else runs
    curves = [
        (x - x[0], y)
        for x, y in zip(np.split(x_all, starts[1:]), np.split(y_all, starts[1:]), strict=True)
        if len(x)
    ]
    with _style():
        from matplotlib.collections import LineCollection

        figure, axes = _figure()
        # One artist for all runs: thousands of Line2D objects take minutes to draw.
        lines = LineCollection(
            [np.column_stack(curve) for curve in curves],
            colors=OK_COLOR,
            linewidths=0.5,
            alpha=0.35,
        )
        axes.add_collection(lines)
        if curves:
            grid = np.linspace(0.0, max(x[-1] for x, _ in curves), GRID_POINTS)
            stacked = np.vstack(
                [np.interp(grid, x, y, left=np.nan, right=np.nan) for x, y in curves]
            )
            counted = np.sum(~np.isnan(stacked), axis=0) > 0
            bands = np.full((len(levels), len(grid)), np.nan)
            bands[:, counted] = np.nanquantile(stacked[:, counted], levels, axis=0)
            axes.fill_between(grid, bands[0], bands[-1], color=BAND_COLOR, alpha=0.2, lw=0)
            for level, band in zip(levels, bands, strict=True):
                axes.plot(grid, band, color=BAND_COLOR, linewidth=2.0, label=f"q{level:g}")
            axes.legend(loc="upper right")
        axes.autoscale_view()
        axes.set_xlabel("elapsed time [s]" if key == "time" else "row")
        axes.set_ylabel(column)
        axes.set_title(_title(f"{column}: {len(curves)} runs", failed))
    return figure


def corner(sweep: Sweep, columns: Sequence[str], *, name: str | None = None) -> Figure:
    """Parameters against final outcomes: a scatter matrix over the runs.

    The variables are the sweep's parameters followed by ``columns`` (final
    values, the report's last row in each run). The diagonal shows each
    variable's histogram over ok runs, the lower triangle one panel per pair:
    points, or hexagonal bins above :data:`HEXBIN_RUNS` ok runs. Failed runs
    appear as red crosses in the parameter-against-parameter panels, the only
    ones where they have values.

    Parameters
    ----------
    sweep, name:
        As for :func:`fan`.
    columns:
        Columns of the report whose final values are the outcomes.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    SweepConfigError
        A column is not in the report.
    """
    final = sweep.final(name)
    final = _check_columns(final, columns)
    fields = sorted({field for spec in sweep.runs for field in spec.overrides})
    numeric = pd.api.types.is_numeric_dtype
    parameters = [f for f in fields if f in final.columns and numeric(final[f])]
    variables = [*parameters, *(c for c in columns if c not in parameters)]
    ok = final[final[STATUS] == "ok"]
    failed = final[final[STATUS] == "failed"]
    size = len(variables)
    with _style():
        figure, grid = _figure(size, size, width=2.2 * size + 1, height=2.2 * size + 1)
        for row, y_name in enumerate(variables):
            for col, x_name in enumerate(variables):
                axes = grid[row][col]
                if col > row:
                    axes.set_visible(False)
                    continue
                if row == col:
                    values = _numeric(ok[x_name])
                    axes.hist(values[np.isfinite(values)], bins=20, color=OK_COLOR)
                elif len(ok) > HEXBIN_RUNS:
                    axes.hexbin(_numeric(ok[x_name]), _numeric(ok[y_name]), gridsize=30, mincnt=1)
                else:
                    axes.scatter(_numeric(ok[x_name]), _numeric(ok[y_name]), s=6, c=OK_COLOR)
                if row != col and x_name in parameters and y_name in parameters and len(failed):
                    axes.scatter(
                        _numeric(failed[x_name]),
                        _numeric(failed[y_name]),
                        s=18,
                        c=FAILED_COLOR,
                        marker="x",
                    )
                if row == size - 1:
                    axes.set_xlabel(x_name)
                if col == 0 and row > 0:
                    axes.set_ylabel(y_name)
        figure.suptitle(_title(f"{len(ok)} ok runs", failed.index.tolist()))
    return figure


def hist(
    sweep: Sweep,
    column: str,
    *,
    name: str | None = None,
    bound: tuple[float, float] | None = None,
) -> Figure:
    """Histogram of ``column``'s final value over the ok runs, with a Wilks bound if asked.

    Parameters
    ----------
    sweep, name:
        As for :func:`fan`.
    column:
        A column of the report; each run contributes its last row's value.
    bound:
        ``(coverage, confidence)``, e.g. ``(0.95, 0.95)``: draw the one-sided
        upper tolerance bound of :func:`wilks_upper_index` (the smallest order
        statistic that exceeds the ``coverage`` quantile with probability
        ``confidence``). With too few runs for one, the legend says how many
        are needed.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    SweepConfigError
        ``column`` is not in the report, or ``bound`` is not two levels in (0, 1).
    """
    return _hist(sweep.final(name), column, bound=bound)


def _hist(final: pd.DataFrame, column: str, *, bound: tuple[float, float] | None) -> Figure:
    final = _check_columns(final, [column])
    ok = final[final[STATUS] == "ok"]
    values = _numeric(ok[column])
    values = np.sort(values[np.isfinite(values)])
    with _style():
        figure, axes = _figure()
        axes.hist(values, bins=HIST_BINS, color=OK_COLOR)
        if bound is not None:
            coverage, confidence = _levels(bound)
            index = wilks_upper_index(len(values), coverage, confidence)
            label = f"{coverage:g}/{confidence:g} upper bound"
            if index is None:
                needed = wilks_runs(coverage, confidence)
                axes.plot([], [], " ", label=f"{label}: needs >= {needed} runs")
            else:
                value = values[index - 1]
                axes.axvline(
                    value, color=FAILED_COLOR, linewidth=2.0, label=f"{label}: {value:.6g}"
                )
            axes.legend(loc="best")
        axes.set_xlabel(f"final {column}")
        axes.set_ylabel("runs")
        axes.set_title(_title(f"{column}: {len(values)} runs", _failed_ids(final)))
    return figure


def ellipse(
    sweep: Sweep,
    x: str,
    y: str,
    *,
    name: str | None = None,
    sigmas: Sequence[float] = (1, 2, 3),
) -> Figure:
    """Final values of ``x`` against ``y`` with their covariance ellipses.

    The ellipse of ``k`` sigmas is ``(v - mean)' C^-1 (v - mean) = k^2`` over
    the ok runs' final values (sample mean and covariance); the legend gives
    the fraction of runs inside each.

    Parameters
    ----------
    sweep, name:
        As for :func:`fan`.
    x, y:
        Columns of the report (e.g. B-plane components, latitude and
        longitude).
    sigmas:
        The ellipses to draw, in standard deviations.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    SweepConfigError
        A column is not in the report, or a sigma is not positive.
    """
    from matplotlib.patches import Ellipse

    if not sigmas or any(float(s) <= 0 for s in sigmas):
        raise SweepConfigError(f"sigmas={tuple(sigmas)!r}: give positive numbers, e.g. (1, 2, 3)")
    final = sweep.final(name)
    final = _check_columns(final, [x, y])
    ok = final[final[STATUS] == "ok"]
    points = np.column_stack([_numeric(ok[x]), _numeric(ok[y])])
    points = points[np.all(np.isfinite(points), axis=1)]
    with _style():
        figure, axes = _figure()
        axes.scatter(points[:, 0], points[:, 1], s=8, c=OK_COLOR, label=f"{len(points)} runs")
        if len(points) >= 3:
            mean = points.mean(axis=0)
            covariance = np.cov(points, rowvar=False)
            eigenvalues, eigenvectors = np.linalg.eigh(covariance)
            angle = float(np.degrees(np.arctan2(eigenvectors[1, 1], eigenvectors[0, 1])))
            offsets = points - mean
            distance = np.einsum("ij,jk,ik->i", offsets, np.linalg.pinv(covariance), offsets)
            for index, sigma in enumerate(float(s) for s in sigmas):
                inside = float(np.mean(distance <= sigma**2))
                axes.add_patch(
                    Ellipse(
                        (float(mean[0]), float(mean[1])),
                        width=2 * sigma * float(np.sqrt(max(eigenvalues[1], 0.0))),
                        height=2 * sigma * float(np.sqrt(max(eigenvalues[0], 0.0))),
                        angle=angle,
                        fill=False,
                        linewidth=1.5,
                        edgecolor=_SIGMA_COLORS[index % len(_SIGMA_COLORS)],
                        label=f"{sigma:g} sigma: {inside:.1%} inside",
                    )
                )
        axes.legend(loc="best")
        axes.set_xlabel(f"final {x}")
        axes.set_ylabel(f"final {y}")
        axes.set_title(_title(f"{y} against {x}", _failed_ids(final)))
    return figure


def status(sweep: Sweep) -> Figure:
    """Where runs failed: the first two parameters, ok runs as dots, failed as red crosses.

    A sweep of one parameter is drawn against ``run_id``; runs the manifest
    does not list yet (a partial sweep) are grey circles.

    Parameters
    ----------
    sweep:
        The sweep to draw.

    Returns
    -------
    matplotlib.figure.Figure
    """
    recorded = {entry.run_id: entry.status.value for entry in sweep.manifest.entries}
    rows = [{"run_id": spec.run_id, **spec.overrides} for spec in sweep.runs]
    frame = pd.DataFrame(rows).set_index("run_id").sort_index()
    frame[STATUS] = [recorded.get(run_id, "missing") for run_id in frame.index]
    parameters = sorted(c for c in frame.columns if c != STATUS)[:2]
    with _style():
        figure, axes = _figure()
        for state, color, marker in (
            ("ok", OK_COLOR, "o"),
            ("failed", FAILED_COLOR, "x"),
            ("missing", MISSING_COLOR, "o"),
        ):
            part = frame[frame[STATUS] == state]
            if part.empty:
                continue
            xs = _numeric(part[parameters[0]]) if parameters else part.index.to_numpy()
            ys = _numeric(part[parameters[1]]) if len(parameters) > 1 else part.index.to_numpy()
            axes.scatter(
                xs,
                ys,
                s=24,
                marker=marker,
                c=color if state != "missing" else "none",
                edgecolors=color if state == "missing" else None,
                label=f"{state}: {len(part)}",
            )
        axes.legend(loc="best")
        axes.set_xlabel(parameters[0] if parameters else "run_id")
        axes.set_ylabel(parameters[1] if len(parameters) > 1 else "run_id")
        axes.set_title(f"run status over {len(frame)} runs")
    return figure


def wilks_upper_index(n: int, coverage: float, confidence: float) -> int | None:
    """The 1-based order statistic that is a one-sided upper tolerance bound, or ``None``.

    The ``k``-th smallest of ``n`` independent draws exceeds the ``coverage``
    quantile unless at least ``k`` draws fall below it, so it bounds that
    quantile with probability ``P(Binomial(n, coverage) <= k - 1)``. This is
    the smallest ``k`` whose probability reaches ``confidence``; ``None`` when
    even the maximum (``k = n``) does not.

    Parameters
    ----------
    n:
        Number of draws (ok runs).
    coverage, confidence:
        Levels in (0, 1).

    Returns
    -------
    int or None
    """
    from scipy.stats import binom

    if n < 1:
        return None
    probability = binom.cdf(np.arange(n), n, coverage)
    reached = np.flatnonzero(probability >= confidence)
    return int(reached[0]) + 1 if len(reached) else None


def wilks_runs(coverage: float, confidence: float) -> int:
    """The fewest runs whose maximum is a ``coverage``/``confidence`` upper bound.

    :func:`gmat_sweep.analysis.wilks_n` of a one-sided bound at order 1: 59 for 0.95/0.95.
    """
    from gmat_sweep.analysis import wilks_n

    return wilks_n(coverage, confidence)


def _levels(bound: tuple[float, float]) -> tuple[float, float]:
    try:
        coverage, confidence = (float(v) for v in bound)
    except (TypeError, ValueError):
        coverage = confidence = float("nan")
    if not (0 < coverage < 1 and 0 < confidence < 1):
        raise SweepConfigError(
            f"bound={bound!r}: give (coverage, confidence), both between 0 and 1 exclusive, "
            "e.g. (0.95, 0.95)"
        )
    return coverage, confidence


def _failed_ids(frame: pd.DataFrame) -> list[int]:
    failed = frame[frame[STATUS] == "failed"]
    return sorted({int(run_id) for run_id in failed.index.get_level_values(0)})


def _title(text: str, failed: Sequence[int]) -> str:
    if not failed:
        return text
    shown = ", ".join(map(str, failed[:8])) + (" ..." if len(failed) > 8 else "")
    return f"{text}; {len(failed)} failed (run_id {shown})"


def _check_columns(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """``frame`` with ``columns``, refusing a column the report does not have.

    When no run is ok, no run wrote the report, so its columns are unknown:
    they are added empty and the figure shows the failed runs alone.
    """
    missing = [c for c in columns if c not in frame.columns]
    if not missing:
        return frame
    if not (frame[STATUS] == "ok").any():
        return frame.assign(**dict.fromkeys(missing, np.nan))
    known = [c for c in frame.columns if c != STATUS]
    raise SweepConfigError(f"columns {missing} are not in the report; its columns are {known}")


def _numeric(values: pd.Series[Any]) -> np.ndarray[Any, np.dtype[np.float64]]:
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


@contextmanager
def _style() -> Iterator[None]:
    try:
        import matplotlib.style
    except ImportError:
        raise ImportError(
            "gmat_sweep.plot draws with matplotlib, which is not installed; "
            "pip install matplotlib (the 'plot' extra)"
        ) from None
    # matplotlib's defaults, not the caller's rcParams: the same sweep draws the same figure
    # on every machine.
    with matplotlib.style.context(["default", _RC]):
        yield


def _figure(
    rows: int = 1, cols: int = 1, *, width: float = 7.0, height: float = 4.5
) -> tuple[Figure, Any]:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    axes = figure.subplots(rows, cols, squeeze=False)
    return figure, axes if (rows, cols) != (1, 1) else axes[0][0]
