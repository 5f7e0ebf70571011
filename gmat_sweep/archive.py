"""A sweep as one reproducible zip: manifest, outputs, mission, checksums and how to rerun it.

:func:`write_archive` packs a sweep directory into a zip file that is
byte-identical whenever it is built from the same sweep: entries are sorted
by name, every entry carries the zip epoch (1980-01-01 00:00:00) as its time,
mode ``0o644``, the same compressor and level, and no extra fields. Extracted,
the archive is a sweep directory again (``manifest.jsonl`` and the
``run-NNNNNN/`` directories at its root), next to:

* ``mission/``: the script, every file it ``#Include``\\ s and every file it
  reads (a gravity model, SPICE kernels:
  :func:`gmat_sweep.script.script_inputs_sha256`), laid out as they were
  relative to each other, so the includes and relative paths still resolve;
  a file named by an absolute path is copied under ``mission/external/``
  at that path, and the files naming it are rewritten to name the copy;
* ``external_files.json`` (only then): each copy's original path and the
  files rewritten;
* ``parameter_spec.json``: the manifest's record of how the runs were chosen;
* ``spec.json`` (grid and sample sweeps): the same runs as a
  ``gmat-sweep run --spec`` file;
* ``REPRODUCE.md``: the command that reruns the study from those files;
* ``SHA256SUMS``: the SHA-256 of every other entry, in ``sha256sum -c`` form.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from gmat_sweep import storage
from gmat_sweep.containment import sweep_root
from gmat_sweep.engine import ensure_engine
from gmat_sweep.errors import SweepConfigError
from gmat_sweep.manifest import Manifest, ok_outputs
from gmat_sweep.plan import CLI_DISTRIBUTIONS, MissionHashes, recorded_grid, script_drift
from gmat_sweep.script import (
    canonical_text,
    repoint,
    resources,
    script_includes_sha256,
)
from gmat_sweep.spec import PathLike

if TYPE_CHECKING:
    from gmat_sweep.sweep import Sweep

ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
"""The earliest time a zip entry can carry; every entry gets it."""

_MODE = 0o100644 << 16
"""A regular file, rw-r--r--, in the zip's external attributes (Unix)."""


def write_archive(
    sweep: Sweep,
    path: str | Path,
    *,
    script: str | Path | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``sweep`` (manifest, outputs, mission, checksums, rerun recipe) to one zip file.

    Parameters
    ----------
    sweep:
        A sweep that has run (completely or partly), or one rebuilt from its
        manifest.
    path:
        The ``.zip`` to write (a local path); its directory must exist. An
        existing file is replaced.
    script:
        The mission, when it moved since the sweep ran (default: the sweep's
        script). It and the files it includes must be the ones the sweep ran,
        as the manifest's hashes record them.
    storage_options:
        fsspec options when the sweep lives at a URL.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    SweepConfigError
        ``path`` is a directory or its directory does not exist, or the
        mission script (or a file it includes) cannot be read or changed since the sweep ran.
    """
    target = storage.local_file(path, "archive")
    manifest = sweep.manifest
    if script is None:
        script = sweep.runs[0].script_path if sweep.runs else manifest.script_path
    mission, external = _mission_files(sweep, Path(script))
    files = dict(_sweep_files(sweep.output_dir, storage_options))
    _warn_lost_outputs(manifest, sweep.output_dir, files)
    for name, data in mission.items():
        files[f"mission/{name}"] = data
    if external["copies"]:
        files[EXTERNAL] = _json(external)
    spec = manifest.parameter_spec
    files["parameter_spec.json"] = _json(spec)
    kind = spec.get("_kind", "grid")
    if kind == "grid":
        files["spec.json"] = _json({"grid": recorded_grid(spec)})
    elif kind == "samples":
        files["spec.json"] = _json({"samples": spec["rows"]})
    script_name = f"mission/{next(iter(mission))}"
    files["REPRODUCE.md"] = reproduce_text(spec, script_name, external).encode("utf-8")
    files["SHA256SUMS"] = "".join(
        f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in sorted(files.items())
    ).encode("utf-8")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
            info.external_attr = _MODE
            info.create_system = 3
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, files[name], compresslevel=6)
    storage.atomic_write(target, buffer.getvalue())
    return target


def reproduce_text(
    parameter_spec: Mapping[str, Any], script: str, external: Mapping[str, Any] | None = None
) -> str:
    """The ``REPRODUCE.md`` of an archive: how to rerun the study ``parameter_spec`` records.

    Markdown with the ``gmat-sweep`` command (when the CLI can express the
    design) and the equivalent Python call, both run from the extracted
    archive's directory, where the mission is ``script``. ``external`` is the
    archive's record of the files the mission names by an absolute path
    (:data:`EXTERNAL`), explained when there are any.
    """
    kind = parameter_spec.get("_kind", "grid")
    options = dict(parameter_spec.get("run_options") or {})
    timeout = options.get("timeout_s")
    python = _python_call(parameter_spec, script, kind)
    command = _cli_command(parameter_spec, script, kind)
    if command is not None and timeout is not None:
        command += f" --timeout {timeout!r}"
    lines = [
        "# Reproduce this study",
        "",
        "Run from the directory this archive was extracted to. GMAT runs are",
        "deterministic: the same mission, parameters and engine give bit-identical",
        "outputs, so the new sweep's frames equal this one's. `sha256sum -c SHA256SUMS`",
        "checks the files first.",
        "",
    ]
    if command is not None:
        lines += ["With the command line:", "", "```bash", command, "```", "", "Or in Python:", ""]
    lines += ["```python", python, "```", ""]
    if external and external["copies"]:
        lines += [
            "The mission names files by an absolute path. Their copies are under",
            f"`mission/` ({', '.join(f'`{name}`' for name in external['copies'])}),",
            f"and `{EXTERNAL}` maps each to its original path. These files of the",
            "mission name the copies instead, by relative paths, and so differ from",
            "the files the manifest's hashes record by those names only:",
            "",
            *(f"- `{name}`" for name in external["rewritten"]),
            "",
            "To resume this sweep (rather than rerun it) with the archived mission,",
            "pass `allow_script_drift=True` (CLI: `--allow-script-drift`).",
            "",
        ]
    return "\n".join(lines)


def _cli_command(spec: Mapping[str, Any], script: str, kind: str) -> str | None:
    if kind in ("grid", "samples"):
        return f"gmat-sweep run {script} --spec spec.json --out rerun"
    perturb = spec["perturb"]
    if not all(
        "|" not in name and set(dist) == {"dist", "params"} and dist["dist"] in CLI_DISTRIBUTIONS
        for name, dist in perturb.items()
    ):
        return None
    parts = [f"gmat-sweep {'lhs' if kind == 'latin_hypercube' else 'monte-carlo'} {script}"]
    parts.append(f"-n {spec['n']}")
    for name, dist in perturb.items():
        arguments = ",".join(repr(float(value)) for value in dist["params"])
        parts.append(f"--perturb '{name}={dist['dist']}({arguments})'")
    parts.append(f"--seed {spec['seed']} --out rerun")
    return " ".join(parts)


def _python_call(spec: Mapping[str, Any], script: str, kind: str) -> str:
    options = spec.get("run_options")
    lines = ["import json", ""]
    if kind in ("grid", "samples"):
        lines.append("from gmat_sweep import sweep")
        lines += ["", 'spec = json.load(open("parameter_spec.json"))']
        design = 'grid=spec["grid"]' if kind == "grid" else 'samples=spec["rows"]'
        call = f'sweep("{script}", {design}'
    else:
        function = "latin_hypercube" if kind == "latin_hypercube" else "monte_carlo"
        lines.append(f"from gmat_sweep import {function}")
        lines.append("from gmat_sweep.sampling import perturb_from_description")
        lines += ["", 'spec = json.load(open("parameter_spec.json"))']
        call = (
            f'{function}("{script}", n=spec["n"], '
            'perturb=perturb_from_description(spec["perturb"]), seed=spec["seed"]'
        )
    if options:
        call += ', run_options=spec["run_options"]'
    lines.append(call + ', out="rerun")')
    return "\n".join(lines)


def _json(value: Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True) + "\n").encode("utf-8")


EXTERNAL = "external_files.json"
"""The archive's record of the files a mission names by an absolute path (see below)."""


def _mission_files(sweep: Sweep, script: Path) -> tuple[dict[str, bytes], dict[str, Any]]:
    """The mission's files keyed by their path under ``mission/`` (the script first).

    The script, its includes and the files it reads by a relative name are
    laid out as they are relative to each other. A file named by an absolute
    path (``#Include '/abs/x.script'``, ``PotentialFile = '/data/x.cof'``) is
    copied under ``external/`` at that path, and the script and its includes
    are rewritten to name the copy by a relative path
    (:func:`gmat_sweep.script.repoint`), so the mission reruns from the
    archive anywhere; the files an include named so includes by relative
    names go with it. A file of the engine's own data directory
    (:attr:`gmat_sweep.engine.Engine.data`) is the engine's, not the
    mission's: it is neither copied nor renamed. The second value records
    the rest for :data:`EXTERNAL`: each copy's original path, and the files
    rewritten (empty when none is). They must be the files the sweep ran:
    the archive's recipe reruns them.
    """
    top = Path(os.path.abspath(script))
    if not top.is_file():
        raise SweepConfigError(
            f"mission script {str(top)!r} does not exist (moved or deleted since the sweep "
            "ran); an archive holds the mission: pass its new path (script=, CLI: --script PATH)"
        )
    mission = MissionHashes.of(top)  # hashed once: the drift check, then the names
    drift = script_drift(sweep.manifest, top, mission)
    if drift:
        raise SweepConfigError(
            "; ".join(drift) + "; an archive holds the mission the sweep ran, so that its "
            "recipe reruns it: restore those files, or pass the path of an unchanged copy "
            "(script=, CLI: --script PATH)"
        )
    includes = mission.includes
    names = [*includes, *(mission.inputs or {})]
    engine = ensure_engine().data.resolve()
    # A file of the engine's own data (named by its path in this install) ships with the
    # engine, which the manifest identifies: it is not the mission's to copy.
    absolute = [
        Path(name)
        for name in names
        if _absolute(name) and not Path(name).resolve().is_relative_to(engine)
    ]
    # An include named by an absolute path may include files beside itself: they go with it.
    nested = [
        Path(os.path.abspath(path.parent / name))
        for path in absolute
        if path.as_posix() in includes
        for name in script_includes_sha256(path)
        if not _absolute(name)
    ]
    beside = [top]
    for name in names:
        path = Path(os.path.abspath(top.parent / name))
        if not _absolute(name) and path not in nested:
            beside.append(path)
    root = Path(os.path.commonpath([path.parent for path in beside]))
    placed = {path: path.relative_to(root).as_posix() for path in beside}
    external = _free_directory(placed.values())
    for path in [*absolute, *nested]:
        placed.setdefault(path, f"{external}/{PurePosixPath(path).relative_to(path.anchor)}")
    elsewhere = {path.as_posix(): placed[path] for path in absolute}
    texts = [top, *(Path(os.path.abspath(top.parent / name)) for name in includes)]
    files = {placed[path]: path.read_bytes() for path in placed}
    kinds = resources(top)
    inputs = {name: _relative(target, placed[top]) for name, target in elsewhere.items()}
    rewritten = []
    for path in texts:
        text = canonical_text(path)
        here = {name: _relative(target, placed[path]) for name, target in elsewhere.items()}
        moved = repoint(text, kinds, here, inputs)
        if moved != text:
            files[placed[path]] = moved.encode("utf-8")
            rewritten.append(f"mission/{placed[path]}")
    record = {
        "copies": {f"mission/{target}": name for name, target in sorted(elsewhere.items())},
        "rewritten": sorted(rewritten),
    }
    return files, record


def _absolute(name: str) -> bool:
    return PurePosixPath(name).is_absolute()


def _relative(target: str, beside: str) -> str:
    """The POSIX path of ``target`` from the directory of ``beside`` (both under ``mission/``)."""
    directory = PurePosixPath(beside).parent.as_posix()
    return PurePosixPath(os.path.relpath(target, directory)).as_posix()


def _free_directory(taken: Iterable[str]) -> str:
    """``external`` (or ``external-2`` ...): a top directory no file of the mission uses."""
    used = {name.split("/", 1)[0] for name in taken}
    return next(
        name
        for name in ("external", *(f"external-{n}" for n in range(2, len(used) + 3)))
        if name not in used
    )


def _warn_lost_outputs(manifest: Manifest, root: PathLike, files: Mapping[str, bytes]) -> None:
    """Warn when ok runs' recorded outputs are missing from ``files`` or not whole Parquet.

    The archive keeps the manifest as it is, so such runs would read as gone
    from it; a resume first runs them again. The rule is
    :func:`gmat_sweep.manifest.unreadable_ok_runs`'s, applied to the bytes read here.
    """
    base = sweep_root(root)
    lost: dict[int, list[str]] = {}
    for location, run_id in ok_outputs(manifest, root).items():
        name = location[len(base) + 1 :]
        data = files.get(name)
        if data is None or (name.endswith(".parquet") and not storage.whole_parquet(data)):
            lost.setdefault(run_id, []).append(name)
    if lost:
        named = [name for names in lost.values() for name in names]
        shown = ", ".join(named[:3]) + (f" and {len(named) - 3} more" if len(named) > 3 else "")
        warnings.warn(
            f"the manifest records runs {list(lost)} as ok, but their output files are missing "
            f"or damaged ({shown}); the archive holds the sweep as it is, so those runs read as "
            "gone from it: resume the sweep first (gmat-sweep resume OUT_DIR, or "
            "Sweep.resume()) to run them again, then archive it",
            RuntimeWarning,
            stacklevel=3,
        )


def _sweep_files(root: str | Path, storage_options: Mapping[str, Any] | None) -> dict[str, bytes]:
    """The manifest (with any object-store entry objects) and every run directory's files."""
    fs, base = storage.filesystem(root, storage_options)
    base = base.rstrip("/")
    names: list[str] = []
    with storage.reading(root):
        for found in sorted(fs.find(base)):
            relative = str(found)[len(base) + 1 :]
            first = relative.split("/", 1)[0]
            if relative == "manifest.jsonl" or first == "manifest.d" or first.startswith("run-"):
                names.append(relative)
        contents = fs.cat([f"{base}/{name}" for name in names], on_error="raise")
    return {name: contents[f"{base}/{name}"] for name in names}
