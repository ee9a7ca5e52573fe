"""The structured Langevin kernel of deep linear networks: one compiled kernel for every shape.

The generated kernels (:mod:`._codegen`) expand the loss weight by weight, which is right
for small models but compiles for minutes at the paper's width. This kernel instead takes
the network's shape and data moments as arrays and computes, per trajectory and step,

* the prefix products ``P_k = W_k ... W_1`` (``P_n = M``) and the suffix products
  ``A_k = W_n ... W_{k+1}`` (as the training kernel does; ``P_1 = W_1`` and ``A_{n-1} = W_n``
  are read from the weights' rows, not copied);
* the drift ``-grad U = -(J^T vec(2 kappa (M S_xx - S_yx)) + 2 kappa gamma theta)`` by one
  back-propagation ``grad_k = A_k^T E P_{k-1}^T`` of ``E = 2 kappa (M S_xx - S_yx)``;
* SGD-like noise ``scale J^T L z`` (``L L^T = K``, the small ``(p d) x (p d)`` covariance of
  ``vec(r x^T)``) folded into the same back-propagation: ``E = dt 2 kappa (M S_xx - S_yx) +
  scale L z``, so a noise sample costs no more than the drift; with one input and one output
  (``p = d = 1``, ``K`` is 1 x 1) the residual, ``K`` and ``sqrt(K)`` are one pass over the
  lanes (:func:`_noise_one`) and each weight's gradient entry and update another
  (:func:`_backprop_one`), in a worker of their own (``scalar``, compiled once for every
  network of that structure; the general worker compiles neither);
* the proposal ``Y = X - (J^T vec(E) + decay X) + noise z`` made in the proposal's own rows:
  the back-propagation writes each layer's gradient there and updates it while it is in the
  cache (:func:`_backprop_step`: no gradient rows), ``X``
  and ``Y`` trading roles when every lane moves (no copy); every one of these fusions performs
  the same floating-point operations in the same order, so the bits do not change;
* the stop codes: while no lane has stopped in the round (and without the bridge test, whose
  uniforms are drawn per lane), two passes over the lanes that vectorise, each writing one
  row, instead of the per-lane loop;
* the order parameter from ``M``: a linear functional ``sum E_ab M_ab`` (``u^T M v``) or a
  singular value of ``M`` (closed form for ``min(p, d) <= 2``), and, for the Brownian-bridge
  test, the variance of its increment, ``noise^2 e.v`` or ``noise^2 v^T K v`` with
  ``v = J J^T e``, ``J J^T = sum_k (A_k A_k^T) (x) (P_{k-1}^T P_{k-1})``, ``e = dphi/dM``.

Everything else is the generated kernel's: lanes in a structure of arrays (one row per
weight or product entry, one column per trajectory), the same xoshiro256** streams and
ziggurat normals consumed in the same order (per round of two steps: ``NN`` outputs, the rare
path of the normals in order, one uniform per bridge test), the same stop codes, the shared
work queue and lane compaction; so a trajectory does not depend on the lane, thread or
thread count, and the same streams give the same trajectories as the generated kernel up
to rounding.

Compilation. Shapes are runtime values, so the kernel compiles once (``cache=True``) per
variant (noise, scheme, kind of order parameter; with SGD-like noise, one input and one output
or not) for any width, depth, input/output dimension, data set and stop. numba's cost is per
compiled function and grows with the code each one holds, so the kernel is a few small
functions: every lane-parallel product is one of four row primitives (:func:`_dot`,
:func:`_dot_add`, :func:`_comb`, :func:`_affine`) over one float work array whose rows are
the buffers (offsets in :func:`layout`), and the threads are Python threads running the
GIL-free :func:`_worker` (no parallel region to compile). Calls between kernel functions
never pass literal constants (a literal would compile a second specialisation). On an empty
cache the worker's callees are independent compilations: :func:`precompile` shares them with a
helper process (:func:`.._numba.compile_shared`) before the worker compiles on top of them.
"""

from __future__ import annotations

import dataclasses
import math
import threading

import numba
import numpy as np

from .._numba import compile_shared, in_cache, jit
from .._rng import ZIG_WEDGE, _next_scalar, _zig_slow_scalar
from ._codegen import _fetch_add

__all__ = ["run", "lanes_for", "is_scalar", "worker", "Variant", "WORKERS", "SCALAR_WORKERS", "DATA_WORKERS",
           "gradient", "order_values", "layout", "ORDER_LINEAR", "ORDER_SV1", "ORDER_SV2", "LANES"]

ORDER_LINEAR, ORDER_SV1, ORDER_SV2 = 0, 1, 2
LANES = 128  # fewest trajectories one thread advances together (more for small networks: :func:`lanes_for`)

#: kernel functions called only from other kernel functions: no Python or C wrappers to build
_inner = jit(no_cpython_wrapper=True, no_cfunc_wrapper=True)

# float constants (fc) and integer flags (ic) of the kernel, by position
FC_TWO_KAPPA, FC_DECAY, FC_DT, FC_SIGMA, FC_SCALE, FC_LEVEL, FC_DIRECTION = range(7)
IC_SGD, IC_BRIDGE, IC_HAS_STOP, IC_ORDER, IC_SAVE_EVERY, IC_MAX_STEPS = range(6)

# rows of the float work array: ro[R_*] is the first row of each buffer, ro[R_TOTAL] their number
(R_X, R_Y, R_PRE, R_SUF, R_E, R_CB, R_GR, R_K, R_L, R_R, R_Q, R_EG, R_VB, R_TB, R_GA, R_GP, R_Z, R_VAR,
 R_PHN, R_FIN, R_ACT, R_PHI, R_S, R_TOTAL) = range(24)


def layout(dims):
    """Offsets of the weights, of the products and of the work buffers of a network.

    Parameters
    ----------
    dims : sequence of int
        ``(d_in, h_1, ..., h_{n-1}, d_out)``.

    Returns
    -------
    tuple of five int64 arrays
        ``dims``; ``offs[k-1]``: start of ``W_k`` (``dims[k] x dims[k-1]``, row-major) in the
        flat weights; ``poffs[k]``: start of ``P_k`` (``dims[k] x d_in``) among the prefix
        rows (``k >= 1``); ``soffs[k]``: start of ``A_k`` (``d_out x dims[k]``) among the
        suffix rows (``1 <= k <= n-1``); ``ro``: first row of each buffer in the work array
        (indexed by the ``R_*`` constants).
    """
    dims = np.asarray(dims, dtype=np.int64)
    n = dims.size - 1
    d_in, d_out = int(dims[0]), int(dims[n])
    offs = np.zeros(n + 1, dtype=np.int64)
    poffs = np.zeros(n + 2, dtype=np.int64)
    soffs = np.zeros(n + 2, dtype=np.int64)
    for k in range(1, n + 1):
        offs[k] = offs[k - 1] + dims[k] * dims[k - 1]
        poffs[k + 1] = poffs[k] + dims[k] * d_in
        soffs[k + 1] = soffs[k] + (d_out * dims[k] if k < n else 0)
    P, mm = int(offs[n]), d_in * d_out
    sizes = [P, P, int(poffs[n + 1]), int(soffs[n + 1]), mm, d_out * int(dims.max()), P, mm * mm, mm * mm, mm,
             d_out * d_out, mm, mm, mm, d_out * d_out, d_in * d_in, 2 * max(P, mm), 1, 1, 1, 1, 1, 2]
    ro = np.zeros(R_TOTAL + 1, dtype=np.int64)
    for i, s in enumerate(sizes):
        ro[i + 1] = ro[i] + s
    return dims, offs, poffs, soffs, ro


# --- row primitives: every lane j in [lo, hi) at once (the loops over j vectorise) -----------------
# The lane loops index the 2-D work array with unsigned lane numbers rather than slicing rows:
# the same machine loop, but numba compiles it in about half the time (measured 0.165 -> 0.078 s
# of CPU per three-operand loop: no slice lowering, no reference counting of views).
@_inner
def _dot(W, d, a, sa, b, sb, cnt, lo, hi):
    """``W[d] = sum_{c < cnt} W[a + c sa] * W[b + c sb]``, first term first (``cnt >= 1``).

    Two terms a pass over the lanes (``(s + x0 y0) + x1 y1``: the same additions in the same
    order as one term a pass, half the passes over ``W[d]``): the first pass makes one term
    (``cnt`` odd) or two, the others two each. The lane loops run over unsigned indices, so
    that LLVM sees non-negative, contiguous indices and vectorises them (no wrap-around of
    negative indices to handle).
    """
    js, je = np.uint64(lo), np.uint64(hi)
    c0 = 2 - cnt % 2
    if c0 == 1:
        for j in range(js, je):
            W[d, j] = W[a, j] * W[b, j]
    else:
        ra = a + sa
        rb = b + sb
        for j in range(js, je):
            W[d, j] = W[a, j] * W[b, j] + W[ra, j] * W[rb, j]
    for c in range(c0, cnt, 2):
        ra = a + c * sa
        rb = b + c * sb
        ra1 = ra + sa
        rb1 = rb + sb
        for j in range(js, je):
            W[d, j] = (W[d, j] + W[ra, j] * W[rb, j]) + W[ra1, j] * W[rb1, j]


@_inner
def _dot_add(W, d, a, sa, b, sb, cnt, lo, hi):
    """``W[d] += sum_{c < cnt} W[a + c sa] * W[b + c sb]``."""
    js, je = np.uint64(lo), np.uint64(hi)
    for c in range(cnt):
        ra = a + c * sa
        rb = b + c * sb
        for j in range(js, je):
            W[d, j] += W[ra, j] * W[rb, j]


@_inner
def _comb(W, d, init, coef, ci, cs, a, sa, cnt, lo, hi):
    """``W[d] = init + sum_{c < cnt} coef[ci + c cs] * W[a + c sa]`` (``init`` first; the
    first term in the same pass; ``cnt >= 1``)."""
    js, je = np.uint64(lo), np.uint64(hi)
    f = coef[ci]
    for j in range(js, je):
        W[d, j] = init + f * W[a, j]
    for c in range(1, cnt):
        ra = a + c * sa
        f = coef[ci + c * cs]
        for j in range(js, je):
            W[d, j] += f * W[ra, j]


@_inner
def _affine(W, d, cnt, alpha, beta, lo, hi):
    """``W[d + t] = alpha + beta * W[d + t]`` for ``t < cnt``."""
    js, je = np.uint64(lo), np.uint64(hi)
    for t in range(d, d + cnt):
        for j in range(js, je):
            W[t, j] = alpha + beta * W[t, j]


@_inner
def _copy(W, d, a, cnt, lo, hi):
    """``W[d + t] = W[a + t]`` for ``t < cnt``."""
    js, je = np.uint64(lo), np.uint64(hi)
    for t in range(cnt):
        for j in range(js, je):
            W[d + t, j] = W[a + t, j]


# --- products ---------------------------------------------------------------------------------------
@_inner
def _forward(W, lay, src, lo, hi):
    """Prefix products ``P_1 = W_1``, ``P_k = W_k P_{k-1}`` of the weights at rows ``src`` (the
    state ``X`` or the proposal ``Y``); each entry summed in the training kernel's order.

    ``P_1`` is ``W_1`` itself (the same row-major layout): the products read it from ``src``, and
    its own rows are written only when it is ``M`` (one layer). Readers of ``P_1`` after the
    step take it from the state's rows (:func:`_backprop_step`, :func:`_bridge_variance`): those
    hold the proposal's ``W_1`` in every lane that moved, and a lane that did not move has
    stopped, so nothing it computes is kept."""
    dims, offs, poffs, soffs, ro = lay
    n = dims.shape[0] - 1
    d_in = dims[0]
    pre = ro[R_PRE]
    one = d_in - d_in + 1
    if n == 1:
        _copy(W, pre + poffs[1], src + offs[0], dims[1] * d_in, lo, hi)
    for k in range(2, n + 1):
        cols = dims[k - 1]
        prev = src + offs[0] if k == 2 else pre + poffs[k - 1]
        for i in range(dims[k]):
            for b in range(d_in):
                _dot(W, pre + poffs[k] + i * d_in + b, src + offs[k - 1] + i * cols, one, prev + b,
                     d_in, cols, lo, hi)


@_inner
def _suffix(W, lay, x, lo, hi):
    """Suffix products ``A_{n-1} = W_n``, ``A_{k-1} = A_k W_k`` of the weights at rows ``x`` (the
    state). ``A_{n-1}`` is ``W_n`` itself (the same row-major layout): its rows are not written,
    its readers take ``W_n`` from the state's rows."""
    dims, offs, poffs, soffs, ro = lay
    n = dims.shape[0] - 1
    d_out = dims[n]
    suf = ro[R_SUF]
    one = d_out - d_out + 1
    for k in range(n - 1, 1, -1):
        rows = dims[k]
        cols = dims[k - 1]
        ak = x + offs[n - 1] if k == n - 1 else suf + soffs[k]
        for a in range(d_out):
            for c in range(cols):
                _dot(W, suf + soffs[k - 1] + a * cols + c, ak + a * rows, one, x + offs[k - 1] + c, cols,
                     rows, lo, hi)


@_inner
def _backprop(W, lay, xr, lo, hi):
    """``GR = J^T vec(E)``: layer ``k`` gets ``A_k^T E P_{k-1}^T`` (``P_0 = I``, ``A_n = I``), in
    the order of the training kernel's ``_layer_grads`` (``P_1 = W_1``, ``A_{n-1} = W_n`` from the
    state's rows ``xr``)."""
    dims, offs, poffs, soffs, ro = lay
    n = dims.shape[0] - 1
    d_in = dims[0]
    d_out = dims[n]
    one = d_in - d_in + 1
    for k in range(1, n + 1):
        rows = dims[k]
        cols = dims[k - 1]
        src = ro[R_E]
        if k > 1:  # C = E P_{k-1}^T (d_out x cols)
            src = ro[R_CB]
            pk = xr + offs[0] if k == 2 else ro[R_PRE] + poffs[k - 1]
            for a in range(d_out):
                for c in range(cols):
                    _dot(W, src + a * cols + c, ro[R_E] + a * d_in, one, pk + c * d_in, one, d_in, lo, hi)
        og = ro[R_GR] + offs[k - 1]
        if k == n:
            _copy(W, og, src, rows * cols, lo, hi)
        else:
            ak = xr + offs[n - 1] if k == n - 1 else ro[R_SUF] + soffs[k]
            for i in range(rows):
                for c in range(cols):
                    _dot(W, og + i * cols + c, ak + i, rows, src + c, cols, d_out, lo, hi)


@_inner
def _backprop_step(W, lay, xr, yr, zr, zs, decay, noise, lo, hi):
    """The proposal ``Y = X - (J^T vec(E) + decay X) + noise z`` (state rows from ``xr``,
    proposal rows from ``yr``, the normal of weight ``i`` at row ``zr + i zs``): the gradient
    entries of :func:`_backprop` (``P_1``, ``A_{n-1}`` from ``xr``), each summed in the same order, written into the proposal's
    rows and updated there layer by layer while they are in the cache (no gradient rows; the
    update in the worker's former order of operations)."""
    dims, offs, poffs, soffs, ro = lay
    n = dims.shape[0] - 1
    d_in = dims[0]
    d_out = dims[n]
    one = d_in - d_in + 1
    js, je = np.uint64(lo), np.uint64(hi)
    for k in range(1, n + 1):
        rows = dims[k]
        cols = dims[k - 1]
        src = ro[R_E]
        if k > 1:  # C = E P_{k-1}^T (d_out x cols)
            src = ro[R_CB]
            pk = xr + offs[0] if k == 2 else ro[R_PRE] + poffs[k - 1]
            for a in range(d_out):
                for c in range(cols):
                    _dot(W, src + a * cols + c, ro[R_E] + a * d_in, one, pk + c * d_in, one, d_in, lo, hi)
        o = offs[k - 1]
        if k == n:  # the gradient is C itself
            for t in range(rows * cols):
                x = xr + o + t
                y = yr + o + t
                z = zr + (o + t) * zs
                s = src + t
                for j in range(js, je):
                    W[y, j] = W[x, j] - (W[s, j] + decay * W[x, j]) + noise * W[z, j]
        else:  # the gradient entries into Y, then the update of the layer's rows (in the cache)
            ak = xr + offs[n - 1] if k == n - 1 else ro[R_SUF] + soffs[k]
            for i in range(rows):
                for c in range(cols):
                    _dot(W, yr + o + i * cols + c, ak + i, rows, src + c, cols, d_out, lo, hi)
            for t in range(o, o + rows * cols):
                x = xr + t
                y = yr + t
                z = zr + t * zs
                for j in range(js, je):
                    W[y, j] = W[x, j] - (W[y, j] + decay * W[x, j]) + noise * W[z, j]


@_inner
def _backprop_one(W, lay, xr, yr, decay, lo, hi):
    """:func:`_backprop_step` of a network with one input and one output (``p = d = 1``, the
    ``scalar`` worker, SGD-like noise: no ``z`` term): each weight's gradient entry and its update
    in one pass over the lanes, ``Y = X - (g + decay X)`` with ``g = A_k[i] (E P_{k-1}[c])``
    (``E`` alone for ``k = 1``, no ``A_k`` for ``k = n``), the products of :func:`_dot` with one
    term in the same order (the same bits; the general step adds ``0 * z``, which changes no
    value but the sign of an exact zero)."""
    dims, offs, poffs, soffs, ro = lay
    n = dims.shape[0] - 1
    e = ro[R_E]
    js, je = np.uint64(lo), np.uint64(hi)
    for k in range(1, n + 1):
        rows = dims[k]
        cols = dims[k - 1]
        o = offs[k - 1]
        pk = xr + offs[0] if k == 2 else ro[R_PRE] + poffs[k - 1]
        ak = xr + offs[n - 1] if k == n - 1 else ro[R_SUF] + soffs[k]
        for i in range(rows):
            for c in range(cols):
                x = xr + o + i * cols + c
                y = yr + o + i * cols + c
                if k == 1 and k == n:
                    for j in range(js, je):
                        W[y, j] = W[x, j] - (W[e, j] + decay * W[x, j])
                elif k == 1:
                    a = ak + i
                    for j in range(js, je):
                        W[y, j] = W[x, j] - (W[a, j] * W[e, j] + decay * W[x, j])
                elif k == n:
                    b = pk + c
                    for j in range(js, je):
                        W[y, j] = W[x, j] - (W[e, j] * W[b, j] + decay * W[x, j])
                else:
                    a = ak + i
                    b = pk + c
                    for j in range(js, je):
                        W[y, j] = W[x, j] - (W[a, j] * (W[e, j] * W[b, j]) + decay * W[x, j])


@_inner
def _nonfinite(W, fin, yr, P, lo, hi):
    """``W[fin] = sum_{i < P} W[yr + i] * 0``: 0, or nan when a value is not finite (the order
    of the sum does not matter), four rows a pass."""
    js, je = np.uint64(lo), np.uint64(hi)
    for j in range(js, je):
        W[fin, j] = 0.0
    for t in range(yr, yr + P - 3, 4):
        for j in range(js, je):
            W[fin, j] += (W[t, j] * 0.0 + W[t + 1, j] * 0.0) + (W[t + 2, j] * 0.0 + W[t + 3, j] * 0.0)
    for t in range(yr + P - P % 4, yr + P):
        for j in range(js, je):
            W[fin, j] += W[t, j] * 0.0


@_inner
def _residual(W, lay, mom, factor, lo, hi):
    """``E = factor * (M S_xx - S_yx)`` (``-syx`` first, then the terms; as the training kernel)."""
    dims, offs, poffs, soffs, ro = lay
    sxx, syx = mom[0], mom[1]
    n = dims.shape[0] - 1
    d_in = dims[0]
    mo = ro[R_PRE] + poffs[n]
    one = d_in - d_in + 1
    for a in range(dims[n]):
        for b in range(d_in):
            _comb(W, ro[R_E] + a * d_in + b, -syx[a * d_in + b], sxx, b, d_in, mo + a * d_in, one, d_in, lo, hi)
    _affine(W, ro[R_E], dims[n] * d_in, 0.0 * factor, factor, lo, hi)


# --- order parameter --------------------------------------------------------------------------------
@_inner
def _singular(W, m0, d_in, d_out, kind, j):
    """Singular value ``kind`` (1 or 2) of ``M`` (rows from ``m0``) of lane ``j``, in the closed
    form of ``_potentials.singular_value``, with the Gram matrix of the smaller side:
    ``(s, lam, disc, g00, g01, g11, m)``."""
    g00 = 0.0
    g01 = 0.0
    g11 = 0.0
    if d_out <= d_in:
        m = d_out
        for b in range(d_in):
            x0 = W[m0 + b, j]
            g00 += x0 * x0
            if m == 2:
                x1 = W[m0 + d_in + b, j]
                g01 += x0 * x1
                g11 += x1 * x1
    else:
        m = d_in
        for a in range(d_out):
            x0 = W[m0 + a * d_in, j]
            g00 += x0 * x0
            if m == 2:
                x1 = W[m0 + a * d_in + 1, j]
                g01 += x0 * x1
                g11 += x1 * x1
    if m == 1:
        return math.sqrt(g00), g00, 0.0, g00, g01, g11, m
    tr = g00 + g11
    disc = math.sqrt((g00 - g11) * (g00 - g11) / 4.0 + g01 * g01)
    lam = tr / 2.0 + disc if kind == ORDER_SV1 else tr / 2.0 - disc
    return math.sqrt(max(lam, 0.0)), lam, disc, g00, g01, g11, m


@_inner
def _order_linear(W, lay, emat, dst, lo, hi):
    """The linear order parameter ``sum E_ab M_ab`` of the lanes into row ``dst``."""
    dims, offs, poffs, soffs, ro = lay
    n = dims.shape[0] - 1
    one = dims[0] - dims[0] + 1
    _comb(W, dst, 0.0, emat, one - one, one, ro[R_PRE] + poffs[n], one, dims[0] * dims[n], lo, hi)


@_inner
def _order(W, lay, emat, kind, dst, lo, hi):
    """The order parameter of the lanes into row ``dst``: ``sum E_ab M_ab`` or a singular value."""
    dims, offs, poffs, soffs, ro = lay
    n = dims.shape[0] - 1
    d_in = dims[0]
    d_out = dims[n]
    mo = ro[R_PRE] + poffs[n]
    if kind == ORDER_LINEAR:
        _order_linear(W, lay, emat, dst, lo, hi)
    else:
        for j in range(lo, hi):
            W[dst, j] = _singular(W, mo, d_in, d_out, kind, j)[0]


@_inner
def _order_gradient(W, lay, emat, kind, lo, hi):
    """``EG = dphi/dM`` per lane: ``emat`` for a linear order; for a singular value ``s`` with
    unit Gram eigenvector ``q``, ``q q^T M / s`` (``q`` on the output side) or ``M q q^T / s``;
    zero where ``s`` or the eigenvalue gap is 0 (the bridge test is then skipped, as the
    generated kernels skip a non-finite variance)."""
    dims, offs, poffs, soffs, ro = lay
    n = dims.shape[0] - 1
    d_in = dims[0]
    d_out = dims[n]
    mo = ro[R_PRE] + poffs[n]
    eg = ro[R_EG]
    for j in range(lo, hi):
        if kind == ORDER_LINEAR:
            for r in range(d_in * d_out):
                W[eg + r, j] = emat[r]
            continue
        s, lam, disc, g00, g01, g11, m = _singular(W, mo, d_in, d_out, kind, j)
        q0 = 1.0
        q1 = 0.0
        ok = s > 0.0
        if m == 2:
            a0, a1 = g01, lam - g00
            b0, b1 = lam - g11, g01
            na = a0 * a0 + a1 * a1
            nb = b0 * b0 + b1 * b1
            if nb > na:
                a0, a1, na = b0, b1, nb
            ok = ok and disc > 0.0 and na > 0.0
            if ok:
                q0 = a0 / math.sqrt(na)
                q1 = a1 / math.sqrt(na)
        inv = 1.0 / s if ok else 0.0
        if d_out <= d_in:
            for b in range(d_in):
                qm = q0 * W[mo + b, j] + (q1 * W[mo + d_in + b, j] if m == 2 else 0.0)
                W[eg + b, j] = q0 * qm * inv
                if m == 2:
                    W[eg + d_in + b, j] = q1 * qm * inv
        else:
            for a in range(d_out):
                mq = W[mo + a * d_in, j] * q0 + (W[mo + a * d_in + 1, j] * q1 if m == 2 else 0.0)
                W[eg + a * d_in, j] = mq * q0 * inv
                if m == 2:
                    W[eg + a * d_in + 1, j] = mq * q1 * inv


# --- SGD noise and the bridge variance ---------------------------------------------------------
@_inner
def _noise_cov(W, lay, mom, lo, hi):
    """The lower triangle of ``K`` (``(p d) x (p d)``, row ``r * pd + c``) of every lane:
    ``K[(a,b),(c,d)] = E[r_a r_c] E[x_b x_d] + E[r_a x_d] E[r_c x_b]`` with
    ``E[r x^T] = S_yx - M S_xx`` and ``E[r r^T] = S_yy - (M S_yx^T + S_yx M^T) + M S_xx M^T``
    (``mom[2:5]``, flat). The lanes are the innermost loop (each lane's sums in the same order
    as a per-lane loop would take them)."""
    dims, offs, poffs, soffs, ro = lay
    sxx, syx, syy = mom[2], mom[3], mom[4]
    n = dims.shape[0] - 1
    d = dims[0]
    p = dims[n]
    mm = p * d
    one = d - d + 1
    mo = ro[R_PRE] + poffs[n]
    rr, qq, kk, sc = ro[R_R], ro[R_Q], ro[R_K], ro[R_S]
    m = hi - lo
    for a in range(p):
        for b in range(d):  # R = S_yx - M S_xx
            _comb(W, rr + a * d + b, 0.0, sxx, b, d, mo + a * d, one, d, lo, hi)
            _affine(W, rr + a * d + b, one, syx[a * d + b], -1.0, lo, hi)
        for c in range(p):  # Q = S_yy - ms + msm
            ms = W[sc, lo:hi]
            msm = W[sc + 1, lo:hi]
            for j in range(m):
                ms[j] = 0.0
                msm[j] = 0.0
            for k in range(d):
                mak = W[mo + a * d + k, lo:hi]
                mck = W[mo + c * d + k, lo:hi]
                f = syx[c * d + k]
                g = syx[a * d + k]
                for j in range(m):
                    ms[j] += mak[j] * f + g * mck[j]
                for l in range(d):
                    h = sxx[k * d + l]
                    mcl = W[mo + c * d + l, lo:hi]
                    for j in range(m):
                        msm[j] += mak[j] * h * mcl[j]
            q = W[qq + a * p + c, lo:hi]
            y = syy[a * p + c]
            for j in range(m):
                q[j] = y - ms[j] + msm[j]
    for r in range(mm):
        a = r // d
        b = r % d
        for c_ in range(r + 1):
            cc = c_ // d
            dd = c_ % d
            dst = W[kk + r * mm + c_, lo:hi]
            q = W[qq + a * p + cc, lo:hi]
            x = W[rr + a * d + dd, lo:hi]
            y = W[rr + cc * d + b, lo:hi]
            f = sxx[b * d + dd]
            for j in range(m):
                dst[j] = q[j] * f + x[j] * y[j]


@_inner
def _noise_cov_data(W, lay, mom, lo, hi):
    """:func:`_noise_cov` from the data's own fourth moments (the ``data`` variant): with
    ``A = [M, -I]``, ``z = (x, y)``, ``K[(a,b),(c,d)] = sum_kl A_ak A_cl T[k,b,l,d] - R_ab R_cd``,
    ``T[k,b,l,d] = E[z_k x_b z_l x_d]`` (``mom[3]``, flat, shape ``(d+p, d, d+p, d)``) and
    ``R = -A S = S_yx - M S_xx`` (``S = E[z x^T]``, ``mom[2]``: ``S_xx`` then ``S_yx``, flat)."""
    dims, offs, poffs, soffs, ro = lay
    S, T = mom[2], mom[3]
    n = dims.shape[0] - 1
    d = dims[0]
    p = dims[n]
    mm = p * d
    st = (d + p) * d  # T's stride between consecutive (k, b)
    one = d - d + 1
    mo = ro[R_PRE] + poffs[n]
    rr, kk = ro[R_R], ro[R_K]
    m = hi - lo
    for a in range(p):
        for b in range(d):  # R = S_yx - M S_xx
            _comb(W, rr + a * d + b, 0.0, S, b, d, mo + a * d, one, d, lo, hi)
            _affine(W, rr + a * d + b, one, S[(d + a) * d + b], -1.0, lo, hi)
    for r in range(mm):
        a = r // d
        b = r % d
        ty = (d + a) * d + b  # (k, b) = (y_a, x_b)
        for c_ in range(r + 1):
            cc = c_ // d
            dd = c_ % d
            dst = W[kk + r * mm + c_, lo:hi]
            x = W[rr + r, lo:hi]
            y = W[rr + c_, lo:hi]
            t0 = T[ty * st + (d + cc) * d + dd]
            for j in range(m):  # the y y term and the mean
                dst[j] = t0 - x[j] * y[j]
            for l in range(d):  # - M_cl T[y_a, b, x_l, d]
                mcl = W[mo + cc * d + l, lo:hi]
                f = T[ty * st + l * d + dd]
                for j in range(m):
                    dst[j] -= f * mcl[j]
            for k in range(d):  # - M_ak T[x_k, b, y_c, d] + M_ak M_cl T[x_k, b, x_l, d]
                mak = W[mo + a * d + k, lo:hi]
                g = T[(k * d + b) * st + (d + cc) * d + dd]
                for j in range(m):
                    dst[j] -= g * mak[j]
                for l in range(d):
                    mcl = W[mo + cc * d + l, lo:hi]
                    h = T[(k * d + b) * st + l * d + dd]
                    for j in range(m):
                        dst[j] += mak[j] * h * mcl[j]


@_inner
def _noise_one(W, ro, mom, mo, factor, scale, q0, lo, hi):
    """:func:`_residual`, :func:`_noise_cov` and :func:`_cholesky_apply` in one pass over the
    lanes for a network with one input and one output (``p = d = 1``: ``K`` is 1 x 1, ``L =
    sqrt(K)``), the same operations in the same order (the same bits), without the rows in
    between: ``E = factor (M S_xx - S_yx) + scale sqrt(K) z`` with the normals at row ``q0``,
    and ``K`` into its row (for the bridge variance). ``mo``: the row of ``M``."""
    a0 = -mom[1][0]
    b0 = mom[0][0]
    f = mom[2][0]
    g = mom[3][0]
    y = mom[4][0]
    alpha = 0.0 * factor
    e0 = ro[R_E]
    kk = ro[R_K]
    js, je = np.uint64(lo), np.uint64(hi)
    for j in range(js, je):
        m = W[mo, j]
        e = alpha + factor * (a0 + b0 * m)  # _residual
        r = g + -1.0 * (0.0 + f * m)  # _noise_cov: R, Q, K
        ms = 0.0 + (m * g + g * m)
        msm = 0.0 + m * f * m
        k = (y - ms + msm) * f + r * r
        W[kk, j] = k
        lk = math.sqrt(k) if k > 0.0 else 0.0  # _cholesky_apply
        W[e0, j] = e + scale * (lk * W[q0, j])


@_inner
def _cholesky_apply(W, ro, q0, mm, scale, lo, hi):
    """``E += scale * L z`` with ``L L^T = K`` (semi-definite Cholesky: a non-positive pivot gives
    a zero column, as in the generated kernels), ``z`` the normals at row ``q0``; lanes innermost
    (unsigned lane indices, as the row primitives)."""
    kk = ro[R_K]
    ll = ro[R_L]
    sc = ro[R_S]
    js, je = np.uint64(lo), np.uint64(hi)
    for c in range(mm):
        for r in range(c, mm):  # L[r, c] = K[r, c] - sum_k L[r, k] L[c, k]
            v = ll + r * mm + c
            kv = kk + r * mm + c
            for j in range(js, je):
                W[v, j] = W[kv, j]
            for k in range(c):
                x = ll + r * mm + k
                y = ll + c * mm + k
                for j in range(js, je):
                    W[v, j] -= W[x, j] * W[y, j]
        piv = ll + c * mm + c
        for j in range(js, je):
            W[piv, j] = math.sqrt(W[piv, j]) if W[piv, j] > 0.0 else 0.0
        for r in range(c + 1, mm):
            v = ll + r * mm + c
            for j in range(js, je):
                W[v, j] = W[v, j] / W[piv, j] if W[piv, j] > 0.0 else 0.0
    for r in range(mm):
        x = ll + r * mm
        for j in range(js, je):
            W[sc, j] = W[x, j] * W[q0, j]
        for c in range(1, r + 1):
            x = ll + r * mm + c
            z = q0 + c
            for j in range(js, je):
                W[sc, j] += W[x, j] * W[z, j]
        e = ro[R_E] + r
        for j in range(js, je):
            W[e, j] += scale * W[sc, j]


@_inner
def _bridge_variance(W, lay, xr, sgd, noise, lo, hi):
    """Variance of the order parameter's increment over a step, per lane, into ``VAR``:
    ``v = sum_k (A_k A_k^T) e (P_{k-1}^T P_{k-1})`` (``= J J^T e``; ``A_n = I``, ``P_0 = I``;
    ``A_{n-1} = W_n`` and ``P_1 = W_1`` from the state's rows ``xr``), then ``noise^2 e.v``
    (additive) or ``noise^2 v^T K v`` (SGD-like)."""
    dims, offs, poffs, soffs, ro = lay
    n = dims.shape[0] - 1
    d = dims[0]
    p = dims[n]
    mm = p * d
    one = d - d + 1
    eg, vb, tb, ga, gp = ro[R_EG], ro[R_VB], ro[R_TB], ro[R_GA], ro[R_GP]
    for k in range(1, n + 1):
        if k == n:  # TB = e
            _copy(W, tb, eg, mm, lo, hi)
        else:  # TB = (A_k A_k^T) e
            hk = dims[k]
            sk = xr + offs[n - 1] if k == n - 1 else ro[R_SUF] + soffs[k]
            for a in range(p):
                for c in range(p):
                    _dot(W, ga + a * p + c, sk + a * hk, one, sk + c * hk, one, hk, lo, hi)
            for a in range(p):
                for b in range(d):
                    _dot(W, tb + a * d + b, ga + a * p, one, eg + b, d, p, lo, hi)
        if k == 1:  # VB = TB
            _copy(W, vb, tb, mm, lo, hi)
        else:  # VB += TB (P_{k-1}^T P_{k-1})
            hp = dims[k - 1]
            pk = xr + offs[0] if k == 2 else ro[R_PRE] + poffs[k - 1]
            for b in range(d):
                for c in range(d):
                    _dot(W, gp + b * d + c, pk + b, d, pk + c, d, hp, lo, hi)
            for a in range(p):
                for b in range(d):
                    _dot_add(W, vb + a * d + b, tb + a * d, one, gp + b, d, d, lo, hi)
    kk = ro[R_K]
    for j in range(lo, hi):
        acc = 0.0
        if sgd:
            for r in range(mm):
                for c in range(r + 1):
                    t = W[vb + r, j] * W[kk + r * mm + c, j] * W[vb + c, j]
                    acc += 2.0 * t if c < r else t
        else:
            for r in range(mm):
                acc += W[eg + r, j] * W[vb + r, j]
        W[ro[R_VAR], j] = noise * noise * acc


# --- random numbers ------------------------------------------------------------------------------
@_inner
def _draw(W, U, I, z0, nn, width, zig):
    """Steps 1-3 of a round: ``nn`` xoshiro outputs per lane (rows 4.. of ``U``; the state is in
    rows 0-3), the ziggurat fast path for their ``2 nn`` halves (hi half -> normal ``2 r``, lo
    half -> ``2 r + 1``, rows from ``z0`` of ``W``), then the rare path of the lanes that need
    it, consuming further draws of the lane's own stream in order (``I[3]`` lists them)."""
    kn, wn, fn = zig
    s0a = U[0]
    s1a = U[1]
    s2a = U[2]
    s3a = U[3]
    for r in range(nn):
        ur = U[4 + r]
        for j in range(width):
            u, s0, s1, s2, s3 = _next_scalar(s0a[j], s1a[j], s2a[j], s3a[j])
            s0a[j] = s0
            s1a[j] = s1
            s2a[j] = s2
            s3a[j] = s3
            ur[j] = u
    fl = I[3]  # per lane: 1 if one of its halves needs the rare path; then the list of those lanes
    for j in range(width):
        fl[j] = 0
    for r in range(nn):  # lanes innermost: rows of U and W are contiguous
        ur = U[4 + r]
        for half in range(2):
            zr = W[z0 + 2 * r + half]
            for j in range(width):
                v = np.int64(ur[j])
                h = (v >> np.int64(32)) if half == 0 else ((v << np.int64(32)) >> np.int64(32))
                i = h & 127
                zr[j] = h * wn[i]
                fl[j] |= 1 if abs(h) >= kn[i] else 0
    n_slow = 0
    for j in range(width):  # n_slow <= j: the list overwrites only flags already read
        slow = fl[j]
        fl[n_slow] = j
        n_slow += slow
    for b in range(n_slow):
        j = I[3, b]
        s0, s1, s2, s3 = U[0, j], U[1, j], U[2, j], U[3, j]
        for q in range(2 * nn):
            v = np.int64(U[4 + q // 2, j])
            h = (v >> np.int64(32)) if q % 2 == 0 else ((v << np.int64(32)) >> np.int64(32))
            if abs(h) >= kn[h & 127]:
                W[z0 + q, j], s0, s1, s2, s3 = _zig_slow_scalar(h, s0, s1, s2, s3, kn, wn, fn, ZIG_WEDGE)
        U[0, j] = s0
        U[1, j] = s1
        U[2, j] = s2
        U[3, j] = s3


# --- one step and the worker -----------------------------------------------------------------------
@_inner
def _lane_out(W, U, I, j, t, P, x0, states, lay, outs, mode, xr):
    """Lane ``j``: ``mode`` 0 loads trajectory ``t``; 1 writes its trajectory out; 2 takes the
    values of lane ``t`` (compaction). ``xr``: first row of the state (``X`` and ``Y`` swap roles)."""
    if mode == 0:
        for i in range(P):
            W[xr + i, j] = x0[t, i]
        for w in range(4):
            U[w, j] = states[t, w]
        I[0, j] = 0
        I[1, j] = 0
        I[2, j] = t
    elif mode == 1:
        out_steps, out_status, out_x, paths = outs
        tid = I[2, j]
        ev = I[1, j]
        out_steps[tid] = I[0, j]
        out_status[tid] = 0 if ev == 3 else ev
        for i in range(P):
            out_x[tid, i] = W[xr + i, j]
        for w in range(4):
            states[tid, w] = U[w, j]
    else:
        for i in range(W.shape[0]):
            W[i, j] = W[i, t]
        for w in range(4):
            U[w, j] = U[w, t]
        for w in range(3):
            I[w, j] = I[w, t]


def _make_worker(sgd, bridge, singular, data=False, scalar=False):
    """The worker of one variant: SGD-like or additive noise, Euler or bridge, a singular-value or
    a linear order parameter. The flags are constants of the closure, so numba prunes the
    other variants' branches before typing and compiles only what this variant calls (numba's
    cache keys a closure by its constants: one cache entry per variant). ``data``: the SGD-like
    noise's ``K`` from the data's fourth moments (:func:`_noise_cov_data`), else Isserlis'.
    ``scalar`` (with Isserlis' SGD-like noise): a network with one input and one output, whose
    step is :func:`_noise_one` and :func:`_backprop_one` (one pass per weight); the general
    worker then compiles neither."""

    @jit
    def _worker(queue, K, W, U, I, x0, states, lay, mom, fc, ic, zig, outs):
        """Advance up to ``K`` trajectories at a time, taken from the shared queue, until it is
        empty. ``W``, ``U``, ``I``: the thread's zeroed work arrays of at least ``K`` columns
        (float rows ``ro[R_TOTAL]``, uint64 rows ``4 + normals per round``, int64 rows 4).

        Runs without the GIL; several threads may run it on the same queue (they share only
        the queue, and each trajectory's outputs are written by the thread that ran it).
        """
        dims, offs, poffs, soffs, ro = lay
        n = dims.shape[0] - 1
        n_traj = x0.shape[0]
        P = offs[n]
        paths = outs[3]
        n_save = paths.shape[1]
        save_every = ic[IC_SAVE_EVERY]
        kind = ic[IC_ORDER]
        nn = dims[0] * dims[n] if sgd else P
        mm = dims[0] * dims[n]
        has_stop = ic[IC_HAS_STOP] != 0
        dt = fc[FC_DT]
        sigma = fc[FC_SIGMA]
        level = fc[FC_LEVEL]
        direction = fc[FC_DIRECTION]
        zero = K - K
        load, write, move = zero, zero + 1, zero + 2
        width = zero
        xr, yr = ro[R_X], ro[R_Y]  # the state's and the proposal's rows: they swap roles when every lane moves
        for j in range(K):
            t = _fetch_add(queue, 1)
            if t >= n_traj:
                break
            _lane_out(W, U, I, j, t, P, x0, states, lay, outs, load, xr)
            width += 1
        _forward(W, lay, xr, zero, width)
        if singular:
            _order(W, lay, mom[5], kind, ro[R_PHI], zero, width)
        else:
            _order_linear(W, lay, mom[5], ro[R_PHI], zero, width)
        mo = ro[R_PRE] + poffs[n]
        max_steps = ic[IC_MAX_STEPS]
        decay = fc[FC_DECAY] * dt
        noise = 0.0 if sgd else sigma
        zs = zero if sgd else zero + 1  # row stride of the normals of the weights (SGD-like: one row, times 0)
        fin = W[ro[R_FIN]]
        act = W[ro[R_ACT]]
        phn_row = W[ro[R_PHN]]
        phi_row = W[ro[R_PHI]]
        var_row = W[ro[R_VAR]]
        steps, events = I[0], I[1]
        while width > 0:
            _draw(W, U, I, ro[R_Z], nn, width, zig)
            nev = 0
            for q0 in range(ro[R_Z], ro[R_Z] + 2 * nn, nn):
                # one step of every lane (normals from row q0); a lane whose trajectory stopped
                # earlier in the round computes a step too but keeps its values. Events (I[1]):
                # 1 escaped, 2 non-finite, 3 reached max_steps. The prefix rows hold the products
                # at X (from the previous step or the load).
                _suffix(W, lay, xr, zero, width)
                if sgd:
                    if data:
                        _residual(W, lay, mom, fc[FC_TWO_KAPPA] * dt, zero, width)
                        _noise_cov_data(W, lay, mom, zero, width)
                    elif scalar:  # K is 1 x 1: residual, K and its square root in one pass
                        _noise_one(W, ro, mom, mo, fc[FC_TWO_KAPPA] * dt, fc[FC_SCALE], q0, zero, width)
                    else:
                        _residual(W, lay, mom, fc[FC_TWO_KAPPA] * dt, zero, width)
                        _noise_cov(W, lay, mom, zero, width)
                else:
                    _residual(W, lay, mom, fc[FC_TWO_KAPPA] * dt, zero, width)
                if bridge:
                    _order_gradient(W, lay, mom[5], kind, zero, width)
                    _bridge_variance(W, lay, xr, sgd, fc[FC_SCALE] if sgd else sigma, zero, width)
                if sgd and not scalar:
                    _cholesky_apply(W, ro, q0, mm, fc[FC_SCALE], zero, width)
                # Y = X - (J^T vec(E) + decay X) + noise z (SGD-like: the noise is in E; z a finite row)
                if scalar:
                    _backprop_one(W, lay, xr, yr, decay, zero, width)
                else:
                    _backprop_step(W, lay, xr, yr, q0, zs, decay, noise, zero, width)
                if singular:  # FIN: nan if a weight is not finite (a linear order needs no row: see below)
                    _nonfinite(W, ro[R_FIN], yr, P, zero, width)
                _forward(W, lay, yr, zero, width)
                if singular:
                    _order(W, lay, mom[5], kind, ro[R_PHN], zero, width)
                else:
                    _order_linear(W, lay, mom[5], ro[R_PHN], zero, width)
                n_dead = zero
                # A non-finite weight of Y makes an entry of M non-finite (inf * 0 is nan, and no
                # sum with a non-finite term is finite): W_k[i, c] makes row i of P_k non-finite
                # (column c for k = 1), and every later product), so a linear order sum E_ab M_ab
                # is not finite either, whatever E: with a linear order FIN stays 0 and the test
                # of phin is the test of every weight (as the generated kernel's).
                if not bridge and nev == 0:  # every lane is live (no stop yet this round): the
                    # same codes in two passes that vectorise, each writing one row (no PHI row:
                    # only the bridge test reads it; no ACT row: every lane moves)
                    for j in range(width):
                        steps[j] += 1
                    for j in range(width):
                        phin = phn_row[j]
                        ok = fin[j] == 0.0 and math.isfinite(phin)
                        esc = has_stop and direction * (phin - level) >= 0.0
                        e = 3 if steps[j] >= max_steps else 0
                        e = 1 if esc else e
                        e = e if ok else 2
                        events[j] = e
                        nev += e
                else:
                    for j in range(width):
                        phin = phn_row[j]
                        ok = fin[j] == 0.0 and math.isfinite(phin)
                        esc = has_stop and direction * (phin - level) >= 0.0
                        ev = events[j]
                        if bridge and ev == 0 and ok and not esc:
                            var = var_row[j]
                            if var > 0.0:
                                va = direction * (level - phi_row[j])
                                vb = direction * (level - phin)
                                u, s0, s1, s2, s3 = _next_scalar(U[0, j], U[1, j], U[2, j], U[3, j])
                                U[0, j] = s0
                                U[1, j] = s1
                                U[2, j] = s2
                                U[3, j] = s3
                                w = ((u >> np.uint64(11)) + 0.5) * (1.0 / 9007199254740992.0)
                                esc = w < math.exp(-2.0 * va * vb / var)
                        k = steps[j]
                        e = 3 if k + 1 >= max_steps else 0
                        e = 1 if esc else e
                        e = e if ok else 2
                        live = ev == 0
                        act[j] = 1.0 if live else 0.0
                        n_dead += 0 if live else 1
                        phi_row[j] = phin if live else phi_row[j]
                        steps[j] = k + 1 if live else k
                        events[j] = e if live else ev
                        nev += e if live else 0
                if n_dead == 0:  # every lane moves: the proposal's rows become the state's
                    xr, yr = yr, xr
                else:
                    for i in range(P):
                        x = W[xr + i]
                        y = W[yr + i]
                        for j in range(width):
                            x[j] = y[j] if act[j] != 0.0 else x[j]
                if save_every > 0:
                    for j in range(width):
                        k = steps[j]
                        r = k // save_every - 1
                        if k % save_every == 0 and r < n_save:
                            for i in range(P):
                                paths[I[2, j], r, i] = W[xr + i, j]
            if nev > 0:  # stopped trajectories: write out, refill the lane or close the gap
                for j in range(width - 1, -1, -1):
                    if events[j] == 0:
                        continue
                    _lane_out(W, U, I, j, j, P, x0, states, lay, outs, write, xr)
                    t = _fetch_add(queue, 1)
                    if t < n_traj:
                        _lane_out(W, U, I, j, t, P, x0, states, lay, outs, load, xr)
                        _forward(W, lay, xr, j, j + 1)
                        if singular:
                            _order(W, lay, mom[5], kind, ro[R_PHI], j, j + 1)
                        else:
                            _order_linear(W, lay, mom[5], ro[R_PHI], j, j + 1)
                    else:
                        width -= 1
                        if j != width:  # the last lane moves into the gap
                            _lane_out(W, U, I, j, width, P, x0, states, lay, outs, move, xr)

    return _worker


#: the workers by variant ``(sgd, bridge, singular)``; each compiles on its first use
WORKERS = {(a, b, c): _make_worker(a, b, c) for a in (False, True) for b in (False, True) for c in (False, True)}
#: the SGD-noise workers whose ``K`` comes from the data's fourth moments, by ``(bridge, singular)``
DATA_WORKERS = {(b, c): _make_worker(True, b, c, True) for b in (False, True) for c in (False, True)}
#: the SGD-noise (Isserlis) workers of networks with one input and one output, by ``(bridge, singular)``
SCALAR_WORKERS = {(b, c): _make_worker(True, b, c, scalar=True) for b in (False, True) for c in (False, True)}


def worker(sgd, bridge, order_kind, data=False, scalar=False):
    """The worker of a variant (a numba dispatcher, compiled on its first call).

    Parameters
    ----------
    sgd : bool
        SGD-like noise (else additive).
    bridge : bool
        The Brownian-bridge crossing test (only with a stop).
    order_kind : int
        :data:`ORDER_LINEAR`, :data:`ORDER_SV1` or :data:`ORDER_SV2`.
    data : bool
        With ``sgd``: ``K`` from the data's fourth moments (``mom[2]``, ``mom[3]`` are ``S`` and
        ``T``; :func:`_noise_cov_data`), else Isserlis' from ``S_xx, S_yx, S_yy``.
    scalar : bool
        With ``sgd`` and not ``data``: the network has one input and one output (``p = d = 1``);
        its own worker (:data:`SCALAR_WORKERS`, :func:`is_scalar`).

    Returns
    -------
    numba dispatcher
    """
    if sgd and data:
        return DATA_WORKERS[bool(bridge), order_kind != ORDER_LINEAR]
    if sgd and scalar:
        return SCALAR_WORKERS[bool(bridge), order_kind != ORDER_LINEAR]
    return WORKERS[bool(sgd), bool(bridge), order_kind != ORDER_LINEAR]


@dataclasses.dataclass(frozen=True)
class Variant:
    """The compiled variant of the worker a run takes (the keywords of :func:`callee_jobs`).

    :meth:`of` is the one rule that picks it: :func:`run` uses it to choose the worker it
    calls and the structured kernel (``StructuredKernel.worker``, read by the compile notice
    and ``signatures``) to name the same one.

    Parameters
    ----------
    sgd : bool
        SGD-like noise (else additive).
    bridge : bool
        The Brownian-bridge crossing test (bridge scheme *and* a stop).
    singular : bool
        A singular-value order parameter (else linear).
    data : bool
        SGD-like noise with ``K`` from the data's fourth moments.
    scalar : bool
        SGD-like (Isserlis) noise on a network with one input and one output.
    """

    sgd: bool
    bridge: bool
    singular: bool
    data: bool = False
    scalar: bool = False

    @classmethod
    def of(cls, mode, bridge, has_stop, order_kind, dims):
        """The variant of a run.

        Parameters
        ----------
        mode : int
            The SGD-like noise (``ic[IC_SGD]`` of :func:`run`): 0 off (additive), 1 Isserlis,
            2 the data's fourth moments.
        bridge : bool
            The scheme is the Brownian bridge.
        has_stop : bool
            The run has a stop condition (the bridge test runs only with one).
        order_kind : int
            :data:`ORDER_LINEAR`, :data:`ORDER_SV1` or :data:`ORDER_SV2`.
        dims : sequence of int
            ``(d_in, h_1, ..., h_{n-1}, d_out)`` of the network.

        Returns
        -------
        Variant
        """
        mode = int(mode)
        if mode not in (0, 1, 2):
            raise ValueError(f"mode must be 0 (additive), 1 (Isserlis) or 2 (data moments), got {mode}")
        return cls(sgd=mode != 0, bridge=bool(bridge) and bool(has_stop), singular=int(order_kind) != ORDER_LINEAR,
                   data=mode == 2, scalar=mode == 1 and is_scalar(dims))

    def worker(self):
        """The variant's numba dispatcher (:func:`worker`).

        Returns
        -------
        numba dispatcher
        """
        return worker(self.sgd, self.bridge, ORDER_SV1 if self.singular else ORDER_LINEAR, data=self.data,
                      scalar=self.scalar)


def is_scalar(dims):
    """Whether a network has one input and one output (``p = d = 1``: ``K`` is 1 x 1), the
    structure of the ``scalar`` workers (:func:`worker`).

    Parameters
    ----------
    dims : sequence of int
        ``(d_in, h_1, ..., h_{n-1}, d_out)``.

    Returns
    -------
    bool
    """
    return int(dims[0]) == 1 and int(dims[-1]) == 1


def lanes_for(lay):
    """Trajectories a thread advances together: 128, or up to 512 while the work array stays
    within about 512 KiB (small networks: fewer calls per lane-step; measured at width 2 with
    SGD-like noise, 512 lanes step 1.2x faster than 128, at width 10 the work array would
    outgrow the cache).

    Parameters
    ----------
    lay : tuple
        :func:`layout` of the network.

    Returns
    -------
    int
    """
    rows = int(lay[4][R_TOTAL])
    k = LANES
    while k < 512 and 2 * k * rows * 8 <= 512 * 1024:
        k *= 2
    return k


def callee_jobs(arg_types, *, sgd, bridge, singular, data=False, scalar=False):
    """The kernel functions a worker variant calls, with the argument types it calls them with.

    Parameters
    ----------
    arg_types : tuple of numba types
        The types of the worker's arguments (``numba.typeof`` of each).
    sgd, bridge, singular, data, scalar : bool
        The variant (see :func:`worker`).

    Returns
    -------
    list of (numba dispatcher, tuple of numba types)
        In the order :func:`.._numba.compile_shared` wants: the row primitives (called by the
        rest) first, the costly self-contained functions of the step last.
    """
    from numba import types

    queue, K, W, U, I, x0, states, lay, mom, fc, ic, zig, outs = arg_types
    i8, f8 = types.int64, types.float64
    ro, emat = lay.types[4], mom.types[5]
    scalar = scalar and sgd and not data
    jobs = [(_dot, (W,) + (i8,) * 8), (_copy, (W,) + (i8,) * 5), (_comb, (W, i8, f8, emat) + (i8,) * 7)]
    if not scalar:
        jobs += [(_affine, (W, i8, i8, f8, f8, i8, i8))]
    jobs += [(_lane_out, (W, U, I, i8, i8, i8, x0, states, lay, outs, i8, i8)), (_forward, (W, lay, i8, i8, i8)),
             (_order_linear, (W, lay, emat, i8, i8, i8))]
    if singular:
        jobs += [(_singular, (W,) + (i8,) * 5), (_order, (W, lay, emat) + (i8,) * 4), (_nonfinite, (W,) + (i8,) * 5)]
    jobs += [(_draw, (W, U, I, i8, i8, i8, zig)), (_suffix, (W, lay, i8, i8, i8))]
    if scalar:
        jobs += [(_noise_one, (W, ro, mom, i8, f8, f8, i8, i8, i8)), (_backprop_one, (W, lay, i8, i8, f8, i8, i8))]
    else:
        jobs += [(_residual, (W, lay, mom, f8, i8, i8)), (_backprop_step, (W, lay) + (i8,) * 4 + (f8, f8, i8, i8))]
    if bridge:
        jobs += [(_dot_add, (W,) + (i8,) * 8), (_order_gradient, (W, lay, emat, i8, i8, i8)),
                 (_bridge_variance, (W, lay, i8, types.literal(bool(sgd)), f8, i8, i8))]  # a closure constant
    if sgd and not scalar:
        jobs += [(_noise_cov_data if data else _noise_cov, (W, lay, mom, i8, i8)),
                 (_cholesky_apply, (W, ro, i8, i8, f8, i8, i8))]
    return jobs


def precompile(worker, args, **variant):
    """Compile the callees of ``worker`` on two cores when they are not in the cache.

    When the worker's machine code for these arguments is not in numba's disk cache (an empty
    cache: the first call on this machine), its callees (:func:`callee_jobs`) are compiled
    by this process and a helper process together (:func:`.._numba.compile_shared`), so that
    the worker's own compilation, on the first call, loads them from the cache. Nothing is
    done when the worker is cached.

    Parameters
    ----------
    worker : numba dispatcher
        The worker variant (:func:`worker`).
    args : tuple
        The worker's arguments.
    **variant
        ``sgd``, ``bridge``, ``singular``, ``data``, ``scalar`` (see :func:`callee_jobs`; the
        fields of :class:`Variant`).

    Returns
    -------
    int
        Jobs the helper process compiled.
    """
    sig = tuple(numba.typeof(a) for a in args)
    if in_cache(worker, sig):
        return 0
    return compile_shared(callee_jobs(sig, **{k: bool(v) for k, v in variant.items()}))


def run(x0, states, lay, mom, fc, ic, zig, outs, *, n_threads=None, lanes=None):
    """Advance every trajectory of ``x0`` until it stops or reaches ``max_steps``.

    Parameters
    ----------
    x0 : float64 array (n_traj, n_params)
        Starting weights (layer by layer, row-major).
    states : uint64 array (n_traj, 4)
        xoshiro256** state of each trajectory (overwritten with the state at its stop).
    lay : tuple of five int64 arrays
        :func:`layout` of the network.
    mom : tuple of six flat float64 arrays
        ``S_xx``, ``S_yx`` of the loss, ``S_xx``, ``S_yx``, ``S_yy`` of the SGD-like noise
        (anything when it is off), and ``E``, the coefficients of a linear order parameter.
    fc : float64 array (7,)
        ``2 kappa``, ``2 kappa gamma``, ``dt``, ``sigma = sqrt(2 T dt)``, ``scale = 2 kappa
        sqrt(lr dt f / B)``, stop level, stop direction (+1 up, -1 down).
    ic : int64 array (6,)
        SGD-like noise (0 off, 1 Isserlis, 2 the data's fourth moments: ``mom[2]``, ``mom[3]``
        are then ``S`` and ``T`` of :func:`_noise_cov_data`), bridge (0/1), has a stop (0/1), order kind
        (:data:`ORDER_LINEAR`, :data:`ORDER_SV1`, :data:`ORDER_SV2`), save_every (0: none),
        max_steps.
    zig : tuple
        The ziggurat tables ``(ZIG_K, ZIG_W, ZIG_F)``.
    outs : tuple
        ``(out_steps int64 (n_traj,), out_status int8 (n_traj,), out_x (n_traj, n_params),
        paths (n_traj, n_save, n_params))``, written in place; status 0 censored, 1 escaped,
        2 non-finite.
    n_threads : int, optional
        Threads (default ``numba.get_num_threads()``), at most one per trajectory.
    lanes : int, optional
        Trajectories a thread advances together (default :func:`lanes_for`); the
        trajectories do not depend on it.
    """
    n = x0.shape[0]
    n_workers = max(1, min(numba.get_num_threads() if n_threads is None else int(n_threads), n))
    K = int(min(lanes_for(lay) if lanes is None else lanes, -(-n // n_workers)))
    queue = np.zeros(1, dtype=np.int64)
    variant = Variant.of(ic[IC_SGD], ic[IC_BRIDGE] != 0, ic[IC_HAS_STOP] != 0, ic[IC_ORDER], lay[0])
    _worker = variant.worker()
    dims, ro = lay[0], lay[4]
    nn = int(dims[0] * dims[-1]) if ic[IC_SGD] != 0 else int(x0.shape[1])

    # a row of the work arrays spans an odd number of cache lines: with a power-of-two row length
    # (1 KiB for 128 lanes) the rows one lane touches fall into a quarter of the L1 sets and
    # evict each other (measured: the SGD step at width 2 ran 2x slower)
    lines = -(-K // 8)
    cols = 8 * (lines + 1 - lines % 2)

    def args():  # a thread's own work arrays (allocated here: no np.zeros to compile in the kernel)
        return (queue, K, np.zeros((int(ro[R_TOTAL]), cols)), np.zeros((4 + nn, cols), dtype=np.uint64),
                np.zeros((4, cols), dtype=np.int64), x0, states, lay, mom, fc, ic, zig, outs)

    if not _worker.signatures:  # first call in this process: share the compilation with a helper process
        precompile(_worker, args(), **dataclasses.asdict(variant))
    if n_workers == 1:
        _worker(*args())
        return
    threads = [threading.Thread(target=_worker, args=args()) for _ in range(n_workers - 1)]
    for t in threads:
        t.start()
    try:
        _worker(*args())
    finally:
        for t in threads:
            t.join()


@_inner
def _forward_at(thetas, lay):
    """A work array with one lane per row of ``thetas``: the weights in the state rows and
    their prefix products (for the host-side entry points below)."""
    m, P = thetas.shape
    ro = lay[4]
    W = np.zeros((ro[R_TOTAL], m))
    for i in range(P):
        for j in range(m):
            W[ro[R_X] + i, j] = thetas[j, i]
    _forward(W, lay, ro[R_X], m - m, m)
    return W


@jit
def gradient(thetas, lay, mom, two_kappa, decay, out):
    """``grad U`` at each row of ``thetas`` by the kernel's own products and back-propagation.

    Parameters
    ----------
    thetas : float64 array (m, n_params)
        Weights.
    lay, mom : tuples
        As for :func:`run`.
    two_kappa, decay : float
        ``2 kappa`` and ``2 kappa gamma``.
    out : float64 array (m, n_params)
        Receives the gradients.
    """
    m, P = thetas.shape
    ro = lay[4]
    W = _forward_at(thetas, lay)
    zero = m - m
    _suffix(W, lay, ro[R_X], zero, m)
    _residual(W, lay, mom, two_kappa, zero, m)
    _backprop(W, lay, ro[R_X], zero, m)
    for i in range(P):
        for j in range(m):
            out[j, i] = W[ro[R_GR] + i, j] + decay * W[ro[R_X] + i, j]


@jit
def order_values(thetas, lay, emat, kind, out):
    """The order parameter at each row of ``thetas``, as the kernel computes it.

    Parameters
    ----------
    thetas : float64 array (m, n_params)
        Weights.
    lay : tuple
        :func:`layout` of the network.
    emat : float64 array (p * d,)
        Coefficients of a linear order parameter (row-major).
    kind : int
        :data:`ORDER_LINEAR`, :data:`ORDER_SV1` or :data:`ORDER_SV2`.
    out : float64 array (m,)
        Receives the values.
    """
    m = thetas.shape[0]
    ro = lay[4]
    W = _forward_at(thetas, lay)
    _order(W, lay, emat, kind, ro[R_PHN], m - m, m)
    for j in range(m):
        out[j] = W[ro[R_PHN], j]
