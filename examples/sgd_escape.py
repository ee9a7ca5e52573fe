"""Escape under SGD-like noise: ln tau against batch_size/lr, against the 1D theory.

    python examples/sgd_escape.py [--out examples/output] [--n-traj 2000]

The paper's three-weight chain (eta = 0.8, weight decay 0.32, paper units) starts at
its learned minimum and escapes backward (P drops below half the saddle value) under the
SGD-like multiplicative noise (lr / B) Sigma(theta), Sigma the exact per-sample gradient
covariance (unit output variance). Forward escape is not used: the noise is exactly zero at
the trivial state (all weights zero). The sweep runs lr = 0.08 with B = 3..7 and one point
(lr = 0.04, B = 2) that shares B/lr = 50 with (0.08, 4): in Langevin time only lr/B matters.

Compared: each censoring-aware tau with the exact mean first-passage time of the balanced
coordinate (SGDTheory.tau), and the Arrhenius slope of ln tau against B/lr with
* the quasi-potential slope along the path (SGDTheory.slope_path, the weak-noise limit),
* barrier / (T_eff B/lr) with T_eff = lr tr(Sigma) / (2 B N_theta) at the start
  (slope_start) and at the saddle (slope_saddle).
A width-2 network (N_theta = 8) at (0.08, 4) escapes like the chain, although its T_eff is
8/3 times smaller. Writes sgd_escape.h5, sgd_survival.png, sgd_arrhenius.png; takes about
a minute.
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from phasetools.io import save_many  # noqa: E402
from phasetools.langevin import escape_problem, escape_sweep  # noqa: E402
from phasetools.plot import arrhenius, survival  # noqa: E402
from phasetools.stats import arrhenius_fit  # noqa: E402

SIM = dict(dt=0.01, max_steps=10**7, scheme="bridge")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="examples/output")
    parser.add_argument("--n-traj", type=int, default=2000)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    problem = escape_problem("chain", n_layers=3, c=0.8, gamma=0.32, direction="bwd", convention="paper")
    th = problem.sgd_theory()
    print(f"barrier_bwd {th.barrier:.5f} (paper units); tr Sigma {th.trace_start:.4f} at the start, "
          f"{th.trace_saddle:.4f} at the saddle; N_theta = {th.n_params}")
    points = [(0.08, 3), (0.08, 4), (0.04, 2), (0.08, 5), (0.08, 6), (0.08, 7)]
    sweep = escape_sweep(problem, points=points, n_traj=args.n_traj, rng=[2000 + k for k in range(len(points))],
                         **SIM)
    print(f"{'lr':>6} {'B':>3} {'B/lr':>6} {'T_eff':>9} {'tau (sim)':>16} {'tau (exact)':>11} {'ratio':>6} "
          f"{'z':>6}")
    for (lr, b), T, fit, ex in zip(points, sweep.temperature, sweep.fits, sweep.theory_tau):
        print(f"{lr:>6.3g} {b:>3d} {b / lr:>6.1f} {T:>9.3g} {fit.tau:>8.1f} +- "
              f"{fit.tau_stderr:<5.1f} {ex:>11.1f} {fit.tau / ex:>6.3f} "
              f"{(fit.tau - ex) / fit.tau_stderr:>6.2f}")
    arr = sweep.arrhenius()
    # the same fit of the exact 1D times, weighted like the simulated ones
    ref = arrhenius_fit(sweep.x, sweep.theory_tau, tau_stderr=sweep.tau_stderr, x_is="batch_size/lr",
                        time_unit="paper")
    print(f"Arrhenius slope against B/lr: {arr.slope:.5f} +- {arr.slope_stderr:.5f} "
          f"(chi2 {arr.chi2:.2f} for {arr.dof} dof)")
    print(f"  the same fit of the exact times          {ref.slope:.5f}  (ratio {arr.slope / ref.slope:.3f})")
    print(f"  quasi-potential along the path           {th.slope_path:.5f}  "
          f"(ratio {arr.slope / th.slope_path:.3f})")
    print(f"  barrier / T_eff at the start {th.slope_start:.5f}  "
          f"(ratio {arr.slope / th.slope_start:.3f})")
    print(f"  barrier / T_eff at the saddle            {th.slope_saddle:.5f}  "
          f"(ratio {arr.slope / th.slope_saddle:.3f})")
    print(f"  barrier / (N_theta T_eff) at the start   {th.slope_start / th.n_params:.5f}  "
          f"(ratio {arr.slope * th.n_params / th.slope_start:.3f})")

    net = escape_problem("network", n_layers=3, c=0.8, gamma=0.32, width=2, direction="bwd",
                         convention="paper")
    net_th = net.sgd_theory()
    net_sweep = escape_sweep(net, points=[(0.08, 4)], n_traj=args.n_traj, rng=[3000], **SIM)
    fit_net = net_sweep.fits[0]
    print(f"width-2 network (N_theta = {net_th.n_params}) at lr 0.08, B 4: tau {fit_net.tau:.1f} +- "
          f"{fit_net.tau_stderr:.1f} against the chain's exact {th.tau(0.08, 4):.1f}; its T_eff "
          f"{net_th.temperature(0.08, 4):.3g} (chain {th.temperature(0.08, 4):.3g}), barrier / T_eff "
          f"{net_th.slope_start:.4f}")

    save_many([sweep, arr, net_sweep], out / "sgd_escape.h5", command="examples/sgd_escape.py")
    written = survival(sweep).save(out / "sgd_survival.png")
    written += arrhenius(sweep).save(out / "sgd_arrhenius.png")
    print("wrote", ", ".join(str(w) for w in written), "and", out / "sgd_escape.h5")


if __name__ == "__main__":
    main()
