"""Run one page's examples in order, in one interpreter: ``python tests/doc_runner.py PLAN``.

``PLAN`` is a JSON list of steps, each ``{"where": ..., "kind": "python" | "bash", ...}``:

* a Python step runs the block's file as ``python FILE`` would (``__name__`` is
  ``"__main__"``, ``sys.argv[0]`` is the file, a fresh namespace), but in this
  interpreter, so a page pays for importing pandas, Dask and gmat_sweep once
  rather than once a block;
* a bash step runs ``bash -e -o pipefail -c TEXT`` as a child process;
* a write step writes ``text`` to ``path`` (an input file the next steps use).

Each step prints ``=== <where>`` first. The first step that fails (an
exception, a non-zero ``SystemExit`` or exit status) prints its traceback and
``FAILED <where>`` on stderr, and the runner exits 1 without running the rest.
"""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
import traceback
from pathlib import Path


def _run_python(path: str) -> bool:
    sys.argv = [path]
    try:
        runpy.run_path(path, run_name="__main__")
    except SystemExit as stop:
        return stop.code in (None, 0)
    except BaseException:
        traceback.print_exc()
        return False
    return True


def _run_bash(text: str) -> bool:
    done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", text], check=False)
    return done.returncode == 0


def _write(path: str, text: str) -> bool:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(text, encoding="utf-8")
    return True


def main() -> int:
    steps = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    sys.path[0] = os.getcwd()  # where the blocks are, as for ``python block.py``
    for step in steps:
        print(f"=== {step['where']}", flush=True)
        print(f"=== {step['where']}", file=sys.stderr, flush=True)
        if step["kind"] == "write":
            ok = _write(step["path"], step["text"])
        elif step["kind"] == "python":
            ok = _run_python(step["path"])
        else:
            ok = _run_bash(step["text"])
        sys.stdout.flush()
        sys.stderr.flush()
        if not ok:
            print(f"FAILED {step['where']}", file=sys.stderr, flush=True)
            return 1
    return 0


if __name__ == "__main__":  # a LocalCluster's workers re-import this file: run nothing then
    sys.exit(main())
