"""mkdocs hook: draw the graph of a small sweep during the build (nothing committed).

The picture on the "A sweep is a Dask graph" page is made here with
``dask.visualize`` (graphviz) from a sweep that is built but never run, so
the build needs no GMAT engine, and it always shows the graph the code
builds today.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

PICTURE = "concepts/sweep-graph.svg"


def _summary(outcomes: list[Any]) -> int:
    return sum(outcome.status == "ok" for outcome in outcomes)


def _picture() -> bytes:
    import dask

    from gmat_sweep import Sweep
    from gmat_sweep.grid import expand_grid_to_run_specs

    script = Path("tests/data/leo_basic.script").resolve()
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "study"
        grid = {"Sat.SMA": [6800.0, 7000.0], "Sat.INC": [28.5, 51.6]}
        study = Sweep(
            runs=expand_grid_to_run_specs(grid, script, out),
            backend=None,
            manifest_path=out / "manifest.jsonl",
            output_dir=out,
            script_path=script,
            parameter_spec={"_kind": "grid", "grid": grid},
        )
        ok = dask.delayed(_summary)(study.to_delayed())
        target = Path(scratch) / "graph"
        dask.visualize(ok, filename=str(target), format="svg", rankdir="LR")
        return target.with_suffix(".svg").read_bytes()


def on_files(files: Files, config: Any) -> Files:
    files.append(File.generated(config, PICTURE, content=_picture()))
    return files
