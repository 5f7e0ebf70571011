"""mkdocs hook: run the plot gallery's examples during the build and publish their PNGs.

The pictures of ``how-to/plots.md`` are not committed: this hook runs the
page's ``python`` blocks in order, each in a fresh interpreter, in a scratch
directory where ``tests/data`` is reachable (as ``tests/test_docs.py`` runs
them), and adds every PNG they save under ``gallery/`` to the site beside the
page. The build therefore runs a real 60-run sweep (a few seconds) and always
shows what today's code draws.
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

PAGE = "how-to/plots.md"
GALLERY = "gallery"
_PYTHON = re.compile(r"^```python\n(.*?)^```", flags=re.DOTALL | re.MULTILINE)


def _pictures(docs: Path) -> dict[str, bytes]:
    root = docs.parent
    blocks = _PYTHON.findall((docs / PAGE).read_text(encoding="utf-8"))
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
                raise RuntimeError(f"{PAGE}: python block {number + 1} failed\n{done.stderr}")
        return {path.name: path.read_bytes() for path in sorted((work / GALLERY).glob("*.png"))}


def on_files(files: Files, config: Any) -> Files:
    where = str(Path(PAGE).parent / GALLERY)
    for name, content in _pictures(Path(config["docs_dir"])).items():
        files.append(File.generated(config, f"{where}/{name}", content=content))
    return files
