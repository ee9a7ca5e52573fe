"""Prediction (b): escape under random reshuffling, by an exact reduced simulation of the trainer's epochs.

With one pass over a permutation per epoch (``sampling="shuffle"``) the minibatch noise of an
epoch cancels at first order in ``lr``; what drives the escape is what is left (the curvature
acting on the partial sums of the batch noise, the batch-to-batch fluctuation of the Hessian,
the samples a ``drop_last`` epoch leaves out) at step sizes where an epoch is not short against
the relaxation time. No diffusion limit holds there, so this prediction does not approximate the
epoch map: it runs it, in the reduced coordinates of the theory.

The reduced network. The learned state of the theory is aligned: every layer carries the modes
``k < r`` along the singular directions (``u_k``, ``v_k``) of the draw's ``Y^T X / N``, and weight
decay has removed every other hidden direction. In that basis the network is ``n`` matrices of
size ``r x r`` (``cross=True``: the modes and their cross-mode entries, i.e. the width-``r``
network written in the modes' coordinates) or ``n`` diagonals (``cross=False``: one width-1
scalar chain per mode, coupled only through the shared minibatches). The samples enter as their
projections ``x_k = X v_k``, ``y_k = Y u_k``; a step is the trainer's (``W -= lr (grad + wd W)``
on ``kappa`` times the batch mean of ``||y - M x||^2``), the permutation is the trainer's
(Fisher-Yates from the same xoshiro256** stream per seed, so seed ``s`` sees the permutations
of the trainer's seed ``s`` under the same ``rng``), and the escape is checked at the end of
every epoch, as the measurements log it. What it leaves out: the data's directions beyond the
``r`` modes (their residuals ``y - M x`` outside the modes' span) and the hidden directions
beyond ``r``, both exactly idle in the aligned state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._numba import jit
from .._rng import entropy_of, seed_states, trajectory_keys
from .._validation import check_int, check_scalar
from ..theory import EscapePrediction, landscape
from ._data import Dataset, as_data
from ._kernels import _shuffle
from ._train import resolve_training_convention

__all__ = ["ReducedShuffleRun", "reduced_shuffle_run", "predict_shuffled_escape", "ASSUMPTIONS_B"]

ASSUMPTIONS_B = (
    "exact reduced simulation (not a diffusion limit): the trainer's shuffled epochs (a fresh permutation per "
    "epoch sliced into batches, drop_last as given) run on the n_layers r x r matrices of the learned modes "
    "in their singular basis (cross=True; cross=False: one width-1 scalar chain per mode)",
    "the network starts at the theory's aligned learned state (every learned mode at its balanced minimum); "
    "the hidden directions beyond the learned modes and the data directions beyond them stay idle",
    "per-sample data: the draw's own samples projected on the modes' singular directions",
    "escape = the escaping mode's end-to-end value below the MSE midpoint between its learned value and 0, "
    "checked at the end of every epoch; tau = censoring-aware exponential MLE over the simulated seeds",
)


@jit
def _products(W, pre, suf):
    """``pre[k] = W_k ... W_1`` (``pre[0] = I``) and ``suf[k] = W_n ... W_{k+1}`` (``suf[n] = I``)."""
    n, r = W.shape[0], W.shape[1]
    for k in range(1, n + 1):
        for i in range(r):
            for j in range(r):
                acc = 0.0
                for q in range(r):
                    acc += W[k - 1, i, q] * pre[k - 1, q, j]
                pre[k, i, j] = acc
    for k in range(n - 1, -1, -1):
        for i in range(r):
            for j in range(r):
                acc = 0.0
                for q in range(r):
                    acc += suf[k + 1, i, q] * W[k, q, j]
                suf[k, i, j] = acc


@jit
def _step(W, xs, ys, pm, start, count, scale, lr, wd, cross, pre, suf, G, grad):
    """One SGD step of the reduced network on rows ``pm[start:start+count]``; False if not finite."""
    n, r = W.shape[0], W.shape[1]
    _products(W, pre, suf)
    for a in range(r):
        for b in range(r):
            G[a, b] = 0.0
    for q in range(count):
        i = pm[start + q]
        for a in range(r):
            e = -ys[i, a]
            for b in range(r):
                e += pre[n, a, b] * xs[i, b]
            for b in range(r):
                G[a, b] += e * xs[i, b]
    ok = True
    for k in range(n):          # grad_k = A_k^T G P_{k-1}^T, A_k = suf[k + 1], P_{k-1} = pre[k]
        for i in range(r):
            for j in range(r):
                acc = 0.0
                if cross or i == j:
                    for a in range(r):
                        for b in range(r):
                            acc += suf[k + 1, a, i] * G[a, b] * pre[k, j, b]
                grad[k, i, j] = scale * acc
    for k in range(n):
        for i in range(r):
            for j in range(r):
                v = W[k, i, j] - lr * (grad[k, i, j] + wd * W[k, i, j])
                W[k, i, j] = v
                if not math.isfinite(v):
                    ok = False
    return ok


@jit
def _reduced_kernel(W0, xs, ys, states, consts, ints, out_epoch, out_escaped, out_W):
    """Seeds ``s`` of the reduced shuffled SGD from ``W0`` (n, r, r), in place on the outputs.

    ``consts = (lr, wd, 2 kappa, p_target)``, ``ints = (batch_size, steps_per_epoch, epochs, mode, cross)``;
    ``p_target < -1e300`` never stops. ``out_epoch[s]``: the first epoch end with ``M[mode, mode] <
    p_target`` (else ``epochs``); ``out_W[s]``: the weights at that epoch end.
    """
    lr, wd, two_kappa, p_target = consts[0], consts[1], consts[2], consts[3]
    B, spe, epochs, mode, cross = ints[0], ints[1], ints[2], ints[3], ints[4] != 0
    n, r = W0.shape[0], W0.shape[1]
    N = xs.shape[0]
    pm = np.empty(N, dtype=np.int64)
    pre = np.zeros((n + 1, r, r))
    suf = np.zeros((n + 1, r, r))
    for i in range(r):
        pre[0, i, i] = 1.0
        suf[n, i, i] = 1.0
    G = np.empty((r, r))
    grad = np.empty((n, r, r))
    for s in range(states.shape[0]):
        st = states[s]
        W = out_W[s]
        W[:] = W0
        for i in range(N):
            pm[i] = i
        out_epoch[s] = epochs
        out_escaped[s] = False
        for e in range(1, epochs + 1):
            _shuffle(pm, st, N)
            ok = True
            for b in range(spe):
                start = b * B
                count = min(B, N - start)
                ok = _step(W, xs, ys, pm, start, count, two_kappa / count, lr, wd, cross, pre, suf, G, grad)
                if not ok:
                    break
            if not ok:
                out_epoch[s] = e
                break
            _products(W, pre, suf)
            if pre[n, mode, mode] < p_target:
                out_epoch[s] = e
                out_escaped[s] = True
                break


@dataclass(frozen=True)
class ReducedShuffleRun:
    """Seeds of the reduced shuffled-SGD simulation (:func:`reduced_shuffle_run`).

    Parameters
    ----------
    epochs : numpy.ndarray of int (n_seeds,)
        The escape epoch per seed (the budget for a seed that did not escape).
    escaped : numpy.ndarray of bool (n_seeds,)
    weights : numpy.ndarray (n_seeds, n_layers, r, r)
        The reduced weights (modes' basis) at the last simulated epoch end of each seed.
    steps_per_epoch : int
    seconds : float
        Wall time of the simulation.
    """

    epochs: np.ndarray
    escaped: np.ndarray
    weights: np.ndarray
    steps_per_epoch: int
    seconds: float


def _mode_projections(d: Dataset, r: int):
    """``(xs, ys)`` (N, r): the samples on the first ``r`` singular directions of ``Y^T X / N``."""
    U, _, Vt = np.linalg.svd(d.Y.T @ d.X / d.n_samples, full_matrices=False)
    return np.ascontiguousarray(d.X @ Vt[:r].T), np.ascontiguousarray(d.Y @ U[:, :r])


def reduced_shuffle_run(data, init, *, weight_decay, lr, batch_size, epochs, mode=None, target=None, cross=True,
                        drop_last=True, n_seeds=1, rng=None, convention="paper") -> ReducedShuffleRun:
    """Shuffled SGD of the reduced network (the learned modes' ``r x r`` layers in their singular basis).

    Parameters
    ----------
    data : (X, Y) or Dataset
        The training samples.
    init : array (n_layers, r, r)
        The layers in the modes' basis (``r <= min(d_in, d_out)``): ``W_1 V_r``, ``W_2 ... W_{n-1}``,
        ``U_r^T W_n`` for a width-``r`` network, ``V_r``/``U_r`` the first ``r`` right/left singular
        vectors of ``Y^T X / N`` as columns; the aligned learned state is diagonal.
    weight_decay : float >= 0
        The SGD weight decay (the trainer's ``weight_decay``).
    lr : float > 0
    batch_size : int >= 1
    epochs : int >= 1
        Budget per seed.
    mode : int, optional
        Stop a seed when ``M[mode, mode]`` (the reduced end-to-end map) falls below ``target``.
    target : float, optional
        The stop level (needs ``mode``); None never stops.
    cross : bool
        Keep the cross-mode entries (the width-``r`` network); False: diagonal layers (one scalar chain per mode).
    drop_last : bool
        As the trainer's (``True``: ``N // B`` steps per epoch).
    n_seeds : int >= 1
    rng : None, int, SeedSequence or Generator
        Seed ``s`` draws the permutations of the trainer's seed ``s`` under the same ``rng``.
    convention : "paper" (default), "canonical" or Convention
        The loss scale ``kappa`` (``"paper"``: ``1 / d_out``).

    Returns
    -------
    ReducedShuffleRun
    """
    import time

    d = as_data(data)
    if not isinstance(d, Dataset):
        raise ValueError("data must be samples (X, Y) or a Dataset: the reduced simulation draws its batches")
    W0 = np.ascontiguousarray(np.asarray(init, dtype=float))
    if W0.ndim != 3 or W0.shape[1] != W0.shape[2] or W0.shape[1] > min(d.X.shape[1], d.Y.shape[1]):
        raise ValueError(f"init must be an array (n_layers, r, r) with r <= min(d_in, d_out), got shape {W0.shape}")
    r, N = W0.shape[1], d.n_samples
    B = check_int(batch_size, "batch_size", 1)
    if B > N:
        raise ValueError(f"batch_size must be <= the number of samples N = {N}, got {B}")
    spe = N // B if drop_last else -(-N // B)
    k = -1 if mode is None else check_int(mode, "mode", 0)
    if k >= r:
        raise ValueError(f"mode must be < r = {r}, got {mode!r}")
    if (target is None) != (mode is None):
        raise ValueError("give mode and target together (or neither: no stop)")
    S = check_int(n_seeds, "n_seeds", 1)
    conv = resolve_training_convention(convention, d.Y.shape[1])
    xs, ys = _mode_projections(d, r)
    states = seed_states(trajectory_keys(entropy_of(rng), np.arange(S, dtype=np.int64)))
    consts = np.array([check_scalar(lr, "lr", positive=True), check_scalar(weight_decay, "weight_decay"),
                       2.0 * conv.kappa, -np.inf if target is None else float(target)])
    ints = np.array([B, spe, check_int(epochs, "epochs", 1), max(k, 0), int(bool(cross))], dtype=np.int64)
    out_epoch, out_escaped = np.zeros(S, dtype=np.int64), np.zeros(S, dtype=np.bool_)
    out_W = np.empty((S,) + W0.shape)
    t0 = time.perf_counter()
    _reduced_kernel(W0, xs, ys, states, consts, ints, out_epoch, out_escaped, out_W)
    return ReducedShuffleRun(out_epoch, out_escaped, out_W, spe, time.perf_counter() - t0)


def _learned_state(d: Dataset, n, wd, conv, mode):
    """``(k, W0)``: the escaping mode and the aligned learned state of modes ``0..k`` as (n, k+1, k+1) diagonals."""
    from ._predict import _escaping_mode

    mom = d.moments()
    L = landscape(n, mom.spectrum, wd, mom.a, convention=conv)
    k = _escaping_mode(L, wd) if mode is None else check_int(mode, "mode", 0)
    if k >= mom.spectrum.size:
        raise ValueError(f"mode must be < {mom.spectrum.size} (the data's modes), got {mode!r}")
    lam = np.ma.filled(np.ma.asarray(L.lam_min, dtype=float), np.nan)[:k + 1]
    if not np.all(np.isfinite(lam)):
        raise ValueError(f"weight_decay = {wd!r}: modes 0..{k} have no learned state to start from")
    b = np.abs(lam) ** (1.0 / n)
    return k, np.array([np.diag(b)] * n)


def predict_shuffled_escape(data, *, n_layers, weight_decay, lr, batch_size, width=None, mode=None, cross=True,
                            drop_last=True, n_seeds=64, max_epochs=20_000, rng=0,
                            convention="paper") -> EscapePrediction:
    """Prediction (b): mean escape time of a learned mode under random reshuffling (``sampling="shuffle"``).

    An exact reduced simulation (module docstring), not a formula: ``n_seeds`` copies of the
    learned modes' ``r x r`` layers (``r = mode + 1``) run the trainer's shuffled epochs from the
    theory's aligned learned state until the escaping mode's end-to-end value falls below the MSE
    midpoint (the stop of prediction (a)); ``tau`` is the censoring-aware exponential MLE of their
    escape epochs. Its cost is that of ``r``-wide training, ``tau_epochs x n_seeds x N / B`` steps of
    a few hundred flops (about 0.3 s per 10^6 steps).

    Parameters
    ----------
    data : (X, Y) or Dataset
        The training samples.
    n_layers : int >= 2
    weight_decay : float >= 0
        The SGD weight decay (units of ``convention``).
    lr : float > 0
    batch_size : int >= 1
    width : int, optional
        The trained network's width (``width >= r``; default ``r``). Hidden directions beyond the
        learned modes stay idle, so ``tau`` is the same for every such width; only the isotropic
        contrast (``T_eff`` of the whole network's ``N_theta`` weights) depends on it.
    mode : int, optional
        The escaping mode (0 = strongest); default the weakest mode with a metastable learned state.
    cross : bool
        Keep the cross-mode entries of the layers (default; they carry the other mode's noise into
        the escape). False: one width-1 scalar chain per mode (the ablation).
    drop_last : bool
        The trainer's (``True``: ``N // B`` steps per epoch; ``N mod B`` samples unused each epoch).
    n_seeds : int >= 1
        Simulated seeds (the relative standard error of ``tau`` is ``1 / sqrt(escapes)``).
    max_epochs : int >= 1
        Budget per seed (seeds that do not escape are right-censored).
    rng : None, int, SeedSequence or Generator
        The simulation's permutations (default 0: a reproducible prediction).
    convention : "paper" (default), "canonical" or Convention

    Returns
    -------
    phasetools.theory.EscapePrediction
        ``regime = "sgd_shuffle"``, ``sampling = "shuffle"``, ``coupled = cross``; ``tau_*`` is
        ``inf`` if no seed escaped within ``max_epochs``; barrier, target and the isotropic
        contrast are those of prediction (a).
    """
    from ..stats import exponential_mle
    from ._predict import predict_escape

    d = as_data(data)
    if not isinstance(d, Dataset):
        raise ValueError("data must be samples (X, Y) or a Dataset: the reduced simulation draws its batches")
    n = check_int(n_layers, "n_layers", 2)
    wd = check_scalar(weight_decay, "weight_decay")
    conv = resolve_training_convention(convention, d.Y.shape[1])
    k, W0 = _learned_state(d, n, wd, conv, mode)
    if width is not None and check_int(width, "width", 1) < k + 1:
        raise ValueError(f"width must be >= {k + 1} (the learned modes), got {width}")
    ref = predict_escape(d, n_layers=n, width=k + 1 if width is None else width, weight_decay=wd, lr=lr,
                         batch_size=batch_size, mode=k, convention=conv)     # barrier, target, T_eff of the network
    run = reduced_shuffle_run(d, W0, weight_decay=wd, lr=lr, batch_size=batch_size, epochs=max_epochs, mode=k,
                              target=ref.b_target ** n, cross=cross, drop_last=drop_last, n_seeds=n_seeds, rng=rng,
                              convention=conv)
    fit = exponential_mle(run.epochs.astype(float), ~run.escaped, time_unit="epochs")
    tau = np.inf if fit.tau is None else float(fit.tau)
    spe = run.steps_per_epoch
    notes = ASSUMPTIONS_B + (f"{int(run.escaped.sum())} of {run.epochs.size} simulated seeds escaped within "
                             f"{max_epochs} epochs ({run.seconds:.2f} s)",)
    return EscapePrediction(
        regime="sgd_shuffle", n_layers=n, weight_decay=wd, lr=ref.lr, batch_size=ref.batch_size,
        n_samples=d.n_samples, steps_per_epoch=spe, sampling="shuffle", moments="data", coupled=bool(cross),
        convention=conv, barrier=ref.barrier, b_start=ref.b_start, b_saddle=ref.b_saddle, b_target=ref.b_target,
        tau_time=tau * ref.lr * spe, tau_steps=tau * spe, tau_epochs=tau, temperature=ref.temperature,
        tau_isotropic_time=ref.tau_isotropic_time,
        tau_isotropic_epochs=ref.tau_isotropic_time / (ref.lr * spe), assumptions="\n".join(notes))
