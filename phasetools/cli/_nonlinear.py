"""``phasetools nonlinear ...``: grokking runs, weight-decay sweeps, escapes and verdicts for nonlinear networks.

Every command builds its task and network from flags, runs the function of
:mod:`phasetools.nonlinear`, prints a summary (or ``--json``) and appends the result to
``--out FILE.h5`` with the command line as provenance. ``verdicts`` reads stored results.
"""

from __future__ import annotations

import numpy as np

from ._args import command_group, count, one_value, values


def _real(name):
    """An argparse ``type=`` for one number (errors name the parameter; one line, exit 2)."""
    def parse(text):
        return one_value(text, name=name)

    parse.__name__ = name
    return parse


def add_parser(sub):
    """Register ``phasetools nonlinear`` and its subcommands.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        Where ``nonlinear`` is registered (the top-level subcommands).

    Returns
    -------
    argparse.ArgumentParser
        The ``nonlinear`` parser (subcommands grok, sweep, escape, init-scale, verdicts).
    """
    nl, nsub = command_group(sub, "nonlinear",
                             "grokking in nonlinear networks: runs, weight-decay sweeps, escapes, verdicts")

    p = nsub.add_parser("grok", help="train and report fit and generalisation epochs (grokking curves)")
    _common(p)
    _optimizer(p)
    p.add_argument("--epochs", type=count("epochs"), default=300, help="epochs (default 300)")
    p.add_argument("--sampling", choices=["full", "shuffle", "replacement"], default="full")
    p.add_argument("--batch-size", type=count("batch_size", minimum=1), default=None,
                   help="minibatch size (not with --sampling full)")
    p.add_argument("--log-every", type=count("log_every", minimum=1), default=10,
                   help="epochs between logged points (default 10)")
    p.add_argument("--threshold", type=_real("threshold"), default=0.99, help="accuracy that counts as fitted/generalised")
    p.add_argument("--label-noise", type=_real("label_noise"), default=0.0,
                   help="sd of Gaussian noise on every one-hot target entry of every batch (MSE; default 0)")
    p.add_argument("--temperature", type=_real("temperature"), default=0.0,
                   help="injected Langevin noise sqrt(2 lr T) N(0,1) per weight per step (default 0)")
    p.set_defaults(handler=_grok)

    p = nsub.add_parser("sweep", help="weight-decay sweep up then down, warm-started (hysteresis)")
    _common(p)
    _optimizer(p, weight_decay=False)
    p.add_argument("--weight-decay", default="0:10:6", help="weight decays: list or START:STOP:NUM (default 0:10:6)")
    p.add_argument("--epochs-per-step", type=count("epochs_per_step", minimum=1), default=100,
                   help="epochs at each weight decay (default 100)")
    p.add_argument("--sampling", choices=["full", "shuffle", "replacement"], default="full")
    p.add_argument("--batch-size", type=count("batch_size", minimum=1), default=None,
                   help="minibatch size (not with --sampling full)")
    p.set_defaults(handler=_sweep)

    p = nsub.add_parser("escape", help="memorise, release with SGD over batch sizes and lrs, fit escape laws")
    _common(p)
    p.add_argument("--prepare-lr", type=_real("prepare_lr"), default=1e-2,
                   help="AdamW lr of the preparation (default 0.01)")
    p.add_argument("--prepare-weight-decay", type=_real("prepare_weight_decay"), default=0.0,
                   help="its weight decay (default 0)")
    p.add_argument("--prepare-epochs", type=count("prepare_epochs", minimum=1), default=100,
                   help="preparation epochs (default 100)")
    p.add_argument("--release-weight-decay", type=_real("release_weight_decay"), required=True,
                   help="SGD weight decay of the release")
    p.add_argument("--batch-size", default=None,
                   help="release batch sizes (list or range; default 8,16,32; not with --sampling full)")
    p.add_argument("--lr", default="1.0", help="release learning rates (one, or one per point)")
    p.add_argument("--label-noise", default="0", help="release label noise (one, or one per point; default 0)")
    p.add_argument("--temperature", default="0", help="release injected-noise temperature (one, or one per point)")
    p.add_argument("--x-law", choices=["auto", "batch_size/lr", "1/temperature", "batch_size/(lr*label_noise^2)"],
                   default="auto", help="abscissa of the escape-law fits (default auto: the noise that varies)")
    p.add_argument("--release-epochs", type=count("release_epochs", minimum=1), default=200,
                   help="release budget (default 200)")
    p.add_argument("--sampling", choices=["replacement", "shuffle", "full"], default="replacement")
    p.add_argument("--log-every", type=count("log_every", minimum=1), default=5, help="epochs between checks (default 5)")
    p.add_argument("--threshold", type=_real("threshold"), default=0.9, help="test accuracy that counts as escaped")
    p.set_defaults(handler=_escape)

    p = nsub.add_parser("init-scale", help="delay between fitting and generalising against the initial scale")
    _common(p)
    _optimizer(p)
    p.add_argument("--init-scales", default="0.5,1,2,4", help="initial scales (list or range; default 0.5,1,2,4)")
    p.add_argument("--epochs", type=count("epochs", minimum=1), default=300, help="epochs per scale (default 300)")
    p.add_argument("--sampling", choices=["full", "shuffle", "replacement"], default="full")
    p.add_argument("--batch-size", type=count("batch_size", minimum=1), default=None,
                   help="minibatch size (not with --sampling full)")
    p.add_argument("--log-every", type=count("log_every", minimum=1), default=10,
                   help="epochs between logged points (default 10)")
    p.add_argument("--threshold", type=_real("threshold"), default=0.99,
                   help="accuracy that counts as fitted/generalised (default 0.99)")
    p.set_defaults(handler=_init_scale)

    p = nsub.add_parser("verdicts", help="the verdict table from stored sweep and escape results")
    p.add_argument("file", metavar="FILE.h5")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_verdicts)
    return nl


def _common(p):
    p.add_argument("--task", choices=["modular_addition", "synthetic_images", "digits"], default="modular_addition")
    p.add_argument("--model", choices=["quadratic", "relu", "image"], default="quadratic",
                   help="quadratic MLP + MSE, ReLU MLP + cross-entropy, or the 3-layer image MLP")
    p.add_argument("--p", type=count("p", minimum=2), default=97, help="modulus (default 97)")
    p.add_argument("--train-fraction", type=_real("train_fraction"), default=0.5,
                   help="fraction of pairs that train (default 0.5)")
    p.add_argument("--n-train", type=count("n_train", minimum=1), default=1000,
                   help="training images (image tasks; default 1000)")
    p.add_argument("--data-seed", type=count("data_seed"), default=0, help="seed of the split (default 0)")
    p.add_argument("--width", type=count("width", minimum=1), default=500, help="hidden width (default 500)")
    p.add_argument("--init-scale", type=_real("init_scale"), default=1.0,
                   help="multiplies the initial weights (default 1)")
    p.add_argument("--n-seeds", type=count("n_seeds", minimum=1), default=1, help="independent runs (default 1)")
    p.add_argument("--dtype", choices=["float64", "float32"], default="float32")
    p.add_argument("--seed", type=count("seed"), default=None, help="root seed (default: fresh, recorded)")
    p.add_argument("--n-threads", type=count("n_threads", minimum=1), default=None,
                   help="numba threads (results do not depend on it)")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.add_argument("--out", metavar="FILE.h5", help="append the result to this HDF5 file")


def _optimizer(p, *, weight_decay=True):
    p.add_argument("--optimizer", choices=["adamw", "sgd"], default="adamw")
    p.add_argument("--lr", default="0.01", help="learning rate (default 0.01)")
    if weight_decay:
        p.add_argument("--weight-decay", default="5", help="weight decay (default 5)")


def _task_model(args):
    """The task and network the flags name (after refusing contradictory sampling flags)."""
    from .. import nonlinear as nl

    _check_batch_size(args)
    return nl.build_task_and_model(task=args.task, model=args.model, p=args.p, train_fraction=args.train_fraction,
                                   n_train=args.n_train, data_seed=args.data_seed, width=args.width)


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
    _check_label_noise(model, [args.label_noise])
    run = nl.train(task, model, _opt(args, one_value(args.weight_decay, name="weight_decay")), epochs=args.epochs,
                   batch_size=args.batch_size, sampling=args.sampling, n_seeds=args.n_seeds, dtype=args.dtype,
                   init_scale=args.init_scale, log_every=args.log_every, threshold=args.threshold,
                   label_noise=args.label_noise, temperature=args.temperature, rng=args.seed, n_threads=args.n_threads)
    summary = {"fit_epoch": run.fit_epoch, "generalisation_epoch": run.generalisation_epoch,
               "final_train_acc": run.train_acc[:, -1], "final_test_acc": run.test_acc[:, -1],
               "final_fourier_ipr": run.fourier_ipr[:, -1], "wall_time": run.stats["wall_time"]}
    lines = [(f"{task.name} {task.config}, dims {model.dims}, {run.optimizer} lr {run.lr:g} weight_decay "
              f"{run.weight_decay:g}, {run.epochs} epochs, {run.n_seeds} seeds, {run.stats['wall_time']:.1f} s"),
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
    lines = [(f"weight-decay sweep, {args.epochs_per_step} epochs per step, {sw.n_seeds} seeds "
              f"(seed-mean test accuracy)"), "weight_decay      up    down"]
    lines += [f"{w:12g}  {u:6.3f}  {d:6.3f}" for w, u, d in zip(sw.weight_decays, up, down)]
    _emit(sw, summary, lines, args)


def _escape(args):
    from .. import nonlinear as nl

    lrs, noise, temps = (values(args.lr, name="lr"), values(args.label_noise, name="label_noise"),
                         values(args.temperature, name="temperature"))
    _check_x_law(args.x_law, noise, temps)
    task, model = _task_model(args)
    _check_label_noise(model, noise)
    esc = nl.escape_sweep(task, model, prepare=nl.adamw(args.prepare_lr, args.prepare_weight_decay),
                          prepare_epochs=args.prepare_epochs, release_weight_decay=args.release_weight_decay,
                          batch_size=_release_batch_sizes(args),
                          lr=lrs, label_noise=noise, temperature=temps, x_law=args.x_law,
                          release_epochs=args.release_epochs, sampling=args.sampling,
                          n_seeds=args.n_seeds, dtype=args.dtype, threshold=args.threshold, log_every=args.log_every,
                          init_scale=args.init_scale, rng=args.seed, n_threads=args.n_threads)
    summary = {"batch_size": esc.batch_size, "lr": esc.lr, "label_noise": esc.label_noise,
               "temperature": esc.temperature, "x_law": esc.x_law, "n_escaped": esc.n_escaped, "tau": esc.tau,
               "tau_lower": esc.tau_lower, "arrhenius_pvalue": esc.arrhenius_pvalue,
               "power_pvalue": esc.power_pvalue, "deterministic_pvalue": esc.deterministic_pvalue}
    lines = [(f"prepared: train acc {np.round(esc.prepared_train_acc, 3).tolist()}, test acc "
              f"{np.round(esc.prepared_test_acc, 3).tolist()}; release at weight decay {esc.release_weight_decay:g}"),
             "batch_size        lr  label_noise  temperature  escaped  tau_epochs  tau_lower"]
    for i in range(esc.batch_size.size):
        lines.append(f"{esc.batch_size[i]:10d}  {esc.lr[i]:8g}  {esc.label_noise[i]:11g}  {esc.temperature[i]:11g}  "
                     f"{esc.n_escaped[i]:3d}/{esc.n_seeds:<3d}  {esc.tau[i]:10.4g}  {esc.tau_lower[i]:9.4g}")
    lines.append(f"laws against {esc.x_law} (p-values): Arrhenius {esc.arrhenius_pvalue:.3g}, power "
                 f"{esc.power_pvalue:.3g}, deterministic {esc.deterministic_pvalue:.3g}")
    _emit(esc, summary, lines, args)


def _init_scale(args):
    from .. import nonlinear as nl

    task, model = _task_model(args)
    res = nl.init_scale_sweep(task, model, _opt(args, one_value(args.weight_decay, name="weight_decay")),
                              values(args.init_scales, name="init_scales"), epochs=args.epochs,
                              batch_size=args.batch_size, sampling=args.sampling, n_seeds=args.n_seeds,
                              dtype=args.dtype, log_every=args.log_every, threshold=args.threshold, rng=args.seed,
                              n_threads=args.n_threads)
    summary = {"init_scales": res.init_scales, "fit_epoch": res.fit_epoch,
               "generalisation_epoch": res.generalisation_epoch, "final_test_acc": res.test_acc[..., -1]}
    lines = [f"delay against the initial scale, {res.epochs} epochs, {res.n_seeds} seeds (NaN: not within the budget)",
             "init_scale  fit_epochs  generalisation_epochs"]
    lines += [f"{s:10g}  {res.fit_epoch[k].tolist()}  {res.generalisation_epoch[k].tolist()}"
              for k, s in enumerate(res.init_scales)]
    _emit(res, summary, lines, args)


def _check_x_law(x_law, label_noise, temperature):
    """Refuse an ``x_law`` whose noise is off at every point (every abscissa inf: no law can be fitted).

    Parameters
    ----------
    x_law : str
        The ``--x-law`` choice.
    label_noise, temperature : list of float
        The release points' label noise and injected-noise temperature.
    """
    for law, name, vals in (("1/temperature", "temperature", temperature),
                            ("batch_size/(lr*label_noise^2)", "label_noise", label_noise)):
        if x_law == law and not any(v > 0 for v in vals):
            raise ValueError(f"--x-law {law} needs {name} > 0 at some point (at {name} = 0 the abscissa is inf), "
                             f"got --{name.replace('_', '-')} {','.join(f'{v:g}' for v in vals)}")


def _check_batch_size(args):
    """Refuse ``--batch-size`` with ``--sampling full``, where every step uses the whole training set.

    The API ignores ``batch_size`` with ``sampling="full"`` (see :func:`phasetools.nonlinear.train`);
    on the command line a batch size given there is a contradiction, not a default.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed flags (``sampling``, ``batch_size``).
    """
    if args.sampling == "full" and args.batch_size is not None:
        raise ValueError(f"--batch-size does not go with --sampling full (each step uses the whole training set), "
                         f"got --batch-size {args.batch_size}; leave out --batch-size, or use --sampling shuffle "
                         f"or --sampling replacement")


def _check_label_noise(model, label_noise):
    """Refuse label noise on a cross-entropy network, naming the command-line flags.

    Parameters
    ----------
    model : phasetools.nonlinear.MLP
        The network the flags built.
    label_noise : list of float
        The ``--label-noise`` values.
    """
    if model.loss != "mse" and any(v > 0 for v in label_noise):
        raise ValueError(f"--label-noise needs an MSE network (Gaussian noise on one-hot targets: --model quadratic "
                         f"or image), got --model relu (cross-entropy) and --label-noise "
                         f"{','.join(f'{v:g}' for v in label_noise)}; use --label-noise 0")


def _release_batch_sizes(args):
    if args.batch_size is not None:
        return values(args.batch_size, kind=int, name="batch_size")
    return [1] if args.sampling == "full" else [8, 16, 32]  # full batch: escape_sweep uses the training set


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
