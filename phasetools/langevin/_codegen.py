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
from ._rng import normal_pair_source

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


def kernel_source(potential) -> str:
    """The full text of the kernel module for ``potential``.

    In the stepping loop the state lives in scalar locals ``x_0 .. x_{d-1}`` and the
    gradient, order parameter and normals are computed inline: a call across a numba
    function boundary inside the loop would cost more than the step itself.
    """
    d = potential.dim
    U = potential.expr
    phi = potential.order
    grads = [sp.diff(U, v) for v in potential.variables]
    gsq = sum(sp.diff(phi, v) ** 2 for v in potential.variables)
    I3 = " " * 12
    params = "\n".join(f"        p_{j} = p[{j}]" for j in range(len(potential.param_symbols))) or "        pass"
    load_x = "\n".join(f"        x_{i} = x0[i, {i}]" for i in range(d))
    grad_block = _block(grads, [f"g_{i}" for i in range(d)], _subs(potential), I3, "tg_")
    noise_lines = []
    for j in range(0, d - 1, 2):
        noise_lines.append(normal_pair_source("z1", "z2", "s", I3))
        noise_lines.append(f"{I3}y_{j} = x_{j} - g_{j} * dt + sigma * z1")
        noise_lines.append(f"{I3}y_{j + 1} = x_{j + 1} - g_{j + 1} * dt + sigma * z2")
    if d % 2:  # odd dimension: the second normal of a pair is kept for the next step
        noise_lines.append(f"{I3}if have_spare:\n{I3}    z1 = spare\n{I3}    have_spare = False\n{I3}else:")
        noise_lines.append(normal_pair_source("z1", "spare", "s", I3 + "    "))
        noise_lines.append(f"{I3}    have_spare = True")
        noise_lines.append(f"{I3}y_{d - 1} = x_{d - 1} - g_{d - 1} * dt + sigma * z1")
    noise_block = "\n".join(noise_lines)
    reflect = "\n".join(f"{I3}if y_{i} < 0.0:\n{I3}    y_{i} = -y_{i}" for i in potential.reflect)
    order_new = _block([phi], ["phin"], _subs(potential, "y_"), I3, "to_")
    order_old = _block([phi], ["phi"], _subs(potential, "x_"), "        ", "tp_")
    gsq_block = _block([gsq], ["gsq"], _subs(potential, "x_"), I3 + "        ", "tq_")
    finite = " and ".join(["math.isfinite(phin)"] + [f"math.isfinite(y_{i})" for i in range(d)])
    shift = "\n".join(f"{I3}x_{i} = y_{i}" for i in range(d))
    save = "\n".join(f"{I3}        paths[i, r, {i}] = x_{i}" for i in range(d))
    store = "\n".join(f"        out_x[i, {i}] = x_{i}" for i in range(d))
    return f'''\
"""Generated by phasetools {__version__} for the potential {potential.name!r}. Do not edit."""
import math
import numpy as np
from numba import njit, prange
from phasetools.langevin._rng import next_u64, uniform, _zig_slow

DIM = {d}


{_helper("energy", potential, [U], ["e"], "e")}

{_helper("order", potential, [phi], ["o"], "o")}

@njit(cache=True, nogil=True, parallel=True)
def run_additive(x0, p, dt, sigma, max_steps, has_stop, level, direction, bridge, save_every, states,
                 kn, wn, fn, out_steps, out_status, out_x, paths):
    """Euler-Maruyama with additive noise sigma = sqrt(2 T dt); optional Brownian-bridge test.

    status: 0 censored (max_steps reached), 1 escaped, 2 stopped on a non-finite value.
    """
    n = x0.shape[0]
    n_save = paths.shape[1]
    for i in prange(n):
        s = states[i].copy()
{params}
{load_x}
{order_old}
        status = 0
        steps = max_steps
        have_spare = False
        spare = 0.0
        for k in range(max_steps):
{grad_block}
{noise_block}
{reflect}
{order_new}
            if not ({finite}):
                status = 2
                steps = k + 1
                break
            crossed = False
            if has_stop:
                if direction * (phin - level) >= 0.0:
                    crossed = True
                elif bridge:
                    va = direction * (level - phi)
                    vb = direction * (level - phin)
{gsq_block}
                    var = sigma * sigma * gsq
                    if var > 0.0 and uniform(s) < math.exp(-2.0 * va * vb / var):
                        crossed = True
{shift}
            phi = phin
            if save_every > 0 and (k + 1) % save_every == 0:
                r = (k + 1) // save_every - 1
                if r < n_save:
{save}
            if crossed:
                status = 1
                steps = k + 1
                break
        out_steps[i] = steps
        out_status[i] = status
{store}
        for j in range(4):
            states[i, j] = s[j]
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


def kernel_module(potential):
    """The imported kernel module of ``potential`` (generated and cached on first use)."""
    return _load(kernel_source(potential))


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

