"""One-command reproduction of arXiv:2606.17120: every experiment, figures and a verdict report.

    reproduce(out, scale="quick"|"full"|"smoke", executor=, n_workers=, scheduler=,
              dask_workers=, resume=, overwrite=) -> ReproduceOutcome
    tasks(scale)            the task grid (one dict per experiment run)
    run_experiment(...)     one task (what the sweep executors call)
    SCALES, FIGURES

``phasetools reproduce --quick`` on the command line. The experiments run as one resumable
sweep (:mod:`phasetools.sweep`) into ``out/results.h5``; the claim verdicts
(:mod:`phasetools.compare`) go to ``out/verdicts.h5`` and ``out/report.md`` with the
figures. See docs/reproduce.md.
"""

from ._experiments import SCALES, run_experiment, tasks
from ._run import DEFAULT_SEED, FIGURES, ReproduceOutcome, collect, reproduce

__all__ = ["reproduce", "ReproduceOutcome", "tasks", "run_experiment", "collect", "SCALES", "FIGURES",
           "DEFAULT_SEED"]
