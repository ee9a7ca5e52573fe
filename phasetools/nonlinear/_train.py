"""The many-seed trainer of nonlinear networks: SGD with coupled weight decay and AdamW.

Seed ``i`` of a run with entropy ``e`` draws its initial weights and its batches from its own
xoshiro256** stream keyed by ``(e, seed_offset + i)`` (as the linear trainer), so any seed
can be replayed alone (``n_seeds=1, seed_offset=i``) and the bits do not depend on the
number of threads (see ``_kernels.py`` for the fixed chunking of a batch).
"""

from __future__ import annotations

import hashlib
import threading
import time
import weakref
from dataclasses import dataclass

import numba
import numpy as np

from .._rng import ZIG_F, ZIG_K, ZIG_W, entropy_of, seed_states, trajectory_keys
from .._validation import check_choice, check_int, check_memory, check_scalar
from ..results import Result, register
from . import _kernels as K
from ._model import MLP, fourier_ipr
from ._tasks import Task

__all__ = ["Optimizer", "sgd", "adamw", "NonlinearRun", "train", "loss_and_gradient", "evaluate",
           "SAMPLINGS"]

SAMPLINGS = ("full", "shuffle", "replacement")
DTYPES = ("float64", "float32")
_CHUNK = 256


@dataclass(frozen=True)
class Optimizer:
    """An optimiser and its settings.

    Parameters
    ----------
    kind : {"sgd", "adamw"}
        Plain SGD with coupled weight decay (``torch.optim.SGD(weight_decay=...)``) or AdamW
        (``torch.optim.AdamW``: decoupled, ``w *= 1 - lr * weight_decay`` each step).
    lr : float > 0
        Learning rate.
    weight_decay : float >= 0
        Weight-decay coefficient.
    adam_b1, adam_b2 : float in [0, 1)
        AdamW's moment decay rates (ignored by SGD).
    adam_eps : float > 0
        AdamW's denominator offset.
    """

    kind: str = "adamw"
    lr: float = 1e-2
    weight_decay: float = 1.0
    adam_b1: float = 0.9
    adam_b2: float = 0.98
    adam_eps: float = 1e-8

    def __post_init__(self):
        check_choice(self.kind, "optimizer", ("sgd", "adamw"))
        object.__setattr__(self, "lr", check_scalar(self.lr, "lr", positive=True))
        object.__setattr__(self, "weight_decay", check_scalar(self.weight_decay, "weight_decay"))
        for name in ("adam_b1", "adam_b2"):
            v = check_scalar(getattr(self, name), name)
            if v >= 1:
                raise ValueError(f"{name} must be in [0, 1), got {v!r}")
            object.__setattr__(self, name, v)
        object.__setattr__(self, "adam_eps", check_scalar(self.adam_eps, "adam_eps", positive=True))

    def with_weight_decay(self, weight_decay: float) -> "Optimizer":
        """A copy at another weight decay.

        Parameters
        ----------
        weight_decay : float >= 0
            The new coefficient.

        Returns
        -------
        Optimizer
        """
        from dataclasses import replace

        return replace(self, weight_decay=weight_decay)


def sgd(lr: float, weight_decay: float = 0.0) -> Optimizer:
    """SGD with coupled weight decay: ``w -= lr * (grad + weight_decay * w)``.

    Parameters
    ----------
    lr : float > 0
        Learning rate.
    weight_decay : float >= 0
        Weight-decay coefficient.

    Returns
    -------
    Optimizer
    """
    return Optimizer("sgd", lr, weight_decay)


def adamw(lr: float = 1e-2, weight_decay: float = 1.0, *, adam_b1: float = 0.9, adam_b2: float = 0.98,
          adam_eps: float = 1e-8) -> Optimizer:
    """AdamW as ``torch.optim.AdamW`` (defaults: the reference set-up of Gromov's grokking runs).

    Parameters
    ----------
    lr : float > 0
        Learning rate.
    weight_decay : float >= 0
        Decoupled weight decay (the weights shrink by ``1 - lr * weight_decay`` per step).
    adam_b1, adam_b2 : float in [0, 1)
        Moment decay rates.
    adam_eps : float > 0
        Denominator offset.

    Returns
    -------
    Optimizer
    """
    return Optimizer("adamw", lr, weight_decay, adam_b1, adam_b2, adam_eps)


@dataclass(frozen=True, eq=False, repr=False)
class _NetworkResult(Result):
    """The fields every nonlinear result starts with: the data and the network.

    Parameters
    ----------
    task : str
        The task's name (``Task.name``).
    task_config : dict
        The task's settings (``Task.config``: :func:`task_from_config` rebuilds it).
    dims, activation, loss
        The network (``MLP.dims``, ``MLP.activation``, ``MLP.loss``).
    """

    task: str
    task_config: dict
    dims: tuple
    activation: str
    loss: str


def _network_fields(task: Task, model: MLP) -> tuple:
    """The values of :class:`_NetworkResult`'s fields for a task and a network, in field order.

    Parameters
    ----------
    task : Task
        The data.
    model : MLP
        The network.

    Returns
    -------
    tuple
        ``(task.name, task.config, dims, activation, loss)``.
    """
    return task.name, dict(task.config), tuple(model.dims), model.activation, model.loss


def _provenance(entropy: int, t0: float, **stats) -> dict:
    """The ``seeds`` and ``stats`` keywords of a nonlinear result.

    Parameters
    ----------
    entropy : int
        The root entropy of the call's streams.
    t0 : float
        ``time.perf_counter()`` when the call started.
    **stats
        More entries of ``stats``.

    Returns
    -------
    dict
        ``{"seeds": (entropy,), "stats": {"wall_time": seconds since t0, **stats}}``.
    """
    return {"seeds": (int(entropy),), "stats": {"wall_time": time.perf_counter() - t0, **stats}}


@register
@dataclass(frozen=True, eq=False, repr=False)
class NonlinearRun(_NetworkResult):
    """Training curves and final weights of ``n_seeds`` runs of one nonlinear configuration.

    Curves have shape ``(n_seeds, n_logs)`` at ``log_epochs`` (epoch 0 is the start).
    ``fit_epoch`` / ``generalisation_epoch``: the first logged epoch with train / test
    accuracy >= ``threshold`` (NaN: not within ``epochs``, a censored observation).
    ``fourier_ipr`` is NaN for tasks other than modular addition. ``status``: 0 finished,
    2 non-finite weights (the run stopped there). ``label_noise`` and ``temperature``: the
    optional noise of :func:`train` (0: none; files written before they existed read as 0).
    """

    optimizer: str
    lr: float
    weight_decay: float
    adam_b1: float
    adam_b2: float
    adam_eps: float
    epochs: int
    batch_size: int
    sampling: str
    n_seeds: int
    seed_offset: int
    dtype: str
    init_scale: float
    log_every: int
    threshold: float
    log_epochs: np.ndarray
    train_loss: np.ndarray
    test_loss: np.ndarray
    train_acc: np.ndarray
    test_acc: np.ndarray
    weight_norm: np.ndarray
    fourier_ipr: np.ndarray
    fit_epoch: np.ndarray
    generalisation_epoch: np.ndarray
    status: np.ndarray
    weights: np.ndarray
    label_noise: float = 0.0
    temperature: float = 0.0

    _config_fields = ("task", "task_config", "dims", "activation", "loss", "optimizer", "lr", "weight_decay",
                      "adam_b1", "adam_b2", "adam_eps", "epochs", "batch_size", "sampling", "n_seeds",
                      "seed_offset", "dtype", "init_scale", "log_every", "threshold", "label_noise", "temperature")
    _dims = {k: ("seed", "log") for k in ("train_loss", "test_loss", "train_acc", "test_acc", "weight_norm",
                                           "fourier_ipr")} | {"log_epochs": ("log",), "fit_epoch": ("seed",),
                                                              "generalisation_epoch": ("seed",),
                                                              "status": ("seed",), "weights": ("seed", "param")}
    _coords = {"log": "log_epochs"}
    _units = {"log_epochs": "epochs", "fit_epoch": "epochs", "generalisation_epoch": "epochs"}

    @property
    def model(self) -> MLP:
        """The network (initial standard deviations are not stored: ``init_std`` is zeros)."""
        return MLP(tuple(self.dims), self.activation, self.loss, (0.0,) * (len(self.dims) - 1))

    def loss_log(self, seed: int = 0) -> dict:
        """One seed's logged curves as columns (what ``phasetools.diagnose.load_log`` reads).

        Parameters
        ----------
        seed : int >= 0
            The seed (row).

        Returns
        -------
        dict
            ``epoch``, ``train_loss``, ``test_loss``, ``train_acc``, ``test_acc`` (1-d arrays).
        """
        s = check_int(seed, "seed", 0)
        if s >= self.n_seeds:
            raise ValueError(f"seed must be < {self.n_seeds} (the run's seeds), got {seed}")
        return {"epoch": np.asarray(self.log_epochs, float), "train_loss": self.train_loss[s],
                "test_loss": self.test_loss[s], "train_acc": self.train_acc[s], "test_acc": self.test_acc[s]}

    @property
    def delay(self) -> np.ndarray:
        """``generalisation_epoch - fit_epoch`` per seed (NaN where either is missing)."""
        return self.generalisation_epoch - self.fit_epoch

    def __repr__(self):
        te = np.round(self.test_acc[:, -1], 3).tolist() if self.test_acc.size else []
        return (f"NonlinearRun(task={self.task!r}, dims={self.dims}, {self.optimizer} lr={self.lr:g} "
                f"weight_decay={self.weight_decay:g}, epochs={self.epochs}, n_seeds={self.n_seeds}, "
                f"final test_acc={te}, fit_epoch={self.fit_epoch.tolist()}, "
                f"generalisation_epoch={self.generalisation_epoch.tolist()})")


class _Net:
    """Kernel-side arrays of a model and a task."""

    def __init__(self, model: MLP, task: Task, dtype):
        if model.dims[0] != task.n_inputs or model.dims[-1] != task.n_classes:
            raise ValueError(f"model dims {model.dims} do not fit the task ({task.n_inputs} inputs, "
                             f"{task.n_classes} classes)")
        self.dims = np.asarray(model.dims, dtype=np.int64)
        self.offs = model.offsets
        hid = list(model.dims[1:-1])
        self.hoffs = np.concatenate([[0, 0], np.cumsum(hid)]).astype(np.int64)  # hoffs[k], k = 1..L-1
        self.n_hidden = int(sum(hid))
        self.width = int(max(model.dims[1:]))
        self.act = 0 if model.activation == "quadratic" else 1
        self.lossk = 0 if model.loss == "mse" else 1
        self.sparse = task.sparse
        self.dtype = dtype
        self.sets = {}
        for name, X, y in (("train", task.X_train, task.y_train), ("test", task.X_test, task.y_test)):
            # writeable copies: the task's arrays are read-only, a different numba type
            if task.sparse:
                Xi, Xd = np.array(X, dtype=np.int64, order="C"), np.zeros((1, 1), dtype=dtype)
            else:
                Xi, Xd = np.zeros((1, 1), dtype=np.int64), np.array(X, dtype=dtype, order="C")
            self.sets[name] = (Xi, Xd, np.array(y, dtype=np.int64, order="C"))

    def work(self, n_units, block=None):
        """Work arrays ``Z, A, OUT`` per unit (with ``block`` rows each when given)."""
        d = self.dtype
        lead = (n_units,) if block is None else (n_units, block)
        return (np.empty(lead + (max(self.n_hidden, 1),), d), np.empty(lead + (max(self.n_hidden, 1),), d),
                np.empty(lead + (int(self.dims[-1]),), d))

    def grad_work(self, n_units):
        """Work arrays ``Z, A, OUT, D1, D2`` of :func:`_kernels.chunk_gradients`."""
        Z, A, OUT = self.work(n_units, K.BLOCK)
        D1 = np.empty((n_units, K.BLOCK, self.width), dtype=self.dtype)
        D2 = np.empty((n_units, K.BLOCK, self.width), dtype=self.dtype)
        return Z, A, OUT, D1, D2

    def transpose(self, th):
        tht = np.empty_like(th)
        K.transpose_layers(th, tht, self.dims, self.offs)
        return tht


def _evaluate(net: _Net, th, tht, which):
    """(mean loss, accuracy) per run on the train or test set, float64 arrays (S,)."""
    Xi, Xd, y = net.sets[which]
    n = y.shape[0]
    S = th.shape[0]
    n_chunks = -(-n // _CHUNK)
    sums = np.zeros((S * n_chunks, 2))
    Z, A, OUT = net.work(S * n_chunks, K.BLOCK)
    K.evaluate_chunks(th, tht, net.dims, net.offs, net.hoffs, net.act, net.lossk, Xi, Xd, net.sparse, y,
                      np.arange(n, dtype=np.int64), _CHUNK, n_chunks, sums, Z, A, OUT)
    s = sums.reshape(S, n_chunks, 2)
    tot = np.zeros((S, 2))
    for c in range(n_chunks):  # fixed order
        tot += s[:, c]
    return tot[:, 0] / n, tot[:, 1] / n


_CURVES = ("train_loss", "test_loss", "train_acc", "test_acc", "weight_norm", "fourier_ipr")


class _FinalMetrics:
    """The logged metrics of the final weights of each task's latest run, by weight row.

    A run warm-started from those weights (``init=``) logs epoch 0 from here instead of
    evaluating both data sets again: AMS over the trainer (``rare.NonlinearEngine``)
    advances its replicas by one ``train`` call per epoch, and each call's epoch 0 is the
    previous call's last epoch. A row is recognised by its bytes in the run's dtype
    (together with the task object, whose arrays are read-only, the model and the dtype);
    the metrics of a row do not
    depend on the other rows, so the stored numbers are those an evaluation would give.
    Only the latest run of a task is kept, and only while the task is alive.
    """

    def __init__(self):
        self._by_task = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    @staticmethod
    def _keys(model, th):
        return [(model, th.dtype.str, hashlib.blake2b(row.tobytes(), digest_size=16).digest()) for row in th]

    def remember(self, task, model, th, curves):
        """Store the last logged column of ``curves`` for the rows of ``th``.

        Parameters
        ----------
        task : Task
            The data (a key by identity).
        model : MLP
            The network.
        th : ndarray (S, n_params)
            Final weights in the run's dtype.
        curves : dict of ndarray (S, n_logs)
            The run's curves, their last column logged at ``th``.
        """
        rows = {k: tuple(float(curves[c][s, -1]) for c in _CURVES) for s, k in enumerate(self._keys(model, th))}
        with self._lock:
            self._by_task[task] = rows

    def recall(self, task, model, th):
        """The stored metrics of every row of ``th``, or None unless all are known.

        Parameters
        ----------
        task : Task
            The data.
        model : MLP
            The network.
        th : ndarray (S, n_params)
            Weights in the run's dtype.

        Returns
        -------
        dict of ndarray (S,) or None
            One array per name of ``_CURVES``.
        """
        with self._lock:
            rows = self._by_task.get(task)
        if not rows:
            return None
        found = [rows.get(k) for k in self._keys(model, th)]
        if any(f is None for f in found):
            return None
        return {c: np.array([f[i] for f in found]) for i, c in enumerate(_CURVES)}


_FINAL = _FinalMetrics()


def _initial(model, init, n_seeds, entropy, seed_offset, init_scale, dtype):
    states = seed_states(trajectory_keys(entropy, np.arange(seed_offset, seed_offset + n_seeds)))
    if init is None:
        th = np.empty((n_seeds, model.n_params))
        stds = np.asarray(model.init_std, dtype=np.float64) * init_scale
        K.init_normals(states, stds, model.offsets, ZIG_K, ZIG_W, ZIG_F, th)
    else:
        w = init.weights if isinstance(init, NonlinearRun) else init
        w = np.asarray(w, dtype=np.float64)
        if w.ndim == 1:
            w = np.broadcast_to(w, (n_seeds, w.size))
        if w.shape != (n_seeds, model.n_params):
            raise ValueError(f"init must have shape ({n_seeds}, {model.n_params}) or ({model.n_params},), "
                             f"got {w.shape}")
        th = w * init_scale
    return np.ascontiguousarray(th, dtype=dtype), states


def _check_run_args(task, model, optimizer, epochs, batch_size, sampling, n_seeds, dtype, init_scale, log_every,
                    threshold, seed_offset):
    if not isinstance(task, Task):
        raise ValueError(f"task must be a phasetools.nonlinear.Task, got {type(task).__name__}")
    if not isinstance(model, MLP):
        raise ValueError(f"model must be a phasetools.nonlinear.MLP, got {type(model).__name__}")
    if not isinstance(optimizer, Optimizer):
        raise ValueError(f"optimizer must be a phasetools.nonlinear.Optimizer, got {type(optimizer).__name__}")
    check_choice(sampling, "sampling", SAMPLINGS)
    check_choice(dtype, "dtype", DTYPES)
    B = task.n_train if (batch_size is None or sampling == "full") else check_int(batch_size, "batch_size", 1)
    if B > task.n_train:
        raise ValueError(f"batch_size must be an integer in [1, {task.n_train}] (the training set), got {B}")
    thr = check_scalar(threshold, "threshold", positive=True)
    if thr > 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold!r}")
    return (check_int(epochs, "epochs", 0), B, check_int(n_seeds, "n_seeds", 1),
            check_scalar(init_scale, "init_scale", positive=True), check_int(log_every, "log_every", 1), thr,
            check_int(seed_offset, "seed_offset", 0))


def _first_epoch(acc, log_epochs, threshold):
    out = np.full(acc.shape[0], np.nan)
    for s in range(acc.shape[0]):
        hit = np.flatnonzero(acc[s] >= threshold)
        if hit.size:
            out[s] = log_epochs[hit[0]]
    return out


def train(task: Task, model: MLP, optimizer: Optimizer, *, epochs: int, batch_size: int | None = None,
          sampling: str = "full", n_seeds: int = 1, seed_offset: int = 0, dtype: str = "float64",
          init_scale: float = 1.0, init=None, log_every: int = 10, threshold: float = 0.99,
          label_noise: float = 0.0, temperature: float = 0.0, rng=None, n_threads: int | None = None,
          progress=None) -> NonlinearRun:
    """Train ``n_seeds`` independent copies of ``model`` on ``task`` with ``optimizer``.

    Parameters
    ----------
    task : Task
        Training and test data (:func:`modular_addition`, :func:`synthetic_images`, :func:`digits`).
    model : MLP
        The network (:func:`quadratic_mlp`, :func:`relu_mlp`, :func:`image_mlp`).
    optimizer : Optimizer
        :func:`sgd` or :func:`adamw`.
    epochs : int >= 0
        Passes over the training set.
    batch_size : int, optional
        Minibatch size (ignored with ``sampling="full"``); default the whole training set.
    sampling : {"full", "shuffle", "replacement"}
        Full batch (one step per epoch); a fresh permutation per epoch cut into
        ``n_train // batch_size`` batches (the remainder is dropped); or ``n_train //
        batch_size`` batches drawn uniformly with replacement.
    n_seeds : int >= 1
        Independent runs (own initial weights and batches).
    seed_offset : int >= 0
        Index of the first seed's stream (replay seed ``i`` alone with ``seed_offset=i``).
    dtype : {"float64", "float32"}
        Arithmetic of weights and gradients (losses are summed in float64).
    init_scale : float > 0
        Multiplies the initial weights (Omnigrok's control), also a given ``init``.
    init : NonlinearRun or array, optional
        Start from these weights (a warm start; optimiser state starts at zero). When they
        are the final weights of the latest run on this task (same model and dtype), epoch
        0 is logged from that run's last evaluation instead of evaluating again (the same
        numbers; what makes one ``train`` call per epoch cheap).
    log_every : int >= 1
        Epochs between logged points (epoch 0 and the last epoch are always logged).
    threshold : float in (0, 1]
        Accuracy that counts as fitted / generalised.
    label_noise : float >= 0
        Standard deviation of fresh Gaussian noise added to every entry of every one-hot
        target of every batch (MSE networks only; drawn per seed, per step).
    temperature : float >= 0
        Injected Langevin noise: ``sqrt(2 lr temperature) * N(0, 1)`` added to every weight
        after every update (with SGD, the stationary density is ``exp(-(loss + weight_decay
        |w|^2 / 2) / temperature)``).
    rng : None, int, SeedSequence or Generator
        Root of the streams; its entropy is recorded in ``seeds``.
    n_threads : int, optional
        numba threads for this call (results do not depend on it).
    progress : callable, optional
        Called as ``progress(epochs_done, epochs)`` after each logged point.

    Returns
    -------
    NonlinearRun
        Without noise (both 0) the bits are those of a run without the noise options.
    """
    epochs, B, S, init_scale, log_every, threshold, seed_offset = _check_run_args(
        task, model, optimizer, epochs, batch_size, sampling, n_seeds, dtype, init_scale, log_every, threshold,
        seed_offset)
    noise = _check_noise(model, label_noise, temperature)
    check_memory(8 * S * (4 * model.n_params + 7 * (epochs // log_every + 2)) + 32 * task.n_train * sum(model.dims),
                 f"n_seeds = {S} network(s) of {model.n_params} weights (widths {tuple(model.dims)}) for epochs = "
                 f"{epochs} logged every {log_every}")
    t0 = time.perf_counter()
    dt = np.dtype(dtype)
    net = _Net(model, task, dt)
    entropy = entropy_of(rng)
    th, states = _initial(model, init, S, entropy, seed_offset, init_scale, dt)
    old = numba.get_num_threads()
    if n_threads is not None:
        numba.set_num_threads(check_int(n_threads, "n_threads", 1))
    try:
        logs, status, th = _loop(net, model, task, optimizer, th, states, epochs, B, sampling, log_every, progress,
                                 noise)
    finally:
        numba.set_num_threads(old)
    log_epochs, curves = logs
    if np.all(status == 0):
        _FINAL.remember(task, model, th, curves)
    fit = _first_epoch(curves["train_acc"], log_epochs, threshold)
    gen = _first_epoch(curves["test_acc"], log_epochs, threshold)
    return NonlinearRun(
        *_network_fields(task, model), optimizer.kind, optimizer.lr,
        optimizer.weight_decay, optimizer.adam_b1, optimizer.adam_b2, optimizer.adam_eps, epochs, B, sampling, S,
        seed_offset, dtype, init_scale, log_every, threshold, log_epochs, curves["train_loss"], curves["test_loss"],
        curves["train_acc"], curves["test_acc"], curves["weight_norm"], curves["fourier_ipr"], fit, gen, status,
        th, noise[0], noise[1], **_provenance(entropy, t0, steps_per_epoch=_steps(task.n_train, B, sampling)))


def _check_noise(model, label_noise, temperature):
    """(label_noise, temperature) checked: both >= 0, label noise only with MSE."""
    ln = check_scalar(label_noise, "label_noise")
    T = check_scalar(temperature, "temperature")
    if ln > 0 and model.loss != "mse":
        raise ValueError(f"label_noise needs an MSE network (Gaussian noise on one-hot targets), got loss "
                         f"{model.loss!r}; use label_noise=0")
    return ln, T


def _steps(n, B, sampling):
    return 1 if sampling == "full" else n // B


def _loop(net, model, task, opt, th, states, epochs, B, sampling, log_every, progress, noise=(0.0, 0.0)):
    S, P = th.shape
    n = task.n_train
    n_chunks = -(-B // _CHUNK)
    chunk = -(-B // n_chunks)
    G = np.empty((S * n_chunks, P), dtype=net.dtype)
    losses = np.empty(S * n_chunks)
    Z, A, OUT, D1, D2 = net.grad_work(S * n_chunks)
    m = np.zeros_like(th) if opt.kind == "adamw" else np.zeros((S, 1), dtype=net.dtype)
    v = np.zeros_like(m)
    hp = np.array([opt.lr, opt.weight_decay, opt.adam_b1, opt.adam_b2, opt.adam_eps], dtype=net.dtype)
    optk = K.OPT_SGD if opt.kind == "sgd" else K.OPT_ADAMW
    label_sd, temperature = noise
    E = np.zeros((S, B * int(net.dims[-1]) if label_sd > 0 else 1), dtype=net.dtype)
    noise_sd = float(np.sqrt(2.0 * opt.lr * temperature))
    idx = np.tile(np.arange(n, dtype=np.int64), (S, 1))
    tht = net.transpose(th)
    Xi, Xd, y = net.sets["train"]
    status = np.zeros(S, dtype=np.int64)
    log_epochs = sorted(set(range(0, epochs + 1, log_every)) | {epochs})
    curves = {k: np.full((S, len(log_epochs)), np.nan) for k in ("train_loss", "test_loss", "train_acc", "test_acc",
                                                                  "weight_norm", "fourier_ipr")}
    modular = task.name == "modular_addition"
    known = _FINAL.recall(task, model, th)  # a warm start from a run's final weights: epoch 0 is logged there
    step = 0
    li = 0
    for epoch in range(epochs + 1):
        if epoch == log_epochs[li]:
            _log(net, model, th, tht, curves, li, modular, known if li == 0 else None)
            li += 1
            if progress is not None:
                progress(epoch, epochs)
            if not np.all(np.isfinite(th)):
                status[:] = np.where(np.all(np.isfinite(th), axis=1), status, 2)
                break
        if epoch == epochs:
            break
        if sampling == "shuffle":
            K.shuffle_rows(states, idx)
        for j in range(_steps(n, B, sampling)):
            if sampling == "replacement":
                K.draw_batches(states, idx, n, B)
                start = 0
            else:
                start = j * B if sampling == "shuffle" else 0
            if label_sd > 0:
                K.draw_label_noise(states, E, label_sd, ZIG_K, ZIG_W, ZIG_F)
            K.chunk_gradients(th, tht, net.dims, net.offs, net.hoffs, net.act, net.lossk, Xi, Xd, net.sparse, y,
                              idx, start, B, chunk, n_chunks, G, losses, Z, A, OUT, D1, D2, E, label_sd > 0)
            step += 1
            K.apply_update(th, tht, m, v, G, n_chunks, net.dims, net.offs, optk, hp, step, states, noise_sd, ZIG_K,
                           ZIG_W, ZIG_F)
    return (np.asarray(log_epochs, dtype=np.int64), curves), status, th


def _log(net, model, th, tht, curves, li, modular, known=None):
    """Fill column ``li`` of ``curves`` at the weights ``th``: from ``known`` (metrics already
    measured at these weights, :class:`_FinalMetrics`) when given, else by evaluating."""
    if known is not None:
        for c in _CURVES:
            curves[c][:, li] = known[c]
        return
    for which in ("train", "test"):
        loss, acc = _evaluate(net, th, tht, which)
        curves[f"{which}_loss"][:, li] = loss
        curves[f"{which}_acc"][:, li] = acc
    w64 = th.astype(np.float64)
    curves["weight_norm"][:, li] = np.sqrt(np.einsum("sp,sp->s", w64, w64))
    if modular:
        curves["fourier_ipr"][:, li] = fourier_ipr(model, w64)


def loss_and_gradient(task: Task, model: MLP, weights, *, which: str = "train", dtype: str = "float64"):
    """The mean loss over a whole data set and its gradient, from the training kernel.

    Parameters
    ----------
    task : Task
        The data.
    model : MLP
        The network.
    weights : array (n_params,)
        Flat weights.
    which : {"train", "test"}
        The data set.
    dtype : {"float64", "float32"}
        Arithmetic.

    Returns
    -------
    (float, ndarray)
        The loss (without weight decay) and its gradient (n_params,).
    """
    check_choice(which, "which", ("train", "test"))
    check_choice(dtype, "dtype", DTYPES)
    dt = np.dtype(dtype)
    net = _Net(model, task, dt)
    th = np.ascontiguousarray(np.asarray(weights, dtype=dt).reshape(1, model.n_params))
    tht = net.transpose(th)
    Xi, Xd, y = net.sets[which]
    n = y.shape[0]
    n_chunks = -(-n // _CHUNK)
    chunk = -(-n // n_chunks)
    G = np.empty((n_chunks, model.n_params), dtype=dt)
    losses = np.empty(n_chunks)
    Z, A, OUT, D1, D2 = net.grad_work(n_chunks)
    idx = np.arange(n, dtype=np.int64).reshape(1, n)
    K.chunk_gradients(th, tht, net.dims, net.offs, net.hoffs, net.act, net.lossk, Xi, Xd, net.sparse, y, idx, 0, n,
                      chunk, n_chunks, G, losses, Z, A, OUT, D1, D2, np.zeros((1, 1), dtype=dt), False)
    g = G[0].copy()
    for c in range(1, n_chunks):
        g += G[c]
    return float(sum(losses)), g


def evaluate(task: Task, model: MLP, weights) -> dict:
    """Loss and accuracy of weights on both sets of a task.

    Parameters
    ----------
    task : Task
        The data.
    model : MLP
        The network.
    weights : array (n_params,) or (n_runs, n_params)
        Flat weights.

    Returns
    -------
    dict
        ``train_loss, train_acc, test_loss, test_acc``: float64 arrays (n_runs,).
    """
    w = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    net = _Net(model, task, np.dtype(np.float64))
    th = np.ascontiguousarray(w)
    known = _FINAL.recall(task, model, th)  # the final weights of the latest float64 run on this task
    if known is not None:
        return {k: known[k] for k in ("train_loss", "train_acc", "test_loss", "test_acc")}
    tht = net.transpose(th)
    out = {}
    for which in ("train", "test"):
        out[f"{which}_loss"], out[f"{which}_acc"] = _evaluate(net, th, tht, which)
    return out
