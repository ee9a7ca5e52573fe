"""Overdamped Langevin ensembles that escape over the barriers of the theory.

    simulate(potential, x0, *, temperature, dt, n_traj, max_steps, stop=None,
             scheme="euler", save_every=None, rng=None) -> EscapeEnsemble
    replay(potential, ensemble, trajectory) -> the same trajectory again, alone
    ensemble.fit() -> ExponentialFit (censoring-aware MLE over the finite trajectories);
    masks ensemble.escaped / censored / nonfinite / finite (status codes STATUS_CENSORED,
    STATUS_ESCAPED, STATUS_NONFINITE)

Potentials (each from a sympy expression; gradients and kernels are generated):
    double_well(), reduced(n_layers, c, gamma), chain(n_layers, c, gamma),
    network(n_layers, width, input_cov, cross_cov, gamma), from_sympy(expr, variables)
Standard experiments (potential + start + stop + theory prediction):
    escape_problem(model, n_layers=, c=, gamma=, direction="fwd"|"bwd", width=, convention=)
    problem.sgd_noise(lr, batch_size, n_samples=, output_var=) -> SGDNoise (chain, network)
    problem.sgd_theory(output_var=) -> SGDTheory (exact 1D MFPT under SGD-like noise, Arrhenius
        slopes against batch_size/lr, T_eff = lr tr(Sigma) / (2 B N_theta))
Escape sweeps (one ensemble per point, fitted, with the theory beside):
    escape_sweep(problem, temperatures=[...] | points=[(lr, batch_size), ...], dt=, n_traj=,
                 max_steps=, rng=) -> EscapeSweep; sweep.fit() (per point), sweep.arrhenius()
Stops and schemes:
    Threshold(level, direction="up"), EulerMaruyama (first passage O(sqrt dt)),
    BrownianBridge (first passage O(dt))
"""

from .._rng import entropy_of
from ._potentials import Potential, chain, double_well, from_sympy, network, reduced
from ._problems import MODELS, SGD_MODELS, EscapeProblem, SGDTheory, escape_problem
from ._simulate import (STATUS_CENSORED, STATUS_ESCAPED, STATUS_NONFINITE, BrownianBridge, EscapeEnsemble,
                        EulerMaruyama, SGDNoise, Threshold, replay, simulate)
from ._sweep import EscapeSweep, escape_sweep

__all__ = ["simulate", "replay", "EscapeEnsemble", "Threshold", "SGDNoise", "EulerMaruyama", "BrownianBridge",
           "Potential", "double_well", "reduced", "chain", "network", "from_sympy", "entropy_of", "EscapeProblem",
           "escape_problem", "MODELS", "SGD_MODELS", "SGDTheory", "EscapeSweep", "escape_sweep", "STATUS_CENSORED",
           "STATUS_ESCAPED", "STATUS_NONFINITE"]

# piecewise advance of given states with given streams (the engine of phasetools.rare)
from ._advance import Advanced, advance, new_streams, order_values  # noqa: E402

__all__ += ["advance", "Advanced", "new_streams", "order_values"]
