"""GMAT host processes: runs executed in a child interpreter that can be killed.

GMAT holds the GIL for the whole of a run, so the only way to stop a run is
to kill the process running it. Every backend therefore runs missions in a
*host*: a child interpreter running :func:`serve`, started with
``subprocess`` (never ``fork``, never ``multiprocessing`` spawn, so the
caller's ``__main__`` is not re-imported and unguarded scripts, notebooks
and ``python -c`` all work). The parent sends a
:class:`~gmat_sweep.spec.RunSpec` as JSON over a pipe and reads the
:class:`~gmat_sweep.spec.RunOutcome` back.

- A run that exceeds its ``timeout_s`` is stopped by killing the host and
  recorded as ``failed`` ("timed out after N s"); the next run starts a
  fresh host.
- A host that dies mid-run (SIGKILL, a crash in the engine, the OOM killer)
  is recorded as ``failed`` ("worker process died ...").
- A persistent host keeps its loaded mission between runs
  (``reuse_gmat_context=True``); :func:`run_spec_in_subprocess` uses a fresh
  host for one run (``reuse_gmat_context=False``), so one sweep may mix
  scripts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from gmat_sweep import storage
from gmat_sweep.errors import BackendError, SweepConfigError
from gmat_sweep.spec import (
    FailureKind,
    RunOutcome,
    RunSpec,
    RunStatus,
    convert,
    decode,
    encode,
    to_builtins,
)

if TYPE_CHECKING:
    from gmat_sweep.metrics import Postprocess
    from gmat_sweep.mission import MissionField

_CHILD_MAIN = (
    "import sys\n"
    "from gmat_sweep.backends._subprocess import serve\n"
    "sys.exit(serve(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]))\n"
)
_READY_TIMEOUT_S = 300.0
_RUNNING = b"running"
_CLOSE_GRACE_S = 5.0


class GmatHost:
    """One killable child interpreter that runs missions sent to it.

    Not thread-safe: one thread at a time may use a host.

    Parameters
    ----------
    durable:
        ``True`` (default): the child fsyncs a run's local outputs before it
        answers. ``False``: it leaves that to the caller, who must call
        :func:`~gmat_sweep.storage.settle` on each ok outcome before
        recording it (see :func:`run_node`).
    """

    def __init__(self, *, durable: bool = True) -> None:
        self.durable = durable
        self._proc: subprocess.Popen[bytes] | None = None
        self._send: Connection | None = None
        self._recv: Connection | None = None
        self._scratch: Path | None = None
        self._watchdog: int | None = None
        self._stopped = False

    @property
    def pid(self) -> int | None:
        """Process id of the live child, or ``None`` when none is running."""
        return None if self._proc is None else self._proc.pid

    def start(self) -> None:
        """Start the child and wait until its engine is ready.

        Raises
        ------
        BackendError
            The child could not start or could not set up the GMAT engine;
            the message names this machine and carries the child's error. Or
            the host was stopped for good (:meth:`interrupt`).
        """
        self._refuse_if_stopped()
        self._scratch = Path(tempfile.mkdtemp(prefix="gmat-sweep-host-"))
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        env = dict(os.environ, TMPDIR=str(self._scratch))
        try:
            with open(self._scratch / "host.err", "wb") as errors:
                self._proc = subprocess.Popen(
                    [
                        sys.executable,
                        "-c",
                        _CHILD_MAIN,
                        str(to_child_r),
                        str(from_child_w),
                        str(self._scratch),
                    ],
                    pass_fds=(to_child_r, from_child_w),
                    stdin=subprocess.DEVNULL,
                    stdout=errors,
                    stderr=errors,
                    env=env,
                )
        except BaseException:
            for descriptor in (to_child_r, to_child_w, from_child_r, from_child_w):
                os.close(descriptor)
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None
            raise
        os.close(to_child_r)
        os.close(from_child_w)
        self._send = Connection(to_child_w, readable=False)
        self._recv = Connection(from_child_r, writable=False)
        if not self._recv.poll(_READY_TIMEOUT_S):
            self.kill()
            raise BackendError(
                f"the GMAT host process on {socket.gethostname()} did not start within "
                f"{_READY_TIMEOUT_S:.0f} s; check that this machine can import gmat_run"
            )
        try:
            hello = json.loads(self._recv.recv_bytes())
        except EOFError:
            hello = {"error": self._stderr_tail() or "the process exited during start-up"}
        if "error" in hello:
            self.kill()
            self._refuse_if_stopped()  # interrupted while it started
            raise BackendError(
                f"the GMAT engine could not start on {socket.gethostname()}: {hello['error']}"
            )
        self._watchdog = hello.get("watchdog")

    def _refuse_if_stopped(self) -> None:
        if self._stopped:
            raise BackendError(
                "this GMAT host was stopped for good: its pool was closed; create a new pool "
                "to check or run more specs"
            )

    def run(
        self, spec: RunSpec, timeout_s: float | None = None, *, durable: bool | None = None
    ) -> RunOutcome:
        """Run ``spec`` in the child; a timeout or a dead child becomes a failed outcome.

        ``durable`` overrides the host's own setting for this run.
        """
        sent = self.send(spec, durable)
        return sent if isinstance(sent, RunOutcome) else self.receive(spec, sent, timeout_s)

    def send(self, spec: RunSpec, durable: bool | None = None) -> datetime | RunOutcome:
        """Start ``spec`` in the child without waiting for it (:meth:`receive` does).

        Returns when it was sent, or the failed outcome of a host that is
        closed or died. Starts the child first if none is running.
        """
        if self._stopped:
            return worker_died(spec, "its pool was closed")
        if self._proc is None:
            self.start()
        assert self._send is not None
        started = datetime.now(UTC)
        request = {
            "op": "run",
            "spec": to_builtins(spec),
            "durable": self.durable if durable is None else durable,
        }
        try:
            self._send.send_bytes(json.dumps(request).encode())
        except OSError:
            return self._died(spec, started)
        return started

    def receive(self, spec: RunSpec, started: datetime, timeout_s: float | None) -> RunOutcome:
        """The outcome of ``spec``, sent at ``started``; kills the child after ``timeout_s``."""
        assert self._recv is not None
        try:
            # The child says "running" once the script is loaded: a cold load is
            # not the run, so the timeout clock starts there.
            if not self._recv.poll(_READY_TIMEOUT_S):
                raise EOFError
            reply = self._recv.recv_bytes()
            if reply == _RUNNING:
                if timeout_s is not None and not self._recv.poll(timeout_s):
                    self.kill()
                    return RunOutcome.failed(
                        spec.run_id,
                        f"timed out after {timeout_s:g} s: the run was stopped by killing its "
                        "GMAT process; raise run_options['timeout_s'] (CLI: --timeout S) if it "
                        "needs longer",
                        started,
                        datetime.now(UTC),
                        FailureKind.TIMEOUT,
                    )
                reply = self._recv.recv_bytes()
            return decode(reply, RunOutcome)
        except (EOFError, OSError):
            return self._died(spec, started)

    def _died(self, spec: RunSpec, started: datetime) -> RunOutcome:
        where = f" on {socket.gethostname()} while running run {spec.run_id}"
        return worker_died(spec, self._death_reason(), where, started)

    def check_fields(self, script_path: Path, values: Mapping[str, Sequence[Any]]) -> list[str]:
        """Check every override on the child; one message per override that would be refused.

        ``values`` maps each field path to the values the sweep gives it (see
        :func:`gmat_sweep.worker.check_fields`). A script that does not parse
        yields one message carrying GMAT's diagnostic. The child keeps the
        mission loaded, so a later run of the same script starts warm.
        """
        request = {
            "op": "check",
            "script": str(script_path),
            "values": {path: list(items) for path, items in values.items()},
        }
        problems: list[str] = self._ask(request, f"checking {script_path}")["problems"]
        return problems

    def initial_states(
        self, spec: RunSpec, spacecraft: Sequence[str]
    ) -> dict[str, dict[str, float]]:
        """Apply ``spec``'s overrides in the child; the Cartesian state of each spacecraft.

        See :func:`gmat_sweep.worker.initial_states`.
        """
        request = {"op": "state", "spec": to_builtins(spec), "spacecraft": list(spacecraft)}
        reply = self._ask(request, f"preparing run {spec.run_id}")
        if "error" in reply:
            raise BackendError(
                f"run {spec.run_id} cannot be prepared in GMAT to read its starting state: "
                f"{reply['error']}"
            )
        states: dict[str, dict[str, float]] = reply["states"]
        return states

    def fields(self, script_path: Path) -> list[MissionField]:
        """Load ``script_path`` in the child; its settable fields with their nominal values.

        See :func:`gmat_sweep.worker.list_fields`.

        Raises
        ------
        SweepConfigError
            GMAT cannot load the script.
        BackendError
            The child died.
        """
        from gmat_sweep.mission import MissionField

        reply = self._ask({"op": "fields", "script": str(script_path)}, f"reading {script_path}")
        if "error" in reply:
            raise SweepConfigError(reply["error"])
        return msgspec.convert(reply["fields"], list[MissionField])

    def _ask(self, request: Mapping[str, Any], doing: str) -> dict[str, Any]:
        """Send ``request`` to the child (started if need be) and return its JSON reply."""
        if self._proc is None:
            self.start()
        assert self._send is not None
        assert self._recv is not None
        try:
            self._send.send_bytes(json.dumps(request).encode())
            reply: dict[str, Any] = json.loads(self._recv.recv_bytes())
        except (EOFError, OSError):
            raise BackendError(
                f"the GMAT host process {doing} died ({self._death_reason()})"
            ) from None
        return reply

    def _death_reason(self) -> str:
        assert self._proc is not None
        try:
            code = self._proc.wait(timeout=_CLOSE_GRACE_S)
        except subprocess.TimeoutExpired:
            code = None
        tail = self._stderr_tail()
        self.kill()
        if code is None:
            what = "stopped answering"
        elif code < 0:
            what = f"killed by {signal.Signals(-code).name}"
        else:
            what = f"exited with code {code}"
        return f"{what}; last output: {tail}" if tail else what

    def _stderr_tail(self) -> str:
        if self._scratch is None:
            return ""
        try:
            text = (self._scratch / "host.err").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return " | ".join(text.strip().splitlines()[-5:])

    def interrupt(self) -> None:
        """Kill the child for good; safe from any thread (the owner sees a dead host).

        The host starts no new child afterwards: its pool is closing.
        """
        self._stopped = True
        proc = self._proc
        if proc is not None and proc.poll() is None:
            self._stop_watchdog()
            proc.kill()

    def kill(self) -> None:
        """Stop the child at once and remove its scratch directory."""
        if self._proc is not None:
            if self._proc.poll() is None:
                self._stop_watchdog()
                self._proc.kill()
            self._proc.wait()
        self._cleanup()

    def _stop_watchdog(self) -> None:
        """End the live child's watchdog with it (a killed child cannot end it itself).

        Called only while the child is alive, so the watchdog is too and its
        process group id cannot have been reused.
        """
        if self._watchdog is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._watchdog, signal.SIGKILL)

    def close(self) -> None:
        """Ask the child to exit (closing its pipe), killing it if it does not."""
        if self._proc is not None and self._send is not None:
            self._send.close()
            self._send = None
            try:
                self._proc.wait(timeout=_CLOSE_GRACE_S)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._cleanup()

    def _cleanup(self) -> None:
        for conn in (self._send, self._recv):
            if conn is not None:
                conn.close()
        self._send = self._recv = None
        self._proc = None
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None


_local = threading.local()


def thread_host() -> GmatHost:
    """The persistent host of the calling thread, created on first use."""
    host: GmatHost | None = getattr(_local, "host", None)
    if host is None:
        host = GmatHost()
        _local.host = host
        register_for_exit(host)
        with _hosts_lock:
            _thread_hosts[threading.current_thread()] = host
    return host


def close_hosts_of_ended_threads() -> None:
    """Close the hosts of threads that have ended, such as a closed in-process Dask worker's.

    A host outlives its thread otherwise: it would keep its GMAT process (and
    memory) until the interpreter exits.
    """
    with _hosts_lock:
        ended = [thread for thread in _thread_hosts if not thread.is_alive()]
        hosts = [_thread_hosts.pop(thread) for thread in ended]
    for host in hosts:
        host.close()
        forget_at_exit(host)


def interrupt_hosts_of(threads: Iterable[threading.Thread]) -> None:
    """Stop for good the hosts of ``threads`` (:meth:`GmatHost.interrupt`): their runs end now.

    For a pool that closes threads it cannot stop itself, such as an
    in-process Dask worker's, which would otherwise finish its run first.
    """
    with _hosts_lock:
        hosts = [_thread_hosts[thread] for thread in threads if thread in _thread_hosts]
    for host in hosts:
        host.interrupt()


def lend_hosts(hosts: queue.SimpleQueue[GmatHost]) -> None:
    """Make the calling thread borrow its hosts from ``hosts`` (an executor initializer).

    A pool whose threads outnumber its hosts lends them out run by run: a
    thread gives its host back as soon as the run ends, so another thread's
    run starts on it at once while the first settles the outputs.
    """
    _local.lender = hosts


def _lender() -> queue.SimpleQueue[GmatHost] | None:
    """The hosts the calling thread's pool lends it (:func:`lend_hosts`), if any."""
    lender: queue.SimpleQueue[GmatHost] | None = getattr(_local, "lender", None)
    return lender


@contextlib.contextmanager
def borrowed_host() -> Iterator[GmatHost]:
    """The host a run on this thread uses: one lent by the thread's pool, or its own.

    Hosts are lent first in, first out, so ``n`` tasks that each borrow once
    get ``n`` different hosts when the pool has ``n``.
    """
    lender = _lender()
    if lender is None:
        yield thread_host()
        return
    host = lender.get()
    try:
        yield host
    finally:
        lender.put(host)


_all_hosts: list[GmatHost] = []
_thread_hosts: dict[threading.Thread, GmatHost] = {}
"""The hosts :func:`thread_host` made, by the thread that owns each."""
_hosts_lock = threading.Lock()


def register_for_exit(host: GmatHost) -> None:
    """Close ``host`` when this interpreter exits (:func:`close_all_hosts`)."""
    import atexit

    with _hosts_lock:
        if not _all_hosts:
            atexit.register(close_all_hosts)
        _all_hosts.append(host)


def forget_at_exit(host: GmatHost) -> None:
    """Undo :func:`register_for_exit` for a host its owner has closed for good."""
    with _hosts_lock, contextlib.suppress(ValueError):
        _all_hosts.remove(host)


def close_all_hosts() -> None:
    """Close every persistent host this process started (pool shutdown, exit)."""
    with _hosts_lock:
        hosts = list(_all_hosts)
    for host in hosts:
        host.close()


def worker_died(
    spec: RunSpec, reason: str, where: str = "", started: datetime | None = None
) -> RunOutcome:
    """A failed, retryable outcome for a run whose process or executor worker was lost."""
    now = datetime.now(UTC)
    return RunOutcome.failed(
        spec.run_id,
        f"worker process died ({reason}){where}",
        started or now,
        now,
        FailureKind.WORKER_DIED,
    )


def run_node(
    spec: RunSpec,
    reuse_gmat_context: bool = True,
    retries: int = 0,
    postprocess: Postprocess | None = None,
) -> RunOutcome:
    """Execute one run where this function is called: the unit of work of every sweep graph.

    With ``reuse_gmat_context`` the run goes to a persistent GMAT host, the
    calling thread's own or one its pool lends it (:func:`borrowed_host`): its
    loaded mission is reused, and a timeout kills only that host. A lent host
    is given back before its outputs are fsynced. Otherwise the run gets a
    fresh interpreter. A transient failure (timeout, dead
    host) is retried here, up to ``retries`` times, on a fresh host; the
    earlier attempts travel in the outcome's ``previous``. With
    ``postprocess`` the run's metrics are computed here too, on the worker
    that ran it (:func:`gmat_sweep.metrics.apply`). Never raises for the
    run's own failure.
    """
    if not reuse_gmat_context:
        outcome = _retrying(retries, lambda: run_spec_in_subprocess(spec))
    else:

        def attempt() -> RunOutcome:
            with borrowed_host() as host:
                outcome = host.run(spec, timeout_s=_timeout(spec))
            # A lent host runs the next run meanwhile: a slow disk never idles GMAT.
            return outcome if host.durable else _settled(spec, outcome)

        outcome = _retrying(retries, attempt)
    return _postprocessed(spec, outcome, postprocess)


def _timeout(spec: RunSpec) -> float | None:
    return spec.run_options.get("timeout_s")


def _retrying(
    retries: int, attempt: Callable[[], RunOutcome], first: RunOutcome | None = None
) -> RunOutcome:
    """``first`` (or ``attempt()``), attempted again while it failed transiently, ``retries`` times.

    The earlier attempts travel in the outcome's ``previous``.
    """
    earlier: list[RunOutcome] = []
    outcome = attempt() if first is None else first
    while outcome.failure is not None and outcome.failure.transient and len(earlier) < retries:
        earlier.append(outcome)
        outcome = attempt()
    return dataclasses.replace(outcome, previous=tuple(earlier)) if earlier else outcome


def _postprocessed(
    spec: RunSpec, outcome: RunOutcome, postprocess: Postprocess | None
) -> RunOutcome:
    if postprocess is None:
        return outcome
    from gmat_sweep.metrics import apply

    return apply(outcome, spec, postprocess)


def _settled(spec: RunSpec, outcome: RunOutcome) -> RunOutcome:
    """``outcome`` once its outputs are durable (:func:`storage.settle`); failed if they cannot be.

    A disk that fails the fsyncs fails the run, as it would have failed it in
    a host that fsyncs itself: the sweep goes on, and the manifest never
    lists as ok a run whose outputs a power cut could take.
    """
    if outcome.status is not RunStatus.OK:
        return outcome
    try:
        storage.settle(spec.output_dir, outcome.output_paths.values())
    except OSError as exc:
        failed = RunOutcome.failed(
            spec.run_id,
            f"run {spec.run_id} ran, but its outputs in {spec.output_dir} could not be made "
            f"durable (fsync failed: {exc}); check the disk (free space, I/O errors), then "
            "re-run the failed runs with Sweep.from_manifest(...).resume()",
            outcome.started_at,
            outcome.ended_at,
            script_sha256=outcome.script_sha256,
        )
        return dataclasses.replace(failed, previous=outcome.previous)
    return outcome


def run_nodes(
    specs: Sequence[RunSpec],
    reuse_gmat_context: bool = True,
    retries: int = 0,
    postprocess: Postprocess | None = None,
) -> list[RunOutcome]:
    """Execute several runs in order in one task (amortises an executor's per-task cost).

    On the calling thread's own host, runs are pipelined: run k+1 is sent
    before run k's outputs are fsynced (:func:`gmat_sweep.storage.settle`),
    so GMAT never waits for the disk (an fsync on a cluster's shared file
    system can cost milliseconds). A run that failed transiently is retried
    before the next one is sent. Otherwise each run is :func:`run_node`.
    """
    if not reuse_gmat_context or _lender() is not None:
        return [run_node(spec, reuse_gmat_context, retries, postprocess) for spec in specs]
    host = thread_host()
    outcomes: list[RunOutcome] = []
    unsettled: tuple[RunSpec, RunOutcome] | None = None
    for spec in specs:
        sent = host.send(spec, durable=False)
        if unsettled is not None:
            outcomes.append(_postprocessed(unsettled[0], _settled(*unsettled), postprocess))
        first = sent if isinstance(sent, RunOutcome) else host.receive(spec, sent, _timeout(spec))

        def attempt(spec: RunSpec = spec) -> RunOutcome:
            return host.run(spec, _timeout(spec), durable=False)

        unsettled = (spec, _retrying(retries, attempt, first))
    if unsettled is not None:
        outcomes.append(_postprocessed(unsettled[0], _settled(*unsettled), postprocess))
    return outcomes


def check_node(script_path: Path, values: Mapping[str, Sequence[Any]]) -> list[str]:
    """Validate overrides on the calling thread's GMAT host (warming it for the runs)."""
    with borrowed_host() as host:
        return host.check_fields(script_path, values)


def run_spec_in_subprocess(spec: RunSpec) -> RunOutcome:
    """Run ``spec`` in a fresh interpreter that bootstraps GMAT from scratch.

    Slower than a persistent host (interpreter and engine start-up per run),
    but each run sees only its own script, so one sweep may mix scripts.
    """
    host = GmatHost()
    try:
        return host.run(spec, timeout_s=spec.run_options.get("timeout_s"))
    finally:
        host.close()


_WATCHDOG = """
parent=$1 host=$2 scratch=$3
while kill -0 "$host" 2>/dev/null; do
    if [ -r "/proc/$host/stat" ] && read -r stat < "/proc/$host/stat"; then
        set -- ${stat##*) }
        ppid=$2
    elif kill -0 "$parent" 2>/dev/null; then
        ppid=$parent
    else
        ppid=gone
    fi
    if [ "$ppid" != "$parent" ]; then
        kill -9 "$host"
        sleep 0.2
        rm -rf "$scratch"
        exit 0
    fi
    sleep 0.5
done
"""
_WATCHDOG_NAME = "gmat-sweep-host-watchdog"


def _watch_parent(scratch: str) -> int | None:
    """Start a watchdog that kills this host within ~0.5 s of its parent's death.

    A host notices a dead parent only when it next reads its pipe, and a run
    in progress holds the GIL, so no thread of the host can notice earlier: a
    mission that hangs would run forever after a driver SIGKILL. The watchdog
    is a ``/bin/sh`` loop outside this interpreter (about 1 MB), in its own
    session (a terminal's Ctrl-C does not reach it). Every 0.5 s it reads this
    process's parent from ``/proc/<pid>/stat`` (elsewhere: ``kill -0`` on the
    parent); once the parent is gone it SIGKILLs this process and removes its
    scratch directory. When this process exits normally it ends the watchdog
    on its way out, and a parent that kills it ends the watchdog first (its
    pid, returned here, travels in the "ready" message); otherwise the
    watchdog exits within 0.5 s. ``/proc`` is the
    better test: a host is re-parented the moment its parent exits, while
    ``kill -0`` still finds a dead parent that is waiting to be reaped.
    ``prctl(PR_SET_PDEATHSIG)`` is not used: it fires when the *thread* that
    started the host exits, not the process, and a host it kills could not
    remove its scratch directory. POSIX only; elsewhere hosts rely on the pipe.
    """
    if os.name != "posix":
        return None
    import atexit

    watchdog = subprocess.Popen(
        ["/bin/sh", "-c", _WATCHDOG, _WATCHDOG_NAME, str(os.getppid()), str(os.getpid()), scratch],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    atexit.register(_stop_watchdog, watchdog)
    return watchdog.pid


def _stop_watchdog(watchdog: subprocess.Popen[bytes]) -> None:
    """On a normal exit, end the watchdog and its ``sleep`` at once (its own process group)."""
    with contextlib.suppress(ProcessLookupError):  # it may have gone already
        os.killpg(watchdog.pid, signal.SIGKILL)
    watchdog.wait()


def serve(read_fd: int, write_fd: int, scratch: str) -> int:
    """Child side: run every spec received until the parent closes the pipe.

    ``scratch`` is the host's private directory (also its TMPDIR); the child
    removes it when its parent goes away without cleaning up: the pipe closes
    under a read (``EOFError``), or under an answer (a run's outcome, a
    start-up error) the parent did not live to receive (``BrokenPipeError``). A watchdog
    (:func:`_watch_parent`) kills this process and removes ``scratch`` when the
    parent dies while a run is in progress.
    """
    watchdog = _watch_parent(scratch)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    recv = Connection(read_fd, writable=False)
    send = Connection(write_fd, readable=False)
    try:
        _start_engine()
    except Exception as exc:
        hello: dict[str, Any] = {"error": f"{type(exc).__name__}: {exc}"}
    else:
        hello = {"ready": os.getpid(), "watchdog": watchdog}
    try:
        send.send_bytes(json.dumps(hello).encode())
        if "ready" in hello:
            _answer(recv, send)
    except (EOFError, BrokenPipeError):
        # The parent closed the pipe or died without closing us (even before
        # it heard our start-up error): remove our scratch directory (it is
        # our TMPDIR) ourselves, or nobody will.
        shutil.rmtree(scratch, ignore_errors=True)
    return 0 if "ready" in hello else 1


def _start_engine() -> None:
    """Pay the imports and the engine's start-up before the first request."""
    import gmat_sweep.worker  # noqa: F401
    from gmat_sweep.engine import ensure_engine

    ensure_engine()
    import gmat_run  # noqa: F401  (the worker imports it lazily: pay it before the first run)


def _answer(recv: Connection, send: Connection) -> None:
    """Answer the parent's requests until its pipe closes (``EOFError``, ``BrokenPipeError``)."""
    from gmat_sweep.worker import check_fields, initial_states, list_fields, run_one

    while True:
        request = json.loads(recv.recv_bytes())
        if request["op"] == "check":
            problems = check_fields(Path(request["script"]), request["values"])
            send.send_bytes(json.dumps({"problems": problems}).encode())
        elif request["op"] == "fields":
            try:
                found = list_fields(Path(request["script"]))
                send.send_bytes(msgspec.json.encode({"fields": found}))
            except SweepConfigError as exc:
                send.send_bytes(json.dumps({"error": str(exc)}).encode())
        elif request["op"] == "state":
            try:
                spec = convert(request["spec"], RunSpec)
                reply: dict[str, Any] = {"states": initial_states(spec, request["spacecraft"])}
            except Exception as exc:
                reply = {"error": f"{type(exc).__name__}: {exc}"}
            send.send_bytes(json.dumps(reply).encode())
        else:
            outcome = run_one(
                convert(request["spec"], RunSpec),
                on_start=lambda: send.send_bytes(_RUNNING),
                durable=request["durable"],
            )
            send.send_bytes(encode(outcome))
