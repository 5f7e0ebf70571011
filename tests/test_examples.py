"""The bundled example missions are the test missions, and load by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from gmat_sweep import examples
from gmat_sweep.errors import SweepConfigError


def test_every_bundled_mission_is_a_copy_of_its_test_mission(data_dir: Path) -> None:
    assert examples.names() == [
        "fails_at_runtime",
        "hohmann_target",
        "leo_basic",
        "leo_day",
        "multi_output",
        "slow",
    ]
    for name in examples.names():
        assert examples.path(name).read_bytes() == (data_dir / f"{name}.script").read_bytes()


def test_an_unknown_example_names_the_known_ones() -> None:
    with pytest.raises(SweepConfigError, match=r"no bundled mission named 'leo'.*leo_basic"):
        examples.path("leo")
