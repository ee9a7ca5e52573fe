"""Adaptive multilevel splitting (phasetools.rare) against exact 1D times and brute force.

Tolerances come from the estimate's own interval (the spread of its independent AMS runs):
an exact value must lie within 3 standard errors, and the standard error must be small
enough for the comparison to mean something.
"""

import contextlib
import dataclasses

import numpy as np
import pytest

from phasetools import io
from phasetools.langevin import (
    Threshold,
    advance,
    double_well,
    escape_problem,
    new_streams,
    simulate,
)
from phasetools.rare import AMSEscape, AMSOptions, ams_escape, escape_time

# 20 runs: the spread of fewer runs of a right-skewed estimator understates its variance
FAST = AMSOptions(n_replicas=50, n_kill=2, n_runs=20, n_walkers=50, n_rounds=10)


def _check_against(res, exact, max_rel_se):
    """``exact`` inside the estimate's interval at 3 standard errors (log-normal, as ``tau_lower/upper``)."""
    rel = res.tau_stderr / res.tau
    assert rel < max_rel_se, f"not precise enough: se/tau = {rel:.3f}"
    assert abs(np.log(res.tau / exact)) < 3 * rel, (res, exact, res.tau / exact)


# -- the engine capability ---------------------------------------------------------------------
def test_advance_in_pieces_equals_one_piece_and_simulate():
    pot = double_well()
    x = np.full((6, 1), -1.0)
    whole = new_streams(7, np.arange(6))
    one = advance(pot, x, whole, temperature=0.1, dt=0.01, n_steps=400)
    parts = new_streams(7, np.arange(6))
    a = advance(pot, x, parts, temperature=0.1, dt=0.01, n_steps=200)
    b = advance(pot, a.x, parts, temperature=0.1, dt=0.01, n_steps=200)
    np.testing.assert_array_equal(one.x, b.x)
    np.testing.assert_array_equal(whole, parts)
    np.testing.assert_array_equal(one.order[:, 200:], b.order)
    ref = simulate(pot, x[0], temperature=0.1, dt=0.01, n_traj=6, max_steps=400, rng=7)
    np.testing.assert_array_equal(ref.final, one.x)


def test_advance_stops_at_the_level_and_reports_the_path():
    pot = double_well()
    out = advance(pot, np.full((4, 1), -1.0), new_streams(1, np.arange(4)), temperature=0.1, dt=0.01, n_steps=5000,
                  stop=Threshold(-0.8, "up"))
    assert out.stopped.all()
    last = out.order[np.arange(4), out.steps - 1]
    np.testing.assert_array_equal(last, out.x[:, 0])
    assert np.all(last >= -0.8)
    assert np.isnan(out.order[np.arange(4), np.minimum(out.steps, 4999)]).all()


# -- inputs ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, match", [
    ({"n_replicas": 1}, "n_replicas"), ({"n_kill": 50}, "n_kill"), ({"n_runs": 1}, "n_runs"),
    ({"level_quantile": 0.4}, "level_quantile"), ({"confidence": 1.5}, "confidence")])
def test_bad_options_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AMSOptions(**{"n_replicas": 50, **kwargs})


def test_bad_levels_are_refused():
    pot = double_well()
    with pytest.raises(ValueError, match="start, level and target"):
        ams_escape(pot, [-1.0], target=1.0, start=-0.5, level=-0.9, temperature=0.05, dt=0.01, options=FAST)
    with pytest.raises(ValueError, match="both start and level"):
        ams_escape(pot, [-1.0], target=1.0, start=-0.9, temperature=0.05, dt=0.01, options=FAST)
    with pytest.raises(ValueError, match="past the target"):
        ams_escape(pot, [-1.0], target=-1.5, temperature=0.05, dt=0.01, options=FAST)
    with pytest.raises(ValueError, match="dt"):
        ams_escape(pot, [-1.0], target=1.0, temperature=0.05, dt=5.0, options=FAST)


# -- reproducibility --------------------------------------------------------------------------
def test_same_seed_same_estimate_for_any_thread_count(monkeypatch):
    import phasetools.rare._engine as engine

    problem = escape_problem("double_well")
    small = dataclasses.replace(FAST, n_replicas=20, n_kill=2, n_runs=3, n_walkers=20, n_rounds=3)
    one = escape_time(problem, temperature=0.05, dt=0.01, options=small, rng=5, n_threads=1)
    monkeypatch.setattr(engine, "_PARALLEL_WORK", 0)     # every call parallel
    two = escape_time(problem, temperature=0.05, dt=0.01, options=small, rng=5, n_threads=2)
    assert one.equal_values(two)
    other = escape_time(problem, temperature=0.05, dt=0.01, options=small, rng=6, n_threads=1)
    assert other.tau != one.tau


def test_result_stores_and_loads(tmp_path):
    problem = escape_problem("double_well")
    small = dataclasses.replace(FAST, n_replicas=10, n_kill=1, n_runs=2, n_walkers=10, n_rounds=2)
    res = escape_time(problem, temperature=0.05, dt=0.01, options=small, rng=1)
    io.save(res, tmp_path / "ams.h5")
    back = io.load(tmp_path / "ams.h5")
    assert isinstance(back, AMSEscape) and back.equal_values(res)
    assert res.cost["total"] == res.cost["levels"] + res.cost["loops"] + res.cost["ams"] > 0


# -- validation against exact 1D mean first-passage times ------------------------------------
@pytest.mark.parametrize("ratio", [5, 10])
def test_double_well_against_the_exact_mfpt(ratio):
    problem = escape_problem("double_well")
    res = escape_time(problem, temperature=0.25 / ratio, dt=0.01, options=FAST, rng=1)
    _check_against(res, problem.exact_mfpt(0.25 / ratio), 0.15)


@pytest.mark.parametrize("direction", ["fwd", "bwd"])
def test_reduced_three_layers_against_the_exact_mfpt(direction):
    problem = escape_problem("reduced", n_layers=3, c=0.8, gamma=0.32, direction=direction, convention="paper")
    T = problem.barrier / 10
    res = escape_time(problem, temperature=T, dt=0.01, options=FAST, rng=1)
    _check_against(res, problem.exact_mfpt(T), 0.15)


def test_double_well_agrees_with_brute_force():
    problem = escape_problem("double_well")
    res = escape_time(problem, temperature=0.05, dt=0.01, options=FAST, rng=3)
    brute = simulate(problem.potential, problem.x0, temperature=0.05, dt=0.01, n_traj=1000, max_steps=10**7,
                     stop=problem.stop, rng=3).fit()
    se = np.hypot(res.tau_stderr, brute.tau_stderr)
    assert abs(res.tau - brute.tau) < 3 * se, (res.tau, brute.tau, se)


# -- the known bias of too few replicas -------------------------------------------------------
@pytest.mark.slow   # about a minute
def test_too_few_replicas_bias_log_p_as_predicted_and_p_stays_unbiased():
    """With ``n_kill = 1`` the idealised AMS has ``p_hat = (1 - 1/N)^J``, ``J ~ Poisson(-N ln p)``:
    ``p_hat`` is unbiased, but ``E[ln p_hat] = -N ln(1 - 1/N) ln p``, below ``ln p`` by about
    ``|ln p| / (2N)`` (and ``1/p_hat`` of one run is biased up by ``p^(-1/(N-1))``). Check both
    at N = 4 against a precise p, and that the log bias shrinks as N grows."""
    pot = double_well()
    common = dict(target=1.0, start=-0.95, level=-0.7, temperature=0.05, dt=0.01, rng=11)
    ref = ams_escape(pot, [-1.0], options=AMSOptions(n_replicas=200, n_kill=10, n_runs=10, n_walkers=50,
                                                     n_rounds=4), **common)
    ln_p = np.log(ref.p)
    exact = escape_problem("double_well").exact_mfpt(0.05)
    biases, single = {}, {}
    for n in (4, 32):
        # |ln p| is about 5: N = 4 is in the skewed regime the estimate warns about, N = 32 is not
        warns = pytest.warns(RuntimeWarning, match="n_replicas") if n == 4 else contextlib.nullcontext()
        with warns:
            res = ams_escape(pot, [-1.0], options=AMSOptions(n_replicas=n, n_kill=1, n_runs=300, n_walkers=100,
                                                             n_rounds=4), **common)
        logs = np.log(res.p_runs)
        predicted = -n * np.log1p(-1.0 / n) * ln_p
        se = np.hypot(np.std(logs, ddof=1) / np.sqrt(logs.size), ref.p_stderr / ref.p)
        assert abs(np.mean(logs) - predicted) < 3 * se, (n, np.mean(logs), predicted, se)
        biases[n] = np.mean(logs) - ln_p
        # p_hat itself is unbiased at any N, and so is tau built from the runs' mean
        assert abs(res.p - ref.p) < 3 * np.hypot(res.p_stderr, ref.p_stderr)
        assert abs(np.log(res.tau / exact)) < 3 * res.tau_stderr / res.tau, (n, res.tau, exact)
        # the escape time of one run, 1/p_hat, is biased up by about p^(-1/(N-1))
        single[n] = np.mean(ref.p / res.p_runs[res.p_runs > 0])
    assert biases[4] < -0.1 * abs(ln_p) and abs(biases[32]) < abs(biases[4]) / 3
    assert single[4] > 3 and 1 < single[32] < 1.6 and single[32] < single[4] / 3


# -- deep barriers (slow) ---------------------------------------------------------------------
DEEP = AMSOptions(n_replicas=100, n_kill=5, n_runs=20, n_walkers=50, n_rounds=10)


@pytest.mark.slow
@pytest.mark.parametrize("ratio, n_replicas", [(20, 100), (30, 200)])   # |ln p| grows: more replicas
def test_double_well_deep_barriers_against_the_exact_mfpt(ratio, n_replicas):
    problem = escape_problem("double_well")
    res = escape_time(problem, temperature=0.25 / ratio, dt=0.01,
                      options=dataclasses.replace(DEEP, n_replicas=n_replicas), rng=1)
    _check_against(res, problem.exact_mfpt(0.25 / ratio), 0.15)


@pytest.mark.slow
@pytest.mark.parametrize("n_layers, gamma", [(3, 0.32), (4, 0.24)])
@pytest.mark.parametrize("direction", ["fwd", "bwd"])
@pytest.mark.parametrize("ratio", [5, 20])
def test_reduced_potentials_against_the_exact_mfpt(n_layers, gamma, direction, ratio):
    problem = escape_problem("reduced", n_layers=n_layers, c=0.8, gamma=gamma, direction=direction,
                             convention="paper")
    T = problem.barrier / ratio
    res = escape_time(problem, temperature=T, dt=0.01, options=DEEP, rng=1)
    _check_against(res, problem.exact_mfpt(T), 0.15)


@pytest.mark.slow
@pytest.mark.parametrize("ratio", [10, 25])
def test_chain_against_eyring_kramers_with_four_saddles(ratio):
    """The paper's three-weight chain, forward: Eyring-Kramers (4 saddles) is accurate to a few
    per cent at these barriers; AMS must agree within its interval."""
    problem = escape_problem("chain", n_layers=3, c=0.8, gamma=0.32, direction="fwd", convention="paper")
    T = problem.barrier / ratio
    res = escape_time(problem, temperature=T, dt=0.01, options=DEEP, rng=1)
    _check_against(res, problem.theory_tau(T), 0.15)


# -- AMS over the real SGD trainer (slow) -------------------------------------------------------
@pytest.mark.slow
def test_sgd_trainer_ams_agrees_with_brute_force_where_affordable():
    """The paper's chain trained by SGD with replacement (lr 0.08, B = 4, 512 samples), backward from
    the learned state to the top singular value 0.25: AMS over the trainer against brute force by
    the same trainer (a few hundred runs reach it within 40 epochs)."""
    from phasetools.rare import ams_training_escape
    from phasetools.rare._engine import excursions
    from phasetools.rare._training import TrainingEngine
    from phasetools.stats import exponential_mle
    from phasetools.training import GaussianTeacher

    X, Y = GaussianTeacher([0.8]).sample(512, 1)
    b0 = escape_problem("chain", n_layers=3, c=0.8, gamma=0.32, direction="bwd", convention="paper").x0
    init = [np.full((1, 1), v) for v in b0]
    kw = dict(n_layers=3, width=1, lr=0.08, batch_size=4, weight_decay=0.32)
    res = ams_training_escape((X, Y), init, **kw, target=0.25, direction="down", start=0.534, level=0.386,
                              options=AMSOptions(n_replicas=50, n_kill=5, n_runs=20, n_walkers=50, n_rounds=4), rng=1)
    engine = TrainingEngine((X, Y), **kw, sampling="replacement", convention="paper",
                            coordinate=lambda M: np.linalg.svd(M, compute_uv=False)[:, 0], sign=-1.0,
                            shapes=[(1, 1)] * 3)
    n = 300
    x = np.repeat(np.asarray(b0)[None, :], n, axis=0)
    ex = excursions(engine, x, engine.streams(2, np.arange(n)), low=-np.inf, high=-0.25, max_steps=40 * 128,
                    chunk=1024)
    brute = exponential_mle(ex.steps * engine.time_unit, ex.outcome != 2)
    assert res.tau_stderr / res.tau < 0.2 and brute.tau_stderr / brute.tau < 0.2
    se = np.hypot(res.tau_stderr, brute.tau_stderr)
    assert abs(res.tau - brute.tau) < 3 * se, (res.tau, brute.tau, se)


def test_sgd_ams_refuses_bad_inputs():
    from phasetools.rare import ams_training_escape

    X, Y = np.ones((8, 1)), np.ones((8, 1))
    init = [np.full((1, 1), 0.7)] * 3
    kw = dict(n_layers=3, width=1, lr=0.08, batch_size=4, weight_decay=0.32, target=0.05, direction="down")
    with pytest.raises(ValueError, match="coordinate"):
        ams_training_escape((X, Y), init, **kw, coordinate="top")
    with pytest.raises(ValueError, match="sampling"):
        ams_training_escape((X, Y), init, **kw, sampling="full")
    with pytest.raises(ValueError, match="n_layers"):
        ams_training_escape((X, Y), init[:2], **kw)
    with pytest.raises(ValueError, match="past the target"):
        ams_training_escape((X, Y), init, **{**kw, "target": 0.9})


# -- honest error bars: coverage of the interval, and the bias of few replicas ------------------
COVERAGE = AMSOptions(n_replicas=20, n_kill=2, n_runs=10, n_walkers=20, n_rounds=5)


def _binomial_ok(k, n, rate, alpha=0.002):
    """``k`` successes in ``n`` trials consistent with ``rate`` (two-sided exact binomial test)."""
    from scipy.stats import binomtest

    return binomtest(k, n, rate).pvalue > alpha


def test_binomial_tolerance_refuses_a_wrong_coverage():
    assert _binomial_ok(190, 200, 0.95) and _binomial_ok(185, 200, 0.95)
    assert not _binomial_ok(170, 200, 0.95)          # 85 %: intervals about 30 % too narrow


@pytest.mark.slow   # about 3 minutes
def test_interval_covers_the_exact_mfpt_at_the_nominal_rate():
    """200 independent AMS estimates (cheap options: N = 20, 10 runs) of the double-well escape at
    dU/T = 8 against the exact MFPT (Euler at dt = 0.01 agrees with it to 1.6 %, brute force): the
    nominal 95 % interval covers it in a fraction consistent with 95 % (exact binomial test), and
    the mean of the estimates is unbiased within its standard error."""
    problem = escape_problem("double_well")
    T = 0.25 / 8
    exact = problem.exact_mfpt(T)
    est = [escape_time(problem, temperature=T, dt=0.01, options=COVERAGE, rng=1000 + s, n_threads=1)
           for s in range(200)]
    covered = sum(r.tau_lower <= exact <= r.tau_upper for r in est)
    ratio = np.array([r.tau / exact for r in est])
    assert _binomial_ok(covered, len(est), 0.95), (covered, len(est))
    assert abs(ratio.mean() - 1) < 3 * ratio.std(ddof=1) / np.sqrt(ratio.size), ratio.mean()


# -- parallel workers, reactive trajectories, the level record ----------------------------------
def test_same_seed_same_estimate_for_any_worker_count():
    problem = escape_problem("double_well")
    small = AMSOptions(n_replicas=10, n_kill=1, n_runs=3, n_walkers=10, n_rounds=3)
    one = escape_time(problem, temperature=0.05, dt=0.01, options=small, rng=5)
    two = escape_time(problem, temperature=0.05, dt=0.01, options=small, rng=5, n_workers=2)
    assert one.equal_values(two)
    assert two.stats["n_workers"] == 2


def test_reactive_trajectories_are_kept_and_do_not_change_the_estimate():
    problem = escape_problem("double_well")
    small = AMSOptions(n_replicas=20, n_kill=2, n_runs=4, n_walkers=20, n_rounds=3)
    plain = escape_time(problem, temperature=0.05, dt=0.01, options=small, rng=5)
    kept = escape_time(problem, temperature=0.05, dt=0.01, options=dataclasses.replace(small, keep_paths=True), rng=5)
    assert kept.tau == plain.tau and plain.reactive_paths is None
    paths = kept.reactive()
    assert len(paths) == round(float(np.sum(kept.final_fraction)) * 20)
    for x, r in zip(paths, kept.reactive_runs):
        assert x[0, 0] >= kept.level and x[-1, 0] >= kept.target      # from Sigma's entrance to B
        assert np.all(x[1:-1, 0] < kept.target) and np.all(x[1:, 0] > kept.start)
    for r in range(kept.n_runs):                                       # durations are the reactive times
        lengths = kept.reactive_lengths[kept.reactive_runs == r]
        np.testing.assert_allclose(np.mean(lengths - 1) * kept.dt, kept.t_reactive_runs[r])
    with pytest.raises(ValueError, match="keep_paths"):
        plain.reactive()
    none = dataclasses.replace(kept, reactive_paths=np.zeros((0, 1)), reactive_lengths=np.zeros(0, dtype=np.int64),
                               reactive_runs=np.zeros(0, dtype=np.int64))
    assert none.reactive() == []


def test_level_record_gives_each_run_its_estimate():
    problem = escape_problem("double_well")
    small = AMSOptions(n_replicas=20, n_kill=2, n_runs=4, n_walkers=20, n_rounds=3)
    res = escape_time(problem, temperature=0.05, dt=0.01, options=small, rng=2)
    assert res.levels.size == np.sum(res.n_iterations)
    for r in range(res.n_runs):
        z, prob = res.level_curve(r)
        assert np.all(np.diff(z) >= 0) and np.all(np.diff(prob) <= 0)
        assert prob[-1] * res.final_fraction[r] == pytest.approx(res.p_runs[r])
    z, prob = res.level_curve()
    assert prob[0] == 1.0 and np.all(np.diff(prob) <= 1e-12) and prob[-1] >= res.p * (1 - 1e-12)


@pytest.mark.slow   # about 4 minutes
def test_sgd_escapes_to_the_standard_backward_level_go_up_first():
    """Why AMS with sv1 fails at lam_saddle / 2 (docs/rare.md): in brute force most escape steps
    start from sv1 far *above* the well (then one step falls past the target), so a score that
    measures progress down in sv1 kills those paths first."""
    from phasetools.rare import TrainingEngine
    from phasetools.training import GaussianTeacher

    X, Y = GaussianTeacher([0.8]).sample(512, 1)
    b0 = escape_problem("chain", n_layers=3, c=0.8, gamma=0.32, direction="bwd", convention="paper").x0
    eng = TrainingEngine((X, Y), n_layers=3, width=1, lr=0.08, batch_size=4, weight_decay=0.32,
                         sampling="replacement", convention="paper", sign=1.0, shapes=[(1, 1)] * 3,
                         coordinate=lambda M: np.linalg.svd(M, compute_uv=False)[:, 0])
    n, target = 100, 0.0462726
    x = np.repeat(np.asarray(b0)[None, :], n, axis=0)
    streams = eng.streams(3, np.arange(n))
    prev, alive, pre, well = eng.coordinate(x), np.ones(n, bool), [], []
    for c in range(-(-1562 * eng.steps_per_epoch // eng.max_chunk)):
        idx = np.nonzero(alive)[0]
        s = streams[idx]
        xe, _, _, xi, _ = eng.advance(x[idx], s, eng.max_chunk, -np.inf)
        streams[idx] = s
        full = np.concatenate([prev[idx][:, None], xi], axis=1)
        well.append(xi[:, ::64].ravel())
        for j, i in enumerate(idx):
            hit = np.nonzero(full[j, 1:] <= target)[0]
            if hit.size:
                pre.append(full[j, hit[0]])
                alive[i] = False
        x[idx], prev[idx] = xe, xi[:, -1]
    median = np.median(np.concatenate(well))
    assert len(pre) >= 5
    assert np.mean(np.array(pre) > 2 * median) >= 0.6, (pre, median)
