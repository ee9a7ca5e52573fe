"""phasetools.nonlinear measurements: weight-decay sweeps, escape sweeps, the escape laws and the verdicts."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from phasetools import nonlinear as nl
from phasetools.compare import AGREES, DISAGREES, NOT_TESTABLE


@pytest.fixture(scope="module")
def setup():
    return nl.modular_addition(11, 0.5), nl.quadratic_mlp(11, 24)


@pytest.fixture(scope="module")
def sweep(setup):
    t, m = setup
    return nl.weight_decay_sweep(t, m, nl.adamw(1e-2), [0.0, 1.0, 3.0], epochs_per_step=4, n_seeds=2, rng=3)


@pytest.fixture(scope="module")
def escape(setup):
    t, m = setup
    return nl.escape_sweep(t, m, prepare=nl.adamw(1e-2, 0.0), prepare_epochs=5, release_weight_decay=1e-3,
                           batch_size=[4, 8, 16], lr=1.0, release_epochs=4, n_seeds=3, log_every=2, rng=4)


def test_sweep_warm_starts_up_then_down(setup, sweep):
    t, m = setup
    assert sweep.test_acc.shape == (2, 3, 2)
    assert sweep.weight_decays.tolist() == [0.0, 1.0, 3.0]
    # the up sweep's first step is a plain run from fresh weights (same stream: step 0)
    first = nl.train(t, m, nl.adamw(1e-2, 0.0), epochs=4, n_seeds=2, log_every=4,
                     rng=np.random.SeedSequence(3, spawn_key=(0,)))
    assert np.array_equal(sweep.test_acc[0, 0], first.test_acc[:, -1])
    # the down sweep's top step continues from the up sweep's top step: it differs from it
    assert not np.array_equal(sweep.weight_norm[0, 2], sweep.weight_norm[1, 2])


def test_sweep_and_escape_store_and_load(tmp_path, sweep, escape):
    from phasetools.io import load, save

    path = tmp_path / "x.h5"
    a = save(sweep, path)
    b = save(escape, path)
    assert load(path, a).equal_values(sweep)
    assert load(path, b).equal_values(escape)


def test_escape_records_censoring(escape):
    assert escape.escape_epochs.shape == (3, 3) and escape.censored.shape == (3, 3)
    assert np.all(escape.escape_epochs[escape.censored] == escape.release_epochs)
    assert np.all(escape.n_escaped == (~escape.censored).sum(1))
    assert np.all(np.isnan(escape.tau[escape.n_escaped == 0]))
    assert np.all(escape.tau_lower > 0)
    assert np.allclose(escape.x, escape.batch_size / escape.lr)
    assert escape.reference_escape_time.shape == (3,) and escape.reference_lr == 1.0
    assert np.all(escape.reference_escape_time[escape.reference_censored] == 4 * (escape.steps_per_epoch[0]))


def test_escape_rejects_mismatched_points(setup):
    t, m = setup
    with pytest.raises(ValueError, match="batch_size and lr"):
        nl.escape_sweep(t, m, prepare=nl.adamw(), prepare_epochs=1, release_weight_decay=0.0, batch_size=[4, 8],
                        lr=[1.0, 2.0, 3.0], release_epochs=1)


# ---------------------------------------------------------------------------- the escape laws
def _synthetic(law, x, rng=0, rel=0.05):
    g = np.random.default_rng(rng)
    if law == "arrhenius":
        tau = 3.0 * np.exp(0.4 * x)
    elif law == "power":
        tau = 2.0 * x ** 1.5
    else:
        tau = 50.0 * np.ones_like(x)
    tau = tau * np.exp(rel * g.standard_normal(x.size))
    return tau, rel * tau


@pytest.mark.parametrize("law", ["arrhenius", "power", "deterministic"])
def test_fit_escape_laws_accepts_the_true_law_and_rejects_the_others(law):
    x = np.linspace(2.0, 16.0, 8)
    tau, se = _synthetic(law, x)
    fit = nl.fit_escape_laws(x, tau, se)
    assert fit[f"{law}_pvalue"] > 0.01
    others = [k for k in ("arrhenius", "power", "deterministic") if k != law and not (law == "deterministic")]
    for k in others:
        assert fit[f"{k}_pvalue"] < 0.01, (k, fit)
    if law == "arrhenius":
        assert abs(fit["arrhenius_slope"] - 0.4) < 4 * fit["arrhenius_slope_stderr"]
    if law == "deterministic":  # nested in both others: they fit too, with slope / exponent near 0
        assert abs(fit["arrhenius_slope"]) < 4 * fit["arrhenius_slope_stderr"]


def test_fit_escape_laws_without_enough_points_gives_nan():
    fit = nl.fit_escape_laws([1.0, 2.0], [3.0, 4.0], [0.3, 0.4])
    assert np.isnan(fit["arrhenius_pvalue"]) and fit["arrhenius_dof"] == 0
    assert fit["deterministic_dof"] == 1
    same_x = nl.fit_escape_laws([2.0, 2.0, 2.0], [3.0, 4.0, 5.0], [0.3, 0.4, 0.5])  # B/lr never varied
    assert np.isnan(same_x["arrhenius_pvalue"]) and np.isnan(same_x["power_pvalue"])
    assert same_x["deterministic_dof"] == 2


# ---------------------------------------------------------------------------- verdicts
def _sweep_with(sweep, up, down, spread=0.0):
    up, down = np.asarray(up, float), np.asarray(down, float)
    acc = np.stack([up, down])[:, :, None] + spread * np.array([-1.0, 1.0])
    return dataclasses.replace(sweep, weight_decays=np.arange(up.size, dtype=float), test_acc=acc)


def _outcomes(sweep=None, escape=None):
    return {v.quantity: v.outcome for v in nl.verdicts(sweep, escape)}


def test_jump_and_hysteresis_verdicts(sweep):
    jump = _sweep_with(sweep, [0.1, 0.1, 0.12, 0.95, 0.97], [0.1, 0.95, 0.96, 0.96, 0.97])
    out = _outcomes(jump)
    assert out["first-order transitions in weight decay"] == AGREES
    assert out["hysteresis"] == AGREES
    smooth = _sweep_with(sweep, [0.1, 0.3, 0.5, 0.7, 0.9], [0.1, 0.3, 0.5, 0.7, 0.9])
    out = _outcomes(smooth)
    assert out["first-order transitions in weight decay"] == DISAGREES
    assert out["hysteresis"] == DISAGREES
    flat = _sweep_with(sweep, [0.1, 0.12, 0.1, 0.11, 0.1], [0.1, 0.1, 0.1, 0.1, 0.1])
    out = _outcomes(flat)
    assert out["first-order transitions in weight decay"] == NOT_TESTABLE
    assert out["hysteresis"] == NOT_TESTABLE
    coarse = _sweep_with(sweep, [0.05, 0.1, 0.45, 1.0, 1.0], [1.0] * 5)
    v = {v.quantity: v for v in nl.verdicts(coarse)}["first-order transitions in weight decay"]
    assert v.outcome == NOT_TESTABLE and "refine the grid" in v.detail
    # a difference within three standard errors across seeds is not hysteresis
    noisy = _sweep_with(sweep, [0.1, 0.1, 0.9, 0.9, 0.9], [0.1, 0.3, 0.9, 0.9, 0.9], spread=0.4)
    assert _outcomes(noisy)["hysteresis"] == DISAGREES


def _escape_with(escape, epochs, censored, laws=None, prepared=(1.0, 0.1), reference=None, ref_censored=None):
    epochs = np.atleast_2d(np.asarray(epochs, float))
    censored = np.atleast_2d(np.asarray(censored, bool))
    n_points, n_seeds = epochs.shape
    ref = np.full(n_seeds, 1e9) if reference is None else np.asarray(reference, float)
    ref_c = np.ones(n_seeds, bool) if ref_censored is None else np.asarray(ref_censored, bool)
    fields = dict(escape_epochs=epochs, censored=censored, n_escaped=(~censored).sum(1), n_seeds=n_seeds,
                  batch_size=np.full(n_points, 8), lr=np.ones(n_points), steps_per_epoch=np.full(n_points, 10),
                  prepared_train_acc=np.full(n_seeds, prepared[0]), prepared_test_acc=np.full(n_seeds, prepared[1]),
                  reference_lr=1.0, reference_escape_time=ref, reference_censored=ref_c)
    return dataclasses.replace(escape, **fields, **(laws or {}))


def test_metastable_verdict(escape):
    q = "metastable memorising state"
    sgd_times = [[10, 80, 200, 30, 400]]
    trapped_without_noise = _escape_with(escape, sgd_times, [False] * 5)
    assert _outcomes(escape=trapped_without_noise)[q] == AGREES
    # full-batch descent escapes too, at the same lr*steps (epochs x 10 steps x lr 1): drift
    drift = _escape_with(escape, sgd_times, [False] * 5, reference=np.array(sgd_times[0]) * 10 * 1.2,
                         ref_censored=[False] * 5)
    assert _outcomes(escape=drift)[q] == DISAGREES
    much_slower = _escape_with(escape, sgd_times, [False] * 5, reference=np.array(sgd_times[0]) * 10 * 5,
                               ref_censored=[False] * 5)
    assert _outcomes(escape=much_slower)[q] == NOT_TESTABLE
    nothing = _escape_with(escape, [[500] * 5], [True] * 5)
    assert _outcomes(escape=nothing)[q] == NOT_TESTABLE
    not_memorised = _escape_with(escape, sgd_times, [False] * 5, prepared=(1.0, 0.99))
    assert _outcomes(escape=not_memorised)[q] == NOT_TESTABLE


def test_arrhenius_verdict(escape):
    q = "Arrhenius escape in B/lr"
    base = _escape_with(escape, [[10, 20, 30]] * 4, [[False] * 3] * 4)
    x = np.linspace(2.0, 16.0, 4)
    for law, expected in (("arrhenius", AGREES), ("power", DISAGREES), ("deterministic", NOT_TESTABLE)):
        tau, se = _synthetic(law, x)
        res = dataclasses.replace(base, **nl.fit_escape_laws(x, tau, se))
        assert _outcomes(escape=res)[q] == expected, law
    two = dataclasses.replace(base, **nl.fit_escape_laws(x[:2], *_synthetic("arrhenius", x[:2])))
    assert _outcomes(escape=two)[q] == NOT_TESTABLE


def test_verdicts_without_results_are_not_testable():
    assert set(_outcomes().values()) == {NOT_TESTABLE}
    assert len(nl.verdicts()) == 4


def test_arrhenius_verdict_disagrees_when_more_noise_slows_the_escape(escape):
    """Censoring-aware: a noisier point that never escapes (lower bound far above) contradicts activated escape."""
    q = "Arrhenius escape in 1/temperature"
    fields = dict(x_law="1/temperature", temperature=np.array([0.0, 1e-6, 1e-5]), batch_size=np.full(3, 8),
                  lr=np.ones(3), steps_per_epoch=np.ones(3, dtype=np.int64), tau=np.array([100.0, 110.0, np.nan]),
                  tau_stderr=np.array([40.0, 45.0, np.nan]), tau_lower=np.array([50.0, 55.0, 5000.0]),
                  arrhenius_dof=0)
    slowed = dataclasses.replace(escape, **fields)
    v = {v.quantity: v for v in nl.verdicts(None, slowed)}[q]
    assert v.outcome == DISAGREES and "slower" in v.detail
    faster = dataclasses.replace(slowed, tau=np.array([5000.0, 110.0, 20.0]), tau_stderr=np.array([900.0, 45.0, 8.0]),
                                 tau_lower=np.array([3000.0, 55.0, 10.0]))
    assert {v.quantity: v for v in nl.verdicts(None, faster)}[q].outcome != DISAGREES


def test_metastable_verdict_compares_the_reference_with_the_first_noisy_point(escape):
    """With a noise-free first point (temperature 0), the comparison uses the first point with noise."""
    q = "metastable memorising state"
    times = [[500, 500, 500], [40, 60, 500]]  # point 0: T = 0, nothing escapes; point 1: T > 0, two escape
    base = _escape_with(escape, times, [[True] * 3, [False, False, True]])
    res = dataclasses.replace(base, x_law="1/temperature", temperature=np.array([0.0, 1e-3]),
                              n_escaped=np.array([0, 2]))
    v = {v.quantity: v for v in nl.verdicts(None, res)}[q]
    assert v.outcome == AGREES and "2 seed(s) freed only with noise" in v.measured
    # the noise-free first point escapes exactly as the reference does; the noisy point 5x later: not drift-like
    times = [[10, 20, 500], [50, 100, 500]]
    base = _escape_with(escape, times, [[False, False, True], [False, False, True]],
                        reference=np.array([100.0, 200.0, 5000.0]), ref_censored=[False, False, True])
    res = dataclasses.replace(base, x_law="1/temperature", temperature=np.array([0.0, 1e-3]))
    assert {v.quantity: v for v in nl.verdicts(None, res)}[q].outcome == NOT_TESTABLE
