"""Data sets of the nonlinear part: modular addition, a synthetic image stand-in, scikit-learn's digits.

A :class:`Task` holds a training and a test set, each either as sparse one-hot inputs
(``X_index``: the active input columns of every sample) or as dense rows (``X``), with
integer class labels. Tasks are rebuilt from their ``config`` (name and arguments), so a
stored run records the configuration, not the data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .._rng import generator
from .._validation import check_int, check_scalar

__all__ = ["Task", "modular_addition", "synthetic_images", "digits", "task_from_config", "is_prime"]


@dataclass(frozen=True, eq=False)
class Task:
    """A classification data set with a fixed train/test split.

    Parameters
    ----------
    name : str
        ``"modular_addition"``, ``"synthetic_images"`` or ``"digits"``.
    config : dict
        The arguments that rebuild it (:func:`task_from_config`).
    n_inputs, n_classes : int
        Input dimension and number of classes.
    X_train, X_test : ndarray
        Sparse tasks: int64 (n, nnz) active columns (value 1); dense tasks: float64 (n, n_inputs).
    y_train, y_test : ndarray of int64
        Class labels.
    sparse : bool
        Whether inputs are given as active columns.
    extra : dict
        Task-specific arrays (e.g. the ``(a, b)`` pairs of modular addition).

    Notes
    -----
    The arrays are stored as read-only copies: changing them in place raises
    ``ValueError``; build a new task for new data.
    """

    name: str
    config: dict
    n_inputs: int
    n_classes: int
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    sparse: bool
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        # A task is data: its arrays are read-only copies, so they cannot change under a
        # cache keyed on the task (the trainer's remembered final metrics) or a caller's feet.
        for name in _ARRAYS:
            object.__setattr__(self, name, _frozen(getattr(self, name)))
        object.__setattr__(self, "extra", {k: _frozen(v) if isinstance(v, np.ndarray) else v
                                           for k, v in self.extra.items()})

    @property
    def n_train(self) -> int:
        """Number of training samples."""
        return int(self.y_train.shape[0])

    @property
    def n_test(self) -> int:
        """Number of test samples."""
        return int(self.y_test.shape[0])


_ARRAYS = ("X_train", "y_train", "X_test", "y_test")


def _frozen(a) -> np.ndarray:
    """A read-only copy of ``a`` (the caller's array stays as it was)."""
    out = np.array(a, copy=True)
    out.setflags(write=False)
    return out


def is_prime(n: int) -> bool:
    """Whether ``n`` is a prime number.

    Parameters
    ----------
    n : int
        The number to test.

    Returns
    -------
    bool
    """
    if n < 2:
        return False
    return all(n % k for k in range(2, int(n ** 0.5) + 1))


def modular_addition(p: int = 97, train_fraction: float = 0.5, *, data_seed: int = 0) -> Task:
    """``(a + b) mod p`` on one-hot inputs: a random ``train_fraction`` of the ``p^2`` pairs trains.

    Parameters
    ----------
    p : int
        The modulus, a prime >= 3.
    train_fraction : float in (0, 1)
        Fraction of all pairs in the training set (at least one pair each side).
    data_seed : int >= 0
        Seed of the split (``numpy.random.default_rng(data_seed).permutation``).

    Returns
    -------
    Task
        Inputs are the columns ``a`` and ``p + b`` of a ``2p``-dimensional one-hot pair;
        ``extra["pairs_train"]``, ``extra["pairs_test"]`` hold ``(a, b)``.
    """
    p = check_int(p, "p", 3)
    if not is_prime(p):
        raise ValueError(f"p must be a prime >= 3, got {p}")
    frac = check_scalar(train_fraction, "train_fraction", positive=True)
    if not 0 < frac < 1:
        raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction!r}")
    seed = check_int(data_seed, "data_seed", 0)
    a, b = np.divmod(np.arange(p * p, dtype=np.int64), p)
    order = np.random.default_rng(seed).permutation(p * p)
    n_train = min(max(int(round(frac * p * p)), 1), p * p - 1)
    tr, te = order[:n_train], order[n_train:]
    X = np.stack([a, p + b], axis=1)
    y = (a + b) % p
    return Task("modular_addition", {"p": p, "train_fraction": frac, "data_seed": seed}, 2 * p, p,
                X[tr], y[tr], X[te], y[te], True,
                {"pairs_train": np.stack([a[tr], b[tr]], 1), "pairs_test": np.stack([a[te], b[te]], 1)})


def synthetic_images(n_train: int = 200, n_test: int = 200, *, n_inputs: int = 16, n_classes: int = 4,
                     noise: float = 0.5, data_seed: int = 0) -> Task:
    """A tiny stand-in for an image set: Gaussian clusters around random class templates.

    Parameters
    ----------
    n_train, n_test : int >= 1
        Samples in each set.
    n_inputs : int >= 1
        Input dimension.
    n_classes : int >= 2
        Number of classes (templates).
    noise : float >= 0
        Standard deviation of the pixel noise around a template (templates have unit pixels).
    data_seed : int >= 0
        Seed of templates and samples.

    Returns
    -------
    Task
        Dense inputs, balanced classes up to the random draw.
    """
    n_train = check_int(n_train, "n_train", 1)
    n_test = check_int(n_test, "n_test", 1)
    d = check_int(n_inputs, "n_inputs", 1)
    k = check_int(n_classes, "n_classes", 2)
    sd = check_scalar(noise, "noise")
    seed = check_int(data_seed, "data_seed", 0)
    g = generator(seed)
    templates = g.standard_normal((k, d))
    y = g.integers(0, k, n_train + n_test)
    X = templates[y] + sd * g.standard_normal((y.size, d))
    cfg = {"n_train": n_train, "n_test": n_test, "n_inputs": d, "n_classes": k, "noise": sd, "data_seed": seed}
    return Task("synthetic_images", cfg, d, k, X[:n_train], y[:n_train].astype(np.int64), X[n_train:],
                y[n_train:].astype(np.int64), False)


def digits(n_train: int = 1000, *, data_seed: int = 0) -> Task:
    """scikit-learn's bundled 8x8 digits (1797 images, no download), pixels scaled to [0, 1].

    Parameters
    ----------
    n_train : int in [1, 1796]
        Training images (a random subset); the rest is the test set.
    data_seed : int >= 0
        Seed of the split.

    Returns
    -------
    Task
        Dense 64-pixel inputs, 10 classes. Needs scikit-learn (the optional extra
        ``pip install "phasetools[nonlinear]"``); ``ImportError`` says so when it is missing.
    """
    n_train = check_int(n_train, "n_train", 1)
    if n_train > 1796:
        raise ValueError(f"n_train must be an integer in [1, 1796], got {n_train}")
    seed = check_int(data_seed, "data_seed", 0)
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise ImportError("the digits task needs scikit-learn: pip install \"phasetools[nonlinear]\" (or pip install "
                          "scikit-learn)") from exc
    data = load_digits()
    X = np.asarray(data.data, dtype=np.float64) / 16.0
    y = np.asarray(data.target, dtype=np.int64)
    order = np.random.default_rng(seed).permutation(y.size)
    tr, te = order[:n_train], order[n_train:]
    return Task("digits", {"n_train": n_train, "data_seed": seed}, 64, 10, X[tr], y[tr], X[te], y[te], False)


_BUILDERS = {"modular_addition": modular_addition, "synthetic_images": synthetic_images, "digits": digits}


def task_from_config(name: str, config: dict) -> Task:
    """Rebuild a task from its name and ``config`` (as stored in a run).

    Parameters
    ----------
    name : str
        One of ``"modular_addition"``, ``"synthetic_images"``, ``"digits"``.
    config : dict
        Its keyword arguments.

    Returns
    -------
    Task
    """
    if name not in _BUILDERS:
        raise ValueError(f"task must be one of {', '.join(map(repr, _BUILDERS))}, got {name!r}")
    return _BUILDERS[name](**config)
