"""Where sweep files live: local paths and fsspec URLs behind one small interface.

Every write of a finished artefact is atomic and durable — a reader never
sees a file under its final name until it is complete, and once a write
returns it survives a power loss. Local files are written to a temporary name
in the same directory, fsynced, renamed, and the directory is fsynced; new
directories are fsynced into their parents. Files are created with mode
``0o666`` minus the umask, like any file a program opens for writing. Object
stores receive a single ``put`` of the whole payload, which they commit
atomically and durably.

``storage_options`` (endpoint, credentials) are handed to fsspec and nowhere
else: nothing in this module records or prints them.
"""

from __future__ import annotations

import contextlib
import os
import sys
import uuid
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from gmat_sweep.errors import SweepConfigError
from gmat_sweep.spec import PathLike, is_url, local_path

_OBJECT_STORES = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss"})
"""Protocols of flat object stores: no directories to create, nothing to append to."""

_S3_PROBE_CONFIG: dict[str, Any] = {
    "connect_timeout": 5,
    "read_timeout": 15,
    "retries": {"max_attempts": 1},
}
"""botocore settings of :func:`check_writable`'s probe (the user's own win): fail in seconds."""


_SUFFIXES = {"archive": "zip", "report": "html"}
"""The file name ending :func:`local_file`'s example names, per kind of file."""


def local_file(path: str | Path, what: str) -> Path:
    """``path`` as a local file to write one ``what`` (an archive, a report) into.

    Its directory must exist: this is checked before the work that fills the
    file, so a mistyped directory costs nothing.

    Raises
    ------
    SweepConfigError
        The directory does not exist, or ``path`` is itself a directory.
    """
    target = Path(path)
    if target.is_dir():
        raise SweepConfigError(
            f"{what} path {str(target)!r} is a directory; the {what} is one file: "
            f"name the file to write, e.g. {str(target / f'study.{_SUFFIXES[what]}')!r}"
        )
    if not target.parent.is_dir():
        raise SweepConfigError(
            f"{what} path {str(target)!r}: directory {str(target.parent)!r} does not exist; "
            f"create it first or write the {what} elsewhere"
        )
    return target


def join(location: PathLike, *parts: str) -> PathLike:
    """Join ``parts`` onto a local path or a URL, keeping its kind."""
    if is_url(location):
        return "/".join([str(location).rstrip("/"), *parts])
    return Path(location).joinpath(*parts)


def filesystem(
    location: PathLike, storage_options: Mapping[str, Any] | None = None
) -> tuple[Any, str]:
    """Return ``(fsspec filesystem, path within it)`` for ``location``.

    Raises
    ------
    SweepConfigError
        ``location`` is a URL whose scheme fsspec does not know (a typo such as ``s4://``).
    """
    import fsspec  # here, not at the top: GMAT hosts import this module and write local files

    protocol = str(location).split("::", 1)[0].split("://", 1)[0] if is_url(location) else "file"
    if protocol not in fsspec.available_protocols():
        raise SweepConfigError(
            f"{location}: unknown URL scheme {protocol!r}; use a local path or an fsspec URL "
            "such as s3://bucket/prefix, gs://bucket/prefix or file:///path"
        )
    fs, path = fsspec.core.url_to_fs(str(location), **dict(storage_options or {}))
    return fs, path


def is_object_store(location: PathLike) -> bool:
    """True for a URL on a flat object store (``s3://``, ``gs://``, ``az://`` ...)."""
    return is_url(location) and str(location).split("://", 1)[0] in _OBJECT_STORES


def make_dirs(
    location: PathLike,
    storage_options: Mapping[str, Any] | None = None,
    *,
    durable: bool = True,
) -> None:
    """Create ``location`` and its parents (a no-op on object stores, which have none).

    Locally, the parent of every directory created is fsynced, so the new
    entries survive a power loss (a ``run-NNNNNN/`` that vanished would take
    the files renamed into it along). ``durable=False`` leaves the fsync of
    ``location``'s own parent to a later :func:`settle` (missing ancestors
    are still fsynced at once). On an object store nothing is sent: s3fs's
    ``makedirs`` would cost a request per call and create a missing bucket,
    which gmat_sweep never does.
    """
    if not is_url(location):
        _make_local_dirs(local_path(location).absolute(), durable)
        return
    if is_object_store(location):
        return
    fs, path = filesystem(location, storage_options)
    fs.makedirs(path, exist_ok=True)


def _make_local_dirs(target: Path, durable: bool = True) -> None:
    """Create ``target`` and its missing parents, fsyncing each new one into its parent.

    One ``mkdir`` when only ``target`` is missing (a run directory: once a run).
    """
    try:
        target.mkdir()
    except FileExistsError:
        if not target.is_dir():
            raise
        return
    except FileNotFoundError:
        _make_local_dirs(target.parent)
        _make_local_dirs(target, durable)
        return
    if durable:
        _fsync_directory(target.parent)


def atomic_write(
    location: PathLike,
    data: bytes,
    storage_options: Mapping[str, Any] | None = None,
    *,
    durable: bool = True,
) -> None:
    """Write ``data`` so that ``location`` appears only once it is complete, and durably.

    Locally: write ``.<name>.<random>.tmp`` beside the target (mode ``0o666``
    minus the umask), fsync it, rename it over ``location``, fsync the
    directory. A crash leaves the old file or the new one, never a torn or
    empty one under the final name. The temporary file is removed if the write
    fails. A URL is written with one ``put``. ``durable=False`` keeps the
    rename but skips both fsyncs: for evidence that a power cut may lose (a
    run's GMAT log), or for results that :func:`settle` makes durable before
    anything records them.
    """
    if not is_url(location):
        target = local_path(location)
        temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        descriptor = os.open(temporary, flags, 0o666)
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(data)
                if durable:
                    handle.flush()
                    os.fsync(handle.fileno())
            os.replace(temporary, target)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        if durable:
            _fsync_directory(target.parent)
        return
    fs, path = filesystem(location, storage_options)
    fs.pipe_file(path, data)


def settle(directory: PathLike, files: Iterable[PathLike]) -> None:
    """Make durable what non-durable writes into ``directory`` left in the page cache.

    fsyncs each of ``files`` (written there with ``durable=False``), then
    ``directory`` (their renames) and its parent (``directory``'s own entry,
    made by ``make_dirs(..., durable=False)``). A file's cached data belongs
    to the machine, not to the process that wrote it, so any process on the
    same machine can do this: a GMAT host's pool does it once the host is
    free for its next run, so a slow disk never idles GMAT. A no-op for URLs,
    whose writes are durable already.
    """
    if is_url(directory):
        return
    # Windows flushes a file only through a handle open for writing.
    mode = os.O_RDWR | getattr(os, "O_BINARY", 0) if sys.platform == "win32" else os.O_RDONLY
    for file in files:
        descriptor = os.open(local_path(file), mode)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
    folder = local_path(directory).absolute()
    _fsync_directory(folder)
    _fsync_directory(folder.parent)


def _fsync_directory(directory: Path) -> None:
    """Make a rename or a new entry in ``directory`` durable.

    Windows cannot open directories and needs no such step.
    """
    if sys.platform == "win32":
        return
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


_PARQUET_MAGIC = b"PAR1"


def unreadable(locations: list[str], storage_options: Mapping[str, Any] | None = None) -> list[str]:
    """The files among ``locations`` (all on one filesystem) that cannot be read back.

    A file is unreadable when it is missing, or when a ``.parquet`` file does
    not end with its footer: a 4-byte footer length and the magic ``PAR1``
    (what a machine crash leaves of a file whose data never reached the disk
    is empty or zero-filled). One suffix read per file, concurrent where the
    filesystem can, so checking a 100k-run sweep stays cheap. Errors other than
    a missing file propagate; on an object store, access denied and a store that
    does not answer as :func:`reading` reports them, naming the file.
    """
    if not locations:
        return []
    fs, _ = filesystem(locations[0], storage_options)
    paths = [fs._strip_protocol(location) for location in locations]
    tails = fs.cat_ranges(paths, [-8] * len(paths), [None] * len(paths), on_error="return")
    bad = []
    for location, tail in zip(locations, tails, strict=True):
        if isinstance(tail, FileNotFoundError | IsADirectoryError | NotADirectoryError):
            bad.append(location)
        elif isinstance(tail, OSError) and _error_code(tail) == "InvalidRange":
            bad.append(location)  # S3 answers a suffix read of an empty object with 416
        elif isinstance(tail, BaseException):
            with reading(location):
                raise tail
        elif location.endswith(".parquet") and not _parquet_tail(tail):
            bad.append(location)
    return bad


def _error_code(exc: OSError) -> str | None:
    """The S3 error code behind an error s3fs translated, if any."""
    response = getattr(exc.__cause__, "response", None) or {}
    code = response.get("Error", {}).get("Code")
    return code if isinstance(code, str) else None


def _parquet_tail(tail: bytes) -> bool:
    return len(tail) == 8 and tail[4:] == _PARQUET_MAGIC and tail[:4] != b"\0\0\0\0"


def whole_parquet(data: bytes) -> bool:
    """Whether ``data``, a whole file, ends as a Parquet file does (:func:`unreadable`'s rule)."""
    return _parquet_tail(data[-8:])


def _access_denied(exc: OSError, allowed: str) -> str:
    return (
        f"access denied ({exc}); the credentials in storage_options (or the environment) must "
        f"be allowed to {allowed} objects under this prefix: fix the key/secret or the bucket "
        "policy"
    )


def _no_answer(exc: BaseException) -> str:
    return (
        f"the object store did not answer ({type(exc).__name__}: {exc}); check the endpoint "
        "(storage_options={'client_kwargs': {'endpoint_url': ...}} for S3-compatible servers, "
        "--storage-option client_kwargs.endpoint_url=... or AWS_ENDPOINT_URL on the command "
        "line), that the server is running and reachable from this machine"
    )


def client_problem(exc: BaseException) -> str:
    """What a :func:`client_error` means and what to do: give credentials, or check the endpoint."""
    return _no_credentials(exc) if _lacks_credentials(exc) else _no_answer(exc)


def _lacks_credentials(exc: BaseException) -> bool:
    return "Credentials" in type(exc).__name__  # botocore's NoCredentialsError, Partial...


def _no_credentials(exc: BaseException) -> str:
    return (
        f"no credentials ({type(exc).__name__}: {exc}); give them in the environment "
        "(AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE) or as storage options "
        "key and secret (--storage-option key=... --storage-option secret=... on the command "
        "line), or anon=true for a public bucket"
    )


def client_error(exc: BaseException) -> bool:
    """Whether ``exc`` is botocore's own error (no answer, a timeout, no credentials).

    s3fs turns most of an object store's answers into ``OSError``s, but not a
    client that cannot reach the store, sign its request or be built.
    """
    botocore = sys.modules.get("botocore.exceptions")  # loaded by s3fs, if anything uses it
    return botocore is not None and isinstance(exc, botocore.BotoCoreError)


@contextlib.contextmanager
def reading(
    location: PathLike,
    storage_options: Mapping[str, Any] | None = None,
    *,
    gone: str | None = None,
) -> Iterator[None]:
    """Name ``location`` and the fix when an object store refuses a read or does not answer.

    s3fs reports a wrong secret as a bare ``PermissionError('Forbidden')``, and
    missing credentials or an unreachable endpoint as botocore's own exception;
    each becomes the ``OSError`` kind a reader expects (``PermissionError``,
    ``ConnectionError``), naming the URL. Local paths pass through unchanged.

    A missing file passes through unchanged too, unless ``gone`` says what to
    do about it (``"resume the sweep ..."``): then it becomes a
    ``FileNotFoundError`` naming ``location`` and that fix. Readers that hide
    the store's answer behind "not found" (pyarrow's fsspec bridge checks
    ``isfile`` first, which swallows every error) are asked again here, so a
    refusal or a store that does not answer is reported as that, not as a gone file.
    """
    try:
        with _translated(location):
            yield
    except FileNotFoundError as missing:
        if gone is None:
            raise
        if is_url(location):
            fs, path = filesystem(location, storage_options)
            fs.invalidate_cache(path)
            try:
                with _translated(location):
                    fs.info(path)
            except FileNotFoundError:
                pass
            else:
                raise missing  # it is there after all: the first error was something else
        raise FileNotFoundError(
            f"{location} is gone (deleted or moved since it was written); {gone}"
        ) from None


@contextlib.contextmanager
def _translated(location: PathLike) -> Iterator[None]:
    """:func:`reading`'s translation of a refusal or a client error, naming ``location``."""
    try:
        yield
    except PermissionError as exc:
        if not is_url(location):
            raise
        raise PermissionError(
            f"cannot read {location}: {_access_denied(exc, 'read and list')}"
        ) from None
    except Exception as exc:
        if not client_error(exc):
            raise
        kind = PermissionError if _lacks_credentials(exc) else ConnectionError
        raise kind(f"cannot read {location}: {client_problem(exc)}") from None


def read_bytes(
    location: PathLike,
    storage_options: Mapping[str, Any] | None = None,
    *,
    gone: str | None = None,
) -> bytes:
    """Read a whole file from a local path or URL; ``gone``: as :func:`reading` says."""
    with reading(location, storage_options, gone=gone):
        if not is_url(location):
            return Path(location).read_bytes()
        fs, path = filesystem(location, storage_options)
        data: bytes = fs.cat_file(path)
    return data


def read_many(
    locations: list[str], storage_options: Mapping[str, Any] | None = None
) -> list[bytes]:
    """Read whole files that live on one filesystem, concurrently where it can; in order.

    Raises :class:`FileNotFoundError` when any of them does not exist.
    """
    if not locations:
        return []
    fs, _ = filesystem(locations[0], storage_options)
    paths = [fs._strip_protocol(location) for location in locations]
    with reading(locations[0]):
        contents = fs.cat(paths, on_error="raise")
    missing = [path for path in paths if path not in contents]
    if missing:  # some filesystems leave a vanished file out instead of raising
        raise FileNotFoundError(missing[0])
    return [contents[path] for path in paths]


def exists(location: PathLike, storage_options: Mapping[str, Any] | None = None) -> bool:
    """Return True when ``location`` names an existing file or directory."""
    if not is_url(location):
        return Path(location).exists()
    fs, path = filesystem(location, storage_options)
    with reading(location):
        return bool(fs.exists(path))


def remove(locations: list[str], storage_options: Mapping[str, Any] | None = None) -> None:
    """Delete files that live on one filesystem, batched where it can (missing files are fine)."""
    if not locations:
        return
    fs, _ = filesystem(locations[0], storage_options)
    with contextlib.suppress(FileNotFoundError):
        fs.rm([fs._strip_protocol(location) for location in locations])


def list_files(location: PathLike, storage_options: Mapping[str, Any] | None = None) -> list[str]:
    """Full URLs of the files directly under ``location``, sorted by name; [] if none."""
    fs, path = filesystem(location, storage_options)
    try:
        with reading(location):
            # refresh: other processes add files here, so a cached listing would be stale
            listing = fs.ls(path, detail=True, refresh=True)
    except FileNotFoundError:
        return []
    # Some S3 servers list an emptied folder as a "name/" marker: not a file.
    names = [
        item["name"]
        for item in listing
        if item["type"] == "file" and not str(item["name"]).endswith("/")
    ]
    prefix = str(location).split("://", 1)[0] + "://" if is_url(location) else ""
    return sorted(prefix + str(name).lstrip("/") if prefix else str(name) for name in names)


def check_writable(location: PathLike, storage_options: Mapping[str, Any] | None = None) -> None:
    """Prove that sweep files can be written under URL ``location``, before any run starts.

    Writes a small probe object under ``location`` and deletes it again, with
    short network timeouts, so a wrong endpoint, a missing bucket or
    credentials without write access fail in seconds with a
    :class:`~gmat_sweep.errors.SweepConfigError` instead of run by run.
    Local paths are not probed.

    Raises
    ------
    SweepConfigError
        The filesystem cannot be opened with these options, the store cannot
        be reached, the bucket does not exist, or access is denied. The
        message names the URL, what failed and the fix; it never repeats
        ``storage_options``, which may hold secrets.
    """
    if not is_url(location):
        return
    url = str(location)
    protocol = url.split("://", 1)[0]
    options = dict(storage_options or {})
    if protocol in ("s3", "s3a"):
        options["config_kwargs"] = {**_S3_PROBE_CONFIG, **options.get("config_kwargs", {})}
    try:
        fs, path = filesystem(url, options)
    except ImportError as exc:
        raise SweepConfigError(
            f"cannot write to {url}: {exc} (for s3:// URLs: pip install s3fs, the 's3' extra)"
        ) from None
    except (TypeError, ValueError) as exc:
        raise SweepConfigError(
            f"cannot write to {url}: the {protocol}:// filesystem rejected storage_options "
            f"({exc}); pass only options that fsspec's {protocol} implementation accepts"
        ) from None
    probe = f"{path.rstrip('/')}/.gmat-sweep-write-probe-{uuid.uuid4().hex}"
    try:
        fs.pipe_file(probe, b"")
        fs.rm_file(probe)
    except PermissionError as exc:
        allowed = "write, read, list and delete"
        raise SweepConfigError(f"cannot write to {url}: {_access_denied(exc, allowed)}") from None
    except FileNotFoundError as exc:
        raise SweepConfigError(
            f"cannot write to {url}: the bucket does not exist ({exc}); gmat_sweep never "
            "creates buckets: create it first (e.g. `aws s3 mb`), or fix the bucket name"
        ) from None
    except Exception as exc:
        raise SweepConfigError(f"cannot write to {url}: {_no_answer(exc)}") from None
