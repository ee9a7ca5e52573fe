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
    Stage(epochs, weight_decay, temperature), run_schedule(data, init, stages, ...) -> ScheduleRun,
    train_stage; reseed(weights, data, mode=, size=);
    plan_cure(data, n_layers=, weight_decay=, mode=, seed_size=, lr=) -> CurePlan (the theory's dip)
    compare_cures(data, trap, cures, weight_decay=, epochs=, ...) -> CureComparison (.table())
"""

from ._cures import (CureComparison, CurePlan, ScheduleRun, Stage, compare_cures, plan_cure, reseed, run_schedule,
                     train_stage)
from ._curves import LossLog, Plateaus, find_plateaus, load_log
from ._diagnosis import Diagnosis, diagnose, plot_diagnosis
from ._state import StateDiagnosis, diagnose_state, load_weights, summary_line

__all__ = ["LossLog", "load_log", "Plateaus", "find_plateaus", "StateDiagnosis", "diagnose_state", "load_weights",
           "summary_line", "Diagnosis", "diagnose", "plot_diagnosis", "Stage", "ScheduleRun", "run_schedule",
           "train_stage", "reseed", "CurePlan", "plan_cure", "CureComparison", "compare_cures"]
