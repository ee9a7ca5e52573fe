"""``phasetools nonlinear ...``: grokking runs, weight-decay sweeps, escapes and verdicts for nonlinear networks.

Every command builds its task and network from flags, runs the function of
:mod:`phasetools.nonlinear`, prints a summary (or ``--json``) and appends the result to
``--out FILE.h5`` with the command line as provenance. ``verdicts`` reads stored results.
"""

from __future__ import annotations

import numpy as np

from ._args import command_group, one_value, values


def add_parser(sub):
    """Register ``phasetools nonlinear`` and its subcommands.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        Where ``nonlinear`` is registered (the top-level subcommands).

    Returns
    -------
    argparse.ArgumentParser
        The ``nonlinear`` parser (subcommands grok, sweep, escape, verdicts).
    """
    nl, nsub = command_group(sub, "nonlinear",
                             "grokking in nonlinear networks: runs, weight-decay sweeps, escapes, verdicts")

    p = nsub.add_parser("grok", help="train and report fit and generalisation epochs (grokking curves)")
    _common(p)
    _optimizer(p)
    p.add_argument("--epochs", type=int, default=300, help="epochs (default 300)")
    p.add_argument("--sampling", choices=["full", "shuffle", "replacement"], default="full")
    p.add_argument("--batch-size", type=int, default=None, help="minibatch size (not with --sampling full)")
    p.add_argument("--log-every", type=int, default=10, help="epochs between logged points (default 10)")
    p.add_argument("--threshold", type=float, default=0.99, help="accuracy that counts as fitted/generalised")
    p.set_defaults(handler=_grok)

    p = nsub.add_parser("sweep", help="weight-decay sweep up then down, warm-started (hysteresis)")
    _common(p)
    _optimizer(p, weight_decay=False)
    p.add_argument("--weight-decay", default="0:10:6", help="weight decays: list or START:STOP:NUM (default 0:10:6)")
    p.add_argument("--epochs-per-step", type=int, default=100, help="epochs at each weight decay (default 100)")
    p.add_argument("--sampling", choices=["full", "shuffle", "replacement"], default="full")
    p.add_argument("--batch-size", type=int, default=None)
    p.set_defaults(handler=_sweep)

    p = nsub.add_parser("escape", help="memorise, release with SGD over batch sizes and lrs, fit escape laws")
    _common(p)
    p.add_argument("--prepare-lr", type=float, default=1e-2, help="AdamW lr of the preparation (default 0.01)")
    p.add_argument("--prepare-weight-decay", type=float, default=0.0, help="its weight decay (default 0)")
    p.add_argument("--prepare-epochs", type=int, default=100, help="preparation epochs (default 100)")
    p.add_argument("--release-weight-decay", type=float, required=True, help="SGD weight decay of the release")
    p.add_argument("--batch-size", default="8,16,32", help="release batch sizes (list or range; default 8,16,32)")
    p.add_argument("--lr", default="1.0", help="release learning rates (one, or one per batch size)")
    p.add_argument("--release-epochs", type=int, default=200, help="release budget (default 200)")
    p.add_argument("--sampling", choices=["replacement", "shuffle", "full"], default="replacement")
    p.add_argument("--log-every", type=int, default=5, help="epochs between checks (default 5)")
    p.add_argument("--threshold", type=float, default=0.9, help="test accuracy that counts as escaped")
    p.set_defaults(handler=_escape)

    p = nsub.add_parser("verdicts", help="the verdict table from stored sweep and escape results")
    p.add_argument("file", metavar="FILE.h5")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_verdicts)
    return nl


def _common(p):
    p.add_argument("--task", choices=["modular_addition", "synthetic_images", "digits"], default="modular_addition")
    p.add_argument("--model", choices=["quadratic", "relu", "image"], default="quadratic",
                   help="quadratic MLP + MSE, ReLU MLP + cross-entropy, or the 3-layer image MLP")
    p.add_argument("--p", type=int, default=97, help="modulus (default 97)")
    p.add_argument("--train-fraction", type=float, default=0.5, help="fraction of pairs that train (default 0.5)")
    p.add_argument("--n-train", type=int, default=1000, help="training images (image tasks; default 1000)")
    p.add_argument("--data-seed", type=int, default=0, help="seed of the split (default 0)")
    p.add_argument("--width", type=int, default=500, help="hidden width (default 500)")
    p.add_argument("--init-scale", type=float, default=1.0, help="multiplies the initial weights (default 1)")
    p.add_argument("--n-seeds", type=int, default=1, help="independent runs (default 1)")
    p.add_argument("--dtype", choices=["float64", "float32"], default="float32")
    p.add_argument("--seed", type=int, default=None, help="root seed (default: fresh, recorded)")
    p.add_argument("--n-threads", type=int, default=None, help="numba threads (results do not depend on it)")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.add_argument("--out", metavar="FILE.h5", help="append the result to this HDF5 file")


def _optimizer(p, *, weight_decay=True):
    p.add_argument("--optimizer", choices=["adamw", "sgd"], default="adamw")
    p.add_argument("--lr", default="0.01", help="learning rate (default 0.01)")
    if weight_decay:
        p.add_argument("--weight-decay", default="5", help="weight decay (default 5)")


def _task_model(args):
    from .. import nonlinear as nl

    if args.task == "modular_addition":
        task = nl.modular_addition(args.p, args.train_fraction, data_seed=args.data_seed)
    elif args.task == "synthetic_images":
        task = nl.synthetic_images(args.n_train, args.n_train, data_seed=args.data_seed)
    else:
        task = nl.digits(args.n_train, data_seed=args.data_seed)
    if args.model == "image":
        model = nl.image_mlp(task.n_inputs, args.width, task.n_classes)
    elif task.name != "modular_addition":
        raise ValueError(f"model must be 'image' for task {args.task!r}, got {args.model!r}")
    else:
        model = (nl.quadratic_mlp if args.model == "quadratic" else nl.relu_mlp)(args.p, args.width)
    return task, model


def _opt(args, weight_decay):
    from .. import nonlinear as nl

    lr = one_value(args.lr, name="lr")
    return nl.adamw(lr, weight_decay) if args.optimizer == "adamw" else nl.sgd(lr, weight_decay)


def _emit(result, summary, lines, args):
    names = []
    if args.out:
        from ..io import save

        names = [save(result, args.out, command=args.command_line)]
    if args.json:
        import json

        from ..results import to_jsonable

        print(json.dumps(to_jsonable({**summary, "stored": names})))
        return
    print("\n".join(lines + ([f"stored {', '.join(names)} in {args.out}"] if names else [])))


def _grok(args):
    from .. import nonlinear as nl

    task, model = _task_model(args)
    run = nl.train(task, model, _opt(args, one_value(args.weight_decay, name="weight_decay")), epochs=args.epochs,
                   batch_size=args.batch_size, sampling=args.sampling, n_seeds=args.n_seeds, dtype=args.dtype,
                   init_scale=args.init_scale, log_every=args.log_every, threshold=args.threshold, rng=args.seed,
                   n_threads=args.n_threads)
    summary = {"fit_epoch": run.fit_epoch, "generalisation_epoch": run.generalisation_epoch,
               "final_train_acc": run.train_acc[:, -1], "final_test_acc": run.test_acc[:, -1],
               "final_fourier_ipr": run.fourier_ipr[:, -1], "wall_time": run.stats["wall_time"]}
    lines = [f"{task.name} {task.config}, dims {model.dims}, {run.optimizer} lr {run.lr:g} weight_decay "
             f"{run.weight_decay:g}, {run.epochs} epochs, {run.n_seeds} seeds, {run.stats['wall_time']:.1f} s",
             "seed  fit_epoch  generalisation_epoch  train_acc  test_acc  fourier_ipr"]
    for s in range(run.n_seeds):
        lines.append(f"{s:4d}  {run.fit_epoch[s]:9g}  {run.generalisation_epoch[s]:20g}  {run.train_acc[s, -1]:9.4f}  "
                     f"{run.test_acc[s, -1]:8.4f}  {run.fourier_ipr[s, -1]:11.4f}")
    _emit(run, summary, lines, args)


def _sweep(args):
    from .. import nonlinear as nl

    task, model = _task_model(args)
    wds = values(args.weight_decay, name="weight_decay")
    sw = nl.weight_decay_sweep(task, model, _opt(args, 0.0), wds, epochs_per_step=args.epochs_per_step,
                               batch_size=args.batch_size, sampling=args.sampling, n_seeds=args.n_seeds,
                               dtype=args.dtype, init_scale=args.init_scale, rng=args.seed, n_threads=args.n_threads)
    up, down = sw.test_acc.mean(-1)
    summary = {"weight_decays": sw.weight_decays, "test_acc_up": up, "test_acc_down": down}
    lines = [f"weight-decay sweep, {args.epochs_per_step} epochs per step, {sw.n_seeds} seeds "
             f"(seed-mean test accuracy)", "weight_decay      up    down"]
    lines += [f"{w:12g}  {u:6.3f}  {d:6.3f}" for w, u, d in zip(sw.weight_decays, up, down)]
    _emit(sw, summary, lines, args)


def _escape(args):
    from .. import nonlinear as nl

    task, model = _task_model(args)
    esc = nl.escape_sweep(task, model, prepare=nl.adamw(args.prepare_lr, args.prepare_weight_decay),
                          prepare_epochs=args.prepare_epochs, release_weight_decay=args.release_weight_decay,
                          batch_size=values(args.batch_size, kind=int, name="batch_size"),
                          lr=values(args.lr, name="lr"), release_epochs=args.release_epochs, sampling=args.sampling,
                          n_seeds=args.n_seeds, dtype=args.dtype, threshold=args.threshold, log_every=args.log_every,
                          init_scale=args.init_scale, rng=args.seed, n_threads=args.n_threads)
    summary = {"batch_size": esc.batch_size, "lr": esc.lr, "n_escaped": esc.n_escaped, "tau": esc.tau,
               "tau_lower": esc.tau_lower, "arrhenius_pvalue": esc.arrhenius_pvalue,
               "power_pvalue": esc.power_pvalue, "deterministic_pvalue": esc.deterministic_pvalue}
    lines = [f"prepared: train acc {np.round(esc.prepared_train_acc, 3).tolist()}, test acc "
             f"{np.round(esc.prepared_test_acc, 3).tolist()}; release at weight decay {esc.release_weight_decay:g}",
             "batch_size        lr  escaped  tau_epochs  tau_lower"]
    for i in range(esc.batch_size.size):
        lines.append(f"{esc.batch_size[i]:10d}  {esc.lr[i]:8g}  {esc.n_escaped[i]:3d}/{esc.n_seeds:<3d}  "
                     f"{esc.tau[i]:10.4g}  {esc.tau_lower[i]:9.4g}")
    lines.append(f"laws (p-values): Arrhenius {esc.arrhenius_pvalue:.3g}, power {esc.power_pvalue:.3g}, "
                 f"deterministic {esc.deterministic_pvalue:.3g}")
    _emit(esc, summary, lines, args)


def _verdicts(args):
    from .. import nonlinear as nl
    from ..io import list_results, load

    found = {}
    for entry in list_results(args.file):
        if entry.kind in ("NonlinearSweep", "NonlinearEscape") and entry.complete:
            found[entry.kind] = load(args.file, entry.name)  # the last one of each kind
    table = nl.verdicts(found.get("NonlinearSweep"), found.get("NonlinearEscape"))
    if args.json:
        import json

        from ..results import to_jsonable

        print(json.dumps(to_jsonable([v.__dict__ for v in table])))
        return
    for v in table:
        print(f"{v.quantity}: {v.outcome} | measured: {v.measured} | {v.detail}\n    rule: {v.rule}")
