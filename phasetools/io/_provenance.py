"""Provenance: who made a file or a result, with what, and when."""

from __future__ import annotations

import datetime as _dt
import platform
import shlex
import subprocess
import sys
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from .. import __version__

__all__ = ["provenance", "git_commit"]

_PACKAGES = ("numpy", "scipy", "sympy", "numba", "h5py", "matplotlib")


@lru_cache(maxsize=1)
def git_commit() -> str:
    """The commit of the phasetools checkout in use (suffix ``-dirty`` with local edits), or ''."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return ""
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=5)
        if head.returncode != 0:
            return ""
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5)
        return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return ""


def _version(pkg: str) -> str:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return ""


def provenance(command: str | None = None) -> dict:
    """Provenance attributes: UTC time, versions, platform, command line, git commit.

    Parameters
    ----------
    command : str or None
        The command line to record; None takes it from ``sys.argv``.

    Returns
    -------
    dict
        ``created_utc``, ``phasetools_version``, ``python_version``, ``platform``, ``command``,
        ``git_commit`` and one ``<package>_version`` per dependency.
    """
    if command is None:
        command = shlex.join([Path(sys.argv[0]).name] + sys.argv[1:]) if sys.argv and sys.argv[0] else "python"
    out = {
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "phasetools_version": __version__,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "command": command,
        "git_commit": git_commit(),
    }
    for pkg in _PACKAGES:
        out[f"{pkg}_version"] = _version(pkg)
    return out
