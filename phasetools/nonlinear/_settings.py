"""One nonlinear run from plain settings (numbers and names), for sweeps and the command line."""

from __future__ import annotations

from ._model import image_mlp, quadratic_mlp, relu_mlp
from ._tasks import digits, modular_addition, synthetic_images
from ._train import NonlinearRun, adamw, sgd, train

__all__ = ["train_from_settings", "build_task_and_model", "TASKS", "MODELS"]

TASKS = ("modular_addition", "synthetic_images", "digits")
MODELS = ("quadratic", "relu", "image")


def build_task_and_model(*, task: str = "modular_addition", model: str = "quadratic", p: int = 97,
                         train_fraction: float = 0.5, n_train: int = 1000, data_seed: int = 0, width: int = 500):
    """The task and network named by plain settings.

    Parameters
    ----------
    task : {"modular_addition", "synthetic_images", "digits"}
        The data (:func:`modular_addition`, :func:`synthetic_images` with ``n_train`` train
        and test samples, :func:`digits`).
    model : {"quadratic", "relu", "image"}
        :func:`quadratic_mlp` / :func:`relu_mlp` (modular addition) or :func:`image_mlp`.
    p, train_fraction : int, float
        Modular addition's modulus and training fraction.
    n_train : int
        Training images of the image tasks.
    data_seed : int >= 0
        Seed of the split.
    width : int >= 1
        Hidden width.

    Returns
    -------
    (Task, MLP)
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(map(repr, TASKS))}, got {task!r}")
    if model not in MODELS:
        raise ValueError(f"model must be one of {', '.join(map(repr, MODELS))}, got {model!r}")
    if task == "modular_addition":
        t = modular_addition(p, train_fraction, data_seed=data_seed)
    elif task == "synthetic_images":
        t = synthetic_images(n_train, n_train, data_seed=data_seed)
    else:
        t = digits(n_train, data_seed=data_seed)
    if model == "image":
        return t, image_mlp(t.n_inputs, width, t.n_classes)
    if t.name != "modular_addition":
        raise ValueError(f"model must be 'image' for task {task!r}, got {model!r}")
    return t, (quadratic_mlp if model == "quadratic" else relu_mlp)(p, width)


def train_from_settings(*, task: str = "modular_addition", model: str = "quadratic", p: int = 97,
                        train_fraction: float = 0.5, n_train: int = 1000, data_seed: int = 0, width: int = 500,
                        optimizer: str = "adamw", lr: float = 1e-2, weight_decay: float = 1.0, epochs: int = 100,
                        batch_size: int | None = None, sampling: str = "full", n_seeds: int = 1,
                        dtype: str = "float64", init_scale: float = 1.0, log_every: int = 10,
                        threshold: float = 0.99, label_noise: float = 0.0, temperature: float = 0.0, rng=None,
                        n_threads: int | None = None) -> NonlinearRun:
    """:func:`train` from numbers and names only: the task function of a ``phasetools.sweep`` grid.

    Parameters
    ----------
    task, model, p, train_fraction, n_train, data_seed, width
        As in :func:`build_task_and_model`.
    optimizer : {"adamw", "sgd"}
        :func:`adamw` (reference defaults) or :func:`sgd`, with ``lr`` and ``weight_decay``.
    lr : float > 0
        Learning rate.
    weight_decay : float >= 0
        Weight decay.
    epochs, batch_size, sampling, n_seeds, dtype, init_scale, log_every, threshold, label_noise, temperature
        As in :func:`train`.
    rng : None, int, SeedSequence or Generator
        Root of the streams (``phasetools.sweep.run_sweep`` passes each task's SeedSequence).
    n_threads : int, optional
        numba threads.

    Returns
    -------
    NonlinearRun
    """
    t, m = build_task_and_model(task=task, model=model, p=p, train_fraction=train_fraction, n_train=n_train,
                                data_seed=data_seed, width=width)
    if optimizer not in ("adamw", "sgd"):
        raise ValueError(f"optimizer must be 'adamw' or 'sgd', got {optimizer!r}")
    opt = adamw(lr, weight_decay) if optimizer == "adamw" else sgd(lr, weight_decay)
    return train(t, m, opt, epochs=epochs, batch_size=batch_size, sampling=sampling, n_seeds=n_seeds, dtype=dtype,
                 init_scale=init_scale, log_every=log_every, threshold=threshold, label_noise=label_noise,
                 temperature=temperature, rng=rng, n_threads=n_threads)
