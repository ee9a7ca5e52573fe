"""Diagnose a rank-1 plateau and cure it (docs/diagnose.md). Runs in under a minute by default.

    python examples/diagnose_plateau.py                          # 2000 epochs, 4 seeds
    python examples/diagnose_plateau.py --epochs 20000 --n-seeds 8 --out cures.h5

1. A rank-1 trap of a 3-layer linear network (2 -> 10 -> 10 -> 2, N = 512, B = 64, lr 0.08)
   trained on at weight decay 0.258, where the rank-2 state is global (paper convention).
2. The diagnosis: plateaus of the test loss, the state against the theory, the summary line
   and a figure (diagnose_plateau.png).
3. Cures from the same trapped weights and seeds against constant training: the theory's
   weight-decay dip (after a re-seed below the saddle), a dip a third as long, the dip or the
   re-seed alone, a re-seed above the saddle, a noise burst; with fresh training as the
   reference of the global state's test error.
"""

import argparse

from phasetools import io
from phasetools import training as tr
from phasetools.diagnose import (
    Stage,
    compare_cures,
    diagnose,
    plan_cure,
    plot_diagnosis,
)

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("--epochs", type=int, default=2000)
p.add_argument("--n-seeds", type=int, default=4)
p.add_argument("--out", default=None, help="store the diagnosis and the comparison in this HDF5 file")
args = p.parse_args()

WD, LR, B = 0.258, 0.08, 64
teacher = tr.GaussianTeacher((0.9, 0.8))
data, test = teacher.sample(512, rng=1), teacher.test_set()
trap = tr.prepare_trap(data, trap_weight_decays=(0.0, tr.trap_weight_decay(data, 1, n_layers=3)),
                       trap_epochs=(300, 600), n_layers=3, width=10, lr=LR, batch_size=B, n_seeds=args.n_seeds, rng=2)
run = tr.train(data, n_layers=3, width=10, epochs=1000, lr=LR, batch_size=B, weight_decay=WD, init=trap,
               convention="paper", test=test, log_every=5, rng=3)

diag = diagnose(run, data=data)
print(diag.summary)
plot_diagnosis(diag, "diagnose_plateau.png", run=run)

plan = plan_cure(data, n_layers=3, weight_decay=WD, mode=1, seed_size=0.1, lr=LR, batch_size=B)
print(plan)
dip = [Stage(plan.dip_epochs, plan.dip_weight_decay)]
cures = {"dip alone": (dip, None),
         "re-seed 0.1 alone": ([], 0.1),
         "re-seed 0.1 + theory's dip": (dip, 0.1),
         "re-seed 0.1 + dip 1/3 as long": ([Stage(max(1, plan.dip_epochs // 3), plan.dip_weight_decay)], 0.1),
         "re-seed 0.7 b_saddle": ([], 0.7 * plan.b_saddle),
         "re-seed 1.3 b_saddle": ([], 1.3 * plan.b_saddle),
         "noise burst T=0.002, 20 epochs": ([Stage(20, WD, 0.002)], None)}
comparison = compare_cures(data, run, cures, weight_decay=WD, epochs=args.epochs, n_layers=3, width=10, lr=LR,
                           batch_size=B, test=test, rng=7)
print(comparison.table())
if args.out:
    io.save_many([diag, plan, comparison], args.out)
