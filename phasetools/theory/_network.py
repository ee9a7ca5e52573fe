"""The full deep linear network loss in the canonical convention, with its gradient.

``U(W) = tr(M S_xx M^T) - 2 tr(M S_yx^T) + gamma sum_i ||W_i||_F^2``, ``M = W_n ... W_1``,

measured from the trivial state (the constant ``E||y||^2`` is dropped). The data enter
only through ``S_xx`` (d x d) and ``S_yx`` (p x d). Used to solve the reduced problem of
finite samples numerically and, in the tests, as the brute-force oracle for the theory.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize

__all__ = ["layer_shapes", "unpack", "pack", "end_to_end", "network_loss", "network_grad",
           "network_hessian", "relax"]


def layer_shapes(d_in: int, d_out: int, n_layers: int, width: int):
    """Shapes of the weight matrices ``W_1 ... W_n`` of a deep linear network.

    Parameters
    ----------
    d_in, d_out : int
        Input and output dimensions.
    n_layers : int
        Number of weight matrices.
    width : int
        Hidden width.

    Returns
    -------
    list of tuple
        ``(width, d_in), (width, width), ..., (d_out, width)``.
    """
    dims = [d_in] + [width] * (n_layers - 1) + [d_out]
    return [(dims[i + 1], dims[i]) for i in range(n_layers)]


def unpack(theta, shapes):
    out, k = [], 0
    for r, c in shapes:
        out.append(theta[k:k + r * c].reshape(r, c))
        k += r * c
    return out


def pack(weights):
    return np.concatenate([np.ravel(w) for w in weights])


def end_to_end(weights):
    """The end-to-end map ``M = W_n ... W_1``.

    Parameters
    ----------
    weights : sequence of arrays
        ``W_1 ... W_n`` in the order they act on the input (``W_1`` first).

    Returns
    -------
    numpy.ndarray
        The product, shape ``(d_out, d_in)``.
    """
    m = weights[0]
    for w in weights[1:]:
        m = w @ m
    return m


def network_loss(theta, shapes, sxx, syx, gamma):
    W = unpack(theta, shapes)
    M = end_to_end(W)
    return float(np.sum((M @ sxx) * M) - 2.0 * np.sum(M * syx) + gamma * theta @ theta)


def network_grad(theta, shapes, sxx, syx, gamma):
    W = unpack(theta, shapes)
    n = len(W)
    # 0-based: prefix[i] = W[i-1] ... W[0] (prefix[0] = I), suffix[i] = W[n-1] ... W[i] (suffix[n] = I)
    prefix = [np.eye(sxx.shape[0])]
    for w in W:
        prefix.append(w @ prefix[-1])
    G = 2.0 * (prefix[-1] @ sxx - syx)
    suffix = [None] * (n + 1)
    suffix[n] = np.eye(syx.shape[0])
    for i in range(n - 1, -1, -1):
        suffix[i] = suffix[i + 1] @ W[i]
    grads = []
    for i in range(n):
        A = suffix[i + 1]  # product of the layers above layer i
        B = prefix[i]      # product of the layers below layer i
        grads.append(A.T @ G @ B.T + 2.0 * gamma * W[i])
    return pack(grads)


def network_hessian(theta, shapes, sxx, syx, gamma, eps=1e-6):
    """Hessian by central differences of the analytic gradient (symmetrised)."""
    k = theta.size
    H = np.empty((k, k))
    for j in range(k):
        e = np.zeros(k)
        e[j] = eps
        H[:, j] = (network_grad(theta + e, shapes, sxx, syx, gamma)
                   - network_grad(theta - e, shapes, sxx, syx, gamma)) / (2 * eps)
    return 0.5 * (H + H.T)


def relax(theta0, shapes, sxx, syx, gamma, *, gtol=1e-12, maxiter=2000):
    """Local minimisation from ``theta0`` that stays in the starting basin; returns ``(theta, loss)``.

    A trust-region Newton method (``trust-ncg``, Hessian-vector products by central
    differences of the analytic gradient) with a small initial trust radius: it only
    accepts steps that lower the loss and lets the radius grow only while the quadratic
    model is right, so it does not jump over a barrier the way a line search that starts
    with a unit step (L-BFGS) can from near a shallow minimum.
    """
    theta0 = np.asarray(theta0, dtype=np.float64)
    eps = 1e-7 * max(1.0, float(np.max(np.abs(theta0))))

    def hessp(theta, v, *_args):
        nv = np.linalg.norm(v)
        if nv == 0:
            return np.zeros_like(v)
        h = eps / nv
        return (network_grad(theta + h * v, shapes, sxx, syx, gamma)
                - network_grad(theta - h * v, shapes, sxx, syx, gamma)) / (2 * h)

    radius = 1e-2 * max(1e-3, float(np.linalg.norm(theta0)))
    res = minimize(network_loss, theta0, args=(shapes, sxx, syx, gamma), jac=network_grad, hessp=hessp,
                   method="trust-ncg", options={"gtol": gtol, "maxiter": maxiter, "initial_trust_radius": radius,
                                                "max_trust_radius": 10 * max(1.0, float(np.linalg.norm(theta0)))})
    return res.x, float(res.fun)
