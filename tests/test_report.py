"""gmat_sweep.report: the self-contained HTML report and the notebook summary table."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

from gmat_sweep import DaskPool, Sweep, sweep
from gmat_sweep.errors import SweepConfigError
from gmat_sweep.report import summary_html, write_report

pytestmark = pytest.mark.slow

GRID = {"Sat.SMA": [6000, 7000, 7100], "Sat.Cd": [2.0, 2.4]}
"""6 runs; the two at Sat.SMA = 6000 fail inside GMAT."""


@pytest.fixture(autouse=True)
def _agg(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MPLBACKEND", "Agg")


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory, leo_basic: Path) -> Sweep:
    out = tmp_path_factory.mktemp("report") / "study"
    return sweep(leo_basic, GRID, out=out, progress=False, backend="local")


def test_report_is_byte_identical_and_offline(study: Sweep, tmp_path: Path) -> None:
    first = write_report(study, tmp_path / "a.html").read_bytes()
    second = write_report(study, tmp_path / "b.html").read_bytes()
    assert first == second
    text = first.decode("utf-8")
    assert "http://" not in text and "https://" not in text
    assert "<script" not in text and "@font-face" not in text and "<link" not in text
    sources = re.findall(r'src="([^"]*)"', text)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    for source in sources:
        assert base64.b64decode(source.split(",", 1)[1]).startswith(b"\x89PNG")


def test_report_rebuilt_from_the_manifest_is_the_same(
    study: Sweep, tmp_path: Path, leo_basic: Path
) -> None:
    rebuilt = Sweep.from_manifest(study.manifest_path, leo_basic, backend=None)
    first = write_report(study, tmp_path / "a.html").read_bytes()
    assert write_report(rebuilt, tmp_path / "b.html").read_bytes() == first


def test_report_contents(study: Sweep, tmp_path: Path) -> None:
    text = write_report(study, tmp_path / "r.html").read_text(encoding="utf-8")
    for heading in ("Summary", "Provenance", "Failures", "Run time", "Parameter coverage"):
        assert f"<h2>{heading}</h2>" in text
    manifest = study.manifest
    assert manifest.script_sha256 in text
    assert manifest.gmat_install_version in text
    failed = ", ".join(map(str, sorted(study.failed_run_ids)))
    group = re.search(r'<span class="failed">([^<]*)</span></td><td>2</td><td>([^<]*)</td>', text)
    assert group is not None
    assert group[1] == "GmatRunError: GMAT RunScript returned status 0; expected 1"
    assert group[2] == failed
    assert "<td>Sat.SMA</td><td>3</td><td>6000</td><td>7100</td>" in text
    assert "<th>final value of</th>" in text and "<td>Sat.Earth.SMA</td><td>4</td>" in text


def test_report_of_chosen_columns(study: Sweep, tmp_path: Path) -> None:
    text = write_report(study, tmp_path / "r.html", columns=["Sat.Earth.ECC"])
    body = text.read_text(encoding="utf-8")
    assert "<td>Sat.Earth.ECC</td><td>4</td>" in body
    assert "<td>Sat.Earth.SMA</td><td>4</td>" not in body
    with pytest.raises(SweepConfigError, match=r"\['Sat\.Nope'\] are not in the report"):
        write_report(study, tmp_path / "bad.html", columns=["Sat.Nope"])


def test_summary_table(study: Sweep) -> None:
    text = summary_html(study)
    assert text.startswith("<table>")
    assert "<tr><th>runs</th><td>6</td></tr>" in text
    assert "<tr><th>ok</th><td>4</td></tr>" in text
    assert "<tr><th>failed</th><td>2</td></tr>" in text
    assert "run time p5 / p50 / p95 / max" in text and "wall time" in text
    assert str(study.output_dir) in text
    assert "dashboard" not in text


def test_summary_of_a_sweep_not_run_yet(tmp_path: Path, leo_basic: Path) -> None:
    pending = sweep(leo_basic, GRID, out=tmp_path / "s", progress=False, compute=False)
    assert "<tr><th>runs</th><td>6 (not run yet)</td></tr>" in summary_html(pending)


def test_summary_links_the_dask_dashboard(study: Sweep, leo_basic: Path) -> None:
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=1, processes=False, dashboard_address=":0") as cluster,
        Client(cluster) as client,
    ):
        on_dask = Sweep.from_manifest(
            study.manifest_path, leo_basic, backend=DaskPool(client=client)
        )
        text = summary_html(on_dask)
        link = client.dashboard_link
    assert link.startswith("http")
    assert f'<a href="{link}" target="_blank">{link}</a>' in text


def test_report_of_a_partial_sweep(study: Sweep, tmp_path: Path, leo_basic: Path) -> None:
    partial = tmp_path / "partial"
    partial.mkdir()
    lines = Path(study.manifest_path).read_text(encoding="utf-8").splitlines(keepends=True)
    (partial / "manifest.jsonl").write_text("".join(lines[:4]), encoding="utf-8")
    for entry in study.manifest.entries:
        source = Path(study.output_dir) / f"run-{entry.run_id:06d}"
        (partial / source.name).symlink_to(source)
    rebuilt = Sweep.from_manifest(partial / "manifest.jsonl", leo_basic, backend=None)
    text = write_report(rebuilt, tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<tr><th>not run yet</th><td>3</td></tr>" in text


def test_report_of_a_sweep_where_every_run_failed(tmp_path: Path, leo_basic: Path) -> None:
    failed = sweep(leo_basic, {"Sat.SMA": [6000]}, out=tmp_path / "s", progress=False)
    text = write_report(failed, tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<tr><th>failed</th><td>1</td></tr>" in text
    assert "<h2>Outcomes</h2>" not in text
    assert "<td>1</td><td>0</td></tr>" in text  # the failure group: 1 run, run_id 0


def test_report_onto_a_directory_is_refused_before_any_work(study: Sweep, tmp_path: Path) -> None:
    taken = tmp_path / "reports"
    taken.mkdir()
    with pytest.raises(SweepConfigError, match=r"report path .*reports.* is a directory"):
        write_report(study, taken)


def test_report_ignores_the_callers_matplotlib_settings(study: Sweep, tmp_path: Path) -> None:
    import matplotlib

    first = write_report(study, tmp_path / "a.html").read_bytes()
    with matplotlib.rc_context({"font.size": 20.0, "axes.facecolor": "black"}):
        assert write_report(study, tmp_path / "b.html").read_bytes() == first


def test_cli_report_and_archive_write_their_files(leo_basic: Path, tmp_path: Path) -> None:
    from gmat_sweep.cli import main

    out = tmp_path / "study"
    sweep(leo_basic, {"Sat.Cd": [2.0, 2.4]}, out=out, progress=False)
    assert main(["report", str(out), "--to", str(tmp_path / "r.html"), "-q"]) == 0
    assert main(["archive", str(out), "--to", str(tmp_path / "s.zip"), "-q"]) == 0
    html = (tmp_path / "r.html").read_text()
    assert "http://" not in html and "https://" not in html
    assert (tmp_path / "s.zip").stat().st_size > 0
