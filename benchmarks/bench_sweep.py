"""Cost of one append to a sweep file, early in a sweep and late in it.

A sweep writes each batch of finished tasks as one new small file beside the sweep file
(``<file>.parts/NNNNNNNN.h5``, atomic: temporary file, fsync, rename) and folds the batches
into the file once, at the end. This benchmark checks that an append costs the same
whether the sweep holds 10 tasks or 10 000, and compares it with the previous scheme,
which copied the whole file for every append (copy, add the group, fsync, rename).

Workload: small results (a float, an int and 8 draws, the shape of the sweep tests'
probe), one task per append. Two sweeps are built: *early*, holding 10 tasks, and *late*,
holding ``N - 10`` tasks appended one by one (``N`` = 10 000; 1 000 with ``--quick``). Then
``--rounds`` rounds each time one append to *early* and one to *late*, interleaved, so that
changes of machine load hit both alike; the table gives the median append time of each and
the median of the per-round ratios late/early. The copy-on-append scheme is measured the
same way on a file of 10 and one of ``N`` tasks (built in one write). Finally the one-time
fold of the ``N`` batch files into the sweep file is timed.

    python benchmarks/bench_sweep.py            # N = 10 000 (several minutes)
    python benchmarks/bench_sweep.py --quick    # N = 1 000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from phasetools.io import atomic_update, init_file, provenance, write_result_group
from phasetools.results import Result, register
from phasetools.sweep._store import SweepFile


@register
@dataclass(frozen=True, eq=False, repr=False)
class BenchProbe(Result):
    """A small task result."""

    x: float
    k: int
    draws: np.ndarray

    _config_fields = ("x", "k")


def _result(i: int) -> BenchProbe:
    gen = np.random.default_rng(i)
    return BenchProbe(x=float(i), k=8, draws=gen.normal(size=8), seeds=(0, i))


def _sweep(folder: Path, name: str, n_tasks: int) -> SweepFile:
    params = [f'{{"i":{i}}}' for i in range(n_tasks)]
    store = SweepFile(folder / name, {"function": "bench:task", "seed": 1, "n_tasks": n_tasks, "params": params})
    store.acquire()
    store.create()
    return store


def _append(store: SweepFile, i: int) -> float:
    t0 = time.perf_counter()
    store.write([(i, _result(i), 1, 0.0)], [])
    return time.perf_counter() - t0


def _copy_append(path: Path, i: int, prov: dict) -> float:
    """The previous scheme: copy the whole file, add the group, fsync, rename."""
    t0 = time.perf_counter()
    with atomic_update(path) as tmp, h5py.File(tmp, "a") as f:
        write_result_group(f["results"], f"task-{i:06d}", _result(i), prov)
    return time.perf_counter() - t0


def _copy_file(path: Path, n: int, prov: dict) -> None:
    with atomic_update(path, copy=False) as tmp, h5py.File(tmp, "w") as f:
        init_file(f, prov)
        root = f.create_group("results")
        for i in range(n):
            write_result_group(root, f"task-{i:06d}", _result(i), prov)


def _interleaved(early, late, rounds):
    a, b = [], []
    for r in range(rounds):
        first, second = (early, late) if r % 2 == 0 else (late, early)
        t1, t2 = first(r), second(r)
        a.append(t1 if first is early else t2)
        b.append(t2 if first is early else t1)
    ratio = statistics.median(y / x for x, y in zip(a, b))
    return statistics.median(a), statistics.median(b), ratio


def main(argv=None) -> int:
    """Run the benchmark and print its table.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments (``--quick``, ``--rounds``).

    Returns
    -------
    int
        The exit status.
    """
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="N = 1 000 appends instead of 10 000")
    ap.add_argument("--rounds", type=int, default=40, help="interleaved early/late appends measured")
    args = ap.parse_args(argv)
    n = 1_000 if args.quick else 10_000
    rounds = args.rounds
    prov = provenance("bench_sweep")
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        folder = Path(tmp)
        early = _sweep(folder, "early.h5", 10 + rounds)
        late = _sweep(folder, "late.h5", n + rounds)
        for i in range(10):
            _append(early, i)
        t0 = time.perf_counter()
        fill = [_append(late, i) for i in range(n - 10)]
        t_fill = time.perf_counter() - t0
        e, l, ratio = _interleaved(lambda r: _append(early, 10 + r), lambda r: _append(late, n - 10 + r), rounds)
        print(f"sweep appends (one small task per append), N = {n}, {rounds} interleaved rounds")
        print(f"  building the late sweep: {n - 10} appends in {t_fill:.1f} s; median of appends 1-100 "
              f"{statistics.median(fill[:100]) * 1e3:.1f} ms, of the last 100 {statistics.median(fill[-100:]) * 1e3:.1f} ms")
        print(f"  batch files:    append #{10 + 1}-{10 + rounds} median {e * 1e3:7.1f} ms   "
              f"append #{n - 9}-{n - 10 + rounds} median {l * 1e3:7.1f} ms   late/early {ratio:.2f}")
        c_early, c_late = folder / "copy_early.h5", folder / "copy_late.h5"
        _copy_file(c_early, 10, prov)
        _copy_file(c_late, n, prov)
        ce, cl, cratio = _interleaved(lambda r: _copy_append(c_early, 10 + r, prov),
                                      lambda r: _copy_append(c_late, n + r, prov), rounds)
        print(f"  copy on append: file of 10 tasks median {ce * 1e3:7.1f} ms   file of {n} tasks median "
              f"{cl * 1e3:7.1f} ms   late/early {cratio:.2f}  (size {c_late.stat().st_size / 1e6:.1f} MB)")
        t0 = time.perf_counter()
        late.consolidate()
        print(f"  folding the {n + rounds - 10} batch files into the sweep file at its end (once): "
              f"{time.perf_counter() - t0:.1f} s")
        early.release()
        late.release()
    return 0


if __name__ == "__main__":
    sys.exit(main())
