"""``escape_sweep``: one escape ensemble per temperature or per SGD ``(lr, batch_size)`` point,
each fitted by the censoring-aware exponential MLE, and the Arrhenius fit across them.

The loop "simulate one ensemble per point -> fit its mean escape time -> fit ``ln tau``
against ``1/T`` (or ``batch_size/lr``)" lives here once; the CLI, the reproduction, the
figures and the examples call it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._rng import seed_sequence, seeds_record
from .._validation import as_float_array
from ..results import Result, register
from ._problems import EscapeProblem
from ._simulate import EscapeEnsemble, simulate

__all__ = ["EscapeSweep", "escape_sweep"]

_FIT_DEFAULTS = {"confidence": 0.95, "interval": "gamma"}


@register
@dataclass(frozen=True, eq=False, repr=False)
class EscapeSweep(Result):
    """Escape ensembles over a set of points, their exponential fits and the theory's times.

    Made by :func:`escape_sweep` or :meth:`from_ensembles`; never changed afterwards.

    Parameters
    ----------
    noise : {"additive", "sgd"}
        Additive noise at a temperature per point, or SGD-like noise at an
        ``(lr, batch_size)`` per point.
    x_is : {"inverse_temperature", "batch_size/lr"}
        What the Arrhenius abscissa :attr:`x` is (``1/T`` or ``batch_size/lr``).
    convention : str
        Energy convention of the ensembles; temperatures and times are in its units.
    problem : dict or None
        The :class:`EscapeProblem` configuration, when the sweep was made from one.
    barrier : float or None
        The problem's barrier (convention energy units), when known.
    temperature : ndarray (n_points,)
        Additive noise: the temperature of each point. SGD-like noise: the effective
        temperature ``T_eff = lr f tr(Sigma) / (2 B N_theta)`` at the start
        (:meth:`SGDTheory.temperature`), NaN when unknown.
    lr, batch_size : ndarray (n_points,) or None
        The SGD points (None for additive noise).
    n_samples : int or None
        Training-set size of the without-replacement factor (SGD-like noise).
    output_var : float or None
        ``E[y^2]`` of the mode (SGD-like noise).
    theory_tau : ndarray (n_points,)
        The theory's mean escape time per point (convention time units), NaN where it has
        none: Eyring-Kramers or the exact 1D time for additive noise
        (:meth:`EscapeProblem.theory_tau`), the exact 1D time :meth:`SGDTheory.tau` for
        SGD-like noise.
    ensembles : tuple of EscapeEnsemble
        One ensemble per point.
    fits : tuple of phasetools.stats.ExponentialFit
        ``ensembles[i].fit()`` (95 %, gamma interval) per point.
    seeds : tuple of int or None
        ``(entropy, *spawn_key)`` of the root the points' streams were spawned from; None
        when each point had its own ``rng`` (each ensemble records its own ``seeds``).
    """

    noise: str
    x_is: str
    convention: str
    problem: dict | None
    barrier: float | None
    temperature: np.ndarray
    lr: np.ndarray | None
    batch_size: np.ndarray | None
    n_samples: int | None
    output_var: float | None
    theory_tau: np.ndarray
    ensembles: tuple
    fits: tuple

    _config_fields = ("noise", "x_is", "convention", "problem", "temperature", "lr", "batch_size", "n_samples",
                      "output_var")
    _dims = {"temperature": ("point",), "lr": ("point",), "batch_size": ("point",), "theory_tau": ("point",)}
    _units = {"temperature": "temperature[convention]", "theory_tau": "time[convention]",
              "lr": "time[convention]/step"}

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_ensembles(cls, ensembles, *, theory_tau=None, temperature=None, problem=None, barrier=None,
                       n_samples=None, output_var=None, seeds=None) -> "EscapeSweep":
        """Collect ensembles made elsewhere (e.g. by a parameter sweep) into an EscapeSweep.

        Parameters
        ----------
        ensembles : sequence of EscapeEnsemble
            One per point, all with additive noise or all with SGD-like noise, in one convention.
        theory_tau : sequence of float or None, optional
            The theory's mean escape time per point (None entries and NaN: no prediction).
        temperature : sequence of float, optional
            SGD-like noise only: ``T_eff`` per point (default NaN). Additive noise takes the
            ensembles' temperatures.
        problem : EscapeProblem or dict, optional
            The problem (or its configuration) the ensembles belong to.
        barrier : float, optional
            The barrier (default: ``problem.barrier`` when ``problem`` is an EscapeProblem).
        n_samples : int, optional
            SGD-like noise: the training-set size used for the noise.
        output_var : float, optional
            SGD-like noise: ``E[y^2]`` used for the noise.
        seeds : tuple of int, optional
            The root the ensembles' streams were spawned from (recorded only).

        Returns
        -------
        EscapeSweep
        """
        ens = _check_ensembles(ensembles)
        n = len(ens)
        sgd = ens[0].noise is not None
        if sgd:
            lr = np.array([float(e.noise["lr"]) for e in ens])
            batch_size = np.array([int(e.noise["batch_size"]) for e in ens], dtype=np.int64)
            temps = np.full(n, np.nan) if temperature is None else _per_point(temperature, "temperature", n)
        else:
            lr = batch_size = None
            if temperature is not None:
                raise ValueError("temperature is taken from the ensembles for additive noise; give it only "
                                 "for SGD-like noise (T_eff)")
            temps = np.array([float(e.temperature) for e in ens])
        theory = np.full(n, np.nan) if theory_tau is None else _per_point(theory_tau, "theory_tau", n)
        if isinstance(problem, EscapeProblem):
            barrier = problem.barrier if barrier is None else barrier
            problem = problem.config
        return cls(noise="sgd" if sgd else "additive", x_is="batch_size/lr" if sgd else "inverse_temperature",
                   convention=ens[0].convention, problem=None if problem is None else dict(problem),
                   barrier=None if barrier is None else float(barrier), temperature=temps, lr=lr,
                   batch_size=batch_size, n_samples=None if n_samples is None else int(n_samples),
                   output_var=None if output_var is None else float(output_var), theory_tau=theory,
                   ensembles=ens, fits=tuple(e.fit(**_FIT_DEFAULTS) for e in ens), seeds=seeds)

    # -- per-point numbers --------------------------------------------------------------
    @property
    def n_points(self) -> int:
        """Number of points (ensembles)."""
        return len(self.ensembles)

    @property
    def x(self) -> np.ndarray:
        """The Arrhenius abscissa per point: ``1/temperature``, or ``batch_size/lr`` for SGD-like noise."""
        if self.noise == "sgd":
            return np.array([float(b) / float(lr) for lr, b in zip(self.lr, self.batch_size)])
        return 1 / self.temperature

    @property
    def tau(self) -> np.ndarray:
        """Fitted mean escape time per point (NaN where nothing escaped)."""
        return np.array([np.nan if f.tau is None else f.tau for f in self.fits])

    @property
    def tau_stderr(self) -> np.ndarray:
        """Standard error of :attr:`tau` per point (NaN where nothing escaped)."""
        return np.array([np.nan if f.tau_stderr is None else f.tau_stderr for f in self.fits])

    @property
    def tau_lower(self) -> np.ndarray:
        """One-sided 95 % lower bound on the mean escape time per point (defined with no escape too)."""
        return np.array([f.tau_lower for f in self.fits])

    @property
    def n_escaped(self) -> np.ndarray:
        """Escaped trajectories per point."""
        return np.array([int(e.escaped.sum()) for e in self.ensembles], dtype=np.int64)

    @property
    def n_censored(self) -> np.ndarray:
        """Censored trajectories per point."""
        return np.array([int(e.censored.sum()) for e in self.ensembles], dtype=np.int64)

    @property
    def n_nonfinite(self) -> np.ndarray:
        """Trajectories stopped by a non-finite value per point (left out of the fits)."""
        return np.array([int(e.nonfinite.sum()) for e in self.ensembles], dtype=np.int64)

    # -- fits ---------------------------------------------------------------------------
    def fit(self, *, confidence=0.95, interval="gamma") -> list:
        """The censoring-aware exponential fit of every point (:meth:`EscapeEnsemble.fit`).

        Parameters
        ----------
        confidence : float in (0, 1)
            Level of the intervals.
        interval : {"gamma", "poisson"}
            Construction of the two-sided interval.

        Returns
        -------
        list of phasetools.stats.ExponentialFit
            One per point; the stored :attr:`fits` for the default options.
        """
        if confidence == _FIT_DEFAULTS["confidence"] and interval == _FIT_DEFAULTS["interval"]:
            return list(self.fits)
        return [e.fit(confidence=confidence, interval=interval) for e in self.ensembles]

    def arrhenius(self, *, prefactor=None, temperature_power=0.0, confidence=0.95):
        """Weighted Arrhenius fit of ``ln tau`` against :attr:`x` over the points with escapes.

        Points where nothing escaped are left out; each point is weighted by its
        ``tau_stderr``. Against ``1/T`` the slope is the barrier (additive noise); against
        ``batch_size/lr`` it is the SGD slope (see :class:`SGDTheory`).

        Parameters
        ----------
        prefactor : array (n_points,), optional
            Theory prefactor per point, removed before fitting (see
            :func:`phasetools.stats.arrhenius_fit`); default none.
        temperature_power : float
            ``p`` in ``tau ~ T^p exp(slope x)`` (default 0).
        confidence : float in (0, 1)
            Level of the slope's and intercept's intervals.

        Returns
        -------
        phasetools.stats.ArrheniusFit or None
            None when fewer than two points with escapes at distinct ``x`` remain (nothing
            to fit). ``time_unit`` is the convention's name.
        """
        from ..stats import arrhenius_fit

        x = self.x
        good = [k for k, f in enumerate(self.fits) if f.tau is not None]
        if len(good) < 2 or np.ptp(x[good]) == 0:
            return None
        pref = None if prefactor is None else _per_point(prefactor, "prefactor", self.n_points)[good]
        return arrhenius_fit(x[good], [self.fits[k].tau for k in good],
                             tau_stderr=[self.fits[k].tau_stderr for k in good], prefactor=pref,
                             temperature_power=temperature_power, x_is=self.x_is, confidence=confidence,
                             time_unit=self.convention)

    def labels(self) -> list:
        """A short label per point: ``"T = 0.01"`` or ``"lr = 0.08, B = 4"``.

        Returns
        -------
        list of str
        """
        if self.noise == "sgd":
            return [f"lr = {lr:g}, B = {b}" for lr, b in zip(self.lr, self.batch_size)]
        return [f"T = {T:g}" for T in self.temperature]

    def __repr__(self):
        pts = ", ".join(f"{lab}: {int(e)}/{ens.n_traj}" for lab, e, ens in
                        zip(self.labels(), self.n_escaped, self.ensembles))
        return f"EscapeSweep(noise={self.noise!r}, n_points={self.n_points}, escaped {pts})"


def escape_sweep(problem: EscapeProblem, *, temperatures=None, points=None, dt, n_traj, max_steps,
                 scheme="euler", n_samples=None, output_var=1.0, rng=None, n_threads=None,
                 progress=False) -> EscapeSweep:
    """Simulate ``problem`` at every temperature (or SGD point), fit each, keep the theory beside.

    Parameters
    ----------
    problem : EscapeProblem
        From :func:`escape_problem`: potential, start, stop and the theory's times.
    temperatures : sequence of float > 0
        Additive noise: one ensemble per temperature. Give either this or ``points``.
    points : sequence of (lr, batch_size)
        SGD-like noise (:meth:`EscapeProblem.sgd_noise`, ``chain`` and ``network``,
        backward escape): one ensemble per ``(lr, batch_size)`` pair.
    dt : float > 0
        Time step (Langevin time ``lr * steps`` for SGD-like noise).
    n_traj, max_steps : int >= 1
        Trajectories per point, and the step budget after which a trajectory is censored.
    scheme : "euler" | "bridge" | EulerMaruyama | BrownianBridge
        Integration scheme (see :func:`simulate`).
    n_samples : int, optional
        SGD-like noise: training-set size, switching on the factor ``(N - B)/(N - 1)``.
    output_var : float
        SGD-like noise: ``E[y^2]`` of the mode (default 1).
    rng : None, int, SeedSequence, Generator, or a sequence of these with one per point
        One root: point ``i`` runs with the integer ``SeedSequence(root).spawn(n)[i]
        .generate_state(1, uint64)[0]`` (so a sweep is reproducible from one seed). A
        sequence: point ``i`` runs with ``rng[i]`` as :func:`simulate`'s ``rng``.
    n_threads : int, optional
        numba threads per simulation.
    progress : bool
        Show a progress bar over the points (on a terminal only).

    Returns
    -------
    EscapeSweep
        The ensembles, their fits and the theory's times; :meth:`EscapeSweep.arrhenius`
        fits across the points.
    """
    from .._progress import progress as _progress

    if not isinstance(problem, EscapeProblem):
        raise ValueError(f"problem must be an EscapeProblem (from escape_problem), got {type(problem).__name__}")
    if (temperatures is None) == (points is None):
        raise ValueError("give exactly one of temperatures (additive noise) and points ((lr, batch_size) pairs "
                         "of SGD-like noise)")
    if temperatures is not None:
        temps = as_float_array(temperatures, "temperatures")
        if temps.ndim != 1 or temps.size == 0:
            raise ValueError(f"temperatures must be a non-empty 1-D sequence, got shape {temps.shape}")
        noises = [None] * temps.size
        theory = tsgd = None
    else:
        pts = _check_points(points)
        noises = [problem.sgd_noise(lr, b, n_samples=n_samples, output_var=output_var) for lr, b in pts]
        tsgd = problem.sgd_theory(output_var=output_var)
        temps = [None] * len(pts)
    seeds, rngs = _point_rngs(rng, len(noises))
    ensembles, theory = [], []
    desc = "temperatures" if points is None else "(lr, batch_size) points"
    for T, noise, r in _progress(list(zip(temps, noises, rngs)), desc=desc, quiet=not progress):
        ens = simulate(problem.potential, problem.x0, temperature=None if T is None else float(T), noise=noise,
                       dt=dt, n_traj=n_traj, max_steps=max_steps, stop=problem.stop, scheme=scheme, rng=r,
                       n_threads=n_threads)
        ensembles.append(ens)
        if noise is None:
            theory.append(problem.theory_tau(float(T)))
        else:
            theory.append(tsgd.tau(noise.lr, noise.batch_size, n_samples))
    t_eff = None if tsgd is None else [tsgd.temperature(nz.lr, nz.batch_size, n_samples) for nz in noises]
    return EscapeSweep.from_ensembles(
        ensembles, theory_tau=[np.nan if t is None else t for t in theory], temperature=t_eff, problem=problem,
        n_samples=n_samples if tsgd is not None else None, output_var=tsgd.output_var if tsgd is not None else None,
        seeds=seeds)


# ---------------------------------------------------------------------------------------
def _point_rngs(rng, n):
    """(recorded root seeds or None, one rng per point)."""
    if isinstance(rng, (list, tuple, np.ndarray)):
        if len(rng) != n:
            raise ValueError(f"rng must be one root or a sequence with one entry per point ({n}), got {len(rng)}")
        return None, list(rng)
    root = seed_sequence(rng)
    return seeds_record(root), [int(s.generate_state(1, dtype=np.uint64)[0]) for s in root.spawn(n)]


def _check_points(points):
    try:
        pts = [(lr, b) for lr, b in points]
    except (TypeError, ValueError):
        raise ValueError(f"points must be a sequence of (lr, batch_size) pairs, got {points!r}") from None
    if not pts:
        raise ValueError("points must hold at least one (lr, batch_size) pair")
    return pts   # lr and batch_size are checked by SGDNoise


def _check_ensembles(ensembles):
    ens = tuple(ensembles) if isinstance(ensembles, (list, tuple)) else (ensembles,)
    if not ens:
        raise ValueError("ensembles must hold at least one EscapeEnsemble")
    for e in ens:
        if not isinstance(e, EscapeEnsemble):
            raise ValueError(f"ensembles must be EscapeEnsembles, got {type(e).__name__}")
    if len({e.noise is None for e in ens}) > 1:
        raise ValueError("ensembles must all have additive noise or all SGD-like noise, not a mix")
    if len({e.convention for e in ens}) > 1:
        raise ValueError(f"ensembles must share one convention, got {sorted({e.convention for e in ens})}")
    return ens


def _per_point(values, name, n):
    arr = np.array([np.nan if v is None else v for v in np.ravel(np.asarray(values, dtype=object))], dtype=float)
    if arr.shape != (n,):
        raise ValueError(f"{name} must have one value per point ({n}), got {arr.size}")
    return arr
