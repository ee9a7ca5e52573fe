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


# --- deep target wells: the MFPT accumulated in log space (no underflow) -------------------------
def _log_mfpt_reference(U, x0, x_target, x_ref, T, n=400001):
    """Independent log-space double integral (trapezoid, logaddexp) of
    tau = (1/T) int_{x0}^{x_target} dy e^{U(y)/T} int_{x_ref}^{y} dz e^{-U(z)/T}, on a grid
    from the reflecting wall to the target (either orientation)."""
    n_in = int(n * abs(x0 - x_ref) / abs(x_target - x_ref)) + 2 if x0 != x_ref else 1
    x = np.concatenate([np.linspace(x_ref, x0, n_in)[:-1], np.linspace(x0, x_target, n - n_in + 1)])
    u = U(x) / T
    log_h = np.log(np.abs(np.diff(x)) / 2)
    pieces = log_h + np.logaddexp(-u[:-1], -u[1:])
    log_inner = np.concatenate([[-np.inf], np.logaddexp.accumulate(pieces)])
    f = (u + log_inner)[n_in - 1:]
    outer = np.logaddexp.reduce(log_h[n_in - 1:] + np.logaddexp(f[:-1], f[1:]))
    return float(outer - np.log(T))


def _reduced_U3(gamma):
    # n_layers = 3, a = c = 1, canonical: U(b) = b^6 - 2 b^3 + 3 gamma b^2
    return lambda b: b**6 - 2 * b**3 + 3 * gamma * b**2


@pytest.mark.parametrize("side", [0.8, 1.15])
@pytest.mark.parametrize("direction", ["fwd", "bwd"])
@pytest.mark.parametrize("x", [50.0, 700.0, 2000.0])
def test_mfpt_deep_target_well_matches_a_log_space_quadrature(side, direction, x, gamma_c3):
    """Both sides of gamma_c and both directions, dU/T up to 2000: one of the two wells lies
    thousands of T below the other, where the old inner integral (shifted by the global
    minimum) underflowed near the start and gave log tau ~ 0-1 instead of ~ x."""
    g = side * gamma_c3
    L = landscape(3, 1.0, g)
    dU = L.barrier_fwd if direction == "fwd" else L.barrier_bwd
    T = dU / x
    U = _reduced_U3(g)
    if direction == "fwd":
        ref = _log_mfpt_reference(U, 0.0, L.b_min, 0.0, T)
    else:
        far = L.b_min
        while U(far) < U(L.b_min) + 60 * T:
            far += 0.05 * L.b_min
        ref = _log_mfpt_reference(U, L.b_min, 0.0, far, T)
    got = mean_first_passage_time(3, 1.0, g, T, direction=direction, return_log=True)
    assert got == pytest.approx(ref, abs=1e-6 * x)
    assert got > x        # the Arrhenius factor alone is exp(dU/T)
    if x < 700:          # tau itself is finite: the same number
        assert math.log(mean_first_passage_time(3, 1.0, g, T, direction=direction)) == pytest.approx(got, rel=1e-12)


def test_mfpt_1d_deep_target_well_both_orientations():
    """A start well 1000 T above the target well: forward and the mirror image agree with
    the log-space reference (the old code returned log tau ~ 0)."""
    T = 5e-4

    def U(x):  # tilted double well: start well near -1, the target well near +1 about 0.6 deeper
        return 0.5 * (1 - x**2) ** 2 - 0.3 * x
    ref = _log_mfpt_reference(U, -1.0, 1.0, -2.0, T)
    fwd = mfpt_1d(U, -1.0, 1.0, -2.0, T, return_log=True)
    mirror = mfpt_1d(lambda x: U(-x), 1.0, -1.0, 2.0, T, return_log=True)
    assert (U(-1.0) - U(1.0)) / T > 1000
    assert fwd == pytest.approx(ref, abs=1e-4) and mirror == pytest.approx(ref, abs=1e-4)
    assert fwd > 300


def test_mean_first_passage_time_return_log_in_both_conventions(gamma_c3):
    g = 0.9 * gamma_c3
    T = landscape(3, 1.0, g).barrier_fwd / 30
    for conv in ("canonical", "paper"):
        tau = mean_first_passage_time(3, 1.0, g, T, convention=conv)
        log_tau = mean_first_passage_time(3, 1.0, g, T, convention=conv, return_log=True)
        assert log_tau == pytest.approx(math.log(tau), rel=1e-12)
    arr = mean_first_passage_time(3, 1.0, np.array([g, 0.6]), T, return_log=True)
    assert np.ma.is_masked(arr) and not arr.mask[0] and arr.mask[1]
    assert arr[0] == pytest.approx(mean_first_passage_time(3, 1.0, g, T, return_log=True), rel=1e-12)
