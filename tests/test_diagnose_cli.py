"""``phasetools diagnose LOG``: a stored run, a CSV log, and weights + data files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from phasetools import io
from phasetools import training as tr
from phasetools.cli._main import main


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("diag")
    t = tr.GaussianTeacher((0.9, 0.8))
    d = t.sample(512, rng=1)
    trap = tr.prepare_trap(d, trap_weight_decays=(0.0, tr.trap_weight_decay(d, 1, n_layers=3)), trap_epochs=(300, 600),
                           n_layers=3, width=10, lr=0.08, batch_size=64, n_seeds=1, rng=2)
    run = tr.train(d, n_layers=3, width=10, epochs=600, lr=0.08, batch_size=64, weight_decay=0.258, init=trap,
                   test=t.test_set(), log_every=5, rng=3, convention="paper")
    io.save(run, tmp / "run.h5")
    np.savez(tmp / "data.npz", X=d.X, Y=d.Y)
    np.savez(tmp / "ckpt.npz", **{f"{i}.weight": w for i, w in enumerate(run.weights(seed=0))})
    with open(tmp / "log.csv", "w") as f:
        f.write("epoch,train_loss,val_loss\n")
        f.writelines(f"{e},{a},{b}\n" for e, a, b in zip(run.log_epochs, run.train_mse[0], run.test_mse[0]))
    return tmp


def test_stored_run(stored, capsys, tmp_path):
    assert main(["diagnose", str(stored / "run.h5"), "--plot", str(tmp_path / "f.png"),
                 "--out", str(tmp_path / "d.h5")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("rank-1 metastable state at weight decay 0.258") and "plateau 1: epochs" in out
    assert (tmp_path / "f.png").exists() and io.load(tmp_path / "d.h5").state.metastable


def test_csv_with_weights_and_data(stored, capsys):
    assert main(["diagnose", str(stored / "log.csv"), "--weights", str(stored / "ckpt.npz"), "--data",
                 str(stored / "data.npz"), "--weight-decay", "0.258", "--lr", "0.08", "--batch-size", "64",
                 "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert "pure SGD cannot start it" in got["summary"]


def test_csv_alone_and_errors(stored, capsys):
    assert main(["diagnose", str(stored / "log.csv")]) == 0
    assert "plateau" in capsys.readouterr().out
    assert main(["diagnose", str(stored / "log.csv"), "--weights", str(stored / "ckpt.npz")]) == 2
    assert "--data" in capsys.readouterr().err
    assert main(["diagnose", str(stored / "missing.csv")]) == 2


def test_teacher_data_flags(stored, capsys):
    assert main(["diagnose", str(stored / "log.csv"), "--weights", str(stored / "ckpt.npz"), "--eta", "0.9,0.8",
                 "--n-samples", "512", "--data-seed", "1", "--weight-decay", "0.258", "--lr", "0.08"]) == 0
    assert "absent in every layer" in capsys.readouterr().out
    assert main(["diagnose", str(stored / "log.csv"), "--weights", str(stored / "ckpt.npz"), "--eta", "0.9,0.8",
                 "--data", str(stored / "data.npz"), "--weight-decay", "0.258"]) == 2
    assert "not both" in capsys.readouterr().err
