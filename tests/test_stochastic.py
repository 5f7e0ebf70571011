"""Monte Carlo and Latin hypercube over real GMAT runs: reproducible, validated, extendable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from scipy import stats

from gmat_sweep import Sweep, latin_hypercube, monte_carlo, open_sweep
from gmat_sweep.backends.local import LocalPool
from gmat_sweep.errors import SweepConfigError
from gmat_sweep.manifest import Manifest

pytestmark = pytest.mark.slow

PERTURB: dict[Any, Any] = {
    "Sat.SMA": ("normal", 6900.0, 5.0),
    "Sat.Cd": ("uniform", 2.0, 2.4),
}


def _drawn(result: Sweep, column: str) -> list[float]:
    frame = result.to_pandas()
    return frame.groupby(level="run_id")[column].first().tolist()


def test_monte_carlo_is_bit_reproducible(leo_basic: Path, tmp_path: Path, pool: LocalPool) -> None:
    runs = [
        monte_carlo(
            leo_basic,
            n=8,
            perturb=PERTURB,
            seed=42,
            backend=pool,
            out=tmp_path / f"mc{i}",
            progress=False,
        )
        for i in range(2)
    ]
    a, b = (r.to_pandas() for r in runs)
    pd.testing.assert_frame_equal(a, b)
    assert a.index.get_level_values("run_id").nunique() == 8
    assert runs[0].seed == 42
    header = Manifest.load(tmp_path / "mc0" / "manifest.jsonl")
    assert header.sweep_seed == 42
    assert header.parameter_spec["_kind"] == "monte_carlo"


def test_adding_a_parameter_keeps_the_others_draws(
    leo_basic: Path, tmp_path: Path, pool: LocalPool
) -> None:
    one = monte_carlo(
        leo_basic,
        n=5,
        perturb={"Sat.SMA": PERTURB["Sat.SMA"]},
        seed=7,
        backend=pool,
        out=tmp_path / "one",
        progress=False,
    )
    two = monte_carlo(
        leo_basic,
        n=5,
        perturb=PERTURB,
        seed=7,
        backend=pool,
        out=tmp_path / "two",
        progress=False,
    )
    assert _drawn(one, "Sat.SMA") == _drawn(two, "Sat.SMA")


def test_seed_none_is_recorded_and_reproduces(
    leo_basic: Path, tmp_path: Path, pool: LocalPool
) -> None:
    first = monte_carlo(
        leo_basic, n=4, perturb=PERTURB, backend=pool, out=tmp_path / "a", progress=False
    )
    assert isinstance(first.seed, int)
    assert Manifest.load(tmp_path / "a" / "manifest.jsonl").sweep_seed == first.seed
    again = monte_carlo(
        leo_basic,
        n=4,
        perturb=PERTURB,
        seed=first.seed,
        backend=pool,
        out=tmp_path / "b",
        progress=False,
    )
    pd.testing.assert_frame_equal(first.to_pandas(), again.to_pandas())


def test_latin_hypercube_is_bit_reproducible_and_stratified(
    leo_basic: Path, tmp_path: Path, pool: LocalPool
) -> None:
    n = 6
    runs = [
        latin_hypercube(
            leo_basic,
            n=n,
            perturb=PERTURB,
            seed=3,
            backend=pool,
            out=tmp_path / f"l{i}",
            progress=False,
        )
        for i in range(2)
    ]
    pd.testing.assert_frame_equal(runs[0].to_pandas(), runs[1].to_pandas())
    cd = _drawn(runs[0], "Sat.Cd")
    bins = sorted(int((value - 2.0) / 0.4 * n) for value in cd)
    assert bins == list(range(n))  # one sample in each equal-probability stratum


def test_correlated_dispersion_runs(leo_basic: Path, tmp_path: Path, pool: LocalPool) -> None:
    perturb = {
        ("Sat.SMA", "Sat.INC"): ("mvnormal", [6900.0, 51.6], [[25.0, 0.4], [0.4, 0.01]]),
        "Sat.Cr": stats.uniform(1.6, 0.4),
    }
    result = monte_carlo(
        leo_basic,
        n=4,
        perturb=perturb,
        seed=1,
        backend=pool,
        out=tmp_path / "mv",
        progress=False,
    )
    frame = result.to_pandas()
    assert {"Sat.SMA", "Sat.INC", "Sat.Cr"} <= set(frame.columns)
    assert (frame["__status"] == "ok").all()


def test_extend_equals_the_larger_sweep(leo_basic: Path, tmp_path: Path, pool: LocalPool) -> None:
    grown = monte_carlo(
        leo_basic,
        n=4,
        perturb=PERTURB,
        seed=11,
        backend=pool,
        out=tmp_path / "g",
        progress=False,
    )
    grown.extend(3, backend=pool)
    whole = monte_carlo(
        leo_basic,
        n=7,
        perturb=PERTURB,
        seed=11,
        backend=pool,
        out=tmp_path / "w",
        progress=False,
    )
    pd.testing.assert_frame_equal(grown.to_pandas(), whole.to_pandas())
    reloaded = Manifest.load(tmp_path / "g" / "manifest.jsonl")
    assert reloaded.run_count == 7
    assert reloaded.parameter_spec["n"] == 7


def test_latin_hypercube_cannot_be_extended(
    leo_basic: Path, tmp_path: Path, pool: LocalPool
) -> None:
    result = latin_hypercube(
        leo_basic,
        n=2,
        perturb=PERTURB,
        seed=1,
        backend=pool,
        out=tmp_path / "l",
        progress=False,
    )
    with pytest.raises(SweepConfigError, match="stratified"):
        result.extend(2, backend=pool)


def test_resumed_monte_carlo_rebuilds_the_same_runs(
    leo_basic: Path, tmp_path: Path, pool: LocalPool
) -> None:
    out = tmp_path / "r"
    full = monte_carlo(
        leo_basic, n=5, perturb=PERTURB, seed=5, backend=pool, out=out, progress=False
    )
    expected = full.to_pandas()
    path = out / "manifest.jsonl"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:3]))  # keep 2 runs
    resumed = Sweep.from_manifest(path, leo_basic, backend=pool, progress=False).resume()
    pd.testing.assert_frame_equal(resumed.to_pandas(), expected)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": 3, "perturb": {}}, "empty"),
        ({"n": 0, "perturb": PERTURB}, "n"),
        ({"n": 3, "perturb": {"Sat.SMA": ("gaussian", 1.0, 2.0)}}, "unknown distribution"),
        ({"n": 3, "perturb": {"Sat.SMA": ("normal", 7000.0, -1.0)}}, "sigma"),
        ({"n": 3, "perturb": {"Sat.SMA": ("uniform", 2.0, 1.0)}}, "lo"),
        ({"n": 3, "perturb": {"Sat.SMA": stats.norm}}, "frozen"),
        ({"n": 3, "perturb": {"Sat.SMA": stats.poisson(3)}}, "discrete"),
        ({"n": 3, "perturb": {"Sat.SMAX": ("normal", 7000.0, 1.0)}}, "did you mean: SMA"),
    ],
)
@pytest.mark.parametrize("entry", [monte_carlo, latin_hypercube])
def test_invalid_inputs_are_rejected_before_any_run(
    entry: Any, kwargs: dict[str, Any], message: str, leo_basic: Path, tmp_path: Path
) -> None:
    out = tmp_path / "never"
    with pytest.raises(SweepConfigError, match=message):
        entry(leo_basic, out=out, seed=1, progress=False, **kwargs)
    assert not out.exists()


def test_extending_a_reopened_sweep_refuses_an_edited_script(
    leo_basic: Path, tmp_path: Path, pool: LocalPool
) -> None:
    script = tmp_path / "mission.script"
    script.write_text(leo_basic.read_text())
    monte_carlo(
        script, n=2, perturb=PERTURB, seed=3, backend=pool, out=tmp_path / "m", progress=False
    )
    script.write_text(leo_basic.read_text() + "% an edit after the sweep\n")
    reopened = open_sweep(tmp_path / "m")
    with pytest.raises(SweepConfigError, match="allow_script_drift"):
        reopened.extend(1, backend=pool)
    assert Manifest.load(tmp_path / "m" / "manifest.jsonl").run_count == 2  # nothing was added
