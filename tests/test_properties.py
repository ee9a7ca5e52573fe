"""Property tests (hypothesis) over random a, c and n_layers."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from phasetools.theory import Convention, critical_points, landscape
from phasetools.theory._symbolic import compiled_potential

n_layers = st.integers(min_value=3, max_value=8)
pos = st.floats(min_value=1e-2, max_value=1e2, allow_nan=False, allow_infinity=False)
signed = pos.flatmap(lambda x: st.sampled_from([x, -x]))
frac = st.floats(min_value=0.02, max_value=0.98)

SETTINGS = settings(max_examples=60, deadline=None)


@SETTINGS
@given(n=n_layers, a=pos, c=signed)
def test_spinodal_ratio_is_universal(n, a, c):
    cp = critical_points(n, c, a)
    assert np.isclose(cp.gamma_sp / cp.gamma_c, n * 2 ** (-(2 * n - 2) / n), rtol=1e-12)


@SETTINGS
@given(n=n_layers, a=pos, c=signed)
def test_coexistence_energy_zero_and_equal_barriers(n, a, c):
    cp = critical_points(n, c, a)
    U = compiled_potential(n).U(cp.b_c, a, abs(c), cp.gamma_c)
    scale = c**2 / a  # energy unit E_0
    assert abs(U) <= 1e-12 * scale
    L = landscape(n, c, cp.gamma_c, a)
    assert np.isclose(L.barrier_fwd, L.barrier_bwd, rtol=1e-9, atol=1e-13 * scale)
    assert np.isclose(L.b_min, cp.b_c, rtol=1e-10)


@SETTINGS
@given(n=n_layers, a=pos, c=signed, f=frac)
def test_barriers_positive_inside_the_window(n, a, c, f):
    cp = critical_points(n, c, a)
    g = f * cp.gamma_sp
    L = landscape(n, c, g, a)
    assert L.barrier_fwd > 0 and L.barrier_bwd > 0
    assert 0 < L.b_saddle < cp.b_sp < L.b_min
    assert L.curvature_saddle < 0 < L.curvature_min
    # stationary: U'(b) = 0 at both (relative to the scale of the gradient terms)
    pot = compiled_potential(n)
    for b in (L.b_saddle, L.b_min):
        grad_scale = 2 * n * b * (a * b ** (2 * n - 2) + abs(c) * b ** (n - 2) + g)
        assert abs(pot.dU(b, a, abs(c), g)) <= 1e-12 * grad_scale
    # energy ordering matches the window
    if g > cp.gamma_c:
        assert L.U_min > 0 and L.global_state == "trivial"
    elif g < cp.gamma_c:
        assert L.U_min < 0 and L.global_state == "learned"


@SETTINGS
@given(n=st.integers(min_value=2, max_value=6), a=pos, c=signed, f=frac,
       p=st.integers(min_value=1, max_value=6))
def test_conventions_agree_after_conversion(n, a, c, f, p):
    conv = Convention.paper(p)
    gamma = f * critical_points(n, c, a).gamma_sp
    coupling = conv.gamma_from_canonical(gamma)
    Lc = landscape(n, c, gamma, a)
    Lp = landscape(n, c, coupling, a, convention=conv)
    assert Lp.phase == Lc.phase
    for key in ("U_min", "curvature_min", "curvature_trivial"):
        assert np.isclose(getattr(Lp, key), conv.energy_from_canonical(getattr(Lc, key)), rtol=1e-12)
    if Lc.barrier_fwd is not None:
        assert np.isclose(Lp.barrier_fwd, conv.kappa * Lc.barrier_fwd, rtol=1e-12)
    cp = critical_points(n, c, a, convention=conv)
    assert np.isclose(conv.gamma_to_canonical(cp.gamma_c), critical_points(n, c, a).gamma_c, rtol=1e-13)
