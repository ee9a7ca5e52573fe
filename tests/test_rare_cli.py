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


@pytest.mark.parametrize("flags", [["--scheduler", "garbage"], ["--n-workers", "3"], ["--plot", "P"],
                                   ["--n-replicas", "7"], ["--n-kill", "2"], ["--n-runs", "3"], ["--n-walkers", "3"],
                                   ["--n-rounds", "3"], ["--keep-paths"], ["--coordinate", "sharpness"],
                                   ["--start", "0.5"], ["--level", "0.4"], ["--dask-workers", "2"]])
def test_rare_train_kick_refuses_ams_only_flags(flags, tmp_path, capsys, monkeypatch):
    # they used to be accepted and ignored (rc 0, no plot written)
    monkeypatch.chdir(tmp_path)
    assert main(["rare", "train", "--method", "kick", "--lr", "0.1", *flags]) == 2
    err = capsys.readouterr().err
    assert flags[0] in err and "--method ams" in err and err.count("\n") == 1, err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("flags", [["--well", "0.2,1.0"], ["--n-chains", "3"], ["--kick", "1.2"]])
def test_rare_train_ams_refuses_kick_only_flags(flags, capsys):
    assert main(["rare", "train", *flags, *SMALL]) == 2
    err = capsys.readouterr().err
    assert flags[0] in err and "--method kick" in err and err.count("\n") == 1, err


@pytest.mark.parametrize("well", ["0.2,1.0,", ",0.2,1.0", "0.2,,1.0", "0.2", "0.2,1.0,2.0"])
def test_rare_train_kick_refuses_a_malformed_well(well, capsys):
    assert main(["rare", "train", "--method", "kick", "--lr", "0.1", "--well", well]) == 2
    err = capsys.readouterr().err
    assert "--well" in err and err.count("\n") == 1, err


def test_rare_train_reports_print_the_same_lines_for_both_methods(capsys):
    """The one report function prints each method's header and result line (as before the merge)."""
    import argparse
    import types

    from phasetools.cli._rare import _train_report

    args = argparse.Namespace(json=False, out=None, plot=None, lr=0.1, batch_size=4, weight_decay=0.32,
                              sampling="replacement", direction="bwd", coordinate="sv1")
    res = types.SimpleNamespace(tau=12.5, tau_lower=10.0, tau_upper=16.0, p=0.0123, cost={"total": 12345.0},
                                stats={"wall_time": 1.25})
    _train_report(args, res, 0.0462726)
    assert capsys.readouterr().out == (
        "SGD escape (lr 0.1, B 4, weight decay 0.32, replacement) bwd to top singular value 0.04627 (AMS score sv1):\n"
        "  tau = 12.5 epochs  [10, 16]  p = 0.0123  steps 1.23e+04  wall 1.2s\n")
    from phasetools import rare

    fake = types.SimpleNamespace(tau=12.5, tau_lower=10.0, tau_upper=16.0, k=1e-3, top_share=0.25,
                                 cost={"total": 12345.0}, stats={"wall_seconds": 1.25},
                                 options={"thin": 32, "n_continue": 4})
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(rare, "kick_escape", lambda *a, **k: fake)
        assert main(["rare", "train", "--method", "kick", "--lr", "0.1", "--well", "0.2,1.0", "--target", "0.05"]) \
            in (0, None)
    assert capsys.readouterr().out == (
        "SGD escape (lr 0.1, B 4, weight decay 0.32, replacement) bwd to top singular value 0.05 (kick estimator, "
        "well 0.2-1):\n"
        "  tau = 12.5 epochs  [10, 16]  top share 0.25  steps 1.23e+04  wall 1.2s\n")


def _fake_kick(calls):
    import types

    def fake(*args, **kwargs):
        calls.append(kwargs)
        from phasetools.rare._kick import _resolve_options

        opts = _resolve_options(kwargs["options"], kwargs["sampling"], 128)
        return types.SimpleNamespace(tau=12.5, tau_lower=10.0, tau_upper=16.0, k=1e-3, top_share=0.25,
                                     cost={"total": 1.0}, stats={"wall_seconds": 1.0}, options=dict(opts.__dict__))
    return fake


def test_rare_train_kick_passes_continuation_thin_n_continue_and_prints_the_real_sampling(capsys, monkeypatch):
    """--continuation, --thin, --n-continue reach KickOptions (None: the sampling's default, printed
    resolved); the header names the sampling given (it said "replacement" for --sampling shuffle)."""
    import json

    from phasetools import rare

    calls = []
    monkeypatch.setattr(rare, "kick_escape", _fake_kick(calls))
    base = ["rare", "train", "--method", "kick", "--lr", "0.1", "--well", "0.2,1.0", "--target", "0.05"]
    assert main([*base, "--sampling", "shuffle"]) in (0, None)
    out = capsys.readouterr().out
    assert out.startswith("SGD escape (lr 0.1, B 4, weight decay 0.32, shuffle)"), out
    opts = calls[-1]["options"]
    assert (opts.continuation, opts.thin, opts.n_continue) == ("trainer", None, None)
    assert main([*base, "--continuation", "kicks", "--thin", "40", "--n-continue", "16", "--json"]) in (0, None)
    row = json.loads(capsys.readouterr().out)
    opts = calls[-1]["options"]
    assert (opts.continuation, opts.thin, opts.n_continue) == ("kicks", 40, 16)
    assert (row["continuation"], row["thin"], row["n_continue"]) == ("kicks", 40, 16)
    assert main([*base, "--sampling", "shuffle", "--json"]) in (0, None)
    row = json.loads(capsys.readouterr().out)
    assert (row["thin"], row["n_continue"]) == (33, 256)


@pytest.mark.parametrize(("flags", "word"), [(["--thin", "0"], "thin"), (["--n-continue", "0"], "n_continue"),
                                             (["--continuation", "nested"], "--continuation"),
                                             (["--sampling", "shuffle", "--thin", "32"], "thin"),
                                             (["--sampling", "shuffle", "--continuation", "kicks"], "continuation")])
def test_rare_train_kick_refuses_bad_continuation_thin_n_continue(flags, word, capsys):
    try:                                                    # argparse's refusals exit, the API's return 2
        code = main(["rare", "train", "--method", "kick", "--lr", "0.1", *flags])
    except SystemExit as exc:
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert word in err and err.count("\n") == 1, err


@pytest.mark.parametrize("flags", [["--thin", "33"], ["--n-continue", "8"], ["--continuation", "kicks"]])
def test_rare_train_ams_refuses_the_new_kick_flags(flags, capsys):
    assert main(["rare", "train", *flags, *SMALL]) == 2
    err = capsys.readouterr().err
    assert flags[0] in err and "--method kick" in err and err.count("\n") == 1, err
