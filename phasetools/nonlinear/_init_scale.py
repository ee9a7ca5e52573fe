"""Omnigrok's control: the delay between fitting and generalising against the initial weight scale."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .._rng import entropy_of
from .._validation import as_float_array
from ..results import register
from ._model import MLP
from ._tasks import Task
from ._train import Optimizer, _network_fields, _NetworkResult, _provenance, train

__all__ = ["NonlinearInitScale", "init_scale_sweep"]


@register
@dataclass(frozen=True, eq=False, repr=False)
class NonlinearInitScale(_NetworkResult):
    """Grokking curves of the same configuration at several initial scales (``train(init_scale=)``).

    Curves have shape ``(n_scales, n_seeds, n_logs)`` at ``log_epochs``; ``fit_epoch`` and
    ``generalisation_epoch`` ``(n_scales, n_seeds)`` are the first logged epochs with train /
    test accuracy ``>= threshold`` (NaN: censored at ``epochs``). Every scale starts from the
    same unscaled initial weights of each seed (the same streams), multiplied by the scale.

    Parameters
    ----------
    task, task_config, dims, activation, loss
        The data and network (as in :class:`NonlinearRun`).
    optimizer, lr, weight_decay, epochs, batch_size, sampling, n_seeds, dtype, threshold
        The training settings shared by every scale.
    init_scales : ndarray (n_scales,)
        The initial scales.
    log_epochs : ndarray (n_logs,)
        Logged epochs.
    train_acc, test_acc, train_loss, test_loss, weight_norm : ndarray (n_scales, n_seeds, n_logs)
        The curves.
    fit_epoch, generalisation_epoch : ndarray (n_scales, n_seeds)
        First logged epochs at or above ``threshold`` (NaN: not reached).
    """

    optimizer: str
    lr: float
    weight_decay: float
    epochs: int
    batch_size: int
    sampling: str
    n_seeds: int
    dtype: str
    threshold: float
    init_scales: np.ndarray
    log_epochs: np.ndarray
    train_acc: np.ndarray
    test_acc: np.ndarray
    train_loss: np.ndarray
    test_loss: np.ndarray
    weight_norm: np.ndarray
    fit_epoch: np.ndarray
    generalisation_epoch: np.ndarray

    _config_fields = ("task", "task_config", "dims", "activation", "loss", "optimizer", "lr", "weight_decay", "epochs",
                      "batch_size", "sampling", "n_seeds", "dtype", "threshold", "init_scales")
    _dims = {k: ("init_scale", "seed", "log") for k in ("train_acc", "test_acc", "train_loss", "test_loss",
                                                         "weight_norm")} | {
        "init_scales": ("init_scale",), "log_epochs": ("log",), "fit_epoch": ("init_scale", "seed"),
        "generalisation_epoch": ("init_scale", "seed")}
    _coords = {"init_scale": "init_scales", "log": "log_epochs"}
    _units = {"log_epochs": "epochs", "fit_epoch": "epochs", "generalisation_epoch": "epochs"}

    @property
    def delay(self) -> np.ndarray:
        """``generalisation_epoch - fit_epoch`` per scale and seed (NaN where either is censored)."""
        return self.generalisation_epoch - self.fit_epoch

    def __repr__(self):
        return (f"NonlinearInitScale(task={self.task!r}, init_scales={self.init_scales.tolist()}, "
                f"fit_epoch={self.fit_epoch.tolist()}, generalisation_epoch={self.generalisation_epoch.tolist()})")


def init_scale_sweep(task: Task, model: MLP, optimizer: Optimizer, init_scales, *, epochs: int,
                     batch_size: int | None = None, sampling: str = "full", n_seeds: int = 1, dtype: str = "float64",
                     log_every: int = 10, threshold: float = 0.99, rng=None, n_threads: int | None = None,
                     progress=None) -> NonlinearInitScale:
    """Train at each initial scale and time fitting and generalising (Omnigrok's control).

    Parameters
    ----------
    task : Task
        The data.
    model : MLP
        The network (its ``init_std`` is the scale-1 initialisation).
    optimizer : Optimizer
        The optimiser (Omnigrok: AdamW).
    init_scales : array of float > 0
        Multipliers of the initial weights (at least 1).
    epochs : int >= 1
        Budget per scale.
    batch_size, sampling, n_seeds, dtype, log_every, threshold, n_threads
        As in :func:`train`.
    rng : None, int, SeedSequence or Generator
        Root of the streams: every scale uses the same root, so seed ``i`` starts from the
        same direction in weight space at every scale and sees the same batches.
    progress : callable, optional
        Called as ``progress(scales_done, n_scales)``.

    Returns
    -------
    NonlinearInitScale
    """
    scales = as_float_array(init_scales, "init_scales").ravel()
    if scales.size < 1 or np.any(scales <= 0):
        raise ValueError(f"init_scales must hold at least one value > 0, got {init_scales!r}")
    entropy = entropy_of(rng)
    t0 = time.perf_counter()
    runs = []
    for k, s in enumerate(scales):
        runs.append(train(task, model, optimizer, epochs=epochs, batch_size=batch_size, sampling=sampling,
                          n_seeds=n_seeds, dtype=dtype, init_scale=float(s), log_every=log_every, threshold=threshold,
                          rng=entropy, n_threads=n_threads))
        if progress is not None:
            progress(k + 1, scales.size)
    r0 = runs[0]
    curves = {m: np.stack([getattr(r, m) for r in runs]) for m in ("train_acc", "test_acc", "train_loss", "test_loss",
                                                                    "weight_norm", "fit_epoch",
                                                                    "generalisation_epoch")}
    return NonlinearInitScale(*_network_fields(task, model), optimizer.kind, optimizer.lr, optimizer.weight_decay,
                              r0.epochs, r0.batch_size, sampling, r0.n_seeds, dtype, r0.threshold, scales,
                              r0.log_epochs, **curves, **_provenance(entropy, t0))
