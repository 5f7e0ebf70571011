"""Shared fixtures: the test missions carried in tests/data/, and a module's GMAT hosts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gmat_sweep import LocalPool

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


@pytest.fixture(scope="module")
def pool() -> Iterator[LocalPool]:
    """Two GMAT hosts for a test module, started once rather than per sweep.

    A host's start-up costs far more than a small mission's run, and a host
    restores a loaded mission before each run, so a sweep's results do not
    depend on what the hosts ran before. Tests that kill or time out a host,
    or count its loads, use a pool of their own.
    """
    with LocalPool(2) as local:
        yield local
