"""Checks of the paper's closed forms and reduced model (F1-F14): sympy and the per-mode theory.

Each check derives what it compares (nothing is read from a table of expected outcomes).
The paper's per-mode loss is ``l = (lam - eta)^2 / 2 + (L beta / 2) lam^(2/L)`` (its Eq. (1)
as printed has ``beta / 2``); ``L`` is the number of weight matrices.
"""

from __future__ import annotations

import functools

import numpy as np
import sympy as sp

from ..compare import (AGREES, DISAGREES, NOT_TESTABLE, Verdict, check_exact, check_identity, check_threshold,
                       check_trend, check_value)
from ._e4 import by_test_mse, mse_sentence, rule_name, rule_text

__all__ = ["THEORY_CHECKS", "DEPTHS"]

lam, eta, beta = sp.symbols("lam eta beta", positive=True)
L = sp.Symbol("L", positive=True, integer=True)
#: Depths of the F12 checks.
DEPTHS = tuple(range(3, 11))
ETA = (0.9, 0.8)


def _eq2(depth=L):
    """The paper's stationarity condition, Eq. (2)."""
    return lam - eta + beta * lam ** (sp.Integer(2) / depth - 1)


def _toolkit_loss():
    """The paper's per-mode loss from the toolkit's reduced potential U(b) (a = 1, c = eta, gamma = beta):
    l = (U + eta^2) / 2 with b = lam^(1/L)."""
    from ..theory import SYMBOLS, reduced_potential
    s = SYMBOLS
    U = reduced_potential().subs({s.a: 1, s.c: eta, s.gamma: beta, s.n: L}).subs(s.b, lam ** (1 / L))
    return sp.powsimp((U + eta**2) / 2, force=True)


def f1(R):
    return [check_identity("d l / d lam of the toolkit's reduced potential (paper convention) against Eq. (2), "
                           "symbolic L", sp.diff(_toolkit_loss(), lam), _eq2())]


def f2(R):
    from ..theory import closed_forms
    k = sp.Integer(2) / L
    b_of = (eta - lam) * lam ** (1 - k)             # Eq. (2) solved for beta
    (lam_sn,) = sp.solve(sp.diff(b_of, lam), lam)    # saddle-node: d beta / d lam = 0
    cf = closed_forms()
    g = cf.gamma_sp.subs({sp.Symbol("a", positive=True): 1, sp.Symbol("c", positive=True): eta,
                          sp.Symbol("n", positive=True, integer=True): L})
    return [check_identity("lam at the saddle-node of Eq. (2) against eta (1 - k) / (2 - k)", lam_sn,
                           eta * (1 - k) / (2 - k)),
            check_identity("beta at the saddle-node of Eq. (2) against the toolkit's spinodal (closed form)",
                           sp.powsimp(b_of.subs(lam, lam_sn), force=True), g)]


def f3(R):
    cp = R["theory_critical"]
    sp_ = np.asarray(cp.gamma_sp, dtype=float)
    return [check_value(f"beta_c (L = 3, eta = {e})", float(sp_[i]), paper, tol=5e-5)
            for i, (e, paper) in enumerate(zip(ETA, (0.4105, 0.3509)))]


def f4(R):
    printed = (lam - eta) ** 2 / 2 + beta / 2 * lam ** (sp.Integer(2) / L)
    v = check_identity("d l / d lam of Eq. (1) as printed (regulariser (beta/2) lam^(2/L)) against Eq. (2)",
                       sp.diff(printed, lam), _eq2())
    return [Verdict(v.quantity, v.expected, v.measured, v.outcome, v.rule,
                    v.detail + ("; with (L beta / 2) lam^(2/L) the identity holds (F1)" if v.detail else ""))]


def f5(R):
    cp = R["theory_critical"]
    gs, gc = np.asarray(cp.gamma_sp, dtype=float), np.asarray(cp.gamma_c, dtype=float)
    return [check_threshold(f"beta_c - beta* (L = 3, eta = {e}): width of the coexistence window",
                            float(gs[i] - gc[i]), 0.0, above=True) for i, e in enumerate(ETA)]


def f6(R):
    from ..theory import SYMBOLS, reduced_potential
    s = SYMBOLS
    vals = [sp.simplify(sp.diff(reduced_potential(n), s.b, 2).subs(s.b, 0) / (2 * n * s.gamma)) for n in DEPTHS]
    out = [check_exact(f"U''(0) / (2 L gamma) for L = {DEPTHS[0]}..{DEPTHS[-1]} (positive curvature at lam = 0 "
                       "for every gamma > 0)", [str(v) for v in vals], ["1"] * len(DEPTHS))]
    if "n12_runs" in R:
        zero = [d for d in R["n12_runs"]["drivers"] if d["seed"] == 0.0 and d["temperature"] == 0.0]
        n_esc = sum(d["escaped"] for d in zero)
        n = sum(d["n_runs"] for d in zero)
        v = check_exact("pure SGD/GD runs from an exactly rank-deficient state (weak feature 0) that left it",
                        n_esc, 0)
        out.append(Verdict(v.quantity, "0 (stays trapped)", f"{n_esc}/{n}", v.outcome, v.rule, v.detail,
                           how=R["n12_runs"].how))
    return out


def f7(R):
    e = sp.Rational(4, 5)
    counts = []
    for b in (e / 2, 2 * e):
        roots = sp.solve(_eq2(2).subs({eta: e, beta: b}), lam)
        counts.append(sum(1 for r in roots if r.is_positive))
    v1 = check_exact("positive solutions of Eq. (2) at L = 2 for beta = eta/2 and beta = 2 eta (eta = 0.8)",
                     counts, [1, 1])
    (sol,) = sp.solve(_eq2(2), lam)
    v2 = check_identity("L = 2 solution lam(beta) -> 0 continuously as beta -> eta (no jump)",
                        sp.limit(sol, beta, eta), 0)
    return [Verdict(v1.quantity, v1.expected, v1.measured, v1.outcome, v1.rule,
                    f"lam = {sol}: positive only for beta < eta" if v1.outcome == DISAGREES else v1.detail), v2]


def _barriers(depth, c, betas):
    from ..theory import landscape
    Lr = landscape(depth, c, np.asarray(betas, dtype=float), convention="paper")
    return np.asarray(Lr.barrier_fwd, dtype=float), np.asarray(Lr.barrier_bwd, dtype=float)


def f8(R):
    cp = R["theory_critical"]
    gs, gc = float(np.asarray(cp.gamma_sp)[1]), float(np.asarray(cp.gamma_c)[1])
    betas = np.linspace(gc, gs, 9)[1:-1]
    fwd, bwd = _barriers(3, ETA[1], betas)
    v = check_trend(f"barrier out of the low-rank state (lam = 0 -> learned) on beta* < beta < beta_c "
                    f"(eta = {ETA[1]}, L = 3)", betas, fwd, increasing=True)
    return [Verdict(v.quantity, v.expected, v.measured, v.outcome, v.rule,
                    v.detail + f"; the barrier back (learned -> 0) falls from {bwd[0]:.4g} to {bwd[-1]:.4g}")]


def f9(R):
    Lr = R["theory_landscape"]
    lam_s = float(np.asarray(Lr.lam_saddle, dtype=float).ravel()[0])
    ell = (lam - eta) ** 2 / 2 + 3 * beta / 2 * lam ** sp.Rational(2, 3)
    direct = float((ell.subs(lam, lam_s) - ell.subs(lam, 0)).subs({eta: ETA[1], beta: 0.32}))
    return [check_value("barrier_fwd of the toolkit's landscape against l(lam_sad) - l(0) (eta = 0.8, beta = 0.32)",
                        float(np.asarray(Lr.barrier_fwd, dtype=float).ravel()[0]), direct, rel_tol=1e-8)]


def f11(R):
    from ..theory import critical_points
    etas = np.array([0.9, 0.8, 0.6, 0.4])
    cp = critical_points(3, etas, convention="paper")
    gs = np.asarray(cp.gamma_sp, dtype=float)
    return [check_exact("number of saddle-node bifurcations for d = 4 modes (eta = 0.9, 0.8, 0.6, 0.4)",
                        int(np.isfinite(gs).sum()), 4),
            check_trend("spinodal beta_c^(i) against eta_i (same order)", etas, gs, increasing=True)]


def f12(R):
    from ..theory import closed_forms, critical_points
    e = ETA[1]
    gs = [float(critical_points(d, e, convention="paper").gamma_sp) for d in DEPTHS]
    gc = [float(critical_points(d, e, convention="paper").gamma_c) for d in DEPTHS]
    s = {sp.Symbol("a", positive=True): 1, sp.Symbol("c", positive=True): e}
    n = sp.Symbol("n", positive=True, integer=True)
    lim = sp.limit(closed_forms().gamma_c.subs(s), n, sp.oo)
    mids = [0.5 * (a + b) for a, b in zip(gc, gs)]
    fwd = [float(_barriers(d, e, [m])[0][0]) for d, m in zip(DEPTHS, mids)]
    v2 = check_threshold(f"beta* as L -> infinity (eta = {e}; closed form, sympy limit)", float(lim), 0.0,
                         above=True, expected="finite, > 0")
    return [check_trend(f"beta_c against L = {DEPTHS[0]}..{DEPTHS[-1]} (eta = {e})", DEPTHS, gs, increasing=False),
            Verdict(v2.quantity, v2.expected, v2.measured, v2.outcome, v2.rule,
                    v2.detail + "; beta* over L: " + ", ".join(f"{x:.4g}" for x in gc)),
            check_trend(f"barrier out of the low-rank state at the middle of each depth's coexistence window "
                        f"(eta = {e})", DEPTHS, fwd, increasing=True)]


def f13(R):
    s = sp.Symbol("s", positive=True)
    D = 4
    ws = sp.symbols(f"ws0:{D}", positive=True)
    wm = sp.symbols(f"wm0:{D - 1}", positive=True)
    tau = 2 * sp.pi / ws[0] * sp.sqrt(sp.Mul(*ws) / sp.Mul(*wm))
    scaled = tau.subs({w: s * w for w in ws + wm}, simultaneous=True)
    degree = sp.simplify(sp.log(sp.simplify(scaled / tau)) / sp.log(s))
    v1 = check_exact("scaling degree of Eq. (11)'s time in the Hessian's units (D saddle over D - 1 minimum "
                     "eigenvalues, prefactor 2 pi / |w_s|); a time must scale as H^-1", str(degree), "-1")
    T, dE, ent, tau0 = sp.symbols("T dE S tau0", positive=True)
    x = sp.Symbol("x", positive=True)   # 1 / T
    ln_tau = sp.log(tau0) + (dE - T * ent / 2) / T
    slope = sp.diff(ln_tau.subs(T, 1 / x), x)
    change = sp.simplify(slope - dE)
    rule = "agrees if the temperature-independent term of Eq. (12) changes d ln tau / d(1/T) (sympy)"
    v2 = Verdict("change of the Arrhenius slope by the entropic term -(T/2) sum ln(w_sad/w_min) of Eq. (12)",
                 "~49 dE_min (explains dE_eff ~ 50 dE_min)", f"d ln tau/d(1/T) - dE = {change}",
                 DISAGREES if change == 0 else AGREES, rule,
                 "a T-independent prefactor shifts ln tau_0 only" if change == 0 else "")
    return [v1, v2]


def _sgd_tau_points():
    from ..langevin import escape_problem
    problem = escape_problem("chain", n_layers=3, c=ETA[1], gamma=0.32, direction="bwd", convention="paper")
    theory = problem.sgd_theory()
    lr = 0.08
    sizes = np.arange(2, 9)
    return sizes / lr, np.array([float(theory.tau(lr, int(B))) for B in sizes])


def _linear_r2(x, y):
    A = np.vstack([x, np.ones_like(x)]).T
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    res = y - A @ coef
    return 1 - res.var() / y.var(), float(np.max(np.abs(res))), coef


def f14(R):
    x, tau = _sgd_tau_points()
    r2, dev, _ = _linear_r2(x, np.log(tau))
    v1 = check_value("largest deviation of ln tau from a straight line in B/lr (exact 1D escape time under "
                     "SGD-like noise, 3-weight chain, rank 2 -> 1, B/lr = 25...100)", dev, 0.0, tol=0.05)
    v1 = Verdict(v1.quantity, "linear (deviation <= 0.05)", f"{dev:.3g} (R^2 = {r2:.5f})", v1.outcome,
                 "agrees if no point deviates from the fitted line by more than 0.05 in ln tau (5 % in tau)",
                 v1.detail, how="phasetools.langevin escape_problem('chain', ...).sgd_theory().tau(lr = 0.08, B)")
    out = [v1]
    if "e4_corrected" in R:
        out.append(_f14_training(R["e4_corrected"]))
    return out


def _line_fit(sw):
    """``(text, p-value)`` of a straight line of ln tau in B/lr over the points with escapes, or
    ``(reason, None)`` with fewer than 3."""
    ok = np.isfinite(sw.tau_time) & (sw.n_escaped > 0)
    if ok.sum() < 3:
        return f"{int(ok.sum())} points with escapes (3 needed)", None
    xs = (sw.batch_size / sw.lr)[ok]
    y = np.log(sw.tau_time[ok])
    se = (0.5 * (np.log(sw.tau_time_high) - np.log(sw.tau_time_low)) / 1.96)[ok]
    r2t, _, c = _linear_r2(xs, y)
    res = y - (c[0] * xs + c[1])
    chi2 = float(np.sum((res / se) ** 2))
    from scipy.stats import chi2 as chi2d
    pval = float(chi2d.sf(chi2, ok.sum() - 2))
    return f"R^2 = {r2t:.4f}, chi^2 = {chi2:.3g} for {int(ok.sum()) - 2} dof (p = {pval:.3g})", pval


def _f14_training(sw):
    """F14's training row by the sweep's escape rule, the test-MSE rule's line fit beside it."""
    q = (f"ln tau against B/lr in training (E4 corrected, rank 2 -> 1, lr 0.1, sampling {sw.sampling!r}, "
         f"{rule_name(sw)})")
    alt = by_test_mse(sw)
    extra = mse_sentence(sw, _line_fit(alt)[0] if alt is not None and alt is not sw else "")
    detail = "; ".join(t for t in (rule_text(sw), extra) if t)
    text, pval = _line_fit(sw)
    if pval is None:
        return Verdict(q, "linear", text, NOT_TESTABLE, "needs escapes at >= 3 points", detail)
    return Verdict(q, "linear", text, AGREES if pval >= 0.01 else DISAGREES,
                   "agrees if the straight line's chi^2 has p >= 0.01 (errors from the 95% intervals)", detail)


def _once(check):
    """A check that reads no result, derived once per process (sympy is slow)."""
    cached = functools.lru_cache(maxsize=1)(lambda: tuple(check({})))

    def run(R):
        return list(cached())
    run.__name__ = check.__name__
    return run


_sgd_tau_points = functools.lru_cache(maxsize=1)(_sgd_tau_points)
f1, f2, f4, f7, f11, f12, f13 = (_once(f) for f in (f1, f2, f4, f7, f11, f12, f13))

#: id -> (check, needed results, optional results)
THEORY_CHECKS = {"F1": (f1, (), ()), "F2": (f2, (), ()), "F3": (f3, ("theory_critical",), ()),
                 "F4": (f4, (), ()), "F5": (f5, ("theory_critical",), ()), "F6": (f6, (), ("n12_runs",)),
                 "F7": (f7, (), ()), "F8": (f8, ("theory_critical",), ()), "F9": (f9, ("theory_landscape",), ()),
                 "F11": (f11, (), ()), "F12": (f12, (), ()), "F13": (f13, (), ()),
                 "F14": (f14, (), ("e4_corrected",))}
