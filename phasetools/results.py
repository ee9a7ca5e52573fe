"""The common base of phasetools result objects.

A result is a frozen dataclass. Its fields hold the fully resolved inputs (listed in
``_config_fields``; :attr:`Result.config` collects them, defaults included) and the
computed values; the keyword-only fields ``seeds`` (the entropy of the
``numpy.random.SeedSequence`` behind any randomness, ``None`` for deterministic results)
and ``stats`` (wall time, compile time, counts) come last.

* ``to_dict()`` / ``to_json()``: a JSON view whose keys are exactly the field names;
  absent states (``None`` for scalars, masked entries for arrays) become ``null``.
* ``to_hdf5(group)`` / ``from_hdf5(group)``: lossless storage (see ``docs/schema.md``).
* ``==`` compares values, dtypes and types field by field (arrays included);
  ``equal_values`` does the same but ignores ``stats`` (timings).
* ``a + b`` merges two ensemble results of the same configuration where the subclass
  defines ``merge``.

Every dataclass that can appear inside a stored result is registered by class name with
:func:`register` so that files can be read back without pickle.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import time
from typing import ClassVar

import numpy as np

__all__ = ["Result", "register", "registry", "to_jsonable", "deep_equal", "timed", "masked_to_objects"]

_REGISTRY: dict[str, type] = {}


def register(cls):
    """Class decorator: make a dataclass storable under its class name."""
    name = cls.__name__
    if name in _REGISTRY and _REGISTRY[name] is not cls:
        raise RuntimeError(f"two storable classes are named {name}")
    _REGISTRY[name] = cls
    return cls


# Modules whose import registers storable classes; imported before a file is read.
_PROVIDERS = ("phasetools.theory", "phasetools.stats", "phasetools.langevin", "phasetools.training",
              "phasetools.nonlinear", "phasetools.rare",
              "phasetools.compare", "phasetools.diagnose")


def registry() -> dict[str, type]:
    import importlib

    for module in _PROVIDERS:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:  # a layer not built yet
            if exc.name != module:
                raise
    return dict(_REGISTRY)


def timed(func):
    """Decorator for functions returning a Result: record ``stats["wall_time"]`` (seconds)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        out = func(*args, **kwargs)
        return dataclasses.replace(out, stats={**out.stats, "wall_time": time.perf_counter() - t0})

    return wrapper


def to_jsonable(value):
    """Convert numpy values, masked arrays, dataclasses and conventions to JSON types."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else None
    if isinstance(value, np.ma.MaskedArray):
        return to_jsonable(masked_to_objects(value).tolist())
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if hasattr(value, "to_dict"):
        return to_jsonable(value.to_dict())
    raise TypeError(f"cannot convert {type(value).__name__} to JSON")


def masked_to_objects(value: np.ma.MaskedArray) -> np.ndarray:
    """An object array with ``None`` at masked entries (``filled(None)`` would insert '?')."""
    return np.where(np.ma.getmaskarray(value), None, np.asarray(value.data).astype(object))


def deep_equal(a, b) -> bool:
    """Equality of stored values: same types, dtypes, shapes, masks and values (NaN == NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, np.ma.MaskedArray):
        return (a.dtype == b.dtype and a.shape == b.shape
                and np.array_equal(np.ma.getmaskarray(a), np.ma.getmaskarray(b))
                and deep_equal(np.asarray(a.data)[~np.ma.getmaskarray(a)], np.asarray(b.data)[~np.ma.getmaskarray(b)]))
    if isinstance(a, np.ndarray):
        if a.dtype != b.dtype or a.shape != b.shape:
            return False
        if a.dtype.kind in "fc":
            return bool(np.array_equal(a, b, equal_nan=True))
        return bool(np.array_equal(a, b))
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(deep_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(deep_equal(a[k], b[k]) for k in a)
    if dataclasses.is_dataclass(a):
        return all(deep_equal(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    return bool(a == b)


@dataclasses.dataclass(frozen=True, eq=False)
class Result:
    """Base class of all results. Subclasses use ``@dataclass(frozen=True, eq=False, repr=False)``."""

    seeds: tuple | None = dataclasses.field(default=None, kw_only=True)
    stats: dict = dataclasses.field(default_factory=dict, kw_only=True)

    _config_fields: ClassVar[tuple] = ()
    _dims: ClassVar[dict] = {}       # field -> dimension names of its axes
    _coords: ClassVar[dict] = {}     # dimension name -> field holding its coordinate values
    _units: ClassVar[dict] = {}      # field -> unit (see docs/schema.md)
    _former_names: ClassVar[dict] = {}  # field -> the name it was stored under before a rename

    @property
    def kind(self) -> str:
        return type(self).__name__

    @property
    def config(self) -> dict:
        """The fully resolved inputs of this result."""
        return {k: getattr(self, k) for k in self._config_fields}

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def to_json(self, **kwargs) -> str:
        return json.dumps(to_jsonable(self.to_dict()), **kwargs)

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return deep_equal(self, other)

    __hash__ = object.__hash__

    def equal_values(self, other) -> bool:
        """Equal in every field except ``stats`` (timings differ between identical runs)."""
        return type(other) is type(self) and all(
            deep_equal(getattr(self, f.name), getattr(other, f.name))
            for f in dataclasses.fields(self) if f.name != "stats")

    def __add__(self, other):
        merge = getattr(self, "merge", None)
        if merge is None:
            return NotImplemented
        return merge(other)

    def to_hdf5(self, group) -> None:
        """Write this result into an (empty) h5py group."""
        from .io import write_result

        write_result(group, self)

    @classmethod
    def from_hdf5(cls, group):
        """Read a result written by :meth:`to_hdf5`."""
        from .io import read_result

        out = read_result(group)
        if not isinstance(out, cls):
            raise TypeError(f"group {group.name} holds a {type(out).__name__}, not a {cls.__name__}")
        return out
