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

    python examples/rare_sgd_shuffle.py kick [lr ...]  # kick_escape(sampling="shuffle") sweep lr 0.11 .. 0.065
                                                   # -> kick_shuffle_sweep.h5 (~1-3 min per lr)
    python examples/rare_sgd_shuffle.py kick-check [lr ...]  # seed 2, and the well's top at lr * lambda 0.5 (seed 3)
                                                   # -> kick_shuffle_sweep.h5
    python examples/rare_sgd_shuffle.py kick-phase [LR [SEED ...]]  # the sweep with phase="random", lr 0.11-0.09
                                                   # -> kick_shuffle_sweep.h5 as phase_lr<lr>_seed<seed>
    python examples/rare_sgd_shuffle.py kick-figure  # ln tau vs B / lr from the stored results, Arrhenius fit
                                                   # -> kick_shuffle_sweep.png

(wall times at a machine load of 9-14 on 2 cores). Extra arguments: ``brute LR N_RUNS [EPOCHS]``,
``ams|fresh LR COORDINATE SEED...``. ``brute`` stores each batch's escape steps in
rare_sgd_shuffle_brute.h5 (plain HDF5, as ``examples/rare_sgd.py``), the kick commands their
``KickEscape`` results in kick_shuffle_sweep.h5 (``phasetools.io``), both in the working directory;
``kick-figure`` draws only what is stored there (and the with-replacement sweep of
``examples/rare_sgd.py kick`` when its kick_sweep.h5 is in the same folder).
"""

import os
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
#: stored results, in the working directory: brute-force batches (plain HDF5) and kick estimates (phasetools.io)
BRUTE_FILE = "rare_sgd_shuffle_brute.h5"
KICK_FILE = "kick_shuffle_sweep.h5"


def sv1(M):
    return np.linalg.svd(M, compute_uv=False)[:, 0]


def brute(lr=LR, n=200, epochs=3000, seed=5, n_threads=None):
    """Brute force by the trainer: reshuffled epochs, the escape is the first SGD step with sv1 <= target
    (chunks of 16 whole epochs: every epoch is one permutation, as in ``train``). Stored in ``BRUTE_FILE``
    as ``trainer_lr<lr>``."""
    t = time.perf_counter()
    eng = TrainingEngine((X, Y), **SGD, lr=lr, sampling="shuffle", convention="paper", coordinate=sv1, sign=-1.0,
                         shapes=[(1, 1)] * 3, n_threads=n_threads)
    x = eng.state(np.repeat(np.asarray(B0)[None, :], n, axis=0))     # weights, epoch position, used samples
    ex = excursions(eng, x, eng.streams(seed, np.arange(n)), low=-np.inf, high=-TARGET,
                    max_steps=epochs * eng.steps_per_epoch, chunk=eng.max_chunk)
    fit = exponential_mle(ex.steps * eng.time_unit, ex.outcome != 2)
    print(f"lr {lr}: brute force (trainer, shuffle), {n} runs x {epochs} epochs: {np.sum(ex.outcome == 2)} escapes, "
          f"tau = {fit.tau:.4g} +- {fit.tau_stderr:.3g} epochs; cost {ex.cost:.3g} SGD steps, "
          f"{time.perf_counter() - t:.0f} s", flush=True)
    _store_brute(f"trainer_lr{lr}", np.where(ex.outcome == 2, ex.steps, -1), lr=lr, n_runs=n, epochs=epochs,
                 seed=seed, max_steps=epochs * eng.steps_per_epoch, steps_per_epoch=eng.steps_per_epoch,
                 cost=int(ex.cost), wall_seconds=time.perf_counter() - t, method="trainer (excursions, shuffle)")
    return fit


def _store_brute(name, esc, **attrs):
    """One brute-force batch in ``BRUTE_FILE`` (plain HDF5): ``escape_steps`` per run, the SGD step of
    the escape or -1 when censored at ``max_steps``; a batch of the same name is replaced."""
    import h5py

    with h5py.File(BRUTE_FILE, "a") as f:
        if name in f:
            del f[name]
        g = f.create_group(name)
        g.create_dataset("escape_steps", data=np.asarray(esc, np.int64))
        g.attrs.update(attrs)
    print(f"  stored as {name} in {BRUTE_FILE}")


def stored_brute():
    """``{lr: (fit, attrs)}`` of the brute-force batches in ``BRUTE_FILE`` (empty when it is absent):
    the exponential fit (:func:`phasetools.stats.exponential_mle`, in epochs) of each batch."""
    import h5py

    out = {}
    if not os.path.exists(BRUTE_FILE):
        return out
    with h5py.File(BRUTE_FILE, "r") as f:
        for name in sorted(f):
            esc, attrs = f[name]["escape_steps"][()], dict(f[name].attrs)
            fit = exponential_mle(np.where(esc > 0, esc, attrs["max_steps"]) / attrs["steps_per_epoch"], esc <= 0)
            out[float(attrs["lr"])] = (fit, attrs)
    return out


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


# -- the kick estimator (kick_escape(..., sampling="shuffle")): beyond brute force --------------
KICK_LRS = (0.11, 0.1, 0.09, 0.08, 0.075, 0.07, 0.065)
#: the sweep's options: 256 continuation runs per post-kick state (the committor after a kick is about
#: 1e-3 here, so 4 runs see it as 0 or 1/4 and a few lucky states carry the estimate), and a QSD state
#: every 33 steps, coprime to the 128 steps of an epoch, so that the states cover every position in the
#: epoch (every 32 steps takes positions 0, 32, 64 and 96 only; docs/rare.md). The stored sweep was made
#: with phase "fixed" (every chain keeps the same ~62 of the 128 positions); ``kick-phase`` reruns with
#: phase "random" (each chain's kept steps shifted by a random offset)
KICK_OPTIONS = {"kick": 1.0, "n_continue": 256, "thin": 33, "phase": "fixed"}
#: lr -> more draws and continuation runs where the committor after a kick is smaller
KICK_MORE = {0.065: {"n_draws": 16, "n_continue": 1024}}
#: below this lr the well's top at lr * lambda 0.7 is too high (the estimate moves when it is lowered to 0.5;
#: docs/rare.md): drawn open, not fitted
FIT_MIN_LR = 0.075
#: the with-replacement sweep of examples/rare_sgd.py, drawn for comparison when it is in the folder
REPLACEMENT_FILE = "kick_sweep.h5"


def well(lr, level=0.7):
    """The well ``A``: sv1 from 0.2 up to where ``lr * lambda_GN`` of the balanced chain is ``level``
    (``lambda_GN = 6 E[x^2] sv1^(4/3)`` in the paper convention), as in examples/rare_sgd.py."""
    return 0.2, float((level / (6 * lr * np.mean(X**2))) ** 0.75)


def _kick(lr, seed=1, level=0.7, **options):
    """One reshuffled kick estimate (``KICK_OPTIONS``, updated by ``KICK_MORE[lr]`` and ``options``), printed."""
    from phasetools.rare import KickOptions, kick_escape

    t = time.perf_counter()
    res = kick_escape((X, Y), INIT, **SGD, lr=lr, target=TARGET, well=well(lr, level), sampling="shuffle",
                      rng=seed, options=KickOptions(**{**KICK_OPTIONS, **KICK_MORE.get(lr, {}), **options}), n_threads=1)
    print(f"lr {lr} (B/lr {4 / lr:.1f}), shuffle, well top at lr*lambda {level}, seed {seed}: tau = {res.tau:.4g} "
          f"+- {res.tau_stderr:.2g} epochs [{res.tau_lower:.4g}, {res.tau_upper:.4g}]; top share {res.top_share:.3f}, "
          f"tail share {res.tail_share:.2f}, weights {res.weight_mean:.3f}, {res.n_reached} runs reached B from "
          f"{res.n_outside} post-kick states; cost {res.cost['total']:.3g} SGD steps, {time.perf_counter() - t:.0f} s",
          flush=True)
    return res


def _store_kick(res, name):
    """Append a kick result to ``KICK_FILE`` (a name already stored is kept, not overwritten)."""
    from phasetools import io

    names = {e.name for e in io.list_results(KICK_FILE)} if os.path.exists(KICK_FILE) else set()
    if name in names:
        print(f"  {name} is already in {KICK_FILE}: not stored again")
    else:
        io.save(res, KICK_FILE, name=name)
        print(f"  stored as {name} in {KICK_FILE}")


def kick(lrs=KICK_LRS):
    """The sweep (seed 1, well top at lr * lambda 0.7), stored as ``kick_lr<lr>``."""
    for lr in lrs:
        _store_kick(_kick(lr), f"kick_lr{lr}")


def kick_phase(lrs=(0.11, 0.1, 0.09), seeds=(1,)):
    """The sweep's settings with ``phase="random"`` (each QSD chain keeps its states at a random
    offset in the epoch), stored as ``phase_lr<lr>_seed<seed>``: against the brute force at lr 0.11-0.09."""
    for seed in seeds:
        for lr in lrs:
            _store_kick(_kick(lr, seed=seed, phase="random"), f"phase_lr{lr}_seed{seed}")


def kick_check(lrs=(0.08, 0.075, 0.07, 0.065)):
    """A second seed (2) with the same well, and the well's top at lr * lambda 0.5 (seed 3): the estimate
    must not depend on the seed beyond its interval, nor on the well (it is exact for any ``A``)."""
    for lr in lrs:
        _store_kick(_kick(lr, seed=2), f"check_lr{lr}_seed2_level0.7")
        _store_kick(_kick(lr, seed=3, level=0.5), f"check_lr{lr}_seed3_level0.5")


def _fit(b, ln_tau, se, degree=1):
    """Weighted least squares of ``ln tau`` on a polynomial in ``B / lr``: coefficients (lowest first),
    their standard errors (inflated by sqrt of the reduced chi^2 when it exceeds 1) and the reduced chi^2."""
    w = 1 / se**2
    A = np.stack([b**j for j in range(degree + 1)], axis=1)
    cov = np.linalg.inv(A.T @ (A * w[:, None]))
    coef = cov @ (A.T @ (w * ln_tau))
    chi2 = float(np.sum(w * (ln_tau - A @ coef) ** 2) / max(b.size - degree - 1, 1))
    return coef, np.sqrt(np.diag(cov) * max(1.0, chi2)), chi2


def _stored_kicks(path, prefix):
    """The finite kick results in ``path`` whose name starts with ``prefix``, by decreasing lr."""
    from phasetools import io

    if not os.path.exists(path):
        return []
    res = [(e.name, io.load(path, e.name)) for e in io.list_results(path) if e.name.startswith(prefix)]
    return sorted(((n, r) for n, r in res if np.isfinite(r.tau)), key=lambda nr: -nr[1].lr)


def kick_figure(path="kick_shuffle_sweep.png"):
    """ln tau against B / lr for reshuffled SGD: brute force, the kick estimates (sweep and checks) and the
    Arrhenius fit over the sweep; with the with-replacement sweep when its file is in the folder. Every
    point comes from a stored result (``KICK_FILE``, ``BRUTE_FILE``, ``REPLACEMENT_FILE``)."""
    from matplotlib.figure import Figure

    stored = [r for _, r in _stored_kicks(KICK_FILE, "kick_lr")]
    checks = _stored_kicks(KICK_FILE, "check_lr")
    phase = _stored_kicks(KICK_FILE, "phase_lr")
    fixed = []
    if phase:   # `kick-phase` results (random phase, both seeds) supersede the fixed-phase sweep and checks
        fixed = stored + [r for _, r in checks]
        stored = [r for n, r in phase if "level" not in n]
        checks = [(n, r) for n, r in phase if "level" in n]
    sweep, bad = [r for r in stored if r.lr >= FIT_MIN_LR], [r for r in stored if r.lr < FIT_MIN_LR]
    if len(sweep) < 3:
        raise SystemExit(f"fewer than 3 kick results with lr >= {FIT_MIN_LR} in {KICK_FILE}: run `kick` first")
    b = np.array([4 / r.lr for r in sweep])
    lt = np.log([r.tau for r in sweep])
    se = np.array([r.tau_stderr / r.tau for r in sweep])
    (a, slope), (a_se, s_se), chi2 = _fit(b, lt, se)
    quad, quad_se, chi2q = _fit(b, lt, se, degree=2)
    print(f"reshuffled: Arrhenius fit over {b.size} kick points (B/lr {b.min():.1f}-{b.max():.1f}): ln tau = "
          f"({a:.2f} +- {a_se:.2f}) + ({slope:.3f} +- {s_se:.3f}) B/lr; reduced chi^2 {chi2:.2f}; quadratic term "
          f"{quad[2]:.4f} +- {quad_se[2]:.4f} (reduced chi^2 {chi2q:.2f})")
    for j, r in enumerate(sweep):
        local = "" if j == 0 or r.lr == sweep[j - 1].lr else (
            f"  local slope {np.log(r.tau / sweep[j - 1].tau) / (4 / r.lr - 4 / sweep[j - 1].lr):.3f}")
        print(f"  lr {r.lr}: B/lr {4 / r.lr:.1f}  tau {r.tau:.4g} +- {r.tau_stderr:.2g} [{r.tau_lower:.4g}, "
              f"{r.tau_upper:.4g}]  top share {r.top_share:.3f}  cost {r.cost['total']:.3g}  wall "
              f"{r.stats['wall_seconds']:.0f} s{local}")
    for r in bad:
        print(f"  lr {r.lr}: B/lr {4 / r.lr:.1f}  tau {r.tau:.4g} [{r.tau_lower:.4g}, {r.tau_upper:.4g}]  top share "
              f"{r.top_share:.3f}  cost {r.cost['total']:.3g}: the top at 0.7 is too high here, not fitted")
    for name, r in checks:
        print(f"  {name}: tau {r.tau:.4g} [{r.tau_lower:.4g}, {r.tau_upper:.4g}]  top share {r.top_share:.3f}")
    fig = Figure(figsize=(6.4, 4.6))
    ax = fig.subplots()
    ax.errorbar(b, lt, yerr=[lt - np.log([r.tau_lower for r in sweep]), np.log([r.tau_upper for r in sweep]) - lt],
                fmt="o", color="C0", label="kick_escape, shuffle, random phase (seeds 1, 2; 95 %)" if phase
                else "kick_escape, shuffle (seed 1, 95 %)")
    if fixed:
        ax.plot([4 / r.lr for r in fixed], np.log([r.tau for r in fixed]), "x", ms=5, color="0.6",
                label="fixed phase (superseded: low against brute force)")
    if bad:
        lb = np.log([r.tau for r in bad])
        ax.errorbar([4 / r.lr for r in bad], lb, yerr=[lb - np.log([r.tau_lower for r in bad]),
                    np.log([r.tau_upper for r in bad]) - lb], fmt="o", mfc="none", color="C0",
                    label="kick_escape, shuffle, top 0.7: too high here (not fitted)")
    for k, (name, r) in enumerate(checks):
        top = "0.5" if "level0.5" in name else "0.7"
        up = np.log(r.tau_upper) if np.isfinite(r.tau_upper) else np.log(r.tau) + 3
        ax.errorbar([4 / r.lr + (0.35 if top == "0.5" else -0.35)], [np.log(r.tau)],
                    yerr=[[np.log(r.tau / r.tau_lower)], [up - np.log(r.tau)]], fmt="D" if top == "0.5" else "v",
                    ms=4, color="C2" if top == "0.5" else "C1",
                    label=None if any(top in n for n, _ in checks[:k]) else
                    ("random phase, well top at lr*lambda 0.5 (seeds 1, 2; heavy-tailed)" if phase else
                     "check: well top at lr*lambda 0.5 (seeds 3, 5)" if top == "0.5" else "check: seed 2"))
    bb = np.linspace(b.min() - 2, max([b.max(), *(4 / r.lr for r in bad), *(4 / r.lr for _, r in checks)]) + 2, 50)
    ax.plot(bb, a + slope * bb, color="C0", lw=0.8, ls="--", label=f"fit (shuffle): slope {slope:.3f} +- {s_se:.3f}")
    brute = stored_brute()
    if brute:
        lrs = sorted(brute)
        t = np.array([brute[v][0].tau for v in lrs])
        e = np.array([brute[v][0].tau_stderr for v in lrs])
        ax.errorbar(4 / np.array(lrs), np.log(t), yerr=1.96 * e / t, fmt="s", mfc="none", ms=9, color="k",
                    label="brute force, trainer (shuffle)")
        for v in lrs:
            f, at = brute[v]
            print(f"  brute force lr {v} ({BRUTE_FILE}): {at['n_runs']} runs x {at['epochs']} epochs, {f.n_escaped} "
                  f"escapes, tau {f.tau:.4g} +- {f.tau_stderr:.3g}")
    print(f"brute force: {len(brute)} stored batches drawn (`brute LR N_RUNS` stores them in {BRUTE_FILE})")
    # with replacement: the trainer-continuation points where they hold (lr >= 0.065) and the split
    # continuation's (`rare_sgd.py kick-split`, seed 1) from lr 0.08 down to the figure's range
    rep = [r for _, r in _stored_kicks(REPLACEMENT_FILE, "kick_lr") if r.lr >= 0.065]
    split = [r for n, r in _stored_kicks(REPLACEMENT_FILE, "kicks_lr") if "_" not in n[len("kicks_lr"):]
             and 4 / r.lr <= bb.max()]
    if rep:
        ax.plot([4 / r.lr for r in rep], np.log([r.tau for r in rep]), "o", mfc="none", color="0.55",
                label="with replacement: kick_escape, trainer continuation")
    if split:
        ax.plot([4 / r.lr for r in split], np.log([r.tau for r in split]), "D", mfc="none", ms=5, color="0.55",
                label="with replacement: continuation='kicks'")
    for r in rep + split:
        print(f"  with replacement ({REPLACEMENT_FILE}) lr {r.lr}: tau {r.tau:.4g} [{r.tau_lower:.4g}, "
              f"{r.tau_upper:.4g}]")
    ax.set_xlabel("B / lr   (B = 4)")
    ax.set_ylabel("ln tau  (tau in epochs)")
    ax.set_title("backward escape of reshuffled SGD (eta 0.8, weight decay 0.32)", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print("wrote", path)


if __name__ == "__main__":
    cmd, args = (sys.argv[1] if len(sys.argv) > 1 else "reduced"), sys.argv[2:]
    if cmd == "brute":
        brute(*(float(args[0]), int(args[1]), *(int(a) for a in args[2:3])) if args else ())
    elif cmd == "reduced":
        reduced(*(float(args[0]),) if args else ())
    elif cmd in ("ams", "fresh"):
        f = cmd == "fresh"
        ams(float(args[0]), (args[1],), tuple(int(s) for s in args[2:]), fresh=f) if args else ams(fresh=f)
    elif cmd in ("kick", "kick-check"):
        (kick if cmd == "kick" else kick_check)(*([tuple(float(a) for a in args)] if args else []))
    elif cmd == "kick-phase":
        kick_phase(*([tuple(float(a) for a in args[:1]), tuple(int(a) for a in args[1:]) or (1,)] if args else []))
    elif cmd == "kick-figure":
        kick_figure()
    else:
        raise SystemExit(f"unknown command {cmd!r}: brute, reduced, ams, fresh, kick, kick-check, kick-phase or kick-figure")
