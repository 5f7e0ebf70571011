"""Missions saved from GMAT's GUI, with loops, two spacecraft and ephemerides of every format.

``loop_reports`` writes a row per pass of a ``For`` and of a ``While`` loop
with ``Report`` commands, one of its ReportFiles saved with
``WriteHeaders = false``. ``gui_pair`` propagates two spacecraft together,
one in Keplerian elements with a Gregorian epoch, the other in Equinoctial
elements of an ecliptic frame with a TAIModJulian epoch, beside an
``OrbitView``, an ``XYPlot``, a ``Write`` command, an STK and an OEM
ephemeris and a Code-500 one switched off.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest

from gmat_sweep import SweepConfigError, sweep


@pytest.fixture(scope="module")
def loop_reports(data_dir: Path) -> Path:
    return data_dir / "loop_reports.script"


@pytest.fixture(scope="module")
def gui_pair(data_dir: Path) -> Path:
    return data_dir / "gui_pair.script"


def test_a_report_saved_without_headers_keeps_its_columns_and_first_row(
    loop_reports: Path, tmp_path: Path
) -> None:
    # Climb has WriteHeaders = false: read as written, its first row became column names.
    study = sweep(loop_reports, {"GoalSMA.Value": [7010, 7030]}, out=tmp_path / "s", progress=False)
    assert study.failed_run_ids == []
    climb = study.to_pandas(name="Climb")
    assert list(climb.columns[:3]) == ["Sat.UTCGregorian", "Sat.Earth.SMA", "Sat.Earth.ECC"]
    # one row per burn: the loop ends at the first periapsis above the goal
    assert climb.groupby(level="run_id").size().tolist() == [2, 4]
    assert (climb.groupby(level="run_id")["Sat.Earth.SMA"].last() > [7010, 7030]).all()
    first = climb.groupby(level="run_id").head(1)
    assert first["Sat.UTCGregorian"].tolist() == [pd.Timestamp("2026-03-21 02:17:04.512")] * 2
    assert "Climb.WriteHeaders = true;" in study.script(0)


def test_a_for_loop_count_is_swept(loop_reports: Path, tmp_path: Path) -> None:
    study = sweep(loop_reports, {"N.Value": [2, 5], "StepSecs.Value": [300]}, out=tmp_path / "s",
                  progress=False)  # fmt: skip
    assert study.failed_run_ids == []
    passes = study.to_pandas(name="Passes")
    assert passes.groupby(level="run_id").size().tolist() == [2, 5]
    assert passes["I"].tolist() == [1, 2, 1, 2, 3, 4, 5]
    elapsed = passes.index.get_level_values("time") - pd.Timestamp("2026-03-21")
    assert (elapsed / pd.Timedelta(seconds=300)).tolist() == [1, 2, 1, 2, 3, 4, 5]


def test_an_unreadable_ephemeris_format_is_refused_before_any_run(
    gui_pair: Path, tmp_path: Path
) -> None:
    # gmat-run cannot read a Code-500 file (binary): every run would fail reading it.
    text = gui_pair.read_text()
    code500 = tmp_path / "code500.script"
    code500.write_text(
        text.replace("C500Eph.WriteEphemeris = false", "C500Eph.WriteEphemeris = true")
    )
    with pytest.raises(SweepConfigError, match=r"C500Eph.FileFormat = Code-500") as refused:
        sweep(code500, {"Sat.INC": [30.0]}, out=tmp_path / "s", progress=False)
    assert "CCSDS-OEM" in str(refused.value) and "WriteEphemeris = false" in str(refused.value)
    assert not (tmp_path / "s").exists()


def test_an_spk_ephemeris_is_read_or_refused_before_any_run(gui_pair: Path, tmp_path: Path) -> None:
    # gmat-run reads SPK (binary) files only with spiceypy installed.
    spk = tmp_path / "spk.script"
    spk.write_text(
        gui_pair.read_text()
        .replace("SatStk.FileFormat = STK-TimePosVel", "SatStk.FileFormat = SPK")
        .replace("'pair_sat.e'", "'pair_sat.bsp'")
    )
    if importlib.util.find_spec("spiceypy") is None:
        with pytest.raises(SweepConfigError, match=r"SatStk.FileFormat = SPK: .*spiceypy"):
            sweep(spk, {"Sat.INC": [30.0]}, out=tmp_path / "s", progress=False)
        return
    study = sweep(spk, {"Sat.INC": [30.0]}, out=tmp_path / "s", progress=False)
    assert study.failed_run_ids == []
    assert len(study.to_ephemerides(name="SatStk").compute()) > 10


def test_a_report_layout_gmat_run_cannot_read_is_refused_as_an_override(
    loop_reports: Path, tmp_path: Path
) -> None:
    # Without its header a report's first row is taken for column names; without fixed
    # widths its rows cannot be split into columns.
    for path in ("Passes.WriteHeaders", "Climb.FixedWidth"):
        with pytest.raises(SweepConfigError, match=rf"'{path}'=False: .*leave it out"):
            sweep(loop_reports, {path: [True, False]}, out=tmp_path / "s", progress=False)
    assert not (tmp_path / "s").exists()
