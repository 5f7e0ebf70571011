"""Missions of kinds an analyst writes that the other mission tests do not cover.

``strings_arrays`` has a ``String`` label, an ``Array`` of gains and a
``Variable`` duration, all used in the mission sequence.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gmat_sweep import sweep
from gmat_sweep.worker import LOAD_TIME, list_fields


@pytest.fixture(scope="module")
def strings_arrays(data_dir: Path) -> Path:
    return data_dir / "strings_arrays.script"


def test_a_string_value_is_swept_and_reaches_the_report(
    strings_arrays: Path, tmp_path: Path
) -> None:
    labels = ["alpha", "two words", "42"]
    study = sweep(strings_arrays, {"Label.Value": labels}, out=tmp_path / "s", progress=False)
    assert study.failed_run_ids == []
    final = study.final(name="Summary")
    assert final["Label"].astype(str).tolist() == labels
    assert final["Label.Value"].tolist() == labels
    assert "Label = 'two words';" in study.script(1)  # the replay script sets it too


def test_a_string_field_is_listed_with_its_text(strings_arrays: Path) -> None:
    listed = {f.path: f for f in list_fields(strings_arrays)}
    assert listed["Label.Value"].value == "nominal"
    assert listed["Label.Value"].override == LOAD_TIME
