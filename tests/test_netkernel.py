"""The structured network kernel (langevin/_netkernel.py): drift, noise, order parameters and
stops against independent references and against the generated (sympy) kernel on the same
random streams; one compilation for every shape; threads and replay.

The generated kernel of a network is only affordable at width <= 2, so the two kernels are
compared there (``network(..., kernel="sympy")``); wider networks are checked against numpy.
"""

import numpy as np
import pytest

from phasetools.langevin import SGDNoise, Threshold, escape_problem, network, replay, simulate
from phasetools.langevin import _netkernel as nk
from phasetools.langevin._codegen import numpy_functions
from phasetools.langevin._structured import structured_kernel


def _case(d_in=2, d_out=2, seed=31):
    rng = np.random.default_rng(seed)
    B = rng.normal(size=(d_in + d_out,) * 2)
    joint = B @ B.T + (d_in + d_out) * np.eye(d_in + d_out)   # joint covariance of (x, y)
    return joint, joint[:d_in, :d_in], joint[d_in:, :d_in], joint[d_in:, d_in:]


def _weights(st, theta):
    return [np.array(w) for w in st.weights(theta)]


# --- drift and order parameters ---------------------------------------------------------------
@pytest.mark.parametrize("n_layers,width,d_in,d_out", [(2, 3, 2, 2), (3, 4, 3, 2), (4, 2, 1, 3), (3, 1, 1, 1)])
def test_drift_equals_the_training_kernels_gradient(n_layers, width, d_in, d_out):
    """The kernel's products and back-propagation give the training kernel's gradient of the same
    population loss to rounding (and the numpy reference and the sympy gradient agree)."""
    from phasetools.training import Moments, batch_gradient

    _, sxx, syx, syy = _case(d_in, d_out)
    pot = network(n_layers, width, sxx, syx, 0.0)
    st = pot.structure
    theta = np.random.default_rng(2).normal(scale=0.7, size=(3, pot.dim))
    mine = st.gradient(theta)
    for row, g in zip(theta, mine):
        ref = np.concatenate([w.ravel() for w in batch_gradient(_weights(st, row), Moments(sxx, syx, syy))])
        np.testing.assert_allclose(g, ref, rtol=1e-13, atol=1e-13 * np.abs(ref).max())
    np.testing.assert_allclose(mine, st.gradient_numpy(theta), rtol=1e-12, atol=1e-12 * np.abs(mine).max())
    if pot.dim <= 12:
        sym = np.array([numpy_functions(pot).grad(row) for row in theta], dtype=float)
        np.testing.assert_allclose(mine, sym, rtol=1e-12, atol=1e-12 * np.abs(mine).max())


def test_weight_decay_and_convention_enter_the_drift():
    _, sxx, syx, _ = _case()
    pot = network(3, 2, sxx, syx, 0.3, convention="paper")
    theta = np.random.default_rng(3).normal(size=pot.dim)
    sym = np.asarray(numpy_functions(pot).grad(theta), dtype=float)
    np.testing.assert_allclose(pot.structure.gradient(theta), sym, rtol=1e-12, atol=1e-13)


def test_order_parameters_are_u_M_v_and_the_singular_values():
    _, sxx, syx, _ = _case()
    theta = np.random.default_rng(4).normal(size=(5, 12))
    st = network(3, 2, sxx, syx, 0.1).structure
    M = [np.linalg.multi_dot(_weights(st, row)[::-1]) for row in theta]
    U, _, Vt = np.linalg.svd(syx)
    sign = np.sign(U[0, 0])
    np.testing.assert_allclose(st.order(theta), [sign * U[:, 0] @ m @ Vt[0] * sign for m in M], rtol=1e-12)
    for k in (1, 2):
        pot = network(3, 2, sxx, syx, 0.1, order=f"sv{k}")
        np.testing.assert_allclose(pot.structure.order(theta), [np.linalg.svd(m, compute_uv=False)[k - 1] for m in M],
                                   rtol=1e-10)
        sym = np.array([float(numpy_functions(pot).order(row)) for row in theta])
        np.testing.assert_allclose(pot.structure.order(theta), sym, rtol=1e-12)


def test_kernel_choice_and_bad_input():
    _, sxx, syx, _ = _case()
    assert network(3, 2, sxx, syx, 0.1).structure is not None
    assert network(3, 2, sxx, syx, 0.1, kernel="sympy").structure is None
    assert network(3, 2, sxx, syx, 0.1, order=lambda M: M[0, 0]).structure is None
    with pytest.raises(ValueError, match="kernel must be"):
        network(3, 2, sxx, syx, 0.1, kernel="fast")
    with pytest.raises(ValueError, match="callable order needs kernel='sympy'"):
        network(3, 2, sxx, syx, 0.1, order=lambda M: M[0, 0], kernel="structured")
    pot = network(3, 2, sxx, syx, 0.1)
    assert structured_kernel(pot, Threshold(0.1, order=pot.order)) is not None
    assert structured_kernel(pot, Threshold(0.1, order=pot.variables[0])) is None   # another order: generated


# --- the same streams as the generated kernel ---------------------------------------------------
def _pair(pot_s, pot_g, x0, **kw):
    a = simulate(pot_s, x0, **kw)
    b = simulate(pot_g, x0, **kw)
    return a, b


@pytest.mark.parametrize("scheme", ["euler", "bridge"])
@pytest.mark.parametrize("noise", ["additive", "sgd"])
def test_same_streams_same_trajectories_as_the_generated_kernel(scheme, noise):
    """Width-1 network of the paper's chain (3 weights), backward escape: identical stops (steps,
    status) and finals to 1e-10 on the same streams; with additive and SGD-like noise, Euler and
    bridge. The two kernels differ only in the order of floating-point sums."""
    pr = escape_problem("network", n_layers=3, c=0.8, gamma=0.32, width=1, direction="bwd", convention="paper")
    pot_g = network(3, 1, [[1.0]], [[0.8]], 0.32, convention="paper", kernel="sympy")
    kw = dict(dt=0.02, n_traj=64, max_steps=3000, stop=pr.stop, scheme=scheme, rng=5, save_every=100)
    kw.update(temperature=0.004) if noise == "additive" else kw.update(noise=pr.sgd_noise(0.08, 2))
    a, b = _pair(pr.potential, pot_g, pr.x0, **kw)
    assert pr.potential.structure is not None and pot_g.structure is None
    assert 10 < a.escaped.sum() < 64                          # some escape, some are censored
    np.testing.assert_array_equal(a.steps, b.steps)
    np.testing.assert_array_equal(a.status, b.status)
    np.testing.assert_allclose(a.final, b.final, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(a.paths, b.paths, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("noise", ["additive", "sgd"])
def test_width_2_network_of_two_features_agrees_with_the_generated_kernel(noise):
    """2 -> 2 -> 2 -> 2 (12 weights), random data moments, a random start, 300 steps, the
    singular-value stop with the bridge: same stops, finals to 1e-10."""
    joint, sxx, syx, syy = _case()
    theta = np.random.default_rng(7).normal(scale=0.6, size=12)
    pot_s = network(3, 2, sxx, syx, 0.1, order="sv1")
    pot_g = network(3, 2, sxx, syx, 0.1, order="sv1", kernel="sympy")
    kw = dict(dt=0.002, n_traj=48, max_steps=300, scheme="bridge", rng=6)
    kw.update(temperature=0.05) if noise == "additive" else kw.update(noise=SGDNoise(0.01, 8, sxx, syx, syy))
    free = simulate(pot_s, theta, save_every=1, **kw)       # the level: the median of the paths' maxima
    level = float(np.median(pot_s.structure.order(free.paths.reshape(-1, 12)).reshape(48, 300).max(axis=1)))
    a, b = _pair(pot_s, pot_g, theta, stop=Threshold(level, "up"), **kw)
    assert 5 < a.escaped.sum() < 48
    np.testing.assert_array_equal(a.steps, b.steps)
    np.testing.assert_array_equal(a.status, b.status)
    np.testing.assert_allclose(a.final, b.final, rtol=1e-10, atol=1e-12)


_W2_BITS = {  # sha256 of final and steps, recorded on 85c077e (before the fused p = d = 1 step of issue 17)
    ("euler", "sgd"): ("6c2d538552ecd4cc0e19faffca1c087e1970b322a554213e575e514baca2d14f",
                       "725ca3c5e1b52b2603a06134c947edbea2bd7d29e7c73f2678809afa0c2d857d"),
    ("euler", "additive"): ("6cfc2a8242fd1a72c300f34edfc326e4f2a16b21fc11157f1f064bc0c1804964",
                            "9c98ca254776e4c86199cbbae1c7848f2ffa313c3bbd63c26ec22e0ac2d6ac75"),
    ("bridge", "sgd"): ("69b2ebcb62342d8fbb902025fb3ec7cd364e770e5a379b7c7f9806c150c6267c",
                        "845925ef35e5834ba3fdcd03b54007089262eb5a6d3e2848d80b3e9e48cc4300"),
    ("bridge", "additive"): ("7067086b505aca484c27c19d84c21e49ac088baa8835350dce85d198db4f5332",
                             "4b7cd527a34025945778a9335f64ace48102987ab7b378f5d5ab4f1adbc3aa4d"),
}


@pytest.mark.parametrize("scheme,noise", list(_W2_BITS))
def test_width_2_step_keeps_the_bits_of_the_general_path(scheme, noise):
    """The one-input one-output network's step (``K`` 1 x 1: the residual, ``K`` and its square
    root in one pass, ``_noise_one``; the gradient updating the proposal as it is made, with
    SGD-like noise one pass per weight on the ``scalar`` worker, ``_backprop_one``; no FIN
    row with a linear order) gives the bits the general path gave before it existed."""
    import hashlib

    pr = escape_problem("network", n_layers=3, c=0.8, gamma=0.32, width=2, direction="bwd", convention="paper")
    kw = dict(dt=0.02, n_traj=40, max_steps=3000, stop=pr.stop, scheme=scheme, rng=4)
    kw.update(noise=pr.sgd_noise(0.08, 3)) if noise == "sgd" else kw.update(temperature=0.004)
    r = simulate(pr.potential, pr.x0, **kw)
    assert 0 < r.escaped.sum() < 40
    assert (hashlib.sha256(r.final.tobytes()).hexdigest(), hashlib.sha256(r.steps.tobytes()).hexdigest()) == \
        _W2_BITS[scheme, noise]


def test_a_non_finite_weight_stops_a_linear_order_run_as_the_generated_kernel():
    """With a linear order the structured kernel tests phin alone (a non-finite weight makes M,
    hence phin, non-finite); starts with one huge or infinite weight stop with the generated
    kernel's status (2, non-finite, or an escape) at the same step."""
    from phasetools._rng import ZIG_F, ZIG_K, ZIG_W
    from phasetools.langevin._codegen import kernel_module

    pr = escape_problem("network", n_layers=3, c=0.8, gamma=0.32, width=2, direction="bwd", convention="paper")
    sym = network(3, 2, [[1.0]], [[0.8]], 0.32, convention="paper", kernel="sympy")
    x0 = np.tile(pr.x0, (16, 1))
    for i in range(16):
        x0[i, i % 8] = 1e100 if i < 8 else np.inf
    out = []
    for run in (structured_kernel(pr.potential, pr.stop).run, kernel_module(sym).run):
        states = np.arange(64, dtype=np.uint64).reshape(16, 4) + 1
        res = (np.empty(16, np.int64), np.empty(16, np.int8), np.empty((16, 8)), np.empty((16, 0, 8)))
        run(x0, sym.param_values, 0.01, np.sqrt(2 * 0.004 * 0.01), 0, 0.0, *(np.zeros((1, 1)),) * 3, 50, True,
            pr.stop.level, -1.0, False, 0, states, ZIG_K, ZIG_W, ZIG_F, *res)
        out.append(res)
    np.testing.assert_array_equal(out[0][1], out[1][1])
    np.testing.assert_array_equal(out[0][0], out[1][0])
    assert np.sum(out[0][1] == 2) >= 12


# --- SGD-like noise --------------------------------------------------------------------------------
def test_sgd_noise_covariance_matches_per_sample_gradients_at_width_3():
    """One step of the structured kernel from a random 2 -> 3 -> 3 -> 2 state: the covariance of
    the increment equals (lr dt / B) times the covariance of per-sample gradients of 400k
    Gaussian samples (independent of K), along random directions, within 3 combined SEs."""
    joint, sxx, syx, syy = _case()
    pot = network(3, 3, sxx, syx, 0.1)
    st = pot.structure
    theta = np.random.default_rng(8).normal(scale=0.6, size=pot.dim)
    lr, B, dt, n = 0.05, 8, 0.01, 200_000
    r = simulate(pot, theta, noise=SGDNoise(lr, B, sxx, syx, syy), dt=dt, n_traj=n, max_steps=1, rng=4)
    inc = r.final - theta + dt * st.gradient(theta)
    m = 400_000
    xy = np.random.default_rng(5).multivariate_normal(np.zeros(4), joint, size=m)
    x, y = xy[:, :2], xy[:, 2:]
    W = _weights(st, theta)
    M = W[2] @ W[1] @ W[0]
    resid = x @ M.T - y
    above = [W[2] @ W[1], W[2], np.eye(2)]
    below = [np.eye(2), W[0], W[1] @ W[0]]
    G = np.concatenate([2 * np.einsum("mi,mj->mij", resid @ above[k], x @ below[k].T).reshape(m, -1)
                        for k in range(3)], axis=1)
    expected = lr * dt / B * np.cov(G, rowvar=False)
    dirs = np.random.default_rng(6).normal(size=(6, pot.dim))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    for u in dirs:
        v_sim, v_exp = np.var(inc @ u, ddof=1), u @ expected @ u
        se = np.hypot(v_sim * np.sqrt(2 / (n - 1)), v_exp * np.sqrt(2 / (m - 1)) * 1.5)
        assert abs(v_sim - v_exp) < 3 * se, (v_sim, v_exp, se)
    assert abs(np.mean(inc @ dirs[0])) < 3 * np.sqrt(dirs[0] @ expected @ dirs[0] / n)


def test_sgd_noise_vanishes_at_the_trivial_state():
    pr = escape_problem("network", n_layers=3, c=0.8, gamma=0.32, width=3, direction="bwd", convention="paper")
    r = simulate(pr.potential, np.zeros(pr.potential.dim), noise=pr.sgd_noise(0.08, 4), dt=0.05, n_traj=8,
                 max_steps=500, rng=1)
    assert np.all(r.final == 0.0)


# --- compile once, threads, replay ----------------------------------------------------------------
def test_one_compilation_for_every_width_depth_data_noise_scheme_and_stop():
    """The worker's signature count stays 1 across widths, depths, input/output dimensions, data
    sets, additive/SGD noise, Euler/bridge and every order parameter."""
    cases = [(3, 1, 1, 1, None), (3, 2, 2, 2, "sv1"), (2, 5, 2, 3, "sv2"), (4, 3, 3, 1, None), (3, 10, 2, 2, None)]
    for k, (n, h, d_in, d_out, order) in enumerate(cases):
        _, sxx, syx, syy = _case(d_in, d_out, seed=k)
        pot = network(n, h, sxx, syx, 0.1, order=order)
        theta = np.random.default_rng(k).normal(scale=0.5, size=pot.dim)
        stop = Threshold(float(pot.structure.order(theta)) * 1.01)
        for noise in (dict(temperature=0.01), dict(noise=SGDNoise(0.05, 4, sxx, syx, syy))):
            for scheme in ("euler", "bridge"):
                simulate(pot, theta, dt=0.001, n_traj=3, max_steps=20, stop=stop, scheme=scheme, rng=k, **noise)
                assert all(len(w.signatures) <= 1 for w in nk.WORKERS.values())
                assert all(len(w.signatures) <= 1 for w in nk.SCALAR_WORKERS.values())


def _same_bytes(a, b):
    """The same trajectories byte for byte (a -0 against a 0 differs): finals, steps, statuses
    and saved paths."""
    return (a.final.tobytes() == b.final.tobytes() and a.steps.tobytes() == b.steps.tobytes()
            and a.escaped.tobytes() == b.escaped.tobytes() and a.paths is not None
            and a.paths.tobytes() == b.paths.tobytes())


def test_one_input_one_output_sgd_runs_on_its_own_worker_with_the_general_bits(monkeypatch):
    """With SGD-like noise, a network with one input and one output runs on its own compiled
    worker (``scalar``: one pass per weight, :func:`nk._backprop_one`), whatever its width or
    depth; forced onto the general worker, it gives the same trajectories, bit for bit (the
    bytes of the finals and of the saved paths)."""
    assert nk.worker(True, False, nk.ORDER_LINEAR, scalar=True) is nk.SCALAR_WORKERS[False, False]
    assert nk.worker(False, False, nk.ORDER_LINEAR, scalar=True) is nk.WORKERS[False, False, False]
    assert nk.worker(True, True, nk.ORDER_SV1, data=True, scalar=True) is nk.DATA_WORKERS[True, True]
    assert nk.is_scalar((1, 4, 1)) and not nk.is_scalar((1, 4, 2)) and not nk.is_scalar((2, 4, 1))
    pr = escape_problem("network", n_layers=3, c=0.8, gamma=0.32, width=2, direction="bwd", convention="paper")
    kw = dict(noise=pr.sgd_noise(0.08, 3), dt=0.02, n_traj=40, max_steps=3000, stop=pr.stop, rng=4, n_threads=1,
              save_every=100)
    for scheme in ("euler", "bridge"):
        ref = simulate(pr.potential, pr.x0, scheme=scheme, **kw)
        assert len(nk.SCALAR_WORKERS[scheme == "bridge", False].signatures) == 1
        with monkeypatch.context() as m:
            m.setattr(nk, "is_scalar", lambda dims: False)
            general = simulate(pr.potential, pr.x0, scheme=scheme, **kw)
        assert len(nk.WORKERS[True, scheme == "bridge", False].signatures) == 1
        assert _same_bytes(ref, general) and ref.equal_values(general) and 0 < ref.escaped.sum() < 40
    for n, h in ((2, 5), (4, 3)):   # other widths and depths: no other compilation
        pot = network(n, h, [[1.0]], [[0.7]], 0.1)
        simulate(pot, np.full(pot.dim, 0.4), noise=SGDNoise(0.05, 4, [[1.0]], [[0.7]], [[1.0]]), dt=0.01, n_traj=3,
                 max_steps=20, stop=Threshold(-10.0, "down"), rng=1)
        assert all(len(w.signatures) <= 1 for w in nk.SCALAR_WORKERS.values())


def test_scalar_worker_with_a_singular_value_order_has_the_general_bits(monkeypatch):
    """A one-input-one-output network with SGD-like noise and a singular-value order parameter
    (``|M|``) runs on the ``scalar`` worker of that order kind, and forced onto the general
    worker gives the same bytes; ``structured_kernel(...).worker`` (what the compile notice and
    ``signatures`` read) is that scalar worker."""
    pr = escape_problem("network", n_layers=3, c=0.8, gamma=0.32, width=2, direction="bwd", convention="paper")
    pot = network(3, 2, [[1.0]], [[0.8]], 0.32, convention="paper", order="sv1")
    stop = Threshold(pr.stop.level, "down")
    assert structured_kernel(pot, stop, sgd=True).worker is nk.SCALAR_WORKERS[False, True]
    assert structured_kernel(pr.potential, pr.stop, sgd=True).worker is nk.SCALAR_WORKERS[False, False]
    assert structured_kernel(pr.potential, pr.stop, sgd=True, bridge=True).worker is nk.SCALAR_WORKERS[True, False]
    kw = dict(noise=pr.sgd_noise(0.08, 3), dt=0.02, n_traj=40, max_steps=3000, stop=stop, rng=5, n_threads=1,
              save_every=100)
    ref = simulate(pot, pr.x0, **kw)
    assert len(nk.SCALAR_WORKERS[False, True].signatures) == 1
    with monkeypatch.context() as m:
        m.setattr(nk, "is_scalar", lambda dims: False)
        general = simulate(pot, pr.x0, **kw)
    assert len(nk.WORKERS[True, False, True].signatures) == 1
    assert _same_bytes(ref, general) and 0 < ref.escaped.sum() < 40


@pytest.mark.parametrize("sgd", [False, True])
@pytest.mark.parametrize("dims", [(1, 3, 1), (2, 3, 2)])
def test_the_kernel_names_the_worker_its_run_calls(monkeypatch, sgd, dims):
    """``StructuredKernel.worker`` (the compile notice's dispatcher) is the worker ``run`` calls,
    for both schemes with and without a stop (the bridge test runs only with a stop): both take
    it from :meth:`nk.Variant.of`."""
    pot = network(len(dims) - 1, dims[1], np.eye(dims[0]), np.full((dims[-1], dims[0]), 0.5), 0.1)
    noise = (dict(noise=SGDNoise(0.05, 4, np.eye(dims[0]), np.full((dims[-1], dims[0]), 0.5), np.eye(dims[-1])))
             if sgd else dict(temperature=0.01))
    variant_worker = nk.Variant.worker
    called = []
    monkeypatch.setattr(nk.Variant, "worker", lambda self: called.append(self) or variant_worker(self))
    for scheme in ("euler", "bridge"):
        for stop in (None, Threshold(-10.0, "down")):
            kernel = structured_kernel(pot, stop, sgd=sgd, bridge=scheme == "bridge")
            assert called.pop() == kernel.variant
            assert kernel.variant.bridge == (scheme == "bridge" and stop is not None)
            assert kernel.variant.scalar == (sgd and dims[0] == dims[-1] == 1)
            simulate(pot, np.full(pot.dim, 0.2), dt=0.01, n_traj=2, max_steps=5, stop=stop, scheme=scheme, rng=1,
                     **noise)
            assert called[-1] == kernel.variant and called[-1].worker is not None
            assert variant_worker(called.pop()) is kernel.worker and kernel.worker.signatures
    with pytest.raises(ValueError, match="mode"):
        nk.Variant.of(3, False, False, nk.ORDER_LINEAR, dims)


def test_same_bits_for_1_and_2_threads_and_replay():
    pr = escape_problem("network", n_layers=3, c=0.8, gamma=0.32, width=4, direction="bwd", convention="paper")
    kw = dict(noise=pr.sgd_noise(0.08, 3), dt=0.02, n_traj=40, max_steps=4000, stop=pr.stop, scheme="bridge", rng=9)
    r1 = simulate(pr.potential, pr.x0, n_threads=1, **kw)
    r2 = simulate(pr.potential, pr.x0, n_threads=2, **kw)
    assert r1.equal_values(r2) and r2.stats["n_threads"] == 2
    assert 0 < r1.escaped.sum() < 40
    for i in (0, 17, 39):
        one = replay(pr.potential, r1, i)
        assert one.steps[0] == r1.steps[i] and np.array_equal(one.final[0], r1.final[i])


def test_same_bits_for_any_lane_count(monkeypatch):
    """Trajectories do not depend on how many lanes a thread advances together (the default
    grows with the network: :func:`nk.lanes_for`), including a lane count that is not a
    multiple of the padded row length."""
    pr = escape_problem("network", n_layers=3, c=0.8, gamma=0.32, width=2, direction="bwd", convention="paper")
    assert nk.lanes_for(pr.potential.structure.layout) == 512
    assert nk.lanes_for(nk.layout((2, 10, 10, 2))) == nk.LANES
    kw = dict(noise=pr.sgd_noise(0.08, 3), dt=0.02, n_traj=40, max_steps=3000, stop=pr.stop, scheme="bridge", rng=4,
              n_threads=1)
    ref = simulate(pr.potential, pr.x0, **kw)
    monkeypatch.setitem(nk.run.__kwdefaults__, "lanes", 7)
    other = simulate(pr.potential, pr.x0, **kw)
    assert ref.equal_values(other) and 0 < ref.escaped.sum() < 40


_VARIANT_SCRIPT = """
import hashlib
import json
import numpy as np
from phasetools.langevin import SGDNoise, Threshold, network, simulate
from phasetools.langevin import _netkernel as nk
from phasetools import _numba
helper = []
precompile = nk.precompile
nk.precompile = lambda *a, **k: helper.append(precompile(*a, **k)) or helper[-1]
nk.compile_shared = lambda jobs: _numba.compile_shared(jobs, wait=True)   # the helper's whole share in the cache
pot = network(3, 3, np.eye(2), np.diag([0.9, 0.8]), 0.32)
r = simulate(pot, np.full(pot.dim, 0.3), noise=SGDNoise(0.08, 4, np.eye(2), np.diag([0.9, 0.8]), np.eye(2)), dt=0.01,
             n_traj=2, max_steps=5, stop=Threshold(0.05, "down"), rng=1)
print(sum(len(w.signatures) for w in nk.WORKERS.values()), len(nk.worker(True, False, 0).signatures),
      len(nk._bridge_variance.signatures), len(nk._order_gradient.signatures), len(nk._singular.signatures),
      sum(len(w.signatures) for w in nk.SCALAR_WORKERS.values()), len(nk._noise_one.signatures),
      len(nk._backprop_one.signatures))
jobs = nk.callee_jobs(nk.worker(True, False, 0).signatures[0], sgd=True, bridge=False, singular=False)
print(json.dumps([helper, [len(d.signatures) for d, s in jobs], sum(d.stats.cache_hits[s] for d, s in jobs),
                  sum(d.stats.cache_misses[s] for d, s in jobs), len(jobs)]))
print(hashlib.sha256(r.final.tobytes()).hexdigest())
"""


def test_a_run_compiles_only_its_own_variant(tmp_path):
    """With empty caches, an SGD-noise Euler run with a linear order parameter compiles one worker
    and none of the bridge, singular-value or one-input-one-output (``scalar``) code (the variants
    are pruned before typing); a
    helper process compiled part of the worker's callees (``precompile``; here waited for, by
    default the first call goes on and compiles again what the helper has not finished), which
    this process then loaded from the cache instead of compiling them again, each callee once,
    with the signature the worker calls it with; and the trajectories are the same bits as in
    this process."""
    import hashlib
    import json
    import os
    import subprocess
    import sys

    env = dict(os.environ, PHASETOOLS_CACHE_DIR=str(tmp_path), NUMBA_CACHE_DIR=str(tmp_path / "numba"))
    env["PHASETOOLS_COMPILE_HELPER"] = "1"   # whatever the load
    out = subprocess.run([sys.executable, "-c", _VARIANT_SCRIPT], env=env, capture_output=True, text=True, check=True)
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["1", "1", "0", "0", "0", "0", "0", "0"], out.stdout   # no one-input-one-output code
    helper, n_sigs, hits, misses, n_jobs = json.loads(lines[1])
    assert all(n == 1 for n in n_sigs), out.stdout             # no duplicate specialisation
    if (os.cpu_count() or 1) >= 2:
        assert len(helper) == 1 and 1 <= helper[0] < n_jobs, out.stdout
        assert hits == helper[0] and misses == n_jobs - helper[0], out.stdout   # the helper's share: loaded
    pot = network(3, 3, np.eye(2), np.diag([0.9, 0.8]), 0.32)
    r = simulate(pot, np.full(pot.dim, 0.3), noise=SGDNoise(0.08, 4, np.eye(2), np.diag([0.9, 0.8]), np.eye(2)),
                 dt=0.01, n_traj=2, max_steps=5, stop=Threshold(0.05, "down"), rng=1)
    assert lines[2] == hashlib.sha256(r.final.tobytes()).hexdigest()


def test_compile_helper_only_with_an_idle_core(monkeypatch):
    """The compile helper process starts by default only when the 1-minute load average leaves
    a core idle; PHASETOOLS_COMPILE_HELPER=0 / 1 turn it off / on whatever the load."""
    from phasetools import _numba

    monkeypatch.setattr(_numba.os, "cpu_count", lambda: 2)
    monkeypatch.delenv("PHASETOOLS_COMPILE_HELPER", raising=False)
    monkeypatch.setattr(_numba.os, "getloadavg", lambda: (0.9, 0.5, 0.5))
    assert _numba._helper_wanted()
    monkeypatch.setattr(_numba.os, "getloadavg", lambda: (1.7, 0.5, 0.5))
    assert not _numba._helper_wanted()
    monkeypatch.setenv("PHASETOOLS_COMPILE_HELPER", "1")
    assert _numba._helper_wanted()
    monkeypatch.setenv("PHASETOOLS_COMPILE_HELPER", "0")
    monkeypatch.setattr(_numba.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    assert not _numba._helper_wanted()
    monkeypatch.setattr(_numba.os, "cpu_count", lambda: 1)
    monkeypatch.setenv("PHASETOOLS_COMPILE_HELPER", "1")
    assert not _numba._helper_wanted()
    assert _numba.compile_shared([(nk._dot, ()), (nk._copy, ())]) == 0   # one core: nothing started


# --- physics on the structured kernel (slow) -------------------------------------------------------
@pytest.mark.slow
def test_width_2_escape_times_agree_with_the_generated_kernel_and_eyring_kramers():
    """Backward escape of the width-2 network (the slow check of test_langevin_physics), on both
    kernels with the same streams: the two MLE times agree within their statistical error (in
    fact trajectory by trajectory), and the structured one is within 15% of the width-2
    Eyring-Kramers time."""
    from phasetools.stats import exponential_mle
    from phasetools.theory import critical_points, eyring_kramers_time, landscape

    n, c = 3, 1.0
    g = 1.1 * critical_points(n, c).gamma_c
    L = landscape(n, c, g, width=2)
    T = L.barrier_bwd / 4.0
    pred = eyring_kramers_time(n, c, g, T, direction="bwd", width=2)
    r0 = np.array([1.0, 0.0])
    b = L.b_min
    w0 = np.concatenate([b * r0, (b * np.outer(r0, r0)).ravel(), b * r0])
    kw = dict(temperature=T, dt=0.02, n_traj=1200, max_steps=2_000_000, stop=Threshold(L.lam_saddle / 2, "down"),
              rng=9)
    a = simulate(network(n, 2, [[1.0]], [[c]], g), w0, **kw)
    fa = exponential_mle(a.times, a.censored)
    assert 3 * fa.tau_stderr / fa.tau < 0.15
    assert abs(fa.tau / pred - 1) < 0.15, (fa.tau, pred)
    b_ = simulate(network(n, 2, [[1.0]], [[c]], g, kernel="sympy"), w0, **kw)
    fb = exponential_mle(b_.times, b_.censored)
    assert abs(fa.tau - fb.tau) < 3 * np.hypot(fa.tau_stderr, fb.tau_stderr) * 0.1
    assert np.mean(a.steps == b_.steps) > 0.95


def test_bench_order_runs_each_kernel_before_its_reference_as_often_as_after():
    """benchmarks/bench_netkernel.py: over the rounds and repeats of the speed table, each
    structured kernel runs before its reference (the next contender) as often as after it, to
    within one (rotation alone put "w2 SGD: structured" first in 8 of 9 rounds)."""
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "bench_netkernel.py"
    spec = importlib.util.spec_from_file_location("bench_netkernel", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    names = ["w10 additive: structured", "w10 additive: numpy", "paper SGD: structured", "paper SGD: numpy",
             "w2 additive: structured", "w2 additive: sympy", "w2 SGD: structured", "w2 SGD: sympy"]
    for rounds in (5, 9):
        for a, b in zip(names[::2], names[1::2]):
            reps = 5 if a.startswith("w2 ") else 1
            first = [bench._order(names, r, rep).index(a) < bench._order(names, r, rep).index(b)
                     for r in range(rounds) for rep in range(reps)]
            assert abs(2 * sum(first) - len(first)) <= 1, (a, rounds, sum(first), len(first))
            assert all(sorted(bench._order(names, r, 0)) == sorted(names) for r in range(rounds))
