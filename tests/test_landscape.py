"""landscape against brief 7.2 / 7.6 and its internal identities."""

import numpy as np
import pytest

from oracles import CHAIN_SADDLE_EIGS, LANDSCAPE, PAPER_LANDSCAPE
from phasetools.theory import critical_points, landscape


@pytest.mark.parametrize("key", sorted(LANDSCAPE))
def test_oracle_table(key):
    n, f = key
    b_s, b_m, U_m, dU_f, dU_b, c0, cs, cm = LANDSCAPE[key]
    gamma = f * critical_points(n, 1.0).gamma_c
    L = landscape(n, 1.0, gamma)
    # b values are printed with 7 digits, energies with 9: compare at that precision
    assert L.b_saddle == pytest.approx(b_s, abs=6e-8)
    assert L.b_min == pytest.approx(b_m, abs=6e-8)
    assert L.U_min == pytest.approx(U_m, abs=6e-10)
    assert L.barrier_fwd == pytest.approx(dU_f, abs=6e-10)
    assert L.barrier_bwd == pytest.approx(dU_b, abs=6e-10)
    assert L.curvature_trivial == pytest.approx(c0, abs=6e-6)
    assert L.curvature_saddle == pytest.approx(cs, abs=6e-7)
    assert L.curvature_min == pytest.approx(cm, abs=6e-6)


@pytest.mark.parametrize("key", sorted(PAPER_LANDSCAPE))
def test_paper_convention_table(key):
    eta, beta = key
    lam_s, lam_m, up, down, dl = PAPER_LANDSCAPE[key]
    L = landscape(3, eta, beta, convention="paper")
    assert L.lam_saddle == pytest.approx(lam_s, abs=6e-5)
    assert L.lam_min == pytest.approx(lam_m, abs=6e-5)
    assert L.barrier_fwd == pytest.approx(up, abs=6e-6)
    assert L.barrier_bwd == pytest.approx(down, abs=6e-6)
    assert L.U_min == pytest.approx(dl, abs=6e-6)


def test_chain_hessian_in_paper_units():
    # brief 7.7: Hessian at the origin 0.32 I_3, saddle eigenvalues (-0.1944, 0.64, 0.64)
    L = landscape(3, 0.8, 0.32, convention="paper")
    np.testing.assert_allclose(L.hessian_trivial.full(), [0.32] * 3, rtol=1e-12)
    np.testing.assert_allclose(L.hessian_saddle.full(), CHAIN_SADDLE_EIGS, atol=6e-5)
    assert L.hessian_saddle.index == 1
    assert L.hessian_min.index == 0


def test_d3_closed_case_at_coexistence():
    # brief 2.5: D = 3 at gamma_c: (b_s/b_0)^2 = (sqrt2 - sqrt(2/3))/2, dU = (2/sqrt3 - 1) c^2/a
    a, c = 1.7, 0.6
    gc = critical_points(4, c, a).gamma_c
    L = landscape(4, c, gc, a)
    b0 = (c / a) ** 0.25
    assert (L.b_saddle / b0) ** 2 == pytest.approx((np.sqrt(2) - np.sqrt(2 / 3)) / 2, rel=1e-9)
    assert L.barrier_fwd == pytest.approx((2 / np.sqrt(3) - 1) * c**2 / a, rel=1e-9)
    assert L.barrier_bwd == pytest.approx(L.barrier_fwd, rel=1e-9)
    assert L.phase == "coexistence" and L.global_state == "degenerate"


@pytest.mark.parametrize("n", [3, 4, 5])
def test_curvature_identities(n):
    a, c = 0.8, 1.4
    cp = critical_points(n, c, a)
    L = landscape(n, c, cp.gamma_c, a)
    # U''(b_c) = 2 n (n-1)(n-2) gamma_c at coexistence (brief 2.4)
    assert L.curvature_min == pytest.approx(2 * n * (n - 1) * (n - 2) * cp.gamma_c, rel=1e-9)
    assert L.curvature_trivial == pytest.approx(2 * n * cp.gamma_c, rel=1e-12)
    assert L.b_min == pytest.approx(cp.b_c, rel=1e-12)


@pytest.mark.parametrize("n", [3, 4])
def test_small_gamma_asymptotics(n):
    # brief 2.5: barrier_fwd ~ (n-2) gamma (gamma/|c|)^(2/(n-2)) as gamma -> 0
    c = 1.3
    for g in (1e-3, 1e-4):
        L = landscape(n, c, g)
        pred = (n - 2) * g * (g / c) ** (2 / (n - 2))
        assert L.barrier_fwd == pytest.approx(pred, rel=20 * (g / c) ** (2 / (n - 2)) + 1e-9)


@pytest.mark.parametrize("n", [3, 4, 5])
def test_saddle_node_asymptotics(n):
    # brief 2.5: barrier_bwd ~ (8 sqrt2 / 3) sqrt(n / ((n-2)|c|)) b_sp^((6-n)/2) (gamma_sp - gamma)^(3/2)
    c = 1.0
    cp = critical_points(n, c)
    for eps in (1e-4, 1e-6):
        g = cp.gamma_sp * (1 - eps)
        pred = 8 * np.sqrt(2) / 3 * np.sqrt(n / ((n - 2) * c)) * cp.b_sp ** ((6 - n) / 2) * (cp.gamma_sp - g) ** 1.5
        assert landscape(n, c, g).barrier_bwd == pytest.approx(pred, rel=10 * np.sqrt(eps))


def test_absent_states_are_none_or_masked():
    cp = critical_points(3, 1.0)
    above = landscape(3, 1.0, 1.01 * cp.gamma_sp)
    assert above.phase == "trivial" and above.global_state == "trivial"
    for key in ("b_saddle", "b_min", "U_min", "barrier_fwd", "barrier_bwd", "curvature_saddle",
                "curvature_min", "hessian_saddle", "hessian_min"):
        assert getattr(above, key) is None, key
    arr = landscape(3, 1.0, [0.2, 1.01 * cp.gamma_sp])
    assert isinstance(arr.b_min, np.ma.MaskedArray)
    assert list(np.ma.getmaskarray(arr.b_min)) == [False, True]
    assert list(arr.phase) == ["trivial_metastable", "trivial"]
    assert '"b_min": [0.9' in arr.to_json() and "null" in arr.to_json()


def test_n2_landscape():
    L = landscape(2, 1.0, 0.4)
    assert L.phase == "learned" and L.b_saddle is None and L.barrier_fwd is None
    assert L.b_min == pytest.approx(np.sqrt(0.6), rel=1e-14)
    assert L.U_min == pytest.approx(-(0.6**2), rel=1e-12)   # -(|c| - gamma)^2 / a
    np.testing.assert_allclose(sorted(L.hessian_trivial.full()), [-1.2, 2.8])  # 2 gamma -+ 2|c|
    assert L.hessian_trivial.index == 1
    assert landscape(2, 1.0, 1.5).phase == "trivial"


def test_phases_by_window():
    cp = critical_points(3, 1.0)
    phases = landscape(3, 1.0, [0.5 * cp.gamma_c, cp.gamma_c, 1.1 * cp.gamma_c, 1.1 * cp.gamma_sp]).phase
    assert list(phases) == ["trivial_metastable", "coexistence", "learned_metastable", "trivial"]


def test_width_h_orbit_bookkeeping():
    L = landscape(4, 1.0, 0.2, width=3)
    k = (4 - 1) * (3 - 1)
    assert L.orbit_dim == k
    assert L.n_params == 2 * 3 + 2 * 9
    for spec in (L.hessian_saddle, L.hessian_min):
        assert spec.n_params == L.n_params
        assert dict(zip(spec.labels, spec.multiplicities))["orbit"] == k
    # width 1: the orbit volume counts the 2^(n-1) equivalent saddles
    assert landscape(4, 1.0, 0.2).orbit_volume_saddle == 8.0


def test_vectorised_matches_scalar_calls():
    c = np.array([0.5, 1.0, 2.0])
    g = np.array([0.1, 0.3, 0.9])
    L = landscape(3, c, g, a=1.5)
    for i in range(3):
        Li = landscape(3, float(c[i]), float(g[i]), a=1.5)
        assert L.barrier_fwd[i] == Li.barrier_fwd
        assert L.b_min[i] == Li.b_min


def test_sign_of_c_does_not_matter():
    L1, L2 = landscape(3, 0.9, 0.3), landscape(3, -0.9, 0.3)
    assert L1.barrier_fwd == L2.barrier_fwd and L1.U_min == L2.U_min
