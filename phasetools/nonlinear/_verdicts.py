"""The verdict table for nonlinear networks, computed from stored results.

Four statements of the metastability picture, each decided by a rule written out in the
verdict (``phasetools.compare.Verdict``): first-order transitions in weight decay,
hysteresis, a metastable memorising state, and Arrhenius escape in ``batch_size / lr``.
"""

from __future__ import annotations

import numpy as np

from ..compare import AGREES, DISAGREES, NOT_TESTABLE, Verdict, not_testable
from ._protocols import NonlinearEscape, NonlinearSweep

__all__ = ["verdicts", "JUMP", "JUMP_RATIO", "P_VALUE"]

#: a change of seed-mean test accuracy between adjacent weight decays that counts as a jump
JUMP = 0.5
#: a jump must exceed every other adjacent change in that sweep by this factor
JUMP_RATIO = 3.0
#: significance level of the law tests
P_VALUE = 0.05


def _jump(sweep: NonlinearSweep) -> Verdict:
    q = "first-order transitions in weight decay"
    rule = (f"per sweep direction, the seed-mean test accuracy at adjacent weight decays: agrees if one change is "
            f">= {JUMP} and >= {JUMP_RATIO:g}x every other change (a jump); disagrees if the accuracy changes by "
            f">= {JUMP} overall but no single change is >= half of that (a continuous crossover); "
            f"not testable if it changes by < {JUMP} over the range")
    acc = sweep.test_acc.mean(-1)
    seen, measured = [], []
    for d, name in enumerate(("up", "down")):
        steps = np.abs(np.diff(acc[d]))
        total = float(acc[d].max() - acc[d].min())
        if total < JUMP:
            seen.append("none")
            measured.append(f"{name}: range {total:.2f}")
            continue
        i = int(np.argmax(steps))
        others = np.delete(steps, i)
        big = steps[i] >= JUMP and (others.size == 0 or steps[i] >= JUMP_RATIO * others.max())
        at = 0.5 * (sweep.weight_decays[i] + sweep.weight_decays[i + 1])
        measured.append(f"{name}: largest change {steps[i]:.2f} near weight_decay {at:.4g}")
        seen.append("jump" if big else ("smooth" if steps[i] < 0.5 * total else "unclear"))
    text = "; ".join(measured)
    if "jump" in seen:
        return Verdict(q, "a jump in test accuracy", text, AGREES, rule)
    if "smooth" in seen:
        return Verdict(q, "a jump in test accuracy", text, DISAGREES, rule, "gradual change")
    why = ("the largest change is not 3x the others: refine the grid" if "unclear" in seen
           else "no transition in the swept range")
    return Verdict(q, "a jump in test accuracy", text, NOT_TESTABLE, rule, why)


def _hysteresis(sweep: NonlinearSweep) -> Verdict:
    q = "hysteresis"
    rule = ("at each weight decay, seed-mean test accuracy of the up and down sweeps: agrees if they differ somewhere "
            "by more than max(0.1, 3 x the standard error of the difference across seeds); disagrees if they agree "
            f"within that everywhere while the accuracy changes by >= {JUMP} over the range; else not testable")
    acc = sweep.test_acc
    S = acc.shape[-1]
    diff = acc[0].mean(-1) - acc[1].mean(-1)
    se = np.sqrt(acc[0].var(-1, ddof=1) / S + acc[1].var(-1, ddof=1) / S) if S > 1 else np.zeros_like(diff)
    allowed = np.maximum(0.1, 3 * se)
    i = int(np.argmax(np.abs(diff) - allowed))
    measured = f"largest |up - down| {abs(diff[i]):.2f} at weight_decay {sweep.weight_decays[i]:.4g} (allowed {allowed[i]:.2f})"
    if np.abs(diff[i]) > allowed[i]:
        return Verdict(q, "up and down sweeps differ", measured, AGREES, rule)
    if np.ptp(acc.mean(-1)) >= JUMP:
        return Verdict(q, "up and down sweeps differ", measured, DISAGREES, rule, "the sweeps coincide")
    return Verdict(q, "up and down sweeps differ", measured, NOT_TESTABLE, rule, "no transition in the swept range")


def _metastable(esc: NonlinearEscape) -> Verdict:
    q = "metastable memorising state"
    rule = ("the prepared state must fit (train accuracy >= threshold) and not generalise (test accuracy < threshold) "
            "in every seed; then, released by noise-free full-batch descent for the same lr*steps as the first "
            "point: agrees if it stays trapped in every seed while noise (SGD, label or injected) lets >= 1 seed "
            "escape at some point (trapped without noise, freed by it); disagrees if it escapes without noise in "
            "every seed that the first noisy point frees (the first point whose x is finite), at a median time in "
            "lr*steps within a factor 2 of the noisy one (deterministic drift, not metastability); else not testable")
    expected = "trapped without noise, escapes with noise"
    prepared = bool(np.all(esc.prepared_train_acc >= esc.threshold) and np.all(esc.prepared_test_acc < esc.threshold))
    if not prepared:
        return not_testable(q, expected, "the preparation did not give a memorising state in every seed", rule=rule)
    noisy = np.isfinite(esc.x) if np.shape(esc.x) == np.shape(esc.n_escaped) else np.ones(esc.n_escaped.shape, bool)
    i0 = int(np.argmax(noisy)) if noisy.any() else 0
    n_ref = int(np.sum(~esc.reference_censored))
    freed = ~esc.censored[noisy] if noisy.any() else np.zeros((0, esc.n_seeds), bool)
    only_noise = int(np.sum(freed.any(0) & esc.reference_censored)) if freed.size else 0
    measured = (f"noise-free full batch: {n_ref}/{esc.n_seeds} escaped; noisy releases (SGD, label or injected "
                f"noise): {int(esc.n_escaped[noisy].sum())} escapes over {int(noisy.sum())} points, "
                f"{only_noise} seed(s) freed only with noise")
    if n_ref == 0 and esc.n_escaped[noisy].sum() > 0:
        return Verdict(q, expected, measured, AGREES, rule)
    if n_ref > 0 and np.any(~esc.censored[i0]):
        both = ~esc.reference_censored & ~esc.censored[i0]
        if both.any():
            noisy_time = esc.escape_epochs[i0][both] * esc.steps_per_epoch[i0] * esc.lr[i0]  # lr*steps
            ratio = float(np.median(esc.reference_escape_time[both]) / np.median(noisy_time))
            measured += f"; median noise-free / noisy escape time (lr*steps) {ratio:.3g}"
            if np.all(~esc.reference_censored[~esc.censored[i0]]) and 0.5 <= ratio <= 2.0:
                return Verdict(q, expected, measured, DISAGREES, rule, "escapes without noise: deterministic drift")
    return Verdict(q, expected, measured, NOT_TESTABLE, rule, "the noise-free and noisy releases do not decide")


def _arrhenius(esc: NonlinearEscape) -> Verdict:
    x = "B/lr" if esc.x_law == "batch_size/lr" else esc.x_law
    q = f"Arrhenius escape in {x}"
    rule = (f"fits to ln(mean escape time in lr*steps) over points with escapes: agrees if the Arrhenius law "
            f"(linear in {esc.x_law}) passes its chi-square test (p >= {P_VALUE}) with a slope > 0 by 2 standard "
            f"errors while the deterministic law (constant) fails (p < {P_VALUE}); disagrees if escape is slower "
            f"with more noise (a noisier point's censoring-aware lower bound on the mean escape time, or its estimate "
            f"minus 2 standard errors, exceeds a less noisy point's estimate plus 2 standard errors; points without "
            f"that noise count as the least noisy), or if the Arrhenius law fails while the power law or the "
            f"deterministic law passes; else not testable (too few points, or the data cannot tell them apart)")
    slower = _slower_with_noise(esc)
    if slower:
        return Verdict(q, f"ln tau linear in {x}", slower, DISAGREES, rule, "more noise, slower escape")
    if esc.arrhenius_dof < 1:
        return Verdict(q, f"ln tau linear in {x}", f"{int(np.sum(esc.n_escaped > 0))} points with escapes",
                       NOT_TESTABLE, rule, "fewer than 3 points with escapes")
    measured = (f"Arrhenius slope {esc.arrhenius_slope:.3g} +- {esc.arrhenius_slope_stderr:.2g}, "
                f"p = {esc.arrhenius_pvalue:.3g}; power exponent {esc.power_exponent:.3g}, p = {esc.power_pvalue:.3g}; "
                f"deterministic p = {esc.deterministic_pvalue:.3g}")
    arr_ok = esc.arrhenius_pvalue >= P_VALUE and esc.arrhenius_slope > 2 * esc.arrhenius_slope_stderr
    if arr_ok and esc.deterministic_pvalue < P_VALUE:
        return Verdict(q, f"ln tau linear in {x}", measured, AGREES, rule)
    if esc.arrhenius_pvalue < P_VALUE and (esc.power_pvalue >= P_VALUE or esc.deterministic_pvalue >= P_VALUE):
        return Verdict(q, f"ln tau linear in {x}", measured, DISAGREES, rule, "another law fits, Arrhenius does not")
    return Verdict(q, f"ln tau linear in {x}", measured, NOT_TESTABLE, rule, "the laws are not told apart")


def _slower_with_noise(esc: NonlinearEscape) -> str:
    """A pair of points where the noisier one escapes significantly later (in lr*steps), described; else ''."""
    scale = esc.lr * esc.steps_per_epoch
    x = esc.x
    if not esc.tau.shape == esc.tau_stderr.shape == esc.tau_lower.shape == x.shape == scale.shape:
        return ""  # an assembled result whose per-point fields disagree: nothing to compare
    est = esc.tau * scale
    se = esc.tau_stderr * scale
    low = np.where(np.isfinite(esc.tau), esc.tau - 2 * esc.tau_stderr, esc.tau_lower) * scale
    for i in range(x.size):  # i: the less noisy point
        if not np.isfinite(est[i]):
            continue
        for j in range(x.size):  # j: the noisier point (smaller inverse temperature)
            if x[j] < x[i] and low[j] > est[i] + 2 * se[i]:
                return (f"{esc.x_law} = {x[j]:.4g}: mean escape time >= {low[j]:.4g} lr*steps, against "
                        f"{est[i]:.4g} +- {se[i]:.2g} at {esc.x_law} = {x[i]:.4g} (less noise)")
    return ""


def verdicts(sweep: NonlinearSweep | None = None, escape: NonlinearEscape | None = None) -> list:
    """The four verdicts of the metastability picture for a nonlinear network.

    Parameters
    ----------
    sweep : NonlinearSweep, optional
        Decides "first-order transitions in weight decay" and "hysteresis".
    escape : NonlinearEscape, optional
        Decides "metastable memorising state" and "Arrhenius escape in B/lr" (in
        ``1/temperature`` or ``batch_size/(lr*label_noise^2)`` when its ``x_law`` says so).

    Returns
    -------
    list of phasetools.compare.Verdict
        Four verdicts; a missing result gives "not testable" for its two.
    """
    out = []
    if sweep is None:
        out += [not_testable(q, "-", "no weight-decay sweep given") for q in
                ("first-order transitions in weight decay", "hysteresis")]
    else:
        out += [_jump(sweep), _hysteresis(sweep)]
    if escape is None:
        out += [not_testable(q, "-", "no escape measurement given") for q in
                ("metastable memorising state", "Arrhenius escape in B/lr")]
    else:
        out += [_metastable(escape), _arrhenius(escape)]
    return out
