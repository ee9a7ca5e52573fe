"""A stored result of named numbers, for measurements that need no result class of their own."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..results import Result, register

__all__ = ["Measurement"]


def _plain(v):
    """JSON-able copy: arrays -> lists, numpy scalars -> Python numbers, NaN/inf -> None."""
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, np.ndarray)):
        return [_plain(x) for x in (v.tolist() if isinstance(v, np.ndarray) else v)]
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v) if math.isfinite(v) else None
    if v is None or isinstance(v, str):
        return v
    raise ValueError(f"values must hold numbers, strings, lists or dicts, got {type(v).__name__}")


@register
@dataclass(frozen=True, eq=False, repr=False)
class Measurement(Result):
    """Named numbers measured by one experiment, with how they were measured.

    Parameters
    ----------
    name : str
        The experiment's name.
    how : str
        How the numbers were measured (protocol, seeds, data, precision), in words.
    values : dict
        Name -> number, string, or (nested) list of them; non-finite numbers are stored as
        None (read them back with :meth:`array`).
    seeds, stats
        Keyword-only, as for every :class:`~phasetools.results.Result`.
    """

    name: str
    how: str
    values: dict

    _config_fields = ("name",)

    def __post_init__(self):
        object.__setattr__(self, "values", _plain(dict(self.values)))

    def array(self, key) -> np.ndarray:
        """One value as a float array (None -> NaN).

        Parameters
        ----------
        key : str
            A name in :attr:`values`.

        Returns
        -------
        numpy.ndarray
        """
        if key not in self.values:
            raise ValueError(f"key must be one of {', '.join(self.values)}, got {key!r}")
        v = self.values[key]

        def conv(x):
            return [conv(y) for y in x] if isinstance(x, list) else (np.nan if x is None else x)
        return np.asarray(conv(v), dtype=float)

    def __getitem__(self, key):
        return self.values[key]

    def __contains__(self, key):
        return key in self.values

    def __repr__(self):
        return f"Measurement({self.name!r}, {len(self.values)} values)"
