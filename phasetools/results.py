"""The common base of phasetools result objects.

Results are frozen dataclasses: fields hold the fully resolved inputs and the computed
values. ``to_dict()`` gives a JSON-ready dictionary whose keys are exactly the field
names; absent states (``None`` for scalars, masked entries for arrays) become ``null``.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np

__all__ = ["Result", "to_jsonable"]


def to_jsonable(value):
    """Convert numpy values, masked arrays, dataclasses and conventions to JSON types."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else None
    if isinstance(value, np.ma.MaskedArray):
        filled = value.astype(object).filled(None)
        return to_jsonable(filled.tolist())
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if hasattr(value, "to_dict"):
        return to_jsonable(value.to_dict())
    if isinstance(value, np.bool_):
        return bool(value)
    raise TypeError(f"cannot convert {type(value).__name__} to JSON")


@dataclasses.dataclass(frozen=True)
class Result:
    """Base class: a frozen dataclass with a JSON view."""

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def to_json(self, **kwargs) -> str:
        return json.dumps(to_jsonable(self.to_dict()), **kwargs)
