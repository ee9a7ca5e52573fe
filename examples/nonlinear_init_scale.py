"""Omnigrok's control on modular addition: the delay between fitting and generalising against the initial scale.

    python examples/nonlinear_init_scale.py [--out examples/output] [--scales 0.5,1,2,4] [--epochs 400]

p = 23, width 128 quadratic network (MSE, no biases), half of the pairs train, full-batch
AdamW (lr 0.01, weight decay 5), 3 seeds; every scale starts from the same initial
directions (``init_scale_sweep``). Writes nonlinear_init_scale.h5 and .png (train and test
accuracy of every seed at every scale). A few minutes on two quiet cores.
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from phasetools import nonlinear as nl  # noqa: E402
from phasetools.io import save  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="examples/output")
    parser.add_argument("--scales", default="0.5,1,2,4")
    parser.add_argument("--epochs", type=int, default=400)
    parser.add_argument("--n-seeds", type=int, default=3)
    parser.add_argument("--n-threads", type=int, default=None)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    scales = [float(s) for s in args.scales.split(",")]
    res = nl.init_scale_sweep(nl.modular_addition(23, 0.5), nl.quadratic_mlp(23, 128), nl.adamw(1e-2, 5.0), scales,
                              epochs=args.epochs, n_seeds=args.n_seeds, log_every=10, dtype="float32", rng=0,
                              n_threads=args.n_threads)
    print(res)
    print("delay (epochs):", res.delay.tolist())
    save(res, out / "nonlinear_init_scale.h5")
    fig, axes = plt.subplots(1, len(scales), figsize=(3.2 * len(scales), 3.2), sharey=True)
    for k, ax in enumerate(axes):
        for s in range(res.n_seeds):
            ax.plot(res.log_epochs, res.train_acc[k, s], color="C0", lw=1, label="train" if s == 0 else None)
            ax.plot(res.log_epochs, res.test_acc[k, s], color="C1", lw=1, label="test" if s == 0 else None)
        ax.set(title=f"init_scale {scales[k]:g}", xlabel="epoch")
    axes[0].set_ylabel("accuracy")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "nonlinear_init_scale.png", dpi=110)
    print(f"wrote {out / 'nonlinear_init_scale.h5'} and {out / 'nonlinear_init_scale.png'}")


if __name__ == "__main__":
    main()
