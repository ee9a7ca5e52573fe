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


# -- independent estimates at high barriers: reduced potential and the 3-weight chain --------------
# the options and seeds of `python examples/rare_validation.py --coverage-reduced / --chain-kramers`
# (the first 20 seeds of each row); N = 100 keeps |ln p| / N near 0.2 (no warning)
INDEPENDENT = AMSOptions(n_replicas=100, n_kill=10, n_runs=20, n_walkers=50, n_rounds=10)


def _independent_estimates(problem, ratio, seeds):
    T = problem.barrier / ratio
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        return [escape_time(problem, temperature=T, dt=0.01, options=INDEPENDENT, rng=s, n_threads=1) for s in seeds]


def _check_independent(est, reference):
    """The mean of tau/reference within 3 standard errors (of the spread of the estimates) of 1,
    and the 95 % intervals covering the reference at a rate consistent with 95 %."""
    from scipy.stats import binomtest

    ratio = np.array([r.tau / reference for r in est])
    covered = sum(r.tau_lower <= reference <= r.tau_upper for r in est)
    se = ratio.std(ddof=1) / np.sqrt(ratio.size)
    assert se < 0.05, se                                   # precise enough to mean something
    assert abs(ratio.mean() - 1) < 3 * se, (ratio.mean(), se)
    assert binomtest(covered, len(est), 0.95).pvalue > 0.002, covered


@pytest.mark.slow   # about 1 minute of one core (20 estimates)
@pytest.mark.long   # outside the default run (pytest -m long), to keep the suite under 15 minutes on 2 cores
def test_reduced_four_layers_forward_independent_estimates_at_dU_T_20():
    """The reduced potential, n_layers = 4, forward (paper eta = 0.8, weight decay 0.24; tau =
    1.5e9): 20 independent estimates against the exact 1D mean first-passage time."""
    problem = escape_problem("reduced", n_layers=4, c=0.8, gamma=0.24, direction="fwd", convention="paper")
    est = _independent_estimates(problem, 20, range(3_420_000, 3_420_020))
    _check_independent(est, problem.exact_mfpt(problem.barrier / 20))


# The chain's converged forward MFPT at dU/T = 20 (tau = 6.29675e9), computed here: finite volumes with
# the chain's 24 symmetries folded out (phasetools.rare.chain_exact_mfpt: six grids, quadratic in
# h^2, ~15-25 s on a busy 2-core machine; docs/rare.md). Eyring-Kramers with the 4 saddles is
# 2.95 % below it (0.9705; 0.966 at dU/T = 10 and 15, 0.975 at 25): within the "few per cent" of the
# asymptotics, but as large as the estimates' standard error, so the comparison is with the exact value.
@pytest.fixture(scope="module")
def chain_exact_20():
    from phasetools.rare import chain_exact_mfpt

    problem = escape_problem("chain", n_layers=3, c=0.8, gamma=0.32, direction="fwd", convention="paper")
    return chain_exact_mfpt(problem, problem.barrier / 20)


@pytest.mark.slow   # about 20 s
def test_chain_exact_mfpt_is_precise_far_beyond_the_estimates_error(chain_exact_20):
    """The oracle's stated error: the extrapolation's error (fit scatter 6.8e-6 and the change to
    a cubic, 3.0e-5, of tau) is below 1e-4 of tau (the estimates' own standard error is 3 %),
    and the grids converge monotonically towards it."""
    res = chain_exact_20
    assert res.tau_stderr / res.tau < 1e-4, res.tau_stderr / res.tau
    assert res.tau_stderr > 3 * res.tau_fit_stderr        # the degree's change dominates here
    assert np.all(np.diff(res.taus) < 0) and res.tau < res.taus[-1]
    assert res.taus[-1] / res.tau - 1 < 0.02          # the finest grid alone is 1.2 % high


@pytest.mark.slow   # about 2 minutes
@pytest.mark.long
def test_chain_exact_mfpt_six_grids_agree_with_ten(chain_exact_20):
    """The six grids of the oracle (down to h = 0.55 h0) against ten (down to 0.35 h0, 33k
    unknowns): 6.29675e9 and 6.29676e9, 1.7e-6 apart (docs/rare.md), within the six grids'
    stated error tau_stderr (3.1e-5)."""
    from phasetools.rare import CHAIN_GRIDS, chain_exact_mfpt

    problem = escape_problem("chain", n_layers=3, c=0.8, gamma=0.32, direction="fwd", convention="paper")
    fine = chain_exact_mfpt(problem, problem.barrier / 20, grids=(*CHAIN_GRIDS, 0.5, 0.45, 0.4, 0.35))
    assert abs(chain_exact_20.tau - fine.tau) < chain_exact_20.tau_stderr


def test_chain_exact_mfpt_refuses_other_problems():
    from phasetools.rare import chain_exact_mfpt

    for problem in (escape_problem("chain", n_layers=3, c=0.8, gamma=0.32, direction="bwd", convention="paper"),
                    escape_problem("double_well")):
        with pytest.raises(ValueError, match="problem must be escape_problem"):
            chain_exact_mfpt(problem, 0.01)


def test_chain_exact_mfpt_refuses_too_few_grids_for_the_degree_by_name():
    from phasetools.rare import chain_exact_mfpt

    problem = escape_problem("chain", n_layers=3, c=0.8, gamma=0.32, direction="fwd", convention="paper")
    with pytest.raises(ValueError, match="^grids: a polynomial of degree 2 in h\\^2 needs at least 3"):
        chain_exact_mfpt(problem, problem.barrier / 10, grids=(1.0, 0.9))


def test_chain_exact_mfpt_with_c_negative_stops_below_the_negative_level():
    """c < 0: the stop is P <= level < 0 (downward). The chain with -c is the mirror image of the
    one with c (w_1 -> -w_1), so the MFPT is the same, on the same grid."""
    from phasetools.rare import chain_exact_mfpt

    up, down = (escape_problem("chain", n_layers=3, c=c, gamma=0.32, direction="fwd", convention="paper")
                for c in (0.8, -0.8))
    assert down.stop.direction == "down" and float(down.stop.level) < 0
    taus = [chain_exact_mfpt(p, p.barrier / 10, grids=(1.0,)).tau for p in (up, down)]
    assert taus[1] == pytest.approx(taus[0], rel=1e-10)


@pytest.mark.slow   # about 1.5 minutes of one core (20 estimates), and the oracle
@pytest.mark.long   # outside the default run (pytest -m long), to keep the suite under 15 minutes on 2 cores
def test_chain_independent_estimates_at_dU_T_20_against_the_exact_mfpt(chain_exact_20):
    """The paper's 3-weight chain (eta = 0.8, weight decay 0.32), forward: 20 independent estimates
    against its exact mean first-passage time, which Eyring-Kramers (4 saddles) approaches from
    below (its ratio 0.9705 at this barrier)."""
    problem = escape_problem("chain", n_layers=3, c=0.8, gamma=0.32, direction="fwd", convention="paper")
    T = problem.barrier / 20
    exact = chain_exact_20.tau
    assert problem.theory_tau(T) / exact == pytest.approx(0.9705, abs=0.001)
    est = _independent_estimates(problem, 20, range(4_020_000, 4_020_020))
    _check_independent(est, exact)


def _validation_example():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "rare_validation.py"
    spec = importlib.util.spec_from_file_location("rare_validation_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_chain_kramers_reads_the_exact_mfpt_that_chain_exact_stored(tmp_path):
    """``--chain-exact`` stores, ``--chain-kramers`` reads (no number in the code): a missing file
    names the command that writes it; a stored result is found by dU/T and checked against the
    chain's temperature."""
    from phasetools import io
    from phasetools.rare import chain_exact_mfpt

    ex = _validation_example()
    path = tmp_path / "chain.h5"
    with pytest.raises(FileNotFoundError, match="--chain-exact"):
        ex.stored_chain_exact([20], path=str(path))
    problem = ex._chain()
    res = chain_exact_mfpt(problem, problem.barrier / 20, grids=(1.0, 0.9), degree=1)
    io.save(res, path, name=ex._chain_name(20))
    io.save(res, path, name=ex._chain_name(15))          # stored under the wrong barrier
    stored = ex.stored_chain_exact([20, 25], path=str(path))
    assert list(stored) == [20] and stored[20].tau == res.tau
    with pytest.raises(ValueError, match="computed at T"):
        ex.stored_chain_exact([15], path=str(path))
    one = chain_exact_mfpt(problem, problem.barrier / 25, grids=(1.0,))   # one grid: never extrapolated
    io.save(one, path, name=ex._chain_name(25))
    with pytest.raises(ValueError, match="spacings on 1 grid"):
        ex.stored_chain_exact([25], path=str(path))


def test_chain_kramers_with_an_unusable_stored_result_exits_with_one_line(tmp_path):
    """``--chain-kramers`` with a stored result it cannot use prints one line to stderr and exits
    with status 2 (no traceback)."""
    import subprocess
    import sys
    from pathlib import Path

    from phasetools import io
    from phasetools.rare import chain_exact_mfpt

    ex = _validation_example()
    problem = ex._chain()
    io.save(chain_exact_mfpt(problem, problem.barrier / 20, grids=(1.0,)), tmp_path / ex.CHAIN_FILE,
            name=ex._chain_name(20))
    script = Path(__file__).resolve().parents[1] / "examples" / "rare_validation.py"
    out = subprocess.run([sys.executable, str(script), "--chain-kramers", "--ratios", "20", "--k", "1"],
                         check=False, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert out.returncode == 2, out.stderr
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("error: ") and "Traceback" not in out.stderr
