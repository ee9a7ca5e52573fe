"""Stationary points, barriers, curvatures and weight-space Hessian spectra of one mode.

See docs/theory.md. The non-trivial stationary points are the
positive roots of ``h(b) = U'(b) / (2 n b)`` (compiled from the sympy model); for
``n >= 3`` they are bracketed by the spinodal, ``b_saddle in (0, b_sp)`` and
``b_min in (b_sp, (|c|/a)^(1/n))``, and found for all modes at once with a vectorised
bracketing root finder (Chandrupatla, ``scipy.optimize.elementwise.find_root``).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import gamma as _gamma_fn, lgamma, log, pi

import numpy as np
from scipy.optimize.elementwise import find_root

from .._validation import check_width
from ..results import Result, deep_equal, register, timed
from ._common import mode_inputs, present, scalar_or_array
from ._convention import Convention
from ._symbolic import compiled_closed_forms, compiled_potential

__all__ = ["HessianSpectrum", "Landscape", "landscape", "stationary_points", "sphere_area", "n_params_chain"]


def sphere_area(h: int) -> float:
    """Area ``|S^{h-1}| = 2 pi^{h/2} / Gamma(h/2)`` of the unit sphere in R^h (2 for h = 1)."""
    return 2.0 * pi ** (h / 2.0) / _gamma_fn(h / 2.0)


def _check_orbit_volume(n, h):
    """Refuse a width or depth whose orbit volume ``|S^(h-1)|^(n-1)`` overflows float64."""
    if h > 343:   # Gamma(h/2) overflows beyond
        raise ValueError(f"width must be <= 343 for a landscape (the orbit volume |S^(h-1)| of the Hessian "
                         f"spectra overflows float64 beyond), got {h}")
    log_area = log(2.0) + 0.5 * h * log(pi) - lgamma(0.5 * h)
    if (n - 1) * log_area > 709.0:
        raise ValueError(f"n_layers = {n} with width {h}: the orbit volume |S^(h-1)|^(n_layers-1) overflows "
                         f"float64; n_layers must be <= {int(709.0 / log_area) + 1} at this width")


def n_params_chain(n_layers: int, width: int) -> int:
    """Weights of a scalar-input, scalar-output network of hidden width ``width``."""
    return 2 * width + (n_layers - 2) * width**2


@register
@dataclass(frozen=True, eq=False)
class HessianSpectrum:
    """Weight-space Hessian spectrum as distinct eigenvalues with multiplicities.

    ``eigenvalues[..., j]`` has multiplicity ``multiplicities[j]`` and describes the
    directions named ``labels[j]``: ``"balanced"`` (along the balanced coordinate),
    ``"orbit"`` (zero modes of hidden-layer rotations, width > 1), ``"unbalancing"``
    (``4 gamma``), ``"bulk"`` (``2 gamma``: weights not on the active path),
    ``"isotropic"`` (the trivial point for ``n_layers >= 3``), ``"symmetric"`` /
    ``"antisymmetric"`` (the trivial point for ``n_layers = 2``).
    """

    eigenvalues: object
    multiplicities: tuple
    labels: tuple

    def __eq__(self, other):
        return type(other) is type(self) and deep_equal(self, other)

    __hash__ = object.__hash__

    @property
    def n_params(self) -> int:
        return int(sum(self.multiplicities))

    def full(self) -> np.ndarray:
        """All eigenvalues with repetition, sorted ascending (last axis)."""
        ev = np.asarray(self.eigenvalues, dtype=np.float64)
        rep = np.repeat(ev, self.multiplicities, axis=-1)
        return np.sort(rep, axis=-1)

    @property
    def index(self):
        """Number of negative eigenvalues (1 at an index-1 saddle)."""
        ev = np.asarray(self.eigenvalues, dtype=np.float64)
        return scalar_or_array(np.sum((ev < 0) * np.asarray(self.multiplicities), axis=-1))

    def to_dict(self) -> dict:
        return {"eigenvalues": self.eigenvalues, "multiplicities": list(self.multiplicities),
                "labels": list(self.labels)}


@register
@dataclass(frozen=True, eq=False, repr=False)
class Landscape(Result):
    """The reduced landscape of one scalar mode at coupling ``gamma``.

    Energies (``U_min``, barriers) are in the convention's units and measured from the
    trivial state; curvatures are second derivatives of the reduced potential ``U(b)``
    (convention units); Hessian spectra are of the full weight-space loss of a
    scalar-input, scalar-output network of hidden width ``width`` (``n_params`` weights).
    A state that does not exist at this coupling is ``None`` (scalar call) or a masked
    entry (array call).

    ``phase`` is one of ``"trivial"`` (only the trivial state exists),
    ``"learned_metastable"`` (``gamma_c < gamma < gamma_sp``), ``"coexistence"``,
    ``"trivial_metastable"`` (``gamma < gamma_c``, ``n >= 3``) and ``"learned"``
    (trivial state unstable: ``n = 2`` below ``|c|``, or ``gamma = 0``).
    ``global_state`` is ``"trivial"``, ``"learned"`` or ``"degenerate"``.
    """

    n_layers: int
    a: object
    c: object
    gamma: object
    width: int
    convention: Convention
    phase: object
    global_state: object
    b_saddle: object
    b_min: object
    lam_saddle: object
    lam_min: object
    U_min: object
    barrier_fwd: object
    barrier_bwd: object
    curvature_trivial: object
    curvature_saddle: object
    curvature_min: object
    n_params: int
    orbit_dim: int
    orbit_volume_saddle: object
    orbit_volume_min: object
    hessian_trivial: HessianSpectrum
    hessian_saddle: HessianSpectrum | None
    hessian_min: HessianSpectrum | None

    _config_fields = ("n_layers", "a", "c", "gamma", "width", "convention")
    _dims = {k: ("point",) for k in ("a", "c", "gamma", "phase", "global_state", "b_saddle", "b_min", "lam_saddle",
                                     "lam_min", "U_min", "barrier_fwd", "barrier_bwd", "curvature_trivial",
                                     "curvature_saddle", "curvature_min", "orbit_volume_saddle", "orbit_volume_min")}
    _units = {"a": "input_variance", "c": "cross_covariance", "gamma": "coupling[convention]",
              "b_saddle": "weight", "b_min": "weight", "lam_saddle": "end_to_end", "lam_min": "end_to_end",
              "U_min": "energy[convention]", "barrier_fwd": "energy[convention]", "barrier_bwd": "energy[convention]",
              "curvature_trivial": "energy[convention]/weight^2", "curvature_saddle": "energy[convention]/weight^2",
              "curvature_min": "energy[convention]/weight^2", "orbit_volume_saddle": "weight^orbit_dim",
              "orbit_volume_min": "weight^orbit_dim"}

    def __repr__(self):
        def fmt(v):
            if v is None:
                return "absent"
            if isinstance(v, str):
                return repr(v)
            return f"{v:.10g}" if np.ndim(v) == 0 else f"array(shape={np.shape(v)})"

        keys = ["phase", "global_state", "b_saddle", "b_min", "U_min", "barrier_fwd", "barrier_bwd",
                "curvature_trivial", "curvature_saddle", "curvature_min"]
        body = ", ".join(f"{k}={fmt(getattr(self, k))}" for k in keys)
        return (f"Landscape(n_layers={self.n_layers}, gamma={fmt(self.gamma)}, width={self.width}, "
                f"convention={self.convention.name!r}, {body})")


def stationary_points(n: int, c_abs, a, gamma):
    """Canonical non-trivial stationary points of ``U(b)`` (arrays; NaN where absent).

    Returns ``(b_saddle, b_min, saddle_exists, min_exists)``.
    """
    shape = np.broadcast(c_abs, a, gamma).shape
    c_abs, a, gamma = (np.broadcast_to(x, shape).astype(np.float64) for x in (c_abs, a, gamma))
    b_s = np.full(shape, np.nan)
    b_m = np.full(shape, np.nan)
    if n == 2:
        min_exists = gamma < c_abs
        b_m[min_exists] = np.sqrt((c_abs[min_exists] - gamma[min_exists]) / a[min_exists])
        return b_s, b_m, np.zeros(shape, dtype=bool), min_exists
    f = compiled_closed_forms()
    pot = compiled_potential(n)
    gamma_sp = np.asarray(f.gamma_sp(n, a, c_abs), dtype=np.float64)
    b_sp = np.asarray(f.b_sp(n, a, c_abs), dtype=np.float64)
    b_top = (c_abs / a) ** (1.0 / n)  # h(b_top) = gamma >= 0
    min_exists = (gamma < gamma_sp) & (c_abs > 0)
    saddle_exists = min_exists & (gamma > 0)
    tol = {"xrtol": 4 * np.finfo(float).eps, "xatol": 0.0, "fatol": 0.0, "frtol": 0.0}

    def solve(mask, lo, hi):
        if not np.any(mask):
            return np.empty(0)
        res = find_root(pot.stationary, (lo[mask], hi[mask]),
                        args=(a[mask], c_abs[mask], gamma[mask]), tolerances=tol)
        if not np.all(res.success):  # pragma: no cover - brackets are valid by construction
            raise RuntimeError("stationary-point root finding failed to converge")
        return res.x

    b_s[saddle_exists] = solve(saddle_exists, np.zeros(shape), b_sp)
    interior = min_exists & (gamma > 0)
    b_m[interior] = solve(interior, b_sp, b_top)
    at_zero = min_exists & (gamma == 0)
    b_m[at_zero] = b_top[at_zero]
    return b_s, b_m, saddle_exists, min_exists


@timed
def landscape(n_layers, c, gamma, a=1.0, *, width=1, convention="canonical") -> Landscape:
    """Stationary points, barriers, curvatures and Hessian spectra of one scalar mode.

    Parameters
    ----------
    n_layers : int >= 2
        Number of weight matrices.
    c, gamma, a : float or arrays (broadcast together)
        Mode signal (the paper's ``eta``), coupling in the units of ``convention``
        (canonical ``gamma`` or the paper's ``beta``) and input variance ``a > 0``.
    width : int >= 1
        Hidden width ``h`` of the scalar-input, scalar-output network whose Hessian
        spectra are reported. Minima and saddles are orbit manifolds of dimension
        ``(n - 1)(h - 1)`` for ``h > 1``.
    convention : {"canonical", "paper"} or Convention

    Examples
    --------
    >>> L = landscape(3, 1.0, 0.39685026299204984)   # D = 2 at gamma_c
    >>> round(L.barrier_fwd, 9), round(L.barrier_bwd, 9)
    (0.067442249, 0.067442249)
    """
    n, conv, shape, c_abs, a_arr, g = mode_inputs(n_layers, c, a, convention, gamma)
    h = check_width(width)
    _check_orbit_volume(n, h)
    pot = compiled_potential(n)
    f = compiled_closed_forms()
    b_s, b_m, s_ok, m_ok = stationary_points(n, c_abs, a_arr, g)

    def U(x):
        return np.where(np.isfinite(x), pot.U(np.nan_to_num(x), a_arr, c_abs, g), np.nan)

    def d2U(x):
        return np.where(np.isfinite(x), pot.d2U(np.nan_to_num(x), a_arr, c_abs, g), np.nan)

    U_s, U_m = U(b_s), U(b_m)
    k_e = conv.kappa  # energies and curvatures scale with kappa
    curv0, curv_s, curv_m = d2U(np.zeros(shape)), d2U(b_s), d2U(b_m)

    # Phase bookkeeping from the exact (closed-form) couplings.
    gamma_c = np.broadcast_to(np.asarray(f.gamma_c(n, a_arr, c_abs), dtype=np.float64), shape)
    if n == 2:
        phase = np.where(m_ok, "learned", "trivial")
        global_state = np.where(m_ok, "learned", "trivial")
    else:
        phase = np.select(
            [~m_ok, g == 0, g > gamma_c, g == gamma_c],
            ["trivial", "learned", "learned_metastable", "coexistence"],
            default="trivial_metastable",
        )
        global_state = np.select(
            [~m_ok, g > gamma_c, g == gamma_c], ["trivial", "trivial", "degenerate"], default="learned"
        )

    # Weight-space Hessian spectra (section 2.4 width 1, section 4.3 width h).
    n_par = n_params_chain(n, h)
    k_orb = (n - 1) * (h - 1)
    if n == 2:
        hess_triv = _spectrum([2 * g - 2 * c_abs, 2 * g + 2 * c_abs], [h, h],
                              ["symmetric", "antisymmetric"], k_e)
    else:
        hess_triv = _spectrum([2 * g], [n_par], ["isotropic"], k_e)

    def stationary_spectrum(curv, exists):
        if np.ndim(exists) == 0 and not exists:
            return None  # scalar call: absent; array calls give a fully masked spectrum
        ev = [curv / n, np.zeros(shape), 4 * g, 2 * g]
        mult = [1, k_orb, n - 1 + k_orb, n_par - n - 2 * k_orb]
        labels = ["balanced", "orbit", "unbalancing", "bulk"]
        return _spectrum(ev, mult, labels, k_e, exists)

    vol_s = (np.sqrt(2.0) * b_s) ** k_orb * sphere_area(h) ** (n - 1)
    vol_m = (np.sqrt(2.0) * b_m) ** k_orb * sphere_area(h) ** (n - 1)

    return Landscape(
        n_layers=n,
        a=scalar_or_array(a_arr),
        c=scalar_or_array(np.broadcast_to(np.asarray(c, dtype=np.float64), shape)),
        gamma=scalar_or_array(conv.gamma_from_canonical(g)),
        width=h,
        convention=conv,
        phase=scalar_or_array(phase),
        global_state=scalar_or_array(global_state),
        b_saddle=present(b_s, s_ok),
        b_min=present(b_m, m_ok),
        lam_saddle=present(b_s**n, s_ok),
        lam_min=present(b_m**n, m_ok),
        U_min=present(k_e * U_m, m_ok),
        barrier_fwd=present(k_e * U_s, s_ok),
        barrier_bwd=present(k_e * (U_s - U_m), s_ok),
        curvature_trivial=scalar_or_array(k_e * curv0),
        curvature_saddle=present(k_e * curv_s, s_ok),
        curvature_min=present(k_e * curv_m, m_ok),
        n_params=n_par,
        orbit_dim=k_orb,
        orbit_volume_saddle=present(vol_s, s_ok),
        orbit_volume_min=present(vol_m, m_ok),
        hessian_trivial=hess_triv,
        hessian_saddle=stationary_spectrum(curv_s, s_ok),
        hessian_min=stationary_spectrum(curv_m, m_ok),
    )


def _spectrum(eigenvalues, multiplicities, labels, scale, exists=None):
    """Build a HessianSpectrum, dropping directions of multiplicity zero.

    Scalar calls give a tuple of floats; array calls an array ``(*shape, m)``, masked
    where the state is absent.
    """
    keep = [j for j, m in enumerate(multiplicities) if m > 0]
    shape = np.shape(eigenvalues[0])
    ev = np.stack([np.broadcast_to(np.asarray(eigenvalues[j], dtype=np.float64), shape) for j in keep],
                  axis=-1) * scale
    if ev.ndim == 1:
        ev = tuple(float(x) for x in ev)
    elif exists is not None:
        ev = present(ev, np.broadcast_to(np.asarray(exists)[..., None], ev.shape))
    return HessianSpectrum(ev, tuple(int(multiplicities[j]) for j in keep), tuple(labels[j] for j in keep))
