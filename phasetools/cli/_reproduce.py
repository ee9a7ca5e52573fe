"""``phasetools reproduce``: every experiment of the paper, figures and a verdict report in one folder."""

from __future__ import annotations


def add_parser(sub):
    p = sub.add_parser("reproduce", help="reproduce the paper: experiments, figures and report.md with verdicts")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--quick", dest="scale", action="store_const", const="quick",
                   help="reduced scale, about 1-5 minutes on 2 cores (default)")
    g.add_argument("--full", dest="scale", action="store_const", const="full",
                   help="the paper's scale: 50 seeds per point and its epoch budgets (hours)")
    g.add_argument("--smoke", dest="scale", action="store_const", const="smoke",
                   help="a tiny run that exercises every experiment (tests)")
    p.set_defaults(scale="quick")
    p.add_argument("--out", default="reproduction", help="output folder (default ./reproduction)")
    p.add_argument("--executor", choices=["inline", "process", "dask"], default=None,
                   help="where the experiments run (default: a local process pool)")
    p.add_argument("--n-workers", type=int, default=None, help="processes of the pool (default: CPU count)")
    p.add_argument("--scheduler", default=None, help="address tcp://HOST:PORT of a running Dask scheduler")
    p.add_argument("--dask-workers", type=int, default=None, help="start a local Dask cluster with N workers")
    m = p.add_mutually_exclusive_group()
    m.add_argument("--resume", action="store_true", help="continue the reproduction stored in --out")
    m.add_argument("--overwrite", action="store_true", help="replace what --out holds")
    p.add_argument("--seed", type=int, default=None, help="sweep seed (default 20261130)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=_reproduce)
    return p


def _reproduce(args):
    from ..reproduce import DEFAULT_SEED, reproduce
    o = reproduce(args.out, scale=args.scale, seed=DEFAULT_SEED if args.seed is None else args.seed,
                  executor=args.executor, n_workers=args.n_workers, scheduler=args.scheduler,
                  dask_workers=args.dask_workers, resume=args.resume, overwrite=args.overwrite, quiet=args.quiet,
                  command=args.command_line)
    c = o.counts
    print(f"reproduction ({o.scale}) finished in {o.wall_time / 60:.1f} min: of the paper's claims {c['agrees']} "
          f"agree, {c['disagrees']} disagree, {c['not testable']} not testable")
    print(f"report: {o.report}")
