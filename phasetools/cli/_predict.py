"""``phasetools predict``: the predicted escape or plateau time of a training set-up, before training.

    phasetools predict escape --weight-decay 0.35 --lr 0.1 --batch-size 8:40:5
    phasetools predict plateau --n-samples 25 --weight-decay 0.0025 --lr 0.1 --seed-size 0.01,0.03
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from ._args import command_group, count, one_value, values

__all__ = ["add_parser"]


def add_parser(sub):
    """Add ``predict`` and its subcommands (escape, plateau) to ``sub``.

    Parameters
    ----------
    sub : argparse subparsers
        The top-level subcommands of ``phasetools``.

    Returns
    -------
    argparse.ArgumentParser
        The ``predict`` parser (subcommands escape and plateau).
    """
    pred, psub = command_group(sub, "predict", "predicted escape / plateau times of a training set-up (no training)")
    p = psub.add_parser("escape", help="(a) mean SGD escape time of the weakest metastable mode (with replacement)")
    _data(p, samples=512)
    p.add_argument("--width", type=count("width", minimum=1), default=10, help="hidden width (default 10)")
    p.add_argument("--weight-decay", required=True, help="SGD weight decay (paper convention)")
    p.add_argument("--lr", default="0.1", help="learning rate(s): one value, a list or a range (default 0.1)")
    p.add_argument("--batch-size", default="8", help="batch size(s): one value, a list or a range (default 8)")
    p.add_argument("--sampling", choices=["replacement", "full", "shuffle"], default="replacement",
                   help="the sampler (shuffle: prediction (b), a reduced simulation of up to 64 seeds, stopped "
                        "at 45 escapes; default replacement)")
    p.add_argument("--moments", choices=["data", "gaussian"], default="data",
                   help="per-sample noise from the draw's fourth moments or from Isserlis' theorem (default data)")
    p.add_argument("--coupling", action=argparse.BooleanOptionalAction, default=True,
                   help="include the stronger mode's cross noise (--no-coupling: leave it out)")
    p.set_defaults(handler=_escape)
    p = psub.add_parser("plateau", help="(d) full-batch epochs for mode 2 to grow from a residual seed")
    _data(p, samples=25)
    p.add_argument("--weight-decay", required=True, help="SGD weight decay of the release (paper convention)")
    p.add_argument("--lr", default="0.1", help="learning rate (default 0.1)")
    p.add_argument("--seed-size", required=True, help="per-layer seed value(s) of mode 2 (a list: one prediction each)")
    p.add_argument("--threshold", default="1e-3", help="end-to-end value that ends the plateau (default 1e-3)")
    p.set_defaults(handler=_plateau)
    return pred


def _data(p, *, samples):
    p.add_argument("--eta", default="0.9,0.8", help="feature strengths of the teacher (default 0.9,0.8)")
    p.add_argument("--n-samples", type=count("n_samples", minimum=2), default=samples,
                   help=f"training samples drawn from the teacher (default {samples})")
    p.add_argument("--data-seed", type=count("data_seed"), default=1, help="seed of the training draw (default 1)")
    p.add_argument("--n-layers", type=count("n_layers", minimum=2), default=3, help="weight matrices (default 3)")
    p.add_argument("--json", action="store_true", help="print JSON")


def _draw(args):
    from ..training import GaussianTeacher
    return GaussianTeacher(values(args.eta, name="eta")).sample(args.n_samples, rng=args.data_seed)


def _escape(args):
    from ..results import to_jsonable
    from ..training import predict_escape
    data = _draw(args)
    wd = one_value(args.weight_decay, name="weight_decay")   # a list was cut to its first value
    lrs = values(args.lr, name="lr")
    bs = values(args.batch_size, kind=int, name="batch_size")
    rows = []
    for lr in lrs:
        for B in bs:
            t0 = time.perf_counter()
            p = predict_escape(data, n_layers=args.n_layers, width=args.width, weight_decay=wd, lr=lr, batch_size=B,
                               sampling=args.sampling, moments=args.moments, coupling=args.coupling)
            rows.append((p, time.perf_counter() - t0))
    if args.json:
        print(json.dumps([dict(to_jsonable(p.to_dict()), seconds=s) for p, s in rows]))
        return
    p0 = rows[0][0]
    print(f"prediction {'(b)' if p0.sampling == 'shuffle' else '(a)'}: {p0.sampling}, moments={p0.moments}, coupled={p0.coupled}, weight decay {wd:g}, "
          f"barrier {p0.barrier:.4g} (paper units), N = {p0.n_samples}")
    print(f"{'lr':>8} {'B':>5} {'tau epochs':>12} {'tau steps':>12} {'tau time':>12} {'T_eff':>10} "
          f"{'isotropic epochs':>17} {'s':>6}")
    for p, s in rows:
        print(f"{p.lr:8.4g} {p.batch_size:5d} {p.tau_epochs:12.4g} {p.tau_steps:12.4g} {p.tau_time:12.4g} "
              f"{p.temperature:10.3g} {p.tau_isotropic_epochs:17.3g} {s:6.3f}")
    print("assumptions:\n  - " + "\n  - ".join(p0.assumptions.splitlines()))


def _plateau(args):
    from ..results import to_jsonable
    from ..training import predict_plateau
    data = _draw(args)
    wd = one_value(args.weight_decay, name="weight_decay")
    lr = one_value(args.lr, name="lr")
    thr = one_value(args.threshold, name="threshold")
    out = [predict_plateau(data, s, n_layers=args.n_layers, weight_decay=wd, lr=lr, mode=1, threshold=thr)
           for s in values(args.seed_size, name="seed_size")]
    if args.json:
        print(json.dumps([to_jsonable(p.to_dict()) for p in out]))
        return
    print(f"prediction (d): full-batch plateau of mode 2, weight decay {wd:g}, lr {lr:g}, threshold {thr:g}")
    print(f"{'seed':>10} {'tau epochs':>12} {'tau time':>12}")
    for p in out:
        print(f"{float(np.exp(np.mean(np.log(p.seed)))):10.4g} {p.tau_epochs:12.5g} {p.tau_time:12.5g}")
    print("assumptions:\n  - " + "\n  - ".join(out[0].assumptions.splitlines()))
