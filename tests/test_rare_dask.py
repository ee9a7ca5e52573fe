"""AMS runs on a Dask cluster (``scheduler=``, ``dask_workers=``, ``rare escape/train --scheduler``).

The runs of one estimate are independent given their seeds, block of entrance states and
stream indices, so a cluster of any size gives the estimate of one process, bit for bit:
over the Langevin engine, the SGD trainer (``ams_training_escape``) and the nonlinear
trainer (``ams_nonlinear_escape``), whose runs are advanced one at a time. Skipped cleanly
when dask.distributed (the optional extra ``phasetools[dask]``) is missing.
"""

import json
import socket
import sys
import time

import numpy as np
import pytest

from phasetools.cli import main
from phasetools.langevin import escape_problem
from phasetools.rare import (
    AMSOptions,
    NonlinearEngine,
    TrainingEngine,
    ams_nonlinear_escape,
    ams_training_escape,
    escape_time,
)
from phasetools.training import GaussianTeacher

SMALL = AMSOptions(n_replicas=10, n_kill=1, n_runs=5, n_walkers=10, n_rounds=3)
CLI_SMALL = ["--n-replicas", "10", "--n-kill", "1", "--n-runs", "5", "--n-walkers", "10", "--n-rounds", "3",
             "--quiet", "--seed", "5", "--barrier-ratio", "5"]


@pytest.fixture(scope="module")
def cluster():
    """A LocalCluster of 2 single-threaded worker processes (its scheduler's address).

    On a loaded machine a worker's nanny can miss its start-up deadline ("Nanny failed to
    start"); that is the test machine, not the code under test, so the start is tried again
    with a longer deadline."""
    distributed = pytest.importorskip("distributed", reason='dask is an optional extra: pip install "phasetools[dask]"')
    import logging

    import dask

    for attempt in range(3):
        try:
            with dask.config.set({"distributed.comm.timeouts.connect": "60s"}):
                c = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                             dashboard_address=None, silence_logs=logging.CRITICAL)
            break
        except (RuntimeError, TimeoutError, OSError):
            if attempt == 2:
                raise
    with c:
        yield c.scheduler_address


def _closed_port_address():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


def test_same_seed_same_estimate_on_a_dask_cluster(cluster):
    problem = escape_problem("double_well")
    here = escape_time(problem, temperature=0.05, dt=0.01, options=SMALL, rng=5)
    there = escape_time(problem, temperature=0.05, dt=0.01, options=SMALL, rng=5, scheduler=cluster)
    assert there.equal_values(here)
    assert list(there.p_runs) == list(here.p_runs) and there.cost == here.cost
    assert there.stats["executor"] == "dask" and there.stats["dask_threads"] == 2
    assert there.stats["scheduler"] == cluster and here.stats["executor"] == "inline"


def test_rare_escape_cli_runs_on_the_scheduler(cluster, capsys):
    assert main(["rare", "escape", *CLI_SMALL, "--json"]) == 0
    here = json.loads(capsys.readouterr().out)["points"][0]
    assert main(["rare", "escape", *CLI_SMALL, "--json", "--scheduler", cluster]) == 0
    there = json.loads(capsys.readouterr().out)["points"][0]
    assert there["tau"] == here["tau"] and there["p"] == here["p"]


def test_unreachable_scheduler_fails_fast_naming_the_address():
    pytest.importorskip("distributed", reason='dask is an optional extra: pip install "phasetools[dask]"')
    address = _closed_port_address()
    t0 = time.monotonic()
    with pytest.raises(ValueError, match=f"Dask scheduler at '{address}' within 1 s"):
        escape_time(escape_problem("double_well"), temperature=0.05, dt=0.01, options=SMALL, rng=5,
                    scheduler=address, connect_timeout=1)
    assert time.monotonic() - t0 < 15


@pytest.mark.parametrize("address", ["garbage", "tcp://127.0.0.1", "foo://host:1"])
def test_rare_escape_cli_refuses_a_bad_address_in_one_line(address, capsys):
    pytest.importorskip("distributed", reason='dask is an optional extra: pip install "phasetools[dask]"')
    assert main(["rare", "escape", *CLI_SMALL, "--scheduler", address]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not the address of a Dask scheduler" in err and repr(address) in err


def test_rare_escape_cli_refuses_an_unreachable_scheduler_in_one_line(capsys):
    pytest.importorskip("distributed", reason='dask is an optional extra: pip install "phasetools[dask]"')
    address = _closed_port_address()
    assert main(["rare", "escape", *CLI_SMALL, "--scheduler", address]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"cannot connect to the Dask scheduler at '{address}'" in err


@pytest.mark.parametrize("kwargs, match", [
    ({"scheduler": "tcp://127.0.0.1:8786", "n_workers": 2}, "exclude each other"),
    ({"dask_workers": 2, "n_workers": 2}, "exclude each other"),
    ({"scheduler": "tcp://127.0.0.1:8786", "dask_workers": 2}, "not both"),
    ({"scheduler": 8786}, "scheduler must be the address"),
    ({"dask_workers": 0}, "dask_workers"),
    ({"scheduler": "tcp://127.0.0.1:8786", "connect_timeout": 0}, "connect_timeout"),
])
def test_bad_executor_arguments_are_refused_before_any_work(kwargs, match):
    with pytest.raises(ValueError, match=match):
        escape_time(escape_problem("double_well"), temperature=0.05, dt=0.01, options=SMALL, rng=5, **kwargs)


def test_rare_escape_cli_refuses_workers_and_scheduler_together(capsys):
    assert main(["rare", "escape", *CLI_SMALL, "--scheduler", "tcp://127.0.0.1:8786", "--n-workers", "2"]) == 2
    assert "exclude each other" in capsys.readouterr().err
    with pytest.raises(SystemExit):   # argparse: mutually exclusive
        main(["rare", "escape", *CLI_SMALL, "--scheduler", "tcp://127.0.0.1:8786", "--dask-workers", "2"])


def test_without_dask_the_options_say_how_to_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ImportError, match=r'pip install "phasetools\[dask\]"'):
        escape_time(escape_problem("double_well"), temperature=0.05, dt=0.01, options=SMALL, rng=5, dask_workers=2)
    assert main(["rare", "escape", *CLI_SMALL, "--dask-workers", "2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and 'pip install "phasetools[dask]"' in err


def _no_cluster(monkeypatch):
    """Make starting or connecting a Dask cluster fail the test."""
    import phasetools.rare._executor as executor

    def no_cluster(*args, **kwargs):
        raise AssertionError("a Dask cluster was started before the input was checked")

    monkeypatch.setattr(executor, "connect", no_cluster)


@pytest.mark.parametrize("x0, dt, match", [([1.5], 0.01, "already past the target"), ([-1.0], 5.0, "dt = 5 is too large")])
def test_bad_input_is_refused_before_a_cluster_is_started(monkeypatch, x0, dt, match):
    # dask_workers= started a LocalCluster (worker processes, seconds) before these cheap checks
    from phasetools.rare import ams_escape

    _no_cluster(monkeypatch)
    problem = escape_problem("double_well")
    with pytest.raises(ValueError, match=match):
        ams_escape(problem.potential, x0, target=problem.stop.level, temperature=0.05, dt=dt, options=SMALL, rng=5,
                   dask_workers=2)


# -- AMS over the SGD trainer and the nonlinear trainer ---------------------------------------------
TARGET = 0.0462726          # lam_saddle / 2 of the paper's chain (eta 0.8, weight decay 0.32)
X, Y = GaussianTeacher([0.8]).sample(512, 1)
INIT = [np.full((1, 1), v) for v in escape_problem("chain", n_layers=3, c=0.8, gamma=0.32, direction="bwd",
                                                   convention="paper").x0]
SGD = dict(n_layers=3, width=1, batch_size=4, weight_decay=0.32, lr=0.12, target=TARGET, direction="down",
           n_threads=1, options=AMSOptions(n_replicas=10, n_kill=2, n_runs=3, n_walkers=10, n_rounds=2))
SV1 = dict(SGD, coordinate="sv1", target=0.2, start=0.46, level=0.4)   # the top singular value, down to 0.2
SGD_CLI = ["rare", "train", "--lr", "0.12", "--coordinate", "sharpness", "--start", "0.5", "--level", "0.8",
           "--n-replicas", "10", "--n-kill", "2", "--n-runs", "3", "--n-walkers", "10", "--n-rounds", "2",
           "--seed", "1", "--n-threads", "1", "--quiet"]
RELEASE = dict(lr=4.0, weight_decay=3e-3, temperature=7e-7, target=0.502, start=0.4971, level=0.498, n_threads=1,
               options=AMSOptions(n_replicas=4, n_kill=1, n_runs=3, n_walkers=4, n_rounds=2, max_steps=300, chunk=8))


@pytest.fixture(scope="module")
def memorising():
    """A memorising state of modular addition, p = 23, width 16 (as in test_rare_nonlinear)."""
    from phasetools.nonlinear import adamw, modular_addition, quadratic_mlp, train

    task, model = modular_addition(23, 0.5, data_seed=0), quadratic_mlp(23, 16)
    prep = train(task, model, adamw(1e-2, 0.0), epochs=150, n_seeds=1, log_every=150, rng=0, n_threads=1)
    return task, model, prep.weights[0]


def _same(here, there, cluster):
    assert there.equal_values(here)
    assert list(there.p_runs) == list(here.p_runs) and there.cost == here.cost
    assert there.stats["n_train_calls"] == here.stats["n_train_calls"]   # the workers' calls are counted
    assert there.stats["executor"] == "dask" and there.stats["scheduler"] == cluster
    assert here.stats["executor"] == "inline"


@pytest.mark.parametrize("coordinate", ["sv1", "sharpness"])
def test_training_ams_same_estimate_on_a_dask_cluster(cluster, coordinate):
    # three runs over two workers: one process advances them together, each worker its share
    kw = dict(SGD, coordinate="sharpness", start=0.5, level=0.8) if coordinate == "sharpness" else SV1

    here = ams_training_escape((X, Y), INIT, rng=1, **kw)
    there = ams_training_escape((X, Y), INIT, rng=1, scheduler=cluster, **kw)
    _same(here, there, cluster)
    assert np.isfinite(here.tau) and here.p > 0


def test_nonlinear_ams_same_estimate_on_a_dask_cluster(cluster, memorising):
    task, model, x0 = memorising
    here = ams_nonlinear_escape(task, model, x0, rng=2, **RELEASE)
    there = ams_nonlinear_escape(task, model, x0, rng=2, scheduler=cluster, **RELEASE)
    _same(here, there, cluster)
    assert np.isfinite(here.tau) and here.p > 0


@pytest.mark.parametrize("engine", [TrainingEngine, NonlinearEngine])
def test_trainer_runs_are_advanced_alone(engine):
    # a trainer draws one call's noise from the stream keys of every replica it advances, so the
    # AMS stage must advance a run without the others for the split over workers not to matter
    assert engine.batch_streams is True


def test_rare_train_cli_runs_on_the_scheduler(cluster, capsys):
    assert main([*SGD_CLI, "--json"]) == 0
    here = json.loads(capsys.readouterr().out)
    assert main([*SGD_CLI, "--json", "--scheduler", cluster]) == 0
    there = json.loads(capsys.readouterr().out)
    assert there["tau_epochs"] == here["tau_epochs"] and there["p"] == here["p"]
    assert there["cost_steps"] == here["cost_steps"]


@pytest.mark.parametrize("address, message", [("garbage", "not the address of a Dask scheduler"),
                                              ("tcp://127.0.0.1", "not the address of a Dask scheduler"),
                                              (None, "cannot connect to the Dask scheduler at")])
def test_rare_train_cli_refuses_a_bad_scheduler_in_one_line(address, message, capsys):
    pytest.importorskip("distributed", reason='dask is an optional extra: pip install "phasetools[dask]"')
    address = _closed_port_address() if address is None else address
    t0 = time.monotonic()
    assert main([*SGD_CLI, "--scheduler", address]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and repr(address) in err
    assert time.monotonic() - t0 < 30   # refused before the AMS work


def test_rare_train_cli_refuses_workers_and_scheduler_together(capsys):
    assert main([*SGD_CLI, "--scheduler", "tcp://127.0.0.1:8786", "--n-workers", "2"]) == 2
    assert "exclude each other" in capsys.readouterr().err
    with pytest.raises(SystemExit):   # argparse: mutually exclusive
        main([*SGD_CLI, "--scheduler", "tcp://127.0.0.1:8786", "--dask-workers", "2"])


def test_trainers_refuse_a_bad_or_unreachable_scheduler(memorising):
    pytest.importorskip("distributed", reason='dask is an optional extra: pip install "phasetools[dask]"')
    task, model, x0 = memorising
    address = _closed_port_address()
    with pytest.raises(ValueError, match=f"Dask scheduler at '{address}' within 1 s"):
        ams_training_escape((X, Y), INIT, rng=1, scheduler=address, connect_timeout=1, **SGD)
    with pytest.raises(ValueError, match="not the address of a Dask scheduler"):
        ams_nonlinear_escape(task, model, x0, rng=2, scheduler="garbage", **RELEASE)
    with pytest.raises(ValueError, match="exclude each other"):
        ams_nonlinear_escape(task, model, x0, rng=2, scheduler=address, n_workers=2, **RELEASE)
    with pytest.raises(ValueError, match="connect_timeout"):
        ams_training_escape((X, Y), INIT, rng=1, scheduler=address, connect_timeout=0, **SGD)


def test_trainers_check_their_input_before_a_cluster_is_started(monkeypatch, memorising):
    task, model, x0 = memorising
    _no_cluster(monkeypatch)
    with pytest.raises(ValueError, match="already past the target"):
        ams_training_escape((X, Y), INIT, rng=1, dask_workers=2, **{**SGD, "target": 5.0})
    with pytest.raises(ValueError, match="already past the target"):
        ams_nonlinear_escape(task, model, x0, rng=2, dask_workers=2, **{**RELEASE, "target": 0.1})


def test_a_coordinate_that_does_not_pickle_is_refused_before_a_process_pool_starts():
    with pytest.raises(ValueError, match="module-level function"):
        ams_training_escape((X, Y), INIT, rng=1, n_workers=2,
                            **{**SGD, "coordinate": lambda M: np.linalg.svd(M, compute_uv=False)[:, 0],
                               "direction": "down", "start": 0.5, "level": 0.3})


@pytest.mark.parametrize("coordinate", ["sv1", "sharpness", "fourier_ipr", "test_acc"])
def test_trainer_engines_pickle_for_a_process_pool(coordinate, memorising):
    # the named coordinates were closures, which a process pool (plain pickle) cannot send
    import pickle

    from phasetools.rare._training import training_coordinate

    if coordinate.startswith("s"):
        _, order, sign, _, _ = training_coordinate(coordinate, direction="down", target=TARGET, init=INIT, data=(X, Y))
        engine = TrainingEngine((X, Y), n_layers=3, width=1, lr=0.12, weight_decay=0.32, batch_size=4,
                                sampling="replacement", convention="paper", coordinate=order, sign=sign,
                                shapes=[(1, 1)] * 3)
        x = np.concatenate([w.ravel() for w in INIT])[None]
    else:
        task, model, x = memorising
        engine, x = NonlinearEngine(task, model, lr=4.0, weight_decay=3e-3, coordinate=coordinate), x[None]
    copy = pickle.loads(pickle.dumps(engine))
    assert np.array_equal(copy.coordinate(x), engine.coordinate(x))


@pytest.mark.slow   # about 30 s: two spawned processes load the trainer
def test_training_ams_same_estimate_on_a_process_pool():
    # the engine (data, a module-level coordinate) pickles to spawned processes
    kw = SV1
    here = ams_training_escape((X, Y), INIT, rng=1, **kw)
    there = ams_training_escape((X, Y), INIT, rng=1, n_workers=2, **kw)
    assert there.equal_values(here) and there.stats["n_train_calls"] == here.stats["n_train_calls"]
    assert there.stats["executor"] == "process" and there.stats["n_workers"] == 2
