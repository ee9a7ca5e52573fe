"""Finite samples: empirical moments and per-mode predictions."""

import warnings

import numpy as np
import pytest

from phasetools.theory import MisalignmentWarning, critical_points, empirical_modes, modes


def aligned_data(c, a, N, rng):
    """Data whose empirical moments are exactly aligned: whitened rows scaled per mode."""
    d = len(c)
    Z = rng.normal(size=(N, d))
    Z -= Z.mean(axis=0)
    # exact whitening: Z^T Z / N = I
    L = np.linalg.cholesky(Z.T @ Z / N)
    Z = Z @ np.linalg.inv(L).T
    X = Z * np.sqrt(a)
    Y = Z * (np.asarray(c) / np.sqrt(a))  # E[x_k y_k] = c_k, cross terms zero
    return X, Y


def test_exactly_aligned_sample_reproduces_population_modes():
    rng = np.random.default_rng(0)
    c, a = [0.9, 0.8], [1.0, 1.0]
    X, Y = aligned_data(c, a, 64, rng)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        e = empirical_modes(3, X, Y, gamma=0.32, convention="paper")
    assert e.aligned and e.misalignment < 1e-12 and e.relaxed is None
    np.testing.assert_allclose(e.c, c, rtol=1e-12)
    np.testing.assert_allclose(e.a, a, rtol=1e-12)
    ref = modes(3, c, gamma=0.32, convention="paper")
    np.testing.assert_allclose(e.modes.gamma_sp, ref.gamma_sp, rtol=1e-12)


def test_anisotropic_aligned_sample():
    rng = np.random.default_rng(1)
    c, a = [1.5, 0.4], [2.0, 0.5]
    X, Y = aligned_data(c, a, 200, rng)
    e = empirical_modes(4, X, Y)
    np.testing.assert_allclose(e.modes.gamma_c, critical_points(4, np.array(c), np.array(a)).gamma_c, rtol=1e-10)


def test_random_sample_warns_and_relaxes():
    rng = np.random.default_rng(2)
    N = 512
    X = rng.normal(size=(N, 2))
    Y = X * np.array([0.9, 0.8]) + rng.normal(size=(N, 2)) * np.sqrt([0.19, 0.36])
    with pytest.warns(MisalignmentWarning, match="not aligned"):
        e = empirical_modes(3, X, Y, gamma=0.32, convention="paper")
    assert not e.aligned and e.misalignment > 1e-3
    assert e.n_samples == N
    assert len(e.relaxed) == len(e.modes.states)
    for r, s in zip(e.relaxed, e.modes.states):
        # relaxation can only lower the energy, and only slightly for a small misalignment
        assert r.energy <= r.energy_predicted + 1e-12
        assert abs(r.energy - r.energy_predicted) < 10 * e.misalignment * max(1e-3, abs(s.energy) + 0.01)
        assert np.sum(r.singular_values > 1e-8) == len(r.learned)


def test_convention_output_count_mismatch():
    X = np.random.default_rng(3).normal(size=(10, 3))
    with pytest.raises(ValueError, match="averages over 2 outputs"):
        empirical_modes(3, X, X, convention="paper")
