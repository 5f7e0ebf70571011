"""Shared fixtures: the test missions carried in tests/data/."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Directory of the GMAT test missions."""
    return DATA


@pytest.fixture(scope="session")
def leo_basic() -> Path:
    """Fast LEO mission (one orbit, one ReportFile 'RF', ~50 ms a run)."""
    return DATA / "leo_basic.script"


@pytest.fixture(scope="session")
def multi_output() -> Path:
    """Two reports plus a CCSDS-OEM and an STK ephemeris."""
    return DATA / "multi_output.script"


@pytest.fixture(scope="session")
def fails_at_runtime() -> Path:
    """Runs for Idx.Value in {1, 2, 3}; any other value fails inside GMAT."""
    return DATA / "fails_at_runtime.script"


@pytest.fixture(scope="session")
def parse_error() -> Path:
    """A script GMAT cannot parse (unknown field Sat.SMAX on line 21)."""
    return DATA / "parse_error.script"


@pytest.fixture(scope="session")
def slow() -> Path:
    """Run time ~0.3 s + 4-10 s per Days.Value (machine speed); for timeouts and kills."""
    return DATA / "slow.script"
