"""Theory against Langevin dynamics and real SGD, side by side with verdicts (about a minute).

Runs a few experiments of the reproduction at small scale (the 3-weight chain at three
temperatures, SGD escapes rank 2 -> 1 at three batch sizes), prints the side-by-side table
and the verdicts on the Arrhenius slopes, and draws measured against predicted escape times
into examples/output/compare_escape_times.png.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402

from phasetools.reproduce import (collect, escape_scatter_figure, evaluate_claims, run_experiment,  # noqa: E402
                                  side_by_side)

out = Path(__file__).parent / "output"
grid = [dict(experiment="theory_critical"), dict(experiment="theory_landscape"),
        dict(experiment="theory_corrected")]
grid += [dict(experiment="langevin_chain", temperature=T, n_traj=300) for T in (0.0075, 0.0062, 0.0052)]
grid += [dict(experiment="e4_corrected", batch_size=B, n_seeds=8, epochs=600) for B in (8, 10, 12)]
root = np.random.SeedSequence(7)
results = [run_experiment(rng=s, **p) for p, s in zip(grid, root.spawn(len(grid)))]
R = collect(grid, results)

print(f"{'quantity':<58} {'theory':>10} {'Langevin':>18} {'SGD':>22}")
for q, unit, theory, lang, sgd, note in side_by_side(R):
    print(f"{q:<58} {theory:>10} {lang:>18} {sgd:>22}")
for cv in evaluate_claims(R):
    if cv.claim.id in ("langevin_arrhenius", "sgd_temperature"):
        for v in cv.verdicts:
            print(f"\n{cv.claim.statement}\n  -> {v.outcome}: {v.quantity}; {v.detail}\n     rule: {v.rule}")
path = escape_scatter_figure(R).save(out / "compare_escape_times.png")
print("\nwrote", path[0])
