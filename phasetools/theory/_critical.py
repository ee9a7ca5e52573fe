"""Coexistence and spinodal couplings of one scalar mode (docs/theory.md)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..results import Result, register, timed
from ._common import mode_inputs, scalar_or_array
from ._convention import Convention
from ._symbolic import compiled_closed_forms

__all__ = ["CriticalPoints", "critical_points"]


@register
@dataclass(frozen=True, eq=False, repr=False)
class CriticalPoints(Result):
    """Critical couplings of one scalar mode ``(a, c)`` with ``n_layers`` weight matrices.

    Couplings are in the units of ``convention`` (canonical ``gamma``, or the paper's
    ``beta``); ``latent_heat`` is the jump of ``dE*/d(coupling)`` at ``gamma_c`` in the
    convention's energy units (canonical: ``n b_c^2``). ``b_*`` are per-layer magnitudes,
    ``P_* = b_*^n`` end-to-end coefficients (the paper's lambda), as magnitudes.
    """

    n_layers: int
    a: object
    c: object
    convention: Convention
    gamma_c: object
    gamma_sp: object
    b_c: object
    lam_c: object
    b_sp: object
    lam_sp: object
    order: str
    latent_heat: object

    _config_fields = ("n_layers", "a", "c", "convention")
    _dims = {k: ("mode",) for k in ("a", "c", "gamma_c", "gamma_sp", "b_c", "lam_c", "b_sp", "lam_sp", "latent_heat")}
    _coords = {"mode": "c"}
    _former_names = {"lam_c": "P_c", "lam_sp": "P_sp"}
    _units = {"a": "input_variance", "c": "cross_covariance", "gamma_c": "coupling[convention]",
              "gamma_sp": "coupling[convention]", "b_c": "weight", "b_sp": "weight", "lam_c": "end_to_end",
              "lam_sp": "end_to_end", "latent_heat": "energy[convention]/coupling[convention]"}

    def __repr__(self):
        def fmt(v):
            return f"{v:.10g}" if np.ndim(v) == 0 else f"array(shape={np.shape(v)})"

        return (
            f"CriticalPoints(n_layers={self.n_layers}, convention={self.convention.name!r}, order={self.order!r}, "
            f"gamma_c={fmt(self.gamma_c)}, gamma_sp={fmt(self.gamma_sp)}, b_c={fmt(self.b_c)}, "
            f"b_sp={fmt(self.b_sp)}, lam_c={fmt(self.lam_c)}, latent_heat={fmt(self.latent_heat)})"
        )


@timed
def critical_points(n_layers, c, a=1.0, *, convention="canonical") -> CriticalPoints:
    """Coexistence (``gamma_c``) and spinodal (``gamma_sp``) couplings of a scalar mode.

    Parameters
    ----------
    n_layers : int >= 2
        Number of weight matrices ``n`` (``n - 1`` hidden layers).
    c : float or array
        Mode signal ``E[xy]`` (only ``|c|`` matters); the paper's ``eta``.
    a : float or array, > 0
        Input variance ``E[x^2]`` of the mode (``a = 1`` for whitened inputs).
    convention : {"canonical", "paper"} or Convention
        Units of the returned couplings and latent heat.

    Returns
    -------
    CriticalPoints
        ``n_layers = 2`` is the continuous case: ``gamma_c = gamma_sp = |c|``,
        ``b_c = b_sp = 0``, ``order = "second"``. For ``n_layers >= 3`` the transition is
        first order: at ``gamma_c`` the trivial and learned states have equal energy, at
        ``gamma_sp`` the learned state ceases to exist.

    Examples
    --------
    >>> cp = critical_points(3, 1.0)
    >>> round(cp.gamma_c, 9), round(cp.gamma_sp, 9)
    (0.396850263, 0.472470394)
    """
    n, conv, _, c_abs, a_arr, _ = mode_inputs(n_layers, c, a, convention)
    f = compiled_closed_forms()
    out = {k: np.asarray(getattr(f, k)(n, a_arr, c_abs), dtype=np.float64)
           for k in ("gamma_c", "gamma_sp", "b_c", "b_sp", "lam_c", "lam_sp", "latent_heat")}
    # broadcast constants (lambdify may return python scalars for constant results)
    out = {k: np.broadcast_to(v, c_abs.shape) + 0.0 for k, v in out.items()}
    return CriticalPoints(
        n_layers=n,
        a=scalar_or_array(a_arr),
        c=scalar_or_array(np.broadcast_to(np.asarray(c, dtype=np.float64), c_abs.shape) + 0.0),
        convention=conv,
        gamma_c=scalar_or_array(conv.gamma_from_canonical(out["gamma_c"])),
        gamma_sp=scalar_or_array(conv.gamma_from_canonical(out["gamma_sp"])),
        b_c=scalar_or_array(out["b_c"]),
        lam_c=scalar_or_array(out["lam_c"]),
        b_sp=scalar_or_array(out["b_sp"]),
        lam_sp=scalar_or_array(out["lam_sp"]),
        order="second" if n == 2 else "first",
        latent_heat=scalar_or_array(conv.latent_heat_scale * out["latent_heat"]),
    )
