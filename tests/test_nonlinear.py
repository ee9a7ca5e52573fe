"""phasetools.nonlinear: tasks, models, the Fourier oracle, the trainer's gradients and determinism."""

from __future__ import annotations

import numpy as np
import pytest

from phasetools import nonlinear as nl


# ---------------------------------------------------------------------------- tasks
def test_modular_addition_split_and_labels():
    t = nl.modular_addition(7, 0.5, data_seed=3)
    assert t.n_train + t.n_test == 49 and t.n_train == round(0.5 * 49)
    a, b = t.extra["pairs_train"].T
    assert np.array_equal(t.y_train, (a + b) % 7)
    assert np.array_equal(t.X_train, np.stack([a, 7 + b], 1))
    both = np.concatenate([t.extra["pairs_train"], t.extra["pairs_test"]])
    assert len({tuple(x) for x in both}) == 49  # every pair once
    assert nl.task_from_config(t.name, t.config).X_train.tolist() == t.X_train.tolist()


@pytest.mark.parametrize("kwargs, match", [({"p": 8}, "prime"), ({"p": 2}, "p must"), ({"train_fraction": 1.0}, "train_fraction"),
                                           ({"train_fraction": 0}, "train_fraction")])
def test_modular_addition_rejects_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        nl.modular_addition(**{"p": 7, **kwargs})


def test_synthetic_images_shapes():
    t = nl.synthetic_images(30, 20, n_inputs=5, n_classes=3)
    assert t.X_train.shape == (30, 5) and t.X_test.shape == (20, 5) and not t.sparse
    assert set(np.unique(t.y_train)) <= {0, 1, 2}


# ---------------------------------------------------------------------------- the oracle
@pytest.mark.parametrize("p, width", [(5, 200), (11, 600), (23, 2000), (31, 3000)])
def test_fourier_solution_classifies_every_pair(p, width):
    """Gromov's exact weights: accuracy 1 on all p^2 pairs, correct logit averaging M/2."""
    t = nl.modular_addition(p, 0.5)
    m = nl.quadratic_mlp(p, width)
    w = nl.fourier_solution(p, width, rng=1)
    ev = nl.evaluate(t, m, w)
    assert ev["train_acc"][0] == 1.0 and ev["test_acc"][0] == 1.0
    U, W = nl.split_weights(m, w)
    a, b = np.divmod(np.arange(p * p), p)
    h = U[:, a] + U[:, p + b]                      # (width, pairs)
    per_neuron = W[(a + b) % p, :].T * h ** 2       # contribution of neuron k to the correct logit
    x = per_neuron.mean(1)                          # averaged over pairs, independent across neurons
    mean_logit = x.sum()
    stderr = np.sqrt(width) * x.std(ddof=1)
    assert abs(mean_logit - width / 2) < 4 * stderr, (mean_logit, width / 2, stderr)


def test_fourier_solution_fails_with_shuffled_output_layer():
    """The oracle test can fail: permuting the output rows breaks the classification."""
    p, width = 11, 600
    t = nl.modular_addition(p, 0.5)
    m = nl.quadratic_mlp(p, width)
    w = nl.fourier_solution(p, width, rng=1)
    U, W = nl.split_weights(m, w)
    bad = np.concatenate([U.ravel(), W[np.roll(np.arange(p), 1)].ravel()])
    assert nl.evaluate(t, m, bad)["test_acc"][0] < 0.2


def test_fourier_ipr_is_one_for_the_solution_and_small_for_noise():
    p, width = 23, 50
    m = nl.quadratic_mlp(p, width)
    assert np.allclose(nl.fourier_ipr(m, nl.fourier_solution(p, width, rng=0)), 1.0)
    noise = np.random.default_rng(0).standard_normal(m.n_params)
    assert nl.fourier_ipr(m, noise) < 0.25


# ---------------------------------------------------------------------------- gradients
def _numeric_gradient(task, model, w, eps=1e-6):
    g = np.empty_like(w)
    for i in range(w.size):
        e = np.zeros_like(w)
        e[i] = eps
        g[i] = (nl.loss_and_gradient(task, model, w + e)[0] - nl.loss_and_gradient(task, model, w - e)[0]) / (2 * eps)
    return g


@pytest.mark.parametrize("which", ["quadratic", "relu", "image"])
def test_gradient_matches_finite_differences(which):
    t = nl.modular_addition(7, 0.6)
    if which == "quadratic":
        m = nl.quadratic_mlp(7, 9)
    elif which == "relu":
        m = nl.relu_mlp(7, 9)
    else:
        t = nl.synthetic_images(40, 10, n_inputs=5, n_classes=3)
        m = nl.image_mlp(5, 4, 3)
    w = np.random.default_rng(2).standard_normal(m.n_params) * 0.5
    loss, g = nl.loss_and_gradient(t, m, w)
    num = _numeric_gradient(t, m, w)
    assert loss > 0
    assert np.max(np.abs(g - num)) < 1e-7 * max(1.0, np.max(np.abs(g)))


def test_mse_loss_is_torch_mean_over_samples_and_classes():
    t = nl.modular_addition(5, 0.5)
    m = nl.quadratic_mlp(5, 4)
    w = np.random.default_rng(0).standard_normal(m.n_params)
    U, W = nl.split_weights(m, w)
    h = U[:, t.X_train[:, 0]] + U[:, t.X_train[:, 1]]
    out = (W @ h ** 2).T
    target = np.eye(5)[t.y_train]
    assert np.isclose(nl.loss_and_gradient(t, m, w)[0], np.mean((out - target) ** 2))


# ---------------------------------------------------------------------------- the trainer
@pytest.fixture(scope="module")
def small():
    return nl.modular_addition(11, 0.5), nl.quadratic_mlp(11, 24)


@pytest.mark.parametrize("sampling, batch_size", [("full", None), ("shuffle", 8), ("replacement", 8)])
@pytest.mark.parametrize("kind", ["sgd", "adamw"])
def test_bit_identical_for_any_thread_count_and_replayable_alone(small, sampling, batch_size, kind):
    t, m = small
    opt = nl.sgd(0.5, 1e-3) if kind == "sgd" else nl.adamw(1e-2, 0.5)
    kw = dict(epochs=6, batch_size=batch_size, sampling=sampling, rng=5, log_every=3)
    a = nl.train(t, m, opt, n_seeds=3, n_threads=2, **kw)
    b = nl.train(t, m, opt, n_seeds=3, n_threads=1, **kw)
    c = nl.train(t, m, opt, n_seeds=1, seed_offset=2, n_threads=1, **kw)
    assert a.equal_values(b)
    assert np.array_equal(a.weights[2], c.weights[0])
    assert not np.array_equal(a.weights[0], a.weights[1])  # seeds differ


def test_sgd_step_is_coupled_weight_decay(small):
    t, m = small
    w0 = nl.train(t, m, nl.sgd(0.3, 0.0), epochs=0, rng=1).weights[0]
    run = nl.train(t, m, nl.sgd(0.3, 0.2), epochs=1, rng=1)
    _, g = nl.loss_and_gradient(t, m, w0)
    assert np.allclose(run.weights[0], w0 - 0.3 * (g + 0.2 * w0), rtol=1e-12, atol=1e-14)


def test_adamw_first_step_matches_torch_formula(small):
    t, m = small
    w0 = nl.train(t, m, nl.adamw(0.01, 0.0), epochs=0, rng=1).weights[0]
    run = nl.train(t, m, nl.adamw(0.01, 3.0, adam_b1=0.9, adam_b2=0.98, adam_eps=1e-8), epochs=1, rng=1)
    _, g = nl.loss_and_gradient(t, m, w0)
    mh = g  # bias-corrected first and second moments after one step
    vh = g * g
    expected = w0 * (1 - 0.01 * 3.0) - 0.01 * mh / (np.sqrt(vh) + 1e-8)
    assert np.allclose(run.weights[0], expected, rtol=1e-9, atol=1e-12)


def test_float32_runs_in_float32_and_stays_close(small):
    t, m = small
    a = nl.train(t, m, nl.adamw(1e-2, 0.5), epochs=5, rng=1, dtype="float32")
    b = nl.train(t, m, nl.adamw(1e-2, 0.5), epochs=5, rng=1)
    assert a.weights.dtype == np.float32 and b.weights.dtype == np.float64
    assert np.allclose(a.weights, b.weights, atol=1e-3)


def test_warm_start_continues_a_run(small):
    t, m = small
    first = nl.train(t, m, nl.sgd(0.5, 0.0), epochs=3, rng=1)
    cont = nl.train(t, m, nl.sgd(0.5, 0.0), epochs=2, init=first, rng=2)
    whole = nl.train(t, m, nl.sgd(0.5, 0.0), epochs=5, rng=1)
    assert np.allclose(cont.weights, whole.weights, rtol=1e-12)  # full-batch SGD has no randomness after init


def _bits(run):
    return [np.asarray(getattr(run, f)).tobytes() for f in ("train_loss", "test_loss", "train_acc", "test_acc",
                                                           "weight_norm", "fourier_ipr", "weights")]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_warm_start_from_final_weights_evaluates_them_once(small, monkeypatch, dtype):
    # AMS over the trainer calls train(epochs=1, init=previous weights) per epoch: each call evaluated
    # both data sets at epoch 0, the weights the previous call had just evaluated at its end
    from phasetools.nonlinear import _train

    t, m = small
    opt = nl.sgd(0.5, 1e-3)
    first = nl.train(t, m, opt, epochs=3, n_seeds=3, dtype=dtype, rng=1)
    calls = []
    evaluate = _train._evaluate
    monkeypatch.setattr(_train, "_evaluate", lambda *a: calls.append(a[-1]) or evaluate(*a))
    chained = [nl.train(t, m, opt, epochs=1, init=first.weights, n_seeds=3, dtype=dtype, log_every=1, rng=2)]
    chained.append(nl.train(t, m, opt, epochs=1, init=chained[0].weights[1:], n_seeds=2, dtype=dtype, log_every=1,
                            rng=3))  # a subset of the rows, as when replicas stop
    assert calls == ["train", "test"] * 2  # epoch 1 only
    for run, before in zip(chained, (first, chained[0])):
        rows = slice(None) if run.n_seeds == before.n_seeds else slice(1, None)
        for f in ("train_loss", "test_loss", "train_acc", "test_acc", "weight_norm", "fourier_ipr"):
            assert getattr(run, f)[:, 0].tobytes() == getattr(before, f)[rows, -1].tobytes()
    monkeypatch.setattr(_train, "_FINAL", _train._FinalMetrics())  # nothing remembered: evaluate everything
    fresh = nl.train(t, m, opt, epochs=1, init=first.weights, n_seeds=3, dtype=dtype, log_every=1, rng=2)
    assert calls[4:] == ["train", "test"] * 2
    assert _bits(fresh) == _bits(chained[0])


def test_evaluate_reads_remembered_final_metrics_bit_for_bit(small, monkeypatch):
    from phasetools.nonlinear import _train

    t, m = small
    run = nl.train(t, m, nl.adamw(1e-2, 0.5), epochs=2, n_seeds=2, rng=4)
    remembered = nl.evaluate(t, m, run.weights)
    assert list(remembered) == ["train_loss", "train_acc", "test_loss", "test_acc"]
    monkeypatch.setattr(_train, "_FINAL", _train._FinalMetrics())
    computed = nl.evaluate(t, m, run.weights)
    assert all(remembered[k].tobytes() == computed[k].tobytes() for k in computed)
    other = run.weights.copy()
    other[0, 0] += 1e-3  # changed weights are evaluated, not recalled
    _train._FINAL.remember(t, m, run.weights, {k: np.zeros((2, 1)) for k in _train._CURVES})
    assert nl.evaluate(t, m, other)["train_loss"][1] == computed["train_loss"][1]
    assert nl.evaluate(t, m, other)["train_loss"][0] != computed["train_loss"][0]


def test_train_rejects_bad_input(small):
    t, m = small
    with pytest.raises(ValueError, match="sampling"):
        nl.train(t, m, nl.sgd(0.1), epochs=1, sampling="bogus")
    with pytest.raises(ValueError, match="batch_size"):
        nl.train(t, m, nl.sgd(0.1), epochs=1, sampling="shuffle", batch_size=10_000)
    with pytest.raises(ValueError, match="lr"):
        nl.sgd(0.0)
    with pytest.raises(ValueError, match="model dims"):
        nl.train(t, nl.quadratic_mlp(7, 4), nl.sgd(0.1), epochs=1)


def test_run_stores_and_loads(tmp_path, small):
    from phasetools.io import load, save

    t, m = small
    run = nl.train(t, m, nl.adamw(1e-2, 0.5), epochs=4, n_seeds=2, rng=1, log_every=2)
    path = tmp_path / "r.h5"
    save(run, path)
    back = load(path)
    assert back.equal_values(run)
    assert back.log_epochs.tolist() == [0, 2, 4]


def test_small_modular_addition_groks_with_adamw():
    """A p = 23 quadratic network fits, then generalises; the Fourier IPR rises with it."""
    t = nl.modular_addition(23, 0.5)
    m = nl.quadratic_mlp(23, 128)
    run = nl.train(t, m, nl.adamw(1e-2, 5.0), epochs=300, n_seeds=2, rng=0, log_every=10, dtype="float32")
    assert np.all(run.test_acc[:, -1] >= 0.99), run
    assert np.all(run.fit_epoch <= run.generalisation_epoch)
    assert np.all(run.fourier_ipr[:, -1] > 2 * run.fourier_ipr[:, 0])


def test_digits_task_when_scikit_learn_is_installed():
    pytest.importorskip("sklearn")
    t = nl.digits(1000, data_seed=1)
    assert t.X_train.shape == (1000, 64) and t.X_test.shape == (797, 64)
    assert 0.0 <= t.X_train.min() and t.X_train.max() <= 1.0
    assert set(np.unique(t.y_train)) == set(range(10))
    with pytest.raises(ValueError, match="n_train"):
        nl.digits(1797)


# ---------------------------------------------------------------------------- noise
def test_injected_noise_adds_gaussian_of_variance_2_lr_t(small):
    """One full-batch SGD step with temperature T: the step minus the noise-free step is N(0, 2 lr T)."""
    t, m = small
    lr, T = 0.3, 0.05
    clean = nl.train(t, m, nl.sgd(lr, 0.1), epochs=1, rng=1)
    hot = nl.train(t, m, nl.sgd(lr, 0.1), epochs=1, rng=1, temperature=T)
    d = hot.weights[0] - clean.weights[0]
    assert hot.temperature == T and clean.temperature == 0.0
    assert abs(d.mean()) < 4 * np.sqrt(2 * lr * T / d.size)
    assert abs(d.var() / (2 * lr * T) - 1) < 4 * np.sqrt(2 / d.size), d.var() / (2 * lr * T)


def test_label_noise_is_gaussian_noise_on_the_targets(small):
    """The gradient is linear in the targets: noise of sd 2s moves the step twice as far as sd s (same normals)."""
    t, m = small
    clean = nl.train(t, m, nl.sgd(0.3, 0.0), epochs=1, rng=1)
    one = nl.train(t, m, nl.sgd(0.3, 0.0), epochs=1, rng=1, label_noise=0.5)
    two = nl.train(t, m, nl.sgd(0.3, 0.0), epochs=1, rng=1, label_noise=1.0)
    d1 = one.weights[0] - clean.weights[0]
    d2 = two.weights[0] - clean.weights[0]
    assert np.max(np.abs(d1)) > 1e-4
    assert np.allclose(d2, 2 * d1, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("noise", [{"label_noise": 0.3}, {"temperature": 1e-3}])
def test_noisy_runs_are_bit_identical_for_any_thread_count(small, noise):
    t, m = small
    kw = dict(epochs=4, batch_size=8, sampling="replacement", rng=5, log_every=2, **noise)
    a = nl.train(t, m, nl.sgd(0.5, 1e-3), n_seeds=3, n_threads=2, **kw)
    b = nl.train(t, m, nl.sgd(0.5, 1e-3), n_seeds=3, n_threads=1, **kw)
    c = nl.train(t, m, nl.sgd(0.5, 1e-3), n_seeds=1, seed_offset=1, n_threads=1, **kw)
    assert a.equal_values(b)
    assert np.array_equal(a.weights[1], c.weights[0])


def test_noise_options_are_checked_and_stored(tmp_path, small):
    from phasetools.io import load, save

    t, m = small
    with pytest.raises(ValueError, match="label_noise"):
        nl.train(t, nl.relu_mlp(11, 8), nl.sgd(0.1), epochs=1, label_noise=0.1)
    with pytest.raises(ValueError, match="temperature"):
        nl.train(t, m, nl.sgd(0.1), epochs=1, temperature=-1.0)
    run = nl.train(t, m, nl.sgd(0.1), epochs=2, rng=0, label_noise=0.2, temperature=1e-4)
    save(run, tmp_path / "n.h5")
    back = load(tmp_path / "n.h5")
    assert back.equal_values(run) and back.label_noise == 0.2 and back.temperature == 1e-4


def test_loss_log_feeds_the_diagnose_interface(small):
    from phasetools.diagnose import load_log

    t, m = small
    run = nl.train(t, m, nl.adamw(1e-2, 1.0), epochs=6, n_seeds=2, rng=0, log_every=2)
    log = load_log(run.loss_log(1))
    assert np.array_equal(log.epochs, run.log_epochs) and np.array_equal(log.test_mse, run.test_loss[1])
    with pytest.raises(ValueError, match="seed"):
        run.loss_log(2)


def test_digits_without_scikit_learn_says_how_to_install_it(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match="pip install"):
        nl.digits(100)
