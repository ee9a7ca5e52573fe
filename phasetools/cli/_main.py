from __future__ import annotations

import argparse
import json
import sys

from .. import __version__


def _floats(text: str, name: str):
    try:
        values = [float(t) for t in text.split(",") if t.strip() != ""]
    except ValueError:
        raise ValueError(f"{name} must be a comma-separated list of numbers, got {text!r}") from None
    if not values:
        raise ValueError(f"{name} must be a non-empty comma-separated list of numbers, got {text!r}")
    return values


def _add_common(p, *, gamma: bool):
    p.add_argument("--n-layers", type=int, required=True, help="number of weight matrices n (>= 2)")
    p.add_argument("--a", type=float, default=1.0, help="input variance of the mode(s) (default 1)")
    if gamma:
        p.add_argument("--gamma", type=float, required=True,
                       help="coupling: canonical gamma, or the weight decay beta with --convention paper")
    p.add_argument("--convention", choices=["canonical", "paper"], default="canonical",
                   help="energy convention (default canonical)")
    p.add_argument("--json", action="store_true", help="print one JSON object with the result's fields")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="phasetools", description=(
        "Phase transitions, metastability and escape in L2-regularised deep linear networks."))
    parser.add_argument("--version", action="version", version=f"phasetools {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    theory = sub.add_parser("theory", help="closed-form theory of one or many modes")
    tsub = theory.add_subparsers(dest="theory_command", metavar="SUBCOMMAND")

    p = tsub.add_parser("critical", help="coexistence and spinodal couplings of one mode")
    _add_common(p, gamma=False)
    p.add_argument("--c", type=float, required=True, help="mode signal E[xy] (the paper's eta)")
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
    p.add_argument("--json", action="store_true", help="print one JSON object with the result's fields")
    p.set_defaults(handler=_theory_modes)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 0 if args.command is None else 2
    try:
        handler(args)
    except ValueError as exc:
        msg = " ".join(str(exc).split())
        print(f"phasetools: error: {msg}", file=sys.stderr)
        return 2
    return 0


# ---------------------------------------------------------------------------------------
def _emit(result, args, table):
    if args.json:
        print(result.to_json())
    else:
        print(table)


def _fmt(v):
    if v is None:
        return "absent"
    if isinstance(v, float):
        return f"{v:.10g}"
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

    r = critical_points(args.n_layers, args.c, args.a, convention=args.convention)
    rows = [(k, getattr(r, k)) for k in ("n_layers", "a", "c", "order", "gamma_c", "gamma_sp", "b_c", "P_c",
                                         "b_sp", "P_sp", "latent_heat")]
    _emit(r, args, _convention_line(r.convention) + "\n" + _kv_table(rows))


def _spectrum_text(spec):
    if spec is None:
        return "absent"
    ev = spec.eigenvalues
    return ", ".join(f"{e:.6g} x{m} ({lab})" for e, m, lab in zip(ev, spec.multiplicities, spec.labels))


def _theory_landscape(args):
    from ..theory import landscape

    r = landscape(args.n_layers, args.c, args.gamma, args.a, width=args.width, convention=args.convention)
    keys = ("n_layers", "a", "c", "gamma", "width", "phase", "global_state", "b_saddle", "b_min", "lam_saddle",
            "lam_min", "U_min", "barrier_fwd", "barrier_bwd", "curvature_trivial", "curvature_saddle",
            "curvature_min", "n_params", "orbit_dim")
    rows = [(k, getattr(r, k)) for k in keys]
    rows += [(k, _spectrum_text(getattr(r, k))) for k in ("hessian_trivial", "hessian_saddle", "hessian_min")]
    _emit(r, args, _convention_line(r.convention) + "\n" + _kv_table(rows))


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
