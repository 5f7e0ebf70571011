"""The progress bar of a sweep's computation.

On a terminal, and in a notebook, it is tqdm's bar, redrawn in place. On a
stream that is not a terminal (a log file, a CI job, a pipe), a bar redrawn
with carriage returns piles up as one endless line, so there each refresh is
a line of its own, written at most every :data:`PLAIN_INTERVAL_S` seconds
(and when the computation ends).
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

PLAIN_INTERVAL_S = 30.0
"""Seconds between two progress lines on a stream that is not a terminal."""


def progress_bar(total: int, *, enabled: bool, stream: TextIO | None = None) -> Any:
    """A tqdm bar counting ``total`` runs on ``stream`` (standard error by default)."""
    from tqdm.auto import tqdm

    stream = sys.stderr if stream is None else stream
    if enabled and not _redrawn(stream, tqdm):
        return tqdm(total=total, unit="run", file=_Lines(stream), mininterval=PLAIN_INTERVAL_S)
    return tqdm(total=total, unit="run", file=stream, disable=not enabled, dynamic_ncols=True)


def _redrawn(stream: TextIO, bar: type) -> bool:
    """Whether ``stream`` shows a bar redrawn in place: a terminal, or a notebook's bar."""
    if "notebook" in bar.__module__:
        return True
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class _Lines:
    """A stream for tqdm that writes each redraw as a line of its own, blank ones left out."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        line = text.replace("\r", "").rstrip()
        if line:
            self._stream.write(line + "\n")
        return len(text)

    def flush(self) -> None:
        self._stream.flush()
