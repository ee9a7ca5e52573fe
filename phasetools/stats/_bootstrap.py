"""Percentile bootstrap of a statistic of right-censored escape times.

Pairs ``(time, censored)`` are resampled together, so each resample has its own number
of escapes. A resample may have no escapes (or a survival curve that never reaches 1/2),
making ``tau`` (or the median) infinite. ``scipy.stats.bootstrap`` does not accept
infinite replicates (its percentile and BCa code subtract them and warn), so this module
implements the percentile interval directly, on order statistics, where ``+inf`` simply
sorts last.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from ..results import Result, register, timed
from .._validation import check_memory
from ._common import check_confidence, check_survival_data, float_or_none, fmt

__all__ = ["BootstrapCI", "bootstrap_ci", "STATISTICS"]

# Indices drawn per batch (rows x n); the batching depends only on n, so the resamples
# depend only on (seed, n, n_resamples).
_BATCH_ELEMENTS = 1 << 20


def _tau(times, censored, axis=-1):
    d = np.count_nonzero(~censored, axis=axis)
    S = times.sum(axis=axis)
    return np.divide(S, d, out=np.full(np.shape(S), np.inf), where=d > 0)


def _rate(times, censored, axis=-1):
    d = np.count_nonzero(~censored, axis=axis)
    S = times.sum(axis=axis)
    return np.divide(d, S, out=np.where(d > 0, np.inf, 0.0), where=S > 0)


def _median(times, censored, axis=-1):
    """Kaplan-Meier median of each row (+inf where S stays above 1/2), vectorised.

    Rows are sorted by time with escapes before censorings at equal times, so that the
    product of the per-trajectory factors ``1 - e_i / (number at or after i)`` equals the
    Kaplan-Meier product over distinct times.
    """
    t = np.moveaxis(np.asarray(times, dtype=np.float64), axis, -1)
    c = np.moveaxis(np.asarray(censored, dtype=bool), axis, -1)
    order = np.lexsort((c, t), axis=-1)
    t = np.take_along_axis(t, order, axis=-1)
    esc = ~np.take_along_axis(c, order, axis=-1)
    m = t.shape[-1]
    at_risk = np.arange(m, 0, -1, dtype=np.float64)
    s = np.cumprod(np.where(esc, 1.0 - 1.0 / at_risk, 1.0), axis=-1)
    below = s <= 0.5 * (1.0 + 1e-12)
    first = np.argmax(below, axis=-1)
    out = np.take_along_axis(t, first[..., None], axis=-1)[..., 0]
    return np.where(below.any(axis=-1), out, np.inf)


STATISTICS = {"tau": _tau, "rate": _rate, "median": _median}


@register
@dataclass(frozen=True, eq=False, repr=False)
class BootstrapCI(Result):
    """Percentile bootstrap interval of a statistic of ``(times, censored)``.

    ``estimate`` is the statistic on the data, ``low``/``high`` the ``(1 - confidence)/2``
    and ``(1 + confidence)/2`` order statistics of ``distribution`` (the ``n_resamples``
    replicates, ``+inf`` included), ``standard_error`` their standard deviation. Values
    that are not finite are reported as None (e.g. ``high`` when more than
    ``(1 - confidence)/2`` of the resamples had no escape); ``n_infinite`` counts infinite
    replicates, and ``standard_error`` is None when there are any. ``statistic`` is the
    name of a built-in statistic or the qualified name of the callable used.
    ``seeds[0]`` reproduces the resamples: ``bootstrap_ci(..., rng=fit.seeds[0])``.
    Made by :func:`bootstrap_ci`.

    Parameters
    ----------
    times, censored : ndarray (n,)
        The data: observed times and right-censoring flags.
    statistic : str
        The statistic's name.
    n_resamples : int
        Bootstrap replicates.
    confidence : float
        Level of the interval.
    estimate : float or None
        The statistic on the data.
    low, high : float or None
        The percentile interval.
    standard_error : float or None
        Standard deviation of the replicates (None when any is infinite).
    n_infinite : int
        Infinite replicates (e.g. resamples without an escape).
    distribution : ndarray (n_resamples,)
        The replicates.
    """

    times: np.ndarray
    censored: np.ndarray
    statistic: str
    n_resamples: int
    confidence: float
    estimate: float | None
    low: float | None
    high: float | None
    standard_error: float | None
    n_infinite: int
    distribution: np.ndarray

    _config_fields = ("times", "censored", "statistic", "n_resamples", "confidence")
    _dims = {"times": ("trajectory",), "censored": ("trajectory",), "distribution": ("resample",)}

    def __repr__(self):
        return (f"BootstrapCI(statistic={self.statistic!r}, estimate={fmt(self.estimate)}, "
                f"ci=({fmt(self.low)}, {fmt(self.high)}) ({self.confidence:.3g}, percentile), "
                f"standard_error={fmt(self.standard_error)}, n_resamples={self.n_resamples}, "
                f"n_infinite={self.n_infinite})")


def _seed(rng) -> int:
    """The entropy behind the resamples: an int in [0, 2**63) (storable, replayable)."""
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        rng = int(rng)
        if rng < 0:
            raise ValueError(f"rng must be None, a non-negative int or a numpy Generator, got {rng}")
        if rng < 2 ** 63:
            return rng
        return int(np.random.default_rng(rng).integers(2 ** 63))
    if rng is None or isinstance(rng, np.random.Generator):
        # fresh OS entropy (None) or the next draw of the caller's generator; never global state
        return int(np.random.default_rng(rng).integers(2 ** 63))
    raise ValueError(f"rng must be None, a non-negative int or a numpy Generator, got {type(rng).__name__}")


def _check_n_resamples(n_resamples) -> int:
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, numbers.Integral) or n_resamples < 1:
        raise ValueError(f"n_resamples must be an integer >= 1, got {n_resamples!r}")
    return int(n_resamples)


def _statistic(statistic, vectorized):
    if isinstance(statistic, str):
        if statistic not in STATISTICS:
            raise ValueError(f"statistic must be one of {', '.join(map(repr, STATISTICS))} or a callable, "
                             f"got {statistic!r}")
        return statistic, STATISTICS[statistic], True
    if not callable(statistic):
        raise ValueError(f"statistic must be one of {', '.join(map(repr, STATISTICS))} or a callable, "
                         f"got {statistic!r}")
    module = getattr(statistic, "__module__", None) or "?"
    name = f"{module}.{getattr(statistic, '__qualname__', repr(statistic))}"
    return name, statistic, bool(vectorized)


def _evaluate(func, vectorized, times, censored) -> np.ndarray:
    """The statistic of each row of 2-D ``times``/``censored`` as a float array."""
    if vectorized:
        out = np.asarray(func(times, censored, axis=-1), dtype=np.float64)
        if out.shape != times.shape[:1]:
            raise ValueError(f"a vectorized statistic must return one value per resample (shape "
                             f"{times.shape[:1]}), got shape {out.shape}")
        return out
    return np.array([float(func(t, c)) for t, c in zip(times, censored)], dtype=np.float64)


@timed
def bootstrap_ci(times, censored, statistic="tau", *, n_resamples=2000, confidence=0.95, rng=None,
                 vectorized=False) -> BootstrapCI:
    """Percentile bootstrap confidence interval of a statistic of censored escape times.

    Parameters
    ----------
    times, censored : arrays of shape (n,)
        As in :func:`exponential_mle`; ``(times[i], censored[i])`` pairs are resampled with
        replacement, censored ones included.
    statistic : {"tau", "rate", "median"} or callable
        ``"tau"``: total observed time over number of escapes (the exponential MLE, +inf
        without escapes); ``"rate"``: its inverse; ``"median"``: the Kaplan-Meier median
        (+inf when the survival stays above 1/2). A callable is called as
        ``statistic(times, censored)`` on each resample (1-D arrays) and returns a float;
        return ``+inf`` for "beyond the data", never NaN.
    n_resamples : int >= 1
    confidence : float in (0, 1)
        Level of the two-sided interval.
    rng : None, int or numpy.random.Generator
        Source of the resamples, normalised once with ``numpy.random.default_rng``; the
        global NumPy state is never used. The stored ``seeds[0]`` (the int behind the
        resamples) reproduces them.
    vectorized : bool
        For a callable: it accepts 2-D arrays (one resample per row) and ``axis=-1`` and
        returns one value per row. Built-in statistics are always vectorised.

    Returns
    -------
    BootstrapCI
        ``low``/``high``: the ``(1 - confidence)/2`` and ``(1 + confidence)/2`` quantiles
        of the replicates (inverted empirical CDF, no interpolation, so ``+inf`` replicates
        are handled exactly).

    Notes
    -----
    Use it for statistics without a closed-form interval (the median, quantiles, a
    non-exponential model); for the exponential ``tau``, :func:`exponential_mle`'s
    chi-square interval is exact or nearly so and needs no resampling. The percentile
    interval is transformation-respecting (the ``"rate"`` interval is the reciprocal of
    the ``"tau"`` one) but not bias-corrected; it needs a sample large enough that
    resamples resemble new experiments (tens of escapes, not a handful).

    Examples
    --------
    >>> import numpy as np
    >>> t = np.minimum(np.random.default_rng(1).exponential(2.0, 200), 3.0)
    >>> ci = bootstrap_ci(t, t >= 3.0, "median", n_resamples=500, rng=7)
    >>> ci.low < ci.estimate < ci.high
    True
    """
    t, c = check_survival_data(times, censored)
    name, func, vec = _statistic(statistic, vectorized)
    n_res = _check_n_resamples(n_resamples)
    check_memory(16 * n_res, f"n_resamples = {n_res} bootstrap replicates")   # the distribution and its sort
    conf = check_confidence(confidence)
    entropy = _seed(rng)
    gen = np.random.default_rng(entropy)

    estimate = float(_evaluate(func, vec, t[None, :], c[None, :])[0])
    n = t.size
    rows = max(1, _BATCH_ELEMENTS // n)
    parts = []
    for start in range(0, n_res, rows):
        idx = gen.integers(0, n, size=(min(rows, n_res - start), n))
        parts.append(_evaluate(func, vec, t[idx], c[idx]))
    dist = np.concatenate(parts)
    if np.isnan(estimate) or np.any(np.isnan(dist)):
        raise ValueError(f"statistic {name!r} returned NaN (on the data or on {int(np.isnan(dist).sum())} of "
                         f"{n_res} resamples); return +inf for values beyond the data")

    alpha = 1.0 - conf
    low, high = np.quantile(dist, [alpha / 2, 1.0 - alpha / 2], method="inverted_cdf")
    finite = np.isfinite(dist)
    n_inf = int(np.count_nonzero(~finite))
    se = float(np.std(dist, ddof=1)) if n_inf == 0 and n_res > 1 else None
    return BootstrapCI(
        times=t, censored=c, statistic=name, n_resamples=n_res, confidence=conf,
        estimate=float_or_none(estimate), low=float_or_none(low), high=float_or_none(high),
        standard_error=se, n_infinite=n_inf, distribution=dist, seeds=(entropy,),
    )
