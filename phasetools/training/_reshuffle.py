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

from .._rng import entropy_of, seed_states, trajectory_keys
from .._validation import check_int, check_scalar
from ..theory import EscapePrediction, landscape
from ._data import Dataset, as_data
from ._kernels import CENSORED, ESCAPED, _seed_kernel, _seed_kernel_r2  # noqa: F401 (CENSORED: tests)
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
