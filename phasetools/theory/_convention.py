"""Energy conventions: how an implemented training loss maps onto the canonical one.

Canonical objective (the toolkit default, docs/theory.md)::

    U(theta) = E||y - W_n...W_1 x||^2 + gamma * sum_i ||W_i||_F^2

Any implemented loss of the form ``L = kappa * E||y - Wx||^2 + (wd/2) sum_i ||W_i||^2``
(``wd`` = coupled SGD weight decay) equals ``kappa * U`` with ``gamma = wd / (2 kappa)``
(section 1.4). A :class:`Convention` records ``kappa`` and whether its coupling parameter
is ``gamma`` itself or a weight decay, and converts couplings, energies, temperatures and
times both ways:

====================  ==============================  ===============================
quantity              convention -> canonical          canonical -> convention
====================  ==============================  ===============================
coupling              gamma = coupling * gamma_scale   coupling = gamma / gamma_scale
energy difference     U = E / kappa                    E = kappa * U
temperature           T = T' / kappa                   T' = kappa * T
time                  t = kappa * t'                   t' = t / kappa
====================  ==============================  ===============================

Energies are always reported relative to the trivial state ``theta = 0`` so that the
constant offset between conventions never enters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._validation import check_choice, check_nonnegative
from ..results import register

__all__ = [
    "Convention",
    "CANONICAL",
    "PAPER",
    "resolve_convention",
    "gamma_from_weight_decay",
    "weight_decay_from_gamma",
]

_COUPLINGS = ("gamma", "weight_decay")
_REDUCTIONS = ("mean", "mean_samples", "sum")


@register
@dataclass(frozen=True)
class Convention:
    """An energy convention.

    Attributes
    ----------
    name : str
        ``"canonical"``, ``"paper"`` or a user label.
    kappa : float
        Data-term factor: the implemented loss is ``kappa * U`` up to a constant.
    coupling : {"gamma", "weight_decay"}
        What the coupling parameter of this convention means: the canonical ``gamma``
        (penalty ``kappa * gamma * sum ||W||^2``) or a coupled weight decay ``wd``
        (penalty ``(wd / 2) sum ||W||^2``; the paper's ``beta``).
    n_outputs : int or None
        Output count ``p`` that the convention averages over, where it does.
    """

    name: str
    kappa: float
    coupling: str = "gamma"
    n_outputs: int | None = None

    def __post_init__(self):
        if not (np.isfinite(self.kappa) and self.kappa > 0):
            raise ValueError(f"kappa must be a finite number > 0, got {self.kappa!r}")
        check_choice(self.coupling, "coupling", _COUPLINGS)

    # -- constructors -------------------------------------------------------------
    @classmethod
    def canonical(cls) -> "Convention":
        return cls("canonical", 1.0, "gamma")

    @classmethod
    def paper(cls, n_outputs: int = 2) -> "Convention":
        """MSE averaged over samples and ``n_outputs`` outputs, SGD weight decay ``beta``.

        For ``n_outputs = 2`` (arXiv:2606.17120) ``gamma = beta`` numerically and energy
        differences are half the canonical ones.
        """
        return cls.from_training("mean", n_outputs=n_outputs, name="paper")

    @classmethod
    def from_training(
        cls,
        reduction: str = "mean",
        *,
        n_outputs: int = 1,
        n_samples: int | None = None,
        half: bool = False,
        name: str | None = None,
    ) -> "Convention":
        """Convention of ``L = kappa E||y - Wx||^2 + (wd/2) sum ||W||^2`` trained with SGD.

        reduction
            ``"mean"``: mean over samples and outputs (``torch.nn.MSELoss()``),
            ``kappa = 1/n_outputs``; ``"mean_samples"``: mean over samples, sum over
            outputs, ``kappa = 1``; ``"sum"``: sum over ``n_samples`` samples and outputs,
            ``kappa = n_samples``.
        half
            The data term carries a factor 1/2 (``kappa`` halves).
        """
        check_choice(reduction, "reduction", _REDUCTIONS)
        if isinstance(n_outputs, bool) or int(n_outputs) != n_outputs or n_outputs < 1:
            raise ValueError(f"n_outputs must be an integer >= 1, got {n_outputs!r}")
        if reduction == "mean":
            kappa = 1.0 / n_outputs
        elif reduction == "mean_samples":
            kappa = 1.0
        else:
            if n_samples is None or int(n_samples) != n_samples or n_samples < 1:
                raise ValueError(f"n_samples must be an integer >= 1 for reduction='sum', got {n_samples!r}")
            kappa = float(n_samples)
        if half:
            kappa *= 0.5
        label = name or f"{reduction}{'_half' if half else ''}"
        return cls(label, kappa, "weight_decay", int(n_outputs))

    # -- conversions --------------------------------------------------------------
    @property
    def gamma_scale(self) -> float:
        """Canonical gamma per unit of this convention's coupling parameter."""
        return 1.0 if self.coupling == "gamma" else 1.0 / (2.0 * self.kappa)

    def gamma_to_canonical(self, coupling):
        return np.multiply(coupling, self.gamma_scale)

    def gamma_from_canonical(self, gamma):
        return np.divide(gamma, self.gamma_scale)

    def energy_from_canonical(self, energy):
        return np.multiply(energy, self.kappa)

    def energy_to_canonical(self, energy):
        return np.divide(energy, self.kappa)

    temperature_from_canonical = energy_from_canonical
    temperature_to_canonical = energy_to_canonical

    def time_from_canonical(self, t):
        return np.divide(t, self.kappa)

    def time_to_canonical(self, t):
        return np.multiply(t, self.kappa)

    @property
    def latent_heat_scale(self) -> float:
        """d(energy)/d(coupling) in this convention per unit of dU/dgamma."""
        return self.kappa * self.gamma_scale

    @property
    def coupling_name(self) -> str:
        return "gamma" if self.coupling == "gamma" else "beta"

    def to_dict(self) -> dict:
        return {"name": self.name, "kappa": self.kappa, "coupling": self.coupling, "n_outputs": self.n_outputs}


CANONICAL = Convention.canonical()
PAPER = Convention.paper()


def resolve_convention(convention) -> Convention:
    """The :class:`Convention` named by ``convention``.

    Parameters
    ----------
    convention : {"canonical", "paper"}, Convention or None
        A Convention passes through; ``None`` means canonical.

    Returns
    -------
    Convention
    """
    if isinstance(convention, Convention):
        return convention
    if convention is None or convention == "canonical":
        return CANONICAL
    if convention == "paper":
        return PAPER
    raise ValueError(f"convention must be 'canonical', 'paper' or a Convention, got {convention!r}")


def gamma_from_weight_decay(weight_decay, n_outputs: int = 1, reduction: str = "mean", *,
                            n_samples: int | None = None, half: bool = False):
    """Canonical ``gamma`` of SGD weight decay on a loss with the given reduction.

    Parameters
    ----------
    weight_decay : float or array, >= 0
        The optimiser's coupled weight-decay coefficient (the paper's beta).
    n_outputs : int
        Output dimension ``p``.
    reduction : {"mean", "mean_samples", "sum"}
        How the MSE is reduced: element-wise mean (``torch.nn.MSELoss()``), mean over
        samples and sum over outputs, or sum over ``n_samples`` samples and outputs.
    n_samples : int, optional
        Needed for ``reduction="sum"``.
    half : bool
        The loss carries a factor 1/2.

    Returns
    -------
    float or numpy.ndarray
        ``gamma`` in canonical units.

    Examples
    --------
    >>> gamma_from_weight_decay(0.32, n_outputs=2, reduction="mean")  # the paper's beta
    0.32
    """
    wd = check_nonnegative(weight_decay, "weight_decay")
    conv = Convention.from_training(reduction, n_outputs=n_outputs, n_samples=n_samples, half=half)
    out = conv.gamma_to_canonical(wd)
    return float(out) if np.ndim(out) == 0 else out


def weight_decay_from_gamma(gamma, n_outputs: int = 1, reduction: str = "mean", *,
                            n_samples: int | None = None, half: bool = False):
    """Inverse of :func:`gamma_from_weight_decay`.

    Parameters
    ----------
    gamma : float or array, >= 0
        Canonical coupling.
    n_outputs, reduction, n_samples, half
        As in :func:`gamma_from_weight_decay`.

    Returns
    -------
    float or numpy.ndarray
        The SGD weight-decay coefficient.
    """
    g = check_nonnegative(gamma, "gamma")
    conv = Convention.from_training(reduction, n_outputs=n_outputs, n_samples=n_samples, half=half)
    out = conv.gamma_from_canonical(g)
    return float(out) if np.ndim(out) == 0 else out

