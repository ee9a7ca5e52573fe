"""Verdicts: does a measured number agree with a prediction, and does a claim hold?

Verdicts
    Verdict (quantity, expected, measured, outcome, rule, detail)
    check_value, check_interval, check_exact, check_lower_bound, check_censored_claim,
    check_trend, check_threshold, check_identity (sympy), not_testable
    outcomes: AGREES, DISAGREES, NOT_TESTABLE
Claims
    Claim (statement, source, the results it needs, a check) -> Claim.evaluate(results)
    -> ClaimVerdict; ClaimReport.from_verdicts(...) (a stored result: one row per check)
    Claim.table: "paper" (the source's claims, counted in the tally) or "toolkit" (checks
    of the theory and the engine)
Predictions
    MeasuredPoint, predicted_vs_measured -> PredictedVsMeasured (censoring-aware: a point where
    nothing escaped is a lower bound), .outcomes(), .ablation(), .table()
Measurements
    Measurement (name, how, values): a stored result of named numbers for checks that
    need no result class of their own

``results`` maps result names to results. Each verdict's ``rule`` states in words what
decided it. The paper's claims, built from these pieces, are in :mod:`phasetools.reproduce`.
See docs/compare.md.
"""

from ._claims import Claim, ClaimVerdict
from ._report import ClaimReport
from ._measurement import Measurement
from ._predicted import MeasuredPoint, PredictedVsMeasured, predicted_vs_measured
from ._verdict import (AGREES, DISAGREES, NOT_TESTABLE, Z95, Verdict, check_censored_claim, check_exact,
                       check_identity, check_interval, check_lower_bound, check_threshold, check_trend, check_value,
                       not_testable)

__all__ = ["Verdict", "AGREES", "DISAGREES", "NOT_TESTABLE", "Z95", "check_value", "check_interval", "check_exact",
           "check_lower_bound", "check_censored_claim", "check_trend", "check_threshold", "check_identity",
           "not_testable", "Claim", "ClaimVerdict", "ClaimReport", "Measurement", "MeasuredPoint",
           "PredictedVsMeasured", "predicted_vs_measured"]
