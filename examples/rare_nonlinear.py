"""AMS over the nonlinear trainer against brute force: a memorising modular-addition network.

p = 23, quadratic MLP of width 16; a memorising state from 150 full-batch AdamW epochs
(lr 0.01, no weight decay); release by full-batch gradient descent (lr 4, weight decay 3e-3)
with injected noise T = 7e-7; the escape is the Fourier IPR of the first layer rising from
0.497 to 0.505 (docs/rare.md, "Nonlinear networks").

    python examples/rare_nonlinear.py            # brute force (100 releases) and AMS (~2 min)
"""

import time

import numpy as np

from phasetools.nonlinear import adamw, modular_addition, quadratic_mlp, train
from phasetools.rare import AMSOptions, NonlinearEngine, ams_nonlinear_escape, excursions

RELEASE = dict(lr=4.0, weight_decay=3e-3, temperature=7e-7)
TARGET, START, LEVEL = 0.505, 0.4971, 0.498


def main(n_brute=100, ams_seed=1):
    task, model = modular_addition(23, 0.5, data_seed=0), quadratic_mlp(23, 16)
    prep = train(task, model, adamw(1e-2, 0.0), epochs=150, n_seeds=1, log_every=150, rng=0, n_threads=1)
    x0 = prep.weights[0]
    print(f"memorising state: train acc {prep.train_acc[0, -1]:.3f}, test acc {prep.test_acc[0, -1]:.3f}, "
          f"Fourier IPR {prep.fourier_ipr[0, -1]:.4f}")
    t0 = time.perf_counter()
    eng = NonlinearEngine(task, model, n_threads=1, **RELEASE)
    ex = excursions(eng, np.tile(x0, (n_brute, 1)), eng.streams(11, np.arange(n_brute)), low=-np.inf, high=TARGET,
                    max_steps=400, chunk=64)
    esc = ex.outcome == 2
    print(f"brute force: {esc.sum()}/{n_brute} escaped, mean {ex.steps.mean():.2f} +- "
          f"{ex.steps.std(ddof=1) / np.sqrt(n_brute):.2f} epochs (quantiles 10/50/90 %: "
          f"{np.quantile(ex.steps, [0.1, 0.5, 0.9]).tolist()}), {time.perf_counter() - t0:.0f} s")
    t0 = time.perf_counter()
    res = ams_nonlinear_escape(task, model, x0, target=TARGET, start=START, level=LEVEL, rng=ams_seed, n_threads=1,
                               options=AMSOptions(n_replicas=20, n_kill=4, n_runs=10, n_walkers=20, n_rounds=3,
                                                  max_steps=500, chunk=16), **RELEASE)
    print(f"AMS: tau {res.tau:.2f} +- {res.tau_stderr:.2f} epochs [{res.tau_lower:.2f}, {res.tau_upper:.2f}], "
          f"p {res.p:.3f} +- {res.p_stderr:.3f}, t_first {res.t_first:.2f}, t_loop {res.t_loop:.2f}, "
          f"t_reactive {res.t_reactive:.2f}, cost {res.cost['total']} epochs, {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
