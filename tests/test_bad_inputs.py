"""Adversarial inputs: every bad input is one clear line (exit 2) or a ValueError naming the parameter.

A table of bad command lines runs through ``phasetools.cli.main`` in-process, each under a
timeout; an outcome is

* ``clear``: exit status 2, exactly one line on stderr (``phasetools...: error: ...``) that
  names what is wrong, no traceback;
* ``traceback``: an exception escaped ``main`` (or the output holds a traceback);
* ``hang``: the timeout fired.

The API cases assert a ``ValueError`` whose message names the parameter. The last test
prints the totals (bad inputs tried -> clear errors / tracebacks / hangs).
"""

from __future__ import annotations

import errno
import os
import signal
import tempfile

import h5py
import numpy as np
import pytest

from phasetools.cli import main

TOTALS = {"tried": 0, "clear": 0, "traceback": 0, "hang": 0}
MISSING = os.path.join(tempfile.gettempdir(), f"phasetools-missing-{os.getpid()}", "sub")   # never created


class _Hang(BaseException):
    """Raised by the alarm: the input made phasetools run for longer than the timeout."""


def _alarm(signum, frame):
    raise _Hang()


def run(argv, capsys, timeout=120):
    """Run ``main(argv)`` under a timeout; ``(outcome, code, stdout, stderr)``."""
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(timeout)
    outcome, code = None, None
    try:
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:
            code = exc.code
    except _Hang:
        outcome = "hang"
    except Exception:   # noqa: BLE001 - any escaped exception is a traceback for the user
        outcome = "traceback"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    out, err = capsys.readouterr()
    if outcome is None:
        lines = [ln for ln in err.splitlines() if ln.strip()]
        clear = code == 2 and len(lines) == 1 and "error" in lines[0] and "Traceback" not in err + out
        outcome = "clear" if clear else "traceback" if "Traceback" in err + out else "unclear"
    TOTALS["tried"] += 1
    TOTALS[outcome] = TOTALS.get(outcome, 0) + 1
    return outcome, code, out, err


def assert_clear(argv, capsys, *words, timeout=120):
    outcome, code, out, err = run(argv, capsys, timeout)
    assert outcome == "clear", (argv, outcome, code, err[-2000:])
    for w in words:
        assert w in err, (argv, w, err)
    return err


# --------------------------------------------------------------------------- command lines
THEORY = [
    (["theory", "critical", "--n-layers", 3, "--c", "1e308"], ["gamma_c", "finite"]),         # overflow
    (["theory", "landscape", "--n-layers", 3, "--c", 1, "--gamma", "1e308"], ["curvature", "finite"]),
    (["theory", "modes", "--n-layers", 3, "--c", "1e308,0.5"], ["finite"]),
    (["theory", "phase-diagram", "--n-layers", 3, "--c", "1e308"], ["finite"]),
    (["theory", "critical", "--n-layers", 3, "--c", 0], ["c = 0", "no feature"]),
    (["theory", "critical", "--n-layers", 3, "--c", "1e-300"], ["gamma_c", "underflows"]),             # underflow
    (["theory", "modes", "--n-layers", 3, "--c", "0.9,1e-300"], ["underflows"]),
    (["theory", "landscape", "--n-layers", 3, "--c", 0, "--gamma", 0.3], ["no feature"]),
    (["theory", "landscape", "--n-layers", 3, "--c", 1, "--gamma", 0.3, "--width", "1e4"], ["width", "343"]),
    (["theory", "landscape", "--n-layers", "1e6", "--c", 1, "--gamma", 0.3], ["n_layers", "1023"]),
    (["theory", "phase-diagram", "--n-layers", 3, "--c", 0.9, "--gamma", "0.1:1:1e12"], ["gamma range", "memory"]),
    (["theory", "phase-diagram", "--n-layers", 3, "--c", 0.9, "--gamma", "0.1:1:1000000000000"], ["memory"]),
    (["theory", "critical", "--n-layers", 3, "--c", "abc"], ["c must be"]),
    (["theory", "critical", "--n-layers", 3, "--c", "nan"], ["finite"]),
    (["theory", "critical", "--n-layers", 1, "--c", 1], ["n_layers"]),
    (["theory", "critical", "--n-layers", 3], ["--c"]),
    (["theory", "critical", "--n-layers", 3, "--c", 1, "--a", -1], ["a must be > 0"]),
    (["theory", "critical", "--n-layers", "2.5", "--c", 1], ["n_layers must be an integer"]),
    (["theory", "landscape", "--n-layers", 3, "--c", 1, "--gamma", "inf"], ["gamma"]),
    (["theory", "critical", "--n-layers", 3, "--c", 1, "--out", f"{MISSING}/x.h5"], ["--out", "does not exist"]),
    (["theory", "nonsense"], ["invalid choice"]),
]

ESCAPE = ["simulate", "escape", "--model", "chain", "--n-layers", 3, "--c", 1, "--gamma", 0.3, "--temperature", 0.1]
SIMULATE = [
    (ESCAPE + ["--n-traj", "1e12"], ["n_traj", "memory"]),
    (ESCAPE + ["--max-steps", "1e30"], ["max_steps", "2**63 - 1"]),
    (ESCAPE + ["--dt", "1e-300"], ["dt", "negligible"]),
    (ESCAPE + ["--plot", f"{MISSING}/x"], ["--plot", "does not exist"]),
    (ESCAPE + ["--out", f"{MISSING}/x.h5"], ["--out", "does not exist"]),
    (ESCAPE + ["--n-traj", 0], ["n_traj"]),
    (ESCAPE + ["--n-traj", "1.5"], ["n_traj must be an integer"]),
    (ESCAPE + ["--seed", -1], ["seed"]),
    (ESCAPE + ["--dt", 0], ["dt must be > 0"]),
    (ESCAPE + ["--dt", 10], ["dt", "too large"]),
    (ESCAPE + ["--c", 0], ["no feature"]),
    (ESCAPE + ["--width", "1e6", "--model", "network"], ["width"]),
    (ESCAPE + ["--n-layers", "1e6"], ["n_layers"]),
    (ESCAPE + ["--lr", 0.1], ["--lr goes with --noise sgd"]),
    (["simulate", "escape", "--gamma", 0.3, "--temperature", -1], ["temperature must be > 0"]),
    (["simulate", "escape", "--gamma", 0.3], ["temperature is required"]),
    (["simulate", "escape", "--gamma", 0.3, "--noise", "sgd", "--lr", 0.1], ["batch_size"]),
]

TRAIN = [
    (["train", "trap", "--n-seeds", "1e9"], ["n_seeds", "memory"]),
    (["train", "trap", "--epochs", "1e15"], ["epochs", "memory"]),
    (["train", "trap", "--width", "1e6"], ["width", "memory"]),
    (["train", "trap", "--width", "1e4"], ["width", "memory"]),
    (["train", "trap", "--n-layers", "1e6"], ["n_layers", "memory"]),
    (["train", "sweep", "--n-seeds", "1e9"], ["n_seeds", "memory"]),
    (["train", "sweep", "--weight-decay", "0.1:1:1e12"], ["weight_decay range", "memory"]),
    (["train", "arrhenius", "--n-seeds", "1e9"], ["n_seeds", "memory"]),
    (["train", "sparse", "--epochs", "1e15"], ["epochs", "memory"]),
    (["train", "trap", "--lr", "abc"], ["lr must be"]),
    (["train", "trap", "--batch-size", 0], ["batch_size"]),
    (["train", "trap", "--n-samples", 0], ["n_samples"]),
    (["train", "trap", "--out", f"{MISSING}/x.h5"], ["--out", "does not exist"]),
    (["nonlinear", "grok", "--n-seeds", "1000000000"], ["n_seeds", "memory"]),
    (["nonlinear", "grok", "--epochs", "1000000000000000"], ["epochs", "memory"]),
    (["nonlinear", "grok", "--width", "1000000"], ["memory"]),
]


@pytest.mark.parametrize("argv, words", THEORY, ids=[" ".join(map(str, a[0][1:])) for a in THEORY])
def test_theory_bad_inputs(argv, words, capsys):
    assert_clear(argv, capsys, *words)


@pytest.mark.parametrize("argv, words", SIMULATE, ids=[" ".join(map(str, a[0][-2:])) for a in SIMULATE])
def test_simulate_bad_inputs(argv, words, capsys):
    assert_clear(argv, capsys, *words, timeout=180)


@pytest.mark.parametrize("argv, words", TRAIN, ids=[" ".join(map(str, a[0][1:])) for a in TRAIN])
def test_train_bad_inputs(argv, words, capsys):
    assert_clear(argv, capsys, *words, timeout=180)


def test_no_folder_is_created(capsys):
    run(ESCAPE + ["--plot", f"{MISSING}/x"], capsys)
    run(["theory", "critical", "--n-layers", 3, "--c", 1, "--out", f"{MISSING}/x.h5"], capsys)
    assert not os.path.exists(MISSING.rsplit("/", 1)[0])


def test_usage_errors_are_one_line(capsys):
    err = assert_clear(["simulate", "escape", "--n-traj", "many"], capsys, "--n-traj")
    assert "usage:" not in err and "--help" in err


# --------------------------------------------------------------------------- files
@pytest.fixture
def files(tmp_path):
    """Two results in one file, and copies damaged in three ways."""
    from phasetools.io import save
    from phasetools.theory import critical_points, landscape

    good = tmp_path / "good.h5"
    save(critical_points(3, 1.0), good, name="cp")
    save(landscape(3, 1.0, np.linspace(0.1, 0.4, 4)), good, name="scan")
    huge = tmp_path / "huge.h5"
    save(landscape(3, 1.0, np.linspace(0.1, 0.4, 4)), huge, name="scan")
    with h5py.File(huge, "r+") as f:
        grp = f["results/scan"]
        name = next(k for k, v in grp.items() if isinstance(v, h5py.Dataset))
        del grp[name]
        grp.create_dataset(name, shape=(10**11,), dtype="f8", chunks=(1024,))   # declared, never written
    attrs = tmp_path / "attrs.h5"
    save(critical_points(3, 1.0), attrs, name="cp")
    rng = np.random.default_rng(0)
    with h5py.File(attrs, "r+") as f:
        a = f["results/cp"].attrs
        for k in list(a.keys()):
            a[k] = rng.bytes(int(rng.integers(1, 40))).hex() if rng.random() < 0.5 else rng.normal()
    flat = tmp_path / "flat.h5"
    save(critical_points(3, 1.0), flat, name="cp")
    with h5py.File(flat, "r+") as f:
        del f["results"]
        f.create_dataset("results", data=np.arange(3))
    return {"good": good, "huge": huge, "attrs": attrs, "flat": flat, "dir": tmp_path}


def test_plot_names_the_result_flag(files, capsys):
    err = assert_clear(["plot", files["good"], "-o", files["dir"] / "x.png"], capsys, "--result", "cp", "scan")
    assert "name=" not in err


def test_plot_bad_inputs(files, capsys):
    d = files["dir"]
    assert_clear(["plot", files["good"], "--result", "nope", "-o", d / "x.png"], capsys, "nope")
    assert_clear(["plot", files["good"], "--result", "cp", "-o", f"{MISSING}/x.png"], capsys, "--output")
    assert_clear(["plot", files["good"], "--result", "cp", "--kind", "grokking", "-o", d / "x.png"], capsys,
                 "grokking")
    assert_clear(["plot", d / "absent.h5", "-o", d / "x.png"], capsys, "absent.h5")
    assert_clear(["show", d / "absent.h5"], capsys, "absent.h5")


@pytest.mark.parametrize("which", ["huge", "attrs", "flat"])
def test_damaged_files(files, which, capsys):
    """show lists or refuses a damaged file without a traceback; plot refuses it in one line."""
    outcome, code, out, err = run(["show", files[which]], capsys, timeout=60)
    assert outcome in ("clear",) or (code == 0 and "Traceback" not in err and "DAMAGED" in out), (outcome, err, out)
    if outcome != "clear":                 # listed as damaged, exit 0: count it as a clear report
        TOTALS["unclear"] -= 1
        TOTALS["clear"] += 1
    name = "scan" if which == "huge" else "cp"
    assert_clear(["plot", files[which], "--result", name, "-o", files["dir"] / "x.png"], capsys, timeout=60)


# --------------------------------------------------------------------------- signals and full disks
def test_ctrl_c_is_one_line_and_130(monkeypatch, capsys):
    import phasetools.cli._main as m

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(m, "_theory_critical", interrupted)
    code = main(["theory", "critical", "--n-layers", "3", "--c", "1"])
    err = capsys.readouterr().err
    assert code == 130 and err.strip() == "phasetools: interrupted" and "Traceback" not in err


def test_ctrl_c_in_reproduce_says_how_to_resume(monkeypatch, capsys, tmp_path):
    import phasetools.cli._reproduce as r

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(r, "_reproduce", interrupted)   # add_parser binds the handler when main runs
    code = main(["reproduce", "--smoke", "--out", str(tmp_path / "rep")])
    err = capsys.readouterr().err
    assert code == 130 and len(err.strip().splitlines()) == 1
    assert "interrupted; resume with: phasetools reproduce --resume --out" in err


def test_disk_full_is_one_line(monkeypatch, capsys, tmp_path):
    import phasetools.io as io

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "x.h5"))

    monkeypatch.setattr(io, "save", full)
    err = assert_clear(["theory", "critical", "--n-layers", 3, "--c", 1, "--out", tmp_path / "x.h5"], capsys,
                       "No space left on device")
    assert err.startswith("phasetools: error:")


def test_memory_error_is_one_line(monkeypatch, capsys):
    import phasetools.theory as th

    def boom(*args, **kwargs):
        raise MemoryError("Unable to allocate 8 TiB")

    monkeypatch.setattr(th, "critical_points", boom)
    assert_clear(["theory", "critical", "--n-layers", 3, "--c", 1], capsys, "out of memory")


# --------------------------------------------------------------------------- the API
def _api_cases():
    from phasetools.langevin import escape_problem, simulate
    from phasetools.stats import bootstrap_ci
    from phasetools.theory import landscape
    from phasetools.training import GaussianTeacher, train

    pr = escape_problem("chain", n_layers=3, c=1.0, gamma=0.3)
    sim = dict(x0=pr.x0, temperature=0.1, dt=0.01, n_traj=10, max_steps=100, rng=1)
    data = GaussianTeacher([0.9, 0.8]).moments
    tr = dict(n_layers=3, width=10, epochs=10, lr=0.05, weight_decay=0.1, n_seeds=2)
    return [
        ("n_resamples", lambda: bootstrap_ci([1.0, 2.0, 3.0], [False] * 3, n_resamples=10**12)),
        ("max_steps", lambda: simulate(pr.potential, **{**sim, "max_steps": 10**30})),
        ("n_traj", lambda: simulate(pr.potential, **{**sim, "n_traj": 10**12})),
        ("n_seeds", lambda: train(data, **{**tr, "n_seeds": 10**9})),
        ("epochs", lambda: train(data, **{**tr, "epochs": 10**15})),
        ("width", lambda: train(data, **{**tr, "width": 10**6})),
        ("width", lambda: landscape(3, 1.0, 0.3, width=10**4)),
        ("n_layers", lambda: landscape(10**6, 1.0, 0.3)),
    ]


def test_api_bad_inputs():
    for name, call in _api_cases():
        old = signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(120)
        TOTALS["tried"] += 1
        try:
            with pytest.raises(ValueError, match=name):
                call()
            TOTALS["clear"] += 1
        except _Hang:
            TOTALS["hang"] += 1
            raise
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, old)


def test_zz_totals(capsys):
    """Print the totals of this file's bad inputs (run the whole file to see them)."""
    with capsys.disabled():
        print(f"\nbad inputs tried {TOTALS['tried']} -> clear errors {TOTALS['clear']} / tracebacks "
              f"{TOTALS['traceback']} / hangs {TOTALS['hang']} / unclear {TOTALS.get('unclear', 0)}")
    assert TOTALS["traceback"] == TOTALS["hang"] == TOTALS.get("unclear", 0) == 0
