"""Escape-time theory: 1D Kramers, the exact 1D mean first-passage time, and the
weight-space Eyring-Kramers (Langer) time with saddle multiplicity, mobility, entropic
and orbit factors (see docs/theory.md, "Escape times").

Times are in the convention's time unit (canonical Langevin time ``t`` for the canonical
convention); temperatures are in the convention's energy units.
"""

from __future__ import annotations

import numpy as np
from scipy.integrate import simpson

from .._validation import as_float_array, check_choice, check_positive
from ._common import present
from ._landscape import landscape
from ._symbolic import compiled_potential

__all__ = ["kramers_time", "mean_first_passage_time", "eyring_kramers_time", "mfpt_1d"]

_DIRECTIONS = ("fwd", "bwd")


def _temperature(temperature, conv):
    return conv.temperature_to_canonical(check_positive(temperature, "temperature"))


def kramers_time(n_layers, c, gamma, temperature, a=1.0, *, direction="fwd", convention="canonical"):
    """One-dimensional Kramers time on the reduced potential ``U(b)`` (mobility 1).

    ``tau = 2 pi exp(dU/T) / sqrt(U''(b_from) |U''(b_saddle)|)``, times 1/2 for
    ``direction="fwd"`` because the trivial minimum ``b = 0`` sits on a reflecting wall.
    Absent (``None`` / masked) where there is no barrier (``gamma >= gamma_sp`` or
    ``n_layers = 2``); ``inf`` where the time exceeds the float range (``dU/T > ~700``).

    Parameters
    ----------
    n_layers : int >= 2
        Number of weight matrices.
    c : float or array
        Feature strength ``E[xy]`` of the mode (``eta`` in the paper convention).
    gamma : float or array
        Coupling (the weight decay in the paper convention).
    temperature : float > 0 or array
        Temperature in the convention's energy units.
    a : float > 0 or array, default 1
        Input variance ``E[x^2]`` of the mode.
    direction : {"fwd", "bwd"}
        ``"fwd"``: from the trivial state to the learned minimum; ``"bwd"``: back.
    convention : {"canonical", "paper"} or Convention
        Units of the inputs and of the result.

    Returns
    -------
    float, None or masked array
        The mean escape time in the convention's time unit.
    """
    check_choice(direction, "direction", _DIRECTIONS)
    L = landscape(n_layers, c, gamma, a, convention=convention)
    conv = L.convention
    T = _temperature(temperature, conv)
    Lc = _canonical(L)
    exists = np.isfinite(Lc["barrier_fwd"])  # absent barriers are NaN in the canonical view
    if direction == "fwd":
        dU, curv_from, wall = Lc["barrier_fwd"], Lc["curvature_trivial"], 0.5
    else:
        dU, curv_from, wall = Lc["barrier_bwd"], Lc["curvature_min"], 1.0
    with np.errstate(over="ignore", invalid="ignore"):
        tau = wall * 2 * np.pi * np.exp(dU / T) / np.sqrt(curv_from * np.abs(Lc["curvature_saddle"]))
    return present(conv.time_from_canonical(tau), exists)


def eyring_kramers_time(n_layers, c, gamma, temperature, a=1.0, *, direction="fwd", width=1,
                        convention="canonical"):
    """Mean escape time in the full weight space (Eyring-Kramers / Langer, Morse-Bott form).

    ``rate = |lambda_-| / (2 pi) * (V_s / V_m) * (2 pi T)^((k_m - k_s)/2)
    * sqrt(det' H_m / |det' H_s|) * exp(-dU / T)``

    with the Hessian spectra of :func:`landscape` (``det'`` over non-zero eigenvalues), the
    orbit dimensions ``k`` and orbit volumes ``V`` of the minimum and saddle manifolds
    (for width 1, ``V`` counts the ``2^(n-1)`` equivalent points). This contains the
    saddle multiplicity, the mobility factor ``n`` of the balanced coordinate, the
    entropic factor of the unbalancing directions and, for width ``h > 1``, the
    ``T^(k/2)`` orbit factor of forward escape (leading order in ``T / (gamma b_s^2)``).

    Parameters
    ----------
    n_layers, c, gamma, temperature, a, direction
        The mode, its temperature and the direction of escape, as in :func:`kramers_time`.
    width : int >= 1, default 1
        Hidden width ``h`` of the network.
    convention : {"canonical", "paper"} or Convention
        Units of the inputs and of the result.

    Returns
    -------
    float, None or masked array
        The mean escape time in the convention's time unit; absent where there is no barrier.
    """
    check_choice(direction, "direction", _DIRECTIONS)
    L = landscape(n_layers, c, gamma, a, width=width, convention=convention)
    conv = L.convention
    T = _temperature(temperature, conv)
    Lc = _canonical(L)
    exists = np.isfinite(Lc["barrier_fwd"])  # absent barriers are NaN in the canonical view
    shape = np.shape(exists)
    k = L.orbit_dim
    hs = Lc["hessian_saddle"]
    if hs is None:
        return present(np.full(shape, np.nan), np.zeros(shape, dtype=bool))
    lam_minus = np.abs(Lc["curvature_saddle"]) / L.n_layers
    logdet_s = _log_abs_det_nonzero(hs)
    if direction == "fwd":
        dU = Lc["barrier_fwd"]
        logdet_m = _log_abs_det_nonzero(Lc["hessian_trivial"])
        k_m, vol_m = 0, 1.0
        vol_s = Lc["orbit_volume_saddle"]
    else:
        dU = Lc["barrier_bwd"]
        logdet_m = _log_abs_det_nonzero(Lc["hessian_min"])
        k_m, vol_m = k, Lc["orbit_volume_min"]
        vol_s = Lc["orbit_volume_saddle"]
    log_rate = (np.log(lam_minus / (2 * np.pi)) + np.log(vol_s / vol_m)
                + 0.5 * (k_m - k) * np.log(2 * np.pi * T) + 0.5 * (logdet_m - logdet_s) - dU / T)
    with np.errstate(over="ignore", invalid="ignore"):
        tau = np.exp(-log_rate)
    return present(conv.time_from_canonical(tau), exists)


def _log_abs_det_nonzero(spec):
    ev = np.asarray(np.ma.filled(np.ma.asarray(spec.eigenvalues, dtype=float), np.nan), dtype=float)
    mult = np.asarray(spec.multiplicities)
    keep = [j for j, lab in enumerate(spec.labels) if lab != "orbit"]  # det' skips the zero modes
    return np.sum(mult[keep] * np.log(np.abs(ev[..., keep])), axis=-1)


def _canonical(L):
    """Canonical-unit numbers of a Landscape as plain float arrays (NaN where absent)."""
    kappa = L.convention.kappa
    out = {}
    for key in ("barrier_fwd", "barrier_bwd", "curvature_trivial", "curvature_saddle", "curvature_min",
                "orbit_volume_saddle", "orbit_volume_min", "b_saddle", "b_min"):
        v = getattr(L, key)
        arr = np.asarray(np.ma.filled(np.ma.asarray(v if v is not None else np.nan, dtype=float), np.nan))
        if key.startswith(("barrier", "curvature")):
            arr = arr / kappa
        out[key] = arr
    for key in ("hessian_trivial", "hessian_saddle", "hessian_min"):
        spec = getattr(L, key)
        if spec is None:
            out[key] = None
            continue
        ev = np.ma.filled(np.ma.asarray(spec.eigenvalues, dtype=float), np.nan) / kappa
        out[key] = type(spec)(ev, spec.multiplicities, spec.labels)
    return out


# ---------------------------------------------------------------------------------------
# Exact one-dimensional mean first-passage time
# ---------------------------------------------------------------------------------------
def _log_cumulative_simpson(log_f, x):
    """``log int_{x[0]}^{x[k]} exp(log_f)`` for every node ``k`` (``-inf`` at ``k = 0``).

    The sub-interval integrals of :func:`scipy.integrate.cumulative_simpson` (the parabola
    through ``x[2i], x[2i+1], x[2i+2]`` integrated over each of its two intervals), each
    scaled by the largest of its three values, summed with a running shift
    (``logaddexp.accumulate``): nothing underflows however far ``log_f`` varies. Negative
    pieces (steep data) are summed apart; a cumulative value that is not positive gives
    ``-inf``, as ``log(max(inner, 0))`` would.
    """
    n = len(x)
    dx = np.diff(x)
    pairs = np.arange(0, n - 2, 2)               # triples whose two intervals are both used
    i = pairs if n % 2 else np.append(pairs, n - 3)   # even node count: the last interval from the last triple
    f = np.stack([log_f[i], log_f[i + 1], log_f[i + 2]])
    top = np.max(f, axis=0)
    y1, y2, y3 = np.exp(f - top)
    lo = _parabola_piece(dx[i], dx[i + 1], y1, y2, y3)        # [x_i, x_{i+1}]
    hi = _parabola_piece(dx[i + 1], dx[i], y3, y2, y1)        # [x_{i+1}, x_{i+2}]
    k = len(pairs)
    scaled, shift = np.empty(n - 1), np.empty(n - 1)
    scaled[0:2 * k:2], scaled[1:2 * k:2] = lo[:k], hi[:k]
    shift[0:2 * k:2], shift[1:2 * k:2] = top[:k], top[:k]
    if n % 2 == 0:
        scaled[-1], shift[-1] = hi[-1], top[-1]
    with np.errstate(divide="ignore"):
        log_pos = np.log(np.where(scaled > 0, scaled, 0.0)) + shift
        log_neg = np.log(np.where(scaled < 0, -scaled, 0.0)) + shift
    cum_pos = np.logaddexp.accumulate(log_pos)
    cum_neg = np.logaddexp.accumulate(log_neg)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = cum_pos + np.log1p(-np.exp(cum_neg - cum_pos))
    out = np.where(cum_neg < cum_pos, out, -np.inf)
    return np.concatenate([[-np.inf], out])


def _parabola_piece(x21, x32, f1, f2, f3):
    """Integral over ``[x1, x2]`` of the parabola through ``(x1, f1), (x2, f2), (x3, f3)``
    (formula (8) of Cartwright, as in :func:`scipy.integrate.cumulative_simpson`)."""
    x21_x31 = x21 / (x21 + x32)
    q = x21_x31 * (x21 / x32)
    return x21 / 6 * ((3 - x21_x31) * f1 + (3 + q + x21_x31) * f2 - q * f3)


def mfpt_1d(potential, x0, x_target, x_ref, temperature, *, n_grid=20001, return_log=False):
    """Exact mean first-passage time of ``dx = -U'(x) dt + sqrt(2T) dW`` from ``x0`` to ``x_target``.

    ``x_ref`` is a reflecting boundary on the far side of ``x0`` (``x_ref <= x0 <
    x_target`` or the mirror image ``x_target < x0 <= x_ref``)::

        tau = (1/T) int_{x0}^{x_target} dy e^{U(y)/T} int_{x_ref}^{y} dz e^{-U(z)/T}

    Both integrals are evaluated on one grid with Simpson's rule, the inner one
    cumulatively and entirely in log space (each piece scaled by its own largest value and
    summed with a running shift), so nothing underflows however far the target lies below
    the start: the result stays accurate for barriers and well depths of thousands of ``T``.
    ``return_log=True`` returns ``log(tau)``, which never overflows.

    Parameters
    ----------
    potential : callable
        Vectorised ``U(x)`` (array in, array out).
    x0, x_target, x_ref : float
        Start, absorbing target and reflecting boundary.
    temperature : float > 0
        Temperature ``T``.
    n_grid : int >= 101, default 20001
        Grid points (made odd) from ``x_ref`` to ``x_target``.
    return_log : bool, default False
        Return ``log(tau)`` instead of ``tau``.

    Returns
    -------
    float
        ``tau`` (``inf`` beyond the float range) or ``log(tau)``.
    """
    T = float(check_positive(temperature, "temperature"))
    x0, x_target, x_ref = (float(as_float_array(v, name)) for v, name in
                           ((x0, "x0"), (x_target, "x_target"), (x_ref, "x_ref")))
    if isinstance(n_grid, bool) or int(n_grid) != n_grid or n_grid < 101:
        raise ValueError(f"n_grid must be an integer >= 101, got {n_grid!r}")
    n_grid = int(n_grid) | 1  # odd: Simpson on an even number of intervals
    if x_target > x0 >= x_ref:
        U = potential
    elif x_target < x0 <= x_ref:
        def U(x):  # mirror image
            return potential(-x)
        x0, x_target, x_ref = -x0, -x_target, -x_ref
    else:
        raise ValueError("need x_ref <= x0 < x_target or x_target < x0 <= x_ref "
                         f"(got x0={x0}, x_target={x_target}, x_ref={x_ref})")
    # Grid from the reflecting wall to the target, with x0 on a node.
    n_inner = max(3, int(round((n_grid - 1) * (x0 - x_ref) / (x_target - x_ref))) // 2 * 2 + 1) \
        if x0 > x_ref else 1
    n_outer = max(3, (n_grid - n_inner) // 2 * 2 + 1)
    z_in = np.linspace(x_ref, x0, n_inner) if n_inner > 1 else np.array([x0])
    y = np.linspace(x0, x_target, n_outer)
    grid = np.concatenate([z_in[:-1], y])
    u = np.asarray(potential(grid) if U is potential else U(grid), dtype=np.float64) / T
    # inner: log int_{x_ref}^{x} e^{-u}, accumulated in log space (no global shift that could
    # underflow where u lies far above its minimum)
    log_inner = _log_cumulative_simpson(-u, grid)
    j0 = len(z_in) - 1
    log_outer = u[j0:] + log_inner[j0:]
    m = np.max(log_outer)
    integral = simpson(np.exp(log_outer - m), x=grid[j0:])
    log_tau = m + np.log(integral) - np.log(T)
    if return_log:
        return float(log_tau)
    with np.errstate(over="ignore"):
        return float(np.exp(log_tau))  # inf beyond the float range: use return_log=True there


def mean_first_passage_time(n_layers, c, gamma, temperature, a=1.0, *, direction="fwd",
                            convention="canonical", n_grid=20001, return_log=False):
    """Exact 1D mean first-passage time on the reduced potential ``U(b)``.

    ``direction="fwd"``: from the trivial state ``b = 0`` (a reflecting wall, since
    ``b = |w|``) to the learned minimum ``b_min``. ``direction="bwd"``: from ``b_min`` to
    ``b = 0`` with reflection far to the right (where ``U`` exceeds ``U(b_min)`` by
    ``60 T``). Mobility 1, as in :func:`kramers_time`; their ratio tends to 1 as
    ``T -> 0``: backward with an ``O(T / dU)`` correction; forward the trivial minimum
    sits on the wall, where the ``-2|c| b^n`` term adds an ``O((T/dU)^(n/2 - 1))``
    correction (``O(sqrt(T/dU))`` for ``n_layers = 3``; see docs/theory.md).

    Parameters
    ----------
    n_layers, c, gamma, temperature, a, direction
        The mode, its temperature and the direction of escape, as in :func:`kramers_time`.
    convention : {"canonical", "paper"} or Convention
        Units of the inputs and of the result.
    n_grid : int >= 101, default 20001
        Quadrature grid of :func:`mfpt_1d`.
    return_log : bool, default False
        Return ``log(tau)`` (accurate where ``tau`` overflows, ``dU/T > ~700``).

    Returns
    -------
    float, None or masked array
        ``tau`` or ``log(tau)`` in the convention's time unit; absent where there is no barrier.
    """
    check_choice(direction, "direction", _DIRECTIONS)
    L = landscape(n_layers, c, gamma, a, convention=convention)
    conv = L.convention
    T_all = _temperature(temperature, conv)
    Lc = _canonical(L)
    n = L.n_layers
    pot = compiled_potential(n)
    shape = np.broadcast(Lc["b_min"], Lc["b_saddle"], T_all).shape
    c_abs = np.broadcast_to(np.abs(np.asarray(L.c, dtype=float)), shape)
    a_arr = np.broadcast_to(np.asarray(L.a, dtype=float), shape)
    g = np.broadcast_to(conv.gamma_to_canonical(np.asarray(L.gamma, dtype=float)), shape)
    b_s = np.broadcast_to(Lc["b_saddle"], shape)
    b_m = np.broadcast_to(Lc["b_min"], shape)
    T_b = np.broadcast_to(T_all, shape)
    log_tau = np.full(shape, np.nan)
    for idx in np.ndindex(shape):
        if np.isfinite(b_s[idx]):
            log_tau[idx] = _reduced_log_mfpt(pot, (a_arr[idx], c_abs[idx], g[idx]), b_m[idx], T_b[idx],
                                             direction, n_grid)
    exists = np.isfinite(b_s)
    if return_log:
        return present(log_tau + np.log(conv.time_from_canonical(1.0)), exists)
    with np.errstate(over="ignore"):
        tau = np.exp(log_tau)
    return present(conv.time_from_canonical(tau), exists)


def _reduced_log_mfpt(pot, args, b_min, T, direction, n_grid):
    """``log`` of the exact MFPT on the reduced potential ``pot.U(b, *args)`` (canonical units)."""
    def U(x):
        return pot.U(x, *args)

    if direction == "fwd":
        return mfpt_1d(U, 0.0, b_min, 0.0, T, n_grid=n_grid, return_log=True)
    level = U(b_min) + 60.0 * T
    x_ref = b_min
    step = max(b_min, 1e-3) * 0.05
    while U(x_ref) < level:
        x_ref += step
    return mfpt_1d(U, b_min, 0.0, x_ref, T, n_grid=n_grid, return_log=True)
