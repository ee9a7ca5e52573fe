"""The converged mean escape time of the scalar chain, the reference of its AMS estimates.

The chain of ``n_layers`` scalar weights has no 1D reduction (the 1D problems have
``EscapeProblem.exact_mfpt``); :func:`chain_exact_mfpt` solves its backward equation with
:func:`phasetools.theory.mfpt_grid`, its permutations and pair sign flips folded out.
"""

from __future__ import annotations

import numpy as np

from .._validation import check_int, check_positive, check_scalar
from ..theory import mfpt_grid

__all__ = ["CHAIN_GRIDS", "chain_exact_mfpt"]

#: the grids of :func:`chain_exact_mfpt`, in units of ``0.05 sqrt(10 T / barrier)`` (the
#: spacing scales with the well's width ``sqrt(T)``); at ``dU/T = 20`` the quadratic in ``h^2``
#: through them, 6.29675e9, is 1.7e-6 below the one through ten grids down to 0.35, 6.29676e9
#: (``python examples/rare_validation.py --chain-exact --ratios 20`` prints both; docs/rare.md)
CHAIN_GRIDS = (1.0, 0.9, 0.8, 0.7, 0.6, 0.55)


def chain_exact_mfpt(problem, temperature, *, grids=CHAIN_GRIDS, degree=2, start_radius=0.2, half_width=1.0,
                     cut=20.0):
    """Converged (``h -> 0`` extrapolated) forward mean escape time of the scalar chain
    (``escape_problem("chain", direction="fwd")``).

    The mean first-passage time from the origin's well to ``P = w_1...w_n >= level`` (or
    ``<= level`` when the problem's stop is downward, ``c < 0``), by
    :func:`phasetools.theory.mfpt_grid` on the grids ``h = 0.05 sqrt(10 T / barrier) g`` for ``g`` in ``grids``, extrapolated to ``h = 0`` by a polynomial of
    ``degree`` in ``h^2``; lumped onto the orbits of the weight permutations and pair sign
    flips (24 for ``n_layers = 3``), cells more than ``cut`` ``T`` above the saddle left out.
    About 15 s at ``n_layers = 3`` on a busy 2-core machine; ``n_layers = 4`` solves on 4D grids.
    At ``dU/T = 20`` (paper chain, six grids) ``tau_stderr`` is 3.1e-5 of ``tau`` and the value
    1.7e-6 from ten grids' (docs/rare.md).

    Parameters
    ----------
    problem : phasetools.langevin.EscapeProblem
        ``model="chain"``, ``direction="fwd"`` (start at the origin, stop when ``P`` crosses
        the level, upward for ``c > 0``, downward for ``c < 0``).
    temperature : float > 0
        Temperature (convention energy units, as the problem's ``barrier``).
    grids : sequence of float > 0, default CHAIN_GRIDS
        Spacings in units of ``0.05 sqrt(10 T / barrier)``: one (no extrapolation), or more
        different ones than ``degree``.
    degree : int >= 1, default 2
        Degree of the extrapolating polynomial in ``h^2``.
    start_radius : float > 0, default 0.2
        The MFPT is Boltzmann-averaged over ``|w| < start_radius`` (the MFPT is flat there).
    half_width : float > 0, default 1.0
        Half the box side (reflecting; at 1.0 every cell within ``cut`` of the saddle of the
        paper's chain at ``eta = 0.8``, weight decay 0.32 lies inside at every grid).
    cut : float > 0, default 20
        Cells whose energy exceeds the saddle's by more than ``cut`` ``T`` are left out.

    Returns
    -------
    phasetools.theory.GridMFPT
        ``tau`` (convention time units), ``tau_stderr`` and the per-grid values.

    Raises
    ------
    ValueError
        For another problem, a parameter out of range, or too few ``grids`` for ``degree``.
    """
    if getattr(problem, "model", None) != "chain" or problem.direction != "fwd":
        raise ValueError("problem must be escape_problem('chain', direction='fwd', ...), got "
                         f"{getattr(problem, 'model', problem)!r} {getattr(problem, 'direction', '')!r}")
    T = check_scalar(temperature, "temperature", positive=True)
    radius = check_scalar(start_radius, "start_radius", positive=True)
    cut = check_scalar(cut, "cut", positive=True)
    grids = np.atleast_1d(check_positive(grids, "grids")).astype(float)
    degree = check_int(degree, "degree", minimum=1)
    if grids.size > 1 and np.unique(grids).size <= degree:
        raise ValueError(f"grids: a polynomial of degree {degree} in h^2 needs at least {degree + 1} different "
                         f"grids, got {np.unique(grids).size} (or pass one grid, unextrapolated)")
    n = problem.potential.dim
    level = float(problem.stop.level)
    sign = 1.0 if problem.stop.direction == "up" else -1.0     # c < 0: P falls below a negative level
    swap = np.eye(n, dtype=int)[[1, 0, *range(2, n)]]
    cycle = np.roll(np.eye(n, dtype=int), 1, axis=0)
    flip = np.diag([-1, -1] + [1] * (n - 2))
    u0 = float(problem.potential.energy(np.asarray(problem.x0, dtype=float)))
    return mfpt_grid(problem.potential.energy, lambda x: sign * (x.prod(-1) - level),
                     lambda x: (x**2).sum(-1) < radius**2, T, n_dim=n, half_width=half_width,
                     spacing=0.05 * np.sqrt(10 * T / problem.barrier) * grids,
                     energy_cut=u0 + problem.barrier + cut * T, symmetries=[swap, cycle, flip], degree=degree)
