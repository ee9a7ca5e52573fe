"""Input checks and small helpers shared by the estimators of ``phasetools.stats``.

Checks raise ``ValueError`` naming the parameter and the allowed range (the convention
of :mod:`phasetools._validation`, whose helpers are reused here).
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .._validation import as_float_array

__all__ = ["check_survival_data", "check_confidence", "check_time_unit", "float_or_none", "fmt"]


def check_survival_data(times, censored) -> tuple[np.ndarray, np.ndarray]:
    """Validate right-censored escape times; return ``(times float64, censored bool)``.

    ``times`` : 1-D, non-empty, finite, ``>= 0``, with a positive sum (the total
    observed time). ``censored`` : 1-D of the same length, booleans or 0/1
    (``True`` = the trajectory hit its budget without escaping; its time is a lower bound).
    """
    t = as_float_array(times, "times")
    if t.ndim != 1:
        raise ValueError(f"times must be a 1-D array (one entry per trajectory), got shape {t.shape}")
    if t.size == 0:
        raise ValueError("times must not be empty (at least one trajectory is needed)")
    if np.any(t < 0):
        raise ValueError(f"times must be >= 0, got minimum {t.min()!r}")
    if not t.sum() > 0:
        raise ValueError("times must have a positive sum (the total observed time), got all zeros")
    c_raw = np.asarray(censored)
    if c_raw.ndim != 1:
        raise ValueError(f"censored must be a 1-D array of booleans (one per trajectory), "
                         f"got shape {c_raw.shape}")
    if c_raw.shape != t.shape:
        raise ValueError(f"times and censored must have the same length, got times {t.shape[0]} "
                         f"and censored {c_raw.shape[0]}")
    if c_raw.dtype == bool:
        c = c_raw.copy()
    else:
        if c_raw.dtype.kind not in "iuf" or not np.all((c_raw == 0) | (c_raw == 1)):
            raise ValueError("censored must hold booleans (or 0/1): True where the trajectory hit its "
                             "budget without escaping")
        c = c_raw.astype(bool)
    return t.copy(), c


def check_confidence(confidence, name: str = "confidence") -> float:
    """A confidence level strictly between 0 and 1, as a Python float."""
    if isinstance(confidence, bool) or not isinstance(confidence, numbers.Real):
        raise ValueError(f"{name} must be a number in (0, 1), got {confidence!r}")
    value = float(confidence)
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must be in (0, 1) (exclusive), got {confidence!r}")
    return value


def check_time_unit(time_unit) -> str | None:
    if time_unit is not None and not isinstance(time_unit, str):
        raise ValueError(f"time_unit must be a string (e.g. 't', 'steps', 'epochs') or None, "
                         f"got {time_unit!r}")
    return time_unit


def float_or_none(value) -> float | None:
    """A finite value as a Python float; None for +-inf and NaN (an absent value)."""
    value = float(value)
    return value if math.isfinite(value) else None


def fmt(value) -> str:
    if value is None:
        return "None"
    if isinstance(value, tuple):
        return "(" + ", ".join(fmt(v) for v in value) + ")"
    return f"{value:.6g}"
