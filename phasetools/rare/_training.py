"""The SGD trainer of :mod:`phasetools.training` as a splitting engine, and AMS over it.

A replica is a network state (the flat weights of ``W_1 ... W_n``); advancing a batch of
replicas by ``k`` epochs is one call of :func:`phasetools.training.train` with
``init=`` those weights and ``record_steps=True`` (the weights after every SGD step are
read from ``step_params``; an epoch of SGD moves the weights by many relaxation times, far
too coarse for splitting). A clone copies the weights of its parent after the step at which
the parent first passed the level and continues with fresh minibatches: exact for
``sampling="replacement"`` (every batch is independent). With ``"shuffle"`` (random
reshuffling: a uniform permutation per epoch, sliced into batches) the weights alone are not a
Markov state; the replica's state also holds its position in the epoch and the set of samples the
epoch has used (a bit mask, :data:`MASK_BITS` samples per float). Given the past, the rest of the
epoch's permutation is uniform over the unused samples, so a replica resumed mid-epoch (a clone,
or a run stopped at a level) finishes the epoch on a fresh uniform permutation of its unused
samples (one ``train`` call on those samples) and then draws fresh permutations per epoch: the
same law as one uninterrupted reshuffled run, so AMS is exact for ``"shuffle"`` too. (Before, a
clone started a fresh permutation of all samples mid-epoch: samples reused within an epoch, the
epoch's noise no longer cancelling; ``TrainingEngine(..., exact_epochs=False)``, and
``ams_training_escape(..., exact_epochs=False)`` over it, keep that approximation for comparison.) Time is counted in SGD steps (``time_unit`` = one step in epochs).
"""

from __future__ import annotations

import numpy as np

from .._validation import check_int
from ..training import as_moments, train

__all__ = ["SharpnessScore", "TrainingEngine", "training_coordinate"]

#: names ``coordinate=`` takes besides ``"sv1"``, ``"sv2"``, ...
COORDINATES = ("sv<k>", "sharpness", "sharpness<k>")

#: samples per float of a reshuffled replica's used-sample mask (a sum of distinct powers of 2
#: below 2**52 is exact in float64)
MASK_BITS = 52


class SharpnessScore:
    """Reaction coordinate of a backward SGD escape that sees both routes: down in the mode's
    singular value (diffusive) and up in its sharpness (the catapult).

    Backward escapes of SGD at the paper's learning rates mostly leave the well *upwards*:
    a minibatch throws the mode's weights outwards, the mode's sharpness (the Gauss-Newton
    curvature along it, which grows like the layers' norms to the power ``2 (n - 1)``) passes
    the step-size instability, and the next step throws the singular value past the target
    (docs/rare.md, "AMS over real SGD training"). With ``s`` the mode's singular value of the
    end-to-end map and ``h = v^T Sigma_xx v * sum_i prod_{j != i} s_{j}^2`` its curvature
    (``v`` the mode's input direction, ``s_j`` the mode's singular value of layer ``j``), both
    relative to the start state (``s0``, ``h0``), the score is::

        xi = L                                   if s <= target (the target set B)
        xi = max(ln(s0 / s), L (1 - (h0 / h)^(1 / L)))   otherwise,  L = ln(s0 / target)

    The first branch reaches ``L`` exactly at the target; the second rises like ``ln(h / h0)``
    at first and approaches ``L`` only as the curvature diverges, so ``B`` is the top level set
    ``{xi >= L}`` and AMS stays unbiased (Brehier, Gazeau, Goudenege, Lelievre & Rousset 2016).

    Parameters
    ----------
    target : float > 0
        The mode's singular value that ends an escape (``B = {s <= target}``).
    reference : list of arrays
        The start state's layers ``W_1 ... W_n`` (``(rows, cols)`` each); ``s0 > target``.
    input_cov : (d_in, d_in) array
        ``E[x x^T]`` of the training data.
    mode : int >= 0
        Which singular value (0: the largest).
    """

    takes_layers = True

    def __init__(self, target, reference, input_cov, mode=0):
        self.target, self.mode = float(target), check_int(mode, "mode", minimum=0)
        n_modes = network_rank(reference)
        if self.mode >= n_modes:
            raise ValueError(f"mode must be in [0, {n_modes - 1}] (the network's rank: the smallest side of its "
                             f"layers), got {mode}")
        if not self.target > 0:
            raise ValueError(f"target must be > 0 for coordinate='sharpness', got {target}")
        self.input_cov = np.atleast_2d(np.asarray(input_cov, dtype=float))
        s0, h0 = self.parts([np.asarray(w, dtype=float)[None] for w in reference])
        self.s0, self.h0 = float(s0[0]), float(h0[0])
        if not (self.s0 > self.target and self.h0 > 0):
            raise ValueError(f"the start's singular value {self.s0:.4g} must lie above the target {self.target:.4g} "
                             "(and its layers must be non-zero) for coordinate='sharpness'")
        self.level = float(np.log(self.s0 / self.target))

    def parts(self, layers):
        """The mode's singular value ``s`` and curvature factor ``h`` of ``layers`` ``(n, rows, cols)`` each.

        Parameters
        ----------
        layers : list of arrays (n, rows, cols)
            ``W_1 ... W_n`` of ``n`` states.

        Returns
        -------
        (ndarray (n,), ndarray (n,))
        """
        M = layers[0]
        for W in layers[1:]:
            M = W @ M
        k = self.mode
        _, sv, vt = np.linalg.svd(M)
        v = vt[:, k, :]
        var = np.einsum("ni,ij,nj->n", v, self.input_cov, v)
        sl = np.stack([np.linalg.svd(W, compute_uv=False)[:, k] for W in layers], axis=1) ** 2   # (n, layers)
        others = np.stack([np.prod(np.delete(sl, i, axis=1), axis=1) for i in range(sl.shape[1])], axis=1)
        return sv[:, k], var * others.sum(axis=1)

    def __call__(self, layers):
        """The score ``xi`` of ``layers`` (list of ``(n, rows, cols)``), ``(n,)``.

        Parameters
        ----------
        layers : list of arrays (n, rows, cols)

        Returns
        -------
        ndarray (n,)
        """
        s, h = self.parts(layers)
        L = self.level
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            down = np.log(self.s0 / s)
            up = L * (1.0 - (self.h0 / h) ** (1.0 / L))
        xi = np.maximum(down, up)
        xi[s <= self.target] = L
        return xi

    def config(self):
        """The score's definition, for the result's record.

        Returns
        -------
        dict
        """
        return {"name": "sharpness", "mode": self.mode + 1, "target": self.target, "s0": self.s0, "h0": self.h0,
                "level": self.level}


def network_rank(layers):
    """The largest possible rank of ``M = W_n ... W_1``: the smallest side of any layer.

    Singular values of ``M`` beyond it are identically zero and the layers have no ``k``-th
    singular value there, so ``sv<k>`` and ``sharpness<k>`` need ``k <=`` this.

    Parameters
    ----------
    layers : list of arrays
        ``W_1 ... W_n``, ``(rows, cols)`` each (a leading batch axis is allowed).

    Returns
    -------
    int
    """
    return int(min(min(np.shape(w)[-2:]) for w in layers))


class _SingularValue:
    """The ``k``-th largest singular value of end-to-end maps ``M (n, d_out, d_in)`` -> ``(n,)``
    (a module-level class, not a closure: it pickles, so the engine travels to process pools)."""

    def __init__(self, k):
        self.k, self.__name__ = int(k), f"sv{int(k) + 1}"

    def __call__(self, M):
        return np.linalg.svd(M, compute_uv=False)[:, self.k]


def training_coordinate(coordinate, *, direction, target, init, data):
    """Resolve ``coordinate=`` of :func:`~phasetools.rare.ams_training_escape`.

    Parameters
    ----------
    coordinate : "sv1", "sv2", ..., "sharpness", "sharpness2", ... or callable
        A singular value of ``M``, the two-branch :class:`SharpnessScore` of that mode
        (``direction="down"`` only), or ``f(M (n, d_out, d_in)) -> (n,)``.
    direction : {"up", "down"}
        Direction of the escape in the singular value.
    target : float
        The singular value (or ``f(M)``) that ends an escape.
    init : list of arrays
        The start's layers.
    data : (X, Y), Dataset or Moments
        Training data (its input covariance enters the sharpness).

    Returns
    -------
    (str, callable, float, float, dict or None)
        ``name``, the coordinate, the engine's ``sign``, the target level ``b`` of the oriented
        coordinate, and the score's record (None for ``sv<k>`` and callables).
    """
    sign = 1.0 if direction == "up" else -1.0
    bad = f"coordinate must be one of {COORDINATES} or a function of M, got {coordinate!r}"
    if callable(coordinate):
        return getattr(coordinate, "__name__", "custom"), coordinate, sign, sign * float(target), None
    if not isinstance(coordinate, str):
        raise ValueError(bad)
    for prefix in ("sv", "sharpness"):
        rest = coordinate[len(prefix):] if coordinate.startswith(prefix) else None
        if rest is not None and (rest == "" and prefix == "sharpness" or rest.isdigit() and int(rest) >= 1):
            k = int(rest or 1) - 1
            break
    else:
        raise ValueError(bad)
    n_modes = network_rank(init)
    if k >= n_modes:
        raise ValueError(f"coordinate={coordinate!r} is beyond the network's rank {n_modes} (the smallest side of "
                         f"its layers): coordinate must be sv1..sv{n_modes} or sharpness1..sharpness{n_modes}")
    if prefix == "sv":
        return coordinate, _SingularValue(k), sign, sign * float(target), None
    if direction != "down":
        raise ValueError(f"coordinate={coordinate!r} measures progress of a backward escape: direction must be "
                         f"'down', got {direction!r}")
    score = SharpnessScore(target, init, as_moments(data).input_cov, mode=k)
    return coordinate, score, 1.0, score.level, score.config()


def stream_keys(entropy, indices):
    """Stream keys ``(entropy, index, chunk = 0, 0)`` of the trainer engines, one row per replica.

    Parameters
    ----------
    entropy : int
        Root entropy.
    indices : array of int
        Trajectory indices.

    Returns
    -------
    ndarray (n, 4) of uint64
    """
    idx = np.asarray(indices, dtype=np.uint64)
    out = np.zeros((idx.size, 4), dtype=np.uint64)
    out[:, 0] = np.uint64(int(entropy) % 2**64)
    out[:, 1] = idx
    return out


class TrainingEngine:
    """Minibatch SGD (:func:`phasetools.training.train`) as a splitting engine.

    Parameters
    ----------
    data : (X, Y) or Dataset
        Training samples.
    n_layers, width : int
        The network.
    lr, weight_decay : float
        SGD learning rate and weight decay.
    batch_size : int
        Minibatch size.
    sampling : {"replacement", "shuffle"}
        Minibatch sampling of :func:`~phasetools.training.train`.
    convention : str
        ``"paper"`` or ``"canonical"``.
    coordinate : callable
        ``coordinate(M)`` of the end-to-end maps ``M (n, d_out, d_in)`` -> ``(n,)``, e.g. a
        singular value or ``u^T M v``; one with ``takes_layers = True`` (a
        :class:`SharpnessScore`) gets the list of layers instead and is not multiplied by
        ``sign``.
    sign : {+1, -1}
        +1 when the target lies above the start in the coordinate.
    shapes : list of (rows, cols)
        Layer shapes ``W_1 ... W_n``.
    n_threads : int, optional
        numba threads.
    exact_epochs : bool
        ``sampling="shuffle"`` only: carry the position in the epoch and the epoch's used samples
        in the state (default; the module docstring), or restart a fresh permutation at every call
        (``False``: the approximation of earlier versions, for comparison).
    """

    #: a call's minibatches come from one SeedSequence of the batch's stream keys (AMS advances runs alone)
    batch_streams = True

    def __init__(self, data, *, n_layers, width, lr, weight_decay, batch_size, sampling, convention, coordinate,
                 sign, shapes, n_threads=None, exact_epochs=True):
        self.data, self.n_layers, self.width = data, n_layers, width
        self.kw = dict(n_layers=n_layers, width=width, lr=lr, weight_decay=weight_decay, batch_size=batch_size,
                       sampling=sampling, convention=convention, log_every=1, record_steps=True,
                       n_threads=n_threads)
        self.shapes = [tuple(s) for s in shapes]
        self.sizes = [r * c for r, c in self.shapes]
        self.n_weights = int(sum(self.sizes))
        self.order, self.sign = coordinate, float(sign)
        self.n_calls = 0
        n = int(np.asarray(data[0] if isinstance(data, tuple) else data.X).shape[0])
        self.steps_per_epoch = max(1, n // int(batch_size))
        self.time_unit = 1.0 / self.steps_per_epoch      # one SGD step, in epochs
        self.max_chunk = 16 * self.steps_per_epoch       # record_steps keeps every step of a call
        self.batch_size, self.n_samples = int(batch_size), n
        self.n_words = -(-n // MASK_BITS) if sampling == "shuffle" and exact_epochs else 0
        self.dim = self.n_weights + (1 + self.n_words if self.n_words else 0)   # weights [, phase, mask]

    def state(self, weights):
        """The replica state of flat weights at the start of an epoch (the weights; with reshuffled
        epochs followed by the position in the epoch, 0, and the empty mask of used samples).

        Parameters
        ----------
        weights : array (..., n_weights)

        Returns
        -------
        ndarray (..., dim)
        """
        w = np.asarray(weights, dtype=float)
        return np.concatenate([w, np.zeros(w.shape[:-1] + (self.dim - self.n_weights,))], axis=-1)

    def used(self, x):
        """The samples the current epoch has used, from a state's mask (reshuffled epochs only).

        Parameters
        ----------
        x : array (dim,)

        Returns
        -------
        ndarray of bool (n_samples,)
        """
        words = np.asarray(x, dtype=float)[self.n_weights + 1:]
        bits = np.floor(words[:, None] / 2.0 ** np.arange(MASK_BITS)) % 2
        return bits.ravel()[:self.n_samples] == 1

    def layers(self, x):
        """Flat weights ``x (n, dim)`` as the list of per-layer arrays ``(n, rows, cols)``.

        Parameters
        ----------
        x : array (..., dim)

        Returns
        -------
        list of ndarray (..., rows, cols)
        """
        x = np.asarray(x, dtype=float)
        out, i = [], 0
        for (r, c), s in zip(self.shapes, self.sizes):
            out.append(x[..., i:i + s].reshape(*x.shape[:-1], r, c))
            i += s
        return out

    def coordinate(self, x):
        """``sign * coordinate(M)`` at flat weights ``x (..., dim)`` (a layer score: its value).

        Parameters
        ----------
        x : array (..., dim)

        Returns
        -------
        ndarray (...)
        """
        x = np.asarray(x, dtype=float)
        lead = x.shape[:-1]
        flat = x.reshape(-1, self.dim)
        bad = ~np.all(np.isfinite(flat[:, :self.n_weights]), axis=1)   # diverged: NaN (LAPACK refuses them)
        ws = self.layers(np.where(bad[:, None], 1.0, flat))
        if getattr(self.order, "takes_layers", False):
            out = np.asarray(self.order(ws), dtype=float)
        else:
            M = ws[0]
            for W in ws[1:]:
                M = W @ M
            out = self.sign * np.asarray(self.order(M), dtype=float)
        return np.where(bad, np.nan, out).reshape(lead)

    def streams(self, entropy, indices):
        """Stream keys ``(entropy, index, chunk, 0)``; each :meth:`advance` bumps ``chunk``.

        Parameters
        ----------
        entropy : int
            The run's entropy (the first word of every key).
        indices : array of int (n,)
            The replicas' indices (the second word).

        Returns
        -------
        ndarray of uint64 (n, 4)
            One key per replica, updated in place by :meth:`advance`.
        """
        return stream_keys(entropy, indices)

    def advance(self, x, streams, n_steps, low):
        """Train ``x`` for ``n_steps`` SGD steps (whole epochs, the rest discarded); a replica
        stops at its first step with coordinate ``<= low``.

        The minibatches of one call come from a ``SeedSequence`` of the batch's stream keys
        (so they depend only on which replicas advance together, which the algorithm fixes).

        Parameters
        ----------
        x : array (n, dim)
            The replicas' states (finite).
        streams : ndarray of uint64 (n, 4)
            Their stream keys (:meth:`streams`); the chunk word is bumped in place.
        n_steps : int >= 1
            SGD steps.
        low : float
            Stop level of the coordinate (``-inf``: never stop early).

        Returns
        -------
        tuple (x_end, steps, stopped, xi, path)
            The states after the last step taken ``(n, dim)``, the steps taken ``(n,)``, whether
            each replica stopped at ``low`` or at non-finite weights ``(n,)``, the coordinate after
            each step ``(n, n_steps)`` and the states after each step ``(n, n_steps, dim)`` (NaN
            after a replica's stop).
        """
        n = x.shape[0]
        seq = np.random.SeedSequence([int(v) for v in streams[:, :3].ravel()])
        streams[:, 2] += np.uint64(1)
        self.n_calls += 1
        if self.n_words:
            path = self._epoch_path(np.asarray(x, dtype=float), int(n_steps), seq)
        else:
            path = self._steps(self.data, x, int(n_steps), self.steps_per_epoch, seq)[0]
        xi = self.coordinate(path)
        xi[~np.isfinite(xi)] = np.nan
        below = np.nan_to_num(xi, nan=np.inf) <= low
        bad = ~np.all(np.isfinite(path), axis=2)
        stop_at = below | bad
        stopped = stop_at.any(axis=1)
        steps = np.where(stopped, stop_at.argmax(axis=1) + 1, n_steps)
        after = np.arange(n_steps)[None, :] >= steps[:, None]
        xi[after] = np.nan
        path[after] = np.nan
        x_end = path[np.arange(n), steps - 1]
        return x_end, steps.astype(np.int64), stopped, xi, path

    def _steps(self, data, x, n_steps, spe, seq):
        """``train`` on ``data`` (``spe`` steps per epoch) from the weights of ``x (m, >= n_weights)`` for
        ``n_steps`` steps (whole epochs, the rest discarded): the weights after each step
        (m, n_steps, n_weights) and the batches' sample indices (m, n_steps, batch_size)."""
        epochs = -(-n_steps // spe)
        w = self.layers(np.asarray(x, dtype=float)[:, :self.n_weights])
        run = train(data, epochs=epochs, init=[np.ascontiguousarray(a) for a in w], n_seeds=x.shape[0],
                    layer_log_every=epochs, rng=seq, **self.kw)
        return np.asarray(run.step_params[:, 1:n_steps + 1], dtype=float), run.batch_indices[:, :n_steps]

    def _epoch_path(self, x, n_steps, seq):
        """Reshuffled epochs from states ``x (n, dim)`` (weights, position in the epoch, used-sample mask):
        a replica in mid-epoch first finishes its epoch on a uniform permutation of its unused samples
        (a ``train`` call on them), then all run whole epochs of fresh permutations together. Returns
        the states after each step (n, n_steps, dim)."""
        n, nw, spe = x.shape[0], self.n_weights, self.steps_per_epoch
        X, Y = self.data if isinstance(self.data, tuple) else (self.data.X, self.data.Y)
        phase = np.rint(x[:, nw]).astype(np.int64)
        head = np.where(phase > 0, np.minimum(spe - phase, n_steps), 0)
        seq_rest, *seq_head = seq.spawn(1 + n)
        path = np.empty((n, n_steps, self.dim))
        for j in np.nonzero(head)[0]:
            unused = np.nonzero(~self.used(x[j]))[0]
            w, idx = self._steps((X[unused], Y[unused]), x[j:j + 1], int(head[j]), spe - phase[j], seq_head[j])
            path[j, :head[j]] = self._with_epoch(w, unused[idx], phase[j], x[j, nw + 1:])[0]
        rest = n_steps - head
        go = np.nonzero(rest > 0)[0]
        if go.size:
            start = np.array([path[j, head[j] - 1] if head[j] else x[j] for j in go])   # at an epoch's start
            w, idx = self._steps(self.data, start, int(rest.max()), spe, seq_rest)
            full = self._with_epoch(w, idx, 0, np.zeros(self.n_words))
            for k, j in enumerate(go):
                path[j, head[j]:] = full[k, :rest[j]]
        return path

    def _with_epoch(self, w, idx, phase0, words0):
        """States after each step: weights ``w (m, k, n_weights)``, the position in the epoch and the
        mask of the samples the epoch has used, from the steps' batches ``idx (m, k, B)`` (the first
        step at position ``phase0`` of an epoch whose mask was ``words0``)."""
        m, k = w.shape[:2]
        spe = self.steps_per_epoch
        pad = int(phase0)
        n_ep = -(-(pad + k) // spe)
        bits = np.zeros((m, n_ep * spe, self.n_words))
        rows, steps = np.meshgrid(np.arange(m), pad + np.arange(k), indexing="ij")
        for q in range(idx.shape[2]):
            i = idx[:, :, q]
            np.add.at(bits, (rows, steps, i // MASK_BITS), 2.0 ** (i % MASK_BITS))
        words = np.cumsum(bits.reshape(m, n_ep, spe, self.n_words), axis=2).reshape(m, -1, self.n_words)
        words = words[:, pad:pad + k]
        words[:, :spe - pad] += words0                 # the first (partial) epoch started from words0
        pos = (pad + 1 + np.arange(k)) % spe
        words[:, pos == 0] = 0.0                       # an epoch's last step: the next starts afresh
        return np.concatenate([w, np.broadcast_to(pos[None, :, None], (m, k, 1)), words], axis=2)
