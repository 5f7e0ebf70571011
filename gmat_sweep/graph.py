"""A sweep as a Dask graph: one node per run, the same node on every backend.

:func:`run_node` is the unit of work every :class:`~gmat_sweep.backends.base.Pool`
executes. With ``reuse_gmat_context=True`` it sends the run to the calling
thread's persistent GMAT host process (the loaded mission is reused, a
timeout kills only that host); otherwise each run gets a fresh interpreter.
:func:`to_delayed` wraps the same node in :func:`dask.delayed`, so a sweep
composes into any Dask workflow and computes on any Dask scheduler.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gmat_sweep.backends._subprocess import run_spec_in_subprocess, thread_host
from gmat_sweep.spec import RunOutcome, RunSpec


def run_node(spec: RunSpec, reuse_gmat_context: bool = True) -> RunOutcome:
    """Execute one run where this function is called; never raises for the run's failure."""
    if not reuse_gmat_context:
        return run_spec_in_subprocess(spec)
    return thread_host().run(spec, timeout_s=spec.run_options.get("timeout_s"))


def check_node(script_path: Path, values: Mapping[str, Sequence[Any]]) -> list[str]:
    """Validate overrides on the calling thread's GMAT host (warming it for the runs)."""
    return thread_host().check_fields(script_path, values)


def run_nodes(specs: Sequence[RunSpec], reuse_gmat_context: bool = True) -> list[RunOutcome]:
    """Execute several runs in order in one task (used to amortise per-task costs)."""
    return [run_node(spec, reuse_gmat_context) for spec in specs]


def to_delayed(specs: Sequence[RunSpec], reuse_gmat_context: bool = True) -> list[Any]:
    """One :class:`dask.delayed.Delayed` per run, each computing to a ``RunOutcome``.

    Each node is a one-task graph built directly (``dask.delayed(f)(spec)``
    would walk every spec's fields looking for nested collections, ~10x
    slower at 100k runs). Keys name the run and a digest of its output
    directory, so nodes of different sweeps never collide in one graph.
    """
    from dask.delayed import Delayed
    from dask.highlevelgraph import HighLevelGraph

    nodes = []
    for spec in specs:
        digest = hashlib.blake2b(str(spec.output_dir).encode(), digest_size=6).hexdigest()
        key = f"gmat-run-{spec.run_id}-{digest}"
        task: dict[Any, Any] = {key: (run_node, spec, reuse_gmat_context)}
        graph = HighLevelGraph.from_collections(key, task, dependencies=())
        nodes.append(Delayed(key, graph))  # type: ignore[no-untyped-call]
    return nodes
