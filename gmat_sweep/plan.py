"""A sweep's parameterisation and the runs it expands to.

Every entry point records how it chose its runs as a JSON-plain
``parameter_spec`` with a ``_kind``: ``grid``, ``samples``, ``monte_carlo``,
``latin_hypercube``, ``sobol`` or ``morris``. :func:`expand` turns such a record back into
exactly the same :class:`~gmat_sweep.spec.RunSpec` list, which is how
:meth:`gmat_sweep.sweep.Sweep.from_manifest` rebuilds a sweep to resume it.
A record without ``_kind`` is read as a materialised grid (a ``Sweep`` built
by hand may be given one directly).
"""

from __future__ import annotations

import functools
import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gmat_sweep.errors import SweepConfigError
from gmat_sweep.grid import full_factorial, rows_to_run_specs
from gmat_sweep.script import (
    canonical_script_sha256,
    script_includes_sha256,
    script_inputs_sha256,
)
from gmat_sweep.spec import PathLike, RunOptions, RunSpec, plain_overrides

if TYPE_CHECKING:
    from gmat_sweep.manifest import Manifest

KINDS = ("grid", "samples", "monte_carlo", "latin_hypercube", "sobol", "morris")

MAX_RUNS = 10_000_000
"""Most runs one sweep may have. A parameter_spec read from a manifest is data from
disk: a crafted ``n`` or grid must fail with a message, not exhaust memory."""

_STOCHASTIC = ("monte_carlo", "latin_hypercube", "sobol", "morris")

CLI_DISTRIBUTIONS = {
    "normal": "normal(mu,sigma)",
    "uniform": "uniform(lo,hi)",
    "lognormal": "lognormal(mu,sigma)",
}
"""The distributions ``gmat-sweep monte-carlo --perturb`` spells, and their arguments."""

DISTRIBUTION_EXAMPLES = {
    "normal": (7000.0, 5.0),
    "uniform": (6900.0, 7100.0),
    "lognormal": (0.0, 0.1),
}
"""Parameters of each one-field distribution that an error message gives as an example,
in Python (:mod:`gmat_sweep.distributions`) and on the command line alike."""


def grid_spec(grid: Mapping[str, Any]) -> dict[str, Any]:
    """Record of a full-factorial grid (values materialised)."""
    return {"_kind": "grid", "grid": plain_overrides({k: list(v) for k, v in grid.items()})}


def samples_spec(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Record of explicit sample rows, one per run."""
    return {"_kind": "samples", "rows": [plain_overrides(row) for row in rows]}


def stochastic_spec(
    kind: str, perturb: Mapping[Any, Any], n: int, seed: int, *, sampler: str = "random"
) -> dict[str, Any]:
    """Record of a Monte Carlo or Latin-hypercube design.

    A Monte Carlo ``sampler`` other than ``"random"`` is recorded as
    ``"sampler"``; a record without it is pseudo-random (as written before
    quasi-random samplers existed).
    """
    from gmat_sweep.sampling import describe_perturb

    # int(): an np.int64 from an array is a valid n or seed, but not JSON.
    record = {"_kind": kind, "n": int(n), "seed": int(seed), "perturb": describe_perturb(perturb)}
    if sampler != "random":
        record["sampler"] = sampler
    return record


def sobol_spec(
    bounds: Mapping[str, tuple[float, float]], n: int, seed: int, *, second_order: bool
) -> dict[str, Any]:
    """Record of a Saltelli design for Sobol' indices (see :func:`gmat_sweep.sobol`)."""
    return {
        "_kind": "sobol",
        "n": int(n),
        "seed": int(seed),
        "second_order": second_order,
        "bounds": _plain_bounds(bounds),
    }


def morris_spec(
    bounds: Mapping[str, tuple[float, float]], trajectories: int, levels: int, seed: int
) -> dict[str, Any]:
    """Record of a Morris design (see :func:`gmat_sweep.morris`)."""
    return {
        "_kind": "morris",
        "trajectories": int(trajectories),
        "levels": int(levels),
        "seed": int(seed),
        "bounds": _plain_bounds(bounds),
    }


def recorded_grid(parameter_spec: Mapping[str, Any]) -> dict[str, Any]:
    """The fields and values of a grid record (one without ``_kind`` is the grid itself)."""
    grid = parameter_spec.get("grid", parameter_spec)
    return {key: values for key, values in grid.items() if not key.startswith("_")}


def _plain_bounds(bounds: Mapping[str, tuple[float, float]]) -> dict[str, list[float]]:
    return {name: [float(low), float(high)] for name, (low, high) in sorted(bounds.items())}


def expand(
    parameter_spec: Mapping[str, Any],
    script_path: Path,
    output_dir: PathLike,
    run_options: RunOptions | None = None,
) -> list[RunSpec]:
    """Rebuild the run specs a ``parameter_spec`` describes.

    Raises
    ------
    SweepConfigError
        The record's ``_kind`` is unknown, or it describes more than
        :data:`MAX_RUNS` runs (checked before anything is built).
    """
    kind = parameter_spec.get("_kind", "grid")
    _check_size(parameter_spec, kind)
    try:
        specs = _expand_kind(kind, parameter_spec, script_path, output_dir)
    except KeyError as exc:
        raise SweepConfigError(
            f"parameter_spec of _kind={kind!r} lacks {exc.args[0]!r}, so its runs cannot be "
            "rebuilt; the manifest header was edited or damaged: restore it from a backup"
        ) from None
    if run_options:
        options = RunOptions(**run_options)
        specs = [
            RunSpec(s.script_path, s.overrides, s.output_dir, s.run_id, s.seed, options)
            for s in specs
        ]
    return specs


def _expand_kind(
    kind: str, spec: Mapping[str, Any], script_path: Path, output_dir: PathLike
) -> list[RunSpec]:
    rows: Sequence[Mapping[str, Any]]
    if kind == "grid":
        rows = list(full_factorial(recorded_grid(spec)))
    elif kind == "samples":
        rows = list(spec["rows"])
    elif kind in ("monte_carlo", "latin_hypercube"):
        # Imported here: scipy is only needed when a stochastic design is expanded.
        from gmat_sweep.sampling import (
            latin_hypercube_rows,
            monte_carlo_rows,
            perturb_from_description,
        )

        perturb = perturb_from_description(spec["perturb"])
        n, seed = int(spec["n"]), int(spec["seed"])
        if kind == "monte_carlo":
            rows = monte_carlo_rows(perturb, n, seed, sampler=str(spec.get("sampler", "random")))
        else:
            rows = latin_hypercube_rows(perturb, n, seed)
    elif kind == "sobol":
        from gmat_sweep.sampling import sobol_rows

        bounds, n, seed = spec["bounds"], int(spec["n"]), int(spec["seed"])
        rows = sobol_rows(bounds, n, seed, second_order=bool(spec["second_order"]))
    elif kind == "morris":
        from gmat_sweep.sampling import morris_rows

        bounds, trajectories = spec["bounds"], int(spec["trajectories"])
        rows = morris_rows(bounds, trajectories, int(spec["levels"]), int(spec["seed"]))
    else:
        raise SweepConfigError(
            f"parameter_spec has _kind={kind!r}, which this gmat_sweep does not know; known kinds "
            f"are {', '.join(KINDS)}. The manifest may come from a newer gmat_sweep: upgrade it."
        )
    return rows_to_run_specs(rows, script_path, output_dir)


def _check_size(parameter_spec: Mapping[str, Any], kind: str) -> None:
    if kind == "grid":
        count = 1
        for values in recorded_grid(parameter_spec).values():
            count *= len(values) if isinstance(values, list) else 1
        what = "the grid's product of value counts"
    elif kind == "samples":
        rows = parameter_spec.get("rows")
        count = len(rows) if isinstance(rows, list) else 0
        what = "its number of sample rows"
    elif kind in ("monte_carlo", "latin_hypercube"):
        n = parameter_spec.get("n")
        count = n if type(n) is int else 0
        what = "n"
    elif kind in ("sobol", "morris"):
        bounds = parameter_spec.get("bounds")
        fields = len(bounds) if isinstance(bounds, dict) else 0
        if kind == "sobol":
            n = parameter_spec.get("n")
            second = parameter_spec.get("second_order") is True
            count = (n if type(n) is int else 0) * ((2 if second else 1) * fields + 2)
            what = "n times the design's rows per base point"
        else:
            n = parameter_spec.get("trajectories")
            count = (n if type(n) is int else 0) * (fields + 1)
            what = "trajectories times (fields + 1)"
    else:
        return
    if count > MAX_RUNS:
        raise SweepConfigError(
            f"parameter_spec describes {count} runs ({what}), more than the {MAX_RUNS} one "
            "sweep may have; split the study into several sweeps (if it was read from a "
            "manifest, the manifest's header was edited or damaged)"
        )


def check_recorded(
    manifest: Manifest,
    runs: Sequence[RunSpec],
    *,
    engine_version: str,
    allow_version_drift: bool = False,
) -> None:
    """Check that the runs rebuilt from a manifest are the runs it recorded, before a resume.

    * the header's ``run_count`` equals the number of rebuilt runs, and every
      entry's ``run_id`` is one of them;
    * every recorded run's overrides equal the rebuilt run's exactly (compared
      as the JSON the manifest stores);
    * the GMAT engine and, for sampled designs (Monte Carlo, Latin
      hypercube, Sobol, Morris), numpy and scipy (whose versions the draws
      depend on) are the versions the manifest recorded (a version left
      empty by an older writer is not compared).

    Parameters
    ----------
    manifest:
        The loaded manifest.
    runs:
        The runs :func:`expand` rebuilt from ``manifest.parameter_spec``.
    engine_version:
        The identity of the engine that would run the resumed runs
        (``ensure_engine().version``).
    allow_version_drift:
        Warn (:class:`RuntimeWarning`) instead of refusing when versions or
        overrides differ. The count and run-id checks always refuse.

    Raises
    ------
    SweepConfigError
        A mismatch; the message names the runs or versions, both values, and
        the fix.
    """
    ids = {spec.run_id for spec in runs}
    if manifest.run_count != len(runs) or ids != set(range(len(runs))):
        raise SweepConfigError(
            f"the manifest's header says run_count={manifest.run_count}, but its parameter_spec "
            f"rebuilds {len(runs)} runs; the header was edited or damaged: restore the manifest "
            "from a backup, or start a new sweep"
        )
    strays = sorted({entry.run_id for entry in manifest.entries} - ids)
    if strays:
        raise SweepConfigError(
            f"the manifest records run_ids {strays[:10]} that are not runs of this sweep "
            f"(0 to {len(runs) - 1}); the manifest was edited or damaged: restore it from a "
            "backup, or start a new sweep"
        )
    drift = _version_drift(manifest, engine_version)
    by_id = {spec.run_id: spec for spec in runs}
    changed = [
        entry.run_id
        for entry in manifest.entries
        if _json(entry.overrides) != _json(plain_overrides(by_id[entry.run_id].overrides))
    ]
    if changed:
        first = manifest.entry_for(changed[0])
        assert first is not None
        drift.append(
            f"{len(changed)} recorded runs have other overrides than the sweep rebuilds now "
            f"(run {changed[0]}: recorded {_json(first.overrides)}, rebuilt "
            f"{_json(plain_overrides(by_id[changed[0]].overrides))})"
        )
    refuse_or_warn(
        drift,
        allowed=allow_version_drift,
        refusal=". Resuming would mix runs of two different designs or engines. Resume with the "
        "versions the sweep ran with, or pass allow_version_drift=True "
        "(CLI: --allow-version-drift) to resume anyway",
        flag="allow_version_drift",
    )


def refuse_or_warn(problems: list[str], *, allowed: bool, refusal: str, flag: str) -> None:
    """Refuse a resume over ``problems`` unless the user's ``flag`` allows it, then warn.

    The shared rule of the script-drift and version-drift checks: the error
    lists every problem followed by ``refusal``; with ``allowed`` the resume
    goes on with a :class:`RuntimeWarning` naming the flag.
    """
    if not problems:
        return
    if not allowed:
        raise SweepConfigError("; ".join(problems) + refusal)
    warnings.warn(
        "; ".join(problems) + f"; resuming anyway ({flag}=True)",
        RuntimeWarning,
        stacklevel=4,
    )


@dataclass(frozen=True)
class MissionHashes:
    """The SHA-256 of every file of a mission: what a manifest header records of it.

    ``inputs`` is ``None`` for a manifest written before input files were
    recorded (then they are not compared).
    """

    script: str
    includes: Mapping[str, str]
    inputs: Mapping[str, str] | None

    @classmethod
    def of(cls, script: Path) -> MissionHashes:
        """The hashes of ``script``, the files it ``#Include``\\ s and the files it reads, now."""
        return cls(
            canonical_script_sha256(script),
            script_includes_sha256(script),
            script_inputs_sha256(script),
        )

    @classmethod
    def recorded(cls, manifest: Manifest) -> MissionHashes:
        """The hashes ``manifest``'s header recorded when the sweep started."""
        return cls(manifest.script_sha256, manifest.script_includes, manifest.script_inputs)


def script_drift(
    manifest: Manifest, script: Path, current: MissionHashes | None = None
) -> list[str]:
    """Describe every file of the mission whose hash differs from what the manifest recorded.

    The script, the files it ``#Include``\\ s and the files it reads
    (:func:`gmat_sweep.script.script_inputs_sha256`; not compared when the
    manifest predates their record); an empty list when the mission is the
    one the sweep ran. ``current`` is ``MissionHashes.of(script)`` when the
    caller has it already (hashed here otherwise).
    """
    return mission_changes(
        MissionHashes.recorded(manifest),
        script,
        when="since the sweep ran",
        was="manifest",
        current=current,
    )


def mission_changes(
    recorded: MissionHashes,
    script: Path,
    *,
    when: str,
    was: str,
    current: MissionHashes | None = None,
) -> list[str]:
    """Describe every file of the mission ``script`` whose hash differs from ``recorded``.

    Each problem reads "``<file>`` changed ``<when>``: ``<was>`` sha256 ...,
    file now ...". ``current`` is ``MissionHashes.of(script)`` when the
    caller has it already (hashed here otherwise).
    """
    problems = []
    if current is None:
        current = MissionHashes.of(script)
    if current.script != recorded.script:
        problems.append(
            f"script {str(script)!r} changed {when}: {was} sha256 {recorded.script}, "
            f"file now {current.script}"
        )
    problems += _files_drift(
        ("included file", when, was),
        "the script now includes {!r}, which the sweep did not use",
        recorded.includes,
        current.includes,
    )
    if recorded.inputs is not None and current.inputs is not None:
        problems += _files_drift(
            ("input file", when, was),
            "the script now reads {!r}, which the sweep did not read",
            recorded.inputs,
            current.inputs,
        )
    return problems


def _files_drift(
    what: tuple[str, str, str], added: str, recorded: Mapping[str, str], current: Mapping[str, str]
) -> list[str]:
    """How the ``current`` files (name -> sha256) differ from the ``recorded`` ones.

    ``what`` is the kind of file, when it changed and what recorded it (as
    :func:`mission_changes` words them); ``added`` formats the problem of a
    file the sweep did not have.
    """
    kind, when, was = what
    problems = [
        f"{kind} {name!r} changed {when}: {was} sha256 {sha}, "
        f"file now {current.get(name) or 'missing'}"
        for name, sha in sorted(recorded.items())
        if current.get(name) != sha
    ]
    problems += [added.format(name) for name in sorted(set(current) - set(recorded))]
    return problems


def _version_drift(manifest: Manifest, engine_version: str) -> list[str]:
    pairs = [("the GMAT engine", manifest.gmat_install_version, engine_version)]
    if manifest.parameter_spec.get("_kind") in _STOCHASTIC:
        pairs.append(("numpy", manifest.numpy_version, installed_version("numpy")))
        pairs.append(("scipy", manifest.scipy_version, installed_version("scipy")))
    return [
        f"{name} is {now}, but the sweep ran with {recorded}"
        for name, recorded, now in pairs
        if recorded and recorded != now
    ]


@functools.cache
def installed_version(distribution: str) -> str:
    """The installed version of ``distribution``, or ``"unknown"`` (read once a process)."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "unknown"


def _json(overrides: Mapping[str, Any]) -> str:
    return json.dumps(overrides, sort_keys=True, allow_nan=True)
