"""Bad input to the commands added today: one line on stderr, exit status 2, the parameter named.

Each case here was found by trying bad values on the command line; each failed before its fix
(a traceback, a hang, a silently dropped value or a message naming another parameter).
"""

from __future__ import annotations

import json

import pytest

from phasetools.cli import main

AMS = ["--n-replicas", "10", "--n-kill", "1", "--n-runs", "2", "--n-walkers", "10", "--n-rounds", "2", "--quiet"]
TINY = ["--p", "11", "--width", "16", "--seed", "1", "--dtype", "float64"]


def _run(argv):
    try:
        return main(argv)
    except SystemExit as exc:   # argparse usage errors
        return exc.code


def _one_line_error(capsys, argv, *words):
    assert _run(argv) == 2, argv
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for w in words:
        assert w in err, err
    return err


@pytest.mark.parametrize("ratio", ["0", "-3", "inf", "4,0"])
def test_rare_escape_barrier_ratio_not_positive_is_refused(capsys, ratio):
    # --barrier-ratio 0 was a ZeroDivisionError traceback; -3 and inf were blamed on "temperature"
    _one_line_error(capsys, ["rare", "escape", "--barrier-ratio", ratio, *AMS], "barrier_ratio")


@pytest.mark.parametrize("target", ["-1", "0"])
def test_rare_train_target_not_positive_is_refused(capsys, target):
    # a top singular value never goes below 0: the run used to loop for ever
    _one_line_error(capsys, ["rare", "train", "--n-samples", "64", "--target", target, *AMS], "target", "> 0")


@pytest.mark.parametrize("flag, value, name", [("--weight-decay", "nan", "weight_decay"),
                                               ("--weight-decay", "-1", "weight_decay"),
                                               ("--eta", "nan", "eta")])
def test_rare_train_errors_name_the_flags(capsys, flag, value, name):
    # were reported as "gamma" and "c" (the chain problem's names), which rare train has no flag for
    err = _one_line_error(capsys, ["rare", "train", "--n-samples", "64", flag, value, *AMS], name)
    assert "gamma" not in err and " c " not in err


@pytest.mark.parametrize("content", [b"\x89HDF\r\n\x1a\n" + b"\0" * 100, b"not an hdf5 file at all" * 50])
def test_diagnose_corrupt_h5_names_the_file(capsys, tmp_path, content):
    bad = tmp_path / "run.h5"
    bad.write_bytes(content)
    _one_line_error(capsys, ["diagnose", str(bad)], "LOG", str(bad), "HDF5")


def test_diagnose_truncated_store_names_the_file(capsys, tmp_path):
    from phasetools.io import save
    from phasetools.theory import critical_points

    good = tmp_path / "good.h5"
    save(critical_points(3, 1.0), good)
    data = good.read_bytes()
    (tmp_path / "cut.h5").write_bytes(data[: len(data) // 3])
    _one_line_error(capsys, ["diagnose", str(tmp_path / "cut.h5")], "LOG", "cut.h5")


@pytest.mark.parametrize("argv, name", [
    (["predict", "escape", "--weight-decay", "0.35,0.4"], "weight_decay"),
    (["predict", "plateau", "--weight-decay", "0.0025", "--lr", "0.1,0.2", "--seed-size", "0.01"], "lr"),
    (["predict", "plateau", "--weight-decay", "0.0025", "--threshold", "1e-3,1e-2", "--seed-size", "0.01"],
     "threshold"),
])
def test_predict_one_value_flags_refuse_lists(capsys, argv, name):
    # a list was cut to its first value without a word
    _one_line_error(capsys, argv, name, "one value")


def test_predict_counts_accept_float_spelling(capsys):
    # --n-samples 1e3 was refused as "not an integer >= 2" while every other command takes it
    assert _run(["predict", "escape", "--weight-decay", "0.35", "--n-samples", "1e3", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["n_samples"] == 1000


@pytest.mark.parametrize("law, name", [("1/temperature", "temperature"),
                                       ("batch_size/(lr*label_noise^2)", "label_noise")])
def test_nonlinear_escape_x_law_without_its_noise_is_refused(capsys, law, name):
    # every abscissa was inf: the run went through and printed NaN p-values with exit status 0
    argv = ["nonlinear", "escape", *TINY, "--prepare-epochs", "2", "--release-weight-decay", "0.001",
            "--release-epochs", "2", "--log-every", "1", "--batch-size", "4,8", "--x-law", law]
    _one_line_error(capsys, argv, "x-law", name)


@pytest.mark.parametrize("argv", [
    ["nonlinear", "init-scale", *TINY, "--init-scales", "1,2", "--epochs", "1"],
    ["nonlinear", "escape", *TINY, "--prepare-epochs", "1", "--release-weight-decay", "0.001", "--release-epochs", "1"],
    ["nonlinear", "grok", *TINY, "--epochs", "1"],
    ["nonlinear", "sweep", *TINY, "--weight-decay", "0,1", "--epochs-per-step", "1"]])
def test_nonlinear_batch_size_with_full_sampling_is_refused(capsys, argv):
    # the API ignores batch_size with sampling="full": the run went through at the full batch, exit 0
    _one_line_error(capsys, [*argv, "--sampling", "full", "--batch-size", "4"], "--batch-size 4", "--sampling full")


@pytest.mark.parametrize("argv", [
    ["nonlinear", "grok", *TINY, "--model", "relu", "--epochs", "1", "--label-noise", "0.1"],
    ["nonlinear", "escape", *TINY, "--model", "relu", "--prepare-epochs", "1", "--release-weight-decay", "0.001",
     "--release-epochs", "1", "--batch-size", "4", "--label-noise", "0,0.1"]])
def test_nonlinear_label_noise_on_cross_entropy_names_the_flags(capsys, argv):
    # the message advised "use label_noise=0", an API argument the command line does not have
    err = _one_line_error(capsys, argv, "--label-noise", "--model relu")
    assert "label_noise=" not in err


def test_nonlinear_api_label_noise_message_names_the_argument():
    from phasetools import nonlinear as nl

    task, model = nl.build_task_and_model(model="relu", p=11, width=8)
    with pytest.raises(ValueError, match="use label_noise=0"):
        nl.train(task, model, nl.sgd(1.0), epochs=1, label_noise=0.1)


@pytest.mark.parametrize("argv, flag", [
    (["train", "sweep", "--eta", "1", "--weight-decay", "0.1,0.2", "--batch-size", "64"], "--batch-size"),
    (["train", "trap", "--eta", "1"], "--batch-size"),   # the default batch size, 64
    (["train", "arrhenius", "--eta", "1", "--batch-size", "8,64"], "--batch-size"),
    (["train", "arrhenius", "--eta", "1", "--batch-size", "8"], "the trap's batch size")])
def test_train_batch_larger_than_the_samples_names_the_flags(capsys, argv, flag):
    # the message advised "use drop_last=False", an API argument the command line does not have
    err = _one_line_error(capsys, [*argv, "--n-samples", "32", "--n-seeds", "1", "--quiet"], flag, "--n-samples")
    assert "drop_last" not in err
    assert "a smaller the" not in err   # the trap's batch size has no flag: only --n-samples can change


def test_training_api_batch_message_names_drop_last():
    from phasetools.training import GaussianTeacher, train

    data = GaussianTeacher([1.0]).sample(32, rng=0)
    with pytest.raises(ValueError, match="drop_last=False"):
        train(data, n_layers=2, width=2, lr=0.01, weight_decay=0.1, epochs=1, batch_size=64)


@pytest.mark.parametrize("kind", ["text", "folder"])
def test_out_that_is_not_an_hdf5_file_is_refused_before_any_work(capsys, tmp_path, kind):
    # was refused only after the computation had run; the file is never touched
    out = tmp_path / "notes.txt"
    if kind == "text":
        out.write_text("my notes\n")
    else:
        out.mkdir()
    argv = ["rare", "escape", "--barrier-ratio", "3", *AMS, "--out", str(out)]
    err = _one_line_error(capsys, argv, "--out")
    assert "not an HDF5 file" in err or "is a folder" in err
    if kind == "text":
        assert out.read_text() == "my notes\n"


@pytest.mark.parametrize("extra, words", [(["--coordinate", "bogus"], ("coordinate", "sharpness")),
                                          (["--coordinate", "sharpness", "--direction", "fwd"],
                                           ("--coordinate sharpness needs --direction bwd",)),
                                          (["--coordinate", "sharpness2"], ("coordinate", "rank 1")),
                                          (["--coordinate", "sv2"], ("coordinate", "sv1..sv1"))])
def test_rare_train_bad_coordinate_is_one_line(capsys, extra, words):
    _one_line_error(capsys, ["rare", "train", "--n-samples", "64", *extra, *AMS], *words)
