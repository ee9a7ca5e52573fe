"""Experiments of the reproduction that return :class:`phasetools.compare.Measurement` results.

N5 (convergence of fresh weights), N6 (the paper's 0.361 checkpoint over many data draws)
and N12 (the gradient noise on the unlearned feature at a trapped state, and what starts the
escape). Each is a sweep task of :func:`phasetools.reproduce.run_experiment`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["INIT_READINGS", "fresh_init", "fresh_convergence", "trap_draws", "first_trap_draw", "noise_at_trap",
           "escape_drivers", "N6_DRAW_BASE", "N12_SEEDS", "N12_TEMPERATURE"]

#: The paper's N(0, 1/sqrt(w)) read as a standard deviation 1/sqrt(w) in every layer ("width",
#: the literal reading, the default) or 1/sqrt(fan_in) ("fan_in", the sensitivity column).
INIT_READINGS = ("width", "fan_in")
#: Data draws of the N6 distribution use rng = N6_DRAW_BASE + k.
N6_DRAW_BASE = 5000
#: Residual seeds (per layer, on the unlearned feature) of the N12 runs; 0 = exactly rank 1. The
#: last lies above the saddle's seed (about 0.44 on the E2 draw): a deterministic escape.
N12_SEEDS = (0.0, 1e-3, 1e-2, 0.6)
#: Injected isotropic noise (the trainer's temperature, paper units) of the N12 runs.
N12_TEMPERATURE = 0.01


def fresh_init(data, n_seeds, rng, init_fan, *, n_layers=3, width=10):
    """Fresh random weights (``std 1/sqrt(f)``, ``f`` from ``init_fan``) as a run of 0 epochs.

    Parameters
    ----------
    data : Dataset
        The training data (fixes the input and output dimensions).
    n_seeds : int
        Independent draws.
    rng : SeedSequence or int
        Their stream.
    init_fan : {"width", "fan_in"}
        The reading of the paper's initialisation.
    n_layers, width : int
        The network.

    Returns
    -------
    TrainingRun
        Pass it as ``init`` to a trainer or a protocol.
    """
    from ..training import train
    return train(data, n_layers=n_layers, width=width, epochs=0, lr=0.08, weight_decay=0.0, convention="paper",
                 init="std", init_fan=init_fan, n_seeds=n_seeds, rng=rng)


def _settle_epoch(curve, final, frac):
    """First epoch after which ``curve`` stays within ``frac`` of ``final`` (relative)."""
    out = np.abs(curve - final) > frac * abs(final)
    idx = np.nonzero(out)[0]
    return 0 if idx.size == 0 else int(idx[-1]) + 1


def _entry_epoch(curve, final, frac):
    """First epoch at which ``curve`` comes within ``frac`` of ``final`` (relative)."""
    inside = np.abs(curve - final) <= frac * abs(final)
    return int(np.argmax(inside)) if inside.any() else None


def fresh_convergence(data, test, *, init_fan, n_seeds, epochs, lr, batch_size, weight_decay, rng):
    """N5: fresh weights trained at ``weight_decay``; when does the test MSE settle?

    Parameters
    ----------
    data, test : Dataset
        Training samples and test set.
    init_fan : {"width", "fan_in"}
        The initialisation reading.
    n_seeds, epochs : int
        Runs and epochs (logged every epoch).
    lr, weight_decay : float
        SGD settings (paper convention).
    batch_size : int
        Minibatch size (random reshuffling each epoch).
    rng : SeedSequence
        Stream of the initial weights and the batches.

    Returns
    -------
    Measurement
        Per seed: the epochs at which the test MSE first comes within 5 % and 1 % of its final
        value (the mean of the last 20 % of epochs; ``settle_5``, ``settle_1``) and after
        which it stays there (``stay_5``, ``stay_1``: minibatch noise moves the test MSE by
        about 1 %), the first crossing of the rank-1/rank-2 midpoint, the final rank; and the
        test-MSE curves.
    """
    from ..compare import Measurement
    from ..training import RANK_THRESHOLD, mse_levels, train
    s_init, s_run = rng.spawn(2)
    init = fresh_init(data, n_seeds, s_init, init_fan)
    run = train(data, n_layers=3, width=10, epochs=epochs, lr=lr, weight_decay=weight_decay, batch_size=batch_size,
                convention="paper", init=init, test=test, log_every=1, layer_log_every=epochs, rng=s_run)
    lev = mse_levels(data, weight_decay, n_layers=3, test=test)
    mid = 0.5 * (lev[1] + lev[2])
    tail = max(1, epochs // 5)
    curves = np.asarray(run.test_mse, dtype=float)
    final = curves[:, -tail:].mean(axis=1)
    s5 = [_entry_epoch(c, f, 0.05) for c, f in zip(curves, final)]
    s1 = [_entry_epoch(c, f, 0.01) for c, f in zip(curves, final)]
    stay5 = [_settle_epoch(c, f, 0.05) for c, f in zip(curves, final)]
    stay1 = [_settle_epoch(c, f, 0.01) for c, f in zip(curves, final)]
    cross = [int(np.argmax(c < mid)) if (c < mid).any() else None for c in curves]
    rank = np.sum(np.asarray(run.singular_values)[:, -1] > RANK_THRESHOLD, axis=1)
    how = (f"SGD lr {lr:g}, B = {batch_size} (reshuffled each epoch), weight decay {weight_decay:g}, float64, "
           f"{n_seeds} seeds, N = {data.n_samples}, init std 1/sqrt({'width' if init_fan == 'width' else 'fan_in'})"
           f"{' in every layer' if init_fan == 'width' else ''}; test MSE every epoch for {epochs} epochs")
    return Measurement("n5_fresh", how, dict(init_fan=init_fan, settle_5=s5, settle_1=s1, stay_5=stay5, stay_1=stay1,
                                            midpoint_crossing=cross,
                                            final_test_mse=final, final_rank=rank, midpoint=mid, levels=lev,
                                            test_mse=curves[:, : min(epochs + 1, 201)]))


def trap_draws(teacher, *, n_draws, n_samples=512, n_layers=3):
    """N6: the weak- and strong-mode spinodals of ``n_draws`` independent data draws.

    Draw ``k`` is ``teacher.sample(n_samples, rng=N6_DRAW_BASE + k)``; its spinodals come from
    the per-mode theory on its empirical spectrum (``critical_points`` with the draw's ``a``).

    Parameters
    ----------
    teacher : GaussianTeacher
        The data model.
    n_draws : int
        Number of draws.
    n_samples : int
        Samples per draw.
    n_layers : int
        Depth of the theory.

    Returns
    -------
    Measurement
        ``weak_sp``, ``strong_sp``, ``weak_coexistence`` per draw.
    """
    from ..compare import Measurement
    from ..theory import critical_points
    weak, strong, weak_c = [], [], []
    for k in range(int(n_draws)):
        m = teacher.sample(n_samples, rng=N6_DRAW_BASE + k).moments()
        cp = critical_points(n_layers, m.spectrum, m.a, convention="paper")
        sp, gc = np.asarray(cp.gamma_sp, dtype=float), np.asarray(cp.gamma_c, dtype=float)
        order = np.argsort(sp)
        weak.append(sp[order[0]])
        strong.append(sp[order[1]])
        weak_c.append(gc[order[0]])
    how = (f"{n_draws} draws of N = {n_samples} (rng {N6_DRAW_BASE} + k); spinodals from the per-mode theory on "
           "each draw's empirical spectrum (no training)")
    return Measurement("n6_draws", how, dict(weak_sp=weak, strong_sp=strong, weak_coexistence=weak_c,
                                            draw_base=N6_DRAW_BASE))


def is_rank1_trap(weak_sp, strong_sp, trap=0.361, target=0.32):
    """Does a checkpoint converged at ``trap`` hold a rank-1 trap for a release at ``target``?

    Parameters
    ----------
    weak_sp, strong_sp : float or array
        The draw's spinodals (weak and strong mode).
    trap, target : float
        The checkpoint's and the release's weight decays.

    Returns
    -------
    bool or array of bool
        True where the checkpoint has lost the weak mode only (``weak_sp < trap < strong_sp``)
        and the weak mode's learned state exists at the target (``weak_sp > target``).
    """
    weak_sp, strong_sp = np.asarray(weak_sp, dtype=float), np.asarray(strong_sp, dtype=float)
    return (weak_sp < trap) & (trap < strong_sp) & (weak_sp > target)


def first_trap_draw(teacher, *, n_samples=512, max_draws=1000):
    """The first draw of the N6 sequence on which the paper's 0.361 checkpoint is a rank-1 trap.

    Parameters
    ----------
    teacher : GaussianTeacher
        The data model.
    n_samples : int
        Samples per draw.
    max_draws : int
        Draws tried.

    Returns
    -------
    int
        The draw's rng (``N6_DRAW_BASE + k``).
    """
    from ..theory import critical_points
    for k in range(max_draws):
        m = teacher.sample(n_samples, rng=N6_DRAW_BASE + k).moments()
        sp = np.sort(np.asarray(critical_points(3, m.spectrum, m.a, convention="paper").gamma_sp, dtype=float))
        if is_rank1_trap(sp[0], sp[1]):
            return N6_DRAW_BASE + k
    raise ValueError(f"no rank-1 trap draw among the first {max_draws}")  # pragma: no cover


# -- N12 ------------------------------------------------------------------------------------------
def _weak_mode(data, weight_decay):
    """(U, Vt, learned per-layer magnitude of the strong mode, weak-mode lam_saddle, lam_min) of the draw."""
    from ..theory import landscape
    m = data.moments()
    U, _, Vt = np.linalg.svd(m.cross_cov)
    L = landscape(3, m.spectrum, weight_decay, m.a, convention="paper")
    lam_min = np.asarray(L.lam_min, dtype=float).ravel()
    lam_s = np.asarray(L.lam_saddle, dtype=float).ravel()
    order = np.argsort(np.asarray(m.spectrum, dtype=float))[::-1]   # strong, weak
    return U, Vt, float(lam_min[order[0]]) ** (1 / 3), float(lam_s[order[1]]), float(lam_min[order[1]])


def trapped_state(U, Vt, b, eps, width=10):
    """A balanced rank-1 state of the 3-layer network with residual seed ``eps`` on the weak feature.

    Hidden unit 0 carries the learned (strong) feature with per-layer magnitude ``b``, hidden
    unit 1 the unlearned (weak) one with per-layer magnitude ``eps``; every other weight is 0.

    Parameters
    ----------
    U, Vt : ndarray (2, 2)
        Output and input singular vectors of the data's cross-covariance (strong first).
    b, eps : float
        Per-layer magnitudes of the learned and the unlearned feature.
    width : int
        Hidden width.

    Returns
    -------
    list of ndarray
        ``[W1, W2, W3]``.
    """
    W1, W2, W3 = np.zeros((width, 2)), np.zeros((width, width)), np.zeros((2, width))
    for k, m in ((0, b), (1, eps)):
        W1[k] = m * Vt[k]
        W2[k, k] = m
        W3[:, k] = m * U[:, k]
    return [W1, W2, W3]


def _directions(U, Vt, width=10):
    """Unit vectors of the weak feature in each layer's flattened weights (W1, W2, W3)."""
    sizes = (2 * width, width * width, 2 * width)
    out = []
    for layer in range(3):
        W = [np.zeros((width, 2)), np.zeros((width, width)), np.zeros((2, width))]
        W[layer] = trapped_state(U, Vt, 0.0, 1.0, width)[layer]
        p = np.concatenate([w.ravel() for w in W])
        out.append(p / np.linalg.norm(p))
    assert sum(sizes) == out[0].size
    return out


def noise_at_trap(data, *, weight_decay, seeds):
    """N12: per-sample gradient-noise variance on every layer's weak-feature direction against the seed.

    Parameters
    ----------
    data : Dataset
        The training samples (their own fourth moments: ``gradient_covariance(moments="data")``).
    weight_decay : float
        The release's weight decay (the pull-back ``weight_decay * eps`` is reported beside).
    seeds : sequence of float
        Residual seeds ``eps`` (per layer) on the weak feature.

    Returns
    -------
    Measurement
        ``projection[layer][k]`` = ``p^T Sigma p`` (paper convention) at seed ``seeds[k]``,
        the mean data gradient along ``p`` and the weight-decay pull ``weight_decay * eps``.
    """
    from ..compare import Measurement
    from ..training import gradient_covariance
    U, Vt, b, lam_s, lam_m = _weak_mode(data, weight_decay)
    dirs = _directions(U, Vt)
    proj, drift = [[] for _ in dirs], [[] for _ in dirs]
    for eps in seeds:
        g = gradient_covariance(trapped_state(U, Vt, b, float(eps)), data, convention="paper")
        for k, p in enumerate(dirs):
            proj[k].append(float(p @ g.covariance @ p))
            drift[k].append(float(p @ g.mean))
    how = (f"balanced rank-1 state of the 3-layer width-10 network on the E2 draw (N = {data.n_samples}), learned "
           f"feature at its theory value, weak feature seeded with eps per layer; per-sample gradient covariance of "
           f"the paper's loss over the N samples, float64")
    return Measurement("n12_noise", how, dict(seeds=list(seeds), projection=proj, data_gradient=drift,
                                             pull=[weight_decay * float(e) for e in seeds], b_learned=b,
                                             lam_saddle=lam_s, lam_min=lam_m, seed_saddle=lam_s ** (1 / 3),
                                             weight_decay=weight_decay))


def _drivers(seeds, temperature):
    rows = []
    for eps in seeds:
        for sampling in ("shuffle", "replacement", "full"):
            rows.append(dict(seed=eps, sampling=sampling, temperature=0.0))
    for sampling in ("shuffle", "full"):
        rows.append(dict(seed=0.0, sampling=sampling, temperature=temperature))
    return rows


def escape_drivers(data, test, *, weight_decay, seeds, temperature, n_seeds, epochs, lr, batch_size, rng):
    """N12: what starts the escape from the trapped rank-1 state?

    Pure SGD (random reshuffling, sampling with replacement, full batch) from each residual
    seed in ``seeds`` (0 = exactly rank 1), and SGD or full-batch descent with injected
    isotropic noise (``temperature``) from the exact rank-1 state.

    Parameters
    ----------
    data, test : Dataset
        Training samples and test set.
    weight_decay, lr : float
        The release's weight decay and learning rate (paper convention).
    seeds : sequence of float
        Residual seeds.
    temperature : float
        The injected noise (paper units).
    n_seeds, epochs : int
        Runs per driver and their epochs.
    batch_size : int
        Minibatch size of the minibatch drivers.
    rng : SeedSequence
        Root of the drivers' streams.

    Returns
    -------
    Measurement
        Per driver: seed, sampling, temperature, runs escaped (weak-mode end-to-end singular
        value above the midpoint of its saddle and learned values), escape epochs, the
        largest weak singular value seen.
    """
    from ..compare import Measurement
    from ..training import train
    U, Vt, b, lam_s, lam_m = _weak_mode(data, weight_decay)
    level = 0.5 * (lam_s + lam_m)
    rows = _drivers(seeds, temperature)
    streams = rng.spawn(len(rows))
    log_every = max(1, epochs // 400)
    for row, s in zip(rows, streams):
        init = [np.repeat(w[None], n_seeds, axis=0) for w in trapped_state(U, Vt, b, row["seed"])]
        full = row["sampling"] == "full"
        run = train(data, n_layers=3, width=10, epochs=epochs, lr=lr, weight_decay=weight_decay,
                    batch_size=None if full else batch_size, sampling=row["sampling"], convention="paper",
                    init=init, test=test, temperature=row["temperature"], log_every=log_every,
                    layer_log_every=epochs, rng=s)
        sv = np.asarray(run.singular_values, dtype=float)[:, :, 1]
        up = sv > level
        row.update(escaped=int(up.any(axis=1).sum()), n_runs=n_seeds,
                   escape_epoch=[int(run.log_epochs[np.argmax(u)]) if u.any() else None for u in up],
                   max_weak_sv=float(np.nanmax(sv)), batch_size=None if full else batch_size)
    how = (f"release at weight decay {weight_decay:g}, lr {lr:g}, {n_seeds} runs x {epochs} epochs per driver, "
           f"float64, from the balanced rank-1 state (weak-feature seed eps per layer); escape = weak end-to-end "
           f"singular value above {level:.3g} (midpoint of its saddle {lam_s:.3g} and learned {lam_m:.3g} values)")
    return Measurement("n12_runs", how, dict(drivers=rows, level=level, epochs=epochs, lr=lr,
                                            weight_decay=weight_decay, seed_saddle=lam_s ** (1 / 3)))
