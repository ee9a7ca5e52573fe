"""When the replicas are too few for the barrier, AMS says so (``stats["ln_p_per_replica"]``).

Measured (docs/rare.md, coverage at high barriers): with ``|ln p| / n_replicas`` about 1.5 one
run's ``p_hat`` is so skewed that the mean of 10 runs usually lies below ``p``, so ``tau`` is
biased up (mean ratio to the exact MFPT 1.19 +- 0.06) and the 95 % interval covers the exact
value 86 % of the time (107 of 124); at 0.2-0.3 the coverage is nominal.
"""

import warnings

import numpy as np
import pytest

from phasetools.cli import main
from phasetools.langevin import escape_problem
from phasetools.rare import AMSOptions, escape_time

SMALL = AMSOptions(n_replicas=10, n_kill=1, n_runs=3, n_walkers=10, n_rounds=3)


def test_too_few_replicas_for_the_barrier_warn_and_are_recorded():
    problem = escape_problem("double_well")
    with pytest.warns(RuntimeWarning, match=r"\|ln p\| / n_replicas = .* raise n_replicas to at least") as rec:
        deep = escape_time(problem, temperature=0.25 / 30, dt=0.01, options=SMALL, rng=5)
    # the warning points at this call, not inside phasetools.rare (escape_time is one frame deeper than ams_escape)
    assert [w.filename for w in rec] == [__file__]
    assert deep.stats["ln_p_per_replica"] > 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        shallow = escape_time(problem, temperature=0.25 / 4, dt=0.01, options=SMALL, rng=5)
    assert 0 < shallow.stats["ln_p_per_replica"] < 1.0


def test_rare_escape_cli_prints_the_warning_in_one_line(capsys):
    args = ["rare", "escape", "--barrier-ratio", "30", "--n-replicas", "10", "--n-kill", "1", "--n-runs", "3",
            "--n-walkers", "10", "--n-rounds", "3", "--seed", "5", "--quiet"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("phasetools: warning: dU/T = 30: |ln p| / n_replicas")


def test_ln_p_per_replica_of_no_probability_is_nan():
    # nan used to give 0.0 ("no warning needed") for a p that is no probability
    from phasetools.rare._escape import _ln_p_per_replica

    for p in (float("nan"), float("inf"), 0.0, -0.5):
        assert np.isnan(_ln_p_per_replica(p, 10)), p
    assert _ln_p_per_replica(1.0, 10) == 0.0
    assert _ln_p_per_replica(np.exp(-5.0), 10) == pytest.approx(0.5)


@pytest.mark.slow   # about 6 minutes of one core
@pytest.mark.long   # minutes: outside the default run (pytest -m long)
def test_interval_covers_the_exact_mfpt_at_dU_T_30_with_enough_replicas():
    """100 independent estimates at dU/T = 30 (tau 4.8e13) with N = 100 (|ln p| / N = 0.3, no
    warning): the 95 % interval covers the exact MFPT at a rate consistent with 95 % (exact
    binomial test, as in tests/test_rare.py) and the mean of tau/exact is 1 within 3 standard
    errors: no bias at high barriers (the row of docs/rare.md's coverage table)."""
    from scipy.stats import binomtest

    problem = escape_problem("double_well")
    T = 0.25 / 30
    exact = problem.exact_mfpt(T)
    opts = AMSOptions(n_replicas=100, n_kill=10, n_runs=20, n_walkers=50, n_rounds=10)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        est = [escape_time(problem, temperature=T, dt=0.01, options=opts, rng=130000 + s, n_threads=1)
               for s in range(100)]
    covered = sum(r.tau_lower <= exact <= r.tau_upper for r in est)
    ratio = np.array([r.tau / exact for r in est])
    assert binomtest(covered, len(est), 0.95).pvalue > 0.002, covered
    assert abs(ratio.mean() - 1) < 3 * ratio.std(ddof=1) / np.sqrt(ratio.size), ratio.mean()
