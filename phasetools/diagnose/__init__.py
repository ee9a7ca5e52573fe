"""Diagnosing and curing grokking plateaus (docs/diagnose.md).

Loss curves
    load_log(log) -> LossLog (a TrainingRun, .npz/.csv/.h5 arrays, a dict or a list of dicts)
    find_plateaus(log, tol=, min_length=, window=, min_drop=, abrupt=) -> Plateaus
"""

from ._curves import LossLog, Plateaus, find_plateaus, load_log

__all__ = ["LossLog", "load_log", "Plateaus", "find_plateaus"]
