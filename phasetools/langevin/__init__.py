"""Overdamped Langevin ensembles that escape over the barriers of the theory.

    simulate(potential, x0, *, temperature, dt, n_traj, max_steps, stop=None,
             scheme="euler", save_every=None, rng=None) -> EscapeEnsemble
    replay(potential, ensemble, trajectory) -> the same trajectory again, alone

Potentials (each from a sympy expression; gradients and kernels are generated):
    double_well(), reduced(n_layers, c, gamma), chain(n_layers, c, gamma),
    network(n_layers, width, input_cov, cross_cov, gamma), from_sympy(expr, variables)
Standard experiments (potential + start + stop + theory prediction):
    escape_problem(model, n_layers=, c=, gamma=, direction="fwd"|"bwd", width=, convention=)
Stops and schemes:
    Threshold(level, direction="up"), EulerMaruyama (first passage O(sqrt dt)),
    BrownianBridge (first passage O(dt))
"""

from ._potentials import Potential, chain, double_well, from_sympy, network, reduced
from ._problems import MODELS, EscapeProblem, escape_problem
from ._simulate import (BrownianBridge, EscapeEnsemble, EulerMaruyama, SGDNoise, Threshold, entropy_of, replay,
                        simulate)

__all__ = ["simulate", "replay", "EscapeEnsemble", "Threshold", "SGDNoise", "EulerMaruyama", "BrownianBridge", "Potential",
           "double_well", "reduced", "chain", "network", "from_sympy", "entropy_of", "EscapeProblem",
           "escape_problem", "MODELS"]
