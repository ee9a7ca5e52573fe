"""Integrity of stored result groups beyond the data checksums.

* :func:`attrs_digest`: SHA-256 of the group's tree: every attribute (config, scalar
  fields, provenance, sweep bookkeeping), every member's name, shape and dtype, and the
  values of the datasets that carry no Fletcher-32 checksum (strings, empty arrays).
  Written as the attribute ``attrs_sha256`` just before the ``complete`` marker.
* :func:`marker_set`: strict reading of ``complete`` (a boolean, nothing else).
* :func:`check_dataset`: a dataset must store at least the bytes it declares, so a
  header claiming 10^11 values is reported instead of being allocated.
"""

from __future__ import annotations

import hashlib
import json

import h5py
import numpy as np

from ._errors import CorruptFileError, where

__all__ = ["DIGEST_ATTR", "attrs_digest", "marker_set", "check_dataset", "verify_digest"]

DIGEST_ATTR = "attrs_sha256"
_UNHASHED = {"complete", DIGEST_ATTR}
_REFERENCES = {"DIMENSION_LIST", "REFERENCE_LIST"}  # object references: addresses, not content


def _canon(value):
    if isinstance(value, str):
        return ["s", value]
    if isinstance(value, bytes):
        return ["b", value.hex()]
    if isinstance(value, np.ndarray):
        return ["a", value.dtype.str, list(value.shape), [_canon(v) for v in value.ravel().tolist()]]
    if isinstance(value, np.generic):
        return ["n", value.dtype.str, _canon(value.item())]
    if isinstance(value, bool):
        return ["?", value]
    if isinstance(value, float):
        return ["f", value.hex()]
    if isinstance(value, (int, complex)):
        return ["p", repr(value)]
    return ["r", repr(value)]


def _attrs(obj, skip) -> list:
    return [[k, _canon(obj.attrs[k])] for k in sorted(obj.attrs) if k not in skip]


def check_dataset(ds: h5py.Dataset, field=None) -> None:
    """Raise CorruptFileError when ``ds`` declares more values than it stores.

    Parameters
    ----------
    ds : h5py.Dataset
        A dataset of a result group.
    field : str, optional
        The result field it holds, for the message.
    """
    declared = int(ds.size) * int(ds.dtype.itemsize)
    stored = int(ds.id.get_storage_size())
    if declared and stored < declared:
        raise CorruptFileError(f"{where(ds.parent, field or ds.name.rsplit('/', 1)[-1])}: the dataset declares "
                               f"shape {ds.shape} ({declared} bytes) but stores only {stored} bytes "
                               "(damaged header)")


def _dataset_entry(ds: h5py.Dataset) -> list:
    entry = [list(ds.shape), ds.dtype.str, _attrs(ds, _REFERENCES)]
    if not ds.fletcher32 and ds.size:
        check_dataset(ds)
        if h5py.check_string_dtype(ds.dtype) is not None:
            entry.append([str(v) for v in ds.asstr()[()].ravel().tolist()])
        else:
            entry.append(hashlib.sha256(np.ascontiguousarray(ds[()]).tobytes()).hexdigest())
    return entry


def attrs_digest(group: h5py.Group) -> str:
    """SHA-256 (hex) of a result group's attributes and structure.

    Parameters
    ----------
    group : h5py.Group
        A result group, after everything but ``attrs_sha256`` and ``complete`` is written.

    Returns
    -------
    str
        64 hexadecimal digits.
    """
    members = []
    group.visititems(lambda name, obj: members.append((name, obj)))
    tree = [["", "g", _attrs(group, _UNHASHED)]]
    for name, obj in sorted(members, key=lambda m: m[0]):
        if isinstance(obj, h5py.Dataset):
            tree.append([name, "d", *_dataset_entry(obj)])
        else:
            tree.append([name, "g", _attrs(obj, _REFERENCES)])
    text = json.dumps(tree, separators=(",", ":"), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def verify_digest(group: h5py.Group, *, required: bool) -> bool:
    """Check a group's ``attrs_sha256``; return False when it has none and none is required.

    Parameters
    ----------
    group : h5py.Group
        A complete result group.
    required : bool
        True for groups of schema version 2 files, which always carry the digest.

    Returns
    -------
    bool
        True when verified, False when unverified (a schema version 1 group).
    """
    stored = group.attrs.get(DIGEST_ATTR)
    if stored is None:
        if required:
            raise CorruptFileError(f"{where(group)}: the attribute checksum ({DIGEST_ATTR}) is missing")
        return False
    if not isinstance(stored, str) or stored != attrs_digest(group):
        raise CorruptFileError(f"{where(group)}: its attributes or structure changed after it was written "
                               f"(the {DIGEST_ATTR} checksum does not match)")
    return True


def marker_set(group: h5py.Group) -> bool:
    """The ``complete`` marker read strictly: True, False (absent or false), or damage.

    Parameters
    ----------
    group : h5py.Group
        A result group.

    Returns
    -------
    bool
        Whether the group is complete.

    Raises
    ------
    CorruptFileError
        The marker is not a boolean (e.g. the string ``"no"``).
    """
    value = group.attrs.get("complete", False)
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise CorruptFileError(f"{where(group)}: the attribute 'complete' is {value!r}, not a boolean")
