"""E4's escape rule: ``criterion="test_mse"`` (the default, unchanged) and ``"rank"`` (the escaping
mode's end-to-end singular value), which does not count the test MSE's short excursions."""

import json
import types

import h5py
import numpy as np
import pytest

from phasetools.io import load, save
from phasetools.training import GaussianTeacher, _arrhenius, arrhenius_sweep, predict_escape, prepare_trap

WD = 0.36
# The test-MSE levels (rank 2 -> rank 1) of the draw at WD, as mse_levels gave them when the goldens were taken.
LEVELS = (0.42682264146124527, 0.6354240052733918)


@pytest.fixture(scope="module")
def small():
    data = GaussianTeacher([0.9, 0.8]).sample(64, rng=3)
    trap = prepare_trap(data, trap_weight_decays=(0.0, 0.3), trap_epochs=(20, 20), n_layers=3, width=3, lr=0.05,
                        batch_size=16, n_seeds=4, rng=1)
    return data, trap


def _sweep(small, **kw):
    data, trap = small
    return arrhenius_sweep(data, trap, lr=0.1, batch_size=[4, 8], target_weight_decay=WD, epochs=40, levels=LEVELS,
                           rng=2, quiet=True, **kw)


def test_default_is_the_test_mse_rule_bit_for_bit(small):
    """Golden values written by the sweep before ``criterion=`` existed (same data, trap, rng)."""
    sw = _sweep(small)
    assert sw.criterion == "test_mse" and sw.sv_index == -1 and np.isnan(sw.sv_threshold)
    assert sw.escape_epoch_mse is None and sw.escaped_mse is None
    assert sw.escape_epoch.tolist() == [[14, 40, 17, 40], [40, 40, 40, 40]]
    assert sw.escaped.tolist() == [[True, False, True, False], [False] * 4]
    assert sw.tau_epochs[0] == 55.5 and np.isnan(sw.tau_epochs[1])
    assert sw.temperature.tolist() == [0.0014934235314733664, 0.0006969309813542377]
    explicit = _sweep(small, criterion="test_mse")
    assert explicit == sw


def test_rank_sweep_keeps_the_test_mse_rule_of_the_same_releases(small):
    rank, default = _sweep(small, criterion="rank"), _sweep(small)
    assert rank.criterion == "rank" and rank.sv_index == 1
    data, _ = small
    ref = predict_escape(data, n_layers=3, width=3, weight_decay=WD, lr=0.1, batch_size=4, mode=1)
    assert rank.sv_threshold == pytest.approx(ref.b_target ** 3)
    np.testing.assert_array_equal(rank.escape_epoch_mse, default.escape_epoch)
    np.testing.assert_array_equal(rank.escaped_mse, default.escaped)
    np.testing.assert_array_equal(rank.tau_epochs_of("test_mse"), default.tau_epochs)
    np.testing.assert_array_equal(rank.tau_epochs_of("rank"), rank.tau_epochs)
    # here the test MSE crosses its midpoint in two seeds while the weak mode stays learned
    assert not rank.escaped.any() and default.escaped.sum() == 2
    with pytest.raises(ValueError, match="criterion"):
        default.tau_epochs_of("rank")


def _fake_run(log_epochs, mse, sv1):
    sv = np.stack([np.full_like(sv1, 0.9), sv1], axis=-1)
    return types.SimpleNamespace(steps_per_epoch=16, log_epochs=log_epochs, test_mse=mse, train_mse=mse,
                                 singular_values=sv)


def test_an_excursion_of_the_test_mse_is_no_escape_by_rank(small, monkeypatch):
    """A constructed log: seed 0's test MSE dips past the midpoint at epoch 3 and returns while its
    weak singular value stays learned; seed 1 loses the mode at epoch 7 (both rules see it)."""
    data, trap = small
    ep = np.arange(11)
    mid = 0.5 * sum(LEVELS)
    mse = np.full((2, ep.size), LEVELS[0])
    mse[0, 3] = mid + 0.01
    mse[1, 7:] = LEVELS[1]
    sv1 = np.full((2, ep.size), 0.2)
    sv1[1, 7:] = 0.01
    monkeypatch.setattr(_arrhenius, "train", lambda *a, **k: _fake_run(ep, mse, sv1))
    by = {c: arrhenius_sweep(data, trap, lr=0.1, batch_size=4, target_weight_decay=WD, epochs=10, levels=LEVELS,
                             criterion=c, rng=2, quiet=True) for c in ("test_mse", "rank")}
    assert 0.01 < by["rank"].sv_threshold < 0.2
    assert by["test_mse"].escape_epoch.tolist() == [[3, 7]] and by["test_mse"].escaped.all()
    assert by["rank"].escape_epoch.tolist() == [[10, 7]] and by["rank"].escaped.tolist() == [[False, True]]
    assert by["rank"].escape_epoch_mse.tolist() == [[3, 7]]


def test_rank_sweep_is_stored_and_read_back(small, tmp_path):
    sw = _sweep(small, criterion="rank")
    assert "criterion='rank'" in repr(sw) and sw.config["criterion"] == "rank"
    save(sw, tmp_path / "e4.h5", name="sw")
    back = load(tmp_path / "e4.h5", "sw")
    assert back == sw and back.criterion == "rank" and back.sv_threshold == sw.sv_threshold
    np.testing.assert_array_equal(back.escape_epoch_mse, sw.escape_epoch_mse)


def test_file_without_the_criterion_loads_as_the_test_mse_rule(small, tmp_path):
    sw = _sweep(small)
    path = tmp_path / "old.h5"
    save(sw, path, name="sw")
    new = ("criterion", "sv_index", "sv_threshold", "escape_epoch_mse", "escaped_mse")
    with h5py.File(path, "r+") as f:        # written as a file of before the criterion would be
        g = f["results"]["sw"]
        tps = json.loads(g.attrs["__types__"])
        for name in new:
            tps.pop(name, None)
            if name in g.attrs:
                del g.attrs[name]
            if name in g:
                del g[name]
        g.attrs["__types__"] = json.dumps(tps)
        from phasetools.io._verify import DIGEST_ATTR, attrs_digest
        if DIGEST_ATTR in g.attrs:
            g.attrs[DIGEST_ATTR] = attrs_digest(g)
    back = load(path, "sw")
    assert back.criterion == "test_mse" and back.sv_index == -1 and back.escape_epoch_mse is None
    np.testing.assert_array_equal(back.escape_epoch, sw.escape_epoch)


def test_bad_criterion_and_a_rank_rule_without_a_mode_to_lose_are_refused(small):
    with pytest.raises(ValueError, match="criterion"):
        _sweep(small, criterion="sv")
    data, trap = small
    with pytest.raises(ValueError, match="criterion='rank'.*levels"):
        arrhenius_sweep(data, trap, lr=0.1, batch_size=4, target_weight_decay=WD, epochs=2, levels=LEVELS[::-1],
                        criterion="rank", quiet=True)
    with pytest.raises(ValueError, match="criterion='rank': mode 1 has no metastable learned state"):
        arrhenius_sweep(data, trap, lr=0.1, batch_size=4, target_weight_decay=0.38, epochs=2, levels=LEVELS,
                        criterion="rank", quiet=True)


def test_cli_arrhenius_criterion(capsys):
    from phasetools.cli import main
    args = ("train arrhenius --n-samples 64 --width 3 --n-seeds 2 --trap-epochs 30,30 --trap-weight-decay 0,0.25 "
            "--target-weight-decay 0.25 --lr 0.05 --batch-size 8 --epochs 3 --seed 1 --escape-to-rank 1 "
            "--quiet").split()
    assert main([*args, "--criterion", "rank", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["criterion"] == "rank" and len(out["n_escaped_mse"]) == 1
    assert main(args) == 0
    assert "escape rule 'test_mse'" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main([*args, "--criterion", "loss"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "criterion" in err and len(err.splitlines()) == 1
