"""Sweeps that write to and resume from s3://, against a real S3 server (SeaweedFS).

Every test runs real GMAT sweeps whose outputs and manifest go through s3fs
to the session's SeaweedFS server (see ``s3_server.py``), and checks them
against the same sweep on local disk, object by object where it matters.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from s3_server import S3Server, s3_server  # noqa: F401  (the fixture, used by name)

from gmat_sweep import aggregate as aggregate_module
from gmat_sweep import cli as cli_module
from gmat_sweep.api import monte_carlo, open_sweep, sobol, sweep
from gmat_sweep.backends.local import LocalPool
from gmat_sweep.cli import main
from gmat_sweep.errors import SweepConfigError
from gmat_sweep.manifest import ENTRIES_DIR, Manifest, read_all_entries, unreadable_ok_runs
from gmat_sweep.spec import RunStatus
from gmat_sweep.sweep import Sweep

pytestmark = pytest.mark.slow

GRID = {"Sat.SMA": [6800.0 + 25.0 * i for i in range(6)], "Sat.Cd": [2.0, 2.4]}
PERTURB = {"Sat.SMA": ("normal", 7000.0, 20.0), "Sat.Cd": ("uniform", 2.0, 2.4)}

_DRIVER = textwrap.dedent(
    """
    import json, os, signal, sys
    from gmat_sweep import sweep
    from gmat_sweep.manifest import Manifest

    script, out, grid, options, kill_at = sys.argv[1:6]
    appended = 0
    real_append = Manifest.append_entry

    def append(self, entry):
        # Fault injection: die after the run's outputs are written, before its entry is.
        global appended
        if appended == int(kill_at):
            os.kill(os.getpid(), signal.SIGKILL)
        appended += 1
        real_append(self, entry)

    Manifest.append_entry = append
    sweep(script, json.loads(grid), out=out, storage_options=json.loads(options), progress=False)
    """
)


@pytest.fixture(scope="module")
def reference(
    tmp_path_factory: pytest.TempPathFactory, leo_basic: Path, pool: LocalPool
) -> pd.DataFrame:
    """The grid sweep on local disk: what every s3 sweep of GRID must equal."""
    out = tmp_path_factory.mktemp("local") / "study"
    return sweep(leo_basic, GRID, backend=pool, out=out, progress=False).to_pandas()


def _prefix() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


def _assert_no_secret(server: S3Server, prefix: str, *texts: str) -> None:
    """No object under ``prefix``, nor any of ``texts``, contains a secret key."""
    client = server.client()
    keys = server.keys(prefix)
    assert keys
    for key in keys:
        body = client.get_object(Bucket=server.bucket, Key=key)["Body"].read()
        for secret in (server.secret, server.reader_secret):
            assert secret.encode() not in body, f"secret written into {key}"
    for text in texts:
        assert server.secret not in text


def test_grid_sweep_to_s3_equals_local_and_records_no_credentials(
    s3_server: S3Server,  # noqa: F811
    leo_basic: Path,
    pool: LocalPool,
    reference: pd.DataFrame,
    capfd: pytest.CaptureFixture[str],
) -> None:
    prefix = _prefix()
    options = s3_server.storage_options()
    study = sweep(
        leo_basic,
        GRID,
        backend=pool,
        out=s3_server.url(prefix),
        storage_options=options,
        progress=True,
    )
    pd.testing.assert_frame_equal(study.to_pandas(), reference)

    keys = s3_server.keys(prefix)
    assert f"{prefix}/manifest.jsonl" in keys
    assert not [key for key in keys if f"/{ENTRIES_DIR}/" in key]  # compacted at the end
    for run_id in range(12):
        run = f"{prefix}/run-{run_id:06d}"
        assert {f"{run}/report__RF.parquet", f"{run}/gmat.log"} <= set(keys)
    manifest = Manifest.load(s3_server.url(prefix, "manifest.jsonl"), storage_options=options)
    first = manifest.entry_for(0)
    assert first is not None
    assert first.output_paths["report__RF"] == Path("run-000000/report__RF.parquet")
    assert len(read_all_entries(manifest.path or "", storage_options=options)) == 12
    captured = capfd.readouterr()
    _assert_no_secret(s3_server, prefix, captured.out, captured.err, repr(study))
    # Reopened from the bucket alone: no script, no backend, no GMAT process.
    reopened = open_sweep(s3_server.url(prefix), storage_options=options)
    pd.testing.assert_frame_equal(reopened.to_pandas(), reference)
    assert list(reopened.final().index) == list(range(12))


def test_cli_runs_shows_and_exports_an_s3_sweep_with_storage_options(
    s3_server: S3Server,  # noqa: F811
    leo_basic: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A custom endpoint and credentials reach s3fs only through --storage-option.
    options = s3_server.storage_options()
    flags = [f"key={options['key']}", f"secret={options['secret']}"] + [
        f"client_kwargs.{name}={value}" for name, value in options["client_kwargs"].items()
    ]
    storage = [item for flag in flags for item in ("--storage-option", flag)]
    url = s3_server.url(_prefix())
    grid = ["--param", "Sat.SMA=6900,7000", "--param", "Sat.ECC=0.001,0.02"]
    assert main(["run", str(leo_basic), *grid, "--out", url, "--no-progress", *storage]) == 0
    assert main(["show", url, *storage]) == 0
    assert "ok: 4" in capsys.readouterr().out
    target = tmp_path / "results.csv"
    assert main(["export", url, "--to", str(target), *storage]) == 0
    frame = pd.read_csv(target)
    assert sorted(frame["run_id"].unique()) == [0, 1, 2, 3]
    expected = Manifest.load(f"{url}/manifest.jsonl", storage_options=options)
    by_run = sorted(expected.entries, key=lambda entry: entry.run_id)
    assert [entry.overrides for entry in by_run] == [
        {"Sat.ECC": ecc, "Sat.SMA": sma} for ecc in (0.001, 0.02) for sma in (6900, 7000)
    ]


def test_lazy_loc_reads_one_object(
    s3_server: S3Server,  # noqa: F811
    leo_basic: Path,
    pool: LocalPool,
    reference: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    prefix = _prefix()
    study = sweep(
        leo_basic,
        GRID,
        backend=pool,
        out=s3_server.url(prefix),
        storage_options=s3_server.storage_options(),
        progress=False,
    )
    # One run per partition, so .loc reads exactly one object.
    lazy = aggregate_module.report_frame(
        study.manifest,
        s3_server.url(prefix),
        storage_options=s3_server.storage_options(),
        partition_rows=1,
    )
    scanned: list[list[str]] = []
    real_dataset = aggregate_module.ds.dataset

    def counting_dataset(source: list[str], *args: Any, **kwargs: Any) -> Any:
        scanned.append(list(source))
        return real_dataset(source, *args, **kwargs)

    monkeypatch.setattr(aggregate_module.ds, "dataset", counting_dataset)
    one = lazy.loc[7].compute()
    wanted = s3_server.url(prefix, "run-000007", "report__RF.parquet")
    assert scanned == [[wanted.removeprefix("s3://")]]
    expected = reference.loc[7].reset_index()
    assert one["time"].tolist() == expected["time"].tolist()
    assert one["Sat.EarthMJ2000Eq.X"].tolist() == expected["Sat.EarthMJ2000Eq.X"].tolist()


def test_monte_carlo_to_s3_equals_local(
    s3_server: S3Server,  # noqa: F811
    leo_basic: Path,
    pool: LocalPool,
    tmp_path: Path,
) -> None:
    prefix = _prefix()
    remote = monte_carlo(
        leo_basic,
        n=6,
        perturb=PERTURB,
        seed=11,
        backend=pool,
        out=s3_server.url(prefix),
        storage_options=s3_server.storage_options(),
        progress=False,
    )
    local = monte_carlo(
        leo_basic, n=6, perturb=PERTURB, seed=11, backend=pool, out=tmp_path / "mc", progress=False
    )
    pd.testing.assert_frame_equal(remote.to_pandas(), local.to_pandas())
    assert remote.seed == 11
    _assert_no_secret(s3_server, prefix)


def test_analysis_and_adaptive_stopping_on_an_s3_sweep(
    s3_server: S3Server,  # noqa: F811
    data_dir: Path,
    pool: LocalPool,
) -> None:
    # The sweeps are reopened from the bucket with the options alone: every analysis reads
    # the outputs through the sweep's own storage_options.
    ishigami = data_dir / "ishigami.script"
    options = s3_server.storage_options()
    design, adaptive = s3_server.url(_prefix()), s3_server.url(_prefix())
    sobol(ishigami, {"X1.Value": (-3.0, 3.0)}, 4, seed=2, backend=pool, out=design,
          storage_options=options, progress=False)  # fmt: skip
    monte_carlo(
        ishigami, n=4, perturb={"X2.Value": ("uniform", -3.0, 3.0)}, seed=3, backend=pool,
        out=adaptive, storage_options=options, progress=False,
        until={"column": "Y", "half_width": 1e-6, "reduce": "max"}, batch=4, max_n=12,
    )  # fmt: skip
    opened = open_sweep(design, storage_options=options)
    table = opened.sensitivity("Y")
    assert table.attrs["method"] == "sobol" and list(table.index) == ["X1.Value"]
    grown = open_sweep(adaptive, storage_options=options)
    stopped = grown.stopping
    assert stopped is not None and (stopped.reason, stopped.n) == ("max_n", 12)
    y = grown.final()["Y"].to_numpy()
    running = grown.convergence("Y", reduce="max")  # the to_pandas path
    assert running["estimate"].iloc[-1] == pytest.approx(y.mean(), rel=1e-12)
    assert stopped.estimate == running["estimate"].iloc[-1]
    bound = grown.tolerance_bound("Y", coverage=0.5, confidence=0.5)
    assert (bound.upper, bound.n) == (y.max(), 12)


def test_driver_sigkill_then_resume_from_the_s3_manifest(
    s3_server: S3Server,  # noqa: F811
    leo_basic: Path,
    pool: LocalPool,
    reference: pd.DataFrame,
) -> None:
    prefix, kill_at = _prefix(), 5
    options = s3_server.storage_options()
    manifest_url = s3_server.url(prefix, "manifest.jsonl")
    argv = [leo_basic, s3_server.url(prefix), json.dumps(GRID), json.dumps(options), kill_at]
    driver = subprocess.run(
        [sys.executable, "-c", _DRIVER, *map(str, argv)],
        capture_output=True,
        timeout=300,
        check=False,
        env=dict(os.environ),
    )
    assert driver.returncode == -signal.SIGKILL, driver.stderr.decode()[-2000:]

    # The entries that were recorded survive as objects: no compaction ran.
    entry_objects = [key for key in s3_server.keys(prefix) if f"/{ENTRIES_DIR}/" in key]
    assert len(entry_objects) == kill_at
    crashed = Manifest.load(manifest_url, storage_options=options)
    assert [entry.status for entry in crashed.entries] == [RunStatus.OK] * kill_at

    resumed = Sweep.from_manifest(
        manifest_url, leo_basic, backend=pool, storage_options=options, progress=False
    )
    resumed.resume()
    executed = len(read_all_entries(manifest_url, storage_options=options)) - kill_at
    assert executed == len(reference.index.unique("run_id")) - kill_at  # nothing ran twice
    pd.testing.assert_frame_equal(resumed.to_pandas(), reference)
    assert not [key for key in s3_server.keys(prefix) if f"/{ENTRIES_DIR}/" in key]
    _assert_no_secret(s3_server, prefix, driver.stdout.decode(), driver.stderr.decode())


def test_read_only_credentials_read_results_but_cannot_resume(
    s3_server: S3Server,  # noqa: F811
    fails_at_runtime: Path,
    pool: LocalPool,
) -> None:
    prefix = _prefix()
    grid = {"Idx.Value": [1, 4]}  # run 1 fails inside GMAT
    sweep(
        fails_at_runtime,
        grid,
        backend=pool,
        out=s3_server.url(prefix),
        storage_options=s3_server.storage_options(),
        progress=False,
    )
    _assert_no_secret(s3_server, prefix)
    before = s3_server.keys(prefix)
    reader = s3_server.storage_options(key=s3_server.reader_key, secret=s3_server.reader_secret)
    study = Sweep.from_manifest(
        s3_server.url(prefix, "manifest.jsonl"),
        fails_at_runtime,
        backend=pool,
        storage_options=reader,
        progress=False,
    )
    frame = study.to_pandas()
    assert frame.loc[1, "__status"].tolist() == ["failed"]
    with pytest.raises(SweepConfigError, match=r"cannot write to s3://.*access denied"):
        study.resume()
    assert s3_server.keys(prefix) == before


def test_overwrite_replaces_a_crashed_sweep_with_its_entry_objects(
    s3_server: S3Server,  # noqa: F811
    leo_basic: Path,
    pool: LocalPool,
) -> None:
    prefix = _prefix()
    options = s3_server.storage_options()
    out = s3_server.url(prefix)
    sweep(leo_basic, {"Sat.Cd": [2.0, 2.2, 2.4]}, backend=pool, out=out, storage_options=options)
    stray = f"{prefix}/{ENTRIES_DIR}/00000000000000000001-left-by-a-crash.json"
    s3_server.client().put_object(Bucket=s3_server.bucket, Key=stray, Body=b"{}")
    with pytest.raises(SweepConfigError, match="already holds a sweep"):
        sweep(leo_basic, {"Sat.Cd": [2.0]}, backend=pool, out=out, storage_options=options)
    again = sweep(
        leo_basic,
        {"Sat.Cd": [2.1]},
        backend=pool,
        out=out,
        storage_options=options,
        overwrite=True,
        progress=False,
    )
    assert [entry.run_id for entry in again.manifest.entries] == [0]
    assert (
        len(Manifest.load(s3_server.url(prefix, "manifest.jsonl"), storage_options=options).entries)
        == 1
    )
    assert f"{prefix}/run-000002/report__RF.parquet" not in s3_server.keys(prefix)


def _unused_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("unreachable endpoint", r"the object store did not answer .*EndpointConnectionError"),
        ("missing bucket", r"the bucket does not exist"),
        ("read-only identity", r"access denied \(Access Denied"),
        ("wrong secret", r"access denied \(The request signature"),
    ],
)
def test_storage_problems_are_config_errors_before_anything_is_written(
    case: str,
    message: str,
    s3_server: S3Server,  # noqa: F811
    leo_basic: Path,
) -> None:
    prefix, bucket = _prefix(), s3_server.bucket
    options = s3_server.storage_options()
    if case == "unreachable endpoint":
        options = s3_server.storage_options(endpoint=f"http://127.0.0.1:{_unused_port()}")
    elif case == "missing bucket":
        bucket = "gmat-sweep-no-such-bucket"
    elif case == "read-only identity":
        options = s3_server.storage_options(
            key=s3_server.reader_key, secret=s3_server.reader_secret
        )
    else:
        options = s3_server.storage_options(secret="not-the-secret")
    out = f"s3://{bucket}/{prefix}"
    with pytest.raises(SweepConfigError, match=message) as info:
        sweep(leo_basic, {"Sat.Cd": [2.0]}, out=out, storage_options=options, progress=False)
    assert out in str(info.value)
    assert s3_server.secret not in str(info.value)
    assert s3_server.keys(prefix) == []
    buckets = [b["Name"] for b in s3_server.client().list_buckets()["Buckets"]]
    assert buckets == [s3_server.bucket]  # gmat_sweep never creates a bucket


def test_resuming_an_s3_manifest_with_a_torn_last_line_keeps_it_loadable(
    s3_server: S3Server,  # noqa: F811
    leo_basic: Path,
    pool: LocalPool,
) -> None:
    # A local sweep torn by a crash, then copied to the bucket: its last line is cut short.
    prefix = _prefix()
    options = s3_server.storage_options()
    out, key = s3_server.url(prefix), f"{prefix}/manifest.jsonl"
    sweep(leo_basic, {"Sat.Cd": [2.0, 2.2]}, backend=pool, out=out, storage_options=options)
    client = s3_server.client()
    lines = client.get_object(Bucket=s3_server.bucket, Key=key)["Body"].read().splitlines()
    torn = b"\n".join(lines[:-1]) + b"\n" + lines[-1][: len(lines[-1]) // 2]
    client.put_object(Bucket=s3_server.bucket, Key=key, Body=torn)
    study = open_sweep(out, storage_options=options)
    kept = [entry.run_id for entry in study.manifest.entries]  # lines are in completion order
    assert len(kept) == 1
    study.resume()  # re-runs the torn line's run, then folds its entry into manifest.jsonl
    reloaded = Manifest.load(s3_server.url(key), storage_options=options)
    assert sorted(entry.run_id for entry in reloaded.entries) == [0, 1]


@pytest.mark.parametrize(
    ("case", "error", "message"),
    [
        ("wrong secret", PermissionError, r"cannot read s3://\S+: access denied"),
        (
            "unreachable endpoint",
            ConnectionError,
            r"cannot read s3://\S+: the object store did not",
        ),
    ],
)
def test_reading_an_s3_sweep_the_store_refuses_names_the_url_and_the_fix(
    case: str,
    error: type[OSError],
    message: str,
    s3_server: S3Server,  # noqa: F811
    leo_basic: Path,
    pool: LocalPool,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = s3_server.url(_prefix())
    sweep(
        leo_basic,
        {"Sat.Cd": [2.0]},
        backend=pool,
        out=out,
        storage_options=s3_server.storage_options(),
    )
    if case == "wrong secret":
        options = s3_server.storage_options(secret="not-the-secret")
    else:
        options = s3_server.storage_options(endpoint=f"http://127.0.0.1:{_unused_port()}")
    options["config_kwargs"] = {"connect_timeout": 1, "retries": {"max_attempts": 1}}
    with pytest.raises(error, match=message) as info:
        open_sweep(out, storage_options=options)
    assert out in str(info.value) and s3_server.secret not in str(info.value)
    with pytest.raises(error, match=message):
        Manifest.load(f"{out}/manifest.jsonl", storage_options=options)
    flags = ["--storage-option", f"secret={options['secret']}", "--storage-option",
             f"client_kwargs.endpoint_url={options['client_kwargs']['endpoint_url']}"]  # fmt: skip
    for name, value in [("key", options["key"]), ("client_kwargs.region_name", "us-east-1"),
                        ("config_kwargs.connect_timeout", "1")]:  # fmt: skip
        flags += ["--storage-option", f"{name}={value}"]
    assert main(["show", out, *flags]) == 3  # a storage problem, not "a bug in gmat_sweep"
    assert out in capsys.readouterr().err


_DENIED = (
    b"HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\nConnection: close\r\n"
    b"Content-Length: %d\r\n\r\n%s"
)
_ACCESS_DENIED = b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"


class _Relay:
    """A TCP relay to the S3 server, to break the store after a sweep was opened through it.

    :meth:`cut` makes the endpoint go away; :meth:`deny` makes it answer every
    request with 403 AccessDenied, as it does once credentials expire.
    """

    def __init__(self, endpoint: str) -> None:
        import socket
        import threading

        self._target = ("127.0.0.1", int(endpoint.rsplit(":", 1)[1]))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._open: list[socket.socket] = []
        self._denying = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket
        import threading

        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # cut
                self._listener.close()
                return
            if self._denying:
                threading.Thread(target=self._refuse, args=(client,), daemon=True).start()
                continue
            server = socket.create_connection(self._target)
            self._open += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: Any, sink: Any) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                end.close()

    @staticmethod
    def _refuse(client: Any) -> None:
        """Answer one request with 403 AccessDenied (a HEAD gets no body) and hang up."""
        with client:
            request = b""
            while b"\r\n\r\n" not in request and (data := client.recv(65536)):
                request += data
            body = b"" if request.startswith(b"HEAD") else _ACCESS_DENIED
            client.sendall(_DENIED % (len(body), body))

    def _drop(self, *ends: Any) -> None:
        import socket

        for end in ends:  # shutdown, not close, wakes a thread in accept() or recv()
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Refuse new connections and drop the open ones: the store stops answering."""
        self._drop(self._listener, *self._open)

    def deny(self) -> None:
        """Drop the open connections and answer every new request with access denied."""
        self._denying = True
        self._drop(*self._open)


@pytest.mark.parametrize(
    ("breaks", "error", "problem"),
    [
        ("cut", ConnectionError, r"the object store did not answer .*check the endpoint"),
        ("deny", PermissionError, r"access denied \(.*fix the key/secret or the bucket policy"),
    ],
)
def test_reading_results_after_the_store_breaks_names_the_url_and_the_fix(
    breaks: str,
    error: type[OSError],
    problem: str,
    s3_server: S3Server,  # noqa: F811
    leo_basic: Path,
    pool: LocalPool,
    tmp_path: Path,
) -> None:
    relay = _Relay(s3_server.endpoint)
    out = s3_server.url(_prefix())
    options = s3_server.storage_options(endpoint=relay.endpoint)
    options["config_kwargs"] = {"connect_timeout": 1, "retries": {"max_attempts": 1}}
    sweep(leo_basic, {"Sat.Cd": [2.0]}, backend=pool, out=out, storage_options=options)
    study = open_sweep(out, storage_options=options)
    getattr(relay, breaks)()  # the store breaks after the sweep was opened
    message = rf"cannot read {out}\S*: {problem}"
    with pytest.raises(error, match=message):
        study.to_pandas()
    with pytest.raises(error, match=message):
        study.final(lazy=True).compute()
    with pytest.raises(error, match=message):
        study.archive(tmp_path / "study.zip")
    with pytest.raises(error, match=message):
        unreadable_ok_runs(study.manifest, out, options)


def test_show_reports_a_store_that_breaks_after_the_manifest_was_read(
    s3_server: S3Server,  # noqa: F811
    leo_basic: Path,
    pool: LocalPool,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    relay = _Relay(s3_server.endpoint)
    out = s3_server.url(_prefix())
    options = s3_server.storage_options(endpoint=relay.endpoint)
    sweep(leo_basic, {"Sat.Cd": [2.0]}, backend=pool, out=out, storage_options=options)
    facts = cli_module._facts

    def deny_then_count(*args: Any, **kwargs: Any) -> Any:
        relay.deny()  # after reading the manifest, before counting the outputs' rows
        return facts(*args, **kwargs)

    monkeypatch.setattr(cli_module, "_facts", deny_then_count)
    flags = ["--storage-option", f"key={options['key']}", "--storage-option",
             f"secret={options['secret']}", "--storage-option",
             f"client_kwargs.endpoint_url={relay.endpoint}", "--storage-option",
             "client_kwargs.region_name=us-east-1"]  # fmt: skip
    capsys.readouterr()
    assert main(["show", out, *flags]) == 3  # not "ok: 1" with 0 rows
    err = capsys.readouterr().err
    assert f"cannot read {out}/run-000000/report__RF.parquet: access denied" in err


def test_a_deleted_output_of_an_ok_run_reads_as_gone_and_resume_runs_it_again(
    s3_server: S3Server,  # noqa: F811
    leo_basic: Path,
    pool: LocalPool,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    prefix = _prefix()
    out, options = s3_server.url(prefix), s3_server.storage_options()
    sweep(leo_basic, {"Sat.Cd": [2.0, 2.2]}, backend=pool, out=out, storage_options=options)
    study = open_sweep(out, storage_options=options)
    s3_server.client().delete_object(
        Bucket=s3_server.bucket, Key=f"{prefix}/run-000001/report__RF.parquet"
    )
    gone = rf"{out}/run-000001/report__RF.parquet is gone .*run 1.*resume"
    with pytest.raises(FileNotFoundError, match=gone):
        study.to_pandas()
    with pytest.raises(FileNotFoundError, match=gone):
        study.to_dataframe().compute()
    flags = ["--storage-option", f"key={options['key']}", "--storage-option",
             f"secret={options['secret']}", "--storage-option",
             f"client_kwargs.endpoint_url={s3_server.endpoint}", "--storage-option",
             "client_kwargs.region_name=us-east-1"]  # fmt: skip
    capsys.readouterr()
    assert main(["export", out, "--to", str(tmp_path / "r.csv"), *flags]) == 3
    assert f"{out}/run-000001/report__RF.parquet is gone" in capsys.readouterr().err
    assert main(["show", out, "--json", *flags]) == 1
    assert json.loads(capsys.readouterr().out)["lost"] == 1
    assert unreadable_ok_runs(study.manifest, out, options) == [1]
