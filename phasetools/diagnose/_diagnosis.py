"""``diagnose``: a training log (and optionally weights and data) -> plateaus, spectra over time, the
state's diagnosis and one summary line; ``plot_diagnosis`` draws it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .._validation import check_scalar
from ..results import Result, register
from ._curves import Plateaus, find_plateaus, load_log
from ._state import StateDiagnosis, diagnose_state, load_weights

__all__ = ["Diagnosis", "diagnose", "plot_diagnosis"]


@register
@dataclass(frozen=True, eq=False, repr=False)
class Diagnosis(Result):
    """Plateaus of a log, the spectra over time and the diagnosis of the last state.

    Parameters
    ----------
    plateaus : Plateaus
    state : StateDiagnosis or None
        None without weights and data.
    sv_epochs : numpy.ndarray
        Epochs of the spectra (empty without weights).
    singular_values : numpy.ndarray
        (time, k) of the end-to-end map.
    layer_singular_values : numpy.ndarray
        (time, layer, k), NaN-padded.
    effective_rank : numpy.ndarray
        (time,) end-to-end singular values above ``RANK_THRESHOLD``.
    summary : str
        The plain-language line.
    """

    plateaus: Plateaus
    state: StateDiagnosis | None
    sv_epochs: np.ndarray
    singular_values: np.ndarray
    layer_singular_values: np.ndarray
    effective_rank: np.ndarray
    summary: str

    _dims: ClassVar[dict] = {"sv_epochs": ("time",), "singular_values": ("time", "k"),
             "layer_singular_values": ("time", "layer", "k"), "effective_rank": ("time",)}

    def __repr__(self):
        return f"Diagnosis({self.summary!r})"


def _checkpoints(weights, log, seed):
    """``[(epoch, [W_1..W_n]), ...]`` from one state, a dict epoch -> state or a list of (epoch, state)."""
    from ..training import TrainingRun

    if weights is None:
        return []
    if isinstance(weights, dict) and weights and all(isinstance(k, (int, float, np.integer)) for k in weights):
        return [(float(e), load_weights(w, seed=seed)) for e, w in sorted(weights.items())]
    if (isinstance(weights, (list, tuple)) and weights and all(isinstance(x, tuple) and len(x) == 2 for x in weights)
            and all(isinstance(x[0], (int, float, np.integer)) for x in weights)):
        return [(float(e), load_weights(w, seed=seed)) for e, w in sorted(weights, key=lambda x: x[0])]
    last = float(log.epochs[-1]) if not isinstance(weights, TrainingRun) else float(weights.epochs)
    return [(last, load_weights(weights, seed=seed))]


def _spectra(points):
    from ..theory import end_to_end
    from ..training import RANK_THRESHOLD

    if not points:
        return np.zeros(0), np.zeros((0, 0)), np.zeros((0, 0, 0)), np.zeros(0, dtype=np.int64)
    ep = np.array([e for e, _ in points])
    sv = np.array([np.linalg.svd(end_to_end(W), compute_uv=False) for _, W in points])
    kmax = max(min(w.shape) for w in points[0][1])
    lsv = np.full((len(points), len(points[0][1]), kmax), np.nan)
    for t, (_, W) in enumerate(points):
        for i, w in enumerate(W):
            s = np.linalg.svd(w, compute_uv=False)
            lsv[t, i, :s.size] = s
    return ep, sv, lsv, np.sum(sv > RANK_THRESHOLD, axis=1).astype(np.int64)


def _plateau_phrase(p: Plateaus) -> str:
    if p.n_plateaus == 0:
        return f"no plateau in the {p.curve} loss"
    last = p.n_plateaus - 1
    where = (f"{p.curve} loss on a plateau at {p.plateau_level[last]:.4g} since epoch {p.plateau_start[last]:g}"
             if p.plateau_censored[last] else f"last plateau of the {p.curve} loss ended at epoch "
             f"{p.plateau_end[last]:g}")
    drops = f"{p.drop_epoch.size} drop(s)" + (f" (abrupt at epoch {', '.join(f'{e:g}' for e in p.drop_epoch[p.drop_abrupt])})"
                                               if np.any(p.drop_abrupt) else "")
    return f"{where}; {drops}"


def diagnose(log, weights=None, data=None, *, weight_decay=None, lr=None, batch_size=None, convention=None,
             seed=0, plateau_options=None) -> Diagnosis:
    """Diagnose a training run from its log, and with weights and data, its state.

    Parameters
    ----------
    log : anything :func:`load_log` reads
        The loss curves.
    weights : optional
        One state (anything :func:`load_weights` reads; default: the run's final weights
        when ``log`` is a TrainingRun), or checkpoints over time: a dict epoch -> state or a
        list of ``(epoch, state)``.
    data : (X, Y), Dataset, Moments or GaussianTeacher, optional
        The training data (needed for the state's diagnosis; default: a TrainingRun's
        training moments).
    weight_decay : float >= 0, optional
        The run's weight decay (default: a TrainingRun's).
    lr : float > 0, optional
    batch_size : int, optional
        The run's settings (default: a TrainingRun's).
    convention : "paper", "canonical" or Convention, optional
        The units of ``weight_decay`` (default: a TrainingRun's convention, else "paper").
    seed : int >= 0
        The seed of a TrainingRun.
    plateau_options : dict, optional
        Keywords of :func:`find_plateaus`.

    Returns
    -------
    Diagnosis
    """
    from ..training import TrainingRun

    run = log if isinstance(log, TrainingRun) else None
    L = load_log(log, seed=seed)
    p = find_plateaus(L, **(plateau_options or {}))
    if run is not None:
        weights = run if weights is None else weights
        data = run.train_moments if data is None else data
        weight_decay = run.weight_decay if weight_decay is None else weight_decay
        lr = run.lr if lr is None else lr
        batch_size = run.batch_size if batch_size is None else batch_size
        convention = run.convention if convention is None else convention
    convention = "paper" if convention is None else convention
    points = _checkpoints(weights, L, seed)
    state = None
    if points and data is not None:
        if weight_decay is None:
            raise ValueError("weight_decay is needed to diagnose the state (the run's weight decay)")
        state = diagnose_state(points[-1][1], data, weight_decay=check_scalar(weight_decay, "weight_decay"), lr=lr,
                               batch_size=batch_size, convention=convention)
    ep, sv, lsv, rank = _spectra(points)
    summary = _plateau_phrase(p) if state is None else f"{state.summary} ({_plateau_phrase(p)})"
    return Diagnosis(p, state, ep, sv, lsv, rank, summary)


def plot_diagnosis(diag: Diagnosis, path=None, *, run=None):
    """Loss curve with plateaus and drops marked, singular values over time, and the landscape slice.

    Parameters
    ----------
    diag : Diagnosis
    path : str or Path, optional
        Where to save the figure (PNG/PDF/SVG by suffix).
    run : TrainingRun, optional
        Its logged end-to-end and per-layer singular values are drawn over time (else the
        diagnosis's checkpoints).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib
    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 3, figsize=(14, 3.8))
    p = diag.plateaus
    ax[0].plot(p.epochs, p.values, "k-", lw=1)
    for s, e, lv in zip(p.plateau_start, p.plateau_end, p.plateau_level):
        ax[0].hlines(lv, s, e, colors="tab:orange", lw=4, alpha=0.6)
    for e in p.drop_epoch:
        ax[0].axvline(e, color="tab:red", ls="--", lw=1)
    ax[0].set(xlabel="epoch", ylabel=f"{p.curve} MSE", yscale="log", title="plateaus (orange), drops (red)")
    _plot_spectra(ax[1], diag, run)
    _plot_landscape(ax[2], diag.state)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


def _plot_spectra(ax, diag, run):
    if run is not None:
        ax.semilogy(run.log_epochs, run.singular_values[0], "k-", lw=1.5)
        lay = run.layer_singular_values[0]
        for i in range(lay.shape[1]):
            ax.semilogy(run.layer_log_epochs, lay[:, i], ":", lw=1)
    elif diag.sv_epochs.size:
        ax.semilogy(diag.sv_epochs, diag.singular_values, "ko-")
        for i in range(diag.layer_singular_values.shape[1]):
            ax.semilogy(diag.sv_epochs, diag.layer_singular_values[:, i], ".:")
    ax.set(xlabel="epoch", ylabel="singular value", title="end-to-end (solid), per layer (dotted)")


def _plot_landscape(ax, state):
    ax.set(title="landscape of the escaping feature", xlabel="end-to-end lam", ylabel="energy (canonical)")
    if state is None or state.escape_mode < 0:
        ax.text(0.5, 0.5, "no state diagnosed" if state is None else "at the global state", ha="center",
                transform=ax.transAxes)
        return
    from ..theory import compiled_potential, critical_points

    k, n = state.escape_mode, state.n_layers
    # the run's units scale linearly to canonical ones; the stored gamma_c carries the scale of
    # the run's own convention (the data's output count), which the convention's name alone does not
    scale = float(critical_points(n, float(state.spectrum[k]), float(state.a[k])).gamma_c) / float(state.gamma_c[k])
    gamma = state.weight_decay * scale
    U = compiled_potential(n).U
    lam_max = 1.3 * (state.lam_min[k] if np.isfinite(state.lam_min[k]) else 1.0)
    lam = np.linspace(0, lam_max, 300)
    b = lam ** (1.0 / n)
    E = np.array([float(U(x, float(state.a[k]), float(state.spectrum[k]), gamma)) for x in b])
    ax.plot(lam, E, "k-")
    ax.plot([abs(state.feature_lam[k])], [float(U(abs(state.feature_lam[k]) ** (1.0 / n), float(state.a[k]),
                                                  float(state.spectrum[k]), gamma))], "ro", label="the state")
    ax.legend(loc="best")
