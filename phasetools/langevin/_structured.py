"""Host side of the structured network kernel (:mod:`._netkernel`).

:class:`NetworkStructure` is what :func:`._potentials.network` attaches to a network
:class:`Potential`: the layer sizes, the data moments and the order parameter as arrays.
:func:`structured_kernel` gives ``simulate`` an object with the interface of a generated
kernel module (``run`` with the generated kernel's arguments and a ``signatures``
attribute, and the stability check), so that a network runs on the one compiled kernel for
every width, depth and data set, and every other potential keeps its generated kernel.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from . import _netkernel as nk
from .._validation import as_float_array

__all__ = ["NetworkStructure", "StructuredKernel", "structured_kernel", "ORDER_KINDS"]

#: Order parameters the structured kernel computes from ``M`` (``network(order=...)`` names).
ORDER_KINDS = {None: nk.ORDER_LINEAR, "sv1": nk.ORDER_SV1, "sv2": nk.ORDER_SV2}


@dataclass(frozen=True, eq=False)
class NetworkStructure:
    """A deep linear network as the structured kernel sees it.

    Parameters
    ----------
    dims : tuple of int
        ``(d_in, width, ..., width, d_out)``: ``n_layers + 1`` layer sizes.
    input_cov : array (d_in, d_in)
        ``S_xx`` of the loss (symmetric).
    cross_cov : array (d_out, d_in)
        ``S_yx`` of the loss.
    gamma : float
        Canonical coupling (the loss is ``kappa (tr(M S_xx M^T) - 2 tr(M S_yx^T) + gamma |theta|^2)``).
    kappa : float
        The convention's energy factor.
    order_kind : int
        :data:`._netkernel.ORDER_LINEAR` (``sum E_ab M_ab``), ``ORDER_SV1`` or ``ORDER_SV2``.
    order_matrix : array (d_out, d_in)
        ``E`` of a linear order parameter (``u v^T`` for ``u^T M v``).
    """

    dims: tuple
    input_cov: np.ndarray
    cross_cov: np.ndarray
    gamma: float
    kappa: float
    order_kind: int = nk.ORDER_LINEAR
    order_matrix: np.ndarray = None

    def __post_init__(self):
        dims = tuple(int(v) for v in self.dims)
        if len(dims) < 2 or min(dims) < 1:
            raise ValueError(f"dims must hold at least two layer sizes >= 1, got {self.dims!r}")
        d_in, d_out = dims[0], dims[-1]
        A = np.ascontiguousarray(as_float_array(self.input_cov, "input_cov").reshape(d_in, d_in))
        C = np.ascontiguousarray(as_float_array(self.cross_cov, "cross_cov").reshape(d_out, d_in))
        E = np.zeros((d_out, d_in)) if self.order_matrix is None else self.order_matrix
        E = np.ascontiguousarray(as_float_array(E, "order_matrix").reshape(d_out, d_in))
        if self.order_kind not in (nk.ORDER_LINEAR, nk.ORDER_SV1, nk.ORDER_SV2):
            raise ValueError(f"order_kind must be 0, 1 or 2, got {self.order_kind!r}")
        if self.order_kind != nk.ORDER_LINEAR and min(d_in, d_out) < self.order_kind:
            raise ValueError(f"singular value {self.order_kind} needs min(d_in, d_out) >= {self.order_kind}")
        if self.order_kind != nk.ORDER_LINEAR and min(d_in, d_out) > 2:
            raise ValueError("singular values in closed form need min(d_in, d_out) <= 2")
        for name, value in (("dims", dims), ("input_cov", A), ("cross_cov", C), ("order_matrix", E),
                            ("gamma", float(self.gamma)), ("kappa", float(self.kappa))):
            object.__setattr__(self, name, value)

    @functools.cached_property
    def layout(self):
        """The kernel's :func:`._netkernel.layout` of ``dims``."""
        return nk.layout(self.dims)

    @property
    def n_params(self) -> int:
        """Number of weights."""
        return int(sum(a * b for a, b in zip(self.dims[:-1], self.dims[1:])))

    def moments(self, noise_moments=None):
        """The kernel's ``mom`` tuple (loss moments, noise moments, order coefficients).

        Parameters
        ----------
        noise_moments : tuple of three arrays, optional
            ``(S_xx, S_yx, S_yy)`` of SGD-like noise; default zeros (additive noise).

        Returns
        -------
        tuple of six flat float64 arrays
        """
        if noise_moments is None:
            noise_moments = (np.zeros((1, 1)),) * 3
        flat = (self.input_cov, self.cross_cov, *noise_moments, self.order_matrix)
        return tuple(np.ascontiguousarray(np.asarray(a, dtype=np.float64).ravel()) for a in flat)

    def weights(self, theta):
        """``[W_1, ..., W_n]`` of flat weight vectors (views).

        Parameters
        ----------
        theta : array (..., n_params)
            Weights, layer by layer, row-major.

        Returns
        -------
        list of ndarray
            ``W_k`` of shape ``(..., dims[k], dims[k-1])``.
        """
        theta = np.asarray(theta, dtype=np.float64)
        out, k = [], 0
        for r, c in zip(self.dims[1:], self.dims[:-1]):
            out.append(theta[..., k:k + r * c].reshape(theta.shape[:-1] + (r, c)))
            k += r * c
        return out

    def gradient(self, thetas) -> np.ndarray:
        """``grad U`` at the rows of ``thetas`` by the kernel's products and back-propagation.

        Parameters
        ----------
        thetas : array (m, n_params) or (n_params,)
            Weights.

        Returns
        -------
        ndarray of the shape of ``thetas``
        """
        th = np.atleast_2d(np.ascontiguousarray(thetas, dtype=np.float64))
        out = np.empty_like(th)
        nk.gradient(th, self.layout, self.moments(), 2.0 * self.kappa, 2.0 * self.kappa * self.gamma, out)
        return out.reshape(np.shape(thetas))

    def order(self, thetas) -> np.ndarray:
        """The order parameter at the rows of ``thetas``, as the kernel computes it.

        Parameters
        ----------
        thetas : array (m, n_params) or (n_params,)
            Weights.

        Returns
        -------
        ndarray (m,) or float
        """
        th = np.atleast_2d(np.ascontiguousarray(thetas, dtype=np.float64))
        out = np.empty(th.shape[0])
        nk.order_values(th, self.layout, self.order_matrix.ravel(), self.order_kind, out)
        return out if np.ndim(thetas) == 2 else out[0]

    def gradient_numpy(self, thetas) -> np.ndarray:
        """``grad U`` with numpy (batched matrix products; no compilation), for host-side checks.

        Parameters
        ----------
        thetas : array (..., n_params)
            Weights.

        Returns
        -------
        ndarray of the shape of ``thetas``
        """
        thetas = np.asarray(thetas, dtype=np.float64)
        W = self.weights(thetas)
        n = len(W)
        pre = [np.broadcast_to(np.eye(self.dims[0]), thetas.shape[:-1] + (self.dims[0],) * 2)]
        for w in W:
            pre.append(w @ pre[-1])
        G = 2.0 * self.kappa * (pre[-1] @ self.input_cov - self.cross_cov)
        grads, A = [None] * n, np.broadcast_to(np.eye(self.dims[-1]), G.shape[:-1] + (self.dims[-1],))
        for k in range(n - 1, -1, -1):
            grads[k] = np.swapaxes(A, -1, -2) @ G @ np.swapaxes(pre[k], -1, -2) + 2.0 * self.kappa * self.gamma * W[k]
            A = A @ W[k]
        return np.concatenate([g.reshape(thetas.shape[:-1] + (-1,)) for g in grads], axis=-1)

    def largest_stable_dt(self, x0):
        """``2 / lambda_max`` of the Hessian over the (first 64 distinct) starting points.

        The Hessian is the central difference of :meth:`gradient_numpy` (the loss is a
        polynomial; the difference is exact to about 1e-8 relative), symmetrised.

        Parameters
        ----------
        x0 : array (m, n_params)
            Starting points.

        Returns
        -------
        (float, float)
            The largest stable ``dt`` (inf if ``lambda_max <= 0``) and ``lambda_max``.
        """
        rows = np.unique(np.atleast_2d(np.asarray(x0, dtype=np.float64)), axis=0)[:64]
        P = self.n_params
        lam = -np.inf
        for row in rows:
            eps = 1e-6 * max(1.0, float(np.max(np.abs(row))))
            pts = row + eps * np.concatenate([np.eye(P), -np.eye(P)])
            g = self.gradient_numpy(pts)
            H = (g[:P] - g[P:]) / (2.0 * eps)
            lam = max(lam, float(np.max(np.linalg.eigvalsh(0.5 * (H + H.T)))))
        return (2.0 / lam if lam > 0 else np.inf), lam


class _Run:
    """``run`` with the generated kernel's arguments, on the structured kernel's worker ``worker``."""

    def __init__(self, structure: NetworkStructure, worker):
        self._structure = structure
        self.worker = worker

    @property
    def signatures(self):
        """The compiled signatures of the worker (empty before its first call)."""
        return self.worker.signatures

    def __call__(self, x0, p, dt, sigma, mode, scale, sxx, syx, syy, max_steps, has_stop, level, direction, bridge,
                 save_every, states, kn, wn, fn, out_steps, out_status, out_x, paths):
        st = self._structure
        fc = np.array([2.0 * st.kappa, 2.0 * st.kappa * st.gamma, dt, sigma, scale, level, direction],
                      dtype=np.float64)
        ic = np.array([int(mode), int(bool(bridge)), int(bool(has_stop)), st.order_kind, int(save_every),
                       int(max_steps)], dtype=np.int64)
        mom = st.moments((sxx, syx, syy))
        nk.run(np.ascontiguousarray(x0, dtype=np.float64), states, st.layout, mom, fc, ic, (kn, wn, fn),
               (out_steps, out_status, out_x, paths))


class StructuredKernel:
    """What ``simulate`` needs of a kernel module, for a network :class:`NetworkStructure`.

    Parameters
    ----------
    structure : NetworkStructure
        The network.
    sgd : bool
        SGD-like noise (else additive).
    bridge : bool
        The scheme is the Brownian bridge (its crossing test runs only with a stop).
    data : bool
        SGD-like noise with the data's fourth-moment tensor (``SGDNoise.from_data``).
    has_stop : bool
        The run has a stop condition.

    Notes
    -----
    ``worker`` is the compiled variant the run takes, picked by the rule the kernel's ``run``
    uses (:meth:`_netkernel.Variant.of`): the compile notice and ``run.signatures`` read it.
    """

    def __init__(self, structure: NetworkStructure, sgd=False, bridge=False, data=False, has_stop=True):
        self.structure = structure
        mode = (2 if data else 1) if sgd else 0   # ic[IC_SGD] of the run (_simulate: 2 with the data's moments)
        self.variant = nk.Variant.of(mode, bridge, has_stop, structure.order_kind, structure.dims)
        self.worker = self.variant.worker()   # the variant's compiled worker (a run compiles only that one)
        self.run = _Run(structure, self.worker)

    def largest_stable_dt(self, x0):
        """See :meth:`NetworkStructure.largest_stable_dt`.

        Parameters
        ----------
        x0 : array (m, n_params)
            Starting points.

        Returns
        -------
        (float, float)
        """
        return self.structure.largest_stable_dt(x0)


def structured_kernel(potential, stop=None, *, sgd=False, bridge=False, data=False):
    """The structured kernel of ``potential``, or None when it needs its generated kernel.

    A potential made by ``network(...)`` carries a :class:`NetworkStructure`; a stop whose
    order parameter is not the network's own (compared exactly, then numerically at three
    random points to 1e-10 relative, which accepts the order read back from a stored
    ensemble's text) runs on the generated kernel.

    Parameters
    ----------
    potential : Potential
        The potential to simulate.
    stop : Threshold or None
        The stop condition.
    sgd : bool
        SGD-like noise (else additive): picks the compiled variant.
    bridge : bool
        The scheme is the Brownian bridge (used only with a stop): picks the compiled variant.
    data : bool
        SGD-like noise from the data's fourth-moment tensor: picks the compiled variant.

    Returns
    -------
    StructuredKernel or None
    """
    st = getattr(potential, "structure", None)
    if st is None:
        return None
    order = getattr(stop, "order", None)
    if order is not None and not _same_order(potential, st, order):
        return None
    return StructuredKernel(st, sgd, bridge, data=sgd and data, has_stop=stop is not None)


def _same_order(potential, st, order) -> bool:
    import sympy as sp

    if sp.sympify(order) == potential.order:
        return True
    if not sp.sympify(order).free_symbols <= set(potential.variables):
        return False
    f = sp.lambdify(list(potential.variables), order, modules="numpy")
    th = np.random.default_rng(0).normal(size=(3, st.n_params))
    mine = st.order(th)
    theirs = np.array([float(f(*row)) for row in th])
    return bool(np.allclose(theirs, mine, rtol=1e-10, atol=1e-12 * float(np.max(np.abs(mine)) + 1e-300)))


def network_structure(n_layers, width, input_cov, cross_cov, gamma, kappa, order=None, kernel=None):
    """The :class:`NetworkStructure` of ``network(...)``, or None for the generated kernel.

    Parameters
    ----------
    n_layers, width : int
        Weight matrices and hidden width.
    input_cov : array (d_in, d_in)
        ``S_xx``; read from its upper triangle, as the sympy loss reads it.
    cross_cov : array (d_out, d_in)
        ``S_yx``.
    gamma : float
        Canonical coupling.
    kappa : float
        The convention's energy factor.
    order : None, "sv1", "sv2" or callable
        ``network``'s order parameter: None is ``u^T M v`` along the top singular pair of
        ``cross_cov`` (same signs as ``network``).
    kernel : None, "structured" or "sympy"
        See :func:`._potentials.network`.

    Returns
    -------
    NetworkStructure or None
    """
    if kernel not in (None, "structured", "sympy"):
        raise ValueError(f"kernel must be None, 'structured' or 'sympy', got {kernel!r}")
    if kernel == "sympy" or (kernel is None and callable(order)):
        return None
    if callable(order):
        raise ValueError("kernel='structured' computes the order parameters u^T M v, 'sv1' and 'sv2'; a callable "
                         "order needs kernel='sympy'")
    A = np.asarray(input_cov, dtype=np.float64)
    C = np.atleast_2d(np.asarray(cross_cov, dtype=np.float64))
    A = np.triu(A) + np.triu(A, 1).T
    d_in, d_out = A.shape[0], C.shape[0]
    E = None
    if order is None:
        U, _, Vt = np.linalg.svd(C)
        sign = np.sign(U[0, 0] or 1.0)
        E = np.outer(U[:, 0] * sign, Vt[0] * sign)
    dims = (d_in,) + (int(width),) * (int(n_layers) - 1) + (d_out,)
    return NetworkStructure(dims, A, C, gamma, kappa, ORDER_KINDS[order], E)
