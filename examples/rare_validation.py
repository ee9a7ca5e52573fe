"""The validation numbers of docs/rare.md: AMS against exact 1D times and Eyring-Kramers.

    python examples/rare_validation.py            # the table (options and seed of tests/test_rare.py), ~7 min
    python examples/rare_validation.py --seeds    # independent seeds on the double well, ~3 min
    python examples/rare_validation.py --coverage # 200 estimates each at dU/T = 8 and 14: coverage, ~15 min
    python examples/rare_validation.py --coverage-deep  # dU/T = 20 and 30, two option sets: ~17 min of CPU
    python examples/rare_validation.py --replicas # the bias of few replicas as N grows, ~5 min

Table columns: problem, exact (or Eyring-Kramers), AMS tau, ratio, se/tau, trajectory-steps,
wall time (s).
"""

import dataclasses
import sys

import numpy as np

from phasetools.langevin import escape_problem
from phasetools.rare import AMSOptions, escape_time

FAST = AMSOptions(n_replicas=50, n_kill=2, n_runs=20, n_walkers=50, n_rounds=10)
DEEP = AMSOptions(n_replicas=100, n_kill=5, n_runs=20, n_walkers=50, n_rounds=10)


def row(label, res, ref):
    print(f"| {label} | {ref:.4g} | {res.tau:.4g} | {res.tau / ref:.3f} | {res.tau_stderr / res.tau:.3f} "
          f"| {res.cost['total']:.3g} | {res.stats['wall_time']:.1f} |", flush=True)


def table():
    dw = escape_problem("double_well")
    for r, opts in [(5, FAST), (10, FAST), (20, DEEP), (30, dataclasses.replace(DEEP, n_replicas=200))]:
        res = escape_time(dw, temperature=0.25 / r, dt=0.01, options=opts, rng=1)
        row(f"double well, dU/T = {r}", res, dw.exact_mfpt(0.25 / r))
    for n, g in [(3, 0.32), (4, 0.24)]:
        for d in ["fwd", "bwd"]:
            pr = escape_problem("reduced", n_layers=n, c=0.8, gamma=g, direction=d, convention="paper")
            for r, opts in ([(10, FAST)] if n == 3 else []) + [(5, DEEP), (20, DEEP)]:
                T = pr.barrier / r
                res = escape_time(pr, temperature=T, dt=0.01, options=opts, rng=1)
                row(f"reduced n={n} {d}, dU/T = {r}", res, pr.exact_mfpt(T))
    ch = escape_problem("chain", n_layers=3, c=0.8, gamma=0.32, direction="fwd", convention="paper")
    for r in [10, 25]:
        T = ch.barrier / r
        row(f"chain n=3 fwd (EK), dU/T = {r}", escape_time(ch, temperature=T, dt=0.01, options=DEEP, rng=1),
            ch.theory_tau(T))


def seeds():
    dw = escape_problem("double_well")
    studies = [(5, FAST, range(101, 113)),
               (20, AMSOptions(n_replicas=100, n_kill=20, n_runs=20, n_walkers=100, n_rounds=10), range(201, 211))]
    for r, opts, rngs in studies:
        T = 0.25 / r
        exact = dw.exact_mfpt(T)
        ratio, rel = [], []
        for s in rngs:
            res = escape_time(dw, temperature=T, dt=0.01, options=opts, rng=s)
            ratio.append(res.tau / exact)
            rel.append(res.tau_stderr / res.tau)
        ratio = np.array(ratio)
        print(f"dU/T = {r}: {ratio.size} seeds, mean ratio {ratio.mean():.3f} +- "
              f"{ratio.std(ddof=1) / np.sqrt(ratio.size):.3f}, spread {ratio.std(ddof=1):.3f}, "
              f"mean reported se/tau {np.mean(rel):.3f}", flush=True)


CHEAP = AMSOptions(n_replicas=20, n_kill=2, n_runs=10, n_walkers=20, n_rounds=5)
DEEP_COVERAGE = AMSOptions(n_replicas=100, n_kill=10, n_runs=20, n_walkers=50, n_rounds=10)


def coverage_row(r, opts, seeds):
    """One row of the coverage tables: ``len(seeds)`` independent estimates of the double-well
    escape at dU/T = ``r`` against the exact MFPT: how often the 95 % interval covers it (with the
    exact binomial test's p-value against 95 %) and the mean of tau/exact with its standard error."""
    import warnings

    from scipy.stats import binomtest

    dw = escape_problem("double_well")
    T = 0.25 / r
    exact = dw.exact_mfpt(T)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # the |ln p| / N warning, studied here
        est = [escape_time(dw, temperature=T, dt=0.01, options=opts, rng=s, n_threads=1) for s in seeds]
    n = len(est)
    ratio = np.array([e.tau / exact for e in est])
    low = sum(exact < e.tau_lower for e in est)
    high = sum(exact > e.tau_upper for e in est)
    covered = n - low - high
    print(f"dU/T = {r} (N = {opts.n_replicas}, n_kill = {opts.n_kill}, {opts.n_runs} runs; seeds {seeds[0]}-"
          f"{seeds[-1]}): covered {covered}/{n} (exact below the interval {low}, above {high}; binomial p = "
          f"{binomtest(covered, n, 0.95).pvalue:.2g}); mean ratio {ratio.mean():.4f} +- "
          f"{ratio.std(ddof=1) / np.sqrt(n):.4f}, median {np.median(ratio):.3f}; median reported se/tau "
          f"{np.median([e.tau_stderr / e.tau for e in est]):.3f}; mean |ln p| / N "
          f"{np.mean([e.stats['ln_p_per_replica'] for e in est]):.2f}", flush=True)


def coverage():
    """How often the nominal 95 % interval covers the exact MFPT, over 200 independent estimates
    (cheap options: N = 20, n_kill = 2, 10 runs, 100 loops), and the mean ratio to the exact value."""
    for r in (8, 14):
        coverage_row(r, CHEAP, list(range(1000, 1200)))


def coverage_deep():
    """The same at dU/T = 20 and 30, with the cheap options (where |ln p| / N exceeds 1) and with
    N = 100, n_kill = 10, 20 runs, 500 loops (|ln p| / N = 0.2-0.3)."""
    coverage_row(20, CHEAP, list(range(20000, 20400)))
    coverage_row(30, CHEAP, list(range(30000, 30124)))
    coverage_row(20, DEEP_COVERAGE, list(range(120000, 120150)))
    coverage_row(30, DEEP_COVERAGE, list(range(130000, 130100)))


def replicas():
    """The estimate as the replica number grows (double well, dU/T = 5, levels -0.95 and -0.7,
    n_kill = 1, 300 runs per N; the slow test's set-up): the mean of ln p_hat and of p/p_hat (the
    factor by which one run's escape time is too long) against the idealised predictions, and
    tau (from the runs' mean p) against the exact MFPT."""
    from phasetools.langevin import double_well
    from phasetools.rare import ams_escape

    common = dict(target=1.0, start=-0.95, level=-0.7, temperature=0.05, dt=0.01, rng=11)
    ref = ams_escape(double_well(), [-1.0], options=AMSOptions(n_replicas=200, n_kill=10, n_runs=10, n_walkers=50,
                                                               n_rounds=4), **common)
    exact = escape_problem("double_well").exact_mfpt(0.05)
    print(f"reference p = {ref.p:.4g} +- {ref.p_stderr:.2g}; exact tau = {exact:.4g}")
    print("| N | mean ln p_hat | predicted | mean p/p_hat | predicted p^(-1/(N-1)) | tau / exact | se/tau |")
    print("|---|---|---|---|---|---|---|")
    for n in (4, 8, 16, 32):
        res = ams_escape(double_well(), [-1.0], options=AMSOptions(n_replicas=n, n_kill=1, n_runs=300, n_walkers=100,
                                                                   n_rounds=4), **common)
        logs = np.log(res.p_runs)
        print(f"| {n} | {logs.mean():.3f} +- {logs.std(ddof=1) / np.sqrt(logs.size):.3f} "
              f"| {-n * np.log1p(-1 / n) * np.log(ref.p):.3f} | {np.mean(ref.p / res.p_runs):.3g} "
              f"| {ref.p ** (-1 / (n - 1)):.3g} | {res.tau / exact:.3f} | {res.tau_stderr / res.tau:.3f} |", flush=True)


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    {"--seeds": seeds, "--coverage": coverage, "--coverage-deep": coverage_deep, "--replicas": replicas}.get(mode, table)()
