"""The paper's claim table against its catalogue, and every rule of the report reaching every outcome it names."""

import re
from pathlib import Path

import numpy as np
import pytest

from phasetools.compare import (AGREES, DISAGREES, NOT_TESTABLE, Measurement, check_identity, check_threshold,
                                check_trend)
from phasetools.reproduce import (CLAIM_IDS, CLAIMS, OWN_CHECKS, claim_report, decide_delay_decades,
                                  decide_noise_driver, evaluate_claims, fitted_seed, float_floor, noise_exponent)

CATALOGUE = Path(__file__).resolve().parents[1] / ".." / "shared" / "reference" / "claims.md"


def test_every_id_has_one_claim_in_the_paper_table():
    ids = [c.id for c in CLAIMS]
    assert ids == list(CLAIM_IDS) and len(set(ids)) == len(ids)
    assert all(c.table == "paper" and c.kind and c.source for c in CLAIMS)
    assert all(c.table == "toolkit" for c in OWN_CHECKS)
    assert not {c.id for c in OWN_CHECKS} & set(ids)
    report = claim_report({})
    assert {i for i, t in zip(report.claim_id, report.table) if t == "paper"} == set(CLAIM_IDS)
    assert sum(report.counts().values()) == len(CLAIM_IDS)          # the tally counts the paper's claims only
    assert sum(report.counts("toolkit").values()) == len(OWN_CHECKS)


@pytest.mark.skipif(not CATALOGUE.exists(), reason="the claims catalogue is not next to the repository")
def test_the_table_matches_the_catalogue():
    text = CATALOGUE.read_text()
    ids = re.findall(r"^\|\s*([FN]\d+)\s*\|", text, flags=re.M)
    assert ids and set(ids) == set(CLAIM_IDS)
    kinds = dict(re.findall(r"^\|\s*([FN]\d+)\s*\|.*\|\s*([^|]+?)\s*\|\s*$", text, flags=re.M))
    by_id = {c.id: c for c in CLAIMS}
    for cid, kind in kinds.items():
        first = kind.split()[0].strip("*")
        if first in ("symbolic", "theory", "training", "arithmetic", "not"):
            assert first in by_id[cid].kind, (cid, kind, by_id[cid].kind)


def test_symbolic_checks_decide_from_derivations():
    out = {cv.claim.id: cv for cv in evaluate_claims({}, CLAIMS)}
    assert out["F1"].outcome == AGREES and out["F2"].outcome == AGREES
    assert out["F4"].outcome == DISAGREES and "(1 - L)" in out["F4"].verdicts[0].measured.replace("*", " ")
    assert [v.outcome for v in out["F7"].verdicts] == [DISAGREES, AGREES]
    assert [v.outcome for v in out["F12"].verdicts] == [AGREES, DISAGREES, AGREES]
    assert [v.outcome for v in out["F13"].verdicts] == [DISAGREES, DISAGREES]
    assert out["N14"].outcome == NOT_TESTABLE and out["N15"].outcome == DISAGREES


def test_trend_threshold_identity_reach_every_outcome():
    assert check_trend("t", [1, 2, 3], [1, 2, 5], increasing=True).outcome == AGREES
    assert check_trend("t", [1, 2, 3], [1, 2, 2], increasing=True).outcome == DISAGREES
    assert check_trend("t", [3, 2, 1], [1, 2, 5], increasing=False).outcome == AGREES   # sorted by x
    assert check_trend("t", [1, 2], [1, float("nan")], increasing=True).outcome == NOT_TESTABLE
    assert check_threshold("x", 1.0, 0.5).outcome == AGREES
    assert check_threshold("x", 1.0, 0.5, above=False).outcome == DISAGREES
    assert check_threshold("x", float("nan"), 0.5).outcome == NOT_TESTABLE
    import sympy as sp
    x = sp.Symbol("x", positive=True)
    assert check_identity("i", sp.sqrt(x) ** 2, x).outcome == AGREES
    assert check_identity("i", x ** 2, x).outcome == DISAGREES
    with pytest.raises(ValueError, match="x and y"):
        check_trend("t", [1, 2], [1], increasing=True)


def _driver(seed, sampling, T, escaped, n=4):
    return dict(seed=seed, sampling=sampling, temperature=T, escaped=escaped, n_runs=n)


def test_noise_driver_rule_reaches_every_outcome():
    base = [_driver(0.0, "full", 0.0, 0), _driver(0.0, "shuffle", 0.01, 3)]
    noise_wins = base + [_driver(1e-3, "shuffle", 0.0, 3), _driver(1e-3, "full", 0.0, 0)]
    assert decide_noise_driver(noise_wins, 0.4).outcome == AGREES
    never = base + [_driver(1e-3, "shuffle", 0.0, 0), _driver(1e-3, "full", 0.0, 0)]
    v = decide_noise_driver(never, 0.4)
    assert v.outcome == DISAGREES and "injected" in v.detail
    seeded = base + [_driver(1e-3, "shuffle", 0.0, 4), _driver(1e-3, "full", 0.0, 4)]
    v = decide_noise_driver(seeded, 0.4)
    assert v.outcome == DISAGREES and "seed, not the noise" in v.detail
    nothing = [_driver(0.0, "shuffle", 0.0, 0), _driver(0.0, "full", 0.0, 0), _driver(0.0, "shuffle", 0.01, 0)]
    assert decide_noise_driver(nothing, 0.4).outcome == NOT_TESTABLE
    # seeds above the saddle are not evidence either way
    assert decide_noise_driver(base + [_driver(0.5, "shuffle", 0.0, 4), _driver(0.5, "full", 0.0, 0)],
                               0.4).outcome == DISAGREES


def test_delay_rule_reaches_every_outcome():
    assert decide_delay_decades(10, 1000.0, 500.0).outcome == AGREES
    assert decide_delay_decades(10, 50000.0, 500.0).outcome == DISAGREES
    assert decide_delay_decades(10, None, 1e5).outcome == DISAGREES
    assert decide_delay_decades(10, None, 500.0).outcome == NOT_TESTABLE


def test_noise_exponent_fitted_seed_and_float_floor():
    s = np.array([0.0, 1e-4, 1e-3, 1e-2])
    assert noise_exponent(s, 3.0 * s ** 4) == pytest.approx(4.0)
    assert np.isnan(noise_exponent([0.0, 1e-3], [0.0, 1.0]))
    seeds, plateaus = [0.01, 0.02, 0.04], [4000.0, 1000.0, 250.0]
    f = fitted_seed(seeds, plateaus)
    assert 0.01 < f < 0.02
    assert np.isnan(fitted_seed(seeds, plateaus, target=10.0))
    assert float_floor("float32") > float_floor("float64") > 0


def test_measurement_is_stored_and_read_back(tmp_path):
    from phasetools.io import load, save
    m = Measurement("n", "how", dict(a=[1.0, float("nan")], b=np.arange(3), c="x", d=[[1, 2], [3, 4]]))
    save(m, tmp_path / "m.h5", name="m")
    back = load(tmp_path / "m.h5", "m")
    assert back.name == "n" and back["c"] == "x"
    assert np.isnan(back.array("a")[1]) and back.array("d").shape == (2, 2)
    with pytest.raises(ValueError, match="key"):
        back.array("zz")


def _taus(ep, ok):
    """Per point: the exponential MLE of the escape epochs and its interval (censored: NaN, lower bound, inf)."""
    from phasetools.stats import exponential_mle
    fits = [exponential_mle(e.astype(float), ~o, time_unit="epochs") for e, o in zip(ep, ok)]
    return (np.array([np.nan if f.tau is None else f.tau for f in fits]),
            np.array([f.tau_lower if f.tau_ci is None else f.tau_ci[0] for f in fits]),
            np.array([np.inf if f.tau_ci is None else f.tau_ci[1] for f in fits]))


def _e4_sweep(criterion="rank"):
    """A corrected-E4 sweep of three points, stored by ``criterion``; with "rank" the test-MSE rule's
    epochs of the same releases (escaping much earlier) are kept beside it."""
    from phasetools.theory import Convention
    from phasetools.training import ArrheniusSweep
    lr, b = np.full(3, 0.1), np.array([8, 10, 12])
    spe = 512 // b
    ep = np.array([[100, 140, 200, 80], [300, 500, 1000, 1000], [1000, 1000, 1000, 1000]])
    ok = ep < 1000
    ep_mse, ok_mse = ep // 3, np.ones_like(ok)
    tau, lo, hi = _taus(ep, ok)
    kw = {} if criterion == "test_mse" else {"criterion": "rank", "sv_index": 1, "sv_threshold": 0.12,
                                              "escape_epoch_mse": ep_mse, "escaped_mse": ok_mse}
    return ArrheniusSweep(n_layers=3, width=10, target_weight_decay=0.35, epochs=1000, convention=Convention.paper(),
                          steps_per_epoch_rule="floor(N / batch_size)", n_samples=512, plateau_level=0.5,
                          target_level=0.7, midpoint=0.6, lr=lr, batch_size=b, steps_per_epoch=spe,
                          temperature=1e-4 * 8 / b, gradient_trace=np.ones(3), escape_epoch=ep, escaped=ok,
                          tau_epochs=tau, tau_epochs_low=lo, tau_epochs_high=hi, tau_time=tau * lr * spe,
                          tau_time_low=lo * lr * spe, tau_time_high=hi * lr * spe, seed_size=np.zeros((4, 3)),
                          sampling="shuffle", **kw)


def _e4_verdicts(sw):
    report = claim_report({"e4_paper": sw, "e4_corrected": sw})
    return [(cid, q, m, o, d) for cid, q, m, o, d in zip(report.claim_id, report.quantity, report.measured,
                                                         report.outcome, report.detail)
            if "corrected" in q]


def test_e4_corrected_verdicts_name_the_rule_read_from_the_result():
    from phasetools.stats import exponential_mle
    rank = _e4_verdicts(_e4_sweep("rank"))
    assert {cid for cid, *_ in rank} == {"N9", "F14"}
    for cid, q, m, o, d in rank:
        assert "criterion 'rank'" in q and "sampling 'shuffle'" in q, (cid, q)
        # the test-MSE rule's numbers beside it, computed from the stored epochs of that rule
        tau8 = exponential_mle((np.array([100, 140, 200, 80]) // 3).astype(float), np.zeros(4, bool)).tau
        assert f"by the test-MSE rule of the paper: B 8: 4/4 escaped, tau {tau8:.3g} epochs" in d, d
        assert "mode 1's end-to-end singular value below 0.12" in d, d
    # two points of three escape by the rank rule, so N9's corrected row cannot be decided; the test-MSE rule's
    # R^2 over its three escaping points stands beside it
    n9 = next(v for v in rank if v[0] == "N9")
    assert n9[3] == NOT_TESTABLE and "R^2 = " in n9[4]
    old = _e4_verdicts(_e4_sweep("test_mse"))    # an older file loads as "test_mse": the verdicts say so
    assert old and all("criterion 'test_mse'" in q and "by the test-MSE rule" not in d for _, q, _, _, d in old)


def test_e4_rank_verdicts_follow_the_stored_epochs():
    import dataclasses
    sw = _e4_sweep("rank")
    ep = np.array(sw.escape_epoch)
    ep[2, 1] = 900                                        # a third point escapes by the rank rule
    ok = ep < 1000
    tau, lo, hi = _taus(ep, ok)
    scale = sw.lr * sw.steps_per_epoch
    sw3 = dataclasses.replace(sw, escape_epoch=ep, escaped=ok, tau_epochs=tau, tau_time=tau * scale,
                              tau_epochs_low=lo, tau_epochs_high=hi, tau_time_low=lo * scale, tau_time_high=hi * scale)
    n9 = next(v for v in _e4_verdicts(sw3) if v[0] == "N9")
    x, y = sw.batch_size / sw.lr, np.log(sw3.tau_time)
    assert n9[2] == f"{np.corrcoef(x, y)[0, 1] ** 2:.4f}" and n9[3] in (AGREES, DISAGREES)
