"""The reproduction's experiments as sweep tasks: one dispatcher, one grid per scale.

Every task is ``run_experiment(experiment=NAME, **params, rng=SeedSequence)`` and returns
one registered result, so the whole reproduction is one resumable sweep
(:func:`phasetools.sweep.run_sweep`) whose file is ``results.h5``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SCALES", "tasks", "run_experiment", "DATA_SEED", "ETA"]

ETA = (0.9, 0.8)
#: The training draw (N = 512) of every E2/E4 experiment: its weak-mode spinodal is 0.3619,
#: so the paper's trap at 0.361 does not trap on it (docs/training.md, E2).
DATA_SEED = 1
CHAIN_TEMPERATURES = (0.0075, 0.0065, 0.0057, 0.005)   # dU/T = 3.8 ... 5.7 (docs/langevin.md)

#: Per scale: seeds, epoch budgets and walkers. "full" is the paper's scale (50 seeds,
#: 2*10^4 epochs, 2000 + 2000 trap epochs); "smoke" is for the test suite.
SCALES = {
    "smoke": dict(n_seeds=2, epochs=60, trap_epochs=(40, 80), n_e1_draws=2, e1_step=0.02, e4_epochs=40,
                  e4_batch_sizes=(8, 12), e5_trap_epochs=(110, 300), e5_epochs=300, n_e5_seeds=1, e5_pool=500,
                  e5_test=1000, n_chain_walkers=40, chain_temps=(0.012, 0.0085), n_e4_seeds=2,
                  n5_seeds=2, n5_epochs=40, n6_draws=5, n12_runs=1, n12_epochs=40,
                  predict_a=((1, 0.1, (16,)),), predict_seeds=2, predict_max_epochs=40, predict_min_epochs=20,
                  predict_c=((1, (3,)),), predict_c_epochs=60, predict_c_trap=(40, 40),
                  predict_b=((1, 0.1, (8,)),), predict_b_epochs=40),
    "quick": dict(n_seeds=8, epochs=8000, trap_epochs=(300, 600), n_e1_draws=10, e1_step=0.01, e4_epochs=1000,
                  e4_batch_sizes=(8, 10, 12, 14), e5_trap_epochs=(110, 130, 150, 175, 300, 190, 200, 210, 220),
                  e5_epochs=4000,
                  n_e5_seeds=2, e5_pool=5000, e5_test=10_000, n_chain_walkers=400, chain_temps=CHAIN_TEMPERATURES,
                  n_e4_seeds=16, n5_seeds=8, n5_epochs=200, n6_draws=200, n12_runs=4, n12_epochs=2000,
                  predict_a=((1, 0.1, (6, 16, 32)), (2, 0.1, (8, 24))), predict_seeds=16, predict_max_epochs=3000,
                  predict_min_epochs=100, predict_c=((1, (3, 10)),), predict_c_epochs=2000,
                  predict_c_trap=(300, 600), predict_b=((1, 0.1, (8, 9)),), predict_b_epochs=1500),
    "full": dict(n_seeds=50, epochs=20_000, trap_epochs=(2000, 2000), n_e1_draws=20, e1_step=0.01, e4_epochs=5000,
                 e4_batch_sizes=(8, 10, 12, 14, 16),
                 e5_trap_epochs=(100, 110, 120, 130, 140, 150, 175, 200, 300, 190, 210, 220),
                 e5_epochs=20_000, n_e5_seeds=8, e5_pool=5000, e5_test=10_000, n_chain_walkers=4000,
                 chain_temps=CHAIN_TEMPERATURES, n_e4_seeds=50, n5_seeds=50, n5_epochs=500, n6_draws=1000,
                 n12_runs=16, n12_epochs=20_000,
                 predict_a=((1, 0.1, (6, 8, 16, 24, 32, 40)), (2, 0.1, (8, 16, 24, 32, 40)), (1, 0.05, (4, 8, 12, 16))),
                 predict_seeds=16, predict_max_epochs=20_000, predict_min_epochs=100,
                 predict_c=((1, (3, 5, 7, 10)), (2, (3, 5, 7, 10))), predict_c_epochs=5000,
                 predict_c_trap=(300, 600), predict_b=((1, 0.1, (8, 9, 10)), (2, 0.1, (6, 7))),
                 predict_b_epochs=5000),
}


def tasks(scale: str) -> list:
    """The task grid of a scale: one parameter dict per experiment run.

    Parameters
    ----------
    scale : {"smoke", "quick", "full"}
        Seeds and budgets of :data:`SCALES`.

    Returns
    -------
    list of dict
        Each with its ``experiment`` name and the keyword arguments of
        :func:`run_experiment` (without ``rng``).
    """
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {', '.join(SCALES)}, got {scale!r}")
    s = SCALES[scale]
    step = s["e1_step"]
    grid = [dict(experiment="theory_critical"), dict(experiment="theory_modes"),
            dict(experiment="theory_landscape"), dict(experiment="theory_corrected")]
    n_up = int(round(0.46 / step)) + 1
    grid += [dict(experiment="e1_up", n_weight_decays=n_up, step=step),
             dict(experiment="e1_down", n_weight_decays=n_up, step=step)]
    grid += [dict(experiment="e1_draw", draw=k, n_weight_decays=n_up, step=step) for k in range(s["n_e1_draws"])]
    e2 = dict(n_seeds=s["n_seeds"], epochs=s["epochs"], trap_epochs=list(s["trap_epochs"]))
    grid += [dict(experiment="e2_paper_rank1", **e2), dict(experiment="e2_rank1", dtype="float64", **e2),
             dict(experiment="e2_rank1_float32", dtype="float32", **e2), dict(experiment="e2_rank0", **e2)]
    grid += [dict(experiment="e4_paper", n_seeds=s["n_seeds"], epochs=s["epochs"],
                  trap_epochs=list(s["trap_epochs"]))]
    grid += [dict(experiment="e4_corrected", batch_size=int(b), n_seeds=s["n_e4_seeds"], epochs=s["e4_epochs"])
             for b in s["e4_batch_sizes"]]
    grid += [dict(experiment="e5", trap_epochs=list(s["e5_trap_epochs"]), epochs=s["e5_epochs"],
                  n_seeds=s["n_e5_seeds"], pool_size=s["e5_pool"], test_size=s["e5_test"])]
    grid += [dict(experiment="langevin_chain", temperature=float(T), n_traj=s["n_chain_walkers"])
             for T in s["chain_temps"]]
    # added tasks go last: every task's stream is spawned by its position in the grid
    # the other reading of the paper's initialisation (std 1/sqrt(fan_in)): the sensitivity column
    grid += [dict(experiment=f"{name}_fan_in", init_fan="fan_in", **e2) for name in ("e2_paper_rank1", "e2_rank0")]
    grid += [dict(experiment="n5_fresh", init_fan="width", n_seeds=s["n5_seeds"], epochs=s["n5_epochs"]),
             dict(experiment="n5_fresh_fan_in", init_fan="fan_in", n_seeds=s["n5_seeds"], epochs=s["n5_epochs"]),
             dict(experiment="n6_draws", n_draws=s["n6_draws"]),
             dict(experiment="n12_noise"),
             dict(experiment="n12_runs", n_seeds=s["n12_runs"], epochs=s["n12_epochs"])]
    # predicted against measured escape times (docs/predict.md): (a) with replacement, (c) injected noise
    grid += [dict(experiment="predict_replacement", draw=d, lr=lr, batch_size=int(b), n_seeds=s["predict_seeds"],
                  max_epochs=s["predict_max_epochs"], min_epochs=s["predict_min_epochs"])
             for d, lr, bs in s["predict_a"] for b in bs]
    grid += [dict(experiment="predict_injected", draw=d, ratio=float(r), width=10, n_seeds=s["predict_seeds"],
                  epochs=s["predict_c_epochs"], trap_epochs=list(s["predict_c_trap"]))
             for d, ratios in s["predict_c"] for r in ratios]
    # (b) random reshuffling, measured by the rank criterion (the test MSE counts excursions under reshuffling)
    grid += [dict(experiment="predict_shuffle", draw=d, lr=lr, batch_size=int(b), n_seeds=s["predict_seeds"],
                  epochs=s["predict_b_epochs"]) for d, lr, bs in s["predict_b"] for b in bs]
    return grid


def _teacher():
    from ..training import GaussianTeacher
    return GaussianTeacher(list(ETA))


#: The paper's network and SGD (E1, E2, E4): 3 weight matrices of width 10, lr 0.08, batch size 64,
#: weight decay 0.32 after the release; the library functions take these explicitly.
PAPER_NET = dict(n_layers=3, width=10)
PAPER_LR, PAPER_BATCH_SIZE, PAPER_WEIGHT_DECAY = 0.08, 64, 0.32
#: E5: 25 of 5000 samples released at weight decay 0.0025 with lr 0.1.
PAPER_E5 = dict(n_train=25, weight_decay=0.0025, lr=0.1, n_layers=3, width=10, log_every=5)


#: The escape rule of E4 corrected (:func:`phasetools.training.arrhenius_sweep`'s ``criterion``):
#: the weak mode's end-to-end singular value falls below its MSE-midpoint value.
E4_CRITERION = "rank"


def corrected_weight_decay(data) -> float:
    """E4 corrected: 0.012 below the draw's weak-mode spinodal (0.35 for the default draw),
    where rank 2 is metastable with a small barrier down to rank 1 and SGD noise is not zero.

    Parameters
    ----------
    data : Dataset
        The training draw.

    Returns
    -------
    float
    """
    from ..theory import critical_points
    m = data.moments()
    sp = np.sort(np.asarray(critical_points(3, m.spectrum, m.a, convention="paper").gamma_sp, dtype=float))
    return float(np.round(sp[0] - 0.012, 3))


#: Residual seeds of the N12 noise measurement (0 = exactly rank 1).
N12_NOISE_SEEDS = (0.0, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 3e-2, 1e-1)


def _e2(experiment, p, teacher, data, test, rng):
    """E2 trap and release. The paper's 0.361 trap runs on the first draw where it is a rank-1
    trap (N6); the initial weights use the literal reading std 1/sqrt(width) unless the task
    says ``init_fan="fan_in"``."""
    from .. import training as tr
    from . import _measure as M
    name = experiment.removesuffix("_fan_in")
    if name == "e2_paper_rank1":
        data = teacher.sample(512, rng=M.first_trap_draw(teacher))
        tb = (0.0, 0.361)
    elif name == "e2_rank0":
        tb = (0.0, 0.43)
    else:
        tb = (0.0, tr.trap_weight_decay(data, 1, n_layers=3))
    s_init, s_trap, s_rel = rng.spawn(3)
    dtype = p.get("dtype", "float64")
    init = M.fresh_init(data, p["n_seeds"], s_init, p.get("init_fan", "width"))
    trap = tr.prepare_trap(data, trap_weight_decays=tb, trap_epochs=tuple(p["trap_epochs"]), **PAPER_NET,
                           lr=PAPER_LR, batch_size=PAPER_BATCH_SIZE, init=init, dtype=dtype, rng=s_trap)
    return tr.trap_and_release(data, target_weight_decay=PAPER_WEIGHT_DECAY, trap=trap, epochs=p["epochs"],
                               **PAPER_NET, lr=PAPER_LR, batch_size=PAPER_BATCH_SIZE, n_seeds=p["n_seeds"], test=test,
                               dtype=dtype, log_every=max(1, p["epochs"] // 2000), rng=s_rel, quiet=True)


def _weight_decays(p):
    return np.round(np.arange(p["n_weight_decays"]) * p["step"], 4)


def run_experiment(*, experiment, rng, **p):
    """Run one experiment of the reproduction (a sweep task).

    Parameters
    ----------
    experiment : str
        The experiment's name (``"theory_critical"``, ``"e1_up"``, ``"e2_rank1"``,
        ``"langevin_chain"``, ...; see :func:`tasks`).
    rng : numpy.random.SeedSequence
        The task's stream (the sweep spawns one per task).
    **p
        The experiment's parameters, as :func:`tasks` lists them.

    Returns
    -------
    Result
        One registered result (a theory result, a training protocol's result or an
        escape ensemble).
    """
    import phasetools.theory as th

    from .. import training as tr
    from . import _measure as M

    teacher = _teacher()
    data = teacher.sample(512, rng=DATA_SEED)
    test = teacher.test_set()
    if experiment == "theory_critical":
        return th.critical_points(3, list(ETA), convention="paper")
    if experiment == "theory_modes":
        return th.modes(3, list(ETA), 0.32, convention="paper")
    if experiment == "theory_landscape":
        return th.landscape(3, ETA[1], 0.32, convention="paper")
    if experiment == "theory_corrected":
        m = data.moments()
        return th.landscape(3, m.spectrum, corrected_weight_decay(data), m.a, convention="paper")
    if experiment in ("e1_up", "e1_down"):
        wds = _weight_decays(p)
        if experiment == "e1_down":
            wds = wds[::-1]
        return tr.weight_decay_sweep(teacher.moments, wds, **PAPER_NET, lr=PAPER_LR, test=teacher, rng=rng,
                                     quiet=True)
    if experiment == "e1_draw":
        sample = teacher.sample(512, rng=100 + int(p["draw"]))
        return tr.weight_decay_sweep(sample, _weight_decays(p), **PAPER_NET, lr=PAPER_LR, test=teacher, rng=rng,
                                     quiet=True)
    if experiment.startswith("e2_"):
        return _e2(experiment, p, teacher, data, test, rng)
    if experiment.startswith("n5_fresh"):
        return M.fresh_convergence(data, test, init_fan=p["init_fan"], n_seeds=p["n_seeds"], epochs=p["epochs"],
                                   lr=PAPER_LR, batch_size=PAPER_BATCH_SIZE, weight_decay=PAPER_WEIGHT_DECAY, rng=rng)
    if experiment == "n6_draws":
        return M.trap_draws(teacher, n_draws=p["n_draws"])
    if experiment == "n12_noise":
        return M.noise_at_trap(data, weight_decay=PAPER_WEIGHT_DECAY, seeds=N12_NOISE_SEEDS)
    if experiment == "n12_runs":
        return M.escape_drivers(data, test, weight_decay=PAPER_WEIGHT_DECAY, seeds=M.N12_SEEDS,
                                temperature=M.N12_TEMPERATURE, n_seeds=p["n_seeds"], epochs=p["epochs"], lr=PAPER_LR,
                                batch_size=PAPER_BATCH_SIZE, rng=rng)
    if experiment == "e4_paper":
        s_trap, s_sweep, s_init = rng.spawn(3)
        trap = tr.prepare_trap(data, trap_weight_decays=(0.0, tr.trap_weight_decay(data, 1, n_layers=3)),
                               trap_epochs=tuple(p["trap_epochs"]), **PAPER_NET, lr=PAPER_LR,
                               batch_size=PAPER_BATCH_SIZE, init=M.fresh_init(data, p["n_seeds"], s_init, "width"),
                               rng=s_trap)
        lev = tr.mse_levels(data, PAPER_WEIGHT_DECAY, n_layers=3, test=test)
        return tr.arrhenius_sweep(data, trap, lr=[5e-4, 1e-3, 2e-3, 3e-3, 5e-3], batch_size=PAPER_BATCH_SIZE,
                                  target_weight_decay=PAPER_WEIGHT_DECAY, epochs=p["epochs"], levels=(lev[1], lev[2]),
                                  test=test, log_every=max(1, p["epochs"] // 2000), rng=s_sweep, quiet=True)
    if experiment == "e4_corrected":
        wd = corrected_weight_decay(data)
        # the same checkpoint for every batch size: its seed does not depend on the task
        trap = tr.prepare_trap(data, trap_weight_decays=(0.0, wd), trap_epochs=(300, 300), **PAPER_NET,
                               lr=PAPER_LR, batch_size=PAPER_BATCH_SIZE,
                               init=M.fresh_init(data, p["n_seeds"], np.random.SeedSequence(4243), "width"),
                               rng=np.random.SeedSequence(4242))
        lev = tr.mse_levels(data, wd, n_layers=3, test=test)
        # escapes by the rank criterion: under reshuffling the test MSE crosses its midpoint in short
        # excursions while the weak mode stays learned; the test-MSE rule's epochs are kept beside it
        return tr.arrhenius_sweep(data, trap, lr=0.1, batch_size=[p["batch_size"]], target_weight_decay=wd,
                                  epochs=p["epochs"], levels=(lev[2], lev[1]), test=test, criterion=E4_CRITERION,
                                  rng=rng, quiet=True)
    if experiment == "e5":
        return tr.sparse_grokking(teacher, pool_size=p["pool_size"], test_size=p["test_size"],
                                  trap_epochs=tuple(p["trap_epochs"]), batch_size=(64, 5), n_seeds=p["n_seeds"],
                                  epochs=p["epochs"], **PAPER_E5, rng=rng, quiet=True)
    if experiment == "predict_replacement":
        from ._predicted import replacement_point
        return replacement_point(p, rng)
    if experiment == "predict_shuffle":
        from ._predicted import shuffle_point
        return shuffle_point(p, rng)
    if experiment == "predict_injected":
        from ._predicted import injected_point
        return injected_point(p, rng)
    if experiment == "langevin_chain":
        from ..langevin import Threshold, chain, simulate
        L = th.landscape(3, ETA[1], 0.32, convention="paper")
        level = 0.5 * (float(L.lam_saddle) + float(L.lam_min))
        pot = chain(n_layers=3, c=ETA[1], gamma=0.32, convention="paper")
        T = float(p["temperature"])
        tau = th.eyring_kramers_time(3, ETA[1], 0.32, T, convention="paper")
        return simulate(pot, [0.0, 0.0, 0.0], temperature=T, dt=0.02, n_traj=int(p["n_traj"]),
                        max_steps=int(min(5e6, 20 * tau / 0.02)), stop=Threshold(level), rng=rng)
    raise ValueError(f"unknown experiment {experiment!r}")
