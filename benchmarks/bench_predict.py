"""Cost of an escape-time prediction beside the cost of the training run it predicts (docs/predict.md).

Per set-up, in one process and interleaved round by round (so that changes of machine load hit
both alike):

* the prediction: ``training.predict_escape`` (a), ``training.predict_shuffled_escape`` (b, when
  the toolkit has it), ``training.predict_injected`` (c), ``training.predict_plateau`` (d);
* the training run it predicts, as ``phasetools reproduce`` measures it: 16 seeds of width 10
  released from a trapped checkpoint with an epoch budget of 8 x the prediction (at least 100),
  minibatches with replacement (a) or reshuffled (b), full batch with injected noise (c). The
  checkpoint's preparation is timed once and reported apart. (d) has no training column: its
  measurement is E5's trap-and-release (``sparse_grokking``), not a single run.

Wall times are medians over the rounds; the ratio is the median of the per-round ratios
training / prediction. First calls (numba compilation of the trainer, or its load from the
on-disk cache, and the first prediction, which builds the theory's landscapes) are timed
before the rounds and reported apart.

Prediction (b) is a simulation whose cost grows with the escape time it predicts, so it gets a
table of its own (full mode, or ``--reshuffling`` alone): the CPU seconds of
``predict_shuffled_escape`` on each of the 19 validation set-ups of ``examples/predict_escape.py``
(the ``SHUFFLED`` points, each with the measurement's epoch budget, default stopping rule), on one
thread, and its wall time on all of numba's threads; median and max over the set-ups. Its first
calls (numba's compilation of the ``r = 1`` and ``r = 2`` kernels, or their load from the on-disk
cache) are timed apart.

    python benchmarks/bench_predict.py                 # full: 3 rounds, 7 set-ups + (b), about 5 minutes
    python benchmarks/bench_predict.py --quick         # 2 rounds, 4 set-ups, about 1.5 minutes
    python benchmarks/bench_predict.py --reshuffling   # only the (b) table, about 1 minute

Options: ``--rounds N``, ``--json PATH`` (raw per-round numbers). Prints the machine load
(``os.getloadavg``) and markdown tables. Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np

N_SEEDS = 16


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def _setups(quick):
    from phasetools import training as tr
    from phasetools.theory import landscape
    teacher = tr.GaussianTeacher([0.9, 0.8])
    test = teacher.test_set()
    data = teacher.sample(512, rng=1)
    out, traps = [], {}

    def trap_rank2():
        if "rank2" not in traps:
            traps["rank2"] = _timed(lambda: tr.prepare_trap(
                data, trap_weight_decays=(0.0, 0.35), trap_epochs=(300, 300), n_layers=3, width=10, lr=0.08,
                batch_size=64, n_seeds=N_SEEDS, rng=np.random.SeedSequence(4242)))
        return traps["rank2"][0]

    def trap_rank1():
        if "rank1" not in traps:
            traps["rank1"] = _timed(lambda: tr.prepare_trap(
                data, trap_weight_decays=(0.0, tr.trap_weight_decay(data, 1, n_layers=3)), trap_epochs=(300, 600),
                n_layers=3, width=10, lr=0.08, batch_size=64, n_seeds=N_SEEDS, rng=np.random.SeedSequence(4243)))
        return traps["rank1"][0]

    for B in ((8, 32) if quick else (8, 16, 32)):
        kw = dict(n_layers=3, width=10, weight_decay=0.35, lr=0.1, batch_size=B)
        out.append((f"(a) replacement, B {B}", lambda kw=kw: tr.predict_escape(data, **kw).tau_epochs,
                    lambda ep, B=B: tr.train(data, n_layers=3, width=10, lr=0.1, batch_size=B, sampling="replacement",
                                             weight_decay=0.35, convention="paper", init=trap_rank2(), epochs=ep,
                                             test=test, log_every=1, layer_log_every=ep, rng=B)))
    if hasattr(tr, "predict_shuffled_escape") and not quick:
        kw = dict(n_layers=3, width=10, weight_decay=0.35, lr=0.1, batch_size=8)
        out.append(("(b) reshuffling, B 8", lambda: tr.predict_shuffled_escape(data, **kw).tau_epochs,
                     lambda ep: tr.train(data, n_layers=3, width=10, lr=0.1, batch_size=8, weight_decay=0.35,
                                         convention="paper", init=trap_rank2(), epochs=ep, test=test, log_every=1,
                                         layer_log_every=ep, rng=8)))
    m = data.moments()
    barrier = float(landscape(3, m.spectrum[1], 0.30, m.a[1], convention="paper").barrier_fwd)
    for r in ((3,) if quick else (3, 10)):
        T = barrier / r
        out.append((f"(c) injected, dU/T {r}",
                    lambda T=T: tr.predict_injected(data, n_layers=3, width=10, weight_decay=0.30, temperature=T,
                                                    lr=0.1).tau_epochs,
                    lambda ep, T=T: tr.train(data, n_layers=3, width=10, lr=0.1, sampling="full", weight_decay=0.30,
                                             convention="paper", init=trap_rank1(), epochs=ep, temperature=T,
                                             test=test, log_every=5, layer_log_every=ep, rng=int(1000 * T))))
    small = teacher.sample(25, rng=6)
    out.append(("(d) plateau, seed 0.03",
                lambda: tr.predict_plateau(small, 0.03, n_layers=3, weight_decay=0.0025, lr=0.1).tau_epochs, None))
    return out, traps


def _validation_setups():
    """The (b) validation set-ups of ``examples/predict_escape.py``: ``[(label, data, kwargs), ...]``."""
    import importlib.util
    from pathlib import Path

    from phasetools.training import GaussianTeacher
    path = Path(__file__).resolve().parent.parent / "examples" / "predict_escape.py"
    spec = importlib.util.spec_from_file_location("predict_escape_example", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    out = []
    for (eta, draw, wd, lr, width), points in example.SHUFFLED.items():
        data = GaussianTeacher(list(eta)).sample(512, rng=draw)
        for B, epochs in points:
            label = f"{'1 mode' if len(eta) == 1 else f'draw {draw}'}, wd {wd}, lr {lr}, width {width}, B {B}"
            out.append((label, data, dict(n_layers=3, width=width, weight_decay=wd, lr=lr, batch_size=B,
                                          max_epochs=epochs)))
    return out


_FIRST_CALLS = """
import json, time
from phasetools.training import GaussianTeacher, predict_escape, predict_shuffled_escape
two, one = GaussianTeacher([0.9, 0.8]).sample(512, rng=1), GaussianTeacher([0.8]).sample(512, rng=1)
out = {}
for r, data, wd in ((2, two, 0.35), (1, one, 0.55)):
    predict_escape(data, n_layers=3, width=r, weight_decay=wd, lr=0.1, batch_size=8)   # sympy, quadrature
    c0 = time.process_time()
    predict_shuffled_escape(data, n_layers=3, weight_decay=wd, lr=0.1, batch_size=8, n_seeds=2, max_epochs=2,
                            n_threads=1)
    out[f"(b) first call, r = {r} kernel"] = time.process_time() - c0
print(json.dumps(out))
"""


def _first_calls(cold):
    """CPU seconds of the first ``predict_shuffled_escape`` calls (r = 2, then r = 1) in a fresh process,
    with numba's cache emptied (``cold``: what a first use after an install or an edit pays) or as it is."""
    import subprocess
    import sys
    import tempfile
    from pathlib import Path
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parent.parent), env.get("PYTHONPATH", "")])
    with tempfile.TemporaryDirectory() as tmp:
        if cold:
            env["NUMBA_CACHE_DIR"] = tmp
        out = subprocess.run([sys.executable, "-c", _FIRST_CALLS], env=env, capture_output=True, text=True,
                             check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _cpu(fn):
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.process_time() - c0, time.perf_counter() - t0


def reshuffling_costs(rounds):
    """CPU seconds (one thread) and wall seconds (numba's threads) of prediction (b) per validation set-up.

    Parameters
    ----------
    rounds : int
        Repeats per set-up (medians are reported).

    Returns
    -------
    dict
        ``first``: the first calls; ``rows``: per set-up label, tau, seeds used, CPU and wall times.
    """
    import numba

    from phasetools.training import GaussianTeacher, predict_shuffled_escape
    first = {f"{k}, empty numba cache (compile; a fresh process)": v for k, v in _first_calls(cold=True).items()}
    first.update({f"{k}, numba's on-disk cache (a fresh process)": v for k, v in _first_calls(cold=False).items()})
    c0 = time.process_time()
    for eta, wd in (([0.9, 0.8], 0.35), ([0.8], 0.55)):
        predict_shuffled_escape(GaussianTeacher(eta).sample(512, rng=1), n_layers=3, weight_decay=wd, lr=0.1,
                                batch_size=8, n_seeds=2, max_epochs=2, n_threads=1)
    first["(b) first calls in this process (imports, sympy's closed forms, both kernels)"] = time.process_time() - c0
    threads = numba.get_num_threads()
    rows = []
    for label, data, kw in _validation_setups():
        cpu, wall = [], []
        for _ in range(rounds):
            p, c, _ = _cpu(lambda data=data, kw=kw: predict_shuffled_escape(data, n_threads=1, **kw))
            cpu.append(c)
            _, _, w = _cpu(lambda data=data, kw=kw: predict_shuffled_escape(data, n_threads=threads, **kw))
            wall.append(w)
        seeds = p.assumptions.splitlines()[-1].split(" simulated seeds")[0]
        rows.append(dict(label=label, tau=p.tau_epochs, budget=kw["max_epochs"], seeds=seeds,
                         cpu=float(np.median(cpu)), wall=float(np.median(wall)), n_threads=threads))
    return {"first": first, "rows": rows}


def _print_reshuffling(res):
    rows = res["rows"]
    nt = rows[0]["n_threads"] if rows else 1
    print(f"\n(b) random reshuffling, predict_shuffled_escape on the {len(rows)} validation set-ups "
          f"(default stopping rule: 45 escapes, at most 64 seeds):\n")
    print(f"| set-up | epoch budget | predicted tau (epochs) | escaped of seeds used | CPU s (1 thread) | "
          f"wall s ({nt} threads) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['label']} | {r['budget']} | {r['tau']:.4g} | {r['seeds']} | {r['cpu']:.3f} | {r['wall']:.3f} |")
    cpu = np.array([r["cpu"] for r in rows])
    wall = np.array([r["wall"] for r in rows])
    print(f"\nCPU seconds per set-up: median {np.median(cpu):.3f}, max {cpu.max():.3f} "
          f"({int(np.sum(cpu < 0.5))}/{cpu.size} under 0.5 s, {int(np.sum(cpu < 1.0))}/{cpu.size} under 1 s); "
          f"wall on {nt} threads: median {np.median(wall):.3f}, max {wall.max():.3f}")
    print("\n| first call | CPU seconds |\n|---|---|")
    for name, t in res["first"].items():
        print(f"| {name} | {t:.2f} |")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer set-ups and rounds")
    ap.add_argument("--rounds", type=int, default=None, help="interleaved repeats (default 3, quick 2)")
    ap.add_argument("--json", default=None, help="write the raw per-round numbers here")
    ap.add_argument("--reshuffling", action="store_true",
                    help="only the cost of prediction (b) on the validation set-ups (no training)")
    a = ap.parse_args(argv)
    rounds = a.rounds or (2 if a.quick else 3)
    load0 = os.getloadavg()
    t_start = time.perf_counter()
    if a.reshuffling:
        res = reshuffling_costs(rounds)
        load1 = os.getloadavg()
        print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; load average "
              f"{load0[0]:.1f} at the start, {load1[0]:.1f} at the end; {rounds} rounds; "
              f"{time.perf_counter() - t_start:.0f} s in all")
        _print_reshuffling(res)
        if a.json:
            with open(a.json, "w") as f:
                json.dump({"reshuffling": res, "load": [load0, load1], "rounds": rounds}, f)
        return
    from phasetools import training as tr
    first = {}
    data = tr.GaussianTeacher([0.9, 0.8]).sample(512, rng=1)
    _, first["first prediction (a) in the process"] = _timed(
        lambda: tr.predict_escape(data, n_layers=3, width=10, weight_decay=0.35, lr=0.1, batch_size=16))
    run, first["first train() call in the process (compile or cache load)"] = _timed(
        lambda: tr.train(data, n_layers=3, width=10, lr=0.1, batch_size=16, sampling="replacement", weight_decay=0.35,
                         epochs=1, n_seeds=1, rng=0))
    first["  of which stats['compile_time']"] = float(run.stats.get("compile_time", float("nan")))
    shuffled = None if a.quick else reshuffling_costs(rounds)
    setups, traps = _setups(a.quick)
    raw = {name: {"predict": [], "train": [], "epochs": None, "tau": None} for name, _, _ in setups}
    for k in range(rounds):
        order = setups[k % len(setups):] + setups[:k % len(setups)]   # rotated from round to round
        for name, predict, train in order:
            tau, tp = _timed(predict)
            raw[name]["predict"].append(tp)
            raw[name]["tau"] = float(tau)
            if train is not None:
                ep = int(np.clip(8 * tau, 100, 20_000)) if np.isfinite(tau) else 3000
                raw[name]["epochs"] = ep
                if k == 0:
                    train(ep)                      # the checkpoint is prepared on first use, outside the timing
                _, tt = _timed(lambda: train(ep))
                raw[name]["train"].append(tt)
    load1 = os.getloadavg()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; load average "
          f"{load0[0]:.1f} at the start, {load1[0]:.1f} at the end; {rounds} rounds; "
          f"{time.perf_counter() - t_start:.0f} s in all\n")
    print("| set-up | predicted tau (epochs) | prediction (s) | training: 16 seeds, epochs | training (s) | "
          "training / prediction |")
    print("|---|---|---|---|---|---|")
    for name, v in raw.items():
        tp = float(np.median(v["predict"]))
        if v["train"]:
            tt = float(np.median(v["train"]))
            ratio = np.median(np.array(v["train"]) / np.array(v["predict"]))
            rng = f"{np.min(np.array(v['train']) / np.array(v['predict'])):.3g}-" \
                  f"{np.max(np.array(v['train']) / np.array(v['predict'])):.3g}"
            print(f"| {name} | {v['tau']:.4g} | {tp:.3f} | {v['epochs']} | {tt:.2f} | {ratio:.3g} [{rng}] |")
        else:
            print(f"| {name} | {v['tau']:.4g} | {tp:.3f} | - | - | - |")
    print("\n| first call / preparation | seconds |\n|---|---|")
    for name, t in first.items():
        print(f"| {name} | {t:.2f} |")
    for name, (_, t) in traps.items():
        print(f"| trapped checkpoint ({name}, 16 seeds, prepare_trap) | {t:.2f} |")
    if shuffled is not None:
        _print_reshuffling(shuffled)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"raw": raw, "first": first, "reshuffling": shuffled, "load": [load0, load1],
                       "rounds": rounds}, f)


if __name__ == "__main__":
    main()
