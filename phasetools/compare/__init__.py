"""Theory, Langevin and SGD side by side, with a verdict per quantity and per claim of the paper.

Verdicts
    Verdict (quantity, expected, measured, outcome, rule, detail)
    check_value, check_interval, check_exact, check_lower_bound, check_censored_claim
    outcomes: AGREES, DISAGREES, NOT_TESTABLE
The paper's claims
    CLAIMS (Claim objects), evaluate_claims(results) -> [ClaimVerdict]
    claim_report(results) -> ClaimReport (a stored result: one row per check)
    side_by_side(results) -> rows (quantity, unit, theory, langevin, training, note)

``results`` maps experiment names to results, as :mod:`phasetools.reproduce` produces
them (``theory_critical``, ``e1_up``, ``e2_rank1``, ``langevin_chain``, ...). Each
verdict's ``rule`` states in words what decided it. See docs/compare.md.
"""

from ._claims import CLAIMS, N_PARAMS_PAPER, Claim, ClaimVerdict, evaluate_claims
from ._report import ClaimReport, claim_report, side_by_side
from ._verdict import (AGREES, DISAGREES, NOT_TESTABLE, Z95, Verdict, check_censored_claim, check_exact,
                       check_interval, check_lower_bound, check_value)

__all__ = ["Verdict", "AGREES", "DISAGREES", "NOT_TESTABLE", "Z95", "check_value", "check_interval", "check_exact",
           "check_lower_bound", "check_censored_claim", "Claim", "CLAIMS", "ClaimVerdict", "evaluate_claims",
           "N_PARAMS_PAPER", "ClaimReport", "claim_report", "side_by_side"]
