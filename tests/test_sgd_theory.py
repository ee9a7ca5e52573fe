"""SGD-noise physics in phasetools.theory: the residual moments, the kernel K of
Sigma = 4 kappa^2 J^T K J, the without-replacement factor and T_eff, each checked against an
independent computation, and the training and langevin layers checked to use them."""

import itertools

import numpy as np
import pytest
import sympy as sp

import phasetools.langevin as lv
import phasetools.training as tr
from phasetools.theory import (effective_temperature, gradient_covariance_from_K, gradient_noise_kernel,
                               noise_strength, residual_moments, without_replacement_factor)


def _gaussian_case(d=3, p=2, seed=0):
    rng = np.random.default_rng(seed)
    B = rng.normal(size=(d + p, d + p))
    joint = B @ B.T + 0.5 * np.eye(d + p)            # covariance of z = (x, y)
    sxx, syx, syy = joint[:d, :d], joint[d:, :d], joint[d:, d:]
    M = rng.normal(size=(p, d))
    return joint, sxx, syx, syy, M


def test_residual_moments_against_the_joint_covariance():
    joint, sxx, syx, syy, M = _gaussian_case()
    d, p = sxx.shape[0], syy.shape[0]
    A = np.hstack([-M, np.eye(p)])                     # r = A z
    E = np.hstack([np.eye(d), np.zeros((d, p))])       # x = E z
    Q, R = residual_moments(M, sxx, syx, syy)
    np.testing.assert_allclose(Q, A @ joint @ A.T, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(R, A @ joint @ E.T, rtol=1e-12, atol=1e-12)


def test_kernel_is_the_covariance_of_vec_r_xT_by_isserlis_on_z():
    """K = Cov(vec(r x^T)), computed here from the fourth moments of z = (x, y) directly:
    E[z_i z_j z_k z_l] = S_ij S_kl + S_ik S_jl + S_il S_jk."""
    joint, sxx, syx, syy, M = _gaussian_case(seed=3)
    d, p = sxx.shape[0], syy.shape[0]
    A = np.hstack([-M, np.eye(p)])
    E = np.hstack([np.eye(d), np.zeros((d, p))])
    S = joint
    z4 = (np.einsum("ij,kl->ijkl", S, S) + np.einsum("ik,jl->ijkl", S, S) + np.einsum("il,jk->ijkl", S, S))
    # u_ab = (A z)_a (E z)_b ;  E[u_ab u_cd] = A_ai E_bj A_ck E_dl E[z_i z_j z_k z_l]
    second = np.einsum("ai,bj,ck,dl,ijkl->abcd", A, E, A, E, z4).reshape(p * d, p * d)
    mean = (A @ S @ E.T).ravel()
    expected = second - np.outer(mean, mean)
    np.testing.assert_allclose(gradient_noise_kernel(M, sxx, syx, syy), expected, rtol=1e-11, atol=1e-11)


def test_kernel_against_samples():
    """Monte Carlo: the sample covariance of vec(r x^T) over 400k Gaussian draws."""
    joint, sxx, syx, syy, M = _gaussian_case(d=2, p=2, seed=5)
    z = np.random.default_rng(7).multivariate_normal(np.zeros(4), joint, size=400_000)
    x, y = z[:, :2], z[:, 2:]
    r = y - x @ M.T
    u = (r[:, :, None] * x[:, None, :]).reshape(len(z), -1)
    c = u - u.mean(axis=0)
    emp = c.T @ c / len(z)
    se = np.std(c[:, :, None] * c[:, None, :], axis=0) / np.sqrt(len(z))
    assert np.all(np.abs(gradient_noise_kernel(M, sxx, syx, syy) - emp) <= 5 * se)


def test_kernel_numpy_batch_and_sympy_agree():
    _, sxx, syx, syy, M = _gaussian_case(seed=1)
    batch = np.stack([M, 2 * M, -M])
    K = gradient_noise_kernel(batch, sxx, syx, syy)
    assert K.shape == (3, 6, 6)
    for k in range(3):
        np.testing.assert_array_equal(K[k], gradient_noise_kernel(batch[k], sxx, syx, syy))
    Ms = sp.Matrix(2, 3, lambda i, j: sp.Symbol(f"M_{i}_{j}"))
    Ks = gradient_noise_kernel(Ms, sp.Matrix(sxx), sp.Matrix(syx), sp.Matrix(syy))
    assert isinstance(Ks, sp.MatrixBase) and Ks.shape == (6, 6)
    num = np.array(sp.lambdify(list(Ms), Ks)(*M.ravel()), dtype=float)
    np.testing.assert_allclose(num, K[0], rtol=1e-12, atol=1e-12)


def test_kernel_of_one_scalar_mode():
    """K(P) = a (s - 2 P c + P^2 a) + (c - P a)^2, symbolically."""
    P, a, c, s = sp.symbols("P a c s")
    K = gradient_noise_kernel(sp.Matrix([[P]]), sp.Matrix([[a]]), sp.Matrix([[c]]), sp.Matrix([[s]]))
    assert sp.expand(K[0, 0] - (a * (s - 2 * P * c + P**2 * a) + (c - P * a) ** 2)) == 0


def test_gradient_covariance_from_K_is_the_covariance_of_per_sample_gradients():
    """Sigma = 4 kappa^2 J^T K J against the sample covariance of training.per_sample_gradients."""
    t = tr.GaussianTeacher(0.8, rotation=2)
    mom = t.moments
    shapes = [(3, mom.d_in), (mom.d_out, 3)]
    W = [np.random.default_rng(k).normal(scale=0.6, size=s) for k, s in enumerate(shapes)]
    M = W[1] @ W[0]
    closed = tr.gradient_covariance(W, mom, convention="paper")
    kappa = closed.convention.kappa
    sigma = gradient_covariance_from_K(tr.jacobian(W),
                                       gradient_noise_kernel(M, mom.input_cov, mom.cross_cov, mom.output_cov), kappa)
    d = t.sample(200_000, rng=11)
    g = tr.per_sample_gradients(W, d.X, d.Y, convention="paper")
    c = g - g.mean(axis=0)
    se = np.std(c[:, :, None] * c[:, None, :], axis=0) / np.sqrt(len(g))
    assert np.all(np.abs(sigma - c.T @ c / len(g)) <= 6 * se + 1e-12)
    np.testing.assert_allclose(closed.covariance, 0.5 * (sigma + sigma.T), rtol=1e-12, atol=1e-14)


def test_without_replacement_factor_by_enumeration():
    """Var of the mean of a batch of B drawn without replacement from N fixed values (all
    subsets enumerated) = (population variance / B) (N - B)/(N - 1)."""
    v = np.array([0.3, -1.2, 2.5, 0.0, 1.1, -0.4, 0.9])
    N = len(v)
    var = np.var(v)
    for B in (1, 2, 3, 6, 7):
        means = [np.mean(c) for c in itertools.combinations(v, B)]
        assert np.var(means) == pytest.approx(var / B * without_replacement_factor(B, N), rel=1e-12, abs=1e-15)
    assert without_replacement_factor(4) == 1.0


def test_effective_temperature_and_noise_strength():
    assert noise_strength(0.08, 16) == pytest.approx(0.005)
    assert noise_strength(0.08, 16, 64) == pytest.approx(0.005 * 48 / 63)
    T = effective_temperature(3.0, 140, 0.08, 64, n_samples=512)
    assert T == pytest.approx(0.08 * 3.0 / (2 * 64 * 140) * 448 / 511, rel=1e-14)
    # T_eff is the temperature of isotropic noise with SGD's total variance per unit time:
    # 2 T N_theta = (lr f / B) tr Sigma
    assert 2 * T * 140 == pytest.approx(noise_strength(0.08, 64, 512) * 3.0, rel=1e-14)
    assert tr.effective_temperature is effective_temperature        # one definition


@pytest.mark.parametrize("call, match", [
    (lambda: without_replacement_factor(0), "batch_size must be an integer >= 1"),
    (lambda: without_replacement_factor(2.0), "batch_size must be an integer >= 1"),
    (lambda: without_replacement_factor(True), "batch_size must be an integer >= 1"),
    (lambda: without_replacement_factor(8, 4), "n_samples must be an integer >= 8"),
    (lambda: without_replacement_factor(1, 1), "n_samples must be an integer >= 2"),
    (lambda: noise_strength(0.0, 4), "lr must be > 0"),
    (lambda: noise_strength(float("nan"), 4), "lr must be finite"),
    (lambda: effective_temperature(-1.0, 10, 0.1, 4), "trace must be >= 0"),
    (lambda: effective_temperature(1.0, 0, 0.1, 4), "n_params must be an integer >= 1"),
    (lambda: lv.SGDNoise(0.1, 4, [[1.0]], [[0.5]], [[1.0]], n_samples=3), "n_samples must be an integer"),
])
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_sgd_theory_trace_and_temperature_match_training_gradient_noise():
    """The langevin 1D reduction and the training layer's closed form give the same tr Sigma and
    T_eff at the balanced chain (scalar weights W_k = [[b]]), start and saddle."""
    th = lv.escape_problem("chain", n_layers=3, c=0.8, gamma=0.32, direction="bwd").sgd_theory()  # canonical
    mom = tr.Moments([[th.a]], [[th.c]], [[th.output_var]])
    for b in (th.b_start, th.b_saddle, 0.37):
        noise = tr.gradient_covariance([np.array([[b]])] * 3, mom)
        assert th.trace(b) == pytest.approx(noise.trace, rel=1e-12)
    start = tr.gradient_covariance([np.array([[th.b_start]])] * 3, mom)
    assert th.temperature(0.08, 16, 64) == pytest.approx(start.temperature(0.08, 16, 64), rel=1e-12)
    assert th.temperature(0.08, 16) == pytest.approx(effective_temperature(th.trace_start, 3, 0.08, 16), rel=1e-15)


def test_sgd_noise_factor_is_the_theory_factor():
    n = lv.SGDNoise(0.1, 16, [[1.0]], [[0.5]], [[1.0]], n_samples=64)
    assert n.factor == without_replacement_factor(16, 64) == 48 / 63
    assert lv.SGDNoise(0.1, 16, [[1.0]], [[0.5]], [[1.0]]).factor == 1.0


def test_log_first_passage_time_matches_mfpt_1d_for_constant_diffusion():
    # db = -U'(b) dt + sqrt(2 T) dW from the well at b = 1 down to 0.5: the additive-noise
    # formula of mfpt_1d (reflecting at 3, where U is 80 T above the well) is the same time
    import math

    from phasetools.theory import log_first_passage_time, mfpt_1d
    T = 0.1
    expected = mfpt_1d(lambda b: 2.0 * (b - 1.0) ** 2, 1.0, 0.5, 3.0, T)
    got = log_first_passage_time(lambda b: 4.0 * (b - 1.0), lambda b: np.full_like(b, T), 1.0, 0.5)
    assert got == pytest.approx(math.log(expected), rel=1e-6)
