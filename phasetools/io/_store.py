"""The HDF5 store: many results per file, appended safely, read one at a time.

Layout (``docs/schema.md`` is the full, versioned description)::

    /                      attrs: format="phasetools", schema_version, provenance of the file
    /results/<name>/       one result; attrs: kind, complete, config (JSON), provenance,
                           attrs_sha256 (schema version 2)

Safe writes. A new result is written into a copy of the file made by
:func:`phasetools.io.atomic_update` (``.<name>.<pid>.tmp`` in the same folder), its
attribute checksum and then its ``complete`` attribute set last, the copy flushed to disk
and renamed over the original (atomic on POSIX). A writer killed at any moment therefore
leaves the original file exactly as it was; a group whose ``complete`` attribute is not
true is reported as incomplete and never loaded; data are Fletcher-32 checksummed and
attributes and structure SHA-256 checksummed, so changed bytes are detected on read.
Writers to the same file are serialised by an advisory lock (``<file>.lock``). Appending
costs a copy of the file: batch many small results into one call of :func:`save_many`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from ..results import Result, deep_equal, to_jsonable
from ._atomic import atomic_update, resolve_target
from ._codec import read_object
from ._errors import CorruptFileError, IncompleteResultError, SchemaVersionError, StoreError, where
from ._provenance import provenance
from ._verify import DIGEST_ATTR, attrs_digest, marker_set, verify_digest

__all__ = ["SCHEMA_VERSION", "StoreError", "CorruptFileError", "IncompleteResultError", "SchemaVersionError",
           "StoredResult", "save", "save_many", "load", "list_results", "find", "file_provenance",
           "open_results", "results_group", "init_file", "write_result_group", "read_result_group",
           "config_json", "summarize_value"]

SCHEMA_VERSION = 2
FORMAT = "phasetools"
_READ_ERRORS = (OSError, KeyError, RuntimeError, ValueError, TypeError, UnicodeDecodeError)


@dataclass(frozen=True)
class StoredResult:
    """What :func:`list_results` reports about one stored result.

    Parameters
    ----------
    name, kind : str
        The group name and the result class.
    complete : bool
        Its ``complete`` marker is set.
    created_utc, command : str
        Provenance of the call that wrote it.
    config : dict
        The stored configuration (JSON attribute).
    verified : bool
        Its attribute checksum was checked (False for groups written before schema
        version 2, which have none, and for incomplete or damaged groups).
    damage : str
        Empty, or why the group is damaged (it is then never loaded).
    """

    name: str
    kind: str
    complete: bool
    created_utc: str
    command: str
    config: dict
    verified: bool = False
    damage: str = ""

    def config_summary(self, width: int = 100) -> str:
        """The configuration on one line, long values clipped (for listings such as ``show``).

        Parameters
        ----------
        width : int, optional
            Maximal length of the line; longer lines end in ``...``.

        Returns
        -------
        str
            ``key=value`` pairs separated by ``, ``; arrays as ``[first, ..., last] (n)``,
            dictionaries as their ``name`` or ``{k1, k2, ...}`` (their keys).
        """
        text = ", ".join(f"{k}={summarize_value(v)}" for k, v in sorted(self.config.items()))
        return text if len(text) <= width else text[: max(width - 3, 0)] + "..."


def summarize_value(value, limit: int = 40) -> str:
    """A short text for one configuration value.

    Parameters
    ----------
    value : object
        A JSON value (number, str, list, dict, None).
    limit : int, optional
        Maximal length of the text.

    Returns
    -------
    str
        Numbers with 6 significant digits, long lists as ``[first, ..., last] (n)``,
        dictionaries as their ``name`` entry or their keys.
    """
    if isinstance(value, dict):
        if isinstance(value.get("name"), str):
            text = value["name"]
        else:
            keys = list(value)
            text = "{" + ", ".join(map(str, keys[:3])) + (", ..." if len(keys) > 3 else "") + "}"
    elif isinstance(value, list):
        flat = _flatten(value)
        items = [summarize_value(v, 12) for v in (flat if len(flat) <= 4 else (flat[0], flat[-1]))]
        text = (f"[{', '.join(items)}]" if len(flat) <= 4 else f"[{items[0]}, ..., {items[1]}] ({len(flat)})")
    elif isinstance(value, float):
        text = f"{value:.6g}"
    else:
        text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _flatten(value) -> list:
    out = []
    for v in value:
        out.extend(_flatten(v) if isinstance(v, list) else [v])
    return out


# ---------------------------------------------------------------------------------------
@contextlib.contextmanager
def open_results(path):
    """Open a phasetools results file for reading, its header checked.

    Parameters
    ----------
    path : str or Path
        The HDF5 file.

    Yields
    ------
    h5py.File
        The open file (read-only), closed on exit.

    Raises
    ------
    StoreError
        Missing file or not a phasetools file; :class:`CorruptFileError` when unreadable,
        :class:`SchemaVersionError` when written by a newer phasetools.
    """
    path = Path(path)
    if not path.exists():
        raise StoreError(f"{path}: no such file")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise CorruptFileError(f"{path}: not a readable HDF5 file (truncated or corrupt?): {exc}") from None
    try:
        _check_header(f, path)
        yield f
    finally:
        f.close()


def _check_header(f, path):
    try:
        fmt = f.attrs.get("format")
        version = f.attrs.get("schema_version", -1)
    except _READ_ERRORS as exc:
        raise CorruptFileError(f"{path}: the file attributes are unreadable: {exc}") from None
    if fmt != FORMAT:
        raise StoreError(f"{path}: not a phasetools results file (no format='{FORMAT}' attribute)")
    if isinstance(version, (bool, np.bool_)) or not isinstance(version, (int, np.integer)):
        raise CorruptFileError(f"{path}: invalid schema_version {version!r}")
    version = int(version)
    if version > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{path}: written with schema_version {version}, but this phasetools ({_pt_version()}) reads "
            f"schema_version <= {SCHEMA_VERSION}; upgrade phasetools to read it")
    if version < 1:
        raise StoreError(f"{path}: invalid schema_version {version}")


def _file_version(f) -> int:
    return int(f.attrs.get("schema_version", 1))


def _group_names(root, path):
    """Sorted names of the result groups under ``root`` (none when ``root`` is None)."""
    try:
        return sorted(root) if root is not None else []
    except _READ_ERRORS as exc:
        raise CorruptFileError(f"{path}: /results is unreadable: {exc}") from None


def results_group(f, path=None):
    """The ``/results`` group of an open file, or None when the file holds no result.

    Parameters
    ----------
    f : h5py.File
        A file opened by :func:`open_results` (or for writing).
    path : str or Path, optional
        The file name for messages.

    Returns
    -------
    h5py.Group or None

    Raises
    ------
    CorruptFileError
        ``/results`` exists but is not a group.
    """
    try:
        root = f.get("results")
    except _READ_ERRORS as exc:
        raise CorruptFileError(f"{path or f.filename}: /results is unreadable: {exc}") from None
    if root is not None and not isinstance(root, h5py.Group):
        raise CorruptFileError(f"{path or f.filename}: /results is a {type(root).__name__}, not a group")
    return root


def _pt_version():
    from .. import __version__

    return __version__


@contextlib.contextmanager
def _lock(path: Path):
    """Hold the advisory lock ``<file>.lock``, and remove it when done (no ``.lock`` is left behind).

    The lock file is unlinked while still locked; a writer that waited on the unlinked file
    sees that the path no longer names the file it locked and locks the new one instead.
    """
    lock_path = path.with_name(path.name + ".lock")
    while True:
        fh = open(lock_path, "a")
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            if os.stat(lock_path).st_ino == os.fstat(fh.fileno()).st_ino:
                break
        except FileNotFoundError:
            pass
        fh.close()   # the lock we got is on a removed file: take the current one
    try:
        yield
    finally:
        try:
            os.unlink(lock_path)
        except OSError:
            pass
        fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()


def config_json(result: Result) -> str:
    """The ``config`` attribute of a stored result: its configuration as canonical JSON.

    Parameters
    ----------
    result : Result
        Any phasetools result.

    Returns
    -------
    str
        ``json.dumps(to_jsonable(result.config), sort_keys=True)``.
    """
    return json.dumps(to_jsonable(result.config), sort_keys=True)


def init_file(f, prov: dict) -> None:
    """Write the file attributes (format, schema_version, provenance) of a new file.

    Parameters
    ----------
    f : h5py.File
        A file open for writing; nothing is changed when it already has a header.
    prov : dict
        Provenance attributes (:func:`phasetools.io.provenance`).
    """
    if "format" in f.attrs:
        return
    f.attrs["format"] = FORMAT
    f.attrs["schema_version"] = SCHEMA_VERSION
    for k, v in prov.items():
        f.attrs[k] = v


def write_result_group(parent, name: str, result: Result, attrs: dict | None = None):
    """Write ``result`` as the group ``parent/name``: data, attributes, checksum, marker last.

    Parameters
    ----------
    parent : h5py.Group
        The ``/results`` group of a file open for writing.
    name : str
        The new group's name (must not exist).
    result : Result
        A registered result.
    attrs : dict, optional
        Extra attributes (provenance, bookkeeping); covered by the attribute checksum.

    Returns
    -------
    h5py.Group
        The written group, its ``complete`` marker set.

    Raises
    ------
    TypeError, ValueError
        A value the schema cannot store; the partial group is removed.
    """
    g = parent.create_group(name)
    g.attrs["complete"] = False
    try:
        g.attrs["kind"] = result.kind
        result.to_hdf5(g)
        g.attrs["config"] = config_json(result)
    except (TypeError, ValueError):
        del parent[name]
        raise
    for k, v in (attrs or {}).items():
        g.attrs[k] = v
    g.attrs[DIGEST_ATTR] = attrs_digest(g)
    g.attrs["complete"] = True  # the marker is written last
    return g


def read_result_group(group) -> Result:
    """Read one result group after checking its marker, attribute checksum and schema.

    Parameters
    ----------
    group : h5py.Group
        A result group of an open phasetools file.

    Returns
    -------
    Result

    Raises
    ------
    IncompleteResultError
        Its ``complete`` marker is not set.
    CorruptFileError
        Anything damaged, with file, group and (where known) field named.
    """
    return _read_checked(group)[0]


def _read_checked(group) -> tuple[Result, bool]:
    try:
        if not isinstance(group, h5py.Group):
            raise CorruptFileError(f"{where(group.parent)}: {group.name} is not a group")
        if not marker_set(group):
            raise IncompleteResultError(f"{where(group)}: the result is incomplete (its writer was "
                                        "interrupted); it is not loaded")
        verified = verify_digest(group, required=_file_version(group.file) >= 2)
        result = read_object(group)
        if not verified:
            _check_config(group, result)
        return result, verified
    except StoreError:
        raise
    except _READ_ERRORS as exc:
        raise CorruptFileError(f"{where(group)}: corrupt: {exc}") from None


def _check_config(group, result):
    """An unverified group: its config attribute (what show and find read) must match the data."""
    stored = json.loads(group.attrs.get("config") or "{}")
    actual = json.loads(config_json(result))
    for key in sorted(set(stored) & set(actual)):
        if not deep_equal(stored[key], actual[key]):
            raise CorruptFileError(f"{where(group, key)}: the config attribute says {stored[key]!r} but the "
                                   f"stored value is {actual[key]!r}")


def _inspect(root, name) -> StoredResult:
    """One group as list_results reports it (damage described, never raised)."""
    attrs, complete, verified, damage = {}, False, False, ""
    try:
        g = root[name]
        if not isinstance(g, h5py.Group):
            raise CorruptFileError(f"{where(root)}: /results/{name} is not a group")
        attrs = dict(g.attrs)
        complete = marker_set(g)
        if complete:
            verified = verify_digest(g, required=_file_version(g.file) >= 2)
    except StoreError as exc:
        damage = str(exc).replace(f"{root.file.filename}: ", "", 1)  # listed per file: say it once
    except _READ_ERRORS as exc:
        damage = f"group {root.name}/{name} is unreadable: {exc}"
    try:
        cfg = json.loads(attrs.get("config") or "{}")
        cfg = cfg if isinstance(cfg, dict) else {}
    except (TypeError, ValueError):
        cfg, damage = {}, damage or "the config attribute is not JSON"
    return StoredResult(name, str(attrs.get("kind", "?")), complete and not damage,
                        str(attrs.get("created_utc", "")), str(attrs.get("command", "")), cfg,
                        verified and not damage, damage)


def save(result: Result, path, *, name: str | None = None, command: str | None = None) -> str:
    """Append ``result`` to the HDF5 file ``path`` (created if missing); return its name.

    Parameters
    ----------
    result : Result
        The result to store.
    path : str or Path
        The file; a symbolic link is written through to its target.
    name : str, optional
        The group name (default ``<kind>_NNNN``, the first free number).
    command : str, optional
        The command line recorded as provenance (default: this process's).

    Returns
    -------
    str
        The name of the new group.
    """
    return save_many([result], path, names=None if name is None else [name], command=command)[0]


def save_many(results, path, *, names=None, command: str | None = None) -> list[str]:
    """Append several results in one safe write (one file copy); return their names.

    Parameters
    ----------
    results : iterable of Result
        The results to store.
    path : str or Path
        The file; created if missing, a symbolic link is written through to its target.
        An existing file is checked first: a damaged group (changed bytes or attributes,
        invalid values) or a read-only file is refused with a :class:`StoreError`.
    names : list of str, optional
        One group name per result.
    command : str, optional
        The command line recorded as provenance.

    Returns
    -------
    list of str
        The names of the new groups.
    """
    results = list(results)
    for r in results:
        if not isinstance(r, Result):
            raise TypeError(f"can only store phasetools results, got {type(r).__name__}")
    if names is not None and len(names) != len(results):
        raise ValueError("names must have one entry per result")
    try:
        target = resolve_target(path)
        target.parent.mkdir(parents=True, exist_ok=True)
    except (PermissionError, IsADirectoryError) as exc:
        raise StoreError(str(exc)) from None
    prov = provenance(command)
    with _lock(target):
        if target.exists():
            _check_appendable(target)
        with atomic_update(target) as tmp, h5py.File(tmp, "a") as f:
            init_file(f, prov)
            root = f.require_group("results")
            out = []
            for i, r in enumerate(results):
                name = names[i] if names is not None else _next_name(root, r.kind)
                _check_name(name)
                if name in root:
                    raise StoreError(f"{path}: a result named {name!r} already exists")
                write_result_group(root, name, r, prov)
                out.append(name)
            f.flush()
    return out


def _check_appendable(path):
    """Refuse to append to a damaged or newer file: every complete group is read back."""
    with open_results(path) as f:
        root = results_group(f, path)
        for name in (sorted(root) if root is not None else []):
            try:
                _read_checked(root[name])
            except IncompleteResultError:
                continue  # reported as incomplete; never loaded, not damage
            except StoreError as exc:
                raise CorruptFileError(f"{exc}. Refusing to add to a file with a damaged result "
                                       f"(/results/{name}); save into a new file") from None
            except _READ_ERRORS as exc:
                raise CorruptFileError(f"{path}: /results/{name} is unreadable ({exc}); refusing to add to "
                                       "it; save into a new file") from None


def _check_name(name):
    if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
        raise ValueError(f"name must be a non-empty string without '/', got {name!r}")


def _next_name(root, kind: str) -> str:
    base = kind.lower()
    i = 1
    while f"{base}_{i:04d}" in root:
        i += 1
    return f"{base}_{i:04d}"


def list_results(path) -> list[StoredResult]:
    """Every result group in the file, complete or not, damaged or not, in name order.

    Parameters
    ----------
    path : str or Path
        A phasetools results file.

    Returns
    -------
    list of StoredResult
        One entry per group; ``damage`` says why a group cannot be loaded (its attribute
        checksum or marker is wrong), ``verified`` whether its attributes were checked.
    """
    with open_results(path) as f:
        root = results_group(f, path)
        names = _group_names(root, path)
        return [_inspect(root, name) for name in names]


def find(path, kind: str | None = None, **config) -> list[str]:
    """Names of the complete, undamaged results of ``kind`` whose config matches every given key.

    Parameters
    ----------
    path : str or Path
        A phasetools results file.
    kind : str, optional
        The result class name, e.g. ``"Landscape"``.
    **config
        Configuration values to match (a convention may be given by name).

    Returns
    -------
    list of str
    """
    want = {k: to_jsonable(v) for k, v in config.items()}
    names = []
    for info in list_results(path):
        if not info.complete or info.damage or (kind is not None and info.kind != kind):
            continue
        if all(k in info.config and _config_match(info.config[k], v) for k, v in want.items()):
            names.append(info.name)
    return names


def _config_match(stored, wanted):
    if isinstance(wanted, str) and isinstance(stored, dict):  # convention given by name
        return stored.get("name") == wanted
    if isinstance(stored, (int, float)) and isinstance(wanted, (int, float)):
        return float(stored) == float(wanted)
    return deep_equal(np.asarray(stored).tolist(), np.asarray(wanted).tolist()) or stored == wanted


def load(path, name: str | None = None) -> Result:
    """Load one result (only its group is read), after checking it.

    Parameters
    ----------
    path : str or Path
        A phasetools results file.
    name : str, optional
        The group name; may be omitted when the file holds one result.

    Returns
    -------
    Result
        The stored result, as written.

    Raises
    ------
    IncompleteResultError
        The group's writer was interrupted.
    CorruptFileError
        Changed data or attributes, or values that break the schema (file, group and field
        named).
    """
    with open_results(path) as f:
        root = results_group(f, path)
        names = _group_names(root, path)
        if name is None:
            if len(names) != 1:
                raise StoreError(f"{path}: holds {len(names)} results; pass name= one of {names}")
            name = names[0]
        if name not in names:
            raise StoreError(f"{path}: no result named {name!r}; it holds {names}")
        try:
            group = root[name]
        except _READ_ERRORS as exc:
            raise CorruptFileError(f"{path}: group /results/{name} is unreadable: {exc}") from None
        return _read_checked(group)[0]


def file_provenance(path) -> dict:
    """The file-level attributes: format, schema_version and the provenance of its creation.

    Parameters
    ----------
    path : str or Path
        A phasetools results file; only its root attributes are read.

    Returns
    -------
    dict
        Attribute name to value (see :func:`phasetools.io.provenance`).
    """
    with open_results(path) as f:
        try:
            return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in f.attrs.items()}
        except _READ_ERRORS as exc:
            raise CorruptFileError(f"{path}: the file attributes are unreadable: {exc}") from None
