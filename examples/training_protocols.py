"""The paper's training protocols at reduced scale (about a minute on 2 cores).

E1: increasing and decreasing weight-decay sweeps on population data (hysteresis);
E2: a rank-1 trap released at weight decay 0.32 (float64: the residual seed is at round-off, no escape);
E4: the noise-driven escape that does happen -- rank 2 -> rank 1 near the weak spinodal, over
    batch_size/lr;
E5: 25 of 5000 samples: the escape delay is set by the residual seed (a deterministic plateau).
Figures go to examples/output/.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402

import phasetools.plot as pp  # noqa: E402
import phasetools.theory as th  # noqa: E402
from phasetools.training import (GaussianTeacher, arrhenius_sweep, mse_levels, prepare_trap,  # noqa: E402
                                 sparse_grokking, trap_and_release, trap_weight_decay, weight_decay_sweep)

out = Path(__file__).parent / "output"
teacher = GaussianTeacher([0.9, 0.8])
# The paper's network and SGD: 3 weight matrices of width 10, lr 0.08, batch size 64 (weight decay = the paper's beta)
NET = dict(n_layers=3, width=10, lr=0.08)

# E1 on population moments: drops at the spinodals going up, none coming down
wds = np.round(np.arange(0.0, 0.4601, 0.01), 2)
up = weight_decay_sweep(teacher.moments, wds, **NET, test=teacher, rng=1)
down = weight_decay_sweep(teacher.moments, wds[::-1], **NET, test=teacher, rng=2)
sp = th.critical_points(3, [0.9, 0.8], convention="paper").gamma_sp
print("E1 drops (first weight decay without the mode):", up.drop_positions()[0], "spinodals:", np.sort(sp))
pp.weight_decay_sweep([up, down], spinodals=sp).save(out / "e1_sweeps.png")

# E2 on N = 512 samples: a rank-1 trap from the draw's own spinodals, released at 0.32
data, test = teacher.sample(512, rng=1), teacher.test_set()
tb = trap_weight_decay(data, 1, n_layers=3)
e2 = trap_and_release(data, target_weight_decay=0.32, trap_weight_decays=(0.0, tb), trap_epochs=(300, 600),
                      epochs=2000, **NET, batch_size=64, n_seeds=8, test=test, rng=3)
print(e2, "| residual seed", np.median(e2.seed_size))
pp.trapping(e2).save(out / "e2_trapping.png")

# E4 (corrected setting): rank 2 -> rank 1 escape 0.012 below this draw's weak spinodal
wd = 0.35
trap = prepare_trap(data, trap_weight_decays=(0.0, wd), trap_epochs=(300, 300), **NET, batch_size=64, n_seeds=8,
                    rng=4)
lev = mse_levels(data, wd, n_layers=3, test=test)
e4 = arrhenius_sweep(data, trap, lr=0.1, batch_size=[8, 10, 12, 14], target_weight_decay=wd, epochs=600,
                     levels=(lev[2], lev[1]), test=test, rng=5)
print(e4)
pp.escape_sweep(e4).save(out / "e4_escape_sweep.png")

# E5: 25 samples, weight decay 0.0025: larger residual seed -> earlier escape; none below ~1e-3
e5 = sparse_grokking(teacher, pool_size=5000, n_train=25, test_size=10_000, weight_decay=0.0025, lr=0.1,
                     batch_size=(64, 5), trap_epochs=(110, 130, 150, 175, 300), n_seeds=2, epochs=4000, n_layers=3,
                     width=10, log_every=5, rng=6)
print(e5)
pp.grokking(e5).save(out / "e5_grokking.png")
print("figures in", out)
