"""Release a memorising network under injected noise and under label noise; time the escapes.

    python examples/nonlinear_noise_escape.py [--out examples/output] [--release-epochs 2500]
    python examples/nonlinear_noise_escape.py --plot-only T.h5 L.h5     # redraw stored results

p = 23, width 64 quadratic network, half of the pairs train. Each of ``--n-seeds`` seeds is
trained to memorise (AdamW lr 0.01, no weight decay, 150 full-batch epochs: train accuracy
1, test accuracy far below 0.5), then released by full-batch gradient descent (lr 4) at
weight decay 3e-4 with injected Langevin noise of temperature T, and separately with
Gaussian label noise of standard deviation s on the one-hot targets. Escape = test accuracy
>= 0.5. The figure shows every seed's escape time against the noise level (open markers:
censored at the budget) beside the noise-free full-batch release, and the mean escape time
with the three law fits. About 10 minutes on two quiet cores with the defaults.
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from phasetools import nonlinear as nl  # noqa: E402
from phasetools.io import list_results, load, save  # noqa: E402


def measure(kind, levels, args):
    task, model = nl.modular_addition(23, 0.5), nl.quadratic_mlp(23, 64)
    noise = {"temperature": levels} if kind == "T" else {"label_noise": levels}
    return nl.escape_sweep(task, model, prepare=nl.adamw(1e-2, 0.0), prepare_epochs=150,
                           release_weight_decay=args.release_weight_decay, batch_size=1, lr=4.0, sampling="full",
                           release_epochs=args.release_epochs, n_seeds=args.n_seeds, threshold=0.5,
                           log_every=max(1, args.release_epochs // 100), rng=0, n_threads=args.n_threads, **noise)


def panel(ax, esc, name, levels):
    lr_steps = esc.lr[:, None] * esc.steps_per_epoch[:, None] * esc.escape_epochs
    for s in range(esc.n_seeds):
        x = levels + 1e-12
        done = ~esc.censored[:, s]
        ax.plot(x[done], lr_steps[done, s], "o", color=f"C{s % 10}", ms=4)
        ax.plot(x[~done], lr_steps[~done, s], "o", mfc="none", color=f"C{s % 10}", ms=4)
    ref = esc.reference_escape_time
    ax.axhline(np.median(ref), color="k", ls=":", lw=1, label="noise-free release (median)")
    positive = levels[levels > 0]
    ax.set_xscale("symlog", linthresh=float(positive.min()) if positive.size else 1.0)
    verdict = [v for v in nl.verdicts(None, esc) if v.quantity.startswith("Arrhenius")][0]
    ax.set(xlabel=f"{name} (0: no noise)", ylabel="escape time (lr * steps)",
           title=f"{name}: Arrhenius {verdict.outcome}", xticks=levels)
    ax.set_xticklabels([f"{v:g}" for v in levels], fontsize=8)
    ax.legend(fontsize=8, title="open: censored at the budget", title_fontsize=8)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="examples/output")
    parser.add_argument("--release-epochs", type=int, default=2500)
    parser.add_argument("--release-weight-decay", type=float, default=3e-4)
    parser.add_argument("--n-seeds", type=int, default=6)
    parser.add_argument("--n-threads", type=int, default=None)
    parser.add_argument("--plot-only", nargs=2, metavar=("T.h5", "L.h5"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.plot_only:
        results = [load(path, [e.name for e in list_results(path) if e.kind == "NonlinearEscape"][-1])
                   for path in args.plot_only]
    else:
        results = [measure("T", [0.0, 1e-6, 2e-6, 4e-6, 7e-6], args), measure("L", [0.0, 0.1, 0.3, 1.0, 3.0], args)]
        for esc, name in zip(results, ("T", "L")):
            save(esc, out / f"nonlinear_noise_escape_{name}.h5")
    for esc in results:
        print(esc)
        for v in nl.verdicts(None, esc):
            print(f"  {v.quantity}: {v.outcome} | {v.measured}")
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    panel(axes[0], results[0], "temperature", results[0].temperature)
    panel(axes[1], results[1], "label noise (sd)", results[1].label_noise)
    fig.tight_layout()
    fig.savefig(out / "nonlinear_noise_escape.png", dpi=110)
    print(f"wrote {out / 'nonlinear_noise_escape.png'}")


if __name__ == "__main__":
    main()
