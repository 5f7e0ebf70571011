"""Execution backends: the :class:`~gmat_sweep.backends.base.Pool` interface and its adapters."""
