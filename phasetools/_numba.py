"""The one place that configures numba for phasetools.

``jit`` compiles with ``cache=True`` (so a second process loads machine code from the
cache instead of recompiling), ``nogil`` and ``fastmath=False`` (results must not depend
on reassociation). Kernels are pure functions over arrays: they never touch global RNG
state; randomness comes from per-trajectory generator states passed in as arrays.

Cache keys. numba's disk cache checks only the source file of the function it caches: a
kernel that calls a jitted function of another module (the generator of ``_rng.py``) is
compiled together with that callee, and after an edit of the callee numba would still
load the old machine code. So every module a kernel calls across a module boundary is
listed in :data:`KERNEL_DEPENDENCIES`, and the cache of every ``jit(cache=True)`` kernel
lives in a subfolder named by :func:`dependency_hash` of those files; the generated
Langevin kernels put the same hash into their module name.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numba
from numba.core import caching

__all__ = ["jit", "pjit", "numba", "KERNEL_DEPENDENCIES", "dependency_hash", "in_cache", "compile_shared",
           "COMPILE_HELPER_ENV"]

#: Modules (relative to the package folder) whose jitted functions are called by kernels
#: of other modules, or whose settings shape every kernel: ``_numba.py`` (the options of
#: ``jit``) and ``_rng.py`` (the generator), and ``langevin/_codegen.py``, whose intrinsics
#: (the atomic work counter, the thread count) the structured network kernel calls. Add a
#: module here when a kernel starts to call a jitted function or intrinsic defined in it.
KERNEL_DEPENDENCIES = ("_numba.py", "_rng.py", "langevin/_codegen.py")

_PACKAGE = Path(__file__).resolve().parent


def dependency_hash(paths=None) -> str:
    """A short hash of the source of the modules kernels depend on.

    Parameters
    ----------
    paths : sequence of str or Path, optional
        Files relative to the package folder (absolute paths are taken as they are);
        default :data:`KERNEL_DEPENDENCIES`.

    Returns
    -------
    str
        16 hex digits of the SHA-256 of the files' names and contents; it changes whenever
        one of the files does.
    """
    h = hashlib.sha256()
    for rel in KERNEL_DEPENDENCIES if paths is None else paths:
        path = _PACKAGE / rel
        h.update(str(rel).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


# How the dependency hash reaches numba's cache (numba 0.5x-0.6x, numba/core/caching.py):
# a dispatcher's ``FunctionCache`` asks a *locator* for its folder and for a "source stamp"
# (the SHA-256 of the function's own file); the index file in that folder is discarded when
# the stamp differs. Neither covers the callees, and the index key (signature, CPU, the
# function's bytecode) does not either. Of the two hooks numba offers, changing
# ``NUMBA_CACHE_DIR`` would move every numba user's cache of the process, and
# ``NUMBA_CACHE_LOCATOR_CLASSES`` must be set before numba is imported. Instead, the
# kernels made by ``jit`` get their own cache object whose locator wraps numba's usual
# choice (``NUMBA_CACHE_DIR``, else the module's ``__pycache__``, else the user-wide numba
# cache) and appends a subfolder ``deps-<dependency_hash()>``: after an edit of a dependency
# the kernels look in a new, empty folder and compile afresh, while two checkouts with
# different sources never overwrite each other's caches. Old folders are left in place
# (delete ``__pycache__`` to reclaim them).
class _DependencyLocator(caching._CacheLocator):
    """numba's own cache folder for a function plus a ``deps-<hash>`` subfolder."""

    def __init__(self, inner, tag):
        self._inner = inner
        self._py_file = getattr(inner, "_py_file", None)  # numba's uncachable-function warning reads it
        self._cache_path = os.path.join(inner.get_cache_path(), f"deps-{tag}")

    def get_cache_path(self):
        return self._cache_path

    def get_source_stamp(self):
        return self._inner.get_source_stamp()

    def get_disambiguator(self):
        return self._inner.get_disambiguator()

    @classmethod
    def from_function(cls, py_func, py_file):
        tag = dependency_hash()
        for inner_cls in caching.CacheImpl._locator_classes:
            inner = inner_cls.from_function(py_func, py_file)
            if inner is None:
                continue
            self = cls(inner, tag)
            try:
                self.ensure_cache_path()
            except OSError:
                continue
            return self
        return None


class _DependencyCacheImpl(caching.CompileResultCacheImpl):
    _locator_classes = [_DependencyLocator]


class _DependencyCache(caching.FunctionCache):
    _impl_class = _DependencyCacheImpl


def jit(func=None, **options):
    """``numba.njit`` with the project defaults (cache keyed by the dependencies, nogil).

    Parameters
    ----------
    func : callable, optional
        The function to compile; omitted when used as ``@jit(...)`` with options.
    **options
        numba options overriding the defaults ``cache=True, nogil=True, fastmath=False,
        error_model="numpy"``.

    Returns
    -------
    numba dispatcher, or a decorator when ``func`` is None
    """
    opts = {"cache": True, "nogil": True, "fastmath": False, "error_model": "numpy"}
    opts.update(options)
    if func is None:
        return functools.partial(jit, **opts)
    cache = opts.pop("cache")
    dispatcher = numba.njit(**opts)(func)
    if cache:  # what numba's enable_caching does, with the dependency-keyed locator
        dispatcher._cache = _DependencyCache(dispatcher.py_func)
    return dispatcher


def pjit(func=None, **options):
    """Parallel variant of :func:`jit` (``prange`` loops; threads from ``numba.set_num_threads``).

    Parameters
    ----------
    func : callable, optional
        The function to compile.
    **options
        numba options, as for :func:`jit`.

    Returns
    -------
    numba dispatcher, or a decorator when ``func`` is None
    """
    return jit(func, parallel=True, **options)


# --- compiling on two cores ---------------------------------------------------------------------------
# numba compiles in one thread (a process-wide lock), and a kernel made of many functions spends
# most of its first call compiling its callees one after the other. They are independent, and
# numba's disk cache is shared between processes: :func:`compile_shared` has a second process
# compile part of them into the cache while this one compiles the rest, then this process loads
# the other's share from the cache (a few ms each) and compiles the caller on top.

#: environment variable: "0" makes :func:`compile_shared` compile everything in this process, "1"
#: starts the helper whenever the machine has two cores; unset (or "auto"): only when the
#: 1-minute load average is at most ``cores - 1``, i.e. a core is idle. On a busy machine the
#: helper only shares this process's CPU time (the scheduler divides it by session, not by
#: process) and adds its start-up, 2 s of CPU: measured slower, not faster. Any other value is
#: refused (``ValueError``) rather than read as "auto".
COMPILE_HELPER_ENV = "PHASETOOLS_COMPILE_HELPER"
_HELPER_SETTINGS = ("0", "1", "auto")


def _helper_setting() -> str:
    """The value of :data:`COMPILE_HELPER_ENV`: "0", "1" or "auto" (unset or empty)."""
    raw = os.environ.get(COMPILE_HELPER_ENV, "")
    setting = raw.strip().lower() or "auto"
    if setting not in _HELPER_SETTINGS:
        raise ValueError(f"environment variable {COMPILE_HELPER_ENV} must be \"0\" (no compile helper), \"1\" "
                         f"(a helper whatever the load) or unset / \"auto\" (a helper when a core is idle), "
                         f"got {raw!r}")
    return setting


def _helper_wanted() -> bool:
    """Whether :func:`compile_shared` starts its helper process (see :data:`COMPILE_HELPER_ENV`)."""
    setting = _helper_setting()
    cores = os.cpu_count() or 1
    if setting == "0" or cores < 2:
        return False
    if setting == "1":
        return True
    try:
        return os.getloadavg()[0] <= cores - 1.0
    except (AttributeError, OSError):  # no load average on this platform
        return True


def in_cache(dispatcher, sig) -> bool:
    """Whether numba's disk cache holds ``dispatcher``'s machine code for ``sig``.

    Parameters
    ----------
    dispatcher : numba dispatcher
        A function made by :func:`jit` (with ``cache=True``).
    sig : tuple of numba types
        The argument types.

    Returns
    -------
    bool
        True when the cache index has the entry, or when that cannot be told (numba's cache
        internals differ: nothing is then done in parallel); False when it is missing.
    """
    try:
        cache = dispatcher._cache
        key = cache._index_key(tuple(sig), dispatcher.targetctx.codegen())
        return key in cache._cache_file._load_index()
    except Exception:  # noqa: BLE001 - unknown numba internals: behave as if cached
        return True


def _claim(folder, i) -> bool:
    """Take job ``i`` (an atomic create of the file ``folder/i``): True if this process got it
    (False when another did, or when the folder is gone: the parent has moved on)."""
    try:
        os.close(os.open(os.path.join(folder, str(i)), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        return True
    except (FileExistsError, FileNotFoundError):
        return False


# claim folders of this process's helpers, removed at exit by one atexit hook (a helper still
# running then takes no further job; it also watches this process, see _watch_parent)
_FOLDERS = set()
_FOLDERS_LOCK = threading.Lock()
_ATEXIT = []


def _track(folder):
    with _FOLDERS_LOCK:
        _FOLDERS.add(folder)
        if not _ATEXIT:
            atexit.register(_remove_folders)
            _ATEXIT.append(True)


def _remove(folder):
    shutil.rmtree(folder, ignore_errors=True)
    with _FOLDERS_LOCK:
        _FOLDERS.discard(folder)


def _remove_folders():
    with _FOLDERS_LOCK:
        folders = list(_FOLDERS)
    for folder in folders:
        _remove(folder)


def _reap(proc, folder):
    """Wait for the helper process to end (in a daemon thread), then remove its claim folder."""
    proc.wait()
    _remove(folder)


def compile_shared(jobs, *, wait=False, timeout=600.0):
    """Compile ``jobs`` into numba's disk cache on this process and one helper process.

    This process takes the jobs from the front of the list, the helper from the back, each
    claiming one job at a time (so the split follows the real cost), until they meet. Then,
    by default, this process returns at once: the caller compiles on top of the jobs, loading
    from the cache what the helper has finished and compiling again what it has not (the
    helper may get little CPU on a busy machine; this process never waits for it, so the
    first call is at worst about as long as without a helper). The helper ends after its last
    job, or (between or during jobs) within a fraction of a second of this process's end,
    however it ended (a signal included), removing the temporary claim folder. Nothing is done
    when fewer than two jobs are missing from the cache, on a one-core machine, when the
    1-minute load average leaves no core idle (``> cores - 1``), or when the environment
    variable :data:`COMPILE_HELPER_ENV` is ``"0"`` (``"1"``: regardless of the load). The
    machine code is the same whichever process compiled it.

    Parameters
    ----------
    jobs : list of (dispatcher, tuple of numba types)
        Functions made by :func:`jit` and the argument types to compile. Put first what the
        later jobs call (this process compiles it first, so the helper loads it instead of
        compiling it again) and last the costly jobs that call nothing of the list.
    wait : bool
        Wait for the helper to end before returning (its whole share is then in the cache).
    timeout : float
        With ``wait``: seconds to wait for the helper; it is killed after that.

    Returns
    -------
    int
        Jobs the helper took (finished or, without ``wait``, possibly still running; 0: no
        helper was started).

    Raises
    ------
    ValueError
        When :data:`COMPILE_HELPER_ENV` is set to anything but ``"0"``, ``"1"`` or ``"auto"``.
    """
    _helper_setting()   # a bad value is refused whether or not there is anything to compile
    todo = [(d, tuple(s)) for d, s in jobs if s not in d.overloads and not in_cache(d, s)]
    if len(todo) < 2 or not _helper_wanted():
        return 0
    names = [(d.py_func.__module__, d.py_func.__name__) for d, _ in todo]
    try:   # the jobs go to the helper as plain data (JSON), never as code or pickles
        sigs = [[_encode_type(t) for t in s] for _, s in todo]
        if any(tuple(_decode_type(t) for t in e) != s for e, (_, s) in zip(sigs, todo)):
            raise TypeError("a type does not survive its plain-data form")
    except TypeError:   # a type the codec does not know: this process compiles everything
        return 0
    folder = tempfile.mkdtemp(prefix="phasetools-compile-")
    _track(folder)
    payload = json.dumps([os.getpid(), folder, [[mod, name, e] for (mod, name), e in zip(names, sigs)]]).encode()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(_PACKAGE.parent)] +
                                                      [p for p in [os.environ.get("PYTHONPATH")] if p]))
    proc = subprocess.Popen([sys.executable, "-c", "from phasetools._numba import _helper_main; _helper_main()"],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        proc.stdin.write(payload)
        proc.stdin.close()
    except OSError:
        pass
    mine = 0
    try:
        for i, (d, s) in enumerate(todo):
            if not _claim(folder, i):
                break
            mine += 1
            try:
                d.compile(s)
            except Exception:  # noqa: BLE001 - the first call compiles it again and reports the error
                pass
        if wait:
            proc.wait(timeout=timeout)
    except BaseException:  # timeout, interrupt: the helper stops with this call
        proc.kill()
        proc.wait()
        _remove(folder)
        if not isinstance(sys.exc_info()[1], subprocess.TimeoutExpired):
            raise
        return 0
    n_helper = sum(os.path.exists(os.path.join(folder, str(i))) for i in range(len(todo))) - mine
    threading.Thread(target=_reap, args=(proc, folder), daemon=True).start()
    return n_helper


def _orphaned(parent) -> bool:
    """Whether the process ``parent`` that started this one has ended (this one was re-parented)."""
    return os.getppid() != parent


def _watch_parent(parent, folder, period=0.1):
    """Exit this helper process (removing the claim folder) as soon as its parent has ended.

    The parent removes the folder at its normal exit; killed by a signal (``timeout``, a
    killed worker) it cannot, and the helper would otherwise go on compiling every job left.
    Runs in a daemon thread: numba spends most of a compile in LLVM calls that release the GIL.
    """
    while not _orphaned(parent):
        time.sleep(period)
    shutil.rmtree(folder, ignore_errors=True)
    os._exit(0)


def _helper_main():
    """The helper process of :func:`compile_shared`: the jobs from stdin (JSON written by the
    parent process: module, function and argument types as plain data, nothing evaluated), taken from the back of the list while unclaimed and while the parent
    process lives."""
    import importlib

    parent, folder, jobs = json.loads(sys.stdin.buffer.read())
    threading.Thread(target=_watch_parent, args=(parent, folder), daemon=True).start()
    for i in range(len(jobs) - 1, -1, -1):
        if _orphaned(parent) or not _claim(folder, i):
            break
        mod, name, sig = jobs[i]
        getattr(importlib.import_module(mod), name).compile(tuple(_decode_type(t) for t in sig))


def _encode_type(t):
    """A numba argument type as plain JSON data (arrays, numbers, booleans, tuples, literals).

    Raises TypeError for any other type (the caller then compiles everything itself).
    """
    from numba import types
    from numba.np.numpy_support import as_dtype

    if isinstance(t, types.Literal):
        if not isinstance(t.literal_value, (bool, int)):
            raise TypeError(f"literal {t!r}")
        return {"literal": t.literal_value}
    if isinstance(t, types.Array):
        return {"array": [as_dtype(t.dtype).name, t.ndim, t.layout, not t.mutable]}
    if isinstance(t, types.BaseTuple):
        return {"tuple": [_encode_type(e) for e in t.types]}
    if isinstance(t, (types.Integer, types.Float, types.Boolean)):
        return {"scalar": as_dtype(t).name}
    raise TypeError(f"no plain-data form for the numba type {t!r}")


def _decode_type(data):
    """The numba type of :func:`_encode_type`'s data (numpy dtype names only; nothing evaluated)."""
    import numpy as np
    from numba import types

    (kind, value), = data.items()
    if kind == "literal":
        return types.literal(value)
    if kind == "array":
        name, ndim, layout, readonly = value
        return types.Array(numba.from_dtype(np.dtype(name)), int(ndim), str(layout), readonly=bool(readonly))
    if kind == "tuple":
        return types.Tuple([_decode_type(e) for e in value])
    if kind == "scalar":
        return numba.from_dtype(np.dtype(value))
    raise ValueError(f"unknown type record {kind!r}")
