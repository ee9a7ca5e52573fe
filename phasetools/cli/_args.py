"""Shared argument helpers of the command line: one value, a list or a range per flag.

Every flag that can take several values takes them in one of three spellings:

* one value: ``--lr 0.1``
* a comma-separated list: ``--lr 0.1,0.05``
* a range ``START:STOP:NUM``: ``NUM >= 2`` evenly spaced values from ``START`` to ``STOP``,
  both ends included (``numpy.linspace``): ``--batch-size 8:16:5`` is 8, 10, 12, 14, 16.

:func:`values` parses them; a bad value raises :class:`ValuesError`, which is both a
``ValueError`` (the CLI prints it on one line and exits with status 2) and an
``argparse.ArgumentTypeError`` (so :func:`values_type` can serve as an argparse ``type=``).
Nothing here imports more than the standard library and numpy, so ``--help`` stays instant.
"""

from __future__ import annotations

import argparse

import numpy as np

__all__ = ["ValuesError", "values", "one_value", "one_or_many", "values_type", "count", "command_group", "Parser"]

#: Largest integer a count can take (numba kernels count in int64).
MAX_COUNT = 2**63 - 1


class ValuesError(argparse.ArgumentTypeError, ValueError):
    """A flag's value is not a number, a list or a range of the kind asked for."""


def values(text, *, kind=float, name="value") -> list:
    """Parse one value, a comma-separated list or a range ``START:STOP:NUM`` into a list.

    Parameters
    ----------
    text : str
        The flag's text, e.g. ``"0.1"``, ``"0.1,0.05"`` or ``"0:0.46:47"``.
    kind : type
        ``float`` (default) or ``int``. For ``int`` every value (range points included)
        must be a whole number.
    name : str
        The parameter's name, used in error messages.

    Returns
    -------
    list of float or int
        The values in the order given (a range from ``START`` to ``STOP``).

    Raises
    ------
    ValuesError
        Naming ``name`` and the accepted spellings.
    """
    if kind not in (float, int):
        raise ValueError(f"kind must be float or int, got {kind!r}")
    text = str(text).strip()
    out = _range(text, name) if ":" in text else _list(text, name)
    if kind is int:
        if any(not float(v).is_integer() for v in out):
            raise ValuesError(f"{name} must be integers, got {text!r}")
        return [int(v) for v in out]
    return [float(v) for v in out]


def _list(text, name):
    try:
        vals = [float(t) for t in text.split(",") if t.strip() != ""]
    except ValueError:
        raise ValuesError(f"{name} must be a number, a comma-separated list of numbers or a range "
                          f"START:STOP:NUM, got {text!r}") from None
    if not vals:
        raise ValuesError(f"{name} must be a non-empty comma-separated list of numbers, got {text!r}")
    return vals


def _range(text, name):
    parts = text.split(":")
    try:
        if len(parts) != 3:
            raise ValueError
        start, stop, num = float(parts[0]), float(parts[1]), _integer(parts[2])
        if num is None or num < 2:
            raise ValueError
    except ValueError:
        raise ValuesError(f"{name} range must be START:STOP:NUM with NUM >= 2, got {text!r}") from None
    from .._validation import check_memory

    check_memory(num * 48, f"{name} range of {num} points")   # the array and a list of Python floats
    return np.linspace(start, stop, num).tolist()


def one_value(text, *, kind=float, name="value"):
    """Parse a flag that takes exactly one value (a list or range is refused).

    Parameters
    ----------
    text : str
        The flag's text.
    kind : type
        ``float`` or ``int``.
    name : str
        The parameter's name, used in error messages.

    Returns
    -------
    float or int
    """
    out = values(text, kind=kind, name=name)
    if len(out) != 1:
        raise ValuesError(f"{name} takes one value here, got {len(out)} ({text!r})")
    return out[0]


def one_or_many(text, *, kind=float, name="value"):
    """Parse a flag into a scalar (one value) or a 1-D array (a list or a range).

    Parameters
    ----------
    text, kind, name
        As in :func:`one_value`.

    Returns
    -------
    float, int or numpy.ndarray
        A scalar for one value (so an API call gives a scalar result), an array otherwise.
    """
    out = values(text, kind=kind, name=name)
    return out[0] if len(out) == 1 else np.asarray(out)


def values_type(*, kind=float, name="value"):
    """An argparse ``type=`` that parses with :func:`values` (errors name the flag).

    Parameters
    ----------
    kind, name
        As in :func:`values`.

    Returns
    -------
    callable
        ``text -> list``.
    """
    def parse(text):
        return values(text, kind=kind, name=name)

    parse.__name__ = name
    return parse


def _integer(text):
    """``text`` as an int: digits, or a float spelling of a whole number (``1e6``); else None."""
    text = str(text).strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        v = float(text)
    except ValueError:
        return None
    return int(v) if np.isfinite(v) and v.is_integer() else None


def count(name, *, minimum=0, maximum=MAX_COUNT):
    """An argparse ``type=`` for a count: an integer (``1000``, ``1e6``) in ``[minimum, maximum]``.

    Parameters
    ----------
    name : str
        The parameter's name, used in error messages.
    minimum, maximum : int
        The allowed range (default: ``>= 0`` and at most ``2**63 - 1``).

    Returns
    -------
    callable
        ``text -> int``; a bad value raises :class:`ValuesError` naming ``name`` and the range.
    """
    def parse(text):
        v = _integer(text)
        if v is None or not minimum <= v <= maximum:
            top = "2**63 - 1" if maximum == MAX_COUNT else str(maximum)
            raise ValuesError(f"{name} must be an integer from {minimum} to {top}, got {text!r}")
        return v

    parse.__name__ = name
    return parse


def command_group(sub, name, help):
    """Add the command ``name`` with subcommands of its own (``args.<name>_command``) to ``sub``.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The top-level subcommands.
    name : str
        The command (``"train"``, ``"predict"``, ...).
    help : str
        Its line in ``phasetools --help``.

    Returns
    -------
    parser : argparse.ArgumentParser
        The command's parser.
    subcommands : argparse._SubParsersAction
        Where its subcommands are added (``dest="<name>_command"``).
    """
    parser = sub.add_parser(name, help=help)
    return parser, parser.add_subparsers(dest=f"{name}_command", metavar="SUBCOMMAND")


class Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line on stderr (exit status 2)."""

    def error(self, message):
        """Print ``message`` on one line, pointing to ``--help``, and exit with status 2.

        Parameters
        ----------
        message : str
            argparse's message.
        """
        import sys

        msg = " ".join(str(message).split())
        sys.stderr.write(f"{self.prog}: error: {msg} (see {self.prog} --help)\n")
        raise SystemExit(2)
