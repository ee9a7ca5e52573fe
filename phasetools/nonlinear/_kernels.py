"""numba kernels of the nonlinear trainer: forward, backward and optimiser steps of an MLP.

Layout. Layer ``k`` (0-based) has weights ``W_k`` of shape ``dims[k+1] x dims[k]`` (out x in,
PyTorch's layout), row-major at ``offs[k]`` of a run's flat vector ``th``; ``tht`` holds each
layer transposed (in x out) at the same offset, refreshed after every update, so that the
forward pass (``z += x_j * W^T[j, :]``), the backward pass (``d += delta_i * W[i, :]``) and the
gradient (``g[i, :] += delta_i * a``) are all axpy loops over contiguous rows (vectorised
without reassociation; sums keep their order, so results do not depend on the machine's
thread count). No biases.

Inputs are either sparse one-hot sums (``Xi``: the active input columns of each sample, value
1; modular addition uses columns ``a`` and ``p + b``) or dense rows ``Xd``. Hidden layers
apply ``activation`` (0: quadratic ``z^2``, 1: ReLU); the output is linear. Losses: 0: MSE
against one-hot targets, mean over samples and classes (``torch.nn.MSELoss``); 1:
cross-entropy, mean over samples.

Determinism across threads. A batch of ``B`` samples is cut into ``n_chunks`` fixed chunks
of ``chunk`` samples (fixed by the configuration, not by the threads). Work unit ``u = s *
n_chunks + c`` computes the gradient of seed ``s`` over chunk ``c`` into its own row of ``G``
(samples in order); the update sums a seed's rows in chunk order. Any thread may run any
unit, so the bits are those of a serial run.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from .._numba import jit, pjit
from .._rng import normal_pair, uniform

__all__ = ["ACT_QUADRATIC", "ACT_RELU", "LOSS_MSE", "LOSS_CE", "OPT_SGD", "OPT_ADAMW", "chunk_gradients",
           "apply_update", "draw_batches", "draw_label_noise", "shuffle_rows", "evaluate_chunks", "init_normals",
           "transpose_layers"]

ACT_QUADRATIC, ACT_RELU = 0, 1
LOSS_MSE, LOSS_CE = 0, 1
OPT_SGD, OPT_ADAMW = 0, 1


@jit
def _loss_grad(out, label, loss, e, scale, dout):
    """Loss of one sample (float64) and ``dout`` = ``scale`` times its gradient wrt the logits.

    MSE (``loss`` 0) is taken against the one-hot target plus the row ``e`` (label noise;
    zeros without it: subtracting 0 leaves every bit as it is); cross-entropy ignores ``e``.
    """
    C = out.shape[0]
    if loss == 0:
        total = 0.0
        for q in range(C):
            r = out[q] - (1 if q == label else 0) - e[q]
            total += float(r) * float(r)
            dout[q] = 2 * r * scale
        return total
    m = out[0]
    for q in range(1, C):
        if out[q] > m:
            m = out[q]
    s = 0.0
    for q in range(C):
        s += math.exp(float(out[q] - m))
    lse = float(m) + math.log(s)
    for q in range(C):
        pq = math.exp(float(out[q]) - lse)
        dout[q] = (pq - (1.0 if q == label else 0.0)) * scale
    return lse - float(out[label])


#: samples processed together in the hidden and output layers: each weight row (and each
#: row of the gradient) is loaded once per block instead of once per sample. Every sum keeps
#: its order (samples in order within a block, blocks in order), so the bits do not change.
BLOCK = 8


@pjit
def chunk_gradients(th, tht, dims, offs, hoffs, act, loss, Xi, Xd, sparse, y, idx, start, B, chunk, n_chunks,
                    G, losses, Z, A, OUT, D1, D2, E, noisy):
    """Per-unit gradients of the mean loss over the batch ``idx[s, start:start+B]``.

    Unit ``u = s * n_chunks + c`` writes the gradient over samples ``c*chunk ..`` of the batch
    into ``G[u]`` and their summed loss (float64, already divided like the gradient) into
    ``losses[u]``; ``Z, A, OUT, D1, D2`` are per-unit work arrays of ``BLOCK`` rows
    (shape ``(n_units, BLOCK, size)``), one row per sample of a block. With ``noisy`` (MSE
    only) the target of batch position ``b`` of seed ``s`` is its one-hot row plus
    ``E[s, b*C:(b+1)*C]`` (label noise drawn beforehand by :func:`draw_label_noise`).
    """
    S = th.shape[0]
    L = dims.shape[0] - 1
    C = dims[L]
    scale = (1.0 / (B * C)) if loss == 0 else (1.0 / B)
    for u in prange(S * n_chunks):
        s = u // n_chunks
        c = u - s * n_chunks
        g = G[u]
        for t in range(g.shape[0]):
            g[t] = 0
        lo = c * chunk
        hi = min(B, lo + chunk)
        total = 0.0
        zero = np.zeros(C, dtype=OUT.dtype)
        for b0 in range(lo, hi, BLOCK):
            nb = min(BLOCK, hi - b0)
            _forward_block(th[s], tht[s], dims, offs, hoffs, act, Xi, Xd, sparse, idx[s], start + b0, nb, Z[u],
                           A[u], OUT[u])
            for b in range(nb):
                r0 = (b0 + b) * C
                e = E[s, r0:r0 + C] if noisy else zero
                total += _loss_grad(OUT[u][b], y[idx[s, start + b0 + b]], loss, e, scale, D1[u][b])
            _backward_block(th[s], dims, offs, hoffs, act, Xi, Xd, sparse, idx[s], start + b0, nb, Z[u], A[u],
                            D1[u], D2[u], g)
        losses[u] = total * scale


@jit
def _forward_block(th, tht, dims, offs, hoffs, act, Xi, Xd, sparse, rows, first, nb, Z, A, OUT):
    """Forward pass of samples ``rows[first:first+nb]`` into rows ``0..nb-1`` of ``Z, A, OUT``.

    ``Z``/``A``: hidden pre-activations / activations (layer ``k`` at ``hoffs[k]``), ``OUT``:
    logits. Per sample the sums are those of a one-sample pass (inputs in order), so
    training and evaluation, which both call this, see the same bits for the same weights.
    Inner loops index slices with the loop variable only: an offset index (``w[r + j]``)
    costs numba a negative-index check that blocks vectorisation (measured 6x slower).
    """
    L = dims.shape[0] - 1
    for b in range(nb):  # first layer: per sample (sparse rows or a dense pass)
        _first_layer(tht, dims, offs, hoffs, Xi, Xd, sparse, rows[first + b], Z[b])
    for k in range(1, L):
        n_in = dims[k]
        n_out = dims[k + 1]
        h0 = hoffs[k]
        for b in range(nb):
            _activate(act, Z[b, h0:h0 + n_in], A[b, h0:h0 + n_in])
            dst = OUT[b] if k == L - 1 else Z[b, hoffs[k + 1]:hoffs[k + 1] + n_out]
            for q in range(n_out):
                dst[q] = 0
        o = offs[k]
        for j in range(n_in):
            row = tht[o + j * n_out:o + (j + 1) * n_out]
            for b in range(nb):
                x = A[b, h0 + j]
                dst = OUT[b] if k == L - 1 else Z[b, hoffs[k + 1]:hoffs[k + 1] + n_out]
                for q in range(n_out):
                    dst[q] += x * row[q]


@jit
def _activate(act, z, a):
    """``a = activation(z)`` elementwise (0: ``z^2``, 1: ReLU, ``0 * z`` below zero as torch)."""
    if act == 0:
        for j in range(z.shape[0]):
            a[j] = z[j] * z[j]
    else:
        for j in range(z.shape[0]):
            a[j] = z[j] if z[j] > 0 else 0 * z[j]


@jit
def _first_layer(tht, dims, offs, hoffs, Xi, Xd, sparse, i, z):
    """First-layer pre-activations ``z[hoffs[1]:]`` of sample ``i`` (sparse one-hot columns or a dense row)."""
    h = dims[1]
    o = offs[0]
    z1 = z[hoffs[1]:hoffs[1] + h]
    for j in range(h):
        z1[j] = 0
    if sparse:
        for t in range(Xi.shape[1]):
            r = o + Xi[i, t] * h
            row = tht[r:r + h]
            for j in range(h):
                z1[j] += row[j]
    else:
        for c in range(dims[0]):
            x = Xd[i, c]
            if x != 0:
                r = o + c * h
                row = tht[r:r + h]
                for j in range(h):
                    z1[j] += x * row[j]


@jit
def _backward_block(th, dims, offs, hoffs, act, Xi, Xd, sparse, rows, first, nb, Z, A, D1, D2, g):
    """Backward pass of the block of :func:`_forward_block`, accumulating the weight gradient into ``g``.

    ``D1[b]`` holds sample ``b``'s gradient at the logits (overwritten layer by layer with
    the gradient at each hidden pre-activation); ``D2`` is work space.
    """
    L = dims.shape[0] - 1
    for k in range(L - 1, 0, -1):
        n_in = dims[k]
        n_out = dims[k + 1]
        o = offs[k]
        h0 = hoffs[k]
        for b in range(nb):
            dd = D2[b, :n_in]
            for j in range(n_in):
                dd[j] = 0
        for q in range(n_out):
            grow = g[o + q * n_in:o + (q + 1) * n_in]
            wrow = th[o + q * n_in:o + (q + 1) * n_in]
            for b in range(nb):
                dq = D1[b, q]
                ak = A[b, h0:h0 + n_in]
                dd = D2[b, :n_in]
                for j in range(n_in):
                    grow[j] += dq * ak[j]
                for j in range(n_in):
                    dd[j] += dq * wrow[j]
        for b in range(nb):
            zk = Z[b, h0:h0 + n_in]
            dd = D2[b, :n_in]
            d1 = D1[b]
            if act == 0:
                for j in range(n_in):
                    d1[j] = 2 * zk[j] * dd[j]
            else:
                for j in range(n_in):
                    d1[j] = dd[j] if zk[j] > 0 else 0 * dd[j]
    h = dims[1]
    d_in = dims[0]
    o = offs[0]
    for b in range(nb):
        i = rows[first + b]
        d1 = D1[b]
        if sparse:
            for t in range(Xi.shape[1]):
                col = o + Xi[i, t]
                for q in range(h):
                    g[col + q * d_in] += d1[q]
        else:
            x = Xd[i]
            for q in range(h):
                dq = d1[q]
                grow = g[o + q * d_in:o + (q + 1) * d_in]
                for c in range(d_in):
                    grow[c] += dq * x[c]


@jit
def _transpose_one(th, tht, dims, offs):
    for k in range(dims.shape[0] - 1):
        n_in = dims[k]
        n_out = dims[k + 1]
        o = offs[k]
        for q in range(n_out):
            for j in range(n_in):
                tht[o + j * n_out + q] = th[o + q * n_in + j]


@pjit
def transpose_layers(th, tht, dims, offs):
    """Write every run's layers transposed (in x out) into ``tht``."""
    for s in prange(th.shape[0]):
        _transpose_one(th[s], tht[s], dims, offs)


@pjit
def apply_update(th, tht, m, v, G, n_chunks, dims, offs, opt, hp, step, states, noise_sd, kn, wn, fn):
    """One optimiser step of every run from its chunk gradients (summed in chunk order).

    ``hp`` (in the weights' dtype): ``lr, weight_decay, b1, b2, eps``. SGD with coupled weight
    decay: ``th -= lr * (g + weight_decay * th)`` (``torch.optim.SGD(weight_decay=...)``).
    AdamW (``torch.optim.AdamW``): ``th *= 1 - lr * weight_decay``, then the Adam step with
    bias corrections at step ``step`` (1-based). With ``noise_sd > 0`` every weight then gets
    ``noise_sd * N(0, 1)`` from seed ``s``'s stream (injected Langevin noise,
    ``noise_sd = sqrt(2 lr temperature)``), in weight order, normals in pairs.
    """
    S, P = th.shape
    lr = hp[0]
    wd = hp[1]
    b1 = hp[2]
    b2 = hp[3]
    eps = hp[4]
    one = hp[0] * 0 + 1
    bc1 = one - b1 ** step
    bc2 = one - b2 ** step
    step_size = lr / bc1
    sq2 = math.sqrt(bc2)
    decay = one - lr * wd
    for s in prange(S):
        w = th[s]
        r0 = s * n_chunks
        for t in range(P):
            acc = G[r0, t]
            for c in range(1, n_chunks):
                acc += G[r0 + c, t]
            if opt == 0:
                w[t] = w[t] - lr * (acc + wd * w[t])
            else:
                w[t] = w[t] * decay
                mt = m[s, t] + (one - b1) * (acc - m[s, t])
                vt = v[s, t] * b2 + (one - b2) * acc * acc
                m[s, t] = mt
                v[s, t] = vt
                w[t] = w[t] - step_size * (mt / (np.sqrt(vt) / sq2 + eps))
        if noise_sd > 0:
            st = states[s]
            for t in range(0, P, 2):
                z1, z2 = normal_pair(st, kn, wn, fn)
                w[t] = w[t] + noise_sd * z1
                if t + 1 < P:
                    w[t + 1] = w[t + 1] + noise_sd * z2
        _transpose_one(w, tht[s], dims, offs)


@pjit
def draw_batches(states, idx, n, B):
    """``idx[s, :B]``: ``B`` indices drawn uniformly with replacement from ``0..n-1`` (stream ``s``)."""
    for s in prange(idx.shape[0]):
        st = states[s]
        for q in range(B):
            j = int(uniform(st) * n)
            idx[s, q] = j if j < n else n - 1


@pjit
def draw_label_noise(states, E, sd, kn, wn, fn):
    """``E[s, :] = sd * N(0, 1)`` (``B * n_classes`` entries, normals in pairs, from stream ``s``)."""
    for s in prange(E.shape[0]):
        st = states[s]
        e = E[s]
        n = e.shape[0]
        for i in range(0, n, 2):
            z1, z2 = normal_pair(st, kn, wn, fn)
            e[i] = sd * z1
            if i + 1 < n:
                e[i + 1] = sd * z2


@pjit
def shuffle_rows(states, idx):
    """Fisher-Yates shuffle of every row of ``idx`` with its own stream."""
    n = idx.shape[1]
    for s in prange(idx.shape[0]):
        st = states[s]
        for i in range(n - 1, 0, -1):
            j = int(uniform(st) * (i + 1))
            if j > i:
                j = i
            tmp = idx[s, i]
            idx[s, i] = idx[s, j]
            idx[s, j] = tmp


@pjit
def evaluate_chunks(th, tht, dims, offs, hoffs, act, loss, Xi, Xd, sparse, y, rows, chunk, n_chunks, sums, Z, A,
                    OUT):
    """Per-unit loss sums and correct counts of every run over a whole data set (forward only).

    ``sums[u] = (summed per-sample loss, number correct)`` for unit ``u = s * n_chunks + c``;
    the per-sample loss is MSE summed over classes divided by their number, or cross-entropy.
    ``rows`` is ``0..n-1``; samples go through :func:`_forward_block` ``BLOCK`` at a time
    (``Z, A, OUT`` of shape ``(n_units, BLOCK, size)``) and are summed in order.
    """
    S = th.shape[0]
    n = y.shape[0]
    for u in prange(S * n_chunks):
        s = u // n_chunks
        c = u - s * n_chunks
        lo = c * chunk
        hi = min(n, lo + chunk)
        total = 0.0
        correct = 0.0
        for b0 in range(lo, hi, BLOCK):
            nb = min(BLOCK, hi - b0)
            _forward_block(th[s], tht[s], dims, offs, hoffs, act, Xi, Xd, sparse, rows, b0, nb, Z[u], A[u], OUT[u])
            for b in range(nb):
                t, k = _score(OUT[u][b], y[b0 + b], loss)
                total += t
                correct += k
        sums[u, 0] = total
        sums[u, 1] = correct


@jit
def _score(out, label, loss):
    """(loss in float64, 1.0 if the arg-max logit is ``label`` else 0.0) of one sample's logits."""
    C = out.shape[0]
    best = 0
    for q in range(1, C):
        if out[q] > out[best]:
            best = q
    hit = 1.0 if best == label else 0.0
    if loss == 0:
        e = 0.0
        for q in range(C):
            r = float(out[q]) - (1.0 if q == label else 0.0)
            e += r * r
        return e / C, hit
    m = float(out[0])
    for q in range(1, C):
        m = max(m, float(out[q]))
    ssum = 0.0
    for q in range(C):
        ssum += math.exp(float(out[q]) - m)
    return m + math.log(ssum) - float(out[label]), hit


@jit
def init_normals(states, stds, offs, kn, wn, fn, out):
    """``out[s]``: layer ``k``'s weights ``stds[k] * z``, normals from stream ``s`` in pairs
    (``offs`` has ``n_layers + 1`` entries; a layer of odd size discards its last spare)."""
    S = out.shape[0]
    n_layers = offs.shape[0] - 1
    for s in range(S):
        st = states[s]
        for k in range(n_layers):
            i = offs[k]
            end = offs[k + 1]
            while i < end:
                z1, z2 = normal_pair(st, kn, wn, fn)
                out[s, i] = stds[k] * z1
                if i + 1 < end:
                    out[s, i + 1] = stds[k] * z2
                i += 2
