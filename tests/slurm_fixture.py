"""A real single-node Slurm for tests: started by scripts/slurm-single-node.sh, torn down after.

Import the ``slurm`` fixture into a test module. It installs ``slurm-wlm`` with
apt when missing and starts munge, slurmctld and slurmd; it skips only where
that is impossible (not root, or no slurm and no apt-get). Afterwards it
cancels every job the tests submitted (they share :data:`JOB_NAME`) and stops
the daemons if it was the one that started them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "slurm-single-node.sh"
JOB_NAME = "gmat-sweep-test"
"""Batch job name of every test worker, so teardown cancels exactly those jobs."""

_START_TIMEOUT_S = 900  # covers an apt-get install of slurm-wlm on a fresh machine


def slurm_running() -> bool:
    """Whether a Slurm controller answers and node ``localhost`` accepts jobs."""
    if shutil.which("scontrol") is None or shutil.which("sinfo") is None:
        return False
    ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, check=False)
    if "UP" not in ping.stdout:
        return False
    state = subprocess.run(
        ["sinfo", "-h", "-n", "localhost", "-o", "%T"], capture_output=True, text=True, check=False
    )
    return state.stdout.strip() in {"idle", "mixed", "allocated", "completing"}


def our_job_ids() -> list[str]:
    """Ids of the tests' batch jobs that are pending or running (not merely completing)."""
    listing = subprocess.run(
        ["squeue", "-h", "--name", JOB_NAME, "--states", "PD,CF,R,S", "-o", "%i"],
        capture_output=True,
        text=True,
        check=True,
    )
    return listing.stdout.split()


@pytest.fixture(scope="module")
def slurm() -> Iterator[None]:
    """A running single-node Slurm with partition ``debug``, for the module's tests."""
    if os.geteuid() != 0:
        pytest.skip("a single-node Slurm needs root (it writes /etc/slurm and starts daemons)")
    if shutil.which("slurmctld") is None and shutil.which("apt-get") is None:
        pytest.skip("slurm-wlm is not installed and apt-get is unavailable to install it")
    started = not slurm_running()
    if started:
        result = subprocess.run(
            ["bash", str(SCRIPT)],
            capture_output=True,
            text=True,
            timeout=_START_TIMEOUT_S,
            check=False,
        )
        if result.returncode != 0:
            pytest.fail(f"{SCRIPT.name} failed ({result.returncode}):\n{result.stderr}")
    yield
    if shutil.which("scancel") is not None:
        subprocess.run(["scancel", "--name", JOB_NAME], check=False)
        deadline = time.monotonic() + 30
        while our_job_ids() and time.monotonic() < deadline:
            time.sleep(0.5)
    if started:
        subprocess.run(["bash", str(SCRIPT), "--stop"], capture_output=True, check=False)
