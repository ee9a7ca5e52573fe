"""Diagnosing and curing grokking plateaus (docs/diagnose.md).

Loss curves
    load_log(log) -> LossLog (a TrainingRun, .npz/.csv/.h5 arrays, a dict or a list of dicts)
    find_plateaus(log, tol=, min_length=, window=, min_drop=, abrupt=) -> Plateaus
The state (weights and data)
    load_weights(weights) (lists of arrays, a TrainingRun, a state_dict of arrays, .npz)
    diagnose_state(weights, data, weight_decay=, lr=, batch_size=) -> StateDiagnosis: features,
        layer balance, the theory's landscape, barrier, escape time, SGD noise on each feature,
        summary line (summary_line)
    diagnose(log, weights=None, data=None, ...) -> Diagnosis; plot_diagnosis(diagnosis, path)
Cures (schedules of ``training.train`` stages; a run's weights carry over)
    Stage(epochs, weight_decay, temperature, label_noise, lr, batch_size) (or training.Phase / Schedule),
    run_schedule(data, init, stages, ...) -> ScheduleRun (one training.train(schedule=...) call);
    reseed(weights, data, mode=, size=);
    plan_cure(data, n_layers=, weight_decay=, mode=, seed_size=, lr=) -> CurePlan (the theory's dip)
    compare_cures(data, trap, cures, weight_decay=, epochs=, ...) -> CureComparison (.table());
    plot_cures(comparisons, path) (epochs to escape per cure, censored seeds marked)
"""

from ._cures import (
    CureComparison,
    CurePlan,
    ScheduleRun,
    Stage,
    compare_cures,
    plan_cure,
    plot_cures,
    reseed,
    run_schedule,
)
from ._curves import LossLog, Plateaus, find_plateaus, load_log
from ._diagnosis import Diagnosis, diagnose, plot_diagnosis
from ._state import StateDiagnosis, diagnose_state, load_weights, summary_line

__all__ = ["CureComparison", "CurePlan", "Diagnosis", "LossLog", "Plateaus", "ScheduleRun", "Stage", "StateDiagnosis",
           "compare_cures", "diagnose", "diagnose_state", "find_plateaus", "load_log", "load_weights", "plan_cure",
           "plot_cures", "plot_diagnosis", "reseed", "run_schedule", "summary_line"]
