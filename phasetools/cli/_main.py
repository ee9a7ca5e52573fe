from __future__ import annotations

import argparse
import shlex
import sys

import numpy as np

from .. import __version__


def _floats(text: str, name: str):
    try:
        values = [float(t) for t in text.split(",") if t.strip() != ""]
    except ValueError:
        raise ValueError(f"{name} must be a comma-separated list of numbers, got {text!r}") from None
    if not values:
        raise ValueError(f"{name} must be a non-empty comma-separated list of numbers, got {text!r}")
    return values


def _numbers(text: str, name: str):
    """A number, a comma-separated list, or START:STOP:NUM (evenly spaced, both ends included)."""
    if ":" in text:
        parts = text.split(":")
        try:
            start, stop, num = float(parts[0]), float(parts[1]), int(parts[2])
            if len(parts) != 3 or num < 2:
                raise ValueError
        except (ValueError, IndexError):
            raise ValueError(f"{name} range must be START:STOP:NUM with NUM >= 2, got {text!r}") from None
        import numpy as np

        return np.linspace(start, stop, num)
    values = _floats(text, name)
    return values[0] if len(values) == 1 else values


def _add_output(p):
    p.add_argument("--json", action="store_true", help="print one JSON object with the result's fields")
    p.add_argument("--out", metavar="FILE.h5", help="also append the result to this HDF5 file")
    p.add_argument("--name", help="name of the stored result (default: <kind>_NNNN)")


def _add_common(p, *, gamma: bool):
    p.add_argument("--n-layers", type=int, required=True, help="number of weight matrices n (>= 2)")
    p.add_argument("--a", type=float, default=1.0, help="input variance of the mode(s) (default 1)")
    if gamma:
        p.add_argument("--gamma", required=True, help=(
            "coupling: canonical gamma, or the weight decay beta with --convention paper; "
            "a number, a list 0.1,0.2 or a range START:STOP:NUM"))
    p.add_argument("--convention", choices=["canonical", "paper"], default="canonical",
                   help="energy convention (default canonical)")
    _add_output(p)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="phasetools", description=(
        "Phase transitions, metastability and escape in L2-regularised deep linear networks."))
    parser.add_argument("--version", action="version", version=f"phasetools {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    theory = sub.add_parser("theory", help="closed-form theory of one or many modes")
    tsub = theory.add_subparsers(dest="theory_command", metavar="SUBCOMMAND")

    p = tsub.add_parser("critical", help="coexistence and spinodal couplings of one mode")
    _add_common(p, gamma=False)
    p.add_argument("--c", required=True, help="mode signal E[xy] (the paper's eta): a number, a list or "
                                              "a range START:STOP:NUM")
    p.set_defaults(handler=_theory_critical)

    p = tsub.add_parser("landscape", help="stationary points, barriers and Hessians of one mode")
    _add_common(p, gamma=True)
    p.add_argument("--c", type=float, required=True, help="mode signal E[xy] (the paper's eta)")
    p.add_argument("--width", type=int, default=1, help="hidden width h for the Hessian spectra (default 1)")
    p.set_defaults(handler=_theory_landscape)

    p = tsub.add_parser("modes", help="per-mode transitions and metastable states of aligned data")
    p.add_argument("--n-layers", type=int, required=True, help="number of weight matrices n (>= 2)")
    p.add_argument("--spectrum", required=True, help="comma-separated feature strengths, e.g. 0.9,0.8")
    p.add_argument("--a", type=float, default=1.0, help="input variance of every mode (default 1)")
    p.add_argument("--gamma", type=float, default=None, help="coupling at which to list the states")
    p.add_argument("--convention", choices=["canonical", "paper"], default="canonical")
    _add_output(p)
    p.set_defaults(handler=_theory_modes)

    p = tsub.add_parser("phase-diagram", help="which top-m states exist and which is global, over a coupling range")
    p.add_argument("--n-layers", type=int, required=True, help="number of weight matrices n (>= 2)")
    p.add_argument("--spectrum", required=True, help="comma-separated feature strengths, e.g. 0.9,0.8")
    p.add_argument("--gammas", default=None, help="couplings START:STOP:NUM (default 0 to 1.2 x the largest "
                                                  "spinodal, 601 points)")
    p.add_argument("--a", type=float, default=1.0, help="input variance of every mode (default 1)")
    p.add_argument("--convention", choices=["canonical", "paper"], default="canonical")
    _add_output(p)
    p.set_defaults(handler=_theory_phase_diagram)

    p = sub.add_parser("show", help="list the results in an HDF5 file with their provenance")
    p.add_argument("file", metavar="FILE.h5")
    p.add_argument("--result", help="print one result in full")
    p.set_defaults(handler=_show)

    p = sub.add_parser("plot", help="draw a stored result")
    p.add_argument("file", metavar="FILE.h5")
    p.add_argument("--result", help="name of the result (needed when the file holds several)")
    p.add_argument("--kind", choices=["potential", "barriers", "phase", "cascade", "levels"],
                   help="figure kind (default: the natural one for the result type)")
    p.add_argument("-o", "--output", required=True, help="output image (.png or .pdf)")
    p.set_defaults(handler=_plot)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    args.command_line = shlex.join(["phasetools", *argv])  # provenance of stored results
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 0 if args.command is None else 2
    try:
        handler(args)
    except (ValueError, OSError) as exc:
        msg = " ".join(str(exc).split())
        print(f"phasetools: error: {msg}", file=sys.stderr)
        return 2
    return 0


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
    widths = [max(12, len(k)) for k in arrays]
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

    r = critical_points(args.n_layers, _numbers(args.c, "c"), args.a, convention=args.convention)
    keys = ("n_layers", "a", "c", "order", "gamma_c", "gamma_sp", "b_c", "P_c", "b_sp", "P_sp", "latent_heat")
    _emit(r, args, _convention_line(r.convention) + "\n" + _table(r, keys))


def _spectrum_text(spec):
    if spec is None:
        return "absent"
    ev = spec.eigenvalues
    return ", ".join(f"{e:.6g} x{m} ({lab})" for e, m, lab in zip(ev, spec.multiplicities, spec.labels))


def _theory_landscape(args):
    from ..theory import landscape

    r = landscape(args.n_layers, args.c, _numbers(args.gamma, "gamma"), args.a, width=args.width,
                  convention=args.convention)
    keys = ("n_layers", "a", "c", "gamma", "width", "phase", "global_state", "b_saddle", "b_min", "lam_saddle",
            "lam_min", "U_min", "barrier_fwd", "barrier_bwd", "curvature_trivial", "curvature_saddle",
            "curvature_min", "n_params", "orbit_dim")
    if np.ndim(r.gamma) == 0:
        rows = [(k, getattr(r, k)) for k in keys]
        rows += [(k, _spectrum_text(getattr(r, k))) for k in ("hessian_trivial", "hessian_saddle", "hessian_min")]
        table = _kv_table(rows)
    else:
        table = _table(r, keys)
    _emit(r, args, _convention_line(r.convention) + "\n" + table)


def _theory_modes(args):
    from ..theory import modes

    spectrum = _floats(args.spectrum, "spectrum")
    r = modes(args.n_layers, spectrum, args.gamma, args.a, convention=args.convention)
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

    spectrum = _floats(args.spectrum, "spectrum")
    if args.gammas is None:
        top = 1.2 * float(np.max(critical_points(args.n_layers, spectrum, args.a, convention=args.convention).gamma_sp))
        gammas = np.linspace(0.0, top, 601)
    else:
        gammas = np.atleast_1d(_numbers(args.gammas, "gammas"))
    r = phase_diagram(spectrum, args.n_layers, gammas, args.a, convention=args.convention)
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
        status = "" if info.complete else "  INCOMPLETE (writer interrupted; not loadable)"
        cfg = ", ".join(f"{k}={_short(v)}" for k, v in sorted(info.config.items()))
        print(f"  {info.name:<32} {info.kind:<26} {info.created_utc}  {cfg}{status}")
        print(f"  {'':<32} command: {info.command}")


def _short(v):
    if isinstance(v, dict) and "name" in v:
        return v["name"]
    if isinstance(v, list):
        flat = np.ravel(np.asarray(v, dtype=object))
        if flat.size > 4:
            return f"[{flat[0]}, ..., {flat[-1]}] ({flat.size})"
    return str(v)


def _plot(args):
    import matplotlib

    matplotlib.use("Agg")
    from ..io import load
    from ..plot import plot

    r = load(args.file, args.result)
    written = plot(r, args.kind).save(args.output)
    print("wrote " + ", ".join(str(p) for p in written))
