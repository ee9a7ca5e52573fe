"""Loss curves from any training log, and the plateau / drop rule (docs/diagnose.md)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from .._validation import check_int, check_scalar
from ..results import Result, register

__all__ = ["LossLog", "Plateaus", "find_plateaus", "load_log"]

_TRAIN_KEYS = ("train_mse", "train_loss", "loss", "train")
_TEST_KEYS = ("test_mse", "test_loss", "val_loss", "valid_loss", "validation_loss", "test")
_EPOCH_KEYS = ("epoch", "epochs", "log_epochs", "step", "steps")


@dataclass(frozen=True)
class LossLog:
    """Loss curves of one run: ``train_mse`` and/or ``test_mse`` at ``epochs``.

    Parameters
    ----------
    epochs : numpy.ndarray
        Increasing log epochs.
    train_mse, test_mse : numpy.ndarray or None
        The curves (at least one is given).
    source : str
        Where the curves came from.
    """

    epochs: np.ndarray
    train_mse: np.ndarray | None
    test_mse: np.ndarray | None
    source: str = ""

    def curve(self, which: str = "auto") -> tuple:
        """``(name, values)`` of one curve: ``"test"``, ``"train"`` or ``"auto"`` (test if logged).

        Parameters
        ----------
        which : {"auto", "test", "train"}

        Returns
        -------
        tuple of (str, numpy.ndarray)
        """
        if which not in ("auto", "test", "train"):
            raise ValueError(f"curve must be 'auto', 'test' or 'train', got {which!r}")
        if which == "auto":
            which = "test" if self.test_mse is not None else "train"
        values = self.test_mse if which == "test" else self.train_mse
        if values is None:
            raise ValueError(f"curve: the log has no {which} loss")
        return which, values


def _pick(table: dict, keys, name):
    for k in keys:
        if k in table and table[k] is not None:
            return k
    return None


def _from_table(table: dict, source: str) -> LossLog:
    """A LossLog from a mapping of column name -> 1-d values (keys matched case-insensitively)."""
    low = {str(k).lower(): v for k, v in table.items()}
    tr, te, ep = _pick(low, _TRAIN_KEYS, "train"), _pick(low, _TEST_KEYS, "test"), _pick(low, _EPOCH_KEYS, "epoch")
    if tr is None and te is None:
        raise ValueError(f"log: no loss column found in {source!r} (looked for {', '.join(_TRAIN_KEYS + _TEST_KEYS)});"
                         f" columns: {sorted(low)}")
    curves = {k: np.asarray(low[k], dtype=float).ravel() for k in (tr, te) if k is not None}
    n = {v.size for v in curves.values()}
    if len(n) != 1:
        raise ValueError(f"log: the loss columns of {source!r} have different lengths {sorted(n)}")
    n = n.pop()
    epochs = np.arange(n, dtype=float) if ep is None else np.asarray(low[ep], dtype=float).ravel()
    return _checked(epochs, curves.get(tr), curves.get(te), source)


def _checked(epochs, train, test, source) -> LossLog:
    n = epochs.size
    if n < 2:
        raise ValueError(f"log: {source!r} must hold at least 2 log points, got {n}")
    for name, v in (("train", train), ("test", test)):
        if v is not None and v.size != n:
            raise ValueError(f"log: the {name} loss of {source!r} has {v.size} points, the epochs {n}")
    if not np.all(np.isfinite(epochs)) or np.any(np.diff(epochs) <= 0):
        raise ValueError(f"log: the epochs of {source!r} must be finite and strictly increasing")
    return LossLog(epochs, train, test, source)


def _read_csv(path: Path) -> dict:
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"log: {str(path)!r} has no data rows")
    cols = {}
    for key in rows[0]:
        try:
            cols[key.strip()] = [float(r[key]) if r[key] not in ("", None) else np.nan for r in rows]
        except ValueError:
            continue          # a text column (a run name ...) is skipped, never evaluated
    return cols


def _read_hdf5(path: Path):
    import h5py

    with h5py.File(path, "r") as f:
        if "results" in f:
            from ..io import list_results, load
            from ..results import registry

            logs = {k for k, c in registry().items() if k == "TrainingRun" or callable(getattr(c, "loss_log", None))}
            names = [e.name for e in list_results(path) if e.kind in logs and e.complete]
            if names:  # the last run with loss curves (a TrainingRun, or any result with .loss_log(seed))
                return load(path, names[-1])
        return {k: f[k][()] for k in f if isinstance(f[k], h5py.Dataset) and f[k].ndim <= 1}


def load_log(log, *, seed: int = 0) -> LossLog:
    """Loss curves from a TrainingRun, a file or a list of per-epoch dicts.

    Parameters
    ----------
    log : TrainingRun, LossLog, str or Path, dict or list of dict
        A phasetools run (``seed`` picks the seed); an ``.npz``, ``.csv`` or ``.h5``/``.hdf5``
        file of 1-d arrays (columns ``epoch``, ``train_mse``/``train_loss``/``loss``,
        ``test_mse``/``test_loss``/``val_loss``; an HDF5 phasetools store gives its last
        TrainingRun); a dict of such arrays; or a PyTorch-style list of per-epoch dicts.
        Column names are matched case-insensitively; without an epoch column the rows are
        epochs 0, 1, ...
    seed : int >= 0
        The seed (row) of a TrainingRun.

    Returns
    -------
    LossLog
    """
    from ..training import TrainingRun

    if isinstance(log, LossLog):
        return log
    if isinstance(log, TrainingRun):
        s = check_int(seed, "seed", 0)
        if s >= log.n_seeds:
            raise ValueError(f"seed must be < {log.n_seeds} (the run's seeds), got {seed}")
        test = None if log.test_mse is None else np.asarray(log.test_mse[s], float)
        return _checked(np.asarray(log.log_epochs, float), np.asarray(log.train_mse[s], float), test,
                        f"TrainingRun seed {s}")
    if isinstance(log, (str, Path)):
        path = Path(log)
        if not path.is_file():
            raise ValueError(f"log: no such file {str(path)!r}")
        suffix = path.suffix.lower()
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                return _from_table({k: z[k] for k in z.files if z[k].ndim <= 1}, str(path))
        if suffix == ".csv":
            return _from_table(_read_csv(path), str(path))
        if suffix in (".h5", ".hdf5"):
            got = _read_hdf5(path)
            return _from_table(got, str(path)) if isinstance(got, dict) else load_log(got, seed=seed)
        raise ValueError(f"log: file type must be .npz, .csv, .h5 or .hdf5, got {suffix!r}")
    if callable(getattr(log, "loss_log", None)):  # any run exposing its curves (phasetools.nonlinear.NonlinearRun)
        return _from_table(log.loss_log(check_int(seed, "seed", 0)), f"{type(log).__name__} seed {seed}")
    if isinstance(log, dict):
        return _from_table(log, "dict")
    if isinstance(log, (list, tuple)) and log and all(isinstance(r, dict) for r in log):
        keys = sorted({k for r in log for k in r})
        return _from_table({k: [float(r.get(k, np.nan)) for r in log] for k in keys}, "list of dicts")
    raise ValueError("log must be a TrainingRun, a LossLog, a .npz/.csv/.h5 path, a dict of arrays or a non-empty "
                     f"list of per-epoch dicts, got {type(log).__name__}")


@register
@dataclass(frozen=True, eq=False, repr=False)
class Plateaus(Result):
    """Plateaus and drops of one loss curve (the rule of :func:`find_plateaus`).

    Parameters
    ----------
    curve : str
        ``"test"`` or ``"train"``.
    tol, min_drop, abrupt : float
        The rule's band half-width (in ln loss), smallest drop (fraction of the level) and
        largest duration of an abrupt drop (fraction of the plateau before it).
    min_length, window : int
        Shortest plateau (epochs) and running-median window (log points).
    epochs, values : numpy.ndarray
        The curve.
    plateau_start, plateau_end, plateau_level, plateau_slope : numpy.ndarray
        Per plateau: first and last epoch in the band, median loss, and the fitted slope of
        ln loss per 1000 epochs (how flat).
    plateau_censored : numpy.ndarray
        True where the plateau lasts to the end of the log (its length is a lower bound).
    drop_epoch, drop_from, drop_to, drop_duration : numpy.ndarray
        Per drop after a plateau: the epoch at which the loss crosses the midpoint of the
        plateau level and the next level, the two levels, and the epochs from leaving the
        band to reaching the next level.
    drop_abrupt : numpy.ndarray
        True where the drop took at most ``abrupt`` times the plateau's length.
    """

    curve: str
    tol: float
    min_length: int
    window: int
    min_drop: float
    abrupt: float
    epochs: np.ndarray
    values: np.ndarray
    plateau_start: np.ndarray
    plateau_end: np.ndarray
    plateau_level: np.ndarray
    plateau_slope: np.ndarray
    plateau_censored: np.ndarray
    drop_epoch: np.ndarray
    drop_from: np.ndarray
    drop_to: np.ndarray
    drop_duration: np.ndarray
    drop_abrupt: np.ndarray

    _config_fields = ("curve", "tol", "min_length", "window", "min_drop", "abrupt")
    _dims: ClassVar[dict] = {"epochs": ("log",), "values": ("log",),
             **{k: ("plateau",) for k in ("plateau_start", "plateau_end", "plateau_level", "plateau_slope",
                                          "plateau_censored")},
             **{k: ("drop",) for k in ("drop_epoch", "drop_from", "drop_to", "drop_duration", "drop_abrupt")}}
    _units: ClassVar[dict] = {"epochs": "epochs", "values": "mse", "plateau_start": "epochs", "plateau_end": "epochs",
              "plateau_level": "mse", "plateau_slope": "1/kiloepoch", "drop_epoch": "epochs", "drop_from": "mse",
              "drop_to": "mse", "drop_duration": "epochs"}

    @property
    def n_plateaus(self) -> int:
        return int(self.plateau_start.size)

    def __repr__(self):
        return (f"Plateaus(curve={self.curve!r}, n_plateaus={self.n_plateaus}, n_drops={self.drop_epoch.size}, "
                f"levels={np.round(self.plateau_level, 4).tolist()})")


def _running_median(y, window):
    if window <= 1:
        return y.copy()
    h = window // 2
    return np.array([np.median(y[max(0, i - h): i + h + 1]) for i in range(y.size)])


def _bands(epochs, y, tol, min_length):
    """Index ranges [i, j] of the plateaus: from each start, the longest run inside a band of width 2 tol
    whose fitted linear drift over the run is at most tol (a steady decline is not a plateau)."""
    out, i, n = [], 0, y.size
    while i < n - 1:
        j, lo, hi = i, y[i], y[i]
        while j + 1 < n and max(hi, y[j + 1]) - min(lo, y[j + 1]) <= 2 * tol:
            j += 1
            lo, hi = min(lo, y[j]), max(hi, y[j])
        span = epochs[j] - epochs[i]
        if span >= min_length and abs(np.polyfit(epochs[i:j + 1], y[i:j + 1], 1)[0]) * span <= tol:
            out.append((i, j))
            i = j + 1
        else:
            i += 1
    return out


def find_plateaus(log, *, curve="auto", tol=0.03, min_length=200, window=5, min_drop=0.1, abrupt=0.1,
                  seed=0) -> Plateaus:
    """Plateaus (start, end, level, slope) and the drops between them in one loss curve.

    The rule: take ``ln`` of the loss and a running median over ``window`` log points; a
    plateau is a maximal run of log points, starting at the first point from which the
    smoothed curve stays inside a band of total width ``2 tol`` (about ±``tol`` relative)
    for at least ``min_length`` epochs and whose least-squares linear drift over the run is
    at most ``tol`` (a steady decline crosses the band and is not a plateau); the next
    search starts after its end. Two plateaus
    whose levels differ by less than ``min_drop`` (relative) are merged. After each
    plateau that does not reach the end, the loss falls to the next level (the next
    plateau's level, or the final loss); if it falls by at least ``min_drop`` of the level
    this is a drop: ``drop_epoch`` is where the raw curve first crosses the midpoint of the
    two levels, ``drop_duration`` the epochs from the plateau's end to the first point at
    the next level (within its band), and the drop is abrupt when that takes at most
    ``abrupt`` times the plateau's length. A plateau that lasts to the end is censored.

    Parameters
    ----------
    log : anything :func:`load_log` reads
        The training log.
    curve : {"auto", "test", "train"}
        The curve (``"auto"``: test if logged).
    tol : float > 0
        Band half-width in ``ln`` loss.
    min_length : int >= 1
        Shortest plateau, in epochs.
    window : int >= 1
        Running-median window, in log points (odd values centre it).
    min_drop : float in (0, 1)
        Smallest relative fall that counts as a drop (and separates two plateaus).
    abrupt : float > 0
        Largest drop duration, as a fraction of the plateau before it, called abrupt.
    seed : int >= 0
        The seed of a TrainingRun.

    Returns
    -------
    Plateaus
    """
    L = load_log(log, seed=seed)
    name, values = L.curve(curve)
    tol = check_scalar(tol, "tol", positive=True)
    min_length = check_int(min_length, "min_length", 1)
    window = check_int(window, "window", 1)
    min_drop = check_scalar(min_drop, "min_drop", positive=True)
    if min_drop >= 1:
        raise ValueError(f"min_drop must be in (0, 1), got {min_drop}")
    abrupt = check_scalar(abrupt, "abrupt", positive=True)
    ok = np.isfinite(values) & (values > 0)
    if ok.sum() < 2:
        raise ValueError("log: the curve needs at least 2 finite, positive loss values")
    ep, v = L.epochs[ok], values[ok]
    y = _running_median(np.log(v), window)
    bands = _merge(_bands(ep, y, tol, min_length), v, min_drop)
    plats = [_plateau(ep, y, v, i, j) for i, j in bands]
    drops = []
    for k, (i, j) in enumerate(bands):
        if j == ep.size - 1:
            continue
        nxt = bands[k + 1] if k + 1 < len(bands) else None
        d = _drop(ep, y, v, i, j, nxt, min_drop, abrupt, tol)
        if d is not None:
            drops.append(d)
    P = np.array(plats, dtype=float).reshape(-1, 4)
    D = np.array(drops, dtype=float).reshape(-1, 5)
    return Plateaus(name, tol, min_length, window, min_drop, abrupt, ep, v, P[:, 0], P[:, 1], P[:, 2], P[:, 3],
                    np.array([j == ep.size - 1 for _, j in bands], dtype=bool), D[:, 0], D[:, 1], D[:, 2], D[:, 3],
                    D[:, 4].astype(bool))


def _merge(bands, v, min_drop):
    out = []
    for i, j in bands:
        if out:
            pi, pj = out[-1]
            a, b = np.median(v[pi:pj + 1]), np.median(v[i:j + 1])
            if abs(a - b) < min_drop * max(a, b):
                out[-1] = (pi, j)
                continue
        out.append((i, j))
    return out


def _plateau(ep, y, v, i, j):
    e, s = ep[i:j + 1], y[i:j + 1]
    slope = float(np.polyfit(e, s, 1)[0] * 1000.0) if e.size >= 2 else 0.0
    return ep[i], ep[j], float(np.median(v[i:j + 1])), slope


def _drop(ep, y, v, i, j, nxt, min_drop, abrupt, tol):
    level = float(np.median(v[i:j + 1]))
    after = float(np.median(v[nxt[0]:nxt[1] + 1])) if nxt else float(np.median(v[-min(5, v.size - j - 1):]))
    if after > level * (1.0 - min_drop):
        return None
    mid = 0.5 * (level + after)
    cross = j + 1 + int(np.argmax(v[j + 1:] < mid)) if np.any(v[j + 1:] < mid) else v.size - 1
    reach = np.nonzero(y[j + 1:] <= np.log(after) + tol)[0]
    end = ep[j + 1 + reach[0]] if reach.size else ep[-1]
    duration = float(end - ep[j])
    return ep[cross], level, after, duration, duration <= abrupt * max(ep[j] - ep[i], 1.0)
