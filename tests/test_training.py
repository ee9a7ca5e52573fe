"""Training layer: Gaussian teacher, SGD kernel, gradient noise (science brief 1.3, 1.4, 5, E0)."""

import numpy as np
import pytest
from scipy.integrate import solve_ivp

import phasetools.theory as th
import phasetools.training as tr  # registers TrainingRun and GradientNoise for phasetools.io
from phasetools.io import load, save
from phasetools.theory._network import layer_shapes, network_grad, pack

ETA = (0.9, 0.8)


@pytest.fixture(scope="module")
def teacher():
    return tr.GaussianTeacher(ETA)


@pytest.fixture(scope="module")
def data(teacher):
    return teacher.sample(512, rng=11)


def random_weights(shapes, seed, scale=0.5):
    rng = np.random.default_rng(seed)
    return [scale * rng.standard_normal(s) for s in shapes]


# -- data model ------------------------------------------------------------------------
def test_teacher_paper_moments(teacher):
    m = teacher.moments
    np.testing.assert_array_equal(m.input_cov, np.eye(2))
    np.testing.assert_array_equal(m.cross_cov, np.diag(ETA))
    np.testing.assert_array_equal(m.output_cov, np.eye(2))
    np.testing.assert_allclose(np.diag(teacher.noise_cov), [0.19, 0.36])
    assert teacher.bayes_mse == pytest.approx(0.275)
    np.testing.assert_allclose(teacher.cholesky @ teacher.cholesky.T, m.joint_cov, atol=1e-15)
    # usable by the theory: the same transitions as theory.modes on eta
    ours = m.modes(3, 0.32, convention="paper")
    ref = th.modes(3, list(ETA), 0.32, convention="paper")
    np.testing.assert_allclose(ours.gamma_sp, [0.4105, 0.3509], atol=1e-4)
    np.testing.assert_allclose(ours.gamma_sp, ref.gamma_sp)
    assert [s.learned for s in ours.states] == [s.learned for s in ref.states]


def test_teacher_samples_and_sets(teacher):
    big = teacher.sample(200_000, rng=1)
    emp = big.moments()
    # standard error of a second moment of unit-variance Gaussians is <= sqrt(2 / N)
    tol = 5 * np.sqrt(2 / 200_000)
    np.testing.assert_allclose(emp.joint_cov, teacher.moments.joint_cov, atol=tol)
    a, b = teacher.test_set(), teacher.test_set()
    np.testing.assert_array_equal(a.X, b.X)
    assert a.n_samples == 512
    assert not np.array_equal(a.X, teacher.sample(512, rng=0).X)
    X, Y = teacher.sample(7, rng=3)  # unpacks
    assert X.shape == (7, 2) and Y.shape == (7, 2)
    np.testing.assert_array_equal(teacher.sample(7, rng=3).Y, Y)
    sub = teacher.subsample(5000, 25, rng=4)
    assert sub.n_samples == 25 and len(np.unique(sub.indices)) == 25 and sub.indices.max() < 5000
    pool = teacher.sample(5000, np.random.default_rng(4))
    np.testing.assert_array_equal(pool.X[sub.indices], sub.X)
    with pytest.warns(th.MisalignmentWarning):
        th.empirical_modes(3, *teacher.sample(64, rng=2), convention="paper")


def test_teacher_rotation_and_general_covariances():
    t = tr.GaussianTeacher([1.2, 0.5], d_in=4, d_out=3, input_cov=np.diag([2.0, 1.0, 1.0, 0.5]),
                           output_cov=2 * np.eye(3), rotation=5)
    np.testing.assert_allclose(np.linalg.svd(t.cross_cov, compute_uv=False), [1.2, 0.5, 0.0], atol=1e-14)
    np.testing.assert_allclose(t.U.T @ t.U, np.eye(2), atol=1e-14)
    assert np.linalg.eigvalsh(t.noise_cov).min() > 0
    t2 = tr.GaussianTeacher([1.2, 0.5], d_in=4, d_out=3, input_cov=np.diag([2.0, 1.0, 1.0, 0.5]),
                            output_cov=2 * np.eye(3), rotation=5)
    np.testing.assert_array_equal(t.cross_cov, t2.cross_cov)


@pytest.mark.parametrize("kwargs, name", [
    ({"eta": [1.1, 0.5]}, "eta"),
    ({"eta": [0.9, 0.8], "output_cov": np.diag([0.5, 1.0])}, "output_cov"),
    ({"eta": [0.9, 0.8], "input_cov": np.diag([1.0, -1.0])}, "input_cov"),
    ({"eta": [0.8, 0.9]}, "eta"),
    ({"eta": [0.9, np.nan]}, "eta"),
])
def test_teacher_rejects_bad_covariances(kwargs, name):
    with pytest.raises(ValueError, match=name):
        tr.GaussianTeacher(**kwargs)


def test_moments_reject_non_psd():
    with pytest.raises(ValueError, match="output_cov"):
        tr.Moments(np.eye(2), np.diag([0.9, 0.8]), np.diag([0.5, 1.0]))
    with pytest.raises(ValueError, match="cross_cov"):
        tr.Moments(np.eye(2), np.ones((2, 3)), np.eye(2))


# -- the kernel's gradient -------------------------------------------------------------
SHAPES = [(4, 2), (4, 4), (2, 4)]


def batch_loss(weights, X, Y, kappa, beta):
    M = weights[2] @ weights[1] @ weights[0]
    r = Y - X @ M.T
    return kappa * np.mean(np.sum(r**2, axis=1)) + 0.5 * beta * sum(np.sum(w**2) for w in weights)


def test_kernel_gradient_finite_differences_and_per_sample(data):
    W = random_weights(SHAPES, 0)
    idx = np.array([3, 17, 17, 200, 511, 42, 8])
    beta = 0.32
    g = tr.batch_gradient(W, data, convention="paper", weight_decay=beta, indices=idx)
    X, Y = data.X[idx], data.Y[idx]
    theta = pack(W)
    fd = np.empty_like(theta)
    h = 1e-6
    for i in range(theta.size):
        e = np.zeros_like(theta)
        e[i] = h
        fd[i] = (batch_loss(_unpack(theta + e), X, Y, 0.5, beta)
                 - batch_loss(_unpack(theta - e), X, Y, 0.5, beta)) / (2 * h)
    np.testing.assert_allclose(pack(g), fd, rtol=1e-6, atol=1e-8)
    # closed-form per-sample gradients -2 kappa A^T r x^T B^T, averaged, plus weight decay
    ps = tr.per_sample_gradients(W, X, Y, convention="paper")
    np.testing.assert_allclose(pack(g), ps.mean(axis=0) + beta * theta, rtol=1e-12, atol=1e-14)
    # on moments: the canonical gradient of the theory module (beta = 2 gamma)
    m = tr.Moments(np.diag([1.0, 2.0]), np.array([[0.9, 0.1], [0.0, 0.8]]), np.eye(2))
    gm = tr.batch_gradient(W, m, convention="canonical", weight_decay=2 * 0.3)
    ref = network_grad(theta, SHAPES, m.input_cov, m.cross_cov, 0.3)
    np.testing.assert_allclose(pack(gm), ref, rtol=1e-12)


def _unpack(theta, shapes=SHAPES):
    out, k = [], 0
    for r, c in shapes:
        out.append(theta[k:k + r * c].reshape(r, c))
        k += r * c
    return out


# -- the trainer -----------------------------------------------------------------------
def paper_run(data, **kw):
    args = dict(n_layers=3, width=10, lr=0.08, weight_decay=0.32, convention="paper", batch_size=64, epochs=30,
                n_seeds=5, rng=7, log_every=5)
    args.update(kw)
    return tr.train(data, **args)


def test_threads_bit_identical_and_seeds_replayable(data, teacher):
    one = paper_run(data, n_threads=1, test=teacher.test_set())
    two = paper_run(data, n_threads=2, test=teacher.test_set())
    assert one.equal_values(two)
    assert two.stats["n_threads"] == 2 and one.stats["compile_time"] >= 0
    alone = paper_run(data, n_seeds=1, seed_offset=3, test=teacher.test_set())
    np.testing.assert_array_equal(alone.final_params[0], one.final_params[3])
    np.testing.assert_array_equal(alone.test_mse[0], one.test_mse[3])
    assert not np.array_equal(one.final_params[0], one.final_params[1])
    other = paper_run(data, n_seeds=1, rng=8)
    assert not np.array_equal(other.final_params[0], one.final_params[0])


def test_logged_quantities_match_numpy(data, teacher):
    test = teacher.test_set()
    run = paper_run(data, test=test, n_seeds=2, epochs=12, log_every=4, layer_log_every=6)
    np.testing.assert_array_equal(run.log_epochs, [0, 4, 8, 12])
    np.testing.assert_array_equal(run.layer_log_epochs, [0, 6, 12])
    assert run.steps_per_epoch == 8 and np.all(run.steps == 96) and np.all(run.status == 0)
    for s in range(2):
        W = run.weights(seed=s)
        M = W[2] @ W[1] @ W[0]
        mse = np.mean((data.Y - data.X @ M.T) ** 2)
        tmse = np.mean((test.Y - test.X @ M.T) ** 2)
        norm2 = sum(np.sum(w**2) for w in W)
        assert run.train_mse[s, -1] == pytest.approx(mse, rel=1e-12)
        assert run.test_mse[s, -1] == pytest.approx(tmse, rel=1e-12)
        assert run.loss[s, -1] == pytest.approx(mse + 0.5 * 0.32 * norm2, rel=1e-12)  # kappa = 1/2: (1/p) sum
        assert run.weight_norm[s, -1] == pytest.approx(np.sqrt(norm2), rel=1e-12)
        np.testing.assert_allclose(run.singular_values[s, -1], np.linalg.svd(M, compute_uv=False), rtol=1e-12)
        for k, w in enumerate(W):
            sv = np.linalg.svd(w, compute_uv=False)
            got = run.layer_singular_values[s, -1, k]
            np.testing.assert_allclose(got[:sv.size], sv, rtol=1e-10, atol=1e-14)
            assert np.all(np.isnan(got[sv.size:]))
        W0 = run.weights("initial", seed=s)
        M0 = W0[2] @ W0[1] @ W0[0]
        assert run.train_mse[s, 0] == pytest.approx(np.mean((data.Y - data.X @ M0.T) ** 2), rel=1e-12)
    assert run.energy[0, -1] == pytest.approx(run.loss[0, -1] - 0.5 * np.trace(data.moments().output_cov))
    np.testing.assert_allclose(run.time, 0.08 * 96)


def test_gradient_descent_on_moments_follows_gradient_flow(teacher):
    m = teacher.moments
    shapes = layer_shapes(2, 2, 3, 4)
    W0 = random_weights(shapes, 3, scale=0.6)
    theta0 = pack(W0)
    kappa, gamma = 0.5, 0.2  # paper convention, p = 2: gamma = beta

    def rhs(_t, y):
        return -kappa * network_grad(y, shapes, m.input_cov, m.cross_cov, gamma)

    flow = solve_ivp(rhs, (0, 2.0), theta0, method="DOP853", rtol=1e-12, atol=1e-14).y[:, -1]
    errs = []
    for lr in (0.02, 0.01):
        run = tr.train(m, n_layers=3, width=4, lr=lr, weight_decay=0.2, convention="paper", epochs=round(2.0 / lr),
                       init=W0, log_every=100)
        assert run.sampling == "moments" and run.steps[0] == round(2.0 / lr)
        errs.append(np.linalg.norm(run.final_params[0] - flow) / np.linalg.norm(flow))
    assert errs[1] < 5e-3
    assert 1.8 < errs[0] / errs[1] < 2.2  # first-order in lr


def test_converges_to_the_landscape_minimum(teacher):
    run = tr.train(teacher.moments, n_layers=3, width=10, lr=0.1, weight_decay=0.2, convention="paper", epochs=6000,
                   n_seeds=2, rng=1, log_every=1000, test=teacher)
    L = th.landscape(3, np.array(ETA), 0.2, convention="paper")
    for s in range(2):
        np.testing.assert_allclose(run.singular_values[s, -1], L.lam_min, rtol=1e-8)
        lsv = run.layer_singular_values[s, -1]
        np.testing.assert_allclose(lsv[:, :2], np.broadcast_to(L.b_min, (3, 2)), rtol=1e-7)
        assert np.nanmax(lsv[:, 2:]) < 1e-8
    # population test MSE at the minimum (unit output variances): mean over modes of 1 - 2 eta lam + lam^2
    expected = np.mean(1 - 2 * np.array(ETA) * L.lam_min + L.lam_min**2)
    np.testing.assert_allclose(run.test_mse[:, -1], expected, rtol=1e-8)


def test_divergent_seed_stops_others_continue(data):
    good = random_weights([(10, 2), (10, 10), (2, 10)], 1, scale=0.3)
    bad = [30 * w for w in good]
    init = [np.stack([g, b]) for g, b in zip(good, bad)]
    run = paper_run(data, init=init, n_seeds=None, epochs=20, log_every=1)
    assert list(run.status) == [tr.STATUS_OK, tr.STATUS_NONFINITE]
    assert run.steps[0] == 160 and 0 < run.steps[1] < 160
    assert run.diverged.tolist() == [False, True] and run.stats["n_nonfinite"] == 1
    assert np.all(np.isfinite(run.train_mse[0]))
    assert np.isnan(run.train_mse[1, -1])
    alone = paper_run(data, init=[g[None] for g in good], n_seeds=None, epochs=20, log_every=1)
    np.testing.assert_array_equal(alone.final_params[0], run.final_params[0])


def test_float32_close_to_float64(data):
    a = paper_run(data, n_seeds=2, epochs=10, dtype="float64")
    b = paper_run(data, n_seeds=2, epochs=10, dtype="float32")
    assert b.final_params.dtype == np.float32 and a.final_params.dtype == np.float64
    np.testing.assert_allclose(b.initial_params, a.initial_params, rtol=1e-6)
    np.testing.assert_allclose(b.train_mse, a.train_mse, rtol=1e-4)
    np.testing.assert_allclose(b.final_params, a.final_params, rtol=1e-3, atol=1e-4)


def test_batches_epochs_and_sampling(data):
    run = paper_run(data, n_seeds=2, epochs=3, record_steps=True, batch_size=100)
    assert run.steps_per_epoch == 5  # floor(512 / 100): the remainder is dropped
    bi = run.batch_indices
    assert bi.shape == (2, 15, 100)
    for s in range(2):
        for e in range(3):
            epoch = bi[s, 5 * e:5 * e + 5].ravel()
            assert len(np.unique(epoch)) == 500  # without replacement within an epoch
    np.testing.assert_array_equal(run.step_params[:, -1], run.final_params)
    np.testing.assert_array_equal(run.step_params[:, 0], run.initial_params)
    full = paper_run(data, n_seeds=1, epochs=3, record_steps=True, batch_size=100, drop_last=False)
    assert full.steps_per_epoch == 6 and np.sum(full.batch_indices[0, 5] >= 0) == 12
    rep = paper_run(data, n_seeds=2, epochs=3, record_steps=True, sampling="replacement")
    assert rep.steps_per_epoch == 8 and rep.batch_indices.min() >= 0 and rep.batch_indices.max() < 512
    small = tr.GaussianTeacher(ETA).sample(25, rng=2)  # paper E5: B = 64 > N = 25
    e5 = tr.train(small, n_layers=3, width=10, lr=0.1, weight_decay=0.0025, convention="paper", batch_size=64,
                  drop_last=False, epochs=4, record_steps=True, rng=1)
    assert e5.steps_per_epoch == 1 and e5.batch_size == 25
    # one full-batch step per epoch: the same as gradient descent on the data's moments
    gd = tr.train(small.moments(), n_layers=3, width=10, lr=0.1, weight_decay=0.0025, convention="paper", epochs=4,
                  init=e5.weights("initial"))
    np.testing.assert_allclose(gd.final_params, e5.final_params, rtol=1e-12)


def test_initialisation_readings(data):
    std = paper_run(data, n_seeds=40, epochs=0, width=20)
    var = paper_run(data, n_seeds=40, epochs=0, width=20, init="variance")
    wid = paper_run(data, n_seeds=40, epochs=0, width=20, init_fan="width")
    assert tr.INIT_DEFAULT == "std" and std.init == "std"
    for run, f in ((std, lambda fan: fan**-0.5), (var, lambda fan: fan**-0.25), (wid, lambda fan: 20**-0.5)):
        for w, fan in zip(run.weights("initial"), (2, 20, 20)):
            n = w.size
            assert np.std(w) == pytest.approx(f(fan), rel=6 / np.sqrt(2 * n))
    cont = paper_run(data, n_seeds=None, init=std, epochs=0, width=20)
    np.testing.assert_array_equal(cont.initial_params, std.final_params)
    assert cont.init == "given"


def test_canonical_convention_is_the_explicit_penalty(data):
    W = random_weights([(10, 2), (10, 10), (2, 10)], 5, scale=0.3)
    a = tr.train(data, n_layers=3, width=10, lr=0.01, gamma=0.3, convention="canonical", batch_size=64,
                 epochs=2, init=W, rng=1)
    assert a.weight_decay == pytest.approx(0.6) and a.kappa == 1.0
    b = tr.train(data, n_layers=3, width=10, lr=0.01, weight_decay=0.6, convention="canonical", batch_size=64,
                 epochs=2, init=W, rng=1)
    assert a.equal_values(b)  # beta = 2 kappa gamma: the same run
    # paper convention, gamma given: beta = 2 kappa gamma = gamma for p = 2
    c = tr.train(data, n_layers=3, width=10, lr=0.01, gamma=0.3, convention="paper", batch_size=64, epochs=1,
                 init=W, rng=1)
    assert c.weight_decay == pytest.approx(0.3) and c.gamma == pytest.approx(0.3)


@pytest.mark.parametrize("kwargs, name", [
    ({"lr": 0.0}, "lr"),
    ({"lr": -1.0}, "lr"),
    ({"batch_size": 0}, "batch_size"),
    ({"batch_size": 513}, "batch_size"),
    ({"width": 1}, "width"),
    ({"weight_decay": None}, "weight_decay"),
    ({"gamma": 0.1}, "weight_decay"),
    ({"weight_decay": -0.1}, "weight_decay"),
    ({"epochs": -1}, "epochs"),
    ({"sampling": "sobol"}, "sampling"),
    ({"init": "xavier"}, "init"),
    ({"dtype": "float16"}, "dtype"),
    ({"log_every": 0}, "log_every"),
    ({"n_seeds": 0}, "n_seeds"),
])
def test_bad_input(data, kwargs, name):
    args = dict(n_layers=3, width=10, lr=0.08, weight_decay=0.32, convention="paper", batch_size=64, epochs=1)
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        tr.train(data, **args)


def test_bad_data():
    X = np.random.default_rng(0).standard_normal((20, 2))
    Y = X.copy()
    X[3, 1] = np.nan
    with pytest.raises(ValueError, match="X"):
        tr.train((X, Y), n_layers=3, width=4, lr=0.1, weight_decay=0.1, epochs=1)
    with pytest.raises(ValueError, match="output_cov"):
        tr.train(tr.Moments(np.eye(2), np.eye(2), 0.5 * np.eye(2)), n_layers=3, width=4, lr=0.1, weight_decay=0.1,
                 epochs=1)
    with pytest.raises(ValueError, match="batch_size"):
        tr.train(tr.GaussianTeacher(ETA), n_layers=3, width=4, lr=0.1, weight_decay=0.1, epochs=1, batch_size=4)


def test_hdf5_round_trip(tmp_path, data, teacher):
    run = paper_run(data, n_seeds=2, epochs=4, log_every=2, test=teacher.test_set(), record_steps=True)
    noise = tr.gradient_covariance(run.weights(seed=0), teacher.moments, convention="paper")
    path = tmp_path / "training.h5"
    save(run, path, name="run")
    save(noise, path, name="noise")
    back = load(path, "run")
    assert type(back) is tr.TrainingRun and back == run
    assert back.convention == run.convention and back.train_moments == run.train_moments
    assert load(path, "noise") == noise


# -- gradient noise --------------------------------------------------------------------
def test_gradient_covariance_closed_form_against_samples():
    t = tr.GaussianTeacher(ETA, rotation=3)
    shapes = [(3, 2), (3, 3), (2, 3)]
    W = random_weights(shapes, 2, scale=0.7)
    N = 100_000
    d = t.sample(N, rng=9)
    g = tr.per_sample_gradients(W, d.X, d.Y, convention="paper")
    closed = tr.gradient_covariance(W, t.moments, convention="paper")
    emp = tr.gradient_covariance(W, d, convention="paper")
    assert closed.source == "gaussian" and emp.source == "empirical" and emp.n_samples == N
    c = g - g.mean(axis=0)
    np.testing.assert_allclose(emp.covariance, c.T @ c / N, rtol=1e-10, atol=1e-14)
    se = np.std(c[:, :, None] * c[:, None, :], axis=0) / np.sqrt(N)
    assert np.all(np.abs(emp.covariance - closed.covariance) <= 6 * se + 1e-12)
    se_mean = g.std(axis=0) / np.sqrt(N)
    assert np.all(np.abs(emp.mean - closed.mean) <= 6 * se_mean)
    se_tr = np.std(np.sum(c**2, axis=1)) / np.sqrt(N)
    assert abs(emp.trace - closed.trace) <= 6 * se_tr
    # vanishes at the trivial state (science brief 5.3)
    zero = tr.gradient_covariance([np.zeros(s) for s in shapes], t.moments)
    assert zero.trace == 0.0


def test_effective_temperature():
    T = tr.effective_temperature(3.0, 140, 0.08, 64)
    assert T == pytest.approx(0.08 * 3.0 / (2 * 64 * 140))
    assert tr.effective_temperature(3.0, 140, 0.08, 64, n_samples=512) == pytest.approx(T * 448 / 511)
    noise = tr.gradient_covariance(random_weights(SHAPES, 1), tr.GaussianTeacher(ETA).moments)
    assert noise.temperature(0.08, 64) == pytest.approx(0.08 * noise.trace / (2 * 64 * noise.n_params))
    with pytest.raises(ValueError, match="n_samples"):
        tr.effective_temperature(3.0, 140, 0.08, 64, n_samples=32)
    with pytest.raises(ValueError, match="lr"):
        tr.effective_temperature(3.0, 140, 0.0, 64)


# -- PyTorch equivalence -------------------------------------------------------------------
@pytest.mark.parametrize("n_samples, batch_size, drop_last", [(128, 16, True), (100, 32, False)])
def test_matches_torch_sgd_step_by_step(n_samples, batch_size, drop_last):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0, CPU)")
    d = tr.GaussianTeacher(ETA).sample(n_samples, rng=5)
    lr, beta = 0.08, 0.32
    run = tr.train(d, n_layers=3, width=10, lr=lr, weight_decay=beta, convention="paper", batch_size=batch_size,
                   drop_last=drop_last, epochs=3, record_steps=True, rng=21)
    layers = [torch.nn.Linear(c, r, bias=False, dtype=torch.float64) for r, c in run.layer_shapes]
    with torch.no_grad():
        for layer, w in zip(layers, run.weights("initial", seed=0)):
            layer.weight.copy_(torch.from_numpy(w))
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.SGD(model.parameters(), lr=lr, weight_decay=beta)
    loss_fn = torch.nn.MSELoss()
    X, Y = torch.from_numpy(d.X), torch.from_numpy(d.Y)
    for step in range(run.steps[0]):
        idx = run.batch_indices[0, step]
        idx = torch.from_numpy(idx[idx >= 0])
        opt.zero_grad()
        loss_fn(model(X[idx]), Y[idx]).backward()
        opt.step()
        ours = run.step_params[0, step + 1]
        theirs = torch.cat([layer.weight.detach().reshape(-1) for layer in layers]).numpy()
        assert np.max(np.abs(ours - theirs)) <= 1e-10 * np.max(np.abs(theirs)), f"step {step}"


# -- injected (SGLD) noise and label noise ---------------------------------------------------
def _stationary_rows(run, d_out, d_in):
    """Final weights of a one-layer run as (seed, row, col)."""
    return run.final_params.reshape(run.n_seeds, d_out, d_in)


def _check_row_covariances(W, mean, cov, n_se=4.0):
    """Sample mean and covariance of every row of W (seed, row, col) against ``mean`` (row, col)
    and ``cov`` (col, col), within ``n_se`` standard errors (Gaussian: Var s_ij = (S_ii S_jj + S_ij^2) / n)."""
    n = W.shape[0]
    se_cov = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov**2) / (n - 1))
    for a in range(W.shape[1]):
        rows = W[:, a, :]
        assert np.all(np.abs(rows.mean(axis=0) - mean[a]) <= n_se * np.sqrt(np.diag(cov) / n)), a
        emp = np.cov(rows, rowvar=False)
        assert np.all(np.abs(emp - cov) <= n_se * se_cov), (a, emp, cov)
    # different rows are independent
    c = np.cov(W[:, 0, :], W[:, 1, :], rowvar=False)[:2, 2:]
    assert np.all(np.abs(c) <= n_se * se_cov)


def test_sgld_stationary_covariance_is_exact_for_a_quadratic_loss():
    """One weight matrix on moments: L = kappa E||y - Wx||^2 + (beta/2)||W||^2 is quadratic with the
    Hessian H = 2 kappa S_xx + beta I per row, and the SGLD step W <- W - lr grad L + sqrt(2 lr T) xi is
    a linear AR(1) process whose stationary row covariance is exactly T H^-1 (I - lr H / 2)^-1 (from
    Sigma = A Sigma A + 2 lr T I, A = I - lr H); it tends to the Boltzmann value T H^-1 as lr -> 0.
    Runs start at the mean W* = S_yx (S_xx + beta / (2 kappa))^-1 and run for > 12 relaxation times."""
    m = tr.Moments(np.array([[1.0, 0.3], [0.3, 2.0]]), np.array([[0.9, 0.3], [0.1, 0.8]]), np.eye(2))
    beta, T = 0.1, 0.05
    for convention, kappa, lr, epochs, S in (("paper", 0.5, 0.5, 100, 4000), ("canonical", 1.0, 0.01, 600, 3000)):
        H = 2 * kappa * m.input_cov + beta * np.eye(2)
        Wstar = np.linalg.solve(H, 2 * kappa * m.cross_cov.T).T
        run = tr.train(m, n_layers=1, width=2, lr=lr, weight_decay=beta, convention=convention, epochs=epochs,
                       init=[Wstar], n_seeds=S, temperature=T, rng=3, log_every=epochs)
        assert run.temperature == T and run.label_noise == 0.0 and np.all(run.status == 0)
        exact = T * np.linalg.inv(H) @ np.linalg.inv(np.eye(2) - lr * H / 2)
        W = _stationary_rows(run, 2, 2)
        _check_row_covariances(W, Wstar, exact)
        if lr == 0.5:  # the discretisation is resolved: the Boltzmann value is many standard errors off
            boltzmann = T * np.linalg.inv(H)
            se = np.sqrt(2 / (S - 1)) * np.diag(exact)
            assert np.all(np.abs(np.diag(np.cov(W[:, 0, :], rowvar=False)) - np.diag(boltzmann)) > 6 * se)
        else:  # lr -> 0: T H^-1 within the standard errors
            _check_row_covariances(W, Wstar, T * np.linalg.inv(H))


def test_label_noise_stationary_covariance_is_exact():
    """Full batch on four samples with S_xx = I exactly: label noise sigma adds
    lr (2 kappa / N) sigma sum_q eps_q x_q^T to W each step, independent per entry with variance
    q = (2 kappa lr sigma)^2 / N, so every weight is AR(1) with rho = 1 - lr (2 kappa + beta) and
    stationary variance q / (1 - rho^2) around W* = S_yx / (1 + beta / (2 kappa))."""
    X = np.array([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])
    Y = X @ np.diag([0.9, 0.8]).T + np.array([[0.1, 0.0], [0.0, -0.1], [0.0, 0.1], [-0.1, 0.0]])
    syx = Y.T @ X / 4
    lr, beta, sigma, S = 0.1, 0.2, 0.5, 4000
    Wstar = syx / (1 + beta / 2)
    run = tr.train((X, Y), n_layers=1, width=2, lr=lr, weight_decay=beta, epochs=100, init=[Wstar], n_seeds=S,
                   label_noise=sigma, rng=4, log_every=100)
    rho = 1 - lr * (2 + beta)
    var = (2 * lr * sigma) ** 2 / 4 / (1 - rho**2)
    _check_row_covariances(_stationary_rows(run, 2, 2), Wstar, var * np.eye(2))


def test_noise_is_per_seed_and_off_by_default(data, teacher):
    kw = dict(temperature=2e-4, label_noise=0.3, test=teacher.test_set())
    one = paper_run(data, n_threads=1, **kw)
    two = paper_run(data, n_threads=2, **kw)
    assert one.equal_values(two)
    alone = paper_run(data, n_seeds=1, seed_offset=3, **kw)
    np.testing.assert_array_equal(alone.final_params[0], one.final_params[3])
    # a step's normals are drawn after its batch: the first epoch has the noiseless run's batches,
    # later epochs' permutations come later in the stream
    quiet = paper_run(data, record_steps=True, epochs=3)
    noisy = paper_run(data, record_steps=True, epochs=3, **kw)
    np.testing.assert_array_equal(noisy.batch_indices[:, :8], quiet.batch_indices[:, :8])
    assert not np.array_equal(noisy.batch_indices[:, 8:], quiet.batch_indices[:, 8:])
    np.testing.assert_array_equal(noisy.initial_params, quiet.initial_params)
    assert not np.array_equal(noisy.final_params, quiet.final_params)
    # each noise on its own changes the run; zero means off (the same run as the default)
    for extra in ({"temperature": 2e-4}, {"label_noise": 0.3}):
        assert not np.array_equal(paper_run(data, epochs=3, **extra).final_params, quiet.final_params)
    off = paper_run(data, record_steps=True, epochs=3, temperature=0.0, label_noise=0.0)
    assert off.equal_values(quiet) and quiet.temperature == 0.0 and quiet.label_noise == 0.0
    f32 = paper_run(data, epochs=3, dtype="float32", **kw)
    assert f32.final_params.dtype == np.float32 and np.all(f32.status == 0)
    assert "temperature=0.0002" in repr(one) and "label_noise=0.3" in repr(one)


def test_kernel_normals_are_the_streams_normal_pairs():
    from phasetools._rng import ZIG_F, ZIG_K, ZIG_W, normal_pair, seed_states, trajectory_keys
    from phasetools.training._kernels import _fill_normals

    st = seed_states(trajectory_keys(5, np.arange(1)))[0]
    a, b = st.copy(), st.copy()
    n = 20001  # odd: the last pair's second normal is drawn and discarded; rare paths included
    buf = np.empty(n)
    _fill_normals(a, buf, n, 2.0, ZIG_K, ZIG_W, ZIG_F)
    ref = np.array([z for _ in range((n + 1) // 2) for z in normal_pair(b, ZIG_K, ZIG_W, ZIG_F)])
    np.testing.assert_array_equal(buf, 2.0 * ref[:n])
    np.testing.assert_array_equal(a, b)
    assert np.abs(ref).max() > 3.5  # the ziggurat's tail was used


@pytest.mark.parametrize("kwargs, name", [
    ({"temperature": -1.0}, "temperature"),
    ({"temperature": np.nan}, "temperature"),
    ({"label_noise": -0.1}, "label_noise"),
    ({"label_noise": np.inf}, "label_noise"),
])
def test_bad_noise(data, kwargs, name):
    with pytest.raises(ValueError, match=name):
        paper_run(data, epochs=1, **kwargs)


def test_label_noise_needs_samples(teacher):
    with pytest.raises(ValueError, match="label_noise"):
        tr.train(teacher.moments, n_layers=3, width=4, lr=0.1, weight_decay=0.1, epochs=1, label_noise=0.1)


# -- merging runs --------------------------------------------------------------------------
def test_merge_runs_with_disjoint_seeds(tmp_path, data, teacher):
    kw = dict(test=teacher.test_set(), epochs=6, log_every=2, record_steps=True, temperature=1e-4)
    whole = paper_run(data, n_seeds=5, **kw)
    a = paper_run(data, n_seeds=2, **kw)
    b = paper_run(data, n_seeds=3, seed_offset=2, **kw)
    for merged in (a + b, b + a):
        assert merged.equal_values(whole)
        assert merged.stats["steps_total"] == whole.stats["steps_total"]
        assert merged.stats["wall_time"] == pytest.approx(a.stats["wall_time"] + b.stats["wall_time"])
    gap = paper_run(data, n_seeds=1, seed_offset=4, **kw)
    m = a + gap
    np.testing.assert_array_equal(m.seed_index, [0, 1, 4])
    np.testing.assert_array_equal(m.final_params[2], whole.final_params[4])
    save(m, tmp_path / "merged.h5", name="m")
    assert load(tmp_path / "merged.h5", "m") == m
    with pytest.raises(ValueError, match="share seed"):
        a + paper_run(data, n_seeds=2, seed_offset=1, **kw)
    with pytest.raises(ValueError, match="lr"):
        a + paper_run(data, n_seeds=2, seed_offset=2, **{**kw, "lr": 0.05})
    with pytest.raises(ValueError, match="temperature"):
        a + paper_run(data, n_seeds=2, seed_offset=2, **{**kw, "temperature": 0.0})
    with pytest.raises(ValueError, match="rng"):
        a + paper_run(data, n_seeds=2, seed_offset=2, **{**kw, "rng": 8})
    with pytest.raises(TypeError):
        a.merge(tr.gradient_covariance(a.weights(seed=0), teacher.moments))


# -- option objects, renamed keys, shared helpers ---------------------------------------------
def test_option_objects_give_the_flat_keyword_run(data, teacher):
    flat = paper_run(data, n_seeds=3, epochs=6, log_every=2, test=teacher.test_set(), label_noise=0.05,
                     temperature=1e-4, sampling="replacement")
    grouped = tr.train(data, n_layers=3, width=10, epochs=6, convention="paper", n_seeds=3, rng=7,
                       sgd=tr.SGD(lr=0.08, batch_size=64, weight_decay=0.32, sampling="replacement"),
                       noise=tr.Noise(temperature=1e-4, label_noise=0.05),
                       logging=tr.Logging(log_every=2, test=teacher.test_set()))
    assert grouped.equal_values(flat)
    with pytest.raises(ValueError, match="lr"):     # a keyword beside the object that holds it
        tr.train(data, n_layers=3, width=10, epochs=1, lr=0.1, sgd=tr.SGD(lr=0.08, weight_decay=0.3))
    with pytest.raises(ValueError, match="batch_size"):
        tr.SGD(lr=0.1, batch_size=0)
    with pytest.raises(ValueError, match="temperature"):
        tr.Noise(temperature=-1)
    with pytest.raises(ValueError, match="sgd"):
        tr.train(data, n_layers=3, width=10, epochs=1, sgd={"lr": 0.1})


def test_files_with_the_former_key_beta_load(tmp_path, data):
    """A TrainingRun written before the rename (config key "beta") loads with weight_decay."""
    import json

    import h5py

    from phasetools.io._verify import DIGEST_ATTR, attrs_digest

    run = paper_run(data, n_seeds=1, epochs=2)
    path = tmp_path / "old.h5"
    name = save(run, path)
    with h5py.File(path, "r+") as f:
        g = f["results"][name]
        types = json.loads(g.attrs["__types__"])
        types["beta"] = types.pop("weight_decay")
        g.attrs["__types__"] = json.dumps(types)
        g.attrs["beta"] = g.attrs["weight_decay"]
        del g.attrs["weight_decay"]
        if DIGEST_ATTR in g.attrs:     # the file as written by the former code: a valid digest
            g.attrs[DIGEST_ATTR] = attrs_digest(g)
    back = load(path, name)
    assert back.weight_decay == run.weight_decay == 0.32
    assert back.equal_values(run)


def test_former_names_map_every_renamed_field():
    """Every renamed result field names the key files written before the rename used."""
    assert tr.TrainingRun._former_names == {"weight_decay": "beta"}
    assert tr.WeightDecaySweep._former_names == {"weight_decays": "betas"}
    assert tr.TrapRelease._former_names == {"target_weight_decay": "target_beta", "trap_weight_decays": "trap_betas"}
    assert tr.ArrheniusSweep._former_names == {"target_weight_decay": "target_beta"}
    assert tr.SparseGrokking._former_names == {"weight_decay": "beta", "trap_weight_decay": "trap_beta"}
    import dataclasses
    for cls in (tr.TrainingRun, tr.WeightDecaySweep, tr.TrapRelease, tr.ArrheniusSweep, tr.SparseGrokking):
        names = {f.name for f in dataclasses.fields(cls)}
        assert set(cls._former_names) <= names and not names & set(cls._former_names.values())
        assert not any("beta" in n for n in names)


def test_as_moments_and_shared_validators(data, teacher):
    from phasetools._validation import check_int, check_scalar
    assert tr.as_moments(teacher) is teacher.moments
    assert tr.as_moments(teacher.moments) is teacher.moments
    np.testing.assert_array_equal(tr.as_moments(data).cross_cov, data.moments().cross_cov)
    np.testing.assert_array_equal(tr.as_moments((data.X, data.Y)).input_cov, data.moments().input_cov)
    with pytest.raises(ValueError, match="test"):
        tr.as_moments("nope", "test")
    assert check_int(np.int64(3), "n", 1) == 3 and type(check_int(np.int64(3), "n", 1)) is int
    for bad in (True, 0, 1.5):
        with pytest.raises(ValueError, match="n must be an integer >= 1"):
            check_int(bad, "n", 1)
    assert check_scalar(0, "x") == 0.0
    with pytest.raises(ValueError, match="x must be > 0"):
        check_scalar(0, "x", positive=True)
    with pytest.raises(ValueError, match="x must be a number"):
        check_scalar([1.0, 2.0], "x")


def test_library_functions_have_no_paper_defaults():
    """The paper's lr, weight decay, network and seed counts are passed by the reproduction, not defaults."""
    import inspect
    req = lambda f: {k for k, p in inspect.signature(f).parameters.items()  # noqa: E731
                     if p.default is inspect.Parameter.empty}
    assert {"lr", "n_layers", "width"} <= req(tr.weight_decay_sweep)
    assert {"weight_decay", "lr", "n_layers", "width"} <= req(tr.converge)
    assert {"trap_weight_decays", "trap_epochs", "lr", "n_layers", "width"} <= req(tr.prepare_trap)
    assert {"target_weight_decay", "epochs", "lr", "n_layers", "width"} <= req(tr.trap_and_release)
    assert {"lr", "batch_size", "target_weight_decay", "epochs", "levels"} <= req(tr.arrhenius_sweep)
    assert {"weight_decay", "lr", "batch_size", "trap_epochs", "epochs", "n_layers", "width", "pool_size",
            "n_train", "test_size"} <= req(tr.sparse_grokking)
    assert {"n_layers"} <= req(tr.mse_levels) and {"n_layers"} <= req(tr.trap_weight_decay)
    assert inspect.signature(tr.trap_and_release).parameters["n_seeds"].default == 1
    assert inspect.signature(tr.sparse_grokking).parameters["n_seeds"].default == 1


def test_trap_weight_decay_paper_units_follow_the_data_outputs():
    """'paper' averages the MSE over the data's outputs (as train does): four outputs are not two."""
    from phasetools.theory import Convention
    data = tr.GaussianTeacher([1.0, 0.8, 0.6, 0.4]).sample(512, rng=1)
    four = tr.trap_weight_decay(data, 1, n_layers=3, convention=Convention.paper(n_outputs=4))
    assert tr.trap_weight_decay(data, 1, n_layers=3) == four
    with pytest.raises(ValueError, match="averages over 2 outputs"):
        tr.trap_weight_decay(data, 1, n_layers=3, convention=Convention.paper(n_outputs=2))
    two = tr.GaussianTeacher([0.9, 0.8]).sample(512, rng=1)
    assert tr.trap_weight_decay(two, 1, n_layers=3) == tr.trap_weight_decay(
        two, 1, n_layers=3, convention=Convention.paper(n_outputs=2))
