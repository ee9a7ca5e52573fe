"""Cost of the double-well mean escape time by AMS (phasetools.rare) against brute force.

Workload: the quartic double well ``U = x^4/4 - x^2/2`` from ``x = -1`` to ``x = 1``,
Euler-Maruyama at ``dt = 0.01``, ``T = 0.25 / r`` for ``r = dU/T`` in ``--ratios`` (default
20 and 30). For each ``r``:

* **AMS**: ``escape_time(escape_problem("double_well"), ...)`` with ``N = 200`` replicas,
  ``n_kill = 20``, 20 runs and 2000 brute-force loops (their time's error, about 2 %, would
  otherwise limit the precision); measured: wall time, trajectory-steps (``cost["total"]``), the relative
  standard error ``se/tau`` and the ratio to the exact MFPT. The cost *to 10 %* is the cost
  scaled to a 95 % interval of +-10 % (``se/tau = 0.051``): ``cost * (se/tau / 0.051)^2``
  (AMS's variance falls like 1/work at fixed ``N``).
* **brute force**: ``n = (1.96 / 0.10)^2 = 384`` escapes for a +-10 % interval of an
  exponential mean, each ``tau / dt`` steps: ``384 tau / dt`` trajectory-steps, at the speed
  of ``simulate`` measured here on the free double well (``n_threads = 2``), i.e. an
  extrapolation (nobody waits 10^13 time units).

* **pytams** (``--pytams``; the optional extra ``pip install ".[rare-bench]"``): TAMS of the
  PyPI package ``pytams`` on the same potential, temperature and ``dt`` (a user model in
  pure Python, one Euler-Maruyama step per call), in rounds interleaved with phasetools'
  AMS (``--rounds``; one round = one phasetools estimate, then one pytams estimate). pytams
  estimates the probability ``p`` to reach ``x = 1`` within a fixed horizon ``T_f``
  (``--tams-horizon``; there is no "return to ``x = -1`` first" stop); the mean escape time is
  ``-T_f / log(1 - p)``, biased high by about ``t_lag / T_f`` (``t_lag``: the lag of the first
  escapes behind the stationary rate, the relaxation in the well and the climb to ``x = 1``). Its cost to +-10 %
  uses the ideal TAMS variance ``-log(p) / N`` per estimate (the spread of a few rounds is no
  estimate of it); phasetools' uses its reported ``se/tau``. CPU seconds include the pool
  workers (``os.times``); numba's compile time (the first call) is reported apart.

Run from the repository root::

    python benchmarks/bench_rare.py            # dU/T = 20 and 30, about 2 minutes on 2 cores
    python benchmarks/bench_rare.py --quick    # dU/T = 10 and 20, smaller runs
    python benchmarks/bench_rare.py --ratios 20 --n-replicas 100 --n-kill 5   # other AMS settings
    python benchmarks/bench_rare.py --pytams --ratios 20 --rounds 2   # against pytams, about 10 min
    python benchmarks/bench_rare.py --scheduler tcp://HOST:8786        # the AMS runs on a Dask cluster

It prints a table (markdown); it is not a test.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time

import numpy as np

from phasetools.langevin import escape_problem, simulate
from phasetools.rare import AMSOptions, escape_time

SE_TARGET = 0.10 / 1.96

try:   # optional: the comparison with pytams (TAMS over a user-defined model)
    from pytams.fmodel import ForwardModelBaseClass
    from pytams.tams import TAMS
except ImportError as _err:   # pragma: no cover - depends on the environment
    ForwardModelBaseClass, TAMS, PYTAMS_ERROR = object, None, repr(_err)
else:
    PYTAMS_ERROR = None


class DoubleWellTAMS(ForwardModelBaseClass):
    """The double well ``x^4/4 - x^2/2`` as a pytams forward model (Euler-Maruyama, score ``(x+1)/2``).

    Parameters
    ----------
    a_id : int
        pytams' model id.
    params : dict
        pytams' parameters; ``params["model"]["temperature"]`` and
        ``params["trajectory"]["step_size"]`` are used.
    workdir : pathlib.Path, optional
        pytams' working directory (unused).
    """

    def _init_model(self, m_id, params):
        self._x = -1.0
        self._amp = math.sqrt(2.0 * params["model"]["temperature"] * params["trajectory"]["step_size"])
        self._rng = np.random.default_rng()   # fresh entropy: a clone's new noise differs from its parent's

    def _advance(self, step, time, dt, noise, need_end_state):
        x = self._x
        self._x = x - (x * x * x - x) * dt + self._amp * noise
        return dt

    def get_current_state(self):
        return self._x

    def set_current_state(self, state):
        self._x = state

    def score(self):
        return 0.5 * (self._x + 1.0)

    def make_noise(self):
        return self._rng.standard_normal()

    @classmethod
    def name(cls):
        return "DoubleWell"


def _cpu():
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def brute_speed(n_threads=2):
    """Trajectory-steps per second of ``simulate`` on the free double well."""
    pot = escape_problem("double_well").potential
    simulate(pot, [-1.0], temperature=0.05, dt=0.01, n_traj=16, max_steps=100, rng=0, n_threads=n_threads)
    t0 = time.perf_counter()
    run = simulate(pot, [-1.0], temperature=0.05, dt=0.01, n_traj=4000, max_steps=20_000, rng=1,
                   n_threads=n_threads)
    return run.stats["steps_total"] / (time.perf_counter() - t0)


def ams_round(problem, temperature, options, seed, n_threads=2):
    """One phasetools AMS estimate, timed.

    Parameters
    ----------
    problem : phasetools.langevin.EscapeProblem
        The double well's escape problem.
    temperature : float
        The temperature.
    options : phasetools.rare.AMSOptions
        Replicas, kills, runs and loops.
    seed : int
        The root seed.
    n_threads : int, default 2
        numba threads.

    Returns
    -------
    dict
        ``tau``, ``rel`` (reported ``se/tau``), ``wall``, ``cpu`` (seconds) and ``steps``.
    """
    t0, c0 = time.perf_counter(), _cpu()
    res = escape_time(problem, temperature=temperature, dt=0.01, options=options, rng=seed, n_threads=n_threads)
    return {"tau": res.tau, "rel": res.tau_stderr / res.tau, "wall": time.perf_counter() - t0,
            "cpu": _cpu() - c0, "steps": float(res.cost["total"])}


def tams_round(temperature, n_traj, horizon, n_workers=2):
    """One pytams TAMS estimate of the double well's mean escape time, timed.

    Parameters
    ----------
    temperature : float
        The temperature.
    n_traj : int
        TAMS ensemble size ``N``.
    horizon : float
        The fixed horizon ``T_f`` of its trajectories.
    n_workers : int, default 2
        pytams' asyncio process-pool workers (also the number branched per iteration).

    Returns
    -------
    dict
        ``tau`` (``-T_f / log(1 - p)``), ``p``, ``rel`` (ideal ``sqrt(-log(p) / N)``),
        ``wall``, ``cpu`` (seconds, workers included) and ``steps``.
    """
    import toml  # a pytams dependency

    params = {"tams": {"ntrajectories": n_traj, "nsplititer": 1_000_000, "walltime": 1e6,
                       "loglevel": "WARNING"},
              "trajectory": {"end_time": horizon, "step_size": 0.01, "targetscore": 1.0},
              "runner": {"type": "asyncio", "nworker_init": n_workers, "nworker_iter": n_workers},
              "model": {"temperature": temperature}}
    here = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:   # pytams writes its SQLite pool to the cwd
        os.chdir(tmp)
        try:
            with open("input.toml", "w") as f:
                toml.dump(params, f)
            t0, c0 = time.perf_counter(), _cpu()
            tams = TAMS(fmodel_t=DoubleWellTAMS, a_args=["-i", "input.toml"])
            p = tams.compute_probability()
            wall, cpu = time.perf_counter() - t0, _cpu() - c0
            steps = float(tams.get_database().count_computed_steps())
            del tams
        finally:
            os.chdir(here)
    tau = -horizon / math.log1p(-p) if 0.0 < p < 1.0 else float("nan")
    rel = math.sqrt(-math.log(p) / n_traj) if 0.0 < p < 1.0 else float("nan")
    return {"tau": tau, "p": p, "rel": rel, "wall": wall, "cpu": cpu, "steps": steps}


def compare_pytams(args, ratios):
    """Interleaved rounds of phasetools' AMS and pytams' TAMS; prints two tables.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line.
    ratios : list of float
        dU/T values.
    """
    if TAMS is None:
        print(f"pytams not importable: {PYTAMS_ERROR}")
        return
    problem = escape_problem("double_well")
    t0 = time.perf_counter()
    escape_time(problem, temperature=0.05, dt=0.01, options=AMSOptions(n_replicas=4, n_runs=2, n_walkers=4,
                                                                       n_rounds=2), rng=0)
    print(f"phasetools first call (numba compile + a tiny run): {time.perf_counter() - t0:.1f} s; "
          f"pytams: pure Python, nothing to compile\n")
    opts = AMSOptions(n_replicas=args.n_replicas, n_kill=args.n_kill, n_runs=args.n_runs,
                      n_walkers=args.n_walkers, n_rounds=10)
    print("| dU/T | round | method | tau / exact | se/tau | wall (s) | CPU (s) | trajectory-steps | load |")
    print("|---|---|---|---|---|---|---|---|---|")
    summary = []
    for r in ratios:
        T, rows = 0.25 / r, {"phasetools": [], "pytams": []}
        exact = problem.exact_mfpt(T)
        for k in range(args.rounds):
            for name in (("phasetools", "pytams") if k % 2 == 0 else ("pytams", "phasetools")):
                m = ams_round(problem, T, opts, args.seed + k, args.n_threads) if name == "phasetools" else \
                    tams_round(T, args.tams_n, args.tams_horizon, args.n_threads)
                rows[name].append(m)
                print(f"| {r:g} | {k} | {name} | {m['tau'] / exact:.3f} | {m['rel']:.3f} | {m['wall']:.1f} "
                      f"| {m['cpu']:.1f} | {m['steps']:.3g} | {os.getloadavg()[0]:.2f} |", flush=True)
        summary.append((r, exact, rows))
    print("\nCost to +-10 % (95 % interval), from the rounds' means; ratio = pytams / phasetools\n")
    print("| dU/T | method | mean tau / exact | steps to +-10 % | CPU s to +-10 % | wall s to +-10 % |")
    print("|---|---|---|---|---|---|")
    for r, exact, rows in summary:
        costs = {}
        for name, ms in rows.items():
            scale = np.mean([(m["rel"] / SE_TARGET) ** 2 for m in ms])
            costs[name] = [scale * np.mean([m[key] for m in ms]) for key in ("steps", "cpu", "wall")]
            print(f"| {r:g} | {name} | {np.mean([m['tau'] for m in ms]) / exact:.3f} | "
                  + " | ".join(f"{c:.3g}" for c in costs[name]) + " |")
        print(f"| {r:g} | ratio | | " + " | ".join(f"{a / b:.3g}" for a, b in zip(costs["pytams"],
                                                                                 costs["phasetools"])) + " |")


def main(argv=None):
    """Run the benchmark and print its table.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments (see the module docstring).
    """
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ratios", default=None, help="dU/T values, comma-separated (default 20,30)")
    ap.add_argument("--n-replicas", type=int, default=200)
    ap.add_argument("--n-kill", type=int, default=20)
    ap.add_argument("--n-runs", type=int, default=20)
    ap.add_argument("--n-walkers", type=int, default=200, help="loop walkers (10 loops each)")
    ap.add_argument("--n-threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--scheduler", default=None, metavar="ADDRESS",
                    help="run the AMS runs on the Dask scheduler at tcp://HOST:PORT (the same estimate; the wall "
                         "time is the cluster's)")
    ap.add_argument("--quick", action="store_true", help="dU/T 10 and 20, 50 replicas")
    ap.add_argument("--pytams", action="store_true", help="compare with pytams (interleaved rounds)")
    ap.add_argument("--rounds", type=int, default=2, help="rounds of the pytams comparison")
    ap.add_argument("--tams-n", type=int, default=16, help="pytams ensemble size N")
    ap.add_argument("--tams-horizon", type=float, default=20.0, help="pytams horizon T_f")
    args = ap.parse_args(argv)
    ratios = [10.0, 20.0] if args.quick and args.ratios is None else \
        [float(r) for r in (args.ratios or "20,30").split(",")]
    n_rep = 50 if args.quick else args.n_replicas
    if args.pytams:
        return compare_pytams(args, ratios)
    problem = escape_problem("double_well")
    speed = brute_speed(args.n_threads)
    print(f"brute force (simulate, {args.n_threads} threads): {speed:.3g} trajectory-steps/s\n")
    print("| dU/T | exact tau | AMS tau / exact | se/tau | AMS wall (s) | AMS steps | AMS wall to +-10 % (s) "
          "| brute steps to +-10 % | brute wall to +-10 % |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in ratios:
        T = 0.25 / r
        exact = problem.exact_mfpt(T)
        opts = AMSOptions(n_replicas=n_rep, n_kill=args.n_kill, n_runs=args.n_runs, n_walkers=args.n_walkers,
                          n_rounds=10)
        escape_time(problem, temperature=T, dt=0.01, options=AMSOptions(n_replicas=4, n_runs=2, n_walkers=4,
                                                                         n_rounds=2), rng=0)   # warm-up
        t0 = time.perf_counter()
        res = escape_time(problem, temperature=T, dt=0.01, options=opts, rng=args.seed, n_threads=args.n_threads,
                          scheduler=args.scheduler)
        wall = time.perf_counter() - t0
        rel = res.tau_stderr / res.tau
        scale = (rel / SE_TARGET) ** 2
        brute_steps = (1.96 / 0.10) ** 2 * exact / 0.01
        print(f"| {r:g} | {exact:.4g} | {res.tau / exact:.3f} | {rel:.3f} | {wall:.1f} | {res.cost['total']:.3g} "
              f"| {wall * scale:.0f} | {brute_steps:.3g} | {_human(brute_steps / speed)} |")


def _human(seconds):
    for unit, s in (("years", 3.156e7), ("days", 86400.0), ("hours", 3600.0)):
        if seconds >= s:
            return f"{seconds / s:.3g} {unit}"
    return f"{seconds:.3g} s"


if __name__ == "__main__":
    main()
