"""Figures from results (matplotlib).

Each function takes a result, draws on new axes (or the ``ax`` given) and returns a
:class:`Plot` holding the figure and axes, so that users can restyle before
``plot.save("fig.png")`` (or ``.pdf``; no suffix writes both).

    potential(landscape)       U(b) per point, saddle and minima marked
    barriers(landscape)        barrier heights against the coupling
    phase_diagram(critical)    coexistence and spinodal lines over feature strength
    cascade(phase_diagram)     top-m state energies, global state, hysteresis loop
    levels(modes)              energy levels of the metastable states and their saddles
    survival(ensembles)        Kaplan-Meier survival of escape ensembles, MLE and theory lines
    arrhenius(fit)             ln tau against 1/T with the fitted and the theory line
    weight_decay_sweep(sweeps) E1: test MSE and rank against the weight decay, spinodal lines
    trapping(release)          E2: test MSE after the release, levels and fresh-weight runs
    escape_sweep(sweep)        E4: ln tau against batch_size/lr, censored points as bounds
    grokking(sparse)           E5: MSE curves and escape epoch against the residual seed
    predicted_vs_measured(t)   predicted against measured tau, log-log, factor band, contrasts
    plot(result, kind=None)    dispatch by result type (used by ``phasetools plot``)
"""

from ._figures import KINDS, Plot, arrhenius, barriers, cascade, levels, phase_diagram, plot, potential, survival
from ._predict import predicted_vs_measured
from ._protocols import escape_sweep, grokking, trapping, weight_decay_sweep

__all__ = ["Plot", "potential", "barriers", "phase_diagram", "cascade", "levels", "survival", "arrhenius", "plot",
           "KINDS", "weight_decay_sweep", "trapping", "escape_sweep", "grokking", "predicted_vs_measured"]
