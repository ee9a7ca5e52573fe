"""Potentials for Langevin simulation, each defined by a sympy expression.

A :class:`Potential` holds the energy expression, its variables, numeric values of its
parameters, a default order parameter (the scalar whose first passage stops a
trajectory) and the variables reflected at zero. Gradients, Hessians and the kernel are
derived from the expression by :mod:`._codegen`; nothing is hand-written.

Energies are in the units of ``convention`` (the expression is multiplied by its
``kappa``), so temperatures and times are in that convention's units too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from .._validation import as_float_array, check_n_layers, check_nonnegative, check_positive, check_width
from ._structured import network_structure
from ..theory import SYMBOLS, chain_potential, network_potential, reduced_potential, resolve_convention
from ._expr import as_expression, parse_expression

_a, _b, _c, _g = SYMBOLS.a, SYMBOLS.b, SYMBOLS.c, SYMBOLS.gamma

__all__ = ["Potential", "double_well", "reduced", "chain", "network", "from_sympy", "singular_value"]


@dataclass(frozen=True, eq=False)
class Potential:
    """A potential ``U(x)`` given by a sympy expression.

    Build one with :func:`double_well`, :func:`reduced`, :func:`chain`, :func:`network` or
    :func:`from_sympy`; gradients, Hessians and the simulation kernel are generated from it.

    Parameters
    ----------
    name : str
        Name recorded with results.
    expr : sympy.Expr
        Energy in the convention's units (parameters still symbolic).
    variables : tuple of sympy.Symbol
        The coordinates.
    params : dict
        Parameter symbol -> value; every free symbol of ``expr`` that is not a variable.
    order : sympy.Expr
        Default order parameter for first-passage stops.
    reflect : tuple of int
        Indices of variables reflected at zero (e.g. ``b = |w| >= 0``).
    convention : str
        Name of the energy convention.
    description : dict
        Plain values describing the potential (stored with results).
    end_to_end : sympy.Matrix or None
        The end-to-end map ``M(x)`` of a linear network (``p x d``); needed for SGD-like
        noise, whose covariance follows from ``M`` and the data moments.
    kappa : float
        The convention's data-term factor (energy = kappa x canonical).
    structure : NetworkStructure or None
        Set by :func:`network`: the layer sizes, data moments and order parameter as arrays,
        which ``simulate`` runs on the structured network kernel (compiled once for every
        shape) instead of a kernel generated from ``expr``.
    """

    name: str
    expr: object
    variables: tuple
    params: dict = field(default_factory=dict)
    order: object = None
    reflect: tuple = ()
    convention: str = "canonical"
    description: dict = field(default_factory=dict)
    end_to_end: object = None
    kappa: float = 1.0
    structure: object = None

    def __post_init__(self):
        variables = tuple(self.variables)
        if not variables or not all(isinstance(v, sp.Symbol) for v in variables):
            raise ValueError("variables must be a non-empty sequence of sympy symbols")
        expr = as_expression(self.expr, variables, what="expr")  # text is parsed, never evaluated
        by_name = {str(sym): sym for sym in expr.free_symbols}
        params = {(by_name.get(k, sp.Symbol(k)) if isinstance(k, str) else k): float(v)
                  for k, v in self.params.items()}
        for k, v in params.items():
            if not np.isfinite(v):
                raise ValueError(f"parameter {k} must be finite, got {v}")
        known = (*variables, *params, *expr.free_symbols)
        order = as_expression(self.order, known, what="order") if self.order is not None else variables[0]
        unknown = (expr.free_symbols | order.free_symbols) - set(variables) - set(params)
        if unknown:
            names = ", ".join(sorted(str(s) for s in unknown))
            raise ValueError(f"expr has free symbols that are neither variables nor params: {names}")
        object.__setattr__(self, "expr", expr)
        object.__setattr__(self, "variables", variables)
        object.__setattr__(self, "params", params)
        object.__setattr__(self, "order", order)
        if self.end_to_end is not None:
            object.__setattr__(self, "end_to_end", _as_matrix(self.end_to_end, known))
        for i in self.reflect:
            if not 0 <= i < len(variables):
                raise ValueError(f"reflect index {i} is not a variable index (0..{len(variables) - 1})")

    @property
    def dim(self) -> int:
        return len(self.variables)

    @property
    def param_symbols(self) -> tuple:
        return tuple(sorted(self.params, key=str))

    @property
    def param_values(self) -> np.ndarray:
        return np.array([self.params[s] for s in self.param_symbols], dtype=np.float64)

    def energy(self, x) -> np.ndarray:
        """Vectorised energy at points ``x``.

        Parameters
        ----------
        x : array (..., dim)
            Points.

        Returns
        -------
        ndarray (...)
            ``U(x)`` in the convention's energy units.
        """
        from ._codegen import numpy_functions

        return numpy_functions(self).energy(np.asarray(x, dtype=float))

    def config(self) -> dict:
        """The plain values that describe the potential (stored with results).

        Returns
        -------
        dict
            ``name``, ``convention``, ``dim``, ``params`` (by symbol name) and the
            description's entries.
        """
        return {"name": self.name, "convention": self.convention, "dim": self.dim,
                "params": {str(k): v for k, v in sorted(self.params.items(), key=lambda kv: str(kv[0]))},
                **self.description}


def _as_matrix(value, symbols):
    """A sympy Matrix whose text entries are parsed safely (``sp.Matrix`` would sympify them)."""
    if isinstance(value, sp.MatrixBase):
        return sp.Matrix(value)
    rows = np.atleast_2d(np.array(value, dtype=object))
    if rows.ndim != 2:
        raise ValueError(f"end_to_end must be a matrix, got an array of shape {rows.shape}")
    return sp.Matrix([[as_expression(v, symbols, what="end_to_end") for v in row] for row in rows])


def double_well() -> Potential:
    """The quartic double well ``U = x^4/4 - x^2/2`` (minima at -1 and +1, barrier 1/4).

    Returns
    -------
    Potential
        One variable ``x``, order parameter ``x``.
    """
    x = sp.Symbol("x", real=True)
    return Potential("double_well", x**4 / 4 - x**2 / 2, (x,), order=x)


def reduced(n_layers, c, gamma, a=1.0, *, convention="canonical") -> Potential:
    """The balanced reduced potential ``U(b)`` of one mode, ``b >= 0`` (reflected at 0).

    Parameters
    ----------
    n_layers : int >= 2
        Number of weight matrices.
    c : float
        The mode's signal ``E[xy]`` (its sign does not matter for ``b >= 0``).
    gamma : float >= 0
        Coupling (the weight decay in ``convention="paper"``).
    a : float > 0
        Input variance ``E[x^2]``.
    convention : {"canonical", "paper"} or Convention
        Energy convention: the potential is ``kappa x`` the canonical one and ``gamma`` is the
        convention's coupling (the SGD weight decay in ``"paper"``).

    Returns
    -------
    Potential
        One variable ``b`` (the common magnitude of the balanced weights), order parameter ``b``.
    """
    n = check_n_layers(n_layers)
    conv = resolve_convention(convention)
    g = conv.gamma_to_canonical(float(check_nonnegative(gamma, "gamma")))
    params = {_a: float(check_positive(a, "a")), _c: abs(float(as_float_array(c, "c"))), _g: float(g)}
    expr = conv.kappa * reduced_potential(n)
    return Potential("reduced", expr, (_b,), params, order=_b, reflect=(0,), convention=conv.name,
                     description={"n_layers": n, "a": params[_a], "c": params[_c], "coupling": float(gamma)})


def chain(n_layers, c, gamma, a=1.0, *, convention="canonical") -> Potential:
    """The chain of ``n_layers`` scalar weights of one mode; order parameter ``P = w_1...w_n``.

    Parameters
    ----------
    n_layers : int >= 2
        Number of weight matrices (here scalars ``w_1 ... w_n``).
    c, gamma, a, convention
        The mode and the energy convention, as in :func:`reduced`.

    Returns
    -------
    Potential
        Variables ``w1 ... wn``, with the end-to-end map ``P`` (SGD-like noise works on it).
    """
    n = check_n_layers(n_layers)
    conv = resolve_convention(convention)
    g = conv.gamma_to_canonical(float(check_nonnegative(gamma, "gamma")))
    expr, w, P = chain_potential(n)
    c_sym = sp.Symbol("c", real=True)
    params = {_a: float(check_positive(a, "a")), c_sym: float(as_float_array(c, "c")), _g: float(g)}
    return Potential("chain", conv.kappa * expr, tuple(w), params, order=P, convention=conv.name,
                     description={"n_layers": n, "a": params[_a], "c": params[c_sym], "coupling": float(gamma)},
                     end_to_end=sp.Matrix([[P]]), kappa=conv.kappa)


def network(n_layers, width, input_cov, cross_cov, gamma, *, convention="canonical", order=None,
            kernel=None) -> Potential:
    """A deep linear network with hidden width ``width`` (all weights are variables).

    ``input_cov`` is ``E[x x^T]`` (d_in x d_in), ``cross_cov`` is ``E[y x^T]`` (d_out x d_in).
    The default order parameter is ``u^T M v`` along the top singular pair of
    ``cross_cov`` (the learned coefficient of the strongest mode). ``order`` may instead be
    ``"sv1"`` or ``"sv2"`` (the first or second singular value of ``M``, in closed form when
    ``min(d_in, d_out) <= 2``) or a function of the end-to-end sympy matrix ``M``.

    Parameters
    ----------
    n_layers : int >= 2
        Number of weight matrices.
    width : int >= 1
        Hidden width ``h`` of every hidden layer.
    input_cov : array (d_in, d_in)
        ``E[x x^T]``.
    cross_cov : array (d_out, d_in)
        ``E[y x^T]``.
    gamma : float >= 0
        Coupling (the weight decay in ``convention="paper"``).
    convention : {"canonical", "paper"} or Convention
        Energy convention: the potential is ``kappa x`` the canonical one and ``gamma`` is the
        convention's coupling (the SGD weight decay in ``"paper"``).
    order : None, "sv1", "sv2" or callable
        The order parameter (see above).
    kernel : None, "structured" or "sympy"
        How ``simulate`` runs it: ``"structured"``, the network kernel compiled once for every
        width, depth and data set (layer products and back-propagation); ``"sympy"``, a kernel
        generated from the expanded loss (slow to compile beyond width 2; kept to compare the
        two). None: structured unless ``order`` is a callable (which only the generated
        kernel evaluates).

    Returns
    -------
    Potential
        All weights as variables, with the end-to-end map ``M`` (and the ``structure`` the
        structured kernel runs on).
    """
    n = check_n_layers(n_layers)
    h = check_width(width)
    conv = resolve_convention(convention)
    A = as_float_array(input_cov, "input_cov")
    C = as_float_array(cross_cov, "cross_cov")
    if A.ndim == 0:
        A = A.reshape(1, 1)
    C = np.atleast_2d(C)
    if A.ndim != 2 or A.shape[0] != A.shape[1] or C.shape[1] != A.shape[0]:
        raise ValueError(f"input_cov must be (d_in, d_in) and cross_cov (d_out, d_in), got {A.shape} and {C.shape}")
    d_in, d_out = A.shape[0], C.shape[0]
    g = conv.gamma_to_canonical(float(check_nonnegative(gamma, "gamma")))
    expr, weights, M, As, Cs = network_potential(n, h, d_in, d_out)
    params = {_g: float(g)}
    for r in range(d_in):
        for q in range(r, d_in):
            params[As[r, q]] = float(A[r, q])
    for r in range(d_out):
        for q in range(d_in):
            params[Cs[r, q]] = float(C[r, q])
    if order in ("sv1", "sv2"):
        order_expr = singular_value(M, int(order[-1]))
    elif isinstance(order, str):
        raise ValueError(f"order must be 'sv1', 'sv2', a function of M or None, got {order!r}")
    elif order is None:
        U, _, Vt = np.linalg.svd(C)
        u, v = U[:, 0] * np.sign(U[0, 0] or 1.0), Vt[0] * np.sign(U[0, 0] or 1.0)
        order_expr = sum(float(u[r]) * M[r, q] * float(v[q]) for r in range(d_out) for q in range(d_in))
    else:
        order_expr = order(M)
    structure = network_structure(n, h, A, C, g, conv.kappa, order, kernel)
    return Potential("network", conv.kappa * expr, tuple(weights), params, order=order_expr,
                     convention=conv.name,
                     description={"n_layers": n, "width": h, "d_in": d_in, "d_out": d_out, "coupling": float(gamma)},
                     end_to_end=M, kappa=conv.kappa, structure=structure)


def singular_value(M, k: int):
    """The ``k``-th (1 = largest) singular value of a sympy matrix with min(shape) <= 2, in closed form."""
    M = sp.Matrix(M)
    G = M * M.T if M.shape[0] <= M.shape[1] else M.T * M
    if G.shape[0] > 2:
        raise ValueError(f"singular values in closed form need min(d_in, d_out) <= 2, got {M.shape}")
    if k not in range(1, G.shape[0] + 1):
        raise ValueError(f"k must be 1..{G.shape[0]} for a {M.shape[0]}x{M.shape[1]} map, got {k}")
    if G.shape[0] == 1:
        return sp.sqrt(G[0, 0])
    # eigenvalues of the symmetric 2x2 Gram matrix: tr/2 -+ sqrt((g00 - g11)^2/4 + g01 g10)
    tr = G[0, 0] + G[1, 1]
    disc = sp.sqrt((G[0, 0] - G[1, 1]) ** 2 / 4 + G[0, 1] * G[1, 0])
    return sp.sqrt(tr / 2 + disc) if k == 1 else sp.sqrt(sp.Max(tr / 2 - disc, 0))


def from_sympy(expr, variables, params=None, *, order=None, reflect=(), name="custom") -> Potential:
    """A user-supplied potential: any sympy expression in ``variables`` (symbols or names).

    Parameters
    ----------
    expr : sympy.Expr or str
        The energy; text is parsed by a whitelist, never evaluated.
    variables : sequence of sympy.Symbol or str
        The coordinates.
    params : dict, optional
        Values of the other free symbols (a symbol that is neither is refused).
    order : sympy.Expr, optional
        Default order parameter for stops (default: the first variable).
    reflect : sequence of int
        Indices of variables reflected at zero.
    name : str
        Name recorded with results.

    Returns
    -------
    Potential
    """
    variables = tuple(sp.Symbol(v, real=True) if isinstance(v, str) else v for v in variables)
    if isinstance(expr, str):  # parsed by a whitelist, never evaluated (sympify would run the text)
        expr = parse_expression(expr, variables, new_symbols=True, what="expr")
    return Potential(name, expr, variables, dict(params or {}), order=order, reflect=tuple(reflect))
