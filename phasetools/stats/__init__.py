"""Statistics of escape times: censored estimators, bootstrap and Arrhenius fits.

Escape times are right-censored: a trajectory that reaches its step budget without
escaping only bounds its escape time from below. Every estimator here uses such
trajectories; none drops them (dropping them biases escape times down).

Censored escape times
    exponential_mle -> ExponentialFit (rate = escapes / total observed time, exact
    chi-square intervals, a one-sided bound when nothing escaped)
    kaplan_meier -> SurvivalCurve (survival function, Greenwood errors, median)
    bootstrap_ci -> BootstrapCI (percentile bootstrap of "tau", "rate", "median" or any
    statistic; resamples (time, censored) pairs)
Arrhenius
    arrhenius_fit -> ArrheniusFit (weighted least squares of ln tau against 1/T or
    batch_size/lr, with a known prefactor and temperature power removed)

See ``docs/stats.md`` for the formulas and when to use which.
"""

from ._arrhenius import ArrheniusFit, arrhenius_fit
from ._bootstrap import BootstrapCI, bootstrap_ci
from ._censored import ExponentialFit, SurvivalCurve, exponential_mle, kaplan_meier

__all__ = [
    "ExponentialFit", "exponential_mle",
    "SurvivalCurve", "kaplan_meier",
    "BootstrapCI", "bootstrap_ci",
    "ArrheniusFit", "arrhenius_fit",
]
