"""Per-sample gradient covariance of a trained linear network, and its SGD temperature.

The per-sample data-term gradient of ``kappa ||y - M x||^2`` for layer ``k`` is
``-2 kappa A_k^T r x^T B_k^T`` with ``r = y - M x``, ``A_k`` the product of the layers above
and ``B_k`` of those below; with ``J = dM/dtheta`` (``d_out d_in x n_params``, :func:`jacobian`)
it is ``g = -2 kappa J^T vec(r x^T)``. The closed form of its covariance under the Gaussian
model, ``Sigma = 4 kappa^2 J^T K J``, and the temperature ``T_eff = lr f tr(Sigma) / (2 B N_theta)``
are the theory's (:mod:`phasetools.theory`: ``gradient_noise_kernel``,
``gradient_covariance_from_K``, ``effective_temperature``, ``without_replacement_factor``);
this module evaluates them at a network's weights, or estimates ``Sigma`` from samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._validation import as_float_array, check_choice
from ..results import Result, register, timed
from ..theory import (Convention, effective_temperature, end_to_end, gradient_covariance_from_K,
                      gradient_noise_kernel, residual_moments)
from ._data import Dataset, Moments, as_data
from ._train import resolve_training_convention

__all__ = ["GradientNoise", "gradient_covariance", "per_sample_gradients", "effective_temperature",
           "jacobian"]


def _weights(weights):
    mats = [as_float_array(w, f"weights[{k}]") for k, w in enumerate(weights)]
    if not mats or any(m.ndim != 2 for m in mats):
        raise ValueError("weights must be a non-empty list of 2-D arrays [W_1, ..., W_n]")
    for k in range(1, len(mats)):
        if mats[k].shape[1] != mats[k - 1].shape[0]:
            raise ValueError(f"weights[{k}] has {mats[k].shape[1]} columns but weights[{k - 1}] has "
                             f"{mats[k - 1].shape[0]} rows")
    return mats


def jacobian(weights) -> np.ndarray:
    """``J[(a, b), theta] = dM_ab / dtheta`` of ``M = W_n ... W_1``.

    Parameters
    ----------
    weights : sequence of 2-D arrays
        ``W_1 ... W_n`` (``W_1`` acts first).

    Returns
    -------
    array (d_out d_in, n_params)
        Rows in the row-major order of ``M``, columns the flattened weights in layer order.
    """
    W = _weights(weights)
    d_in, d_out = W[0].shape[1], W[-1].shape[0]
    blocks = []
    below = np.eye(d_in)
    for k, w in enumerate(W):
        above = end_to_end(W[k + 1:]) if k + 1 < len(W) else np.eye(d_out)
        blocks.append(np.einsum("ar,cb->abrc", above, below).reshape(d_out * d_in, w.size))
        below = w @ below
    return np.concatenate(blocks, axis=1)


def per_sample_gradients(weights, X, Y, *, convention="canonical") -> np.ndarray:
    """Per-sample gradients of ``kappa ||y_i - M x_i||^2``, flat in layer order.

    Parameters
    ----------
    weights : sequence of 2-D arrays
        ``W_1 ... W_n``.
    X, Y : arrays (N, d_in), (N, d_out)
        Samples in rows.
    convention : {"canonical", "paper"} or Convention
        Sets ``kappa``.

    Returns
    -------
    array (N, n_params)
    """
    W = _weights(weights)
    d = Dataset(X, Y)
    conv = resolve_training_convention(convention, d.Y.shape[1])
    M = end_to_end(W)
    if M.shape != (d.Y.shape[1], d.X.shape[1]):
        raise ValueError(f"the weights map {M.shape[1]} -> {M.shape[0]} but the data are "
                         f"{d.X.shape[1]} -> {d.Y.shape[1]}")
    r = d.Y - d.X @ M.T
    outer = (r[:, :, None] * d.X[:, None, :]).reshape(d.n_samples, -1)
    return -2.0 * conv.kappa * outer @ jacobian(W)


@register
@dataclass(frozen=True, eq=False, repr=False)
class GradientNoise(Result):
    """Per-sample gradient covariance ``covariance`` (and mean ``mean``) of the data term at ``params``.

    Made by :func:`gradient_covariance`. In the units of ``convention`` (the data term is
    ``kappa ||y - Mx||^2``).

    Parameters
    ----------
    layer_shapes : array (n_layers, 2)
        Shapes of ``W_1 ... W_n``.
    convention : Convention
        Units.
    source : {"gaussian", "empirical"}
        Closed form from second moments (Isserlis: ``moments="gaussian"``), or over the
        ``n_samples`` samples of a data set (their own fourth moments, ``moments="data"``;
        normalised by ``N``).
    n_samples : int or None
        Size of the data set the moments come from, else None (population moments).
    params : array (n_params,)
        The flattened weights.
    mean : array (n_params,)
        Mean per-sample gradient.
    covariance : array (n_params, n_params)
        ``Sigma``.
    trace : float
        ``tr Sigma``.
    n_params : int
        ``N_theta``.
    """

    layer_shapes: np.ndarray
    convention: Convention
    source: str
    n_samples: int | None
    params: np.ndarray
    mean: np.ndarray
    covariance: np.ndarray
    trace: float
    n_params: int

    _config_fields = ("layer_shapes", "convention", "source", "n_samples", "params")
    _dims = {"layer_shapes": ("layer", "axis"), "params": ("param",), "mean": ("param",),
             "covariance": ("param", "param")}
    _units = {"params": "weight"}

    def temperature(self, lr, batch_size, n_samples=None) -> float:
        """``T_eff = lr tr(Sigma) / (2 batch_size n_params)``, times ``(N - B)/(N - 1)`` if ``n_samples`` is given.

        Parameters
        ----------
        lr, batch_size, n_samples : float > 0, int >= 1, int or None
            As in :func:`phasetools.theory.effective_temperature`.

        Returns
        -------
        float
            :func:`phasetools.theory.effective_temperature` of this ``trace`` and ``n_params``.
        """
        return effective_temperature(self.trace, self.n_params, lr, batch_size, n_samples)

    def __repr__(self):
        return (f"GradientNoise(source={self.source!r}, n_params={self.n_params}, trace={self.trace:.6g}, "
                f"convention={self.convention.name!r})")


MOMENTS = ("data", "gaussian")


@timed
def gradient_covariance(weights, data, *, convention="canonical", moments=None) -> GradientNoise:
    """Covariance of the per-sample gradients of ``kappa ||y - Mx||^2`` at ``weights``.

    Parameters
    ----------
    weights : sequence of 2-D arrays
        ``W_1 ... W_n``.
    data : Moments, GaussianTeacher, Dataset or (X, Y)
        Moments or a teacher: the closed form under the Gaussian model
        (:func:`phasetools.theory.gradient_noise_kernel`); samples: see ``moments``.
    convention : {"canonical", "paper"} or Convention
        Sets ``kappa``.
    moments : {"data", "gaussian"}, optional
        For samples: ``"data"`` (default) is the empirical covariance over them, normalised by
        ``N`` (their own fourth moments: the noise of batches drawn from that finite set);
        ``"gaussian"`` is the Isserlis closed form of their second moments (what a Gaussian
        data set with the same covariance would give). Moments and teachers allow only
        ``"gaussian"``. Recorded in ``source`` (``"empirical"`` for ``"data"``).

    Returns
    -------
    GradientNoise
    """
    W = _weights(weights)
    d = as_data(data)
    if moments is not None:
        check_choice(moments, "moments", MOMENTS)
        if moments == "data" and isinstance(d, Moments):
            raise ValueError("moments='data' needs samples (X, Y) or a Dataset: moments and teachers carry no "
                             "fourth moments; use moments='gaussian'")
    n_from = d.n_samples if (moments == "gaussian" and isinstance(d, Dataset)) else None
    if n_from is not None:
        d = d.moments()
    M = end_to_end(W)
    d_out, d_in = M.shape
    conv = resolve_training_convention(convention, d_out)
    theta = np.concatenate([w.ravel() for w in W])
    if isinstance(d, Moments):
        if (d.d_out, d.d_in) != (d_out, d_in):
            raise ValueError(f"the weights map {d_in} -> {d_out} but the data are {d.d_in} -> {d.d_out}")
        moments = (d.input_cov, d.cross_cov, d.output_cov)
        J = jacobian(W)
        cov = gradient_covariance_from_K(J, gradient_noise_kernel(M, *moments), conv.kappa)
        mean = -2.0 * conv.kappa * J.T @ residual_moments(M, *moments)[1].ravel()
        source, n_samples = "gaussian", n_from
    else:
        g = per_sample_gradients(W, d.X, d.Y, convention=conv)
        mean = g.mean(axis=0)
        c = g - mean
        cov = c.T @ c / g.shape[0]
        source, n_samples = "empirical", d.n_samples
    cov = 0.5 * (cov + cov.T)
    return GradientNoise(np.array([w.shape for w in W], dtype=np.int64), conv, source, n_samples, theta, mean,
                         cov, float(np.trace(cov)), int(theta.size))
