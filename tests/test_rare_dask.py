"""AMS runs on a Dask cluster (``scheduler=``, ``dask_workers=``, ``rare escape --scheduler``).

The runs of one estimate are independent given their seeds, block of entrance states and
stream indices, so a cluster of any size gives the estimate of one process, bit for bit.
Skipped cleanly when dask.distributed (the optional extra ``phasetools[dask]``) is missing.
"""

import json
import socket
import sys
import time

import pytest

from phasetools.cli import main
from phasetools.langevin import escape_problem
from phasetools.rare import AMSOptions, escape_time

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


@pytest.mark.parametrize("x0, dt, match", [([1.5], 0.01, "already past the target"), ([-1.0], 5.0, "dt = 5 is too large")])
def test_bad_input_is_refused_before_a_cluster_is_started(monkeypatch, x0, dt, match):
    # dask_workers= started a LocalCluster (worker processes, seconds) before these cheap checks
    import phasetools.rare._escape as escape

    def no_cluster(*args, **kwargs):
        raise AssertionError("a Dask cluster was started before the input was checked")

    monkeypatch.setattr(escape, "connect", no_cluster)
    problem = escape_problem("double_well")
    with pytest.raises(ValueError, match=match):
        escape.ams_escape(problem.potential, x0, target=problem.stop.level, temperature=0.05, dt=dt, options=SMALL,
                          rng=5, dask_workers=2)
