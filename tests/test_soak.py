"""The short soak: 3 driver kills, 1 host kill and a hung run lose nothing finished.

Runs ``benchmarks/soak.py`` (the fault-injection soak; its full size, 20 kills
over 200 runs, local and on S3, is kept out of the default run) on a small
sweep and checks every figure it prints against its target.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

SOAK = Path(__file__).resolve().parents[1] / "benchmarks" / "soak.py"


@pytest.mark.slow
def test_short_soak_loses_nothing(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(SOAK), "--runs", "30", "--kills", "3", "--host-kills", "1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = dict(re.findall(r"^\w+ soak (\w+) = (\S+)", done.stdout, flags=re.M))
    assert figures["kills_survived_local"] == "3", done.stdout
    assert figures["host_kills_local"] == "1", done.stdout
    assert figures["ok_runs_lost_local"] == "0", done.stdout
    assert figures["manifest_load_failures_local"] == "0", done.stdout
    assert figures["runs_recorded_ok_twice_local"] == "0", done.stdout
    assert figures["frame_bit_identical_local"] == "True", done.stdout
