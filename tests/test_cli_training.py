"""`phasetools train ...` in-process, at small scale."""

import json

from phasetools.cli import main
from phasetools.io import list_results, load


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_train_sweep_population_table_and_hdf5(capsys, tmp_path):
    f = tmp_path / "e1.h5"
    code, out, _ = run(capsys, "train", "sweep", "--weight-decay", "0.33:0.43:11", "--n-seeds", "1", "--quiet",
                       "--seed", "1", "--out", str(f))
    assert code == 0
    assert "spinodals [0.3509, 0.4105]" in out and "0.36, 0.42" in out
    (stored,) = list_results(f)
    res = load(f, stored.name)
    assert res.rank[0, 0] == 2 and res.rank[0, -1] == 0


def test_train_sweep_json_finite_draws(capsys):
    code, out, _ = run(capsys, "train", "sweep", "--weight-decay", "0.2,0.3,0.4,0.45", "--n-samples", "512", "--n-draws",
                       "2", "--n-seeds", "1", "--quiet", "--seed", "2", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["direction"] == "increasing" and len(doc["draws"]) == 2


def test_train_trap_reports_untrapped_draw(capsys):
    code, out, _ = run(capsys, "train", "trap", "--trap-epochs", "100,100", "--epochs", "50", "--n-seeds", "2",
                       "--quiet", "--seed", "3")
    assert code == 0 and "no seed was trapped" in out


def test_train_trap_corrected_rank1(capsys):
    code, out, _ = run(capsys, "train", "trap", "--trap-rank", "1", "--trap-epochs", "200,400", "--epochs", "100",
                       "--n-seeds", "2", "--quiet", "--seed", "4", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["trap_rank"] == [1, 1] and doc["escaped_mse"] == [False, False]


def test_train_arrhenius_and_sparse(capsys, tmp_path):
    f = tmp_path / "e4.h5"
    code, out, _ = run(capsys, "train", "arrhenius", "--trap-weight-decay", "0,0.35", "--trap-epochs", "50,50",
                       "--target-weight-decay", "0.35", "--escape-to-rank", "1", "--lr", "0.1", "--batch-size", "8,16",
                       "--epochs", "30", "--n-seeds", "2", "--quiet", "--seed", "5", "--out", str(f))
    assert code == 0 and "T_eff" in out
    kinds = sorted(r.kind for r in list_results(f))
    assert kinds == ["ArrheniusSweep", "TrainingRun"]
    code, out, _ = run(capsys, "train", "sparse", "--pool-size", "200", "--test-size", "200", "--trap-epochs",
                       "60,400", "--batch-size", "64", "--n-seeds", "1", "--epochs", "100", "--quiet",
                       "--seed", "6")
    assert code == 0 and "not trapped" in out


def test_train_bad_input_is_one_line(capsys):
    for argv in (["train", "sweep", "--weight-decay", "0.3,0.2,0.4"],
                 ["train", "trap", "--n-samples", "0"],
                 ["train", "trap", "--trap-weight-decay", "0,0.36", "--trap-epochs", "10"],
                 ["train", "arrhenius", "--lr", "-1", "--trap-epochs", "5,5", "--epochs", "5"],
                 ["train", "trap", "--lr", "0.1,0.2"],
                 ["train", "sweep", "--weight-decay", "0:0.4:1"],
                 ["train", "sweep", "--eta", "0.9,x"]):
        code, out, err = run(capsys, *argv, "--quiet")
        assert code == 2, argv
        assert err.startswith("phasetools: error:") and err.count("\n") == 1 and "Traceback" not in err


def test_plot_kinds_for_protocol_results(tmp_path, capsys):
    f = tmp_path / "e1.h5"
    run(capsys, "train", "sweep", "--weight-decay", "0.3,0.4,0.45", "--n-seeds", "1", "--quiet", "--seed", "7",
        "--out", str(f))
    png = tmp_path / "sweep.png"
    code, _, err = run(capsys, "plot", str(f), "-o", str(png))
    assert code == 0, err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 10_000          # a drawn figure, not an empty canvas


def test_train_sweep_weight_decay_range_and_json_key(capsys):
    """--weight-decay takes a range START:STOP:NUM; the JSON summary names the values weight_decays."""
    code, out, _ = run(capsys, "train", "sweep", "--weight-decay", "0.3:0.45:4", "--n-seeds", "1", "--quiet",
                       "--seed", "2", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["weight_decays"] == [0.3, 0.35, 0.4, 0.45] and "betas" not in doc


def test_train_flags_renamed(capsys):
    """The retired spellings are refused (one flag per concept)."""
    for argv in (["train", "sweep", "--betas", "0.3,0.4"], ["train", "trap", "--target-beta", "0.3"],
                 ["train", "arrhenius", "--lrs", "0.1"], ["train", "sparse", "--batch-sizes", "64"],
                 ["train", "sweep", "--draws", "2"]):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
        capsys.readouterr()
        assert code == 2, argv
