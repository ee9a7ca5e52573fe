"""The CLI, tested in-process (and once as a real subprocess for the entry point)."""

import json
import subprocess
import sys

import pytest

from phasetools import __version__
from phasetools.cli import main
from phasetools.theory import critical_points, landscape, modes


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_readme_main_job(capsys):
    code, out, err = run(capsys, "theory", "modes", "--n-layers", "3", "--c", "0.9,0.8",
                         "--convention", "paper")
    assert code == 0 and err == ""
    assert "0.344839" in out and "0.410549" in out and "0.294723" in out and "0.350882" in out


def test_critical_json_keys_are_the_field_names(capsys):
    code, out, _ = run(capsys, "theory", "critical", "--n-layers", "3", "--c", "0.9", "--json")
    data = json.loads(out)
    ref = critical_points(3, 0.9)
    assert set(data) == set(ref.to_dict())
    assert data["gamma_c"] == ref.gamma_c and data["order"] == "first"


def test_landscape_json(capsys):
    code, out, _ = run(capsys, "theory", "landscape", "--n-layers", "3", "--c", "0.8", "--gamma", "0.32",
                       "--convention", "paper", "--width", "2", "--json")
    data = json.loads(out)
    ref = landscape(3, 0.8, 0.32, convention="paper", width=2)
    assert set(data) == set(ref.to_dict())
    assert data["barrier_fwd"] == ref.barrier_fwd
    assert data["hessian_saddle"]["multiplicities"] == list(ref.hessian_saddle.multiplicities)
    assert data["convention"]["name"] == "paper"


def test_landscape_absent_states_are_null(capsys):
    code, out, _ = run(capsys, "theory", "landscape", "--n-layers", "3", "--c", "1", "--gamma", "0.9", "--json")
    data = json.loads(out)
    assert data["b_saddle"] is None and data["hessian_min"] is None and data["phase"] == "trivial"
    code, out, _ = run(capsys, "theory", "landscape", "--n-layers", "3", "--c", "1", "--gamma", "0.9")
    assert "absent" in out


def test_modes_table_and_json(capsys):
    code, out, _ = run(capsys, "theory", "modes", "--n-layers", "3", "--c", "3,2,1,0.5", "--gamma", "0.15")
    assert code == 0 and "5 states, 4 metastable" in out
    code, out, _ = run(capsys, "theory", "modes", "--n-layers", "3", "--c", "3,2,1,0.5", "--gamma", "0.15",
                       "--json")
    data = json.loads(out)
    ref = modes(3, [3, 2, 1, 0.5], gamma=0.15)
    assert set(data) == set(ref.to_dict())
    assert len(data["states"]) == 5 and data["global_index"] == ref.global_index


@pytest.mark.parametrize("argv, needle", [
    (["theory", "critical", "--n-layers", "1", "--c", "1"], "n_layers must be an integer >= 2"),
    (["theory", "critical", "--n-layers", "3", "--c", "1", "--a", "0"], "a must be > 0"),
    (["theory", "critical", "--n-layers", "3", "--c", "nan"], "c must be finite"),
    (["theory", "landscape", "--n-layers", "3", "--c", "1", "--gamma", "-0.1"], "gamma must be >= 0"),
    (["theory", "landscape", "--n-layers", "3", "--c", "1", "--gamma", "inf"], "gamma must be finite"),
    (["theory", "landscape", "--n-layers", "3", "--c", "1", "--gamma", "0.1", "--width", "0"], "width"),
    (["theory", "modes", "--n-layers", "3", "--c", ""], "c must be a non-empty"),
    (["theory", "modes", "--n-layers", "3", "--c", "1,x"], "c must be a number, a comma-separated list"),
    (["theory", "modes", "--n-layers", "3"], "c is required (--c)"),
    (["theory", "critical", "--n-layers", "3", "--c", "0:1:1"], "c range must be START:STOP:NUM with NUM >= 2"),
    (["theory", "landscape", "--n-layers", "3", "--c", "1", "--gamma", "0.1:0.2"], "gamma range must be"),
])
def test_bad_input_one_line_exit_2(capsys, argv, needle):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert needle in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_entry_point_subprocess():
    proc = subprocess.run([sys.executable, "-m", "phasetools", "theory", "critical", "--n-layers", "0",
                           "--c", "1"], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith("phasetools: error: n_layers")


def test_out_show_plot_round_trip(tmp_path, capsys):
    h5 = tmp_path / "r.h5"
    code, out, _ = run(capsys, "theory", "critical", "--n-layers", "3", "--c", "0.05:1.2:40", "--convention",
                       "paper", "--out", str(h5))
    assert code == 0 and "stored as criticalpoints_0001" in out
    code, out, _ = run(capsys, "theory", "landscape", "--n-layers", "3", "--c", "0.8", "--gamma", "0.01:0.4:50",
                       "--convention", "paper", "--out", str(h5), "--name", "barriers")
    assert code == 0 and "absent" in out
    code, out, _ = run(capsys, "theory", "phase-diagram", "--n-layers", "3", "--c", "0.9,0.8",
                       "--convention", "paper", "--out", str(h5), "--json")
    assert code == 0 and json.loads(out)["n_layers"] == 3   # --json output stays pure JSON
    code, out, _ = run(capsys, "theory", "modes", "--n-layers", "3", "--c", "0.9,0.8", "--gamma", "0.32",
                       "--convention", "paper", "--out", str(h5))
    code, out, _ = run(capsys, "show", str(h5))
    assert code == 0 and "4 result(s)" in out and "schema_version 2" in out
    for name in ("barriers", "criticalpoints_0001", "phasediagram_0001", "modes_0001"):
        assert name in out
    assert "phasetools theory landscape" in out  # the command line is the provenance
    from phasetools.io import load

    assert load(h5, "barriers").equal_values(landscape(3, 0.8, __import__("numpy").linspace(0.01, 0.4, 50),
                                             convention="paper"))
    for name in ("barriers", "criticalpoints_0001", "phasediagram_0001", "modes_0001"):
        png = tmp_path / f"{name}.png"
        code, out, err = run(capsys, "plot", str(h5), "--result", name, "-o", str(png))
        assert code == 0, err
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, out, err = run(capsys, "plot", str(h5), "-o", str(tmp_path / "x.png"))
    assert code == 2 and "holds 4 results" in err
    code, out, err = run(capsys, "plot", str(h5), "--result", "modes_0001", "--kind", "cascade", "-o", "x.png")
    assert code == 2 and "draws a PhaseDiagram" in err
    code, out, err = run(capsys, "show", str(tmp_path / "missing.h5"))
    assert code == 2 and "no such file" in err and len(err.strip().splitlines()) == 1


def test_show_one_result(tmp_path, capsys):
    h5 = tmp_path / "r.h5"
    run(capsys, "theory", "critical", "--n-layers", "3", "--c", "1", "--out", str(h5))
    code, out, _ = run(capsys, "show", str(h5), "--result", "criticalpoints_0001")
    assert code == 0 and "CriticalPoints(" in out and '"gamma_c": 0.39685' in out


def test_simulate_escape_writes_results_and_figures(tmp_path, capsys):
    h5 = tmp_path / "esc.h5"
    code, out, err = run(capsys, "simulate", "escape", "--model", "reduced", "--n-layers", "3", "--c", "0.8",
                         "--gamma", "0.32", "--convention", "paper", "--temperature", "0.012,0.009",
                         "--n-traj", "200", "--dt", "0.01", "--seed", "3", "--out", str(h5),
                         "--plot", str(tmp_path / "esc"), "--quiet")
    assert code == 0, err
    assert "sim/theory" in out and "Arrhenius fit" in out
    from phasetools.io import list_results, load

    kinds = [i.kind for i in list_results(h5)]
    assert kinds.count("EscapeEnsemble") == 2 and kinds.count("ArrheniusFit") == 1
    ens = load(h5, "escapeensemble_0001")
    assert ens.n_traj == 200 and ens.temperature == 0.012
    for name in ("esc_survival.png", "esc_arrhenius.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, out, err = run(capsys, "plot", str(h5), "--result", "escapeensemble_0002", "-o", str(tmp_path / "s.png"))
    assert code == 0, err
    # the same seed gives the same numbers
    code2, out2, _ = run(capsys, "simulate", "escape", "--model", "reduced", "--n-layers", "3", "--c", "0.8",
                         "--gamma", "0.32", "--convention", "paper", "--temperature", "0.012,0.009",
                         "--n-traj", "200", "--dt", "0.01", "--seed", "3", "--json", "--quiet")
    data = json.loads(out2)
    assert data["points"][0]["tau"] == pytest.approx(load(h5, "escapeensemble_0001").times.mean(), rel=1e-12)


@pytest.mark.parametrize("argv, needle", [
    (["simulate", "escape", "--temperature", "0.01", "--gamma", "0.9"], "no barrier"),
    (["simulate", "escape", "--temperature", "0", "--gamma", "0.3"], "temperature must be > 0"),
    (["simulate", "escape", "--temperature", "0.01", "--gamma", "0.3", "--dt", "5"], "dt = 5 is too large"),
    (["simulate", "escape", "--temperature", "0.01"], "gamma must be given"),
])
def test_simulate_bad_input(capsys, argv, needle):
    code, out, err = run(capsys, *argv)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1


SGD_ARGS = ["simulate", "escape", "--model", "chain", "--n-layers", "3", "--c", "0.8", "--gamma", "0.32",
            "--convention", "paper", "--noise", "sgd", "--lr", "0.08", "--batch-size", "2,3", "--n-traj", "200",
            "--dt", "0.02", "--seed", "5", "--quiet"]


def test_simulate_escape_sgd_noise_writes_results_and_figures(tmp_path, capsys):
    from phasetools.io import list_results, load

    h5 = tmp_path / "sgd.h5"
    code, out, err = run(capsys, *SGD_ARGS, "--out", str(h5), "--plot", str(tmp_path / "sgd"))
    assert code == 0, err
    assert "direction=bwd" in out and "B/lr" in out and "T_eff" in out
    assert "Arrhenius fit of ln tau against batch_size/lr" in out and "quasi-potential" in out
    kinds = [i.kind for i in list_results(h5)]
    assert kinds.count("EscapeEnsemble") == 2 and kinds.count("ArrheniusFit") == 1
    ens = load(h5, "escapeensemble_0001")
    assert ens.temperature is None and ens.noise["lr"] == 0.08 and ens.noise["batch_size"] == 2
    assert ens.n_traj == 200 and ens.stop_direction == "down"
    fit = load(h5, "arrheniusfit_0001")
    assert fit.x_is == "batch_size/lr" and list(fit.x) == [25.0, 37.5]
    for name in ("sgd_survival.png", "sgd_arrhenius.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the same seed gives the same numbers; --json carries the theory's slopes and T_eff
    code, out, _ = run(capsys, *SGD_ARGS, "--json")
    data = json.loads(out)
    assert data["noise"] == "sgd" and data["theory"]["n_params"] == 3
    assert data["points"][0]["tau"] == pytest.approx(ens.times.mean(), rel=1e-12)
    assert [p["batch_size/lr"] for p in data["points"]] == [25.0, 37.5]
    assert data["theory"]["slope_start"] > data["theory"]["slope_path"] > 0


def test_simulate_escape_sgd_lists_pair_and_broadcast(capsys):
    base = SGD_ARGS[:SGD_ARGS.index("--lr")] + ["--n-traj", "8", "--max-steps", "50", "--quiet", "--json"]
    code, out, err = run(capsys, *base, "--lr", "0.08,0.16", "--batch-size", "4", "--n-samples", "64")
    assert code == 0, err
    data = json.loads(out)
    assert [(p["lr"], p["batch_size"]) for p in data["points"]] == [(0.08, 4), (0.16, 4)]
    assert data["n_samples"] == 64 and data["arrhenius"] is None     # everything censored: no fit
    code, out, err = run(capsys, *base, "--lr", "0.08,0.16", "--batch-size", "4,8")
    assert [(p["lr"], p["batch_size"]) for p in json.loads(out)["points"]] == [(0.08, 4), (0.16, 8)]


@pytest.mark.parametrize("extra, needle", [
    (["--noise", "sgd", "--model", "reduced", "--lr", "0.1", "--batch-size", "2"], "does not support"),
    (["--noise", "sgd", "--model", "double_well", "--lr", "0.1", "--batch-size", "2"], "only --model chain"),
    (["--noise", "sgd", "--temperature", "0.01", "--lr", "0.1", "--batch-size", "2"], "mutually exclusive"),
    (["--noise", "sgd", "--direction", "fwd", "--lr", "0.1", "--batch-size", "2"], "exactly zero at the"),
    (["--noise", "sgd", "--batch-size", "2"], "lr and batch_size are required"),
    (["--noise", "sgd", "--lr", "0.1", "--batch-size", "2.5"], "batch_size must be integers >= 1"),
    (["--noise", "sgd", "--lr", "0.1,0.2", "--batch-size", "2,3,4"], "equal lengths"),
    (["--noise", "sgd", "--lr", "0", "--batch-size", "2"], "lr must be > 0"),
    (["--noise", "sgd", "--lr", "0.1", "--batch-size", "8", "--n-samples", "4"], "n_samples must be an"),
    (["--noise", "sgd", "--lr", "0.1", "--batch-size", "2", "--output-var", "0.5"], "output_var must be >="),
    (["--temperature", "0.01", "--lr", "0.1"], "--lr goes with --noise sgd"),
    ([], "temperature is required"),
])
def test_simulate_sgd_bad_input(capsys, extra, needle):
    code, out, err = run(capsys, "simulate", "escape", "--c", "0.8", "--gamma", "0.32", "--convention",
                         "paper", *extra)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err


# -- one flag per concept: one value, a list or a range ----------------------------------------
def test_values_parses_one_value_a_list_and_a_range():
    import argparse

    import numpy as np

    from phasetools.cli._args import ValuesError, one_or_many, one_value, values

    assert values("0.1") == [0.1] and values("0.1,0.05") == [0.1, 0.05]
    # START:STOP:NUM: NUM evenly spaced values, both ends included (the meaning of --betas 0:0.46:47)
    assert values("0:0.46:47") == np.linspace(0, 0.46, 47).tolist() and values("0:0.46:47")[-1] == 0.46
    assert values("8:16:5", kind=int, name="batch_size") == [8, 10, 12, 14, 16]
    assert one_or_many("0.3") == 0.3 and list(one_or_many("1:2:3")) == [1.0, 1.5, 2.0]
    assert one_value("7", kind=int, name="n") == 7
    for text, kind, needle in (("8:15:5", int, "batch_size must be integers"), ("2.5", int, "must be integers"),
                               ("1:2", float, "range must be START:STOP:NUM"), ("a", float, "a number, a comma"),
                               (",", float, "non-empty")):
        with pytest.raises(ValuesError, match=needle) as e:
            values(text, kind=kind, name="batch_size")
        assert isinstance(e.value, ValueError) and isinstance(e.value, argparse.ArgumentTypeError)
    with pytest.raises(ValuesError, match="c takes one value here"):
        one_value("0.8,0.9", name="c")


def test_values_type_is_a_clean_argparse_error(capsys):
    import argparse

    from phasetools.cli._args import values_type

    p = argparse.ArgumentParser(prog="x")
    p.add_argument("--weight-decay", type=values_type(name="weight_decay"))
    assert p.parse_args(["--weight-decay", "0:0.4:3"]).weight_decay == [0.0, 0.2, 0.4]
    with pytest.raises(SystemExit) as e:
        p.parse_args(["--weight-decay", "0:x:3"])
    assert e.value.code == 2
    assert "argument --weight-decay: weight_decay range must be START:STOP:NUM" in capsys.readouterr().err


def test_c_takes_one_value_or_a_list_in_every_theory_command(capsys):
    import numpy as np

    code, out, _ = run(capsys, "theory", "landscape", "--n-layers", "3", "--c", "0.8,0.9", "--gamma", "0.32",
                       "--convention", "paper", "--json")
    assert code == 0
    ref = landscape(3, [0.8, 0.9], 0.32, convention="paper")
    assert np.allclose(json.loads(out)["barrier_fwd"], ref.barrier_fwd)
    # the retired spellings still parse (hidden from --help)
    code, out_old, _ = run(capsys, "theory", "modes", "--n-layers", "3", "--spectrum", "0.9,0.8", "--convention",
                           "paper", "--json")
    code, out_new, _ = run(capsys, "theory", "modes", "--n-layers", "3", "--c", "0.9,0.8", "--convention", "paper",
                           "--json")
    assert code == 0 and _no_stats(out_old) == _no_stats(out_new)
    code, out_old, _ = run(capsys, "theory", "phase-diagram", "--n-layers", "3", "--c", "0.9,0.8", "--gammas",
                           "0:0.5:11", "--json")
    code, out_new, _ = run(capsys, "theory", "phase-diagram", "--n-layers", "3", "--c", "0.9,0.8", "--gamma",
                           "0:0.5:11", "--json")
    assert code == 0 and _no_stats(out_old) == _no_stats(out_new) and len(json.loads(out_new)["gammas"]) == 11


def _no_stats(text):
    data = json.loads(text)
    data.pop("stats")
    return data


def test_help_names_one_flag_per_concept_and_stays_instant():
    code = ("import sys\nfrom phasetools.cli import main\n"
            "for argv in (['simulate', 'escape', '--help'], ['theory', 'modes', '--help']):\n"
            "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
            "print('HEAVY', [m for m in ('sympy', 'numba', 'scipy', 'matplotlib', 'h5py') if m in sys.modules])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "HEAVY []" in out
    for flag in ("--n-threads", "--temperature", "--lr", "--batch-size", "--n-traj", "--c"):
        assert flag in out
    for retired in ("--threads", "--spectrum", "--lrs", "--batch-sizes", "--temperatures"):
        assert retired + " " not in out and retired + "\n" not in out


def test_simulate_escape_ranges_and_n_threads(capsys):
    base = SGD_ARGS[:SGD_ARGS.index("--lr")] + ["--n-traj", "8", "--max-steps", "50", "--quiet", "--json"]
    code, out, err = run(capsys, *base, "--lr", "0.08", "--batch-size", "2:4:3", "--n-threads", "1")
    assert code == 0, err
    assert [(p["lr"], p["batch_size"]) for p in json.loads(out)["points"]] == [(0.08, 2), (0.08, 3), (0.08, 4)]
    with pytest.raises(SystemExit):    # retired (docs/glossary.md): one spelling, --n-threads
        main([*base, "--lr", "0.08", "--batch-size", "2", "--threads", "1"])
    code, out, err = run(capsys, *base, "--lr", "0.08", "--batch-size", "2:5:3")
    assert code == 2 and "batch_size must be integers" in err
    code, out, err = run(capsys, "simulate", "escape", "--c", "0.8,0.9", "--gamma", "0.32", "--temperature", "0.01")
    assert code == 2 and "c takes one value here" in err


def test_command_group_adds_a_command_with_its_own_subcommands():
    import argparse

    from phasetools.cli._args import command_group
    top = argparse.ArgumentParser().add_subparsers(dest="command")
    parser, subcommands = command_group(top, "demo", "a demo command")
    subcommands.add_parser("run")
    args = top._name_parser_map["demo"].parse_args(["run"])
    assert parser is top._name_parser_map["demo"]
    assert args.demo_command == "run"
