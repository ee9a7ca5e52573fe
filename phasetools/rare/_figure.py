"""The survival/level figure of an AMS estimate."""

from __future__ import annotations

import numpy as np

__all__ = ["level_figure"]


def level_figure(res, path):
    """The AMS levels over the iterations of each run, and the estimated ``P(reach level)``.

    Parameters
    ----------
    res : phasetools.rare.AMSEscape
        The result (its ``levels`` record).
    path : str
        PNG file to write.
    """
    # no pyplot: the caller's backend is left alone
    from matplotlib.figure import Figure

    sign = 1.0 if res.direction == "up" else -1.0
    fig = Figure(figsize=(9, 3.6))
    a, b = fig.subplots(1, 2)
    for r in range(res.n_runs):
        z, prob = res.level_curve(r)
        a.plot(np.arange(1, z.size + 1), sign * z, lw=0.7, alpha=0.6)
        b.step(sign * z, prob, where="post", color="0.6", lw=0.6, alpha=0.6)
    z, prob = res.level_curve()
    b.step(sign * z, prob, where="post", color="C3", lw=1.8, label="mean over runs")
    b.plot([sign * res.target], [res.p], "k*", ms=10, label=f"p = P(B before A) = {res.p:.3g}")
    for ax in (a, b):
        kw = dict(color="k", ls=":", lw=0.8)
        (ax.axhline if ax is a else ax.axvline)(sign * res.target, **kw)
        (ax.axhline if ax is a else ax.axvline)(sign * res.level, **{**kw, "ls": "--"})
    a.set_xlabel("AMS iteration")
    a.set_ylabel(f"level of {res.order} (dashed: Sigma, dotted: target)")
    a.set_title(f"levels of {res.n_runs} runs")
    b.set_yscale("log")
    b.set_xlabel(f"level z of {res.order}")
    b.set_ylabel("P(excursion from Sigma reaches z)")
    b.set_title(f"tau = {res.tau:.3g} [{res.tau_lower:.3g}, {res.tau_upper:.3g}]")
    b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
