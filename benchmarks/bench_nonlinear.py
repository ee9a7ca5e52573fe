"""Training speed of phasetools.nonlinear.train against PyTorch on CPU, two workloads.

* ``grok``: Gromov's grokking run, p = 97, 194 -> 500 -> 97, z^2, MSE, full batch
  (4704 pairs), AdamW (lr 0.01, betas 0.9/0.98, weight decay 5), float32, one seed.
  PyTorch: two ``nn.Linear(bias=False)`` on the dense one-hot inputs (``X @ W1.T`` is one
  GEMM), ``torch.optim.AdamW``, ``nn.MSELoss``. Figure: epochs per second.
* ``seeds``: many small runs, p = 23, 46 -> 64 -> 23, minibatch SGD with replacement
  (batch 32, coupled weight decay 1e-4, lr 2), float64, 16 seeds. PyTorch: the same network
  per seed, one after the other (``torch.randint`` batches, ``torch.optim.SGD``).
  Figure: SGD steps per second, summed over seeds.

* ``engine``: AMS's view of the trainer, ``phasetools.rare.NonlinearEngine.advance``: 8
  replicas of the ``seeds`` network (p = 23, width 64) released by full-batch SGD (lr 4,
  weight decay 3e-4) from a short AdamW preparation, one ``train(epochs=1, init=...)`` call per
  epoch. Figure: replica-epochs per second. phasetools only (no peer has this engine).

* JAX (when installed): the same networks as pure functions, AdamW / SGD written out, the
  step ``jax.jit``-compiled; for ``seeds`` all 16 seeds advance together under ``jax.vmap``
  and the steps of a timing run inside one compiled ``lax.fori_loop`` (batches drawn with
  ``jax.random`` inside it).

Each contender runs in this process, warm; the first call of each (numba: loading or
compiling its kernels; torch: initialisation; JAX: tracing and XLA compilation) is timed
apart and printed as "first call". Rounds interleave the contenders and the tables give the
median over rounds. Threads: phasetools ``n_threads`` and ``torch.set_num_threads`` are set
to the same count; JAX/XLA uses its own thread pool (not limited; noted in the table).
The 1-minute load average (``os.getloadavg``) is recorded before every timing.

    python benchmarks/bench_nonlinear.py --quick    # a few minutes
    python benchmarks/bench_nonlinear.py            # longer

Options: ``--rounds N``, ``--threads 1,2``, ``--no-jax``. Prints markdown tables. Not a test.
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


def engine_setup(task, model, n_replicas=8):
    """The engine's start: ``n_replicas`` states of a short AdamW run (the network fitting)."""
    prep = nl.train(task, model, nl.adamw(1e-2, 0.0), epochs=10, n_seeds=n_replicas, rng=0)
    return task, model, prep.weights


def phasetools_engine(setup, epochs, threads):
    from phasetools.rare import NonlinearEngine

    task, model, start = setup
    engine = NonlinearEngine(task, model, lr=4.0, weight_decay=3e-4, n_threads=threads)
    streams = engine.streams(0, np.arange(start.shape[0]))
    t0 = time.perf_counter()
    engine.advance(start, streams, epochs, -np.inf)
    return start.shape[0] * epochs / (time.perf_counter() - t0)


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


def _jax():
    try:
        import jax
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)
    return jax


def _dense(task, dtype):
    p = task.n_classes
    X = np.zeros((task.n_train, 2 * p), dtype=dtype)
    X[np.arange(task.n_train), task.X_train[:, 0]] = 1
    X[np.arange(task.n_train), task.X_train[:, 1]] = 1
    return X, np.eye(p, dtype=dtype)[task.y_train]


def jax_grok_setup(task, width=500):
    """A jitted AdamW step of Gromov's network (float32, full batch) and its initial state."""
    jax = _jax()
    import jax.numpy as jnp

    X, Y = (jnp.asarray(a) for a in _dense(task, np.float32))
    p = task.n_classes
    std = 0.5 / (2 * width) ** (1 / 3)
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    w = (std * jax.random.normal(k1, (width, 2 * p), jnp.float32), std * jax.random.normal(k2, (p, width), jnp.float32))

    def loss(w):
        return jnp.mean(((X @ w[0].T) ** 2 @ w[1].T - Y) ** 2)

    lr, wd, b1, b2, eps = 1e-2, 5.0, 0.9, 0.98, 1e-8

    @jax.jit
    def step(w, m, v, t):
        g = jax.grad(loss)(w)
        m = tuple(b1 * mi + (1 - b1) * gi for mi, gi in zip(m, g))
        v = tuple(b2 * vi + (1 - b2) * gi * gi for vi, gi in zip(v, g))
        w = tuple(wi * (1 - lr * wd) - lr / (1 - b1 ** t) * mi / (jnp.sqrt(vi / (1 - b2 ** t)) + eps)
                  for wi, mi, vi in zip(w, m, v))
        return w, m, v

    zeros = tuple(jnp.zeros_like(wi) for wi in w)
    return step, (w, zeros, zeros)


def jax_grok(setup, epochs):
    step, (w, m, v) = setup
    t0 = time.perf_counter()
    for t in range(1, epochs + 1):
        w, m, v = step(w, m, v, float(t))
    w[0].block_until_ready()
    return epochs / (time.perf_counter() - t0)


def jax_seeds_setup(task, n_seeds, batch, steps, width=64):
    """``steps`` SGD steps of 16 seeds at once: vmap over seeds, fori_loop over steps, one jit."""
    jax = _jax()
    import jax.numpy as jnp

    X, Y = (jnp.asarray(a) for a in _dense(task, np.float64))
    n, p = task.n_train, task.n_classes
    lr, wd = 2.0, 1e-4

    def loss(w, idx):
        return jnp.mean(((X[idx] @ w[0].T) ** 2 @ w[1].T - Y[idx]) ** 2)

    def run_one(w, key):
        def body(_, carry):
            w, key = carry
            key, sub = jax.random.split(key)
            idx = jax.random.randint(sub, (batch,), 0, n)
            g = jax.grad(loss)(w, idx)
            return tuple(wi - lr * (gi + wd * wi) for wi, gi in zip(w, g)), key
        return jax.lax.fori_loop(0, steps, body, (w, key))[0]

    run = jax.jit(jax.vmap(run_one))
    keys = jax.random.split(jax.random.PRNGKey(0), n_seeds)
    std = 0.5 / (2 * width) ** (1 / 3)
    w = (std * jax.random.normal(keys[0], (n_seeds, width, 2 * p)), std * jax.random.normal(keys[1], (n_seeds, p, width)))
    return run, w, keys


def jax_seeds(setup, n_seeds, steps):
    run, w, keys = setup
    t0 = time.perf_counter()
    run(w, keys)[0].block_until_ready()
    return n_seeds * steps / (time.perf_counter() - t0)


def _first(label, fn, firsts):
    t0 = time.perf_counter()
    fn()
    firsts[label] = time.perf_counter() - t0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--no-jax", action="store_true", help="leave JAX out even when installed")
    args = parser.parse_args()
    have_jax = not args.no_jax and _jax() is not None
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
    start_load = _load()
    firsts = {}  # first calls: numba kernels (cache load or compile), torch initialisation, JAX tracing + XLA
    _first("phasetools grok", lambda: phasetools_grok(t97, m97, 1, 1), firsts)
    _first("phasetools seeds", lambda: phasetools_seeds(t23, m23, 1, 1, 16, 32), firsts)
    eng = engine_setup(t23, m23)
    _first("phasetools engine", lambda: phasetools_engine(eng, 1, 1), firsts)
    engine_epochs = 20 if args.quick else 60
    if have_torch:
        _first("torch grok", lambda: torch_grok(t97, 1, 1), firsts)
        _first("torch seeds", lambda: torch_seeds(t23, 1, 1, 1, 32), firsts)
    seed_steps = seed_epochs * (t23.n_train // 32)
    if have_jax:
        jg = jax_grok_setup(t97)
        _first("jax grok", lambda: jax_grok(jg, 1), firsts)
        js = jax_seeds_setup(t23, 16, 32, seed_steps)
        _first("jax seeds", lambda: jax_seeds(js, 16, seed_steps), firsts)
    rows = {}
    loads = []
    for r in range(args.rounds):
        for th in threads:
            jobs = [("grok", "phasetools", lambda: phasetools_grok(t97, m97, grok_epochs, th)),
                    ("seeds", "phasetools", lambda: phasetools_seeds(t23, m23, seed_epochs, th, 16, 32)),
                    ("engine", "phasetools", lambda: phasetools_engine(eng, engine_epochs, th))]
            if have_torch:
                jobs += [("grok", "torch", lambda: torch_grok(t97, grok_epochs, th)),
                         ("seeds", "torch", lambda: torch_seeds(t23, seed_epochs // 4, th, 16, 32))]
            if have_jax:
                jobs += [("grok", "jax", lambda: jax_grok(jg, grok_epochs)),
                         ("seeds", "jax", lambda: jax_seeds(js, 16, seed_steps))]
            jobs = jobs[r % len(jobs):] + jobs[:r % len(jobs)]
            for work, who, job in jobs:
                loads.append(_load())
                rows.setdefault((work, who, th), []).append(job())
    print(f"rounds {args.rounds}, {'quick' if args.quick else 'full'}; 1-minute load average: {start_load:.1f} "
          f"at the start, during the timings median {np.median(loads):.1f}, max {np.max(loads):.1f}, "
          f"{_load():.1f} at the end ({os.cpu_count()} cores)\n")
    print("first calls (s): " + ", ".join(f"{k} {v:.2f}" for k, v in firsts.items()) + "\n")
    med = {k: float(np.median(v)) for k, v in rows.items()}
    nan = float("nan")
    for work, unit in (("grok", "epochs/s"), ("seeds", "SGD steps/s (16 seeds)")):
        print(f"| {work}: {unit} | threads | phasetools | torch | jax (XLA threads) | phasetools / torch | "
              f"phasetools / jax |")
        print("|---|---|---|---|---|---|---|")
        for th in threads:
            a = med[(work, "phasetools", th)]
            b = med.get((work, "torch", th), nan)
            c = med.get((work, "jax", th), nan)
            print(f"| {work} | {th} | {a:.4g} | {b:.4g} | {c:.4g} | {a / b:.3g} | {a / c:.3g} |")
        print()
    print("| engine: replica-epochs/s (8 replicas) | threads | phasetools |\n|---|---|---|")
    for th in threads:
        print(f"| engine | {th} | {med[('engine', 'phasetools', th)]:.4g} |")


if __name__ == "__main__":
    main()
