"""Shared pieces of the protocols: full-batch convergence, ranks, escape epochs, checkpoints.

:func:`converge` trains full-batch to a gradient-norm criterion (E1); :func:`escape_epochs`
is the first-crossing rule of every escape protocol (E2, E4, E5); the private helpers give
the rank of a state, the starting weights of a checkpoint and the residual seed per layer.
"""

from __future__ import annotations

import math

import numpy as np

from .._validation import check_choice, check_int, check_scalar
from ._data import as_moments
from ._run import TrainingRun
from ._train import batch_gradient, train

__all__ = ["converge", "escape_epochs", "RANK_THRESHOLD"]

#: End-to-end singular values above this count towards the rank (the learned values of the
#: paper's set-up are >= 0.2 up to the spinodal; a lost mode decays to ~0 under weight decay).
RANK_THRESHOLD = 0.05


def grad_norms(run: TrainingRun, data, weight_decay) -> np.ndarray:
    """Norm of the full-data gradient of the objective (weight decay included) per seed (NaN if diverged)."""
    out = np.empty(run.n_seeds)
    for s in range(run.n_seeds):
        if run.status[s] != 0:
            out[s] = np.nan
            continue
        g = batch_gradient(run.weights(seed=s), data, convention=run.convention, weight_decay=weight_decay)
        out[s] = math.sqrt(sum(float(np.sum(x * x)) for x in g))
    return out


def converge(data, init, *, weight_decay, n_layers, width, lr, convention="paper", tol=1e-8, chunk_epochs=1000,
             max_epochs=100_000, rng=None):
    """Full-batch gradient descent from ``init`` until every seed's gradient norm is below ``tol``.

    The criterion: ``||grad_W [loss + (weight_decay/2) sum ||W||^2]|| < tol`` on all the data
    (a Dataset is trained on its exact moments: full-batch GD), checked every
    ``chunk_epochs`` steps, at most ``max_epochs`` steps.

    Parameters
    ----------
    data : (X, Y), Dataset, Moments or GaussianTeacher
        The training data (their moments are used).
    init : str, list of arrays or TrainingRun
        The starting weights, as :func:`train`'s ``init``.
    weight_decay : float >= 0
        The weight decay of the objective.
    n_layers, width : int
        The network.
    lr : float > 0
        Step size of the gradient descent.
    convention : "paper" (default), "canonical" or Convention
        Fixes ``kappa``.
    tol : float > 0
        Gradient-norm criterion.
    chunk_epochs, max_epochs : int >= 1
        Steps between checks, and at most.
    rng : None, int, SeedSequence or Generator
        Streams of the runs (used only for random ``init``).

    Returns
    -------
    tuple
        ``(run, epochs, grad_norm, converged)``: the last chunk's TrainingRun, the steps
        made, the final gradient norm and the per-seed criterion.
    """
    mom = as_moments(data)
    tol = check_scalar(tol, "tol", positive=True)
    chunk_epochs = check_int(chunk_epochs, "chunk_epochs", 1)
    max_epochs = check_int(max_epochs, "max_epochs", 1)
    done, state = 0, init
    while True:
        run = train(mom, n_layers=n_layers, width=width, lr=lr, weight_decay=weight_decay, convention=convention,
                    epochs=min(chunk_epochs, max_epochs - done), init=state, log_every=chunk_epochs,
                    rng=rng, n_threads=1)
        done += run.epochs
        state = run
        g = grad_norms(run, mom, weight_decay)
        ok = np.isfinite(g) & (g < tol)
        if ok.all() or done >= max_epochs or (run.status != 0).all():
            return run, done, g, ok


def rank(sv, threshold=RANK_THRESHOLD):
    """Number of singular values (last axis) above ``threshold``; NaN counts as zero."""
    return np.sum(np.nan_to_num(sv, nan=0.0) > threshold, axis=-1)


def escape_epochs(log_epochs, series, threshold, *, direction):
    """First log epoch at which ``series`` (seed, log) crosses ``threshold``.

    A seed that never crosses gets the last logged epoch and ``escaped = False``
    (right-censored). NaN entries (a diverged seed) never cross.

    Parameters
    ----------
    log_epochs : 1-D array of int
        The epochs of the log points.
    series : array (seed, log)
        The logged quantity.
    threshold : float
        The level to cross.
    direction : "down" | "up"
        ``"down"``: first ``series < threshold``; ``"up"``: first ``series > threshold``.

    Returns
    -------
    tuple of numpy.ndarray
        ``(epochs, escaped)`` per seed.
    """
    check_choice(direction, "direction", ("down", "up"))
    s = np.asarray(series, dtype=float)
    hit = (s < threshold) if direction == "down" else (s > threshold)
    hit &= np.isfinite(s)
    escaped = hit.any(axis=1)
    first = np.argmax(hit, axis=1)
    ep = np.where(escaped, np.asarray(log_epochs)[first], np.asarray(log_epochs)[-1])
    return ep.astype(np.int64), escaped


def finite_init(run: TrainingRun):
    """``run`` as a starting point: itself, or the per-layer weights of its seeds that did not
    diverge (a diverged seed has nothing to release). Returns ``(init, n_diverged)``."""
    bad = ~np.all(np.isfinite(run.final_params), axis=1)
    if not bad.any():
        return run, 0
    if bad.all():
        raise ValueError("every seed of the checkpoint diverged (non-finite weights); lower lr")
    return [w[~bad] for w in run.weights()], int(bad.sum())


def layer_sv(run, k: int) -> np.ndarray:
    """(seed, layer): the ``k``-th singular value of every layer (0 where the layer has fewer)."""
    ws = run.weights() if isinstance(run, TrainingRun) else run
    out = np.empty((ws[0].shape[0], len(ws)))
    for i, w in enumerate(ws):
        s = np.linalg.svd(w, compute_uv=False)
        out[:, i] = s[:, k] if s.shape[1] > k else 0.0
    return out


def end_to_end_maps(run: TrainingRun) -> np.ndarray:
    """(seed, d_out, d_in): the end-to-end map of every seed's final weights."""
    ws = run.weights()
    M = ws[0]
    for w in ws[1:]:
        M = np.einsum("sij,sjk->sik", w, M)
    return M
