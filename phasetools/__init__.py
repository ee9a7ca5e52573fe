"""phasetools: first-order phase transitions, metastability and noise-driven escape
in L2-regularised deep linear networks.

Subpackages
-----------
theory
    Closed-form (sympy-derived) theory: reduced potential, critical points,
    landscapes, many-feature states, conventions, the SGD gradient-noise formulas and
    escape-time formulas.
langevin
    Overdamped Langevin ensembles (numba) that escape over the theory's barriers, with
    additive or SGD-like noise; escape problems and escape-time sweeps.
training
    Minibatch SGD with weight decay on deep linear networks (numba, many seeds at once),
    data models, gradient noise and the paper's protocols.
nonlinear
    Grokking in nonlinear networks (modular addition with a quadratic or ReLU MLP, an
    image set): a numba many-seed SGD/AdamW trainer, the exact Fourier solution,
    weight-decay sweeps up and down, trapping and escape, and their verdicts.
stats
    Censored escape-time statistics: exponential MLE, Kaplan-Meier, bootstrap,
    Arrhenius fits.
compare
    Verdicts with written rules: theory, simulation and training side by side.
io
    The versioned HDF5 store: save, load, list, find, provenance.
plot
    Figures drawn from results.
sweep
    Parameter sweeps on local processes or Dask, stored as they finish, resumable.
reproduce
    The reproduction of arXiv:2606.17120: every experiment, its figures and a verdict
    per claim of the paper.
rare
    Rare events: escape times far beyond brute force by adaptive multilevel splitting
    over the Langevin engine.
diagnose
    Plateaus and drops in any training log, what holds a network on a plateau (its
    features, the theory's landscape, the barrier and the escape time), and cures
    (weight-decay dips, noise bursts, re-seeding) measured against constant training.
cli
    The ``phasetools`` command line over all of the above.

The top level stays light: ``import phasetools`` does not import sympy or numba; a
subpackage is imported on first access (``phasetools.theory``) or explicitly
(``from phasetools import theory``).
"""

import importlib

__version__ = "0.1.0"

_SUBPACKAGES = ("theory", "langevin", "training", "nonlinear", "stats", "compare", "io", "plot", "sweep", "reproduce", "rare", "diagnose", "cli")

__all__ = ["__version__", *_SUBPACKAGES]


def __getattr__(name):
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_SUBPACKAGES))
