"""Network specifications, the exact Fourier solution of modular addition, and the Fourier IPR.

An :class:`MLP` is a bias-free multilayer perceptron ``dims[0] -> ... -> dims[-1]`` with one
activation on every hidden layer and a loss. Its weights are a flat vector: layer ``k``
(``dims[k+1] x dims[k]``, out x in) at ``offsets[k]``, row-major.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._rng import generator
from .._validation import check_choice, check_int, check_scalar

__all__ = ["MLP", "quadratic_mlp", "relu_mlp", "image_mlp", "fourier_solution", "fourier_ipr", "split_weights"]

ACTIVATIONS = ("quadratic", "relu")
LOSSES = ("mse", "cross_entropy")


@dataclass(frozen=True)
class MLP:
    """A bias-free MLP: sizes, hidden activation, loss and initial standard deviations.

    Parameters
    ----------
    dims : tuple of int
        Layer sizes ``(n_inputs, hidden..., n_classes)``; at least one hidden layer.
    activation : {"quadratic", "relu"}
        Applied to every hidden layer.
    loss : {"mse", "cross_entropy"}
        MSE against one-hot targets (mean over samples and classes) or cross-entropy.
    init_std : tuple of float
        Standard deviation of each layer's initial Gaussian weights (before ``init_scale``).
    """

    dims: tuple
    activation: str
    loss: str
    init_std: tuple

    def __post_init__(self):
        dims = tuple(check_int(d, "dims", 1) for d in self.dims)
        if len(dims) < 3:
            raise ValueError(f"dims must have at least 3 entries (one hidden layer), got {self.dims!r}")
        check_choice(self.activation, "activation", ACTIVATIONS)
        check_choice(self.loss, "loss", LOSSES)
        if len(self.init_std) != len(dims) - 1:
            raise ValueError(f"init_std must have one entry per layer ({len(dims) - 1}), got {self.init_std!r}")
        object.__setattr__(self, "dims", dims)
        object.__setattr__(self, "init_std", tuple(check_scalar(s, "init_std") for s in self.init_std))

    @property
    def n_layers(self) -> int:
        """Number of weight matrices."""
        return len(self.dims) - 1

    @property
    def offsets(self) -> np.ndarray:
        """Start of each layer in the flat weights, plus the total (``n_layers + 1`` entries)."""
        sizes = [self.dims[k] * self.dims[k + 1] for k in range(self.n_layers)]
        return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)

    @property
    def n_params(self) -> int:
        """Number of weights."""
        return int(self.offsets[-1])


def quadratic_mlp(p: int, width: int) -> MLP:
    """Gromov's network for modular addition: ``2p -> width -> p``, ``z^2``, MSE, no biases.

    Parameters
    ----------
    p : int >= 2
        The modulus (inputs ``2p``, outputs ``p``).
    width : int >= 1
        Hidden neurons ``M``.

    Returns
    -------
    MLP
        Initial standard deviation ``0.5 / (2 width)^(1/3)`` in both layers (the reference
        code d-doshi/Grokking).
    """
    p = check_int(p, "p", 2)
    width = check_int(width, "width", 1)
    std = 0.5 / (2 * width) ** (1 / 3)
    return MLP((2 * p, width, p), "quadratic", "mse", (std, std))


def relu_mlp(p: int, width: int) -> MLP:
    """Two-layer ReLU MLP for modular addition with cross-entropy: ``2p -> width -> p``.

    Parameters
    ----------
    p : int >= 2
        The modulus.
    width : int >= 1
        Hidden neurons.

    Returns
    -------
    MLP
        Initial standard deviations ``1/sqrt(2)`` (a hidden pre-activation then has unit
        variance: two active inputs) and ``1/sqrt(width)``.
    """
    p = check_int(p, "p", 2)
    width = check_int(width, "width", 1)
    return MLP((2 * p, width, p), "relu", "cross_entropy", (2 ** -0.5, width ** -0.5))


def image_mlp(n_inputs: int, width: int, n_classes: int, *, n_hidden: int = 2, loss: str = "mse") -> MLP:
    """Omnigrok's image network: ``n_inputs -> width (x n_hidden) -> n_classes``, ReLU.

    Parameters
    ----------
    n_inputs, width, n_classes : int >= 1
        Sizes.
    n_hidden : int >= 1
        Hidden layers (2: a 3-layer MLP).
    loss : {"mse", "cross_entropy"}
        Omnigrok uses MSE.

    Returns
    -------
    MLP
        He-style initial standard deviations ``sqrt(2 / fan_in)`` (scale them with ``init_scale``).
    """
    dims = (check_int(n_inputs, "n_inputs", 1), *[check_int(width, "width", 1)] * check_int(n_hidden, "n_hidden", 1),
            check_int(n_classes, "n_classes", 2))
    return MLP(dims, "relu", loss, tuple((2.0 / dims[k]) ** 0.5 for k in range(len(dims) - 1)))


def split_weights(model: MLP, weights) -> list:
    """The layers of flat weights as matrices (views).

    Parameters
    ----------
    model : MLP
        The network.
    weights : array (..., n_params)
        Flat weights (one run, or runs along leading axes).

    Returns
    -------
    list of ndarray
        Layer ``k`` with shape ``(..., dims[k+1], dims[k])``.
    """
    w = np.asarray(weights)
    if w.shape[-1] != model.n_params:
        raise ValueError(f"weights must have {model.n_params} entries in the last axis, got {w.shape}")
    o = model.offsets
    return [w[..., o[k]:o[k + 1]].reshape(*w.shape[:-1], model.dims[k + 1], model.dims[k])
            for k in range(model.n_layers)]


def fourier_solution(p: int, width: int, *, rng=0) -> np.ndarray:
    """Gromov's exact weights for ``(a + b) mod p`` in :func:`quadratic_mlp` ``(p, width)``.

    Neuron ``k`` has frequency ``sigma_k`` (cycling through ``1 .. (p-1)/2``) and random
    phases ``phi1, phi2`` with ``phi3 = phi1 + phi2``: ``U_kn = cos(2 pi sigma_k n / p + phi1)``,
    ``V_km = cos(2 pi sigma_k m / p + phi2)``, ``W_qk = cos(2 pi sigma_k q / p + phi3)``, so
    ``logit_q = sum_k W_qk (U_ka + V_kb)^2`` averages ``width / 2`` over the phases at the
    correct class ``q = a + b mod p`` and is smaller elsewhere.

    Parameters
    ----------
    p : int
        An odd modulus >= 3.
    width : int >= 1
        Hidden neurons.
    rng : None, int, SeedSequence or Generator
        Source of the phases.

    Returns
    -------
    ndarray (n_params,)
        Flat weights (``[U | V]`` as the first layer, then ``W``).
    """
    p = check_int(p, "p", 3)
    if p % 2 == 0:
        raise ValueError(f"p must be odd (>= 3), got {p}")
    width = check_int(width, "width", 1)
    g = generator(rng)
    sigma = 1 + np.arange(width) % ((p - 1) // 2)
    phi1, phi2 = g.uniform(0, 2 * np.pi, (2, width))
    theta = 2 * np.pi * np.outer(sigma, np.arange(p)) / p
    U = np.cos(theta + phi1[:, None])
    V = np.cos(theta + phi2[:, None])
    W = np.cos(theta + (phi1 + phi2)[:, None]).T
    return np.concatenate([np.hstack([U, V]).ravel(), W.ravel()])


def fourier_ipr(model: MLP, weights, *, r: int = 2) -> np.ndarray:
    """Mean inverse participation ratio of the first layer's Fourier spectra (modular addition).

    For every neuron ``k`` and each half ``U`` (columns ``0..p-1``), ``V`` (``p..2p-1``) of
    the first layer, ``F = |rfft(row)|`` and ``IPR = sum F^(2r) / (sum F^2)^r``; the result
    averages over neurons and both halves. One frequency gives 1; a flat spectrum over
    ``(p+1)/2`` bins about ``2 / (p + 1)``.

    Parameters
    ----------
    model : MLP
        A network whose first layer has ``2p`` inputs.
    weights : array (..., n_params)
        Flat weights.
    r : int >= 2
        The power (Gromov uses 2).

    Returns
    -------
    ndarray (...,)
        The mean IPR of each run (NaN for a neuron with zero weights is skipped).
    """
    r = check_int(r, "r", 2)
    W0 = split_weights(model, np.asarray(weights, dtype=np.float64))[0]
    if W0.shape[-1] % 2:
        raise ValueError("fourier_ipr needs a first layer with 2p inputs (modular addition)")
    p = W0.shape[-1] // 2
    halves = np.concatenate([W0[..., :p], W0[..., p:]], axis=-2)
    F2 = np.abs(np.fft.rfft(halves, axis=-1)) ** 2
    den = F2.sum(-1) ** r
    with np.errstate(invalid="ignore", divide="ignore"):
        ipr = (F2 ** r).sum(-1) / den
    return np.nanmean(ipr, axis=-1)
