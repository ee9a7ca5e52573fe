"""Dask distributed clients, shared by the subpackages that run work on a cluster.

``phasetools.sweep`` (``executor="dask"``) and ``phasetools.rare`` (``scheduler=``,
``dask_workers=``) connect the same way, with the same errors:

* :data:`DASK_INSTALL_HINT`: how to install the optional extra.
* :func:`connect`: a ``distributed.Client`` on a running scheduler (``"tcp://HOST:PORT"``)
  or on a ``LocalCluster`` of single-threaded worker processes started here.
* :class:`DaskConnectError`: the scheduler's address is malformed or nothing answers there
  within the timeout (a ``ValueError``: one line on the command line, exit status 2).
"""

from __future__ import annotations

__all__ = ["DASK_INSTALL_HINT", "DaskConnectError", "check_scheduler", "connect"]

DASK_INSTALL_HINT = 'pip install "phasetools[dask]"'


class DaskConnectError(ValueError):
    """No Dask scheduler answers at the given address (or the address is malformed)."""


def check_scheduler(scheduler, dask_workers):
    """Refuse a scheduler that is not an address string, or both a scheduler and local workers.

    Parameters
    ----------
    scheduler : str or None
        Address of a running Dask scheduler.
    dask_workers : int or None
        Workers of a local cluster to start instead.

    Returns
    -------
    None
    """
    if scheduler is not None and dask_workers is not None:
        raise ValueError("give either scheduler= (connect to a running Dask cluster) or dask_workers= "
                         "(start a local one), not both")
    if scheduler is not None and not isinstance(scheduler, str):
        raise ValueError(f"scheduler must be the address of a Dask scheduler as a string, e.g. "
                         f"'tcp://HOST:8786', got {scheduler!r}")


def connect(scheduler, n_workers, connect_timeout, *, what='executor="dask"'):
    """A Dask client: on the scheduler at ``scheduler``, or on a new LocalCluster.

    Parameters
    ----------
    scheduler : str or None
        Address ``"tcp://HOST:PORT"`` of a running scheduler; None starts a LocalCluster on
        127.0.0.1 with ``n_workers`` single-threaded worker processes.
    n_workers : int >= 1
        Workers of the LocalCluster (unused with ``scheduler``).
    connect_timeout : float > 0
        Seconds to wait for the scheduler.
    what : str
        The option that needs Dask, named in the ImportError when it is not installed.

    Returns
    -------
    (distributed.Client, distributed.LocalCluster or None)
        The client (not the default client of the session) and the cluster started here,
        if any: close both when done.

    Raises
    ------
    ImportError
        dask.distributed is not installed (the message says how to install it).
    DaskConnectError
        Nothing answers at ``scheduler`` within ``connect_timeout`` or the address is
        malformed; the message names the address and the timeout.
    """
    try:
        import distributed
    except ImportError:
        raise ImportError(f"{what} needs dask.distributed, which is not installed: {DASK_INSTALL_HINT}") from None
    if scheduler is not None:
        try:   # a malformed address fails here, not in a half-made Client
            _check_address(scheduler)
        except ValueError as exc:
            raise DaskConnectError(f"{scheduler!r} is not the address of a Dask scheduler ({exc}): give "
                                   "tcp://HOST:PORT") from None
        try:
            return distributed.Client(scheduler, timeout=connect_timeout, set_as_default=False), None
        except (OSError, ValueError, TypeError, TimeoutError) as exc:
            raise DaskConnectError(
                f"cannot connect to the Dask scheduler at {scheduler!r} within {connect_timeout:g} s: "
                f"{exc}. Check the address (tcp://HOST:PORT) and that the scheduler is running and "
                "reachable") from None
    import logging

    cluster = distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                       dashboard_address=None, silence_logs=logging.ERROR)
    return distributed.Client(cluster, set_as_default=False), cluster


def _check_address(scheduler):
    """Refuse a malformed scheduler address (ValueError) without opening a connection.

    A ``distributed.Client`` made with one raises too, but the half-made client then
    waits 10 s and prints a traceback when the interpreter exits."""
    from distributed.comm.addressing import parse_address, parse_host_port
    from distributed.comm.registry import get_backend

    scheme, location = parse_address(scheduler)
    get_backend(scheme)
    if scheme in ("tcp", "tls"):
        parse_host_port(location)
