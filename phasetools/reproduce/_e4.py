"""How the corrected E4 sweep counted its escapes, read from the stored result.

The reproduction measures E4 corrected by the rank criterion (the weak mode's end-to-end
singular value falls below its MSE-midpoint value); under random reshuffling the paper's
test-MSE midpoint rule counts short excursions, not escapes. The sweep keeps that rule's
epochs of the same releases, and every E4 verdict, report row and figure shows its numbers
beside the rank criterion's ("by the test-MSE rule of the paper: ..."). A sweep stored before
the criterion was recorded loads as ``"test_mse"`` and is reported as such.
"""

from __future__ import annotations

import dataclasses

import numpy as np

MSE_RULE = "by the test-MSE rule of the paper"


def rule_name(sw) -> str:
    """The escape rule of a sweep, as verdicts name it beside the sampler.

    Parameters
    ----------
    sw : phasetools.training.ArrheniusSweep
        The stored sweep.

    Returns
    -------
    str
        ``"criterion 'rank'"`` or ``"criterion 'test_mse'"``.
    """
    return f"criterion {sw.criterion!r}"


def rule_text(sw) -> str:
    """What the sweep's escape rule measures, with its threshold.

    Parameters
    ----------
    sw : phasetools.training.ArrheniusSweep
        The stored sweep.

    Returns
    -------
    str
        One phrase for the report.
    """
    if sw.criterion == "rank":
        return (f"escape = mode {int(sw.sv_index)}'s end-to-end singular value below {float(sw.sv_threshold):.4g} "
                "(its MSE-midpoint value; rank criterion)")
    return f"escape = test MSE across its midpoint {float(sw.midpoint):.4g} (the paper's test-MSE rule)"


def by_test_mse(sw):
    """The same releases with escapes counted by the test-MSE midpoint rule.

    Parameters
    ----------
    sw : phasetools.training.ArrheniusSweep
        The stored sweep.

    Returns
    -------
    phasetools.training.ArrheniusSweep or None
        ``sw`` itself when its rule is ``"test_mse"``; a copy whose escape epochs and ``tau``
        (epochs and Langevin time, with intervals) are the test-MSE rule's when ``sw`` kept
        them (``escape_epoch_mse``); None otherwise.
    """
    from ..stats import exponential_mle
    if sw.criterion == "test_mse":
        return sw
    if sw.escape_epoch_mse is None:
        return None
    rows = []
    for ep, ok in zip(sw.escape_epoch_mse, sw.escaped_mse):
        fit = exponential_mle(np.asarray(ep, dtype=float), ~np.asarray(ok, dtype=bool), time_unit="epochs")
        lo, hi = fit.tau_ci if fit.tau_ci is not None else (fit.tau_lower, np.inf)
        rows.append((np.nan if fit.tau is None else fit.tau, lo, hi))
    tau, lo, hi = (np.array(c, dtype=float) for c in zip(*rows))
    scale = np.asarray(sw.lr, dtype=float) * np.asarray(sw.steps_per_epoch, dtype=float)
    return dataclasses.replace(sw, escape_epoch=sw.escape_epoch_mse, escaped=sw.escaped_mse, tau_epochs=tau,
                               tau_epochs_low=lo, tau_epochs_high=hi, tau_time=tau * scale,
                               tau_time_low=lo * scale, tau_time_high=hi * scale, criterion="test_mse",
                               sv_index=-1, sv_threshold=float("nan"), escape_epoch_mse=None, escaped_mse=None)


def point_text(sw, i) -> str:
    """One point's escapes and ``tau`` in epochs, e.g. ``"B 8: 16/16 escaped, tau 41.2 epochs"``.

    Parameters
    ----------
    sw : phasetools.training.ArrheniusSweep
        The sweep (by any rule).
    i : int
        The point.

    Returns
    -------
    str
    """
    n = f"{int(sw.n_escaped[i])}/{sw.escaped.shape[1]} escaped"
    t = sw.tau_epochs[i]
    tau = f"tau {t:.3g} epochs" if np.isfinite(t) else f"tau > {sw.tau_epochs_low[i]:.3g} epochs"
    return f"B {int(sw.batch_size[i])}: {n}, {tau}"


def mse_sentence(sw, extra="") -> str:
    """``"by the test-MSE rule of the paper: B 8: ..., B 10: ..."`` for a rank sweep, else ``""``.

    Parameters
    ----------
    sw : phasetools.training.ArrheniusSweep
        The stored sweep.
    extra : str
        Appended after the points (e.g. the same check's outcome by that rule).

    Returns
    -------
    str
        Empty when ``sw`` is itself measured by the test-MSE rule or kept no test-MSE epochs.
    """
    alt = by_test_mse(sw)
    if alt is None or alt is sw:
        return ""
    pts = "; ".join(point_text(alt, i) for i in range(alt.lr.size))
    return f"{MSE_RULE}: {pts}" + (f"; {extra}" if extra else "")
