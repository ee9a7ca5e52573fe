"""Phase diagram of the paper's two-feature spectrum (arXiv:2606.17120).

Spectrum eta = (0.9, 0.8), n_layers = 3 weight matrices (two hidden layers), paper
convention: the coupling is the SGD weight decay beta on the element-wise mean MSE over
p = 2 outputs (numerically equal to the canonical gamma for p = 2); energies are the
paper's loss, half the canonical ones, measured from the trivial state.

Prints the per-mode critical couplings and the local minima and transition states at
beta = 0.32, then plots which top-m state exists and which is global against beta, the
energy of each state, and the forward / backward barrier of each mode.

    python examples/phase_diagram.py [--out examples/output/phase_diagram.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from phasetools.theory import landscape, modes, phase_diagram  # noqa: E402

SPECTRUM = (0.9, 0.8)
N_LAYERS = 3
CONVENTION = "paper"
BETA_PAPER = 0.32
MODE_COLORS = ("tab:blue", "tab:orange")
STATE_COLORS = ("0.35", "tab:green", "tab:purple")  # top-m states m = 0, 1, 2
STATE_NAMES = ("m = 0: trivial", "m = 1: mode 0 learned", "m = 2: modes 0 and 1 learned")


def print_tables(m_crit, m_at):
    """Modes are numbered k = 0, 1, ... by decreasing strength eta, as in the API, the CLI and the figures."""
    eta = m_crit.spectrum
    print(f"Spectrum eta = {SPECTRUM}, n_layers = {N_LAYERS}, convention = {CONVENTION!r} "
          "(coupling = weight decay beta; energies in the paper's units, from the trivial state)\n")
    print("Per-mode critical couplings")
    print(f"{'k':>2}  {'eta':>4}  {'gamma_c (paper beta*)':>21}  {'gamma_sp (paper beta_c)':>23}  "
          f"{'gamma_sp/gamma_c':>16}")
    for k in range(eta.size):
        gc, gsp = m_crit.gamma_c[k], m_crit.gamma_sp[k]
        print(f"{k:>2}  {eta[k]:>4.2f}  {gc:>21.6f}  {gsp:>23.6f}  {gsp / gc:>16.6f}")

    print(f"\nLocal minima at beta = {m_at.gamma:g} "
          f"({len(m_at.states)} states, {m_at.n_metastable} metastable)")
    print(f"{'m':>2}  {'learned eta':<12}  {'energy':>9}  global")
    for s in m_at.states:
        learned = ", ".join(f"{eta[k]:g}" for k in s.learned) or "none"
        print(f"{s.m:>2}  {learned:<12}  {s.energy:>+9.5f}" + ("  yes" if s.is_global else ""))

    print("\nTransition states (index-1 saddles): barrier_fwd learns the mode, barrier_bwd forgets it")
    print(f"{'from m':>6}  {'to m':>4}  {'eta':>4}  {'barrier_fwd':>11}  {'barrier_bwd':>11}  "
          f"{'lambda_minus':>12}")
    for t in m_at.transitions:
        lo, up = m_at.states[t.lower].m, m_at.states[t.upper].m
        print(f"{lo:>6}  {up:>4}  {eta[t.mode]:>4.2f}  {t.barrier_fwd:>11.5f}  {t.barrier_bwd:>11.5f}  "
              f"{t.lambda_minus:>12.5f}")


def _label_lines(ax, positions, labels, colors, min_gap=0.02):
    """Label vertical lines above the top of ``ax``; close neighbours are pushed apart."""
    order = np.argsort(positions)
    ha = ["center"] * len(positions)
    for i, j in zip(order[:-1], order[1:]):
        if positions[j] - positions[i] < min_gap:
            ha[i], ha[j] = "right", "left"
    for x, lab, col, h in zip(positions, labels, colors, ha):
        ax.annotate(lab, xy=(x, 1.0), xycoords=("data", "axes fraction"), xytext=(0, 3),
                    textcoords="offset points", ha=h, va="bottom", fontsize=11, color=col)


def plot(out: Path):
    betas = np.linspace(0.0, 0.5, 1001)
    pd = phase_diagram(N_LAYERS, SPECTRUM, betas, convention=CONVENTION)
    c = pd.spectrum                                            # sorted descending
    L = landscape(N_LAYERS, c[None, :], betas[:, None], convention=CONVENTION)  # (n_beta, n_modes)
    gamma_c, gamma_sp = pd.gamma_c, pd.gamma_sp
    n_states = c.size + 1

    fig, (ax_s, ax_e, ax_b) = plt.subplots(
        3, 1, figsize=(8.0, 9.4), sharex=True,
        gridspec_kw={"height_ratios": [1.0, 1.45, 1.45], "hspace": 0.07})

    # Metastable windows gamma_c,k < beta < gamma_sp,k and the critical lines, in every panel.
    for ax in (ax_s, ax_e, ax_b):
        for k in range(c.size):
            ax.axvspan(gamma_c[k], gamma_sp[k], color=MODE_COLORS[k], alpha=0.10, lw=0)
            ax.axvline(gamma_c[k], color=MODE_COLORS[k], ls="--", lw=1.1)
            ax.axvline(gamma_sp[k], color=MODE_COLORS[k], ls=":", lw=1.5)
        ax.axvline(BETA_PAPER, color="k", lw=0.8, alpha=0.6)
    _label_lines(ax_s, np.concatenate([gamma_c, gamma_sp]),
                 [rf"$\gamma_{{c,{k}}}$" for k in range(c.size)]
                 + [rf"$\gamma_{{sp,{k}}}$" for k in range(c.size)],
                 list(MODE_COLORS[:c.size]) * 2)

    # (a) Which top-m state is a local minimum (thin band), and which one is global (thick band).
    for m in range(n_states):
        exists = pd.exists[:, m]
        glob = pd.global_m == m
        ax_s.fill_between(betas, m - 0.13, m + 0.13, where=exists, color=STATE_COLORS[m], alpha=0.35, lw=0)
        ax_s.fill_between(betas, m - 0.32, m + 0.32, where=glob, color=STATE_COLORS[m], alpha=1.0, lw=0)
        gb = betas[glob]
        if gb.size and gb[-1] - gb[0] > 0.04:
            ax_s.text(0.5 * (gb[0] + gb[-1]), m, "global", ha="center", va="center", color="white",
                      fontsize=9, fontweight="bold")
        meta = exists & ~glob & (betas < 0.25)
        if np.any(meta):
            ax_s.text(0.5 * (betas[meta][0] + betas[meta][-1]), m + 0.18, "metastable", ha="center",
                      va="bottom", fontsize=8.5, color="0.25")
    ax_s.set_yticks(range(n_states), [f"m = {m}" for m in range(n_states)])
    ax_s.set_ylim(-0.55, n_states - 0.45)
    ax_s.set_ylabel("top-m state")

    # (b) Energy of each top-m state, measured from the trivial state; thick where global.
    for m in range(n_states):
        e = pd.energies[:, m]
        ax_e.plot(betas, e, color=STATE_COLORS[m], lw=1.4, alpha=0.75)
        ax_e.plot(betas, np.ma.masked_where(pd.global_m != m, e), color=STATE_COLORS[m], lw=3.2,
                  label=STATE_NAMES[m])
    ax_e.set_ylim(-0.12, 0.06)
    ax_e.set_ylabel(r"energy $E_m - E_0$  (paper units)")
    ax_e.grid(axis="y", alpha=0.25)
    ax_e.legend(loc="upper left", fontsize=9, framealpha=0.95, title="thick: global state", title_fontsize=9)
    e_zero = pd.energies[0]
    ax_e.text(0.015, 0.04, "at $\\beta = 0$: " + ", ".join(
        rf"$E_{m} = {e_zero[m]:.3f}$" for m in range(1, n_states)), transform=ax_e.transAxes,
        ha="left", va="bottom", fontsize=8.5, color="0.3")

    # (c) Forward (trivial -> learned) and backward (learned -> trivial) barrier of each mode.
    bf = np.ma.masked_invalid(np.ma.filled(L.barrier_fwd, np.nan))
    bb = np.ma.masked_invalid(np.ma.filled(L.barrier_bwd, np.nan))
    for k in range(c.size):
        ax_b.plot(betas, bf[:, k], color=MODE_COLORS[k], lw=2.0, ls="-")
        ax_b.plot(betas, bb[:, k], color=MODE_COLORS[k], lw=2.0, ls="--")
    ax_b.set_yscale("log")
    ax_b.set_ylim(1e-6, 1.0)
    ax_b.grid(axis="y", alpha=0.25)
    ax_b.set_ylabel(r"barrier $\Delta E$  (paper units)")
    ax_b.set_xlabel(r"weight decay $\beta$  (paper convention; "
                    r"equals canonical $\gamma$ for $p = 2$ outputs)")
    ax_b.set_xlim(0.0, 0.5)
    ax_b.legend(handles=[
        Line2D([], [], color=MODE_COLORS[k], lw=2.0, label=rf"mode {k} ($\eta = {c[k]:g}$)")
        for k in range(c.size)] + [
        Line2D([], [], color="k", lw=2.0, ls="-", label=r"forward $\Delta E_\uparrow$: learn"),
        Line2D([], [], color="k", lw=2.0, ls="--", label=r"backward $\Delta E_\downarrow$: forget")],
        loc="lower center", bbox_to_anchor=(0.40, 0.0), fontsize=9, ncol=2, framealpha=0.95)

    fmt = ", ".join
    fig.legend(handles=[
        Line2D([], [], color="0.3", lw=1.1, ls="--",
               label=rf"coexistence $\gamma_{{c,k}}$ = {fmt(f'{v:.4f}' for v in gamma_c)}"),
        Line2D([], [], color="0.3", lw=1.5, ls=":",
               label=rf"spinodal $\gamma_{{sp,k}}$ = {fmt(f'{v:.4f}' for v in gamma_sp)}"),
        Patch(color="0.5", alpha=0.22,
              label=r"$\gamma_{c,k} < \beta < \gamma_{sp,k}$: learned mode $k$ metastable"),
        Line2D([], [], color="k", lw=0.8, alpha=0.6, label=rf"$\beta = {BETA_PAPER}$ (paper's runs)")],
        loc="lower center", bbox_to_anchor=(0.5, 0.0), ncol=2, fontsize=9, frameon=False)
    fig.subplots_adjust(bottom=0.12, top=0.93)
    fig.suptitle(rf"Aligned modes $\eta = {SPECTRUM}$, $n_\mathrm{{layers}} = {N_LAYERS}$ (paper convention)",
                 y=0.985, fontsize=12.5)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110, bbox_inches="tight")
    plt.close(fig)
    print(f"\nwrote {out}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_out = Path(__file__).resolve().parent / "output" / "phase_diagram.png"
    parser.add_argument("--out", type=Path, default=default_out,
                        help="output PNG (default: examples/output/phase_diagram.png)")
    args = parser.parse_args(argv)
    m_crit = modes(N_LAYERS, SPECTRUM, convention=CONVENTION)
    m_at = modes(N_LAYERS, SPECTRUM, gamma=BETA_PAPER, convention=CONVENTION)
    print_tables(m_crit, m_at)
    plot(args.out)


if __name__ == "__main__":
    main()
