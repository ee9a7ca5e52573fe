"""Engines for splitting: advance a batch of states with their own streams, read a coordinate.

An engine is anything with

* ``dim``: the state's length;
* ``coordinate(x) -> xi``: the reaction coordinate, oriented so that the target is *up*;
* ``streams(entropy, indices) -> ndarray``: fresh random streams keyed by ``(entropy, index)``;
* ``advance(x, streams, n_steps, low) -> (x_end, steps, stopped, xi_path, path)``: up to
  ``n_steps`` steps, stopping a trajectory when ``xi <= low`` (``low = -inf``: never),
  streams updated in place; ``xi_path``/``path`` (n, n_steps[, dim]) NaN after the stop;
* ``time_unit``: the time of one step (``dt``).
* ``batch_streams`` (optional, default False): True when the draws of one ``advance`` depend
  on which trajectories it advances together (the trainers draw a call's minibatches from one
  ``SeedSequence`` of the batch's stream keys); AMS then advances each run alone, so that a
  run does not depend on the other runs of a worker's share.

:func:`excursions` runs such an engine until every trajectory has gone down to ``low`` or
up to ``high``, chunk by chunk, and keeps what splitting needs: the running maxima of the
coordinate with the time and state at which each was first reached.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..langevin import Threshold, advance, new_streams, order_values

__all__ = ["Excursions", "LangevinEngine", "excursions"]

#: cap on the values of one chunk's path (n * n_steps * dim)
_MAX_CHUNK_VALUES = 20_000_000
#: below this many trajectory-steps a call runs on one thread
_PARALLEL_WORK = 200_000


class LangevinEngine:
    """The Langevin engine of :mod:`phasetools.langevin` as a splitting engine.

    Parameters
    ----------
    potential : phasetools.langevin.Potential
        The potential; its ``order`` is the reaction coordinate.
    sign : {+1, -1}
        +1 when the target lies above the start in the order parameter, -1 below.
    temperature : float or None
        Additive noise (give this or ``noise``).
    noise : phasetools.langevin.SGDNoise or None
        SGD-like noise.
    dt : float
        Time step.
    n_threads : int or None
        numba threads.
    """

    def __init__(self, potential, sign, *, temperature=None, noise=None, dt, n_threads=None):
        self.potential, self.sign = potential, float(sign)
        self.temperature, self.noise, self.dt, self.n_threads = temperature, noise, float(dt), n_threads
        self.dim = potential.dim
        self.time_unit = self.dt

    def streams(self, entropy, indices):
        """Fresh streams keyed by ``(entropy, index)`` (:func:`phasetools.langevin.new_streams`)."""
        return new_streams(entropy, indices)

    def coordinate(self, x):
        """``sign * order(x)`` at states ``x (..., dim)``."""
        return self.sign * order_values(self.potential, x)

    def advance(self, x, streams, n_steps, low):
        """Advance ``x`` by up to ``n_steps``, stopping at ``sign * order <= low``."""
        stop = None
        if np.isfinite(low):
            stop = Threshold(self.sign * low, "down" if self.sign > 0 else "up")
        # a parallel region costs far more than a small batch on a busy machine: one thread
        # for small batches (results do not depend on the thread count)
        threads = 1 if x.shape[0] * n_steps < _PARALLEL_WORK else self.n_threads
        out = advance(self.potential, x, streams, temperature=self.temperature, noise=self.noise, dt=self.dt,
                      n_steps=n_steps, stop=stop, n_threads=threads)
        return out.x, out.steps, out.stopped | out.nonfinite, self.sign * out.order, out.path


@dataclass
class Excursions:
    """Where a batch of excursions ended (see :func:`excursions`).

    Parameters
    ----------
    x : ndarray (n, dim)
        End state (at the first step at or above ``high`` when that was reached).
    steps : ndarray (n,)
        Steps from the start to the end.
    outcome : ndarray (n,) of int8
        0 still below ``high`` and above ``low`` after ``max_steps`` (censored), 1 down at
        ``low``, 2 up at ``high``.
    cost : int
        Steps the engine integrated (those after an end inside a chunk included).
    records : list of (values, steps, states) or None
        Per trajectory the strict running maxima of the coordinate after the start, the
        step at which each was reached and the state there, each a list of per-chunk
        arrays (concatenate to use).
    paths : list of list of ndarray or None
        With ``keep_paths``: per trajectory the states after each of its steps up to its
        end, as per-chunk arrays ``(steps, dim)``.
    """

    x: np.ndarray
    steps: np.ndarray
    outcome: np.ndarray
    cost: int
    records: list | None
    paths: list | None = None


def excursions(engine, x, streams, *, low, high, max_steps, chunk=256, track=False, start_max=None,
               keep_paths=False) -> Excursions:
    """Run each trajectory from ``x`` until its coordinate is ``<= low`` or ``>= high``.

    Chunks of steps are run with the engine's own stop at ``low``; ``high`` is found on
    the chunk's path. The chunk doubles (up to a memory cap) while trajectories run on.

    Parameters
    ----------
    engine : LangevinEngine or any engine (see the module docstring)
    x : array (n, dim)
        Start states.
    streams : ndarray (n, 4)
        Their streams (updated in place).
    low, high : float
        The two absorbing levels of the coordinate (``-inf``/``inf``: none).
    max_steps : int
        Steps after which a trajectory is censored.
    chunk : int
        First chunk length.
    track : bool
        Keep the running maxima (for cloning).
    start_max : array (n,), optional
        Running maximum at the start (default: the coordinate at ``x``).
    keep_paths : bool, default False
        Keep every trajectory's states after each step (``Excursions.paths``).

    Returns
    -------
    Excursions
    """
    x = np.array(x, dtype=float, copy=True)
    n = x.shape[0]
    steps = np.zeros(n, dtype=np.int64)
    outcome = np.zeros(n, dtype=np.int8)
    cmax = (engine.coordinate(x) if start_max is None else np.asarray(start_max, dtype=float)).copy()
    records = [([], [], []) for _ in range(n)] if track else None
    paths = [[] for _ in range(n)] if keep_paths else None
    active = np.arange(n)
    cost = 0
    while active.size:
        c = int(max(1, min(chunk, getattr(engine, "max_chunk", chunk),
                           _MAX_CHUNK_VALUES // max(1, active.size * engine.dim))))
        st = streams[active]
        xe, ns, stopped, xi, path = engine.advance(x[active], st, c, low)
        streams[active] = st
        cost += int(ns.sum())
        up = np.nan_to_num(xi, nan=-np.inf) >= high
        hit = up.any(axis=1)
        first = np.where(hit, up.argmax(axis=1), -1)
        if track:
            _track(records, active, cmax, xi, path, steps, np.where(hit, first + 1, ns))
        for j in np.nonzero(hit)[0]:
            xe[j] = path[j, first[j]]
        ns = np.where(hit, first + 1, ns)
        if keep_paths:
            for j, t in enumerate(active.tolist()):
                paths[t].append(np.array(path[j, :ns[j]]))
        x[active] = xe
        steps[active] += ns
        outcome[active[hit]] = 2
        down = ~hit & stopped
        outcome[active[down]] = 1
        done = hit | down | (steps[active] >= max_steps)
        active = active[~done]
        chunk = 2 * c
    return Excursions(x, steps, outcome, cost, records, paths)


def _track(records, active, cmax, xi, path, steps0, lengths):
    """Append each trajectory's new strict running maxima of this chunk to ``records``
    (lists of per-chunk pieces: values, steps, states)."""
    vals = np.where(np.arange(xi.shape[1])[None, :] < lengths[:, None], xi, -np.inf)
    vals[np.isnan(vals)] = -np.inf
    prev = np.maximum.accumulate(np.concatenate([cmax[active][:, None], vals[:, :-1]], axis=1), axis=1)
    rows, cols = np.nonzero(vals > prev)
    if rows.size == 0:
        return
    v, xs = vals[rows, cols], path[rows, cols]
    ts = steps0[active[rows]] + cols + 1
    cuts = np.flatnonzero(np.diff(rows)) + 1
    starts = np.concatenate([[0], cuts])
    ends = np.concatenate([cuts, [rows.size]])
    for a, b in zip(starts.tolist(), ends.tolist()):
        t = active[rows[a]]
        rv, rt, rx = records[t]
        rv.append(v[a:b])
        rt.append(ts[a:b])
        rx.append(xs[a:b])
        cmax[t] = v[b - 1]
