"""One writer per sweep: a local flock and an S3 lease, refused with who holds it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from s3_server import S3Server, s3_server  # noqa: F401  (the fixture, used by name)

from gmat_sweep import lock
from gmat_sweep.errors import SweepLockedError
from gmat_sweep.lock import LEASE_NAME, LOCK_NAME, hold

_HOLDER = textwrap.dedent(
    """
    import json, sys, time
    from gmat_sweep.lock import hold

    with hold(sys.argv[1], json.loads(sys.argv[2]), what="resume"):
        print("held", flush=True)
        time.sleep(600)
    """
)


@pytest.fixture
def holder() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes started by :func:`_hold_elsewhere`; killed at the end."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()


def _hold_elsewhere(
    started: list[subprocess.Popen[str]], root: str, options: dict[str, object] | None = None
) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, root, json.dumps(options or {})],
        stdout=subprocess.PIPE,
        text=True,
    )
    started.append(process)
    assert process.stdout is not None
    assert process.stdout.readline() == "held\n"
    return process


def _kill(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait()


def test_a_second_driver_is_refused_with_the_holder(
    tmp_path: Path, holder: list[subprocess.Popen[str]]
) -> None:
    process = _hold_elsewhere(holder, str(tmp_path / "s"))
    with pytest.raises(SweepLockedError) as caught, hold(tmp_path / "s"):
        pass
    message = str(caught.value)
    assert f"process {process.pid} on host {socket.gethostname()} (resume, since " in message
    assert "only one driver may write a sweep at a time" in message


def test_a_sigkilled_holder_frees_the_sweep_at_once(
    tmp_path: Path, holder: list[subprocess.Popen[str]]
) -> None:
    _kill(_hold_elsewhere(holder, str(tmp_path)))
    with hold(tmp_path, what="run"):
        recorded = json.loads((tmp_path / LOCK_NAME).read_text())
        assert (recorded["pid"], recorded["host"], recorded["what"]) == (
            os.getpid(),
            socket.gethostname(),
            "run",
        )
        assert datetime.fromisoformat(recorded["since"]) <= datetime.now(UTC)
    assert (tmp_path / LOCK_NAME).read_text() == ""  # released; the file itself stays


def test_a_hold_is_not_reentrant_and_is_released_on_error(tmp_path: Path) -> None:
    with hold(tmp_path):
        inner = hold(tmp_path)
        with pytest.raises(SweepLockedError, match=f"process {os.getpid()} "):
            inner.__enter__()
    with pytest.raises(RuntimeError, match="boom"), hold(tmp_path):
        raise RuntimeError("boom")
    with hold(tmp_path):
        pass


# --------------------------------------------------------------------------- S3 lease


def _root(server: S3Server) -> str:
    return server.url(f"lock-{uuid.uuid4().hex[:12]}")


def test_s3_lease_refuses_a_second_driver_and_is_removed_on_release(
    s3_server: S3Server,  # noqa: F811
    holder: list[subprocess.Popen[str]],
) -> None:
    root, options = _root(s3_server), s3_server.storage_options()
    key = root.split("/", 3)[3] + "/" + LEASE_NAME
    process = _hold_elsewhere(holder, root, options)
    lease = json.loads(
        s3_server.client().get_object(Bucket=s3_server.bucket, Key=key)["Body"].read()
    )
    assert (lease["pid"], lease["host"], lease["what"]) == (
        process.pid,
        socket.gethostname(),
        "resume",
    )
    assert lease["expires_at"] > time.time()
    with (
        pytest.raises(SweepLockedError, match=f"process {process.pid} on host"),
        hold(root, options),
    ):
        pass
    process.terminate()  # SIGTERM: the interpreter dies without leaving the with block
    process.wait()
    with hold(root, options):  # a dead driver on this host: taken over before the expiry
        assert s3_server.keys(key) == [key]
    assert s3_server.keys(key) == []


def test_s3_lease_of_another_host_is_taken_over_only_once_expired(
    s3_server: S3Server,  # noqa: F811
) -> None:
    root, options = _root(s3_server), s3_server.storage_options()
    key = root.split("/", 3)[3] + "/" + LEASE_NAME
    other = {"pid": 1, "host": "elsewhere", "what": "run", "since": "2026-01-01T00:00:00+00:00"}
    client = s3_server.client()
    live = {**other, "expires_at": time.time() + 300}
    client.put_object(Bucket=s3_server.bucket, Key=key, Body=json.dumps(live).encode())
    with pytest.raises(SweepLockedError, match="process 1 on host elsewhere"), hold(root, options):
        pass
    expired = {**other, "expires_at": time.time() - 1}
    client.put_object(Bucket=s3_server.bucket, Key=key, Body=json.dumps(expired).encode())
    with hold(root, options):
        lease = json.loads(client.get_object(Bucket=s3_server.bucket, Key=key)["Body"].read())
        assert lease["pid"] == os.getpid()


def test_s3_lease_is_renewed_and_a_lost_lease_is_reported(
    s3_server: S3Server,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(lock, "LEASE_S", 0.8)
    root, options = _root(s3_server), s3_server.storage_options()
    key = root.split("/", 3)[3] + "/" + LEASE_NAME
    client = s3_server.client()

    def expiry() -> float:
        body = client.get_object(Bucket=s3_server.bucket, Key=key)["Body"].read()
        return float(json.loads(body)["expires_at"])

    with hold(root, options):
        first = expiry()
        deadline = time.monotonic() + 60  # a renewal is due every 0.2 s; a loaded machine lags
        while expiry() <= first:
            assert time.monotonic() < deadline, "the lease was not renewed while held"
            time.sleep(0.05)
    stolen = {"pid": 1, "host": "elsewhere", "expires_at": time.time() + 300}
    held = hold(root, options)
    held.__enter__()
    client.put_object(Bucket=s3_server.bucket, Key=key, Body=json.dumps(stolen).encode())
    deadline = time.monotonic() + 60
    while _lease_renewer_alive():  # its next renewal finds the lease taken and stops
        assert time.monotonic() < deadline, "the renewer did not notice the stolen lease"
        time.sleep(0.05)
    with pytest.raises(SweepLockedError, match="lost while this driver held it"):
        held.__exit__(None, None, None)
    assert json.loads(client.get_object(Bucket=s3_server.bucket, Key=key)["Body"].read()) == stolen


def _lease_renewer_alive() -> bool:
    """Whether a lease renewer thread of this process is running (it ends once lost)."""
    return any(thread.name == "gmat-sweep-lease" for thread in threading.enumerate())


# --------------------------------------------------------------------------- wired into the drivers


def test_run_resume_extend_and_overwrite_are_refused_while_another_driver_holds(
    tmp_path: Path, leo_basic: Path, holder: list[subprocess.Popen[str]]
) -> None:
    from gmat_sweep import Sweep, monte_carlo, sweep
    from gmat_sweep.backends.local import LocalPool

    out = tmp_path / "s"
    perturb = {"Sat.Cd": ("uniform", 2.0, 2.4)}
    with LocalPool(1) as pool:
        monte_carlo(leo_basic, n=2, perturb=perturb, seed=1, backend=pool, out=out, progress=False)
        before = (out / "manifest.jsonl").read_bytes()
        process = _hold_elsewhere(holder, str(out))
        held = f"process {process.pid} on host"
        with pytest.raises(SweepLockedError, match=held):
            sweep(leo_basic, {"Sat.Cd": [2.0]}, backend=pool, out=out, overwrite=True)
        resumed = Sweep.from_manifest(out / "manifest.jsonl", leo_basic, backend=pool)
        with pytest.raises(SweepLockedError, match=held):
            resumed.resume()
        with pytest.raises(SweepLockedError, match=held):
            resumed.extend(1, backend=pool)
        fresh = _hold_elsewhere(holder, str(tmp_path / "fresh"))
        with pytest.raises(SweepLockedError, match=f"process {fresh.pid} on host"):
            sweep(leo_basic, {"Sat.Cd": [2.0]}, backend=pool, out=tmp_path / "fresh")
        assert (out / "manifest.jsonl").read_bytes() == before
        _kill(process)
        assert len(resumed.extend(1, backend=pool).manifest.entries) == 3


def test_resume_of_an_s3_sweep_is_refused_while_another_driver_holds_its_lease(
    s3_server: S3Server,  # noqa: F811
    leo_basic: Path,
    holder: list[subprocess.Popen[str]],
) -> None:
    from gmat_sweep import Sweep, sweep
    from gmat_sweep.backends.local import LocalPool

    root, options = _root(s3_server), s3_server.storage_options()
    with LocalPool(1) as pool:
        sweep(leo_basic, {"Sat.Cd": [2.0]}, backend=pool, out=root, storage_options=options)
        prefix = root.split("/", 3)[3]
        assert f"{prefix}/{LEASE_NAME}" not in s3_server.keys(prefix)  # released after the run
        process = _hold_elsewhere(holder, root, options)
        resumed = Sweep.from_manifest(
            f"{root}/manifest.jsonl", leo_basic, backend=pool, storage_options=options
        )
        with pytest.raises(SweepLockedError, match=f"process {process.pid} on host"):
            resumed.resume()
        _kill(process)  # died on this host: its lease is taken over without waiting
        assert resumed.resume().manifest.run_count == 1
