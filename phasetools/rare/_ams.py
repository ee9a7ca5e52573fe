"""Adaptive multilevel splitting (AMS) over a splitting engine, and the mean escape time.

Three stages, each seeded from its own child of the run's root ``SeedSequence``:

1. **levels** (only when not given): walkers equilibrate in the start well; the start set
   ``A`` is the coordinate's median there and the intermediate level ``Sigma`` its
   ``level_quantile`` quantile.
2. **loops** (brute force, cheap): walkers go from the start up to ``Sigma``, then down to
   ``A`` (or up to the target ``B``), and again; this gives the mean time of the first
   leg ``T_first`` (start to ``Sigma``), of a loop ``T_loop`` (``Sigma`` to ``A`` on a failed
   excursion plus ``A`` back to ``Sigma``) and the states where ``Sigma`` is entered.
3. **AMS** (Cerou & Guyader 2007, with the tie handling of Brehier et al. 2016): ``n_runs``
   independent runs, each of ``n_replicas`` excursions started from entrance states and
   run until ``A`` or ``B``; each iteration kills the replicas whose maximum is at or below
   the ``n_kill``-th lowest maximum ``z`` and clones survivors at their first passage above
   ``z`` (a clone copies the state and time there and gets a fresh stream). The estimate of
   ``p = P(B before A | entering Sigma)`` is ``prod_j (1 - K_j / N) * (fraction at B)``,
   unbiased for any ``N``; the reactive time ``T_reac`` (``Sigma`` to ``B`` given success)
   is the mean duration of the replicas that end at ``B``.

Mean escape time (Cerou, Guyader, Lelievre & Pommier 2011, with the first leg apart):
``tau = T_first + (1/p - 1) T_loop + T_reac``.
"""

from __future__ import annotations

import numpy as np

from ._engine import excursions

__all__ = ["ams_batch", "choose_levels", "loops", "merge_batches"]


def choose_levels(engine, x0, *, n_walkers, n_steps, quantile, entropy, target):
    """The start level (median) and ``Sigma`` (``quantile``) of the coordinate in the start well.

    Parameters
    ----------
    engine : splitting engine
    x0 : ndarray (dim,)
        The start.
    n_walkers, n_steps : int
        Walkers, and steps of each (the second half is sampled).
    quantile : float in (0.5, 1)
        Quantile of the coordinate for ``Sigma``.
    entropy : int
        Entropy of the walkers' streams.
    target : float
        The target level (both levels must lie below it).

    Returns
    -------
    (float, float, int)
        ``start``, ``level`` and the steps spent.
    """
    x = np.repeat(np.asarray(x0, dtype=float)[None, :], n_walkers, axis=0)
    streams = engine.streams(entropy, np.arange(n_walkers))
    _, steps, _, xi, _ = engine.advance(x, streams, int(n_steps), -np.inf)
    sample = xi[:, int(n_steps) // 2:]
    sample = sample[np.isfinite(sample)]
    start, level = np.quantile(sample, [0.5, quantile])
    if not start < level < target:
        raise ValueError(f"the start well's coordinate quantiles ({start:.4g}, {level:.4g}) do not lie below the "
                         f"target {target:.4g}: give start= and level= explicitly")
    return float(start), float(level), int(steps.sum())


def loops(engine, x0, *, start, level, target, n_walkers, n_rounds, max_steps, entropy):
    """Brute-force loops between the start set and ``Sigma`` (stage 2 of the module docstring).

    Parameters
    ----------
    engine : splitting engine
    x0 : ndarray (dim,)
        The start state.
    start, level, target : float
        Levels of ``A``, ``Sigma`` and ``B`` of the oriented coordinate.
    n_walkers, n_rounds : int
        Walkers and rounds (one round: up to ``Sigma``, then down to ``A`` or ``B``).
    max_steps : int
        Step budget of one leg.
    entropy : int
        Entropy of the walkers' streams.

    Returns
    -------
    dict
        ``first`` (steps of the legs from ``x0`` to ``Sigma``), ``up`` (``A`` to ``Sigma``),
        ``down`` (failed ``Sigma`` to ``A``), ``entrance`` (states entering ``Sigma``),
        ``n_success`` (excursions reaching ``B`` first), ``cost`` (steps integrated).
    """
    x = np.repeat(np.asarray(x0, dtype=float)[None, :], n_walkers, axis=0)
    streams = engine.streams(entropy, np.arange(n_walkers))
    fresh = np.ones(n_walkers, dtype=bool)
    out = {"first": [], "up": [], "down": [], "entrance": [], "n_success": 0, "cost": 0}
    for _ in range(n_rounds):
        up = excursions(engine, x, streams, low=-np.inf, high=level, max_steps=max_steps)
        if np.any(up.outcome != 2):
            raise ValueError(f"the intermediate level {level:.4g} was not reached within {max_steps} steps: "
                             "lower it or raise max_steps")
        out["first"].append(up.steps[fresh])
        out["up"].append(up.steps[~fresh])
        out["entrance"].append(up.x)
        down = excursions(engine, up.x, streams, low=start, high=target, max_steps=max_steps)
        if np.any(down.outcome == 0):
            raise ValueError(f"an excursion from the intermediate level stayed between the start level {start:.4g} "
                             f"and the target for {max_steps} steps: raise max_steps")
        out["cost"] += up.cost + down.cost
        ok = down.outcome == 1
        out["down"].append(down.steps[ok])
        out["n_success"] += int(np.sum(~ok))
        x = np.where(ok[:, None], down.x, np.asarray(x0, dtype=float)[None, :])
        fresh = ~ok
    return {k: (np.concatenate(v) if isinstance(v, list) else v) for k, v in out.items()}


class _Run:
    """One AMS run's replicas: scores, running-maximum records, ends at ``B``.

    A replica's records are kept as the pieces :func:`excursions` returns and joined only
    when the replica is chosen as a parent (most replicas are killed first). With
    ``keep_paths`` each replica also keeps its whole path from the entrance state (its
    ancestors' up to the branching step, then its own), as pieces."""

    def __init__(self, n, rng, index, keep_paths=False):
        self.rng, self.index, self.n_clones = rng, index, 0
        self.score = np.empty(n)
        self.records = [None] * n
        self.paths = [None] * n if keep_paths else None
        self.t_end = np.full(n, np.nan)   # steps from the entrance to B (NaN: not at B)
        self.log_weight, self.n_iter, self.done, self.n_censored = 0.0, 0, False, 0
        self.levels, self.log_weights = [], []   # per iteration: the level z and ln prod (1 - K/N)

    def path(self, i, t=None):
        """Replica ``i``'s states at steps ``0 ... t`` from the entrance (all when ``t`` is None)."""
        pieces = self.paths[i]
        if len(pieces) > 1:
            pieces = self.paths[i] = [np.concatenate(pieces)]
        return pieces[0] if t is None else pieces[0][:t + 1]

    def branch(self, i, z):
        """Replica ``i``'s first record above ``z``: ``(state, step, value)``.

        The values are joined on the first call (cached); the state is looked up in its piece."""
        rec = self.records[i]
        if isinstance(rec, list):
            v0, t0, x0, (vs, ts, xs) = rec
            rec = self.records[i] = (np.concatenate([[v0], *vs]) if vs else np.array([v0]), t0, x0, ts, xs)
        values, t0, x0, ts, xs = rec
        j = int(values.searchsorted(z, side="right"))
        if j == 0:
            return x0, t0, float(values[0])
        k = j - 1
        for t_piece, x_piece in zip(ts, xs):
            if k < t_piece.size:
                return x_piece[k], t0 + int(t_piece[k]), float(values[j])
            k -= t_piece.size
        raise RuntimeError("record index out of range")   # unreachable: values and pieces have equal lengths


def ams_batch(engine, entrance, *, start, target, n_replicas, n_kill, n_runs, max_steps, chunk, run_seeds,
              stream_entropy, progress=None, run_indices=None, keep_paths=False):
    """``n_runs`` independent AMS runs, advanced together (stage 3 of the module docstring).

    Parameters
    ----------
    engine : splitting engine
    entrance : ndarray (m >= n_runs, dim)
        States entering ``Sigma``; run ``r`` draws its replicas' starts (with replacement)
        from the ``r``-th of ``n_runs`` equal blocks.
    start, target : float
        Levels of ``A`` and ``B``.
    n_replicas, n_kill, n_runs : int
        Replicas per run ``N``, replicas killed per iteration ``k`` (at least; ties are
        killed together) and independent runs.
    max_steps : int
        Step budget of one excursion (a censored one keeps its maximum as its score).
    chunk : int
        First chunk of steps of an excursion.
    run_seeds : list of numpy.random.SeedSequence
        One per run (all ``n_runs`` of them): its start states and parent choices.
    stream_entropy : int
        Entropy of the replicas' streams; run ``r``'s ``i``-th replica (in order of
        creation) has stream index ``r * 2**40 + i``.
    progress : callable, optional
        Called with the number of runs finished after every iteration.
    run_indices : sequence of int, optional
        Only these runs (default all): a worker's share. Each run depends only on its own
        seed, block and stream indices, so any split gives the same runs.
    keep_paths : bool, default False
        Keep every replica's path, and return the reactive ones.

    Returns
    -------
    dict
        Per run (in the order of ``run_indices``): ``p`` (estimate), ``t_reactive`` (mean
        steps from ``Sigma`` to ``B`` given success), ``n_iterations``, ``n_censored``,
        ``final_fraction``, ``extinct``, ``levels`` and ``log_weights`` (lists of per-iteration
        arrays: the level and ``ln prod (1 - K_j / N)`` after it), ``reactive`` (list of lists
        of paths ``(steps + 1, dim)`` from the entrance state to ``B``; empty lists unless
        ``keep_paths``); and ``cost`` (steps integrated).
    """
    if len(run_seeds) != n_runs:
        raise ValueError(f"run_seeds must hold n_runs = {n_runs} seeds, got {len(run_seeds)}")
    indices = range(n_runs) if run_indices is None else [int(r) for r in run_indices]
    runs, starts = [], []
    # each run draws from its own block of entrance states, so that the runs are independent
    # and their spread includes the sampling of the entrance states
    blocks = np.array_split(np.arange(entrance.shape[0]), n_runs)
    for k, r in enumerate(indices):
        rng = np.random.Generator(np.random.PCG64(run_seeds[r]))
        runs.append(_Run(n_replicas, rng, r, keep_paths))
        pick = blocks[r][rng.integers(blocks[r].size, size=n_replicas)]
        starts += [(k, i, entrance[pick[i]], 0, None) for i in range(n_replicas)]
    launch = dict(start=start, target=target, max_steps=max_steps, chunk=chunk)
    cost = _launch_runs(engine, runs, starts, stream_entropy, **launch)
    while True:
        clones = []
        for k, run in enumerate(runs):
            if not run.done:
                clones += _iterate(run, k, n_kill, target)
        if progress is not None:
            progress(sum(run.done for run in runs))
        if not clones:
            break
        cost += _launch_runs(engine, runs, clones, stream_entropy, **launch)
    return _collect(runs, cost)


def _collect(runs, cost):
    """The per-run outputs of :func:`ams_batch`."""
    out = {k: [] for k in ("p", "t_reactive", "n_iterations", "n_censored", "final_fraction", "extinct")}
    levels, log_weights, reactive = [], [], []
    for run in runs:
        at_b = np.isfinite(run.t_end)
        frac = float(np.mean(at_b))
        out["p"].append(np.exp(run.log_weight) * frac)
        out["t_reactive"].append(float(np.mean(run.t_end[at_b])) if at_b.any() else np.nan)
        out["n_iterations"].append(run.n_iter)
        out["n_censored"].append(run.n_censored)
        out["final_fraction"].append(frac)
        out["extinct"].append(not at_b.any())
        levels.append(np.asarray(run.levels, dtype=float))
        log_weights.append(np.asarray(run.log_weights, dtype=float))
        reactive.append([run.path(i) for i in np.nonzero(at_b)[0]] if run.paths is not None else [])
    out = {k: np.asarray(v) for k, v in out.items()}
    out.update(levels=levels, log_weights=log_weights, reactive=reactive, cost=cost)
    return out


def merge_batches(parts):
    """Join the outputs of :func:`ams_batch` over disjoint sets of runs (in the given order).

    Parameters
    ----------
    parts : list of dict
        Outputs of :func:`ams_batch`.

    Returns
    -------
    dict
        As one :func:`ams_batch` output over all their runs.
    """
    out = {k: np.concatenate([p[k] for p in parts]) for k in ("p", "t_reactive", "n_iterations", "n_censored",
                                                               "final_fraction", "extinct")}
    for k in ("levels", "log_weights", "reactive"):
        out[k] = [v for p in parts for v in p[k]]
    out["cost"] = int(sum(p["cost"] for p in parts))
    return out


def _iterate(run, r, n_kill, target):
    """One AMS iteration of ``run``: the level, the kills and the clones to launch."""
    z = np.partition(run.score, n_kill - 1)[n_kill - 1]
    if z >= target:
        run.done = True
        return []
    killed = np.nonzero(run.score <= z)[0]
    survivors = np.nonzero(run.score > z)[0]
    n = run.score.size
    if survivors.size == 0:       # extinction: every replica at the same maximum
        run.log_weight, run.done = -np.inf, True
        return []
    run.log_weight += np.log1p(-killed.size / n)
    run.n_iter += 1
    run.levels.append(float(z))
    run.log_weights.append(run.log_weight)
    parents = survivors[run.rng.integers(survivors.size, size=killed.size)]
    clones = []
    for i, p in zip(killed.tolist(), parents.tolist()):
        state, t, value = run.branch(p, z)
        prefix = run.path(p, t) if run.paths is not None else None
        clones.append((r, i, state, t, value, prefix))
    return clones


def _launch_runs(engine, runs, items, entropy, **launch):
    """:func:`_launch` of ``items``: all together, or one run at a time when the engine's random
    draws depend on which trajectories it advances together (``engine.batch_streams``, the
    trainers: one ``SeedSequence`` per call), so that a run's draws do not depend on the other
    runs of a worker's share and the result does not depend on how the runs are split."""
    if not getattr(engine, "batch_streams", False):
        return _launch(engine, runs, items, entropy, **launch)
    by_run = {}
    for it in items:
        by_run.setdefault(it[0], []).append(it)
    return sum(_launch(engine, runs, group, entropy, **launch) for group in by_run.values())


def _launch(engine, runs, items, entropy, *, start, target, max_steps, chunk):
    """Run the excursions ``items = [(run, replica, state, t0, max0[, path prefix])]`` and store them."""
    x = np.array([it[2] for it in items], dtype=float)
    keys = np.empty(len(items), dtype=np.int64)
    for k, it in enumerate(items):   # run r's i-th replica (in order of creation): r * 2**40 + i
        run = runs[it[0]]
        keys[k] = (run.index << 40) + run.n_clones
        run.n_clones += 1
    streams = engine.streams(entropy, keys)
    x_val = engine.coordinate(x)
    start_max = np.array([x_val[k] if it[4] is None else it[4] for k, it in enumerate(items)])
    keep = runs[0].paths is not None
    ex = excursions(engine, x, streams, low=start, high=target, max_steps=max_steps, chunk=chunk, track=True,
                    start_max=start_max, keep_paths=keep)
    for k, it in enumerate(items):
        r, i, _, t0 = it[:4]
        run = runs[r]
        vs = ex.records[k][0]
        run.records[i] = [start_max[k], t0, x[k], ex.records[k]]
        if keep:
            prefix = it[5] if len(it) > 5 and it[5] is not None else x[k][None, :]
            run.paths[i] = [prefix, *ex.paths[k]]
        if ex.outcome[k] == 2:
            run.score[i], run.t_end[i] = np.inf, t0 + ex.steps[k]
        else:
            run.score[i], run.t_end[i] = (vs[-1][-1] if vs else start_max[k]), np.nan
            run.n_censored += int(ex.outcome[k] == 0)
    return ex.cost
