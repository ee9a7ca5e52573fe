"""AMS over real SGD: the two-branch sharpness score (phasetools.rare.SharpnessScore), docs/rare.md."""

import numpy as np
import pytest

from phasetools.langevin import escape_problem
from phasetools.rare import (
    AMSOptions,
    SharpnessScore,
    TrainingEngine,
    ams_training_escape,
)
from phasetools.rare._training import training_coordinate
from phasetools.training import GaussianTeacher

TARGET = 0.0462726          # lam_saddle / 2 of the paper's chain (eta 0.8, weight decay 0.32)
X, Y = GaussianTeacher([0.8]).sample(512, 1)
B0 = escape_problem("chain", n_layers=3, c=0.8, gamma=0.32, direction="bwd", convention="paper").x0
INIT = [np.full((1, 1), v) for v in B0]
SGD = dict(n_layers=3, width=1, batch_size=4, weight_decay=0.32)


def _balanced(sv):
    """Balanced width-1 chains with end-to-end value ``sv``, as layer lists ``(n, 1, 1)``."""
    b = np.cbrt(np.asarray(sv, dtype=float))[:, None, None]
    return [b, b, b]


def test_target_set_is_the_top_level_set_of_the_sharpness_score():
    score = SharpnessScore(TARGET, INIT, np.eye(1))
    gen = np.random.default_rng(0)
    ws = [gen.normal(0, s, (4000, 1, 1)) for s in (0.3, 1.0, 3.0)]
    xi = score(ws)
    s = np.abs(ws[0] * ws[1] * ws[2])[:, 0, 0]
    inside = s <= TARGET
    assert inside.any() and (~inside).any()
    assert np.all(xi[inside] == score.level)
    assert np.all(xi[~inside] < score.level)
    # even enormous weights (curvature diverging) stay below B's level
    assert score(_balanced([1e6]))[0] < score.level
    assert score.level == pytest.approx(np.log(score.s0 / TARGET))


def test_sharpness_score_rises_on_both_sides_of_the_start():
    score = SharpnessScore(TARGET, INIT, np.eye(1))
    s0 = score.s0
    down = np.linspace(s0, 1.001 * TARGET, 50)
    up = np.linspace(s0, 5.0, 50)
    assert np.all(np.diff(score(_balanced(down))) > 0)        # the diffusive route: down in sv1
    assert np.all(np.diff(score(_balanced(up))) > 0)          # the catapult route: up in sharpness
    assert score(_balanced([s0]))[0] == pytest.approx(0.0, abs=1e-12)
    # the down branch is ln(s0 / s) exactly
    assert score(_balanced([0.1]))[0] == pytest.approx(np.log(s0 / 0.1))
    # an imbalanced state with the same sv1 is sharper: a higher score on the up branch
    b = np.cbrt(1.5)
    imbalanced = [np.full((1, 1, 1), 1.3 * b), np.full((1, 1, 1), b), np.full((1, 1, 1), b / 1.3)]
    assert score(imbalanced)[0] > score(_balanced([1.5]))[0]


def test_training_coordinate_resolves_names_and_refuses_bad_ones():
    name, order, sign, b, rec = training_coordinate("sv1", direction="down", target=0.1, init=INIT, data=(X, Y))
    assert (name, sign, b, rec) == ("sv1", -1.0, -0.1, None)
    name, order, sign, b, rec = training_coordinate("sharpness", direction="down", target=TARGET, init=INIT,
                                                    data=(X, Y))
    assert isinstance(order, SharpnessScore) and sign == 1.0 and b == order.level
    assert rec["name"] == "sharpness" and rec["mode"] == 1 and rec["target"] == TARGET
    assert training_coordinate("sharpness2", direction="down", target=0.01, init=[np.eye(2)] * 3,
                               data=(np.eye(2), np.eye(2)))[4]["mode"] == 2
    for bad in ("sharp", "sv0", "sharpness0", "svx", 3):
        with pytest.raises(ValueError, match="coordinate"):
            training_coordinate(bad, direction="down", target=0.1, init=INIT, data=(X, Y))
    with pytest.raises(ValueError, match="direction"):
        training_coordinate("sharpness", direction="up", target=2.0, init=INIT, data=(X, Y))
    with pytest.raises(ValueError, match="above the target"):
        training_coordinate("sharpness", direction="down", target=0.9, init=INIT, data=(X, Y))


def test_a_mode_beyond_the_networks_rank_is_refused():
    # sharpness2 / sv2 of a width-1 chain were an IndexError deep in the SVD
    for bad in ("sv2", "sharpness2"):
        with pytest.raises(ValueError, match=r"coordinate.*sv1\.\.sv1"):
            training_coordinate(bad, direction="down", target=0.01, init=INIT, data=(X, Y))
    with pytest.raises(ValueError, match=r"mode must be in \[0, 0\]"):
        SharpnessScore(TARGET, INIT, np.eye(1), mode=1)
    # the rank is the smallest side of any layer, not only of M: a width-1 hidden layer caps it at 1
    narrow = [np.ones((1, 2)), np.ones((2, 1)) * 2]
    with pytest.raises(ValueError, match="rank 1"):
        training_coordinate("sv2", direction="down", target=0.01, init=narrow, data=(np.eye(2), np.eye(2)))
    assert training_coordinate("sv2", direction="down", target=0.01, init=[np.eye(2)] * 3,
                               data=(np.eye(2), np.eye(2)))[0] == "sv2"


def test_engine_reads_a_layer_score_without_the_sign():
    score = SharpnessScore(TARGET, INIT, np.eye(1))
    eng = TrainingEngine((X, Y), **SGD, lr=0.1, sampling="replacement", convention="paper", coordinate=score,
                         sign=-1.0, shapes=[(1, 1)] * 3)
    x = np.array([[0.9, 0.9, 0.9], [0.3, 0.3, 0.3]])
    assert np.allclose(eng.coordinate(x), score(_balanced(x[:, 0] ** 3)))


def test_ams_with_the_sharpness_score_records_it():
    res = ams_training_escape((X, Y), INIT, **SGD, lr=0.12, target=TARGET, direction="down", coordinate="sharpness",
                              start=0.5, level=0.8, rng=1,
                              options=AMSOptions(n_replicas=10, n_kill=2, n_runs=4, n_walkers=10, n_rounds=2))
    rec = res.potential_config["coordinate"]
    assert res.order == "sharpness" and rec["name"] == "sharpness" and rec["target"] == TARGET
    assert res.target == pytest.approx(rec["level"]) and (res.start, res.level) == (0.5, 0.8)
    assert np.isfinite(res.tau) and res.tau > 0


# -- validation against brute force (slow) -----------------------------------------------------
@pytest.mark.slow   # about 5 minutes
@pytest.mark.long   # minutes: outside the default run (pytest -m long)
def test_sharpness_ams_agrees_with_brute_force_at_the_standard_backward_level():
    """lr 0.1, B = 4 (tau about 550 epochs): the escape to lam_saddle / 2 mostly goes up first (the
    catapult); AMS with the sharpness score and brute force by the same trainer agree."""
    from phasetools.rare import excursions
    from phasetools.stats import exponential_mle

    res = ams_training_escape((X, Y), INIT, **SGD, lr=0.1, target=TARGET, direction="down", coordinate="sharpness",
                              rng=3, options=AMSOptions(n_replicas=100, n_kill=10, n_runs=40, n_walkers=50,
                                                        n_rounds=4))
    eng = TrainingEngine((X, Y), **SGD, lr=0.1, sampling="replacement", convention="paper",
                         coordinate=lambda M: np.linalg.svd(M, compute_uv=False)[:, 0], sign=-1.0,
                         shapes=[(1, 1)] * 3)
    n = 100
    x = np.repeat(np.asarray(B0)[None, :], n, axis=0)
    ex = excursions(eng, x, eng.streams(5, np.arange(n)), low=-np.inf, high=-TARGET, max_steps=1500 * 128,
                    chunk=2048)
    brute = exponential_mle(ex.steps * eng.time_unit, ex.outcome != 2)
    print(f"AMS {res.tau:.4g} [{res.tau_lower:.4g}, {res.tau_upper:.4g}]; brute force {brute.tau:.4g} +- "
          f"{brute.tau_stderr:.3g} ({np.sum(ex.outcome == 2)} of {n} escaped)")
    # the catapult is a one-step jump: the runs' p_hat are heavy-tailed (docs/rare.md), se/tau about 0.55 here
    assert brute.tau_stderr / brute.tau < 0.2 and res.tau_stderr / res.tau < 0.75
    assert res.tau_lower <= brute.tau <= res.tau_upper, (res.tau, res.tau_lower, res.tau_upper, brute.tau)
    # the top singular value as coordinate kills the catapult paths: six decades too long (4.98e8 measured)
    sv = ams_training_escape((X, Y), INIT, **SGD, lr=0.1, target=TARGET, direction="down", rng=1,
                             options=AMSOptions(n_replicas=50, n_kill=5, n_runs=20, n_walkers=50, n_rounds=4))
    assert sv.tau_lower > 1e3 * brute.tau, (sv.tau, brute.tau)


@pytest.mark.slow   # about a minute
def test_the_committor_rises_on_both_sides_of_the_sgd_well():
    """lr 0.1: from balanced states, P(sv1 <= target before the well's band 0.45-0.6) is large far
    below (the diffusive route) and far above (the catapult), and tiny in between (docs/rare.md)."""
    from phasetools.rare import excursions

    n, q = 1000, {}
    for k, s in enumerate((0.06, 0.2, 1.0, 2.0)):
        x = np.full((n, 3), np.cbrt(s))
        sign = -1.0 if s < 0.45 else 1.0
        eng = TrainingEngine((X, Y), **SGD, lr=0.1, sampling="replacement", convention="paper",
                             coordinate=lambda M: np.linalg.svd(M, compute_uv=False)[:, 0], sign=sign,
                             shapes=[(1, 1)] * 3)
        streams = eng.streams(9, np.arange(n) + k * n)
        if sign < 0:
            ex = excursions(eng, x, streams, low=-0.45, high=-TARGET, max_steps=10**6)
            q[s] = np.mean(ex.outcome == 2)
        else:
            ex = excursions(eng, x, streams, low=0.6, high=np.inf, max_steps=10**6)
            q[s] = np.mean(eng.coordinate(ex.x) <= TARGET)
    assert q[0.06] > 0.02 and q[2.0] > 0.04, q          # measured 0.043 and 0.083 (20 000 each)
    assert q[0.2] < 0.005 and q[1.0] < 0.005, q          # measured 5e-5 and 1e-4
