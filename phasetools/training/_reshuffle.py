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

Cost. A step sums the batch's precomputed ``x x^T`` and ``y x^T`` (``2 B r^2`` additions) and
forms the gradients from the layer products (``O(n r^3)``); the ``r``-loops are unrolled at
compile time (one compiled kernel per ``r``, a hand-written one for ``r = 2``), and the
permutation's xoshiro256** state stays in registers while it is shuffled: about 0.1 µs per step
at ``r = 2``. The seeds run on ``n_threads`` threads and stop by a sequential rule (seeds in
index order until enough have escaped); both leave the result independent of the thread count.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

import numba
import numpy as np

from .._numba import jit
from .._rng import _next_scalar, entropy_of, seed_states, trajectory_keys
from .._validation import check_int, check_scalar
from ..theory import EscapePrediction, landscape
from ._data import Dataset, as_data
from ._train import _run_threads, resolve_training_convention

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


#: Seed outcomes of the kernels: ran to the epoch budget, escaped, weights not finite, stopped
#: because the stopping rule no longer needs the seed (its result is discarded).
CENSORED, ESCAPED, NONFINITE, ABORTED = 0, 1, 2, 3


@jit
def _shuffle_scalar(pm, st, n_samples):
    """The trainer's Fisher-Yates shuffle (``training._kernels._shuffle``: the same draws, the same
    permutation) with the xoshiro256** state held in registers instead of re-read from ``st``."""
    s0, s1, s2, s3 = st[0], st[1], st[2], st[3]
    for i in range(n_samples - 1, 0, -1):
        u, s0, s1, s2, s3 = _next_scalar(s0, s1, s2, s3)
        x = ((u >> np.uint64(11)) + 0.5) * (1.0 / 9007199254740992.0)
        j = min(np.int64(x * (i + 1)), i)
        tmp = pm[i]
        pm[i] = pm[j]
        pm[j] = tmp
    st[0], st[1], st[2], st[3] = s0, s1, s2, s3


@jit
def _matmul(A, B, C, R):
    """``C = A @ B`` for ``R x R`` matrices (``R`` a compile-time constant in the callers)."""
    for i in range(R):
        for j in range(R):
            acc = 0.0
            for q in range(R):
                acc += A[i, q] * B[q, j]
            C[i, j] = acc


@jit
def _seed_kernel(W, D, pm, st, rt, consts, ints, limit, s):
    """One seed of the reduced shuffled SGD, any ``r``, in place on ``W`` (n, r, r) and ``st``.

    ``D`` (N, 2 r^2): per sample ``x x^T`` and ``y x^T`` (row-major), so a step's batch sums cost
    ``2 B r^2`` additions and the step ``G = scale (M Sxx - Syx)``, ``grad_k = A_k^T G P_{k-1}^T``
    (``P_k = W_k ... W_1``, ``A_k = W_n ... W_{k+1}``) ``O(n r^3)``. ``rt``: a tuple of ``r`` zeros,
    whose length numba knows at compile time (the ``r``-loops are unrolled per ``r``).
    ``consts = (lr, wd, 2 kappa, p_target)``, ``ints = (batch_size, steps_per_epoch, epochs, mode,
    cross)``; the seed stops when ``s >= limit[0]`` (checked every epoch). Returns ``(epoch, outcome)``.
    """
    R = len(rt)
    lr, wd, two_kappa, p_target = consts[0], consts[1], consts[2], consts[3]
    B, spe, epochs, mode, cross = ints[0], ints[1], ints[2], ints[3], ints[4] != 0
    n, N, RR = W.shape[0], D.shape[0], R * R
    pre = np.zeros((n + 1, R, R))
    suf = np.zeros((n + 1, R, R))
    for i in range(R):
        pre[0, i, i] = 1.0
        suf[n, i, i] = 1.0
    S = np.empty(2 * RR)
    G = np.empty((R, R))
    T = np.empty((R, R))
    for i in range(N):
        pm[i] = i
    for e in range(1, epochs + 1):
        if s >= limit[0]:
            return e - 1, ABORTED
        _shuffle_scalar(pm, st, N)
        for b in range(spe):
            start = b * B
            count = min(B, N - start)
            S[:] = 0.0
            for q in range(count):
                row = D[pm[start + q]]
                for c in range(2 * RR):
                    S[c] += row[c]
            for k in range(1, n + 1):
                _matmul(W[k - 1], pre[k - 1], pre[k], R)
            for k in range(n - 1, 0, -1):
                _matmul(suf[k + 1], W[k], suf[k], R)
            scale = two_kappa / count
            for a in range(R):
                for j in range(R):
                    acc = -S[RR + a * R + j]
                    for q in range(R):
                        acc += pre[n, a, q] * S[q * R + j]
                    G[a, j] = scale * acc
            total = 0.0
            for k in range(n):
                for a in range(R):                      # T = G P_{k-1}^T
                    for j in range(R):
                        acc = 0.0
                        for q in range(R):
                            acc += G[a, q] * pre[k, j, q]
                        T[a, j] = acc
                for i in range(R):                      # grad = A_k^T T
                    for j in range(R):
                        acc = 0.0
                        if cross or i == j:
                            for a in range(R):
                                acc += suf[k + 1, a, i] * T[a, j]
                        v = W[k, i, j] - lr * (acc + wd * W[k, i, j])
                        W[k, i, j] = v
                        total += v
            if not math.isfinite(total):                # a non-finite weight makes the sum non-finite
                return e, NONFINITE
        for k in range(1, n + 1):
            _matmul(W[k - 1], pre[k - 1], pre[k], R)
        if pre[n, mode, mode] < p_target:
            return e, ESCAPED
    return epochs, CENSORED


@jit
def _seed_kernel_r2(W, D, pm, st, consts, ints, limit, s):
    """:func:`_seed_kernel` for ``r = 2`` with the 2 x 2 products in registers (the same arithmetic
    up to the order of additions; the two-mode teacher's case, 1.3-1.5x faster than the general one)."""
    lr, wd, two_kappa, p_target = consts[0], consts[1], consts[2], consts[3]
    B, spe, epochs, mode = ints[0], ints[1], ints[2], ints[3]
    cr = 1.0 if ints[4] != 0 else 0.0
    n, N = W.shape[0], D.shape[0]
    pre = np.empty((n, 4))                              # P_0 = I, ..., P_{n-1}
    suf = np.empty((n, 4))                              # A_1, ..., A_{n-1}, A_n = I
    pre[0, 0], pre[0, 1], pre[0, 2], pre[0, 3] = 1.0, 0.0, 0.0, 1.0
    suf[n - 1, 0], suf[n - 1, 1], suf[n - 1, 2], suf[n - 1, 3] = 1.0, 0.0, 0.0, 1.0
    for i in range(N):
        pm[i] = i
    for e in range(1, epochs + 1):
        if s >= limit[0]:
            return e - 1, ABORTED
        _shuffle_scalar(pm, st, N)
        for b in range(spe):
            start = b * B
            count = min(B, N - start)
            a0 = a1 = a2 = a3 = c0 = c1 = c2 = c3 = 0.0
            for q in range(count):
                i = pm[start + q]
                a0 += D[i, 0]
                a1 += D[i, 1]
                a2 += D[i, 2]
                a3 += D[i, 3]
                c0 += D[i, 4]
                c1 += D[i, 5]
                c2 += D[i, 6]
                c3 += D[i, 7]
            p0, p1, p2, p3 = 1.0, 0.0, 0.0, 1.0
            for k in range(n):
                w0, w1, w2, w3 = W[k, 0, 0], W[k, 0, 1], W[k, 1, 0], W[k, 1, 1]
                p0, p1, p2, p3 = w0 * p0 + w1 * p2, w0 * p1 + w1 * p3, w2 * p0 + w3 * p2, w2 * p1 + w3 * p3
                if k + 1 < n:
                    pre[k + 1, 0], pre[k + 1, 1], pre[k + 1, 2], pre[k + 1, 3] = p0, p1, p2, p3
            s0, s1, s2, s3 = 1.0, 0.0, 0.0, 1.0
            for k in range(n - 1, 0, -1):
                w0, w1, w2, w3 = W[k, 0, 0], W[k, 0, 1], W[k, 1, 0], W[k, 1, 1]
                s0, s1, s2, s3 = s0 * w0 + s1 * w2, s0 * w1 + s1 * w3, s2 * w0 + s3 * w2, s2 * w1 + s3 * w3
                suf[k - 1, 0], suf[k - 1, 1], suf[k - 1, 2], suf[k - 1, 3] = s0, s1, s2, s3
            sc = two_kappa / count
            g0 = sc * (p0 * a0 + p1 * a2 - c0)
            g1 = sc * (p0 * a1 + p1 * a3 - c1)
            g2 = sc * (p2 * a0 + p3 * a2 - c2)
            g3 = sc * (p2 * a1 + p3 * a3 - c3)
            total = 0.0
            for k in range(n):
                q0, q1, q2, q3 = pre[k, 0], pre[k, 1], pre[k, 2], pre[k, 3]
                t0, t1 = g0 * q0 + g1 * q1, g0 * q2 + g1 * q3
                t2, t3 = g2 * q0 + g3 * q1, g2 * q2 + g3 * q3
                u0, u1, u2, u3 = suf[k, 0], suf[k, 1], suf[k, 2], suf[k, 3]
                w0, w1, w2, w3 = W[k, 0, 0], W[k, 0, 1], W[k, 1, 0], W[k, 1, 1]
                w0 = w0 - lr * ((u0 * t0 + u2 * t2) + wd * w0)
                w1 = w1 - lr * ((u0 * t1 + u2 * t3) * cr + wd * w1)
                w2 = w2 - lr * ((u1 * t0 + u3 * t2) * cr + wd * w2)
                w3 = w3 - lr * ((u1 * t1 + u3 * t3) + wd * w3)
                W[k, 0, 0], W[k, 0, 1], W[k, 1, 0], W[k, 1, 1] = w0, w1, w2, w3
                total += (w0 + w1) + (w2 + w3)
            if not math.isfinite(total):
                return e, NONFINITE
        p0, p1, p2, p3 = 1.0, 0.0, 0.0, 1.0
        for k in range(n):
            w0, w1, w2, w3 = W[k, 0, 0], W[k, 0, 1], W[k, 1, 0], W[k, 1, 1]
            p0, p1, p2, p3 = w0 * p0 + w1 * p2, w0 * p1 + w1 * p3, w2 * p0 + w3 * p2, w2 * p1 + w3 * p3
        if (p0 if mode == 0 else p3) < p_target:
            return e, ESCAPED
    return epochs, CENSORED


@dataclass(frozen=True)
class ReducedShuffleRun:
    """Seeds of the reduced shuffled-SGD simulation (:func:`reduced_shuffle_run`).

    Parameters
    ----------
    epochs : numpy.ndarray of int (n_run,)
        The escape epoch per seed (the budget for a seed that did not escape), seeds ``0 .. n_run - 1``.
    escaped : numpy.ndarray of bool (n_run,)
    weights : numpy.ndarray (n_run, n_layers, r, r)
        The reduced weights (modes' basis) at the last simulated epoch end of each seed.
    steps_per_epoch : int
    seconds : float
        Wall time of the simulation.
    n_seeds : int
        The seeds allowed (``n_run <= n_seeds``; fewer when the stopping rule ended the run).
    min_escapes : int or None
        The stopping rule: the run ended at the first seed index where this many of the seeds so
        far had escaped (None: every seed ran).
    cpu_seconds : float
        CPU time of the process during the simulation (every thread).
    n_threads : int
        Threads that ran the seeds (the results do not depend on it).
    """

    epochs: np.ndarray
    escaped: np.ndarray
    weights: np.ndarray
    steps_per_epoch: int
    seconds: float
    n_seeds: int = 0
    min_escapes: int | None = None
    cpu_seconds: float = float("nan")
    n_threads: int = 1

    @property
    def n_run(self) -> int:
        """Seeds the run used (``epochs.size``)."""
        return int(self.epochs.size)


def _mode_projections(d: Dataset, r: int):
    """``(xs, ys)`` (N, r): the samples on the first ``r`` singular directions of ``Y^T X / N``."""
    U, _, Vt = np.linalg.svd(d.Y.T @ d.X / d.n_samples, full_matrices=False)
    return np.ascontiguousarray(d.X @ Vt[:r].T), np.ascontiguousarray(d.Y @ U[:, :r])


def _sample_products(xs, ys):
    """``D`` (N, 2 r^2): per sample ``x x^T`` then ``y x^T``, row-major (the kernels' batch sums)."""
    N, r = xs.shape
    return np.ascontiguousarray(np.concatenate([(xs[:, :, None] * xs[:, None, :]).reshape(N, r * r),
                                                (ys[:, :, None] * xs[:, None, :]).reshape(N, r * r)], axis=1))


class _Schedule:
    """Seeds in index order and the stopping rule: the run ends at the first ``m`` such that seeds
    ``0 .. m - 1`` are done and ``min_escapes`` of them escaped (or at ``n_seeds``). Seeds finish
    in any order on several threads; ``limit[0]`` (read by the kernels every epoch) drops to ``m``
    once it is known, so seeds at or beyond ``m`` stop early and are discarded: the seeds used,
    and so the result, do not depend on the number of threads."""

    def __init__(self, n_seeds, min_escapes):
        self.limit = np.array([n_seeds], dtype=np.int64)
        self.outcome = np.full(n_seeds, -1, dtype=np.int64)
        self.min_escapes = min_escapes
        self.done = 0          # seeds 0 .. done - 1 have finished
        self.escapes = 0       # escapes among them
        self.lock = threading.Lock()

    def finish(self, s, outcome):
        """Record seed ``s``'s outcome and advance the finished prefix (and the limit)."""
        with self.lock:
            self.outcome[s] = outcome
            while self.done < self.limit[0] and self.outcome[self.done] >= 0:
                self.escapes += self.outcome[self.done] == ESCAPED
                self.done += 1
                if self.min_escapes is not None and self.escapes >= self.min_escapes:
                    self.limit[0] = self.done


def _simulate(W0, D, states, consts, ints, min_escapes, n_threads):
    """Run seeds ``0, 1, ...`` until the stopping rule ends the run: ``(epochs, escaped, weights, n_threads)``."""
    S, r = states.shape[0], W0.shape[1]
    sched = _Schedule(S, min_escapes)
    out_epoch = np.zeros(S, dtype=np.int64)
    out_W = np.empty((S,) + W0.shape)
    rt = (0.0,) * r

    def work(s, pm):
        if s >= sched.limit[0]:
            return
        out_W[s] = W0
        st = states[s].copy()
        if r == 2:
            e, outcome = _seed_kernel_r2(out_W[s], D, pm, st, consts, ints, sched.limit, s)
        else:
            e, outcome = _seed_kernel(out_W[s], D, pm, st, rt, consts, ints, sched.limit, s)
        out_epoch[s] = e
        sched.finish(s, outcome)

    threads = max(1, min(S, numba.get_num_threads() if n_threads is None else check_int(n_threads, "n_threads", 1)))
    if threads == 1:
        pm = np.empty(D.shape[0], dtype=np.int64)
        for s in range(S):
            work(s, pm)
    else:
        _run_threads(work, S, threads, lambda: np.empty(D.shape[0], dtype=np.int64))
    m = int(sched.limit[0])
    return out_epoch[:m].copy(), sched.outcome[:m] == ESCAPED, out_W[:m].copy(), threads


def reduced_shuffle_run(data, init, *, weight_decay, lr, batch_size, epochs, mode=None, target=None, cross=True,
                        drop_last=True, n_seeds=1, min_escapes=None, rng=None, convention="paper",
                        n_threads=None) -> ReducedShuffleRun:
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
        Seeds allowed.
    min_escapes : int >= 1, optional
        The stopping rule: end the run at the first seed index ``m`` where ``min_escapes`` of
        seeds ``0 .. m - 1`` escaped (needs ``mode``); None runs all ``n_seeds``.
    rng : None, int, SeedSequence or Generator
        Seed ``s`` draws the permutations of the trainer's seed ``s`` under the same ``rng``.
    convention : "paper" (default), "canonical" or Convention
        The loss scale ``kappa`` (``"paper"``: ``1 / d_out``).
    n_threads : int >= 1, optional
        Threads running seeds (default numba's thread count). Each seed has its own stream and
        the stopping rule counts seeds in index order, so the result does not depend on it.

    Returns
    -------
    ReducedShuffleRun
    """
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
    if min_escapes is not None:
        min_escapes = check_int(min_escapes, "min_escapes", 1)
        if mode is None:
            raise ValueError("min_escapes needs mode and target (a seed escapes when M[mode, mode] < target)")
    conv = resolve_training_convention(convention, d.Y.shape[1])
    D = _sample_products(*_mode_projections(d, r))
    states = seed_states(trajectory_keys(entropy_of(rng), np.arange(S, dtype=np.int64)))
    consts = np.array([check_scalar(lr, "lr", positive=True), check_scalar(weight_decay, "weight_decay"),
                       2.0 * conv.kappa, -np.inf if target is None else float(target)])
    ints = np.array([B, spe, check_int(epochs, "epochs", 1), max(k, 0), int(bool(cross))], dtype=np.int64)
    t0, c0 = time.perf_counter(), time.process_time()
    ep, esc, W, threads = _simulate(W0, D, states, consts, ints, min_escapes, n_threads)
    return ReducedShuffleRun(ep, esc, W, spe, time.perf_counter() - t0, S, min_escapes, time.process_time() - c0,
                             threads)


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


def _min_escapes(rel_error):
    """The stopping rule's escape count ``ceil(1 / rel_error^2)`` (None for None)."""
    if rel_error is None:
        return None
    e = check_scalar(rel_error, "rel_error", positive=True)
    if e >= 1:
        raise ValueError(f"rel_error must be in (0, 1) or None, got {rel_error!r}")
    return math.ceil(1.0 / (e * e) - 1e-9)


def predict_shuffled_escape(data, *, n_layers, weight_decay, lr, batch_size, width=None, mode=None, cross=True,
                            drop_last=True, n_seeds=64, rel_error=0.15, max_epochs=20_000, rng=0,
                            convention="paper", n_threads=None) -> EscapePrediction:
    """Prediction (b): mean escape time of a learned mode under random reshuffling (``sampling="shuffle"``).

    An exact reduced simulation (module docstring), not a formula: copies of the learned modes'
    ``r x r`` layers (``r = mode + 1``) run the trainer's shuffled epochs from the theory's aligned
    learned state until the escaping mode's end-to-end value falls below the MSE midpoint (the
    stop of prediction (a)); ``tau`` is the censoring-aware exponential MLE of their escape epochs.

    The stopping rule: seeds run in index order until ``ceil(1 / rel_error^2)`` of them escaped
    (the MLE's relative standard error ``1 / sqrt(escapes)`` is then at most ``rel_error``: 45
    escapes for the default 15 %), at most ``n_seeds``; the rule and the seeds used are in
    ``assumptions``. The cost is ``(escape epochs + censored epochs) x N / B`` steps of the
    ``r x r`` network, about ``tau_epochs x N / B / rel_error^2`` steps at 0.1 µs each (r = 2):
    proportional to ``tau``, so below 1 s of CPU only for ``tau`` up to about 2000 epochs at
    ``N / B = 64`` (0.3-0.9 s for ``tau`` of 750-2200; about 3 s at ``tau`` = 5900 and 10 s when
    few seeds escape the default 20 000-epoch budget; docs/benchmarks.md, docs/predict.md);
    several threads share the seeds.

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
        Most seeds simulated (the relative standard error of ``tau`` is ``1 / sqrt(escapes)``).
    rel_error : float in (0, 1), optional
        The stopping rule's target relative standard error (default 0.15: stop at 45 escapes);
        None: run all ``n_seeds`` (the behaviour before the rule; more seeds and a smaller
        ``rel_error`` buy precision at proportional cost).
    max_epochs : int >= 1
        Budget per seed (seeds that do not escape are right-censored).
    rng : None, int, SeedSequence or Generator
        The simulation's permutations (default 0: a reproducible prediction).
    convention : "paper" (default), "canonical" or Convention
    n_threads : int >= 1, optional
        Threads sharing the seeds (default numba's thread count); the result does not depend on it.

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
    k_min = _min_escapes(rel_error)
    run = reduced_shuffle_run(d, W0, weight_decay=wd, lr=lr, batch_size=batch_size, epochs=max_epochs, mode=k,
                              target=ref.b_target ** n, cross=cross, drop_last=drop_last, n_seeds=n_seeds,
                              min_escapes=k_min, rng=rng, convention=conv, n_threads=n_threads)
    fit = exponential_mle(run.epochs.astype(float), ~run.escaped, time_unit="epochs")
    tau = np.inf if fit.tau is None else float(fit.tau)
    spe = run.steps_per_epoch
    rule = ("every seed ran (no stopping rule)" if k_min is None else
            f"stopping rule: seeds in index order until {k_min} escaped (relative standard error <= {rel_error:g}), "
            f"at most {run.n_seeds}")
    notes = ASSUMPTIONS_B + ((f"{int(run.escaped.sum())} of {run.epochs.size} simulated seeds escaped within "
                              f"{max_epochs} epochs ({rule}; {run.seconds:.2f} s)"),)
    return EscapePrediction(
        regime="sgd_shuffle", n_layers=n, weight_decay=wd, lr=ref.lr, batch_size=ref.batch_size,
        n_samples=d.n_samples, steps_per_epoch=spe, sampling="shuffle", moments="data", coupled=bool(cross),
        convention=conv, barrier=ref.barrier, b_start=ref.b_start, b_saddle=ref.b_saddle, b_target=ref.b_target,
        tau_time=tau * ref.lr * spe, tau_steps=tau * spe, tau_epochs=tau, temperature=ref.temperature,
        tau_isotropic_time=ref.tau_isotropic_time,
        tau_isotropic_epochs=ref.tau_isotropic_time / (ref.lr * spe), assumptions="\n".join(notes))
