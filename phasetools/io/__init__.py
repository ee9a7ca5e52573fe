"""HDF5 storage of results with provenance and safe appends.

    save(result, path, name=None)      append one result, return its name
    save_many(results, path)           append several in one safe write
    load(path, name=None)              load one result (only its group is read, after checks)
    list_results(path)                 StoredResult entries: name, kind, complete, config, damage, ...
    find(path, kind=None, **config)    names of complete results matching a configuration
    file_provenance(path)              file-level attributes

Building blocks for other writers of phasetools files (the sweep uses them):

    atomic_update(path)                context manager: write a copy, fsync, rename it over the file
    fsync_dir(folder)                  flush a folder's entries
    resolve_target(path)               the file a write replaces (links followed, read-only refused)
    open_results(path)                 open a file for reading, header checked
    results_group(f)                   its /results group (checked to be a group)
    init_file(f, prov)                 write the header of a new file
    write_result_group(parent, name, result, attrs)   a result group, checksum and marker last
    read_result_group(group)           read one group after all checks
    write_result(group, result), read_result(group)   a result's fields alone (Result.to_hdf5/from_hdf5)
    marker_set(group)                  its ``complete`` marker, read strictly (a boolean)
    config_json(result)                the stored ``config`` attribute

Errors are :class:`StoreError` (a ``ValueError``) and its subclasses
:class:`CorruptFileError`, :class:`IncompleteResultError`, :class:`SchemaVersionError`.
The layout is specified in ``docs/schema.md``.
"""

from ._atomic import atomic_update, fsync_dir, resolve_target
from ._codec import read_result, write_result
from ._provenance import git_commit, provenance
from ._store import (SCHEMA_VERSION, CorruptFileError, IncompleteResultError, SchemaVersionError, StoredResult,
                     StoreError, config_json, file_provenance, find, init_file, list_results, load, open_results,
                     read_result_group, results_group, save, save_many, summarize_value, write_result_group)
from ._verify import marker_set

__all__ = ["SCHEMA_VERSION", "StoreError", "CorruptFileError", "IncompleteResultError", "SchemaVersionError",
           "StoredResult", "save", "save_many", "load", "list_results", "find", "file_provenance", "provenance",
           "git_commit", "atomic_update", "fsync_dir", "resolve_target", "open_results", "results_group", "init_file",
           "write_result_group", "read_result_group", "write_result", "read_result", "config_json", "summarize_value", "marker_set"]
