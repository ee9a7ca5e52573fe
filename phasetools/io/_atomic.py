"""Atomic replacement of a file: write a copy beside it, flush it to disk, rename it over.

The one implementation of copy-write-rename in phasetools; :func:`phasetools.io.save`
and the sweep's writer both use it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from pathlib import Path

__all__ = ["atomic_update", "fsync_dir", "resolve_target"]


def fsync_dir(folder) -> None:
    """Flush a folder's entries (a rename or a new file in it) to disk; best effort.

    Parameters
    ----------
    folder : str or Path
        The folder whose directory entries are flushed. File systems that cannot fsync a
        folder are silently accepted.
    """
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def resolve_target(path) -> Path:
    """The regular file that a write to ``path`` must replace (symbolic links followed).

    Parameters
    ----------
    path : str or Path
        The file name given by the caller; it may be a symbolic link (to an existing or a
        missing file).

    Returns
    -------
    Path
        The absolute path of the link's final target, or ``path`` itself (absolute).

    Raises
    ------
    PermissionError
        The file exists and its mode grants no write permission (checked on the mode
        bits, so a read-only file is refused even for root, whom ``rename`` would let
        replace it).
    """
    target = Path(os.path.realpath(path))
    try:
        st = target.stat()
    except FileNotFoundError:
        return target
    if not stat.S_ISREG(st.st_mode):
        raise IsADirectoryError(f"{path}: not a regular file")
    if not st.st_mode & 0o222 or not os.access(target, os.W_OK):
        raise PermissionError(f"{path}: the file is read-only (mode {stat.filemode(st.st_mode)}); "
                              "make it writable (chmod u+w) to add to it")
    return target


@contextlib.contextmanager
def atomic_update(path, *, copy: bool = True):
    """Context manager: write a new version of ``path`` into a temporary file, then swap it in.

    The temporary file ``.<name>.<pid>.tmp`` lives in the target's folder. It starts as a
    copy of the target (``copy=True`` and the target exists) or absent. On a normal exit
    it is fsynced and renamed over the target (``os.replace``, atomic on POSIX), and the
    folder is fsynced; on an exception it is removed and the target is untouched. A
    process killed at any moment leaves either the old or the new version.

    Parameters
    ----------
    path : str or Path
        The file to replace. A symbolic link is written through: its target is replaced
        and the link kept. A file whose mode forbids writing is refused.
    copy : bool, optional
        Start from a copy of the existing file (default) or from nothing.

    Yields
    ------
    Path
        The temporary file to write (e.g. with ``h5py.File(tmp, "a")``).

    Raises
    ------
    PermissionError
        The existing file is read-only by its mode.
    OSError
        The copy, the flush or the rename failed (full disk, read-only folder); the target
        is left as it was and the temporary file removed.
    """
    target = resolve_target(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        if copy and target.exists():
            shutil.copy2(target, tmp)
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        fsync_dir(target.parent)
    finally:
        if tmp.exists():
            with contextlib.suppress(OSError):
                tmp.unlink()
