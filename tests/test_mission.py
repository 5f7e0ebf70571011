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

    with pytest.raises(SweepConfigError, match=r"(?s)GMAT cannot load parse_error.script: .*SMAX"):
        fields(parse_error)
    with pytest.raises(SweepConfigError, match=r"'nowhere.script' is not a file"):
        fields("nowhere.script")
