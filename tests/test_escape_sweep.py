"""Escape sweeps: EscapeEnsemble.fit, escape_sweep / EscapeSweep, and their callers."""

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

from phasetools.langevin import (STATUS_CENSORED, STATUS_ESCAPED, STATUS_NONFINITE, EscapeSweep, Threshold,
                                 escape_problem, escape_sweep, from_sympy, simulate)
from phasetools.stats import arrhenius_fit, exponential_mle

ROOT = Path(__file__).resolve().parents[1]
KW = dict(dt=0.01, n_traj=150, max_steps=10**6)


@pytest.fixture(scope="module")
def reduced():
    return escape_problem("reduced", n_layers=3, c=0.8, gamma=0.32, convention="paper")


@pytest.fixture(scope="module")
def sweep(reduced):
    return escape_sweep(reduced, temperatures=[0.012, 0.009], rng=3, **KW)


@pytest.fixture(scope="module")
def blowup():
    """Trajectories that escape (from +1), run off to -infinity (from -1) or stay (from 0)."""
    x = sp.Symbol("x")
    pot = from_sympy(-x**4, [x])
    x0 = np.repeat([1.0, -1.0, 0.0], 5)[:, None]
    return simulate(pot, x0, temperature=1e-8, dt=0.01, n_traj=15, max_steps=1000, stop=Threshold(3.0), rng=1)


# -- EscapeEnsemble -----------------------------------------------------------------------
def test_status_constants_and_masks(blowup):
    assert (STATUS_CENSORED, STATUS_ESCAPED, STATUS_NONFINITE) == (0, 1, 2)
    assert blowup.escaped.sum() == 5 and blowup.nonfinite.sum() == 5 and blowup.censored.sum() == 5
    assert np.array_equal(blowup.finite, ~blowup.nonfinite)
    assert np.array_equal(blowup.finite, blowup.escaped | blowup.censored)


def test_fit_drops_nonfinite_trajectories(blowup):
    fit = blowup.fit()
    ok = blowup.finite
    ref = exponential_mle(blowup.times[ok], blowup.censored[ok])
    assert (fit.n, fit.n_escaped, fit.n_censored) == (10, 5, 5)
    assert fit.tau == ref.tau and fit.total_time == ref.total_time and fit.time_unit == blowup.convention
    # the old logic of examples/escape_times.py counted the run-offs as escapes
    old = exponential_mle(blowup.times, blowup.censored)
    assert old.n_escaped == 10 and old.tau != fit.tau


def test_fit_options_pass_through(blowup):
    assert blowup.fit(interval="poisson").interval == "poisson"
    assert blowup.fit(confidence=0.9).confidence == 0.9


# -- escape_sweep: the same numbers as the loops it replaced ----------------------------
def test_temperature_sweep_reproduces_the_cli_loop(reduced, sweep):
    temps = np.array([0.012, 0.009])
    root = np.random.SeedSequence(3)
    seeds = [int(s.generate_state(1, dtype=np.uint64)[0]) for s in root.spawn(2)]
    fits = []
    for T, seed, got in zip(temps, seeds, sweep.ensembles):
        ens = simulate(reduced.potential, reduced.x0, temperature=float(T), stop=reduced.stop, rng=seed, **KW)
        assert ens.equal_values(got)
        fits.append(exponential_mle(ens.times[ens.status != 2], ens.censored[ens.status != 2]))
    assert [f.tau for f in fits] == list(sweep.tau) and [f.tau_stderr for f in fits] == list(sweep.tau_stderr)
    arr = arrhenius_fit(1 / temps, [f.tau for f in fits], tau_stderr=[f.tau_stderr for f in fits],
                        time_unit=reduced.potential.convention)
    got = sweep.arrhenius()
    assert got.slope == arr.slope and got.slope_stderr == arr.slope_stderr and got.intercept == arr.intercept
    assert list(sweep.theory_tau) == [reduced.theory_tau(T) for T in temps]
    assert sweep.seeds == (3,) and sweep.x_is == "inverse_temperature" and list(sweep.x) == list(1 / temps)
    assert sweep.barrier == reduced.barrier and sweep.problem == reduced.config


def test_sgd_points_sweep_reproduces_the_cli_loop():
    problem = escape_problem("chain", n_layers=3, c=0.8, gamma=0.32, direction="bwd", convention="paper")
    points, kw = [(0.08, 2), (0.16, 8)], dict(dt=0.02, n_traj=60, max_steps=10**5)
    sw = escape_sweep(problem, points=points, n_samples=64, rng=[5, 6], **kw)
    theory = problem.sgd_theory()
    for (lr, b), seed, got, fit in zip(points, (5, 6), sw.ensembles, sw.fits):
        ens = simulate(problem.potential, problem.x0, noise=problem.sgd_noise(lr, b, n_samples=64),
                       stop=problem.stop, rng=seed, **kw)
        assert ens.equal_values(got)
        assert fit.tau == exponential_mle(ens.times, ens.censored).tau
    assert list(sw.theory_tau) == [theory.tau(lr, b, 64) for lr, b in points]
    assert list(sw.temperature) == [theory.temperature(lr, b, 64) for lr, b in points]
    assert sw.noise == "sgd" and sw.x_is == "batch_size/lr" and list(sw.x) == [25.0, 50.0]
    assert sw.lr.tolist() == [0.08, 0.16] and sw.batch_size.tolist() == [2, 8] and sw.n_samples == 64
    assert sw.seeds is None and sw.labels() == ["lr = 0.08, B = 2", "lr = 0.16, B = 8"]
    assert sw.arrhenius().x_is == "batch_size/lr"


def test_per_point_rngs_match_single_simulations(reduced):
    sw = escape_sweep(reduced, temperatures=[0.012], rng=[1000], dt=0.01, n_traj=50, max_steps=10**5)
    ens = simulate(reduced.potential, reduced.x0, temperature=0.012, dt=0.01, n_traj=50, max_steps=10**5,
                   stop=reduced.stop, rng=1000)
    assert sw.ensembles[0].equal_values(ens)
    arr = escape_sweep(reduced, temperatures=[0.012], rng=np.array([1000]), dt=0.01, n_traj=50, max_steps=10**5)
    assert arr.ensembles[0].equal_values(ens) and arr.seeds is None


def test_arrhenius_is_none_without_two_points_with_escapes(reduced):
    sw = escape_sweep(reduced, temperatures=[0.012, 0.009], dt=0.01, n_traj=5, max_steps=2, rng=1)
    assert sw.n_escaped.tolist() == [0, 0] and np.isnan(sw.tau).all() and (sw.tau_lower > 0).all()
    assert sw.arrhenius() is None
    one = escape_sweep(reduced, temperatures=[0.012, 0.012], rng=1, **KW)   # two points, one x
    assert one.arrhenius() is None


@pytest.mark.parametrize("kwargs, needle", [
    ({}, "exactly one of temperatures"),
    ({"temperatures": [0.01], "points": [(0.1, 2)]}, "exactly one of temperatures"),
    ({"temperatures": []}, "non-empty 1-D"),
    ({"temperatures": [0.01, 0.02], "rng": [1]}, "one entry per point"),
    ({"points": [(0.1, 2)]}, "SGD-like noise needs a model with an end-to-end map"),
    ({"points": [0.1]}, "points must be a sequence of"),
])
def test_bad_input(reduced, kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        escape_sweep(reduced, dt=0.01, n_traj=4, max_steps=10, **kwargs)


def test_problem_must_be_an_escape_problem():
    with pytest.raises(ValueError, match="problem must be an EscapeProblem"):
        escape_sweep("chain", temperatures=[0.01], dt=0.01, n_traj=4, max_steps=10)


# -- EscapeSweep as a result ------------------------------------------------------------
def test_from_ensembles_gives_the_reproduction_fit(sweep):
    ens = list(sweep.ensembles)
    temps = np.array([e.temperature for e in ens])
    fits = [exponential_mle(e.times[e.status != 2], e.censored[e.status != 2]) for e in ens]
    old = arrhenius_fit(1 / temps, [f.tau for f in fits], tau_stderr=[f.tau_stderr for f in fits], time_unit="paper")
    new = EscapeSweep.from_ensembles(ens).arrhenius()
    assert (new.slope, new.slope_stderr, new.intercept) == (old.slope, old.slope_stderr, old.intercept)
    assert new.stats.keys() == old.stats.keys()       # nothing written into a result after it is made
    with pytest.raises(ValueError, match="taken from the ensembles"):
        EscapeSweep.from_ensembles(ens, temperature=[1.0, 2.0])
    with pytest.raises(ValueError, match="one value per point"):
        EscapeSweep.from_ensembles(ens, theory_tau=[1.0])


def test_from_ensembles_refuses_mixed_noise(sweep):
    problem = escape_problem("chain", n_layers=3, c=0.8, gamma=0.32, direction="bwd", convention="paper")
    sgd = simulate(problem.potential, problem.x0, noise=problem.sgd_noise(0.08, 2), dt=0.02, n_traj=4,
                   max_steps=10, stop=problem.stop, rng=1)
    with pytest.raises(ValueError, match="not a mix"):
        EscapeSweep.from_ensembles([sweep.ensembles[0], sgd])


def test_sweep_is_frozen_stored_and_reloaded(sweep, tmp_path):
    from phasetools.io import load, save

    with pytest.raises(dataclasses.FrozenInstanceError):
        sweep.fits = ()
    name = save(sweep, tmp_path / "s.h5")
    back = load(tmp_path / "s.h5", name)
    assert isinstance(back, EscapeSweep) and back.equal_values(sweep)
    assert back.arrhenius().slope == sweep.arrhenius().slope
    assert "EscapeSweep(noise='additive', n_points=2" in repr(back)
    assert sweep.fit() == list(sweep.fits) and sweep.fit(confidence=0.9)[0].confidence == 0.9


def test_figures_of_a_sweep(sweep, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import phasetools.plot as P

    s = P.survival(sweep)
    labels = [t.get_text() for t in s.axes[0].get_legend().get_texts()]
    assert any(t.startswith("T = 0.012: simulated") for t in labels) and any("theory tau" in t for t in labels)
    a = P.arrhenius(sweep)
    assert a.axes[0].get_xlabel() == "1 / temperature" and "paper" in a.axes[0].get_ylabel()
    assert P.plot(sweep).axes[0].get_ylabel().startswith("survival")
    assert P.plot(sweep, "arrhenius").axes[0].get_xlabel() == "1 / temperature"
    assert a.save(tmp_path / "a.png")[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_callers_use_named_status_not_numbers():
    files = [*(ROOT / "phasetools" / "cli").glob("*.py"), *(ROOT / "phasetools" / "plot").glob("*.py"),
             *(ROOT / "phasetools" / "reproduce").glob("*.py"), *(ROOT / "phasetools" / "langevin").glob("*.py"),
             ROOT / "examples" / "escape_times.py", ROOT / "examples" / "sgd_escape.py"]
    bare = re.compile(r"status\s*(?:[!=]=|<|>)\s*\d")
    hits = [f"{f.name}:{i + 1}" for f in files for i, line in enumerate(f.read_text().splitlines())
            if bare.search(line)]
    assert hits == []


def test_the_loop_has_one_home():
    """The callers build no per-point exponential/Arrhenius loop of their own any more."""
    for rel in ("phasetools/cli/_main.py", "phasetools/reproduce/_run.py", "phasetools/plot/_figures.py",
                "examples/escape_times.py", "examples/sgd_escape.py"):
        text = (ROOT / rel).read_text()
        assert "exponential_mle(" not in text, rel
        if rel != "examples/sgd_escape.py":   # which fits the exact 1D times too, for comparison
            assert "arrhenius_fit(" not in text, rel
