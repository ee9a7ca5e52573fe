"""The sweep's HDF5 file: configuration, completed tasks, failures; one writer, O(1) appends.

Layout (``docs/schema.md``, section "Sweep files")::

    <file>                          the phasetools file: header, /sweep configuration, and the
                                    tasks of every finished run of the sweep
      /sweep                        attrs: sweep_schema_version, function, seed, n_tasks, sweep_id
      /sweep/params                 dataset: one JSON string per task (its parameters)
      /sweep/failed/<task name>     attrs: task, params, error, traceback, attempts, failed_utc
      /results/<task name>          the task's result group (checksum and ``complete`` last)
                                    with attrs sweep_task, params, seed_entropy, seed_spawn_key,
                                    attempts, task_wall_time
    <file>.parts/NNNNNNNN.h5        one small phasetools file per batch written by a running
                                    (or killed) sweep: /sweep (attr sweep_id), /results, /sweep/failed

Task names say what they hold: ``0004-k=2-x=2`` (index, then the parameters); files of
sweep schema version 1 keep their names ``task-00004``.

Writes. The coordinating process holds the advisory lock ``<file>.lock`` for the whole
sweep. Each batch of finished tasks is a new part file written with
:func:`phasetools.io.atomic_update` (temporary file, fsync, rename, folder fsync), so an
append costs the same however many tasks the sweep holds, and a writer killed at any
moment leaves every earlier batch intact. When the sweep ends, the parts are folded into
the main file (one atomic copy-write-rename) and removed. Readers (:func:`read_sweep`,
:func:`load_results`, resume) overlay the parts, in order, on the main file.

Reading back on resume checks every stored task: marker set, attribute checksum, data
checksums, parameters and seed equal to the asked ones. A task that fails any check is
run again; its new record supersedes the damaged one.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import json
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from ..io import (CorruptFileError, StoreError, atomic_update, init_file, open_results, provenance, read_result_group,
                  resolve_target, results_group, write_result_group)
from ..results import Result, registry

__all__ = ["SWEEP_SCHEMA_VERSION", "SweepError", "SweepConfigError", "SweepStorageError", "SweepFile",
           "task_name", "read_config", "config_differences", "open_sweep", "parts_dir"]

SWEEP_SCHEMA_VERSION = 2
_INDEX = re.compile(r"(?:task-)?(\d+)(?:-|$)")
_PART = re.compile(r"(\d{8})\.h5$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]")


class SweepError(ValueError):
    """A sweep cannot run as asked (existing file, different configuration, busy file, scheduler)."""


class SweepConfigError(SweepError):
    """``resume=True`` on a file written by a sweep of a different configuration."""


class SweepStorageError(SweepError, StoreError):
    """The sweep's file cannot be written (read-only folder, full disk, I/O error)."""


def _value_text(value) -> str:
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, dict)):
        return f"{type(value).__name__}{len(value)}"
    return _UNSAFE.sub("_", str(value))[:16]


def task_name(index: int, n_tasks: int, params: str | None = None, *,
              version: int = SWEEP_SCHEMA_VERSION) -> str:
    """The name of task ``index``'s groups: its index, then a short summary of its parameters.

    Parameters
    ----------
    index : int
        The task index (0-based).
    n_tasks : int
        The number of tasks of the sweep (sets the zero padding, so name order is task order).
    params : str, optional
        The task's parameters as stored (a JSON object with sorted keys).
    version : int, optional
        The file's ``sweep_schema_version``: 1 gives the old names ``task-NNNNN``.

    Returns
    -------
    str
        E.g. ``"0004-k=2-x=2"``; at most about 80 characters.
    """
    if version < 2:
        return f"task-{index:0{max(5, len(str(n_tasks - 1)))}d}"
    head = f"{index:0{max(4, len(str(n_tasks - 1)))}d}"
    items = json.loads(params) if params else {}
    parts = [f"{_UNSAFE.sub('_', str(k))[:12]}={_value_text(v)}" for k, v in sorted(items.items())]
    summary = "-".join(parts)
    if len(summary) > 64:
        summary = summary[:61] + "..."
    return f"{head}-{summary}" if summary else head


def parts_dir(path) -> Path:
    """The folder of a sweep file's batch files (``<file>.parts``).

    Parameters
    ----------
    path : str or Path
        The sweep file; the folder lies beside it.

    Returns
    -------
    Path
    """
    path = Path(path)
    return path.with_name(path.name + ".parts")


def _storage_error(path: Path, exc: OSError, done: int | None) -> SweepStorageError:
    code = getattr(exc, "errno", None)
    text = str(exc)
    folder = Path(exc.filename).parent if getattr(exc, "filename", None) else path.parent
    if code == errno.ENOSPC or "No space left" in text:
        why = "the disk is full"
    elif code in (errno.EACCES, errno.EPERM, errno.EROFS) or any(
            s in text for s in ("Permission denied", "Read-only", "read-only")):
        why = f"the folder {folder} is read-only or not writable by this user"
    else:
        why = "an I/O error"
    kept = ("" if done is None else
            f" The file was left as it was before this write ({done} completed task(s) written by this run); "
            "fix the cause and run again with resume=True.")
    return SweepStorageError(f"cannot write the sweep file {path}: {why} ({exc}).{kept}")


def read_config(f: h5py.File, path) -> dict:
    """The configuration stored in an open sweep file.

    Parameters
    ----------
    f : h5py.File
        The open main file of a sweep.
    path : str or Path
        Its name, for messages.

    Returns
    -------
    dict
        ``function``, ``seed``, ``n_tasks``, ``params`` (JSON strings), ``version``
        (``sweep_schema_version``) and ``sweep_id``.
    """
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
            "n_tasks": int(g.attrs["n_tasks"]), "params": params, "version": version,
            "sweep_id": str(g.attrs.get("sweep_id", ""))}


def _fmt(value) -> str:
    return "missing" if value is _MISSING else json.dumps(value)


_MISSING = object()


def config_differences(stored: dict, asked: dict) -> list[str]:
    """Human-readable differences between two sweep configurations (empty when equal).

    Parameters
    ----------
    stored, asked : dict
        Configurations as returned by :func:`read_config`.

    Returns
    -------
    list of str
    """
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



@dataclass(frozen=True)
class Record:
    """The latest stored record of one task: a result or a failure group, in the main file or a part.

    Parameters
    ----------
    index : int
        The task index.
    failed : bool
        True for a failure record (``/sweep/failed/<name>``), False for a result group.
    group : h5py.Group
        The record's group (open while the :func:`open_sweep` context lasts).
    """

    index: int
    failed: bool
    group: h5py.Group


class SweepView:
    """A sweep file read with its parts overlaid: configuration and the latest record of each task.

    Parameters
    ----------
    path : Path
        The sweep's main file.
    config : dict
        Its configuration (:func:`read_config`).
    records : dict
        Task index -> :class:`Record`.
    n_parts : int
        Number of batch files found.
    """

    def __init__(self, path: Path, config: dict, records: dict, n_parts: int):
        self.path = path
        self.config = config
        self.records = records
        self.n_parts = n_parts


def _list_parts(path: Path) -> list[tuple[int, Path]]:
    folder = parts_dir(path)
    try:
        entries = list(folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = [(int(m.group(1)), p) for p in entries if (m := _PART.fullmatch(p.name))]
    return sorted(found)


def _add_records(records, f, cfg):
    """Overlay the records of one file (failures first: a result of the same file wins)."""
    n, version, params = cfg["n_tasks"], cfg["version"], cfg["params"]
    for section, failed in (("sweep/failed", True), ("results", False)):
        root = f.get(section)
        if not isinstance(root, h5py.Group):
            continue
        for name in root:
            m = _INDEX.match(name)
            if not m or int(m.group(1)) >= n:
                continue
            i = int(m.group(1))
            if name == task_name(i, n, params[i], version=version):
                records[i] = Record(i, failed, root[name])


def _open_part(part: Path, sweep_id: str):
    """An open batch file of this sweep, or None (another sweep's, or damaged: its tasks are redone)."""
    try:
        pf = h5py.File(part, "r")
    except FileNotFoundError:
        raise
    except OSError:
        if not part.exists():
            raise FileNotFoundError(part) from None
        return None
    try:
        g = pf.get("sweep")
        if isinstance(g, h5py.Group) and g.attrs.get("sweep_id") == sweep_id:
            return pf
    except (OSError, KeyError, RuntimeError, TypeError, ValueError):
        pass
    pf.close()
    return None


@contextlib.contextmanager
def open_sweep(path):
    """Open a sweep file and its parts for reading.

    Parameters
    ----------
    path : str or Path
        The sweep's main file.

    Yields
    ------
    SweepView
        ``config`` (:func:`read_config`) and ``records`` (task index -> :class:`Record`,
        the latest record of each task that has one); the groups stay readable until exit.
    """
    path = Path(path)
    for _ in range(5):
        with contextlib.ExitStack() as stack:
            f = stack.enter_context(open_results(path))
            cfg = read_config(f, path)
            records: dict[int, Record] = {}
            _add_records(records, f, cfg)
            parts = _list_parts(path)
            try:
                for _, part in parts:
                    pf = _open_part(part, cfg["sweep_id"])
                    if pf is not None:
                        stack.enter_context(pf)
                        _add_records(records, pf, cfg)
            except FileNotFoundError:
                continue  # the parts were being folded into the main file: read again
            yield SweepView(path, cfg, records, len(parts))
            return
    raise SweepError(f"{path}: its batch files kept changing while being read; try again")


class SweepFile:
    """The one writer of a sweep file (holds its lock from ``acquire`` to ``release``).

    Parameters
    ----------
    path : Path
        The sweep's main file.
    config : dict
        ``function``, ``seed``, ``n_tasks``, ``params`` (and, for an existing file,
        ``version`` and ``sweep_id`` as stored).
    """

    def __init__(self, path: Path, config: dict):
        self.path = path
        self.config = config
        self.n_tasks = config["n_tasks"]
        self._lock_fh = None
        self._prov = None
        self._next_part = 1
        self.n_written = 0

    def _name(self, i: int) -> str:
        return task_name(i, self.n_tasks, self.config["params"][i],
                         version=self.config.get("version", SWEEP_SCHEMA_VERSION))

    # -- lock ------------------------------------------------------------------------
    def acquire(self):
        """Take the file's lock (refusing a file another sweep is writing) and drop stale copies."""
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
        if path.exists():
            try:
                resolve_target(path)  # a read-only file is refused now, not after the tasks ran
            except OSError as exc:
                self.release()
                raise _storage_error(path, exc, None) from None
        # stale copies of writers that were killed (no other writer can be active now)
        for folder, pattern in ((path.parent, f".{path.name}.*.tmp"), (parts_dir(path), ".*.tmp")):
            for stale in folder.glob(pattern):
                with contextlib.suppress(OSError):
                    stale.unlink()

    def release(self):
        """Release the lock."""
        if self._lock_fh is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock_fh, fcntl.LOCK_UN)
            self._lock_fh.close()
            self._lock_fh = None

    # -- reading existing work -----------------------------------------------------------
    def scan(self) -> tuple[set[int], set[int]]:
        """The verified complete tasks, and the damaged ones (run again; their new record wins).

        Returns
        -------
        tuple of set
            ``(complete, damaged)`` task indices.
        """
        complete, damaged = set(), set()
        known = registry()
        with open_sweep(self.path) as view:
            self.config = {**self.config, "version": view.config["version"], "sweep_id": view.config["sweep_id"]}
            parts = _list_parts(self.path)
            self._next_part = (parts[-1][0] + 1) if parts else 1
            for i, rec in sorted(view.records.items()):
                if rec.failed:
                    continue
                try:
                    kind = rec.group.attrs.get("kind")
                except Exception:  # noqa: BLE001 - an unreadable header: reported damaged below
                    kind = None
                if kind is not None and str(kind) not in known:
                    raise SweepError(f"{self.path}: /results/{self._name(i)} holds a {kind}, a result kind "
                                     "unknown to this process; import the module that defines (and registers) "
                                     "it before resuming")
                (complete if self._verify(rec.group, i) else damaged).add(i)
        return complete, damaged

    def _verify(self, g, i) -> bool:
        cfg = self.config
        try:
            a = g.attrs
            if int(a.get("sweep_task", -1)) != i or str(a.get("params", "")) != cfg["params"][i]:
                return False
            if str(a.get("seed_entropy", "")) != str(cfg["seed"]):
                return False
            read_result_group(g)  # marker, attribute checksum, every dataset's Fletcher-32 checksum
            return True
        except Exception:  # noqa: BLE001 - any failure to read back means "redo this task"
            return False

    # -- writing ------------------------------------------------------------------------
    def _provenance(self) -> dict:
        if self._prov is None:
            self._prov = provenance()
        return {**self._prov, "created_utc": _utc_now()}

    def create(self):
        """Write a new main file holding only the header and the configuration; drop old parts."""
        self.config = {**self.config, "version": SWEEP_SCHEMA_VERSION, "sweep_id": uuid.uuid4().hex}
        try:
            with atomic_update(self.path, copy=False) as tmp, h5py.File(tmp, "w") as f:
                self._write_header(f, self._provenance())
        except OSError as exc:
            raise _storage_error(self.path, exc, None) from None
        shutil.rmtree(parts_dir(self.path), ignore_errors=True)
        self._next_part = 1

    def write(self, results, failures) -> list[tuple[int, str, str]]:
        """Append finished tasks as one new batch file; return the results that became task errors.

        Parameters
        ----------
        results : list of tuple
            ``(index, result, attempts, seconds)``.
        failures : list of tuple
            ``(index, error, traceback, attempts)``.

        Returns
        -------
        list of tuple
            ``(index, error, traceback, attempts)`` of results that could not be stored.
        """
        if not results and not failures:
            return []
        folder = parts_dir(self.path)
        part = folder / f"{self._next_part:08d}.h5"
        prov = self._provenance()
        rejected = []
        try:
            folder.mkdir(exist_ok=True)
            with atomic_update(part, copy=False) as tmp, h5py.File(tmp, "w") as f:
                init_file(f, prov)
                g = f.create_group("sweep")
                g.attrs["sweep_id"] = self.config["sweep_id"]
                failed = g.create_group("failed")
                root = f.create_group("results")
                for i, result, attempts, seconds in results:
                    err = self._write_result(root, i, result, attempts, seconds, prov)
                    if err is not None:
                        rejected.append((i, err[0], err[1], attempts))
                for i, error, tb, attempts in list(failures) + rejected:
                    self._write_failure(failed, i, error, tb, attempts)
        except PermissionError as exc:
            raise _storage_error(self.path, exc, self.n_written) from None
        except OSError as exc:
            raise _storage_error(self.path, exc, self.n_written) from None
        self._next_part += 1
        self.n_written += len(results) - len(rejected)
        return rejected

    def consolidate(self):
        """Fold the batch files into the main file (one atomic rewrite) and remove them."""
        parts = _list_parts(self.path)
        if not parts:
            return
        try:
            with atomic_update(self.path) as tmp, h5py.File(tmp, "a") as f:
                root = results_group(f) or f.create_group("results")
                failed = f.require_group("sweep/failed")
                for _, part in parts:
                    pf = _open_part(part, self.config["sweep_id"])
                    if pf is not None:  # a damaged batch file: its tasks were run again
                        with pf:
                            self._fold(pf, root, failed)
                f.flush()
        except OSError as exc:
            raise _storage_error(self.path, exc, None) from None
        shutil.rmtree(parts_dir(self.path), ignore_errors=True)
        self._next_part = 1

    def _fold(self, pf, root, failed):
        for section, target, other in (("sweep/failed", failed, root), ("results", root, failed)):
            src = pf.get(section)
            for name in (src if src is not None else []):
                for group in (target, other):
                    if name in group:
                        del group[name]
                pf.copy(src[name], target, name=name)

    def _write_header(self, f, prov):
        init_file(f, prov)
        g = f.create_group("sweep")
        g.attrs["sweep_schema_version"] = SWEEP_SCHEMA_VERSION
        g.attrs["function"] = self.config["function"]
        g.attrs["seed"] = str(self.config["seed"])  # may exceed 64 bits
        g.attrs["n_tasks"] = self.n_tasks
        g.attrs["sweep_id"] = self.config["sweep_id"]
        params = np.array(self.config["params"], dtype=object)
        g.create_dataset("params", data=params, dtype=h5py.string_dtype())
        g.create_group("failed")
        f.create_group("results")

    def _write_result(self, root, i, result, attempts, seconds, prov):
        if not isinstance(result, Result):
            return (f"TypeError: the task returned a {type(result).__name__}, not a phasetools Result", "")
        if registry().get(result.kind) is not type(result):
            return (f"TypeError: the task returned a {result.kind}, which is not registered "
                    "(decorate its class with phasetools.results.register)", "")
        attrs = {"sweep_task": i, "params": self.config["params"][i], "seed_entropy": str(self.config["seed"]),
                 "seed_spawn_key": json.dumps([i]), "attempts": attempts, "task_wall_time": float(seconds), **prov}
        try:
            write_result_group(root, self._name(i), result, attrs)
        except (TypeError, ValueError) as exc:  # a value the schema cannot store: that task fails
            return (f"{type(exc).__name__}: the task's result cannot be stored: {exc}", "")
        return None

    def _write_failure(self, failed, i, error, tb, attempts):
        g = failed.create_group(self._name(i))
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
