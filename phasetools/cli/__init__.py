"""Command-line interface: a thin layer over the public API.

Heavy modules (sympy, scipy) are imported inside the handlers so that ``--help`` and
``--version`` stay instant. A ``ValueError`` from the API is printed on one line to
stderr and the command exits with status 2.
"""

from ._main import main

__all__ = ["main"]
