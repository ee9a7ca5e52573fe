"""Many features: aligned modes, their metastable states and the phase diagram
(docs/theory.md, many modes).

For aligned data (``Sigma_xx`` and ``Sigma_yx`` share right singular vectors) each
singular value ``c_k`` of ``Sigma_yx`` is an independent scalar mode with input variance
``a_k``. A partially learned state is a local minimum only if no "routing" direction
(input ``k`` -> hidden channel ``j`` -> output ``k``) descends: the state with ``j``
learned and ``k`` not is a saddle iff ``c_k^2 - c_j^2 > c_j (a_k - a_j) b_j^n``. For
isotropic inputs this leaves the ``M + 1`` "top-m learned" states, not ``2^M``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from .._validation import as_float_array, check_n_layers, check_nonnegative, check_positive
from ..results import Result, register, timed
from ._convention import Convention, resolve_convention
from ._critical import critical_points
from ._landscape import landscape

__all__ = ["ModeState", "ModeTransition", "Modes", "modes", "PhaseDiagram", "phase_diagram"]

_MAX_ENUMERATED = 16  # learnable modes up to which non-isotropic states are enumerated


@register
@dataclass(frozen=True)
class ModeState:
    """A local minimum: the set of learned modes (indices into the input spectrum)."""

    m: int
    learned: tuple
    energy: float
    is_global: bool

    def to_dict(self):
        return {"m": self.m, "learned": list(self.learned), "energy": self.energy, "is_global": self.is_global}


@register
@dataclass(frozen=True)
class ModeTransition:
    """Index-1 transition state between two minima that differ by one learned ``mode``."""

    lower: int          # index into Modes.states of the state without the mode
    upper: int          # index of the state with it
    mode: int
    b_saddle: float
    barrier_fwd: float  # lower -> upper (learning the mode)
    barrier_bwd: float  # upper -> lower (forgetting it)
    curvature_saddle: float
    lambda_minus: float  # negative Hessian eigenvalue, curvature_saddle / n_layers

    def to_dict(self):
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@register
@dataclass(frozen=True, eq=False, repr=False)
class Modes(Result):
    """Per-mode critical couplings and, at a given ``gamma``, the metastable states.

    ``spectrum`` holds the signals ``c_k`` in input order, ``a`` the input variances.
    ``states`` are the local minima ordered by the number of learned modes, then by
    energy; ``transitions`` the index-1 saddles between states one mode apart;
    ``global_index`` points into ``states``. Energies are measured from the all-trivial
    state in the convention's units.
    """

    n_layers: int
    spectrum: np.ndarray
    a: np.ndarray
    gamma: float | None
    convention: Convention
    gamma_c: np.ndarray
    gamma_sp: np.ndarray
    learnable: np.ndarray | None
    states: tuple | None
    transitions: tuple | None
    global_index: int | None

    _config_fields = ("n_layers", "spectrum", "a", "gamma", "convention")
    _dims = {k: ("mode",) for k in ("spectrum", "a", "gamma_c", "gamma_sp", "learnable")}
    _units = {"spectrum": "cross_covariance", "a": "input_variance", "gamma": "coupling[convention]",
              "gamma_c": "coupling[convention]", "gamma_sp": "coupling[convention]"}

    @property
    def n_metastable(self) -> int | None:
        return None if self.states is None else len(self.states) - 1

    def __repr__(self):
        s = (f"Modes(n_layers={self.n_layers}, convention={self.convention.name!r}, "
             f"spectrum={np.array2string(self.spectrum, precision=6)}, "
             f"gamma_c={np.array2string(self.gamma_c, precision=6)}, "
             f"gamma_sp={np.array2string(self.gamma_sp, precision=6)}")
        if self.states is not None:
            s += f", gamma={self.gamma:.6g}, n_states={len(self.states)}, global_index={self.global_index}"
        return s + ")"


def _spectrum_inputs(spectrum, a):
    c = as_float_array(spectrum, "spectrum")
    if c.ndim != 1 or c.size == 0:
        raise ValueError(f"spectrum must be a non-empty 1-D sequence of feature strengths, got shape {c.shape}")
    a_arr = check_positive(a, "a")
    if a_arr.ndim > 1 or (a_arr.ndim == 1 and a_arr.shape != c.shape):
        raise ValueError(f"a must be a scalar or have the spectrum's shape {c.shape}, got shape {a_arr.shape}")
    return c, np.broadcast_to(a_arr, c.shape).astype(np.float64)


@timed
def modes(n_layers, spectrum, gamma=None, a=1.0, *, convention="canonical") -> Modes:
    """Per-mode transitions of aligned data and the metastable states at ``gamma``.

    Parameters
    ----------
    n_layers : int >= 2
    spectrum : sequence of float
        Singular values ``c_k`` of the cross-covariance (the paper's ``eta``).
    gamma : float, optional
        Coupling (convention units). Without it only the per-mode ``gamma_c`` and
        ``gamma_sp`` are computed.
    a : float or sequence
        Input variances ``a_k`` along the modes' input directions (1 for whitened data).
    """
    n = check_n_layers(n_layers)
    conv = resolve_convention(convention)
    c, a_arr = _spectrum_inputs(spectrum, a)
    cp = critical_points(n, c, a_arr, convention=conv)
    gamma_c, gamma_sp = np.atleast_1d(cp.gamma_c), np.atleast_1d(cp.gamma_sp)
    if gamma is None:
        return Modes(n, c, a_arr, None, conv, gamma_c, gamma_sp, None, None, None, None)
    g = float(check_nonnegative(gamma, "gamma"))
    L = landscape(n, c, g, a_arr, convention=conv)
    learnable = ~np.ma.getmaskarray(L.b_min)
    u_min = np.ma.filled(L.U_min, np.nan)
    b_min = np.ma.filled(L.b_min, np.nan)
    c_abs = np.abs(c)

    def is_minimum(S):
        Sset = set(S)
        if n == 2 and any(learnable[k] and k not in Sset for k in range(c.size)):
            return False  # for n = 2 an unlearned learnable mode is a saddle direction
        for j in S:
            for k in range(c.size):
                if k in Sset:
                    continue
                if c_abs[k] ** 2 - c_abs[j] ** 2 > c_abs[j] * (a_arr[k] - a_arr[j]) * b_min[j] ** n:
                    return False
        return True

    idx = [int(k) for k in np.argsort(-c_abs, kind="stable") if learnable[k]]
    isotropic = np.all(a_arr == a_arr[0]) and len(set(c_abs[idx])) == len(idx)
    if isotropic:
        candidates = [tuple(idx[:m]) for m in range(len(idx) + 1)]
    elif len(idx) <= _MAX_ENUMERATED:
        candidates = [S for m in range(len(idx) + 1) for S in itertools.combinations(idx, m)]
    else:
        raise ValueError(f"non-isotropic a (or tied strengths) with more than {_MAX_ENUMERATED} learnable "
                         f"modes: the local minima are not enumerated; got {len(idx)}")
    minima = [S for S in candidates if is_minimum(S)]
    energies = [float(np.sum(u_min[list(S)])) if S else 0.0 for S in minima]
    order = sorted(range(len(minima)), key=lambda i: (len(minima[i]), energies[i]))
    minima = [tuple(int(k) for k in sorted(minima[i], key=lambda k: (-c_abs[k], k))) for i in order]
    energies = [energies[i] for i in order]
    g_idx = int(np.argmin(energies))
    states = tuple(ModeState(len(S), S, e, i == g_idx) for i, (S, e) in enumerate(zip(minima, energies)))
    position = {frozenset(S): i for i, S in enumerate(minima)}
    b_s = np.ma.filled(L.b_saddle, np.nan)
    bf, bb = np.ma.filled(L.barrier_fwd, np.nan), np.ma.filled(L.barrier_bwd, np.nan)
    cs = np.ma.filled(L.curvature_saddle, np.nan)
    transitions = []
    for i, S in enumerate(minima):
        for k in idx:
            j = position.get(frozenset(S) | {k})
            if k in S or j is None or not np.isfinite(b_s[k]):
                continue
            transitions.append(ModeTransition(i, j, int(k), float(b_s[k]), float(bf[k]), float(bb[k]),
                                              float(cs[k]), float(cs[k] / n)))
    return Modes(n, c, a_arr, g, conv, gamma_c, gamma_sp, learnable, states, tuple(transitions), g_idx)


@register
@dataclass(frozen=True, eq=False, repr=False)
class PhaseDiagram(Result):
    """Which top-m states exist at each coupling, which is global, and the quasi-static sweeps.

    Modes are sorted by strength (``spectrum`` descending). Column ``m`` of ``exists``
    and ``energies`` is the state with the ``m`` strongest modes learned.
    ``m_increasing`` is the state a quasi-static sweep of increasing coupling holds
    (from fully learned, a mode is lost at its spinodal); ``m_decreasing`` the state a
    decreasing sweep from the trivial state holds (for ``n_layers >= 3`` it never leaves
    ``m = 0``: the trivial state is stable at every ``gamma > 0``).
    """

    n_layers: int
    spectrum: np.ndarray
    a: float
    gammas: np.ndarray
    convention: Convention
    gamma_c: np.ndarray
    gamma_sp: np.ndarray
    exists: np.ndarray
    energies: np.ma.MaskedArray
    global_m: np.ndarray
    m_increasing: np.ndarray
    m_decreasing: np.ndarray

    _config_fields = ("n_layers", "spectrum", "a", "gammas", "convention")
    _dims = {"spectrum": ("mode",), "gamma_c": ("mode",), "gamma_sp": ("mode",), "gammas": ("gamma",),
             "exists": ("gamma", "state"), "energies": ("gamma", "state"), "global_m": ("gamma",),
             "m_increasing": ("gamma",), "m_decreasing": ("gamma",)}
    _coords = {"gamma": "gammas", "mode": "spectrum"}
    _units = {"spectrum": "cross_covariance", "gammas": "coupling[convention]", "gamma_c": "coupling[convention]",
              "gamma_sp": "coupling[convention]", "energies": "energy[convention]", "global_m": "modes",
              "m_increasing": "modes", "m_decreasing": "modes"}

    def __repr__(self):
        return (f"PhaseDiagram(n_layers={self.n_layers}, convention={self.convention.name!r}, "
                f"spectrum={np.array2string(self.spectrum, precision=6)}, n_gammas={self.gammas.size}, "
                f"gamma range=[{self.gammas.min():.6g}, {self.gammas.max():.6g}])")


@timed
def phase_diagram(n_layers, spectrum, gammas, a=1.0, *, convention="canonical") -> PhaseDiagram:
    """For each coupling in ``gammas``: which top-m states exist and which is global.

    Requires isotropic inputs (scalar ``a``), where the local minima are exactly the
    top-m states. Vectorised over ``gammas``.

    Parameters
    ----------
    n_layers : int >= 2
        Number of weight matrices.
    spectrum : sequence of float
        Feature strengths ``c_k`` (the paper's ``eta_k``).
    gammas : 1-D array, >= 0
        Couplings (units of ``convention``).
    a : float > 0
        Input variance of every mode.
    convention : {"canonical", "paper"} or Convention
        Units of ``gammas``.

    Returns
    -------
    PhaseDiagram
        Per coupling: which top-m states exist, which is global, and the quasi-static
        increasing and decreasing sweeps.
    """
    n = check_n_layers(n_layers)
    conv = resolve_convention(convention)
    a_val = check_positive(a, "a")
    if a_val.ndim != 0:
        raise ValueError("a must be a scalar for phase_diagram (isotropic inputs); use modes() for per-mode a")
    c, _ = _spectrum_inputs(spectrum, a_val)
    c = np.sort(np.abs(c))[::-1]
    g = check_nonnegative(gammas, "gammas")
    if g.ndim != 1 or g.size == 0:
        raise ValueError(f"gammas must be a non-empty 1-D array, got shape {g.shape}")
    cp = critical_points(n, c, float(a_val), convention=conv)
    L = landscape(n, c[None, :], g[:, None], float(a_val), convention=conv)
    learnable = ~np.ma.getmaskarray(L.b_min)          # (n_gamma, n_modes)
    u_min = np.ma.filled(L.U_min, 0.0)
    n_learnable = learnable.sum(axis=1)               # M(gamma): modes sorted, so top-M learnable
    n_modes = c.size
    m_idx = np.arange(n_modes + 1)
    cum = np.concatenate([np.zeros((g.size, 1)), np.cumsum(u_min, axis=1)], axis=1)
    if n == 2:
        exists = m_idx[None, :] == n_learnable[:, None]
    else:
        exists = m_idx[None, :] <= n_learnable[:, None]
    energies = np.ma.MaskedArray(np.where(exists, cum, np.nan), mask=~exists)
    global_m = np.asarray(np.ma.argmin(energies, axis=1), dtype=int)
    m_dec = n_learnable.copy() if n == 2 else np.zeros(g.size, dtype=int)
    return PhaseDiagram(n, c, float(a_val), g, conv, np.atleast_1d(cp.gamma_c), np.atleast_1d(cp.gamma_sp),
                        exists, energies, global_m, n_learnable.astype(int), m_dec)
