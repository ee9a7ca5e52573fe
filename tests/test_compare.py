"""Verdict logic on constructed cases, claims with missing results or a buggy check, and the
paper's claim walk (phasetools.reproduce) with missing experiments."""

import pytest

from phasetools.compare import (AGREES, DISAGREES, NOT_TESTABLE, Claim, ClaimReport, Verdict, check_censored_claim,
                                check_exact, check_interval, check_lower_bound, check_value, not_testable)
from phasetools.reproduce import CLAIMS, OWN_CHECKS, claim_report, evaluate_claims


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
    assert [cv.claim.id for cv in verdicts] == [c.id for c in CLAIMS + OWN_CHECKS]
    # with nothing run, a claim that needs an experiment is not testable
    for cv in verdicts:
        if cv.claim.experiments:
            assert cv.outcome == NOT_TESTABLE
    report = claim_report({})
    assert set(report.claim_id) == {c.id for c in CLAIMS + OWN_CHECKS}
    assert sum(report.counts().values()) == len(CLAIMS)
    assert sum(report.counts(None).values()) == len(CLAIMS) + len(OWN_CHECKS)


def test_theory_only_claims():
    import phasetools.theory as th
    R = {"theory_modes": th.modes(3, [0.9, 0.8], 0.32, convention="paper"),
         "theory_landscape": th.landscape(3, 0.8, 0.32, convention="paper"),
         "theory_critical": th.critical_points(3, [0.9, 0.8], convention="paper")}
    out = {cv.claim.id: cv for cv in evaluate_claims(R)}
    assert out["N4"].outcome == DISAGREES            # rank 1 is global at 0.32
    assert out["F10"].outcome == DISAGREES           # 0.02845, not 0.003
    assert out["N10"].verdicts[1].measured == "5.27"
    assert out["T3"].verdicts[0].outcome == AGREES
    assert out["F3"].outcome == AGREES and out["F5"].outcome == AGREES and out["F9"].outcome == AGREES


def _check_levels(R):
    levels = {"plateau": 1.0}
    return [check_value("level", R["sweep"], levels["target"])]      # a bug: "target" is not a key


def test_a_bug_in_a_check_raises_and_a_missing_result_is_not_testable():
    claim = Claim("bug", "a claim whose check has a bug", "1.0", "test", ("sweep",), _check_levels)
    # the needed result is there: the check runs and its KeyError propagates
    with pytest.raises(KeyError, match="target"):
        claim.evaluate({"sweep": 1.0})
    # the needed result is missing: not testable, naming it, and the check is not called
    cv = claim.evaluate({"other": 1.0})
    assert cv.outcome == NOT_TESTABLE and cv.verdicts[0].detail == "not run: sweep"
    assert claim.missing({"other": 1.0}) == ["sweep"]


class _Inconsistent(dict):
    """Says it holds every experiment but has none: any lookup inside a check fails."""

    def __contains__(self, key):
        return True


def test_paper_claims_propagate_errors_of_their_checks():
    # every needed experiment passes the up-front check, so a KeyError inside a check is a bug
    # and propagates (it used to make every claim "not testable")
    with pytest.raises(KeyError):
        evaluate_claims(_Inconsistent())
    # a result of the wrong type under a needed name is a bug in the caller, not a missing experiment
    with pytest.raises(AttributeError):
        evaluate_claims({"theory_modes": object()})


def test_optional_results_and_empty_checks():
    def check(R):
        return [check_exact("x", R[k], 1) for k in ("a", "b") if k in R]

    claim = Claim("opt", "optional results", "1", "test", (), check, optional=("a", "b"))
    assert claim.evaluate({"a": 1}).outcome == AGREES
    cv = claim.evaluate({})
    assert cv.outcome == NOT_TESTABLE and cv.verdicts[0].detail == "not run: a, b"
    with pytest.raises(ValueError, match="check"):
        Claim("c", "s", "p", "src", (), None)
    with pytest.raises(ValueError, match="experiments"):
        Claim("c", "s", "p", "src", ("",), check)


def test_claim_report_from_verdicts():
    c1 = Claim("one", "first", "1", "s1", (), lambda R: [check_exact("n", 2, 1), check_exact("m", 1, 1)])
    c2 = Claim("two", "second", "2.0", "s2", ("x",), lambda R: [not_testable("q", 2.0, "no escape")])
    report = ClaimReport.from_verdicts([c1.evaluate({}), c2.evaluate({"x": 0})])
    assert report.claim_id == ("one", "one", "two")
    assert report.claim_outcome == (DISAGREES, DISAGREES, NOT_TESTABLE)
    assert report.expected == ("1", "1", "2")
    assert report.detail[2] == "no escape"
    assert report.counts() == {AGREES: 0, DISAGREES: 1, NOT_TESTABLE: 1}
