"""A real single-node Slurm for tests: started by scripts/slurm-single-node.sh, torn down after.

Import the ``slurm`` fixture into a test module. It installs ``slurm-wlm`` with
apt when missing and starts munge, slurmctld and slurmd; it skips only where
that is impossible (not root, or no slurm and no apt-get). Afterwards it
cancels every job its tests submitted (they share :data:`JOB_NAME`) and stops
the daemons if test sessions started them and no other session still uses them.

Several test sessions may share the machine (two xdist workers, two checkouts):
each holds a shared ``flock`` on :data:`USERS_LOCK` while it uses Slurm, starts
and stops it only under the exclusive lock, and names its jobs after its own
process, so no session counts, cancels or stops what another one uses.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "slurm-single-node.sh"
JOB_NAME = f"gmat-sweep-test-{os.getpid()}"
"""Batch job name of this test process's workers, so teardown cancels exactly those jobs."""

USERS_LOCK = Path("/run/gmat-sweep-slurm-tests.lock")
"""Held shared by every test session using Slurm; exclusive to start or stop it."""

STARTED_MARK = Path("/run/gmat-sweep-slurm-tests.started")
"""Present while the running daemons are the ones a test session started."""

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
    users = os.open(USERS_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(users, fcntl.LOCK_EX)  # waits while another session starts or stops it
        if not slurm_running():
            result = subprocess.run(
                ["bash", str(SCRIPT)],
                capture_output=True,
                text=True,
                timeout=_START_TIMEOUT_S,
                check=False,
            )
            if result.returncode != 0:
                pytest.fail(f"{SCRIPT.name} failed ({result.returncode}):\n{result.stderr}")
            STARTED_MARK.touch()
        fcntl.flock(users, fcntl.LOCK_SH)
        yield
        if shutil.which("scancel") is not None:
            subprocess.run(["scancel", "--name", JOB_NAME], check=False)
            deadline = time.monotonic() + 30
            while our_job_ids() and time.monotonic() < deadline:
                time.sleep(0.5)
        try:
            fcntl.flock(users, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # another session still uses it: the last one out stops it
        if STARTED_MARK.exists():
            subprocess.run(["bash", str(SCRIPT), "--stop"], capture_output=True, check=False)
            STARTED_MARK.unlink()
    finally:
        os.close(users)
