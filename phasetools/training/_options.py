"""Option objects of :func:`phasetools.training.train`: the optimiser, the noise and the logging.

``train(data, n_layers=, width=, epochs=, sgd=SGD(...), noise=Noise(...), logging=Logging(...))``
is the same call as the flat keywords (``lr=, batch_size=, weight_decay=, ...``): the objects
group the options that belong together (diffrax-style), so a protocol can hand one optimiser
to several calls. Each object checks its own values when it is made. ``schedule=Schedule(...)``
changes some of them for a number of epochs (a weight-decay dip or anneal, bursts of noise,
of the learning rate or of small batches) before the run returns to its own.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .._validation import check_choice, check_int, check_scalar

__all__ = ["SGD", "Noise", "Logging", "Phase", "Schedule", "SAMPLINGS", "SCHEDULE_COLUMNS"]

SAMPLINGS = ("shuffle", "replacement", "full")


@dataclass(frozen=True)
class SGD:
    """Minibatch SGD with coupled weight decay (``torch.optim.SGD`` on ``MSELoss``).

    Parameters
    ----------
    lr : float > 0
        Learning rate.
    batch_size : int >= 1, optional
        Samples per step (default: all ``N``, full batch; None for training on moments).
    weight_decay : float >= 0, optional
        The weight decay added to the gradient (torch's ``weight_decay``; the paper's beta).
    gamma : float >= 0, optional
        The canonical coupling instead (``weight_decay = 2 kappa gamma``); give exactly one of
        ``weight_decay`` and ``gamma`` (checked by :func:`train`, which knows ``kappa``).
    sampling : "shuffle" | "replacement" | "full"
        A fresh permutation per epoch sliced into batches (random reshuffling), batches drawn
        with replacement, or full batch (one step per epoch on all ``N`` samples;
        ``batch_size`` must be None or ``N``).
    drop_last : bool
        Drop the remainder ``N mod batch_size`` of each permutation (default True).
    """

    lr: float
    batch_size: int | None = None
    weight_decay: float | None = None
    gamma: float | None = None
    sampling: str = "shuffle"
    drop_last: bool = True

    def __post_init__(self):
        object.__setattr__(self, "lr", check_scalar(self.lr, "lr", positive=True))
        if self.batch_size is not None:
            object.__setattr__(self, "batch_size", check_int(self.batch_size, "batch_size", 1))
        for name in ("weight_decay", "gamma"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, check_scalar(getattr(self, name), name))
        check_choice(self.sampling, "sampling", SAMPLINGS)
        if not isinstance(self.drop_last, (bool, np.bool_)):
            raise ValueError(f"drop_last must be True or False, got {self.drop_last!r}")
        object.__setattr__(self, "drop_last", bool(self.drop_last))


@dataclass(frozen=True)
class Noise:
    """Optional noise on top of the minibatch noise (both off by default).

    Parameters
    ----------
    temperature : float >= 0
        Injected isotropic Gaussian noise (SGLD): ``sqrt(2 lr T) * N(0, 1)`` added to every
        weight after every update, ``T`` in the loss units of the run's convention.
    label_noise : float >= 0
        Standard deviation of fresh Gaussian noise added to every target of every batch.
    """

    temperature: float = 0.0
    label_noise: float = 0.0

    def __post_init__(self):
        for name in ("temperature", "label_noise"):
            object.__setattr__(self, name, check_scalar(getattr(self, name), name))


@dataclass(frozen=True)
class Logging:
    """What a run records besides its final weights.

    Parameters
    ----------
    log_every : int >= 1
        Epochs between log points (epoch 0 and the last epoch are always logged).
    layer_log_every : int >= 1, optional
        Epochs between log points of the per-layer singular values (default ``log_every``).
    record_steps : bool
        Keep every step's batch indices and weights (small runs only).
    test : (X, Y), Dataset, Moments or GaussianTeacher, optional
        Where ``test_mse`` is measured.
    """

    log_every: int = 1
    layer_log_every: int | None = None
    record_steps: bool = False
    test: object = None

    def __post_init__(self):
        object.__setattr__(self, "log_every", check_int(self.log_every, "log_every", 1))
        if self.layer_log_every is not None:
            object.__setattr__(self, "layer_log_every", check_int(self.layer_log_every, "layer_log_every", 1))
        object.__setattr__(self, "record_steps", bool(self.record_steps))


#: The columns of a run's recorded ``schedule`` table (one row per phase).
SCHEDULE_COLUMNS = ("epochs", "lr", "batch_size", "weight_decay", "temperature", "label_noise")


@dataclass(frozen=True)
class Phase:
    """``epochs`` of training with some options changed; None keeps the run's own.

    Parameters
    ----------
    epochs : int >= 1
    lr : float > 0, optional
    batch_size : int >= 1, optional
    weight_decay : float >= 0, optional
        The weight decay added to the gradient (as :class:`SGD`'s).
    temperature : float >= 0, optional
        Injected isotropic noise (as :class:`Noise`'s).
    label_noise : float >= 0, optional
        Standard deviation of the label noise (as :class:`Noise`'s).
    """

    epochs: int
    lr: float | None = None
    batch_size: int | None = None
    weight_decay: float | None = None
    temperature: float | None = None
    label_noise: float | None = None

    def __post_init__(self):
        object.__setattr__(self, "epochs", check_int(self.epochs, "epochs", 1))
        if self.lr is not None:
            object.__setattr__(self, "lr", check_scalar(self.lr, "lr", positive=True))
        if self.batch_size is not None:
            object.__setattr__(self, "batch_size", check_int(self.batch_size, "batch_size", 1))
        for name in ("weight_decay", "temperature", "label_noise"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, check_scalar(getattr(self, name), name))


@dataclass(frozen=True)
class Schedule:
    """Phases run first, in order; the rest of the run's ``epochs`` uses its own options.

    Each phase continues from the weights the previous one ended with. Randomness: the first
    phase uses the run's own streams (so it sees the same batches and noise as a run without
    a schedule), phase ``k >= 1`` the streams of child ``k - 1`` of
    ``SeedSequence(entropy)`` (``entropy`` the run's recorded ``seeds[0]``), and the run
    after the phases the next child. The run records the phases with every option filled in
    (``TrainingRun.schedule``, columns :data:`SCHEDULE_COLUMNS`).

    Parameters
    ----------
    phases : sequence of Phase
        At least one.
    """

    phases: tuple

    def __post_init__(self):
        phases = tuple(self.phases)
        if not phases or not all(isinstance(p, Phase) for p in phases):
            raise ValueError("phases must be a non-empty sequence of Phase")
        object.__setattr__(self, "phases", phases)

    @property
    def epochs(self) -> int:
        """Epochs of all phases together."""
        return int(sum(p.epochs for p in self.phases))

    def __add__(self, other: "Schedule") -> "Schedule":
        if not isinstance(other, Schedule):
            return NotImplemented
        return Schedule(self.phases + other.phases)

    @classmethod
    def dip(cls, weight_decay, epochs) -> "Schedule":
        """A weight-decay dip: ``epochs`` at ``weight_decay``, then the run's own.

        Parameters
        ----------
        weight_decay : float >= 0
        epochs : int >= 1

        Returns
        -------
        Schedule
        """
        return cls((Phase(epochs, weight_decay=weight_decay),))

    @classmethod
    def anneal(cls, start, stop, epochs, n_steps=10) -> "Schedule":
        """A slow anneal of the weight decay from ``start`` towards ``stop`` in ``n_steps`` equal steps.

        Step ``i`` (``0 <= i < n_steps``) runs ``epochs // n_steps`` epochs (the first ones take
        the remainder) at ``start + (stop - start) i / n_steps``; after the last, the run's own
        weight decay (normally ``stop``).

        Parameters
        ----------
        start, stop : float >= 0
            The first weight decay and the one the steps approach.
        epochs : int >= n_steps
            Epochs of the whole anneal.
        n_steps : int >= 1

        Returns
        -------
        Schedule
        """
        start, stop = check_scalar(start, "start"), check_scalar(stop, "stop")
        n_steps = check_int(n_steps, "n_steps", 1)
        epochs = check_int(epochs, "epochs", n_steps)
        q, r = divmod(epochs, n_steps)
        return cls(tuple(Phase(q + (i < r), weight_decay=start + (stop - start) * i / n_steps)
                         for i in range(n_steps)))

    @classmethod
    def burst(cls, epochs, *, lr=None, batch_size=None, temperature=None, label_noise=None) -> "Schedule":
        """A burst: ``epochs`` with a larger learning rate, smaller batches, injected or label noise.

        Parameters
        ----------
        epochs : int >= 1
        lr : float > 0, optional
        batch_size : int >= 1, optional
        temperature : float >= 0, optional
        label_noise : float >= 0, optional

        Returns
        -------
        Schedule
        """
        return cls((Phase(epochs, lr=lr, batch_size=batch_size, temperature=temperature, label_noise=label_noise),))


def resolve(cls, given, flat: dict, name: str):
    """The options object of ``train``: ``given`` (an instance of ``cls``) or one made from the flat
    keywords; a flat keyword that differs from its default beside ``given`` is an error.

    Parameters
    ----------
    cls : type
        :class:`SGD`, :class:`Noise` or :class:`Logging`.
    given : cls or None
        The object passed to ``train`` (``sgd=``, ``noise=``, ``logging=``).
    flat : dict
        The flat keywords of ``train`` that belong to ``cls``, with their values.
    name : str
        The keyword of the object, for the message.

    Returns
    -------
    cls
    """
    if given is None:
        return cls(**flat)
    if not isinstance(given, cls):
        raise ValueError(f"{name} must be a {cls.__name__}, got {type(given).__name__}")
    defaults = {f.name: None if f.default is dataclasses.MISSING else f.default for f in dataclasses.fields(cls)}
    clash = [k for k, v in flat.items() if v is not defaults.get(k, None) and not _same(v, defaults.get(k))]
    if clash:
        raise ValueError(f"give {', '.join(clash)} either as keywords or in {name}={cls.__name__}(...), not both")
    return given


def _same(a, b) -> bool:
    try:
        return type(a) is type(b) and bool(a == b)
    except (TypeError, ValueError):
        return False
