"""Grokking in nonlinear networks: modular addition, image sets, a numba many-seed trainer.

Tasks
    modular_addition(p=97, train_fraction=0.5, data_seed=0), synthetic_images(...),
    digits(n_train=1000) (scikit-learn, optional) -> Task; task_from_config
Models
    MLP(dims, activation, loss, init_std); quadratic_mlp(p, width) (Gromov: z^2, MSE),
    relu_mlp(p, width) (cross-entropy), image_mlp(n_inputs, width, n_classes) (Omnigrok)
    fourier_solution(p, width, rng=) (the exact weights), fourier_ipr(model, weights),
    split_weights
Training
    Optimizer / sgd(lr, weight_decay) / adamw(lr, weight_decay, ...)
    train(task, model, optimizer, epochs=, batch_size=, sampling="full"|"shuffle"|"replacement",
          n_seeds=, dtype=, init_scale=, init=, label_noise=, temperature=, rng=, n_threads=)
          -> NonlinearRun (.loss_log(seed) for phasetools.diagnose)
    train_from_settings(task=, model=, p=, width=, optimizer=, lr=, weight_decay=, ..., rng=)
          (plain settings: the task function of a phasetools.sweep grid); build_task_and_model
    loss_and_gradient, evaluate
Measurements
    weight_decay_sweep (up and down, warm starts) -> NonlinearSweep
    escape_sweep (memorise, release at points of batch size, lr, label noise, temperature)
        -> NonlinearEscape; fit_escape_laws (Arrhenius, power law, deterministic: chi-square
        tests) against escape_abscissa (X_LAWS)
    init_scale_sweep (delay against the initial scale: Omnigrok's control) -> NonlinearInitScale
    verdicts(sweep, escape) -> list of phasetools.compare.Verdict

See docs/nonlinear.md.
"""

from ._model import MLP, fourier_ipr, fourier_solution, image_mlp, quadratic_mlp, relu_mlp, split_weights
from ._tasks import Task, digits, is_prime, modular_addition, synthetic_images, task_from_config
from ._protocols import (X_LAWS, NonlinearEscape, NonlinearSweep, escape_abscissa, escape_sweep, fit_escape_laws,
                         weight_decay_sweep)
from ._train import NonlinearRun, Optimizer, adamw, evaluate, loss_and_gradient, sgd, train
from ._verdicts import verdicts
from ._init_scale import NonlinearInitScale, init_scale_sweep
from ._settings import build_task_and_model, train_from_settings

__all__ = ["Task", "modular_addition", "synthetic_images", "digits", "task_from_config", "is_prime",
           "MLP", "quadratic_mlp", "relu_mlp", "image_mlp", "fourier_solution", "fourier_ipr", "split_weights",
           "Optimizer", "sgd", "adamw", "train", "NonlinearRun", "loss_and_gradient", "evaluate",
           "weight_decay_sweep", "NonlinearSweep", "escape_sweep", "NonlinearEscape", "fit_escape_laws", "verdicts",
           "escape_abscissa", "X_LAWS", "NonlinearInitScale", "init_scale_sweep", "build_task_and_model",
           "train_from_settings"]
