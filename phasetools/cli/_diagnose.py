"""``phasetools diagnose LOG``: plateaus of a training log and, with weights and data, what holds the
network there (docs/diagnose.md).

    phasetools diagnose run.h5                                   # a stored TrainingRun: log, weights, data
    phasetools diagnose log.csv --weights ckpt.npz --data data.npz --weight-decay 0.258 --lr 0.08 --batch-size 64
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._args import count

__all__ = ["add_parser"]


def add_parser(sub):
    """Add ``diagnose`` to ``sub``.

    Parameters
    ----------
    sub : argparse subparsers
        The top-level subcommands.

    Returns
    -------
    argparse.ArgumentParser
        The ``diagnose`` parser.
    """
    p = sub.add_parser("diagnose", help="plateaus of a training log; with weights and data, the state, the barrier "
                                        "and the cure")
    p.add_argument("log", metavar="LOG", help="training log: .npz, .csv or .h5 of arrays (epoch, train/test loss) or "
                                              "a phasetools store holding a TrainingRun")
    p.add_argument("--weights", metavar="CKPT", help="weights: .npz of per-layer arrays (a state_dict of nn.Linear "
                                                     "weights saved as arrays)")
    p.add_argument("--data", metavar="FILE.npz", help="training samples: .npz with arrays X (N, d_in) and Y (N, d_out)")
    p.add_argument("--eta", default=None, help="instead of --data: the Gaussian teacher's feature strengths, e.g. 0.9,0.8")
    p.add_argument("--n-samples", type=count("n_samples"), default=512,
                   help="with --eta: samples drawn (default 512; 0 = population moments)")
    p.add_argument("--data-seed", type=count("data_seed"), default=1, help="with --eta: seed of the draw (default 1)")
    p.add_argument("--weight-decay", type=float, default=None, help="the run's weight decay (default: the run's)")
    p.add_argument("--lr", type=float, default=None, help="the run's learning rate (default: the run's, else 0.1)")
    p.add_argument("--batch-size", type=count("batch_size"), default=None, help="the run's batch size")
    p.add_argument("--convention", choices=["canonical", "paper"], default=None,
                   help="units of --weight-decay (default: the run's, else paper)")
    p.add_argument("--seed", type=count("seed"), default=0, help="the seed (row) of a stored run (default 0)")
    p.add_argument("--curve", choices=["auto", "test", "train"], default="auto", help="the loss curve (default auto)")
    p.add_argument("--tol", type=float, default=0.03, help="plateau band half-width in ln loss (default 0.03)")
    p.add_argument("--min-length", type=count("min_length"), default=200, help="shortest plateau, epochs (default 200)")
    p.add_argument("--min-drop", type=float, default=0.1, help="smallest relative drop (default 0.1)")
    p.add_argument("--plot", metavar="FILE.png", help="write the figure")
    p.add_argument("--json", action="store_true", help="print one JSON object with the result's fields")
    p.add_argument("--out", metavar="FILE.h5", help="also append the result to this HDF5 file")
    p.add_argument("--name", help="name of the stored result (default: <kind>_NNNN)")
    p.set_defaults(handler=_diagnose)
    return p


def _stored_run(path: Path):
    if path.suffix.lower() not in (".h5", ".hdf5") or not path.is_file():
        return None
    import h5py

    try:
        with h5py.File(path, "r") as f:
            if "results" not in f:
                return None
    except OSError as exc:   # h5py's own message names neither the flag nor the file
        raise ValueError(f"LOG: {str(path)!r} is not a readable HDF5 file (truncated or corrupt?): {exc}") from None
    from ..io import list_results, load

    names = [e.name for e in list_results(path) if e.kind == "TrainingRun" and e.complete]
    return load(path, names[-1]) if names else None


def _data(args):
    from ..training import Dataset, GaussianTeacher

    if args.data and args.eta:
        raise ValueError("give --data or --eta, not both")
    if args.data:
        with np.load(args.data, allow_pickle=False) as z:
            if "X" not in z.files or "Y" not in z.files:
                raise ValueError(f"--data: {args.data!r} must hold arrays X and Y, has {z.files}")
            return Dataset(z["X"], z["Y"])
    if args.eta:
        from ._args import values

        t = GaussianTeacher(tuple(values(args.eta, name="eta")))
        return t.moments if args.n_samples == 0 else t.sample(args.n_samples, rng=args.data_seed)
    return None


def _diagnose(args):
    from .. import nonlinear  # noqa: F401  (registers NonlinearRun: a stored nonlinear run's curves load too)
    from ..diagnose import diagnose, plot_diagnosis

    log = Path(args.log)
    if not log.is_file():
        raise ValueError(f"LOG: no such file {args.log!r}")
    run = _stored_run(log)
    weights = args.weights if args.weights else None
    data = _data(args)
    if weights is not None and data is None and run is None:
        raise ValueError("--weights needs the data: give --data X,Y.npz or --eta")
    opts = {"curve": args.curve, "tol": args.tol, "min_length": args.min_length, "min_drop": args.min_drop}
    d = diagnose(run if run is not None else log, weights, data, weight_decay=args.weight_decay, lr=args.lr,
                 batch_size=args.batch_size, convention=args.convention, seed=args.seed, plateau_options=opts)
    if args.plot:
        plot_diagnosis(d, args.plot, run=run)
    where = None
    if args.out:
        from ..io import save

        where = f"stored as {save(d, args.out, name=args.name, command=args.command_line)} in {args.out}"
    if args.json:
        print(d.to_json())
        return
    print(d.summary)
    p = d.plateaus
    for k in range(p.n_plateaus):
        print(f"plateau {k + 1}: epochs {p.plateau_start[k]:g}-{p.plateau_end[k]:g}"
              f"{' (to the end)' if p.plateau_censored[k] else ''}, level {p.plateau_level[k]:.4g}, "
              f"slope {p.plateau_slope[k]:.2g} per 1000 epochs")
    for k in range(p.drop_epoch.size):
        print(f"drop {k + 1}: epoch {p.drop_epoch[k]:g}, {p.drop_from[k]:.4g} -> {p.drop_to[k]:.4g} in "
              f"{p.drop_duration[k]:g} epochs{' (abrupt)' if p.drop_abrupt[k] else ''}")
    if where:
        print(where)
