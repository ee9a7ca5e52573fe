"""The paper's checkable claims (arXiv:2606.17120) and their verdicts.

:data:`CLAIMS` lists them as :class:`phasetools.compare.Claim` objects, each with the
results of the reproduction it needs (see :func:`phasetools.reproduce.tasks`) and the check
that decides it. :func:`evaluate_claims` walks through them with the results of a
reproduction (experiment name -> result, as :func:`phasetools.reproduce.collect` builds
it); a claim whose experiment is missing is reported as not testable, an error inside a
check propagates.
"""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np

from ..compare import (AGREES, DISAGREES, NOT_TESTABLE, Claim, ClaimReport, Verdict, check_censored_claim,
                       check_exact, check_lower_bound, check_threshold, check_value, not_testable)
from ._e4 import by_test_mse, mse_sentence, rule_name, rule_text
from ._measure import is_rank1_trap
from ._theory_claims import THEORY_CHECKS

__all__ = ["CLAIMS", "OWN_CHECKS", "CLAIM_IDS", "N_PARAMS_PAPER", "evaluate_claims", "claim_report",
           "decide_noise_driver", "decide_delay_decades", "float_floor", "noise_exponent", "fitted_seed",
           "sensitivity", "SENSITIVE"]

#: The parameter count the paper states for its network (the bias-free 2 -> 10 -> 10 -> 2
#: network has 140).
N_PARAMS_PAPER = 170


def _log10(x):
    return math.log10(x) if x and x > 0 else float("nan")


#: Every claim id of the paper's catalogue, in the order of the report.
CLAIM_IDS = tuple(f"F{k}" for k in range(1, 15)) + tuple(f"N{k}" for k in range(1, 16))

def _e2_how(r) -> str:
    """How an E2 release ran, its sampler read from the stored result."""
    return (f"SGD lr {r.lr:g}, B = {r.batch_size} (sampling {r.sampling!r}, drop_last), N = 512, weight decay "
            f"{r.target_weight_decay:g} after the release; trap prepared at 0 then at the trap's weight decay; init "
            "std 1/sqrt(width) in every layer")


def _log10(x):
    return math.log10(x) if x and x > 0 else float("nan")


def float_floor(dtype) -> float:
    """The residual seed below which a float run cannot carry an unlearned feature (100 machine epsilons).

    Parameters
    ----------
    dtype : {"float64", "float32"}
        The run's precision.

    Returns
    -------
    float
    """
    return 100 * float(np.finfo(np.dtype(dtype)).eps)


def _seed(r):
    return float(np.median(r.seed_size)) if np.size(r.seed_size) else float("nan")


# -- N1 - N4 ------------------------------------------------------------------------------------
def _transitions(R):
    cp = R["theory_critical"]
    sp = np.sort(np.asarray(cp.gamma_sp, dtype=float))           # weak, strong
    up = R["e1_up"]
    step = float(np.min(np.abs(np.diff(up.weight_decays))))
    vs = []
    for k, (paper, name) in enumerate(((0.36, "weak"), (0.42, "strong"))):
        b_after = float(np.nanmax(up.drop_positions()[:, k]))
        v = check_value(f"{name}-mode drop of the population increasing sweep (first weight decay without the mode)",
                        b_after, paper, tol=step / 2)
        vs.append(Verdict(v.quantity, paper, b_after, v.outcome, v.rule, v.detail + f"; theory spinodal {sp[k]:.4f}",
                          how=f"full-batch GD to convergence at each step of {step:g} (population moments)"))
    return vs


def _finite_sample(R):
    cp = R["theory_critical"]
    sp = np.sort(np.asarray(cp.gamma_sp, dtype=float))
    d = R["n6_draws"]
    vs = []
    for k, (paper, key, name) in enumerate(((0.36, "weak_sp", "weak"), (0.42, "strong_sp", "strong"))):
        x = d.array(key)
        x = x[np.isfinite(x)]
        shift, se = float(x.mean() - sp[k]), float(x.std(ddof=1) / math.sqrt(x.size))
        v = check_value(f"{name}-mode: mean finite-sample shift of the spinodal (N = 512) against the paper's offset "
                        f"{paper} - {sp[k]:.4f}", shift, paper - sp[k], stderr=se)
        vs.append(Verdict(v.quantity, f"{paper - sp[k]:+.4f}", f"{shift:+.4f} ± {se:.2g} (spread sd "
                          f"{x.std(ddof=1):.3f})", v.outcome,
                          "agrees if the paper's offset lies within 1.96 standard errors of the mean shift of the "
                          "draws' spinodals from the population value (a bias, not scatter)", v.detail, how=d.how))
    return vs


def _directions(R):
    up, down = R["e1_up"], R["e1_down"]
    n_lost = int(np.sum(np.isfinite(up.drop_positions()[0])))
    return [check_exact("modes lost along the increasing sweep (0 -> 0.46)", n_lost, 2),
            check_exact(f"modes regained along the decreasing sweep from rank 0 ({down.weight_decays[0]:g} -> "
                        f"{down.weight_decays[-1]:g})", int(down.rank.max()), 2)]


def _global_state(R):
    m = R["theory_modes"]
    g = m.states[m.global_index]
    two = [s for s in m.states if s.m == 2]
    detail = f"E(rank 2) - E(rank {g.m}) = {two[0].energy - g.energy:+.5f} (paper units)" if two else ""
    v = check_exact("rank of the global minimum at beta = 0.32 (theory, population)", g.m, 2)
    return [Verdict(v.quantity, 2, g.m, v.outcome, v.rule, detail)]


# -- N5 - N8 ------------------------------------------------------------------------------------
def _fresh(R):
    n5 = R["n5_fresh"]
    cross = n5.array("midpoint_crossing")
    rank = n5.array("final_rank")
    rule = "agrees if within half a decade of 10 epochs (|log10(measured / 10)| <= 0.5)"
    out = []
    for frac, key in (("5 %", "5"), ("1 %", "1")):
        val = float(np.nanmedian(n5.array(f"settle_{key}")))
        stay = float(np.nanmedian(n5.array(f"stay_{key}"))) if f"stay_{key}" in n5 else float("nan")
        v = check_value(f"epochs until test MSE first comes within {frac} of its final value (median over seeds, "
                        "log10)", _log10(max(val, 1.0)), 1.0, tol=0.5)
        out.append(Verdict(v.quantity, "~10 epochs", f"{val:g} epochs", v.outcome, rule,
                           v.detail + f"; stays within {frac} from epoch {stay:g}; midpoint crossing at "
                           f"{np.nanmedian(cross):g} epochs (median)", how=n5.how))
    out.append(check_exact("rank reached by fresh weights (median over seeds)", int(np.median(rank)), 2))
    return out


def _rank1(R):
    vs = []
    d = R["n6_draws"]
    trap = is_rank1_trap(d.array("weak_sp"), d.array("strong_sp"))
    frac = float(trap.mean())
    vs.append(Verdict("fraction of N = 512 draws on which the 0.361 checkpoint is a rank-1 trap at 0.32",
                      "a trap (the paper's draw)", f"{frac:.2f} of {trap.size} draws", AGREES if frac > 0.5 else
                      DISAGREES, "agrees if the checkpoint is a rank-1 trap on a majority of draws (weak spinodal "
                      "between 0.32 and 0.361, strong spinodal above 0.361)",
                      f"weak spinodal above 0.361 on {float(np.mean(d.array('weak_sp') >= 0.361)):.2f}, below 0.32 on "
                      f"{float(np.mean(d.array('weak_sp') <= 0.32)):.2f}", how=d.how))
    if "e2_paper_rank1" in R:
        r = R["e2_paper_rank1"]
        if not r.trapped.any():
            vs.append(not_testable("rank-1 escape time on a trap draw", "~5500 epochs", "no seed trapped"))
        else:
            fit = r.fit()
            v = check_lower_bound(f"rank-1 -> rank-2 escape time on the first trap draw, epochs ({r.dtype}, residual "
                                  f"seed {_seed(r):.2g}, {r.epochs} epochs, {int(r.trapped.sum())} trapped seeds)",
                                  fit.tau, fit.tau_ci, fit.tau_lower, 5500.0)
            vs.append(Verdict(v.quantity, v.expected, v.measured, v.outcome, v.rule, v.detail,
                              how=_e2_how(r) + "; trap at 0.361 on the first draw of the N6 sequence where it is a trap"))
    for name in ("e2_rank1", "e2_rank1_float32"):
        if name in R and R[name].trapped.any():
            r = R[name]
            fit = r.fit()
            v = check_lower_bound(f"rank-1 -> rank-2 escape time, corrected trap between the draw's spinodals "
                                  f"({r.dtype}, residual seed {_seed(r):.2g}, {r.epochs} epochs)",
                                  fit.tau, fit.tau_ci, fit.tau_lower, 5500.0)
            vs.append(Verdict(v.quantity, v.expected, v.measured, v.outcome, v.rule, v.detail,
                              how=_e2_how(r) + "; the draw of E2 (rng 1)"))
    return vs


def _rank0(R):
    r = R["e2_rank0"]
    t, cens = r.escape_times("mse")
    n_esc = int((~cens).sum())
    first = float(t[~cens].min()) if n_esc else float(r.epochs)
    seed = _seed(r)
    impossible = n_esc == 0 and seed < float_floor(r.dtype)
    why = (f"the residual seed {seed:.2g} is below the {r.dtype} floor {float_floor(r.dtype):.1g} and pure SGD adds "
           "no noise on an unlearned feature (its variance vanishes like seed^4, N12): no escape can happen in any "
           "budget")
    v1 = check_censored_claim(f"first half: no rank-0 -> rank-1 escape before 7000 epochs ({int(r.trapped.sum())} "
                              f"trapped seeds)", first, 7000.0, n_esc, t.size)
    if impossible and v1.outcome == AGREES:
        v1 = Verdict(v1.quantity, v1.expected, v1.measured, NOT_TESTABLE, v1.rule + "; not testable if no escape "
                     "could happen at all (the rule could not fail)", why, how=_e2_how(r) + "; trap at 0.43")
    late = int(((~cens) & (t >= 7000)).sum())
    fit = r.fit()
    rule2 = ("agrees if some trapped run escapes after 7000 epochs; disagrees if none does and no escape can happen "
             "(seed at the float floor, pure SGD) or the 95% lower bound on the mean exceeds 10^4 epochs")
    if late:
        v2 = Verdict("second half: an escape to rank 1 after 7000 epochs", "> 7000, > 10^4 in total",
                     f"{late}/{t.size} escaped after 7000", AGREES, rule2, "")
    elif impossible or (fit.tau is None and fit.tau_lower > 1e4):
        v2 = Verdict("second half: an escape to rank 1 after 7000 epochs", "> 7000, > 10^4 in total",
                     f"none of {t.size} in {r.epochs} epochs", DISAGREES, rule2,
                     why if impossible else f"95% lower bound {fit.tau_lower:.3g} epochs")
    else:
        v2 = Verdict("second half: an escape to rank 1 after 7000 epochs", "> 7000, > 10^4 in total",
                     f"none of {t.size} in {r.epochs} epochs", NOT_TESTABLE, rule2, "budget too short to decide")
    return [v1, Verdict(v2.quantity, v2.expected, v2.measured, v2.outcome, v2.rule, v2.detail,
                        how=_e2_how(r) + f"; trap at 0.43; {r.dtype}; residual seed {seed:.2g}")]


def decide_delay_decades(fresh_epochs, trap_tau, trap_tau_lower, claimed=2.0, tol=0.5) -> Verdict:
    """N8: decades between two measured delays against the claimed number.

    Parameters
    ----------
    fresh_epochs : float
        Convergence time of fresh weights (epochs).
    trap_tau : float or None
        Mean escape time from the trap (None without escapes).
    trap_tau_lower : float
        Its one-sided 95 % lower bound (used without escapes).
    claimed, tol : float
        The claimed decades and the allowance.

    Returns
    -------
    Verdict
        With escapes: agrees if ``|decades - claimed| <= tol``. Without: disagrees if the lower
        bound already gives more than ``claimed + tol`` decades, else not testable.
    """
    rule = (f"agrees if log10(trap delay / fresh convergence) is within {tol:g} of {claimed:g}; without escapes "
            f"disagrees if the lower bound exceeds {claimed + tol:g} decades, else not testable")
    f = max(float(fresh_epochs), 1.0)
    if trap_tau is not None:
        dec = math.log10(float(trap_tau) / f)
        out = AGREES if abs(dec - claimed) <= tol else DISAGREES
        return Verdict("decades between the trap's escape time and fresh convergence", claimed, f"{dec:.2f}", out,
                       rule, f"{float(trap_tau):.4g} / {f:g} epochs")
    dec = math.log10(float(trap_tau_lower) / f)
    out = DISAGREES if dec > claimed + tol else NOT_TESTABLE
    return Verdict("decades between the trap's escape time and fresh convergence", claimed, f"> {dec:.2f}", out, rule,
                   f"no escape: > {float(trap_tau_lower):.4g} / {f:g} epochs")


def _orders(R):
    fresh = float(np.nanmedian(R["n5_fresh"].array("settle_5")))
    r = R["e2_paper_rank1"] if "e2_paper_rank1" in R and R["e2_paper_rank1"].trapped.any() else R["e2_rank0"]
    fit = r.fit()
    v = decide_delay_decades(fresh, fit.tau, fit.tau_lower)
    which = "rank-1 trap at 0.361 (trap draw)" if r is R.get("e2_paper_rank1") else "rank-0 trap at 0.43"
    return [Verdict(v.quantity + f" (fresh: N5 5 % settling; trap: {which})", v.expected, v.measured, v.outcome,
                    v.rule, v.detail)]


# -- N9, N10, N11 -------------------------------------------------------------------------------
def _arrhenius(R):
    sw = R["e4_paper"]
    out = []
    if (sw.n_escaped > 0).sum() < 3:
        lb = ", ".join(f"lr {a:g}: tau > {b:.3g} epochs" for a, b in zip(sw.lr, sw.tau_epochs_low))
        out.append(Verdict(f"R^2 of ln tau against batch_size/lr (rank-1 trap, the paper's lrs, sampling "
                           f"{sw.sampling!r}, {rule_name(sw)})", "0.991",
                           f"{int(sw.n_escaped.sum())} escapes in {sw.escaped.size} runs", NOT_TESTABLE,
                           "needs escapes at >= 3 points", "censored lower bounds: " + lb))
    else:
        fit = sw.fit("batch_size/lr")
        out.append(check_value(f"R^2 of ln tau against batch_size/lr (the paper's lrs, sampling {sw.sampling!r}, "
                               f"{rule_name(sw)})",
                               fit.r_squared
                               if hasattr(fit, "r_squared") else float("nan"), 0.991, tol=0.02))
    implied = 5500.0 * 0.08 / np.asarray(sw.lr, dtype=float)
    v = check_threshold("shortest escape (epochs) the paper's own numbers imply at its largest lr: 5500 x 0.08 / lr "
                        "(the same Langevin time; Arrhenius can only lengthen it), against its 2 x 10^4-epoch runs",
                        float(implied.min()), 2e4, above=False, expected="< 2 x 10^4 (escapes observable)")
    out.append(Verdict(v.quantity, v.expected, f"{implied.min():.3g}", v.outcome,
                       "consistent (agrees) if the implied escape at the largest lr fits in the stated run length",
                       "implied minimum per lr: " + ", ".join(f"{a:g}: {b:.3g}" for a, b in zip(sw.lr, implied))))
    if "e4_corrected" in R:
        out.append(_corrected_r2(R["e4_corrected"]))
    return out


def _escape_r2(c):
    """R^2 of ln tau against batch_size/lr over the points with escapes, or None with fewer than 3."""
    ok = np.isfinite(c.tau_time) & (c.n_escaped > 0)
    if ok.sum() < 3:
        return None
    x, y = (c.batch_size / c.lr)[ok], np.log(c.tau_time[ok])
    return float(np.corrcoef(x, y)[0, 1] ** 2)


def _corrected_r2(c):
    """N9 on corrected E4 by the sweep's own escape rule, the test-MSE rule's R^2 beside it."""
    q = (f"R^2 of ln tau against batch_size/lr where escapes exist (corrected E4: rank 2 -> 1 at "
         f"{c.target_weight_decay:g}, lr 0.1, sampling {c.sampling!r}, {rule_name(c)})")
    alt = by_test_mse(c)
    r2_mse = _escape_r2(alt) if alt is not None and alt is not c else None
    extra = mse_sentence(c, "R^2 = " + ("n/a (< 3 points with escapes)" if r2_mse is None else f"{r2_mse:.4f}"))
    detail = "; ".join(t for t in (rule_text(c), extra) if t)
    r2 = _escape_r2(c)
    if r2 is None:
        n = int(np.sum(np.isfinite(c.tau_time) & (c.n_escaped > 0)))
        return Verdict(q, "linear (paper: R^2 = 0.991)", f"{n} points with escapes", NOT_TESTABLE,
                       "needs escapes at >= 3 points", detail)
    v = check_threshold(q, r2, 0.95, above=True)
    return Verdict(v.quantity, "linear (paper: R^2 = 0.991)", f"{r2:.4f}", v.outcome,
                   "agrees if R^2 > 0.95 over >= 3 points", "; ".join(t for t in (v.detail, detail) if t))


def _factor50(R):
    L = R["theory_landscape"]
    dE = float(np.asarray(L.barrier_fwd, dtype=float).ravel()[0])
    v0 = check_value("the paper's own arithmetic: 0.15 / 0.003", 0.15 / 0.003, 50.0, rel_tol=0.2)
    ratio = 0.15 / dE
    v = check_value("dE_eff / dE_up with the equations' barrier", ratio, 50.0, rel_tol=0.2)
    out = [v0, Verdict(v.quantity, "~50", f"{ratio:.3g}", v.outcome, v.rule,
                       f"0.15 / {dE:.5f} = {ratio:.3g}; the factor 50 rests on dE_min = 0.003 (F10)")]
    sw = R.get("e4_paper")
    if sw is not None and (sw.n_escaped > 0).sum() < 2:
        out.append(not_testable("fitted effective barrier (slope of ln tau against B/lr)", "0.15 ± 0.05",
                                "no escapes at the paper's learning rates (N9); C is not reported"))
    return out


def _n_params(R):
    r = R["e2_rank1"]
    n = sum(a * b for a, b in ((r.width, 2), (r.width, r.width), (2, r.width))) if r.n_layers == 3 else None
    return [check_exact("parameters of the bias-free 2 -> 10 -> 10 -> 2 network", n, N_PARAMS_PAPER)]


# -- N12 --------------------------------------------------------------------------------------
def decide_noise_driver(drivers, seed_saddle) -> Verdict:
    """N12: is the escape from the trapped state started by SGD noise?

    Parameters
    ----------
    drivers : list of dict
        One per driver: ``seed`` (residual seed), ``sampling`` ("shuffle", "replacement",
        "full"), ``temperature`` (injected noise), ``escaped`` and ``n_runs``.
    seed_saddle : float
        The per-layer seed of the saddle: seeds below it cannot escape deterministically.

    Returns
    -------
    Verdict
        Agrees if pure minibatch SGD escapes from a seed below the saddle more often than
        full-batch descent from the same seed. Disagrees if pure minibatch SGD never escapes
        there while injected noise does, or if full-batch descent escapes as often (the seed,
        not the noise, decides). Not testable if nothing escapes.
    """
    rule = ("agrees if pure minibatch SGD (no injected noise) escapes from seeds below the saddle more often than "
            "full-batch GD from the same seeds; disagrees if it never does while injected noise does, or if GD "
            "escapes as often; not testable if nothing escapes")
    sub = [d for d in drivers if d["seed"] < seed_saddle]
    above = [d for d in drivers if d["seed"] >= seed_saddle and d["temperature"] == 0]
    note = ""
    if above:
        n_gd = sum(d["escaped"] for d in above if d["sampling"] == "full")
        n_all = sum(d["n_runs"] for d in above if d["sampling"] == "full")
        note = f"; above the saddle (seed >= {seed_saddle:.2g}) full-batch GD escapes {n_gd}/{n_all} without noise"
    frac = {}
    for d in sub:
        key = ("inj" if d["temperature"] > 0 else ("gd" if d["sampling"] == "full" else "sgd"), d["seed"])
        e, n = frac.get(key, (0, 0))
        frac[key] = (e + d["escaped"], n + d["n_runs"])
    seeds = sorted({d["seed"] for d in sub if d["temperature"] == 0})
    sgd = {s: frac.get(("sgd", s), (0, 1)) for s in seeds}
    gd = {s: frac.get(("gd", s), (0, 1)) for s in seeds}
    inj = [v for k, v in frac.items() if k[0] == "inj"]
    n_inj = sum(e for e, _ in inj)
    text = "; ".join(f"seed {s:g}: SGD {sgd[s][0]}/{sgd[s][1]}, GD {gd[s][0]}/{gd[s][1]}" for s in seeds)
    text += f"; injected noise {n_inj}/{sum(n for _, n in inj)}"
    more = [s for s in seeds if sgd[s][0] / sgd[s][1] > gd[s][0] / gd[s][1]]
    any_sgd = sum(v[0] for v in sgd.values())
    if more:
        return Verdict("what starts the escape from the trapped rank-1 state", "SGD noise", text, AGREES, rule,
                       f"minibatch noise beats GD at seeds {more}" + note)
    if any_sgd:
        return Verdict("what starts the escape from the trapped rank-1 state", "SGD noise", text, DISAGREES, rule,
                       "GD from the same seeds escapes as often: the seed, not the noise, decides" + note)
    if n_inj:
        return Verdict("what starts the escape from the trapped rank-1 state", "SGD noise", text, DISAGREES, rule,
                       "pure SGD never escapes from below the saddle; injected isotropic noise does" + note)
    return Verdict("what starts the escape from the trapped rank-1 state", "SGD noise", text, NOT_TESTABLE, rule,
                   "nothing escaped within the budget" + note)


def noise_exponent(seeds, projection) -> float:
    """Slope of log(noise variance) against log(seed) over the positive seeds with positive variance.

    Parameters
    ----------
    seeds, projection : sequence of float
        Residual seeds and the noise variance on the weak-feature direction at each.

    Returns
    -------
    float
        NaN with fewer than two usable points.
    """
    s, p = np.asarray(seeds, dtype=float), np.asarray(projection, dtype=float)
    ok = (s > 0) & (p > 0) & (s <= 1e-2)
    if ok.sum() < 2:
        return float("nan")
    return float(np.polyfit(np.log(s[ok]), np.log(p[ok]), 1)[0])


def _n12(R):
    noise, runs = R["n12_noise"], R["n12_runs"]
    seeds = noise["seeds"]
    proj = noise.array("projection")
    exps = [noise_exponent(seeds, p) for p in proj]
    zero = float(np.max(proj[:, np.asarray(seeds) == 0])) if 0.0 in seeds else float("nan")
    v = check_threshold("exponent k of the gradient-noise variance on the weak feature, variance ~ seed^k (largest "
                        "over the 3 layers); weight decay pulls back ~ seed^1", max(exps), 2.0, above=False,
                        expected="< 2 (noise std outgrows the pull as seed -> 0)")
    out = [Verdict(v.quantity, v.expected, ", ".join(f"{e:.2f}" for e in exps), v.outcome,
                   "agrees if the noise standard deviation decays slower than the weight-decay pull (k < 2)",
                   f"variance exactly {zero:g} at seed 0; at seed 1e-3: "
                   f"{float(proj[:, list(seeds).index(1e-3)].max()):.3g} against pull^2 "
                   f"{(noise['weight_decay'] * 1e-3) ** 2:.3g}" if 1e-3 in seeds else "", how=noise.how)]
    d = decide_noise_driver(runs["drivers"], runs["seed_saddle"])
    out.append(Verdict(d.quantity, d.expected, d.measured, d.outcome, d.rule, d.detail, how=runs.how))
    return out


# -- N13 (E5) -----------------------------------------------------------------------------------
def fitted_seed(seeds, plateaus, target=1500.0):
    """The residual seed at which the plateau length would be ``target`` (log-log interpolation).

    Parameters
    ----------
    seeds, plateaus : sequence of float
        Seeds and their plateau lengths (escaped runs only).
    target : float
        The plateau length to match.

    Returns
    -------
    float
        NaN if the measured plateaus do not bracket ``target``.
    """
    s, p = np.asarray(seeds, dtype=float), np.asarray(plateaus, dtype=float)
    o = np.argsort(s)
    s, p = np.log(s[o]), np.log(p[o])
    for i in range(s.size - 1):
        lo, hi = sorted((p[i], p[i + 1]))
        if lo <= math.log(target) <= hi and p[i] != p[i + 1]:
            return float(np.exp(s[i] + (math.log(target) - p[i]) * (s[i + 1] - s[i]) / (p[i + 1] - p[i])))
    return float("nan")


def _grokking(R):
    e5 = R["e5"]
    fb = e5.trapped & e5.full_batch
    sel = fb & e5.escaped
    out = []
    if sel.any():
        ep, seeds = e5.escape_epoch[sel], e5.seed_size[sel]
        fs = fitted_seed(seeds, ep)
        cens = e5.seed_size[fb & ~e5.escaped]
        if np.isfinite(fs):
            fit = f"; consistent with a fitted seed of {fs:.2g}"
        elif ep.max() < 1500 and cens.size and e5.epochs > 1500:
            fit = (f"; consistent with a seed between {cens.max():.2g} (no escape in {e5.epochs} epochs) and "
                   f"{seeds[np.argmax(ep)]:.2g} ({ep.max()} epochs)")
        else:
            fit = "; no prepared seed brackets 1500"
        out.append(Verdict("full-batch plateau length against the residual seed (the paper does not state its seed)",
                           "~1500 epochs", f"{ep.min()}-{ep.max()} epochs for seeds {seeds.min():.2g}-"
                           f"{seeds.max():.2g}" + fit, NOT_TESTABLE,
                           "a plateau length is set by the seed, which the paper does not give: reported as the "
                           "seed that would give ~1500 epochs (curve in e5_seed_curve.png), not an agreement"))
    else:
        out.append(not_testable("full-batch plateau length", "~1500", "no trapped full-batch run escaped"))
    tr, te = np.asarray(e5.train_mse, dtype=float), np.asarray(e5.test_mse, dtype=float)
    rows = np.nonzero(sel)[0]
    below, gaps = [], []
    for i in rows:
        t = e5.log_epochs < e5.escape_epoch[i]
        if t.any():
            below.append(float(np.mean(tr[i, t] < te[i, t])))
        gaps.append(float(te[i, -1] - tr[i, -1]) / float(te[i, 0] - tr[i, 0]) if te[i, 0] != tr[i, 0] else np.nan)
    if below:
        v = check_threshold("fraction of plateau log points with train MSE below test MSE (escaped full-batch runs)",
                            float(np.mean(below)), 0.9, above=True)
        out.append(v)
        v = check_threshold("final test - train gap over the gap on the plateau (test MSE drops to just above train)",
                            float(np.nanmedian(gaps)), 0.5, above=False)
        out.append(v)
    out.append(_grokking_noise(e5))
    return out


def _grokking_noise(e5):
    rule = ("agrees if full-batch runs (B >= N: one deterministic step per epoch, no minibatch noise) stay trapped "
            "where minibatch runs (B < N, sampling " + ", ".join(sorted({repr(str(x)) for x in
                                                                     e5.sampling[~e5.full_batch]}) or ["-"])
            + ") from the same seeds escape; disagrees if full-batch runs escape too")
    fb = e5.trapped & e5.full_batch
    mb = e5.trapped & ~e5.full_batch
    n_fb, n_mb = int((fb & e5.escaped).sum()), int((mb & e5.escaped).sum())
    measured = (f"full batch (B = 64 > N = {e5.n_train}): {n_fb}/{int(fb.sum())} escaped; "
                f"minibatch: {n_mb}/{int(mb.sum())}")
    if n_fb:
        big = e5.seed_size[fb & e5.escaped]
        return Verdict("is the E5 delay noise-driven? (decided from runs)", "noise-driven", measured, DISAGREES, rule,
                       f"noise-free full-batch descent escapes (seeds >= {big.min():.2g}): a deterministic plateau set "
                       "by the seed")
    if n_mb:
        return Verdict("is the E5 delay noise-driven? (decided from runs)", "noise-driven", measured, AGREES, rule, "")
    return Verdict("is the E5 delay noise-driven? (decided from runs)", "noise-driven", measured, NOT_TESTABLE, rule,
                   "nothing escaped")


# -- N14, N15 and the toolkit's checks ------------------------------------------------------------
def _nonlinear(R):
    return [not_testable("first-order transitions and metastability in nonlinear networks", "same as linear",
                         "the paper gives no nonlinear experiment of its own; testable with a nonlinear trainer and "
                         "a stored sweep verdict (weight-decay sweeps up and down with jumps and hysteresis, escape "
                         "times from a trapped state) for the companion paper's sigmoid MLP",
                         rule="needs a nonlinear network sweep with its own verdict")]


def _caption(R):
    from ..theory import landscape
    v = check_exact("weight decay of the trapping experiments: Fig. 1 caption against the text", 0.03, 0.32)
    b = [float(np.asarray(landscape(3, 0.8, x, convention="paper").barrier_fwd).ravel()[0]) for x in (0.03, 0.32)]
    return [Verdict(v.quantity, "0.32 (text)", "0.03 (caption)", v.outcome, "agrees if the two stated values are "
                    "equal", f"the paper is inconsistent; barrier out of rank 1 (weak mode): {b[0]:.2g} at 0.03, "
                    f"{b[1]:.4g} at 0.32; the reproduction uses 0.32")]


def _metastable(R):
    m = R["theory_modes"]
    return [check_exact("metastable minima at beta = 0.32 (theory: top-m states, one global)", int(m.n_metastable), 2)]


def _slope_over_barrier(sw, barrier):
    """``(slope / barrier, its standard error)`` of ln tau against 1/T_eff; ValueError with < 2 escaping points."""
    fit = sw.fit("inverse_temperature")
    return fit.slope / barrier, fit.slope_stderr / barrier


def _sgd_temperature(R):
    sw = R["e4_corrected"]
    L = R["theory_corrected"]
    b = np.asarray(L.barrier_bwd, dtype=float).ravel()
    barrier = float(b[np.isfinite(b)][-1])
    alt = by_test_mse(sw)
    try:
        r_mse = "slope / barrier = {:.3g} ± {:.2g}".format(*_slope_over_barrier(alt, barrier)) if alt not in (None, sw) \
            else ""
    except ValueError:
        r_mse = "slope / barrier n/a (< 2 points with escapes)"
    extra = "; ".join(t for t in (rule_text(sw), mse_sentence(sw, r_mse)) if t)
    try:
        ratio, se = _slope_over_barrier(sw, barrier)
    except ValueError as exc:
        v = not_testable(f"slope of ln tau (SGD, sampling {sw.sampling!r}, {rule_name(sw)}) against 1/T_eff",
                         "barrier", str(exc))
        return [dataclasses.replace(v, detail="; ".join(t for t in (v.detail, extra) if t))]
    v = check_value(f"slope of ln tau (SGD, sampling {sw.sampling!r}, {rule_name(sw)}, rank 2 -> 1 at beta = "
                    f"{sw.target_weight_decay:g}) against 1/T_eff, "
                    f"over the barrier {barrier:.4g}", ratio, 1.0, stderr=se)
    return [dataclasses.replace(v, detail="; ".join(t for t in (v.detail, extra) if t))]


def _langevin(R):
    fit = R["langevin_chain"]
    L = R["theory_landscape"]
    dE = float(np.asarray(L.barrier_fwd, dtype=float).ravel()[0])
    return [check_value("Arrhenius slope of the 3-weight chain (Langevin, additive noise), paper units", fit.slope,
                        dE, stderr=fit.slope_stderr)]


def _barrier(R):
    L = R["theory_landscape"]
    lam_s = float(np.asarray(L.lam_saddle, dtype=float).ravel()[0])
    dE = float(np.asarray(L.barrier_fwd, dtype=float).ravel()[0])
    return [check_value("lambda at the saddle (weak mode, beta = 0.32)", lam_s, 0.41, rel_tol=0.1),
            check_value("barrier dE_up (weak mode, beta = 0.32, paper units)", dE, 0.003, rel_tol=0.1)]


# -- the tables --------------------------------------------------------------------------------
_THEORY = "the per-mode theory (phasetools.theory), float64"
_SYM = "sympy, exact"
_SPEC = {
    # id: (statement, paper, location, kind, check, needed, optional, how)
    "F1": ("Per mode (L >= 3, Sxx = I) stationarity is lam - eta + beta lam^(2/L - 1) = 0", "Eq. (2)", "Eq. (2), (7)",
           "symbolic", None, (), (), _SYM),
    "F2": ("beta_c of Eq. (3) is the saddle-node of Eq. (2), lam_c = eta (1 - k)/(2 - k), k = 2/L", "Eq. (3)",
           "Eq. (3), App. D", "symbolic", None, (), (), _SYM),
    "F3": ("L = 3: beta_c = 0.4105 (eta = 0.9) and 0.3509 (eta = 0.8)", "0.4105, 0.3509", "from Eq. (3)", "theory",
           None, (), (), _THEORY),
    "F4": ("The per-mode energy Eq. (1) as printed has Eq. (2) as its stationarity condition", "Eq. (1) -> Eq. (2)",
           "Eq. (1) vs (2), (10)", "symbolic", None, (), (), _SYM),
    "F5": ("Hysteresis: beta* lies strictly below beta_c (a coexistence window)", "beta* < beta_c", "§2, App. C",
           "theory", None, (), (), _THEORY),
    "F6": ("lam = 0 is locally stable for all beta > 0 at L >= 3 (a network at 0 stays trapped)", "stable",
           "App. C", "theory + training", None, (), (), _SYM + "; training: N12's runs from the exact rank-1 state"),
    "F7": ("L = 2: a unique positive solution for all beta > 0 (no first-order transition)", "unique, continuous",
           "App. C", "theory", None, (), (), _SYM),
    "F8": ("The barrier grows as beta rises towards beta_c", "grows", "App. C", "theory", None, (), (),
           _THEORY + "; 7 weight decays inside the window of the weak mode"),
    "F9": ("The barrier out of the lower-rank phase is l(lam_sad) - l(0)", "Eq. (10)", "Eq. (10), App. E", "theory",
           None, (), (), _THEORY),
    "F10": ("At beta = 0.32, eta = 0.8, L = 3: lam_sad ~ 0.41 and dE_min ~ 0.003", "0.41, 0.003",
            "§3.2, Fig. 2a, App. E", "theory", _barrier, ("theory_landscape",), (), _THEORY),
    "F11": ("d learnable modes give d saddle-node bifurcations, ordered like the eta_i", "d, ordered", "App. D.2",
            "theory", None, (), (), _THEORY),
    "F12": ("Depth: beta_c falls with L; beta* stays finite; deeper networks have higher barriers", "three trends",
            "§4.1", "theory", None, (), (), _THEORY + "; L = 3..10, eta = 0.8; sympy limit for L -> infinity"),
    "F13": ("Kramers-Langer Eq. (11) and effective barrier Eq. (12): the entropic term explains a slope ~50x the "
            "barrier", "~50 x", "App. F.1-F.2", "symbolic", None, (), (), _SYM),
    "F14": ("With multiplicative SGD noise the Arrhenius form stays linear in B/lr", "linear", "App. F.3",
            "theory + Langevin + training", None, (), (), "exact 1D escape time under SGD-like noise; E4 corrected"),
    "N1": ("Increasing beta, test MSE drops at beta = 0.36 and 0.42", "0.36, 0.42", "App. A/B, Fig. 3", "training",
           _transitions, ("theory_critical", "e1_up"), (), "full-batch GD on population moments, step 0.01"),
    "N2": ("The offset of 0.36/0.42 from Eq. (3) is a bias of the output distribution", "a bias", "App. B",
           "training + theory", _finite_sample, ("theory_critical", "n6_draws"), (), ""),
    "N3": ("The sweep was decreasing (one appendix) / increasing (the other)", "both show the drops", "App. A vs B",
           "training", _directions, ("e1_up", "e1_down"), (), "full-batch GD on population moments, both directions"),
    "N4": ("Rank 2 is the global minimum at beta = 0.32", "rank 2", "§3.1", "theory", _global_state, ("theory_modes",),
           (), _THEORY),
    "N5": ("From random initialisation training converges to rank 2 in about 10 epochs", "~10 epochs", "§3.1 (i)",
           "training", _fresh, ("n5_fresh",), (), ""),
    "N6": ("A rank-1 trap (converged at 0.361) stays, then jumps to rank 2 after ~5500 epochs", "~5500 epochs",
           "§3.1 (ii)", "training", _rank1, ("n6_draws",), ("e2_paper_rank1", "e2_rank1", "e2_rank1_float32"), ""),
    "N7": ("A rank-0 trap (converged at 0.43) escapes to rank 1 after more than 7000 epochs, > 10^4 in total",
           "> 7000, then escape", "§3.1 (iii)", "training", _rank0, ("e2_rank0",), (), ""),
    "N8": ("Trapping delays convergence by two orders of magnitude", "2 decades", "abstract, §1", "arithmetic",
           _orders, ("n5_fresh", "e2_rank0"), ("e2_paper_rank1",), "measured delays (N5, N6/N7)"),
    "N9": ("Escape times from the rank-1 trap: ln tau linear in B/lr (R^2 = 0.991), lr 5e-4 ... 5e-3, B = 64",
           "R^2 = 0.991", "§3.3, App. A, Fig. 2b", "training", _arrhenius, ("e4_paper",), ("e4_corrected",),
           "E4 at the paper's lrs from the corrected rank-1 trap; corrected E4 at lr 0.1, B = 8..16"),
    "N10": ("The fitted effective barrier is 0.15 ± 0.05, about 50 x dE_min", "0.15, ~50", "Eq. (6), §3.3",
            "arithmetic + theory", _factor50, ("theory_landscape",), ("e4_paper",), _THEORY),
    "N11": ("The network has D = 170 parameters", "170", "§3.3 / App. F", "arithmetic", _n_params, ("e2_rank1",), (),
            "count of the bias-free 2 -> 10 -> 10 -> 2 network"),
    "N12": ("The escape from the metastable low-rank state is driven by SGD noise", "SGD noise", "abstract, §1, §3",
            "training + theory", _n12, ("n12_noise", "n12_runs"), (), ""),
    "N13": ("Sparse sub-sampling (25 of 5000, beta = 0.0025, lr 0.1, B = 64): ~1500-epoch rank-1 plateau, train < "
            "test, then test drops to just above train; noise-driven", "~1500, noise-driven", "§3.1 (iv), §4.2, "
            "Fig. 1b", "training", _grokking, ("e5",), (), "sparse_grokking: 25 of 5000, B = 64 (full batch) and "
            "B = 5, lr 0.1, weight decay 0.0025, traps prepared full-batch for 110-300 epochs (residual seeds), "
            "float64; init std 1/sqrt(fan_in) (departure: sparse_grokking has no init option)"),
    "N14": ("Nonlinear networks show the same first-order transitions and metastability", "same", "§4.1, App. G",
            "not testable", _nonlinear, (), (), "-"),
    "N15": ("A figure caption gives beta = 0.03 for the trapping experiments; the text gives 0.32", "0.32",
            "Fig. 1 caption vs §3.1", "arithmetic", _caption, (), (), "the two stated numbers; theory barrier"),
}


def _claim(cid):
    statement, paper, where, kind, check, needed, optional, how = _SPEC[cid]
    if check is None:
        check, needed, optional = THEORY_CHECKS[cid]
    return Claim(cid, statement, paper, where, needed, check, optional=optional, kind=kind, how=how)


#: The paper's checkable claims (every id of its catalogue), in the order of the report.
CLAIMS = tuple(_claim(cid) for cid in CLAIM_IDS)

#: The toolkit's checks of its own theory and engines (reported apart, not in the paper's tally).
OWN_CHECKS = (
    Claim("T1", "For Langevin dynamics the Arrhenius slope is the barrier dE_up (3-weight chain)", "slope = 0.02845",
          "theory vs engine", ("langevin_chain", "theory_landscape"), _langevin, kind="Langevin", table="toolkit",
          how="3-weight chain, additive noise, 4 temperatures, censoring-aware MLE"),
    Claim("T2", "An isotropic T_eff = lr tr(Sigma)/(2 B N_theta) predicts SGD escape: slope of ln tau against 1/T_eff "
          "is the barrier", "slope = barrier", "theory vs training", ("e4_corrected", "theory_corrected"),
          _sgd_temperature, kind="training", table="toolkit", how="corrected E4: rank 2 -> 1, lr 0.1, B = 8..16"),
    Claim("T3", "One metastable state per learnable feature at beta = 0.32", "2", "theory", ("theory_modes",),
          _metastable, kind="theory", table="toolkit", how=_THEORY),
)

#: Training claims whose verdicts are recomputed with the other initialisation reading.
SENSITIVE = ("N5", "N6", "N7", "N8")


def _other_reading(R):
    """The results with every ``*_fan_in`` result in place of its literal-reading twin."""
    alt = {k: v for k, v in R.items() if not (k.startswith(("e2_", "n5_")) and f"{k}_fan_in" not in R)}
    for k, v in R.items():
        if k.endswith("_fan_in"):
            alt[k.removesuffix("_fan_in")] = v
    return alt


def _unseeded(quantity):
    """A check's description without the numbers that differ between two runs of it."""
    return re.sub(r"(seed|trapped seeds\)?) [0-9.e+-]+", r"\1", quantity)


def sensitivity(results, claims=CLAIMS) -> list:
    """Verdicts of the training claims under both readings of the paper's initialisation.

    Parameters
    ----------
    results : mapping
        Experiment name -> result, with the ``*_fan_in`` results of the other reading.
    claims : sequence of Claim, optional
        The claims (those in :data:`SENSITIVE` are recomputed).

    Returns
    -------
    list of tuple
        ``(claim id, check, outcome with std 1/sqrt(width), outcome with std 1/sqrt(fan_in))``.
    """
    alt = _other_reading(results)
    rows = []
    for c in claims:
        if c.id not in SENSITIVE:
            continue
        a, b = c.evaluate(results), c.evaluate(alt)
        other = {_unseeded(vb.quantity): vb for vb in b.verdicts}
        for va in a.verdicts:
            vb = other.get(_unseeded(va.quantity))
            rows.append((c.id, va.quantity, f"{va.outcome} ({va.measured})",
                         f"{vb.outcome} ({vb.measured})" if vb is not None else "not run with this reading"))
    return rows


def evaluate_claims(results, claims=CLAIMS + OWN_CHECKS) -> list:
    """Check the paper's claims on the results of a reproduction.

    Parameters
    ----------
    results : mapping
        Experiment name -> result, as :func:`phasetools.reproduce.collect` builds it
        (``theory_critical``, ``e1_up``, ``e2_rank1``, ``langevin_chain``, ...).
    claims : sequence of Claim, optional
        The claims to check (default: :data:`CLAIMS` then :data:`OWN_CHECKS`).

    Returns
    -------
    list of ClaimVerdict
        One per claim, in order. A claim whose experiment is missing is not testable; an
        error inside a check propagates.
    """
    return [claim.evaluate(results) for claim in claims]


def claim_report(results, claims=CLAIMS + OWN_CHECKS) -> ClaimReport:
    """The paper's claims checked on ``results``, as a stored result (one row per check).

    Parameters
    ----------
    results : mapping
        Experiment name -> result, as for :func:`evaluate_claims`.
    claims : sequence of Claim, optional
        The claims to check (default: :data:`CLAIMS` then :data:`OWN_CHECKS`).

    Returns
    -------
    ClaimReport
    """
    return ClaimReport.from_verdicts(evaluate_claims(results, claims))
