"""``run_sweep``: run a grid of independent tasks, store each result as it finishes, resume."""

from __future__ import annotations

import dataclasses
import json
import numbers
import os
import sys
import time
from collections import deque
from dataclasses import dataclass
from multiprocessing.reduction import ForkingPickler
from pathlib import Path

import numpy as np

from .._dask import check_scheduler
from .._progress import progress as _progress
from .._validation import check_choice
from ..io import CorruptFileError, StoreError, marker_set, open_results, read_result_group
from ..results import registry
from ._executors import make_executor
from ._grid import check_grid, check_seed
from ._store import SweepConfigError, SweepError, SweepFile, config_differences, open_sweep, read_config

__all__ = ["run_sweep", "SweepOutcome", "TaskFailure", "SweepInfo", "read_sweep", "load_results"]

EXECUTORS = ("inline", "process", "dask")
# A write is one new batch file (its cost does not grow with the sweep); waiting at least
# this many times the last write's duration between writes bounds the time the
# coordinating process spends writing to about 1/(1 + _WRITE_RATIO) of the sweep.
_WRITE_RATIO = 2.0


@dataclass(frozen=True)
class TaskFailure:
    """A task that raised (or whose result could not be stored)."""

    index: int
    params: dict
    error: str
    traceback: str = dataclasses.field(default="", repr=False)
    attempts: int = 1


@dataclass(frozen=True)
class SweepOutcome:
    """What one call of :func:`run_sweep` did.

    ``completed``: task indices computed and stored by this call; ``skipped``: already
    complete in the file (resume); ``failed``: tasks that raised on their last attempt
    (also recorded in the file; a re-run with ``resume=True`` retries them).
    """

    path: Path
    n_tasks: int
    seed: int
    executor: str
    completed: tuple
    skipped: tuple
    failed: tuple
    wall_time: float

    @property
    def done(self) -> bool:
        """True when every task of the sweep is complete in the file."""
        return len(self.completed) + len(self.skipped) == self.n_tasks

    def results(self, *, strict: bool = True) -> list:
        """The task results in task order (see :func:`load_results`)."""
        return load_results(self.path, strict=strict)

    def check(self) -> SweepOutcome:
        """Return self if every task is complete, else raise a SweepError listing the failures."""
        if self.failed:
            lines = [f"task {f.index} {json.dumps(f.params)}: {f.error}" for f in self.failed[:10]]
            more = f"\n  ... and {len(self.failed) - 10} more" if len(self.failed) > 10 else ""
            listing = "\n  ".join(lines) + more
            raise SweepError(f"{len(self.failed)} of {self.n_tasks} task(s) of the sweep in {self.path} "
                             f"failed (run again with resume=True to retry them):\n  {listing}")
        if not self.done:
            raise SweepError(f"the sweep in {self.path} is incomplete")
        return self

    def __repr__(self):
        return (f"SweepOutcome(path={str(self.path)!r}, n_tasks={self.n_tasks}, "
                f"completed={len(self.completed)}, skipped={len(self.skipped)}, failed={len(self.failed)}, "
                f"executor={self.executor!r}, wall_time={self.wall_time:.3g})")


def _function_name(fn) -> str:
    module = getattr(fn, "__module__", None) or type(fn).__module__
    qualname = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    return f"{module}:{qualname}"


def _check_int(value, name, minimum, allow_none=True):
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or int(value) < minimum:
        none = "None or " if allow_none else ""
        raise ValueError(f"{name} must be {none}an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_positive_float(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not float(value) > 0 \
            or not np.isfinite(float(value)):
        raise ValueError(f"{name} must be a finite number > 0 (seconds), got {value!r}")
    return float(value)


def _check_picklable(fn, executor):
    """Fail early, with advice, if the process pool could not send ``fn`` to its workers.

    Only the transport to worker processes is checked here (with the pickler the pool itself
    uses); nothing is ever pickled into a file. Dask serialises functions by value when it
    must (lambdas and closures too), so it is not checked.
    """
    if executor != "process":
        return
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    if getattr(fn, "__module__", None) == "__main__" and not main_file:
        raise ValueError(f"fn ({_function_name(fn)}) is defined in an interactive session or `python -c`, "
                         f"which worker processes cannot import; with executor={executor!r} define it in a "
                         "module (or a script file), or use executor='inline'")
    try:
        ForkingPickler.dumps(fn)
    except Exception as exc:  # noqa: BLE001 - the pickler raises many types
        raise ValueError(f"fn ({_function_name(fn)}) cannot be sent to worker processes ({exc}); with "
                         f"executor={executor!r} it must be a module-level function (no lambda, no function "
                         "defined inside another one), or use executor='inline'") from None


def _check_executor(executor, scheduler, dask_workers):
    if executor is not None:
        check_choice(executor, "executor", EXECUTORS)
    check_scheduler(scheduler, dask_workers)   # shared with phasetools.rare
    if (scheduler is not None or dask_workers is not None) and executor not in (None, "dask"):
        raise ValueError(f"scheduler= and dask_workers= apply to executor='dask', not executor={executor!r}")


def _resolve_executor(executor, n_workers, scheduler, dask_workers, n_todo):
    if executor is None:
        if scheduler is not None or dask_workers is not None:
            executor = "dask"
        elif n_workers == 1 or n_todo <= 1:
            executor = "inline"
        else:
            executor = "process"
    if executor == "dask":
        workers = dask_workers or n_workers or (os.cpu_count() or 1)
    elif executor == "process":
        workers = max(1, min(n_workers or (os.cpu_count() or 1), max(n_todo, 1)))
    else:
        workers = 1
    return executor, workers


def run_sweep(fn, grid, *, path, seed=None, executor=None, n_workers=None, scheduler=None, dask_workers=None,
              resume=False, overwrite=False, retries=0, progress=True, write_interval=1.0,
              connect_timeout=5.0) -> SweepOutcome:
    """Run ``fn(**params, rng=SeedSequence)`` for every task of ``grid``; store each result in ``path``.

    Parameters
    ----------
    fn : callable
        A module-level function (picklable by reference for the process and Dask
        executors) called as ``fn(**params, rng=seed_sequence)`` that returns a
        registered :class:`phasetools.results.Result`. Record ``rng`` in the result's
        ``seeds`` to make it replayable.
    grid : list of dict, or dict of lists
        One dict of JSON-able parameters per task (see :func:`product`); a dict of lists
        is expanded with :func:`product`.
    path : str or Path
        The sweep's HDF5 file. An existing file is refused unless ``resume`` or
        ``overwrite`` is given.
    seed : int >= 0 or None
        The sweep seed. Task ``i`` gets ``SeedSequence(entropy=seed, spawn_key=(i,))``
        (:func:`task_seed`), so results do not depend on the executor, the number of
        workers or the completion order. None draws fresh entropy (recorded in the file;
        with ``resume=True`` the stored seed is used).
    executor : {"inline", "process", "dask"} or None
        ``"inline"``: in this process; ``"process"``: a local pool of ``n_workers``
        spawned processes; ``"dask"``: a Dask distributed cluster (``pip install
        "phasetools[dask]"``). None: ``"dask"`` if ``scheduler`` or ``dask_workers`` is
        given, ``"inline"`` for one worker or one task, else ``"process"``.
    n_workers : int >= 1 or None
        Workers of the process pool (default: the CPU count, at most one per task), or of
        the local Dask cluster.
    scheduler : str or None
        Address of a running Dask scheduler, ``"tcp://HOST:PORT"``. Unreachable within
        ``connect_timeout`` seconds: SweepError naming the address.
    dask_workers : int >= 1 or None
        Start a Dask LocalCluster on 127.0.0.1 with this many single-threaded worker
        processes.
    resume : bool
        Continue the sweep stored in ``path``: verified complete tasks are skipped, failed,
        missing and damaged ones run. A file of a different configuration (function, seed,
        parameters, number of tasks) is refused with a SweepConfigError naming the
        differences. A missing file starts a new sweep.
    overwrite : bool
        Replace an existing file (atomically, by a new file holding the configuration, once
        the workers are up).
    retries : int >= 0
        Extra attempts, within this call, for a task that raised (same seed each time).
    progress : bool
        Show a progress bar (on a terminal only).
    write_interval : float > 0
        Finished tasks are written together at most every ``write_interval`` seconds (and
        never more often than every 20 times the duration of the previous write, so the
        copy-and-rename writes take at most ~5% of the time). A kill loses at most the
        tasks of one interval; they run again on resume.
    connect_timeout : float > 0
        Seconds to wait for the Dask scheduler.

    Returns
    -------
    SweepOutcome
        Completed, skipped and failed tasks; ``.results()`` loads the results in task
        order, ``.check()`` raises if any task failed.
    """
    t_start = time.perf_counter()
    if not callable(fn):
        raise ValueError(f"fn must be callable, got {fn!r}")
    tasks, params_json = check_grid(grid)
    n_tasks = len(tasks)
    seed = check_seed(seed)
    n_workers = _check_int(n_workers, "n_workers", 1)
    dask_workers = _check_int(dask_workers, "dask_workers", 1)
    retries = _check_int(retries, "retries", 0, allow_none=False)
    write_interval = _check_positive_float(write_interval, "write_interval")
    connect_timeout = _check_positive_float(connect_timeout, "connect_timeout")
    _check_executor(executor, scheduler, dask_workers)
    if resume and overwrite:
        raise ValueError("resume and overwrite exclude each other: resume continues the file, overwrite "
                         "replaces it")
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"path must be a file name, got the folder {path}")
    exists = path.exists()
    if exists and not (resume or overwrite):
        raise SweepError(f"{path} already exists; pass resume=True to continue that sweep or overwrite=True "
                         "to replace it")

    config = {"function": _function_name(fn), "seed": seed, "n_tasks": n_tasks, "params": params_json}
    store = SweepFile(path, config)
    store.acquire()
    try:
        if path.exists() != exists:  # another process created or removed it meanwhile
            exists = path.exists()
            if exists and not (resume or overwrite):
                raise SweepError(f"{path} already exists; pass resume=True to continue that sweep or "
                                 "overwrite=True to replace it")
        complete = set()
        if exists and resume:
            try:
                with open_results(path) as f:
                    stored = read_config(f, path)
            except CorruptFileError as exc:
                advice = "use overwrite=True to start over"
                raise CorruptFileError(f"{exc}. A sweep replaces its file atomically, so this is not the "
                                       f"trace of an interrupted sweep; {advice}") from None
            diffs = config_differences(stored, config)
            if diffs:
                listing = "; ".join(diffs)
                raise SweepConfigError(f"{path} holds a sweep of a different configuration; refusing to "
                                       f"resume it: {listing}. Use overwrite=True to start over, or another "
                                       "path")
            config.update(seed=stored["seed"], version=stored["version"], sweep_id=stored["sweep_id"])
            complete, _ = store.scan()
        elif config["seed"] is None:
            config["seed"] = int(np.random.SeedSequence().entropy)
        todo = [i for i in range(n_tasks) if i not in complete]
        kind, workers = _resolve_executor(executor, n_workers, scheduler, dask_workers, len(todo))
        if todo and kind != "inline":
            _check_picklable(fn, kind)
        # start (or connect to) the workers before creating the file: a wrong scheduler
        # address must not leave a new file behind that a corrected command would refuse
        ex = make_executor(kind, n_workers=workers, scheduler=scheduler,
                           connect_timeout=connect_timeout) if todo else None
        try:
            if not (exists and resume):
                store.create()
            completed, failed = _execute(fn, tasks, todo, config["seed"], store, ex, retries, write_interval,
                                         progress, len(complete))
            store.consolidate()  # fold the batch files into the main file (one copy per run)
        except BaseException:
            if ex is not None:
                ex.close(abort=True)
            raise
        if ex is not None:
            ex.close()
    finally:
        store.release()
    failures = tuple(TaskFailure(i, tasks[i], err, tb, att) for i, (err, tb, att) in sorted(failed.items()))
    return SweepOutcome(path=path, n_tasks=n_tasks, seed=config["seed"], executor=kind,
                        completed=tuple(sorted(completed)), skipped=tuple(sorted(complete)), failed=failures,
                        wall_time=time.perf_counter() - t_start)


def _execute(fn, tasks, todo, seed, store, ex, retries, write_interval, show, n_done):
    completed: set[int] = set()
    failed: dict[int, tuple] = {}
    if not todo:
        return completed, failed
    results_buf, failures_buf = [], []
    queue = deque(todo)
    attempts: dict[int, int] = {}
    inflight = {}
    next_write = time.monotonic() + write_interval

    def flush():
        nonlocal next_write
        t0 = time.monotonic()
        rejected = store.write(results_buf, failures_buf)
        for i, err, tb, att in rejected:
            completed.discard(i)
            failed[i] = (err, tb, att)
        results_buf.clear()
        failures_buf.clear()
        t1 = time.monotonic()
        next_write = t1 + max(write_interval, _WRITE_RATIO * (t1 - t0))

    registry()  # import the result providers now, not inside the first (timed) write
    bar = _progress(total=len(tasks), desc="sweep", quiet=not show)
    if n_done:
        bar.update(n_done)
    try:
        while queue or inflight:
            while queue and len(inflight) < ex.window:
                i = queue.popleft()
                inflight[ex.submit(fn, tasks[i], seed, i)] = i
            done = ex.wait(list(inflight), timeout=max(0.0, next_write - time.monotonic()))
            for h in done:
                i = inflight.pop(h)
                status, value, tb, seconds = ex.outcome(h)
                attempts[i] = attempts.get(i, 0) + 1
                if status == "ok":
                    results_buf.append((i, value, attempts[i], seconds))
                    completed.add(i)
                    failed.pop(i, None)
                    bar.update(1)
                elif attempts[i] <= retries:
                    queue.append(i)
                else:
                    failures_buf.append((i, value, tb, attempts[i]))
                    failed[i] = (value, tb, attempts[i])
                    bar.update(1)
            if time.monotonic() >= next_write:
                flush()
        flush()
    except BaseException as exc:
        # interrupted (Ctrl-C, a bug): keep what finished, unless writing is what failed
        if not isinstance(exc, StoreError) and (results_buf or failures_buf):
            try:
                store.write(results_buf, failures_buf)
            except StoreError:
                pass
        raise
    finally:
        bar.close()
    return completed, failed


# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SweepInfo:
    """The state of a sweep file: configuration and per-task status."""

    path: Path
    function: str
    seed: int
    params: tuple
    complete: tuple
    failed: tuple
    missing: tuple

    @property
    def n_tasks(self) -> int:
        return len(self.params)

    def __repr__(self):
        return (f"SweepInfo(path={str(self.path)!r}, function={self.function!r}, n_tasks={self.n_tasks}, "
                f"complete={len(self.complete)}, failed={len(self.failed)}, missing={len(self.missing)})")


def read_sweep(path) -> SweepInfo:
    """Configuration and status of the sweep stored in ``path`` (completion markers only).

    A task is complete when its latest record is a result group whose ``complete`` marker
    is set; :func:`load_results` reads the data and detects damaged bytes. Batch files of
    a running or interrupted sweep (``<file>.parts``) are included.

    Parameters
    ----------
    path : str or Path
        The sweep file.

    Returns
    -------
    SweepInfo
    """
    path = Path(path)
    with open_sweep(path) as view:
        cfg = view.config
        n = cfg["n_tasks"]
        params = tuple(json.loads(p) for p in cfg["params"])
        complete, failed = [], []
        for i, rec in sorted(view.records.items()):
            try:
                if not rec.failed:
                    if marker_set(rec.group):
                        complete.append(i)
                    continue
                a = rec.group.attrs
                failed.append(TaskFailure(i, params[i], str(a["error"]), str(a.get("traceback", "")),
                                          int(a.get("attempts", 1))))
            except (StoreError, OSError, KeyError, RuntimeError, ValueError, TypeError):
                continue  # a damaged record: the task counts as missing
        bad = set(complete) | {x.index for x in failed}
        missing = tuple(i for i in range(n) if i not in bad)
    return SweepInfo(path, cfg["function"], cfg["seed"], params, tuple(complete), tuple(failed), missing)


def load_results(path, *, strict: bool = True) -> list:
    """The results of every task of the sweep in ``path``, in task order.

    Parameters
    ----------
    path : str or Path
        The sweep file.
    strict : bool, optional
        True raises a SweepError naming the tasks that are failed or missing; False puts
        None in their place.

    Returns
    -------
    list
        One result (or None) per task.

    Raises
    ------
    CorruptFileError
        A damaged task group, named.
    """
    path = Path(path)
    info = read_sweep(path)
    if strict and (info.failed or info.missing):
        parts = [f"task {x.index} {json.dumps(x.params)} failed: {x.error}" for x in info.failed[:5]]
        if info.missing:
            parts.append(f"{len(info.missing)} task(s) never ran (e.g. task {info.missing[0]})")
        raise SweepError(f"{path}: the sweep is incomplete ({len(info.complete)} of {info.n_tasks} tasks); "
                         + "; ".join(parts) + ". Run it again with resume=True, or pass strict=False")
    out = [None] * info.n_tasks
    with open_sweep(path) as view:
        for i in info.complete:
            rec = view.records.get(i)
            try:
                if rec is None or rec.failed:
                    raise CorruptFileError(f"{path}: task {i} changed while it was read")
                out[i] = read_result_group(rec.group)
            except StoreError as exc:
                raise CorruptFileError(f"{exc}. Run the sweep again with resume=True to redo that task") from None
    return out
