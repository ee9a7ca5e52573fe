"""phasetools.nonlinear through the shared interfaces: diagnose, sweep, the CLI; init-scale and noisy escapes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from phasetools import nonlinear as nl
from phasetools.cli._main import main

TINY = dict(p=11, width=16, dtype="float64")


def test_find_plateaus_reads_a_nonlinear_run_directly():
    """diagnose.find_plateaus / load_log take a NonlinearRun as they take a TrainingRun (no conversion)."""
    from phasetools.diagnose import find_plateaus, load_log

    t, m = nl.modular_addition(23, 0.5), nl.quadratic_mlp(23, 128)
    run = nl.train(t, m, nl.adamw(1e-2, 5.0), epochs=200, n_seeds=1, rng=0, log_every=5, dtype="float32")
    log = load_log(run)
    assert np.array_equal(log.test_mse, run.test_loss[0]) and np.array_equal(log.train_mse, run.train_loss[0])
    p = find_plateaus(run, curve="test", min_length=20, tol=0.05)
    # the test loss plateaus while the network memorises, then drops as it generalises
    assert p.n_plateaus >= 1 and p.drop_epoch.size >= 1
    assert p.drop_epoch[-1] <= run.generalisation_epoch[0] + 10


def test_phasetools_diagnose_reads_a_stored_nonlinear_run(tmp_path, capsys):
    from phasetools.io import save

    t, m = nl.modular_addition(11, 0.5), nl.quadratic_mlp(11, 16)
    run = nl.train(t, m, nl.adamw(1e-2, 1.0), epochs=30, n_seeds=2, rng=0, log_every=1)
    path = tmp_path / "run.h5"
    save(run, path)
    assert main(["diagnose", str(path), "--seed", "1", "--min-length", "5", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert np.allclose(out["plateaus"]["values"], run.test_loss[1])


def test_sweep_over_nonlinear_settings_through_public_names(tmp_path):
    """phasetools.sweep.run_sweep runs train_from_settings like any task function; each task replays alone."""
    from phasetools.sweep import load_results, product, run_sweep, task_seed

    grid = product(**{k: [v] for k, v in TINY.items()}, epochs=[3], weight_decay=[0.0, 2.0], lr=[0.01])
    outcome = run_sweep(nl.train_from_settings, grid, path=tmp_path / "s.h5", seed=7, executor="inline",
                        progress=False)
    outcome.check()
    runs = load_results(tmp_path / "s.h5")
    assert [r.weight_decay for r in runs] == [0.0, 2.0] and all(isinstance(r, nl.NonlinearRun) for r in runs)
    again = nl.train_from_settings(**grid[1], rng=task_seed(7, 1))
    assert again.equal_values(runs[1])
    with pytest.raises(ValueError, match="optimizer"):
        nl.train_from_settings(**TINY, optimizer="lbfgs")


def test_init_scale_sweep_scales_the_same_initial_weights():
    t, m = nl.modular_addition(11, 0.5), nl.quadratic_mlp(11, 16)
    res = nl.init_scale_sweep(t, m, nl.adamw(1e-2, 1.0), [1.0, 3.0], epochs=4, n_seeds=2, log_every=2, rng=3)
    assert res.fit_epoch.shape == (2, 2) and res.test_acc.shape == (2, 2, 3)
    assert np.allclose(res.weight_norm[1, :, 0], 3 * res.weight_norm[0, :, 0])
    one = nl.train(t, m, nl.adamw(1e-2, 1.0), epochs=4, n_seeds=2, log_every=2, rng=3)
    assert np.array_equal(res.test_acc[0], one.test_acc)
    assert np.array_equal(res.delay, res.generalisation_epoch - res.fit_epoch, equal_nan=True)
    with pytest.raises(ValueError, match="init_scales"):
        nl.init_scale_sweep(t, m, nl.adamw(), [0.0], epochs=1)


def test_escape_sweep_with_injected_noise_fits_against_inverse_temperature():
    t, m = nl.modular_addition(11, 0.5), nl.quadratic_mlp(11, 16)
    esc = nl.escape_sweep(t, m, prepare=nl.adamw(1e-2, 0.0), prepare_epochs=3, release_weight_decay=1e-3,
                          batch_size=1, lr=1.0, temperature=[0.0, 1e-4, 1e-3], sampling="full", release_epochs=3,
                          n_seeds=2, log_every=1, rng=0)
    assert esc.x_law == "1/temperature"
    assert esc.batch_size.tolist() == [t.n_train] * 3  # full batch whatever batch_size said
    assert np.array_equal(esc.temperature, [0.0, 1e-4, 1e-3]) and np.all(esc.label_noise == 0)
    assert np.isinf(esc.x[0]) and np.allclose(esc.x[1:], [1e4, 1e3])
    names = [v.quantity for v in nl.verdicts(None, esc)]
    assert names[-1] == "Arrhenius escape in 1/temperature"
    lab = nl.escape_sweep(t, m, prepare=nl.adamw(1e-2, 0.0), prepare_epochs=3, release_weight_decay=1e-3,
                          batch_size=4, lr=1.0, label_noise=[0.1, 0.2], release_epochs=2, n_seeds=1, rng=0)
    assert lab.x_law == "batch_size/(lr*label_noise^2)" and np.allclose(lab.x, [400.0, 100.0])
    with pytest.raises(ValueError, match="label_noise"):
        nl.escape_sweep(t, m, prepare=nl.adamw(), prepare_epochs=1, release_weight_decay=0.0, batch_size=[4, 8, 16],
                        lr=1.0, label_noise=[0.1, 0.2], release_epochs=1)


def test_escape_laws_pick_the_arrhenius_law_in_inverse_temperature():
    """Synthetic escape times tau = tau0 exp(dU / T): the Arrhenius law passes, the constant one fails."""
    T = np.array([1.0, 0.5, 0.33, 0.25, 0.2])
    x = nl.escape_abscissa("1/temperature", np.ones(5), np.ones(5), np.zeros(5), T)
    tau = 10 * np.exp(0.8 * x) * (1 + 0.05 * np.random.default_rng(0).standard_normal(5))
    fit = nl.fit_escape_laws(x, tau, 0.05 * tau)
    assert fit["arrhenius_pvalue"] > 0.01 and fit["deterministic_pvalue"] < 1e-6
    assert abs(fit["arrhenius_slope"] - 0.8) < 4 * fit["arrhenius_slope_stderr"]
