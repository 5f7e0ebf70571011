"""The README and the docs site: every example runs, and ``mkdocs build --strict`` passes.

How examples are executed
-------------------------
Each Markdown file (``README.md`` and every ``docs/**/*.md``) gets its own
working directory, in which ``tests/data`` is reachable (a symlink to this
repository's), so examples name missions as ``tests/data/leo_basic.script``.
Its fenced blocks run in document order, so a later block may use what an
earlier one wrote (a sweep directory, an exported file):

* `````python`` blocks run as a script would (``python block.py``: its own
  namespace, ``__name__ == "__main__"``), one after another in one interpreter
  per page (``tests/doc_runner.py``), which imports pandas, Dask and
  gmat_sweep once a page rather than once a block;
* `````bash`` blocks run with ``bash -e`` and the venv's ``gmat-sweep`` first
  on ``PATH``; every command in them must be a ``gmat-sweep`` command;
* a block preceded by ``<!-- write-file: PATH -->`` is not run: its text is
  written to ``PATH`` (for input files the next examples use);
* a block preceded by ``<!-- not-executed: REASON -->`` is not run. In the
  README only the two setup commands (create the venv, run the test suite)
  carry it; in ``docs/`` it marks examples that need infrastructure the test
  machine does not have (a batch system, a remote scheduler), with the reason;
* blocks in any other language (``json``, ``yaml``, ``text``, ``console`` ...)
  are illustrations and are not run. The README has none.

Every executed block must exit 0.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import doctest
import importlib
import json
import os
import pkgutil
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

import gmat_sweep

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
DOCUMENTS = [README, *sorted(DOCS.rglob("*.md"))]
RUNNABLE = {"python": "python", "py": "python", "bash": "bash", "sh": "bash"}
RUNNER = Path(__file__).resolve().parent / "doc_runner.py"
"""Runs a page's examples in order in one interpreter (see its docstring)."""
SETUP_COMMANDS = (
    "python3.12 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/gmat-sweep demo",
    "bash scripts/test.sh",
)

_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})\s*(?P<lang>[\w+-]*)")
_MARKER = re.compile(r"^\s*<!--\s*(?P<kind>not-executed|write-file):\s*(?P<value>.*?)\s*-->\s*$")


@dataclasses.dataclass(frozen=True)
class Block:
    """One fenced code block of a Markdown file."""

    document: Path
    line: int
    lang: str
    text: str
    marker: str | None
    marker_value: str

    @property
    def where(self) -> str:
        return f"{self.document.relative_to(ROOT)}:{self.line}"

    @property
    def runs(self) -> bool:
        return self.marker is None and self.lang in RUNNABLE


def blocks(document: Path) -> list[Block]:
    """The fenced blocks of ``document``, with the marker comment just above each."""
    lines = document.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        opening = _OPEN.match(lines[index])
        if opening is None:
            index += 1
            continue
        indent, fence = len(opening["indent"]), opening["fence"]
        body: list[str] = []
        end = index + 1
        while end < len(lines) and not lines[end].strip().startswith(fence):
            body.append(lines[end][indent:] if lines[end][:indent].isspace() else lines[end])
            end += 1
        previous = next((lines[i] for i in range(index - 1, -1, -1) if lines[i].strip()), "")
        marker = _MARKER.match(previous)
        found.append(
            Block(
                document=document,
                line=index + 1,
                lang=opening["lang"].lower(),
                text="\n".join(body) + "\n",
                marker=marker["kind"] if marker else None,
                marker_value=marker["value"] if marker else "",
            )
        )
        index = end + 1
    return found


def commands(text: str) -> list[str]:
    """The shell commands of a bash block: continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", text)
    return [
        line.strip() for line in joined.splitlines() if line.strip() and not line.startswith("#")
    ]


def _id(document: Path) -> str:
    return str(document.relative_to(ROOT))


# -- fast checks of the examples' form -------------------------------------------------


def test_readme_skips_only_the_two_setup_commands() -> None:
    found = blocks(README)
    skipped = [block for block in found if block.marker == "not-executed"]
    assert [block.text.strip() for block in skipped] == list(SETUP_COMMANDS)
    others = [block for block in found if block.marker is None]
    assert others, "the README has no executed examples"
    for block in others:
        assert block.lang in RUNNABLE, f"{block.where}: README blocks must be python or bash"


@pytest.mark.parametrize("document", DOCUMENTS, ids=_id)
def test_markers_and_commands_are_well_formed(document: Path) -> None:
    for block in blocks(document):
        if block.marker is not None:
            assert block.marker_value, f"{block.where}: a {block.marker} marker needs a value"
        if block.marker == "write-file":
            assert not Path(block.marker_value).is_absolute(), block.where
            assert ".." not in Path(block.marker_value).parts, block.where
        if block.runs and RUNNABLE[block.lang] == "bash":
            for command in commands(block.text):
                assert command.startswith("gmat-sweep "), (
                    f"{block.where}: bash examples run gmat-sweep commands only: {command!r}"
                )
        if block.runs and RUNNABLE[block.lang] == "python":
            ast.parse(block.text, filename=block.where)


def cells(row: str) -> int:
    """The number of cells of a Markdown table row (a ``|`` in code or escaped is text)."""
    text = re.sub(r"`[^`]*`|\\\|", "x", row.strip()).strip("|")
    return text.count("|") + 1


@pytest.mark.parametrize("document", DOCUMENTS, ids=_id)
def test_table_rows_have_as_many_cells_as_their_header(document: Path) -> None:
    # A row with a cell too many renders without it: the text it held is lost.
    fenced = {b.line + i for b in blocks(document) for i in range(b.text.count("\n") + 2)}
    header = None
    for number, line in enumerate(document.read_text(encoding="utf-8").splitlines(), 1):
        if number in fenced or not line.lstrip().startswith("|"):
            header = None
            continue
        if header is None:
            header = cells(line)
        assert cells(line) == header, f"{_id(document)}:{number}: {cells(line)} cells, not {header}"


API_PAGES = ("api.md", "api-extending.md")
"""The Python API reference: everyday use, and extending (pools, manifest, records)."""


def test_api_reference_covers_every_public_symbol() -> None:
    text = "\n".join((DOCS / "reference" / page).read_text(encoding="utf-8") for page in API_PAGES)
    documented = {}
    for path in re.findall(r"^::: ([\w.]+)", text, flags=re.MULTILINE):
        module, _, name = path.rpartition(".")
        try:  # a documented module, such as gmat_sweep.examples
            documented[path] = importlib.import_module(path)
        except ImportError:
            documented[path] = getattr(importlib.import_module(module), name)
    missing = [
        name
        for name in gmat_sweep.__all__
        if name != "__version__"
        and not any(obj is getattr(gmat_sweep, name) for obj in documented.values())
    ]
    assert not missing, f"docs/reference/{' and '.join(API_PAGES)} do not document {missing}"


def test_public_names_import_in_the_order_the_examples_use() -> None:
    """``from gmat_sweep import Sweep, monte_carlo, sweep`` (sorted, as linters sort it).

    Importing ``Sweep`` or ``monte_carlo`` loads the submodule ``gmat_sweep.sweep``;
    the name ``sweep`` must still be the function every example calls.
    """
    code = (
        "from gmat_sweep import LocalPool, Sweep, monte_carlo, sweep\n"
        "import gmat_sweep.api\n"
        "assert sweep is gmat_sweep.api.sweep, f'gmat_sweep.sweep is {sweep!r}'\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr


MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(gmat_sweep.__path__, "gmat_sweep.")
    if info.name not in ("gmat_sweep.__main__", "gmat_sweep.testing")  # a CLI run, pytest's
)


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples_run_and_print_what_they_show(
    module: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every ``>>>`` example not marked ``+SKIP`` (those need a mission run) passes as doctest."""
    monkeypatch.chdir(tmp_path)
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    result = doctest.testmod(importlib.import_module(module), optionflags=flags, verbose=False)
    assert result.failed == 0, f"{module}: {result.failed} docstring example(s) failed (see above)"


# -- the command-line reference against the parser and the --json object -------------

CLI_PAGE = DOCS / "reference" / "cli.md"


def _table_after(text: str, header: str) -> list[str]:
    """The first cell of each row of the Markdown table whose header row starts with ``header``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(line.split("|")[1].strip())
    return rows


def test_cli_reference_lists_every_command() -> None:
    from gmat_sweep.cli import _parser

    action = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    commands = {name for name, parser in action.choices.items() if parser.prog.endswith(name)}
    listed = {
        re.match(r"`([\w-]+)", cell)[1]  # type: ignore[index]
        for cell in _table_after(CLI_PAGE.read_text(encoding="utf-8"), "| command | does |")
    }
    assert commands - listed == set(), (
        f"docs/reference/cli.md's command table lacks {commands - listed}"
    )
    assert listed - commands == set(), f"docs/reference/cli.md lists unknown {listed - commands}"


def test_cli_reference_describes_every_json_key(tmp_path: Path) -> None:
    """``show --json`` of the schema page's example manifest (no GMAT): each key has a row."""
    header = next(
        b.text
        for b in blocks(DOCS / "reference" / "manifest-schema.md")
        if b.marker == "write-file"
    )
    (tmp_path / "manifest.jsonl").write_text(header, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "gmat_sweep", "show", str(tmp_path), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr  # its ok runs wrote no files here: missing
    keys = set(json.loads(done.stdout))
    described = {
        key
        for cell in _table_after(CLI_PAGE.read_text(encoding="utf-8"), "| key | value |")
        for key in re.findall(r"`(\w[\w-]*)`", cell)
    }
    assert keys - described == set(), (
        f"docs/reference/cli.md's --json table lacks {keys - described}"
    )


def test_every_exit_code_is_listed_where_exit_codes_are_listed() -> None:
    """``--help``'s epilog, the exit-codes page and the README name the same codes."""
    from gmat_sweep.cli import _EXIT_CODES

    codes = re.findall(r"^  (\d+) ", _EXIT_CODES, flags=re.MULTILINE)
    page = (DOCS / "reference" / "exit-codes.md").read_text(encoding="utf-8")
    assert re.findall(r"^\| (\d+) \|", page, flags=re.MULTILINE) == codes
    sentence = re.search(r"Exit codes: (.*?)every error", README.read_text(encoding="utf-8"), re.S)
    assert sentence is not None
    assert re.findall(r"\b(\d+)\s+[a-z]", sentence[1]) == codes, sentence[1]


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return {option for action in parser._actions for option in action.option_strings} - {"-h"}


_FLAG = re.compile(r"(?<![\w-])(--[a-z][\w-]*|-[a-zA-Z]\b)")
"""An option as the reference spells it: ``--out``, ``-n``."""


def test_cli_reference_names_only_options_that_exist_and_every_option() -> None:
    """Each option of cli.md's command table belongs to its command; the page names them all."""
    from gmat_sweep.cli import _parser

    parser = _parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    options = {name: _options(sub) for name, sub in action.choices.items()}
    text = CLI_PAGE.read_text(encoding="utf-8")
    for cell in _table_after(text, "| command | does |"):
        command = re.match(r"`([\w-]+)", cell)[1]  # type: ignore[index]
        unknown = set(_FLAG.findall(cell)) - options[command]
        assert not unknown, f"docs/reference/cli.md: `{command}` has no option {unknown}"
    prose = re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)
    prose = re.sub(r"`(pip|python3?) [^`]*`", "", prose)  # other programs' options
    named = set(_FLAG.findall(prose))
    every = _options(parser).union(*options.values())
    assert named - every == set(), f"docs/reference/cli.md names unknown options {named - every}"
    assert every - named == set(), f"docs/reference/cli.md does not describe {every - named}"


ENVIRONMENT_PAGE = DOCS / "reference" / "environment.md"
INTERNAL_VARIABLES = {"GMAT_SWEEP_TEST_TAG"}
"""Read by gmat_sweep.testing (a test helper) to find the processes a test started."""


def _variables_read(tree: ast.Module) -> set[str]:
    """The names of the environment variables a module reads (literals or module constants)."""
    constants = {
        node.targets[0].id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.targets[0], ast.Name)
        and isinstance(node.value, ast.Constant)
    }

    def is_environ(node: ast.AST) -> bool:
        return isinstance(node, ast.Attribute) and node.attr == "environ"

    keys: list[ast.AST] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
            if node.func.attr == "getenv" or (
                node.func.attr == "get" and is_environ(node.func.value)
            ):
                keys.append(node.args[0])
        elif isinstance(node, ast.Subscript) and is_environ(node.value):
            keys.append(node.slice)
        elif isinstance(node, ast.Compare) and any(is_environ(c) for c in node.comparators):
            keys.append(node.left)
    return {
        key.value if isinstance(key, ast.Constant) else constants[key.id]  # type: ignore[attr-defined]
        for key in keys
    }


def test_environment_page_lists_every_variable_gmat_sweep_reads() -> None:
    read = (
        set().union(
            *(
                _variables_read(ast.parse(path.read_text(encoding="utf-8")))
                for path in (ROOT / "gmat_sweep").rglob("*.py")
            )
        )
        - INTERNAL_VARIABLES
    )
    page = ENVIRONMENT_PAGE.read_text(encoding="utf-8")
    rows = [cells.split("|")[1] for cells in page.splitlines() if cells.startswith("| `")]
    listed = {name for row in rows for name in re.findall(r"`([A-Z_][A-Z0-9_]*)`", row)}
    assert read - listed == set(), f"docs/reference/environment.md lacks {read - listed}"
    ours = {name for name in listed if name.startswith(("GMAT", "XDG"))}
    assert ours - read == set(), f"environment.md lists {ours - read}, which nothing reads"
    from gmat_sweep.cli import _ENVIRONMENT

    assert all(name in _ENVIRONMENT for name in read if name.startswith("GMAT")), _ENVIRONMENT


# -- the examples, executed ------------------------------------------------------------

PAGES_AT_ONCE = 2
"""Pages whose examples run at the same time (each in its own directory and runner).

A page spends much of its time in one core (interpreters starting, imports,
the docs build), so two pages keep this machine's two cores busy.
"""

EXAMPLE_PAGES = [d for d in DOCUMENTS if any(b.runs for b in blocks(d))]


@dataclasses.dataclass(frozen=True)
class PageRun:
    """What running one page's examples (or the docs build) in ``directory`` printed."""

    directory: Path
    returncode: int
    stdout: str
    stderr: str


def _environment() -> dict[str, str]:
    """The examples' environment: the venv's console scripts first on PATH."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def _run(command: list[str], cwd: Path, env: dict[str, str], timeout: float) -> PageRun:
    done = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    return PageRun(cwd, done.returncode, done.stdout, done.stderr)


def _run_examples(document: Path, directory: Path) -> PageRun:
    """Run ``document``'s executed blocks in order in ``directory`` (see the module docstring)."""
    (directory / "tests").mkdir()
    (directory / "tests" / "data").symlink_to(ROOT / "tests" / "data")
    steps: list[dict[str, str]] = []
    for block in blocks(document):
        if block.marker == "write-file":
            write = {"path": block.marker_value, "text": block.text}
            steps.append({"where": block.where, "kind": "write", **write})
        elif block.runs and RUNNABLE[block.lang] == "python":
            script = directory / f"example_line_{block.line}.py"
            script.write_text(block.text, encoding="utf-8")
            steps.append({"where": block.where, "kind": "python", "path": script.name})
        elif block.runs:
            steps.append({"where": block.where, "kind": "bash", "text": block.text})
    plan = directory / "examples.json"
    plan.write_text(json.dumps(steps), encoding="utf-8")
    return _run([sys.executable, str(RUNNER), plan.name], directory, _environment(), 1500)


def _build_site(directory: Path) -> PageRun:
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(directory / "site")]
    return dataclasses.replace(_run(command, ROOT, env, 600), directory=directory)


def _executed_lines(document: Path) -> int:
    return sum(block.text.count("\n") for block in blocks(document) if block.runs)


@pytest.fixture(scope="module")
def page_runs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Future[PageRun]]]:
    """Every selected page's examples (and the selected docs build), started at once.

    They run :data:`PAGES_AT_ONCE` at a time, the longest pages first; each
    test waits for its own. Keys: a page's id, or ``"mkdocs"`` for the build.
    """
    selected = {item.name for item in request.session.items if item.module is sys.modules[__name__]}
    pages = [d for d in EXAMPLE_PAGES if f"test_examples_run[{_id(d)}]" in selected]
    executor = ThreadPoolExecutor(PAGES_AT_ONCE, thread_name_prefix="docs-page")
    runs: dict[str, Future[PageRun]] = {}
    if "test_mkdocs_build_strict" in selected:
        runs["mkdocs"] = executor.submit(_build_site, tmp_path_factory.mktemp("mkdocs"))
    for document in sorted(pages, key=_executed_lines, reverse=True):
        directory = tmp_path_factory.mktemp(document.stem)
        runs[_id(document)] = executor.submit(_run_examples, document, directory)
    yield runs
    executor.shutdown(wait=True, cancel_futures=True)


@pytest.mark.slow
@pytest.mark.timeout(1500)
@pytest.mark.parametrize("document", EXAMPLE_PAGES, ids=_id)
def test_examples_run(document: Path, page_runs: dict[str, Future[PageRun]]) -> None:
    done = page_runs[_id(document)].result()
    if done.returncode != 0:
        failed = done.stderr.rstrip().rsplit("FAILED ", 1)[-1] if "FAILED " in done.stderr else "?"
        example = next((b.text for b in blocks(document) if b.where == failed), "")
        pytest.fail(
            f"{failed}: the example failed (runner exit {done.returncode})\n--- example\n"
            f"{example}--- stdout\n{done.stdout[-4000:]}\n--- stderr\n{done.stderr[-6000:]}"
        )


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_mkdocs_build_strict(page_runs: dict[str, Future[PageRun]]) -> None:
    done = page_runs["mkdocs"].result()
    assert done.returncode == 0, done.stderr[-6000:]
    assert (done.directory / "site" / "reference" / "api" / "index.html").is_file()
