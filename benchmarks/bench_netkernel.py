"""The structured network kernel (phasetools/langevin/_netkernel.py): first-call cost and speed.

1. **First call**, per width ``w`` in 2, 4, 6, 10: ``escape_problem("network", n_layers=3,
   c=0.8, gamma=0.32, width=w, direction="bwd", convention="paper")`` and one
   ``simulate(..., temperature=0.004, n_traj=64, max_steps=2000)`` call, in a fresh
   interpreter with empty kernel and numba caches (``PHASETOOLS_CACHE_DIR`` and
   ``NUMBA_CACHE_DIR`` point at a new temporary folder), then in a second fresh interpreter
   with the caches the first one filled. Columns: the call's wall time, ``compile_time``,
   ``setup_time``, ``wall_time`` (the kernel run), and the process's CPU time for the call.
   Then the paper's network (2 -> 10 -> 10 -> 2, 140 weights, ``S_xx = I``,
   ``S_yx = diag(0.9, 0.8)``, ``S_yy = I``, ``gamma = 0.32``, ``convention="paper"``) with
   SGD-like noise (``lr = 0.08``, ``batch_size = 4``), from the import of phasetools to the end
   of the first call, empty and filled caches; the same for the width-2 escape problem with
   SGD-like noise (``pr.sgd_noise(0.08, 4)``: the ``scalar`` worker); and a check that other
   widths, depths and data sets with the same noise and scheme after it compile nothing (``compile_time`` 0 and one compiled worker over
   ``WORKERS``, ``SCALAR_WORKERS`` and ``DATA_WORKERS``: a run compiles only the worker variant
   of its noise, scheme and order-parameter kind).
2. **Steps per second per core**, in interleaved rounds (every round runs every contender
   once, in an order rotated by a pair from round to round and reversed on every other
   repeat, so each structured kernel runs before its reference as often as after it; medians
   over rounds, ratios as medians of per-round ratios), one thread each (``n_threads=1``,
   checked), in this process. Each kernel run is timed by the calling thread's CPU time
   (``time.thread_time``: other jobs on a shared machine do not count) and by wall time; the
   CPU figures are the reliable ones, the tables print both. ``thread_time`` sees a kernel's
   work only when it runs in the calling thread: the structured kernel's single worker does,
   and the generated kernel's one-thread ``prange`` normally does under numba's ``omp`` and
   ``tbb`` threading layers (the calling thread takes part in the parallel region), not under
   ``workqueue`` (its worker threads do the work): the bench prints ``numba.threading_layer()``,
   warns under ``workqueue`` and prints, per contender, the calling thread's share of the
   process's CPU time during the kernel runs (about 1 when the kernel runs in the calling
   thread). The width-2 kernels' runs are short, so each round takes 5 of their runs (2 at
   full size), interleaved with the other contenders'; the tables give the per-round best and
   the per-round median side by side (scatter favours the kernel that scatters more in the
   best, not in the median):

   * width 10 (additive noise, the escape problem above, 1 -> 10 -> 10 -> 1, and the paper's
     2 -> 10 -> 10 -> 2 with SGD-like noise): the structured kernel against
     :func:`numpy_reference`, which advances the whole ensemble with batched matrix products
     (``numpy.matmul`` over the trajectory axis), the same drift, noise and stop test;
   * width 2: the structured kernel against the generated (sympy) kernel,
     ``network(..., kernel="sympy")``, on the same streams.

    python benchmarks/bench_netkernel.py            # about 15 minutes on 2 quiet cores
    python benchmarks/bench_netkernel.py --quick    # fewer steps, 9 rounds; widths 2 and 10
    python benchmarks/bench_netkernel.py --skip-first-call --quick   # the speed table alone (about 3 minutes)
    python benchmarks/bench_netkernel.py --cold-rounds 3   # the paper network's cold first call only
    python benchmarks/bench_netkernel.py --cold-rounds 2 --cold-model w2-sgd --other-code /tmp/old
        # the width-2 SGD-like cold first call, helper off, this tree's code against the
        # phasetools of another checkout (e.g. ``git archive <commit> | tar -x -C /tmp/old``),
        # alternated

3. With ``--cold-rounds N``: the first call on empty caches of the paper's network
   (``--cold-model paper``, the default) or of the width-2 escape problem with SGD-like noise
   (``--cold-model w2-sgd``), with and without the compile helper process
   (``PHASETOOLS_COMPILE_HELPER=1`` / ``0``: forced, whatever the load; by default the helper
   starts only when the load average leaves a core idle), in ``N`` interleaved rounds (the order
   alternates); wall time, CPU time of the call (this process plus the helper) and the load
   average. With ``--other-code DIR``: this tree's code against the ``phasetools`` package in
   ``DIR`` (put first on ``PYTHONPATH`` of the fresh interpreter; the file it imported is
   printed), both with the helper off.

On empty caches the first call shares the compilation with a helper process
(``phasetools._numba.compile_shared``); the CPU times printed include that process's.

Options: ``--rounds N`` (default 5; quick 9), ``--skip-first-call``, ``--cold-rounds N`` (then
only that table, unless ``--speed``), ``--cold-model``, ``--other-code DIR``, ``--json PATH``.
Prints markdown tables. Not a test (no ``test_`` prefix).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402

FIRST_CALL = """
import json, resource, sys, time
t0 = time.perf_counter()
c0 = time.process_time()
import numpy as np
import phasetools
from phasetools.langevin import SGDNoise, Threshold, escape_problem, network, simulate
from phasetools.langevin import _netkernel as nk
t_import = time.perf_counter() - t0
case = json.loads(sys.argv[1])
if case["model"] == "escape":
    pr = escape_problem("network", n_layers=3, c=0.8, gamma=0.32, width=case["width"], direction="bwd",
                        convention="paper")
    pot, x0, kw = pr.potential, pr.x0, dict(temperature=0.004, stop=pr.stop)
    if case.get("sgd"):   # SGD-like noise (one input, one output: the scalar worker)
        kw = dict(noise=pr.sgd_noise(0.08, 4), stop=pr.stop)
else:
    C = np.diag([0.9, 0.8])
    pot = network(3, 10, np.eye(2), C, 0.32, convention="paper")
    x0 = np.random.default_rng(0).normal(scale=0.3, size=pot.dim)
    kw = dict(noise=SGDNoise(0.08, 4, np.eye(2), C, np.eye(2)), stop=Threshold(0.05, "down"))
t1 = time.perf_counter()
c1 = time.process_time()
r = simulate(pot, x0, dt=0.01, n_traj=64, max_steps=2000, rng=1, **kw)
child = resource.getrusage(resource.RUSAGE_CHILDREN)   # the compile helper process (empty caches)
child_cpu = child.ru_utime + child.ru_stime
out = {"import": t_import, "call": time.perf_counter() - t1, "call_cpu": time.process_time() - c1 + child_cpu,
       "helper_cpu": child_cpu, "total": time.perf_counter() - t0, "total_cpu": time.process_time() - c0 + child_cpu,
       "phasetools": phasetools.__file__, **{k: r.stats[k] for k in ("compile_time", "setup_time", "wall_time")}}
if case.get("others"):   # other widths, depths and data sets, same noise and scheme, after it
    extra = []   # (not one input and one output: with SGD-like noise that structure has its own worker)
    for n, h, din, dout in [(3, 4, 2, 2), (4, 6, 3, 1), (2, 10, 1, 2)]:
        S = np.full((dout, din), 0.5)
        p = network(n, h, np.eye(din), S, 0.1)
        rr = simulate(p, np.full(p.dim, 0.2), noise=SGDNoise(0.08, 4, np.eye(din), S, np.eye(dout)), dt=0.01,
                      n_traj=8, max_steps=100, stop=Threshold(-10.0, "down"), rng=2)
        extra.append(rr.stats["compile_time"])
    out["others_compile"] = extra
    out["signatures"] = sum(len(w.signatures) for workers in (nk.WORKERS, nk.SCALAR_WORKERS, nk.DATA_WORKERS)
                            for w in workers.values())
sys.stdout.write(json.dumps(out))
"""


COLD_MODELS = {"paper": {"model": "paper"}, "w2-sgd": {"model": "escape", "width": 2, "sgd": True}}


def first_call(case, cache, helper=None, code=None):
    """One fresh interpreter running ``case`` with its caches in the folder ``cache`` (``helper``:
    True with the compile helper process, ``PHASETOOLS_COMPILE_HELPER=1``, False without, ``=0``,
    whatever the load; None: the default, a helper when the load average leaves a core idle;
    ``code``: a folder holding another ``phasetools`` package, put first on ``PYTHONPATH``)."""
    env = dict(os.environ, PHASETOOLS_CACHE_DIR=cache, NUMBA_CACHE_DIR=os.path.join(cache, "numba"))
    env.pop("PHASETOOLS_COMPILE_HELPER", None)
    if helper is not None:
        env["PHASETOOLS_COMPILE_HELPER"] = "1" if helper else "0"
    if code is not None:
        env["PYTHONPATH"] = os.pathsep.join([os.path.abspath(code)] + [p for p in [env.get("PYTHONPATH")] if p])
    out = subprocess.run([sys.executable, "-c", FIRST_CALL, json.dumps(case)], env=env, capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout)


def first_call_table(widths):
    rows = []
    for w in widths:
        with tempfile.TemporaryDirectory() as cache:
            cold = first_call({"model": "escape", "width": w}, cache)
            warm = first_call({"model": "escape", "width": w}, cache)
        rows.append((w, cold, warm))
    print("| width | weights | first call | compile | setup | kernel run | CPU of the call (of it the helper) | "
          "filled cache: first call |")
    print("|---|---|---|---|---|---|---|---|")
    for w, c, h in rows:
        print(f"| {w} | {2 * w + w * w} | {c['call']:.1f} s | {c['compile_time']:.1f} s | {c['setup_time']:.2f} s | "
              f"{c['wall_time']:.3f} s | {c['call_cpu']:.1f} s ({c['helper_cpu']:.1f} s) | {h['call']:.2f} s |")
    with tempfile.TemporaryDirectory() as cache:
        cold = first_call({"model": "paper", "others": True}, cache)
        warm = first_call({"model": "paper"}, cache)
    with tempfile.TemporaryDirectory() as cache:   # the width-2 escape problem, SGD-like: the scalar worker
        cold2 = first_call(COLD_MODELS["w2-sgd"], cache)
        warm2 = first_call(COLD_MODELS["w2-sgd"], cache)
    print()
    print("| SGD-like noise | import | first call | compile | setup | kernel run | "
          "import + call | CPU of the call (of it the helper) | CPU of import + call |")
    print("|---|---|---|---|---|---|---|---|---|")
    for label, c in (("paper's network, empty caches", cold), ("paper's network, filled caches", warm),
                     ("width-2 escape problem, empty caches", cold2), ("width-2 escape problem, filled caches", warm2)):
        print(f"| {label} | {c['import']:.1f} s | {c['call']:.2f} s | {c['compile_time']:.2f} s | "
              f"{c['setup_time']:.2f} s | {c['wall_time']:.3f} s | {c['total']:.1f} s | {c['call_cpu']:.1f} s "
              f"({c['helper_cpu']:.1f} s) | {c['total_cpu']:.1f} s |")
    print(f"\nafter the paper's network, other widths/depths/data sets: compile_time {cold['others_compile']}, "
          f"worker signatures {cold['signatures']}")
    return {"widths": rows, "paper": {"cold": cold, "warm": warm}, "w2 sgd": {"cold": cold2, "warm": warm2}}


def cold_rounds(rounds, model="paper", other_code=None):
    """The first call on empty caches of ``model`` (a key of :data:`COLD_MODELS`), with and without
    the compile helper process, or (``other_code``: a folder holding another ``phasetools``) this
    tree's code against that one, both without the helper; in interleaved rounds (the order
    alternates); wall, CPU (this process and the helper) and the 1-minute load average before
    each call."""
    if other_code is None:
        arms = {"helper": {"helper": True}, "no helper": {"helper": False}}
    else:
        arms = {"this code, no helper": {"helper": False},
                f"{other_code}, no helper": {"helper": False, "code": other_code}}
    res = {k: [] for k in arms}
    for r in range(rounds):
        for k in (list(arms) if r % 2 == 0 else list(arms)[::-1]):
            load = os.getloadavg()[0]
            with tempfile.TemporaryDirectory() as cache:
                c = first_call(COLD_MODELS[model], cache, **arms[k])
            c["load"] = load
            res[k].append(c)
            print(f"round {r + 1}, {k}: call {c['call']:.1f} s wall, {c['call_cpu']:.1f} s CPU (helper "
                  f"{c['helper_cpu']:.1f} s), load {load:.2f}; {c['phasetools']}", file=sys.stderr)
    print(f"\n| {model}, SGD-like, empty caches | first call wall (median) | per round | "
          "CPU of the call (median; of it the helper) | CPU of this process, per round | "
          "load average (1 min) before each |")
    print("|---|---|---|---|---|---|")
    for k, cs in res.items():
        walls = ", ".join(f"{c['call']:.1f}" for c in cs)
        mains = ", ".join(f"{c['call_cpu'] - c['helper_cpu']:.1f}" for c in cs)
        loads = ", ".join(f"{c['load']:.1f}" for c in cs)
        print(f"| {k} | {np.median([c['call'] for c in cs]):.1f} s | {walls} | "
              f"{np.median([c['call_cpu'] for c in cs]):.1f} s ({np.median([c['helper_cpu'] for c in cs]):.1f} s) | "
              f"{mains} | {loads} |")
    return res


# --- the numpy reference -------------------------------------------------------------------------
def numpy_reference(st, x0, steps, *, dt, temperature=None, noise=None, level=0.0, direction=-1.0, seed=0):
    """Euler steps of the whole ensemble with batched matrix products (``numpy.matmul``).

    The same work per step as the structured kernel: prefix products at the new state (kept
    for the next step), suffix products, the residual, one back-propagation of
    ``E = dt * 2 kappa (M S_xx - S_yx) (+ scale L z)`` (SGD-like noise: ``K`` built per
    trajectory and factorised by ``numpy.linalg.cholesky``), the weight decay, additive
    normals, the order parameter ``sum E_ab M_ab`` and the stop test (a stopped trajectory
    keeps being advanced; it is only counted). Returns trajectory-steps done and the states.
    """
    rng = np.random.default_rng(seed)
    x = np.array(x0, dtype=float)
    n = x.shape[0]
    dims = st.dims
    nl = len(dims) - 1
    shapes = [(dims[k + 1], dims[k]) for k in range(nl)]
    offs = np.cumsum([0] + [r * c for r, c in shapes])
    sxx, syx = st.input_cov, st.cross_cov
    emat = st.order_matrix
    two_kappa, decay = 2.0 * st.kappa, 2.0 * st.kappa * st.gamma * dt
    sigma = 0.0 if temperature is None else np.sqrt(2.0 * temperature * dt)
    if noise is not None:
        nxx, nyx, nyy = noise.input_cov, noise.cross_cov, noise.output_cov
        scale = two_kappa * np.sqrt(noise.lr * dt * noise.factor / noise.batch_size)
        p, d = nyx.shape

    def weights(x):
        return [x[:, offs[k]:offs[k + 1]].reshape(n, *shapes[k]) for k in range(nl)]

    def prefix(W):
        pre = [W[0]]
        for w in W[1:]:
            pre.append(w @ pre[-1])
        return pre

    W = weights(x)
    pre = prefix(W)
    stopped = np.zeros(n, dtype=bool)
    for _ in range(steps):
        M = pre[-1]
        E = dt * two_kappa * (M @ sxx - syx)
        if noise is not None:
            R = nyx - M @ nxx
            Q = nyy - M @ nyx.T - nyx @ np.swapaxes(M, 1, 2) + M @ nxx @ np.swapaxes(M, 1, 2)
            K = (np.einsum("nac,bd->nabcd", Q, nxx) + np.einsum("nad,ncb->nabcd", R, R)).reshape(n, p * d, p * d)
            L = np.linalg.cholesky(K)
            E = E + scale * (L @ rng.standard_normal((n, p * d, 1))).reshape(n, p, d)
        # suffix products A_k = W_n ... W_{k+1} and the layer gradients A_k^T E P_{k-1}^T
        suf = W[-1]
        out = [None] * nl
        out[nl - 1] = E @ np.swapaxes(pre[nl - 2], 1, 2) if nl > 1 else E
        for k in range(nl - 2, -1, -1):
            left = np.swapaxes(suf, 1, 2) @ E
            out[k] = left @ np.swapaxes(pre[k - 1], 1, 2) if k > 0 else left
            suf = suf @ W[k]
        g = np.concatenate([o.reshape(n, -1) for o in out], axis=1)
        x = x - (g + decay * x)
        if sigma:
            x += sigma * rng.standard_normal(x.shape)
        W = weights(x)
        pre = prefix(W)
        phi = np.einsum("nab,ab->n", pre[-1], emat)
        stopped |= direction * (phi - level) >= 0.0
    return n * steps, x


# --- steps per second, interleaved rounds -----------------------------------------------------
_CALLS = []   # (trajectories, CPU s of the calling thread, wall s, CPU s of the process) of each clocked kernel run


class _Clocked:
    """A kernel's ``run`` that records the calling thread's CPU time (``time.thread_time``) and the
    wall time of each call in ``_CALLS`` (one thread: the kernel runs in the calling thread, so
    its CPU time is the kernel's, whatever else the machine runs)."""

    def __init__(self, run):
        self._run = run

    @property
    def signatures(self):
        return self._run.signatures

    def __call__(self, *args, **kw):
        c0, t0, p0 = time.thread_time(), time.perf_counter(), time.process_time()
        self._run(*args, **kw)
        _CALLS.append((args[0].shape[0], time.thread_time() - c0, time.perf_counter() - t0, time.process_time() - p0))


def _clock_kernels(sympy_potentials):
    """Clock the structured kernel's run (``_netkernel.run``) and the generated kernels' of
    ``sympy_potentials`` (``(potential, sgd)`` pairs)."""
    from phasetools.langevin import _netkernel as nk
    from phasetools.langevin._codegen import kernel_module

    if not isinstance(nk.run, _Clocked):
        nk.run = _Clocked(nk.run)
    for pot, sgd in sympy_potentials:
        mod = kernel_module(pot, sgd=sgd)
        if not isinstance(mod.run, _Clocked):
            mod.run = _Clocked(mod.run)


def contenders(quick):
    from phasetools.langevin import SGDNoise, Threshold, escape_problem, network, simulate

    n_traj, steps = (256, 2000) if quick else (1024, 10_000)
    out = {}
    pr10 = escape_problem("network", n_layers=3, c=0.8, gamma=0.32, width=10, direction="bwd", convention="paper")
    kw = dict(temperature=0.004, dt=0.01, n_traj=n_traj, max_steps=steps, stop=pr10.stop, n_threads=1)

    def kernel(pot, x0, **kw):
        def go(seed):  # (trajectory-steps, wall s, thread CPU s, process CPU s) of the kernel run (not the setup)
            _CALLS.clear()
            r = simulate(pot, x0, rng=seed, **kw)
            n, cpu, wall, proc = _CALLS[-1]
            assert n == kw["n_traj"] and r.stats["n_threads"] == 1, (_CALLS, r.stats["n_threads"])
            return r.stats["steps_total"], wall, cpu, proc
        return go

    def reference(st, x0, n_steps, **kw):
        def go(seed):
            t0, c0, p0 = time.perf_counter(), time.thread_time(), time.process_time()
            done, _ = numpy_reference(st, np.broadcast_to(x0, (kw.pop("n", n_traj), st.n_params)), n_steps, seed=seed,
                                   **kw)
            return done, time.perf_counter() - t0, time.thread_time() - c0, time.process_time() - p0
        return go

    ref_steps = max(steps // 10, 100)
    out["w10 additive: structured"] = kernel(pr10.potential, pr10.x0, **kw)
    out["w10 additive: numpy"] = reference(pr10.potential.structure, pr10.x0, ref_steps, dt=0.01, temperature=0.004,
                                           level=pr10.stop.level, direction=-1.0)
    C = np.diag([0.9, 0.8])
    paper = network(3, 10, np.eye(2), C, 0.32, convention="paper")
    x0 = np.random.default_rng(0).normal(scale=0.3, size=paper.dim)
    sgd = SGDNoise(0.08, 4, np.eye(2), C, np.eye(2))
    out["paper SGD: structured"] = kernel(paper, x0, noise=sgd, dt=0.01, n_traj=n_traj, max_steps=steps,
                                          stop=Threshold(-10.0, "down"), n_threads=1)
    out["paper SGD: numpy"] = reference(paper.structure, x0, ref_steps, dt=0.01, noise=sgd, level=-10.0,
                                        direction=-1.0)
    pr2 = escape_problem("network", n_layers=3, c=0.8, gamma=0.32, width=2, direction="bwd", convention="paper")
    sym2 = network(3, 2, [[1.0]], [[0.8]], 0.32, convention="paper", kernel="sympy")
    _clock_kernels([(sym2, False), (sym2, True)])
    kw2 = dict(kw, stop=pr2.stop)
    out["w2 additive: structured"] = kernel(pr2.potential, pr2.x0, **kw2)
    out["w2 additive: sympy"] = kernel(sym2, pr2.x0, **kw2)
    out["w2 SGD: structured"] = kernel(pr2.potential, pr2.x0, **dict(kw2, temperature=None,
                                                                       noise=pr2.sgd_noise(0.08, 4)))
    out["w2 SGD: sympy"] = kernel(sym2, pr2.x0, **dict(kw2, temperature=None, noise=pr2.sgd_noise(0.08, 4)))
    return out


def _reps(name, quick):
    """Runs of a contender per round: the width-2 kernels' runs are short (about 10 ms in quick
    mode), so a round takes several, interleaved with the other contenders' (the tables give
    their best and their median)."""
    return (5 if quick else 2) if name.startswith("w2 ") else 1


def threading_check():
    """``numba.threading_layer()`` (after a parallel kernel has run), with a warning under
    ``workqueue``: its worker threads run a ``prange`` even with one thread, so the calling
    thread's CPU time (``time.thread_time``) would miss the generated kernel's work."""
    import numba

    try:
        layer = numba.threading_layer()
    except ValueError:   # no parallel kernel has run
        layer = "none initialised"
    print(f"numba threading layer: {layer}; numba threads: {numba.get_num_threads()}; kernels run with n_threads=1")
    if layer == "workqueue":
        print("WARNING: numba's workqueue threading layer runs the generated kernel's prange in worker threads: "
              "its thread CPU time misses that work; see the 'thread share' column, prefer the wall figures or "
              "install tbb / use NUMBA_THREADING_LAYER=omp", file=sys.stderr)
    return layer


def _order(names, r, rep):
    """The contenders' order in repeat ``rep`` of round ``r``: rotated by one (structured,
    reference) pair per round, reversed on every other repeat (alternating from round to round),
    so a structured kernel runs before its reference as often as after it (to within one)."""
    k = (2 * r) % len(names)
    order = names[k:] + names[:k]
    return order[::-1] if (r + rep) % 2 else order


def speed_table(quick, rounds):
    """Interleaved rounds (order rotated per round and reversed on every other repeat) of every
    contender, one thread each; rates from the kernel run's wall time and from its CPU time
    (``time.thread_time``), the best and the median of :func:`_reps` runs per round; each ratio is
    the median over rounds of the per-round ratio (CPU and wall), so one disturbed round cannot
    move it."""
    runs = contenders(quick)
    names = list(runs)
    for name in names:   # warm-up: compile (or load) every kernel outside the timing
        runs[name](0)
    layer = threading_check()
    per_round, share = [], {name: [] for name in names}
    for r in range(rounds):
        times = {name: [] for name in names}
        for rep in range(max(_reps(name, quick) for name in names)):   # repeats interleaved too
            for name in _order(names, r, rep):
                if rep < _reps(name, quick):
                    done, wall, cpu, proc = runs[name](r + 1)   # the same seed: the same work in every repeat
                    times[name].append((done, wall, cpu))
                    share[name].append(cpu / proc if proc > 0 else float("nan"))
        res = {}
        for name, ts in times.items():
            done = ts[0][0]
            walls, cpus = [t[1] for t in ts], [t[2] for t in ts]
            res[name] = {"wall": done / min(walls), "cpu": done / min(cpus),
                         "wall_med": done / float(np.median(walls)), "cpu_med": done / float(np.median(cpus))}
        per_round.append(res)
        print(f"round {r + 1} (CPU, best): " + ", ".join(f"{k} {v['cpu']:.3g}" for k, v in res.items()),
              file=sys.stderr)
    cols = ("cpu", "cpu_med", "wall", "wall_med")
    med = {k: {c: float(np.median([pr[k][c] for pr in per_round])) for c in cols} for k in names}
    print("\n| contender | trajectory-steps / s / core, CPU time: best of the round (median over rounds) | "
          "CPU: median of the round | wall: best | wall: median of the round | thread share of the process CPU |")
    print("|---|---|---|---|---|---|")
    for k in names:
        print(f"| {k} | {med[k]['cpu']:.3g} | {med[k]['cpu_med']:.3g} | {med[k]['wall']:.3g} | "
              f"{med[k]['wall_med']:.3g} | {np.nanmedian(share[k]):.2f} |")
    pairs = [("w10 additive: structured", "w10 additive: numpy"), ("paper SGD: structured", "paper SGD: numpy"),
             ("w2 additive: structured", "w2 additive: sympy"), ("w2 SGD: structured", "w2 SGD: sympy")]
    print("\n| ratio | CPU, best: median of per-round ratios | min | per round | CPU, median of the round: "
          "median of per-round ratios | per round | wall, best: median | per round | wall, median of the round: "
          "median |")
    print("|---|---|---|---|---|---|---|---|---|")
    ratios = {}
    for a, b in pairs:
        rr = {c: [pr[a][c] / pr[b][c] for pr in per_round] for c in cols}
        ratios[f"{a} / {b}"] = rr

        def row(x):
            return ", ".join(f"{v:.2f}" for v in x)
        print(f"| {a} / {b} | {np.median(rr['cpu']):.2f} | {min(rr['cpu']):.2f} | {row(rr['cpu'])} | "
              f"{np.median(rr['cpu_med']):.2f} | {row(rr['cpu_med'])} | {np.median(rr['wall']):.2f} | "
              f"{row(rr['wall'])} | {np.median(rr['wall_med']):.2f} |")
    return {"median": med, "ratios": ratios, "rounds": per_round, "threading_layer": layer,
            "thread_share": {k: float(np.nanmedian(v)) for k, v in share.items()}}


def main(argv=None):
    parser = argparse.ArgumentParser(description="first-call cost and speed of the structured network kernel")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--skip-first-call", action="store_true")
    parser.add_argument("--json", default=None)
    parser.add_argument("--cold-rounds", type=int, default=0,
                        help="interleaved rounds of the paper network's first call on empty caches, with and without "
                             "the compile helper process (then only this table, unless --speed)")
    parser.add_argument("--speed", action="store_true", help="with --cold-rounds: the speed table too")
    parser.add_argument("--cold-model", choices=sorted(COLD_MODELS), default="paper",
                        help="with --cold-rounds: the paper's network or the width-2 escape problem, SGD-like noise")
    parser.add_argument("--other-code", default=None, metavar="DIR",
                        help="with --cold-rounds: this tree's code against the phasetools package in DIR "
                             "(first on PYTHONPATH), both without the helper")
    args = parser.parse_args(argv)
    out = {}

    def load(when):  # the machine may be shared: state the load next to the figures
        out.setdefault("load", {})[when] = os.getloadavg()
        print(f"\nload average {when}: " + ", ".join(f"{v:.2f}" for v in os.getloadavg()) + "\n")

    if args.cold_rounds:
        load("before the cold rounds")
        out["cold_rounds"] = cold_rounds(args.cold_rounds, args.cold_model, args.other_code)
        load("after the cold rounds")
    if not args.skip_first_call and not args.cold_rounds:
        load("before the first-call table")
        out["first_call"] = first_call_table([2, 10] if args.quick else [2, 4, 6, 10])
        load("after the first-call table")
    if args.speed or not args.cold_rounds:
        load("before the speed table")
        out["speed"] = speed_table(args.quick, args.rounds or (9 if args.quick else 5))
        load("after the speed table")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1, default=str)


if __name__ == "__main__":
    main()
