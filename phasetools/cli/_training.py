"""``phasetools train ...``: the paper's protocols (E1, E2, E4, E5) from the command line.

Every command builds the data from the paper's Gaussian teacher (``--eta``), runs the
protocol of :mod:`phasetools.training`, prints a summary table (or ``--json``) and appends
the result(s) to ``--out FILE.h5`` with the command line as provenance. The documented
defaults are the paper's values (the library functions have none): lr 0.08, batch size 64,
weight decay 0.32, the rank-1 trap (0, 0.361). Flags that take several values take one
value, a list ``a,b`` or a range ``START:STOP:NUM`` (``--weight-decay 0:0.46:47``).
"""

from __future__ import annotations

import numpy as np

from .._progress import plus_minus
from ._args import command_group, count, one_value, values

#: The paper's network and optimiser (E1, E2, E4).
PAPER = dict(n_layers=3, width=10, lr=0.08, batch_size=64, target_weight_decay=0.32,
             trap_weight_decays="0,0.361", trap_epochs="2000,2000")


def add_parser(sub):
    """Add ``train`` and its subcommands (sweep, trap, arrhenius, sparse) to ``sub``.

    Parameters
    ----------
    sub : argparse subparsers
        The top-level subcommands, to which ``train`` is added.

    Returns
    -------
    argparse.ArgumentParser
        The ``train`` parser (subcommands sweep, trap, arrhenius and sparse).
    """
    train, tsub = command_group(sub, "train", "real SGD on deep linear networks: the paper's protocols E1, E2, E4, E5")
    _sweep_parser(tsub)
    _trap_parser(tsub)
    _arrhenius_parser(tsub)
    _sparse_parser(tsub)
    return train


def _common(p, *, samples=512, lr=True):
    p.add_argument("--eta", default="0.9,0.8", help="feature strengths (singular values of the teacher's "
                                                     "cross-covariance; default 0.9,0.8)")
    p.add_argument("--n-samples", type=count("n_samples"), default=samples,
                   help=f"training samples drawn from the teacher (default {samples}; 0 = population moments)")
    p.add_argument("--data-seed", type=count("data_seed"), default=1, help="seed of the training draw (default 1)")
    p.add_argument("--n-layers", type=count("n_layers"), default=PAPER["n_layers"], help="number of weight matrices (default 3)")
    p.add_argument("--width", type=count("width"), default=PAPER["width"], help="hidden width (default 10)")
    if lr:
        p.add_argument("--lr", default=str(PAPER["lr"]), help="learning rate (default 0.08, the paper's)")
    p.add_argument("--n-seeds", type=count("n_seeds"), default=8, help="independent runs (default 8)")
    _output(p)


def _output(p):
    p.add_argument("--seed", type=count("seed"), default=None, help="root seed of the runs (default: fresh, recorded)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.add_argument("--out", metavar="FILE.h5", help="append the result(s) to this HDF5 file")


def _trap_flags(p):
    p.add_argument("--target-weight-decay", default=str(PAPER["target_weight_decay"]),
                   help="weight decay after the release (default 0.32, the paper's)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--trap-weight-decay", default=None,
                   help="weight decays of the preparation stages (default 0,0.361: the paper's rank-1 trap; "
                        "rank 0: 0,0.43)")
    g.add_argument("--trap-rank", type=count("trap_rank"), default=None,
                   help="corrected trap: converge at 0, then midway between the draw's own spinodals so that "
                        "exactly this many modes stay learned")
    p.add_argument("--trap-epochs", default=PAPER["trap_epochs"],
                   help="epochs of each preparation stage (default 2000,2000)")


def _sweep_parser(tsub):
    p = tsub.add_parser("sweep", help="E1: quasi-static weight-decay sweep, re-converged at every value")
    _common(p, samples=0)
    p.add_argument("--weight-decay", default="0:0.46:47",
                   help="weight decays in sweep order: list or START:STOP:NUM (default 0:0.46:47, increasing; "
                        "reverse it for a decreasing sweep)")
    p.add_argument("--n-draws", type=count("n_draws"), default=1, help="finite-sample draws (data seeds data-seed, +1, ...)")
    p.add_argument("--batch-size", type=count("batch_size"), default=None, help="minibatch SGD instead of full-batch GD")
    p.add_argument("--epochs-per-step", type=count("epochs_per_step"), default=200,
                   help="SGD epochs per weight decay with --batch-size (default 200)")
    p.add_argument("--tol", type=float, default=1e-8, help="full-batch convergence: gradient norm (default 1e-8)")
    p.set_defaults(handler=_sweep)


def _trap_parser(tsub):
    p = tsub.add_parser("trap", help="E2: prepare a trapped checkpoint, release it at the target weight decay")
    _common(p)
    _trap_flags(p)
    p.add_argument("--batch-size", default=str(PAPER["batch_size"]), help="minibatch size (default 64)")
    p.add_argument("--epochs", type=count("epochs"), default=20000, help="release epochs (default 20000)")
    p.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    p.set_defaults(handler=_trap)


def _arrhenius_parser(tsub):
    p = tsub.add_parser("arrhenius", help="E4: escape times from one checkpoint over a grid of lr and batch size")
    _common(p, lr=False)
    _trap_flags(p)
    p.add_argument("--trap-lr", default=str(PAPER["lr"]), help="learning rate of the preparation (default 0.08)")
    p.add_argument("--lr", default="0.0005,0.001,0.002,0.003,0.005",
                   help="learning rates of the release (default: the paper's 0.0005,0.001,0.002,0.003,0.005)")
    p.add_argument("--batch-size", default=str(PAPER["batch_size"]),
                   help="batch sizes of the release (default 64; broadcast against --lr)")
    p.add_argument("--epochs", type=count("epochs"), default=20000)
    p.add_argument("--escape-to-rank", type=count("escape_to_rank"), default=None,
                   help="rank the escape leads to (default: one more than the checkpoint's)")
    p.add_argument("--sampling", choices=["shuffle", "replacement", "full"], default="shuffle",
                   help="minibatch sampler of the release: random reshuffling (default, one pass over a permutation "
                        "per epoch), with replacement, or full batch")
    p.add_argument("--criterion", choices=["test_mse", "rank"], default="test_mse",
                   help="escape rule: the test MSE crossing the midpoint of the levels (default) or the escaping "
                        "mode's end-to-end singular value below its MSE-midpoint value (rank; counts real escapes "
                        "under reshuffling, where the test MSE dips in short excursions)")
    p.set_defaults(handler=_arrhenius)


def _sparse_parser(tsub):
    p = tsub.add_parser("sparse", help="E5: 25 of 5000 samples, weight decay 0.0025: escape against the residual "
                                       "seed")
    p.add_argument("--eta", default="0.9,0.8")
    p.add_argument("--pool-size", type=count("pool_size"), default=5000)
    p.add_argument("--n-train", type=count("n_train"), default=25)
    p.add_argument("--test-size", type=count("test_size"), default=10000)
    p.add_argument("--weight-decay", default="0.0025", help="weight decay of the release (default 0.0025)")
    p.add_argument("--lr", default="0.1", help="learning rate (default 0.1)")
    p.add_argument("--batch-size", default="64,5", help="64 (> n_train: full batch, the paper) and a B < N variant")
    p.add_argument("--trap-epochs", default="100,125,150,175,200,300",
                   help="preparation epochs (longer = smaller residual seed)")
    p.add_argument("--n-seeds", type=count("n_seeds"), default=4)
    p.add_argument("--epochs", type=count("epochs"), default=5000)
    p.add_argument("--log-every", type=count("log_every"), default=5)
    p.add_argument("--n-layers", type=count("n_layers"), default=3)
    p.add_argument("--width", type=count("width"), default=10)
    _output(p)
    p.set_defaults(handler=_sparse)


def _check_sizes(args, *, epochs=0, n_points=1, d=2):
    """Refuse, before any training, runs whose weights and logs cannot fit in memory.

    Parameters
    ----------
    args : argparse.Namespace
        The command's flags (``n_seeds``, ``width``, ``n_layers``, optional ``log_every``).
    epochs : int
        Epochs of the longest stage (logged every ``log_every``).
    n_points : int
        Runs kept at once (weight decays of a sweep, lr points of an Arrhenius grid).
    d : int
        Input and output dimension (the number of teacher modes).
    """
    from .._validation import check_memory

    n, h, s = args.n_layers, args.width, args.n_seeds
    n_par = 2 * h * d + max(n - 2, 0) * h * h
    n_log = epochs // max(getattr(args, "log_every", 1) or 1, 1) + 2
    check_memory(8 * s * n_points * (6 * n_par + n_log * (5 + d + n * h)),
                 f"training n_seeds = {s} network(s) of width {h} and n_layers = {n} for epochs = {epochs}")


def _check_batch_fits(args, batch_sizes, flag="--batch-size", advice=None):
    """Refuse a batch larger than the samples, naming the flags (the API's advice, ``drop_last=False``, is no flag).

    Parameters
    ----------
    args : argparse.Namespace
        The command's flags (``n_samples``; 0 means population moments and is not checked).
    batch_sizes : list of int
        The batch sizes the command will train with.
    flag : str
        What sets them, for the message.
    advice : str, optional
        What to do instead (default: ``"use a smaller FLAG or a larger --n-samples"``).
    """
    big = [b for b in batch_sizes if args.n_samples > 0 and b > args.n_samples]
    if big:
        advice = f"use a smaller {flag} or a larger --n-samples" if advice is None else advice
        raise ValueError(f"{flag} must be <= --n-samples = {args.n_samples} (an epoch of minibatches would have no "
                         f"step), got {','.join(str(b) for b in big)}; {advice}")


def _teacher(args):
    from ..training import GaussianTeacher
    return GaussianTeacher(values(args.eta, name="eta"))


def _data(args, teacher, offset=0):
    if args.n_samples < 0:
        raise ValueError(f"n_samples must be >= 0 (0 = population moments), got {args.n_samples}")
    return teacher.moments if args.n_samples == 0 else teacher.sample(args.n_samples, rng=args.data_seed + offset)


def _store(results, args):
    if not args.out:
        return []
    from ..io import save_many
    return save_many(results, args.out, command=args.command_line)


def _print(obj_or_lines, args):
    if args.json:
        import json

        from ..results import to_jsonable
        print(json.dumps(to_jsonable(obj_or_lines)))
    else:
        print("\n".join(obj_or_lines))


def _sweep(args):
    import phasetools.theory as th

    from ..training import as_moments, weight_decay_sweep
    teacher = _teacher(args)
    wds = np.asarray(values(args.weight_decay, name="weight_decay"))
    _check_sizes(args, epochs=args.epochs_per_step, n_points=wds.size, d=max(teacher.d_in, teacher.d_out))
    if args.n_draws < 1:
        raise ValueError(f"n_draws must be >= 1, got {args.n_draws}")
    _check_batch_fits(args, [] if args.batch_size is None else [args.batch_size])
    root = np.random.SeedSequence(args.seed)
    results, rows = [], []
    for k, seq in enumerate(root.spawn(args.n_draws)):
        data = _data(args, teacher, k)
        mom = as_moments(data)
        res = weight_decay_sweep(data, wds, n_layers=args.n_layers, width=args.width,
                                 lr=one_value(args.lr, name="lr"), n_seeds=args.n_seeds, batch_size=args.batch_size,
                                 epochs_per_step=args.epochs_per_step if args.batch_size is not None else None,
                                 tol=args.tol, test=teacher, rng=seq, quiet=args.quiet)
        sp = np.sort(th.critical_points(args.n_layers, mom.spectrum, mom.a, convention="paper").gamma_sp)
        results.append(res)
        rows.append({"draw": k, "spectrum": mom.spectrum, "spinodals": sp, "drops": res.drop_positions(),
                     "rank_first": res.rank[:, 0], "rank_last": res.rank[:, -1],
                     "converged": bool(res.converged.all()) if res.batch_size is None else None})
    names = _store(results, args)
    if args.json:
        _print({"direction": results[0].direction, "weight_decays": wds, "draws": rows, "stored": names}, args)
        return
    lines = [f"E1 {results[0].direction} sweep, {wds.size} weight decays {wds[0]:g} .. {wds[-1]:g}, "
             f"{args.n_seeds} seeds, " + ("population moments" if args.n_samples == 0 else
                                          f"N = {args.n_samples}")]
    for r in rows:
        drops = "; ".join(f"seed {s}: " + ", ".join("-" if np.isnan(b) else f"{b:g}" for b in d)
                          for s, d in enumerate(r["drops"]))
        lines.append(f"draw {r['draw']}: spectrum {np.round(r['spectrum'], 4).tolist()}, spinodals "
                     f"{np.round(r['spinodals'], 4).tolist()}, rank {r['rank_first'].tolist()} -> "
                     f"{r['rank_last'].tolist()}, first weight decay without the mode: {drops}")
    if names:
        lines.append(f"stored {', '.join(names)} in {args.out}")
    _print(lines, args)


def _trap_stages(args, data):
    from ..training import trap_weight_decay
    stages = values(args.trap_epochs, kind=int, name="trap_epochs")
    if args.trap_rank is not None:
        tb = (0.0, trap_weight_decay(data, args.trap_rank, n_layers=args.n_layers))
    else:
        tb = tuple(values(args.trap_weight_decay or PAPER["trap_weight_decays"], name="trap_weight_decay"))
    if len(stages) != len(tb):
        raise ValueError(f"trap_epochs needs one value per preparation stage ({len(tb)}), got {args.trap_epochs!r}")
    return tb, tuple(stages)


def _trap(args):
    from ..training import trap_and_release
    teacher = _teacher(args)
    _check_sizes(args, epochs=max([args.epochs, *values(args.trap_epochs, kind=int, name="trap_epochs")]))
    if args.n_samples < 1:
        raise ValueError("n_samples must be >= 1 for minibatch training")
    _check_batch_fits(args, [one_value(args.batch_size, kind=int, name="batch_size")])
    data = _data(args, teacher)
    tb, te = _trap_stages(args, data)
    target = one_value(args.target_weight_decay, name="target_weight_decay")
    res = trap_and_release(data, target_weight_decay=target, trap_weight_decays=tb, trap_epochs=te,
                           epochs=args.epochs, n_layers=args.n_layers, width=args.width,
                           lr=one_value(args.lr, name="lr"), batch_size=one_value(args.batch_size, kind=int,
                                                                                 name="batch_size"),
                           n_seeds=args.n_seeds, test=teacher.test_set(), dtype=args.dtype, rng=args.seed,
                           quiet=args.quiet)
    names = _store([res], args)
    summary = {"trap_weight_decays": tb, "trap_epochs": te, "trap_rank": res.trap_rank, "trapped": res.trapped,
               "plateau_level": res.plateau_level, "target_level": res.target_level, "midpoint": res.midpoint,
               "escape_epoch_mse": res.escape_epoch_mse, "escaped_mse": res.escaped_mse,
               "escape_epoch_sv": res.escape_epoch_sv, "escaped_sv": res.escaped_sv,
               "seed_size": res.seed_size, "reference_epoch": res.reference_epoch, "stored": names}
    if args.json:
        _print(summary, args)
        return
    _print(_trap_lines(res, tb, te) + ([f"stored {', '.join(names)} in {args.out}"] if names else []), args)


def _trap_lines(res, tb, te):
    lines = [repr(res),
             f"trap: {' -> '.join(f'{b:g} ({e} epochs)' for b, e in zip(tb, te))}; rank {res.trap_rank.tolist()}; "
             f"trapped {int(res.trapped.sum())} of {res.n_seeds}; residual seed (per-layer singular value "
             f"{res.sv_index + 1}) median {np.median(res.seed_size):.3g}",
             f"test MSE: plateau {res.plateau_level:.4f}, target {res.target_level:.4f}, midpoint {res.midpoint:.4f}",
             f"reference runs from fresh weights cross the midpoint after {np.median(res.reference_epoch):g} epochs "
             f"(median)"]
    if res.trapped.any():
        fit = res.fit()
        tau = f"{fit.tau:.4g} epochs" if fit.tau is not None else f"> {fit.tau_lower:.4g} epochs (all censored)"
        lines.append(f"escape (test-MSE midpoint): {fit.n_escaped} of {fit.n} escaped; tau {tau}")
    else:
        lines.append("no seed was trapped: the checkpoint already has the target rank")
    return lines


def _arrhenius(args):
    from ..training import RANK_THRESHOLD, arrhenius_sweep, mse_levels, prepare_trap
    teacher = _teacher(args)
    _check_sizes(args, epochs=max([args.epochs, *values(args.trap_epochs, kind=int, name="trap_epochs")]),
                 n_points=len(values(args.lr, name="lr")))
    if args.n_samples < 1:
        raise ValueError("n_samples must be >= 1 for minibatch training")
    data = _data(args, teacher)
    tb, te = _trap_stages(args, data)
    target = one_value(args.target_weight_decay, name="target_weight_decay")
    lrs = values(args.lr, name="lr")
    bs = values(args.batch_size, kind=int, name="batch_size")
    _check_batch_fits(args, bs)
    _check_batch_fits(args, [PAPER["batch_size"]], flag="the trap's batch size (the paper's)",
                      advice="it has no flag: use a larger --n-samples")
    root = np.random.SeedSequence(args.seed)
    s_trap, s_sweep = root.spawn(2)
    trap = prepare_trap(data, trap_weight_decays=tb, trap_epochs=te, n_layers=args.n_layers, width=args.width,
                        lr=one_value(args.trap_lr, name="trap_lr"), batch_size=PAPER["batch_size"],
                        n_seeds=args.n_seeds, rng=s_trap)
    rank = int(np.median(np.sum(np.nan_to_num(trap.singular_values[:, -1]) > RANK_THRESHOLD, axis=1)))
    to = rank + 1 if args.escape_to_rank is None else args.escape_to_rank
    levels = mse_levels(data, target, n_layers=args.n_layers, test=teacher.test_set())
    if not (0 <= to < levels.size) or to == rank or not np.isfinite(levels[[rank, to]]).all():
        raise ValueError(f"escape_to_rank: no state of rank {to} to escape to from rank {rank} at "
                         f"target_weight_decay {target:g} (test-MSE levels by rank: "
                         f"{np.round(levels, 4).tolist()})")
    sw = arrhenius_sweep(data, trap, lr=lrs, batch_size=bs, target_weight_decay=target, epochs=args.epochs,
                         levels=(levels[rank], levels[to]), test=teacher.test_set(), sampling=args.sampling,
                         criterion=args.criterion, rng=s_sweep, quiet=args.quiet)
    names = _store([trap, sw], args)
    fit = None
    try:
        fit = sw.fit("batch_size/lr")
    except ValueError:
        pass
    if args.json:
        _print({"trap_rank": rank, "escape_to_rank": to, "sampling": sw.sampling, "criterion": sw.criterion,
                "n_escaped_mse": None if sw.escaped_mse is None else sw.escaped_mse.sum(axis=1),
                "tau_epochs_mse": None if sw.escaped_mse is None else sw.tau_epochs_of("test_mse"), "lr": sw.lr,
                "batch_size": sw.batch_size,
                "temperature": sw.temperature, "n_escaped": sw.n_escaped, "tau_epochs": sw.tau_epochs,
                "tau_time": sw.tau_time, "slope_batch_size_over_lr": None if fit is None else fit.slope,
                "stored": names}, args)
        return
    lines = [f"E4 from a rank-{rank} checkpoint (trap {tb}), escape to rank {to} at weight decay {target:g}; "
             f"test-MSE levels {levels[rank]:.4f} -> {levels[to]:.4f}; sampler {sw.sampling!r}; "
             f"escape rule {sw.criterion!r}"]
    lines += _arrhenius_table(sw, fit)
    if sw.escaped_mse is not None:
        lines += [f"test-MSE midpoint rule on the same releases: lr {a:g}, B {b}: {int(k)}/{sw.escaped.shape[1]} "
                  "escaped" + (f", tau {t:.4g} epochs" if np.isfinite(t) else "") for a, b, k, t in
                  zip(sw.lr, sw.batch_size, sw.escaped_mse.sum(axis=1), sw.tau_epochs_of("test_mse"))]
    if names:
        lines.append(f"stored {', '.join(names)} in {args.out}")
    _print(lines, args)


def _arrhenius_table(sw, fit):
    lines = [f"{'lr':>8} {'B':>4} {'T_eff':>10} {'escaped':>8} {'tau (epochs)':>14} {'tau (lr*steps)':>15}"]
    for i in range(sw.lr.size):
        tau = (f"{sw.tau_epochs[i]:.4g}" if np.isfinite(sw.tau_epochs[i]) else f"> {sw.tau_epochs_low[i]:.4g}")
        tt = (f"{sw.tau_time[i]:.4g}" if np.isfinite(sw.tau_time[i]) else f"> {sw.tau_time_low[i]:.4g}")
        lines.append(f"{sw.lr[i]:>8g} {sw.batch_size[i]:>4d} {sw.temperature[i]:>10.3g} "
                     f"{int(sw.n_escaped[i]):>4d}/{sw.escaped.shape[1]:<3d} {tau:>14} {tt:>15}")
    lines.append("Arrhenius fit over batch_size/lr: " + ("fewer than two points with escapes (not testable)"
                                                          if fit is None else
                                                          f"slope {plus_minus(fit.slope, fit.slope_stderr, sep=' +- ')}"))
    return lines


def _sparse(args):
    from ..training import sparse_grokking
    teacher = _teacher(args)
    _check_sizes(args, epochs=args.epochs, n_points=len(values(args.trap_epochs, kind=int, name="trap_epochs")))
    res = sparse_grokking(teacher, pool_size=args.pool_size, n_train=args.n_train, test_size=args.test_size,
                          weight_decay=one_value(args.weight_decay, name="weight_decay"),
                          lr=one_value(args.lr, name="lr"), batch_size=values(args.batch_size, kind=int,
                                                                              name="batch_size"),
                          trap_epochs=values(args.trap_epochs, kind=int, name="trap_epochs"), n_seeds=args.n_seeds,
                          epochs=args.epochs, n_layers=args.n_layers, width=args.width, log_every=args.log_every,
                          rng=args.seed, quiet=args.quiet)
    names = _store([res], args)
    if args.json:
        _print({"trap_epochs": res.trap_epochs, "batch_size": res.batch_size, "seed_size": res.seed_size,
                "trapped": res.trapped, "escape_epoch": res.escape_epoch, "escaped": res.escaped,
                "stored": names}, args)
        return
    lines = [repr(res) + f"; trap at weight decay {res.trap_weight_decay:.4g}",
             f"{'trap epochs':>11} {'B':>4} {'full batch':>10} {'seed':>10} {'escape epoch':>13}"]
    for i in np.lexsort((res.run_seed, res.batch_size, res.trap_epochs)):
        ep = ("not trapped" if not res.trapped[i] else
              (f"{res.escape_epoch[i]}" if res.escaped[i] else f"> {res.epochs}"))
        lines.append(f"{res.trap_epochs[i]:>11d} {res.batch_size[i]:>4d} {str(bool(res.full_batch[i])):>10} "
                     f"{res.seed_size[i]:>10.3g} {ep:>13}")
    if names:
        lines.append(f"stored {', '.join(names)} in {args.out}")
    _print(lines, args)
