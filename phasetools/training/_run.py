"""``TrainingRun``: the result of :func:`phasetools.training.train` (one entry per seed)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from .._validation import check_choice
from ..results import Result, register
from ..theory import Convention, layer_shapes
from . import _kernels as K
from ._data import Moments

__all__ = ["TrainingRun", "STATUS_OK", "STATUS_NONFINITE"]

STATUS_OK, STATUS_NONFINITE = K.STATUS_OK, K.STATUS_NONFINITE


@register
@dataclass(frozen=True, eq=False, repr=False)
class TrainingRun(Result):
    """An ensemble of SGD runs of one configuration (one entry per seed).

    Logged every ``log_every`` epochs (``log_epochs``; epoch 0 is the initial state, the
    last epoch is always logged), per seed: ``train_mse`` and ``test_mse`` (element-wise
    mean over samples and outputs, as ``torch.nn.MSELoss()``), ``loss`` (the training
    objective in ``convention``: ``kappa E||y - Mx||^2 + (weight_decay/2) sum ||W_i||^2``,
    absolute, ``E||y||^2`` included), ``weight_norm`` (``sqrt(sum_i ||W_i||_F^2)``),
    ``singular_values`` of the end-to-end map (descending) and ``layer_singular_values``
    (seed, log, layer, k; NaN-padded to the largest ``min(rows, cols)``). Entries after a
    seed diverged are NaN. ``status`` is 0 (ran to the end) or 2 (stopped at step
    ``steps`` by a non-finite weight or end-to-end map). ``initial_params`` and
    ``final_params`` are the flat weights per seed (checkpoints; see :meth:`weights`).
    ``temperature`` and ``label_noise`` record the optional injected (Langevin/SGLD) and
    label noise (0: off). A run trained with a ``schedule`` (:class:`Schedule`) records its
    phases in ``schedule`` (one row per phase: ``SCHEDULE_COLUMNS``, every option filled in);
    its own options (``lr``, ``weight_decay``, ...) are those after the phases. Runs of one configuration and ``rng`` with disjoint seed indices
    merge with ``+`` (:meth:`merge`). Made by :func:`train`; files written with the former
    key ``beta`` load with it as ``weight_decay``.

    Parameters
    ----------
    n_layers, width, d_in, d_out : int
        Weight matrices, hidden width and data dimensions.
    lr, weight_decay, gamma : float
        Learning rate, the weight decay of the update (torch's ``weight_decay``; the paper's
        beta) and the canonical coupling ``gamma = weight_decay / (2 kappa)``.
    convention : Convention
        Fixes ``kappa`` of the data term and the units of ``loss``.
    batch_size, n_samples : int or None
        None for training on moments.
    epochs, steps_per_epoch, log_every, layer_log_every, seed_offset : int
        The schedule (see :func:`train`).
    sampling, dtype, init, init_fan : str
        As given to :func:`train` (``init`` is ``"given"`` for explicit weights).
    drop_last, record_steps : bool
    train_moments, test_moments : Moments
        Moments of the training data and of the test data (None without ``test``).
    seed_index, log_epochs, layer_log_epochs, train_mse, test_mse, loss, weight_norm, \
singular_values, layer_singular_values, steps, status, initial_params, final_params, \
batch_indices, step_params : numpy.ndarray
        The per-seed records described above.
    temperature, label_noise : float
        The injected noise (0: off).
    schedule : numpy.ndarray, optional
        (phase, 6): the phases of a scheduled run (epochs, lr, batch_size, weight_decay,
        temperature, label_noise; batch_size NaN for training on moments); None without one.
    """

    n_layers: int
    width: int
    d_in: int
    d_out: int
    lr: float
    weight_decay: float
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
    schedule: np.ndarray | None = None

    _config_fields = ("n_layers", "width", "d_in", "d_out", "lr", "weight_decay", "gamma", "convention", "batch_size",
                      "epochs", "n_samples", "sampling", "drop_last", "dtype", "init", "init_fan",
                      "log_every", "layer_log_every", "seed_offset", "record_steps", "train_moments",
                      "test_moments", "temperature", "label_noise")
    _dims = {"seed_index": ("seed",), "log_epochs": ("log",), "train_mse": ("seed", "log"),
             "test_mse": ("seed", "log"), "loss": ("seed", "log"), "weight_norm": ("seed", "log"),
             "singular_values": ("seed", "log", "mode"), "layer_log_epochs": ("layer_log",),
             "layer_singular_values": ("seed", "layer_log", "layer", "mode"),
             "steps": ("seed",), "status": ("seed",), "initial_params": ("seed", "param"),
             "final_params": ("seed", "param"), "batch_indices": ("seed", "step", "sample"),
             "step_params": ("seed", "step", "param"), "schedule": ("phase", "option")}
    _coords = {"seed": "seed_index", "log": "log_epochs", "layer_log": "layer_log_epochs"}
    _former_names = {"weight_decay": "beta"}
    _units = {"lr": "time[convention]/step", "weight_decay": "weight_decay", "gamma": "coupling[canonical]",
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
        """Per-layer weights ``[W_1, ..., W_n]``.

        Parameters
        ----------
        which : "final" | "initial"
            The checkpoint.
        seed : int, optional
            One seed (its row of the per-seed arrays); default all seeds.

        Returns
        -------
        list of numpy.ndarray
            Arrays (seed, rows, cols), or (rows, cols) for one ``seed``.
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

        Parameters
        ----------
        other : TrainingRun
            A run of the same configuration and ``rng`` with disjoint seed indices.

        Returns
        -------
        TrainingRun
            A new run; neither part is changed.
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
        if not deep_equal(self.schedule, other.schedule):
            raise ValueError("cannot merge training runs with different schedules")
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
        coupling = f"weight_decay={self.weight_decay:g} (gamma={self.gamma:g})"
        if self.temperature > 0:
            coupling += f", temperature={self.temperature:g}"
        if self.label_noise > 0:
            coupling += f", label_noise={self.label_noise:g}"
        if self.schedule is not None:
            coupling += f", schedule of {len(self.schedule)} phases"
        data = (f"n_samples={self.n_samples}, batch_size={self.batch_size}, sampling={self.sampling!r}"
                if self.n_samples is not None else "population moments")
        return (f"TrainingRun(n_layers={self.n_layers}, width={self.width}, {self.d_in}->{self.d_out}, "
                f"lr={self.lr:g}, {coupling}, convention={self.convention.name!r}, {data}, "
                f"epochs={self.epochs}, dtype={self.dtype!r}, n_seeds={self.n_seeds}, "
                f"diverged={int(self.diverged.sum())})")
