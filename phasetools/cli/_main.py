from __future__ import annotations

import argparse
import shlex
import sys

import numpy as np

from .. import __version__
from .._progress import plus_minus
from ._args import Parser, count, one_or_many, one_value, values


def _add_output(p):
    p.add_argument("--json", action="store_true", help="print one JSON object with the result's fields")
    p.add_argument("--out", metavar="FILE.h5", help="also append the result to this HDF5 file")
    p.add_argument("--name", help="name of the stored result (default: <kind>_NNNN)")


def _add_common(p, *, gamma: bool):
    p.add_argument("--n-layers", type=count("n_layers"), required=True, help="number of weight matrices n (>= 2)")
    p.add_argument("--a", type=float, default=1.0, help="input variance of the mode(s) (default 1)")
    if gamma:
        p.add_argument("--gamma", required=True, help=(
            "coupling: canonical gamma, or the weight decay beta with --convention paper; "
            "a number, a list 0.1,0.2 or a range START:STOP:NUM"))
    p.add_argument("--convention", choices=["canonical", "paper"], default="canonical",
                   help="energy convention (default canonical)")
    _add_output(p)


def _add_c(p, what):
    p.add_argument("--c", default=None, help=f"{what}: a number, a list 0.9,0.8 or a range START:STOP:NUM")
    p.add_argument("--spectrum", dest="c", help=argparse.SUPPRESS)   # deprecated spelling of --c


def _c(args, *, many=True):
    """``--c`` (or its deprecated spelling ``--spectrum``) as a scalar or an array; 0 is refused."""
    if args.c is None:
        raise ValueError("c is required (--c): one value, a list 0.9,0.8 or a range START:STOP:NUM")
    c = one_or_many(args.c, name="c") if many else one_value(args.c, name="c")
    if np.any(np.asarray(c) == 0):
        raise ValueError("c = 0 is no feature (E[xy] = 0: the trivial state is the only minimum at every coupling, "
                         "with no transition to compute); give a nonzero c")
    return c


def _finite(result, keys, inputs):
    """Refuse a result whose numbers overflowed (inf or NaN from finite inputs), naming the inputs.

    Parameters
    ----------
    result : Result
        The computed result.
    keys : sequence of str
        Its numeric fields to check (absent values, None or masked, are fine).
    inputs : str
        The inputs, for the message (e.g. ``"c = 1e+308"``).
    """
    for k in keys:
        v = getattr(result, k)
        if v is None or isinstance(v, str):
            continue
        arr = np.ma.asarray(v)
        if arr.dtype.kind not in "fc":
            continue
        bad = ~np.isfinite(arr.filled(0.0))
        if np.any(bad):
            raise ValueError(f"{inputs} is out of range: {k} is not a finite float64 number "
                             f"({np.ravel(arr.filled(0.0)[bad])[0]}); use inputs of moderate size")
        if k in ("gamma_c", "gamma_sp") and np.any(arr.filled(1.0) == 0):   # c != 0 here: 0 is an underflow
            raise ValueError(f"{inputs} is out of range: {k} underflows to 0 (below the smallest float64 "
                             f"number); use inputs of moderate size")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="phasetools", description=(
        "Phase transitions, metastability and escape in L2-regularised deep linear networks."))
    parser.add_argument("--version", action="version", version=f"phasetools {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    theory = sub.add_parser("theory", help="closed-form theory of one or many modes")
    tsub = theory.add_subparsers(dest="theory_command", metavar="SUBCOMMAND")

    p = tsub.add_parser("critical", help="coexistence and spinodal couplings of one mode")
    _add_common(p, gamma=False)
    _add_c(p, "mode signal E[xy] (the paper's eta)")
    p.set_defaults(handler=_theory_critical)

    p = tsub.add_parser("landscape", help="stationary points, barriers and Hessians of one mode")
    _add_common(p, gamma=True)
    _add_c(p, "mode signal E[xy] (the paper's eta)")
    p.add_argument("--width", type=count("width"), default=1, help="hidden width h for the Hessian spectra (default 1)")
    p.set_defaults(handler=_theory_landscape)

    p = tsub.add_parser("modes", help="per-mode transitions and metastable states of aligned data")
    p.add_argument("--n-layers", type=count("n_layers"), required=True, help="number of weight matrices n (>= 2)")
    _add_c(p, "feature strengths E[xy] of the modes (the paper's eta), e.g. 0.9,0.8")
    p.add_argument("--a", type=float, default=1.0, help="input variance of every mode (default 1)")
    p.add_argument("--gamma", type=float, default=None, help="coupling at which to list the states")
    p.add_argument("--convention", choices=["canonical", "paper"], default="canonical")
    _add_output(p)
    p.set_defaults(handler=_theory_modes)

    p = tsub.add_parser("phase-diagram", help="which top-m states exist and which is global, over a coupling range")
    p.add_argument("--n-layers", type=count("n_layers"), required=True, help="number of weight matrices n (>= 2)")
    _add_c(p, "feature strengths E[xy] of the modes (the paper's eta), e.g. 0.9,0.8")
    p.add_argument("--gamma", default=None, help="couplings: a list or a range START:STOP:NUM (default 0 to 1.2 x "
                                                 "the largest spinodal, 601 points)")
    p.add_argument("--gammas", dest="gamma", help=argparse.SUPPRESS)   # deprecated spelling
    p.add_argument("--a", type=float, default=1.0, help="input variance of every mode (default 1)")
    p.add_argument("--convention", choices=["canonical", "paper"], default="canonical")
    _add_output(p)
    p.set_defaults(handler=_theory_phase_diagram)

    simulate = sub.add_parser("simulate", help="Langevin simulations")
    ssub = simulate.add_subparsers(dest="simulate_command", metavar="SUBCOMMAND")
    p = ssub.add_parser("escape", help="escape times over a barrier at one or more temperatures (or SGD "
                                       "(lr, batch_size) points), against theory")
    p.add_argument("--model", choices=["chain", "network", "reduced", "double_well"], default="chain",
                   help="chain of n_layers scalar weights (default), scalar-in/out network of --width, the 1D "
                        "reduced potential, or the quartic double well")
    p.add_argument("--n-layers", type=count("n_layers"), default=3, help="number of weight matrices n (default 3)")
    p.add_argument("--c", default="1", help="mode signal E[xy] (the paper's eta), one value (default 1)")
    p.add_argument("--gamma", type=float, default=None, help="coupling (the weight decay beta in the paper convention)")
    p.add_argument("--a", type=float, default=1.0, help="input variance (default 1)")
    p.add_argument("--width", type=count("width"), default=1, help="hidden width for --model network (default 1)")
    p.add_argument("--direction", choices=["fwd", "bwd"], default=None,
                   help="fwd: trivial -> learned (default for additive noise); bwd: learned -> trivial (default and "
                        "required for --noise sgd)")
    p.add_argument("--convention", choices=["canonical", "paper"], default="canonical")
    p.add_argument("--temperature", help="temperature(s) of additive noise: a number, a list or START:STOP:NUM")
    p.add_argument("--noise", choices=["additive", "sgd"], default="additive", help=(
        "additive: isotropic sqrt(2T) dW at --temperature (default); sgd: SGD-like multiplicative noise "
        "(lr/batch_size) Sigma(theta) from the mode's data moments, for --model chain or network, backward escape"))
    p.add_argument("--lr", help="learning rate(s) for --noise sgd: a number, a list or START:STOP:NUM")
    p.add_argument("--batch-size", help="batch size(s) for --noise sgd: an integer, a list or START:STOP:NUM; one "
                                        "run per (lr, batch_size) pair (equal lengths, or one of the two a single "
                                        "value)")
    p.add_argument("--n-samples", type=count("n_samples"), default=None,
                   help="training-set size N: multiplies the SGD noise by (N - B)/(N - 1) (default: no factor)")
    p.add_argument("--output-var", type=float, default=1.0,
                   help="E[y^2] of the mode for --noise sgd (default 1, the paper's unit output variances)")
    p.add_argument("--dt", type=float, default=0.01, help="time step (default 0.01)")
    p.add_argument("--n-traj", type=count("n_traj"), default=1000, help="trajectories per point (default 1000)")
    p.add_argument("--max-steps", type=count("max_steps"), default=10**6, help="step budget; later runs are censored")
    p.add_argument("--scheme", choices=["euler", "bridge"], default="euler")
    p.add_argument("--seed", type=count("seed"), default=None, help="root seed (default: fresh entropy, recorded)")
    p.add_argument("--n-threads", type=count("n_threads"), default=None, help="numba threads")
    p.add_argument("--plot", metavar="PREFIX", help="write PREFIX_survival.png and PREFIX_arrhenius.png")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_output(p)
    p.set_defaults(handler=_simulate_escape)

    from ._reproduce import add_parser as _add_reproduce
    from ._training import add_parser as _add_train
    _add_train(sub)
    from ._diagnose import add_parser as _add_diagnose
    _add_diagnose(sub)
    from ._rare import add_parser as _add_rare
    _add_rare(sub)
    from ._predict import add_parser as _add_predict
    _add_predict(sub)
    from ._nonlinear import add_parser as _add_nonlinear
    _add_nonlinear(sub)
    _add_reproduce(sub)

    p = sub.add_parser("show", help="list the results in an HDF5 file with their provenance")
    p.add_argument("file", metavar="FILE.h5")
    p.add_argument("--result", help="print one result in full")
    p.set_defaults(handler=_show)

    p = sub.add_parser("plot", help="draw a stored result")
    p.add_argument("file", metavar="FILE.h5")
    p.add_argument("--result", help="name of the result (needed when the file holds several)")
    p.add_argument("--kind", choices=["potential", "barriers", "phase", "cascade", "levels", "survival", "arrhenius",
                                             "sweep", "trapping", "escape-sweep", "grokking"],
                   help="figure kind (default: the natural one for the result type)")
    p.add_argument("-o", "--output", required=True, help="output image (.png or .pdf)")
    p.set_defaults(handler=_plot)
    return parser


def main(argv=None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); the exit status.

    Parameters
    ----------
    argv : list of str, optional
        The arguments after ``phasetools``.

    Returns
    -------
    int
        0 on success; 2 for a bad input or a failed write (one line on stderr, naming the
        parameter and the limit); 130 after Ctrl-C (one line: ``interrupted``).
    """
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = parser.parse_args(argv)
    except KeyboardInterrupt:
        return _interrupted(None)
    args.command_line = shlex.join(["phasetools", *argv])  # provenance of stored results
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 0 if args.command is None else 2
    from .._progress import set_notices

    notices = set_notices(not (getattr(args, "quiet", False) or getattr(args, "json", False)))
    try:
        _check_outputs(args)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):   # results are checked instead
            handler(args)
    except KeyboardInterrupt:
        return _interrupted(args)
    except (ValueError, OSError, MemoryError, OverflowError) as exc:
        _error(exc)
        return 2
    finally:
        set_notices(notices)
    return 0


def _check_outputs(args):
    """Refuse, before any work, output files (``--out``, ``--plot``, ``--output``) in missing folders."""
    for flag in ("out", "plot", "output"):
        path = getattr(args, flag, None)
        if path and not (flag == "out" and args.command == "reproduce"):   # reproduce --out is a folder it makes
            check_folder(path, flag)
            if flag == "out":
                _check_store(path)


def _check_store(path):
    """Refuse, before any work, an ``--out`` that exists and is not an HDF5 file (it would only be refused
    after the computation, and it is never overwritten)."""
    from pathlib import Path

    import h5py

    p = Path(path).expanduser()
    if p.is_dir():
        raise ValueError(f"--out: {str(p)!r} is a folder; give an HDF5 file name")
    if p.is_file() and p.stat().st_size > 0 and not h5py.is_hdf5(p):
        raise ValueError(f"--out: {str(p)!r} exists and is not an HDF5 file (it is left untouched); "
                         f"choose another --out")


def _error(exc):
    """One line on stderr: ``phasetools: error: <message>``."""
    if isinstance(exc, MemoryError):
        msg = "out of memory" + (f": {exc}" if str(exc) else "") + "; use smaller sizes"
    elif isinstance(exc, OverflowError):
        msg = f"a number is too large for float64 or int64 ({exc}); use inputs of moderate size"
    else:
        msg = str(exc) or type(exc).__name__
    msg = " ".join(msg.split())
    print(f"phasetools: error: {msg}", file=sys.stderr)


def _interrupted(args) -> int:
    """Ctrl-C: one line (how to resume, where resuming exists) and exit status 130."""
    line = "phasetools: interrupted"
    if args is not None and getattr(args, "command", None) == "reproduce":
        out = shlex.quote(str(getattr(args, "out", "reproduction")))
        line += f"; resume with: phasetools reproduce --resume --out {out}"
    try:
        print(line, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass
    return 130


# ---------------------------------------------------------------------------------------
def _emit(result, args, table):
    if getattr(args, "out", None):
        from ..io import save

        name = save(result, args.out, name=args.name, command=args.command_line)
        where = f"stored as {name} in {args.out}"
    else:
        where = None
    if args.json:
        print(result.to_json())
    else:
        print(table)
        if where:
            print(where)


def _fmt(v):
    if v is None:
        return "absent"
    if isinstance(v, float):
        return f"{v:.10g}"
    return str(v)


def _table(result, keys):
    """Key/value rows for a scalar result, columns for an array result (one row per point)."""
    if all(np.ndim(getattr(result, k)) == 0 for k in keys):
        return _kv_table([(k, getattr(result, k)) for k in keys])
    scalars = [k for k in keys if np.ndim(getattr(result, k)) == 0]
    arrays = [k for k in keys if np.ndim(getattr(result, k)) > 0]
    head = _kv_table([(k, getattr(result, k)) for k in scalars])
    cols = [np.ravel(_objects(getattr(result, k))) for k in arrays]
    widths = [max([len(k)] + [len(_cell(v)) for v in col]) for k, col in zip(arrays, cols)]
    lines = ["  ".join(f"{k:>{w}}" for k, w in zip(arrays, widths))]
    for row in zip(*cols):
        lines.append("  ".join(f"{_cell(v):>{w}}" for v, w in zip(row, widths)))
    return head + "\n\n" + "\n".join(lines)


def _objects(v):
    from ..results import masked_to_objects

    if isinstance(v, np.ma.MaskedArray):
        return masked_to_objects(v)
    return np.asarray(v, dtype=object)


def _cell(v):
    if v is None:
        return "absent"
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.6g}"
    return str(v)


def _kv_table(rows):
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {_fmt(v)}" for k, v in rows)


def _convention_line(conv):
    if conv.coupling == "gamma":
        return "convention: canonical (E||y - Wx||^2 + gamma sum ||W_i||^2)"
    return (f"convention: {conv.name} (couplings are the SGD weight decay beta; energies = "
            f"{conv.kappa:g} x canonical)")


def _theory_critical(args):
    from ..theory import critical_points

    r = critical_points(args.n_layers, _c(args), args.a, convention=args.convention)
    keys = ("n_layers", "a", "c", "order", "gamma_c", "gamma_sp", "b_c", "lam_c", "b_sp", "lam_sp", "latent_heat")
    _finite(r, keys, f"c = {args.c}, a = {args.a:g}")
    _emit(r, args, _convention_line(r.convention) + "\n" + _table(r, keys))


def _spectrum_text(spec):
    if spec is None:
        return "absent"
    ev = spec.eigenvalues
    return ", ".join(f"{e:.6g} x{m} ({lab})" for e, m, lab in zip(ev, spec.multiplicities, spec.labels))


def _theory_landscape(args):
    from ..theory import landscape

    r = landscape(args.n_layers, _c(args), one_or_many(args.gamma, name="gamma"), args.a, width=args.width,
                  convention=args.convention)
    keys = ("n_layers", "a", "c", "gamma", "width", "phase", "global_state", "b_saddle", "b_min", "lam_saddle",
            "lam_min", "U_min", "barrier_fwd", "barrier_bwd", "curvature_trivial", "curvature_saddle",
            "curvature_min", "n_params", "orbit_dim")
    _finite(r, keys, f"gamma = {args.gamma}, c = {args.c}, a = {args.a:g}")
    for k in ("hessian_trivial", "hessian_saddle", "hessian_min"):
        if getattr(r, k) is not None:
            _finite(getattr(r, k), ("eigenvalues",), f"gamma = {args.gamma}, c = {args.c}, a = {args.a:g}")
    if np.ndim(r.gamma) == 0 and np.ndim(r.c) == 0:
        rows = [(k, getattr(r, k)) for k in keys]
        rows += [(k, _spectrum_text(getattr(r, k))) for k in ("hessian_trivial", "hessian_saddle", "hessian_min")]
        table = _kv_table(rows)
    else:
        table = _table(r, keys)
    _emit(r, args, _convention_line(r.convention) + "\n" + table)


def _theory_modes(args):
    from ..theory import modes

    spectrum = np.atleast_1d(_c(args)).tolist()
    r = modes(args.n_layers, spectrum, args.gamma, args.a, convention=args.convention)
    _finite(r, ("gamma_c", "gamma_sp"), f"c = {args.c}, a = {args.a:g}")
    lines = [_convention_line(r.convention), f"n_layers {r.n_layers}", "",
             f"{'mode':>4}  {'c':>10}  {'a':>8}  {'gamma_c':>12}  {'gamma_sp':>12}"]
    for k in range(r.spectrum.size):
        lines.append(f"{k:>4}  {r.spectrum[k]:>10.6g}  {r.a[k]:>8.4g}  {r.gamma_c[k]:>12.6g}  {r.gamma_sp[k]:>12.6g}")
    if r.states is not None:
        lines += ["", f"local minima at gamma = {r.gamma:g} ({len(r.states)} states, "
                      f"{r.n_metastable} metastable)",
                  f"{'state':>5}  {'learned modes':<16}  {'energy':>14}  global"]
        for i, s in enumerate(r.states):
            learned = ",".join(str(k) for k in s.learned) or "-"
            lines.append(f"{i:>5}  {learned:<16}  {s.energy:>14.8g}  {'*' if s.is_global else ''}")
        if r.transitions:
            lines += ["", "transition states (index 1)",
                      f"{'from':>4}  {'to':>4}  {'mode':>4}  {'barrier_fwd':>12}  {'barrier_bwd':>12}  "
                      f"{'lambda_minus':>12}"]
            for t in r.transitions:
                lines.append(f"{t.lower:>4}  {t.upper:>4}  {t.mode:>4}  {t.barrier_fwd:>12.6g}  "
                             f"{t.barrier_bwd:>12.6g}  {t.lambda_minus:>12.6g}")
    _emit(r, args, "\n".join(lines))


def _theory_phase_diagram(args):
    from ..theory import critical_points, phase_diagram

    spectrum = np.atleast_1d(_c(args)).tolist()
    if args.gamma is None:
        cp = critical_points(args.n_layers, spectrum, args.a, convention=args.convention)
        _finite(cp, ("gamma_c", "gamma_sp"), f"c = {args.c}, a = {args.a:g}")
        top = 1.2 * float(np.max(cp.gamma_sp))
        gammas = np.linspace(0.0, top, 601)
    else:
        gammas = np.atleast_1d(one_or_many(args.gamma, name="gamma"))
    r = phase_diagram(args.n_layers, spectrum, gammas, args.a, convention=args.convention)
    _finite(r, ("gamma_c", "gamma_sp"), f"c = {args.c}, a = {args.a:g}")
    lines = [_convention_line(r.convention), f"n_layers {r.n_layers}, {r.gammas.size} couplings from "
             f"{r.gammas[0]:.6g} to {r.gammas[-1]:.6g}", "",
             f"{'mode':>4}  {'c':>10}  {'gamma_c':>12}  {'gamma_sp':>12}"]
    for k in range(r.spectrum.size):
        lines.append(f"{k:>4}  {r.spectrum[k]:>10.6g}  {r.gamma_c[k]:>12.6g}  {r.gamma_sp[k]:>12.6g}")
    lines += ["", "global state (modes learned) by coupling interval:"]
    start = 0
    for j in range(1, r.gammas.size + 1):
        if j == r.gammas.size or r.global_m[j] != r.global_m[start]:
            lines.append(f"  [{r.gammas[start]:.6g}, {r.gammas[j - 1]:.6g}]  m = {r.global_m[start]}")
            start = j
    _emit(r, args, "\n".join(lines))


def _show(args):
    from ..io import file_provenance, list_results, load

    if args.result:
        r = load(args.file, args.result)
        print(repr(r))
        print(r.to_json(indent=1))
        return
    prov = file_provenance(args.file)
    print(f"{args.file}: schema_version {prov.get('schema_version')}, created {prov.get('created_utc')} "
          f"by phasetools {prov.get('phasetools_version')}")
    print(f"  command: {prov.get('command')}")
    print(f"  git commit: {prov.get('git_commit') or '(not from a checkout)'}; python {prov.get('python_version')}, "
          f"numpy {prov.get('numpy_version')}, scipy {prov.get('scipy_version')}, sympy {prov.get('sympy_version')}, "
          f"numba {prov.get('numba_version')}, h5py {prov.get('h5py_version')}; {prov.get('platform')}")
    infos = list_results(args.file)
    print(f"{len(infos)} result(s):")
    for info in infos:
        status = ("  DAMAGED (not loadable): " + info.damage[:200] if info.damage else
                  "" if info.complete else "  INCOMPLETE (writer interrupted; not loadable)")
        print(f"  {info.name:<32} {info.kind:<26} {info.created_utc}{status}")
        print(f"  {'':<32} {info.config_summary(width=110)}")
        print(f"  {'':<32} command: {info.command[:110]}")


def _one_result(path, name):
    """``name``, or the only result of ``path``; several results without ``--result`` are refused."""
    if name is not None:
        return name
    from ..io import list_results

    names = [info.name for info in list_results(path)]
    if len(names) > 1:
        shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
        raise ValueError(f"{path} holds {len(names)} results; choose one with --result NAME ({shown}); "
                         f"phasetools show {path} lists them")
    return None


def _plot(args):
    import matplotlib

    matplotlib.use("Agg")
    from ..io import load
    from ..plot import plot

    r = load(args.file, _one_result(args.file, args.result))
    written = plot(r, args.kind).save(args.output)
    print("wrote " + ", ".join(str(p) for p in written))


def _simulate_escape(args):
    """``simulate escape``: one ensemble per temperature (or SGD point), fitted, against theory."""
    from ..langevin import SGD_MODELS, escape_problem, escape_sweep

    sgd = args.noise == "sgd"
    _check_budget(args.dt, args.max_steps)
    if sgd:
        if args.temperature is not None:
            raise ValueError("temperature and --noise sgd are mutually exclusive: SGD-like noise has no "
                             "temperature (give --lr and --batch-size)")
        if args.model not in SGD_MODELS:
            raise ValueError(f"model {args.model!r} does not support --noise sgd: SGD-like noise needs the "
                             f"network's end-to-end map, which only --model chain and --model network have")
        if args.direction == "fwd":
            raise ValueError("direction fwd is refused with --noise sgd: the SGD noise is exactly zero at the "
                             "trivial state (all weights zero, so every gradient is zero), so pure SGD never "
                             "leaves it; use --direction bwd")
        grid = {"points": _sgd_points(args), "n_samples": args.n_samples, "output_var": args.output_var}
    else:
        for flag, value in (("--lr", args.lr), ("--batch-size", args.batch_size), ("--n-samples", args.n_samples)):
            if value is not None:
                raise ValueError(f"{flag} goes with --noise sgd (additive noise takes --temperature)")
        if args.temperature is None:
            raise ValueError("temperature is required for additive noise (--temperature), or give --noise sgd with "
                             "--lr and --batch-size")
        grid = {"temperatures": values(args.temperature, name="temperature")}
    problem = escape_problem(args.model, n_layers=args.n_layers, c=_c(args, many=False), gamma=args.gamma,
                             a=args.a, width=args.width, direction="bwd" if sgd else (args.direction or "fwd"),
                             convention=args.convention)
    sweep = escape_sweep(problem, **grid, dt=args.dt, n_traj=args.n_traj, max_steps=args.max_steps,
                         scheme=args.scheme, rng=args.seed, n_threads=args.n_threads, progress=not args.quiet)
    arr = sweep.arrhenius()
    _warn_censored(sweep, args)
    names = []
    if args.out:
        from ..io import save

        for r in [*sweep.ensembles, *([] if arr is None else [arr])]:
            names.append(save(r, args.out, command=args.command_line))
    theory = problem.sgd_theory(output_var=args.output_var) if sgd else None
    if args.json:
        import json

        from ..results import to_jsonable

        print(json.dumps(to_jsonable(_escape_json(problem, sweep, arr, theory, names))))
    else:
        lines = _escape_table(problem, sweep, arr, theory)
        if names:
            lines.append(f"stored {', '.join(names)} in {args.out}")
        print("\n".join(lines))
    if args.plot:
        _escape_plots(sweep, arr, args)


def _check_budget(dt, max_steps):
    """Refuse a step budget ``max_steps * dt`` that covers a negligible time (all would be censored)."""
    if dt > 0 and max_steps >= 1 and dt * max_steps < 1e-6:
        raise ValueError(f"dt = {dt:g}: the step budget max_steps x dt = {dt * max_steps:.3g} covers a negligible "
                         f"time (< 1e-6), so every trajectory would be censored; raise --dt or --max-steps")


def _warn_censored(sweep, args):
    """One line on stderr for each point where every trajectory was censored (tau is only a lower bound)."""
    for k, e in enumerate(sweep.ensembles):
        if e.n_traj and bool(np.all(e.censored)):
            print(f"phasetools: warning: point {k}: all {e.n_traj} trajectories were censored (none escaped within "
                  f"max_steps x dt = {args.max_steps * args.dt:.4g}); tau is only a lower bound: raise "
                  f"--max-steps", file=sys.stderr)


def check_folder(path, flag):
    """Refuse an output path whose folder does not exist (only the file is created, never folders).

    Parameters
    ----------
    path : str
        The output file (or file prefix).
    flag : str
        The flag's name, for the message.

    Returns
    -------
    pathlib.Path
        The folder.
    """
    from pathlib import Path

    folder = Path(path).expanduser().parent
    if not folder.is_dir():
        raise ValueError(f"--{flag}: the folder {str(folder)!r} does not exist (only the file is created); "
                         f"create the folder first or choose another --{flag}")
    return folder


def _sgd_points(args):
    """(lr, batch_size) pairs from --lr and --batch-size (lists paired, a single value broadcast)."""
    if args.lr is None or args.batch_size is None:
        raise ValueError("lr and batch_size are required for --noise sgd (--lr, --batch-size)")
    lrs = np.asarray(values(args.lr, name="lr"))
    sizes = np.asarray(values(args.batch_size, name="batch_size"))
    if np.any(sizes != np.round(sizes)) or np.any(sizes < 1):
        raise ValueError(f"batch_size must be integers >= 1, got {args.batch_size!r}")
    if len(lrs) != len(sizes) and 1 not in (len(lrs), len(sizes)):
        raise ValueError(f"lr and batch_size lists must have equal lengths (one run per pair) or one of "
                         f"them a single value, got {len(lrs)} and {len(sizes)}")
    n = max(len(lrs), len(sizes))
    return [(float(lr), int(b)) for lr, b in zip(np.broadcast_to(lrs, n), np.broadcast_to(sizes, n))]


def _theory_or_none(value):
    return None if value is None or not np.isfinite(value) else float(value)


def _escape_json(problem, sweep, arr, theory, names) -> dict:
    """The ``--json`` object of ``simulate escape``."""
    points = []
    for k, (e, f) in enumerate(zip(sweep.ensembles, sweep.fits)):
        pt = ({"temperature": float(sweep.temperature[k])} if theory is None else
              {"lr": float(sweep.lr[k]), "batch_size": int(sweep.batch_size[k]), "batch_size/lr": float(sweep.x[k]),
               "temperature_eff": float(sweep.temperature[k])})
        pt.update({"n_traj": e.n_traj, "n_escaped": int(e.escaped.sum()), "n_censored": int(e.censored.sum()),
                   "n_nonfinite": int(e.nonfinite.sum()), "tau": f.tau, "tau_stderr": f.tau_stderr,
                   "tau_lower": f.tau_lower, "tau_theory": _theory_or_none(sweep.theory_tau[k])})
        points.append(pt)
    out = {"problem": problem.config, "barrier": problem.barrier}
    if theory is not None:
        out.update({"noise": "sgd", "output_var": theory.output_var, "n_samples": sweep.n_samples,
                    "theory": {"n_params": theory.n_params, "trace_start": theory.trace_start,
                               "trace_saddle": theory.trace_saddle, "slope_path": theory.slope_path,
                               "slope_start": theory.slope_start, "slope_saddle": theory.slope_saddle}})
    out.update({"points": points,
                "arrhenius": None if arr is None else {"slope": arr.slope, "slope_stderr": arr.slope_stderr,
                                                       "intercept": arr.intercept},
                "stored": names})
    return out


def _tau_cells(f, th):
    tau = f"{f.tau:.6g}" if f.tau is not None else f"> {f.tau_lower:.4g}"
    se = f"{f.tau_stderr:.3g}" if f.tau_stderr is not None else "-"
    ratio = f"{f.tau / th:.4f}" if (f.tau is not None and th) else "-"
    return tau, se, ratio


def _escape_table(problem, sweep, arr, theory) -> list:
    """The printed table of ``simulate escape`` (one row per point, then the Arrhenius fit)."""
    head = ", ".join(f"{k}={v}" for k, v in problem.config.items())
    unit = problem.potential.convention
    lines = [f"escape problem: {head}; barrier {problem.barrier:.6g} ({unit} units)"]
    if theory is None:
        lines.append(f"{'T':>10}  {'dU/T':>7}  {'escaped':>9}  {'censored':>8}  {'tau (MLE)':>12}  {'+-':>9}  "
                     f"{'theory':>12}  {'sim/theory':>10}")
        for T, e, f, th in zip(sweep.temperature, sweep.ensembles, sweep.fits, sweep.theory_tau):
            th = _theory_or_none(th)
            tau, se, ratio = _tau_cells(f, th)
            lines.append(f"{T:>10.5g}  {problem.barrier / T:>7.3f}  {int(e.escaped.sum()):>9}  "
                         f"{int(e.censored.sum()):>8}  {tau:>12}  {se:>9}  {(th or float('nan')):>12.6g}  "
                         f"{ratio:>10}")
        if arr is not None:
            lines.append(f"Arrhenius fit: slope {plus_minus(arr.slope, arr.slope_stderr, sep=' +- ')} against barrier "
                         f"{problem.barrier:.6g} (ratio {arr.slope / problem.barrier:.4f})")
        return lines
    lines += [f"SGD-like noise: E[y^2] = {theory.output_var:g}, n_samples = {sweep.n_samples}; tr Sigma = "
              f"{theory.trace_start:.6g} at the start, {theory.trace_saddle:.6g} at the saddle; N_theta = "
              f"{theory.n_params}; theory = exact 1D mean first-passage time of the balanced coordinate",
              f"{'lr':>9}  {'B':>5}  {'B/lr':>9}  {'T_eff':>10}  {'escaped':>8}  {'censored':>8}  "
              f"{'tau (MLE)':>12}  {'+-':>9}  {'theory':>12}  {'sim/theory':>10}"]
    for lr, b, x, T, e, f, th in zip(sweep.lr, sweep.batch_size, sweep.x, sweep.temperature, sweep.ensembles,
                                     sweep.fits, sweep.theory_tau):
        tau, se, ratio = _tau_cells(f, float(th))
        lines.append(f"{lr:>9.4g}  {int(b):>5d}  {x:>9.5g}  {T:>10.4g}  {int(e.escaped.sum()):>8}  "
                     f"{int(e.censored.sum()):>8}  {tau:>12}  {se:>9}  {th:>12.6g}  {ratio:>10}")
    lines.append("T_eff = lr tr(Sigma) / (2 B N_theta) at the start (docs/langevin.md, SGD-like noise)")
    if arr is not None:
        lines.append(f"Arrhenius fit of ln tau against batch_size/lr: slope "
                     f"{plus_minus(arr.slope, arr.slope_stderr, sep=' +- ')}; theory: quasi-potential along the path "
                     f"{theory.slope_path:.5g} (ratio {arr.slope / theory.slope_path:.3f}), "
                     f"barrier / (T_eff lr/B) at the start {theory.slope_start:.5g} "
                     f"(ratio {arr.slope / theory.slope_start:.3f})")
    return lines


def _escape_plots(sweep, arr, args):
    import matplotlib

    matplotlib.use("Agg")
    from ..plot import arrhenius, survival

    written = survival(sweep).save(f"{args.plot}_survival.png")
    if arr is not None:
        written += arrhenius(sweep).save(f"{args.plot}_arrhenius.png")
    if not args.json:
        print("wrote " + ", ".join(str(w) for w in written))
