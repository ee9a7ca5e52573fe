"""SGD-like noise from a training set's own fourth moments on network potentials (structured kernel).

``SGDNoise.from_data`` carries ``T[k,b,l,d] = E[z_k x_b z_l x_d]`` (``z = (x, y)``) and the
kernel's data variant evaluates ``K = sum A_ak A_cl T[k,b,l,d] - (A S)_ab (A S)_cd``
(``A = [M, -I]``) at every step; the Gaussian variant is unchanged bit for bit.
"""

import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest

from phasetools.langevin import (
    SGDNoise,
    Threshold,
    chain,
    escape_problem,
    network,
    replay,
    simulate,
)
from phasetools.langevin import _netkernel as nk
from phasetools.theory import (
    data_mode_noise,
    data_noise_kernel,
    gaussian_fourth_moments,
    gradient_noise_kernel,
    sample_fourth_moments,
)


def _joint(d, p, seed):
    rng = np.random.default_rng(seed)
    B = rng.normal(size=(d + p,) * 2)
    J = B @ B.T + (d + p) * np.eye(d + p)
    return J[:d, :d], J[d:, :d], J[d:, d:]


def _heavy(n=3000, d=2, p=2, seed=3):
    """A non-Gaussian training set: Laplace inputs, Student-t label noise (E[x^4] = 6, not 3)."""
    rng = np.random.default_rng(seed)
    X = rng.laplace(scale=1 / np.sqrt(2), size=(n, d))
    F = np.array([[0.9, 0.2, 0.0], [0.1, 0.7, 0.3]])[:p, :d]
    Y = X @ F.T + 0.4 * rng.standard_t(5, size=(n, p))
    return X, Y


def _per_sample_rx(X, Y, M):
    """vec(r x^T) of every sample, rows in the order of K."""
    R = Y - X @ M.T
    return (R[:, :, None] * X[:, None, :]).reshape(X.shape[0], -1)


# --- the tensor and K on the host ------------------------------------------------------------------
@pytest.mark.parametrize(("d", "p"), [(1, 1), (2, 2), (3, 2), (1, 3)])
def test_isserlis_tensor_gives_the_gaussian_kernel_to_rounding(d, p):
    sxx, syx, syy = _joint(d, p, seed=10 * d + p)
    M = np.random.default_rng(1).normal(size=(5, p, d))
    T = gaussian_fourth_moments(sxx, syx, syy)
    want = gradient_noise_kernel(M, sxx, syx, syy)
    got = data_noise_kernel(M, sxx, syx, T)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12 * np.max(np.abs(want)))
    noise = SGDNoise(0.1, 4, sxx, syx, syy, moments="data", fourth=T)
    assert noise.tensor and noise.moments == "data"
    np.testing.assert_allclose(noise.kernel(M), SGDNoise(0.1, 4, sxx, syx, syy).kernel(M), rtol=0,
                               atol=1e-12 * np.max(np.abs(want)))


def test_data_kernel_is_the_covariance_of_per_sample_gradients():
    """K of from_data is exactly the (ddof 0) covariance of vec(r x^T) over the training set;
    the Gaussian formula on the same second moments is not (Laplace inputs)."""
    X, Y = _heavy()
    noise = SGDNoise.from_data(0.1, 8, (X, Y))
    gauss = SGDNoise(0.1, 8, noise.input_cov, noise.cross_cov, noise.output_cov)
    for M in (np.zeros((2, 2)), np.array([[0.5, 0.1], [-0.2, 0.4]]), np.array([[0.9, 0.2], [0.1, 0.7]])):
        want = np.cov(_per_sample_rx(X, Y, M), rowvar=False, ddof=0)
        np.testing.assert_allclose(noise.kernel(M), want, rtol=0, atol=1e-10 * np.max(np.abs(want)))
        assert np.max(np.abs(gauss.kernel(M) - want)) > 0.1 * np.max(np.abs(want))
    S, T = noise.data_moments()
    assert S.shape == (4, 2) and T.shape == (4, 2, 4, 2)
    np.testing.assert_allclose(T, sample_fourth_moments(X, Y))


def test_from_data_takes_a_training_dataset():
    from phasetools.training import Dataset

    X, Y = _heavy(n=500)
    a = SGDNoise.from_data(0.1, 8, Dataset(X, Y), n_samples=500)
    b = SGDNoise.from_data(0.1, 8, (X, Y), n_samples=500)
    assert a.factor == b.factor == pytest.approx(492 / 499)
    assert np.array_equal(a.fourth, b.fourth) and np.array_equal(a.cross_cov, b.cross_cov)
    one = SGDNoise.from_data(0.1, 8, (X[:, 0], Y[:, 0]))   # 1-D arrays are one column
    assert one.fourth.shape == (2, 1, 2, 1)


# --- the structured kernel's data variant ----------------------------------------------------------
def _gradients_of_samples(st, theta, X, Y, kappa):
    """Per-sample gradients of kappa |M x - y|^2 w.r.t. every weight of a 3-layer network."""
    W = [np.array(w) for w in st.weights(theta)]
    resid = X @ (W[2] @ W[1] @ W[0]).T - Y
    above = [W[2] @ W[1], W[2], np.eye(W[2].shape[0])]
    below = [np.eye(W[0].shape[1]), W[0], W[1] @ W[0]]
    return np.concatenate([2 * kappa * np.einsum("mi,mj->mij", resid @ above[k], X @ below[k].T).reshape(len(X), -1)
                           for k in range(3)], axis=1)


def test_structured_step_covariance_is_the_training_sets_per_sample_covariance():
    """One step of the structured kernel (moments='data') from a random 2 -> 3 -> 3 -> 2 state: the
    increment's variance along random directions is (lr dt / B) times the per-sample gradient
    covariance of the actual training set (exact: ddof 0 over its N samples), within 4 standard
    errors of the sample variance of n increments; Isserlis' prediction is outside them."""
    X, Y = _heavy()
    noise = SGDNoise.from_data(0.05, 8, (X, Y))
    pot = network(3, 3, noise.input_cov, noise.cross_cov, 0.1, convention="paper")
    st = pot.structure
    theta = np.random.default_rng(8).normal(scale=0.6, size=pot.dim)
    lr, B, dt, n = 0.05, 8, 0.01, 200_000
    r = simulate(pot, theta, noise=noise, dt=dt, n_traj=n, max_steps=1, rng=4)
    inc = r.final - theta + dt * st.gradient(theta)
    G = _gradients_of_samples(st, theta, X, Y, pot.kappa)
    expected = lr * dt / B * np.cov(G, rowvar=False, ddof=0)
    from phasetools.training import jacobian

    weights = [np.array(w) for w in st.weights(theta)]
    J = jacobian(weights)
    gauss = SGDNoise(lr, B, noise.input_cov, noise.cross_cov, noise.output_cov)
    M = weights[2] @ weights[1] @ weights[0]
    iss = lr * dt / B * 4 * pot.kappa ** 2 * J.T @ gauss.kernel(M) @ J       # Isserlis' prediction
    np.testing.assert_allclose(lr * dt / B * 4 * pot.kappa ** 2 * J.T @ noise.kernel(M) @ J, expected, rtol=0,
                               atol=1e-10 * np.max(np.abs(expected)))       # host K = per-sample covariance
    dirs = np.random.default_rng(6).normal(size=(8, pot.dim))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    far = 0
    for u in dirs:
        v_sim, v_exp = np.var(inc @ u, ddof=1), u @ expected @ u
        se = v_exp * np.sqrt(2 / (n - 1))
        assert abs(v_sim - v_exp) < 4 * se, (v_sim, v_exp, se)
        far += abs(u @ iss @ u - v_exp) > 10 * se
    assert far >= 4          # the test tells the data noise from Isserlis'
    assert abs(np.mean(inc @ dirs[0])) < 4 * np.sqrt(dirs[0] @ expected @ dirs[0] / n)


def test_one_mode_chain_and_network_agree_to_rounding():
    """One scalar mode of a non-Gaussian draw: the chain on the generated kernel with
    from_mode (effective Isserlis moments) or from_data (its 1 x 1 tensor converted), the
    width-1 network on the structured kernel with from_mode, and the same network with
    from_data (the data variant) give the same trajectories on the same streams, up to rounding."""
    rng = np.random.default_rng(2)
    x = rng.laplace(scale=1 / np.sqrt(2), size=4000)
    y = 0.8 * x + 0.3 * rng.standard_t(5, size=4000)
    mode = data_mode_noise(x[:, None], y[:, None])[0]
    full = SGDNoise.from_data(0.1, 4, (x, y))
    assert full.cross_cov[0, 0] == pytest.approx(mode.c) and full.input_cov[0, 0] == pytest.approx(mode.a)
    kw = {"dt": 0.01, "n_traj": 64, "max_steps": 400, "stop": Threshold(0.02, "down"), "rng": 7}
    w0 = [0.9, 0.85, 1.05]
    ch = simulate(chain(3, mode.c, 0.1, mode.a, convention="paper"), w0, noise=SGDNoise.from_mode(0.1, 4, mode), **kw)
    net = network(3, 1, [[mode.a]], [[mode.c]], 0.1, convention="paper")
    nm = simulate(net, w0, noise=SGDNoise.from_mode(0.1, 4, mode), **kw)
    nd = simulate(net, w0, noise=full, **kw)
    assert nd.noise["moments"] == "data" and np.shape(nd.noise["fourth"]) == (2, 1, 2, 1)
    cd = simulate(chain(3, mode.c, 0.1, mode.a, convention="paper"), w0, noise=full, **kw)   # the tensor, converted
    for other in (nm, nd, cd):
        assert np.array_equal(other.steps, ch.steps)
        np.testing.assert_allclose(other.final, ch.final, rtol=1e-9, atol=1e-12)
    g = simulate(net, w0, noise=SGDNoise.from_mode(0.1, 4, mode.gaussian()), **kw)
    assert not np.allclose(g.final, nd.final, rtol=1e-3)   # the data's moments make a difference


def test_choice_recorded_saved_loaded_and_replayed(tmp_path):
    from phasetools.io import load, save

    X, Y = _heavy(n=800)
    noise = SGDNoise.from_data(0.08, 3, (X, Y))
    pot = network(3, 2, noise.input_cov, noise.cross_cov, 0.1, convention="paper")
    theta = np.random.default_rng(0).normal(scale=0.7, size=pot.dim)
    ens = simulate(pot, theta, noise=noise, dt=0.01, n_traj=12, max_steps=300, scheme="bridge",
                   stop=Threshold(float(pot.structure.order(theta)) * 0.8, "down"), rng=3)
    assert ens.noise["moments"] == "data"
    np.testing.assert_array_equal(np.asarray(ens.noise["fourth"]), noise.fourth)
    path = tmp_path / "ens.h5"
    save(ens, path)
    back = load(path)
    np.testing.assert_array_equal(np.asarray(back.noise["fourth"], dtype=float), noise.fourth)
    assert back.noise["moments"] == "data"
    for i in (0, 5, 11):
        one = replay(pot, back, i)
        assert one.steps[0] == ens.steps[i] and np.array_equal(one.final[0], ens.final[i])


# --- the Gaussian path is unchanged ------------------------------------------------------------------
def test_gaussian_path_bit_identical_to_before():
    """Golden values recorded on the commit before the data variant existed (same machine code path)."""
    sxx = np.array([[1.0, 0.2], [0.2, 0.8]])
    syx = np.array([[0.9, 0.1], [0.0, 0.6]])
    syy = np.array([[1.2, 0.1], [0.1, 0.9]])
    pot = network(3, 3, sxx, syx, 0.1)
    theta = np.random.default_rng(8).normal(scale=0.6, size=pot.dim)
    r = simulate(pot, theta, noise=SGDNoise(0.05, 4, sxx, syx, syy), dt=0.01, n_traj=6, max_steps=300, rng=4)
    assert r.final[0, :4].tolist() == [-0.5740473197542155, -0.6215500253334424, -0.08340142864993862,
                                       -0.5755968937611458]
    assert hashlib.sha256(r.final.tobytes()).hexdigest() == \
        "5d2f7a38b2c6c3cede0cf030e00b99780ae9e01b4f4204019ddf6b334ca76c71"
    pr = escape_problem("network", n_layers=3, c=0.8, gamma=0.32, width=4, direction="bwd", convention="paper")
    e = simulate(pr.potential, pr.x0, noise=pr.sgd_noise(0.08, 3), dt=0.02, n_traj=16, max_steps=4000, stop=pr.stop,
                 scheme="bridge", rng=9)
    assert e.steps.tolist() == [3024, 4000, 1759, 4000, 4000, 4000, 4000, 2668, 1923, 4000, 4000, 963, 381, 4000,
                                4000, 4000]
    assert hashlib.sha256(e.final.tobytes()).hexdigest() == \
        "380867a2b22e5d5734239eb5feecce74456a0cf0454ec92b9a8cfb40c3034b79"


_VARIANT_SCRIPT = """
import numpy as np
from phasetools.langevin import SGDNoise, network, simulate
from phasetools.langevin import _netkernel as nk
rng = np.random.default_rng(0)
X = rng.laplace(size=(300, 2)); Y = X @ np.diag([0.9, 0.8]) + rng.normal(size=(300, 2))
data = SGDNoise.from_data(0.08, 4, (X, Y))
pot = network(3, 2, data.input_cov, data.cross_cov, 0.32)
gauss = SGDNoise(0.08, 4, data.input_cov, data.cross_cov, data.output_cov)
simulate(pot, np.full(pot.dim, 0.3), noise=gauss, dt=0.01, n_traj=2, max_steps=5, rng=1)
print(sum(len(w.signatures) for w in nk.DATA_WORKERS.values()), len(nk._noise_cov_data.signatures))
simulate(pot, np.full(pot.dim, 0.3), noise=data, dt=0.01, n_traj=2, max_steps=5, rng=1)
print(sum(len(w.signatures) for w in nk.WORKERS.values()), len(nk.worker(True, False, 0, data=True).signatures),
      len(nk._noise_cov_data.signatures))
"""


def test_each_noise_variant_compiles_only_its_own_code(tmp_path):
    """With empty caches, a Gaussian SGD run compiles none of the data variant, and a data run
    compiles its own worker (the Gaussian one from before stays the only other signature)."""
    env = dict(os.environ, PHASETOOLS_CACHE_DIR=str(tmp_path), NUMBA_CACHE_DIR=str(tmp_path / "numba"))
    out = subprocess.run([sys.executable, "-c", _VARIANT_SCRIPT], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0", "0", "1", "1", "1"], out.stdout


# --- bad input -----------------------------------------------------------------------------------
def test_bad_data_noise_is_refused():
    X, Y = _heavy(n=200)
    good = SGDNoise.from_data(0.1, 4, (X, Y))
    sxx, syx, syy = good.input_cov, good.cross_cov, good.output_cov
    with pytest.raises(ValueError, match="data must be a pair"):
        SGDNoise.from_data(0.1, 4, X)
    with pytest.raises(ValueError, match="same number"):
        SGDNoise.from_data(0.1, 4, (X, Y[:-1]))
    with pytest.raises(ValueError, match="N >= 2"):
        SGDNoise.from_data(0.1, 4, (X[:1], Y[:1]))
    with pytest.raises(ValueError, match="finite"):
        SGDNoise.from_data(0.1, 4, (np.where(X > 1, np.nan, X), Y))
    with pytest.raises(ValueError, match="batch_size"):
        SGDNoise.from_data(0.1, 0, (X, Y))
    with pytest.raises(ValueError, match="shape"):
        SGDNoise(0.1, 4, sxx, syx, syy, moments="data", fourth=good.fourth[:3])
    bad = good.fourth.copy()
    bad[0, 0, 1, 1] += 1.0
    with pytest.raises(ValueError, match="symmetric"):
        SGDNoise(0.1, 4, sxx, syx, syy, moments="data", fourth=bad)
    with pytest.raises(ValueError, match="not those of one data set"):
        SGDNoise(0.1, 4, 3 * sxx, syx, syy, moments="data", fourth=good.fourth)
    with pytest.raises(ValueError, match="scalar mode"):
        SGDNoise(0.1, 4, sxx, syx, syy, moments="data", fourth=(3.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="fourth must be given"):
        SGDNoise(0.1, 4, sxx, syx, syy, moments="gaussian", fourth=good.fourth)
    with pytest.raises(ValueError, match="fourth"):
        SGDNoise(0.1, 4, sxx, syx, syy, moments="data")
    with pytest.raises(ValueError, match="fourth must have shape"):
        data_noise_kernel(np.zeros((2, 3)), sxx, syx, good.fourth)
    with pytest.raises(ValueError, match="same number"):
        sample_fourth_moments(X, Y[:5])


def test_data_noise_of_a_network_needs_the_structured_kernel():
    """The generated kernels evaluate Isserlis' formula: a 2 x 2 data noise on them is refused
    (kernel='sympy', or the rare-event engine's advance), a 1 x 1 one is converted."""
    from phasetools.langevin._advance import advance, new_streams

    X, Y = _heavy(n=300)
    noise = SGDNoise.from_data(0.1, 4, (X, Y))
    pot = network(2, 1, noise.input_cov, noise.cross_cov, 0.1, kernel="sympy")
    with pytest.raises(ValueError, match="structured network kernel"):
        simulate(pot, np.full(pot.dim, 0.3), noise=noise, dt=0.01, n_traj=2, max_steps=3, rng=1)
    with pytest.raises(ValueError, match="structured network kernel"):
        advance(pot, np.full((2, pot.dim), 0.3), new_streams(1, [0, 1]), noise=noise, dt=0.01, n_steps=2)
    one = SGDNoise.from_data(0.1, 4, (X[:, 0], Y[:, 0]))
    mode = data_mode_noise(X[:, :1], Y[:, :1])[0]
    np.testing.assert_allclose([m[0, 0] for m in one.kernel_moments()],
                               [m[0, 0] for m in SGDNoise.from_mode(0.1, 4, mode).kernel_moments()], rtol=1e-9)
    assert nk.worker(True, False, 0, data=True) is not nk.worker(True, False, 0)


# --- the 1-D SGD theory with the simulated noise ------------------------------------------------------
def test_sgd_theory_uses_the_noise_it_is_given():
    """EscapeProblem.sgd_theory(noise=...) reduces the simulated noise, data moments included:
    tr Sigma(b) = 4 kappa^2 n b^(2n-2) K(b^n) with the draw's K (ModeNoise.kernel), not Isserlis'."""
    rng = np.random.default_rng(2)
    x = rng.laplace(scale=1 / np.sqrt(2), size=4000)
    y = 0.8 * x + 0.3 * rng.standard_t(5, size=4000)
    mode = data_mode_noise(x[:, None], y[:, None])[0]
    pr = escape_problem("chain", n_layers=3, c=mode.c, gamma=0.32, a=mode.a, direction="bwd", convention="paper")
    kappa = pr.potential.kappa
    th_m = pr.sgd_theory(noise=SGDNoise.from_mode(0.1, 4, mode))
    th_d = pr.sgd_theory(noise=SGDNoise.from_data(0.1, 4, (x, y)))
    th_g = pr.sgd_theory(output_var=mode.output_var)
    for b in (0.5, th_m.b_start, th_m.b_saddle):
        tr = 4 * kappa ** 2 * 3 * b ** 4
        assert th_m.trace(b) == pytest.approx(tr * float(mode.kernel(b ** 3)), rel=1e-9)
        assert th_d.trace(b) == pytest.approx(tr * float(mode.kernel(b ** 3)), rel=1e-6)
        assert th_g.trace(b) == pytest.approx(tr * float(mode.gaussian().kernel(b ** 3)), rel=1e-9)
    assert abs(th_m.tau(0.1, 4) / th_g.tau(0.1, 4) - 1) > 0.05
    assert th_m.temperature(0.1, 4) != th_g.temperature(0.1, 4)
    with pytest.raises(ValueError, match="problem a"):
        pr.sgd_theory(noise=SGDNoise(0.1, 4, [[2.0]], [[mode.c]], [[1.0]]))
    with pytest.raises(ValueError, match="SGDNoise"):
        pr.sgd_theory(noise=mode)


def test_network_sigma_and_t_eff_agree_with_the_trainers_empirical_covariance():
    """At a network's weights, 4 kappa^2 J^T K J with the data tensor's K is the trainer's
    per-sample gradient covariance over the training set (training.gradient_covariance,
    moments='data'), so T_eff from either is the same."""
    from phasetools.theory import effective_temperature, gradient_covariance_from_K
    from phasetools.training import gradient_covariance, jacobian

    X, Y = _heavy(n=1500)
    noise = SGDNoise.from_data(0.1, 8, (X, Y))
    rng = np.random.default_rng(4)
    W = [rng.normal(scale=0.6, size=s) for s in ((3, 2), (3, 3), (2, 3))]
    M = W[2] @ W[1] @ W[0]
    for conv, kappa in (("canonical", 1.0), ("paper", 0.5)):
        g = gradient_covariance(W, (X, Y), convention=conv, moments="data")
        sigma = gradient_covariance_from_K(jacobian(W), noise.kernel(M), kappa)
        np.testing.assert_allclose(sigma, g.covariance, rtol=0, atol=1e-9 * np.max(np.abs(sigma)))
        assert effective_temperature(np.trace(sigma), g.n_params, 0.1, 8) == pytest.approx(g.temperature(0.1, 8),
                                                                                            rel=1e-9)
