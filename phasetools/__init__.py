"""phasetools: first-order phase transitions, metastability and noise-driven escape
in L2-regularised deep linear networks.

Subpackages
-----------
theory
    Closed-form (sympy-derived) theory: reduced potential, critical points,
    landscapes, many-feature states, conventions and escape-time formulas.

The top level stays light: ``import phasetools`` does not import sympy or numba.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
