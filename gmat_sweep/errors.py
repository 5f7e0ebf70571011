"""Exceptions raised by gmat-sweep.

Every exception derives from :class:`GmatSweepError`. Messages are written
for people: they name the bad value, the rule it broke and what to do
instead, so callers can print them as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path


class GmatSweepError(Exception):
    """Base class for every exception raised by gmat-sweep."""


class SweepConfigError(GmatSweepError):
    """Raised when a sweep configuration is invalid before any run starts.

    Covers contradictory arguments, malformed grid specs, and dotted-path
    overrides that fail validation at sweep-construction time. The message
    is the only payload.
    """


class OutputNameError(SweepConfigError):
    """Raised when a read needs the name of an output it was not given, or was given a wrong one.

    The sweep's runs wrote several outputs of the kind read (two ReportFiles)
    and no name was given, or the name given is not one of them. The message
    lists the names there are; a front end that takes the name another way
    (the command line's ``--name``) words it with :meth:`describe`.

    Parameters
    ----------
    kind:
        The kind of output read: ``"report"``, ``"ephemeris"`` or ``"contact"``.
    available:
        The names of that kind the sweep's ok runs wrote, in the order first written.
    requested:
        The name asked for, or ``None`` when none was given.
    """

    def __init__(self, kind: str, available: Sequence[str], requested: str | None) -> None:
        self.kind = kind
        self.available = tuple(available)
        self.requested = requested
        super().__init__(self.describe("name=", lambda name: f"name={name!r}"))

    def describe(self, option: str, spell: Callable[[str], str]) -> str:
        """The message, with ``option`` the way a name is passed and ``spell(name)`` one such name.

        In Python ``describe("name=", lambda name: f"name={name!r}")``; on the
        command line ``describe("--name", lambda name: f"--name {name}")``.
        """
        listed = ", ".join(repr(name) for name in self.available)
        example = spell(self.available[0])
        if self.requested is None:
            return (
                f"the sweep produced {len(self.available)} {self.kind} outputs ({listed}); "
                f"pass {option} to choose one, e.g. {example}"
            )
        return (
            f"{self.kind} {self.requested!r} was not produced by any ok run; the sweep's "
            f"{self.kind} outputs are {listed}; pass one of those, e.g. {example}"
        )


class _Spelled(Exception):
    """A message about one argument whose front end spells it (see :class:`ArgumentError`)."""

    def __init__(
        self, argument: str, key: object, value: object, rule: str, example: object = None
    ) -> None:
        self.argument = argument
        self.key = key
        self.value = value
        self.rule = rule
        self.example = example
        super().__init__(self.describe(python_spelling))

    def __reduce__(self) -> tuple[type[_Spelled], tuple[object, ...]]:
        return type(self), (self.argument, self.key, self.value, self.rule, self.example)

    def describe(self, spell: Callable[[str, object, object], str]) -> str:
        """The message; ``spell(argument, key, value)`` writes an argument as the front end does."""
        text = f"{spell(self.argument, self.key, self.value)}: {self.rule}"
        if self.example is None:
            return text
        return f"{text}; e.g. {spell(self.argument, self.key, self.example)}"


class ArgumentError(_Spelled, SweepConfigError):
    """Raised when one argument of a sweep design breaks a rule its front end can spell.

    The value is kept apart from the rule, so that the command line words the
    message with its own options (``--perturb 'Sat.SMA=normal(7000,-5)'``)
    where Python words it with keywords (``perturb['Sat.SMA'] = ('normal',
    7000.0, -5.0)``): :meth:`describe`.

    Parameters
    ----------
    argument:
        The Python parameter: ``"perturb"``, ``"bounds"``, ``"n"``,
        ``"trajectories"``, ``"levels"``, ``"second_order"`` or ``"stat"``.
    key:
        The field path of a ``perturb`` or ``bounds`` entry, else ``None``.
    value:
        The value given: a ``perturb`` entry as ``(distribution, *parameters)``,
        a ``bounds`` entry as ``(low, high)``, else the argument's value.
    rule:
        The rule it breaks, in words that hold in every front end.
    example:
        A value, in the form of ``value``, that keeps the rule, or ``None``.
    """


class ArgumentWarning(_Spelled, UserWarning):
    """Warned when a design argument is legal but weakens the design; as :class:`ArgumentError`."""


def python_spelling(argument: str, key: object, value: object) -> str:
    """An argument as Python passes it: ``levels=3`` or ``bounds['Sat.Cd'] = (2.6, 1.8)``."""
    if key is None:
        return f"{argument}={value!r}"
    return f"{argument}[{key!r}] = {value!r}"


class RunFailed(GmatSweepError):
    """Raised when a single run fails inside a worker (raise-on-failure mode).

    Per the gmat-sweep contract a failed run normally lands as a labelled row
    in the parent DataFrame rather than an exception, so this class is a typed
    sentinel for tests and for callers that opt into eager failure.

    Parameters
    ----------
    run_id:
        The offending run.
    stderr:
        The captured worker stderr or Python traceback. The message quotes its
        first non-blank line, which states the error; the lines after it are
        evidence (a traceback, the tail of the GMAT log).
    """

    def __init__(self, run_id: int, stderr: str | None) -> None:
        self.run_id = run_id
        self.stderr = stderr
        lines = [line for line in (stderr or "").splitlines() if line.strip()]
        first = lines[0].strip() if lines else "no error text was captured"
        super().__init__(f"run {run_id} failed: {first}")


class BackendError(GmatSweepError):
    """Raised when an execution backend itself fails.

    Covers worker-pool initialisation failures, lost workers, and backend
    implementations that violate the subprocess-isolation contract enforced
    by the :class:`~gmat_sweep.backends.base.Pool` ABC.
    """


class EngineError(GmatSweepError):
    """Raised when no GMAT engine can be set up in this process.

    The message lists what was tried (``GMAT_ROOT``, the embedded ``gmatpy``
    wheel and its cache directory) and how to fix it.
    """


class ManifestCorruptError(GmatSweepError):
    """Raised when a sweep manifest cannot be parsed, or points outside its sweep.

    Parameters
    ----------
    message:
        What is wrong and where.
    path:
        The offending file, so callers can surface it without re-deriving it.
    """

    def __init__(self, message: str, path: str | Path) -> None:
        self.path = path
        super().__init__(message)


class OverrideNotAppliedError(GmatSweepError):
    """Raised inside a worker when an overridden field does not hold the requested value.

    The engine read the field back after the overrides were applied and found
    another value (a clamp, a normalisation, a dropped write). The run is
    recorded as ``failed`` with this message; it is never run with the wrong
    value.
    """


class SweepLockedError(GmatSweepError):
    """Raised when another driver holds the sweep (one writer per sweep).

    The message names the holder (process id and host) and since when it
    holds the sweep, and says how to proceed.
    """


class MissionChangedError(GmatSweepError):
    """Raised when a sweep's mission changed on disk while its runs were running.

    Runs load the script (and its ``#Include`` files, and the files it reads)
    as they start, so runs started after an edit ran another mission than the
    one the manifest's hashes record. The sweep's runs are all recorded, and
    the manifest header keeps the problems (``mission_changed``); the message
    names each changed file with its hash before and after, and says how to
    get a sweep of one mission.
    """


class NoOutputFilesError(SweepConfigError, ValueError):
    """Raised when a sweep's results are read and an ``ok`` run recorded no output files.

    A run that succeeded writes every ReportFile, EphemerisFile and
    ContactLocator file of its mission, so there is nothing to read when none
    did (the mission has no file outputs: the message says what to add to
    the script) and the manifest cannot be trusted when only some did. It is
    also a :class:`ValueError`, the API reference's type for an ``ok`` entry
    without ``output_paths``.
    """


class RunOutputError(GmatSweepError, ValueError):
    """Raised when a run's recorded output cannot be read into the sweep's table.

    The file is damaged or incomplete, or its columns disagree with the other
    runs' (a type that cannot be cast, a missing ``time`` column). The message
    names the run, the file and the fix. It is also a :class:`ValueError`, so
    code that caught these errors as ``ValueError`` keeps working.
    """
