"""Where a manifest's lines live: one append-only local file, or an object store's objects.

A :class:`~gmat_sweep.manifest.Manifest` reads and writes bytes through a
:class:`Journal` and never asks which kind it holds:

- :class:`FileJournal` — a local ``manifest.jsonl``: each entry line is one
  ``write`` on a file opened for appending, then ``fsync``; a crash can tear
  only the last line, which is cut off before the next append.
- :class:`ObjectJournal` — an object store cannot append, so ``manifest.jsonl``
  holds the header and the lines folded in so far, and each appended line is
  one more object under ``manifest.d/`` beside it (names sort in arrival
  order), until :meth:`Journal.compact` folds them in.

The journal knows bytes and durability; the line format and its errors are
the manifest's.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gmat_sweep import storage
from gmat_sweep.errors import ManifestCorruptError
from gmat_sweep.spec import PathLike, is_url, local_path

ENTRIES_DIR = "manifest.d"
"""Folder beside an object-store ``manifest.jsonl`` that holds one object per appended entry."""

_RACE_ATTEMPTS = 5


@dataclass(frozen=True)
class TailRepair:
    """How to make a file whose end was damaged by a crash safe to append to.

    Attributes
    ----------
    size_at_load:
        The file's size when it was read; appending refuses if it changed.
    keep_bytes:
        Bytes to keep (everything before the torn last line).
    add_newline:
        Whether the kept bytes lack their final newline.
    """

    size_at_load: int
    keep_bytes: int
    add_newline: bool


class Journal:
    """The bytes behind one manifest, and how they are made durable.

    Use :func:`open_journal` to get the right kind for a location.
    """

    location: PathLike
    repair: TailRepair | None
    """Set after reading a file with a torn end; consumed by the next write."""

    def read(self) -> tuple[bytes, list[tuple[str, bytes]]]:
        """``manifest.jsonl``'s bytes, and the entry objects not yet folded into it.

        Raises
        ------
        ManifestCorruptError
            The manifest does not exist or cannot be read.
        """
        raise NotImplementedError

    def save(self, data: bytes) -> None:
        """Replace everything with ``data`` (a header and entry lines), atomically."""
        raise NotImplementedError

    def append(self, line: bytes) -> None:
        """Add one newline-terminated entry line durably: once this returns it survives a crash."""
        raise NotImplementedError

    def rewrite_header(self, header: bytes) -> None:
        """Replace the first line with ``header``, keeping every complete line after it."""
        _, _, rest = self._valid_bytes().partition(b"\n")
        storage.atomic_write(self.location, header + rest, self._options())
        self.repair = None

    def compact(self) -> None:
        """Fold appended entry objects into ``manifest.jsonl``; a no-op for a local file."""

    def _main_bytes(self) -> bytes:
        raise NotImplementedError

    def _valid_bytes(self) -> bytes:
        """The main file without a torn last line (the bytes a later write may build on)."""
        data = self._main_bytes()
        if self.repair is None:
            return data
        _check_unchanged(len(data), self.location, self.repair)
        return data[: self.repair.keep_bytes] + (b"\n" if self.repair.add_newline else b"")

    def _options(self) -> dict[str, Any]:
        return {}


class FileJournal(Journal):
    """A local ``manifest.jsonl``, appended to in place."""

    def __init__(self, path: Path) -> None:
        self.location: Path = path
        self.repair = None

    def read(self) -> tuple[bytes, list[tuple[str, bytes]]]:
        return self._main_bytes(), []

    def save(self, data: bytes) -> None:
        storage.make_dirs(self.location.parent)
        storage.atomic_write(self.location, data)
        self.repair = None

    def append(self, line: bytes) -> None:
        try:
            self._append(line)
        except OSError as failed:
            # ENOSPC, a removed sweep directory, a read-only disk: say which file, what is kept.
            raise type(failed)(
                failed.errno,
                f"cannot record a finished run in the manifest {self.location}: "
                f"{failed.strerror or failed}; every run recorded before is kept: free space "
                "or restore the sweep directory, then resume the sweep (gmat-sweep resume "
                f"{self.location.parent}) to run again what was not recorded",
            ) from failed

    def _append(self, line: bytes) -> None:
        flags = os.O_WRONLY | os.O_APPEND | getattr(os, "O_BINARY", 0)
        descriptor = os.open(self.location, flags)
        try:
            if self.repair is not None:
                _check_unchanged(os.fstat(descriptor).st_size, self.location, self.repair)
                os.ftruncate(descriptor, self.repair.keep_bytes)
                if self.repair.add_newline:
                    line = b"\n" + line
            view = memoryview(line)
            while view:
                view = view[os.write(descriptor, view) :]
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        self.repair = None

    def _main_bytes(self) -> bytes:
        path = self.location
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise ManifestCorruptError(
                f"manifest {path} does not exist; check the path, or start a new sweep to "
                "create it",
                path,
            ) from None
        except OSError as exc:
            raise ManifestCorruptError(
                f"manifest {path} cannot be read: {exc.strerror}; give the path of a readable file",
                path,
            ) from None


class ObjectJournal(Journal):
    """``manifest.jsonl`` on an object store, plus one object per appended line."""

    def __init__(self, url: str, storage_options: dict[str, Any]) -> None:
        self.location: str = url
        self.storage_options = storage_options
        self.repair = None
        self.objects: list[tuple[str, bytes]] = []
        """Entry objects not yet folded into ``manifest.jsonl``: (URL, the line it holds)."""

    def read(self) -> tuple[bytes, list[tuple[str, bytes]]]:
        # A compaction rewrites manifest.jsonl, then deletes the entry objects it folded
        # in. Racing one, a reader can find an object gone between listing and reading
        # it, or list after the deletion with the old file in hand: either way
        # manifest.jsonl has changed by the time the reader reads it again, so it starts
        # over.
        root = self.location.rsplit("/", 1)[0]
        for _ in range(_RACE_ATTEMPTS):
            data = self._main_bytes()
            names = storage.list_files(f"{root}/{ENTRIES_DIR}", self.storage_options)
            try:
                contents = storage.read_many(names, self.storage_options)
            except FileNotFoundError:
                continue
            if self._main_bytes() == data:
                self.objects = list(zip(names, contents, strict=True))
                return data, self.objects
        raise ManifestCorruptError(
            f"manifest {self.location} kept changing while it was read ({_RACE_ATTEMPTS} "
            "attempts); another driver is compacting it: read it again once that driver has "
            "finished",
            self.location,
        )

    def save(self, data: bytes) -> None:
        storage.atomic_write(self.location, data, self.storage_options)
        storage.remove([name for name, _ in self.objects], self.storage_options)
        self.objects = []
        self.repair = None

    def append(self, line: bytes) -> None:
        root = self.location.rsplit("/", 1)[0]
        name = f"{root}/{ENTRIES_DIR}/{time.time_ns():020d}-{uuid.uuid4().hex[:12]}.json"
        storage.atomic_write(name, line, self.storage_options)
        self.objects.append((name, line))

    def compact(self) -> None:
        """Fold the entry objects into ``manifest.jsonl``, then delete them.

        A torn last line of ``manifest.jsonl`` (one copied from a crashed local
        sweep) is cut off first, as a local append would. Every attempt is
        kept, in arrival order; the objects are deleted (in one
        batch where the store allows) only after the rewritten file is in
        place, so a crash at any point loses nothing (a leftover object
        duplicates a line, and last wins).
        """
        if not self.objects:
            return
        history = self._valid_bytes()
        if history and not history.endswith(b"\n"):
            history += b"\n"
        extra = b"".join(line for _, line in self.objects)
        storage.atomic_write(self.location, history + extra, self.storage_options)
        storage.remove([name for name, _ in self.objects], self.storage_options)
        self.objects = []
        self.repair = None

    def _main_bytes(self) -> bytes:
        try:
            return storage.read_bytes(self.location, self.storage_options)
        except FileNotFoundError:
            raise ManifestCorruptError(
                f"manifest {self.location} does not exist; check the URL, or start a new sweep "
                "to create it",
                self.location,
            ) from None

    def _options(self) -> dict[str, Any]:
        return self.storage_options


def open_journal(location: PathLike, storage_options: dict[str, Any] | None = None) -> Journal:
    """The journal for a manifest at ``location``: a local path, or an fsspec URL."""
    if is_url(location):
        return ObjectJournal(str(location), dict(storage_options or {}))
    return FileJournal(local_path(location).absolute())


def _check_unchanged(size: int, location: PathLike, repair: TailRepair) -> None:
    if size != repair.size_at_load:
        raise RuntimeError(
            f"manifest {location} changed on disk since it was loaded ({repair.size_at_load} -> "
            f"{size} bytes) and its last line was torn; another process may be writing it; "
            "stop that process and load the manifest again before appending"
        )
