"""Non-aligned data with vector input and scalar output (docs/theory.md).

The end-to-end map is a row vector ``m = P u`` (``|u| = 1``); the smallest regulariser
over factorisations is ``n |m|^(2/n)``, so the exact reduced problem is

    E(m) = m^T S_xx m - 2 q.m + n gamma |m|^(2/n),      q = E[x y].

Along a direction ``u`` it is a scalar mode with ``a = u^T S_xx u`` and ``c = |u.q|``;
hence ``gamma_c = max_u gamma_c(n, a(u), c(u))``, found here by multi-start maximisation
over the sphere. The spinodal is not a per-direction maximum (that is only an upper
bound): the stationary points of ``E`` form one curve parameterised by
``mu = gamma |m|^(2/n-2)`` (see :func:`stationary_branch`), and ``gamma_sp`` is the
largest coupling on it (its fold).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize, minimize_scalar

from .._validation import as_float_array, check_n_layers
from ..results import Result, register, timed
from ._convention import Convention, resolve_convention
from ._symbolic import compiled_closed_forms

__all__ = ["NonalignedCriticalPoints", "nonaligned_critical_points", "stationary_branch"]


@register
@dataclass(frozen=True, eq=False, repr=False)
class NonalignedCriticalPoints(Result):
    """Critical couplings of vector-input, scalar-output data with any input covariance.

    ``direction`` is the unit input direction learned at the jump, ``a_eff``/``c_eff``
    the scalar mode along it; ``gamma_c_naive`` is the (wrong for ``n >= 3``) shortcut
    ``a_eff = q^T S q / |q|^2`` along ``q``, kept for comparison; ``gamma_sp_bound`` is
    ``max_u gamma_sp(u)``, an upper bound on ``gamma_sp``.
    """

    n_layers: int
    input_cov: np.ndarray
    cross_cov: np.ndarray
    convention: Convention
    gamma_c: float
    gamma_sp: float
    gamma_sp_bound: float
    direction: np.ndarray
    a_eff: float
    c_eff: float
    gamma_c_naive: float

    _config_fields = ("n_layers", "input_cov", "cross_cov", "convention")
    _dims = {"input_cov": ("input", "input"), "cross_cov": ("input",), "direction": ("input",)}
    _units = {"gamma_c": "coupling[convention]", "gamma_sp": "coupling[convention]",
              "gamma_sp_bound": "coupling[convention]", "gamma_c_naive": "coupling[convention]"}

    def __repr__(self):
        return (f"NonalignedCriticalPoints(n_layers={self.n_layers}, gamma_c={self.gamma_c:.9g}, "
                f"gamma_sp={self.gamma_sp:.9g}, direction={np.array2string(self.direction, precision=6)}, "
                f"gamma_c_naive={self.gamma_c_naive:.9g})")


def _check_inputs(input_cov, cross_cov):
    S = as_float_array(input_cov, "input_cov")
    q = as_float_array(cross_cov, "cross_cov").ravel()
    if S.ndim != 2 or S.shape[0] != S.shape[1]:
        raise ValueError(f"input_cov must be a square matrix, got shape {S.shape}")
    if S.shape[0] != q.size:
        raise ValueError(f"cross_cov must have length {S.shape[0]} (the input dimension), got {q.size}")
    if not np.allclose(S, S.T, rtol=1e-10, atol=1e-12 * np.abs(S).max()):
        raise ValueError("input_cov must be symmetric")
    if np.linalg.eigvalsh(S).min() <= 0:
        raise ValueError("input_cov must be positive definite")
    if not np.any(q):
        raise ValueError("cross_cov must not be zero")
    return S, q


def _best_direction(n, S, q):
    """Unit u maximising |u.q|^(2-2/n) (u^T S u)^(2/n-1) (scale-free in u)."""
    p, r = 2.0 - 2.0 / n, 2.0 / n - 1.0

    def neg_log(v):
        vq, vSv, vv = v @ q, v @ S @ v, v @ v
        f = -(p * np.log(abs(vq)) + r * np.log(vSv) - (p + 2 * r) / 2 * np.log(vv))
        g = -(p * q / vq + r * 2 * S @ v / vSv - (p + 2 * r) * v / vv)
        return f, g

    d = q.size
    starts = [q, np.linalg.solve(S, q)] + list(np.linalg.eigh(S)[1].T)
    rng = np.random.default_rng(20261129)  # fixed: the search is deterministic
    starts += list(rng.normal(size=(8 + 4 * d, d)))
    best = None
    for v0 in starts:
        if abs(v0 @ q) < 1e-12 * np.linalg.norm(v0) * np.linalg.norm(q):
            v0 = v0 + 1e-3 * q
        res = minimize(neg_log, v0, jac=True, method="BFGS", options={"gtol": 1e-12})
        if best is None or res.fun < best.fun:
            best = res
    u = best.x / np.linalg.norm(best.x)
    return u * np.sign(u @ q)


def stationary_branch(mu, S, q, n):
    """The non-trivial stationary points of E(m), parameterised by ``mu = gamma |m|^(2/n - 2)``.

    Stationarity ``2 S m - 2 q + 2 gamma |m|^(2/n-2) m = 0`` gives ``m = (S + mu I)^-1 q``
    and ``gamma = mu |m|^(2 - 2/n)``: one curve, with the learned minima at small ``mu``
    and the saddles at large ``mu``. Returns ``(m, gamma, energy)`` (broadcast over mu).
    """
    lam, V = np.linalg.eigh(S)
    qt = V.T @ q
    mu = np.asarray(mu, dtype=np.float64)
    mt = qt / (lam + mu[..., None])
    r = np.linalg.norm(mt, axis=-1)
    g = mu * r ** (2.0 - 2.0 / n)
    energy = np.sum(lam * mt**2, axis=-1) - 2 * mt @ qt + n * g * r ** (2.0 / n)
    return mt @ V.T, g, energy


def _spinodal(n, S, q):
    """gamma_sp = the maximum of gamma(mu) along the stationary branch (its fold)."""
    lam = np.linalg.eigvalsh(S)
    lo, hi = np.log(lam.min()) - 30.0, np.log(lam.max()) + 30.0
    t = np.linspace(lo, hi, 4001)
    j = int(np.argmax(stationary_branch(np.exp(t), S, q, n)[1]))
    res = minimize_scalar(lambda x: -stationary_branch(np.exp(x), S, q, n)[1], bounds=(t[max(j - 1, 0)],
                          t[min(j + 1, t.size - 1)]), method="bounded", options={"xatol": 1e-12})
    return float(-res.fun), float(np.exp(res.x))


@timed
def nonaligned_critical_points(n_layers, input_cov, cross_cov, *, convention="canonical"):
    """``gamma_c`` (and ``gamma_sp``) for vector input ``x`` and scalar output ``y``.

    Parameters
    ----------
    input_cov : (d, d) array, symmetric positive definite
        ``S_xx = E[x x^T]``.
    cross_cov : (d,) array
        ``q = E[x y]``.
    """
    n = check_n_layers(n_layers)
    conv = resolve_convention(convention)
    S, q = _check_inputs(input_cov, cross_cov)
    f = compiled_closed_forms()
    if n == 2:
        u = q / np.linalg.norm(q)
    else:
        u = _best_direction(n, S, q)
    a_eff, c_eff = float(u @ S @ u), float(u @ q)
    gamma_c = float(f.gamma_c(n, a_eff, c_eff))
    qn = q / np.linalg.norm(q)
    gamma_c_naive = float(f.gamma_c(n, float(qn @ S @ qn), float(np.linalg.norm(q))))
    if n == 2:
        gamma_sp = gamma_bound = gamma_c
    else:
        gamma_bound = float(f.gamma_sp(n, a_eff, c_eff))  # same maximiser: gamma_sp/gamma_c is constant
        gamma_sp, _ = _spinodal(n, S, q)
    return NonalignedCriticalPoints(
        n, S, q, conv,
        float(conv.gamma_from_canonical(gamma_c)), float(conv.gamma_from_canonical(gamma_sp)),
        float(conv.gamma_from_canonical(gamma_bound)), u, a_eff, c_eff,
        float(conv.gamma_from_canonical(gamma_c_naive)),
    )
