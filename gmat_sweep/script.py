"""GMAT script text: canonical hashes, ``#Include`` walking, and rendering overrides into text.

Some overrides only take effect when they are present as the script is parsed
(a Propagator clones its ForceModel at parse time; see
:mod:`gmat_sweep.worker`). Such *load-time* overrides are applied by
:func:`render_script`: each ``Resource.Field = value`` is written into the
script's resource section (replacing the script's own assignment, or added
after the resource's last assignment or its ``Create`` line), and relative
``#Include`` paths, and the relative paths of files the script reads
(:func:`absolute_inputs`), are made absolute so the rendered text loads from
any directory. The same function writes a run's every override into a
standalone script, so a run can be replayed in GMAT with no overrides.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path, PurePath
from typing import Any

from gmat_sweep.errors import SweepConfigError

_INCLUDE = re.compile(r"[ \t]*#Include[ \t]+(?:'([^']*)'|\"([^\"]*)\"|([^\s;%]+))")
_BEGIN_MISSION = re.compile(r"[ \t]*BeginMissionSequence\b")
_CREATE = re.compile(r"[ \t]*Create[ \t]+(\w+)[ \t]+([^;%]*)")
_DIMENSIONS = re.compile(r"\[[^\]]*\]")
"""An ``Array``'s dimensions in its ``Create`` line, as in ``Create Array A[1,3];``."""
_BARE_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ELEMENT = re.compile(r"([A-Za-z_]\w*)\([ \t]*(\d+)[ \t]*,[ \t]*(\d+)[ \t]*\)")
"""An ``Array`` element as the script writes it: ``A(2, 1)`` (row, column, from 1)."""
_VALUE_RESOURCES = frozenset({"Variable", "String"})
"""Resource types whose ``R.Value`` is assigned in script text as ``R = value``."""
_SWITCHES_OFF = {
    ("Drag.AtmosphereModel", "None"): "Drag",
    ("Drag", "None"): "Drag",
    ("SRP", "Off"): "SRP",
}
"""ForceModel fields and values that switch a force off, and the force's sub-resource name.

GMAT refuses the force's other settings (``FM.Drag.F107``, ``FM.SRP.Flux``)
once it is off, and its GUI saves such a script without them."""
_AFTER_REPORTS = "GroundTrackPlot"
"""A resource type the headless engine must create after every ``ReportFile``.

A ``ReportFile`` created after a ``GroundTrackPlot`` writes no file, and the
run still succeeds (measured with the wheel's GMAT R2026a engine); an
``EphemerisFile`` or a ``Report`` command's file is not affected."""
_EXACT_INTEGERS = 2.0**53
"""Floats below this magnitude that are whole numbers are written as integers, exactly."""
_ASSIGNMENT = re.compile(
    r"(?P<head>[ \t]*(?:GMAT[ \t]+)?(?P<resource>\w+)\.(?P<field>[\w.]+)[ \t]*=[ \t]*)"
    r"(?P<value>[^;%]*?)(?P<tail>[ \t]*(?:[;%].*)?)"
)
_FILE_FIELD = re.compile(r"(?:File|FileName|Filename|FilePath|Path|KernelName|EphemerisName)$")
"""Names of fields that hold the name of a file (``PotentialFile``, ``OrbitSpiceKernelName``)."""
_WRITTEN_FILE_FIELDS = frozenset({"ReportFile", "LogFile"})
"""File fields of a solver or locator that name a file the run writes, not one it reads."""
_PATH_TOKEN = re.compile(r"'([^']*)'|\"([^\"]*)\"|([^\s,{}'\"]+)")


def canonical_script_sha256(path: str | Path) -> str:
    """SHA-256 of the script file after line-ending and trailing-newline normalisation.

    Reads the file as bytes, decodes as UTF-8, replaces ``\\r\\n`` and lone
    ``\\r`` with ``\\n``, and ensures exactly one trailing ``\\n``. The hash is
    computed over the resulting UTF-8 bytes, so the same script checked out on
    Windows and on Linux hashes the same.

    Parameters
    ----------
    path:
        The GMAT ``.script`` (or included file) to hash.

    Returns
    -------
    str
        The lowercase hex digest.

    Raises
    ------
    SweepConfigError
        If the file does not exist, cannot be read, or is not UTF-8 text.
    """
    return text_sha256(canonical_text(Path(path)))


def script_includes_sha256(script_path: str | Path) -> dict[str, str]:
    """Canonical SHA-256 of every file a script pulls in with ``#Include``.

    Follows ``#Include 'file'``, ``#Include "file"`` and ``#Include file``
    lines (GMAT syntax: the keyword is case-sensitive and may be indented)
    recursively. Each include resolves relative to the directory of the file
    that contains it. A file reached twice, or an include cycle, is hashed once.

    Parameters
    ----------
    script_path:
        The top-level GMAT ``.script``.

    Returns
    -------
    dict[str, str]
        ``{include path: canonical sha256}`` in the order the includes are
        first met (depth first). Keys are POSIX paths relative to the top
        script's directory (e.g. ``"sub/params.script"``,
        ``"../common/env.script"``); an include written as an absolute path
        keeps its absolute form. The top script itself is not listed.

    Raises
    ------
    SweepConfigError
        If an included file does not exist (the message names the including
        script, the line and the missing file), or any file in the tree cannot
        be read as UTF-8 text.
    """
    top = Path(os.path.abspath(script_path))
    hashes: dict[str, str] = {}
    seen = {os.path.realpath(top)}
    _collect_includes(top, canonical_text(top), top.parent, seen, hashes)
    return hashes


def render_script(script_path: str | Path, overrides: Mapping[str, Any]) -> str:
    """The script's text with ``overrides`` written into it, ready to load from anywhere.

    Each ``Resource.Field`` in ``overrides`` replaces the script's own
    assignment to that field (in the resource section, before
    ``BeginMissionSequence``), or is added after the resource's last
    assignment, or after its ``Create`` line, or (for a resource created in
    an included file) just before ``BeginMissionSequence``. ``V.Value`` of a
    ``Variable`` or ``String`` is written as ``V = value``. Replacing in place
    matters: GMAT refuses a second ``Prop.Type`` assignment, so when an
    ``#Include`` file assigns an overridden field, the resource section's
    include files are written inline and the override replaces it there. A
    ``GroundTrackPlot`` created before a ``ReportFile`` is moved, with its
    settings, to just before ``BeginMissionSequence`` (see
    :func:`needs_rendering`); the ``#Include`` files of the resource section
    are then written inline, so a plot created in one moves too. A
    ``ReportFile`` saved with ``WriteHeaders`` or ``FixedWidth`` false has it
    set true (:data:`REPORT_LAYOUT`). Switching a
    force off (``FM.Drag.AtmosphereModel = None``, ``FM.Drag = None``,
    ``FM.SRP = Off``) removes the script's settings of that force
    (``FM.Drag.F107 = 150;``), which GMAT refuses once it is off. Relative
    ``#Include`` paths are made absolute (resolved against the script's
    directory, as GMAT and the sweep's include hashing do), and so are the
    script's own references to files it reads (:func:`absolute_inputs`).

    Parameters
    ----------
    script_path:
        The GMAT ``.script`` the overrides apply to.
    overrides:
        ``{"Resource.Field": value}`` to write.

    Returns
    -------
    str
        The rendered script text (canonical line endings).

    Raises
    ------
    SweepConfigError
        A value cannot be written as GMAT script text (a string holding a
        quote, a NaN, a nested mapping, ...), or a path has no ``.``.
    """
    lines, begin = _script_lines(script_path)
    section = _expanded(lines[:begin], set())
    kinds = _created_types(section)
    silenced = _silences_reports(kinds)
    if silenced or _set_in_includes(lines[:begin], section, overrides, kinds):
        # a plot created in an #Include file moves too, and an override replaces the
        # included file's own assignment: the files are inlined
        lines[:begin] = section
        begin = len(section)
    directory = Path(os.path.abspath(script_path)).parent
    lines = [absolute_inputs(line, directory, kinds) for line in lines]
    if silenced:
        _ground_tracks_last(lines, begin, kinds)
    for setting in _unreadable_report_settings(section, kinds):
        if setting not in overrides:
            begin = _place(lines, begin, setting, f"{setting} = true;", "ReportFile")
    for dotted in sorted(overrides):
        resource, field = _split(dotted)
        force = _SWITCHES_OFF.get((field, str(overrides[dotted])))
        if force is not None:
            begin = _drop_settings(lines, begin, f"{resource}.{force}")
        statement = _statement(dotted, overrides[dotted], kinds.get(resource))
        begin = _place(lines, begin, dotted, statement, kinds.get(resource))
    return "\n".join(lines) + "\n"


def resources(script_path: str | Path) -> dict[str, str]:
    """``{name: type}`` of every resource the script creates, includes followed, in order.

    Read from the ``Create Type name ...;`` lines before ``BeginMissionSequence``
    (an ``Array``'s dimensions are dropped: ``Create Array A[1,3]`` creates ``A``).

    Raises
    ------
    SweepConfigError
        The script or a file it includes cannot be read as UTF-8 text.
    """
    return _created_types(_resource_section(script_path))


def _resource_section(script_path: str | Path) -> list[str]:
    """The script's lines before ``BeginMissionSequence``, with its ``#Include`` files inlined."""
    lines, begin = _script_lines(script_path)
    return _expanded(lines[:begin], set())


def assigned_fields(script_path: str | Path, resource: str) -> list[str]:
    """The paths ``resource.Field`` the script assigns before ``BeginMissionSequence``, in order.

    Includes are followed; each path is listed once, at its first assignment.
    """
    paths = [
        f"{resource}.{match['field']}"
        for match in _assignments(_resource_section(script_path))
        if match["resource"] == resource
    ]
    return list(dict.fromkeys(paths))


def assignment(script_path: str | Path, path: str) -> str | None:
    """The last statement assigning ``path`` before ``BeginMissionSequence`` (includes followed)."""
    resource, _, name = path.partition(".")
    found = None
    for match in _assignments(_resource_section(script_path)):
        if (match["resource"], match["field"]) == (resource, name):
            found = f"{match['head'].strip()} {match['value']};"
    return found


def _assignments(lines: Iterable[str]) -> Iterator[re.Match[str]]:
    """The ``resource.field = value`` assignments among ``lines`` (:data:`_ASSIGNMENT`)."""
    for line in lines:
        match = _ASSIGNMENT.fullmatch(line)
        if match is not None:
            yield match


def _script_lines(script_path: str | Path) -> tuple[list[str], int]:
    """The script's lines (absolute ``#Include`` paths), and where ``BeginMissionSequence`` is."""
    path = Path(os.path.abspath(script_path))
    lines = [_absolute_include(line, path.parent) for line in canonical_text(path).split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    begin = next((i for i, line in enumerate(lines) if _BEGIN_MISSION.match(line)), len(lines))
    return lines, begin


def needs_rendering(script_path: str | Path) -> bool:
    """Whether the headless engine must load :func:`render_script`'s text even with no overrides.

    True when a ``GroundTrackPlot`` is created before a ``ReportFile``: the
    engine then writes no file for the ``ReportFile`` and reports success, so
    the plot (which draws nothing without GMAT's GUI) is moved after it. True
    also when a ``ReportFile`` is saved with ``WriteHeaders = false`` or
    ``FixedWidth = false`` (:data:`REPORT_LAYOUT`).
    """
    section = _resource_section(script_path)
    kinds = _created_types(section)
    return _silences_reports(kinds) or bool(_unreadable_report_settings(section, kinds))


REPORT_LAYOUT = ("WriteHeaders", "FixedWidth")
"""``ReportFile`` settings a report needs ``true`` for gmat-run to read it.

gmat-run reads a report's columns by the names in its header line, split at
the runs of spaces between fixed-width columns: without a header the first
row of numbers is taken for the names, and with ``FixedWidth = false`` the
rows are written with the ``Delimiter`` alone and cannot be split."""


def readable_ephemeris_formats() -> set[str]:
    """The ``EphemerisFile`` formats gmat-run reads in this interpreter.

    CCSDS-OEM and STK-TimePosVel always; SPK (binary) only with ``spiceypy``
    installed. A run writing any other format (Code-500) fails reading it back.
    """
    readable = {"CCSDS-OEM", "STK-TimePosVel"}
    if importlib.util.find_spec("spiceypy") is not None:
        readable.add("SPK")
    return readable


def _unreadable_report_settings(section: list[str], kinds: Mapping[str, str]) -> list[str]:
    """The :data:`REPORT_LAYOUT` fields ``section`` (a resource section) sets false, as paths.

    ``['Climb.WriteHeaders']`` for ``GMAT Climb.WriteHeaders = false;``. Such
    a report is loaded with the field set true (:func:`render_script`): GMAT
    writes the same values, in columns gmat-run can read.
    """
    values: dict[str, str] = {}
    for match in _assignments(section):
        if match["field"] in REPORT_LAYOUT and kinds.get(match["resource"]) == "ReportFile":
            values[f"{match['resource']}.{match['field']}"] = match["value"].strip().lower()
    return [path for path, value in values.items() if value == "false"]


def _silences_reports(kinds: Mapping[str, str]) -> bool:
    order = list(kinds.values())
    return _AFTER_REPORTS in order and "ReportFile" in order[order.index(_AFTER_REPORTS) :]


def _ground_tracks_last(lines: list[str], begin: int, kinds: Mapping[str, str]) -> None:
    """Move each ``GroundTrackPlot`` created in ``lines[:begin]``, with its settings, to ``begin``.

    ``lines[:begin]`` has its ``#Include`` files inlined (:func:`render_script`).
    """
    names = [re.escape(name) for name, kind in kinds.items() if kind == _AFTER_REPORTS]
    plot = rf"(?:{'|'.join(names)})"
    own = re.compile(rf"[ \t]*(?:Create[ \t]+{_AFTER_REPORTS}\b|(?:GMAT[ \t]+)?{plot}[ \t]*\.)")
    moved: list[str] = []
    index = 0
    while index < begin:
        end = index
        while end + 1 < begin and lines[end].rstrip().endswith("..."):
            end += 1  # a statement continued over several lines
        if own.match(lines[index]):
            moved += lines[index : end + 1]
            del lines[index : end + 1]
            begin -= end + 1 - index
            continue
        index = end + 1
    lines[begin:begin] = moved


_OPENS = frozenset({"If", "While", "For", "Target", "Optimize"})
_CLOSES = frozenset({"EndIf", "EndWhile", "EndFor", "EndTarget", "EndOptimize"})
"""Mission-sequence commands that open and close a block (its statements may not run).

A ScriptEvent (``BeginScript ... EndScript``) is not one: GMAT runs its commands in order.
"""


def overwritten_values(script_path: str | Path) -> dict[str, str]:
    """``{override path: statement}`` of each value the mission sequence sets before reading it.

    A Variable's or String's ``V.Value`` is set before it is read when the
    first statement of the sequence that mentions ``V`` is an assignment to
    it, or a ``For`` loop over it (``For V = 1:N;``), outside any
    ``If``/``While``/``For``/``Target``/``Optimize`` block (a ``BeginScript``
    ScriptEvent is no such block: GMAT runs its commands in order), whose
    right side does not read it (``Seconds = Hours * 3600;``). An
    ``Array`` element ``A(2, 1)`` is when such an assignment to it (constant
    indices) comes before any statement that reads ``A``. An override of it
    sets a starting value nothing reads. A name the resource section uses
    elsewhere (a ``ReportFile``'s ``Add`` list publishes it during a
    ``Propagate``) is left out. Any other resource's field ``R.F`` (``Sat.Cd``)
    is set before it is read when the sequence opens with assignments (no
    command runs before them, so nothing is published) and the first of them
    that mentions ``R`` sets ``R.F`` from a right side that does not read
    ``R``; fields that give the frame a spacecraft's state is read in
    (:data:`_READ_FRAME`) are left out: their value at load converts the
    state, which a later assignment does not undo. Such an opening
    assignment that copies another resource over ``R`` (``Sat2 = Sat;``)
    sets every field of ``R``: it is listed as ``R.*``. A field, Variable or
    Array element a ``Vary`` varies (``Vary DC(TOI.Element1 = 1.0, ...)``)
    is set to the Vary's initial value when no statement of the sequence
    before that Vary mentions its resource (other than a Vary of another of
    its fields that does not read it), inside
    ``Target``/``Optimize`` blocks only (a solver pass always runs it), with
    an initial value that does not read it, and no other resource of the
    resource section names it. The statement is given as ``line N: text``.
    """
    lines, begin = _script_lines(script_path)
    expanded = _expanded(lines[:begin], set())
    kinds = _created_types(expanded)
    section = [line.split("%", 1)[0] for line in expanded]
    pending = set()
    unnamed = set()  # resources no other resource of the resource section names
    for name, kind in kinds.items():
        mention = _mention(name)
        own = re.compile(rf"[ \t]*(?:GMAT[ \t]+)?{re.escape(name)}(?:\([^)]*\))?[ \t]*=")
        setting_own = re.compile(rf"[ \t]*(?:GMAT[ \t]+)?{re.escape(name)}\.[\w.]+[ \t]*=")
        others = [line for line in section if mention.search(line) and not _CREATE.match(line)]
        if kind in (*_VALUE_RESOURCES, "Array") and not any(not own.match(x) for x in others):
            pending.add(name)
        if not any(not own.match(x) and not setting_own.match(x) for x in others):
            unnamed.add(name)
    found: dict[str, str] = {}
    blocks: list[str] = []  # the blocks the current statement is in, outermost first
    leading = True  # only assignments have run so far
    mentioned: set[str] = set()
    seen: set[str] = set()  # resources an earlier statement of the sequence mentions
    for number, line in enumerate(lines[begin + 1 :], start=begin + 2):
        code = line.split("%", 1)[0].strip()
        first = code.split(maxsplit=1)[0].rstrip(";") if code else ""
        if code and first not in _IN_ORDER:
            leading = leading and _SEQUENCE_ASSIGNMENT.fullmatch(code) is not None
        varied = _varied(code, kinds) if first == "Vary" else None
        if (
            varied is not None
            and varied[0] in unnamed
            and varied[0] not in seen
            and set(blocks) <= _SOLVER_BLOCKS
        ):
            found.setdefault(varied[1], f"line {number}: {code}")
        copy = _OBJECT_COPY.fullmatch(code) if leading else None
        if (
            copy is not None
            and copy["resource"] in kinds
            and copy["source"] in kinds
            and copy["resource"] != copy["source"]
            and copy["resource"] not in mentioned
            and kinds[copy["resource"]] not in (*_VALUE_RESOURCES, "Array")
        ):
            found.setdefault(f"{copy['resource']}.*", f"line {number}: {code}")
        setting = _FIELD_SETTING.fullmatch(code) if leading else None
        if (
            setting is not None
            and setting["resource"] in kinds
            and setting["resource"] not in mentioned
            and (kinds[setting["resource"]], setting["field"]) not in _READ_FRAME
            and kinds[setting["resource"]] != "CoordinateSystem"
            and not _mention(setting["resource"]).search(setting["value"])
        ):
            found.setdefault(f"{setting['resource']}.{setting['field']}", f"line {number}: {code}")
        if leading:  # only read while the sequence still opens with assignments
            mentioned.update(name for name in kinds if _mention(name).search(code))
        for name in sorted(pending):
            if _mention(name).search(code) is None:
                continue
            # "For I = 1:N" sets I as an assignment does
            target = re.fullmatch(
                rf"(?:GMAT\s+|For\s+)?({re.escape(name)}[^=]*?)\s*=(?!=)(.*)", code
            )
            path = None
            if not blocks and target is not None and not _mention(name).search(target[2]):
                if kinds[name] == "Array" and array_element(target[1]) is not None:
                    path = canonical_path(target[1])
                elif target[1] == name:
                    path = f"{name}.Value"
            if path is None or kinds[name] != "Array":
                pending.discard(name)  # read (or set in a way it may not be): decided
            if path is not None:
                found.setdefault(path, f"line {number}: {code}")
        # A Vary that does not read its own resource leaves the resource's other fields unread.
        unread = varied[0] if varied is not None else None
        seen.update(word for word in _BARE_WORD.findall(code) if word in kinds and word != unread)
        if first in _OPENS:
            blocks.append(first)
        elif first in _CLOSES and blocks:
            blocks.pop()
    return found


def _varied(code: str, kinds: Mapping[str, str]) -> tuple[str, str] | None:
    """``(resource, override path)`` a ``Vary`` statement sets from an initial value not reading it.

    ``('TOI', 'TOI.Element1')`` for ``Vary DC(TOI.Element1 = 1.0, {...});``,
    ``('V', 'V.Value')`` for a Variable ``V``; ``None`` when the statement
    reads the resource after its ``=`` or varies something else.
    """
    match = _VARY.fullmatch(code)
    if match is None:
        return None
    variable = match["variable"]
    resource = resource_of(variable)
    if resource not in kinds or _mention(resource).search(match["rest"]):
        return None
    if kinds[resource] in _VALUE_RESOURCES and variable == resource:
        return resource, f"{resource}.Value"
    if kinds[resource] == "Array":
        return (resource, canonical_path(variable)) if array_element(variable) else None
    return (resource, variable) if "." in variable else None


_VARY = re.compile(r"Vary\s+\w+\s*\(\s*(?P<variable>[^=]+?)\s*=(?!=)(?P<rest>.*)")
"""A ``Vary`` command: the variable it varies, then its initial value and options."""
_SOLVER_BLOCKS = frozenset({"Target", "Optimize"})
"""Blocks whose first pass runs every statement in them."""
_OBJECT_COPY = re.compile(
    r"(?:GMAT\s+)?(?P<resource>[A-Za-z_]\w*)\s*=(?!=)\s*(?P<source>[A-Za-z_]\w*)\s*;?"
)
"""A mission-sequence assignment copying one resource over another (``Sat2 = Sat;``)."""


_SEQUENCE_ASSIGNMENT = re.compile(r"(?:GMAT\s+)?[\w.]+(?:\([^)]*\))?\s*=(?!=).*")
"""A mission-sequence statement that assigns a value (``Sat.Cd = 2.5;``, ``A(1, 2) = 3;``)."""
_FIELD_SETTING = re.compile(
    r"(?:GMAT\s+)?(?P<resource>[A-Za-z_]\w*)\.(?P<field>[\w.]+)\s*=(?!=)(?P<value>.*)"
)
"""A mission-sequence assignment to a resource's field."""
_IN_ORDER = frozenset({"BeginScript", "EndScript"})
"""Mission-sequence lines that run the commands between them in order (no command of their own)."""
_READ_FRAME = frozenset(
    ("Spacecraft", field) for field in ("CoordinateSystem", "DateFormat", "DisplayStateType")
)
"""``(type, field)`` of the fields that give the frame and form a spacecraft's state is read in."""

_REPORT_COMMAND = re.compile(r"[ \t]*Report[ \t]+(\w+)\b")


def reports_into_subscribers(script_path: str | Path) -> dict[str, str]:
    """``{ReportFile: statement}`` of each ``Report`` command into a ReportFile that has ``Add``.

    Such a ReportFile writes its ``Add`` list's columns at every step and the
    ``Report`` command its own, and GMAT puts a second header line into the
    file before them (measured with the wheel's GMAT R2026a engine, also for
    the same parameters), so the file is no longer one table. The first such
    statement of each ReportFile is given as ``line N: text``.
    """
    lines, begin = _script_lines(script_path)
    subscribed = output_settings(script_path, "Add")  # left out when the list is empty
    found: dict[str, str] = {}
    for number, line in enumerate(lines[begin + 1 :], start=begin + 2):
        code = line.split("%", 1)[0].strip()
        match = _REPORT_COMMAND.match(code)
        if match is not None and match[1] in subscribed:
            found.setdefault(match[1], f"line {number}: {code}")
    return found


def _mention(name: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w.]){re.escape(name)}\b")


def spacecraft(script_path: str | Path, names: Iterable[str]) -> list[str]:
    """Those of ``names`` that the script creates as a ``Spacecraft`` (includes followed)."""
    kinds = resources(script_path)
    return sorted({name for name in names if kinds.get(name) == "Spacecraft"})


FILE_OUTPUT_TYPES = ("ReportFile", "EphemerisFile", "ContactLocator")
"""Resource types whose files a run's outputs are read from; other subscribers write none."""
_WRITER_TYPES = frozenset({*FILE_OUTPUT_TYPES, "EclipseLocator"})
"""Resource types whose ``Filename`` names a file the run writes."""


def absolute_inputs(line: str, directory: Path, kinds: Mapping[str, str]) -> str:
    """``line`` with each relative file it gives a resource to read made absolute.

    GMAT looks a relative input file up in the directory of the script it
    loads (then in its own data directories): a gravity model
    ``FM.GravityField.Earth.PotentialFile = 'gravity/my.cof'``, SPICE kernels
    ``Sat.OrbitSpiceKernelName = {'sat.bsp'}``, a ``GmatFunction``'s
    ``FunctionPath``. A copy of the script loaded from elsewhere (a rendering,
    a replay) finds them only by their absolute paths. A name is made absolute
    when the field names a file (:data:`_FILE_FIELD`), the resource does not
    write it (a ``ReportFile``'s ``Filename``, a solver's ``ReportFile``), and
    the name, resolved against ``directory``, exists; a name GMAT finds in
    its data directories (``'JGM2.cof'``) is left alone.

    Parameters
    ----------
    line:
        One line of the script.
    directory:
        The directory of the script the line comes from.
    kinds:
        ``{resource name: type}`` of the script (:func:`resources`).
    """
    match = _file_assignment(line, kinds)
    if match is None:
        return line

    def absolute(token: re.Match[str]) -> str:
        target = _beside(token, directory)
        return token[0] if target is None else f"'{target.as_posix()}'"

    value = _PATH_TOKEN.sub(absolute, match["value"])
    return line if value == match["value"] else f"{match['head']}{value}{match['tail']}"


def repoint(
    text: str, kinds: Mapping[str, str], includes: Mapping[str, str], inputs: Mapping[str, str]
) -> str:
    """``text`` (a script or a file it includes) with files it names absolutely named anew.

    ``includes`` maps the absolute path of an ``#Include`` file, and
    ``inputs`` that of a file the script reads (:func:`absolute_inputs`'s
    file fields), to the name to write instead; an absolute name that is
    neither is kept. ``kinds`` is the script's :func:`resources`. An archive
    uses it to point a mission at the copies it holds of such files.
    """

    def renamed(written: str, names: Mapping[str, str]) -> str | None:
        if not _is_absolute(written):
            return None
        return names.get(Path(os.path.abspath(written)).as_posix())

    lines = []
    for line in text.split("\n"):
        include = _INCLUDE.match(line)
        match = None if include is not None else _file_assignment(line, kinds)
        if include is not None and (name := renamed(_matched(include), includes)) is not None:
            line = f"#Include '{name}'"
        elif match is not None:

            def swap(token: re.Match[str]) -> str:
                name = renamed(_matched(token), inputs)
                return token[0] if name is None else f"'{name}'"

            value = _PATH_TOKEN.sub(swap, match["value"])
            line = line if value == match["value"] else f"{match['head']}{value}{match['tail']}"
        lines.append(line)
    return "\n".join(lines)


def script_inputs_sha256(script_path: str | Path) -> dict[str, str]:
    """SHA-256 of the bytes of every file the script reads, as GMAT finds it.

    These are the files :func:`absolute_inputs` finds beside the script (a
    name relative to the script's directory, where GMAT looks first) and the
    files the script names by an absolute path, in the assignments before
    ``BeginMissionSequence`` (includes followed); only files (a
    ``FunctionPath`` may name a directory). A name that is not a file beside
    the script is one GMAT looks up in its own data directory
    (``'JGM2.cof'``, ``'../data/gravity/earth/JGM2.cof'``): that file ships
    with the engine, whose version the manifest records, and is not listed.

    Returns
    -------
    dict[str, str]
        ``{path: sha256}`` in script order, keyed as
        :func:`script_includes_sha256` keys includes: POSIX paths relative to
        the script's directory, an absolute name in its absolute form.

    Raises
    ------
    SweepConfigError
        The script or a file it includes cannot be read as UTF-8 text.
    """
    top_dir = Path(os.path.abspath(script_path)).parent
    hashes: dict[str, str] = {}
    for written, path in _read_files(script_path):
        with path.open("rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
        hashes[_include_key(written, path, top_dir)] = digest
    return hashes


def _read_files(script_path: str | Path) -> list[tuple[str, Path]]:
    """``(name as written, absolute path)`` of each file the script reads, once each, in order."""
    top = Path(os.path.abspath(script_path))
    section = _resource_section(top)
    kinds = _created_types(section)
    found: dict[Path, str] = {}
    for line in section:
        match = _file_assignment(line, kinds)
        if match is None:
            continue
        for token in _PATH_TOKEN.finditer(match["value"]):
            written = _matched(token)
            target = Path(written) if _is_absolute(written) else _beside(token, top.parent)
            if target is not None and target.is_file():
                found.setdefault(Path(os.path.abspath(target)), written)
    return [(written, path) for path, written in found.items()]


def _is_absolute(written: str) -> bool:
    return bool(written) and PurePath(written).is_absolute()


def _file_assignment(line: str, kinds: Mapping[str, str]) -> re.Match[str] | None:
    """``line``'s assignment when it gives a resource a file to read (:func:`absolute_inputs`)."""
    match = _ASSIGNMENT.fullmatch(line)
    if match is None:
        return None
    field = match["field"].rsplit(".", 1)[-1]
    if (
        not _FILE_FIELD.search(field)
        or field in _WRITTEN_FILE_FIELDS
        or kinds.get(match["resource"]) in _WRITER_TYPES
    ):
        return None
    return match


def _beside(token: re.Match[str], directory: Path) -> Path | None:
    """The absolute path of the relative file name ``token`` when it exists in ``directory``."""
    written = _matched(token)
    target = directory / written
    if not written or _is_absolute(written) or not target.exists():
        return None
    return Path(os.path.abspath(target))


def output_settings(script_path: str | Path, field: str) -> dict[str, str]:
    """``{resource: value as written}`` of ``field`` for the script's :func:`file_outputs`.

    Read from the ``R.<field> = ...`` assignments before
    ``BeginMissionSequence``, includes followed (the last assignment wins, as
    in GMAT), unquoted: ``{'Eph': 'CCSDS-OEM'}`` for ``FileFormat``. A
    resource that does not set ``field`` is left out.

    Raises
    ------
    SweepConfigError
        The script or a file it includes cannot be read as UTF-8 text.
    """
    outputs = set(file_outputs(script_path))
    values: dict[str, str] = {}
    for match in _assignments(_resource_section(script_path)):
        if match["field"] == field and match["resource"] in outputs:
            token = _PATH_TOKEN.search(match["value"])
            if token is not None:
                values[match["resource"]] = _matched(token)
    return values


def file_outputs(script_path: str | Path) -> list[str]:
    """The resources of the script that write files gmat_sweep reads, in script order.

    These are its ``ReportFile``, ``EphemerisFile`` and ``ContactLocator``
    resources (:data:`FILE_OUTPUT_TYPES`); GUI subscribers (``OrbitView``,
    ``XYPlot``, ``GroundTrackPlot``) write no file. A mission with none runs
    fine, but leaves its sweep nothing to read.
    """
    return [name for name, kind in resources(script_path).items() if kind in FILE_OUTPUT_TYPES]


def render_replay(
    script_path: str | Path,
    overrides: Mapping[str, Any],
    states: Mapping[str, Mapping[str, float]],
) -> str:
    """:func:`render_script`, plus each spacecraft's exact starting state.

    ``states`` maps a spacecraft to its Cartesian state as the run held it
    (:func:`gmat_sweep.worker.initial_states`). GMAT allows Cartesian and
    Keplerian assignments to be mixed only in the mission sequence, so the
    state is set by the first commands after ``BeginMissionSequence``: loaded
    with no overrides, the text starts from the run's state bit for bit.
    """
    lines = render_script(script_path, overrides).split("\n")
    begin = next((i for i, line in enumerate(lines) if _BEGIN_MISSION.match(line)), None)
    if begin is None or not states:
        return "\n".join(lines)
    block = ["% gmat_sweep: the run's starting state, exactly as the engine held it"]
    for name in sorted(states):
        block += [f"{name}.{key} = {value!r};" for key, value in states[name].items()]
    return "\n".join([*lines[: begin + 1], *block, *lines[begin + 1 :]])


def script_value(value: Any) -> str:
    """``value`` as GMAT script text.

    For example ``7000.5``, ``4`` (for ``4.0`` too: a whole float is written
    as an integer, which GMAT's Integer fields require), ``true``,
    ``PrinceDormand78``, ``'JGM3.cof'`` (a string that is not one word is
    quoted) and ``{Luna, Sun}``.

    Raises
    ------
    SweepConfigError
        The value has no script form (NaN or infinity, a string with a quote
        or a line break, a mapping, a nested list).
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SweepConfigError(
                f"value {value!r} cannot be written into a GMAT script; use a finite number"
            )
        if value.is_integer() and abs(value) < _EXACT_INTEGERS:
            # GMAT's Integer fields refuse "2.0"; its Real fields read "2" as 2.0.
            return str(int(value))
        return repr(value)
    if isinstance(value, str):
        if any(c in value for c in "'\"\n\r"):
            raise SweepConfigError(
                f"value {value!r} cannot be written into a GMAT script: GMAT strings cannot "
                "hold quotes or line breaks; remove them"
            )
        return value if _BARE_WORD.fullmatch(value) else f"'{value}'"
    if isinstance(value, list | tuple):
        if all(isinstance(item, str) for item in value):
            return "{" + ", ".join(script_value(item) for item in value) + "}"
        if all(isinstance(item, int | float) and not isinstance(item, bool) for item in value):
            return "[" + " ".join(script_value(item) for item in value) + "]"
    raise SweepConfigError(
        f"value {value!r} ({type(value).__name__}) cannot be written into a GMAT script; use a "
        "number, a bool, a string, or a flat list of strings or of numbers"
    )


def text_sha256(text: str) -> str:
    """Hex SHA-256 of ``text`` encoded as UTF-8 (the hash of a rendered script)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def canonical_text(path: Path) -> str:
    """The file's text with ``\\n`` line endings and exactly one trailing newline.

    Raises
    ------
    SweepConfigError
        The file is missing, unreadable, or not UTF-8 text.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SweepConfigError(
            f"script {path} does not exist; check the path (relative paths resolve "
            f"against the current directory, {Path.cwd()})"
        ) from None
    except OSError as exc:
        raise SweepConfigError(
            f"cannot read script {path}: {exc.strerror}; make it a readable file"
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SweepConfigError(
            f"script {path} is not UTF-8 text (invalid byte at offset {exc.start}); "
            "GMAT scripts are text files: re-save it with UTF-8 encoding"
        ) from None
    return text.replace("\r\n", "\n").replace("\r", "\n").rstrip("\n") + "\n"


def array_element(path: str) -> tuple[str, int, int] | None:
    """``(array, row, column)`` when ``path`` names an ``Array`` element (``A(2, 1)``), else None.

    Rows and columns count from 1, as in GMAT script.
    """
    match = _ELEMENT.fullmatch(path)
    return None if match is None else (match[1], int(match[2]), int(match[3]))


def canonical_path(path: str) -> str:
    """``path`` as gmat_sweep lists it: an Array element as ``A(2, 1)`` (``A(2,1)`` is the same)."""
    element = array_element(path)
    return path if element is None else f"{element[0]}({element[1]}, {element[2]})"


def resource_of(path: str) -> str:
    """The resource an override path sets: ``Sat`` for ``Sat.SMA``, ``A`` for ``A(2, 1)``."""
    element = array_element(path)
    return path.partition(".")[0] if element is None else element[0]


def _split(dotted: str) -> tuple[str, str]:
    element = array_element(dotted)
    if element is not None:
        return element[0], f"({element[1]}, {element[2]})"
    resource, _, field = dotted.partition(".")
    if not resource or not field:
        raise SweepConfigError(
            f"override {dotted!r} is not a field path; write it as 'Resource.Field', e.g. "
            "'Sat.SMA' or 'FM.GravityField.Earth.Degree', or 'A(2, 1)' for an Array element"
        )
    return resource, field


def _target(dotted: str, kind: str | None) -> str:
    """What the script assigns: ``R.F``, ``R`` for a Variable's ``R.Value``, or ``A(2, 1)``."""
    resource, field = _split(dotted)
    if array_element(dotted) is not None:
        return resource + field
    return resource if field == "Value" and kind in _VALUE_RESOURCES else dotted


def _assigned(dotted: str, kind: str | None) -> str:
    """A pattern of the script's own assignment target of ``dotted`` (``A(2,1)`` or ``A(2, 1)``)."""
    element = array_element(dotted)
    if element is None:
        return re.escape(_target(dotted, kind))
    name, row, column = element
    return rf"{re.escape(name)}\([ \t]*{row}[ \t]*,[ \t]*{column}[ \t]*\)"


def _statement(dotted: str, value: Any, kind: str | None) -> str:
    text = script_value(value)
    if kind == "String" and not text.startswith("'"):
        text = f"'{text}'"  # GMAT reads a bare word assigned to a String as a resource name
    return f"{_target(dotted, kind)} = {text};"


def _matched(match: re.Match[str]) -> str:
    """The text of the one group of ``match`` that matched (a quoted or a bare name)."""
    return next(group for group in match.groups() if group is not None)


def _expanded(lines: list[str], seen: set[str]) -> list[str]:
    """``lines`` with each ``#Include`` line replaced by the included file's lines, recursively.

    ``lines`` carry absolute ``#Include`` paths; ``seen`` stops include cycles.
    """
    out: list[str] = []
    for line in lines:
        include = _INCLUDE.match(line)
        if include is None:
            out.append(line)
            continue
        target = Path(_matched(include))
        identity = os.path.realpath(target)
        if identity not in seen and target.is_file():
            seen.add(identity)
            included = canonical_text(target).split("\n")
            out += _expanded([_absolute_include(x, target.parent) for x in included], seen)
    return out


def _created_types(lines: list[str]) -> dict[str, str]:
    """``{resource name: type}`` for every ``Create Type a b c;`` line (includes inlined)."""
    kinds: dict[str, str] = {}
    for line in lines:
        match = _CREATE.match(line)
        if match is not None:
            names = _DIMENSIONS.sub("", match.group(2))
            for name in re.split(r"[\s,]+", names.strip()):
                if name:
                    kinds[name] = match.group(1)
    return kinds


def _drop_settings(lines: list[str], begin: int, force: str) -> int:
    """Remove the assignments to ``force``'s fields (``FM.Drag.*``) from ``lines[:begin]``.

    Returns the new ``begin``.
    """
    settings = re.compile(rf"[ \t]*(?:GMAT[ \t]+)?{re.escape(force)}\.[\w.]+[ \t]*=")
    kept = [line for line in lines[:begin] if not settings.match(line)]
    lines[:begin] = kept
    return len(kept)


def _set_in_includes(
    own: list[str], section: list[str], overrides: Mapping[str, Any], kinds: Mapping[str, str]
) -> bool:
    """Whether an ``#Include`` file of the resource section ``own`` assigns a path of ``overrides``.

    ``section`` is ``own`` with its includes inlined. The override must then
    replace that assignment where it stands: GMAT refuses a second
    ``Prop.Type`` assignment, wherever it is written.
    """
    for dotted in overrides:
        assigns = _assigns(dotted, kinds.get(resource_of(dotted)))
        if len(list(filter(assigns.match, section))) > len(list(filter(assigns.match, own))):
            return True
    return False


def _assigns(dotted: str, kind: str | None) -> re.Pattern[str]:
    """A pattern matching a line of the script's own assignment to ``dotted``."""
    return re.compile(rf"[ \t]*(?:GMAT[ \t]+)?{_assigned(dotted, kind)}[ \t]*=")


def _place(lines: list[str], begin: int, dotted: str, statement: str, kind: str | None) -> int:
    """Write ``statement`` for ``dotted`` into ``lines[:begin]``; return the new ``begin``."""
    resource, _ = _split(dotted)
    assigns = _assigns(dotted, kind)
    touches = re.compile(rf"[ \t]*(?:GMAT[ \t]+)?{re.escape(resource)}(?:\.|\(|[ \t]*=)")
    creates = re.compile(rf"[ \t]*Create[ \t]+\w+[ \t]+(?:[^;%]*[\s,])?{re.escape(resource)}\b")
    own: int | None = None
    last: int | None = None
    index = 0
    while index < begin:
        end = index
        while end + 1 < begin and lines[end].rstrip().endswith("..."):
            end += 1  # a statement continued over several lines
        line = lines[index]
        if assigns.match(line):
            own = index
            del lines[index : end + 1]
            lines.insert(index, statement)
            begin -= end - index
            end = index
        if touches.match(line) or creates.match(line):
            last = end
        index = end + 1
    if own is not None:
        return begin
    at = begin if last is None else last + 1
    lines.insert(at, statement)
    return begin + 1


def _absolute_include(line: str, directory: Path) -> str:
    match = _INCLUDE.match(line)
    if match is None:
        return line
    written = _matched(match)
    if PurePath(written).is_absolute():
        return line
    return f"#Include '{Path(os.path.abspath(directory / written)).as_posix()}'"


def _collect_includes(
    script: Path, text: str, top_dir: Path, seen: set[str], hashes: dict[str, str]
) -> None:
    for lineno, line in enumerate(text.split("\n"), start=1):
        if "#Include" not in line:
            continue
        match = _INCLUDE.match(line)
        if match is None:
            continue
        written = _matched(match)
        target = Path(os.path.abspath(script.parent / written))
        if not target.is_file():
            raise SweepConfigError(
                f"{script}, line {lineno}: #Include {written!r} names {target}, which does "
                "not exist or is not a file; includes resolve relative to the directory of "
                "the script that contains them; fix the path or create the file"
            )
        identity = os.path.realpath(target)
        if identity in seen:
            continue
        seen.add(identity)
        included = canonical_text(target)
        hashes[_include_key(written, target, top_dir)] = text_sha256(included)
        _collect_includes(target, included, top_dir, seen, hashes)


def _include_key(written: str, target: Path, top_dir: Path) -> str:
    if PurePath(written).is_absolute():
        return target.as_posix()
    try:
        return PurePath(os.path.relpath(target, top_dir)).as_posix()
    except ValueError:  # another drive on Windows: no relative form exists
        return target.as_posix()
