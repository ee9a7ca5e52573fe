"""Data for the trainer: second moments, finite data sets and the Gaussian teacher.

``Moments``
    ``input_cov = E[x x^T]``, ``cross_cov = E[y x^T]``, ``output_cov = E[y y^T]`` of zero-mean
    data, population (``n_samples is None``) or of a finite set. Everything the linear
    network's loss, gradient and gradient noise depend on. The field names are those of
    :class:`phasetools.langevin.SGDNoise`; ``spectrum`` and ``a`` are what
    :func:`phasetools.theory.modes` takes.
``Dataset``
    Samples in rows, ``X`` (N, d_in) and ``Y`` (N, d_out); unpacks as ``X, Y = ds``.
``GaussianTeacher``
    The jointly Gaussian model of the paper (docs/training.md): ``Sigma_yx`` with singular
    values ``eta``, ``Sigma_xx = I`` and unit output variances by default, sampled through
    the Cholesky factor of the joint covariance.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field

import numpy as np

from .._rng import generator
from .._validation import as_float_array, check_data_matrices, check_int
from ..results import deep_equal, register

__all__ = ["Moments", "Dataset", "GaussianTeacher", "as_data", "as_moments", "TEST_ENTROPY"]

# Root of the default fixed test set: a SeedSequence with a spawn key, so it differs from
# every stream made from a plain integer seed.
TEST_ENTROPY = 0x7E57_5E7
_TEST_SPAWN_KEY = (1,)
_PSD_RTOL = 1e-12


def _matrix(value, name, shape=None):
    arr = as_float_array(value, name)
    if arr.ndim != 2 or (shape is not None and arr.shape != shape):
        want = f"shape {shape}" if shape is not None else "a 2-D array"
        raise ValueError(f"{name} must be {want}, got shape {arr.shape}")
    return np.ascontiguousarray(arr)


def _psd_deficit(mat) -> float:
    """How far a symmetric matrix is below PSD: -min eigenvalue relative to its scale (<= 0 if PSD)."""
    ev = np.linalg.eigvalsh(0.5 * (mat + mat.T))
    scale = max(1.0, float(np.max(np.abs(ev)))) if ev.size else 1.0
    return float(-ev[0] / scale) if ev.size else 0.0


@register
@dataclass(frozen=True, eq=False)
class Moments:
    """Second moments of zero-mean data (population or of ``n_samples`` samples).

    The joint covariance ``[[input_cov, cross_cov^T], [cross_cov, output_cov]]`` must be
    positive semi-definite (a ``ValueError`` names the offending parameter otherwise).

    Parameters
    ----------
    input_cov : (d_in, d_in) array
        ``E[x x^T]`` (symmetric, positive semi-definite).
    cross_cov : (d_out, d_in) array
        ``E[y x^T]``.
    output_cov : (d_out, d_out) array
        ``E[y y^T]`` (symmetric, positive semi-definite).
    n_samples : int >= 1, optional
        The number of samples the moments were taken over (None: population).
    """

    input_cov: np.ndarray
    cross_cov: np.ndarray
    output_cov: np.ndarray
    n_samples: int | None = None

    def __post_init__(self):
        sxx = _matrix(self.input_cov, "input_cov")
        d = sxx.shape[0]
        if sxx.shape != (d, d):
            raise ValueError(f"input_cov must be square, got shape {sxx.shape}")
        syx = _matrix(self.cross_cov, "cross_cov")
        if syx.shape[1] != d:
            raise ValueError(f"cross_cov must have {d} columns (input_cov is {d} x {d}), "
                             f"got shape {syx.shape}")
        p = syx.shape[0]
        syy = _matrix(self.output_cov, "output_cov", (p, p))
        for name, m in (("input_cov", sxx), ("output_cov", syy)):
            if not np.allclose(m, m.T, rtol=1e-12, atol=1e-14):
                raise ValueError(f"{name} must be symmetric")
            if _psd_deficit(m) > _PSD_RTOL:
                raise ValueError(f"{name} must be positive semi-definite (smallest eigenvalue "
                                 f"{np.linalg.eigvalsh(m)[0]:.3g})")
        joint = np.block([[sxx, syx.T], [syx, syy]])
        if _psd_deficit(joint) > _PSD_RTOL:
            low = np.linalg.eigvalsh(joint)[0]
            raise ValueError("output_cov is too small for cross_cov and input_cov: the joint covariance "
                             f"is not positive semi-definite (smallest eigenvalue {low:.3g})")
        if self.n_samples is not None:
            object.__setattr__(self, "n_samples", check_int(self.n_samples, "n_samples", 1))
        object.__setattr__(self, "input_cov", sxx)
        object.__setattr__(self, "cross_cov", syx)
        object.__setattr__(self, "output_cov", syy)

    def __eq__(self, other):
        return type(other) is type(self) and deep_equal(self, other)

    __hash__ = object.__hash__

    def to_dict(self):
        return {"input_cov": self.input_cov, "cross_cov": self.cross_cov, "output_cov": self.output_cov,
                "n_samples": self.n_samples}

    @classmethod
    def from_data(cls, X, Y) -> "Moments":
        """Second moments ``X^T X / N``, ``Y^T X / N``, ``Y^T Y / N`` (no centring, as the loss).

        Parameters
        ----------
        X, Y : arrays (N, d_in), (N, d_out)
            Samples in rows (1-D arrays are one column).

        Returns
        -------
        Moments
        """
        X, Y = _check_xy(X, Y)
        N = X.shape[0]
        sxx, syx, syy = X.T @ X / N, Y.T @ X / N, Y.T @ Y / N
        return cls(0.5 * (sxx + sxx.T), syx, 0.5 * (syy + syy.T), N)

    @property
    def d_in(self) -> int:
        return int(self.input_cov.shape[0])

    @property
    def d_out(self) -> int:
        return int(self.cross_cov.shape[0])

    @property
    def joint_cov(self) -> np.ndarray:
        """Covariance of ``(x, y)`` stacked, (d_in + d_out) square."""
        return np.block([[self.input_cov, self.cross_cov.T], [self.cross_cov, self.output_cov]])

    @property
    def spectrum(self) -> np.ndarray:
        """Singular values of ``cross_cov`` (descending): the feature strengths ``eta`` / ``c``."""
        return np.linalg.svd(self.cross_cov, compute_uv=False)

    @property
    def a(self) -> np.ndarray:
        """Input variances ``v_k^T input_cov v_k`` along the right singular vectors of ``cross_cov``."""
        _, s, vt = np.linalg.svd(self.cross_cov, full_matrices=False)
        return np.einsum("kd,de,ke->k", vt, self.input_cov, vt)

    def mse(self, M) -> float:
        """``E||y - M x||^2 / d_out`` (the element-wise mean squared error) of an end-to-end map ``M``.

        Parameters
        ----------
        M : (d_out, d_in) array
            The end-to-end map.

        Returns
        -------
        float
        """
        M = np.asarray(M, dtype=np.float64)
        return float((np.trace(self.output_cov) - 2.0 * np.sum(M * self.cross_cov)
                      + np.sum((M @ self.input_cov) * M)) / self.d_out)

    def modes(self, n_layers, gamma=None, *, convention="canonical"):
        """:func:`phasetools.theory.modes` of these moments (per-mode ``c`` and ``a``).

        Parameters
        ----------
        n_layers : int
            Weight matrices of the network.
        gamma : float or array, optional
            The coupling(s) at which the states are taken.
        convention : "canonical" (default), "paper" or Convention
            The units of ``gamma``.

        Returns
        -------
        phasetools.theory.Modes
        """
        from ..theory import modes

        return modes(n_layers, self.spectrum, gamma, self.a, convention=convention)

    def __repr__(self):
        src = "population" if self.n_samples is None else f"n_samples={self.n_samples}"
        return (f"Moments(d_in={self.d_in}, d_out={self.d_out}, {src}, "
                f"spectrum={np.array2string(self.spectrum, precision=4)})")


_check_xy = check_data_matrices


@dataclass(frozen=True, eq=False)
class Dataset:
    """A finite data set, samples in rows; unpacks as ``X, Y = ds``.

    Parameters
    ----------
    X : (N, d_in) array
        Inputs (a 1-D array is one column).
    Y : (N, d_out) array
        Targets, as many rows as ``X``.
    indices : array of int, optional
        Positions in the pool the samples were drawn from (:meth:`GaussianTeacher.subsample`).
    """

    X: np.ndarray
    Y: np.ndarray
    indices: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self):
        X, Y = _check_xy(self.X, self.Y)
        object.__setattr__(self, "X", X)
        object.__setattr__(self, "Y", Y)

    def __iter__(self):
        return iter((self.X, self.Y))

    @property
    def n_samples(self) -> int:
        return int(self.X.shape[0])

    def moments(self) -> Moments:
        return Moments.from_data(self.X, self.Y)

    def __repr__(self):
        return f"Dataset(n_samples={self.n_samples}, d_in={self.X.shape[1]}, d_out={self.Y.shape[1]})"


def as_data(data, name="data"):
    """``Dataset`` or ``Moments`` from a Dataset, Moments, GaussianTeacher (its population) or ``(X, Y)``."""
    if isinstance(data, (Dataset, Moments)):
        return data
    if isinstance(data, GaussianTeacher):
        return data.moments
    if isinstance(data, (tuple, list)) and len(data) == 2:
        try:
            return Dataset(*data)
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
    raise ValueError(f"{name} must be a (X, Y) pair, a Dataset, Moments or a GaussianTeacher, "
                     f"got {type(data).__name__}")


def as_moments(data, name="data") -> Moments:
    """The second moments of ``data``: Moments pass through, samples give their own moments.

    Parameters
    ----------
    data : (X, Y), Dataset, Moments or GaussianTeacher
        A teacher gives its population moments.
    name : str
        The parameter's name, for the message of bad input.

    Returns
    -------
    Moments
    """
    d = as_data(data, name)
    return d if isinstance(d, Moments) else d.moments()


def _generator(rng):
    return generator(rng)


def _haar_orthogonal(n, gen):
    """A Haar-random orthogonal matrix (QR of a Gaussian matrix with the sign fix)."""
    q, r = np.linalg.qr(gen.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


class GaussianTeacher:
    """Zero-mean jointly Gaussian ``(x, y)`` with ``Sigma_yx = U diag(eta) V^T``.

    Parameters
    ----------
    eta : sequence of float >= 0, descending
        Singular values of ``Sigma_yx`` (the feature strengths; ``k = len(eta)`` modes).
    d_in, d_out : int, optional
        Input and output dimensions (default ``len(eta)``; at least ``len(eta)``).
    input_cov : (d_in, d_in) array, optional
        ``Sigma_xx`` (default identity).
    output_cov : (d_out, d_out) array, optional
        ``Sigma_yy``. Default: the identity, the paper's unit output variances; with
        ``Sigma_xx = I`` and identity singular vectors this is the teacher
        ``y = diag(eta) x + noise`` with label-noise variances ``1 - eta^2``.
    rotation : None, int, SeedSequence or Generator
        None: singular vectors are the coordinate axes (``U``, ``V`` the leading columns of
        the identity). Otherwise Haar-random orthogonal ``U`` (d_out) and ``V`` (d_in)
        drawn from this seed.

    Raises
    ------
    ValueError
        A joint covariance that is not positive semi-definite is refused with a message
        naming ``output_cov`` (or ``eta`` when ``output_cov`` is the default).
    """

    def __init__(self, eta, d_in=None, d_out=None, input_cov=None, output_cov=None, rotation=None):
        eta = np.atleast_1d(as_float_array(eta, "eta"))
        if eta.ndim != 1 or eta.size == 0:
            raise ValueError(f"eta must be a non-empty 1-D sequence, got shape {eta.shape}")
        if np.any(eta < 0):
            raise ValueError(f"eta must be >= 0 (singular values), got {eta.tolist()}")
        if np.any(np.diff(eta) > 0):
            raise ValueError(f"eta must be sorted descending (mode 1 strongest), got {eta.tolist()}")
        k = eta.size
        d_in = k if d_in is None else check_int(d_in, "d_in", 1)
        d_out = k if d_out is None else check_int(d_out, "d_out", 1)
        if d_in < k:
            raise ValueError(f"d_in must be >= len(eta) = {k}, got {d_in}")
        if d_out < k:
            raise ValueError(f"d_out must be >= len(eta) = {k}, got {d_out}")
        if rotation is None:
            U, V = np.eye(d_out)[:, :k], np.eye(d_in)[:, :k]
        else:
            gen = _generator(rotation)
            U = _haar_orthogonal(d_out, gen)[:, :k]
            V = _haar_orthogonal(d_in, gen)[:, :k]
        sxx = np.eye(d_in) if input_cov is None else _matrix(input_cov, "input_cov", (d_in, d_in))
        syy = np.eye(d_out) if output_cov is None else _matrix(output_cov, "output_cov", (d_out, d_out))
        syx = (U * eta) @ V.T
        try:
            moments = Moments(sxx, syx, syy)
        except ValueError as exc:
            if output_cov is None and str(exc).startswith("output_cov is too small"):
                raise ValueError(f"eta is too large for unit output variances (give output_cov): "
                                 f"{exc}") from None
            raise
        self.eta = eta
        self.d_in, self.d_out = d_in, d_out
        self.U, self.V = U, V
        self.rotation = rotation if rotation is None or isinstance(rotation, numbers.Integral) else "custom"
        self._moments = moments
        self._factor = _joint_factor(moments.joint_cov)

    # -- moments --------------------------------------------------------------------
    @property
    def moments(self) -> Moments:
        """Exact population moments (usable by ``theory.modes`` via ``.spectrum``, ``.a``)."""
        return self._moments

    @property
    def input_cov(self):
        return self._moments.input_cov

    @property
    def cross_cov(self):
        return self._moments.cross_cov

    @property
    def output_cov(self):
        return self._moments.output_cov

    @property
    def teacher_map(self) -> np.ndarray:
        """The regression map ``W* = Sigma_yx Sigma_xx^+`` (E[y | x] = W* x)."""
        return self.cross_cov @ np.linalg.pinv(self.input_cov)

    @property
    def noise_cov(self) -> np.ndarray:
        """Label-noise covariance ``Sigma_yy - Sigma_yx Sigma_xx^+ Sigma_xy``."""
        return self.output_cov - self.teacher_map @ self.cross_cov.T

    @property
    def bayes_mse(self) -> float:
        """Irreducible element-wise mean squared error ``tr(noise_cov) / d_out``."""
        return float(np.trace(self.noise_cov) / self.d_out)

    @property
    def cholesky(self) -> np.ndarray:
        """Lower factor ``L`` with ``L L^T`` = joint covariance (rows: x then y)."""
        return self._factor

    # -- samples --------------------------------------------------------------------
    def sample(self, n, rng=None) -> Dataset:
        """``n`` samples ``(x, y) = L z``, ``z ~ N(0, I)``.

        Parameters
        ----------
        n : int >= 1
            Number of samples.
        rng : None, int, SeedSequence or Generator
            Source of the normals.

        Returns
        -------
        Dataset
            ``X`` (n, d_in), ``Y`` (n, d_out).
        """
        n = check_int(n, "n", 1)
        z = _generator(rng).standard_normal((n, self.d_in + self.d_out))
        joint = z @ self._factor.T
        return Dataset(joint[:, :self.d_in], joint[:, self.d_in:])

    def test_set(self, n=512, rng=None) -> Dataset:
        """A fixed test set: with ``rng=None`` always the same ``n`` samples, drawn from a
        stream (``TEST_ENTROPY`` with a spawn key) that no integer-seeded training draw uses.

        Parameters
        ----------
        n : int >= 1
            Number of samples (default 512).
        rng : None, int, SeedSequence or Generator
            None: the fixed stream.

        Returns
        -------
        Dataset
        """
        if rng is None:
            rng = np.random.SeedSequence(TEST_ENTROPY, spawn_key=_TEST_SPAWN_KEY)
        return self.sample(n, rng)

    def subsample(self, pool_size, n_train, rng=None) -> Dataset:
        """Draw a pool of ``pool_size`` samples, then ``n_train`` of them without replacement
        (paper E5: 25 of 5000).

        Parameters
        ----------
        pool_size : int >= 1
            Samples in the pool.
        n_train : int, 1 <= n_train <= pool_size
            Samples kept.
        rng : None, int, SeedSequence or Generator
            Source of the pool and of the choice.

        Returns
        -------
        Dataset
            ``indices`` are the kept samples' positions in the pool.
        """
        pool_size = check_int(pool_size, "pool_size", 1)
        n_train = check_int(n_train, "n_train", 1)
        if n_train > pool_size:
            raise ValueError(f"n_train must be <= pool_size = {pool_size}, got {n_train}")
        gen = _generator(rng)
        pool = self.sample(pool_size, gen)
        idx = np.sort(gen.choice(pool_size, size=n_train, replace=False))
        return Dataset(pool.X[idx], pool.Y[idx], indices=idx)

    def config(self) -> dict:
        return {"eta": self.eta.tolist(), "d_in": self.d_in, "d_out": self.d_out,
                "input_cov": self.input_cov.tolist(), "output_cov": self.output_cov.tolist(),
                "rotation": self.rotation}

    def __repr__(self):
        return (f"GaussianTeacher(eta={self.eta.tolist()}, d_in={self.d_in}, d_out={self.d_out}, "
                f"rotation={self.rotation!r})")


def _joint_factor(joint):
    """Cholesky factor of the joint covariance; a symmetric square root if it is singular."""
    try:
        return np.linalg.cholesky(joint)
    except np.linalg.LinAlgError:
        w, v = np.linalg.eigh(0.5 * (joint + joint.T))
        return v * np.sqrt(np.clip(w, 0.0, None))
