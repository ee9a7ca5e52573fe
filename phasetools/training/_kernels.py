"""numba kernels of the trainer: pure functions over preallocated arrays.

Layout. The weights of one run are a flat vector ``th``; layer ``k`` (1-based, ``W_k``, shape
``dims[k] x dims[k-1]``) is row-major at ``offs[k-1]``. Work buffers per run:

* ``pre``: prefix products ``P_k = W_k ... W_1`` (``dims[k] x d_in``) at ``poffs[k]``,
  ``k = 0..n``; ``P_0 = I`` is written once by the caller, ``P_n = M`` is the end-to-end map;
* ``suf``: suffix products ``A_k = W_n ... W_{k+1}`` (``d_out x dims[k]``) at ``soffs[k]``,
  ``k = 1..n``; ``A_n = I`` is written once by the caller;
* ``G`` (``d_out x d_in``): the gradient of the data term with respect to ``M``;
* ``C`` (``d_out x max(dims)``), ``grad`` (``n_params``).

The gradient of ``kappa * E_batch ||y - M x||^2`` with respect to ``W_k`` is
``A_k^T G P_{k-1}^T`` with ``G = 2 kappa E_batch[(M x - y) x^T]``; every product is an
explicit loop over the small matrices, in the dtype of the weights (float32 runs compute in
float32), and nothing is allocated inside the step loop. Logged quantities are computed in
float64 from the current weights (allocating, but only at log points).

Optional noise (off by default; the default path never touches the code below): label noise
adds ``label_sd * z`` to each target of the batch, injected (Langevin/SGLD) noise adds
``inj_sd * z`` to each weight after the SGD update. The normals ``z`` come from the run's own
xoshiro256** stream in pairs (``normal_pair``; an odd count discards the last spare), are
scaled in float64 and rounded to the weights' dtype into the buffer ``noise`` before they are
added, so the arithmetic of the step stays in that dtype.

Shuffled epochs. One Fisher-Yates shuffle (``_shuffle``, the generator state in registers)
serves both the trainer and the reduced shuffled-SGD simulation of prediction (b)
(``_seed_kernel``, ``_seed_kernel_r2``, driven by ``training/_reshuffle.py``), so seed ``s`` of
the simulation sees the permutations of the trainer's seed ``s``. The simulation's kernels live
here, next to the shuffle they call: numba's disk cache of a kernel checks only the kernel's own
file, so a jitted call into another module of the package would keep stale machine code after an
edit of the callee (``phasetools._numba``).
"""

from __future__ import annotations

import math

import numpy as np

from .._numba import jit
from .._rng import ZIG_WEDGE, _next_scalar, _zig_slow_scalar, normal_pair, uniform

__all__ = ["MODE_SHUFFLE", "MODE_REPLACE", "MODE_MOMENTS", "STATUS_OK", "STATUS_NONFINITE", "draw_normals",
           "batch_gradient_kernel", "train_kernel"]

MODE_SHUFFLE, MODE_REPLACE, MODE_MOMENTS = 0, 1, 2
STATUS_OK, STATUS_NONFINITE = 0, 2


@jit
def draw_normals(states, scales, kn, wn, fn, out):
    """``out[s, i] = scales[i] * z`` with standard normals from stream ``s`` (pairs, in order)."""
    S, P = out.shape
    for s in range(S):
        st = states[s]
        i = 0
        while i < P:
            z1, z2 = normal_pair(st, kn, wn, fn)
            out[s, i] = scales[i] * z1
            if i + 1 < P:
                out[s, i + 1] = scales[i + 1] * z2
            i += 2


@jit
def _products(th, dims, offs, pre, poffs, suf, soffs):
    """Prefix products P_1..P_n and suffix products A_{n-1}..A_1 of the weights ``th``.

    Each output entry is summed in a register, in the natural order of its inner index
    (the same operations, in the same order, as accumulating in memory, so the same bits).
    """
    n = dims.shape[0] - 1
    d_in = dims[0]
    d_out = dims[n]
    o = offs[0]
    po = poffs[1]
    for i in range(dims[1] * d_in):
        pre[po + i] = th[o + i]
    for k in range(2, n + 1):  # P_k = W_k P_{k-1}
        rows = dims[k]
        cols = dims[k - 1]
        ow = offs[k - 1]
        pin = poffs[k - 1]
        pout = poffs[k]
        for i in range(rows):
            wr = ow + i * cols
            for b in range(d_in):
                acc = th[wr] * pre[pin + b]
                for j in range(1, cols):
                    acc += th[wr + j] * pre[pin + j * d_in + b]
                pre[pout + i * d_in + b] = acc
    if n >= 2:
        so = soffs[n - 1]
        o = offs[n - 1]
        for i in range(d_out * dims[n - 1]):
            suf[so + i] = th[o + i]
    for k in range(n - 1, 1, -1):  # A_{k-1} = A_k W_k
        rows = dims[k]
        cols = dims[k - 1]
        ow = offs[k - 1]
        sin = soffs[k]
        sout = soffs[k - 1]
        for a in range(d_out):
            sr = sin + a * rows
            for j in range(cols):
                acc = suf[sr] * th[ow + j]
                for i in range(1, rows):
                    acc += suf[sr + i] * th[ow + i * cols + j]
                suf[sout + a * cols + j] = acc


@jit(inline="always")
def _residual_row(pre, mo, X, i, a, r, d_in, G):
    """Row ``a`` of ``G += r_a x_i^T``, with ``r_a = r + (M x_i)_a`` (``r``: minus the target);
    inlined into its callers (a call per row costs more than the row)."""
    for b in range(d_in):
        r += pre[mo + a * d_in + b] * X[i, b]
    for b in range(d_in):
        G[a * d_in + b] += r * X[i, b]


@jit
def _residual_batch(pre, mo, X, Y, idx, start, count, scale, d_in, d_out, G):
    """``G = scale * sum_q (M x_q - y_q) x_q^T`` over rows ``idx[start:start+count]``."""
    for t in range(d_out * d_in):
        G[t] = 0
    for q in range(count):
        i = idx[start + q]
        for a in range(d_out):
            _residual_row(pre, mo, X, i, a, -Y[i, a], d_in, G)
    for t in range(d_out * d_in):
        G[t] = G[t] * scale


@jit
def _fill_normals(st, buf, count, sd, kn, wn, fn):
    """``buf[:count] = sd * z`` (rounded to the dtype of ``buf``), ``z`` standard normals from
    the stream ``st`` drawn in pairs; an odd ``count`` discards the second of the last pair.

    The same normals as successive ``normal_pair(st, ...)`` calls, with the xoshiro256**
    step (``_next_scalar``) and the ziggurat's fast path inline on a register copy of the
    state (a call per pair costs several times the draw); the rare path is the Langevin
    kernels' ``_zig_slow_scalar`` on the same copy.
    """
    s0 = st[0]
    s1 = st[1]
    s2 = st[2]
    s3 = st[3]
    i = 0
    while i < count:
        u, s0, s1, s2, s3 = _next_scalar(s0, s1, s2, s3)
        h1 = np.int64(np.int32(u >> np.uint64(32)))
        h2 = np.int64(np.int32(u & np.uint64(0xFFFFFFFF)))
        i1 = h1 & 127
        i2 = h2 & 127
        if abs(h1) < kn[i1]:
            z1 = h1 * wn[i1]
        else:
            z1, s0, s1, s2, s3 = _zig_slow_scalar(h1, s0, s1, s2, s3, kn, wn, fn, ZIG_WEDGE)
        if abs(h2) < kn[i2]:
            z2 = h2 * wn[i2]
        else:
            z2, s0, s1, s2, s3 = _zig_slow_scalar(h2, s0, s1, s2, s3, kn, wn, fn, ZIG_WEDGE)
        buf[i] = sd * z1
        if i + 1 < count:
            buf[i + 1] = sd * z2
        i += 2
    st[0] = s0
    st[1] = s1
    st[2] = s2
    st[3] = s3


@jit
def _residual_batch_labels(pre, mo, X, Y, idx, start, count, scale, d_in, d_out, G, eps):
    """``_residual_batch`` with noisy targets ``y_q + eps[q * d_out + a]`` (label noise)."""
    for t in range(d_out * d_in):
        G[t] = 0
    for q in range(count):
        i = idx[start + q]
        for a in range(d_out):
            _residual_row(pre, mo, X, i, a, -(Y[i, a] + eps[q * d_out + a]), d_in, G)
    for t in range(d_out * d_in):
        G[t] = G[t] * scale


@jit
def _residual_moments(pre, mo, sxx, syx, scale, d_in, d_out, G):
    """``G = scale * (M S_xx - S_yx)``."""
    for a in range(d_out):
        for b in range(d_in):
            acc = -syx[a, b]
            for c in range(d_in):
                acc += pre[mo + a * d_in + c] * sxx[c, b]
            G[a * d_in + b] = acc * scale


@jit
def _layer_grads(dims, offs, pre, poffs, suf, soffs, G, C, grad):
    """``grad_k = A_k^T G P_{k-1}^T`` for every layer (from the buffers only)."""
    n = dims.shape[0] - 1
    d_in = dims[0]
    d_out = dims[n]
    for k in range(1, n + 1):
        rows = dims[k]
        cols = dims[k - 1]
        if k == 1:  # P_0 = I
            for t in range(d_out * d_in):
                C[t] = G[t]
        else:
            pk = poffs[k - 1]
            for a in range(d_out):
                for j in range(cols):
                    acc = G[a * d_in] * pre[pk + j * d_in]
                    for b in range(1, d_in):
                        acc += G[a * d_in + b] * pre[pk + j * d_in + b]
                    C[a * cols + j] = acc
        og = offs[k - 1]
        if k == n:  # A_n = I
            for t in range(rows * cols):
                grad[og + t] = C[t]
        else:
            sk = soffs[k]
            for i in range(rows):
                for j in range(cols):
                    acc = suf[sk + i] * C[j]
                    for a in range(1, d_out):
                        acc += suf[sk + a * rows + i] * C[a * cols + j]
                    grad[og + i * cols + j] = acc


@jit
def _sgd_update(th, grad, lr, wd):
    """torch.optim.SGD with coupled weight decay: ``g = grad + wd * th; th = th - lr * g``."""
    ok = True
    for i in range(th.shape[0]):
        g = grad[i] + wd * th[i]
        v = th[i] - lr * g
        th[i] = v
        if not math.isfinite(v):
            ok = False
    return ok


@jit
def _sgd_update_noisy(th, grad, lr, wd, xi):
    """``_sgd_update`` followed by the injected noise: ``th = (th - lr * g) + xi``."""
    ok = True
    for i in range(th.shape[0]):
        g = grad[i] + wd * th[i]
        v = th[i] - lr * g
        v = v + xi[i]
        th[i] = v
        if not math.isfinite(v):
            ok = False
    return ok


@jit
def batch_gradient_kernel(th, X, Y, idx, moments_mode, sxx, syx, dims, offs, poffs, soffs, scale, pre, suf, G,
                          C, grad):
    """The data-term gradient exactly as the training kernel computes it (for tests and tools)."""
    n = dims.shape[0] - 1
    _products(th, dims, offs, pre, poffs, suf, soffs)
    if moments_mode:
        _residual_moments(pre, poffs[n], sxx, syx, scale, dims[0], dims[n], G)
    else:
        _residual_batch(pre, poffs[n], X, Y, idx, 0, idx.shape[0], scale, dims[0], dims[n], G)
    _layer_grads(dims, offs, pre, poffs, suf, soffs, G, C, grad)


@jit
def _singular_values(A, out):
    """Singular values of ``A`` (float64), descending, into ``out[:min(A.shape)]``.

    One-sided Jacobi (Hestenes) on the columns of ``A`` or ``A^T``: small singular values
    come out with high relative accuracy (the residual seeds of rank-deficient states,
    1e-8 and below, are resolved), and the code is short, so the kernel compiles fast.
    """
    m, k = A.shape
    if m < k:
        U = A.T.copy()
        m, k = k, m
    else:
        U = A.copy()
    for sweep in range(80):
        rotated = False
        for p in range(k - 1):
            for q in range(p + 1, k):
                alpha = 0.0
                beta = 0.0
                gam = 0.0
                for i in range(m):
                    alpha += U[i, p] * U[i, p]
                    beta += U[i, q] * U[i, q]
                    gam += U[i, p] * U[i, q]
                if gam == 0.0 or abs(gam) <= 1e-15 * math.sqrt(alpha * beta):
                    continue
                rotated = True
                zeta = (beta - alpha) / (2.0 * gam)
                t = (1.0 if zeta >= 0 else -1.0) / (abs(zeta) + math.sqrt(1.0 + zeta * zeta))
                c = 1.0 / math.sqrt(1.0 + t * t)
                sn = c * t
                for i in range(m):
                    up = U[i, p]
                    uq = U[i, q]
                    U[i, p] = c * up - sn * uq
                    U[i, q] = sn * up + c * uq
        if not rotated:
            break
    for j in range(k):
        acc = 0.0
        for i in range(m):
            acc += U[i, j] * U[i, j]
        out[j] = math.sqrt(acc)
    for j in range(1, k):  # insertion sort, descending
        v = out[j]
        i = j - 1
        while i >= 0 and out[i] < v:
            out[i + 1] = out[i]
            i -= 1
        out[i + 1] = v


@jit
def _log_point(th, dims, offs, monitor, s, li, lj, basic, layers, outs):
    """In float64: if ``basic``, train/test MSE, loss, weight norm and end-to-end singular
    values at log point ``li``; if ``layers``, per-layer singular values at layer log point
    ``lj``. ``monitor`` and ``outs`` are the tuples of :func:`train_kernel`. Returns False if
    the end-to-end map is not finite."""
    sxx, syx, syy, has_test, txx, tyx, tyy, kappa, wd = monitor
    out_train, out_test, out_loss, out_norm, out_sv, out_lsv = outs[2], outs[3], outs[4], outs[5], outs[6], outs[7]
    n = dims.shape[0] - 1
    d_in = dims[0]
    d_out = dims[n]
    M = np.eye(d_in)
    norm2 = 0.0
    for k in range(1, n + 1):
        rows = dims[k]
        cols = dims[k - 1]
        ow = offs[k - 1]
        W = np.empty((rows, cols))
        for i in range(rows):
            for j in range(cols):
                v = np.float64(th[ow + i * cols + j])
                W[i, j] = v
                norm2 += v * v
        if layers:
            _singular_values(W, out_lsv[s, lj, k - 1])
        Mn = np.empty((rows, d_in))
        for i in range(rows):
            for b in range(d_in):
                acc = 0.0
                for j in range(cols):
                    acc += W[i, j] * M[j, b]
                Mn[i, b] = acc
        M = Mn
    for a in range(d_out):
        for b in range(d_in):
            if not math.isfinite(M[a, b]):
                return False
    if not basic:
        return True
    e_train = 0.0
    e_test = 0.0
    for a in range(d_out):
        e_train += syy[a, a]
        if has_test:
            e_test += tyy[a, a]
        for b in range(d_in):
            e_train -= 2.0 * M[a, b] * syx[a, b]
            mx = 0.0
            mt = 0.0
            for c in range(d_in):
                mx += M[a, c] * sxx[c, b]
                if has_test:
                    mt += M[a, c] * txx[c, b]
            e_train += mx * M[a, b]
            if has_test:
                e_test += mt * M[a, b] - 2.0 * M[a, b] * tyx[a, b]
    out_train[s, li] = e_train / d_out
    if has_test:
        out_test[s, li] = e_test / d_out
    out_loss[s, li] = kappa * e_train + 0.5 * wd * norm2
    out_norm[s, li] = math.sqrt(norm2)
    _singular_values(M, out_sv[s, li])
    return True


@jit
def _shuffle(pm, st, n_samples):
    """Fisher-Yates: a fresh uniform permutation of ``pm[:n_samples]`` in place.

    Swap ``i`` (from ``n_samples - 1`` down to 1) exchanges ``pm[i]`` and ``pm[j]``,
    ``j = min(floor(u (i + 1)), i)`` with ``u`` the stream's next ``uniform`` (53 bits, in
    (0, 1)); the xoshiro256** state is held in registers (``_next_scalar``) while the
    permutation is written, and stored back into ``st`` at the end: the same draws and the same
    permutation as ``uniform(st)`` per swap, without re-reading the state from memory after
    every store into ``pm``. The trainer's shuffled epochs and the reduced simulation's
    (:func:`_seed_kernel`) both call it.
    """
    s0, s1, s2, s3 = st[0], st[1], st[2], st[3]
    for i in range(n_samples - 1, 0, -1):
        u, s0, s1, s2, s3 = _next_scalar(s0, s1, s2, s3)
        x = ((u >> np.uint64(11)) + 0.5) * (1.0 / 9007199254740992.0)
        j = min(np.int64(x * (i + 1)), i)
        tmp = pm[i]
        pm[i] = pm[j]
        pm[j] = tmp
    st[0], st[1], st[2], st[3] = s0, s1, s2, s3


@jit
def _batch(mode, pm, st, b, batch_size, n_samples, scale_full, scale_last):
    """The rows of step ``b``: ``(start, count, scale)`` into ``pm`` (mode 1 draws them into ``pm``)."""
    start = 0
    count = batch_size
    sc = scale_full
    if mode == 1:
        for q in range(batch_size):
            pm[q] = min(np.int64(uniform(st) * n_samples), n_samples - 1)
    elif mode == 0:
        start = b * batch_size
        if n_samples - start < batch_size:
            count = n_samples - start
            sc = scale_last
    return start, count, sc


@jit
def _update(th, grad_s, lr, wd, inj_sd, st, nz, kn, wn, fn):
    """The SGD update of one seed, with the injected noise when ``inj_sd > 0``; False if not finite."""
    if inj_sd > 0.0:
        _fill_normals(st, nz, th.shape[0], inj_sd, kn, wn, fn)
        return _sgd_update_noisy(th, grad_s, lr, wd, nz)
    return _sgd_update(th, grad_s, lr, wd)


@jit
def _log_due(th, dims, offs, monitor, schedule, s, li, lj, e, status, outs):
    """Write the log points due at epoch ``e``; returns ``(li, lj, status)`` advanced."""
    log_epochs = schedule[1]
    layer_epochs = schedule[2]
    basic = status == 0 and li < log_epochs.shape[0] and log_epochs[li] == e
    layers = status == 0 and lj < layer_epochs.shape[0] and layer_epochs[lj] == e
    if basic or layers:
        if not _log_point(th, dims, offs, monitor, s, li, lj, basic, layers, outs):
            status = 2
        if basic:
            li += 1
        if layers:
            lj += 1
    return li, lj, status


@jit
def train_kernel(lo, hi, run, data, layout, sgd, schedule, monitor, bufs, outs, record, noise):
    """Advance runs ``lo <= s < hi`` for ``epochs`` epochs, in place (serial, releases the GIL).

    The arguments are tuples of arrays (run ``s`` touches only row ``s`` of every per-run
    array, so disjoint ranges may run concurrently):

    * ``run = (theta, states)``: flat weights and xoshiro256** states per run;
    * ``data = (mode, X, Y, mxx, myx)``: ``mode`` 0 shuffled epochs without replacement, 1
      batches drawn with replacement, 2 full-batch steps on the moments ``mxx``, ``myx``;
    * ``layout = (dims, offs, poffs, soffs)`` (module docstring);
    * ``sgd = (consts, batch_size, steps_per_epoch, n_samples)``, ``consts`` (weights' dtype) =
      ``[lr, wd, scale of a full batch, scale of the last partial batch, 2 kappa]``;
    * ``schedule = (epochs, log_epochs, layer_epochs)``;
    * ``monitor = (sxx, syx, syy, has_test, txx, tyx, tyy, kappa, wd)``: float64 moments and
      constants of the logged quantities;
    * ``bufs = (pre, suf, G, C, grad, perm, noise)``: ``perm[s]`` holds the permutation (mode
      0) or the drawn batch (mode 1), ``noise[s]`` the dtype buffer of the normals (length
      ``>= max(batch_size * d_out, n_params)``);
    * ``outs = (steps, status, train_mse, test_mse, loss, weight_norm, sv, layer_sv)``;
    * ``record = (record_steps, batch_indices, step_params)``;
    * ``noise = (inj_sd, label_sd, kn, wn, fn)``: ``label_sd > 0`` (batch modes) adds fresh
      normals ``label_sd * z`` to the batch's targets every step (drawn after the batch
      indices, sample by sample, output by output); ``inj_sd > 0`` adds ``inj_sd * z`` to
      every weight after the update (drawn after the label noise, in parameter order);
      ``kn, wn, fn`` are the ziggurat tables.
    """
    theta, states = run
    mode, X, Y, mxx, myx = data
    dims, offs, poffs, soffs = layout
    consts, batch_size, steps_per_epoch, n_samples = sgd
    epochs = schedule[0]
    pre, suf, G, C, grad, perm, noise_buf = bufs
    out_steps, out_status = outs[0], outs[1]
    rec_on, rec_idx, rec_params = record
    inj_sd, label_sd, kn, wn, fn = noise
    n = dims.shape[0] - 1
    d_in = dims[0]
    d_out = dims[n]
    mo = poffs[n]
    lr = consts[0]
    wd = consts[1]
    scale_full = consts[2]
    scale_last = consts[3]
    two_kappa = consts[4]
    for s in range(lo, hi):
        th = theta[s]
        st = states[s]
        pre_s = pre[s]
        suf_s = suf[s]
        G_s = G[s]
        C_s = C[s]
        grad_s = grad[s]
        pm = perm[s]
        nz = noise_buf[s]
        status = 0
        step = 0
        li = lo - lo  # a plain int64 (a literal 0 would make numba compile a second _log_due)
        lj = lo - lo
        e = 0
        if mode == 0:
            for i in range(n_samples):
                pm[i] = i
        while True:
            li, lj, status = _log_due(th, dims, offs, monitor, schedule, s, li, lj, e, status, outs)
            if status != 0 or e >= epochs:
                break
            e += 1
            if mode == 0:
                _shuffle(pm, st, n_samples)
            for b in range(steps_per_epoch):
                _products(th, dims, offs, pre_s, poffs, suf_s, soffs)
                start, count, sc = _batch(mode, pm, st, b, batch_size, n_samples, scale_full, scale_last)
                if mode == 2:
                    _residual_moments(pre_s, mo, mxx, myx, two_kappa, d_in, d_out, G_s)
                elif label_sd > 0.0:
                    _fill_normals(st, nz, count * d_out, label_sd, kn, wn, fn)
                    _residual_batch_labels(pre_s, mo, X, Y, pm, start, count, sc, d_in, d_out, G_s, nz)
                else:
                    _residual_batch(pre_s, mo, X, Y, pm, start, count, sc, d_in, d_out, G_s)
                if rec_on and mode != 2:
                    for q in range(count):
                        rec_idx[s, step, q] = pm[start + q]
                _layer_grads(dims, offs, pre_s, poffs, suf_s, soffs, G_s, C_s, grad_s)
                ok = _update(th, grad_s, lr, wd, inj_sd, st, nz, kn, wn, fn)
                step += 1
                if rec_on:
                    for i in range(th.shape[0]):
                        rec_params[s, step, i] = th[i]
                if not ok:
                    status = 2
                    break
        out_steps[s] = step
        out_status[s] = status


# --- the reduced shuffled SGD (prediction (b), training/_reshuffle.py) --------------------

#: Seed outcomes of the kernels: ran to the epoch budget, escaped, weights not finite, stopped
#: because the stopping rule no longer needs the seed (its result is discarded).
CENSORED, ESCAPED, NONFINITE, ABORTED = 0, 1, 2, 3


@jit
def _matmul(A, B, C, R):
    """``C = A @ B`` for ``R x R`` matrices (``R`` a compile-time constant in the callers)."""
    for i in range(R):
        for j in range(R):
            acc = 0.0
            for q in range(R):
                acc += A[i, q] * B[q, j]
            C[i, j] = acc


@jit
def _seed_kernel(W, D, pm, st, rt, consts, ints, limit, s):
    """One seed of the reduced shuffled SGD, any ``r``, in place on ``W`` (n, r, r) and ``st``.

    ``D`` (N, 2 r^2): per sample ``x x^T`` and ``y x^T`` (row-major), so a step's batch sums cost
    ``2 B r^2`` additions and the step ``G = scale (M Sxx - Syx)``, ``grad_k = A_k^T G P_{k-1}^T``
    (``P_k = W_k ... W_1``, ``A_k = W_n ... W_{k+1}``) ``O(n r^3)``. ``rt``: a tuple of ``r`` zeros,
    whose length numba knows at compile time (the ``r``-loops are unrolled per ``r``).
    ``consts = (lr, wd, 2 kappa, p_target)``, ``ints = (batch_size, steps_per_epoch, epochs, mode,
    cross)``; the seed stops when ``s >= limit[0]`` (checked every epoch). Returns ``(epoch, outcome)``.
    """
    R = len(rt)
    lr, wd, two_kappa, p_target = consts[0], consts[1], consts[2], consts[3]
    B, spe, epochs, mode, cross = ints[0], ints[1], ints[2], ints[3], ints[4] != 0
    n, N, RR = W.shape[0], D.shape[0], R * R
    pre = np.zeros((n + 1, R, R))
    suf = np.zeros((n + 1, R, R))
    for i in range(R):
        pre[0, i, i] = 1.0
        suf[n, i, i] = 1.0
    S = np.empty(2 * RR)
    G = np.empty((R, R))
    T = np.empty((R, R))
    for i in range(N):
        pm[i] = i
    for e in range(1, epochs + 1):
        if s >= limit[0]:
            return e - 1, ABORTED
        _shuffle(pm, st, N)
        for b in range(spe):
            start = b * B
            count = min(B, N - start)
            S[:] = 0.0
            for q in range(count):
                row = D[pm[start + q]]
                for c in range(2 * RR):
                    S[c] += row[c]
            for k in range(1, n + 1):
                _matmul(W[k - 1], pre[k - 1], pre[k], R)
            for k in range(n - 1, 0, -1):
                _matmul(suf[k + 1], W[k], suf[k], R)
            scale = two_kappa / count
            for a in range(R):
                for j in range(R):
                    acc = -S[RR + a * R + j]
                    for q in range(R):
                        acc += pre[n, a, q] * S[q * R + j]
                    G[a, j] = scale * acc
            total = 0.0
            for k in range(n):
                for a in range(R):                      # T = G P_{k-1}^T
                    for j in range(R):
                        acc = 0.0
                        for q in range(R):
                            acc += G[a, q] * pre[k, j, q]
                        T[a, j] = acc
                for i in range(R):                      # grad = A_k^T T
                    for j in range(R):
                        acc = 0.0
                        if cross or i == j:
                            for a in range(R):
                                acc += suf[k + 1, a, i] * T[a, j]
                        v = W[k, i, j] - lr * (acc + wd * W[k, i, j])
                        W[k, i, j] = v
                        total += v
            if not math.isfinite(total):                # a non-finite weight makes the sum non-finite
                return e, NONFINITE
        for k in range(1, n + 1):
            _matmul(W[k - 1], pre[k - 1], pre[k], R)
        if pre[n, mode, mode] < p_target:
            return e, ESCAPED
    return epochs, CENSORED


@jit
def _seed_kernel_r2(W, D, pm, st, consts, ints, limit, s):
    """:func:`_seed_kernel` for ``r = 2`` with the 2 x 2 products in registers (the same arithmetic
    up to the order of additions; the two-mode teacher's case, 1.3-1.5x faster than the general one)."""
    lr, wd, two_kappa, p_target = consts[0], consts[1], consts[2], consts[3]
    B, spe, epochs, mode = ints[0], ints[1], ints[2], ints[3]
    cr = 1.0 if ints[4] != 0 else 0.0
    n, N = W.shape[0], D.shape[0]
    pre = np.empty((n, 4))                              # P_0 = I, ..., P_{n-1}
    suf = np.empty((n, 4))                              # A_1, ..., A_{n-1}, A_n = I
    pre[0, 0], pre[0, 1], pre[0, 2], pre[0, 3] = 1.0, 0.0, 0.0, 1.0
    suf[n - 1, 0], suf[n - 1, 1], suf[n - 1, 2], suf[n - 1, 3] = 1.0, 0.0, 0.0, 1.0
    for i in range(N):
        pm[i] = i
    for e in range(1, epochs + 1):
        if s >= limit[0]:
            return e - 1, ABORTED
        _shuffle(pm, st, N)
        for b in range(spe):
            start = b * B
            count = min(B, N - start)
            a0 = a1 = a2 = a3 = c0 = c1 = c2 = c3 = 0.0
            for q in range(count):
                i = pm[start + q]
                a0 += D[i, 0]
                a1 += D[i, 1]
                a2 += D[i, 2]
                a3 += D[i, 3]
                c0 += D[i, 4]
                c1 += D[i, 5]
                c2 += D[i, 6]
                c3 += D[i, 7]
            p0, p1, p2, p3 = 1.0, 0.0, 0.0, 1.0
            for k in range(n):
                w0, w1, w2, w3 = W[k, 0, 0], W[k, 0, 1], W[k, 1, 0], W[k, 1, 1]
                p0, p1, p2, p3 = w0 * p0 + w1 * p2, w0 * p1 + w1 * p3, w2 * p0 + w3 * p2, w2 * p1 + w3 * p3
                if k + 1 < n:
                    pre[k + 1, 0], pre[k + 1, 1], pre[k + 1, 2], pre[k + 1, 3] = p0, p1, p2, p3
            s0, s1, s2, s3 = 1.0, 0.0, 0.0, 1.0
            for k in range(n - 1, 0, -1):
                w0, w1, w2, w3 = W[k, 0, 0], W[k, 0, 1], W[k, 1, 0], W[k, 1, 1]
                s0, s1, s2, s3 = s0 * w0 + s1 * w2, s0 * w1 + s1 * w3, s2 * w0 + s3 * w2, s2 * w1 + s3 * w3
                suf[k - 1, 0], suf[k - 1, 1], suf[k - 1, 2], suf[k - 1, 3] = s0, s1, s2, s3
            sc = two_kappa / count
            g0 = sc * (p0 * a0 + p1 * a2 - c0)
            g1 = sc * (p0 * a1 + p1 * a3 - c1)
            g2 = sc * (p2 * a0 + p3 * a2 - c2)
            g3 = sc * (p2 * a1 + p3 * a3 - c3)
            total = 0.0
            for k in range(n):
                q0, q1, q2, q3 = pre[k, 0], pre[k, 1], pre[k, 2], pre[k, 3]
                t0, t1 = g0 * q0 + g1 * q1, g0 * q2 + g1 * q3
                t2, t3 = g2 * q0 + g3 * q1, g2 * q2 + g3 * q3
                u0, u1, u2, u3 = suf[k, 0], suf[k, 1], suf[k, 2], suf[k, 3]
                w0, w1, w2, w3 = W[k, 0, 0], W[k, 0, 1], W[k, 1, 0], W[k, 1, 1]
                w0 = w0 - lr * ((u0 * t0 + u2 * t2) + wd * w0)
                w1 = w1 - lr * ((u0 * t1 + u2 * t3) * cr + wd * w1)
                w2 = w2 - lr * ((u1 * t0 + u3 * t2) * cr + wd * w2)
                w3 = w3 - lr * ((u1 * t1 + u3 * t3) + wd * w3)
                W[k, 0, 0], W[k, 0, 1], W[k, 1, 0], W[k, 1, 1] = w0, w1, w2, w3
                total += (w0 + w1) + (w2 + w3)
            if not math.isfinite(total):
                return e, NONFINITE
        p0, p1, p2, p3 = 1.0, 0.0, 0.0, 1.0
        for k in range(n):
            w0, w1, w2, w3 = W[k, 0, 0], W[k, 0, 1], W[k, 1, 0], W[k, 1, 1]
            p0, p1, p2, p3 = w0 * p0 + w1 * p2, w0 * p1 + w1 * p3, w2 * p0 + w3 * p2, w2 * p1 + w3 * p3
        if (p0 if mode == 0 else p3) < p_target:
            return e, ESCAPED
    return epochs, CENSORED
