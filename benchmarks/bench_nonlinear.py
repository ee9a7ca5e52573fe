"""Training speed of phasetools.nonlinear.train against PyTorch on CPU, two workloads.

* ``grok``: Gromov's grokking run, p = 97, 194 -> 500 -> 97, z^2, MSE, full batch
  (4704 pairs), AdamW (lr 0.01, betas 0.9/0.98, weight decay 5), float32, one seed.
  PyTorch: two ``nn.Linear(bias=False)`` on the dense one-hot inputs (``X @ W1.T`` is one
  GEMM), ``torch.optim.AdamW``, ``nn.MSELoss``. Figure: epochs per second.
* ``seeds``: many small runs, p = 23, 46 -> 64 -> 23, minibatch SGD with replacement
  (batch 32, coupled weight decay 1e-4, lr 2), float64, 16 seeds. PyTorch: the same network
  per seed, one after the other (``torch.randint`` batches, ``torch.optim.SGD``).
  Figure: SGD steps per second, summed over seeds.

Each contender runs in this process, warm (numba compiled and torch initialised by a first
short call); rounds interleave the contenders and the tables give the median over rounds.
Threads: phasetools ``n_threads`` and ``torch.set_num_threads`` are set to the same count.

    python benchmarks/bench_nonlinear.py --quick    # about 2 minutes
    python benchmarks/bench_nonlinear.py            # about 6 minutes

Options: ``--rounds N``, ``--threads 1,2``. Prints markdown tables. Not a test.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from phasetools import nonlinear as nl


def _load():
    try:
        return os.getloadavg()[0]
    except OSError:  # pragma: no cover
        return float("nan")


def phasetools_grok(task, model, epochs, threads):
    t0 = time.perf_counter()
    nl.train(task, model, nl.adamw(1e-2, 5.0), epochs=epochs, log_every=epochs, rng=0, dtype="float32",
             n_threads=threads)
    return epochs / (time.perf_counter() - t0)


def torch_grok(task, epochs, threads, width=500):
    import torch

    torch.set_num_threads(threads)
    p = task.n_classes
    X = torch.zeros((task.n_train, 2 * p), dtype=torch.float32)
    X[torch.arange(task.n_train), torch.as_tensor(task.X_train[:, 0])] = 1
    X[torch.arange(task.n_train), torch.as_tensor(task.X_train[:, 1])] = 1
    Y = torch.nn.functional.one_hot(torch.as_tensor(task.y_train), p).to(torch.float32)
    torch.manual_seed(0)
    l1 = torch.nn.Linear(2 * p, width, bias=False)
    l2 = torch.nn.Linear(width, p, bias=False)
    std = 0.5 / (2 * width) ** (1 / 3)
    torch.nn.init.normal_(l1.weight, std=std)
    torch.nn.init.normal_(l2.weight, std=std)
    opt = torch.optim.AdamW([l1.weight, l2.weight], lr=1e-2, weight_decay=5.0, betas=(0.9, 0.98), eps=1e-8)
    loss_fn = torch.nn.MSELoss()
    t0 = time.perf_counter()
    for _ in range(epochs):
        opt.zero_grad()
        loss = loss_fn(l2(l1(X) ** 2), Y)
        loss.backward()
        opt.step()
    return epochs / (time.perf_counter() - t0)


def phasetools_seeds(task, model, epochs, threads, n_seeds, batch):
    t0 = time.perf_counter()
    nl.train(task, model, nl.sgd(2.0, 1e-4), epochs=epochs, batch_size=batch, sampling="replacement",
             n_seeds=n_seeds, log_every=epochs, rng=0, n_threads=threads)
    return n_seeds * epochs * (task.n_train // batch) / (time.perf_counter() - t0)


def torch_seeds(task, epochs, threads, n_seeds, batch, width=64):
    import torch

    torch.set_num_threads(threads)
    p = task.n_classes
    n = task.n_train
    X = torch.zeros((n, 2 * p), dtype=torch.float64)
    X[torch.arange(n), torch.as_tensor(task.X_train[:, 0])] = 1
    X[torch.arange(n), torch.as_tensor(task.X_train[:, 1])] = 1
    Y = torch.nn.functional.one_hot(torch.as_tensor(task.y_train), p).to(torch.float64)
    loss_fn = torch.nn.MSELoss()
    steps = n // batch
    t0 = time.perf_counter()
    for s in range(n_seeds):
        torch.manual_seed(s)
        l1 = torch.nn.Linear(2 * p, width, bias=False, dtype=torch.float64)
        l2 = torch.nn.Linear(width, p, bias=False, dtype=torch.float64)
        opt = torch.optim.SGD([l1.weight, l2.weight], lr=2.0, weight_decay=1e-4)
        for _ in range(epochs * steps):
            idx = torch.randint(0, n, (batch,))
            opt.zero_grad()
            loss = loss_fn(l2(l1(X[idx]) ** 2), Y[idx])
            loss.backward()
            opt.step()
    return n_seeds * epochs * steps / (time.perf_counter() - t0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", default="1,2")
    args = parser.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    try:
        import torch  # noqa: F401
        have_torch = True
    except ImportError:
        have_torch = False
    grok_epochs = 5 if args.quick else 20
    seed_epochs = 20 if args.quick else 60
    t97 = nl.modular_addition(97, 0.5)
    m97 = nl.quadratic_mlp(97, 500)
    t23 = nl.modular_addition(23, 0.5)
    m23 = nl.quadratic_mlp(23, 64)
    # warm-up: numba compilation, torch initialisation
    phasetools_grok(t97, m97, 1, 1)
    phasetools_seeds(t23, m23, 1, 1, 16, 32)
    if have_torch:
        torch_grok(t97, 1, 1)
        torch_seeds(t23, 1, 1, 1, 32)
    rows = {}
    loads = []
    for r in range(args.rounds):
        for th in threads:
            jobs = [("grok", "phasetools", lambda: phasetools_grok(t97, m97, grok_epochs, th)),
                    ("seeds", "phasetools", lambda: phasetools_seeds(t23, m23, seed_epochs, th, 16, 32))]
            if have_torch:
                jobs += [("grok", "torch", lambda: torch_grok(t97, grok_epochs, th)),
                         ("seeds", "torch", lambda: torch_seeds(t23, seed_epochs // 4, th, 16, 32))]
            jobs = jobs[r % len(jobs):] + jobs[:r % len(jobs)]
            for work, who, job in jobs:
                loads.append(_load())
                rows.setdefault((work, who, th), []).append(job())
    print(f"rounds {args.rounds}, {'quick' if args.quick else 'full'}; 1-minute load average during the "
          f"timings: median {np.median(loads):.1f}, max {np.max(loads):.1f} (2 cores)\n")
    for work, unit in (("grok", "epochs/s"), ("seeds", "SGD steps/s (16 seeds)")):
        print(f"| {work} | threads | phasetools {unit} | torch {unit} | phasetools / torch |")
        print("|---|---|---|---|---|")
        for th in threads:
            a = float(np.median(rows[(work, "phasetools", th)]))
            b = float(np.median(rows[(work, "torch", th)])) if have_torch else float("nan")
            print(f"| {work} | {th} | {a:.4g} | {b:.4g} | {a / b:.3g} |")
        print()


if __name__ == "__main__":
    main()
