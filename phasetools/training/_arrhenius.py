"""E4: escape times from one trapped checkpoint over a grid of ``(lr, batch_size)`` points."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .._progress import progress
from .._rng import seed_sequence, seeds_record
from .._validation import check_choice, check_int, check_scalar
from ..results import Result, register
from ..theory import Convention
from ._converge import RANK_THRESHOLD, escape_epochs, finite_init, layer_sv, rank
from ._data import Dataset, as_data
from ._noise import effective_temperature, gradient_covariance
from ._options import SAMPLINGS
from ._run import TrainingRun
from ._train import train

__all__ = ["ArrheniusSweep", "arrhenius_sweep"]


@register
@dataclass(frozen=True, eq=False, repr=False)
class ArrheniusSweep(Result):
    """E4: escape times from one trapped checkpoint over a grid of ``(lr, batch_size)`` points.

    Per point: escape epochs per seed by the test-MSE midpoint rule of
    :class:`TrapRelease` (censored at ``epochs``), the censoring-aware exponential mean
    ``tau`` with its interval in epochs, steps and Langevin time ``lr * steps``, and
    ``temperature``: the effective temperature ``lr tr(Sigma) / (2 B N_theta)``
    (without-replacement factor included) of the per-sample gradient covariance ``Sigma``
    measured on the training data at the checkpoint (median over seeds), in convention units.
    ``sampling`` names the minibatch sampler of the release (``"shuffle"``, ``"replacement"``
    or ``"full"``); files written before it was recorded load as ``"shuffle"``, the only
    sampler the sweep used then. Files written with the former field ``target_beta`` load.

    Parameters
    ----------
    n_layers, width, epochs, n_samples : int
        The network, the release epochs and the training-set size.
    target_weight_decay : float
        The weight decay of the release.
    convention : Convention
    steps_per_epoch_rule : str
    plateau_level, target_level, midpoint : float
        The test-MSE levels of the midpoint rule.
    lr, batch_size, steps_per_epoch, temperature, gradient_trace : numpy.ndarray
        Per point.
    escape_epoch, escaped : numpy.ndarray
        (point, seed).
    tau_epochs, tau_epochs_low, tau_epochs_high, tau_time, tau_time_low, tau_time_high : numpy.ndarray
        Per point: the exponential-MLE mean escape time and its interval.
    seed_size : numpy.ndarray
        (seed, layer): the residual seed at the checkpoint.
    sampling : str
        The release's sampler (keyword-only; default ``"shuffle"``).
    """

    n_layers: int
    width: int
    target_weight_decay: float
    epochs: int
    convention: Convention
    steps_per_epoch_rule: str
    n_samples: int
    plateau_level: float
    target_level: float
    midpoint: float
    lr: np.ndarray
    batch_size: np.ndarray
    steps_per_epoch: np.ndarray
    temperature: np.ndarray
    gradient_trace: np.ndarray
    escape_epoch: np.ndarray
    escaped: np.ndarray
    tau_epochs: np.ndarray
    tau_epochs_low: np.ndarray
    tau_epochs_high: np.ndarray
    tau_time: np.ndarray
    tau_time_low: np.ndarray
    tau_time_high: np.ndarray
    seed_size: np.ndarray
    sampling: str = field(default="shuffle", kw_only=True)

    _config_fields = ("n_layers", "width", "target_weight_decay", "epochs", "convention", "steps_per_epoch_rule",
                      "n_samples", "plateau_level", "target_level", "midpoint", "sampling")
    _dims = {"lr": ("point",), "batch_size": ("point",), "steps_per_epoch": ("point",),
             "temperature": ("point",), "gradient_trace": ("point",), "escape_epoch": ("point", "seed"),
             "escaped": ("point", "seed"), "tau_epochs": ("point",), "tau_epochs_low": ("point",),
             "tau_epochs_high": ("point",), "tau_time": ("point",), "tau_time_low": ("point",),
             "tau_time_high": ("point",), "seed_size": ("seed", "layer")}
    _units = {"lr": "time[convention]/step", "temperature": "loss[convention]", "escape_epoch": "epochs",
              "tau_epochs": "epochs", "tau_epochs_low": "epochs", "tau_epochs_high": "epochs",
              "tau_time": "time[convention]", "tau_time_low": "time[convention]",
              "tau_time_high": "time[convention]", "seed_size": "weight"}
    _former_names = {"target_weight_decay": "target_beta"}

    @property
    def n_escaped(self) -> np.ndarray:
        """Escaped seeds per point."""
        return self.escaped.sum(axis=1)

    @property
    def tau_steps(self) -> np.ndarray:
        """``tau`` in SGD steps per point (``tau_epochs * steps_per_epoch``)."""
        return self.tau_epochs * self.steps_per_epoch

    def fit(self, x="inverse_temperature", confidence=0.95):
        """Arrhenius fit of ``ln tau_time``; points without an escape are left out.

        Parameters
        ----------
        x : "inverse_temperature" | "batch_size/lr"
            Against ``1/temperature`` (slope = barrier) or ``batch_size/lr`` (slope = barrier * C).
        confidence : float
            Level of the interval.

        Returns
        -------
        phasetools.stats.ArrheniusFit
            ValueError with fewer than two points with escapes.
        """
        from ..stats import arrhenius_fit
        check_choice(x, "x", ("inverse_temperature", "batch_size/lr"))
        ok = np.isfinite(self.tau_time) & (self.n_escaped > 0)
        if ok.sum() < 2:
            raise ValueError(f"an Arrhenius fit needs >= 2 points with escapes, this sweep has {int(ok.sum())}")
        xs = 1.0 / self.temperature[ok] if x == "inverse_temperature" else (self.batch_size / self.lr)[ok]
        se = 0.5 * (self.tau_time_high - self.tau_time_low)[ok] / 1.959964
        return arrhenius_fit(xs, self.tau_time[ok], tau_stderr=se, x_is=x, confidence=confidence,
                             time_unit="time")

    def __repr__(self):
        pts = ", ".join(f"(lr={a:g}, B={b}): {int(e)}/{self.escaped.shape[1]}"
                        for a, b, e in zip(self.lr, self.batch_size, self.n_escaped))
        return (f"ArrheniusSweep(target_weight_decay={self.target_weight_decay:g}, epochs={self.epochs}, "
                f"sampling={self.sampling!r}, escaped {pts})")


def _points(lr, batch_size):
    """The ``(lr, batch_size)`` points: the two broadcast against each other."""
    lr_a, b_a = np.broadcast_arrays(np.atleast_1d(np.asarray(lr, dtype=float)), np.atleast_1d(np.asarray(batch_size)))
    for v in lr_a:
        check_scalar(v, "lr", positive=True)
    return lr_a.astype(float), np.array([check_int(v, "batch_size", 1) for v in b_a], dtype=np.int64)


def _point(d, start, trap_trace, n_params, lr, B, mid, direction, kw, rng):
    """One point: ``(steps_per_epoch, T_eff, trace, escape epochs, escaped, tau, low, high, and in time)``."""
    from ..stats import exponential_mle
    run = train(d, lr=lr, batch_size=B, init=start, rng=rng, **kw)
    series = run.test_mse if run.test_mse is not None else run.train_mse
    ep, ok = escape_epochs(run.log_epochs, series, mid, direction=direction)
    temp = effective_temperature(trap_trace, n_params, lr, B, d.n_samples)
    fit = exponential_mle(ep.astype(float), ~ok, time_unit="epochs")
    tscale = lr * run.steps_per_epoch
    lo, hi = fit.tau_ci if fit.tau_ci is not None else (fit.tau_lower, np.inf)
    tau = fit.tau if fit.tau is not None else np.nan
    return (run.steps_per_epoch, temp, trap_trace, ep, ok, tau, lo, hi, tau * tscale, lo * tscale, hi * tscale)


def arrhenius_sweep(data, trap: TrainingRun, *, lr, batch_size, target_weight_decay, epochs, levels, n_layers=None,
                    width=None, convention="paper", test=None, log_every=1, sampling="shuffle", rng=None,
                    quiet=False) -> ArrheniusSweep:
    """E4: release ``trap`` (every seed of the checkpoint) at each ``(lr, batch_size)`` point.

    Parameters
    ----------
    data : (X, Y) or Dataset
        The training samples (the sweep is over minibatch noise).
    trap : TrainingRun
        The checkpoint every point starts from (e.g. from :func:`prepare_trap`).
    lr : float > 0 or sequence of them
        Learning rates; broadcast against ``batch_size`` (one point per pair).
    batch_size : int >= 1 or sequence of them
        Batch sizes.
    target_weight_decay : float >= 0
        The weight decay of the release.
    epochs : int >= 1
        Release epochs per point (escapes later are censored).
    levels : (plateau, target)
        The test-MSE levels of the midpoint rule (e.g. from :func:`mse_levels`, or a
        :class:`TrapRelease`'s ``(plateau_level, target_level)``).
    n_layers, width : int, optional
        The network (default: the checkpoint's).
    convention : "paper" (default), "canonical" or Convention
    test : (X, Y), Dataset, Moments or GaussianTeacher, optional
        Where the test MSE is measured.
    log_every : int >= 1
        Epochs between log points.
    sampling : {"shuffle", "replacement", "full"}
        The minibatch sampler of every release (:func:`train`; default ``"shuffle"``, random
        reshuffling); recorded in the result.
    rng : None, int, SeedSequence or Generator
        Root of the streams (one spawned per point).
    quiet : bool
        No progress bar.

    Returns
    -------
    ArrheniusSweep
    """
    d = as_data(data)
    if not isinstance(d, Dataset):
        raise ValueError("data must be samples (X, Y) or a Dataset: the sweep is over minibatch noise")
    if not isinstance(trap, TrainingRun):
        raise ValueError("trap must be a TrainingRun (the checkpoint every point starts from)")
    lr_a, b_a = _points(lr, batch_size)
    target_weight_decay = check_scalar(target_weight_decay, "target_weight_decay")
    epochs = check_int(epochs, "epochs", 1)
    check_choice(sampling, "sampling", SAMPLINGS)
    plateau, target = (float(x) for x in levels)
    mid = 0.5 * (plateau + target)
    direction = "down" if target < plateau else "up"
    n_layers = trap.n_layers if n_layers is None else n_layers
    width = trap.width if width is None else width
    seq = seed_sequence(rng)
    streams = seq.spawn(lr_a.size)
    start, _ = finite_init(trap)
    ws = start if isinstance(start, list) else trap.weights()
    k = min(int(np.median(rank(trap.singular_values[:, -1], RANK_THRESHOLD))), trap.singular_values.shape[-1] - 1)
    tr = float(np.median([gradient_covariance([w[s] for w in ws], d, convention=convention).trace
                          for s in range(ws[0].shape[0])]))
    kw = dict(n_layers=n_layers, width=width, weight_decay=target_weight_decay, convention=convention, epochs=epochs,
              test=test, log_every=log_every, layer_log_every=epochs, sampling=sampling)
    rows = [_point(d, start, tr, trap.n_params, float(lr_a[i]), int(b_a[i]), mid, direction, kw, streams[i])
            for i in progress(range(lr_a.size), desc="E4 Arrhenius sweep", quiet=quiet)]
    cols = list(zip(*rows))
    return ArrheniusSweep(
        n_layers=int(n_layers), width=int(width), target_weight_decay=target_weight_decay, epochs=epochs,
        convention=trap.convention, steps_per_epoch_rule="floor(N / batch_size)", n_samples=int(d.n_samples),
        plateau_level=plateau, target_level=target, midpoint=mid, lr=lr_a, batch_size=b_a,
        steps_per_epoch=np.array(cols[0], dtype=np.int64), temperature=np.array(cols[1]),
        gradient_trace=np.array(cols[2]), escape_epoch=np.stack(cols[3]), escaped=np.stack(cols[4]),
        tau_epochs=np.array(cols[5], dtype=float), tau_epochs_low=np.array(cols[6], dtype=float),
        tau_epochs_high=np.array(cols[7], dtype=float), tau_time=np.array(cols[8], dtype=float),
        tau_time_low=np.array(cols[9], dtype=float), tau_time_high=np.array(cols[10], dtype=float),
        seed_size=layer_sv(ws, k), sampling=sampling, seeds=seeds_record(seq), stats={})
