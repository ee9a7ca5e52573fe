"""Where the AMS runs of ``phasetools.rare`` go: this process, a process pool or a Dask cluster.

Every AMS entry point (``ams_escape``/``escape_time``, ``ams_training_escape``,
``ams_nonlinear_escape``) takes the same ``n_workers=``, ``scheduler=``, ``dask_workers=``
and ``connect_timeout=`` and uses this module:

* :func:`check_executor`: the checked :class:`Executor` of those arguments (before any work);
* :meth:`Executor.check_engine`: the engine pickles for the chosen executor (before any work);
* :func:`open_runner`: a :class:`Runner` with its Dask client connected (closed after);
* :func:`run_batches`: the runs of :func:`~phasetools.rare._ams.ams_batch`, split into
  contiguous shares (each run depends only on its seed, block of entrance states and stream
  indices, so any split gives the same runs, bit for bit) and gathered in run order.

What travels to a worker is the engine (plain settings and data arrays: the Langevin
potential, the trainers' data, task and model; coordinates are module-level callables),
the entrance states and the keyword arguments of ``ams_batch``; :func:`_batch_part` is a
module-level function.
"""

from __future__ import annotations

import contextlib
import copy
import pickle
from dataclasses import dataclass

import numpy as np

from .._dask import check_scheduler, connect
from .._progress import progress as _progress
from .._validation import check_int, check_positive
from ._ams import ams_batch, merge_batches

__all__ = ["Executor", "Runner", "check_executor", "open_runner", "run_batches"]


@dataclass(frozen=True)
class Executor:
    """Where the AMS runs go: this process, a process pool (``n_workers``) or a Dask cluster.

    Parameters
    ----------
    n_workers : int >= 1
        Processes of a local pool (1: this process).
    scheduler : str or None
        Address of a running Dask scheduler.
    dask_workers : int or None
        Worker processes of a Dask LocalCluster started for the runs.
    connect_timeout : float > 0
        Seconds to wait for ``scheduler``.
    """

    n_workers: int = 1
    scheduler: str | None = None
    dask_workers: int | None = None
    connect_timeout: float = 5.0

    @property
    def kind(self):
        """``"dask"``, ``"process"`` or ``"inline"``."""
        if self.scheduler is not None or self.dask_workers is not None:
            return "dask"
        return "process" if self.n_workers > 1 else "inline"

    def check_engine(self, engine):
        """Refuse an engine that cannot travel to the workers (before any work is done).

        A process pool pickles it (a coordinate must be a module-level function or a
        picklable object, not a lambda or a closure); Dask uses cloudpickle, which takes
        lambdas too.

        Parameters
        ----------
        engine : splitting engine

        Returns
        -------
        None
        """
        if self.kind == "inline":
            return
        dumps = pickle.dumps
        if self.kind == "dask":
            try:
                import cloudpickle  # installed with dask.distributed
            except ImportError:      # connecting says how to install the extra
                return
            dumps = cloudpickle.dumps
        try:
            dumps(engine)
        except (pickle.PicklingError, AttributeError, TypeError) as exc:
            what = "n_workers > 1 (a process pool)" if self.kind == "process" else "a Dask cluster"
            raise ValueError(f"the engine cannot be sent to the workers of {what}: {exc}. Give coordinate= as a "
                             "module-level function (not a lambda or a local function), or run in one process "
                             "(n_workers=1)") from None


def check_executor(n_workers, scheduler, dask_workers, connect_timeout):
    """The checked :class:`Executor` of an AMS entry point's arguments.

    Parameters
    ----------
    n_workers : int >= 1
        Processes of a local pool.
    scheduler : str or None
        Address ``"tcp://HOST:PORT"`` of a running Dask scheduler.
    dask_workers : int >= 1 or None
        Workers of a Dask LocalCluster to start instead.
    connect_timeout : float > 0
        Seconds to wait for ``scheduler``.

    Returns
    -------
    Executor
    """
    n_workers = check_int(n_workers, "n_workers", minimum=1)
    if dask_workers is not None:
        dask_workers = check_int(dask_workers, "dask_workers", minimum=1)
    check_scheduler(scheduler, dask_workers)
    if n_workers > 1 and (scheduler is not None or dask_workers is not None):
        raise ValueError(f"n_workers = {n_workers} (a local process pool) and scheduler=/dask_workers= (a Dask "
                         "cluster) exclude each other: give one")
    connect_timeout = float(check_positive(connect_timeout, "connect_timeout"))
    return Executor(n_workers, scheduler, dask_workers, connect_timeout)


class Runner:
    """Runs the AMS stage (:func:`run_batches`) on an open Dask client, or locally.

    Parameters
    ----------
    where : Executor
        Where the runs go.
    client : distributed.Client, optional
        The open client (with ``where.kind == "dask"``).
    """

    def __init__(self, where=None, client=None):
        self.where, self.client = (Executor() if where is None else where), client

    def __call__(self, engine, entrance, kw, progress):
        """The runs of ``ams_batch(engine, entrance, **kw)``, as :func:`run_batches` gives them.

        Parameters
        ----------
        engine : splitting engine
        entrance : ndarray (m, dim)
        kw : dict
        progress : bool

        Returns
        -------
        dict
        """
        return run_batches(engine, entrance, kw, n_workers=self.where.n_workers, client=self.client,
                           progress=progress)

    def stats(self):
        """``n_workers``, ``executor`` and, on Dask, ``scheduler`` and ``dask_threads``, for a result's stats.

        Parameters
        ----------
        None
            (the runner's own ``where`` and ``client``)

        Returns
        -------
        dict
            ``{"n_workers": int, "executor": str}``, plus ``"scheduler"`` (str) and
            ``"dask_threads"`` when the runs go to a Dask cluster.
        """
        out = {"n_workers": int(self.where.n_workers), "executor": self.where.kind}
        if self.client is not None:
            out.update(scheduler=self.where.scheduler, dask_threads=_dask_threads(self.client))
        return out


@contextlib.contextmanager
def open_runner(where):
    """A :class:`Runner` for ``where``, with its Dask client connected (and closed after).

    Parameters
    ----------
    where : Executor

    Returns
    -------
    contextlib.AbstractContextManager
        Yields the :class:`Runner`.
    """
    if where.kind != "dask":
        yield Runner(where)
        return
    client, cluster = connect(where.scheduler, where.dask_workers or 1, where.connect_timeout,
                              what="scheduler= / dask_workers=")
    try:
        yield Runner(where, client)
    finally:
        try:
            client.close()
        finally:
            if cluster is not None:
                cluster.close()


def _dask_threads(client):
    return int(sum(client.nthreads().values()))


def run_batches(engine, entrance, kw, *, n_workers=1, client=None, progress=False):
    """The AMS runs of :func:`~phasetools.rare._ams.ams_batch`: here, on a process pool or on Dask.

    Parameters
    ----------
    engine : splitting engine
        Pickled to the workers (its ``n_calls``, if any, counts the workers' calls too).
    entrance : ndarray (m, dim)
        Entrance states.
    kw : dict
        The keyword arguments of ``ams_batch``.
    n_workers : int >= 1
        1: in this process; more: the runs split into ``n_workers`` contiguous shares on a
        pool of spawned processes (each run depends only on its seed, block and stream
        indices, so the result does not depend on the split).
    client : distributed.Client, optional
        Run the shares on this Dask cluster instead (one share per worker thread).
    progress : bool
        Show a bar over the runs.

    Returns
    -------
    dict
        As ``ams_batch`` over all runs, in run order.
    """
    n_runs = kw["n_runs"]
    bar = _progress(total=n_runs, desc="AMS runs", quiet=not progress)
    try:
        if client is not None:
            return _on_dask(client, engine, entrance, kw, bar)
        if n_workers <= 1:
            seen = [0]

            def tick(n_done):
                bar.update(n_done - seen[0])
                seen[0] = n_done

            return ams_batch(engine, entrance, **kw, progress=tick)
        import concurrent.futures as cf
        import multiprocessing

        shares = _shares(n_runs, n_workers)
        with cf.ProcessPoolExecutor(len(shares), mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(_batch_part, engine, entrance, kw, share) for share in shares]
            for fut in cf.as_completed(futures):
                bar.update(len(shares[futures.index(fut)]))
            return _merge(engine, [f.result() for f in futures])
    finally:
        bar.close()


def _shares(n_runs, n_parts):
    """Contiguous shares of the run indices (any split gives the same runs)."""
    return [s.tolist() for s in np.array_split(np.arange(n_runs), max(1, min(n_parts, n_runs)))]


def _batch_part(engine, entrance, kw, run_indices):
    """One worker's share of the runs (module level: pickled by reference), with the engine
    calls it made (``n_calls``) on a copy of the engine of its own."""
    engine = copy.copy(engine)
    if hasattr(engine, "n_calls"):
        engine.n_calls = 0
    out = ams_batch(engine, entrance, **kw, run_indices=run_indices)
    out["n_calls"] = int(getattr(engine, "n_calls", 0))
    return out


def _merge(engine, parts):
    """The shares' outputs joined in run order; their engine calls added to ``engine.n_calls``."""
    calls = sum(p.pop("n_calls") for p in parts)
    if hasattr(engine, "n_calls"):
        engine.n_calls += calls
    return merge_batches(parts)


def _on_dask(client, engine, entrance, kw, bar):
    """The shares of the runs as tasks of a Dask cluster; a task's error is raised here."""
    from distributed import as_completed

    shares = _shares(kw["n_runs"], _dask_threads(client))
    futures = [client.submit(_batch_part, engine, entrance, kw, share, pure=False) for share in shares]
    try:
        for fut in as_completed(futures, loop=client.loop):   # the client is not the session's default
            bar.update(len(shares[futures.index(fut)]))
        return _merge(engine, client.gather(futures))
    finally:
        client.cancel(futures)
