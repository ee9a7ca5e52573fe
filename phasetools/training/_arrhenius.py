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
from ._predict import predict_escape
from ._run import TrainingRun
from ._train import train

__all__ = ["ESCAPE_CRITERIA", "ArrheniusSweep", "arrhenius_sweep"]

#: The escape rules of :func:`arrhenius_sweep` (``criterion=``).
ESCAPE_CRITERIA = ("test_mse", "rank")


@register
@dataclass(frozen=True, eq=False, repr=False)
class ArrheniusSweep(Result):
    """E4: escape times from one trapped checkpoint over a grid of ``(lr, batch_size)`` points.

    Per point: escape epochs per seed by the escape rule ``criterion`` (censored at ``epochs``),
    the censoring-aware exponential mean
    ``tau`` with its interval in epochs, steps and Langevin time ``lr * steps``, and
    ``temperature``: the effective temperature ``lr tr(Sigma) / (2 B N_theta)``
    (without-replacement factor included) of the per-sample gradient covariance ``Sigma``
    measured on the training data at the checkpoint (median over seeds), in convention units.
    ``sampling`` names the minibatch sampler of the release (``"shuffle"``, ``"replacement"``
    or ``"full"``); files written before it was recorded load as ``"shuffle"``, the only
    sampler the sweep used then. Files written with the former field ``target_beta`` load.

    ``criterion`` names the escape rule. ``"test_mse"``: the first log epoch where the test MSE
    crosses ``midpoint`` (the midpoint rule of :class:`TrapRelease`). ``"rank"``: the first log
    epoch where the escaping mode's end-to-end singular value (``singular_values[..., sv_index]``
    of the release) falls below ``sv_threshold``, its value at the MSE midpoint between the
    learned value and 0 (the stop of :func:`predict_escape`); under random reshuffling the test
    MSE crosses its midpoint in short excursions while the mode stays learned, and only this rule
    counts escapes. With ``"rank"`` the test-MSE rule's epochs of the same releases are kept in
    ``escape_epoch_mse``/``escaped_mse`` for contrast. Files written before the criterion was
    recorded load as ``"test_mse"``, the only rule the sweep had then.

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
    criterion : str
        The escape rule, ``"test_mse"`` or ``"rank"`` (keyword-only; default ``"test_mse"``).
    sv_index : int
        ``"rank"``: the escaping mode's index among the end-to-end singular values (descending);
        -1 under ``"test_mse"`` (keyword-only).
    sv_threshold : float
        ``"rank"``: the escaping mode's end-to-end value at its MSE midpoint; NaN under
        ``"test_mse"`` (keyword-only).
    escape_epoch_mse, escaped_mse : numpy.ndarray or None
        ``"rank"``: (point, seed) escape epochs of the same releases by the test-MSE midpoint rule;
        None under ``"test_mse"`` (keyword-only).
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
    criterion: str = field(default="test_mse", kw_only=True)
    sv_index: int = field(default=-1, kw_only=True)
    sv_threshold: float = field(default=float("nan"), kw_only=True)
    escape_epoch_mse: np.ndarray | None = field(default=None, kw_only=True)
    escaped_mse: np.ndarray | None = field(default=None, kw_only=True)

    _config_fields = ("n_layers", "width", "target_weight_decay", "epochs", "convention", "steps_per_epoch_rule",
                      "n_samples", "plateau_level", "target_level", "midpoint", "sampling", "criterion",
                      "sv_index", "sv_threshold")
    _dims = {"lr": ("point",), "batch_size": ("point",), "steps_per_epoch": ("point",),
             "temperature": ("point",), "gradient_trace": ("point",), "escape_epoch": ("point", "seed"),
             "escaped": ("point", "seed"), "tau_epochs": ("point",), "tau_epochs_low": ("point",),
             "tau_epochs_high": ("point",), "tau_time": ("point",), "tau_time_low": ("point",),
             "tau_time_high": ("point",), "seed_size": ("seed", "layer"), "escape_epoch_mse": ("point", "seed"),
             "escaped_mse": ("point", "seed")}
    _units = {"lr": "time[convention]/step", "temperature": "loss[convention]", "escape_epoch": "epochs",
              "tau_epochs": "epochs", "tau_epochs_low": "epochs", "tau_epochs_high": "epochs",
              "tau_time": "time[convention]", "tau_time_low": "time[convention]",
              "tau_time_high": "time[convention]", "seed_size": "weight",
              "escape_epoch_mse": "epochs", "sv_threshold": "end_to_end"}
    _former_names = {"target_weight_decay": "target_beta"}

    @property
    def n_escaped(self) -> np.ndarray:
        """Escaped seeds per point."""
        return self.escaped.sum(axis=1)

    @property
    def tau_steps(self) -> np.ndarray:
        """``tau`` in SGD steps per point (``tau_epochs * steps_per_epoch``)."""
        return self.tau_epochs * self.steps_per_epoch

    def tau_epochs_of(self, criterion) -> np.ndarray:
        """Exponential-MLE mean escape time in epochs per point by one escape rule.

        Parameters
        ----------
        criterion : {"test_mse", "rank"}
            The rule: the sweep's own (``tau_epochs``), or ``"test_mse"`` on a ``"rank"`` sweep
            (from ``escape_epoch_mse``; NaN where no seed escaped).

        Returns
        -------
        numpy.ndarray
            ``tau`` per point.
        """
        from ..stats import exponential_mle
        check_choice(criterion, "criterion", ESCAPE_CRITERIA)
        if criterion == self.criterion:
            return np.asarray(self.tau_epochs, dtype=float)
        if criterion != "test_mse" or self.escape_epoch_mse is None:
            raise ValueError(f"criterion={criterion!r}: this sweep kept only its own rule {self.criterion!r}")
        out = [exponential_mle(ep.astype(float), ~ok, time_unit="epochs").tau
               for ep, ok in zip(self.escape_epoch_mse, self.escaped_mse)]
        return np.array([np.nan if t is None else t for t in out], dtype=float)

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
                f"sampling={self.sampling!r}, criterion={self.criterion!r}, escaped {pts})")


def _points(lr, batch_size):
    """The ``(lr, batch_size)`` points: the two broadcast against each other."""
    lr_a, b_a = np.broadcast_arrays(np.atleast_1d(np.asarray(lr, dtype=float)), np.atleast_1d(np.asarray(batch_size)))
    for v in lr_a:
        check_scalar(v, "lr", positive=True)
    return lr_a.astype(float), np.array([check_int(v, "batch_size", 1) for v in b_a], dtype=np.int64)


def _rank_rule(d, trap, n_layers, width, weight_decay, convention, lr, batch_size):
    """``(sv_index, sv_threshold)`` of the rank criterion: the checkpoint's weakest learned mode and
    its end-to-end value at the MSE midpoint between its learned value and 0 (:func:`predict_escape`'s stop)."""
    k = int(np.median(rank(trap.singular_values[:, -1], RANK_THRESHOLD))) - 1
    if k < 0:
        raise ValueError("criterion='rank' needs a checkpoint with a learned mode to lose (its rank is 0)")
    try:
        ref = predict_escape(d, n_layers=n_layers, width=width, weight_decay=weight_decay, lr=lr,
                             batch_size=batch_size, sampling="replacement", mode=k, convention=convention)
    except ValueError as e:
        raise ValueError(f"criterion='rank': mode {k} has no metastable learned state at target_weight_decay = "
                         f"{weight_decay!r} to take its MSE-midpoint value from ({e})") from e
    return k, float(ref.b_target) ** n_layers


def _escapes(run, mid, direction, rule):
    """``(epochs, escaped)`` by the rule: ``rule`` None is the test-MSE midpoint, else ``(sv_index, sv_threshold)``."""
    if rule is not None:
        return escape_epochs(run.log_epochs, run.singular_values[:, :, rule[0]], rule[1], direction="down")
    series = run.test_mse if run.test_mse is not None else run.train_mse
    return escape_epochs(run.log_epochs, series, mid, direction=direction)


def _point(d, start, trap_trace, n_params, lr, B, mid, direction, rule, kw, rng):
    """One point: ``(steps_per_epoch, T_eff, trace, escape epochs, escaped, tau, low, high, and in time,
    test-MSE escape epochs, escaped)`` (the last two None unless ``rule`` is the rank criterion's)."""
    from ..stats import exponential_mle
    run = train(d, lr=lr, batch_size=B, init=start, rng=rng, **kw)
    ep, ok = _escapes(run, mid, direction, rule)
    mse = _escapes(run, mid, direction, None) if rule is not None else (None, None)
    temp = effective_temperature(trap_trace, n_params, lr, B, d.n_samples)
    fit = exponential_mle(ep.astype(float), ~ok, time_unit="epochs")
    tscale = lr * run.steps_per_epoch
    lo, hi = fit.tau_ci if fit.tau_ci is not None else (fit.tau_lower, np.inf)
    tau = fit.tau if fit.tau is not None else np.nan
    return (run.steps_per_epoch, temp, trap_trace, ep, ok, tau, lo, hi, tau * tscale, lo * tscale, hi * tscale) + mse


def arrhenius_sweep(data, trap: TrainingRun, *, lr, batch_size, target_weight_decay, epochs, levels, n_layers=None,
                    width=None, convention="paper", test=None, log_every=1, sampling="shuffle",
                    criterion="test_mse", rng=None, quiet=False) -> ArrheniusSweep:
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
    criterion : {"test_mse", "rank"}
        The escape rule (recorded in the result). ``"test_mse"`` (default): the first log epoch
        where the test MSE crosses the midpoint of ``levels``. ``"rank"``: the first log epoch
        where the checkpoint's weakest learned mode's end-to-end singular value falls below its
        value at the MSE midpoint between learned and 0 (:func:`predict_escape`'s ``b_target **
        n_layers``); needs a release that loses a mode (``levels`` rising). Under random
        reshuffling the test MSE dips below its midpoint in short excursions while the mode stays
        learned; the rank criterion counts only escapes. The test-MSE rule's epochs of the same
        releases are kept for contrast.
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
    check_choice(criterion, "criterion", ESCAPE_CRITERIA)
    plateau, target = (float(x) for x in levels)
    mid = 0.5 * (plateau + target)
    direction = "down" if target < plateau else "up"
    n_layers = trap.n_layers if n_layers is None else n_layers
    width = trap.width if width is None else width
    rule = None
    if criterion == "rank":
        if direction != "up":
            raise ValueError("criterion='rank' measures the loss of a learned mode: levels must rise "
                             f"(plateau < target), got {tuple(levels)!r}")
        rule = _rank_rule(d, trap, n_layers, width, target_weight_decay, convention, float(lr_a[0]), int(b_a[0]))
    seq = seed_sequence(rng)
    streams = seq.spawn(lr_a.size)
    start, _ = finite_init(trap)
    ws = start if isinstance(start, list) else trap.weights()
    k = min(int(np.median(rank(trap.singular_values[:, -1], RANK_THRESHOLD))), trap.singular_values.shape[-1] - 1)
    tr = float(np.median([gradient_covariance([w[s] for w in ws], d, convention=convention).trace
                          for s in range(ws[0].shape[0])]))
    kw = dict(n_layers=n_layers, width=width, weight_decay=target_weight_decay, convention=convention, epochs=epochs,
              test=test, log_every=log_every, layer_log_every=epochs, sampling=sampling)
    rows = [_point(d, start, tr, trap.n_params, float(lr_a[i]), int(b_a[i]), mid, direction, rule, kw, streams[i])
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
        seed_size=layer_sv(ws, k), sampling=sampling, criterion=criterion, sv_index=-1 if rule is None else rule[0],
        sv_threshold=np.nan if rule is None else rule[1], escape_epoch_mse=None if rule is None else np.stack(cols[11]),
        escaped_mse=None if rule is None else np.stack(cols[12]), seeds=seeds_record(seq), stats={})
