"""Claim verdicts as a stored result, and the side-by-side table of theory, Langevin and SGD."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..results import Result, register
from ._claims import evaluate_claims
from ._verdict import AGREES, DISAGREES, NOT_TESTABLE

__all__ = ["ClaimReport", "claim_report", "side_by_side"]


@register
@dataclass(frozen=True, eq=False, repr=False)
class ClaimReport(Result):
    """One row per check: the claim it belongs to, the paper's and phasetools' numbers, the
    outcome ("agrees", "disagrees", "not testable") and the rule that decided it.
    ``claim_outcome`` is the claim's overall outcome (any disagreement -> disagrees)."""

    claim_id: tuple
    statement: tuple
    source: tuple
    claim_outcome: tuple
    quantity: tuple
    expected: tuple
    measured: tuple
    outcome: tuple
    rule: tuple
    detail: tuple

    _config_fields = ()

    def counts(self) -> dict:
        """Claims by overall outcome."""
        seen = dict(zip(self.claim_id, self.claim_outcome))
        return {o: sum(v == o for v in seen.values()) for o in (AGREES, DISAGREES, NOT_TESTABLE)}

    def __repr__(self):
        return f"ClaimReport({len(set(self.claim_id))} claims, {len(self.outcome)} checks, {self.counts()})"


def _text(v):
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, (list, tuple, np.ndarray)):
        return "[" + ", ".join(_text(x) for x in v) + "]"
    return str(v)


def claim_report(results) -> ClaimReport:
    """Evaluate :data:`~phasetools.compare.CLAIMS` on ``results`` (experiment name -> result)."""
    cols = {k: [] for k in ("claim_id", "statement", "source", "claim_outcome", "quantity", "expected",
                            "measured", "outcome", "rule", "detail")}
    for cv in evaluate_claims(results):
        for v in cv.verdicts:
            cols["claim_id"].append(cv.claim.id)
            cols["statement"].append(cv.claim.statement)
            cols["source"].append(cv.claim.source)
            cols["claim_outcome"].append(cv.outcome)
            cols["quantity"].append(v.quantity)
            cols["expected"].append(_text(v.expected))
            cols["measured"].append(_text(v.measured))
            cols["outcome"].append(v.outcome)
            cols["rule"].append(v.rule)
            cols["detail"].append(v.detail)
    return ClaimReport(**{k: tuple(v) for k, v in cols.items()}, stats={})


def _pm(x, se=None, fmt=".4g"):
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "-"
    return f"{x:{fmt}}" + (f" ± {se:.2g}" if se is not None and np.isfinite(se) else "")


def side_by_side(results) -> list:
    """Rows ``(quantity, unit, theory, langevin, training, note)`` for the quantities that more
    than one pillar measures, in the same units (paper convention; times in Langevin time
    ``lr * steps`` where SGD enters). Missing experiments give "-"."""
    rows = []
    cp = results.get("theory_critical")
    up = results.get("e1_up")
    if cp is not None:
        sp = np.sort(np.asarray(cp.gamma_sp, dtype=float))
        for k, name in enumerate(("weak", "strong")):
            tr = "-"
            if up is not None:
                b = float(np.nanmax(up.drop_positions()[:, k]))
                j = int(np.nonzero(np.isclose(up.betas, b))[0][0])
                tr = f"({up.betas[j - 1]:.3g}, {b:.3g}]"
            rows.append((f"{name}-mode spinodal", "weight decay", _pm(sp[k]), "-", tr,
                         "SGD column: the step of the population sweep where the mode is lost"))
    L = results.get("theory_landscape")
    ch = results.get("langevin_chain")
    if L is not None:
        dE = float(np.asarray(L.barrier_fwd, dtype=float).ravel()[0])
        lang = _pm(ch.slope, ch.slope_stderr) if ch is not None else "-"
        e4 = results.get("e4_paper")
        tr = "-"
        if e4 is not None:
            if (e4.n_escaped > 0).sum() < 2:
                tr = "no escapes: not measurable"
            else:
                f = e4.fit()
                tr = _pm(f.slope, f.slope_stderr)
        rows.append(("barrier rank 1 -> 2 at beta = 0.32 (Arrhenius slope)", "loss (paper)", _pm(dE), lang, tr,
                     "Langevin: slope of ln tau against 1/T for the 3-weight chain; SGD: E4 as stated"))
    if ch is not None and getattr(ch, "stats", None):
        for T, tau, se, th in zip(ch.stats.get("temperatures", []), ch.stats.get("tau", []),
                                  ch.stats.get("tau_stderr", []), ch.stats.get("theory_tau", [])):
            rows.append((f"escape time of the chain at T = {T:g}", "time (paper)", _pm(th), _pm(tau, se), "-",
                         "theory: Eyring-Kramers with the chain's 4 saddles"))
    e4c = results.get("e4_corrected")
    Lc = results.get("theory_corrected")
    if e4c is not None and Lc is not None:
        b = np.asarray(Lc.barrier_bwd, dtype=float).ravel()
        barrier = float(b[np.isfinite(b)][-1])
        try:
            f = e4c.fit("inverse_temperature")
            tr = _pm(f.slope, f.slope_stderr)
        except ValueError:
            tr = "fewer than 2 points with escapes"
        rows.append((f"barrier rank 2 -> 1 at beta = {e4c.target_beta:g} (drawn data)", "loss (paper)",
                     _pm(barrier), "-", tr, "SGD: slope of ln tau against 1/T_eff (isotropic T_eff)"))
        for i in range(e4c.lr.size):
            tau = (_pm(e4c.tau_time[i]) if np.isfinite(e4c.tau_time[i]) else f"> {e4c.tau_time_low[i]:.3g}")
            rows.append((f"escape time, lr {e4c.lr[i]:g}, B {e4c.batch_size[i]} (T_eff {e4c.temperature[i]:.3g})",
                         "time lr*steps (paper)", "-", "-", tau, f"{int(e4c.n_escaped[i])}/{e4c.escaped.shape[1]} "
                                                               "escaped"))
    return rows
