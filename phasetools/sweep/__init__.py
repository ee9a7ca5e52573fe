"""Parameter sweeps: grids of independent tasks, run anywhere, stored as they finish, resumable.

A task is ``fn(**params, rng=SeedSequence)`` returning a registered
:class:`phasetools.results.Result`; task ``i`` gets the seed
``SeedSequence(entropy=seed, spawn_key=(i,))`` (:func:`task_seed`), so a sweep gives the
same results with any executor, number of workers or completion order.

    run_sweep(fn, grid, path=..., seed=...)   run (or resume) a sweep; returns a SweepOutcome
    product(**axes)                           every combination of parameter values, as a grid
    task_seed(seed, i)                        the SeedSequence of task i (to replay one task)
    read_sweep(path)                          configuration and status of each task
    load_results(path)                        the results in task order
    task_name(i, n_tasks, params)             the stored name of task i, e.g. "0004-k=2-x=2"
    parts_dir(path)                           the folder of a running sweep's batch files

Executors: ``"inline"`` (this process), ``"process"`` (a local pool of spawned
processes) and ``"dask"`` (a Dask distributed cluster: ``scheduler="tcp://HOST:PORT"``
connects to a running one, ``dask_workers=N`` starts a LocalCluster on this machine;
needs ``pip install "phasetools[dask]"``).

The coordinating process is the only writer: finished tasks are written as atomic batch
files beside the HDF5 file (an append costs the same however large the sweep) and folded
into it when the sweep ends (``docs/schema.md``, "Sweep files"), so a sweep killed at any moment
resumes with ``resume=True`` and ends with the results of an uninterrupted run. Errors:
:class:`SweepError` (a ``ValueError``) and its subclasses :class:`SweepConfigError`
and :class:`SweepStorageError`.
"""

from ._grid import product, task_seed
from ._run import SweepInfo, SweepOutcome, TaskFailure, load_results, read_sweep, run_sweep
from ._store import SWEEP_SCHEMA_VERSION, SweepConfigError, SweepError, SweepStorageError, parts_dir, task_name

__all__ = ["run_sweep", "product", "task_seed", "read_sweep", "load_results", "SweepOutcome", "SweepInfo",
           "TaskFailure", "SweepError", "SweepConfigError", "SweepStorageError", "SWEEP_SCHEMA_VERSION", "task_name",
           "parts_dir"]
