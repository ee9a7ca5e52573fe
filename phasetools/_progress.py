"""What long work shows while it runs, and how numbers print for a reader.

* :func:`progress`: a tqdm bar on a terminal; one line per finished task and a final
  summary when the stream is a pipe, a file or a CI log; nothing when quiet.
* :func:`compile_notice`: one line, once per process, before numba compiles kernels that
  are neither loaded nor in the on-disk cache ("compiling simulation kernels, once, ~10 s").
* :func:`plus_minus`: a value with its standard error at the error's precision
  ("2000 ± 100", not "2001 ± 1e+02").
"""

from __future__ import annotations

import math
import os
import sys
import time

__all__ = ["progress", "compile_notice", "set_notices", "plus_minus"]

#: Whether :func:`compile_notice` may print (the CLI turns it off for --quiet and --json).
_NOTICES = {"enabled": True, "shown": set()}


def progress(iterable=None, *, total=None, desc=None, quiet=False, stream=None):
    """Show the progress of ``iterable`` (or of manual ``update`` calls) on ``stream``.

    Parameters
    ----------
    iterable : iterable, optional
        What to iterate over; omitted for a manual bar (``update(n)``, ``close()``).
    total : int, optional
        Number of tasks (default ``len(iterable)`` when it has one).
    desc : str, optional
        What the tasks are, printed in front of every line.
    quiet : bool
        Show nothing.
    stream : file, optional
        Where to write (default ``sys.stderr``).

    Returns
    -------
    iterable or bar
        A tqdm bar on a terminal; off a terminal a line reporter that prints
        ``"desc: k/n done (t s)"`` as each task finishes and ``"desc: n tasks done in t s"``
        at the end; with ``quiet`` the iterable itself (or a bar that prints nothing).
    """
    stream = sys.stderr if stream is None else stream
    if quiet:
        return iterable if iterable is not None else _NullBar()
    if getattr(stream, "isatty", lambda: False)():
        from tqdm.auto import tqdm

        return tqdm(iterable, total=total, desc=desc, file=stream, dynamic_ncols=True, leave=False)
    if total is None and iterable is not None and hasattr(iterable, "__len__"):
        total = len(iterable)
    return _LineBar(iterable, total, desc or "progress", stream)


class _LineBar:
    """One line per finished task and a summary line: progress for pipes and log files."""

    def __init__(self, iterable, total, desc, stream):
        self.iterable, self.total, self.desc, self.stream = iterable, total, desc, stream
        self.n, self.closed, self.t0 = 0, False, time.perf_counter()

    def _write(self, text):
        try:
            print(f"{self.desc}: {text}", file=self.stream, flush=True)
        except (OSError, ValueError):
            pass   # a closed or broken stream never stops the work

    def _elapsed(self):
        return _seconds(time.perf_counter() - self.t0)

    def update(self, n=1):
        """Count ``n`` more finished tasks and print one line.

        Parameters
        ----------
        n : int
            Tasks finished since the last call.
        """
        if n <= 0:
            return
        self.n += n
        of = f"/{self.total}" if self.total is not None else ""
        self._write(f"{self.n}{of} done ({self._elapsed()})")

    def close(self):
        """Print the summary line (once)."""
        if not self.closed:
            self.closed = True
            self._write(f"{self.n} task{'s' if self.n != 1 else ''} done in {self._elapsed()}")

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.update()
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            self.close()
        return False


class _NullBar:
    """Stands in for a manual bar (``update``/``close``) when nothing is shown."""

    def update(self, n=1):
        pass

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _seconds(t) -> str:
    return f"{t:.1f} s" if t < 120 else f"{t / 60:.1f} min"


def set_notices(enabled: bool) -> bool:
    """Allow or silence :func:`compile_notice` (the CLI silences it for ``--quiet``/``--json``).

    Parameters
    ----------
    enabled : bool
        Whether notices may print.

    Returns
    -------
    bool
        The previous setting.
    """
    before = _NOTICES["enabled"]
    _NOTICES["enabled"] = bool(enabled)
    return before


def _cached_on_disk(dispatcher) -> bool:
    """Whether numba's on-disk cache of ``dispatcher`` holds an index (a compiled version)."""
    cache_file = getattr(getattr(dispatcher, "_cache", None), "_cache_file", None)
    index = getattr(cache_file, "_index_path", None)
    return bool(index) and os.path.exists(index)


def compile_notice(dispatchers, *, what="simulation kernels", stream=None) -> bool:
    """Say once, before it happens, that numba is about to compile kernels.

    Prints ``"phasetools: compiling <what>, once, ~10 s"`` to ``stream`` when one of
    ``dispatchers`` is neither compiled in this process nor in numba's on-disk cache, at
    most once per ``what`` and process, and never when notices are off
    (:func:`set_notices`).

    Parameters
    ----------
    dispatchers : sequence of numba dispatchers
        The kernels the caller is about to run (other objects are ignored).
    what : str
        What is compiled, for the message.
    stream : file, optional
        Default ``sys.stderr``.

    Returns
    -------
    bool
        Whether the notice was printed.
    """
    if not _NOTICES["enabled"] or what in _NOTICES["shown"]:
        return False
    pending = [d for d in dispatchers if hasattr(d, "signatures") and not d.signatures and not _cached_on_disk(d)]
    if not pending:
        return False
    _NOTICES["shown"].add(what)
    try:
        print(f"phasetools: compiling {what}, once, ~10 s", file=sys.stderr if stream is None else stream,
              flush=True)
    except (OSError, ValueError):
        return False
    return True


def plus_minus(value, stderr=None, *, digits=4, sep=" ± ") -> str:
    """``value`` with its standard error, both rounded to the error's second significant digit.

    Parameters
    ----------
    value : float or None
        The estimate; ``None`` or non-finite prints as ``"-"``.
    stderr : float, optional
        Its standard error; without a finite positive one, ``value`` prints with ``digits``
        significant digits.
    digits : int
        Significant digits of ``value`` when there is no error.
    sep : str
        Between value and error (``" +- "`` for plain ASCII).

    Returns
    -------
    str
        E.g. ``plus_minus(2001.3, 102.0) == "2000 ± 100"``, ``plus_minus(0.01234, 0.0021) ==
        "0.0123 ± 0.0021"``.
    """
    if value is None or not math.isfinite(value):
        return "-"
    if stderr is None or not math.isfinite(stderr) or stderr <= 0:
        return f"{value:.{digits}g}"
    exp = math.floor(math.log10(stderr)) - 1            # the error's second significant digit
    if abs(value) >= 1e6 or abs(value) < 1e-4 and value != 0:
        # scientific notation with a shared exponent
        e10 = math.floor(math.log10(abs(value)))
        places = max(e10 - exp, 0)
        return f"{value / 10**e10:.{places}f}{sep}{stderr / 10**e10:.{places}f} x 1e{e10}"
    places = max(-exp, 0)
    v, s = round(value, -exp), round(stderr, -exp)
    return f"{v:.{places}f}{sep}{s:.{places}f}"
