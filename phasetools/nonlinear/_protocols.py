"""Measurements on nonlinear networks: weight-decay sweeps up and down, trapping and escape.

* :func:`weight_decay_sweep`: train at each weight decay in increasing order, each step
  warm-started from the previous one's weights, then back down from the top; the final
  metrics of every step, per seed (:class:`NonlinearSweep`).
* :func:`escape_sweep`: prepare a memorising state (fitted, not generalising), release
  copies of it with SGD at a target weight decay over a grid of batch sizes and learning
  rates; censoring-aware escape epochs (first logged epoch with test accuracy >= the
  threshold) and three laws fitted to the mean escape times (:class:`NonlinearEscape`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .._rng import entropy_of
from .._validation import as_float_array, check_choice, check_int, check_scalar
from ..results import register
from ..stats import arrhenius_fit, exponential_mle
from ._model import MLP
from ._tasks import Task
from ._train import NonlinearRun, Optimizer, _network_fields, _NetworkResult, _provenance, sgd, train

__all__ = ["NonlinearSweep", "weight_decay_sweep", "NonlinearEscape", "escape_sweep", "fit_escape_laws", "X_LAWS",
           "escape_abscissa"]

#: abscissas of the escape-law fits: an inverse temperature of each noise source, up to a constant
X_LAWS = ("batch_size/lr", "1/temperature", "batch_size/(lr*label_noise^2)")

_METRICS = ("train_acc", "test_acc", "train_loss", "test_loss", "weight_norm", "fourier_ipr")


def _step_rng(entropy, k):
    return np.random.SeedSequence(entropy, spawn_key=(k,))


@register
@dataclass(frozen=True, eq=False, repr=False)
class NonlinearSweep(_NetworkResult):
    """Final metrics after each weight decay of an increasing and a decreasing warm-started sweep.

    Metric arrays have shape ``(2, n_weight_decays, n_seeds)``: direction (0 up, 1 down)
    and the weight decays in increasing order (``weight_decays``), whatever the order visited.
    """

    optimizer: str
    lr: float
    adam_b1: float
    adam_b2: float
    adam_eps: float
    weight_decays: np.ndarray
    epochs_per_step: int
    batch_size: int
    sampling: str
    n_seeds: int
    dtype: str
    init_scale: float
    train_acc: np.ndarray
    test_acc: np.ndarray
    train_loss: np.ndarray
    test_loss: np.ndarray
    weight_norm: np.ndarray
    fourier_ipr: np.ndarray

    _config_fields = ("task", "task_config", "dims", "activation", "loss", "optimizer", "lr", "adam_b1", "adam_b2",
                      "adam_eps", "weight_decays", "epochs_per_step", "batch_size", "sampling", "n_seeds", "dtype",
                      "init_scale")
    _dims = {m: ("direction", "weight_decay", "seed") for m in _METRICS} | {"weight_decays": ("weight_decay",)}
    _coords = {"weight_decay": "weight_decays"}

    def __repr__(self):
        up, down = self.test_acc.mean(-1)
        return (f"NonlinearSweep(task={self.task!r}, {self.optimizer}, weight_decays={self.weight_decays.tolist()}, "
                f"test_acc up={np.round(up, 3).tolist()}, down={np.round(down, 3).tolist()})")


def weight_decay_sweep(task: Task, model: MLP, optimizer: Optimizer, weight_decays, *, epochs_per_step: int,
                       batch_size: int | None = None, sampling: str = "full", n_seeds: int = 1,
                       dtype: str = "float64", init_scale: float = 1.0, rng=None, n_threads: int | None = None,
                       progress=None) -> NonlinearSweep:
    """Sweep the weight decay up and then down, each step warm-started from the last.

    Parameters
    ----------
    task : Task
        The data.
    model : MLP
        The network.
    optimizer : Optimizer
        The optimiser; its ``weight_decay`` is replaced by each swept value.
    weight_decays : array of float >= 0
        The values (sorted increasingly; at least 2).
    epochs_per_step : int >= 1
        Epochs at each weight decay (optimiser state restarts at each step).
    batch_size, sampling, n_seeds, dtype, init_scale, n_threads
        As in :func:`train`.
    rng : None, int, SeedSequence or Generator
        Root of every step's streams (step ``k`` spawns key ``k``).
    progress : callable, optional
        Called as ``progress(steps_done, n_steps)``.

    Returns
    -------
    NonlinearSweep
        The up sweep starts from fresh weights at the smallest value; the down sweep
        starts from the up sweep's final weights at the largest value.
    """
    wds = np.sort(as_float_array(weight_decays, "weight_decays").ravel())
    if wds.size < 2 or np.any(wds < 0):
        raise ValueError(f"weight_decays must hold at least 2 values >= 0, got {weight_decays!r}")
    epochs_per_step = check_int(epochs_per_step, "epochs_per_step", 1)
    entropy = entropy_of(rng)
    t0 = time.perf_counter()
    out = {m: np.full((2, wds.size, check_int(n_seeds, "n_seeds", 1)), np.nan) for m in _METRICS}
    init = None
    k = 0
    for d, order in enumerate((range(wds.size), range(wds.size - 1, -1, -1))):
        for i in order:
            run = train(task, model, optimizer.with_weight_decay(float(wds[i])), epochs=epochs_per_step,
                        batch_size=batch_size, sampling=sampling, n_seeds=n_seeds, dtype=dtype,
                        init_scale=init_scale if init is None else 1.0, init=init, log_every=epochs_per_step,
                        rng=_step_rng(entropy, k), n_threads=n_threads)
            for m in _METRICS:
                out[m][d, i] = getattr(run, m)[:, -1]
            init = run
            k += 1
            if progress is not None:
                progress(k, 2 * wds.size)
    return NonlinearSweep(*_network_fields(task, model), optimizer.kind, optimizer.lr, optimizer.adam_b1,
                          optimizer.adam_b2, optimizer.adam_eps, wds, epochs_per_step, init.batch_size, sampling,
                          n_seeds, dtype, float(init_scale), **out, **_provenance(entropy, t0))


@register
@dataclass(frozen=True, eq=False, repr=False)
class NonlinearEscape(_NetworkResult):
    """Escape of a memorising state at ``release_weight_decay`` over points ``(batch_size, lr, label_noise, temperature)``.

    ``escape_epochs[i, s]``: the first logged release epoch at which seed ``s`` at point ``i``
    reached test accuracy ``>= threshold`` (if ``censored``, the budget ``release_epochs``).
    ``tau`` (epochs), ``tau_stderr``, ``tau_lower``: the censoring-aware exponential MLE per
    point (:func:`phasetools.stats.exponential_mle`; ``tau`` NaN without escapes).
    ``tau_time`` is the mean escape time in Langevin time ``lr * steps`` (``steps_per_epoch``
    per point). The three laws
    (see :func:`fit_escape_laws`) are fitted to ``ln tau_time`` of the points with escapes
    against ``x`` (``x_law``: ``batch_size / lr``, ``1 / temperature`` or ``batch_size /
    (lr label_noise^2)``, the inverse temperature of the noise source varied): Arrhenius
    (linear in ``x``), power law (linear in ``ln x``) and the deterministic ``1 / (lr
    weight_decay)`` law (``tau_time`` constant); each with its chi-square, degrees of freedom
    and p-value (NaN when not enough points). ``label_noise`` and ``temperature`` (per point)
    are the release's noise options of :func:`train` (zeros in files written before them).
    The noise-free reference: every prepared state released by full-batch gradient descent
    at ``reference_lr`` (the first point's lr) for the first point's budget in ``lr * steps``;
    ``reference_escape_time`` in ``lr * steps`` (the budget where ``reference_censored``).
    """

    prepare_optimizer: str
    prepare_lr: float
    prepare_weight_decay: float
    prepare_epochs: int
    release_weight_decay: float
    release_epochs: int
    sampling: str
    batch_size: np.ndarray
    lr: np.ndarray
    n_seeds: int
    dtype: str
    threshold: float
    log_every: int
    prepared_train_acc: np.ndarray
    prepared_test_acc: np.ndarray
    escape_epochs: np.ndarray
    censored: np.ndarray
    n_escaped: np.ndarray
    tau: np.ndarray
    tau_stderr: np.ndarray
    tau_lower: np.ndarray
    tau_time: np.ndarray
    tau_time_stderr: np.ndarray
    arrhenius_slope: float
    arrhenius_slope_stderr: float
    arrhenius_chi2: float
    arrhenius_dof: int
    arrhenius_pvalue: float
    power_exponent: float
    power_chi2: float
    power_dof: int
    power_pvalue: float
    deterministic_chi2: float
    deterministic_dof: int
    deterministic_pvalue: float
    steps_per_epoch: np.ndarray
    reference_lr: float
    reference_escape_time: np.ndarray
    reference_censored: np.ndarray
    label_noise: np.ndarray = field(default=None)
    temperature: np.ndarray = field(default=None)
    x_law: str = "batch_size/lr"

    _config_fields = ("task", "task_config", "dims", "activation", "loss", "prepare_optimizer", "prepare_lr",
                      "prepare_weight_decay", "prepare_epochs", "release_weight_decay", "release_epochs", "sampling",
                      "batch_size", "lr", "n_seeds", "dtype", "threshold", "log_every", "label_noise", "temperature",
                      "x_law")
    _dims = {"batch_size": ("point",), "lr": ("point",), "escape_epochs": ("point", "seed"),
             "censored": ("point", "seed"), "n_escaped": ("point",), "tau": ("point",), "tau_stderr": ("point",),
             "tau_lower": ("point",), "tau_time": ("point",), "tau_time_stderr": ("point",),
             "prepared_train_acc": ("seed",), "prepared_test_acc": ("seed",), "reference_escape_time": ("seed",),
             "steps_per_epoch": ("point",), "label_noise": ("point",), "temperature": ("point",),
             "reference_censored": ("seed",)}
    _units = {"escape_epochs": "epochs", "tau": "epochs", "tau_stderr": "epochs", "tau_lower": "epochs",
              "tau_time": "lr*steps", "tau_time_stderr": "lr*steps", "reference_escape_time": "lr*steps"}

    def __post_init__(self):
        for name in ("label_noise", "temperature"):
            if getattr(self, name) is None:  # a file written before the noise options
                object.__setattr__(self, name, np.zeros(np.shape(self.batch_size)))

    @property
    def x(self) -> np.ndarray:
        """The abscissa of the law fits at each point (``x_law``; inf where that noise is off)."""
        return escape_abscissa(self.x_law, self.batch_size, self.lr, self.label_noise, self.temperature)

    def __repr__(self):
        return (f"NonlinearEscape(release_weight_decay={self.release_weight_decay:g}, points="
                f"{list(zip(self.batch_size.tolist(), self.lr.tolist()))}, n_escaped={self.n_escaped.tolist()}, "
                f"tau={np.round(self.tau, 1).tolist()}, arrhenius_pvalue={self.arrhenius_pvalue:.3g}, "
                f"power_pvalue={self.power_pvalue:.3g}, deterministic_pvalue={self.deterministic_pvalue:.3g})")


def escape_abscissa(x_law: str, batch_size, lr, label_noise, temperature) -> np.ndarray:
    """The inverse temperature (up to a constant) of the noise source named by ``x_law``.

    Parameters
    ----------
    x_law : {"batch_size/lr", "1/temperature", "batch_size/(lr*label_noise^2)"}
        Minibatch noise (``T ~ lr / B``), injected noise (``T``), or label noise on a
        minibatch (``T ~ lr label_noise^2 / B``).
    batch_size, lr, label_noise, temperature : arrays (n,)
        The points.

    Returns
    -------
    ndarray (n,)
        ``inf`` where the named noise is off.
    """
    check_choice(x_law, "x_law", X_LAWS)
    B = np.asarray(batch_size, float)
    L = np.asarray(lr, float)
    with np.errstate(divide="ignore"):
        if x_law == "batch_size/lr":
            return B / L
        if x_law == "1/temperature":
            return 1.0 / np.asarray(temperature, float)
        return B / (L * np.asarray(label_noise, float) ** 2)


def _wls(y, w, X):
    """Weighted least squares: (coefficients, covariance, chi2, dof)."""
    Wx = X * w[:, None]
    cov = np.linalg.inv(X.T @ Wx)
    beta_hat = cov @ (Wx.T @ y)
    r = y - X @ beta_hat
    return beta_hat, cov, float(np.sum(w * r * r)), int(y.size - X.shape[1])


def fit_escape_laws(x, tau_time, tau_time_stderr) -> dict:
    """Fit three laws to mean escape times ``tau_time`` (Langevin time) against an inverse temperature ``x``.

    Parameters
    ----------
    x : array (n,) > 0
        ``batch_size / lr``, ``1 / temperature`` or ``batch_size / (lr label_noise^2)`` of
        each point (:func:`escape_abscissa`).
    tau_time, tau_time_stderr : array (n,) > 0
        Mean escape times and their standard errors (weights ``(tau / stderr)^2`` in ``ln tau``).

    Returns
    -------
    dict
        ``arrhenius_slope`` (+ ``_stderr``), ``power_exponent`` and, for each law
        ``arrhenius`` (``ln tau = a + s x``), ``power`` (``ln tau = a + k ln x``) and
        ``deterministic`` (``ln tau = a``: ``steps = const / lr``, the drift time
        ``1 / (lr weight_decay)``), ``<law>_chi2``, ``<law>_dof`` and ``<law>_pvalue``
        (the probability of a larger chi-square if the law holds). NaN where a law has
        no degrees of freedom left.
    """
    from scipy.stats import chi2 as chi2_dist

    x = np.asarray(x, dtype=float)
    t = np.asarray(tau_time, dtype=float)
    se = np.asarray(tau_time_stderr, dtype=float)
    y = np.log(t)
    w = (t / se) ** 2
    one = np.ones_like(x)
    out = {}
    for law, X in (("arrhenius", np.stack([one, x], 1)), ("power", np.stack([one, np.log(x)], 1)),
                   ("deterministic", one[:, None])):
        if y.size <= X.shape[1] or (X.shape[1] > 1 and np.ptp(X[:, 1]) == 0):  # too few points, or one x
            out.update({f"{law}_chi2": np.nan, f"{law}_dof": 0, f"{law}_pvalue": np.nan})
            coef, cov = np.full(X.shape[1], np.nan), np.full((X.shape[1], X.shape[1]), np.nan)
        else:
            coef, cov, c2, dof = _wls(y, w, X)
            out.update({f"{law}_chi2": c2, f"{law}_dof": dof, f"{law}_pvalue": float(chi2_dist.sf(c2, dof))})
        if law == "arrhenius":
            out["arrhenius_slope"], out["arrhenius_slope_stderr"] = float(coef[1]), float(np.sqrt(cov[1, 1]))
        if law == "power":
            out["power_exponent"] = float(coef[1])
    return out


def _points(batch_size, lr, label_noise=0.0, temperature=0.0):
    """The release points: batch sizes, lrs, label noises, temperatures (one value repeats to all points)."""
    cols = [np.atleast_1d(np.asarray(batch_size)).ravel(), as_float_array(lr, "lr").ravel(),
            as_float_array(label_noise, "label_noise").ravel(), as_float_array(temperature, "temperature").ravel()]
    n = max(c.size for c in cols)
    if any(c.size not in (1, n) for c in cols) or n < 1:
        raise ValueError(f"batch_size and lr (and label_noise, temperature) must have one value each per point (or "
                         f"one in all), got {[c.size for c in cols]}")
    B, L, N, T = (np.repeat(c, n) if c.size == 1 else c for c in cols)
    B = np.asarray([check_int(int(b) if float(b).is_integer() else b, "batch_size", 1) for b in B], dtype=np.int64)
    if np.any(L <= 0):
        raise ValueError(f"lr must be > 0, got {lr!r}")
    for name, c in (("label_noise", N), ("temperature", T)):
        if np.any(c < 0) or not np.all(np.isfinite(c)):
            raise ValueError(f"{name} must be finite and >= 0, got {c.tolist()}")
    return B, L, np.asarray(N, float), np.asarray(T, float)


def _auto_x(x_law, L, N, T):
    if x_law != "auto":
        return check_choice(x_law, "x_law", X_LAWS)
    if np.ptp(T) > 0:
        return "1/temperature"
    if np.ptp(N) > 0:
        return "batch_size/(lr*label_noise^2)"
    return "batch_size/lr"


def escape_sweep(task: Task, model: MLP, *, prepare: Optimizer, prepare_epochs: int, release_weight_decay: float,
                 batch_size, lr, release_epochs: int, sampling: str = "replacement", n_seeds: int = 8,
                 dtype: str = "float64", threshold: float = 0.9, log_every: int = 10, init_scale: float = 1.0,
                 label_noise=0.0, temperature=0.0, x_law: str = "auto", rng=None, n_threads: int | None = None,
                 progress=None) -> NonlinearEscape:
    """Trap in a memorising state, release with SGD at each point, time the escapes.

    Parameters
    ----------
    task : Task
        The data.
    model : MLP
        The network.
    prepare : Optimizer
        How the memorising state is prepared (e.g. ``adamw(1e-2, 0.0)``: fits without
        generalising), run full batch for ``prepare_epochs``.
    prepare_epochs : int >= 1
        Preparation epochs.
    release_weight_decay : float >= 0
        Coupled weight decay of the release (SGD), where the generalising state is better.
    batch_size, lr : int / float or arrays
        The release points (one value is repeated to the number of points). With
        ``sampling="full"`` the batch is the training set whatever ``batch_size`` says.
    label_noise, temperature : float >= 0 or arrays
        The release's noise (:func:`train`), per point or one value for all.
    x_law : {"auto", "batch_size/lr", "1/temperature", "batch_size/(lr*label_noise^2)"}
        The abscissa of the law fits; ``"auto"``: ``1/temperature`` if the temperature
        varies across points, else the label-noise one if the label noise varies, else
        ``batch_size/lr``. Points where that noise is off (``x`` infinite) are not fitted.
    release_epochs : int >= 1
        The release budget; runs that have not escaped by then are censored.
    sampling : {"replacement", "shuffle", "full"}
        Minibatch sampling of the release.
    n_seeds : int >= 1
        Independent prepared states (each released once per point with its own stream).
    dtype, init_scale, n_threads
        As in :func:`train`.
    threshold : float in (0, 1]
        Test accuracy that counts as escaped (generalised).
    log_every : int >= 1
        Epochs between checks of the test accuracy (the resolution of the escape epochs).
    rng : None, int, SeedSequence or Generator
        Root of the streams (the preparation spawns key 0, point ``i`` key ``i + 1``).
    progress : callable, optional
        Called as ``progress(points_done, n_points)``.

    Returns
    -------
    NonlinearEscape
    """
    B, L, N, T = _points(batch_size, lr, label_noise, temperature)
    if sampling == "full":
        B = np.full(B.size, task.n_train, dtype=np.int64)
    x_law = _auto_x(x_law, L, N, T)
    release_epochs = check_int(release_epochs, "release_epochs", 1)
    lam = check_scalar(release_weight_decay, "release_weight_decay")
    entropy = entropy_of(rng)
    t0 = time.perf_counter()
    prep = train(task, model, prepare, epochs=check_int(prepare_epochs, "prepare_epochs", 1), n_seeds=n_seeds,
                 dtype=dtype, init_scale=init_scale, log_every=prepare_epochs, threshold=threshold,
                 rng=_step_rng(entropy, 0), n_threads=n_threads)
    S = prep.n_seeds
    times = np.empty((B.size, S))
    cens = np.zeros((B.size, S), dtype=bool)
    ref_time, ref_cens = _reference(task, model, prep, lam, float(L[0]), release_epochs * _spe(task.n_train, B[0], sampling),
                                    log_every * _spe(task.n_train, B[0], sampling), dtype, threshold, entropy, n_threads)
    for i in range(B.size):
        run = train(task, model, sgd(float(L[i]), lam), epochs=release_epochs, batch_size=int(B[i]), sampling=sampling,
                    n_seeds=S, dtype=dtype, init=prep, log_every=log_every, threshold=threshold,
                    label_noise=float(N[i]), temperature=float(T[i]), rng=_step_rng(entropy, i + 1),
                    n_threads=n_threads)
        g = run.generalisation_epoch
        cens[i] = ~np.isfinite(g) | (run.status != 0)
        times[i] = np.where(cens[i], release_epochs, g)
        if progress is not None:
            progress(i + 1, B.size)
    return _escape_result(task, model, prepare, prep, lam, release_epochs, sampling, (B, L, N, T, x_law), S, dtype,
                          threshold, log_every, times, cens, entropy, t0,
                          (float(L[0]), ref_time, ref_cens))


def _spe(n, B, sampling):
    """Steps per epoch."""
    return 1 if sampling == "full" else n // int(B)


def _reference(task, model, prep, lam, lr, steps, log_every, dtype, threshold, entropy, n_threads):
    """Full-batch gradient descent from the prepared states for ``steps`` steps: escape times in lr*steps."""
    run = train(task, model, sgd(lr, lam), epochs=steps, sampling="full", n_seeds=prep.n_seeds, dtype=dtype,
                init=prep, log_every=max(1, log_every), threshold=threshold, rng=_step_rng(entropy, 10**6),
                n_threads=n_threads)
    g = run.generalisation_epoch
    cens = ~np.isfinite(g) | (run.status != 0)
    return np.where(cens, steps, g) * lr, cens


def _escape_result(task, model, prepare, prep: NonlinearRun, lam, release_epochs, sampling, points, S, dtype,
                   threshold, log_every, times, cens, entropy, t0, reference):
    B, L, N, T, x_law = points
    n = task.n_train
    tau, se, lower, n_esc = (np.full(B.size, np.nan) for _ in range(4))
    for i in range(B.size):
        fit = exponential_mle(times[i], cens[i], time_unit="epochs")
        n_esc[i] = fit.n_escaped
        lower[i] = fit.tau_lower
        if fit.tau is not None:
            tau[i], se[i] = fit.tau, fit.tau_stderr
    steps_per_epoch = np.where(sampling == "full", 1, n // B)
    tau_time = tau * steps_per_epoch * L
    tau_time_se = se * steps_per_epoch * L
    x = escape_abscissa(x_law, B, L, N, T)
    ok = np.isfinite(tau_time) & (n_esc > 0) & np.isfinite(x)
    laws = fit_escape_laws(x[ok], tau_time[ok], tau_time_se[ok])
    if ok.sum() >= 3 and np.ptp(x[ok]) > 0:  # cross-check the Arrhenius slope with phasetools.stats
        af = arrhenius_fit(x[ok], tau_time[ok], tau_stderr=tau_time_se[ok],
                           x_is="inverse_temperature" if x_law == "1/temperature" else "batch_size/lr",
                           time_unit="lr*steps")
        assert np.isclose(af.slope, laws["arrhenius_slope"], rtol=1e-6, atol=1e-12)
    return NonlinearEscape(
        *_network_fields(task, model), prepare.kind, prepare.lr, prepare.weight_decay, prep.epochs, lam,
        release_epochs, sampling, B, L, S, dtype, float(threshold), log_every,
        prep.train_acc[:, -1], prep.test_acc[:, -1], times, cens, n_esc.astype(np.int64), tau, se, lower, tau_time,
        tau_time_se, **laws, steps_per_epoch=np.broadcast_to(steps_per_epoch, B.shape).astype(np.int64),
        reference_lr=reference[0], reference_escape_time=reference[1],
        reference_censored=reference[2], label_noise=N, temperature=T, x_law=x_law, **_provenance(entropy, t0))
