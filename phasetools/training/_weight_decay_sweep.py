"""E1: the quasi-static weight-decay sweep, re-converged at every value."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._progress import progress
from .._rng import seed_sequence, seeds_record
from .._validation import as_float_array, check_int, check_scalar
from ..results import Result, register
from ..theory import Convention
from ._converge import RANK_THRESHOLD, converge, end_to_end_maps, grad_norms, rank
from ._data import Moments, as_data, as_moments
from ._train import train

__all__ = ["WeightDecaySweep", "weight_decay_sweep"]


@register
@dataclass(frozen=True, eq=False, repr=False)
class WeightDecaySweep(Result):
    """E1: the state reached at each weight decay of a quasi-static sweep (one row per seed).

    At each ``weight_decays[j]`` the network continues from the previous value's end state
    and is re-converged: full-batch gradient descent until the gradient norm is below
    ``tol`` (``batch_size=None``) or ``epochs_per_step`` epochs of minibatch SGD. ``rank``
    counts end-to-end singular values above ``rank_threshold``. Made by
    :func:`weight_decay_sweep`; files written with the former field ``betas`` load.

    Parameters
    ----------
    n_layers, width : int
        The network.
    lr : float
        Learning rate.
    convention : Convention
        Units of the weight decays and of ``loss``.
    batch_size : int or None
        Minibatch size (None: full-batch convergence).
    tol, chunk_epochs, max_epochs, epochs_per_step, start_epochs, rank_threshold, direction
        The sweep's settings (see :func:`weight_decay_sweep`).
    train_moments, test_moments : Moments
        Moments of the training and test data (None without ``test``).
    weight_decays : numpy.ndarray
        The weight decays in sweep order.
    rank, singular_values, train_mse, test_mse, loss, grad_norm, converged, epochs : numpy.ndarray
        (seed, step[, mode]): the state at each weight decay.
    final_params : numpy.ndarray
        (seed, param): the weights at the last weight decay.
    """

    n_layers: int
    width: int
    lr: float
    convention: Convention
    batch_size: int | None
    tol: float
    chunk_epochs: int
    max_epochs: int
    epochs_per_step: int | None
    start_epochs: int
    rank_threshold: float
    direction: str
    train_moments: Moments
    test_moments: Moments | None
    weight_decays: np.ndarray
    rank: np.ndarray
    singular_values: np.ndarray
    train_mse: np.ndarray
    test_mse: np.ndarray | None
    loss: np.ndarray
    grad_norm: np.ndarray
    converged: np.ndarray
    epochs: np.ndarray
    final_params: np.ndarray

    _config_fields = ("n_layers", "width", "lr", "convention", "batch_size", "tol", "chunk_epochs", "max_epochs",
                      "epochs_per_step", "start_epochs", "rank_threshold", "direction", "train_moments",
                      "test_moments")
    _dims = {"weight_decays": ("step",), "rank": ("seed", "step"), "singular_values": ("seed", "step", "mode"),
             "train_mse": ("seed", "step"), "test_mse": ("seed", "step"), "loss": ("seed", "step"),
             "grad_norm": ("seed", "step"), "converged": ("seed", "step"), "epochs": ("seed", "step"),
             "final_params": ("seed", "param")}
    _coords = {"step": "weight_decays"}
    _units = {"weight_decays": "weight_decay", "train_mse": "mse", "test_mse": "mse", "loss": "loss[convention]",
              "singular_values": "end_to_end", "epochs": "epochs", "final_params": "weight"}
    _former_names = {"weight_decays": "betas"}

    @property
    def n_seeds(self) -> int:
        """Number of seeds."""
        return int(self.rank.shape[0])

    @property
    def sampling(self) -> str:
        """The sampler of every step: ``"moments"`` without ``batch_size`` (full-batch descent on
        the data's exact moments, a finite draw's included), else ``"shuffle"`` (random
        reshuffling, the protocol's minibatch sampler)."""
        return "moments" if self.batch_size is None else "shuffle"

    def drops(self, seed: int = 0) -> list:
        """Every change of rank along the sweep for one seed.

        Parameters
        ----------
        seed : int
            Row of the per-seed arrays.

        Returns
        -------
        list of tuple
            ``(weight_decay_before, weight_decay_after, rank_before, rank_after)``; the
            transition lies between the two weight decays.
        """
        r = self.rank[int(seed)]
        wd = self.weight_decays
        return [(float(wd[j - 1]), float(wd[j]), int(r[j - 1]), int(r[j])) for j in range(1, r.size) if r[j] != r[j - 1]]

    def drop_positions(self) -> np.ndarray:
        """(seed, k): the first weight decay at which the rank is below ``r0 - k`` (``r0`` the
        rank at the first value), NaN if never. For an increasing sweep, the spinodal of the
        ``k``-th lost mode lies in ``(weight_decays[j-1], weight_decays[j]]``.

        Returns
        -------
        numpy.ndarray
        """
        r0 = int(self.rank[:, 0].max()) if self.rank.size else 0
        out = np.full((self.n_seeds, max(r0, 1)), np.nan)
        for s in range(self.n_seeds):
            for k in range(r0):
                hit = np.nonzero(self.rank[s] < self.rank[s, 0] - k)[0]
                if hit.size:
                    out[s, k] = self.weight_decays[hit[0]]
        return out

    def __repr__(self):
        wd = self.weight_decays
        return (f"WeightDecaySweep({self.direction}, weight_decays {wd[0]:g}..{wd[-1]:g} ({wd.size} values), "
                f"n_seeds={self.n_seeds}, rank {self.rank[:, 0].tolist()} -> {self.rank[:, -1].tolist()})")


def _check_weight_decays(weight_decays):
    b = as_float_array(weight_decays, "weight_decays")
    if b.ndim != 1 or b.size < 2 or not np.all(np.isfinite(b)) or np.any(b < 0):
        raise ValueError("weight_decays must be a 1-D list of at least 2 finite weight decays >= 0")
    d = np.diff(b)
    if np.all(d > 0):
        return b, "increasing"
    if np.all(d < 0):
        return b, "decreasing"
    raise ValueError("weight_decays must be strictly increasing or strictly decreasing (one sweep direction)")


def _schedule(d, batch_size, epochs_per_step, start_epochs):
    """``(epochs_per_step, start_epochs)`` of a minibatch (``batch_size``) or full-batch sweep."""
    if batch_size is not None:
        if isinstance(d, Moments):
            raise ValueError("batch_size needs samples (X, Y) or a Dataset, not moments")
        if epochs_per_step is None:
            raise ValueError("epochs_per_step is needed for a minibatch sweep (batch_size=...): the SGD epochs "
                             "at each weight decay")
        epochs_per_step = check_int(epochs_per_step, "epochs_per_step", 1)
        return epochs_per_step, 10 * epochs_per_step if start_epochs is None else check_int(start_epochs,
                                                                                            "start_epochs", 1)
    if epochs_per_step is not None:
        raise ValueError("epochs_per_step applies to minibatch sweeps (batch_size=...); full-batch sweeps "
                         "converge to tol")
    return None, 0 if start_epochs is None else check_int(start_epochs, "start_epochs", 0)


def weight_decay_sweep(data, weight_decays, *, n_layers, width, lr, convention="paper", n_seeds=1, init="std",
                       batch_size=None, epochs_per_step=None, tol=1e-8, chunk_epochs=1000, max_epochs=100_000,
                       start_epochs=None, rank_threshold=RANK_THRESHOLD, test=None, rng=None,
                       quiet=False) -> WeightDecaySweep:
    """E1: sweep the weight decay quasi-statically and record the state at each value.

    Starts from ``init`` (random weights by default, drawn from ``rng``), converges at
    ``weight_decays[0]`` and then steps through ``weight_decays`` (strictly increasing or
    decreasing), re-converging at each value from the previous end state. On population
    data (``GaussianTeacher([0.9, 0.8]).moments``, ``n_layers=3``, ``convention="paper"``) an
    increasing sweep from 0 loses the weak mode at the first value above 0.3509 and the
    strong one above 0.4105 (the spinodals); a decreasing sweep that starts at rank 0 stays
    there (no lower spinodal for ``n_layers >= 3``).

    Parameters
    ----------
    data : (X, Y), Dataset, Moments or GaussianTeacher
        The training data.
    weight_decays : 1-D array of float >= 0
        The weight decays in sweep order (strictly monotonic, at least two).
    n_layers, width : int
        The network.
    lr : float > 0
        Learning rate (the paper: 0.08).
    convention : "paper" (default), "canonical" or Convention
        Units of the weight decays.
    n_seeds : int >= 1
        Independent initialisations.
    init : "std", "variance", list of arrays or TrainingRun
        Starting weights (as :func:`train`).
    batch_size : int, optional
        None (default): full-batch gradient descent (a Dataset is trained on its exact
        moments) until the gradient norm is below ``tol``, checked every ``chunk_epochs``, at
        most ``max_epochs`` (``converged`` records it). An int: ``epochs_per_step`` epochs of
        minibatch SGD per value (``start_epochs`` at the first value, default
        ``10 * epochs_per_step``).
    epochs_per_step, start_epochs : int, optional
        The minibatch schedule (``epochs_per_step`` required with ``batch_size``).
    tol : float > 0
        Full-batch convergence criterion on the gradient norm.
    chunk_epochs, max_epochs : int >= 1
        Full-batch steps between checks, and at most.
    rank_threshold : float > 0
        Singular values above it count towards ``rank``.
    test : (X, Y), Dataset, Moments or GaussianTeacher, optional
        Where ``test_mse`` is measured.
    rng : None, int, SeedSequence or Generator
        Root of the streams (one spawned per weight decay).
    quiet : bool
        No progress bar.

    Returns
    -------
    WeightDecaySweep
    """
    b, direction = _check_weight_decays(weight_decays)
    d = as_data(data)
    mom = as_moments(d)
    test_mom = None if test is None else as_moments(test, "test")
    rank_threshold = check_scalar(rank_threshold, "rank_threshold", positive=True)
    epochs_per_step, start_epochs = _schedule(d, batch_size, epochs_per_step, start_epochs)
    seq = seed_sequence(rng)
    cols = {k: [] for k in ("sv", "train", "test", "loss", "g", "ok", "ep")}
    state = init
    kw = dict(n_layers=n_layers, width=width, lr=lr, convention=convention)
    for j in progress(range(b.size), desc="E1 weight-decay sweep", quiet=quiet):
        wd = float(b[j])
        if batch_size is not None:
            ep = epochs_per_step + (start_epochs if j == 0 else 0)
            run = train(d, weight_decay=wd, batch_size=batch_size, epochs=ep, init=state,
                        n_seeds=n_seeds if isinstance(state, str) else None, log_every=ep, rng=seq.spawn(1)[0],
                        **kw)
            g, ok = grad_norms(run, mom, wd), np.zeros(run.n_seeds, dtype=bool)
        else:
            if isinstance(state, str):
                state = train(mom, weight_decay=wd, epochs=0, init=state, n_seeds=n_seeds, rng=seq.spawn(1)[0], **kw)
            run, ep, g, ok = converge(mom, state, weight_decay=wd, tol=tol, chunk_epochs=chunk_epochs,
                                      max_epochs=max_epochs, rng=seq.spawn(1)[0], **kw)
        state = run
        M = end_to_end_maps(run)
        cols["sv"].append(run.singular_values[:, -1])
        cols["train"].append(np.array([mom.mse(m) for m in M]))
        cols["test"].append(np.array([test_mom.mse(m) for m in M]) if test_mom is not None else None)
        cols["loss"].append(run.loss[:, -1])
        cols["g"].append(g)
        cols["ok"].append(ok)
        cols["ep"].append(np.full(run.n_seeds, ep))
    sv = np.stack(cols["sv"], axis=1)
    return WeightDecaySweep(
        n_layers=int(n_layers), width=int(width), lr=float(lr), convention=state.convention,
        batch_size=None if batch_size is None else int(batch_size), tol=float(tol), chunk_epochs=int(chunk_epochs),
        max_epochs=int(max_epochs), epochs_per_step=epochs_per_step, start_epochs=int(start_epochs),
        rank_threshold=rank_threshold, direction=direction, train_moments=mom, test_moments=test_mom,
        weight_decays=b, rank=rank(sv, rank_threshold), singular_values=sv, train_mse=np.stack(cols["train"], axis=1),
        test_mse=np.stack(cols["test"], axis=1) if test_mom is not None else None,
        loss=np.stack(cols["loss"], axis=1), grad_norm=np.stack(cols["g"], axis=1),
        converged=np.stack(cols["ok"], axis=1), epochs=np.stack(cols["ep"], axis=1).astype(np.int64),
        final_params=np.asarray(state.final_params, dtype=np.float64), seeds=seeds_record(seq), stats={})
