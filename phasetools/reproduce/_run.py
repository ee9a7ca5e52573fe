"""``reproduce(out, scale=...)``: every experiment of the paper, one folder with results, figures and a report."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._progress import progress
from ._claims import claim_report
from ._experiments import SCALES, run_experiment, tasks
from ._figures import FIGURES, figures
from ._predicted import prediction_lines, prediction_table, write_prediction_figure
from ._report import write_report

__all__ = ["reproduce", "ReproduceOutcome", "collect", "DEFAULT_SEED"]

#: The sweep seed of ``phasetools reproduce`` when none is given.
DEFAULT_SEED = 20261130


@dataclass(frozen=True)
class ReproduceOutcome:
    """What :func:`reproduce` wrote.

    Parameters
    ----------
    out : Path
        The output folder.
    results : Path
        ``out/results.h5``, the sweep of experiments.
    report : Path
        ``out/report.md``.
    figures : tuple of Path
        The figure files written.
    scale : str
        "smoke", "quick" or "full".
    wall_time : float
        Seconds from the start of the sweep to the report.
    counts : dict
        Claims by overall outcome (``{"agrees": n, "disagrees": n, "not testable": n}``).
    """

    out: Path
    results: Path
    report: Path
    figures: tuple
    scale: str
    wall_time: float
    counts: dict

    def __repr__(self):
        return f"ReproduceOutcome(report={str(self.report)!r}, scale={self.scale!r}, verdicts={self.counts})"


def _merge_points(sweeps):
    """One ArrheniusSweep from single-point sweeps of the same configuration.

    Parameters
    ----------
    sweeps : list of phasetools.training.ArrheniusSweep
        Sweeps of one escape rule (``criterion``, ``sv_index``, ``sv_threshold``) and sampler;
        the test-MSE rule's epochs of a ``"rank"`` sweep (``escape_epoch_mse``, ``escaped_mse``)
        are merged with the rest.

    Returns
    -------
    phasetools.training.ArrheniusSweep
        The points in the order given; ValueError if the sweeps counted escapes by different rules.
    """
    from dataclasses import replace
    first = sweeps[0]
    for s in sweeps[1:]:
        same = (s.criterion == first.criterion and s.sampling == first.sampling and s.sv_index == first.sv_index
                and (s.sv_threshold == first.sv_threshold or (np.isnan(s.sv_threshold)
                                                             and np.isnan(first.sv_threshold))))
        if not same:
            raise ValueError(f"sweeps: E4 points of different escape rules or samplers cannot be merged "
                             f"({first.criterion!r}/{first.sampling!r} and {s.criterion!r}/{s.sampling!r})")
    cat = {}
    for f in ("lr", "batch_size", "steps_per_epoch", "temperature", "gradient_trace", "tau_epochs", "tau_epochs_low",
              "tau_epochs_high", "tau_time", "tau_time_low", "tau_time_high"):
        cat[f] = np.concatenate([getattr(s, f) for s in sweeps])
    fields = ("escape_epoch", "escaped") + (("escape_epoch_mse", "escaped_mse")
                                            if all(s.escape_epoch_mse is not None for s in sweeps) else ())
    for f in fields:
        cat[f] = np.concatenate([getattr(s, f) for s in sweeps], axis=0)
    if len(fields) == 2:   # a point without the test-MSE epochs: none are kept (never a shorter array)
        cat.update(escape_epoch_mse=None, escaped_mse=None)
    return replace(first, **cat)


def collect(task_params, task_results) -> dict:
    """The results of a reproduction by experiment name, as the claims and the report read them.

    Parameters
    ----------
    task_params : list of dict
        The task grid (:func:`tasks`).
    task_results : list
        One result per task, in the same order (None for a task without result, which is
        left out).

    Returns
    -------
    dict
        Experiment name -> result: a list for the E1 draws (``e1_draws``) and the chain's
        ensembles (``langevin_ensembles``), the E4 corrected points merged into one
        ``ArrheniusSweep``, the chain's Arrhenius fit as ``langevin_chain`` (when at
        least two temperatures saw escapes), and the prediction runs as lists of tuples:
        ``predict_replacement`` ``(draw, ArrheniusSweep)``, ``predict_injected``
        ``(draw, ratio, TrainingRun)``, ``predict_shuffle`` ``(draw, TrainingRun)``. The task
        results are not changed.
    """
    from ..langevin import EscapeSweep
    R, draws, e4c, ens, pa, pc, pb = {}, [], [], [], [], [], []
    for p, r in zip(task_params, task_results):
        if r is None:
            continue
        name = p["experiment"]
        if name == "e1_draw":
            draws.append(r)
        elif name == "e4_corrected":
            e4c.append(r)
        elif name == "langevin_chain":
            ens.append(r)
        elif name == "predict_replacement":
            pa.append((int(p["draw"]), r))
        elif name == "predict_injected":
            pc.append((int(p["draw"]), float(p["ratio"]), r))
        elif name == "predict_shuffle":
            pb.append((int(p["draw"]), r))
        else:
            R[name] = r
    if draws:
        R["e1_draws"] = draws
    if pa:
        R["predict_replacement"] = pa
    if pc:
        R["predict_injected"] = pc
    if pb:
        R["predict_shuffle"] = pb
    if e4c:
        R["e4_corrected"] = _merge_points(e4c)
    if ens:
        R["langevin_ensembles"] = ens
        fit = EscapeSweep.from_ensembles(ens).arrhenius()   # None: fewer than two temperatures with escapes
        if fit is not None:
            R["langevin_chain"] = fit
    return R


def run_log(out: Path, wall: float, executor: str, resume: bool):
    """Record this run in ``out/runs.json`` (kept by ``resume``, restarted otherwise).

    Parameters
    ----------
    out : Path
        The reproduction folder.
    wall : float
        This run's wall time in seconds.
    executor : str
        Where it ran.
    resume : bool
        Whether it continued the reproduction stored in ``out``.

    Returns
    -------
    tuple of (float, str)
        The wall time of every run together, and the executors with each run's minutes
        (``"process (0.7 min)`, resumed with `inline (0.2 min)"``, between the report's
        backticks), or this run's executor alone when it is the first.
    """
    import json

    path, runs = out / "runs.json", []
    if resume and path.exists():
        try:   # data only: numbers and names, never evaluated
            runs = [{"wall_time": float(r["wall_time"]), "executor": str(r["executor"])}
                    for r in json.loads(path.read_text())["runs"]]
        except (OSError, ValueError, KeyError, TypeError):
            runs = []
    runs.append({"wall_time": float(wall), "executor": str(executor)})
    path.write_text(json.dumps({"runs": runs}))
    if len(runs) == 1:
        return float(wall), str(executor)
    parts = [f"{r['executor']} ({r['wall_time'] / 60:.1f} min)" for r in runs]
    return sum(r["wall_time"] for r in runs), parts[0] + "`, resumed with `" + "`, `".join(parts[1:])


def _prepare_folder(out: Path, resume: bool, overwrite: bool):
    if resume and overwrite:
        raise ValueError("give at most one of resume and overwrite")
    if out.exists() and not out.is_dir():
        raise ValueError(f"out: {out} exists and is not a folder")
    if out.exists() and any(p.suffix != ".lock" for p in out.iterdir()) and not (resume or overwrite):
        raise ValueError(f"out: the folder {out} exists and is not empty; pass --resume to continue the "
                         f"reproduction stored there or --overwrite to replace it")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(f"out: cannot create the folder {out}: {exc.strerror or exc}") from None


def _tidy_failed_start(out: Path, existed: bool):
    """After a sweep that failed or was interrupted in a folder this call created: if only the
    writers' empty lock files are in it (e.g. a Dask scheduler that could not be reached), remove
    them and the folder. A folder that existed before (another run's, possibly still writing)
    and any stored result are left as they are."""
    if existed or not out.is_dir():
        return
    entries = list(out.iterdir())
    if all(p.name in ("results.h5.lock", "verdicts.h5.lock") and p.stat().st_size == 0 for p in entries):
        for p in entries:
            p.unlink(missing_ok=True)
        out.rmdir()


def reproduce(out, *, scale="quick", seed=DEFAULT_SEED, executor=None, n_workers=None, scheduler=None,
              dask_workers=None, resume=False, overwrite=False, quiet=False, command=None) -> ReproduceOutcome:
    """Run every experiment of the paper and write one folder with results, verdicts, figures and a report.

    The experiments (:func:`tasks`) run as one :func:`phasetools.sweep.run_sweep` into
    ``out/results.h5``; the claim verdicts (:func:`claim_report`) go to ``out/verdicts.h5``
    (named ``claims``), the figures of :data:`FIGURES` and ``report.md`` next to them.

    Parameters
    ----------
    out : str or Path
        Output folder; it must be empty or absent unless ``resume`` or ``overwrite``.
    scale : {"quick", "full", "smoke"}
        Seeds and epoch budgets (:data:`SCALES`); "full" is the paper's scale.
    seed : int
        Sweep seed (every task's stream is spawned from it).
    executor : {"inline", "process", "dask"}, optional
        Where the experiments run (default: a local process pool), as in
        :func:`phasetools.sweep.run_sweep`.
    n_workers : int, optional
        Processes of the pool.
    scheduler : str, optional
        Address ``tcp://HOST:PORT`` of a running Dask scheduler.
    dask_workers : int, optional
        Start a local Dask cluster with this many workers.
    resume : bool
        Continue the reproduction stored in ``out``, recomputing only what is missing.
    overwrite : bool
        Replace what ``out`` holds (at most one of ``resume`` and ``overwrite``).
    quiet : bool
        No progress bar.
    command : str, optional
        The command line, recorded in the files and the report.

    Returns
    -------
    ReproduceOutcome
        The paths written and the verdict counts.
    """
    from ..io import save
    from ..sweep import run_sweep
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {', '.join(SCALES)}, got {scale!r}")
    out = Path(out)
    existed = out.exists()
    _prepare_folder(out, resume, overwrite)
    t0 = time.perf_counter()
    grid = tasks(scale)
    try:
        outcome = run_sweep(run_experiment, grid, path=out / "results.h5", seed=seed, executor=executor,
                            n_workers=n_workers, scheduler=scheduler, dask_workers=dask_workers, resume=resume,
                            overwrite=overwrite, progress=not quiet)
    except BaseException:
        _tidy_failed_start(out, existed)
        raise
    outcome.check()
    phase = progress(total=4, desc="verdicts, predictions, figures, report", quiet=quiet)   # the phase after the sweep
    results = outcome.results()
    R = collect(grid, results)
    report = claim_report(R)
    vpath = out / "verdicts.h5"
    if vpath.exists():
        vpath.unlink()
    save(report, vpath, name="claims", command=command)
    phase.update(1)
    table = prediction_table(R)   # predicted against measured escape times, from the stored runs
    phase.update(1)
    figs = figures(R, out) + write_prediction_figure(table, out)
    phase.update(1)
    wall = time.perf_counter() - t0
    total, executors = run_log(out, wall, outcome.executor, resume)   # a resume keeps the first run's record
    rpath = write_report(out, R, report, figs, figure_captions=FIGURES, scale=scale, wall=total, command=command,
                         executor=executors, seed=outcome.seed, prediction=prediction_lines(table))
    phase.update(1)
    phase.close()
    for lock in (out / "results.h5.lock", out / "verdicts.h5.lock"):   # the writers are done
        lock.unlink(missing_ok=True)
    return ReproduceOutcome(out=out, results=out / "results.h5", report=rpath, figures=tuple(figs), scale=scale,
                            wall_time=wall, counts=report.counts())
