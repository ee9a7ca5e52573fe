"""Finite samples: per-mode predictions from the empirical moments of a data set.

With ``N`` samples the empirical ``S_xx = X^T X / N`` is not exactly aligned with
``S_yx = Y^T X / N``, so the modes couple (docs/theory.md). The per-mode
prediction uses the singular values ``c_k`` of ``S_yx`` and ``a_k = v_k^T S_xx v_k``
along its right singular vectors; ``misalignment`` measures how far ``S_xx`` is from
being diagonal in that basis. When it exceeds ``align_tol`` the decoupling is only
approximate: a :class:`MisalignmentWarning` is issued and, if ``gamma`` is given, each
predicted state is relaxed in the full network loss with the empirical moments (the
reduced problem solved numerically).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from .._validation import check_data_matrices, check_n_layers, check_nonnegative
from ..results import Result, deep_equal, register, timed
from ._convention import Convention, resolve_convention
from ._modes import Modes, modes
from ._network import end_to_end, layer_shapes, pack, relax, unpack

__all__ = ["MisalignmentWarning", "RelaxedState", "EmpiricalModes", "empirical_modes", "empirical_moments"]


class MisalignmentWarning(UserWarning):
    """The empirical input covariance is not aligned with the cross-covariance."""


@register
@dataclass(frozen=True, eq=False)
class RelaxedState:
    """A predicted state relaxed in the full network loss with the empirical moments."""

    learned: tuple
    energy_predicted: float
    energy: float
    singular_values: np.ndarray  # of the relaxed end-to-end map, descending

    def __eq__(self, other):
        return type(other) is type(self) and deep_equal(self, other)

    __hash__ = object.__hash__

    def to_dict(self):
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@register
@dataclass(frozen=True, eq=False, repr=False)
class EmpiricalModes(Result):
    n_layers: int
    n_samples: int
    convention: Convention
    sxx: np.ndarray
    syx: np.ndarray
    a: np.ndarray
    c: np.ndarray
    misalignment: float
    aligned: bool
    modes: Modes
    relaxed: tuple | None

    _config_fields = ("n_layers", "n_samples", "convention")
    _dims = {"sxx": ("input", "input"), "syx": ("output", "input"), "a": ("mode",), "c": ("mode",)}
    _units = {"sxx": "input_variance", "syx": "cross_covariance", "a": "input_variance", "c": "cross_covariance"}

    def __repr__(self):
        return (f"EmpiricalModes(n_layers={self.n_layers}, n_samples={self.n_samples}, "
                f"c={np.array2string(self.c, precision=6)}, a={np.array2string(self.a, precision=6)}, "
                f"misalignment={self.misalignment:.3g}, aligned={self.aligned}, "
                f"gamma_c={np.array2string(self.modes.gamma_c, precision=6)}, "
                f"gamma_sp={np.array2string(self.modes.gamma_sp, precision=6)})")


def empirical_moments(X, Y):
    """Second moments ``S_xx = X^T X / N`` and ``S_yx = Y^T X / N`` of a data set.

    Parameters
    ----------
    X : array (N, d_in)
        Inputs, samples in rows.
    Y : array (N, d_out)
        Outputs, samples in rows.

    Returns
    -------
    tuple of numpy.ndarray
        ``(S_xx, S_yx)``.
    """
    X, Y = check_data_matrices(X, Y)
    N = X.shape[0]
    return X.T @ X / N, Y.T @ X / N


@timed
def empirical_modes(n_layers, X, Y, gamma=None, *, convention="canonical", align_tol=1e-6) -> EmpiricalModes:
    """Per-mode predictions for a finite data set ``(X, Y)`` (samples in rows).

    Returns the empirical moments, the per-mode ``a_k`` and ``c_k``, the
    :class:`~phasetools.theory.Modes` prediction and, when the data are not aligned
    and ``gamma`` is given, the predicted states relaxed in the full network loss.

    Parameters
    ----------
    n_layers : int >= 2
        Number of weight matrices.
    X, Y : arrays (N, d_in) and (N, d_out)
        The data set, samples in rows.
    gamma : float, optional
        Coupling (units of ``convention``); needed for the states and the relaxation.
    convention : {"canonical", "paper"} or Convention
        Units of ``gamma`` and of the reported energies.
    align_tol : float >= 0
        Largest relative misalignment of ``S_xx`` with the singular vectors of ``S_yx``
        treated as aligned (above it a :class:`MisalignmentWarning` is issued).

    Returns
    -------
    EmpiricalModes
    """
    n = check_n_layers(n_layers)
    conv = resolve_convention(convention)
    tol = float(check_nonnegative(align_tol, "align_tol"))
    sxx, syx = empirical_moments(X, Y)
    if conv.n_outputs is not None and conv.coupling == "weight_decay" and syx.shape[0] != conv.n_outputs:
        raise ValueError(f"convention {conv.name!r} averages over {conv.n_outputs} outputs but Y has "
                         f"{syx.shape[0]} columns")
    U, s, Vt = np.linalg.svd(syx, full_matrices=False)
    a = np.einsum("kd,de,ke->k", Vt, sxx, Vt)
    resid = sxx @ Vt.T - Vt.T * a
    norm = np.linalg.norm(sxx, 2)
    misalignment = float(np.linalg.norm(resid, 2) / norm) if norm > 0 else 0.0
    aligned = misalignment <= tol
    if not aligned:
        warnings.warn(f"empirical S_xx is not aligned with S_yx (misalignment {misalignment:.3g} > "
                      f"align_tol {tol:g}): per-mode predictions are approximate", MisalignmentWarning,
                      stacklevel=2)
    m = modes(n, s, gamma, a, convention=conv)
    relaxed = None
    if gamma is not None and not aligned:
        g = float(conv.gamma_to_canonical(float(gamma)))
        shapes = layer_shapes(sxx.shape[0], syx.shape[0], n, s.size)
        L = _per_mode_b(m)
        states = []
        for st in m.states:
            b = np.zeros(s.size)
            b[list(st.learned)] = L[list(st.learned)]
            weights = [np.diag(b) @ Vt] + [np.diag(b)] * (n - 2) + [U @ np.diag(b)]
            theta, loss = relax(pack(weights), shapes, sxx, syx, g)
            sv = np.linalg.svd(end_to_end(unpack(theta, shapes)), compute_uv=False)
            states.append(RelaxedState(st.learned, st.energy, float(conv.energy_from_canonical(loss)), sv))
        relaxed = tuple(states)
    return EmpiricalModes(n, int(np.shape(X)[0]), conv, sxx, syx, a, s, misalignment, aligned, m, relaxed)


def _per_mode_b(m: Modes) -> np.ndarray:
    from ._landscape import landscape

    L = landscape(m.n_layers, m.spectrum, m.gamma, m.a, convention=m.convention)
    return np.ma.filled(L.b_min, 0.0)
