"""Importing gmat_sweep starts nothing: no GMAT, no optional backends, no processes.

It does not import pandas, pyarrow or scipy either (0.7 s here): GMAT worker
processes and ``gmat-sweep --help`` import the package too.
"""

from __future__ import annotations

import subprocess
import sys


def test_import_is_inert() -> None:
    code = (
        "import sys, threading, gmat_sweep\n"
        "from gmat_sweep import sweep, Sweep\n"
        "assert callable(sweep) and isinstance(Sweep, type), (sweep, Sweep)\n"
        "heavy = {'gmatpy', 'gmat_run', 'ray', 'joblib', 'distributed', 's3fs', 'dask_jobqueue',\n"
        "         'pandas', 'pyarrow', 'scipy'}\n"
        "loaded = sorted(heavy & set(sys.modules))\n"
        "assert not loaded, loaded\n"
        "assert threading.active_count() == 1, threading.enumerate()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_every_public_name_resolves() -> None:
    import gmat_sweep

    for name in gmat_sweep.__all__:
        assert getattr(gmat_sweep, name) is not None, name
    assert callable(gmat_sweep.sweep)
