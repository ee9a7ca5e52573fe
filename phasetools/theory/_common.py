"""Small helpers shared by the theory modules (input normalisation, absent values)."""

from __future__ import annotations

import numpy as np

from .._validation import as_float_array, broadcast, check_n_layers, check_nonnegative, check_positive
from ._convention import resolve_convention


def mode_inputs(n_layers, c, a, convention, gamma=None):
    """Validate the common inputs of a per-mode call; broadcast them.

    Returns ``(n, conv, shape, |c|, a, gamma_canonical)`` with float64 arrays
    (``gamma_canonical`` is None when ``gamma`` is None). The coupling is converted to
    the canonical ``gamma`` of the given convention.
    """
    n = check_n_layers(n_layers)
    conv = resolve_convention(convention)
    c_arr = np.abs(as_float_array(c, "c"))
    a_arr = check_positive(a, "a")
    if gamma is None:
        shape, (c_arr, a_arr) = broadcast(c=c_arr, a=a_arr)
        return n, conv, shape, c_arr, a_arr, None
    g_arr = check_nonnegative(gamma, "gamma")
    shape, (c_arr, a_arr, g_arr) = broadcast(c=c_arr, a=a_arr, gamma=g_arr)
    return n, conv, shape, c_arr, a_arr, conv.gamma_to_canonical(g_arr)


def present(values, exists):
    """Scalars: a float, or None when absent. Arrays: a masked array (masked = absent)."""
    values = np.asarray(values, dtype=np.float64)
    exists = np.asarray(exists, dtype=bool)
    if values.ndim == 0:
        return float(values) if bool(exists) else None
    return np.ma.MaskedArray(np.where(exists, values, np.nan), mask=~exists)


def scalar_or_array(values):
    values = np.asarray(values)
    if values.ndim == 0:
        return values.item()
    return values
