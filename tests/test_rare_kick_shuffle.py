"""The kick estimator for reshuffled epochs (kick_escape(..., sampling="shuffle"), docs/rare.md)."""

import itertools
from dataclasses import replace

import numpy as np
import pytest
from test_rare_kick import (  # the same chain, data and well as the replacement tests
    B0,
    INIT,
    SGD,
    TARGET,
    X,
    Y,
    _well,
)

from phasetools.rare import KickOptions, TrainingEngine, kick_escape
from phasetools.rare._kick import _Kicker, _Sets
from phasetools.rare._kick_shuffle import _exit_draws, shuffle_draws
from phasetools.rare._training import SharpnessScore
from phasetools.training import as_moments, resolve_training_convention

SMALL = KickOptions(n_chains=3, burn_in_epochs=1, n_epochs=1, thin=63, n_draws=2, n_continue=2)


def test_sequential_draws_without_replacement_have_mean_one_weights():
    gen = np.random.default_rng(0)
    logw = 2.0 * gen.normal(size=9)
    idx, w = shuffle_draws(logw, 3, 100_000, defensive=0.1, gen=gen)
    assert idx.shape == (100_000, 3) and np.all(np.diff(np.sort(idx, axis=1), axis=1) > 0)   # no repeats
    assert w.max() <= 1 / 0.1 + 1e-12 and w.min() > 0
    assert abs(w.mean() - 1.0) < 4 * w.std() / np.sqrt(w.size), w.mean()


def test_kick_probability_from_a_mid_epoch_state_matches_enumerating_the_unused_samples():
    """Tiny data (8 samples, B = 2, 4 steps per epoch), a state one step into its epoch with
    samples 0 and 1 used: P(one step lifts sv1 above a level) by enumerating every pair of the
    6 unused samples (the next batch is a uniform pair of them), against the tilted draws
    without replacement weighted by their likelihood ratios; the post-step states carry the
    epoch's position and mask."""
    gen = np.random.default_rng(1)
    Xs = gen.normal(size=(8, 1)) * np.array([[3.0], [3.0], [1.0], [1.0], [1.0], [1.0], [1.0], [3.0]])
    Ys = 0.8 * Xs + 0.3 * gen.normal(size=(8, 1))
    lr = 0.1
    eng = TrainingEngine((Xs, Ys), n_layers=3, width=1, lr=lr, weight_decay=0.32, batch_size=2, sampling="shuffle",
                         convention="paper", coordinate=lambda M: M[:, 0, 0], sign=1.0, shapes=[(1, 1)] * 3)
    x = eng.state(np.full(3, np.cbrt(0.5)))
    x[eng.n_weights], x[eng.n_weights + 1] = 1.0, 2.0**0 + 2.0**1           # position 1, samples 0 and 1 used
    sets = _Sets(0, 0.01, (0.2, 5.0))
    score = SharpnessScore(0.01, [np.full((1, 1), np.cbrt(0.5))] * 3, as_moments((Xs, Ys)).input_cov)
    kappa = resolve_training_convention("paper", 1).kappa
    kicker = _Kicker(eng, Xs, Ys, lr=lr, weight_decay=0.32, kappa=kappa, batch_size=2, score=score, sets=sets,
                     aim=float(np.log(1.0 / (2.0 * kappa * lr))), defensive=0.2)
    ys = kicker.per_sample(x[None, :3])[0]
    post_sv = lambda idx: np.prod(ys[idx].mean(axis=-2), axis=-1)           # balanced width-1 chain: sv1 = product
    pairs = np.array(list(itertools.combinations(range(2, 8), 2)))
    level = np.sort(post_sv(pairs))[-2] - 1e-9                              # the two largest of 15 pairs
    exact = np.mean(post_sv(pairs) > level)
    assert exact == pytest.approx(2 / 15)
    # the kick probability of the true next batch, also for samples 0 and 1 allowed, differs
    every = np.array(list(itertools.combinations(range(8), 2)))
    assert abs(np.mean(post_sv(every) > level) - exact) > 0.02
    post, w, _, _ = _exit_draws(kicker, eng, x[None, None, :], np.ones((1, 1), bool), 40_000, gen)
    hits = w * (np.prod(post[:, :3], axis=1) > level)
    est, se = hits.mean(), hits.std() / np.sqrt(hits.size)
    assert abs(est - exact) < 3.5 * se and se < 0.05 * exact, (est, se, exact)
    assert np.all(post[:, 3] == 2.0)
    used = np.array([eng.used(p) for p in post[:100]])
    assert np.all(used.sum(axis=1) == 4) and np.all(used[:, :2])


def test_kick_escape_shuffle_is_seeded_and_records_its_sampling():
    kw = dict(**SGD, lr=0.11, target=TARGET, well=_well(0.11), sampling="shuffle", options=SMALL)
    a = kick_escape((X, Y), INIT, rng=3, **kw)
    b = kick_escape((X, Y), INIT, rng=3, **kw)
    assert a.options["sampling"] == "shuffle" and a.n_states > 0 and a.n_draws == a.n_in_well * 2
    assert np.array_equal(a.k_chains, b.k_chains, equal_nan=True)
    assert a.weight_mean > 0 and np.isfinite(a.k)
    with pytest.raises(ValueError, match="continuation"):
        kick_escape((X, Y), INIT, rng=3, **{**kw, "options": KickOptions(continuation="tilted")})


def test_replayed_rest_of_epoch_has_the_law_of_the_exact_engine():
    """From a mid-epoch state, the continuation's replay of the rest of the epoch (a uniform
    permutation of the unused samples, the trainer's step) ends the epoch with the same law of
    the weights as the exact reshuffled engine (TrainingEngine.advance), and its step on a batch
    is the mean of the per-sample steps."""
    from phasetools.rare._kick_shuffle import _batch_step, _finish_epochs
    gen = np.random.default_rng(2)
    Xs = gen.normal(size=(8, 1)) * np.array([[3.0], [3.0], [1.0], [1.0], [1.0], [1.0], [1.0], [3.0]])
    Ys = 0.8 * Xs + 0.3 * gen.normal(size=(8, 1))
    lr = 0.1
    kappa = resolve_training_convention("paper", 1).kappa
    eng = TrainingEngine((Xs, Ys), n_layers=3, width=1, lr=lr, weight_decay=0.32, batch_size=2, sampling="shuffle",
                         convention="paper", coordinate=lambda M: M[:, 0, 0], sign=1.0, shapes=[(1, 1)] * 3)
    x = eng.state(np.array([0.9, 0.8, 0.7]))
    x[3], x[4] = 1.0, 2.0**0 + 2.0**7                                        # position 1, samples 0 and 7 used
    sets = _Sets(0, 0.001, (10.0, 20.0))                                    # neither A nor B is reached
    kicker = _Kicker(eng, Xs, Ys, lr=lr, weight_decay=0.32, kappa=kappa, batch_size=2, score=None, sets=sets,
                     aim=0.0, defensive=0.2)
    batch = np.array([[2, 5], [1, 1], [3, 6]])
    ys = kicker.per_sample(np.repeat(x[None, :3], 3, axis=0))
    assert np.allclose(_batch_step(kicker, np.repeat(x[None, :3], 3, axis=0), batch),
                       np.take_along_axis(ys, batch[:, :, None], axis=1).mean(axis=1), rtol=1e-12)
    ends, out, cost = _finish_epochs(kicker, eng, np.repeat(x[None], 4000, axis=0), gen)
    assert np.all(out == 0) and cost == 4000 * 3 and np.all(ends[:, 3:] == 0)
    ref = eng.advance(np.repeat(x[None], 300, axis=0), eng.streams(1, np.arange(300)), 3, -np.inf)[0]
    for j in range(3):
        a, b = ends[:, j], ref[:, j]
        se = np.sqrt(a.var() / a.size + b.var() / b.size)
        assert abs(a.mean() - b.mean()) < 4 * se, (j, a.mean(), b.mean(), se)
        assert b.std() == pytest.approx(a.std(), rel=0.25)
    # the law depends on the mask: the same state with samples 2 and 3 used instead ends elsewhere
    y = x.copy()
    y[4] = 2.0**2 + 2.0**3
    other = _finish_epochs(kicker, eng, np.repeat(y[None], 4000, axis=0), gen)[0]
    assert abs(other[:, 0].mean() - ends[:, 0].mean()) > 4 * np.sqrt(2 / 4000) * ends[:, 0].std()


@pytest.mark.slow   # 8 minutes at a load of 8 on 2 cores (84 s at load 3) (the estimator, 64 continuation runs; 100 brute-force runs)
@pytest.mark.long   # outside the default run (pytest -m long), like the replacement check of test_rare_kick.py
def test_shuffle_kick_escape_agrees_with_brute_force_at_lr_0_1():
    """lr 0.1, B = 4, reshuffled epochs, backward to lam_saddle / 2 (brute force about 740 epochs,
    docs/rare.md): the kick estimate (the default random phase) agrees with the brute-force tau of
    the exact reshuffled engine (every step checked) within 2.5 combined standard errors in ln tau,
    at a fraction of its cost (measured: 824 [729, 947] against 738.6 +- 74.2)."""
    from phasetools.rare import excursions
    from phasetools.stats import exponential_mle

    res = kick_escape((X, Y), INIT, **SGD, lr=0.1, target=TARGET, well=_well(0.1), sampling="shuffle", rng=1,
                      options=KickOptions(kick=1.0, n_continue=64, thin=33))
    eng = TrainingEngine((X, Y), **SGD, lr=0.1, sampling="shuffle", convention="paper",
                         coordinate=lambda M: np.linalg.svd(M, compute_uv=False)[:, 0], sign=-1.0,
                         shapes=[(1, 1)] * 3)
    n = 100
    x = eng.state(np.repeat(np.asarray(B0)[None, :], n, axis=0))
    ex = excursions(eng, x, eng.streams(5, np.arange(n)), low=-np.inf, high=-TARGET, max_steps=3000 * 128,
                    chunk=eng.max_chunk)
    brute = exponential_mle(ex.steps * eng.time_unit, ex.outcome != 2)
    print(f"kick {res.tau:.4g} [{res.tau_lower:.4g}, {res.tau_upper:.4g}] top share {res.top_share:.3f}; "
          f"brute force {brute.tau:.4g} +- {brute.tau_stderr:.3g}")
    d = res.options["defensive"]              # weights in (0, 1 / d], mean 1: variance at most 1 / d - 1
    assert res.tau_stderr / res.tau < 0.3 and abs(res.weight_mean - 1) < 4 * np.sqrt((1 / d - 1) / res.n_draws)
    assert res.top_share < 0.1
    assert abs(np.log(res.tau / brute.tau)) < 2.5 * np.hypot(res.tau_stderr / res.tau,
                                                              brute.tau_stderr / brute.tau)
    assert res.cost["total"] < 0.1 * ex.cost


def test_thin_and_n_continue_defaults_depend_on_the_sampling():
    """None -> replacement: thin 32, n_continue 4 (the documented runs' bits); shuffle: the
    smallest thin >= 32 coprime to the steps per epoch (33 for 128) and n_continue 256."""
    from phasetools.rare._kick import _resolve_options

    rep = _resolve_options(KickOptions(), "replacement", 128)
    assert (rep.thin, rep.n_continue) == (32, 4)
    for spe, thin in ((128, 33), (64, 33), (30, 37), (96, 35), (33, 32)):
        opts = _resolve_options(KickOptions(), "shuffle", spe)
        assert (opts.thin, opts.n_continue) == (thin, 256), spe
    kept = _resolve_options(KickOptions(thin=65, n_continue=8), "shuffle", 128)
    assert (kept.thin, kept.n_continue) == (65, 8)
    for bad in (32, 64, 2):
        with pytest.raises(ValueError, match=r"thin must be coprime to the steps per epoch \(128\).*gcd"):
            _resolve_options(KickOptions(thin=bad), "shuffle", 128)
    assert _resolve_options(KickOptions(thin=64), "replacement", 128).thin == 64


def test_shuffle_run_refuses_a_thin_sharing_a_factor_and_records_the_resolved_defaults():
    """kick_escape(sampling="shuffle") with thin=32 (positions 0, 32, 64, 96 only) is refused
    naming thin and the 128 steps per epoch; with the defaults it stores thin 33, n_continue 256."""
    kw = dict(**SGD, lr=0.11, target=TARGET, well=_well(0.11), sampling="shuffle")
    with pytest.raises(ValueError, match=r"thin.*\(128\)"):
        kick_escape((X, Y), INIT, rng=3, **kw, options=KickOptions(n_chains=2, n_epochs=1, thin=32))
    small = {"n_chains": 2, "burn_in_epochs": 0, "n_epochs": 1, "n_draws": 1, "max_steps": 64}
    res = kick_escape((X, Y), INIT, rng=3, **kw, options=KickOptions(**small, phase="fixed"))
    assert res.options["thin"] == 33 and res.options["n_continue"] == 256 and res.options["phase"] == "fixed"
    assert res.n_states == 2 * 3                               # steps 32, 65, 98 of the 128 of each chain
    assert res.n_reached + res.n_censored <= 256 * res.n_outside
    rnd = kick_escape((X, Y), INIT, rng=3, **kw, options=KickOptions(**small))
    assert rnd.options["phase"] == "random"
    assert rnd.n_states < 2 * 3                                # shifted steps past the epoch's end are dropped


def test_phase_defaults_to_random_with_shuffle_and_fixed_with_replacement():
    """phase None -> "random" reshuffled, "fixed" with replacement (its runs keep their bits);
    an explicit value is kept, anything else is refused naming phase."""
    from phasetools.rare._kick import _resolve_options

    assert _resolve_options(KickOptions(), "shuffle", 128).phase == "random"
    assert _resolve_options(KickOptions(), "replacement", 128).phase == "fixed"
    assert _resolve_options(KickOptions(phase="fixed"), "shuffle", 128).phase == "fixed"
    assert _resolve_options(KickOptions(phase="random"), "replacement", 128).phase == "random"
    with pytest.raises(ValueError, match="phase must be None, 'fixed' or 'random'"):
        KickOptions(phase="shifted")


def test_random_phase_spreads_the_kept_states_over_every_position_in_the_epoch():
    """A tiny reshuffled chain (4 steps per epoch) kept every 8 steps: with the fixed phase every
    kept state of every chain sits at position 0; with phase="random" (a seeded offset per chain,
    uniform in [0, 4)) the kept states of 16 chains cover all 4 positions, each chain keeping one
    position class, and the offsets are reproducible from the seed."""
    from phasetools._rng import seed_sequence
    from phasetools.rare._kick import _phase_offsets, _qsd

    gen = np.random.default_rng(4)
    Xs = gen.normal(size=(8, 1))
    Ys = 0.8 * Xs + 0.3 * gen.normal(size=(8, 1))
    sets = _Sets(0, 1e-3, (1e-2, 1e2))                                      # the chains stay in the well
    eng = TrainingEngine((Xs, Ys), n_layers=3, width=1, lr=0.05, weight_decay=0.32, batch_size=2,
                         sampling="shuffle", convention="paper", coordinate=sets, sign=1.0, shapes=[(1, 1)] * 3,
                         exact_epochs=True, n_threads=1)
    x0 = eng.state(np.full(3, np.cbrt(0.5)))
    nw, spe = eng.n_weights, eng.steps_per_epoch
    assert spe == 4
    opts = KickOptions(n_chains=16, burn_in_epochs=1, n_epochs=6, thin=8)
    fixed, valid, _ = _qsd(eng, x0, opts, 7, sets)
    assert valid.all() and np.all(fixed[:, :, nw] == 0)
    off = _phase_offsets(replace(opts, phase="random"), seed_sequence(3), spe)
    assert np.array_equal(off, _phase_offsets(replace(opts, phase="random"), seed_sequence(3), spe))
    assert _phase_offsets(replace(opts, phase="fixed"), seed_sequence(3), spe) is None
    states, valid, _ = _qsd(eng, x0, opts, 7, sets, off)
    pos = np.where(valid, states[:, :, nw], -1)
    assert set(pos[valid].astype(int)) == set(range(spe))
    for c in range(opts.n_chains):
        assert np.all(pos[c, valid[c]] == off[c] % spe)
    assert np.all(valid.sum(axis=1) >= valid.shape[1] - 1)                  # at most the last step falls off


def test_fixed_phase_reproduces_the_runs_made_before_the_phase_option():
    """phase="fixed" with sampling="shuffle" gives the bits of the runs before ``phase`` existed
    (the stored sweep of docs/rare.md used them): k of each chain, states, draws and cost."""
    o = KickOptions(n_chains=3, burn_in_epochs=1, n_epochs=2, thin=33, n_draws=4, n_continue=16, phase="fixed")
    r = kick_escape((X, Y), INIT, **SGD, lr=0.11, target=TARGET, well=_well(0.11), sampling="shuffle", rng=3,
                    options=o, n_threads=1)
    assert r.k_chains.tolist() == [1.821638360968061e-08, 0.00012296666175250697, 2.837190286473034e-05]
    assert (r.n_states, r.n_outside, r.n_reached, r.weight_mean) == (21, 36, 11, 1.299368706705832)
    assert r.cost == {"qsd": 1152, "continue": 974, "total": 2126}
