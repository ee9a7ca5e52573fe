"""Estimators for right-censored escape times: exponential MLE and Kaplan-Meier.

A trajectory that reaches its step budget without escaping is *right-censored*: its
recorded time is only a lower bound on its escape time. Both estimators use every
trajectory; dropping the censored ones (or treating their budget as an escape time)
biases the mean escape time down.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..results import Result, register, timed
from ._common import check_confidence, check_survival_data, check_time_unit, fmt

__all__ = ["ExponentialFit", "exponential_mle", "SurvivalCurve", "kaplan_meier"]

_INTERVALS = ("gamma", "poisson")
# S(t) <= 1/2 is decided up to round-off of the product of factors (1 - d/n).
_HALF = 0.5 * (1.0 + 1e-12)


@register
@dataclass(frozen=True, eq=False, repr=False)
class ExponentialFit(Result):
    """Maximum-likelihood fit of exponential waiting times to right-censored data.

    ``rate = n_escaped / total_time`` and ``tau = 1 / rate``; ``total_time`` sums the
    observed times of all trajectories, escaped and censored. ``tau_ci`` is the two-sided
    interval at level ``confidence`` (construction ``interval``, see
    :func:`exponential_mle`) and ``tau_lower`` the one-sided lower bound at that level.
    With no escapes only the lower bound exists: ``tau``, ``tau_stderr`` and ``tau_ci``
    are None and ``rate`` is 0. Times are in ``time_unit`` (free text, None = unstated).
    Made by :func:`exponential_mle`.

    Parameters
    ----------
    times, censored : ndarray (n,)
        The data: observed times and right-censoring flags.
    confidence : float
        Level of ``tau_ci`` and ``tau_lower``.
    interval : {"gamma", "poisson"}
        Construction of ``tau_ci``.
    time_unit : str or None
        Unit of the times.
    n, n_escaped, n_censored : int
        Trajectories, escapes, censored ones.
    total_time : float
        Sum of the observed times.
    rate : float
        Escapes per unit time, ``n_escaped / total_time``.
    tau, tau_stderr : float or None
        Mean escape time and its standard error (None without escapes).
    tau_ci : tuple of float or None
        Two-sided interval of ``tau``.
    tau_lower : float
        One-sided lower bound of ``tau`` (defined without escapes too).
    """

    times: np.ndarray
    censored: np.ndarray
    confidence: float
    interval: str
    time_unit: str | None
    n: int
    n_escaped: int
    n_censored: int
    total_time: float
    rate: float
    tau: float | None
    tau_stderr: float | None
    tau_ci: tuple | None
    tau_lower: float

    _config_fields = ("times", "censored", "confidence", "interval", "time_unit")
    _dims = {"times": ("trajectory",), "censored": ("trajectory",)}
    _units = {"times": "time[time_unit]"}

    def __repr__(self):
        unit = "" if self.time_unit is None else f" {self.time_unit}"
        return (f"ExponentialFit(n={self.n}, n_escaped={self.n_escaped}, n_censored={self.n_censored}, "
                f"tau={fmt(self.tau)}{unit}, tau_stderr={fmt(self.tau_stderr)}, "
                f"tau_ci={fmt(self.tau_ci)} ({self.confidence:.3g}, {self.interval}), "
                f"tau_lower={fmt(self.tau_lower)})")


@timed
def exponential_mle(times, censored, *, confidence=0.95, interval="gamma", time_unit=None) -> ExponentialFit:
    """Mean escape time of exponential waiting times from right-censored data.

    Parameters
    ----------
    times : array of shape (n,), >= 0
        Observed time of each trajectory: its escape time, or, if censored, the time at
        which it stopped without escaping (its step budget).
    censored : bool array of shape (n,)
        True where the trajectory did not escape (``times`` is a lower bound). Censored
        trajectories are never dropped: their time enters ``total_time``.
    confidence : float in (0, 1)
        Level of ``tau_ci`` (two-sided) and of ``tau_lower`` (one-sided).
    interval : {"gamma", "poisson"}
        Construction of ``tau_ci`` (below).
    time_unit : str, optional
        Unit of ``times`` (``"t"`` Langevin time, ``"steps"``, ``"epochs"``); recorded only.

    Returns
    -------
    ExponentialFit
        With ``d`` escapes and total observed time ``S`` (escaped and censored alike), the
        log-likelihood ``d ln(rate) - rate S`` is maximal at ``rate = d / S``, so
        ``tau = S / d``; the Fisher information ``d / rate^2`` gives
        ``tau_stderr = tau / sqrt(d)``.

    Notes
    -----
    Intervals. Pooled over trajectories, time on test accumulates at rate "number still
    running" and escapes occur on it as a Poisson process of rate ``1/tau`` (memoryless
    waiting times). If observation stops at the d-th escape, ``S`` given ``d`` is
    Gamma(d, tau), i.e. ``2 S / tau ~ chi2(2 d)``, and

    * ``interval="gamma"`` (default): ``[2S / chi2_{1-a/2}(2d), 2S / chi2_{a/2}(2d)]``
      with ``a = 1 - confidence`` and ``chi2_q(k)`` the q-quantile. This is exact for
      escape-terminated observation; with a fixed step budget (type-I censoring, the usual
      case) it is the standard approximation. Simulated coverage of the 95% interval at 70%
      censoring is 0.946 at d ~ 6, 0.948 at d ~ 30 and 0.950 at d ~ 90.
    * ``interval="poisson"``: the exact Poisson (Garwood) interval for a fixed exposure:
      the lower end uses ``2d + 2`` degrees of freedom,
      ``[2S / chi2_{1-a/2}(2d + 2), 2S / chi2_{a/2}(2d)]``. Its coverage is at least
      ``confidence`` under any fixed censoring times (conservative: 0.96-0.97 at small d).

    ``tau_lower = 2S / chi2_{confidence}(2d + 2)`` is the one-sided lower bound of the
    Poisson construction, valid for any fixed censoring times and defined for ``d = 0``:
    then it is ``S / ln(1 / (1 - confidence))`` (``S / 3.0`` at 95%), the largest tau
    for which seeing no escape in total time ``S`` had probability below ``1 - confidence``.

    The MLE has a finite-sample bias of order ``tau / d`` (about ``+0.85 tau / d`` at 70%
    censoring); use the survival curve (:func:`kaplan_meier`) when the waiting times may
    not be exponential, e.g. for the median.

    Examples
    --------
    >>> fit = exponential_mle([1.0, 3.0, 5.0, 5.0], [False, False, True, True])
    >>> fit.n_escaped, fit.total_time, fit.tau
    (2, 14.0, 7.0)
    """
    t, c = check_survival_data(times, censored)
    conf = check_confidence(confidence)
    if interval not in _INTERVALS:
        raise ValueError(f"interval must be one of {', '.join(map(repr, _INTERVALS))}, got {interval!r}")
    unit = check_time_unit(time_unit)
    from scipy.special import chdtri  # chdtri(k, q): the chi2(k) quantile with upper tail q

    n = int(t.size)
    d = int(np.count_nonzero(~c))
    S = float(t.sum())
    alpha = 1.0 - conf
    tau_lower = float(2.0 * S / chdtri(2 * d + 2, alpha))
    if d == 0:
        tau = tau_stderr = tau_ci = None
    else:
        tau = S / d
        tau_stderr = tau / np.sqrt(d)
        lower_dof = 2 * d if interval == "gamma" else 2 * d + 2
        tau_ci = (float(2.0 * S / chdtri(lower_dof, alpha / 2)),
                  float(2.0 * S / chdtri(2 * d, 1.0 - alpha / 2)))
        tau_stderr = float(tau_stderr)
    return ExponentialFit(
        times=t, censored=c, confidence=conf, interval=interval, time_unit=unit,
        n=n, n_escaped=d, n_censored=n - d, total_time=S, rate=d / S,
        tau=tau, tau_stderr=tau_stderr, tau_ci=tau_ci, tau_lower=tau_lower,
    )


@register
@dataclass(frozen=True, eq=False, repr=False)
class SurvivalCurve(Result):
    """Kaplan-Meier estimate of the survival function ``S(t) = P(escape time > t)``.

    One entry per distinct escape time ``event_times[j]``: ``n_at_risk[j]`` trajectories
    had not escaped or been censored before it (censored at ``t_j`` count as at risk),
    ``n_events[j]`` escaped at it, ``survival[j]`` is ``S`` just after it, ``stderr[j]``
    its Greenwood standard error, ``ci_low``/``ci_high`` pointwise log-log bands at level
    ``confidence`` (``ci_high`` is masked where ``S = 0``). ``median`` is the first
    escape time with ``S <= 1/2`` (None if ``S`` stays above 1/2), ``median_ci_low`` and
    ``median_ci_high`` where the lower and upper bands reach 1/2 (None: not reached).
    Use :meth:`at` to evaluate the step function. Made by :func:`kaplan_meier`.

    Parameters
    ----------
    times, censored : ndarray (n,)
        The data: observed times and right-censoring flags.
    confidence : float
        Level of the bands and of the median's interval.
    time_unit : str or None
        Unit of the times.
    n, n_escaped, n_censored : int
        Trajectories, escapes, censored ones.
    event_times, n_at_risk, n_events : ndarray (n_events,)
        Distinct escape times, trajectories at risk and escapes at each.
    survival, stderr, ci_low : ndarray (n_events,)
        ``S`` just after each escape time, its Greenwood standard error, the lower band.
    ci_high : numpy.ma.MaskedArray (n_events,)
        The upper band (masked where ``S = 0``).
    median, median_ci_low, median_ci_high : float or None
        Median escape time and its interval (None: not reached).
    """

    times: np.ndarray
    censored: np.ndarray
    confidence: float
    time_unit: str | None
    n: int
    n_escaped: int
    n_censored: int
    event_times: np.ndarray
    n_at_risk: np.ndarray
    n_events: np.ndarray
    survival: np.ndarray
    stderr: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ma.MaskedArray
    median: float | None
    median_ci_low: float | None
    median_ci_high: float | None

    _config_fields = ("times", "censored", "confidence", "time_unit")
    _dims = {"times": ("trajectory",), "censored": ("trajectory",),
             **{k: ("event",) for k in ("event_times", "n_at_risk", "n_events", "survival", "stderr",
                                        "ci_low", "ci_high")}}
    _coords = {"event": "event_times"}
    _units = {"times": "time[time_unit]", "event_times": "time[time_unit]"}

    def at(self, t):
        """``S(t)``: the right-continuous step function (1 before the first escape).

        Beyond the largest observed time the data say nothing; the last value is returned.

        Parameters
        ----------
        t : float or array
            Times (in ``time_unit``).

        Returns
        -------
        float or ndarray
            A float for a scalar ``t``, an array of ``t``'s shape otherwise.
        """
        t_arr = np.asarray(t, dtype=np.float64)
        idx = np.searchsorted(self.event_times, t_arr, side="right")
        out = np.concatenate(([1.0], self.survival))[idx]
        return float(out) if out.ndim == 0 else out

    def __repr__(self):
        unit = "" if self.time_unit is None else f" {self.time_unit}"
        return (f"SurvivalCurve(n={self.n}, n_escaped={self.n_escaped}, n_censored={self.n_censored}, "
                f"n_event_times={self.event_times.size}, median={fmt(self.median)}{unit}, "
                f"median_ci=({fmt(self.median_ci_low)}, {fmt(self.median_ci_high)}) ({self.confidence:.3g}))")


def _first_time_at_or_below_half(times, values):
    hit = np.flatnonzero(values <= _HALF)
    return float(times[hit[0]]) if hit.size else None


@timed
def kaplan_meier(times, censored, *, confidence=0.95, time_unit=None) -> SurvivalCurve:
    """Kaplan-Meier survival curve of right-censored escape times.

    Parameters
    ----------
    times : array of shape (n,), >= 0
        Escape time, or for censored trajectories the time they stopped without escaping.
    censored : bool array of shape (n,)
        True where the trajectory did not escape.
    confidence : float in (0, 1)
        Level of the pointwise bands and of the median's interval.
    time_unit : str, optional
        Unit of ``times``; recorded only.

    Returns
    -------
    SurvivalCurve
        With ``d_j`` escapes among ``n_j`` at risk at the distinct escape times ``t_j``:

        * ``S(t) = prod_{t_j <= t} (1 - d_j / n_j)``; without censoring this is the
          empirical survival function ``#{T_i > t} / n``;
        * Greenwood: ``Var S(t) = S(t)^2 sum_{t_j <= t} d_j / (n_j (n_j - d_j))``; where
          every trajectory at risk escapes (``S`` drops to 0) the standard error is 0, its
          limit as ``n_j - d_j -> 0``;
        * bands (Kalbfleisch-Prentice log-log): ``S^exp(+-z sigma)`` with
          ``sigma^2 = sum d_j / (n_j (n_j - d_j)) / ln(S)^2`` and ``z`` the normal
          ``(1 + confidence) / 2`` quantile; they stay inside [0, 1]. ``ci_high`` is masked
          where ``S = 0``, where ``ci_low`` is 0;
        * median: ``min{t_j : S(t_j) <= 1/2}`` (the definition of Klein & Moeschberger and
          lifelines; R's ``survfit`` instead averages over a flat stretch at exactly 1/2).
          Its interval (Brookmeyer-Crowley type, as in R's ``survfit``): from the first
          ``t_j`` where the lower band is ``<= 1/2`` to the first where the upper band is
          (None when the upper band never gets there: the interval is open above).

    Examples
    --------
    >>> km = kaplan_meier([1.0, 2.0, 2.0, 3.0, 4.0], [False, False, True, False, True])
    >>> km.event_times.tolist(), km.n_at_risk.tolist(), km.survival.round(4).tolist()
    ([1.0, 2.0, 3.0], [5, 4, 2], [0.8, 0.6, 0.3])
    >>> round(km.at(2.5), 12), km.median
    (0.6, 3.0)
    """
    t, c = check_survival_data(times, censored)
    conf = check_confidence(confidence)
    unit = check_time_unit(time_unit)
    from scipy.special import ndtri

    n = int(t.size)
    event_times, n_events = np.unique(t[~c], return_counts=True)
    n_events = n_events.astype(np.int64)
    n_at_risk = (n - np.searchsorted(np.sort(t), event_times, side="left")).astype(np.int64)
    survival = np.cumprod(1.0 - n_events / n_at_risk)
    survivors = n_at_risk - n_events                      # 0 only at a last time where all escape
    term = np.divide(n_events, n_at_risk * survivors.astype(np.float64),
                     out=np.zeros(event_times.shape), where=survivors > 0)
    greenwood = np.cumsum(term)                           # sum d/(n(n-d)) over t_j <= t
    zero = survivors == 0
    if np.any(zero):  # S = 0 from there on
        zero = np.cumsum(zero) > 0
    stderr = np.where(zero, 0.0, survival * np.sqrt(greenwood))

    z = ndtri(0.5 * (1.0 + conf))
    positive = ~zero
    log_s = np.log(survival, out=np.full(survival.shape, -1.0), where=positive)   # S < 1 at every event
    sigma = np.sqrt(greenwood) / np.abs(log_s)
    ci_low = np.where(positive, survival ** np.exp(z * sigma), 0.0)
    ci_high = np.ma.MaskedArray(np.where(positive, survival ** np.exp(-z * sigma), np.nan), mask=zero)

    return SurvivalCurve(
        times=t, censored=c, confidence=conf, time_unit=unit,
        n=n, n_escaped=int(n_events.sum()), n_censored=int(np.count_nonzero(c)),
        event_times=event_times, n_at_risk=n_at_risk, n_events=n_events,
        survival=survival, stderr=stderr, ci_low=ci_low, ci_high=ci_high,
        median=_first_time_at_or_below_half(event_times, survival),
        median_ci_low=_first_time_at_or_below_half(event_times, ci_low),
        median_ci_high=_first_time_at_or_below_half(event_times, ci_high.filled(np.inf)),
    )
