"""A sweep is one Dask graph: keys, callbacks, composition, persist, backends by name."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import dask
import pandas as pd
import pytest
from dask.callbacks import Callback

from gmat_sweep import LocalPool, Pool, Sweep, sweep
from gmat_sweep.backends import KNOWN_BACKENDS, make_backend
from gmat_sweep.backends._subprocess import run_node
from gmat_sweep.backends.base import drain
from gmat_sweep.backends.dask import DaskPool
from gmat_sweep.backends.joblib import LocalJoblibPool
from gmat_sweep.errors import BackendError
from gmat_sweep.manifest import Manifest, read_all_entries
from gmat_sweep.spec import RunOutcome, RunSpec, RunStatus, SweepSpec, decode, encode
from gmat_sweep.testing import PoolTests

GRID = {"Sat.Cd": [2.0, 2.4], "Sat.SMA": [6900.0, 7000.0]}


class RunKeys(Callback):  # type: ignore[misc]
    """Collects the run keys (``("gmat-run-<token>", run_id)``) that finished."""

    def __init__(self) -> None:
        super().__init__()
        self.keys: list[Any] = []

    def _posttask(self, key: Any, result: Any, dsk: Any, state: Any, worker: Any) -> None:
        if isinstance(key, tuple) and str(key[0]).startswith("gmat-run-"):
            self.keys.append(key)


@pytest.fixture(scope="module")
def reference(
    leo_basic: Path, tmp_path_factory: pytest.TempPathFactory, pool: LocalPool
) -> pd.DataFrame:
    out = tmp_path_factory.mktemp("reference") / "s"
    return sweep(leo_basic, GRID, backend=pool, out=out, progress=False).to_pandas()


@pytest.mark.slow
def test_a_users_dask_callback_sees_every_run_of_a_default_sweep(
    leo_basic: Path, tmp_path: Path, reference: pd.DataFrame
) -> None:
    with RunKeys() as seen:
        result = sweep(leo_basic, GRID, out=tmp_path / "s", progress=False)
    assert sorted(seen.keys) == sorted(result.__dask_keys__())
    assert sorted(key[1] for key in seen.keys) == [0, 1, 2, 3]
    # The keys executed are the ones to_delayed hands out.
    assert sorted(node.key for node in result.to_delayed()) == sorted(seen.keys)
    pd.testing.assert_frame_equal(result.to_pandas(), reference, check_exact=True)


@pytest.mark.slow
def test_two_uncomputed_sweeps_run_in_one_graph_each_with_its_manifest(
    leo_basic: Path, tmp_path: Path, reference: pd.DataFrame
) -> None:
    a = sweep(leo_basic, GRID, out=tmp_path / "a", progress=False, compute=False)
    b = sweep(leo_basic, {"Sat.Cd": [2.2]}, out=tmp_path / "b", progress=False, compute=False)
    # Validated, not run: nothing is written until it is computed.
    assert not (tmp_path / "a").exists()
    assert not (tmp_path / "b").exists()
    assert repr(a).endswith("not run yet>")
    with RunKeys() as seen:
        done_a, done_b = dask.compute(a, b)
    assert done_a is a and done_b is b
    assert len(seen.keys) == 5
    assert {key[0] for key in seen.keys} == {a.run_graph.name, b.run_graph.name}
    assert Manifest.load(tmp_path / "a" / "manifest.jsonl").run_count == 4
    assert [e.run_id for e in Manifest.load(tmp_path / "b" / "manifest.jsonl").entries] == [0]
    pd.testing.assert_frame_equal(a.to_pandas(), reference, check_exact=True)
    assert b.to_pandas()["__status"].eq("ok").all()


@pytest.mark.slow
def test_dask_compute_of_two_sweeps_on_a_dask_pool_runs_them_through_the_pool(
    leo_basic: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The pool's own client must not become Dask's default scheduler: dask.compute would
    # then send the sweeps to it directly, past their scheduler and manifest writer.
    with DaskPool(n_workers=1) as pool:
        graphs: list[Any] = []
        get = pool.get
        monkeypatch.setattr(
            pool, "get", lambda dsk, keys, **kw: graphs.append(keys) or get(dsk, keys, **kw)
        )
        a = sweep(
            leo_basic,
            {"Sat.Cd": [2.0, 2.2]},
            out=tmp_path / "a",
            backend=pool,
            progress=False,
            compute=False,
        )
        b = sweep(
            leo_basic,
            {"Sat.Cd": [2.4]},
            out=tmp_path / "b",
            backend=pool,
            progress=False,
            compute=False,
        )
        done_a, done_b = dask.compute(a, b)
    assert done_a is a and done_b is b
    assert [len(keys) for keys in graphs] == [3]  # one computation, through the pool
    assert sorted(e.run_id for e in Manifest.load(tmp_path / "a" / "manifest.jsonl").entries) == [
        0,
        1,
    ]
    assert [e.status for e in Manifest.load(tmp_path / "b" / "manifest.jsonl").entries] == [
        RunStatus.OK
    ]


@pytest.mark.slow
def test_dask_compute_under_a_default_distributed_client_says_how_to_run_a_sweep(
    leo_basic: Path, tmp_path: Path
) -> None:
    from distributed import Client, LocalCluster

    lazy = sweep(leo_basic, {"Sat.Cd": [2.0]}, out=tmp_path / "s", progress=False, compute=False)
    with (
        LocalCluster(n_workers=1, processes=False, dashboard_address=":0") as cluster,
        Client(cluster),
        pytest.raises(TypeError) as raised,
    ):
        dask.compute(lazy)
    causes: list[BaseException] = [raised.value]  # distributed wraps the error in its own
    while (cause := causes[-1].__cause__ or causes[-1].__context__) is not None:
        causes.append(cause)
    assert any("scheduler=Sweep.__dask_scheduler__" in str(cause) for cause in causes)
    assert not (tmp_path / "s").exists()


@pytest.mark.slow
def test_dask_compute_of_sweeps_on_different_backends_names_them(
    leo_basic: Path, tmp_path: Path, pool: LocalPool
) -> None:
    on_pool = sweep(leo_basic, GRID, backend=pool, out=tmp_path / "a", compute=False)
    on_default = sweep(leo_basic, GRID, out=tmp_path / "b", compute=False)
    with pytest.raises(BackendError, match="different backends") as caught:
        dask.compute(on_pool, on_default)
    assert "LocalPool" in str(caught.value)
    assert "the default" in str(caught.value)
    assert not (tmp_path / "a" / "manifest.jsonl").exists()


def test_compute_false_then_compute(leo_basic: Path, tmp_path: Path, pool: LocalPool) -> None:
    lazy = sweep(
        leo_basic,
        {"Sat.Cd": [2.0]},
        backend=pool,
        out=tmp_path / "s",
        progress=False,
        compute=False,
    )
    assert not (tmp_path / "s").exists()
    assert lazy.compute() is lazy
    assert [e.status for e in lazy.manifest.entries] == [RunStatus.OK]


@pytest.mark.slow
def test_a_new_directory_is_announced_when_runs_start_not_when_planned(
    leo_basic: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    pool: LocalPool,
) -> None:
    monkeypatch.chdir(tmp_path)
    lazy = sweep(leo_basic, {"Sat.Cd": [2.0]}, backend=pool, progress=False, compute=False)
    assert "writing results to" not in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
    lazy.compute()
    assert f"gmat_sweep: writing results to {lazy.output_dir}\n" in capsys.readouterr().err
    assert Path(lazy.output_dir).parent == tmp_path


def test_sweep_keys_carry_a_token_of_the_sweep(leo_basic: Path, tmp_path: Path) -> None:
    def lazy(out: str) -> Sweep:
        return Sweep(
            runs=[RunSpec(leo_basic, {"Sat.Cd": 2.0}, tmp_path / out / "run-000000", 0, None, {})],
            backend=None,
            manifest_path=tmp_path / out / "manifest.jsonl",
            output_dir=tmp_path / out,
            script_path=leo_basic,
            parameter_spec={"_kind": "samples", "rows": [{"Sat.Cd": 2.0}]},
        )

    first, again, other = lazy("a"), lazy("a"), lazy("b")
    # The same sweep directory gives the same keys (a resumed sweep reuses them) ...
    assert first.__dask_keys__() == again.__dask_keys__()
    # ... and two sweeps never collide in one graph.
    assert first.__dask_keys__() != other.__dask_keys__()
    assert dask.base.tokenize(first) == dask.base.tokenize(again)


@pytest.mark.slow
def test_resume_runs_only_the_missing_runs_under_their_original_keys(
    leo_basic: Path, tmp_path: Path, pool: LocalPool
) -> None:
    out = tmp_path / "s"
    full = sweep(leo_basic, GRID, backend=pool, out=out, progress=False)
    lines = (out / "manifest.jsonl").read_text().splitlines()
    (out / "manifest.jsonl").write_text("\n".join(lines[:3]) + "\n")  # header + 2 runs
    resumed = Sweep.from_manifest(out / "manifest.jsonl", leo_basic, backend=pool, progress=False)
    planned = resumed.__dask_keys__()
    assert set(planned) < set(full.__dask_keys__())
    assert len(planned) == 2
    with RunKeys() as seen:
        resumed.resume()
    assert sorted(seen.keys) == sorted(planned)
    assert resumed.manifest.find_missing(range(4)) == []


@pytest.mark.slow
def test_persist_on_a_local_cluster_returns_while_runs_go_on(slow: Path, tmp_path: Path) -> None:
    import distributed

    with (
        distributed.LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=":0") as lc,
        distributed.Client(lc) as client,
    ):
        from gmat_sweep import DaskPool

        pool = DaskPool(client=client)
        lazy = sweep(
            slow,
            {"Days.Value": [0.05, 0.06]},
            backend=pool,
            out=tmp_path / "s",
            progress=False,
            compute=False,
        )
        assert lazy.persist() is lazy
        # Back at once: the runs (about 0.8 s each) are still going on the cluster.
        manifest = tmp_path / "s" / "manifest.jsonl"
        recorded = len(read_all_entries(manifest)) if manifest.exists() else 0
        assert recorded < 2
        assert lazy.compute() is lazy
    assert sorted(e.run_id for e in lazy.manifest.entries) == [0, 1]
    assert lazy.manifest.find_failed() == []


@pytest.mark.slow
def test_compute_after_persist_raises_what_the_background_run_raised(
    leo_basic: Path, tmp_path: Path
) -> None:
    import distributed

    from gmat_sweep import DaskPool, lock
    from gmat_sweep.errors import SweepLockedError

    with (
        distributed.LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=":0") as lc,
        distributed.Client(lc) as client,
    ):
        lazy = sweep(
            leo_basic,
            {"Sat.SMA": [7000.0]},
            backend=DaskPool(client=client),
            out=tmp_path / "s",
            progress=False,
            compute=False,
        )
        with lock.hold(tmp_path / "s", what="run"):  # another driver holds the sweep
            lazy.persist()
            with pytest.raises(SweepLockedError):
                lazy.compute()


@pytest.mark.slow
def test_backend_by_name(leo_basic: Path, tmp_path: Path, reference: pd.DataFrame) -> None:
    result = sweep(leo_basic, GRID, backend="joblib", out=tmp_path / "s", progress=False)
    assert result.manifest.backend == "joblib"
    assert result.backend == "joblib"
    pd.testing.assert_frame_equal(result.to_pandas(), reference, check_exact=True)


def test_unknown_backend_names_the_known_ones() -> None:
    with pytest.raises(BackendError, match=r"backend 'spark' is not known; use one of 'local'"):
        make_backend("spark")


def test_a_backend_whose_package_is_missing_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(BackendError, match=r"pip install 'ray\[default\]'"):
        make_backend("ray")


def test_the_cli_offers_every_known_backend() -> None:
    from gmat_sweep.cli import _parser

    for name in KNOWN_BACKENDS:
        assert _parser().parse_args(["demo", "--backend", name]).backend == name


class ThreadPerRun(Pool):
    """A third-party pool implementing only the reference's abstract methods.

    Every run gets a thread of its own and a fresh GMAT interpreter.
    """

    name = "thread-per-run"

    def __init__(self, workers: int = 2, *, reuse_gmat_context: bool = True) -> None:
        super().__init__(reuse_gmat_context=reuse_gmat_context)
        self._executor = ThreadPoolExecutor(workers)

    def submit(self, spec: RunSpec) -> Future[RunOutcome]:
        return self._executor.submit(run_node, spec, False)

    def as_completed(self, futures: Iterable[Future[RunOutcome]]) -> Iterator[RunOutcome]:
        return drain(self, futures)

    def close(self) -> None:
        self._executor.shutdown()


class TestThreadPerRun(PoolTests):
    """The shipped conformance suite passes on a user-written pool."""

    def make_pool(self, workers: int, *, reuse_gmat_context: bool = True) -> Pool:
        return ThreadPerRun(workers, reuse_gmat_context=reuse_gmat_context)


def test_a_sweep_describes_itself_as_a_sweep_spec(leo_basic: Path, tmp_path: Path) -> None:
    runs = [
        RunSpec(leo_basic, {"Sat.Cd": cd}, tmp_path / f"run-00000{i}", i, None, {})
        for i, cd in enumerate([2.0, 2.4])
    ]
    planned = Sweep(
        runs=runs,
        backend="joblib",
        manifest_path=tmp_path / "manifest.jsonl",
        output_dir=tmp_path,
        script_path=leo_basic,
        parameter_spec={"_kind": "grid", "grid": {"Sat.Cd": [2.0, 2.4]}},
        sweep_seed=7,
    )
    spec = planned.spec
    assert spec == SweepSpec(
        mission_script_path=leo_basic,
        runs=tuple(runs),
        backend="joblib",
        backend_kwargs={},
        output_dir=tmp_path,
        manifest_path=tmp_path / "manifest.jsonl",
        sweep_seed=7,
    )
    assert decode(encode(spec), SweepSpec) == spec
    with ThreadPerRun(reuse_gmat_context=False) as pool:
        planned._use_backend(pool)
        on_pool = planned.spec
    assert (on_pool.backend, on_pool.backend_kwargs) == (
        "thread-per-run",
        {"reuse_gmat_context": False},
    )
    with LocalJoblibPool(2) as pool:
        planned._use_backend(pool)
        assert planned.spec.backend_kwargs == {"workers": 2, "reuse_gmat_context": True}


@pytest.mark.slow
def test_a_user_written_pool_runs_sweeps(
    leo_basic: Path, tmp_path: Path, reference: pd.DataFrame
) -> None:
    with ThreadPerRun() as pool:
        result = sweep(leo_basic, GRID, backend=pool, out=tmp_path / "s", progress=False)
    assert result.manifest.backend == "thread-per-run"
    pd.testing.assert_frame_equal(result.to_pandas(), reference, check_exact=True)


class OwnInit(Pool):
    """A user's pool with an ``__init__`` of its own that never calls ``Pool.__init__``."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(1)

    def submit(self, spec: RunSpec) -> Future[RunOutcome]:
        return self._executor.submit(run_node, spec, False)

    def as_completed(self, futures: Iterable[Future[RunOutcome]]) -> Iterator[RunOutcome]:
        return drain(self, futures)


def test_a_user_pool_that_does_not_call_pool_init_reuses_the_gmat_context(
    leo_basic: Path, tmp_path: Path
) -> None:
    pool = OwnInit()
    try:
        assert pool.reuse_gmat_context is True
        result = sweep(
            leo_basic, {"Sat.Cd": [2.0]}, backend=pool, out=tmp_path / "s", progress=False
        )
    finally:
        pool._executor.shutdown()
    assert [entry.status for entry in result.manifest.entries] == [RunStatus.OK]


def test_visualize_draws_the_graph_of_a_sweep(leo_basic: Path, tmp_path: Path) -> None:
    lazy = Sweep(
        runs=[RunSpec(leo_basic, {"Sat.Cd": cd}, tmp_path / f"run-{i:06d}", i, None, {})
              for i, cd in enumerate([2.0, 2.4])],
        backend=None,
        manifest_path=tmp_path / "manifest.jsonl",
        output_dir=tmp_path,
        script_path=leo_basic,
        parameter_spec={"_kind": "samples", "rows": [{"Sat.Cd": 2.0}, {"Sat.Cd": 2.4}]},
    )  # fmt: skip
    lazy.visualize(filename=str(tmp_path / "graph.svg"))
    drawing = (tmp_path / "graph.svg").read_text()
    assert drawing.count("gmat&#45;run") >= 2 or drawing.count("gmat-run") >= 2
    assert not (tmp_path / "manifest.jsonl").exists()  # drawing runs nothing


def test_dask_compute_of_a_sweep_of_no_runs_starts_no_pool(
    leo_basic: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gmat_sweep.backends as backends

    started: list[object] = []
    monkeypatch.setattr(backends, "make_backend", lambda *a, **k: started.append(a))
    out = tmp_path / "s"
    empty = Sweep(
        runs=[],
        backend=None,
        manifest_path=out / "manifest.jsonl",
        output_dir=out,
        script_path=leo_basic,
        parameter_spec={},
        progress=False,
    )
    (done,) = dask.compute(empty)
    assert started == []
    assert Manifest.load(out / "manifest.jsonl").run_count == 0
    assert done.manifest.entries == []
