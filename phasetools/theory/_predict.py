"""Predicted escape and plateau times of trained linear networks, from the data and the settings alone.

Two closed-form/quadrature predictions, no fitted parameter:

* :func:`predict_sgd_escape` -- (a) backward (or downhill) escape of one learned mode under
  minibatch SGD noise drawn **with replacement**. The mode's balanced magnitude ``b`` (every
  layer carries ``b`` along the mode, ``P = b^n``) obeys the exact 1-D Ito diffusion::

      db = -F(b) dt + sqrt(2 eps D(b)) dW,   F = L'(b) / n,   eps = lr f / B,
      L(b) = kappa (s - 2 c b^n + a b^(2n)) + (weight_decay / 2) n b^2,
      D(b) = 2 kappa^2 K(b^n) b^(2n-2),   K(P) = Var[(y - P x) x]

  in the Langevin time ``t = lr * steps`` of the training run; the per-sample gradients of
  every layer along the mode are equal, so the noise acts along the ray and the reduction is
  exact for one isolated mode. ``K`` comes from the data's own fourth moments
  (``moments="data"``: ``E[y^2 x^2] - 2 P E[y x^3] + P^2 E[x^4] - (c - P a)^2``) or from the
  Gaussian (Isserlis) closed form ``a (s - 2 P c + P^2 a) + (c - P a)^2`` (``"gaussian"``).
  ``tau`` is the exact mean first-passage time of that diffusion (quadrature), valid at any
  noise level.
* :func:`plateau_time` -- (d) the deterministic time a mode needs to grow from a residual
  seed (per-layer values ``eps_k``) to a threshold under full-batch gradient descent: the
  deep-linear saddle plateau, integrated exactly for the scalar chain (unbalanced seeds
  included).

The modes of a finite draw are :func:`data_mode_noise`'s: the singular directions of the
sample cross-covariance ``Y^T X / N`` (``u_k``, ``v_k``), with ``x_k = X v_k``, ``y_k = Y u_k``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._validation import check_choice, check_int, check_scalar
from ..results import Result, register
from ._convention import Convention, resolve_convention
from ._landscape import stationary_points
from ._sgd import effective_temperature, without_replacement_factor

__all__ = ["log_first_passage_time", "ModeNoise", "mode_noise", "data_mode_noise", "CrossModeNoise", "data_cross_noise", "EscapePrediction", "predict_sgd_escape",
           "PlateauPrediction", "plateau_time", "predict_injected_escape", "MOMENTS", "PREDICTED_SAMPLINGS"]

#: Per-sample noise models: the data's own fourth moments, or the Gaussian (Isserlis) ones.
MOMENTS = ("data", "gaussian")
#: Samplers with a prediction: with replacement (theory (a)) and full batch (no noise: infinite).
PREDICTED_SAMPLINGS = ("replacement", "full")

ASSUMPTIONS_A = (
    "one mode escapes along its balanced ray (P = b^n, every layer b): exact for an isolated mode; another "
    "learned mode (coupling=) is held at its learned value and enters only through the Ito drift of the cross-mode "
    "noise on the layer singular values (second order)",
    "minibatches drawn with replacement: independent steps, noise covariance (lr / B) Sigma per unit "
    "Langevin time (diffusion limit, small lr)",
    "Sigma from the per-sample gradients of the training set (moments='data') or the Gaussian model of its "
    "second moments (moments='gaussian')",
    "escape = first passage of P below the test-MSE midpoint between the learned and the lost state",
)
ASSUMPTIONS_D = (
    "full-batch gradient descent taken as its gradient flow (t = lr * steps)",
    "the seed lies along the mode's singular directions in every layer (scalar chain per layer)",
    "the mode's growth is decoupled from the other modes (aligned modes)",
)


@register
@dataclass(frozen=True)
class ModeNoise:
    """The moments of one scalar mode that fix its per-sample gradient noise.

    Parameters
    ----------
    a, c, output_var : float
        ``E[x^2]``, ``E[xy]`` (>= 0) and ``E[y^2]`` of the mode's projections ``x = v.x``, ``y = u.y``.
    m_xxxx, m_yxxx, m_yyxx : float
        ``E[x^4]``, ``E[y x^3]``, ``E[y^2 x^2]``.
    moments : {"data", "gaussian"}
        Where the fourth moments come from (the samples, or Isserlis' theorem).
    """

    a: float
    c: float
    output_var: float
    m_xxxx: float
    m_yxxx: float
    m_yyxx: float
    moments: str = "data"

    def __post_init__(self):
        check_choice(self.moments, "moments", MOMENTS)
        check_scalar(self.a, "a", positive=True)

    def kernel(self, P):
        """``K(P) = Var[(y - P x) x]``: the per-sample variance of the mode's ``r x``.

        Parameters
        ----------
        P : float or array
            The mode's end-to-end value.

        Returns
        -------
        float or array
            ``E[y^2 x^2] - 2 P E[y x^3] + P^2 E[x^4] - (c - P a)^2``.
        """
        P = np.asarray(P, dtype=float)
        return (self.m_yyxx - 2.0 * P * self.m_yxxx + P * P * self.m_xxxx - (self.c - P * self.a) ** 2)

    def gaussian(self) -> "ModeNoise":
        """The same second moments with Isserlis' fourth moments.

        Returns
        -------
        ModeNoise
        """
        return mode_noise(self.a, self.c, self.output_var)


def mode_noise(a, c, output_var) -> ModeNoise:
    """The Gaussian (Isserlis) noise of a mode: ``E[x^4] = 3a^2``, ``E[yx^3] = 3ac``, ``E[y^2x^2] = sa + 2c^2``.

    Parameters
    ----------
    a : float > 0
        ``E[x^2]``.
    c : float
        ``E[xy]`` (its sign is dropped).
    output_var : float >= c^2 / a
        ``E[y^2]``.

    Returns
    -------
    ModeNoise
        ``kernel(P) = a (s - 2Pc + P^2 a) + (c - Pa)^2``.
    """
    a = check_scalar(a, "a", positive=True)
    c = abs(float(c))
    s = check_scalar(output_var, "output_var")
    if s < c * c / a * (1 - 1e-12):
        raise ValueError(f"output_var must be >= c^2/a = {c * c / a:.6g} (Cauchy-Schwarz), got {s!r}")
    return ModeNoise(a, c, s, 3 * a * a, 3 * a * c, s * a + 2 * c * c, "gaussian")


def data_mode_noise(X, Y, *, moments="data") -> tuple:
    """The modes of a finite draw and their noise: one :class:`ModeNoise` per singular value of ``Y^T X / N``.

    Parameters
    ----------
    X, Y : arrays (N, d_in), (N, d_out)
        The training samples in rows.
    moments : {"data", "gaussian"}
        Fourth moments from the samples, or Isserlis' from their second moments.

    Returns
    -------
    tuple of ModeNoise
        Strongest mode first (``c`` = the singular values of ``Y^T X / N``).
    """
    check_choice(moments, "moments", MOMENTS)
    X = np.asarray(X, dtype=float)
    Y = np.asarray(Y, dtype=float)
    if X.ndim != 2 or Y.ndim != 2 or X.shape[0] != Y.shape[0] or X.shape[0] < 2:
        raise ValueError("X and Y must be 2-D arrays with the same number (>= 2) of rows")
    N = X.shape[0]
    U, S, Vt = np.linalg.svd(Y.T @ X / N, full_matrices=False)
    out = []
    for k in range(S.size):
        x, y = X @ Vt[k], Y @ U[:, k]
        a, c, s = float(np.mean(x * x)), float(np.mean(x * y)), float(np.mean(y * y))
        if moments == "gaussian":
            out.append(mode_noise(a, c, s))
        else:
            out.append(ModeNoise(a, c, s, float(np.mean(x ** 4)), float(np.mean(y * x ** 3)),
                                 float(np.mean(y * y * x * x)), "data"))
    return tuple(out)


def _z_moments(z, moments):
    """Second moments ``S`` and fourth moments ``T4`` of the columns of ``z`` (data or Isserlis)."""
    N = z.shape[0]
    S = z.T @ z / N
    if moments == "gaussian":
        T4 = (np.einsum("ab,cd->abcd", S, S) + np.einsum("ac,bd->abcd", S, S) + np.einsum("ad,bc->abcd", S, S))
    else:
        T4 = np.einsum("na,nb,nc,nd->abcd", z, z, z, z, optimize=True) / N
    return S, T4


@register
@dataclass(frozen=True, eq=False)
class CrossModeNoise:
    """The moments of two modes (the escaping one ``s`` and another ``o``) that fix their cross noise.

    ``z = (x_s, x_o, y_s, y_o)`` are the samples' projections on the two modes' singular
    directions. The cross-mode entries of every layer (row mode ``s``, column mode ``o`` and
    the reverse) carry per-sample gradients ``r_s x_o`` and ``r_o x_s`` (``r_i = y_i - P_i x_i``)
    whose variances ``V_so``, ``V_os`` and covariance ``C`` give the escaping singular value an
    Ito drift (level repulsion from the other mode; see :func:`predict_sgd_escape`).

    Parameters
    ----------
    S : array (4, 4)
        ``E[z z^T]``.
    T4 : array (4, 4, 4, 4)
        ``E[z_a z_b z_c z_d]`` (the samples', or Isserlis' from ``S``).
    moments : {"data", "gaussian"}
    """

    S: np.ndarray
    T4: np.ndarray
    moments: str = "data"

    def __eq__(self, other):
        return (type(other) is type(self) and self.moments == other.moments and np.array_equal(self.S, other.S)
                and np.array_equal(self.T4, other.T4))

    __hash__ = object.__hash__

    @property
    def a_other(self) -> float:
        return float(self.S[1, 1])

    @property
    def c_other(self) -> float:
        return float(self.S[3, 1])

    def _pair(self, P_s, P_o, i, j):
        """``(E[(r_i x_j)^2], E[r_i x_j], r)`` (``i, j`` in {0 = s, 1 = o}) at scalars ``P_s``, ``P_o``."""
        r = np.zeros(4)
        r[2 + i] = 1.0
        r[i] = -(P_s if i == 0 else P_o)
        e = np.zeros(4)
        e[j] = 1.0
        second = np.einsum("a,b,c,d,abcd->", r, e, r, e, self.T4)
        mean = r @ self.S @ e
        return second, mean, r

    def _scalar_variances(self, P_s, P_o):
        m2_so, mu_so, r_s = self._pair(P_s, P_o, 0, 1)
        m2_os, mu_os, r_o = self._pair(P_s, P_o, 1, 0)
        e_s, e_o = np.eye(4)[0], np.eye(4)[1]
        cross = np.einsum("a,b,c,d,abcd->", r_s, e_o, r_o, e_s, self.T4)
        return np.array([m2_so - mu_so ** 2, m2_os - mu_os ** 2, cross - mu_so * mu_os])

    def variances(self, P_s, P_o):
        """``(V_so, V_os, C)``: ``Var[r_s x_o]``, ``Var[r_o x_s]`` and ``Cov[r_s x_o, r_o x_s]``.

        Parameters
        ----------
        P_s : float or array
            The escaping mode's end-to-end value.
        P_o : float
            The other mode's.

        Returns
        -------
        tuple of arrays
        """
        # each is a polynomial of degree <= 2 in P_s: exact from three evaluations
        f_m, f_0, f_p = (self._scalar_variances(x, float(P_o)) for x in (-1.0, 0.0, 1.0))
        c0, c1, c2 = f_0, 0.5 * (f_p - f_m), 0.5 * (f_p + f_m) - f_0
        P = np.asarray(P_s, dtype=float)[..., None]
        out = c0 + c1 * P + c2 * P * P
        return out[..., 0], out[..., 1], out[..., 2]


def data_cross_noise(X, Y, escaping, other, *, moments="data") -> CrossModeNoise:
    """:class:`CrossModeNoise` of two modes of a finite draw (singular directions of ``Y^T X / N``).

    Parameters
    ----------
    X, Y : arrays (N, d_in), (N, d_out)
        The training samples.
    escaping, other : int
        Mode indices (0 = strongest).
    moments : {"data", "gaussian"}
        The samples' fourth moments, or Isserlis' from their second moments.

    Returns
    -------
    CrossModeNoise
    """
    check_choice(moments, "moments", MOMENTS)
    X = np.asarray(X, dtype=float)
    Y = np.asarray(Y, dtype=float)
    U, S, Vt = np.linalg.svd(Y.T @ X / X.shape[0], full_matrices=False)
    s, o = check_int(escaping, "escaping", 0), check_int(other, "other", 0)
    if s == o or max(s, o) >= S.size:
        raise ValueError(f"escaping and other must be two different modes < {S.size}, got {escaping}, {other}")
    z = np.stack([X @ Vt[s], X @ Vt[o], Y @ U[:, s], Y @ U[:, o]], axis=1)
    S2, T4 = _z_moments(z, moments)
    return CrossModeNoise(S2, T4, moments)


@register
@dataclass(frozen=True, eq=False, repr=False)
class EscapePrediction(Result):
    """A predicted escape time, in Langevin time, SGD steps and epochs, with its assumptions.

    Parameters
    ----------
    regime : str
        ``"sgd_replacement"`` (prediction (a)), ``"sgd_shuffle"`` (prediction (b), a reduced
        simulation: :func:`phasetools.training.predict_shuffled_escape`), ``"full_batch"`` (no
        noise: infinite) or ``"injected_upward"`` (prediction (c)).
    n_layers : int
    weight_decay, lr : float
    batch_size, n_samples, steps_per_epoch : int
    sampling : str
        The sampler the prediction is for.
    moments : str
        The noise model (``"data"`` or ``"gaussian"``).
    coupled : bool
        Whether another learned mode's cross noise (level repulsion) is included.
    convention : Convention
    barrier : float
        ``L(b_saddle) - L(b_start)`` of the reduced potential (convention energy units).
    b_start, b_saddle, b_target : float
        Balanced magnitudes of the start, the saddle and the stop.
    tau_time, tau_steps, tau_epochs : float
        The mean first-passage time (``tau_time = lr * tau_steps``).
    temperature : float
        The isotropic ``T_eff = lr f tr(Sigma) / (2 B N_theta)``.
    tau_isotropic_time, tau_isotropic_epochs : float
        The 1-D escape time of the same potential under isotropic noise at ``temperature``
        (what "SGD is a temperature" predicts), for contrast; for (c) the width-1 ray without
        the entropic term.
    assumptions : str
        What the prediction assumes, one item per line.
    """

    regime: str
    n_layers: int
    weight_decay: float
    lr: float
    batch_size: int
    n_samples: int
    steps_per_epoch: int
    sampling: str
    moments: str
    coupled: bool
    convention: Convention
    barrier: float
    b_start: float
    b_saddle: float
    b_target: float
    tau_time: float
    tau_steps: float
    tau_epochs: float
    temperature: float
    tau_isotropic_time: float
    tau_isotropic_epochs: float
    assumptions: str

    _config_fields = ("regime", "n_layers", "weight_decay", "lr", "batch_size", "n_samples", "sampling", "moments",
                      "coupled", "convention")
    _units = {"tau_time": "time[convention]", "tau_steps": "steps", "tau_epochs": "epochs",
              "tau_isotropic_time": "time[convention]", "tau_isotropic_epochs": "epochs",
              "barrier": "loss[convention]", "temperature": "loss[convention]"}

    def __repr__(self):
        return (f"EscapePrediction({self.regime}, moments={self.moments!r}, lr={self.lr:g}, B={self.batch_size}: "
                f"tau = {self.tau_epochs:.4g} epochs = {self.tau_steps:.4g} steps = {self.tau_time:.4g} time)")


class _Reduced:
    """The reduced 1-D mode in training units: ``L(b)``, ``F = L'/n``, ``D(b)``."""

    def __init__(self, n, noise, gamma, kappa, coupling=None, b_other=None):
        self.n, self.noise, self.gamma, self.kappa = n, noise, gamma, kappa
        self.coupling, self.b_other = coupling, b_other

    def repulsion(self, b):
        """Ito drift of the layer singular values per unit ``eps`` from the cross-mode entries
        (row mode s / column mode o and the reverse), averaged over the ``n`` layers:
        ``(1/n) sum_k [b (V_so,k + V_os,k) + 2 b_o C_k] / (2 (b^2 - b_o^2))``."""
        if self.coupling is None:
            return np.zeros_like(b)
        n, bo, k2 = self.n, self.b_other, 4 * self.kappa ** 2
        v_so, v_os, cov = self.coupling.variances(b ** n, bo ** n)
        total = np.zeros_like(b)
        for k in range(1, n + 1):
            V_so = k2 * b ** (2 * (n - k)) * bo ** (2 * (k - 1)) * v_so
            V_os = k2 * bo ** (2 * (n - k)) * b ** (2 * (k - 1)) * v_os
            C = k2 * (b * bo) ** (n - 1) * cov
            total = total + (b * (V_so + V_os) + 2 * bo * C) / (2 * (b * b - bo * bo))
        return total / n

    def energy(self, b):
        n, m = self.n, self.noise
        P = b ** n
        return self.kappa * (m.output_var - 2 * m.c * P + m.a * P * P + self.gamma * n * b * b)

    def force(self, b):
        n, m = self.n, self.noise
        return self.kappa * (-2 * m.c * b ** (n - 1) + 2 * m.a * b ** (2 * n - 1) + 2 * self.gamma * b)

    def diffusion(self, b):
        n = self.n
        return 2 * self.kappa ** 2 * np.maximum(self.noise.kernel(b ** n), 0.0) * b ** (2 * n - 2)


def log_first_passage_time(force, diffusion, b_start, b_target, *, n_grid=20001) -> float:
    """``ln`` of the mean first-passage time of a 1-D diffusion from ``b_start`` down to ``b_target``.

    The diffusion is ``db = -F(b) dt + sqrt(2 D(b)) dW`` with a reflecting wall far above the
    start (placed where the weight ``e^-Phi / D`` of the stationary density has dropped by
    ``e^-50``); ``tau = int_bt^b0 e^Phi(y) int_y^far e^-Phi(z) / D(z) dz dy`` with
    ``Phi(b) = int F / D db``, by Simpson quadrature on a grid uniform in ``ln b`` on both sides
    of the start (the start on a node). Computed in logarithms, so it never overflows.

    Parameters
    ----------
    force : callable
        ``F(b)`` on an array of ``b`` (the downhill drift, positive where ``b`` falls).
    diffusion : callable
        ``D(b) > 0`` on an array of ``b`` (the noise strength included).
    b_start : float > b_target
        Start of the paths.
    b_target : float > 0
        The absorbing level below the start.
    n_grid : int, default 20001
        Quadrature grid points.

    Returns
    -------
    float
        ``ln tau`` (time units of ``F`` and ``D``).
    """
    from scipy.integrate import cumulative_simpson, simpson

    b0, bt = b_start, b_target
    far = 2.0 * b0
    lo, mid = np.log(bt), np.log(b0)
    while True:
        n1 = int(n_grid * (mid - lo) / (np.log(far) - lo)) // 2 * 2 + 1
        u = np.concatenate([np.linspace(lo, mid, n1), np.linspace(mid, np.log(far), n_grid - n1 + 1)[1:]])
        b = np.exp(u)
        D = diffusion(b)
        phi = cumulative_simpson(force(b) / D * b, x=u, initial=0.0)   # Phi(b) = int F/D db
        log_w = -phi - np.log(D) + u                                    # ln(e^{-Phi}/D db/du)
        if log_w[-1] < np.max(log_w) - 50 or far > 1e3 * b0:
            break
        far *= 2.0
    m = np.max(log_w)
    rev = cumulative_simpson(np.exp(log_w - m)[::-1], x=-u[::-1], initial=0.0)[::-1]
    with np.errstate(divide="ignore"):
        log_outer = phi[:n1] + m + np.log(np.maximum(rev[:n1], 0.0)) + u[:n1]
    top = np.max(log_outer)
    return float(top + np.log(simpson(np.exp(log_outer - top), x=u[:n1])))


def _log_mfpt(red, eps, b0, bt, n_grid=20001):
    """``ln`` of the mean first-passage time of ``db = -F dt + sqrt(2 eps D) dW`` from ``b0`` down to ``bt``
    (reflecting far above ``b0``): :func:`log_first_passage_time` of the reduced mode."""
    return log_first_passage_time(lambda b: red.force(b) - eps * red.repulsion(b), lambda b: eps * red.diffusion(b),
                                  b0, bt, n_grid=n_grid)


def _prediction(tau, tau_isotropic, assumptions, *, lr, steps_per_epoch, **fields) -> EscapePrediction:
    """An :class:`EscapePrediction` of Langevin times ``tau`` and ``tau_isotropic``, also in steps
    (``/ lr``) and epochs (``/ (lr steps_per_epoch)``); ``fields`` are the other fields."""
    per_epoch = lr * steps_per_epoch
    return EscapePrediction(lr=lr, steps_per_epoch=steps_per_epoch, tau_time=tau, tau_steps=tau / lr,
                            tau_epochs=tau / per_epoch, tau_isotropic_time=tau_isotropic,
                            tau_isotropic_epochs=tau_isotropic / per_epoch, assumptions="\n".join(assumptions),
                            **fields)


def _target_b(n, noise, P_start, target):
    """The stop: ``P`` at the MSE midpoint between ``P_start`` and 0 (``target=None``), else ``target``."""
    if target is None:
        a, c = noise.a, noise.c
        half = 0.5 * (a * P_start ** 2 - 2 * c * P_start)
        P = (c - np.sqrt(c * c + a * half)) / a
    else:
        P = check_scalar(target, "target", positive=True)
        if P >= P_start:
            raise ValueError(f"target must be below the start's P = {P_start:.6g}, got {target!r}")
    return float(P) ** (1.0 / n)


def _isotropic_log_tau(red, T, b0, bt):
    """ln MFPT of the same 1-D potential under additive noise of temperature ``T`` on every weight
    (``D = T / n`` along the ray coordinate ``b``)."""
    class _Iso:
        def __init__(self, r):
            self.r = r

        def force(self, b):
            return self.r.force(b)

        def diffusion(self, b):
            return np.full_like(b, T / self.r.n)

        def repulsion(self, b):
            return np.zeros_like(b)

    return _log_mfpt(_Iso(red), 1.0, b0, bt)


def predict_sgd_escape(n_layers, noise, weight_decay, *, lr, batch_size, n_samples, sampling="replacement",
                       convention="paper", coupling=None, target=None, trace=None,
                       n_params=None) -> EscapePrediction:
    """Prediction (a): the mean time for a learned mode to be lost under minibatch SGD noise.

    Parameters
    ----------
    n_layers : int >= 2
        Weight matrices ``n``.
    noise : ModeNoise
        The escaping mode (from :func:`data_mode_noise` or :func:`mode_noise`).
    weight_decay : float >= 0
        The coupling in the units of ``convention`` (the SGD weight decay for ``"paper"``).
    lr : float > 0
        Learning rate.
    batch_size : int >= 1
        ``B``.
    n_samples : int >= batch_size
        ``N`` (sets ``steps_per_epoch = N // B``).
    sampling : {"replacement", "full"}
        ``"replacement"``: the diffusion above; ``"full"``: full batch, no noise (``tau = inf``).
        Random reshuffling has no 1-D diffusion limit at the step sizes where it escapes; its
        prediction (b) is :func:`phasetools.training.predict_shuffled_escape`, an exact reduced
        simulation (docs/predict.md).
    convention : {"paper", "canonical"} or Convention
        Units of ``weight_decay``, energies and time.
    coupling : CrossModeNoise, optional
        Another learned mode (:func:`data_cross_noise`), held at its learned value ``b_o``. The
        noise of the cross-mode entries of every layer gives the escaping layer singular value
        the Ito drift ``eps (1/n) sum_k [b (V_so,k + V_os,k) + 2 b_o C_k] / (2 (b^2 - b_o^2))``
        (second-order perturbation of a singular value; negative for ``b < b_o``: the stronger
        mode repels the weaker one towards zero). It is ``O(eps)`` like the diffusion, so it
        changes the prefactor of ``tau``, not its exponent.
    target : float > 0, optional
        The stop level of ``P`` (default: the MSE midpoint between the learned value and 0).
    trace, n_params : float, int, optional
        ``tr Sigma`` and ``N_theta`` of the whole network for the isotropic ``T_eff`` contrast
        (default: the escaping mode's own trace over its ``n`` ray weights).

    Returns
    -------
    EscapePrediction
    """
    n = check_int(n_layers, "n_layers", 2)
    if not isinstance(noise, ModeNoise):
        raise ValueError(f"noise must be a ModeNoise (data_mode_noise or mode_noise), got {type(noise).__name__}")
    check_choice(sampling, "sampling", PREDICTED_SAMPLINGS)
    lr = check_scalar(lr, "lr", positive=True)
    B = check_int(batch_size, "batch_size", 1)
    N = check_int(n_samples, "n_samples", B)
    conv = resolve_convention(convention)
    gamma = float(conv.gamma_to_canonical(check_scalar(weight_decay, "weight_decay")))
    cs, as_ = [noise.c], [noise.a]
    if coupling is not None:
        if not isinstance(coupling, CrossModeNoise):
            raise ValueError(f"coupling must be a CrossModeNoise (data_cross_noise), got {type(coupling).__name__}")
        cs.append(abs(coupling.c_other))
        as_.append(coupling.a_other)
    st = [np.atleast_1d(v) for v in stationary_points(n, np.array(cs), np.array(as_), gamma)]
    b_s, b_m, s_ok = float(st[0][0]), float(st[1][0]), bool(st[2][0])
    if not s_ok:
        raise ValueError(f"weight_decay = {weight_decay!r} leaves no metastable learned state with a saddle "
                         "(outside the mode's coexistence window): nothing to escape from")
    b_o = None
    if coupling is not None:
        b_o, o_ok = float(st[1][1]), bool(st[3][1])
        if not o_ok or b_o <= b_m:
            raise ValueError("coupling: the other mode must be learned and stronger than the escaping one at "
                             f"weight_decay = {weight_decay!r}")
    red = _Reduced(n, noise, gamma, conv.kappa, coupling, b_o)
    bt = _target_b(n, noise, b_m ** n, target)
    spe = N // B
    tr = float(n * 2 * red.diffusion(np.array(b_m))) if trace is None else check_scalar(trace, "trace")
    n_par = n if n_params is None else check_int(n_params, "n_params", 1)
    f = 1.0 if sampling == "replacement" else without_replacement_factor(B, N)
    T = effective_temperature(tr, n_par, lr, B) * f if sampling == "replacement" else 0.0
    with np.errstate(over="ignore"):
        if sampling == "full":
            tau, tau_iso = np.inf, np.inf
        else:
            tau = float(np.exp(_log_mfpt(red, lr / B, b_m, bt)))
            tau_iso = float(np.exp(_isotropic_log_tau(red, T, b_m, bt)))
    return _prediction(tau, tau_iso, ASSUMPTIONS_A, lr=lr, steps_per_epoch=spe,
                       regime="sgd_replacement" if sampling == "replacement" else "full_batch", n_layers=n,
                       weight_decay=float(weight_decay), batch_size=B, n_samples=N, sampling=sampling,
                       moments=noise.moments, coupled=coupling is not None, convention=conv,
                       barrier=float(red.energy(b_s) - red.energy(b_m)), b_start=b_m, b_saddle=b_s, b_target=bt,
                       temperature=T)


ASSUMPTIONS_C = (
    "injected isotropic noise of temperature T on every weight, full-batch gradient steps (no minibatch noise), "
    "diffusion limit t = lr * steps",
    "the escaping mode grows along its balanced ray b (P = b^n) while every orientation of the ray in the "
    "n_free hidden directions left free by the learned modes is equally likely: the radial coordinate sees the "
    "entropic force k T / b, k = (n - 1)(n_free - 1) (the dimension of the orbit of balanced states)",
    "escape = first passage of P above the test-MSE midpoint between the lost and the learned state",
)


def _log_mfpt_up(energy, T, n, k, bt, n_grid=40001):
    """ln MFPT of ``db = -(U'(b)/n) dt + (k T / (n b)) dt + sqrt(2 T / n) dW`` from a reflecting ``b = 0`` up to ``bt``:
    ``tau = (n / T) int_0^bt e^phi(y) int_0^y e^-phi(z) dz dy``, ``phi = U / T - k ln b``."""
    from scipy.integrate import cumulative_simpson, simpson

    y = np.linspace(0.0, bt, n_grid)[1:]
    phi = energy(y) / T - k * np.log(y)
    lo = np.min(phi)
    inner = cumulative_simpson(np.exp(-(phi - lo)), x=y, initial=0.0) + y[0] * np.exp(-(phi[0] - lo)) / (k + 1)
    log_f = phi - lo + np.log(np.maximum(inner, 1e-300))
    top = np.max(log_f)
    return float(np.log(n / T) + top + np.log(simpson(np.exp(log_f - top), x=y)))


def predict_injected_escape(n_layers, c, weight_decay, temperature, *, a=1.0, n_free=1, lr, n_samples=None,
                            target=None, convention="paper") -> EscapePrediction:
    """Prediction (c): upward escape of an unlearned mode (``P = 0`` -> learned) under injected noise.

    The exact mean first-passage time of the mode's radial coordinate ``b`` with the entropic
    term of the ``(n - 1)(n_free - 1)``-dimensional orbit of balanced states (see
    ``ASSUMPTIONS_C``); ``n_free = 1`` is the width-1 chain's ray (no entropic term), drawn as
    the contrast ``tau_isotropic_*``.

    Parameters
    ----------
    n_layers : int >= 2
    c : float > 0
        The mode's ``E[xy]``.
    weight_decay : float >= 0
        Coupling in the units of ``convention`` (below the mode's spinodal: the learned state exists).
    temperature : float > 0
        Injected temperature ``T`` (the trainer's ``temperature``; convention energy units).
    a : float > 0
        The mode's ``E[x^2]``.
    n_free : int >= 1
        Hidden directions free for the mode (``width`` minus the learned modes).
    lr : float > 0
        Learning rate (time -> steps).
    n_samples : int, optional
        ``N`` (recorded; full batch: one step per epoch).
    target : float > 0, optional
        The stop level of ``P`` (default: the MSE midpoint between 0 and the learned value).
    convention : {"paper", "canonical"} or Convention

    Returns
    -------
    EscapePrediction
        ``regime = "injected_upward"``, ``sampling = "full"``, ``temperature`` = ``T``.
    """
    n = check_int(n_layers, "n_layers", 2)
    c = check_scalar(c, "c", positive=True)
    a = check_scalar(a, "a", positive=True)
    T = check_scalar(temperature, "temperature", positive=True)
    lr = check_scalar(lr, "lr", positive=True)
    h = check_int(n_free, "n_free", 1)
    conv = resolve_convention(convention)
    gamma = float(conv.gamma_to_canonical(check_scalar(weight_decay, "weight_decay")))
    st = [np.atleast_1d(v) for v in stationary_points(n, np.array([c]), np.array([a]), gamma)]
    b_s, b_m, m_ok = float(st[0][0]), float(st[1][0]), bool(st[3][0])
    if not m_ok:
        raise ValueError(f"weight_decay = {weight_decay!r} is above the mode's spinodal: no learned state to escape to")
    noise = mode_noise(a, c, c * c / a)
    red = _Reduced(n, noise, gamma, conv.kappa)
    P_t = (float(check_scalar(target, "target", positive=True)) if target is not None
           else (c - np.sqrt(c * c + a * 0.5 * (a * b_m ** (2 * n) - 2 * c * b_m ** n))) / a)
    bt = P_t ** (1.0 / n)
    k = (n - 1) * (h - 1)
    with np.errstate(over="ignore"):
        tau = float(np.exp(_log_mfpt_up(red.energy, T, n, k, bt)))
        tau1 = float(np.exp(_log_mfpt_up(red.energy, T, n, 0, bt)))
    N = 1 if n_samples is None else check_int(n_samples, "n_samples", 1)
    barrier = float(red.energy(b_s) - red.energy(0.0)) if np.isfinite(b_s) else 0.0
    return _prediction(tau, tau1, ASSUMPTIONS_C, lr=lr, steps_per_epoch=1, regime="injected_upward", n_layers=n,
                       weight_decay=float(weight_decay), batch_size=N, n_samples=N, sampling="full",
                       moments="gaussian", coupled=False, convention=conv, barrier=barrier, b_start=0.0,
                       b_saddle=b_s, b_target=bt, temperature=T)


@register
@dataclass(frozen=True, eq=False, repr=False)
class PlateauPrediction(Result):
    """Prediction (d): the deterministic time for a mode to grow from a residual seed to a threshold.

    Parameters
    ----------
    n_layers : int
    c, a, weight_decay, lr : float
        The mode, the coupling (units of ``convention``) and the learning rate.
    seed : numpy.ndarray
        Per-layer seed values along the mode.
    threshold : float
        The level of ``P`` that ends the plateau.
    steps_per_epoch : int
    convention : Convention
    tau_time, tau_steps, tau_epochs : float
        The crossing time (``inf`` if the mode decays: no learned state, or a seed below the
        saddle's basin).
    assumptions : str
    """

    n_layers: int
    c: float
    a: float
    weight_decay: float
    lr: float
    seed: np.ndarray
    threshold: float
    steps_per_epoch: int
    convention: Convention
    tau_time: float
    tau_steps: float
    tau_epochs: float
    assumptions: str

    _config_fields = ("n_layers", "c", "a", "weight_decay", "lr", "seed", "threshold", "steps_per_epoch",
                      "convention")
    _dims = {"seed": ("layer",)}
    _units = {"tau_time": "time[convention]", "tau_steps": "steps", "tau_epochs": "epochs", "seed": "weight"}

    def __repr__(self):
        return f"PlateauPrediction(tau = {self.tau_epochs:.4g} epochs = {self.tau_time:.4g} time)"


def plateau_time(n_layers, c, weight_decay, seed, *, a=1.0, lr, threshold=1e-3, steps_per_epoch=1,
                 convention="paper") -> PlateauPrediction:
    """Prediction (d): gradient-flow time for ``P = prod_k w_k`` of one mode to grow from ``seed`` to ``threshold``.

    The scalar chain ``dw_k/dt = -kappa (2 a P - 2 c) P / w_k - wd w_k`` (training units,
    ``t = lr * steps``) integrated exactly from the per-layer seed.

    Parameters
    ----------
    n_layers : int >= 2
    c : float > 0
        The mode's ``E[xy]``.
    weight_decay : float >= 0
        Coupling in the units of ``convention``.
    seed : float or sequence of n_layers floats > 0
        Per-layer values along the mode (a float: the same in every layer).
    a : float > 0
        The mode's ``E[x^2]``.
    lr : float > 0
        Learning rate (converts time to steps).
    threshold : float > 0
        The ``P`` that ends the plateau.
    steps_per_epoch : int >= 1
        Steps per epoch (1 for full batch).
    convention : {"paper", "canonical"} or Convention

    Returns
    -------
    PlateauPrediction
    """
    from scipy.integrate import solve_ivp

    n = check_int(n_layers, "n_layers", 2)
    c = check_scalar(c, "c", positive=True)
    a = check_scalar(a, "a", positive=True)
    lr = check_scalar(lr, "lr", positive=True)
    thr = check_scalar(threshold, "threshold", positive=True)
    spe = check_int(steps_per_epoch, "steps_per_epoch", 1)
    conv = resolve_convention(convention)
    wd = 2 * conv.kappa * float(conv.gamma_to_canonical(check_scalar(weight_decay, "weight_decay")))
    w0 = np.broadcast_to(np.abs(np.asarray(seed, dtype=float)), (n,)).copy()
    if np.any(w0 <= 0) or not np.all(np.isfinite(w0)):
        raise ValueError("seed must be finite and > 0 in every layer")
    k = conv.kappa

    def rhs(_, lw):          # in ln w: d ln w_k / dt = -kappa (2aP - 2c) P / w_k^2 - wd
        S = np.sum(lw)
        return -k * (2 * a * np.exp(S) - 2 * c) * np.exp(S - 2 * lw) - wd

    def hit(_, lw):
        return np.sum(lw) - np.log(thr)

    log_p0 = float(np.sum(np.log(w0)))

    def lost(_, lw):         # decayed by e^-50: the seed is below the growth threshold, no plateau end
        return np.sum(lw) - (log_p0 - 50.0)

    hit.terminal, hit.direction = True, 1
    lost.terminal, lost.direction = True, -1
    tau = np.inf
    if log_p0 < np.log(thr):
        sol = solve_ivp(rhs, (0.0, 1e9), np.log(w0), events=(hit, lost), method="LSODA", rtol=1e-9, atol=1e-12)
        if sol.t_events[0].size:
            tau = float(sol.t_events[0][0])
    else:
        tau = 0.0
    return PlateauPrediction(n_layers=n, c=c, a=a, weight_decay=float(weight_decay), lr=lr, seed=w0, threshold=thr,
                             steps_per_epoch=spe, convention=conv, tau_time=tau, tau_steps=tau / lr,
                             tau_epochs=tau / (lr * spe), assumptions="\n".join(ASSUMPTIONS_D))
