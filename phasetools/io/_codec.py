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

__all__ = ["write_result", "read_result", "write_object", "read_object"]

_SCALARS = {bool: "bool", int: "int", float: "float", str: "str"}
_FROM_TAG = {"bool": bool, "int": int, "float": float, "str": str}


def write_result(group: h5py.Group, obj) -> None:
    write_object(group, obj)


def read_result(group: h5py.Group):
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
    kind = group.attrs.get("kind")
    cls = registry().get(kind)
    if cls is None:
        raise ValueError(f"group {group.name}: unknown result kind {kind!r}")
    types = json.loads(group.attrs["__types__"])
    values = {}
    former = getattr(cls, "_former_names", {})
    for f in dataclasses.fields(cls):
        name = f.name if f.name in types else former.get(f.name, f.name)  # files written before a rename
        if name not in types:
            if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING:
                continue  # a field added after the file was written keeps its default
            raise ValueError(f"group {group.name}: field {f.name!r} is missing")
        values[f.name] = _read_value(group, name, types[name])
    return cls(**values)


def _read_value(group, name, tag):
    if tag == "none":
        return None
    if tag in _FROM_TAG:
        return _FROM_TAG[tag](group.attrs[name])
    if tag.startswith("np:"):
        return np.dtype(tag[3:]).type(group.attrs[name])
    if tag.startswith("np0:"):
        return np.asarray(group.attrs[name], dtype=np.dtype(tag[4:]))
    if tag == "masked":
        return np.ma.MaskedArray(group[name][()], mask=group[f"{name}__mask"][()])
    if tag == "ndarray":
        return group[name][()]
    if tag.startswith("ndarray:str:"):
        return group[name].asstr()[()].astype(np.dtype(tag[len("ndarray:str:"):]))
    if tag.startswith(("tuple:", "list:")):
        seq, t = tag.split(":")
        ds = group[name]
        if t == "str":
            items = ds.asstr()[()].tolist()
        elif t == "bigint":
            items = [int(v) for v in ds.asstr()[()].tolist()]
        else:
            items = [_FROM_TAG[t](v) for v in ds[()]]
        return tuple(items) if seq == "tuple" else list(items)
    if tag.startswith("seq:"):
        sub = group[name]
        items = [read_object(sub[str(i)]) for i in range(int(sub.attrs["length"]))]
        return tuple(items) if tag == "seq:tuple" else items
    if tag == "json":
        return json.loads(group.attrs[name])
    if tag == "object":
        return read_object(group[name])
    raise ValueError(f"group {group.name}: field {name!r} has an unknown storage tag {tag!r}")
