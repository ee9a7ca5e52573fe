"""The shared progress reporter: a tqdm bar on a terminal, silent otherwise or when quiet."""

from __future__ import annotations

import sys

__all__ = ["progress"]


def progress(iterable=None, *, total=None, desc=None, quiet=False, stream=None):
    """Wrap ``iterable`` in a progress bar when ``stream`` (default stderr) is a terminal.

    Returns the iterable unchanged when ``quiet`` is true or the stream is not a TTY
    (pipes, files, CI logs), so scripted runs print nothing extra.
    """
    stream = sys.stderr if stream is None else stream
    if quiet or not getattr(stream, "isatty", lambda: False)():
        return iterable if iterable is not None else _NullBar()
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, file=stream, dynamic_ncols=True, leave=False)


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
