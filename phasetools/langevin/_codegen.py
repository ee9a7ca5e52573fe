"""Code generation: from a Potential's sympy expression to a cached numba kernel.

The gradient of the energy and of the order parameter are derived by sympy,
common-subexpression-eliminated, printed as scalar Python (``math`` functions) and
pasted into a kernel template together with the inline normal generator. The source is
written to a module file named by the hash of its text, of the numba version and of the
source of every module the kernel calls (:data:`GENERATED_DEPENDENCIES`) in the kernel
cache folder (:func:`cache_dir`) and imported from there, so numba's ``cache=True`` stores
the machine code beside it and a second process, or a second run, loads it without
compiling; an edit of the generator (``phasetools/_rng.py``) or of this module gives new
names, never a stale kernel. Parameters are runtime arguments: one kernel serves every
parameter value of a model.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import numba
import numpy as np
import sympy as sp
from llvmlite import ir as llvm_ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic
from sympy.printing.pycode import PythonCodePrinter

from .. import __version__
from ..theory import gradient_noise_kernel
from .._numba import KERNEL_DEPENDENCIES, dependency_hash

__all__ = ["kernel_module", "module_name", "numpy_functions", "cache_dir", "GENERATED_DEPENDENCIES"]

#: Modules (relative to the package folder) whose code the generated kernels call: the
#: shared kernel dependencies (the generator) and this module (the intrinsics
#: ``_fetch_add`` and ``_num_threads``). Their source hash is part of a kernel's name.
GENERATED_DEPENDENCIES = KERNEL_DEPENDENCIES  # includes this module (its intrinsics)


def cache_dir() -> Path:
    """The folder of the generated kernels, created owner-only and checked on every use.

    ``$PHASETOOLS_CACHE_DIR/kernels``, else ``$XDG_CACHE_HOME/phasetools/kernels``, else
    ``~/.cache/phasetools/kernels``. numba loads (and unpickles) compiled code from it, so
    whoever can write there can run code as the user: the folder and its parent are created
    with mode ``0o700``, and a folder writable by group or others, or owned by another
    user, is refused.

    Returns
    -------
    Path
        The kernel folder.

    Raises
    ------
    RuntimeError
        When the folder or its parent is writable by group/others or owned by another user.
    """
    root = os.environ.get("PHASETOOLS_CACHE_DIR")
    if root:
        base = Path(root)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = (Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache") / "phasetools"
    path = base / "kernels"
    for folder in (base, path):
        if not folder.is_dir():
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        _check_private(folder)
    return path


def _check_private(folder: Path):
    """RuntimeError unless ``folder`` is owned by this user and writable by no one else."""
    st = folder.stat()
    uid = os.getuid() if hasattr(os, "getuid") else None
    if uid is not None and st.st_uid != uid:
        raise RuntimeError(f"the kernel cache folder {folder} is owned by another user (uid {st.st_uid}); "
                           f"compiled kernels are loaded from it, so it must be your own: set "
                           f"PHASETOOLS_CACHE_DIR to a folder of yours")
    if st.st_mode & 0o022:
        raise RuntimeError(f"the kernel cache folder {folder} is writable by group or others "
                           f"(mode {st.st_mode & 0o777:o}); compiled kernels are loaded from it, so anyone who "
                           f"can write there can run code as you: chmod go-w it or set PHASETOOLS_CACHE_DIR "
                           f"to a private folder")


class _Printer(PythonCodePrinter):
    """Scalar code for numba: math functions, integer powers as products where short."""

    def _print_Pow(self, expr, rational=False):
        base, exp = expr.as_base_exp()
        if exp.is_Integer and 2 <= int(exp) <= 4:
            b = self.parenthesize(base, 1000)
            return "*".join([b] * int(exp))
        if exp.is_Integer and int(exp) == -1:
            return f"(1.0/{self.parenthesize(base, 1000)})"
        return super()._print_Pow(expr, rational=rational)


def _subs(potential, var_prefix="x_"):
    subs = {v: sp.Symbol(f"{var_prefix}{i}") for i, v in enumerate(potential.variables)}
    subs.update({p: sp.Symbol(f"p_{j}") for j, p in enumerate(potential.param_symbols)})
    return subs


def _block(exprs, targets, subs, indent, tmp="t_"):
    """CSE'd assignment lines computing ``exprs`` into the names ``targets``."""
    exprs = [sp.sympify(e, strict=True).xreplace(subs) for e in exprs]  # strict: never parses text
    replacements, reduced = sp.cse(exprs, symbols=sp.numbered_symbols(tmp), optimizations="basic")
    pr = _Printer({"fully_qualified_modules": True, "standard": "python3"})
    lines = [f"{indent}{sym} = {pr.doprint(val)}" for sym, val in replacements]
    lines += [f"{indent}{tgt} = {pr.doprint(val)}" for tgt, val in zip(targets, reduced)]
    return "\n".join(lines)


def _helper(name, potential, body_exprs, targets, ret):
    """A small njit helper (energy, order) over an array ``x``; not used in hot loops."""
    ind = "    "
    unpack = "\n".join([f"{ind}x_{i} = x[{i}]" for i in range(potential.dim)]
                       + [f"{ind}p_{j} = p[{j}]" for j in range(len(potential.param_symbols))])
    return (f"@njit(cache=True, nogil=True)\ndef {name}(x, p):\n{unpack}\n"
            f"{_block(body_exprs, targets, _subs(potential), ind)}\n{ind}return {ret}\n")


@intrinsic
def _fetch_add(typingctx, counter, value):
    """Atomically add ``value`` to ``counter[0]`` (an int64 array) and return the old value.

    The shared work queue of the kernels' worker threads (numba has no atomics of its own).
    """
    if not (isinstance(counter, types.Array) and counter.dtype == types.int64
            and isinstance(value, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        val = context.cast(builder, args[1], signature.args[1], types.int64)
        return builder.atomic_rmw("add", ary.data, val, "seq_cst")

    return types.int64(counter, value), codegen


@intrinsic
def _num_threads(typingctx):
    """``numba.get_num_threads()`` for cached kernels (numba's own version cannot be cached).

    Calls the threading layer's ``get_num_threads`` by symbol name, as numba's parallel
    loops do, instead of through a ctypes pointer.
    """
    from numba.np.ufunc.parallel import _launch_threads

    _launch_threads()

    def codegen(context, builder, signature, args):
        fn = cgutils.get_or_insert_function(builder.module, llvm_ir.FunctionType(cgutils.intp_t, []),
                                            "get_num_threads")
        return builder.call(fn, [])

    return types.intp(), codegen


LANES = 128  # trajectories one thread advances together (structure of arrays, vectorised loops)


def _xoshiro_lines(indent):
    """Inline xoshiro256** on the scalar state s0..s3; the 64 output bits go to ``_u``."""
    return "\n".join(indent + line for line in [
        "_m = s1 * U5",
        "_u = ((_m << U7) | (_m >> U57)) * U9",
        "_t = s1 << U17",
        "s2 ^= s0", "s3 ^= s1", "s1 ^= s2", "s0 ^= s3", "s2 ^= _t",
        "s3 = (s3 << U45) | (s3 >> U19)",
    ])


def _cholesky_lines(m, indent):
    """Unrolled semi-definite Cholesky of the symmetric m x m matrix K_r_c into L_r_c (r >= c)."""
    lines = []
    for c in range(m):
        acc = " - ".join([f"K_{c}_{c}"] + [f"L_{c}_{k} * L_{c}_{k}" for k in range(c)])
        lines.append(f"{indent}_d = {acc}")
        lines.append(f"{indent}L_{c}_{c} = math.sqrt(_d) if _d > 0.0 else 0.0")
        for r in range(c + 1, m):
            acc = " - ".join([f"K_{r}_{c}"] + [f"L_{r}_{k} * L_{c}_{k}" for k in range(c)])
            lines.append(f"{indent}L_{r}_{c} = ({acc}) / L_{c}_{c} if L_{c}_{c} > 0.0 else 0.0")
    return "\n".join(lines)


def _sgd_lines(potential, X, I):
    """SGD-like noise: ``y = x - g dt - scale J^T L z`` and the bridge variance ``var``."""
    d = potential.dim
    M = sp.Matrix(potential.end_to_end)
    pp, dd = M.shape
    mm = pp * dd
    ents = [M[a, b] for a in range(pp) for b in range(dd)]
    jac = [sp.diff(e, v) for e in ents for v in potential.variables]
    names_m = [f"M_{a}_{b}" for a in range(pp) for b in range(dd)]
    names_j = [f"J_{a}_{b}_{i}" for a in range(pp) for b in range(dd) for i in range(d)]
    out = [_block(ents + jac, names_m + names_j, X, I, "tj_")]
    # K = the per-sample covariance of vec(r x^T), from the theory's one formula (Isserlis)
    Msym = sp.Matrix(pp, dd, lambda a, b: sp.Symbol(f"M_{a}_{b}"))
    moments = [sp.Matrix(sp.MatrixSymbol(name, *shape)) for name, shape in
               (("sxx", (dd, dd)), ("syx", (pp, dd)), ("syy", (pp, pp)))]
    K = gradient_noise_kernel(Msym, *moments)
    pairs = [(r, c_) for r in range(mm) for c_ in range(r + 1)]
    out.append(_block([K[r, c_] for r, c_ in pairs], [f"K_{r}_{c_}" for r, c_ in pairs], {}, I, "tk_"))
    idx = [(a, b) for a in range(pp) for b in range(dd)]
    out.append(_cholesky_lines(mm, I))
    for r in range(mm):
        terms = " + ".join(f"L_{r}_{c_} * Z[q0 + {c_}, j]" for c_ in range(r + 1))
        out.append(f"{I}w_{r} = {terms}")
    for i in range(d):
        terms = " + ".join(f"J_{a}_{b}_{i} * w_{r}" for r, (a, b) in enumerate(idx))
        out.append(f"{I}y_{i} = x_{i} - g_{i} * dt - scale * ({terms})")
    # variance of the order parameter's increment, for the bridge: scale^2 v^T K v, v = J dphi
    var = []
    for r, (a, b) in enumerate(idx):
        terms = " + ".join(f"J_{a}_{b}_{i} * dphi_{i}" for i in range(d))
        var.append(f"v_{r} = {terms}")
    quad = " + ".join(f"{'2.0 * ' if c_ < r else ''}v_{r} * K_{r}_{c_} * v_{c_}"
                      for r in range(mm) for c_ in range(r + 1))
    var.append(f"var = scale * scale * ({quad})")
    return "\n".join(out), var, mm


def _step_loop(potential, noise, var_lines, bridge, indent):
    """One Euler-Maruyama step for every lane (normals ``Z[q0 + r, j]``), as a loop over lanes.

    Branch-free apart from the bridge test, so that LLVM can vectorise it: a lane whose
    trajectory stopped earlier in this pair of steps (``EV[j] != 0``) computes a step too,
    but keeps its old values. Events: 1 escaped, 2 non-finite, 3 reached max_steps.
    """
    d = potential.dim
    X = _subs(potential, "x_")
    Y = _subs(potential, "y_")
    I = indent + "    "
    grads = [sp.diff(potential.expr, v) for v in potential.variables]
    dphi = [sp.diff(potential.order, v) for v in potential.variables]
    finite = " and ".join(["math.isfinite(phin)"] + [f"math.isfinite(y_{i})" for i in range(d)])
    lines = [f"{indent}for j in range(width):"]
    lines += [f"{I}x_{i} = X[{i}, j]" for i in range(d)]
    lines += [f"{I}ev = EV[j]", f"{I}k = NST[j]", f"{I}phi = PHI[j]",
              _block(grads, [f"g_{i}" for i in range(d)], X, I, "tg_"), noise]
    lines += [f"{I}y_{i} = abs(y_{i})" for i in potential.reflect]
    lines += [_block([potential.order], ["phin"], Y, I, "to_"),
              f"{I}fin = {finite}",
              f"{I}esc = has_stop and direction * (phin - level) >= 0.0"]
    if bridge:
        J = I + "    "
        lines += [f"{I}if has_stop and ev == 0 and fin and not esc:",
                  f"{J}va = direction * (level - phi)",
                  f"{J}vb = direction * (level - phin)",
                  _block(dphi, [f"dphi_{i}" for i in range(d)], X, J, "td_")]
        lines += [J + ln for ln in var_lines]
        lines += [f"{J}if var > 0.0:",
                  f"{J}    s0 = S0[j]", f"{J}    s1 = S1[j]", f"{J}    s2 = S2[j]", f"{J}    s3 = S3[j]",
                  _xoshiro_lines(J + "    "),
                  f"{J}    S0[j] = s0", f"{J}    S1[j] = s1", f"{J}    S2[j] = s2", f"{J}    S3[j] = s3",
                  f"{J}    _w = ((_u >> U11) + 0.5) * (1.0 / 9007199254740992.0)",
                  f"{J}    esc = _w < math.exp(-2.0 * va * vb / var)"]
    lines += [f"{I}e = 3 if k + 1 >= max_steps else 0",
              f"{I}e = 1 if esc else e",
              f"{I}e = e if fin else 2",
              f"{I}act = ev == 0"]
    lines += [f"{I}X[{i}, j] = y_{i} if act else x_{i}" for i in range(d)]
    lines += [f"{I}PHI[j] = phin if act else phi",
              f"{I}NST[j] = k + 1 if act else k",
              f"{I}e = e if act else ev",
              f"{I}EV[j] = e",
              f"{I}nev += e"]
    return "\n".join(lines)


def kernel_source(potential, sgd: bool = False) -> str:
    """The full text of the kernel module for ``potential``.

    ``run`` splits the trajectories into blocks, handed out to the threads dynamically;
    ``_block`` advances up to ``LANES`` trajectories of a block together, in a structure of
    arrays (one array per state variable and per generator word, indexed by lane), two
    steps per round:

    1. every lane's xoshiro256** advances ``NN`` times (``NN`` normals per step), in one
       loop over the lanes that LLVM vectorises; each 64-bit output gives two 32-bit
       halves, i.e. the normals of both steps of the round;
    2. the ziggurat fast path (about 98.8% of the draws) for all of them, table look-ups
       in a scalar loop; lanes with a rare draw are listed;
    3. the rare path (wedges, tail) for the listed lanes, consuming further draws of the
       lane's own stream;
    4. two Euler-Maruyama steps, each a branch-free (vectorisable) loop over the lanes
       (the Brownian-bridge test, when asked for, draws its uniform from the lane's stream);
    5. a lane whose trajectory stopped (escaped, non-finite, or max_steps reached) is
       written out and takes the block's next trajectory; when there is none, the last
       lane moves into its place so that the loops stay dense.

    Each trajectory consumes its own stream in an order fixed by its own history alone
    (per round of two steps: ``NN`` outputs, the rare-path draws of its normals in order,
    then one uniform per bridge test), so results do not depend on the lane, the block,
    the thread or the number of threads, and a trajectory can be replayed alone.

    Noise: additive, ``y = x - grad U dt + sigma z`` with ``sigma = sqrt(2 T dt)``; or, for
    the SGD kernel (``sgd=True``, potentials with an end-to-end map ``M`` (p x d)),
    ``y = x - grad U dt - scale * J^T L z`` with ``J = dM/dx``, ``K = chol L L^T`` the
    covariance of ``vec(r x^T)`` under the Gaussian data model (``r = y - M x``) and
    ``scale = 2 kappa sqrt(lr dt f / B)``. ``noise_mode`` is accepted for the caller's
    convenience; the kernel serves the one noise it was generated for.
    """
    d = potential.dim
    U = potential.expr
    phi = potential.order
    X = _subs(potential, "x_")
    I = " " * 20  # the body of the step loops
    if sgd and getattr(potential, "end_to_end", None) is not None:
        noise, var_lines, nn = _sgd_lines(potential, X, I)
    else:
        noise = "\n".join(f"{I}y_{i} = x_{i} - g_{i} * dt + sigma * Z[q0 + {i}, j]" for i in range(d))
        gsq = " + ".join(f"dphi_{i} * dphi_{i}" for i in range(d))
        var_lines, nn = [f"var = sigma * sigma * ({gsq})"], d
    params = "\n".join(f"    p_{j} = p[{j}]" for j in range(len(potential.param_symbols))) or "    pass"
    xo = ["s0 = S0[j]", "s1 = S1[j]", "s2 = S2[j]", "s3 = S3[j]"]
    for r in range(nn):
        xo += _xoshiro_lines("").splitlines() + [f"UU[{r}, j] = _u"]
    xo += ["S0[j] = s0", "S1[j] = s1", "S2[j] = s2", "S3[j] = s3"]
    xo = "\n".join(" " * 12 + ln for ln in xo)
    zig = []
    for r in range(nn):
        for half, h in ((0, "_v >> I32"), (1, "(_v << I32) >> I32")):
            zig += ([f"_v = np.int64(UU[{r}, j])"] if half == 0 else []) + [
                f"_h = {h}", "_i = _h & 127", "_z = _h * ZT[_i, 0]", f"Z[{2 * r + half}, j] = _z",
                ("_b = " if r == half == 0 else "_b |= ") + "abs(_z) >= ZT[_i, 1]"]
    zig = "\n".join(" " * 12 + ln for ln in zig)
    def load(ind, j, t):  # lane j takes trajectory t
        return "\n".join([f"{ind}X[{i}, {j}] = x0[{t}, {i}]" for i in range(d)]
                         + [f"{ind}x_{i} = x0[{t}, {i}]" for i in range(d)]
                         + [_block([phi], [f"PHI[{j}]"], X, ind, "ti_")]
                         + [f"{ind}S{w}[{j}] = states[{t}, {w}]" for w in range(4)]
                         + [f"{ind}NST[{j}] = 0", f"{ind}EV[{j}] = 0", f"{ind}TID[{j}] = {t}"])

    move = "\n".join([f"{' ' * 24}X[{i}, j] = X[{i}, width]" for i in range(d)]
                     + [f"{' ' * 24}{a}[j] = {a}[width]" for a in ("S0", "S1", "S2", "S3", "PHI", "NST", "EV", "TID")])
    save = "\n".join(f"                        paths[TID[j], r, {i}] = X[{i}, j]" for i in range(d))
    euler = _step_loop(potential, noise, var_lines, False, " " * 16)
    bridge = _step_loop(potential, noise, var_lines, True, " " * 16)
    return f'''\
"""Generated by phasetools {__version__} for the potential {potential.name!r}. Do not edit."""
import math
import numpy as np
from numba import njit, prange
from phasetools.langevin._codegen import _fetch_add, _num_threads
from phasetools._rng import ZIG_WEDGE, _zig_slow_scalar

DIM = {d}
NN = {nn}
LANES = {LANES}
U5 = np.uint64(5)
U7 = np.uint64(7)
U9 = np.uint64(9)
U11 = np.uint64(11)
U17 = np.uint64(17)
U19 = np.uint64(19)
U45 = np.uint64(45)
U57 = np.uint64(57)
I32 = np.int64(32)


{_helper("energy", potential, [U], ["e"], "e")}

{_helper("order", potential, [phi], ["o"], "o")}

@njit(cache=True, nogil=True)
def _worker(queue, K, x0, p, dt, sigma, scale, sxx, syx, syy, max_steps, has_stop, level, direction, bridge,
            save_every, states, kn, wn, fn, out_steps, out_status, out_x, paths):
    """Advance up to K trajectories at a time, taken from the shared queue, until it is empty."""
    n = x0.shape[0]
    n_save = paths.shape[1]
    X = np.empty((DIM, K))
    S0 = np.empty(K, dtype=np.uint64)
    S1 = np.empty(K, dtype=np.uint64)
    S2 = np.empty(K, dtype=np.uint64)
    S3 = np.empty(K, dtype=np.uint64)
    UU = np.empty((NN, K), dtype=np.uint64)
    Z = np.empty((2 * NN, K))
    PHI = np.empty(K)
    NST = np.empty(K, dtype=np.int64)
    EV = np.empty(K, dtype=np.int64)
    TID = np.empty(K, dtype=np.int64)
    SLOW = np.empty(K, dtype=np.int64)
    # ziggurat fast path as one interleaved float table: z = h * w_i is fast when |z| < kn_i w_i,
    # which is |h| < kn_i exactly (h * w_i rounds monotonically and (kn_i - 1) w_i, kn_i w_i
    # are far more than an ulp apart), with one float comparison instead of integer abs
    WEDGE = ZIG_WEDGE.copy()  # see _rng._wedge_bounds
    ZT = np.empty((128, 2))
    for i in range(128):
        ZT[i, 0] = wn[i]
        ZT[i, 1] = kn[i] * wn[i]
{params}
    width = 0
    for j in range(K):
        t = _fetch_add(queue, 1)
        if t >= n:
            break
{load(" " * 8, "j", "t")}
        width += 1
    while width > 0:
        # 1. the generators of all lanes (vectorised)
        for j in range(width):
{xo}
        # 2. ziggurat fast path; lanes with a rare draw go to SLOW
        n_slow = 0
        for j in range(width):
{zig}
            SLOW[n_slow] = j
            n_slow += _b
        # 3. the rare path, in the order of the lane's draws
        for b in range(n_slow):
            j = SLOW[b]
            s0 = S0[j]
            s1 = S1[j]
            s2 = S2[j]
            s3 = S3[j]
            for q in range(2 * NN):
                _v = np.int64(UU[q // 2, j])
                _h = (_v >> I32) if q % 2 == 0 else ((_v << I32) >> I32)
                if abs(_h) >= kn[_h & 127]:
                    Z[q, j], s0, s1, s2, s3 = _zig_slow_scalar(_h, s0, s1, s2, s3, kn, wn, fn, WEDGE)
            S0[j] = s0
            S1[j] = s1
            S2[j] = s2
            S3[j] = s3
        # 4. two steps
        nev = 0
        for q0 in range(0, 2 * NN, NN):
            if bridge:
{bridge}
            else:
{euler}
            if save_every > 0:
                for j in range(width):
                    k = NST[j]
                    r = k // save_every - 1
                    if k % save_every == 0 and r < n_save:
{save}
        # 5. stopped trajectories: write out, refill the lane or close the gap
        if nev > 0:
            for j in range(width - 1, -1, -1):
                ev = EV[j]
                if ev != 0:
                    t = TID[j]
                    out_steps[t] = NST[j]
                    out_status[t] = 0 if ev == 3 else ev
                    for i in range(DIM):
                        out_x[t, i] = X[i, j]
                    states[t, 0] = S0[j]
                    states[t, 1] = S1[j]
                    states[t, 2] = S2[j]
                    states[t, 3] = S3[j]
                    t = _fetch_add(queue, 1)
                    if t < n:
{load(" " * 24, "j", "t")}
                    else:
                        width -= 1
{move}


@njit(cache=True, nogil=True, parallel=True)
def run(x0, p, dt, sigma, noise_mode, scale, sxx, syx, syy, max_steps, has_stop, level, direction, bridge,
        save_every, states, kn, wn, fn, out_steps, out_status, out_x, paths):
    """Advance every trajectory until it stops or reaches max_steps.

    status: 0 censored (max_steps reached), 1 escaped, 2 stopped on a non-finite value.
    One worker per thread; the workers take trajectories from one shared queue (an atomic
    counter), so a thread that runs faster takes more of them. The results do not depend
    on which worker ran a trajectory (every trajectory has its own stream).
    """
    n = x0.shape[0]
    n_workers = min(_num_threads(), n)
    lanes = min(LANES, (n + n_workers - 1) // n_workers)
    queue = np.zeros(1, dtype=np.int64)  # index of the next trajectory to start
    for w in prange(n_workers):
        _worker(queue, lanes, x0, p, dt, sigma, scale, sxx, syx, syy, max_steps, has_stop, level, direction, bridge,
                save_every, states, kn, wn, fn, out_steps, out_status, out_x, paths)
'''


def module_name(source: str) -> str:
    """The module (and file) name of the kernel generated as ``source``.

    Parameters
    ----------
    source : str
        The kernel's source (:func:`kernel_source`).

    Returns
    -------
    str
        ``pt_kernel_<digest>``, the digest covering ``source``, the numba version and the
        source of :data:`GENERATED_DEPENDENCIES`.
    """
    key = source + numba.__version__ + dependency_hash(GENERATED_DEPENDENCIES)
    return f"pt_kernel_{hashlib.sha256(key.encode()).hexdigest()[:20]}"


@functools.lru_cache(maxsize=64)
def _load(name: str, source: str):
    if name in sys.modules:
        return sys.modules[name]
    path = cache_dir() / f"{name}.py"
    if not path.exists() or path.read_text() != source:
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(source)
        os.replace(tmp, path)  # atomic: concurrent processes never import a half-written file
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def kernel_module(potential, sgd: bool = False):
    """The imported kernel module of ``potential`` (generated and cached on first use).

    Parameters
    ----------
    potential : Potential
        The potential whose kernel is wanted.
    sgd : bool, default False
        Include the SGD-like noise branch (larger, slower to compile).

    Returns
    -------
    module
        The kernel module (``run``, ``energy``, ``order``), named by :func:`module_name`.
    """
    source = kernel_source(potential, sgd)
    return _load(module_name(source), source)


@functools.lru_cache(maxsize=64)
def _numpy_functions(key):
    expr, variables, params, order = key
    args = list(variables) + list(params)
    U = sp.lambdify(args, expr, modules="numpy", cse=True)
    grad = sp.lambdify(args, [sp.diff(expr, v) for v in variables], modules="numpy", cse=True)
    hess = sp.lambdify(args, sp.hessian(expr, variables), modules="numpy", cse=True)
    phi = sp.lambdify(args, order, modules="numpy", cse=True)
    return U, grad, hess, phi


def numpy_functions(potential):
    """numpy (lambdify) energy, gradient, Hessian and order parameter at points ``x (..., d)``."""
    key = (potential.expr, potential.variables, potential.param_symbols, potential.order)
    U, grad, hess, phi = _numpy_functions(key)
    pv = list(potential.param_values)

    def call(f):
        def g(x):
            x = np.asarray(x, dtype=float)
            return f(*[x[..., i] for i in range(x.shape[-1])], *pv)
        return g

    return SimpleNamespace(energy=call(U), grad=call(grad), hessian=call(hess), order=call(phi))

