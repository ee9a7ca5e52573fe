"""Predicted against measured escape and plateau times (log-log, factor band, contrasts)."""

from __future__ import annotations

import numpy as np

from ._figures import Plot, _new

__all__ = ["predicted_vs_measured"]

_MARKERS = ("o", "s", "D", "v", "P", "X")


def predicted_vs_measured(table, *, ax=None, models=None) -> Plot:
    """Measured ``tau`` against predicted ``tau`` on log-log axes, one marker per model column.

    The diagonal and the ``table.factor`` band around it; the first model is drawn filled with
    the measurement's interval, the others (ablations, the isotropic-temperature contrast)
    hollow. A point where nothing escaped is drawn at its lower bound with an upward triangle.
    Predictions outside the plotted range (e.g. the isotropic ``T_eff`` at 1e10) sit on the
    right edge with a ``>`` marker and their largest value in the legend. Colours are models,
    marker shapes regimes; the legend sits to the right of the axes.

    Parameters
    ----------
    table : phasetools.compare.PredictedVsMeasured
        From :func:`phasetools.compare.predicted_vs_measured`.
    ax : matplotlib Axes, optional
        Draw here instead of on a new figure.
    models : sequence of str, optional
        The columns to draw (default: all).

    Returns
    -------
    Plot
    """
    fig, (axis,) = _new(ax, figsize=(8.6, 5.0))
    names = [str(m) for m in table.models] if models is None else list(models)
    y = np.where(table.lower_bound, table.measured_low, table.measured)
    span = np.concatenate([y[np.isfinite(y) & (y > 0)], table.predicted[:, 0][np.isfinite(table.predicted[:, 0])]])
    top = 10 ** np.ceil(np.log10(span.max() * 3))
    bottom = 10 ** np.floor(np.log10(span.min() / 3))
    xx = np.array([bottom, top])
    axis.plot(xx, xx, "k-", lw=0.8)
    axis.fill_between(xx, xx / table.factor, xx * table.factor, color="0.85", label=f"within x{table.factor:g}")
    regimes = list(dict.fromkeys(str(r) for r in table.regime))
    for j, name in enumerate(names):
        _draw_model(axis, table, j, name, regimes, top)
    for r_i, reg in enumerate(regimes):     # the marker of each regime
        axis.plot([], [], marker=_MARKERS[r_i % len(_MARKERS)], ls="none", color="k", label=reg)
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlim(bottom, top)
    axis.set_ylim(bottom, top)
    axis.set_xlabel(f"predicted tau ({table.unit})")
    axis.set_ylabel(f"measured tau ({table.unit})")
    axis.set_title("Predicted against measured escape and plateau times", fontsize=10)
    handles, labels = axis.get_legend_handles_labels()
    first = [k for k, lab in enumerate(labels) if lab.startswith(names[0])]   # the prediction first
    order = first + [k for k in range(len(labels)) if k not in first]
    axis.legend([handles[k] for k in order], [labels[k] for k in order], fontsize=7, loc="upper left",
                bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    return Plot(fig, (axis,))


def _draw_model(axis, table, j, name, regimes, top):
    """One model column: the first filled with error bars, the others hollow; lower bounds as triangles."""
    meas, lo, hi, lb = table.measured, table.measured_low, table.measured_high, table.lower_bound
    p = table.predicted[:, table._col(name)]
    off = ~np.isnan(p) & ~lb & (p > top)          # beyond the axes, or "never" (inf): at the right edge
    big = p[off & np.isfinite(p)]
    label = name + (f" (off scale: up to {np.max(big):.0e})" if big.size else "")
    label += " (never)" if (off & np.isinf(p)).any() else ""
    for r_i, reg in enumerate(regimes):
        sel = (table.regime == reg) & ~np.isnan(p) & ~lb
        inr = sel & ~off
        kw = dict(marker=_MARKERS[r_i % len(_MARKERS)], ls="none", color=f"C{j}")
        if j == 0 and inr.any():
            err = np.array([meas[inr] - lo[inr], np.where(np.isfinite(hi[inr]), hi[inr] - meas[inr], 0)])
            axis.errorbar(p[inr], meas[inr], yerr=err, capsize=2, label=label, **kw)
            label = None
        elif inr.any():
            axis.plot(p[inr], meas[inr], mfc="none", label=label, **kw)
            label = None
        if (sel & off).any():
            axis.plot(np.full((sel & off).sum(), top / 1.5), meas[sel & off], mfc="none", label=label,
                      **{**kw, "marker": ">"})
            label = None
    sel_lb = lb & ~np.isnan(p)
    if sel_lb.any():
        x = np.minimum(p[sel_lb], top / 1.5)
        if j == 0:
            axis.plot(x, lo[sel_lb], "^", color="C3",
                      label="nothing escaped: lower bound (at the right edge: predicted never)")
        else:
            axis.plot(x, lo[sel_lb], "^", mfc="none", color=f"C{j}", label=label)
