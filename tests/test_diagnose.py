"""phasetools.diagnose: the plateau/drop rule on synthetic curves with known plateaus, and the log readers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from phasetools.diagnose import LossLog, find_plateaus, load_log


def _two_plateaus(noise=0.01, t_drop=3000.0, rng=0):
    e = np.arange(0, 6001, 5.0)
    L = np.where(e < t_drop, 0.7 + 0.3 * np.exp(-e / 20), 0.46 + 0.24 / (1 + np.exp(np.clip((e - t_drop) / 5, -50, 50))))
    return e, L * (1 + noise * np.random.default_rng(rng).standard_normal(e.size))


@pytest.mark.parametrize("t_drop", [1500.0, 3000.0, 4500.0])
def test_known_plateau_and_abrupt_drop_are_found(t_drop):
    e, L = _two_plateaus(t_drop=t_drop)
    p = find_plateaus({"epoch": e, "test_mse": L})
    assert p.n_plateaus == 2
    assert abs(p.plateau_level[0] - 0.70) < 0.01 and abs(p.plateau_level[1] - 0.46) < 0.01
    assert p.plateau_start[0] < 100 and abs(p.plateau_end[0] - t_drop) <= 30
    assert list(p.plateau_censored) == [False, True]
    assert p.drop_epoch.size == 1 and abs(p.drop_epoch[0] - t_drop) <= 10
    assert p.drop_abrupt[0] and p.drop_duration[0] <= 50
    assert abs(p.plateau_slope[0]) < 0.01          # flat: < 1% per 1000 epochs


def test_smooth_decay_has_no_plateau_and_slow_fall_is_not_abrupt():
    e = np.arange(0, 2001, 5.0)
    assert find_plateaus({"epoch": e, "loss": np.exp(-e / 150.0) + 1e-9 * 0}).n_plateaus <= 1   # only the tail
    assert find_plateaus({"epoch": e, "loss": 1.0 - 0.4 * e / 2000}).n_plateaus == 0
    # plateau then a slow (1000-epoch) linear fall: a drop, not abrupt
    L = np.where(e < 800, 0.7, np.maximum(0.3, 0.7 - 0.4 * (e - 800) / 1000))
    p = find_plateaus({"epoch": e, "loss": L}, min_length=150)
    assert p.drop_epoch.size == 1 and not p.drop_abrupt[0]


def test_decaying_exponential_tail_is_one_censored_plateau():
    e = np.arange(0, 2001, 5.0)
    p = find_plateaus({"epoch": e, "loss": 0.5 + np.exp(-e / 30.0)})
    assert p.n_plateaus == 1 and p.plateau_censored[0] and p.drop_epoch.size == 0


def test_readers_agree(tmp_path):
    e, L = _two_plateaus()
    np.savez(tmp_path / "log.npz", epoch=e, test_mse=L, train_mse=0.9 * L)
    with open(tmp_path / "log.csv", "w") as f:
        f.write("epoch,train_loss,val_loss,run\n" + "".join(f"{a},{0.9 * b},{b},x\n" for a, b in zip(e, L)))
    import h5py
    with h5py.File(tmp_path / "log.h5", "w") as f:
        f["epochs"], f["test_loss"], f["train_loss"] = e, L, 0.9 * L
    rows = [{"epoch": float(a), "train_loss": 0.9 * float(b), "val_loss": float(b)} for a, b in zip(e, L)]
    logs = [load_log(tmp_path / "log.npz"), load_log(str(tmp_path / "log.csv")), load_log(tmp_path / "log.h5"),
            load_log(rows)]
    for g in logs:
        assert isinstance(g, LossLog)
        np.testing.assert_allclose(g.epochs, e)
        np.testing.assert_allclose(g.test_mse, L, rtol=1e-12)
        np.testing.assert_allclose(g.train_mse, 0.9 * L, rtol=1e-12)
    assert len({find_plateaus(g).n_plateaus for g in logs}) == 1


def test_training_run_log():
    from phasetools.training import GaussianTeacher, train
    t = GaussianTeacher((0.9, 0.8))
    run = train(t.moments, n_layers=3, width=4, epochs=50, lr=0.1, weight_decay=0.0, n_seeds=2, rng=1, log_every=5)
    g = load_log(run, seed=1)
    np.testing.assert_array_equal(g.epochs, run.log_epochs)
    np.testing.assert_array_equal(g.train_mse, run.train_mse[1])
    with pytest.raises(ValueError, match="seed"):
        load_log(run, seed=2)


@pytest.mark.parametrize("kw, match", [({"tol": 0}, "tol"), ({"min_length": 0}, "min_length"),
                                       ({"min_drop": 1.5}, "min_drop"), ({"window": 0}, "window"),
                                       ({"curve": "val"}, "curve")])
def test_bad_options(kw, match):
    e, L = _two_plateaus()
    with pytest.raises(ValueError, match=match):
        find_plateaus({"epoch": e, "loss": L}, **kw)


def test_bad_logs(tmp_path):
    with pytest.raises(ValueError, match="no loss column"):
        load_log({"epoch": [0, 1], "accuracy": [1, 2]})
    with pytest.raises(ValueError, match="increasing"):
        load_log({"epoch": [0, 0], "loss": [1, 2]})
    (tmp_path / "x.json").write_text(json.dumps({"loss": [1, 2]}))
    with pytest.raises(ValueError, match="file type"):
        load_log(tmp_path / "x.json")
    with pytest.raises(ValueError, match="no such file"):
        load_log(tmp_path / "missing.npz")
