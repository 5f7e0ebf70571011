"""The progress bar: redrawn in place on a terminal, plain lines on any other stream."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from gmat_sweep import sweep
from gmat_sweep.backends.local import LocalPool
from gmat_sweep.progress import progress_bar


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_stream_that_is_not_a_terminal_gets_whole_lines_not_carriage_returns() -> None:
    # A log file or CI job: tqdm's '\r' redraws would pile up as one endless line.
    log = io.StringIO()
    bar = progress_bar(3, enabled=True, stream=log)
    for _ in range(3):
        bar.update(1)
    bar.close()
    text = log.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert lines and all(line.strip() for line in lines), text  # no blank lines
    assert text.endswith("\n") and "3/3" in lines[-1], text


def test_a_terminal_gets_the_bar_redrawn_in_place() -> None:
    terminal = _Terminal()
    bar = progress_bar(2, enabled=True, stream=terminal)
    bar.update(2)
    bar.close()
    assert "\r" in terminal.getvalue() and "2/2" in terminal.getvalue()


def test_a_disabled_bar_writes_nothing() -> None:
    for stream in (io.StringIO(), _Terminal()):
        bar = progress_bar(2, enabled=False, stream=stream)
        bar.update(2)
        bar.close()
        assert stream.getvalue() == ""


def test_a_sweep_logged_to_a_file_writes_progress_lines(
    pool: LocalPool, leo_basic: Path, tmp_path: Path
) -> None:
    log = io.StringIO()
    with contextlib.redirect_stderr(log):
        sweep(leo_basic, {"Sat.SMA": [7000.0, 7100.0]}, backend=pool, out=tmp_path / "s")
    assert "\r" not in log.getvalue()
    assert "2/2" in log.getvalue().splitlines()[-1], log.getvalue()
