"""The compile helper process of ``phasetools._numba.compile_shared``: it ends with its parent,
however the parent ends, and the helper setting is read strictly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from phasetools import _numba

N_JOBS = 600   # on an idle machine 120 were all claimed within the test's half second

# many small, distinct jitted functions: far more compile work than the few seconds the test waits
_MODULE = "from phasetools._numba import jit\n" + "".join(
    f"\n\n@jit\ndef f{i}(x):\n    s = 0.0\n    for k in range(x.size):\n        s += (x[k] + {i}) ** 2 / (1.0 + k)\n"
    f"    return s\n" for i in range(N_JOBS))

_PARENT = f"""
import sys, tempfile
from numba import types
from phasetools import _numba
import jobs_mod
mkdtemp, popen = tempfile.mkdtemp, _numba.subprocess.Popen
def _mkdtemp(*a, **k):
    d = mkdtemp(*a, **k); print("folder", d, flush=True); return d
def _popen(*a, **k):
    p = popen(*a, **k); print("helper", p.pid, flush=True); return p
_numba.tempfile.mkdtemp, _numba.subprocess.Popen = _mkdtemp, _popen
sig = (types.float64[::1],)
_numba.compile_shared([(getattr(jobs_mod, f"f{{i}}"), sig) for i in range({N_JOBS})], wait=True)
print("done", flush=True)
"""


def _alive(pid) -> bool:
    """Whether process ``pid`` runs (a zombie, ended but not yet reaped, counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc") or (os.cpu_count() or 1) < 2,
                    reason="needs /proc and two cores (the helper starts only then)")
def test_helper_ends_when_its_parent_is_killed(tmp_path):
    """A parent killed by SIGKILL (no atexit) while the helper has jobs left: the helper stops
    within a few seconds instead of compiling every job left, and removes its claim folder."""
    (tmp_path / "jobs_mod.py").write_text(_MODULE)
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba"), PHASETOOLS_COMPILE_HELPER="1",
               PYTHONPATH=os.pathsep.join([str(tmp_path)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    parent = subprocess.Popen([sys.executable, "-c", _PARENT], env=env, stdout=subprocess.PIPE, text=True)
    try:
        info = dict(parent.stdout.readline().split() for _ in range(2))
        folder, helper = info["folder"], int(info["helper"])
        deadline = time.monotonic() + 120
        while not os.path.exists(os.path.join(folder, str(N_JOBS - 1))):   # the helper has claimed its first job
            assert time.monotonic() < deadline and parent.poll() is None, "the helper never started"
            time.sleep(0.05)
        time.sleep(0.5)
        assert parent.poll() is None, "the jobs were done before the parent could be killed"
        assert len(os.listdir(folder)) < N_JOBS, "every job was claimed before the kill (raise N_JOBS)"
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        t0 = time.monotonic()
        while _alive(helper) and time.monotonic() - t0 < 5.0:
            time.sleep(0.05)
        assert not _alive(helper), "the helper outlived its killed parent by 5 s"
        claimed = len(os.listdir(folder)) if os.path.isdir(folder) else 0
        assert not os.path.exists(folder), f"claim folder left behind ({claimed} of {N_JOBS} jobs claimed)"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        parent.stdout.close()
        if "helper" in locals() and _alive(helper):
            os.kill(helper, signal.SIGKILL)


@pytest.mark.parametrize("value", ["yes", "2", "on"])
def test_unknown_helper_setting_is_refused(monkeypatch, value):
    monkeypatch.setenv(_numba.COMPILE_HELPER_ENV, value)
    with pytest.raises(ValueError, match=f"{_numba.COMPILE_HELPER_ENV} must be .*got '{value}'"):
        _numba.compile_shared([])


@pytest.mark.parametrize("value", ["0", "1", "auto", "", " 1 "])
def test_known_helper_settings_are_accepted(monkeypatch, value):
    monkeypatch.setenv(_numba.COMPILE_HELPER_ENV, value)
    assert _numba.compile_shared([]) == 0


def test_atexit_hook_registered_once(monkeypatch):
    """However many helpers a process starts, one atexit hook removes their folders."""
    calls = []
    monkeypatch.setattr(_numba.atexit, "register", lambda *a, **k: calls.append(a))
    monkeypatch.setattr(_numba, "_ATEXIT", [])
    monkeypatch.setattr(_numba, "_FOLDERS", set())
    for name in ("a", "b", "c"):
        _numba._track(name)
    assert len(calls) == 1 and _numba._FOLDERS == {"a", "b", "c"}


def test_job_types_travel_as_plain_data():
    """The helper gets its jobs as JSON (no pickle: nothing it reads is code); every type the
    structured kernel's callees take survives the round trip, anything else is refused."""
    import json

    import numba
    import numpy as np
    from numba import types

    from phasetools._numba import _decode_type, _encode_type

    cases = [types.int64, types.float64, types.boolean, types.literal(True), numba.typeof(np.zeros((2, 3))),
             numba.typeof(np.zeros(3, dtype=np.uint64)), numba.typeof((np.zeros((2, 2)), np.zeros(3, np.int64), 1.0)),
             numba.typeof((np.zeros(2), np.zeros(3))), types.Array(types.float64, 2, "A", readonly=True)]
    for t in cases:
        assert _decode_type(json.loads(json.dumps(_encode_type(t)))) == t
    with pytest.raises(TypeError):
        _encode_type(types.unicode_type)
