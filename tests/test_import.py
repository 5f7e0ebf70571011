"""Importing gmat_sweep starts nothing: no GMAT, no optional backends, no processes.

It does not import pandas, pyarrow or scipy either (0.7 s here): GMAT worker
processes and ``gmat-sweep --help`` import the package too.
"""

from __future__ import annotations

import subprocess
import sys

import pytest


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


def _run_fresh(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("module", ["gmat_sweep.worker", "gmat_sweep.backends._subprocess"])
def test_gmat_host_modules_do_not_import_dask(module: str) -> None:
    # Every GMAT host process imports these (one host per run without
    # reuse_gmat_context); Dask and the sweep-building stack are the driver's,
    # and a host writing local files has no use for fsspec.
    done = _run_fresh(
        f"import sys, {module}\n"
        "driver_only = {'dask', 'distributed', 'fsspec', 'gmat_sweep.api', 'gmat_sweep.graph',\n"
        "               'gmat_sweep.plan', 'gmat_sweep.sweep'}\n"
        "print(sorted(driver_only & set(sys.modules)))\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", done.stdout


@pytest.mark.parametrize(
    "first",
    [
        "import gmat_sweep.sweep as m",
        "from gmat_sweep.sweep import Sweep",
        "import gmat_sweep.api",
        "import gmat_sweep.worker",
        "from gmat_sweep import Sweep",
        "from gmat_sweep import LocalPool",
        "import gmat_sweep",
    ],
)
def test_sweep_is_the_function_in_every_import_order(first: str) -> None:
    # The submodule gmat_sweep.sweep and the function gmat_sweep.sweep share a
    # name: importing the submodule, whenever it happens, must not shadow the function.
    done = _run_fresh(
        f"{first}\n"
        "import sys, gmat_sweep, gmat_sweep.api, gmat_sweep.sweep\n"
        "module = sys.modules['gmat_sweep.sweep']\n"
        "assert gmat_sweep.sweep is gmat_sweep.api.sweep, gmat_sweep.sweep\n"
        "from gmat_sweep import sweep, Sweep, LocalPool\n"
        "assert sweep is gmat_sweep.api.sweep, sweep\n"
        "from gmat_sweep.sweep import Sweep as S\n"
        "assert S is Sweep is module.Sweep and isinstance(Sweep, type), (S, Sweep)\n"
        "assert module.__name__ == 'gmat_sweep.sweep', module\n"
        "assert gmat_sweep.sweep is gmat_sweep.api.sweep, gmat_sweep.sweep\n"
        "assert 'sweep' in dir(gmat_sweep) and dir(gmat_sweep) == sorted(gmat_sweep.__all__)\n"
    )
    assert done.returncode == 0, done.stderr


def test_gmat_sweep_sweep_can_be_patched_where_callers_look_it_up() -> None:
    # Code that calls gmat_sweep.sweep(...) is tested by patching that name, with
    # unittest.mock or pytest's monkeypatch; the import system's binding of the submodule
    # (done by hand here: the patch itself imports it) must not replace the patch.
    done = _run_fresh(
        "from unittest import mock\n"
        "import sys, pytest, gmat_sweep\n"
        "with mock.patch('gmat_sweep.sweep') as patched:\n"
        "    assert gmat_sweep.sweep is patched, gmat_sweep.sweep\n"
        "    gmat_sweep.sweep = sys.modules['gmat_sweep.sweep']\n"
        "    assert gmat_sweep.sweep is patched, gmat_sweep.sweep\n"
        "assert gmat_sweep.sweep is gmat_sweep.api.sweep, gmat_sweep.sweep\n"
        "with pytest.MonkeyPatch.context() as monkeypatch:\n"
        "    monkeypatch.setattr(gmat_sweep, 'sweep', print)\n"
        "    assert gmat_sweep.sweep is print, gmat_sweep.sweep\n"
        "assert gmat_sweep.sweep is gmat_sweep.api.sweep, gmat_sweep.sweep\n"
        "with mock.patch('gmat_sweep.api.sweep') as patched:\n"
        "    assert gmat_sweep.sweep is patched, gmat_sweep.sweep\n"
    )
    assert done.returncode == 0, done.stderr
