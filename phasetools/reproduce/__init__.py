"""One-command reproduction of arXiv:2606.17120: every experiment, its claims, figures and a verdict report.

Running it
    reproduce(out, scale="quick"|"full"|"smoke", executor=, n_workers=, scheduler=,
              dask_workers=, resume=, overwrite=) -> ReproduceOutcome
    tasks(scale)            the task grid (one dict per experiment run)
    run_experiment(...)     one task (what the sweep executors call)
    collect(params, results) -> results by experiment name
    SCALES, FIGURES, DEFAULT_SEED
The paper's claims
    CLAIMS (phasetools.compare.Claim objects, one per id F1-F14, N1-N15 of the paper's
    catalogue: CLAIM_IDS), OWN_CHECKS (the toolkit's checks of itself, table "toolkit"),
    N_PARAMS_PAPER, sensitivity(results) (training verdicts under both init readings),
    decide_noise_driver, decide_delay_decades, noise_exponent, fitted_seed, float_floor
    evaluate_claims(results) -> [ClaimVerdict]
    claim_report(results) -> ClaimReport (a stored result: one row per check)
    side_by_side(results) -> rows (quantity, unit, theory, langevin, training, note)
Predicted against measured escape times (docs/predict.md)
    prediction_table(results) -> PredictedVsMeasured (every regime the results hold), or None
    prediction_figure(table) -> Plot; prediction_lines(table) -> the report's section (figure,
    one row per point naming its sampler, the ablation table)

``phasetools reproduce --quick`` on the command line. The experiments run as one resumable
sweep (:mod:`phasetools.sweep`) into ``out/results.h5``; the claim verdicts (built on
:mod:`phasetools.compare`) go to ``out/verdicts.h5`` and ``out/report.md`` with the
figures. ``results`` maps experiment names to results (``theory_critical``, ``e1_up``,
``e2_rank1``, ``langevin_chain``, ...). See docs/reproduce.md.
"""

from ._claims import (CLAIM_IDS, CLAIMS, N_PARAMS_PAPER, OWN_CHECKS, claim_report, decide_delay_decades,
                      decide_noise_driver, evaluate_claims, fitted_seed, float_floor, noise_exponent, sensitivity)
from ._experiments import SCALES, run_experiment, tasks
from ._figures import FIGURES, escape_scatter_figure
from ._predicted import prediction_figure, prediction_lines, prediction_table
from ._report import side_by_side
from ._run import DEFAULT_SEED, ReproduceOutcome, collect, reproduce

__all__ = ["reproduce", "ReproduceOutcome", "tasks", "run_experiment", "collect", "SCALES", "FIGURES",
           "DEFAULT_SEED", "CLAIMS", "CLAIM_IDS", "OWN_CHECKS", "N_PARAMS_PAPER", "evaluate_claims", "claim_report",
           "side_by_side", "sensitivity", "decide_noise_driver", "decide_delay_decades", "noise_exponent",
           "fitted_seed", "float_floor", "escape_scatter_figure", "prediction_table", "prediction_figure",
           "prediction_lines"]
