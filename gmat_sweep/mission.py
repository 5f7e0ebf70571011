"""What a mission offers a sweep: its resources, their settable fields and nominal values.

:func:`fields` answers "which field paths can I sweep, and what do they hold
now?" before any sweep is written. The mission is loaded once in a GMAT host
process (:class:`~gmat_sweep.backends._subprocess.GmatHost`), never in the
caller's process, whose GMAT context stays free. The fields are the ones GMAT
itself writes when it saves the script (its ``GetGeneratingString``), so
sub-resource fields such as ``FM.GravityField.Earth.Degree`` and a
Propagator's integrator settings are listed too, and each is classified the
way a sweep will treat an override of it (see :mod:`gmat_sweep.worker`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from gmat_sweep.errors import SweepConfigError

if TYPE_CHECKING:
    import pandas as pd


class MissionField(msgspec.Struct, frozen=True):
    """One settable field of a loaded mission.

    Attributes
    ----------
    resource:
        The resource's name, e.g. ``"Sat"``.
    resource_type:
        Its type as the script creates it, e.g. ``"Spacecraft"``.
    path:
        The field path a sweep overrides, e.g. ``"Sat.SMA"`` or
        ``"TargetRadius.Value"``, or ``"Gains(2, 1)"`` for an Array element.
    field_type:
        GMAT's type of the field (``"Real"``, ``"Integer"``, ``"OnOff"``,
        ``"Object"`` ...).
    value:
        The nominal value, as GMAT holds it once the script is loaded.
    override:
        How a sweep applies an override of it: ``"live"``, ``"load-time"``
        or ``"refused"`` (:data:`gmat_sweep.worker.LIVE`,
        :data:`~gmat_sweep.worker.LOAD_TIME`, :data:`~gmat_sweep.worker.REFUSED`).
    """

    resource: str
    resource_type: str
    path: str
    field_type: str
    value: Any
    override: str


def mission_fields(mission: str | Path) -> list[MissionField]:
    """Every settable field of ``mission``, resource by resource in script order.

    The list behind :func:`fields` and ``gmat-sweep fields``; see :func:`fields`.

    Raises
    ------
    SweepConfigError
        ``mission`` is not a file, or GMAT cannot load it (the message carries
        GMAT's diagnostic).
    BackendError
        The GMAT host process could not start, or died.
    """
    from gmat_sweep.backends._subprocess import GmatHost

    script = checked_script(mission)
    host = GmatHost()
    try:
        return host.fields(script)
    finally:
        host.close()


def checked_script(mission: str | Path, argument: str = "mission") -> Path:
    """``mission`` as an absolute path; :class:`SweepConfigError` when it is not a file.

    ``argument`` is the name the caller gave the path, for the message.
    """
    if not isinstance(mission, str | os.PathLike) or not isinstance(os.fspath(mission), str):
        raise SweepConfigError(
            f"{argument}={mission!r} of type {type(mission).__name__} is not a path; pass the "
            "path of a GMAT .script as a str or pathlib.Path"
        )
    script = Path(mission).expanduser()
    if not script.is_file():
        raise SweepConfigError(
            f"{argument} {str(mission)!r} is not a file; pass the path of a GMAT .script"
        )
    return script.resolve()


def fields(mission: str | Path) -> pd.DataFrame:
    """The settable fields of a mission, with their nominal values and how a sweep applies them.

    Loads the mission once in a GMAT process (about two seconds) and lists,
    for every resource the script creates (``Create Type Name``), each field
    GMAT writes when it saves the script: the resource's own fields
    (``Sat.SMA``), sub-resource fields (``FM.GravityField.Earth.Degree``), a
    Propagator's integrator settings (``Prop.InitialStepSize``), and
    ``Name.Value`` for a ``Variable`` or ``String``. ``Array`` resources have
    no field a sweep can set and are not listed. Fields whose value GMAT
    cannot read back are left out, since a sweep checks every override by
    reading it back.

    Parameters
    ----------
    mission:
        Path to the GMAT ``.script``.

    Returns
    -------
    pandas.DataFrame
        One row per field, indexed by ``path`` (the key to use in ``grid``,
        ``samples`` or ``perturb``), with columns ``resource``,
        ``resource_type``, ``field_type``, ``value`` (the nominal value, in
        the field's GMAT units; an orbital element is read from the Cartesian
        state GMAT keeps, so it can differ from the script in the last
        digits) and ``override``: ``"live"`` (written through the API after
        the load), ``"load-time"`` (written into the script text before the
        load, because GMAT ignores API writes to it, as for a ForceModel a
        Propagator uses) or ``"refused"`` (a file name GMAT writes). The
        class is the one a sweep gives an override of the field, decided
        from the mission's structure before any value is written: a
        ``Propagator.Type`` (GMAT drops its API writes) and every field of a
        frame a spacecraft's state is given in (``LunaInertial.Origin``) are
        load-time. What only a value can show is listed as live and made
        load-time when a sweep checks its values: an API write GMAT drops
        that is not known beforehand, or a field the script converts a
        spacecraft's state through when written (a created body's ``Mu``;
        the built-in bodies, such as ``Earth.Mu``, are not listed). Either
        way the override takes effect.

    Raises
    ------
    SweepConfigError
        ``mission`` is not a file, or GMAT cannot load it.
    BackendError
        The GMAT host process could not start, or died.

    See Also
    --------
    sweep, monte_carlo : sweep the fields found here.
    gmat_run.Mission.load : the mission itself, to read any field
        (``mission["Sat.SMA"]``).

    Examples
    --------
    >>> from gmat_sweep import examples, fields
    >>> table = fields(examples.path("leo_basic"))  # doctest: +SKIP
    >>> table.loc["Sat.SMA", ["value", "override"]].tolist()  # doctest: +SKIP
    [6778.137000000002, 'live']
    >>> set(table.loc[table["resource"] == "FM", "override"])  # doctest: +SKIP
    {'load-time'}
    """
    import pandas as pd

    rows = [msgspec.structs.asdict(found) for found in mission_fields(mission)]
    columns = ["path", "resource", "resource_type", "field_type", "value", "override"]
    return pd.DataFrame(rows, columns=columns).set_index("path")
