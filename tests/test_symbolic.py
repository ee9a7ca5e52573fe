"""The sympy derivation reproduces the closed forms of the brief (section 2.3)."""

import sympy as sp

from phasetools.theory import closed_forms, reduced_potential
from phasetools.theory._symbolic import a, b, c, compiled_potential, gamma, n


def test_reduced_potential_is_the_brief_expression():
    U = reduced_potential(3)
    assert sp.simplify(U - (a * b**6 - 2 * c * b**3 + 3 * gamma * b**2)) == 0
    assert reduced_potential(3).subs(b, 0) == 0


def test_derived_closed_forms_equal_the_brief():
    cf = closed_forms()
    gamma_c = c / (n - 1) * ((n - 2) * c / ((n - 1) * a)) ** ((n - 2) / n)
    gamma_sp = n * c / (2 * (n - 1)) * ((n - 2) * c / (2 * (n - 1) * a)) ** ((n - 2) / n)
    P_c = (n - 2) * c / ((n - 1) * a)
    for nn in (3, 4, 5, 7, 10):
        for expr, ref in ((cf.gamma_c, gamma_c), (cf.gamma_sp, gamma_sp), (cf.lam_c, P_c), (cf.lam_sp, P_c / 2)):
            diff = sp.simplify(sp.powsimp((expr - ref).subs(n, nn), force=True))
            assert diff == 0, (nn, expr, ref)
    ratio = n * 2 ** (-(2 * n - 2) / n)
    assert sp.simplify(cf.ratio - ratio) == 0


def test_stationary_condition_is_derived():
    # non-trivial stationary points solve a b^(2n-2) - c b^(n-2) + gamma = 0
    for nn in (2, 3, 4, 6):
        h = compiled_potential(nn).stationary_expr
        assert sp.expand(h - (a * b ** (2 * nn - 2) - c * b ** (nn - 2) + gamma)) == 0


def test_curvature_closed_form_at_stationary_points():
    # brief 2.4: U''(b*) = 4 n (n-1) a b*^(n-2) (b*^n - b_sp^n) wherever h(b*) = 0
    for nn in (3, 4, 5):
        pot = compiled_potential(nn)
        U2 = sp.diff(reduced_potential(nn), b, 2)
        g_stat = sp.solve(pot.stationary_expr, gamma)[0]
        b_sp_n = (nn - 2) * c / (2 * (nn - 1) * a)
        target = 4 * nn * (nn - 1) * a * b ** (nn - 2) * (b**nn - b_sp_n)
        assert sp.simplify(U2.subs(gamma, g_stat) - target) == 0
