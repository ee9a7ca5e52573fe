"""Levels from the per-mode theory of the data's own moments: MSE of the top-``r`` states and trap weight decays."""

from __future__ import annotations

import numpy as np

from .._validation import check_int
from ._data import as_moments

__all__ = ["mse_levels", "trap_weight_decay"]


def mse_levels(data, weight_decay, *, n_layers, convention="paper", test=None) -> np.ndarray:
    """Test MSE of the top-``r`` states at ``weight_decay``, ``r = 0, 1, ...``, from the per-mode theory.

    The end-to-end map of the top-``r`` state keeps the ``r`` strongest singular directions of
    the cross-covariance with the learned values of ``theory.landscape``; its MSE is measured
    on ``test``. For finite samples the aligned per-mode picture is an approximation
    (``theory.empirical_modes`` quantifies it); it fixes escape thresholds without a
    reference run.

    Parameters
    ----------
    data : (X, Y), Dataset, Moments or GaussianTeacher
        The training data (their moments fix the states).
    weight_decay : float >= 0
        The weight decay at which the states are taken.
    n_layers : int
        Weight matrices of the network.
    convention : "paper" (default), "canonical" or Convention
        The units of ``weight_decay``.
    test : (X, Y), Dataset, Moments or GaussianTeacher, optional
        Where the MSE is measured (default: the training moments).

    Returns
    -------
    numpy.ndarray
        MSE of the top-``r`` state for ``r = 0 .. n_modes`` (NaN where the state does not exist).
    """
    from ..theory import landscape
    mom = as_moments(data)
    tm = mom if test is None else as_moments(test, "test")
    U, _, Vt = np.linalg.svd(mom.cross_cov)
    lam = np.asarray(landscape(n_layers, mom.spectrum, weight_decay, mom.a, convention=convention).lam_min,
                     dtype=object)
    out = np.full(lam.size + 1, np.nan)
    M = np.zeros_like(mom.cross_cov)
    out[0] = tm.mse(M)
    for r in range(lam.size):
        if lam[r] is None or np.ma.is_masked(lam[r]):
            break
        M = M + float(lam[r]) * np.outer(U[:, r], Vt[r])     # the aligned theory's end-to-end map
        out[r + 1] = tm.mse(M)
    return out


def trap_weight_decay(data, rank, *, n_layers, convention="paper") -> float:
    """A weight decay at which the network keeps only its ``rank`` strongest modes, from the data's own spectrum.

    Midway between the spinodals of mode ``rank`` (1-based: the ``rank + 1``-th strongest,
    which is lost) and mode ``rank - 1`` (kept), or 1.1 x the largest spinodal for
    ``rank = 0``. For finite samples this is the corrected version of the paper's fixed trap
    values (0.361, 0.43), which some draws do not trap at.

    Parameters
    ----------
    data : (X, Y), Dataset, Moments or GaussianTeacher
        The training data (their moments fix the spinodals).
    rank : int >= 0
        Modes the trap keeps; less than the number of learnable modes.
    n_layers : int
        Weight matrices of the network.
    convention : "paper" (default), "canonical" or Convention
        The units of the result; ``"paper"`` averages the MSE over the data's outputs, as
        :func:`train` does.

    Returns
    -------
    float
    """
    from ..theory import critical_points
    from ._train import resolve_training_convention
    mom = as_moments(data)
    conv = resolve_training_convention(convention, mom.cross_cov.shape[0])
    sp = np.sort(np.asarray(critical_points(n_layers, mom.spectrum, mom.a, convention=conv).gamma_sp,
                            dtype=float))[::-1]
    sp = sp[np.isfinite(sp)]
    rank = check_int(rank, "rank", 0)
    if rank >= sp.size:
        raise ValueError(f"rank must be < {sp.size}, the number of learnable modes of the data, got {rank}")
    if rank == 0:
        return float(1.1 * sp[0])
    return float(0.5 * (sp[rank - 1] + sp[rank]))
