"""The validation numbers of docs/rare.md: AMS against exact 1D times and Eyring-Kramers.

    python examples/rare_validation.py            # the table (options and seed of tests/test_rare.py), ~7 min
    python examples/rare_validation.py --seeds    # independent seeds on the double well, ~3 min
    python examples/rare_validation.py --coverage # 200 estimates each at dU/T = 8 and 14: coverage, ~15 min
    python examples/rare_validation.py --coverage-deep  # dU/T = 20 and 30, two option sets: ~17 min of CPU
    python examples/rare_validation.py --replicas # the bias of few replicas as N grows, ~5 min
    python examples/rare_validation.py --coverage-reduced  # reduced n_layers 3, 4, fwd, bwd; 30 estimates each
                                                           # at dU/T = 5, 10, 20, 30: ~25 min of CPU
    python examples/rare_validation.py --chain-exact       # the chain's exact MFPT by finite volumes against
                                                           # Eyring-Kramers at dU/T = 10, 15, 20, 25: ~1-2 min each,
                                                           # -> rare_chain_exact.h5
    python examples/rare_validation.py --chain-kramers     # the 3-weight chain against Eyring-Kramers, 30
                                                           # estimates each at dU/T = 10, 15, 20, 25 (against the
                                                           # converged MFPT stored by --chain-exact where it was
                                                           # stored, else Eyring-Kramers only): ~10 min of CPU

``--ratios 20,30`` and ``--k 30`` choose the barriers and the number of estimates of the last three,
``--layers 3`` the reduced potentials.

Table columns: problem, exact (or Eyring-Kramers), AMS tau, ratio, se/tau, trajectory-steps,
wall time (s).
"""

import dataclasses

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
    escape at dU/T = ``r`` against the exact MFPT (see :func:`coverage_of`)."""
    dw = escape_problem("double_well")
    coverage_of("double well", dw, r, dw.exact_mfpt(0.25 / r), opts, seeds)


def coverage_of(label, problem, r, reference, opts, seeds):
    """``len(seeds)`` independent estimates (own seed, one thread each) of ``problem``'s escape at
    dU/T = ``r`` against ``reference``: how often the 95 % interval covers it (with the exact
    binomial test's p-value against 95 % and the Clopper-Pearson 95 % interval of the coverage),
    the mean of tau/reference with its standard error, and the cost of one estimate.

    Parameters
    ----------
    label : str
        The row's name.
    problem : phasetools.langevin.EscapeProblem
        The problem.
    r : float
        Barrier over temperature (``T = problem.barrier / r``).
    reference : float
        The exact (or asymptotic) mean escape time at that temperature.
    opts : AMSOptions
        The options of every estimate.
    seeds : sequence of int
        One root seed per estimate.

    Returns
    -------
    dict
        ``ratio`` (array of tau/reference), ``covered``, ``low``, ``high`` (reference below /
        above the interval), ``n``, ``rel_se`` (median se/tau), ``ln_p_per_replica`` (mean),
        ``steps`` and ``cpu`` (mean per estimate, CPU seconds of this process).
    """
    import time
    import warnings

    from scipy.stats import binomtest

    T = problem.barrier / r
    est, cpu = [], time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # the |ln p| / N warning, recorded below
        for s in seeds:
            est.append(escape_time(problem, temperature=T, dt=0.01, options=opts, rng=s, n_threads=1))
    cpu = (time.process_time() - cpu) / len(est)
    n = len(est)
    ratio = np.array([e.tau / reference for e in est])
    low = sum(reference < e.tau_lower for e in est)
    high = sum(reference > e.tau_upper for e in est)
    covered = n - low - high
    test = binomtest(covered, n, 0.95)
    ci = test.proportion_ci(0.95)
    out = {"ratio": ratio, "covered": covered, "low": low, "high": high, "n": n,
           "rel_se": float(np.median([e.tau_stderr / e.tau for e in est])),
           "ln_p_per_replica": float(np.mean([e.stats["ln_p_per_replica"] for e in est])),
           "steps": float(np.mean([e.cost["total"] for e in est])), "cpu": cpu}
    print(f"{label}, dU/T = {r} (reference {reference:.4g}; N = {opts.n_replicas}, n_kill = {opts.n_kill}, "
          f"{opts.n_runs} runs; seeds {seeds[0]}-{seeds[-1]}): covered {covered}/{n} (reference below the "
          f"interval {low}, above {high}; binomial p = {test.pvalue:.2g}, coverage 95 % CI "
          f"{ci.low:.2f}-{ci.high:.2f}); mean ratio {ratio.mean():.4f} +- {ratio.std(ddof=1) / np.sqrt(n):.4f}, "
          f"median {np.median(ratio):.3f}; median reported se/tau {out['rel_se']:.3f}; mean |ln p| / N "
          f"{out['ln_p_per_replica']:.2f}; per estimate {out['steps']:.3g} steps, {cpu:.1f} s CPU", flush=True)
    return out


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

    common = {"target": 1.0, "start": -0.95, "level": -0.7, "temperature": 0.05, "dt": 0.01, "rng": 11}
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


# N = 100 keeps |ln p| / N at 0.2-0.3 up to dU/T = 30 (the calibrated regime, docs/rare.md)
REDUCED = ((3, 0.32), (4, 0.24))   # (n_layers, weight decay), paper convention, eta = 0.8


def coverage_reduced(ratios=(5, 10, 20, 30), k=30, layers=(3, 4)):
    """The reduced potentials (``n_layers`` 3 and 4, forward and backward): ``k`` independent
    estimates per barrier against the exact 1D mean first-passage time (``problem.exact_mfpt``,
    the quadrature of :func:`phasetools.theory.mfpt_1d`).

    Parameters
    ----------
    ratios : sequence of float
        The barriers ``dU/T``.
    k : int
        Estimates per row.
    layers : sequence of int
        The ``n_layers`` to run (of 3 and 4).
    """
    for n, weight_decay in REDUCED:
        if n not in layers:
            continue
        for d in ("fwd", "bwd"):
            pr = escape_problem("reduced", n_layers=n, c=0.8, gamma=weight_decay, direction=d, convention="paper")
            for r in ratios:
                base = 3_000_000 + 100_000 * n + 50_000 * (d == "bwd") + 1000 * int(r)
                coverage_of(f"reduced n={n} {d}", pr, r, pr.exact_mfpt(pr.barrier / r), DEEP_COVERAGE,
                            list(range(base, base + k)))


# the chain's exact forward MFPT (``--chain-exact``, phasetools.rare.chain_exact_mfpt), stored here and read
# by ``--chain-kramers`` (in the working directory)
CHAIN_FILE = "rare_chain_exact.h5"
CHAIN_EXACT_GRIDS = (1.0, 0.9, 0.8, 0.7, 0.6, 0.55, 0.5, 0.45, 0.4, 0.35)   # the docs' ten grids


def _chain():
    return escape_problem("chain", n_layers=3, c=0.8, gamma=0.32, direction="fwd", convention="paper")


def _chain_name(r):
    return f"chain_fwd_dUT{r:g}"


def stored_chain_exact(ratios, path=CHAIN_FILE):
    """The exact MFPTs stored by ``--chain-exact``, checked against the chain's temperatures.

    Parameters
    ----------
    ratios : sequence of float
        The barriers ``dU/T``.
    path : str
        The file ``--chain-exact`` wrote.

    Returns
    -------
    dict
        ``dU/T -> GridMFPT`` for the ratios stored (the others are left out).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist (run ``--chain-exact`` first).
    ValueError
        If a stored result was computed at another temperature, or on too few grids to be
        extrapolated to ``h = 0`` (``spacings`` not longer than ``degree``).
    """
    import os

    from phasetools import io

    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} not found: the chain's exact MFPT is computed and stored by "
                                f"`python examples/rare_validation.py --chain-exact` (about a minute per dU/T); "
                                f"run it first, in this directory")
    names = {e.name for e in io.list_results(path) if e.complete}
    ch, out = _chain(), {}
    for r in ratios:
        if _chain_name(r) in names:
            res = io.load(path, _chain_name(r))
            if not np.isclose(res.temperature, ch.barrier / r, rtol=1e-12):
                raise ValueError(f"{path}: {_chain_name(r)} was computed at T = {res.temperature}, not at the "
                                 f"chain's T = {ch.barrier / r} (another chain?); recompute with --chain-exact")
            if len(res.spacings) <= res.degree:
                raise ValueError(f"{path}: {_chain_name(r)} has spacings on {len(res.spacings)} grid(s), not "
                                 f"extrapolated to h = 0 (needs more than degree = {res.degree}); recompute with "
                                 f"--chain-exact")
            out[r] = res
    return out


def chain_kramers(ratios=(10, 15, 20, 25), k=30):
    """The paper's 3-weight chain (eta = 0.8, weight decay 0.32), forward: ``k`` independent
    estimates per barrier against its exact MFPT (stored in ``CHAIN_FILE`` by ``--chain-exact``)
    where it was computed, else (also when the file is missing, with a note) against
    Eyring-Kramers with its 4 saddles (``problem.theory_tau``); prints the ratio of Eyring-Kramers to the exact value, and the
    finite-barrier error of the same asymptotics in 1D: Kramers against the exact MFPT of the
    reduced potential with the same barrier (the chain's balanced direction).

    Parameters
    ----------
    ratios : sequence of float
        The barriers ``dU/T``.
    k : int
        Estimates per row.
    """
    import sys

    ch = _chain()
    red = escape_problem("reduced", n_layers=3, c=0.8, gamma=0.32, direction="fwd", convention="paper")
    try:
        stored = stored_chain_exact(ratios)
    except FileNotFoundError as err:     # every barrier against Eyring-Kramers only
        print(f"note: {err}; comparing with Eyring-Kramers only", file=sys.stderr, flush=True)
        stored = {}
    for r in ratios:
        T = ch.barrier / r
        ek = ch.theory_tau(T)
        exact = stored[r].tau if r in stored else None
        print(f"dU/T = {r}: 1D Kramers / exact MFPT of the reduced potential (n = 3 fwd) "
              f"{red.kramers_tau(T) / red.exact_mfpt(T):.4f}; chain: Eyring-Kramers {ek:.4g}, exact "
              f"{f'not in {CHAIN_FILE}' if exact is None else f'{exact:.4g}, EK / exact {ek / exact:.4f}'}",
              flush=True)
        base = 4_000_000 + 1000 * int(r)
        label = "chain n=3 fwd against " + ("Eyring-Kramers" if exact is None else "the exact MFPT")
        coverage_of(label, ch, r, ek if exact is None else exact, DEEP_COVERAGE, list(range(base, base + k)))


def chain_exact(ratios=(10, 15, 20, 25), k=None, path=CHAIN_FILE):
    """The chain's exact forward MFPT (:func:`phasetools.rare.chain_exact_mfpt` on the ten grids
    ``CHAIN_EXACT_GRIDS``, quadratic in ``h^2``) against Eyring-Kramers with its 4 saddles, each
    stored in ``path`` as ``chain_fwd_dUT<r>`` (ratios already stored are skipped). Also prints
    the extrapolation through the six coarse grids (``rare.CHAIN_GRIDS``, the test's oracle).

    Parameters
    ----------
    ratios : sequence of float
        The barriers ``dU/T``.
    k : None
        Unused (the options of the other modes).
    path : str
        The HDF5 file of the results.
    """
    import os

    from phasetools import io
    from phasetools.rare import CHAIN_GRIDS, chain_exact_mfpt

    ch = _chain()
    names = {e.name for e in io.list_results(path)} if os.path.exists(path) else set()
    for r in ratios:
        if _chain_name(r) in names:
            print(f"dU/T = {r}: already in {path} ({_chain_name(r)}); delete it to recompute", flush=True)
            continue
        res = chain_exact_mfpt(ch, ch.barrier / r, grids=CHAIN_EXACT_GRIDS)
        for h, tau, m in zip(res.spacings, res.taus, res.n_unknowns):
            print(f"dU/T = {r}, h = {h:.4f} ({m} unknowns): tau = {tau:.7g}", flush=True)
        coarse = np.polyfit(res.spacings[:len(CHAIN_GRIDS)] ** 2, res.taus[:len(CHAIN_GRIDS)], 2)[-1]
        ek = ch.theory_tau(ch.barrier / r)
        print(f"dU/T = {r}: converged tau (h -> 0) {res.tau:.6g} +- {res.tau_stderr / res.tau:.1e} (relative); "
              f"the six coarse grids alone {coarse:.6g}; Eyring-Kramers {ek:.5g}; "
              f"EK / exact {ek / res.tau:.4f}; {res.stats['wall_time']:.0f} s", flush=True)
        io.save(res, path, name=_chain_name(r))


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    for flag in ("--seeds", "--coverage", "--coverage-deep", "--replicas", "--coverage-reduced", "--chain-kramers",
                 "--chain-exact"):
        group.add_argument(flag, dest="mode", action="store_const", const=flag)
    parser.add_argument("--ratios", default=None,
                        help="comma-separated dU/T (--coverage-reduced, --chain-kramers, --chain-exact)")
    parser.add_argument("--k", type=int, default=30, help="estimates per row (--coverage-reduced, --chain-kramers)")
    parser.add_argument("--layers", default="3,4", help="comma-separated n_layers (--coverage-reduced)")
    args = parser.parse_args()
    extra = {"k": args.k}
    if args.mode == "--coverage-reduced":
        extra["layers"] = [int(v) for v in args.layers.split(",")]
    if args.ratios:
        extra["ratios"] = [float(v) if "." in v else int(v) for v in args.ratios.split(",")]
    modes = {"--seeds": seeds, "--coverage": coverage, "--coverage-deep": coverage_deep, "--replicas": replicas,
             "--coverage-reduced": lambda: coverage_reduced(**extra), "--chain-kramers": lambda: chain_kramers(**extra),
             "--chain-exact": lambda: chain_exact(**extra)}
    try:
        modes.get(args.mode, table)()
    except (FileNotFoundError, ValueError) as err:      # a missing or mismatched stored result: one line
        import sys

        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
