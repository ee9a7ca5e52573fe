"""The reproduction's figures (written into the output folder next to ``report.md``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._e4 import MSE_RULE, by_test_mse, rule_name
from ._experiments import ETA
from ._report import _chain_points, _chain_theory_tau, _last_finite

__all__ = ["FIGURES", "figures"]

#: The figures every report embeds (file name -> caption).
FIGURES = {
    "n12_noise.png": "N12: per-sample gradient-noise variance on each layer's direction of the unlearned (weak) "
                     "feature at the trapped rank-1 state against the residual seed, with the weight-decay pull "
                     "squared; right: runs escaped per driver (pure SGD with and without replacement, full batch, "
                     "injected noise).",
    "e5_seed_curve.png": "E5: full-batch plateau length against the residual seed (the paper's 1500 epochs dashed).",
    "phase_diagram.png": "Theory: energies of the top-m states against the weight decay; the hysteresis loop between "
                         "the spinodals (increasing) and the trivial branch (decreasing).",
    "e1_sweeps.png": "E1: quasi-static sweeps up and down on population data with the theory's spinodals.",
    "e1_draws.png": "E1: increasing sweeps on independent N = 512 draws (finite-sample scatter of the drops).",
    "e2_trapping.png": "E2: rank-1 checkpoints released at beta = 0.32 (corrected trap), with fresh-weight runs.",
    "survival.png": "Langevin: survival of the 3-weight chain at each temperature, against Eyring-Kramers.",
    "arrhenius.png": "Arrhenius: ln tau against 1/T for the chain (theory line; the paper's barrier 0.003 and "
                     "the equations' 0.02845), and SGD escape times (E4 corrected) against 1/T_eff.",
    "e4_escape_sweep.png": "E4 corrected: SGD escape (rank 2 -> 1) against batch_size/lr, by the escape rule "
                           "stored with the sweep (the title names it); open grey markers: the same releases by "
                           "the paper's test-MSE midpoint rule, which counts short excursions under reshuffling.",
    "e5_grokking.png": "E5: sparse sub-sampling, test/train MSE and escape epoch against the residual seed.",
    "escape_scatter.png": "Measured against predicted escape times: Langevin chain (Eyring-Kramers) and SGD "
                          "(width-1 Eyring-Kramers at the isotropic T_eff).",
}


def figures(R, out: Path) -> list:
    """Draw the figures of :data:`FIGURES` that ``R`` has results for into ``out``; returns
    the paths written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import phasetools.plot as pp
    import phasetools.theory as th
    written = []

    def save(plot, name):
        written.extend(plot.save(Path(out) / name))
        plt.close(plot.figure)

    gammas = np.linspace(0.0, 0.5, 201)
    save(pp.cascade(th.phase_diagram(3, list(ETA), gammas, convention="paper")), "phase_diagram.png")
    sp = R["theory_critical"].gamma_sp if "theory_critical" in R else None
    if "e1_up" in R and "e1_down" in R:
        save(pp.weight_decay_sweep([R["e1_up"], R["e1_down"]], spinodals=sp), "e1_sweeps.png")
    if "e1_draws" in R:
        d = R["e1_draws"]
        save(pp.weight_decay_sweep(d, spinodals=sp, labels=[f"draw {k}" for k in range(len(d))]), "e1_draws.png")
    if "e2_rank1" in R:
        save(pp.trapping(R["e2_rank1"]), "e2_trapping.png")
    if "langevin_ensembles" in R:
        ens = R["langevin_ensembles"]
        save(pp.survival(ens, theory_tau=[_chain_theory_tau(e.temperature) for e in ens]), "survival.png")
    save(_arrhenius_figure(R), "arrhenius.png")
    if "e4_corrected" in R:
        save(_e4_sweep_figure(R["e4_corrected"]), "e4_escape_sweep.png")
    if "e5" in R and R["e5"].trapped.any():
        save(pp.grokking(R["e5"]), "e5_grokking.png")
    save(escape_scatter_figure(R), "escape_scatter.png")
    if "n12_noise" in R and "n12_runs" in R:
        save(_n12_figure(R["n12_noise"], R["n12_runs"]), "n12_noise.png")
    if "e5" in R:
        save(_seed_curve(R["e5"]), "e5_seed_curve.png")
    return written


def _n12_figure(noise, runs):
    from ..plot import Plot
    import matplotlib.pyplot as plt
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4.2), layout="constrained")
    s = np.asarray(noise["seeds"], dtype=float)
    ok = s > 0
    for k, p in enumerate(noise.array("projection")):
        a1.loglog(s[ok], p[ok], "o-", label=f"noise variance, layer {k + 1}")
    a1.loglog(s[ok], (noise["weight_decay"] * s[ok]) ** 2, "k--", label="(weight decay x seed)^2")
    a1.axvline(noise["seed_saddle"], color="C3", ls=":", label="saddle seed")
    a1.set_xlabel("residual seed eps (per layer)")
    a1.set_ylabel("p^T Sigma p")
    a1.legend(fontsize=7)
    a1.set_title("gradient noise on the unlearned feature (exactly 0 at eps = 0)", fontsize=9)
    d = runs["drivers"]
    labels = [f"eps {x['seed']:g}, {x['sampling']}" + (f", T {x['temperature']:g}" if x["temperature"] else "")
              for x in d]
    frac = [x["escaped"] / x["n_runs"] for x in d]
    a2.barh(range(len(d)), frac, color=["C3" if x["temperature"] else "C0" for x in d])
    a2.set_yticks(range(len(d)), labels, fontsize=7)
    a2.set_xlim(0, 1)
    a2.set_xlabel(f"fraction escaped in {runs['epochs']} epochs")
    a2.set_title("what starts the escape (red: injected noise)", fontsize=9)
    return Plot(fig, (a1, a2))


def _seed_curve(e5):
    from ..plot import Plot
    fig, (ax,) = _new(figsize=(5.6, 4.2))
    sel = e5.trapped & e5.full_batch & e5.escaped
    if sel.any():
        ax.plot(e5.seed_size[sel], e5.escape_epoch[sel], "o", label="full batch (B >= N), escaped")
    cens = e5.trapped & e5.full_batch & ~e5.escaped
    if cens.any():
        ax.plot(e5.seed_size[cens], np.full(int(cens.sum()), float(e5.epochs)), "^", color="C3",
                label="no escape (budget)")
    ax.axhline(1500, color="k", ls="--", lw=1, label="paper: ~1500 epochs")
    if sel.any() or cens.any():
        ax.set_xscale("log")
        ax.set_yscale("log")
    else:
        ax.set_title("no trapped full-batch run", fontsize=9)
    ax.set_xlabel("residual seed (per layer)")
    ax.set_ylabel("plateau length (epochs)")
    ax.legend(fontsize=7)
    return Plot(fig, (ax,))


def _e4_sweep_figure(sw):
    """E4 corrected against batch_size/lr by the sweep's rule (title), the test-MSE rule's points beside it."""
    from .. import plot as pp
    p = pp.escape_sweep(sw)
    ax = p.axes[0]
    alt = by_test_mse(sw)
    if alt is not None and alt is not sw:
        xs = alt.batch_size / alt.lr
        ok = np.isfinite(alt.tau_time)
        ax.plot(xs[ok], np.log(alt.tau_time[ok]), "o", mfc="none", color="0.5", label=f"{MSE_RULE} (MLE)")
        if (~ok).any():
            ax.plot(xs[~ok], np.log(alt.tau_time_low[~ok]), "^", mfc="none", color="0.5",
                    label="test-MSE rule: no escape (lower bound)")
        ax.legend(fontsize=7)
    ax.set_title(f"E4 corrected at weight decay {sw.target_weight_decay:g}, sampling {sw.sampling!r}, "
                 f"{rule_name(sw)}", fontsize=9)
    return p


def _new(nrows=1, figsize=(6.4, 4.2)):
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(nrows, 1, figsize=figsize, squeeze=False, layout="constrained")
    return fig, tuple(axes[:, 0])


def _chain_panel(ax, f):
    x = np.asarray(f.x)
    ax.errorbar(x, np.log(f.tau), yerr=np.asarray(f.tau_stderr) / np.asarray(f.tau), fmt="o", capsize=3,
                label="Langevin chain (MLE)")
    xx = np.linspace(x.min(), x.max(), 50)
    ax.plot(xx, f.intercept + f.slope * xx, "-", label=f"fit: slope {f.slope:.4g} ± {f.slope_stderr:.2g}")
    ax.plot(xx, np.log([_chain_theory_tau(T) for T in 1 / xx]), "k:", label="Eyring-Kramers (barrier 0.02845)")
    mid = float(np.mean(x))
    y0 = float(f.intercept + f.slope * mid)
    ax.plot(xx, y0 + 0.003 * (xx - mid), "r--", lw=1, label="slope of the paper's barrier 0.003")


def _sgd_panel(ax, sw, theory_corrected):
    ok = np.isfinite(sw.tau_time)
    x = 1 / sw.temperature
    ax.plot(x[ok], np.log(sw.tau_time[ok]), "o", label=f"SGD, rank 2 -> 1 (E4 corrected, {rule_name(sw)})")
    if (~ok).any():
        ax.plot(x[~ok], np.log(sw.tau_time_low[~ok]), "^", color="C3", label="no escape (lower bound)")
    alt = by_test_mse(sw)
    if alt is not None and alt is not sw and np.isfinite(alt.tau_time).any():
        m = np.isfinite(alt.tau_time)
        ax.plot(x[m], np.log(alt.tau_time[m]), "o", mfc="none", color="0.5", label=MSE_RULE)
    if theory_corrected is not None and ok.any():
        barrier = _last_finite(theory_corrected.barrier_bwd)
        mid = float(np.mean(x[ok]))
        y0 = float(np.mean(np.log(sw.tau_time[ok])))
        xx = np.linspace(x.min(), x.max(), 50)
        ax.plot(xx, y0 + barrier * (xx - mid), "k:", label=f"slope = theory barrier {barrier:.3g}")
    try:
        f = sw.fit("inverse_temperature")
        xx = np.linspace(x[ok].min(), x[ok].max(), 50)
        ax.plot(xx, f.intercept + f.slope * xx, "-", label=f"fit: slope {f.slope:.3g} ± {f.slope_stderr:.2g}")
    except ValueError:
        pass


def _arrhenius_figure(R):
    from ..plot import Plot
    fig, (a1, a2) = _new(nrows=2, figsize=(6.4, 7.0))
    if "langevin_chain" in R:
        _chain_panel(a1, R["langevin_chain"])
    a1.set_xlabel("1 / T")
    a1.set_ylabel("ln tau (Langevin time, paper units)")
    a1.set_title("Langevin dynamics of the 3-weight chain: the slope is the barrier", fontsize=10)
    a1.legend(fontsize=7)
    if "e4_corrected" in R:
        _sgd_panel(a2, R["e4_corrected"], R.get("theory_corrected"))
    a2.set_xlabel("1 / T_eff (isotropic: lr tr Σ / (2 B N_θ))")
    a2.set_ylabel("ln tau (Langevin time lr x steps)")
    a2.set_title("SGD (E4 corrected): ln tau against the isotropic 1/T_eff; slope = barrier if T_eff is right",
                 fontsize=9)
    a2.legend(fontsize=7)
    return Plot(fig, (a1, a2))


def _sgd_predictions(R) -> list:
    """(predicted, measured) escape times of E4 corrected (width-1 Eyring-Kramers, isotropic T_eff)."""
    import phasetools.theory as th
    if "e4_corrected" not in R or "theory_corrected" not in R:
        return []
    sw, Lc = R["e4_corrected"], R["theory_corrected"]
    c = np.asarray(Lc.c, dtype=float).ravel()
    a = np.asarray(Lc.a, dtype=float).ravel() if np.ndim(Lc.a) else np.full(c.size, float(Lc.a))
    k = c.size - 1
    out = []
    for i in range(sw.lr.size):
        if not np.isfinite(sw.tau_time[i]):
            continue
        pred = float(th.eyring_kramers_time(3, c[k], sw.target_weight_decay, float(sw.temperature[i]), a[k],
                                            direction="bwd", convention="paper"))
        if np.isfinite(pred) and pred > 0:
            out.append((pred, sw.tau_time[i]))
    return out


def escape_scatter_figure(R):
    """Measured against predicted escape times: the Langevin chain and SGD (isotropic T_eff).

    Parameters
    ----------
    R : dict
        Experiment results by name, as :func:`phasetools.reproduce.collect` returns them
        (uses ``langevin_chain`` and the corrected E4 sweep when present).

    Returns
    -------
    phasetools.plot.Plot
        One log-log panel with the line measured = predicted.
    """
    from ..plot import Plot
    fig, (ax,) = _new(figsize=(5.6, 5.0))
    pts = []
    for p in _chain_points(R):
        if p.tau is not None:
            ax.errorbar(p.theory_tau, p.tau, yerr=p.tau_stderr, fmt="o", color="C0", capsize=2,
                        label="Langevin chain" if not pts else None)
            pts.append((p.theory_tau, p.tau))
    for j, (pred, tau) in enumerate(_sgd_predictions(R)):
        ax.plot(pred, tau, "s", color="C3",
                label=f"SGD (isotropic T_eff, {rule_name(R['e4_corrected'])})" if j == 0 else None)
        pts.append((pred, tau))
    if pts:
        lo = min(min(p) for p in pts) / 3
        hi = max(max(p) for p in pts) * 3
        ax.plot([lo, hi], [lo, hi], "k:", lw=1, label="measured = predicted")
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.set_xlabel("predicted escape time (Eyring-Kramers, Langevin time)")
    ax.set_ylabel("measured escape time (MLE, Langevin time)")
    ax.set_title("Theory against simulation and SGD", fontsize=10)
    ax.legend(fontsize=7)
    return Plot(fig, (ax,))
