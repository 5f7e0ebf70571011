"""Run one GMAT mission: the only code in gmat_sweep that touches GMAT.

:func:`run_one` turns a :class:`~gmat_sweep.spec.RunSpec` into a
:class:`~gmat_sweep.spec.RunOutcome`. It loads each script text once per
process and reuses the loaded mission for every later run of the same text
(the cache is keyed by the SHA-256 of the text loaded, of the script and its
``#Include`` files, and by the file it was loaded from, so an edited script or
included file, or a copy that reads the files beside it in another directory,
is reloaded). The files a script reads are not part of the key: GMAT reads a
gravity model's ``PotentialFile`` and opens a ``SolarSystem.SPKFilename``
kernel again when each run starts, so an edited one takes effect without a
reload (measured with the wheel's GMAT R2026a engine). GMAT keeps one live
configuration per process, so the cache holds one mission at a time.

Reusing a loaded mission must not let one run's overrides leak into the next:
GMAT keeps a spacecraft's orbit as Cartesian state, so writing ``Sat.SMA``
on top of an earlier run's write leaves round-off in the other elements and
the result differs from a fresh load in the last bits. Before its first
write to a resource the worker keeps a clone of it, and before every run it
copies the clone back over each resource an earlier run touched. Runs are
therefore bit-identical to runs on a freshly loaded script, whatever ran
before them in the same process.

**What an override changes.** An API write after the load does not always
reach the run: a Propagator clones its ForceModel while the script is parsed,
so ``FM.*`` writes read back on ``FM`` and never reach the propagator, and
``Prop.Type`` writes are dropped. Each override path is therefore classified
from the engine itself:

- **load-time** when another configured object holds a *different instance*
  (a clone) of its resource (found through the engine's ``GetODEModel``,
  ``GetOwnedObject`` and ``GetRefObject``), when the field names a resource
  its object holds as a clone (``Prop.FM``), when the field's type is one the
  API cannot write (On/Off), when it gives the frame of the state after it
  in the script (``Sat.CoordinateSystem``, ``Sat.DateFormat``,
  :data:`_FRAMES`), when it is a ``String``'s ``Value`` (see
  :func:`_engine_field`), when it belongs to the frame a spacecraft's state
  is given in (its ``Origin``, ``Axes``: :data:`_STATE_FRAME`), when an API
  write is dropped (``Propagator.Type``, :data:`_DROPPED`, or found at run
  time: the field still holds its old value afterwards), or when the script
  converts a spacecraft's state through the field (see
  :func:`_probe_states`: a central body's ``Mu``);
- **refused** when the field names a file the engine writes (a ``FILENAME``
  field of an output resource: ReportFile, EphemerisFile, ContactLocator and
  the engine's other Subscribers and EventLocators), when the mission
  sequence sets the value before reading it
  (:func:`gmat_sweep.script.overwritten_values`), when a value does not fit
  the field's type, when it would leave a report gmat-run cannot read (a
  ReportFile's ``WriteHeaders`` or ``FixedWidth`` false), or when GMAT cannot
  load the script with a load-time value written into it;
  :func:`check_fields` reports these before any run;
- **live** otherwise: written through the API after the load.

Load-time overrides are written into the script text
(:func:`gmat_sweep.script.render_script`), and the rendered text is loaded
from this process's temporary directory; runs with the same rendered text
share one load. A script with a ``GroundTrackPlot`` created before a
``ReportFile`` is always loaded rendered, with the plot moved after it: the
headless engine writes no file for a ``ReportFile`` created after one. After
the overrides are applied every overridden field is read back: a value that
did not take effect fails the run with the field, the requested value and the
value the engine holds. Reals compare with a relative and absolute tolerance
of 1e-12 (the engine stores orbits as Cartesian state, so ``Sat.SMA = 7000``
reads back ``7000.000000000003``), also modulo whole turns of 360 (angles are
normalised); the angles of a spacecraft's orbit (``TA``, ``AOP``, ``MLONG``
...) compare on the circle within :data:`ORBIT_ANGLE_TOLERANCE` degrees, as
they lose digits on near-circular orbits, and Brouwer mean elements, which
GMAT converts by iteration, within :data:`MEAN_ELEMENT_TOLERANCE` and
:data:`MEAN_ANGLE_TOLERANCE`. Gregorian epochs compare as times
and ModJulian epochs as numbers to the 16 significant digits GMAT prints them
with.

GMAT writes a run's files into the process's run directory, emptied after
each run (:func:`_run_directory`); the parsed outputs are
written as Parquet under ``spec.output_dir`` (any fsspec URL) through
:func:`gmat_sweep.storage.atomic_write`, next to the run's own GMAT log
``gmat.log``. A run's own failure (load, override, read-back or run error)
is returned as a ``failed`` outcome carrying the traceback and the tail of
the engine log; :func:`run_one` never raises for it.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import io
import math
import os
import re
import shutil
import tempfile
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path, PurePath
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from gmat_sweep import storage
from gmat_sweep.engine import ensure_engine
from gmat_sweep.errors import OverrideNotAppliedError, SweepConfigError
from gmat_sweep.mission import MissionField
from gmat_sweep.script import (
    REPORT_LAYOUT,
    array_element,
    assigned_fields,
    assignment,
    canonical_path,
    canonical_script_sha256,
    needs_rendering,
    output_settings,
    overwritten_values,
    readable_ephemeris_formats,
    render_script,
    resource_of,
    resources,
    script_includes_sha256,
    script_value,
    text_sha256,
)
from gmat_sweep.spec import CONVERGED, LOG_NAME, PathLike, RunOutcome, RunSpec

LIVE = "live"
"""Class of an override written through the GMAT API after the load."""

LOAD_TIME = "load-time"
"""Class of an override written into the script text before the load."""

REFUSED = "refused"
"""Class of a field no sweep may override: the name of a file GMAT writes."""

READ_BACK_TOLERANCE = 1e-12
"""Relative and absolute tolerance of a real field's read-back."""

ORBIT_ANGLE_TOLERANCE = 5e-6
"""Absolute read-back tolerance, in degrees, of an angle of a spacecraft's orbit state.

The engine keeps the orbit as Cartesian state and derives its angles from
it, losing digits on near-circular orbits (``TA`` reads back up to 5e-12 deg
off at ``ECC = 0``, 5e-11 at 0.001 and 6e-9 at 1e-5) and at periapsis and
apoapsis of an eccentric or hyperbolic one, where its arccosine loses half
the digits (``TA = 0`` reads back 1.2e-6 deg off at ``ECC = 0.73``, up to
1.5e-6 measured over ``ECC`` 0.5-20). 5e-6 deg is about half a metre along a
low Earth orbit."""

MEAN_ELEMENT_TOLERANCE = 1e-7
"""Relative and absolute read-back tolerance of a Brouwer mean ``SMA`` or ``ECC``.

GMAT turns mean elements into its Cartesian state by iteration, which stops
short of an exact inverse: ``BrouwerLongSMA`` reads back up to 9e-9 relative
off and ``BrouwerLongECC`` 1e-8 (``BrouwerShort*`` 3e-11), measured over LEO
to 30000 km orbits with ``ECC`` from 1e-5 to 0.5."""

MEAN_ANGLE_TOLERANCE = 1e-3
"""Absolute read-back tolerance, in degrees, of a Brouwer mean ``INC``, ``RAAN``, ``AOP``, ``MA``.

Measured like :data:`MEAN_ELEMENT_TOLERANCE`: up to 1.1e-4 deg (``BrouwerLongAOP``
and ``MA`` at ``ECC`` 0.001-0.01), 6e-7 for ``INC`` and ``RAAN``. Below ``ECC``
1e-4 the BrouwerMeanLong iteration leaves ``AOP`` and ``MA`` up to 0.04 deg off
(their sum holds): such a run fails as an override that did not take effect."""

_ORBIT_ANGLES = frozenset(
    {
        *("INC", "RAAN", "AOP", "TA", "MA", "EA", "HA", "MLONG", "TLONG"),
        *("RA", "DEC", "AZI", "FPA", "RAV", "DECV", "Delaunayl", "Delaunayg", "Delaunayh"),
        *(f"Planetodetic{angle}" for angle in ("LON", "LAT", "AZI", "HFPA")),
        *(f"{way}{angle}" for way in ("Incoming", "Outgoing") for angle in ("RHA", "DHA", "BVAZI")),
        *(
            f"Brouwer{mean}{angle}"
            for mean in ("Short", "Long")
            for angle in ("INC", "RAAN", "AOP", "MA")
        ),
    }
)
"""The angles (degrees) of GMAT's orbit state representations, as a Spacecraft's fields."""
_MEAN_ELEMENTS = frozenset(
    f"Brouwer{mean}{element}"
    for mean in ("Short", "Long")
    for element in ("SMA", "ECC", "INC", "RAAN", "AOP", "MA")
)
"""A Spacecraft's Brouwer-Lyddane mean elements (BrouwerMeanShort, BrouwerMeanLong states)."""
_FRAMES = frozenset({("Spacecraft", "CoordinateSystem"), ("Spacecraft", "DateFormat")})
"""``(type, field)`` of fields that give the frame of the fields after them in a script.

``Sat.CoordinateSystem = EarthEcliptic`` before ``Sat.INC = 28.5`` puts the
orbit at 28.5 deg to the ecliptic, and ``Sat.DateFormat = TTGregorian``
before ``Sat.Epoch = '01 Jun 2026 00:00:00.000'`` puts the epoch on the TT
scale; written through the API after the load, either only re-expresses the
state already loaded, and the run is unchanged. Such a field is load-time:
written into the script in place of its own assignment."""
_DROPPED = frozenset({("PropSetup", "Type")})
"""``(type, field)`` of fields whose API writes the engine drops after the load.

``Prop.Type = PrinceDormand78`` written through the API reads back the old
integrator and the run uses it (measured with the wheel's GMAT R2026a
engine). Known before any write, so ``gmat-sweep fields`` lists it as
load-time; a write found dropped at run time (:func:`_write`) is made
load-time the same way."""
_STATE_FRAME = "CoordinateSystem"
"""The type of the frame a script gives a spacecraft's state in (``Sat.CoordinateSystem = F``).

GMAT converts the state the script gives in that frame to its internal
Cartesian state as the script is loaded: a frame's ``Origin`` or ``Axes``
written through the API afterwards leaves the state converted in the old
frame. Every field of such a frame is load-time (:func:`_state_frames`)."""
_PROBE_VALUES = 8
_PRINTED_DIGITS = 1e-15
"""Relative tolerance of a number GMAT prints to 16 significant digits (a ModJulian epoch)."""
_TURN = 360.0
_LOG_TAIL_LINES = 40
_STOPPED = "GMAT execution stopped by user"
"""What GMAT logs when the mission sequence's ``Stop`` command ends the run."""
_STOP_COMMAND = (
    "A Stop command in the mission sequence ended the run: GMAT reports that as a failed "
    "run and gmat-run keeps none of its outputs. To end some runs early, put the rest of "
    "the sequence in an If branch, or end the Propagate at a stopping condition, "
    "instead of Stop"
)
_DIAGNOSTIC_LINES = 4
_RUN_LOG = "GmatLog.txt"
"""The log gmat-run has GMAT write into a run's working directory."""
_LOAD_LOG = "load.log"
"""The log GMAT writes while a run loads its script, in the run directory."""
_WORK = "work"
"""The run directory's subdirectory gmat-run has GMAT write a run's files into."""
_RUN_DIRECTORY_PREFIX = "gmat-sweep-run-"
"""Name prefix of a process's run directory, in its temporary directory (:func:`_run_directory`)."""


@dataclass
class _Loaded:
    """The one mission this process has loaded, with what runs have changed on it."""

    key: str
    """The SHA-256 of the text loaded (the script's canonical hash, or its rendering's)."""
    base: str
    """:func:`_mission_sha256` of the script it was loaded for."""
    mission: Any
    source: Path
    """The file it was loaded from: GMAT reads the files it names relative to its directory."""
    snapshots: dict[str, Any] = field(default_factory=dict)
    dirty: set[str] = field(default_factory=set)
    clones: dict[str, set[str]] | None = None


_loaded: _Loaded | None = None


@dataclass
class _Script:
    """What this process has learnt about one script, for all its later runs.

    ``classes`` holds each override path's class, decided on the script as
    written (a rendering can lack a field: drag switched off has no
    ``FM.Drag.AtmosphereModel``); ``dropped`` the paths whose API writes do
    not take effect as the script's text does (the engine dropped the write,
    or the script converts a spacecraft's state through the field);
    ``probed`` the live paths :func:`_probe_states` has decided;
    ``output_dirs`` the subdirectories its outputs are written into, and
    ``always_rendered`` whether its runs load the rendered text even with no
    load-time override (:func:`gmat_sweep.script.needs_rendering`),
    ``rendering`` that text; each ``None`` until a run needs it.
    """

    classes: dict[str, str] = field(default_factory=dict)
    dropped: set[str] = field(default_factory=set)
    probed: set[str] = field(default_factory=set)
    output_dirs: list[str] | None = None
    always_rendered: bool | None = None
    rendering: str | None = None


_scripts: dict[str, _Script] = {}
"""Per script (:func:`_mission_sha256`): what runs learnt about it."""


def _script(base: str) -> _Script:
    """What this process knows of the script whose :func:`_mission_sha256` is ``base``."""
    return _scripts.setdefault(base, _Script())


def _mission_sha256(script_path: Path) -> str:
    """A SHA-256 of the text GMAT parses for ``script_path``: the script and its includes.

    GMAT reads an ``#Include`` file while it parses the script, so a mission
    kept loaded across an edit of one would run the old text.
    """
    base = canonical_script_sha256(script_path)
    includes = script_includes_sha256(script_path)
    if not includes:
        return base
    return text_sha256("\n".join([base, *(f"{name} {sha}" for name, sha in includes.items())]))


@dataclass
class _Attempt:
    """What a run got as far as, for its outcome even when it fails."""

    script_sha256: str | None = None


def run_one(
    spec: RunSpec, on_start: Callable[[], None] | None = None, *, durable: bool = True
) -> RunOutcome:
    """Run one mission and write its outputs; never raises for the run's own failure.

    Parameters
    ----------
    spec:
        What to run. ``spec.run_options["storage_options"]`` (optional) is
        passed to fsspec when writing under ``spec.output_dir``.
    on_start:
        Called once the mission is loaded and overridden, just before GMAT
        runs it (the host process uses it to start the run's timeout clock,
        so a cold script load does not count against ``timeout_s``).
    durable:
        ``False`` writes local outputs without fsyncing them: the caller then
        makes them durable with :func:`gmat_sweep.storage.settle` before
        anything records the run (a host's pool does, once the host is free).

    Returns
    -------
    RunOutcome
        ``ok`` with ``output_paths`` keyed ``report__<name>``,
        ``ephemeris__<name>``, ``contact__<name>`` and ``solver__<name>``, or
        ``failed`` with the
        error text and the tail of GMAT's log in ``stderr``. ``script_sha256``
        is the SHA-256 of the script text the run loaded (with its load-time
        overrides rendered in), when it got that far.
    """
    started = datetime.now(UTC)
    options = spec.run_options.get("storage_options") or {}
    scratch = _run_directory()
    logs = (scratch / _LOAD_LOG, scratch / _WORK / _RUN_LOG)
    attempt = _Attempt()
    try:
        storage.make_dirs(spec.output_dir, options, durable=durable)
        try:
            paths, unwritten = _run(spec, scratch, logs[0], options, on_start, attempt, durable)
        except Exception as exc:
            log = _read_logs(logs)
            detail = _describe_failure(exc, log)
            return RunOutcome.failed(
                spec.run_id, detail, started, datetime.now(UTC), script_sha256=attempt.script_sha256
            )
        finally:
            log = _read_logs(logs)
            # The log is evidence, not a result: atomic, but not worth two fsyncs a run.
            log_file = storage.join(spec.output_dir, LOG_NAME)
            storage.atomic_write(log_file, log.encode(), options, durable=False)
        ended = datetime.now(UTC)
        return RunOutcome.ok(spec.run_id, paths, started, ended, attempt.script_sha256, unwritten)
    except Exception:
        return RunOutcome.failed(
            spec.run_id,
            traceback.format_exc(),
            started,
            datetime.now(UTC),
            script_sha256=attempt.script_sha256,
        )
    finally:
        _empty(scratch)


_run_dir: Path | None = None
"""This process's run directory (:func:`_run_directory`), once a run has made it."""


def _run_directory() -> Path:
    """This process's scratch directory for GMAT's runs: made once, emptied after each run.

    One directory for every run of the process, rather than one made and
    removed per run, spares each run a ``mkdtemp``, a ``mkdir`` and two
    ``rmdir`` (a journalled metadata write each). It holds the log of a load
    (:data:`_LOAD_LOG`) and the run's working directory (:data:`_WORK`); it is
    removed when the process exits (a GMAT host's whole temporary directory
    is removed with it anyway).
    """
    global _run_dir
    if _run_dir is None:
        _run_dir = Path(tempfile.mkdtemp(prefix=_RUN_DIRECTORY_PREFIX))
        atexit.register(shutil.rmtree, _run_dir, ignore_errors=True)
    return _run_dir


def _empty(directory: Path) -> None:
    """Remove what a run left in run directory ``directory``; it stays for the next run.

    The working directory keeps no file of a run, so the next run's outputs
    and log are its own (gmat-run refuses a run whose output file exists).
    Should a file resist, the directory is dropped and the next run makes a
    new one.
    """
    try:
        _remove_contents(directory / _WORK)
        (directory / _LOAD_LOG).unlink(missing_ok=True)
    except OSError:
        global _run_dir
        _run_dir = None
        shutil.rmtree(directory, ignore_errors=True)


def _remove_contents(directory: Path) -> None:
    """Remove every file and subdirectory of ``directory`` (which may not exist), keeping it."""
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)
        else:
            os.unlink(entry.path)


def running_in(temporary_directory: Path) -> bool:
    """Whether a process whose temporary directory is ``temporary_directory`` is inside a run.

    GMAT's run log is in the process's run directory from the moment gmat-run
    points the engine's log at it, just before the mission runs, until the
    run's files are removed after its outputs are written.
    """
    try:
        names = os.listdir(temporary_directory)
    except OSError:
        return False
    return any(
        (temporary_directory / name / _WORK / _RUN_LOG).exists()
        for name in names
        if name.startswith(_RUN_DIRECTORY_PREFIX)
    )


CARTESIAN = ("X", "Y", "Z", "VX", "VY", "VZ")
"""A spacecraft's Cartesian state fields, the form GMAT keeps its orbit in."""


def initial_states(spec: RunSpec, spacecraft: Sequence[str]) -> dict[str, dict[str, float]]:
    """The Cartesian state of each of ``spacecraft`` once ``spec``'s overrides are applied.

    This is the exact state the run starts from (an orbital element written
    through the API is converted to Cartesian state, so the same element
    written as script text can differ in the last bits); a replay script sets
    it to reproduce the run bit for bit.
    """
    scratch = Path(tempfile.mkdtemp(prefix="gmat-sweep-state-"))
    try:
        mission = _prepared(spec, scratch / "load.log", _Attempt()).mission
        return {name: {key: float(mission[f"{name}.{key}"]) for key in CARTESIAN}
                for name in spacecraft}  # fmt: skip
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def check_fields(script_path: Path, values: Mapping[str, Sequence[Any]]) -> list[str]:
    """Load ``script_path`` and return one message per override that would be refused.

    Parameters
    ----------
    script_path:
        The mission script.
    values:
        ``{field path: the distinct values the sweep gives it}``. Every value is
        checked against the field's type; the first few distinct values of a
        live field are written and read back to find writes the engine drops
        (the mission is restored afterwards), and the script is loaded with
        each of the first few values of a load-time field written into it.

    Returns
    -------
    list[str]
        Empty when every override can be applied. Otherwise one message per
        bad path: an unknown field, a file GMAT writes, a value that does not
        fit the field's type, that the engine rejects, or with which GMAT
        cannot load the script. A script GMAT cannot parse yields a single
        message with GMAT's own diagnostic lines.
    """
    overwritten = overwritten_values(script_path)
    try:
        with _inspected(script_path, "gmat-sweep-check-") as loaded:
            problems = [
                problem
                for path, path_values in values.items()
                if (
                    problem := _overwriting(overwritten, path)
                    or _check_one(loaded, path, list(path_values), values)
                )
                is not None
            ]
            _restore(loaded)
            if problems:
                return problems
            classes = {path: _classify(loaded, path) for path in values}
        _probe_states(script_path, {p: v for p, v in values.items() if classes[p] == LIVE})
        script = _script(_mission_sha256(script_path))
        load_time = {p: v for p, v in values.items() if script.classes[p] == LOAD_TIME}
        firsts = {path: _as_written(path, path_values[0]) for path, path_values in values.items()}
        return [
            problem
            for path, path_values in load_time.items()
            if (problem := _unloadable(script_path, path, list(path_values), firsts)) is not None
        ]
    except _LoadFailed as failed:
        return [str(failed)]


def list_fields(script_path: Path) -> list[MissionField]:
    """Load ``script_path``; every field of its resources a sweep could set, with its value.

    The fields of a resource are those GMAT writes when it saves the script
    (``GetGeneratingString``: ``GMAT Sat.SMA = ...;``), so sub-resource fields
    and a Propagator's integrator settings are included; a ``Variable`` or
    ``String`` has its ``Value``. A field whose value cannot be read is left
    out (a sweep could not read an override of it back). Each field is
    classified by :func:`_classify`, as a sweep's override of it is, before
    any value is written: a write the engine drops that is not in
    :data:`_DROPPED`, or a field the script converts a spacecraft's state
    through when written (:func:`_probe_states`), is found only when a
    sweep's values are checked, and is then load-time.

    Raises
    ------
    SweepConfigError
        GMAT cannot load the script; the message carries GMAT's diagnostic.
    """
    try:
        overwritten = overwritten_values(script_path)
        with _inspected(script_path, "gmat-sweep-fields-") as loaded:
            found = []
            for name, kind in resources(script_path).items():
                for path in _settable(loaded, name):
                    field_type, value = _typed_value(loaded, path)
                    if field_type is not None:
                        overridden = _overwriting(overwritten, path) is None
                        override = _override(loaded, path) if overridden else REFUSED
                        found.append(MissionField(name, kind, path, field_type, value, override))
            return found
    except _LoadFailed as failed:
        raise SweepConfigError(f"GMAT cannot load {script_path.name}: {failed}") from None


def _overwriting(overwritten: Mapping[str, str], path: str) -> str | None:
    """Why an override of ``path`` is refused, given ``overwritten``; ``None`` if it is not.

    ``overwritten`` is :func:`gmat_sweep.script.overwritten_values` of the
    mission: an override of a value it lists would be a silent no-op.
    ``path`` is listed itself, or its whole resource is (``Sat2.*``: the
    sequence copies another resource over it).
    """
    path = canonical_path(path)
    statement = overwritten.get(path) or overwritten.get(f"{resource_of(path)}.*")
    if statement is None:
        return None
    instead = (
        "give the Vary an initial value read from a Variable and override that Variable"
        if statement.partition(": ")[2].startswith("Vary")
        else "override what it is computed from, or remove that assignment from the sequence"
    )
    return (
        f"{path!r}: the mission sequence sets it before reading it ({statement}), so an "
        f"override of its starting value never reaches the run; {instead}"
    )


class _LoadFailed(Exception):
    """GMAT could not load a script; the message is the first paragraph of its diagnostic."""


@contextlib.contextmanager
def _inspected(script_path: Path, prefix: str, text: str | None = None) -> Iterator[_Loaded]:
    """``script_path`` (or its rendering ``text``) loaded for a look before any run.

    Its scratch directory is removed after.

    Raises
    ------
    _LoadFailed
        GMAT cannot load the script.
    """
    scratch = Path(tempfile.mkdtemp(prefix=prefix))
    log_path = scratch / "load.log"
    try:
        try:
            loaded = _mission_for(script_path, _mission_sha256(script_path), log_path, text)
        except Exception as exc:
            log = _read_logs((log_path,))
            diagnostic = _describe_failure(exc, log).split("\n\n", 1)[0]
            raise _LoadFailed(diagnostic + _missing_types_hint(log)) from None
        yield loaded
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


_UNKNOWN_TYPE = re.compile(r'The "(\w+)" is an unknown object type')


def _missing_types_hint(log: str) -> str:
    """What to do when the bundled engine does not know a resource type the script creates.

    The gmatpy wheel leaves some GMAT plugins out (``GmatFunction``,
    ``FileInterface``); a full GMAT install has them.
    """
    missing = sorted(set(_UNKNOWN_TYPE.findall(log)))
    if not missing or ensure_engine().kind != "embedded":
        return ""
    named = (
        f"{missing[0]} is"
        if len(missing) == 1
        else f"{', '.join(missing[:-1])} and {missing[-1]} are"
    )
    return (
        f"\n{named} not part of the GMAT engine bundled with gmat_sweep (the gmatpy wheel "
        "leaves out GMAT functions, FileInterface and other plugins); run the "
        "sweep with a full GMAT install: set GMAT_ROOT to its directory"
    )


def _settable(loaded: _Loaded, name: str) -> list[str]:
    """The field paths GMAT writes for resource ``name`` when it saves the script."""
    gmat = loaded.mission.gmat
    obj = _named(gmat, name)
    if obj is None:
        return []
    if obj.GetTypeName() == "Array":
        rows, columns = obj.GetIntegerParameter("NumRows"), obj.GetIntegerParameter("NumCols")
        return [f"{name}({r}, {c})" for r in range(1, rows + 1) for c in range(1, columns + 1)]
    if obj.IsOfType(gmat.PARAMETER):  # Variable, String
        return [f"{name}.Value"]
    assignment = re.compile(rf"GMAT {re.escape(name)}\.([\w.]+)\s*=")
    written = _generating_string(gmat, obj)
    return list(dict.fromkeys(f"{name}.{m[1]}" for m in assignment.finditer(written)))


def _generating_string(gmat: Any, obj: Any) -> str:
    """The script text GMAT writes for ``obj``, also when it was created in an ``#Include`` file.

    GMAT writes nothing for such an object, or for the objects it owns (a
    force model's gravity field), unless each is told to.
    """
    objects = [obj]
    for owner in objects:
        owned = (owner.GetOwnedObject(i) for i in range(owner.GetOwnedObjectCount()))
        objects += [each for each in owned if each is not None]
    forced = [each.GetForceGenerateObjectString() for each in objects]
    for each in objects:
        each.SetForceGenerateObjectString(True)
    try:
        return str(obj.GetGeneratingString(gmat.SCRIPTING))
    finally:
        for each, flag in zip(objects, forced, strict=True):
            each.SetForceGenerateObjectString(flag)


def _typed_value(loaded: _Loaded, path: str) -> tuple[str | None, Any]:
    """GMAT's type name of ``path`` and its value; ``(None, None)`` when it cannot be read."""
    try:
        value = _value(loaded.mission, path)
        if array_element(path) is not None:
            return "Real", value
        resource, name = path.split(".", 1)
        obj = loaded.mission.gmat.GetObject(resource)
        return str(obj.GetParameterTypeString(obj.GetParameterID(_engine_field(obj, name)))), value
    except Exception:  # the engine raises for fields it lists but cannot read (GUI geometry)
        return None, None


def _override(loaded: _Loaded, path: str) -> str:
    try:
        return _classify(loaded, path)
    except SweepConfigError:
        return REFUSED


def _classify(loaded: _Loaded, path: str) -> str:
    """:data:`LOAD_TIME` when an API write to ``path`` cannot reach the run, else :data:`LIVE`.

    Decided from the engine (see the module docstring): the resource is held
    as a clone by another object, the field names a resource its object holds
    as a clone, the field's type cannot be written through the API (On/Off),
    it gives the frame of the fields after it (:data:`_FRAMES`), the engine
    drops its API writes (:data:`_DROPPED`), it belongs to the frame a
    spacecraft's state is given in (:data:`_STATE_FRAME`), it is a
    ``String``'s ``Value``, or an earlier write to it was dropped or did not
    convert a spacecraft's state as the script's text does (:func:`_probe_states`).

    Raises
    ------
    SweepConfigError
        ``path`` names a file an output resource writes (refused).
    """
    script = _script(loaded.base)
    known = script.classes.get(path)
    if known is not None:
        return known
    _value(loaded.mission, path)  # an unknown path raises gmat-run's error, with suggestions
    gmat = loaded.mission.gmat
    obj, name, kind = _field(gmat, path)
    refusal = _output_file_refusal(gmat, obj, kind, path)
    if refusal is not None:  # a run that was never checked (a manifest from elsewhere)
        raise SweepConfigError(refusal)
    clones = _clones(loaded)
    resource = obj.GetName()
    type_name = obj.GetTypeName()
    load_time = (
        path in script.dropped
        or _engine_field(obj, name) != name
        or any(resource in held for held in clones.values())
        or kind == gmat.ON_OFF_TYPE
        or (type_name, name) in _FRAMES
        or (type_name, name) in _DROPPED
        or (type_name == _STATE_FRAME and resource in _state_frames(gmat))
        or (kind == gmat.OBJECT_TYPE and str(obj.GetField(name)) in clones.get(resource, set()))
    )
    script.classes[path] = LOAD_TIME if load_time else LIVE
    return script.classes[path]


def _state_frames(gmat: Any) -> set[str]:
    """The frames the script gives a spacecraft's state in (see :data:`_STATE_FRAME`)."""
    names = gmat.Moderator.Instance().GetListOfObjects(gmat.SPACECRAFT)
    return {str(gmat.GetObject(name).GetField("CoordinateSystem")) for name in names}


def _run(
    spec: RunSpec,
    scratch: Path,
    log_path: Path,
    options: Mapping[str, Any],
    on_start: Callable[[], None] | None,
    attempt: _Attempt,
    durable: bool,
) -> tuple[dict[str, PathLike], tuple[str, ...]]:
    """Run ``spec``; its written outputs' paths, and the keys of the outputs it did not write."""
    loaded = _prepared(spec, log_path, attempt)
    work = scratch / _WORK
    for directory in _output_subdirectories(spec.script_path, loaded.base):
        (work / directory).mkdir(parents=True, exist_ok=True)
    if on_start is not None:
        on_start()
    results = loaded.mission.run(working_dir=work)
    # Only a solver's convergence reads GMAT's log here (run_one keeps the log anyway).
    log = _read_logs((work / _RUN_LOG,)) if results.solver_paths else ""
    paths: dict[str, PathLike] = {}
    for key, table in output_tables(results, log).items():
        target = storage.join(spec.output_dir, f"{key}.parquet")
        storage.atomic_write(target, _parquet_bytes(table), options, durable=durable)
        paths[key] = target
    return paths, tuple(key for key in _declared(results) if key not in paths)


def _declared(results: Any) -> list[str]:
    """The output keys of every report, ephemeris and contact file the mission declares."""
    declared = (
        ("report", results.report_paths),
        ("ephemeris", results.ephemeris_paths),
        ("contact", results.contact_paths),
    )
    return [f"{prefix}__{name}" for prefix, paths in declared for name in paths]


def _output_subdirectories(script_path: Path, base: str) -> list[str]:
    """The subdirectories the script's outputs go into (``'sub'`` for ``'sub/out.txt'``).

    GMAT fails a run whose ReportFile names a directory that did not exist
    when the file name was set ("Cannot open report file"), and gmat-run sets
    it before creating the directory, so the run's directory gets them first.
    """
    script = _script(base)
    if script.output_dirs is None:
        names = output_settings(script_path, "Filename").values()
        parents = {PurePath(name).parent for name in names}
        script.output_dirs = sorted(
            str(parent)
            for parent in parents
            if not parent.is_absolute() and ".." not in parent.parts and parent != PurePath(".")
        )
    return script.output_dirs


def _prepared(spec: RunSpec, log_path: Path, attempt: _Attempt) -> _Loaded:
    """The mission loaded for ``spec`` with every override applied and read back.

    Load-time overrides are rendered into the text; live ones are written
    after restoring the load-time state. A live path is first probed, once per
    process, for a spacecraft state the script converts through it
    (:func:`_probe_states`). A live write the engine drops makes
    its path load-time for good and the run is prepared again (each pass
    moves at least one path, so this ends).
    """
    base = _mission_sha256(spec.script_path)
    overrides = {path: _as_written(path, value) for path, value in spec.overrides.items()}
    while True:
        script = _script(base)
        unknown = [path for path in overrides if path not in script.classes]
        if unknown:
            as_written = _mission_for(spec.script_path, base, log_path)
            for path in unknown:
                _classify(as_written, path)  # fills script.classes
        unprobed = {
            p: [v]
            for p, v in overrides.items()
            if script.classes[p] == LIVE and p not in script.probed
        }
        if unprobed:
            _probe_states(spec.script_path, unprobed)
        load_time = _with_epochs(
            overrides, {p: v for p, v in overrides.items() if script.classes[p] == LOAD_TIME}
        )
        text = render_script(spec.script_path, load_time) if load_time else _plain(spec, script)
        loaded = _mission_for(spec.script_path, base, log_path, text)
        attempt.script_sha256 = loaded.key
        _restore(loaded)
        dropped = _write(loaded, {p: v for p, v in overrides.items() if p not in load_time})
        if not dropped:
            _verify(loaded, overrides)
            return loaded
        _forget_dropped(loaded, dropped)


def _plain(spec: RunSpec, script: _Script) -> str | None:
    """The text a run with no load-time override loads: ``None`` for the script file itself.

    A script :func:`gmat_sweep.script.needs_rendering` is loaded rendered; its
    rendering is the same for every such run, so it is made once.
    """
    if script.always_rendered is None:
        script.always_rendered = needs_rendering(spec.script_path)
    if script.always_rendered and script.rendering is None:
        script.rendering = render_script(spec.script_path, {})
    return script.rendering


def _check_one(
    loaded: _Loaded, path: str, values: list[Any], sweep: Mapping[str, Sequence[Any]]
) -> str | None:
    """Why ``path`` cannot take ``values`` (``None`` when it can).

    ``sweep`` is every path the sweep overrides with its values: a value the
    engine refuses alone is accepted when it is accepted after a value the
    sweep gives another field of the same resource (see :func:`_write`).
    """
    values = [_as_written(path, value) for value in values]
    mission = loaded.mission
    gmat = mission.gmat
    try:
        _value(mission, path)
    except Exception as exc:
        field = _field_of_bare_name(gmat, path)
        if field is not None:
            return (
                f"{path!r} names a resource, not one of its fields; a sweep sets a field: "
                f"write {field} instead"
            )
        statement = assignment(loaded.source, path) if array_element(path) is None else None
        if statement is None:
            return f"{path!r}: {exc}"
        return (
            f"{path!r}: the script sets it ({statement}), but GMAT keeps the value where "
            "its API cannot read or write it (a CoordinateSystem's axes hold Primary, "
            "Secondary and XAxis..ZAxis), so a sweep cannot override it; make one script per "
            "value and sweep each"
        )
    obj, name, kind = _field(gmat, path)
    refusal = _output_file_refusal(gmat, obj, kind, path)
    if refusal is not None:
        return refusal
    for value in values:
        problem = _value_problem(gmat, kind, value)
        if problem is None and _engine_field(obj, name) != name and not value.strip():
            problem = (
                "a String with no text leaves its column of a report empty, so the report "
                "cannot be read back; use a word such as 'none'"
            )
        if problem is None and value is False and _is_report_layout(obj, name):
            problem = (
                "gmat_sweep reads a report by the column names of its header line, split "
                "into fixed-width columns, so a ReportFile's WriteHeaders and FixedWidth stay "
                "true (the values GMAT writes are the same); leave it out of the sweep"
            )
        if problem is None and obj.GetTypeName() == "EphemerisFile":
            problem = _unreadable_ephemeris(mission, path, value, sweep)
        if problem is not None:
            return f"{path!r}={value!r}: {problem}"
    if _classify(loaded, path) == LIVE:
        # The values come deduplicated from the driver; a few probes find a dropped write.
        for value in values[:_PROBE_VALUES]:
            try:
                dropped = _write(loaded, {path: value})
            except Exception as exc:
                if _accepted_beside(loaded, path, value, sweep):
                    continue
                return (
                    f"{path!r}={value!r}: the engine refused the value ({exc}); use a value "
                    "the field accepts"
                )
            if dropped:
                _forget_dropped(loaded, dropped)
                break
    if _classify(loaded, path) == LOAD_TIME:
        for value in values:
            try:
                script_value(value)
            except SweepConfigError as exc:
                return f"{path!r}={value!r}: {exc}"
    return None


def _is_report_layout(obj: Any, name: str) -> bool:
    """Whether ``name`` is a :data:`~gmat_sweep.script.REPORT_LAYOUT` field of a ReportFile."""
    return name in REPORT_LAYOUT and obj.GetTypeName() == "ReportFile"


def _unreadable_ephemeris(
    mission: Any, path: str, value: Any, sweep: Mapping[str, Sequence[Any]]
) -> str | None:
    """Why an EphemerisFile override would leave every run taking it unreadable (or ``None``).

    The rule :func:`gmat_sweep.api.sweep` applies to the script's own settings: a
    written ephemeris must be in a format gmat-run reads
    (:func:`~gmat_sweep.script.readable_ephemeris_formats`).
    """
    readable = readable_ephemeris_formats()
    resource, name = path.rsplit(".", 1)
    if name == "FileFormat" and value not in readable:
        switch = f"{resource}.WriteEphemeris"
        if switch not in sweep and str(_value(mission, switch)).lower() == "false":
            return None
        return (
            f"gmat-run reads only {' and '.join(sorted(readable))} ephemerides, so every run "
            "taking it would fail reading its file; sweep those formats only (SPK needs "
            "spiceypy: pip install 'gmat-run[spiceypy]')"
        )
    file_format = f"{resource}.FileFormat"
    if name == "WriteEphemeris" and value is True and file_format not in sweep:
        held = str(_value(mission, file_format))
        if held not in readable:
            return (
                f"the ephemeris is a {held} file, which gmat-run cannot read, so every run "
                f"taking it would fail reading it; set {file_format} = CCSDS-OEM (or "
                "STK-TimePosVel) in the script, or leave it out of the sweep"
            )
    return None


def _accepted_beside(
    loaded: _Loaded, path: str, value: Any, sweep: Mapping[str, Sequence[Any]]
) -> bool:
    """Whether the engine takes ``value`` for ``path`` beside a sweep value of a sibling field.

    A sibling is another field of the same resource; each of the first few
    values the sweep gives it is written with ``value`` (see :func:`_write`),
    and the mission is restored after each try.
    """
    resource = resource_of(path)
    for other, others in sweep.items():
        if other == path or resource_of(other) != resource:
            continue
        for beside in others[:_PROBE_VALUES]:
            try:
                _write(loaded, {other: _as_written(other, beside), path: value})
                return True
            except Exception:  # the engine refuses this pair: try the next
                continue
            finally:
                _restore(loaded)
    return False


def _as_written(path: str, value: Any) -> Any:
    """``value`` as it is written to ``path``: a number given for an epoch is written as text.

    GMAT holds a spacecraft's ``Epoch`` as text in its ``DateFormat``; a
    ModJulian epoch is a number of days, as Monte Carlo and Latin-hypercube
    draws give it (``31000.5`` is written as ``'31000.5'``). A Gregorian
    ``DateFormat`` refuses a number, and the sweep is refused before any run.
    """
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return repr(float(value)) if number and path.endswith(".Epoch") else value


def _unloadable(
    script_path: Path, path: str, values: list[Any], firsts: Mapping[str, Any]
) -> str | None:
    """Why the script cannot take one of the first few ``values`` of load-time ``path`` as text.

    A load-time value is only seen by GMAT's script parser, which refuses
    what the sweep's own checks let through (an unknown atmosphere model, a
    gravity file that does not exist): each value is written alone into the
    script (a ``DateFormat`` with the first swept ``Epoch`` of its spacecraft,
    :func:`_with_epochs`; ``firsts`` holds each swept path's first value),
    which is loaded once. A path the script does not assign is added after
    the resource's own settings (:func:`gmat_sweep.script.render_script`),
    where GMAT may reset them (a Propagator's ``Type`` makes a new integrator,
    whose ``MaxStep`` is GMAT's default, not the script's): every setting of
    the resource must then read as it does in the script as written.
    """
    resource = resource_of(path)
    settings = assigned_fields(script_path, resource)
    own = None
    now = "..."
    if path not in settings and settings:
        with _inspected(script_path, "gmat-sweep-probe-") as loaded:
            own = _readable(loaded.mission, settings)
            with contextlib.suppress(Exception):  # a value with no script form keeps '...'
                now = script_value(_value(loaded.mission, path))
    for value in values[:_PROBE_VALUES]:
        written = _with_epochs(firsts, {path: value})
        text = render_script(script_path, written)
        try:
            with _inspected(script_path, "gmat-sweep-probe-", text) as rendered:
                kept = [setting for setting in own or {} if setting not in written]
                held = _readable(rendered.mission, kept)
        except _LoadFailed as failed:
            rendered_path = str(_rendered_path(text_sha256(text)))
            lines = str(failed).replace(rendered_path, script_path.name).splitlines()
            return (
                f"{path!r}={value!r}: GMAT cannot load the mission with this value "
                f"({'; '.join(lines[1:] or lines)}); use a value GMAT accepts in the script"
            )
        reset = [  # a setting the value removes (a force switched off) is not read
            f"{setting} = {own[setting]!r} becomes {held[setting]!r}"
            for setting in held
            if own is not None and not same_value(own[setting], held[setting])
        ]
        if reset:
            return (
                f"{path!r}={value!r}: the script does not set {path}, so the sweep adds it "
                f"after {resource}'s own settings, where GMAT resets them ({'; '.join(reset)}); "
                f"add '{path} = {now};' (its value now) to the script before {resource}'s "
                "other settings (where GMAT's GUI saves it), so that the sweep replaces it "
                "in place"
            )
    return None


def _readable(mission: Any, paths: list[str]) -> dict[str, Any]:
    """``{path: value}`` of those of ``paths`` the engine can read."""
    values = {}
    for path in paths:
        try:
            values[path] = _value(mission, path)
        except Exception:  # a setting the engine cannot read back (GUI geometry)
            continue
    return values


def _with_epochs(overrides: Mapping[str, Any], load_time: Mapping[str, Any]) -> dict[str, Any]:
    """``load_time`` plus the ``Epoch`` override of each spacecraft it sets a ``DateFormat`` of.

    The script's own epoch may not parse in a swept ``DateFormat`` (a
    Gregorian date under ``UTCModJulian``); the epoch the run asks for does, so
    it is written into the text beside it.
    """
    rendered = dict(load_time)
    for path in load_time:
        resource, _, name = path.partition(".")
        epoch = f"{resource}.Epoch"
        if name == "DateFormat" and epoch in overrides:
            rendered[epoch] = overrides[epoch]
    return rendered


def _output_file_refusal(gmat: Any, obj: Any, kind: int, path: str) -> str | None:
    """Why ``path`` may not be overridden when it names a file a resource writes.

    Report and ephemeris files (subscribers), event locators' reports and
    solvers' progress reports are written, so they must stay in the run's
    directory; a file a resource only reads (a gravity or 3-D model file) may
    be overridden.
    """
    writers = (gmat.SUBSCRIBER, gmat.EVENT_LOCATOR, gmat.SOLVER)
    if kind != gmat.FILENAME_TYPE or not any(obj.IsOfType(writer) for writer in writers):
        return None
    return (
        f"{path!r} names the file a {obj.GetTypeName()} writes; overriding it would move "
        "the output away from the run's directory, where gmat_sweep collects it, so it is "
        "refused; leave the file name in the script (each run already writes into its own "
        "run-NNNNNN directory)"
    )


def _value_problem(gmat: Any, kind: int, value: Any) -> str | None:
    """Why ``value`` does not fit a field of GMAT parameter type ``kind`` (``None`` if it does)."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind == gmat.REAL_TYPE:
        if number and math.isfinite(value):
            return None
        return (
            "the field is a real number; NaN, infinity, None, strings and lists are "
            "refused; pass a finite number"
        )
    if kind in (gmat.INTEGER_TYPE, gmat.UNSIGNED_INT_TYPE):
        if number and math.isfinite(value) and float(value).is_integer():
            return None
        return "the field is an integer; pass a whole number such as 4"
    if kind == gmat.BOOLEAN_TYPE:
        return None if isinstance(value, bool) else "the field is a boolean; pass True or False"
    if kind == gmat.ON_OFF_TYPE:
        return None if value in ("On", "Off") else "the field is On/Off; pass 'On' or 'Off'"
    if kind in (gmat.STRINGARRAY_TYPE, gmat.OBJECTARRAY_TYPE):
        if isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
            return None
        return "the field is a list of names; pass a flat list of strings such as ['Luna', 'Sun']"
    if kind == gmat.RVECTOR_TYPE:
        if isinstance(value, list | tuple) and all(
            isinstance(item, int | float) and not isinstance(item, bool) and math.isfinite(item)
            for item in value
        ):
            return None
        return "the field is a vector; pass a flat list of finite numbers"
    if kind == gmat.RMATRIX_TYPE:
        if isinstance(value, list | tuple) and all(isinstance(row, list | tuple) for row in value):
            return None
        return "the field is a matrix; pass a list of rows of numbers"
    if isinstance(value, str):
        return None
    return "the field holds text; pass a string"


def _write(loaded: _Loaded, overrides: Mapping[str, Any]) -> set[str]:
    """Write ``overrides`` through the API; return the paths whose write the engine dropped.

    A write is dropped when the field still holds its old value and that is
    not the value asked for. A write the engine refuses is tried again once
    the others are written, as long as a pass writes something: the elements
    of an orbit constrain each other (GMAT refuses ``RadApo`` below the
    current ``RadPer``, so lowering both works only with ``RadPer`` first).

    Raises
    ------
    gmat_run.errors.GmatFieldError
        The engine refuses a write whatever is written before it (the first
        refusal of the last pass).
    """
    from gmat_run.errors import GmatFieldError

    mission = loaded.mission
    dropped = set()
    pending = sorted(overrides)
    while pending:
        refused: list[tuple[str, GmatFieldError]] = []
        for path in pending:
            resource = resource_of(path)
            if resource not in loaded.snapshots:
                loaded.snapshots[resource] = _clone(mission, resource)
            loaded.dirty.add(resource)
            before = _value(mission, path)
            try:
                _assign(mission, path, overrides[path])
            except GmatFieldError as exc:
                refused.append((path, exc))
                continue
            after = _value(mission, path)
            if after == before and not same_value(overrides[path], after):
                dropped.add(path)
        if len(refused) == len(pending):
            raise refused[0][1]
        pending = [path for path, _ in refused]
    return dropped


def _forget_dropped(loaded: _Loaded, dropped: set[str]) -> None:
    """Remember that writes to ``dropped`` do not take effect: they are load-time from now on."""
    script = _script(loaded.base)
    script.dropped.update(dropped)
    for path in dropped:
        script.classes.pop(path, None)


def _probe_states(script_path: Path, values: Mapping[str, Sequence[Any]]) -> None:
    """Find the live paths of ``values`` the script converts a spacecraft's state through.

    GMAT converts a spacecraft's state, as the script gives it (Keplerian
    elements in a Moon-centred frame ...), to its internal Cartesian state
    when the script is loaded, through other resources' fields: the central
    body's ``Mu``, the frame's ``Origin``. An API write of such a field after
    the load leaves the state converted with the old value, so the run would
    start elsewhere than with the same value written into the script.

    For each path, the first of its ``values`` (at most :data:`_PROBE_VALUES`)
    that the field does not already hold and the engine takes is written
    through the API; a write that changes a state is the state itself (an
    orbit element) and stays live. The script is then loaded with the others'
    values written into it (:func:`gmat_sweep.script.render_script`): when
    every spacecraft's internal state and epoch are those of the API writes,
    all stay live; otherwise each is loaded alone, and a path whose text
    gives another state is load-time from then on, in this process. A path
    with no such value stays undecided, for a later run's value to decide.
    """
    script = _script(_mission_sha256(script_path))
    chosen: dict[str, Any] = {}
    with _inspected(script_path, "gmat-sweep-state-") as loaded:
        _restore(loaded)  # an earlier run's writes
        before = _states(loaded.mission)
        for path, path_values in values.items():
            for value in [_as_written(path, value) for value in path_values[:_PROBE_VALUES]]:
                try:
                    if same_value(value, _value(loaded.mission, path)):
                        continue
                    _write(loaded, {path: value})
                    written = _states(loaded.mission)
                except Exception:  # the engine refuses the value: try the next
                    continue
                finally:
                    _restore(loaded)
                if written == before:
                    chosen[path] = value
                else:
                    script.probed.add(path)
                break
    if chosen and _loaded_states(script_path, chosen) != before:
        for path, value in chosen.items():
            if (states := _loaded_states(script_path, {path: value})) is not None:
                script.probed.add(path)
                if states != before:
                    script.dropped.add(path)
                    script.classes[path] = LOAD_TIME
    else:
        script.probed.update(chosen)


def _loaded_states(
    script_path: Path, overrides: Mapping[str, Any]
) -> dict[str, tuple[list[float], float]] | None:
    """:func:`_states` of the script loaded with ``overrides`` written in; None if it cannot be."""
    try:
        text = render_script(script_path, overrides)
        with _inspected(script_path, "gmat-sweep-state-", text) as rendered:
            return _states(rendered.mission)
    except (_LoadFailed, SweepConfigError):
        return None


def _states(mission: Any) -> dict[str, tuple[list[float], float]]:
    """Every spacecraft's internal state (Cartesian, Earth MJ2000 equator) and epoch."""
    gmat = mission.gmat
    names = gmat.Moderator.Instance().GetListOfObjects(gmat.SPACECRAFT)
    states = {}
    for name in names:
        state = gmat.GetObject(name).GetState()
        states[name] = (list(state.GetState()), float(state.GetEpoch()))
    return states


def _verify(loaded: _Loaded, overrides: Mapping[str, Any]) -> None:
    """Read every override back; raise when one does not hold the value asked for."""
    wrong = []
    for path in sorted(overrides):
        held = _read_back(loaded.mission, path)
        if not _comparison(loaded.mission.gmat, path)(overrides[path], held):
            wrong.append(f"{path}: requested {overrides[path]!r}, the engine holds {held!r}")
    if wrong:
        raise OverrideNotAppliedError(
            "override did not take effect (" + "; ".join(wrong) + "); GMAT changed or ignored "
            "the value, so the run was not made with the value asked for; choose a value the "
            "field accepts as given"
        )


def _comparison(gmat: Any, path: str) -> Callable[[Any, Any], bool]:
    """How the value ``path`` holds is compared with the override asked for.

    An angle of a spacecraft's orbit state (``Sat.TA``) compares on the
    circle; a Brouwer mean element within the tolerances of GMAT's iterative
    conversion (:data:`MEAN_ELEMENT_TOLERANCE`, :data:`MEAN_ANGLE_TOLERANCE`).
    """
    resource, _, name = path.partition(".")
    if name not in _ORBIT_ANGLES and name not in _MEAN_ELEMENTS:
        return same_value
    obj = _named(gmat, resource)
    if obj is None or obj.GetTypeName() != "Spacecraft":
        return same_value
    if name not in _MEAN_ELEMENTS:
        return same_angle
    if name in _ORBIT_ANGLES:
        return functools.partial(same_angle, tolerance=MEAN_ANGLE_TOLERANCE)
    return functools.partial(same_value, tolerance=MEAN_ELEMENT_TOLERANCE)


def same_angle(requested: Any, held: Any, *, tolerance: float = ORBIT_ANGLE_TOLERANCE) -> bool:
    """Whether an orbit angle reading ``held`` holds ``requested`` (degrees).

    They match within ``tolerance`` on the circle, whole turns apart (``360``
    is ``0``); values that are not both numbers are compared by
    :func:`same_value`.
    """
    numbers = [isinstance(v, int | float) and not isinstance(v, bool) for v in (requested, held)]
    if not all(numbers):
        return same_value(requested, held)
    apart = (held - requested + _TURN / 2) % _TURN - _TURN / 2
    return bool(abs(apart) <= tolerance)


def _read_back(mission: Any, path: str) -> Any:
    """The value ``path`` holds; a sub-field its own value removed is read through its parent.

    ``FM.Drag.AtmosphereModel = None`` removes the ``Drag`` sub-resource, so
    the field no longer exists and ``FM.Drag`` holds the value instead.
    """
    from gmat_run.errors import GmatFieldError

    try:
        return _value(mission, path)
    except GmatFieldError:
        parent = path.rsplit(".", 1)[0]
        if "." not in parent:
            raise
        return mission[parent]


def _value(mission: Any, path: str) -> Any:
    """The value ``path`` holds: read through gmat-run, or from a force model's own force.

    A ``String``'s ``Value`` is read from the field that holds it (see
    :func:`_engine_field`). A ForceModel lists the real fields of its drag and SRP forces
    (``FM.Drag.F107``, ``FM.SRP.Flux``) but raises "Parameter id ... not
    defined" when one is read; such a field is read from the force it names
    (``Drag`` is the force ``Drag.Earth``).
    """
    cell = _array_cell(mission.gmat, path)
    if cell is not None:
        array, row, column = cell
        return array.GetRealParameter("SingleValue", row, column)
    resource, _, name = path.partition(".")
    if name == "Value":  # only a Value can be held under another name: look the object up
        obj = _named(mission.gmat, resource)
        if obj is not None and _engine_field(obj, name) != name:
            return mission[f"{resource}.{_engine_field(obj, name)}"]
    try:
        return mission[path]
    except Exception:
        field = _force_field(mission.gmat, path)
        if field is None:
            raise
        force, name = field
        return force.GetRealParameter(name)


def _assign(mission: Any, path: str, value: Any) -> None:
    """Write ``value`` to ``path`` through the API (gmat-run has no path for an Array element)."""
    cell = _array_cell(mission.gmat, path)
    if cell is None:
        mission[path] = value
        return
    array, row, column = cell
    array.SetRealParameter("SingleValue", float(value), row, column)


def _array_cell(gmat: Any, path: str) -> tuple[Any, int, int] | None:
    """The ``Array`` and its 0-based cell that ``path`` names (``A(2, 1)``); None for a field.

    Raises
    ------
    SweepConfigError
        ``path`` has an element's form but names no Array of the script, or
        a cell outside the Array's dimensions.
    """
    element = array_element(path)
    if element is None:
        return None
    name, row, column = element
    array = _named(gmat, name)
    if array is None or array.GetTypeName() != "Array":
        raise SweepConfigError(
            f"{name!r} is not an Array of the mission, so the path names no element; "
            "an element path names a 'Create Array' of the script, as in 'A(2, 1)'"
        )
    rows, columns = array.GetIntegerParameter("NumRows"), array.GetIntegerParameter("NumCols")
    if not (1 <= row <= rows and 1 <= column <= columns):
        raise SweepConfigError(
            f"row {row}, column {column} is outside the Array: {name} is {rows}x{columns}, "
            f"so rows run 1..{rows} and columns 1..{columns} (counted from 1, as in the script)"
        )
    return array, row - 1, column - 1


def _named(gmat: Any, name: str) -> Any | None:
    """The mission's resource called ``name``, or ``None`` when there is none."""
    try:
        return gmat.GetObject(name)
    except AttributeError:  # gmatpy raises it for a name it does not know
        return None


def _field_of_bare_name(gmat: Any, path: str) -> str | None:
    """The path to write for ``path`` when it is a bare resource name (``Seconds``), if any.

    A ``Variable`` or ``String`` holds its value in ``Value``, an ``Array``
    in its elements; any other resource has several fields, so none is named.
    """
    if "." in path or array_element(path) is not None:
        return None
    obj = _named(gmat, path)
    if obj is None:
        return None
    kind = obj.GetTypeName()
    if kind in ("Variable", "String"):
        return f"'{path}.Value'"
    if kind == "Array":
        return f"an element, e.g. '{path}(1, 1)'"
    return f"one of its fields, e.g. '{path}.<Field>' (gmat-sweep fields SCRIPT lists them)"


def _field(gmat: Any, path: str) -> tuple[Any, str, int]:
    """The object ``path`` is a field of, the field's name on it, and its GMAT parameter type."""
    cell = _array_cell(gmat, path)
    if cell is not None:
        return cell[0], "SingleValue", gmat.REAL_TYPE
    resource, name = path.split(".", 1)
    obj = gmat.GetObject(resource)
    return obj, name, obj.GetParameterType(obj.GetParameterID(_engine_field(obj, name)))


def _engine_field(obj: Any, name: str) -> str:
    """The engine's field behind ``name`` on ``obj``: a ``String``'s ``Value`` is ``Expression``.

    GMAT lists ``Value`` on a ``String`` but raises "unrecognized parameter
    ID" when it is read or written. Its text is in ``Expression``, and an API
    write there does not survive the worker's clone-and-copy restore (the
    copy leaves the resource's name as its text), so an override of a
    String's ``Value`` is load-time: written into the script as ``S = 'text'``.
    """
    return "Expression" if name == "Value" and obj.GetTypeName() == "String" else name


def _force_field(gmat: Any, path: str) -> tuple[Any, str] | None:
    """The force of a ForceModel and the real field ``path`` names on it, if it names one."""
    resource, _, rest = path.partition(".")
    force_name, _, name = rest.rpartition(".")
    model = _named(gmat, resource)
    if model is None or not force_name or not model.IsOfType("ODEModel"):
        return None
    for index in range(model.GetNumForces()):
        force = model.GetForce(index)
        if force_name not in (force.GetName(), force.GetName().split(".")[0]):
            continue
        try:
            real = force.GetParameterType(force.GetParameterID(name)) == gmat.REAL_TYPE
        except Exception:  # the engine raises for a field the force does not have
            return None
        return (force, name) if real else None
    return None


def same_value(requested: Any, held: Any, *, tolerance: float = READ_BACK_TOLERANCE) -> bool:
    """Whether a field reading ``held`` holds ``requested``, within the read-back tolerance.

    Reals match within ``tolerance`` (relative and absolute);
    a requested real outside ``[0, 360)`` also matches a read-back that differs
    by whole turns of 360 (the engine normalises angles). Strings match after
    trimming, or as the same instant when both parse as epochs (ModJulian
    epochs as numbers, to the 16 significant digits GMAT prints). Lists match
    element by element.
    """
    if isinstance(requested, bool) or isinstance(held, bool):
        return bool(requested == held)
    if isinstance(requested, int | float) and isinstance(held, int | float):
        turns = 0 if 0 <= requested < _TURN else round((held - requested) / _TURN)
        return math.isclose(
            held,
            requested + _TURN * turns,
            rel_tol=tolerance,
            abs_tol=tolerance,
        )
    if isinstance(requested, str) and isinstance(held, str):
        return requested.strip() == held.strip() or _same_instant(requested, held)
    if isinstance(requested, list | tuple) and isinstance(held, list | tuple):
        return len(requested) == len(held) and all(map(same_value, requested, held))
    return False


def _same_instant(a: str, b: str) -> bool:
    """Whether two epoch strings name one instant.

    A ModJulian epoch is a number of days, which GMAT prints back to 16
    significant digits; a Gregorian one is compared as a time.
    """
    try:
        return math.isclose(float(a), float(b), rel_tol=_PRINTED_DIGITS)
    except ValueError:
        pass
    try:
        return bool(pd.Timestamp(a) == pd.Timestamp(b))
    except (ValueError, TypeError, OverflowError):
        return False


def output_tables(results: Any, log: str = "") -> dict[str, pa.Table]:
    """Every output of a gmat-run ``Results`` as an Arrow table, keyed for the manifest.

    Reports and ephemerides get a ``time`` column (a copy of their first
    datetime column, when they have one); contact tables get ``interval_id``
    (0..K-1 in file order). Each Solver's iteration log (gmat-run's
    ``solver_runs``: one row per nominal pass, its last row's ``status``
    ``converged``, ``max_iter`` or ``failed``) gets ``converged``, the same
    bool on every row, so that convergence is one column to read. A Target
    in a loop runs many times a run and GMAT's solver file keeps the last
    execution only, so ``converged`` is true when that one converged and no
    execution the run's GMAT log text ``log`` records failed to. An output
    GMAT wrote no file for, or an empty one, is left out (an EphemerisFile with
    ``WriteEphemeris = false`` or a time window the run never reaches, a
    ReportFile with ``WriteReport = false``, a
    Solver no Target or Optimize of this run executed), and so is a solver
    log gmat-run cannot parse: aggregation shows such a run as one without it.
    """
    from gmat_run.errors import GmatOutputParseError

    tables: dict[str, pa.Table] = {}
    for name in _written(results.report_paths):
        tables[f"report__{name}"] = _table(results.reports[name], time=True)
    for name in _written(results.ephemeris_paths):
        tables[f"ephemeris__{name}"] = _table(_ephemeris(results, name), time=True)
    for name in _written(results.contact_paths):
        contacts = _table(results.contacts[name], time=False)
        interval_id = pa.array(range(contacts.num_rows), type=pa.int64())
        tables[f"contact__{name}"] = contacts.append_column("interval_id", interval_id)
    unconverged = _unconverged(log)
    for name in _written(results.solver_paths):
        try:
            passes = results.solver_runs[name]
        except GmatOutputParseError:
            # A solver type gmat-run cannot parse (it reads DifferentialCorrector
            # and Yukon logs): the mission ran, so the run keeps its other outputs
            # and this solver's convergence stays unknown (missing when aggregated).
            continue
        every = bool(passes.attrs["converged"]) and name not in unconverged
        converged = pa.array([every] * len(passes), type=pa.bool_())
        tables[f"solver__{name}"] = _table(passes, time=False).append_column(CONVERGED, converged)
    return tables


_SOLVER_EXECUTION = re.compile(r'^\*\*\* Performing .*\(using "(?P<name>[^"]+)"\)', re.M)
"""The line opening one execution of a solver in GMAT's log (a Target or Optimize block)."""
_NOT_CONVERGED = re.compile(r"did not converge", re.I)


def _unconverged(log: str) -> set[str]:
    """The solvers with an execution GMAT's run ``log`` reports as not converged.

    Each execution opens with ``*** Performing Differential Correction (using
    "DC")`` and ends with ``*** The Targeter converged!`` or ``*** Targeting did
    not converge in 25 iterations``.
    """
    starts = list(_SOLVER_EXECUTION.finditer(log))
    bounds = [*(start.start() for start in starts), len(log)]
    return {
        start["name"]
        for start, (_, end) in zip(starts, pairwise(bounds), strict=True)
        if _NOT_CONVERGED.search(log, start.end(), end)
    }


_SEGMENT_TIMES = re.compile(
    r"^\s*BEGIN SegmentBoundaryTimes\s*$.*?^\s*END SegmentBoundaryTimes\s*$", re.M | re.S
)
"""The block of segment start times GMAT writes into an STK ephemeris that a burn split."""


def _ephemeris(results: Any, name: str) -> pd.DataFrame:
    """The parsed ephemeris ``name``, also when it is an STK file a burn split into segments.

    GMAT lists the segments' start times in a ``BEGIN SegmentBoundaryTimes``
    block, which gmat-run 0.6's STK parser refuses ("expected 'KEY VALUE'").
    The points themselves are ordinary rows (a boundary's epoch appears twice,
    as in the OEM), so such a file is parsed by gmat-run from a copy without
    that block, saved next to it in the run's working directory.
    """
    from gmat_run.errors import GmatOutputParseError
    from gmat_run.parsers import stk_ephemeris

    try:
        frame: pd.DataFrame = results.ephemerides[name]
        return frame
    except GmatOutputParseError:
        path = Path(results.ephemeris_paths[name])
        text = path.read_text(encoding="utf-8", errors="replace")
        if not stk_ephemeris.is_stk_ephemeris(path) or not _SEGMENT_TIMES.search(text):
            raise
        points = path.with_name(f"{path.name}.points")
        points.write_text(_SEGMENT_TIMES.sub("", text), encoding="utf-8")
        return stk_ephemeris.parse(points)


def _written(paths: Mapping[str, Path]) -> list[str]:
    """The outputs of ``paths`` (gmat-run lists every output resource) with a file that has data.

    GMAT leaves an EphemerisFile whose ``InitialEpoch``/``FinalEpoch`` window
    the run never reaches empty: such an output is left out, as one GMAT
    wrote no file for.
    """
    return [
        name for name, path in paths.items() if Path(path).is_file() and Path(path).stat().st_size
    ]


def _mission_for(script_path: Path, base: str, log_path: Path, text: str | None = None) -> _Loaded:
    """Return this process's mission for ``script_path`` (or its rendering ``text``).

    ``base`` is the script's :func:`_mission_sha256`.

    The rendered text is saved under this process's temporary directory,
    named by its hash, and loaded from there; its ``#Include`` paths are
    absolute, so it loads as the original does. The loaded mission is kept
    for the next run of the same text from the same file with the same
    ``#Include`` files: a copy of the script in another directory reads the
    files beside it, so it is loaded again.
    """
    global _loaded
    from gmat_run import Mission

    rendered = None if text is None else text_sha256(text)
    path = Path(os.path.abspath(script_path)) if rendered is None else _rendered_path(rendered)
    # ``base`` pins the script's text and a rendering's path its hash: with the path
    # loaded from, it names the text loaded, so the script is not hashed again per run.
    if _loaded is not None and (_loaded.base, _loaded.source) == (base, path):
        return _loaded
    if text is not None and not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    engine = ensure_engine()
    _point_log_at(engine.root, log_path)
    _loaded = None  # a failed load breaks every older handle
    mission = Mission.load(path, gmat_root=engine.root)
    key = canonical_script_sha256(script_path) if rendered is None else rendered
    _loaded = _Loaded(key=key, base=base, mission=mission, source=path)
    return _loaded


def _rendered_path(key: str) -> Path:
    """Where a rendered script text is saved to be loaded, named by its hash ``key``."""
    return Path(tempfile.gettempdir()) / "gmat-sweep-rendered" / f"{key}.script"


def _clones(loaded: _Loaded) -> dict[str, set[str]]:
    """``{object: names of the resources it holds as its own clone}``, read from the engine.

    An object holds a clone of resource ``R`` when an instance it uses is
    named ``R`` but is not the configured ``R`` (``GetObject(R)``). The
    instances an object uses come from ``GetODEModel`` (a Propagator's force
    model), ``GetOwnedObject`` and ``GetRefObject`` of every referenced name.
    """
    if loaded.clones is not None:
        return loaded.clones
    gmat = loaded.mission.gmat
    names = set(gmat.Moderator.Instance().GetListOfObjects(gmat.UNKNOWN_OBJECT))
    clones: dict[str, set[str]] = {}
    for holder in sorted(names):
        obj = gmat.GetObject(holder)
        for used in _used_instances(gmat, obj):
            name = used.GetName()
            if (
                name in names
                and name != holder
                and _address(used) != _address(gmat.GetObject(name))
            ):
                clones.setdefault(holder, set()).add(name)
    loaded.clones = clones
    return clones


def _used_instances(gmat: Any, obj: Any) -> list[Any]:
    used = []
    if hasattr(obj, "GetODEModel"):
        used.append(obj.GetODEModel())
    used += [obj.GetOwnedObject(i) for i in range(obj.GetOwnedObjectCount())]
    for name in obj.GetRefObjectNameArray(gmat.UNKNOWN_OBJECT):
        try:
            target = gmat.GetObject(name) if name else None
            if target is not None:
                used.append(obj.GetRefObject(target.GetType(), name))
        except Exception:  # the engine raises for names an object keeps no pointer to
            continue
    return [instance for instance in used if instance is not None]


def _address(instance: Any) -> int:
    return int(instance.this)


def _point_log_at(root: Path, log_path: Path) -> None:
    """Send GMAT's log to ``log_path`` so a parse error is kept with the run."""
    from gmat_run.install import locate_gmat
    from gmat_run.runtime import bootstrap

    gmat = bootstrap(locate_gmat(root))
    gmat.UseLogFile(str(log_path))


def _clone(mission: Any, resource: str) -> Any:
    obj = mission.gmat.GetObject(resource)
    return None if obj is None else obj.Clone()


def _restore(loaded: _Loaded) -> None:
    """Copy each resource an earlier run wrote back to its state at load time.

    GMAT checks a resource's own state before it copies onto it, and an
    override can leave one in a state the engine accepts field by field but
    refuses as a whole (a ChemicalTank ``Volume`` below its fuel's volume:
    "Fuel volume exceeds tank capacity"). Such a mission cannot be restored,
    so it is loaded again from the same file.
    """
    from gmat_run import Mission

    gmat = loaded.mission.gmat
    try:
        for resource in sorted(loaded.dirty):
            snapshot = loaded.snapshots.get(resource)
            obj = gmat.GetObject(resource)
            if snapshot is not None and obj is not None:
                obj.Copy(snapshot)
    except Exception:  # gmatpy raises its APIException for the engine's refusal
        loaded.mission = Mission.load(loaded.source, gmat_root=ensure_engine().root)
        loaded.snapshots.clear()
        loaded.clones = None
    loaded.dirty.clear()


def _table(frame: pd.DataFrame, *, time: bool) -> pa.Table:
    """Arrow table of a parsed GMAT frame, column by column (no pandas metadata to build).

    With ``time=True`` a ``time`` column, copied from the first datetime
    column, is put first when the frame has one.

    Raises
    ------
    ValueError
        The frame repeats a column name (Parquet columns are read by name).
    """
    names = [str(name) for name in frame.columns]
    if len(set(names)) < len(names):
        repeated = sorted({name for name in names if names.count(name) > 1})
        raise ValueError(
            f"the output repeats the columns {repeated}; list each parameter once in the "
            "script's ReportFile (Add = {...})"
        )
    columns = [pa.array(column, from_pandas=True) for _, column in frame.items()]
    if time and "time" not in names:
        for column in columns:
            if pa.types.is_timestamp(column.type):
                return pa.Table.from_arrays([column, *columns], names=["time", *names])
    return pa.Table.from_arrays(columns, names=names)


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def _read_logs(paths: tuple[Path, ...]) -> str:
    """The run's GMAT log: the load log (when this run loaded the script), then the run log."""
    parts = []
    for path in paths:
        try:
            parts.append(path.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            continue
    return "".join(parts)


def _describe_failure(exc: BaseException, log: str) -> str:
    """Failure text: the error, GMAT's own diagnostic lines, traceback, then the log tail.

    The first line always names the error, so summaries can group failures by it.
    """
    lines = log.splitlines()
    diagnostics = [
        # GMAT quotes the script line it refuses on the log line after "... in line:"
        f"{line.strip()} {following.strip()}"
        if line.rstrip().endswith("in line:")
        else line.strip()
        for line, following in pairwise([*lines, ""])
        if "ERROR" in line
        or "exception" in line.lower()
        or "error occurred" in line
        or _STOPPED in line
    ]
    parts = [f"{type(exc).__name__}: {exc}".splitlines()[0]]
    parts += diagnostics[:_DIAGNOSTIC_LINES]
    if any(_STOPPED in line for line in diagnostics):
        parts.append(_STOP_COMMAND)
    parts.append("")
    parts.append("".join(traceback.format_exception(exc)).rstrip())
    if lines:
        parts.append(f"--- last lines of the GMAT log ({LOG_NAME}) ---")
        parts += lines[-_LOG_TAIL_LINES:]
    return "\n".join(parts)
