"""``phasetools nonlinear ...`` on tiny problems: every subcommand runs, stores and reads back."""

from __future__ import annotations

import json

from phasetools.cli._main import main

TINY = ["--p", "11", "--width", "16", "--seed", "1", "--dtype", "float64"]


def _json(capsys):
    return json.loads(capsys.readouterr().out)


def test_grok_sweep_escape_and_verdicts(tmp_path, capsys):
    out = str(tmp_path / "n.h5")
    assert main(["nonlinear", "grok", *TINY, "--epochs", "4", "--log-every", "2", "--json", "--out", out]) == 0
    grok = _json(capsys)
    assert len(grok["final_test_acc"]) == 1 and grok["stored"]
    assert main(["nonlinear", "sweep", *TINY, "--weight-decay", "0,1", "--epochs-per-step", "2", "--json",
                 "--out", out]) == 0
    assert _json(capsys)["weight_decays"] == [0.0, 1.0]
    assert main(["nonlinear", "escape", *TINY, "--prepare-epochs", "3", "--release-weight-decay", "0.001",
                 "--batch-size", "4,8", "--lr", "1", "--release-epochs", "2", "--log-every", "1", "--n-seeds", "2",
                 "--json", "--out", out]) == 0
    esc = _json(capsys)
    assert esc["batch_size"] == [4, 8]
    assert main(["nonlinear", "verdicts", out, "--json"]) == 0
    table = _json(capsys)
    assert [v["quantity"] for v in table] == ["first-order transitions in weight decay", "hysteresis",
                                              "metastable memorising state", "Arrhenius escape in B/lr"]
    assert main(["nonlinear", "verdicts", out]) == 0
    assert "rule:" in capsys.readouterr().out


def test_bad_input_is_one_line_error(capsys):
    assert main(["nonlinear", "grok", "--p", "12", "--epochs", "1"]) == 2
    assert "p must be a prime" in capsys.readouterr().err
    assert main(["nonlinear", "grok", "--task", "synthetic_images", "--model", "quadratic", "--epochs", "1"]) == 2
