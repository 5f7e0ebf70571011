"""gmat_sweep.fields: a mission's settable fields, nominal values and override classes."""

from __future__ import annotations

from pathlib import Path

import pytest

from gmat_sweep import fields
from gmat_sweep.errors import SweepConfigError

pytestmark = pytest.mark.slow


def test_fields_lists_resources_in_script_order_with_values_and_classes(
    leo_basic: Path, data_dir: Path, parse_error: Path
) -> None:
    table = fields(leo_basic)
    assert list(table.columns) == ["resource", "resource_type", "field_type", "value", "override"]
    assert table.index.name == "path"
    assert list(dict.fromkeys(table["resource"])) == ["Sat", "FM", "Prop", "RF"]
    assert table.loc["Sat.SMA", "value"] == pytest.approx(6778.137, abs=1e-9)
    assert table.loc["Sat.SMA", ["resource_type", "field_type", "override"]].tolist() == [
        "Spacecraft", "Real", "live"
    ]  # fmt: skip
    # Sub-resource fields and a Propagator's integrator settings, as GMAT saves them.
    assert table.loc["FM.GravityField.Earth.Degree", "value"] == 4
    assert table.loc["Prop.MaxStep", ["value", "override"]].tolist() == [120.0, "live"]
    # The Propagator holds a clone of the ForceModel: every FM field is applied at load time.
    assert set(table.loc[table["resource"] == "FM", "override"]) == {"load-time"}
    assert table.loc["RF.Filename", ["value", "override"]].tolist() == ["leo_basic.txt", "refused"]
    assert "RF.UpperLeft" not in table.index  # GMAT cannot read it back

    targeting = fields(data_dir / "hohmann_target.script")
    assert targeting.loc["TargetRadius.Value", ["resource_type", "value", "override"]].tolist() == [
        "Variable", 42164.0, "live"
    ]  # fmt: skip
    assert targeting.loc["TOI.Element1", "resource_type"] == "ImpulsiveBurn"
    # A solver writes its progress report: moving that file is refused like a ReportFile's.
    assert targeting.loc["DC.ReportFile", "override"] == "refused"

    # GMAT drops API writes of an integrator type: a sweep writes it into the script.
    assert table.loc["Prop.Type", "override"] == "load-time"

    with pytest.raises(SweepConfigError, match=r"(?s)GMAT cannot load parse_error.script: .*SMAX"):
        fields(parse_error)
    with pytest.raises(SweepConfigError, match=r"'nowhere.script' is not a file"):
        fields("nowhere.script")


def test_fields_lists_the_frame_a_state_is_given_in_as_a_sweep_applies_it(
    data_dir: Path, tmp_path: Path
) -> None:
    # GMAT converts Orbiter's Keplerian elements through LunaInertial as it loads the
    # script: an API write of its Origin afterwards would leave the state where it was.
    lunar = data_dir / "lunar_fm.script"
    table = fields(lunar)
    frame = table.loc[table["resource"] == "LunaInertial", "override"]
    assert frame.to_dict() == {"LunaInertial.Origin": "load-time", "LunaInertial.Axes": "load-time"}
    # A frame no spacecraft's state is given in is written through the API.
    text = lunar.read_text().replace(
        "Create ReportFile",
        "Create CoordinateSystem Spare;\nSpare.Origin = Luna;\n"
        "Spare.Axes = MJ2000Eq;\n\nCreate ReportFile",
        1,
    )
    spare = tmp_path / "spare.script"
    spare.write_text(text)
    assert fields(spare).loc["Spare.Origin", "override"] == "live"
    # The class a sweep gives the override is the listed one.
    from gmat_sweep import worker

    worker._scripts.clear()
    assert worker.check_fields(lunar, {"LunaInertial.Origin": ["Earth"]}) == []
    assert worker._script(worker._mission_sha256(lunar)).classes == {
        "LunaInertial.Origin": worker.LOAD_TIME
    }
