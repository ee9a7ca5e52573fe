"""E5: release rank-1 checkpoints of different residual-seed sizes on a tiny training set."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._progress import progress
from .._rng import seed_sequence, seeds_record
from .._validation import check_int, check_scalar
from ..results import Result, register
from ..theory import Convention
from ._converge import escape_epochs
from ._data import GaussianTeacher, Moments
from ._train import train

__all__ = ["SparseGrokking", "sparse_grokking"]


@register
@dataclass(frozen=True, eq=False, repr=False)
class SparseGrokking(Result):
    """E5: release rank-1 checkpoints of different residual-seed sizes on a tiny training set.

    Row ``r`` of every (run, ...) array is one release: checkpoint prepared for
    ``trap_epochs[r]`` epochs at ``trap_weight_decay`` (longer = smaller residual seed), then
    trained at ``weight_decay`` with ``batch_size[r]``. ``full_batch[r]`` is True when
    ``batch_size >= n_train`` (every epoch is one deterministic full-batch step: no
    minibatch noise). Escape: end-to-end singular value 2 above ``sv_threshold``.
    ``seed_size`` = geometric mean over layers of the second singular value at the
    checkpoint. Files written with the former fields ``beta``/``trap_beta`` load.

    Parameters
    ----------
    n_layers, width, epochs, log_every, pool_size, n_train : int
        The settings of :func:`sparse_grokking`.
    lr, weight_decay, trap_weight_decay, sv_threshold : float
    convention : Convention
    train_moments, test_moments : Moments
    trap_epochs, batch_size, full_batch, run_seed, seed_size, escape_epoch, escaped : numpy.ndarray
        Per release.
    log_epochs, train_mse, test_mse, singular_values : numpy.ndarray
        The logs of every release.
    """

    n_layers: int
    width: int
    lr: float
    weight_decay: float
    trap_weight_decay: float
    epochs: int
    log_every: int
    sv_threshold: float
    convention: Convention
    pool_size: int
    n_train: int
    train_moments: Moments
    test_moments: Moments | None
    trap_epochs: np.ndarray
    batch_size: np.ndarray
    full_batch: np.ndarray
    run_seed: np.ndarray
    seed_size: np.ndarray
    escape_epoch: np.ndarray
    escaped: np.ndarray
    log_epochs: np.ndarray
    train_mse: np.ndarray
    test_mse: np.ndarray
    singular_values: np.ndarray

    _config_fields = ("n_layers", "width", "lr", "weight_decay", "trap_weight_decay", "epochs", "log_every",
                      "sv_threshold", "convention", "pool_size", "n_train", "train_moments", "test_moments")
    _dims = {"trap_epochs": ("run",), "batch_size": ("run",), "full_batch": ("run",), "run_seed": ("run",),
             "seed_size": ("run",), "escape_epoch": ("run",), "escaped": ("run",), "log_epochs": ("log",),
             "train_mse": ("run", "log"), "test_mse": ("run", "log"), "singular_values": ("run", "log", "mode")}
    _coords = {"log": "log_epochs"}
    _units = {"seed_size": "weight", "escape_epoch": "epochs", "log_epochs": "epochs", "train_mse": "mse",
              "test_mse": "mse", "singular_values": "end_to_end", "trap_epochs": "epochs"}
    _former_names = {"weight_decay": "beta", "trap_weight_decay": "trap_beta"}

    @property
    def trapped(self) -> np.ndarray:
        """Per run: singular value 2 starts below ``sv_threshold`` (otherwise the checkpoint was
        not rank 1 and its "escape" at epoch 0 means nothing)."""
        return np.nan_to_num(self.singular_values[:, 0, 1], nan=np.inf) < self.sv_threshold

    @property
    def sampling(self) -> np.ndarray:
        """Per run: the sampler that ran, ``"full"`` where ``full_batch`` (one deterministic step
        per epoch) and ``"shuffle"`` (random reshuffling, the protocol's only minibatch sampler)
        otherwise."""
        return np.where(self.full_batch, "full", "shuffle")

    def __repr__(self):
        return (f"SparseGrokking(n_train={self.n_train}, weight_decay={self.weight_decay:g}, lr={self.lr:g}, runs="
                f"{self.escape_epoch.size}, escaped={int(self.escaped.sum())})")


def _default_trap(mom, n_layers, convention) -> float:
    """Midway between the sample's two spinodals, where only the strong mode is stable."""
    from ..theory import critical_points
    sp = critical_points(n_layers, mom.spectrum, mom.a, convention=convention).gamma_sp
    if sp.size < 2 or not np.all(np.isfinite(sp[:2])):
        raise ValueError("the training sample has fewer than two learnable modes; pass trap_weight_decay")
    return 0.5 * (sp[0] + sp[1])


def _seed_size(trap) -> np.ndarray:
    """Geometric mean over layers of each seed's second singular value."""
    s2 = np.stack([np.linalg.svd(w, compute_uv=False)[:, 1] for w in trap.weights()], axis=1)
    return np.exp(np.mean(np.log(np.maximum(s2, 1e-300)), axis=1))


def sparse_grokking(teacher: GaussianTeacher, *, pool_size, n_train, test_size, weight_decay, lr, batch_size,
                    trap_epochs, epochs, n_layers, width, trap_weight_decay=None, n_seeds=1, convention="paper",
                    sv_threshold=1e-3, log_every=1, rng=None, quiet=False) -> SparseGrokking:
    """E5: escape of mode 2 against the residual seed on a sub-sampled training set.

    The training set is ``teacher.subsample(pool_size, n_train)``; the test set ``test_size``
    fresh samples. Checkpoints: fresh weights trained full-batch at ``trap_weight_decay``
    for each of ``trap_epochs``; a longer preparation leaves a smaller seed of the weak mode.
    Each checkpoint is released at ``weight_decay`` with every batch size of ``batch_size``
    (the paper: 25 of 5000 samples, weight decay 0.0025, lr 0.1 and 64 > 25, which is full
    batch: one deterministic step per epoch; add e.g. 5 for minibatch noise).

    Parameters
    ----------
    teacher : GaussianTeacher
        The data model.
    pool_size, n_train, test_size : int >= 1
        The pool, the training subset drawn from it and the fresh test set.
    weight_decay : float >= 0
        The weight decay of the release.
    lr : float > 0
        Learning rate (preparation and release).
    batch_size : int >= 1 or sequence of them
        Release batch sizes (``>= n_train``: full batch).
    trap_epochs : int >= 1 or sequence of them
        Preparation epochs of the checkpoints.
    epochs : int >= 1
        Release epochs.
    n_layers, width : int
        The network.
    trap_weight_decay : float > 0, optional
        Weight decay of the preparation (default: midway between the sample's two spinodals).
    n_seeds : int >= 1
        Independent initialisations per (trap_epochs, batch_size).
    convention : "paper" (default), "canonical" or Convention
    sv_threshold : float
        Escape: end-to-end singular value 2 above it.
    log_every : int >= 1
        Epochs between log points.
    rng : None, int, SeedSequence or Generator
        Root of the streams (data, test set, runs).
    quiet : bool
        No progress bar.

    Returns
    -------
    SparseGrokking
    """
    if not isinstance(teacher, GaussianTeacher):
        raise ValueError("teacher must be a GaussianTeacher")
    seq = seed_sequence(rng)
    s_data, s_test, s_runs = seq.spawn(3)
    data = teacher.subsample(pool_size, n_train, rng=s_data)
    test = teacher.sample(check_int(test_size, "test_size", 1), rng=s_test)
    mom = data.moments()
    if trap_weight_decay is None:
        trap_weight_decay = _default_trap(mom, n_layers, convention)
    trap_weight_decay = check_scalar(trap_weight_decay, "trap_weight_decay", positive=True)
    te = [check_int(x, "trap_epochs", 1) for x in np.atleast_1d(trap_epochs)]
    bs = [check_int(x, "batch_size", 1) for x in np.atleast_1d(batch_size)]
    kw = dict(n_layers=n_layers, width=width, lr=lr, convention=convention)
    rows = []
    streams = iter(s_runs.spawn(len(te) * (1 + len(bs))))
    for e in progress(te, desc="E5 sparse grokking", quiet=quiet):
        trap = train(mom, weight_decay=trap_weight_decay, epochs=e, n_seeds=n_seeds, log_every=e, rng=next(streams),
                     **kw)
        seed = _seed_size(trap)
        for B in bs:
            fb = B >= n_train
            run = train(data, weight_decay=weight_decay, epochs=epochs, batch_size=B, drop_last=not fb, init=trap,
                        test=test, log_every=log_every, layer_log_every=epochs, rng=next(streams), **kw)
            ep, ok = escape_epochs(run.log_epochs, run.singular_values[:, :, 1], sv_threshold, direction="up")
            rows += [(e, B, fb, s, seed[s], ep[s], ok[s], run.train_mse[s], run.test_mse[s], run.singular_values[s])
                     for s in range(run.n_seeds)]
    c = list(zip(*rows))
    return SparseGrokking(
        n_layers=int(n_layers), width=int(width), lr=float(lr), weight_decay=float(weight_decay),
        trap_weight_decay=float(trap_weight_decay), epochs=int(epochs), log_every=int(log_every),
        sv_threshold=float(sv_threshold), convention=run.convention, pool_size=int(pool_size), n_train=int(n_train),
        train_moments=mom, test_moments=test.moments(), trap_epochs=np.array(c[0], dtype=np.int64),
        batch_size=np.array(c[1], dtype=np.int64), full_batch=np.array(c[2], dtype=bool),
        run_seed=np.array(c[3], dtype=np.int64), seed_size=np.array(c[4], dtype=float),
        escape_epoch=np.array(c[5], dtype=np.int64), escaped=np.array(c[6], dtype=bool), log_epochs=run.log_epochs,
        train_mse=np.stack(c[7]), test_mse=np.stack(c[8]), singular_values=np.stack(c[9]), seeds=seeds_record(seq),
        stats={})
