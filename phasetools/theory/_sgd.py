"""SGD-noise physics of the linear network: the per-sample gradient covariance and its temperature.

The per-sample data-term gradient of ``kappa ||y - M x||^2`` is ``g = -2 kappa J^T vec(r x^T)``
with ``r = y - M x`` and ``J = dM/dtheta`` (``d_out d_in x n_params``). For zero-mean jointly
Gaussian ``(x, y)`` Isserlis' theorem gives its covariance in closed form::

    Sigma = 4 kappa^2 J^T K J,
    K[(a,b),(c,d)] = E[r_a r_c] E[x_b x_d] + E[r_a x_d] E[r_c x_b],
    E[r r^T] = S_yy - M S_xy - S_yx M^T + M S_xx M^T,   E[r x^T] = S_yx - M S_xx.

For one scalar mode (``S_xx = a``, ``S_yx = c``, ``S_yy = s``, ``M = P``) this is
``K(P) = a (s - 2 P c + P^2 a) + (c - P a)^2``. Weight decay adds no noise. SGD with learning
rate ``lr`` and batches of ``B`` adds the covariance ``(lr f / B) Sigma`` per unit of Langevin
time ``lr * steps``, with ``f = (N - B)/(N - 1)`` for batches drawn without replacement from
``N`` samples (``f = 1`` otherwise); the isotropic replacement ``Sigma -> (tr Sigma / N_theta) I``
has the temperature ``T_eff = lr f tr(Sigma) / (2 B N_theta)``.

:func:`residual_moments` and :func:`gradient_noise_kernel` take numpy arrays (with any leading
batch axes on ``M``) or sympy matrices (the generated Langevin kernels can print the same
expressions), so there is one definition of each formula.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from .._validation import check_int, check_scalar

__all__ = ["residual_moments", "gradient_noise_kernel", "data_noise_kernel", "sample_fourth_moments",
           "gaussian_fourth_moments", "gradient_covariance_from_K",
           "without_replacement_factor", "noise_strength", "effective_temperature"]


def _transpose(A):
    return A.T if isinstance(A, sp.MatrixBase) else np.swapaxes(A, -1, -2)


def residual_moments(M, input_cov, cross_cov, output_cov):
    """Second moments of the residual ``r = y - M x`` under the Gaussian data model.

    Parameters
    ----------
    M : array (..., p, d) or sympy Matrix (p, d)
        End-to-end map(s); leading axes are a batch.
    input_cov : array (d, d) or sympy Matrix
        ``S_xx = E[x x^T]``.
    cross_cov : array (p, d) or sympy Matrix
        ``S_yx = E[y x^T]``.
    output_cov : array (p, p) or sympy Matrix
        ``S_yy = E[y y^T]``.

    Returns
    -------
    Q : array (..., p, p) or sympy Matrix
        ``E[r r^T] = S_yy - M S_yx^T - S_yx M^T + M S_xx M^T``.
    R : array (..., p, d) or sympy Matrix
        ``E[r x^T] = S_yx - M S_xx``.
    """
    Mt = _transpose(M)
    Q = output_cov - M @ _transpose(cross_cov) - cross_cov @ Mt + M @ input_cov @ Mt
    R = cross_cov - M @ input_cov
    return Q, R


def _kernel_entry(Q, R, Sxx, a, b, c, d):
    """``K[(a,b),(c,d)] = E[r_a r_c] E[x_b x_d] + E[r_a x_d] E[r_c x_b]`` (the einsum below
    spells the same indices: ``ac,bd`` and ``ad,cb``)."""
    return Q[a, c] * Sxx[b, d] + R[a, d] * R[c, b]


def gradient_noise_kernel(M, input_cov, cross_cov, output_cov):
    """The matrix ``K`` of ``Sigma = 4 kappa^2 J^T K J`` (the covariance of ``vec(r x^T)``).

    ``K[(a,b),(c,d)] = E[r_a r_c] E[x_b x_d] + E[r_a x_d] E[r_c x_b]`` (Isserlis), rows and
    columns in the row-major order of ``vec(r x^T)``; for one scalar mode
    ``K(P) = a (s - 2 P c + P^2 a) + (c - P a)^2``.

    Parameters
    ----------
    M : array (..., p, d) or sympy Matrix (p, d)
        End-to-end map(s); leading axes are a batch.
    input_cov, cross_cov, output_cov : arrays or sympy matrices
        ``S_xx`` (d, d), ``S_yx`` (p, d), ``S_yy`` (p, p), as in :func:`residual_moments`.

    Returns
    -------
    array (..., p d, p d) or sympy Matrix
        ``K``; a sympy Matrix of expressions when the inputs are sympy matrices.
    """
    Q, R = residual_moments(M, input_cov, cross_cov, output_cov)
    if isinstance(Q, sp.MatrixBase):
        p, d = R.shape
        return sp.Matrix(p * d, p * d, lambda i, j: _kernel_entry(Q, R, input_cov, *divmod(i, d), *divmod(j, d)))
    p, d = R.shape[-2:]
    K = np.einsum("...ac,...bd->...abcd", Q, input_cov) + np.einsum("...ad,...cb->...abcd", R, R)
    return K.reshape(K.shape[:-4] + (p * d, p * d))


def sample_fourth_moments(X, Y) -> np.ndarray:
    """The fourth moments ``T[k,b,l,d] = E[z_k x_b z_l x_d]`` of a data set, ``z = (x, y)``.

    The moments that fix the per-sample gradient noise of any linear network trained on the
    samples (:func:`data_noise_kernel`): ``(d_in + d_out)^2 d_in^2`` numbers, averaged over the
    ``N`` samples (normalised by ``N``, as the loss).

    Parameters
    ----------
    X, Y : arrays (N, d_in), (N, d_out)
        The samples in rows (``N >= 2``).

    Returns
    -------
    numpy.ndarray (d_in + d_out, d_in, d_in + d_out, d_in)
    """
    X = np.asarray(X, dtype=float)
    Y = np.asarray(Y, dtype=float)
    if X.ndim != 2 or Y.ndim != 2 or X.shape[0] != Y.shape[0] or X.shape[0] < 2:
        raise ValueError(f"X and Y must be 2-D arrays (N, d_in), (N, d_out) with the same number N >= 2 of rows, "
                         f"got {X.shape} and {Y.shape}")
    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(Y))):
        raise ValueError("X and Y must be finite")
    N, d = X.shape
    Z = np.concatenate([X, Y], axis=1)
    V = (Z[:, :, None] * X[:, None, :]).reshape(N, -1)   # vec(z x^T) per sample
    T = V.T @ V / N
    T = 0.5 * (T + T.T)
    return T.reshape(Z.shape[1], d, Z.shape[1], d)


def gaussian_fourth_moments(input_cov, cross_cov, output_cov) -> np.ndarray:
    """Isserlis' fourth moments ``T[k,b,l,d] = S_kb S_ld + S_kl S_bd + S_kd S_lb`` of zero-mean Gaussian data.

    With them :func:`data_noise_kernel` is :func:`gradient_noise_kernel`.

    Parameters
    ----------
    input_cov, cross_cov, output_cov : arrays
        ``S_xx`` (d, d), ``S_yx`` (p, d), ``S_yy`` (p, p).

    Returns
    -------
    numpy.ndarray (d + p, d, d + p, d)
        ``S`` here is the joint second-moment matrix of ``z = (x, y)``; ``x`` is its first ``d``.
    """
    sxx = np.atleast_2d(np.asarray(input_cov, dtype=float))
    syx = np.atleast_2d(np.asarray(cross_cov, dtype=float))
    syy = np.atleast_2d(np.asarray(output_cov, dtype=float))
    d = sxx.shape[0]
    joint = np.block([[sxx, syx.T], [syx, syy]])
    Sx = joint[:, :d]
    return (np.einsum("kb,ld->kbld", Sx, Sx) + np.einsum("kl,bd->kbld", joint, sxx)
            + np.einsum("kd,lb->kbld", Sx, Sx))


def data_noise_kernel(M, input_cov, cross_cov, fourth):
    """``K`` of ``Sigma = 4 kappa^2 J^T K J`` from the data's own fourth moments.

    With ``e = M x - y = A z``, ``A = [M, -I]``, ``z = (x, y)``, the per-sample ``vec(e x^T)``
    has covariance ``K[(a,b),(c,d)] = sum_kl A_ak A_cl T[k,b,l,d] - (A S)_ab (A S)_cd`` with
    ``T[k,b,l,d] = E[z_k x_b z_l x_d]`` and ``S[k,b] = E[z_k x_b]`` (``S_xx`` stacked on
    ``S_yx``). The sign of ``e`` does not matter (``r = -e``). For Gaussian data
    (:func:`gaussian_fourth_moments`) this is :func:`gradient_noise_kernel`.

    Parameters
    ----------
    M : array (..., p, d)
        End-to-end map(s); leading axes are a batch.
    input_cov, cross_cov : arrays
        ``S_xx`` (d, d) and ``S_yx`` (p, d) of the same data.
    fourth : array (d + p, d, d + p, d)
        ``T`` (:func:`sample_fourth_moments`).

    Returns
    -------
    numpy.ndarray (..., p d, p d)
    """
    M = np.asarray(M, dtype=float)
    p, d = M.shape[-2:]
    S = np.concatenate([np.atleast_2d(np.asarray(input_cov, dtype=float)),
                        np.atleast_2d(np.asarray(cross_cov, dtype=float))], axis=0)
    T = np.asarray(fourth, dtype=float)
    if T.shape != (d + p, d, d + p, d) or S.shape != (d + p, d):
        raise ValueError(f"fourth must have shape {(d + p, d, d + p, d)} and input_cov, cross_cov ({d}, {d}), "
                         f"({p}, {d}) for M of shape {M.shape[-2:]}, got {T.shape} and {S.shape}")
    A = np.concatenate([M, np.broadcast_to(-np.eye(p), M.shape[:-2] + (p, p))], axis=-1)
    AS = A @ S
    K = np.einsum("...ak,...cl,kbld->...abcd", A, A, T) - np.einsum("...ab,...cd->...abcd", AS, AS)
    return K.reshape(K.shape[:-4] + (p * d, p * d))


def gradient_covariance_from_K(J, K, kappa):
    """The per-sample gradient covariance ``Sigma = 4 kappa^2 J^T K J``.

    Parameters
    ----------
    J : array (..., p d, n_params)
        ``dM/dtheta`` (rows in the order of ``vec(M)``).
    K : array (..., p d, p d)
        From :func:`gradient_noise_kernel`.
    kappa : float
        The convention's loss scale (the data term is ``kappa ||y - M x||^2``).

    Returns
    -------
    array (..., n_params, n_params)
        ``Sigma``.
    """
    return 4.0 * kappa ** 2 * _transpose(J) @ K @ J


def without_replacement_factor(batch_size, n_samples=None) -> float:
    """``(N - B)/(N - 1)``: the noise of batches of ``B`` drawn without replacement from ``N``.

    Parameters
    ----------
    batch_size : int >= 1
        ``B``.
    n_samples : int >= max(2, batch_size) or None
        ``N``; None (batches drawn with replacement, or an infinite set) gives 1.

    Returns
    -------
    float
    """
    B = check_int(batch_size, "batch_size", 1)
    if n_samples is None:
        return 1.0
    N = check_int(n_samples, "n_samples", max(2, B))
    return (N - B) / (N - 1)


def noise_strength(lr, batch_size, n_samples=None) -> float:
    """``lr f / B``: the factor of ``Sigma`` in the SGD noise covariance per unit Langevin time.

    Parameters
    ----------
    lr : float > 0
        Learning rate.
    batch_size : int >= 1
        Batch size ``B``.
    n_samples : int or None
        Data-set size ``N`` for the without-replacement factor ``f``
        (:func:`without_replacement_factor`).

    Returns
    -------
    float
    """
    lr = check_scalar(lr, "lr", positive=True)
    f = without_replacement_factor(batch_size, n_samples)
    return lr * f / batch_size


def effective_temperature(trace, n_params, lr, batch_size, n_samples=None) -> float:
    """``T_eff = lr f tr(Sigma) / (2 B N_theta)``: the temperature of isotropic SGD noise.

    The temperature at which additive noise ``sqrt(2 T) dW`` has the same total variance as
    SGD's ``(lr f / B) Sigma`` spread evenly over the ``N_theta`` parameters.

    Parameters
    ----------
    trace : float >= 0
        ``tr Sigma`` of the per-sample gradients (convention units).
    n_params : int >= 1
        ``N_theta``.
    lr : float > 0
        Learning rate.
    batch_size : int >= 1
        Batch size ``B``.
    n_samples : int or None
        Data-set size ``N`` for the without-replacement factor ``f = (N - B)/(N - 1)``.

    Returns
    -------
    float
        ``T_eff`` in the convention's energy units.
    """
    tr = check_scalar(trace, "trace")
    lr = check_scalar(lr, "lr", positive=True)
    n_params = check_int(n_params, "n_params", 1)
    factor = without_replacement_factor(batch_size, n_samples)
    return lr * tr / (2.0 * batch_size * n_params) * factor
