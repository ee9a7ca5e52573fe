"""Per-sample gradient covariance of the linear network and the SGD temperature.

The per-sample data-term gradient of ``kappa ||y - M x||^2`` for layer ``k`` is
``-2 kappa A_k^T r x^T B_k^T`` with ``r = y - M x``, ``A_k`` the product of the layers above
and ``B_k`` of those below; with ``J = dM/dtheta`` (``d_out d_in x n_params``) it is
``g = -2 kappa J^T vec(r x^T)``. For zero-mean jointly Gaussian ``(x, y)`` Isserlis' theorem
gives the covariance in closed form (science brief 5.1-5.3)::

    Sigma = 4 kappa^2 J^T K J,
    K[(a,b),(c,d)] = E[r_a r_c] E[x_b x_d] + E[r_a x_d] E[r_c x_b],
    E[r r^T] = S_yy - M S_xy - S_yx M^T + M S_xx M^T,   E[r x^T] = S_yx - M S_xx.

Weight decay adds no noise. The temperature of the isotropic replacement
``Sigma -> (tr Sigma / n_params) I`` is ``T = lr tr(Sigma) / (2 B n_params)``, times
``(N - B)/(N - 1)`` for batches drawn without replacement from ``N`` samples, in the units of
the convention (Langevin time ``lr * steps``).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from .._validation import as_float_array
from ..results import Result, register, timed
from ..theory._convention import Convention
from ..theory._network import end_to_end
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
    """``J[(a, b), theta] = dM_ab / dtheta`` of ``M = W_n ... W_1``, shape (d_out d_in, n_params)."""
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
    """Per-sample gradients of ``kappa ||y_i - M x_i||^2`` (N, n_params), flat in layer order."""
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

    ``source``: ``"gaussian"`` (closed form from moments, Isserlis) or ``"empirical"``
    (over the ``n_samples`` samples of a data set, normalised by ``N``). In the units of
    ``convention`` (the data term is ``kappa ||y - Mx||^2``).
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
        """``lr tr(Sigma) / (2 batch_size n_params)``, times ``(N - B)/(N - 1)`` if ``n_samples`` is given."""
        return effective_temperature(self.trace, self.n_params, lr, batch_size, n_samples)

    def __repr__(self):
        return (f"GradientNoise(source={self.source!r}, n_params={self.n_params}, trace={self.trace:.6g}, "
                f"convention={self.convention.name!r})")


def effective_temperature(trace, n_params, lr, batch_size, n_samples=None) -> float:
    """``T = lr * trace / (2 * batch_size * n_params)`` (science brief 5.2), with the
    without-replacement factor ``(N - B)/(N - 1)`` when ``n_samples = N`` is given."""
    tr = float(as_float_array(trace, "trace"))
    if tr < 0:
        raise ValueError(f"trace must be >= 0, got {trace!r}")
    lr = float(as_float_array(lr, "lr"))
    if lr <= 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    for name, v in (("n_params", n_params), ("batch_size", batch_size)):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral) or v < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    factor = 1.0
    if n_samples is not None:
        if isinstance(n_samples, (bool, np.bool_)) or not isinstance(n_samples, numbers.Integral) \
                or n_samples < max(2, batch_size):
            raise ValueError(f"n_samples must be an integer >= max(2, batch_size), got {n_samples!r}")
        factor = (n_samples - batch_size) / (n_samples - 1)
    return lr * tr / (2.0 * batch_size * n_params) * factor


@timed
def gradient_covariance(weights, data, *, convention="canonical") -> GradientNoise:
    """Covariance of the per-sample gradients of ``kappa ||y - Mx||^2`` at ``weights``.

    ``data``: Moments or a GaussianTeacher (closed form under the Gaussian model), or
    ``(X, Y)``/Dataset (the empirical covariance over those samples, normalised by ``N``:
    the noise of batches drawn from that finite set).
    """
    W = _weights(weights)
    d = as_data(data)
    M = end_to_end(W)
    d_out, d_in = M.shape
    conv = resolve_training_convention(convention, d_out)
    theta = np.concatenate([w.ravel() for w in W])
    if isinstance(d, Moments):
        if (d.d_out, d.d_in) != (d_out, d_in):
            raise ValueError(f"the weights map {d_in} -> {d_out} but the data are {d.d_in} -> {d.d_out}")
        sxx, syx, syy = d.input_cov, d.cross_cov, d.output_cov
        Q = syy - M @ syx.T - syx @ M.T + M @ sxx @ M.T
        R = syx - M @ sxx
        Kmat = (np.einsum("ac,bd->abcd", Q, sxx) + np.einsum("ad,cb->abcd", R, R)).reshape(d_out * d_in, -1)
        J = jacobian(W)
        cov = 4.0 * conv.kappa ** 2 * J.T @ Kmat @ J
        mean = -2.0 * conv.kappa * J.T @ R.ravel()
        source, n_samples = "gaussian", None
    else:
        g = per_sample_gradients(W, d.X, d.Y, convention=conv)
        mean = g.mean(axis=0)
        c = g - mean
        cov = c.T @ c / g.shape[0]
        source, n_samples = "empirical", d.n_samples
    cov = 0.5 * (cov + cov.T)
    return GradientNoise(np.array([w.shape for w in W], dtype=np.int64), conv, source, n_samples, theta, mean,
                         cov, float(np.trace(cov)), int(theta.size))
