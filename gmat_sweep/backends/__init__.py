"""Execution backends: the :class:`~gmat_sweep.backends.base.Pool` interface and its adapters.

Every backend is known by a name, in the style of fsspec's
``known_implementations``: ``backend="local"``, ``"dask"``, ``"joblib"``,
``"ray"``, or a Dask scheduler address such as ``"tcp://host:8786"``. The
entry points, the CLI's ``--backend`` and the conformance tests all read
:data:`KNOWN_BACKENDS`; an adapter's module is imported only when its name is
used, and a missing optional dependency is reported with its install hint.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any, NamedTuple

from gmat_sweep.errors import BackendError

if TYPE_CHECKING:
    from gmat_sweep.backends.base import Pool


class KnownBackend(NamedTuple):
    """Where a named backend lives and how it is sized and installed."""

    target: str
    """``module:Class`` of the pool."""
    workers_argument: str
    """Keyword of the pool's constructor that sets how many runs execute at once."""
    install: str
    """What to install when its module cannot be imported."""


KNOWN_BACKENDS: dict[str, KnownBackend] = {
    "local": KnownBackend("gmat_sweep.backends.local:LocalPool", "workers", "reinstall gmat_sweep"),
    "dask": KnownBackend(
        "gmat_sweep.backends.dask:DaskPool", "n_workers", "pip install 'dask[distributed]'"
    ),
    "joblib": KnownBackend(
        "gmat_sweep.backends.joblib:LocalJoblibPool", "workers", "pip install joblib"
    ),
    "ray": KnownBackend(
        "gmat_sweep.backends.ray:RayPool",
        "num_cpus",
        "pip install 'ray[default]' (the 'ray' extra)",
    ),
}
"""Backends by name; a Dask scheduler address (``tcp://...``) names a running cluster."""

_ADDRESS_SCHEMES = ("tcp://", "tls://", "ws://", "wss://", "inproc://", "ucx://")

_CHOICES = (
    f"use one of {', '.join(map(repr, KNOWN_BACKENDS))}, a Dask scheduler address such as "
    "'tcp://host:8786', or a Pool instance"
)


def check_backend(backend: object) -> None:
    """Refuse a ``backend=`` that is neither a pool, a name or address, nor ``None``.

    Raises
    ------
    BackendError
        ``backend`` is of another type (the message names it and the choices).
    """
    from gmat_sweep.backends.base import Pool

    if backend is not None and not isinstance(backend, str | Pool):
        raise BackendError(
            f"backend={backend!r} of type {type(backend).__name__} is not a backend; {_CHOICES}"
        )


def backend_class(name: str) -> type[Pool]:
    """The pool class registered as ``name``.

    Raises
    ------
    BackendError
        ``name`` is not a known backend, or its module cannot be imported
        (the message says what to install).
    """
    known = KNOWN_BACKENDS.get(name)
    if known is None:
        raise BackendError(f"backend {name!r} is not known; {_CHOICES}")
    module, _, attribute = known.target.partition(":")
    try:
        cls: type[Pool] = getattr(import_module(module), attribute)
    except ImportError as exc:
        raise BackendError(
            f"backend {name!r} needs a package that is not installed ({exc.name}): {known.install}"
        ) from exc
    return cls


def make_backend(name: str, workers: int | None = None, **options: Any) -> Pool:
    """Build the pool named ``name`` (or connected to the scheduler at address ``name``).

    Parameters
    ----------
    name:
        A key of :data:`KNOWN_BACKENDS` or a Dask scheduler address.
    workers:
        Runs executed at once (``None``: the pool's default, every core);
        passed as the pool's own keyword (``workers``, ``n_workers`` or
        ``num_cpus``). Not allowed with an address: the cluster is sized
        already.
    **options:
        Further keyword arguments of the pool's constructor.

    Raises
    ------
    BackendError
        Unknown name, missing optional dependency, or the pool cannot start.
    """
    if name.startswith(_ADDRESS_SCHEMES):
        from gmat_sweep.backends.dask import DaskPool

        if workers is not None:
            raise BackendError(
                f"backend {name!r} is a running Dask cluster, whose size is set where it was "
                f"started; drop workers={workers!r}"
            )
        return DaskPool.connect(name, **options)
    cls = backend_class(name)
    if workers is not None and workers != -1:
        options[KNOWN_BACKENDS[name].workers_argument] = workers
    return cls(**options)
