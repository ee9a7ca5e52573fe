"""The errors of the HDF5 store (one module, imported by the codec and the store)."""

from __future__ import annotations

__all__ = ["StoreError", "CorruptFileError", "IncompleteResultError", "SchemaVersionError"]


class StoreError(ValueError):
    """A phasetools HDF5 file cannot be read or written as asked."""


class CorruptFileError(StoreError):
    """The file or one of its groups is damaged (truncated, bad checksum, unreadable, invalid value)."""


class IncompleteResultError(StoreError):
    """The result's group was never completed (its writer was interrupted)."""


class SchemaVersionError(StoreError):
    """The file was written with a newer schema than this phasetools can read."""


def where(group, field=None) -> str:
    """``<file>: group /results/x[, field 'f']`` for error messages."""
    try:
        name = group.file.filename
    except Exception:  # noqa: BLE001 - a closed or in-memory file
        name = "?"
    text = f"{name}: group {group.name}"
    return text if field is None else f"{text}, field {field!r}"
