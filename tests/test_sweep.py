"""Sweeps: determinism across executors, kill and resume, damaged writes, failures, bad input.

The task functions are module-level so that spawned worker processes, Dask workers and
the `python -c` subprocess of the kill test import them from this module.
"""

import errno
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pytest

import phasetools.sweep as sw
from phasetools.io import CorruptFileError, list_results, load
from phasetools.results import Result, register

TESTS = Path(__file__).resolve().parent


@register
@dataclass(frozen=True, eq=False, repr=False)
class SweepProbe(Result):
    """A tiny result: draws from the task's seed (so equality checks the seeding)."""

    x: float
    k: int
    draws: np.ndarray

    _config_fields = ("x", "k")
    _dims = {"draws": ("draw",)}


def probe(x, k, *, rng):
    """Draws that depend only on the task's seed; sleeps when the kill test asks it to."""
    time.sleep(float(os.environ.get("PHASETOOLS_TEST_SWEEP_SLEEP", "0")))
    gen = np.random.default_rng(rng)
    return SweepProbe(x=float(x), k=int(k), draws=x + gen.normal(size=k),
                      seeds=(int(rng.entropy), *rng.spawn_key))


def escape_statistics(tau, n, *, rng):
    """A realistic task returning an existing result kind: bootstrap CI of censored exponential times."""
    from phasetools.stats import bootstrap_ci

    gen = np.random.default_rng(rng)
    times = gen.exponential(tau, size=n)
    censored = times > 3 * tau
    return bootstrap_ci(np.minimum(times, 3 * tau), censored, n_resamples=100, rng=gen)


def flaky(x, k, *, rng, flag):
    """Raises for x == 1 until the file ``flag`` exists."""
    if x == 1.0 and not os.path.exists(flag):
        raise RuntimeError(f"boom at x={x}")
    return probe(x, k, rng=rng)


def crash_once(x, k, *, rng):
    """Kills its worker process for x == 1 (a segfault stand-in)."""
    if x == 1.0:
        os._exit(3)
    return probe(x, k, rng=rng)


GRID = sw.product(x=[0.0, 1.0, 2.0], k=[2, 3])
KILL_GRID = sw.product(x=[float(v) for v in range(10)], k=[2, 3])  # 20 tasks


def kill_target(path):
    """The sweep run by the kill test's subprocess and resumed in-process (the same call)."""
    return sw.run_sweep(probe, KILL_GRID, path=path, seed=11, executor="inline", write_interval=0.05,
                        resume=True, progress=False)


def same_results(a, b):
    assert len(a) == len(b)
    for i, (x, y) in enumerate(zip(a, b)):
        assert type(x) is type(y), i
        assert x.equal_values(y), i  # every field, seeds included; not stats (timings)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Uninterrupted inline runs of GRID and KILL_GRID, and the direct calls they must equal."""
    folder = tmp_path_factory.mktemp("reference")
    sw.run_sweep(probe, GRID, path=folder / "grid.h5", seed=3, executor="inline", progress=False).check()
    sw.run_sweep(probe, KILL_GRID, path=folder / "kill.h5", seed=11, executor="inline",
                 progress=False).check()
    return {"grid": sw.load_results(folder / "grid.h5"), "kill": sw.load_results(folder / "kill.h5")}


# ---------------------------------------------------------------------------------------
# determinism
def test_task_seed_is_spawn():
    children = np.random.SeedSequence(7).spawn(5)
    for i, child in enumerate(children):
        s = sw.task_seed(7, i)
        assert s.spawn_key == child.spawn_key and s.entropy == child.entropy
        assert np.array_equal(s.generate_state(4), child.generate_state(4))


def test_results_equal_direct_calls(reference):
    for i, params in enumerate(GRID):
        assert reference["grid"][i] == probe(**params, rng=sw.task_seed(3, i))
    assert len({r.draws[0] for r in reference["grid"]}) == len(GRID)  # every task has its own stream


def test_inline_process_and_dask_agree(tmp_path, reference):
    pytest.importorskip("distributed", reason='dask is an optional extra: pip install "phasetools[dask]"')
    runs = {
        "process": dict(executor="process", n_workers=2),
        "dask": dict(dask_workers=2),
    }
    for name, kwargs in runs.items():
        out = sw.run_sweep(probe, GRID, path=tmp_path / f"{name}.h5", seed=3, progress=False, **kwargs)
        assert out.executor == name and out.done and not out.failed
        assert out.completed == tuple(range(len(GRID))) and out.skipped == ()
        assert all(a == b for a, b in zip(out.results(), reference["grid"]))  # deep equality, seeds included
    # a realistic task with an existing result kind (BootstrapCI has timings: compared without stats)
    grid = sw.product(tau=[1.0, 4.0], n=[20, 40])
    inline = sw.run_sweep(escape_statistics, grid, path=tmp_path / "e_inline.h5", seed=5, executor="inline",
                          progress=False)
    pool = sw.run_sweep(escape_statistics, grid, path=tmp_path / "e_pool.h5", seed=5, n_workers=2,
                        progress=False)
    assert pool.executor == "process"
    same_results(inline.results(), pool.results())


def test_file_is_a_phasetools_results_file(tmp_path, reference):
    path = tmp_path / "s.h5"
    sw.run_sweep(probe, GRID, path=path, seed=3, executor="inline", progress=False)
    infos = list_results(path)
    assert [i.name for i in infos] == ["0000-k=2-x=0", "0001-k=3-x=0", "0002-k=2-x=1", "0003-k=3-x=1",
                                       "0004-k=2-x=2", "0005-k=3-x=2"]  # index, then what the task holds
    assert all(i.complete and i.verified and i.kind == "SweepProbe" for i in infos)
    assert load(path, "0004-k=2-x=2") == reference["grid"][4]
    assert not sw.parts_dir(path).exists()  # the batch files were folded into the file
    info = sw.read_sweep(path)
    assert info.function == "test_sweep:probe" and info.seed == 3
    assert info.params == tuple(GRID) and info.complete == tuple(range(6)) and not info.failed
    with h5py.File(path, "r") as f:
        g = f["results/0004-k=2-x=2"]
        assert g.attrs["sweep_task"] == 4 and g.attrs["seed_entropy"] == "3"
        assert g.attrs["params"] == '{"k":2,"x":2.0}' and g.attrs["seed_spawn_key"] == "[4]"


def test_seed_none_is_drawn_recorded_and_reused_on_resume(tmp_path):
    path = tmp_path / "s.h5"
    out = sw.run_sweep(probe, GRID[:2], path=path, executor="inline", progress=False)
    assert out.seed >= 2**64  # fresh 128-bit entropy, stored losslessly
    again = sw.run_sweep(probe, GRID[:2], path=path, resume=True, progress=False)
    assert again.seed == out.seed and again.skipped == (0, 1) and again.completed == ()
    assert sw.load_results(path)[1] == probe(**GRID[1], rng=sw.task_seed(out.seed, 1))


# ---------------------------------------------------------------------------------------
# kill and resume, damaged writes
def test_sigkill_then_resume_equals_uninterrupted_run(tmp_path, reference):
    path = tmp_path / "killed.h5"
    code = (f"import sys; sys.path.insert(0, {str(TESTS)!r}); import test_sweep; "
            f"test_sweep.kill_target({str(path)!r})")
    env = {**os.environ, "PHASETOOLS_TEST_SWEEP_SLEEP": "0.1"}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        n_before = 0
        while time.monotonic() < deadline and proc.poll() is None:
            if path.exists():
                n_before = len(sw.read_sweep(path).complete)  # a consistent snapshot at any moment
                if n_before >= 4:
                    break
            time.sleep(0.05)
        assert proc.poll() is None, f"the sweep ended before it was killed: {proc.stderr.read()!r}"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    info = sw.read_sweep(path)
    assert 4 <= len(info.complete) < len(KILL_GRID) and not info.failed

    out = kill_target(path)  # the same call, in this process (no sleep)
    assert out.done and not out.failed
    assert set(out.skipped) == set(info.complete)
    assert set(out.completed) == set(range(len(KILL_GRID))) - set(info.complete)
    assert not list(tmp_path.glob(".*.tmp"))
    loaded = sw.load_results(path)
    assert all(a == b for a, b in zip(loaded, reference["kill"])) and len(loaded) == len(KILL_GRID)


def _flip_bytes_of(path, dataset):
    with h5py.File(path, "r") as f:
        info = f[dataset].id.get_chunk_info(0)
    with open(path, "r+b") as fh:
        fh.seek(info.byte_offset + 1)
        byte = fh.read(1)
        fh.seek(info.byte_offset + 1)
        fh.write(bytes([byte[0] ^ 0xFF]))


def test_damaged_task_and_missing_marker_are_redone(tmp_path, reference):
    path = tmp_path / "s.h5"
    sw.run_sweep(probe, GRID, path=path, seed=3, executor="inline", progress=False)
    last = "0005-k=3-x=2"
    _flip_bytes_of(path, f"results/{last}/draws")  # the last task's data damaged
    with h5py.File(path, "r+") as f:
        f["results/0002-k=2-x=1"].attrs["complete"] = False  # a marker never written
    with pytest.raises(CorruptFileError, match=last):
        sw.load_results(path, strict=False)
    out = sw.run_sweep(probe, GRID, path=path, seed=3, resume=True, progress=False)
    assert out.completed == (2, len(GRID) - 1)
    assert out.skipped == tuple(i for i in range(len(GRID)) if i not in out.completed)
    assert all(a == b for a, b in zip(sw.load_results(path), reference["grid"]))


def test_truncated_file_is_refused_with_advice(tmp_path):
    path = tmp_path / "s.h5"
    sw.run_sweep(probe, GRID, path=path, seed=3, executor="inline", progress=False)
    size = path.stat().st_size
    with open(path, "r+b") as fh:
        fh.truncate(size // 2)
    with pytest.raises(CorruptFileError, match="overwrite=True"):
        sw.run_sweep(probe, GRID, path=path, seed=3, resume=True, progress=False)
    out = sw.run_sweep(probe, GRID, path=path, seed=3, overwrite=True, executor="inline", progress=False)
    assert out.done and len(sw.load_results(path)) == len(GRID)


def test_full_disk_keeps_the_file_consistent(tmp_path, monkeypatch, reference):
    import contextlib

    import phasetools.sweep._store as store

    path = tmp_path / "s.h5"
    real_update = store.atomic_update
    calls = []

    @contextlib.contextmanager
    def full_on_second_batch(target, **kwargs):
        if sw.parts_dir(path) in Path(target).parents:
            calls.append(target)
            if len(calls) == 2:
                raise OSError(errno.ENOSPC, "No space left on device", str(target))
        with real_update(target, **kwargs) as tmp:
            yield tmp

    monkeypatch.setattr(store, "atomic_update", full_on_second_batch)
    monkeypatch.setenv("PHASETOOLS_TEST_SWEEP_SLEEP", "0.03")  # several batches
    with pytest.raises(sw.SweepStorageError, match="disk is full") as exc:
        sw.run_sweep(probe, GRID, path=path, seed=3, executor="inline", write_interval=1e-3, progress=False)
    assert "resume=True" in str(exc.value)
    assert not list(tmp_path.glob(".*.tmp")) and not list(sw.parts_dir(path).glob(".*.tmp"))
    info = sw.read_sweep(path)  # the batches written before the failed one
    assert 1 <= len(info.complete) < len(GRID) and not info.failed
    monkeypatch.setattr(store, "atomic_update", real_update)
    monkeypatch.delenv("PHASETOOLS_TEST_SWEEP_SLEEP")
    out = sw.run_sweep(probe, GRID, path=path, seed=3, resume=True, executor="inline", progress=False)
    assert out.skipped == info.complete and out.done
    assert all(a == b for a, b in zip(sw.load_results(path), reference["grid"]))


# ---------------------------------------------------------------------------------------
# failures
def test_failed_task_is_recorded_and_only_it_is_retried(tmp_path, reference):
    path = tmp_path / "s.h5"
    flag = str(tmp_path / "fixed")
    grid = [{**p, "flag": flag} for p in GRID]
    out = sw.run_sweep(flaky, grid, path=path, seed=3, executor="inline", retries=1, progress=False)
    failing = tuple(i for i, p in enumerate(GRID) if p["x"] == 1.0)
    assert tuple(f.index for f in out.failed) == failing
    f0 = out.failed[0]
    assert f0.params == grid[failing[0]] and f0.error == "RuntimeError: boom at x=1.0"
    assert "Traceback" in f0.traceback and "flaky" in f0.traceback and f0.attempts == 2
    assert set(out.completed) == set(range(len(GRID))) - set(failing) and not out.done
    with pytest.raises(sw.SweepError, match="boom at x=1.0"):
        out.check()
    with pytest.raises(sw.SweepError, match="boom"):
        sw.load_results(path)
    info = sw.read_sweep(path)
    assert tuple(f.index for f in info.failed) == failing and info.failed[0].error == f0.error
    assert info.failed[0].params == grid[failing[0]] and "boom" in info.failed[0].traceback
    partial = sw.load_results(path, strict=False)
    assert all((r is None) == (i in failing) for i, r in enumerate(partial))

    Path(flag).touch()
    again = sw.run_sweep(flaky, grid, path=path, seed=3, resume=True, progress=False)
    assert again.completed == failing and not again.failed and again.done
    assert not sw.read_sweep(path).failed
    assert all(a == b for a, b in zip(again.results(), reference["grid"]))


def test_unstorable_result_is_a_task_failure(tmp_path):
    out = sw.run_sweep(_returns_int, [{"x": 1}, {"x": 2}], path=tmp_path / "s.h5", executor="inline",
                       progress=False)
    assert [f.index for f in out.failed] == [0, 1]
    assert "not a phasetools Result" in out.failed[0].error


def _returns_int(x, *, rng):
    return x


def test_worker_crash_fails_its_task_and_the_pool_restarts(tmp_path):
    grid = sw.product(x=[0.0, 1.0, 2.0, 3.0, 4.0], k=[2])
    out = sw.run_sweep(crash_once, grid, path=tmp_path / "s.h5", seed=3, executor="process", n_workers=1,
                       progress=False)
    failed = {f.index: f for f in out.failed}
    assert 1 in failed and "worker process died" in failed[1].error
    assert {0, 3, 4} <= set(out.completed)
    assert set(out.completed) | set(failed) == set(range(5))


# ---------------------------------------------------------------------------------------
# bad input
def test_unreachable_scheduler_fails_fast_and_leaves_no_file(tmp_path):
    pytest.importorskip("distributed", reason='dask is an optional extra: pip install "phasetools[dask]"')
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    t0 = time.monotonic()
    with pytest.raises(sw.SweepError, match=f"Dask scheduler at '{address}'"):
        sw.run_sweep(probe, GRID, path=tmp_path / "s.h5", scheduler=address, connect_timeout=2,
                     progress=False)
    assert time.monotonic() - t0 < 15
    assert not (tmp_path / "s.h5").exists()  # the corrected command needs no resume


def test_without_dask_the_option_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ImportError, match=r'pip install "phasetools\[dask\]"'):
        sw.run_sweep(probe, GRID, path=tmp_path / "s.h5", dask_workers=2, progress=False)
    out = sw.run_sweep(probe, GRID, path=tmp_path / "s.h5", executor="inline", progress=False)
    assert out.done


def test_existing_file_is_refused_without_resume_or_overwrite(tmp_path, reference):
    path = tmp_path / "s.h5"
    sw.run_sweep(probe, GRID, path=path, seed=3, executor="inline", progress=False)
    with pytest.raises(sw.SweepError, match="already exists.*resume=True.*overwrite=True"):
        sw.run_sweep(probe, GRID, path=path, seed=3, executor="inline", progress=False)
    with pytest.raises(ValueError, match="exclude each other"):
        sw.run_sweep(probe, GRID, path=path, seed=3, resume=True, overwrite=True)
    out = sw.run_sweep(probe, GRID[::-1], path=path, seed=4, overwrite=True, executor="inline",
                       progress=False)
    assert out.completed == tuple(range(len(GRID)))
    assert sw.read_sweep(path).seed == 4


def test_resume_with_a_different_configuration_names_the_differences(tmp_path):
    path = tmp_path / "s.h5"
    sw.run_sweep(probe, GRID, path=path, seed=3, executor="inline", progress=False)
    cases = [
        (dict(grid=sw.product(x=[0.0, 1.0, 2.5], k=[2, 3])),
         r"parameter 'x': 2\.0 in the file, 2\.5 asked \(task 4; 2 "),
        (dict(grid=GRID, seed=4), "seed: 3 in the file, 4 asked"),
        (dict(grid=GRID[:4]), "number of tasks: 6 in the file, 4 asked"),
        (dict(grid=[{**p, "n": 1} for p in GRID]), "parameter 'n': missing in the file, 1 asked"),
        (dict(grid=GRID, fn=flaky), "function: 'test_sweep:probe' in the file, 'test_sweep:flaky' asked"),
    ]
    for kwargs, message in cases:
        fn = kwargs.pop("fn", probe)
        with pytest.raises(sw.SweepConfigError, match=message):
            sw.run_sweep(fn, path=path, resume=True, progress=False, **{"seed": 3, **kwargs})
    assert len(sw.read_sweep(path).complete) == len(GRID)  # untouched


def test_a_busy_file_is_refused(tmp_path):
    path = tmp_path / "s.h5"
    with open(tmp_path / "s.h5.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        with pytest.raises(sw.SweepError, match="another process"):
            sw.run_sweep(probe, GRID, path=path, executor="inline", progress=False)
    assert not path.exists()


READ_ONLY = """
import os, sys
from phasetools.sweep import run_sweep, SweepStorageError
if os.geteuid() == 0:  # root ignores permission bits: continue as user 'nobody'
    os.setegid(65534)
    os.seteuid(65534)
try:
    run_sweep(int, [{"x": 1}], path=sys.argv[1], executor="inline", progress=False)
except SweepStorageError as exc:
    print("ERROR", exc)
"""


def test_read_only_folder_gives_a_clear_error():
    # a world-readable scratch folder: as root the child continues as user 'nobody'
    top = Path(tempfile.mkdtemp(prefix="phasetools-ro-"))
    try:
        top.chmod(0o755)
        ro = top / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        target = ro / "sub" / "s.h5"
        proc = subprocess.run([sys.executable, "-c", READ_ONLY, str(target)], capture_output=True, text=True,
                              timeout=120, cwd=top)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith("ERROR cannot write the sweep file") and "read-only" in proc.stdout
        assert not target.exists() and not list(ro.iterdir())
    finally:
        (top / "ro").chmod(0o755)
        shutil.rmtree(top)


def test_bad_arguments_name_the_parameter(tmp_path):
    p = tmp_path / "s.h5"
    bad = [
        (dict(grid=[]), "grid must hold at least one task"),
        (dict(grid=[{"x": 1}, 3]), r"grid\[1\] must be a dict"),
        (dict(grid=[{"x": float("nan")}]), r"grid\[0\]\['x'\] must be finite"),
        (dict(grid=[{"x": object()}]), r"grid\[0\]\['x'\] must be JSON-able"),
        (dict(grid=[{"rng": 1}]), "must not hold 'rng'"),
        (dict(seed=-1), "seed must be None or an integer >= 0"),
        (dict(executor="threads"), "executor must be one of 'inline', 'process', 'dask'"),
        (dict(n_workers=0), "n_workers must be None or an integer >= 1"),
        (dict(retries=-1), "retries must be an integer >= 0"),
        (dict(write_interval=0), "write_interval must be a finite number > 0"),
        (dict(scheduler="tcp://x:1", dask_workers=2), "either scheduler= .* or dask_workers="),
        (dict(scheduler="tcp://x:1", executor="process"), "apply to executor='dask'"),
        (dict(scheduler=8786), "scheduler must be the address"),
        (dict(fn=lambda x, rng: x, executor="process"), "module-level function"),
    ]
    for kwargs, message in bad:
        args = {"fn": probe, "grid": GRID, **kwargs}
        with pytest.raises(ValueError, match=message):
            sw.run_sweep(args.pop("fn"), args.pop("grid"), path=p, progress=False, **args)
    with pytest.raises(ValueError, match="axis 'x' is empty"):
        sw.product(x=[])
    with pytest.raises(ValueError, match="axis 'x' must be a list"):
        sw.product(x="abc")
    assert not p.exists()


def test_sweep_layer_does_not_import_the_physics_layers():
    code = textwrap.dedent("""
        import sys, phasetools.sweep
        print(sorted(m for m in sys.modules if m.split('.')[:2] in
                     (['phasetools', 'theory'], ['phasetools', 'langevin'], ['phasetools', 'training'])))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ---------------------------------------------------------------------------------------
# names and layout versions
def test_task_names_say_what_they_hold():
    assert sw.task_name(4, 6, '{"k":2,"x":2.0}') == "0004-k=2-x=2"
    assert sw.task_name(12, 100_000, '{"lr":0.1,"batch_size":8,"mode":"a/b"}') == "00012-batch_size=8-lr=0.1-mode=a_b"
    assert sw.task_name(3, 10, '{"x":[1,2,3],"flag":true,"none":null}') == "0003-flag=true-none=none-x=list3"
    assert len(sw.task_name(1, 10, json_params := '{"' + "k" * 100 + '":' + "1" * 100 + "}")) < 80, json_params
    assert sw.task_name(3, 10, '{"x":1}', version=1) == "task-00003"  # files of sweep schema version 1
    names = [sw.task_name(i, 12, f'{{"x":{12 - i}}}') for i in range(12)]
    assert sorted(names) == names and len(set(names)) == 12  # name order is task order


def _as_sweep_v1(path):
    """Rewrite a finished sweep file the way sweep schema version 1 stored it (task-NNNNN names)."""
    with h5py.File(path, "a") as f:
        n = int(f["sweep"].attrs["n_tasks"])
        params = f["sweep/params"].asstr()[()].tolist()
        f.attrs["schema_version"] = 1
        f["sweep"].attrs["sweep_schema_version"] = 1
        del f["sweep"].attrs["sweep_id"]
        for i in range(n):
            new = sw.task_name(i, n, params[i])
            f.move(f"results/{new}", f"results/{sw.task_name(i, n, version=1)}")
            del f[f"results/{sw.task_name(i, n, version=1)}"].attrs["attrs_sha256"]


def test_sweep_schema_v1_files_are_read_and_resumed(tmp_path, reference):
    path = tmp_path / "old.h5"
    sw.run_sweep(probe, GRID, path=path, seed=3, executor="inline", progress=False)
    _as_sweep_v1(path)
    assert sw.read_sweep(path).complete == tuple(range(len(GRID)))
    assert [i.name for i in list_results(path)][:2] == ["task-00000", "task-00001"]
    with h5py.File(path, "r+") as f:
        f["results/task-00002"].attrs["complete"] = False
    out = sw.run_sweep(probe, GRID, path=path, seed=3, resume=True, executor="inline", progress=False)
    assert out.completed == (2,)
    assert [i.name for i in list_results(path)] == [f"task-{i:05d}" for i in range(len(GRID))]
    assert all(a == b for a, b in zip(sw.load_results(path), reference["grid"]))


def test_appends_write_batch_files_that_are_folded_in_at_the_end(tmp_path, monkeypatch, reference):
    """An append writes only its own batch (no copy of the growing file); the end folds them in."""
    import phasetools.sweep._store as store

    path = tmp_path / "s.h5"
    sizes = []
    real_write = store.SweepFile.write

    def spy(self, results, failures):
        out = real_write(self, results, failures)
        parts = sorted(sw.parts_dir(path).glob("*.h5"))
        sizes.append((path.stat().st_size, parts[-1].stat().st_size if parts else 0))
        return out

    monkeypatch.setattr(store.SweepFile, "write", spy)
    monkeypatch.setenv("PHASETOOLS_TEST_SWEEP_SLEEP", "0.02")
    sw.run_sweep(probe, GRID, path=path, seed=3, executor="inline", write_interval=1e-3, progress=False)
    assert len(sizes) >= 2 and len({main for main, _ in sizes}) == 1  # the main file untouched while running
    assert not sw.parts_dir(path).exists()
    assert all(a == b for a, b in zip(sw.load_results(path), reference["grid"]))


class _TenSecondClock:
    """A clock that moves 10 s per reading: every finished task is past its write time."""

    def __init__(self):
        self.now = 0.0

    def monotonic(self):
        self.now += 10.0
        return self.now


def _killed_with_batches(path):
    """A sweep stopped after its batches were written but before they were folded in.

    The clock seen by the write scheduler is replaced so that each task lands in its own
    batch file whatever the machine's speed (with the real clock a fast machine finished
    all six tasks inside one write interval and wrote a single batch).
    """
    import phasetools.sweep._run as run
    import phasetools.sweep._store as store

    real_consolidate, real_time = store.SweepFile.consolidate, run.time
    store.SweepFile.consolidate = lambda self: None
    run.time = type("FakeTime", (), {"monotonic": _TenSecondClock().monotonic,
                                      "perf_counter": staticmethod(time.perf_counter)})()
    try:
        sw.run_sweep(probe, GRID, path=path, seed=3, executor="inline", write_interval=1e-3, progress=False)
    finally:
        store.SweepFile.consolidate, run.time = real_consolidate, real_time


def test_a_damaged_batch_file_only_costs_its_tasks(tmp_path, reference):
    path = tmp_path / "s.h5"
    _killed_with_batches(path)
    parts = sorted(sw.parts_dir(path).glob("*.h5"))
    assert len(parts) == len(GRID) and len(sw.read_sweep(path).complete) == len(GRID)
    parts[0].write_bytes(parts[0].read_bytes()[:100])  # truncated by something outside the sweep
    info = sw.read_sweep(path)
    assert 0 < len(info.complete) < len(GRID)
    out = sw.run_sweep(probe, GRID, path=path, seed=3, resume=True, executor="inline", progress=False)
    assert set(out.completed) == set(info.missing) and out.done
    assert not sw.parts_dir(path).exists()
    assert all(a == b for a, b in zip(sw.load_results(path), reference["grid"]))


def test_a_read_only_sweep_file_is_refused_before_any_task_runs(tmp_path):
    path = tmp_path / "s.h5"
    sw.run_sweep(probe, GRID[:2], path=path, seed=3, executor="inline", progress=False)
    path.chmod(0o444)
    try:
        with pytest.raises(sw.SweepStorageError, match="read-only"):
            sw.run_sweep(probe, GRID[:2], path=path, seed=3, resume=True, executor="inline", progress=False)
    finally:
        path.chmod(0o644)
