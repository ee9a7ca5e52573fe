"""Censored escape-time estimators, bootstrap and Arrhenius fits (phasetools.stats).

Statistical tolerances come from the sample sizes: a replicate mean is compared within
3 standard errors (two-sided 99.7%), a coverage fraction from R replicates within
3 binomial standard deviations sqrt(p (1 - p) / R) (99.7%). Every random draw is seeded,
so each test is deterministic; the levels say how often an arbitrary seed would fail.
"""

import doctest
import math
import re
from pathlib import Path

import numpy as np
import pytest

import phasetools.stats as ps
from phasetools.io import load, save
from phasetools.stats import (ArrheniusFit, BootstrapCI, ExponentialFit, SurvivalCurve, arrhenius_fit,
                              bootstrap_ci, exponential_mle, kaplan_meier)

Z3 = 3.0                  # two-sided 99.73% normal quantile used for every tolerance below
DOCS = Path(__file__).resolve().parents[1] / "docs" / "stats.md"


def censored_exponential(rng, tau, size, censored_fraction):
    """Exponential escape times with a fixed budget c such that P(T > c) = censored_fraction."""
    budget = -tau * math.log(censored_fraction)
    escape = rng.exponential(tau, size=size)
    return np.minimum(escape, budget), escape > budget, budget


def binomial_tolerance(p, replicates):
    return Z3 * math.sqrt(p * (1.0 - p) / replicates)


# ---------------------------------------------------------------------------------------
# exponential_mle


def test_mle_unbiased_under_heavy_censoring_naive_mean_is_not():
    rng = np.random.default_rng(20260101)
    tau, n, R = 2.0, 10_000, 200
    times, censored, budget = censored_exponential(rng, tau, (R, n), 0.7)
    assert abs(censored.mean() - 0.7) < Z3 * math.sqrt(0.7 * 0.3 / censored.size)

    tau_hat = np.array([exponential_mle(t, c).tau for t, c in zip(times, censored)])
    # The MLE has a finite-sample bias of about 0.85 tau / d (d ~ 3000 escapes per data
    # set), i.e. 0.26 standard errors of the mean of R = 200 replicates (tau / sqrt(d R)):
    # small against the 3-standard-error (99.7%) tolerance.
    se_mean = tau_hat.std(ddof=1) / math.sqrt(R)
    assert abs(tau_hat.mean() - tau) < Z3 * se_mean
    # its spread matches the Fisher standard error tau / sqrt(E d), E d = 0.3 n (a sample
    # standard deviation of R values has relative standard error 1 / sqrt(2 (R - 1)))
    fisher = tau / math.sqrt(0.3 * n)
    assert abs(tau_hat.std(ddof=1) / fisher - 1.0) < Z3 / math.sqrt(2 * (R - 1))

    # Dropping the censored trajectories: the mean of the escape times alone estimates
    # E[T | T < budget] = tau - budget e^{-b/tau} / (1 - e^{-b/tau}), far below tau.
    naive = np.array([t[~c].mean() for t, c in zip(times, censored)])
    se_naive = naive.std(ddof=1) / math.sqrt(R)
    assert (tau - naive.mean()) / se_naive > 100 * Z3      # biased, overwhelmingly significant
    truncated_mean = tau - budget * 0.7 / 0.3
    assert abs(naive.mean() - truncated_mean) < Z3 * se_naive


@pytest.mark.parametrize("interval", ["gamma", "poisson"])
def test_interval_coverage(interval):
    rng = np.random.default_rng(7 if interval == "gamma" else 8)
    tau, n, R = 1.5, 300, 4000
    times, censored, _ = censored_exponential(rng, tau, (R, n), 0.7)   # d ~ 90 escapes
    fits = [exponential_mle(t, c, interval=interval) for t, c in zip(times, censored)]
    covered = np.mean([f.tau_ci[0] <= tau <= f.tau_ci[1] for f in fits])
    tol = binomial_tolerance(0.95, R)                                   # 99.7% binomial band
    if interval == "gamma":
        # approximate under a fixed budget; simulated coverage 0.950 at d ~ 90
        assert abs(covered - 0.95) < tol
    else:
        assert covered > 0.95 - tol                                     # conservative by construction
    one_sided = np.mean([f.tau_lower <= tau for f in fits])
    assert one_sided > 0.95 - tol


def test_one_sided_lower_bound_is_valid_with_few_or_no_escapes():
    rng = np.random.default_rng(11)
    tau, R = 1.0, 4000
    times, censored, _ = censored_exponential(rng, tau, (R, 5), 0.8)   # P(no escape) = 0.8^5 = 0.33
    fits = [exponential_mle(t, c, confidence=0.9) for t, c in zip(times, censored)]
    assert sum(f.tau is None for f in fits) > R / 4
    covered = np.mean([f.tau_lower <= tau for f in fits])
    assert covered > 0.9 - binomial_tolerance(0.9, R)                   # 99.7% binomial band


def test_no_escapes_gives_a_lower_bound_only():
    fit = exponential_mle([10.0, 10.0, 10.0], [True, True, True])
    assert fit.n_escaped == 0 and fit.n_censored == 3 and fit.total_time == 30.0
    assert fit.tau is None and fit.tau_stderr is None and fit.tau_ci is None
    assert fit.rate == 0.0
    assert fit.tau_lower == pytest.approx(30.0 / math.log(20.0), rel=1e-12)   # S / 3.0 at 95%
    assert exponential_mle([10.0] * 3, [1, 1, 1], confidence=0.5).tau_lower == pytest.approx(30 / math.log(2))
    assert "null" in fit.to_json() and "NaN" not in fit.to_json() and "Infinity" not in fit.to_json()
    assert "tau=None" in repr(fit)


def test_mle_formulas_and_exact_interval():
    from scipy import stats

    t = np.array([0.5, 1.0, 2.5, 3.0, 3.0, 3.0])
    c = np.array([False, False, False, True, True, True])
    fit = exponential_mle(t, c, confidence=0.9, time_unit="t")
    S, d = 13.0, 3
    assert (fit.n, fit.n_escaped, fit.n_censored, fit.total_time) == (6, 3, 3, S)
    assert fit.rate == pytest.approx(d / S) and fit.tau == pytest.approx(S / d)
    assert fit.tau_stderr == pytest.approx(S / d / math.sqrt(d))
    lo, hi = 2 * S / stats.chi2.ppf(0.95, 2 * d), 2 * S / stats.chi2.ppf(0.05, 2 * d)
    assert fit.tau_ci == pytest.approx((lo, hi), rel=1e-12)
    assert type(fit.tau_ci[0]) is float and type(fit.tau) is float and type(fit.n) is int
    poisson = exponential_mle(t, c, confidence=0.9, interval="poisson")
    assert poisson.tau_ci[0] == pytest.approx(2 * S / stats.chi2.ppf(0.95, 2 * d + 2), rel=1e-12)
    assert poisson.tau_ci[0] < fit.tau_ci[0] and poisson.tau_ci[1] == fit.tau_ci[1]
    assert fit.tau_lower == pytest.approx(2 * S / stats.chi2.ppf(0.9, 2 * d + 2), rel=1e-12)
    assert set(fit.config) == {"times", "censored", "confidence", "interval", "time_unit"}
    assert fit.censored.dtype == bool and fit.stats["wall_time"] >= 0


# ---------------------------------------------------------------------------------------
# kaplan_meier


def test_km_without_censoring_is_the_empirical_survival_function():
    rng = np.random.default_rng(3)
    t = rng.integers(0, 40, size=500).astype(float)       # integer epochs: many ties
    km = kaplan_meier(t, np.zeros(t.size, bool))
    grid = np.linspace(-1, 45, 1001)
    empirical = (t[None, :] > grid[:, None]).mean(axis=1)
    np.testing.assert_allclose(km.at(grid), empirical, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(km.event_times, np.unique(t))
    np.testing.assert_array_equal(km.n_events, np.unique(t, return_counts=True)[1])
    assert km.survival[-1] == 0.0 and km.stderr[-1] == 0.0
    assert km.ci_high.mask[-1] and km.ci_low[-1] == 0.0
    assert km.at(-5.0) == 1.0 and isinstance(km.at(3.0), float)
    # the median is the smallest time with S <= 1/2, i.e. the lower sample median
    assert km.median == np.sort(t)[(t.size - 1) // 2]


def test_km_matches_exponential_within_greenwood_bands():
    rng = np.random.default_rng(5)
    tau, n = 2.0, 2000
    times, censored, budget = censored_exponential(rng, tau, n, 0.1)
    km = kaplan_meier(times, censored, confidence=0.997)
    probe = tau * np.array([0.1, 0.3, 0.6, 1.0, 1.5, 2.2])
    assert probe.max() < budget
    s = km.at(probe)
    se = km.stderr[np.searchsorted(km.event_times, probe, side="right") - 1]
    # 3 Greenwood sigmas at each of 6 fixed times: family-wise false failure <= 6 x 0.27% = 1.6%
    assert np.all(np.abs(s - np.exp(-probe / tau)) < Z3 * se)
    # median with its 99.7% interval (the true median is tau ln 2)
    assert km.median_ci_low <= km.median <= km.median_ci_high
    assert km.median_ci_low <= tau * math.log(2) <= km.median_ci_high
    assert np.all(km.ci_low <= km.survival) and np.all(km.survival <= km.ci_high)
    assert np.all((km.ci_low >= 0) & (km.ci_high <= 1))
    assert np.all(np.diff(km.survival) <= 0) and np.all(np.diff(km.n_at_risk) < 0)


def test_km_median_interval_coverage():
    rng = np.random.default_rng(9)
    tau, n, R = 1.0, 200, 1000
    times, censored, _ = censored_exponential(rng, tau, (R, n), math.exp(-2.0))
    true_median = tau * math.log(2)
    covered = 0
    for t, c in zip(times, censored):
        km = kaplan_meier(t, c)
        covered += km.median_ci_low <= true_median and (km.median_ci_high is None
                                                        or true_median <= km.median_ci_high)
    assert abs(covered / R - 0.95) < binomial_tolerance(0.95, R)    # 99.7% binomial band


def test_km_hand_example_and_edge_cases():
    km = kaplan_meier([1.0, 2.0, 2.0, 3.0, 4.0], [False, False, True, False, True])
    np.testing.assert_allclose(km.survival, [4 / 5, 4 / 5 * 3 / 4, 4 / 5 * 3 / 4 * 1 / 2])
    np.testing.assert_array_equal(km.n_at_risk, [5, 4, 2])    # censored at t=2 are at risk at t=2
    g = np.cumsum([1 / (5 * 4), 1 / (4 * 3), 1 / (2 * 1)])
    np.testing.assert_allclose(km.stderr, km.survival * np.sqrt(g))
    assert km.median == 3.0 and km.median_ci_high is None
    np.testing.assert_allclose(km.at([0.5, 1.0, 3.9, 100.0]), [1.0, 0.8, 0.3, 0.3])

    none = kaplan_meier([5.0, 6.0], [True, True])
    assert none.event_times.shape == (0,) and none.median is None and none.at(10.0) == 1.0
    high = kaplan_meier([1.0, 2.0, 3.0, 4.0], [False, True, True, True])
    # S = 0.75 stays above 1/2; the lower band reaches it, the upper band does not
    assert high.median is None and high.median_ci_low == 1.0 and high.median_ci_high is None


# ---------------------------------------------------------------------------------------
# bootstrap_ci


def test_bootstrap_is_reproducible_and_leaves_global_state_alone():
    rng = np.random.default_rng(1)
    t, c, _ = censored_exponential(rng, 1.0, 150, 0.5)
    before = np.random.get_state()[1].copy()
    a = bootstrap_ci(t, c, n_resamples=300, rng=123)
    b = bootstrap_ci(t, c, n_resamples=300, rng=123)
    assert a.equal_values(b) and a.seeds == (123,)
    gen = np.random.default_rng(5)
    g1 = bootstrap_ci(t, c, n_resamples=300, rng=gen)
    g2 = bootstrap_ci(t, c, n_resamples=300, rng=gen)          # the generator advanced
    assert not np.array_equal(g1.distribution, g2.distribution)
    replay = bootstrap_ci(t, c, n_resamples=300, rng=g1.seeds[0])
    np.testing.assert_array_equal(replay.distribution, g1.distribution)
    fresh = bootstrap_ci(t, c, n_resamples=300)
    assert len(fresh.seeds) == 1 and 0 <= fresh.seeds[0] < 2 ** 63
    np.testing.assert_array_equal(np.random.get_state()[1], before)


def test_bootstrap_callables_match_builtin():
    rng = np.random.default_rng(2)
    t, c, _ = censored_exponential(rng, 1.0, 120, 0.5)
    builtin = bootstrap_ci(t, c, "tau", n_resamples=400, rng=4)

    def tau(times, censored):
        return times.sum() / np.count_nonzero(~censored)

    def tau_vec(times, censored, axis=-1):
        return times.sum(axis=axis) / np.count_nonzero(~censored, axis=axis)

    for func, vec in ((tau, False), (tau_vec, True)):
        other = bootstrap_ci(t, c, func, n_resamples=400, rng=4, vectorized=vec)
        np.testing.assert_allclose(other.distribution, builtin.distribution, rtol=1e-12)
        assert other.statistic.endswith(func.__name__)
    rate = bootstrap_ci(t, c, "rate", n_resamples=400, rng=4)
    np.testing.assert_allclose(rate.distribution, 1 / builtin.distribution, rtol=1e-12)
    median = bootstrap_ci(t, c, "median", n_resamples=400, rng=4)
    assert median.estimate == kaplan_meier(t, c).median
    idx = np.random.default_rng(4).integers(0, t.size, size=(400, t.size))[:5]   # the first resamples
    medians = [kaplan_meier(t[i], c[i]).median for i in idx]
    assert [math.inf if m is None else m for m in medians] == median.distribution[:5].tolist()


def test_bootstrap_tau_agrees_with_exact_interval():
    rng = np.random.default_rng(12)
    tau, n, B = 1.0, 2000, 2000
    t, c, _ = censored_exponential(rng, tau, n, 0.7)
    fit = exponential_mle(t, c)
    boot = bootstrap_ci(t, c, "tau", n_resamples=B, rng=1)
    assert boot.estimate == pytest.approx(fit.tau, rel=1e-12)
    # The 2.5% order statistic of B resamples has Monte-Carlo sd sqrt(q(1-q)/B)/phi(z_q) =
    # 0.06 sigma (sigma = tau_stderr); allow 5 of those (the bootstrap and chi-square
    # intervals also differ by O(sigma / sqrt(d)), d ~ 600): 0.3 sigma.
    sigma = fit.tau_stderr
    assert abs(boot.low - fit.tau_ci[0]) < 0.3 * sigma
    assert abs(boot.high - fit.tau_ci[1]) < 0.3 * sigma
    # the bootstrap standard error estimates the Fisher one (relative MC error 1/sqrt(2B))
    assert abs(boot.standard_error / sigma - 1) < Z3 / math.sqrt(2 * B)


def test_bootstrap_infinite_replicates_are_reported_not_hidden():
    t = np.array([0.5] + [3.0] * 19)
    c = np.array([False] + [True] * 19)             # one escape: P(resample has none) = 0.95^20 = 0.36
    boot = bootstrap_ci(t, c, "tau", n_resamples=1000, rng=0)
    assert boot.estimate == pytest.approx(t.sum())
    assert boot.high is None and boot.low is not None and boot.standard_error is None
    assert abs(boot.n_infinite / 1000 - 0.95 ** 20) < binomial_tolerance(0.95 ** 20, 1000)
    assert "NaN" not in boot.to_json()
    with pytest.raises(ValueError, match="NaN"):
        bootstrap_ci(t, c, lambda a, b: float("nan"), n_resamples=10, rng=0)


# ---------------------------------------------------------------------------------------
# arrhenius_fit


def arrhenius_data(rng, dU=0.8, tau0=3.0, p=0.0, rel=0.05, temps=None):
    T = np.linspace(0.08, 0.2, 7) if temps is None else temps
    tau = tau0 * T ** p * np.exp(dU / T) * (1.0 + rel * rng.normal(size=T.shape))
    return T, tau, rel * tau


def test_arrhenius_recovers_barrier():
    T, tau, se = arrhenius_data(np.random.default_rng(21))
    fit = arrhenius_fit(1 / T, tau, tau_stderr=se)
    assert fit.ci_method == "normal" and fit.dof == 5
    assert abs(fit.slope - 0.8) < Z3 * fit.slope_stderr
    assert fit.barrier == fit.slope and fit.slope_ci[0] < fit.slope < fit.slope_ci[1]
    # relative error 0.05 is the standard error of ln tau; the intercept is ln tau0, shifted
    # by E ln(1 + noise) ~ -0.05^2 / 2, which the added 0.05^2 covers
    assert abs(fit.intercept - math.log(3.0)) < Z3 * fit.intercept_stderr + 0.05 ** 2
    assert fit.r_squared > 0.99 and 0 < fit.chi2_pvalue < 1
    unweighted = arrhenius_fit(1 / T, tau)
    assert unweighted.ci_method == "t" and unweighted.chi2 is None
    assert abs(unweighted.slope - 0.8) < Z3 * unweighted.slope_stderr
    exact = arrhenius_fit(1 / T, 3.0 * np.exp(0.8 / T))
    assert exact.slope == pytest.approx(0.8, rel=1e-10) and exact.r_squared == pytest.approx(1.0)


@pytest.mark.parametrize("weighted", [True, False])
def test_arrhenius_interval_coverage(weighted):
    rng = np.random.default_rng(31 + weighted)
    R = 2000
    covered = 0
    for _ in range(R):
        T, tau, se = arrhenius_data(rng)
        # exact log-normal noise so that ln tau is Gaussian: both interval kinds are exact
        tau = 3.0 * np.exp(0.8 / T + 0.05 * rng.normal(size=T.shape))
        fit = arrhenius_fit(1 / T, tau, tau_stderr=se if weighted else None)
        covered += fit.slope_ci[0] <= 0.8 <= fit.slope_ci[1]
    assert abs(covered / R - 0.95) < binomial_tolerance(0.95, R)       # 99.7% binomial band


def test_arrhenius_temperature_power_removes_the_bias():
    # width h = 2, n_layers = 4: orbit dimension k = 3, forward escape tau ~ T^(k/2)
    p = 1.5
    T, tau, se = arrhenius_data(np.random.default_rng(41), p=p, rel=0.01, temps=np.linspace(0.1, 0.4, 8))
    with_p = arrhenius_fit(1 / T, tau, tau_stderr=se, temperature_power=p)
    without = arrhenius_fit(1 / T, tau, tau_stderr=se)
    assert abs(with_p.slope - 0.8) < Z3 * with_p.slope_stderr
    # leaving T^p in: local slope dU - p T, biased low by ~ p * mean(T) = 0.37
    assert (0.8 - without.slope) / without.slope_stderr > 10 * Z3
    assert with_p.chi2_pvalue > 1e-3 > without.chi2_pvalue          # the curvature is visible
    # an explicit prefactor T^p is the same correction
    with_pref = arrhenius_fit(1 / T, tau, tau_stderr=se, prefactor=T ** p)
    assert with_pref.slope == pytest.approx(with_p.slope, rel=1e-10)
    assert with_pref.intercept == pytest.approx(with_p.intercept, rel=1e-10)


def test_arrhenius_batch_over_lr():
    # SGD: T = lr / (batch_size C); ln tau against batch_size/lr has slope dU * C
    rng = np.random.default_rng(51)
    lr = np.array([5e-4, 1e-3, 2e-3, 3e-3, 5e-3])
    batch, C, dU = 64, 0.02, 0.03
    T = lr / (batch * C)
    tau = 10.0 * np.exp(dU / T) * (1 + 0.03 * rng.normal(size=lr.size))
    fit = arrhenius_fit(batch / lr, tau, tau_stderr=0.03 * tau, x_is="batch_size/lr")
    assert abs(fit.slope - dU * C) < Z3 * fit.slope_stderr
    assert fit.barrier is None


def test_censored_mle_into_arrhenius_end_to_end():
    # censored escape times at five temperatures (up to ~65% censored) -> MLE tau and its
    # Fisher error -> weighted Arrhenius fit: the 95% slope interval covers the barrier
    rng = np.random.default_rng(71)
    barrier, tau0, budget, R = 0.5, 2.0, 60.0, 400
    temps = np.array([0.12, 0.14, 0.17, 0.2, 0.25])
    covered = 0
    for _ in range(R):
        escape = rng.exponential(tau0 * np.exp(barrier / temps)[:, None], size=(temps.size, 200))
        fits = [exponential_mle(np.minimum(e, budget), e > budget) for e in escape]
        fit = arrhenius_fit(1 / temps, [f.tau for f in fits], tau_stderr=[f.tau_stderr for f in fits])
        covered += fit.slope_ci[0] <= barrier <= fit.slope_ci[1]
    assert abs(covered / R - 0.95) < binomial_tolerance(0.95, R)       # 99.7% binomial band


# ---------------------------------------------------------------------------------------
# storage and input checks


def every_stats_result():
    rng = np.random.default_rng(61)
    t, c, _ = censored_exponential(rng, 1.0, 80, 0.6)
    T, tau, se = arrhenius_data(rng)
    return {
        "mle": exponential_mle(t, c, time_unit="epochs"),
        "mle_none": exponential_mle([4.0, 4.0], [True, True], interval="poisson"),
        "km": kaplan_meier(t, c),
        "km_all_escaped": kaplan_meier([1.0, 2.0, 2.0], [False, False, False]),
        "km_empty": kaplan_meier([3.0], [True]),
        "boot": bootstrap_ci(t, c, "median", n_resamples=200, rng=3),
        "boot_inf": bootstrap_ci([0.5, 3, 3, 3], [False, True, True, True], n_resamples=50, rng=3),
        "arrhenius": arrhenius_fit(1 / T, tau, tau_stderr=se, prefactor=np.sqrt(T), time_unit="t"),
        "arrhenius_t": arrhenius_fit(1 / T, tau),
    }


def test_results_round_trip_through_hdf5(tmp_path):
    path = tmp_path / "stats.h5"
    for name, result in every_stats_result().items():
        save(result, path, name=name)
        loaded = load(path, name)
        assert type(loaded) is type(result)
        assert loaded == result, name
        assert repr(loaded) == repr(result)
        result.to_json()
    assert {ExponentialFit, SurvivalCurve, BootstrapCI, ArrheniusFit} <= {type(r) for r in
                                                                         every_stats_result().values()}


GOOD_T, GOOD_C = [1.0, 2.0, 3.0], [False, True, False]


@pytest.mark.parametrize("func", [exponential_mle, kaplan_meier,
                                  lambda t, c, **kw: bootstrap_ci(t, c, n_resamples=10, rng=0, **kw)])
@pytest.mark.parametrize("times, censored, kwargs, name", [
    ([1.0, -2.0, 3.0], GOOD_C, {}, "times"),
    ([1.0, 2.0], GOOD_C, {}, "times and censored"),
    ([], [], {}, "times"),
    ([1.0, np.nan, 3.0], GOOD_C, {}, "times"),
    ([[1.0, 2.0]], [[True, False]], {}, "times"),
    ([0.0, 0.0], [False, True], {}, "times"),
    (GOOD_T, [0, 2, 1], {}, "censored"),
    (GOOD_T, GOOD_C, {"confidence": 1.0}, "confidence"),
    (GOOD_T, GOOD_C, {"confidence": 0.0}, "confidence"),
    (GOOD_T, GOOD_C, {"confidence": "high"}, "confidence"),
])
def test_bad_survival_input_names_the_parameter(func, times, censored, kwargs, name):
    with pytest.raises(ValueError, match=re.escape(name)):
        func(times, censored, **kwargs)


@pytest.mark.parametrize("kwargs, name", [
    ({"interval": "wald"}, "interval"),
    ({"time_unit": 3}, "time_unit"),
])
def test_bad_mle_options(kwargs, name):
    with pytest.raises(ValueError, match=name):
        exponential_mle(GOOD_T, GOOD_C, **kwargs)


@pytest.mark.parametrize("kwargs, name", [
    ({"statistic": "mean"}, "statistic"),
    ({"n_resamples": 0}, "n_resamples"),
    ({"rng": -1}, "rng"),
    ({"rng": "seed"}, "rng"),
])
def test_bad_bootstrap_options(kwargs, name):
    with pytest.raises(ValueError, match=name):
        bootstrap_ci(GOOD_T, GOOD_C, **kwargs)


X, TAU = [5.0, 7.0, 9.0], [1.0, 2.0, 4.0]


@pytest.mark.parametrize("x, tau, kwargs, name", [
    ([5.0, 7.0], TAU, {}, "x and tau"),
    ([5.0, -7.0, 9.0], TAU, {}, "x"),
    (X, [1.0, 0.0, 4.0], {}, "tau"),
    ([], [], {}, "x and tau must have at least 3"),
    ([5.0, 7.0], [1.0, 2.0], {}, "at least 3"),
    ([5.0, 5.0, 5.0], TAU, {}, "distinct"),
    (X, TAU, {"tau_stderr": [0.1, -0.1, 0.1]}, "tau_stderr"),
    (X, TAU, {"tau_stderr": [0.1, 0.1]}, "tau_stderr"),
    (X, TAU, {"prefactor": [1.0, 1.0]}, "prefactor"),
    (X, TAU, {"temperature_power": float("inf")}, "temperature_power"),
    (X, TAU, {"x_is": "temperature"}, "x_is"),
    (X, TAU, {"confidence": 1.5}, "confidence"),
    (X, TAU, {"absolute_sigma": "yes"}, "absolute_sigma"),
])
def test_bad_arrhenius_input_names_the_parameter(x, tau, kwargs, name):
    with pytest.raises(ValueError, match=re.escape(name)):
        arrhenius_fit(x, tau, **kwargs)


def test_public_names():
    assert set(ps.__all__) == {"ExponentialFit", "exponential_mle", "SurvivalCurve", "kaplan_meier",
                               "BootstrapCI", "bootstrap_ci", "ArrheniusFit", "arrhenius_fit"}


def test_docstring_examples():
    import phasetools.stats._arrhenius
    import phasetools.stats._bootstrap
    import phasetools.stats._censored

    for module in (phasetools.stats._censored, phasetools.stats._bootstrap, phasetools.stats._arrhenius):
        failed, _ = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert failed == 0, module.__name__


def test_docs_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(), flags=re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, str(DOCS), "exec"), {})
