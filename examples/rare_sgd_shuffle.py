"""AMS over reshuffled SGD against brute force: the width-1 chain of examples/rare_sgd.py with
``sampling="shuffle"`` (docs/rare.md, "AMS over real SGD training", reshuffled epochs).

The paper's chain (eta 0.8, weight decay 0.32, paper convention, 512 samples, B = 4) from the
balanced learned state, backward to the top singular value lam_saddle / 2 = 0.0463, at lr 0.11
(reshuffled brute force: tau = 210 +- 12 epochs, every step checked; with replacement 548 at lr 0.1).

    python examples/rare_sgd_shuffle.py brute      # brute force by the trainer, reshuffled epochs (~1.5 min)
    python examples/rare_sgd_shuffle.py reduced    # brute force by training.reduced_shuffle_run, epoch ends (~20 s)
    python examples/rare_sgd_shuffle.py ams        # AMS, sampling="shuffle", "sharpness" and "sv1", seeds 1-3 (~25 min)
    python examples/rare_sgd_shuffle.py fresh      # the same with the earlier approximation (a clone or a resumed
                                                   # replica starts a fresh permutation mid-epoch) (~10 min)

(wall times at a machine load of 9-14 on 2 cores). Extra arguments: ``brute LR N_RUNS``, ``ams|fresh LR COORDINATE SEED...``.
"""

import sys
import time

import numpy as np

from phasetools.langevin import escape_problem
from phasetools.rare import AMSOptions, TrainingEngine, ams_training_escape, excursions
from phasetools.stats import exponential_mle
from phasetools.training import GaussianTeacher, reduced_shuffle_run

TARGET = 0.0462726
LR = 0.11
X, Y = GaussianTeacher([0.8]).sample(512, 1)
B0 = escape_problem("chain", n_layers=3, c=0.8, gamma=0.32, direction="bwd", convention="paper").x0
INIT = [np.full((1, 1), v) for v in B0]
SGD = dict(n_layers=3, width=1, batch_size=4, weight_decay=0.32)
OPTIONS = AMSOptions(n_replicas=50, n_kill=5, n_runs=20, n_walkers=50, n_rounds=4)


def sv1(M):
    return np.linalg.svd(M, compute_uv=False)[:, 0]


def brute(lr=LR, n=200, epochs=3000, seed=5):
    """Brute force by the trainer: reshuffled epochs, the escape is the first SGD step with sv1 <= target
    (chunks of 16 whole epochs: every epoch is one permutation, as in ``train``)."""
    t = time.perf_counter()
    eng = TrainingEngine((X, Y), **SGD, lr=lr, sampling="shuffle", convention="paper", coordinate=sv1, sign=-1.0,
                         shapes=[(1, 1)] * 3)
    x = eng.state(np.repeat(np.asarray(B0)[None, :], n, axis=0))     # weights, epoch position, used samples
    ex = excursions(eng, x, eng.streams(seed, np.arange(n)), low=-np.inf, high=-TARGET,
                    max_steps=epochs * eng.steps_per_epoch, chunk=eng.max_chunk)
    fit = exponential_mle(ex.steps * eng.time_unit, ex.outcome != 2)
    print(f"lr {lr}: brute force (trainer, shuffle), {n} runs x {epochs} epochs: {np.sum(ex.outcome == 2)} escapes, "
          f"tau = {fit.tau:.4g} +- {fit.tau_stderr:.3g} epochs; cost {ex.cost:.3g} SGD steps, "
          f"{time.perf_counter() - t:.0f} s", flush=True)
    return fit


def reduced(lr=LR, n=2000, epochs=5000, seed=5):
    """Brute force by the reduced simulation of prediction (b) (exact for this width-1 network: the same
    epochs; the escape is checked at epoch ends, on the signed end-to-end value)."""
    t = time.perf_counter()
    run = reduced_shuffle_run((X, Y), np.reshape(B0, (3, 1, 1)), weight_decay=0.32, lr=lr, batch_size=4,
                              epochs=epochs, mode=0, target=TARGET, n_seeds=n, rng=seed, convention="paper")
    fit = exponential_mle(run.epochs.astype(float), ~run.escaped, time_unit="epochs")
    print(f"lr {lr}: brute force (reduced_shuffle_run, epoch ends), {n} runs x {epochs} epochs: "
          f"{int(run.escaped.sum())} escapes, tau = {fit.tau:.4g} +- {fit.tau_stderr:.3g} epochs, "
          f"{time.perf_counter() - t:.0f} s", flush=True)
    return fit


def _ams(lr, coordinate, seed, options=OPTIONS, fresh=False):
    """One AMS estimate; ``fresh``: ``exact_epochs=False`` (a clone or a resumed replica starts a fresh
    permutation mid-epoch, the earlier approximation)."""
    t = time.perf_counter()
    res = ams_training_escape((X, Y), INIT, **SGD, lr=lr, target=TARGET, direction="down", coordinate=coordinate,
                              sampling="shuffle", exact_epochs=not fresh, rng=seed, options=options)
    kind = "exact" if res.noise["exact_epochs"] else "fresh permutations"
    print(f"lr {lr}, shuffle ({kind}), {coordinate}, seed {seed}: tau = {res.tau:.4g} +- {res.tau_stderr:.3g} epochs "
          f"[{res.tau_lower:.4g}, {res.tau_upper:.4g}], p = {res.p:.3g} +- {res.p_stderr:.2g}, "
          f"t_loop = {res.t_loop:.3g}; cost {res.cost['total']:.3g} SGD steps, {time.perf_counter() - t:.0f} s",
          flush=True)
    return res


def ams(lr=LR, coordinates=("sharpness", "sv1"), seeds=(1, 2, 3), fresh=False):
    """AMS with sampling="shuffle" for each coordinate and seed (``fresh``: the earlier approximation)."""
    return [_ams(lr, c, s, fresh=fresh) for c in coordinates for s in seeds]


if __name__ == "__main__":
    cmd, args = (sys.argv[1] if len(sys.argv) > 1 else "reduced"), sys.argv[2:]
    if cmd == "brute":
        brute(*(float(args[0]), int(args[1])) if args else ())
    elif cmd == "reduced":
        reduced(*(float(args[0]),) if args else ())
    elif cmd in ("ams", "fresh"):
        f = cmd == "fresh"
        ams(float(args[0]), (args[1],), tuple(int(s) for s in args[2:]), fresh=f) if args else ams(fresh=f)
    else:
        raise SystemExit(f"unknown command {cmd!r}: brute, reduced, ams or fresh")
