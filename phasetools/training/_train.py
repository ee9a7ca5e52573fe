"""``train``: ensembles of minibatch-SGD runs of a bias-free deep linear network.

One numba kernel advances every seed (parallel over seeds); seed ``i`` draws its initial
weights and its batches from its own xoshiro256** stream keyed by ``(entropy, i)``, so the
result does not depend on the thread count and any seed can be re-run alone
(``n_seeds=1, seed_offset=i``). See ``docs/training.md`` for the update rule, the
conventions and the logged quantities.

The trainer is a few small steps: the options (:mod:`._options`) and the data plan
(:func:`_plan_data`), the initial weights (:func:`_initial_weights`), the output arrays
(:class:`_Outputs`), the kernel call on one or more threads (:func:`_run_kernel`) and the
result (:class:`TrainingRun`, :mod:`._run`).
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from dataclasses import dataclass

import numba
import numpy as np

from .._progress import compile_notice
from .._rng import ZIG_F, ZIG_K, ZIG_W, entropy_of, seed_states, trajectory_keys
from .._validation import (as_float_array, check_choice, check_int, check_memory, check_n_layers, check_scalar,
                           check_width)
from ..theory import Convention, layer_shapes, resolve_convention
from . import _kernels as K
from ._data import Dataset, Moments, as_data, as_moments
from ._options import SGD, Logging, Noise, Phase, Schedule, resolve
from ._run import STATUS_NONFINITE, STATUS_OK, TrainingRun

__all__ = ["TrainingRun", "train", "batch_gradient", "resolve_training_convention", "STATUS_OK",
           "STATUS_NONFINITE", "INIT_DEFAULT", "SGD", "Noise", "Logging", "Phase", "Schedule"]

INIT_DEFAULT = "std"
_INITS = ("std", "variance")
_INIT_FANS = ("fan_in", "width")
_DTYPES = {"float32": np.float32, "float64": np.float64}
_MAX_RECORD_VALUES = 20_000_000
_WARM: set = set()


# -- helpers ---------------------------------------------------------------------------
def resolve_training_convention(convention, d_out: int) -> Convention:
    """The convention of a training run; ``"paper"`` means MSE averaged over the ``d_out`` outputs.

    Parameters
    ----------
    convention : str or Convention
        ``"paper"`` (``kappa = 1/d_out``), ``"canonical"`` or a Convention.
    d_out : int
        Output dimension of the data.

    Returns
    -------
    Convention
    """
    if isinstance(convention, str) and convention == "paper":
        return Convention.paper(n_outputs=d_out)
    conv = resolve_convention(convention)
    if conv.coupling == "weight_decay" and conv.n_outputs is not None and conv.n_outputs != d_out:
        raise ValueError(f"convention {conv.name!r} averages over {conv.n_outputs} outputs but the data have "
                         f"{d_out}")
    return conv


def _couplings(weight_decay, gamma, conv):
    """(weight_decay, gamma): the coupled weight decay applied in the update and the canonical coupling."""
    if (weight_decay is None) == (gamma is None):
        raise ValueError("give exactly one of weight_decay (the weight decay added to the gradient, as torch's "
                         "weight_decay) and gamma (the canonical coupling)")
    if weight_decay is not None:
        b = check_scalar(weight_decay, "weight_decay")
        return b, b / (2.0 * conv.kappa)
    g = check_scalar(gamma, "gamma")
    return 2.0 * conv.kappa * g, g


def _dtype_name(dtype) -> str:
    if isinstance(dtype, str):
        return check_choice(dtype, "dtype", tuple(_DTYPES))
    name = np.dtype(dtype).name if dtype in (np.float32, np.float64) else None
    if name is None:
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    return name


def _numerical_rank(m) -> int:
    s = np.linalg.svd(m, compute_uv=False)
    return int(np.sum(s > 1e-10 * max(1.0, float(s[0])))) if s.size else 0


def _flat_init(init, shapes, n_seeds):
    """Explicit initial weights (list of per-layer arrays, or a TrainingRun) -> (n_seeds, P) float64."""
    if isinstance(init, TrainingRun):
        if init.layer_shapes != shapes:
            raise ValueError(f"init: the run's layer shapes {init.layer_shapes} differ from {shapes}")
        flat = np.array(init.final_params, dtype=np.float64)  # a copy: training must never change the run
        if not np.all(np.isfinite(flat)):
            raise ValueError("init: the run has non-finite final weights (a diverged seed)")
    else:
        if not isinstance(init, (list, tuple)) or len(init) != len(shapes):
            raise ValueError(f"init must be 'std', 'variance', a TrainingRun or a list of {len(shapes)} "
                             f"weight arrays with shapes {shapes} (optionally with a leading seed axis)")
        mats = [as_float_array(w, f"init[{k}]") for k, w in enumerate(init)]
        lead = {m.shape[0] for m in mats if m.ndim == 3}
        if len(lead) > 1:
            raise ValueError(f"init: the layers have different numbers of seeds {sorted(lead)}")
        S = lead.pop() if lead else 1
        cols = []
        for k, (m, shp) in enumerate(zip(mats, shapes)):
            if m.shape == shp:
                m = np.broadcast_to(m, (S,) + shp)
            elif m.shape != (S,) + shp:
                raise ValueError(f"init[{k}] must have shape {shp} or ({S}, {shp[0]}, {shp[1]}), "
                                 f"got {m.shape}")
            cols.append(m.reshape(S, -1))
        flat = np.concatenate(cols, axis=1)
    if n_seeds is None:
        return flat
    if flat.shape[0] == 1:
        return np.repeat(flat, n_seeds, axis=0)
    if flat.shape[0] != n_seeds:
        raise ValueError(f"n_seeds = {n_seeds} but init holds {flat.shape[0]} seeds")
    return flat


def _init_scales(shapes, init, init_fan, width):
    scales = []
    for r, c in shapes:
        fan = c if init_fan == "fan_in" else width
        s = fan ** -0.5 if init == "std" else fan ** -0.25
        scales.append(np.full(r * c, s))
    return np.concatenate(scales)


class _Layout:
    """Offsets of the flat weight vector and of the kernel's work buffers."""

    def __init__(self, d_in, d_out, n_layers, width):
        self.shapes = layer_shapes(d_in, d_out, n_layers, width)
        self.dims = np.array([d_in] + [width] * (n_layers - 1) + [d_out], dtype=np.int64)
        sizes = [r * c for r, c in self.shapes]
        self.offs = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.n_params = int(self.offs[-1])
        self.poffs = np.concatenate([[0], np.cumsum(self.dims * d_in)]).astype(np.int64)
        self.soffs = np.concatenate([[0], np.cumsum(self.dims * d_out)]).astype(np.int64)
        self.d_in, self.d_out, self.n = d_in, d_out, n_layers

    def buffers(self, S, dtype):
        pre = np.zeros((S, int(self.poffs[-1])), dtype=dtype)
        pre[:, :self.d_in * self.d_in] = np.eye(self.d_in, dtype=dtype).ravel()
        suf = np.zeros((S, int(self.soffs[-1])), dtype=dtype)
        sn = int(self.soffs[self.n])
        suf[:, sn:sn + self.d_out * self.d_out] = np.eye(self.d_out, dtype=dtype).ravel()
        G = np.zeros((S, self.d_out * self.d_in), dtype=dtype)
        C = np.zeros((S, self.d_out * int(self.dims.max())), dtype=dtype)
        grad = np.zeros((S, self.n_params), dtype=dtype)
        return pre, suf, G, C, grad


@dataclass(frozen=True)
class _DataPlan:
    """The data as the kernel sees them (one of three modes) and the batch arithmetic."""

    sampling: str
    n_samples: int | None
    batch_size: int | None
    steps_per_epoch: int
    moments: Moments
    X: np.ndarray
    Y: np.ndarray
    mxx: np.ndarray
    myx: np.ndarray
    mode: int
    scale_full: float
    scale_last: float


def _plan_moments(d: Moments, sgd: SGD, noise: Noise, conv, dt) -> _DataPlan:
    if sgd.batch_size is not None:
        raise ValueError("batch_size must be None for training on moments (every step is full-batch)")
    if noise.label_noise > 0:
        raise ValueError("label_noise must be 0 for training on moments (there are no samples to perturb); "
                         "train on a finite sample (X, Y) instead")
    scale = 2.0 * conv.kappa
    return _DataPlan("moments", None, None, 1, d, np.zeros((1, d.d_in), dtype=dt), np.zeros((1, d.d_out), dtype=dt),
                     np.ascontiguousarray(d.input_cov, dtype=dt), np.ascontiguousarray(d.cross_cov, dtype=dt),
                     K.MODE_MOMENTS, scale, scale)


def _plan_samples(d: Dataset, sgd: SGD, conv, dt) -> _DataPlan:
    X = np.ascontiguousarray(d.X, dtype=dt)
    Y = np.ascontiguousarray(d.Y, dtype=dt)
    N = X.shape[0]
    if sgd.sampling == "full" and sgd.batch_size not in (None, N):
        raise ValueError(f"batch_size must be None or N = {N} with sampling='full' (one full-batch step per "
                         f"epoch), got {sgd.batch_size}")
    B = N if sgd.batch_size is None else sgd.batch_size
    if B > N and sgd.drop_last:
        raise ValueError(f"batch_size must be <= the number of samples N = {N} with drop_last=True "
                         f"(an epoch would have no step), got {B}; use drop_last=False for one "
                         f"full-batch step per epoch")
    spe = N // B if sgd.drop_last else -(-N // B)
    if sgd.sampling in ("shuffle", "full"):
        B = min(B, N)
        last = N - (spe - 1) * B
    else:
        last = B
    mom = Moments.from_data(X.astype(np.float64), Y.astype(np.float64))
    mode = K.MODE_REPLACE if sgd.sampling == "replacement" else K.MODE_SHUFFLE
    return _DataPlan(sgd.sampling, N, B, spe, mom, X, Y, np.zeros((X.shape[1], X.shape[1]), dtype=dt),
                     np.zeros((Y.shape[1], X.shape[1]), dtype=dt), mode, 2.0 * conv.kappa / B,
                     2.0 * conv.kappa / last)


def _plan_data(d, sgd, noise, conv, dt, n_layers, width) -> _DataPlan:
    """The data plan, after checking that the network can represent the data's cross-covariance."""
    plan = _plan_moments(d, sgd, noise, conv, dt) if isinstance(d, Moments) else _plan_samples(d, sgd, conv, dt)
    rank = _numerical_rank(plan.moments.cross_cov)
    if n_layers >= 2 and width < rank:
        raise ValueError(f"width must be >= {rank}, the rank of the data's cross-covariance that the network "
                         f"must represent, got {width}")
    return plan


def _test_moments(test, d_in, d_out):
    if test is None:
        return None
    m = as_moments(test, "test")
    if (m.d_in, m.d_out) != (d_in, d_out):
        raise ValueError(f"test has dimensions {m.d_in} -> {m.d_out}, the training data {d_in} -> {d_out}")
    return m


def _initial_weights(init, lay, n_seeds, init_fan, width, entropy, seed_offset):
    """``(theta0 float64 (S, P), init_name, seed_index, states, compile_time)``: weights drawn from
    each seed's stream (``init`` a name) or given; the streams are advanced past the draw."""
    if isinstance(init, str):
        check_choice(init, "init", _INITS)
        S = 1 if n_seeds is None else check_int(n_seeds, "n_seeds", 1)
        theta0 = None
    else:
        theta0 = _flat_init(init, lay.shapes, None if n_seeds is None else check_int(n_seeds, "n_seeds", 1))
        S = theta0.shape[0]
    seed_index = np.arange(seed_offset, seed_offset + S, dtype=np.int64)
    states = seed_states(trajectory_keys(entropy, seed_index))
    compile_time = 0.0
    if theta0 is None:
        if "draw" not in _WARM:
            t0 = time.perf_counter()
            K.draw_normals(states[:1].copy(), np.ones(2), ZIG_K, ZIG_W, ZIG_F, np.empty((1, 2)))
            compile_time += time.perf_counter() - t0
            _WARM.add("draw")
        theta0 = np.empty((S, lay.n_params))
        K.draw_normals(states, _init_scales(lay.shapes, init, init_fan, width), ZIG_K, ZIG_W, ZIG_F, theta0)
    return theta0, (init if isinstance(init, str) else "given"), seed_index, states, compile_time


def _log_epochs(epochs, every):
    return np.array(sorted(set(range(0, epochs + 1, every)) | {epochs}), dtype=np.int64)


class _Outputs:
    """The kernel's output arrays of ``S`` seeds: logs (``arrays``) and the recorded steps."""

    def __init__(self, S, lay, log_epochs, layer_epochs, total_steps, batch_width, record, theta):
        kmax = max(min(r, c) for r, c in lay.shapes)
        L = log_epochs.size
        self.arrays = (np.zeros(S, dtype=np.int64), np.zeros(S, dtype=np.int8), np.full((S, L), np.nan),
                       np.full((S, L), np.nan), np.full((S, L), np.nan), np.full((S, L), np.nan),
                       np.full((S, L, min(lay.d_in, lay.d_out)), np.nan),
                       np.full((S, layer_epochs.size, lay.n, kmax), np.nan))
        P = lay.n_params
        if record:
            if S * (total_steps * (batch_width + P) + P) > _MAX_RECORD_VALUES:
                raise ValueError(f"record_steps would keep {S * (total_steps * (batch_width + P) + P)} values "
                                 f"(more than {_MAX_RECORD_VALUES}); record fewer seeds or epochs")
            rec_idx = np.full((S, total_steps, batch_width), -1, dtype=np.int64)
            rec_params = np.empty((S, total_steps + 1, P), dtype=theta.dtype)
            rec_params[:, 0] = theta
        else:
            rec_idx = np.full((S, 0, 1), -1, dtype=np.int64)
            rec_params = np.empty((S, 0, P), dtype=theta.dtype)
        self.record = (bool(record), rec_idx, rec_params)

    def rows(self, s):
        """The outputs and records of seed ``s`` alone (views)."""
        return tuple(o[s:s + 1] for o in self.arrays), (self.record[0], *(r[s:s + 1] for r in self.record[1:]))


def _monitor(train_mom, test_mom, conv, weight_decay):
    """The float64 moments and constants of the logged quantities (the kernel's ``monitor``)."""
    f64 = [np.ascontiguousarray(a, dtype=np.float64)
           for a in (train_mom.input_cov, train_mom.cross_cov, train_mom.output_cov)]
    if test_mom is not None:
        t64 = [np.ascontiguousarray(a, dtype=np.float64)
               for a in (test_mom.input_cov, test_mom.cross_cov, test_mom.output_cov)]
    else:
        t64 = [np.zeros_like(a) for a in f64]
    return (*f64, test_mom is not None, *t64, float(conv.kappa), float(weight_decay))


@dataclass(frozen=True)
class _Kernel:
    """The arguments of :func:`._kernels.train_kernel` that every seed shares; calling it runs
    seeds ``lo <= s < hi`` of ``run = (theta, states)``."""

    data: tuple
    layout: tuple
    sgd: tuple
    schedule: tuple
    monitor: tuple
    noise: tuple

    def __call__(self, lo, hi, run, bufs, outs, record, schedule=None):
        K.train_kernel(lo, hi, run, self.data, self.layout, self.sgd, self.schedule if schedule is None else schedule,
                       self.monitor, bufs, outs, record, self.noise)


def _warm_up(kernel, theta, states, bufs, outputs, dtype_name) -> float:
    """Compile (or load from the on-disk cache) on a throw-away run of no epochs; the seconds it took."""
    if dtype_name in _WARM:
        return 0.0
    t0 = time.perf_counter()
    one = lambda a: a[:1].copy()  # noqa: E731
    empty = kernel.schedule[1][:0]
    rec = outputs.record
    kernel(0, 1, (one(theta), one(states)), tuple(one(a) for a in bufs), tuple(one(a) for a in outputs.arrays),
           (rec[0], one(rec[1]), one(rec[2])), schedule=(0, empty, empty))
    _WARM.add(dtype_name)
    return time.perf_counter() - t0


def _run_kernel(kernel, theta, states, bufs, outputs, n_threads, lay):
    """Run every seed, on one thread or ``n_threads`` (each taking the next seed). Returns the wall time."""
    S = theta.shape[0]
    t0 = time.perf_counter()
    if n_threads == 1:
        kernel(0, S, (theta, states), bufs, outputs.arrays, outputs.record)
        return time.perf_counter() - t0
    dt = theta.dtype

    def thread_local():
        """Work buffers, weights and stream of the seed a thread is running, its own: rows of the
        shared (seed, ...) arrays are shorter than a cache line (a stream is 32 bytes), and
        two threads writing neighbouring rows would keep stealing the line from each other."""
        return ((*lay.buffers(1, dt), np.zeros((1, bufs[5].shape[1]), np.int64), np.zeros((1, bufs[6].shape[1]), dt)),
                np.empty((1, theta.shape[1]), dt), np.empty((1, states.shape[1]), states.dtype))

    def work(s, local):
        local_bufs, th1, st1 = local
        th1[0] = theta[s]
        st1[0] = states[s]
        kernel(0, 1, (th1, st1), local_bufs, *outputs.rows(s))
        theta[s] = th1[0]
        states[s] = st1[0]

    _run_threads(work, S, n_threads, thread_local)
    return time.perf_counter() - t0


# -- the trainer -------------------------------------------------------------------------
def train(data, *, n_layers, width, epochs, lr=None, weight_decay=None, gamma=None, convention="canonical",
          batch_size=None, sampling="shuffle", drop_last=True, test=None, dtype="float64", init=INIT_DEFAULT,
          init_fan="fan_in", n_seeds=None, seed_offset=0, log_every=1, layer_log_every=None,
          record_steps=False, temperature=0.0, label_noise=0.0, rng=None, n_threads=None, sgd=None, noise=None,
          logging=None, schedule=None) -> TrainingRun:
    """Train ``n_seeds`` independent copies of ``W_n ... W_1`` (no biases) with minibatch SGD.

    Each step, on a batch ``B`` (``kappa`` from ``convention``)::

        g = grad_W [kappa * mean_{i in B} ||y_i - W_n...W_1 x_i||^2] + weight_decay * W
        W = W - lr * g

    which is ``torch.optim.SGD(params, lr, weight_decay=weight_decay)`` on ``torch.nn.MSELoss()``
    for ``convention="paper"`` (``kappa = 1/d_out``) and gradient descent on the canonical
    ``U = E||y - Mx||^2 + gamma sum ||W_i||^2`` (``weight_decay = 2 gamma``) for ``"canonical"``.
    Optional noise (both off by default): ``label_noise = sigma`` replaces the batch's targets
    by ``y_i + sigma z_i`` (fresh ``z_i ~ N(0, I)`` every step), and ``temperature = T``
    makes the step SGLD::

        W = W - lr * g + sqrt(2 * lr * T) * xi,    xi ~ N(0, 1) per weight and step

    the Euler-Maruyama step of ``dW = -grad L dt + sqrt(2 T) dB`` in Langevin time
    ``t = lr * steps``, ``L`` the objective in ``convention`` (``kappa * data + (weight_decay/2)
    sum ||W_i||^2``), so ``T`` is in that convention's loss units and the stationary law
    (lr -> 0, no minibatch noise) is ``exp(-L / T)`` (canonical: ``T_canonical = T / kappa``).

    Parameters
    ----------
    data : (X, Y), Dataset, Moments or GaussianTeacher
        Samples in rows; or moments (a teacher means its population moments), then every
        epoch is one full-batch gradient step on the exact loss of those moments.
    n_layers, width : int
        Weight matrices (``d_in -> width -> ... -> width -> d_out``) and hidden width.
    lr : float > 0
    epochs : int >= 0
        An epoch is ``floor(N / batch_size)`` steps (``ceil`` with ``drop_last=False``).
    weight_decay, gamma : float >= 0 (exactly one)
        ``weight_decay``: the coupled weight decay added to the gradient (torch's
        ``weight_decay``; the paper's beta). ``gamma``: the canonical coupling,
        ``weight_decay = 2 kappa gamma``.
    convention : "canonical" (default), "paper" or a Convention
        Fixes ``kappa`` of the data term and the units of ``loss``. ``"paper"``: MSE mean
        over samples and ``d_out`` outputs.
    batch_size : int, optional
        Default: all ``N`` samples (full batch). Must be ``<= N`` unless ``drop_last=False``.
    sampling : "shuffle" | "replacement" | "full"
        ``"shuffle"``: a fresh uniform permutation each epoch, batches are its consecutive
        slices (random reshuffling, torch ``DataLoader(shuffle=True)``); ``"replacement"``:
        every batch draws ``batch_size`` indices uniformly with replacement; ``"full"``: one
        full-batch step per epoch (``batch_size`` None or ``N``). Recorded in the run's
        ``sampling`` (``"moments"`` for training on moments).
    drop_last : bool
        ``True`` (default): the remainder ``N mod batch_size`` of each permutation is not
        used (``DataLoader(drop_last=True)``). ``False``: the last, smaller batch is a step
        too (torch's default; with ``batch_size > N`` each epoch is one full-batch step).
    test : (X, Y), Dataset, Moments or GaussianTeacher, optional
        Where ``test_mse`` is measured (a teacher: the exact population MSE).
    dtype : "float64" | "float32"
        Precision of the weights, data and every training operation.
    init : "std" | "variance" | list of arrays | TrainingRun
        ``"std"`` (default): ``W_ij ~ N(0, s^2)`` with ``s = 1/sqrt(f)``; ``"variance"``:
        ``s^2 = 1/sqrt(f)`` (the two readings of the paper's ``N(0, 1/sqrt(w))``), ``f``
        from ``init_fan``. Arrays (``(rows, cols)`` or ``(n_seeds, rows, cols)`` per layer)
        or a previous run (its ``final_params``) start from given weights.
    init_fan : "fan_in" | "width"
        ``f`` = the layer's input dimension, or the hidden width for every layer.
    n_seeds : int, optional
        Runs (default 1, or the seeds of an explicit ``init``). Seed ``i`` uses stream
        ``seed_offset + i`` of ``rng``: initial weights first, then its batches.
    log_every : int >= 1
        Epochs between log points (epoch 0 and the last epoch are always logged).
    layer_log_every : int >= 1, optional
        Epochs between log points of the per-layer singular values (default ``log_every``;
        ``layer_log_epochs``). Each costs tens of microseconds per seed (a 10 x 10 Jacobi
        SVD), more than an epoch of the paper's set-up: log them sparsely in long runs.
    record_steps : bool
        Keep every step's batch indices (``batch_indices``, -1 padded) and weights
        (``step_params``, step 0 = initial) for small runs, e.g. to replay them in torch.
    temperature : float >= 0
        Injected isotropic Gaussian noise (SGLD): ``sqrt(2 lr T) * N(0, 1)`` added to every
        weight after every update, ``T`` in the loss units of ``convention``. 0 (default): off.
    label_noise : float >= 0
        Standard deviation of fresh Gaussian noise added to every target of every batch,
        each step (not for moments). 0 (default): off. The normals of both come from the
        seed's own stream (each step: its batch, then the label noise, then the injected
        noise), so results stay independent of the thread count.
    rng : None, int, SeedSequence or Generator
        Root of the streams; its entropy is recorded in ``seeds``.
    n_threads : int, optional
        Threads for this call (default ``numba.get_num_threads()``), each taking the next
        seed; the result does not depend on it.
    sgd : SGD, optional
        ``lr``, ``batch_size``, ``weight_decay`` / ``gamma``, ``sampling`` and ``drop_last``
        as one object (then leave those keywords out).
    noise : Noise, optional
        ``temperature`` and ``label_noise`` as one object.
    logging : Logging, optional
        ``log_every``, ``layer_log_every``, ``record_steps`` and ``test`` as one object.
    schedule : Schedule, optional
        Phases with changed options (weight decay, learning rate, batch size, injected or
        label noise) run first, each from the weights the previous one ended with; the rest
        of ``epochs`` uses the options above. Phases take at most ``epochs``; each phase is
        logged every ``min(log_every, its epochs)`` epochs from its start and at its end
        (``layer_log_every`` likewise); not with ``record_steps``. Streams: see
        :class:`Schedule`. None (default): no phases, the run is unchanged.

    Returns
    -------
    TrainingRun
        Logs, checkpoints and ``stats`` (``wall_time``, ``compile_time``, ``steps_total``,
        ``steps_per_second``, ``n_nonfinite``, ``n_threads``).
    """
    sgd = resolve(SGD, sgd, dict(lr=lr, batch_size=batch_size, weight_decay=weight_decay, gamma=gamma,
                                 sampling=sampling, drop_last=drop_last), "sgd")
    noise = resolve(Noise, noise, dict(temperature=temperature, label_noise=label_noise), "noise")
    logging = resolve(Logging, logging, dict(log_every=log_every, layer_log_every=layer_log_every,
                                             record_steps=record_steps, test=test), "logging")
    if schedule is not None:
        return _train_scheduled(data, schedule, n_layers=n_layers, width=width, epochs=epochs, sgd=sgd, noise=noise,
                                logging=logging, convention=convention, dtype=dtype, init=init, init_fan=init_fan,
                                n_seeds=n_seeds, seed_offset=seed_offset, rng=rng, n_threads=n_threads)
    return _train(data, n_layers=n_layers, width=width, epochs=epochs, sgd=sgd, noise=noise, logging=logging,
                  convention=convention, dtype=dtype, init=init, init_fan=init_fan, n_seeds=n_seeds,
                  seed_offset=seed_offset, rng=rng, n_threads=n_threads)


def _train(data, *, n_layers, width, epochs, sgd, noise, logging, convention, dtype, init, init_fan, n_seeds,
           seed_offset, rng, n_threads) -> TrainingRun:
    """:func:`train` on resolved option objects."""
    n = check_n_layers(n_layers, minimum=1)
    width = check_width(width)
    d = as_data(data)
    d_in, d_out = (d.d_in, d.d_out) if isinstance(d, Moments) else (d.X.shape[1], d.Y.shape[1])
    conv = resolve_training_convention(convention, d_out)
    wd, gamma = _couplings(sgd.weight_decay, sgd.gamma, conv)
    epochs = check_int(epochs, "epochs", 0)
    seed_offset = check_int(seed_offset, "seed_offset", 0)
    check_choice(init_fan, "init_fan", _INIT_FANS)
    dtype_name = _dtype_name(dtype)
    dt = _DTYPES[dtype_name]
    plan = _plan_data(d, sgd, noise, conv, dt, n, width)
    test_mom = _test_moments(logging.test, d_in, d_out)
    # the bytes of weights, work buffers and logs, before anything is allocated
    n_par = sum(r * c for r, c in layer_shapes(d_in, d_out, n, width))
    n_s = n_seeds if isinstance(n_seeds, int) and n_seeds > 0 else 1
    n_log = epochs // logging.log_every + 2
    n_layer_log = epochs // (logging.layer_log_every or logging.log_every) + 2
    check_memory(8 * n_s * (6 * n_par + n_log * (5 + min(d_in, d_out)) + n_layer_log * n * width),
                 f"training n_seeds = {n_s} x {n_par} weights (n_layers = {n}, width = {width}) for epochs = "
                 f"{epochs} logged every {logging.log_every}")
    lay = _Layout(d_in, d_out, n, width)
    entropy = entropy_of(rng)
    compile_notice([K.draw_normals, K.train_kernel], what="training kernels")
    theta0, init_name, seed_index, states, compile_time = _initial_weights(init, lay, n_seeds, init_fan, width,
                                                                           entropy, seed_offset)
    theta = np.ascontiguousarray(theta0, dtype=dt)
    initial = theta.copy()
    S = theta.shape[0]
    layer_every = logging.log_every if logging.layer_log_every is None else logging.layer_log_every
    log_epochs, layer_epochs = _log_epochs(epochs, logging.log_every), _log_epochs(epochs, layer_every)
    outputs = _Outputs(S, lay, log_epochs, layer_epochs, epochs * plan.steps_per_epoch, plan.batch_size or 0,
                       logging.record_steps, theta)
    kernel = _Kernel(
        data=(plan.mode, plan.X, plan.Y, plan.mxx, plan.myx), layout=(lay.dims, lay.offs, lay.poffs, lay.soffs),
        sgd=(np.array([sgd.lr, wd, plan.scale_full, plan.scale_last, 2.0 * conv.kappa], dtype=dt),
             plan.batch_size or 0, plan.steps_per_epoch, plan.n_samples or 0),
        schedule=(epochs, log_epochs, layer_epochs), monitor=_monitor(plan.moments, test_mom, conv, wd),
        noise=(math.sqrt(2.0 * sgd.lr * noise.temperature), noise.label_noise, ZIG_K, ZIG_W, ZIG_F))
    bufs = _buffers(lay, S, dt, plan, noise)
    threads = min(numba.get_num_threads() if n_threads is None else check_int(n_threads, "n_threads", 1), S)
    compile_time += _warm_up(kernel, theta, states, bufs, outputs, dtype_name)
    wall = _run_kernel(kernel, theta, states, bufs, outputs, threads, lay)
    out_steps, out_status, out_train, out_test, out_loss, out_norm, out_sv, out_lsv = outputs.arrays
    record, rec_idx, rec_params = outputs.record
    steps_total = int(out_steps.sum())
    stats = {"wall_time": wall, "compile_time": compile_time, "steps_total": steps_total,
             "steps_per_second": steps_total / wall if wall > 0 else math.inf,
             "n_nonfinite": int(np.sum(out_status == K.STATUS_NONFINITE)), "n_threads": threads}
    return TrainingRun(
        n_layers=n, width=width, d_in=int(d_in), d_out=int(d_out), lr=sgd.lr, weight_decay=wd, gamma=gamma,
        convention=conv, batch_size=plan.batch_size, epochs=epochs, n_samples=plan.n_samples,
        sampling=plan.sampling, drop_last=sgd.drop_last, dtype=dtype_name, init=init_name, init_fan=init_fan,
        log_every=logging.log_every, layer_log_every=layer_every, seed_offset=seed_offset, record_steps=record,
        train_moments=plan.moments, test_moments=test_mom, steps_per_epoch=int(plan.steps_per_epoch),
        seed_index=seed_index, log_epochs=log_epochs, layer_log_epochs=layer_epochs, train_mse=out_train,
        test_mse=out_test if test_mom is not None else None, loss=out_loss, weight_norm=out_norm,
        singular_values=out_sv, layer_singular_values=out_lsv, steps=out_steps, status=out_status,
        initial_params=initial, final_params=theta, batch_indices=rec_idx if record else None,
        step_params=rec_params if record else None, temperature=noise.temperature,
        label_noise=noise.label_noise, seeds=(int(entropy),), stats=stats)


def _phase_options(phase: Phase, sgd: SGD, noise: Noise):
    """The (SGD, Noise) of one phase: the run's own with the phase's options in their place."""
    def pick(a, b):
        return b if a is None else a

    s = dataclasses.replace(sgd, lr=pick(phase.lr, sgd.lr), batch_size=pick(phase.batch_size, sgd.batch_size))
    if phase.weight_decay is not None:
        s = dataclasses.replace(s, weight_decay=phase.weight_decay, gamma=None)
    nz = Noise(temperature=pick(phase.temperature, noise.temperature),
               label_noise=pick(phase.label_noise, noise.label_noise))
    return s, nz


def _carry(run: TrainingRun, bad: np.ndarray) -> list:
    """A run's final weights per layer (seed, rows, cols), zero for the seeds in ``bad`` (diverged)."""
    flat = np.array(run.final_params, dtype=np.float64)
    flat[bad] = 0.0
    out, k = [], 0
    for r, c in run.layer_shapes:
        out.append(flat[:, k:k + r * c].reshape(-1, r, c))
        k += r * c
    return out


def _train_scheduled(data, schedule, *, epochs, sgd, noise, logging, init, n_seeds, seed_offset, rng,
                     **common) -> TrainingRun:
    """:func:`train` with a :class:`Schedule`: one :func:`_train` per phase and one for the rest, joined."""
    if not isinstance(schedule, Schedule):
        raise ValueError(f"schedule must be a Schedule, got {type(schedule).__name__}")
    if logging.record_steps:
        raise ValueError("record_steps must be False with a schedule")
    epochs = check_int(epochs, "epochs", 0)
    if schedule.epochs > epochs:
        raise ValueError(f"epochs must be >= the schedule's {schedule.epochs} epochs, got {epochs}")
    entropy = entropy_of(rng)
    parts = [(p.epochs, *_phase_options(p, sgd, noise)) for p in schedule.phases]
    parts.append((epochs - schedule.epochs, sgd, noise))
    children = np.random.SeedSequence(entropy).spawn(len(parts) - 1)
    runs, state, bad, div_part = [], init, None, None
    for k, (e, s, nz) in enumerate(parts):
        log = dataclasses.replace(logging, log_every=max(1, min(logging.log_every, e)),
                                  layer_log_every=max(1, min(logging.layer_log_every or logging.log_every, e)))
        run = _train(data, epochs=e, sgd=s, noise=nz, logging=log, init=state, n_seeds=n_seeds if k == 0 else None,
                     seed_offset=seed_offset, rng=entropy if k == 0 else children[k - 1], **common)
        if bad is None:
            bad, div_part = np.zeros(run.n_seeds, bool), np.full(run.n_seeds, len(parts))
        new = (run.status == STATUS_NONFINITE) & ~bad
        div_part[new], bad = k, bad | new
        runs.append(run)
        state = _carry(run, bad)
    table = np.array([[r.epochs, r.lr, np.nan if r.batch_size is None else r.batch_size, r.weight_decay,
                       r.temperature, r.label_noise] for r in runs[:-1]], dtype=float)
    return _join(runs, logging, entropy, table, div_part)


def _join(runs, logging, entropy, table, div_part) -> TrainingRun:
    """The parts of a scheduled run as one run: logs joined (a later part's epoch 0 repeats the
    previous end and is dropped), the first part's initial weights, the last part's options;
    a seed's logs after the part in which it diverged are NaN."""
    first, last = runs[0], runs[-1]
    offsets = np.cumsum([0] + [r.epochs for r in runs])
    def keep(k):
        return slice(1 if k else 0, None)

    def part(name):
        return np.concatenate([np.full(getattr(r, name)[keep(k)].size, k) for k, r in enumerate(runs)])

    def cat(name, ax):
        return np.concatenate([getattr(r, name)[(slice(None),) * ax + (keep(k),)] for k, r in enumerate(runs)],
                              axis=ax)

    fields = {name: cat(name, 1) for name in ("train_mse", "loss", "weight_norm", "singular_values",
                                              "layer_singular_values")}
    fields["test_mse"] = None if first.test_mse is None else cat("test_mse", 1)
    log_part, layer_part = part("log_epochs"), part("layer_log_epochs")
    for s in np.nonzero(div_part < len(runs))[0]:
        for name, p in (("train_mse", log_part), ("test_mse", log_part), ("loss", log_part),
                        ("weight_norm", log_part), ("singular_values", log_part), ("layer_singular_values", layer_part)):
            if fields[name] is not None:
                fields[name][s, p > div_part[s]] = np.nan
    steps = sum(np.where(div_part >= k, r.steps, 0) for k, r in enumerate(runs))
    status = np.where(div_part < len(runs), STATUS_NONFINITE, STATUS_OK).astype(first.status.dtype)
    stats = {k: sum(r.stats.get(k, 0) for r in runs) for k in ("wall_time", "compile_time", "steps_total",
                                                               "n_nonfinite")}
    stats["steps_per_second"] = stats["steps_total"] / stats["wall_time"] if stats["wall_time"] > 0 else math.inf
    stats["n_threads"] = max(r.stats.get("n_threads", 1) for r in runs)
    return dataclasses.replace(
        last, epochs=int(offsets[-1]), init=first.init, log_every=logging.log_every,
        layer_log_every=logging.layer_log_every or logging.log_every,
        log_epochs=np.concatenate([r.log_epochs[keep(k)] + offsets[k] for k, r in enumerate(runs)]).astype(np.int64),
        layer_log_epochs=np.concatenate([r.layer_log_epochs[keep(k)] + offsets[k]
                                         for k, r in enumerate(runs)]).astype(np.int64),
        steps=steps.astype(first.steps.dtype), status=status, initial_params=first.initial_params, schedule=table,
        seeds=(int(entropy),), stats=stats, **fields)


def _buffers(lay, S, dt, plan, noise):
    """The kernel's work buffers ``(pre, suf, G, C, grad, perm, noise)`` of ``S`` seeds."""
    width = {K.MODE_SHUFFLE: plan.n_samples, K.MODE_REPLACE: plan.batch_size}.get(plan.mode, 1)
    noisy = noise.temperature > 0 or noise.label_noise > 0
    n_noise = max(lay.n_params, (plan.batch_size or 0) * lay.d_out) if noisy else 1
    return (*lay.buffers(S, dt), np.zeros((S, width), dtype=np.int64), np.zeros((S, n_noise), dtype=dt))


def _run_threads(work, n_items, n_threads, thread_local=None):
    """Run ``work(i, local)`` for ``i < n_items`` on ``n_threads`` threads, each taking the next
    item, ``local = thread_local()`` made once per thread (or None). The kernel releases the
    GIL; every run only touches its own rows, so the schedule cannot change any result."""
    lock = threading.Lock()
    counter = iter(range(n_items))
    errors = []

    def worker():
        try:
            local = thread_local() if thread_local is not None else None
        except BaseException as exc:  # pragma: no cover - re-raised below
            errors.append(exc)
            return
        while True:
            with lock:
                i = next(counter, None)
            if i is None or errors:
                return
            try:
                work(i, local)
            except BaseException as exc:  # pragma: no cover - re-raised below
                errors.append(exc)
                return

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(n_threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if errors:
        raise errors[0]


def batch_gradient(weights, data, *, convention="canonical", weight_decay=0.0, indices=None,
                   dtype="float64") -> list:
    """The training kernel's gradient of ``kappa * mean_batch ||y - Mx||^2 + (weight_decay/2) sum ||W_i||^2``.

    The kernel's own routines, so tests can check them against finite differences and
    per-sample formulas.

    Parameters
    ----------
    weights : list of 2-D arrays
        ``[W_1, ..., W_n]``.
    data : (X, Y), Dataset, Moments or GaussianTeacher
        Samples (the batch is ``indices``) or moments (the exact loss of those moments).
    convention : "canonical", "paper" or Convention
        Fixes ``kappa``.
    weight_decay : float >= 0
        The weight decay added to the gradient (0: the data term alone).
    indices : array of int, optional
        Rows of the batch (default all rows; samples only).
    dtype : "float64" | "float32"
        Precision of the computation.

    Returns
    -------
    list of numpy.ndarray
        One gradient per layer (float64), shaped like ``weights``.
    """
    mats = [as_float_array(w, f"weights[{k}]") for k, w in enumerate(weights)]
    if not mats or any(m.ndim != 2 for m in mats):
        raise ValueError("weights must be a non-empty list of 2-D arrays [W_1, ..., W_n]")
    d = as_data(data)
    d_in = mats[0].shape[1]
    d_out = mats[-1].shape[0]
    width = mats[0].shape[0] if len(mats) > 1 else 1
    lay = _Layout(d_in, d_out, len(mats), width)
    if [m.shape for m in mats] != lay.shapes:
        raise ValueError(f"weights have shapes {[m.shape for m in mats]}, expected {lay.shapes}")
    conv = resolve_training_convention(convention, d_out)
    wd = check_scalar(weight_decay, "weight_decay")
    dt = _DTYPES[check_choice(dtype, "dtype", tuple(_DTYPES))]
    th = np.concatenate([m.ravel() for m in mats]).astype(dt)
    pre, suf, G, C, grad = (a[0] for a in lay.buffers(1, dt))
    if isinstance(d, Moments):
        if (d.d_in, d.d_out) != (d_in, d_out):
            raise ValueError(f"data are {d.d_in} -> {d.d_out} but the weights map {d_in} -> {d_out}")
        X, Y, idx = np.zeros((1, d_in), dt), np.zeros((1, d_out), dt), np.zeros(1, np.int64)
        sxx, syx = d.input_cov.astype(dt), d.cross_cov.astype(dt)
        scale, moments_mode = 2.0 * conv.kappa, True
    else:
        if not isinstance(d, Dataset) or d.X.shape[1] != d_in or d.Y.shape[1] != d_out:
            raise ValueError(f"data must map {d_in} -> {d_out}")
        X, Y = np.ascontiguousarray(d.X, dt), np.ascontiguousarray(d.Y, dt)
        idx = np.arange(d.n_samples) if indices is None else np.asarray(indices, dtype=np.int64).ravel()
        if idx.size == 0 or idx.min() < 0 or idx.max() >= d.n_samples:
            raise ValueError(f"indices must be non-empty and in [0, {d.n_samples})")
        sxx, syx = np.zeros((d_in, d_in), dt), np.zeros((d_out, d_in), dt)
        scale, moments_mode = 2.0 * conv.kappa / idx.size, False
    idx = np.ascontiguousarray(idx, dtype=np.int64)
    K.batch_gradient_kernel(th, X, Y, idx, moments_mode, sxx, syx, lay.dims, lay.offs, lay.poffs, lay.soffs,
                            dt(scale), pre, suf, G, C, grad)
    out = grad.astype(np.float64) + wd * th.astype(np.float64)
    return [out[lay.offs[k]:lay.offs[k + 1]].reshape(shp) for k, shp in enumerate(lay.shapes)]
