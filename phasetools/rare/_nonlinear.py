"""The nonlinear trainer of :mod:`phasetools.nonlinear` as a splitting engine, and AMS over it.

A replica is a network state (the flat weights of an :class:`~phasetools.nonlinear.MLP`);
advancing a batch of replicas by ``k`` epochs is ``k`` calls of
:func:`phasetools.nonlinear.train` with ``epochs=1`` and ``init=`` the current weights
(``train`` returns only final weights, so a path is read one epoch at a time). With
``sampling="full"`` an epoch is one gradient step and the only noise is the injected one
(``temperature``, ``label_noise``), so the weights are a Markov chain step by step and the
method is exact; with minibatches (``"replacement"``) clones branch at epoch boundaries.
Time is counted in epochs.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from .._rng import seed_sequence, seeds_record
from .._validation import as_float_array, check_choice, check_scalar
from ..nonlinear import MLP, Task, evaluate, fourier_ipr, sgd, train
from ._executor import check_executor
from ._training import stream_keys

__all__ = ["NonlinearEngine", "ams_nonlinear_escape"]

#: reaction coordinates by name (functions of flat weights (n, n_params) -> (n,))
COORDINATES = ("fourier_ipr", "test_acc", "test_loss")


class NonlinearEngine:
    """SGD over a nonlinear network (:func:`phasetools.nonlinear.train`) as a splitting engine.

    Parameters
    ----------
    task : phasetools.nonlinear.Task
        The data (the coordinate may read its test set).
    model : phasetools.nonlinear.MLP
        The network.
    lr, weight_decay : float
        SGD learning rate and coupled weight decay.
    coordinate : {"fourier_ipr", "test_acc", "test_loss"} or callable
        The reaction coordinate of flat weights ``(n, n_params) -> (n,)``: the Fourier IPR
        of the first layer, the test accuracy, the test loss, or any function.
    sign : {+1, -1}
        +1 when the target lies above the start in the coordinate.
    sampling : {"full", "replacement", "shuffle"}
        Minibatch sampling of :func:`~phasetools.nonlinear.train` (``"full"``: one step per epoch).
    batch_size : int, optional
        Minibatch size (ignored with ``"full"``).
    temperature, label_noise : float >= 0
        Injected noise of :func:`~phasetools.nonlinear.train`.
    dtype : {"float64", "float32"}
        Arithmetic of the trainer.
    n_threads : int, optional
        numba threads.
    """

    #: an epoch's noise comes from one SeedSequence of the running replicas' keys (AMS advances runs alone)
    batch_streams = True

    def __init__(self, task, model, *, lr, weight_decay, coordinate="fourier_ipr", sign=1.0, sampling="full",
                 batch_size=None, temperature=0.0, label_noise=0.0, dtype="float64", n_threads=None):
        if not isinstance(task, Task) or not isinstance(model, MLP):
            raise ValueError("task and model must be a phasetools.nonlinear.Task and MLP")
        self.task, self.model, self.sign = task, model, float(sign)
        self.optimizer = sgd(lr, weight_decay)
        self.kw = dict(sampling=check_choice(sampling, "sampling", ("full", "replacement", "shuffle")),
                       batch_size=batch_size, temperature=temperature, label_noise=label_noise, dtype=dtype,
                       log_every=1, n_threads=n_threads)
        if isinstance(coordinate, str):
            self.order = _named_coordinate(check_choice(coordinate, "coordinate", COORDINATES), task, model)
            self.order_name = coordinate
        elif callable(coordinate):
            self.order, self.order_name = coordinate, getattr(coordinate, "__name__", "custom")
        else:
            raise ValueError(f"coordinate must be one of {COORDINATES} or a function of the weights, "
                             f"got {coordinate!r}")
        self.dim = int(model.n_params)
        self.time_unit = 1.0                  # one epoch
        self.max_chunk = 64                   # one train call per epoch: keep chunks short
        self.n_calls = 0

    def coordinate(self, x):
        """``sign * coordinate(weights)`` at flat weights (NaN where a weight is not finite).

        Parameters
        ----------
        x : array (..., n_params)
            Flat weights.

        Returns
        -------
        ndarray (...,)
        """
        x = np.asarray(x, dtype=float)
        lead = x.shape[:-1]
        flat = x.reshape(-1, self.dim)
        out = np.full(flat.shape[0], np.nan)
        ok = np.all(np.isfinite(flat), axis=1)
        if ok.any():
            out[ok] = np.asarray(self.order(flat[ok]), dtype=float)
        return self.sign * out.reshape(lead)

    def streams(self, entropy, indices):
        """Stream keys ``(entropy, index, chunk, 0)``; each epoch of :meth:`advance` bumps ``chunk``.

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
        return stream_keys(entropy, indices)

    def advance(self, x, streams, n_steps, low):
        """Train ``x`` for up to ``n_steps`` epochs; a replica stops at its first epoch with
        coordinate ``<= low`` (or non-finite weights).

        The noise of one epoch comes from a ``SeedSequence`` of the stream keys of the
        replicas still running (so it depends only on which replicas advance together,
        which the algorithm fixes).

        Parameters
        ----------
        x : array (n, n_params)
            Start weights.
        streams : ndarray (n, 4)
            Stream keys (updated in place).
        n_steps : int
            Epochs.
        low : float
            Lower stopping level of the oriented coordinate (``-inf``: none).

        Returns
        -------
        (x_end, steps, stopped, xi_path, path)
            As the engine protocol of ``phasetools.rare`` says.
        """
        n = x.shape[0]
        cur = np.array(x, dtype=float, copy=True)
        path = np.full((n, n_steps, self.dim), np.nan)
        xi = np.full((n, n_steps), np.nan)
        steps = np.full(n, n_steps, dtype=np.int64)
        stopped = np.zeros(n, dtype=bool)
        active = np.arange(n)
        for t in range(int(n_steps)):
            if active.size == 0:
                break
            seq = np.random.SeedSequence([int(v) for v in streams[active, :3].ravel()])
            streams[active, 2] += np.uint64(1)
            self.n_calls += 1
            run = train(self.task, self.model, self.optimizer, epochs=1, n_seeds=active.size, init=cur[active],
                        rng=seq, **self.kw)
            w = np.asarray(run.weights, dtype=float)
            cur[active] = w
            path[active, t] = w
            v = self.coordinate(w)
            xi[active, t] = v
            stop = ~np.isfinite(v) | (v <= low)
            steps[active[stop]] = t + 1
            stopped[active[stop]] = True
            active = active[~stop]
        x_end = path[np.arange(n), steps - 1]
        return x_end, steps, stopped, xi, path


def _named_coordinate(name, task, model):
    """The coordinate called ``name`` (one of :data:`COORDINATES`) of ``task`` and ``model``."""
    return _FourierIPR(model) if name == "fourier_ipr" else _OnTest(task, model, name)


class _FourierIPR:
    """The Fourier IPR of the first layer at flat weights ``(n, n_params)`` (module level: it pickles)."""

    __name__ = "fourier_ipr"

    def __init__(self, model):
        self.model = model

    def __call__(self, w):
        return fourier_ipr(self.model, w)


class _OnTest:
    """A test-set metric (``"test_acc"``, ``"test_loss"``) at flat weights (module level: it pickles)."""

    def __init__(self, task, model, key):
        self.task, self.model, self.key, self.__name__ = task, model, key, key

    def __call__(self, w):
        return evaluate(self.task, self.model, w)[self.key]


def ams_nonlinear_escape(task, model, init, *, lr, weight_decay, target, direction="up", coordinate="fourier_ipr",
                         sampling="full", batch_size=None, temperature=0.0, label_noise=0.0, dtype="float64",
                         start=None, level=None, options=None, rng=None, n_threads=None, progress=False, n_workers=1,
                         scheduler=None, dask_workers=None, connect_timeout=5.0):
    """Mean escape time of a nonlinear network under SGD and noise, in epochs, by AMS.

    A replica is a network state; :func:`phasetools.nonlinear.train` advances it one epoch
    per call (a clone copies its parent's weights after the epoch at which the parent first
    passed the level and continues with fresh noise). The escape is the first epoch at which
    the reaction coordinate reaches ``target``.

    Parameters
    ----------
    task : phasetools.nonlinear.Task
        The data.
    model : phasetools.nonlinear.MLP
        The network.
    init : array (n_params,)
        The start, e.g. a memorising state ``NonlinearRun.weights[0]``.
    lr : float > 0
        Learning rate.
    weight_decay : float >= 0
        Coupled weight decay of the release.
    target : float
        The coordinate's level that ends an escape.
    direction : {"up", "down"}
        Escape when the coordinate rises to (``"up"``) or falls to (``"down"``) ``target``.
    coordinate : {"fourier_ipr", "test_acc", "test_loss"} or callable
        The reaction coordinate (see :class:`NonlinearEngine`).
    sampling : {"full", "replacement", "shuffle"}
        Minibatch sampling (``"full"``: one exact step per epoch).
    batch_size : int, optional
        Minibatch size (not with ``"full"``).
    temperature, label_noise : float >= 0
        Injected noise of :func:`~phasetools.nonlinear.train`.
    dtype : {"float64", "float32"}
        Arithmetic.
    start, level : float, optional
        Levels of ``A`` and ``Sigma`` (both or neither), as in :func:`ams_escape`.
    options : AMSOptions, optional
        ``max_steps``, ``chunk`` and ``n_equilibrate`` are in epochs here.
    rng : None, int, SeedSequence or Generator
        Root of all randomness.
    n_threads : int, optional
        numba threads of the trainer.
    progress : bool
        Show a bar over the AMS runs.
    n_workers, scheduler, dask_workers, connect_timeout
        Where the AMS runs go, as for :func:`~phasetools.rare.ams_escape` (a process pool or a
        Dask cluster); the same ``rng`` gives the same result, bit for bit, for any of them
        (each run is advanced alone). A ``coordinate`` function must be module-level for
        ``n_workers > 1``.

    Returns
    -------
    AMSEscape
        Times in epochs (``dt = 1``, ``convention="epochs"``); ``noise`` records the release's
        configuration; ``cost`` is in epochs of one replica.
    """
    from ._escape import AMSEscape, AMSOptions, _pipeline

    t0 = time.perf_counter()
    opts = AMSOptions() if options is None else options
    if not isinstance(opts, AMSOptions):
        raise ValueError(f"options must be an AMSOptions, got {type(opts).__name__}")
    sign = 1.0 if check_choice(direction, "direction", ("up", "down")) == "up" else -1.0
    where = check_executor(n_workers, scheduler, dask_workers, connect_timeout)
    engine = NonlinearEngine(task, model, lr=lr, weight_decay=weight_decay, coordinate=coordinate, sign=sign,
                             sampling=sampling, batch_size=batch_size, temperature=check_scalar(temperature,
                                                                                                "temperature"),
                             label_noise=label_noise, dtype=dtype, n_threads=n_threads)
    x0 = np.asarray(init, dtype=float).ravel()
    if x0.size != engine.dim:
        raise ValueError(f"init must hold the model's n_params = {engine.dim} weights, got {x0.size}")
    b = sign * float(as_float_array(target, "target"))
    if float(engine.coordinate(x0[None, :])[0]) >= b:
        raise ValueError(f"init is already past the target {target} (direction={direction!r})")
    root = seed_sequence(rng)
    a, sig, est, cost, extra = _pipeline(engine, x0, b, start, level, sign, opts, root, progress, 1.0, where)
    config = {"task": task.name, "task_config": dict(task.config), "dims": list(model.dims),
              "activation": model.activation, "loss": model.loss, "init": x0.tolist()}
    noise = {"lr": float(lr), "weight_decay": float(weight_decay), "sampling": sampling,
             "batch_size": None if batch_size is None else int(batch_size), "temperature": float(temperature),
             "label_noise": float(label_noise), "dtype": dtype}
    return AMSEscape(
        potential="nonlinear_training", potential_config=config, convention="epochs", order=engine.order_name,
        direction=direction, temperature=None, noise=noise, dt=1.0, start=a, level=sig, target=b,
        options=dataclasses.asdict(opts), **est, cost=cost, theory_tau=None, seeds=seeds_record(root),
        stats={"wall_time": time.perf_counter() - t0, "n_threads": n_threads, "n_train_calls": engine.n_calls,
               **extra})
