"""Where sweep files live: local paths and fsspec URLs behind one small interface.

Every write of a finished artefact is atomic — a reader never sees a file
under its final name until it is complete. Local files are written to a
temporary name in the same directory and renamed; object stores receive a
single ``put`` of the whole payload, which they commit atomically.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import fsspec

from gmat_sweep.spec import PathLike, is_url


def is_remote(location: PathLike) -> bool:
    """True for an fsspec URL (object stores, ``memory://`` ...), False for local paths."""
    return is_url(location)


def join(location: PathLike, *parts: str) -> PathLike:
    """Join ``parts`` onto a local path or a URL, keeping its kind."""
    if is_url(location):
        return "/".join([str(location).rstrip("/"), *parts])
    return Path(location).joinpath(*parts)


def filesystem(
    location: PathLike, storage_options: Mapping[str, Any] | None = None
) -> tuple[Any, str]:
    """Return ``(fsspec filesystem, path within it)`` for ``location``."""
    fs, path = fsspec.core.url_to_fs(str(location), **dict(storage_options or {}))
    return fs, path


def make_dirs(location: PathLike, storage_options: Mapping[str, Any] | None = None) -> None:
    """Create ``location`` and its parents (a no-op on stores without directories)."""
    if not is_url(location):
        Path(location).mkdir(parents=True, exist_ok=True)
        return
    fs, path = filesystem(location, storage_options)
    fs.makedirs(path, exist_ok=True)


def atomic_write(
    location: PathLike, data: bytes, storage_options: Mapping[str, Any] | None = None
) -> None:
    """Write ``data`` so that ``location`` appears only once it is complete."""
    if not is_url(location):
        target = Path(location)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return
    fs, path = filesystem(location, storage_options)
    fs.pipe_file(path, data)


def read_bytes(location: PathLike, storage_options: Mapping[str, Any] | None = None) -> bytes:
    """Read a whole file from a local path or URL."""
    if not is_url(location):
        return Path(location).read_bytes()
    fs, path = filesystem(location, storage_options)
    data: bytes = fs.cat_file(path)
    return data


def exists(location: PathLike, storage_options: Mapping[str, Any] | None = None) -> bool:
    """Return True when ``location`` names an existing file or directory."""
    if not is_url(location):
        return Path(location).exists()
    fs, path = filesystem(location, storage_options)
    return bool(fs.exists(path))


def remove(location: PathLike, storage_options: Mapping[str, Any] | None = None) -> None:
    """Delete one file (missing files are fine)."""
    if not is_url(location):
        Path(location).unlink(missing_ok=True)
        return
    fs, path = filesystem(location, storage_options)
    with contextlib.suppress(FileNotFoundError):
        fs.rm_file(path)


def list_files(location: PathLike, storage_options: Mapping[str, Any] | None = None) -> list[str]:
    """Full URLs of the files directly under ``location``, sorted by name; [] if none."""
    fs, path = filesystem(location, storage_options)
    try:
        names = fs.ls(path, detail=False)
    except FileNotFoundError:
        return []
    prefix = str(location).split("://", 1)[0] + "://" if is_url(location) else ""
    return sorted(prefix + str(name).lstrip("/") if prefix else str(name) for name in names)
