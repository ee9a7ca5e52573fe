"""Cures of four trapped protocols against constant training (docs/diagnose.md, "Cure tables").

    python examples/cures.py                                        # 4 protocols, 2 seeds, 400 epochs
    python examples/cures.py --n-seeds 8 --epochs 4000 --plot cures.png --out cures.h5
    python examples/cures.py --protocol rank0 --n-seeds 8 --epochs 4000

Protocols (3-layer linear networks, width 10, paper convention; every cure starts from the same
trapped weights with the same random streams, and is filled up to ``--epochs`` at the target):

- rank1:  the paper's rank-1 trap. Teacher eta = (0.9, 0.8), N = 512, B = 64, lr 0.08; trap
          prepared at weight decays 0 then 0.392 (300 + 600 epochs); released at 0.258, where
          rank 2 is global (the weak feature's coexistence point is 0.304 on this draw).
          Escape: feature 1 learned.
- rank0:  the paper's rank-0 trap. Same data; trap prepared at 0 then 0.464 (everything lost);
          released at 0.32 (the paper's E2 value), where rank 1 is global (coexistence points
          0.354 and 0.304). Escape: feature 0.
- sparse: the E5 set-up. 25 of 5000 samples, full batch (one step per epoch), lr 0.1;
          trap: 180 full-batch epochs on the 25 samples' moments at 0.378 from fresh weights
          (a residual seed of feature 1 near 0.01 per layer, above its saddle 0.004: constant
          training escapes after a plateau of 10^3 epochs); released at 0.0025. Escape: feature 1.
- four:   a four-feature teacher eta = (0.9, 0.8, 0.7, 0.6), N = 512, B = 64, lr 0.08 (MSE
          averaged over 4 outputs); trap prepared at 0 then 0.138 (rank 3); released at 0.0875,
          0.85 of the weakest feature's coexistence point 0.103: rank 4 is global. Escape: feature 3.

Cures: the theory's weight-decay dip after a re-seed of 0.3 of the feature's saddle
(``plan_cure``; only where the dip fits in half the run), the same dip a third as long, the
dip and the re-seed alone, a re-seed of 1.3 saddles, a slow anneal from the trap's weight
decay down to the target over a quarter of the run (10 steps), and bursts of injected noise
(temperature), label noise, a 4x learning rate or small batches; fresh weights give the
test error of the state training from scratch reaches.
"""

import argparse

from phasetools import io
from phasetools import training as tr
from phasetools.diagnose import Stage, compare_cures, plan_cure, plot_cures
from phasetools.theory import Convention
from phasetools.training import Phase, Schedule

NET = {"n_layers": 3, "width": 10}


def rank_trap(eta, rank, target, mode, n_seeds, label):
    """A trap of the ``rank`` strongest features on N = 512 samples, released at ``target``."""
    t = tr.GaussianTeacher(eta)
    data = t.sample(512, rng=1)
    conv = Convention.paper(n_outputs=len(eta))          # MSE averaged over the outputs, as train's "paper"
    trap = tr.prepare_trap(data, trap_weight_decays=(0.0, tr.trap_weight_decay(data, rank, n_layers=3,
                                                                                convention=conv)),
                           trap_epochs=(300, 600), lr=0.08, batch_size=64, n_seeds=n_seeds, rng=2, **NET)
    return {"label": label, "data": data, "test": t.test_set(), "trap": trap, "weight_decay": target, "mode": mode,
            "lr": 0.08, "batch_size": 64, "burst": 20, "small_batch": 8}


def sparse(n_seeds):
    """E5: 25 of 5000 samples, full batch, released at 0.0025 from a small residual seed."""
    t = tr.GaussianTeacher((0.9, 0.8))
    data = t.subsample(5000, 25, rng=11)
    trap = tr.train(data.moments(), weight_decay=tr.trap_weight_decay(data, 1, n_layers=3), epochs=180, lr=0.1,
                    n_seeds=n_seeds, log_every=180, convention="paper", rng=2, **NET)
    return {"label": "sparse E5 (N = 25, full batch) at 0.0025", "data": data, "test": t.test_set(), "trap": trap,
            "weight_decay": 0.0025, "mode": 1, "lr": 0.1, "batch_size": None, "burst": 200, "small_batch": 5}


PROTOCOLS = {
    "rank1": lambda n: rank_trap((0.9, 0.8), 1, 0.258, 1, n, "rank-1 trap at 0.258"),
    "rank0": lambda n: rank_trap((0.9, 0.8), 0, 0.32, 0, n, "rank-0 trap at 0.32"),
    "sparse": sparse,
    "four": lambda n: rank_trap((0.9, 0.8, 0.7, 0.6), 3, 0.0875, 3, n, "four features, rank-3 trap at 0.0875"),
}


def cures(p, epochs):
    """The cure menu of protocol ``p`` and the theory's plan (re-seed 0.3 of the saddle)."""
    wd, lr, b = p["weight_decay"], p["lr"], p["burst"]
    kw = {"n_layers": 3, "weight_decay": wd, "mode": p["mode"], "lr": lr, "batch_size": p["batch_size"]}
    seed = 0.3 * plan_cure(p["data"], seed_size=0.1, **kw).b_saddle
    plan = plan_cure(p["data"], seed_size=seed, **kw)
    high = p["trap"].weight_decay
    menu = {"re-seed alone": ([], seed), "re-seed 1.3 b_saddle": ([], 1.3 * plan.b_saddle)}
    if 0 < plan.dip_epochs < epochs // 2:        # the theory's dip fits in the run
        dip = [Stage(plan.dip_epochs, plan.dip_weight_decay)]
        menu = {"dip alone": (dip, None), **menu, "re-seed + theory's dip": (dip, seed),
                "re-seed + dip 1/3 as long": ([Stage(max(1, plan.dip_epochs // 3), plan.dip_weight_decay)], seed)}
    menu.update({
        f"anneal {high:.3g}->{wd:g}, {epochs // 4} ep": (Schedule.anneal(high, wd, epochs // 4), None),
        f"temperature 0.002, {b} ep": ([Phase(b, temperature=0.002)], None),
        f"label noise 0.5, {b} ep": ([Phase(b, label_noise=0.5)], None),
        f"lr x4, {b} ep": ([Phase(b, lr=4 * lr)], None),
        f"batch {p['small_batch']}, {b} ep": ([Phase(b, batch_size=p["small_batch"])], None),
    })
    return menu, plan


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--protocol", default="all", choices=["all", *PROTOCOLS])
    ap.add_argument("--epochs", type=int, default=400)
    ap.add_argument("--n-seeds", type=int, default=2)
    ap.add_argument("--plot", default="cures.png", help="the figure (epochs to escape per cure)")
    ap.add_argument("--out", default=None, help="store the comparisons in this HDF5 file")
    args = ap.parse_args()
    names = list(PROTOCOLS) if args.protocol == "all" else [args.protocol]
    comps, titles = [], []
    for name in names:
        p = PROTOCOLS[name](args.n_seeds)
        menu, plan = cures(p, args.epochs)
        c = compare_cures(p["data"], p["trap"], menu, weight_decay=p["weight_decay"], epochs=args.epochs,
                          mode=p["mode"], lr=p["lr"], batch_size=p["batch_size"], test=p["test"], rng=7, **NET)
        print(f"\n## {name}: {p['label']}; {plan}\n")
        print(c.table())
        comps.append(c)
        titles.append(p["label"])
    plot_cures(comps, args.plot, titles=titles)
    if args.out:
        io.save_many(comps, args.out)


if __name__ == "__main__":
    main()
