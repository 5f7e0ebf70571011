"""The ``gmat-sweep`` command (also ``python -m gmat_sweep``).

Exit codes: 0 when every run succeeded, 1 when the sweep finished with
failed runs (``show``: when runs failed or are missing), 2 for a usage error
(bad argument, unknown field path, missing mission, an ``--out`` that holds
another sweep) — printed as one line, no traceback.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import statistics
import sys
import threading
import tomllib
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

from gmat_sweep import storage
from gmat_sweep.backends import KNOWN_BACKENDS
from gmat_sweep.containment import locate
from gmat_sweep.distributions import DistSpec, ParamName
from gmat_sweep.errors import GmatSweepError, SweepConfigError
from gmat_sweep.spec import PathLike, is_url

_EXAMPLES = {
    "run": [
        "gmat-sweep run mission.script --param Sat.SMA=7000:7400:5 --param Sat.INC=28.5,51.6,98 "
        "--out study",
        "gmat-sweep run mission.script --spec study.toml --out study   "
        '# study.toml: [grid] "Sat.SMA" = [7000, 7100]',
    ],
    "monte-carlo": [
        "gmat-sweep monte-carlo mission.script -n 200 --perturb 'Sat.SMA=normal(7000,5)' "
        "--perturb 'Sat.Cd=uniform(2.0,2.4)' --seed 42 --out mc",
    ],
    "lhs": [
        "gmat-sweep lhs mission.script -n 50 --perturb 'Sat.SMA=normal(7000,5)' "
        "--perturb 'Sat.INC=uniform(28,52)' --seed 7 --out lhs",
    ],
    "resume": ["gmat-sweep resume study", "gmat-sweep resume study --allow-script-drift"],
    "show": ["gmat-sweep show study"],
    "export": [
        "gmat-sweep export study --to results.parquet",
        "gmat-sweep export study --to results.csv --name RF",
    ],
    "demo": ["gmat-sweep demo", "gmat-sweep demo --workers 2 --out demo-study"],
    "script": ["gmat-sweep script study 17 > run17.script"],
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``gmat-sweep`` command and return its exit code.

    Parameters
    ----------
    argv:
        The arguments after the program name; ``None`` reads ``sys.argv``.

    Returns
    -------
    int
        0 when every run succeeded, 1 when runs failed, 2 for a usage error.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    with warnings.catch_warnings(), _sigterm_interrupts():
        warnings.showwarning = _show_warning
        try:
            args.storage_options = _storage_options(args.storage_option)
            code: int = args.handler(args)
            return code
        except (GmatSweepError, OSError) as exc:
            print(f"gmat-sweep: error: {_one_line(str(exc))}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("gmat-sweep: interrupted; finished runs are in the manifest — resume with "
                  "`gmat-sweep resume OUT_DIR`", file=sys.stderr)  # fmt: skip
            return 130
        except Exception as exc:
            if not _from_pyarrow(exc):
                raise
            print(
                f"gmat-sweep: error: a results file cannot be read ({type(exc).__name__}: "
                f"{_one_line(str(exc))}); it may have been damaged or cut short: run "
                "`gmat-sweep resume OUT_DIR` to run again the runs whose files are unreadable",
                file=sys.stderr,
            )
            return 2


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """Treat SIGTERM (``kill``, a scheduler ending the job) like Ctrl-C while the command runs.

    The pool then stops its GMAT hosts and the manifest keeps every finished run.
    Signal handlers can only be set from the main thread; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _from_pyarrow(exc: Exception) -> bool:
    """Whether ``exc`` is a pyarrow error (checked without importing pyarrow)."""
    pyarrow = sys.modules.get("pyarrow")
    return pyarrow is not None and isinstance(exc, pyarrow.ArrowException)


def _one_line(text: str) -> str:
    return re.sub(r"\s*\n\s*", " ", text.strip())


def _show_warning(message: Warning | str, *_: object, **__: object) -> None:
    print(f"gmat-sweep: warning: {_one_line(str(message))}", file=sys.stderr)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line, without the usage dump."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="gmat-sweep",
        description="Parallel, crash-safe, reproducible sweeps over NASA GMAT missions.",
        epilog="examples:\n"
        + "\n".join(f"  {line}" for lines in _EXAMPLES.values() for line in lines),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        lines = _EXAMPLES[name]
        return sub.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=("example:\n" if len(lines) == 1 else "examples:\n")
            + "\n".join(f"  {line}" for line in lines),
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
        "--spec",
        type=Path,
        metavar="FILE",
        help="a .toml or .json file with a 'grid' table (field path -> list of values) or a "
        "'samples' list of rows; --param entries are added to its grid",
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

    resume = command(
        "resume",
        "Re-run the failed and missing runs of a sweep, with the mission, parameters and "
        "per-run timeout its manifest records.",
    )
    resume.add_argument("out_dir", help="the sweep directory or URL (holds manifest.jsonl)")
    resume.add_argument(
        "--script", type=Path, help="the mission, if it moved since the sweep (default: recorded)"
    )
    resume.add_argument(
        "--allow-script-drift",
        action="store_true",
        help="resume although the mission (or a file it #Includes) changed since the sweep",
    )
    resume.add_argument(
        "--allow-version-drift",
        action="store_true",
        help="resume although the GMAT engine, numpy or scipy changed version since the sweep, "
        "or the rebuilt runs' overrides differ from the recorded ones",
    )
    _execution_options(resume, out=False, timeout=False)
    resume.set_defaults(handler=_cmd_resume)

    show = command(
        "show",
        "Summarise a sweep: runs ok/failed/missing, timing, each distinct failure, outputs. "
        "Exits 1 when runs failed or are missing.",
    )
    show.add_argument("out_dir", help="the sweep directory or URL (holds manifest.jsonl)")
    _storage_option_argument(show)
    show.set_defaults(handler=_cmd_show)

    export = command(
        "export",
        "Write a sweep's report, every run in one (run_id, time)-indexed table, to one file.",
    )
    export.add_argument("out_dir", help="the sweep directory or URL (holds manifest.jsonl)")
    export.add_argument("--to", required=True, type=Path, help="results.parquet or results.csv")
    export.add_argument("--name", help="which report (needed when runs wrote several)")
    export.add_argument("--quiet", action="store_true", help="print only errors")
    _storage_option_argument(export)
    export.set_defaults(handler=_cmd_export)

    demo = command(
        "demo", "Run a 20-run sweep of a LEO mission bundled with gmat_sweep and print the results."
    )
    _execution_options(demo)
    demo.set_defaults(handler=_cmd_demo)

    script = command(
        "script",
        "Print one run as a standalone GMAT script, its overrides written into the text "
        "(load it in GMAT or the GUI to replay the run).",
    )
    script.add_argument("out_dir", help="the sweep directory or URL (holds manifest.jsonl)")
    script.add_argument("run_id", type=int, help="the run to print")
    script.add_argument(
        "--script", type=Path, help="the mission script (default: the path the manifest records)"
    )
    _storage_option_argument(script)
    script.set_defaults(handler=_cmd_script)
    return parser


def _execution_options(
    parser: argparse.ArgumentParser, *, out: bool = True, timeout: bool = True
) -> None:
    group = parser.add_argument_group("execution")
    group.add_argument(
        "--backend",
        choices=tuple(KNOWN_BACKENDS),
        default="local",
        help="executor (default: local)",
    )
    group.add_argument(
        "--workers", type=int, default=-1, metavar="N", help="parallel runs (default: cores)"
    )
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
    if timeout:
        group.add_argument("--timeout", type=float, metavar="S", help="stop a run after S seconds")
    group.add_argument("--no-progress", action="store_true", help="no progress bar")
    group.add_argument("--quiet", action="store_true", help="print only errors")
    _storage_option_argument(group)


def _storage_option_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    parser.add_argument(
        "--storage-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an fsspec option for a URL --out / sweep directory, e.g. "
        "client_kwargs.endpoint_url=http://localhost:9000 or anon=true (dots nest; values "
        "that parse as JSON are JSON); repeat for several",
    )


# -- commands ----------------------------------------------------------------


def _cmd_run(args: argparse.Namespace) -> int:
    from gmat_sweep.api import sweep

    grid: dict[str, list[Any]] | None = None
    samples: list[dict[str, Any]] | None = None
    if args.spec is not None:
        grid, samples = _read_spec_file(args.spec)
    if args.param:
        if samples is not None:
            raise SweepConfigError(
                f"--spec {args.spec} lists explicit samples, which --param cannot add to; put "
                "every field in the samples, or use a 'grid' table with --param"
            )
        grid = dict(grid or {})
        seen: set[str] = set()
        for text in args.param:
            path, values = _parse_param(text)
            if path in seen:
                raise SweepConfigError(f"--param {path} is given twice; give each field once")
            seen.add(path)
            grid[path] = values
    if grid is None and samples is None:
        raise SweepConfigError("give at least one --param PATH=VALUES or a --spec file")
    _check_new_sweep(args)
    with _pool(args) as pool:
        result = sweep(
            args.mission,
            grid,
            samples=samples,
            backend=pool,
            out=args.out,
            storage_options=args.storage_options,
            run_options=_run_options(args),
            progress=_progress(args),
            overwrite=args.overwrite,
        )
    return _report(result, args)


def _cmd_stochastic(args: argparse.Namespace) -> int:
    from gmat_sweep.api import latin_hypercube, monte_carlo

    perturb: dict[ParamName, DistSpec] = {}
    for text in args.perturb:
        path, spec = _parse_perturb(text)
        if path in perturb:
            raise SweepConfigError(f"--perturb {path} is given twice; give each field once")
        perturb[path] = spec
    _check_new_sweep(args)
    entry = monte_carlo if args.kind == "monte-carlo" else latin_hypercube
    with _pool(args) as pool:
        result = entry(
            args.mission,
            n=args.n,
            perturb=perturb,
            seed=args.seed,
            backend=pool,
            out=args.out,
            storage_options=args.storage_options,
            run_options=_run_options(args),
            progress=_progress(args),
            overwrite=args.overwrite,
        )
    return _report(result, args)


def _cmd_resume(args: argparse.Namespace) -> int:
    from gmat_sweep.sweep import Sweep

    root = _sweep_root(args.out_dir)
    options = args.storage_options
    manifest = _load_manifest(root, options)
    script = args.script or _recorded_script(manifest)
    with _pool(args) as pool:
        result = Sweep.from_manifest(
            _manifest_location(root),
            script,
            backend=pool,
            allow_script_drift=args.allow_script_drift,
            allow_version_drift=args.allow_version_drift,
            progress=_progress(args),
            storage_options=options,
        ).resume()
    return _report(result, args)


def _cmd_show(args: argparse.Namespace) -> int:
    from gmat_sweep.manifest import read_all_entries

    root = _sweep_root(args.out_dir)
    options = args.storage_options
    manifest = _load_manifest(root, options)
    attempts = read_all_entries(_manifest_location(root), storage_options=options)
    print(_summary(manifest, root, len(attempts), options))
    complete = not manifest.find_failed() and not manifest.find_missing(range(manifest.run_count))
    return 0 if complete else 1


def _cmd_export(args: argparse.Namespace) -> int:
    from gmat_sweep.aggregate import lazy_multiindex

    target: Path = args.to
    if target.suffix not in (".parquet", ".csv"):
        raise SweepConfigError(f"--to {target}: use a file name ending in .parquet or .csv")
    if not target.parent.is_dir():
        raise SweepConfigError(f"--to {target}: directory {target.parent} does not exist")
    root = _sweep_root(args.out_dir)
    options = args.storage_options
    frame = lazy_multiindex(
        _load_manifest(root, options), root, name=args.name, storage_options=options
    )
    if target.suffix == ".parquet":
        frame.to_parquet(target)
    else:
        frame.to_csv(target)
    if not args.quiet:
        runs = frame.index.get_level_values("run_id").nunique()
        print(f"wrote {len(frame)} rows of {runs} runs to {target}")
    return 0


def _cmd_script(args: argparse.Namespace) -> int:
    from gmat_sweep.script import canonical_script_sha256
    from gmat_sweep.sweep import replay_text

    manifest = _load_manifest(_sweep_root(args.out_dir), args.storage_options)
    script = args.script or _recorded_script(manifest)
    if canonical_script_sha256(script) != manifest.script_sha256:
        raise SweepConfigError(
            f"{script} changed since the sweep ran (its SHA-256 differs from the manifest's), "
            "so its text would not replay the run; restore the script the sweep used"
        )
    entry = manifest.entry_for(args.run_id)
    if entry is None:
        raise SweepConfigError(
            f"run {args.run_id} has no entry in this sweep's manifest; pass a run_id from "
            "`gmat-sweep show`"
        )
    sys.stdout.write(replay_text(Path(script), entry.overrides))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from gmat_sweep.api import sweep

    _check_new_sweep(args)
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
            storage_options=args.storage_options,
            run_options=_run_options(args),
            progress=_progress(args),
            overwrite=args.overwrite,
        )
        if not args.quiet:
            frame = result.to_pandas()
            last = frame.groupby(level="run_id").tail(1).reset_index()
            table = last[["run_id", "Sat.SMA", "Sat.INC", "Sat.Earth.SMA", "Sat.Earth.ECC"]]
            print("\nfinal osculating SMA (km) and ECC of each run:")
            print(table.rename(columns={"Sat.Earth.SMA": "final SMA", "Sat.Earth.ECC":
                  "final ECC"}).to_string(index=False))  # fmt: skip
            print()
    code = _report(result, args)
    if not args.quiet:
        print(f"next: gmat-sweep show {result.output_dir}\n"
              f"      gmat-sweep export {result.output_dir} --to results.csv")  # fmt: skip
    return code


# -- helpers -----------------------------------------------------------------


def _pool(args: argparse.Namespace) -> Any:
    from gmat_sweep.backends import make_backend

    if args.cluster or args.jobs is not None or args.adapt:
        return _cluster_pool(args)
    if args.scheduler:
        return make_backend(args.scheduler)
    return make_backend(args.backend, None if args.workers == -1 else args.workers)


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


def _storage_options(texts: Sequence[str]) -> dict[str, Any]:
    """``--storage-option KEY=VALUE`` entries as fsspec options: dotted keys nest."""
    options: dict[str, Any] = {}
    for text in texts:
        key, equals, raw = text.partition("=")
        parts = key.strip().split(".")
        if not equals or not all(parts):
            raise SweepConfigError(
                f"--storage-option {_redacted(text)}: write KEY=VALUE, e.g. --storage-option "
                "client_kwargs.endpoint_url=http://localhost:9000"
            )
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        target = options
        for part in parts[:-1]:
            nested = target.setdefault(part, {})
            if not isinstance(nested, dict):
                raise SweepConfigError(
                    f"--storage-option {_redacted(text)}: {part} already has a value, so it "
                    f"cannot also hold {parts[-1]}; give {part} either a value or sub-keys"
                )
            target = nested
        target[parts[-1]] = value
    return options


def _redacted(text: str) -> str:
    """A ``--storage-option`` argument for a message: its key only, as values can be secrets."""
    key, equals, _ = text.partition("=")
    return repr(f"{key}=***" if equals else "***")


def _progress(args: argparse.Namespace) -> bool:
    return not (args.no_progress or args.quiet)


def _report(result: Any, args: argparse.Namespace) -> int:
    failed = result.manifest.find_failed()
    if not args.quiet:
        print(result)
        if result.seed is not None:
            print(f"  seed: {result.seed} (pass --seed {result.seed} to draw the same runs again)")
    if failed:
        print(f"gmat-sweep: {len(failed)} of {result.manifest.run_count} runs failed; "
              f"inspect them with `gmat-sweep show {result.output_dir}` (each run's GMAT log is "
              f"run-NNNNNN/gmat.log), re-run them with `gmat-sweep resume {result.output_dir}`",
              file=sys.stderr)  # fmt: skip
        return 1
    return 0


def _check_new_sweep(args: argparse.Namespace) -> None:
    """Fail fast, before any worker starts, on a missing mission or an occupied ``--out``."""
    from gmat_sweep.sweep import MANIFEST_NAME

    mission: Path | None = getattr(args, "mission", None)
    if mission is not None and not mission.is_file():
        raise SweepConfigError(
            f"mission {str(mission)!r} is not a file; pass the path of a GMAT .script"
        )
    if args.out and not args.overwrite:
        root = _sweep_root(args.out)
        if storage.exists(storage.join(root, MANIFEST_NAME), args.storage_options):
            raise SweepConfigError(
                f"--out {args.out} already holds a sweep ({MANIFEST_NAME} exists); continue it "
                f"with `gmat-sweep resume {args.out}`, look at it with `gmat-sweep show "
                f"{args.out}`, choose another --out, or add --overwrite to replace it"
            )


def _sweep_root(text: str) -> PathLike:
    return text.rstrip("/") if is_url(text) else Path(text.removeprefix("file://"))


def _manifest_location(root: PathLike) -> PathLike:
    from gmat_sweep.sweep import MANIFEST_NAME

    return storage.join(root, MANIFEST_NAME)


def _load_manifest(root: PathLike, storage_options: Mapping[str, Any]) -> Any:
    from gmat_sweep.manifest import Manifest

    location = _manifest_location(root)
    if not storage.exists(location, storage_options):
        raise SweepConfigError(
            f"{root} is not a sweep directory: it has no {Path(str(location)).name} (every "
            "sweep writes one at its root); pass the --out of a gmat-sweep run"
        )
    return Manifest.load(location, storage_options=storage_options)


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
    path = path.strip()
    if not sep or not path or not values.strip():
        raise SweepConfigError(
            f"--param {text!r}: write PATH=VALUES, e.g. Sat.SMA=7000:7400:5 or Sat.INC=28.5,51.6"
        )
    if ":" in values:
        parts = values.split(":")
        try:
            if len(parts) != 3:
                raise ValueError
            start, stop, count = float(parts[0]), float(parts[1]), int(parts[2])
        except ValueError:
            raise SweepConfigError(
                f"--param {text!r}: a range is START:STOP:COUNT (numbers, COUNT a whole number), "
                "e.g. Sat.SMA=7000:7400:5 for 7000, 7100, ..., 7400"
            ) from None
        if count < 1:
            raise SweepConfigError(f"--param {text!r}: COUNT must be at least 1")
        if count == 1:
            return path, [start]
        step = (stop - start) / (count - 1)
        return path, [start + i * step for i in range(count - 1)] + [stop]
    items = values.split(",")
    if any(not item.strip() for item in items):
        raise SweepConfigError(
            f"--param {text!r}: empty value in the list; write comma-separated values such as "
            "Sat.INC=28.5,51.6,98"
        )
    return path, [_value(item) for item in items]


_DIST = re.compile(r"^\s*(?P<path>[^=]+?)\s*=\s*(?P<name>[A-Za-z_]+)\s*\((?P<args>[^)]*)\)\s*$")


def _parse_perturb(text: str) -> tuple[ParamName, DistSpec]:
    """``Sat.SMA=normal(7000,5)`` -> ``("Sat.SMA", ("normal", 7000.0, 5.0))``."""
    match = _DIST.match(text)
    if match is None:
        raise SweepConfigError(
            f"--perturb {text!r}: write PATH=DIST(ARGS), e.g. 'Sat.SMA=normal(7000,5)', "
            "'Sat.Cd=uniform(2.0,2.4)' or 'Sat.DryMass=lognormal(6.2,0.1)'"
        )
    try:
        numbers = tuple(float(a) for a in match["args"].split(",") if a.strip())
    except ValueError:
        raise SweepConfigError(
            f"--perturb {text!r}: distribution arguments must be numbers, e.g. normal(7000,5)"
        ) from None
    spec: DistSpec = (match["name"], *numbers)
    return match["path"], spec


def _read_spec_file(path: Path) -> tuple[dict[str, list[Any]] | None, list[dict[str, Any]] | None]:
    """Read ``--spec``: ``{"grid": {path: [values]}}`` or ``{"samples": [{path: value}]}``.

    In TOML an unquoted dotted key (``Sat.SMA = [...]`` under ``[grid]``) is a
    nested table; it is read back as the field path ``Sat.SMA``.
    """
    if path.suffix not in (".toml", ".json"):
        raise SweepConfigError(f"--spec {path}: use a .toml or .json file")
    if not path.is_file():
        raise SweepConfigError(f"--spec {path}: no such file")
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise SweepConfigError(f"--spec {path}: not valid {path.suffix[1:]}: {exc}") from None
    if not isinstance(data, dict) or len({"grid", "samples"} & set(data)) != 1:
        raise SweepConfigError(
            f"--spec {path}: expected either a 'grid' table (field path -> list of values) or a "
            "'samples' list of rows (field path -> value), e.g. [grid] \"Sat.SMA\" = [7000, 7100]"
        )
    if "grid" in data:
        grid = data["grid"]
        if not isinstance(grid, dict):
            raise SweepConfigError(f"--spec {path}: 'grid' must be a table of field paths")
        flat = _flatten(grid)
        for field, values in flat.items():
            if not isinstance(values, list):
                raise SweepConfigError(
                    f"--spec {path}: grid[{field!r}] = {values!r}: give a list of values"
                )
        return flat, None
    samples = data["samples"]
    if not isinstance(samples, list) or not all(isinstance(row, dict) for row in samples):
        raise SweepConfigError(
            f"--spec {path}: 'samples' must be a list of rows (tables of field path -> value)"
        )
    return None, [_flatten(row) for row in samples]


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _summary(
    manifest: Any, root: PathLike, attempts: int, storage_options: Mapping[str, Any]
) -> str:
    entries = manifest.entries
    status = Counter(str(e.status) for e in entries)
    missing = manifest.find_missing(range(manifest.run_count))
    lines = [
        f"sweep in {root}: {manifest.run_count} runs — ok {status['ok']}, failed "
        f"{status['failed']}, missing {len(missing)} ({attempts} attempts recorded)",
        f"parameters: {_describe_parameters(manifest.parameter_spec)}",
        f"engine: {manifest.gmat_install_version}; gmat_sweep {manifest.gmat_sweep_version}",
    ]
    if manifest.sweep_seed is not None:
        lines.append(f"seed: {manifest.sweep_seed}")
    if entries:
        starts = min(e.started_at for e in entries)
        ends = max(e.ended_at for e in entries)
        durations = sorted(e.duration_s for e in entries)
        p50, p90, p99 = _percentiles(durations, (50, 90, 99))
        lines.append(
            f"wall {(ends - starts).total_seconds():.1f} s; per run min {durations[0]:.3f} s, "
            f"p50 {p50:.3f} s, p90 {p90:.3f} s, p99 {p99:.3f} s, max {durations[-1]:.3f} s"
        )
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
        lines.append(f"missing ({len(missing)}): run_ids {shown}")
    failures: dict[str, list[Any]] = defaultdict(list)
    for entry in entries:
        if str(entry.status) == "failed":
            first = (entry.stderr or "").strip().splitlines()
            failures[first[0] if first else "(no error text recorded)"].append(entry)
    for first_line, failed in failures.items():
        ids = [e.run_id for e in failed]
        shown = ", ".join(map(str, ids[:10])) + (" ..." if len(ids) > 10 else "")
        lines.append(f"failed ({len(ids)}): {first_line}")
        lines.append(f"    run_ids {shown}")
        if failed[0].log_path is not None:
            log = locate(root, failed[0].log_path, ids[0])
            lines.append(f"    log of run {ids[0]}: {log}")
    outputs: Counter[str] = Counter()
    rows: Counter[str] = Counter()
    for entry in entries:
        for key, rel in entry.output_paths.items():
            outputs[key] += 1
            rows[key] += _rows(locate(root, rel, entry.run_id), storage_options)
    for key in sorted(outputs):
        lines.append(f"output {key}: {outputs[key]} runs, {rows[key]} rows")
    return "\n".join(lines)


def _describe_parameters(spec: Mapping[str, Any]) -> str:
    kind = spec.get("_kind", "grid")
    if kind == "grid":
        grid = spec.get("grid", spec)
        axes = [f"{k} ({len(v)})" for k, v in grid.items() if not k.startswith("_")]
        return "grid " + (" x ".join(axes) if axes else "(no fields)")
    if kind == "samples":
        return f"{len(spec.get('rows', []))} explicit sample rows"
    fields = ", ".join(
        f"{field} ~ {d.get('dist', '?')}{tuple(d.get('params', ()))}"
        if isinstance(d, Mapping)
        else str(field)
        for field, d in dict(spec.get("perturb", {})).items()
    )
    return f"{kind.replace('_', ' ')}, n={spec.get('n')}: {fields}"


def _percentiles(ordered: list[float], points: Sequence[int]) -> list[float]:
    if len(ordered) == 1:
        return [ordered[0]] * len(points)
    cuts = statistics.quantiles(ordered, n=100, method="inclusive")
    return [cuts[p - 1] for p in points]


def _rows(location: PathLike, storage_options: Mapping[str, Any]) -> int:
    import pyarrow.parquet as pq

    try:
        if is_url(location):
            fs, path = storage.filesystem(location, storage_options)
            with fs.open(path, "rb") as handle:
                return int(pq.ParquetFile(handle).metadata.num_rows)
        return int(pq.ParquetFile(location).metadata.num_rows)
    except OSError:
        return 0
