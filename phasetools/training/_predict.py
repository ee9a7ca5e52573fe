"""Predictions for a training set-up: the theory's formulas fed with a data set and the trainer's settings.

:func:`predict_escape` (prediction (a): minibatch SGD with replacement, a learned mode lost; with
``sampling="shuffle"`` prediction (b), :func:`predict_shuffled_escape`, a reduced simulation) and
:func:`predict_plateau` (prediction (d): the full-batch plateau from a residual seed) evaluate
:func:`phasetools.theory.predict_sgd_escape` and :func:`phasetools.theory.plateau_time` on the
draw's own modes (:func:`phasetools.theory.data_mode_noise`). They live in ``training`` (not
``theory``) because they speak the trainer's language: a data set, a width, a sampler, a
checkpoint (:class:`TrainingRun`) whose gradient covariance gives the isotropic ``T_eff`` drawn
for contrast. No simulation is needed for either: both are quadratures.
"""

from __future__ import annotations

import numpy as np

from .._validation import check_choice, check_int, check_scalar
from ..theory import (data_cross_noise, data_mode_noise, landscape, plateau_time, predict_injected_escape,
                      predict_sgd_escape)
from ._data import Dataset, as_data
from ._noise import gradient_covariance
from ._options import SAMPLINGS
from ._reshuffle import predict_shuffled_escape
from ._train import resolve_training_convention

__all__ = ["predict_escape", "predict_plateau", "predict_injected", "aligned_weights", "predict_shuffled_escape"]


def aligned_weights(data, weight_decay, *, n_layers, width, rank, convention="paper", lam=None):
    """The balanced, aligned rank-``rank`` state of the theory as width-``width`` weights.

    Parameters
    ----------
    data : (X, Y), Dataset, Moments or GaussianTeacher
        Its cross-covariance's singular directions carry the modes.
    weight_decay : float >= 0
        Coupling in the units of ``convention``.
    n_layers, width : int
        The network (``width >= rank``).
    rank : int >= 1
        Learned modes (strongest first).
    convention : "paper" (default), "canonical" or Convention
    lam : sequence of float, optional
        The learned end-to-end values of the ``rank`` modes (default: from
        :func:`phasetools.theory.landscape`).

    Returns
    -------
    list of arrays
        ``W_1 ... W_n`` with ``W_1 = sum_k b_k e_k v_k^T``, ``W_i = sum_k b_k e_k e_k^T``,
        ``W_n = sum_k b_k u_k e_k^T``.
    """
    m = as_data(data)
    mom = m.moments() if isinstance(m, Dataset) else m
    n, h, r = check_int(n_layers, "n_layers", 2), check_int(width, "width", 1), check_int(rank, "rank", 1)
    if h < r:
        raise ValueError(f"width must be >= rank = {r}, got {h}")
    U, _, Vt = np.linalg.svd(mom.cross_cov)
    if lam is None:
        lam = landscape(n, mom.spectrum[:r], weight_decay, mom.a[:r], convention=convention).lam_min
    b = np.abs(np.asarray(lam, dtype=float)[:r]) ** (1.0 / n)
    E = np.eye(h)[:, :r]
    W = [E @ np.diag(b) @ Vt[:r]] + [E @ np.diag(b) @ E.T for _ in range(n - 2)] + [U[:, :r] @ np.diag(b) @ E.T]
    return W


def predict_escape(data, *, n_layers, width, weight_decay, lr, batch_size, sampling="replacement", moments="data",
                   coupling=True, mode=None, convention="paper", checkpoint=None):
    """Prediction (a): mean escape time of a learned mode under minibatch SGD (no fitted parameter).

    Parameters
    ----------
    data : (X, Y) or Dataset
        The training samples.
    n_layers, width : int
        The network.
    weight_decay : float >= 0
        The SGD weight decay (units of ``convention``).
    lr : float > 0
        Learning rate.
    batch_size : int >= 1
        Batch size ``B`` (``N`` for ``sampling="full"``).
    sampling : {"replacement", "full", "shuffle"}
        The trainer's sampler. ``"shuffle"`` (random reshuffling) is prediction (b):
        :func:`predict_shuffled_escape` with its defaults (an exact reduced simulation of up to
        64 seeds, stopped at 45 escapes, ``rng=0``; ``coupling`` sets its ``cross``; ``moments``
        must be ``"data"``).
    moments : {"data", "gaussian"}
        Per-sample noise from the draw's own fourth moments or from Isserlis' theorem.
    coupling : bool
        Include the next stronger learned mode's cross noise (its level repulsion on the
        escaping singular value; :func:`phasetools.theory.data_cross_noise`). Needs
        ``width >= mode + 1``; ignored for the strongest mode. With ``"shuffle"``: keep the
        cross-mode entries of the reduced layers.
    mode : int, optional
        The escaping mode (0 = strongest); default the weakest mode with a metastable learned state.
    convention : "paper" (default), "canonical" or Convention
    checkpoint : TrainingRun, optional
        Where ``tr Sigma`` of the isotropic contrast is measured (median over seeds); default the
        theory's aligned state of ``mode + 1`` learned modes.

    Returns
    -------
    phasetools.theory.EscapePrediction
    """
    d = as_data(data)
    if not isinstance(d, Dataset):
        raise ValueError("data must be samples (X, Y) or a Dataset: the prediction uses the draw's own moments")
    check_choice(sampling, "sampling", SAMPLINGS)
    check_choice(moments, "moments", ("data", "gaussian"))
    if sampling == "shuffle":
        if moments != "data" or checkpoint is not None:
            raise ValueError("sampling='shuffle' simulates the draw's own samples: moments must be 'data' and "
                             "checkpoint None")
        return predict_shuffled_escape(d, n_layers=n_layers, weight_decay=weight_decay, lr=lr, batch_size=batch_size,
                                       width=width, mode=mode, cross=coupling, convention=convention)
    n, h = check_int(n_layers, "n_layers", 2), check_int(width, "width", 1)
    wd = check_scalar(weight_decay, "weight_decay")
    B = d.n_samples if sampling == "full" else check_int(batch_size, "batch_size", 1)
    conv = resolve_training_convention(convention, d.Y.shape[1])
    modes = data_mode_noise(d.X, d.Y, moments=moments)
    L = landscape(n, [m.c for m in modes], wd, [m.a for m in modes], convention=conv)
    k = _escaping_mode(L, wd) if mode is None else check_int(mode, "mode", 0)
    if k >= len(modes):
        raise ValueError(f"mode must be < {len(modes)} (the data's modes), got {mode!r}")
    if checkpoint is not None:
        ws = checkpoint.weights()
        traces = [gradient_covariance([w[s] for w in ws], d, convention=conv, moments=moments).trace
                  for s in range(ws[0].shape[0])]
        tr, n_par = float(np.median(traces)), int(checkpoint.n_params)
    else:
        W = aligned_weights(d, wd, n_layers=n, width=max(h, k + 1), rank=k + 1, convention=conv,
                            lam=np.ma.filled(np.ma.asarray(L.lam_min, dtype=float), np.nan))
        g = gradient_covariance(W, d, convention=conv, moments=moments)
        tr, n_par = g.trace, g.n_params
    cross = data_cross_noise(d.X, d.Y, k, k - 1, moments=moments) if (coupling and k > 0 and h > k) else None
    return predict_sgd_escape(n, modes[k], wd, lr=lr, batch_size=B, n_samples=d.n_samples, sampling=sampling,
                              convention=conv, coupling=cross, trace=tr, n_params=n_par)


def _escaping_mode(L, wd) -> int:
    """The weakest mode whose learned state is metastable (has a saddle) in the landscape ``L``."""
    saddles = np.ma.filled(np.ma.asarray(L.b_saddle, dtype=float), np.nan)
    ok = [k for k in range(saddles.size) if np.isfinite(saddles[k])]
    if not ok:
        raise ValueError(f"no mode has a metastable learned state at weight_decay = {wd!r}: nothing to escape from")
    return ok[-1]


def predict_plateau(data, seed, *, n_layers, weight_decay, lr, mode=1, threshold=1e-3, batch_size=None,
                    convention="paper"):
    """Prediction (d): full-batch epochs for ``mode`` to grow from ``seed`` to ``threshold`` (E5's plateau).

    Parameters
    ----------
    data : (X, Y), Dataset or Moments
        The training data (the mode's ``c`` and ``a``).
    seed : float or sequence of floats > 0
        The residual seed per layer along the mode (e.g. a checkpoint's ``layer_singular_values``).
    n_layers : int
    weight_decay : float >= 0
    lr : float > 0
    mode : int
        0 = strongest.
    threshold : float > 0
        End-to-end value that ends the plateau (E5: 1e-3).
    batch_size : int, optional
        Full batch only: None or ``>= N`` with one step per epoch.
    convention : "paper" (default), "canonical" or Convention

    Returns
    -------
    phasetools.theory.PlateauPrediction
    """
    d = as_data(data)
    mom = d.moments() if isinstance(d, Dataset) else d
    if batch_size is not None and isinstance(d, Dataset) and batch_size < d.n_samples:
        raise ValueError(f"batch_size must be None or >= N = {d.n_samples}: the plateau prediction is for "
                         f"full-batch steps, got {batch_size}")
    k = check_int(mode, "mode", 0)
    if k >= mom.spectrum.size:
        raise ValueError(f"mode must be < {mom.spectrum.size}, got {mode!r}")
    conv = resolve_training_convention(convention, mom.d_out)
    return plateau_time(n_layers, float(mom.spectrum[k]), weight_decay, seed, a=float(mom.a[k]), lr=lr,
                        threshold=threshold, steps_per_epoch=1, convention=conv)


def predict_injected(data, *, n_layers, width, weight_decay, temperature, lr, mode=1, convention="paper"):
    """Prediction (c): upward escape of ``mode`` (unlearned) under the trainer's injected ``temperature``, full batch.

    Parameters
    ----------
    data : (X, Y), Dataset or Moments
        The training data (the mode's ``c`` and ``a``).
    n_layers, width : int
        The network; the ``mode`` stronger modes occupy ``mode`` hidden directions, leaving
        ``n_free = width - mode`` to the escaping one.
    weight_decay : float >= 0
        Below the mode's spinodal.
    temperature : float > 0
        The trainer's ``temperature``.
    lr : float > 0
    mode : int
        The unlearned mode (0 = strongest; default 1).
    convention : "paper" (default), "canonical" or Convention

    Returns
    -------
    phasetools.theory.EscapePrediction
    """
    d = as_data(data)
    mom = d.moments() if isinstance(d, Dataset) else d
    k = check_int(mode, "mode", 0)
    h = check_int(width, "width", 1)
    if k >= mom.spectrum.size or h <= k:
        raise ValueError(f"mode must be < {mom.spectrum.size} and < width = {h}, got {mode!r}")
    conv = resolve_training_convention(convention, mom.d_out)
    return predict_injected_escape(n_layers, float(mom.spectrum[k]), weight_decay, temperature, a=float(mom.a[k]),
                                   n_free=h - k, lr=lr, n_samples=mom.n_samples, convention=conv)
