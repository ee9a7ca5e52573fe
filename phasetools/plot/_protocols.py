"""Figures of the training protocols (E1, E2, E4, E5)."""

from __future__ import annotations

import numpy as np

from .._progress import plus_minus
from ._figures import Plot, _new

__all__ = ["weight_decay_sweep", "trapping", "escape_sweep", "grokking", "trap_title", "escape_label"]


def weight_decay_sweep(sweeps, *, axes=None, spinodals=None, labels=None) -> Plot:
    """E1: test MSE (top) and rank (bottom) against the weight decay, one line per sweep and seed.

    Parameters
    ----------
    sweeps : WeightDecaySweep or list of WeightDecaySweep
        From :func:`phasetools.training.weight_decay_sweep`.
    axes : pair of matplotlib Axes, optional
        Draw here instead of on a new figure.
    spinodals : sequence of float, optional
        Weight decays drawn as vertical lines (the theory's spinodals).
    labels : sequence of str, optional
        One legend label per sweep.

    Returns
    -------
    Plot
    """
    if not isinstance(sweeps, (list, tuple)):
        sweeps = [sweeps]
    if axes is None:
        fig, axes = _new(nrows=2, figsize=(6.4, 5.6), sharex=True)
    else:
        fig = axes[0].figure
    top, bottom = axes
    for k, sw in enumerate(sweeps):
        y = sw.test_mse if sw.test_mse is not None else sw.train_mse
        name = labels[k] if labels else f"{sw.direction} sweep"
        for s in range(sw.n_seeds):
            marker = "o-" if sw.direction == "increasing" else "s--"
            (line,) = top.plot(sw.weight_decays, y[s], marker, ms=3, lw=1, label=name if s == 0 else None)
            bottom.plot(sw.weight_decays, sw.rank[s] + 0.04 * (k - (len(sweeps) - 1) / 2), marker, ms=3, lw=1,
                        color=line.get_color())
    for b in np.atleast_1d(spinodals if spinodals is not None else []):
        for ax in axes:
            ax.axvline(float(b), color="k", ls=":", lw=1)
    if spinodals is not None:
        top.plot([], [], "k:", lw=1, label="spinodals (theory)")
    top.set_ylabel("test MSE" if sweeps[0].test_mse is not None else "train MSE")
    bottom.set_ylabel("rank of the end-to-end map")
    bottom.set_xlabel(rf"weight decay $\beta$ ({sweeps[0].convention.name} convention)")
    bottom.set_yticks(range(0, int(max(int(s.rank.max()) for s in sweeps)) + 1))
    top.set_title("E1: quasi-static weight-decay sweeps (hysteresis)", fontsize=10)
    top.legend(fontsize=7)
    return Plot(fig, tuple(axes))


def trapping(release, *, ax=None, max_seeds=20, label=None) -> Plot:
    """E2: test MSE against epochs after the release, per seed, with the plateau, target and
    midpoint levels and the reference runs from fresh weights (grey).

    Parameters
    ----------
    release : TrapRelease
        From :func:`phasetools.training.trap_and_release`.
    ax : matplotlib Axes, optional
        Draw here instead of on a new figure.
    max_seeds : int
        Draw at most this many seeds.
    label : str, optional
        Accepted for call compatibility; not drawn.

    Returns
    -------
    Plot
    """
    fig, (axis,) = _new(ax)
    ep = np.maximum(release.log_epochs, 0.5)
    for s in range(min(release.reference_test_mse.shape[0], max_seeds)):
        axis.plot(ep, release.reference_test_mse[s], color="0.7", lw=0.8,
                  label="fresh weights (protocol i)" if s == 0 else None)
    for s in range(min(release.n_seeds, max_seeds)):
        axis.plot(ep, release.test_mse[s], lw=0.8, color="C0", alpha=0.7,
                  label=(label or "released checkpoints") if s == 0 else None)
    for level, name, style in ((release.plateau_level, "plateau", "--"), (release.target_level, "target", "-."),
                               (release.midpoint, "midpoint (escape threshold)", ":")):
        axis.axhline(level, color="k", ls=style, lw=1, label=f"{name} {level:.3f}")
    axis.set_xscale("log")
    axis.set_xlabel("epochs after the release (epoch 0 drawn at 0.5)")
    axis.set_ylabel("test MSE")
    axis.set_title(f"{trap_title(release)}\n({int(release.escaped_mse[release.trapped].sum())} of "
                   f"{int(release.trapped.sum())} trapped seeds escaped)", fontsize=9)
    axis.legend(fontsize=7)
    return Plot(fig, (axis,))


def trap_title(release) -> str:
    """The E2 title: what the trap is (the preparation's weight decays in turn) and the release.

    Parameters
    ----------
    release : TrapRelease

    Returns
    -------
    str
        E.g. ``"E2: trapped by training at weight decay 0, then 0.392 (preparation); released at
        weight decay 0.32"``.
    """
    tb = release.trap_weight_decays
    trap = (f"trapped by training at weight decay {', then '.join(f'{b:.3g}' for b in tb)} (preparation)"
            if tb else "trapped checkpoint given")
    return f"E2: {trap}; released at weight decay {release.target_weight_decay:g}"


def escape_sweep(sweep, *, ax=None, x="batch_size/lr") -> Plot:
    """E4: ln tau (Langevin time) against ``batch_size/lr`` (or 1/T_eff), censored points as
    lower bounds, with the Arrhenius fit when two points have escapes.

    Parameters
    ----------
    sweep : ArrheniusSweep
        From :func:`phasetools.training.arrhenius_sweep` (SGD training, not the Langevin
        :class:`phasetools.langevin.EscapeSweep`, which :func:`arrhenius` draws).
    ax : matplotlib Axes, optional
        Draw here instead of on a new figure.
    x : {"batch_size/lr", "inverse_temperature"}
        The abscissa.

    Returns
    -------
    Plot
    """
    fig, (axis,) = _new(ax)
    xs = sweep.batch_size / sweep.lr if x == "batch_size/lr" else 1.0 / sweep.temperature
    ok = np.isfinite(sweep.tau_time)
    lo = np.log(sweep.tau_time[ok]) - np.log(sweep.tau_time_low[ok])
    hi = np.log(sweep.tau_time_high[ok]) - np.log(sweep.tau_time[ok])
    axis.errorbar(xs[ok], np.log(sweep.tau_time[ok]), yerr=[lo, np.where(np.isfinite(hi), hi, 0)], fmt="o",
                  capsize=3, label="SGD (censoring-aware MLE, 95%)")
    if (~ok).any():
        axis.plot(xs[~ok], np.log(sweep.tau_time_low[~ok]), "^", color="C3",
                  label="no escape: lower bound (95%)")
    try:
        fit = sweep.fit(x if x == "batch_size/lr" else "inverse_temperature")
        xx = np.linspace(xs[ok].min(), xs[ok].max(), 50)
        axis.plot(xx, fit.intercept + fit.slope * xx, "-", label=f"fit: slope {plus_minus(fit.slope, fit.slope_stderr)}")
    except ValueError:
        pass
    axis.set_xlabel("batch_size / lr" if x == "batch_size/lr" else "1 / T_eff")
    axis.set_ylabel(f"ln tau (Langevin time lr x steps, {sweep.convention.name} units)")
    axis.set_title(f"E4: escape times at weight decay {sweep.target_weight_decay:g}", fontsize=10)
    axis.legend(fontsize=7)
    return Plot(fig, (axis,))


def escape_label(result) -> str:
    """The E5 escape definition, for axes and legends.

    Parameters
    ----------
    result : SparseGrokking

    Returns
    -------
    str
        ``"escape: sigma_2 > 0.001 (second singular value of the end-to-end map)"``.
    """
    return f"escape: $\\sigma_2$ > {result.sv_threshold:g} (2nd singular value of the end-to-end map)"


def grokking(result, *, axes=None) -> Plot:
    """E5: train and test MSE against epochs for the releases (top) and the escape epoch
    against the residual seed (bottom; censored runs at the budget as open markers).

    Parameters
    ----------
    result : SparseGrokking
        From :func:`phasetools.training.sparse_grokking`.
    axes : pair of matplotlib Axes, optional
        Draw here instead of on a new figure.

    Returns
    -------
    Plot
    """
    if axes is None:
        fig, axes = _new(nrows=2, figsize=(6.4, 6.0))
    else:
        fig = axes[0].figure
    top, bottom = axes
    ep = np.maximum(result.log_epochs, 0.5)
    shown, marked = 0, False
    for i in np.argsort(result.seed_size)[::-1]:
        if not result.trapped[i] or shown >= 6:
            continue
        shown += 1
        (line,) = top.plot(ep, result.test_mse[i], lw=1,
                           label=f"seed {result.seed_size[i]:.2g}, B = {result.batch_size[i]}")
        top.plot(ep, result.train_mse[i], lw=0.8, ls="--", color=line.get_color())
        if result.escaped[i]:   # the escape (sigma_2 crossing), marked on the test-MSE curve
            k = int(np.searchsorted(result.log_epochs, result.escape_epoch[i]))
            k = min(k, result.log_epochs.size - 1)
            top.plot(ep[k], result.test_mse[i][k], "v", ms=6, color=line.get_color(),
                     label=None if marked else escape_label(result))
            marked = True
    top.set_xscale("log")
    top.set_xlabel("epochs (solid: test MSE, dashed: train MSE)")
    top.set_ylabel("MSE")
    top.set_title(f"E5: {result.n_train} training samples, weight decay {result.weight_decay:g}, lr = {result.lr:g}"
                  f"\nescape = first epoch with $\\sigma_2$ > {result.sv_threshold:g} (marked on the curves)",
                  fontsize=9)
    top.legend(fontsize=7)
    for B in np.unique(result.batch_size):
        sel = (result.batch_size == B) & result.trapped
        fb = "full batch" if B >= result.n_train else "minibatch"
        esc = sel & result.escaped
        cen = sel & ~result.escaped
        (pt,) = bottom.plot(result.seed_size[esc], result.escape_epoch[esc], "o", label=f"B = {B} ({fb})")
        bottom.plot(result.seed_size[cen], np.full(cen.sum(), result.epochs), "o", mfc="none",
                    color=pt.get_color())
    bottom.set_xscale("log")
    bottom.set_yscale("log")
    bottom.set_xlabel("residual seed (geometric mean of the layers' 2nd singular value)")
    bottom.set_ylabel(f"escape epoch (first $\\sigma_2$ > {result.sv_threshold:g})\n(open: none within the budget)")
    bottom.legend(fontsize=7)
    return Plot(fig, tuple(axes))
