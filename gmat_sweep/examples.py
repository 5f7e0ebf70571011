"""Example GMAT missions bundled with gmat_sweep, in the style of ``xarray.tutorial``.

Every example in the documentation runs after a plain ``pip install``:
``gmat_sweep.examples.path("leo_basic")`` is the path of a bundled mission
(``gmat-sweep example NAME --to DIR`` copies one out to edit).

- ``leo_basic``: one LEO orbit with drag and SRP, one ReportFile ``RF``; ~50 ms a run.
- ``leo_day``: a day of a sun-synchronous LEO, a report and a CCSDS-OEM ephemeris.
- ``hohmann_target``: a targeted Hohmann transfer; sweep ``TargetRadius.Value``.
- ``multi_output``: two reports, a CCSDS-OEM and an STK ephemeris.
- ``fails_at_runtime``: runs for ``Idx.Value`` 1 to 3, fails inside GMAT otherwise.
- ``slow``: high-fidelity propagation, about 10 s per ``Days.Value``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from gmat_sweep.errors import SweepConfigError


def names() -> list[str]:
    """The names of the bundled missions, sorted."""
    folder = resources.files("gmat_sweep") / "data"
    return sorted(item.name.removesuffix(".script") for item in folder.iterdir()
                  if item.name.endswith(".script"))  # fmt: skip


def path(name: str) -> Path:
    """The path of the bundled mission ``name`` (see :func:`names`).

    Raises
    ------
    SweepConfigError
        ``name`` is not a bundled mission; the message lists them.

    Examples
    --------
    >>> from gmat_sweep import examples, sweep
    >>> study = sweep(examples.path("leo_basic"), {"Sat.Cd": [2.0, 2.4]})  # doctest: +SKIP
    """
    if name not in names():
        raise SweepConfigError(
            f"no bundled mission named {name!r}; the examples are {', '.join(names())}"
        )
    return Path(str(resources.files("gmat_sweep") / "data" / f"{name}.script"))
