"""The kick estimator of SGD escapes with replacement (phasetools.rare.kick_escape, docs/rare.md)."""

import itertools

import numpy as np
import pytest

from phasetools.langevin import escape_problem
from phasetools.rare import (
    KickEscape,
    KickOptions,
    TrainingEngine,
    kick_escape,
    tilted_minibatches,
)
from phasetools.training import GaussianTeacher, per_sample_gradients, train

TARGET = 0.0462726          # lam_saddle / 2 of the paper's chain (eta 0.8, weight decay 0.32)
X, Y = GaussianTeacher([0.8]).sample(512, 1)
B0 = escape_problem("chain", n_layers=3, c=0.8, gamma=0.32, direction="bwd", convention="paper").x0
INIT = [np.full((1, 1), v) for v in B0]
SGD = {"n_layers": 3, "width": 1, "batch_size": 4, "weight_decay": 0.32}
SMALL = KickOptions(n_chains=4, burn_in_epochs=1, n_epochs=2, thin=64, n_draws=4, n_continue=2)


def _well(lr, level=0.7):
    """The well's top where lr * lambda_GN of a balanced chain is ``level``."""
    return 0.2, (level / (6 * lr * np.mean(X**2))) ** 0.75


def _per_sample_steps(eng, x, X, Y, lr, weight_decay, convention):
    """``y_i = x - lr (g_i + weight_decay x)`` for every sample ``i`` (``x (dim,)``, by
    :func:`phasetools.training.per_sample_gradients`): a minibatch step's result is their
    mean over the minibatch (an independent reference for the kicker's vectorised step)."""
    g = per_sample_gradients([w[0] for w in eng.layers(x[None])], X, Y, convention=convention)
    return x[None, :] - lr * (g + weight_decay * x[None, :])


def _engine(data, lr, batch_size):
    return TrainingEngine(data, n_layers=3, width=1, lr=lr, weight_decay=0.32, batch_size=batch_size,
                          sampling="replacement", convention="paper", coordinate=lambda M: M[:, 0, 0], sign=1.0,
                          shapes=[(1, 1)] * 3)


def test_likelihood_ratio_weights_average_one_and_are_bounded():
    gen = np.random.default_rng(0)
    scores = gen.normal(size=50) ** 3
    idx, w, theta = tilted_minibatches(scores, 2.0, 4, 200_000, defensive=0.1, gen=gen)
    assert theta > 0 and idx.shape == (200_000, 4)
    assert w.max() <= 1 / 0.1 + 1e-12 and w.min() > 0
    assert abs(w.mean() - 1.0) < 3 * w.std() / np.sqrt(w.size), w.mean()
    # the tilt moves the drawn samples' mean score towards the aim (mixture: 90 % tilted)
    assert scores[idx].mean() > 1.5
    # no tilt when the plain mean is above the aim: every weight is 1
    _, w0, t0 = tilted_minibatches(scores, -10.0, 4, 100, defensive=0.1, gen=gen)
    assert t0 == 0.0 and np.allclose(w0, 1.0)


def test_minibatch_step_is_the_mean_of_per_sample_steps_as_in_the_trainer():
    """The estimator builds a step's result as the mean of per-sample steps; the trainer's
    recorded steps (with their minibatch indices) are exactly that."""
    lr = 0.08
    run = train((X, Y), **SGD, lr=lr, epochs=1, sampling="replacement", convention="paper", init=INIT,
                record_steps=True, rng=5)
    eng = _engine((X, Y), lr, 4)
    x = np.asarray(run.step_params)[0, 0]
    for s, idx in enumerate(np.asarray(run.batch_indices)[0][:64]):
        ys = _per_sample_steps(eng, x, X, Y, lr, 0.32, "paper")
        x_next = ys[idx].mean(axis=0)
        assert np.allclose(x_next, np.asarray(run.step_params)[0, s + 1], rtol=1e-12, atol=1e-14)
        x = np.asarray(run.step_params)[0, s + 1]


def test_importance_sampled_kick_probability_matches_exact_enumeration():
    """Tiny data (6 samples, B = 3): P(one step lifts sv1 above a level) by enumerating all
    6^3 minibatches, against the tilted draws weighted by their likelihood ratios (q an indicator)."""
    gen = np.random.default_rng(1)
    Xs = gen.normal(size=(6, 1)) * np.array([[1.0], [1.0], [1.0], [1.0], [1.0], [3.0]])
    Ys = 0.8 * Xs + 0.3 * gen.normal(size=(6, 1))
    lr = 0.1
    eng = _engine((Xs, Ys), lr, 3)
    x = np.full(3, np.cbrt(0.5))
    ys = _per_sample_steps(eng, x, Xs, Ys, lr, 0.32, "paper")
    sv = np.prod(ys, axis=1)                                     # balanced width-1 chain: sv1 = product
    post = lambda idx: np.prod(ys[idx].mean(axis=-2), axis=-1)
    all_mb = np.array(list(itertools.product(range(6), repeat=3)))
    level = np.quantile(post(all_mb), 0.97)
    exact = np.mean(post(all_mb) > level)
    assert 0 < exact < 0.05
    idx, w, theta = tilted_minibatches(sv, level, 3, 40_000, defensive=0.2, gen=gen)
    hits = w * (post(idx) > level)
    est, se = hits.mean(), hits.std() / np.sqrt(hits.size)
    assert theta > 0 and abs(est - exact) < 3.5 * se, (est, se, exact)
    assert se < 0.1 * exact                                      # and the tilt pays: plain MC would be ~3x worse
    plain_se = np.sqrt(exact * (1 - exact) / hits.size)
    assert se < plain_se


def test_kick_escape_is_seeded_stored_and_sane():
    from phasetools import io

    kw = dict(**SGD, lr=0.1, target=TARGET, well=_well(0.1), options=SMALL)
    a = kick_escape((X, Y), INIT, rng=3, **kw)
    b = kick_escape((X, Y), INIT, rng=3, **kw)
    c = kick_escape((X, Y), INIT, rng=4, **kw)
    assert isinstance(a, KickEscape) and a.equal_values(b) and not a.equal_values(c)
    assert a.k_chains.shape == (4,) and a.n_states == 4 * (3 * 128 // 64 - 2)
    assert a.n_draws == 4 * a.n_in_well and 0 < a.weight_mean < 10
    assert a.steps_per_epoch == 128 and a.cost["total"] == a.cost["qsd"] + a.cost["continue"]
    assert a.k > 0 and a.n_chains_used == 4          # seed 3 has draws that reach the target
    assert a.tau == pytest.approx(1 / (a.k * 128)) and a.tau_lower <= a.tau <= a.tau_upper
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        io.save(a, f"{d}/k.h5", name="kick")
        back = io.load(f"{d}/k.h5", "kick")
    assert back.equal_values(a)


def test_kick_escape_refuses_bad_input():
    kw = dict(**SGD, lr=0.1, target=TARGET, options=SMALL, rng=1)
    with pytest.raises(ValueError, match="well"):
        kick_escape((X, Y), INIT, well=(1.0, 0.5), **{k: v for k, v in kw.items()})
    with pytest.raises(ValueError, match="well"):
        kick_escape((X, Y), INIT, well=(0.01, 1.0), **kw)
    with pytest.raises(ValueError, match="sampling"):
        kick_escape((X, Y), INIT, well=(0.2, 1.0), sampling="full", **kw)   # "shuffle": test_rare_kick_shuffle.py
    with pytest.raises(ValueError, match="mode"):
        kick_escape((X, Y), INIT, well=(0.2, 1.0), mode=1, **kw)
    with pytest.raises(ValueError, match="options"):
        kick_escape((X, Y), INIT, well=(0.2, 1.0), **{**kw, "options": {"n_chains": 4}})
    for bad in ({"n_chains": 1}, {"defensive": 0.0}, {"defensive": 1.0}, {"kick": -1.0}, {"thin": 0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            KickOptions(**bad)


@pytest.mark.slow   # 7 minutes at a load of 12 on 2 cores (1.2e5 steps of the estimator, 200 brute-force runs)
@pytest.mark.long   # minutes: outside the default run (pytest -m long), like the AMS check of tests/test_rare_sgd.py
def test_kick_escape_agrees_with_brute_force_at_lr_0_1():
    """lr 0.1, B = 4, backward to lam_saddle / 2 (brute force about 550 epochs, docs/rare.md):
    the kick estimate's interval contains the brute-force tau of the same trainer."""
    from phasetools.rare import excursions
    from phasetools.stats import exponential_mle

    res = kick_escape((X, Y), INIT, **SGD, lr=0.1, target=TARGET, well=_well(0.1), rng=1,
                      options=KickOptions(kick=1.0))
    eng = TrainingEngine((X, Y), **SGD, lr=0.1, sampling="replacement", convention="paper",
                         coordinate=lambda M: np.linalg.svd(M, compute_uv=False)[:, 0], sign=-1.0,
                         shapes=[(1, 1)] * 3)
    n = 200
    x = np.repeat(np.asarray(B0)[None, :], n, axis=0)
    ex = excursions(eng, x, eng.streams(5, np.arange(n)), low=-np.inf, high=-TARGET, max_steps=2000 * 128,
                    chunk=2048)
    brute = exponential_mle(ex.steps * eng.time_unit, ex.outcome != 2)
    print(f"kick {res.tau:.4g} [{res.tau_lower:.4g}, {res.tau_upper:.4g}]; brute force {brute.tau:.4g} +- "
          f"{brute.tau_stderr:.3g}")
    # weights lie in (0, 1 / defensive] with mean 1, so their variance is at most 1 / defensive - 1
    # (Bhatia-Davis): their mean is 1 within 4 standard errors of n_draws draws
    d = res.options["defensive"]
    assert res.tau_stderr / res.tau < 0.3 and abs(res.weight_mean - 1) < 4 * np.sqrt((1 / d - 1) / res.n_draws)
    assert abs(np.log(res.tau / brute.tau)) < 2.5 * np.hypot(res.tau_stderr / res.tau,
                                                              brute.tau_stderr / brute.tau)
    assert res.cost["total"] < 0.05 * ex.cost


def test_replayed_step_matches_the_trainer_for_any_shapes():
    """The kicker's vectorised per-sample steps, averaged over the trainer's minibatches,
    reproduce train()'s recorded steps on a network of width 2 with 2 inputs and 3 outputs."""
    from phasetools.rare._kick import _Kicker

    gen = np.random.default_rng(2)
    Xs, Ys = gen.normal(size=(16, 2)), gen.normal(size=(16, 3))
    init = [gen.normal(size=s) * 0.7 for s in [(2, 2), (2, 2), (3, 2)]]
    for convention in ("paper", "canonical"):
        run = train((Xs, Ys), n_layers=3, width=2, lr=0.05, weight_decay=0.1, batch_size=2, epochs=1,
                    sampling="replacement", convention=convention, init=init, record_steps=True, rng=3)
        eng = TrainingEngine((Xs, Ys), n_layers=3, width=2, lr=0.05, weight_decay=0.1, batch_size=2,
                             sampling="replacement", convention=convention, coordinate=lambda M: M[:, 0, 0],
                             sign=1.0, shapes=[w.shape for w in init])
        from phasetools.training import resolve_training_convention
        kappa = resolve_training_convention(convention, 3).kappa
        k = _Kicker(eng, Xs, Ys, lr=0.05, weight_decay=0.1, kappa=kappa, batch_size=2, score=None, sets=None,
                    aim=0.0, defensive=0.1)
        path = np.asarray(run.step_params)[0]
        ys = k.per_sample(path[:-1])
        for s, idx in enumerate(np.asarray(run.batch_indices)[0]):
            assert np.allclose(ys[s, idx].mean(axis=0), path[s + 1], rtol=1e-10, atol=1e-13), (convention, s)
            assert np.allclose(ys[s], _per_sample_steps(eng, path[s], Xs, Ys, 0.05, 0.1, convention), atol=1e-13)


def test_tilted_continuation_agrees_with_plain_runs():
    """lr 0.1, from sv1 = 1.7 above the well (committor about 0.03, docs/rare.md): the weighted
    tilted continuation and plain replayed runs estimate the same q."""
    from phasetools.rare._kick import _continue_tilted, _Kicker, _Sets

    lr, n = 0.1, 3000
    eng = _engine((X, Y), lr, 4)
    from phasetools.rare import SharpnessScore
    score = SharpnessScore(TARGET, INIT, np.atleast_2d(np.mean(X * X)))
    sets = _Sets(0, TARGET, _well(lr))
    starts = np.full((n, 3), np.cbrt(1.7))
    est = {}
    for name, aim in (("plain", -np.inf), ("tilted", np.log(1.4 / (2 * lr)))):
        k = _Kicker(eng, X, Y, lr=lr, weight_decay=0.32, kappa=1.0, batch_size=4, score=score, sets=sets, aim=aim,
                    defensive=0.1)
        value, outcome, _ = _continue_tilted(k, starts, np.random.default_rng(7), 10_000)
        assert np.all(outcome != 0)
        est[name] = (value.mean(), value.std() / np.sqrt(n))
    (a, sa), (b, sb) = est["plain"], est["tilted"]
    assert 0.005 < a < 0.1, est
    assert abs(a - b) < 3 * np.hypot(sa, sb), est


def test_cli_rare_train_method_kick_stores_and_refuses_bad_input(tmp_path, capsys):
    import json

    from phasetools.cli import main
    from phasetools.io import load

    out = tmp_path / "k.h5"
    code = main(["rare", "train", "--method", "kick", "--lr", "0.1", "--n-chains", "2", "--seed", "1", "--json",
                 "--out", str(out), "--quiet"])
    assert code in (0, None)
    row = json.loads(capsys.readouterr().out)
    res = load(out, row["stored"][0])
    assert isinstance(res, KickEscape) and res.tau == row["tau_epochs"] and res.well == tuple(row["well"])
    assert row["well"][0] == 0.2 and row["well"][1] == pytest.approx((0.7 / (6 * 0.1 * np.mean(X**2))) ** 0.75)
    for bad, word in ((["--direction", "fwd"], "--direction"),
                      (["--well", "0.5"], "--well"), (["--well", "1.0,0.5"], "well")):
        assert main(["rare", "train", "--method", "kick", "--lr", "0.1", *bad]) == 2
        err = capsys.readouterr().err
        assert word in err and err.count("\n") == 1, err


def test_diverged_qsd_chains_do_not_crash_and_leave_no_biased_estimate():
    """lr 0.6 from 1.3 per layer: every QSD chain leaves (diverges or falls into the target)
    within its first chunk. Before, the dead rows were fed back to the trainer (ValueError
    "init[0] must be finite"); now no chain has a state, so k and tau are NaN with a warning
    instead of a k of 0 from chains that estimate nothing."""
    opts = KickOptions(n_chains=4, burn_in_epochs=0, n_epochs=20, thin=64, n_draws=2, n_continue=1, max_steps=2000)
    with pytest.warns(RuntimeWarning, match="QSD chains"):
        a = kick_escape((X, Y), [np.full((1, 1), 1.3)] * 3, **SGD, lr=0.6, target=TARGET, well=(0.2, 3.0), rng=1,
                        options=opts)
    assert a.n_chains_used == 0 and np.all(np.isnan(a.k_chains)) and a.n_states == 0
    assert np.isnan(a.k) and np.isnan(a.tau) and np.isnan(a.tau_lower) and np.isnan(a.tau_upper)
    # one chunk (16 epochs) of each chain; the two that fell into the target with finite weights run
    # their last 4 epochs too (every step taken is counted), the diverged ones are not advanced
    assert a.cost["qsd"] == 4 * 16 * 128 + 2 * 4 * 128


def test_only_finite_chains_are_advanced():
    """A chain with non-finite weights is not advanced (its row stays NaN, its stream key is not
    bumped); the finite rows advance as one batch of just them."""
    from phasetools.rare._kick import _advance_finite

    eng = _engine((X, Y), 0.1, 4)
    x = np.repeat(np.asarray(B0)[None], 3, axis=0)
    x[1] = np.nan
    streams = eng.streams(9, np.arange(3))
    keys = streams.copy()
    xe, code, path = _advance_finite(eng, x, streams, 128)
    assert np.all(np.isnan(xe[1])) and np.all(np.isnan(code[1])) and np.all(np.isnan(path[1]))
    assert np.all(np.isfinite(xe[[0, 2]])) and np.array_equal(streams[1], keys[1])
    ref_streams = keys[[0, 2]].copy()
    ref = eng.advance(x[[0, 2]], ref_streams, 128, -np.inf)
    assert np.array_equal(xe[[0, 2]], ref[0]) and np.array_equal(streams[[0, 2]], ref_streams)


def test_chain_without_states_is_left_out_not_counted_as_zero():
    """A chain with no QSD state estimates nothing: NaN in k_chains (a 0 would bias k down and
    shrink its standard error)."""
    from phasetools.rare._kick import _chain_estimates

    contrib = np.array([0.2, 0.4, 0.6])
    chain = np.array([0, 0, 2])
    k = _chain_estimates(contrib, chain, np.array([3.0, 0.0, 2.0]), 2)
    assert k[0] == pytest.approx(0.6 / 2 / 3) and np.isnan(k[1]) and k[2] == pytest.approx(0.6 / 2 / 2)


def test_tilted_minibatches_refuses_bad_input():
    gen = np.random.default_rng(0)
    s = np.arange(5.0)
    for kw, word in (({"defensive": 0.0}, "defensive"), ({"defensive": 1.5}, "defensive"),
                     ({"defensive": np.nan}, "defensive"), ({"batch_size": 0}, "batch_size"),
                     ({"batch_size": 2.5}, "batch_size"), ({"n_draws": 0}, "n_draws"),
                     ({"scores": np.array([1.0, np.nan])}, "scores"), ({"scores": np.zeros(0)}, "scores"),
                     ({"target_mean": np.inf}, "target_mean")):
        args = {"scores": s, "target_mean": 2.0, "batch_size": 2, "n_draws": 3, "defensive": 0.1, **kw}
        with pytest.raises(ValueError, match=word):
            tilted_minibatches(args.pop("scores"), args.pop("target_mean"), args.pop("batch_size"),
                               args.pop("n_draws"), gen=gen, **args)
    # defensive 1: plain uniform minibatches, every weight 1
    _, w, _ = tilted_minibatches(s, 3.5, 2, 50, defensive=1.0, gen=gen)
    assert np.all(w == 1.0)


def test_kick_escape_refuses_a_malformed_well_and_an_infinite_kick():
    kw = dict(**SGD, lr=0.1, target=TARGET, options=SMALL, rng=1)
    for well in ((0.2, 1.0, 2.0), 0.5, (0.2, np.inf), (np.nan, 1.0), "0.2,1.0", ((0.2, 1.0),)):
        with pytest.raises(ValueError, match="well"):
            kick_escape((X, Y), INIT, well=well, **kw)
    for bad in (np.inf, np.nan, 0.0):
        with pytest.raises(ValueError, match="kick"):
            KickOptions(kick=bad)
    assert KickOptions().kick == 1.0               # the CLI's --kick default and every documented run


class _UpSets:
    """Test sets on the width-1 chain's ``s = |w1 w2 w3|``: ``B = {s >= level}``, ``A = {s < low}``
    (the tilt, which raises the mode's curvature, aims at ``B``); a step may be tilted above ``hi``."""

    def __init__(self, level, low, hi):
        self.level, self.low, self.hi = level, low, hi

    def sv(self, M):
        return np.abs(M[:, 0, 0])

    def __call__(self, M):
        s = self.sv(M)
        return np.where(s >= self.level, 1.0, np.where(s < self.low, -1.0, 0.0))


def _tiny_two_steps(lr, s0):
    """The 6-sample data (B = 3, one large sample) of the split-continuation enumerations, its
    engine, the start at ``s = s0``, and ``|s|`` after each of the 216 first minibatches (``s1``)
    and each of the 216^2 pairs (``s2``, first by second)."""
    gen = np.random.default_rng(1)
    Xs = gen.normal(size=(6, 1)) * np.array([[1.0], [1.0], [1.0], [1.0], [1.0], [3.0]])
    Ys = 0.8 * Xs + 0.3 * gen.normal(size=(6, 1))
    eng = TrainingEngine((Xs, Ys), n_layers=3, width=1, lr=lr, weight_decay=0.32, batch_size=3,
                         sampling="replacement", convention="paper", coordinate=lambda M: M[:, 0, 0], sign=1.0,
                         shapes=[(1, 1)] * 3)
    x0 = np.full(3, np.cbrt(s0))
    all_mb = np.array(list(itertools.product(range(6), repeat=3)))
    y1 = _per_sample_steps(eng, x0, Xs, Ys, lr, 0.32, "paper")[all_mb].mean(axis=1)
    s1 = np.abs(np.prod(y1, axis=1))
    s2 = np.array([np.abs(np.prod(_per_sample_steps(eng, y, Xs, Ys, lr, 0.32, "paper")[all_mb].mean(axis=1), axis=1))
                   for y in y1])
    return Xs, Ys, eng, x0, s1, s2


def _tiny_kicker(eng, Xs, Ys, lr, s0, sets):
    """The kick sampler of the tiny enumerations (both tilts; aimed at ``s = 1.2``)."""
    from phasetools.rare import SharpnessScore
    from phasetools.rare._kick import _Kicker

    score = SharpnessScore(0.05, [np.full((1, 1), np.cbrt(s0))] * 3, np.atleast_2d(np.mean(Xs * Xs)))
    aim = float(np.log(score.parts([np.full((1, 1, 1), np.cbrt(1.2))] * 3)[1][0]))
    return _Kicker(eng, Xs, Ys, lr=lr, weight_decay=0.32, kappa=1.0, batch_size=3, score=score, sets=sets, aim=aim,
                   defensive=0.1)


def test_kick_split_continuation_matches_exact_two_step_enumeration():
    """Tiny data (6 samples, B = 3), lr 0.2, from s = 0.5: reaching s >= 0.85 before falling below
    0.5 within two steps needs two up-kicks (one step reaches 0.814 at most). Its exact probability
    by enumerating all 216^2 pairs of minibatches, against continuation="kicks" runs (one or two
    tilted steps of a window of two, weighted by the mixture over tilt plans): unbiased, and
    better than plain runs."""
    from phasetools.rare._kick import _continue_kicks

    lr, s0, level, n = 0.2, 0.5, 0.85, 20_000
    Xs, Ys, eng, x0, s1, s2 = _tiny_two_steps(lr, s0)
    x0 = x0[None]
    assert s1.max() < level                                                          # one kick is not enough
    exact = np.mean((s1 >= s0)[:, None] & (s2 >= level))
    assert 1e-3 < exact < 1e-2
    kicker = _tiny_kicker(eng, Xs, Ys, lr, s0, _UpSets(level, s0, 0.45))
    for n_kicks in (1, 2):
        opts = KickOptions(continuation="kicks", kick_window=2, n_kicks=n_kicks, max_steps=2)
        value, outcome, cost = _continue_kicks(kicker, eng, np.repeat(x0, n, axis=0), 1, np.random.default_rng(3),
                                               opts)
        est, se = value.mean(), value.std() / np.sqrt(n)
        assert abs(est - exact) < 4 * se, (n_kicks, est, se, exact)
        assert se < np.sqrt(exact * (1 - exact) / n) / 3                            # plain runs: 3x the error
        assert value.max() <= 1 / (1 - opts.kick_share) and n <= cost <= 2 * n
        assert set(np.unique(outcome)) <= {0, 1, 2}


def test_plan_ratio_is_the_mixture_over_tilted_steps():
    """_plan_ratio against the explicit sum over every plan (no tilted step with probability
    1 - share, else a uniform subset of k in 1 .. n_kicks steps), and _kick_plan draws that law."""
    from math import comb

    from phasetools.rare._kick import _kick_plan, _plan_ratio

    gen = np.random.default_rng(4)
    r = np.exp(gen.normal(size=(6, 5)) * 3)
    for n_kicks, share in ((1, 0.3), (2, 0.5), (3, 0.8)):
        ref = np.full(6, 1 - share)
        for k in range(1, n_kicks + 1):
            for sub in itertools.combinations(range(5), k):
                ref += share / n_kicks / comb(5, k) * np.prod(r[:, list(sub)], axis=1)
        assert np.allclose(_plan_ratio(r, n_kicks, share), ref, rtol=1e-12)
    plan = _kick_plan(60_000, 4, 2, 0.5, np.random.default_rng(5))
    size = plan.sum(axis=1)
    freq = np.bincount(size, minlength=3) / size.size
    assert np.allclose(freq, [0.5, 0.25, 0.25], atol=0.01) and np.allclose(plan.mean(axis=0), plan.mean(), atol=0.01)
    pairs = plan[size == 2]
    assert np.allclose((pairs[:, 0] & pairs[:, 1]).mean(), 1 / 6, atol=0.01)        # each of C(4, 2) pairs


def test_kick_options_for_the_split_continuation():
    assert KickOptions(continuation="kicks").kick_window >= KickOptions().n_kicks
    for bad, word in (({"n_kicks": 0}, "n_kicks"), ({"kick_window": 0}, "kick_window"),
                      ({"n_kicks": 3, "kick_window": 2}, "n_kicks"), ({"kick_share": 1.0}, "kick_share"),
                      ({"kick_share": 0.0}, "kick_share"), ({"continuation": "nested"}, "continuation")):
        with pytest.raises(ValueError, match=word):
            KickOptions(**bad)


def test_qsd_cost_counts_every_step_the_chains_take(monkeypatch):
    """A QSD chain that reached B runs on with the others (its later states unused): its steps
    are counted. Here (target 0.22 just below the well) chains reach B, and cost["qsd"] equals
    the steps the trainer was asked for; before, it left out those after the chunk of a chain's
    first step in B."""
    from phasetools.rare._kick import _qsd, _Sets

    taken = []
    advance = TrainingEngine.advance

    def counting(self, x, streams, n_steps, low):
        taken.append(x.shape[0] * n_steps)
        return advance(self, x, streams, n_steps, low)

    monkeypatch.setattr(TrainingEngine, "advance", counting)
    sets = _Sets(0, 0.22, (0.27, 1.1))
    eng = TrainingEngine((X, Y), **SGD, lr=0.1, sampling="replacement", convention="paper", coordinate=sets,
                         sign=1.0, shapes=[(1, 1)] * 3)
    opts = KickOptions(n_chains=6, burn_in_epochs=0, n_epochs=40, thin=64)
    states, valid, cost = _qsd(eng, np.asarray(B0, float), opts, 2, sets)
    per_chain = valid.sum(axis=1)
    assert per_chain.min() < valid.shape[1] and np.all(np.isfinite(states[valid]))   # some chains reached B
    assert cost == sum(taken) == 6 * 40 * 128


def test_kick_split_continuation_up_then_down_matches_exact_enumeration():
    """The kick estimator's own sets, B = {s <= 0.355} below the well A = [0.36, 0.55], from s = 0.6
    above it (6 samples, B = 3, lr 0.35): no single step reaches B; the two-step routes go up
    first (staying above the well) and then catapult down through it. The exact probability of B
    before A in two steps (enumeration of 216^2 minibatch pairs) against continuation="kicks"
    (both tilts, up towards the aimed curvature and down towards B)."""
    from phasetools.rare._kick import _continue_kicks, _Sets

    lr, s0, target, well, n = 0.35, 0.6, 0.355, (0.36, 0.55), 10_000
    Xs, Ys, eng, x0, s1, s2 = _tiny_two_steps(lr, s0)
    neither = (s1 > target) & ~((s1 >= well[0]) & (s1 <= well[1]))
    assert s1.min() > target and np.all(s1[neither] > well[1])                    # two steps, up first
    exact = np.mean(neither[:, None] & (s2 <= target))
    assert 1e-3 < exact < 1e-2
    kicker = _tiny_kicker(eng, Xs, Ys, lr, s0, _Sets(0, target, well))
    opts = KickOptions(continuation="kicks", kick_window=2, n_kicks=2, max_steps=2)
    value, _, _ = _continue_kicks(kicker, eng, np.repeat(x0[None], n, axis=0), 1, np.random.default_rng(3), opts)
    est, se = value.mean(), value.std() / np.sqrt(n)
    assert abs(est - exact) < 4 * se and se < np.sqrt(exact * (1 - exact) / n), (est, se, exact)


def test_replacement_defaults_are_the_documented_thin_32_and_n_continue_4():
    """KickOptions() (thin and n_continue None) gives with replacement exactly the run of the
    explicit thin=32, n_continue=4 (every documented result with replacement used them), and
    stores the resolved values."""
    kw = dict(**SGD, lr=0.1, target=TARGET, well=_well(0.1), rng=5)
    small = {"n_chains": 3, "burn_in_epochs": 0, "n_epochs": 1, "n_draws": 2, "max_steps": 200}
    a = kick_escape((X, Y), INIT, **kw, options=KickOptions(**small))
    b = kick_escape((X, Y), INIT, **kw, options=KickOptions(**small, thin=32, n_continue=4))
    assert a.options["thin"] == 32 and a.options["n_continue"] == 4
    assert np.array_equal(a.k_chains, b.k_chains, equal_nan=True) and a.cost == b.cost


def test_kick_split_continuation_with_first_steps_between_target_and_well_matches_exact_enumeration():
    """As the up-then-down case, but B = {s <= 0.41} and A = [0.48, 0.55]: from s = 0.6 above the
    well, some first steps land between the target and the well's low end (neither set, not above
    the well: the second step there is plain, ratio 1) and a good part of the exact probability of
    B before A in two steps goes that way; continuation="kicks" must still match it."""
    from phasetools.rare._kick import _continue_kicks, _Sets

    lr, s0, target, well, n = 0.35, 0.6, 0.41, (0.48, 0.55), 10_000
    Xs, Ys, eng, x0, s1, s2 = _tiny_two_steps(lr, s0)
    gap = (s1 > target) & (s1 < well[0])
    above = s1 > well[1]
    via_gap = np.mean(gap[:, None] & (s2 <= target))
    exact = np.mean(s1 <= target) + via_gap + np.mean(above[:, None] & (s2 <= target))
    assert gap.mean() > 0.05 and via_gap > 0.3 * exact and 0.01 < exact < 0.05        # the gap matters
    kicker = _tiny_kicker(eng, Xs, Ys, lr, s0, _Sets(0, target, well))
    opts = KickOptions(continuation="kicks", kick_window=2, n_kicks=2, max_steps=2)
    value, outcome, _ = _continue_kicks(kicker, eng, np.repeat(x0[None], n, axis=0), 1, np.random.default_rng(3),
                                        opts)
    est, se = value.mean(), value.std() / np.sqrt(n)
    assert abs(est - exact) < 4 * se and se < np.sqrt(exact * (1 - exact) / n), (est, se, exact)
    assert np.any(outcome == 0)                               # runs ended in the gap after two steps (censored)


def test_kick_split_continuation_hands_over_to_the_trainer_after_the_window():
    """max_steps > kick_window: after the replayed window of 4 steps the trainer finishes each run.
    At lr 0.1, q from continuation="kicks" and from the plain trainer continuation on the same
    starts agree within 3 combined standard errors: from s = 1.7 above the well (tilted steps, q
    about 0.03) and from s = 0.06 between the target and the well (no tilt there; q about 0.04, of
    which the 4 window steps alone give 0.006: the runs must go on after the window)."""
    from phasetools.rare import SharpnessScore
    from phasetools.rare._kick import _continue_kicks, _continue_trainer, _Kicker, _Sets

    lr, n = 0.1, 3000
    sets = _Sets(0, TARGET, _well(lr))
    eng = TrainingEngine((X, Y), **SGD, lr=lr, sampling="replacement", convention="paper", coordinate=sets,
                         sign=1.0, shapes=[(1, 1)] * 3)
    score = SharpnessScore(TARGET, INIT, np.atleast_2d(np.mean(X * X)))
    kicker = _Kicker(eng, X, Y, lr=lr, weight_decay=0.32, kappa=1.0, batch_size=4, score=score, sets=sets,
                     aim=float(np.log(1.0 / (2 * lr))), defensive=0.1)
    opts = KickOptions(continuation="kicks", kick_window=4, n_kicks=2, max_steps=20_000)
    for s0 in (1.7, 0.06):
        starts = np.full((n, 3), np.cbrt(s0))
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):      # as in kick_escape: catapults
            value, outcome, _ = _continue_kicks(kicker, eng, starts, 11, np.random.default_rng(7), opts)
            plain, _ = _continue_trainer(eng, starts, 12, 20_000, 4)
        assert np.sum(outcome == 0) == 0 == np.sum(plain == 0)                 # none censored
        a, sa = value.mean(), value.std() / np.sqrt(n)
        b = np.mean(plain == 2)
        sb = np.sqrt(b * (1 - b) / n)
        assert 0.02 < b < 0.06 and 0.02 < a and abs(a - b) < 3 * np.hypot(sa, sb), (s0, a, sa, b, sb)


def test_kick_escape_with_the_split_continuation_is_seeded():
    """End to end: kick_escape(continuation="kicks") with tiny options, twice with one seed: the
    same chains' estimates, costs and counts; stored options name the continuation."""
    opts = KickOptions(n_chains=3, burn_in_epochs=0, n_epochs=1, n_draws=2, n_continue=2, max_steps=300,
                       continuation="kicks")
    kw = dict(**SGD, lr=0.1, target=TARGET, well=_well(0.1), options=opts)
    a = kick_escape((X, Y), INIT, rng=4, **kw)
    b = kick_escape((X, Y), INIT, rng=4, **kw)
    assert a.options["continuation"] == "kicks" and a.options["thin"] == 32 and a.n_draws == a.n_in_well * 2
    assert np.array_equal(a.k_chains, b.k_chains, equal_nan=True) and a.cost == b.cost
    assert (a.n_reached, a.n_censored, a.n_outside) == (b.n_reached, b.n_censored, b.n_outside)
    assert np.isfinite(a.k) and a.k >= 0 and a.cost["continue"] > 0


@pytest.mark.slow   # minutes on 2 cores (the split estimator, 200 brute-force runs)
@pytest.mark.long   # outside the default run (pytest -m long), as the trainer-continuation check above
def test_kick_escape_split_continuation_agrees_with_brute_force_at_lr_0_1():
    """lr 0.1, B = 4, backward to lam_saddle / 2: continuation="kicks" with the well's top at
    lr * lambda_GN = 0.5 (as the split sweep of docs/rare.md) against 200 brute-force runs of the
    trainer (another stream than the check above) within 2.5 combined standard errors in ln tau."""
    from phasetools.rare import excursions
    from phasetools.stats import exponential_mle

    res = kick_escape((X, Y), INIT, **SGD, lr=0.1, target=TARGET, well=_well(0.1, 0.5), rng=2,
                      options=KickOptions(kick=1.0, continuation="kicks"))
    eng = TrainingEngine((X, Y), **SGD, lr=0.1, sampling="replacement", convention="paper",
                         coordinate=lambda M: np.linalg.svd(M, compute_uv=False)[:, 0], sign=-1.0,
                         shapes=[(1, 1)] * 3)
    n = 200
    x = np.repeat(np.asarray(B0)[None, :], n, axis=0)
    ex = excursions(eng, x, eng.streams(6, np.arange(n)), low=-np.inf, high=-TARGET, max_steps=2000 * 128,
                    chunk=2048)
    brute = exponential_mle(ex.steps * eng.time_unit, ex.outcome != 2)
    print(f"kicks {res.tau:.4g} +- {res.tau_stderr:.3g} [{res.tau_lower:.4g}, {res.tau_upper:.4g}], top share "
          f"{res.top_share:.3f}, cost {res.cost['total']:.3g}; brute force {brute.tau:.4g} +- {brute.tau_stderr:.3g}, "
          f"cost {ex.cost:.3g}")
    d = res.options["defensive"]
    assert res.tau_stderr / res.tau < 0.3 and abs(res.weight_mean - 1) < 4 * np.sqrt((1 / d - 1) / res.n_draws)
    assert res.n_censored == 0 and res.top_share < 0.2
    assert abs(np.log(res.tau / brute.tau)) < 2.5 * np.hypot(res.tau_stderr / res.tau,
                                                              brute.tau_stderr / brute.tau)
    assert res.cost["total"] < 0.05 * ex.cost
