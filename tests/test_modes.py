"""modes and phase_diagram (brief 3.1, 3.3, 7.4, 7.6)."""

import numpy as np
import pytest

from oracles import MODES_GAMMA_C, MODES_SPECTRUM
from phasetools.theory import critical_points, landscape, modes, phase_diagram


@pytest.mark.parametrize("n", sorted(MODES_GAMMA_C))
def test_per_mode_gamma_c(n):
    m = modes(n, MODES_SPECTRUM)
    np.testing.assert_allclose(m.gamma_c, MODES_GAMMA_C[n], atol=6e-7)
    assert m.states is None


def test_isotropic_scaling_law():
    # Sigma_xx = a I: gamma_c,k proportional to c_k^(2(n-1)/n)
    m = modes(4, MODES_SPECTRUM, a=2.0)
    ratio = m.gamma_c / np.asarray(MODES_SPECTRUM) ** (2 * 3 / 4)
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-12)


def test_top_m_states_count_and_energies():
    n, g = 3, 0.15  # below gamma_sp of every mode: all four bistable
    m = modes(n, MODES_SPECTRUM, gamma=g)
    assert np.all(m.learnable)
    assert len(m.states) == 5 and m.n_metastable == 4
    assert [s.learned for s in m.states] == [(), (0,), (0, 1), (0, 1, 2), (0, 1, 2, 3)]
    U = np.ma.filled(landscape(n, np.asarray(MODES_SPECTRUM), g).U_min, np.nan)
    for s in m.states:
        assert s.energy == pytest.approx(U[list(s.learned)].sum() if s.learned else 0.0, rel=1e-14)
    # global = all modes with U_min < 0 learned; here gamma < gamma_c of the 3 strongest only
    gc = m.gamma_c
    assert m.states[m.global_index].learned == tuple(k for k in range(4) if g < gc[k])


def test_transitions_are_scalar_saddles():
    m = modes(3, MODES_SPECTRUM, gamma=0.15)
    assert len(m.transitions) == 4
    for t in m.transitions:
        L = landscape(3, MODES_SPECTRUM[t.mode], 0.15)
        assert (t.lower, t.upper) == (t.mode, t.mode + 1)
        assert t.barrier_fwd == L.barrier_fwd and t.barrier_bwd == L.barrier_bwd
        assert t.lambda_minus == pytest.approx(L.curvature_saddle / 3, rel=1e-15)
        assert t.lambda_minus < 0


def test_only_learnable_modes_enter():
    g = 0.3  # above gamma_sp of 1 and 0.5 for n = 3 (0.47 and 0.19 for c=1: c=1 is learnable)
    m = modes(3, MODES_SPECTRUM, gamma=g)
    gsp = critical_points(3, np.asarray(MODES_SPECTRUM)).gamma_sp
    assert list(m.learnable) == list(g < gsp)
    assert len(m.states) == int(np.sum(g < gsp)) + 1


def test_paper_beta_032_rank1_is_global():
    # brief E2 problem (a): at beta = 0.32 rank 1 is global, rank 2 higher by 0.01962
    m = modes(3, [0.9, 0.8], gamma=0.32, convention="paper")
    assert m.states[m.global_index].learned == (0,)
    assert m.states[2].energy - m.states[1].energy == pytest.approx(0.01962, abs=6e-6)
    up = [t for t in m.transitions if t.mode == 1][0]
    assert up.barrier_fwd == pytest.approx(0.02845, abs=6e-6)
    assert up.barrier_bwd == pytest.approx(0.00883, abs=6e-6)


def test_input_order_is_kept_and_reported_by_index():
    m = modes(3, [0.5, 3.0, 1.0], gamma=0.1)
    assert m.states[1].learned == (1,)  # the strongest mode is index 1 of the input
    assert m.states[-1].learned == (1, 2, 0)


def test_non_isotropic_routing_condition():
    # two modes, weaker signal but much larger input variance: a_k > a_j can stabilise
    # "j learned, k not" even with c_k > c_j when c_k^2 - c_j^2 <= c_j (a_k - a_j) b_j^n.
    n, g = 3, 0.05
    c = np.array([1.0, 1.05])
    a = np.array([1.0, 3.0])
    m = modes(n, c, gamma=g, a=a)
    b0 = landscape(n, c[0], g, a[0]).b_min
    cond_saddle = c[1] ** 2 - c[0] ** 2 > c[0] * (a[1] - a[0]) * b0**n
    learned_sets = {s.learned for s in m.states}
    assert ((0,) in learned_sets) == (not cond_saddle)
    # isotropic with c_1 > c_0: "0 learned, 1 not" is a saddle
    iso = modes(n, c, gamma=g)
    assert (0,) not in {s.learned for s in iso.states}


def test_n2_has_a_single_minimum():
    m = modes(2, [3.0, 2.0, 1.0], gamma=1.5)
    assert [s.learned for s in m.states] == [(0, 1)]
    assert m.transitions == ()


def test_phase_diagram_paper_spectrum():
    gammas = np.linspace(0.0, 0.5, 501)
    pd = phase_diagram(3, [0.8, 0.9], gammas, convention="paper")
    np.testing.assert_allclose(pd.spectrum, [0.9, 0.8])
    gsp = pd.gamma_sp
    # increasing sweep: drops at the spinodals 0.3509 and 0.4105 (brief E1)
    for j, g in enumerate(gammas):
        assert pd.m_increasing[j] == int(g < gsp[0]) + int(g < gsp[1])
    assert np.all(pd.m_decreasing == 0)  # no lower spinodal for n >= 3
    # global state: rank 2 below beta*_2, rank 1 between beta*_2 and beta*_1, then rank 0
    gc = pd.gamma_c
    expected = np.where(gammas < gc[1], 2, np.where(gammas < gc[0], 1, 0))
    interior = (np.abs(gammas - gc[0]) > 1e-9) & (np.abs(gammas - gc[1]) > 1e-9)
    np.testing.assert_array_equal(pd.global_m[interior], expected[interior])
    # existence: top-m exists iff m <= number of learnable modes
    assert pd.exists.shape == (501, 3)
    assert np.all(pd.exists[:, 0])
    at_032 = np.argmin(np.abs(gammas - 0.32))
    assert list(pd.exists[at_032]) == [True, True, True] and pd.global_m[at_032] == 1


def test_phase_diagram_n2():
    pd = phase_diagram(2, [2.0, 1.0], [0.5, 1.5, 2.5])
    assert list(pd.global_m) == [2, 1, 0]
    assert list(pd.m_decreasing) == [2, 1, 0]   # continuous: no hysteresis
    assert pd.exists.sum(axis=1).tolist() == [1, 1, 1]


def test_modes_bad_input():
    with pytest.raises(ValueError, match="spectrum"):
        modes(3, [])
    with pytest.raises(ValueError, match="a must"):
        modes(3, [1.0, 2.0], a=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="gamma"):
        modes(3, [1.0], gamma=-0.1)
    with pytest.raises(ValueError, match="scalar"):
        phase_diagram(3, [1.0, 2.0], [0.1], a=[1.0, 2.0])
    with pytest.raises(ValueError, match="gammas"):
        phase_diagram(3, [1.0], [])
