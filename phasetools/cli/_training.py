"""``phasetools train ...``: the paper's protocols (E1, E2, E4, E5) from the command line.

Every command builds the data from the paper's Gaussian teacher (``--eta``), runs the
protocol of :mod:`phasetools.training`, prints a summary table (or ``--json``) and appends
the result(s) to ``--out FILE.h5`` with the command line as provenance.
"""

from __future__ import annotations

import numpy as np


def _floats(text, name):
    from ._main import _floats as f
    return f(text, name)


def _ints(text, name):
    vals = _floats(text, name)
    if any(v != int(v) for v in vals):
        raise ValueError(f"{name} must be a comma-separated list of integers, got {text!r}")
    return [int(v) for v in vals]


def _betas(text, name):
    from ._main import _numbers
    return np.atleast_1d(np.asarray(_numbers(text, name), dtype=float))


def add_parser(sub):
    train = sub.add_parser("train", help="real SGD on deep linear networks: the paper's protocols E1, E2, E4, E5")
    tsub = train.add_subparsers(dest="train_command", metavar="SUBCOMMAND")

    def common(p, *, samples=512):
        p.add_argument("--eta", default="0.9,0.8", help="feature strengths (singular values of the teacher's "
                                                         "cross-covariance; default 0.9,0.8)")
        p.add_argument("--n-samples", type=int, default=samples,
                       help=f"training samples drawn from the teacher (default {samples}; 0 = population moments)")
        p.add_argument("--data-seed", type=int, default=1, help="seed of the training draw (default 1)")
        p.add_argument("--n-layers", type=int, default=3, help="number of weight matrices (default 3)")
        p.add_argument("--width", type=int, default=10, help="hidden width (default 10)")
        p.add_argument("--lr", type=float, default=0.08, help="learning rate (default 0.08)")
        p.add_argument("--n-seeds", type=int, default=8, help="independent runs (default 8)")
        p.add_argument("--seed", type=int, default=None, help="root seed of the runs (default: fresh, recorded)")
        p.add_argument("--quiet", action="store_true", help="no progress bar")
        p.add_argument("--json", action="store_true", help="print a JSON summary")
        p.add_argument("--out", metavar="FILE.h5", help="append the result(s) to this HDF5 file")

    p = tsub.add_parser("sweep", help="E1: quasi-static weight-decay sweep, re-converged at every value")
    common(p, samples=0)
    p.add_argument("--betas", default="0:0.46:47",
                   help="weight decays in sweep order: list or START:STOP:NUM (default 0:0.46:47, increasing; "
                        "reverse it for a decreasing sweep)")
    p.add_argument("--draws", type=int, default=1, help="finite-sample draws (data seeds data-seed, +1, ...)")
    p.add_argument("--batch-size", type=int, default=None, help="minibatch SGD instead of full-batch GD")
    p.add_argument("--epochs-per-step", type=int, default=None, help="SGD epochs per weight decay")
    p.add_argument("--tol", type=float, default=1e-8, help="full-batch convergence: gradient norm (default 1e-8)")
    p.set_defaults(handler=_sweep)

    p = tsub.add_parser("trap", help="E2: prepare a trapped checkpoint, release it at the target weight decay")
    common(p)
    p.add_argument("--target-beta", type=float, default=0.32, help="weight decay after the release (default 0.32)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--trap-betas", default=None,
                   help="weight decays of the preparation stages (the paper's rank-1 trap: 0,0.361; rank 0: 0,0.43)")
    g.add_argument("--trap-rank", type=int, default=None,
                   help="corrected trap: converge at 0, then midway between the draw's own spinodals so that "
                        "exactly this many modes stay learned")
    p.add_argument("--trap-epochs", default="2000,2000", help="epochs of each preparation stage (default 2000,2000)")
    p.add_argument("--batch-size", type=int, default=64, help="minibatch size (default 64)")
    p.add_argument("--epochs", type=int, default=20000, help="release epochs (default 20000)")
    p.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    p.set_defaults(handler=_trap)

    p = tsub.add_parser("arrhenius", help="E4: escape times from one checkpoint over a grid of lr and batch size")
    common(p)
    p.add_argument("--target-beta", type=float, default=0.32)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--trap-betas", default=None, help="preparation stages (default 0,0.361: the paper's rank-1 trap)")
    g.add_argument("--trap-rank", type=int, default=None, help="corrected trap (see `train trap --help`)")
    p.add_argument("--trap-epochs", default="2000,2000")
    p.add_argument("--lrs", default="0.0005,0.001,0.002,0.003,0.005", help="learning rates (default: the paper's)")
    p.add_argument("--batch-sizes", default="64", help="batch sizes (broadcast against --lrs)")
    p.add_argument("--epochs", type=int, default=20000)
    p.add_argument("--escape-to-rank", type=int, default=None,
                   help="rank the escape leads to (default: one more than the checkpoint's)")
    p.set_defaults(handler=_arrhenius)

    p = tsub.add_parser("sparse", help="E5: 25 of 5000 samples, beta 0.0025: escape against the residual seed")
    p.add_argument("--eta", default="0.9,0.8")
    p.add_argument("--pool-size", type=int, default=5000)
    p.add_argument("--n-train", type=int, default=25)
    p.add_argument("--test-size", type=int, default=10000)
    p.add_argument("--beta", type=float, default=0.0025)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--batch-sizes", default="64,5", help="64 (> n_train: full batch, the paper) and a B < N variant")
    p.add_argument("--trap-epochs", default="100,125,150,175,200,300",
                   help="preparation epochs (longer = smaller residual seed)")
    p.add_argument("--n-seeds", type=int, default=4)
    p.add_argument("--epochs", type=int, default=5000)
    p.add_argument("--n-layers", type=int, default=3)
    p.add_argument("--width", type=int, default=10)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--json", action="store_true")
    p.add_argument("--out", metavar="FILE.h5")
    p.set_defaults(handler=_sparse)
    return train


def _teacher(args):
    from ..training import GaussianTeacher
    return GaussianTeacher(_floats(args.eta, "eta"))


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

    from ..training import weight_decay_sweep
    teacher = _teacher(args)
    betas = _betas(args.betas, "betas")
    if args.draws < 1:
        raise ValueError(f"draws must be >= 1, got {args.draws}")
    root = np.random.SeedSequence(args.seed)
    results, rows = [], []
    for k, seq in enumerate(root.spawn(args.draws)):
        data = _data(args, teacher, k)
        mom = data if args.n_samples == 0 else data.moments()
        res = weight_decay_sweep(data, betas, n_layers=args.n_layers, width=args.width, lr=args.lr,
                                 n_seeds=args.n_seeds, batch_size=args.batch_size,
                                 epochs_per_step=args.epochs_per_step, tol=args.tol, test=teacher, rng=seq,
                                 quiet=args.quiet)
        sp = np.sort(th.critical_points(args.n_layers, mom.spectrum, mom.a, convention="paper").gamma_sp)
        results.append(res)
        rows.append({"draw": k, "spectrum": mom.spectrum, "spinodals": sp, "drops": res.drop_positions(),
                     "rank_first": res.rank[:, 0], "rank_last": res.rank[:, -1],
                     "converged": bool(res.converged.all()) if res.batch_size is None else None})
    names = _store(results, args)
    if args.json:
        _print({"direction": results[0].direction, "betas": betas, "draws": rows, "stored": names}, args)
        return
    lines = [f"E1 {results[0].direction} sweep, {betas.size} weight decays {betas[0]:g} .. {betas[-1]:g}, "
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
    stages = _floats(args.trap_epochs, "trap_epochs")
    if args.trap_rank is not None:
        tb = (0.0, trap_weight_decay(data, args.trap_rank, n_layers=args.n_layers))
    else:
        tb = tuple(_floats(args.trap_betas or "0,0.361", "trap_betas"))
    if len(stages) != len(tb):
        raise ValueError(f"trap_epochs needs one value per preparation stage ({len(tb)}), got {args.trap_epochs!r}")
    return tb, tuple(int(e) for e in stages)


def _trap(args):
    from ..training import trap_and_release
    teacher = _teacher(args)
    if args.n_samples < 1:
        raise ValueError("n_samples must be >= 1 for minibatch training")
    data = _data(args, teacher)
    tb, te = _trap_stages(args, data)
    res = trap_and_release(data, target_beta=args.target_beta, trap_betas=tb, trap_epochs=te, epochs=args.epochs,
                           n_layers=args.n_layers, width=args.width, lr=args.lr, batch_size=args.batch_size,
                           n_seeds=args.n_seeds, test=teacher.test_set(), dtype=args.dtype, rng=args.seed,
                           quiet=args.quiet)
    names = _store([res], args)
    summary = {"trap_betas": tb, "trap_epochs": te, "trap_rank": res.trap_rank, "trapped": res.trapped,
               "plateau_level": res.plateau_level, "target_level": res.target_level, "midpoint": res.midpoint,
               "escape_epoch_mse": res.escape_epoch_mse, "escaped_mse": res.escaped_mse,
               "escape_epoch_sv": res.escape_epoch_sv, "escaped_sv": res.escaped_sv,
               "seed_size": res.seed_size, "reference_epoch": res.reference_epoch, "stored": names}
    if args.json:
        _print(summary, args)
        return
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
        lines.append("no seed was trapped: the checkpoint already has the target rank (see science brief E2(c))")
    if names:
        lines.append(f"stored {', '.join(names)} in {args.out}")
    _print(lines, args)


def _arrhenius(args):
    from ..training import RANK_THRESHOLD, arrhenius_sweep, mse_levels, prepare_trap
    teacher = _teacher(args)
    if args.n_samples < 1:
        raise ValueError("n_samples must be >= 1 for minibatch training")
    data = _data(args, teacher)
    tb, te = _trap_stages(args, data)
    lrs = _floats(args.lrs, "lrs")
    bs = _ints(args.batch_sizes, "batch_sizes")
    root = np.random.SeedSequence(args.seed)
    s_trap, s_sweep = root.spawn(2)
    trap = prepare_trap(data, trap_betas=tb, trap_epochs=te, n_layers=args.n_layers, width=args.width, lr=args.lr,
                        batch_size=64, n_seeds=args.n_seeds, rng=s_trap)
    rank = int(np.median(np.sum(np.nan_to_num(trap.singular_values[:, -1]) > RANK_THRESHOLD, axis=1)))
    to = rank + 1 if args.escape_to_rank is None else args.escape_to_rank
    levels = mse_levels(data, args.target_beta, n_layers=args.n_layers, test=teacher.test_set())
    if not (0 <= to < levels.size) or to == rank or not np.isfinite(levels[[rank, to]]).all():
        raise ValueError(f"escape_to_rank: no state of rank {to} to escape to from rank {rank} at "
                         f"target_beta {args.target_beta:g} (test-MSE levels by rank: {np.round(levels, 4).tolist()})")
    sw = arrhenius_sweep(data, trap, lrs=lrs, batch_sizes=bs, target_beta=args.target_beta, epochs=args.epochs,
                         levels=(levels[rank], levels[to]), test=teacher.test_set(), rng=s_sweep, quiet=args.quiet)
    names = _store([trap, sw], args)
    fit = None
    try:
        fit = sw.fit("batch_size/lr")
    except ValueError:
        pass
    if args.json:
        _print({"trap_rank": rank, "escape_to_rank": to, "lr": sw.lr, "batch_size": sw.batch_size,
                "temperature": sw.temperature, "n_escaped": sw.n_escaped, "tau_epochs": sw.tau_epochs,
                "tau_time": sw.tau_time, "slope_batch_size_over_lr": None if fit is None else fit.slope,
                "stored": names}, args)
        return
    lines = [f"E4 from a rank-{rank} checkpoint (trap {tb}), escape to rank {to} at beta {args.target_beta:g}; "
             f"test-MSE levels {levels[rank]:.4f} -> {levels[to]:.4f}",
             f"{'lr':>8} {'B':>4} {'T_eff':>10} {'escaped':>8} {'tau (epochs)':>14} {'tau (lr*steps)':>15}"]
    for i in range(sw.lr.size):
        tau = (f"{sw.tau_epochs[i]:.4g}" if np.isfinite(sw.tau_epochs[i]) else f"> {sw.tau_epochs_low[i]:.4g}")
        tt = (f"{sw.tau_time[i]:.4g}" if np.isfinite(sw.tau_time[i]) else f"> {sw.tau_time_low[i]:.4g}")
        lines.append(f"{sw.lr[i]:>8g} {sw.batch_size[i]:>4d} {sw.temperature[i]:>10.3g} "
                     f"{int(sw.n_escaped[i]):>4d}/{sw.escaped.shape[1]:<3d} {tau:>14} {tt:>15}")
    lines.append("Arrhenius fit over batch_size/lr: " + ("fewer than two points with escapes (not testable)"
                                                          if fit is None else
                                                          f"slope {fit.slope:.4g} +- {fit.slope_stderr:.2g}"))
    if names:
        lines.append(f"stored {', '.join(names)} in {args.out}")
    _print(lines, args)


def _sparse(args):
    from ..training import sparse_grokking
    teacher = _teacher(args)
    res = sparse_grokking(teacher, pool_size=args.pool_size, n_train=args.n_train, test_size=args.test_size,
                          beta=args.beta, lr=args.lr, batch_sizes=_ints(args.batch_sizes, "batch_sizes"),
                          trap_epochs=_ints(args.trap_epochs, "trap_epochs"), n_seeds=args.n_seeds,
                          epochs=args.epochs, n_layers=args.n_layers, width=args.width, rng=args.seed,
                          quiet=args.quiet)
    names = _store([res], args)
    if args.json:
        _print({"trap_epochs": res.trap_epochs, "batch_size": res.batch_size, "seed_size": res.seed_size,
                "trapped": res.trapped, "escape_epoch": res.escape_epoch, "escaped": res.escaped,
                "stored": names}, args)
        return
    lines = [repr(res) + f"; trap at beta {res.trap_beta:.4g}",
             f"{'trap epochs':>11} {'B':>4} {'full batch':>10} {'seed':>10} {'escape epoch':>13}"]
    for i in np.lexsort((res.run_seed, res.batch_size, res.trap_epochs)):
        ep = ("not trapped" if not res.trapped[i] else
              (f"{res.escape_epoch[i]}" if res.escaped[i] else f"> {res.epochs}"))
        lines.append(f"{res.trap_epochs[i]:>11d} {res.batch_size[i]:>4d} {str(bool(res.full_batch[i])):>10} "
                     f"{res.seed_size[i]:>10.3g} {ep:>13}")
    if names:
        lines.append(f"stored {', '.join(names)} in {args.out}")
    _print(lines, args)
