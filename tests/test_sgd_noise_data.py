"""Langevin SGD-like noise from the data's own fourth moments, against the per-sample gradient covariance."""

import numpy as np
import pytest

from phasetools.langevin import SGDNoise, Threshold, chain, simulate
from phasetools.langevin._advance import advance, new_streams
from phasetools.theory import data_mode_noise

KAPPA_PAPER = 0.5


def _heavy_tailed(n=4000, seed=7):
    """One scalar mode with Laplace inputs: E[x^4] = 6 a^2, twice Isserlis' 3 a^2."""
    rng = np.random.default_rng(seed)
    x = rng.laplace(scale=1 / np.sqrt(2), size=n)
    y = 0.8 * x + 0.3 * rng.standard_normal(n)
    return x[:, None], y[:, None]


def _per_sample_variance(X, Y, P):
    """Var over samples of the per-sample ``(y - P x) x`` along the mode (the data's, ddof 0)."""
    mode = data_mode_noise(X, Y)[0]
    sign = np.sign(np.linalg.svd(Y.T @ X)[0][0, 0] * np.linalg.svd(Y.T @ X)[2][0, 0])
    x, y = X[:, 0], sign * Y[:, 0]
    return float(np.var((y - P * x) * x)), mode


@pytest.mark.parametrize(("P", "differs"), [(0.0, True), (0.3, True), (0.8, False), (1.2, True)])
def test_data_kernel_is_the_per_sample_variance(P, differs):
    X, Y = _heavy_tailed()
    var, mode = _per_sample_variance(X, Y, P)
    data = SGDNoise.from_mode(0.1, 8, mode)
    gauss = SGDNoise.from_mode(0.1, 8, mode.gaussian())
    assert data.moments == "data" and gauss.moments == "gaussian"
    assert data.kernel([[P]])[0, 0] == pytest.approx(var, rel=1e-9)
    if differs:   # Isserlis' is not this draw's noise (near P = c/a the residual is the Gaussian label noise)
        assert abs(gauss.kernel([[P]])[0, 0] / var - 1) > 0.1
    # Gaussian moments: the effective moments are the given ones
    assert [m[0, 0] for m in gauss.kernel_moments()] == pytest.approx([mode.a, mode.c, mode.output_var])


def test_the_kernel_uses_the_data_noise_in_a_step():
    """One Euler step of many walkers: the increment covariance is lr dt / B times the per-sample gradient covariance."""
    X, Y = _heavy_tailed()
    mode = data_mode_noise(X, Y)[0]
    pot = chain(n_layers=3, c=mode.c, gamma=0.1, a=mode.a, convention="paper")
    w = np.array([0.6, 0.5, 1.0])      # P = 0.3: away from c/a, where Isserlis is off
    P = float(np.prod(w))
    grad_P = np.array([w[1] * w[2], w[0] * w[2], w[0] * w[1]])
    var, _ = _per_sample_variance(X, Y, P)
    kappa = pot.kappa
    sigma_data = 4 * kappa ** 2 * var * np.outer(grad_P, grad_P)      # per-sample gradient covariance
    lr, B, dt, n = 0.1, 4, 1e-3, 60_000
    for noise, expect in ((SGDNoise.from_mode(lr, B, mode), 1.0),
                          (SGDNoise.from_mode(lr, B, mode.gaussian()), None)):
        x0 = np.tile(w, (n, 1))
        out = advance(pot, x0, new_streams(3, np.arange(n)), noise=noise, dt=dt, n_steps=1)
        inc = out.x - x0
        got = float(grad_P @ np.cov(inc.T) @ grad_P)
        want = lr * dt / B * float(grad_P @ sigma_data @ grad_P)
        if expect is not None:
            assert got / want == pytest.approx(1.0, abs=0.03)
        else:
            assert abs(got / want - 1) > 0.1


def test_the_choice_is_recorded_and_replayed():
    X, Y = _heavy_tailed()
    mode = data_mode_noise(X, Y)[0]
    pot = chain(n_layers=3, c=mode.c, gamma=0.1, a=mode.a, convention="paper")
    noise = SGDNoise.from_mode(0.1, 4, mode)
    ens = simulate(pot, [0.9, 0.8, 1.1], noise=noise, dt=0.01, n_traj=4, max_steps=20, stop=Threshold(0.01),
                   rng=5)
    assert ens.noise["moments"] == "data"
    assert ens.noise["fourth"] == pytest.approx([mode.m_xxxx, mode.m_yxxx, mode.m_yyxx])
    from phasetools.langevin import replay
    again = replay(pot, ens, 1)
    assert np.array_equal(again.final[0], ens.final[1])       # replayed with the data moments, bit-identical


def test_bad_data_options_are_refused():
    with pytest.raises(ValueError, match="fourth"):
        SGDNoise(0.1, 4, [[1.0]], [[0.5]], [[1.0]], moments="data")
    with pytest.raises(ValueError, match="moments"):
        SGDNoise(0.1, 4, [[1.0]], [[0.5]], [[1.0]], moments="empirical")
    with pytest.raises(ValueError, match="scalar mode"):
        SGDNoise(0.1, 4, np.eye(2), np.eye(2), np.eye(2), moments="data", fourth=(3.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="fourth"):
        SGDNoise(0.1, 4, [[1.0]], [[0.5]], [[1.0]], moments="data", fourth=(0.5, 1.0, 1.0))   # E[x^4] < a^2
