"""The embedded GMAT engine: built from the gmatpy wheel, race-safe, self-repairing."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gmat_sweep import engine
from gmat_sweep.errors import EngineError

pytestmark = pytest.mark.slow

_RUN_IN_FRESH_PROCESS = textwrap.dedent(
    """
    import sys
    from gmat_run import Mission
    from gmat_sweep.engine import ensure_engine
    eng = ensure_engine()
    mission = Mission.load(sys.argv[1], gmat_root=eng.root)
    mission["Sat.SMA"] = 7000.0
    results = mission.run()
    frame = results.reports["RF"]
    print(eng.kind, len(frame), eng.root)
    """
)


def _fresh(cache: Path, script: Path) -> subprocess.Popen[str]:
    env = dict(os.environ, GMAT_SWEEP_CACHE=str(cache))
    env.pop("GMAT_ROOT", None)
    return subprocess.Popen(
        [sys.executable, "-c", _RUN_IN_FRESH_PROCESS, str(script)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_processes_bootstrap_an_empty_cache_at_once(tmp_path: Path, leo_basic: Path) -> None:
    cache = tmp_path / "cache"
    procs = [_fresh(cache, leo_basic) for _ in range(2)]
    results = [proc.communicate(timeout=240) for proc in procs]
    for proc, (out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
        kind, rows, _root = out.split()
        assert kind == "embedded"
        assert int(rows) > 10
    entries = sorted(p.name for p in cache.iterdir())
    assert len(entries) == 1, entries  # one tree, no staging leftovers
    assert entries[0].startswith("engine-gmatpy-")


def test_broken_cache_entry_is_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GMAT_SWEEP_CACHE", str(tmp_path))
    monkeypatch.delenv("GMAT_ROOT", raising=False)
    engine.ensure_engine.cache_clear()
    try:
        first = engine.ensure_engine()
        (first.root / "bin" / "gmatpy" / "__init__.py").unlink()
        engine.ensure_engine.cache_clear()
        second = engine.ensure_engine()
        assert second.root == first.root
        assert (second.root / "bin" / "gmatpy" / "__init__.py").is_file()
        assert "embedded" in second.version
        assert "gmatpy" in second.version
    finally:
        engine.ensure_engine.cache_clear()


def test_gmat_root_that_is_not_an_install_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GMAT_ROOT", str(tmp_path))
    engine.ensure_engine.cache_clear()
    try:
        with pytest.raises(EngineError, match=r"GMAT_ROOT=.*not a GMAT install.*unset it"):
            engine.ensure_engine()
    finally:
        engine.ensure_engine.cache_clear()


def test_unwritable_cache_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("GMAT_SWEEP_CACHE", str(blocker / "cache"))
    monkeypatch.delenv("GMAT_ROOT", raising=False)
    engine.ensure_engine.cache_clear()
    try:
        with pytest.raises(EngineError, match="GMAT_SWEEP_CACHE"):
            engine.ensure_engine()
    finally:
        engine.ensure_engine.cache_clear()
