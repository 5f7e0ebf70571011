"""Paths recorded in a manifest, resolved against the sweep root and kept inside it.

A manifest is data from disk, possibly written by someone else, so the files
it names (``output_paths``, ``log_path``) are never trusted as they are: every
one must resolve to a location strictly under the sweep root, or reading it is
refused with :class:`~gmat_sweep.errors.ManifestCorruptError`. That refuses
``../`` escapes, absolute paths outside the root, and URLs on another
filesystem, bucket or prefix, so a crafted manifest cannot make ``show``,
``export`` or a frame read (and copy out) a file that is not part of the
sweep. The check is lexical (``..`` segments are folded, symlinks are not
followed): the sweep's own files are what the manifest may point at, and a
symlink inside the sweep is the owner's own choice.

This module imports nothing heavy, so the CLI can use it without pandas.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Callable
from pathlib import PurePath

from gmat_sweep.errors import ManifestCorruptError
from gmat_sweep.spec import PathLike, is_url, local_path


def sweep_root(output_dir: PathLike) -> str:
    """The sweep root as the prefix :func:`locate` resolves against.

    URLs lose any trailing ``/``; a ``file://`` URL becomes its local path;
    local paths are made absolute (against the current directory, now), so
    locations stay valid after a ``chdir`` and on workers with another one.

    Parameters
    ----------
    output_dir:
        The sweep's root directory: a local path or an fsspec URL.

    Returns
    -------
    str
        ``"s3://bucket/study"`` or ``"/abs/path/study"``.
    """
    text = output_dir.as_posix() if isinstance(output_dir, PurePath) else str(output_dir)
    if is_url(text):
        return text.rstrip("/")
    return os.path.abspath(local_path(text))


def locate(root: PathLike, recorded: PathLike, run_id: int) -> str:
    """Where a path recorded in the manifest for run ``run_id`` points, inside the sweep.

    Relative paths are joined onto the root. Absolute paths and URLs are
    accepted only when they already lie under the root (a sweep written
    before paths were stored relative to it). To resolve many paths of one
    sweep, build the function once with :func:`locator`.

    Parameters
    ----------
    root:
        The sweep root: a local path or an fsspec URL.
    recorded:
        A path read from the manifest: an entry's ``output_paths`` value or
        its ``log_path``.
    run_id:
        The run whose entry holds ``recorded``, named in the error.

    Returns
    -------
    str
        The location: ``"<root>/<path>"`` for a URL root, an absolute local
        path otherwise.

    Raises
    ------
    ManifestCorruptError
        ``recorded`` is empty, climbs out of the root with ``..``, is an
        absolute path outside the root, or a URL on another filesystem,
        bucket or prefix.
    """
    return locator(root)(recorded, run_id)


def locator(root: PathLike) -> Callable[[PathLike, int], str]:
    """:func:`locate` for one sweep root, normalised once: ``locator(root)(recorded, run_id)``.

    Parameters
    ----------
    root:
        The sweep root: a local path or an fsspec URL.

    Returns
    -------
    Callable[[PathLike, int], str]
        Resolves ``(recorded, run_id)`` as :func:`locate` does.
    """
    base = sweep_root(root)

    def resolve(recorded: PathLike, run_id: int) -> str:
        # str() of a Path is cached, as_posix() is not: thousands of calls per frame.
        text = recorded if isinstance(recorded, str) else str(recorded)
        # The common case, a plain relative path without "..", cannot leave the root.
        if text and ".." not in text and "://" not in text and not text.startswith("/"):
            return f"{base}/{text}"
        inside = _inside(base, text)
        if inside is None:
            raise ManifestCorruptError(
                f"run {run_id}: the manifest records the path {text!r}, which is not inside "
                f"the sweep root {base}; a manifest may only point at files under its sweep "
                "(relative paths such as 'run-000003/report__RF.parquet'), so this entry was "
                "edited or written by another tool: restore the manifest from the sweep that "
                "wrote it, or re-run that run (resume the sweep)",
                base,
            )
        return inside

    return resolve


def escape_check(root: PathLike) -> Callable[[PathLike], bool]:
    """Whether a location is neither the sweep root ``root`` nor under it: ``check(location)``.

    The lexical check :func:`locate` applies to recorded paths, for places a
    sweep is about to write (each run's ``output_dir``, relative to the
    current directory like the root), so a run that would write outside its
    sweep is refused before it runs instead of read back as a corrupt
    manifest. Built once per root, like :func:`locator`.
    """
    base = sweep_root(root)
    prefix = f"{base}/"

    def escapes(location: PathLike) -> bool:
        text = location if isinstance(location, str) else str(location)
        # The common case, an absolute location under the root without "..", stays inside.
        if text.startswith(prefix) and ".." not in text:
            return False
        target = sweep_root(location)
        return target != base and _inside(base, target) is None

    return escapes


def _inside(base: str, text: str) -> str | None:
    """``text`` resolved against ``base`` (a :func:`sweep_root`), or ``None`` if it leaves it."""
    if not text:
        return None
    if is_url(base):
        protocol, _, within = base.partition("://")
        if text.startswith(f"{protocol}://"):
            candidate = text.partition("://")[2]
        elif "://" in text or text.startswith("/"):
            return None
        else:
            candidate = f"{within}/{text}"
        folded = posixpath.normpath(candidate)
        return f"{protocol}://{folded}" if folded.startswith(f"{within}/") else None
    if is_url(text):
        return None
    folded = os.path.normpath(os.path.join(base, local_path(text)))
    return folded if folded.startswith(base.rstrip(os.sep) + os.sep) else None
