"""mkdocs hook: run the examples of the pages that draw figures, and publish their PNGs.

The pictures of the pages in :data:`PAGES` are not committed: for each page
this hook runs its ``python`` blocks in order, each in a fresh interpreter,
in a scratch directory of its own where ``tests/data`` is reachable (as
``tests/test_docs.py`` runs them), and adds every PNG they save under
``gallery/`` to the site beside the page. The build therefore runs each
page's real sweeps (a few seconds) and always shows what today's code draws.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

PAGES = ("how-to/plots.md", "tutorials/results.md")
GALLERY = "gallery"
_PYTHON = re.compile(r"^```python\n(.*?)^```", flags=re.DOTALL | re.MULTILINE)


def _pictures(docs: Path, page: str) -> dict[str, bytes]:
    root = docs.parent
    blocks = _PYTHON.findall((docs / page).read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        (work / "tests").mkdir()
        (work / "tests" / "data").symlink_to(root / "tests" / "data")
        for number, block in enumerate(blocks):
            script = work / f"block_{number}.py"
            script.write_text(block, encoding="utf-8")
            done = subprocess.run(
                [sys.executable, script.name],
                cwd=work,
                env={**os.environ, "MPLBACKEND": "Agg"},
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            if done.returncode != 0:
                raise RuntimeError(f"{page}: python block {number + 1} failed\n{done.stderr}")
        return {path.name: path.read_bytes() for path in sorted((work / GALLERY).glob("*.png"))}


def on_files(files: Files, config: Any) -> Files:
    for page in PAGES:
        where = str(Path(page).parent / GALLERY)
        for name, content in _pictures(Path(config["docs_dir"]), page).items():
            files.append(File.generated(config, f"{where}/{name}", content=content))
    return files
