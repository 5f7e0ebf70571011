"""The ``gmat-sweep`` command (also ``python -m gmat_sweep``).

Exit codes: 0 when every run succeeded, 1 when the sweep finished with
failed runs, 2 for a usage error (bad argument, unknown field path, missing
mission, an ``--out`` that holds another sweep) — printed as one line, no
traceback.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tomllib
from collections import Counter, defaultdict
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from gmat_sweep.distributions import DistSpec, ParamName
from gmat_sweep.errors import GmatSweepError, SweepConfigError

_EXAMPLES = {
    "run": "gmat-sweep run mission.script --param Sat.SMA=7000:7400:5 "
    "--param Sat.INC=28.5,51.6,98 --out study",
    "monte-carlo": "gmat-sweep monte-carlo mission.script -n 200 "
    "--perturb 'Sat.SMA=normal(7000,5)' --perturb 'Sat.Cd=uniform(2.0,2.4)' --seed 42",
    "lhs": "gmat-sweep lhs mission.script -n 50 --perturb 'Sat.SMA=normal(7000,5)' --seed 7",
    "resume": "gmat-sweep resume study",
    "show": "gmat-sweep show study",
    "export": "gmat-sweep export study --to results.parquet",
    "demo": "gmat-sweep demo",
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``gmat-sweep`` console script; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
        return code
    except (GmatSweepError, FileNotFoundError) as exc:
        print(f"gmat-sweep: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gmat-sweep: interrupted; finished runs are in the manifest — resume with "
              "`gmat-sweep resume OUT_DIR`", file=sys.stderr)  # fmt: skip
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gmat-sweep",
        description="Parallel, crash-safe, reproducible sweeps over NASA GMAT missions.",
        epilog="example: " + _EXAMPLES["demo"],
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog="example: " + _EXAMPLES[name],
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    run = command("run", "Run a full-factorial grid sweep.")
    run.add_argument("mission", type=Path, help="the GMAT .script every run loads")
    run.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="PATH=VALUES",
        help="a swept field: start:stop:count (inclusive, evenly spaced) or a,b,c",
    )
    run.add_argument(
        "--spec", type=Path, help="a .toml or .json file with a [grid] table or a samples list"
    )
    _execution_options(run)
    run.set_defaults(handler=_cmd_run)

    for name, help_text in (
        ("monte-carlo", "Run a Monte Carlo dispersion."),
        ("lhs", "Run a Latin-hypercube study."),
    ):
        stochastic = command(name, help_text)
        stochastic.add_argument("mission", type=Path, help="the GMAT .script every run loads")
        stochastic.add_argument("-n", type=int, required=True, help="number of runs")
        stochastic.add_argument(
            "--perturb",
            action="append",
            default=[],
            required=True,
            metavar="PATH=DIST(ARGS)",
            help="normal(mu,sigma), uniform(lo,hi) or lognormal(mu,sigma)",
        )
        stochastic.add_argument("--seed", type=int, help="parent seed (default: drawn, recorded)")
        _execution_options(stochastic)
        stochastic.set_defaults(handler=_cmd_stochastic, kind=name)

    resume = command("resume", "Re-run the failed and missing runs of a sweep.")
    resume.add_argument("out_dir", help="the sweep directory (holds manifest.jsonl)")
    resume.add_argument("--script", type=Path, help="the mission, if it moved since the sweep")
    resume.add_argument("--allow-script-drift", action="store_true")
    _execution_options(resume, out=False)
    resume.set_defaults(handler=_cmd_resume)

    show = command("show", "Summarise a sweep directory.")
    show.add_argument("out_dir")
    show.set_defaults(handler=_cmd_show)

    export = command("export", "Write one output of a sweep to a single file.")
    export.add_argument("out_dir")
    export.add_argument("--to", required=True, type=Path, help="results.parquet or results.csv")
    export.add_argument("--name", help="which report (needed when runs wrote several)")
    export.set_defaults(handler=_cmd_export)

    demo = command("demo", "Run a small sweep on a mission bundled with gmat_sweep.")
    _execution_options(demo)
    demo.set_defaults(handler=_cmd_demo)
    return parser


def _execution_options(parser: argparse.ArgumentParser, *, out: bool = True) -> None:
    group = parser.add_argument_group("execution")
    group.add_argument(
        "--backend",
        choices=("local", "dask", "joblib", "ray"),
        default="local",
        help="executor (default: local)",
    )
    group.add_argument("--workers", type=int, default=-1, help="parallel runs (default: cores)")
    group.add_argument("--scheduler", metavar="ADDRESS", help="an existing Dask scheduler")
    group.add_argument(
        "--cluster",
        metavar="KIND",
        help="workers as batch jobs via dask-jobqueue: slurm, pbs, sge, lsf, htcondor, oar or "
        "moab (job options from Dask's jobqueue.yaml); needs --jobs or --adapt",
    )
    group.add_argument("--jobs", type=int, metavar="N", help="with --cluster: N batch jobs")
    group.add_argument(
        "--adapt", metavar="MIN:MAX", help="with --cluster: scale between MIN and MAX workers"
    )
    if out:
        group.add_argument("--out", help="sweep directory or fsspec URL (default: new dir here)")
        group.add_argument("--overwrite", action="store_true", help="replace a sweep in --out")
    group.add_argument("--timeout", type=float, metavar="S", help="stop a run after S seconds")
    group.add_argument("--no-progress", action="store_true", help="no progress bar")
    group.add_argument("--quiet", action="store_true", help="print only errors")


# -- commands ----------------------------------------------------------------


def _cmd_run(args: argparse.Namespace) -> int:
    from gmat_sweep.api import sweep

    grid: dict[str, list[Any]] | None = None
    samples: list[dict[str, Any]] | None = None
    if args.spec is not None:
        grid, samples = _read_spec_file(args.spec)
    if args.param:
        grid = dict(grid or {})
        for text in args.param:
            path, values = _parse_param(text)
            grid[path] = values
    if grid is None and samples is None:
        raise SweepConfigError("give at least one --param PATH=VALUES or a --spec file")
    with _pool(args) as pool:
        result = sweep(
            args.mission,
            grid,
            samples=samples,
            backend=pool,
            out=args.out,
            run_options=_run_options(args),
            progress=_progress(args),
            overwrite=args.overwrite,
        )
    return _report(result, args)


def _cmd_stochastic(args: argparse.Namespace) -> int:
    from gmat_sweep.api import latin_hypercube, monte_carlo

    perturb = dict(_parse_perturb(text) for text in args.perturb)
    entry = monte_carlo if args.kind == "monte-carlo" else latin_hypercube
    with _pool(args) as pool:
        result = entry(
            args.mission,
            n=args.n,
            perturb=perturb,
            seed=args.seed,
            backend=pool,
            out=args.out,
            run_options=_run_options(args),
            progress=_progress(args),
            overwrite=args.overwrite,
        )
    return _report(result, args)


def _cmd_resume(args: argparse.Namespace) -> int:
    from gmat_sweep.manifest import Manifest
    from gmat_sweep.sweep import MANIFEST_NAME, Sweep

    manifest_path = Path(args.out_dir) / MANIFEST_NAME
    manifest = Manifest.load(manifest_path)
    script = args.script or _recorded_script(manifest)
    with _pool(args) as pool:
        result = Sweep.from_manifest(
            manifest_path,
            script,
            backend=pool,
            allow_script_drift=args.allow_script_drift,
            progress=_progress(args),
        ).resume()
    return _report(result, args)


def _cmd_show(args: argparse.Namespace) -> int:
    from gmat_sweep.manifest import Manifest, read_all_entries
    from gmat_sweep.sweep import MANIFEST_NAME

    path = Path(args.out_dir) / MANIFEST_NAME
    manifest = Manifest.load(path)
    print(_summary(manifest, Path(args.out_dir), len(read_all_entries(path))))
    return 1 if manifest.find_failed() else 0


def _cmd_export(args: argparse.Namespace) -> int:
    from gmat_sweep.aggregate import lazy_multiindex
    from gmat_sweep.manifest import Manifest
    from gmat_sweep.sweep import MANIFEST_NAME

    root = Path(args.out_dir)
    frame = lazy_multiindex(Manifest.load(root / MANIFEST_NAME), root, name=args.name)
    target: Path = args.to
    if target.suffix == ".parquet":
        frame.to_parquet(target)
    elif target.suffix == ".csv":
        frame.to_csv(target)
    else:
        raise SweepConfigError(f"--to {target}: use a file name ending in .parquet or .csv")
    print(f"wrote {len(frame)} rows from {frame.index.get_level_values(0).nunique()} runs "
          f"to {target}")  # fmt: skip
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from gmat_sweep.api import sweep

    mission = resources.files("gmat_sweep") / "data" / "leo_basic.script"
    with resources.as_file(mission) as script, _pool(args) as pool:
        if not args.quiet:
            print(f"gmat-sweep demo: sweeping {script.name} (one LEO orbit, drag and SRP) over "
                  "5 altitudes x 4 inclinations = 20 real GMAT runs")  # fmt: skip
        result = sweep(
            script,
            {
                "Sat.SMA": [6678.137, 6778.137, 6878.137, 6978.137, 7078.137],
                "Sat.INC": [28.5, 51.6, 82.0, 97.8],
            },
            backend=pool,
            out=args.out,
            run_options=_run_options(args),
            progress=_progress(args),
            overwrite=args.overwrite,
        )
        if not args.quiet:
            frame = result.to_pandas()
            last = frame.groupby(level="run_id").tail(1).reset_index()
            table = last[["run_id", "Sat.SMA", "Sat.INC", "Sat.Earth.SMA", "Sat.Earth.ECC"]]
            print("\nfinal osculating SMA and ECC of each run (km):")
            print(table.rename(columns={"Sat.Earth.SMA": "final SMA", "Sat.Earth.ECC":
                  "final ECC"}).to_string(index=False))  # fmt: skip
    return _report(result, args)


# -- helpers -----------------------------------------------------------------


class _NoPool:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _pool(args: argparse.Namespace) -> Any:
    if args.cluster or args.jobs is not None or args.adapt:
        return _cluster_pool(args)
    if args.scheduler:
        from distributed import Client

        from gmat_sweep.backends.dask import DaskPool

        return DaskPool(client=Client(args.scheduler))  # type: ignore[no-untyped-call]
    if args.backend == "dask":
        from gmat_sweep.backends.dask import DaskPool

        return DaskPool(n_workers=None if args.workers == -1 else args.workers)
    if args.backend == "joblib":
        from gmat_sweep.backends.joblib import LocalJoblibPool

        return LocalJoblibPool(args.workers)
    if args.backend == "ray":
        from gmat_sweep.backends.ray import RayPool

        return RayPool(num_cpus=None if args.workers == -1 else args.workers)
    from gmat_sweep.backends.local import LocalPool

    return LocalPool(args.workers)


def _cluster_pool(args: argparse.Namespace) -> Any:
    """``--cluster KIND`` with ``--jobs N`` or ``--adapt MIN:MAX``: a dask-jobqueue pool."""
    if not args.cluster:
        raise SweepConfigError("--jobs and --adapt size a batch cluster: add --cluster KIND")
    if args.scheduler:
        raise SweepConfigError("--cluster starts its own scheduler: drop --scheduler")
    if (args.jobs is None) == (args.adapt is None):
        raise SweepConfigError(
            f"--cluster {args.cluster}: give either --jobs N (a fixed number of batch jobs) or "
            "--adapt MIN:MAX (adaptive scaling), e.g. --jobs 8 or --adapt 0:16"
        )
    from gmat_sweep.backends.jobqueue import jobqueue_pool

    if args.jobs is not None:
        return jobqueue_pool(args.cluster, jobs=args.jobs)
    low, sep, high = args.adapt.partition(":")
    if not (sep and low.strip().isdigit() and high.strip().isdigit()):
        raise SweepConfigError(f"--adapt {args.adapt!r}: write MIN:MAX workers, e.g. 0:16")
    return jobqueue_pool(args.cluster, minimum=int(low), maximum=int(high))


def _run_options(args: argparse.Namespace) -> dict[str, Any]:
    return {} if args.timeout is None else {"timeout_s": args.timeout}


def _progress(args: argparse.Namespace) -> bool:
    return not (args.no_progress or args.quiet)


def _report(result: Any, args: argparse.Namespace) -> int:
    failed = result.manifest.find_failed()
    if not args.quiet:
        print(result)
    if failed:
        print(f"gmat-sweep: {len(failed)} run(s) failed; see `gmat-sweep show "
              f"{result.output_dir}` and each run's gmat.log", file=sys.stderr)  # fmt: skip
        return 1
    return 0


def _recorded_script(manifest: Any) -> Path:
    recorded = getattr(manifest, "script_path", "") or ""
    if not recorded:
        raise SweepConfigError(
            "this manifest does not record where its mission script is; pass --script PATH"
        )
    return Path(recorded)


_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _value(text: str) -> Any:
    text = text.strip()
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    if _NUMBER.match(text):
        return float(text)
    return text.strip("'\"")


def _parse_param(text: str) -> tuple[str, list[Any]]:
    """``Sat.SMA=7000:7400:5`` (inclusive range) or ``Sat.INC=28.5,51.6``."""
    path, sep, values = text.partition("=")
    if not sep or not path.strip() or not values.strip():
        raise SweepConfigError(
            f"--param {text!r}: write PATH=VALUES, e.g. Sat.SMA=7000:7400:5 or Sat.INC=28.5,51.6"
        )
    parts = values.split(":")
    if len(parts) == 3:
        try:
            start, stop, count = float(parts[0]), float(parts[1]), int(parts[2])
        except ValueError:
            raise SweepConfigError(
                f"--param {text!r}: a range is start:stop:count with numbers, e.g. 7000:7400:5"
            ) from None
        if count < 1:
            raise SweepConfigError(f"--param {text!r}: count must be at least 1")
        if count == 1:
            return path.strip(), [start]
        step = (stop - start) / (count - 1)
        return path.strip(), [start + i * step for i in range(count - 1)] + [stop]
    return path.strip(), [_value(v) for v in values.split(",")]


_DIST = re.compile(r"^\s*(?P<path>[^=]+?)\s*=\s*(?P<name>[a-z_]+)\s*\((?P<args>[^)]*)\)\s*$")


def _parse_perturb(text: str) -> tuple[ParamName, DistSpec]:
    """``Sat.SMA=normal(7000,5)`` -> ``("Sat.SMA", ("normal", 7000.0, 5.0))``."""
    match = _DIST.match(text)
    if match is None:
        raise SweepConfigError(
            f"--perturb {text!r}: write PATH=DIST(ARGS), e.g. 'Sat.SMA=normal(7000,5)' or "
            "'Sat.Cd=uniform(2.0,2.4)'"
        )
    try:
        numbers = tuple(float(a) for a in match["args"].split(",") if a.strip())
    except ValueError:
        raise SweepConfigError(
            f"--perturb {text!r}: distribution arguments must be numbers"
        ) from None
    spec: DistSpec = (match["name"], *numbers)
    return match["path"], spec


def _read_spec_file(path: Path) -> tuple[dict[str, list[Any]] | None, list[dict[str, Any]] | None]:
    if not path.is_file():
        raise SweepConfigError(f"--spec {path}: no such file")
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise SweepConfigError(f"--spec {path}: not valid {path.suffix[1:]}: {exc}") from None
    if not isinstance(data, dict) or not ({"grid", "samples"} & set(data)):
        raise SweepConfigError(
            f"--spec {path}: expected a 'grid' table (field path -> list of values) or a "
            "'samples' list of rows"
        )
    return data.get("grid"), data.get("samples")


def _summary(manifest: Any, root: Path, attempts: int) -> str:
    entries = manifest.entries
    status = Counter(str(e.status) for e in entries)
    missing = manifest.find_missing(range(manifest.run_count))
    durations = sorted(e.duration_s for e in entries)
    lines = [
        f"sweep in {root}: {manifest.run_count} runs — ok {status['ok']}, failed "
        f"{status['failed']}, missing {len(missing)} ({attempts} attempts recorded)",
        f"engine: {manifest.gmat_install_version}; gmat_sweep {manifest.gmat_sweep_version}",
    ]
    if manifest.sweep_seed is not None:
        lines.append(f"seed: {manifest.sweep_seed}")
    if entries:
        starts = min(e.started_at for e in entries)
        ends = max(e.ended_at for e in entries)
        q = statistics.quantiles(durations, n=20) if len(durations) > 1 else durations * 19
        lines.append(
            f"wall {(ends - starts).total_seconds():.1f} s; per run p50 {q[9]:.3f} s, "
            f"p95 {q[18]:.3f} s, max {durations[-1]:.3f} s"
        )
    failures: dict[str, list[int]] = defaultdict(list)
    for entry in entries:
        if str(entry.status) == "failed":
            failures[(entry.stderr or "").splitlines()[0] if entry.stderr else "?"].append(
                entry.run_id
            )
    for first_line, ids in failures.items():
        shown = ", ".join(map(str, ids[:10])) + (" ..." if len(ids) > 10 else "")
        lines.append(f"failed ({len(ids)}): {first_line}  [run_ids {shown}]")
    outputs: Counter[str] = Counter()
    rows: Counter[str] = Counter()
    for entry in entries:
        for key, rel in entry.output_paths.items():
            outputs[key] += 1
            rows[key] += _rows(root, rel)
    for key in sorted(outputs):
        lines.append(f"output {key}: {outputs[key]} runs, {rows[key]} rows")
    return "\n".join(lines)


def _rows(root: Path, rel: Any) -> int:
    import pyarrow.parquet as pq

    path = Path(rel) if Path(rel).is_absolute() else root / rel
    try:
        return int(pq.ParquetFile(path).metadata.num_rows)
    except OSError:
        return 0
