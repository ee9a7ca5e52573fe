"""The paper's experimental protocols on top of :func:`train` (science brief, section 6).

E1 ``weight_decay_sweep``   quasi-static sweep of the weight decay, re-converged at every value
E2 ``trap_and_release``     prepare a trapped checkpoint, switch to the target weight decay, time the escape
E4 ``arrhenius_sweep``      escape times from one trap over a grid of (lr, batch_size), with T_eff per point
E5 ``sparse_grokking``      25 of 5000 samples, tiny weight decay: escape time against the residual seed

Every protocol returns a registered result (HDF5 through ``phasetools.io``). Times are
reported in epochs, SGD steps and Langevin time ``t = lr * steps`` (convention units).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._progress import progress
from .._validation import as_float_array, check_choice
from ..results import Result, register
from ..theory import Convention
from ._data import Dataset, GaussianTeacher, Moments, as_data
from ._noise import effective_temperature, gradient_covariance
from ._train import TrainingRun, _int, _scalar, batch_gradient, train

__all__ = ["WeightDecaySweep", "weight_decay_sweep", "converge", "prepare_trap", "TrapRelease",
           "trap_and_release", "trap_weight_decay", "mse_levels", "escape_epochs", "ArrheniusSweep", "arrhenius_sweep", "SparseGrokking",
           "sparse_grokking", "RANK_THRESHOLD"]

#: End-to-end singular values above this count towards the rank (the learned values of the
#: paper's set-up are >= 0.2 up to the spinodal; a lost mode decays to ~0 under weight decay).
RANK_THRESHOLD = 0.05


def _grad_norms(run: TrainingRun, data, beta) -> np.ndarray:
    """Norm of the full-data gradient of the objective (weight decay included) per seed."""
    conv = run.convention
    out = np.empty(run.n_seeds)
    for s in range(run.n_seeds):
        if run.status[s] != 0:
            out[s] = np.nan
            continue
        g = batch_gradient(run.weights(seed=s), data, convention=conv, beta=beta)
        out[s] = math.sqrt(sum(float(np.sum(x * x)) for x in g))
    return out


def converge(data, init, *, beta, n_layers, width, lr, convention="paper", tol=1e-8, chunk_epochs=1000,
             max_epochs=100_000, rng=None):
    """Full-batch gradient descent from ``init`` until every seed's gradient norm is below ``tol``.

    The criterion: ``||grad_W [loss + (beta/2) sum ||W||^2]|| < tol`` on all the data (a
    Dataset is trained on its exact moments: full-batch GD), checked every
    ``chunk_epochs`` steps, at most ``max_epochs`` steps. Returns ``(run, epochs,
    grad_norm, converged)`` with ``run`` the last chunk's TrainingRun.
    """
    d = as_data(data)
    mom = d if isinstance(d, Moments) else d.moments()
    tol = _scalar(tol, "tol", positive=True)
    chunk_epochs = _int(chunk_epochs, "chunk_epochs", 1)
    max_epochs = _int(max_epochs, "max_epochs", 1)
    done, run = 0, None
    state = init
    while True:
        run = train(mom, n_layers=n_layers, width=width, lr=lr, beta=beta, convention=convention,
                    epochs=min(chunk_epochs, max_epochs - done), init=state, log_every=chunk_epochs,
                    rng=rng, n_threads=1)
        done += run.epochs
        state = run
        g = _grad_norms(run, mom, beta)
        ok = np.isfinite(g) & (g < tol)
        if ok.all() or done >= max_epochs or (run.status != 0).all():
            return run, done, g, ok


def _rank(sv, threshold):
    return np.sum(np.nan_to_num(sv, nan=0.0) > threshold, axis=-1)


# -- E1 --------------------------------------------------------------------------------------
@register
@dataclass(frozen=True, eq=False, repr=False)
class WeightDecaySweep(Result):
    """E1: the state reached at each weight decay of a quasi-static sweep (one row per seed).

    At each ``betas[j]`` the network continues from the previous value's end state and is
    re-converged: full-batch gradient descent until the gradient norm is below ``tol``
    (``batch_size=None``) or ``epochs_per_step`` epochs of minibatch SGD. ``rank`` counts
    end-to-end singular values above ``rank_threshold``.
    """

    n_layers: int
    width: int
    lr: float
    convention: Convention
    batch_size: int | None
    tol: float
    chunk_epochs: int
    max_epochs: int
    epochs_per_step: int | None
    start_epochs: int
    rank_threshold: float
    direction: str
    train_moments: Moments
    test_moments: Moments | None
    betas: np.ndarray
    rank: np.ndarray
    singular_values: np.ndarray
    train_mse: np.ndarray
    test_mse: np.ndarray | None
    loss: np.ndarray
    grad_norm: np.ndarray
    converged: np.ndarray
    epochs: np.ndarray
    final_params: np.ndarray

    _config_fields = ("n_layers", "width", "lr", "convention", "batch_size", "tol", "chunk_epochs", "max_epochs",
                      "epochs_per_step", "start_epochs", "rank_threshold", "direction", "train_moments",
                      "test_moments")
    _dims = {"betas": ("step",), "rank": ("seed", "step"), "singular_values": ("seed", "step", "mode"),
             "train_mse": ("seed", "step"), "test_mse": ("seed", "step"), "loss": ("seed", "step"),
             "grad_norm": ("seed", "step"), "converged": ("seed", "step"), "epochs": ("seed", "step"),
             "final_params": ("seed", "param")}
    _coords = {"step": "betas"}
    _units = {"betas": "weight_decay", "train_mse": "mse", "test_mse": "mse", "loss": "loss[convention]",
              "singular_values": "end_to_end", "epochs": "epochs", "final_params": "weight"}

    @property
    def n_seeds(self) -> int:
        return int(self.rank.shape[0])

    def drops(self, seed: int = 0) -> list:
        """Every change of rank along the sweep for ``seed``: ``(beta_before, beta_after,
        rank_before, rank_after)``; the transition lies between the two weight decays."""
        r = self.rank[int(seed)]
        return [(float(self.betas[j - 1]), float(self.betas[j]), int(r[j - 1]), int(r[j]))
                for j in range(1, r.size) if r[j] != r[j - 1]]

    def drop_positions(self) -> np.ndarray:
        """(seed, k): the first weight decay at which the rank is below ``r0 - k`` (``r0`` the
        rank at the first value), NaN if never. For an increasing sweep, the spinodal of the
        ``k``-th lost mode lies in ``(betas[j-1], betas[j]]``."""
        r0 = int(self.rank[:, 0].max()) if self.rank.size else 0
        out = np.full((self.n_seeds, max(r0, 1)), np.nan)
        for s in range(self.n_seeds):
            for k in range(r0):
                hit = np.nonzero(self.rank[s] < self.rank[s, 0] - k)[0]
                if hit.size:
                    out[s, k] = self.betas[hit[0]]
        return out

    def __repr__(self):
        return (f"WeightDecaySweep({self.direction}, betas {self.betas[0]:g}..{self.betas[-1]:g} "
                f"({self.betas.size} values), n_seeds={self.n_seeds}, rank {self.rank[:, 0].tolist()} -> "
                f"{self.rank[:, -1].tolist()})")


def _check_betas(betas):
    b = as_float_array(betas, "betas")
    if b.ndim != 1 or b.size < 2 or not np.all(np.isfinite(b)) or np.any(b < 0):
        raise ValueError("betas must be a 1-D list of at least 2 finite weight decays >= 0")
    d = np.diff(b)
    if np.all(d > 0):
        return b, "increasing"
    if np.all(d < 0):
        return b, "decreasing"
    raise ValueError("betas must be strictly increasing or strictly decreasing (one sweep direction)")


def weight_decay_sweep(data, betas, *, n_layers=3, width=10, lr=0.08, convention="paper", n_seeds=1,
                       init="std", batch_size=None, epochs_per_step=None, tol=1e-8, chunk_epochs=1000,
                       max_epochs=100_000, start_epochs=None, rank_threshold=RANK_THRESHOLD, test=None,
                       rng=None, quiet=False) -> WeightDecaySweep:
    """E1: sweep the weight decay quasi-statically and record the state at each value.

    Starts from ``init`` (random weights by default, drawn from ``rng``), converges at
    ``betas[0]`` and then steps through ``betas`` (strictly increasing or decreasing),
    re-converging at each value from the previous end state. Convergence: full-batch
    gradient descent on the data (``batch_size=None``; a Dataset is trained on its exact
    moments) until the gradient norm is below ``tol`` (checked every ``chunk_epochs``, at
    most ``max_epochs``; ``converged`` records it), or ``epochs_per_step`` epochs of
    minibatch SGD with ``batch_size`` (the paper's set-up; ``start_epochs`` at
    ``betas[0]``, default ``10 * epochs_per_step``).

    On population data (``GaussianTeacher([0.9, 0.8]).moments``, ``n_layers=3``,
    ``convention="paper"``) an increasing sweep from 0 loses the weak mode at the first
    value above 0.3509 and the strong one above 0.4105 (the spinodals); a decreasing sweep
    that starts at rank 0 stays there (no lower spinodal for ``n_layers >= 3``).
    """
    b, direction = _check_betas(betas)
    d = as_data(data)
    mom = d if isinstance(d, Moments) else d.moments()
    test_mom = None
    if test is not None:
        t = as_data(test, "test")
        test_mom = t if isinstance(t, Moments) else t.moments()
    rank_threshold = _scalar(rank_threshold, "rank_threshold", positive=True)
    sgd = batch_size is not None
    if sgd:
        if isinstance(d, Moments):
            raise ValueError("batch_size needs samples (X, Y) or a Dataset, not moments")
        epochs_per_step = _int(epochs_per_step if epochs_per_step is not None else 200, "epochs_per_step", 1)
        start_epochs = 10 * epochs_per_step if start_epochs is None else _int(start_epochs, "start_epochs", 1)
    else:
        if epochs_per_step is not None:
            raise ValueError("epochs_per_step applies to minibatch sweeps (batch_size=...); full-batch sweeps "
                             "converge to tol")
        start_epochs = 0 if start_epochs is None else _int(start_epochs, "start_epochs", 0)
    seq = np.random.SeedSequence(rng) if not isinstance(rng, np.random.SeedSequence) else rng
    S = b.size
    cols = {k: [] for k in ("sv", "train", "test", "loss", "g", "ok", "ep")}
    state = init
    n_out = None
    kw = dict(n_layers=n_layers, width=width, lr=lr, convention=convention)
    for j in progress(range(S), desc="E1 weight-decay sweep", quiet=quiet):
        beta = float(b[j])
        if sgd:
            ep = epochs_per_step + (start_epochs if j == 0 else 0)
            run = train(d, beta=beta, batch_size=batch_size, epochs=ep, init=state,
                        n_seeds=n_seeds if isinstance(state, str) else None, log_every=ep, rng=seq.spawn(1)[0],
                        **kw)
            g = _grad_norms(run, mom, beta)
            ok = np.zeros(run.n_seeds, dtype=bool)
            eps = np.full(run.n_seeds, ep)
        else:
            if isinstance(state, str):
                state = train(mom, beta=beta, epochs=0, init=state, n_seeds=n_seeds, rng=seq.spawn(1)[0], **kw)
            run, ep, g, ok = converge(mom, state, beta=beta, tol=tol, chunk_epochs=chunk_epochs,
                                      max_epochs=max_epochs, rng=seq.spawn(1)[0], **kw)
            eps = np.full(run.n_seeds, ep)
        state = run
        M = _end_to_end(run)
        n_out = run.d_out
        cols["sv"].append(run.singular_values[:, -1])
        cols["train"].append(np.array([mom.mse(m) for m in M]))
        cols["test"].append(np.array([test_mom.mse(m) for m in M]) if test_mom is not None else None)
        cols["loss"].append(run.loss[:, -1])
        cols["g"].append(g)
        cols["ok"].append(ok)
        cols["ep"].append(eps)
    sv = np.stack(cols["sv"], axis=1)
    assert n_out is not None
    return WeightDecaySweep(
        n_layers=int(n_layers), width=int(width), lr=float(lr), convention=state.convention,
        batch_size=None if not sgd else int(batch_size), tol=float(tol), chunk_epochs=int(chunk_epochs),
        max_epochs=int(max_epochs), epochs_per_step=epochs_per_step, start_epochs=int(start_epochs),
        rank_threshold=rank_threshold, direction=direction, train_moments=mom, test_moments=test_mom, betas=b,
        rank=_rank(sv, rank_threshold), singular_values=sv, train_mse=np.stack(cols["train"], axis=1),
        test_mse=np.stack(cols["test"], axis=1) if test_mom is not None else None,
        loss=np.stack(cols["loss"], axis=1), grad_norm=np.stack(cols["g"], axis=1),
        converged=np.stack(cols["ok"], axis=1), epochs=np.stack(cols["ep"], axis=1).astype(np.int64),
        final_params=np.asarray(state.final_params, dtype=np.float64), seeds=(int(seq.entropy), *(int(k) for k in seq.spawn_key)),
        stats={})


def _end_to_end(run: TrainingRun) -> np.ndarray:
    ws = run.weights()
    M = ws[0]
    for w in ws[1:]:
        M = np.einsum("sij,sjk->sik", w, M)
    return M


# -- E2 --------------------------------------------------------------------------------------
def mse_levels(data, beta, *, n_layers=3, convention="paper", test=None) -> np.ndarray:
    """Test MSE of the top-``r`` states at weight decay ``beta``, ``r = 0, 1, ...`` (NaN where the
    state does not exist), from the per-mode theory of the training data's moments.

    The end-to-end map of the top-``r`` state keeps the ``r`` strongest singular directions of
    the cross-covariance with the learned values of ``theory.landscape``; its MSE
    is measured on ``test`` (default: the training moments). For finite samples the aligned
    per-mode picture is an approximation (``theory.empirical_modes`` quantifies it); it
    fixes escape thresholds without a reference run.
    """
    from ..theory import landscape
    d = as_data(data)
    mom = d if isinstance(d, Moments) else d.moments()
    tm = mom
    if test is not None:
        t = as_data(test, "test")
        tm = t if isinstance(t, Moments) else t.moments()
    U, _, Vt = np.linalg.svd(mom.cross_cov)
    lam = np.asarray(landscape(n_layers, mom.spectrum, beta, mom.a, convention=convention).lam_min,
                     dtype=object)
    out = np.full(lam.size + 1, np.nan)
    M = np.zeros_like(mom.cross_cov)
    out[0] = tm.mse(M)
    for r in range(lam.size):
        if lam[r] is None or np.ma.is_masked(lam[r]):
            break
        M = M + float(lam[r]) * np.outer(U[:, r], Vt[r])     # the aligned theory's end-to-end map
        out[r + 1] = tm.mse(M)
    return out


def trap_weight_decay(data, rank, *, n_layers=3, convention="paper") -> float:
    """A weight decay at which the network keeps only its ``rank`` strongest modes, from the
    data's own spectrum: midway between the spinodals of mode ``rank`` (1-based: the
    ``rank + 1``-th strongest, which is lost) and mode ``rank - 1`` (kept), or 1.1 x the
    largest spinodal for ``rank = 0``. For finite samples this is the corrected version of
    the paper's fixed trap values (0.361, 0.43), which some draws do not trap at.
    """
    from ..theory import critical_points
    d = as_data(data)
    mom = d if isinstance(d, Moments) else d.moments()
    sp = np.sort(np.asarray(critical_points(n_layers, mom.spectrum, mom.a, convention=convention).gamma_sp,
                            dtype=float))[::-1]
    sp = sp[np.isfinite(sp)]
    rank = _int(rank, "rank", 0)
    if rank >= sp.size:
        raise ValueError(f"rank must be < {sp.size}, the number of learnable modes of the data, got {rank}")
    if rank == 0:
        return float(1.1 * sp[0])
    return float(0.5 * (sp[rank - 1] + sp[rank]))


def prepare_trap(data, *, trap_betas=(0.0, 0.361), trap_epochs=(2000, 2000), n_layers=3, width=10, lr=0.08,
                 batch_size=64, convention="paper", n_seeds=1, init="std", dtype="float64", rng=None,
                 seed_offset=0) -> TrainingRun:
    """A trapped checkpoint: SGD from ``init`` at ``trap_betas[0]`` for ``trap_epochs[0]``
    epochs, then at ``trap_betas[1]`` ... (the paper's "converged at beta = 0, then at a beta
    above the relevant transition"). Returns the last stage's TrainingRun (its
    ``final_params`` are the checkpoint; ``layer_singular_values`` hold the residual seed).
    Seeds that diverge in a stage are not carried into the next one
    (``stats["diverged_in_preparation"]`` counts them; a last-stage divergence stays in the
    run with ``status`` 2)."""
    tb = [_scalar(x, "trap_betas") for x in np.atleast_1d(trap_betas)]
    te = [_int(x, "trap_epochs", 1) for x in np.atleast_1d(trap_epochs)]
    if len(tb) != len(te) or not tb:
        raise ValueError("trap_betas and trap_epochs must have the same, non-zero length")
    seq = np.random.SeedSequence(rng) if not isinstance(rng, np.random.SeedSequence) else rng
    d = as_data(data)
    state = init
    run = None
    lost = 0
    for k, (beta, ep) in enumerate(zip(tb, te)):
        if isinstance(state, TrainingRun):
            state, n_bad = _finite_init(state)
            lost += n_bad
        kw = dict(batch_size=batch_size) if isinstance(d, Dataset) else {}
        run = train(d, n_layers=n_layers, width=width, lr=lr, beta=beta, convention=convention, epochs=ep,
                    init=state, n_seeds=n_seeds if isinstance(state, str) else None, log_every=ep,
                    drop_last=not (isinstance(d, Dataset) and batch_size is not None and batch_size > d.n_samples),
                    dtype=dtype, rng=seq.spawn(1)[0], seed_offset=seed_offset if k == 0 else 0, **kw)
        state = run
    run.stats["diverged_in_preparation"] = lost
    return run


def escape_epochs(log_epochs, series, threshold, *, direction):
    """First log epoch at which ``series`` (seed, log) crosses ``threshold``.

    ``direction="down"``: first ``series < threshold``; ``"up"``: first ``series > threshold``.
    Returns ``(epochs, escaped)``; a seed that never crosses gets the last logged epoch and
    ``escaped = False`` (right-censored). NaN entries (a diverged seed) never cross.
    """
    check_choice(direction, "direction", ("down", "up"))
    s = np.asarray(series, dtype=float)
    hit = (s < threshold) if direction == "down" else (s > threshold)
    hit &= np.isfinite(s)
    escaped = hit.any(axis=1)
    first = np.argmax(hit, axis=1)
    ep = np.where(escaped, np.asarray(log_epochs)[first], np.asarray(log_epochs)[-1])
    return ep.astype(np.int64), escaped


@register
@dataclass(frozen=True, eq=False, repr=False)
class TrapRelease(Result):
    """E2: escape from a trapped checkpoint after the weight decay switches to ``target_beta``.

    ``test_mse``/``train_mse``/``singular_values`` are logged every ``log_every`` epochs of
    the release (epoch 0 = the checkpoint). Two escape criteria, per seed:

    * ``mse``: the first epoch at which the test MSE crosses ``midpoint = (plateau_level +
      target_level) / 2``; ``plateau_level`` is the median test MSE of the checkpoints,
      ``target_level`` the median final test MSE of ``reference`` runs (fresh random weights
      trained at ``target_beta`` for the same epochs: the paper's protocol (i));
    * ``sv``: the first epoch at which end-to-end singular value ``sv_index`` crosses
      ``sv_threshold``.

    Seeds that never cross are right-censored at the last epoch (``escaped_* = False``).
    Checkpoint seeds that diverged while being prepared are not released (``trap_diverged``
    counts them); every per-seed array covers the released seeds.
    ``seed_size`` is the ``sv_index``-th singular value of every layer at the checkpoint
    (seed, layer): the residual seed of the unlearned mode (science brief 5.3).
    """

    n_layers: int
    width: int
    lr: float
    batch_size: int | None
    target_beta: float
    trap_betas: tuple
    trap_epochs: tuple
    epochs: int
    relax_epochs: int
    log_every: int
    steps_per_epoch: int
    convention: Convention
    dtype: str
    sv_index: int
    sv_threshold: float
    train_moments: Moments
    test_moments: Moments | None
    log_epochs: np.ndarray
    test_mse: np.ndarray
    train_mse: np.ndarray
    singular_values: np.ndarray
    reference_test_mse: np.ndarray
    plateau_level: float
    target_level: float
    midpoint: float
    trap_rank: np.ndarray
    seed_size: np.ndarray
    escape_epoch_mse: np.ndarray
    escaped_mse: np.ndarray
    escape_epoch_sv: np.ndarray
    escaped_sv: np.ndarray
    reference_epoch: np.ndarray
    reference_escaped: np.ndarray
    reference_rank: np.ndarray
    target_rank: int
    trap_diverged: int

    _config_fields = ("n_layers", "width", "lr", "batch_size", "target_beta", "trap_betas", "trap_epochs",
                      "epochs", "relax_epochs", "log_every", "steps_per_epoch", "convention", "dtype", "sv_index", "sv_threshold",
                      "train_moments", "test_moments")
    _dims = {"log_epochs": ("log",), "test_mse": ("seed", "log"), "train_mse": ("seed", "log"),
             "singular_values": ("seed", "log", "mode"), "reference_test_mse": ("reference_seed", "log"),
             "trap_rank": ("seed",), "seed_size": ("seed", "layer"), "escape_epoch_mse": ("seed",),
             "escaped_mse": ("seed",), "escape_epoch_sv": ("seed",), "escaped_sv": ("seed",),
             "reference_epoch": ("reference_seed",), "reference_escaped": ("reference_seed",),
             "reference_rank": ("reference_seed",)}
    _coords = {"log": "log_epochs"}
    _units = {"log_epochs": "epochs", "test_mse": "mse", "train_mse": "mse", "reference_test_mse": "mse",
              "singular_values": "end_to_end", "seed_size": "weight", "escape_epoch_mse": "epochs",
              "escape_epoch_sv": "epochs", "reference_epoch": "epochs", "target_beta": "weight_decay"}

    @property
    def n_seeds(self) -> int:
        return int(self.escape_epoch_mse.size)

    @property
    def trapped(self) -> np.ndarray:
        """Per seed: the checkpoint's rank differs from ``target_rank``. An untrapped
        checkpoint (e.g. a finite-sample draw whose spinodal lies above the trap's weight
        decay, science brief E2(c)) has nothing to escape from."""
        return self.trap_rank != self.target_rank

    def escape_times(self, criterion="mse", unit="epochs", *, trapped_only=True):
        """``(times, censored)`` per seed; ``unit`` "epochs", "steps" or "time" (Langevin time
        ``lr * steps`` in the convention's units)."""
        check_choice(criterion, "criterion", ("mse", "sv"))
        check_choice(unit, "unit", ("epochs", "steps", "time"))
        ep, ok = ((self.escape_epoch_mse, self.escaped_mse) if criterion == "mse"
                  else (self.escape_epoch_sv, self.escaped_sv))
        scale = {"epochs": 1.0, "steps": float(self.steps_per_epoch),
                 "time": self.lr * self.steps_per_epoch}[unit]
        keep = self.trapped if trapped_only else np.ones(self.n_seeds, dtype=bool)
        return ep[keep] * scale, ~ok[keep]

    def fit(self, criterion="mse", unit="epochs", confidence=0.95):
        """Censoring-aware exponential fit (:func:`phasetools.stats.exponential_mle`) over the
        trapped seeds; ValueError when no seed was trapped."""
        from ..stats import exponential_mle
        t, c = self.escape_times(criterion, unit)
        if t.size == 0:
            raise ValueError("no seed was trapped (every checkpoint already has target_rank): no escape time "
                             "to fit")
        return exponential_mle(t, c, confidence=confidence, time_unit=unit)

    def __repr__(self):
        return (f"TrapRelease(target_beta={self.target_beta:g}, trap_betas={self.trap_betas}, lr={self.lr:g}, "
                f"batch_size={self.batch_size}, n_seeds={self.n_seeds}, trapped={int(self.trapped.sum())}, "
                f"epochs={self.epochs}, escaped "
                f"{int(self.escaped_mse.sum())} (mse) / {int(self.escaped_sv.sum())} (sv))")


def _levels_and_escapes(release: TrainingRun, reference: TrainingRun | None, relax_epochs, levels, sv_index,
                        sv_threshold):
    test = release.test_mse if release.test_mse is not None else release.train_mse
    j = min(int(np.searchsorted(release.log_epochs, relax_epochs)), release.log_epochs.size - 1)
    plateau = float(np.nanmedian(test[:, j]))
    if levels is not None:
        plateau, target = (float(x) for x in levels)
    else:
        if reference is None:
            raise ValueError("levels=(plateau, target) are needed without a reference run")
        rt = reference.test_mse if reference.test_mse is not None else reference.train_mse
        tail = max(1, rt.shape[1] // 10)
        target = float(np.nanmedian(rt[:, -tail:]))
    mid = 0.5 * (plateau + target)
    direction = "down" if target < plateau else "up"
    ep_mse, ok_mse = escape_epochs(release.log_epochs, test, mid, direction=direction)
    sv = release.singular_values[:, :, sv_index]
    if sv_threshold is None:
        ref_sv = (float(np.nanmedian(reference.singular_values[:, -1, sv_index])) if reference is not None
                  else float(np.nanmax(sv)))
        sv_threshold = 0.5 * (float(np.nanmedian(sv[:, 0])) + ref_sv)
    sv_dir = "up" if np.nanmedian(sv[:, 0]) < sv_threshold else "down"
    ep_sv, ok_sv = escape_epochs(release.log_epochs, sv, sv_threshold, direction=sv_dir)
    return plateau, target, mid, direction, ep_mse, ok_mse, ep_sv, ok_sv, float(sv_threshold)


def _finite_init(run: TrainingRun):
    """``run`` as a starting point: itself, or the per-layer weights of its seeds that did not
    diverge (a diverged seed has nothing to release). Returns ``(init, n_diverged)``."""
    bad = ~np.all(np.isfinite(run.final_params), axis=1)
    if not bad.any():
        return run, 0
    if bad.all():
        raise ValueError("every seed of the checkpoint diverged (non-finite weights); lower lr")
    return [w[~bad] for w in run.weights()], int(bad.sum())


def _layer_sv(run, k: int) -> np.ndarray:
    ws = run.weights() if isinstance(run, TrainingRun) else run
    out = np.empty((ws[0].shape[0], len(ws)))
    for i, w in enumerate(ws):
        s = np.linalg.svd(w, compute_uv=False)
        out[:, i] = s[:, k] if s.shape[1] > k else 0.0
    return out


def trap_and_release(data, *, target_beta=0.32, trap_betas=(0.0, 0.361), trap_epochs=(2000, 2000),
                     epochs=20_000, n_layers=3, width=10, lr=0.08, batch_size=64, convention="paper",
                     n_seeds=50, n_reference=None, test=None, trap=None, levels=None, sv_index=None,
                     sv_threshold=None, relax_epochs=None, target_rank=None, log_every=1, dtype="float64", rng=None,
                     quiet=False) -> TrapRelease:
    """E2: prepare a trapped checkpoint, switch the weight decay to ``target_beta`` and time the escape.

    ``trap`` (a TrainingRun, e.g. from :func:`prepare_trap`) is the checkpoint; without it
    one is prepared with ``trap_betas``/``trap_epochs`` (SGD with the same ``lr`` and
    ``batch_size``). ``n_reference`` fresh runs at ``target_beta`` (default ``n_seeds``)
    set the target level (protocol (i); their own convergence epochs are
    ``reference_epoch``). ``sv_index`` defaults to the checkpoint's rank (the first
    unlearned mode); ``sv_threshold`` to halfway between its checkpoint and reference
    values. ``target_rank`` (default: the reference runs' median rank) is the rank the
    escape leads to; seeds whose checkpoint already has it are not ``trapped`` and are left
    out of the fits. ``levels=(plateau, target)`` overrides the measured MSE levels; by default the
    plateau is the median test MSE at epoch ``relax_epochs`` of the release (default
    ``min(50, epochs // 10)``: the checkpoint has relaxed to the target weight decay inside
    its basin) and the target the median over the last 10% of the reference runs.

    Paper E2: ``target_beta=0.32``, lr 0.08, ``batch_size=64``, N = 512, traps converged at
    0.361 (rank 1) and 0.43 (rank 0), 2*10^4 epochs, 50 seeds.
    """
    d = as_data(data)
    epochs = _int(epochs, "epochs", 1)
    relax_epochs = min(50, epochs // 10) if relax_epochs is None else _int(relax_epochs, "relax_epochs", 0)
    n_seeds = _int(n_seeds, "n_seeds", 1)
    n_reference = n_seeds if n_reference is None else _int(n_reference, "n_reference", 0)
    target_beta = _scalar(target_beta, "target_beta")
    seq = np.random.SeedSequence(rng) if not isinstance(rng, np.random.SeedSequence) else rng
    s_trap, s_rel, s_ref = seq.spawn(3)
    bar = progress(total=3, desc="E2 trap and release", quiet=quiet)
    if trap is None:
        trap = prepare_trap(d, trap_betas=trap_betas, trap_epochs=trap_epochs, n_layers=n_layers, width=width,
                            lr=lr, batch_size=batch_size, convention=convention, n_seeds=n_seeds, dtype=dtype,
                            rng=s_trap)
    elif not isinstance(trap, TrainingRun):
        raise ValueError("trap must be a TrainingRun (e.g. from prepare_trap) or None")
    else:
        trap_betas, trap_epochs = (), ()  # a given checkpoint: its own record holds its history
    bar.update(1)
    full_batch = isinstance(d, Dataset) and batch_size is not None and batch_size > d.n_samples
    kw = dict(n_layers=n_layers, width=width, lr=lr, beta=target_beta, convention=convention, epochs=epochs,
              test=test, log_every=log_every, layer_log_every=epochs, dtype=dtype)
    if isinstance(d, Dataset):
        kw.update(batch_size=batch_size, drop_last=not full_batch)
    start, n_diverged = _finite_init(trap)
    release = train(d, init=start, rng=s_rel, **kw)
    bar.update(1)
    reference = None
    if n_reference:
        # logged every epoch (the convergence epoch of fresh weights is a few epochs), stored
        # at the release's log epochs
        reference = train(d, init="std", n_seeds=n_reference, rng=s_ref, seed_offset=10_000,
                          **{**kw, "log_every": 1})
    bar.update(1)
    bar.close()
    trap_sv = trap.singular_values[:, -1][np.all(np.isfinite(trap.final_params), axis=1)]
    trap_rank = _rank(trap_sv, RANK_THRESHOLD)
    n_modes = trap_sv.shape[1]
    if sv_index is None:
        k = min(int(np.median(trap_rank)), n_modes - 1)
    else:
        k = int(sv_index)
        if not 0 <= k < n_modes:
            raise ValueError(f"sv_index must be in [0, {n_modes}), got {sv_index!r}")
    plateau, target, mid, direction, ep_mse, ok_mse, ep_sv, ok_sv, thr = _levels_and_escapes(
        release, reference, relax_epochs, levels, k, sv_threshold)
    if reference is not None:
        rt = reference.test_mse if reference.test_mse is not None else reference.train_mse
        ref_ep, ref_ok = escape_epochs(reference.log_epochs, rt, mid, direction=direction)
        ref_mse = rt[:, np.searchsorted(reference.log_epochs, release.log_epochs)]
        ref_rank = _rank(reference.singular_values[:, -1], RANK_THRESHOLD).astype(np.int64)
    else:
        ref_rank = np.zeros(0, np.int64)
        ref_ep = np.zeros(0, np.int64)
        ref_ok = np.zeros(0, bool)
        ref_mse = np.zeros((0, release.log_epochs.size))
    return TrapRelease(
        n_layers=int(n_layers), width=int(width), lr=float(lr), batch_size=release.batch_size,
        target_beta=target_beta, trap_betas=tuple(float(x) for x in np.atleast_1d(trap_betas)),
        trap_epochs=tuple(int(x) for x in np.atleast_1d(trap_epochs)), epochs=epochs,
        relax_epochs=relax_epochs, log_every=int(log_every),
        steps_per_epoch=release.steps_per_epoch, convention=release.convention, dtype=release.dtype, sv_index=k,
        sv_threshold=thr, train_moments=release.train_moments, test_moments=release.test_moments,
        log_epochs=release.log_epochs, test_mse=release.test_mse if release.test_mse is not None
        else release.train_mse, train_mse=release.train_mse, singular_values=release.singular_values,
        reference_test_mse=ref_mse, plateau_level=plateau, target_level=target, midpoint=mid,
        trap_rank=trap_rank.astype(np.int64), seed_size=_layer_sv(start, k), trap_diverged=n_diverged, escape_epoch_mse=ep_mse,
        escaped_mse=ok_mse, escape_epoch_sv=ep_sv, escaped_sv=ok_sv, reference_epoch=ref_ep,
        reference_escaped=ref_ok, reference_rank=ref_rank,
        target_rank=int(target_rank) if target_rank is not None else
        (int(np.median(ref_rank)) if ref_rank.size else int(trap_sv.shape[1])), seeds=(int(seq.entropy), *(int(k) for k in seq.spawn_key)),
        stats={"wall_time": release.stats["wall_time"] + (reference.stats["wall_time"] if reference else 0.0)})


# -- E4 --------------------------------------------------------------------------------------
@register
@dataclass(frozen=True, eq=False, repr=False)
class ArrheniusSweep(Result):
    """E4: escape times from one trapped checkpoint over a grid of ``(lr, batch_size)`` points.

    Per point: escape epochs per seed by the test-MSE midpoint rule of :class:`TrapRelease`
    (censored at ``epochs``), the censoring-aware exponential mean ``tau`` with its interval
    in epochs, steps and Langevin time ``lr * steps``, and ``temperature``: the effective
    temperature ``lr tr(Sigma) / (2 B N_theta)`` (without-replacement factor included) of the
    per-sample gradient covariance ``Sigma`` measured on the training data at the checkpoint
    (median over seeds), in convention units.
    """

    n_layers: int
    width: int
    target_beta: float
    epochs: int
    convention: Convention
    steps_per_epoch_rule: str
    n_samples: int
    plateau_level: float
    target_level: float
    midpoint: float
    lr: np.ndarray
    batch_size: np.ndarray
    steps_per_epoch: np.ndarray
    temperature: np.ndarray
    gradient_trace: np.ndarray
    escape_epoch: np.ndarray
    escaped: np.ndarray
    tau_epochs: np.ndarray
    tau_epochs_low: np.ndarray
    tau_epochs_high: np.ndarray
    tau_time: np.ndarray
    tau_time_low: np.ndarray
    tau_time_high: np.ndarray
    seed_size: np.ndarray

    _config_fields = ("n_layers", "width", "target_beta", "epochs", "convention", "steps_per_epoch_rule",
                      "n_samples", "plateau_level", "target_level", "midpoint")
    _dims = {"lr": ("point",), "batch_size": ("point",), "steps_per_epoch": ("point",),
             "temperature": ("point",), "gradient_trace": ("point",), "escape_epoch": ("point", "seed"),
             "escaped": ("point", "seed"), "tau_epochs": ("point",), "tau_epochs_low": ("point",),
             "tau_epochs_high": ("point",), "tau_time": ("point",), "tau_time_low": ("point",),
             "tau_time_high": ("point",), "seed_size": ("seed", "layer")}
    _units = {"lr": "time[convention]/step", "temperature": "loss[convention]", "escape_epoch": "epochs",
              "tau_epochs": "epochs", "tau_epochs_low": "epochs", "tau_epochs_high": "epochs",
              "tau_time": "time[convention]", "tau_time_low": "time[convention]",
              "tau_time_high": "time[convention]", "seed_size": "weight"}

    @property
    def n_escaped(self) -> np.ndarray:
        return self.escaped.sum(axis=1)

    @property
    def tau_steps(self) -> np.ndarray:
        """``tau`` in SGD steps per point (``tau_epochs * steps_per_epoch``)."""
        return self.tau_epochs * self.steps_per_epoch

    def fit(self, x="inverse_temperature", confidence=0.95):
        """Arrhenius fit of ``ln tau_time`` against ``1/temperature`` (slope = barrier) or
        against ``batch_size/lr`` (slope = barrier * C); points without an escape are left out.
        Needs two points with escapes; raises ValueError otherwise."""
        from ..stats import arrhenius_fit
        check_choice(x, "x", ("inverse_temperature", "batch_size/lr"))
        ok = np.isfinite(self.tau_time) & (self.n_escaped > 0)
        if ok.sum() < 2:
            raise ValueError(f"an Arrhenius fit needs >= 2 points with escapes, this sweep has {int(ok.sum())}")
        xs = 1.0 / self.temperature[ok] if x == "inverse_temperature" else (self.batch_size / self.lr)[ok]
        se = 0.5 * (self.tau_time_high - self.tau_time_low)[ok] / 1.959964
        return arrhenius_fit(xs, self.tau_time[ok], tau_stderr=se, x_is=x, confidence=confidence,
                             time_unit="time")

    def __repr__(self):
        pts = ", ".join(f"(lr={a:g}, B={b}): {int(e)}/{self.escaped.shape[1]}"
                        for a, b, e in zip(self.lr, self.batch_size, self.n_escaped))
        return f"ArrheniusSweep(target_beta={self.target_beta:g}, epochs={self.epochs}, escaped {pts})"


def arrhenius_sweep(data, trap: TrainingRun, *, lrs, batch_sizes=64, target_beta=0.32, epochs=20_000,
                    levels, n_layers=None, width=None, convention="paper", test=None, log_every=1, rng=None,
                    quiet=False) -> ArrheniusSweep:
    """E4: release ``trap`` (every seed of the checkpoint) at each ``(lr, batch_size)`` point.

    ``lrs`` and ``batch_sizes`` broadcast against each other (one point per pair).
    ``levels=(plateau, target)`` are the test-MSE levels of the midpoint rule (e.g. from a
    :class:`TrapRelease` at the paper's lr: ``(r.plateau_level, r.target_level)``).
    """
    from ..stats import exponential_mle
    d = as_data(data)
    if not isinstance(d, Dataset):
        raise ValueError("data must be samples (X, Y) or a Dataset: the sweep is over minibatch noise")
    if not isinstance(trap, TrainingRun):
        raise ValueError("trap must be a TrainingRun (the checkpoint every point starts from)")
    lr_a, b_a = np.broadcast_arrays(np.atleast_1d(np.asarray(lrs, dtype=float)),
                                    np.atleast_1d(np.asarray(batch_sizes)))
    for v in lr_a:
        _scalar(v, "lrs", positive=True)
    b_a = np.array([_int(v, "batch_sizes", 1) for v in b_a], dtype=np.int64)
    plateau, target = (float(x) for x in levels)
    mid = 0.5 * (plateau + target)
    direction = "down" if target < plateau else "up"
    n_layers = trap.n_layers if n_layers is None else n_layers
    width = trap.width if width is None else width
    seq = np.random.SeedSequence(rng) if not isinstance(rng, np.random.SeedSequence) else rng
    streams = seq.spawn(lr_a.size)
    start, _ = _finite_init(trap)
    ws = start if isinstance(start, list) else trap.weights()
    k = int(np.median(_rank(trap.singular_values[:, -1], RANK_THRESHOLD)))
    k = min(k, trap.singular_values.shape[-1] - 1)
    traces = [gradient_covariance([w[s] for w in ws], d, convention=convention).trace for s in range(ws[0].shape[0])]
    tr = float(np.median(traces))
    rows = []
    N = d.n_samples
    for i in progress(range(lr_a.size), desc="E4 Arrhenius sweep", quiet=quiet):
        lr, B = float(lr_a[i]), int(b_a[i])
        run = train(d, n_layers=n_layers, width=width, lr=lr, beta=target_beta, convention=convention,
                    epochs=epochs, batch_size=B, init=start, test=test, log_every=log_every,
                    layer_log_every=epochs, rng=streams[i])
        series = run.test_mse if run.test_mse is not None else run.train_mse
        ep, ok = escape_epochs(run.log_epochs, series, mid, direction=direction)
        temp = effective_temperature(tr, trap.n_params, lr, B, N)
        fit = exponential_mle(ep.astype(float), ~ok, time_unit="epochs")
        tscale = lr * run.steps_per_epoch
        lo, hi = fit.tau_ci if fit.tau_ci is not None else (fit.tau_lower, np.inf)
        tau = fit.tau if fit.tau is not None else np.nan
        rows.append((run.steps_per_epoch, temp, tr, ep, ok, tau, lo, hi, tau * tscale, lo * tscale, hi * tscale))
    cols = list(zip(*rows))
    return ArrheniusSweep(
        n_layers=int(n_layers), width=int(width), target_beta=float(target_beta), epochs=int(epochs),
        convention=trap.convention, steps_per_epoch_rule="floor(N / batch_size)", n_samples=int(N),
        plateau_level=plateau, target_level=target, midpoint=mid, lr=lr_a.astype(float), batch_size=b_a,
        steps_per_epoch=np.array(cols[0], dtype=np.int64), temperature=np.array(cols[1]),
        gradient_trace=np.array(cols[2]), escape_epoch=np.stack(cols[3]), escaped=np.stack(cols[4]),
        tau_epochs=np.array(cols[5], dtype=float), tau_epochs_low=np.array(cols[6], dtype=float),
        tau_epochs_high=np.array(cols[7], dtype=float), tau_time=np.array(cols[8], dtype=float),
        tau_time_low=np.array(cols[9], dtype=float), tau_time_high=np.array(cols[10], dtype=float),
        seed_size=_layer_sv(ws, k), seeds=(int(seq.entropy), *(int(k) for k in seq.spawn_key)), stats={})


# -- E5 --------------------------------------------------------------------------------------
@register
@dataclass(frozen=True, eq=False, repr=False)
class SparseGrokking(Result):
    """E5: release rank-1 checkpoints of different residual-seed sizes on a tiny training set.

    Row ``r`` of every (run, ...) array is one release: checkpoint prepared for
    ``trap_epochs[r]`` epochs at ``trap_beta`` (longer = smaller residual seed), then
    trained at ``beta`` with ``batch_size[r]``. ``full_batch[r]`` is True when
    ``batch_size >= n_train`` (every epoch is one deterministic full-batch step: no
    minibatch noise). Escape: end-to-end singular value 2 above ``sv_threshold``.
    ``seed_size`` = geometric mean over layers of the second singular value at the
    checkpoint.
    """

    n_layers: int
    width: int
    lr: float
    beta: float
    trap_beta: float
    epochs: int
    log_every: int
    sv_threshold: float
    convention: Convention
    pool_size: int
    n_train: int
    train_moments: Moments
    test_moments: Moments | None
    trap_epochs: np.ndarray
    batch_size: np.ndarray
    full_batch: np.ndarray
    run_seed: np.ndarray
    seed_size: np.ndarray
    escape_epoch: np.ndarray
    escaped: np.ndarray
    log_epochs: np.ndarray
    train_mse: np.ndarray
    test_mse: np.ndarray
    singular_values: np.ndarray

    _config_fields = ("n_layers", "width", "lr", "beta", "trap_beta", "epochs", "log_every", "sv_threshold",
                      "convention", "pool_size", "n_train", "train_moments", "test_moments")
    _dims = {"trap_epochs": ("run",), "batch_size": ("run",), "full_batch": ("run",), "run_seed": ("run",),
             "seed_size": ("run",), "escape_epoch": ("run",), "escaped": ("run",), "log_epochs": ("log",),
             "train_mse": ("run", "log"), "test_mse": ("run", "log"), "singular_values": ("run", "log", "mode")}
    _coords = {"log": "log_epochs"}
    _units = {"seed_size": "weight", "escape_epoch": "epochs", "log_epochs": "epochs", "train_mse": "mse",
              "test_mse": "mse", "singular_values": "end_to_end", "trap_epochs": "epochs"}

    @property
    def trapped(self) -> np.ndarray:
        """Per run: singular value 2 starts below ``sv_threshold`` (otherwise the checkpoint was
        not rank 1 and its "escape" at epoch 0 means nothing)."""
        return np.nan_to_num(self.singular_values[:, 0, 1], nan=np.inf) < self.sv_threshold

    def __repr__(self):
        return (f"SparseGrokking(n_train={self.n_train}, beta={self.beta:g}, lr={self.lr:g}, runs="
                f"{self.escape_epoch.size}, escaped={int(self.escaped.sum())})")


def sparse_grokking(teacher: GaussianTeacher, *, pool_size=5000, n_train=25, test_size=10_000, beta=0.0025,
                    lr=0.1, batch_sizes=(64,), trap_beta=None, trap_epochs=(50, 100, 150, 200, 300),
                    n_seeds=4, epochs=5000, n_layers=3, width=10, convention="paper", sv_threshold=1e-3,
                    log_every=5, rng=None, quiet=False) -> SparseGrokking:
    """E5: 25 of 5000 samples, weight decay 0.0025, lr 0.1; escape of mode 2 against the residual seed.

    The training set is ``teacher.subsample(pool_size, n_train)``; the test set
    ``test_size`` fresh samples. Checkpoints: fresh weights trained full-batch at
    ``trap_beta`` (default: midway between the sample's two spinodals, where only the
    strong mode is stable) for each of ``trap_epochs``; a longer preparation leaves a
    smaller seed of the weak mode. Each checkpoint is released at ``beta`` with every
    batch size of ``batch_sizes`` (the paper's 64 > 25 is full batch: one deterministic step
    per epoch; add e.g. 5 for minibatch noise). ``n_seeds`` independent initialisations per
    (trap_epochs, batch_size).
    """
    from ..theory import critical_points
    if not isinstance(teacher, GaussianTeacher):
        raise ValueError("teacher must be a GaussianTeacher")
    seq = np.random.SeedSequence(rng) if not isinstance(rng, np.random.SeedSequence) else rng
    s_data, s_test, s_runs = seq.spawn(3)
    data = teacher.subsample(pool_size, n_train, rng=s_data)
    test = teacher.sample(_int(test_size, "test_size", 1), rng=s_test)
    mom = data.moments()
    if trap_beta is None:
        sp = critical_points(n_layers, mom.spectrum, mom.a, convention=convention).gamma_sp
        if sp.size < 2 or not np.all(np.isfinite(sp[:2])):
            raise ValueError("the training sample has fewer than two learnable modes; pass trap_beta")
        trap_beta = 0.5 * (sp[0] + sp[1])
    trap_beta = _scalar(trap_beta, "trap_beta", positive=True)
    te = [_int(x, "trap_epochs", 1) for x in np.atleast_1d(trap_epochs)]
    bs = [_int(x, "batch_sizes", 1) for x in np.atleast_1d(batch_sizes)]
    rows = []
    streams = iter(s_runs.spawn(len(te) * (1 + len(bs))))
    for e in progress(te, desc="E5 sparse grokking", quiet=quiet):
        trap = train(mom, n_layers=n_layers, width=width, lr=lr, beta=trap_beta, convention=convention, epochs=e,
                     n_seeds=n_seeds, log_every=e, rng=next(streams))
        ws = trap.weights()
        s2 = np.stack([np.linalg.svd(w, compute_uv=False)[:, 1] for w in ws], axis=1)
        seed = np.exp(np.mean(np.log(np.maximum(s2, 1e-300)), axis=1))
        for B in bs:
            fb = B >= n_train
            run = train(data, n_layers=n_layers, width=width, lr=lr, beta=beta, convention=convention,
                        epochs=epochs, batch_size=B, drop_last=not fb, init=trap, test=test, log_every=log_every,
                        layer_log_every=epochs, rng=next(streams))
            ep, ok = escape_epochs(run.log_epochs, run.singular_values[:, :, 1], sv_threshold, direction="up")
            for s in range(run.n_seeds):
                rows.append((e, B, fb, s, seed[s], ep[s], ok[s], run.train_mse[s], run.test_mse[s],
                             run.singular_values[s]))
            log_epochs = run.log_epochs
    c = list(zip(*rows))
    return SparseGrokking(
        n_layers=int(n_layers), width=int(width), lr=float(lr), beta=float(beta), trap_beta=float(trap_beta),
        epochs=int(epochs), log_every=int(log_every), sv_threshold=float(sv_threshold), convention=run.convention,
        pool_size=int(pool_size), n_train=int(n_train), train_moments=mom, test_moments=test.moments(),
        trap_epochs=np.array(c[0], dtype=np.int64), batch_size=np.array(c[1], dtype=np.int64),
        full_batch=np.array(c[2], dtype=bool), run_seed=np.array(c[3], dtype=np.int64),
        seed_size=np.array(c[4], dtype=float), escape_epoch=np.array(c[5], dtype=np.int64),
        escaped=np.array(c[6], dtype=bool), log_epochs=log_epochs, train_mse=np.stack(c[7]),
        test_mse=np.stack(c[8]), singular_values=np.stack(c[9]), seeds=(int(seq.entropy), *(int(k) for k in seq.spawn_key)), stats={})
