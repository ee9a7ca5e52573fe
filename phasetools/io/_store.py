"""The HDF5 store: many results per file, appended safely, read one at a time.

Layout (``docs/schema.md`` is the full, versioned description)::

    /                      attrs: format="phasetools", schema_version, provenance of the file
    /results/<name>/       one result; attrs: kind, complete, config (JSON), provenance

Safe writes. A new result is written into a copy of the file (``.<name>.<pid>.tmp`` in
the same folder), its ``complete`` attribute set last, the copy flushed to disk and then
renamed over the original (``os.replace``, atomic on POSIX). A writer killed at any
moment (SIGKILL included) therefore leaves the original file exactly as it was; a group
whose ``complete`` attribute is not true is reported as incomplete and never loaded; data
are Fletcher-32 checksummed so corrupted bytes are detected on read. Writers to the same
file are serialised by an advisory lock (``<file>.lock``). Appending costs a copy of the
file: batch many small results into one call of :func:`save_many`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from ..results import Result, deep_equal, to_jsonable
from ._codec import read_object
from ._provenance import provenance

__all__ = ["SCHEMA_VERSION", "StoreError", "CorruptFileError", "IncompleteResultError", "SchemaVersionError",
           "StoredResult", "save", "save_many", "load", "list_results", "find", "file_provenance"]

SCHEMA_VERSION = 1
FORMAT = "phasetools"


class StoreError(ValueError):
    """A phasetools HDF5 file cannot be read or written as asked."""


class CorruptFileError(StoreError):
    """The file or one of its groups is damaged (truncated, bad checksum, unreadable)."""


class IncompleteResultError(StoreError):
    """The result's group was never completed (its writer was interrupted)."""


class SchemaVersionError(StoreError):
    """The file was written with a newer schema than this phasetools can read."""


@dataclass(frozen=True)
class StoredResult:
    """What :func:`list_results` reports about one stored result."""

    name: str
    kind: str
    complete: bool
    created_utc: str
    command: str
    config: dict


# ---------------------------------------------------------------------------------------
@contextlib.contextmanager
def _open_read(path):
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
    if f.attrs.get("format") != FORMAT:
        raise StoreError(f"{path}: not a phasetools results file (no format='{FORMAT}' attribute)")
    version = int(f.attrs.get("schema_version", -1))
    if version > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{path}: written with schema_version {version}, but this phasetools ({_pt_version()}) reads "
            f"schema_version <= {SCHEMA_VERSION}; upgrade phasetools to read it")
    if version < 1:
        raise StoreError(f"{path}: invalid schema_version {version}")


def _pt_version():
    from .. import __version__

    return __version__


@contextlib.contextmanager
def _lock(path: Path):
    lock_path = path.with_name(path.name + ".lock")
    with open(lock_path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _config_attr(result: Result) -> str:
    return json.dumps(to_jsonable(result.config), sort_keys=True)


def save(result: Result, path, *, name: str | None = None, command: str | None = None) -> str:
    """Append ``result`` to the HDF5 file ``path`` (created if missing); return its name."""
    return save_many([result], path, names=None if name is None else [name], command=command)[0]


def save_many(results, path, *, names=None, command: str | None = None) -> list[str]:
    """Append several results in one safe write (one file copy); return their names."""
    results = list(results)
    for r in results:
        if not isinstance(r, Result):
            raise TypeError(f"can only store phasetools results, got {type(r).__name__}")
    if names is not None and len(names) != len(results):
        raise ValueError("names must have one entry per result")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prov = provenance(command)
    with _lock(path):
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            if path.exists():
                with _open_read(path):  # refuse to append to a damaged or newer file
                    pass
                shutil.copy2(path, tmp)
            with h5py.File(tmp, "a") as f:
                if "format" not in f.attrs:
                    f.attrs["format"] = FORMAT
                    f.attrs["schema_version"] = SCHEMA_VERSION
                    for k, v in prov.items():
                        f.attrs[k] = v
                root = f.require_group("results")
                out = []
                for i, r in enumerate(results):
                    name = names[i] if names is not None else _next_name(root, r.kind)
                    _check_name(name)
                    if name in root:
                        raise StoreError(f"{path}: a result named {name!r} already exists")
                    g = root.create_group(name)
                    g.attrs["complete"] = False
                    g.attrs["kind"] = r.kind
                    r.to_hdf5(g)
                    g.attrs["config"] = _config_attr(r)
                    for k, v in prov.items():
                        g.attrs[k] = v
                    f.flush()
                    g.attrs["complete"] = True  # the marker is written last
                    out.append(name)
                f.flush()
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()
    return out


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
    """Every result group in the file, complete or not, in name order."""
    out = []
    with _open_read(path) as f:
        root = f.get("results")
        if root is None:
            return out
        for name in sorted(root):
            try:
                g = root[name]
                attrs = dict(g.attrs)
            except (OSError, KeyError, RuntimeError) as exc:
                raise CorruptFileError(f"{path}: group /results/{name} is unreadable: {exc}") from None
            cfg = attrs.get("config")
            out.append(StoredResult(name, str(attrs.get("kind", "?")), bool(attrs.get("complete", False)),
                                    str(attrs.get("created_utc", "")), str(attrs.get("command", "")),
                                    json.loads(cfg) if cfg else {}))
    return out


def find(path, kind: str | None = None, **config) -> list[str]:
    """Names of the complete results of ``kind`` whose config matches every given key."""
    want = {k: to_jsonable(v) for k, v in config.items()}
    names = []
    for info in list_results(path):
        if not info.complete or (kind is not None and info.kind != kind):
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
    """Load one result (only its group is read). ``name`` may be omitted if the file holds one."""
    with _open_read(path) as f:
        root = f.get("results")
        names = sorted(root) if root is not None else []
        if name is None:
            if len(names) != 1:
                raise StoreError(f"{path}: holds {len(names)} results; pass name= one of {names}")
            name = names[0]
        if name not in names:
            raise StoreError(f"{path}: no result named {name!r}; it holds {names}")
        try:
            g = root[name]
            if not bool(g.attrs.get("complete", False)):
                raise IncompleteResultError(
                    f"{path}: result /results/{name} is incomplete (its writer was interrupted); it is not loaded")
            return read_object(g)
        except StoreError:
            raise
        except (OSError, KeyError, RuntimeError, ValueError, TypeError) as exc:
            raise CorruptFileError(f"{path}: group /results/{name} is corrupt: {exc}") from None


def file_provenance(path) -> dict:
    """The file-level attributes: format, schema_version and the provenance of its creation."""
    with _open_read(path) as f:
        return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in f.attrs.items()}
