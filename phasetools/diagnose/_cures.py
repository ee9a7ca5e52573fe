"""Cures of a metastable plateau as schedules of ``train`` stages (a run's weights carry over), the
theory's choice of dip depth and length, and their measurement against constant training."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .._validation import check_int, check_scalar
from ..results import Result, register
from ._state import data_convention

__all__ = ["CureComparison", "CurePlan", "ScheduleRun", "Stage", "compare_cures", "plan_cure", "plot_cures", "reseed",
           "run_schedule"]


@dataclass(frozen=True)
class Stage:
    """One stage of a schedule: ``epochs`` at ``weight_decay`` with injected ``temperature``,
    ``label_noise``, and optionally another learning rate or batch size.

    Parameters
    ----------
    epochs : int >= 1
    weight_decay : float >= 0
    temperature : float >= 0
        Injected isotropic (Langevin) noise of the trainer (0: pure SGD).
    label_noise : float >= 0
        Standard deviation of the trainer's label noise (0: off).
    lr : float > 0, optional
        Learning rate of the stage (default: the schedule's).
    batch_size : int >= 1, optional
        Batch size of the stage (default: the schedule's).
    """

    epochs: int
    weight_decay: float
    temperature: float = 0.0
    label_noise: float = 0.0
    lr: float | None = None
    batch_size: int | None = None

    def __post_init__(self):
        object.__setattr__(self, "epochs", check_int(self.epochs, "epochs", 1))
        for name in ("weight_decay", "temperature", "label_noise"):
            object.__setattr__(self, name, check_scalar(getattr(self, name), name))
        if self.lr is not None:
            object.__setattr__(self, "lr", check_scalar(self.lr, "lr", positive=True))
        if self.batch_size is not None:
            object.__setattr__(self, "batch_size", check_int(self.batch_size, "batch_size", 1))

    def phase(self):
        """This stage as a trainer phase (``phasetools.training.Phase``).

        Returns
        -------
        phasetools.training.Phase
        """
        from ..training import Phase

        return Phase(self.epochs, lr=self.lr, batch_size=self.batch_size, weight_decay=self.weight_decay,
                     temperature=self.temperature, label_noise=self.label_noise)


@dataclass(frozen=True)
class ScheduleRun:
    """The stages of a schedule joined into one log.

    Parameters
    ----------
    stages : tuple of Stage
    log_epochs : numpy.ndarray
        Epochs since the start of the schedule.
    train_mse, test_mse : numpy.ndarray
        (seed, log).
    singular_values : numpy.ndarray
        (seed, log, k) of the end-to-end map.
    final : TrainingRun
        The last stage (its ``final_params`` are the end state).
    """

    stages: tuple
    log_epochs: np.ndarray
    train_mse: np.ndarray
    test_mse: np.ndarray | None
    singular_values: np.ndarray
    final: object


def run_schedule(data, init, stages, *, n_layers, width, lr, batch_size=None, weight_decay=None, test=None,
                 log_every=1, layer_log_every=None, convention="paper", rng=None, n_seeds=None) -> ScheduleRun:
    """Train stage by stage, each from the weights the previous one ended with: one call of
    ``phasetools.training.train`` with a ``Schedule`` of the stages (its streams: the first
    stage uses ``rng``'s own, later ones spawned children; see ``training.Schedule``).

    Parameters
    ----------
    data : (X, Y), Dataset, Moments or GaussianTeacher
    init : TrainingRun, list of arrays or "std"
        The starting weights (a run's final weights per seed).
    stages : sequence of Stage or phasetools.training.Phase, or a phasetools.training.Schedule
        A ``Phase``'s unset options are the schedule's (``lr``, ``batch_size``,
        ``weight_decay``, no injected or label noise).
    n_layers, width : int
    lr : float > 0
    batch_size : int, optional
    weight_decay : float >= 0, optional
        The schedule's own weight decay (default: the last stage's, which must then set one).
    test : optional
        Where ``test_mse`` is measured.
    log_every : int >= 1
        Epochs between log points within each stage (stage ends are always logged); 1
        (default) reads the end-to-end map at the end of every epoch.
    layer_log_every : int >= 1, optional
        Epochs between log points of the per-layer singular values (default ``log_every``).
    convention : "paper" (default) or "canonical"
    rng : None, int, SeedSequence or Generator
    n_seeds : int, optional
        Only with a random ``init``.

    Returns
    -------
    ScheduleRun
    """
    from ..training import Schedule, train

    phases = _phases(stages)
    if weight_decay is None:
        weight_decay = phases[-1].weight_decay
        if weight_decay is None:
            raise ValueError("weight_decay must be given when the last stage does not set one")
    kw = {} if batch_size is None else {"batch_size": batch_size}
    if isinstance(init, str):
        kw["n_seeds"] = 1 if n_seeds is None else n_seeds
    run = train(data, n_layers=n_layers, width=width, epochs=sum(p.epochs for p in phases), lr=lr,
                weight_decay=weight_decay, init=init, test=test, log_every=log_every,
                layer_log_every=layer_log_every, convention=convention, rng=rng, schedule=Schedule(phases), **kw)
    return ScheduleRun(tuple(stages.phases if isinstance(stages, Schedule) else stages), run.log_epochs,
                       run.train_mse, run.test_mse, run.singular_values, run)


def _phases(stages) -> tuple:
    """Stages (Stage, Phase or a Schedule) as a non-empty tuple of trainer phases."""
    from ..training import Phase, Schedule

    items = stages.phases if isinstance(stages, Schedule) else tuple(stages)
    if not items or not all(isinstance(s, (Stage, Phase)) for s in items):
        raise ValueError("stages must be a non-empty sequence of Stage or Phase, or a Schedule")
    return tuple(s.phase() if isinstance(s, Stage) else s for s in items)


def reseed(weights, data, *, mode, size, rng=0) -> list:
    """Weights with a balanced seed of ``size`` per layer along data feature ``mode``.

    The seed runs from the feature's input direction ``v_k`` through one random hidden
    direction per hidden layer (outside the span of the ``mode`` stronger, learned features)
    to its output direction ``u_k``: ``W_1 += size z_1 v_k^T``, ``W_i += size z_i z_{i-1}^T``,
    ``W_n += size u_k z_{n-1}^T``, so the feature's end-to-end value starts at ``size^n``.

    Parameters
    ----------
    weights : TrainingRun or list of arrays (optionally with a leading seed axis)
    data : (X, Y), Dataset, Moments or GaussianTeacher
        Their cross-covariance fixes ``u_k, v_k``.
    mode : int >= 0
        The feature (0 = strongest).
    size : float > 0
        Per-layer seed.
    rng : int
        Seed of the hidden directions.

    Returns
    -------
    list of numpy.ndarray
        Per layer, (seed, rows, cols).
    """
    from ..training import TrainingRun, as_moments

    W = weights.weights() if isinstance(weights, TrainingRun) else [np.asarray(w, float) for w in weights]
    W = [w[None] if w.ndim == 2 else w for w in W]
    size = check_scalar(size, "size", positive=True)
    mom = as_moments(data)
    U, _, Vt = np.linalg.svd(mom.cross_cov, full_matrices=False)
    k = check_int(mode, "mode", 0)
    if k >= Vt.shape[0]:
        raise ValueError(f"mode must be < {Vt.shape[0]} (the data's features), got {mode}")
    g = np.random.default_rng(rng)
    out = [w.copy() for w in W]
    for s in range(W[0].shape[0]):
        z = []
        for w in W[:-1]:
            u = np.linalg.svd(w[s])[0][:, :k]
            v = g.standard_normal(w.shape[1])
            v -= u @ (u.T @ v)
            z.append(v / np.linalg.norm(v))
        out[0][s] += size * np.outer(z[0], Vt[k])
        for i in range(1, len(W) - 1):
            out[i][s] += size * np.outer(z[i], z[i - 1])
        out[-1][s] += size * np.outer(U[:, k], z[-1])
    return out


@register
@dataclass(frozen=True, eq=False, repr=False)
class CurePlan(Result):
    """The theory's cure for an unlearned feature at ``weight_decay``.

    Parameters
    ----------
    n_layers, mode : int
    weight_decay, c, a : float
        The target weight decay and the feature.
    b_saddle : float
        The feature's saddle per layer at ``weight_decay``: the smallest re-seed that grows
        under constant training.
    seed_size : float
        The per-layer seed the dip starts from.
    dip_weight_decay : float
        A weight decay whose saddle is half the seed (the seed grows there).
    dip_epochs : int
        Predicted epochs for the seed to grow past twice the target's saddle
        (``lam > 2 lam_saddle``), times ``margin``, rounded up.
    dip_epochs_theory : float
        The predicted time itself (inf: the seed does not grow).
    margin : float
    """

    n_layers: int
    mode: int
    weight_decay: float
    c: float
    a: float
    b_saddle: float
    seed_size: float
    dip_weight_decay: float
    dip_epochs: int
    dip_epochs_theory: float
    margin: float

    _config_fields = ("n_layers", "mode", "weight_decay", "seed_size", "margin")

    def stages(self, *, then_epochs: int) -> list:
        """The dip and the return: ``[Stage(dip), Stage(then_epochs at weight_decay)]``.

        Parameters
        ----------
        then_epochs : int >= 1

        Returns
        -------
        list of Stage
        """
        return [Stage(self.dip_epochs, self.dip_weight_decay), Stage(then_epochs, self.weight_decay)]

    def __repr__(self):
        return (f"CurePlan(mode={self.mode}, weight_decay={self.weight_decay:g}, b_saddle={self.b_saddle:.3g}, "
                f"seed_size={self.seed_size:.3g}: dip to {self.dip_weight_decay:.3g} for {self.dip_epochs} epochs)")


def _b_saddle(n, c, a, wd, convention):
    from ..theory import landscape

    b = landscape(n, c, wd, a, convention=convention).b_saddle
    return float("nan") if b is None or np.ma.is_masked(b) else float(b)


def plan_cure(data, *, n_layers, weight_decay, mode, seed_size, lr, batch_size=None, margin=1.25,
              convention="paper") -> CurePlan:
    """The dip the theory picks to grow a seed of ``seed_size`` per layer into feature ``mode``.

    Depth: the weight decay at which the feature's saddle ``b_saddle`` is half the seed
    (bisection; a seed above the saddle grows under gradient flow). Length: the
    deterministic growth time (:func:`phasetools.theory.plateau_time`) from the seed to
    ``lam = 2 lam_saddle(weight_decay)``, past which the feature keeps growing after the
    weight decay returns, times ``margin``.

    Parameters
    ----------
    data : (X, Y), Dataset, Moments or GaussianTeacher
    n_layers : int >= 3
    weight_decay : float > 0
        The weight decay to return to.
    mode : int >= 0
        The unlearned feature.
    seed_size : float > 0
        The per-layer seed (the run's residual seed, or a re-seed).
    lr : float > 0
    batch_size : int, optional
        Steps per epoch ``N // batch_size`` (default: one step per epoch).
    margin : float >= 1
    convention : "paper" (default) or "canonical"

    Returns
    -------
    CurePlan
    """
    from ..theory import landscape, plateau_time
    from ..training import as_moments

    mom = as_moments(data)
    convention = data_convention(convention, mom.d_out)
    n = check_int(n_layers, "n_layers", 3)
    wd = check_scalar(weight_decay, "weight_decay", positive=True)
    s = check_scalar(seed_size, "seed_size", positive=True)
    margin = check_scalar(margin, "margin", positive=True)
    if margin < 1:
        raise ValueError(f"margin must be >= 1, got {margin}")
    k = check_int(mode, "mode", 0)
    spec, a = mom.spectrum, mom.a
    if k >= spec.size:
        raise ValueError(f"mode must be < {spec.size}, got {mode}")
    c, ak = float(spec[k]), float(a[k])
    bs = _b_saddle(n, c, ak, wd, convention)
    if not np.isfinite(bs):
        raise ValueError(f"feature {k} has no saddle at weight_decay = {wd}: it has no learned state to grow into")
    lo, hi = 0.0, wd
    for _ in range(60):                      # b_saddle grows with the weight decay
        mid = 0.5 * (lo + hi)
        b = _b_saddle(n, c, ak, mid, convention)
        lo, hi = (mid, hi) if np.isfinite(b) and b < 0.5 * s else (lo, mid)
    dip = lo
    lam_s = landscape(n, c, wd, ak, convention=convention).lam_saddle
    spe = (1 if batch_size is None or mom.n_samples is None
           else max(1, mom.n_samples // check_int(batch_size, "batch_size", 1)))
    p = plateau_time(n, c, dip, s, a=ak, lr=lr, threshold=2 * float(lam_s), steps_per_epoch=spe,
                     convention=convention)
    ep = math.ceil(margin * p.tau_epochs) if np.isfinite(p.tau_epochs) else -1
    return CurePlan(n, k, wd, c, ak, bs, s, float(dip), ep, float(p.tau_epochs), float(margin))


@register
@dataclass(frozen=True, eq=False, repr=False)
class CureComparison(Result):
    """Cures against constant training, on the same seeds and data.

    Parameters
    ----------
    names : tuple of str
        One per cure (``"constant"`` first).
    weight_decay : float
        The target weight decay.
    epochs : int
        Total epochs of every schedule.
    mode : int
        The feature whose growth is the escape.
    threshold : float
        End-to-end singular value ``mode`` above which (to the end) the run has escaped.
    escape_epoch : numpy.ndarray
        (cure, seed): the first logged epoch from which it stays above ``threshold`` (exact
        to the epoch when every epoch is logged, the default); the last epoch where it never
        does (censored).
    escaped : numpy.ndarray
        (cure, seed).
    tau, tau_low, tau_high : numpy.ndarray
        Per cure: the censoring-aware mean epochs to escape (exponential MLE; NaN where
        none escaped) and its 95% interval (``tau_low`` is the one-sided bound then).
    final_test_mse : numpy.ndarray
        (cure, seed).
    cost_epochs : numpy.ndarray
        Per cure: the epochs spent in its non-constant stages.
    """

    names: tuple
    weight_decay: float
    epochs: int
    mode: int
    threshold: float
    escape_epoch: np.ndarray
    escaped: np.ndarray
    tau: np.ndarray
    tau_low: np.ndarray
    tau_high: np.ndarray
    final_test_mse: np.ndarray
    cost_epochs: np.ndarray

    _config_fields = ("names", "weight_decay", "epochs", "mode", "threshold")
    _dims: ClassVar[dict] = {
             "escape_epoch": ("cure", "seed"), "escaped": ("cure", "seed"), "final_test_mse": ("cure", "seed"),
             "tau": ("cure",), "tau_low": ("cure",), "tau_high": ("cure",), "cost_epochs": ("cure",)}

    def table(self) -> str:
        """A markdown table: escaped seeds, mean epochs to escape with its interval, final test MSE.

        Returns
        -------
        str
        """
        rows = ["| cure | escaped | epochs to escape (95% interval) | final test MSE (mean ± sd) | extra epochs |",
                "|---|---|---|---|---|"]
        for i, name in enumerate(self.names):
            n_esc, n = int(self.escaped[i].sum()), self.escaped.shape[1]
            if n_esc:
                t = f"{self.tau[i]:.3g} ({self.tau_low[i]:.3g}–{self.tau_high[i]:.3g})"
            else:
                t = f"> {self.tau_low[i]:.3g} (none escaped)"
            f = self.final_test_mse[i]
            rows.append(f"| {name} | {n_esc}/{n} | {t} | {np.mean(f):.4f} ± {np.std(f, ddof=1) if n > 1 else 0:.4f} "
                        f"| {int(self.cost_epochs[i])} |")
        return "\n".join(rows)

    def __repr__(self):
        return f"CureComparison(weight_decay={self.weight_decay:g}, epochs={self.epochs}, cures={list(self.names)})"


def _escape(sv, epochs, thr):
    """First log epoch from which ``sv`` stays above ``thr`` to the end; censored at the last epoch."""
    above = sv > thr
    if not above[-1]:
        return float(epochs[-1]), False
    below = np.nonzero(~above)[0]
    i = below[-1] + 1 if below.size else 0
    return float(epochs[i]), True


def compare_cures(data, trap, cures, *, weight_decay, epochs, n_layers, width, lr, batch_size=None, mode=1,
                  threshold=None, test=None, log_every=1, convention="paper", reference=True,
                  rng=None) -> CureComparison:
    """Run every cure from the same trapped weights and compare it with constant training.

    Parameters
    ----------
    data : (X, Y), Dataset, Moments or GaussianTeacher
    trap : TrainingRun
        The trapped checkpoint (every seed of it is a seed of every cure).
    cures : dict
        Name -> ``(stages, reseed_size)``: the stages before the return to ``weight_decay``
        (a list of Stage or ``training.Phase``, or a ``training.Schedule``; the schedule is
        filled up to ``epochs`` at ``weight_decay``) and the per-layer re-seed along ``mode``
        applied first (None: none). ``"constant"`` (the trap trained on at ``weight_decay``)
        is added first.
    weight_decay : float >= 0
    epochs : int >= 1
        Total epochs of every schedule.
    n_layers, width : int
    lr : float > 0
    batch_size : int, optional
    mode : int
        The feature whose growth is the escape (end-to-end singular value index).
    threshold : float, optional
        Default: half the theory's learned value of the feature at ``weight_decay``.
    test : optional
        Where the final test MSE is measured.
    log_every : int >= 1
        Epochs between reads of the end-to-end map within each stage (stage ends are always
        read). 1 (default): ``escape_epoch`` is exact to the epoch.
    convention : "paper" (default) or "canonical"
    reference : bool
        Add ``"fresh weights"``: random initial weights trained at ``weight_decay`` for
        ``epochs`` (the global state's test error and its seed-to-seed spread).
    rng : None, int, SeedSequence or Generator
        The same stream for every cure (common random numbers).

    Returns
    -------
    CureComparison
    """
    from .._rng import entropy_of
    from ..stats import exponential_mle
    from ..theory import landscape
    from ..training import as_moments

    epochs = check_int(epochs, "epochs", 1)
    wd = check_scalar(weight_decay, "weight_decay")
    mom = as_moments(data)
    if threshold is None:
        conv = data_convention(convention, mom.d_out)
        lam_m = landscape(n_layers, float(mom.spectrum[mode]), wd, float(mom.a[mode]), convention=conv).lam_min
        threshold = 0.5 * float(lam_m)
    root = entropy_of(rng)
    names, esc_ep, esc, final, cost = [], [], [], [], []
    plan = {"constant": ([], None), **dict(cures), **({"fresh weights": ([], "fresh")} if reference else {})}
    for name, (stages, size) in plan.items():
        stages = [] if isinstance(stages, (list, tuple)) and not stages else list(_phases(stages))
        used = sum(s.epochs for s in stages)
        if used >= epochs:
            raise ValueError(f"cure {name!r}: its stages take {used} epochs, not less than epochs = {epochs}")
        init = (trap if size is None else "std" if isinstance(size, str) and size == "fresh"
                else reseed(trap, data, mode=mode, size=size, rng=root))
        sch = run_schedule(data, init, [*stages, Stage(epochs - used, wd)], n_layers=n_layers, width=width, lr=lr,
                           batch_size=batch_size, weight_decay=wd, test=test, log_every=log_every,
                           layer_log_every=epochs, convention=convention, rng=root, n_seeds=trap.n_seeds)
        r = [_escape(sch.singular_values[s, :, mode], sch.log_epochs, threshold) for s in range(trap.n_seeds)]
        names.append(name)
        esc_ep.append([x[0] for x in r])
        esc.append([x[1] for x in r])
        final.append((sch.test_mse if sch.test_mse is not None else sch.train_mse)[:, -1])
        cost.append(used)
    esc_ep, esc = np.array(esc_ep), np.array(esc, dtype=bool)
    fits = [exponential_mle(np.maximum(esc_ep[i], 1e-9), ~esc[i], time_unit="epochs") for i in range(len(names))]
    tau = np.array([np.nan if f.tau is None else f.tau for f in fits], dtype=float)
    lo = np.array([f.tau_ci[0] if f.tau_ci else f.tau_lower for f in fits], dtype=float)
    hi = np.array([f.tau_ci[1] if f.tau_ci else np.inf for f in fits], dtype=float)
    return CureComparison(tuple(names), wd, epochs, int(mode), float(threshold), esc_ep, esc, tau, lo, hi,
                          np.array(final), np.array(cost, dtype=np.int64))


def plot_cures(comparisons, path=None, *, titles=None):
    """Epochs to escape per cure and seed, one panel per comparison; censored seeds marked.

    Escaped seeds are filled dots at their escape epoch; seeds that never escaped are open
    triangles pointing right at the end of the run (their escape time is only bounded below);
    the black bar is the censoring-aware mean with its 95% interval (an open bar where no
    seed escaped: the one-sided bound).

    Parameters
    ----------
    comparisons : CureComparison or sequence of them
    path : str or Path, optional
        Where to save the figure (PNG/PDF/SVG by suffix).
    titles : sequence of str, optional
        One per comparison.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib
    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    comps = [comparisons] if isinstance(comparisons, CureComparison) else list(comparisons)
    if not comps or not all(isinstance(c, CureComparison) for c in comps):
        raise ValueError("comparisons must be a CureComparison or a non-empty sequence of them")
    titles = [repr(c) for c in comps] if titles is None else list(titles)
    if len(titles) != len(comps):
        raise ValueError(f"titles must have one entry per comparison ({len(comps)}), got {len(titles)}")
    n_names = max(len(c.names) for c in comps)
    n_cols = min(2, len(comps))
    n_rows = -(-len(comps) // n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(6.4 * n_cols, (0.3 * n_names + 1.4) * n_rows), squeeze=False)
    for ax, c, title in zip(axes.ravel(), comps, titles):
        _plot_comparison(ax, c, title)
    for ax in axes.ravel()[len(comps):]:
        ax.set_visible(False)
    fig.suptitle("dots: seeds that escaped; red triangles: never escaped by the end of the run (dashed); "
                 "bar: censoring-aware mean and 95% interval", fontsize=9)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


def _plot_comparison(ax, c, title):
    n_seeds = c.escaped.shape[1]
    jitter = (np.arange(n_seeds) - (n_seeds - 1) / 2) * (0.5 / max(n_seeds, 1))
    floor = 0.5                                   # an escape at epoch 0 (already above the threshold) is drawn here
    for i in range(len(c.names)):
        y = i + jitter
        e, ok = c.escape_epoch[i], c.escaped[i]
        ax.plot(np.maximum(e[ok], floor), y[ok], "o", color="tab:blue", ms=4)
        ax.plot(e[~ok], y[~ok], ">", mfc="none", color="tab:red", ms=5)
        lo, hi = max(c.tau_low[i], floor), c.tau_high[i]
        if ok.any():
            ax.hlines(i, lo, min(hi, c.epochs * 10), colors="k", lw=2)
            ax.plot(max(c.tau[i], floor), i, "|", color="k", ms=12, mew=2)
        else:
            ax.hlines(i, lo, lo * 3, colors="k", lw=1, linestyles=":")
    ax.axvline(c.epochs, color="0.5", lw=1, ls="--")
    ax.set_xlim(floor / 1.5, c.epochs * 20)
    ax.set_yticks(range(len(c.names)), [f"{n} ({int(c.escaped[i].sum())}/{n_seeds})" for i, n in enumerate(c.names)],
                  fontsize=7)
    ax.invert_yaxis()
    ax.set(xscale="log", xlabel="epochs to escape", title=title)
    ax.title.set_fontsize(9)
