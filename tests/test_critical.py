"""critical_points against the oracle table (brief 7.1, 7.6) and closed forms."""

import numpy as np
import pytest

from oracles import CRITICAL, PAPER_CRITICAL
from phasetools.theory import critical_points

RTOL_CLOSED = 1e-9   # closed forms: only round-off
RTOL_TABLE = 5e-7    # table values printed with 7 significant digits


@pytest.mark.parametrize("n", sorted(CRITICAL))
def test_scalar_mode_table(n):
    gc, gsp, ratio, b_c, b_sp, lam_c, latent = CRITICAL[n]
    cp = critical_points(n, 1.0)
    assert cp.gamma_c == pytest.approx(gc, rel=RTOL_CLOSED)
    assert cp.gamma_sp == pytest.approx(gsp, rel=RTOL_CLOSED)
    assert cp.gamma_sp / cp.gamma_c == pytest.approx(ratio, rel=RTOL_TABLE)
    assert cp.b_c == pytest.approx(b_c, rel=RTOL_TABLE, abs=1e-15)
    assert cp.b_sp == pytest.approx(b_sp, rel=RTOL_TABLE, abs=1e-15)
    assert cp.lam_c == pytest.approx(lam_c, rel=RTOL_CLOSED, abs=1e-15)
    assert cp.lam_sp == pytest.approx(lam_c / 2, rel=RTOL_CLOSED, abs=1e-15)
    assert cp.latent_heat == pytest.approx(latent, rel=RTOL_TABLE, abs=1e-15)
    assert cp.order == ("second" if n == 2 else "first")


def test_n2_is_continuous_for_any_a():
    cp = critical_points(2, -1.7, a=[0.3, 1.0, 5.0])
    np.testing.assert_array_equal(cp.gamma_c, 1.7)
    np.testing.assert_array_equal(cp.gamma_sp, 1.7)
    np.testing.assert_array_equal(cp.b_c, 0.0)


@pytest.mark.parametrize("n", [3, 4, 5, 8])
def test_scaling_with_a_and_c(n):
    # gamma_c is proportional to |c|^(2-2/n) a^(2/n-1) (brief 2.6: gamma_0)
    base = critical_points(n, 1.0).gamma_c
    for a, c in [(0.5, 2.0), (3.0, -0.7), (1e-3, 1e3)]:
        g0 = abs(c) ** (2 - 2 / n) * a ** (2 / n - 1)
        assert critical_points(n, c, a).gamma_c == pytest.approx(base * g0, rel=1e-12)


def test_paper_convention_values():
    for eta, (beta_star, beta_c) in PAPER_CRITICAL.items():
        cp = critical_points(3, eta, convention="paper")
        assert cp.gamma_c == pytest.approx(beta_star, abs=5e-5)
        assert cp.gamma_sp == pytest.approx(beta_c, abs=5e-5)
        # brief 2.3: beta_c = 3 (eta/4)^(4/3), beta* = (eta/2)^(4/3), lambda_c = eta/4
        assert cp.gamma_sp == pytest.approx(3 * (eta / 4) ** (4 / 3), rel=RTOL_CLOSED)
        assert cp.gamma_c == pytest.approx((eta / 2) ** (4 / 3), rel=RTOL_CLOSED)
        assert cp.lam_sp == pytest.approx(eta / 4, rel=RTOL_CLOSED)


def test_vectorised_shapes_and_values():
    c = np.linspace(0.1, 3.0, 7)[:, None]
    a = np.array([0.5, 1.0, 2.0])[None, :]
    cp = critical_points(4, c, a)
    assert cp.gamma_c.shape == (7, 3)
    for i in range(7):
        for j in range(3):
            assert cp.gamma_c[i, j] == critical_points(4, float(c[i, 0]), float(a[0, j])).gamma_c


def test_latent_heat_is_the_kink_in_the_ground_energy():
    # U*(gamma) = min(0, U_min(gamma)); its slope jumps by n b_c^2 at gamma_c
    from phasetools.theory import landscape

    n, c = 3, 1.3
    cp = critical_points(n, c)
    h = 1e-6 * cp.gamma_c
    slope_below = (landscape(n, c, cp.gamma_c).U_min - landscape(n, c, cp.gamma_c - h).U_min) / h
    assert abs(slope_below) == pytest.approx(cp.latent_heat, rel=1e-5)  # dU_min/dgamma = sum w^2
