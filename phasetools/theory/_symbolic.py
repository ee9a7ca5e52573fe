"""The symbolic model: one sympy source for every per-mode formula.

Everything numeric in :mod:`phasetools.theory` is derived here from the balanced reduced
potential (docs/theory.md)

    U(b) = a b^(2n) - 2 |c| b^n + n gamma b^2 ,      b = |w_i| >= 0 ,

and compiled once per process with :func:`sympy.lambdify` (numpy back end, so every
compiled function is vectorised over arrays of ``a``, ``c``, ``gamma`` and ``b``).

The closed forms for the coexistence and spinodal couplings are derived with a
*symbolic* number of weight matrices ``n`` by working in the end-to-end coefficient
``lam = b**n``: at a stationary point the coupling is linear in the unknowns, so
``sympy.solve`` eliminates it exactly. ``U' = U'' = 0`` in ``b`` is equivalent to
``dU/dlam = d2U/dlam2 = 0`` for ``b > 0`` because ``b -> lam`` is a diffeomorphism there.
"""

from __future__ import annotations

import functools
from types import SimpleNamespace

import sympy as sp

# One set of symbols for the whole package. ``c`` stands for |c| (only |c| matters).
b, lam = sp.symbols("b lam", positive=True)
a, c, gamma = sp.symbols("a c gamma", positive=True)
n = sp.Symbol("n", positive=True, integer=True)

#: The model's symbols by name, for code that builds on the theory's expressions.
SYMBOLS = SimpleNamespace(a=a, b=b, c=c, gamma=gamma, lam=lam, n=n)

__all__ = ["reduced_potential", "closed_forms", "compiled_closed_forms", "compiled_potential", "chain_potential",
           "network_potential", "SYMBOLS"]


def reduced_potential(n_layers=None) -> sp.Expr:
    """Sympy expression of the balanced per-mode potential ``U(b; a, c, gamma)``.

    The symbols are ``b`` (per-layer balanced magnitude), ``a = E[x^2]``, ``c = |E[xy]|``
    and ``gamma`` (canonical L2 coupling), all declared positive. The energy is measured
    from the trivial state, ``U(0) = 0``.

    Parameters
    ----------
    n_layers : int or None
        Number of weight matrices ``n``. ``None`` returns the expression with the
        symbolic ``n`` (a positive integer symbol).
    """
    nn = n if n_layers is None else sp.Integer(int(n_layers))
    return a * b ** (2 * nn) - 2 * c * b**nn + nn * gamma * b**2


def _potential_in_lam() -> sp.Expr:
    """U as a function of the end-to-end coefficient lam = b**n (symbolic n)."""
    return sp.powsimp(reduced_potential().subs(b, lam ** (1 / n)), force=True)


@functools.lru_cache(maxsize=None)
def closed_forms() -> SimpleNamespace:
    """Derive the closed forms of the coexistence and spinodal points (symbolic ``n``).

    Returns a namespace of sympy expressions in ``n, a, c``:
    ``lam_c, gamma_c`` (coexistence: U = U' = 0, b > 0), ``lam_sp, gamma_sp``
    (spinodal: U' = U'' = 0), ``b_c, b_sp``, ``latent_heat`` (jump of dU*/dgamma =
    sum_i w_i^2 at gamma_c) and ``ratio = gamma_sp / gamma_c``.
    """
    U = _potential_in_lam()
    dU = sp.diff(U, lam)
    (gamma_stat,) = sp.solve(sp.Eq(dU, 0), gamma)  # coupling on the stationary branch
    # Coexistence: the stationary branch at zero energy.
    coexist = sp.factor(sp.powsimp(sp.expand(U.subs(gamma, gamma_stat)), force=True))
    lam_c = _single_positive_root(coexist)
    gamma_c = sp.simplify(gamma_stat.subs(lam, lam_c))
    # Spinodal: the stationary branch with zero curvature.
    curv = sp.simplify(sp.powsimp(sp.expand(sp.diff(U, lam, 2).subs(gamma, gamma_stat)), force=True))
    lam_sp = _single_positive_root(curv)
    gamma_sp = sp.simplify(gamma_stat.subs(lam, lam_sp))
    b_c = lam_c ** (1 / n)
    return SimpleNamespace(
        gamma_stationary=gamma_stat,
        lam_c=sp.simplify(lam_c),
        gamma_c=gamma_c,
        lam_sp=sp.simplify(lam_sp),
        gamma_sp=gamma_sp,
        b_c=b_c,
        b_sp=lam_sp ** (1 / n),
        latent_heat=n * b_c**2,
        ratio=sp.simplify(sp.powsimp(gamma_sp / gamma_c, force=True)),
    )


def _single_positive_root(expr: sp.Expr) -> sp.Expr:
    roots = [r for r in sp.solve(expr, lam) if r != 0]
    if len(roots) != 1:  # pragma: no cover - a change in the model would land here
        raise RuntimeError(f"expected one non-trivial root of {expr}, got {roots}")
    return roots[0]


@functools.lru_cache(maxsize=None)
def compiled_closed_forms() -> SimpleNamespace:
    """numpy functions ``f(n, a, c)`` of the closed forms (vectorised, compiled once)."""
    cf = closed_forms()
    names = ["lam_c", "gamma_c", "lam_sp", "gamma_sp", "b_c", "b_sp", "latent_heat", "ratio"]
    return SimpleNamespace(
        **{k: sp.lambdify((n, a, c), getattr(cf, k), modules="numpy", cse=True) for k in names}
    )


@functools.lru_cache(maxsize=None)
def compiled_potential(n_layers: int) -> SimpleNamespace:
    """numpy functions of ``(b, a, c, gamma)`` for one integer ``n_layers``.

    Parameters
    ----------
    n_layers : int >= 2
        Number of weight matrices.

    Returns
    -------
    SimpleNamespace
        The compiled functions described below (cached per ``n_layers``).

    Notes
    -----

    ``U, dU, d2U``: the potential and its first two derivatives in ``b``;
    ``stationary``: ``h(b) = U'(b) / (2 n b)``, whose positive roots are the non-trivial
    stationary points; ``dstationary``: ``h'(b)``.
    """
    U = reduced_potential(n_layers)
    dU = sp.diff(U, b)
    d2U = sp.diff(U, b, 2)
    h = sp.expand(sp.cancel(dU / (2 * n_layers * b)))
    args = (b, a, c, gamma)

    def compile_(expr):
        return sp.lambdify(args, expr, modules="numpy", cse=True)

    return SimpleNamespace(
        expr=U,
        U=compile_(U),
        dU=compile_(dU),
        d2U=compile_(d2U),
        stationary=compile_(h),
        dstationary=compile_(sp.diff(h, b)),
        stationary_expr=h,
    )


def chain_potential(n_layers: int):
    """Canonical loss of a width-1 chain of ``n_layers`` scalar weights, from the trivial state.

    ``U(w) = a P^2 - 2 c P + gamma sum_i w_i^2`` with ``P = w_1 ... w_n`` (the constant
    ``E[y^2]`` dropped). The data symbols are :data:`SYMBOLS` ``a, gamma`` and a real
    ``c`` (here the signed ``E[xy]``).

    Parameters
    ----------
    n_layers : int >= 2
        Number of scalar weights in the chain.

    Returns
    -------
    tuple
        ``(expr, weights, P)``: the sympy loss, the weight symbols ``w1 ... wn`` and the
        end-to-end product ``P``.
    """
    w = sp.symbols(f"w1:{int(n_layers) + 1}", real=True)
    c_signed = sp.Symbol("c", real=True)
    P = sp.Mul(*w)
    expr = a * P**2 - 2 * c_signed * P + gamma * sum(wi**2 for wi in w)
    return expr, w, P


def network_potential(n_layers: int, width: int, d_in: int, d_out: int):
    """Canonical loss of a deep linear network, from the trivial state, as a sympy scalar.

    ``U = tr(M A M^T) - 2 tr(M C^T) + gamma sum_i ||W_i||_F^2`` with ``M = W_n ... W_1``,
    ``A = E[x x^T]`` (d_in x d_in, symbols ``A_ij``) and ``C = E[y x^T]`` (d_out x d_in,
    symbols ``C_ij``).

    Parameters
    ----------
    n_layers : int >= 2
        Number of weight matrices.
    width : int >= 1
        Hidden width.
    d_in, d_out : int >= 1
        Input and output dimensions.

    Returns
    -------
    tuple
        ``(expr, weights, M, A, C)`` with ``weights`` the flat list of weight symbols, layer
        by layer, row-major (the order in which the Langevin engine stores a network state).
    """
    dims = [d_in] + [width] * (n_layers - 1) + [d_out]
    layers = [sp.Matrix(dims[i + 1], dims[i], lambda r, q, i=i: sp.Symbol(f"W{i + 1}_{r}_{q}", real=True))
              for i in range(n_layers)]
    A = sp.Matrix(d_in, d_in, lambda r, q: sp.Symbol(f"A_{min(r, q)}_{max(r, q)}", real=True))
    C = sp.Matrix(d_out, d_in, lambda r, q: sp.Symbol(f"C_{r}_{q}", real=True))
    M = layers[0]
    for W in layers[1:]:
        M = W * M
    weights = [s for W in layers for s in W]
    expr = (M * A * M.T).trace() - 2 * (M * C.T).trace() + gamma * sum(s**2 for s in weights)
    return expr, weights, M, A, C
