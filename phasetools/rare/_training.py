"""The SGD trainer of :mod:`phasetools.training` as a splitting engine, and AMS over it.

A replica is a network state (the flat weights of ``W_1 ... W_n``); advancing a batch of
replicas by ``k`` epochs is one call of :func:`phasetools.training.train` with
``init=`` those weights and ``record_steps=True`` (the weights after every SGD step are
read from ``step_params``; an epoch of SGD moves the weights by many relaxation times, far
too coarse for splitting). A clone copies the weights of its parent after the step at which
the parent first passed the level and continues with fresh minibatches: exact for
``sampling="replacement"`` (every batch is independent); with ``"shuffle"`` a clone starts a
fresh permutation (an approximation). Time is counted in SGD steps (``time_unit`` = one
step in epochs).
"""

from __future__ import annotations

import numpy as np

from ..training import train

__all__ = ["TrainingEngine"]


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
        singular value or ``u^T M v``.
    sign : {+1, -1}
        +1 when the target lies above the start in the coordinate.
    shapes : list of (rows, cols)
        Layer shapes ``W_1 ... W_n``.
    n_threads : int, optional
        numba threads.
    """

    def __init__(self, data, *, n_layers, width, lr, weight_decay, batch_size, sampling, convention, coordinate,
                 sign, shapes, n_threads=None):
        self.data, self.n_layers, self.width = data, n_layers, width
        self.kw = dict(n_layers=n_layers, width=width, lr=lr, weight_decay=weight_decay, batch_size=batch_size,
                       sampling=sampling, convention=convention, log_every=1, record_steps=True,
                       n_threads=n_threads)
        self.shapes = [tuple(s) for s in shapes]
        self.sizes = [r * c for r, c in self.shapes]
        self.dim = int(sum(self.sizes))
        self.order, self.sign = coordinate, float(sign)
        self.n_calls = 0
        n = int(np.asarray(data[0] if isinstance(data, tuple) else data.X).shape[0])
        self.steps_per_epoch = max(1, n // int(batch_size))
        self.time_unit = 1.0 / self.steps_per_epoch      # one SGD step, in epochs
        self.max_chunk = 16 * self.steps_per_epoch       # record_steps keeps every step of a call

    def layers(self, x):
        """Flat weights ``x (n, dim)`` as the list of per-layer arrays ``(n, rows, cols)``."""
        x = np.asarray(x, dtype=float)
        out, i = [], 0
        for (r, c), s in zip(self.shapes, self.sizes):
            out.append(x[..., i:i + s].reshape(*x.shape[:-1], r, c))
            i += s
        return out

    def coordinate(self, x):
        """``sign * coordinate(M)`` at flat weights ``x (..., dim)``."""
        x = np.asarray(x, dtype=float)
        lead = x.shape[:-1]
        ws = self.layers(x.reshape(-1, self.dim))
        M = ws[0]
        for W in ws[1:]:
            M = W @ M
        return self.sign * np.asarray(self.order(M), dtype=float).reshape(lead)

    def streams(self, entropy, indices):
        """Stream keys ``(entropy, index, chunk, 0)``; each :meth:`advance` bumps ``chunk``."""
        return stream_keys(entropy, indices)

    def advance(self, x, streams, n_steps, low):
        """Train ``x`` for ``n_steps`` SGD steps (whole epochs, the rest discarded); a replica
        stops at its first step with coordinate ``<= low``.

        The minibatches of one call come from a ``SeedSequence`` of the batch's stream keys
        (so they depend only on which replicas advance together, which the algorithm fixes).
        """
        n = x.shape[0]
        seq = np.random.SeedSequence([int(v) for v in streams[:, :3].ravel()])
        streams[:, 2] += np.uint64(1)
        self.n_calls += 1
        epochs = -(-int(n_steps) // self.steps_per_epoch)
        w = self.layers(x)
        run = train(self.data, epochs=epochs, init=[np.ascontiguousarray(a) for a in w], n_seeds=n,
                    layer_log_every=epochs, rng=seq, **self.kw)
        path = np.asarray(run.step_params[:, 1:n_steps + 1], dtype=float)
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
