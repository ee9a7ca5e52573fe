"""Input checks shared by every layer.

Each check raises ``ValueError`` whose message names the parameter and the allowed
range, so that the CLI can print it verbatim on one line.
"""

from __future__ import annotations

import numbers

import numpy as np


def _shown(value) -> str:
    """``repr`` of ``value`` as a user wrote it: numpy scalars shown as Python numbers (0, not np.int64(0))."""
    if isinstance(value, np.generic):
        value = value.item()
    return repr(value)


def check_n_layers(n_layers, *, name: str = "n_layers", minimum: int = 2) -> int:
    """Return ``n_layers`` as a Python int, or raise if it is not an integer >= minimum."""
    if isinstance(n_layers, bool) or not isinstance(n_layers, numbers.Integral):
        raise ValueError(
            f"{name} must be an integer >= {minimum} (the number of weight matrices), "
            f"got {_shown(n_layers)}"
        )
    n = int(n_layers)
    if n < minimum:
        raise ValueError(
            f"{name} must be an integer >= {minimum} (the number of weight matrices), got {n}"
        )
    return n


def as_float_array(value, name: str) -> np.ndarray:
    """Convert to a float64 array; reject non-numeric input and non-finite entries."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a finite real number or array of them, got {_shown(value)}") from None
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (no NaN or inf), got {_shown(value)}")
    return arr


def check_positive(value, name: str) -> np.ndarray:
    arr = as_float_array(value, name)
    if np.any(arr <= 0):
        raise ValueError(f"{name} must be > 0, got {_shown(value)}")
    return arr


def check_nonnegative(value, name: str) -> np.ndarray:
    arr = as_float_array(value, name)
    if np.any(arr < 0):
        raise ValueError(f"{name} must be >= 0, got {_shown(value)}")
    return arr


def check_int(value, name: str, minimum: int = 0) -> int:
    """``value`` as a Python int, or raise if it is not an integer >= ``minimum``.

    Parameters
    ----------
    value : int
        The value to check (bool is refused).
    name : str
        The parameter's name, for the message.
    minimum : int
        The smallest allowed value.

    Returns
    -------
    int
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or int(value) < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {_shown(value)}")
    return int(value)


def check_scalar(value, name: str, *, positive: bool = False) -> float:
    """``value`` as a finite Python float, ``> 0`` if ``positive`` else ``>= 0``.

    Parameters
    ----------
    value : float
        The value to check (a 0-d array is accepted; a longer one is refused).
    name : str
        The parameter's name, for the message.
    positive : bool
        Require ``> 0`` (default: ``>= 0``).

    Returns
    -------
    float
    """
    arr = as_float_array(value, name)
    if arr.ndim != 0:
        raise ValueError(f"{name} must be a number, got shape {arr.shape}")
    v = float(arr)
    if positive and v <= 0:
        raise ValueError(f"{name} must be > 0, got {_shown(value)}")
    if not positive and v < 0:
        raise ValueError(f"{name} must be >= 0, got {_shown(value)}")
    return v


def check_width(width, name: str = "width") -> int:
    if isinstance(width, bool) or not isinstance(width, numbers.Integral) or int(width) < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {_shown(width)}")
    return int(width)


def check_choice(value, name: str, choices) -> str:
    if value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {allowed}, got {_shown(value)}")
    return value


def broadcast(**arrays) -> tuple[tuple[int, ...], list[np.ndarray]]:
    """Broadcast named arrays together; a shape mismatch names the parameters."""
    try:
        out = np.broadcast_arrays(*arrays.values())
    except ValueError:
        shapes = ", ".join(f"{k} {np.shape(v)}" for k, v in arrays.items())
        raise ValueError(f"array shapes do not broadcast together: {shapes}") from None
    shape = out[0].shape if out else ()
    return shape, [np.array(o, dtype=np.float64) for o in out]


def check_data_matrices(X, Y):
    """Data matrices with samples in rows: 1-D inputs become one column; same row count."""
    X = as_float_array(X, "X")
    Y = as_float_array(Y, "Y")
    if X.ndim == 1:
        X = X[:, None]
    if Y.ndim == 1:
        Y = Y[:, None]
    if X.ndim != 2 or Y.ndim != 2 or X.shape[0] != Y.shape[0] or X.shape[0] < 1:
        raise ValueError(f"X and Y must be 2-D with the same number of rows (samples), "
                         f"got {X.shape} and {Y.shape}")
    return np.ascontiguousarray(X), np.ascontiguousarray(Y)


def available_memory() -> int:
    """Bytes of memory this process can still allocate without swapping (an estimate).

    Returns
    -------
    int
        ``psutil.virtual_memory().available`` when psutil is installed, else ``MemAvailable``
        of ``/proc/meminfo``, else the physical memory from ``os.sysconf``.
    """
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import os

        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 2**63 - 1


def format_bytes(n_bytes) -> str:
    """``n_bytes`` as a short human-readable size ("3.2 GB").

    Parameters
    ----------
    n_bytes : int or float

    Returns
    -------
    str
    """
    n = float(n_bytes)
    for unit in ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB"):
        if abs(n) < 1000 or unit == "ZB":
            return f"{n:.3g} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000
    return f"{n:.3g} ZB"


def check_memory(n_bytes, what: str) -> int:
    """Refuse, before allocating, an array (or set of arrays) that cannot fit in memory.

    Parameters
    ----------
    n_bytes : int or float
        Estimated size of what is about to be allocated.
    what : str
        What it is, naming the parameters that set its size (e.g. ``"n_traj = 10**12
        trajectories"``); the message starts with it.

    Returns
    -------
    int
        ``n_bytes`` as an int, when it fits.

    Raises
    ------
    ValueError
        One line naming ``what``, the bytes needed and the bytes available.
    """
    need = float(n_bytes)
    have = available_memory()
    if not need <= have:
        raise ValueError(f"{what} needs about {format_bytes(need)} of memory, more than the "
                         f"{format_bytes(have)} available; lower it")
    return int(need)
