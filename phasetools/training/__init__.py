"""Real minibatch SGD on deep linear networks, and the noise it carries.

Data
    GaussianTeacher(eta, d_in=None, d_out=None, input_cov=None, output_cov=None, rotation=None)
        .moments, .sample(n, rng), .test_set(n=512), .subsample(pool_size, n_train, rng)
    Moments (input_cov, cross_cov, output_cov; .spectrum, .a for theory.modes), Dataset (X, Y),
    as_moments(data)
Training
    train(data, *, n_layers, width, epochs, lr=, weight_decay= | gamma=, convention=, batch_size=,
          sampling="shuffle"|"replacement"|"full", drop_last=True, test=, dtype="float64"|"float32",
          init="std"|"variance"|weights|TrainingRun, n_seeds=, log_every=, record_steps=, rng=,
          n_threads=)  or with option objects  train(data, ..., sgd=SGD(lr, batch_size, weight_decay),
          noise=Noise(temperature, label_noise), logging=Logging(log_every, ..., test)),
          schedule=Schedule([Phase(epochs, lr=, batch_size=, weight_decay=, temperature=, label_noise=)])
          (Schedule.dip / .anneal / .burst: phases first, then the run's own options)
        -> TrainingRun (registered result: logs, checkpoints, stats)
    batch_gradient(weights, data, ...): the kernel's gradient
Protocols (the paper's experiments; the paper's values are passed by phasetools.reproduce)
    weight_decay_sweep (E1) -> WeightDecaySweep; converge
    prepare_trap, trap_and_release (E2) -> TrapRelease; escape_epochs
    arrhenius_sweep (E4) -> ArrheniusSweep
    sparse_grokking (E5) -> SparseGrokking
    mse_levels, trap_weight_decay: levels from the per-mode theory of the data
Gradient noise
    gradient_covariance(weights, moments or (X, Y), convention=) -> GradientNoise
    per_sample_gradients, effective_temperature, jacobian
Predictions (docs/predict.md)
    predict_escape(data, n_layers=, width=, weight_decay=, lr=, batch_size=, sampling=, moments=)
        -> theory.EscapePrediction; predict_plateau(data, seed, ...) -> theory.PlateauPrediction;
    predict_injected(data, n_layers=, width=, weight_decay=, temperature=, lr=) -> theory.EscapePrediction
    predict_shuffled_escape(data, n_layers=, weight_decay=, lr=, batch_size=) -> theory.EscapePrediction
        (random reshuffling: an exact reduced simulation; reduced_shuffle_run -> ReducedShuffleRun)

One update is ``W -= lr * (grad[kappa * mean_batch ||y - Mx||^2] + weight_decay * W)``:
``torch.optim.SGD(weight_decay=weight_decay)`` on ``torch.nn.MSELoss()`` for ``convention="paper"``
(``weight_decay`` is the paper's beta). See docs/training.md.
"""

from ._arrhenius import ArrheniusSweep, arrhenius_sweep
from ._converge import RANK_THRESHOLD, converge, escape_epochs
from ._data import TEST_ENTROPY, Dataset, GaussianTeacher, Moments, as_moments
from ._levels import mse_levels, trap_weight_decay
from ._noise import GradientNoise, effective_temperature, gradient_covariance, jacobian, per_sample_gradients
from ._options import SCHEDULE_COLUMNS, SGD, Logging, Noise, Phase, Schedule
from ._predict import aligned_weights, predict_escape, predict_injected, predict_plateau
from ._reshuffle import ReducedShuffleRun, predict_shuffled_escape, reduced_shuffle_run
from ._sparse import SparseGrokking, sparse_grokking
from ._train import (INIT_DEFAULT, STATUS_NONFINITE, STATUS_OK, TrainingRun, batch_gradient,
                     resolve_training_convention, train)
from ._trap import TrapRelease, prepare_trap, trap_and_release
from ._weight_decay_sweep import WeightDecaySweep, weight_decay_sweep

__all__ = ["GaussianTeacher", "Moments", "Dataset", "TEST_ENTROPY", "as_moments", "train", "TrainingRun",
           "batch_gradient", "SGD", "Noise", "Logging", "Phase", "Schedule", "SCHEDULE_COLUMNS", "INIT_DEFAULT",
           "STATUS_OK", "STATUS_NONFINITE",
           "GradientNoise", "gradient_covariance", "per_sample_gradients", "effective_temperature", "jacobian",
           "weight_decay_sweep", "WeightDecaySweep", "converge", "prepare_trap", "trap_and_release", "TrapRelease",
           "trap_weight_decay", "mse_levels", "escape_epochs", "arrhenius_sweep", "ArrheniusSweep",
           "sparse_grokking", "SparseGrokking", "RANK_THRESHOLD", "predict_escape", "predict_plateau",
           "predict_injected", "aligned_weights", "predict_shuffled_escape", "reduced_shuffle_run",
           "ReducedShuffleRun", "resolve_training_convention"]
