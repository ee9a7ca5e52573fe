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

Run from the repository root::

    python benchmarks/bench_rare.py            # dU/T = 20 and 30, about 2 minutes on 2 cores
    python benchmarks/bench_rare.py --quick    # dU/T = 10 and 20, smaller runs
    python benchmarks/bench_rare.py --ratios 20 --n-replicas 100 --n-kill 5   # other AMS settings

It prints a table (markdown); it is not a test.
"""

from __future__ import annotations

import argparse
import time

from phasetools.langevin import escape_problem, simulate
from phasetools.rare import AMSOptions, escape_time

SE_TARGET = 0.10 / 1.96


def brute_speed(n_threads=2):
    """Trajectory-steps per second of ``simulate`` on the free double well."""
    pot = escape_problem("double_well").potential
    simulate(pot, [-1.0], temperature=0.05, dt=0.01, n_traj=16, max_steps=100, rng=0, n_threads=n_threads)
    t0 = time.perf_counter()
    run = simulate(pot, [-1.0], temperature=0.05, dt=0.01, n_traj=4000, max_steps=20_000, rng=1,
                   n_threads=n_threads)
    return run.stats["steps_total"] / (time.perf_counter() - t0)


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
    ap.add_argument("--quick", action="store_true", help="dU/T 10 and 20, 50 replicas")
    args = ap.parse_args(argv)
    ratios = [10.0, 20.0] if args.quick and args.ratios is None else \
        [float(r) for r in (args.ratios or "20,30").split(",")]
    n_rep = 50 if args.quick else args.n_replicas
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
        res = escape_time(problem, temperature=T, dt=0.01, options=opts, rng=args.seed, n_threads=args.n_threads)
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
