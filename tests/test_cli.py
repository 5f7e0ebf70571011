"""The ``gmat-sweep`` command, end to end, with real GMAT runs.

Commands run in this process through :func:`gmat_sweep.cli.main` (its exit
code, stdout and stderr captured), with the current directory set as a shell
would: a subprocess would pay a few seconds of interpreter and import
start-up per command and check nothing more. The console script itself
(``python -m gmat_sweep``), what only a fresh process shows (a signal,
credentials and completion read from its environment) and commands that must
run at the same time run as subprocesses. The sweeps are small and one grid
sweep (a module fixture) feeds the show, export and resume tests.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from s3_server import S3Server, s3_server  # noqa: F401  (the fixture, used by name)

from gmat_sweep import Manifest, Sweep, examples, lazy_multiindex
from gmat_sweep.cli import (
    _describe_axis,
    _parse_bounds,
    _parse_param,
    _parse_perturb,
    _parser,
    _read_spec_file,
    _storage_options,
    _until,
    main,
)
from gmat_sweep.errors import SweepConfigError
from gmat_sweep.manifest import read_all_entries

COMMANDS = (
    "run", "monte-carlo", "lhs", "sobol", "morris", "resume", "extend", "show", "export", "demo",
    "script", "fields", "example",
)  # fmt: skip


@dataclass(frozen=True)
class Result:
    """A finished ``gmat-sweep`` command: its exit code and what it printed."""

    code: int
    stdout: str
    stderr: str


def gmat_sweep(*args: str | Path, cwd: Path) -> Result:
    """Run ``gmat-sweep ARGS`` in this process, in ``cwd``, as :func:`console` would."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.chdir(cwd), redirect_stdout(stdout), redirect_stderr(stderr):
        try:
            code = main([str(arg) for arg in args])
        except SystemExit as exit_:  # the parser's usage errors and --help
            code = exit_.code if isinstance(exit_.code, int) else 1
    return Result(code, stdout.getvalue(), stderr.getvalue())


def console(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> Result:
    """Run ``python -m gmat_sweep ARGS`` in ``cwd`` (with ``env``) and wait for it."""
    done = subprocess.run(
        [sys.executable, "-m", "gmat_sweep", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def frame_of(out: Path) -> pd.DataFrame:
    """The sweep's report frame, read with the library."""
    return lazy_multiindex(Manifest.load(out / "manifest.jsonl"), out)


def entry_lines(out: Path) -> list[str]:
    return [
        line
        for line in (out / "manifest.jsonl").read_text().splitlines()
        if json.loads(line)["kind"] == "entry"
    ]


# -- in-process: help and parsing ------------------------------------------------


@pytest.mark.parametrize("command", COMMANDS)
def test_help_of_every_command_shows_an_example(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stop:
        main([command, "--help"])
    assert stop.value.code == 0
    text = capsys.readouterr().out
    assert "example" in text
    assert f"gmat-sweep {command}" in text.split("example", 1)[1]


def test_top_level_help_lists_commands_and_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for command in COMMANDS:
        assert command in text
        assert f"  gmat-sweep {command}" in text


def test_usage_error_is_one_line_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["run", "mission.script", "--bogus"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "unrecognized arguments: --bogus" in err


def test_an_unknown_cluster_kind_is_a_usage_error_listing_the_kinds(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["run", "m.script", "--param", "Sat.SMA=1,2", "--cluster", "slrm", "--jobs", "1"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--cluster: invalid choice: 'slrm'" in err
    for kind in ("slurm", "pbs", "sge", "lsf", "htcondor", "oar", "moab"):
        assert kind in err


@pytest.mark.parametrize("adapt", ["5:1", "0:0"])
def test_an_adapt_range_that_is_not_min_to_max_is_a_usage_error(
    adapt: str, leo_basic: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["run", str(leo_basic), "--param", "Sat.SMA=7000", "--out", str(tmp_path / "s")]
    assert main([*argv, "--cluster", "slurm", "--adapt", adapt, "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert f"--adapt {adapt!r}: " in err and "e.g. 0:16" in err, err
    assert not (tmp_path / "s").exists()


def test_an_object_store_without_credentials_is_exit_3_not_a_bug(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in [n for n in os.environ if n.startswith("AWS_") and n != "AWS_CA_BUNDLE"]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance-metadata lookup
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    endpoint = "client_kwargs.endpoint_url=http://127.0.0.1:9"
    assert main(["show", "s3://bucket/study", "--storage-option", endpoint]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bug" not in err, err
    assert "s3://bucket/study" in err and "NoCredentialsError" in err, err
    assert "--storage-option key=" in err and "AWS_ACCESS_KEY_ID" in err, err


def _crash(*_: object, **__: object) -> None:
    raise KeyError("a bug")


@pytest.mark.parametrize("command", ["example", "run"])
def test_a_bug_is_one_line_naming_its_saved_traceback_and_exit_70(
    command: str,
    tmp_path: Path,
    leo_basic: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.delenv("GMAT_SWEEP_DEBUG", raising=False)
    monkeypatch.setattr(examples, "names", _crash)  # reached by `example`
    monkeypatch.setattr("gmat_sweep.cli._check_new_sweep", _crash)  # reached by `run`
    argv = {
        "example": ["example"],
        "run": [
            *("run", str(leo_basic), "--param", "Sat.SMA=1"),
            *("--storage-option", "key=s3cr3t", "--storage-option=other=s3cr3t"),
        ],
    }[command]
    assert main(argv) == 70
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert captured.err.startswith("gmat-sweep: error: unexpected KeyError: 'a bug'")
    assert "GMAT_SWEEP_DEBUG=1" in captured.err
    (saved,) = tmp_path.glob("gmat-sweep-crash-*.txt")
    assert str(saved) in captured.err
    report = saved.read_text()
    assert "Traceback (most recent call last)" in report and "KeyError: 'a bug'" in report
    assert f"gmat-sweep {command}" in report
    assert "s3cr3t" not in report


def test_gmat_sweep_debug_prints_a_bugs_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GMAT_SWEEP_DEBUG", "1")
    monkeypatch.setattr(examples, "names", _crash)
    assert main(["example"]) == 70
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert err.rstrip().endswith("KeyError: 'a bug'")


def test_example_lists_the_bundled_missions_and_copies_one_out(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["example"]) == 0
    listed = capsys.readouterr()
    assert listed.out.split() == examples.names()
    assert "hohmann_target" in listed.out

    target = tmp_path / "missions"
    assert main(["example", "hohmann_target", "--to", str(target)]) == 0
    written = target / "hohmann_target.script"
    assert capsys.readouterr().out == f"wrote {written}\n"
    assert written.read_bytes() == (data_dir / "hohmann_target.script").read_bytes()

    written.write_text("edited")
    assert main(["example", "hohmann_target", "--to", str(target)]) == 2
    assert "already exists; choose another --to, or add --overwrite" in capsys.readouterr().err
    assert written.read_text() == "edited"
    assert main(["example", "hohmann_target", "--to", str(target), "--overwrite"]) == 0
    assert written.read_bytes() == (data_dir / "hohmann_target.script").read_bytes()

    assert main(["example", "leo"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "no bundled mission named 'leo'; the examples are fails_at_runtime" in err

    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    assert main(["example", "leo_basic", "--to", str(a_file)]) == 2
    err = capsys.readouterr().err
    assert f"--to {a_file} is a file, not a directory" in err and "Errno" not in err, err
    assert a_file.read_text() == "mine"


def test_help_lists_exit_codes_and_environment(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for code in ("0 ", "1 ", "2 ", "3 ", "70 ", "130 ", "141 "):
        assert f"\n  {code}" in text, code
    assert "could not run" in text
    for variable in ("GMAT_ROOT", "GMAT_SWEEP_CACHE", "GMAT_SWEEP_DEBUG", "DASK_", "AWS_"):
        assert variable in text


@pytest.mark.parametrize(
    ("argv", "command", "n"),
    [
        (["grid", "m.script", "--param", "Sat.SMA=1,2"], "grid", None),
        (["latin-hypercube", "m.script", "--runs", "5", "--perturb", "A.B=uniform(0,1)"],
         "latin-hypercube", 5),
        (["monte-carlo", "m.script", "--runs", "7", "--perturb", "A.B=uniform(0,1)"],
         "monte-carlo", 7),
        (["extend", "study", "--runs", "3"], "extend", 3),
    ],
)  # fmt: skip
def test_aliases_and_runs(argv: list[str], command: str, n: int | None) -> None:
    args = _parser().parse_args(argv)
    assert args.command == command
    assert getattr(args, "n", None) == n


def test_resume_takes_only_timeout_and_retries() -> None:
    args = _parser().parse_args(
        ["resume", "study", "--only", "failed", "--timeout", "30", "--retries", "2"]
    )
    assert (args.only, args.timeout, args.retries) == ("failed", 30.0, 2)
    assert _parser().parse_args(["resume", "study"]).only == "all"


@pytest.mark.parametrize(
    ("values", "text"),
    [
        ([7000.0, 7100.0, 7200.0, 7300.0, 7400.0], "5 values 7000 … 7400 (step 100)"),
        ([28.5, 51.6], "2 values 28.5, 51.6"),
        ([3], "1 value 3"),
        (["RungeKutta89", "PrinceDormand78"], "2 values RungeKutta89, PrinceDormand78"),
        ([1, 2, 4, 8, 16, 32], "6 values 1, 2, 4, …, 32"),
    ],
)
def test_describe_axis(values: list[object], text: str) -> None:
    assert _describe_axis(values) == text


@pytest.mark.parametrize(
    ("text", "advice"),
    [
        ("Sat.SMA=7000:7400:100", "write 7000:7400:5"),  # read as START:STOP:STEP
        ("Sat.SMA=0:10:1000", "write 0:1000:101"),  # read as GMAT's START:STEP:STOP
    ],
)
def test_a_large_count_with_another_whole_reading_warns(
    text: str, advice: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _parse_param(text)
    err = capsys.readouterr().err
    assert err.startswith("gmat-sweep: warning: ")
    assert "START:STOP:COUNT" in err
    assert advice in err


@pytest.mark.parametrize("text", ["Sat.SMA=7000:7400:51", "Sat.SMA=7000:7400:5"])
def test_ranges_without_another_reading_do_not_warn(
    text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _parse_param(text)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["anon=true"], {"anon": True}),
        (
            ["client_kwargs.endpoint_url=http://127.0.0.1:9000", "client_kwargs.region_name=x"],
            {"client_kwargs": {"endpoint_url": "http://127.0.0.1:9000", "region_name": "x"}},
        ),
        (['key="12345"', "max_concurrency=4"], {"key": "12345", "max_concurrency": 4}),
    ],
)
def test_storage_options_nest_on_dots_and_read_json_values(
    options: list[str], expected: dict[str, object]
) -> None:
    argv = [item for option in options for item in ("--storage-option", option)]
    args = _parser().parse_args(["show", "s3://b/p", *argv])
    assert _storage_options(args.storage_option) == expected


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["s3cr3t"], "--storage-option '***': write KEY=VALUE"),
        (["client_kwargs..x=s3cr3t"], "--storage-option 'client_kwargs..x=***': write KEY"),
        (["a=s3cr3t", "a.b=2"], "--storage-option 'a.b=***': a already has a value"),
    ],
)
def test_bad_storage_options_are_one_line_errors_without_their_values(
    options: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [item for option in options for item in ("--storage-option", option)]
    assert main(["show", "s3://b/p", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert message in err
    assert "s3cr3t" not in err  # values can be secrets


@pytest.mark.parametrize(
    "command",
    [["run", "mission.script", "--param", "Sat.SMA=7000", "--out", "s4://bucket/study"],
     ["show", "s4://bucket/study"], ["export", "s4://bucket/study", "--to", "x.csv"]],
    ids=lambda command: command[0],
)  # fmt: skip
def test_an_unknown_url_scheme_is_a_usage_error(
    command: list[str], leo_basic: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    command = [str(leo_basic) if arg == "mission.script" else arg for arg in command]
    assert main(command) == 2
    err = capsys.readouterr().err
    assert err.startswith("gmat-sweep: error: ") and err.count("\n") == 1, err
    assert "unknown URL scheme 's4'" in err, err


@pytest.mark.parametrize(
    "command",
    [["show"], ["export", "--to", "x.csv"], ["report", "--to", "x.html"],
     ["archive", "--to", "x.zip"], ["sensitivity", "Y"], ["bound", "Y"], ["script", "0"],
     ["resume"], ["extend", "-n", "2"]],
    ids=lambda command: command[0],
)  # fmt: skip
def test_a_directory_that_is_not_a_sweep_is_named_in_cli_terms(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    verb, *rest = command
    assert main([verb, str(tmp_path), *[str(tmp_path / a) if a.startswith("x.") else a
                                        for a in rest]]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert err == (
        f"gmat-sweep: error: {tmp_path} is not a sweep directory: it has no manifest.jsonl "
        "(every sweep writes one at its root); pass the --out of a gmat-sweep run\n"
    )


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("Sat.SMA=7000:7400:5", [7000.0, 7100.0, 7200.0, 7300.0, 7400.0]),
        ("Sat.SMA=7000:7400:1", [7000.0]),
        ("Sat.INC=28.5,51.6,98", [28.5, 51.6, 98]),
        (" Idx.Value = 1,2 ", [1, 2]),
        ("Prop.Type=RungeKutta89,'PrinceDormand78'", ["RungeKutta89", "PrinceDormand78"]),
        # Text with colons (an epoch) is a value, not a range: quoted, or with spaces in it.
        ("Sat.Epoch='01 Jan 2026 12:00:00.000','02 Jan 2026 12:00:00.000'",
         ["01 Jan 2026 12:00:00.000", "02 Jan 2026 12:00:00.000"]),
        ("Sat.Epoch=01 Jan 2026 12:00:00.000", ["01 Jan 2026 12:00:00.000"]),
        ("T.Value='12:00:00'", ["12:00:00"]),
    ],
)  # fmt: skip
def test_parse_param(text: str, values: list[object]) -> None:
    path, parsed = _parse_param(text)
    assert path == text.split("=")[0].strip()
    assert parsed == values


@pytest.mark.parametrize(
    "text",
    ["Sat.SMA", "=1,2", "Sat.SMA=", "Sat.SMA=1:2", "Sat.SMA=a:b:3", "Sat.SMA=1:2:0", "X=1,,2"],
)
def test_parse_param_rejects(text: str) -> None:
    with pytest.raises(SweepConfigError, match="--param") as raised:
        _parse_param(text)
    if ":" in text:  # it may be a text value: say how to pass one
        assert "quote it" in str(raised.value)


def test_parse_perturb() -> None:
    assert _parse_perturb("Sat.SMA=normal(7000, 5)") == ("Sat.SMA", ("normal", 7000.0, 5.0))
    assert _parse_perturb("Sat.Cd = uniform(2.0,2.4)") == ("Sat.Cd", ("uniform", 2.0, 2.4))
    for bad in ("Sat.SMA", "Sat.SMA=normal", "Sat.SMA=normal(a,b)"):
        with pytest.raises(SweepConfigError, match="--perturb"):
            _parse_perturb(bad)
    # What the command line can spell, in its own syntax (not Python's tuples).
    for bad, expected in (
        ("Sat.SMA=gaussian(7000,5)", "unknown distribution 'gaussian'; the command line takes "
         "normal(mu,sigma), uniform(lo,hi) or lognormal(mu,sigma)"),
        ("Sat.SMA=mvnormal(1,2)", "unknown distribution 'mvnormal'"),
        ("Sat.Cd=uniform(2.0)", "uniform takes two numbers, uniform(lo,hi), e.g. "),
        ("Sat.Cd=normal(1,2,3)", "normal takes two numbers, normal(mu,sigma), e.g. "),
    ):  # fmt: skip
        with pytest.raises(SweepConfigError, match=re.escape(f"--perturb {bad!r}: {expected}")):
            _parse_perturb(bad)


@pytest.mark.parametrize(
    ("bad", "example"),
    [
        ("Sat.SMA=normal(7000)", "e.g. --perturb 'Sat.SMA=normal(7000,5)'"),
        ("Sat.Cd=uniform(2.0)", "e.g. --perturb 'Sat.Cd=uniform(6900,7100)'"),
        ("Sat.DryMass=lognormal(1,2,3)", "e.g. --perturb 'Sat.DryMass=lognormal(0,0.1)'"),
    ],
)
def test_parse_perturb_arity_example_is_the_distributions_own(bad: str, example: str) -> None:
    # The example a wrong count of numbers gets is the one every other message about that
    # distribution gives, in the command line's spelling (not uniform's numbers for all).
    with pytest.raises(SweepConfigError, match=re.escape(example)):
        _parse_perturb(bad)


@pytest.mark.parametrize(
    ("bad", "position"),
    [
        ("Sat.SMA=normal(7000,,5)", 2),
        ("Sat.SMA=normal(7000,5,)", 3),
        ("Sat.SMA=normal( ,7000,5)", 1),
    ],
)
def test_parse_perturb_refuses_an_empty_argument(bad: str, position: int) -> None:
    # A stray comma is a typo, not a number to skip: the spec must be written as meant.
    expected = f"--perturb {bad!r}: argument {position} is empty; e.g. --perturb 'Sat.SMA=normal("
    with pytest.raises(SweepConfigError, match=re.escape(expected)):
        _parse_perturb(bad)


@pytest.mark.parametrize(
    ("parse", "option", "text", "number"),
    [
        (_parse_perturb, "--perturb", "Sat.Cd=normal(1e400,1)", "1e400"),
        (_parse_perturb, "--perturb", "Sat.Cd=uniform(2,-1E999)", "-1E999"),
        (_parse_perturb, "--perturb", "Sat.Cd=uniform(nan,2)", "nan"),
        (_parse_bounds, "--bounds", "Sat.Cd=1e400:2", "1e400"),
        (_parse_bounds, "--bounds", "Sat.Cd=1:inf", "inf"),
        (_parse_param, "--param", "Sat.Cd=2,1e400", "1e400"),
        (_parse_param, "--param", "Sat.Cd=1:1e309:2", "1e309"),
    ],
)
def test_a_number_too_large_for_a_float_is_refused_as_the_user_wrote_it(
    parse: Callable[[str], object], option: str, text: str, number: str
) -> None:
    # 1e400 reads as inf: the message quotes what was typed, not the inf (or the nan of a
    # range ending at inf) it became, so the user sees which number to change.
    with pytest.raises(SweepConfigError) as refused:
        parse(text)
    message = str(refused.value)
    assert message.startswith(f"{option} {text!r}: {number!r} is not a finite number")
    rest = message.replace(repr(text), "").replace(repr(number), "")
    assert not re.search(r"\b(inf|nan)\b", rest), message


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["monte-carlo", "-n", "2", "--perturb", "Sat.SMA=normal(7000,-5)"],
            "--perturb 'Sat.SMA=normal(7000,-5)': normal needs sigma > 0 (the standard deviation "
            "of the value); e.g. --perturb 'Sat.SMA=normal(7000,5)'",
        ),
        (
            ["lhs", "-n", "2", "--perturb", "Sat.Cd=uniform(2.4,2.0)"],
            "--perturb 'Sat.Cd=uniform(2.4,2)': uniform needs lo < hi; e.g. "
            "--perturb 'Sat.Cd=uniform(2,2.4)'",
        ),
        (
            ["monte-carlo", "-n", "2", "--perturb", "Sat.SMA=lognormal(800,1)"],
            "e.g. --perturb 'Sat.SMA=lognormal(0,0.1)'",
        ),
        (
            ["monte-carlo", "-n", "2", "--perturb", "Sat.SMA=normal(nan,5)"],
            "--perturb 'Sat.SMA=normal(nan,5)': 'nan' is not a finite number",
        ),
        (
            ["sobol", "-n", "4", "--bounds", "Sat.Cd=2.6:1.8"],
            "--bounds Sat.Cd=2.6:1.8: the range must be finite with low < high; e.g. "
            "--bounds Sat.Cd=1.8:2.6",
        ),
        (
            ["sobol", "-n", "4", "--bounds", "Sat.Cd=1.8:2.6", "--second-order"],
            "--second-order: second-order indices need at least two fields",
        ),
        (
            ["morris", "--trajectories", "4", "--levels", "3", "--bounds", "Sat.Cd=1.8:2.6"],
            "--levels 3: the Morris grid needs an even number of levels >= 2",
        ),
        (
            ["morris", "--trajectories", "1", "--bounds", "Sat.Cd=1.8:2.6"],
            "--trajectories 1: too few: the spread (sigma) of the elementary effects needs at "
            "least 2 trajectories; 10 to 20 are usual; e.g. --trajectories 10",
        ),
        (
            [
                "monte-carlo",
                "-n",
                "4",
                "--perturb",
                "Sat.SMA=normal(7000,1)",
                "--until",
                "Sat.Earth.SMA:1e-3",
                "--stat",
                "q200",
                "--max-n",
                "8",
            ],
            "--stat q200: use mean, std or a quantile q<percent> with 0 < percent < 100; "
            "e.g. --stat q95",
        ),
    ],
)
def test_design_checks_speak_the_command_lines_syntax(
    argv: list[str], message: str, leo_basic: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    command, *options = argv
    assert main([command, str(leo_basic), *options, "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("gmat-sweep: error: "), err
    assert message in err
    for python in (
        "perturb[",
        "bounds[",
        "levels=",
        "trajectories=",
        "second_order",
        "('",
        "stat=",
    ):
        assert python not in err


@pytest.mark.filterwarnings("default::gmat_sweep.errors.ArgumentWarning")
def test_a_design_warning_speaks_the_command_lines_syntax(
    leo_basic: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["sobol", str(leo_basic), "--bounds", "Sat.Cd=1.8:2.6", "-n", "5", "--dry-run"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert (
        "gmat-sweep: warning: -n 5: not a power of two, so the Sobol' points lose their balance "
        "properties; the nearest powers of two are 4 and 8; e.g. -n 8\n"
    ) in err


def test_parse_bounds() -> None:
    assert _parse_bounds("Sat.Cd=1.8:2.6") == ("Sat.Cd", (1.8, 2.6))
    assert _parse_bounds(" X1.Value = -3.5:3.5 ") == ("X1.Value", (-3.5, 3.5))
    for bad in ("Sat.Cd", "Sat.Cd=1.8", "=1:2", "Sat.Cd=a:2", "Sat.Cd=1:2:3"):
        with pytest.raises(SweepConfigError, match=r"--bounds .*PATH=LO:HI"):
            _parse_bounds(bad)


def test_until_flags_become_monte_carlos_until() -> None:
    def until(*flags: str) -> object:
        return _until(_parser().parse_args(["monte-carlo", "m.script", "-n", "8",
                                            "--perturb", "A.B=uniform(0,1)", *flags]))  # fmt: skip

    assert until() is None
    assert until("--until", "Sat.Earth.SMA:0.05", "--max-n", "99") == {
        "column": "Sat.Earth.SMA", "half_width": 0.05,
    }  # fmt: skip
    assert until("--until", "Y:1e-3", "--stat", "q95", "--confidence", "0.9", "--max-n", "9") == {
        "column": "Y", "half_width": 0.001, "stat": "q95", "confidence": 0.9,
    }  # fmt: skip
    assert until("--until", "Y:1", "--name", "Final", "--reduce", "max", "--max-n", "9") == {
        "column": "Y", "half_width": 1.0, "name": "Final", "reduce": "max",
    }  # fmt: skip
    with pytest.raises(SweepConfigError, match="--batch, --max-n: only for adaptive stopping"):
        until("--batch", "4", "--max-n", "20")
    with pytest.raises(SweepConfigError, match="--name, --reduce: only for adaptive stopping"):
        until("--name", "Final", "--reduce", "max")
    with pytest.raises(SweepConfigError, match="--until Y:1 needs --max-n M"):
        until("--until", "Y:1")
    for bad in ("Y", ":1", "Y:wide"):
        with pytest.raises(SweepConfigError, match="write COLUMN:HALF_WIDTH"):
            until("--until", bad, "--max-n", "9")


def test_spec_files(tmp_path: Path) -> None:
    toml = tmp_path / "grid.toml"
    toml.write_text('[grid]\nSat.SMA = [7000, 7100]\n"Sat.INC" = [28.5]\n')
    assert _read_spec_file(toml) == ({"Sat.SMA": [7000, 7100], "Sat.INC": [28.5]}, None)
    samples = tmp_path / "rows.json"
    samples.write_text(json.dumps({"samples": [{"Sat.SMA": 7000}, {"Sat.SMA": 7100}]}))
    assert _read_spec_file(samples) == (None, [{"Sat.SMA": 7000}, {"Sat.SMA": 7100}])
    for name, text in [
        ("none.toml", "[other]\nx = 1\n"),
        ("both.json", '{"grid": {}, "samples": []}'),
        ("scalar.toml", "[grid]\nSat.SMA = 7000\n"),
        ("broken.json", "{"),
        ("grid.yaml", "grid: {}"),
    ]:
        bad = tmp_path / name
        bad.write_text(text)
        with pytest.raises(SweepConfigError, match="--spec"):
            _read_spec_file(bad)


# -- commands with real GMAT runs ------------------------------------------------


@pytest.mark.slow
def test_user_errors_print_one_line_and_exit_2(tmp_path: Path, leo_basic: Path) -> None:
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "manifest.jsonl").write_text("{}\n")
    cases = {
        "unknown field path": (
            ["run", leo_basic, "--param", "Sat.SMAX=7000,7100", "--out", "a"],
            "unknown field 'SMAX'",
        ),
        "malformed --param": (["run", leo_basic, "--param", "Sat.SMA"], "write PATH=VALUES"),
        "missing mission": (["run", "nowhere.script", "--param", "Sat.SMA=1,2"], "not a file"),
        "--out holds a sweep": (
            ["run", leo_basic, "--param", "Sat.SMA=7000,7100", "--out", taken],
            "already holds a sweep",
        ),
        "bad --perturb": (
            ["monte-carlo", leo_basic, "-n", "3", "--perturb", "Sat.SMA=gaussian(7000,5)"],
            "unknown distribution 'gaussian'",
        ),
        "resume a non-sweep": (["resume", tmp_path], "is not a sweep directory"),
    }
    # The cases are independent: run them side by side to pay start-up once.
    running = {
        name: subprocess.Popen(
            [sys.executable, "-m", "gmat_sweep", *map(str, args)],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, (args, _) in cases.items()
    }
    for name, process in running.items():
        stdout, stderr = process.communicate(timeout=240)
        expected = cases[name][1]
        assert process.returncode == 2, f"{name}: exit {process.returncode}\n{stderr}"
        lines = stderr.splitlines()
        assert len(lines) == 1, f"{name}: more than one line on stderr:\n{stderr}"
        assert lines[0].startswith("gmat-sweep: error: "), name
        assert expected in lines[0], f"{name}: {lines[0]}"
        assert stdout == "", name
    assert not (tmp_path / "a").exists(), "validation failed but --out was created"


def run_side_by_side(
    cases: dict[str, tuple[list[str | Path], dict[str, str]]], cwd: Path
) -> dict[str, Result]:
    """Run independent ``python -m gmat_sweep`` commands at once, to pay start-up once."""
    running = {
        name: subprocess.Popen(
            [sys.executable, "-m", "gmat_sweep", *map(str, args)],
            cwd=cwd,
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, (args, env) in cases.items()
    }
    done = {}
    for name, process in running.items():
        stdout, stderr = process.communicate(timeout=240)
        done[name] = Result(process.returncode, stdout, stderr)
    return done


@pytest.mark.slow
def test_version_and_no_arguments(tmp_path: Path) -> None:
    version = console("--version", cwd=tmp_path)
    assert version.code == 0, version.stderr
    lines = version.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["gmat_sweep", "gmat-run", "engine", "python"]
    assert lines[2].startswith("engine gmatpy ")
    assert lines[3] == f"python {platform.python_version()}"

    bare = console(cwd=tmp_path)
    assert bare.code == 2
    assert bare.stdout == ""
    assert bare.stderr.startswith("usage: gmat-sweep")
    assert "give a command: run, monte-carlo" in bare.stderr


@pytest.mark.slow
def test_shell_completion_with_argcomplete(tmp_path: Path) -> None:
    answers = tmp_path / "completions"
    line = "gmat-sweep resume study --on"
    env = dict(
        os.environ,
        _ARGCOMPLETE="1",
        _ARGCOMPLETE_IFS="\n",
        COMP_LINE=line,
        COMP_POINT=str(len(line)),
        _ARGCOMPLETE_STDOUT_FILENAME=str(answers),
    )
    result = console(cwd=tmp_path, env=env)
    assert result.code == 0, result.stderr
    assert answers.read_text().split() == ["--only"]


@pytest.mark.slow
def test_could_not_run_is_exit_3_in_one_line(
    grid_sweep: tuple[Path, Result], tmp_path: Path, leo_basic: Path
) -> None:
    study, _ = grid_sweep
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "manifest.jsonl").write_text('not json\n{"kind": "entry"}\n')
    (tmp_path / "taken.csv").mkdir()
    grid = ["run", leo_basic, "--param", "Sat.SMA=7000,7100", "--dry-run"]
    cases: dict[str, tuple[list[str | Path], dict[str, str]]] = {
        "corrupt manifest": (["show", corrupt], {}),
        "storage (OSError)": (["export", study, "--to", "taken.csv"], {}),
        "engine": ([*grid, "--out", "engine"], {"GMAT_ROOT": str(tmp_path / "no-gmat")}),
        "backend": ([*grid, "--cluster", "slurm", "--jobs", "1", "--workers", "2"], {}),
    }
    results = run_side_by_side(cases, tmp_path)
    for name, result in results.items():
        assert result.code == 3, f"{name}: exit {result.code}\n{result.stderr}"
        assert "Traceback" not in result.stderr, name
        errors = [line for line in result.stderr.splitlines() if "error" in line]
        assert len(errors) == 1 and errors[0].startswith("gmat-sweep: error: "), result.stderr
    assert "not a manifest header" in results["corrupt manifest"].stderr
    assert "GMAT_ROOT=" in results["engine"].stderr
    assert (
        "gmat-sweep: warning: --workers has no effect with --cluster" in results["backend"].stderr
    )
    assert not (tmp_path / "engine").exists()


@pytest.mark.slow
def test_dry_run_previews_validates_and_writes_nothing(tmp_path: Path, leo_basic: Path) -> None:
    cases: dict[str, tuple[list[str | Path], dict[str, str]]] = {
        "grid": (
            ["run", leo_basic, "--param", "Sat.SMA=7000:7400:5", "--param", "Sat.INC=28.5,51.6",
             "--out", "planned", "--dry-run"], {},
        ),
        "lhs": (
            ["lhs", leo_basic, "-n", "4", "--perturb", "Sat.Cd=uniform(2.0,2.4)", "--seed", "3",
             "--out", "planned-lhs", "--dry-run", "--json"], {},
        ),
        "unknown field": (
            ["run", leo_basic, "--param", "Sat.SMAX=7000,7100", "--out", "bad", "--dry-run"], {},
        ),
        "verbose dask": (
            ["run", leo_basic, "--param", "Sat.SMA=7000,7100", "--backend", "dask", "--workers",
             "1", "-v", "--out", "planned-dask", "--dry-run"], {},
        ),
    }  # fmt: skip
    results = run_side_by_side(cases, tmp_path)
    grid = results["grid"]
    assert grid.code == 0, grid.stderr
    assert "Sat.INC: 2 values 28.5, 51.6\n" in grid.stderr
    assert "Sat.SMA: 5 values 7000 … 7400 (step 100)\n" in grid.stderr
    assert "10 runs of " in grid.stderr
    assert "nothing was run or written" in grid.stdout
    lhs = results["lhs"]
    assert lhs.code == 0, lhs.stderr
    plan = json.loads(lhs.stdout)
    assert plan["dry_run"] is True
    assert plan["runs"] == 4
    assert plan["axes"] == {"Sat.Cd": "uniform(2, 2.4)"}
    assert plan["seed"] == 3
    assert results["unknown field"].code == 2
    verbose = results["verbose dask"]
    assert verbose.code == 0, verbose.stderr
    assert "gmat-sweep: backend: dask (DaskPool), 1 worker(s)" in verbose.stderr
    assert re.search(r"gmat-sweep: Dask dashboard: http://\S+/status", verbose.stderr)
    assert "unknown field 'SMAX'" in results["unknown field"].stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.slow
def test_json_tells_a_quiet_script_where_the_sweep_is(tmp_path: Path, leo_basic: Path) -> None:
    # Without --out: the sweep directory is new, and only --json's object says where it is.
    grid: list[str | Path] = ["run", leo_basic, "--param", "Sat.SMA=7000,7100", "--quiet"]
    results = run_side_by_side({"json": ([*grid, "--json"], {}), "quiet": (grid, {})}, tmp_path)
    ran, quiet = results["json"], results["quiet"]
    assert (quiet.code, quiet.stdout, quiet.stderr) == (0, "", "")
    assert ran.code == 0, ran.stderr
    assert ran.stderr == ""
    facts = json.loads(ran.stdout)
    out = Path(facts["output_dir"])
    assert out.parent == tmp_path
    assert len(list(tmp_path.glob("gmat-sweep-leo_basic-*/manifest.jsonl"))) == 2
    assert (out / "manifest.jsonl").is_file()
    assert (facts["runs"], facts["ok"], facts["failed"], facts["missing"]) == (2, 2, 0, 0)
    assert facts["failures"] == []
    assert facts["exit_code"] == 0
    assert facts["wall_s"] > 0
    assert set(facts["versions"]) == {"gmat_sweep", "gmat-run", "engine", "python"}

    shown = gmat_sweep("show", out, "--json", cwd=tmp_path)
    assert shown.code == 0, shown.stderr
    summary = json.loads(shown.stdout)
    assert summary["ok"] == 2
    assert summary["attempts"] == 2
    assert summary["outputs"]["report__RF"] == {"runs": 2, "rows": len(frame_of(out))}
    assert set(summary["run_s"]) == {"min", "p50", "p90", "p99", "max"}


def test_quiet_keeps_rays_start_up_lines_off_stderr(tmp_path: Path, leo_basic: Path) -> None:
    # -q prints only errors: Ray's "Started a local Ray instance" (INFO) and its token
    # notice (WARNING) are neither.
    ran = console(
        "run", leo_basic, "--param", "Sat.SMA=7000", "--backend", "ray", "--workers", "1",
        "--out", tmp_path / "s", "-q", cwd=tmp_path,
    )  # fmt: skip
    assert (ran.code, ran.stdout, ran.stderr) == (0, "", "")
    assert len(frame_of(tmp_path / "s")) > 0


@pytest.mark.slow
def test_fields_lists_values_and_override_classes(tmp_path: Path, leo_basic: Path) -> None:
    cases: dict[str, tuple[list[str | Path], dict[str, str]]] = {
        "table": (["fields", leo_basic], {}),
        "json": (["fields", leo_basic, "FM", "RF", "--match", "fILE", "--json"], {}),
        "unknown resource": (["fields", leo_basic, "Sat", "Satellite"], {}),
    }
    results = run_side_by_side(cases, tmp_path)
    table = results["table"]
    assert table.code == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0] == "Sat (Spacecraft)"
    assert re.search(r"^  Sat\.SMA +6778\.137 +Real +live$", table.stdout, re.MULTILINE)
    assert re.search(
        r"^  FM\.GravityField\.Earth\.Degree +4 +Integer +load-time$", table.stdout, re.MULTILINE
    )
    assert re.search(r"^  RF\.Filename +'leo_basic\.txt' +Filename +refused$", table.stdout, re.M)
    assert "Prop (Propagator)" in lines
    # stdout is the table alone (`| grep load-time` finds fields only); the legend is on stderr.
    row = re.compile(r"^(\S+ \(\w+\)|  \S+ +.+ +(live|load-time|refused))$")
    assert [line for line in lines if not row.match(line)] == []
    assert table.stderr.startswith("override: live = ")

    listed = results["json"]
    assert listed.code == 0, listed.stderr
    found = json.loads(listed.stdout)
    assert found["mission"] == str(leo_basic)
    assert {(f["path"], f["value"], f["override"]) for f in found["fields"]} == {
        ("FM.GravityField.Earth.PotentialFile", "JGM2.cof", "load-time"),
        ("RF.Filename", "leo_basic.txt", "refused"),
        ("RF.AppendToExistingFile", False, "live"),
    }
    assert set(found["fields"][0]) == {
        "resource", "resource_type", "path", "field_type", "value", "override"
    }  # fmt: skip

    unknown = results["unknown resource"]
    assert unknown.code == 2
    assert unknown.stdout == ""
    assert unknown.stderr.startswith("gmat-sweep: error: ")
    assert "no resource 'Satellite'" in unknown.stderr
    assert "Sat, FM, Prop, RF" in unknown.stderr


@pytest.fixture(scope="module")
def grid_sweep(tmp_path_factory: pytest.TempPathFactory, leo_basic: Path) -> tuple[Path, Result]:
    """A 3 x 2 grid sweep run by ``gmat-sweep run``."""
    work = tmp_path_factory.mktemp("cli")
    result = gmat_sweep(
        "run", leo_basic, "--param", "Sat.SMA=7000:7400:3", "--param", "Sat.INC=28.5,51.6",
        "--out", "study", "--no-progress", cwd=work,
    )  # fmt: skip
    return work / "study", result


@pytest.mark.slow
def test_run_sweeps_the_grid(grid_sweep: tuple[Path, Result]) -> None:
    out, result = grid_sweep
    assert result.code == 0, result.stderr
    assert "ok: 6" in result.stdout
    assert "failed: 0" in result.stdout
    manifest = Manifest.load(out / "manifest.jsonl")
    assert manifest.run_count == 6
    assert sorted({e.overrides["Sat.SMA"] for e in manifest.entries}) == [7000.0, 7200.0, 7400.0]
    assert sorted({e.overrides["Sat.INC"] for e in manifest.entries}) == [28.5, 51.6]


@pytest.mark.slow
def test_show_summarises_the_sweep(grid_sweep: tuple[Path, Result]) -> None:
    out, _ = grid_sweep
    result = gmat_sweep("show", out, cwd=out.parent)
    assert result.code == 0, result.stderr
    rows = len(frame_of(out))
    text = result.stdout
    assert re.search(r"6 runs — ok 6, failed 0, missing 0", text), text
    assert "grid Sat.INC (2) x Sat.SMA (3)" in text
    assert re.search(r"wall \d+\.\d s; per run min .* p50 .* p90 .* p99 .* max", text), text
    assert f"output report__RF: 6 runs, {rows} rows" in text


@pytest.mark.slow
def test_show_counts_an_ok_run_whose_output_is_gone_as_missing(
    grid_sweep: tuple[Path, Result], tmp_path: Path
) -> None:
    """As resume does: ``--only missing`` re-runs it, so show does not call the sweep complete."""
    out, _ = grid_sweep
    copy = tmp_path / "study"
    shutil.copytree(out, copy)
    (copy / "run-000004" / "report__RF.parquet").unlink()
    result = gmat_sweep("show", copy, "--json", cwd=tmp_path)
    assert result.code == 1, result.stderr
    facts = json.loads(result.stdout)
    assert (facts["ok"], facts["missing"], facts["missing_run_ids"]) == (5, 1, [4])
    assert facts["outputs"]["report__RF"]["runs"] == 5
    text = gmat_sweep("show", copy, cwd=tmp_path)
    assert text.code == 1
    assert "6 runs — ok 5, failed 0, missing 1" in text.stdout, text.stdout
    assert "missing (1): run_ids 4 (1 ok run whose output files are gone)" in text.stdout


@pytest.mark.slow
def test_a_reader_that_stops_early_ends_the_command_quietly(
    grid_sweep: tuple[Path, Result],
) -> None:
    # `gmat-sweep show study | head -1`: the reader closes the pipe before the command writes.
    out, _ = grid_sweep
    command = [sys.executable, "-m", "gmat_sweep", "show", str(out)]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert child.stdout is not None and child.stderr is not None
    child.stdout.close()
    with child.stderr:
        stderr = child.stderr.read().decode()
    assert child.wait(timeout=240) == 141, stderr  # 128 + SIGPIPE, as a shell reports it
    assert stderr == ""


@pytest.fixture(scope="module")
def two_reports(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """A one-run sweep of plane_change, whose runs write two reports, 'Track' and 'Result'."""
    work = tmp_path_factory.mktemp("two-reports")
    ran = gmat_sweep("run", data_dir / "plane_change.script", "--param", "TargetApo.Value=7400",
                     "--out", "study", "--quiet", cwd=work)  # fmt: skip
    assert ran.code == 0, ran.stderr
    return work / "study"


@pytest.mark.slow
@pytest.mark.parametrize(
    "command",
    [["export", "--to", "x.csv"], ["report", "--to", "x.html"], ["sensitivity", "Sat.TotalMass"],
     ["bound", "Sat.TotalMass"]],
    ids=lambda command: command[0],
)  # fmt: skip
def test_a_read_that_needs_a_report_name_says_which_option_gives_it(
    two_reports: Path, tmp_path: Path, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    verb, *rest = command
    rest = [str(tmp_path / arg) if arg.startswith("x.") else arg for arg in rest]
    assert main([verb, str(two_reports), *rest]) == 2
    assert capsys.readouterr().err == (
        "gmat-sweep: error: the sweep produced 2 report outputs ('Track', 'Result'); "
        "pass --name to choose one, e.g. --name Track\n"
    )
    assert main([verb, str(two_reports), *rest, "--name", "Trak"]) == 2
    assert capsys.readouterr().err == (
        "gmat-sweep: error: report 'Trak' was not produced by any ok run; the sweep's report "
        "outputs are 'Track', 'Result'; pass one of those, e.g. --name Track\n"
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [(None, "the mission writes 2 ('Track', 'Result')"),
     ("Trak", "the mission has no ReportFile 'Trak'; its ReportFiles are 'Track', 'Result'")],
)  # fmt: skip
def test_adaptive_stopping_checks_its_report_before_any_run(
    data_dir: Path, tmp_path: Path, name: str | None, expected: str,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    # The rule is recorded for resume: found wrong after the first batch, it could never go on.
    out = tmp_path / "adaptive"
    command = ["monte-carlo", str(data_dir / "plane_change.script"), "-n", "2", "--perturb",
               "TargetApo.Value=uniform(7300,7500)", "--until", "Sat.TotalMass:0.1", "--max-n",
               "4", "--out", str(out)]  # fmt: skip
    assert main(command + ([] if name is None else ["--name", name])) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err, err
    assert "--name" in err and "'Track'" in err, err
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    "command",
    [["export", "x.csv", "--name", "Track"], ["report", "x.html", "--name", "Track"],
     ["archive", "x.zip"]],
    ids=lambda command: command[0],
)  # fmt: skip
def test_a_file_writer_refuses_a_missing_directory_before_reading_anything(
    two_reports: Path, tmp_path: Path, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    verb, target, *rest = command
    missing = tmp_path / "no such dir"
    assert main([verb, str(two_reports), "--to", str(missing / target), *rest]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gmat-sweep: error: ") and err.count("\n") == 1, err
    assert f"{missing}" in err and "does not exist" in err, err
    assert not missing.exists()


@pytest.mark.slow
def test_export_of_a_mission_that_writes_only_an_ephemeris(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (data_dir / "burn_ephemeris.script").read_text()
    mission = tmp_path / "ephemeris_only.script"  # burn_ephemeris without its ReportFile
    mission.write_text("\n".join(line for line in text.splitlines() if "Track" not in line))
    ran = gmat_sweep("run", mission, "--param", "Kick.Element1=0.01,0.02", "--out", "study",
                     "--quiet", cwd=tmp_path)  # fmt: skip
    assert ran.code == 0, ran.stderr
    study = tmp_path / "study"
    # The report export has nothing to write: say which option exports what the runs wrote.
    assert main(["export", str(study), "--to", str(tmp_path / "r.csv")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--kind ephemeris" in err and "'Oem'" in err, err
    assert not (tmp_path / "r.csv").exists()
    assert main(["export", str(study), "--to", str(tmp_path / "r.csv"), "--name", "Oem"]) == 2
    assert "--kind ephemeris" in capsys.readouterr().err

    target = tmp_path / "oem.parquet"
    assert main(["export", str(study), "--to", str(target), "--kind", "ephemeris"]) == 0
    assert "wrote " in capsys.readouterr().out
    expected = Sweep.from_manifest(study / "manifest.jsonl", mission, backend=None)
    pd.testing.assert_frame_equal(
        pd.read_parquet(target), expected.to_pandas(kind="ephemeris"), check_freq=False
    )


@pytest.mark.slow
def test_export_to_parquet_and_csv(grid_sweep: tuple[Path, Result], tmp_path: Path) -> None:
    out, _ = grid_sweep
    expected = frame_of(out)
    parquet = gmat_sweep("export", out, "--to", tmp_path / "results.parquet", cwd=tmp_path)
    assert parquet.code == 0, parquet.stderr
    assert f"wrote {len(expected)} rows of 6 runs" in parquet.stdout
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "results.parquet"), expected)
    csv = gmat_sweep("export", out, "--to", "results.csv", "--name", "RF", cwd=tmp_path)
    assert csv.code == 0, csv.stderr
    table = pd.read_csv(tmp_path / "results.csv")
    assert len(table) == len(expected)
    assert list(table.columns[:2]) == ["run_id", "time"]
    assert sorted(table["run_id"].unique()) == list(range(6))


@pytest.mark.slow
def test_an_unreadable_results_file_is_a_one_line_error(
    grid_sweep: tuple[Path, Result], tmp_path: Path
) -> None:
    original, _ = grid_sweep
    out = tmp_path / "damaged sweep"
    shutil.copytree(original, out)
    (out / "run-000002" / "report__RF.parquet").write_bytes(b"PAR1 cut short")
    for command in (["export", out, "--to", tmp_path / "x.parquet"], ["show", out]):
        result = gmat_sweep(*command, cwd=tmp_path)
        assert result.code == 3, result.stderr
        assert "Traceback" not in result.stderr
        assert len(result.stderr.splitlines()) == 1, result.stderr
        # Either the reader names the run and its file, or the CLI names the Arrow error
        # and the command that re-runs the damaged runs.
        if "(Arrow" in result.stderr:
            suggested = re.search(r"`(gmat-sweep resume [^`]*)`", result.stderr)
            assert suggested is not None, result.stderr
            assert shlex.split(suggested[1]) == ["gmat-sweep", "resume", str(out)]
        else:
            assert "report 'RF' of run 2" in result.stderr
            assert "resume" in result.stderr


@pytest.mark.slow
def test_a_sweep_whose_mission_moved_is_told_where_it_is_with_script(
    tmp_path: Path, leo_basic: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "missions").mkdir()
    shutil.copy(leo_basic, tmp_path / "missions" / "leo.script")
    ran = gmat_sweep("run", "missions/leo.script", "--param", "Sat.Cd=2.2", "--out", "study",
                     "--quiet", cwd=tmp_path)  # fmt: skip
    assert ran.code == 0, ran.stderr
    (tmp_path / "missions").rename(tmp_path / "moved")
    study, moved = str(tmp_path / "study"), str(tmp_path / "moved" / "leo.script")
    for command in (["resume", study], ["script", study, "0"],
                    ["archive", study, "--to", str(tmp_path / "a.zip")]):  # fmt: skip
        assert main(command) == 2, command
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "leo.script" in err, err
        assert "--script PATH" in err, err
    assert main(["archive", study, "--to", str(tmp_path / "a.zip"), "--script", moved]) == 0
    assert zipfile.ZipFile(tmp_path / "a.zip").read("mission/leo.script") == leo_basic.read_bytes()


@pytest.mark.slow
def test_script_refuses_a_mission_whose_include_changed(
    tmp_path: Path, leo_basic: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(leo_basic, tmp_path / "body.script")
    (tmp_path / "main.script").write_text("#Include 'body.script'\n")
    ran = gmat_sweep("run", "main.script", "--param", "Sat.Cd=2.3", "--out", "study", "--quiet",
                     cwd=tmp_path)  # fmt: skip
    assert ran.code == 0, ran.stderr
    body = tmp_path / "body.script"
    body.write_text(body.read_text().replace("Sat.DryMass = 500", "Sat.DryMass = 900"))
    assert main(["script", str(tmp_path / "study"), "0"]) == 2
    err = capsys.readouterr().err
    assert "included file 'body.script' changed since the sweep ran" in err, err


@pytest.mark.slow
def test_resume_after_deleting_manifest_lines(
    grid_sweep: tuple[Path, Result], tmp_path: Path, leo_basic: Path
) -> None:
    original, _ = grid_sweep
    out = tmp_path / "crashed"
    shutil.copytree(original, out)
    manifest = out / "manifest.jsonl"
    lines = manifest.read_text().splitlines(keepends=True)
    manifest.write_text("".join(lines[:3]))  # header + 2 runs: as if the driver died
    assert len(entry_lines(out)) == 2

    drifted = tmp_path / "drifted.script"
    drifted.write_text(leo_basic.read_text() + "% an edit after the sweep\n")
    refused = gmat_sweep("resume", out, "--script", drifted, cwd=tmp_path)
    assert refused.code == 2
    assert len(refused.stderr.splitlines()) == 1
    assert "changed since the sweep ran" in refused.stderr
    assert "--allow-script-drift" in refused.stderr
    assert len(entry_lines(out)) == 2

    # OUT_DIR alone: the manifest records the mission's path.
    resumed = gmat_sweep("resume", out, "--no-progress", cwd=tmp_path)
    assert resumed.code == 0, resumed.stderr
    assert "ok: 6" in resumed.stdout
    assert len(entry_lines(out)) == 6
    pd.testing.assert_frame_equal(frame_of(out), frame_of(original))


@pytest.mark.slow
def test_failed_runs_exit_1_and_show_lists_them(tmp_path: Path, fails_at_runtime: Path) -> None:
    spec = tmp_path / "idx.toml"
    spec.write_text("[grid]\nIdx.Value = [1, 4, 2]\n")  # 4 fails inside GMAT
    result = gmat_sweep(
        "run", fails_at_runtime, "--spec", spec, "--out", "broken sweep", "--quiet", cwd=tmp_path
    )
    assert result.code == 1
    assert result.stdout == ""
    assert "1 of 3 runs failed" in result.stderr
    # The commands it suggests can be pasted into a shell: a path with a space is quoted.
    suggested = [shlex.split(text) for text in re.findall(r"`([^`]*)`", result.stderr)]
    out = str(tmp_path / "broken sweep")
    assert ["gmat-sweep", "show", out] in suggested, result.stderr
    assert ["gmat-sweep", "resume", out] in suggested, result.stderr

    shown = gmat_sweep("show", "broken sweep", cwd=tmp_path)
    assert shown.code == 1
    assert "3 runs — ok 2, failed 1, missing 0" in shown.stdout
    assert "failed (1): GmatRunError: GMAT RunScript returned status 0; expected 1" in shown.stdout
    assert "run_ids 1\n" in shown.stdout
    assert "broken sweep/run-000001/gmat.log" in shown.stdout
    assert "output report__RF: 2 runs" in shown.stdout


@pytest.mark.slow
def test_an_interrupted_sweep_says_where_it_is_and_still_prints_its_json(
    tmp_path: Path, slow: Path
) -> None:
    # No --out and --quiet: the JSON object is how a script learns the directory, so an
    # interrupt (Ctrl-C, or SIGTERM from a CI job's timeout) must not lose it.
    work = tmp_path / "my work"
    work.mkdir()
    command = [sys.executable, "-m", "gmat_sweep", "run", str(slow), "--param",
               "Days.Value=0,100", "--workers", "1", "--json", "--quiet"]  # fmt: skip
    driver = subprocess.Popen(
        command, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(
        '"entry"' in path.read_text() for path in work.glob("*/manifest.jsonl")
    ):
        time.sleep(0.1)  # until run 0 is recorded; run 1 takes minutes
    driver.send_signal(signal.SIGTERM)
    stdout, stderr = driver.communicate(timeout=60)
    assert driver.returncode == 130, stderr
    facts = json.loads(stdout)
    out = Path(facts["output_dir"])
    assert out.parent == work
    assert (facts["ok"], facts["missing"], facts["exit_code"]) == (1, 1, 130)
    resume = re.search(r"`(gmat-sweep resume [^`]*)`", stderr)
    assert resume is not None, stderr
    assert shlex.split(resume[1]) == ["gmat-sweep", "resume", str(out)]


@pytest.mark.slow
def test_resume_only_missing_then_only_failed(tmp_path: Path, fails_at_runtime: Path) -> None:
    spec = tmp_path / "idx.toml"
    spec.write_text("[grid]\nIdx.Value = [1, 4, 2]\n")  # run 1 (4) fails inside GMAT
    first = gmat_sweep(
        "run", fails_at_runtime, "--spec", spec, "--out", "broken", "--quiet", cwd=tmp_path
    )
    assert first.code == 1
    out = tmp_path / "broken"
    manifest = out / "manifest.jsonl"
    lines = manifest.read_text().splitlines(keepends=True)
    manifest.write_text("".join(line for line in lines if '"run_id":2,' not in line))
    assert len(entry_lines(out)) == 2

    missing = gmat_sweep("resume", out, "--only", "missing", "--json", cwd=tmp_path)
    assert missing.code == 1, missing.stderr
    facts = json.loads(missing.stdout)
    assert (facts["ok"], facts["failed"], facts["missing"]) == (2, 1, 0)
    assert facts["failures"][0]["run_ids"] == [1]
    assert facts["failures"][0]["error"].startswith("GmatRunError: GMAT RunScript returned")
    attempts = read_all_entries(manifest)
    assert sorted(e.run_id for e in attempts) == [0, 1, 2]

    failed = gmat_sweep(
        "resume", out, "--only", "failed", "--retries", "0", "--timeout", "60", "--json",
        cwd=tmp_path,
    )  # fmt: skip
    assert failed.code == 1, failed.stderr
    attempts = read_all_entries(manifest)
    assert len(attempts) == 4
    assert attempts[-1].run_id == 1
    assert json.loads(failed.stdout)["failed"] == 1


@pytest.mark.slow
@pytest.mark.parametrize("command", ["monte-carlo", "lhs"])
def test_stochastic_commands_record_their_seed(
    command: str, tmp_path: Path, leo_basic: Path
) -> None:
    result = gmat_sweep(
        command, leo_basic, "-n", "4", "--perturb", "Sat.SMA=normal(7000,5)",
        "--perturb", "Sat.Cd=uniform(2.0,2.4)", "--seed", "11", "--out", "draws",
        "--no-progress", cwd=tmp_path,
    )  # fmt: skip
    assert result.code == 0, result.stderr
    assert "ok: 4" in result.stdout
    assert "seed: 11" in result.stdout
    manifest = Manifest.load(tmp_path / "draws" / "manifest.jsonl")
    assert manifest.sweep_seed == 11
    assert manifest.parameter_spec["_kind"] == command.replace("-", "_").replace(
        "lhs", "latin_hypercube"
    )
    cds = [e.overrides["Sat.Cd"] for e in manifest.entries]
    assert len(set(cds)) == 4
    assert all(2.0 <= cd <= 2.4 for cd in cds)

    extended = gmat_sweep("extend", "draws", "-n", "1", "-v", "--no-progress", cwd=tmp_path)
    if command == "lhs":
        assert extended.code == 2
        assert "cannot extend a 'latin_hypercube' sweep" in extended.stderr
        return
    assert extended.code == 0, extended.stderr
    assert "gmat-sweep: backend: local (LocalPool)" in extended.stderr
    grown = Manifest.load(tmp_path / "draws" / "manifest.jsonl")
    assert grown.run_count == 5
    assert [grown.entry_for(i).overrides["Sat.Cd"] for i in range(4)] == [  # type: ignore[union-attr]
        manifest.entry_for(i).overrides["Sat.Cd"]  # type: ignore[union-attr]
        for i in range(4)
    ]


@pytest.mark.slow
def test_demo(tmp_path: Path) -> None:
    result = gmat_sweep("demo", "--out", "demo", "--no-progress", cwd=tmp_path)
    assert result.code == 0, result.stderr
    assert "20 real GMAT runs" in result.stdout
    assert "final SMA" in result.stdout
    assert "ok: 20" in result.stdout
    assert "gmat-sweep show" in result.stdout
    assert len(entry_lines(tmp_path / "demo")) == 20


@pytest.mark.slow
def test_sweep_on_s3_with_credentials_from_the_environment(
    s3_server: S3Server,  # noqa: F811
    tmp_path: Path,
    leo_basic: Path,
) -> None:
    env = dict(
        os.environ,
        AWS_ACCESS_KEY_ID=s3_server.key,
        AWS_SECRET_ACCESS_KEY=s3_server.secret,
        AWS_ENDPOINT_URL=s3_server.endpoint,
        AWS_DEFAULT_REGION="us-east-1",
    )
    out = s3_server.url(f"cli-{uuid.uuid4().hex[:8]}")
    ran = console(
        "run", leo_basic, "--param", "Sat.SMA=7000,7100", "--out", out, "--no-progress",
        cwd=tmp_path, env=env,
    )  # fmt: skip
    assert ran.code == 0, ran.stderr
    shown = console("show", out, cwd=tmp_path, env=env)
    assert shown.code == 0, shown.stderr
    assert "2 runs — ok 2, failed 0, missing 0" in shown.stdout
    exported = console("export", out, "--to", "s3.csv", cwd=tmp_path, env=env)
    assert exported.code == 0, exported.stderr
    rows = re.search(r"output report__RF: 2 runs, (\d+) rows", shown.stdout)
    assert rows is not None
    assert len(pd.read_csv(tmp_path / "s3.csv")) == int(rows[1])


@pytest.mark.slow
def test_sampler_sensitivity_and_bound_commands(tmp_path: Path) -> None:
    mission = Path(__file__).parent / "data" / "leo_basic.script"
    out = tmp_path / "qmc"
    ran = gmat_sweep(
        "monte-carlo", mission, "-n", "32", "--sampler", "sobol", "--seed", "3",
        "--perturb", "Sat.Cd=uniform(2.0,2.4)", "--perturb", "Sat.DryMass=uniform(400,600)",
        "--out", out, "--quiet", cwd=tmp_path,
    )  # fmt: skip
    assert ran.code == 0, ran.stderr
    header = json.loads((out / "manifest.jsonl").read_text().splitlines()[0])
    assert header["parameter_spec"]["sampler"] == "sobol"
    table = gmat_sweep("sensitivity", out, "Sat.Earth.SMA", cwd=tmp_path)
    assert table.code == 0, table.stderr
    assert table.stdout.startswith("pawn sensitivity of Sat.Earth.SMA (last row of each run): 32")
    assert "Sat.Cd" in table.stdout and "Sat.DryMass" in table.stdout
    bound = gmat_sweep("bound", out, "Sat.Earth.SMA", "--coverage", "0.9", "--confidence", "0.9",
                       cwd=tmp_path)  # fmt: skip
    assert bound.code == 0, bound.stderr
    assert "upper" in bound.stdout and "order statistic 32 of 32" in bound.stdout
    too_few = gmat_sweep("bound", out, "Sat.Earth.SMA", "--coverage", "0.99", "--confidence",
                         "0.99", cwd=tmp_path)  # fmt: skip
    assert too_few.code == 2, too_few.stderr
    assert "459" in too_few.stderr  # wilks_n(0.99, 0.99): the runs it needs


@pytest.mark.slow
def test_sobol_morris_and_adaptive_monte_carlo_commands(tmp_path: Path, data_dir: Path) -> None:
    ishigami = data_dir / "ishigami.script"
    x1, x2 = "X1.Value=-3.1416:3.1416", "X2.Value=-3.1416:3.1416"
    adaptive = ["monte-carlo", ishigami, "-n", "4", "--perturb", "X1.Value=uniform(-3,3)",
                "--until", "Y:0.01", "--batch", "3", "--max-n", "10", "--seed", "5"]  # fmt: skip
    cases: dict[str, tuple[list[str | Path], dict[str, str]]] = {
        "sobol": (["sobol", ishigami, "--bounds", x1, "--bounds", x2, "-n", "2", "--seed", "1",
                   "--out", "sobol", "--json", "--no-progress"], {}),
        "morris": (["morris", ishigami, "--bounds", x1, "--trajectories", "2", "--levels", "6",
                    "--out", "morris", "--json", "--quiet"], {}),
        "adaptive": ([*adaptive, "--out", "adaptive", "--json", "--no-progress"], {}),
        "dry sobol": (["sobol", ishigami, "--bounds", x1, "--bounds", x2, "-n", "4",
                       "--second-order", "--out", "dry-sobol", "--dry-run", "--json"], {}),
        "dry adaptive": ([*adaptive, "--out", "dry-adaptive", "--dry-run"], {}),
        "bad field": (["morris", ishigami, "--bounds", "X9.Value=0:1", "--trajectories", "2",
                       "--out", "bad", "--dry-run"], {}),
        "bad levels": (["morris", ishigami, "--bounds", x1, "--trajectories", "2", "--levels",
                        "3", "--out", "bad"], {}),
    }  # fmt: skip
    results = run_side_by_side(cases, tmp_path)
    for name in ("sobol", "morris", "adaptive", "dry sobol", "dry adaptive"):
        assert results[name].code == 0, f"{name}: {results[name].stderr}"
    sobol = json.loads(results["sobol"].stdout)
    assert (sobol["runs"], sobol["ok"]) == (8, 8)  # n (D + 2)
    assert sobol["parameters"] == (
        "sobol design, n=2: X1.Value in [-3.1416, 3.1416], X2.Value in [-3.1416, 3.1416]"
    )
    assert Manifest.load(tmp_path / "sobol" / "manifest.jsonl").parameter_spec["_kind"] == "sobol"
    morris = json.loads(results["morris"].stdout)
    assert (morris["runs"], morris["ok"], morris["exit_code"]) == (4, 4, 0)  # T (D + 1)
    header = Manifest.load(tmp_path / "morris" / "manifest.jsonl").parameter_spec
    assert (header["_kind"], header["levels"], header["trajectories"]) == ("morris", 6, 2)
    ran = json.loads(results["adaptive"].stdout)
    assert ran["runs"] == 10 and ran["stopped"]["reason"] == "max_n"  # 4 + 3 + 3
    assert ran["stopped"]["n"] == 10 and ran["stopped"]["half_width"] > 0.01
    assert "stopped at 10 runs: max_n reached" in results["adaptive"].stderr
    shown = gmat_sweep("show", "adaptive", cwd=tmp_path)
    assert shown.code == 0, shown.stderr
    assert (
        "adaptive: batches of 3 until the 95 % half-width of mean(Y) < 0.01, at most 10 runs"
        in (shown.stdout)
    )
    planned = json.loads(results["dry sobol"].stdout)
    assert (planned["dry_run"], planned["runs"]) == (True, 24)  # with --second-order: n (2D + 2)
    assert planned["axes"]["X2.Value"] == "uniform on -3.1416 … 3.1416"
    dry = results["dry adaptive"]
    assert "4 runs of " in dry.stderr and "then 3 at a time until the 95 % half-width" in dry.stderr
    assert "nothing was run or written" in dry.stdout
    assert results["bad field"].code == 2 and "X9" in results["bad field"].stderr
    assert (
        results["bad levels"].code == 2 and "even number of levels" in results["bad levels"].stderr
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adaptive", "morris", "sobol"]
