"""The converged mean first-passage time of a few-variable overdamped Langevin diffusion, on grids.

Where no 1D reduction exists (the 3-weight chain), :func:`mfpt_grid` solves the backward
equation ``T Lap tau - grad U . grad tau = -1`` (``tau = 0`` on the target) by finite volumes,
with the symmetry group of the problem folded out, and extrapolates ``h -> 0`` over several
grids. :func:`mfpt_1d` is its 1D counterpart by quadrature (see docs/rare.md, "Eyring-Kramers
for the chain, and its accuracy").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .._validation import check_int, check_positive
from ..results import Result, register, timed

__all__ = ["GridMFPT", "mfpt_grid"]

_UNDERFLOW = 600.0   # cells more than this many T above the lowest kept cell are left out


@register
@dataclass(frozen=True, eq=False, repr=False)
class GridMFPT(Result):
    """The result of :func:`mfpt_grid` (storable with :func:`phasetools.io.save`).

    Parameters
    ----------
    temperature : float
        Temperature ``T``.
    n_dim : int
        Number of variables.
    half_width : float
        Half the box side as asked (each grid's is ``round(half_width / h) h``).
    energy_cut : float or None
        Energy above which cells were left out (None: none).
    degree : int
        Degree of the polynomial in ``h^2`` fitted for the extrapolation.
    tau : float
        The mean first-passage time: the ``h -> 0`` value of that polynomial when more than
        one spacing was given, else the one grid's value.
    tau_stderr : float
        Error of the extrapolation: ``sqrt(tau_fit_stderr^2 + tau_spread^2)``, the scatter of
        the grids about the fit and the change of the ``h -> 0`` value when the degree is raised
        by one (``nan`` unless there are more different spacings than coefficients).
    tau_fit_stderr : float
        Standard error from the scatter of the grids about the fit alone: a lower bound, 3-6
        times below the actual error on the tests' potentials (``nan`` as above).
    tau_spread : float
        The ``h -> 0`` value of the polynomial of degree ``degree + 1`` minus ``tau`` (the
        systematic term of ``tau_stderr``; ``nan`` as above).
    taus : ndarray (n_grids,)
        The value on each grid.
    spacings : ndarray (n_grids,)
        The grid spacings.
    n_unknowns : ndarray (n_grids,) of int
        Unknowns of each linear solve (symmetry orbits of the cells kept).
    n_cells : ndarray (n_grids,) of int
        Cells kept on each grid (before folding out the symmetries; without the regions that
        have no path to the target).
    """

    temperature: float
    n_dim: int
    half_width: float
    energy_cut: float | None
    degree: int
    tau: float
    tau_stderr: float
    taus: np.ndarray
    spacings: np.ndarray
    n_unknowns: np.ndarray
    n_cells: np.ndarray
    tau_fit_stderr: float = float("nan")   # defaults: files written before these fields still load
    tau_spread: float = float("nan")

    _config_fields: ClassVar[tuple] = ("temperature", "n_dim", "half_width", "energy_cut", "degree")


@timed
def mfpt_grid(potential, target, start, temperature, *, n_dim, half_width, spacing, energy_cut=None,
              symmetries=(), degree=1):
    """Converged (``h -> 0`` extrapolated) mean first-passage time of ``dx = -grad U dt + sqrt(2T) dW``
    into ``target``, by finite volumes.

    The box ``[-n1 h, n1 h]^n_dim`` with ``n1 = max(1, round(half_width / h))`` (so its faces
    lie within ``h / 2`` of ``+-half_width``, not on them) is cut into ``2 n1`` cubes of side
    ``h`` per axis, centres at ``(i + 1/2) h``; neighbouring cells exchange at
    the rates ``(T / h^2) exp(-(U_j - U_i) / 2T)`` (the square-root approximation of the
    generator ``T Lap - grad U . grad``, reversible for ``exp(-U/T)``; error ``O(h^2)``). Cells
    whose centre lies in the target ``g(x) >= 0`` absorb, and the target's boundary is placed
    on each edge where the linear interpolation of ``g`` crosses 0 (Shortley-Weller), so the
    error stays a smooth ``O(h^2)`` instead of a staircase's irregular ``O(h)``; the box faces,
    and the cells whose energy exceeds ``energy_cut`` (left out), reflect. The MFPT is the
    Boltzmann average over the kept cells of ``start``. It is invariant under every symmetry
    of ``U``, target and start, so the chain is lumped onto the orbits of the group generated
    by ``symmetries`` (exact: a symmetric Markov chain is lumpable onto its orbits), one sparse
    direct solve of the symmetric positive definite system per grid, iteratively refined with
    the residual in difference form (the system's condition number grows like ``exp(dU/T)``;
    on a 1D grid chain, h = 2/41, against its exact birth-death sum, the refined solve is
    within 5e-15 at ``dU/T`` = 20, 25 and 30, the unrefined one off by 9e-7, 9e-5 and 2 %).
    Several spacings give the ``h -> 0`` extrapolation; its error ``tau_stderr`` (the fit's
    scatter and the change when the degree is raised by one) was 0.05-2.6 times the actual
    error in the cases measured (relative errors 2e-6-2e-5 on a 2D double well at ``dU/T``
    5-10, four or five grids; docs/rare.md), so ``3 tau_stderr`` bounds it there.

    Parameters
    ----------
    potential : callable
        Vectorised ``U(x)``: array ``(..., n_dim)`` in, ``(...)`` out.
    target : callable
        Vectorised level function ``g``: ``(..., n_dim) -> (...)`` float; the target (absorbing)
        set is ``g >= 0``, e.g. ``lambda x: x.prod(-1) - level``.
    start : callable
        Vectorised mask ``(..., n_dim) -> (...)`` bool: the set the MFPT is averaged over (with
        weights ``exp(-U/T)``; it must contain kept cells).
    temperature : float > 0
        Temperature ``T``.
    n_dim : int >= 1
        Number of variables.
    half_width : float > 0
        Half the box side, rounded to a whole number of cells ``round(half_width / h) h`` on
        each grid (at least one).
    spacing : float > 0 or sequence of float > 0
        Grid spacing(s) ``h``; two or more give the extrapolation in ``h^2``.
    energy_cut : float, optional
        Cells with ``U`` above it are left out (reflecting). Default: keep every cell whose
        Boltzmann weight does not underflow (``U`` within ``600 T`` of the lowest kept cell).
    symmetries : sequence of (n_dim, n_dim) arrays, default ()
        Signed permutation matrices that leave ``U``, ``target`` and ``start`` unchanged
        (checked on the grid); the solve is on the orbits of the group they generate.
    degree : int >= 1, default 1
        Degree of the polynomial in ``h^2`` fitted to the grids' values (least squares).

    Returns
    -------
    GridMFPT
        The MFPT, its value per grid and the sizes of the solves. Kept cells with no path to
        the target through kept cells (and no start cell) are left out.

    Raises
    ------
    ValueError
        On a parameter out of range, a matrix that is no signed permutation or no symmetry of
        the problem on the grid, a start set without kept cells, a start cell with no path to
        the target (``energy_cut`` below the barrier), or a barrier too high for the
        solve in double precision (beyond ``dU/T`` of about 30, where ``exp(dU/T)`` times the
        machine precision approaches 1).
    """
    T = float(check_positive(temperature, "temperature"))
    n_dim = check_int(n_dim, "n_dim", minimum=1)
    half_width = float(check_positive(half_width, "half_width"))
    spacings = tuple(float(h) for h in np.atleast_1d(check_positive(spacing, "spacing")))
    degree = check_int(degree, "degree", minimum=1)
    if len(spacings) > 1 and len(set(spacings)) <= degree:
        raise ValueError(f"spacing: a polynomial of degree {degree} in h^2 needs at least {degree + 1} "
                         f"different spacings, got {len(set(spacings))}")
    group = _group(symmetries, n_dim)
    runs = [_solve(potential, target, start, T, n_dim, half_width, h, energy_cut, group) for h in spacings]
    taus = tuple(r[0] for r in runs)
    tau, fit_stderr = _extrapolate(spacings, taus, degree)
    spread = float("nan")
    if len(set(spacings)) > degree + 1:
        spread = _extrapolate(spacings, taus, degree + 1)[0] - tau
    return GridMFPT(temperature=T, n_dim=n_dim, half_width=half_width,
                    energy_cut=None if energy_cut is None else float(energy_cut), degree=degree, tau=tau,
                    tau_stderr=float(np.hypot(fit_stderr, spread)), taus=np.array(taus), spacings=np.array(spacings),
                    n_unknowns=np.array([r[1] for r in runs]), n_cells=np.array([r[2] for r in runs]),
                    tau_fit_stderr=fit_stderr, tau_spread=float(spread))


def _extrapolate(spacings, taus, degree):
    """``(value at h = 0, its standard error from the scatter about the fit)`` of the
    least-squares polynomial of ``degree`` in ``h^2``."""
    if len(taus) == 1:
        return taus[0], float("nan")
    design = np.vander(np.square(spacings), degree + 1, increasing=True)
    coef, *_ = np.linalg.lstsq(design, np.asarray(taus), rcond=None)
    dof = len(taus) - degree - 1
    if dof <= 0:
        return float(coef[0]), float("nan")
    sigma2 = np.sum((design @ coef - taus) ** 2) / dof
    cov = sigma2 * np.linalg.inv(design.T @ design)
    return float(coef[0]), float(np.sqrt(cov[0, 0]))


def _group(generators, n_dim):
    """Every element of the group of signed permutations generated by ``generators``, as
    ``(perm, sign)`` pairs meaning ``x'_k = sign_k x_{perm_k}``."""
    gens = []
    for g in generators:
        g = np.asarray(g)
        ok = g.shape == (n_dim, n_dim) and np.all(np.isin(g, (-1, 0, 1))) and np.all(np.abs(g).sum(0) == 1) \
            and np.all(np.abs(g).sum(1) == 1)
        if not ok:
            raise ValueError(f"symmetries must be ({n_dim}, {n_dim}) signed permutation matrices, got {g.tolist()!r}")
        gens.append(g.astype(int))
    seen = {np.eye(n_dim, dtype=int).tobytes(): np.eye(n_dim, dtype=int)}
    frontier = list(seen.values())
    while frontier:
        new = []
        for a in frontier:
            for g in gens:
                b = g @ a
                if b.tobytes() not in seen:
                    seen[b.tobytes()] = b
                    new.append(b)
        frontier = new
    return [(np.abs(m).argmax(1), m.sum(1)) for m in seen.values()]


def _orbits(group, shape, invariant):
    """The orbit label (smallest flat index of the orbit) of every cell; checks that the
    arrays in ``invariant`` are unchanged by every group element."""
    index = np.arange(np.prod(shape)).reshape(shape)
    label = index.copy()
    for perm, sign in group:
        image = np.transpose(index, perm)
        for k, s in enumerate(sign):
            if s < 0:
                image = np.flip(image, axis=k)
        for name, arr in invariant.items():
            moved = arr.ravel()[image]
            same = np.allclose(moved, arr, rtol=1e-12, atol=1e-12) if arr.dtype.kind == "f" else np.array_equal(moved, arr)
            if not same:
                raise ValueError(f"symmetries: {np.diag(sign) @ np.eye(len(shape))[perm]} does not leave the "
                                 f"{name} unchanged on the grid")
        np.minimum(label, image, out=label)
    return label


def _solve(potential, target, start, T, n_dim, half_width, h, energy_cut, group):
    """``(tau, n_unknowns, n_cells)`` on the grid of spacing ``h``."""
    n1 = max(1, round(half_width / h))
    centres = (np.arange(2 * n1) + 0.5 - n1) * h
    x = np.stack(np.meshgrid(*[centres] * n_dim, indexing="ij"), axis=-1)
    u = np.asarray(potential(x), dtype=float)
    g = np.asarray(target(x), dtype=float)
    in_start = np.asarray(start(x), dtype=bool)
    keep = ~(g >= 0) if energy_cut is None else ~(g >= 0) & (u <= energy_cut)
    label = _orbits(group, u.shape, {"potential": u, "target": g, "start": in_start})
    if not np.any(keep & in_start):
        raise ValueError("start: no kept cell lies in the start set (finer spacing, or a larger start set)")
    shift = (u / T)[keep].min()
    keep &= u / T - shift < _UNDERFLOW     # weights below e^-600 of the lowest kept cell underflow: left out
    orbit = np.full(u.shape, -1)
    orbit[keep] = np.unique(label[keep], return_inverse=True)[1]
    m = int(orbit.max()) + 1
    rows, cols, rates, exits = _edges(potential, x, u, g, keep, orbit, m, T, h, shift)
    reach = _reaching(rows, cols, exits, m, np.unique(orbit[keep & in_start]))
    if not reach.all():                    # regions with no path to the target (no start cell in them): left out
        keep &= reach[np.maximum(orbit, 0)]
        new = np.cumsum(reach) - 1
        edge = reach[rows] & reach[cols]
        rows, cols, rates, exits, orbit, m = new[rows[edge]], new[cols[edge]], rates[edge], exits[reach], \
            np.where(keep, new[np.maximum(orbit, 0)], -1), int(reach.sum())
    pi = np.exp(shift - u / T)
    tau = _solve_refined(rows, cols, rates, exits, np.bincount(orbit[keep], weights=pi[keep], minlength=m))
    w = np.bincount(orbit[keep & in_start], weights=pi[keep & in_start], minlength=m)
    return float(w @ tau / w.sum()), m, int(keep.sum())


def _edges(potential, x, u, g, keep, orbit, m, T, h, shift):
    """The lumped chain's edges between orbits (``rows``, ``cols``, both directions, with
    ``rates`` ``pi_i q_ij = (T/h^2) sqrt(pi_i pi_j)``) and its exit rates into the target."""
    rows, cols, rates, exits = [], [], [], np.zeros(m)
    for axis in range(x.shape[-1]):
        a = tuple(slice(0, -1) if k == axis else slice(None) for k in range(x.shape[-1]))
        b = tuple(slice(1, None) if k == axis else slice(None) for k in range(x.shape[-1]))
        with np.errstate(over="ignore"):   # inf only between cells left out
            s = (T / h**2) * np.exp(shift - 0.5 * (u[a] + u[b]) / T)
        both = keep[a] & keep[b]
        rows.extend([orbit[a][both], orbit[b][both]])
        cols.extend([orbit[b][both], orbit[a][both]])
        rates.extend([s[both], s[both]])
        for i, j, sign in ((a, b, 1), (b, a, -1)):
            edge = keep[i] & (g[j] >= 0)
            np.add.at(exits, orbit[i][edge], _boundary_rates(potential, x[i][edge], u[i][edge], g[i][edge],
                                                             g[j][edge], sign * h, axis, T, shift))
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(rates), exits


def _reaching(rows, cols, exits, m, start_orbits):
    """Mask of the orbits whose connected component of the kept cells has an exit into the
    target; raises if a start orbit's has none (the MFPT from it is infinite)."""
    from scipy import sparse
    from scipy.sparse.csgraph import connected_components

    graph = sparse.coo_matrix((np.ones(rows.size), (rows, cols)), shape=(m, m))
    _, comp = connected_components(graph, directed=False)
    exiting = np.zeros(comp.max() + 1, dtype=bool)
    exiting[comp[exits > 0]] = True
    if not exiting[comp[start_orbits]].all():
        raise ValueError("energy_cut: the start set is cut off from the target (no path through the kept cells: "
                         "an energy_cut below the barrier, or a start set in another well); raise energy_cut")
    return exiting[comp]


def _solve_refined(rows, cols, rates, exits, rhs):
    """Solve ``sum_j rates_ij (tau_i - tau_j) + exits_i tau_i = rhs_i``: one sparse Cholesky-like
    factorisation of the diagonally scaled symmetric matrix, then iterative refinement with the
    residual in that difference form (the matrix form cancels ``e^(dU/T)`` digits in a flat well)."""
    from scipy import sparse
    from scipy.sparse.linalg import splu

    m = rhs.size
    diag = np.bincount(rows, weights=rates, minlength=m) + exits
    mat = sparse.coo_matrix((-rates, (rows, cols)), shape=(m, m)).tocsr() + sparse.diags(diag)
    scale = 1 / np.sqrt(mat.diagonal())
    d = sparse.diags(scale)
    lu = splu((d @ mat @ d).tocsc(), permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
              options={"SymmetricMode": True})                    # symmetric positive definite: no pivoting
    tau = scale * lu.solve(scale * rhs)
    for _ in range(30):
        residual = rhs - np.bincount(rows, weights=rates * (tau[rows] - tau[cols]), minlength=m) - exits * tau
        step = scale * lu.solve(scale * residual)
        tau += step
        if np.all(np.isfinite(tau)) and np.max(np.abs(step)) <= 1e-13 * np.max(np.abs(tau)):
            return tau
    raise ValueError("temperature: the linear solve does not converge, the barrier is too high for double "
                     "precision (the refined solve is within 5e-15 of the exact value up to dU/T = 30 and fails beyond ~32)")


def _boundary_rates(potential, x, u, g_in, g_out, step, axis, T, shift):
    """``pi_i q_ib`` from kept cells to the target's boundary ``b`` on the edge to an absorbing
    neighbour, at the fraction ``theta`` of the edge where the linear interpolation of the level
    function crosses 0 (Shortley-Weller): ``(T / (theta h^2)) sqrt(pi_i pi_b)``, so the boundary
    lies where it is rather than at the absorbing cell's centre (a smooth ``O(h^2)`` error, not a
    staircase)."""
    theta = np.clip(g_in / (g_in - g_out), 1e-3, 1.0)
    xb = x.copy()
    xb[:, axis] += theta * step
    ub = np.asarray(potential(xb), dtype=float)
    return (T / (theta * step**2)) * np.exp(shift - 0.5 * (u + ub) / T)
