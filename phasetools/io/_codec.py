"""Lossless mapping between result dataclasses and HDF5 groups (no pickle).

Each field of a dataclass becomes, by the kind of its value:

=====================  =====================================================  ==================
value                  stored as                                              ``__types__`` tag
=====================  =====================================================  ==================
None                   nothing (tag only)                                     ``none``
bool/int/float/str     group attribute                                        ``bool`` ``int`` ...
numpy scalar           group attribute (dtype kept)                           ``np:<dtype>``
ndarray (ndim >= 1)    dataset, Fletcher-32 checksummed                       ``ndarray``
ndarray of str         dataset of UTF-8 strings                               ``ndarray:str:<dtype>``
masked array           dataset (masked entries filled) + ``<name>__mask``     ``masked``
tuple/list of scalars  1-D dataset                                            ``tuple:<t>``
tuple/list of objects  subgroup with children ``0, 1, ...``                   ``seq:tuple``
dict (JSON-able)       JSON string attribute                                  ``json``
registered dataclass   subgroup with attribute ``kind``                       ``object``
=====================  =====================================================  ==================

The tags are kept in the group attribute ``__types__`` (a JSON object), so reading
restores Python types, dtypes and shapes exactly. Dimension names and units come from
the result class (``_dims``, ``_coords``, ``_units``) and are written as HDF5 dimension
labels/scales and ``units`` attributes.
"""

from __future__ import annotations

import dataclasses
import json

import h5py
import numpy as np

from ..results import registry
from ._errors import CorruptFileError, where
from ._verify import check_dataset

__all__ = ["write_result", "read_result", "write_object", "read_object"]

_SCALARS = {bool: "bool", int: "int", float: "float", str: "str"}
_FROM_TAG = {"bool": bool, "int": int, "float": float, "str": str}


def write_result(group: h5py.Group, obj) -> None:
    """Write the fields of a registered result into an empty h5py group (no checksum, no marker).

    Parameters
    ----------
    group : h5py.Group
        An empty group of a writable file.
    obj : Result
        A registered result.
    """
    write_object(group, obj)


def read_result(group: h5py.Group):
    """Read a result written by :func:`write_result` (validated against the schema).

    Parameters
    ----------
    group : h5py.Group
        The group holding the result's fields.

    Returns
    -------
    Result
    """
    return read_object(group)


def write_object(group: h5py.Group, obj) -> None:
    cls = type(obj)
    if registry().get(cls.__name__) is not cls:
        raise TypeError(f"{cls.__name__} is not a registered storable class")
    group.attrs["kind"] = cls.__name__
    types = {}
    for f in dataclasses.fields(obj):
        types[f.name] = _write_value(group, f.name, getattr(obj, f.name))
    group.attrs["__types__"] = json.dumps(types)
    _annotate(group, cls)


def _write_value(group, name, value) -> str:
    if value is None:
        return "none"
    if type(value) in _SCALARS:
        group.attrs[name] = value
        return _SCALARS[type(value)]
    if isinstance(value, np.generic):
        group.attrs[name] = value
        return f"np:{value.dtype.str}"
    if isinstance(value, np.ma.MaskedArray):
        mask = np.ma.getmaskarray(value)
        data = np.asarray(value.data).copy()
        if data.dtype.kind == "f":
            data[mask] = np.nan
        _dataset(group, name, data)
        _dataset(group, f"{name}__mask", mask)
        return "masked"
    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            group.attrs[name] = value
            return f"np0:{value.dtype.str}"
        if value.dtype.kind == "U":
            _dataset(group, name, value.astype(object), dtype=h5py.string_dtype())
            return f"ndarray:str:{value.dtype.str}"
        _dataset(group, name, value)
        return "ndarray"
    if isinstance(value, (tuple, list)):
        seq = type(value).__name__
        if all(type(v) in _SCALARS for v in value) and len({type(v) for v in value}) <= 1:
            t = _SCALARS[type(value[0])] if value else "int"
            if t == "int" and any(not -2**63 <= v < 2**63 for v in value):
                t = "bigint"  # e.g. 128-bit SeedSequence entropy: stored as decimal strings
            if t in ("str", "bigint"):
                _dataset(group, name, np.array([str(v) for v in value], dtype=object), dtype=h5py.string_dtype())
            else:
                _dataset(group, name, np.array(value, dtype={"int": np.int64, "float": np.float64,
                                                             "bool": np.bool_}[t]).reshape(len(value)))
            return f"{seq}:{t}"
        sub = group.create_group(name)
        for i, v in enumerate(value):
            if not dataclasses.is_dataclass(v):
                raise TypeError(f"field {name!r}: cannot store a {seq} holding {type(v).__name__}")
            write_object(sub.create_group(str(i)), v)
        sub.attrs["length"] = len(value)
        return f"seq:{seq}"
    if isinstance(value, dict):
        group.attrs[name] = json.dumps(value)
        return "json"
    if dataclasses.is_dataclass(value):
        write_object(group.create_group(name), value)
        return "object"
    raise TypeError(f"field {name!r}: cannot store a value of type {type(value).__name__}")


def _dataset(group, name, data, dtype=None):
    kwargs = {}
    if data.size > 0 and dtype is None:
        # checksum detects corrupted bytes on read (not available for variable-length strings)
        kwargs = {"fletcher32": True, "chunks": True}
    return group.create_dataset(name, data=data, dtype=dtype, **kwargs)


def _annotate(group, cls):
    """Dimension labels and scales, units."""
    units = getattr(cls, "_units", {})
    dims = getattr(cls, "_dims", {})
    coords = getattr(cls, "_coords", {})
    for name, unit in units.items():
        target = group.get(name) if isinstance(group.get(name), h5py.Dataset) else None
        if target is not None:
            target.attrs["units"] = unit
    group.attrs["units"] = json.dumps(units)
    for dim, field in coords.items():
        ds = group.get(field)
        if isinstance(ds, h5py.Dataset) and ds.ndim == 1:
            ds.make_scale(dim)
    for name, names in dims.items():
        for suffix in ("", "__mask"):
            ds = group.get(name + suffix)
            if not isinstance(ds, h5py.Dataset) or ds.ndim != len(names):
                continue
            for axis, dim in enumerate(names):
                ds.dims[axis].label = dim
                scale = group.get(coords.get(dim, ""))
                if (isinstance(scale, h5py.Dataset) and scale.name != ds.name
                        and scale.shape[0] == ds.shape[axis]):
                    ds.dims[axis].attach_scale(scale)


def read_object(group: h5py.Group):
    """Read and validate a registered dataclass written by :func:`write_object`.

    Parameters
    ----------
    group : h5py.Group
        The object's group.

    Returns
    -------
    object
        The dataclass instance.

    Raises
    ------
    CorruptFileError
        The group does not follow the schema: unknown kind or storage tag, a value of the
        wrong type, dtype or number of dimensions, an out-of-range value, a missing field;
        the message names the file, the group and the field.
    """
    if not isinstance(group, h5py.Group):
        raise CorruptFileError(f"{where(group.parent)}: {group.name} is a {type(group).__name__}, not a group")
    kind = group.attrs.get("kind")
    cls = registry().get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise CorruptFileError(f"{where(group)}: unknown result kind {kind!r}")
    try:
        types = json.loads(group.attrs["__types__"])
    except (KeyError, TypeError, ValueError):
        raise CorruptFileError(f"{where(group)}: the attribute __types__ is missing or not JSON") from None
    if not isinstance(types, dict):
        raise CorruptFileError(f"{where(group)}: the attribute __types__ is not a JSON object")
    values = {}
    former = getattr(cls, "_former_names", {})
    for f in dataclasses.fields(cls):
        name = f.name if f.name in types else former.get(f.name, f.name)  # files written before a rename
        if name not in types:
            if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING:
                continue  # a field added after the file was written keeps its default
            raise CorruptFileError(f"{where(group, f.name)}: the field is missing")
        tag = types[name]
        try:
            values[f.name] = _read_value(group, name, tag)
        except CorruptFileError:
            raise
        except (KeyError, OSError, RuntimeError, ValueError, TypeError, OverflowError, AttributeError) as exc:
            raise CorruptFileError(f"{where(group, f.name)}: unreadable as {tag!r}: {exc}") from None
        _check_range(group, f.name, values[f.name])
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise CorruptFileError(f"{where(group)}: the stored values do not make a {kind}: {exc}") from None


# Values that no phasetools computation produces: stored values outside them are damage.
_RANGES = {
    "n_layers": (1, None, "an integer >= 1"), "width": (1, None, "an integer >= 1"),
    "batch_size": (1, None, "an integer >= 1"), "n_seeds": (1, None, "an integer >= 1"),
    "n_resamples": (1, None, "an integer >= 1"), "max_steps": (1, None, "an integer >= 1"),
    "dt": (0, None, "> 0"), "lr": (0, None, "> 0"), "temperature": (0, None, ">= 0"),
    "confidence": (0, 1, "in (0, 1)"),
}


def _check_range(group, name, value):
    rule = _RANGES.get(name)
    if rule is None or isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        return
    low, high, text = rule
    v = float(value)
    if np.isnan(v):
        return
    bad = (v < low if text.startswith(">=") or text.startswith("an integer") else v <= low)
    bad = bad or (high is not None and v >= high)
    if name in ("n_layers", "width", "batch_size", "n_seeds", "n_resamples", "max_steps"):
        bad = bad or v != int(v)
    if bad:
        raise CorruptFileError(f"{where(group, name)}: the stored value {value!r} is out of range (must be {text})")


def _bad(group, name, text):
    return CorruptFileError(f"{where(group, name)}: {text}")


def _attr(group, name, kinds, tag):
    """An attribute holding a scalar of one of the numpy ``kinds`` (or a str for kinds 'U')."""
    value = group.attrs[name]
    if kinds == "U":
        if not isinstance(value, str):
            raise _bad(group, name, f"stored as {type(value).__name__}, but its tag {tag!r} says str")
        return value
    arr = np.asarray(value)
    if arr.ndim != 0 or arr.dtype.kind not in kinds:
        raise _bad(group, name, f"stored as {arr.dtype} with shape {arr.shape}, but its tag {tag!r} says a "
                                f"scalar of kind {kinds!r}")
    return arr


def _numeric_dtype(group, name, text, tag):
    try:
        dtype = np.dtype(text)
    except TypeError:
        raise _bad(group, name, f"unknown storage tag {tag!r}") from None
    if dtype.kind not in "biufc":
        raise _bad(group, name, f"unknown storage tag {tag!r} (only numeric dtypes are stored)")
    return dtype


def _dataset_of(group, name, tag, kinds, ndim=None):
    ds = group.get(name)
    if not isinstance(ds, h5py.Dataset):
        raise _bad(group, name, f"a dataset is expected for tag {tag!r}")
    check_dataset(ds, name)
    string = h5py.check_string_dtype(ds.dtype) is not None
    if (kinds == "S") != string or (kinds != "S" and ds.dtype.kind not in kinds):
        raise _bad(group, name, f"dataset of dtype {ds.dtype}, which tag {tag!r} does not allow")
    if (ndim is not None and ds.ndim != ndim) or ds.ndim == 0 or ds.ndim > 32:
        raise _bad(group, name, f"dataset with {ds.ndim} dimension(s), which tag {tag!r} does not allow")
    return ds


_SEQ_KINDS = {"int": "iu", "float": "f", "bool": "b", "str": "S", "bigint": "S"}
_ATTR_KINDS = {"bool": "b", "int": "iu", "float": "fiu", "str": "U"}


def _read_value(group, name, tag):
    if not isinstance(tag, str):
        raise _bad(group, name, f"unknown storage tag {tag!r}")
    if tag == "none":
        return None
    if tag in _FROM_TAG:
        value = _attr(group, name, _ATTR_KINDS[tag], tag)
        return _FROM_TAG[tag](value if tag == "str" else value.item())
    if tag.startswith("np:"):
        dtype = _numeric_dtype(group, name, tag[3:], tag)
        value = _attr(group, name, "biufc", tag)
        if value.dtype != dtype:
            raise _bad(group, name, f"stored as {value.dtype}, but its tag {tag!r} says {dtype}")
        return dtype.type(value[()])
    if tag.startswith("np0:"):
        dtype = _numeric_dtype(group, name, tag[4:], tag)
        value = _attr(group, name, "biufc", tag)
        if value.dtype != dtype:
            raise _bad(group, name, f"stored as {value.dtype}, but its tag {tag!r} says {dtype}")
        return np.asarray(value, dtype=dtype)
    if tag == "masked":
        data = _dataset_of(group, name, tag, "biufc")
        mask = _dataset_of(group, f"{name}__mask", tag, "b")
        if mask.shape != data.shape:
            raise _bad(group, name, f"mask of shape {mask.shape} for data of shape {data.shape}")
        return np.ma.MaskedArray(data[()], mask=mask[()])
    if tag == "ndarray":
        return _dataset_of(group, name, tag, "biufc")[()]
    if tag.startswith("ndarray:str:"):
        dtype = np.dtype(tag[len("ndarray:str:"):]) if tag[len("ndarray:str:"):][1:2] == "U" else None
        if dtype is None:
            raise _bad(group, name, f"unknown storage tag {tag!r}")
        return _dataset_of(group, name, tag, "S").asstr()[()].astype(dtype)
    if tag.startswith(("tuple:", "list:")):
        seq, _, t = tag.partition(":")
        if t not in _SEQ_KINDS:
            raise _bad(group, name, f"unknown storage tag {tag!r}")
        ds = _dataset_of(group, name, tag, _SEQ_KINDS[t], ndim=1)
        if t == "str":
            items = ds.asstr()[()].tolist()
        elif t == "bigint":
            items = [int(v) for v in ds.asstr()[()].tolist()]
        else:
            items = [_FROM_TAG[t](v) for v in ds[()]]
        return tuple(items) if seq == "tuple" else list(items)
    if tag in ("seq:tuple", "seq:list"):
        sub = group.get(name)
        if not isinstance(sub, h5py.Group):
            raise _bad(group, name, f"a group is expected for tag {tag!r}")
        length = _attr(sub, "length", "iu", "int").item()
        if not 0 <= length <= len(sub):
            raise _bad(group, name, f"declares {length} items but holds {len(sub)}")
        items = [read_object(sub[str(i)]) for i in range(length)]
        return tuple(items) if tag == "seq:tuple" else items
    if tag == "json":
        return json.loads(_attr(group, name, "U", tag))
    if tag == "object":
        sub = group.get(name)
        if not isinstance(sub, h5py.Group):
            raise _bad(group, name, f"a group is expected for tag {tag!r}")
        return read_object(sub)
    raise _bad(group, name, f"unknown storage tag {tag!r}")
