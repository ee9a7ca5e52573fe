"""Adaptive multilevel splitting over the nonlinear trainer (phasetools.rare.NonlinearEngine).

The engine must move replicas exactly as :func:`phasetools.nonlinear.train` does, and the
AMS estimate of the escape time of a memorising modular-addition network under injected
noise must agree with brute force of the same trainer (slow test).
"""

import numpy as np
import pytest

from phasetools.nonlinear import adamw, fourier_ipr, modular_addition, quadratic_mlp, sgd, train
from phasetools.rare import AMSEscape, AMSOptions, NonlinearEngine, ams_nonlinear_escape, excursions

P, WIDTH = 23, 16
RELEASE = dict(lr=4.0, weight_decay=3e-3, temperature=7e-7)


@pytest.fixture(scope="module")
def memorising():
    """A memorising state (train accuracy high, test accuracy low) of p = 23, width 16."""
    task, model = modular_addition(P, 0.5, data_seed=0), quadratic_mlp(P, WIDTH)
    prep = train(task, model, adamw(1e-2, 0.0), epochs=150, n_seeds=1, log_every=150, rng=0, n_threads=1)
    assert prep.train_acc[0, -1] > 0.8 and prep.test_acc[0, -1] < 0.2
    return task, model, prep.weights[0]


def test_engine_moves_replicas_exactly_as_the_trainer(memorising):
    task, model, x0 = memorising
    eng = NonlinearEngine(task, model, lr=4.0, weight_decay=3e-3, n_threads=1)   # noise-free: deterministic
    x = np.tile(x0, (3, 1))
    xe, steps, stopped, xi, path = eng.advance(x, eng.streams(1, np.arange(3)), 5, -np.inf)
    ref = train(task, model, sgd(4.0, 3e-3), epochs=5, sampling="full", n_seeds=3, init=x0, log_every=5,
                rng=0, n_threads=1)
    np.testing.assert_allclose(xe, ref.weights, rtol=1e-12, atol=1e-14)
    assert steps.tolist() == [5, 5, 5] and not stopped.any()
    assert path.shape == (3, 5, model.n_params) and xi.shape == (3, 5)
    np.testing.assert_allclose(xi[:, -1], fourier_ipr(model, ref.weights), rtol=1e-12)
    np.testing.assert_allclose(eng.coordinate(path), xi, rtol=1e-12)


def test_engine_stops_at_the_low_level_and_advances_its_streams(memorising):
    task, model, x0 = memorising
    eng = NonlinearEngine(task, model, sign=-1.0, n_threads=1, **RELEASE)   # coordinate -IPR
    st = eng.streams(3, np.arange(4))
    low = float(eng.coordinate(x0[None])[0]) + 1e-9      # any step down in -IPR stops
    xe, steps, stopped, xi, path = eng.advance(np.tile(x0, (4, 1)), st, 30, low)
    assert st[:, 2].max() >= 1 and np.all(st[:, 2] == steps)
    for i in range(4):
        if stopped[i]:
            k = steps[i]
            assert xi[i, k - 1] <= low and np.all(xi[i, :k - 1] > low) and np.all(np.isnan(xi[i, k:]))
            np.testing.assert_array_equal(xe[i], path[i, k - 1])


def test_noise_streams_fix_the_path(memorising):
    task, model, x0 = memorising
    eng = NonlinearEngine(task, model, n_threads=1, **RELEASE)
    a = eng.advance(np.tile(x0, (2, 1)), eng.streams(5, np.arange(2)), 4, -np.inf)[0]
    b = eng.advance(np.tile(x0, (2, 1)), eng.streams(5, np.arange(2)), 4, -np.inf)[0]
    c = eng.advance(np.tile(x0, (2, 1)), eng.streams(6, np.arange(2)), 4, -np.inf)[0]
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert not np.allclose(a[0], a[1])      # each replica its own noise


def test_bad_input_names_the_parameter(memorising):
    task, model, x0 = memorising
    with pytest.raises(ValueError, match="coordinate"):
        NonlinearEngine(task, model, coordinate="nope", **RELEASE)
    with pytest.raises(ValueError, match="init"):
        ams_nonlinear_escape(task, model, x0[:-1], target=0.6, **RELEASE)
    with pytest.raises(ValueError, match="init is already past the target"):
        ams_nonlinear_escape(task, model, x0, target=0.1, **RELEASE)
    with pytest.raises(ValueError, match="sampling"):
        NonlinearEngine(task, model, sampling="nope", **RELEASE)


def test_small_ams_run_is_reproducible_and_in_epochs(memorising):
    task, model, x0 = memorising
    opts = AMSOptions(n_replicas=4, n_kill=1, n_runs=2, n_walkers=4, n_rounds=2, max_steps=300, chunk=8)
    kw = dict(target=0.502, start=0.4968, level=0.498, options=opts, rng=2, n_threads=1, **RELEASE)
    a = ams_nonlinear_escape(task, model, x0, **kw)
    b = ams_nonlinear_escape(task, model, x0, **kw)
    assert isinstance(a, AMSEscape) and a.convention == "epochs" and a.dt == 1.0
    assert a.order == "fourier_ipr" and a.noise["temperature"] == RELEASE["temperature"]
    assert np.isfinite(a.tau) and a.tau == b.tau and 0 < a.p <= 1
    assert a.tau > a.t_first       # the first leg is a part of the escape


@pytest.mark.slow   # about 1.5 minutes on one core
def test_ams_agrees_with_brute_force_on_a_memorising_network(memorising):
    """Escape of the Fourier IPR from the memorising state (0.497) to 0.505 under injected noise
    (full batch, lr 4, weight decay 3e-3, T = 7e-7): AMS and 100 brute-force releases agree within
    3 combined standard errors (the AMS error from the spread of its 10 runs, brute force's from
    its 100 escape times; every brute-force release escapes)."""
    task, model, x0 = memorising
    eng = NonlinearEngine(task, model, n_threads=1, **RELEASE)
    n = 100
    ex = excursions(eng, np.tile(x0, (n, 1)), eng.streams(11, np.arange(n)), low=-np.inf, high=0.505,
                    max_steps=400, chunk=64)
    assert np.all(ex.outcome == 2)
    bf, bf_se = ex.steps.mean(), ex.steps.std(ddof=1) / np.sqrt(n)
    res = ams_nonlinear_escape(task, model, x0, target=0.505, start=0.4971, level=0.498, rng=1, n_threads=1,
                               options=AMSOptions(n_replicas=20, n_kill=4, n_runs=10, n_walkers=20, n_rounds=3,
                                                  max_steps=500, chunk=16), **RELEASE)
    assert res.tau_stderr / res.tau < 0.1
    assert abs(res.tau - bf) < 3 * np.hypot(res.tau_stderr, bf_se), (res.tau, res.tau_stderr, bf, bf_se)


def test_drift_carried_escape_has_no_loop_term(memorising):
    """When no excursion from Sigma falls back to A and every AMS replica reaches B (p = 1),
    tau is the first leg plus the reactive time (it was NaN: the mean of no loops)."""
    task, model, x0 = memorising
    opts = AMSOptions(n_replicas=4, n_kill=1, n_runs=2, n_walkers=4, n_rounds=2, max_steps=300, chunk=8)
    res = ams_nonlinear_escape(task, model, x0, target=0.502, start=0.496, level=0.499, options=opts, rng=3,
                               n_threads=1, **{**RELEASE, "temperature": 5e-7})
    assert res.p == 1.0 and res.t_loop == 0.0
    assert np.isfinite(res.tau) and res.tau == pytest.approx(res.t_first + res.t_reactive)
