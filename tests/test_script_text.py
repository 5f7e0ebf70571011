"""Script text written the way users and GMAT's GUI write it, swept as GMAT reads it.

Load-time overrides are applied by editing the script's text
(:func:`gmat_sweep.script.render_script`), so the text's form matters: line
endings, comments, spacing, ``GMAT`` prefixes, continued lines, a field set
twice or in an ``#Include`` file. Each sweep here must give, bit for bit,
what the same overrides give on the plain script (``leo_basic``), and that
must equal the hand-edited script run by gmat-run alone.
"""

from __future__ import annotations

import io
import json
import re
import shutil
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from bare_gmat import bare_report

from gmat_sweep import LocalPool, Sweep, SweepConfigError, sweep
from gmat_sweep.cli import main
from gmat_sweep.script import overwritten_values


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
    study = sweep(
        tmp_path / "included_main.script", grid, out=tmp_path / "s", backend=pool, progress=False
    )
    frame = _final(study, "Elements")
    included = tmp_path / "included_spacecraft.script"
    text = included.read_text()
    included.write_text(text.replace("J2Prop.Type = RungeKutta89", "J2Prop.Type = RungeKutta68"))
    bare = bare_report(tmp_path / "included_main.script", "Elements", tmp_path)
    pd.testing.assert_frame_equal(frame.loc[0].reset_index(drop=True)[bare.columns], bare)
    assert not frame.loc[0].equals(frame.loc[1])


GRID = {
    "FM.GravityField.Earth.Degree": [2, 4],
    "Prop.Type": ["RungeKutta68"],
    "Sat.Cd": [2.5],
}
"""Two load-time fields (the propagator clones FM; GMAT drops a Type write) and a live one."""
DEGREE = "FM.GravityField.Earth.Degree = 4;\n"
INTEGRATOR = "Prop.Type = RungeKutta89;\n"


def _windows(text: str) -> str:
    """CRLF line endings, tabs around ``=``, trailing blanks, no final newline."""
    return text.replace(" = ", "\t=\t").replace(";\n", "; \t\n").rstrip("\n").replace("\n", "\r\n")


def _terse(text: str) -> str:
    """``GMAT`` before each resource setting, no spaces around ``=``, no semicolons."""
    text = re.sub(r"(?m)^(Sat|FM|Prop|RF)\.", r"GMAT \1.", text)
    return text.replace(" = ", "=").replace(";\n", "\n")


def _commented(text: str) -> str:
    """End-of-line comments, and commented-out settings of the swept fields."""
    text = text.replace(DEGREE, f"%{DEGREE.replace('4', '8')}{DEGREE[:-1]} % was 8\n")
    text = text.replace(INTEGRATOR, f"  % {INTEGRATOR.replace('89', '45')}{INTEGRATOR}")
    return text.replace("Sat.Cd = 2.2;", "Sat.Cd = 2.2; % Sat.Cd = 3;\n%Create Propagator Prop;")


def _continued(text: str) -> str:
    """The swept settings continued over two lines with ``...``."""
    text = text.replace(DEGREE, "FM.GravityField.Earth.Degree = ...\n    4;\n")
    return text.replace(INTEGRATOR, "Prop.Type = ...\n    RungeKutta89;\n")


def _twice(text: str) -> str:
    """Each swept field set twice in the resource section (the last setting is GMAT's)."""
    text = text.replace(DEGREE, DEGREE.replace("4", "8") + DEGREE)
    return text.replace("Sat.Cd = 2.2;", "Sat.Cd = 3;\nSat.Cd = 2.2;")


def _shared_creates(text: str) -> str:
    """Several objects per ``Create``, named with the swept ones' names as prefixes."""
    text = text.replace("Create ForceModel FM;", "Create ForceModel FM FMx;\nFMx.Drag = None;")
    text = text.replace("Create Propagator Prop;", "Create Propagator Prop, Prop2;")
    text = text.replace(INTEGRATOR, "Prop2.Type = RungeKutta89;\nProp2.FM = FMx;\n" + INTEGRATOR)
    text = text.replace(DEGREE, "FMx.GravityField.Earth.Degree = 8;\n" + DEGREE)
    return text.replace("Create Spacecraft Sat;", "Create Spacecraft Sat, Sat2;\nSat2.Cd = 3;")


@pytest.fixture(scope="module")
def reference(
    pool: LocalPool, leo_basic: Path, tmp_path_factory: pytest.TempPathFactory
) -> pd.DataFrame:
    """:data:`GRID` swept over ``leo_basic`` as written."""
    out = tmp_path_factory.mktemp("reference") / "s"
    return _final(sweep(leo_basic, GRID, out=out, backend=pool, progress=False), "RF")


def test_the_reference_sweep_equals_the_hand_edited_script(
    reference: pd.DataFrame, leo_basic: Path, tmp_path: Path
) -> None:
    edited = tmp_path / leo_basic.name
    text = leo_basic.read_text().replace(DEGREE, DEGREE.replace("4", "2"))
    edited.write_text(text.replace("RungeKutta89", "RungeKutta68").replace("Cd = 2.2", "Cd = 2.5"))
    bare = bare_report(edited, "RF", tmp_path)
    pd.testing.assert_frame_equal(reference.loc[0].reset_index(drop=True)[bare.columns], bare)
    assert not reference.loc[0].equals(reference.loc[1])  # the degree changed the orbit


@pytest.mark.parametrize(
    "rewrite", [_windows, _terse, _commented, _continued, _twice, _shared_creates]
)
def test_script_text_as_users_write_it_sweeps_as_the_plain_script(
    pool: LocalPool, leo_basic: Path, tmp_path: Path, reference: pd.DataFrame, rewrite: Any
) -> None:
    script = tmp_path / "mission.script"
    text = rewrite(leo_basic.read_text())
    assert text != leo_basic.read_text()
    script.write_bytes(text.encode())
    study = sweep(script, GRID, out=tmp_path / "s", backend=pool, progress=False)
    pd.testing.assert_frame_equal(_final(study, "RF"), reference)


def test_fields_lists_the_values_gmat_reads_not_commented_out_ones(
    leo_basic: Path, tmp_path: Path
) -> None:
    script = tmp_path / "mission.script"
    script.write_text(_commented(leo_basic.read_text()))
    listed = {}
    for source in (leo_basic, script):
        stdout = io.StringIO()
        with redirect_stdout(stdout), redirect_stderr(io.StringIO()):
            assert main(["fields", str(source), "FM", "Prop", "Sat", "--json"]) == 0
        listed[source] = json.loads(stdout.getvalue())["fields"]
    assert listed[script] == listed[leo_basic]
    values = {field["path"]: field["value"] for field in listed[script]}
    assert values["FM.GravityField.Earth.Degree"] == 4  # not the commented-out 8
    assert values["Prop.Type"] == "RungeKutta89"


def test_a_field_the_sequence_sets_before_anything_reads_it_is_refused(
    pool: LocalPool, leo_basic: Path, tmp_path: Path
) -> None:
    # Sweeping Sat.Cd changed nothing: every run took the sequence's 2.5.
    script = tmp_path / "mission.script"
    opening = "BeginMissionSequence;\nGMAT Sat.Cd = 2.5;\nSat.DateFormat = TAIGregorian;\n"
    script.write_text(leo_basic.read_text().replace("BeginMissionSequence;\n", opening))
    with pytest.raises(SweepConfigError, match=r"'Sat.Cd': the mission sequence sets it") as e:
        sweep(script, {"Sat.Cd": [2.0, 3.0]}, out=tmp_path / "s", backend=pool, progress=False)
    assert "(line 46: GMAT Sat.Cd = 2.5;)" in str(e.value)
    assert not (tmp_path / "s").exists()
    # The epoch was read in the script's DateFormat at load: that override reaches the run.
    assert overwritten_values(script) == {"Sat.Cd": "line 46: GMAT Sat.Cd = 2.5;"}
    later = leo_basic.read_text().replace("Sat.ElapsedSecs = 5560};", "Sat.ElapsedSecs = 60};")
    script.write_text(later + "Sat.Cd = 2.5;\nPropagate Prop(Sat) {Sat.ElapsedSecs = 60};\n")
    assert overwritten_values(script) == {}  # the first Propagate reads Sat.Cd


def test_a_percent_sign_inside_a_quoted_string_is_text_not_a_comment(
    pool: LocalPool, data_dir: Path, tmp_path: Path
) -> None:
    script = tmp_path / "strings.script"
    text = (data_dir / "strings_arrays.script").read_text()
    script.write_text(text.replace("GMAT Label = 'nominal';", "GMAT Label = 'up 5%';"))
    labels = ["x%y z", "up 5%"]
    study = sweep(script, {"Label.Value": labels}, out=tmp_path / "s", backend=pool, progress=False)
    assert study.failed_run_ids == []
    assert study.final(name="Summary")["Label"].astype(str).tolist() == labels
    assert "Label = 'x%y z';" in study.script(0)
