"""gmat_sweep: parallel, crash-safe, reproducible sweeps over NASA GMAT missions.

Importing this package starts no process, touches no network and does not
import GMAT; everything happens when a sweep runs. The public names below are
imported on first use, so a GMAT worker process that only needs
:mod:`gmat_sweep.worker` does not pay for Dask and the aggregation stack.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from importlib import import_module
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gmat_sweep.aggregate import lazy_contacts, lazy_ephemerides, lazy_multiindex
    from gmat_sweep.analysis import wilks_n
    from gmat_sweep.api import latin_hypercube, monte_carlo, morris, open_sweep, sobol, sweep
    from gmat_sweep.backends.base import Pool
    from gmat_sweep.backends.dask import DaskPool
    from gmat_sweep.backends.joblib import LocalJoblibPool
    from gmat_sweep.backends.local import LocalPool
    from gmat_sweep.backends.ray import RayPool
    from gmat_sweep.distributions import DistSpec, derive_param_seed
    from gmat_sweep.errors import (
        BackendError,
        EngineError,
        GmatSweepError,
        ManifestCorruptError,
        RunFailed,
        SweepConfigError,
    )
    from gmat_sweep.grid import expand_grid_to_run_specs, full_factorial
    from gmat_sweep.manifest import (
        MANIFEST_SCHEMA_VERSION,
        Manifest,
        ManifestEntry,
    )
    from gmat_sweep.mission import fields
    from gmat_sweep.script import canonical_script_sha256
    from gmat_sweep.spec import RunOutcome, RunSpec, RunStatus, SweepSpec
    from gmat_sweep.sweep import Sweep

_LAZY = {
    "BackendError": "gmat_sweep.errors",
    "DaskPool": "gmat_sweep.backends.dask",
    "DistSpec": "gmat_sweep.distributions",
    "EngineError": "gmat_sweep.errors",
    "GmatSweepError": "gmat_sweep.errors",
    "LocalJoblibPool": "gmat_sweep.backends.joblib",
    "LocalPool": "gmat_sweep.backends.local",
    "MANIFEST_SCHEMA_VERSION": "gmat_sweep.manifest",
    "Manifest": "gmat_sweep.manifest",
    "ManifestCorruptError": "gmat_sweep.errors",
    "ManifestEntry": "gmat_sweep.manifest",
    "Pool": "gmat_sweep.backends.base",
    "RayPool": "gmat_sweep.backends.ray",
    "RunFailed": "gmat_sweep.errors",
    "RunOutcome": "gmat_sweep.spec",
    "RunSpec": "gmat_sweep.spec",
    "RunStatus": "gmat_sweep.spec",
    "Sweep": "gmat_sweep.sweep",
    "SweepConfigError": "gmat_sweep.errors",
    "SweepSpec": "gmat_sweep.spec",
    "canonical_script_sha256": "gmat_sweep.script",
    "derive_param_seed": "gmat_sweep.distributions",
    "expand_grid_to_run_specs": "gmat_sweep.grid",
    "fields": "gmat_sweep.mission",
    "full_factorial": "gmat_sweep.grid",
    "latin_hypercube": "gmat_sweep.api",
    "lazy_contacts": "gmat_sweep.aggregate",
    "lazy_ephemerides": "gmat_sweep.aggregate",
    "lazy_multiindex": "gmat_sweep.aggregate",
    "monte_carlo": "gmat_sweep.api",
    "morris": "gmat_sweep.api",
    "open_sweep": "gmat_sweep.api",
    "sobol": "gmat_sweep.api",
    "wilks_n": "gmat_sweep.analysis",
}

__version__ = "0.1.0"

__all__ = [
    "MANIFEST_SCHEMA_VERSION",
    "BackendError",
    "DaskPool",
    "DistSpec",
    "EngineError",
    "GmatSweepError",
    "LocalJoblibPool",
    "LocalPool",
    "Manifest",
    "ManifestCorruptError",
    "ManifestEntry",
    "Pool",
    "RayPool",
    "RunFailed",
    "RunOutcome",
    "RunSpec",
    "RunStatus",
    "Sweep",
    "SweepConfigError",
    "SweepSpec",
    "__version__",
    "canonical_script_sha256",
    "derive_param_seed",
    "expand_grid_to_run_specs",
    "fields",
    "full_factorial",
    "latin_hypercube",
    "lazy_contacts",
    "lazy_ephemerides",
    "lazy_multiindex",
    "monte_carlo",
    "morris",
    "open_sweep",
    "sobol",
    "sweep",
    "wilks_n",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'gmat_sweep' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


class _Package(ModuleType):
    """This package's class: ``gmat_sweep.sweep`` is the function, whatever was imported.

    The submodule :mod:`gmat_sweep.sweep` shares the function's name, and
    importing it (directly, or through ``gmat_sweep.api``) makes the import
    system set the package attribute ``sweep`` to the submodule, which would
    hide :func:`__getattr__`. A data descriptor on the module's class wins over
    both: it reads the function from ``gmat_sweep.api`` on every access and
    ignores the import system's assignment. Any other assignment (a test's
    ``mock.patch("gmat_sweep.sweep")``) holds until it is deleted or undone.
    """

    @property
    def sweep(self) -> Callable[..., Any]:
        if _PATCHED in self.__dict__:
            patched: Callable[..., Any] = self.__dict__[_PATCHED]
            return patched
        from gmat_sweep.api import sweep

        return sweep

    @sweep.setter
    def sweep(self, value: object) -> None:
        if value is getattr(sys.modules.get("gmat_sweep.api"), "sweep", None):
            self.__dict__.pop(_PATCHED, None)  # a patch undone: follow gmat_sweep.api again
        elif value is not sys.modules.get("gmat_sweep.sweep"):
            self.__dict__[_PATCHED] = value

    @sweep.deleter
    def sweep(self) -> None:
        self.__dict__.pop(_PATCHED, None)


_PATCHED = "_patched_sweep"

sys.modules[__name__].__class__ = _Package
