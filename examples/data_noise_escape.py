"""Escape of a network under SGD-like noise: the data's own fourth moments against Isserlis'.

    python examples/data_noise_escape.py [--n-traj 200] [--batch-sizes 2 4 6]

One mode of a non-Gaussian draw (N = 512 samples, Laplace inputs x with E[x^2] = 1, labels
y = 0.8 x + 0.6 g, g standard normal) trains a width-4, three-layer linear network (paper
units, weight decay 0.32). From its learned minimum it escapes backward (the order parameter
drops below half the saddle value) under SGD-like noise (lr / B) Sigma(theta), lr = 0.1, for
a few batch sizes B, twice on the same random streams:

* ``gaussian``: Sigma from the draw's second moments with Isserlis' fourth moments
  (``SGDNoise(lr, B, a, c, s)``), what the Gaussian data model assumes;
* ``data``: Sigma from the draw's own fourth moments (``SGDNoise.from_data(lr, B, (x, y))``),
  the covariance of the per-sample gradients of the actual training set.

Each censoring-aware mean escape time (Langevin time lr * steps) is printed beside the exact
1-D first-passage time of the balanced coordinate with the same noise
(``problem.sgd_theory(noise=...)``). Laplace inputs have E[x^4] = 6, twice Isserlis' 3, so the
data's noise is larger and escape faster, increasingly so as B/lr grows. Takes a few minutes
(the data variant of the kernel compiles once, about 30 s).
"""

import argparse

import numpy as np

from phasetools.langevin import SGDNoise, escape_problem, simulate
from phasetools.theory import data_mode_noise

LR, N, WIDTH, N_LAYERS, WEIGHT_DECAY = 0.1, 512, 4, 3, 0.32
SIM = {"dt": 0.02, "scheme": "bridge"}


def draw(seed=11):
    """The non-Gaussian one-mode training set."""
    rng = np.random.default_rng(seed)
    x = rng.laplace(scale=1 / np.sqrt(2), size=N)
    return x, 0.8 * x + 0.6 * rng.standard_normal(N)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-traj", type=int, default=200)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[2, 4, 6])
    args = parser.parse_args()

    x, y = draw()
    mode = data_mode_noise(x[:, None], y[:, None])[0]
    problem = escape_problem("network", n_layers=N_LAYERS, c=mode.c, gamma=WEIGHT_DECAY, a=mode.a, width=WIDTH,
                             direction="bwd", convention="paper")
    print(f"draw: a = E[x^2] = {mode.a:.4f}, c = E[xy] = {mode.c:.4f}, E[x^4]/a^2 = {mode.m_xxxx / mode.a ** 2:.3f} "
          f"(Gaussian: 3); barrier {problem.barrier:.5f} (paper units), N_theta = {problem.potential.dim}")
    print(f"{'B':>3} {'B/lr':>5} {'moments':>8} {'tau (sim)':>17} {'tau (1-D theory)':>16} {'ratio':>6} "
          f"{'escaped':>8} {'wall s':>7}")
    for k, B in enumerate(args.batch_sizes):
        noises = {"gaussian": SGDNoise(LR, B, [[mode.a]], [[mode.c]], [[mode.output_var]]),
                  "data": SGDNoise.from_data(LR, B, (x, y))}
        taus = {}
        for name, noise in noises.items():
            exact = problem.sgd_theory(noise=noise).tau(LR, B)
            max_steps = int(6 * exact / SIM["dt"])
            ens = simulate(problem.potential, problem.x0, noise=noise, n_traj=args.n_traj, max_steps=max_steps,
                           stop=problem.stop, rng=100 + k, **SIM)
            wall = ens.stats["wall_time"]   # without the first call's compilation
            fit = ens.fit()
            taus[name] = fit.tau
            print(f"{B:>3d} {B / LR:>5.0f} {name:>8} {fit.tau:>8.1f} +- {fit.tau_stderr:<6.1f} {exact:>16.1f} "
                  f"{fit.tau / exact:>6.3f} {int(ens.escaped.sum()):>4d}/{args.n_traj:<3d} {wall:>7.1f}")
        print(f"{'':>9} gaussian / data: {taus['gaussian'] / taus['data']:.2f}")


if __name__ == "__main__":
    main()
