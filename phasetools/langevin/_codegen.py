"""Code generation: from a Potential's sympy expression to a cached numba kernel.

The gradient of the energy and of the order parameter are derived by sympy,
common-subexpression-eliminated, printed as scalar Python (``math`` functions) and
pasted into a kernel template together with the inline normal generator. The source is
written to a module file named by the hash of its text in the kernel cache folder
(``$PHASETOOLS_CACHE_DIR`` or ``~/.cache/phasetools/kernels``) and imported from there,
so numba's ``cache=True`` stores the machine code beside it and a second process, or a
second run, loads it without compiling. Parameters are runtime arguments: one kernel
serves every parameter value of a model.
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
from sympy.printing.pycode import PythonCodePrinter

from .. import __version__

__all__ = ["kernel_module", "numpy_functions", "cache_dir"]


def cache_dir() -> Path:
    root = os.environ.get("PHASETOOLS_CACHE_DIR")
    base = Path(root) if root else Path.home() / ".cache" / "phasetools"
    path = base / "kernels"
    path.mkdir(parents=True, exist_ok=True)
    return path


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
    exprs = [sp.sympify(e).xreplace(subs) for e in exprs]
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


LANES = 8  # trajectories advanced in turn by one thread: independent chains hide the step latency


def _xoshiro_lines(indent):
    """Inline xoshiro256** on the scalar state s0..s3; the 64 output bits go to ``_u``."""
    return "\n".join(indent + line for line in [
        "_m = s1 * U5",
        "_u = ((_m << U7) | (_m >> U57)) * U9",
        "_t = s1 << U17",
        "s2 ^= s0", "s3 ^= s1", "s1 ^= s2", "s0 ^= s3", "s2 ^= _t",
        "s3 = (s3 << U45) | (s3 >> U19)",
    ])


def _normal_pair_lines(z1, z2, indent):
    """Two standard normals into ``z1``, ``z2`` (ziggurat fast path inline, rare path via S[j])."""
    slow = ("S[j, 0] = s0\nS[j, 1] = s1\nS[j, 2] = s2\nS[j, 3] = s3\n{z} = _zig_slow({h}, S[j], kn, wn, fn)\n"
            "s0 = S[j, 0]\ns1 = S[j, 1]\ns2 = S[j, 2]\ns3 = S[j, 3]")
    lines = [_xoshiro_lines(indent),
             f"{indent}_h1 = np.int64(np.int32(_u >> U32))",
             f"{indent}_h2 = np.int64(np.int32(_u & M32))",
             f"{indent}_i1 = _h1 & 127",
             f"{indent}_i2 = _h2 & 127",
             f"{indent}if abs(_h1) < kn[_i1]:",
             f"{indent}    {z1} = _h1 * wn[_i1]",
             f"{indent}else:"]
    lines += [indent + "    " + ln for ln in slow.format(z=z1, h="_h1").splitlines()]
    lines += [f"{indent}if abs(_h2) < kn[_i2]:", f"{indent}    {z2} = _h2 * wn[_i2]", f"{indent}else:"]
    lines += [indent + "    " + ln for ln in slow.format(z=z2, h="_h2").splitlines()]
    return "\n".join(lines)


def _normals_lines(names, indent):
    """Draw len(names) normals; an odd one out uses the lane's spare from the last pair."""
    out = []
    for j in range(0, len(names) - 1, 2):
        out.append(_normal_pair_lines(names[j], names[j + 1], indent))
    if len(names) % 2:
        out.append(f"{indent}if have_spare:\n{indent}    {names[-1]} = spare\n{indent}    have_spare = False\n"
                   f"{indent}else:")
        out.append(_normal_pair_lines(names[-1], "spare", indent + "    "))
        out.append(f"{indent}    have_spare = True")
    return "\n".join(out)


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


def kernel_source(potential, sgd: bool = False) -> str:
    """The full text of the kernel module for ``potential``.

    ``run`` advances the trajectories of a chunk of ``LANES`` in turn, step by step: each
    lane keeps its own state, generator and step counter, so results do not depend on the
    chunking, but independent dependency chains keep the core busy. Inside a lane's step
    the state lives in scalar locals and the gradient, order parameter, noise and normals
    are computed inline (a call across a numba function boundary costs more than a step).

    Noise: ``noise_mode = 0`` additive, ``y = x - grad U dt + sigma z`` with
    ``sigma = sqrt(2 T dt)``; ``noise_mode = 1`` SGD-like, available when the potential has
    an end-to-end map ``M`` (p x d): ``y = x - grad U dt - scale * J^T L z`` with
    ``J = dM/dx``, ``K = chol L L^T`` the covariance of ``vec(r x^T)`` under the Gaussian
    data model (``r = y - M x``) and ``scale = 2 kappa sqrt(lr dt f / B)``.
    """
    d = potential.dim
    U = potential.expr
    phi = potential.order
    X = _subs(potential, "x_")
    Y = _subs(potential, "y_")
    I = " " * 16
    grads = [sp.diff(U, v) for v in potential.variables]
    dphi = [sp.diff(phi, v) for v in potential.variables]
    params = "\n".join(f"        p_{j} = p[{j}]" for j in range(len(potential.param_symbols))) or "        pass"
    load_x = "\n".join(f"{I}x_{i} = X[j, {i}]" for i in range(d))
    store_y = "\n".join(f"{I}X[j, {i}] = y_{i}" for i in range(d))
    grad_block = _block(grads, [f"g_{i}" for i in range(d)], X, I, "tg_")
    add_noise = _normals_lines([f"z_{i}" for i in range(d)], I + "    ")
    add_update = "\n".join(f"{I}    y_{i} = x_{i} - g_{i} * dt + sigma * z_{i}" for i in range(d))
    M = getattr(potential, "end_to_end", None) if sgd else None
    if M is not None:
        M = sp.Matrix(M)
        pp, dd = M.shape
        mm = pp * dd
        ents = [M[a, b] for a in range(pp) for b in range(dd)]
        jac = [sp.diff(e, v) for e in ents for v in potential.variables]
        names_m = [f"M_{a}_{b}" for a in range(pp) for b in range(dd)]
        names_j = [f"J_{a}_{b}_{i}" for a in range(pp) for b in range(dd) for i in range(d)]
        sgd = [_block(ents + jac, names_m + names_j, X, I + "    ", "tj_")]
        # residual moments: S_rx = Syx - M Sxx, S_rr = Syy - M Syx^T - Syx M^T + M Sxx M^T
        for a in range(pp):
            for b in range(dd):
                terms = " + ".join(f"M_{a}_{k} * sxx[{k}, {b}]" for k in range(dd))
                sgd.append(f"{I}    R_{a}_{b} = syx[{a}, {b}] - ({terms})")
        for a in range(pp):
            for c in range(pp):
                msm = " + ".join(f"M_{a}_{k} * sxx[{k}, {l}] * M_{c}_{l}" for k in range(dd) for l in range(dd))
                ms = " + ".join(f"M_{a}_{k} * syx[{c}, {k}] + syx[{a}, {k}] * M_{c}_{k}" for k in range(dd))
                sgd.append(f"{I}    Q_{a}_{c} = syy[{a}, {c}] - ({ms}) + ({msm})")
        idx = [(a, b) for a in range(pp) for b in range(dd)]
        for r, (a, b) in enumerate(idx):
            for c_, (cc, dd_) in enumerate(idx):
                if c_ > r:
                    continue
                sgd.append(f"{I}    K_{r}_{c_} = Q_{a}_{cc} * sxx[{b}, {dd_}] + R_{a}_{dd_} * R_{cc}_{b}")
        sgd.append(_cholesky_lines(mm, I + "    "))
        sgd.append(_normals_lines([f"z_{r}" for r in range(mm)], I + "    "))
        for r in range(mm):
            terms = " + ".join(f"L_{r}_{c_} * z_{c_}" for c_ in range(r + 1))
            sgd.append(f"{I}    w_{r} = {terms}")
        for i in range(d):
            terms = " + ".join(f"J_{a}_{b}_{i} * w_{r}" for r, (a, b) in enumerate(idx))
            sgd.append(f"{I}    y_{i} = x_{i} - g_{i} * dt - scale * ({terms})")
        # variance of the order parameter's increment, for the bridge: scale^2 v^T K v, v = J dphi
        vt = []
        for r, (a, b) in enumerate(idx):
            terms = " + ".join(f"J_{a}_{b}_{i} * dphi_{i}" for i in range(d))
            vt.append(f"v_{r} = {terms}")
        quad = " + ".join(f"{'2.0 * ' if c_ < r else ''}v_{r} * K_{r}_{c_} * v_{c_}"
                          for r in range(mm) for c_ in range(r + 1))
        sgd_var = ("\n".join(f"{I}            {ln}" for ln in vt)
                   + f"\n{I}            var = scale * scale * ({quad})")
        sgd_block = "\n".join(sgd)
    else:
        # not generated for this kernel (additive-noise kernels stay small and compile fast);
        # the wrapper never selects it. NaN would mark the trajectory non-finite. A raise
        # inside the prange loop would stop numba from parallelising it.
        sgd_block = "\n".join(f"{I}    y_{i} = math.nan" for i in range(d))
        sgd_var = f"{I}            var = 0.0"
    dphi_block = _block(dphi, [f"dphi_{i}" for i in range(d)], X, I + "            ", "td_")
    gsq = " + ".join(f"dphi_{i} * dphi_{i}" for i in range(d))
    reflect = "\n".join(f"{I}if y_{i} < 0.0:\n{I}    y_{i} = -y_{i}" for i in potential.reflect)
    order_new = _block([phi], ["phin"], Y, I, "to_")
    order_init = _block([phi], ["PHI[j]"], X, I, "ti_")
    finite = " and ".join(["math.isfinite(phin)"] + [f"math.isfinite(y_{i})" for i in range(d)])
    save = "\n".join(f"{I}        paths[lo + j, r, {i}] = y_{i}" for i in range(d))
    return f'''\
"""Generated by phasetools {__version__} for the potential {potential.name!r}. Do not edit."""
import math
import numpy as np
from numba import njit, prange
from phasetools.langevin._rng import _zig_slow

DIM = {d}
LANES = {LANES}
U5 = np.uint64(5)
U7 = np.uint64(7)
U9 = np.uint64(9)
U11 = np.uint64(11)
U17 = np.uint64(17)
U19 = np.uint64(19)
U32 = np.uint64(32)
U45 = np.uint64(45)
U57 = np.uint64(57)
M32 = np.uint64(0xFFFFFFFF)


{_helper("energy", potential, [U], ["e"], "e")}

{_helper("order", potential, [phi], ["o"], "o")}

@njit(cache=True, nogil=True, parallel=True)
def run(x0, p, dt, sigma, noise_mode, scale, sxx, syx, syy, max_steps, has_stop, level, direction, bridge,
        save_every, states, kn, wn, fn, out_steps, out_status, out_x, paths):
    """Advance every trajectory until it stops or reaches max_steps.

    status: 0 censored (max_steps reached), 1 escaped, 2 stopped on a non-finite value.
    """
    n = x0.shape[0]
    n_save = paths.shape[1]
    n_chunks = (n + LANES - 1) // LANES
    for c in prange(n_chunks):
        lo = c * LANES
        m = min(n, lo + LANES) - lo
        X = x0[lo:lo + m].copy()
        S = states[lo:lo + m].copy()
        PHI = np.empty(m)
        SPARE = np.zeros(m)
        HAVE = np.zeros(m, dtype=np.bool_)
        ACTIVE = np.ones(m, dtype=np.bool_)
        STEPS = np.full(m, max_steps, dtype=np.int64)
        STATUS = np.zeros(m, dtype=np.int8)
{params}
        for j in range(m):
{load_x}
{order_init}
        n_active = m
        for k in range(max_steps):
            if n_active == 0:
                break
            for j in range(m):
                if not ACTIVE[j]:
                    continue
{load_x}
                s0 = S[j, 0]
                s1 = S[j, 1]
                s2 = S[j, 2]
                s3 = S[j, 3]
                have_spare = HAVE[j]
                spare = SPARE[j]
                phi = PHI[j]
{grad_block}
                if noise_mode == 0:
{add_noise}
{add_update}
                else:
{sgd_block}
{reflect}
{order_new}
                done = False
                if not ({finite}):
                    STATUS[j] = 2
                    done = True
                elif has_stop:
                    if direction * (phin - level) >= 0.0:
                        STATUS[j] = 1
                        done = True
                    elif bridge:
                        va = direction * (level - phi)
                        vb = direction * (level - phin)
                        if noise_mode == 0:
{dphi_block}
                            var = sigma * sigma * ({gsq})
                        else:
{dphi_block}
{sgd_var}
                        if var > 0.0:
{_xoshiro_lines(I + "            ")}
                            _v = ((_u >> U11) + 0.5) * (1.0 / 9007199254740992.0)
                            if _v < math.exp(-2.0 * va * vb / var):
                                STATUS[j] = 1
                                done = True
{store_y}
                S[j, 0] = s0
                S[j, 1] = s1
                S[j, 2] = s2
                S[j, 3] = s3
                HAVE[j] = have_spare
                SPARE[j] = spare
                PHI[j] = phin
                if save_every > 0 and (k + 1) % save_every == 0:
                    r = (k + 1) // save_every - 1
                    if r < n_save:
{save}
                if done:
                    ACTIVE[j] = False
                    STEPS[j] = k + 1
                    n_active -= 1
        for j in range(m):
            out_steps[lo + j] = STEPS[j]
            out_status[lo + j] = STATUS[j]
            for i in range(DIM):
                out_x[lo + j, i] = X[j, i]
            for i in range(4):
                states[lo + j, i] = S[j, i]
'''


@functools.lru_cache(maxsize=64)
def _load(source: str):
    digest = hashlib.sha256((source + numba.__version__).encode()).hexdigest()[:20]
    name = f"pt_kernel_{digest}"
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

    ``sgd=True`` includes the SGD-like noise branch (larger, slower to compile).
    """
    return _load(kernel_source(potential, sgd))


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

