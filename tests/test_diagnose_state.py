"""phasetools.diagnose with weights: features, landscape, barrier, SGD noise on a missing feature, the summary
line, and cures measured against constant training (a small rank-1 trap)."""

from __future__ import annotations

import numpy as np
import pytest

from phasetools import io
from phasetools import training as tr
from phasetools.diagnose import (
    CureComparison,
    Stage,
    compare_cures,
    diagnose,
    diagnose_state,
    load_weights,
    plan_cure,
    plot_diagnosis,
    reseed,
    run_schedule,
)

WD = 0.258           # below the weak feature's coexistence point (0.304) on this draw: rank 2 is global


@pytest.fixture(scope="module")
def setup():
    t = tr.GaussianTeacher((0.9, 0.8))
    d = t.sample(512, rng=1)
    wtrap = tr.trap_weight_decay(d, 1, n_layers=3)
    trap = tr.prepare_trap(d, trap_weight_decays=(0.0, wtrap, WD), trap_epochs=(300, 600, 300), n_layers=3,
                           width=10, lr=0.08, batch_size=64, n_seeds=3, rng=2)
    return t, d, trap


def test_rank1_trap_is_diagnosed(setup):
    _, d, trap = setup
    D = diagnose_state(trap, d, weight_decay=WD, lr=0.08, batch_size=64)
    assert D.state == "local_minimum" and D.metastable and D.escape_mode == 1
    assert list(D.learned) == [True, False] and list(D.absent) == [False, True]
    assert D.effective_rank == 1
    assert D.feature_noise[1] < 1e-20 * D.noise_trace and D.feature_noise[0] > 1e-6 * D.noise_trace
    assert not D.sgd_can_start and D.tau_epochs == np.inf
    assert abs(D.barrier - D.barrier_up[1]) == 0 and 0 < D.barrier < 0.05
    assert abs(D.feature_lam[0] - D.lam_min[0]) < 0.05 * D.lam_min[0]
    assert np.all(D.layer_balance < 0.05)
    s = D.summary
    assert s.startswith("rank-1 metastable state at weight decay 0.258")
    for part in ("absent in every layer", "pure SGD cannot start it", f"the barrier is {D.barrier:.3g}",
                 "re-seeding it"):
        assert part in s


def test_seeded_feature_gets_noise_and_global_state_is_recognised(setup):
    _, d, trap = setup
    W = reseed(trap, d, mode=1, size=0.05, rng=0)
    D = diagnose_state([w[0] for w in W], d, weight_decay=WD, lr=0.08, batch_size=64)
    assert not D.absent[1] and D.feature_noise[1] > 1e-8 * D.noise_trace and D.sgd_can_start
    assert abs(D.feature_lam[1] - 0.05 ** 3) < 1e-3
    fresh = tr.train(d, n_layers=3, width=10, epochs=400, lr=0.08, batch_size=64, weight_decay=WD, rng=4,
                     convention="paper")
    G = diagnose_state(fresh, d, weight_decay=WD, lr=0.08, batch_size=64)
    assert G.escape_mode == -1 and G.effective_rank == 2 and "global state" in G.summary


def test_weights_readers(tmp_path, setup):
    _, _, trap = setup
    W = trap.weights(seed=0)
    sd = {"0.weight": W[0], "0.bias": np.zeros(W[0].shape[0]), "1.weight": W[1], "2.weight": W[2]}
    np.savez(tmp_path / "ckpt.npz", **sd)
    for got in (load_weights(sd), load_weights(tmp_path / "ckpt.npz"), load_weights(trap, seed=0)):
        assert all(np.array_equal(a, b) for a, b in zip(got, W))
    with pytest.raises(ValueError, match="bias"):
        load_weights({**sd, "0.bias": np.ones(W[0].shape[0])})
    with pytest.raises(ValueError, match="chain"):
        load_weights([W[0], W[0]])


def test_diagnose_run_store_and_figure(tmp_path, setup):
    t, d, trap = setup
    run = tr.train(d, n_layers=3, width=10, epochs=600, lr=0.08, batch_size=64, weight_decay=WD, init=trap,
                   log_every=5, test=t.test_set(), rng=3, convention="paper", n_seeds=None)
    D = diagnose(run, data=d)
    assert D.plateaus.n_plateaus == 1 and D.plateaus.plateau_censored[0]
    assert D.state.metastable and "on a plateau" in D.summary
    io.save(D, tmp_path / "d.h5")
    assert io.load(tmp_path / "d.h5") == D
    plot_diagnosis(D, tmp_path / "d.png", run=run)
    assert (tmp_path / "d.png").stat().st_size > 10_000


def test_schedule_carries_weights(setup):
    _, d, trap = setup
    s = run_schedule(d, trap, [Stage(5, 0.1), Stage(7, WD)], n_layers=3, width=10, lr=0.08, batch_size=64,
                     log_every=1, rng=0)
    assert s.log_epochs[-1] == 12 and s.train_mse.shape == (3, 13) and np.all(np.diff(s.log_epochs) > 0)


def test_plan_cure_dip_depth_and_length(setup):
    _, d, _ = setup
    p = plan_cure(d, n_layers=3, weight_decay=WD, mode=1, seed_size=0.1, lr=0.08, batch_size=64)
    assert 0.0 < p.dip_weight_decay < WD and p.dip_epochs > 0 and p.b_saddle > 0.1
    deeper = plan_cure(d, n_layers=3, weight_decay=WD, mode=1, seed_size=0.05, lr=0.08, batch_size=64)
    assert deeper.dip_weight_decay < p.dip_weight_decay
    with pytest.raises(ValueError, match="margin"):
        plan_cure(d, n_layers=3, weight_decay=WD, mode=1, seed_size=0.1, lr=0.08, margin=0.5)


def test_cures_against_constant_training(setup):
    """The theory's dip (with a re-seed below the saddle) frees the trap; a third of it, the dip alone, or the
    re-seed alone do not; the final test error equals fresh training's within its spread."""
    t, d, trap = setup
    p = plan_cure(d, n_layers=3, weight_decay=WD, mode=1, seed_size=0.1, lr=0.08, batch_size=64)
    dip = [Stage(p.dip_epochs, p.dip_weight_decay)]
    C = compare_cures(d, trap, {"dip alone": (dip, None), "re-seed alone": ([], 0.1), "re-seed + dip": (dip, 0.1),
                                "re-seed + short dip": ([Stage(max(1, p.dip_epochs // 3), p.dip_weight_decay)], 0.1)},
                      weight_decay=WD, epochs=600, n_layers=3, width=10, lr=0.08, batch_size=64,
                      test=t.test_set(), rng=7)
    assert isinstance(C, CureComparison)
    esc = dict(zip(C.names, C.escaped.sum(axis=1)))
    assert esc == {"constant": 0, "dip alone": 0, "re-seed alone": 0, "re-seed + dip": 3, "re-seed + short dip": 0,
                   "fresh weights": 3}
    i, f = C.names.index("re-seed + dip"), C.names.index("fresh weights")
    assert np.all(C.escape_epoch[i] <= 100)
    spread = max(np.std(C.final_test_mse[f], ddof=1), 1e-3)
    assert abs(np.mean(C.final_test_mse[i]) - np.mean(C.final_test_mse[f])) <= 2 * spread
    assert "re-seed + dip" in C.table()


def test_learned_feature_the_global_state_drops(setup):
    """At 0.392 (between the strong feature's coexistence point and spinodal) its learned state is metastable:
    the diagnosis names the downward escape and predicts its SGD time (training.predict_escape)."""
    _, d, _ = setup
    W = tr.aligned_weights(d, 0.392, n_layers=3, width=10, rank=1)
    D = diagnose_state(W, d, weight_decay=0.392, lr=0.08, batch_size=64)
    assert D.metastable and D.escape_mode == 0 and D.learned[0]
    assert D.barrier == D.barrier_down[0] and np.isfinite(D.tau_epochs) and D.tau_epochs > 1e3
    assert "learned but the global state drops it" in D.summary and "predicted to drop it" in D.summary
    assert np.isnan(D.cure_seed) and D.cure_epochs == -1


def test_checkpoints_over_time_give_spectra(setup):
    _, d, trap = setup
    W = trap.weights(seed=0)
    R = reseed(trap, d, mode=1, size=0.2, rng=0)
    log = {"epoch": np.arange(0, 1001, 10.0), "loss": np.full(101, 0.67)}
    D = diagnose(log, {0: W, 500: [w[0] for w in R]}, d, weight_decay=WD, lr=0.08, batch_size=64)
    assert list(D.sv_epochs) == [0, 500] and list(D.effective_rank) == [1, 1]
    assert D.layer_singular_values.shape[:2] == (2, 3)
    np.testing.assert_allclose(D.layer_singular_values[1, :, 1], 0.2, rtol=0.05)
    assert D.state.feature_seed[1].min() > 0.18 and not D.state.absent[1]


@pytest.mark.slow
def test_trap_that_never_escapes_in_2e4_epochs_escapes_within_100_with_the_theorys_dip(setup):
    t, d, trap = setup
    p = plan_cure(d, n_layers=3, weight_decay=WD, mode=1, seed_size=0.1, lr=0.08, batch_size=64)
    C = compare_cures(d, trap, {"re-seed + dip": ([Stage(p.dip_epochs, p.dip_weight_decay)], 0.1)},
                      weight_decay=WD, epochs=20_000, n_layers=3, width=10, lr=0.08, batch_size=64,
                      test=t.test_set(), log_every=10, rng=7)
    assert C.escaped.sum(axis=1).tolist() == [0, 3, 3]
    assert np.all(C.escape_epoch[1] <= 100)
