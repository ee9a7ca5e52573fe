"""The paper's protocols E1, E2, E4, E5 (phasetools.training) at reduced scale.

Oracles: the spinodals of phasetools.theory (exact closed forms) for the E1 drops on
population data; the invariance of the rank-deficient manifold (science brief 5.3) for the
decreasing sweep and the float64 traps; the deterministic saddle-plateau delay of E5 (a
larger residual seed escapes sooner; full-batch runs are noise-free).
"""

import numpy as np
import pytest

import phasetools.theory as th
from phasetools.io import load, save
from phasetools.training import (ArrheniusSweep, GaussianTeacher, SparseGrokking, TrapRelease, WeightDecaySweep,
                                 arrhenius_sweep, escape_epochs, prepare_trap, sparse_grokking, trap_and_release,
                                 trap_weight_decay, weight_decay_sweep)

TEACHER = GaussianTeacher([0.9, 0.8])
#: The paper's network and learning rate (the library functions have no paper defaults).
NET = dict(n_layers=3, width=10, lr=0.08)
#: The paper's E5: 25 of 5000 samples, weight decay 0.0025, lr 0.1.
E5 = dict(weight_decay=0.0025, lr=0.1, n_layers=3, width=10)
#: The paper's E2/E4 release: lr 0.08, batch size 64.
PAPER = dict(NET, batch_size=64)


@pytest.fixture(scope="module")
def sample():
    return TEACHER.sample(512, rng=1)


@pytest.fixture(scope="module")
def up_sweep():
    wds = np.round(np.arange(0.33, 0.4301, 0.01), 2)
    return weight_decay_sweep(TEACHER.moments, wds, **NET, n_seeds=2, test=TEACHER, rng=3, quiet=True)


def test_e1_increasing_population_drops_at_the_spinodals(up_sweep):
    sp = np.sort(th.critical_points(3, [0.9, 0.8], convention="paper").gamma_sp)  # 0.3509, 0.4105
    assert up_sweep.direction == "increasing"
    assert up_sweep.converged.all()
    assert (up_sweep.rank[:, 0] == 2).all() and (up_sweep.rank[:, -1] == 0).all()
    drops = up_sweep.drop_positions()          # first weight decay without the mode
    for s in range(up_sweep.n_seeds):
        for k in range(2):
            b = drops[s, k]
            j = int(np.nonzero(up_sweep.weight_decays == b)[0][0])
            assert up_sweep.weight_decays[j - 1] < sp[k] <= b      # the spinodal lies in the step where the rank drops
            assert b - sp[k] <= 0.01                       # the 0.01
    assert [d[2:] for d in up_sweep.drops(0)] == [(2, 1), (1, 0)]
    # test MSE: rank 0 is the output variance per output (1.0) exactly
    assert up_sweep.test_mse[:, -1] == pytest.approx(1.0, abs=1e-12)


def test_e1_decreasing_sweep_from_rank_zero_stays_at_rank_zero():
    wds = np.round(np.arange(0.45, -0.001, -0.05), 2)
    down = weight_decay_sweep(TEACHER.moments, wds, **NET, n_seeds=2, rng=4, quiet=True)
    assert down.direction == "decreasing"
    assert (down.rank == 0).all()                  # no lower spinodal for n_layers = 3
    assert np.nanmax(down.singular_values) < 1e-12


def test_e1_finite_sample_drops_follow_the_sample_spectrum(sample):
    m = sample.moments()
    sp = np.sort(th.critical_points(3, m.spectrum, m.a, convention="paper").gamma_sp)
    wds = np.round(np.arange(0.30, 0.4601, 0.01), 2)
    res = weight_decay_sweep(sample, wds, **NET, n_seeds=1, rng=5, quiet=True)
    drops = res.drop_positions()[0]
    # the sample's moments are not exactly aligned: the brief's 0.01-0.02 between the drops
    # and the spinodals of the raw empirical singular values
    assert np.all(np.abs(drops - sp) <= 0.02 + 1e-12)


def test_e1_minibatch_sweep_runs_and_records_sgd(sample):
    res = weight_decay_sweep(sample, [0.0, 0.2, 0.45], **NET, batch_size=64, epochs_per_step=50, n_seeds=2, rng=6,
                             quiet=True)
    assert res.batch_size == 64 and res.epochs_per_step == 50
    assert (res.epochs[:, 0] == 550).all() and (res.epochs[:, 1] == 50).all()
    assert (res.rank[:, 0] == 2).all() and (res.rank[:, -1] == 0).all()


def test_escape_epochs_first_crossing_and_censoring():
    log = np.array([0, 10, 20, 30])
    series = np.array([[1.0, 0.9, 0.4, 0.3], [1.0, 1.0, 1.0, 1.0], [1.0, np.nan, np.nan, np.nan]])
    ep, ok = escape_epochs(log, series, 0.5, direction="down")
    assert ep.tolist() == [20, 30, 30] and ok.tolist() == [True, False, False]
    ep, ok = escape_epochs(log, -series, -0.5, direction="up")
    assert ep.tolist() == [20, 30, 30]
    with pytest.raises(ValueError, match="direction"):
        escape_epochs(log, series, 0.5, direction="sideways")


@pytest.fixture(scope="module")
def rank1_release(sample):
    tb = trap_weight_decay(sample, 1, n_layers=3)
    return trap_and_release(sample, target_weight_decay=0.32, trap_weight_decays=(0.0, tb), trap_epochs=(300, 600),
                            epochs=300, **PAPER, n_seeds=4, test=TEACHER.test_set(), rng=7, quiet=True)


def test_e2_float64_rank1_trap_does_not_escape(rank1_release):
    r = rank1_release
    assert r.trapped.all() and (r.trap_rank == 1).all() and r.target_rank == 2
    # the residual seed of mode 2 has decayed to the float64 round-off floor (brief 5.3) ...
    assert np.all(r.seed_size < 1e-12)
    # ... so nothing escapes: every seed is right-censored at the last epoch
    t, cens = r.escape_times("mse")
    assert cens.all() and (t == 300).all()
    fit = r.fit()
    assert fit.tau is None and fit.tau_lower > 300
    # protocol (i): fresh weights converge within tens of epochs (the paper's ~10)
    assert r.reference_escaped.all() and np.all(r.reference_epoch < 50)
    assert r.plateau_level > r.midpoint > r.target_level
    t_steps, _ = r.escape_times("mse", "steps")
    t_time, _ = r.escape_times("mse", "time")
    assert np.allclose(t_steps, 8 * t) and np.allclose(t_time, 0.08 * 8 * t)


def test_e2_untrapped_checkpoint_is_flagged(sample):
    # the paper's fixed 0.361 lies below this draw's weak spinodal (0.3619): no trap (brief E2(c))
    r = trap_and_release(sample, target_weight_decay=0.32, trap_weight_decays=(0.0, 0.361), trap_epochs=(200, 200),
                         epochs=100, **PAPER, n_seeds=2, n_reference=2, rng=8, quiet=True)
    assert (r.trap_rank == 2).all() and not r.trapped.any()
    with pytest.raises(ValueError, match="trapped"):
        r.fit()


def test_e5_escape_delay_is_set_by_the_residual_seed():
    res = sparse_grokking(TEACHER, pool_size=500, n_train=25, test_size=1000, trap_epochs=(60, 125, 150, 400),
                          batch_size=(64,), n_seeds=1, epochs=3000, log_every=5, rng=9, quiet=True, **E5)
    assert res.full_batch.all()
    order = np.argsort(res.trap_epochs)
    assert np.all(np.diff(res.seed_size[order]) < 0)      # longer preparation = smaller seed
    trapped, ep, ok = res.trapped[order], res.escape_epoch[order], res.escaped[order]
    assert not trapped[0] and trapped[1:].all()           # 60 epochs leave mode 2 above the threshold
    assert ok[1:3].all() and 0 < ep[1] < ep[2] < 3000     # smaller seed -> later escape (a plateau)
    assert not ok[3]                                      # a seed at ~1e-12 never escapes


def test_e5_full_batch_is_deterministic():
    kw = dict(pool_size=300, n_train=25, test_size=500, trap_epochs=(60,), batch_size=(64,), n_seeds=1,
              epochs=400, log_every=5, rng=10, quiet=True, **E5)
    a, b = sparse_grokking(TEACHER, **kw), sparse_grokking(TEACHER, **kw)
    assert a.equal_values(b)


def test_e4_sweep_points_and_temperature_scaling(sample):
    trap = prepare_trap(sample, trap_weight_decays=(0.0, 0.35), trap_epochs=(100, 100), **PAPER, n_seeds=3, rng=11)
    sw = arrhenius_sweep(sample, trap, lr=[0.05, 0.1], batch_size=[64, 32], target_weight_decay=0.35, epochs=40,
                         levels=(0.46, 0.70), rng=12, quiet=True)
    n_ok = int(np.all(np.isfinite(trap.final_params), axis=1).sum())    # diverged seeds are not released
    assert trap.stats["diverged_in_preparation"] + trap.n_seeds == 3
    assert sw.escape_epoch.shape == (2, n_ok) and n_ok >= 1
    # T_eff = lr tr(Sigma) / (2 B N_theta) (N - B)/(N - 1) at the same checkpoint
    f = lambda lr, B: lr / B * (512 - B) / 511  # noqa: E731
    assert sw.temperature[1] / sw.temperature[0] == pytest.approx(f(0.1, 32) / f(0.05, 64), rel=1e-12)
    assert (sw.steps_per_epoch == [8, 16]).all()
    ok = np.isfinite(sw.tau_epochs)                      # the three time units: epochs, steps, lr * steps
    assert np.allclose(sw.tau_time[ok], (sw.lr * sw.tau_steps)[ok])
    assert np.allclose(sw.tau_time_low, sw.lr * sw.steps_per_epoch * sw.tau_epochs_low)
    if (sw.n_escaped > 0).sum() < 2:
        with pytest.raises(ValueError, match="escapes"):
            sw.fit()


@pytest.mark.parametrize("make", ["sweep", "release"])
def test_protocol_results_roundtrip_hdf5(tmp_path, make, up_sweep, rank1_release):
    res = up_sweep if make == "sweep" else rank1_release
    path = tmp_path / "p.h5"
    name = save(res, path)
    back = load(path, name)
    assert type(back) is type(res) and back == res


def test_bad_input(sample):
    with pytest.raises(ValueError, match="weight_decays"):
        weight_decay_sweep(TEACHER.moments, [0.1, 0.3, 0.2], **NET)
    with pytest.raises(ValueError, match="batch_size"):
        weight_decay_sweep(TEACHER.moments, [0.1, 0.2], **NET, batch_size=8)
    with pytest.raises(ValueError, match="epochs_per_step"):
        weight_decay_sweep(TEACHER.moments, [0.1, 0.2], **NET, epochs_per_step=8)
    with pytest.raises(ValueError, match="rank_threshold"):
        weight_decay_sweep(TEACHER.moments, [0.1, 0.2], **NET, rank_threshold=-1)
    with pytest.raises(ValueError, match="trap"):
        trap_and_release(sample, target_weight_decay=0.32, epochs=10, **PAPER, trap="nope")
    with pytest.raises(ValueError, match="rank"):
        trap_weight_decay(sample, 2, n_layers=3)
    with pytest.raises(ValueError, match="epochs"):
        trap_and_release(sample, target_weight_decay=0.32, epochs=0, **PAPER)
    with pytest.raises(ValueError, match="TrainingRun"):
        arrhenius_sweep(sample, None, lr=[0.1], batch_size=64, target_weight_decay=0.32, epochs=5, levels=(0.4, 0.7))
    with pytest.raises(ValueError, match="lr"):
        trap = prepare_trap(sample, trap_weight_decays=(0.0,), trap_epochs=(5,), **PAPER, rng=1)
        arrhenius_sweep(sample, trap, lr=[-0.1], batch_size=64, target_weight_decay=0.32, epochs=5,
                        levels=(0.4, 0.7))


def test_result_kinds_are_registered():
    from phasetools.results import registry
    kinds = registry()
    for cls in (WeightDecaySweep, TrapRelease, ArrheniusSweep, SparseGrokking):
        assert cls.__name__ in kinds or any(v is cls for v in kinds.values())


def test_training_from_a_checkpoint_leaves_it_unchanged(sample):
    trap = prepare_trap(sample, trap_weight_decays=(0.0,), trap_epochs=(3,), **PAPER, n_seeds=2, rng=13)
    before = trap.final_params.copy()
    from phasetools.training import train
    train(sample, n_layers=3, width=10, lr=0.08, weight_decay=0.3, convention="paper", batch_size=64, epochs=3,
          init=trap, rng=14)
    assert np.array_equal(trap.final_params, before)


def test_prepare_trap_returns_a_new_run_with_the_preparation_count(sample, monkeypatch):
    """The last stage's run is not written into: prepare_trap returns a new result."""
    import phasetools.training._trap as trap_module
    made = []
    real = trap_module.train

    def spy(*a, **k):
        made.append(real(*a, **k))
        return made[-1]

    monkeypatch.setattr(trap_module, "train", spy)
    before = None
    trap = prepare_trap(sample, trap_weight_decays=(0.0, 0.3), trap_epochs=(3, 3), **PAPER, n_seeds=2, rng=15)
    last = made[-1]
    assert trap is not last and "diverged_in_preparation" not in last.stats
    assert trap.stats["diverged_in_preparation"] == 0 and trap.equal_values(last)
    assert before is None
