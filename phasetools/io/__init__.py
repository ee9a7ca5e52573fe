"""HDF5 storage of results with provenance and safe appends.

    save(result, path, name=None)      append one result, return its name
    save_many(results, path)           append several in one safe write
    load(path, name=None)              load one result (only its group is read)
    list_results(path)                 StoredResult entries: name, kind, complete, config, ...
    find(path, kind=None, **config)    names of complete results matching a configuration
    file_provenance(path)              file-level attributes

Errors are :class:`StoreError` (a ``ValueError``) and its subclasses
:class:`CorruptFileError`, :class:`IncompleteResultError`, :class:`SchemaVersionError`.
The layout is specified in ``docs/schema.md``.
"""

from ._provenance import git_commit, provenance
from ._store import (SCHEMA_VERSION, CorruptFileError, IncompleteResultError, SchemaVersionError, StoredResult,
                     StoreError, file_provenance, find, list_results, load, save, save_many)

__all__ = ["SCHEMA_VERSION", "StoreError", "CorruptFileError", "IncompleteResultError", "SchemaVersionError",
           "StoredResult", "save", "save_many", "load", "list_results", "find", "file_provenance", "provenance",
           "git_commit"]
