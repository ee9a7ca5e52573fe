"""Escape-time theory: Kramers and exact MFPT (brief 4.1, 7.3), Eyring-Kramers (4.2, 4.3, 7.7)."""

import math

import numpy as np
import pytest
from scipy.special import gamma as Gamma

from oracles import CHAIN_TAU, MFPT
from phasetools.theory import (critical_points, eyring_kramers_time, kramers_time, landscape,
                               mean_first_passage_time, mfpt_1d)

DU = 0.067442249  # n = 3, a = c = 1, at gamma_c


@pytest.fixture(scope="module")
def gamma_c3():
    return critical_points(3, 1.0).gamma_c


@pytest.mark.parametrize("key", sorted(MFPT))
def test_kramers_and_exact_mfpt_oracle(key, gamma_c3):
    direction, x = key
    tau_k, tau_e = MFPT[key]
    T = DU / x
    assert kramers_time(3, 1.0, gamma_c3, T, direction=direction) == pytest.approx(tau_k, rel=5e-7)
    assert mean_first_passage_time(3, 1.0, gamma_c3, T, direction=direction) == pytest.approx(tau_e, rel=5e-7)


def test_mfpt_grid_converged_at_barrier_40(gamma_c3):
    T = DU / 40
    t1 = mean_first_passage_time(3, 1.0, gamma_c3, T)
    t2 = mean_first_passage_time(3, 1.0, gamma_c3, T, n_grid=80001)
    assert np.isfinite(t1) and t1 == pytest.approx(t2, rel=1e-10)


def test_mfpt_1d_free_diffusion_closed_form():
    # U = 0, reflecting at 0, start at 0, target L: tau = L^2 / (2T)
    for T, L in [(0.5, 1.0), (0.01, 3.0)]:
        assert mfpt_1d(lambda x: 0 * x, 0.0, L, 0.0, T) == pytest.approx(L**2 / (2 * T), rel=1e-12)
    # linear drift U = f x, reflecting at 0: tau = (T/f^2)(e^{fL/T} - 1) - L/f
    f, T, L = 1.0, 0.2, 1.5
    exact = T / f**2 * (math.exp(f * L / T) - 1) - L / f
    assert mfpt_1d(lambda x: f * x, 0.0, L, 0.0, T) == pytest.approx(exact, rel=1e-10)
    # mirror image gives the same
    assert mfpt_1d(lambda x: -f * x, 0.0, -L, 0.0, T) == pytest.approx(exact, rel=1e-10)


def test_backward_ratio_tends_to_one_at_rate_T(gamma_c3):
    # brief 4.1: exact/Kramers = 1 + O(T/dU); (ratio - 1) * dU/T converges
    x = np.array([20.0, 40.0, 80.0, 160.0])
    r = np.array([mean_first_passage_time(3, 1.0, gamma_c3, DU / xi, direction="bwd")
                  / kramers_time(3, 1.0, gamma_c3, DU / xi, direction="bwd") for xi in x])
    scaled = (r - 1) * x
    assert np.all(r > 1) and np.all(np.diff(r) < 0)
    # successive differences of the scaled correction shrink like 1/x
    d = np.abs(np.diff(scaled))
    assert d[1] < 0.6 * d[0] and d[2] < 0.6 * d[1]


@pytest.mark.parametrize("n", [3, 4])
def test_forward_ratio_has_the_wall_correction(n):
    """Forward, the trivial minimum sits on the reflecting wall b = 0 where
    U = (k/2) b^2 - 2|c| b^n + ...; the half-line well integral then carries the relative
    correction delta = (2|c|/T) Gamma((n+1)/2) alpha^(-n/2) / sqrt(pi), alpha = k / (2T),
    which is O(sqrt T) for n = 3 and O(T) for n = 4. After removing it the remainder is O(T).
    """
    c = 1.0
    gc = critical_points(n, c).gamma_c
    L = landscape(n, c, gc)
    k = L.curvature_trivial
    x = np.array([40.0, 80.0, 160.0, 320.0])
    rem = []
    for xi in x:
        T = L.barrier_fwd / xi
        r = mean_first_passage_time(n, c, gc, T) / kramers_time(n, c, gc, T)
        delta = (2 * c / T) * Gamma((n + 1) / 2) * (k / (2 * T)) ** (-n / 2) / math.sqrt(math.pi)
        rem.append((r - 1 - delta) * xi)
    rem = np.array(rem)
    # the O(T) remainder coefficient converges: successive changes shrink
    d = np.abs(np.diff(rem))
    assert np.all(np.abs(rem) < 5)
    assert d[-1] < 0.75 * d[0]


def test_eyring_kramers_chain_oracle():
    # brief 7.7 (paper units)
    T = np.array(sorted(CHAIN_TAU))
    tau = eyring_kramers_time(3, 0.8, 0.32, T, convention="paper")
    np.testing.assert_allclose(tau, [CHAIN_TAU[t] for t in T], rtol=1e-3)


@pytest.mark.parametrize("n", [3, 4, 5])
def test_eyring_kramers_closed_forms_width1(n):
    # brief 4.2: tau_fwd = 2 pi n 2^{-(n-1)/2} / sqrt(U''(0)|U''(b_s)|) e^{dU/T}, tau_bwd = 2 pi n / ...
    c, g, T = 1.0, 0.9 * critical_points(n, 1.0).gamma_c, 0.01
    L = landscape(n, c, g)
    fwd = 2 * np.pi * n * 2 ** (-(n - 1) / 2) / np.sqrt(L.curvature_trivial * abs(L.curvature_saddle)) \
        * np.exp(L.barrier_fwd / T)
    bwd = 2 * np.pi * n / np.sqrt(L.curvature_min * abs(L.curvature_saddle)) * np.exp(L.barrier_bwd / T)
    assert eyring_kramers_time(n, c, g, T) == pytest.approx(fwd, rel=1e-12)
    assert eyring_kramers_time(n, c, g, T, direction="bwd") == pytest.approx(bwd, rel=1e-12)
    # relative to the wall-convention 1D Kramers: forward longer by 2 n 2^{-(n-1)/2}, backward by n
    assert eyring_kramers_time(n, c, g, T) / kramers_time(n, c, g, T) == pytest.approx(
        2 * n * 2 ** (-(n - 1) / 2), rel=1e-12)
    assert eyring_kramers_time(n, c, g, T, direction="bwd") / kramers_time(n, c, g, T, direction="bwd") \
        == pytest.approx(n, rel=1e-12)


@pytest.mark.parametrize("n,h", [(3, 2), (3, 3), (4, 2)])
def test_eyring_kramers_width_h_factors(n, h):
    # brief 4.3: tau_fwd^(h) = tau_fwd^(1) (pi T / (gamma b_s^2))^{k/2} (2/|S^{h-1}|)^{n-1},
    #            tau_bwd^(h) = tau_bwd^(1) (b_m / b_s)^k
    c, g, T = 1.0, 0.25, 0.003
    L = landscape(n, c, g)
    k = (n - 1) * (h - 1)
    S = 2 * np.pi ** (h / 2) / Gamma(h / 2)
    fwd = eyring_kramers_time(n, c, g, T) * (np.pi * T / (g * L.b_saddle**2)) ** (k / 2) * (2 / S) ** (n - 1)
    bwd = eyring_kramers_time(n, c, g, T, direction="bwd") * (L.b_min / L.b_saddle) ** k
    assert eyring_kramers_time(n, c, g, T, width=h) == pytest.approx(fwd, rel=1e-12)
    assert eyring_kramers_time(n, c, g, T, width=h, direction="bwd") == pytest.approx(bwd, rel=1e-12)


def test_no_barrier_is_absent():
    assert eyring_kramers_time(3, 1.0, 0.6, 0.01) is None       # above gamma_sp
    assert kramers_time(2, 1.0, 0.5, 0.01) is None                # n = 2: continuous
    assert mean_first_passage_time(3, 1.0, 0.6, 0.01) is None
    out = eyring_kramers_time(3, 1.0, [0.3, 0.6], 0.01)
    assert list(np.ma.getmaskarray(out)) == [False, True]


def test_temperature_must_be_positive():
    with pytest.raises(ValueError, match="temperature"):
        kramers_time(3, 1.0, 0.3, 0.0)
    with pytest.raises(ValueError, match="direction"):
        kramers_time(3, 1.0, 0.3, 0.1, direction="up")
