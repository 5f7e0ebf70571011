"""Soak: a sweep survives driver kills, host kills and a hung run; nothing finished is lost.

A sweep of ``--runs`` runs of ``tests/data/soak.script`` (one orbit each; one
run, in the middle, propagates for 1e8 s and hangs past its ``--timeout``) is
driven by a separate driver process, started again and again:

* the driver is SIGKILLed at ``--kills`` random moments, each followed by a
  new driver that resumes the sweep (``open_sweep(out).resume()``, or a new
  ``sweep(...)`` while no manifest exists yet);
* in ``--host-kills`` of those driver lives, a GMAT host is SIGKILLed in
  the middle of a run first (the run fails as "worker process died" and is
  retried);
* a last driver finishes the sweep without being killed.

After every kill the manifest is loaded: every run it lists as ok is
remembered. At the end the sweep is compared with an uninterrupted sweep of
the same spec (run in this process). Printed:

* ``kills_survived``: driver kills followed by a successful load of the manifest;
* ``ok_runs_lost``: runs once recorded ok that are not ok (with readable files)
  at the end (target 0);
* ``manifest_load_failures``: manifest loads that failed after a kill (target 0);
* ``runs_recorded_ok_twice``: runs with two ok lines, i.e. re-executed after
  they were recorded (target 0); runs in flight when a driver dies are not
  recorded and run again by the next driver, which the manifest cannot show;
* ``frame_bit_identical``: the final ``to_pandas()`` equals the uninterrupted
  one bit for bit (target: yes).

``--s3`` runs the same soak with the sweep on a SeaweedFS server this
benchmark starts on 127.0.0.1 (``tests/s3_server.py``).

Usage: ``.venv/bin/python benchmarks/soak.py [--runs 200] [--kills 20]
[--host-kills 5] [--s3] [--seed 0]``
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from _common import REPO_ROOT, print_figure

from gmat_sweep import open_sweep, sweep
from gmat_sweep.errors import GmatSweepError
from gmat_sweep.manifest import Manifest, read_all_entries, unreadable_ok_runs
from gmat_sweep.spec import RunStatus
from gmat_sweep.testing import gmat_hosts, running_a_mission

BENCH = "soak"
MISSION = REPO_ROOT / "tests" / "data" / "soak.script"
HUNG_SECS = 1e8

_DRIVER = """
import json, sys
from pathlib import Path
from gmat_sweep import open_sweep, sweep
from gmat_sweep.storage import exists, join

out, options, rows = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
timeout = float(sys.argv[4])
if exists(join(out if "://" in out else Path(out), "manifest.jsonl"), options):
    open_sweep(out, storage_options=options).resume()
else:
    sweep(sys.argv[5], samples=rows, out=out, storage_options=options,
          run_options={"timeout_s": timeout}, progress=False)
"""


def rows_of(runs: int) -> list[dict[str, float]]:
    """Runs of a few ms each, with one hung run in the middle."""
    rows = [{"Secs.Value": 6000.0 + i} for i in range(runs)]
    rows[runs // 2] = {"Secs.Value": HUNG_SECS}
    return rows


class HostKiller(threading.Thread):
    """SIGKILL one GMAT host of this benchmark's drivers when asked, mid-run."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.wanted = threading.Event()
        self.killed = 0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.02):
            if not self.wanted.is_set():
                continue
            busy = [pid for pid in gmat_hosts() if running_a_mission(pid)]
            if busy:
                time.sleep(0.01)
                try:
                    os.kill(busy[0], signal.SIGKILL)
                except ProcessLookupError:
                    continue
                self.killed += 1
                self.wanted.clear()

    def stop(self) -> None:
        self._done.set()
        self.join()


def drive(out: str, options: dict[str, Any], rows: list[dict[str, float]], timeout: float) -> Any:
    """Start one driver process on the sweep in ``out``."""
    arguments = [json.dumps(options), json.dumps(rows), str(timeout), str(MISSION)]
    return subprocess.Popen(
        [sys.executable, "-c", _DRIVER, out, *arguments],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def soak(
    out: str, options: dict[str, Any], args: argparse.Namespace, reference: Any, label: str
) -> None:
    """Run the soak on ``out`` and print its figures, labelled ``label``."""
    rng = random.Random(args.seed)
    rows = rows_of(args.runs)
    manifest_path = f"{out.rstrip('/')}/manifest.jsonl"
    killer = HostKiller()
    killer.start()
    ok_seen: set[int] = set()
    load_failures = survived = 0
    with_host_kill = set(rng.sample(range(args.kills), min(args.host_kills, args.kills)))
    try:
        for kill in range(args.kills):
            driver = drive(out, options, rows, args.timeout)
            if kill in with_host_kill:
                killer.wanted.set()
            time.sleep(rng.uniform(args.min_s, args.max_s))
            deadline = time.monotonic() + 30
            while killer.wanted.is_set() and time.monotonic() < deadline:
                time.sleep(0.05)  # let the host kill happen before the driver goes
            driver.send_signal(signal.SIGKILL)
            driver.wait()
            killer.wanted.clear()
            try:
                manifest = Manifest.load(manifest_path, storage_options=options)
            except FileNotFoundError:
                survived += 1  # killed before it wrote the header: nothing to lose yet
                continue
            except GmatSweepError as exc:
                if "does not exist" in str(exc):
                    survived += 1
                    continue
                load_failures += 1
                print(f"  kill {kill}: manifest failed to load: {exc}", file=sys.stderr)
                continue
            survived += 1
            ok_seen |= {e.run_id for e in manifest.entries if e.status is RunStatus.OK}
        final = drive(out, options, rows, args.timeout)
        _, errors = final.communicate(timeout=600)
        if final.returncode != 0:
            raise RuntimeError(f"the last driver failed: {errors[-2000:]}")
    finally:
        killer.stop()
    study = open_sweep(out, storage_options=options)
    manifest = study.manifest
    status = {e.run_id: e.status for e in manifest.entries}
    lost = {r for r in ok_seen if status.get(r) is not RunStatus.OK}
    lost |= set(unreadable_ok_runs(manifest, study.output_dir, options)) & ok_seen
    ok_lines = Counter(
        e.run_id
        for e in read_all_entries(manifest_path, storage_options=options)
        if e.status is RunStatus.OK
    )
    twice = sum(1 for count in ok_lines.values() if count > 1)
    identical = study.to_pandas().equals(reference)
    note = f"{args.runs} runs, {args.kills} driver kills, {killer.killed} host kills ({label})"
    print_figure("SOAK", BENCH, f"kills_survived_{label}", survived, note, "d")
    print_figure("SOAK", BENCH, f"host_kills_{label}", killer.killed, f"{label}", "d")
    print_figure("SOAK", BENCH, f"ok_runs_lost_{label}", len(lost), f"target 0; {label}", "d")
    print_figure(
        "SOAK", BENCH, f"manifest_load_failures_{label}", load_failures, f"target 0; {label}", "d"
    )
    print_figure("SOAK", BENCH, f"runs_recorded_ok_twice_{label}", twice, f"target 0; {label}", "d")
    print(f"CHECK {BENCH} frame_bit_identical_{label} = {identical} (target True; {note})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--host-kills", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=3.0, help="timeout_s of every run")
    parser.add_argument("--min-s", type=float, default=2.0, help="earliest kill after start")
    parser.add_argument("--max-s", type=float, default=6.0, help="latest kill after start")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--s3", action="store_true", help="also soak a sweep on local S3")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gmat-sweep-soak-") as scratch:
        root = Path(scratch)
        reference = sweep(
            MISSION,
            samples=rows_of(args.runs),
            out=root / "reference",
            run_options={"timeout_s": args.timeout},
            progress=False,
        ).to_pandas()
        soak(str(root / "soaked"), {}, args, reference, "local")
        if args.s3:
            sys.path.insert(0, str(REPO_ROOT / "tests"))  # the server helper lives there
            from s3_server import seaweedfs

            with seaweedfs() as server:
                url = server.url(f"soak-{uuid.uuid4().hex[:8]}")
                soak(url, server.storage_options(), args, reference, "s3")


if __name__ == "__main__":
    main()
