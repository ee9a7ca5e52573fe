"""Verdict logic on constructed cases, and the claim walk with missing experiments."""

import pytest

from phasetools.compare import (AGREES, CLAIMS, DISAGREES, NOT_TESTABLE, Verdict, check_censored_claim,
                                check_exact, check_interval, check_lower_bound, check_value, claim_report,
                                evaluate_claims)


def test_check_value_uses_the_combined_standard_error():
    # |1.1 - 1.0| = 0.1 against 1.96 * hypot(0.03, 0.04) = 0.098: just outside
    assert check_value("x", 1.1, 1.0, stderr=0.03, expected_stderr=0.04).outcome == DISAGREES
    assert check_value("x", 1.09, 1.0, stderr=0.03, expected_stderr=0.04).outcome == AGREES
    v = check_value("x", 1.1, 1.0, stderr=0.03, expected_stderr=0.04)
    assert "combined standard error 0.05" in v.rule and "2.00 standard errors" in v.detail


def test_check_value_resolution_and_relative_tolerance():
    assert check_value("drop", 0.36, 0.3509, tol=0.01).outcome == AGREES
    assert check_value("drop", 0.37, 0.3509, tol=0.01).outcome == DISAGREES
    assert check_value("barrier", 0.003, 0.02845, rel_tol=0.1).outcome == DISAGREES
    assert check_value("exact", 2.0, 2.0).outcome == AGREES
    assert check_value("nan", float("nan"), 1.0).outcome == NOT_TESTABLE


def test_interval_and_exact():
    assert check_interval("sp", 0.3509, 0.35, 0.36).outcome == AGREES
    v = check_interval("sp", 0.3509, 0.36, 0.37)
    assert v.outcome == DISAGREES and "outside by 0.0091" in v.detail
    assert check_exact("rank", 1, 2).outcome == DISAGREES
    assert check_exact("ranks", [0, 1, 2], [0, 1, 2]).outcome == AGREES


def test_censored_escape_time_against_a_claim():
    # escapes observed: the claim must lie in the 95% interval
    assert check_lower_bound("tau", 5000.0, (4000.0, 6500.0), 4100.0, 5500.0).outcome == AGREES
    assert check_lower_bound("tau", 500.0, (400.0, 650.0), 410.0, 5500.0).outcome == DISAGREES
    # no escape: the lower bound decides -- a short budget cannot refute the claim ...
    assert check_lower_bound("tau", None, None, 5340.0, 5500.0).outcome == NOT_TESTABLE
    # ... a long one can
    v = check_lower_bound("tau", None, None, 3.3e5, 5500.0)
    assert v.outcome == DISAGREES and "factor 60" in v.detail


def test_more_than_claims():
    assert check_censored_claim("t", 7000.0, 7000.0, 0, 8).outcome == AGREES        # budget reached, none
    assert check_censored_claim("t", 2000.0, 7000.0, 0, 8).outcome == NOT_TESTABLE  # budget too short
    assert check_censored_claim("t", 1200.0, 7000.0, 3, 8).outcome == DISAGREES     # escaped too early


def test_verdict_refuses_unknown_outcomes():
    with pytest.raises(ValueError, match="outcome"):
        Verdict("q", 1, 1, "maybe", "rule")


def test_every_claim_is_reported_even_without_results():
    verdicts = evaluate_claims({})
    assert [cv.claim.id for cv in verdicts] == [c.id for c in CLAIMS]
    # with nothing run, only claims that need no experiment can be decided
    for cv in verdicts:
        assert cv.outcome in (NOT_TESTABLE, DISAGREES)
    report = claim_report({})
    assert set(report.claim_id) == {c.id for c in CLAIMS}
    assert sum(report.counts().values()) == len(CLAIMS)


def test_theory_only_claims():
    import phasetools.theory as th
    R = {"theory_modes": th.modes(3, [0.9, 0.8], 0.32, convention="paper"),
         "theory_landscape": th.landscape(3, 0.8, 0.32, convention="paper"),
         "theory_critical": th.critical_points(3, [0.9, 0.8], convention="paper")}
    out = {cv.claim.id: cv for cv in evaluate_claims(R)}
    assert out["global_state"].outcome == DISAGREES            # rank 1 is global at 0.32
    assert out["barrier"].outcome == DISAGREES                 # 0.02845, not 0.003
    assert out["factor_50"].verdicts[0].measured == "5.27"
    assert out["metastable_states"].verdicts[0].outcome == AGREES
