"""theory.mfpt_grid: the exact mean first-passage time of a few-variable diffusion by finite volumes."""

import numpy as np
import pytest

from phasetools.langevin import escape_problem
from phasetools.theory import GridMFPT, mfpt_1d, mfpt_grid

T = 0.05                                   # the double well's barrier 0.25 is 5 T


def _well(x):
    return x**4 / 4 - x**2 / 2


def _separable(x):                          # the double well in x times a harmonic y
    return _well(x[..., 0]) + 0.5 * x[..., 1] ** 2


def _target(x):                             # x >= 0.5, between two cell centres on every grid
    return x[..., 0] - 0.5


def _start(x):                              # the column of cells centred on x = -1 (a centre when h = 2/k, k odd)
    return np.abs(x[..., 0] + 1.0) < 0.01


SPACINGS = [2 / k for k in (31, 41, 51, 61)]


def _separable_mfpt(**kw):
    return mfpt_grid(_separable, _target, _start, T, n_dim=2, half_width=2.0, **kw)


def test_separable_potential_matches_the_1d_quadrature_after_extrapolation():
    """U = x^4/4 - x^2/2 + y^2/2, target x >= 0.5, reflecting box [-2, 2]^2: the MFPT from x = -1
    does not depend on y and is the 1D quadrature's with the wall at -2. Each grid is off by
    -2.0 h^2 (relative), the line in h^2 through four grids by less than 1e-4."""
    exact = mfpt_1d(_well, -1.0, 0.5, -2.0, T)
    res = _separable_mfpt(spacing=SPACINGS, symmetries=[np.diag([1, -1])])
    assert isinstance(res, GridMFPT)
    err = np.array(res.taus) / exact - 1
    assert np.all(err < -2e-3)                                    # every grid alone is visibly off
    assert np.allclose(err / np.square(res.spacings), -2.0, rtol=0.03)   # ... by a clean O(h^2)
    assert res.tau == pytest.approx(exact, rel=1e-4)
    assert 0 < res.tau_stderr < 1e-4 * exact
    assert res.tau_stderr == pytest.approx(np.hypot(res.tau_fit_stderr, res.tau_spread))
    # the stated error: within 3 tau_stderr (here 2.6; the fit's scatter alone, 3.7e-6, is 5 times too small)
    assert abs(res.tau - exact) < 3 * res.tau_stderr
    assert res.n_unknowns[0] * 2 == res.n_cells[0]                # y -> -y folded out


def test_rotated_well_matches_the_1d_quadrature_within_the_stated_error():
    """U = well(x.e1) + (x.e2)^2 / 2 with e1 at 30 degrees to the grid, target x.e1 >= 0.5 (crossing
    the cells obliquely), start |x + e1| < 0.15, T = 0.025 (dU/T = 10), five grids, quadratic in
    h^2: 1.7e-6 below the 1D quadrature, 2.0 tau_stderr (the fit's scatter alone: 3.1 of its own)."""
    temperature, e1, e2 = 0.025, np.array([np.cos(np.pi / 6), np.sin(np.pi / 6)]), np.array([-np.sin(np.pi / 6), np.cos(np.pi / 6)])
    exact = mfpt_1d(_well, -1.0, 0.5, -3.0, temperature)
    res = mfpt_grid(lambda x: _well(x @ e1) + 0.5 * (x @ e2) ** 2, lambda x: x @ e1 - 0.5,
                    lambda x: np.linalg.norm(x + e1, axis=-1) < 0.15, temperature, n_dim=2, half_width=2.5,
                    spacing=[2.5 / k for k in (41, 51, 61, 71, 81)], degree=2)
    assert np.all(res.taus / exact - 1 < -9e-4)                  # every grid alone is visibly off
    assert 0 < res.tau_stderr < 1e-5 * exact
    assert abs(res.tau - exact) < 3 * res.tau_stderr


def test_one_dimension_and_the_folded_symmetry_give_the_same_chain():
    exact = mfpt_1d(_well, -1.0, 0.5, -2.0, T)
    one = mfpt_grid(lambda x: _well(x[..., 0]), _target, _start, T, n_dim=1, half_width=2.0, spacing=SPACINGS)
    two = _separable_mfpt(spacing=SPACINGS[0])
    assert one.tau == pytest.approx(exact, rel=1e-4)
    assert one.taus[0] == pytest.approx(two.taus[0], rel=1e-10)   # the y part is in equilibrium
    assert np.isnan(two.tau_stderr) and two.tau == two.taus[0]


def _birth_death_mfpt(ratio, h):
    """The exact MFPT of the 1D grid chain itself (no linear solve): cells of the double well on
    [-2, 2] left of a target cell centre near 0.5, ``tau_j = sum_{l >= j} F_l / s_l`` with
    ``F_l = sum_{i <= l} pi_i`` and ``s_l`` the rate-flux of edge ``(l, l + 1)`` (summed in logs).
    Returns ``(tau from the centre at -1, the target centre)``."""
    temperature = 0.25 / ratio
    n1 = round(2.0 / h)
    centres = (np.arange(2 * n1) + 0.5 - n1) * h
    target = centres[np.argmin(np.abs(centres - 0.5))]
    kept = centres[centres < target]
    log_pi = -_well(kept) / temperature
    log_s = np.log(temperature / h**2) + 0.5 * (log_pi + np.append(log_pi[1:], -_well(target) / temperature))
    terms = np.logaddexp.accumulate(log_pi) - log_s
    j = np.argmin(np.abs(kept + 1.0))
    return np.exp(np.logaddexp.reduce(terms[j:])), target


@pytest.mark.parametrize("ratio", [20, 30])
def test_the_solve_is_exact_at_high_barriers(ratio):
    """Against the grid chain's own exact MFPT (a birth-death sum, tau = 2e9 and 5e13): the
    refined solve agrees to 1e-12 (the plain LU solve's error: docs/rare.md, "Refinement")."""
    h = SPACINGS[1]
    exact, target = _birth_death_mfpt(ratio, h)
    res = mfpt_grid(_separable, lambda x: x[..., 0] - target, _start, 0.25 / ratio, n_dim=2, half_width=2.0,
                    spacing=h, symmetries=[np.diag([1, -1])])
    assert res.tau == pytest.approx(exact, rel=1e-12)


def test_a_barrier_beyond_double_precision_is_refused():
    _, target = _birth_death_mfpt(40, SPACINGS[1])
    with pytest.raises(ValueError, match="too high for double precision"):
        mfpt_grid(_separable, lambda x: x[..., 0] - target, _start, 0.25 / 40, n_dim=2, half_width=2.0,
                  spacing=SPACINGS[1])


def test_an_energy_cut_below_the_barrier_is_refused_by_name():
    """The double well cut at U = -0.05 (below the barrier top, 0): the start's well has no path
    to the target, so the MFPT is infinite (the solve would be singular)."""
    with pytest.raises(ValueError, match="energy_cut: the start set is cut off from the target"):
        mfpt_grid(lambda x: _well(x[..., 0]), _target, _start, T, n_dim=1, half_width=2.0, spacing=SPACINGS[1],
                  energy_cut=-0.05)


def test_a_pocket_with_no_path_to_the_target_is_left_out():
    """A wall at x = -1.6 (30 T high, above the cut) leaves a pocket of kept cells at x < -1.65 that
    neither reaches the target nor holds start cells: it is dropped, and the MFPT is the one
    with the pocket's cells removed outright."""
    def walled(x, pocket=0.0):
        s = x[..., 0]
        return _well(s) + 1.5 * np.exp(-(((s + 1.6) / 0.05) ** 2)) + pocket * (s < -1.6)

    common = {"n_dim": 1, "half_width": 2.0, "spacing": SPACINGS[1], "energy_cut": 1.0}
    res = mfpt_grid(walled, _target, _start, T, **common)
    without = mfpt_grid(lambda x: walled(x, pocket=10.0), _target, _start, T, **common)
    assert res.tau == pytest.approx(without.tau, rel=1e-12)
    assert res.n_cells[0] == without.n_cells[0]


def test_result_is_stored_and_read_back(tmp_path):
    from phasetools import io

    res = _separable_mfpt(spacing=SPACINGS[:3], symmetries=[np.diag([1, -1])])
    path = tmp_path / "grid.h5"
    io.save(res, path, name="separable")
    back = io.load(path, "separable")
    assert back.equal_values(res)
    assert back.config == {"temperature": T, "n_dim": 2, "half_width": 2.0, "energy_cut": None, "degree": 1}


def test_target_boundary_between_centres_is_not_a_staircase():
    """Moving the target by a quarter cell moves the MFPT smoothly (by the 1D quadrature's change),
    not by a jump to the next cell centre. With h = 2/41 the target moves from 10.25 h to 10.5 h:
    the first absorbing cell centre (10.5 h) is the same for both, so a staircase target gives a
    ratio of exactly 1, which the 1D quadrature's ratio 1.00233 misses by 12 times the tolerance."""
    h = SPACINGS[1]
    taus = [mfpt_grid(lambda x: _well(x[..., 0]), lambda x, a=a: x[..., 0] - a, _start, T, n_dim=1, half_width=2.0,
                      spacing=h).tau for a in (0.5, 0.5 + h / 4)]
    exact = [mfpt_1d(_well, -1.0, a, -2.0, T) for a in (0.5, 0.5 + h / 4)]
    assert exact[1] / exact[0] - 1 > 10 * 2e-4                   # a staircase (ratio 1) fails the check
    assert taus[1] / taus[0] == pytest.approx(exact[1] / exact[0], rel=2e-4)


def test_the_chain_folded_by_its_24_symmetries_equals_the_unfolded_solve():
    """The paper's 3-weight chain at dU/T = 10 on a coarse grid: lumping onto the orbits of the
    permutations and pair sign flips (24 elements) changes nothing but the size of the solve."""
    ch = escape_problem("chain", n_layers=3, c=0.8, gamma=0.32, direction="fwd", convention="paper")
    temperature, level = ch.barrier / 10, float(ch.stop.level)
    common = {"n_dim": 3, "half_width": 0.8, "spacing": 0.08, "energy_cut": ch.barrier + 20 * temperature}
    args = (ch.potential.energy, lambda x: x.prod(-1) - level, lambda x: (x**2).sum(-1) < 0.04, temperature)
    full = mfpt_grid(*args, **common)
    folded = mfpt_grid(*args, **common, symmetries=[np.array([[0, 1, 0], [1, 0, 0], [0, 0, 1]]),
                                                    np.array([[0, 1, 0], [0, 0, 1], [1, 0, 0]]), np.diag([-1, -1, 1])])
    assert folded.tau == pytest.approx(full.tau, rel=1e-8)
    assert np.array_equal(full.n_unknowns, full.n_cells) and np.array_equal(full.n_cells, folded.n_cells)
    assert 15 < full.n_unknowns[0] / folded.n_unknowns[0] <= 24     # orbits on the diagonals are smaller


@pytest.mark.parametrize("kw, match", [
    ({"symmetries": [np.diag([-1, 1])]}, "does not leave the target unchanged"),   # x -> -x moves the target
    ({"symmetries": [np.array([[1, 1], [0, 1]])]}, "signed permutation"),
    ({"spacing": [0.1, 0.1]}, "at least 2 different spacings"),
    ({"spacing": [0.1, 0.08], "degree": 2}, "at least 3 different spacings"),
    ({"spacing": -0.1}, "spacing"),
    ({"degree": 0}, "degree"),
])
def test_bad_input_is_refused(kw, match):
    kw = {"spacing": 0.1, **kw}
    with pytest.raises(ValueError, match=match):
        _separable_mfpt(**kw)


def test_bad_temperature_and_empty_start_are_refused():
    with pytest.raises(ValueError, match="temperature"):
        mfpt_grid(_separable, _target, _start, 0.0, n_dim=2, half_width=2.0, spacing=0.1)
    with pytest.raises(ValueError, match="start"):
        mfpt_grid(_separable, _target, lambda x: x[..., 0] > 5, T, n_dim=2, half_width=2.0, spacing=0.1)
