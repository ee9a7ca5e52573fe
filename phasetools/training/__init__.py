"""Real minibatch SGD on deep linear networks, and the noise it carries.

Data
    GaussianTeacher(eta, d_in=None, d_out=None, input_cov=None, output_cov=None, rotation=None)
        .moments, .sample(n, rng), .test_set(n=512), .subsample(pool_size, n_train, rng)
    Moments (input_cov, cross_cov, output_cov; .spectrum, .a for theory.modes), Dataset (X, Y)
Training
    train(data, *, n_layers, width, lr, epochs, beta= | gamma=, convention=, batch_size=,
          sampling="shuffle"|"replacement", drop_last=True, test=, dtype="float64"|"float32",
          init="std"|"variance"|weights|TrainingRun, n_seeds=, log_every=, record_steps=, rng=)
        -> TrainingRun (registered result: logs, checkpoints, stats)
    batch_gradient(weights, data, ...): the kernel's gradient
Protocols (the paper's experiments, science brief section 6)
    weight_decay_sweep (E1) -> WeightDecaySweep; converge; prepare_trap
    trap_and_release (E2) -> TrapRelease; escape_epochs
    arrhenius_sweep (E4) -> ArrheniusSweep
    sparse_grokking (E5) -> SparseGrokking
Gradient noise
    gradient_covariance(weights, moments or (X, Y), convention=) -> GradientNoise
    per_sample_gradients, effective_temperature, jacobian

One update is ``W -= lr * (grad[kappa * mean_batch ||y - Mx||^2] + beta * W)``:
``torch.optim.SGD(weight_decay=beta)`` on ``torch.nn.MSELoss()`` for ``convention="paper"``.
See docs/training.md.
"""

from ._data import TEST_ENTROPY, Dataset, GaussianTeacher, Moments
from ._noise import GradientNoise, effective_temperature, gradient_covariance, jacobian, per_sample_gradients
from ._protocols import (RANK_THRESHOLD, ArrheniusSweep, SparseGrokking, TrapRelease, WeightDecaySweep,
                         arrhenius_sweep, converge, escape_epochs, prepare_trap, sparse_grokking,
                         trap_and_release, trap_weight_decay, mse_levels, weight_decay_sweep)
from ._train import INIT_DEFAULT, STATUS_NONFINITE, STATUS_OK, TrainingRun, batch_gradient, train

__all__ = ["GaussianTeacher", "Moments", "Dataset", "TEST_ENTROPY", "train", "TrainingRun", "batch_gradient",
           "INIT_DEFAULT", "STATUS_OK", "STATUS_NONFINITE", "GradientNoise", "gradient_covariance",
           "per_sample_gradients", "effective_temperature", "jacobian",
           "weight_decay_sweep", "WeightDecaySweep", "converge", "prepare_trap", "trap_and_release", "TrapRelease", "trap_weight_decay", "mse_levels",
           "escape_epochs", "arrhenius_sweep", "ArrheniusSweep", "sparse_grokking", "SparseGrokking",
           "RANK_THRESHOLD"]
