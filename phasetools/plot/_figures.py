from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Plot", "potential", "barriers", "phase_diagram", "cascade", "levels", "survival", "arrhenius", "plot",
           "KINDS"]


@dataclass
class Plot:
    """A figure and its axes; ``save(path)`` writes PNG and/or PDF.

    Parameters
    ----------
    figure : matplotlib.figure.Figure
        The figure (restyle it freely before saving).
    axes : tuple of matplotlib Axes
        Its axes, top to bottom.
    """

    figure: object
    axes: tuple

    def save(self, path, *, dpi=150) -> list[Path]:
        """Write the figure to ``path`` (.png or .pdf); without a suffix write both.

        Parameters
        ----------
        path : str or Path
            Output file; its folder is created if needed.
        dpi : int
            Resolution of the PNG (default 150).

        Returns
        -------
        list of Path
            The files written.
        """
        path = Path(path)
        if path.suffix.lower() in (".png", ".pdf"):
            targets = [path]
        elif path.suffix == "":
            targets = [path.with_suffix(".png"), path.with_suffix(".pdf")]
        else:
            raise ValueError(f"path must end in .png or .pdf (or have no suffix for both), got {str(path)!r}")
        for t in targets:
            t.parent.mkdir(parents=True, exist_ok=True)
            self.figure.savefig(t, dpi=dpi, bbox_inches="tight")
        return targets


def _new(ax=None, nrows=1, figsize=(6.4, 4.2), sharex=False):
    import matplotlib.pyplot as plt

    if ax is not None:
        return ax.figure, (ax,)
    fig, axes = plt.subplots(nrows, 1, figsize=figsize, sharex=sharex, squeeze=False, layout="constrained")
    return fig, tuple(axes[:, 0])


def _coupling_label(conv):
    if conv.coupling == "gamma":
        return r"coupling $\gamma$ (canonical)"
    return rf"weight decay $\beta$ ({conv.name} convention)"


def _energy_label(conv, what="energy", relative=True):
    return f"{what} ({conv.name} units" + (", from the trivial state)" if relative else ")")


def _filled(x):
    return np.asarray(np.ma.filled(np.ma.asarray(x, dtype=float), np.nan), dtype=float)


# ---------------------------------------------------------------------------------------
def potential(landscape, *, ax=None, b_max=None, n_points=600) -> Plot:
    """The reduced potential ``U(b)`` for every point of a Landscape, stationary points marked.

    Parameters
    ----------
    landscape : phasetools.theory.Landscape
        One or more points (arrays of gamma or c); one curve per point.
    ax : matplotlib Axes, optional
        Draw here instead of on a new figure.
    b_max : float, optional
        Right end of the ``b`` axis (default 1.15 x the largest ``(c/a)^(1/n)``).
    n_points : int
        Points per curve.

    Returns
    -------
    Plot
        ``U(b)`` in the convention's energy units; open circles mark saddles, filled ones the
        learned minima.
    """
    from ..theory import compiled_potential

    L = landscape
    conv = L.convention
    shape = np.shape(L.gamma) if np.ndim(L.gamma) else np.shape(L.c)
    a = np.broadcast_to(np.asarray(L.a, dtype=float), shape).ravel()
    c = np.abs(np.broadcast_to(np.asarray(L.c, dtype=float), shape).ravel())
    g = np.broadcast_to(np.asarray(L.gamma, dtype=float), shape).ravel()
    b_s = np.broadcast_to(_filled(L.b_saddle), shape).ravel()
    b_m = np.broadcast_to(_filled(L.b_min), shape).ravel()
    pot = compiled_potential(L.n_layers)
    if b_max is None:
        b_max = 1.15 * float(np.max((c / a) ** (1.0 / L.n_layers)))
    b = np.linspace(0.0, b_max, n_points)
    fig, (axis,) = _new(ax)
    sym = "gamma" if conv.coupling == "gamma" else "beta"
    for i in range(g.size):
        g_can = conv.gamma_to_canonical(g[i])
        E = conv.energy_from_canonical(pot.U(b, a[i], c[i], g_can))
        (line,) = axis.plot(b, E, label=rf"$\{sym}$ = {g[i]:.4g}" + (f", c = {c[i]:.3g}" if np.ptp(c) else ""))
        for bb, marker, fill in ((b_s[i], "o", "white"), (b_m[i], "o", line.get_color())):
            if np.isfinite(bb):
                axis.plot([bb], [conv.energy_from_canonical(pot.U(bb, a[i], c[i], g_can))], marker,
                          color=line.get_color(), markerfacecolor=fill, markersize=6, zorder=3)
    axis.axhline(0.0, color="0.6", lw=0.8, zorder=0)
    axis.set_xlabel(r"per-layer weight $b = |w_i|$")
    axis.set_ylabel(_energy_label(conv, "U(b)"))
    axis.set_title(f"reduced potential, n_layers = {L.n_layers}  (open: saddle, filled: learned minimum)",
                   fontsize=9)
    marks = [0.0]
    for i in range(g.size):
        for bb in (b_s[i], b_m[i]):
            if np.isfinite(bb):
                marks.append(float(conv.energy_from_canonical(pot.U(bb, a[i], c[i], conv.gamma_to_canonical(g[i])))))
    lo, hi = min(marks), max(marks)
    span = max(hi - lo, 1e-3 * float(np.max(conv.energy_from_canonical(c**2 / a))))
    axis.set_ylim(lo - 0.25 * span, hi + 0.6 * span)
    axis.legend(fontsize=8, loc="upper left")
    return Plot(fig, (axis,))


def barriers(landscape, *, ax=None) -> Plot:
    """Forward and backward barrier heights against the coupling (a Landscape over gamma).

    Parameters
    ----------
    landscape : phasetools.theory.Landscape
        Computed over a 1-D array of gamma at fixed c and a (else ValueError).
    ax : matplotlib Axes, optional
        Draw here instead of on a new figure.

    Returns
    -------
    Plot
        Both barriers with the coexistence and spinodal couplings marked.
    """
    L = landscape
    g = np.atleast_1d(np.asarray(L.gamma, dtype=float))
    if g.ndim != 1 or g.size < 2 or np.ndim(L.c) > 0 and np.ptp(np.asarray(L.c, dtype=float)) > 0:
        raise ValueError("barriers needs a Landscape computed over a 1-D array of gamma at fixed c and a")
    from ..theory import critical_points

    conv = L.convention
    c0 = float(np.ravel(L.c)[0])
    a0 = float(np.ravel(L.a)[0])
    cp = critical_points(L.n_layers, c0, a0, convention=conv)
    order = np.argsort(g)
    fig, (axis,) = _new(ax)
    axis.plot(g[order], _filled(L.barrier_fwd)[order], label="forward (trivial -> learned)")
    axis.plot(g[order], _filled(L.barrier_bwd)[order], label="backward (learned -> trivial)")
    sym = r"\gamma" if conv.coupling == "gamma" else r"\beta"
    for val, name, style in ((cp.gamma_c, rf"${sym}_c$ coexistence", ":"), (cp.gamma_sp, rf"${sym}_{{sp}}$ spinodal", "--")):
        axis.axvline(val, color="0.3", ls=style, lw=1, label=f"{name} = {val:.4g}")
    axis.set_xlabel(_coupling_label(conv))
    axis.set_ylabel(_energy_label(conv, "barrier height", relative=False))
    axis.set_title(f"barriers of one mode (c = {c0:g}, a = {a0:g}, n_layers = {L.n_layers})", fontsize=10)
    axis.set_ylim(bottom=0)
    axis.legend(fontsize=8)
    return Plot(fig, (axis,))


def phase_diagram(critical, *, ax=None, gamma_max=None) -> Plot:
    """Phases of one mode over (feature strength, coupling) from CriticalPoints over an array of c.

    Parameters
    ----------
    critical : phasetools.theory.CriticalPoints
        Computed over a 1-D array of c (else ValueError).
    ax : matplotlib Axes, optional
        Draw here instead of on a new figure.
    gamma_max : float, optional
        Top of the coupling axis (default 1.15 x the largest spinodal).

    Returns
    -------
    Plot
        The three phases shaded between the coexistence and spinodal lines.
    """
    cp = critical
    c = np.abs(np.atleast_1d(np.asarray(cp.c, dtype=float)))
    if c.ndim != 1 or c.size < 2:
        raise ValueError("phase_diagram needs CriticalPoints computed over a 1-D array of c")
    order = np.argsort(c)
    c = c[order]
    gc = np.atleast_1d(cp.gamma_c)[order]
    gsp = np.atleast_1d(cp.gamma_sp)[order]
    conv = cp.convention
    top = gamma_max if gamma_max is not None else 1.15 * gsp.max()
    fig, (axis,) = _new(ax)
    axis.fill_between(c, 0, gc, color="tab:blue", alpha=0.18, lw=0, label="learned global, trivial metastable")
    axis.fill_between(c, gc, gsp, color="tab:orange", alpha=0.3, lw=0, label="learned metastable, trivial global")
    axis.fill_between(c, gsp, top, color="0.85", lw=0, label="trivial only")
    sym = r"\gamma" if conv.coupling == "gamma" else r"\beta"
    axis.plot(c, gc, color="tab:blue", lw=2, label=rf"coexistence ${sym}_c$")
    axis.plot(c, gsp, color="tab:red", lw=2, ls="--", label=rf"spinodal ${sym}_{{sp}}$")
    axis.set_xlim(c[0], c[-1])
    axis.set_ylim(0, top)
    axis.set_xlabel("feature strength c = E[xy]" + (r" ($\eta$)" if conv.coupling != "gamma" else ""))
    axis.set_ylabel(_coupling_label(conv))
    kind = "continuous" if cp.order == "second" else "first order"
    axis.set_title(f"one mode, n_layers = {cp.n_layers} ({kind}), a = {float(np.ravel(cp.a)[0]):g}", fontsize=10)
    axis.legend(fontsize=8, loc="upper left")
    return Plot(fig, (axis,))


def cascade(diagram, *, axes=None) -> Plot:
    """Energies of the top-m states against the coupling, and the hysteresis loop of sweeps.

    Parameters
    ----------
    diagram : phasetools.theory.PhaseDiagram
        The states of several modes over a coupling range.
    axes : pair of matplotlib Axes, optional
        Draw the energies and the sweeps here instead of on a new figure.

    Returns
    -------
    Plot
        Two panels: state energies (the global one thick) and the number of learned modes
        followed by increasing and decreasing quasi-static sweeps.
    """
    pd = diagram
    conv = pd.convention
    g = pd.gammas
    if axes is None:
        fig, (ax_e, ax_m) = _new(None, nrows=2, figsize=(6.4, 6.4), sharex=True)
    else:
        ax_e, ax_m = axes
        fig = ax_e.figure
    n_states = pd.exists.shape[1]
    colors = [f"C{m}" for m in range(n_states)]
    E = _filled(pd.energies)
    for m in range(n_states):
        ax_e.plot(g, E[:, m], color=colors[m], lw=1.2, label=f"top-{m} learned")
        glob = np.where(pd.global_m == m, E[:, m], np.nan)
        ax_e.plot(g, glob, color=colors[m], lw=4, alpha=0.45)
    sym = r"\gamma" if conv.coupling == "gamma" else r"\beta"
    for k in range(pd.spectrum.size):
        for val, style in ((pd.gamma_c[k], ":"), (pd.gamma_sp[k], "--")):
            for axis in (ax_e, ax_m):
                axis.axvline(val, color="0.5", ls=style, lw=0.8)
    ax_e.set_ylabel(_energy_label(conv, "state energy"))
    ax_e.set_title(f"n_layers = {pd.n_layers}, spectrum = {', '.join(f'{c:g}' for c in pd.spectrum)}  "
                   rf"(thick: global; dotted ${sym}_c$, dashed ${sym}_{{sp}}$)", fontsize=9)
    ax_e.legend(fontsize=8, loc="lower right")
    ax_m.step(g, pd.m_increasing, where="post", color="tab:red", lw=2, label="increasing sweep (from fully learned)")
    ax_m.step(g, pd.m_decreasing, where="post", color="tab:blue", lw=2, ls="--",
              label="decreasing sweep (from trivial)")
    ax_m.step(g, pd.global_m, where="post", color="0.3", lw=1, ls=":", label="global minimum")
    ax_m.set_yticks(range(n_states))
    ax_m.set_ylim(-0.3, n_states - 0.7)
    ax_m.set_ylabel("learned modes m")
    ax_m.set_xlabel(_coupling_label(conv))
    ax_m.legend(fontsize=8, loc="center left")
    return Plot(fig, (ax_e, ax_m))


def levels(modes_result, *, ax=None) -> Plot:
    """Energy levels of the metastable states of Modes at one gamma, with the saddles between them.

    Parameters
    ----------
    modes_result : phasetools.theory.Modes
        Computed at a gamma (``modes(..., gamma=...)``; else ValueError).
    ax : matplotlib Axes, optional
        Draw here instead of on a new figure.

    Returns
    -------
    Plot
        One level per state (the global one red), saddles labelled with their forward and
        backward barriers.
    """
    m = modes_result
    if m.states is None:
        raise ValueError("levels needs Modes computed at a gamma (modes(..., gamma=...))")
    conv = m.convention
    fig, (axis,) = _new(ax)
    for i, s in enumerate(m.states):
        axis.hlines(s.energy, i - 0.3, i + 0.3, color="tab:red" if s.is_global else "k", lw=3)
        label = "{" + ",".join(str(k) for k in s.learned) + "}" if s.learned else "trivial"
        axis.annotate(label, (i, s.energy), textcoords="offset points", xytext=(0, -14), ha="center", fontsize=8)
    for t in m.transitions:
        lo, hi = m.states[t.lower], m.states[t.upper]
        x = np.linspace(t.lower + 0.3, t.upper - 0.3, 50)
        top = lo.energy + t.barrier_fwd
        s = (x - x[0]) / (x[-1] - x[0])
        y = np.where(s < 0.5, lo.energy + (top - lo.energy) * np.sin(np.pi * s) ** 2,
                     hi.energy + (top - hi.energy) * np.sin(np.pi * s) ** 2)
        axis.plot(x, y, color="0.4", lw=1)
        axis.annotate(f"{t.barrier_fwd:.3g} / {t.barrier_bwd:.3g}", ((t.lower + t.upper) / 2, top),
                      textcoords="offset points", xytext=(0, 4), ha="center", fontsize=7)
    axis.set_xticks(range(len(m.states)))
    axis.set_xlabel("state (number of learned modes m)")
    axis.set_ylabel(_energy_label(conv))
    sym = "gamma" if conv.coupling == "gamma" else "beta"
    axis.set_title(f"metastable states at {sym} = {m.gamma:g} (red: global; saddles labelled fwd / bwd barrier)",
                   fontsize=9)
    axis.margins(y=0.2)
    return Plot(fig, (axis,))


def _sweep_parts(sweep):
    """(ensembles, theory_tau with None where absent, labels) of an EscapeSweep."""
    theory = [None if not np.isfinite(t) else float(t) for t in sweep.theory_tau]
    return list(sweep.ensembles), theory, sweep.labels()


def survival(ensembles, *, ax=None, theory_tau=None, labels=None) -> Plot:
    """Kaplan-Meier survival of escape ensembles, with the exponential MLE fit and the theory.

    Parameters
    ----------
    ensembles : EscapeEnsemble, list of EscapeEnsemble, or EscapeSweep
        The runs to draw. An ``EscapeSweep`` brings its own theory times and labels.
    ax : matplotlib Axes, optional
        Draw here instead of on a new figure.
    theory_tau : sequence of float or None, optional
        One predicted mean escape time per ensemble (None: no prediction); adds the line
        ``exp(-t/tau)``. Default: the sweep's, or none.
    labels : sequence of str, optional
        One legend label per ensemble (default: the sweep's, or ``"T = ..."``).

    Returns
    -------
    Plot
        The survival ``S(t)`` (log scale) of the finite trajectories (non-finite ones are
        left out, as in :meth:`EscapeEnsemble.fit`) against time.
    """
    from ..stats import kaplan_meier

    if type(ensembles).__name__ == "EscapeSweep":
        ensembles, sweep_theory, sweep_labels = _sweep_parts(ensembles)
        theory_tau = sweep_theory if theory_tau is None else theory_tau
        labels = sweep_labels if labels is None else labels
    if not isinstance(ensembles, (list, tuple)):
        ensembles = [ensembles]
    theory_tau = list(theory_tau) if theory_tau is not None else [None] * len(ensembles)
    fig, (axis,) = _new(ax)
    for k, ens in enumerate(ensembles):
        ok = ens.finite
        km = kaplan_meier(ens.times[ok], ens.censored[ok])
        fit = ens.fit()
        noise = f"T = {ens.temperature:g}" if ens.temperature is not None else "SGD noise"
        label = labels[k] if labels else noise
        t = np.concatenate([[0.0], km.event_times])
        surv = np.concatenate([[1.0], km.survival])
        (line,) = axis.step(t, surv, where="post", label=f"{label}: simulated ({ens.n_traj} runs)")
        tmax = float(np.max(ens.times)) if ens.n_traj else 1.0
        tt = np.linspace(0, tmax, 200)
        if fit.tau is not None:
            axis.plot(tt, np.exp(-tt / fit.tau), ls="--", color=line.get_color(), lw=1,
                      label=f"exp(-t/tau), tau = {fit.tau:.4g} +- {fit.tau_stderr:.2g} (MLE)")
        if theory_tau[k] is not None:
            axis.plot(tt, np.exp(-tt / theory_tau[k]), ls=":", color=line.get_color(), lw=1.5,
                      label=f"theory tau = {theory_tau[k]:.4g}")
    axis.set_yscale("log")
    axis.set_ylim(bottom=max(1e-3, 0.5 / max(e.n_traj for e in ensembles)), top=1.05)
    axis.set_xlabel(f"time t ({ensembles[0].convention} units; Langevin time)")
    axis.set_ylabel("survival S(t) (fraction not escaped)")
    axis.set_title(f"escape from the {ensembles[0].potential} potential", fontsize=10)
    axis.legend(fontsize=7)
    return Plot(fig, (axis,))


def _arrhenius_from_sweep(sweep):
    """(fit, theory_T, theory_tau, barrier, time_unit) of an EscapeSweep's Arrhenius figure."""
    fit = sweep.arrhenius()
    if fit is None:
        raise ValueError("the sweep has no Arrhenius fit: fewer than two points with escapes at distinct x")
    theory = np.asarray(sweep.theory_tau, dtype=float)
    if sweep.noise == "sgd":
        # the theory line is drawn against 1/theory_T: pass lr/B so that it lands at B/lr
        return fit, 1.0 / sweep.x, theory, None, sweep.convention
    return fit, sweep.temperature, theory, sweep.barrier, sweep.convention


def arrhenius(fit, *, ax=None, theory_T=None, theory_tau=None, barrier=None, time_unit="") -> Plot:
    """ln tau against 1/T (or batch_size/lr): the data with error bars, the fitted line and the theory.

    Parameters
    ----------
    fit : phasetools.stats.ArrheniusFit or EscapeSweep
        The fit to draw; an ``EscapeSweep`` is drawn with its own :meth:`EscapeSweep.arrhenius`
        fit, theory times, barrier (additive noise) and time unit.
    ax : matplotlib Axes, optional
        Draw here instead of on a new figure.
    theory_T : sequence of float, optional
        Temperatures of the theory line (it is drawn at ``1/theory_T``).
    theory_tau : sequence of float, optional
        The theory's mean escape times at ``theory_T`` (NaN: no prediction).
    barrier : float, optional
        Named in the theory line's label.
    time_unit : str
        Named in the y label.

    Returns
    -------
    Plot
        The fitted quantity (``ln tau``, less the prefactor and ``p ln x`` when the fit removed
        them) against ``x``; the theory line is drawn only when nothing was removed.
    """
    if type(fit).__name__ == "EscapeSweep":
        fit, theory_T, theory_tau, barrier, time_unit = _arrhenius_from_sweep(fit)
    x = np.asarray(fit.x, dtype=float)
    tau = np.asarray(fit.tau, dtype=float)
    fig, (axis,) = _new(ax)
    err = None if fit.tau_stderr is None else np.asarray(fit.tau_stderr, dtype=float) / tau
    # the fitted quantity: ln tau with the theory prefactor and T^p removed (as in arrhenius_fit)
    y = np.log(tau) + fit.temperature_power * np.log(x)
    adjusted = fit.temperature_power != 0
    if fit.prefactor is not None:
        y = y - np.log(np.asarray(fit.prefactor, dtype=float))
        adjusted = True
    axis.errorbar(x, y, yerr=err, fmt="o", capsize=3, label="simulation (censoring-aware MLE)")
    xx = np.linspace(x.min(), x.max(), 100)
    axis.plot(xx, fit.intercept + fit.slope * xx, "-",
              label=f"fit: slope = {fit.slope:.4g} +- {fit.slope_stderr:.2g}")
    if theory_T is not None and theory_tau is not None and not adjusted:
        tT = np.asarray(theory_T, dtype=float)
        order = np.argsort(1 / tT)
        axis.plot(1 / tT[order], np.log(np.asarray(theory_tau, dtype=float)[order]), "k:", lw=1.5,
                  label="theory (Eyring-Kramers / exact)" + (f", barrier = {barrier:.4g}" if barrier else ""))
    xlabel = "1 / temperature" if fit.x_is == "inverse_temperature" else "batch_size / lr"
    axis.set_xlabel(xlabel)
    what = "ln tau" + (" - ln prefactor + p ln x" if adjusted else "")
    axis.set_ylabel(f"{what}{f' ({time_unit} time units)' if time_unit else ''}")
    axis.set_title("Arrhenius plot: for additive noise the slope is the barrier" if fit.x_is == "inverse_temperature"
                   else "ln tau against batch_size/lr (multiplicative SGD noise)", fontsize=10)
    axis.legend(fontsize=8)
    return Plot(fig, (axis,))


KINDS = {"potential": potential, "barriers": barriers, "phase": phase_diagram, "cascade": cascade,
         "levels": levels, "survival": survival, "arrhenius": arrhenius}
_ACCEPTS = {"potential": "Landscape", "barriers": "Landscape", "phase": "CriticalPoints",
            "cascade": "PhaseDiagram", "levels": "Modes", "survival": ("EscapeEnsemble", "EscapeSweep"),
            "arrhenius": ("ArrheniusFit", "EscapeSweep")}
#: The default figure of a result type drawn by more than one kind.
_DEFAULT = {"Landscape": "potential", "EscapeSweep": "survival"}


def _register_protocol_figures():
    from . import _protocols as P
    KINDS.update({"sweep": P.weight_decay_sweep, "trapping": P.trapping, "escape-sweep": P.escape_sweep,
                  "grokking": P.grokking})
    _ACCEPTS.update({"sweep": "WeightDecaySweep", "trapping": "TrapRelease", "escape-sweep": "ArrheniusSweep",
                     "grokking": "SparseGrokking"})


_register_protocol_figures()


def _accepts(kind) -> tuple:
    names = _ACCEPTS[kind]
    return (names,) if isinstance(names, str) else tuple(names)


def plot(result, kind: str | None = None) -> Plot:
    """Draw a result with the figure kind given or the default for its type.

    Parameters
    ----------
    result : Result
        A stored or computed result (Landscape, CriticalPoints, PhaseDiagram, Modes,
        EscapeEnsemble, EscapeSweep, ArrheniusFit, or a training protocol's result).
    kind : str, optional
        One of :data:`KINDS`; default: the natural figure of the result's type (a Landscape
        over a 1-D array of gamma draws its barriers, an EscapeSweep its survival curves).

    Returns
    -------
    Plot
    """
    name = type(result).__name__
    if kind is None:
        if name == "Landscape":
            kind = "barriers" if np.ndim(result.gamma) == 1 and np.size(result.gamma) > 1 else "potential"
        else:
            kind = _DEFAULT.get(name) or next((k for k in KINDS if name in _accepts(k)), None)
        if kind is None:
            drawn = sorted({t for k in KINDS for t in _accepts(k)})
            raise ValueError(f"no figure for a {name} result; figures exist for {', '.join(drawn)} results")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if name not in _accepts(kind):
        raise ValueError(f"kind {kind!r} draws a {' or '.join(_accepts(kind))} result, not a {name}")
    return KINDS[kind](result)
