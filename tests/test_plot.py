"""gmat_sweep.plot: every figure renders to PNG (Agg) from a real sweep with failed runs."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from gmat_sweep import Sweep, plot, sweep
from gmat_sweep.errors import SweepConfigError

pytestmark = pytest.mark.slow

GRID = {"Sat.SMA": [6000, 7000, 7050, 7100], "Sat.Cd": [2.0, 2.4]}
"""8 runs; the two at Sat.SMA = 6000 (inside the Earth) fail in GMAT: run_ids 0 and 4."""


@pytest.fixture(autouse=True)
def _agg(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MPLBACKEND", "Agg")


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory, leo_basic: Path) -> Sweep:
    out = tmp_path_factory.mktemp("plot") / "study"
    return sweep(leo_basic, GRID, out=out, progress=False, backend="local")


def _png(figure: object) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})  # type: ignore[attr-defined]
    data = buffer.getvalue()
    assert data.startswith(b"\x89PNG")
    return data


def test_study_has_the_failed_runs(study: Sweep) -> None:
    assert sorted(study.failed_run_ids) == [0, 4]


def test_fan_draws_every_ok_run_and_names_the_failed(study: Sweep) -> None:
    figure = plot.fan(study, "Sat.Earth.SMA")
    axes = figure.axes[0]
    assert "6 runs; 2 failed (run_id 0, 4)" in axes.get_title()
    runs = axes.collections[0].get_segments()
    assert len(runs) == 6  # every ok run, thin
    assert len(axes.lines) == 3  # one bold line per quantile
    assert axes.get_xlabel() == "elapsed time [s]"
    assert all(run[0, 0] == 0.0 for run in runs)
    _png(figure)


def test_fan_band_is_the_median_of_the_runs(study: Sweep) -> None:
    figure = plot.fan(study, "Sat.Earth.SMA", quantiles=(0.0, 0.5, 1.0))
    lines = figure.axes[0].lines
    lowest, highest = lines[0].get_ydata(), lines[-1].get_ydata()
    starts = sorted(run[0, 1] for run in figure.axes[0].collections[0].get_segments())
    assert lowest[0] == pytest.approx(starts[0])
    assert highest[0] == pytest.approx(starts[-1])


def test_fan_refuses_a_bad_quantile_and_an_unknown_column(study: Sweep) -> None:
    with pytest.raises(SweepConfigError, match=r"quantiles=\(1\.5,\)"):
        plot.fan(study, "Sat.Earth.SMA", quantiles=(1.5,))
    with pytest.raises(SweepConfigError, match=r"Sat\.Nope"):
        plot.fan(study, "Sat.Nope")


def test_corner_marks_failed_runs_in_parameter_panels(study: Sweep) -> None:
    figure = plot.corner(study, ["Sat.Earth.SMA"])
    visible = [axes for axes in figure.axes if axes.get_visible()]
    assert len(visible) == 6  # 3 variables: 3 histograms and 3 pair panels
    assert "2 failed" in figure.get_suptitle()
    red = [
        axes
        for axes in visible
        for collection in axes.collections
        if len(collection.get_offsets()) == 2 and collection.get_facecolor()[0][0] > 0.8
    ]
    assert len(red) == 1  # only the Sat.Cd-Sat.SMA panel can place failed runs
    _png(figure)


def test_corner_bins_many_runs(study: Sweep, monkeypatch: pytest.MonkeyPatch) -> None:
    from matplotlib.collections import PolyCollection

    monkeypatch.setattr(plot, "HEXBIN_RUNS", 3)
    figure = plot.corner(study, ["Sat.Earth.SMA"])
    assert any(isinstance(c, PolyCollection) for a in figure.axes for c in a.collections)
    _png(figure)


def test_hist_draws_the_wilks_bound_or_says_how_many_runs_it_needs(study: Sweep) -> None:
    figure = plot.hist(study, "Sat.Earth.SMA", bound=(0.5, 0.5))
    axes = figure.axes[0]
    labels = axes.get_legend_handles_labels()[1]
    assert labels[0].startswith("0.5/0.5 upper bound: ")
    assert "2 failed" in axes.get_title()
    _png(figure)
    labels = plot.hist(study, "Sat.Earth.SMA", bound=(0.95, 0.95)).axes[0]
    assert labels.get_legend_handles_labels()[1] == ["0.95/0.95 upper bound: needs >= 59 runs"]
    with pytest.raises(SweepConfigError, match=r"bound=\(95, 0\.95\)"):
        plot.hist(study, "Sat.Earth.SMA", bound=(95, 0.95))


def test_wilks_order_statistics() -> None:
    assert plot.wilks_runs(0.95, 0.95) == 59
    assert plot.wilks_upper_index(59, 0.95, 0.95) == 59
    assert plot.wilks_upper_index(58, 0.95, 0.95) is None
    assert plot.wilks_upper_index(93, 0.95, 0.95) == 92  # second order: 93 runs
    assert plot.wilks_upper_index(0, 0.95, 0.95) is None


def test_ellipse_gives_the_fraction_inside(study: Sweep) -> None:
    figure = plot.ellipse(study, "Sat.EarthMJ2000Eq.X", "Sat.EarthMJ2000Eq.Z", sigmas=(1, 3))
    labels = figure.axes[0].get_legend_handles_labels()[1]
    assert labels[0] == "6 runs"
    assert labels[1].startswith("1 sigma: ") and labels[1].endswith("% inside")
    assert labels[2] == "3 sigma: 100.0% inside"
    _png(figure)
    with pytest.raises(SweepConfigError, match="sigmas"):
        plot.ellipse(study, "Sat.EarthMJ2000Eq.X", "Sat.EarthMJ2000Eq.Z", sigmas=(0,))


def test_status_on_a_partial_sweep(study: Sweep, tmp_path: Path, leo_basic: Path) -> None:
    figure = plot.status(study)
    assert figure.axes[0].get_legend_handles_labels()[1] == ["ok: 6", "failed: 2"]
    _png(figure)
    # A sweep interrupted after its first five records: the rest are "missing".
    partial = tmp_path / "partial"
    partial.mkdir()
    lines = (Path(study.manifest_path)).read_text(encoding="utf-8").splitlines(keepends=True)
    (partial / "manifest.jsonl").write_text("".join(lines[:6]), encoding="utf-8")
    for entry in study.manifest.entries:
        source = Path(study.output_dir) / f"run-{entry.run_id:06d}"
        (partial / source.name).symlink_to(source)
    rebuilt = Sweep.from_manifest(partial / "manifest.jsonl", leo_basic, backend=None)
    labels = plot.status(rebuilt).axes[0].get_legend_handles_labels()[1]
    assert labels[-1] == "missing: 3"
    _png(plot.fan(rebuilt, "Sat.Earth.SMA"))


def test_every_figure_draws_a_sweep_where_every_run_failed(tmp_path: Path, leo_basic: Path) -> None:
    """No ok run wrote the report, so its columns are unknown: the figures name the failed."""
    failed = sweep(leo_basic, {"Sat.SMA": [6000, 6100]}, out=tmp_path / "s", progress=False)
    assert sorted(failed.failed_run_ids) == [0, 1]
    figures = [
        plot.fan(failed, "Sat.Earth.SMA"),
        plot.corner(failed, ["Sat.Earth.SMA"]),
        plot.hist(failed, "Sat.Earth.SMA", bound=(0.9, 0.9)),
        plot.ellipse(failed, "Sat.Earth.SMA", "Sat.Earth.ECC"),
        plot.status(failed),
    ]
    for figure in figures[:4]:
        title = figure.axes[0].get_title() or figure.get_suptitle()
        assert "2 failed (run_id 0, 1)" in title, title
        _png(figure)
    corner = figures[1].axes[2]  # Sat.Earth.SMA against Sat.SMA: empty, no run has an outcome
    assert (corner.get_xlabel(), corner.get_ylabel()) == ("Sat.SMA", "Sat.Earth.SMA")


def test_figures_are_reproducible(study: Sweep) -> None:
    import matplotlib

    assert _png(plot.hist(study, "Sat.Earth.SMA")) == _png(plot.hist(study, "Sat.Earth.SMA"))
    first = _png(plot.status(study))
    assert _png(plot.status(study)) == first
    with matplotlib.rc_context({"axes.facecolor": "black", "font.size": 20.0}):
        figure = plot.status(study)  # the caller's rcParams do not leak into the figure
    assert _png(figure) == first


def test_missing_matplotlib_names_the_extra(study: Sweep, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"pip install matplotlib"):
        plot.status(study)
