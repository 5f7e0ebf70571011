"""Monte Carlo and Latin-hypercube draws as explicit rows of field values.

Both samplers turn a ``perturb`` mapping (field path, or tuple of field
paths, to a :data:`~gmat_sweep.distributions.DistSpec`), a run count ``n``
and an integer seed into ``n`` dicts ``{field_path: float}``, one per run,
ready for :func:`gmat_sweep.grid.rows_to_run_specs`. The same arguments give
bit-identical rows on every machine with the same numpy and scipy. Everything
here is pure: no I/O, no GMAT.

Parameters are handled in the order of their canonical names (see
:func:`~gmat_sweep.distributions.canonical_name`), and every row lists its
fields sorted by field path; a tuple key contributes one field per name.
:func:`describe_perturb` and :func:`perturb_from_description` turn a
``perturb`` mapping into the JSON-plain form recorded in the manifest and
back, so a sweep can be rebuilt with identical rows.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy.stats import qmc

from gmat_sweep.distributions import (
    Distribution,
    DistSpec,
    FloatArray,
    ParamName,
    canonical_name,
    checked_integer,
    derive_param_seed,
    parse_dist,
)
from gmat_sweep.errors import ArgumentError, SweepConfigError
from gmat_sweep.plan import MAX_RUNS
from gmat_sweep.spec import is_whole

SAMPLERS = ("random", "sobol", "halton")
"""Point sets :func:`monte_carlo_rows` can draw from: pseudo-random streams, or a
scrambled Sobol' or Halton low-discrepancy (quasi-Monte Carlo) sequence."""


def monte_carlo_rows(
    perturb: Mapping[ParamName, DistSpec], n: int, seed: int, *, sampler: str = "random"
) -> list[dict[str, float]]:
    """Draw ``n`` Monte Carlo rows, pseudo-random or quasi-random.

    Each parameter (``perturb`` key) draws from its own stream,
    ``numpy.random.default_rng(derive_param_seed(seed, key))``, by
    inverse-transform sampling (:meth:`Distribution.sample
    <gmat_sweep.distributions.Distribution.sample>`). Hence:

    - adding or removing a parameter never changes another parameter's values
      at any run;
    - a sweep extends without changing its existing runs:
      ``monte_carlo_rows(p, n + m, s)[:n] == monte_carlo_rows(p, n, s)``.

    With ``sampler="sobol"`` or ``"halton"`` the rows are instead the first
    ``n`` points of one scrambled :class:`scipy.stats.qmc.Sobol` or
    :class:`scipy.stats.qmc.Halton` sequence of dimension ``D`` (the number of
    fields), seeded with ``numpy.random.default_rng(seed)`` and mapped
    through each parameter's inverse CDF as in :func:`latin_hypercube_rows`.
    The extension law above still holds, but adding a parameter changes every
    row. A Sobol' sequence keeps its balance properties only for ``n`` a power
    of two; :func:`gmat_sweep.monte_carlo` warns about other ``n``.

    Parameters
    ----------
    perturb:
        Mapping from field path (or tuple of field paths, for ``'mvnormal'``)
        to its distribution spec.
    n:
        Number of runs, at least 1.
    seed:
        The sweep's parent seed, a non-negative integer (see
        :func:`~gmat_sweep.distributions.new_parent_seed` when the user gave
        none).
    sampler:
        ``"random"`` (default), ``"sobol"`` or ``"halton"`` (see above).

    Returns
    -------
    list[dict[str, float]]
        ``n`` rows of Python floats, keys sorted by field path.

    Raises
    ------
    SweepConfigError
        If ``perturb`` is empty or malformed, ``n`` is not an integer >= 1,
        ``seed`` is not a non-negative integer, or ``sampler`` is unknown.
    """
    dists = _parse_perturb(perturb)
    count = _check_n(n)
    parent = _check_seed(seed)
    if sampler != "random":
        return _from_unit(dists, _quasi_random(sampler, dists, count, parent))
    columns: dict[str, FloatArray] = {}
    for dist in dists:
        rng = np.random.default_rng(derive_param_seed(parent, dist.names))
        _add_columns(columns, dist, dist.sample(rng, count))
    return _rows(columns)


def latin_hypercube_rows(
    perturb: Mapping[ParamName, DistSpec], n: int, seed: int
) -> list[dict[str, float]]:
    """Draw ``n`` Latin-hypercube rows.

    One :class:`scipy.stats.qmc.LatinHypercube` of dimension ``D`` (the total
    number of fields) draws ``n`` points of the unit cube, stratified so that
    each axis has exactly one point in each of its ``n`` equal-width bins.
    Axes are assigned to parameters in canonical-name order and each
    parameter maps its own axes through its
    :meth:`~gmat_sweep.distributions.Distribution.ppf`, so every one-field
    marginal is stratified in probability. For ``'mvnormal'`` the
    stratification holds on the independent normal scores, and the correlated
    fields are stratified only approximately.

    Unlike :func:`monte_carlo_rows`, all axes share one design: adding a
    parameter or changing ``n`` changes every row.

    Parameters
    ----------
    perturb, n:
        As for :func:`monte_carlo_rows`.
    seed:
        Non-negative integer seeding the design through
        ``numpy.random.default_rng(seed)``.

    Returns
    -------
    list[dict[str, float]]
        As for :func:`monte_carlo_rows`.

    Raises
    ------
    SweepConfigError
        For the same reasons as :func:`monte_carlo_rows`.
    """
    dists = _parse_perturb(perturb)
    count = _check_n(n)
    parent = _check_seed(seed)
    dimension = sum(dist.dim for dist in dists)
    sampler = qmc.LatinHypercube(d=dimension, rng=np.random.default_rng(parent))
    return _from_unit(dists, np.asarray(sampler.random(count), dtype=np.float64))


def _quasi_random(sampler: str, dists: list[Distribution], count: int, seed: int) -> FloatArray:
    """The first ``count`` points of a scrambled, seeded Sobol' or Halton sequence."""
    engines = {"sobol": qmc.Sobol, "halton": qmc.Halton}
    if sampler not in engines:
        raise SweepConfigError(
            f"sampler={sampler!r} is not a known sampler; use one of {', '.join(SAMPLERS)}"
        )
    dimension = sum(dist.dim for dist in dists)
    engine = engines[sampler](d=dimension, scramble=True, rng=np.random.default_rng(seed))
    with warnings.catch_warnings():
        # scipy warns on every Sobol' draw whose n is not a power of two; the entry
        # point warns once, when the sweep is created, not each time it is rebuilt.
        warnings.filterwarnings("ignore", message=".*balance properties", category=UserWarning)
        return np.asarray(engine.random(count), dtype=np.float64)


def _from_unit(dists: list[Distribution], unit: FloatArray) -> list[dict[str, float]]:
    """Map the columns of unit-cube points through each parameter's inverse CDF, in order."""
    columns: dict[str, FloatArray] = {}
    start = 0
    for dist in dists:
        _add_columns(columns, dist, dist.ppf(unit[:, start : start + dist.dim]))
        start += dist.dim
    return _rows(columns)


def describe_perturb(perturb: Mapping[ParamName, DistSpec]) -> dict[str, dict[str, Any]]:
    """The JSON-plain description of ``perturb`` for the manifest.

    ``{canonical_name(key): Distribution.describe()}`` in canonical-name
    order (a tuple key ``("A", "B")`` is written ``"A|B"``). Raises
    :class:`SweepConfigError` if ``perturb`` is empty or malformed.
    """
    return {canonical_name(dist.names): dist.describe() for dist in _parse_perturb(perturb)}


def perturb_from_description(
    description: Mapping[str, Mapping[str, Any]],
) -> dict[ParamName, DistSpec]:
    """Rebuild a ``perturb`` mapping from :func:`describe_perturb` output.

    Keys are field paths, or tuples of field paths for ``'mvnormal'`` entries
    (split on ``"|"``); values are the description dicts, which
    :func:`~gmat_sweep.distributions.parse_dist` accepts, so the samplers give
    the original rows. Raises :class:`SweepConfigError` if ``description`` is
    not a mapping of mappings.
    """
    if not isinstance(description, Mapping):
        raise SweepConfigError(
            f"perturb description must be a mapping, got {type(description).__name__}; "
            "pass the dict written by describe_perturb"
        )
    perturb: dict[ParamName, DistSpec] = {}
    for key, entry in description.items():
        if not isinstance(key, str) or not isinstance(entry, Mapping):
            raise SweepConfigError(
                f"perturb description entry {key!r}: {entry!r} is not a field path mapped to "
                "a description dict such as {'dist': 'normal', 'params': [7000.0, 5.0]}"
            )
        name: ParamName = tuple(key.split("|")) if entry.get("dist") == "mvnormal" else key
        perturb[name] = dict(entry)
    return perturb


def _parse_perturb(perturb: Mapping[ParamName, DistSpec]) -> list[Distribution]:
    if not isinstance(perturb, Mapping):
        raise SweepConfigError(
            f"perturb must be a mapping from field path to distribution, got "
            f"{type(perturb).__name__}; e.g. {{'Sat.SMA': ('normal', 7000.0, 5.0)}}"
        )
    if not perturb:
        raise SweepConfigError(
            "perturb is empty, so there is nothing to sample; give at least one field, "
            "e.g. {'Sat.SMA': ('normal', 7000.0, 5.0)}"
        )
    dists = sorted(
        (parse_dist(name, spec) for name, spec in perturb.items()),
        key=lambda dist: canonical_name(dist.names),
    )
    owner: dict[str, tuple[str, ...]] = {}
    for dist in dists:
        for field in dist.names:
            if field in owner:
                raise SweepConfigError(
                    f"perturb sets field {field!r} twice (in keys {canonical_name(owner[field])!r} "
                    f"and {canonical_name(dist.names)!r}); give each field one distribution"
                )
            owner[field] = dist.names
    return dists


def _check_n(n: object) -> int:
    count = checked_integer("n=", n, "give the number of runs, an integer >= 1")
    if count < 1:
        raise SweepConfigError(f"n={count} runs is too few; n must be an integer >= 1")
    if count > MAX_RUNS:  # checked before drawing: a manifest may describe no more
        raise SweepConfigError(
            f"n={count} runs is more than the {MAX_RUNS} one sweep may have; split the study "
            "into several sweeps"
        )
    return count


def _check_seed(seed: object) -> int:
    value = checked_integer("seed ", seed, "give a non-negative integer such as 42")
    if value < 0:
        raise SweepConfigError(f"seed {value} is negative; give a non-negative integer such as 42")
    return value


def _add_columns(columns: dict[str, FloatArray], dist: Distribution, values: FloatArray) -> None:
    for index, field in enumerate(dist.names):
        columns[field] = values[:, index]


def _rows(columns: Mapping[str, FloatArray]) -> list[dict[str, float]]:
    fields = sorted(columns)
    values = [columns[field].tolist() for field in fields]
    return [dict(zip(fields, row, strict=True)) for row in zip(*values, strict=True)]


def sobol_rows(
    bounds: Mapping[str, tuple[float, float]], n: int, seed: int, *, second_order: bool = False
) -> list[dict[str, float]]:
    """The Saltelli design for Sobol' indices, as rows of field values.

    SALib's :func:`SALib.sample.sobol.sample` builds it from a scrambled Sobol'
    sequence: ``n * (D + 2)`` rows for ``D`` fields, or ``n * (2 D + 2)`` with
    ``second_order``. Row order is SALib's, which
    :func:`SALib.analyze.sobol.analyze` expects; run ``i`` is row ``i``.

    Parameters
    ----------
    bounds:
        Mapping from field path to its ``(low, high)`` range; each field is
        uniform on its range. Fields are ordered by path.
    n:
        The base sample size ``N``, an integer >= 1 (a power of two keeps the
        Sobol' balance properties).
    seed:
        Non-negative integer seeding the scrambling.
    second_order:
        Also build the rows second-order indices need (``D >= 2``).

    Returns
    -------
    list[dict[str, float]]
        The rows, keys sorted by field path.

    Raises
    ------
    SweepConfigError
        ``bounds`` is malformed, ``n`` or ``seed`` invalid, or
        ``second_order`` asked for with one field.
    ImportError
        SALib is not installed (the message gives the install command).
    """
    problem = salib_problem(bounds)
    count = _check_n(n)
    parent = _check_seed(seed)
    if second_order and problem["num_vars"] < 2:
        raise ArgumentError(
            "second_order",
            None,
            True,
            f"second-order indices need at least two fields, and the ranges give one, "
            f"{problem['names'][0]}; add another field's range, or leave second-order indices out",
        )
    sample = salib_module("SALib.sample.sobol").sample
    with warnings.catch_warnings():
        # Warned once by the entry point, not each time the design is rebuilt.
        warnings.filterwarnings("ignore", message=".*balance properties", category=UserWarning)
        design = sample(problem, count, calc_second_order=second_order, seed=parent)
    return _design_rows(problem["names"], design)


def morris_rows(
    bounds: Mapping[str, tuple[float, float]], trajectories: int, levels: int, seed: int
) -> list[dict[str, float]]:
    """The Morris elementary-effects design, as rows of field values.

    SALib's :func:`SALib.sample.morris.sample` builds ``trajectories``
    one-at-a-time trajectories of ``D + 1`` points on a grid of ``levels``
    levels per field: ``trajectories * (D + 1)`` rows, run ``i`` is row ``i``.

    Parameters
    ----------
    bounds:
        Mapping from field path to its ``(low, high)`` range, as for
        :func:`sobol_rows`.
    trajectories:
        Number of trajectories, an integer >= 2 (the spread of the elementary
        effects needs two).
    levels:
        Grid levels per field, an even integer >= 2.
    seed:
        Non-negative integer seeding the trajectories.

    Returns
    -------
    list[dict[str, float]]
        As for :func:`sobol_rows`.

    Raises
    ------
    SweepConfigError
        ``bounds`` is malformed, ``trajectories`` < 2, ``levels`` not an even
        integer >= 2, or ``seed`` invalid.
    ImportError
        SALib is not installed (the message gives the install command).
    """
    problem = salib_problem(bounds)
    count = checked_integer(
        "trajectories=", trajectories, "give the number of trajectories, an integer >= 2"
    )
    if count < 2:
        raise ArgumentError(
            "trajectories",
            None,
            count,
            "too few: the spread (sigma) of the elementary effects needs at least 2 "
            "trajectories; 10 to 20 are usual",
            10,
        )
    if is_whole(levels):
        levels = int(levels)  # np.int64 from an array too
    if isinstance(levels, bool) or not isinstance(levels, int) or levels < 2 or levels % 2:
        raise ArgumentError(
            "levels",
            None,
            levels,
            "the Morris grid needs an even number of levels >= 2 (an odd number biases the "
            "elementary effects); 4 (default), 6 or 8 are usual",
            levels + 1 if isinstance(levels, int) and levels > 2 else 4,
        )
    sample = salib_module("SALib.sample.morris").sample
    design = sample(problem, count, num_levels=levels, seed=_check_seed(seed))
    return _design_rows(problem["names"], design)


def salib_problem(bounds: Mapping[str, tuple[float, float]]) -> dict[str, Any]:
    """SALib's ``problem`` dict for ``bounds``, fields in path order, each range checked.

    Raises
    ------
    SweepConfigError
        ``bounds`` is not a non-empty mapping from field path to ``(low,
        high)`` with finite ``low < high``.
    """
    if not isinstance(bounds, Mapping) or not bounds:
        raise SweepConfigError(
            f"bounds={bounds!r}: give a non-empty mapping from field path to its (low, high) "
            "range, e.g. {'X1.Value': (-3.14159, 3.14159)}"
        )
    names = sorted(bounds)
    ranges: list[list[float]] = []
    for name in names:
        pair = bounds[name]
        try:
            low, high = (float(value) for value in pair)
        except (TypeError, ValueError):
            raise SweepConfigError(
                f"bounds[{name!r}]={pair!r} is not a (low, high) pair of numbers; "
                "e.g. (-3.14159, 3.14159)"
            ) from None
        if not (np.isfinite(low) and np.isfinite(high) and low < high):
            swapped = np.isfinite(low) and np.isfinite(high) and low > high
            raise ArgumentError(
                "bounds",
                name,
                (low, high),
                "the range must be finite with low < high" + ("" if swapped else "; widen it"),
                (high, low) if swapped else None,
            )
        ranges.append([low, high])
    return {"num_vars": len(names), "names": names, "bounds": ranges}


def salib_module(module: str) -> Any:
    """Import a SALib module (e.g. ``"SALib.analyze.sobol"``), or say how to install it.

    Raises
    ------
    ImportError
        SALib is not installed; the message gives the install command.
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(
            "Sobol' and Morris designs and sensitivity analysis need SALib: "
            "pip install SALib (the 'analysis' extra)"
        ) from None


def _design_rows(names: list[str], design: Any) -> list[dict[str, float]]:
    values = np.asarray(design, dtype=np.float64)
    return _rows({name: values[:, index] for index, name in enumerate(names)})
