"""Throughput of the Langevin engine (phasetools.langevin.simulate) against references.

Workload (the project's issue): the quartic double well ``U = x^4/4 - x^2/2``
(``double_well()``), ``T = 0.05``, ``dt = 1e-3``, every trajectory starting at ``x = -1``,
Euler-Maruyama:

* **absorbing**: 10^4 trajectories, stopped when ``x >= 1`` (``stop=Threshold(1.0)``), at most
  2*10^6 steps (mean escape time about 730 time units, so about 7*10^9 trajectory-steps);
* **free**: the same without the absorbing boundary, 10^4 trajectories x 10^5 steps.

Contenders, each in its own persistent worker process (imports and compiled code are kept
between repeats; no two threading runtimes share a process):

* ``phasetools`` ``simulate(..., n_threads=1)`` and ``n_threads=2``;
* ``numpy``: a vectorised Euler-Maruyama reference over the whole ensemble (below,
  :func:`numpy_reference`), one thread;
* ``torchsde`` ``sdeint(method="euler")`` with its default Brownian motion (free workload
  only, fewer steps), one torch thread;
* ``diffrax`` ``diffeqsolve(Euler())`` with ``UnsafeBrownianPath`` (its fastest
  fixed-step Brownian motion) and with ``VirtualBrownianTree`` (the one its documentation
  uses), jitted, float64, the ensemble as one state vector with diagonal noise, one XLA
  thread (free workload only, fewer steps). XLA sizes its CPU thread pool from the CPUs the
  process may use at start-up, so the worker starts it on one CPU and then lets it float;
  left with two threads it split the loops and ran at about half the speed per core.

torchsde and diffrax have no absorbing boundary, so they run the free workload only; they
use the same 10^4 trajectories per step but fewer steps so that a repeat stays short, and
are compared per trajectory-step. A contender whose package is not installed is skipped
and reported as such.

The figure of merit is **trajectory-steps per second per core**: trajectory-steps done
(escaped trajectories count the steps up to their escape) / wall time / threads allowed.
Every repeat ("round") runs every contender once, in an order rotated from round to round,
so that changes of machine load hit all contenders alike; the tables give medians over the
rounds and ratios as medians of per-round ratios. As a diagnostic, each free-workload round
also runs two single-thread phasetools processes at the same time (does the machine give
two full cores?).

Compile time is reported apart: ``stats["compile_time"]`` of the first call in a fresh
interpreter with empty kernel and numba caches (a true compile), and with the caches
filled (loading machine code from disk), together with the whole first call's wall time.

    python benchmarks/bench_langevin.py            # full workload, about 30 minutes
    python benchmarks/bench_langevin.py --quick    # 10^4 trajectories, step caps; about 5 minutes

Options: ``--rounds N`` (interleaved repeats, default 3), ``--fresh N`` (fresh interpreters
for the first-call times, default 3), ``--max-wait S`` (before each timing wait up to S
seconds, default 30, for other processes to use < 0.25 cores; 0 = never wait), ``--seed S``,
``--json PATH`` (raw per-round numbers).
Prints markdown tables. Not a test: pytest collects ``tests/`` only, and this file has no
``test_`` prefix.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

TEMPERATURE = 0.05
DT = 1e-3
X0 = -1.0
LEVEL = 1.0

# workload sizes: (n_traj, steps); "steps" is the cap for the absorbing workload
FULL = {"absorbing": (10**4, 2 * 10**6), "free": (10**4, 10**5),
        "torchsde": (10**4, 2000), "diffrax": (10**4, 10**4), "diffrax_vbt": (10**4, 200)}
QUICK = {"absorbing": (10**4, 5 * 10**4), "free": (10**4, 10**4),
         "torchsde": (10**4, 200), "diffrax": (10**4, 2000), "diffrax_vbt": (10**4, 50)}

HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


# -- numpy reference ----------------------------------------------------------------------
def numpy_reference(n_traj, max_steps, absorbing, seed):
    """Vectorised Euler-Maruyama for the double well, as fast as plain numpy allows.

    Works on ``y = x / sigma`` (``sigma = sqrt(2 T dt)``) so that the Euler step
    ``x + (x - x^3) dt + sigma z`` becomes ``y * (1 + dt - dt sigma^2 y^2) + z``: four
    in-place ufunc passes plus the normals, no temporaries. Normals come from SFC64 (the
    fastest numpy bit generator here for ``standard_normal``), drawn in place. With the
    absorbing boundary, one ``max`` reduction per step tests for escapes; escaped
    trajectories are compacted away (boolean compaction of the leading slice), so later
    steps work only on the survivors. Returns ``(steps per trajectory, final y * sigma)``;
    a trajectory that escapes at step k counts k steps, as in phasetools.
    """
    rng = np.random.Generator(np.random.SFC64(seed))
    sigma = math.sqrt(2.0 * TEMPERATURE * DT)
    a, c = 1.0 + DT, -DT * sigma * sigma
    level = LEVEL / sigma
    y = np.full(n_traj, X0 / sigma)
    z = np.empty(n_traj)
    t = np.empty(n_traj)
    ids = np.arange(n_traj)
    steps = np.full(n_traj, max_steps, dtype=np.int64)
    final = np.empty(n_traj)
    m = n_traj
    yv, zv, tv = y, z, t
    for k in range(1, max_steps + 1):
        np.multiply(yv, yv, out=tv)
        np.multiply(tv, c, out=tv)
        np.add(tv, a, out=tv)
        np.multiply(yv, tv, out=yv)
        rng.standard_normal(out=zv)
        np.add(yv, zv, out=yv)
        if absorbing and yv.max() >= level:
            keep = yv < level
            gone = ids[:m][~keep]
            steps[gone] = k
            final[gone] = yv[~keep]
            m = int(np.count_nonzero(keep))
            y[:m] = yv[keep]
            ids[:m] = ids[:len(keep)][keep]
            if m == 0:
                break
            yv, zv, tv = y[:m], z[:m], t[:m]
    final[ids[:m]] = yv
    return steps, final * sigma


# -- workers --------------------------------------------------------------------------------
def _cpu_busy():
    """Seconds of CPU time used by the whole machine (all processes), from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return (v[0] + v[1] + v[2] + v[5] + v[6]) / HZ, v[7] / HZ
    except (OSError, ValueError, IndexError):
        return math.nan, math.nan


class _Phasetools:
    name = "phasetools"

    def __init__(self):
        from phasetools.langevin import Threshold, double_well, simulate

        self.simulate, self.Threshold, self.pot = simulate, Threshold, double_well()
        import phasetools
        import numba

        self.version = f"phasetools {phasetools.__version__}, numba {numba.__version__}"
        r = self.simulate(self.pot, [X0], temperature=TEMPERATURE, dt=DT, n_traj=16, max_steps=10, rng=0,
                          n_threads=1)
        self.info = {"warmup_compile_time": r.stats["compile_time"]}

    def run(self, n_traj, steps, absorbing, seed, threads=1):
        stop = self.Threshold(LEVEL) if absorbing else None
        r = self.simulate(self.pot, [X0], temperature=TEMPERATURE, dt=DT, n_traj=n_traj, max_steps=steps,
                          stop=stop, rng=seed, n_threads=threads)
        assert r.stats["n_threads"] == threads
        return {"steps": r.stats["steps_total"], "n_escaped": int(r.escaped.sum()),
                "final_std": float(r.final[:, 0].std()),
                "steps_per_traj": r.steps.astype(float).mean(), "final_mean": float(r.final[:, 0].mean()),
                "kernel_wall": r.stats["wall_time"]}


class _Numpy:
    name = "numpy"

    def __init__(self):
        self.version = f"numpy {np.__version__}"
        numpy_reference(100, 10, True, 0)
        self.info = {}

    def run(self, n_traj, steps, absorbing, seed, threads=1):
        s, final = numpy_reference(n_traj, steps, absorbing, seed)
        return {"steps": int(s.sum()), "n_escaped": int(np.sum(s < steps) + np.sum((s == steps) & (final >= LEVEL))),
                "steps_per_traj": float(s.mean()), "final_mean": float(final.mean()),
                "final_std": float(final.std())}


class _Torchsde:
    name = "torchsde"

    def __init__(self):
        import torch
        import torchsde

        torch.set_num_threads(1)
        torch.set_num_interop_threads(1)
        self.torch, self.torchsde = torch, torchsde
        self.version = f"torch {torch.__version__}, torchsde {torchsde.__version__}"
        s = math.sqrt(2.0 * TEMPERATURE)

        class DoubleWell(torch.nn.Module):
            noise_type = "diagonal"
            sde_type = "ito"

            def f(self, t, y):
                return y - y**3

            def g(self, t, y):
                return torch.full_like(y, s)

        self.sde = DoubleWell()
        self.run(16, 10, False, 0)
        self.info = {}

    def run(self, n_traj, steps, absorbing, seed, threads=1):
        assert not absorbing, "torchsde has no absorbing boundary"
        torch = self.torch
        torch.manual_seed(seed)
        y0 = torch.full((n_traj, 1), X0, dtype=torch.float64)
        ts = torch.tensor([0.0, steps * DT], dtype=torch.float64)
        with torch.no_grad():
            ys = self.torchsde.sdeint(self.sde, y0, ts, method="euler", dt=DT)
        return {"steps": n_traj * steps, "final_mean": float(ys[-1].mean()), "final_std": float(ys[-1].std())}


class _Diffrax:
    name = "diffrax"
    brownian = "unsafe"

    def __init__(self):
        # XLA sizes its CPU thread pool from the CPUs this process may use when the backend
        # starts, and flags do not stop it from splitting the loops over two threads (which
        # here costs more than it gains): start it on one CPU, then let every thread float.
        cpus = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {min(cpus)})
        import jax

        jax.config.update("jax_enable_x64", True)
        import diffrax
        import jax.numpy as jnp
        import lineax as lx

        jnp.ones(3).block_until_ready()
        for tid in os.listdir("/proc/self/task"):
            os.sched_setaffinity(int(tid), cpus)

        self.jax, self.jnp, self.diffrax, self.lx = jax, jnp, diffrax, lx
        self.version = f"jax {jax.__version__}, diffrax {diffrax.__version__}"
        self._compiled = {}
        self.info = {}

    def _solver(self, n_traj, steps):
        key = (n_traj, steps)
        if key not in self._compiled:
            jax, jnp, diffrax, lx = self.jax, self.jnp, self.diffrax, self.lx
            s = math.sqrt(2.0 * TEMPERATURE)
            t1 = steps * DT
            unsafe = self.brownian == "unsafe"

            def solve(k):
                if unsafe:
                    bm = diffrax.UnsafeBrownianPath(shape=(n_traj,), key=k)
                else:
                    bm = diffrax.VirtualBrownianTree(0.0, t1, tol=DT / 2, shape=(n_traj,), key=k)
                terms = diffrax.MultiTerm(
                    diffrax.ODETerm(lambda t, y, args: y - y**3),
                    diffrax.ControlTerm(lambda t, y, args: lx.DiagonalLinearOperator(jnp.full((n_traj,), s)), bm))
                adjoint = diffrax.ForwardMode() if unsafe else diffrax.RecursiveCheckpointAdjoint()
                sol = diffrax.diffeqsolve(terms, diffrax.Euler(), 0.0, t1, DT, jnp.full((n_traj,), X0),
                                          saveat=diffrax.SaveAt(t1=True), max_steps=steps + 8, adjoint=adjoint)
                return sol.ys[-1], sol.stats["num_steps"]

            f = jax.jit(solve)
            t0 = time.perf_counter()
            f(jax.random.PRNGKey(0))[0].block_until_ready()
            self.info[f"compile_time_{n_traj}x{steps}"] = time.perf_counter() - t0
            self._compiled[key] = f
        return self._compiled[key]

    def prepare(self, n_traj, steps):
        self._solver(n_traj, steps)

    def run(self, n_traj, steps, absorbing, seed, threads=1):
        assert not absorbing, "diffrax has no absorbing boundary"
        f = self._solver(n_traj, steps)
        y, n_steps = f(self.jax.random.PRNGKey(seed))
        y.block_until_ready()
        n_steps = int(n_steps)
        return {"steps": n_traj * n_steps, "final_mean": float(y.mean()), "final_std": float(y.std())}


class _DiffraxVBT(_Diffrax):
    name = "diffrax_vbt"
    brownian = "vbt"


WORKERS = {cls.name: cls for cls in (_Phasetools, _Numpy, _Torchsde, _Diffrax, _DiffraxVBT)}


def worker_main(kind):
    """Serve timing requests, one JSON object per line, until stdin closes."""
    # the protocol gets its own copy of stdout; fd 1 then points at stderr, so that the chatter
    # of libraries (Python or C level) cannot reach the protocol stream
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        w = WORKERS[kind]()
    except Exception as exc:  # noqa: BLE001 - any import or set-up failure means: skip
        out.write(json.dumps({"error": f"{type(exc).__name__}: {exc}"}) + "\n")
        out.flush()
        return
    out.write(json.dumps({"ready": True, "version": w.version, "info": w.info}) + "\n")
    out.flush()
    for line in sys.stdin:
        req = json.loads(line)
        if req.get("prepare"):
            w.prepare(req["n_traj"], req["steps"])
            out.write(json.dumps({"info": w.info}) + "\n")
            out.flush()
            continue
        busy0, steal0 = _cpu_busy()
        c0 = time.process_time()
        t0 = time.perf_counter()
        res = w.run(req["n_traj"], req["steps"], req["absorbing"], req["seed"], req.get("threads", 1))
        wall = time.perf_counter() - t0
        cpu = time.process_time() - c0
        busy1, steal1 = _cpu_busy()
        res.update(wall=wall, cpu=cpu, busy=busy1 - busy0, steal=steal1 - steal0)
        out.write(json.dumps(res) + "\n")
        out.flush()


class Worker:
    """A contender in its own process; ``send`` then ``recv`` one timing."""

    def __init__(self, kind, log_dir):
        env = dict(os.environ)
        env.setdefault("JAX_PLATFORMS", "cpu")
        self.kind = kind
        self.log = open(os.path.join(log_dir, f"{kind}-{id(self)}.log"), "w")
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--_worker", kind],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True,
                                     env=env, bufsize=1)
        hello = self.recv()
        self.error = hello.get("error")
        self.version = hello.get("version")
        self.info = hello.get("info", {})

    def send(self, **req):
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()

    def recv(self):
        line = self.proc.stdout.readline()
        if not line:
            self.log.flush()
            with open(self.log.name) as f:
                tail = f.read()[-3000:]
            raise RuntimeError(f"worker {self.kind} died:\n{tail}")
        return json.loads(line)

    def call(self, **req):
        self.send(**req)
        return self.recv()

    def close(self):
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)
        self.log.close()


# -- first call in a fresh interpreter ---------------------------------------------------
def _first_call_child():
    t0 = time.perf_counter()
    from phasetools.langevin import double_well, simulate
    t_import = time.perf_counter() - t0
    kw = dict(temperature=TEMPERATURE, dt=DT, n_traj=10**4, max_steps=100, n_threads=1)
    t0 = time.perf_counter()
    r = simulate(double_well(), [X0], rng=0, **kw)
    t_first = time.perf_counter() - t0
    t0 = time.perf_counter()
    simulate(double_well(), [X0], rng=1, **kw)
    t_second = time.perf_counter() - t0
    print(json.dumps({"import": t_import, "first": t_first, "second": t_second,
                      "compile_time": r.stats["compile_time"]}))


def first_calls(fresh, cold):
    runs = []
    for _ in range(fresh):
        env = dict(os.environ)
        with tempfile.TemporaryDirectory() as tmp:
            if cold:  # empty kernel cache and numba cache: everything is generated and compiled
                env["PHASETOOLS_CACHE_DIR"] = os.path.join(tmp, "phasetools")
                env["NUMBA_CACHE_DIR"] = os.path.join(tmp, "numba")
            out = subprocess.run([sys.executable, os.path.abspath(__file__), "--_first"], check=True,
                                 capture_output=True, text=True, env=env)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {k: float(np.median([r[k] for r in runs])) for k in runs[0]}


# -- reporting ------------------------------------------------------------------------------
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
    return f"{cpu}, {os.cpu_count()} vCPUs; Python {platform.python_version()}"


def fmt_t(t):
    return f"{t * 1e3:.0f} ms" if t < 1.0 else f"{t:.1f} s"


def fmt_rate(r):
    return f"{r / 1e6:.1f} M"


def rate(m):
    return m["steps"] / m["wall"] / m["threads"]


def summary(ms):
    rates = np.array([rate(m) for m in ms])
    return {"median": float(np.median(rates)), "min": float(rates.min()), "max": float(rates.max()),
            "wall": float(np.median([m["wall"] for m in ms])), "steps": float(np.median([m["steps"] for m in ms])),
            "cores_used": float(np.median([m["cpu"] / m["wall"] for m in ms])),
            "foreign": float(np.median([m["foreign"] for m in ms]))}


def ratio(by_round, num, den):
    """Median and range over rounds of the per-core rate ratio num / den (same round)."""
    r = np.array([rate(rd[num]) / rate(rd[den]) for rd in by_round if num in rd and den in rd])
    return (float(np.median(r)), float(r.min()), float(r.max())) if r.size else None


def fmt_ratio(x):
    return "-" if x is None else f"{x[0]:.2f} [{x[1]:.2f}-{x[2]:.2f}]"


def wait_quiet(max_wait, threshold=0.25):
    """Wait (at most ``max_wait`` s) for one second in which other processes use < threshold cores."""
    t0 = time.perf_counter()
    while True:
        b0, _ = _cpu_busy()
        time.sleep(1.0)
        b1, _ = _cpu_busy()
        if not b1 - b0 >= threshold or time.perf_counter() - t0 >= max_wait:
            return time.perf_counter() - t0


def run_rounds(workers, plan, rounds, seed, label, max_wait=0.0):
    """``plan``: list of (row, worker names, request); each round runs every row once, rotated.

    A row with two workers runs them at the same time (the two-process diagnostic).
    """
    by_round = []
    for r in range(rounds):
        res = {}
        order = plan[r % len(plan):] + plan[:r % len(plan)]
        for row, names, req in order:
            waited = wait_quiet(max_wait) if max_wait > 0 else 0.0
            t_start = time.perf_counter()
            for k, name in enumerate(names):
                workers[name].send(**req, seed=seed + 1000 * r + k)
            ms = [workers[name].recv() for name in names]
            for m in ms:
                m["threads"] = req.get("threads", 1)
                m["foreign"] = (m["busy"] - sum(x["cpu"] for x in ms)) / m["wall"]
            if len(ms) == 1:
                res[row] = ms[0]
            else:
                res[row] = {"steps": sum(m["steps"] for m in ms), "wall": max(m["wall"] for m in ms),
                            "cpu": sum(m["cpu"] for m in ms), "threads": len(ms), "foreign": ms[0]["foreign"],
                            "parts": ms, "aggregate": sum(m["steps"] / m["wall"] for m in ms)}
            res[row]["waited"] = waited
            print(f"  [{label} round {r + 1}/{rounds}] {row}: {fmt_t(time.perf_counter() - t_start)}, "
                  f"{fmt_rate(rate(res[row]))} steps/s/core", file=sys.stderr, flush=True)
        by_round.append(res)
    return by_round


def table(by_round, rows, sizes, reference):
    print("| contender | threads | trajectories x steps | trajectory-steps per run | wall (median) "
          "| steps/s/core, median [min-max] | cores busy | per core vs numpy (median of rounds) |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for row, label, threads in rows:
        ms = [rd[row] for rd in by_round if row in rd]
        if not ms:
            continue
        s = summary(ms)
        n, st = sizes[row]
        rat = "1" if row == reference else fmt_ratio(ratio(by_round, row, reference))
        print(f"| {label} | {threads} | 10^{round(math.log10(n))} x {st:.0e} | {s['steps']:.3g} | {fmt_t(s['wall'])} "
              f"| {fmt_rate(s['median'])} [{fmt_rate(s['min'])}-{fmt_rate(s['max'])}] | {s['cores_used']:.2f} | {rat} |")


def main(argv=None):
    parser = argparse.ArgumentParser(description="Throughput of phasetools.langevin.simulate")
    parser.add_argument("--quick", action="store_true", help="step caps for development (see the docstring)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved repeats (median; default 3)")
    parser.add_argument("--fresh", type=int, default=3, help="fresh interpreters for first-call times (default 3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=("free", "absorbing"), default=None,
                        help="run one workload only (the first-call table is always made)")
    parser.add_argument("--json", default=None, help="write the raw per-round measurements here")
    parser.add_argument("--max-wait", type=float, default=30.0,
                        help="before each timing, wait up to this many seconds for other processes to go "
                             "quiet (< 0.25 cores busy); 0 = do not wait (default 30)")
    parser.add_argument("--_worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--_first", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._worker:
        worker_main(args._worker)
        return
    if args._first:
        _first_call_child()
        return

    sizes = QUICK if args.quick else FULL
    mode = "quick" if args.quick else "full"
    print(f"Machine: {machine_note()}\n")
    print(f"Mode: {mode}; {args.rounds} interleaved rounds; seed {args.seed}.\n")

    # first calls before any worker is running, so that they have the machine to themselves
    cold = first_calls(args.fresh, cold=True)
    first_calls(1, cold=False)  # fills the default caches if they are empty; not reported
    warm = first_calls(args.fresh, cold=False)

    log_dir = tempfile.mkdtemp(prefix="bench_langevin_")
    workers, skipped = {}, {}
    for kind in ("phasetools", "numpy", "torchsde", "diffrax", "diffrax_vbt"):
        w = Worker(kind, log_dir)
        if w.error:
            skipped[kind] = w.error
            w.close()
        else:
            workers[kind] = w
    if "phasetools" in workers:
        workers["phasetools_b"] = Worker("phasetools", log_dir)
    for kind in ("diffrax", "diffrax_vbt"):
        if kind in workers:
            n, st = sizes[kind]
            workers[kind].info = workers[kind].call(prepare=True, n_traj=n, steps=st)["info"]
    for kind, w in workers.items():
        print(f"- {kind}: {w.version}", file=sys.stderr)
    for kind, err in skipped.items():
        print(f"- {kind}: SKIPPED ({err})", file=sys.stderr)

    # -- free workload (every contender) and the two-process diagnostic
    n, st = sizes["free"]
    free = dict(n_traj=n, steps=st, absorbing=False)
    plan = [("pt1", ["phasetools"], dict(free, threads=1)),
            ("pt2", ["phasetools"], dict(free, threads=2)),
            ("numpy", ["numpy"], free),
            ("pair", ["phasetools", "phasetools_b"], dict(free, threads=1))]
    for kind in ("torchsde", "diffrax", "diffrax_vbt"):
        if kind in workers:
            n_k, st_k = sizes[kind]
            plan.append((kind, [kind], dict(n_traj=n_k, steps=st_k, absorbing=False)))
    free_rounds = (run_rounds(workers, plan, args.rounds, args.seed, "free", args.max_wait)
                   if args.only != "absorbing" else [])

    # -- absorbing workload
    n, st = sizes["absorbing"]
    absorbing = dict(n_traj=n, steps=st, absorbing=True)
    plan = [("pt1", ["phasetools"], dict(absorbing, threads=1)),
            ("pt2", ["phasetools"], dict(absorbing, threads=2)),
            ("numpy", ["numpy"], absorbing)]
    # same SDE? phasetools at each other contender's size, against that contender's last round
    checks = []
    for kind in ("numpy", "torchsde", "diffrax", "diffrax_vbt"):
        if free_rounds and kind in free_rounds[-1]:
            m = free_rounds[-1][kind]
            n_k, st_k = sizes[kind] if kind in sizes else sizes["free"]
            ref = free_rounds[-1]["pt1"] if kind == "numpy" else workers["phasetools"].call(
                n_traj=n_k, steps=st_k, absorbing=False, seed=args.seed + 99, threads=1)
            se = math.hypot(m["final_std"], ref["final_std"]) / math.sqrt(n_k)
            checks.append((kind, st_k, m["final_mean"], ref["final_mean"], (m["final_mean"] - ref["final_mean"]) / se))

    abs_rounds = (run_rounds(workers, plan, args.rounds, args.seed + 7, "absorbing", args.max_wait)
                  if args.only != "free" else [])
    for w in workers.values():
        w.close()

    # -- report
    free_sizes = {"pt1": sizes["free"], "pt2": sizes["free"], "numpy": sizes["free"], "pair": sizes["free"]}
    free_sizes.update({k: sizes[k] for k in ("torchsde", "diffrax", "diffrax_vbt")})
    abs_sizes = {k: sizes["absorbing"] for k in ("pt1", "pt2", "numpy")}
    rows_common = [("pt1", "phasetools `simulate(n_threads=1)`", 1),
                   ("pt2", "phasetools `simulate(n_threads=2)`", 2),
                   ("numpy", "numpy vectorised reference", 1)]
    n, st = sizes["absorbing"]
    if abs_rounds:
        print(f"### Absorbing at x = +1: {n} trajectories, at most {st} steps ({mode})\n")
        table(abs_rounds, rows_common, abs_sizes, "numpy")
        for row in ("pt1", "numpy"):
            ms = [rd[row] for rd in abs_rounds]
            esc = np.mean([m["n_escaped"] for m in ms])
            spt = np.mean([m["steps_per_traj"] for m in ms])
            print(f"\n{row}: escaped {esc:.0f} of {n} (mean over rounds), mean steps per trajectory {spt:.4g}",
                  end="")
        print("\n")
    n, st = sizes["free"]
    if free_rounds:
        print(f"### No absorbing boundary: {n} trajectories x {st} steps ({mode})\n")
        rows = rows_common + [("torchsde", "torchsde `sdeint(method='euler')`, default BrownianInterval", 1),
                              ("diffrax", "diffrax `Euler()`, `UnsafeBrownianPath`, jit, x64", 1),
                              ("diffrax_vbt", "diffrax `Euler()`, `VirtualBrownianTree`, jit, x64", 1)]
        table(free_rounds, rows, free_sizes, "numpy")
        print()
    for kind, err in skipped.items():
        print(f"{kind}: skipped ({err})\n")
    if checks:
        print("Same SDE? Mean of x after the run, each contender against phasetools at the same size "
              "(difference in standard errors): "
              + "; ".join(f"{k} ({st} steps) {a:.4f} vs {b:.4f} ({z:+.1f} SE)" for k, st, a, b, z in checks) + "\n")

    print("### Targets\n")
    print("| target | workload | measured, median of rounds [min-max] | met |")
    print("|---|---|---:|---|")

    def target(label, workload, x, goal):
        if x is None:
            print(f"| {label} | {workload} | not measured | - |")
        else:
            print(f"| {label} | {workload} | {fmt_ratio(x)} | {'yes' if x[0] >= goal else 'no'} |")

    for name, rds in (("absorbing", abs_rounds), ("free", free_rounds)):
        target("phasetools (1 thread) >= 2x numpy per core", name, ratio(rds, "pt1", "numpy"), 2.0)
    for name, rds in (("absorbing", abs_rounds), ("free", free_rounds)):
        target("phasetools 2 threads >= 1.8x 1 thread (throughput)", name,
               (lambda x: x and tuple(2 * v for v in x))(ratio(rds, "pt2", "pt1")), 1.8)
    target("phasetools (1 thread) >= 20x torchsde per core", "free (torchsde fewer steps)",
           ratio(free_rounds, "pt1", "torchsde"), 20.0)
    target("(not a target) phasetools (1 thread) / diffrax per core", "free (diffrax fewer steps)",
           ratio(free_rounds, "pt1", "diffrax"), math.inf)

    if free_rounds:
        pair = np.array([rd["pair"]["aggregate"] / rate(rd["pt1"]) for rd in free_rounds])
        speed2 = np.array([2 * rate(rd["pt2"]) / rate(rd["pt1"]) for rd in free_rounds])
        print("\n### Do the two vCPUs behave as two cores? (free workload)\n")
        print("| measure | median of rounds [min-max] | ideal |")
        print("|---|---:|---:|")
        print(f"| aggregate of two 1-thread phasetools processes at once / one process alone | "
              f"{np.median(pair):.2f} [{pair.min():.2f}-{pair.max():.2f}] | 2 |")
        print(f"| phasetools 2 threads / 1 thread (one process) | "
              f"{np.median(speed2):.2f} [{speed2.min():.2f}-{speed2.max():.2f}] | 2 |")
    fl = np.array([m["foreign"] for rds in (free_rounds, abs_rounds) for rd in rds for m in rd.values()])
    waited = np.array([m.get("waited", 0.0) for rds in (free_rounds, abs_rounds) for rd in rds for m in rd.values()])
    print(f"\nCPU load from other processes during the timings (from /proc/stat, in cores): median "
          f"{np.median(fl):.2f}, max {fl.max():.2f}; {int(np.sum(fl > 0.25))} of {fl.size} timings above 0.25. "
          f"Waited for quiet before the timings: {waited.sum():.0f} s in all.\n")

    print("### Compile and first call (fresh interpreter; 10^4 trajectories x 100 steps, 1 thread)\n")
    print("| caches | `import phasetools.langevin` | first `simulate` call | of which `stats['compile_time']` "
          "| second call |")
    print("|---|---:|---:|---:|---:|")
    for label, d in (("empty (kernel and numba caches in a new folder)", cold), ("filled (after warm-up)", warm)):
        print(f"| {label} | {fmt_t(d['import'])} | {fmt_t(d['first'])} | {fmt_t(d['compile_time'])} "
              f"| {fmt_t(d['second'])} |")
    infos = {k: w.info for k, w in workers.items() if w.info}
    if infos:
        print("\nOther one-off costs in the workers: " + "; ".join(
            f"{k} {kk} {fmt_t(v)}" for k, d in infos.items() for kk, v in d.items()))
    print("\nVersions: " + "; ".join(sorted({w.version for w in workers.values()})))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"mode": mode, "sizes": sizes, "free": free_rounds, "absorbing": abs_rounds,
                       "first_cold": cold, "first_warm": warm, "skipped": skipped,
                       "versions": {k: w.version for k, w in workers.items()}}, f, indent=1)


if __name__ == "__main__":
    main()
