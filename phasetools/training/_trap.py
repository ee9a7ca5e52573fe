"""E2: prepare a trapped checkpoint, switch to the target weight decay and time the escape."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .._progress import progress
from .._rng import seed_sequence, seeds_record
from .._validation import check_choice, check_int, check_scalar
from ..results import Result, register
from ..theory import Convention
from ._converge import RANK_THRESHOLD, escape_epochs, finite_init, layer_sv, rank
from ._data import Dataset, Moments, as_data
from ._run import TrainingRun
from ._train import train

__all__ = ["prepare_trap", "TrapRelease", "trap_and_release"]


def _full_batch(d, batch_size) -> bool:
    """A batch larger than the data set: one full-batch step per epoch (``drop_last=False``)."""
    return isinstance(d, Dataset) and batch_size is not None and batch_size > d.n_samples


def prepare_trap(data, *, trap_weight_decays, trap_epochs, n_layers, width, lr, batch_size=None,
                 convention="paper", n_seeds=1, init="std", dtype="float64", rng=None, seed_offset=0) -> TrainingRun:
    """A trapped checkpoint: SGD from ``init`` at ``trap_weight_decays[0]`` for ``trap_epochs[0]`` epochs, then at
    ``trap_weight_decays[1]`` ... (the paper's "converged at beta = 0, then at a beta above the
    relevant transition").

    Seeds that diverge in a stage are not carried into the next one
    (``stats["diverged_in_preparation"]`` counts them; a last-stage divergence stays in the
    run with ``status`` 2).

    Parameters
    ----------
    data : (X, Y), Dataset, Moments or GaussianTeacher
        The training data.
    trap_weight_decays : sequence of float >= 0
        The weight decay of each stage (the paper's rank-1 trap: ``(0, 0.361)``).
    trap_epochs : sequence of int >= 1
        The epochs of each stage (same length).
    n_layers, width : int
        The network.
    lr : float > 0
        Learning rate.
    batch_size : int, optional
        Minibatch size on samples (default: full batch; ignored for moments).
    convention : "paper" (default), "canonical" or Convention
    n_seeds : int >= 1
        Independent runs (random ``init`` only).
    init : "std", "variance", list of arrays or TrainingRun
        Starting weights.
    dtype : "float64" | "float32"
    rng : None, int, SeedSequence or Generator
        Root of the streams (one spawned per stage).
    seed_offset : int >= 0
        First seed index of the first stage.

    Returns
    -------
    TrainingRun
        The last stage's run (its ``final_params`` are the checkpoint; ``layer_singular_values``
        hold the residual seed), a new result whose ``stats`` include ``diverged_in_preparation``.
    """
    tb = [check_scalar(x, "trap_weight_decays") for x in np.atleast_1d(trap_weight_decays)]
    te = [check_int(x, "trap_epochs", 1) for x in np.atleast_1d(trap_epochs)]
    if len(tb) != len(te) or not tb:
        raise ValueError("trap_weight_decays and trap_epochs must have the same, non-zero length")
    seq = seed_sequence(rng)
    d = as_data(data)
    state, run, lost = init, None, 0
    kw = dict(batch_size=batch_size) if isinstance(d, Dataset) else {}
    for k, (wd, ep) in enumerate(zip(tb, te)):
        if isinstance(state, TrainingRun):
            state, n_bad = finite_init(state)
            lost += n_bad
        run = train(d, n_layers=n_layers, width=width, lr=lr, weight_decay=wd, convention=convention, epochs=ep,
                    init=state, n_seeds=n_seeds if isinstance(state, str) else None, log_every=ep,
                    drop_last=not _full_batch(d, batch_size), dtype=dtype, rng=seq.spawn(1)[0],
                    seed_offset=seed_offset if k == 0 else 0, **kw)
        state = run
    return dataclasses.replace(run, stats={**run.stats, "diverged_in_preparation": lost})


@register
@dataclass(frozen=True, eq=False, repr=False)
class TrapRelease(Result):
    """E2: escape from a trapped checkpoint after the weight decay switches to ``target_weight_decay``.

    ``test_mse``/``train_mse``/``singular_values`` are logged every ``log_every`` epochs of
    the release (epoch 0 = the checkpoint). Two escape criteria, per seed:

    * ``mse``: the first epoch at which the test MSE crosses ``midpoint = (plateau_level +
      target_level) / 2``; ``plateau_level`` is the median test MSE of the checkpoints,
      ``target_level`` the median final test MSE of ``reference`` runs (fresh random weights
      trained at ``target_weight_decay`` for the same epochs: the paper's protocol (i));
    * ``sv``: the first epoch at which end-to-end singular value ``sv_index`` crosses
      ``sv_threshold``.

    Seeds that never cross are right-censored at the last epoch (``escaped_* = False``).
    Checkpoint seeds that diverged while being prepared are not released (``trap_diverged``
    counts them); every per-seed array covers the released seeds. ``seed_size`` is the
    ``sv_index``-th singular value of every layer at the checkpoint (seed, layer): the
    residual seed of the unlearned mode. Files written with the former fields
    ``target_beta``/``trap_betas`` load.

    Parameters
    ----------
    n_layers, width, batch_size, epochs, relax_epochs, log_every, steps_per_epoch, sv_index : int
        The release's settings (see :func:`trap_and_release`).
    lr, target_weight_decay, sv_threshold : float
    trap_weight_decays, trap_epochs : tuple
        The preparation stages (empty for a given checkpoint).
    convention : Convention
    dtype : str
    train_moments, test_moments : Moments
    log_epochs, test_mse, train_mse, singular_values, reference_test_mse : numpy.ndarray
        The logs of the release and of the reference runs.
    plateau_level, target_level, midpoint : float
        The test-MSE levels of the midpoint rule.
    trap_rank, seed_size, escape_epoch_mse, escaped_mse, escape_epoch_sv, escaped_sv : numpy.ndarray
        Per released seed.
    reference_epoch, reference_escaped, reference_rank : numpy.ndarray
        Per reference run.
    target_rank, trap_diverged : int
    sampling : str
        The release's minibatch sampler as the run recorded it (keyword-only; files written
        before it was stored load as ``"shuffle"``, the only sampler the release used then).
    """

    n_layers: int
    width: int
    lr: float
    batch_size: int | None
    target_weight_decay: float
    trap_weight_decays: tuple
    trap_epochs: tuple
    epochs: int
    relax_epochs: int
    log_every: int
    steps_per_epoch: int
    convention: Convention
    dtype: str
    sv_index: int
    sv_threshold: float
    train_moments: Moments
    test_moments: Moments | None
    log_epochs: np.ndarray
    test_mse: np.ndarray
    train_mse: np.ndarray
    singular_values: np.ndarray
    reference_test_mse: np.ndarray
    plateau_level: float
    target_level: float
    midpoint: float
    trap_rank: np.ndarray
    seed_size: np.ndarray
    escape_epoch_mse: np.ndarray
    escaped_mse: np.ndarray
    escape_epoch_sv: np.ndarray
    escaped_sv: np.ndarray
    reference_epoch: np.ndarray
    reference_escaped: np.ndarray
    reference_rank: np.ndarray
    target_rank: int
    trap_diverged: int
    sampling: str = dataclasses.field(default="shuffle", kw_only=True)

    _config_fields = ("n_layers", "width", "lr", "batch_size", "target_weight_decay", "trap_weight_decays",
                      "trap_epochs", "epochs", "relax_epochs", "log_every", "steps_per_epoch", "convention", "dtype",
                      "sv_index", "sv_threshold", "train_moments", "test_moments", "sampling")
    _dims = {"log_epochs": ("log",), "test_mse": ("seed", "log"), "train_mse": ("seed", "log"),
             "singular_values": ("seed", "log", "mode"), "reference_test_mse": ("reference_seed", "log"),
             "trap_rank": ("seed",), "seed_size": ("seed", "layer"), "escape_epoch_mse": ("seed",),
             "escaped_mse": ("seed",), "escape_epoch_sv": ("seed",), "escaped_sv": ("seed",),
             "reference_epoch": ("reference_seed",), "reference_escaped": ("reference_seed",),
             "reference_rank": ("reference_seed",)}
    _coords = {"log": "log_epochs"}
    _units = {"log_epochs": "epochs", "test_mse": "mse", "train_mse": "mse", "reference_test_mse": "mse",
              "singular_values": "end_to_end", "seed_size": "weight", "escape_epoch_mse": "epochs",
              "escape_epoch_sv": "epochs", "reference_epoch": "epochs", "target_weight_decay": "weight_decay"}
    _former_names = {"target_weight_decay": "target_beta", "trap_weight_decays": "trap_betas"}

    @property
    def n_seeds(self) -> int:
        """Number of released seeds."""
        return int(self.escape_epoch_mse.size)

    @property
    def trapped(self) -> np.ndarray:
        """Per seed: the checkpoint's rank differs from ``target_rank``. An untrapped
        checkpoint (e.g. a finite-sample draw whose spinodal lies above the trap's weight
        decay) has nothing to escape from."""
        return self.trap_rank != self.target_rank

    def escape_times(self, criterion="mse", unit="epochs", *, trapped_only=True):
        """Escape times per seed.

        Parameters
        ----------
        criterion : "mse" | "sv"
            The escape criterion.
        unit : "epochs" | "steps" | "time"
            ``"time"`` is Langevin time ``lr * steps`` in the convention's units.
        trapped_only : bool
            Leave out the seeds that were not trapped.

        Returns
        -------
        tuple of numpy.ndarray
            ``(times, censored)``.
        """
        check_choice(criterion, "criterion", ("mse", "sv"))
        check_choice(unit, "unit", ("epochs", "steps", "time"))
        ep, ok = ((self.escape_epoch_mse, self.escaped_mse) if criterion == "mse"
                  else (self.escape_epoch_sv, self.escaped_sv))
        scale = {"epochs": 1.0, "steps": float(self.steps_per_epoch),
                 "time": self.lr * self.steps_per_epoch}[unit]
        keep = self.trapped if trapped_only else np.ones(self.n_seeds, dtype=bool)
        return ep[keep] * scale, ~ok[keep]

    def fit(self, criterion="mse", unit="epochs", confidence=0.95):
        """Censoring-aware exponential fit (:func:`phasetools.stats.exponential_mle`) over the trapped seeds.

        Parameters
        ----------
        criterion, unit
            As :meth:`escape_times`.
        confidence : float
            Level of the interval.

        Returns
        -------
        phasetools.stats.ExponentialFit
            ValueError when no seed was trapped.
        """
        from ..stats import exponential_mle
        t, c = self.escape_times(criterion, unit)
        if t.size == 0:
            raise ValueError("no seed was trapped (every checkpoint already has target_rank): no escape time "
                             "to fit")
        return exponential_mle(t, c, confidence=confidence, time_unit=unit)

    def __repr__(self):
        return (f"TrapRelease(target_weight_decay={self.target_weight_decay:g}, "
                f"trap_weight_decays={self.trap_weight_decays}, lr={self.lr:g}, "
                f"batch_size={self.batch_size}, sampling={self.sampling!r}, n_seeds={self.n_seeds}, "
                f"trapped={int(self.trapped.sum())}, "
                f"epochs={self.epochs}, escaped "
                f"{int(self.escaped_mse.sum())} (mse) / {int(self.escaped_sv.sum())} (sv))")


@dataclass(frozen=True)
class _Escapes:
    """The levels and the escapes of a release by both criteria."""

    plateau: float
    target: float
    mid: float
    direction: str
    ep_mse: np.ndarray
    ok_mse: np.ndarray
    ep_sv: np.ndarray
    ok_sv: np.ndarray
    sv_threshold: float


def _series(run):
    return run.test_mse if run.test_mse is not None else run.train_mse


def _levels_and_escapes(release, reference, relax_epochs, levels, sv_index, sv_threshold) -> _Escapes:
    test = _series(release)
    j = min(int(np.searchsorted(release.log_epochs, relax_epochs)), release.log_epochs.size - 1)
    plateau = float(np.nanmedian(test[:, j]))
    if levels is not None:
        plateau, target = (float(x) for x in levels)
    else:
        if reference is None:
            raise ValueError("levels=(plateau, target) are needed without a reference run")
        rt = _series(reference)
        tail = max(1, rt.shape[1] // 10)
        target = float(np.nanmedian(rt[:, -tail:]))
    mid = 0.5 * (plateau + target)
    direction = "down" if target < plateau else "up"
    ep_mse, ok_mse = escape_epochs(release.log_epochs, test, mid, direction=direction)
    sv = release.singular_values[:, :, sv_index]
    if sv_threshold is None:
        ref_sv = (float(np.nanmedian(reference.singular_values[:, -1, sv_index])) if reference is not None
                  else float(np.nanmax(sv)))
        sv_threshold = 0.5 * (float(np.nanmedian(sv[:, 0])) + ref_sv)
    sv_dir = "up" if np.nanmedian(sv[:, 0]) < sv_threshold else "down"
    ep_sv, ok_sv = escape_epochs(release.log_epochs, sv, sv_threshold, direction=sv_dir)
    return _Escapes(plateau, target, mid, direction, ep_mse, ok_mse, ep_sv, ok_sv, float(sv_threshold))


def _reference_records(reference, release, esc):
    """``(epochs, escaped, test_mse at the release's log epochs, rank)`` of the reference runs."""
    if reference is None:
        return (np.zeros(0, np.int64), np.zeros(0, bool), np.zeros((0, release.log_epochs.size)),
                np.zeros(0, np.int64))
    rt = _series(reference)
    ep, ok = escape_epochs(reference.log_epochs, rt, esc.mid, direction=esc.direction)
    return (ep, ok, rt[:, np.searchsorted(reference.log_epochs, release.log_epochs)],
            rank(reference.singular_values[:, -1], RANK_THRESHOLD).astype(np.int64))


def _sv_index(sv_index, trap_rank, n_modes) -> int:
    if sv_index is None:
        return min(int(np.median(trap_rank)), n_modes - 1)
    k = int(sv_index)
    if not 0 <= k < n_modes:
        raise ValueError(f"sv_index must be in [0, {n_modes}), got {sv_index!r}")
    return k


def _release(d, start, n_reference, kw, batch_size, s_rel, s_ref, bar):
    """The release of the checkpoint ``start`` and the ``n_reference`` fresh runs (or None) at the target."""
    if isinstance(d, Dataset):
        kw.update(batch_size=batch_size, drop_last=not _full_batch(d, batch_size))
    release = train(d, init=start, rng=s_rel, **kw)
    bar.update(1)
    reference = None
    if n_reference:
        # logged every epoch (the convergence epoch of fresh weights is a few epochs), stored
        # at the release's log epochs
        reference = train(d, init="std", n_seeds=n_reference, rng=s_ref, seed_offset=10_000,
                          **{**kw, "log_every": 1})
    bar.update(1)
    bar.close()
    return release, reference


def trap_and_release(data, *, target_weight_decay, epochs, n_layers, width, lr, batch_size=None,
                     trap_weight_decays=None, trap_epochs=None, convention="paper", n_seeds=1, n_reference=None,
                     test=None, trap=None, levels=None, sv_index=None, sv_threshold=None, relax_epochs=None,
                     target_rank=None, log_every=1, dtype="float64", rng=None, quiet=False) -> TrapRelease:
    """E2: prepare a trapped checkpoint, switch the weight decay to ``target_weight_decay`` and time the escape.

    The paper's E2: ``target_weight_decay=0.32``, lr 0.08, ``batch_size=64``, N = 512, traps
    converged at 0.361 (rank 1) and 0.43 (rank 0), 2*10^4 epochs, 50 seeds
    (``phasetools.reproduce`` passes these).

    Parameters
    ----------
    data : (X, Y), Dataset, Moments or GaussianTeacher
        The training data.
    target_weight_decay : float >= 0
        The weight decay after the release.
    epochs : int >= 1
        Release epochs.
    n_layers, width : int
        The network.
    lr : float > 0
        Learning rate (of the preparation and the release).
    batch_size : int, optional
        Minibatch size on samples (default: full batch).
    trap_weight_decays, trap_epochs : sequence, optional
        The preparation stages (:func:`prepare_trap`); required without ``trap``.
    convention : "paper" (default), "canonical" or Convention
    n_seeds : int >= 1
        Checkpoint seeds prepared (without ``trap``).
    n_reference : int >= 0, optional
        Fresh runs at ``target_weight_decay`` that set the target level (protocol (i);
        default ``n_seeds``; their own convergence epochs are ``reference_epoch``).
    test : (X, Y), Dataset, Moments or GaussianTeacher, optional
        Where the test MSE is measured.
    trap : TrainingRun, optional
        A prepared checkpoint (e.g. from :func:`prepare_trap`).
    levels : (plateau, target), optional
        Overrides the measured MSE levels. By default the plateau is the median test MSE at
        epoch ``relax_epochs`` of the release and the target the median over the last 10% of
        the reference runs.
    sv_index : int, optional
        The end-to-end singular value of the ``sv`` criterion (default: the checkpoint's rank,
        the first unlearned mode).
    sv_threshold : float, optional
        Its threshold (default halfway between its checkpoint and reference values).
    relax_epochs : int >= 0, optional
        Epoch of the plateau level (default ``min(50, epochs // 10)``: the checkpoint has
        relaxed to the target weight decay inside its basin).
    target_rank : int, optional
        The rank the escape leads to (default: the reference runs' median rank); seeds whose
        checkpoint already has it are not ``trapped`` and are left out of the fits.
    log_every : int >= 1
        Epochs between log points.
    dtype : "float64" | "float32"
    rng : None, int, SeedSequence or Generator
        Root of the streams (trap, release, reference).
    quiet : bool
        No progress bar.

    Returns
    -------
    TrapRelease
    """
    d = as_data(data)
    epochs = check_int(epochs, "epochs", 1)
    relax_epochs = min(50, epochs // 10) if relax_epochs is None else check_int(relax_epochs, "relax_epochs", 0)
    n_seeds = check_int(n_seeds, "n_seeds", 1)
    n_reference = n_seeds if n_reference is None else check_int(n_reference, "n_reference", 0)
    target_weight_decay = check_scalar(target_weight_decay, "target_weight_decay")
    seq = seed_sequence(rng)
    s_trap, s_rel, s_ref = seq.spawn(3)
    bar = progress(total=3, desc="E2 trap and release", quiet=quiet)
    if trap is None:
        if trap_weight_decays is None or trap_epochs is None:
            raise ValueError("trap_weight_decays and trap_epochs are needed to prepare a trap (or give trap=)")
        trap = prepare_trap(d, trap_weight_decays=trap_weight_decays, trap_epochs=trap_epochs, n_layers=n_layers,
                            width=width, lr=lr, batch_size=batch_size, convention=convention, n_seeds=n_seeds,
                            dtype=dtype, rng=s_trap)
    elif not isinstance(trap, TrainingRun):
        raise ValueError("trap must be a TrainingRun (e.g. from prepare_trap) or None")
    else:
        trap_weight_decays, trap_epochs = (), ()  # a given checkpoint: its own record holds its history
    bar.update(1)
    start, n_diverged = finite_init(trap)
    release, reference = _release(d, start, n_reference, dict(
        n_layers=n_layers, width=width, lr=lr, weight_decay=target_weight_decay, convention=convention, epochs=epochs,
        test=test, log_every=log_every, layer_log_every=epochs, dtype=dtype), batch_size, s_rel, s_ref, bar)
    trap_sv = trap.singular_values[:, -1][np.all(np.isfinite(trap.final_params), axis=1)]
    trap_rank = rank(trap_sv, RANK_THRESHOLD)
    k = _sv_index(sv_index, trap_rank, trap_sv.shape[1])
    esc = _levels_and_escapes(release, reference, relax_epochs, levels, k, sv_threshold)
    ref_ep, ref_ok, ref_mse, ref_rank = _reference_records(reference, release, esc)
    if target_rank is None:
        target_rank = int(np.median(ref_rank)) if ref_rank.size else int(trap_sv.shape[1])
    return TrapRelease(
        n_layers=int(n_layers), width=int(width), lr=float(lr), batch_size=release.batch_size,
        target_weight_decay=target_weight_decay,
        trap_weight_decays=tuple(float(x) for x in np.atleast_1d(trap_weight_decays)),
        trap_epochs=tuple(int(x) for x in np.atleast_1d(trap_epochs)), epochs=epochs,
        relax_epochs=relax_epochs, log_every=int(log_every), steps_per_epoch=release.steps_per_epoch,
        convention=release.convention, dtype=release.dtype, sv_index=k, sv_threshold=esc.sv_threshold,
        train_moments=release.train_moments, test_moments=release.test_moments, log_epochs=release.log_epochs,
        test_mse=_series(release), train_mse=release.train_mse, singular_values=release.singular_values,
        reference_test_mse=ref_mse, plateau_level=esc.plateau, target_level=esc.target, midpoint=esc.mid,
        trap_rank=trap_rank.astype(np.int64), seed_size=layer_sv(start, k), trap_diverged=n_diverged,
        escape_epoch_mse=esc.ep_mse, escaped_mse=esc.ok_mse, escape_epoch_sv=esc.ep_sv, escaped_sv=esc.ok_sv,
        reference_epoch=ref_ep, reference_escaped=ref_ok, reference_rank=ref_rank, target_rank=int(target_rank),
        sampling=str(release.sampling),
        seeds=seeds_record(seq),
        stats={"wall_time": release.stats["wall_time"] + (reference.stats["wall_time"] if reference else 0.0)})
