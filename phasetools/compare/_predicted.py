"""Predicted against measured escape times, censoring-aware, with the ablation of each ingredient.

A measured point is the exponential MLE of its seeds' escape times
(:func:`phasetools.stats.exponential_mle`): seeds that did not escape enter as right-censored,
and a point where **no** seed escaped is only a lower bound ``tau > tau_lower``. A point
*agrees* with a prediction when ``1/factor <= measured / predicted <= factor``; a lower bound
agrees when ``predicted * factor >= tau_lower`` (the measurement cannot contradict a larger
prediction; an infinite prediction, "never", agrees with every lower bound and with no
finite measurement), and disagrees otherwise.

Each point may carry several predictions (the model, and the models it is ablated against:
Gaussian moments, no coupling, the isotropic temperature); :meth:`PredictedVsMeasured.ablation`
summarises each column.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._validation import check_scalar
from ..results import Result, register
from ._verdict import AGREES, DISAGREES

__all__ = ["PredictedVsMeasured", "predicted_vs_measured", "MeasuredPoint"]


@dataclass(frozen=True)
class MeasuredPoint:
    """One measured set-up beside its predictions.

    Parameters
    ----------
    label : str
        The set-up (e.g. ``"draw 1, wd 0.35, lr 0.1, B 16"``).
    regime : str
        Which prediction regime (``"sgd_replacement"``, ``"plateau"``, ...).
    fit : phasetools.stats.ExponentialFit, or (tau, low, high)
        The measurement: an exponential fit (censoring-aware), or a deterministic time with
        its range (``tau`` None for a lower bound ``low``).
    predictions : dict of str -> float
        Predicted ``tau`` per model name, in the unit of the measurement (the first is the
        model; the others are ablations or contrasts).
    scale : float
        Multiplies the fit's times (e.g. ``lr * steps_per_epoch`` to go from epochs to time).
    """

    label: str
    regime: str
    fit: object
    predictions: dict
    scale: float = 1.0


def _measured(fit, scale):
    """``(tau, low, high, lower_only)`` of a fit or a tuple, scaled."""
    if isinstance(fit, tuple):
        tau, lo, hi = fit
        return (np.nan if tau is None else tau * scale, lo * scale, hi * scale, tau is None)
    if fit.tau is None:
        return np.nan, fit.tau_lower * scale, np.inf, True
    lo, hi = fit.tau_ci if fit.tau_ci is not None else (fit.tau_lower, np.inf)
    return fit.tau * scale, lo * scale, hi * scale, False


@register
@dataclass(frozen=True, eq=False, repr=False)
class PredictedVsMeasured(Result):
    """Predicted against measured ``tau`` per point, for every model column.

    Parameters
    ----------
    label, regime : numpy.ndarray of str
        Per point.
    models : numpy.ndarray of str
        Model names (columns); the first is the prediction under test.
    predicted : numpy.ndarray (point, model)
        Predicted ``tau`` (NaN where a model gives none).
    measured, measured_low, measured_high : numpy.ndarray
        Per point: the MLE ``tau`` (NaN for a lower bound) and its interval (``measured_low``
        is the one-sided bound where nothing escaped).
    lower_bound : numpy.ndarray of bool
        Per point: nothing escaped, only ``measured_low`` is known.
    factor : float
        The agreement band.
    unit : str
        Unit of every time.
    """

    label: np.ndarray
    regime: np.ndarray
    models: np.ndarray
    predicted: np.ndarray
    measured: np.ndarray
    measured_low: np.ndarray
    measured_high: np.ndarray
    lower_bound: np.ndarray
    factor: float
    unit: str

    _config_fields = ("factor", "unit")
    _dims = {"label": ("point",), "regime": ("point",), "models": ("model",), "predicted": ("point", "model"),
             "measured": ("point",), "measured_low": ("point",), "measured_high": ("point",),
             "lower_bound": ("point",)}

    def ratio(self, model=None) -> np.ndarray:
        """``measured / predicted`` per point (NaN for lower bounds).

        Parameters
        ----------
        model : str, optional
            A column (default the first).

        Returns
        -------
        numpy.ndarray
        """
        return self.measured / self.predicted[:, self._col(model)]

    def outcomes(self, model=None) -> np.ndarray:
        """Per point ``"agrees"`` or ``"disagrees"`` (see the module docstring; censoring-aware).

        Parameters
        ----------
        model : str, optional
            As in :meth:`ratio`.

        Returns
        -------
        numpy.ndarray of str
        """
        p = self.predicted[:, self._col(model)]
        with np.errstate(invalid="ignore", divide="ignore"):
            r = self.measured / p
            ok = np.where(self.lower_bound, p * self.factor >= self.measured_low,
                          (r >= 1 / self.factor) & (r <= self.factor))
        return np.where(~np.isnan(p) & ok, AGREES, DISAGREES)

    def ablation(self, regime=None) -> list:
        """One row per model: ``(model, n_agree, n_points, median ratio, max |log10 ratio|)``.

        Only the points where the model gives a prediction count (``n_points``); the ratios
        leave out lower bounds.

        Parameters
        ----------
        regime : str, optional
            Only the points of this regime.

        Returns
        -------
        list of tuple
        """
        sel = np.ones(self.label.size, dtype=bool) if regime is None else (self.regime == regime)
        rows = []
        for m in self.models:
            has = sel & ~np.isnan(self.predicted[:, self._col(m)])
            r = self.ratio(m)[has]
            fin = np.isfinite(r) & (r > 0)
            med = float(np.median(r[fin])) if fin.any() else np.nan
            worst = float(np.max(np.abs(np.log10(r[fin])))) if fin.any() else np.nan
            rows.append((str(m), int(np.sum(self.outcomes(m)[has] == AGREES)), int(has.sum()), med, worst))
        return rows

    def table(self, regime=None) -> str:
        """The ablation as a markdown table.

        Parameters
        ----------
        regime : str, optional
            As in :meth:`ablation`.

        Returns
        -------
        str
        """
        lines = [f"| model | within x{self.factor:g} | median measured/predicted | worst factor |", "|---|---|---|---|"]
        for m, k, n, med, worst in self.ablation(regime):
            if n:
                lines.append(f"| {m} | {k}/{n} | {med:.3g} | {10 ** worst:.3g} |")
        return "\n".join(lines)

    def _col(self, model):
        if model is None:
            return 0
        names = [str(m) for m in self.models]
        if model not in names:
            raise ValueError(f"model must be one of {', '.join(names)}, got {model!r}")
        return names.index(model)

    def __repr__(self):
        k = int(np.sum(self.outcomes() == AGREES))
        return (f"PredictedVsMeasured({self.label.size} points, {k} within x{self.factor:g} of "
                f"{self.models[0]!s}, unit={self.unit!r})")


def predicted_vs_measured(points, *, factor=2.0, unit="time") -> PredictedVsMeasured:
    """Tabulate measured points beside their predictions.

    Parameters
    ----------
    points : sequence of MeasuredPoint
        Every point names the same models (a missing one is NaN).
    factor : float > 1
        The agreement band.
    unit : str
        Unit of the times (recorded).

    Returns
    -------
    PredictedVsMeasured
    """
    pts = list(points)
    if not pts or not all(isinstance(p, MeasuredPoint) for p in pts):
        raise ValueError("points must be a non-empty sequence of MeasuredPoint")
    factor = check_scalar(factor, "factor", positive=True)
    if factor <= 1:
        raise ValueError(f"factor must be > 1, got {factor!r}")
    models = list(dict.fromkeys(k for p in pts for k in p.predictions))
    pred = np.array([[float(p.predictions.get(m, np.nan)) for m in models] for p in pts])
    meas = np.array([_measured(p.fit, p.scale) for p in pts], dtype=object)
    return PredictedVsMeasured(
        label=np.array([p.label for p in pts]), regime=np.array([p.regime for p in pts]), models=np.array(models),
        predicted=pred, measured=meas[:, 0].astype(float), measured_low=meas[:, 1].astype(float),
        measured_high=meas[:, 2].astype(float), lower_bound=meas[:, 3].astype(bool), factor=factor, unit=str(unit))
