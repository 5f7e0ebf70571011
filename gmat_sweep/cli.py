# PYTHON_ARGCOMPLETE_OK  (argcomplete: this command answers shell completion requests)
"""The ``gmat-sweep`` command (also ``python -m gmat_sweep``).

Results go to stdout; progress, previews, warnings and errors to stderr. With
``--json`` stdout holds exactly one JSON object, printed at the end. Errors are
one line, never a traceback. The exit codes are listed in ``_EXIT_CODES``
(every ``--help`` prints them): 2 for a usage or configuration error
(:class:`~gmat_sweep.errors.SweepConfigError`), 3 when the engine, backend,
storage (``OSError``) or a held or corrupt sweep stops the command, 70 for
any other exception: a bug, whose traceback is saved to a crash report (printed
instead with ``GMAT_SWEEP_DEBUG=1``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import math
import os
import re
import shlex
import signal
import statistics
import sys
import threading
import time
import tomllib
import traceback
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, NoReturn

from gmat_sweep.backends import KNOWN_BACKENDS
from gmat_sweep.backends.jobqueue import CLUSTER_KINDS
from gmat_sweep.errors import (
    ArgumentError,
    ArgumentWarning,
    GmatSweepError,
    OutputNameError,
    SweepConfigError,
)
from gmat_sweep.plan import CLI_DISTRIBUTIONS, DISTRIBUTION_EXAMPLES
from gmat_sweep.spec import PathLike, as_location

if TYPE_CHECKING:
    from gmat_sweep.distributions import DistSpec, ParamName

_EXAMPLES = {
    "run": [
        "gmat-sweep run mission.script --param Sat.SMA=7000:7400:5 --param Sat.INC=28.5,51.6,98 "
        "--out study",
        "gmat-sweep run mission.script --spec study.toml --out study   "
        '# study.toml: [grid] "Sat.SMA" = [7000, 7100]',
        "gmat-sweep run mission.script --param Sat.SMA=7000:7400:5 --dry-run",
    ],
    "monte-carlo": [
        "gmat-sweep monte-carlo mission.script -n 200 --perturb 'Sat.SMA=normal(7000,5)' "
        "--perturb 'Sat.Cd=uniform(2.0,2.4)' --seed 42 --out mc",
        "gmat-sweep monte-carlo mission.script -n 100 --perturb 'Sat.Cd=uniform(2.0,2.4)' "
        "--until Sat.Earth.SMA:0.05 --max-n 2000 --out adaptive",
    ],
    "lhs": [
        "gmat-sweep lhs mission.script -n 50 --perturb 'Sat.SMA=normal(7000,5)' "
        "--perturb 'Sat.INC=uniform(28,52)' --seed 7 --out lhs",
    ],
    "sobol": [
        "gmat-sweep sobol mission.script --bounds Sat.Cd=1.8:2.6 --bounds Sat.DryMass=500:1000 "
        "-n 256 --seed 1 --out sobol",
    ],
    "morris": [
        "gmat-sweep morris mission.script --bounds Sat.Cd=1.8:2.6 --bounds Sat.DryMass=500:1000 "
        "--trajectories 20 --out morris",
    ],
    "resume": [
        "gmat-sweep resume study",
        "gmat-sweep resume study --only failed --timeout 600 --retries 2",
        "gmat-sweep resume study --allow-script-drift",
    ],
    "extend": ["gmat-sweep extend mc -n 100"],
    "show": ["gmat-sweep show study", "gmat-sweep show study --json"],
    "export": [
        "gmat-sweep export study --to results.parquet",
        "gmat-sweep export study --to results.csv --name RF",
    ],
    "demo": ["gmat-sweep demo", "gmat-sweep demo --workers 2 --out demo-study"],
    "script": ["gmat-sweep script study 17 > run17.script"],
    "report": ["gmat-sweep report study --to report.html"],
    "sensitivity": ["gmat-sweep sensitivity study Sat.Earth.SMA"],
    "bound": ["gmat-sweep bound mc Sat.Earth.SMA --coverage 0.95 --confidence 0.95"],
    "archive": ["gmat-sweep archive study --to study.zip"],
    "example": [
        "gmat-sweep example",
        "gmat-sweep example hohmann_target --to missions",
    ],
    "fields": [
        "gmat-sweep fields mission.script",
        "gmat-sweep fields mission.script Sat FM --match drag",
        "gmat-sweep fields mission.script --json",
    ],
}

_ALIASES = {"run": ["grid"], "lhs": ["latin-hypercube"]}

_EXIT_CODES = """\
exit codes:
  0    success (show: the sweep is complete and no run failed)
  1    runs failed (show: runs failed or are missing)
  2    usage: a bad argument or sweep configuration, or no command; nothing ran
  3    could not run: GMAT engine, backend, storage, corrupt manifest or results
       file, or a sweep another driver holds
  70   a bug in gmat_sweep: the message names the crash report to send its maintainers
  130  interrupted (Ctrl-C, SIGTERM); resume finishes the rest
  141  stdout's reader stopped reading (`| head`): nothing more is printed"""

_ENVIRONMENT = """\
environment:
  GMAT_ROOT          a GMAT desktop install to run instead of the gmatpy wheel's engine
  GMAT_SWEEP_CACHE   where the embedded engine is built (default
                     $XDG_CACHE_HOME/gmat_sweep or ~/.cache/gmat_sweep)
  GMAT_SWEEP_DEBUG   1: print a bug's traceback (exit 70) instead of saving it to a file
  DASK_*             Dask configuration; --cluster reads its batch-job options from
                     jobqueue.yaml or DASK_JOBQUEUE__<KIND>__<OPTION>
  AWS_*              credentials, endpoint and region for s3:// sweep directories
                     (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL, ...)"""

_LARGE_COUNT = 50
"""A range COUNT above which another reading of START:STOP:COUNT is worth a warning."""


_NAME_OPTION = "--name"
"""The option of every command that reads one report of a sweep whose runs may write several."""

_INTERRUPTED_EXIT = 130
"""Exit code after Ctrl-C or SIGTERM: 128 + SIGINT, as a shell reports."""

_BUG_EXIT = 70
"""Exit code of an exception no command expects, a bug: EX_SOFTWARE of BSD's ``sysexits.h``."""

_DEBUG_VARIABLE = "GMAT_SWEEP_DEBUG"
"""Set to 1, a bug's traceback is printed on stderr instead of saved to a crash report."""

_SIGPIPE_EXIT = 141
"""Exit code when stdout's reader went away (``| head``): 128 + SIGPIPE, as a shell reports."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``gmat-sweep`` command and return its exit code.

    Parameters
    ----------
    argv:
        The arguments after the program name; ``None`` reads ``sys.argv``.

    Returns
    -------
    int
        The exit code (``_EXIT_CODES``). Argument errors found by the parser
        exit with 2 through :class:`SystemExit`, as does ``--help`` with 0.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = _parser()
    _autocomplete(parser)
    args = parser.parse_args(argv)
    if args.version:
        print("\n".join(f"{name} {value}" for name, value in _versions().items()))
        return 0
    if args.command is None:
        sys.stderr.write(
            f"{parser.format_usage()}gmat-sweep: error: give a command: {', '.join(_EXAMPLES)} "
            "(`gmat-sweep --help` lists them, `gmat-sweep COMMAND --help` explains one)\n"
        )
        return 2
    with warnings.catch_warnings(), _sigterm_interrupts():
        warnings.showwarning = _show_warning
        try:
            args.storage_options = _storage_options(getattr(args, "storage_option", []))
            code: int = args.handler(args)
            return code
        except ArgumentError as exc:
            _error(exc.describe(_spelled))
            return 2
        except OutputNameError as exc:
            _error(exc.describe(_NAME_OPTION, lambda name: f"{_NAME_OPTION} {name}"))
            return 2
        except SweepConfigError as exc:
            _error(str(exc))
            return 2
        except BrokenPipeError:
            # Only stdout's reader going away (`| head`) gets here: the hosts' and the
            # stores' pipes are handled where they are used.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # for the final flush
            return _SIGPIPE_EXIT
        except (GmatSweepError, OSError) as exc:
            _error(str(exc))
            return 3
        except _Interrupted as stop:
            return _interrupted(args, stop)
        except KeyboardInterrupt:
            print("gmat-sweep: interrupted", file=sys.stderr)
            return _INTERRUPTED_EXIT
        except Exception as exc:
            pyarrow = sys.modules.get("pyarrow")  # a pyarrow error, checked without importing it
            if pyarrow is not None and isinstance(exc, pyarrow.ArrowException):
                resume = _command("resume", getattr(args, "out_dir", None) or "OUT_DIR")
                _error(
                    f"a results file cannot be read ({type(exc).__name__}: {_one_line(str(exc))}); "
                    f"it may have been damaged or cut short: run `{resume}` to run again the runs "
                    "whose files are unreadable"
                )
                return 3
            store = _object_store_error(exc, args)
            if store is not None:
                _error(store)
                return 3
            return _bug(exc, argv)


def _object_store_error(exc: Exception, args: argparse.Namespace) -> str | None:
    """An object store's client error (:func:`gmat_sweep.storage.client_error`) for people.

    ``None`` for any other exception.
    """
    from gmat_sweep.storage import client_error, client_problem

    if not client_error(exc):
        return None
    where = getattr(args, "out_dir", None) or getattr(args, "out", None) or "the object store"
    return f"cannot reach {where}: {_one_line(client_problem(exc))}"


def _bug(exc: Exception, argv: Sequence[str]) -> int:
    """An exception no command expects: one line naming it and where its traceback was saved.

    The traceback goes to a crash report in the temp directory (the sweep's may
    be remote, read-only, or not chosen yet), with the command line, its
    ``--storage-option`` values hidden. ``GMAT_SWEEP_DEBUG=1`` prints it here
    instead; so does a temp directory that cannot be written.
    """
    trace = "".join(traceback.format_exception(exc))
    what = f"unexpected {type(exc).__name__}: {exc}"
    if os.environ.get(_DEBUG_VARIABLE, "") not in ("", "0"):
        sys.stderr.write(trace)
        return _BUG_EXIT
    try:
        saved = _save_crash_report(trace, argv)
    except OSError as unsaved:
        sys.stderr.write(trace)
        _error(
            f"{what}; a bug in gmat_sweep, whose traceback is above (not saved: {unsaved}); "
            "please report it to the gmat_sweep maintainers with it"
        )
        return _BUG_EXIT
    _error(
        f"{what}; this is a bug in gmat_sweep, not in your command: please report it to the "
        f"gmat_sweep maintainers with the crash report {saved} (the traceback, the command "
        f"and the versions); set {_DEBUG_VARIABLE}=1 to print the traceback here"
    )
    return _BUG_EXIT


def _save_crash_report(trace: str, argv: Sequence[str]) -> str:
    """Write the crash report of :func:`_bug` to a new file in the temp directory; its path."""
    import platform
    import tempfile
    from importlib import metadata

    text = (
        f"command: {_command(*_without_secrets(argv))}\n"
        f"gmat_sweep {metadata.version('gmat_sweep')}, Python {platform.python_version()}, "
        f"{platform.platform()}\n\n{trace}"
    )
    handle, path = tempfile.mkstemp(prefix="gmat-sweep-crash-", suffix=".txt", text=True)
    with os.fdopen(handle, "w", encoding="utf-8") as report:
        report.write(text)
    return path


def _without_secrets(argv: Sequence[str]) -> list[str]:
    """``argv`` with the value of each ``--storage-option`` hidden (:func:`_unvalued`)."""
    option = "--storage-option"
    hidden = []
    for previous, word in zip(["", *argv], argv, strict=False):
        if previous == option:
            word = _unvalued(word)
        elif word.startswith(f"{option}="):
            word = f"{option}={_unvalued(word.partition('=')[2])}"
        hidden.append(word)
    return hidden


def _spelled(argument: str, key: object, value: Any) -> str:
    """An :class:`~gmat_sweep.errors.ArgumentError`'s argument as the command line takes it."""
    if argument == "perturb":
        kind, *numbers = value
        return "--perturb " + shlex.quote(f"{key}={kind}({','.join(map(_number, numbers))})")
    if argument == "bounds":
        low, high = value
        return f"--bounds {key}={_number(low)}:{_number(high)}"
    if argument == "second_order":
        return "--second-order"
    return f"{'-n' if argument == 'n' else '--' + argument} {_number(value)}"


def _error(message: str) -> None:
    print(f"gmat-sweep: error: {_one_line(message)}", file=sys.stderr)


def _warn(message: str) -> None:
    print(f"gmat-sweep: warning: {_one_line(message)}", file=sys.stderr)


def _autocomplete(parser: argparse.ArgumentParser) -> None:
    """Answer a shell's completion request when argcomplete is installed (the ``cli`` extra)."""
    if "_ARGCOMPLETE" not in os.environ:
        return
    try:
        import argcomplete
    except ImportError:
        return
    argcomplete.autocomplete(parser)


def _versions() -> dict[str, str]:
    """The versions ``--version`` prints; the engine's without building the engine cache.

    With ``GMAT_ROOT`` the install is only inspected. Otherwise the embedded
    engine is the gmatpy wheel, named by its version: building its cache can
    take seconds the first time, which ``--version`` should not.
    """
    import platform
    from importlib import metadata

    def version(distribution: str) -> str:
        try:
            return metadata.version(distribution)
        except metadata.PackageNotFoundError:
            return "not installed"

    if os.environ.get("GMAT_ROOT"):
        from gmat_sweep.engine import ensure_engine
        from gmat_sweep.errors import EngineError

        try:
            engine = ensure_engine().version
        except EngineError as exc:
            engine = f"unavailable ({_one_line(str(exc))})"
    else:
        engine = f"gmatpy {version('gmatpy')} (embedded)"
    return {
        "gmat_sweep": version("gmat_sweep"),
        "gmat-run": version("gmat-run"),
        "engine": engine,
        "python": platform.python_version(),
    }


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


def _command(*words: object) -> str:
    """A ``gmat-sweep`` command line to suggest, its words quoted for a shell (spaces in paths)."""
    return " ".join(["gmat-sweep", *(shlex.quote(str(word)) for word in words)])


def _one_line(text: str) -> str:
    return re.sub(r"\s*\n\s*", " ", text.strip())


def _show_warning(message: Warning | str, *_: object, **__: object) -> None:
    _warn(message.describe(_spelled) if isinstance(message, ArgumentWarning) else str(message))


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line, without the usage dump."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _positive_int(text: str) -> int:
    if not re.fullmatch(r"\s*\d+\s*", text) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return int(text)


def _whole(text: str) -> int:
    if not re.fullmatch(r"\s*\d+\s*", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 0")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value > 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds > 0")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="gmat-sweep",
        description="Parallel, crash-safe, reproducible sweeps over NASA GMAT missions.",
        epilog="examples:\n"
        + "\n".join(f"  {line}" for lines in _EXAMPLES.values() for line in lines)
        + f"\n\n{_EXIT_CODES}\n\n{_ENVIRONMENT}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version",
        action="store_true",
        help="print the versions of gmat_sweep, gmat-run, the GMAT engine and Python",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(
        name: str, help_text: str, *, sweep_dir: bool = False, mission: bool = False
    ) -> argparse.ArgumentParser:
        lines = _EXAMPLES[name]
        aliases = _ALIASES.get(name, [])
        parsed = sub.add_parser(
            name,
            aliases=aliases,
            help=help_text + (f" (alias: {', '.join(aliases)})" if aliases else ""),
            description=help_text,
            epilog=("example:\n" if len(lines) == 1 else "examples:\n")
            + "\n".join(f"  {line}" for line in lines)
            + f"\n\n{_EXIT_CODES}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if sweep_dir:
            parsed.add_argument("out_dir", help="the sweep directory or URL (holds manifest.jsonl)")
        if mission:
            parsed.add_argument("mission", type=Path, help="the GMAT .script every run loads")
        return parsed

    run = command("run", "Run a full-factorial grid sweep.", mission=True)
    run.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="PATH=VALUES",
        help="a swept field: START:STOP:COUNT (COUNT evenly spaced values, both ends included) "
        "or a,b,c (text with colons, such as an epoch, in quotes: \"Sat.Epoch='01 Jan 2026 "
        "12:00:00.000'\")",
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
        stochastic = command(name, help_text, mission=True)
        stochastic.add_argument(
            "-n", "--runs", dest="n", type=_positive_int, required=True, help="number of runs"
        )
        stochastic.add_argument(
            "--perturb",
            action="append",
            default=[],
            required=True,
            metavar="PATH=DIST(ARGS)",
            help="draws the value itself (not an offset from the nominal; `gmat-sweep fields` "
            "shows the nominal), in the field's GMAT units: normal(mu,sigma), uniform(lo,hi) or "
            "lognormal(mu,sigma), which is in log space (the log of the value is "
            "normal(mu,sigma): median exp(mu)). A truncated normal is Python-only: "
            "scipy.stats.truncnorm(a,b,loc,scale), bounds a and b in sigma units from loc",
        )
        stochastic.add_argument("--seed", type=int, help="parent seed (default: drawn, recorded)")
        if name == "monte-carlo":
            stochastic.add_argument(
                "--sampler",
                choices=("random", "sobol", "halton"),
                default="random",
                help="independent draws (default), or scrambled quasi-Monte Carlo points",
            )
            _adaptive_arguments(stochastic)
        _execution_options(stochastic)
        stochastic.set_defaults(handler=_cmd_stochastic, kind=name)

    for name, help_text in (
        ("sobol", "Run the Saltelli design for Sobol' sensitivity indices: N * (D + 2) runs for "
                  "D fields (N * (2 D + 2) with --second-order); analyse it with `gmat-sweep "
                  "sensitivity`."),
        ("morris", "Run a Morris elementary-effects screening design: T * (D + 1) runs for D "
                   "fields; analyse it with `gmat-sweep sensitivity`."),
    ):  # fmt: skip
        design = command(name, help_text, mission=True)
        design.add_argument(
            "--bounds", action="append", required=True, metavar="PATH=LO:HI",
            help="a field and its range, uniform on LO..HI (both in the field's GMAT units); "
            "repeat for each field",
        )  # fmt: skip
        if name == "sobol":
            design.add_argument(
                "-n", "--runs", dest="n", type=_positive_int, required=True,
                help="base sample size N, a power of two (64, 128, ...)",
            )  # fmt: skip
            design.add_argument(
                "--second-order", action="store_true", help="also run the points S2 indices need"
            )
        else:
            design.add_argument(
                "--trajectories", type=_positive_int, required=True, metavar="T",
                help="number of trajectories, at least 2 (10 to 20 are usual)",
            )  # fmt: skip
            design.add_argument(
                "--levels", type=_positive_int, default=4, metavar="L",
                help="grid levels per field, an even number (default 4)",
            )  # fmt: skip
        seeds = "scrambling seed" if name == "sobol" else "seed"
        design.add_argument("--seed", type=int, help=f"{seeds} (default: drawn, recorded)")
        _execution_options(design)
        design.set_defaults(handler=_cmd_design)

    resume = command(
        "resume",
        "Re-run the failed and missing runs of a sweep, with the mission, parameters and "
        "per-run timeout its manifest records.",
        sweep_dir=True,
    )
    _existing_sweep_arguments(resume)
    resume.add_argument(
        "--only",
        choices=("all", "failed", "missing"),
        default="all",
        help="which runs to re-run: failed and missing (all, default), only the failed ones, or "
        "only the missing ones (including ok runs whose output files are gone)",
    )
    resume.add_argument(
        "--retries",
        type=_whole,
        metavar="N",
        help="automatic re-runs of a run whose worker died or that timed out (default: 1)",
    )
    _execution_options(resume, out=False, dry_run=False)
    resume.set_defaults(handler=_cmd_continue)

    extend = command(
        "extend",
        "Add runs to a finished Monte Carlo sweep: the first runs' draws are unchanged, so the "
        "result is the sweep you would have got with the larger n from the start.",
        sweep_dir=True,
    )
    _existing_sweep_arguments(extend)
    extend.add_argument(
        "-n", "--runs", dest="n", type=_positive_int, required=True, help="number of runs to add"
    )
    _execution_options(extend, out=False, timeout=False, dry_run=False)
    extend.set_defaults(handler=_cmd_continue)

    sensitivity = command(
        "sensitivity",
        "Which inputs matter for a result column: Sobol or Morris indices for those designs, "
        "the given-data PAWN method for any other sweep.",
        sweep_dir=True,
    )
    sensitivity.add_argument("column", help="the report column, e.g. Sat.Earth.SMA")
    _report_value_arguments(sensitivity, default="last")
    _storage_option_argument(sensitivity)
    sensitivity.set_defaults(handler=_cmd_sensitivity)

    bound = command(
        "bound",
        "A distribution-free (Wilks order-statistic) tolerance bound on a result column.",
        sweep_dir=True,
    )
    bound.add_argument("column", help="the report column, e.g. Sat.Earth.SMA")
    bound.add_argument("--coverage", type=float, default=0.95, help="default 0.95")
    bound.add_argument("--confidence", type=float, default=0.95, help="default 0.95")
    bound.add_argument("--sided", choices=("upper", "lower", "two"), default="upper")
    bound.add_argument("--order", type=int, default=1, help="order statistic (default 1)")
    _report_value_arguments(bound, default="last")
    _storage_option_argument(bound)
    bound.set_defaults(handler=_cmd_bound)

    show = command(
        "show",
        "Summarise a sweep: runs ok/failed/missing, timing, each distinct failure, outputs, "
        "the SHA-256 of each file the mission reads. Exits 1 when runs failed or are missing.",
        sweep_dir=True,
    )
    show.add_argument(
        "--json", action="store_true", help="print the summary as one JSON object on stdout"
    )
    _storage_option_argument(show)
    show.set_defaults(handler=_cmd_show)

    export = command(
        "export",
        "Write a sweep's report, every run in one (run_id, time)-indexed table, to one file.",
        sweep_dir=True,
    )
    _writes_file(export, "results.parquet or results.csv", name=True)
    export.add_argument(
        "--kind",
        choices=("report", "ephemeris", "contact", "solver"),
        default="report",
        help="which kind of output: a ReportFile (default), an EphemerisFile, a "
        "ContactLocator or a Solver's iteration log (Target/Optimize); --name picks one when "
        "runs wrote several",
    )
    export.set_defaults(handler=_cmd_export)

    demo = command(
        "demo", "Run a 20-run sweep of a LEO mission bundled with gmat_sweep and print the results."
    )
    _execution_options(demo, dry_run=False)
    demo.set_defaults(handler=_cmd_demo)

    script = command(
        "script",
        "Print one run as a standalone GMAT script, its overrides written into the text "
        "(load it in GMAT or the GUI to replay the run).",
        sweep_dir=True,
    )
    script.add_argument("run_id", type=int, help="the run to print")
    script.add_argument(
        "--script", type=Path, help="the mission script (default: the path the manifest records)"
    )
    _storage_option_argument(script)
    script.set_defaults(handler=_cmd_script)

    report = command(
        "report",
        "Write one self-contained HTML report of a sweep (summary, provenance, failures, "
        "timing, coverage, outcome plots), byte-identical when written twice.",
        sweep_dir=True,
    )
    _writes_file(report, "the .html file to write", name=True)
    report.set_defaults(handler=_cmd_write)

    archive = command(
        "archive",
        "Write a sweep, its mission and a rerun recipe to one deterministic zip.",
        sweep_dir=True,
    )
    _writes_file(archive, "the .zip file to write", name=False)
    archive.add_argument(
        "--script", type=Path, help="the mission, if it moved since the sweep (default: recorded)"
    )
    archive.set_defaults(handler=_cmd_write)

    listing = command(
        "fields",
        "List the fields of a mission's resources that a sweep can set, with their nominal "
        "values and how an override of each is applied (live, load-time or refused).",
    )
    listing.add_argument("mission", type=Path, help="the GMAT .script")
    listing.add_argument(
        "resource", nargs="*", help="only the fields of these resources (default: every resource)"
    )
    listing.add_argument(
        "--match", metavar="TEXT", help="only field paths containing TEXT (any case)"
    )
    listing.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object on stdout: the mission and a list of fields (resource, "
        "resource_type, path, field_type, value, override)",
    )
    listing.set_defaults(handler=_cmd_fields)

    example = command(
        "example",
        "List the example missions bundled with gmat_sweep, or copy one out to edit and sweep.",
    )
    example.add_argument("name", nargs="?", help="the mission to copy (default: list them)")
    example.add_argument(
        "--to",
        type=Path,
        default=Path(),
        metavar="DIR",
        help="directory to copy it into, created if need be (default: the current directory)",
    )
    example.add_argument("--overwrite", action="store_true", help="replace a file of that name")
    example.set_defaults(handler=_cmd_example)
    return parser


def _adaptive_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "adaptive stopping",
        "run -n runs, then batches, until the confidence interval of a statistic of one report "
        "column (each run's last row, or --reduce) is narrow enough, or --max-n runs are made",
    )
    group.add_argument(
        "--until",
        metavar="COLUMN:HALF_WIDTH",
        help="stop once the interval's half-width is below HALF_WIDTH (in the column's unit), "
        "e.g. Sat.Earth.SMA:0.05",
    )
    group.add_argument(
        "--stat", help="the statistic: mean (default), std, or a quantile such as q95"
    )
    group.add_argument(
        "--confidence", type=float, help="confidence level of the interval (default 0.95)"
    )
    group.add_argument(
        "--batch", type=_positive_int, metavar="B", help="runs per later batch (default: -n)"
    )
    group.add_argument(
        "--max-n", type=_positive_int, metavar="M", help="the most runs to make (required)"
    )
    _report_value_arguments(group, default=None)


def _report_value_arguments(parser: argparse._ActionsContainer, *, default: str | None) -> None:
    """``--name`` and ``--reduce``: which report a column is read from, and one value per run."""
    parser.add_argument(_NAME_OPTION, help="which report (needed when runs write several)")
    parser.add_argument(
        "--reduce",
        choices=("last", "first", "min", "max", "mean"),
        default=default,
        help="how each run's rows become one value (default: its last row)",
    )


def _writes_file(parser: argparse.ArgumentParser, to_help: str, *, name: bool) -> None:
    """``--to``, ``--name`` (with ``name``), ``-q`` and ``--storage-option`` of a file writer."""
    parser.add_argument("--to", required=True, type=Path, help=to_help)
    if name:
        parser.add_argument(_NAME_OPTION, help="which report (needed when runs wrote several)")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only errors")
    _storage_option_argument(parser)


def _existing_sweep_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--script", type=Path, help="the mission, if it moved since the sweep (default: recorded)"
    )
    parser.add_argument(
        "--allow-script-drift",
        action="store_true",
        help=(
            "go on although the mission (or a file it #Includes, or a file it reads such as "
            "a gravity model) changed since the sweep"
        ),
    )
    parser.add_argument(
        "--allow-version-drift",
        action="store_true",
        help="go on although the GMAT engine, numpy or scipy changed version since the sweep, "
        "or the rebuilt runs' overrides differ from the recorded ones",
    )


def _execution_options(
    parser: argparse.ArgumentParser,
    *,
    out: bool = True,
    timeout: bool = True,
    dry_run: bool = True,
) -> None:
    group = parser.add_argument_group("execution")
    group.add_argument(
        "--backend",
        choices=tuple(KNOWN_BACKENDS),
        help="executor (default: local)",
    )
    group.add_argument(
        "--workers", type=_positive_int, metavar="N", help="parallel runs (default: cores)"
    )
    group.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="an existing Dask scheduler (its workers run the sweep: --backend and --workers have "
        "no effect)",
    )
    group.add_argument(
        "--cluster",
        metavar="KIND",
        choices=tuple(CLUSTER_KINDS),
        help=f"workers as batch jobs via dask-jobqueue: {', '.join(CLUSTER_KINDS)} (job options "
        "from Dask's jobqueue.yaml); needs --jobs or --adapt",
    )
    group.add_argument("--jobs", type=_positive_int, metavar="N", help="with --cluster: N jobs")
    group.add_argument(
        "--adapt", metavar="MIN:MAX", help="with --cluster: scale between MIN and MAX workers"
    )
    if out:
        group.add_argument("--out", help="sweep directory or fsspec URL (default: new dir here)")
        group.add_argument("--overwrite", action="store_true", help="replace a sweep in --out")
    if timeout:
        group.add_argument(
            "--timeout", type=_seconds, metavar="S", help="stop a run after S seconds"
        )
    if dry_run:
        group.add_argument(
            "--dry-run",
            action="store_true",
            help="check the mission, fields and options on a GMAT host, print the runs that "
            "would run, and stop: nothing is run or written",
        )
    group.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object on stdout at the end (counts, failures, seed, versions, "
        "output directory, wall time); everything else goes to stderr",
    )
    group.add_argument("--no-progress", action="store_true", help="no progress bar")
    group.add_argument("-q", "--quiet", action="store_true", help="print only errors")
    group.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="print the backend's details and, for Dask, the dashboard link",
    )
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
        grid = {**(grid or {}), **_once("--param", map(_parse_param, args.param))}
    if grid is None and samples is None:
        raise SweepConfigError("give at least one --param PATH=VALUES or a --spec file")
    if grid is not None:
        axes = {path: _describe_axis(grid[path]) for path in sorted(grid)}
    else:
        assert samples is not None
        fields = sorted({field for row in samples for field in row})
        axes = {field: "one value per sample row" for field in fields}
    return _plan_and_run(args, axes, sweep, grid, samples=samples)


def _cmd_stochastic(args: argparse.Namespace) -> int:
    from gmat_sweep.api import latin_hypercube, monte_carlo

    perturb = _once("--perturb", map(_parse_perturb, args.perturb))
    axes = {
        str(path): f"{spec[0]}({', '.join(_number(a) for a in spec[1:])})"
        for path, spec in sorted(perturb.items())
        if isinstance(spec, tuple)
    }
    if args.kind == "lhs":
        return _plan_and_run(args, axes, latin_hypercube, n=args.n, perturb=perturb, seed=args.seed)
    until = _until(args)
    adaptive = {} if until is None else {"until": until, "batch": args.batch, "max_n": args.max_n}
    note = None
    if until is not None:
        note = (
            f"first batch; then {args.batch or args.n} at a time until "
            f"{_rule_text(until)}, at most {args.max_n} runs"
        )
    return _plan_and_run(
        args, axes, monte_carlo, n=args.n, perturb=perturb, seed=args.seed,
        sampler=args.sampler, note=note, **adaptive,
    )  # fmt: skip


def _cmd_design(args: argparse.Namespace) -> int:
    """``sobol`` and ``morris``: a sensitivity design over ``--bounds``."""
    from gmat_sweep.api import morris, sobol

    bounds = _once("--bounds", map(_parse_bounds, args.bounds))
    axes = {
        path: f"uniform on {_number(low)} … {_number(high)}"
        for path, (low, high) in sorted(bounds.items())
    }
    if args.command == "sobol":
        return _plan_and_run(
            args, axes, sobol, bounds, args.n, seed=args.seed, second_order=args.second_order
        )
    return _plan_and_run(
        args, axes, morris, bounds, args.trajectories, levels=args.levels, seed=args.seed
    )


def _once[K, V](flag: str, parsed: Iterable[tuple[K, V]]) -> dict[K, V]:
    """``flag``'s parsed ``(field path, value)`` entries; a field given twice is refused."""
    found: dict[K, V] = {}
    for path, value in parsed:
        if path in found:
            raise SweepConfigError(f"{flag} {path} is given twice; give each field once")
        found[path] = value
    return found


def _plan_and_run(
    args: argparse.Namespace,
    axes: Mapping[str, str],
    entry: Any,
    *design: Any,
    note: str | None = None,
    **options: Any,
) -> int:
    """The run commands' shared path: validate, plan (:func:`_planned`), run; or ``--dry-run``."""
    _check_new_sweep(args)
    with _pool(args) as pool:
        planned = _planned(args, pool, entry, args.mission, *design, **options)
        _preview(args, axes, len(planned.runs), note)
        if args.dry_run:
            return _dry_run_report(planned, args, axes)
        started = time.monotonic()
        result = _run_new(args, planned)
    return _report(result, args, time.monotonic() - started)


def _cmd_continue(args: argparse.Namespace) -> int:
    """``resume`` and ``extend``: the sweep in ``out_dir``, rebuilt from its manifest, goes on."""
    from gmat_sweep.sweep import Sweep

    root = as_location(args.out_dir)
    manifest = _load_manifest(root, args.storage_options)
    script = args.script or _recorded_script(manifest)
    retries = getattr(args, "retries", None)
    started = time.monotonic()
    with _pool(args) as pool:
        rebuilt = Sweep.from_manifest(
            _manifest_location(root),
            script,
            backend=pool,
            allow_script_drift=args.allow_script_drift,
            allow_version_drift=args.allow_version_drift,
            progress=_progress(args),
            storage_options=args.storage_options,
            **({} if retries is None else {"retries": retries}),
        )
        if args.command == "resume":
            result = _run(root, lambda: rebuilt.resume(only=args.only, timeout_s=args.timeout))
        else:
            result = _run(root, lambda: rebuilt.extend(args.n))
    return _report(result, args, time.monotonic() - started)


class _Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped a sweep while its runs ran: where it is, how long it ran."""

    def __init__(self, root: PathLike, wall_s: float) -> None:
        super().__init__(str(root))
        self.root = root
        self.wall_s = wall_s


def _planned(
    args: argparse.Namespace, pool: Any, entry: Any, mission: Path, *design: Any, **options: Any
) -> Any:
    """``entry(mission, *design, **options)``, not run yet, with the execution options.

    ``entry`` is an API entry point (:func:`gmat_sweep.sweep` and its
    siblings); ``--out`` defaults to the new directory
    :func:`~gmat_sweep.api.default_out_dir` names for ``mission``.
    """
    from gmat_sweep.api import default_out_dir

    return entry(
        mission,
        *design,
        backend=pool,
        out=args.out if args.out is not None else default_out_dir(mission),
        storage_options=args.storage_options,
        run_options={} if args.timeout is None else {"timeout_s": args.timeout},
        progress=_progress(args),
        overwrite=args.overwrite,
        compute=False,
        **options,
    )


def _run_new(args: argparse.Namespace, planned: Any) -> Any:
    """Run a planned new sweep; without ``--out`` (and ``--quiet``), first say where it writes."""
    if args.out is None and not args.quiet:
        print(f"gmat-sweep: writing results to {planned.output_dir}", file=sys.stderr)
    return _run(planned.output_dir, planned.compute)


def _run(root: PathLike, go: Callable[[], Any]) -> Any:
    """``go()``, which runs the sweep in ``root``; an interrupt becomes :class:`_Interrupted`."""
    started = time.monotonic()
    try:
        return go()
    except KeyboardInterrupt:
        raise _Interrupted(root, time.monotonic() - started) from None


def _interrupted(args: argparse.Namespace, stop: _Interrupted) -> int:
    """Say where the interrupted sweep is and how to finish it; with ``--json``, what it holds."""
    from gmat_sweep import storage

    root, options = stop.root, args.storage_options
    if not storage.exists(_manifest_location(root), options):
        print("gmat-sweep: interrupted before the sweep recorded anything", file=sys.stderr)
        return _INTERRUPTED_EXIT
    print("gmat-sweep: interrupted; finished runs are in the manifest — resume with "
          f"`{_command('resume', root)}`", file=sys.stderr)  # fmt: skip
    if args.json:
        facts = _facts(_load_manifest(root, options), root, options, rows=False)
        _print_json(facts, stop.wall_s, _INTERRUPTED_EXIT)
    return _INTERRUPTED_EXIT


def _cmd_show(args: argparse.Namespace) -> int:
    from gmat_sweep.manifest import read_all_entries

    root = as_location(args.out_dir)
    options = args.storage_options
    manifest = _load_manifest(root, options)
    attempts = len(read_all_entries(_manifest_location(root), storage_options=options))
    facts = _facts(manifest, root, options, rows=True)
    complete = not facts["failed"] and not facts["missing"]
    if args.json:
        print(json.dumps({**facts, "attempts": attempts}))
    else:
        print(_summary(facts, attempts))
    return 0 if complete else 1


def _cmd_export(args: argparse.Namespace) -> int:
    target: Path = args.to
    if target.suffix not in (".parquet", ".csv"):
        raise SweepConfigError(f"--to {target}: use a file name ending in .parquet or .csv")
    if not target.parent.is_dir():
        raise SweepConfigError(f"--to {target}: directory {target.parent} does not exist")
    study = _open_sweep(args)
    _check_export_kind(study.manifest, args.kind, args.name)
    frame = study.to_pandas(args.name, kind=args.kind)
    if target.suffix == ".parquet":
        frame.to_parquet(target)
    else:
        frame.to_csv(target)
    if not args.quiet:
        runs = frame.index.get_level_values("run_id").nunique()
        print(f"wrote {len(frame)} rows of {runs} runs to {target}")
    return 0


def _check_export_kind(manifest: Any, kind: str, name: str | None) -> None:
    """Refuse to export a kind of output the runs did not write, naming the ``--kind`` they did.

    An ok run without an output of ``kind`` is a row of missing values: a
    file of them, exported without a word, is no use.
    """
    from gmat_sweep.aggregate import produced_outputs

    written = {prefix: list(names) for prefix, names in produced_outputs(manifest.entries).items()}
    others = {prefix: names for prefix, names in written.items() if prefix != kind and names}
    holder = next((prefix for prefix, names in others.items() if name in names), None)
    if name not in written[kind] and holder is not None:
        raise SweepConfigError(
            f"--name {name} is an output of kind {holder}, not {kind}: add --kind {holder}"
        )
    if not written[kind] and others:
        listed = "; ".join(
            f"{prefix} {', '.join(map(repr, names))} (--kind {prefix})"
            for prefix, names in others.items()
        )
        raise SweepConfigError(
            f"the sweep's runs wrote no {kind} output to export; they wrote {listed}: pass "
            "that --kind"
        )


def _cmd_sensitivity(args: argparse.Namespace) -> int:
    study = _open_sweep(args)
    table = study.sensitivity(args.column, name=args.name, reduce=args.reduce)
    attrs = table.attrs
    used, failed = attrs.get("n_used", "?"), attrs.get("n_failed", 0)
    print(f"{attrs.get('method', '?')} sensitivity of {args.column} ({args.reduce} row of each "
          f"run): {used} runs used, {failed} without a value")  # fmt: skip
    print(table.to_string())
    return 0


def _cmd_bound(args: argparse.Namespace) -> int:
    study = _open_sweep(args)
    found = study.tolerance_bound(
        args.column,
        coverage=args.coverage,
        confidence=args.confidence,
        sided=args.sided,
        order=args.order,
        name=args.name,
        reduce=args.reduce,
    )
    sides = [
        f"{side} {value!r} (order statistic {rank} of {found.n})"
        for side, value, rank in (
            ("lower", found.lower, found.lower_rank),
            ("upper", found.upper, found.upper_rank),
        )
        if value is not None
    ]
    print(f"{args.column}: {args.coverage:g} coverage at {args.confidence:g} confidence: "
          f"{'; '.join(sides)}; achieved confidence {found.achieved_confidence:.4f}")  # fmt: skip
    return 0


def _cmd_write(args: argparse.Namespace) -> int:
    """``report`` and ``archive``: one file written from the sweep in ``out_dir``."""
    from gmat_sweep.archive import write_archive

    study = _open_sweep(args)
    if args.command == "report":
        written = study.report(args.to, name=args.name)
    else:
        script = args.script or _recorded_script(study.manifest)
        written = write_archive(study, args.to, script=script, storage_options=args.storage_options)
    if not args.quiet:
        print(f"wrote {written}")
    return 0


def _cmd_script(args: argparse.Namespace) -> int:
    from gmat_sweep.plan import script_drift
    from gmat_sweep.sweep import replay_text

    manifest = _load_manifest(as_location(args.out_dir), args.storage_options)
    script = args.script or _recorded_script(manifest)
    drift = script_drift(manifest, script)
    if drift:
        raise SweepConfigError(
            "; ".join(drift) + "; its text would not replay the run: restore the files the "
            "sweep used (or pass an unchanged copy with --script PATH)"
        )
    entry = manifest.entry_for(args.run_id)
    if entry is None:
        raise SweepConfigError(
            f"run {args.run_id} has no entry in this sweep's manifest; pass a run_id from "
            "`gmat-sweep show`"
        )
    sys.stdout.write(replay_text(Path(script), entry.overrides))
    return 0


def _cmd_example(args: argparse.Namespace) -> int:
    from gmat_sweep import examples

    if args.name is None:
        print("\n".join(examples.names()))
        print("copy one out with `gmat-sweep example NAME --to DIR`", file=sys.stderr)
        return 0
    source = examples.path(args.name)
    if args.to.exists() and not args.to.is_dir():
        raise SweepConfigError(
            f"--to {args.to} is a file, not a directory; the example is copied into a "
            "directory: pass a directory (created if need be)"
        )
    target = args.to / source.name
    if target.exists() and not args.overwrite:
        raise SweepConfigError(
            f"{target} already exists; choose another --to, or add --overwrite to replace it"
        )
    args.to.mkdir(parents=True, exist_ok=True)
    target.write_bytes(source.read_bytes())
    print(f"wrote {target}")
    return 0


_OVERRIDE_LEGEND = """\
override: live = written through GMAT's API after the script is loaded; load-time = written into
the script text before it is loaded (GMAT ignores API writes to it); refused = a file GMAT writes,
or a value the mission sequence sets before reading it. Propagator.Type and the fields of the
frame a spacecraft's state is given in are load-time, as a sweep applies them. Only a value can
show the rest: a live write GMAT turns out to drop, or that leaves a spacecraft's state converted
with the old value (a body's Mu), becomes load-time when a sweep checks its values. Values are
what GMAT holds once the script is loaded: orbital elements are read from its Cartesian state, so
their last digits can differ from the script."""

_SHOWN_WIDTH = 40
"""Longest value ``fields`` prints in its table (longer ones are cut with an ellipsis)."""


def _cmd_fields(args: argparse.Namespace) -> int:
    from gmat_sweep.mission import mission_fields

    found = mission_fields(args.mission)
    known = list(dict.fromkeys(field.resource for field in found))
    unknown = [name for name in args.resource if name not in known]
    if unknown:
        raise SweepConfigError(
            f"{args.mission} has no resource {', '.join(map(repr, unknown))} with fields a sweep "
            f"can set; its resources with such fields are {', '.join(known)}"
        )
    if args.resource:
        found = [field for field in found if field.resource in args.resource]
    if args.match:
        found = [field for field in found if args.match.lower() in field.path.lower()]
    if args.json:
        print(json.dumps({"mission": str(args.mission), "fields": [
            {name: getattr(field, name) for name in field.__struct_fields__} for field in found
        ]}))  # fmt: skip
        return 0
    if not found:
        _warn(f"no field of {args.mission} matches; run `{_command('fields', args.mission)}`")
        return 0
    shown = [_shown(field.value) for field in found]
    width = max(len(field.path) for field in found)
    value_width = max(len(text) for text in shown)
    type_width = max(len(field.field_type) for field in found)
    resource = None
    for field, text in zip(found, shown, strict=True):
        if field.resource != resource:
            resource = field.resource
            print(f"{field.resource} ({field.resource_type})")
        print(f"  {field.path:<{width}}  {text:<{value_width}}  "
              f"{field.field_type:<{type_width}}  {field.override}")  # fmt: skip
    print(_OVERRIDE_LEGEND, file=sys.stderr)
    return 0


def _shown(value: Any) -> str:
    """A nominal value as script text (a real to 12 digits), cut to :data:`_SHOWN_WIDTH`."""
    from gmat_sweep.script import script_value

    if isinstance(value, float):
        text = _number(value)
    else:
        try:
            text = script_value(value)
        except SweepConfigError:
            text = str(value)
    return text if len(text) <= _SHOWN_WIDTH else text[: _SHOWN_WIDTH - 1] + "…"


def _cmd_demo(args: argparse.Namespace) -> int:
    from gmat_sweep.api import sweep

    _check_new_sweep(args)
    mission = resources.files("gmat_sweep") / "data" / "leo_basic.script"
    text = _text_stream(args)
    started = time.monotonic()
    with resources.as_file(mission) as script, _pool(args) as pool:
        if not args.quiet:
            print(f"gmat-sweep demo: sweeping {script.name} (one LEO orbit, drag and SRP) over "
                  "5 altitudes x 4 inclinations = 20 real GMAT runs", file=text)  # fmt: skip
        grid = {
            "Sat.SMA": [6678.137, 6778.137, 6878.137, 6978.137, 7078.137],
            "Sat.INC": [28.5, 51.6, 82.0, 97.8],
        }
        planned = _planned(args, pool, sweep, script, grid)
        result = _run_new(args, planned)
        if not args.quiet:
            last = result.final().reset_index()
            table = last[["run_id", "Sat.SMA", "Sat.INC", "Sat.Earth.SMA", "Sat.Earth.ECC"]]
            print("\nfinal osculating SMA (km) and ECC of each run:", file=text)
            print(table.rename(columns={"Sat.Earth.SMA": "final SMA", "Sat.Earth.ECC":
                  "final ECC"}).to_string(index=False), file=text)  # fmt: skip
            print(file=text)
    code = _report(result, args, time.monotonic() - started)
    if not args.quiet:
        print(f"next: {_command('show', result.output_dir)}\n"
              f"      {_command('export', result.output_dir, '--to', 'results.csv')}",
              file=text)  # fmt: skip
    return code


# -- helpers -----------------------------------------------------------------


def _pool(args: argparse.Namespace) -> Any:
    """The pool the command's options describe; ``-v`` prints what it is."""
    from gmat_sweep.backends import make_backend

    external = "--cluster" if args.cluster else "--scheduler" if args.scheduler else None
    ignored = [
        flag
        for flag, value in (("--backend", args.backend), ("--workers", args.workers))
        if value is not None
    ]
    if external and ignored:
        _warn(
            f"{' and '.join(ignored)} {'has' if len(ignored) == 1 else 'have'} no effect with "
            f"{external}: the Dask cluster's workers run the sweep; drop "
            f"{' and '.join(ignored)}, or drop {external} to run here"
        )
    if args.cluster or args.jobs is not None or args.adapt:
        pool = _cluster_pool(args)
    elif args.scheduler:
        pool = make_backend(args.scheduler)
    else:
        name = args.backend or "local"
        # -q: Ray's start-up lines (INFO, and a WARNING about its token) are not errors.
        quiet = {"logging_level": logging.ERROR} if args.quiet and name == "ray" else {}
        pool = make_backend(name, args.workers, **quiet)
    if args.verbose:
        _describe_pool(pool)
    return pool


def _describe_pool(pool: Any) -> None:
    workers = pool.workers
    counted = "workers unknown until they join" if workers is None else f"{workers} worker(s)"
    context = "reused" if pool.reuse_gmat_context else "fresh"
    print(f"gmat-sweep: backend: {pool.name} ({type(pool).__name__}), {counted}, GMAT context "
          f"{context} per run", file=sys.stderr)  # fmt: skip
    link = getattr(getattr(pool, "client", None), "dashboard_link", None)
    if link:
        print(f"gmat-sweep: Dask dashboard: {link}", file=sys.stderr)


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
    if int(high) < max(1, int(low)):
        raise SweepConfigError(
            f"--adapt {args.adapt!r}: MAX must be at least 1 and at least MIN (the cluster "
            "scales between them), e.g. 0:16"
        )
    return jobqueue_pool(args.cluster, minimum=int(low), maximum=int(high))


def _storage_options(texts: Sequence[str]) -> dict[str, Any]:
    """``--storage-option KEY=VALUE`` entries as fsspec options: dotted keys nest."""
    options: dict[str, Any] = {}
    for text in texts:
        key, equals, raw = text.partition("=")
        parts = key.strip().split(".")
        if not equals or not all(parts):
            raise SweepConfigError(
                f"--storage-option {_unvalued(text)!r}: write KEY=VALUE, e.g. --storage-option "
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
                    f"--storage-option {_unvalued(text)!r}: {part} already has a value, so it "
                    f"cannot also hold {parts[-1]}; give {part} either a value or sub-keys"
                )
            target = nested
        target[parts[-1]] = value
    return options


def _unvalued(text: str) -> str:
    """A ``--storage-option`` argument without its value, which can be a secret."""
    key, equals, _ = text.partition("=")
    return f"{key}=***" if equals else "***"


def _progress(args: argparse.Namespace) -> bool:
    return not (args.no_progress or args.quiet)


def _text_stream(args: argparse.Namespace) -> Any:
    """Where human-readable results go: stdout, or stderr when stdout is kept for ``--json``."""
    return sys.stderr if args.json else sys.stdout


def _number(value: Any) -> str:
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:.12g}"
    return str(value)


def _describe_axis(values: Sequence[Any]) -> str:
    """``5 values 7000 … 7400 (step 100)``, or the values themselves when they are few."""
    count = len(values)
    if count == 1:
        return f"1 value {_number(values[0])}"
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    if numeric and count > 2:
        steps = [b - a for a, b in itertools.pairwise(values)]
        if all(math.isclose(s, steps[0], rel_tol=1e-9, abs_tol=1e-12) for s in steps):
            return (
                f"{count} values {_number(values[0])} … {_number(values[-1])} "
                f"(step {_number(float(steps[0]))})"
            )
    if count <= 5:
        return f"{count} values {', '.join(map(_number, values))}"
    return f"{count} values {', '.join(map(_number, values[:3]))}, …, {_number(values[-1])}"


def _preview(
    args: argparse.Namespace, axes: Mapping[str, str], count: int, note: str | None = None
) -> None:
    """One line per swept field and the run count, on stderr, before anything runs."""
    if args.quiet and not args.dry_run:
        return
    for path, text in axes.items():
        print(f"{path}: {text}", file=sys.stderr)
    print(f"{count} run{'s' if count != 1 else ''} of {args.mission}"
          + (f" ({note})" if note else ""), file=sys.stderr)  # fmt: skip


def _dry_run_report(result: Any, args: argparse.Namespace, axes: Mapping[str, str]) -> int:
    """What ``--dry-run`` prints once the sweep is validated: nothing ran, nothing was written."""
    count = len(result.runs)
    if args.json:
        print(
            json.dumps(
                {
                    "dry_run": True,
                    "runs": count,
                    "axes": dict(axes),
                    "seed": result.seed,
                    "output_dir": str(result.output_dir),
                }
            )
        )
    elif not args.quiet:
        print(f"dry run: {count} runs checked; nothing was run or written")
    return 0


def _report(result: Any, args: argparse.Namespace, wall_s: float) -> int:
    """Print the finished sweep (``--json``: one JSON object) and return the exit code."""
    facts = _facts(result.manifest, result.output_dir, args.storage_options, rows=False)
    text = _text_stream(args)
    if not args.quiet:
        print(result, file=text)
        stopped = _stopped_text(result.manifest.parameter_spec.get("stopped"))
        if stopped is not None:
            print(f"  {stopped}", file=text)
        if result.seed is not None:
            print(f"  seed: {result.seed} (pass --seed {result.seed} to draw the same runs "
                  "again)", file=text)  # fmt: skip
    code = 0
    if facts["failed"]:
        print(f"gmat-sweep: {facts['failed']} of {facts['runs']} runs failed; inspect them with "
              f"`{_command('show', result.output_dir)}` (each run's GMAT log is "
              f"run-NNNNNN/gmat.log), re-run them with `{_command('resume', result.output_dir)}`",
              file=sys.stderr)  # fmt: skip
        code = 1
    if facts["not_converged"]:
        print(f"gmat-sweep: {_unconverged_text(facts, result.output_dir)}", file=sys.stderr)
    if args.json:
        _print_json(facts, wall_s, code)
    return code


def _unconverged_text(facts: Mapping[str, Any], root: PathLike) -> str:
    """What :func:`_facts` found on solvers that did not converge, and the command to see them."""
    from gmat_sweep.aggregate import describe_unconverged

    unconverged = facts["not_converged"]
    pick = [] if len(facts["solvers"]) == 1 else ["--name", next(iter(unconverged))]
    export = _command("export", root, "--kind", "solver", *pick, "--to", "solver.csv")
    return (
        f"{describe_unconverged(unconverged, facts['ok'], shown=10)}; see their iterations "
        f"with `{export}`"
    )


def _print_json(facts: Mapping[str, Any], wall_s: float, code: int) -> None:
    """A run command's ``--json`` object: the sweep's facts, its wall time and the exit code."""
    print(json.dumps({**facts, "wall_s": round(wall_s, 3), "exit_code": code}))


def _facts(
    manifest: Any, root: PathLike, storage_options: Mapping[str, Any], *, rows: bool
) -> dict[str, Any]:
    """A sweep's state as plain data: what ``show`` prints and ``--json`` emits.

    ``rows`` (``show``) also counts each output's rows (one Parquet footer
    read per file); an ok run one of whose output files is gone then counts
    as missing (``lost``), as it does for ``resume``, which runs it again.
    """
    from gmat_sweep.aggregate import converged_frame, produced_outputs, unconverged_runs
    from gmat_sweep.containment import locate

    entries = manifest.entries
    counted: dict[int, dict[str, int | None]] = {
        e.run_id: {
            key: _rows(locate(root, rel, e.run_id), storage_options) if rows else 0
            for key, rel in e.output_paths.items()
        }
        for e in entries
    }
    lost = {run_id for run_id, found in counted.items() if None in found.values()}
    status = Counter(str(e.status) for e in entries if e.run_id not in lost)
    missing = sorted({*manifest.find_missing(range(manifest.run_count)), *lost})
    failures: dict[str, list[Any]] = defaultdict(list)
    for entry in entries:
        if str(entry.status) == "failed":
            first = [line for line in (entry.stderr or "").splitlines() if line.strip()]
            failures[first[0].strip() if first else "(no error text recorded)"].append(entry)
    groups = []
    for first_line, failed in failures.items():
        log = failed[0].log_path
        groups.append(
            {
                "error": first_line,
                "run_ids": [e.run_id for e in failed],
                "log": None if log is None else str(locate(root, log, failed[0].run_id)),
            }
        )
    wall_s = None
    if entries:
        spans = max(e.ended_at for e in entries) - min(e.started_at for e in entries)
        wall_s = round(spans.total_seconds(), 3)
    outputs: dict[str, dict[str, int]] = {}
    for run_id, found in counted.items():
        if run_id in lost:
            continue
        for key, row_count in found.items():
            counts = outputs.setdefault(key, {"runs": 0, "rows": 0} if rows else {"runs": 0})
            counts["runs"] += 1
            if rows:
                counts["rows"] += row_count or 0
    return {
        "output_dir": str(root),
        "manifest": str(_manifest_location(root)),
        "runs": manifest.run_count,
        "ok": status["ok"],
        "failed": status["failed"],
        "missing": len(missing),
        "missing_run_ids": missing,
        "lost": len(lost),
        "failures": groups,
        "parameters": _describe_parameters(manifest.parameter_spec),
        "stopped": manifest.parameter_spec.get("stopped"),
        "seed": manifest.sweep_seed,
        "inputs": manifest.script_inputs,
        "mission_changed": manifest.mission_changed,
        "versions": {
            "gmat_sweep": manifest.gmat_sweep_version,
            "gmat-run": manifest.gmat_run_version,
            "engine": manifest.gmat_install_version,
            "python": manifest.python_version,
        },
        "wall_s": wall_s,
        "run_s": _run_times(sorted(e.duration_s for e in entries)),
        "outputs": dict(sorted(outputs.items())),
        "solvers": sorted(produced_outputs(entries)["solver"]),
        # Opens no file unless an ok run recorded a solver log.
        "not_converged": unconverged_runs(
            converged_frame(manifest, root, storage_options=storage_options)
        ),
    }


def _summary(facts: Mapping[str, Any], attempts: int) -> str:
    """``show``'s text: the sweep's :func:`_facts` for people."""
    versions = facts["versions"]
    lines = [
        f"sweep in {facts['output_dir']}: {facts['runs']} runs — ok {facts['ok']}, failed "
        f"{facts['failed']}, missing {facts['missing']} ({attempts} attempts recorded)",
        f"parameters: {facts['parameters']}",
        f"engine: {versions['engine']}; gmat_sweep {versions['gmat_sweep']}",
    ]
    if facts["inputs"] is None:
        lines.append("input files: not recorded (the manifest predates their record)")
    for name, digest in (facts["inputs"] or {}).items():
        lines.append(f"input file {name}: sha256 {digest}")
    for problem in facts["mission_changed"]:
        lines.append(f"WARNING: {problem}; the runs may mix two missions")
    if facts["seed"] is not None:
        lines.append(f"seed: {facts['seed']}")
    stopped = _stopped_text(facts["stopped"])
    if stopped is not None:
        lines.append(stopped)
    run_s = facts["run_s"]
    if run_s is not None:
        lines.append(
            f"wall {facts['wall_s']:.1f} s; per run "
            + ", ".join(f"{point} {seconds:.3f} s" for point, seconds in run_s.items())
        )
    missing = facts["missing_run_ids"]
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
        lost = facts.get("lost", 0)
        gone = (
            f" ({lost} ok run{'s' if lost > 1 else ''} whose output files are gone)" if lost else ""
        )
        lines.append(f"missing ({len(missing)}): run_ids {shown}{gone}")
    for group in facts["failures"]:
        ids = group["run_ids"]
        shown = ", ".join(map(str, ids[:10])) + (" ..." if len(ids) > 10 else "")
        lines.append(f"failed ({len(ids)}): {group['error']}")
        lines.append(f"    run_ids {shown}")
        if group["log"] is not None:
            lines.append(f"    log of run {ids[0]}: {group['log']}")
    if facts["not_converged"]:
        lines.append(_unconverged_text(facts, facts["output_dir"]))
    for key, counts in facts["outputs"].items():
        lines.append(f"output {key}: {counts['runs']} runs, {counts['rows']} rows")
    return "\n".join(lines)


def _check_new_sweep(args: argparse.Namespace) -> None:
    """Fail fast, before any worker starts, on a missing mission or an occupied ``--out``."""
    from gmat_sweep import storage
    from gmat_sweep.mission import checked_script
    from gmat_sweep.sweep import MANIFEST_NAME

    if getattr(args, "mission", None) is not None:
        checked_script(args.mission)
    if args.out and not args.overwrite:
        root = as_location(args.out)
        if storage.exists(storage.join(root, MANIFEST_NAME), args.storage_options):
            raise SweepConfigError(
                f"--out {args.out} already holds a sweep ({MANIFEST_NAME} exists); continue it "
                f"with `{_command('resume', args.out)}`, look at it with "
                f"`{_command('show', args.out)}`, choose another --out, or add --overwrite to "
                "replace it"
            )


def _manifest_location(root: PathLike) -> PathLike:
    from gmat_sweep import storage
    from gmat_sweep.sweep import MANIFEST_NAME

    return storage.join(root, MANIFEST_NAME)


def _sweep_manifest(root: PathLike, storage_options: Mapping[str, Any]) -> PathLike:
    """The manifest of the sweep in ``root``, which must have one."""
    from gmat_sweep import storage

    location = _manifest_location(root)
    if not storage.exists(location, storage_options):
        raise SweepConfigError(
            f"{root} is not a sweep directory: it has no {Path(str(location)).name} (every "
            "sweep writes one at its root); pass the --out of a gmat-sweep run"
        )
    return location


def _load_manifest(root: PathLike, storage_options: Mapping[str, Any]) -> Any:
    from gmat_sweep.manifest import Manifest

    location = _sweep_manifest(root, storage_options)
    return Manifest.load(location, storage_options=storage_options)


def _open_sweep(args: argparse.Namespace) -> Any:
    """The sweep in ``args.out_dir``, opened from its manifest alone (:func:`open_sweep`)."""
    from gmat_sweep.api import open_sweep

    location = _sweep_manifest(as_location(args.out_dir), args.storage_options)
    return open_sweep(location, storage_options=args.storage_options)


def _recorded_script(manifest: Any) -> Path:
    """The mission the manifest records; it must still be there (else ``--script`` says where)."""
    recorded = getattr(manifest, "script_path", "") or ""
    if not recorded:
        raise SweepConfigError(
            "this manifest does not record where its mission script is; pass --script PATH"
        )
    if not Path(recorded).is_file():
        raise SweepConfigError(
            f"the mission this sweep ran, {recorded}, is not there any more (moved or deleted); "
            "pass its new path with --script PATH"
        )
    return Path(recorded)


_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _value(text: str, argument: str) -> Any:
    """One ``--param`` list item of ``argument``: an int, a finite float or a text value."""
    text = text.strip()
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    if _NUMBER.match(text):
        return _finite("--param", argument, text)
    return text.strip("'\"")


def _finite(option: str, argument: str, number: str) -> float:
    """``number``, a number written inside ``option``'s ``argument``, as a finite float.

    Raises
    ------
    ValueError
        ``number`` is not a number (the caller words that with its own syntax).
    SweepConfigError
        It is one a float cannot hold (``1e400`` reads as ``inf``), or nan or
        infinity: quoted as the user wrote it, not as the ``inf`` it became.
    """
    value = float(number)
    if not math.isfinite(value):
        raise SweepConfigError(
            f"{option} {argument!r}: {number.strip()!r} is not a finite number (a float holds "
            "at most about 1.8e308, and no GMAT field takes NaN or infinity); write it as a "
            "finite number"
        )
    return value


def _parse_param(text: str) -> tuple[str, list[Any]]:
    """``Sat.SMA=7000:7400:5`` (inclusive range) or ``Sat.INC=28.5,51.6``.

    VALUES is a range when it holds a colon and no quote, comma or space: text
    with colons (an epoch such as ``'01 Jan 2026 12:00:00.000'``) is a value.
    """
    path, sep, values = text.partition("=")
    path = path.strip()
    values = values.strip()
    if not sep or not path or not values:
        raise SweepConfigError(
            f"--param {text!r}: write PATH=VALUES, e.g. Sat.SMA=7000:7400:5 or Sat.INC=28.5,51.6"
        )
    if ":" in values and not re.search(r"[\s,'\"]", values):
        parts = values.split(":")
        try:
            if len(parts) != 3:
                raise ValueError
            start, stop = (_finite("--param", text, part) for part in parts[:2])
            count = int(parts[2])
        except ValueError:
            raise SweepConfigError(
                f"--param {text!r}: a range is START:STOP:COUNT (numbers, COUNT a whole number), "
                "e.g. Sat.SMA=7000:7400:5 for 7000, 7100, ..., 7400; for a text value with "
                f"colons, quote it: {path}='{values}'"
            ) from None
        if count < 1:
            raise SweepConfigError(
                f"--param {text!r}: COUNT must be at least 1 (for a text value with colons, "
                f"quote it: {path}='{values}')"
            )
        if count > _LARGE_COUNT:
            _warn_other_readings(text, start, stop, count)
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
    return path, [_value(item, text) for item in items]


def _warn_other_readings(text: str, start: float, stop: float, count: int) -> None:
    """Warn when a large COUNT reads as a whole step in START:STOP:STEP or START:STEP:STOP.

    Python's ``range`` and numpy's ``arange`` put the step last, GMAT's
    ``for I = a:step:b`` in the middle; ``7000:7400:100`` or ``0:10:1000``
    are then likely meant as a step, not as 100 or 1000 values.
    """

    def whole(quotient: float) -> int | None:
        rounded = round(quotient)
        return rounded if rounded >= 1 and math.isclose(quotient, rounded) else None

    meant = []
    steps = whole((stop - start) / count) if count else None
    if steps is not None:
        meant.append(
            f"{_number(start)} to {_number(stop)} in steps of {count} (START:STOP:STEP), write "
            f"{_number(start)}:{_number(stop)}:{steps + 1}"
        )
    gmat_steps = whole((count - start) / stop) if stop else None
    if gmat_steps is not None:
        meant.append(
            f"{_number(start)} to {count} in steps of {_number(stop)} (START:STEP:STOP, GMAT's "
            f"order), write {_number(start)}:{count}:{gmat_steps + 1}"
        )
    if meant:
        _warn(
            f"--param {text!r} makes {count} values from {_number(start)} to {_number(stop)}: "
            f"a range is START:STOP:COUNT. If you meant {' or '.join(meant)}"
        )


def _parse_bounds(text: str) -> tuple[str, tuple[float, float]]:
    """``Sat.Cd=1.8:2.6`` -> ``("Sat.Cd", (1.8, 2.6))``: a field uniform on its range."""
    path, sep, values = text.partition("=")
    path = path.strip()
    low, colon, high = values.partition(":")
    try:
        if not (sep and path and colon):
            raise ValueError
        return path, (_finite("--bounds", text, low), _finite("--bounds", text, high))
    except ValueError:
        raise SweepConfigError(
            f"--bounds {text!r}: write PATH=LO:HI with two numbers, e.g. Sat.Cd=1.8:2.6 (the "
            "field is uniform on 1.8 … 2.6)"
        ) from None


def _until(args: argparse.Namespace) -> dict[str, Any] | None:
    """``--until COLUMN:HALF_WIDTH`` and its companions as ``monte_carlo``'s ``until``."""
    given = {
        key: value
        for key in ("stat", "confidence", "batch", "max_n", "name", "reduce")
        if (value := getattr(args, key)) is not None
    }
    if args.until is None:
        if given:
            flags = ", ".join(f"--{key.replace('_', '-')}" for key in given)
            raise SweepConfigError(
                f"{flags}: only for adaptive stopping, which --until COLUMN:HALF_WIDTH turns on "
                f"(e.g. --until Sat.Earth.SMA:0.05 --max-n 2000); add it, or drop {flags} for a "
                "fixed -n"
            )
        return None
    column, colon, width = args.until.rpartition(":")
    try:
        if not (colon and column.strip()):
            raise ValueError
        half_width = float(width)
    except ValueError:
        raise SweepConfigError(
            f"--until {args.until!r}: write COLUMN:HALF_WIDTH, a report column and the target "
            "half-width of its confidence interval, e.g. --until Sat.Earth.SMA:0.05"
        ) from None
    if args.max_n is None:
        raise SweepConfigError(
            f"--until {args.until} needs --max-n M, the most runs to make (a budget, so a "
            "half-width that is never reached cannot run forever), e.g. --max-n 2000"
        )
    rule = {key: value for key, value in given.items() if key not in ("batch", "max_n")}
    return {"column": column.strip(), "half_width": half_width, **rule}


def _rule_text(until: Mapping[str, Any]) -> str:
    """``the 95 % half-width of mean(Y) < 0.5``: an adaptive rule for people."""
    confidence = float(until.get("confidence", 0.95)) * 100
    return (
        f"the {confidence:g} % half-width of {until.get('stat', 'mean')}({until['column']}) "
        f"< {_number(float(until['half_width']))}"
    )


def _stopped_text(stopped: Any) -> str | None:
    """Why an adaptive sweep stopped (its ``parameter_spec["stopped"]``), for people."""
    if not isinstance(stopped, Mapping):
        return None
    why = "the half-width target was met" if stopped["reason"] == "half_width" else "max_n reached"
    estimate, width = stopped.get("estimate"), stopped.get("half_width")
    value = "no value yet" if estimate is None else f"estimate {estimate:.6g}"
    spread = "" if width is None else f" ± {width:.3g}"
    return f"stopped at {stopped['n']} runs: {why} ({value}{spread})"


_DIST = re.compile(r"^\s*(?P<path>[^=]+?)\s*=\s*(?P<name>[A-Za-z_]+)\s*\((?P<args>[^)]*)\)\s*$")


def _parse_perturb(text: str) -> tuple[ParamName, DistSpec]:
    """``Sat.SMA=normal(7000,5)`` -> ``("Sat.SMA", ("normal", 7000.0, 5.0))``."""
    match = _DIST.match(text)
    if match is None:
        raise SweepConfigError(
            f"--perturb {text!r}: write PATH=DIST(ARGS), e.g. 'Sat.SMA=normal(7000,5)', "
            "'Sat.Cd=uniform(2.0,2.4)' or 'Sat.DryMass=lognormal(6.2,0.1)'"
        )
    name = match["name"]
    if name not in CLI_DISTRIBUTIONS:
        *first, last = CLI_DISTRIBUTIONS.values()
        raise SweepConfigError(
            f"--perturb {text!r}: unknown distribution {name!r}; the command line takes "
            f"{', '.join(first)} or {last} (truncated, correlated and other scipy.stats "
            "distributions need Python: monte_carlo(perturb=...))"
        )
    arguments = match["args"].split(",") if match["args"].strip() else []
    for position, argument in enumerate(arguments, start=1):
        if not argument.strip():
            raise SweepConfigError(
                f"--perturb {text!r}: argument {position} is empty; e.g. "
                + _spelled("perturb", match["path"], (name, *DISTRIBUTION_EXAMPLES[name]))
            )
    try:
        numbers = tuple(_finite("--perturb", text, a) for a in arguments)
    except ValueError:
        raise SweepConfigError(
            f"--perturb {text!r}: distribution arguments must be numbers, e.g. normal(7000,5)"
        ) from None
    if len(numbers) != 2:
        raise SweepConfigError(
            f"--perturb {text!r}: {name} takes two numbers, {CLI_DISTRIBUTIONS[name]}, e.g. "
            + _spelled("perturb", match["path"], (name, *DISTRIBUTION_EXAMPLES[name]))
        )
    spec: DistSpec = (name, *numbers)
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


def _describe_parameters(spec: Mapping[str, Any]) -> str:
    from gmat_sweep.plan import recorded_grid

    kind = spec.get("_kind", "grid")
    if kind == "grid":
        axes = [f"{k} ({len(v)})" for k, v in recorded_grid(spec).items()]
        return "grid " + (" x ".join(axes) if axes else "(no fields)")
    if kind == "samples":
        return f"{len(spec.get('rows', []))} explicit sample rows"
    if kind in ("sobol", "morris"):
        ranges = ", ".join(
            f"{field} in [{_number(low)}, {_number(high)}]"
            for field, (low, high) in dict(spec.get("bounds", {})).items()
        )
        size = (
            f"n={spec.get('n')}" if kind == "sobol" else f"{spec.get('trajectories')} trajectories"
        )
        return f"{kind} design, {size}: {ranges}"
    fields = ", ".join(
        f"{field} ~ {d.get('dist', '?')}{tuple(d.get('params', ()))}"
        if isinstance(d, Mapping)
        else str(field)
        for field, d in dict(spec.get("perturb", {})).items()
    )
    text = f"{kind.replace('_', ' ')}, n={spec.get('n')}: {fields}"
    until = spec.get("until")
    if isinstance(until, Mapping):
        text += (
            f"; adaptive: batches of {spec.get('batch')} until {_rule_text(until)}, at most "
            f"{spec.get('max_n')} runs"
        )
    return text


def _run_times(ordered: list[float]) -> dict[str, float] | None:
    """Minimum, percentiles and maximum of the runs' durations (seconds), or ``None``."""
    if not ordered:
        return None
    if len(ordered) == 1:
        p50 = p90 = p99 = ordered[0]
    else:
        cuts = statistics.quantiles(ordered, n=100, method="inclusive")
        p50, p90, p99 = cuts[49], cuts[89], cuts[98]
    points = {"min": ordered[0], "p50": p50, "p90": p90, "p99": p99, "max": ordered[-1]}
    return {point: round(seconds, 3) for point, seconds in points.items()}


def _rows(location: PathLike, storage_options: Mapping[str, Any]) -> int | None:
    """The Parquet file's row count; ``None`` when the file is gone, 0 when it is damaged.

    A store that refuses the read or does not answer raises, naming the file
    (:func:`gmat_sweep.storage.reading`): its rows are unknown, not 0.
    """
    import pyarrow.parquet as pq

    from gmat_sweep import storage

    try:
        fs, path = storage.filesystem(location, storage_options)
        with storage.reading(location), fs.open(path, "rb") as handle:
            return int(pq.ParquetFile(handle).metadata.num_rows)
    except FileNotFoundError:
        return None
    except (PermissionError, ConnectionError):
        raise
    except OSError:
        return 0
