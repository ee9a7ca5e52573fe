"""Where tasks run: in this process, in a local process pool, or on a Dask cluster.

Every executor runs :func:`run_task` (a module-level function, so it pickles by
reference) and hands back its outcome tuple; an executor never writes files. The
interface is small: ``submit`` returns a handle, ``wait(handles, timeout)`` returns the
handles that are done, ``outcome(handle)`` the task's outcome (infrastructure failures,
such as a worker process that died, become task errors), ``close()`` releases workers.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import os
import queue
import threading
import time
import traceback
import uuid

import numpy as np

from .._dask import DASK_INSTALL_HINT, DaskConnectError, connect

__all__ = ["run_task", "make_executor", "DASK_INSTALL_HINT"]


def run_task(fn, params, seed, index):
    """Run one task; return ``("ok", result, "", seconds)`` or ``("error", text, traceback, seconds)``."""
    t0 = time.perf_counter()
    try:
        out = fn(**params, rng=np.random.SeedSequence(entropy=seed, spawn_key=(index,)))
    except Exception as exc:
        return "error", f"{type(exc).__name__}: {exc}", traceback.format_exc(), time.perf_counter() - t0
    return "ok", out, "", time.perf_counter() - t0


def _error_outcome(exc, text=None):
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return "error", text or f"{type(exc).__name__}: {exc}", tb, float("nan")


class _Done:
    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value


class InlineExecutor:
    """Runs each task in the calling process when it is submitted."""

    name = "inline"
    window = 1

    def submit(self, fn, params, seed, index):
        return _Done(run_task(fn, params, seed, index))

    def wait(self, handles, timeout):
        return set(handles)

    def outcome(self, handle):
        return handle.value

    def close(self, abort=False):
        pass


def _watch_parent(parent: int):
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:  # the coordinator died (e.g. SIGKILL): do not linger
            os._exit(1)


def _worker_init(parent: int):
    watcher = threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="parent-watch")
    watcher.start()


class ProcessExecutor:
    """A ``concurrent.futures.ProcessPoolExecutor`` with the "spawn" start method.

    Spawned workers start from a fresh interpreter (safe with numba's and OpenBLAS's
    threads, unlike fork). A worker that dies (segfault, out of memory) breaks the pool:
    every task running at that moment is reported as failed with that reason and the pool
    is started again for the remaining tasks. Workers exit by themselves when the
    coordinating process dies.
    """

    name = "process"

    def __init__(self, n_workers: int):
        self.n_workers = n_workers
        self.window = 2 * n_workers
        self._generation = 0
        self._broken_generation = None
        self._pool = self._new_pool()

    def _new_pool(self):
        return cf.ProcessPoolExecutor(self.n_workers, mp_context=multiprocessing.get_context("spawn"),
                                      initializer=_worker_init, initargs=(os.getpid(),))

    def _restart(self):
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._generation += 1
        self._pool = self._new_pool()

    def submit(self, fn, params, seed, index):
        if self._broken_generation == self._generation:
            self._restart()
        try:
            fut = self._pool.submit(run_task, fn, params, seed, index)
        except cf.process.BrokenProcessPool:  # broke since the last outcome we saw
            self._restart()
            fut = self._pool.submit(run_task, fn, params, seed, index)
        fut.phasetools_generation = self._generation
        return fut

    def wait(self, handles, timeout):
        return cf.wait(handles, timeout=timeout, return_when=cf.FIRST_COMPLETED).done

    def outcome(self, fut):
        try:
            return fut.result()
        except cf.process.BrokenProcessPool as exc:
            self._broken_generation = fut.phasetools_generation
            return _error_outcome(exc, "worker process died while this task was running (this task or "
                                       f"another one running at the same time crashed it): {exc}")
        except Exception as exc:  # e.g. an argument or result that cannot be pickled
            return _error_outcome(exc)

    def close(self, abort=False):
        if not abort:
            self._pool.shutdown(wait=True, cancel_futures=True)
            return
        # interrupted: do not wait for the running tasks
        procs = list((getattr(self._pool, "_processes", None) or {}).values())
        self._pool.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            with contextlib.suppress(Exception):
                p.terminate()
        for p in procs:
            with contextlib.suppress(Exception):
                p.join(5)


class DaskExecutor:
    """Tasks on a Dask distributed cluster: an existing one (``scheduler``) or a LocalCluster."""

    name = "dask"

    def __init__(self, scheduler: str | None, n_workers: int, connect_timeout: float):
        try:   # the client and its errors are shared with phasetools.rare (phasetools/_dask.py)
            self._client, self._cluster = connect(scheduler, n_workers, connect_timeout)
        except DaskConnectError as exc:
            from ._store import SweepError

            raise SweepError(str(exc)) from None
        threads = sum(self._client.nthreads().values()) or n_workers
        self.window = max(4, 2 * threads)
        self._run = uuid.uuid4().hex[:12]
        self._finished = queue.Queue()  # futures put here by their done-callbacks

    def submit(self, fn, params, seed, index):
        # a fresh key per attempt: a retried task must not reuse the erred result
        key = f"phasetools-task-{index}-{self._run}-{uuid.uuid4().hex[:8]}"
        fut = self._client.submit(run_task, fn, params, seed, index, pure=False, key=key)
        fut.add_done_callback(self._finished.put)
        return fut

    def wait(self, handles, timeout):
        try:
            first = self._finished.get(timeout=timeout) if timeout > 0 else self._finished.get_nowait()
        except queue.Empty:
            return set()
        done = {first}
        while True:
            try:
                done.add(self._finished.get_nowait())
            except queue.Empty:
                return done

    def outcome(self, fut):
        try:
            return fut.result()
        except Exception as exc:  # KilledWorker, lost scheduler, cancelled, unpicklable result
            return _error_outcome(exc)

    def close(self, abort=False):
        try:
            self._client.close()
        finally:
            if self._cluster is not None:
                self._cluster.close()


def make_executor(kind: str, *, n_workers: int, scheduler=None, connect_timeout: float = 5.0):
    if kind == "inline":
        return InlineExecutor()
    if kind == "process":
        return ProcessExecutor(n_workers)
    return DaskExecutor(scheduler, n_workers, connect_timeout)
