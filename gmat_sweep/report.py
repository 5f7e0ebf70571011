"""A sweep as one self-contained HTML page, and the summary table notebooks show.

:func:`write_report` writes a single HTML file that needs nothing else to be
read: its style sheet is inline, its figures are PNG images embedded as
``data:`` URIs, and it names no external URL, script or font, so it opens
offline and can be mailed. It is byte-identical whenever it is written from
the same sweep: every time it shows comes from the manifest (never "now"),
figures are drawn by :mod:`gmat_sweep.plot` with fixed styles and saved
without a date or software stamp.

:func:`summary_html` is the short table (counts, wall time, per-run time
percentiles, failures, location, the Dask dashboard when a distributed
client runs the sweep) that ``Sweep._repr_html_`` shows in Jupyter.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from gmat_sweep import storage
from gmat_sweep.aggregate import ROW, TIME, describe_unconverged, unconverged_runs
from gmat_sweep.spec import RunStatus

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from gmat_sweep.manifest import Manifest, ManifestEntry
    from gmat_sweep.sweep import Sweep

KEY_OUTCOMES = 6
"""Report columns whose final-value distributions the report draws (the first ones)."""

SHOWN_RUN_IDS = 50
"""run_ids listed per failure group before the list is cut short."""

_PERCENTILES = (5, 50, 95, 100)
_PNG_METADATA: dict[str, Any] = {"Software": None}
_CSS = """
body { font-family: sans-serif; max-width: 60rem; margin: 2rem auto; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; }
th, td { border: 1px solid #ccc; padding: 0.2rem 0.6rem; text-align: left; }
th { background: #f3f3f3; }
pre { background: #f7f7f7; padding: 0.5rem; overflow-x: auto; }
img { max-width: 100%; }
.failed { color: #b00; }
"""


def summary_html(sweep: Sweep) -> str:
    """The sweep's summary table as an HTML ``<table>`` fragment (for ``Sweep._repr_html_``).

    What the module docstring lists, with a link to the Dask dashboard when
    the backend is a :class:`~gmat_sweep.DaskPool`; a sweep not run yet shows
    its run count only.
    """
    from gmat_sweep.backends.dask import DaskPool

    rows = _summary_rows(sweep)
    backend = sweep.backend
    if isinstance(backend, DaskPool):
        link = backend.client.dashboard_link
        if link:
            rows.append(("Dask dashboard", f'<a href="{_e(link)}" target="_blank">{_e(link)}</a>'))
    return _table(rows, header=False)


def write_report(
    sweep: Sweep,
    path: str | Path,
    *,
    name: str | None = None,
    columns: Sequence[str] | None = None,
) -> Path:
    """Write one self-contained HTML report of ``sweep``.

    Sections: summary; provenance (script and include hashes, versions,
    engine, backend, seed, how the runs were chosen); failures grouped by the
    first line of their error, with their run_ids; the distribution of run
    times; parameter coverage (a table and the ok/failed map of
    :func:`gmat_sweep.plot.status`); and the distributions of the key
    outcomes (final values: a table and histograms). No external URL, script
    or font is referenced; the same sweep gives the same bytes.

    Parameters
    ----------
    sweep:
        A sweep that has run (completely or partly), or one rebuilt from its
        manifest.
    path:
        The ``.html`` file to write (replaced if it exists); its directory must exist.
    name:
        The ReportFile whose final values are the outcomes; ``None`` picks the
        only report the sweep produced.
    columns:
        The outcome columns to draw; ``None`` draws the first
        :data:`KEY_OUTCOMES` numeric columns of the report.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    SweepConfigError
        ``path`` is a directory or its directory does not exist, a column is
        not in the report, or ``name`` does not pick one report.
    ImportError
        matplotlib is not installed (``pip install matplotlib``, the ``plot`` extra).
    """
    from gmat_sweep import plot

    target = storage.local_file(path, "report")
    manifest = sweep.manifest
    sections = [
        ("Summary", _table(_summary_rows(sweep) + _convergence(sweep), header=False)),
        ("Provenance", _provenance(manifest)),
        ("Failures", _failures(manifest.entries)),
        ("Run time", _timing(manifest.entries)),
        ("Parameter coverage", _coverage(sweep) + _image(plot.status(sweep))),
    ]
    if any(e.status is RunStatus.OK for e in manifest.entries):
        sections.append(("Outcomes", _outcomes(sweep, name, columns)))
    title = f"Sweep report: {Path(manifest.script_path).name or 'mission'}"
    body = "".join(f"<h2>{_e(heading)}</h2>\n{content}\n" for heading, content in sections)
    page = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f"<h1>{_e(title)}</h1>\n{body}</body>\n</html>\n"
    )
    target.write_text(page, encoding="utf-8")
    return target


def _summary_rows(sweep: Sweep) -> list[tuple[str, str]]:
    total = len(sweep.runs)
    try:
        manifest = sweep.manifest
    except RuntimeError:
        return [("runs", f"{total} (not run yet)")]
    entries = manifest.entries
    counts = Counter(entry.status for entry in entries)
    failed = sorted(e.run_id for e in entries if e.status is RunStatus.FAILED)
    rows = [
        ("runs", str(total)),
        ("ok", str(counts[RunStatus.OK])),
        ("failed", str(counts[RunStatus.FAILED])),
        ("not run yet", str(total - len(entries))),
    ]
    if entries:
        wall = max(e.ended_at for e in entries) - min(e.started_at for e in entries)
        rows.append(("wall time", f"{wall.total_seconds():.1f} s"))
        durations = np.array([e.duration_s for e in entries], dtype=np.float64)
        percentiles = " / ".join(f"{v:.3f}" for v in np.percentile(durations, _PERCENTILES))
        rows.append(("run time p5 / p50 / p95 / max", f"{percentiles} s"))
    if failed:
        rows.append(("failed run_ids", _e(_ids(failed))))
    rows.append(("location", _e(str(sweep.output_dir))))
    return rows


def _convergence(sweep: Sweep) -> list[tuple[str, str]]:
    """A summary row naming the runs whose solver did not converge, when there are any.

    Only the report shows it: it reads every run's solver log, which the
    notebook summary (:func:`summary_html`, drawn on every display) must not.
    """
    unconverged = unconverged_runs(sweep.converged())
    if not unconverged:
        return []
    ok = sum(entry.status is RunStatus.OK for entry in sweep.manifest.entries)
    text = describe_unconverged(unconverged, ok, shown=SHOWN_RUN_IDS)
    return [("solvers not converged", f'<span class="failed">{_e(text)}</span>')]


def _provenance(manifest: Manifest) -> str:
    spec = manifest.parameter_spec
    kind = spec.get("_kind", "grid")
    rows = [
        ("script", manifest.script_path),
        ("script sha256", manifest.script_sha256),
        *((f"#Include {name}", digest) for name, digest in manifest.script_includes.items()),
        *((f"input {name}", digest) for name, digest in (manifest.script_inputs or {}).items()),
        ("GMAT engine", manifest.gmat_install_version),
        ("gmat_sweep", manifest.gmat_sweep_version),
        ("gmat-run", manifest.gmat_run_version),
        ("Python", manifest.python_version),
        ("numpy / scipy", f"{manifest.numpy_version or '?'} / {manifest.scipy_version or '?'}"),
        ("platform", manifest.os_platform),
        ("backend", manifest.backend),
        ("seed", "none" if manifest.sweep_seed is None else str(manifest.sweep_seed)),
        ("design", kind),
    ]
    table = _table([(key, _e(value)) for key, value in rows], header=False)
    if kind == "samples":
        design = {"rows": f"{len(spec.get('rows', []))} explicit rows (in the manifest)"}
    else:
        design = {k: v for k, v in spec.items() if k != "_kind"}
    return table + f"<pre>{_e(json.dumps(design, indent=2, sort_keys=True))}</pre>"


def _failures(entries: Iterable[ManifestEntry]) -> str:
    groups: dict[str, list[int]] = defaultdict(list)
    for entry in entries:
        if entry.status is RunStatus.FAILED:
            lines = (line.strip() for line in (entry.stderr or "").splitlines())
            groups[next((line for line in lines if line), "(no error text)")].append(entry.run_id)
    if not groups:
        return "<p>No run failed.</p>"
    ordered = sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))
    rows = [
        (f'<span class="failed">{_e(line)}</span>', str(len(ids)), _e(_ids(sorted(ids))))
        for line, ids in ordered
    ]
    return _table(rows, header=("first error line", "runs", "run_ids"))


def _timing(entries: Sequence[ManifestEntry]) -> str:
    if not entries:
        return "<p>No run recorded.</p>"
    from gmat_sweep.plot import OK_COLOR, _figure, _style

    durations = np.array([e.duration_s for e in entries], dtype=np.float64)
    values = np.percentile(durations, _PERCENTILES)
    table = _table(
        [(f"p{p}", f"{v:.3f} s") for p, v in zip(_PERCENTILES, values, strict=True)],
        header=("percentile", "run time"),
    )
    with _style():
        figure, axes = _figure(width=6.0, height=3.0)
        axes.hist(durations, bins=30, color=OK_COLOR)
        axes.set_xlabel("run time [s]")
        axes.set_ylabel("runs")
    return table + _image(figure)


def _coverage(sweep: Sweep) -> str:
    frame = pd.DataFrame([spec.overrides for spec in sweep.runs])
    if frame.empty or not len(frame.columns):
        return "<p>The sweep has no parameters.</p>"
    recorded = {e.run_id: e.status for e in sweep.manifest.entries}
    ok = np.array([recorded.get(s.run_id) is RunStatus.OK for s in sweep.runs])
    rows = []
    for field in sorted(frame.columns):
        values = frame[field]
        numeric = pd.to_numeric(values, errors="coerce")
        if numeric.notna().all():
            span = (_num(numeric.min()), _num(numeric.max()), _num(numeric.mean()))
        else:
            span = ("", "", "")
        rows.append((_e(field), str(values.nunique()), *span, str(int(values[ok].nunique()))))
    return _table(
        rows, header=("parameter", "distinct", "min", "max", "mean", "distinct in ok runs")
    )


def _outcomes(sweep: Sweep, name: str | None, columns: Sequence[str] | None) -> str:
    from gmat_sweep import plot

    final = sweep.final(name)
    # The key (time, or row for a report without an epoch) is where a run ends, not an outcome.
    left_out = {field for spec in sweep.runs for field in spec.overrides} | {TIME, ROW, plot.STATUS}
    if columns is None:
        chosen = [
            c
            for c in final.columns
            if c not in left_out and pd.api.types.is_numeric_dtype(final[c])
        ][:KEY_OUTCOMES]
    else:
        chosen = list(columns)
        plot._check_columns(final, chosen)
    ok = final[final[plot.STATUS] == "ok"]
    rows = []
    for column in chosen:
        values = pd.to_numeric(ok[column], errors="coerce").dropna().to_numpy(dtype=np.float64)
        stats = np.percentile(values, (0, 5, 50, 95, 100)) if len(values) else [np.nan] * 5
        rows.append((_e(column), str(len(values)), *(_num(v) for v in stats)))
    table = _table(rows, header=("final value of", "runs", "min", "p5", "median", "p95", "max"))
    images = "".join(_image(plot._hist(final, column, bound=None)) for column in chosen)
    if chosen:
        images += _image(plot.fan(sweep, chosen[0], name=name))
    return table + images


def _image(figure: Figure) -> str:
    from gmat_sweep.plot import _style

    buffer = io.BytesIO()
    with _style():  # relative font sizes are resolved as the figure is drawn
        figure.savefig(buffer, format="png", metadata=_PNG_METADATA)
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<p><img alt="figure" src="data:image/png;base64,{encoded}"></p>\n'


def _table(rows: Sequence[tuple[str, ...]], *, header: tuple[str, ...] | bool) -> str:
    """An HTML table of already-escaped cells; ``header`` names the columns, or none."""
    head = ""
    if isinstance(header, tuple):
        head = "<tr>" + "".join(f"<th>{_e(h)}</th>" for h in header) + "</tr>\n"
    body = "".join(
        "<tr>"
        + (f"<th>{_e(row[0])}</th>" if header is False else f"<td>{row[0]}</td>")
        + "".join(f"<td>{cell}</td>" for cell in row[1:])
        + "</tr>\n"
        for row in rows
    )
    return f"<table>\n{head}{body}</table>\n"


def _ids(run_ids: Sequence[int]) -> str:
    shown = ", ".join(map(str, run_ids[:SHOWN_RUN_IDS]))
    more = len(run_ids) - SHOWN_RUN_IDS
    return shown + (f" ... and {more} more" if more > 0 else "")


def _num(value: Any) -> str:
    return "" if value is None or pd.isna(value) else f"{float(value):.6g}"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)
