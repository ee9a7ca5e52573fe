"""The sweep's HDF5 file: configuration, completed tasks, failures; one writer, atomic batches.

Layout (``docs/schema.md``, section "Sweep files")::

    /                          the phasetools file attributes (format, schema_version, provenance)
    /sweep                     attrs: sweep_schema_version, function, seed, n_tasks
    /sweep/params              dataset: one JSON string per task (its parameters)
    /sweep/failed/task-00003   attrs: task, params, error, traceback, attempts, failed_utc
    /results/task-00012        the task's result (the phasetools result group, ``complete``
                               written last) with attrs sweep_task, params, seed_entropy,
                               seed_spawn_key, attempts, task_wall_time

Writes. The coordinating process holds the advisory lock ``<file>.lock`` for the whole
sweep (the lock of :mod:`phasetools.io`, so ``io.save`` waits too) and writes batches
of finished tasks the way :func:`phasetools.io.save_many` does: copy the file, add the
groups with each ``complete`` marker set last, fsync, and rename the copy over the file
(atomic). A writer killed at any moment leaves the previous version of the file; a
failed write (full disk, read-only folder) leaves it as it was and removes the copy.

Reading back on resume checks every stored task: marker set, parameters and seed equal
to the asked ones, every dataset readable with its Fletcher-32 checksum. A task that
fails any check is removed at the next write and run again.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import json
import os
import re
import shutil
from pathlib import Path

import h5py
import numpy as np

from ..io import SCHEMA_VERSION, CorruptFileError, StoreError, provenance
from ..io._codec import read_object
from ..io._store import FORMAT, _config_attr
from ..results import Result, registry

__all__ = ["SWEEP_SCHEMA_VERSION", "SweepError", "SweepConfigError", "SweepStorageError", "SweepFile",
           "task_name", "read_config", "config_differences"]

SWEEP_SCHEMA_VERSION = 1
_TASK = re.compile(r"task-(\d+)$")


class SweepError(ValueError):
    """A sweep cannot run as asked (existing file, different configuration, busy file, scheduler)."""


class SweepConfigError(SweepError):
    """``resume=True`` on a file written by a sweep of a different configuration."""


class SweepStorageError(SweepError, StoreError):
    """The sweep's file cannot be written (read-only folder, full disk, I/O error)."""


def task_name(index: int, n_tasks: int) -> str:
    return f"task-{index:0{max(5, len(str(n_tasks - 1)))}d}"


def _storage_error(path: Path, exc: OSError, done: int | None) -> SweepStorageError:
    code = getattr(exc, "errno", None)
    text = str(exc)
    folder = Path(exc.filename).parent if getattr(exc, "filename", None) else path.parent
    if code == errno.ENOSPC or "No space left" in text:
        why = "the disk is full"
    elif code in (errno.EACCES, errno.EPERM, errno.EROFS) or any(
            s in text for s in ("Permission denied", "Read-only")):
        why = f"the folder {folder} is read-only or not writable by this user"
    else:
        why = "an I/O error"
    kept = ("" if done is None else
            f" The file was left as it was before this write ({done} completed task(s)); fix the cause and "
            "run again with resume=True.")
    return SweepStorageError(f"cannot write the sweep file {path}: {why} ({exc}).{kept}")


def read_config(f: h5py.File, path) -> dict:
    """The configuration stored in an open sweep file."""
    g = f.get("sweep")
    if not isinstance(g, h5py.Group) or "function" not in g.attrs:
        raise SweepError(f"{path} holds no sweep configuration (it was not written by run_sweep)")
    version = int(g.attrs.get("sweep_schema_version", -1))
    if version > SWEEP_SCHEMA_VERSION:
        raise SweepError(f"{path}: written with sweep_schema_version {version}; this phasetools reads <= "
                         f"{SWEEP_SCHEMA_VERSION}; upgrade phasetools")
    try:
        params = g["params"].asstr()[()].tolist()
    except (KeyError, OSError, RuntimeError) as exc:
        raise CorruptFileError(f"{path}: the sweep's task parameters (/sweep/params) are unreadable: "
                               f"{exc}") from None
    return {"function": str(g.attrs["function"]), "seed": int(str(g.attrs["seed"])),
            "n_tasks": int(g.attrs["n_tasks"]), "params": params}


def _fmt(value) -> str:
    return "missing" if value is _MISSING else json.dumps(value)


_MISSING = object()


def config_differences(stored: dict, asked: dict) -> list[str]:
    """Human-readable differences between two sweep configurations (empty when equal)."""
    diffs = []
    if stored["function"] != asked["function"]:
        diffs.append(f"function: {stored['function']!r} in the file, {asked['function']!r} asked")
    if asked["seed"] is not None and stored["seed"] != asked["seed"]:
        diffs.append(f"seed: {stored['seed']} in the file, {asked['seed']} asked")
    if stored["n_tasks"] != asked["n_tasks"]:
        diffs.append(f"number of tasks: {stored['n_tasks']} in the file, {asked['n_tasks']} asked")
    old = [json.loads(p) for p in stored["params"]]
    new = [json.loads(p) for p in asked["params"]]
    keys = sorted({k for p in old + new for k in p})
    for key in keys:
        differ = [i for i in range(min(len(old), len(new)))
                  if old[i].get(key, _MISSING) != new[i].get(key, _MISSING)]
        if differ:
            i = differ[0]
            diffs.append(f"parameter {key!r}: {_fmt(old[i].get(key, _MISSING))} in the file, "
                         f"{_fmt(new[i].get(key, _MISSING))} asked (task {i}; {len(differ)} task(s) differ)")
    return diffs


class SweepFile:
    """The one writer of a sweep file (holds its lock from ``open`` to ``close``)."""

    def __init__(self, path: Path, config: dict):
        self.path = path
        self.config = config
        self.n_tasks = config["n_tasks"]
        self._lock_fh = None
        self._delete: set[int] = set()
        self._prov = None
        self.n_written = 0

    # -- lock ------------------------------------------------------------------------
    def acquire(self):
        path = self.path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fh = open(path.with_name(path.name + ".lock"), "a")
        except OSError as exc:
            raise _storage_error(path, exc, None) from None
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            raise SweepError(f"{path} is being written by another process (its lock {path.name}.lock is "
                             "held); wait for that sweep to finish or choose another path") from None
        self._lock_fh = fh
        # stale copies of writers that were killed (no other writer can be active now)
        for stale in path.parent.glob(f".{path.name}.*.tmp"):
            with contextlib.suppress(OSError):
                stale.unlink()

    def release(self):
        if self._lock_fh is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock_fh, fcntl.LOCK_UN)
            self._lock_fh.close()
            self._lock_fh = None

    # -- reading existing work -----------------------------------------------------------
    def scan(self) -> tuple[set[int], set[int]]:
        """The verified complete tasks, and the damaged task groups (removed at the next write)."""
        complete, damaged = set(), set()
        cfg = self.config
        known = registry()
        with h5py.File(self.path, "r") as f:
            root = f.get("results")
            for name in (sorted(root) if root is not None else []):
                m = _TASK.match(name)
                if not m:
                    continue
                i = int(m.group(1))
                if i >= self.n_tasks or name != task_name(i, self.n_tasks):
                    continue
                try:
                    kind = root[name].attrs.get("kind")
                except Exception:  # noqa: BLE001 - an unreadable header: _verify reports it damaged
                    kind = None
                if kind is not None and str(kind) not in known:
                    raise SweepError(f"{self.path}: /results/{name} holds a {kind}, a result kind unknown to "
                                     "this process; import the module that defines (and registers) it "
                                     "before resuming")
                (complete if self._verify(root, name, i, cfg) else damaged).add(i)
        self._delete = damaged
        return complete, damaged

    @staticmethod
    def _verify(root, name, i, cfg) -> bool:
        try:
            g = root[name]
            a = g.attrs
            if not bool(a.get("complete", False)):
                return False
            if int(a.get("sweep_task", -1)) != i or str(a.get("params", "")) != cfg["params"][i]:
                return False
            if str(a.get("seed_entropy", "")) != str(cfg["seed"]):
                return False
            read_object(g)  # reads every dataset: a changed byte fails its Fletcher-32 checksum
            return True
        except Exception:  # noqa: BLE001 - any failure to read back means "redo this task"
            return False

    # -- writing ------------------------------------------------------------------------
    def create(self):
        """Write a new file holding only the header and the sweep configuration."""
        self._write([], [], fresh=True)

    def write(self, results, failures) -> list[tuple[int, str, str]]:
        """Append finished tasks; return the results that could not be stored as task errors.

        ``results``: ``(index, result, attempts, seconds)``; ``failures``: ``(index, error,
        traceback, attempts)``.
        """
        if not results and not failures and not self._delete:
            return []
        return self._write(results, failures, fresh=False)

    def _write(self, results, failures, *, fresh):
        path = self.path
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        if self._prov is None:
            self._prov = provenance()
        prov = {**self._prov, "created_utc": _utc_now()}
        rejected = []
        try:
            try:
                if not fresh:
                    shutil.copy2(path, tmp)
                with h5py.File(tmp, "w" if fresh else "a") as f:
                    if fresh:
                        self._write_header(f, prov)
                    root = f.require_group("results")
                    failed = f.require_group("sweep/failed")
                    for i in sorted(self._delete):
                        name = task_name(i, self.n_tasks)
                        if name in root:
                            del root[name]
                    for i, result, attempts, seconds in results:
                        err = self._write_result(root, i, result, attempts, seconds, prov)
                        name = task_name(i, self.n_tasks)
                        if err is None:
                            if name in failed:
                                del failed[name]
                        else:
                            rejected.append((i, err[0], err[1], attempts))
                    for i, error, tb, attempts in list(failures) + rejected:
                        self._write_failure(failed, i, error, tb, attempts)
                    f.flush()
                with open(tmp, "rb+") as fh:
                    os.fsync(fh.fileno())
                os.replace(tmp, path)
                _fsync_dir(path.parent)
            finally:
                if tmp.exists():
                    with contextlib.suppress(OSError):
                        tmp.unlink()
        except OSError as exc:
            raise _storage_error(path, exc, None if fresh else self.n_written) from None
        self._delete = set()
        self.n_written += sum(1 for r in results) - len(rejected)
        return rejected

    def _write_header(self, f, prov):
        f.attrs["format"] = FORMAT
        f.attrs["schema_version"] = SCHEMA_VERSION
        for k, v in prov.items():
            f.attrs[k] = v
        g = f.create_group("sweep")
        g.attrs["sweep_schema_version"] = SWEEP_SCHEMA_VERSION
        g.attrs["function"] = self.config["function"]
        g.attrs["seed"] = str(self.config["seed"])  # may exceed 64 bits
        g.attrs["n_tasks"] = self.n_tasks
        params = np.array(self.config["params"], dtype=object)
        g.create_dataset("params", data=params, dtype=h5py.string_dtype())
        g.create_group("failed")
        f.create_group("results")

    def _write_result(self, root, i, result, attempts, seconds, prov):
        name = task_name(i, self.n_tasks)
        if name in root:
            del root[name]
        if not isinstance(result, Result):
            return (f"TypeError: the task returned a {type(result).__name__}, not a phasetools Result", "")
        if registry().get(result.kind) is not type(result):
            return (f"TypeError: the task returned a {result.kind}, which is not registered "
                    "(decorate its class with phasetools.results.register)", "")
        g = root.create_group(name)
        g.attrs["complete"] = False
        try:
            g.attrs["kind"] = result.kind
            result.to_hdf5(g)
            g.attrs["config"] = _config_attr(result)
        except (TypeError, ValueError) as exc:  # a value the schema cannot store: that task fails
            del root[name]
            return (f"{type(exc).__name__}: the task's result cannot be stored: {exc}", "")
        g.attrs["sweep_task"] = i
        g.attrs["params"] = self.config["params"][i]
        g.attrs["seed_entropy"] = str(self.config["seed"])
        g.attrs["seed_spawn_key"] = json.dumps([i])
        g.attrs["attempts"] = attempts
        g.attrs["task_wall_time"] = float(seconds)
        for k, v in prov.items():
            g.attrs[k] = v
        # the marker is written last (the whole batch becomes visible at once by the rename,
        # so no flush is needed in between; the marker makes the group's state explicit)
        g.attrs["complete"] = True
        return None

    def _write_failure(self, failed, i, error, tb, attempts):
        name = task_name(i, self.n_tasks)
        if name in failed:
            del failed[name]
        g = failed.create_group(name)
        g.attrs["task"] = i
        g.attrs["params"] = self.config["params"][i]
        g.attrs["error"] = _clip(error)
        g.attrs["traceback"] = _clip(tb)
        g.attrs["attempts"] = attempts
        g.attrs["failed_utc"] = _utc_now()


def _clip(text: str, limit: int = 16000) -> str:
    """Keep attributes well below HDF5's 64 kB limit for compact attributes."""
    return text if len(text) <= limit else text[: limit // 2] + "\n[...]\n" + text[-limit // 2:]


def _utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _fsync_dir(folder: Path):
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

