"""A sweep's parameterisation and the runs it expands to.

Every entry point records how it chose its runs as a JSON-plain
``parameter_spec`` with a ``_kind``: ``grid``, ``samples``, ``monte_carlo``
or ``latin_hypercube``. :func:`expand` turns such a record back into
exactly the same :class:`~gmat_sweep.spec.RunSpec` list, which is how
:meth:`gmat_sweep.sweep.Sweep.from_manifest` rebuilds a sweep to resume it.
A record without ``_kind`` is read as a materialised grid (the reference's
``Sweep`` takes one directly).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gmat_sweep.errors import SweepConfigError
from gmat_sweep.grid import expand_grid_to_run_specs, rows_to_run_specs
from gmat_sweep.spec import PathLike, RunSpec, plain_overrides, to_plain

KINDS = ("grid", "samples", "monte_carlo", "latin_hypercube")


def grid_spec(grid: Mapping[str, Any]) -> dict[str, Any]:
    """Record of a full-factorial grid (values materialised)."""
    return {"_kind": "grid", "grid": {str(k): to_plain(list(v)) for k, v in grid.items()}}


def samples_spec(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Record of explicit sample rows, one per run."""
    return {"_kind": "samples", "rows": [plain_overrides(row) for row in rows]}


def stochastic_spec(kind: str, perturb: Mapping[Any, Any], n: int, seed: int) -> dict[str, Any]:
    """Record of a Monte Carlo or Latin-hypercube design."""
    from gmat_sweep.sampling import describe_perturb

    return {"_kind": kind, "n": n, "seed": seed, "perturb": describe_perturb(perturb)}


def expand(
    parameter_spec: Mapping[str, Any],
    script_path: Path,
    output_dir: PathLike,
    run_options: Mapping[str, Any] | None = None,
) -> list[RunSpec]:
    """Rebuild the run specs a ``parameter_spec`` describes.

    Raises
    ------
    SweepConfigError
        The record's ``_kind`` is unknown.
    """
    kind = parameter_spec.get("_kind", "grid")
    if kind == "grid":
        grid = parameter_spec.get("grid", parameter_spec)
        grid = {k: v for k, v in grid.items() if not k.startswith("_")}
        specs = expand_grid_to_run_specs(grid, script_path, output_dir)
    elif kind == "samples":
        specs = rows_to_run_specs(list(parameter_spec["rows"]), script_path, output_dir)
    elif kind in ("monte_carlo", "latin_hypercube"):
        # Imported here: scipy is only needed when a stochastic design is expanded.
        from gmat_sweep.sampling import (
            latin_hypercube_rows,
            monte_carlo_rows,
            perturb_from_description,
        )

        perturb = perturb_from_description(parameter_spec["perturb"])
        draw = monte_carlo_rows if kind == "monte_carlo" else latin_hypercube_rows
        rows = draw(perturb, int(parameter_spec["n"]), int(parameter_spec["seed"]))
        specs = rows_to_run_specs(rows, script_path, output_dir)
    else:
        raise SweepConfigError(
            f"parameter_spec has _kind={kind!r}, which this gmat_sweep does not know; known kinds "
            f"are {', '.join(KINDS)}. The manifest may come from a newer gmat_sweep: upgrade it."
        )
    if run_options:
        options = dict(run_options)
        specs = [
            RunSpec(s.script_path, s.overrides, s.output_dir, s.run_id, s.seed, options)
            for s in specs
        ]
    return specs
