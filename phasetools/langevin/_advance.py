"""``advance``: move a batch of given states by up to ``n_steps`` with given random streams.

The engine capability that splitting methods (``phasetools.rare``) need and ``simulate``
does not offer: ``simulate`` starts every trajectory from fresh streams keyed by
``(entropy, index)``; ``advance`` continues the caller's own xoshiro256** states
(``streams``, updated in place), so a trajectory can be advanced piece by piece, stopped,
copied (a clone takes the state of its parent and a fresh stream) and continued, and it
returns the order parameter after every step, from which the caller reads first passages
of any level and running maxima.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numba
import numpy as np
import sympy as sp

from .._rng import ZIG_F, ZIG_K, ZIG_W, seed_states, trajectory_keys
from .._validation import as_float_array, check_positive
from ._codegen import kernel_module, numpy_functions
from ._potentials import Potential
from ._simulate import STATUS_ESCAPED, STATUS_NONFINITE, SGDNoise, Threshold
from ._structured import structured_kernel

__all__ = ["Advanced", "advance", "new_streams", "order_values"]


@dataclass(frozen=True)
class Advanced:
    """The outcome of :func:`advance` (plain arrays, not a stored result).

    Parameters
    ----------
    x : ndarray (n, dim)
        State at the stop, or after ``n_steps``.
    steps : ndarray (n,) of int64
        Steps taken (``<= n_steps``).
    stopped : ndarray (n,) of bool
        The stop condition was met (at step ``steps``).
    nonfinite : ndarray (n,) of bool
        Stopped by a non-finite value.
    order : ndarray (n, n_steps)
        The order parameter after each step (column ``s`` after step ``s + 1``), NaN after
        the stop.
    path : ndarray (n, n_steps, dim)
        The state after each step, NaN after the stop.
    """

    x: np.ndarray
    steps: np.ndarray
    stopped: np.ndarray
    nonfinite: np.ndarray
    order: np.ndarray
    path: np.ndarray


def new_streams(entropy: int, indices) -> np.ndarray:
    """Fresh xoshiro256** states for :func:`advance`, keyed by ``(entropy, index)``.

    Parameters
    ----------
    entropy : int >= 0
        The run's entropy (e.g. :func:`phasetools.langevin.entropy_of` of an ``rng``).
    indices : array of int
        One stream per index; the same ``(entropy, index)`` always gives the same stream,
        the one ``simulate(..., rng=entropy)`` gives trajectory ``index``.

    Returns
    -------
    ndarray (n, 4) of uint64
        The generator states, to pass to :func:`advance` (which updates them in place).
    """
    return seed_states(trajectory_keys(int(entropy), np.asarray(indices, dtype=np.int64)))


def order_values(potential: Potential, x) -> np.ndarray:
    """The potential's order parameter at states ``x (..., dim)``.

    Parameters
    ----------
    potential : Potential
        The potential (its ``order``).
    x : array (..., dim)
        States.

    Returns
    -------
    ndarray (...)
    """
    x = np.asarray(x, dtype=float)
    st = _own_structure(potential)
    if st is not None:   # a network with its own order parameter: the network's products, no sympy
        return _structure_order(st, x)
    return np.broadcast_to(np.asarray(numpy_functions(potential).order(x), dtype=float), x.shape[:-1]).copy()


_OWN: dict = {}


def _own_structure(potential):
    """The potential's ``NetworkStructure`` when ``potential.order`` is the structure's order
    parameter (checked numerically at three random points to 1e-10 relative, since
    ``dataclasses.replace(potential, order=...)`` keeps the structure), else None; memoised
    per potential object (``numpy_functions`` of a wide network builds its Hessian: minutes)."""
    st = getattr(potential, "structure", None)
    if st is None or not isinstance(potential.order, sp.Basic):   # e.g. a callable order: sympy's functions
        return None
    hit = _OWN.get(id(potential))
    if hit is None or hit[0] is not potential:
        if len(_OWN) >= 32:
            _OWN.clear()
        f = sp.lambdify(list(potential.variables), potential.order, modules="numpy")
        th = np.random.default_rng(0).normal(size=(3, st.n_params))
        mine = st.order(th)
        theirs = np.array([float(f(*row)) for row in th])
        same = np.allclose(theirs, mine, rtol=1e-10, atol=1e-12 * float(np.max(np.abs(mine)) + 1e-300))
        hit = _OWN[id(potential)] = (potential, st if same else None)
    return hit[1]


def _structure_order(st, x):
    """``st.order`` at states ``x (..., dim)``, NaN at states with a non-finite weight."""
    flat = x.reshape(-1, x.shape[-1])
    out = np.full(flat.shape[0], np.nan)
    rows = np.isfinite(flat).all(axis=1)
    if rows.any():
        out[rows] = st.order(np.ascontiguousarray(flat[rows]))
    return out.reshape(x.shape[:-1])


_MODULES: dict = {}


def _module(potential, sgd):
    """``kernel_module`` memoised per potential object (generating the source costs ~0.1 s)."""
    key = (id(potential), sgd)
    hit = _MODULES.get(key)
    if hit is None or hit[0] is not potential:
        if len(_MODULES) >= 32:
            _MODULES.clear()
        hit = _MODULES[key] = (potential, kernel_module(potential, sgd=sgd))
    return hit[1]


_STRUCTURED: dict = {}


def _structured(potential, stop, sgd):
    """``structured_kernel(potential, stop, sgd=sgd)`` memoised per potential object and stop order.

    ``potential`` is the caller's (its ``order`` not yet replaced by ``stop.order``): the
    structured kernel compares the stop's order parameter with the network's own and returns
    None (the generated kernel) when they differ; that comparison (sympy) is what the memo saves.
    """
    order = getattr(stop, "order", None)
    key = (id(potential), id(order), sgd, stop is not None)
    hit = _STRUCTURED.get(key)
    if hit is None or hit[0] is not potential or hit[1] is not order:
        if len(_STRUCTURED) >= 32:
            _STRUCTURED.clear()
        hit = _STRUCTURED[key] = (potential, order, structured_kernel(potential, stop, sgd=sgd))
    return hit[2]


def _path_order(structured, potential, path):
    """The order parameter along ``path (n, n_steps, dim)``, NaN where the path is: on the
    structured route by the network's own products (no sympy), else :func:`order_values`."""
    if not structured:
        return order_values(potential, path)
    return _structure_order(structured.structure, path)


def advance(potential: Potential, x, streams, *, temperature=None, noise=None, dt, n_steps, stop=None,
            n_threads=None) -> Advanced:
    """Advance states ``x`` by up to ``n_steps`` Euler-Maruyama steps, continuing ``streams``.

    The same kernel as :func:`phasetools.langevin.simulate` (same scheme, noise and
    reflections: the structured kernel for a ``network(...)`` potential whose stop, if any,
    is on the network's own order parameter, the generated kernel otherwise), but each trajectory continues the caller's random stream, which is
    left, updated, in ``streams``: trajectory ``i`` depends on ``x[i]`` and ``streams[i]``
    only (not on the thread count or the other trajectories). No stability check of ``dt``
    is made here (``simulate`` makes it).

    Parameters
    ----------
    potential : Potential
        The potential; its ``order`` is the order parameter returned (and the stop's, unless
        ``stop.order`` replaces it).
    x : array (n, dim)
        Start states.
    streams : ndarray (n, 4) of uint64
        Generator states (from :func:`new_streams`), updated in place.
    temperature : float > 0, optional
        Additive noise ``sqrt(2 T) dW``. Give either this or ``noise``.
    noise : SGDNoise, optional
        SGD-like noise (``chain``/``network`` potentials).
    dt : float > 0
        Time step.
    n_steps : int >= 1
        Steps at most.
    stop : Threshold, optional
        Stop a trajectory when the order parameter passes the level.
    n_threads : int, optional
        numba threads for this call.

    Returns
    -------
    Advanced
        Final states, steps, stop flags and the path with its order parameter.
    """
    if (temperature is None) == (noise is None):
        raise ValueError("give exactly one of temperature (additive noise) and noise (SGDNoise)")
    if noise is not None and not isinstance(noise, SGDNoise):
        raise ValueError(f"noise must be an SGDNoise, got {type(noise).__name__}")
    if stop is not None and not isinstance(stop, Threshold):
        raise ValueError(f"stop must be a Threshold or None, got {type(stop).__name__}")
    if isinstance(n_steps, (bool, np.bool_)) or int(n_steps) != n_steps or n_steps < 1:
        raise ValueError(f"n_steps must be an integer >= 1, got {n_steps!r}")
    n_steps = int(n_steps)
    dt = float(check_positive(dt, "dt"))
    structured = _structured(potential, stop, noise is not None)   # before stop.order replaces the order
    if stop is not None and stop.order is not None:
        potential = dataclasses.replace(potential, order=stop.order)
    x = np.ascontiguousarray(as_float_array(x, "x"))
    n, d = x.shape[0], potential.dim
    if x.ndim != 2 or x.shape[1] != d:
        raise ValueError(f"x must have shape (n, {d}), got {x.shape}")
    if not (isinstance(streams, np.ndarray) and streams.dtype == np.uint64 and streams.shape == (n, 4)):
        raise ValueError(f"streams must be a uint64 array of shape ({n}, 4) (from new_streams)")
    module = structured or _module(potential, noise is not None)
    if noise is None:
        sigma, mode, scale = float(np.sqrt(2.0 * float(check_positive(temperature, "temperature")) * dt)), 0, 0.0
        sxx = syx = syy = np.zeros((1, 1))
    else:
        sigma, mode = 0.0, 1
        scale = float(2.0 * potential.kappa * np.sqrt(noise.lr * dt * noise.factor / noise.batch_size))
        sxx, syx, syy = (np.ascontiguousarray(a) for a in noise.kernel_moments())
    has_stop = stop is not None
    level = stop.level if has_stop else 0.0
    direction = (1.0 if stop.direction == "up" else -1.0) if has_stop else 1.0
    steps = np.empty(n, dtype=np.int64)
    status = np.empty(n, dtype=np.int8)
    out_x = np.empty((n, d))
    path = np.full((n, n_steps, d), np.nan)
    old = numba.get_num_threads()
    if n_threads is not None:
        numba.set_num_threads(int(n_threads))
    try:
        if n:
            module.run(x, potential.param_values, dt, sigma, mode, scale, sxx, syx, syy, n_steps, has_stop, level,
                       direction, False, 1, streams, ZIG_K, ZIG_W, ZIG_F, steps, status, out_x, path)
    finally:
        numba.set_num_threads(old)
    order = _path_order(structured, potential, path) if n else np.empty((0, n_steps))
    return Advanced(x=out_x, steps=steps, stopped=status == STATUS_ESCAPED, nonfinite=status == STATUS_NONFINITE, order=order, path=path)
