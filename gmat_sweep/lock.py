"""One writer per sweep: the hold a driver keeps on a sweep directory for its whole life.

Two drivers writing one sweep interfere: two resumes run the same runs twice,
an ``extend`` during a ``resume`` drops the other driver's lines, an
``overwrite`` deletes a sweep that is still being written. :func:`hold` lets
exactly one driver write a sweep at a time; a second one is refused with a
:class:`~gmat_sweep.errors.SweepLockedError` that names the holder.

* **Local directories:** an exclusive ``flock`` on ``<root>/.gmat-sweep.lock``.
  The kernel releases it when the holding process dies, however it dies, so a
  SIGKILLed driver never blocks the next ``resume``. The file records the
  holder (pid, host, since) for the error message; it is never deleted,
  because a lock file removed and re-created under the same name would let
  two drivers hold the sweep.
* **S3 (``s3://``, ``s3a://``):** a lease object ``<root>/.gmat-sweep.lease``
  created with a conditional put (``If-None-Match: *``), so of two drivers
  that race, one wins. The lease carries an expiry a daemon thread renews
  every :data:`LEASE_S` / 4 seconds with ``If-Match`` on the lease's ETag; a
  lease past its expiry (a dead driver's) is taken over with the same
  ``If-Match`` put, so two drivers can never both take it over; so is the
  lease of a driver that ran on this machine and is no longer alive, without
  waiting for its expiry. The expiry is
  the holder's wall clock: drivers on different machines need clocks that
  agree to well under :data:`LEASE_S`.
* **Other URLs** (``gs://``, ``az://`` ...): no hold is taken; the
  single-writer rule is the caller's to keep there.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gmat_sweep import storage
from gmat_sweep.errors import SweepLockedError
from gmat_sweep.spec import PathLike, is_url, local_path

LOCK_NAME = ".gmat-sweep.lock"
"""The lock file in a local sweep directory."""

LEASE_NAME = ".gmat-sweep.lease"
"""The lease object under an S3 sweep prefix."""

LEASE_S = 60.0
"""Seconds an S3 lease stays valid without renewal; a dead driver's lease frees after this."""

_TAKEOVER_ATTEMPTS = 5


@contextmanager
def hold(
    root: PathLike, storage_options: Mapping[str, Any] | None = None, *, what: str = "run"
) -> Iterator[None]:
    """Hold the sweep in ``root`` for the duration of the ``with`` block.

    Parameters
    ----------
    root:
        The sweep directory: a local path or an fsspec URL. A local directory
        is created if missing.
    storage_options:
        fsspec options for a URL.
    what:
        What the holder is doing (``"run"``, ``"resume"``, ``"extend"``,
        ``"overwrite"``), recorded for the message another driver gets.

    Raises
    ------
    SweepLockedError
        Another driver holds the sweep (the message names its pid, host,
        what it is doing and since when); or, on S3, another driver took the
        lease over while this one held it (its renewals failed for longer
        than :data:`LEASE_S`), raised when the block ends.
    """
    if not is_url(root):
        with _flock(local_path(root), what):
            yield
    elif str(root).split("://", 1)[0] in ("s3", "s3a"):
        with _lease(str(root).rstrip("/"), dict(storage_options or {}), what):
            yield
    else:
        yield


def _holder(what: str) -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "what": what,
        "since": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _refusal(root: PathLike, holder: Mapping[str, Any], how_it_frees: str) -> SweepLockedError:
    who = (
        f"process {holder.get('pid', '?')} on host {holder.get('host', '?')} "
        f"({holder.get('what', 'a driver')}, since {holder.get('since', 'an unknown time')})"
    )
    return SweepLockedError(
        f"the sweep in {root} is held by {who}; only one driver may write a sweep at a time. "
        f"Wait for that driver to finish (or stop it): {how_it_frees}. Then run again"
    )


@contextmanager
def _flock(root: Path, what: str) -> Iterator[None]:
    import fcntl  # POSIX only, like the rest of the local-driver machinery

    storage.make_dirs(root)
    path = root / LOCK_NAME
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _refusal(
                root,
                _parse_holder(path.read_bytes()),
                "its hold ends when it exits, however it exits",
            ) from None
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, json.dumps(_holder(what)).encode() + b"\n", 0)
        try:
            yield
        finally:
            os.ftruncate(descriptor, 0)
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)


def _parse_holder(data: bytes) -> dict[str, Any]:
    try:
        holder = json.loads(data)
    except ValueError:
        return {}
    return holder if isinstance(holder, dict) else {}


@contextmanager
def _lease(root: str, options: dict[str, Any], what: str) -> Iterator[None]:
    fs, path = storage.filesystem(f"{root}/{LEASE_NAME}", options)
    holder = {**_holder(what), "token": uuid.uuid4().hex}
    etag = _acquire(fs, path, root, holder)
    renewer = _Renewer(fs, path, holder, etag)
    renewer.start()
    try:
        yield
    finally:
        renewer.stop()
        bucket, key, _ = fs.split_path(path)
        if not renewer.lost:
            # Not ours any more, or the store is away: the lease then just expires.
            with contextlib.suppress(OSError):
                fs.call_s3("delete_object", Bucket=bucket, Key=key, IfMatch=renewer.etag)
            fs.invalidate_cache(path)
    if renewer.lost:
        raise SweepLockedError(
            f"the lease on the sweep in {root} was lost while this driver held it: its renewals "
            f"failed for more than {LEASE_S:g} s and another driver took the sweep over; the "
            "manifest holds both drivers' lines: load it again and resume once the other "
            "driver has finished"
        )


def _body(holder: Mapping[str, Any]) -> bytes:
    expires = datetime.now(UTC).timestamp() + LEASE_S
    return json.dumps({**holder, "expires_at": expires}).encode()


def _acquire(fs: Any, path: str, root: str, holder: dict[str, Any]) -> str:
    """Create the lease, or take over an expired one; return its ETag.

    The existing lease is looked at first, so a store that ignored
    ``If-None-Match`` would still not overwrite a live lease (only a racing one).
    """
    for _ in range(_TAKEOVER_ATTEMPTS):
        try:
            etag = fs.info(path, refresh=True)["ETag"]
            current = _parse_holder(fs.cat_file(path))
        except FileNotFoundError:
            condition: dict[str, Any] = {"mode": "create"}
        else:
            live = float(current.get("expires_at", 0)) > datetime.now(UTC).timestamp()
            if live and not _died_on_this_host(current):
                raise _refusal(
                    root,
                    current,
                    f"a driver that died frees it {LEASE_S:g} s after its last renewal",
                ) from None
            condition = {"IfMatch": etag}  # a dead driver's: If-Match lets only one taker win
        try:
            return str(fs.pipe_file(path, _body(holder), **condition)["ETag"])
        except OSError as exc:
            if not _precondition_failed(exc):
                raise
    raise SweepLockedError(
        f"the lease on the sweep in {root} changed hands {_TAKEOVER_ATTEMPTS} times while this "
        "driver tried to take it; another driver is starting on this sweep: stop it and run again"
    )


def _died_on_this_host(holder: Mapping[str, Any]) -> bool:
    """A lease whose holder ran on this machine and is gone need not wait for its expiry."""
    pid = holder.get("pid")
    if holder.get("host") != socket.gethostname() or type(pid) is not int or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, another user's
    return False


def _precondition_failed(exc: OSError) -> bool:
    """Whether a put was refused by its ``If-None-Match`` / ``If-Match`` condition."""
    if isinstance(exc, FileExistsError):
        return True
    response = getattr(exc.__cause__, "response", None) or {}
    code = response.get("Error", {}).get("Code")
    return code in ("PreconditionFailed", "ConditionalRequestConflict")


class _Renewer(threading.Thread):
    """Pushes the lease's expiry forward every ``LEASE_S / 4`` s while the sweep is held."""

    def __init__(self, fs: Any, path: str, holder: dict[str, Any], etag: str) -> None:
        super().__init__(name="gmat-sweep-lease", daemon=True)
        self._fs, self._path, self._holder = fs, path, holder
        self.etag = etag
        self.lost = False
        self._stopped = threading.Event()

    def run(self) -> None:
        while not self._stopped.wait(LEASE_S / 4):
            try:
                reply = self._fs.pipe_file(self._path, _body(self._holder), IfMatch=self.etag)
            except OSError as exc:
                if _precondition_failed(exc):
                    self.lost = True
                    return
                continue  # the store is away: try again next time, the lease is still valid
            self.etag = str(reply["ETag"])

    def stop(self) -> None:
        self._stopped.set()
        self.join()
