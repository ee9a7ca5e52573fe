"""A Langevin escape sweep through phasetools.sweep: temperatures x trajectory chunks, resumable.

    python examples/sweep_demo.py [--out examples/output] [--workers 2] [--dask-workers N | --scheduler ADDR]

Each task simulates one chunk of trajectories of the paper's three-weight chain
(eta = 0.8, weight decay beta = 0.32, paper units) at one temperature; its seed comes from
the sweep seed and the task index, so any executor gives the same file. Kill it at any
moment and run the same command again: completed tasks are skipped. The chunks of each
temperature are merged (``+``), fitted with the censoring-aware exponential MLE and drawn
against the Eyring-Kramers prediction in an Arrhenius plot. Writes sweep_demo.h5 and
sweep_demo.png; about half a minute on 2 cores (the first run also compiles the kernel).
"""

import argparse
from functools import reduce
from operator import add
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from phasetools.langevin import escape_problem, simulate  # noqa: E402
from phasetools.stats import exponential_mle  # noqa: E402
from phasetools.sweep import product, run_sweep  # noqa: E402

PROBLEM = dict(model="chain", n_layers=3, c=0.8, gamma=0.32, direction="fwd", convention="paper")


def escape_chunk(temperature, chunk, n_traj, *, rng):
    """One task: ``n_traj`` trajectories at ``temperature``; ``chunk`` only makes tasks distinct."""
    problem = escape_problem(**PROBLEM)
    return simulate(problem.potential, problem.x0, temperature=temperature, dt=0.01, n_traj=n_traj,
                    max_steps=400_000, stop=problem.stop, rng=rng, n_threads=1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="examples/output")
    parser.add_argument("--workers", type=int, default=2, help="local worker processes")
    parser.add_argument("--dask-workers", type=int, default=None, help="start a Dask LocalCluster instead")
    parser.add_argument("--scheduler", default=None,
                        help="connect to a running Dask scheduler tcp://HOST:PORT")
    parser.add_argument("--overwrite", action="store_true", help="start over instead of resuming")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    temperatures = [0.012, 0.010, 0.0085]
    grid = product(temperature=temperatures, chunk=[0, 1], n_traj=[150])
    executor = {"n_workers": args.workers} if not (args.dask_workers or args.scheduler) else \
        {"dask_workers": args.dask_workers, "scheduler": args.scheduler}
    outcome = run_sweep(escape_chunk, grid, path=out / "sweep_demo.h5", seed=2024, resume=not args.overwrite,
                        overwrite=args.overwrite, **executor)
    print(outcome)
    runs = outcome.check().results()

    problem = escape_problem(**PROBLEM)
    taus, errs, theory = [], [], []
    print(f"{'T':>8} {'n_traj':>7} {'tau (sim)':>16} {'tau (theory)':>13}")
    for T in temperatures:
        merged = reduce(add, [r for p, r in zip(grid, runs) if p["temperature"] == T])
        fit = exponential_mle(merged.times, merged.censored)
        taus.append(fit.tau)
        errs.append(fit.tau_stderr)
        theory.append(problem.theory_tau(T))
        print(f"{T:>8.4g} {merged.n_traj:>7d} {fit.tau:>9.1f} +- {fit.tau_stderr:<5.1f} {theory[-1]:>13.1f}")

    inv_t = 1 / np.array(temperatures)
    fig, ax = plt.subplots(figsize=(5, 3.6), constrained_layout=True)
    ax.errorbar(inv_t, taus, yerr=errs, fmt="o", label="Langevin sweep (MLE ± 1 s.e.)")
    grid_t = np.linspace(inv_t.min(), inv_t.max(), 50)
    ax.plot(grid_t, [problem.theory_tau(1 / x) for x in grid_t], "-", label="Eyring-Kramers")
    ax.set_yscale("log")
    ax.set_xlabel("1 / temperature (paper units)")
    ax.set_ylabel("mean escape time (paper time)")
    ax.legend(frameon=False)
    fig.savefig(out / "sweep_demo.png", dpi=120)
    print(f"wrote {out / 'sweep_demo.h5'} and {out / 'sweep_demo.png'}")


if __name__ == "__main__":
    main()
