"""``kick_escape(..., sampling="shuffle")``: the kick estimator for reshuffled epochs.

Under random reshuffling the weights alone are no Markov chain, but the weights augmented by
the position in the epoch and the mask of the samples the epoch has used are (the state of
:class:`TrainingEngine` with ``exact_epochs=True``): given the past, the next minibatch is a
uniform random ``batch_size``-subset of the unused samples. The last-exit identity of
:mod:`._kick` holds for that chain, so

* the QSD is sampled by plain reshuffled chains of the exact engine (their states carry the
  position and the mask);
* at each QSD state in the well the kicking minibatch is drawn *without replacement* from the
  unused samples, from a defensive mixture of the uniform draw and the sequential draw
  proportional to the exponential tilt of :mod:`._kick` restricted to the unused samples; the
  weight of an ordered draw ``i_1 .. i_B`` is ``p / (d p + (1 - d) q)``, ``p = prod_k 1 / (m - k)``
  (``m`` unused samples) and ``q = prod_k w(i_k) / (W - w(i_1) - ... - w(i_{k-1}))`` (at most
  ``1 / d``, mean 1);
* the post-step state carries the new position and mask, and its committor comes from
  continuation runs that finish the same epoch on a uniform permutation of the samples still
  unused (the trainer's step replayed, vectorised over the runs) and then run whole reshuffled
  epochs of the exact engine.

The augmented chain is periodic in the position, and the kick rate depends on the position (on the
samples left in the epoch): the QSD states must cover every position, so ``KickOptions.thin`` must be
coprime to ``steps_per_epoch`` (the default with ``sampling="shuffle"``: the smallest such value >= 32,
33 for 128 steps per epoch; an explicit ``thin`` sharing a factor is refused: 32 keeps positions 0, 32,
64 and 96 only, and in docs/rare.md its estimates differ from those of ``thin=33`` by a factor 1.5, in
either direction depending on ``lr``). Every chain starts at position 0, so a chain of 16 epochs with
``thin=33`` keeps about 62 positions, the same ones in every chain with ``KickOptions.phase="fixed"``;
the default here, ``phase="random"``, shifts each chain's kept steps by a seeded offset uniform over
the epoch, so every kept state's position is uniform over the epoch. The committor after a kick is small (about 1e-3 there), so
``n_continue`` must be large enough that many continuation runs reach ``B`` (default 256 here, as in
the docs' sweep; with 4 a dozen lucky post-kick states carried the estimate).
"""

from __future__ import annotations

import time

import numpy as np

from .._validation import check_int
from ._engine import excursions
from ._kick import (
    KickOptions,
    _check,
    _end_to_end,
    _estimate,
    _resolve_options,
    _Sets,
    _tilt,
)
from ._training import MASK_BITS, TrainingEngine, network_rank


def shuffle_draws(logw, batch_size, n_draws, *, defensive, gen):
    """Ordered minibatches drawn without replacement from the defensive mixture of the uniform
    draw and the sequential draw proportional to ``exp(logw)``, with their likelihood ratios
    against the uniform draw.

    Parameters
    ----------
    logw : array (m,)
        Log-weights of the candidate (unused) samples, ``m >= batch_size``.
    batch_size, n_draws : int
        Minibatch size and number of minibatches.
    defensive : float in (0, 1)
        Probability of a uniform draw.
    gen : numpy.random.Generator

    Returns
    -------
    (ndarray (n_draws, batch_size) of int, ndarray (n_draws,))
        Indices into ``logw`` (in draw order) and weights ``p / (d p + (1 - d) q)``.
    """
    logw = np.asarray(logw, dtype=float)
    logw = logw - logw.max()
    m = logw.size
    plain = gen.random(n_draws) < defensive
    gumbel = gen.gumbel(size=(n_draws, m))                  # top-B of key + Gumbel: sequential draw w/o replacement
    keys = np.where(plain[:, None], 0.0, logw[None, :]) + gumbel
    idx = np.argsort(-keys, axis=1)[:, :batch_size]
    w = np.exp(logw)
    left = np.ones((n_draws, m), dtype=bool)
    log_q = np.zeros(n_draws)
    rows = np.arange(n_draws)
    for k in range(batch_size):                         # the mass left summed afresh: W - taken cancels
        log_q += logw[idx[:, k]] - np.log((w[None, :] * left).sum(axis=1))
        left[rows, idx[:, k]] = False
    log_p = -np.sum(np.log(m - np.arange(batch_size)))
    with np.errstate(over="ignore"):
        return idx, 1.0 / (defensive + (1.0 - defensive) * np.exp(log_q - log_p))


def _post_state(eng, x, weights, batch):
    """The augmented state after a step from ``x (dim,)`` on ``batch`` (sample indices) to ``weights``."""
    nw, spe = eng.n_weights, eng.steps_per_epoch
    out = np.empty((weights.shape[0], eng.dim))
    out[:, :nw] = weights
    pos = int(np.rint(x[nw])) + 1
    if pos >= spe:
        out[:, nw:] = 0.0                                     # the epoch's last step: the next starts afresh
        return out
    words = np.repeat(x[None, nw + 1:], weights.shape[0], axis=0)
    for q in range(batch.shape[1]):
        i = batch[:, q]
        np.add.at(words, (np.arange(i.size), i // MASK_BITS), 2.0 ** (i % MASK_BITS))
    out[:, nw] = pos
    out[:, nw + 1:] = words
    return out


def _exit_draws(kicker, eng, states, valid, n_draws, gen):
    """Tilted minibatches without replacement at every QSD state in ``A``: post-step augmented
    states, weights, the chain and the singular value of the state each comes from."""
    nw = eng.n_weights
    flat, chain = states[valid], np.nonzero(valid)[0]
    s = kicker.sets.sv(_end_to_end(eng, flat)) if flat.size else np.zeros(0)
    inside = np.nonzero((s >= kicker.sets.lo) & (s <= kicker.sets.hi))[0]
    posts, weights = [], []
    for a in range(0, inside.size, kicker.block):
        rows = inside[a:a + kicker.block]
        xw = flat[rows, :nw]
        ys = kicker.per_sample(xw)                           # (m, n_samples, n_weights)
        d = np.einsum("mnd,md->mn", ys - xw[:, None], kicker.grad_log_h(xw))
        aim = kicker.aim - kicker.log_h(xw)
        for r, j in enumerate(rows):
            unused = np.nonzero(~eng.used(flat[j]))[0]
            logw = _tilt(d[r, unused][None], aim[r:r + 1])[0]
            idx, w = shuffle_draws(logw, kicker.batch_size, n_draws, defensive=kicker.defensive, gen=gen)
            batch = unused[idx]
            posts.append(_post_state(eng, flat[j], ys[r][batch].mean(axis=1), batch))
            weights.append(w)
    if not posts:
        return np.zeros((0, eng.dim)), np.zeros(0), np.zeros(0, dtype=int), np.zeros(0)
    return (np.concatenate(posts), np.concatenate(weights), np.repeat(chain[inside], n_draws),
            np.repeat(s[inside], n_draws))


def _batch_step(kicker, xw, batch):
    """The trainer's step of weights ``xw (m, n_weights)`` on minibatches ``batch (m, B)``: the mean
    of the per-sample steps (as :meth:`_Kicker.per_sample`, on the batch's samples only)."""
    layers = kicker.eng.layers(xw)
    acts = [kicker.X[batch]]
    for W in layers:
        acts.append(np.einsum("mrc,mnc->mnr", W, acts[-1]))
    delta = -2.0 * kicker.kappa * (kicker.Y[batch] - acts[-1])
    grads = [None] * len(layers)
    for k in range(len(layers) - 1, -1, -1):
        grads[k] = np.einsum("mnr,mnc->mnrc", delta, acts[k]).reshape(xw.shape[0], batch.shape[1], -1)
        delta = np.einsum("mrc,mnr->mnc", layers[k], delta)
    g = np.concatenate(grads, axis=2).mean(axis=1)
    return xw - kicker.lr * (g + kicker.wd * xw)


def _finish_epochs(kicker, eng, starts, gen, block=4096):
    """The rest of each start's epoch, replayed: a uniform permutation of its unused samples cut
    into minibatches (the law of the reshuffled epoch given its past), stopped at the first step in
    ``A`` or ``B``. Returns the states at the epoch's end (phase 0), the outcome so far (2: B,
    1: A or not finite, 0: neither) and the steps taken."""
    nw, spe, bs = eng.n_weights, eng.steps_per_epoch, eng.batch_size
    ends, outcome, cost = starts.copy(), np.zeros(starts.shape[0], dtype=np.int8), 0
    for a in range(0, starts.shape[0], block):
        x = starts[a:a + block]
        pos = np.rint(x[:, nw]).astype(int)
        used = _used_rows(eng, x)
        order = np.argsort(np.where(used, np.inf, gen.random(used.shape)), axis=1)   # unused first, shuffled
        w, out = x[:, :nw].copy(), np.zeros(x.shape[0], dtype=np.int8)
        for t in range(int(spe - pos.min()) if pos.size else 0):
            go = (out == 0) & (pos + t < spe)
            if not go.any():
                break
            rows = np.nonzero(go)[0]
            batch = order[rows, t * bs:(t + 1) * bs]
            w[rows] = _batch_step(kicker, w[rows], batch)
            code = np.nan_to_num(kicker.sets(_end_to_end(eng, w[rows])), nan=-1.0)
            out[rows[code == 1.0]], out[rows[code == -1.0]] = 2, 1
            cost += rows.size
        ends[a:a + block, :nw], ends[a:a + block, nw:] = w, 0.0
        outcome[a:a + block] = out
    return ends, outcome, cost


def _used_rows(eng, x):
    """:meth:`TrainingEngine.used` of every row of ``x (n, dim)`` at once: ``(n, n_samples)`` bool."""
    words = np.asarray(x, dtype=float)[:, eng.n_weights + 1:]
    bits = np.floor(words[:, :, None] / 2.0 ** np.arange(MASK_BITS)) % 2
    return bits.reshape(x.shape[0], -1)[:, :eng.n_samples] == 1


def _continue(kicker, eng, starts, entropy, max_steps, gen):
    """Continuation runs until ``A`` or ``B``: the rest of each start's epoch replayed
    (:func:`_finish_epochs`; one ``train`` call per mid-epoch replica would be thousands of calls),
    then whole reshuffled epochs of the trainer. Outcomes (2: B, 1: A or not finite, 0: censored)
    and SGD steps."""
    mid = np.rint(starts[:, eng.n_weights]) > 0
    ends, outcome, cost = starts.copy(), np.zeros(starts.shape[0], dtype=np.int8), 0
    if mid.any():
        ends[mid], outcome[mid], cost = _finish_epochs(kicker, eng, starts[mid], gen)
    go = np.nonzero(outcome == 0)[0]
    streams = eng.streams(entropy, np.arange(starts.shape[0]))
    spe = eng.steps_per_epoch
    block = max(1, int(2e7 // (16 * spe * (eng.batch_size + eng.dim + 1))))
    for a in range(0, go.size, block):
        sl = go[a:a + block]
        st = streams[sl]
        ex = excursions(eng, ends[sl], st, low=-0.5, high=0.5, max_steps=max_steps, chunk=spe)
        outcome[sl], cost = ex.outcome, cost + int(ex.cost)
    return outcome, cost


def kick_escape_shuffle(data, init, *, n_layers, width, lr, batch_size, weight_decay, target, well, mode,
                        convention, options, rng, n_threads):
    """:func:`~phasetools.rare.kick_escape` with ``sampling="shuffle"`` (module docstring).

    Parameters
    ----------
    data, init, n_layers, width, lr, batch_size, weight_decay, target, well, mode, convention, options, rng, n_threads
        As :func:`~phasetools.rare.kick_escape`.

    Returns
    -------
    KickEscape
        With ``options["sampling"] = "shuffle"``.
    """
    opts = options if options is not None else KickOptions()
    if not isinstance(opts, KickOptions):
        raise ValueError(f"options must be a KickOptions, got {type(opts).__name__}")  # noqa: TRY004 (house rule)
    if opts.continuation != "trainer":
        raise ValueError(f"sampling='shuffle' needs continuation='trainer' (the exact reshuffled engine), "
                         f"got {opts.continuation!r}")
    lo, hi = _check(lr, batch_size, weight_decay, target, well, "replacement")
    t_start = time.perf_counter()
    X, Y = (np.asarray(a, dtype=float) for a in (data if isinstance(data, tuple) else (data.X, data.Y)))
    if X.shape[0] < batch_size:
        raise ValueError(f"batch_size must be <= the number of samples {X.shape[0]}, got {batch_size}")
    init = [np.asarray(w, dtype=float) for w in init]
    check_int(mode, "mode", minimum=0)
    if mode >= network_rank(init):
        raise ValueError(f"mode must be in [0, {network_rank(init) - 1}] (the network's rank), got {mode}")
    sets = _Sets(mode, float(target), (lo, hi))
    eng = TrainingEngine((X, Y), n_layers=n_layers, width=width, lr=lr, weight_decay=weight_decay,
                         batch_size=batch_size, sampling="shuffle", convention=convention, coordinate=sets,
                         sign=1.0, shapes=[w.shape for w in init], n_threads=n_threads, exact_epochs=True)
    x0 = eng.state(np.concatenate([w.ravel() for w in init]))
    opts = _resolve_options(opts, "shuffle", eng.steps_per_epoch)
    config = {"n_layers": n_layers, "width": width, "lr": float(lr), "batch_size": int(batch_size),
              "weight_decay": float(weight_decay), "convention": str(convention), "mode": int(mode),
              "target": float(target), "well": (lo, hi)}
    res = _estimate(eng, x0, (X, Y), init, sets, opts, config, rng, t_start,
                    draws=lambda kicker, *a: _exit_draws(kicker, eng, *a), cont=_continue_shuffled)
    res.options["sampling"] = "shuffle"
    return res


def _continue_shuffled(kicker, eng, starts, e_cont, gen, opts):
    """Continuation runs of reshuffled SGD from ``starts`` (each finishes its epoch on its unused
    samples, then whole epochs): ``(value, outcome, cost)``, ``value`` 1 for a run that reached ``B``."""
    outcome, cost = _continue(kicker, eng, starts, e_cont, opts.max_steps, gen)
    return (outcome == 2).astype(float), outcome, cost
