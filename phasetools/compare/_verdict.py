"""Verdicts: does a measured number agree with a prediction, within its stated uncertainty?

Each check returns a :class:`Verdict` that carries the rule it applied, in words, so a
report can print the rule next to the outcome. Three outcomes:

* ``"agrees"``: within the stated uncertainty;
* ``"disagrees"``: outside it, with the size of the disagreement in ``detail``;
* ``"not testable"``: the measurement cannot decide (e.g. no escape within the budget and
  the censored lower bound is below the claim).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Verdict", "AGREES", "DISAGREES", "NOT_TESTABLE", "check_value", "check_interval", "check_exact",
           "check_lower_bound", "check_censored_claim", "check_trend", "check_threshold", "check_identity",
           "not_testable", "Z95"]

AGREES, DISAGREES, NOT_TESTABLE = "agrees", "disagrees", "not testable"
#: two-sided 95% normal quantile
Z95 = 1.959963984540054


@dataclass(frozen=True)
class Verdict:
    """One comparison: ``measured`` against ``expected`` and the outcome under ``rule``.

    Parameters
    ----------
    quantity : str
        What was compared, in words.
    expected : object
        The prediction or claimed value (a number, a label or text such as ``"~10 epochs"``).
    measured : object
        What phasetools measured or computed.
    outcome : str
        :data:`AGREES`, :data:`DISAGREES` or :data:`NOT_TESTABLE`; anything else is a
        ``ValueError``.
    rule : str
        The rule that decided the outcome, in words.
    detail : str, optional
        The size of a disagreement, or why the check cannot decide.
    how : str, optional
        How the measurement was made (protocol, seeds, data draws, float precision, minibatch
        sampling), when it differs from its claim's (:attr:`Claim.how`).
    """

    quantity: str
    expected: object
    measured: object
    outcome: str
    rule: str
    detail: str = ""
    how: str = ""

    def __post_init__(self):
        if self.outcome not in (AGREES, DISAGREES, NOT_TESTABLE):
            raise ValueError(f"outcome must be {AGREES!r}, {DISAGREES!r} or {NOT_TESTABLE!r}, got {self.outcome!r}")

    @property
    def agrees(self) -> bool:
        """``True`` if the outcome is :data:`AGREES`."""
        return self.outcome == AGREES


def _num(x, name):
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {x!r}") from None
    return v


def check_value(quantity, measured, expected, *, stderr=0.0, expected_stderr=0.0, tol=0.0, rel_tol=0.0,
                z=Z95) -> Verdict:
    """A number against a prediction: agrees if
    ``|measured - expected| <= z * sqrt(stderr^2 + expected_stderr^2) + tol + rel_tol * |expected|``.

    Parameters
    ----------
    quantity : str
        What is compared, in words.
    measured, expected : float
        The measured number and the prediction (``ValueError`` if not numbers).
    stderr : float, optional
        Standard error of the measurement (statistical).
    expected_stderr : float, optional
        Standard error of the prediction.
    tol : float, optional
        A stated, non-statistical resolution (e.g. a grid step), added to the allowance.
    rel_tol : float, optional
        A relative resolution: ``rel_tol * |expected|`` is added to the allowance.
    z : float, optional
        Normal quantile applied to the combined standard error (default :data:`Z95`).

    Returns
    -------
    Verdict
        Not testable if either number is not finite.
    """
    m, e = _num(measured, "measured"), _num(expected, "expected")
    se = math.hypot(_num(stderr, "stderr"), _num(expected_stderr, "expected_stderr"))
    allowed = z * se + float(tol) + float(rel_tol) * abs(e)
    parts = []
    if se > 0:
        parts.append(f"{z:.3g} x combined standard error {se:.3g}")
    if tol:
        parts.append(f"resolution {tol:g}")
    if rel_tol:
        parts.append(f"{100 * rel_tol:g}% of the expected value")
    rule = "agrees if |measured - expected| <= " + (" + ".join(parts) if parts else "0 (exact)")
    if not (math.isfinite(m) and math.isfinite(e)):
        return Verdict(quantity, e, m, NOT_TESTABLE, rule, "non-finite value")
    diff = m - e
    if "log10" in quantity:   # a difference of logarithms is a factor, not a percentage
        rel = f" (a factor {10 ** diff:.3g})"
    else:
        rel = f" ({100 * diff / e:+.3g}%)" if e != 0 else ""
    detail = f"difference {diff:+.4g}{rel}; allowed {allowed:.3g}"
    if se > 0:
        detail += f"; {abs(diff) / se:.2f} standard errors"
    return Verdict(quantity, e, m, AGREES if abs(diff) <= allowed else DISAGREES, rule, detail)


def check_interval(quantity, value, low, high, *, expected=None) -> Verdict:
    """A value (e.g. a theory number) against a measured interval ``[low, high]``.

    Parameters
    ----------
    quantity : str
        What is compared, in words.
    value : float
        The value that should lie in the interval.
    low, high : float
        The measured interval; a non-finite end makes the verdict not testable.
    expected : object, optional
        What the verdict shows as expected (default ``value``).

    Returns
    -------
    Verdict
        Agrees if ``low <= value <= high``; otherwise ``detail`` gives the distance.
    """
    v, lo, hi = _num(value, "value"), _num(low, "low"), _num(high, "high")
    rule = "agrees if the value lies in the measured interval [low, high]"
    measured = f"[{lo:.4g}, {hi:.4g}]"
    if not all(math.isfinite(x) for x in (v, lo, hi)):
        return Verdict(quantity, v if expected is None else expected, measured, NOT_TESTABLE, rule,
                       "interval not observed")
    ok = lo <= v <= hi
    gap = 0.0 if ok else (lo - v if v < lo else v - hi)
    return Verdict(quantity, v if expected is None else expected, measured, AGREES if ok else DISAGREES, rule,
                   "inside" if ok else f"outside by {gap:.4g}")


def check_exact(quantity, measured, expected) -> Verdict:
    """Equality of discrete values (counts, labels, ranks).

    Parameters
    ----------
    quantity : str
        What is compared, in words.
    measured, expected : object
        Compared with ``numpy.array_equal`` (scalars, lists or arrays).

    Returns
    -------
    Verdict
        Agrees if equal.
    """
    ok = np.array_equal(np.asarray(measured), np.asarray(expected))
    return Verdict(quantity, expected, measured, AGREES if ok else DISAGREES, "agrees if equal (exact)",
                   "" if ok else f"{measured!r} != {expected!r}")


def check_lower_bound(quantity, tau, tau_ci, tau_lower, claim, *, rel_tol=0.0) -> Verdict:
    """A mean escape time against a claimed value ``claim``, with censoring.

    With escapes (``tau`` not None): agrees if ``claim`` lies in the confidence interval
    ``tau_ci`` widened by ``rel_tol``. Without escapes only the lower bound ``tau_lower``
    exists: disagrees if ``tau_lower > claim * (1 + rel_tol)`` (the claimed escapes should have
    been seen), otherwise not testable (the budget was too short to decide).

    Parameters
    ----------
    quantity : str
        What is compared, in words.
    tau : float or None
        Censoring-aware mean escape time (``None`` without escapes), e.g. from
        :func:`phasetools.stats.exponential_mle`.
    tau_ci : tuple of float or None
        Its 95% confidence interval (used when ``tau`` is not None).
    tau_lower : float
        One-sided 95% lower bound on the mean (used when ``tau`` is None).
    claim : float
        The claimed mean escape time.
    rel_tol : float, optional
        Relative widening of the interval (or of the claim, for the lower bound).

    Returns
    -------
    Verdict
    """
    c = _num(claim, "claim")
    rule = ("with escapes: agrees if the claim lies in the 95% interval of the censoring-aware mean; "
            "without: disagrees if the 95% lower bound exceeds the claim, else not testable")
    if tau is None:
        lb = _num(tau_lower, "tau_lower")
        if lb > c * (1 + rel_tol):
            return Verdict(quantity, c, f"> {lb:.4g} (no escape)", DISAGREES, rule,
                           f"no escape; the 95% lower bound {lb:.4g} exceeds the claim by a factor {lb / c:.3g}")
        return Verdict(quantity, c, f"> {lb:.4g} (no escape)", NOT_TESTABLE, rule,
                       f"no escape, but the budget only bounds tau above {lb:.4g}")
    lo, hi = (float(x) for x in tau_ci)
    ok = lo * (1 - rel_tol) <= c <= hi * (1 + rel_tol)
    return Verdict(quantity, c, f"{float(tau):.4g} [{lo:.4g}, {hi:.4g}]", AGREES if ok else DISAGREES, rule,
                   "claim inside the interval" if ok else f"claim / measured = {c / float(tau):.3g}")


def check_censored_claim(quantity, observed_min, claim_min, n_escaped, n) -> Verdict:
    """A claim of the form "more than ``claim_min``".

    Agrees if no run escaped before ``claim_min`` and the budget reached it; disagrees if runs
    escaped earlier; not testable if the budget ended before ``claim_min`` without escapes.

    Parameters
    ----------
    quantity : str
        What is compared, in words.
    observed_min : float
        The earliest escape time if any run escaped, else the budget (the time every run
        was observed for).
    claim_min : float
        The claimed minimum time.
    n_escaped : int
        Runs that escaped.
    n : int
        Runs in all.

    Returns
    -------
    Verdict
    """
    rule = "agrees if no run escaped before the claimed time and the budget reached it"
    om, cm = _num(observed_min, "observed_min"), _num(claim_min, "claim_min")
    if n_escaped and om < cm:
        return Verdict(quantity, f"> {cm:g}", f"{n_escaped}/{n} escaped, earliest {om:.4g}", DISAGREES, rule,
                       f"earliest escape at {om:.4g} < {cm:g}")
    if not n_escaped and om < cm:
        return Verdict(quantity, f"> {cm:g}", f"none of {n} escaped within {om:.4g}", NOT_TESTABLE, rule,
                       "budget shorter than the claim")
    return Verdict(quantity, f"> {cm:g}", f"{n_escaped}/{n} escaped; none before {cm:g}", AGREES, rule, "")


def not_testable(quantity, expected, why, *, rule="needs the experiment's results") -> Verdict:
    """A verdict that cannot be decided: nothing was measured.

    Parameters
    ----------
    quantity : str
        What would have been compared, in words.
    expected : object
        The prediction or claimed value.
    why : str
        Why nothing was measured (goes to ``detail``).
    rule : str, optional
        The rule shown next to the outcome.

    Returns
    -------
    Verdict
        Outcome :data:`NOT_TESTABLE`, measured ``"-"``.
    """
    return Verdict(quantity, expected, "-", NOT_TESTABLE, rule, why)


def check_trend(quantity, x, y, *, increasing, expected=None) -> Verdict:
    """A strictly monotone trend of ``y`` along ``x`` (sorted by ``x``).

    Parameters
    ----------
    quantity : str
        What is compared, in words.
    x, y : sequence of float
        The points; non-finite ``y`` are left out.
    increasing : bool
        The claimed direction: ``y`` rises (``True``) or falls (``False``) with ``x``.
    expected : object, optional
        What the verdict shows as expected (default "increasing"/"decreasing").

    Returns
    -------
    Verdict
        Agrees if every step of ``y`` has the claimed sign, disagrees if any step has the
        other sign or is flat, not testable with fewer than two finite points.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-D of the same length, got shapes {x.shape} and {y.shape}")
    word = "increasing" if increasing else "decreasing"
    rule = f"agrees if y is strictly {word} in x at every step"
    ok = np.isfinite(x) & np.isfinite(y)
    order = np.argsort(x[ok])
    xs, ys = x[ok][order], y[ok][order]
    shown = ", ".join(f"{a:g}: {b:.4g}" for a, b in zip(xs, ys))
    exp = word if expected is None else expected
    if xs.size < 2:
        return Verdict(quantity, exp, shown or "-", NOT_TESTABLE, rule, "fewer than two finite points")
    d = np.diff(ys) if increasing else -np.diff(ys)
    bad = np.nonzero(d <= 0)[0]
    if bad.size:
        i = int(bad[0])
        return Verdict(quantity, exp, shown, DISAGREES, rule,
                       f"not {word} between x = {xs[i]:g} ({ys[i]:.4g}) and x = {xs[i + 1]:g} ({ys[i + 1]:.4g})")
    return Verdict(quantity, exp, shown, AGREES, rule, f"{word} over {xs.size} points")


def check_threshold(quantity, measured, threshold, *, above=True, expected=None) -> Verdict:
    """A number against a one-sided bound: agrees if ``measured > threshold`` (``above``) or
    ``measured < threshold`` (not ``above``).

    Parameters
    ----------
    quantity : str
        What is compared, in words.
    measured, threshold : float
        The measured number and the bound (``ValueError`` if not numbers).
    above : bool
        The claimed side of the bound.
    expected : object, optional
        What the verdict shows as expected (default ``"> threshold"`` or ``"< threshold"``).

    Returns
    -------
    Verdict
        Not testable if either number is not finite.
    """
    m, t = _num(measured, "measured"), _num(threshold, "threshold")
    sign = ">" if above else "<"
    exp = f"{sign} {t:g}" if expected is None else expected
    rule = f"agrees if measured {sign} {t:g}"
    if not (math.isfinite(m) and math.isfinite(t)):
        return Verdict(quantity, exp, m, NOT_TESTABLE, rule, "non-finite value")
    ok = m > t if above else m < t
    return Verdict(quantity, exp, m, AGREES if ok else DISAGREES, rule, f"measured - bound = {m - t:+.4g}")


def check_identity(quantity, lhs, rhs, *, expected="identical") -> Verdict:
    """Two sympy expressions identical for all values of their symbols.

    Parameters
    ----------
    quantity : str
        What is compared, in words.
    lhs, rhs : sympy expression or number
        The two sides.
    expected : object, optional
        What the verdict shows as expected.

    Returns
    -------
    Verdict
        Agrees if ``simplify(lhs - rhs)`` is 0, disagrees otherwise (``detail`` shows the
        simplified difference); not testable if sympy cannot decide (the difference
        simplifies to an expression that ``equals(0)`` leaves open).
    """
    import sympy as sp
    diff = sp.simplify(sp.powsimp(sp.expand(sp.sympify(lhs) - sp.sympify(rhs)), force=True))
    rule = "agrees if lhs - rhs simplifies to 0 for all values of the symbols (sympy)"
    zero = diff == 0 or diff.equals(0)
    if zero is True:
        return Verdict(quantity, expected, "lhs - rhs = 0", AGREES, rule, "")
    if zero is None:
        return Verdict(quantity, expected, f"lhs - rhs = {diff}", NOT_TESTABLE, rule, "sympy cannot decide")
    return Verdict(quantity, expected, f"lhs - rhs = {diff}", DISAGREES, rule, f"difference {diff}")
