"""``simulate``: ensembles of overdamped Langevin trajectories with first-passage stops."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numba
import numpy as np

from .._progress import compile_notice
from .._validation import as_float_array, check_choice, check_memory, check_positive
from ..results import Result, register
from ..theory import without_replacement_factor
from ._codegen import kernel_module, numpy_functions
from ._expr import order_text, parse_expression
from ._potentials import Potential
from ._structured import structured_kernel
from .._rng import ZIG_F, ZIG_K, ZIG_W, entropy_of, seed_states, trajectory_keys

__all__ = ["EulerMaruyama", "BrownianBridge", "Threshold", "SGDNoise", "EscapeEnsemble", "simulate", "replay",
           "STATUS_CENSORED", "STATUS_ESCAPED", "STATUS_NONFINITE"]

#: ``EscapeEnsemble.status`` codes: still running at ``max_steps`` (right-censored), passed the
#: stop level (escaped), stopped by a non-finite value (left out of escape statistics).
STATUS_CENSORED, STATUS_ESCAPED, STATUS_NONFINITE = 0, 1, 2
_MAX_PATH_VALUES = 200_000_000


@dataclass(frozen=True)
class EulerMaruyama:
    """Euler-Maruyama: strong order 1/2, weak order 1.

    First passage is tested at the grid points only, so escape times are biased late by
    O(sqrt(dt)) (paths that cross and come back within a step are missed).

    Parameters
    ----------
    name : str
        The scheme's name in results (``"euler"``).
    strong_order, weak_order : float
        Orders of convergence of paths and of expectations.
    first_passage_order : float
        Order of the first-passage (escape-time) bias in ``dt``.
    bridge : bool
        Whether the Brownian-bridge crossing test runs between grid points.
    """

    name: str = "euler"
    strong_order: float = 0.5
    weak_order: float = 1.0
    first_passage_order: float = 0.5
    bridge: bool = False


@dataclass(frozen=True)
class BrownianBridge:
    """Euler-Maruyama steps plus a Brownian-bridge crossing test between grid points.

    When both ends of a step lie below the level (distances ``a``, ``b``), the path is
    counted as having crossed with probability ``exp(-2 a b / v)``, ``v = 2 T dt
    |grad phi|^2`` the variance of the order parameter's increment; this lowers the
    first-passage bias from O(sqrt(dt)) to O(dt) (Gobet 2000; Mannella 1999).

    Parameters
    ----------
    name, strong_order, weak_order, first_passage_order, bridge
        As in :class:`EulerMaruyama` (``"bridge"``, first-passage order 1, bridge on).
    """

    name: str = "bridge"
    strong_order: float = 0.5
    weak_order: float = 1.0
    first_passage_order: float = 1.0
    bridge: bool = True


_SCHEMES = {"euler": EulerMaruyama(), "bridge": BrownianBridge()}


@dataclass(frozen=True)
class Threshold:
    """Stop a trajectory when the order parameter first passes ``level``.

    Parameters
    ----------
    level : float
        The level of the order parameter ``phi``.
    direction : {"up", "down"}
        ``"up"``: stop when ``phi >= level``; ``"down"``: when ``phi <= level``.
    order : sympy.Expr, optional
        An order parameter in the potential's variables, replacing the potential's default.
    """

    level: float
    direction: str = "up"
    order: object = None

    def __post_init__(self):
        check_choice(self.direction, "direction", ("up", "down"))
        lv = float(as_float_array(self.level, "level"))
        object.__setattr__(self, "level", lv)


@dataclass(frozen=True)
class SGDNoise:
    """SGD-like multiplicative noise: covariance ``(lr / batch_size) Sigma(theta)`` per unit time.

    ``Sigma`` is the exact per-sample gradient covariance of the linear-network loss: with
    ``r = y - M x``, ``Sigma = 4 kappa^2 J^T K J``, ``J = dM/dtheta`` and ``K`` the covariance
    of ``vec(r x^T)``. Under the Gaussian data model (``moments="gaussian"``)
    ``K[(a,b),(c,d)] = E[r_a r_c] E[x_b x_d] + E[r_a x_d] E[r_c x_b]``
    (:func:`phasetools.theory.gradient_noise_kernel`); with the data's own fourth moments
    (``moments="data"``) ``K`` is :func:`phasetools.theory.data_noise_kernel`. The kernel
    evaluates ``K`` at every step. It vanishes where ``J`` does, e.g. at the trivial state.
    Time is Langevin time ``t = lr * steps`` of the potential's convention.

    Parameters
    ----------
    lr, batch_size : float > 0, int >= 1
        Learning rate and batch size ``B``.
    input_cov, cross_cov, output_cov : arrays
        ``S_xx`` (d, d), ``S_yx`` (p, d), ``S_yy`` (p, p), as in
        :func:`phasetools.theory.residual_moments`.
    n_samples : int >= max(2, batch_size) or None
        Switches on the without-replacement factor ``(N - B)/(N - 1)``
        (:func:`phasetools.theory.without_replacement_factor`).
    moments : {"gaussian", "data"}
        Where the per-sample noise's fourth moments come from: Isserlis' theorem on the three
        second-moment matrices (default), or the data's own (``fourth``); recorded in
        :meth:`config` and so in ``EscapeEnsemble.noise``. Build the data option with
        :meth:`from_data` (a training set, any network) or :meth:`from_mode` (one scalar mode).
    fourth : array, optional
        With ``moments="data"``: either the tensor ``T[k,b,l,d] = E[z_k x_b z_l x_d]``,
        ``z = (x, y)``, of shape ``(d + p, d, d + p, d)``
        (:func:`phasetools.theory.sample_fourth_moments`; any network on the structured
        kernel, or a 1 x 1 chain), or, for one scalar mode (1 x 1 moment matrices), the three
        numbers ``(E[x^4], E[y x^3], E[y^2 x^2])`` of the mode's projections, as in
        :class:`phasetools.theory.ModeNoise` (``K(P) = E[y^2 x^2] - 2 P E[y x^3] + P^2 E[x^4]
        - (c - P a)^2``).
    """

    lr: float
    batch_size: int
    input_cov: object
    cross_cov: object
    output_cov: object
    n_samples: int | None = None
    moments: str = "gaussian"
    fourth: object = None

    def __post_init__(self):
        object.__setattr__(self, "lr", float(check_positive(self.lr, "lr")))
        without_replacement_factor(self.batch_size, self.n_samples)   # validates batch_size and n_samples
        sxx = np.atleast_2d(as_float_array(self.input_cov, "input_cov"))
        syx = np.atleast_2d(as_float_array(self.cross_cov, "cross_cov"))
        syy = np.atleast_2d(as_float_array(self.output_cov, "output_cov"))
        if sxx.shape[0] != sxx.shape[1] or syx.shape[1] != sxx.shape[0] or syy.shape != (syx.shape[0],) * 2:
            raise ValueError(f"input_cov (d, d), cross_cov (p, d) and output_cov (p, p) do not fit together: "
                             f"{sxx.shape}, {syx.shape}, {syy.shape}")
        object.__setattr__(self, "input_cov", sxx)
        object.__setattr__(self, "cross_cov", syx)
        object.__setattr__(self, "output_cov", syy)
        check_choice(self.moments, "moments", ("gaussian", "data"))
        if (self.moments == "data") != (self.fourth is not None):
            raise ValueError("fourth must be given with moments='data' (and only then): the tensor "
                             "E[z_k x_b z_l x_d] of the data (SGDNoise.from_data), or (E[x^4], E[y x^3], E[y^2 x^2]) "
                             "of one scalar mode (SGDNoise.from_mode)")
        if self.fourth is not None:
            object.__setattr__(self, "fourth", _check_fourth(self.fourth, sxx, syx))

    @classmethod
    def from_data(cls, lr, batch_size, data, n_samples=None) -> "SGDNoise":
        """SGD-like noise with the fourth moments of a training set (any network shape).

        Parameters
        ----------
        lr, batch_size, n_samples : float > 0, int >= 1, int or None
            As in :class:`SGDNoise` (``n_samples=None``: batches drawn with replacement).
        data : (X, Y) or phasetools.training.Dataset
            The training samples in rows, ``X`` (N, d_in), ``Y`` (N, d_out) (1-D arrays are one
            column); anything that unpacks as ``X, Y``.

        Returns
        -------
        SGDNoise
            ``moments="data"``, the data's second moments (``X^T X / N``, ``Y^T X / N``,
            ``Y^T Y / N``) and ``fourth`` = :func:`phasetools.theory.sample_fourth_moments`.
        """
        from ..theory import sample_fourth_moments

        try:
            X, Y = data
        except (TypeError, ValueError):
            raise ValueError(f"data must be a pair (X, Y) of sample arrays or a training Dataset, got "
                             f"{type(data).__name__}") from None
        X = as_float_array(X, "X")
        Y = as_float_array(Y, "Y")
        X = X[:, None] if X.ndim == 1 else X
        Y = Y[:, None] if Y.ndim == 1 else Y
        if X.ndim != 2 or Y.ndim != 2 or X.shape[0] != Y.shape[0] or X.shape[0] < 2:
            raise ValueError(f"data: X (N, d_in) and Y (N, d_out) need the same number N >= 2 of rows, got "
                             f"{X.shape} and {Y.shape}")
        N = X.shape[0]
        sxx, syx, syy = X.T @ X / N, Y.T @ X / N, Y.T @ Y / N
        return cls(lr, batch_size, 0.5 * (sxx + sxx.T), syx, 0.5 * (syy + syy.T), n_samples, moments="data",
                   fourth=sample_fourth_moments(X, Y))

    @classmethod
    def from_mode(cls, lr, batch_size, mode, n_samples=None) -> "SGDNoise":
        """SGD-like noise of one scalar mode with the moments of a :class:`phasetools.theory.ModeNoise`.

        Parameters
        ----------
        lr, batch_size, n_samples : float > 0, int >= 1, int or None
            As in :class:`SGDNoise`.
        mode : phasetools.theory.ModeNoise
            E.g. from :func:`phasetools.theory.data_mode_noise` (``moments="data"``: the draw's own
            fourth moments; ``"gaussian"``: Isserlis').

        Returns
        -------
        SGDNoise
            ``moments`` as the mode's; for ``"data"`` its ``fourth`` moments are recorded.
        """
        data = mode.moments == "data"
        return cls(lr, batch_size, [[mode.a]], [[mode.c]], [[mode.output_var]], n_samples,
                   moments="data" if data else "gaussian",
                   fourth=(mode.m_xxxx, mode.m_yxxx, mode.m_yyxx) if data else None)

    @property
    def tensor(self) -> bool:
        """True when ``fourth`` is the full tensor ``T`` (made by :meth:`from_data`)."""
        return isinstance(self.fourth, np.ndarray)

    def data_moments(self) -> tuple:
        """``(S, T)`` of :func:`phasetools.theory.data_noise_kernel`: ``S = E[z x^T]``, ``T = E[z x^T z x^T]``.

        Returns
        -------
        tuple of numpy.ndarray
            ``S`` (d + p, d) (``S_xx`` stacked on ``S_yx``) and ``T`` (d + p, d, d + p, d).
        """
        if not self.tensor:
            raise ValueError("data_moments needs the full fourth-moment tensor (SGDNoise.from_data)")
        return np.concatenate([self.input_cov, self.cross_cov], axis=0), self.fourth

    def kernel_moments(self) -> tuple:
        """The ``(S_xx, S_yx, S_yy)`` a kernel that evaluates Isserlis' ``K`` uses.

        For ``moments="gaussian"`` the given matrices. For ``"data"`` of one scalar mode, the
        moments ``(a', c', s')`` whose Isserlis kernel ``(a's' + c'^2) - 4 P a'c' + 2 P^2 a'^2``
        is the data's ``K(P)`` coefficient by coefficient: ``a' = sqrt((E[x^4] - a^2)/2)``,
        ``c' = (E[y x^3] - a c)/(2 a')``, ``s' = (E[y^2 x^2] - c^2 - c'^2)/a'`` (for Gaussian
        moments these are ``a, c, s`` again). The drift does not use them. Data moments of a
        larger network have no such form: they run on the structured network kernel only.

        Returns
        -------
        tuple of numpy.ndarray
        """
        if self.fourth is None:
            return self.input_cov, self.cross_cov, self.output_cov
        if self.input_cov.shape != (1, 1) or self.cross_cov.shape != (1, 1):
            raise ValueError(f"moments='data' of a {self.input_cov.shape[0]} -> {self.cross_cov.shape[0]} map runs on "
                             "the structured network kernel only (network(..., kernel='structured') with its own "
                             "order parameter); the generated kernels evaluate Isserlis' formula, which the data's "
                             "fourth moments fit only for one scalar mode")
        m_xxxx, m_yxxx, m_yyxx = _scalar_fourth(self.fourth)
        a, c = float(self.input_cov[0, 0]), float(self.cross_cov[0, 0])
        a_e = np.sqrt((m_xxxx - a * a) / 2.0)
        c_e = (m_yxxx - a * c) / (2.0 * a_e)
        s_e = (m_yyxx - c * c - c_e * c_e) / a_e
        return np.array([[a_e]]), np.array([[c_e]]), np.array([[s_e]])

    def kernel(self, M) -> np.ndarray:
        """``K``, the per-sample covariance of ``vec(r x^T)`` at end-to-end map(s) ``M``, as the kernel uses it.

        Parameters
        ----------
        M : array (..., p, d)
            End-to-end map(s).

        Returns
        -------
        numpy.ndarray (..., p d, p d)
        """
        from ..theory import data_noise_kernel, gradient_noise_kernel
        if self.tensor:
            return data_noise_kernel(np.asarray(M, dtype=float), self.input_cov, self.cross_cov, self.fourth)
        return gradient_noise_kernel(np.asarray(M, dtype=float), *self.kernel_moments())

    @property
    def factor(self) -> float:
        """The without-replacement factor (N - B)/(N - 1), or 1."""
        return without_replacement_factor(self.batch_size, self.n_samples)

    def config(self) -> dict:
        """The noise's configuration as plain values (stored in ``EscapeEnsemble.noise``).

        Returns
        -------
        dict
            ``lr``, ``batch_size``, ``n_samples``, the three moment matrices as lists, ``moments``
            and ``fourth`` (None, the three scalar-mode moments, or the nested-list tensor).
        """
        fourth = None if self.fourth is None else (self.fourth.tolist() if self.tensor else list(self.fourth))
        return {"lr": self.lr, "batch_size": int(self.batch_size), "n_samples": self.n_samples,
                "input_cov": self.input_cov.tolist(), "cross_cov": self.cross_cov.tolist(),
                "output_cov": self.output_cov.tolist(), "moments": self.moments, "fourth": fourth}


def _scalar_fourth(fourth) -> tuple:
    """``(E[x^4], E[y x^3], E[y^2 x^2])`` of a 1 x 1 mode from either form of ``fourth``."""
    if isinstance(fourth, np.ndarray):
        return float(fourth[0, 0, 0, 0]), float(fourth[1, 0, 0, 0]), float(fourth[1, 0, 1, 0])
    return fourth


def _check_fourth(fourth, sxx, syx):
    """``fourth`` validated: three scalar-mode moments (a tuple) or the tensor ``T`` (an array)."""
    d, p = sxx.shape[0], syx.shape[0]
    f = np.asarray(fourth, dtype=float)
    if f.ndim <= 1:
        if sxx.shape != (1, 1) or syx.shape != (1, 1):
            raise ValueError(f"fourth as three numbers (E[x^4], E[y x^3], E[y^2 x^2]) is for one scalar mode (1 x 1 "
                             f"moment matrices, a chain), got input_cov {sxx.shape} and cross_cov {syx.shape}; "
                             f"give the tensor of shape {(d + p, d, d + p, d)} (SGDNoise.from_data)")
        t = tuple(float(v) for v in f.ravel())
        if len(t) != 3 or not np.all(np.isfinite(t)) or t[0] <= sxx[0, 0] ** 2:
            raise ValueError(f"fourth must be three finite moments (E[x^4] > E[x^2]^2, E[y x^3], E[y^2 x^2]), "
                             f"got {fourth!r}")
        return t
    shape = (d + p, d, d + p, d)
    if f.shape != shape:
        raise ValueError(f"fourth must be the tensor E[z_k x_b z_l x_d] of shape (d_in + d_out, d_in, d_in + d_out, "
                         f"d_in) = {shape} for input_cov {sxx.shape} and cross_cov {syx.shape}, got shape {f.shape}")
    if not np.all(np.isfinite(f)):
        raise ValueError("fourth must be finite")
    n = (d + p) * d
    T = f.reshape(n, n)
    scale = float(np.max(np.abs(T))) or 1.0
    if np.max(np.abs(T - T.T)) > 1e-9 * scale:
        raise ValueError("fourth must be symmetric under (k, b) <-> (l, d): T[k,b,l,d] = E[z_k x_b z_l x_d]")
    S = np.concatenate([sxx, syx], axis=0).ravel()
    C = 0.5 * (T + T.T) - np.outer(S, S)
    if np.min(np.linalg.eigvalsh(C)) < -1e-9 * scale:
        raise ValueError("fourth and the second moments (input_cov, cross_cov) are not those of one data set: "
                         "T - vec(S) vec(S)^T, the covariance of vec(z x^T), must be positive semi-definite")
    return np.ascontiguousarray(0.5 * (T + T.T)).reshape(shape)


@register
@dataclass(frozen=True, eq=False, repr=False)
class EscapeEnsemble(Result):
    """An ensemble of Langevin trajectories and their first-passage (escape) times.

    Made by :func:`simulate` (and :func:`replay`, :meth:`merge`); never changed afterwards.

    Parameters
    ----------
    potential : str
        Name of the potential (``"chain"``, ``"network"``, ...).
    potential_config : dict
        The potential's parameters (JSON types).
    convention : str
        Energy convention of the potential; energies, temperatures and times are in its units.
    temperature : float or None
        Temperature of additive noise; None for SGD-like noise (then ``noise`` is set).
    dt : float
        Time step.
    max_steps : int
        Step budget; a trajectory still running after it is right-censored.
    scheme : str
        ``"euler"`` or ``"bridge"``.
    stop_order, stop_level, stop_direction : str, float, str or None
        The stop condition (the order parameter as sympy ``srepr`` text, exact and read back
        by a whitelist parser, never evaluated; its level; ``"up"``/``"down"``); None
        without a stop.
    x0 : ndarray (n_traj, dim)
        Starting points.
    times : ndarray (n_traj,)
        Escape time (``steps * dt``, convention time units) of an escaped trajectory, the
        observation time (a lower bound) of a censored one.
    steps : ndarray (n_traj,)
        Steps taken.
    status : ndarray (n_traj,) of int8
        :data:`STATUS_CENSORED` (0), :data:`STATUS_ESCAPED` (1) or :data:`STATUS_NONFINITE`
        (2, stopped by a non-finite value; left out of escape statistics). Prefer the masks
        :attr:`escaped`, :attr:`censored`, :attr:`nonfinite` and :attr:`finite`.
    final : ndarray (n_traj, dim)
        State at the stop (or at ``max_steps``).
    run, index : ndarray (n_traj,) of int64
        Each trajectory's random stream: entropy ``seeds[run]``, trajectory ``index``
        (see :func:`replay`).
    paths : ndarray (n_traj, n_save, dim) or None
        States every ``save_every`` steps (NaN after the stop), when asked for.
    save_every : int or None
        Spacing of ``paths`` in steps.
    noise : dict or None
        The :class:`SGDNoise` configuration for SGD-like noise; None for additive noise.
    seeds : tuple of int
        The entropy of each pooled run.
    stats : dict
        ``wall_time``, ``compile_time``, ``setup_time``, ``steps_total``, ``n_nonfinite``,
        ``n_threads``.
    """

    potential: str
    potential_config: dict
    convention: str
    temperature: float | None
    dt: float
    max_steps: int
    scheme: str
    stop_order: str | None
    stop_level: float | None
    stop_direction: str | None
    x0: np.ndarray
    times: np.ndarray
    steps: np.ndarray
    status: np.ndarray
    final: np.ndarray
    run: np.ndarray
    index: np.ndarray
    paths: np.ndarray | None = None
    save_every: int | None = None
    noise: dict | None = None

    _config_fields = ("potential", "potential_config", "convention", "temperature", "noise", "dt", "max_steps",
                      "scheme", "stop_order", "stop_level", "stop_direction", "save_every")
    _dims = {"x0": ("trajectory", "variable"), "times": ("trajectory",), "steps": ("trajectory",),
             "status": ("trajectory",), "final": ("trajectory", "variable"), "run": ("trajectory",),
             "index": ("trajectory",), "paths": ("trajectory", "save", "variable")}
    _units = {"times": "time[convention]", "temperature": "temperature[convention]", "dt": "time[convention]"}

    @property
    def n_traj(self) -> int:
        """Number of trajectories."""
        return int(self.times.size)

    @property
    def escaped(self) -> np.ndarray:
        """Boolean mask: the trajectory passed the stop level (``status == STATUS_ESCAPED``)."""
        return self.status == STATUS_ESCAPED

    @property
    def censored(self) -> np.ndarray:
        """Boolean mask: still running at ``max_steps`` (``status == STATUS_CENSORED``)."""
        return self.status == STATUS_CENSORED

    @property
    def nonfinite(self) -> np.ndarray:
        """Boolean mask: stopped by a non-finite value (``status == STATUS_NONFINITE``)."""
        return self.status == STATUS_NONFINITE

    @property
    def finite(self) -> np.ndarray:
        """Boolean mask: escaped or censored, i.e. usable in escape statistics (``~nonfinite``)."""
        return self.status != STATUS_NONFINITE

    def fit(self, *, confidence=0.95, interval="gamma"):
        """Censoring-aware exponential MLE of the mean escape time over the finite trajectories.

        Trajectories stopped by a non-finite value are dropped (they neither escaped nor
        ran to the budget); censored ones are kept (their time enters the total time).

        Parameters
        ----------
        confidence : float in (0, 1)
            Level of the fit's intervals (see :func:`phasetools.stats.exponential_mle`).
        interval : {"gamma", "poisson"}
            Construction of the two-sided interval.

        Returns
        -------
        phasetools.stats.ExponentialFit
            ``tau`` in the convention's time units (``time_unit`` is the convention's name).
        """
        from ..stats import exponential_mle

        ok = self.finite
        return exponential_mle(self.times[ok], self.censored[ok], confidence=confidence, interval=interval,
                               time_unit=self.convention)

    def merge(self, other: "EscapeEnsemble") -> "EscapeEnsemble":
        """Pool two runs of the same configuration (different seeds) into one ensemble.

        Parameters
        ----------
        other : EscapeEnsemble
            A run of the same configuration with other seeds.

        Returns
        -------
        EscapeEnsemble
            The trajectories of ``self`` then ``other``; ``seeds`` concatenated, ``stats`` summed.
        """
        if not isinstance(other, EscapeEnsemble):
            raise TypeError("can only merge with another EscapeEnsemble")
        from ..results import deep_equal

        if not deep_equal(self.config, other.config):
            diff = [k for k in self.config if not deep_equal(self.config[k], other.config[k])]
            raise ValueError(f"cannot merge ensembles with different configurations (differ in {diff})")
        overlap = set(self.seeds) & set(other.seeds)
        if overlap:
            raise ValueError("cannot merge runs that share seeds (the trajectories would repeat)")
        paths = None if self.paths is None or other.paths is None else np.concatenate([self.paths, other.paths])
        stats = {"wall_time": self.stats.get("wall_time", 0.0) + other.stats.get("wall_time", 0.0),
                 "compile_time": self.stats.get("compile_time", 0.0) + other.stats.get("compile_time", 0.0),
                 "setup_time": self.stats.get("setup_time", 0.0) + other.stats.get("setup_time", 0.0),
                 "steps_total": self.stats.get("steps_total", 0) + other.stats.get("steps_total", 0),
                 "n_nonfinite": self.stats.get("n_nonfinite", 0) + other.stats.get("n_nonfinite", 0)}
        return dataclasses.replace(
            self,
            x0=np.concatenate([self.x0, other.x0]), times=np.concatenate([self.times, other.times]),
            steps=np.concatenate([self.steps, other.steps]), status=np.concatenate([self.status, other.status]),
            final=np.concatenate([self.final, other.final]),
            run=np.concatenate([self.run, other.run + len(self.seeds)]),
            index=np.concatenate([self.index, other.index]), paths=paths,
            seeds=tuple(self.seeds) + tuple(other.seeds), stats=stats)

    def __repr__(self):
        noise = f"temperature={self.temperature:g}" if self.temperature is not None else "noise='sgd'"
        return (f"EscapeEnsemble(potential={self.potential!r}, {noise}, dt={self.dt:g}, "
                f"scheme={self.scheme!r}, n_traj={self.n_traj}, escaped={int(self.escaped.sum())}, "
                f"censored={int(self.censored.sum())}, nonfinite={int(self.nonfinite.sum())})")


def _largest_stable_dt(potential, x0):
    """``2 / lambda_max`` of the Hessian over the (first 64 distinct) starting points."""
    hess = numpy_functions(potential).hessian
    lam = -np.inf
    for row in np.unique(x0, axis=0)[:64]:
        H = np.array(hess(row), dtype=float).reshape(potential.dim, potential.dim)
        lam = max(lam, float(np.max(np.linalg.eigvalsh(H))))
    return (2.0 / lam if lam > 0 else np.inf), lam


def simulate(potential: Potential, x0, *, temperature=None, noise=None, dt, n_traj, max_steps, stop=None,
             scheme="euler", save_every=None, rng=None, n_threads=None) -> EscapeEnsemble:
    """Simulate ``n_traj`` independent trajectories of ``dx = -grad U dt + sqrt(2 T) dW``.

    Parameters
    ----------
    potential : Potential
        From :func:`double_well`, :func:`reduced`, :func:`chain`, :func:`network` or
        :func:`from_sympy`. Energies, ``temperature``, ``dt`` and times are in its
        convention's units.
    x0 : array (dim,) or (n_traj, dim)
        Starting point(s).
    temperature : float > 0
        Additive isotropic noise ``sqrt(2 T) dW``. Give either this or ``noise``.
    noise : SGDNoise
        SGD-like multiplicative noise (potentials with an end-to-end map: ``chain``,
        ``network``); then ``dt`` is in Langevin time ``lr * steps``.
    dt : float > 0
        Time step; refused if the explicit scheme is unstable at ``x0``
        (``dt >= 2 / lambda_max`` of the Hessian there).
    n_traj, max_steps : int >= 1
        Trajectories, and the step budget after which a trajectory is right-censored.
    stop : Threshold, optional
        First-passage condition on the order parameter, tested after every step.
        Without it every trajectory runs ``max_steps`` (all censored).
    scheme : "euler" | "bridge" | EulerMaruyama | BrownianBridge
    save_every : int, optional
        Keep the state every ``save_every`` steps in ``paths`` (NaN after a stop).
    rng : None, int, SeedSequence or Generator
        Root of the random streams. Trajectory ``i`` uses its own xoshiro256** stream
        keyed by (entropy, i): results are bit-identical for any thread count and can be
        replayed one trajectory at a time with :func:`replay`.
    n_threads : int, optional
        numba threads for this call (default: numba's current setting).

    Returns
    -------
    EscapeEnsemble
        Escape (or censoring) time, steps, status and final state of every trajectory, the
        configuration, ``seeds`` (the entropy) and ``stats`` (timings).
    """
    return _simulate(potential, x0, temperature=temperature, noise=noise, dt=dt, n_traj=n_traj,
                     max_steps=max_steps, stop=stop, scheme=scheme, save_every=save_every, entropy=entropy_of(rng),
                     indices=None, n_threads=n_threads)


def replay(potential: Potential, ensemble: EscapeEnsemble, trajectory: int, *, save_every=None) -> EscapeEnsemble:
    """Re-run trajectory ``trajectory`` of ``ensemble`` alone (bit-identical), e.g. to save its path.

    Parameters
    ----------
    potential : Potential
        The potential the ensemble was simulated with.
    ensemble : EscapeEnsemble
        The run that holds the trajectory.
    trajectory : int
        Its position in ``ensemble`` (``0 <= trajectory < n_traj``).
    save_every : int, optional
        Keep the state every ``save_every`` steps in ``paths``.

    Returns
    -------
    EscapeEnsemble
        One trajectory with the same time, status and final state as in ``ensemble``.
    """
    i = int(trajectory)
    if not 0 <= i < ensemble.n_traj:
        raise ValueError(f"trajectory must be in [0, {ensemble.n_traj}), got {trajectory}")
    stop = None
    if ensemble.stop_level is not None:
        stop = Threshold(ensemble.stop_level, ensemble.stop_direction, _stored_order(potential, ensemble.stop_order))
    noise = None
    if ensemble.noise is not None:
        cfg = dict(ensemble.noise)
        noise = SGDNoise(cfg["lr"], cfg["batch_size"], cfg["input_cov"], cfg["cross_cov"], cfg["output_cov"],
                         cfg["n_samples"], moments=cfg.get("moments", "gaussian"), fourth=cfg.get("fourth"))
    return _simulate(potential, ensemble.x0[i], temperature=ensemble.temperature, noise=noise, dt=ensemble.dt,
                     n_traj=1,
                     max_steps=ensemble.max_steps, stop=stop, scheme=ensemble.scheme, save_every=save_every,
                     entropy=ensemble.seeds[int(ensemble.run[i])], indices=np.array([ensemble.index[i]]),
                     n_threads=None)


def _stored_order(potential: Potential, text):
    """The order parameter stored as ``text`` in a result, rebuilt without evaluating it.

    Parameters
    ----------
    potential : Potential
        The potential the result was simulated with; the text may only name its variables
        and parameters.
    text : str
        ``stop_order`` of an :class:`EscapeEnsemble`: sympy ``srepr`` text (files written
        since this version) or the ``str`` of the expression (older files).

    Returns
    -------
    sympy.Expr

    Raises
    ------
    ValueError
        When the text is anything but arithmetic over the potential's symbols and the
        allowed functions (a crafted file cannot run code here).
    """
    return parse_expression(text, (*potential.variables, *potential.params), what="stop_order")


def _check_count(value, name):
    if (isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer))
            or not 1 <= value <= 2**63 - 1):
        raise ValueError(f"{name} must be an integer >= 1 and <= 2**63 - 1, got {value!r}")
    return int(value)


def _first_call_time(dispatcher, *args) -> float:
    """Seconds spent compiling (or loading from numba's disk cache) ``dispatcher`` on a
    throw-away call with ``args``; 0 when it is already loaded in this process.

    The first jitted call of a process also pays numba's own start-up (about 0.3 s: the
    LLVM target and the cache index); this puts all of it in ``compile_time``, none in
    ``wall_time``. ``args`` must have the types of the real call.
    """
    if dispatcher.signatures:
        return 0.0
    t0 = time.perf_counter()
    dispatcher(*args)
    return time.perf_counter() - t0


def _simulate(potential, x0, *, temperature, noise, dt, n_traj, max_steps, stop, scheme, save_every, entropy,
              indices, n_threads):
    t_start = time.perf_counter()
    if not isinstance(potential, Potential):
        raise ValueError(f"potential must be a phasetools.langevin Potential, got {type(potential).__name__}")
    if (temperature is None) == (noise is None):
        raise ValueError("give exactly one of temperature (additive noise) and noise (SGDNoise)")
    if noise is not None:
        if not isinstance(noise, SGDNoise):
            raise ValueError(f"noise must be an SGDNoise, got {type(noise).__name__}")
        if potential.end_to_end is None:
            raise ValueError(f"potential {potential.name!r} has no end-to-end map: SGD-like noise needs a chain or "
                             "network potential")
        if noise.cross_cov.shape != potential.end_to_end.shape:
            raise ValueError(f"noise.cross_cov has shape {noise.cross_cov.shape} but the network's end-to-end map "
                             f"is {potential.end_to_end.shape}")
        T = None
    else:
        T = float(check_positive(temperature, "temperature"))
    dt = float(check_positive(dt, "dt"))
    n_traj = _check_count(n_traj, "n_traj")
    max_steps = _check_count(max_steps, "max_steps")
    if isinstance(scheme, str):
        scheme = _SCHEMES.get(scheme) or check_choice(scheme, "scheme", tuple(_SCHEMES))
    if not isinstance(scheme, (EulerMaruyama, BrownianBridge)):
        raise ValueError(f"scheme must be 'euler', 'bridge' or a scheme object, got {scheme!r}")
    if stop is not None and not isinstance(stop, Threshold):
        raise ValueError(f"stop must be a Threshold or None, got {type(stop).__name__}")
    data = noise is not None and noise.tensor   # the data's fourth-moment tensor: the structured kernel's own variant
    structured = structured_kernel(potential, stop, sgd=noise is not None, bridge=scheme.bridge, data=data)  # networks
    if data and not structured:
        noise.kernel_moments()   # a generated kernel: only a scalar mode's data moments (else a ValueError)
    if stop is not None and stop.order is not None:
        potential = dataclasses.replace(potential, order=stop.order)
    x0 = as_float_array(x0, "x0")
    d = potential.dim
    check_memory(n_traj * (16 * d + 64), f"n_traj = {n_traj} trajectories of dimension {d}")
    if x0.shape == (d,):
        x0 = np.broadcast_to(x0, (n_traj, d)).copy()
    elif x0.shape != (n_traj, d):
        raise ValueError(f"x0 must have shape ({d},) or ({n_traj}, {d}) for this potential, got {x0.shape}")
    x0 = np.ascontiguousarray(x0)
    dt_max, lam = (structured.largest_stable_dt(x0) if structured else
                   _largest_stable_dt(potential, np.unique(x0, axis=0)))
    if dt >= dt_max:
        raise ValueError(f"dt = {dt:g} is too large: the explicit scheme is unstable at x0 (largest Hessian "
                         f"eigenvalue {lam:.4g}); the largest stable dt there is {dt_max:.4g}; use dt well below it")
    if save_every is not None:
        save_every = _check_count(save_every, "save_every")
        n_save = max_steps // save_every
        if n_traj * n_save * d > _MAX_PATH_VALUES:
            raise ValueError(f"save_every = {save_every} would store {n_traj * n_save * d} values; "
                             f"raise save_every or lower n_traj")
    else:
        n_save = 0
    idx = np.arange(n_traj, dtype=np.int64) if indices is None else np.asarray(indices, dtype=np.int64)
    keys = trajectory_keys(entropy, idx)
    compile_notice([seed_states])
    compile_time = _first_call_time(seed_states, keys[:1].copy())
    states = seed_states(keys)
    module = structured or kernel_module(potential, sgd=noise is not None)
    compile_notice([structured.worker if structured else module.run])
    p = potential.param_values
    out_steps = np.empty(n_traj, dtype=np.int64)
    out_status = np.empty(n_traj, dtype=np.int8)
    out_x = np.empty((n_traj, d))
    paths = np.full((n_traj, n_save, d), np.nan)
    has_stop = stop is not None
    level = stop.level if has_stop else 0.0
    direction = (1.0 if stop.direction == "up" else -1.0) if has_stop else 1.0
    if noise is None:
        sigma, mode, scale = float(np.sqrt(2.0 * T * dt)), 0, 0.0
        sxx = syx = syy = np.zeros((1, 1))
    else:
        sigma, mode = 0.0, 1
        scale = float(2.0 * potential.kappa * np.sqrt(noise.lr * dt * noise.factor / noise.batch_size))
        if data and structured:   # mode 2: the kernel's data variant reads S, T in place of S_xx, S_yx
            mode = 2
            sxx, syx, syy = (np.ascontiguousarray(a) for a in (*noise.data_moments(), noise.output_cov))
        else:
            sxx, syx, syy = (np.ascontiguousarray(a) for a in noise.kernel_moments())
    head = (p, dt, sigma, mode, scale, sxx, syx, syy)
    tail = (has_stop, level, direction, scheme.bridge, save_every or 0)

    old_threads = numba.get_num_threads()
    if n_threads is not None:
        numba.set_num_threads(_check_count(n_threads, "n_threads"))
    try:
        # compile or load from the on-disk cache, on a throw-away trajectory
        compile_time += _first_call_time(
            module.run, x0[:1].copy(), *head, 1, *tail, states[:1].copy(), ZIG_K, ZIG_W, ZIG_F,
            np.empty(1, np.int64), np.empty(1, np.int8), np.empty((1, d)), np.empty((1, 0, d)))
        setup_time = time.perf_counter() - t_start - compile_time
        t0 = time.perf_counter()
        module.run(x0, *head, max_steps, *tail, states, ZIG_K, ZIG_W, ZIG_F, out_steps, out_status, out_x, paths)
        wall = time.perf_counter() - t0
        threads = numba.get_num_threads()
    finally:
        numba.set_num_threads(old_threads)
    stats = {"wall_time": wall, "compile_time": compile_time, "setup_time": setup_time,
             "steps_total": int(out_steps.sum()),
             "n_nonfinite": int(np.sum(out_status == STATUS_NONFINITE)), "n_threads": threads}
    return EscapeEnsemble(
        potential=potential.name, potential_config=_jsonable(potential.config()), convention=potential.convention,
        temperature=T, noise=None if noise is None else _jsonable(noise.config()), dt=dt, max_steps=max_steps,
        scheme=scheme.name,
        stop_order=order_text(potential.order) if has_stop else None, stop_level=stop.level if has_stop else None,
        stop_direction=stop.direction if has_stop else None, x0=x0, times=out_steps * dt, steps=out_steps,
        status=out_status, final=out_x, run=np.zeros(n_traj, dtype=np.int64), index=idx,
        paths=paths if save_every else None, save_every=save_every, seeds=(int(entropy),), stats=stats)


def _jsonable(d):
    from ..results import to_jsonable

    return to_jsonable(d)
