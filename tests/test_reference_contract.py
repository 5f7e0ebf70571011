"""Black-box checks of the public contract: the API reference and DESIGN.md.

Each test checks one concrete statement of ``spec/api-reference.txt`` (or of
DESIGN.md, which overrides the reference where it lists a deliberate
departure), through the names the reference gives: what is importable from where,
every documented signature, the documented exceptions for documented bad
inputs, the manifest's records and JSON field names, the ordering and
failure-as-row contracts, ``from_manifest``/``resume`` and the aggregation
functions. GMAT runs are few and shared per module; tests that run GMAT or
start processes are marked ``slow``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.metadata
import inspect
import itertools
import json
import platform
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import as_completed as futures_completed
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

import gmat_sweep
from gmat_sweep import (
    MANIFEST_SCHEMA_VERSION,
    BackendError,
    GmatSweepError,
    LocalJoblibPool,
    LocalPool,
    Manifest,
    ManifestCorruptError,
    ManifestEntry,
    Pool,
    RunFailed,
    RunOutcome,
    RunSpec,
    Sweep,
    SweepConfigError,
    canonical_script_sha256,
    expand_grid_to_run_specs,
    full_factorial,
    latin_hypercube,
    lazy_contacts,
    lazy_ephemerides,
    lazy_multiindex,
    monte_carlo,
)
from gmat_sweep.testing import ENDLESS_DAYS

DATA = Path(__file__).parent / "data"
LEO = DATA / "leo_basic.script"
FAILS = DATA / "fails_at_runtime.script"
MULTI = DATA / "multi_output.script"
PARSE_ERROR = DATA / "parse_error.script"

KW = inspect.Parameter.KEYWORD_ONLY
POS = inspect.Parameter.POSITIONAL_OR_KEYWORD
EMPTY = inspect.Parameter.empty


def _direct(
    out: Path,
    runs: Any,
    *,
    backend: Any = "local",
    script: Path = LEO,
    parameter_spec: Any = None,
    sweep_seed: Any = None,
) -> Sweep:
    """The reference's ``Sweep(...)`` constructor, its manifest at ``out/manifest.jsonl``."""
    return Sweep(
        runs=runs,
        backend=backend,
        manifest_path=out / "manifest.jsonl",
        output_dir=out,
        script_path=script,
        parameter_spec={"_kind": "grid", "grid": {}} if parameter_spec is None else parameter_spec,
        sweep_seed=sweep_seed,
        progress=False,
    )


# --------------------------------------------------------------------------- names


REFERENCE_NAMES = {
    # name -> the module the reference places it in
    "Sweep": "gmat_sweep.sweep",
    "sweep": "gmat_sweep.api",
    "monte_carlo": "gmat_sweep.api",
    "latin_hypercube": "gmat_sweep.api",
    "Pool": "gmat_sweep.backends.base",
    "LocalJoblibPool": None,
    "DaskPool": None,
    "RayPool": None,
    "RunSpec": "gmat_sweep.spec",
    "SweepSpec": "gmat_sweep.spec",
    "RunOutcome": "gmat_sweep.spec",
    "full_factorial": "gmat_sweep.grid",
    "expand_grid_to_run_specs": "gmat_sweep.grid",
    "MANIFEST_SCHEMA_VERSION": "gmat_sweep.manifest",
    "Manifest": "gmat_sweep.manifest",
    "ManifestEntry": "gmat_sweep.manifest",
    "canonical_script_sha256": "gmat_sweep.manifest",
    "lazy_multiindex": "gmat_sweep.aggregate",
    "lazy_ephemerides": "gmat_sweep.aggregate",
    "lazy_contacts": "gmat_sweep.aggregate",
    "GmatSweepError": "gmat_sweep.errors",
    "SweepConfigError": "gmat_sweep.errors",
    "RunFailed": "gmat_sweep.errors",
    "BackendError": "gmat_sweep.errors",
    "ManifestCorruptError": "gmat_sweep.errors",
    "DistSpec": "gmat_sweep.distributions",
    "derive_param_seed": "gmat_sweep.distributions",
}


@pytest.mark.parametrize("name", sorted(REFERENCE_NAMES))
def test_every_reference_name_is_exported_from_the_top_level(name: str) -> None:
    assert name in gmat_sweep.__all__
    value = getattr(gmat_sweep, name)
    module = REFERENCE_NAMES[name]
    if module is not None:
        assert getattr(importlib.import_module(module), name) is value


def test_the_modules_the_reference_cross_references_exist() -> None:
    assert callable(importlib.import_module("gmat_sweep.worker").run_one)
    subprocess_module = importlib.import_module("gmat_sweep.backends._subprocess")
    assert callable(subprocess_module.run_spec_in_subprocess)
    assert gmat_sweep.sweep is importlib.import_module("gmat_sweep.api").sweep


def test_records_are_dataclasses() -> None:
    for record in (RunSpec, gmat_sweep.SweepSpec, RunOutcome, Manifest, ManifestEntry):
        assert dataclasses.is_dataclass(record), record


def test_exception_hierarchy() -> None:
    assert issubclass(GmatSweepError, Exception)
    for error in (SweepConfigError, RunFailed, BackendError, ManifestCorruptError):
        assert issubclass(error, GmatSweepError)
    failed = RunFailed(3, "Traceback: boom")
    assert (failed.run_id, failed.stderr) == (3, "Traceback: boom")
    corrupt = ManifestCorruptError("bad line 2", Path("m.jsonl"))
    assert corrupt.path == Path("m.jsonl")


@pytest.mark.slow
def test_importing_the_package_imports_no_gmat_and_starts_nothing() -> None:
    code = (
        "import multiprocessing, sys, threading\n"
        "import gmat_sweep\n"
        "assert not {'gmatpy', 'gmat_run'} & set(sys.modules), sorted(sys.modules)\n"
        "assert not multiprocessing.active_children()\n"
        "assert threading.active_count() == 1, threading.enumerate()\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# --------------------------------------------------------------------------- signatures


def _params(function: Any) -> list[tuple[str, Any, Any]]:
    """(name, kind, default) of each parameter, without ``self``/``cls``."""
    return [
        (p.name, p.kind, p.default)
        for p in inspect.signature(function).parameters.values()
        if p.name not in {"self", "cls"}
    ]


def _starts_with(function: Any, expected: list[tuple[str, Any, Any]]) -> None:
    """The reference's parameters, with their kinds and defaults; extras are optional.

    Positional parameters must come first and in the reference's order;
    keyword-only ones may come in any order (a call cannot tell).
    """
    actual = _params(function)
    positional = [param for param in expected if param[1] is not KW]
    assert actual[: len(positional)] == positional, actual
    by_name = {name: (kind, default) for name, kind, default in actual}
    for name, kind, default in expected:
        assert by_name.get(name) == (kind, default), (name, by_name.get(name))
    named = {name for name, _, _ in expected}
    for name, kind, default in actual:
        if name not in named:
            assert default is not EMPTY or kind is inspect.Parameter.VAR_KEYWORD, name


def test_sweep_constructor_signature() -> None:
    _starts_with(
        Sweep.__init__,
        [
            ("runs", KW, EMPTY),
            ("backend", KW, EMPTY),
            ("manifest_path", KW, EMPTY),
            ("output_dir", KW, EMPTY),
            ("script_path", KW, EMPTY),
            ("parameter_spec", KW, EMPTY),
            ("sweep_seed", KW, None),
            ("progress", KW, True),
        ],
    )


def test_sweep_methods_signatures() -> None:
    assert isinstance(inspect.getattr_static(Sweep, "from_manifest"), classmethod)
    _starts_with(
        Sweep.from_manifest,
        [
            ("manifest_path", POS, EMPTY),
            ("script_path", POS, EMPTY),
            ("backend", KW, EMPTY),
            ("allow_script_drift", KW, False),
            ("progress", KW, True),
        ],
    )
    _starts_with(Sweep.run, [])
    _starts_with(Sweep.resume, [])
    for method in (Sweep.to_dataframe, Sweep.to_ephemerides, Sweep.to_contacts):
        _starts_with(method, [("name", POS, None)])


@pytest.mark.parametrize("function", [monte_carlo, latin_hypercube])
def test_stochastic_entry_point_signatures(function: Any) -> None:
    _starts_with(
        function,
        [
            ("mission", POS, EMPTY),
            ("n", KW, EMPTY),
            ("perturb", KW, EMPTY),
            ("seed", KW, None),
            ("backend", KW, None),
            ("out", KW, None),
            ("progress", KW, True),
        ],
    )


def test_pool_signatures() -> None:
    assert inspect.isabstract(Pool)
    assert Pool.__abstractmethods__ == {"submit", "as_completed"}
    _starts_with(Pool.submit, [("spec", POS, EMPTY)])
    _starts_with(Pool.as_completed, [("futures", POS, EMPTY)])
    _starts_with(LocalJoblibPool.__init__, [("workers", POS, -1), ("reuse_gmat_context", KW, True)])
    _starts_with(
        gmat_sweep.DaskPool.__init__,
        [
            ("client", KW, None),
            ("n_workers", KW, None),
            ("threads_per_worker", KW, 1),
            ("reuse_gmat_context", KW, True),
        ],
    )
    ray_params = _params(gmat_sweep.RayPool.__init__)
    assert ray_params == [
        ("address", KW, None),
        ("num_cpus", KW, None),
        ("reuse_gmat_context", KW, True),
        ("ray_init_kwargs", inspect.Parameter.VAR_KEYWORD, EMPTY),
    ]


def _field_names(record: Any) -> list[str]:
    return [field.name for field in dataclasses.fields(record)]


def test_record_fields_in_reference_order() -> None:
    assert _field_names(RunSpec)[:6] == [
        "script_path",
        "overrides",
        "output_dir",
        "run_id",
        "seed",
        "run_options",
    ]
    assert _field_names(gmat_sweep.SweepSpec)[:7] == [
        "mission_script_path",
        "runs",
        "backend",
        "backend_kwargs",
        "output_dir",
        "manifest_path",
        "sweep_seed",
    ]
    assert _field_names(RunOutcome)[:7] == [
        "run_id",
        "status",
        "output_paths",
        "duration_s",
        "stderr",
        "started_at",
        "ended_at",
    ]
    assert _field_names(Manifest)[:12] == [
        "script_sha256",
        "gmat_sweep_version",
        "gmat_run_version",
        "gmat_install_version",
        "python_version",
        "os_platform",
        "sweep_seed",
        "parameter_spec",
        "run_count",
        "backend",
        "schema_version",
        "entries",
    ]
    assert _field_names(ManifestEntry)[:9] == [
        "run_id",
        "overrides",
        "status",
        "output_paths",
        "started_at",
        "ended_at",
        "duration_s",
        "stderr",
        "log_path",
    ]
    sweep_seed = inspect.signature(gmat_sweep.SweepSpec).parameters["sweep_seed"]
    assert sweep_seed.default is None
    header = _header()
    assert header.backend == "unknown"
    assert header.schema_version == MANIFEST_SCHEMA_VERSION
    assert header.entries == []


def test_manifest_and_grid_function_signatures() -> None:
    assert isinstance(inspect.getattr_static(Manifest, "load"), classmethod)
    _starts_with(Manifest.load, [("path", POS, EMPTY)])
    _starts_with(Manifest.append_entry, [("entry", POS, EMPTY)])
    _starts_with(Manifest.find_failed, [])
    assert len(_params(Manifest.find_missing)) == 1
    assert isinstance(inspect.getattr_static(ManifestEntry, "from_outcome"), classmethod)
    _starts_with(
        ManifestEntry.from_outcome,
        [("outcome", POS, EMPTY), ("overrides", KW, EMPTY), ("log_path", KW, None)],
    )
    _starts_with(full_factorial, [("grid", POS, EMPTY)])
    _starts_with(
        expand_grid_to_run_specs,
        [("grid", POS, EMPTY), ("script_path", POS, EMPTY), ("output_dir", POS, EMPTY)],
    )
    for function in (lazy_multiindex, lazy_ephemerides):
        _starts_with(
            function,
            [
                ("manifest", POS, EMPTY),
                ("output_dir", POS, EMPTY),
                ("name", KW, None),
                ("spool", KW, True),
            ],
        )
    _starts_with(
        lazy_contacts,
        [("manifest", POS, EMPTY), ("output_dir", POS, EMPTY), ("name", KW, None)],
    )
    assert "spool" not in inspect.signature(lazy_contacts).parameters


# --------------------------------------------------------------------------- Pool


@pytest.mark.parametrize("value", [False, None, 1, "yes"])
def test_pool_subclass_that_is_not_subprocess_isolated_fails_at_class_creation(
    value: object,
) -> None:
    with pytest.raises(BackendError):

        class Bad(Pool):
            subprocess_isolated = value  # type: ignore[assignment]

            def submit(self, spec: RunSpec) -> Any:
                raise NotImplementedError

            def as_completed(self, futures: Any) -> Iterator[RunOutcome]:
                raise NotImplementedError


def test_pool_subclass_must_implement_both_abstract_methods() -> None:
    class Partial(Pool):
        subprocess_isolated = True

        def submit(self, spec: RunSpec) -> Any:
            raise NotImplementedError

    with pytest.raises(TypeError):
        Partial()  # type: ignore[abstract]


@pytest.mark.parametrize("workers", [0, -2, -7])
def test_local_joblib_pool_rejects_zero_and_other_negative_workers(workers: int) -> None:
    with pytest.raises(BackendError, match=str(workers)):
        LocalJoblibPool(workers)


@pytest.mark.parametrize(
    ("argument", "value"),
    [
        ("n_workers", 0),
        ("n_workers", -1),
        ("n_workers", 1.5),
        ("n_workers", True),
        ("n_workers", "2"),
        ("threads_per_worker", 0),
        ("threads_per_worker", -1),
        ("threads_per_worker", None),
    ],
)
def test_dask_pool_refuses_a_cluster_size_it_cannot_start(argument: str, value: object) -> None:
    # n_workers=-1 used to start a cluster with no workers, on which a sweep waited for
    # good; 0 and other values were silently replaced. No cluster starts before the refusal.
    with pytest.raises(BackendError, match=f"{argument}={value!r}"):
        gmat_sweep.DaskPool(**{argument: value})  # type: ignore[arg-type]


@pytest.mark.parametrize("client", ["tcp://127.0.0.1:8786", object()])
def test_dask_pool_refuses_a_client_that_is_not_a_distributed_client(client: object) -> None:
    # It was accepted, and the sweep then failed inside the pool with
    # "AttributeError: 'str' object has no attribute 'submit'".
    with pytest.raises(BackendError, match=r"client=.* is not a distributed\.Client") as caught:
        gmat_sweep.DaskPool(client=client)
    assert "DaskPool.connect" in str(caught.value)


@pytest.mark.parametrize("num_cpus", [0, -1, 1.5, True, "2"])
def test_ray_pool_refuses_num_cpus_it_cannot_run_on(num_cpus: object) -> None:
    # Every run asks Ray for one CPU: num_cpus=0 started a runtime on which a sweep
    # waited for good ("No available node types can fulfill resource request").
    with pytest.raises(BackendError, match=f"num_cpus={num_cpus!r}"):
        gmat_sweep.RayPool(num_cpus=num_cpus)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["no", 0, None])
@pytest.mark.parametrize(
    "make",
    [
        lambda value: LocalJoblibPool(1, reuse_gmat_context=value),
        lambda value: gmat_sweep.LocalPool(1, reuse_gmat_context=value),
        lambda value: gmat_sweep.DaskPool(n_workers=1, reuse_gmat_context=value),
        lambda value: gmat_sweep.RayPool(num_cpus=1, reuse_gmat_context=value),
    ],
    ids=["joblib", "local", "dask", "ray"],
)
def test_every_pool_refuses_a_reuse_gmat_context_that_is_not_a_bool(
    make: Any, value: object
) -> None:
    # reuse_gmat_context: bool. Before, "no" was truthy and silently meant reuse; the
    # refusal comes before any process, cluster or Ray runtime starts.
    with pytest.raises(BackendError, match=f"reuse_gmat_context={value!r}"):
        make(value)


@pytest.mark.slow
def test_local_joblib_pool_stores_reuse_gmat_context() -> None:
    with LocalJoblibPool(1, reuse_gmat_context=False) as pool:
        assert pool.subprocess_isolated is True
        assert pool._reuse_gmat_context is False


def test_a_subclass_of_a_concrete_pool_cannot_drop_isolation() -> None:
    with pytest.raises(BackendError, match="subprocess_isolated"):

        class Unsafe(LocalJoblibPool):
            subprocess_isolated = False  # type: ignore[assignment]


@pytest.mark.slow
def test_joblib_pool_without_context_reuse_runs_a_cross_script_sweep(tmp_path: Path) -> None:
    out = tmp_path / "s"
    runs = [
        RunSpec(LEO, {}, out / "run-000000", 0, None, {}),
        RunSpec(FAILS, {}, out / "run-000001", 1, None, {}),
    ]
    with LocalJoblibPool(1, reuse_gmat_context=False) as pool:
        _direct(out, runs, backend=pool, parameter_spec={}).run()
    entries = {entry.run_id: entry for entry in Manifest.load(out / "manifest.jsonl").entries}
    assert [entries[run_id].status for run_id in (0, 1)] == ["ok", "ok"]
    leo = pq.read_schema(out / entries[0].output_paths["report__RF"]).names
    fails = pq.read_schema(out / entries[1].output_paths["report__RF"]).names
    assert "Sat.Earth.SMA" in leo
    assert "Sat.Earth.RMAG" in fails


@pytest.mark.slow
@pytest.mark.parametrize("pool_class", [LocalJoblibPool, gmat_sweep.LocalPool])
def test_pool_submit_and_as_completed_used_directly(pool_class: Any, tmp_path: Path) -> None:
    specs = expand_grid_to_run_specs({"Idx.Value": [2, 5]}, FAILS, tmp_path / "s")
    with pool_class(1) as pool:
        futures = [pool.submit(spec) for spec in specs]
        assert all(isinstance(future, Future) for future in futures)
        outcomes = {outcome.run_id: outcome for outcome in pool.as_completed(futures)}
    assert set(outcomes) == {0, 1}
    ok, failed = outcomes[0], outcomes[1]
    assert (ok.status, ok.stderr) == ("ok", None)
    assert set(ok.output_paths) == {"report__RF"}
    assert Path(ok.output_paths["report__RF"]).is_file()
    assert Path(ok.output_paths["report__RF"]).parent == tmp_path / "s" / "run-000000"
    assert (failed.status, failed.output_paths) == ("failed", {})
    assert failed.stderr
    for outcome in (ok, failed):
        assert outcome.duration_s == (outcome.ended_at - outcome.started_at).total_seconds()


def test_every_pool_takes_reuse_gmat_context_keyword_only() -> None:
    for pool in (
        Pool,
        LocalJoblibPool,
        gmat_sweep.LocalPool,
        gmat_sweep.DaskPool,
        gmat_sweep.RayPool,
    ):
        parameter = inspect.signature(pool.__init__).parameters["reuse_gmat_context"]
        assert (parameter.kind, parameter.default) == (KW, True), pool


@pytest.mark.slow
def test_dask_pool_with_a_client_leaves_the_client_running(tmp_path: Path) -> None:
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        with gmat_sweep.DaskPool(client=client) as pool:
            result = gmat_sweep.sweep(
                FAILS, {"Idx.Value": [2, 5]}, backend=pool, out=tmp_path / "s", progress=False
            )
        assert result.manifest.find_failed() == [1]
        assert client.status == "running"
        assert client.submit(sum, [1, 2]).result() == 3


# --------------------------------------------------------------------------- grids


def test_full_factorial_reference_example() -> None:
    assert list(full_factorial({"b": [10, 20, 30], "a": [1, 2]})) == [
        {"a": 1, "b": 10},
        {"a": 1, "b": 20},
        {"a": 1, "b": 30},
        {"a": 2, "b": 10},
        {"a": 2, "b": 20},
        {"a": 2, "b": 30},
    ]


def test_full_factorial_emits_keys_in_lexicographic_order() -> None:
    for row in full_factorial({"z": [1], "m": [2], "a": [3]}):
        assert list(row) == ["a", "m", "z"]


def test_full_factorial_materialises_generators_once() -> None:
    rows = list(full_factorial({"a": (x for x in [1, 2]), "b": (y for y in [5, 6])}))
    assert rows == [{"a": 1, "b": 5}, {"a": 1, "b": 6}, {"a": 2, "b": 5}, {"a": 2, "b": 6}]


def test_full_factorial_of_nothing_is_one_empty_dict() -> None:
    assert list(full_factorial({})) == [{}]


@pytest.mark.parametrize(
    "grid",
    [{1: [1, 2]}, {"a": []}, {"a": [1], "b": iter([])}, {"a": [1], ("b",): [2]}],
)
def test_full_factorial_rejects_bad_grids(grid: Any) -> None:
    with pytest.raises(SweepConfigError):
        full_factorial(grid)  # materialised at entry: the call itself raises
    with pytest.raises(SweepConfigError):
        expand_grid_to_run_specs(grid, LEO, "/tmp/never-written")


def test_expand_grid_to_run_specs(tmp_path: Path) -> None:
    specs = expand_grid_to_run_specs(
        {"Sat.SMA": [7000.0, 7100.0], "Sat.ECC": [0.01]}, LEO, tmp_path
    )
    assert [spec.run_id for spec in specs] == [0, 1]
    assert [spec.overrides for spec in specs] == list(
        full_factorial({"Sat.SMA": [7000.0, 7100.0], "Sat.ECC": [0.01]})
    )
    for spec in specs:
        assert Path(spec.script_path) == LEO
        assert spec.seed is None
        assert spec.run_options == {}
        # DESIGN.md departure 5: run-NNNNNN, zero-padded to six digits.
        assert Path(spec.output_dir) == tmp_path / f"run-{spec.run_id:06d}"


def test_expand_grid_accepts_str_paths(tmp_path: Path) -> None:
    (spec,) = expand_grid_to_run_specs({}, str(LEO), str(tmp_path))
    assert spec.run_id == 0
    assert spec.overrides == {}


def _location_cases() -> list[Any]:
    calls = {
        "expand_grid_to_run_specs": lambda location: expand_grid_to_run_specs({}, LEO, location),
        "Manifest.load": lambda location: Manifest.load(location),
        "Sweep.from_manifest": lambda location: Sweep.from_manifest(
            location, LEO, backend="local", progress=False
        ),
        "sweep": lambda location: gmat_sweep.sweep(LEO, {}, out=location, progress=False),
    }
    return [
        pytest.param(call, location, id=f"{name}-{location!r}")
        for name, call in calls.items()
        for location in ([5] if name == "sweep" else [None, 5])  # out=None: a new directory
    ]


@pytest.mark.parametrize(("call", "location"), _location_cases())
def test_a_location_that_is_not_a_path_or_url_is_a_config_error(
    call: Any, location: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before, None and 5 were read as the relative paths 'None' and '5': run directories
    # 'None/run-000000', or "manifest .../None does not exist".
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SweepConfigError, match=rf"{location!r} of type {type(location).__name__}"):
        call(location)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- script hash


def test_canonical_script_sha256_normalises_line_endings_and_trailing_newlines(
    tmp_path: Path,
) -> None:
    expected = hashlib.sha256(b"Create Spacecraft Sat;\nSat.SMA = 7000;\n").hexdigest()
    variants = [
        b"Create Spacecraft Sat;\nSat.SMA = 7000;\n",
        b"Create Spacecraft Sat;\r\nSat.SMA = 7000;\r\n",
        b"Create Spacecraft Sat;\rSat.SMA = 7000;\r",
        b"Create Spacecraft Sat;\nSat.SMA = 7000;",
        b"Create Spacecraft Sat;\nSat.SMA = 7000;\n\n\n",
    ]
    for index, data in enumerate(variants):
        path = tmp_path / f"v{index}.script"
        path.write_bytes(data)
        assert canonical_script_sha256(path) == expected, data
    assert canonical_script_sha256(str(tmp_path / "v0.script")) == expected


# --------------------------------------------------------------------------- manifest


def _header(**changes: Any) -> Manifest:
    values: dict[str, Any] = {
        "script_sha256": "0" * 64,
        "gmat_sweep_version": "0.1.0",
        "gmat_run_version": "0.6.0",
        "gmat_install_version": "test",
        "python_version": "3.12",
        "os_platform": "test",
        "sweep_seed": None,
        "parameter_spec": {"_kind": "grid", "grid": {"Sat.SMA": [1.0, 2.0, 3.0]}},
        "run_count": 3,
    }
    values.update(changes)
    return Manifest(**values)


T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def _entry(run_id: int, status: str = "ok", **changes: Any) -> ManifestEntry:
    values: dict[str, Any] = {
        "run_id": run_id,
        "overrides": {"Sat.SMA": float(run_id)},
        "status": status,
        "output_paths": {},
        "started_at": T0,
        "ended_at": T0 + timedelta(seconds=1),
        "duration_s": 1.0,
        "stderr": None if status == "ok" else "boom",
        "log_path": None,
    }
    values.update(changes)
    return ManifestEntry(**values)


def test_run_outcome_helpers_compute_duration_from_the_timestamps() -> None:
    ok = RunOutcome.ok(4, {"report__RF": Path("a.parquet")}, T0, T0 + timedelta(seconds=2.5))
    assert (ok.run_id, ok.status, ok.stderr, ok.duration_s) == (4, "ok", None, 2.5)
    failed = RunOutcome.failed(5, "Traceback ...", T0, T0 + timedelta(seconds=0.25))
    assert (failed.status, failed.output_paths, failed.stderr) == ("failed", {}, "Traceback ...")
    assert failed.duration_s == 0.25


def test_manifest_entry_from_outcome_copies_the_outcome() -> None:
    outcome = RunOutcome.ok(2, {"report__RF": Path("run-000002/r.parquet")}, T0, T0 + timedelta(1))
    entry = ManifestEntry.from_outcome(
        outcome, overrides={"Sat.SMA": 7000.0}, log_path=Path("run-000002/gmat.log")
    )
    assert entry.run_id == 2
    assert entry.status == "ok"
    assert entry.overrides == {"Sat.SMA": 7000.0}
    assert entry.output_paths == {"report__RF": Path("run-000002/r.parquet")}
    assert (entry.started_at, entry.ended_at, entry.duration_s) == (
        outcome.started_at,
        outcome.ended_at,
        outcome.duration_s,
    )
    assert entry.stderr is None
    assert entry.log_path == Path("run-000002/gmat.log")
    assert ManifestEntry.from_outcome(outcome, overrides={}).log_path is None


HEADER_KEYS = {
    "kind",
    "schema_version",
    "script_sha256",
    "gmat_sweep_version",
    "gmat_run_version",
    "gmat_install_version",
    "python_version",
    "os_platform",
    "sweep_seed",
    "parameter_spec",
    "run_count",
    "backend",
}
ENTRY_KEYS = {
    "kind",
    "run_id",
    "overrides",
    "status",
    "output_paths",
    "started_at",
    "ended_at",
    "duration_s",
    "stderr",
    "log_path",
}


def test_manifest_round_trip_and_json_field_names(tmp_path: Path) -> None:
    path = tmp_path / "sweep" / "manifest.jsonl"
    path.parent.mkdir()
    manifest = _header(entries=[_entry(0)])
    manifest.save(path)
    manifest.append_entry(_entry(1, "failed"))
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(lines) == 3
    assert set(lines[0]) >= HEADER_KEYS
    assert lines[0]["kind"] == "header"
    assert lines[0]["schema_version"] == MANIFEST_SCHEMA_VERSION
    for line in lines[1:]:
        assert set(line) >= ENTRY_KEYS
        assert line["kind"] == "entry"
    assert lines[2]["status"] == "failed"
    loaded = Manifest.load(path)
    assert [entry.run_id for entry in loaded.entries] == [0, 1]
    assert loaded.entries[1] == manifest.entries[1]
    assert loaded.parameter_spec == manifest.parameter_spec
    assert (loaded.run_count, loaded.sweep_seed, loaded.backend) == (3, None, "unknown")


def test_manifest_load_tolerates_one_torn_final_line(tmp_path: Path) -> None:
    path = tmp_path / "manifest.jsonl"
    _header(entries=[_entry(0), _entry(1)]).save(path)
    with path.open("ab") as handle:
        handle.write(b'{"kind":"entry","run_id":2,"overr')
    assert [entry.run_id for entry in Manifest.load(path).entries] == [0, 1]


def test_manifest_load_rejects_a_corrupt_middle_line_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "manifest.jsonl"
    _header(entries=[_entry(0)]).save(path)
    text = path.read_text().splitlines()
    path.write_text("\n".join([text[0], "{not json", text[1]]) + "\n")
    with pytest.raises(ManifestCorruptError) as caught:
        Manifest.load(path)
    assert Path(caught.value.path) == path


def test_manifest_schema_versions(tmp_path: Path) -> None:
    path = tmp_path / "manifest.jsonl"
    _header(entries=[_entry(0)]).save(path)
    lines = path.read_text().splitlines()
    header = json.loads(lines[0])
    del header["schema_version"]
    path.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    assert Manifest.load(path).schema_version == 1
    header["schema_version"] = MANIFEST_SCHEMA_VERSION + 1
    path.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    with pytest.raises(ManifestCorruptError, match=str(MANIFEST_SCHEMA_VERSION + 1)):
        Manifest.load(path)


def test_find_failed_in_arrival_order_and_find_missing_in_input_order(tmp_path: Path) -> None:
    path = tmp_path / "manifest.jsonl"
    manifest = _header(run_count=6)
    manifest.save(path)
    for entry in (_entry(4, "failed"), _entry(0), _entry(2, "failed"), _entry(1, "failed")):
        manifest.append_entry(entry)
    assert manifest.find_failed() == [4, 2, 1]
    assert manifest.find_missing([5, 3, 2, 0]) == [5, 3]
    assert Manifest.load(path).find_failed() == [4, 2, 1]


def test_last_entry_of_a_run_wins(tmp_path: Path) -> None:
    path = tmp_path / "manifest.jsonl"
    manifest = _header()
    manifest.save(path)
    manifest.append_entry(_entry(0, "failed"))
    manifest.append_entry(_entry(1))
    manifest.append_entry(_entry(0))
    loaded = Manifest.load(path)
    assert loaded.find_failed() == []
    assert sorted(entry.run_id for entry in loaded.entries) == [0, 1]
    assert manifest.find_failed() == []


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize("function", [monte_carlo, latin_hypercube])
@pytest.mark.parametrize(
    ("n", "perturb"),
    [
        (2, {}),
        (0, {"Sat.SMA": ("normal", 7000.0, 1.0)}),
        (-1, {"Sat.SMA": ("normal", 7000.0, 1.0)}),
        (2, {"Sat.SMA": ("gaussian", 7000.0, 1.0)}),
        (2, {"Sat.SMA": ("normal", 7000.0)}),
        (2, {"Sat.SMA": ("normal", 7000.0, -1.0)}),
        (2, {"Sat.SMA": ("uniform", 7100.0, 7000.0)}),
        (2, {"Sat.SMA": "normal"}),
        (2, {"Sat.SMA": None}),
        (2, {"Sat.SMA": ("normal", "a", 1.0)}),
        (2, {"Sat.SMA": ("normal", float("nan"), 1.0)}),
        (2, {"Sat.SMA": ("lognormal", 1.0, 0.0)}),
        (2, {"Sat.SMA": scipy.stats.norm}),
        (2, {1: ("normal", 7000.0, 1.0)}),
        (2, None),
        (2.5, {"Sat.SMA": ("normal", 7000.0, 1.0)}),
        (True, {"Sat.SMA": ("normal", 7000.0, 1.0)}),
        # More runs than a manifest may describe (plan.MAX_RUNS): before, 2**70 escaped as
        # numpy's bare ValueError, and up to it every row was drawn before the refusal.
        (2**70, {"Sat.SMA": ("normal", 7000.0, 1.0)}),
        (10**12, {"Sat.SMA": ("normal", 7000.0, 1.0)}),
    ],
)
def test_stochastic_entry_points_reject_bad_input_before_any_run(
    function: Any, n: int, perturb: Any, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    with pytest.raises(SweepConfigError):
        function(LEO, n=n, perturb=perturb, seed=1, out=out, progress=False)
    assert not (out / "manifest.jsonl").exists()


def test_missing_script_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(SweepConfigError, match=r"nope\.script"):
        gmat_sweep.sweep(tmp_path / "nope.script", {}, out=tmp_path / "out", progress=False)


@pytest.mark.parametrize("mission", [None, 5, b"leo_basic.script", [LEO]])
@pytest.mark.parametrize(
    "entry_point",
    [
        lambda mission, out: gmat_sweep.sweep(mission, {}, out=out, progress=False),
        lambda mission, out: monte_carlo(
            mission, n=1, perturb={"Sat.SMA": ("normal", 7000.0, 1.0)}, out=out, progress=False
        ),
        lambda mission, out: latin_hypercube(
            mission, n=1, perturb={"Sat.SMA": ("normal", 7000.0, 1.0)}, out=out, progress=False
        ),
    ],
    ids=["sweep", "monte_carlo", "latin_hypercube"],
)
def test_a_mission_that_is_not_a_path_is_a_config_error(
    entry_point: Any, mission: object, tmp_path: Path
) -> None:
    # mission: str | Path. Before, anything else escaped as a bare TypeError from pathlib.
    out = tmp_path / "out"
    with pytest.raises(SweepConfigError, match="mission"):
        entry_point(mission, out)
    assert not out.exists()


# --------------------------------------------------------------------------- one sweep


@pytest.fixture(scope="module")
def failing_sweep(tmp_path_factory: pytest.TempPathFactory) -> Sweep:
    """Three runs of fails_at_runtime: run 1 (Idx.Value = 5) fails inside GMAT."""
    out = tmp_path_factory.mktemp("failing") / "sweep"
    return gmat_sweep.sweep(FAILS, {"Idx.Value": [2, 5, 3]}, out=out, progress=False)


def out_dir(sweep: Sweep) -> Path:
    return Path(sweep.output_dir)


REPORT_COLUMNS = ["Sat.UTCGregorian", "Sat.ElapsedSecs", "Sat.Earth.RMAG"]


@pytest.mark.slow
def test_sweep_returns_the_completed_sweep(failing_sweep: Sweep) -> None:
    assert isinstance(failing_sweep, Sweep)
    manifest = Manifest.load(Path(failing_sweep.manifest_path))
    assert manifest.parameter_spec["grid"] == {"Idx.Value": [2, 5, 3]}
    assert manifest.run_count == 3
    assert manifest.script_sha256 == canonical_script_sha256(FAILS)
    assert manifest.gmat_sweep_version == gmat_sweep.__version__
    assert manifest.gmat_run_version == importlib.metadata.version("gmat-run")
    assert manifest.python_version == platform.python_version()
    assert manifest.os_platform
    assert manifest.gmat_install_version
    assert manifest.sweep_seed is None
    assert manifest.find_failed() == [1]
    assert manifest.find_missing(range(3)) == []
    by_run = {entry.run_id: entry for entry in manifest.entries}
    assert by_run[1].status == "failed"
    assert by_run[1].output_paths == {}
    assert by_run[1].stderr
    # DESIGN.md: every run keeps its own GMAT log beside its outputs, failed runs too.
    assert by_run[1].log_path is not None
    assert (out_dir(failing_sweep) / by_run[1].log_path).is_file()
    for run_id in (0, 2):
        assert by_run[run_id].status == "ok"
        assert by_run[run_id].stderr is None
        assert set(by_run[run_id].output_paths) == {"report__RF"}
    assert by_run[1].overrides == {"Idx.Value": 5}
    for entry in manifest.entries:
        assert isinstance(entry.status, gmat_sweep.RunStatus)
        assert isinstance(entry.started_at, datetime)
        assert isinstance(entry.ended_at, datetime)
    report = pq.read_table(out_dir(failing_sweep) / by_run[0].output_paths["report__RF"])
    # The time key is a copy of the report's first datetime column.
    assert report.column("time").to_pylist() == report.column("Sat.UTCGregorian").to_pylist()
    for entry in manifest.entries:
        # Relative to the sweep root, so the directory can move.
        assert not any(Path(path).is_absolute() for path in entry.output_paths.values())
        assert entry.log_path is None or not Path(entry.log_path).is_absolute()
        assert all(isinstance(path, Path) for path in entry.output_paths.values())
    assert [run.run_id for run in failing_sweep.spec.runs] == [0, 1, 2]
    assert [run.overrides for run in failing_sweep.spec.runs] == [
        {"Idx.Value": 2},
        {"Idx.Value": 5},
        {"Idx.Value": 3},
    ]


@pytest.mark.slow
def test_failed_run_is_one_nan_row(failing_sweep: Sweep) -> None:
    frame = failing_sweep.to_pandas()
    assert list(frame.index.names) == ["run_id", "time"]
    assert sorted(set(frame.index.get_level_values("run_id"))) == [0, 1, 2]
    failed = frame.xs(1, level="run_id")
    assert len(failed) == 1
    assert pd.isna(failed.index[0])
    assert failed["__status"].iloc[0] == "failed"
    assert failed[REPORT_COLUMNS].isna().all(axis=None)
    # DESIGN.md departure 6: the failed row keeps its parameter column.
    assert failed["Idx.Value"].iloc[0] == 5
    ok = frame.drop(index=1, level="run_id")
    assert (ok["__status"] == "ok").all()
    assert ok.index.get_level_values("time").notna().all()
    assert ok.groupby(level="run_id").size().min() > 1
    assert frame.index.get_level_values("run_id").is_monotonic_increasing


@pytest.mark.slow
def test_lazy_multiindex_matches_the_sweep_frame(failing_sweep: Sweep) -> None:
    out = Path(failing_sweep.output_dir)
    manifest = Manifest.load(out / "manifest.jsonl")
    frame = lazy_multiindex(manifest, out)
    pd.testing.assert_frame_equal(frame, failing_sweep.to_pandas())
    pd.testing.assert_frame_equal(lazy_multiindex(manifest, out, spool=False), frame)
    pd.testing.assert_frame_equal(lazy_multiindex(manifest, out, name="RF"), frame)
    lazy = failing_sweep.to_dataframe()
    assert hasattr(lazy, "dask")
    assert len(lazy.compute()) == len(frame)


@pytest.mark.slow
def test_lazy_multiindex_unknown_name_is_a_config_error(failing_sweep: Sweep) -> None:
    out = Path(failing_sweep.output_dir)
    with pytest.raises(SweepConfigError, match="RF"):
        lazy_multiindex(Manifest.load(out / "manifest.jsonl"), out, name="NoSuchReport")


@pytest.mark.slow
def test_absolute_output_paths_are_used_as_is(failing_sweep: Sweep, tmp_path: Path) -> None:
    out = Path(failing_sweep.output_dir)
    manifest = Manifest.load(out / "manifest.jsonl")
    absolute = [
        dataclasses.replace(
            entry,
            output_paths={key: out / value for key, value in entry.output_paths.items()},
        )
        for entry in manifest.entries
    ]
    moved = dataclasses.replace(manifest, entries=absolute)
    pd.testing.assert_frame_equal(lazy_multiindex(moved, out), lazy_multiindex(manifest, out))


def _ok_entry(manifest: Manifest) -> ManifestEntry:
    return next(entry for entry in manifest.entries if entry.status == "ok")


@pytest.mark.slow
def test_ok_run_without_the_requested_report_is_a_row_with_ok_status(
    failing_sweep: Sweep,
) -> None:
    out = Path(failing_sweep.output_dir)
    manifest = Manifest.load(out / "manifest.jsonl")
    first = _ok_entry(manifest)
    other = dataclasses.replace(
        first,
        run_id=3,
        output_paths={"ephemeris__E": first.output_paths["report__RF"]},
        unwritten=("report__RF",),
    )
    extended = dataclasses.replace(manifest, entries=[*manifest.entries, other], run_count=4)
    frame = lazy_multiindex(extended, out, name="RF")
    row = frame.xs(3, level="run_id")
    assert len(row) == 1
    assert row["__status"].iloc[0] == "ok"
    assert row[REPORT_COLUMNS].isna().all(axis=None)


@pytest.mark.slow
def test_ok_entry_with_no_output_paths_is_a_value_error(failing_sweep: Sweep) -> None:
    out = Path(failing_sweep.output_dir)
    manifest = Manifest.load(out / "manifest.jsonl")
    empty = dataclasses.replace(_ok_entry(manifest), run_id=3, output_paths={})
    extended = dataclasses.replace(manifest, entries=[*manifest.entries, empty], run_count=4)
    with pytest.raises(ValueError, match="3"):
        lazy_multiindex(extended, out)


@pytest.mark.slow
def test_raise_on_failure_raises_run_failed_after_the_sweep(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    with pytest.raises(RunFailed) as caught:
        gmat_sweep.sweep(
            FAILS, {"Idx.Value": [5, 2]}, out=out, progress=False, raise_on_failure=True
        )
    assert caught.value.run_id == 0
    assert caught.value.stderr
    manifest = Manifest.load(out / "manifest.jsonl")
    # "after the sweep": the other run still ran and is recorded.
    assert manifest.find_failed() == [0]
    assert manifest.find_missing(range(2)) == []


@pytest.mark.slow
def test_unknown_field_path_is_rejected_before_any_run(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    with pytest.raises(SweepConfigError, match=r"Sat\.NoSuchField"):
        gmat_sweep.sweep(LEO, {"Sat.NoSuchField": [1.0]}, out=out, progress=False)
    assert not list(out.glob("run-*/*.parquet"))


@pytest.mark.slow
def test_script_parse_error_is_rejected_before_any_run(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    with pytest.raises(SweepConfigError):
        gmat_sweep.sweep(PARSE_ERROR, {}, out=out, progress=False)
    assert not list(out.glob("run-*/*.parquet"))


# --------------------------------------------------------------------------- from_manifest / resume


def _copy(sweep: Sweep, tmp_path: Path) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(Path(sweep.output_dir), copy)
    return copy


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.slow
def test_resume_reruns_only_failed_and_missing_runs(failing_sweep: Sweep, tmp_path: Path) -> None:
    copy = _copy(failing_sweep, tmp_path)
    manifest_path = copy / "manifest.jsonl"
    lines = manifest_path.read_text().splitlines(keepends=True)
    dropped = next(line for line in lines[1:] if json.loads(line)["run_id"] == 2)
    manifest_path.write_text("".join(line for line in lines if line != dropped))
    shutil.rmtree(copy / "run-000002")

    with LocalJoblibPool(1) as pool:
        resumed = Sweep.from_manifest(manifest_path, FAILS, backend=pool, progress=False)
        assert Path(resumed.output_dir) == copy
        assert resumed.resume() is resumed

    entries = [line for line in _lines(manifest_path) if line["kind"] == "entry"]
    assert sorted(line["run_id"] for line in entries) == [0, 1, 1, 2]
    assert entries[-2:][0]["run_id"] in {1, 2}
    assert resumed.manifest.find_missing(range(3)) == []
    assert resumed.manifest.find_failed() == [1]
    pd.testing.assert_frame_equal(resumed.to_pandas(), failing_sweep.to_pandas(), check_exact=True)


def test_resume_on_a_sweep_not_from_a_manifest_is_a_runtime_error(tmp_path: Path) -> None:
    runs = expand_grid_to_run_specs({}, LEO, tmp_path / "sweep")
    fresh = _direct(tmp_path / "sweep", runs)
    with pytest.raises(RuntimeError):
        fresh.resume()


@pytest.mark.slow
def test_from_manifest_refuses_script_drift_naming_both_hashes(
    failing_sweep: Sweep, tmp_path: Path
) -> None:
    copy = _copy(failing_sweep, tmp_path)
    drifted = tmp_path / "drifted.script"
    drifted.write_text(FAILS.read_text() + "% an edit\n")
    old, new = canonical_script_sha256(FAILS), canonical_script_sha256(drifted)
    with pytest.raises(SweepConfigError) as caught:
        Sweep.from_manifest(copy / "manifest.jsonl", drifted, backend="local", progress=False)
    assert old in str(caught.value)
    assert new in str(caught.value)
    with pytest.warns(RuntimeWarning):
        Sweep.from_manifest(
            copy / "manifest.jsonl",
            drifted,
            backend="local",
            allow_script_drift=True,
            progress=False,
        )


@pytest.mark.slow
def test_from_manifest_accepts_a_script_with_other_line_endings(
    failing_sweep: Sweep, tmp_path: Path
) -> None:
    copy = _copy(failing_sweep, tmp_path)
    crlf = tmp_path / "crlf.script"
    crlf.write_bytes(FAILS.read_bytes().replace(b"\n", b"\r\n"))
    rebuilt = Sweep.from_manifest(str(copy / "manifest.jsonl"), str(crlf), backend="local")
    assert isinstance(rebuilt, Sweep)


@pytest.mark.parametrize("script", [None, 5, "directory"])
def test_from_manifest_script_path_that_is_not_a_file_is_a_config_error(
    failing_sweep: Sweep, script: object, tmp_path: Path
) -> None:
    # Before: a bare TypeError for None or 5, and "script '...' does not exist" for a
    # directory that does exist.
    script_path = tmp_path if script == "directory" else script
    with pytest.raises(SweepConfigError, match=r"script_path\b.* is not a (path|file)"):
        Sweep.from_manifest(
            Path(failing_sweep.manifest_path), script_path, backend="local", progress=False
        )


def test_from_manifest_missing_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(SweepConfigError):
        Sweep.from_manifest(
            tmp_path / "gone" / "manifest.jsonl", FAILS, backend="local", progress=False
        )


@pytest.mark.slow
def test_from_manifest_unknown_kind_is_a_config_error(failing_sweep: Sweep, tmp_path: Path) -> None:
    copy = _copy(failing_sweep, tmp_path)
    manifest_path = copy / "manifest.jsonl"
    lines = manifest_path.read_text().splitlines()
    header = json.loads(lines[0])
    header["parameter_spec"] = {"_kind": "from_the_future", "grid": {"Idx.Value": [2, 5, 3]}}
    manifest_path.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    with pytest.raises(SweepConfigError, match="from_the_future"):
        Sweep.from_manifest(manifest_path, FAILS, backend="local", progress=False)


# --------------------------------------------------------------------------- Sweep constructor


@pytest.mark.slow
def test_sweep_constructor_run_creates_the_manifest_parent_and_returns_self(
    tmp_path: Path,
) -> None:
    out = tmp_path / "deep" / "er" / "sweep"
    grid = {"Sat.SMA": [7000.0]}
    runs = expand_grid_to_run_specs(grid, LEO, out)
    spec = {"_kind": "grid", "grid": {"Sat.SMA": [7000.0]}}
    with LocalJoblibPool(1) as pool:
        bound = _direct(out, runs, backend=pool, parameter_spec=spec, sweep_seed=11)
        assert bound.run() is bound
        # The sweep does not own the pool: it still runs the next sweep.
        again = gmat_sweep.sweep(LEO, {}, backend=pool, out=tmp_path / "again", progress=False)
        assert [entry.status for entry in again.manifest.entries] == ["ok"]
    manifest = Manifest.load(out / "manifest.jsonl")
    assert manifest.parameter_spec == spec
    assert manifest.sweep_seed == 11
    assert manifest.script_sha256 == canonical_script_sha256(LEO)
    assert [entry.status for entry in manifest.entries] == ["ok"]
    assert manifest.entries[0].overrides == {"Sat.SMA": 7000.0}


def test_sweep_constructor_rejects_duplicate_run_ids(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    (run,) = expand_grid_to_run_specs({}, LEO, out)
    with pytest.raises(SweepConfigError, match="run_id"):
        _direct(out, [run, run]).run()
    assert not (out / "manifest.jsonl").exists()


@pytest.mark.parametrize(
    ("argument", "value"),
    [
        ("runs", None),
        ("runs", [1]),
        ("runs", "run-0"),
        ("parameter_spec", None),
        ("parameter_spec", [1]),
    ],
)
def test_sweep_constructor_refuses_runs_and_parameter_spec_of_the_wrong_type(
    argument: str, value: object, tmp_path: Path
) -> None:
    # runs: Sequence[RunSpec], parameter_spec: Mapping. Before: a bare AttributeError
    # ('int' object has no attribute 'run_id') or TypeError.
    out = tmp_path / "sweep"
    arguments: dict[str, Any] = {
        "runs": expand_grid_to_run_specs({}, LEO, out),
        "backend": "local",
        "manifest_path": out / "manifest.jsonl",
        "output_dir": out,
        "script_path": LEO,
        "parameter_spec": {"_kind": "grid", "grid": {}},
        "progress": False,
    }
    with pytest.raises(SweepConfigError, match=argument):
        Sweep(**{**arguments, argument: value})
    assert not out.exists()


@pytest.mark.parametrize("below", ["", "sub"])
def test_an_output_dir_that_is_a_file_is_a_config_error(below: str, tmp_path: Path) -> None:
    # Before, Sweep(...).run() raised a bare FileExistsError / NotADirectoryError from
    # mkdir, and sweep(out=<file>/sub) got past the check that out is not a file.
    existing = tmp_path / "notes.txt"
    existing.write_text("not a directory\n")
    out = existing / below if below else existing
    with pytest.raises(SweepConfigError, match=r"notes\.txt.* is an existing file"):
        _direct(out, expand_grid_to_run_specs({}, LEO, out)).run()
    with pytest.raises(SweepConfigError, match=r"notes\.txt.* is an existing file"):
        gmat_sweep.sweep(LEO, {}, out=out, progress=False)
    assert existing.read_text() == "not a directory\n"


@pytest.mark.parametrize("run_ids", [[0, 2], [1], [5, 7]])
def test_sweep_constructor_rejects_run_ids_that_are_not_0_to_n_minus_1(
    run_ids: list[int], tmp_path: Path
) -> None:
    # runs[i].run_id == i is the contract from_manifest and resume depend on: before, such
    # a sweep ran, and from_manifest then called its manifest "edited or damaged".
    out = tmp_path / "sweep"
    grid = {"Sat.SMA": [7000.0 + 100 * i for i in range(len(run_ids))]}
    runs = [
        dataclasses.replace(spec, run_id=run_id, output_dir=out / f"run-{run_id:06d}")
        for spec, run_id in zip(expand_grid_to_run_specs(grid, LEO, out), run_ids, strict=True)
    ]
    with pytest.raises(SweepConfigError, match=r"run_id.*0\.\.n-1"):
        _direct(out, runs, parameter_spec={"_kind": "grid", "grid": grid})
    assert not out.exists()


@pytest.mark.parametrize("seed", ["7", 1.5, True, [7]])
def test_sweep_constructor_rejects_a_sweep_seed_that_is_not_an_integer(
    seed: object, tmp_path: Path
) -> None:
    # The seed is recorded on the manifest as an integer or null: before, a sweep ran
    # and wrote a header that Manifest.load then refused, so it could not be resumed.
    out = tmp_path / "sweep"
    with pytest.raises(SweepConfigError, match=rf"sweep_seed={seed!r}".replace("[", r"\[")):
        _direct(out, expand_grid_to_run_specs({}, LEO, out), sweep_seed=seed)
    assert not out.exists()


# --------------------------------------------------------------------------- stochastic


@pytest.fixture(scope="module")
def monte_carlo_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Sweep, Sweep]:
    root = tmp_path_factory.mktemp("mc")
    perturb = {"Sat.SMA": ("normal", 6778.0, 2.0), "Sat.ECC": ("uniform", 0.001, 0.002)}
    return (
        monte_carlo(LEO, n=2, perturb=perturb, seed=42, out=root / "a", progress=False),
        monte_carlo(LEO, n=2, perturb=perturb, seed=42, out=root / "b", progress=False),
    )


@pytest.mark.slow
def test_monte_carlo_with_a_seed_is_bit_reproducible(monte_carlo_pair: tuple[Sweep, Sweep]) -> None:
    first, second = (sweep.to_pandas() for sweep in monte_carlo_pair)
    assert list(first.index.names) == ["run_id", "time"]
    assert first.index.get_level_values("run_id").nunique() == 2
    pd.testing.assert_frame_equal(first, second, check_exact=True)
    manifest = Manifest.load(Path(monte_carlo_pair[0].manifest_path))
    assert manifest.sweep_seed == 42


@pytest.mark.slow
def test_adding_a_parameter_leaves_the_other_draws_unchanged(
    monte_carlo_pair: tuple[Sweep, Sweep], tmp_path: Path, pool: LocalPool
) -> None:
    both = Manifest.load(Path(monte_carlo_pair[0].manifest_path))
    alone = monte_carlo(
        LEO,
        n=2,
        perturb={"Sat.SMA": ("normal", 6778.0, 2.0)},
        seed=42,
        out=tmp_path / "alone",
        backend=pool,
        progress=False,
        compute=False,
    )
    alone_sma = {spec.run_id: spec.overrides["Sat.SMA"] for spec in alone.spec.runs}
    both_sma = {entry.run_id: entry.overrides["Sat.SMA"] for entry in both.entries}
    assert alone_sma == both_sma


@pytest.mark.slow
def test_latin_hypercube_stratifies_each_axis_through_the_distribution(
    tmp_path: Path, pool: LocalPool
) -> None:
    n = 4
    draws = {}
    for label, dist in (
        ("tuple", ("uniform", 2.0, 2.4)),
        ("frozen", scipy.stats.uniform(loc=2.0, scale=0.4)),
    ):
        lhs = latin_hypercube(
            LEO,
            n=n,
            perturb={"Sat.Cd": dist, "Sat.Cr": ("uniform", 1.0, 2.0)},
            seed=3,
            out=tmp_path / label,
            backend=pool,
            progress=False,
            compute=False,
        )
        assert [spec.run_id for spec in lhs.spec.runs] == list(range(n))
        draws[label] = [spec.overrides for spec in lhs.spec.runs]
    for field, low, width in (("Sat.Cd", 2.0, 0.4), ("Sat.Cr", 1.0, 1.0)):
        strata = sorted(int((row[field] - low) / width * n) for row in draws["tuple"])
        assert strata == list(range(n)), field
    assert draws["frozen"] == draws["tuple"]


# --------------------------------------------------------------------------- several outputs


@pytest.fixture(scope="module")
def multi_sweep(tmp_path_factory: pytest.TempPathFactory, pool: LocalPool) -> Sweep:
    """One run of multi_output: two reports and two ephemerides."""
    out = tmp_path_factory.mktemp("multi") / "sweep"
    return gmat_sweep.sweep(MULTI, {}, out=out, backend=pool, progress=False)


@pytest.mark.slow
def test_several_reports_need_a_name(multi_sweep: Sweep) -> None:
    out = Path(multi_sweep.output_dir)
    manifest = Manifest.load(out / "manifest.jsonl")
    with pytest.raises(SweepConfigError, match="StateReport") as caught:
        lazy_multiindex(manifest, out)
    assert "KeplerReport" in str(caught.value)
    with pytest.raises(SweepConfigError, match="KeplerReport"):
        multi_sweep.to_dataframe()
    frame = lazy_multiindex(manifest, out, name="KeplerReport")
    assert list(frame.index.names) == ["run_id", "time"]
    assert "Sat.Earth.SMA" in frame.columns


@pytest.mark.slow
def test_lazy_ephemerides_with_a_failed_run(multi_sweep: Sweep) -> None:
    out = Path(multi_sweep.output_dir)
    manifest = Manifest.load(out / "manifest.jsonl")
    failed = _entry(1, "failed", overrides={})
    with_failure = dataclasses.replace(manifest, entries=[*manifest.entries, failed], run_count=2)
    with pytest.raises(SweepConfigError, match="OEMEphem"):
        lazy_ephemerides(with_failure, out)
    frame = lazy_ephemerides(with_failure, out, name="OEMEphem")
    assert list(frame.index.names) == ["run_id", "time"]
    assert pd.api.types.is_datetime64_any_dtype(frame.index.get_level_values("time"))
    ok = frame.xs(0, level="run_id")
    assert len(ok) > 1
    assert ok.index.notna().all()
    row = frame.xs(1, level="run_id")
    assert len(row) == 1
    assert pd.isna(row.index[0])
    assert row["__status"].iloc[0] == "failed"
    pd.testing.assert_frame_equal(
        lazy_ephemerides(with_failure, out, name="OEMEphem", spool=False), frame
    )
    for key in ("ephemeris__OEMEphem", "ephemeris__STKEphem"):
        table = pq.read_table(out / manifest.entries[0].output_paths[key])
        # The worker copies the first datetime column (Epoch for OEM and STK) to time.
        assert table.column("time").to_pylist() == table.column("Epoch").to_pylist()
    lazy = multi_sweep.to_ephemerides("OEMEphem").compute()
    assert len(lazy) == len(lazy_ephemerides(manifest, out, name="OEMEphem"))
    stk = lazy_ephemerides(manifest, out, name="STKEphem")
    assert stk.index.get_level_values("time").notna().all()


# --------------------------------------------------------------------------- contacts


def _contact_sweep(root: Path) -> Manifest:
    """A sweep's manifest written by hand: contacts come from no GMAT in the wheel."""
    root.mkdir()
    (root / "run-000000").mkdir()
    starts = [T0 + timedelta(hours=hour) for hour in (1, 5)]
    table = pa.table(
        {
            "Target": ["Station", "Station"],
            "StartUTC": pa.array(starts, type=pa.timestamp("ns")),
            "StopUTC": pa.array(
                [s + timedelta(minutes=9) for s in starts], type=pa.timestamp("ns")
            ),
            "Duration": [540.0, 540.0],
            "interval_id": pa.array([0, 1], type=pa.int64()),
        }
    )
    pq.write_table(table, root / "run-000000" / "contact__CL.parquet")
    manifest = _header(run_count=3)
    manifest.save(root / "manifest.jsonl")
    manifest.append_entry(
        _entry(0, output_paths={"contact__CL": Path("run-000000/contact__CL.parquet")})
    )
    manifest.append_entry(_entry(1, "failed"))
    manifest.append_entry(
        _entry(2, output_paths={"report__RF": Path("run-000002/report__RF.parquet")})
    )
    return Manifest.load(root / "manifest.jsonl")


def test_lazy_contacts_index_and_rows_for_runs_without_contacts(tmp_path: Path) -> None:
    root = tmp_path / "contacts"
    manifest = _contact_sweep(root)
    frame = lazy_contacts(manifest, root)
    assert list(frame.index.names) == ["run_id", "interval_id"]
    assert str(frame.index.get_level_values("interval_id").dtype) == "Int64"
    assert list(frame.xs(0, level="run_id").index) == [0, 1]
    for run_id, status in ((1, "failed"), (2, "ok")):
        row = frame.xs(run_id, level="run_id")
        assert len(row) == 1
        assert row.index[0] is pd.NA
        assert row["__status"].iloc[0] == status
        assert row["Duration"].isna().all()
    assert (frame.xs(0, level="run_id")["__status"] == "ok").all()
    pd.testing.assert_frame_equal(lazy_contacts(manifest, root, name="CL"), frame)
    with pytest.raises(SweepConfigError, match="CL"):
        lazy_contacts(manifest, root, name="Other")


# --------------------------------------------------------------------------- hand-written reports


def _report_sweep(root: Path, columns: list[dict[str, pa.Array]]) -> Manifest:
    """A sweep whose run ``i`` wrote ``columns[i]`` as its report RF, arriving in reverse."""
    root.mkdir()
    manifest = _header(run_count=len(columns))
    manifest.save(root / "manifest.jsonl")
    for run_id in reversed(range(len(columns))):
        path = Path(f"run-{run_id:06d}") / "report__RF.parquet"
        (root / path.parent).mkdir()
        pq.write_table(pa.table(columns[run_id]), root / path)
        manifest.append_entry(_entry(run_id, output_paths={"report__RF": path}))
    return Manifest.load(root / "manifest.jsonl")


EPOCHS = pa.array([T0 + timedelta(minutes=k) for k in range(3)], type=pa.timestamp("ns"))


def test_report_columns_get_one_dtype_across_runs_and_rows_sort_by_run(tmp_path: Path) -> None:
    runs = [
        {"Sat.UTCGregorian": EPOCHS, "time": EPOCHS, "Count": pa.array([1, 2, 3], pa.int64())},
        {"Sat.UTCGregorian": EPOCHS, "time": EPOCHS, "Count": pa.array([1.5, 2.0, 3.0])},
    ]
    frame = lazy_multiindex(_report_sweep(tmp_path / "s", runs), tmp_path / "s")
    assert list(frame.index.names) == ["run_id", "time"]
    assert list(frame.index.get_level_values("run_id")) == [0, 0, 0, 1, 1, 1]
    assert frame["Count"].dtype == "float64"
    assert list(frame["Count"]) == [1.0, 2.0, 3.0, 1.5, 2.0, 3.0]


def test_skipped_run_is_one_row_with_its_status(tmp_path: Path) -> None:
    runs = [{"Sat.UTCGregorian": EPOCHS, "time": EPOCHS, "Count": pa.array([1.0, 2.0, 3.0])}]
    manifest = _report_sweep(tmp_path / "s", runs)
    skipped = _entry(1, "skipped", stderr=None)
    frame = lazy_multiindex(
        dataclasses.replace(manifest, entries=[*manifest.entries, skipped], run_count=2),
        tmp_path / "s",
    )
    row = frame.xs(1, level="run_id")
    assert len(row) == 1
    assert pd.isna(row.index[0])
    assert row["__status"].iloc[0] == "skipped"
    assert row["Count"].isna().all()


def test_report_without_an_epoch_column_is_keyed_by_row(tmp_path: Path) -> None:
    # DESIGN.md departure 7: (run_id, row) instead of (run_id, time).
    runs = [{"Count": pa.array([1.0, 2.0])}, {"Count": pa.array([3.0, 4.0])}]
    frame = lazy_multiindex(_report_sweep(tmp_path / "s", runs), tmp_path / "s")
    assert list(frame.index.names) == ["run_id", "row"]
    assert list(frame.index) == [(0, 0), (0, 1), (1, 0), (1, 1)]


def test_report_file_missing_its_time_column_is_a_value_error(tmp_path: Path) -> None:
    runs = [
        {"Sat.UTCGregorian": EPOCHS, "time": EPOCHS, "Count": pa.array([1.0, 2.0, 3.0])},
        {"Sat.UTCGregorian": EPOCHS, "Count": pa.array([1.0, 2.0, 3.0])},
    ]
    with pytest.raises(ValueError, match="time"):
        lazy_multiindex(_report_sweep(tmp_path / "s", runs), tmp_path / "s")


# --------------------------------------------------------------------------- a third-party pool


class FreshInterpreterPool(Pool):
    """A minimal third-party backend: only the two abstract methods, a fresh GMAT per run."""

    def __init__(self) -> None:
        super().__init__(reuse_gmat_context=False)
        self._threads = ThreadPoolExecutor(2)

    def submit(self, spec: RunSpec) -> Future[RunOutcome]:
        from gmat_sweep.backends._subprocess import run_spec_in_subprocess

        return self._threads.submit(run_spec_in_subprocess, spec)

    def as_completed(self, futures: Iterable[Future[RunOutcome]]) -> Iterator[RunOutcome]:
        for future in futures_completed(list(futures)):
            yield future.result()

    def close(self) -> None:
        self._threads.shutdown()


# Such a pool running whole sweeps bit for bit: tests/test_graph.py::TestThreadPerRun.


# --------------------------------------------------------------------------- CLI


@pytest.mark.slow
def test_cli_entry_point_and_module() -> None:
    from importlib.metadata import entry_points

    (script,) = [
        point for point in entry_points(group="console_scripts") if point.name == "gmat-sweep"
    ]
    assert script.value == "gmat_sweep.cli:main"
    done = subprocess.run(
        [sys.executable, "-m", "gmat_sweep", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    for command in ("run", "monte-carlo", "lhs", "resume"):
        assert command in done.stdout


def _cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gmat_sweep", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.slow
def test_cli_run_resume_and_exit_codes(tmp_path: Path) -> None:
    out = tmp_path / "study"
    done = _cli("run", FAILS, "--param", "Idx.Value=2,5", "--out", out, "--no-progress", "-q")
    assert done.returncode == 1, done.stderr
    manifest = Manifest.load(out / "manifest.jsonl")
    assert manifest.parameter_spec["_kind"] == "grid"
    assert list(manifest.parameter_spec["grid"]) == ["Idx.Value"]
    assert manifest.find_failed() == [1]

    resumed = _cli("resume", out, "--no-progress", "-q")
    assert resumed.returncode == 1, resumed.stderr
    entries = [line for line in _lines(out / "manifest.jsonl") if line["kind"] == "entry"]
    assert sorted(line["run_id"] for line in entries) == [0, 1, 1]
    # Exit code 2 for a field the mission lacks: test_cli's dry-run and usage tests.


# --------------------------------------------------------------------------- backend=


@pytest.mark.slow
@pytest.mark.parametrize("backend", [3, ["local"], object()])
def test_a_backend_that_is_no_pool_name_or_none_is_refused_naming_it(
    backend: object, failing_sweep: Sweep, tmp_path: Path
) -> None:
    with pytest.raises(BackendError, match="Pool instance") as caught:
        gmat_sweep.sweep(LEO, {}, backend=backend, out=tmp_path / "s", progress=False)
    assert repr(backend) in str(caught.value)
    with pytest.raises(BackendError, match="Pool instance"):
        _direct(tmp_path / "c", expand_grid_to_run_specs({}, LEO, tmp_path / "c"), backend=backend)
    with pytest.raises(BackendError, match="Pool instance"):
        Sweep.from_manifest(
            Path(failing_sweep.manifest_path),
            FAILS,
            backend=backend,  # type: ignore[arg-type]
        )


def test_an_unknown_backend_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="'nonsense'"):
        gmat_sweep.sweep(LEO, {}, backend="nonsense", out=tmp_path / "s", progress=False)


# --------------------------------------------------------------------------- DESIGN.md contracts


def test_manifest_paths_must_stay_inside_the_sweep(tmp_path: Path) -> None:
    root = tmp_path / "sweep"
    root.mkdir()
    outside = tmp_path / "outside.parquet"
    pq.write_table(pa.table({"Count": [1.0]}), outside)
    for path in (Path("../outside.parquet"), outside):
        manifest = _header(run_count=1, entries=[_entry(0, output_paths={"report__RF": path})])
        with pytest.raises(ManifestCorruptError, match=r"outside\.parquet"):
            lazy_multiindex(manifest, root)


@pytest.mark.slow
def test_keyboard_interrupt_propagates_and_leaves_the_finished_runs(tmp_path: Path) -> None:
    class Interrupted(FreshInterpreterPool):
        def as_completed(self, futures: Iterable[Future[RunOutcome]]) -> Iterator[RunOutcome]:
            yield next(iter(super().as_completed(futures)))
            raise KeyboardInterrupt

    out = tmp_path / "s"
    with pytest.raises(KeyboardInterrupt), Interrupted() as pool:
        gmat_sweep.sweep(FAILS, {"Idx.Value": [2, 3]}, backend=pool, out=out, progress=False)
    manifest = Manifest.load(out / "manifest.jsonl")
    assert len(manifest.entries) == 1
    assert manifest.find_missing(range(2)) == [
        run_id for run_id in range(2) if run_id != manifest.entries[0].run_id
    ]


@pytest.mark.slow
def test_a_bare_grid_parameter_spec_is_resumable(tmp_path: Path) -> None:
    # The reference's Sweep example records "the materialised grid" verbatim.
    out = tmp_path / "s"
    runs = expand_grid_to_run_specs({"Idx.Value": [2, 5]}, FAILS, out)
    _direct(out, runs, script=FAILS, parameter_spec={"Idx.Value": [2, 5]}).run()
    assert _lines(out / "manifest.jsonl")[0]["parameter_spec"] == {"Idx.Value": [2, 5]}
    Sweep.from_manifest(out / "manifest.jsonl", FAILS, backend="local", progress=False).resume()
    entries = [line["run_id"] for line in _lines(out / "manifest.jsonl") if line["kind"] == "entry"]
    assert sorted(entries) == [0, 1, 1]


@pytest.mark.slow
def test_to_dataframe_is_lazy_with_known_run_id_divisions(failing_sweep: Sweep) -> None:
    lazy = failing_sweep.to_dataframe()
    assert lazy.index.name == "run_id"
    assert lazy.known_divisions
    assert "time" in lazy.columns
    one = lazy.loc[2].compute()
    expected = failing_sweep.to_pandas().xs(2, level="run_id")
    assert list(one["time"]) == list(expected.index)
    assert set(one.index) == {2}


@pytest.mark.slow
def test_overrides_take_effect_including_force_model_and_propagator_fields(
    tmp_path: Path, pool: LocalPool
) -> None:
    grid = {"FM.SRP": ["On", "Off"], "Prop.Type": ["RungeKutta89", "PrinceDormand78"]}
    frame = gmat_sweep.sweep(LEO, grid, out=tmp_path / "s", backend=pool, progress=False)
    last = frame.to_pandas().groupby(level="run_id")["Sat.EarthMJ2000Eq.X"].last()
    assert last.nunique() == 4, last


@pytest.mark.slow
def test_output_file_fields_are_refused(tmp_path: Path, pool: LocalPool) -> None:
    with pytest.raises(SweepConfigError, match=r"RF\.Filename"):
        gmat_sweep.sweep(
            LEO, {"RF.Filename": ["x.txt"]}, out=tmp_path / "s", backend=pool, progress=False
        )


@pytest.mark.slow
def test_small_record_contracts(failing_sweep: Sweep) -> None:
    assert {status.value for status in gmat_sweep.RunStatus} == {"ok", "failed", "skipped"}
    assert isinstance(failing_sweep.spec.runs, tuple)
    assert SweepConfigError("the message").args == ("the message",)
    assert str(SweepConfigError("the message")) == "the message"


def test_local_joblib_pool_default_uses_every_core() -> None:
    import os

    with LocalJoblibPool() as pool:
        assert pool.workers == os.cpu_count()


@pytest.mark.slow
def test_monte_carlo_resume_rebuilds_the_same_draws(
    monte_carlo_pair: tuple[Sweep, Sweep], tmp_path: Path
) -> None:
    copy = _copy(monte_carlo_pair[0], tmp_path)
    manifest_path = copy / "manifest.jsonl"
    lines = manifest_path.read_text().splitlines(keepends=True)
    manifest_path.write_text("".join(lines[:-1]))
    resumed = Sweep.from_manifest(manifest_path, LEO, backend="local", progress=False).resume()
    pd.testing.assert_frame_equal(
        resumed.to_pandas(), monte_carlo_pair[1].to_pandas(), check_exact=True
    )


def test_open_sweep_to_contacts_matches_lazy_contacts(tmp_path: Path) -> None:
    root = tmp_path / "contacts"
    manifest = _contact_sweep(root)
    lazy = gmat_sweep.open_sweep(root).to_contacts().compute()
    assert len(lazy) == len(lazy_contacts(manifest, root))


@pytest.mark.slow
def test_one_writer_per_sweep_and_a_dead_driver_does_not_block_resume(tmp_path: Path) -> None:
    import os
    import signal
    import time

    slow = DATA / "slow.script"
    out = tmp_path / "s"
    # The driver's run cannot end before it is killed, so it holds the sweep throughout.
    days = f"Days.Value={ENDLESS_DAYS:g}"
    command = ["run", slow, "--param", days, "--out", out, "--no-progress", "-q"]
    driver = subprocess.Popen([sys.executable, "-m", "gmat_sweep", *map(str, command)])
    try:
        deadline = time.monotonic() + 120
        while not (out / "manifest.jsonl").exists():
            assert driver.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        with pytest.raises(GmatSweepError, match=str(driver.pid)):
            Sweep.from_manifest(out / "manifest.jsonl", slow, backend="local").resume()
    finally:
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait()
    rebuilt = Sweep.from_manifest(out / "manifest.jsonl", slow, backend="local", progress=False)
    assert rebuilt.resume(only="failed") is rebuilt


# --------------------------------------------------------------------------- laws


def test_append_after_a_torn_line_keeps_the_file_valid(tmp_path: Path) -> None:
    path = tmp_path / "manifest.jsonl"
    _header(entries=[_entry(0)]).save(path)
    with path.open("ab") as handle:
        handle.write(b'{"kind":"entry","run_id":1,"ov')
    loaded = Manifest.load(path)
    loaded.append_entry(_entry(2))
    assert [entry.run_id for entry in Manifest.load(path).entries] == [0, 2]
    assert all(json.loads(line) for line in path.read_text().splitlines())


_VALUES = st.lists(st.integers(-5, 5), min_size=1, max_size=3)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.text("abcXYZ.", min_size=1, max_size=4), _VALUES, max_size=4))
def test_full_factorial_law(grid: dict[str, list[int]]) -> None:
    keys = sorted(grid)
    expected = [
        dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(grid[k] for k in keys))
    ]
    rows = list(full_factorial(grid))
    assert rows == expected
    assert all(list(row) == keys for row in rows)
    specs = expand_grid_to_run_specs(grid, LEO, "/tmp/never-written")
    assert [spec.run_id for spec in specs] == list(range(len(expected)))
    assert [spec.overrides for spec in specs] == expected


_PLAIN = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-(2**63), 2**63 - 1),
    st.booleans(),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=8),
)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.text("abc.XYZ", min_size=1, max_size=6), _PLAIN, max_size=4))
def test_manifest_round_trips_overrides_exactly(overrides: dict[str, Any]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "manifest.jsonl"
        manifest = _header()
        manifest.save(path)
        manifest.append_entry(_entry(0, overrides=overrides))
        (entry,) = Manifest.load(path).entries
    assert entry.overrides == overrides
    for key, value in overrides.items():
        assert type(entry.overrides[key]) is type(value)


@pytest.mark.slow
def test_cli_monte_carlo_draws_what_the_python_call_draws(
    monte_carlo_pair: tuple[Sweep, Sweep], tmp_path: Path
) -> None:
    out = tmp_path / "mc"
    done = _cli(
        "monte-carlo",
        LEO,
        "-n",
        "2",
        "--perturb",
        "Sat.SMA=normal(6778.0,2.0)",
        "--perturb",
        "Sat.ECC=uniform(0.001,0.002)",
        "--seed",
        "42",
        "--out",
        out,
        "--no-progress",
        "-q",
    )
    assert done.returncode == 0, done.stderr
    python = Manifest.load(Path(monte_carlo_pair[0].manifest_path))
    cli = Manifest.load(out / "manifest.jsonl")
    assert cli.parameter_spec == python.parameter_spec
    assert {e.run_id: e.overrides for e in cli.entries} == {
        e.run_id: e.overrides for e in python.entries
    }


def test_runs_whose_output_dir_is_outside_the_sweep_root_are_refused(tmp_path: Path) -> None:
    # The reference: output_dir is the sweep root "the per-run output directories live
    # under". A run writing elsewhere would leave a manifest its own sweep cannot read.
    out = tmp_path / "sweep"
    inside = expand_grid_to_run_specs({"Sat.SMA": [7000.0, 7100.0]}, LEO, out)
    elsewhere = dataclasses.replace(inside[1], output_dir=tmp_path / "elsewhere" / "run-000001")
    with pytest.raises(SweepConfigError, match="elsewhere") as caught:
        _direct(
            out,
            [inside[0], elsewhere],
            parameter_spec={"_kind": "grid", "grid": {"Sat.SMA": [7000.0, 7100.0]}},
        )
    assert "run 1" in str(caught.value)
    assert not out.exists()


@pytest.mark.slow
def test_lazy_contacts_of_a_report_only_sweep_is_one_na_row_per_run(failing_sweep: Sweep) -> None:
    out = out_dir(failing_sweep)
    manifest = Manifest.load(out / "manifest.jsonl")
    with pytest.warns(UserWarning, match="no contact outputs"):
        frame = lazy_contacts(manifest, out)
    assert list(frame.index.names) == ["run_id", "interval_id"]
    assert list(frame.index.get_level_values("run_id")) == [0, 1, 2]
    assert frame.index.get_level_values("interval_id").isna().all()
    assert str(frame.index.get_level_values("interval_id").dtype) == "Int64"
    assert list(frame["__status"]) == ["ok", "failed", "ok"]


@pytest.mark.slow
def test_from_manifest_refuses_drift_in_an_included_file(tmp_path: Path) -> None:
    mission = tmp_path / "mission"
    mission.mkdir()
    for name in ("included_main.script", "included_spacecraft.script"):
        shutil.copy(DATA / name, mission / name)
    main = mission / "included_main.script"
    out = tmp_path / "s"
    gmat_sweep.sweep(main, {}, out=out, progress=False)
    included = mission / "included_spacecraft.script"
    included.write_text(included.read_text() + "% an edit\n")
    with pytest.raises(SweepConfigError, match="included_spacecraft"):
        Sweep.from_manifest(out / "manifest.jsonl", main, backend="local", progress=False)


@pytest.mark.slow
def test_an_out_that_holds_a_sweep_is_refused_without_overwrite(failing_sweep: Sweep) -> None:
    out = out_dir(failing_sweep)
    before = (out / "manifest.jsonl").read_bytes()
    with pytest.raises(SweepConfigError, match="already holds a sweep"):
        gmat_sweep.sweep(FAILS, {"Idx.Value": [2]}, out=out, progress=False)
    assert (out / "manifest.jsonl").read_bytes() == before
