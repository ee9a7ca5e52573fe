"""The paper's checkable claims (arXiv:2606.17120) and their verdicts.

:data:`CLAIMS` lists them as :class:`phasetools.compare.Claim` objects, each with the
results of the reproduction it needs (see :func:`phasetools.reproduce.tasks`) and the check
that decides it. :func:`evaluate_claims` walks through them with the results of a
reproduction (experiment name -> result, as :func:`phasetools.reproduce.collect` builds
it); a claim whose experiment is missing is reported as not testable, an error inside a
check propagates.
"""

from __future__ import annotations

import math

import numpy as np

from ..compare import (AGREES, DISAGREES, NOT_TESTABLE, Claim, ClaimReport, Verdict, check_censored_claim,
                       check_exact, check_interval, check_lower_bound, check_value, not_testable)

__all__ = ["CLAIMS", "N_PARAMS_PAPER", "evaluate_claims", "claim_report"]

#: The parameter count the paper states for its network (the bias-free 2 -> 10 -> 10 -> 2
#: network has 140).
N_PARAMS_PAPER = 170


def _log10(x):
    return math.log10(x) if x and x > 0 else float("nan")


# -- checks ------------------------------------------------------------------------------------
def _transitions(R):
    cp = R["theory_critical"]
    sp = np.sort(np.asarray(cp.gamma_sp, dtype=float))           # weak, strong
    up = R["e1_up"]
    vs = []
    for k, name in enumerate(("weak", "strong")):
        b_after = float(np.nanmax(up.drop_positions()[:, k]))
        j = int(np.nonzero(np.isclose(up.weight_decays, b_after))[0][0])
        vs.append(check_interval(f"{name}-mode spinodal (theory) inside the measured drop step (population, "
                                 "increasing sweep)", sp[k], up.weight_decays[j - 1], b_after))
    step = float(np.min(np.abs(np.diff(up.weight_decays))))
    for k, (paper, name) in enumerate(((0.36, "weak"), (0.42, "strong"))):
        vs.append(check_value(f"{name}-mode spinodal (theory) against the paper's drop", sp[k], paper, tol=step))
    return vs


def _finite_sample(R):
    cp = R["theory_critical"]
    sp = np.sort(np.asarray(cp.gamma_sp, dtype=float))
    draws = R["e1_draws"] if isinstance(R["e1_draws"], (list, tuple)) else [R["e1_draws"]]
    vs = []
    for k, (paper, name) in enumerate(((0.36, "weak"), (0.42, "strong"))):
        pos = []
        for d in draws:
            dp = d.drop_positions()
            r0 = int(d.rank[0, 0])
            # index of this mode among the modes the draw had at the start (2 = both)
            idx = k - (2 - r0)
            if 0 <= idx < dp.shape[1]:
                pos.extend(dp[:, idx][np.isfinite(dp[:, idx])].tolist())
        if not pos:
            vs.append(not_testable(f"{name}-mode drop over finite-sample draws", paper, "no drop observed"))
            continue
        lo, hi = min(pos), max(pos)
        v = check_interval(f"paper's {name}-mode drop inside the scatter of {len(draws)} draws of N = "
                           f"{draws[0].train_moments.n_samples} (population spinodal {sp[k]:.4f})", paper, lo, hi)
        out = Verdict(v.quantity, paper, v.measured, v.outcome,
                      "agrees (the offset is finite-sample scatter) if the paper's value lies in the range of "
                      "drops over independent draws", v.detail)
        vs.append(out)
    return vs


def _hysteresis(R):
    down = R["e1_down"]
    return [check_exact(f"rank at every weight decay of a decreasing sweep from rank 0 "
                        f"({down.weight_decays[0]:g} -> {down.weight_decays[-1]:g})", int(down.rank.max()), 2)]


def _global_state(R):
    m = R["theory_modes"]
    g = m.states[m.global_index]
    two = [s for s in m.states if s.m == 2]
    detail = f"E(rank 2) - E(rank {g.m}) = {two[0].energy - g.energy:+.5f} (paper units)" if two else ""
    v = check_exact("rank of the global minimum at beta = 0.32 (theory)", g.m, 2)
    return [Verdict(v.quantity, 2, g.m, v.outcome, v.rule, detail)]


def _barrier(R):
    L = R["theory_landscape"]
    lam_s = float(np.asarray(L.lam_saddle, dtype=float).ravel()[0])
    dE = float(np.asarray(L.barrier_fwd, dtype=float).ravel()[0])
    return [check_value("lambda at the saddle (weak mode, beta = 0.32)", lam_s, 0.41, rel_tol=0.1),
            check_value("barrier dE_up (weak mode, beta = 0.32, paper units)", dE, 0.003, rel_tol=0.1)]


def _metastable(R):
    m = R["theory_modes"]
    vs = [check_exact("metastable minima at beta = 0.32 (theory: top-m states, one global)", int(m.n_metastable), 2)]
    seen = set()
    if "e1_up" in R:
        up = R["e1_up"]
        j = int(np.argmin(np.abs(up.weight_decays - 0.32)))
        seen.update(int(r) for r in up.rank[:, j])
    if "e1_down" in R:
        dn = R["e1_down"]
        j = int(np.argmin(np.abs(dn.weight_decays - 0.32)))
        seen.update(int(r) for r in dn.rank[:, j])
    if "e2_rank1" in R:
        e2 = R["e2_rank1"]
        if e2.target_weight_decay == 0.32:
            last = np.sum(np.nan_to_num(e2.singular_values[:, -1]) > 0.05, axis=1)
            seen.update(int(r) for r in last[e2.trapped])
    vs.append(check_exact("ranks observed to persist at beta = 0.32 in training (sweeps up/down, trap)",
                          sorted(seen), list(range(len(m.states)))))
    return vs


def _fresh(R):
    e2 = R["e2_rank1"]
    med = float(np.median(e2.reference_epoch)) if e2.reference_epoch.size else float("nan")
    v = check_value("epochs for fresh weights to cross the rank-1/rank-2 midpoint (log10, median)",
                    _log10(max(med, 1.0)), 1.0, tol=0.5)
    return [Verdict(v.quantity, "~10 epochs", f"{med:g} epochs", v.outcome,
                    "agrees if within half a decade of 10 epochs (|log10(measured/10)| <= 0.5)", v.detail)]


def _rank1(R):
    vs = []
    if "e2_paper_rank1" in R:
        p = R["e2_paper_rank1"]
        n_tr = int(p.trapped.sum())
        vs.append(Verdict("the paper's trap (converged at 0.361) is rank 1 on the drawn data",
                          "rank 1", f"{n_tr}/{p.n_seeds} seeds trapped (ranks {sorted(set(p.trap_rank.tolist()))})",
                          AGREES if n_tr == p.n_seeds else DISAGREES,
                          "agrees if every seed's checkpoint has rank 1",
                          "" if n_tr == p.n_seeds else "finite-sample spinodal of the weak mode above 0.361"))
    for name in ("e2_rank1", "e2_rank1_float32"):
        if name not in R:
            continue
        r = R[name]
        if not r.trapped.any():
            vs.append(not_testable(f"rank-1 escape time ({r.dtype})", "~5500 epochs", "no seed trapped"))
            continue
        fit = r.fit()
        v = check_lower_bound(f"rank-1 -> rank-2 escape time, epochs ({r.dtype}, residual seed "
                              f"{np.median(r.seed_size):.2g}, {r.epochs} epochs, {int(r.trapped.sum())} seeds)",
                              fit.tau, fit.tau_ci, fit.tau_lower, 5500.0)
        vs.append(v)
    return vs


def _rank0(R):
    r = R["e2_rank0"]
    t, cens = r.escape_times("mse")
    n_esc = int((~cens).sum())
    first = float(t[~cens].min()) if n_esc else float(r.epochs)
    return [check_censored_claim(f"rank-0 -> rank-1 escape, epochs ({int(r.trapped.sum())} trapped seeds, "
                                 f"residual seed {np.median(r.seed_size):.2g})", first, 7000.0, n_esc, t.size)]


def _orders(R):
    v = check_exact("decades between ~10 and > 10^4 epochs (the paper's own numbers)", 3, 2)
    return [Verdict(v.quantity, "2", "3", v.outcome, v.rule, "log10(10^4 / 10) = 3: the stated numbers span "
                    "three decades, and the two traps differ by less than one")]


def _arrhenius(R):
    sw = R["e4_paper"]
    ok = (sw.n_escaped > 0).sum()
    if ok < 2:
        lb = ", ".join(f"lr {a:g}: tau > {b:.3g} epochs" for a, b in zip(sw.lr, sw.tau_epochs_low))
        return [Verdict("Arrhenius slope of ln tau against batch_size/lr (rank-1 trap, paper's lrs)", "0.15 +- 0.05",
                        f"{int(sw.n_escaped.sum())} escapes in {sw.escaped.size} runs", NOT_TESTABLE,
                        "a slope needs escapes at >= 2 points", "censored lower bounds: " + lb)]
    fit = sw.fit("batch_size/lr")
    return [check_value("slope of ln tau against batch_size/lr", fit.slope, 0.15, stderr=fit.slope_stderr,
                        expected_stderr=0.05)]


def _factor50(R):
    L = R["theory_landscape"]
    dE = float(np.asarray(L.barrier_fwd, dtype=float).ravel()[0])
    ratio = 0.15 / dE
    v = check_value("dE_eff / dE_up with the equations' barrier", ratio, 50.0, rel_tol=0.2)
    return [Verdict(v.quantity, "~50", f"{ratio:.3g}", v.outcome, v.rule,
                    f"0.15 / {dE:.5f} = {ratio:.3g}; the factor 50 rests on dE_min = 0.003")]


def _sgd_temperature(R):
    sw = R["e4_corrected"]
    L = R["theory_corrected"]
    try:
        fit = sw.fit("inverse_temperature")
    except ValueError as exc:
        return [not_testable("slope of ln tau against 1/T_eff", "barrier", str(exc))]
    b = np.asarray(L.barrier_bwd, dtype=float).ravel()
    barrier = float(b[np.isfinite(b)][-1])
    v = check_value(f"slope of ln tau (SGD, rank 2 -> 1 at beta = {sw.target_weight_decay:g}) against 1/T_eff, over the "
                    f"barrier {barrier:.4g}", fit.slope / barrier, 1.0, stderr=fit.slope_stderr / barrier)
    return [v]


def _langevin(R):
    fit = R["langevin_chain"]
    L = R["theory_landscape"]
    dE = float(np.asarray(L.barrier_fwd, dtype=float).ravel()[0])
    return [check_value("Arrhenius slope of the 3-weight chain (Langevin, additive noise), paper units", fit.slope,
                        dE, stderr=fit.slope_stderr)]


def _grokking(R):
    e5 = R["e5"]
    sel = e5.trapped & e5.full_batch & e5.escaped
    if not sel.any():
        return [not_testable("full-batch plateau length, epochs", "~1500", "no trapped full-batch run escaped")]
    ep = e5.escape_epoch[sel]
    seeds = e5.seed_size[sel]
    j = int(np.argmin(np.abs(np.log(ep / 1500.0))))
    v = check_value("plateau length closest to 1500 epochs over the prepared seeds (log10)", _log10(ep[j]),
                    _log10(1500.0), tol=math.log10(2))
    return [Verdict(v.quantity, "~1500 epochs", f"{ep[j]} epochs at residual seed {seeds[j]:.2g} (range "
                    f"{ep.min()}-{ep.max()} for seeds {seeds.min():.2g}-{seeds.max():.2g})", v.outcome,
                    "agrees if some prepared residual seed gives a plateau within a factor 2 of 1500 epochs",
                    v.detail)]


def _grokking_noise(R):
    e5 = R["e5"]
    fb = e5.full_batch & e5.trapped
    big = e5.seed_size[fb & e5.escaped]
    small = e5.seed_size[fb & ~e5.escaped]
    detail = (f"B = 64 > N = {e5.n_train}: one deterministic full-batch step per epoch (no minibatch noise); "
              f"escapes for seeds >= {big.min():.2g}" if big.size else "no full-batch escapes")
    if small.size:
        detail += f", none for seeds <= {small.max():.2g}"
    return [Verdict("is the E5 delay noise-driven?", "noise-driven", "deterministic saddle plateau set by the seed",
                    DISAGREES, "disagrees if the paper's setting has no gradient noise and the delay follows the "
                               "residual seed", detail)]


def _n_params(R):
    r = R["e2_rank1"]
    n = sum(a * b for a, b in ((r.width, 2), (r.width, r.width), (2, r.width))) if r.n_layers == 3 else None
    return [check_exact("parameters of the bias-free 2 -> 10 -> 10 -> 2 network", n, N_PARAMS_PAPER)]


#: The paper's checkable claims, in the order of the report.
CLAIMS = (
    Claim("transitions", "Increasing the weight decay, the test MSE drops (a feature is lost) at beta = 0.36 and "
          "0.42", "0.36, 0.42", "E1", ("theory_critical", "e1_up"), _transitions),
    Claim("finite_sample", "The offset of 0.36/0.42 from theory is a bias of the output distribution", "0.36, 0.42",
          "E1", ("theory_critical", "e1_draws"), _finite_sample),
    Claim("hysteresis", "The drops also show in a decreasing sweep (one appendix sweeps down)", "drops at 0.36, 0.42",
          "E1", ("e1_down",), _hysteresis),
    Claim("global_state", "Rank 2 is the global minimum at beta = 0.32", "rank 2", "E2", ("theory_modes",),
          _global_state),
    Claim("barrier", "Barrier along the minimum-loss path at beta = 0.32: lambda_sad ~ 0.41, dE_min ~ 0.003",
          "0.41, 0.003", "E3", ("theory_landscape",), _barrier),
    Claim("metastable_states", "One metastable state per learnable feature (d = 2 at beta = 0.32)", "2", "E0/E2",
          ("theory_modes",), _metastable, optional=("e1_up", "e1_down", "e2_rank1")),
    Claim("fresh_convergence", "From random initialisation training converges to rank 2 in about 10 epochs",
          "~10 epochs", "E2 (i)", ("e2_rank1",), _fresh),
    Claim("rank1_trap", "A rank-1 trap (converged at beta = 0.361) stays, then jumps to rank 2 after ~5500 epochs",
          "~5500 epochs", "E2 (ii)", (), _rank1,
          optional=("e2_paper_rank1", "e2_rank1", "e2_rank1_float32")),
    Claim("rank0_trap", "A rank-0 trap (converged at beta = 0.43) needs more than 7000 epochs to reach rank 1",
          "> 7000 epochs", "E2 (iii)", ("e2_rank0",), _rank0),
    Claim("orders_of_magnitude", "Trapping delays convergence by two orders of magnitude (~10 -> > 10^4 epochs)",
          "2 decades", "E2", ("e2_rank1",), _orders),
    Claim("arrhenius", "Escape times from the rank-1 trap are Arrhenius in batch_size/lr (lr 5e-4 ... 5e-3, B = 64),"
          " dE_eff = 0.15 +- 0.05", "0.15 +- 0.05", "E4", ("e4_paper",), _arrhenius),
    Claim("factor_50", "dE_eff is about 50 x the barrier (entropic and curvature terms)", "~50", "E4",
          ("theory_landscape",), _factor50),
    Claim("sgd_temperature", "SGD is Langevin dynamics at T_eff = lr tr(Sigma)/(2 B N_theta): the slope of ln tau "
          "against 1/T_eff is the barrier", "slope = barrier", "E4 / 5.2",
          ("e4_corrected", "theory_corrected"), _sgd_temperature),
    Claim("langevin_arrhenius", "For Langevin dynamics the Arrhenius slope is the barrier dE_up (3-weight chain)",
          "slope = 0.02845", "6.1 / 7.7", ("langevin_chain", "theory_landscape"), _langevin),
    Claim("grokking_curve", "With 25 of 5000 samples (beta = 0.0025, lr 0.1, B = 64) a rank-1 plateau lasts ~1500 "
          "epochs, then test MSE drops sharply", "~1500 epochs", "E5", ("e5",), _grokking),
    Claim("grokking_noise", "The E5 delay is noise-driven escape (grokking as Arrhenius escape)", "noise-driven",
          "E5", ("e5",), _grokking_noise),
    Claim("n_params", "The network has D = 170 parameters", "170", "E0", ("e2_rank1",), _n_params),
)


def evaluate_claims(results, claims=CLAIMS) -> list:
    """Check the paper's claims on the results of a reproduction.

    Parameters
    ----------
    results : mapping
        Experiment name -> result, as :func:`phasetools.reproduce.collect` builds it
        (``theory_critical``, ``e1_up``, ``e2_rank1``, ``langevin_chain``, ...).
    claims : sequence of Claim, optional
        The claims to check (default :data:`CLAIMS`).

    Returns
    -------
    list of ClaimVerdict
        One per claim, in order. A claim whose experiment is missing is not testable; an
        error inside a check propagates.
    """
    return [claim.evaluate(results) for claim in claims]


def claim_report(results, claims=CLAIMS) -> ClaimReport:
    """The paper's claims checked on ``results``, as a stored result (one row per check).

    Parameters
    ----------
    results : mapping
        Experiment name -> result, as for :func:`evaluate_claims`.
    claims : sequence of Claim, optional
        The claims to check (default :data:`CLAIMS`).

    Returns
    -------
    ClaimReport
    """
    return ClaimReport.from_verdicts(evaluate_claims(results, claims))
