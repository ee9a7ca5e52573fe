"""``phasetools rare escape`` and ``phasetools rare train``: mean escape times by adaptive multilevel splitting.

``escape``: one AMS estimate per temperature (``--temperature`` or ``--barrier-ratio`` =
dU/T) of an escape problem (``phasetools.langevin.escape_problem``), printed beside the
theory, each appended to ``--out FILE.h5`` with the command line as provenance; ``--plot
PREFIX`` writes ``PREFIX_tau.png`` (ln tau against dU/T with the theory) and
``PREFIX_levels.png`` (the AMS levels and ``P(reach level)`` of the deepest point).

``train``: the same over real minibatch SGD (``phasetools.rare.ams_training_escape``) of
the width-1 chain on a Gaussian teacher's samples, from the balanced learned state (``bwd``)
or the trapped start (``fwd``) of ``escape_problem("chain", ...)`` to its stop level.

Both take ``--n-workers N`` (a process pool), ``--scheduler tcp://HOST:PORT`` (a running Dask
cluster) or ``--dask-workers N`` (a local one) for the AMS runs, with the same result.
"""

from __future__ import annotations

import contextlib
import re
import sys
import warnings

import numpy as np

from .._dask import DASK_INSTALL_HINT, connect
from ._args import command_group, count, values


def add_parser(sub):
    """Register ``phasetools rare`` and its subcommands.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The top-level subcommands.

    Returns
    -------
    argparse.ArgumentParser
        The ``rare`` parser.
    """
    rare, rsub = command_group(sub, "rare", "rare events: escape times far beyond brute force (adaptive "
                                            "multilevel splitting)")
    p = rsub.add_parser("escape", help="mean escape time of an escape problem by AMS, against theory")
    p.add_argument("--model", choices=["chain", "network", "reduced", "double_well"], default="double_well",
                   help="the escape problem (default double_well)")
    p.add_argument("--n-layers", type=count("n_layers"), default=3, help="number of weight matrices n (default 3)")
    p.add_argument("--c", type=float, default=1.0, help="mode signal E[xy] (the paper's eta; default 1)")
    p.add_argument("--gamma", type=float, default=None, help="coupling (the weight decay in the paper convention)")
    p.add_argument("--a", type=float, default=1.0, help="input variance (default 1)")
    p.add_argument("--width", type=count("width"), default=1, help="hidden width for --model network (default 1)")
    p.add_argument("--direction", choices=["fwd", "bwd"], default="fwd", help="fwd (default) or bwd escape")
    p.add_argument("--convention", choices=["canonical", "paper"], default="canonical")
    p.add_argument("--temperature", help="temperature(s): a number, a list or START:STOP:NUM")
    p.add_argument("--barrier-ratio", help="dU/T value(s) instead of --temperature (T = barrier / value)")
    p.add_argument("--dt", type=float, default=0.01, help="time step (default 0.01)")
    p.add_argument("--n-replicas", type=count("n_replicas", minimum=2), default=100, help="replicas per run (100)")
    p.add_argument("--n-kill", type=count("n_kill", minimum=1), default=5, help="killed per iteration (default 5)")
    p.add_argument("--n-runs", type=count("n_runs", minimum=2), default=20, help="independent AMS runs (default 20)")
    p.add_argument("--n-walkers", type=count("n_walkers", minimum=1), default=50, help="loop walkers (default 50)")
    p.add_argument("--n-rounds", type=count("n_rounds", minimum=2), default=10, help="loops per walker (default 10)")
    p.add_argument("--start", type=float, default=None, help="start level A of the order parameter (with --level)")
    p.add_argument("--level", type=float, default=None, help="intermediate level Sigma (with --start)")
    p.add_argument("--seed", type=count("seed"), default=None, help="root seed (default: fresh entropy, recorded)")
    p.add_argument("--n-threads", type=count("n_threads", minimum=1), default=None, help="numba threads")
    p.add_argument("--plot", metavar="PREFIX", help="write PREFIX_tau.png (ln tau against dU/T with the theory) and "
                                                     "PREFIX_levels.png (AMS levels of the lowest temperature)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--out", metavar="FILE.h5", help="also append each result to this HDF5 file")
    p.add_argument("--keep-paths", action="store_true", help="keep the reactive trajectories in the result")
    _add_executor(p)
    p.set_defaults(handler=_escape)
    _add_train(rsub)
    return rare


def _add_executor(p):
    """``--n-workers``, ``--scheduler`` and ``--dask-workers``: where the AMS runs go (see :func:`_dask_scheduler`).

    Parameters
    ----------
    p : argparse.ArgumentParser
        A ``rare`` subcommand.

    Returns
    -------
    None
    """
    p.add_argument("--n-workers", type=count("n_workers", minimum=1), default=1,
                   help="processes for the AMS runs (default 1; same result for any number)")
    d = p.add_mutually_exclusive_group()
    d.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run the AMS runs on the Dask scheduler at tcp://HOST:PORT (same result as locally)")
    d.add_argument("--dask-workers", type=count("dask_workers", minimum=1), default=None,
                   help="start a local Dask cluster with N worker processes for the AMS runs")


def _add_train(rsub):
    p = rsub.add_parser("train", help="mean escape time of real minibatch SGD (width-1 chain, Gaussian teacher) by "
                                      "AMS, in epochs")
    p.add_argument("--n-layers", type=count("n_layers", minimum=2), default=3, help="weight matrices n (default 3)")
    p.add_argument("--eta", type=float, default=0.8, help="the teacher's feature strength (default 0.8)")
    p.add_argument("--n-samples", type=count("n_samples", minimum=1), default=512, help="samples (default 512)")
    p.add_argument("--data-seed", type=count("data_seed"), default=1, help="seed of the samples (default 1)")
    p.add_argument("--lr", type=float, default=0.08, help="learning rate (default 0.08)")
    p.add_argument("--batch-size", type=count("batch_size", minimum=1), default=4, help="batch size (default 4)")
    p.add_argument("--weight-decay", type=float, default=0.32, help="SGD weight decay (default 0.32)")
    p.add_argument("--sampling", choices=["replacement", "shuffle"], default="replacement")
    p.add_argument("--convention", choices=["canonical", "paper"], default="paper")
    p.add_argument("--direction", choices=["fwd", "bwd"], default="bwd", help="bwd (default): from the learned state")
    p.add_argument("--target", type=float, default=None,
                   help="level of the top singular value that ends an escape (default: the chain problem's stop)")
    p.add_argument("--coordinate", default="sv1", metavar="NAME",
                   help="the AMS score: sv<k> (default sv1, the top singular value) or sharpness / sharpness<k> "
                        "(bwd only: ln of the fall of the mode's singular value, or the rise of its curvature "
                        "h relative to the start's h0, whichever is further; for escapes that go up before they "
                        "fall; docs/rare.md)")
    p.add_argument("--start", type=float, default=None, help="start level A of the coordinate (with --level)")
    p.add_argument("--level", type=float, default=None, help="intermediate level Sigma (with --start)")
    p.add_argument("--n-replicas", type=count("n_replicas", minimum=2), default=50, help="replicas per run (50)")
    p.add_argument("--n-kill", type=count("n_kill", minimum=1), default=5, help="killed per iteration (default 5)")
    p.add_argument("--n-runs", type=count("n_runs", minimum=2), default=20, help="independent AMS runs (default 20)")
    p.add_argument("--n-walkers", type=count("n_walkers", minimum=1), default=50, help="loop walkers (default 50)")
    p.add_argument("--n-rounds", type=count("n_rounds", minimum=2), default=4, help="loops per walker (default 4)")
    p.add_argument("--keep-paths", action="store_true", help="keep the reactive trajectories in the result")
    p.add_argument("--method", choices=["ams", "kick"], default="ams",
                   help="ams (default), or kick: importance sampling of the minibatch that kicks the network out of "
                        "its well (rare.kick_escape; --direction bwd; docs/rare.md)")
    p.add_argument("--well", default=None, metavar="LO,HI",
                   help="kick: the well in the top singular value (default: 0.2 up to where lr times the mode's "
                        "Gauss-Newton curvature of the balanced chain is 0.7)")
    p.add_argument("--n-chains", type=count("n_chains", minimum=2), default=40, help="kick: QSD chains (default 40)")
    p.add_argument("--kick", type=float, default=1.0, help="kick: the aimed lr * curvature after a kick (default 1)")
    p.add_argument("--continuation", choices=["trainer", "tilted", "kicks"], default="trainer",
                   help="kick: how the committor after the exit step is estimated: trainer (default, plain runs), "
                        "tilted, or kicks (routes of several kicks, split; replacement only; docs/rare.md)")
    p.add_argument("--thin", type=count("thin", minimum=1), default=None,
                   help="kick: SGD steps between the QSD states used (default: 32 with replacement; with "
                        "--sampling shuffle the smallest value >= 32 coprime to the steps per epoch, 33 for 128; "
                        "shuffle refuses a value sharing a factor with it)")
    p.add_argument("--n-continue", type=count("n_continue", minimum=1), default=None,
                   help="kick: continuation runs per post-kick state (default 4 with replacement, 256 shuffled)")
    p.add_argument("--seed", type=count("seed"), default=None, help="root seed (default: fresh entropy, recorded)")
    p.add_argument("--n-threads", type=count("n_threads", minimum=1), default=None, help="numba threads")
    p.add_argument("--plot", metavar="PREFIX", help="write PREFIX_levels.png (AMS levels and P(reach level))")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--out", metavar="FILE.h5", help="also append the result to this HDF5 file")
    _add_executor(p)
    p.set_defaults(handler=_train, method_flag_defaults={dest: p.get_default(dest) for dest, _ in
                                                         _AMS_ONLY + _KICK_ONLY})


# flags that only one --method of ``rare train`` reads (dest, flag): refused with the other method
# when given a value other than their default, rather than silently ignored
_AMS_ONLY = (("coordinate", "--coordinate"), ("start", "--start"), ("level", "--level"),
             ("n_replicas", "--n-replicas"), ("n_kill", "--n-kill"), ("n_runs", "--n-runs"),
             ("n_walkers", "--n-walkers"), ("n_rounds", "--n-rounds"), ("keep_paths", "--keep-paths"),
             ("plot", "--plot"), ("n_workers", "--n-workers"), ("scheduler", "--scheduler"),
             ("dask_workers", "--dask-workers"))
_KICK_ONLY = (("well", "--well"), ("n_chains", "--n-chains"), ("kick", "--kick"),
              ("continuation", "--continuation"), ("thin", "--thin"), ("n_continue", "--n-continue"))


def _refuse_other_method_flags(args):
    """Refuse a flag that ``--method`` does not read, given with a value other than its default.

    Parameters
    ----------
    args : argparse.Namespace
        ``rare train``'s arguments (``method`` and ``method_flag_defaults``).

    Returns
    -------
    None

    Raises
    ------
    ValueError
        Naming the first such flag and the method that reads it.
    """
    other, unused = ("kick", _KICK_ONLY) if args.method == "ams" else ("ams", _AMS_ONLY)
    for dest, flag in unused:
        if getattr(args, dest) != args.method_flag_defaults[dest]:
            raise ValueError(f"{flag} is only read by --method {other}, got it with --method {args.method}")


def _train(args):
    from .._validation import check_positive, check_scalar
    from ..langevin import escape_problem
    from ..rare import AMSOptions
    from ..training import GaussianTeacher

    _refuse_other_method_flags(args)
    check_positive(args.eta, "eta")   # named as the flags (the chain problem calls them c and gamma)
    check_scalar(args.weight_decay, "weight_decay")
    if args.target is not None:   # a top singular value is >= 0: a level <= 0 is never crossed (the run would hang)
        check_scalar(args.target, "target", positive=True)
    if re.fullmatch(r"sharpness\d*", args.coordinate) and args.direction != "bwd":
        # the API's message names its own values (direction 'down'/'up'), which are no flags here
        raise ValueError(f"--coordinate {args.coordinate} needs --direction bwd (it scores escapes from the learned "
                         f"state), got --direction {args.direction}")
    problem = escape_problem("chain", n_layers=args.n_layers, c=args.eta, gamma=args.weight_decay,
                             direction=args.direction, convention=args.convention)
    data = GaussianTeacher([args.eta]).sample(args.n_samples, rng=args.data_seed)
    target = problem.stop.level if args.target is None else args.target
    if args.method == "kick":
        return _kick_train(args, problem, data, target)
    opts = AMSOptions(n_replicas=args.n_replicas, n_kill=args.n_kill, n_runs=args.n_runs, n_walkers=args.n_walkers,
                      n_rounds=args.n_rounds, keep_paths=args.keep_paths)
    with _dask_scheduler(args) as scheduler, _runtime_warnings_as_lines():
        res = _ams_train(args, problem, data, target, opts, scheduler)
    if res.p == 0:
        print("phasetools: warning: no AMS run reached the target (every run died out), so tau is not bounded "
              "above: raise --n-replicas or --n-runs", file=sys.stderr)
    _train_report(args, res, target)


@contextlib.contextmanager
def _runtime_warnings_as_lines(prefix=""):
    """Print each RuntimeWarning raised inside as one line ``phasetools: warning: PREFIX...`` on
    stderr (after the block); other warnings are issued again, unchanged, to the filters outside.

    Parameters
    ----------
    prefix : str
        Put before each message (e.g. which temperature it belongs to).

    Returns
    -------
    contextlib.AbstractContextManager
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        yield
    for w in caught:
        if issubclass(w.category, RuntimeWarning):
            print(f"phasetools: warning: {prefix}{w.message}", file=sys.stderr)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)


def _ams_train(args, problem, data, target, opts, scheduler):
    from ..rare import ams_training_escape

    return ams_training_escape(data, [np.full((1, 1), v) for v in problem.x0], n_layers=args.n_layers, width=1,
                              lr=args.lr, batch_size=args.batch_size, weight_decay=args.weight_decay, target=target,
                              direction="down" if problem.stop.direction == "down" else "up",
                              sampling=args.sampling, convention=args.convention, coordinate=args.coordinate,
                              start=args.start,
                              level=args.level, options=opts, rng=args.seed, n_threads=args.n_threads,
                              progress=not args.quiet, n_workers=args.n_workers, scheduler=scheduler)


def _kick_train(args, problem, data, target):
    """``phasetools rare train --method kick``: :func:`phasetools.rare.kick_escape` on the chain."""
    from ..io import save
    from ..rare import KickOptions, kick_escape
    from ..training import resolve_training_convention

    if args.direction != "bwd":
        raise ValueError(f"--method kick estimates backward escapes (the catapult route): --direction must be bwd, "
                         f"got {args.direction}")
    if args.well is None:
        n, kappa = args.n_layers, resolve_training_convention(args.convention, 1).kappa
        x = np.asarray(data[0] if isinstance(data, tuple) else data.X)
        top = (0.7 / (2 * kappa * n * args.lr * np.mean(x**2))) ** (n / (2 * (n - 1)))
        well = (0.2, float(top))
    else:
        parts = args.well.split(",")
        if len(parts) != 2 or any(not t.strip() for t in parts):   # values() would skip an empty item
            raise ValueError(f"--well must be two numbers LO,HI, got {args.well!r}")
        well = tuple(float(v) for v in values(args.well, name="well"))
    with _runtime_warnings_as_lines():
        res = kick_escape(data, [np.full((1, 1), v) for v in problem.x0], n_layers=args.n_layers, width=1,
                          lr=args.lr, batch_size=args.batch_size, weight_decay=args.weight_decay, target=target,
                          well=well, sampling=args.sampling, convention=args.convention, rng=args.seed,
                          n_threads=args.n_threads,
                          options=KickOptions(n_chains=args.n_chains, kick=args.kick, continuation=args.continuation,
                                              thin=args.thin, n_continue=args.n_continue))
    names = [save(res, args.out, command=args.command_line)] if args.out else []
    row = {"tau_epochs": res.tau, "tau_lower": res.tau_lower, "tau_upper": res.tau_upper, "k": res.k,
           "target": target, "well": list(well), "top_share": res.top_share, "cost_steps": res.cost["total"],
           "wall_time": res.stats["wall_seconds"]}
    row.update(thin=res.options["thin"], n_continue=res.options["n_continue"], continuation=args.continuation)
    _print_train(args, row, names, args.sampling, f"kick estimator, well {well[0]:.3g}-{well[1]:.3g}",
                 f"top share {res.top_share:.2f}")


def _train_report(args, res, target):
    names = []
    if args.out:
        from ..io import save

        names.append(save(res, args.out, command=args.command_line))
    if args.plot:
        from ..rare import level_figure

        level_figure(res, f"{args.plot}_levels.png")
    row = {"tau_epochs": res.tau, "tau_lower": res.tau_lower, "tau_upper": res.tau_upper, "p": res.p,
           "target": target, "coordinate": args.coordinate, "cost_steps": res.cost["total"],
           "wall_time": res.stats["wall_time"]}
    _print_train(args, row, names, args.sampling, f"AMS score {args.coordinate}", f"p = {res.p:.3g}")


def _print_train(args, row, names, sampling, method, figure):
    """Print ``rare train``'s result: one JSON object (``--json``) or two lines, then where it was stored.

    Parameters
    ----------
    args : argparse.Namespace
        ``json``, ``lr``, ``batch_size``, ``weight_decay``, ``direction`` and ``out``.
    row : dict
        ``tau_epochs``, ``tau_lower``, ``tau_upper``, ``target``, ``cost_steps``, ``wall_time`` and
        the method's own entries (all in the JSON object).
    names : list of str
        Names the result was stored under in ``args.out``.
    sampling, method, figure : str
        The minibatch sampling, the method (in the header's parentheses) and the method's
        figure of merit (after the interval).

    Returns
    -------
    None
    """
    if args.json:
        import json

        from ..results import to_jsonable

        print(json.dumps(to_jsonable({**row, "stored": names})))
        return
    print(f"SGD escape (lr {args.lr:g}, B {args.batch_size}, weight decay {args.weight_decay:g}, {sampling}) "
          f"{args.direction} to top singular value {row['target']:.4g} ({method}):")
    print(f"  tau = {row['tau_epochs']:.4g} epochs  [{row['tau_lower']:.4g}, {row['tau_upper']:.4g}]  {figure}  "
          f"steps {row['cost_steps']:.2e}  wall {row['wall_time']:.1f}s")
    if names:
        print(f"stored {', '.join(names)} in {args.out}")


def _temperatures(args, barrier):
    if (args.temperature is None) == (args.barrier_ratio is None):
        raise ValueError("give exactly one of --temperature and --barrier-ratio")
    if args.temperature is not None:
        return [float(t) for t in values(args.temperature, name="temperature")]
    from .._validation import check_positive

    ratios = values(args.barrier_ratio, name="barrier_ratio")
    check_positive(ratios, "barrier_ratio")   # dU/T: 0, negative or inf would divide into a T that is no temperature
    return [barrier / float(r) for r in ratios]


def _escape(args):
    from ..langevin import escape_problem
    from ..rare import AMSOptions, escape_time

    kw = {} if args.model == "double_well" else {"n_layers": args.n_layers, "c": args.c, "gamma": args.gamma,
                                                  "a": args.a, "convention": args.convention}
    if args.model == "network":
        kw["width"] = args.width
    problem = escape_problem(args.model, direction=args.direction, **kw)
    opts = AMSOptions(n_replicas=args.n_replicas, n_kill=args.n_kill, n_runs=args.n_runs, n_walkers=args.n_walkers,
                      n_rounds=args.n_rounds, keep_paths=args.keep_paths)
    temperatures = _temperatures(args, problem.barrier)
    results, names = [], []
    with _dask_scheduler(args) as scheduler:
        for T in temperatures:
            with _runtime_warnings_as_lines(f"dU/T = {problem.barrier / T:.3g}: "):
                res = escape_time(problem, temperature=T, dt=args.dt, options=opts, rng=args.seed,
                                  n_threads=args.n_threads, progress=not args.quiet, start=args.start,
                                  level=args.level, n_workers=args.n_workers, scheduler=scheduler)
            results.append(res)
            if args.out:
                from ..io import save

                names.append(save(res, args.out, command=args.command_line))
    if args.plot:
        _plot(results, problem.barrier, args.plot)
        from ..rare import level_figure

        level_figure(min(results, key=lambda r: r.temperature), f"{args.plot}_levels.png")
    _print(results, problem.barrier, names, args)


@contextlib.contextmanager
def _dask_scheduler(args):
    """The Dask scheduler address for the AMS runs: ``--scheduler``, or a LocalCluster of
    ``--dask-workers`` started once for the command (every temperature of ``escape``) and
    closed after; None: no Dask.

    Its two checks are not the API's repeated: they run before this command starts a cluster
    (the API would refuse ``--n-workers`` only after it), name the flags, and turn a missing
    dask.distributed into a one-line error (the API raises an ImportError).

    Parameters
    ----------
    args : argparse.Namespace
        ``scheduler``, ``dask_workers`` and ``n_workers``.

    Returns
    -------
    contextlib.AbstractContextManager
        Yields the address or None.
    """
    if args.scheduler is None and args.dask_workers is None:
        yield None
        return
    if args.n_workers > 1:
        raise ValueError(f"--n-workers {args.n_workers} (a local process pool) and --scheduler/--dask-workers (a Dask "
                         "cluster) exclude each other: give one")
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise ValueError(f"--scheduler and --dask-workers need dask.distributed, which is not installed: "
                         f"{DASK_INSTALL_HINT}") from None
    if args.scheduler is not None:
        yield args.scheduler
        return
    client, cluster = connect(None, args.dask_workers, 5.0, what="--dask-workers")
    try:
        client.close()
        yield cluster.scheduler_address
    finally:
        cluster.close()


def _print(results, barrier, names, args):
    rows = [{"temperature": r.temperature, "barrier_ratio": barrier / r.temperature, "tau": r.tau,
             "tau_lower": r.tau_lower, "tau_upper": r.tau_upper, "p": r.p, "theory_tau": r.theory_tau,
             "cost": r.cost["total"], "wall_time": r.stats["wall_time"]} for r in results]
    if args.json:
        import json

        from ..results import to_jsonable

        print(json.dumps(to_jsonable({"points": rows, "stored": names})))
        return
    print("    dU/T            T         tau   [95% interval]              p     theory   ratio   steps    wall")
    for w in rows:
        th = w["theory_tau"]
        ratio = f"{w['tau'] / th:6.3f}" if th else "     -"
        print(f"{w['barrier_ratio']:8.3g}  {w['temperature']:11.4g}  {w['tau']:10.4g}  [{w['tau_lower']:.4g}, "
              f"{w['tau_upper']:.4g}]  {w['p']:10.3g}  {th if th else float('nan'):9.4g}  {ratio}  "
              f"{w['cost']:.2e}  {w['wall_time']:5.1f}s")
    if names:
        print(f"stored {', '.join(names)} in {args.out}")


def _plot(results, barrier, prefix):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.array([barrier / r.temperature for r in results])
    tau = np.array([r.tau for r in results])
    lo = np.array([r.tau_lower for r in results])
    hi = np.array([r.tau_upper for r in results])
    fig, ax = plt.subplots(figsize=(5, 3.6))
    ax.errorbar(x, tau, yerr=[tau - lo, hi - tau], fmt="o", label="AMS (95% interval)")
    th = [r.theory_tau for r in results]
    if all(t is not None for t in th):
        ax.plot(x, th, "k--", label="theory")
    ax.set_yscale("log")
    ax.set_xlabel("barrier / T")
    ax.set_ylabel("mean escape time")
    ax.legend()
    fig.tight_layout()
    fig.savefig(f"{prefix}_tau.png", dpi=120)
    plt.close(fig)
