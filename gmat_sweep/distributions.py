"""Distribution specs for Monte Carlo and Latin-hypercube sweeps.

A ``perturb`` mapping sends a field path (or a tuple of field paths, for
correlated fields) to a :data:`DistSpec`. :func:`parse_dist` validates one
entry and returns a :class:`Distribution`, which maps unit-cube points to
values (:meth:`Distribution.ppf`), draws values from a numpy
:class:`~numpy.random.Generator` (:meth:`Distribution.sample`) and describes
itself as plain JSON for the manifest (:meth:`Distribution.describe`);
:func:`parse_dist` accepts that description back, so a manifest can rebuild
its sweep.

Every parameter draws from its own random stream, seeded by
:func:`derive_param_seed` from the sweep's parent seed and the parameter's
name, so adding a parameter to a sweep never changes another parameter's
draws.
"""

from __future__ import annotations

import copy
import hashlib
import math
import numbers
import operator
import secrets
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.special
import scipy.stats
from numpy.typing import NDArray
from scipy.stats._distn_infrastructure import (
    rv_continuous,
    rv_continuous_frozen,
    rv_discrete,
    rv_discrete_frozen,
)

from gmat_sweep.errors import ArgumentError, SweepConfigError
from gmat_sweep.plan import DISTRIBUTION_EXAMPLES
from gmat_sweep.spec import to_plain

type FloatArray = NDArray[np.float64]
"""A float64 numpy array."""

type ParamName = str | tuple[str, ...]
"""A ``perturb`` key: one field path, or a tuple of field paths for ``'mvnormal'``."""

type DistSpec = (
    tuple[str, float, float]
    | tuple[str, Sequence[float], Sequence[Sequence[float]]]
    | rv_continuous_frozen
    | Mapping[str, Any]
)
"""What a ``perturb`` value may be.

A distribution draws **the value the field is set to**, not an offset from
the mission's nominal value, in the field's GMAT units (``Sat.SMA`` in km,
``Sat.INC`` in degrees); centre it on the nominal to disperse around it
(:func:`gmat_sweep.fields` lists the nominal values).

- ``("normal", mu, sigma)``: Normal with mean ``mu`` and standard deviation
  ``sigma > 0``.
- ``("uniform", lo, hi)``: Uniform on ``[lo, hi]`` with ``lo < hi``.
- ``("lognormal", mu, sigma)``: in log space: the *log* of the value is
  Normal(``mu``, ``sigma``), i.e. ``scipy.stats.lognorm(s=sigma,
  scale=exp(mu))``; the median of the value is ``exp(mu)``. For a median
  ``m`` and a factor ``f`` (about 68 % of values between ``m / f`` and
  ``m * f``) give ``mu = log(m)``, ``sigma = log(f)``.
- A frozen continuous :mod:`scipy.stats` distribution, e.g.
  ``scipy.stats.norm(7000, 5)`` or ``scipy.stats.truncnorm(-2, 2, 7000, 5)``.
  ``truncnorm``'s bounds are in standard deviations (sigma units) from
  ``loc``, as scipy defines them: ``truncnorm(-2, 2, 7000, 5)`` is a Normal
  (7000, 5) cut at 6990 and 7010.
  Discrete distributions are rejected: the draws are continuous values; for
  an Integer field or a set of discrete choices, pass rows drawn yourself to
  :func:`gmat_sweep.sweep` as ``samples=``.
- ``("mvnormal", mean, covariance)`` for a key that is a *tuple* of field
  paths: correlated Normal fields, ``mean`` of length ``k`` and a symmetric
  positive semi-definite ``k x k`` ``covariance``.
- The dict written by :meth:`Distribution.describe`, e.g.
  ``{"dist": "normal", "params": [7000.0, 5.0]}``.

Tuples may also be given as lists (as they come back from JSON).
"""

_ACCEPTED = (
    "use 'normal', 'uniform', 'lognormal', 'mvnormal' or a frozen scipy.stats distribution "
    "such as scipy.stats.norm(7000, 5)"
)
_EXAMPLES = {
    **{kind: repr((kind, *params)) for kind, params in DISTRIBUTION_EXAMPLES.items()},
    "mvnormal": "('mvnormal', [0.0, 0.0], [[1.0, 0.5], [0.5, 1.0]])",
}
# Draws of exactly 0 (or 1) would map to infinite values under unbounded
# distributions; the grid of numpy's Generator.random() is 2**-53, so this
# clip only ever moves an exact 0.
_U_MIN = 2.0**-53
_U_MAX = 1.0 - 2.0**-53


def canonical_name(name: ParamName) -> str:
    """The one string a ``perturb`` key stands for: a tuple of paths is joined with ``"|"``.

    ``("Sat.X", "Sat.Y")`` -> ``"Sat.X|Sat.Y"``; used for seeding
    (:func:`derive_param_seed`), for ordering parameters and as the key in
    manifest descriptions.
    """
    return name if isinstance(name, str) else "|".join(name)


def derive_param_seed(parent_seed: int, name: ParamName) -> int:
    """Derive a parameter's own seed from the sweep's parent seed and its name.

    The result is the first 8 bytes (little-endian) of
    ``sha256(f"{parent_seed}:{canonical_name(name)}")`` with the top bit
    cleared, so it is identical across processes, platforms and Python
    versions (Python's ``hash()`` is not) and lies in ``[0, 2**63)``. Giving
    each parameter its own stream makes its draws independent of which other
    parameters the sweep perturbs.

    Parameters
    ----------
    parent_seed:
        The sweep's seed.
    name:
        The parameter's field path, or tuple of field paths (see
        :func:`canonical_name`).

    Returns
    -------
    int
        A seed in ``[0, 2**63)`` for :func:`numpy.random.default_rng`.

    Raises
    ------
    SweepConfigError
        If ``parent_seed`` is not an integer.
    """
    seed = checked_integer("seed ", parent_seed, "give an integer seed such as 42")
    digest = hashlib.sha256(f"{seed}:{canonical_name(name)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def checked_integer(label: str, value: object, fix: str) -> int:
    """``value`` as an ``int``; a bool or a non-integer is refused, named ``label`` + its repr."""
    if isinstance(value, bool | np.bool_):
        raise SweepConfigError(f"{label}{value!r} is a bool; {fix}")
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise SweepConfigError(
            f"{label}{value!r} of type {type(value).__name__} is not an integer; {fix}"
        ) from None


def new_parent_seed() -> int:
    """A fresh parent seed in ``[0, 2**53)`` from OS entropy, for a sweep given ``seed=None``.

    The seed is recorded in the manifest, so the sweep can be rebuilt later.
    It stays below ``2**53`` so that every JSON reader (``jq``, JavaScript)
    reads it exactly: a script that takes the seed from ``--json`` draws the
    same runs again.
    """
    return secrets.randbits(53)


class Distribution(ABC):
    """A validated distribution over one field, or several correlated fields.

    Built by :func:`parse_dist`; immutable.

    Attributes
    ----------
    names:
        The field path(s) the distribution gives values to, one per column of
        :meth:`ppf` and :meth:`sample` output.
    """

    names: tuple[str, ...]

    @property
    def dim(self) -> int:
        """Number of fields (columns) this distribution produces."""
        return len(self.names)

    @abstractmethod
    def ppf(self, u: FloatArray) -> FloatArray:
        """Map points of the unit cube to values (the inverse CDF, per row).

        Parameters
        ----------
        u:
            Array of shape ``(n, dim)`` with entries in ``[0, 1]``. Entries are
            clipped to ``[2**-53, 1 - 2**-53]`` so that an exact 0 or 1 never
            maps to an infinite value.

        Returns
        -------
        FloatArray
            Array of shape ``(n, dim)``; column ``j`` holds ``names[j]``.
        """

    def sample(self, rng: np.random.Generator, n: int) -> FloatArray:
        """Draw ``n`` values by inverse-transform sampling.

        The draws are ``ppf(rng.random((n, dim)))``: a row's values depend only
        on the generator's state and the number of rows before it, so the
        first ``n`` rows of ``sample(rng, n + m)`` equal ``sample(rng, n)``
        for a generator in the same starting state.

        Parameters
        ----------
        rng:
            The random stream to consume.
        n:
            Number of rows to draw.

        Returns
        -------
        FloatArray
            Array of shape ``(n, dim)``.
        """
        return self.ppf(rng.random((n, self.dim)))

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """Return a JSON-plain description that :func:`parse_dist` accepts back.

        Returns
        -------
        dict[str, Any]
            E.g. ``{"dist": "normal", "params": [7000.0, 5.0]}``,
            ``{"dist": "mvnormal", "mean": [...], "cov": [[...], ...]}`` or
            ``{"dist": "scipy", "name": "truncnorm", "args": [...],
            "kwds": {...}}``.
        """

    def _unit(self, u: FloatArray) -> FloatArray:
        array = np.asarray(u, dtype=np.float64)
        if array.ndim != 2 or array.shape[1] != self.dim:
            raise ValueError(f"expected an array of shape (n, {self.dim}), got {array.shape}")
        return np.clip(array, _U_MIN, _U_MAX)


@dataclass(frozen=True, eq=False, slots=True)
class _Univariate(Distribution):
    names: tuple[str, ...]
    rv: Any
    description: dict[str, Any]

    def ppf(self, u: FloatArray) -> FloatArray:
        values = np.asarray(self.rv.ppf(self._unit(u)[:, 0]), dtype=np.float64)
        return values.reshape(-1, 1)

    def describe(self) -> dict[str, Any]:
        return copy.deepcopy(self.description)


@dataclass(frozen=True, eq=False, slots=True)
class _MultivariateNormal(Distribution):
    """Correlated Normal fields as a Gaussian copula: ``mean + L @ z``.

    ``L`` is the Cholesky factor of the covariance when it is positive
    definite, else ``V @ diag(sqrt(w))`` from its eigendecomposition (the
    positive semi-definite case). ``ppf`` turns each unit column into an
    independent standard normal score ``z_j = Phi^-1(u_j)`` and returns
    ``mean + L @ z`` row by row. Under Latin-hypercube sampling the
    stratification therefore holds exactly on each independent score axis;
    the fields themselves are correlated Normals whose marginals are
    stratified only approximately.
    """

    names: tuple[str, ...]
    mean: FloatArray
    cov: FloatArray
    factor: FloatArray

    def ppf(self, u: FloatArray) -> FloatArray:
        scores = scipy.special.ndtri(self._unit(u))
        values = np.tile(self.mean, (scores.shape[0], 1))
        # Column by column rather than a BLAS matmul: BLAS may sum in an order
        # that depends on the number of rows, and a row's value must not.
        for j in range(self.dim):
            values += scores[:, j : j + 1] * self.factor[:, j]
        return values

    def describe(self) -> dict[str, Any]:
        return {"dist": "mvnormal", "mean": self.mean.tolist(), "cov": self.cov.tolist()}


def parse_dist(name: ParamName, spec: DistSpec) -> Distribution:
    """Validate one ``perturb`` entry and build its :class:`Distribution`.

    Parameters
    ----------
    name:
        The field path, e.g. ``"Sat.SMA"``, or for ``'mvnormal'`` a tuple of
        field paths, e.g. ``("Sat.X", "Sat.Y")``. Field paths are non-empty
        strings without ``"|"`` (the separator of :func:`canonical_name`).
    spec:
        A :data:`DistSpec`.

    Returns
    -------
    Distribution
        With ``names == (name,)`` for a field path, ``name`` for a tuple.

    Raises
    ------
    SweepConfigError
        If the key or the spec is malformed: unknown distribution, wrong number
        of parameters, non-numeric or non-finite numbers, ``sigma <= 0``,
        ``lo >= hi``, a scipy distribution that is not frozen, discrete, not
        scalar or not from :mod:`scipy.stats`, a tuple key without
        ``'mvnormal'`` (or the reverse), or a mean/covariance of the wrong
        size, not symmetric or not positive semi-definite.
    """
    names = _check_names(name)
    label = f"perturb[{name!r}]"
    correlated = isinstance(name, tuple)
    if isinstance(spec, Mapping):
        return _from_description(names, label, correlated, spec)
    if isinstance(spec, rv_discrete_frozen):
        raise SweepConfigError(
            f"{label}: {_scipy_repr(spec)} is a discrete distribution, but Monte Carlo, "
            "Latin-hypercube and sensitivity designs draw continuous values; for an Integer "
            "field (a gravity degree, an iteration limit) or a set of discrete choices, draw "
            "the values yourself and run sweep(mission, samples=...) with one row per run"
        )
    if isinstance(spec, rv_continuous_frozen):
        return _from_scipy(names, label, correlated, spec)
    if isinstance(spec, rv_continuous | rv_discrete):
        raise SweepConfigError(
            f"{label}: scipy.stats.{spec.name} is a distribution family, not a frozen "
            f"distribution; call it with its parameters, e.g. scipy.stats.{spec.name}(...) "
            "as in scipy.stats.norm(7000, 5)"
        )
    if isinstance(spec, tuple | list) and spec and isinstance(spec[0], str):
        return _from_parts(names, label, correlated, spec[0], list(spec[1:]))
    raise SweepConfigError(
        f"{label}: {spec!r} is not a distribution spec; give a tuple whose first item names "
        f"the distribution, e.g. {_EXAMPLES['normal']}, or {_ACCEPTED}"
    )


def _check_names(name: object) -> tuple[str, ...]:
    rule = (
        "perturb keys must be field paths such as 'Sat.SMA' "
        "(or, for 'mvnormal', a tuple of them such as ('Sat.X', 'Sat.Y'))"
    )
    names = name if isinstance(name, tuple) else (name,)
    if not names:
        raise SweepConfigError(f"perturb key () is an empty tuple; {rule}")
    for part in names:
        if not isinstance(part, str) or not part:
            raise SweepConfigError(f"perturb key {name!r} is not valid: {part!r}; {rule}")
        if "|" in part:
            raise SweepConfigError(
                f"perturb key {name!r}: field path {part!r} contains '|', which is reserved "
                "to join correlated field paths; use the GMAT field path, e.g. 'Sat.SMA'"
            )
    if len(set(names)) != len(names):
        raise SweepConfigError(
            f"perturb key {name!r} repeats a field path; list each correlated field once"
        )
    return names


def _from_parts(
    names: tuple[str, ...], label: str, correlated: bool, kind: str, params: list[Any]
) -> Distribution:
    if kind not in _EXAMPLES:
        raise SweepConfigError(f"{label}: unknown distribution {kind!r}; {_ACCEPTED}")
    if kind == "mvnormal" and not correlated:
        raise SweepConfigError(
            f"{label}: 'mvnormal' correlates several fields, so its key must be a tuple of "
            f"field paths, e.g. perturb[('Sat.X', 'Sat.Y')] = {_EXAMPLES['mvnormal']}; "
            f"for one field use {_EXAMPLES['normal']}"
        )
    if kind != "mvnormal" and correlated:
        raise SweepConfigError(
            f"{label}: a tuple key correlates several fields and takes "
            f"{_EXAMPLES['mvnormal']}, not {kind!r}; for independent fields give each its "
            "own key"
        )
    if len(params) != 2:
        what = "mean and covariance" if kind == "mvnormal" else "exactly two parameters"
        raise SweepConfigError(
            f"{label}: {kind!r} takes {what}, got {len(params)} ({params!r}); "
            f"e.g. {_EXAMPLES[kind]}"
        )
    if kind == "mvnormal":
        return _mvnormal(names, label, params[0], params[1])
    first, second = ("lo", "hi") if kind == "uniform" else ("mu", "sigma")
    a = _real(names, kind, first, params[0], params)
    b = _real(names, kind, second, params[1], params)
    if kind == "uniform":
        if not a < b:
            fixed = (b, a) if a > b else None
            raise _refused(names, kind, params, "uniform needs lo < hi", fixed)
        rv = scipy.stats.uniform(loc=a, scale=b - a)
    else:
        if not b > 0:
            fixed = (a, -b) if b < 0 else None
            spread = "of log(value)" if kind == "lognormal" else "of the value"
            rule = f"{kind} needs sigma > 0 (the standard deviation {spread})"
            raise _refused(names, kind, params, rule, fixed)
        if kind == "normal":
            rv = scipy.stats.norm(loc=a, scale=b)
        else:
            try:
                median = math.exp(a)
            except OverflowError:
                median = math.inf
            if not math.isfinite(median):
                rule = (
                    "lognormal's mu is the mean of log(value), so the median exp(mu) overflows; "
                    "give mu = ln(median)"
                )
                raise _refused(names, kind, params, rule)
            rv = scipy.stats.lognorm(s=b, scale=median)
    return _univariate(names, label, rv, {"dist": kind, "params": [a, b]})


def _real(
    names: tuple[str, ...], kind: str, what: str, value: object, params: Sequence[object]
) -> float:
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise _refused(names, kind, params, f"{kind}'s {what} {value!r} is not a number")
    number = float(value)
    if not math.isfinite(number):
        raise _refused(names, kind, params, f"{kind}'s {what} {value!r} is not finite")
    return number


def _refused(
    names: tuple[str, ...],
    kind: str,
    params: Sequence[object],
    rule: str,
    fixed: tuple[float, float] | None = None,
) -> ArgumentError:
    """A one-field distribution's parameters break ``rule``; the example is ``fixed`` or generic."""
    example = fixed if fixed is not None else DISTRIBUTION_EXAMPLES[kind]
    return ArgumentError("perturb", names[0], (kind, *params), rule, (kind, *example))


def _univariate(
    names: tuple[str, ...], label: str, rv: Any, description: dict[str, Any]
) -> _Univariate:
    with np.errstate(all="ignore"):
        median = rv.ppf(0.5)
    if np.ndim(median) != 0:
        raise SweepConfigError(
            f"{label}: {_scipy_repr(rv)} has array-valued parameters; one field takes one "
            "scalar distribution, e.g. scipy.stats.norm(7000, 5)"
        )
    if not math.isfinite(float(median)):
        raise SweepConfigError(
            f"{label}: {_scipy_repr(rv)} has invalid parameters (its median is {median}); "
            "check them against the scipy.stats documentation, e.g. scipy.stats.norm(7000, 5)"
        )
    return _Univariate(names=names, rv=rv, description=description)


def _scipy_repr(rv: Any) -> str:
    arguments = [repr(a) for a in rv.args] + [f"{k}={v!r}" for k, v in rv.kwds.items()]
    return f"scipy.stats.{rv.dist.name}({', '.join(arguments)})"


def _from_scipy(names: tuple[str, ...], label: str, correlated: bool, rv: Any) -> Distribution:
    if correlated:
        raise SweepConfigError(
            f"{label}: a tuple key correlates several fields and takes "
            f"{_EXAMPLES['mvnormal']}, not the one-field {_scipy_repr(rv)}"
        )
    name: str = rv.dist.name
    family = getattr(scipy.stats, name, None)
    if type(family) is not type(rv.dist):
        raise SweepConfigError(
            f"{label}: {type(rv.dist).__name__} named {name!r} is not a scipy.stats "
            "distribution, so the manifest could not rebuild it; use one from scipy.stats or "
            "pass the values as an explicit samples= table"
        )
    if any(_is_nan(value) for value in (*rv.args, *rv.kwds.values())):
        raise SweepConfigError(
            f"{label}: {_scipy_repr(rv)} has a NaN parameter; give finite numbers (or an "
            "infinite bound of a truncated distribution), e.g. scipy.stats.norm(7000, 5)"
        )
    description = {
        "dist": "scipy",
        "name": name,
        "args": [_described(value) for value in rv.args],
        "kwds": {str(key): _described(value) for key, value in rv.kwds.items()},
    }
    return _univariate(names, label, rv, description)


_INFINITIES = {"inf": math.inf, "-inf": -math.inf}
"""How a scipy parameter's infinite bound is described: JSON has no infinity."""


def _is_nan(value: Any) -> bool:
    return isinstance(value, float | np.floating) and math.isnan(value)


def _described(value: Any) -> Any:
    """A scipy parameter as JSON: plain; an infinite bound (one-sided truncation) as a string."""
    if isinstance(value, float | np.floating) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return to_plain(value)


def _parameter(value: Any) -> Any:
    """Inverse of :func:`_described`: ``"inf"`` / ``"-inf"`` back to floats."""
    return _INFINITIES.get(value, value) if isinstance(value, str) else value


_DESCRIPTION_KEYS = {
    "normal": {"dist", "params"},
    "uniform": {"dist", "params"},
    "lognormal": {"dist", "params"},
    "mvnormal": {"dist", "mean", "cov"},
    "scipy": {"dist", "name", "args", "kwds"},
}


def _from_description(
    names: tuple[str, ...], label: str, correlated: bool, spec: Mapping[str, Any]
) -> Distribution:
    kind = spec.get("dist")
    if kind not in _DESCRIPTION_KEYS:
        raise SweepConfigError(
            f"{label}: description {dict(spec)!r} has unknown 'dist' {kind!r}; "
            f"give one of {sorted(_DESCRIPTION_KEYS)}, e.g. "
            "{'dist': 'normal', 'params': [7000.0, 5.0]}"
        )
    expected = _DESCRIPTION_KEYS[kind]
    if set(spec) != expected:
        raise SweepConfigError(
            f"{label}: description {dict(spec)!r} must have exactly the keys "
            f"{sorted(expected)} for 'dist' {kind!r}"
        )
    if kind == "mvnormal":
        return _from_parts(names, label, correlated, kind, [spec["mean"], spec["cov"]])
    if kind != "scipy":
        params = spec["params"]
        if not isinstance(params, Sequence) or isinstance(params, str):
            raise SweepConfigError(
                f"{label}: description 'params' {params!r} must be a list of two numbers, "
                "e.g. {'dist': 'normal', 'params': [7000.0, 5.0]}"
            )
        return _from_parts(names, label, correlated, kind, list(params))
    family = getattr(scipy.stats, str(spec["name"]), None)
    args, kwds = spec["args"], spec["kwds"]
    if not isinstance(family, rv_continuous):
        raise SweepConfigError(
            f"{label}: {spec['name']!r} is not a continuous scipy.stats distribution; "
            "give a name such as 'norm' or 'truncnorm'"
        )
    if not isinstance(args, Sequence) or isinstance(args, str) or not isinstance(kwds, Mapping):
        raise SweepConfigError(
            f"{label}: description needs 'args' as a list and 'kwds' as a dict, got "
            f"{args!r} and {kwds!r}"
        )
    try:
        rv = family(*map(_parameter, args), **{key: _parameter(v) for key, v in kwds.items()})
    except TypeError as error:
        raise SweepConfigError(
            f"{label}: scipy.stats.{spec['name']} rejected args={args!r}, kwds={kwds!r} "
            f"({error}); give the parameters scipy documents for it"
        ) from None
    return _from_scipy(names, label, correlated, rv)


def _mvnormal(names: tuple[str, ...], label: str, mean: object, cov: object) -> Distribution:
    size = len(names)
    mean_array = _real_array(label, "mean", mean, 1)
    if mean_array.shape != (size,):
        raise SweepConfigError(
            f"{label}: 'mvnormal' mean has {mean_array.size} entries for {size} field paths; "
            "give one mean per field path, in key order"
        )
    cov_array = _real_array(label, "covariance", cov, 2)
    if cov_array.shape != (size, size):
        raise SweepConfigError(
            f"{label}: 'mvnormal' covariance has shape {cov_array.shape}, but {size} field "
            f"paths need a square {size} x {size} matrix, e.g. {_EXAMPLES['mvnormal']}"
        )
    scale = float(np.max(np.abs(cov_array)))
    asymmetry = float(np.max(np.abs(cov_array - cov_array.T)))
    if asymmetry > 1e-10 * scale:
        raise SweepConfigError(
            f"{label}: 'mvnormal' covariance {cov_array.tolist()!r} is not symmetric "
            f"(largest |C - C.T| is {asymmetry:.3g}); make cov[i][j] == cov[j][i]"
        )
    eigenvalues, eigenvectors = np.linalg.eigh(cov_array)
    smallest = float(eigenvalues.min())
    if smallest < -1e-12 * float(np.max(np.abs(eigenvalues))):
        raise SweepConfigError(
            f"{label}: 'mvnormal' covariance {cov_array.tolist()!r} is not positive "
            f"semi-definite (smallest eigenvalue {smallest:.6g}); a covariance needs "
            "|cov[i][j]| <= sqrt(cov[i][i] * cov[j][j]) and no negative eigenvalues, e.g. "
            "[[1.0, 0.5], [0.5, 1.0]]"
        )
    try:
        factor = np.linalg.cholesky(cov_array)
    except np.linalg.LinAlgError:
        factor = eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))
    return _MultivariateNormal(names=names, mean=mean_array, cov=cov_array, factor=factor)


def _real_array(label: str, what: str, value: object, ndim: int) -> FloatArray:
    shape = "a list of numbers" if ndim == 1 else "a list of lists of numbers"
    try:
        array = np.asarray(value)
    except (TypeError, ValueError):
        array = np.asarray(None)
    if array.dtype.kind not in "iuf" or array.ndim != ndim:
        raise SweepConfigError(
            f"{label}: 'mvnormal' {what} {value!r} must be {shape}, e.g. {_EXAMPLES['mvnormal']}"
        )
    floats = array.astype(np.float64)
    if not np.all(np.isfinite(floats)):
        raise SweepConfigError(
            f"{label}: 'mvnormal' {what} {value!r} holds non-finite numbers; "
            "give finite real numbers"
        )
    return floats
