"""``advance`` on a network potential runs the structured network kernel (as ``simulate`` does).

Against the generated (sympy) kernel, forced by making ``structured_kernel`` return None: the
same random streams give the same steps, stops and updated streams (the same draws), and the
same states and paths to rounding.
"""

import dataclasses

import numpy as np
import pytest

from phasetools.langevin import (
    SGDNoise,
    Threshold,
    _advance,
    advance,
    escape_problem,
    new_streams,
    order_values,
)

N = 6


@pytest.fixture(scope="module")
def problem():
    return escape_problem("network", n_layers=3, c=0.8, gamma=0.32, width=2, direction="bwd", convention="paper")


@pytest.fixture(autouse=True)
def _fresh_memo():
    _advance._STRUCTURED.clear()
    yield
    _advance._STRUCTURED.clear()


def _noise(kind):
    if kind == "additive":
        return {"temperature": 0.1}
    return {"noise": SGDNoise(1.0, 4, [[1.0]], [[0.8]], [[1.0]])}   # strong enough that some stop in 300 steps


def _start(problem):
    rng = np.random.default_rng(0)
    return problem.x0[None] + 0.01 * rng.normal(size=(N, problem.potential.dim))


def _advance_both(problem, monkeypatch, *, stop, n_steps=300, **noise):
    """(structured outcome, its streams, generated outcome, its streams) from the same streams."""
    x = _start(problem)
    s1 = new_streams(3, np.arange(N))
    one = advance(problem.potential, x, s1, dt=0.01, n_steps=n_steps, stop=stop, **noise)
    _advance._STRUCTURED.clear()
    called = []

    def none(*args, **kwargs):
        called.append(args)

    with monkeypatch.context() as m:
        m.setattr(_advance, "structured_kernel", none)
        s2 = new_streams(3, np.arange(N))
        two = advance(problem.potential, x, s2, dt=0.01, n_steps=n_steps, stop=stop, **noise)
    assert called, "the generated route was not forced"
    return one, s1, two, s2


@pytest.mark.parametrize("kind", ["additive", "sgd"])
def test_structured_advance_equals_the_generated_kernel(problem, monkeypatch, kind):
    structured = []
    real = _advance.structured_kernel

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        structured.append(out)
        return out

    monkeypatch.setattr(_advance, "structured_kernel", spy)
    one, s1, two, s2 = _advance_both(problem, monkeypatch, stop=problem.stop, **_noise(kind))
    assert structured and structured[0] is not None, "the structured route was not taken"
    np.testing.assert_array_equal(s1, s2)                 # the same draws, streams left updated alike
    assert not np.array_equal(s1, new_streams(3, np.arange(N)))
    np.testing.assert_array_equal(one.steps, two.steps)
    np.testing.assert_array_equal(one.stopped, two.stopped)
    np.testing.assert_array_equal(one.nonfinite, two.nonfinite)
    assert one.stopped.any() and not one.stopped.all(), "pick a case with both stopped and running trajectories"
    np.testing.assert_allclose(one.x, two.x, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(np.isnan(one.path), np.isnan(two.path))   # NaN after the stop
    np.testing.assert_allclose(one.path, two.path, rtol=0, atol=1e-12)
    np.testing.assert_allclose(one.order, two.order, rtol=0, atol=1e-12)
    rows = np.arange(N)
    np.testing.assert_array_equal(one.path[rows, one.steps - 1], one.x)    # save_every = 1: the last row is x


@pytest.mark.parametrize("kind", ["additive", "sgd"])
def test_structured_advance_in_pieces_equals_one_piece(problem, kind):
    x = _start(problem)
    whole = new_streams(5, np.arange(N))
    one = advance(problem.potential, x, whole, dt=0.01, n_steps=400, **_noise(kind))
    parts = new_streams(5, np.arange(N))
    a = advance(problem.potential, x, parts, dt=0.01, n_steps=200, **_noise(kind))
    b = advance(problem.potential, a.x, parts, dt=0.01, n_steps=200, **_noise(kind))
    assert _advance._STRUCTURED and all(v[2] is not None for v in _advance._STRUCTURED.values())
    np.testing.assert_array_equal(whole, parts)
    np.testing.assert_array_equal(one.x, b.x)
    np.testing.assert_array_equal(one.path[:, :200], a.path)
    np.testing.assert_array_equal(one.path[:, 200:], b.path)


def test_a_stop_on_another_order_parameter_takes_the_generated_kernel(problem, monkeypatch):
    pot = problem.potential
    other = pot.variables[0]   # one weight: not the network's order parameter
    x = _start(problem)
    stop = Threshold(float(x[:, 0].max()) + 0.05, "up", order=other)
    generated = []
    real = _advance._module

    def spy(potential, sgd):
        generated.append(potential.order)
        return real(potential, sgd)

    monkeypatch.setattr(_advance, "_module", spy)
    out = advance(pot, x, new_streams(9, np.arange(N)), temperature=0.2, dt=0.01, n_steps=300, stop=stop)
    assert generated and generated[0] == other
    assert out.stopped.any()
    rows = np.flatnonzero(out.stopped)
    np.testing.assert_array_less(stop.level, out.order[rows, out.steps[rows] - 1] + 1e-300)
    np.testing.assert_array_equal(out.order[rows, out.steps[rows] - 1], out.x[rows, 0])
    # the network's own order parameter as the stop's: the structured kernel again
    generated.clear()
    advance(pot, x, new_streams(9, np.arange(N)), temperature=0.2, dt=0.01, n_steps=10,
            stop=Threshold(problem.stop.level, problem.stop.direction, order=pot.order))
    assert not generated


def test_a_wide_network_compiles_no_generated_kernel(monkeypatch):
    problem = escape_problem("network", n_layers=3, c=0.8, gamma=0.32, width=10, direction="bwd",
                             convention="paper")

    def refuse(*args, **kwargs):
        raise AssertionError("advance used the sympy expression of a network (kernel or numpy functions)")

    monkeypatch.setattr(_advance, "kernel_module", refuse)
    monkeypatch.setattr(_advance, "numpy_functions", refuse)   # the sympy numpy functions (energy, Hessian...) too
    _advance._MODULES.clear()
    x = np.repeat(problem.x0[None], 4, axis=0)
    for noise in ({"temperature": 0.05}, {"noise": SGDNoise(0.05, 4, [[1.0]], [[0.8]], [[1.0]])}):
        out = advance(problem.potential, x, new_streams(1, np.arange(4)), dt=0.001, n_steps=20, stop=problem.stop,
                      **noise)
        assert out.path.shape == (4, 20, problem.potential.dim)
        assert np.isfinite(out.x).all()
        np.testing.assert_allclose(out.order[:, -1], problem.potential.structure.order(out.x), rtol=1e-12)
    assert not _advance._MODULES
    np.testing.assert_allclose(order_values(problem.potential, out.x), out.order[:, -1], rtol=1e-12)


def test_order_values_of_a_network_by_its_structure_equal_the_sympy_ones(problem):
    x = _start(problem)
    x[1, 3] = np.nan
    mine = order_values(problem.potential, x)
    assert _advance._own_structure(problem.potential) is not None
    theirs = _advance.numpy_functions(problem.potential).order(x)
    np.testing.assert_array_equal(np.isnan(mine), np.isnan(theirs))
    assert np.isnan(mine[1])
    np.testing.assert_allclose(mine, theirs, rtol=1e-12, atol=1e-14)
    other = dataclasses.replace(problem.potential, order=problem.potential.variables[0])   # keeps the structure
    assert _advance._own_structure(other) is None
    np.testing.assert_array_equal(order_values(other, x), x[:, 0])
