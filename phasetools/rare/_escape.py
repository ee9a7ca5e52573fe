"""``ams_escape``: the mean escape time of a Langevin problem by adaptive multilevel splitting."""

from __future__ import annotations

import dataclasses
import os
import sys
import time
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats as _st

from .._rng import seed_sequence, seeds_record
from .._validation import as_float_array, check_choice, check_int, check_positive
from ..langevin import EscapeProblem, Potential, simulate
from ..results import Result, register, to_jsonable
from ._ams import choose_levels, loops
from ._engine import LangevinEngine
from ._executor import Executor, check_executor, open_runner

__all__ = ["AMSEscape", "AMSOptions", "ams_escape", "ams_training_escape", "escape_time"]


@dataclass(frozen=True)
class AMSOptions:
    """Options of adaptive multilevel splitting (see :func:`ams_escape`).

    Parameters
    ----------
    n_replicas : int >= 2, default 100
        Replicas ``N`` of one AMS run. The estimate of ``p`` is unbiased for any ``N``; its
        relative variance is about ``-ln(p) / N`` per run (``n_kill = 1``), and ``1/p`` of a
        single run is biased up by ``p**(-1/(N-1)) - 1`` (see docs/rare.md).
    n_kill : int in [1, n_replicas), default 1
        Replicas killed per iteration (at least; ties at the level are killed together).
    n_runs : int >= 2, default 20
        Independent AMS runs; ``p`` is their mean, its interval their spread.
    n_walkers : int >= 1, default 100
        Brute-force walkers of the loop stage (and of the level choice).
    n_rounds : int >= 2, default 10
        Loops per walker (so ``n_walkers * n_rounds`` loops in all).
    level_quantile : float in (0.5, 1), default 0.9
        Quantile of the coordinate in the start well used as ``Sigma`` when ``level`` is
        not given (the start level is then the median).
    n_equilibrate : int >= 2, default 2000
        Steps of each walker in the level choice (the second half is sampled).
    max_steps : int >= 1, default 10**7
        Step budget of one excursion.
    chunk : int >= 1, default 256
        First chunk of steps of an excursion (doubles while it runs on).
    confidence : float in (0, 1), default 0.95
        Level of the interval of ``tau``.
    keep_paths : bool, default False
        Keep the reactive trajectories (every replica's path is kept while the runs go on,
        which costs memory: ``n_replicas`` excursions per run).
    """

    n_replicas: int = 100
    n_kill: int = 1
    n_runs: int = 20
    n_walkers: int = 100
    n_rounds: int = 10
    level_quantile: float = 0.9
    n_equilibrate: int = 2000
    max_steps: int = 10**7
    chunk: int = 256
    confidence: float = 0.95
    keep_paths: bool = False

    def __post_init__(self):
        check_int(self.n_replicas, "n_replicas", minimum=2)
        check_int(self.n_kill, "n_kill", minimum=1)
        if self.n_kill >= self.n_replicas:
            raise ValueError(f"n_kill must be in [1, n_replicas) = [1, {self.n_replicas}), got {self.n_kill}")
        check_int(self.n_runs, "n_runs", minimum=2)
        check_int(self.n_walkers, "n_walkers", minimum=1)
        check_int(self.n_rounds, "n_rounds", minimum=2)
        check_int(self.n_equilibrate, "n_equilibrate", minimum=2)
        check_int(self.max_steps, "max_steps", minimum=1)
        check_int(self.chunk, "chunk", minimum=1)
        for name, lo, hi in (("level_quantile", 0.5, 1.0), ("confidence", 0.0, 1.0)):
            v = float(getattr(self, name))
            if not lo < v < hi:
                raise ValueError(f"{name} must be in ({lo}, {hi}), got {v}")


@register
@dataclass(frozen=True, eq=False, repr=False)
class AMSEscape(Result):
    """A mean escape time estimated by adaptive multilevel splitting (made by :func:`ams_escape`).

    Times are in the potential's convention (``steps * dt``); levels are of the oriented
    coordinate ``sign * order`` (``sign = +1`` for ``direction="up"``, -1 for ``"down"``).

    Parameters
    ----------
    potential, potential_config, convention : str, dict, str
        The potential.
    order : str
        The reaction coordinate (the potential's order parameter), as text (not read back).
    direction : {"up", "down"}
        Whether the target lies above or below the start in ``order``.
    temperature : float or None
        Additive noise; None under SGD-like noise (then ``noise``).
    noise : dict or None
        The SGD-like noise's configuration.
    dt : float
        Time step.
    start, level, target : float
        Levels of the start set ``A``, the intermediate level ``Sigma`` and the target ``B``
        (oriented coordinate).
    options : dict
        The :class:`AMSOptions`.
    p : float
        Estimate of ``P(B before A | entering Sigma)``: the mean over the runs.
    p_stderr : float
        Its standard error: the standard deviation of the runs' estimates over ``sqrt(n_runs)``.
    p_runs : ndarray (n_runs,)
        Each run's estimate.
    tau : float
        Mean escape time ``t_first + (1/p - 1) t_loop + t_reactive``, with ``1/p`` estimated
        by ``1 / (p (1 + v))``, ``v = (p_stderr / p)**2`` (the convexity of ``1/p``).
    tau_stderr, tau_lower, tau_upper : float
        Its standard error (delta method over ``p``, the loop, first-leg and reactive
        times) and the interval ``tau * exp(+-q se / tau)``, ``q`` Student's quantile with
        the Welch-Satterthwaite degrees of freedom of that sum (``stats["tau_dof"]``).
    t_first, t_loop, t_reactive : float
        Mean time from the start to ``Sigma``, of a failed loop (``Sigma`` to ``A`` and back
        to ``Sigma``), and from ``Sigma`` to ``B`` given success.
    t_loop_stderr : float
        Standard error of ``t_loop``.
    t_reactive_runs : ndarray (n_runs,)
        Each run's reactive time (NaN for an extinct run).
    n_iterations : ndarray (n_runs,)
        Iterations of each run.
    final_fraction : ndarray (n_runs,)
        Fraction of each run's replicas at ``B`` at the end.
    n_loops, n_loop_successes : int
        Loops of the brute-force stage and its excursions that reached ``B`` first.
    cost : dict
        Steps integrated: ``levels``, ``loops``, ``ams``, ``total`` (trajectory-steps).
    theory_tau : float or None
        The theory's mean escape time (from :func:`escape_time`'s problem), or None.
    levels, level_log_weights : ndarray (sum(n_iterations),)
        The AMS levels ``z_j`` of every iteration, run after run (run ``r``'s are the
        ``n_iterations[r]`` entries after those of the runs before it), and ``ln prod_{i<=j}
        (1 - K_i / N)``: the run's estimate of ``P(max of an excursion from Sigma > z_j)``
        (see :meth:`level_curve`).
    reactive_paths : ndarray (sum(reactive_lengths), dim) or None
        With ``keep_paths``: the reactive trajectories (states from the entrance into
        ``Sigma`` to the first state in ``B``, one step apart), one after the other.
    reactive_lengths, reactive_runs : ndarray (n_reactive,) or None
        Their lengths (states) and the run of each.
    """

    potential: str
    potential_config: dict
    convention: str
    order: str
    direction: str
    temperature: float | None
    noise: dict | None
    dt: float
    start: float
    level: float
    target: float
    options: dict
    p: float
    p_stderr: float
    p_runs: np.ndarray
    tau: float
    tau_stderr: float
    tau_lower: float
    tau_upper: float
    t_first: float
    t_loop: float
    t_loop_stderr: float
    t_reactive: float
    t_reactive_runs: np.ndarray
    n_iterations: np.ndarray
    final_fraction: np.ndarray
    n_loops: int
    n_loop_successes: int
    cost: dict
    theory_tau: float | None = None
    levels: np.ndarray | None = None
    level_log_weights: np.ndarray | None = None
    reactive_paths: np.ndarray | None = None
    reactive_lengths: np.ndarray | None = None
    reactive_runs: np.ndarray | None = None

    _config_fields = ("potential", "potential_config", "convention", "order", "direction", "temperature", "noise",
                      "dt", "start", "level", "target", "options")
    _dims = {"p_runs": ("run",), "t_reactive_runs": ("run",), "n_iterations": ("run",), "final_fraction": ("run",),
             "levels": ("iteration",), "level_log_weights": ("iteration",), "reactive_paths": ("step", "coordinate"),
             "reactive_lengths": ("reactive",), "reactive_runs": ("reactive",)}
    _units = {"tau": "time[convention]", "tau_stderr": "time[convention]", "tau_lower": "time[convention]",
              "tau_upper": "time[convention]", "t_first": "time[convention]", "t_loop": "time[convention]",
              "t_reactive": "time[convention]", "dt": "time[convention]",
              "temperature": "temperature[convention]"}

    @property
    def n_runs(self) -> int:
        """Independent AMS runs."""
        return int(self.p_runs.size)

    def reactive(self):
        """The reactive trajectories as a list of arrays ``(states, dim)`` (needs ``keep_paths``).

        Returns
        -------
        list of ndarray
        """
        if self.reactive_paths is None:
            raise ValueError("the reactive trajectories were not kept: run with AMSOptions(keep_paths=True)")
        if self.reactive_lengths.size == 0:
            return []
        return np.split(self.reactive_paths, np.cumsum(self.reactive_lengths)[:-1])

    def level_curve(self, run=None):
        """The estimated ``P(an excursion from Sigma reaches level z)`` against ``z``.

        Parameters
        ----------
        run : int, optional
            One run's staircase (levels ``z_j``, ``prod_{i<=j} (1 - K_i / N)``); default the
            mean over the runs on the union of their levels (a run's estimate at ``z`` is its
            product over the levels below ``z``).

        Returns
        -------
        (ndarray, ndarray)
            Levels (oriented coordinate) and probabilities.
        """
        if self.levels is None:
            raise ValueError("this result has no level record (written before it was kept)")
        ends = np.cumsum(self.n_iterations)
        per = [(self.levels[e - n:e], np.exp(self.level_log_weights[e - n:e])) for n, e in zip(self.n_iterations, ends)]
        if run is not None:
            return per[int(run)]
        z = np.unique(np.concatenate([np.concatenate([[self.level], lv]) for lv, _ in per]))
        prob = np.zeros_like(z)
        for lv, pw in per:
            k = np.searchsorted(lv, z, side="left")          # levels strictly below z
            prob += np.where(k > 0, pw[np.maximum(k - 1, 0)], 1.0)
        return z, prob / len(per)

    def __repr__(self):
        return (f"AMSEscape(potential={self.potential!r}, tau={self.tau:.5g} [{self.tau_lower:.5g}, "
                f"{self.tau_upper:.5g}], p={self.p:.4g}, n_runs={self.n_runs}, cost={self.cost.get('total')})")


def ams_escape(potential: Potential, x0, *, target, direction="up", start=None, level=None, temperature=None,
               noise=None, dt, options=None, rng=None, n_threads=None, progress=False, theory_tau=None,
               n_workers=1, scheduler=None, dask_workers=None, connect_timeout=5.0) -> AMSEscape:
    """Mean escape time from ``x0`` to ``order = target`` by adaptive multilevel splitting.

    The reaction coordinate is the potential's order parameter. The method and its
    estimators are in the module docstring of ``phasetools.rare._ams`` and in docs/rare.md.

    Parameters
    ----------
    potential : phasetools.langevin.Potential
        The potential (any dimension); its ``order`` is the reaction coordinate.
    x0 : array (dim,)
        The start (in the start well).
    target : float
        The level of ``order`` that ends an escape.
    direction : {"up", "down"}
        ``"up"``: escape when ``order >= target``; ``"down"``: when ``order <= target``.
    start, level : float, optional
        Levels of ``order`` for the start set ``A`` and the intermediate level ``Sigma``
        (between ``order(x0)``'s side and ``target``); both or neither (then they are chosen
        from the start well, see :class:`AMSOptions`).
    temperature : float > 0, optional
        Additive noise (give this or ``noise``).
    noise : phasetools.langevin.SGDNoise, optional
        SGD-like noise.
    dt : float > 0
        Time step (Euler-Maruyama; refused where unstable at ``x0``).
    options : AMSOptions, optional
        Replicas, kills, runs, loops, budgets, confidence.
    rng : None, int, SeedSequence or Generator
        Root of all randomness; the same ``rng`` gives the same result for any ``n_threads``.
    n_threads : int, optional
        numba threads.
    progress : bool, default False
        Show a bar over the AMS runs (on a terminal).
    theory_tau : float, optional
        A prediction to keep beside the estimate.
    n_workers : int >= 1, default 1
        Processes for the AMS runs (a pool of spawned processes, each compiling the engine
        once); the same ``rng`` gives the same result for any ``n_workers``.
    scheduler : str, optional
        Address ``"tcp://HOST:PORT"`` of a running Dask scheduler: the AMS runs are split
        over its workers' threads (each worker process compiles the engine once). The same
        ``rng`` gives the same result on any cluster. Needs ``pip install "phasetools[dask]"``.
    dask_workers : int >= 1, optional
        Instead of ``scheduler``: start a Dask LocalCluster of this many single-threaded
        worker processes on this machine for the runs (closed at the end).
    connect_timeout : float > 0, default 5.0
        Seconds to wait for ``scheduler``; unreachable or malformed: a ``ValueError``
        (``phasetools._dask.DaskConnectError``) naming the address, before any work.

    Returns
    -------
    AMSEscape
    """
    t0 = time.perf_counter()
    opts = AMSOptions() if options is None else options
    if not isinstance(opts, AMSOptions):
        raise ValueError(f"options must be an AMSOptions, got {type(opts).__name__}")
    check_choice(direction, "direction", ("up", "down"))
    sign = 1.0 if direction == "up" else -1.0
    x0 = as_float_array(x0, "x0").reshape(-1)
    dt = float(check_positive(dt, "dt"))
    where = check_executor(n_workers, scheduler, dask_workers, connect_timeout)
    # bad input fails before a Dask cluster is started or connected: the potential, noise and dt (stability
    # at x0) by the engine's own checks, then the start against the target
    simulate(potential, x0, temperature=temperature, noise=noise, dt=dt, n_traj=1, max_steps=1, rng=0)
    engine = LangevinEngine(potential, sign, temperature=temperature, noise=noise, dt=dt, n_threads=n_threads)
    b = sign * float(as_float_array(target, "target"))
    if float(engine.coordinate(x0[None, :])[0]) >= b:
        raise ValueError(f"x0 is already past the target {target} (direction={direction!r})")
    root = seed_sequence(rng)
    a, sig, est, cost, extra = _pipeline(engine, x0, b, start, level, sign, opts, root, progress, dt, where)
    return AMSEscape(
        potential=potential.name, potential_config=to_jsonable(potential.config()), convention=potential.convention,
        order=str(potential.order), direction=direction, temperature=None if temperature is None else float(temperature),
        noise=None if noise is None else to_jsonable(noise.config()), dt=dt, start=a, level=sig, target=b,
        options=dataclasses.asdict(opts), **est, cost=cost,
        theory_tau=None if theory_tau is None else float(theory_tau), seeds=seeds_record(root),
        stats={"wall_time": time.perf_counter() - t0, "n_threads": n_threads, **extra})


def _pipeline(engine, x0, b, start, level, sign, opts, root, progress, dt, where=None):
    """Levels, loops and the AMS runs over ``engine``; ``(start, level, estimates, cost, stats)``.

    ``where`` (a checked :class:`~phasetools.rare._executor.Executor`; default this process)
    is where the AMS runs go: the engine is checked to travel there and the Dask cluster is
    connected (or started) before any work, and closed at the end."""
    where = Executor() if where is None else where
    where.check_engine(engine)
    with open_runner(where) as runner:
        return _stages(engine, x0, b, start, level, sign, opts, root, progress, dt, runner)


def _stages(engine, x0, b, start, level, sign, opts, root, progress, dt, runner):
    """The three stages of :func:`_pipeline`, the AMS runs by ``runner``."""
    s_levels, s_loops, s_streams, *s_runs = root.spawn(3 + opts.n_runs)
    a, sig, cost_levels = _levels(engine, x0, start, level, sign, b, opts, s_levels)
    if opts.n_walkers * opts.n_rounds < opts.n_runs:
        raise ValueError(f"n_walkers * n_rounds (the entrance states) must be >= n_runs = {opts.n_runs}")
    lp = loops(engine, x0, start=a, level=sig, target=b, n_walkers=opts.n_walkers, n_rounds=opts.n_rounds,
               max_steps=opts.max_steps, entropy=_entropy(s_loops))
    kw = dict(start=a, target=b, n_replicas=opts.n_replicas, n_kill=opts.n_kill, n_runs=opts.n_runs,
              max_steps=opts.max_steps, chunk=opts.chunk, run_seeds=s_runs, stream_entropy=_entropy(s_streams),
              keep_paths=opts.keep_paths)
    ams = runner(engine, lp["entrance"], kw, progress)
    est, dof = _estimate(lp, ams, dt, opts.confidence, opts.n_replicas)
    est.update(n_loops=int(lp["down"].size + lp["n_success"]), n_loop_successes=int(lp["n_success"]))
    est.update(_level_fields(ams))
    if opts.keep_paths:
        est.update(_path_fields(ams, engine.dim))
    cost = {"levels": cost_levels, "loops": lp["cost"], "ams": ams["cost"]}
    cost["total"] = sum(cost.values())
    extra = {"n_censored": int(np.sum(ams["n_censored"])), "p_loops": _p_loops(lp), "tau_dof": dof,
             "ln_p_per_replica": _ln_p_per_replica(est["p"], opts.n_replicas), **runner.stats()}
    return a, sig, est, cost, extra


#: Above this ``|ln p| / n_replicas`` one run's ``p_hat`` is so skewed (relative variance
#: ``p**(-1/N) - 1`` > 1.7) that the mean of the runs usually lies below ``p``: ``tau`` is biased
#: up and the interval too narrow (measured: 86 % coverage at 1.5, 107 of 124, see docs/rare.md).
MAX_LN_P_PER_REPLICA = 1.0


def _ln_p_per_replica(p, n_replicas):
    """``|ln p| / n_replicas``, with a RuntimeWarning when it exceeds :data:`MAX_LN_P_PER_REPLICA`.

    ``nan`` when ``p`` is not finite or ``<= 0`` (every run died out: no ratio to judge), ``0``
    for ``p >= 1``. The warning points at the first caller outside ``phasetools.rare``."""
    p = float(p)
    if not np.isfinite(p) or p <= 0:
        return float("nan")
    if p >= 1:
        return 0.0
    ratio = float(-np.log(p) / n_replicas)
    if ratio > MAX_LN_P_PER_REPLICA:
        warnings.warn(f"|ln p| / n_replicas = {ratio:.2g} > {MAX_LN_P_PER_REPLICA:g}: one run's estimate is too skewed "
                      f"for the mean of the runs, so tau is likely too high and its interval too narrow; raise "
                      f"n_replicas to at least |ln p| = {-np.log(p):.0f}", RuntimeWarning,
                      stacklevel=_outside_stacklevel())
    return ratio


def _outside_stacklevel():
    """``stacklevel`` for a ``warnings.warn`` in the caller: its first frame outside this package's
    folder (``escape_time -> ams_escape -> _pipeline`` and the trainers' entry points differ in depth)."""
    here = os.path.dirname(os.path.abspath(__file__))
    frame, level = sys._getframe(1), 1   # the frame that calls warnings.warn is stacklevel 1
    while frame is not None and os.path.dirname(os.path.abspath(frame.f_code.co_filename)) == here:
        frame, level = frame.f_back, level + 1
    return level


def _level_fields(ams):
    return {"levels": np.concatenate([np.asarray(v, dtype=float) for v in ams["levels"]]),
            "level_log_weights": np.concatenate([np.asarray(v, dtype=float) for v in ams["log_weights"]])}


def _path_fields(ams, dim):
    paths = [(r, x) for r, run in enumerate(ams["reactive"]) for x in run]
    return {"reactive_paths": np.concatenate([x for _, x in paths]) if paths else np.zeros((0, dim)),
            "reactive_lengths": np.array([x.shape[0] for _, x in paths], dtype=np.int64),
            "reactive_runs": np.array([r for r, _ in paths], dtype=np.int64)}


def escape_time(problem: EscapeProblem, *, temperature=None, noise=None, dt, options=None, rng=None,
                n_threads=None, progress=False, start=None, level=None, n_workers=1, scheduler=None,
                dask_workers=None, connect_timeout=5.0) -> AMSEscape:
    """:func:`ams_escape` for an :func:`phasetools.langevin.escape_problem`: its start, stop and theory.

    Parameters
    ----------
    problem : phasetools.langevin.EscapeProblem
        The problem (its ``x0``, its stop's level, direction and order parameter).
    temperature, noise, dt, options, rng, n_threads, progress, start, level
        As for :func:`ams_escape`.
    n_workers, scheduler, dask_workers, connect_timeout
        Where the AMS runs go, as for :func:`ams_escape` (a process pool or a Dask cluster).

    Returns
    -------
    AMSEscape
        With ``theory_tau`` the problem's prediction (additive noise), else None.
    """
    if not isinstance(problem, EscapeProblem):
        raise ValueError(f"problem must be an EscapeProblem (phasetools.langevin.escape_problem), "
                         f"got {type(problem).__name__}")
    pot = problem.potential
    if problem.stop.order is not None:
        pot = dataclasses.replace(pot, order=problem.stop.order)
    theory = problem.theory_tau(temperature) if temperature is not None else None
    return ams_escape(pot, problem.x0, target=problem.stop.level, direction=problem.stop.direction, start=start,
                      level=level, temperature=temperature, noise=noise, dt=dt, options=options, rng=rng,
                      n_threads=n_threads, progress=progress, theory_tau=theory, n_workers=n_workers,
                      scheduler=scheduler, dask_workers=dask_workers, connect_timeout=connect_timeout)


def _entropy(seq):
    return int.from_bytes(seq.generate_state(4, dtype=np.uint32).tobytes(), "little")


def _levels(engine, x0, start, level, sign, b, opts, seq):
    """Oriented ``(start, level, cost)``: given, or chosen in the start well."""
    if (start is None) != (level is None):
        raise ValueError("give both start and level, or neither (then they are chosen in the start well)")
    if start is None:
        return choose_levels(engine, x0, n_walkers=opts.n_walkers, n_steps=opts.n_equilibrate,
                             quantile=opts.level_quantile, entropy=_entropy(seq), target=b)
    a = sign * float(as_float_array(start, "start"))
    s = sign * float(as_float_array(level, "level"))
    if not a < s < b:
        raise ValueError(f"start, level and target must be in the order of the escape (start < level < target "
                         f"along direction), got {start}, {level}, {sign * b}")
    return a, s, 0


def _p_loops(lp):
    n = lp["down"].size + lp["n_success"]
    return float(lp["n_success"] / n) if n else float("nan")


def _estimate(lp, ams, dt, confidence, n_replicas):
    """``p``, ``tau`` and their uncertainty from the loop stage and the runs (times in ``dt``).

    ``p`` is the mean of the runs' estimates (unbiased), ``tau`` the decomposition at ``p``
    with the second-order correction of ``1/p``'s convexity (``E[1/p_bar] = (1 + v) / p``,
    ``v = var(p_bar) / p**2``, so ``1/p`` is estimated by ``1 / (p_bar (1 + v))``, positive
    however large ``v``). The interval is ``tau exp(+-q se / tau)`` with ``se`` the
    delta-method error from the spreads of the runs, the loops, the first legs and the
    reactive times, and ``q`` Student's quantile with the Welch-Satterthwaite degrees of
    freedom of that sum (about ``n_runs - 1`` when the runs dominate, as they do).
    ``n_replicas`` is kept for the signature; the idealised floor of the variance is gone
    (coverage measured in ``tests/test_rare.py``).
    """
    p_runs = ams["p"]
    m = p_runs.size
    p = float(np.mean(p_runs))
    var_p = float(np.var(p_runs, ddof=1)) / m
    first, up, down = (lp[k] * dt for k in ("first", "up", "down"))
    t_first = float(np.mean(first))
    # no failed excursion seen and p = 1 (drift carries every excursion to B): no loop term
    t_loop = float(np.mean(down) + np.mean(up)) if down.size or p < 1.0 else 0.0
    var_loop = _var_mean(down) + _var_mean(up)
    reac = ams["t_reactive"] * dt
    ok = np.isfinite(reac)
    t_reac = float(np.mean(reac[ok])) if ok.any() else float("nan")
    dof = float("nan")
    if p > 0:
        inv_p = 1.0 / (p + var_p / p)             # E[1/p_bar] = (1 + v) / p to second order, v = var/p^2
        tau = t_first + (inv_p - 1.0) * t_loop + t_reac
        parts = [((t_loop / p**2) ** 2 * var_p, m - 1), ((1.0 / p - 1.0) ** 2 * var_loop, down.size + up.size - 2),
                 (_var_mean(first), first.size - 1), (_var_mean(reac[ok]) if ok.sum() > 1 else 0.0, ok.sum() - 1)]
        var = sum(v for v, _ in parts)
        se = float(np.sqrt(var))
        dof = _satterthwaite(parts, m - 1)
        q = float(_st.t.ppf(0.5 + confidence / 2, dof))
        with np.errstate(over="ignore"):
            lo, hi = tau * np.exp(-q * se / tau), tau * np.exp(q * se / tau)
    else:
        tau, se, lo, hi = np.inf, np.inf, np.nan, np.inf
    return {"p": p, "p_stderr": float(np.sqrt(var_p)), "p_runs": p_runs, "tau": float(tau), "tau_stderr": se,
            "tau_lower": float(lo), "tau_upper": float(hi), "t_first": t_first, "t_loop": t_loop,
            "t_loop_stderr": float(np.sqrt(var_loop)), "t_reactive": t_reac, "t_reactive_runs": reac,
            "n_iterations": ams["n_iterations"], "final_fraction": ams["final_fraction"]}, dof


def _satterthwaite(parts, fallback):
    """Welch-Satterthwaite degrees of freedom of a sum of variances ``[(v_i, dof_i)]``."""
    total = sum(v for v, _ in parts)
    denom = sum(v**2 / d for v, d in parts if d > 0 and v > 0)
    return float(total**2 / denom) if denom > 0 else float(max(fallback, 1))


def _var_mean(v):
    v = np.asarray(v, dtype=float)
    return float(np.var(v, ddof=1) / v.size) if v.size > 1 else 0.0


def ams_training_escape(data, init, *, n_layers, width, lr, batch_size, weight_decay, target, direction="up",
                        coordinate="sv1", sampling="replacement", convention="paper", start=None, level=None,
                        options=None, rng=None, n_threads=None, progress=False, n_workers=1, scheduler=None,
                        dask_workers=None, connect_timeout=5.0, exact_epochs=True) -> AMSEscape:
    """Mean escape time of real minibatch SGD, in epochs, by adaptive multilevel splitting.

    A replica is a network state; :func:`phasetools.training.train` advances it (a clone
    copies its parent's state after the SGD step at which the parent passed the level and gets
    fresh minibatches). The
    reaction coordinate is a singular value of the end-to-end map (or any function of it).

    Parameters
    ----------
    data : (X, Y) or phasetools.training.Dataset
        Training samples.
    init : list of arrays
        The start: per layer ``(rows, cols)`` (``W_1`` first), e.g. a trapped checkpoint's
        ``TrainingRun.weights(seed=0)`` reshaped, or the balanced learned state.
    n_layers, width : int
        The network.
    lr : float > 0
        Learning rate.
    batch_size : int >= 1
        Minibatch size.
    weight_decay : float >= 0
        SGD weight decay.
    target : float
        The coordinate's level that ends an escape.
    direction : {"up", "down"}
        Escape when the coordinate rises to (``"up"``) or falls to (``"down"``) ``target``.
    coordinate : "sv1", "sv2", ..., "sharpness", "sharpness2", ... or callable
        The ``k``-th largest singular value of ``M``; ``"sharpness"`` (``"sharpness<k>"``, for
        ``direction="down"``): the two-branch score of
        :class:`~phasetools.rare.SharpnessScore` (progress down in that singular value *or* up
        in the mode's sharpness, the catapult route of SGD; ``start``/``level`` and the
        result's levels are then in score units, ``potential_config["coordinate"]`` records
        it); or ``f(M (n, d_out, d_in)) -> (n,)``.
    sampling : {"replacement", "shuffle"}
        Minibatch sampling. Both are exact: with ``"shuffle"`` a replica's state also holds its
        position in the epoch and the epoch's used samples, and a clone finishes its parent's
        epoch on a fresh uniform permutation of the unused samples (:class:`TrainingEngine`).
    convention : {"paper", "canonical"}
        Loss convention of :func:`~phasetools.training.train`.
    start, level : float, optional
        Levels of ``A`` and ``Sigma`` (both or neither), as in :func:`ams_escape`.
    options : AMSOptions, optional
        ``max_steps``, ``chunk`` and ``n_equilibrate`` are in SGD steps here.
    rng : None, int, SeedSequence or Generator
        Root of all randomness.
    n_threads : int, optional
        numba threads of the trainer.
    progress : bool
        Show a bar over the AMS runs.
    n_workers, scheduler, dask_workers, connect_timeout
        Where the AMS runs go, as for :func:`ams_escape` (a process pool or a Dask cluster);
        the same ``rng`` gives the same result, bit for bit, for any of them (each run is
        advanced alone, its minibatches drawn from its own replicas' stream keys). A
        ``coordinate`` function must be module-level for ``n_workers > 1``.
    exact_epochs : bool
        With ``sampling="shuffle"``: ``True`` (default) carries the position in the epoch and
        the epoch's used samples in each replica (exact); ``False`` restarts a fresh permutation
        of all samples whenever a replica is resumed or cloned mid-epoch (the approximation of
        earlier versions, kept for comparison: samples reused within an epoch, escapes too
        fast). ``False`` is refused (``ValueError``) for ``sampling="replacement"``, which has
        no epochs to keep (it is always exact).

    Returns
    -------
    AMSEscape
        Times in epochs (``dt = 1 / steps_per_epoch``, ``steps_per_epoch = n_samples //
        batch_size``; ``convention`` is ``"epochs"``); ``noise`` records the SGD
        configuration (with ``exact_epochs``); ``cost`` is in SGD steps of one replica.
    """
    from ._training import TrainingEngine, training_coordinate

    t0 = time.perf_counter()
    opts = AMSOptions() if options is None else options
    if not isinstance(opts, AMSOptions):
        raise ValueError(f"options must be an AMSOptions, got {type(opts).__name__}")
    check_choice(direction, "direction", ("up", "down"))
    check_choice(sampling, "sampling", ("replacement", "shuffle"))
    if not isinstance(exact_epochs, (bool, np.bool_)):
        raise ValueError(f"exact_epochs must be True or False, got {exact_epochs!r}")
    if not exact_epochs and sampling != "shuffle":
        raise ValueError("exact_epochs=False applies to sampling='shuffle' only (sampling with replacement has no "
                         f"epochs to keep), got sampling={sampling!r}")
    where = check_executor(n_workers, scheduler, dask_workers, connect_timeout)
    init = [np.asarray(w, dtype=float) for w in init]
    name, order, sign, b, score = training_coordinate(coordinate, direction=direction, init=init, data=data,
                                                      target=float(as_float_array(target, "target")))
    engine = TrainingEngine(data, n_layers=n_layers, width=width, lr=lr, weight_decay=weight_decay,
                            batch_size=batch_size, sampling=sampling, convention=convention, coordinate=order,
                            sign=sign, shapes=[w.shape for w in init], n_threads=n_threads,
                            exact_epochs=bool(exact_epochs))
    if len(init) != n_layers:
        raise ValueError(f"init must hold n_layers = {n_layers} weight matrices, got {len(init)}")
    x0 = engine.state(np.concatenate([w.ravel() for w in init]))   # reshuffled: + epoch position and mask
    if float(engine.coordinate(x0[None, :])[0]) >= b:
        raise ValueError(f"init is already past the target {target} (direction={direction!r})")
    root = seed_sequence(rng)
    a, sig, est, cost, extra = _pipeline(engine, x0, b, start, level, sign, opts, root, progress, engine.time_unit,
                                         where)
    config = {"n_layers": int(n_layers), "width": int(width), "shapes": [list(w.shape) for w in init],
              "init": x0[:engine.n_weights].tolist(), **({} if score is None else {"coordinate": score})}
    sgd = {"lr": float(lr), "batch_size": int(batch_size), "weight_decay": float(weight_decay),
           "sampling": sampling, "exact_epochs": bool(exact_epochs), "convention": str(convention),
           "n_samples": int(np.asarray(data[0]).shape[0]) if isinstance(data, tuple) else None}
    return AMSEscape(
        potential="sgd_training", potential_config=config, convention="epochs", order=name, direction=direction,
        temperature=None, noise=sgd, dt=engine.time_unit, start=a, level=sig, target=b, options=dataclasses.asdict(opts), **est,
        cost=cost, theory_tau=None, seeds=seeds_record(root),
        stats={"wall_time": time.perf_counter() - t0, "n_threads": n_threads, "n_train_calls": engine.n_calls,
               **extra})
