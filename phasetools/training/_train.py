"""``train``: ensembles of minibatch-SGD runs of a bias-free deep linear network.

One numba kernel advances every seed (parallel over seeds); seed ``i`` draws its initial
weights and its batches from its own xoshiro256** stream keyed by ``(entropy, i)``, so the
result does not depend on the thread count and any seed can be re-run alone
(``n_seeds=1, seed_offset=i``). See ``docs/training.md`` for the update rule, the
conventions and the logged quantities.
"""

from __future__ import annotations

import math
import numbers
import dataclasses
import threading
import time
from dataclasses import dataclass

import numba
import numpy as np

from .._validation import as_float_array, check_choice, check_n_layers, check_width
from .._rng import ZIG_F, ZIG_K, ZIG_W, entropy_of, seed_states, trajectory_keys
from ..results import Result, register
from ..theory._convention import Convention, resolve_convention
from ..theory._network import layer_shapes
from . import _kernels as K
from ._data import Dataset, Moments, as_data

__all__ = ["TrainingRun", "train", "batch_gradient", "resolve_training_convention", "STATUS_OK",
           "STATUS_NONFINITE", "INIT_DEFAULT"]

STATUS_OK, STATUS_NONFINITE = K.STATUS_OK, K.STATUS_NONFINITE
INIT_DEFAULT = "std"
_INITS = ("std", "variance")
_INIT_FANS = ("fan_in", "width")
_SAMPLINGS = ("shuffle", "replacement")
_DTYPES = {"float32": np.float32, "float64": np.float64}
_MAX_RECORD_VALUES = 20_000_000
_WARM: set = set()


@register
@dataclass(frozen=True, eq=False, repr=False)
class TrainingRun(Result):
    """An ensemble of SGD runs of one configuration (one entry per seed).

    Logged every ``log_every`` epochs (``log_epochs``; epoch 0 is the initial state, the
    last epoch is always logged), per seed: ``train_mse`` and ``test_mse`` (element-wise
    mean over samples and outputs, as ``torch.nn.MSELoss()``), ``loss`` (the training
    objective in ``convention``: ``kappa E||y - Mx||^2 + (beta/2) sum ||W_i||^2``,
    absolute, ``E||y||^2`` included), ``weight_norm`` (``sqrt(sum_i ||W_i||_F^2)``),
    ``singular_values`` of the end-to-end map (descending) and ``layer_singular_values``
    (seed, log, layer, k; NaN-padded to the largest ``min(rows, cols)``). Entries after a
    seed diverged are NaN. ``status`` is 0 (ran to the end) or 2 (stopped at step
    ``steps`` by a non-finite weight or end-to-end map). ``initial_params`` and
    ``final_params`` are the flat weights per seed (checkpoints; see :meth:`weights`).
    ``temperature`` and ``label_noise`` record the optional injected (Langevin/SGLD) and
    label noise (0: off). Runs of one configuration and ``rng`` with disjoint seed indices
    merge with ``+`` (:meth:`merge`).
    """

    n_layers: int
    width: int
    d_in: int
    d_out: int
    lr: float
    beta: float
    gamma: float
    convention: Convention
    batch_size: int | None
    epochs: int
    n_samples: int | None
    sampling: str
    drop_last: bool
    dtype: str
    init: str
    init_fan: str
    log_every: int
    layer_log_every: int
    seed_offset: int
    record_steps: bool
    train_moments: Moments
    test_moments: Moments | None
    steps_per_epoch: int
    seed_index: np.ndarray
    log_epochs: np.ndarray
    layer_log_epochs: np.ndarray
    train_mse: np.ndarray
    test_mse: np.ndarray | None
    loss: np.ndarray
    weight_norm: np.ndarray
    singular_values: np.ndarray
    layer_singular_values: np.ndarray
    steps: np.ndarray
    status: np.ndarray
    initial_params: np.ndarray
    final_params: np.ndarray
    batch_indices: np.ndarray | None = None
    step_params: np.ndarray | None = None
    temperature: float = 0.0
    label_noise: float = 0.0

    _config_fields = ("n_layers", "width", "d_in", "d_out", "lr", "beta", "gamma", "convention", "batch_size",
                      "epochs", "n_samples", "sampling", "drop_last", "dtype", "init", "init_fan",
                      "log_every", "layer_log_every", "seed_offset", "record_steps", "train_moments",
                      "test_moments", "temperature", "label_noise")
    _dims = {"seed_index": ("seed",), "log_epochs": ("log",), "train_mse": ("seed", "log"),
             "test_mse": ("seed", "log"), "loss": ("seed", "log"), "weight_norm": ("seed", "log"),
             "singular_values": ("seed", "log", "mode"), "layer_log_epochs": ("layer_log",),
             "layer_singular_values": ("seed", "layer_log", "layer", "mode"),
             "steps": ("seed",), "status": ("seed",), "initial_params": ("seed", "param"),
             "final_params": ("seed", "param"), "batch_indices": ("seed", "step", "sample"),
             "step_params": ("seed", "step", "param")}
    _coords = {"seed": "seed_index", "log": "log_epochs", "layer_log": "layer_log_epochs"}
    _units = {"lr": "time[convention]/step", "beta": "weight_decay", "gamma": "coupling[canonical]",
              "log_epochs": "epochs", "layer_log_epochs": "epochs", "steps": "steps", "train_mse": "mse",
              "test_mse": "mse",
              "loss": "loss[convention]", "weight_norm": "weight", "singular_values": "end_to_end",
              "layer_singular_values": "weight", "initial_params": "weight", "final_params": "weight",
              "step_params": "weight", "temperature": "temperature[convention]", "label_noise": "target"}

    # -- derived ------------------------------------------------------------------------
    @property
    def n_seeds(self) -> int:
        return int(self.seed_index.size)

    @property
    def layer_shapes(self) -> list:
        return layer_shapes(self.d_in, self.d_out, self.n_layers, self.width)

    @property
    def n_params(self) -> int:
        return int(sum(r * c for r, c in self.layer_shapes))

    @property
    def n_hidden(self) -> int:
        return self.n_layers - 1

    @property
    def kappa(self) -> float:
        return float(self.convention.kappa)

    @property
    def diverged(self) -> np.ndarray:
        return self.status == STATUS_NONFINITE

    @property
    def time(self) -> np.ndarray:
        """Langevin time ``lr * steps`` per seed, in the convention's units (canonical: ``kappa *`` this)."""
        return self.lr * self.steps

    @property
    def log_time(self) -> np.ndarray:
        """Langevin time ``lr * steps`` of each log point (convention units)."""
        return self.lr * self.steps_per_epoch * self.log_epochs

    @property
    def energy(self) -> np.ndarray:
        """``loss`` measured from the trivial state (``- kappa tr S_yy``), as the theory reports energies."""
        return self.loss - self.kappa * float(np.trace(self.train_moments.output_cov))

    def weights(self, which: str = "final", seed=None) -> list:
        """Per-layer weights ``[W_1, ..., W_n]``: arrays (seed, rows, cols), or (rows, cols) for one ``seed``.

        ``which`` is ``"final"`` or ``"initial"``.
        """
        check_choice(which, "which", ("final", "initial"))
        flat = self.final_params if which == "final" else self.initial_params
        if seed is not None:
            flat = flat[int(seed)][None]
        out, k = [], 0
        for r, c in self.layer_shapes:
            out.append(flat[:, k:k + r * c].reshape(-1, r, c))
            k += r * c
        return [w[0] for w in out] if seed is not None else out

    def merge(self, other: "TrainingRun") -> "TrainingRun":
        """Pool two runs of one configuration and ``rng`` whose seed indices are disjoint.

        ``run(n_seeds=a) + run(n_seeds=b, seed_offset=a)`` equals ``run(n_seeds=a + b)``
        in every field except ``stats``: per-seed fields are concatenated and ordered by
        ``seed_index``, ``seed_offset`` becomes the smallest index, and the timings and
        counts in ``stats`` are added up.
        """
        if not isinstance(other, TrainingRun):
            raise TypeError("can only merge with another TrainingRun")
        from ..results import deep_equal

        mine, theirs = self.config, other.config
        diff = [k for k in mine if k != "seed_offset" and not deep_equal(mine[k], theirs[k])]
        if diff:
            raise ValueError(f"cannot merge training runs with different configurations (differ in {diff})")
        if tuple(self.seeds or ()) != tuple(other.seeds or ()):
            raise ValueError(f"cannot merge training runs with different rng entropies ({self.seeds} and "
                             f"{other.seeds}): a seed is identified by (rng, seed index); run the parts with "
                             f"the same rng and different seed_offset")
        if np.intersect1d(self.seed_index, other.seed_index).size:
            raise ValueError("cannot merge training runs that share seed indices (the runs would repeat); "
                             "give the parts disjoint seed_offset ranges")
        order = np.argsort(np.concatenate([self.seed_index, other.seed_index]), kind="stable")
        per_seed = {}
        for f in dataclasses.fields(self):
            dims = self._dims.get(f.name, ())
            a, b = getattr(self, f.name), getattr(other, f.name)
            if not dims or dims[0] != "seed" or a is None:
                continue
            per_seed[f.name] = np.concatenate([a, b])[order]
        st_a, st_b = self.stats, other.stats
        stats = {k: st_a.get(k, 0) + st_b.get(k, 0)
                 for k in ("wall_time", "compile_time", "steps_total", "n_nonfinite")}
        stats["steps_per_second"] = (stats["steps_total"] / stats["wall_time"] if stats["wall_time"] > 0
                                     else math.inf)
        stats["n_threads"] = max(st_a.get("n_threads", 1), st_b.get("n_threads", 1))
        return dataclasses.replace(self, seed_offset=int(per_seed["seed_index"][0]), stats=stats, **per_seed)

    def __repr__(self):
        coupling = f"beta={self.beta:g} (gamma={self.gamma:g})"
        if self.temperature > 0:
            coupling += f", temperature={self.temperature:g}"
        if self.label_noise > 0:
            coupling += f", label_noise={self.label_noise:g}"
        data = (f"n_samples={self.n_samples}, batch_size={self.batch_size}, sampling={self.sampling!r}"
                if self.n_samples is not None else "population moments")
        return (f"TrainingRun(n_layers={self.n_layers}, width={self.width}, {self.d_in}->{self.d_out}, "
                f"lr={self.lr:g}, {coupling}, convention={self.convention.name!r}, {data}, "
                f"epochs={self.epochs}, dtype={self.dtype!r}, n_seeds={self.n_seeds}, "
                f"diverged={int(self.diverged.sum())})")


# -- helpers ---------------------------------------------------------------------------
def _int(value, name, minimum):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or int(value) < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _scalar(value, name, *, positive=False):
    arr = as_float_array(value, name)
    if arr.ndim != 0:
        raise ValueError(f"{name} must be a number, got shape {arr.shape}")
    v = float(arr)
    if positive and v <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    if not positive and v < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return v


def resolve_training_convention(convention, d_out: int) -> Convention:
    """``"paper"`` means MSE averaged over the ``d_out`` outputs (``kappa = 1/d_out``)."""
    if isinstance(convention, str) and convention == "paper":
        return Convention.paper(n_outputs=d_out)
    conv = resolve_convention(convention)
    if conv.coupling == "weight_decay" and conv.n_outputs is not None and conv.n_outputs != d_out:
        raise ValueError(f"convention {conv.name!r} averages over {conv.n_outputs} outputs but the data have "
                         f"{d_out}")
    return conv


def _couplings(beta, gamma, conv):
    """(beta, gamma): the coupled weight decay applied in the update and the canonical coupling."""
    if (beta is None) == (gamma is None):
        raise ValueError("give exactly one of beta (the weight decay added to the gradient, as torch's "
                         "weight_decay) and gamma (the canonical coupling)")
    if beta is not None:
        b = _scalar(beta, "beta")
        return b, b / (2.0 * conv.kappa)
    g = _scalar(gamma, "gamma")
    return 2.0 * conv.kappa * g, g


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


# -- the trainer -------------------------------------------------------------------------
def train(data, *, n_layers, width, lr, epochs, beta=None, gamma=None, convention="canonical",
          batch_size=None, sampling="shuffle", drop_last=True, test=None, dtype="float64", init=INIT_DEFAULT,
          init_fan="fan_in", n_seeds=None, seed_offset=0, log_every=1, layer_log_every=None,
          record_steps=False, temperature=0.0, label_noise=0.0, rng=None, n_threads=None) -> TrainingRun:
    """Train ``n_seeds`` independent copies of ``W_n ... W_1`` (no biases) with minibatch SGD.

    Each step, on a batch ``B`` (``kappa`` from ``convention``)::

        g = grad_W [kappa * mean_{i in B} ||y_i - W_n...W_1 x_i||^2] + beta * W
        W = W - lr * g

    which is ``torch.optim.SGD(params, lr, weight_decay=beta)`` on ``torch.nn.MSELoss()``
    for ``convention="paper"`` (``kappa = 1/d_out``) and gradient descent on the canonical
    ``U = E||y - Mx||^2 + gamma sum ||W_i||^2`` (``beta = 2 gamma``) for ``"canonical"``.
    Optional noise (both off by default): ``label_noise = sigma`` replaces the batch's targets
    by ``y_i + sigma z_i`` (fresh ``z_i ~ N(0, I)`` every step), and ``temperature = T``
    makes the step SGLD::

        W = W - lr * g + sqrt(2 * lr * T) * xi,    xi ~ N(0, 1) per weight and step

    the Euler-Maruyama step of ``dW = -grad L dt + sqrt(2 T) dB`` in Langevin time
    ``t = lr * steps``, ``L`` the objective in ``convention`` (``kappa * data + (beta/2)
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
    beta, gamma : float >= 0 (exactly one)
        ``beta``: the coupled weight decay added to the gradient (torch's ``weight_decay``;
        the paper's beta). ``gamma``: the canonical coupling, ``beta = 2 kappa gamma``.
    convention : "canonical" (default), "paper" or a Convention
        Fixes ``kappa`` of the data term and the units of ``loss``. ``"paper"``: MSE mean
        over samples and ``d_out`` outputs.
    batch_size : int, optional
        Default: all ``N`` samples (full batch). Must be ``<= N`` unless ``drop_last=False``.
    sampling : "shuffle" | "replacement"
        ``"shuffle"``: a fresh uniform permutation each epoch, batches are its consecutive
        slices (torch ``DataLoader(shuffle=True)``); ``"replacement"``: every batch draws
        ``batch_size`` indices uniformly with replacement.
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
    """
    n = check_n_layers(n_layers, minimum=1)
    width = check_width(width)
    d = as_data(data)
    moments_mode = isinstance(d, Moments)
    d_in, d_out = (d.d_in, d.d_out) if moments_mode else (d.X.shape[1], d.Y.shape[1])
    conv = resolve_training_convention(convention, d_out)
    beta_v, gamma_v = _couplings(beta, gamma, conv)
    lr = _scalar(lr, "lr", positive=True)
    epochs = _int(epochs, "epochs", 0)
    log_every = _int(log_every, "log_every", 1)
    layer_log_every = log_every if layer_log_every is None else _int(layer_log_every, "layer_log_every", 1)
    seed_offset = _int(seed_offset, "seed_offset", 0)
    check_choice(init_fan, "init_fan", _INIT_FANS)
    if isinstance(dtype, str):
        check_choice(dtype, "dtype", tuple(_DTYPES))
        dtype_name = dtype
    else:
        dtype_name = np.dtype(dtype).name if dtype in (np.float32, np.float64) else None
        if dtype_name is None:
            raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    dt = _DTYPES[dtype_name]
    record_steps = bool(record_steps)
    temperature = _scalar(temperature, "temperature")
    label_noise = _scalar(label_noise, "label_noise")
    if not isinstance(drop_last, (bool, np.bool_)):
        raise ValueError(f"drop_last must be True or False, got {drop_last!r}")
    drop_last = bool(drop_last)

    # data
    if moments_mode:
        if batch_size is not None:
            raise ValueError("batch_size must be None for training on moments (every step is full-batch)")
        if label_noise > 0:
            raise ValueError("label_noise must be 0 for training on moments (there are no samples to perturb); "
                             "train on a finite sample (X, Y) instead")
        sampling_name, N, B, spe = "moments", None, None, 1
        train_mom = d
        X = np.zeros((1, d_in), dtype=dt)
        Y = np.zeros((1, d_out), dtype=dt)
        mxx = np.ascontiguousarray(d.input_cov, dtype=dt)
        myx = np.ascontiguousarray(d.cross_cov, dtype=dt)
        mode = K.MODE_MOMENTS
        scale_full = scale_last = 2.0 * conv.kappa
    else:
        check_choice(sampling, "sampling", _SAMPLINGS)
        sampling_name = sampling
        X = np.ascontiguousarray(d.X, dtype=dt)
        Y = np.ascontiguousarray(d.Y, dtype=dt)
        N = X.shape[0]
        B = N if batch_size is None else _int(batch_size, "batch_size", 1)
        if B > N and drop_last:
            raise ValueError(f"batch_size must be <= the number of samples N = {N} with drop_last=True "
                             f"(an epoch would have no step), got {B}; use drop_last=False for one "
                             f"full-batch step per epoch")
        if sampling == "shuffle":
            spe = N // B if drop_last else -(-N // B)
            B = min(B, N)
            last = N - (spe - 1) * B
        else:
            spe = N // B if drop_last else -(-N // B)
            last = B
        train_mom = Moments.from_data(X.astype(np.float64), Y.astype(np.float64))
        mxx = np.zeros((d_in, d_in), dtype=dt)
        myx = np.zeros((d_out, d_in), dtype=dt)
        mode = K.MODE_SHUFFLE if sampling == "shuffle" else K.MODE_REPLACE
        scale_full = 2.0 * conv.kappa / B
        scale_last = 2.0 * conv.kappa / last
    rank = _numerical_rank(train_mom.cross_cov)
    if n >= 2 and width < rank:
        raise ValueError(f"width must be >= {rank}, the rank of the data's cross-covariance that the network "
                         f"must represent, got {width}")
    test_mom = None
    if test is not None:
        t = as_data(test, "test")
        test_mom = t if isinstance(t, Moments) else t.moments()
        if (test_mom.d_in, test_mom.d_out) != (d_in, d_out):
            raise ValueError(f"test has dimensions {test_mom.d_in} -> {test_mom.d_out}, the training data "
                             f"{d_in} -> {d_out}")

    # weights
    lay = _Layout(d_in, d_out, n, width)
    P = lay.n_params
    if isinstance(init, str):
        check_choice(init, "init", _INITS)
        init_name = init
        S = 1 if n_seeds is None else _int(n_seeds, "n_seeds", 1)
        theta0 = None
    else:
        init_name = "given"
        S_req = None if n_seeds is None else _int(n_seeds, "n_seeds", 1)
        theta0 = _flat_init(init, lay.shapes, S_req)
        S = theta0.shape[0]
    entropy = entropy_of(rng)
    seed_index = np.arange(seed_offset, seed_offset + S, dtype=np.int64)
    states = seed_states(trajectory_keys(entropy, seed_index))
    compile_time = 0.0
    if theta0 is None:
        if "draw" not in _WARM:
            t0 = time.perf_counter()
            K.draw_normals(states[:1].copy(), np.ones(2), ZIG_K, ZIG_W, ZIG_F, np.empty((1, 2)))
            compile_time += time.perf_counter() - t0
            _WARM.add("draw")
        theta0 = np.empty((S, P))
        K.draw_normals(states, _init_scales(lay.shapes, init, init_fan, width), ZIG_K, ZIG_W, ZIG_F, theta0)
    theta = np.ascontiguousarray(theta0, dtype=dt)
    initial = theta.copy()

    # logs and outputs
    log_epochs = np.array(sorted(set(range(0, epochs + 1, log_every)) | {epochs}), dtype=np.int64)
    L = log_epochs.size
    layer_epochs = np.array(sorted(set(range(0, epochs + 1, layer_log_every)) | {epochs}), dtype=np.int64)
    kmax = max(min(r, c) for r, c in lay.shapes)
    out_train = np.full((S, L), np.nan)
    out_test = np.full((S, L), np.nan)
    out_loss = np.full((S, L), np.nan)
    out_norm = np.full((S, L), np.nan)
    out_sv = np.full((S, L, min(d_in, d_out)), np.nan)
    out_lsv = np.full((S, layer_epochs.size, n, kmax), np.nan)
    out_steps = np.zeros(S, dtype=np.int64)
    out_status = np.zeros(S, dtype=np.int8)
    total_steps = epochs * spe
    if record_steps:
        bw = B if B is not None else 0
        if S * (total_steps * (bw + P) + P) > _MAX_RECORD_VALUES:
            raise ValueError(f"record_steps would keep {S * (total_steps * (bw + P) + P)} values (more than "
                             f"{_MAX_RECORD_VALUES}); record fewer seeds or epochs")
        rec_idx = np.full((S, total_steps, bw), -1, dtype=np.int64)
        rec_params = np.empty((S, total_steps + 1, P), dtype=dt)
        rec_params[:, 0] = theta
    else:
        rec_idx = np.full((S, 0, 1), -1, dtype=np.int64)
        rec_params = np.empty((S, 0, P), dtype=dt)

    pre, suf, G, C, grad = lay.buffers(S, dt)
    perm = np.zeros((S, {K.MODE_SHUFFLE: N, K.MODE_REPLACE: B}.get(mode, 1)), dtype=np.int64)
    inj_sd = math.sqrt(2.0 * lr * temperature)
    noisy = temperature > 0 or label_noise > 0
    noise = np.zeros((S, max(P, (B or 0) * d_out) if noisy else 1), dtype=dt)
    consts = np.array([lr, beta_v, scale_full, scale_last, 2.0 * conv.kappa], dtype=dt)
    sxx, syx, syy = (np.ascontiguousarray(a, dtype=np.float64)
                     for a in (train_mom.input_cov, train_mom.cross_cov, train_mom.output_cov))
    has_test = test_mom is not None
    if has_test:
        txx, tyx, tyy = (np.ascontiguousarray(a, dtype=np.float64)
                         for a in (test_mom.input_cov, test_mom.cross_cov, test_mom.output_cov))
    else:
        txx, tyx, tyy = np.zeros_like(sxx), np.zeros_like(syx), np.zeros_like(syy)

    def call(lo, hi, theta_, states_, epochs_, logs_, bufs, outs, rec):
        *bufs, noise_ = bufs
        K.train_kernel(lo, hi, theta_, X, Y, mode, lay.dims, lay.offs, lay.poffs, lay.soffs, consts, states_,
                       epochs_, B or 0, spe, N or 0, mxx, myx, *logs_, sxx, syx, syy, has_test, txx, tyx, tyy,
                       float(conv.kappa), float(beta_v), *bufs, *outs, record_steps, *rec, inj_sd, label_noise,
                       ZIG_K, ZIG_W, ZIG_F, noise_)

    threads = numba.get_num_threads() if n_threads is None else _int(n_threads, "n_threads", 1)
    threads = min(threads, S)
    if dtype_name not in _WARM:  # compile (or load from the on-disk cache) on a throw-away run
        t0 = time.perf_counter()
        one = lambda a: a[:1].copy()  # noqa: E731
        call(0, 1, one(theta), one(states), 0, (log_epochs[:0], log_epochs[:0]),
             [one(a) for a in (pre, suf, G, C, grad, perm, noise)],
             [one(a) for a in (out_steps, out_status, out_train, out_test, out_loss, out_norm, out_sv,
                               out_lsv)],
             [one(rec_idx), one(rec_params)])
        compile_time += time.perf_counter() - t0
        _WARM.add(dtype_name)
    bufs = [pre, suf, G, C, grad, perm, noise]
    outs = [out_steps, out_status, out_train, out_test, out_loss, out_norm, out_sv, out_lsv]
    t0 = time.perf_counter()
    if threads == 1:
        call(0, S, theta, states, epochs, (log_epochs, layer_epochs), bufs, outs, [rec_idx, rec_params])
    else:
        logs = (log_epochs, layer_epochs)

        def thread_local():
            """Work buffers, weights and stream of the seed a thread is running, its own: rows of the
            shared (seed, ...) arrays are shorter than a cache line (a stream is 32 bytes), and
            two threads writing neighbouring rows would keep stealing the line from each other."""
            return ([*lay.buffers(1, dt), np.zeros((1, perm.shape[1]), np.int64), np.zeros((1, noise.shape[1]), dt)],
                    np.empty((1, P), dt), np.empty((1, states.shape[1]), states.dtype))

        def work(s, local):
            local_bufs, th1, st1 = local
            th1[0] = theta[s]
            st1[0] = states[s]
            call(0, 1, th1, st1, epochs, logs, local_bufs, [o[s:s + 1] for o in outs],
                 [rec_idx[s:s + 1], rec_params[s:s + 1]])
            theta[s] = th1[0]
            states[s] = st1[0]

        _run_threads(work, S, threads, thread_local)
    wall = time.perf_counter() - t0

    steps_total = int(out_steps.sum())
    stats = {"wall_time": wall, "compile_time": compile_time, "steps_total": steps_total,
             "steps_per_second": steps_total / wall if wall > 0 else math.inf,
             "n_nonfinite": int(np.sum(out_status == K.STATUS_NONFINITE)), "n_threads": threads}
    return TrainingRun(
        n_layers=n, width=width, d_in=int(d_in), d_out=int(d_out), lr=lr, beta=beta_v, gamma=gamma_v,
        convention=conv, batch_size=B, epochs=epochs, n_samples=N, sampling=sampling_name,
        drop_last=drop_last, dtype=dtype_name, init=init_name, init_fan=init_fan, log_every=log_every,
        layer_log_every=layer_log_every,
        seed_offset=seed_offset,
        record_steps=record_steps, train_moments=train_mom, test_moments=test_mom, steps_per_epoch=int(spe),
        seed_index=seed_index, log_epochs=log_epochs, layer_log_epochs=layer_epochs, train_mse=out_train,
        test_mse=out_test if has_test else None,
        loss=out_loss, weight_norm=out_norm, singular_values=out_sv, layer_singular_values=out_lsv,
        steps=out_steps, status=out_status, initial_params=initial, final_params=theta,
        batch_indices=rec_idx if record_steps else None, step_params=rec_params if record_steps else None,
        temperature=temperature, label_noise=label_noise, seeds=(int(entropy),), stats=stats)


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


def batch_gradient(weights, data, *, convention="canonical", beta=0.0, indices=None, dtype="float64") -> list:
    """The training kernel's gradient of ``kappa * mean_batch ||y - Mx||^2 + (beta/2) sum ||W_i||^2``.

    ``data``: ``(X, Y)``/Dataset (the batch is ``indices``, default all rows) or Moments
    (the exact loss of those moments). Returns one array per layer (the kernel's own
    routines, so tests can check them against finite differences and per-sample formulas).
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
    wd = _scalar(beta, "beta")
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
