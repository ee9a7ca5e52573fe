"""Training schedules (phasetools.training.Schedule: weight-decay dips and anneals, bursts of injected noise, label
noise, learning rate or small batches) and the exact escape epochs of compare_cures.

Oracles: a run without a schedule is the run it always was (a schedule that changes nothing equals it bit for bit);
a scheduled run equals the chain of plain train calls its streams are documented to be; the first phase sees the
plain run's batches; the recorded table is the options that were applied (step counts follow the batch sizes)."""

from __future__ import annotations

import numpy as np
import pytest

from phasetools import io
from phasetools import training as tr
from phasetools.diagnose import (
    Stage,
    compare_cures,
    plan_cure,
    plot_cures,
    reseed,
    run_schedule,
)
from phasetools.training import SCHEDULE_COLUMNS, Phase, Schedule

T = tr.GaussianTeacher((0.9, 0.8))
KW = {"n_layers": 3, "width": 6, "lr": 0.05, "batch_size": 16, "weight_decay": 0.1, "convention": "paper",
      "log_every": 3}


@pytest.fixture(scope="module")
def data():
    return T.sample(128, rng=1)


def test_unused_schedule_leaves_the_run_unchanged(data):
    plain = tr.train(data, epochs=20, n_seeds=3, rng=5, test=T.test_set(), temperature=1e-3, label_noise=0.1, **KW)
    same = tr.train(data, epochs=20, n_seeds=3, rng=5, test=T.test_set(), temperature=1e-3, label_noise=0.1,
                    schedule=Schedule([Phase(20)]), **KW)
    assert plain.schedule is None and "schedule" not in plain.config
    for f in ("final_params", "initial_params", "train_mse", "test_mse", "singular_values", "log_epochs", "steps"):
        assert np.array_equal(getattr(plain, f), getattr(same, f)), f
    assert same.seeds == plain.seeds and same.epochs == 20
    np.testing.assert_array_equal(same.schedule, [[20, 0.05, 16, 0.1, 1e-3, 0.1]])


def test_schedule_is_the_documented_chain_of_train_calls(data):
    sched = Schedule.dip(0.0, 7) + Schedule.burst(3, lr=0.1, batch_size=8, temperature=1e-3, label_noise=0.1)
    run = tr.train(data, epochs=20, n_seeds=3, rng=5, test=T.test_set(), schedule=sched, **KW)
    child = np.random.SeedSequence(5).spawn(2)
    base = {k: KW[k] for k in ("n_layers", "width", "convention", "log_every")}
    r1 = tr.train(data, epochs=7, weight_decay=0.0, lr=0.05, batch_size=16, n_seeds=3, rng=5, **base)
    r2 = tr.train(data, epochs=3, weight_decay=0.1, lr=0.1, batch_size=8, temperature=1e-3, label_noise=0.1,
                  init=r1, rng=child[0], **base)
    r3 = tr.train(data, epochs=10, weight_decay=0.1, lr=0.05, batch_size=16, init=r2, rng=child[1], **base)
    assert np.array_equal(run.final_params, r3.final_params)
    assert np.array_equal(run.initial_params, r1.initial_params)
    assert list(run.log_epochs) == [0, 3, 6, 7, 10, 13, 16, 19, 20]
    assert run.test_mse.shape == (3, 9) and run.layer_singular_values.shape[:2] == (3, 9)
    assert np.all(run.steps == 7 * 8 + 3 * 16 + 10 * 8)
    assert run.schedule.shape == (2, len(SCHEDULE_COLUMNS))
    np.testing.assert_array_equal(run.schedule[1], [3, 0.1, 8, 0.1, 1e-3, 0.1])
    assert run.weight_decay == 0.1 and run.lr == 0.05 and run.temperature == 0.0 and "2 phases" in repr(run)


def test_first_phase_sees_the_plain_runs_batches(data):
    plain = tr.train(data, epochs=9, n_seeds=2, rng=3, **KW)
    burst = tr.train(data, epochs=9, n_seeds=2, rng=3, schedule=Schedule([Phase(6), Phase(3, lr=0.2)]), **KW)
    assert np.array_equal(plain.train_mse[:, :3], burst.train_mse[:, :3])       # epochs 0, 3, 6
    assert not np.array_equal(plain.final_params, burst.final_params)


def test_anneal_and_bad_schedules(data):
    a = Schedule.anneal(0.4, 0.1, 23, n_steps=5)
    assert [p.epochs for p in a.phases] == [5, 5, 5, 4, 4] and a.epochs == 23
    np.testing.assert_allclose([p.weight_decay for p in a.phases], [0.4, 0.34, 0.28, 0.22, 0.16])
    with pytest.raises(ValueError, match="epochs"):
        Schedule.anneal(0.4, 0.1, 3, n_steps=5)
    with pytest.raises(ValueError, match="phases"):
        Schedule([])
    with pytest.raises(ValueError, match="lr"):
        Phase(3, lr=0)
    with pytest.raises(ValueError, match="epochs"):
        tr.train(data, epochs=5, schedule=Schedule.dip(0.0, 6), **KW)
    with pytest.raises(ValueError, match="record_steps"):
        tr.train(data, epochs=8, schedule=Schedule.dip(0.0, 6), record_steps=True, **KW)
    with pytest.raises(ValueError, match="Schedule"):
        tr.train(data, epochs=8, schedule=[Phase(3)], **KW)


def test_diverging_burst_marks_the_seed_and_the_run_goes_on(data):
    run = tr.train(data, epochs=12, n_seeds=2, rng=1, schedule=Schedule([Phase(3), Phase(2, lr=40.0)]), **KW)
    assert np.all(run.status == tr.STATUS_NONFINITE) and np.all(run.steps <= 5 * 8)
    after = run.log_epochs > 5
    assert np.all(np.isnan(run.train_mse[:, after])) and np.all(np.isfinite(run.train_mse[:, run.log_epochs <= 3]))


def test_schedule_is_stored_and_merges_only_with_its_own(tmp_path, data):
    sched = Schedule.burst(2, batch_size=8)
    a = tr.train(data, epochs=6, n_seeds=2, rng=4, schedule=sched, **KW)
    b = tr.train(data, epochs=6, n_seeds=2, seed_offset=2, rng=4, schedule=sched, **KW)
    io.save(a, tmp_path / "a.h5")
    back = io.load(tmp_path / "a.h5")
    assert np.array_equal(back.schedule, a.schedule) and np.array_equal(back.final_params, a.final_params)
    assert (a + b).n_seeds == 4
    c = tr.train(data, epochs=6, n_seeds=2, seed_offset=2, rng=4, schedule=Schedule.burst(2, batch_size=4), **KW)
    with pytest.raises(ValueError, match="schedule"):
        a + c


@pytest.fixture(scope="module")
def trap():
    d = T.sample(512, rng=1)
    wd = tr.trap_weight_decay(d, 1, n_layers=3)
    return d, tr.prepare_trap(d, trap_weight_decays=(0.0, wd), trap_epochs=(300, 600), n_layers=3, width=10,
                              lr=0.08, batch_size=64, n_seeds=3, rng=2)


def test_escape_epoch_is_exact_to_the_epoch(trap):
    """compare_cures reads the map every epoch: the escape epoch is the first from which the feature stays above the
    threshold, checked against the same schedule's own log."""
    d, tp = trap
    p = plan_cure(d, n_layers=3, weight_decay=0.258, mode=1, seed_size=0.1, lr=0.08, batch_size=64)
    dip = [Stage(p.dip_epochs, p.dip_weight_decay)]
    C = compare_cures(d, tp, {"cure": (dip, 0.1)}, weight_decay=0.258, epochs=200, n_layers=3, width=10, lr=0.08,
                      batch_size=64, rng=7, reference=False)
    s = run_schedule(d, reseed(tp, d, mode=1, size=0.1, rng=7), [*dip, Stage(200 - p.dip_epochs, 0.258)], n_layers=3,
                     width=10, lr=0.08, batch_size=64, rng=7)
    assert np.array_equal(s.log_epochs, np.arange(201))
    sv = s.singular_values[:, :, 1]
    for k in range(tp.n_seeds):
        e = int(C.escape_epoch[1, k])
        assert C.escaped[1, k] and sv[k, e] > C.threshold and sv[k, e - 1] <= C.threshold
        assert np.all(sv[k, e:] > C.threshold)
    assert np.any(C.escape_epoch[1] % 10 != 0)


def test_noise_bursts_on_an_absent_feature(trap, tmp_path):
    """Minibatch-type noise (label noise, a larger lr, small batches) cannot start a feature absent in every layer;
    injected isotropic noise can. The figure marks censored seeds."""
    d, tp = trap
    C = compare_cures(d, tp, {"label noise": ([Phase(20, label_noise=0.5)], None),
                              "lr x4": ([Phase(20, lr=0.32)], None), "batch 8": ([Phase(20, batch_size=8)], None),
                              "temperature": (Schedule.burst(20, temperature=0.002), None)},
                      weight_decay=0.258, epochs=300, n_layers=3, width=10, lr=0.08, batch_size=64, rng=7,
                      reference=False)
    esc = dict(zip(C.names, C.escaped.sum(axis=1).tolist()))
    assert esc == {"constant": 0, "label noise": 0, "lr x4": 0, "batch 8": 0, "temperature": 3}
    assert list(C.cost_epochs) == [0, 20, 20, 20, 20]
    fig = plot_cures([C, C], tmp_path / "cures.png", titles=["a", "b"])
    assert (tmp_path / "cures.png").stat().st_size > 0 and len(fig.axes) == 2
    with pytest.raises(ValueError, match="titles"):
        plot_cures(C, titles=["a", "b"])
