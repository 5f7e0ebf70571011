"""Tests for grid expansion, sample tables and run-spec construction."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gmat_sweep.errors import SweepConfigError
from gmat_sweep.grid import (
    expand_grid_to_run_specs,
    full_factorial,
    materialise_grid,
    rows_to_run_specs,
    run_dir_name,
    samples_to_rows,
)

small_grids = st.dictionaries(
    keys=st.text(alphabet="abcXY.", min_size=1, max_size=4),
    values=st.lists(st.integers(-5, 5), min_size=1, max_size=3),
    max_size=4,
)


def test_reference_example_order() -> None:
    got = list(full_factorial({"b": [10, 20, 30], "a": [1, 2]}))
    assert got == [
        {"a": 1, "b": 10},
        {"a": 1, "b": 20},
        {"a": 1, "b": 30},
        {"a": 2, "b": 10},
        {"a": 2, "b": 20},
        {"a": 2, "b": 30},
    ]
    assert all(list(row) == ["a", "b"] for row in got)


@given(small_grids)
def test_order_is_product_over_sorted_keys(grid: dict[str, list[int]]) -> None:
    keys = sorted(grid)
    combos = itertools.product(*(grid[key] for key in keys))
    expected = [dict(zip(keys, combo, strict=True)) for combo in combos]
    got = list(full_factorial(grid))
    assert got == expected
    assert [list(row) for row in got] == [keys] * len(got)


@given(small_grids)
def test_run_ids_are_sequential_and_follow_grid_order(grid: dict[str, list[int]]) -> None:
    specs = expand_grid_to_run_specs(grid, "m.script", "out")
    assert [spec.run_id for spec in specs] == list(range(len(specs)))
    assert [spec.overrides for spec in specs] == list(full_factorial(grid))


def test_empty_grid_gives_one_empty_run() -> None:
    assert list(full_factorial({})) == [{}]
    (spec,) = expand_grid_to_run_specs({}, "m.script", "out")
    assert spec.overrides == {}
    assert spec.run_id == 0


def test_generators_are_materialised_once() -> None:
    consumed = []

    def values() -> Iterator[int]:
        for value in (1, 2):
            consumed.append(value)
            yield value

    got = list(full_factorial({"a": values(), "b": (x for x in "xy")}))
    assert got == [{"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 2, "b": "x"}, {"a": 2, "b": "y"}]
    assert consumed == [1, 2]


def test_validation_happens_at_call_time() -> None:
    with pytest.raises(SweepConfigError, match=r"grid\['b'\] has no values"):
        full_factorial({"a": [1], "b": []})


def test_numpy_values_are_kept_as_given() -> None:
    values = np.array([7000.0, 7100.0])
    got = list(full_factorial({"Sat.SMA": values}))
    assert isinstance(got[0]["Sat.SMA"], np.float64)
    assert [row["Sat.SMA"] for row in got] == [7000.0, 7100.0]


@pytest.mark.parametrize(
    ("grid", "fragments"),
    [
        ({1: [1]}, ["grid key 1", "non-empty strings", "'Sat.SMA'"]),
        ({"": [1]}, ["grid key ''", "non-empty strings"]),
        ({"Sat.SMA": []}, ["grid['Sat.SMA'] has no values", "at least one value"]),
        ({"Sat.SMA": iter([])}, ["grid['Sat.SMA'] has no values"]),
        ({"Sat.SMA": "7000"}, ["grid['Sat.SMA'] is the string '7000'", "[7000, 7100]"]),
        ({"Sat.SMA": b"70"}, ["grid['Sat.SMA'] is the string b'70'"]),
        ({"Sat.SMA": 7000}, ["grid['Sat.SMA'] is 7000", "not iterable", "[7000]"]),
        ({"Sat.SMA": {7000, 7100}}, ["grid['Sat.SMA'] is a set", "sorted"]),
        (
            {"Sat.SMA": {"low": 7000, "high": 7100}},
            ["grid['Sat.SMA'] is a dict", "keys", "list(...values())"],
        ),
    ],
)
def test_grid_errors(grid: dict[Any, Any], fragments: list[str]) -> None:
    with pytest.raises(SweepConfigError) as info:
        full_factorial(grid)
    for fragment in fragments:
        assert fragment in str(info.value)
    with pytest.raises(SweepConfigError):
        expand_grid_to_run_specs(grid, "m.script", "out")


def test_materialise_grid() -> None:
    materialised = materialise_grid({"b": (x for x in [1, 2]), "a": range(2)})
    assert materialised == {"a": [0, 1], "b": [1, 2]}
    assert list(materialised) == ["a", "b"]
    assert list(full_factorial(materialised)) == list(full_factorial({"b": [1, 2], "a": [0, 1]}))
    with pytest.raises(SweepConfigError, match="is the string"):
        materialise_grid({"a": "12"})


def test_grid_must_be_a_mapping() -> None:
    with pytest.raises(SweepConfigError, match="grid must be a mapping"):
        full_factorial([("a", [1])])  # type: ignore[arg-type]


def test_run_dir_name() -> None:
    assert run_dir_name(0) == "run-000000"
    assert run_dir_name(42) == "run-000042"
    assert run_dir_name(999_999) == "run-999999"
    assert run_dir_name(1_000_000) == "run-1000000"


def test_run_specs_local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    specs = expand_grid_to_run_specs({"Sat.SMA": [7000, 7100]}, "m.script", "out")
    assert [spec.script_path for spec in specs] == [Path("m.script")] * 2  # as the caller gave it
    absolute = expand_grid_to_run_specs({"Sat.SMA": [7000]}, tmp_path / "m.script", "out")
    assert absolute[0].script_path == tmp_path / "m.script"
    assert rows_to_run_specs([{}], "sub/m.script", "out")[0].script_path == Path("sub/m.script")
    assert [spec.output_dir for spec in specs] == [Path("out/run-000000"), Path("out/run-000001")]
    assert all(spec.seed is None and spec.run_options == {} for spec in specs)
    assert [spec.overrides for spec in specs] == [{"Sat.SMA": 7000}, {"Sat.SMA": 7100}]


@pytest.mark.parametrize("base", ["s3://bucket/study", "s3://bucket/study/"])
def test_run_specs_url(base: str) -> None:
    specs = expand_grid_to_run_specs({"a": [1, 2]}, "m.script", base)
    assert [spec.output_dir for spec in specs] == [
        "s3://bucket/study/run-000000",
        "s3://bucket/study/run-000001",
    ]


def test_run_specs_file_url_is_a_local_path() -> None:
    (spec,) = expand_grid_to_run_specs({"a": [1]}, "m.script", "file:///tmp/study")
    assert spec.output_dir == Path("/tmp/study/run-000000")


def test_rows_to_run_specs_seeds_and_copies() -> None:
    rows = [{"a": 1.0}, {"a": 2.0}]
    specs = rows_to_run_specs(rows, "m.script", "out", seeds=[11, None])
    assert [spec.seed for spec in specs] == [11, None]
    specs[0].overrides["a"] = 99.0
    assert rows[0] == {"a": 1.0}


def test_rows_to_run_specs_seed_count_mismatch() -> None:
    with pytest.raises(SweepConfigError, match="got 1 seeds for 2 runs"):
        rows_to_run_specs([{"a": 1}, {"a": 2}], "m.script", "out", seeds=[1])


def test_samples_from_dataframe() -> None:
    frame = pd.DataFrame({"Sat.SMA": [7000.0, 7100.0], "Sat.ECC": [0.0, 0.01]}, index=[5, 3])
    assert samples_to_rows(frame) == [
        {"Sat.SMA": 7000.0, "Sat.ECC": 0.0},
        {"Sat.SMA": 7100.0, "Sat.ECC": 0.01},
    ]


def test_samples_from_dicts_keep_first_row_key_order() -> None:
    rows = samples_to_rows([{"b": 1, "a": 2}, {"a": 3, "b": 4}])
    assert rows == [{"b": 1, "a": 2}, {"b": 4, "a": 3}]
    assert [list(row) for row in rows] == [["b", "a"], ["b", "a"]]


def test_samples_from_generator() -> None:
    assert samples_to_rows({"a": float(i)} for i in range(3)) == [
        {"a": 0.0},
        {"a": 1.0},
        {"a": 2.0},
    ]


@pytest.mark.parametrize(
    ("samples", "fragments"),
    [
        ([], ["no rows"]),
        (pd.DataFrame({"a": []}), ["no rows"]),
        (pd.DataFrame(index=[0, 1]), ["no columns"]),
        ([{}], ["no fields"]),
        ([{1: 2.0}], ["samples field 1", "non-empty strings"]),
        (pd.DataFrame({0: [1.0]}), ["samples field 0"]),
        (pd.DataFrame([[1.0, 2.0]], columns=["a", "a"]), ["repeats the columns 'a'"]),
        ([{"a": 1}, [("a", 2)]], ["samples[1] is list", "mapping"]),
        (
            [{"a": 1, "b": 2}, {"a": 1, "b": 2}, {"a": 1, "c": 3}],
            ["samples[2] has different fields", "missing: 'b'", "extra: 'c'"],
        ),
        ([{"a": 1}, {"a": 1, "b": 2}], ["samples[1]", "missing: none", "extra: 'b'"]),
        ({"a": [1, 2]}, ["samples is a mapping", "pandas.DataFrame(samples)"]),
        ("a", ["samples is str", "list of dicts"]),
        (7, ["samples is int"]),
    ],
)
def test_samples_errors(samples: Any, fragments: list[str]) -> None:
    with pytest.raises(SweepConfigError) as info:
        samples_to_rows(samples)
    for fragment in fragments:
        assert fragment in str(info.value)
