"""gmat_sweep: parallel, crash-safe, reproducible sweeps over NASA GMAT missions.

Importing this package starts no process, touches no network and does not
import GMAT; everything happens when a sweep runs.
"""

from gmat_sweep.aggregate import lazy_contacts, lazy_ephemerides, lazy_multiindex
from gmat_sweep.api import latin_hypercube, monte_carlo, sweep
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
    canonical_script_sha256,
)
from gmat_sweep.spec import RunOutcome, RunSpec, RunStatus, SweepSpec
from gmat_sweep.sweep import Sweep

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
    "full_factorial",
    "latin_hypercube",
    "lazy_contacts",
    "lazy_ephemerides",
    "lazy_multiindex",
    "monte_carlo",
    "sweep",
]
