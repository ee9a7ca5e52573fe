"""``phasetools rare escape``: a tiny end-to-end run (stores, prints, refuses bad input)."""

import json

import pytest

from phasetools.cli import main
from phasetools.io import load

SMALL = ["--n-replicas", "10", "--n-kill", "1", "--n-runs", "2", "--n-walkers", "10", "--n-rounds", "2", "--quiet"]


def test_rare_escape_stores_and_prints_json(tmp_path, capsys):
    out = tmp_path / "ams.h5"
    code = main(["rare", "escape", "--model", "double_well", "--barrier-ratio", "4", "--seed", "1", "--json",
                 "--out", str(out), *SMALL])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    point = summary["points"][0]
    assert point["temperature"] == pytest.approx(0.25 / 4)
    assert point["tau_lower"] < point["tau"] < point["tau_upper"]
    stored = load(out, summary["stored"][0])
    assert stored.tau == point["tau"]


def test_rare_escape_needs_one_of_temperature_and_barrier_ratio(capsys):
    assert main(["rare", "escape", "--model", "double_well", *SMALL]) == 2
    assert "--temperature" in capsys.readouterr().err


def test_rare_escape_plots_the_levels(tmp_path, capsys):
    prefix = tmp_path / "ams"
    assert main(["rare", "escape", "--model", "double_well", "--barrier-ratio", "4", "--seed", "1", "--plot",
                 str(prefix), *SMALL]) == 0
    assert (tmp_path / "ams_tau.png").stat().st_size > 0 and (tmp_path / "ams_levels.png").stat().st_size > 0


def test_rare_train_stores_plots_and_prints_json(tmp_path, capsys):
    out, prefix = tmp_path / "sgd.h5", tmp_path / "sgd"
    code = main(["rare", "train", "--target", "0.25", "--start", "0.534", "--level", "0.386", "--n-samples", "64",
                 "--seed", "1", "--json", "--out", str(out), "--plot", str(prefix), "--keep-paths", *SMALL])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["tau_lower"] < summary["tau_epochs"] < summary["tau_upper"]
    stored = load(out, summary["stored"][0])
    assert stored.tau == summary["tau_epochs"] and stored.potential == "sgd_training"
    assert all(x.shape[1] == 3 for x in stored.reactive()) and stored.reactive_lengths.size > 0
    assert (tmp_path / "sgd_levels.png").stat().st_size > 0


def test_rare_train_takes_the_sharpness_score(tmp_path, capsys):
    out = tmp_path / "sgd.h5"
    code = main(["rare", "train", "--coordinate", "sharpness", "--n-samples", "64", "--lr", "0.1", "--seed", "1",
                 "--json", "--out", str(out), *SMALL])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["coordinate"] == "sharpness" and summary["p"] >= 0
    assert load(out, summary["stored"][0]).order == "sharpness"
    assert "Traceback" not in capsys.readouterr().err


def test_rare_escape_prints_runtime_warnings_as_lines_and_lets_others_through(monkeypatch, capsys):
    # every category used to be recorded and printed as "phasetools: warning: ..."; only RuntimeWarning
    # (the AMS precision warning) is, others reach the filters outside unchanged
    import warnings

    from phasetools import rare

    real = rare.escape_time

    def noisy(*args, **kwargs):
        warnings.warn("a deprecated option", UserWarning)
        warnings.warn("too few replicas", RuntimeWarning)
        return real(*args, **kwargs)

    monkeypatch.setattr(rare, "escape_time", noisy)
    with pytest.warns(UserWarning, match="a deprecated option"):
        assert main(["rare", "escape", "--barrier-ratio", "4", "--seed", "1", *SMALL]) == 0
    err = capsys.readouterr().err
    assert err == "phasetools: warning: dU/T = 4: too few replicas\n"
