"""Script text written the way users and GMAT's GUI write it, swept as GMAT reads it.

Load-time overrides are applied by editing the script's text
(:func:`gmat_sweep.script.render_script`), so the text's form matters: line
endings, comments, spacing, ``GMAT`` prefixes, continued lines, a field set
twice or in an ``#Include`` file. Each sweep here must give, bit for bit,
what the same overrides give on the plain script (``leo_basic``), and that
must equal the hand-edited script run by gmat-run alone.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
from bare_gmat import bare_report

from gmat_sweep import LocalPool, Sweep, sweep


def _final(study: Sweep, report: str) -> pd.DataFrame:
    """Each run's report rows, by run id, as the sweep read them."""
    assert study.failed_run_ids == []
    frame = study.to_pandas(name=report)
    return frame[[c for c in frame.columns if c != "__status"]]


def test_a_field_an_included_file_sets_is_replaced_there(
    pool: LocalPool, data_dir: Path, tmp_path: Path
) -> None:
    # GMAT refuses a second Prop.Type assignment: one added after the #Include line
    # made the sweep refuse every integrator, blaming the value.
    for name in ("included_main.script", "included_spacecraft.script"):
        shutil.copy(data_dir / name, tmp_path / name)
    grid = {"J2Prop.Type": ["RungeKutta68", "PrinceDormand78"]}
    study = sweep(tmp_path / "included_main.script", grid, out=tmp_path / "s", backend=pool)
    frame = _final(study, "Elements")
    included = tmp_path / "included_spacecraft.script"
    text = included.read_text()
    included.write_text(text.replace("J2Prop.Type = RungeKutta89", "J2Prop.Type = RungeKutta68"))
    bare = bare_report(tmp_path / "included_main.script", "Elements", tmp_path)
    pd.testing.assert_frame_equal(frame.loc[0].reset_index(drop=True)[bare.columns], bare)
    assert not frame.loc[0].equals(frame.loc[1])
