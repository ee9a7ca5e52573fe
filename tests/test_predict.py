"""Predictions for trained networks: data-moment noise, the samplers, prediction (a) with replacement,
prediction (d) plateaus, and the predicted-vs-measured comparison."""

from __future__ import annotations

import time

import numpy as np
import pytest

from phasetools.theory import (CrossModeNoise, ModeNoise, data_cross_noise, data_mode_noise, mode_noise,
                               plateau_time, predict_sgd_escape)
from phasetools.training import GaussianTeacher, gradient_covariance, predict_escape, predict_plateau, train


@pytest.fixture(scope="module")
def draw1():
    return GaussianTeacher([0.9, 0.8]).sample(512, rng=1)


# -- (1) per-sample noise from the data's fourth moments ----------------------------------------

def test_gaussian_mode_noise_is_the_isserlis_kernel():
    from phasetools.theory import gradient_noise_kernel
    m = mode_noise(0.9, 0.7, 1.1)
    P = np.linspace(0, 1, 5)
    K = gradient_noise_kernel(P[:, None, None], np.array([[0.9]]), np.array([[0.7]]), np.array([[1.1]]))[:, 0, 0]
    assert np.allclose(m.kernel(P), K)


def test_data_mode_noise_matches_the_empirical_gradient_variance(draw1):
    """K(P) from the samples' fourth moments is the variance of r x over the samples."""
    m = data_mode_noise(draw1.X, draw1.Y)[1]
    U, _, Vt = np.linalg.svd(draw1.Y.T @ draw1.X / 512)
    x, y = draw1.X @ Vt[1], draw1.Y @ U[:, 1]
    for P in (0.0, 0.3, 0.7):
        assert m.kernel(P) == pytest.approx(np.var((y - P * x) * x), rel=1e-10)
    g = m.gaussian()
    assert g.moments == "gaussian" and m.moments == "data"
    # draw 1 is noisier than Gaussian along its weak mode at the learned value
    assert m.kernel(0.6) / g.kernel(0.6) > 1.05


def test_gaussian_moments_of_a_large_gaussian_sample_agree_with_data_moments():
    d = GaussianTeacher([0.9, 0.8]).sample(200_000, rng=3)
    md, mg = data_mode_noise(d.X, d.Y, moments="data")[0], data_mode_noise(d.X, d.Y, moments="gaussian")[0]
    assert md.kernel(0.5) == pytest.approx(mg.kernel(0.5), rel=0.03)


def test_gradient_covariance_moments_option(draw1):
    rng = np.random.default_rng(0)
    W = [rng.normal(size=(4, 2)) * 0.5, rng.normal(size=(2, 4)) * 0.5]
    default = gradient_covariance(W, draw1)
    data = gradient_covariance(W, draw1, moments="data")
    gauss = gradient_covariance(W, draw1, moments="gaussian")
    assert default.source == data.source == "empirical" and np.array_equal(default.covariance, data.covariance)
    assert gauss.source == "gaussian" and gauss.n_samples == 512
    from_moments = gradient_covariance(W, draw1.moments())
    assert np.allclose(gauss.covariance, from_moments.covariance)
    assert not np.allclose(gauss.covariance, data.covariance, rtol=1e-3)
    with pytest.raises(ValueError, match="moments"):
        gradient_covariance(W, draw1.moments(), moments="data")
    with pytest.raises(ValueError, match="moments"):
        gradient_covariance(W, draw1, moments="fourth")


# -- samplers -----------------------------------------------------------------------------------

@pytest.mark.parametrize("sampling", ["shuffle", "replacement", "full"])
def test_every_sampler_runs_and_is_recorded(sampling):
    d = GaussianTeacher([0.9, 0.8]).sample(32, rng=2)
    B = None if sampling == "full" else 8
    run = train(d, n_layers=2, width=3, epochs=2, lr=0.05, weight_decay=0.0, batch_size=B, sampling=sampling, rng=1)
    assert run.sampling == sampling
    assert run.steps_per_epoch == (1 if sampling == "full" else 4)


def test_full_sampler_is_full_batch_gradient_descent():
    d = GaussianTeacher([0.9, 0.8]).sample(32, rng=2)
    a = train(d, n_layers=2, width=3, epochs=3, lr=0.05, weight_decay=0.0, sampling="full", rng=1)
    b = train(d.moments(), n_layers=2, width=3, epochs=3, lr=0.05, weight_decay=0.0, rng=1)
    assert np.allclose(a.final_params, b.final_params, rtol=1e-10, atol=1e-12)


def test_full_sampler_refuses_a_minibatch():
    d = GaussianTeacher([0.9, 0.8]).sample(32, rng=2)
    with pytest.raises(ValueError, match="batch_size"):
        train(d, n_layers=2, width=3, epochs=1, lr=0.05, weight_decay=0.0, batch_size=8, sampling="full")
    with pytest.raises(ValueError, match="sampling"):
        train(d, n_layers=2, width=3, epochs=1, lr=0.05, weight_decay=0.0, batch_size=8, sampling="epoch")


# -- (a) with-replacement escape ------------------------------------------------------------------

def test_prediction_a_units_and_record(draw1):
    p = predict_escape(draw1, n_layers=3, width=10, weight_decay=0.35, lr=0.1, batch_size=16)
    assert p.sampling == "replacement" and p.moments == "data" and p.coupled
    assert p.steps_per_epoch == 32
    assert p.tau_time == pytest.approx(0.1 * p.tau_steps) and p.tau_steps == pytest.approx(32 * p.tau_epochs)
    assert p.barrier == pytest.approx(0.00218, rel=0.01)          # docs/training.md, E4 corrected
    assert p.tau_isotropic_time > 1e6 * p.tau_time                 # the isotropic T_eff is hopeless
    assert "replacement" in p.assumptions


def test_prediction_a_matches_the_1d_sgd_theory_of_langevin():
    """Gaussian moments, no coupling: the same diffusion as langevin.SGDTheory (force and diffusion built independently)."""
    from phasetools.langevin import escape_problem
    from phasetools.theory import landscape
    L = landscape(3, 0.8, 0.32, convention="paper")
    prob = escape_problem("chain", n_layers=3, c=0.8, gamma=0.32, direction="bwd", convention="paper")
    th = prob.sgd_theory(output_var=1.0)
    m = mode_noise(1.0, 0.8, 1.0)
    p = predict_sgd_escape(3, m, 0.32, lr=0.1, batch_size=64, n_samples=512, target=th.b_target ** 3)
    assert p.b_start == pytest.approx(float(L.b_min))
    assert p.tau_time == pytest.approx(th.tau(0.1, 64), rel=1e-4)


def test_prediction_a_data_moments_and_coupling_both_shorten_tau(draw1):
    kw = dict(n_layers=3, width=10, weight_decay=0.35, lr=0.1, batch_size=24)
    m = data_mode_noise(draw1.X, draw1.Y)
    g = data_mode_noise(draw1.X, draw1.Y, moments="gaussian")
    base = predict_sgd_escape(3, g[1], 0.35, lr=0.1, batch_size=24, n_samples=512).tau_time
    data = predict_sgd_escape(3, m[1], 0.35, lr=0.1, batch_size=24, n_samples=512).tau_time
    both = predict_escape(draw1, **kw).tau_time
    assert both < data < base


def test_cross_noise_variances_match_the_samples(draw1):
    cp = data_cross_noise(draw1.X, draw1.Y, 1, 0)
    U, _, Vt = np.linalg.svd(draw1.Y.T @ draw1.X / 512)
    xs, xo, ys, yo = draw1.X @ Vt[1], draw1.X @ Vt[0], draw1.Y @ U[:, 1], draw1.Y @ U[:, 0]
    Ps, Po = 0.5, 0.7
    v_so, v_os, c = cp.variances(Ps, Po)
    a, b = (ys - Ps * xs) * xo, (yo - Po * xo) * xs
    assert v_so == pytest.approx(np.var(a), rel=1e-10)
    assert v_os == pytest.approx(np.var(b), rel=1e-10)
    assert c == pytest.approx(np.mean(a * b) - a.mean() * b.mean(), rel=1e-10)
    assert isinstance(cp, CrossModeNoise) and cp == data_cross_noise(draw1.X, draw1.Y, 1, 0)


#: Measured on the corrected E4 set-up and a second draw (16 seeds each, examples/predict_escape.py):
#: (draw, weight_decay, B) -> tau in epochs, lr 0.1, width 10, sampling "replacement".
MEASURED_A = {(1, 0.35, 8): 4.56, (1, 0.35, 16): 14.75, (1, 0.35, 24): 48.6, (1, 0.35, 32): 105.7,
              (1, 0.35, 40): 382.2, (2, 0.286, 8): 7.56, (2, 0.286, 16): 62.75, (2, 0.286, 24): 221.8,
              (2, 0.286, 32): 1146.0}


def test_prediction_a_is_within_a_factor_2_of_the_recorded_measurements():
    t = GaussianTeacher([0.9, 0.8])
    draws = {k: t.sample(512, rng=k) for k in (1, 2)}
    for (draw, wd, B), tau in MEASURED_A.items():
        p = predict_escape(draws[draw], n_layers=3, width=10, weight_decay=wd, lr=0.1, batch_size=B)
        assert 0.5 <= tau / p.tau_epochs <= 2.0, (draw, wd, B, tau, p.tau_epochs)


def test_prediction_a_is_fast(draw1):
    predict_escape(draw1, n_layers=3, width=10, weight_decay=0.35, lr=0.1, batch_size=16)
    t0 = time.perf_counter()
    predict_escape(draw1, n_layers=3, width=10, weight_decay=0.35, lr=0.1, batch_size=24)
    assert time.perf_counter() - t0 < 1.0


def test_prediction_a_bad_input(draw1):
    m = data_mode_noise(draw1.X, draw1.Y)
    with pytest.raises(ValueError, match="sampling"):
        predict_sgd_escape(3, m[1], 0.35, lr=0.1, batch_size=8, n_samples=512, sampling="shuffle")
    with pytest.raises(ValueError, match="weight_decay"):
        predict_sgd_escape(3, m[1], 0.5, lr=0.1, batch_size=8, n_samples=512)
    with pytest.raises(ValueError, match="noise"):
        predict_sgd_escape(3, 0.8, 0.35, lr=0.1, batch_size=8, n_samples=512)
    with pytest.raises(ValueError, match="moments"):
        predict_escape(draw1, n_layers=3, width=10, weight_decay=0.35, lr=0.1, batch_size=8, sampling="shuffle",
                       moments="gaussian")
    full = predict_escape(draw1, n_layers=3, width=10, weight_decay=0.35, lr=0.1, batch_size=512, sampling="full")
    assert np.isinf(full.tau_time) and full.regime == "full_batch"
    with pytest.raises(ValueError, match="moments"):
        ModeNoise(1.0, 0.5, 1.0, 3.0, 1.5, 1.5, "isserlis")


# -- (d) plateau from a residual seed ----------------------------------------------------------------

def test_plateau_time_matches_a_direct_integration_of_the_chain():
    """Gradient flow of the scalar chain by small Euler steps crosses the threshold at the predicted time."""
    c, a, wd, lr = 0.8, 1.0, 0.0025, 0.01
    p = plateau_time(3, c, wd, [0.05, 0.04, 0.06], a=a, lr=lr, threshold=1e-3, convention="paper")
    w = np.array([0.05, 0.04, 0.06])
    k, t = 0.5, 0.0
    while np.prod(w) < 1e-3:
        P = np.prod(w)
        w = w - lr * (k * (2 * a * P - 2 * c) * P / w + wd * w)
        t += lr
    assert p.tau_time == pytest.approx(t, rel=0.01)


def test_plateau_time_is_infinite_below_the_growth_threshold():
    p = plateau_time(3, 0.8, 0.0025, 1e-3, lr=0.1)
    assert np.isinf(p.tau_epochs)
    assert plateau_time(3, 0.8, 0.0025, 0.2, lr=0.1).tau_epochs == 0.0


#: E5-type releases (25 samples, full batch, weight decay 0.0025, lr 0.1; sparse_grokking rng=6 and 7):
#: (rng, geometric-mean seed, measured escape epoch).
MEASURED_D = [(6, 0.07901, 53), (6, 0.03446, 384), (6, 0.01495, 1275), (6, 0.009618, 2395), (6, 0.006992, 4058),
              (7, 0.04137, 203), (7, 0.01243, 1122), (7, 0.005894, 3220), (7, 0.003782, 8493)]


@pytest.mark.slow
def test_prediction_d_within_20_percent_of_sparse_grokking():
    from phasetools.training import sparse_grokking
    sg = sparse_grokking(GaussianTeacher([0.9, 0.8]), pool_size=5000, n_train=25, test_size=1000,
                         weight_decay=0.0025, lr=0.1, batch_size=64, trap_epochs=(130, 160), epochs=4000, n_layers=3,
                         width=10, n_seeds=1, rng=6, quiet=True)
    for i in range(sg.escape_epoch.size):
        p = predict_plateau(sg.train_moments, sg.seed_size[i], n_layers=3, weight_decay=0.0025, lr=0.1)
        assert sg.escaped[i] and 0.8 <= sg.escape_epoch[i] / p.tau_epochs <= 1.2


def test_prediction_d_recorded_points_within_20_percent():
    t = GaussianTeacher([0.9, 0.8])
    for rng, seed, epoch in MEASURED_D:
        data = t.subsample(5000, 25, rng=np.random.SeedSequence(rng).spawn(3)[0])
        p = predict_plateau(data, seed, n_layers=3, weight_decay=0.0025, lr=0.1)
        assert 0.8 <= epoch / p.tau_epochs <= 1.2, (rng, seed, epoch, p.tau_epochs)


# -- (c) upward escape with injected noise ---------------------------------------------------------------

def test_prediction_c_without_entropy_is_the_plain_radial_mfpt():
    from phasetools.theory import predict_injected_escape
    p1 = predict_injected_escape(3, 0.8, 0.3, 0.005, lr=0.1, n_free=1)
    p9 = predict_injected_escape(3, 0.8, 0.3, 0.005, lr=0.1, n_free=9)
    assert p1.tau_time == pytest.approx(p1.tau_isotropic_time)
    assert p9.tau_time < p1.tau_time / 10          # the entropic force shortens the escape
    assert p9.regime == "injected_upward" and p9.b_start == 0.0
    with pytest.raises(ValueError, match="weight_decay"):
        predict_injected_escape(3, 0.8, 0.5, 0.005, lr=0.1)


# -- comparison, figure, CLI -----------------------------------------------------------------------------

def _table():
    from phasetools.compare import MeasuredPoint, predicted_vs_measured
    from phasetools.stats import exponential_mle
    fit = exponential_mle(np.array([10.0, 20.0, 30.0]), np.array([False, False, False]))
    none = exponential_mle(np.array([100.0, 100.0]), np.array([True, True]))
    pts = [MeasuredPoint("a", "sgd_replacement", fit, {"model": 15.0, "isotropic": 1e9}),
           MeasuredPoint("b", "sgd_replacement", fit, {"model": 50.0, "isotropic": 1e9}),
           MeasuredPoint("c", "sgd_replacement", none, {"model": 1000.0, "isotropic": 1e9}),
           MeasuredPoint("d", "sgd_replacement", none, {"model": 10.0}),
           MeasuredPoint("e", "plateau", (100.0, 100.0, 100.0), {"model": 90.0}, scale=2.0),
           MeasuredPoint("f", "plateau", (None, 100.0, np.inf), {"model": np.inf}),
           MeasuredPoint("g", "plateau", (100.0, 100.0, 100.0), {"model": np.inf})]
    return predicted_vs_measured(pts, factor=2.0, unit="epochs")


def test_predicted_vs_measured_is_censoring_aware():
    t = _table()
    assert list(t.outcomes()) == ["agrees", "disagrees", "agrees", "disagrees", "disagrees", "agrees", "disagrees"]
    assert t.lower_bound.tolist() == [False, False, True, True, False, True, False]
    assert t.measured[4] == 200.0                       # scale applied
    assert list(t.outcomes("isotropic"))[:3] == ["disagrees", "disagrees", "agrees"]
    assert np.isnan(t.predicted[3, 1])
    rows = t.ablation()
    assert rows[0][:3] == ("model", 3, 7) and rows[1][:3] == ("isotropic", 1, 3)
    assert t.ablation("plateau")[0][:3] == ("model", 1, 3)
    assert "| model | 3/7 |" in t.table()
    with pytest.raises(ValueError, match="model"):
        t.outcomes("nope")


def test_predicted_vs_measured_round_trips(tmp_path):
    from phasetools.io import load, save
    t = _table()
    name = save(t, tmp_path / "p.h5")
    assert load(tmp_path / "p.h5", name).equal_values(t)


def test_predicted_vs_measured_figure(tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    from phasetools.plot import predicted_vs_measured as fig
    out = fig(_table()).save(tmp_path / "p.png")
    assert out[0].stat().st_size > 1000


def test_cli_predict_escape_and_plateau(capsys):
    import json as _json
    from phasetools.cli._main import main
    assert main(["predict", "escape", "--weight-decay", "0.35", "--lr", "0.1", "--batch-size", "8,16", "--json"]) == 0
    rows = _json.loads(capsys.readouterr().out)
    assert [r["batch_size"] for r in rows] == [8, 16] and rows[0]["coupled"] is True
    assert rows[1]["tau_epochs"] == pytest.approx(predict_escape(
        GaussianTeacher([0.9, 0.8]).sample(512, rng=1), n_layers=3, width=10, weight_decay=0.35, lr=0.1,
        batch_size=16).tau_epochs)
    assert main(["predict", "plateau", "--weight-decay", "0.0025", "--seed-size", "0.01"]) == 0
    assert "prediction (d)" in capsys.readouterr().out
    assert main(["predict", "escape", "--weight-decay", "0.5"]) == 2


#: Upward escapes under injected noise (full batch, lr 0.1, 16 seeds; examples/predict_escape.py):
#: (draw, weight_decay, width, Delta U / T) -> measured tau in epochs.
MEASURED_C = {(1, 0.30, 10, 3): 45.94, (1, 0.30, 10, 5): 72.19, (1, 0.30, 10, 7): 88.44, (1, 0.30, 10, 10): 184.1,
              (1, 0.28, 10, 3): 51.25, (1, 0.28, 10, 10): 223.4, (2, 0.241, 10, 3): 60.31,
              (2, 0.241, 10, 10): 194.1, (1, 0.30, 2, 3): 1497.0, (1, 0.30, 2, 5): 18110.0}


def test_prediction_c_is_within_a_factor_2_of_the_recorded_measurements():
    from phasetools.theory import landscape
    from phasetools.training import predict_injected
    t = GaussianTeacher([0.9, 0.8])
    for (draw, wd, width, r), tau in MEASURED_C.items():
        d = t.sample(512, rng=draw)
        m = d.moments()
        T = float(landscape(3, m.spectrum[1], wd, m.a[1], convention="paper").barrier_fwd) / r
        p = predict_injected(d, n_layers=3, width=width, weight_decay=wd, temperature=T, lr=0.1)
        assert 0.5 <= tau / p.tau_epochs <= 2.0, (draw, wd, width, r, tau, p.tau_epochs)
        if width == 10:   # the width-1 formula (no entropic force) is far off
            assert tau / p.tau_isotropic_epochs < 0.05


# -- (b) random reshuffling: the exact reduced simulation --------------------------------------------

def _mode_basis(d):
    U, _, Vt = np.linalg.svd(d.Y.T @ d.X / d.n_samples)
    return U, Vt


def test_reduced_shuffle_run_is_the_width_r_trainer_in_the_modes_basis():
    """Same rng, same permutations: the reduced layers equal the width-2 trainer's rotated weights to rounding."""
    from phasetools.training import aligned_weights, reduced_shuffle_run
    d = GaussianTeacher([0.9, 0.8]).sample(64, rng=1)
    W = aligned_weights(d, 0.3, n_layers=3, width=2, rank=2, lam=[0.45, 0.3])
    W = [W[0] + 0.05, W[1] - 0.03, W[2] + 0.02]           # off the aligned state: cross entries nonzero
    S = 3
    run = train(d, n_layers=3, width=2, lr=0.1, batch_size=8, sampling="shuffle", weight_decay=0.3,
                convention="paper", init=[np.broadcast_to(w, (S,) + w.shape) for w in W], epochs=5, rng=3, n_threads=1)
    U, Vt = _mode_basis(d)
    red = reduced_shuffle_run(d, np.array([W[0] @ Vt.T, W[1], U.T @ W[2]]), weight_decay=0.3, lr=0.1, batch_size=8,
                              epochs=5, n_seeds=S, rng=3)
    flat = run.final_params
    W1, W2, W3 = (flat[:, 4 * k:4 * k + 4].reshape(S, 2, 2) for k in range(3))
    assert np.allclose(red.weights[:, 0], W1 @ Vt.T, rtol=0, atol=1e-13)
    assert np.allclose(red.weights[:, 1], W2, rtol=0, atol=1e-13)
    assert np.allclose(red.weights[:, 2], U.T @ W3, rtol=0, atol=1e-13)
    assert np.abs(W1 - W[0]).max() > 1e-3                     # the weights did move
    # a different rng draws other permutations: the check above can fail
    other = reduced_shuffle_run(d, red.weights[0] * 0 + np.array([W[0] @ Vt.T, W[1], U.T @ W[2]]), weight_decay=0.3,
                                lr=0.1, batch_size=8, epochs=5, n_seeds=S, rng=4)
    assert not np.allclose(other.weights[:, 1], W2, rtol=0, atol=1e-8)


def test_reduced_shuffle_run_is_the_width_1_trainer_on_one_mode():
    from phasetools.training import reduced_shuffle_run
    d = GaussianTeacher([0.8]).sample(64, rng=2)
    S = 3
    run = train(d, n_layers=3, width=1, lr=0.1, batch_size=8, sampling="shuffle", weight_decay=0.5, convention="paper",
                init=[np.full((S, 1, 1), 0.9)] * 3, epochs=7, rng=4, n_threads=1)
    U, Vt = _mode_basis(d)
    red = reduced_shuffle_run(d, np.array([[[0.9 * Vt[0, 0]]], [[0.9]], [[0.9 * U[0, 0]]]]), weight_decay=0.5, lr=0.1,
                              batch_size=8, epochs=7, n_seeds=S, rng=4)
    assert np.allclose(red.weights.reshape(S, 3) * [Vt[0, 0], 1, U[0, 0]], run.final_params, rtol=0, atol=1e-14)
    assert red.steps_per_epoch == 8 and not red.escaped.any() and (red.epochs == 7).all()


def test_reduced_shuffle_run_stops_at_the_target_and_checks_input():
    from phasetools.training import reduced_shuffle_run
    d = GaussianTeacher([0.8]).sample(64, rng=2)
    init = np.full((3, 1, 1), 0.9)
    red = reduced_shuffle_run(d, init, weight_decay=0.5, lr=0.1, batch_size=8, epochs=50, mode=0, target=10.0,
                              n_seeds=2, rng=1)
    assert red.escaped.all() and (red.epochs == 1).all()        # below 10 at the first epoch end
    with pytest.raises(ValueError, match="init"):
        reduced_shuffle_run(d, np.ones((3, 2, 2)), weight_decay=0.5, lr=0.1, batch_size=8, epochs=1)
    with pytest.raises(ValueError, match="batch_size"):
        reduced_shuffle_run(d, init, weight_decay=0.5, lr=0.1, batch_size=65, epochs=1)
    with pytest.raises(ValueError, match="target"):
        reduced_shuffle_run(d, init, weight_decay=0.5, lr=0.1, batch_size=8, epochs=1, mode=0)
    with pytest.raises(ValueError, match="data"):
        reduced_shuffle_run(d.moments(), init, weight_decay=0.5, lr=0.1, batch_size=8, epochs=1)


def _stop_rule_run(d, **kw):
    from phasetools.training import reduced_shuffle_run
    init = np.array([np.diag([0.62, 0.55])] * 3)
    return reduced_shuffle_run(d, init, weight_decay=0.35, lr=0.1, batch_size=9, epochs=400, mode=1, target=0.06,
                               rng=5, **kw)


def test_reduced_shuffle_run_is_the_same_on_one_and_two_threads(draw1):
    """Every seed has its own stream and the stopping rule counts seeds in index order: the thread count
    changes nothing, with and without the rule (and the rule's early stop of a running seed discards it)."""
    for rule in (None, 6, 12):     # seeds 7, 8 (3 epochs each) finish while seed 6 (120 epochs) runs
        one = _stop_rule_run(draw1, n_seeds=24, min_escapes=rule, n_threads=1)
        assert one.escaped.any() and not one.escaped.all()      # some seeds censored: the rule is exercised
        for _ in range(3):                                      # thread timing varies from run to run
            two = _stop_rule_run(draw1, n_seeds=24, min_escapes=rule, n_threads=2)
            assert one.n_threads == 1 and two.n_threads == 2
            assert np.array_equal(one.epochs, two.epochs) and np.array_equal(one.escaped, two.escaped)
            assert np.array_equal(one.weights, two.weights)


def test_stopping_rule_counts_seeds_in_index_order():
    """Seeds finishing out of order (as on several threads): the limit waits for the finished prefix."""
    from phasetools.training._reshuffle import CENSORED, ESCAPED, _Schedule
    sched = _Schedule(6, 2)
    sched.finish(1, ESCAPED)
    sched.finish(2, ESCAPED)
    assert sched.limit[0] == 6                                  # seed 0 still running: it may escape
    sched.finish(0, CENSORED)
    assert sched.limit[0] == 3 and sched.done == 3              # seeds 0, 1, 2 hold the 2 escapes
    late = _Schedule(6, 2)
    late.finish(2, ESCAPED)
    late.finish(0, ESCAPED)
    assert late.limit[0] == 6
    late.finish(1, ESCAPED)                                     # the 2nd escape in index order is seed 1
    assert late.limit[0] == 2


def test_reduced_shuffle_run_stopping_rule(draw1):
    """The run ends at the first seed index where ``min_escapes`` seeds escaped, and those seeds are the
    first ones of the run without the rule (same streams)."""
    full = _stop_rule_run(draw1, n_seeds=40, n_threads=1)
    stopped = _stop_rule_run(draw1, n_seeds=40, min_escapes=12, n_threads=2)
    m = int(np.searchsorted(np.cumsum(full.escaped), 12)) + 1    # the 12th escape is seed m - 1
    assert full.escaped.sum() > 12 and full.n_run == 40 and full.min_escapes is None
    assert not full.escaped[:m].all()                            # censored seeds inside the prefix count too
    assert stopped.n_run == m < 40 and stopped.escaped.sum() == 12 and stopped.escaped[-1]
    assert stopped.n_seeds == 40 and stopped.min_escapes == 12
    assert np.array_equal(stopped.epochs, full.epochs[:m]) and np.array_equal(stopped.weights, full.weights[:m])
    # not enough escapes: every allowed seed runs
    few = _stop_rule_run(draw1, n_seeds=10, min_escapes=int(full.escaped[:10].sum()) + 1, n_threads=2)
    assert few.n_run == 10 and np.array_equal(few.epochs, full.epochs[:10])
    with pytest.raises(ValueError, match="min_escapes"):
        _stop_rule_run(draw1, n_seeds=4, min_escapes=0)


def test_reduced_shuffle_run_general_kernel_equals_the_r2_kernel(draw1):
    """r = 2 runs a kernel with the 2 x 2 products in registers; the general-r kernel gives the same
    weights to rounding (both are checked against the trainer above: r = 2 and r = 1)."""
    from phasetools.training import _reshuffle as rs
    init = np.array([[[0.62, 0.05], [-0.03, 0.55]]] * 3)
    xs, ys = rs._mode_projections(draw1, 2)
    D = rs._sample_products(xs, ys)
    consts = np.array([0.1, 0.35, 1.0, -np.inf])
    ints = np.array([6, 85, 4, 0, 1], dtype=np.int64)
    st = np.array([1, 2, 3, 4], dtype=np.uint64)
    limit = np.array([1], dtype=np.int64)
    Wa, Wb = init.copy(), init.copy()
    pm = np.empty(512, dtype=np.int64)
    assert rs._seed_kernel_r2(Wa, D, pm, st.copy(), consts, ints, limit, 0) == (4, rs.CENSORED)
    assert rs._seed_kernel(Wb, D, pm, st.copy(), (0.0, 0.0), consts, ints, limit, 0) == (4, rs.CENSORED)
    assert np.allclose(Wa, Wb, rtol=0, atol=1e-14) and np.abs(Wa - init).max() > 1e-3


def test_prediction_b_stopping_rule_is_recorded(draw1):
    from phasetools.training import predict_shuffled_escape
    kw = dict(n_layers=3, weight_decay=0.35, lr=0.1, batch_size=6, max_epochs=400)
    p = predict_shuffled_escape(draw1, rel_error=0.25, **kw)             # 16 escapes
    assert "until 16 escaped (relative standard error <= 0.25), at most 64" in p.assumptions
    assert "16 of 16 simulated seeds escaped" in p.assumptions
    allseeds = predict_shuffled_escape(draw1, rel_error=None, n_seeds=16, **kw)
    assert p.tau_epochs == allseeds.tau_epochs                           # the same 16 seeds
    assert "no stopping rule" in allseeds.assumptions
    for bad in (0.0, 1.0, -0.1):
        with pytest.raises(ValueError, match="rel_error"):
            predict_shuffled_escape(draw1, rel_error=bad, **kw)


def test_prediction_b_record_and_delegation(draw1):
    from phasetools.training import predict_shuffled_escape
    p = predict_shuffled_escape(draw1, n_layers=3, width=10, weight_decay=0.35, lr=0.1, batch_size=6, n_seeds=16)
    assert p.regime == "sgd_shuffle" and p.sampling == "shuffle" and p.coupled
    assert p.steps_per_epoch == 85 and p.tau_steps == pytest.approx(85 * p.tau_epochs)
    assert p.tau_time == pytest.approx(0.1 * p.tau_steps)
    assert "exact reduced simulation" in p.assumptions and "of 16 simulated seeds" in p.assumptions
    rep = predict_escape(draw1, n_layers=3, width=10, weight_decay=0.35, lr=0.1, batch_size=6)
    assert p.b_target == rep.b_target and p.barrier == rep.barrier
    assert p.tau_epochs > 2 * rep.tau_epochs                     # reshuffling escapes later than replacement
    q = predict_escape(draw1, n_layers=3, width=10, weight_decay=0.35, lr=0.1, batch_size=6, sampling="shuffle")
    again = predict_shuffled_escape(draw1, n_layers=3, weight_decay=0.35, lr=0.1, batch_size=6)
    assert q.tau_epochs == again.tau_epochs                      # same defaults, same rng: reproducible
    with pytest.raises(ValueError, match="width"):
        predict_shuffled_escape(draw1, n_layers=3, width=1, weight_decay=0.35, lr=0.1, batch_size=6)


def test_prediction_b_cross_mode_entries_drive_the_escape(draw1):
    """Without the cross-mode entries (one scalar chain per mode) the escape is slower: 3x at B = 6, 25x at B = 8
    (docs/predict.md); the simulation is seeded (rng=0), so the numbers are fixed."""
    from phasetools.training import predict_shuffled_escape
    kw = dict(n_layers=3, weight_decay=0.35, lr=0.1, batch_size=6, n_seeds=16, max_epochs=400)
    full = predict_shuffled_escape(draw1, **kw)
    chains = predict_shuffled_escape(draw1, cross=False, **kw)
    assert not chains.coupled and chains.tau_epochs > 2 * full.tau_epochs


#: Measured under random reshuffling (32 seeds from one trapped checkpoint, width 10 for the two-mode teacher
#: (eta 0.9, 0.8), width 1 for the one-mode teacher (eta 0.8); escape = the escaping mode's end-to-end singular
#: value below the MSE midpoint; ``python examples/predict_escape.py`` prints them as its "(b)" lines):
#: (teacher, draw, weight_decay, lr, B) -> tau in epochs.
MEASURED_B = {("2d", 1, 0.35, 0.1, 6): 5.66, ("2d", 1, 0.35, 0.1, 8): 88.4, ("2d", 1, 0.345, 0.1, 6): 25.8,
              ("2d", 2, 0.286, 0.1, 4): 3.41, ("1d", 1, 0.55, 0.1, 6): 23.8}


@pytest.mark.slow
def test_prediction_b_is_within_a_factor_3_of_the_recorded_measurements():
    from phasetools.training import predict_shuffled_escape
    for (teacher, draw, wd, lr, B), tau in MEASURED_B.items():
        d = GaussianTeacher([0.9, 0.8] if teacher == "2d" else [0.8]).sample(512, rng=draw)
        p = predict_shuffled_escape(d, n_layers=3, weight_decay=wd, lr=lr, batch_size=B)
        assert 1 / 3 <= tau / p.tau_epochs <= 3, (teacher, draw, wd, lr, B, tau, p.tau_epochs)


@pytest.mark.slow
def test_prediction_b_matches_a_trained_width_10_network():
    """16 trained seeds (width 10) against the prediction (64 simulated seeds): the log-ratio's standard error is
    sqrt(1/16 + 1/64) = 0.28, so x2 is 2.5 standard errors; the scalar chains (x3-x25 off) or the
    with-replacement theory (x8 here) fail it."""
    from phasetools.stats import exponential_mle
    from phasetools.training import escape_epochs, predict_shuffled_escape, prepare_trap
    d = GaussianTeacher([0.9, 0.8]).sample(512, rng=1)
    trap = prepare_trap(d, trap_weight_decays=(0.0, 0.345), trap_epochs=(300, 300), n_layers=3, width=10, lr=0.08,
                        batch_size=64, n_seeds=16, rng=np.random.SeedSequence(4242))
    p = predict_shuffled_escape(d, n_layers=3, weight_decay=0.345, lr=0.1, batch_size=6)
    run = train(d, n_layers=3, width=10, lr=0.1, batch_size=6, sampling="shuffle", weight_decay=0.345,
                convention="paper", init=trap, epochs=300, log_every=1, rng=11)
    ep, ok = escape_epochs(run.log_epochs, run.singular_values[:, :, 1], p.b_target ** 3, direction="down")
    tau = exponential_mle(ep.astype(float), ~ok).tau
    assert 0.5 <= tau / p.tau_epochs <= 2.0, (tau, p.tau_epochs)


def test_cli_predict_escape_shuffle(capsys):
    import json as _json
    from phasetools.cli._main import main
    from phasetools.training import predict_shuffled_escape
    assert main(["predict", "escape", "--weight-decay", "0.35", "--batch-size", "6", "--sampling", "shuffle",
                 "--json"]) == 0
    row = _json.loads(capsys.readouterr().out)[0]
    assert row["sampling"] == "shuffle" and row["regime"] == "sgd_shuffle"
    assert row["tau_epochs"] == predict_shuffled_escape(GaussianTeacher([0.9, 0.8]).sample(512, rng=1), n_layers=3,
                                                        width=10, weight_decay=0.35, lr=0.1, batch_size=6).tau_epochs
    assert main(["predict", "escape", "--weight-decay", "0.35", "--batch-size", "6", "--sampling", "shuffle"]) == 0
    assert "prediction (b)" in capsys.readouterr().out
