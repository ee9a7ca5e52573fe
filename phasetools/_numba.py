"""The one place that configures numba for phasetools.

``jit`` compiles with ``cache=True`` (so a second process loads machine code from the
cache instead of recompiling), ``nogil`` and ``fastmath=False`` (results must not depend
on reassociation). Kernels are pure functions over arrays: they never touch global RNG
state; randomness comes from per-trajectory generator states passed in as arrays.
"""

from __future__ import annotations

import functools

import numba

__all__ = ["jit", "pjit", "numba"]


def jit(func=None, **options):
    """``numba.njit`` with the project defaults (cache, nogil)."""
    opts = {"cache": True, "nogil": True, "fastmath": False, "error_model": "numpy"}
    opts.update(options)
    if func is None:
        return functools.partial(jit, **opts)
    return numba.njit(**opts)(func)


def pjit(func=None, **options):
    """Parallel variant (``prange`` loops); thread count from numba.set_num_threads."""
    return jit(func, parallel=True, **options)
