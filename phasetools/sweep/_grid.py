"""Task grids: parameter dictionaries, their canonical JSON form, and per-task seeds."""

from __future__ import annotations

import itertools
import json
import math
import numbers

import numpy as np

__all__ = ["product", "task_seed", "check_grid", "check_seed", "canonical_json"]


def product(**axes) -> list[dict]:
    """Every combination of the given parameter values, the last axis varying fastest.

    ``product(gamma=[0.1, 0.2], n_layers=[2, 3])`` gives four tasks, in the order
    ``(0.1, 2), (0.1, 3), (0.2, 2), (0.2, 3)``. Each axis is a non-empty list, tuple or
    1-D array; numpy scalars become Python numbers.

    Parameters
    ----------
    **axes : list, tuple or 1-D array
        One non-empty axis of values per parameter name.

    Returns
    -------
    list of dict
        One ``{name: value}`` per combination.
    """
    if not axes:
        raise ValueError("product needs at least one parameter axis, e.g. product(gamma=[0.1, 0.2])")
    names, values = [], []
    for name, axis in axes.items():
        if isinstance(axis, (str, bytes, dict)) or not hasattr(axis, "__iter__"):
            raise ValueError(f"axis {name!r} must be a list, tuple or 1-D array of values, got {axis!r}")
        items = np.asarray(axis).tolist() if isinstance(axis, np.ndarray) else list(axis)
        if isinstance(axis, np.ndarray) and axis.ndim != 1:
            raise ValueError(f"axis {name!r} must be 1-D, got an array of shape {axis.shape}")
        if not items:
            raise ValueError(f"axis {name!r} is empty; every axis needs at least one value")
        names.append(name)
        values.append(items)
    return [dict(zip(names, combo)) for combo in itertools.product(*values)]


def task_seed(seed: int, index: int) -> np.random.SeedSequence:
    """The seed of task ``index`` of a sweep with seed ``seed``.

    Equal to ``numpy.random.SeedSequence(seed).spawn(n)[index]``: it depends only on the
    sweep seed and the task's index, never on the executor, the number of workers or the
    order in which tasks complete. ``fn(**params, rng=task_seed(seed, i))`` replays task i.

    Parameters
    ----------
    seed : int >= 0
        The sweep's seed.
    index : int >= 0
        The task's index in the sweep.

    Returns
    -------
    numpy.random.SeedSequence
    """
    return np.random.SeedSequence(entropy=int(seed), spawn_key=(int(index),))


def check_seed(seed) -> int | None:
    """None (fresh entropy is drawn later) or an int >= 0."""
    if seed is None:
        return None
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral) or int(seed) < 0:
        raise ValueError(f"seed must be None or an integer >= 0, got {seed!r}")
    return int(seed)


def _canonical(value, where):
    """A JSON-able copy of ``value`` (numpy scalars to Python, tuples to lists)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        v = float(value)
        if not math.isfinite(v):
            raise ValueError(f"{where} must be finite (NaN and inf cannot be stored as JSON), got {value!r}")
        return v
    if isinstance(value, np.ndarray):
        return _canonical(value.tolist(), where)
    if isinstance(value, (list, tuple)):
        return [_canonical(v, f"{where}[{k}]") for k, v in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValueError(f"{where} must have string keys, got {k!r}")
            out[k] = _canonical(v, f"{where}[{k!r}]")
        return out
    raise ValueError(f"{where} must be JSON-able (bool, int, float, str, None, or lists and dicts of them), "
                     f"got a {type(value).__name__}")


def canonical_json(params: dict) -> str:
    return json.dumps(params, sort_keys=True, allow_nan=False, separators=(",", ":"))


def check_grid(grid) -> tuple[list[dict], list[str]]:
    """The task parameter dictionaries and their canonical JSON strings.

    ``grid`` is a sequence of dicts (one per task) or a dict of axes (expanded with
    :func:`product`).
    """
    if isinstance(grid, dict):
        grid = product(**grid)
    if isinstance(grid, (str, bytes)) or not hasattr(grid, "__iter__"):
        raise ValueError(f"grid must be a list of parameter dicts (one per task) or a dict of axes, "
                         f"got {grid!r}")
    tasks = list(grid)
    if not tasks:
        raise ValueError("grid must hold at least one task")
    out_json = []
    for i, params in enumerate(tasks):
        if not isinstance(params, dict):
            raise ValueError(f"grid[{i}] must be a dict of parameters, got {type(params).__name__}")
        if "rng" in params:
            raise ValueError(f"grid[{i}] must not hold 'rng': each task's rng is derived from the sweep seed")
        for k in params:
            if not isinstance(k, str) or not k.isidentifier():
                raise ValueError(f"grid[{i}] keys must be parameter names (identifiers), got {k!r}")
        out_json.append(canonical_json(_canonical(params, f"grid[{i}]")))
    return tasks, out_json
