"""SGD steps per second of phasetools.training.train against a plain PyTorch CPU loop.

Workload (the project's issue #5, section 5; the paper's set-up, science brief E0): the
network 2 -> 10 -> 10 -> 2 (``n_layers=3``, bias-free), trained by minibatch SGD with coupled
weight decay on ``N = 512`` samples of ``GaussianTeacher([0.9, 0.8])``, batch 64 (shuffled
epochs without replacement, 8 steps per epoch), ``convention="paper"`` (``MSELoss``),
``beta = 0.32``, ``lr = 0.08``; initial weights ``N(0, 1/fan_in)`` in both.

Contenders, each in its own persistent worker process (imports and compiled code are kept
between repeats):

* phasetools ``train(..., n_seeds=1, n_threads=1)`` in float64 and in float32;
* phasetools ``train(..., n_seeds=50, n_threads=1)`` and ``n_threads=2`` (float64);
* PyTorch: ``torch.nn.Linear(bias=False)`` layers in ``torch.nn.Sequential``,
  ``torch.optim.SGD(lr=0.08, weight_decay=0.32)``, ``torch.nn.MSELoss()``; each epoch
  ``torch.randperm(512)`` and batches by indexing ``X[idx]``, ``Y[idx]`` (what
  ``DataLoader(shuffle=True, drop_last=True)`` yields, without its Python overhead);
  ``zero_grad``, forward, ``backward``, ``step`` per batch; ``torch.set_num_threads(1)``;
  float32 and float64.

phasetools logs only the first and the last epoch here (``log_every = epochs``), as the
torch loop computes nothing besides the training itself; a log point costs about one step.

The figure of merit is **SGD steps per second per core**: steps (summed over seeds) / wall
time / threads allowed. Wall time is the whole ``train(...)`` call (phasetools) or the whole
loop (torch), in a warm process: compilation is excluded and reported apart (the first call
in a fresh interpreter with empty and with filled numba caches, and ``stats["compile_time"]``).
Every repeat ("round") runs every contender once, in an order rotated from round to round, so
that changes of machine load hit all contenders alike; the tables give medians over the rounds
and the ratios as medians [min-max] of per-round ratios.

    python benchmarks/bench_training.py            # full: about 4 minutes
    python benchmarks/bench_training.py --quick    # shorter timings, about 2 minutes

Options: ``--rounds N`` (interleaved repeats, default 5), ``--fresh N`` (fresh interpreters
for the first-call times, default 2), ``--max-wait S`` (before each timing wait up to S
seconds, default 20, for other processes to use < 0.25 cores; 0 = never wait), ``--seed S``,
``--json PATH`` (raw per-round numbers). Prints markdown tables. Not a test.
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

ETA = (0.9, 0.8)
N_SAMPLES, BATCH, LR, BETA, WIDTH, N_LAYERS = 512, 64, 0.08, 0.32, 10, 3
STEPS_PER_EPOCH = N_SAMPLES // BATCH
TARGET = 10.0

# epochs per timing: (contender -> epochs); seeds x epochs x 8 steps per run
FULL = {"pt1": 40_000, "pt1_f32": 40_000, "pt50": 800, "pt50_t2": 1600, "torch32": 300, "torch64": 300}
QUICK = {"pt1": 10_000, "pt1_f32": 10_000, "pt50": 200, "pt50_t2": 400, "torch32": 80, "torch64": 80}
ROWS = {  # row -> (worker, request, label)
    "pt1": ("phasetools", {"seeds": 1, "threads": 1, "dtype": "float64"},
            "phasetools `train`, 1 seed, float64"),
    "pt1_f32": ("phasetools", {"seeds": 1, "threads": 1, "dtype": "float32"},
                "phasetools `train`, 1 seed, float32"),
    "pt50": ("phasetools", {"seeds": 50, "threads": 1, "dtype": "float64"},
             "phasetools `train`, 50 seeds, float64"),
    "pt50_t2": ("phasetools", {"seeds": 50, "threads": 2, "dtype": "float64"},
                "phasetools `train`, 50 seeds, float64, 2 threads"),
    "torch32": ("torch", {"seeds": 1, "threads": 1, "dtype": "float32"}, "PyTorch loop, float32"),
    "torch64": ("torch", {"seeds": 1, "threads": 1, "dtype": "float64"}, "PyTorch loop, float64"),
}

HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _data():
    from phasetools.training import GaussianTeacher

    return GaussianTeacher(list(ETA)).sample(N_SAMPLES, rng=1)


def _cpu_busy():
    """Seconds of CPU time used by the whole machine (all processes), from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return (v[0] + v[1] + v[2] + v[5] + v[6]) / HZ
    except (OSError, ValueError, IndexError):
        return math.nan


# -- workers --------------------------------------------------------------------------------
class _Phasetools:
    def __init__(self):
        import numba

        import phasetools
        from phasetools.training import train

        self.train, self.data = train, _data()
        self.version = f"phasetools {phasetools.__version__}, numba {numba.__version__}, numpy {np.__version__}"
        ct = {}
        for dtype in ("float64", "float32"):  # compile (or load) both kernels before any timing
            ct[dtype] = self.run(1, 1, 1, dtype, 0)["compile_time"]
        self.info = {"warmup_compile_time_" + k: v for k, v in ct.items()}

    def run(self, seeds, epochs, threads, dtype, seed):
        r = self.train(self.data, n_layers=N_LAYERS, width=WIDTH, lr=LR, weight_decay=BETA, convention="paper",
                       batch_size=BATCH, epochs=epochs, n_seeds=seeds, dtype=dtype, log_every=epochs, rng=seed,
                       n_threads=threads)
        assert r.stats["n_threads"] == min(threads, seeds) and not r.diverged.any()
        return {"steps": int(r.stats["steps_total"]), "final_mse": float(np.mean(r.train_mse[:, -1])),
                "kernel_wall": r.stats["wall_time"], "compile_time": r.stats["compile_time"]}


class _Torch:
    def __init__(self):
        t0 = time.perf_counter()
        import torch

        self.import_time = time.perf_counter() - t0
        torch.set_num_threads(1)
        torch.set_num_interop_threads(1)
        self.torch = torch
        d = _data()
        self.X64, self.Y64 = torch.from_numpy(d.X), torch.from_numpy(d.Y)
        self.version = f"torch {torch.__version__}"
        info = {"import_time": self.import_time}
        for dtype in ("float32", "float64"):
            t0 = time.perf_counter()
            self.run(1, 1, 1, dtype, 0)
            info[f"first_epoch_{dtype}"] = time.perf_counter() - t0
        self.info = info

    def run(self, seeds, epochs, threads, dtype, seed):
        torch = self.torch
        dt = {"float32": torch.float32, "float64": torch.float64}[dtype]
        torch.manual_seed(seed)
        X, Y = self.X64.to(dt), self.Y64.to(dt)
        layers = [torch.nn.Linear(c, r, bias=False, dtype=dt) for c, r in ((2, WIDTH), (WIDTH, WIDTH), (WIDTH, 2))]
        with torch.no_grad():
            for layer in layers:
                torch.nn.init.normal_(layer.weight, 0.0, layer.in_features ** -0.5)
        model = torch.nn.Sequential(*layers)
        opt = torch.optim.SGD(model.parameters(), lr=LR, weight_decay=BETA)
        loss_fn = torch.nn.MSELoss()
        steps = 0
        for _ in range(epochs):
            perm = torch.randperm(N_SAMPLES)
            for b in range(STEPS_PER_EPOCH):
                idx = perm[b * BATCH:(b + 1) * BATCH]
                opt.zero_grad()
                loss = loss_fn(model(X[idx]), Y[idx])
                loss.backward()
                opt.step()
                steps += 1
        with torch.no_grad():
            mse = float(loss_fn(model(X), Y))
        return {"steps": steps, "final_mse": mse}


WORKERS = {"phasetools": _Phasetools, "torch": _Torch}


def worker_main(kind):
    """Serve timing requests, one JSON object per line, until stdin closes."""
    out = os.fdopen(os.dup(1), "w")  # the protocol's own stdout; library chatter goes to stderr
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
        busy0 = _cpu_busy()
        c0 = time.process_time()
        t0 = time.perf_counter()
        res = w.run(req["seeds"], req["epochs"], req["threads"], req["dtype"], req["seed"])
        wall = time.perf_counter() - t0
        cpu = time.process_time() - c0
        res.update(wall=wall, cpu=cpu, threads=req["threads"],
                   foreign=(_cpu_busy() - busy0 - cpu) / wall)
        out.write(json.dumps(res) + "\n")
        out.flush()


class Worker:
    def __init__(self, kind, log_dir):
        self.log = open(os.path.join(log_dir, f"{kind}.log"), "w")
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--_worker", kind],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True,
                                     bufsize=1)
        hello = self.recv()
        self.error, self.version, self.info = hello.get("error"), hello.get("version"), hello.get("info", {})

    def recv(self):
        line = self.proc.stdout.readline()
        if not line:
            self.log.flush()
            with open(self.log.name) as f:
                raise RuntimeError(f"worker died:\n{f.read()[-3000:]}")
        return json.loads(line)

    def call(self, **req):
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        return self.recv()

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=60)
        self.log.close()


# -- first call in a fresh interpreter ---------------------------------------------------------
def _first_call_child():
    t0 = time.perf_counter()
    from phasetools.training import train
    t_import = time.perf_counter() - t0
    d = _data()
    kw = dict(n_layers=N_LAYERS, width=WIDTH, lr=LR, weight_decay=BETA, convention="paper", batch_size=BATCH, epochs=100,
              log_every=100, n_threads=1)
    t0 = time.perf_counter()
    r = train(d, rng=0, **kw)
    t_first = time.perf_counter() - t0
    t0 = time.perf_counter()
    r2 = train(d, rng=1, **kw)
    t_second = time.perf_counter() - t0
    print(json.dumps({"import": t_import, "first": t_first, "second": t_second,
                      "compile_time": r.stats["compile_time"], "compile_time_second": r2.stats["compile_time"]}))


def first_calls(fresh, cold):
    runs = []
    for _ in range(fresh):
        env = dict(os.environ)
        with tempfile.TemporaryDirectory() as tmp:
            if cold:  # empty numba cache: the kernels are compiled
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
    return f"{r / 1e6:.2f} M" if r >= 1e6 else f"{r / 1e3:.1f} k" if r >= 1e4 else f"{r:.0f}"


def rate(m):
    """SGD steps per second per core."""
    return m["steps"] / m["wall"] / m["threads"]


def ratio(by_round, num, den):
    r = np.array([rate(rd[num]) / rate(rd[den]) for rd in by_round if num in rd and den in rd])
    return (float(np.median(r)), float(r.min()), float(r.max())) if r.size else None


def fmt_ratio(x):
    return "-" if x is None else f"{x[0]:.0f} [{x[1]:.0f}-{x[2]:.0f}]" if x[0] >= 10 else \
        f"{x[0]:.2f} [{x[1]:.2f}-{x[2]:.2f}]"


def wait_quiet(max_wait, threshold=0.25):
    """Wait (at most ``max_wait`` s) for one second in which other processes use < threshold cores."""
    t0 = time.perf_counter()
    while True:
        b0 = _cpu_busy()
        time.sleep(1.0)
        if not _cpu_busy() - b0 >= threshold or time.perf_counter() - t0 >= max_wait:
            return time.perf_counter() - t0


def run_rounds(workers, sizes, rounds, seed, max_wait):
    plan = [row for row in ROWS if ROWS[row][0] in workers]
    by_round = []
    for r in range(rounds):
        res = {}
        for row in plan[r % len(plan):] + plan[:r % len(plan)]:
            kind, req, _ = ROWS[row]
            waited = wait_quiet(max_wait) if max_wait > 0 else 0.0
            m = workers[kind].call(**req, epochs=sizes[row], seed=seed + 1000 * r)
            m["waited"] = waited
            res[row] = m
            print(f"  [round {r + 1}/{rounds}] {row}: {fmt_t(m['wall'])}, {fmt_rate(rate(m))} steps/s/core, "
                  f"other load {m['foreign']:.2f} cores", file=sys.stderr, flush=True)
        by_round.append(res)
    return by_round


def main(argv=None):
    parser = argparse.ArgumentParser(description="SGD steps per second: phasetools.training.train vs PyTorch")
    parser.add_argument("--quick", action="store_true", help="shorter timings (see the docstring)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved repeats (median; default 5)")
    parser.add_argument("--fresh", type=int, default=2, help="fresh interpreters for first-call times (default 2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="write the raw per-round measurements here")
    parser.add_argument("--max-wait", type=float, default=20.0,
                        help="before each timing, wait up to this many seconds for other processes to go "
                             "quiet (< 0.25 cores busy); 0 = do not wait (default 20)")
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
    print(f"Mode: {mode}; {args.rounds} interleaved rounds; seed {args.seed}. Workload: 2 -> {WIDTH} -> {WIDTH} -> 2 "
          f"(n_layers = {N_LAYERS}), N = {N_SAMPLES}, batch {BATCH} ({STEPS_PER_EPOCH} steps per epoch), "
          f"convention paper, beta {BETA}, lr {LR}.\n")

    cold = first_calls(args.fresh, cold=True)
    first_calls(1, cold=False)  # fills the default cache if it is empty; not reported
    warm = first_calls(args.fresh, cold=False)

    log_dir = tempfile.mkdtemp(prefix="bench_training_")
    workers, skipped = {}, {}
    for kind in WORKERS:
        w = Worker(kind, log_dir)
        if w.error:
            skipped[kind] = w.error
            w.close()
        else:
            workers[kind] = w
    for kind, w in workers.items():
        print(f"- {kind}: {w.version}", file=sys.stderr)
    rounds = run_rounds(workers, sizes, args.rounds, args.seed, args.max_wait)
    for w in workers.values():
        w.close()

    print("### SGD steps per second per core\n")
    print("| contender | threads | seeds x epochs (steps) per run | wall (median) | steps/s/core, median [min-max] "
          "| cores busy | final train MSE | phasetools / torch float32 | phasetools / torch float64 |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
    for row, (kind, req, label) in ROWS.items():
        ms = [rd[row] for rd in rounds if row in rd]
        if not ms:
            continue
        rates = np.array([rate(m) for m in ms])
        steps = ms[0]["steps"]
        cores = np.median([m["cpu"] / m["wall"] for m in ms])
        mse = np.median([m["final_mse"] for m in ms])
        if kind == "torch":
            r32 = r64 = ""
        else:
            r32 = fmt_ratio(ratio(rounds, row, "torch32"))
            r64 = fmt_ratio(ratio(rounds, row, "torch64"))
        print(f"| {label} | {req['threads']} | {req['seeds']} x {sizes[row]} ({steps}) | "
              f"{fmt_t(np.median([m['wall'] for m in ms]))} | {fmt_rate(np.median(rates))} "
              f"[{fmt_rate(rates.min())}-{fmt_rate(rates.max())}] | {cores:.2f} | {mse:.4f} | {r32} | {r64} |")
    for kind, err in skipped.items():
        print(f"\n{kind}: skipped ({err})")

    print("\n### Target: phasetools >= 10x PyTorch per core\n")
    print("| comparison (per core, median of rounds [min-max]) | ratio | met |")
    print("|---|---:|---|")
    for num, den in (("pt1", "torch64"), ("pt1_f32", "torch32"), ("pt1", "torch32"), ("pt50", "torch64"),
                     ("pt50", "torch32"), ("pt50_t2", "torch64"), ("pt50_t2", "torch32")):
        x = ratio(rounds, num, den)
        verdict = "-" if x is None else ("yes" if x[0] >= TARGET else "no")
        print(f"| {ROWS[num][2]} / {ROWS[den][2]} | {fmt_ratio(x)} | {verdict} |")
    x = ratio(rounds, "pt50_t2", "pt50")
    if x is not None:
        print(f"\nphasetools 50 seeds, 2 threads / 1 thread (throughput): "
              f"{2 * x[0]:.2f} [{2 * x[1]:.2f}-{2 * x[2]:.2f}]")
    fl = np.array([m["foreign"] for rd in rounds for m in rd.values()])
    waited = sum(m["waited"] for rd in rounds for m in rd.values())
    print(f"\nCPU load from other processes during the timings (from /proc/stat, in cores): median "
          f"{np.median(fl):.2f}, max {fl.max():.2f}; {int(np.sum(fl > 0.25))} of {fl.size} timings above 0.25. "
          f"Waited for quiet before the timings: {waited:.0f} s in all.\n")

    print("### Compile and first call (fresh interpreter; 1 seed x 100 epochs, float64, 1 thread)\n")
    print("| numba cache | `import phasetools.training` | first `train` call | of which `stats['compile_time']` "
          "| second call |")
    print("|---|---:|---:|---:|---:|")
    for label, d in (("empty (NUMBA_CACHE_DIR in a new folder)", cold), ("filled (after a warm-up)", warm)):
        print(f"| {label} | {fmt_t(d['import'])} | {fmt_t(d['first'])} | {fmt_t(d['compile_time'])} "
              f"| {fmt_t(d['second'])} |")
    if "torch" in workers:
        info = workers["torch"].info
        print(f"\nPyTorch one-off costs (excluded above): `import torch` {fmt_t(info['import_time'])}, first epoch "
              f"{fmt_t(info['first_epoch_float32'])} (float32) and {fmt_t(info['first_epoch_float64'])} (float64).")
    print("\nVersions: " + "; ".join(w.version for w in workers.values()))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"mode": mode, "sizes": sizes, "rounds": rounds, "first_cold": cold, "first_warm": warm,
                       "skipped": skipped, "versions": {k: w.version for k, w in workers.items()},
                       "info": {k: w.info for k, w in workers.items()}}, f, indent=1)


if __name__ == "__main__":
    main()
