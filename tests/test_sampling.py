"""Tests for Monte Carlo and Latin-hypercube row generation."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

from gmat_sweep.distributions import DistSpec, ParamName
from gmat_sweep.errors import SweepConfigError
from gmat_sweep.sampling import (
    describe_perturb,
    latin_hypercube_rows,
    monte_carlo_rows,
    perturb_from_description,
)

Sampler = Callable[[dict[ParamName, DistSpec], int, int], list[dict[str, float]]]
SAMPLERS = [monte_carlo_rows, latin_hypercube_rows]

COV = [[4.0, 1.0], [1.0, 9.0]]
PERTURB: dict[ParamName, DistSpec] = {
    "Sat.SMA": ("normal", 7000, 5),
    "Sat.ECC": ("uniform", 0.0, 0.01),
    "Sat.Cd": ("lognormal", 0.8, 0.1),
    "Sat.INC": scipy.stats.truncnorm(-2, 2, loc=28.5, scale=0.1),
    ("Sat.X", "Sat.Y"): ("mvnormal", [1.0, -2.0], COV),
}
FIELDS = ["Sat.Cd", "Sat.ECC", "Sat.INC", "Sat.SMA", "Sat.X", "Sat.Y"]

seeds = st.integers(0, 2**63 - 1)


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_rows_shape_types_and_order(sampler: Sampler) -> None:
    rows = sampler(PERTURB, 25, 3)
    assert len(rows) == 25
    for row in rows:
        assert list(row) == FIELDS
        assert all(type(value) is float and np.isfinite(value) for value in row.values())
        assert -0.2 + 28.5 <= row["Sat.INC"] <= 28.5 + 0.2
        assert 0.0 <= row["Sat.ECC"] <= 0.01
        assert row["Sat.Cd"] > 0


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_bit_reproducible(sampler: Sampler) -> None:
    first = sampler(PERTURB, 40, 123)
    assert sampler(dict(reversed(list(PERTURB.items()))), 40, 123) == first
    assert sampler(PERTURB, 40, 124) != first


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_n_equal_one(sampler: Sampler) -> None:
    (row,) = sampler({"a": ("uniform", 0, 1)}, 1, 0)
    assert 0.0 <= row["a"] <= 1.0


def test_monte_carlo_pinned_value() -> None:
    # Catches a change of stream derivation or sampling method.
    (row,) = monte_carlo_rows({"Sat.SMA": ("uniform", 0.0, 1.0)}, 1, 42)
    rng = np.random.default_rng(4244385656584637922)
    assert row["Sat.SMA"] == rng.random()


def test_monte_carlo_adding_a_key_keeps_other_draws() -> None:
    base = monte_carlo_rows({"Sat.SMA": ("normal", 7000, 5)}, 30, 9)
    more = monte_carlo_rows(PERTURB, 30, 9)
    assert [row["Sat.SMA"] for row in more] == [row["Sat.SMA"] for row in base]
    correlated = monte_carlo_rows({("Sat.X", "Sat.Y"): ("mvnormal", [1.0, -2.0], COV)}, 30, 9)
    assert [(r["Sat.X"], r["Sat.Y"]) for r in more] == [
        (r["Sat.X"], r["Sat.Y"]) for r in correlated
    ]


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 40), m=st.integers(0, 40), seed=seeds)
def test_monte_carlo_extension_is_a_prefix(n: int, m: int, seed: int) -> None:
    assert monte_carlo_rows(PERTURB, n + m, seed)[:n] == monte_carlo_rows(PERTURB, n, seed)


def test_monte_carlo_statistics() -> None:
    rows = monte_carlo_rows(PERTURB, 20_000, 1)
    sma = np.array([row["Sat.SMA"] for row in rows])
    assert abs(sma.mean() - 7000) < 0.2
    assert abs(sma.std() - 5) < 0.2
    cd = np.log([row["Sat.Cd"] for row in rows])
    assert abs(cd.mean() - 0.8) < 0.01
    assert abs(cd.std() - 0.1) < 0.01
    xy = np.array([[row["Sat.X"], row["Sat.Y"]] for row in rows])
    np.testing.assert_allclose(np.cov(xy, rowvar=False), COV, rtol=0.05, atol=0.1)


def _bins(u: np.ndarray, n: int) -> list[int]:
    return sorted(np.minimum(np.floor(u * n), n - 1).astype(int).tolist())


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 60),
    seed=seeds,
    bounds=st.lists(st.tuples(st.floats(-1e3, 1e3), st.floats(0.5, 1e3)), min_size=1, max_size=4),
)
def test_latin_hypercube_stratifies_uniform_axes(
    n: int, seed: int, bounds: list[tuple[float, float]]
) -> None:
    perturb: dict[ParamName, DistSpec] = {
        f"f{i}": ("uniform", lo, lo + width) for i, (lo, width) in enumerate(bounds)
    }
    rows = latin_hypercube_rows(perturb, n, seed)
    for i, (lo, width) in enumerate(bounds):
        u = (np.array([row[f"f{i}"] for row in rows]) - lo) / width
        assert _bins(u, n) == list(range(n))


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 60), seed=seeds)
def test_latin_hypercube_stratifies_in_probability(n: int, seed: int) -> None:
    rows = latin_hypercube_rows(PERTURB, n, seed)
    for field in ["Sat.SMA", "Sat.Cd", "Sat.INC"]:
        spec = PERTURB[field]
        rv = (
            scipy.stats.norm(7000, 5)
            if field == "Sat.SMA"
            else scipy.stats.lognorm(s=0.1, scale=np.exp(0.8))
            if field == "Sat.Cd"
            else spec
        )
        u = rv.cdf(np.array([row[field] for row in rows]))  # type: ignore[union-attr]
        assert _bins(u, n) == list(range(n))
    # mvnormal: stratified on the independent normal scores z = L^-1 (x - mean).
    xy = np.array([[row["Sat.X"], row["Sat.Y"]] for row in rows]) - [1.0, -2.0]
    scores = np.linalg.solve(np.linalg.cholesky(COV), xy.T).T
    for axis in range(2):
        assert _bins(scipy.stats.norm.cdf(scores[:, axis]), n) == list(range(n))


def test_describe_perturb_is_json_plain_and_keyed_canonically() -> None:
    description = describe_perturb(PERTURB)
    assert list(description) == ["Sat.Cd", "Sat.ECC", "Sat.INC", "Sat.SMA", "Sat.X|Sat.Y"]
    assert description["Sat.X|Sat.Y"] == {"dist": "mvnormal", "mean": [1.0, -2.0], "cov": COV}
    assert description["Sat.SMA"] == {"dist": "normal", "params": [7000.0, 5.0]}
    assert json.loads(json.dumps(description, allow_nan=False)) == description


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_description_rebuilds_identical_rows(sampler: Sampler) -> None:
    stored = json.loads(json.dumps(describe_perturb(PERTURB)))
    rebuilt = perturb_from_description(stored)
    assert ("Sat.X", "Sat.Y") in rebuilt
    assert describe_perturb(rebuilt) == describe_perturb(PERTURB)
    assert sampler(rebuilt, 50, 77) == sampler(PERTURB, 50, 77)


def test_one_name_mvnormal_round_trips() -> None:
    perturb: dict[ParamName, DistSpec] = {("Sat.X",): ("mvnormal", [0.0], [[2.0]])}
    rebuilt = perturb_from_description(describe_perturb(perturb))
    assert list(rebuilt) == [("Sat.X",)]
    assert monte_carlo_rows(rebuilt, 5, 1) == monte_carlo_rows(perturb, 5, 1)


@pytest.mark.parametrize(
    ("description", "fragment"),
    [
        ([("a", {})], "perturb description must be a mapping"),
        ({"a": ("normal", 0, 1)}, "perturb description entry 'a'"),
        ({1: {"dist": "normal", "params": [0, 1]}}, "perturb description entry 1"),
    ],
)
def test_malformed_description(description: Any, fragment: str) -> None:
    with pytest.raises(SweepConfigError, match=fragment):
        perturb_from_description(description)


@pytest.mark.parametrize("sampler", SAMPLERS)
@pytest.mark.parametrize(
    ("perturb", "n", "seed", "fragments"),
    [
        ({}, 5, 0, ["perturb is empty", "{'Sat.SMA': ('normal', 7000.0, 5.0)}"]),
        ([("a", ("normal", 0, 1))], 5, 0, ["perturb must be a mapping", "got list"]),
        ({"a": ("normal", 0, 1)}, 0, 0, ["n=0 runs is too few", "integer >= 1"]),
        ({"a": ("normal", 0, 1)}, -3, 0, ["n=-3 runs is too few"]),
        ({"a": ("normal", 0, 1)}, 2.0, 0, ["n=2.0 of type float is not an integer"]),
        ({"a": ("normal", 0, 1)}, True, 0, ["n=True is a bool"]),
        ({"a": ("normal", 0, 1)}, "3", 0, ["n='3' of type str is not an integer"]),
        ({"a": ("normal", 0, 1)}, 3, -1, ["seed -1 is negative", "non-negative integer"]),
        ({"a": ("normal", 0, 1)}, 3, 1.5, ["seed 1.5 of type float is not an integer"]),
        ({"a": ("normal", 0, 1)}, 3, None, ["seed None of type NoneType"]),
        ({"a": ("normal", 0, 1)}, 3, False, ["seed False is a bool"]),
        ({"a": ("gaussian", 0, 1)}, 3, 0, ["perturb['a']: unknown distribution 'gaussian'"]),
        (
            {"Sat.X": ("normal", 0, 1), ("Sat.X", "Sat.Y"): ("mvnormal", [0, 0], COV)},
            3,
            0,
            ["perturb sets field 'Sat.X' twice", "'Sat.X|Sat.Y'"],
        ),
    ],
)
def test_sampler_errors(
    sampler: Sampler, perturb: Any, n: Any, seed: Any, fragments: list[str]
) -> None:
    with pytest.raises(SweepConfigError) as info:
        sampler(perturb, n, seed)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_numpy_integers_are_accepted() -> None:
    perturb: dict[ParamName, DistSpec] = {"a": ("normal", 0, 1)}
    assert monte_carlo_rows(perturb, np.int64(4), np.uint32(5)) == monte_carlo_rows(perturb, 4, 5)  # type: ignore[arg-type]
