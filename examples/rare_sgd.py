"""AMS over real SGD at the standard backward level: the route, the committor, and a score that follows it.

The paper's chain (eta 0.8, weight decay 0.32, paper convention) trained by SGD with
replacement (512 samples, B = 4) from the balanced learned state, backward to the top singular
value lam_saddle / 2 = 0.0463 (docs/rare.md, "AMS over real SGD training").

    python examples/rare_sgd.py route          # brute force, lr 0.08: where each escape step starts (~4 min)
    python examples/rare_sgd.py committor      # P(B before the well) from balanced states, lr 0.1 (~2 min)
    python examples/rare_sgd.py ams            # lr 0.1: AMS with sv1 and with coordinate="sharpness" (~12 min)
    python examples/rare_sgd.py brute          # lr 0.1: brute force by the same trainer (~3 min)
    python examples/rare_sgd.py replay         # brute force at lr 0.1, 0.08, 0.07 by a numba replay of the step (~3 min)
    python examples/rare_sgd.py beyond         # lr 0.08 and 0.07: AMS with coordinate="sharpness" (~10 min)

(times on an idle 2-core machine)
"""

import sys
import time

import numpy as np

from phasetools.langevin import escape_problem
from phasetools.rare import AMSOptions, TrainingEngine, ams_training_escape, excursions
from phasetools.stats import exponential_mle
from phasetools.training import GaussianTeacher

TARGET = 0.0462726
X, Y = GaussianTeacher([0.8]).sample(512, 1)
B0 = escape_problem("chain", n_layers=3, c=0.8, gamma=0.32, direction="bwd", convention="paper").x0
INIT = [np.full((1, 1), v) for v in B0]
SGD = dict(n_layers=3, width=1, batch_size=4, weight_decay=0.32)
OPTIONS = AMSOptions(n_replicas=100, n_kill=10, n_runs=40, n_walkers=50, n_rounds=4)


def sv1(M):
    return np.linalg.svd(M, compute_uv=False)[:, 0]


def engine(lr, sign=1.0):
    return TrainingEngine((X, Y), **SGD, lr=lr, sampling="replacement", convention="paper", coordinate=sv1,
                          sign=sign, shapes=[(1, 1)] * 3)


def route(n=100, epochs=1562, seed=3, lr=0.08):
    """Brute force: each escape's sv1 before and after the step that crosses the target."""
    eng = engine(lr)
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


def committor(lr=0.1, n=2000, band=(0.45, 0.6), seed=4):
    """P(sv1 <= target before sv1 returns to the well's band) from balanced states, with the mode's
    score (coordinate="sharpness") at each: the committor rises on both sides of the well."""
    from phasetools.rare import SharpnessScore

    score = SharpnessScore(TARGET, INIT, np.atleast_2d(np.mean(X * X)))
    print(f"lr {lr}: committor from balanced states ({n} trajectories each; band {band})")
    for k, s in enumerate([0.06, 0.08, 0.1, 0.2, 0.3, 0.8, 1.0, 1.2, 1.3, 1.5, 1.7, 2.0, 2.5]):
        x = np.full((n, 3), np.cbrt(s))
        if s < band[0]:      # below the band: down to B (high) or back up to the band (low), in -sv1
            eng = engine(lr, -1.0)
            ex = excursions(eng, x, eng.streams(seed, np.arange(n) + k * n), low=-band[0], high=-TARGET,
                            max_steps=10**6)
            q = np.mean(ex.outcome == 2)
        else:                # above: the first step to sv1 <= band[1]; in B when it landed below the target
            eng = engine(lr, 1.0)
            ex = excursions(eng, x, eng.streams(seed, np.arange(n) + k * n), low=band[1], high=np.inf,
                            max_steps=10**6)
            q = np.mean(eng.coordinate(ex.x) <= TARGET)
        xi = score([np.full((1, 1, 1), np.cbrt(s))] * 3)[0]
        print(f"  sv1 {s:4.2f}  q = {q:.4f}  score {xi:.3f}", flush=True)


def _ams(lr, coordinate, seed, options=OPTIONS):
    t = time.perf_counter()
    res = ams_training_escape((X, Y), INIT, **SGD, lr=lr, target=TARGET, direction="down", coordinate=coordinate,
                              rng=seed, options=options)
    print(f"lr {lr}, {coordinate}, seed {seed}: tau = {res.tau:.4g} epochs [{res.tau_lower:.4g}, {res.tau_upper:.4g}], "
          f"p = {res.p:.3g} +- {res.p_stderr:.2g}, t_loop = {res.t_loop:.3g}; cost {res.cost['total']:.3g} SGD steps, "
          f"{time.perf_counter() - t:.0f} s", flush=True)
    return res


def ams():
    """lr 0.1 (tau about 550 epochs): sv1 misses the route, the sharpness score finds it."""
    _ams(0.1, "sv1", 1, AMSOptions(n_replicas=50, n_kill=5, n_runs=20, n_walkers=50, n_rounds=4))
    for seed in (1, 2, 3):
        _ams(0.1, "sharpness", seed)


def brute(lr=0.1, n=200, epochs=2000, seed=5):
    """Brute force by the same trainer (exponential MLE with censoring at ``epochs``)."""
    t = time.perf_counter()
    eng = engine(lr, -1.0)
    x = np.repeat(np.asarray(B0)[None, :], n, axis=0)
    ex = excursions(eng, x, eng.streams(seed, np.arange(n)), low=-np.inf, high=-TARGET,
                    max_steps=epochs * eng.steps_per_epoch, chunk=2048)
    fit = exponential_mle(ex.steps * eng.time_unit, ex.outcome != 2)
    print(f"lr {lr}: brute force, {n} runs x {epochs} epochs: {np.sum(ex.outcome == 2)} escapes, tau = {fit.tau:.4g} "
          f"+- {fit.tau_stderr:.3g} epochs; cost {ex.cost:.3g} SGD steps, {time.perf_counter() - t:.0f} s")


def beyond():
    """The standard point lr 0.08 (brute force about 1.5e4 epochs) and lr 0.07 (2.2e5 epochs)."""
    _ams(0.08, "sharpness", 1)
    _ams(0.07, "sharpness", 1)


def _replay_kernel():
    import numba

    @numba.njit
    def run(x, y, w0, lr, bs, wd, target, n_runs, max_steps, seed):
        esc = np.full(n_runs, -1, np.int64)
        for r in range(n_runs):
            np.random.seed(seed * 100003 + r)
            w = w0.copy()
            for s in range(max_steps):
                a = 0.0
                for _ in range(bs):
                    i = np.random.randint(x.size)
                    a += -2.0 * x[i] * (y[i] - w[0] * w[1] * w[2] * x[i])
                a /= bs
                g = np.array([w[1] * w[2], w[0] * w[2], w[0] * w[1]])
                w = w - lr * (a * g + wd * w)
                if not abs(w[0] * w[1] * w[2]) > target:
                    esc[r] = s + 1
                    break
        return esc
    return run


def replay():
    """Brute force by a numba copy of the trainer's step for the width-1 chain (paper convention,
    batches with replacement; checked against ``train``'s ``step_params``), cheap enough for
    ``tau`` of 1e5 epochs."""
    from phasetools.training import train

    run = train((X, Y), **SGD, lr=0.08, epochs=2, sampling="replacement", convention="paper", init=INIT,
                record_steps=True, rng=5)
    w, x, y = np.array(B0, float), X[:, 0], Y[:, 0]
    err = 0.0
    for s, idx in enumerate(np.asarray(run.batch_indices)[0]):
        a = np.mean(-2 * x[idx] * (y[idx] - w.prod() * x[idx]))
        w = w - 0.08 * (a * w.prod() / w + 0.32 * w)
        err = max(err, np.abs(w - np.asarray(run.step_params)[0, s + 1]).max())
    print(f"replay of 256 steps of train: max |difference| {err:.1e}")
    kernel = _replay_kernel()
    for lr, n, epochs in [(0.1, 1000, 4000), (0.08, 300, 10_000), (0.07, 50, 50_000)]:
        t = time.perf_counter()
        esc = kernel(x, y, np.array(B0, float), lr, 4, 0.32, TARGET, n, epochs * 128, 7)
        fit = exponential_mle(np.where(esc > 0, esc, epochs * 128) / 128, esc < 0)
        print(f"lr {lr}: {n} runs x {epochs} epochs, {np.sum(esc > 0)} escapes, tau = {fit.tau:.4g} +- "
              f"{fit.tau_stderr:.3g} epochs ({time.perf_counter() - t:.0f} s)", flush=True)


if __name__ == "__main__":
    {"route": route, "committor": committor, "ams": ams, "brute": brute, "replay": replay,
     "beyond": beyond}[sys.argv[1] if len(sys.argv) > 1 else "route"]()
