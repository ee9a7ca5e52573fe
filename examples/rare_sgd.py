"""AMS over real SGD at the standard backward level: the route, the committor, and a score that follows it.

The paper's chain (eta 0.8, weight decay 0.32, paper convention) trained by SGD with
replacement (512 samples, B = 4) from the balanced learned state, backward to the top singular
value lam_saddle / 2 = 0.0463 (docs/rare.md, "AMS over real SGD training").

    python examples/rare_sgd.py route          # brute force, lr 0.08: where each escape step starts (~4 min)
    python examples/rare_sgd.py committor      # P(B before the well) from balanced states, lr 0.1 (~2 min)
    python examples/rare_sgd.py ams            # lr 0.1: AMS with sv1 and with coordinate="sharpness" (~12 min) -> rare_sgd_ams.h5
    python examples/rare_sgd.py brute          # lr 0.1: brute force by the same trainer (~3 min) -> rare_sgd_brute.h5
    python examples/rare_sgd.py replay [lr ...]  # brute force at lr 0.1, 0.08, 0.07 by a numba replay of the step
                                               # (~3 min; -> rare_sgd_brute.h5)
    python examples/rare_sgd.py beyond         # lr 0.08 and 0.07: AMS with coordinate="sharpness" (~10 min) -> rare_sgd_ams.h5
    python examples/rare_sgd.py kick [lr ...]  # kick_escape sweep lr 0.1 .. 0.05 -> kick_sweep.h5 (~1-5 min per lr)
    python examples/rare_sgd.py kick-check     # the well's top at lr * lambda 0.5, and the tilted continuation
    python examples/rare_sgd.py kick-split [lr ...]  # continuation="kicks", well top at lr * lambda 0.5, seed 1:
                                               # lr 0.08 .. 0.045 -> kick_sweep.h5 (~3-15 min per lr)
    python examples/rare_sgd.py kick-split-check [lr ...]  # seed 2 (lr 0.06 .. 0.045) and the top at 0.4 (0.05,
                                               # 0.045; seed 1 and 2 at 0.05), or both at each lr given
    python examples/rare_sgd.py kick-figure    # ln tau vs B / lr: brute force, AMS, kick; Arrhenius fit -> kick_sweep.png
                                               # (from the stored kick_sweep.h5, rare_sgd_brute.h5, rare_sgd_ams.h5)

Every result is stored in the working directory; a re-run of an AMS point already stored is not stored again.

(times on an idle 2-core machine)
"""

import os
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
#: the stored results (in the working directory, next to kick_sweep.h5): every AMS run of ``_ams``
#: (``phasetools.io``), and the brute-force batches of ``replay`` and ``brute`` (plain HDF5)
AMS_FILE = "rare_sgd_ams.h5"
BRUTE_FILE = "rare_sgd_brute.h5"
#: lr -> (runs, epochs) of the numba replay's brute force (seed 7)
REPLAY = {0.1: (1000, 4000), 0.08: (300, 10_000), 0.07: (50, 50_000)}


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
    _store_ams(res, f"ams_lr{lr}_{coordinate}_seed{seed}_n{options.n_replicas}_runs{options.n_runs}")
    return res


def _store_ams(res, name):
    """Append an AMS result to ``AMS_FILE`` (a name already stored is kept, not overwritten)."""
    from phasetools import io

    names = {e.name for e in io.list_results(AMS_FILE)} if os.path.exists(AMS_FILE) else set()
    if name in names:
        print(f"  {name} is already in {AMS_FILE}: not stored again")
    else:
        io.save(res, AMS_FILE, name=name)
        print(f"  stored as {name} in {AMS_FILE}")


def _store_brute(name, esc, **attrs):
    """Store one brute-force batch in ``BRUTE_FILE`` (plain HDF5): ``escape_steps`` per run, the
    SGD step of the escape or -1 when censored at ``max_steps``; a batch of the same name is
    replaced."""
    import h5py

    with h5py.File(BRUTE_FILE, "a") as f:
        if name in f:
            del f[name]
        g = f.create_group(name)
        g.create_dataset("escape_steps", data=np.asarray(esc, np.int64))
        g.attrs.update(attrs)
    print(f"  stored as {name} in {BRUTE_FILE}")


def stored_brute(name):
    """The exponential fit (``phasetools.stats.exponential_mle``, in epochs) of a stored
    brute-force batch and its attributes."""
    import h5py

    with h5py.File(BRUTE_FILE, "r") as f:
        esc, attrs = f[name]["escape_steps"][()], dict(f[name].attrs)
    fit = exponential_mle(np.where(esc > 0, esc, attrs["max_steps"]) / attrs["steps_per_epoch"], esc <= 0)
    return fit, attrs


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
    _store_brute(f"trainer_lr{lr}", np.where(ex.outcome == 2, ex.steps, -1), lr=lr, n_runs=n, epochs=epochs,
                 seed=seed, max_steps=epochs * eng.steps_per_epoch, steps_per_epoch=eng.steps_per_epoch,
                 method="trainer (excursions)")
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
    lrs = [float(v) for v in sys.argv[2:]] or list(REPLAY)
    for lr in lrs:
        n, epochs = REPLAY[lr]
        t = time.perf_counter()
        esc = kernel(x, y, np.array(B0, float), lr, 4, 0.32, TARGET, n, epochs * 128, 7)
        fit = exponential_mle(np.where(esc > 0, esc, epochs * 128) / 128, esc < 0)
        print(f"lr {lr}: {n} runs x {epochs} epochs, {np.sum(esc > 0)} escapes, tau = {fit.tau:.4g} +- "
              f"{fit.tau_stderr:.3g} epochs ({time.perf_counter() - t:.0f} s)", flush=True)
        _store_brute(f"replay_lr{lr}", esc, lr=lr, n_runs=n, epochs=epochs, seed=7, max_steps=epochs * 128,
                     steps_per_epoch=128, method="numba replay")


# -- the kick estimator (phasetools.rare.kick_escape): beyond brute force -------------------------
KICK_FILE = "kick_sweep.h5"
KICK_LRS = (0.1, 0.09, 0.08, 0.075, 0.07, 0.065, 0.06, 0.055, 0.05)
#: below this lr the estimate depends on the well (routes of several kicks; docs/rare.md): not fitted
FIT_MIN_LR = 0.055


def well(lr, level=0.7):
    """The well ``A``: sv1 from 0.2 up to where ``lr * lambda_GN`` of the balanced chain is ``level``
    (``lambda_GN = 6 E[x^2] sv1^(4/3)`` in the paper convention); the committor is flat in it."""
    return 0.2, float((level / (6 * lr * np.mean(X**2))) ** 0.75)


def _kick(lr, seed=1, level=0.7, **options):
    from phasetools.rare import KickOptions, kick_escape

    t = time.perf_counter()
    res = kick_escape((X, Y), INIT, **SGD, lr=lr, target=TARGET, well=well(lr, level), rng=seed,
                      options=KickOptions(kick=1.0, **options))
    print(f"lr {lr} (B/lr {4 / lr:.1f}), well top at lr*lambda {level}, {res.options['continuation']}, seed {seed}: "
          f"tau = {res.tau:.4g} +- {res.tau_stderr:.2g} epochs [{res.tau_lower:.4g}, {res.tau_upper:.4g}]; "
          f"top share {res.top_share:.2f}, tail share {res.tail_share:.2f}, weights {res.weight_mean:.3f}, "
          f"{res.n_reached} runs reached B; cost {res.cost['total']:.3g} SGD steps, {time.perf_counter() - t:.0f} s",
          flush=True)
    return res


def kick():
    """The sweep at B = 4 (default options: 40 QSD chains of 16 epochs, 8 draws per state, 4
    trainer continuation runs per post-step state outside the well), stored in kick_sweep.h5."""
    from phasetools import io

    lrs = [float(v) for v in sys.argv[2:]] or KICK_LRS
    for lr in lrs:
        io.save(_kick(lr), KICK_FILE, name=f"kick_lr{lr}")


#: the split continuation (continuation="kicks"): the sweep below lr 0.055 and its overlap with the plain one
SPLIT_LRS = (0.08, 0.07, 0.06, 0.055, 0.05, 0.045)
SPLIT_LEVEL = 0.5


def kick_split():
    """continuation="kicks" (routes of several kicks, docs/rare.md) with the well's top at
    lr * lambda 0.5 (the first kick of a two-kick route must leave the well), seed 1, stored in
    kick_sweep.h5 as ``kicks_lr<lr>``."""
    from phasetools import io

    for lr in [float(v) for v in sys.argv[2:]] or SPLIT_LRS:
        io.save(_kick(lr, seed=1, level=SPLIT_LEVEL, continuation="kicks"), KICK_FILE, name=f"kicks_lr{lr}")


#: the checks of the split sweep stored in kick_sweep.h5 (docs/rare.md): seed 2 (top 0.5) at every lr
#: below the trainer continuation's reach, the top at 0.4 (seed 1) where the well mattered, and seed 2
#: with the top at 0.4 at lr 0.05
SPLIT_CHECKS = ((2, SPLIT_LEVEL, (0.06, 0.055, 0.05, 0.045), "_seed2"),
                (1, 0.4, (0.05, 0.045), "_top0.4"),
                (2, 0.4, (0.05,), "_seed2_top0.4"))


def kick_split_check():
    """The split estimate with seed 2 (same well) and with the well's top at lr * lambda 0.4:
    without arguments the stored checks of the docs (``SPLIT_CHECKS``: ``kicks_lr<lr>_seed2`` at lr
    0.06-0.045, ``kicks_lr<lr>_top0.4`` at 0.05 and 0.045, ``kicks_lr0.05_seed2_top0.4``); with
    ``lr ...`` seed 2 and the top at 0.4 (seed 1) at each of them."""
    from phasetools import io

    lrs = [float(v) for v in sys.argv[2:]]
    checks = SPLIT_CHECKS if not lrs else ((2, SPLIT_LEVEL, lrs, "_seed2"), (1, 0.4, lrs, "_top0.4"))
    for seed, level, at, suffix in checks:
        for lr in at:
            io.save(_kick(lr, seed=seed, level=level, continuation="kicks"), KICK_FILE, name=f"kicks_lr{lr}{suffix}")


def kick_check():
    """The estimate must not depend on the well (exact for any A): its top at lr * lambda 0.5
    instead of 0.7, and the tilted continuation instead of plain trainer runs."""
    for lr in (0.07, 0.06, 0.055, 0.05):
        _kick(lr, seed=2, level=0.5)
    for lr in (0.08, 0.06):
        _kick(lr, seed=3, continuation="tilted")


def _fit(b, ln_tau, se):
    """Weighted least squares ln tau = a + slope * B / lr: (slope, its se, a, its se)."""
    w = 1 / se**2
    A = np.stack([np.ones_like(b), b], axis=1)
    cov = np.linalg.inv(A.T @ (A * w[:, None]))
    a, slope = cov @ (A.T @ (w * ln_tau))
    chi2 = float(np.sum(w * (ln_tau - a - slope * b) ** 2) / max(b.size - 2, 1))
    scale = max(1.0, chi2)                                   # inflate by the reduced chi^2 when it exceeds 1
    return slope, np.sqrt(cov[1, 1] * scale), a, np.sqrt(cov[0, 0] * scale), chi2


def _stored_replay():
    """(lr, tau, stderr) rows of the numba replay's batches stored in ``BRUTE_FILE`` (none if absent)."""
    import h5py

    rows = []
    names = []
    if os.path.exists(BRUTE_FILE):
        with h5py.File(BRUTE_FILE, "r") as f:
            names = sorted(n for n in f if n.startswith("replay_lr"))
    for name in names:
        fit, attrs = stored_brute(name)
        rows.append((float(attrs["lr"]), fit.tau, fit.tau_stderr))
        print(f"  brute force {name} ({BRUTE_FILE}): {attrs['n_runs']} runs x {attrs['epochs']} epochs, "
              f"{fit.n_escaped} escapes, tau {fit.tau:.4g} +- {fit.tau_stderr:.3g}")
    print(f"brute force: {len(rows)} stored batches drawn (`replay` stores them in {BRUTE_FILE})")
    return np.array(rows)


def _stored_ams():
    """(lr, tau, lower, upper) rows of the stored AMS runs with coordinate="sharpness" and
    ``OPTIONS.n_replicas`` replicas (none if ``AMS_FILE`` is absent)."""
    from phasetools import io

    rows = []
    entries = io.list_results(AMS_FILE) if os.path.exists(AMS_FILE) else []
    for e in entries:
        r = io.load(AMS_FILE, e.name)
        if r.order == "sharpness" and r.options["n_replicas"] == OPTIONS.n_replicas:
            rows.append((r.noise["lr"], r.tau, r.tau_lower, r.tau_upper))
            print(f"  AMS {e.name} ({AMS_FILE}): tau {r.tau:.4g} [{r.tau_lower:.4g}, {r.tau_upper:.4g}]")
    print(f"AMS: {len(rows)} stored runs drawn (`ams`, `beyond` and `_ams` store them in {AMS_FILE})")
    return np.array(rows)


def _stored_kicks():
    """The stored kick results by kind: the plain sweep (``kick_lr<lr>``), the split sweep
    (``kicks_lr<lr>``) and its checks (``kicks_lr<lr>_seed2``, ``kicks_lr<lr>_top0.4``), each
    sorted by decreasing lr, finite tau only."""
    from phasetools import io

    out = {"plain": [], "split": [], "seed2": [], "top0.4": []}
    for e in io.list_results(KICK_FILE):
        r = io.load(KICK_FILE, e.name)
        if np.isfinite(r.tau):
            tail = e.name[8:].partition("_")[2]
            kind = "plain" if e.name.startswith("kick_lr") else tail or "split"
            if kind in out:
                out[kind].append(r)
    return {k: sorted(v, key=lambda r: -r.lr) for k, v in out.items()}


def _curvature(res):
    """Weighted quadratic fit ln tau = a + b x + c x^2 (x = B / lr - 60) over ``res``: (c, its se),
    the errors inflated by the reduced chi^2 when it exceeds 1."""
    x = np.array([4 / r.lr for r in res]) - 60
    lt, w = np.log([r.tau for r in res]), np.array([(r.tau / r.tau_stderr) ** 2 for r in res])
    A = np.stack([np.ones_like(x), x, x * x], axis=1)
    cov = np.linalg.inv(A.T @ (A * w[:, None]))
    coef = cov @ (A.T @ (w * lt))
    chi2 = float(np.sum(w * (lt - A @ coef) ** 2) / max(x.size - 3, 1))
    return coef[2], np.sqrt(cov[2, 2] * max(1.0, chi2)), chi2


def kick_figure(path="kick_sweep.png"):
    """ln tau against B / lr: brute force, AMS, the kick estimator (plain continuation down to lr
    0.055, the split continuation below); the Arrhenius fit over the plain kick points and the
    curvature of ln tau over both.

    Every point comes from a stored result in the working directory: the kick sweeps from
    ``KICK_FILE``, brute force from ``BRUTE_FILE`` and AMS from ``AMS_FILE``; a point is drawn
    only when it is stored.
    """
    from matplotlib.figure import Figure

    kicks = _stored_kicks()
    bad = [r for r in kicks["plain"] if r.lr < FIT_MIN_LR]
    res = [r for r in kicks["plain"] if r.lr >= FIT_MIN_LR]
    b = np.array([4 / r.lr for r in res])
    lt = np.log([r.tau for r in res])
    se = np.array([r.tau_stderr / r.tau for r in res])
    slope, s_se, a, a_se, chi2 = _fit(b, lt, se)
    print(f"Arrhenius fit over {b.size} kick points (B/lr {b.min():.0f}-{b.max():.0f}): ln tau = "
          f"({a:.2f} +- {a_se:.2f}) + ({slope:.3f} +- {s_se:.3f}) B/lr; reduced chi^2 {chi2:.2f}")
    for r in res:
        print(f"  lr {r.lr}: B/lr {4 / r.lr:.1f}  tau {r.tau:.3g} [{r.tau_lower:.3g}, {r.tau_upper:.3g}]  "
              f"top share {r.top_share:.2f}  cost {r.cost['total']:.3g}")
    fig = Figure(figsize=(6.4, 4.6))
    ax = fig.subplots()
    ax.errorbar(b, lt, yerr=1.96 * se, fmt="o", color="C0", label="kick_escape, trainer continuation (95 %)")
    for r in bad:
        print(f"  lr {r.lr}: B/lr {4 / r.lr:.1f}  tau {r.tau:.3g} [{r.tau_lower:.3g}, {r.tau_upper:.3g}]  "
              f"top share {r.top_share:.2f}: depends on the well, not fitted")
        ax.plot([4 / r.lr], [np.log(r.tau)], "o", mfc="none", color="0.5",
                label=f"trainer continuation, lr {r.lr}: depends on the well")
    for kind, fmt, color, shift, label in (("split", "D", "C2", 0.0, 'continuation="kicks", top 0.5, seed 1 (95 %)'),
                                           ("seed2", "d", "C1", 0.6, '"kicks", seed 2'),
                                           ("top0.4", "v", "C4", -0.6, '"kicks", well top 0.4')):
        rows = kicks[kind]
        for r in rows:
            print(f"  {kind} lr {r.lr} (well top {r.well[1]:.3f}, seed {r.seeds[0]}): B/lr {4 / r.lr:.1f}  tau "
                  f"{r.tau:.3g} +- {r.tau_stderr:.2g} [{r.tau_lower:.3g}, {r.tau_upper:.3g}]  top share "
                  f"{r.top_share:.2f}  cost {r.cost['total']:.3g}")
        if rows:
            x = np.array([4 / r.lr for r in rows]) + shift
            y = np.log([r.tau for r in rows])
            lo = np.array([r.tau_lower for r in rows])
            hi = np.array([r.tau_upper for r in rows])
            up = np.where(np.isfinite(hi), np.log(hi) - y, 3.0)
            ax.errorbar(x, y, yerr=[y - np.log(lo), up], fmt=fmt, color=color, ms=5, label=label)
    split = kicks["split"]
    if len(split) >= 4:
        xs, ys = np.array([4 / r.lr for r in split]), np.log([r.tau for r in split])
        print('local slopes d ln tau / d(B/lr) of the continuation="kicks" points:', ", ".join(
              f"{(xs[i] + xs[i + 1]) / 2:.1f}: {(ys[i + 1] - ys[i]) / (xs[i + 1] - xs[i]):.3f}"
              for i in range(xs.size - 1)))
        upto = [r for r in split if r.lr >= FIT_MIN_LR]
        if len(upto) >= 3:
            sl, sl_se, a2, a2_se, chi2s = _fit(np.array([4 / r.lr for r in upto]), np.log([r.tau for r in upto]),
                                                np.array([r.tau_stderr / r.tau for r in upto]))
            print(f'linear fit over the "kicks" points lr >= {FIT_MIN_LR}: ln tau = ({a2:.2f} +- {a2_se:.2f}) + '
                  f"({sl:.3f} +- {sl_se:.3f}) B/lr; reduced chi^2 {chi2s:.2f}")
        c, c_se, chi2q = _curvature(split)
        print(f'quadratic fit over the {len(split)} "kicks" points: curvature {c:.4f} +- {c_se:.4f} per (B/lr)^2, '
              f"reduced chi^2 {chi2q:.2f}")
    bb = np.linspace(b.min() - 2, b.max() + 2, 50)
    ax.plot(bb, a + slope * bb, color="C0", lw=0.8, ls="--",
            label=f"Arrhenius fit (trainer points): slope {slope:.3f} +- {s_se:.3f}")
    br = _stored_replay()
    if br.size:
        ax.errorbar(4 / br[:, 0], np.log(br[:, 1]), yerr=1.96 * br[:, 2] / br[:, 1], fmt="s", mfc="none", ms=9,
                    color="k", label="brute force (numba replay)")
    am = _stored_ams()
    if am.size:
        ax.errorbar(4 / am[:, 0] + 0.4, np.log(am[:, 1]),
                    yerr=[np.log(am[:, 1] / am[:, 2]), np.log(am[:, 3] / am[:, 1])], fmt="^", color="C3",
                    label=f'AMS, coordinate="sharpness", N = {OPTIONS.n_replicas} (95 %)')
    ax.set_xlabel("B / lr   (B = 4)")
    ax.set_ylabel("ln tau  (tau in epochs)")
    ax.set_title("backward escape of SGD with replacement (eta 0.8, weight decay 0.32)", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print("wrote", path)


if __name__ == "__main__":
    {"route": route, "committor": committor, "ams": ams, "brute": brute, "replay": replay,
     "beyond": beyond, "kick": kick, "kick-check": kick_check, "kick-split": kick_split,
     "kick-split-check": kick_split_check,
     "kick-figure": kick_figure}[sys.argv[1] if len(sys.argv) > 1 else "route"]()
