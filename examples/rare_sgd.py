"""Why AMS over real SGD fails at the standard backward level, and a coordinate that sees the route.

The paper's chain (eta 0.8, weight decay 0.32, paper convention) trained by SGD with
replacement (512 samples, lr 0.08, B = 4) from the balanced learned state, backward to the
top singular value lam_saddle / 2 = 0.0463 (docs/rare.md, "AMS over real SGD training").

    python examples/rare_sgd.py route     # brute force: where each escape step starts (~4 min)
    python examples/rare_sgd.py ams       # AMS with sv1 and with the folded coordinate (~10 min)
"""

import sys

import numpy as np

from phasetools.langevin import escape_problem
from phasetools.rare import AMSOptions, TrainingEngine, ams_training_escape
from phasetools.training import GaussianTeacher

TARGET = 0.0462726
S_WELL = 0.534          # median of sv1 in the SGD well (the route script prints it)
X, Y = GaussianTeacher([0.8]).sample(512, 1)
B0 = escape_problem("chain", n_layers=3, c=0.8, gamma=0.32, direction="bwd", convention="paper").x0
SGD = dict(n_layers=3, width=1, lr=0.08, batch_size=4, weight_decay=0.32)


def sv1(M):
    return np.linalg.svd(M, compute_uv=False)[:, 0]


def folded(M):
    """sv1 below the well's median; above it, a strictly decreasing image that never reaches the
    target, so that excursions *up* count as progress (and never tie)."""
    s = sv1(M)
    return np.where(s <= S_WELL, s, TARGET + (S_WELL - TARGET) * S_WELL / s)


def route(n=100, epochs=1562, seed=3):
    """Brute force: each escape's sv1 before and after the step that crosses the target."""
    eng = TrainingEngine((X, Y), **SGD, sampling="replacement", convention="paper", coordinate=sv1, sign=1.0,
                         shapes=[(1, 1)] * 3)
    x = np.repeat(np.asarray(B0)[None, :], n, axis=0)
    streams = eng.streams(seed, np.arange(n))
    prev, alive = eng.coordinate(x), np.ones(n, bool)
    pre, post, when, well = [], [], [], []
    for c in range(-(-epochs * eng.steps_per_epoch // eng.max_chunk)):
        idx = np.nonzero(alive)[0]
        if idx.size == 0:
            break
        s = streams[idx]
        xe, _, _, xi, _ = eng.advance(x[idx], s, eng.max_chunk, -np.inf)
        streams[idx] = s
        full = np.concatenate([prev[idx][:, None], xi], axis=1)
        if c > 3:
            well.append(xi[:, ::64].ravel())
        for j, i in enumerate(idx):
            hit = np.nonzero(full[j, 1:] <= TARGET)[0]
            if hit.size:
                pre.append(full[j, hit[0]])
                post.append(full[j, hit[0] + 1])
                when.append(c * eng.max_chunk + hit[0] + 1)
                alive[i] = False
        x[idx], prev[idx] = xe, xi[:, -1]
    steps = np.sum(when) + alive.sum() * epochs * eng.steps_per_epoch
    print(f"{n} runs x {epochs} epochs: {len(pre)} escapes, tau = {steps / max(len(pre), 1) / eng.steps_per_epoch:.4g} "
          f"epochs (exponential MLE)")
    print("sv1 in the well, quantiles 1 %, 10 %, 50 %:", np.round(np.quantile(np.concatenate(well), [.01, .1, .5]), 3))
    print("sv1 before each escape step:", np.round(np.sort(pre), 3))
    print("sv1 after it:               ", np.round(np.sort(post), 4))


def ams():
    """AMS with sv1 (misses the route) and with the folded coordinate (finds it in some runs)."""
    init = [np.full((1, 1), v) for v in B0]
    for name, coord, opts in [("sv1", "sv1", AMSOptions(n_replicas=50, n_kill=5, n_runs=10, n_walkers=50, n_rounds=4)),
                              ("folded", folded, AMSOptions(n_replicas=100, n_kill=5, n_runs=20, n_walkers=50,
                                                            n_rounds=4))]:
        res = ams_training_escape((X, Y), init, **SGD, target=TARGET, direction="down", coordinate=coord, rng=2,
                                  options=opts)
        print(f"{name}: tau = {res.tau:.4g} epochs [{res.tau_lower:.3g}, {res.tau_upper:.3g}], p = {res.p:.3g}, "
              f"t_loop = {res.t_loop:.3g} epochs; runs' p: {np.array2string(res.p_runs, precision=2)}", flush=True)


if __name__ == "__main__":
    {"route": route, "ams": ams}[sys.argv[1] if len(sys.argv) > 1 else "route"]()
