"""Arrhenius fit: weighted least squares of ln(tau) against 1/T (or batch_size/lr)."""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from .._validation import as_float_array, check_choice
from ..results import Result, register, timed
from ._common import check_confidence, check_time_unit, fmt

__all__ = ["ArrheniusFit", "arrhenius_fit"]

_X_IS = ("inverse_temperature", "batch_size/lr")


@register
@dataclass(frozen=True, eq=False, repr=False)
class ArrheniusFit(Result):
    """Straight-line fit ``ln tau - ln prefactor - p ln T = intercept + slope * x``.

    For ``x_is="inverse_temperature"`` (``x = 1/T``) the slope is the barrier ``Delta U``
    in the energy units of ``T`` (also :attr:`barrier`); for ``x_is="batch_size/lr"``
    (SGD, ``T = lr / (batch_size C)``) it is ``Delta U * C``, and ``C`` must come from
    elsewhere (e.g. ``2 N_theta / tr Sigma``). ``intercept`` is ``ln tau0`` in ``time_unit`` (with
    the prefactor and the temperature power removed). ``ci_method`` says how the intervals
    were made: ``"normal"`` (the given ``tau_stderr`` taken as exact: known variance) or
    ``"t"`` (variance estimated from the residuals, Student t with ``dof = n_points - 2``).
    ``chi2`` (sum of squared standardised residuals) and ``chi2_pvalue`` (probability of a
    larger ``chi2`` under the model) test the straight line when ``ci_method="normal"``;
    they are None otherwise. ``r_squared`` is weighted (None when ln tau is constant).
    ``covariance`` is the 2x2 covariance of ``(intercept, slope)``, ``residuals`` the
    residuals in ln tau (after removing the prefactor and temperature power). Made by
    :func:`arrhenius_fit`.

    Parameters
    ----------
    x, tau : ndarray (n_points,)
        Abscissa (``1/T`` or ``batch_size/lr``) and mean escape times.
    tau_stderr, prefactor : ndarray (n_points,) or None
        Standard errors of ``tau`` (the weights) and the theory prefactor removed.
    temperature_power : float
        ``p`` removed as ``p ln T``.
    x_is : {"inverse_temperature", "batch_size/lr"}
        What ``x`` is.
    confidence : float
        Level of the intervals.
    absolute_sigma : bool
        Whether ``tau_stderr`` was taken as exact.
    time_unit : str or None
        Unit of ``tau``.
    n_points : int
        Points fitted.
    slope, slope_stderr, slope_ci : float, float, tuple
        The slope (the barrier against ``1/T``), its standard error and interval.
    intercept, intercept_stderr, intercept_ci : float, float, tuple
        ``ln tau0``, its standard error and interval.
    covariance : ndarray (2, 2)
        Covariance of ``(intercept, slope)``.
    ci_method : {"normal", "t"}
        How the intervals were made.
    dof : int
        ``n_points - 2``.
    r_squared, chi2, chi2_pvalue : float or None
        Goodness of fit (see above).
    residuals : ndarray (n_points,)
        Residuals in ``ln tau``.
    """

    x: np.ndarray
    tau: np.ndarray
    tau_stderr: np.ndarray | None
    prefactor: np.ndarray | None
    temperature_power: float
    x_is: str
    confidence: float
    absolute_sigma: bool
    time_unit: str | None
    n_points: int
    slope: float
    slope_stderr: float
    slope_ci: tuple
    intercept: float
    intercept_stderr: float
    intercept_ci: tuple
    covariance: np.ndarray
    ci_method: str
    dof: int
    r_squared: float | None
    chi2: float | None
    chi2_pvalue: float | None
    residuals: np.ndarray

    _config_fields = ("x", "tau", "tau_stderr", "prefactor", "temperature_power", "x_is", "confidence",
                      "absolute_sigma", "time_unit")
    _dims = {"x": ("point",), "tau": ("point",), "tau_stderr": ("point",), "prefactor": ("point",),
             "residuals": ("point",), "covariance": ("parameter", "parameter")}
    _coords = {"point": "x"}
    _units = {"tau": "time[time_unit]", "tau_stderr": "time[time_unit]"}

    @property
    def barrier(self) -> float | None:
        """The barrier ``Delta U`` (the slope) when ``x = 1/T``; None for ``x = batch_size/lr``."""
        return self.slope if self.x_is == "inverse_temperature" else None

    def __repr__(self):
        return (f"ArrheniusFit(x_is={self.x_is!r}, n_points={self.n_points}, slope={fmt(self.slope)} "
                f"+- {fmt(self.slope_stderr)} ci={fmt(self.slope_ci)}, intercept={fmt(self.intercept)} "
                f"+- {fmt(self.intercept_stderr)}, ci_method={self.ci_method!r}, "
                f"r_squared={fmt(self.r_squared)}, chi2={fmt(self.chi2)}, "
                f"temperature_power={self.temperature_power:g}, confidence={self.confidence:.3g})")


def _optional_positive(value, name, n):
    if value is None:
        return None
    arr = as_float_array(value, name)
    if arr.shape != (n,):
        raise ValueError(f"{name} must have the shape of x and tau ({n},), got {arr.shape}")
    if np.any(arr <= 0):
        raise ValueError(f"{name} must be > 0, got minimum {arr.min()!r}")
    return arr.copy()


@timed
def arrhenius_fit(x, tau, *, tau_stderr=None, prefactor=None, temperature_power=0.0,
                  x_is="inverse_temperature", confidence=0.95, absolute_sigma=True,
                  time_unit=None) -> ArrheniusFit:
    """Fit ``tau = tau0 * prefactor * T^p * exp(slope * x)`` by weighted least squares in ln tau.

    Parameters
    ----------
    x : array of shape (n,), > 0
        ``1/T`` (``x_is="inverse_temperature"``) or ``batch_size/lr``
        (``x_is="batch_size/lr"``, for SGD whose temperature is ``lr / (batch_size C)``).
    tau : array of shape (n,), > 0
        Mean escape times, in one time unit (Langevin time is advised: steps or epochs add
        ``-ln lr`` across a learning-rate sweep).
    tau_stderr : array of shape (n,), > 0, optional
        Standard errors of ``tau`` (e.g. ``ExponentialFit.tau_stderr``); the standard error
        of ``ln tau`` is ``tau_stderr / tau`` and the weights are its inverse squares.
        Without it the fit is unweighted.
    prefactor : array of shape (n,), > 0, optional
        Theory prefactor ``tau0(T_i)`` at each point (e.g. an Eyring-Kramers time divided
        by its Arrhenius factor); ``ln prefactor`` is subtracted before fitting.
    temperature_power : float
        ``p`` in ``tau ~ T^p exp(Delta U / T)``; ``p ln T = -p ln x + const`` is
        subtracted before fitting. Forward escape at width ``h > 1`` has
        ``tau ~ T^(k/2)`` with orbit dimension ``k = (n_layers - 1)(h - 1)`` (docs/theory.md),
        i.e. ``p = +k/2``; leaving it in biases the slope by about ``-p T``.
    x_is : {"inverse_temperature", "batch_size/lr"}
    confidence : float in (0, 1)
        Level of ``slope_ci`` and ``intercept_ci``.
    absolute_sigma : bool
        With ``tau_stderr``: True (default) takes the errors as exact and gives the
        known-variance normal intervals; False rescales the covariance by the reduced
        chi-square and uses Student t with ``n - 2`` degrees of freedom (as
        ``scipy.optimize.curve_fit``'s ``absolute_sigma``). Unweighted fits always use t.
    time_unit : str, optional
        Unit of ``tau``; recorded only.

    Returns
    -------
    ArrheniusFit
        With ``y_i = ln tau_i - ln prefactor_i + p ln x_i`` and weights ``w_i``
        (1 when unweighted), ``slope = sum w (x - xbar)(y - ybar) / Sxx``,
        ``Sxx = sum w (x - xbar)^2`` (weighted means), ``intercept = ybar - slope xbar``;
        ``Var slope = s2 / Sxx``, ``Var intercept = s2 (1 / sum w + xbar^2 / Sxx)``, with
        ``s2 = 1`` for absolute errors and ``s2 = sum w r^2 / (n - 2)`` otherwise.

    Notes
    -----
    The MLE of an exponential tau from ``d`` escapes has ``E ln tau_hat ~ ln tau - 1/(2d)``;
    with equal ``d`` at every point this shifts only the intercept.
    """
    xs = as_float_array(x, "x")
    if xs.ndim != 1:
        raise ValueError(f"x must be a 1-D array, got shape {xs.shape}")
    if np.any(xs <= 0):
        raise ValueError(f"x must be > 0 (1/T or batch_size/lr), got minimum {xs.min()!r}")
    taus = as_float_array(tau, "tau")
    if taus.shape != xs.shape:
        raise ValueError(f"x and tau must have the same length, got x {xs.shape} and tau {taus.shape}")
    if np.any(taus <= 0):
        raise ValueError(f"tau must be > 0, got minimum {taus.min()!r}")
    n = int(xs.size)
    se = _optional_positive(tau_stderr, "tau_stderr", n)
    pref = _optional_positive(prefactor, "prefactor", n)
    if isinstance(temperature_power, bool) or not isinstance(temperature_power, numbers.Real) \
            or not np.isfinite(temperature_power):
        raise ValueError(f"temperature_power must be a finite real number, got {temperature_power!r}")
    p = float(temperature_power)
    check_choice(x_is, "x_is", _X_IS)
    conf = check_confidence(confidence)
    if not isinstance(absolute_sigma, (bool, np.bool_)):
        raise ValueError(f"absolute_sigma must be True or False, got {absolute_sigma!r}")
    absolute_sigma = bool(absolute_sigma)
    unit = check_time_unit(time_unit)
    known_variance = se is not None and absolute_sigma
    min_points = 2 if known_variance else 3
    if n < min_points:
        raise ValueError(f"x and tau must have at least {min_points} points "
                         f"({'known' if known_variance else 'estimated'} variance), got {n}")
    if np.ptp(xs) == 0:
        raise ValueError("x must take at least 2 distinct values")
    from scipy.special import chdtrc, ndtri, stdtrit

    y = np.log(taus) + p * np.log(xs)
    if pref is not None:
        y = y - np.log(pref)
    w = np.ones(n) if se is None else (taus / se) ** 2
    sw = w.sum()
    xbar = np.dot(w, xs) / sw
    ybar = np.dot(w, y) / sw
    dx = xs - xbar
    sxx = np.dot(w, dx * dx)
    slope = np.dot(w, dx * (y - ybar)) / sxx
    intercept = ybar - slope * xbar
    resid = y - (intercept + slope * xs)
    ss_res = float(np.dot(w, resid * resid))
    ss_tot = float(np.dot(w, (y - ybar) ** 2))
    dof = n - 2
    if known_variance:
        s2 = 1.0
        q = ndtri(0.5 * (1.0 + conf))
        chi2 = ss_res
        chi2_p = float(chdtrc(dof, chi2)) if dof > 0 else None
    else:
        s2 = ss_res / dof
        q = stdtrit(dof, 0.5 * (1.0 + conf))
        chi2 = chi2_p = None
    cov = s2 * np.array([[1.0 / sw + xbar ** 2 / sxx, -xbar / sxx], [-xbar / sxx, 1.0 / sxx]])
    ise, sse = (float(v) for v in np.sqrt(np.diag(cov)))
    slope, intercept, q = float(slope), float(intercept), float(q)
    return ArrheniusFit(
        x=xs.copy(), tau=taus.copy(), tau_stderr=se, prefactor=pref, temperature_power=p, x_is=x_is,
        confidence=conf, absolute_sigma=absolute_sigma, time_unit=unit,
        n_points=n, slope=slope, slope_stderr=sse, slope_ci=(slope - q * sse, slope + q * sse),
        intercept=intercept, intercept_stderr=ise, intercept_ci=(intercept - q * ise, intercept + q * ise),
        covariance=cov, ci_method="normal" if known_variance else "t", dof=dof,
        r_squared=(1.0 - ss_res / ss_tot) if ss_tot > 0 else None, chi2=chi2, chi2_pvalue=chi2_p,
        residuals=resid,
    )
