"""Timing of the vectorised theory layer (phasetools.theory).

Measures, for ``n_layers = 3`` in the canonical convention with random modes
(``|c|`` uniform in [0.5, 1.5], random sign, ``a = 1``, coupling ``gamma = u * 1.1 * gamma_sp(c)``
with ``u`` uniform in [0, 1], so about 9 % of the modes have no learned state):

* ``critical_points(3, c)`` on 10^6 modes;
* ``landscape(3, c, gamma)`` on 10^5 and 10^6 modes;
* ``eyring_kramers_time(3, c, gamma, T)`` on 10^5 modes (``T = 0.01``, forward);
* the stationary points on 10^4 modes: ``landscape`` against a naive per-element
  ``scipy.optimize.brentq`` loop on the same brackets, in the same run.

"First call" is the call in a fresh interpreter (after ``import phasetools.theory``, timed
separately): it includes the sympy derivation of the closed forms and their compilation
with ``lambdify``, which are cached for the rest of the process. "Steady state" is the
median of ``--repeats`` calls after that. Prints markdown tables.

    python benchmarks/bench_theory.py [--repeats 9] [--fresh 3] [--seed 0]

Not a test: pytest collects ``tests/`` only, and this file has no ``test_`` prefix.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

N_LAYERS = 3
TEMPERATURE = 0.01

CASES = {  # name -> (label, number of modes)
    "critical_1e6": ("`critical_points(3, c)`", 10**6),
    "landscape_1e5": ("`landscape(3, c, gamma)`", 10**5),
    "landscape_1e6": ("`landscape(3, c, gamma)`", 10**6),
    "eyring_1e5": (f"`eyring_kramers_time(3, c, gamma, {TEMPERATURE})`", 10**5),
}


def gamma_sp_closed_form(n, c, a=1.0):
    """Spinodal coupling (science brief section 2.3), in plain numpy.

    Used to draw the couplings without touching phasetools, so that the first timed call
    of a fresh process still contains the sympy derivation.
    """
    c = np.abs(c)
    return n * c / (2 * (n - 1)) * ((n - 2) * c / (2 * (n - 1) * a)) ** ((n - 2) / n)


def make_inputs(n_modes, seed):
    rng = np.random.default_rng(seed)
    c = rng.uniform(0.5, 1.5, n_modes) * rng.choice([-1.0, 1.0], n_modes)
    gamma = rng.uniform(0.0, 1.0, n_modes) * 1.1 * gamma_sp_closed_form(N_LAYERS, c)
    return c, gamma


def call(name, th, c, gamma):
    if name.startswith("critical"):
        return th.critical_points(N_LAYERS, c)
    if name.startswith("landscape"):
        return th.landscape(N_LAYERS, c, gamma)
    if name.startswith("eyring"):
        return th.eyring_kramers_time(N_LAYERS, c, gamma, TEMPERATURE)
    raise ValueError(name)


# -- first call in a fresh interpreter ------------------------------------------------
def _first_call_child(name, seed):
    t0 = time.perf_counter()
    import phasetools.theory as th
    t_import = time.perf_counter() - t0
    c, gamma = make_inputs(CASES[name][1], seed)
    t0 = time.perf_counter()
    call(name, th, c, gamma)
    t_first = time.perf_counter() - t0
    print(json.dumps({"import": t_import, "first": t_first}))


def first_call(name, seed, fresh):
    runs = []
    for _ in range(fresh):
        out = subprocess.run([sys.executable, __file__, "--_child", name, "--seed", str(seed)],
                             check=True, capture_output=True, text=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return (float(np.median([r["import"] for r in runs])), float(np.median([r["first"] for r in runs])))


# -- steady state -----------------------------------------------------------------------
def steady(fn, repeats):
    fn()  # warm-up (compiled functions are cached per process)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), float(np.min(times)), float(np.max(times))


def interleaved(fast, slow, repeats):
    """Alternate the two calls so that both see the same machine load.

    Returns the median times and the median of the per-pair ratios slow / fast.
    """
    fast(), slow()
    t_fast, t_slow = [], []
    for _ in range(repeats):
        for fn, out in ((fast, t_fast), (slow, t_slow)):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
    ratios = np.array(t_slow) / np.array(t_fast)
    return float(np.median(t_fast)), float(np.median(t_slow)), ratios


def brentq_stationary(c, gamma, a=1.0):
    """Naive reference: one ``brentq`` per root and per mode, same brackets as the library."""
    from scipy.optimize import brentq

    n = N_LAYERS
    b_s = np.full(c.size, np.nan)
    b_m = np.full(c.size, np.nan)
    for i in range(c.size):
        ci, gi = abs(float(c[i])), float(gamma[i])
        g_sp = n * ci / (2 * (n - 1)) * ((n - 2) * ci / (2 * (n - 1) * a)) ** ((n - 2) / n)
        if not 0.0 < gi < g_sp:
            continue
        b_sp = ((n - 2) * ci / (2 * (n - 1) * a)) ** (1.0 / n)
        b_top = (ci / a) ** (1.0 / n)

        def h(b, ci=ci, gi=gi):  # U'(b) / (2 n b)
            return a * b ** (2 * n - 2) - ci * b ** (n - 2) + gi

        b_s[i] = brentq(h, 0.0, b_sp, xtol=1e-15)
        b_m[i] = brentq(h, b_sp, b_top, xtol=1e-15)
    return b_s, b_m


def machine_note():
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import scipy
    import sympy
    return (f"{cpu}, {os.cpu_count()} cores; Python {platform.python_version()}, numpy {np.__version__}, "
            f"scipy {scipy.__version__}, sympy {sympy.__version__}")


def fmt_t(t):
    return f"{t * 1e3:.1f} ms" if t < 1.0 else f"{t:.2f} s"


def main(argv=None):
    parser = argparse.ArgumentParser(description="Timing of phasetools.theory")
    parser.add_argument("--repeats", type=int, default=9, help="steady-state repeats (median; default 9)")
    parser.add_argument("--fresh", type=int, default=3,
                        help="fresh interpreters for the first-call time (median; default 3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--_child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._child:
        _first_call_child(args._child, args.seed)
        return

    import phasetools.theory as th

    print(f"Machine: {machine_note()}\n")
    print(f"n_layers = {N_LAYERS}, canonical convention, seed {args.seed}; first call: median of "
          f"{args.fresh} fresh interpreters; steady state: median of {args.repeats} calls "
          "(min-max in brackets).\n")
    rows = []
    t_imports = []
    for name, (label, n_modes) in CASES.items():
        t_import, t_first = first_call(name, args.seed, args.fresh)
        t_imports.append(t_import)
        c, gamma = make_inputs(n_modes, args.seed)
        med, lo, hi = steady(lambda: call(name, th, c, gamma), args.repeats)
        rows.append((label, n_modes, t_first, med, lo, hi))
    print("| call | modes | first call (fresh process) | steady state, median [min-max] | per mode |")
    print("|---|---:|---:|---:|---:|")
    for label, n_modes, t_first, med, lo, hi in rows:
        print(f"| {label} | 10^{int(round(np.log10(n_modes)))} | {fmt_t(t_first)} | "
              f"{fmt_t(med)} [{fmt_t(lo)}-{fmt_t(hi)}] | {med / n_modes * 1e9:.0f} ns |")
    print(f"\n`import phasetools.theory` (sympy, scipy): {fmt_t(float(np.median(t_imports)))}, "
          "not included in the first-call times.\n")

    # Side by side: vectorised landscape against a per-element brentq loop, same run, same modes.
    n_modes = 10**4
    c, gamma = make_inputs(n_modes, args.seed + 1)
    t_vec, t_loop, ratios = interleaved(lambda: th.landscape(N_LAYERS, c, gamma),
                                        lambda: brentq_stationary(c, gamma), args.repeats)
    L = th.landscape(N_LAYERS, c, gamma)
    b_s, b_m = brentq_stationary(c, gamma)
    ok = np.isfinite(b_s)
    same_mask = np.array_equal(~np.ma.getmaskarray(L.b_saddle), ok)
    diff = max(np.max(np.abs(np.ma.filled(L.b_saddle, np.nan)[ok] - b_s[ok])),
               np.max(np.abs(np.ma.filled(L.b_min, np.nan)[ok] - b_m[ok])))
    print(f"Stationary points of 10^4 modes ({int(ok.sum())} with both a saddle and a learned minimum):\n")
    print("| method | time (median) | time ratio (median of pairs) [min-max] |")
    print("|---|---:|---:|")
    print(f"| `landscape(3, c, gamma)` (vectorised Chandrupatla; full result) | {fmt_t(t_vec)} | 1 |")
    print(f"| per-element `scipy.optimize.brentq` loop (`b_saddle`, `b_min` only) | {fmt_t(t_loop)} | "
          f"{np.median(ratios):.1f} [{ratios.min():.1f}-{ratios.max():.1f}] |")
    print(f"\nThe two are timed alternately ({args.repeats} pairs) so that both see the same load.")
    print(f"\nSame modes found absent: {same_mask}; max |difference| of b_saddle, b_min: {diff:.1e}.")


if __name__ == "__main__":
    main()
