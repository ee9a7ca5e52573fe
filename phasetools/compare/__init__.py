"""Verdicts: does a measured number agree with a prediction, and does a claim hold?

Verdicts
    Verdict (quantity, expected, measured, outcome, rule, detail)
    check_value, check_interval, check_exact, check_lower_bound, check_censored_claim,
    not_testable
    outcomes: AGREES, DISAGREES, NOT_TESTABLE
Claims
    Claim (statement, source, the results it needs, a check) -> Claim.evaluate(results)
    -> ClaimVerdict; ClaimReport.from_verdicts(...) (a stored result: one row per check)

``results`` maps result names to results. Each verdict's ``rule`` states in words what
decided it. The paper's claims, built from these pieces, are in :mod:`phasetools.reproduce`.
See docs/compare.md.
"""

from ._claims import Claim, ClaimVerdict
from ._report import ClaimReport
from ._verdict import (AGREES, DISAGREES, NOT_TESTABLE, Z95, Verdict, check_censored_claim, check_exact,
                       check_interval, check_lower_bound, check_value, not_testable)

__all__ = ["Verdict", "AGREES", "DISAGREES", "NOT_TESTABLE", "Z95", "check_value", "check_interval", "check_exact",
           "check_lower_bound", "check_censored_claim", "not_testable", "Claim", "ClaimVerdict", "ClaimReport"]
