"""Entry points: :func:`sweep`, :func:`monte_carlo`, :func:`latin_hypercube`, :func:`sobol`
and :func:`morris`.

Each validates everything it can before the first run is dispatched — the
mission exists and parses, every overridden field path exists in it, the
grid / samples / distributions are well formed, ``out`` does not already hold
another sweep — so a mistake costs a second, not a cluster allocation.
Nothing is written under ``out`` when validation fails.

Each returns the completed :class:`~gmat_sweep.sweep.Sweep` (or, with
``compute=False``, the sweep not yet run): ``.to_dataframe()`` gives the lazy
Dask frame, ``.to_pandas()`` a pandas frame with a ``(run_id, time)``
MultiIndex, ``.final()`` one row per run. :func:`open_sweep` reopens a sweep
from its directory.
"""

from __future__ import annotations

import json
import re
import secrets
import shlex
import shutil
import sys
import warnings
from collections.abc import Iterable, Mapping
from datetime import datetime
from functools import partial
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any, cast

from gmat_sweep import plan, storage
from gmat_sweep.backends import check_backend, make_backend
from gmat_sweep.backends.base import Pool
from gmat_sweep.errors import ArgumentWarning, RunFailed, SweepConfigError
from gmat_sweep.grid import materialise_grid, samples_to_rows
from gmat_sweep.manifest import ENTRIES_DIR
from gmat_sweep.metrics import Postprocess, describe, resolve
from gmat_sweep.mission import checked_script
from gmat_sweep.script import (
    file_outputs,
    output_settings,
    readable_ephemeris_formats,
    reports_into_subscribers,
    resources,
)
from gmat_sweep.spec import PathLike, RunOptions, as_location, is_url, local_path
from gmat_sweep.sweep import (
    DEFAULT_RETRIES,
    MANIFEST_NAME,
    Sweep,
    check_overrides,
    refuse_a_file,
)

if TYPE_CHECKING:
    import pandas as pd

    from gmat_sweep.distributions import DistSpec, ParamName


def sweep(
    mission: str | Path,
    grid: Mapping[str, Iterable[Any]] | None = None,
    *,
    samples: pd.DataFrame | Iterable[Mapping[str, Any]] | None = None,
    backend: Pool | str | None = None,
    out: PathLike | None = None,
    storage_options: Mapping[str, Any] | None = None,
    run_options: Mapping[str, Any] | None = None,
    progress: bool = True,
    retries: int = DEFAULT_RETRIES,
    overwrite: bool = False,
    raise_on_failure: bool = False,
    compute: bool = True,
    postprocess: Postprocess | None = None,
) -> Sweep:
    """Run a full-factorial grid (or explicit sample rows) over a GMAT mission.

    Parameters
    ----------
    mission:
        Path to the GMAT ``.script`` file every run loads.
    grid:
        Mapping from dotted field path to the values it takes, e.g.
        ``{"Sat.SMA": [7000, 7100], "Sat.INC": [28.5, 51.6]}``. Runs are the
        cartesian product (see :func:`gmat_sweep.grid.full_factorial`).
    samples:
        Instead of ``grid``: explicit rows, a :class:`pandas.DataFrame` with
        one column per field path or a list of dicts; row ``i`` is run ``i``.
    backend:
        A constructed :class:`~gmat_sweep.backends.base.Pool` (the caller owns
        it), or a backend name: ``"local"``, ``"dask"``, ``"joblib"``,
        ``"ray"`` or a Dask scheduler address such as ``"tcp://host:8786"``
        (see :data:`gmat_sweep.backends.KNOWN_BACKENDS`), whose pool this call
        starts and closes. ``None`` (default) is ``"local"``: a
        :class:`~gmat_sweep.backends.local.LocalPool` on every core.
    out:
        Sweep directory: a local path or any fsspec URL. ``None`` creates a new,
        uniquely named directory under the current directory and prints its
        name when the runs start.
    storage_options:
        fsspec options for an ``out`` URL (endpoint, credentials). Never
        written to the manifest.
    run_options:
        Per-run options for every run, e.g. ``{"timeout_s": 120}``.
    progress:
        Whether to draw the :mod:`tqdm` progress bar.
    retries:
        Automatic re-runs of a run whose worker died or that timed out.
    overwrite:
        Replace a sweep already in ``out`` instead of refusing.
    raise_on_failure:
        Raise :class:`~gmat_sweep.errors.RunFailed` for the first failed run
        after the sweep finishes (all outputs are still written).
    compute:
        ``False`` returns the sweep without running it (everything is still
        validated, nothing is written): run it with ``.compute()``, or
        together with other sweeps with ``dask.compute(a, b)``.
    postprocess:
        Per-run metrics: ``f(outputs, overrides) -> {name: scalar}``, where
        ``outputs`` maps each report / ephemeris name to the run's pandas
        frame; or an importable ``"module:function"``. It runs after each run
        on the worker that ran it; results come back with
        :meth:`~gmat_sweep.sweep.Sweep.metrics` (see :mod:`gmat_sweep.metrics`).

    Returns
    -------
    Sweep
        The completed sweep (not yet run with ``compute=False``). A grid of
        no fields (``grid={}``) makes exactly one run: the mission as written.

    Raises
    ------
    SweepConfigError
        Any invalid input, found before any run starts and before anything is
        written: both or neither of ``grid`` and ``samples``, an empty list
        of values, a mission that is missing or that GMAT cannot parse, an
        unknown field path (the message suggests close names), a value the
        field cannot take, an output-file field, unknown ``run_options``, a
        negative ``retries``, an ``out`` that is a file or already holds a
        sweep (without ``overwrite``), a ``memory://`` ``out``, or an object
        store that cannot be written.
    BackendError
        ``backend`` names an unknown backend or one whose package is not
        installed, or its GMAT processes cannot start.
    EngineError
        No GMAT engine can be set up (``GMAT_ROOT`` or the embedded wheel).
    SweepLockedError
        Another driver holds the sweep in ``out`` (see :func:`gmat_sweep.lock.hold`).
    RunFailed
        With ``raise_on_failure=True``: a run failed (raised once every run
        has finished and been recorded).
    OSError
        The sweep directory cannot be written.

    Warns
    -----
    UserWarning
        The mission has no ReportFile, EphemerisFile or ContactLocator, so
        its runs write no files to read (GUI subscribers write none).

    See Also
    --------
    monte_carlo, latin_hypercube : random and stratified dispersions.
    sobol, morris : sensitivity designs.
    open_sweep : reopen a finished sweep from its directory.
    gmat_sweep.fields : the field paths a mission offers, with nominal values.
    Sweep : what comes back: ``final()``, ``to_pandas()``, ``resume()`` ...

    Examples
    --------
    A 2 x 2 grid over a bundled mission, then one row per run (the last row
    of its report; ``Sat.SMA`` is the input, ``Sat.Earth.SMA`` GMAT's output):

    >>> from gmat_sweep import examples, sweep
    >>> mission = examples.path("leo_basic")
    >>> study = sweep(mission, {"Sat.SMA": [6778.137, 6878.137], "Sat.INC": [28.5, 51.6]},
    ...               out="leo-study")  # doctest: +SKIP
    >>> study.final()[["Sat.SMA", "Sat.INC", "Sat.Earth.SMA"]]  # doctest: +SKIP

    The nominal run, and explicit rows checked but not run yet:

    >>> nominal = sweep(mission, {}, out="nominal")  # doctest: +SKIP
    >>> planned = sweep(mission, samples=[{"Sat.Cd": 2.0}, {"Sat.Cd": 2.4}],
    ...                 out="rows", compute=False)  # doctest: +SKIP
    >>> planned.compute().to_pandas()  # doctest: +SKIP
    """
    if (grid is None) == (samples is None):
        raise SweepConfigError(
            "pass exactly one of grid= (a full-factorial grid) or samples= (explicit rows); "
            f"got {'both' if grid is not None else 'neither'}"
        )
    if grid is not None:
        parameter_spec = plan.grid_spec(materialise_grid(grid))
    else:
        assert samples is not None
        parameter_spec = plan.samples_spec(samples_to_rows(samples))
    return _launch(
        mission,
        parameter_spec,
        seed=None,
        backend=backend,
        out=out,
        storage_options=storage_options,
        run_options=run_options,
        progress=progress,
        retries=retries,
        overwrite=overwrite,
        raise_on_failure=raise_on_failure,
        compute=compute,
        postprocess=postprocess,
    )


def monte_carlo(
    mission: str | Path,
    *,
    n: int,
    perturb: Mapping[ParamName, DistSpec],
    seed: int | None = None,
    backend: Pool | str | None = None,
    out: PathLike | None = None,
    progress: bool = True,
    storage_options: Mapping[str, Any] | None = None,
    run_options: Mapping[str, Any] | None = None,
    retries: int = DEFAULT_RETRIES,
    overwrite: bool = False,
    compute: bool = True,
    postprocess: Postprocess | None = None,
    sampler: str = "random",
    until: Mapping[str, Any] | None = None,
    batch: int | None = None,
    max_n: int | None = None,
) -> Sweep:
    """Run a Monte Carlo dispersion sweep over a GMAT mission.

    Draws ``n`` runs, each parameter of ``perturb`` independently from its own
    distribution. Each draw is **the value the field is set to**, in the
    field's GMAT units, not an offset from the mission's nominal value:
    centre a distribution on the nominal (read it with
    :func:`gmat_sweep.fields`) to disperse around it. Each parameter draws
    from its own stream (:func:`~gmat_sweep.distributions.derive_param_seed`),
    so adding a parameter changes no other parameter's draws.

    Parameters
    ----------
    mission:
        Path to the GMAT ``.script`` file every run loads.
    n:
        Number of stochastic runs. Must be >= 1. With ``until``: the first
        batch, the runs made before the stop rule is first checked.
    perturb:
        Mapping from field path (or, for correlated ``"mvnormal"`` draws, a
        tuple of field paths) to a :data:`~gmat_sweep.distributions.DistSpec`.
    seed:
        Optional integer parent seed. ``None`` draws one from OS entropy and
        records it in the manifest (``Sweep.seed``), so the sweep can still
        be reproduced. Two calls at the same ``(mission, n, perturb, seed)``
        produce bit-equal frames.
    backend, out, progress, storage_options, run_options, retries, overwrite, compute, postprocess:
        Same semantics as :func:`sweep`.
    sampler:
        ``"random"`` (default): independent pseudo-random draws as above.
        ``"sobol"`` or ``"halton"``: quasi-Monte Carlo, scrambled and seeded
        (see :func:`gmat_sweep.sampling.monte_carlo_rows`); means and
        quantiles converge faster than with random draws.
    until:
        Adaptive stopping: run batches until the confidence interval of a
        statistic of one report column is narrow enough, e.g.
        ``{"column": "Sat.Earth.SMA", "half_width": 0.5}`` (the target
        half-width, in the column's unit); the optional keys ``stat``,
        ``confidence``, ``name`` and ``reduce`` are those of
        :func:`gmat_sweep.analysis.convergence` (see
        :func:`gmat_sweep.analysis.stop_rule`). The interval is checked after
        the first ``n`` runs and after every further ``batch``; the sweep
        stops once it is narrow enough or at ``max_n`` runs
        (:attr:`Sweep.stopping <gmat_sweep.sweep.Sweep.stopping>` says
        which). Runs ``0 .. n-1`` are those of a fixed-``n`` sweep, and a
        resumed sweep goes on with the same decisions. With
        ``compute=False`` the batches run in the sweep's own ``compute()``
        (``dask.compute`` runs the first batch only).
    batch:
        With ``until``: runs added per step after the first ``n`` (default:
        ``n``).
    max_n:
        With ``until`` (required there): the most runs the sweep may grow to,
        at least ``n``.

    Returns
    -------
    Sweep
        The completed sweep; ``.to_pandas()`` is the ``(run_id, time)``
        frame of its ``n`` runs (with ``until``: of every batch run). A
        failed run is one NaN row with ``__status="failed"``.

    Raises
    ------
    SweepConfigError
        If ``perturb`` is empty, ``n < 1``, any parameter spec is
        ill-formed (see :func:`gmat_sweep.distributions.parse_dist`), the
        seed is not an integer, ``sampler`` is unknown, ``until``, ``batch``
        or ``max_n`` is malformed (or ``batch``/``max_n`` is given without
        ``until``), or for any reason :func:`sweep` gives; before any run
        starts.
    BackendError, EngineError, SweepLockedError, OSError
        As for :func:`sweep`.

    Warns
    -----
    UserWarning
        ``sampler="sobol"`` with an ``n`` that is not a power of two, or a
        mission without file outputs (as for :func:`sweep`).

    See Also
    --------
    latin_hypercube : stratified draws, for small ``n``.
    gmat_sweep.distributions.DistSpec : every accepted distribution spec.
    gmat_sweep.fields : a mission's nominal values, to centre the draws on.
    Sweep.extend : add runs to a finished Monte Carlo sweep.
    gmat_sweep.analysis.tolerance_bound : a distribution-free bound on an outcome.

    Examples
    --------
    >>> import math
    >>> import scipy.stats
    >>> from gmat_sweep import examples, fields, monte_carlo
    >>> mission = examples.path("leo_basic")
    >>> fields(mission).loc["Sat.SMA", "value"]  # the nominal, in km  # doctest: +SKIP
    6778.137000000002
    >>> study = monte_carlo(mission, n=200, seed=42, out="dispersion", perturb={
    ...     "Sat.SMA": ("normal", 6778.137, 0.5),  # the value itself: nominal +- 0.5 km
    ...     "Sat.Cd": ("uniform", 2.0, 2.4),
    ...     "Sat.DryMass": ("lognormal", math.log(500), math.log(1.05)),  # median 500 kg
    ...     "Sat.Cr": scipy.stats.truncnorm(-2, 2, loc=1.8, scale=0.05),  # 1.7 .. 1.9
    ... })  # doctest: +SKIP
    >>> study.final()["Sat.Earth.SMA"].describe()  # doctest: +SKIP
    """
    # scipy is imported here, not at module level: GMAT worker processes import
    # this package too and never draw samples.
    from gmat_sweep.distributions import new_parent_seed
    from gmat_sweep.sampling import monte_carlo_rows

    if sampler == "sobol":
        _warn_sobol_n(n)
    parent = new_parent_seed() if seed is None else seed
    monte_carlo_rows(perturb, n, parent, sampler=sampler)  # validates every input
    parameter_spec = plan.stochastic_spec("monte_carlo", perturb, n, parent, sampler=sampler)
    parameter_spec.update(_adaptive(mission, until, n=n, batch=batch, max_n=max_n))
    return _launch(
        mission,
        parameter_spec,
        seed=parent,
        backend=backend,
        out=out,
        storage_options=storage_options,
        run_options=run_options,
        progress=progress,
        retries=retries,
        overwrite=overwrite,
        compute=compute,
        postprocess=postprocess,
    )


def latin_hypercube(
    mission: str | Path,
    *,
    n: int,
    perturb: Mapping[ParamName, DistSpec],
    seed: int | None = None,
    backend: Pool | str | None = None,
    out: PathLike | None = None,
    progress: bool = True,
    storage_options: Mapping[str, Any] | None = None,
    run_options: Mapping[str, Any] | None = None,
    retries: int = DEFAULT_RETRIES,
    overwrite: bool = False,
    compute: bool = True,
    postprocess: Postprocess | None = None,
) -> Sweep:
    """Run a Latin hypercube sweep over a GMAT mission.

    ``n`` points stratified along every axis, mapped through each
    distribution's ``ppf`` (:func:`gmat_sweep.sampling.latin_hypercube_rows`);
    for small ``n``, every axis is still covered.

    Parameters
    ----------
    mission:
        Path to the GMAT ``.script`` file every run loads.
    n:
        Number of Latin hypercube points. Must be >= 1.
    perturb, seed:
        As for :func:`monte_carlo`.
    backend, out, progress, storage_options, run_options, retries, overwrite, compute, postprocess:
        Same semantics as :func:`sweep`.

    Returns
    -------
    Sweep
        The completed sweep of ``n`` runs.

    Raises
    ------
    SweepConfigError, BackendError, EngineError, SweepLockedError, OSError
        As for :func:`monte_carlo` (without ``sampler`` and ``until``).

    Warns
    -----
    UserWarning
        The mission has no file outputs (as for :func:`sweep`).

    See Also
    --------
    monte_carlo : independent draws, and the meaning of each distribution.
    sobol, morris : designs for sensitivity indices.

    Examples
    --------
    >>> from gmat_sweep import examples, latin_hypercube
    >>> study = latin_hypercube(examples.path("leo_basic"), n=20, seed=7, out="lhs",
    ...                         perturb={"Sat.Cd": ("uniform", 2.0, 2.4),
    ...                                  "Sat.INC": ("uniform", 28.5, 51.6)})  # doctest: +SKIP
    >>> study.final()[["Sat.Cd", "Sat.INC", "Sat.Earth.SMA"]]  # doctest: +SKIP
    """
    from gmat_sweep.distributions import new_parent_seed
    from gmat_sweep.sampling import latin_hypercube_rows

    parent = new_parent_seed() if seed is None else seed
    latin_hypercube_rows(perturb, n, parent)  # validates every input
    return _launch(
        mission,
        plan.stochastic_spec("latin_hypercube", perturb, n, parent),
        seed=parent,
        backend=backend,
        out=out,
        storage_options=storage_options,
        run_options=run_options,
        progress=progress,
        retries=retries,
        overwrite=overwrite,
        compute=compute,
        postprocess=postprocess,
    )


def _adaptive(
    mission: str | Path,
    until: Mapping[str, Any] | None,
    *,
    n: int,
    batch: int | None,
    max_n: int | None,
) -> dict[str, Any]:
    """``monte_carlo``'s stop rule as ``parameter_spec`` keys; none for a fixed ``n``."""
    if until is not None:
        from gmat_sweep.analysis import stop_rule

        rule = stop_rule(until, n=n, batch=batch, max_n=max_n)
        _check_until_report(checked_script(mission), rule["until"])
        return rule
    if batch is not None or max_n is not None:
        given = " and ".join(
            f"{key}={value!r}" for key, value in (("batch", batch), ("max_n", max_n))
            if value is not None
        )  # fmt: skip
        raise SweepConfigError(
            f"{given}: batch and max_n belong to adaptive stopping; pass until={{'column': ..., "
            "'half_width': ...} too, or leave them out for a fixed n"
        )
    return {}


def _check_until_report(script: Path, until: Mapping[str, Any]) -> None:
    """Refuse, before any run, a stop rule whose report the mission does not single out.

    The rule is recorded for ``resume``: found wrong after the first batch, the
    sweep could never go on. Its column can only be checked against a run's
    report, after the first batch.
    """
    reports = [name for name, kind in resources(script).items() if kind == "ReportFile"]
    name, column = until["name"], until["column"]
    if not reports:
        raise SweepConfigError(
            f"until['column']={column!r} is read from a report, and mission {script.name} "
            f"creates no ReportFile: add one that reports {column} to the script"
        )
    if (name is None and len(reports) == 1) or name in reports:
        return
    listed = ", ".join(map(repr, reports))
    found = (
        f"the mission writes {len(reports)} ({listed})"
        if name is None
        else f"the mission has no ReportFile {name!r}; its ReportFiles are {listed}"
    )
    raise SweepConfigError(
        f"until['column']={column!r} is read from one report, and {found}; name the one that "
        f"holds it with until['name'] (CLI: --name), e.g. {reports[0]!r}"
    )


# -- sensitivity designs -------------------------------------------------------


def sobol(
    mission: str | Path,
    bounds: Mapping[str, tuple[float, float]],
    n: int,
    *,
    seed: int | None = None,
    second_order: bool = False,
    backend: Pool | str | None = None,
    out: PathLike | None = None,
    progress: bool = True,
    storage_options: Mapping[str, Any] | None = None,
    run_options: Mapping[str, Any] | None = None,
    retries: int = DEFAULT_RETRIES,
    overwrite: bool = False,
    compute: bool = True,
    postprocess: Postprocess | None = None,
) -> Sweep:
    """Run the Saltelli design for Sobol' sensitivity indices over a GMAT mission.

    ``n * (D + 2)`` runs for ``D`` fields, or ``n * (2 D + 2)`` with
    ``second_order`` (:func:`gmat_sweep.sampling.sobol_rows`); each field is
    uniform on its ``bounds``. Analyse it with
    :func:`gmat_sweep.analysis.sensitivity`.

    Parameters
    ----------
    mission:
        Path to the GMAT ``.script`` file every run loads.
    bounds:
        Mapping from field path to its ``(low, high)`` range.
    n:
        Base sample size ``N``; a power of two (64, 128, ...) keeps the
        Sobol' balance properties, any other ``n`` warns.
    seed:
        Integer seed of the scrambling; ``None`` draws one and records it.
    second_order:
        Also run the points second-order indices (``S2``) need.
    backend, out, progress, storage_options, run_options, retries, overwrite, compute, postprocess:
        Same semantics as :func:`sweep`.

    Returns
    -------
    Sweep
        The completed sweep.

    Raises
    ------
    SweepConfigError
        Malformed ``bounds``, ``n`` or ``seed``, or as for :func:`sweep`.
    ImportError
        SALib is not installed.
    BackendError, EngineError, SweepLockedError, OSError
        As for :func:`sweep`.

    Warns
    -----
    UserWarning
        ``n`` is not a power of two, or the mission has no file outputs.

    See Also
    --------
    morris : a cheaper screening design.
    Sweep.sensitivity : the indices of a finished design.

    Examples
    --------
    Two fields, ``n=64``: ``64 * (2 + 2) = 256`` runs.

    >>> from gmat_sweep import examples, sobol
    >>> design = sobol(examples.path("leo_basic"),
    ...                {"Sat.Cd": (2.0, 2.4), "Sat.DryMass": (400, 600)}, 64,
    ...                seed=1, out="sobol")  # doctest: +SKIP
    >>> design.sensitivity("Sat.Earth.SMA")[["S1", "ST"]]  # doctest: +SKIP
    """
    from gmat_sweep.distributions import new_parent_seed
    from gmat_sweep.sampling import sobol_rows

    _warn_sobol_n(n)
    parent = new_parent_seed() if seed is None else seed
    sobol_rows(bounds, n, parent, second_order=second_order)  # validates every input
    return _launch(
        mission,
        plan.sobol_spec(bounds, n, parent, second_order=second_order),
        seed=parent,
        backend=backend,
        out=out,
        storage_options=storage_options,
        run_options=run_options,
        progress=progress,
        retries=retries,
        overwrite=overwrite,
        compute=compute,
        postprocess=postprocess,
    )


def morris(
    mission: str | Path,
    bounds: Mapping[str, tuple[float, float]],
    trajectories: int,
    *,
    levels: int = 4,
    seed: int | None = None,
    backend: Pool | str | None = None,
    out: PathLike | None = None,
    progress: bool = True,
    storage_options: Mapping[str, Any] | None = None,
    run_options: Mapping[str, Any] | None = None,
    retries: int = DEFAULT_RETRIES,
    overwrite: bool = False,
    compute: bool = True,
    postprocess: Postprocess | None = None,
) -> Sweep:
    """Run a Morris elementary-effects screening design over a GMAT mission.

    ``trajectories * (D + 1)`` runs for ``D`` fields, on a grid of ``levels``
    levels per field (:func:`gmat_sweep.sampling.morris_rows`). Analyse it
    with :func:`gmat_sweep.analysis.sensitivity`.

    Parameters
    ----------
    mission:
        Path to the GMAT ``.script`` file every run loads.
    bounds:
        Mapping from field path to its ``(low, high)`` range.
    trajectories:
        Number of trajectories, at least 2 (10 to 20 are usual).
    levels:
        Grid levels per field, an even integer >= 2.
    seed:
        Integer seed; ``None`` draws one and records it.
    backend, out, progress, storage_options, run_options, retries, overwrite, compute, postprocess:
        Same semantics as :func:`sweep`.

    Returns
    -------
    Sweep
        The completed sweep.

    Raises
    ------
    SweepConfigError
        Malformed ``bounds``, ``trajectories``, ``levels`` or ``seed``, or
        as for :func:`sweep`.
    ImportError, BackendError, EngineError, SweepLockedError, OSError
        As for :func:`sobol`.

    Warns
    -----
    UserWarning
        The mission has no file outputs (as for :func:`sweep`).

    See Also
    --------
    sobol : variance-based indices, at a higher cost.
    Sweep.sensitivity : the elementary effects of a finished design.

    Examples
    --------
    Three fields, 10 trajectories: ``10 * (3 + 1) = 40`` runs.

    >>> from gmat_sweep import examples, morris
    >>> screen = morris(examples.path("leo_basic"),
    ...                 {"Sat.Cd": (2.0, 2.4), "Sat.Cr": (1.6, 2.0), "Sat.DryMass": (400, 600)},
    ...                 10, seed=1, out="morris")  # doctest: +SKIP
    >>> screen.sensitivity("Sat.Earth.SMA")["mu_star"]  # doctest: +SKIP
    """
    from gmat_sweep.distributions import new_parent_seed
    from gmat_sweep.sampling import morris_rows

    parent = new_parent_seed() if seed is None else seed
    morris_rows(bounds, trajectories, levels, parent)  # validates every input
    return _launch(
        mission,
        plan.morris_spec(bounds, trajectories, levels, parent),
        seed=parent,
        backend=backend,
        out=out,
        storage_options=storage_options,
        run_options=run_options,
        progress=progress,
        retries=retries,
        overwrite=overwrite,
        compute=compute,
        postprocess=postprocess,
    )


def _warn_sobol_n(n: object) -> None:
    """Warn when a Sobol' sequence is cut at a length that is not a power of two."""
    if isinstance(n, int) and not isinstance(n, bool) and n >= 1 and n & (n - 1):
        above, below = 1 << (n - 1).bit_length(), 1 << (n.bit_length() - 1)
        warnings.warn(
            ArgumentWarning(
                "n",
                None,
                n,
                "not a power of two, so the Sobol' points lose their balance properties; the "
                f"nearest powers of two are {below} and {above}",
                above,
            ),
            stacklevel=3,
        )


def _launch(
    mission: str | Path,
    parameter_spec: dict[str, Any],
    *,
    seed: int | None,
    backend: Pool | str | None,
    out: PathLike | None,
    storage_options: Mapping[str, Any] | None,
    run_options: Mapping[str, Any] | None,
    progress: bool,
    retries: int,
    overwrite: bool,
    compute: bool,
    postprocess: Postprocess | None,
    raise_on_failure: bool = False,
) -> Sweep:
    """Validate, build the sweep on the given or a default pool, run it unless not to compute.

    Every argument is checked before the first side effect (creating or
    clearing ``out``, starting GMAT hosts).
    """
    script = checked_script(mission)
    options = _check_run_options(run_options)
    _check_retries(retries)
    check_backend(backend)
    if options:
        parameter_spec = {**parameter_spec, "run_options": options}
    if postprocess is not None:
        resolve(postprocess)  # a bad function or name fails before anything starts
        recorded = describe(postprocess)
        if recorded is not None:  # resume computes the same metrics
            parameter_spec = {**parameter_spec, "postprocess": recorded}
    _refuse_shared_outputs(script)
    _refuse_unreadable_ephemerides(script)
    _refuse_reports_into_subscribers(script)
    root = _check_out(out, script, storage_options, overwrite=overwrite)
    owned = not isinstance(backend, Pool)
    # A named or default backend's pool checks the fields (warming its hosts) and runs
    # the sweep; it is closed afterwards and a later computation starts its own.
    pool = backend if isinstance(backend, Pool) else make_backend(backend or "local")
    try:
        worker_options = cast(RunOptions, dict(options))
        if storage_options:
            worker_options["storage_options"] = dict(storage_options)
        runs = plan.expand(parameter_spec, script, root, worker_options)
        check_overrides(pool, script, runs)
        _warn_without_file_outputs(script)
        result = Sweep(
            runs=runs,
            backend=pool,
            manifest_path=storage.join(root, MANIFEST_NAME),
            output_dir=root,
            script_path=script,
            parameter_spec=parameter_spec,
            sweep_seed=seed,
            progress=progress,
            retries=retries,
            storage_options=storage_options,
            postprocess=postprocess,
        )
        result._prepare = partial(
            _prepare_out, root, storage_options, overwrite=overwrite, announce=out is None
        )
        if compute:
            result.run()
    finally:
        if owned:
            pool.close()
    if owned:
        result._use_backend(backend)
    if compute and raise_on_failure:
        failed = result.manifest.find_failed()
        if failed:
            entry = result.manifest.entry_for(failed[0])
            raise RunFailed(failed[0], entry.stderr if entry else None)
    return result


def _refuse_shared_outputs(script: Path) -> None:
    """Refuse output files a run could not keep inside its own directory.

    gmat-run redirects a relative ``Filename`` into each run's own directory
    and leaves an absolute one where the script puts it, so parallel runs
    would overwrite one another's output and each run would read back
    whichever wrote last. A relative name with a ``..`` segment could climb
    out of the run's directory, so gmat-run fails every such run.
    """
    filenames = output_settings(script, "Filename")
    rules = (
        (
            lambda path: path.is_absolute(),
            "is an absolute path, so every run would write the same file and overwrite the "
            "others' output; a sweep needs each output file named by a relative path, which "
            "each run writes into its own run-NNNNNN directory: make the Filename relative in "
            "the script",
        ),
        (
            lambda path: ".." in path.parts,
            "has a '..' segment, so it could point outside the run's own directory, where "
            "gmat-run refuses to write and every run would fail; a sweep keeps each output "
            "file inside the run's own run-NNNNNN directory: name it without '..' in the script",
        ),
    )
    for breaks, reason in rules:
        broken = {name: value for name, value in filenames.items() if breaks(PurePath(value))}
        if broken:
            named = ", ".join(f"{name}.Filename = '{value}'" for name, value in broken.items())
            example = PurePath(next(iter(broken.values()))).name
            raise SweepConfigError(f"mission {script.name}: {named} {reason} (e.g. '{example}')")


def _refuse_unreadable_ephemerides(script: Path) -> None:
    """Refuse an ephemeris the script writes in a format gmat-run cannot read.

    gmat-run reads CCSDS-OEM, STK-TimePosVel and (with its ``spiceypy``
    extra) SPK files; a run whose ephemeris it cannot read fails after GMAT
    ran, so every run of the sweep would fail the same way.
    """
    readable = readable_ephemeris_formats()
    kinds = resources(script)
    writes = output_settings(script, "WriteEphemeris")
    unreadable = {
        name: file_format
        for name, file_format in output_settings(script, "FileFormat").items()
        if kinds[name] == "EphemerisFile"
        and file_format not in readable
        and writes.get(name, "true").lower() != "false"
    }
    if not unreadable:
        return
    named = ", ".join(f"{name}.FileFormat = {value}" for name, value in unreadable.items())
    spk = (
        "SPK needs spiceypy installed (pip install 'gmat-run[spiceypy]'); "
        if "SPK" in unreadable.values()
        else ""
    )
    raise SweepConfigError(
        f"mission {script.name}: {named}: gmat_sweep reads each run's ephemerides with "
        f"gmat-run, which reads only {' and '.join(sorted(readable))} files, so every run "
        f"would fail reading it; {spk}set FileFormat = CCSDS-OEM (or STK-TimePosVel) to have "
        "it read, or WriteEphemeris = false to leave it out of the runs"
    )


def _refuse_reports_into_subscribers(script: Path) -> None:
    """Refuse a ``Report`` command into a ReportFile that also writes its ``Add`` list.

    GMAT writes the command's header line into the middle of the file
    (:func:`gmat_sweep.script.reports_into_subscribers`): gmat-run fails to
    read it after every run, or, with as many columns and no epoch column,
    reads one parameter's values under another's name.
    """
    mixed = reports_into_subscribers(script)
    if not mixed:
        return
    name, statement = next(iter(mixed.items()))
    raise SweepConfigError(
        f"mission {script.name}: {statement} writes into ReportFile {name}, which also "
        f"writes its own columns ({name}.Add) at every step; GMAT then starts a second "
        "header line in the middle of the file, so its rows cannot be read as one table "
        "(every run would fail reading it, or read one parameter's values under another's "
        "name); give the Report command a ReportFile of its own, with no Add list (e.g. "
        f"Create ReportFile {name}Summary;), and write into that"
    )


def _warn_without_file_outputs(script: Path) -> None:
    """Warn when the mission writes no file a sweep can read: its runs would give no results."""
    if file_outputs(script):
        return
    warnings.warn(
        f"mission {script.name} creates no ReportFile, EphemerisFile or ContactLocator, so its "
        "runs will write no output files and the sweep will have no results to read (GUI "
        "subscribers such as OrbitView and XYPlot write no files); add a ReportFile with the "
        "values you need to the script, e.g. Create ReportFile RF; RF.Add = "
        "{Sat.UTCGregorian, Sat.Earth.SMA};",
        UserWarning,
        skip_file_prefixes=(str(Path(__file__).parent),),
    )


def open_sweep(path_or_url: PathLike, *, storage_options: Mapping[str, Any] | None = None) -> Sweep:
    """Open a sweep from its directory (or its ``manifest.jsonl``), reading the manifest alone.

    Needs no script, no backend and no GMAT process, so it works on a copied
    or moved sweep directory, a read-only one, or ``s3://``: every ``to_*``
    method, :meth:`~gmat_sweep.sweep.Sweep.final` and ``repr`` work on the
    result. It can still be resumed (:meth:`~gmat_sweep.sweep.Sweep.resume`),
    which then loads the mission recorded in the manifest (checked against
    its recorded hash) on the default backend; use
    :meth:`~gmat_sweep.sweep.Sweep.from_manifest` to name another script or
    backend.

    Parameters
    ----------
    path_or_url:
        The sweep directory or its manifest: a local path or an fsspec URL.
    storage_options:
        fsspec options for a URL (endpoint, credentials); never recorded.

    Returns
    -------
    Sweep
        The sweep as its manifest records it.

    Raises
    ------
    SweepConfigError
        ``path_or_url`` holds no manifest, or its directory does not exist.
    ManifestCorruptError
        The manifest cannot be parsed, or was written by a newer gmat_sweep.
    OSError
        The directory or object store cannot be read.

    See Also
    --------
    sweep, monte_carlo, latin_hypercube : run a new sweep.
    Sweep.from_manifest : rebuild a sweep to resume it with another script or backend.

    Examples
    --------
    >>> from gmat_sweep import open_sweep
    >>> study = open_sweep("leo-study")  # doctest: +SKIP
    >>> study.final()  # doctest: +SKIP
    >>> study.failed_run_ids  # doctest: +SKIP
    []
    >>> study.resume()  # re-runs failed and missing runs  # doctest: +SKIP
    """
    _check_storage_mapping(storage_options)
    text = str(path_or_url).rstrip("/")
    if text.endswith(".jsonl"):
        location = as_location(text)
    else:
        location = storage.join(as_location(text), MANIFEST_NAME)
    if not storage.exists(location, storage_options):
        raise SweepConfigError(
            f"{path_or_url} is not a sweep: it has no {MANIFEST_NAME} (every sweep writes one at "
            "its root); pass the out= directory (or URL) of a gmat_sweep sweep"
        )
    return Sweep._opened(location, storage_options)


_KNOWN_RUN_OPTIONS = {"timeout_s"}

MAX_TIMEOUT_S = 2_147_483.647
"""Longest per-run timeout: the host waits with ``Connection.poll``, whose poll(2) takes
an ``int`` of milliseconds (2**31 - 1 ms); longer values raise OverflowError mid-sweep."""


def _check_run_options(run_options: Mapping[str, Any] | None) -> dict[str, Any]:
    options = dict(run_options or {})
    unknown = sorted(set(options) - _KNOWN_RUN_OPTIONS)
    if unknown:
        raise SweepConfigError(
            f"run_options has unknown keys {unknown}; the known option is 'timeout_s' "
            "(seconds a run may take before it is stopped)"
        )
    timeout = options.get("timeout_s")
    if timeout is not None and (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not 0 < timeout <= MAX_TIMEOUT_S
    ):
        raise SweepConfigError(
            f"run_options['timeout_s']={timeout!r}: use a finite, positive number of seconds "
            f"up to {MAX_TIMEOUT_S} (about 24 days), e.g. 300; leave timeout_s out for no limit"
        )
    return options


def _check_retries(retries: int) -> None:
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise SweepConfigError(f"retries={retries!r}: use a whole number >= 0")


def default_out_dir(script: Path) -> Path:
    """A new, uniquely named directory under the current one for a sweep of ``script``.

    What ``out=None`` means. The command line chooses it itself, so that it,
    not this module, says where the results go (``--quiet`` says nothing).
    """
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path.cwd() / f"gmat-sweep-{script.stem}-{stamp}-{secrets.token_hex(2)}"


def _check_out(
    out: PathLike | None,
    script: Path,
    storage_options: Mapping[str, Any] | None,
    *,
    overwrite: bool,
) -> PathLike:
    """Resolve the sweep directory and check it can take this sweep, writing nothing.

    With no ``out``, a new uniquely named directory under the current one is
    chosen; :func:`_prepare_out` creates it (and says where) when runs start.

    A URL is probed (:func:`gmat_sweep.storage.check_writable`, whose probe
    object is deleted again): an unreachable store, a missing bucket or denied
    access fails here, before any GMAT process starts. A directory that
    already holds a sweep is refused unless ``overwrite`` is set.
    """
    _check_storage_mapping(storage_options)
    if out is None:
        root: PathLike = default_out_dir(script)
    elif is_url(out):
        root = str(out).rstrip("/")
        if root.startswith("memory://"):
            raise SweepConfigError(
                f"out={out!r}: a memory:// filesystem lives inside one process, but runs execute "
                "in separate GMAT worker processes, so their outputs would be lost; use a local "
                "directory or an object store URL such as s3://bucket/prefix"
            )
        _check_storage_options(storage_options)
        storage.check_writable(root, storage_options)
    else:
        refuse_a_file(out, "out")
        root = local_path(out).expanduser().resolve()
    if not overwrite and storage.exists(storage.join(root, MANIFEST_NAME), storage_options):
        raise SweepConfigError(
            f"{root} already holds a sweep ({MANIFEST_NAME} exists). Resume it with "
            f"Sweep.from_manifest(...).resume() (CLI: gmat-sweep resume "
            f"{shlex.quote(str(root))}), choose another out=, or pass overwrite=True to replace it."
        )
    return root


def _prepare_out(
    root: PathLike,
    storage_options: Mapping[str, Any] | None,
    *,
    overwrite: bool,
    announce: bool,
) -> None:
    """Create the sweep directory checked by :func:`_check_out`; with ``overwrite``, empty it.

    Called by the sweep when its first computation begins, under its hold
    (:func:`gmat_sweep.lock.hold`), so a sweep another driver still writes is
    never replaced. ``announce`` says where on stderr: the caller named no
    ``out``, and only now is the directory created.
    """
    if announce:
        print(f"gmat_sweep: writing results to {root}", file=sys.stderr)
    if overwrite and storage.exists(storage.join(root, MANIFEST_NAME), storage_options):
        _clear(root, storage_options)
    storage.make_dirs(root, storage_options)


def _check_storage_mapping(storage_options: object) -> None:
    """``storage_options`` is ``None`` or a mapping of fsspec options."""
    if storage_options is not None and not isinstance(storage_options, Mapping):
        raise SweepConfigError(
            f"storage_options={storage_options!r}: pass a dict of fsspec options for the URL "
            "(e.g. {'key': ..., 'secret': ..., 'client_kwargs': {'endpoint_url': ...}}), or "
            "leave it out for a local directory"
        )


def _check_storage_options(storage_options: Mapping[str, Any] | None) -> None:
    """Worker processes receive the options as JSON: they must be plain values."""
    if storage_options is None:
        return
    try:
        json.dumps(dict(storage_options))
    except (TypeError, ValueError) as exc:
        raise SweepConfigError(
            f"storage_options cannot be sent to the worker processes ({exc}); they travel as "
            "JSON, so use strings, numbers, booleans, lists and dicts (e.g. a key and secret "
            "instead of a session object)"
        ) from None


_RUN_DIRECTORY = re.compile(r"run-\d{6,}")
"""Names of the run directories this library writes (``grid.run_dir_name``)."""


def _clear(root: PathLike, storage_options: Mapping[str, Any] | None) -> None:
    """Remove what a previous sweep wrote in ``root``: its manifest and run directories.

    Only ``manifest.jsonl``, ``manifest.d/`` and ``run-NNNNNN/`` directories
    (``run-`` and six or more digits) are removed; anything else in ``root``
    (a user's ``run-all.sh``, ``run-configs/``, notes) stays. The lock file
    stays too: a driver may be waiting on it, and a second file under the same
    name would let two drivers hold the sweep.
    """
    fs, path = storage.filesystem(root, storage_options)
    for child in fs.ls(path, detail=True, refresh=True):
        name = str(child["name"]).rstrip("/").rsplit("/", 1)[-1]
        directory = child["type"] == "directory"
        if name == MANIFEST_NAME and not directory:
            fs.rm(child["name"])
        elif directory and (name == ENTRIES_DIR or _RUN_DIRECTORY.fullmatch(name)):
            if is_url(root):
                fs.rm(child["name"], recursive=True)
            else:
                shutil.rmtree(child["name"])
