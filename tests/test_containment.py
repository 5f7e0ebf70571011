"""Paths read from a manifest stay inside the sweep: the rule, and the CLI commands using it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from gmat_sweep import sweep
from gmat_sweep.cli import main
from gmat_sweep.containment import escape_check, locate, sweep_root
from gmat_sweep.errors import ManifestCorruptError, SweepConfigError
from gmat_sweep.manifest import Manifest, ManifestEntry
from gmat_sweep.spec import RunStatus


@pytest.mark.parametrize(
    ("root", "recorded", "expected"),
    [
        ("/sweep", "run-000001/report__RF.parquet", "/sweep/run-000001/report__RF.parquet"),
        ("/sweep/", Path("run-000001/gmat.log"), "/sweep/run-000001/gmat.log"),
        ("/sweep", "/sweep/run-000001/a.parquet", "/sweep/run-000001/a.parquet"),
        ("/sweep", "file:///sweep/run-000001/a.parquet", "/sweep/run-000001/a.parquet"),
        ("file:///sweep", "run-000001/a..b.parquet", "/sweep/run-000001/a..b.parquet"),
        ("/sweep", "run-000001/../run-000002/a.parquet", "/sweep/run-000002/a.parquet"),
        ("s3://bucket/study", "run-000001/a.parquet", "s3://bucket/study/run-000001/a.parquet"),
        ("s3://bucket/study/", "s3://bucket/study/r/a.parquet", "s3://bucket/study/r/a.parquet"),
        ("s3://bucket/study", "r/../q/a.parquet", "s3://bucket/study/q/a.parquet"),
    ],
)
def test_paths_inside_the_root(root: str, recorded: str | Path, expected: str) -> None:
    assert locate(root, recorded, 1) == expected


@pytest.mark.parametrize(
    ("root", "recorded"),
    [
        ("/sweep", "../outside/secret.parquet"),
        ("/sweep", "run-000001/../../etc/passwd"),
        ("/sweep", "/etc/passwd"),
        ("/sweep", "/sweep-other/a.parquet"),
        ("/sweep", "/sweep"),
        ("/sweep", "file:///etc/passwd"),
        ("/sweep", "s3://bucket/a.parquet"),
        ("/sweep", ""),
        ("s3://bucket/study", "../other/a.parquet"),
        ("s3://bucket/study", "s3://other-bucket/study/a.parquet"),
        ("s3://bucket/study", "s3://bucket/study-2/a.parquet"),
        ("s3://bucket/study", "gs://bucket/study/a.parquet"),
        ("s3://bucket/study", "/etc/passwd"),
        ("s3://bucket/study", "s3://bucket/study/../secret"),
    ],
)
def test_paths_outside_the_root_are_refused(root: str, recorded: str) -> None:
    with pytest.raises(ManifestCorruptError, match=r"run 7: .* not inside the sweep root") as err:
        locate(root, recorded, 7)
    assert repr(recorded) in str(err.value)


def test_sweep_root_is_absolute_and_stable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert sweep_root("study") == str(tmp_path / "study")
    assert sweep_root(Path("study")) == str(tmp_path / "study")
    assert sweep_root("s3://bucket/study/") == "s3://bucket/study"


def _crafted_sweep(root: Path, recorded: str, log: str | None) -> None:
    """A sweep of two runs whose manifest points run 1 (report, log) at ``recorded``/``log``."""
    frame = pd.DataFrame({"time": pd.to_datetime(["2026-01-01"]), "Sat.X": [1.0]})
    (root / "run-000000").mkdir(parents=True)
    frame.to_parquet(root / "run-000000" / "report__RF.parquet", index=False)
    moment = datetime(2026, 1, 1, tzinfo=UTC)

    def entry(run_id: int, status: RunStatus, path: str | None, log_path: str | None) -> Any:
        return ManifestEntry(
            run_id=run_id,
            overrides={"Sat.SMA": 7000.0 + run_id},
            status=status,
            output_paths={} if path is None else {"report__RF": path},
            started_at=moment,
            ended_at=moment,
            duration_s=0.1,
            stderr=None if status is RunStatus.OK else "GmatRunError: boom",
            log_path=None if log_path is None else Path(log_path),
        )

    manifest = Manifest(
        script_sha256="0" * 64,
        gmat_sweep_version="0.1.0",
        gmat_run_version="0.6.0",
        gmat_install_version="test",
        python_version="3.12",
        os_platform="linux",
        sweep_seed=None,
        parameter_spec={"grid": {"Sat.SMA": [7000.0, 7001.0, 7002.0]}},
        run_count=3,
    )
    manifest.save(root / "manifest.jsonl")
    manifest.append_entry(entry(0, RunStatus.OK, "run-000000/report__RF.parquet", None))
    manifest.append_entry(entry(1, RunStatus.OK, recorded, None))
    manifest.append_entry(entry(2, RunStatus.FAILED, None, log))


def test_export_refuses_a_report_outside_the_sweep(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tmp_path / "outside" / "secret.parquet"
    secret.parent.mkdir()
    pd.DataFrame({"time": pd.to_datetime(["2026-01-01"]), "Sat.X": [42.0]}).to_parquet(secret)
    _crafted_sweep(tmp_path / "study", "../outside/secret.parquet", None)
    target = tmp_path / "out.csv"
    assert (
        main(["export", str(tmp_path / "study"), "--to", str(target), "--quiet"]) == 3
    )  # could not run: a corrupt manifest
    assert not target.exists()
    error = capsys.readouterr().err
    assert "run 1: the manifest records the path '../outside/secret.parquet'" in error


def test_show_refuses_a_log_path_outside_the_sweep(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _crafted_sweep(tmp_path / "study", "run-000000/report__RF.parquet", "../../../../etc/passwd")
    assert main(["show", str(tmp_path / "study")]) == 3  # could not run: corrupt manifest
    captured = capsys.readouterr()
    assert "/etc/passwd" not in captured.out
    assert "run 2: the manifest records the path '../../../../etc/passwd'" in captured.err


@pytest.mark.parametrize(
    ("root", "location", "escapes"),
    [
        ("/sweep", Path("/sweep/run-000001"), False),
        ("/sweep", "/sweep", False),
        ("/sweep/", Path("/sweep"), False),
        ("/sweep", "/sweep/run-000001/../run-000002", False),
        ("/sweep", "/sweep/../elsewhere/run-000001", True),
        ("/sweep", "/sweeper/run-000001", True),
        ("/sweep", "/", True),
        ("s3://bucket/study", "s3://bucket/study/run-000001", False),
        ("s3://bucket/study", "s3://bucket/other/run-000001", True),
        ("s3://bucket/study", "gs://bucket/study/run-000001", True),
        ("s3://bucket/study", "/study/run-000001", True),
    ],
)
def test_escape_check_tells_where_a_sweep_may_write(
    root: str, location: Any, escapes: bool
) -> None:
    assert escape_check(root)(location) is escapes


def test_escape_check_resolves_relative_locations_like_the_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    check = escape_check("study")
    assert check("study/run-000001") is False
    assert check(tmp_path / "study" / "run-000001") is False
    assert check("run-000001") is True


@pytest.mark.parametrize("filename", ["../escape.txt", "sub/../../escape.txt", "sub/../out.txt"])
def test_an_output_filename_climbing_out_of_its_run_directory_is_refused_before_any_run(
    leo_basic: Path, tmp_path: Path, filename: str
) -> None:
    # gmat-run refuses a '..' in an output path at run time: every run would fail the same way.
    mission = tmp_path / "m.script"
    mission.write_text(
        leo_basic.read_text().replace("'leo_basic.txt'", f"'{filename}'"), encoding="utf-8"
    )
    with pytest.raises(SweepConfigError) as refused:
        sweep(mission, {"Sat.Cd": [2.0]}, out=tmp_path / "s", progress=False)
    message = str(refused.value)
    assert f"RF.Filename = '{filename}'" in message and "'..'" in message
    assert "inside the run's own run-NNNNNN directory" in message
    assert not (tmp_path / "s").exists()
    assert not list(tmp_path.rglob("escape.txt"))
