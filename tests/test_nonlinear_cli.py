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


def test_bad_numbers_are_one_line_errors_with_status_2(capsys):
    for argv, name in ((["--epochs", "ten"], "epochs"), (["--p", "1.5"], "p"), (["--width", "0"], "width"),
                       (["--n-seeds", "-1"], "n_seeds"), (["--threshold", "high"], "threshold")):
        try:
            code = main(["nonlinear", "grok", *argv])
        except SystemExit as exc:
            code = exc.code
        assert code == 2, argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and name in err, err


def test_noise_flags_and_init_scale(tmp_path, capsys):
    out = str(tmp_path / "n.h5")
    assert main(["nonlinear", "grok", *TINY, "--epochs", "2", "--label-noise", "0.1", "--temperature", "1e-4",
                 "--json", "--out", out]) == 0
    _json(capsys)
    from phasetools.io import load

    run = load(out)
    assert run.label_noise == 0.1 and run.temperature == 1e-4
    assert main(["nonlinear", "escape", *TINY, "--prepare-epochs", "2", "--release-weight-decay", "0.001",
                 "--batch-size", "4", "--lr", "1", "--temperature", "1e-4,1e-3", "--release-epochs", "2",
                 "--json"]) == 0
    assert _json(capsys)["x_law"] == "1/temperature"
    assert main(["nonlinear", "escape", *TINY, "--prepare-epochs", "2", "--release-weight-decay", "0.001",
                 "--sampling", "full", "--temperature", "0,1e-4,1e-3", "--release-epochs", "2", "--json"]) == 0
    assert _json(capsys)["batch_size"] == [60] * 3  # full batch: the 60 training pairs, no --batch-size needed
    assert main(["nonlinear", "init-scale", *TINY, "--init-scales", "1,2", "--epochs", "2", "--log-every", "1",
                 "--json"]) == 0
    assert _json(capsys)["init_scales"] == [1.0, 2.0]
