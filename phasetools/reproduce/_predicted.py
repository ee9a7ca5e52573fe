"""Predicted against measured escape times in the reproduction: the runs, the table, the figure, the ablation.

Four regimes (docs/predict.md), each measured by real training runs of the reproduction and
predicted from the data and the settings alone:

* (a) minibatches drawn with replacement, rank 2 -> 1 (``predict_replacement`` tasks: one
  :class:`~phasetools.training.ArrheniusSweep` point per batch size, ``sampling="replacement"``);
* (b) random reshuffling (the trainer's default sampler) at the same settings
  (``predict_shuffle`` tasks: one :class:`~phasetools.training.TrainingRun` per batch size),
  escape measured by the rank criterion: under reshuffling the test MSE crosses its midpoint
  over and over while the mode is still learned, so the midpoint rule of (a) (and of the
  corrected E4 sweep) counts excursions, not escapes;
* (c) upward escape (rank 1 -> 2) under injected noise, full batch (``predict_injected`` tasks:
  one :class:`~phasetools.training.TrainingRun` per ``Delta U / T``);
* (d) E5's full-batch plateaus from a residual seed (the ``e5`` result).

The runs store only what was measured (escape epochs per seed, the logs, the settings); the
predictions and the comparison are recomputed from them (:func:`prediction_table`), so the
figure and the ablation always follow the stored results and the current theory.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._experiments import ETA

__all__ = ["prediction_table", "prediction_figure", "prediction_lines", "INJECTED_SETUPS", "MODEL_NAMES"]

#: Prediction (c) set-ups: draw -> weight decay (inside the coexistence window, rank 1 metastable).
INJECTED_SETUPS = {1: 0.30, 2: 0.241}

#: The columns of the comparison: the prediction under test, then its ablations and contrasts.
MODEL_NAMES = ("prediction", "Gaussian moments", "no mode coupling", "Gaussian, no coupling",
               "with-replacement model (contrast)", "width-1 chain (no entropy)", "isotropic T_eff")

_ABLATIONS = (("Gaussian moments", {"moments": "gaussian"}), ("no mode coupling", {"coupling": False}),
              ("Gaussian, no coupling", {"moments": "gaussian", "coupling": False}))

REGIMES = ("(a) with replacement", "(b) reshuffling", "(c) injected, upward", "(d) plateau")


def _teacher():
    from ..training import GaussianTeacher
    return GaussianTeacher(list(ETA))


def _draw(draw):
    return _teacher().sample(512, rng=int(draw))


def replacement_point(p, rng):
    """Run one (a) point: release the E4 checkpoint of draw ``p["draw"]`` with minibatches drawn with replacement.

    Parameters
    ----------
    p : dict
        ``draw``, ``lr``, ``batch_size``, ``n_seeds``, ``max_epochs``, ``min_epochs``.
    rng : numpy.random.SeedSequence
        The task's stream.

    Returns
    -------
    phasetools.training.ArrheniusSweep
        One point; its epoch budget is 8 x the prediction (clipped to ``[min_epochs,
        max_epochs]``), so a seed is censored with probability about e^-8 if the prediction is right.
    """
    from .. import training as tr
    from . import _measure as M
    from ._experiments import PAPER_BATCH_SIZE, PAPER_LR, PAPER_NET, corrected_weight_decay
    data, test = _draw(p["draw"]), _teacher().test_set()
    wd = corrected_weight_decay(data)
    pred = tr.predict_escape(data, **PAPER_NET, weight_decay=wd, lr=p["lr"], batch_size=p["batch_size"])
    epochs = int(np.clip(8 * pred.tau_epochs, p["min_epochs"], p["max_epochs"]))
    trap = tr.prepare_trap(data, trap_weight_decays=(0.0, wd), trap_epochs=(300, 300), **PAPER_NET, lr=PAPER_LR,
                           batch_size=PAPER_BATCH_SIZE,
                           init=M.fresh_init(data, p["n_seeds"], np.random.SeedSequence(4243), "width"),
                           rng=np.random.SeedSequence(4242))
    lev = tr.mse_levels(data, wd, n_layers=3, test=test)
    return tr.arrhenius_sweep(data, trap, lr=p["lr"], batch_size=[p["batch_size"]], target_weight_decay=wd,
                              epochs=epochs, levels=(lev[2], lev[1]), test=test, sampling="replacement", rng=rng,
                              quiet=True)


def shuffle_point(p, rng):
    """Run one (b) point: release the E4 checkpoint of draw ``p["draw"]`` with random reshuffling.

    Parameters
    ----------
    p : dict
        ``draw``, ``lr``, ``batch_size``, ``n_seeds``, ``epochs``.
    rng : numpy.random.SeedSequence
        The task's stream.

    Returns
    -------
    phasetools.training.TrainingRun
        The release (``sampling="shuffle"`` recorded), end-to-end singular values every epoch
        (the rank criterion is applied to them in :func:`prediction_table`).
    """
    from .. import training as tr
    from . import _measure as M
    from ._experiments import PAPER_BATCH_SIZE, PAPER_LR, PAPER_NET, corrected_weight_decay
    data, test = _draw(p["draw"]), _teacher().test_set()
    wd = corrected_weight_decay(data)
    trap = tr.prepare_trap(data, trap_weight_decays=(0.0, wd), trap_epochs=(300, 300), **PAPER_NET, lr=PAPER_LR,
                           batch_size=PAPER_BATCH_SIZE,
                           init=M.fresh_init(data, p["n_seeds"], np.random.SeedSequence(4243), "width"),
                           rng=np.random.SeedSequence(4242))
    return tr.train(data, **PAPER_NET, lr=p["lr"], batch_size=p["batch_size"], sampling="shuffle", weight_decay=wd,
                    convention="paper", init=trap, epochs=p["epochs"], test=test, log_every=1,
                    layer_log_every=p["epochs"], rng=rng)


def injected_point(p, rng):
    """Run one (c) point: a rank-1 checkpoint trained full batch with injected noise at ``Delta U / T = p["ratio"]``.

    Parameters
    ----------
    p : dict
        ``draw``, ``ratio``, ``width``, ``n_seeds``, ``epochs``, ``trap_epochs``.
    rng : numpy.random.SeedSequence
        The task's stream.

    Returns
    -------
    phasetools.training.TrainingRun
        The release (``temperature`` and ``sampling="full"`` recorded), test MSE every 5 epochs.
    """
    from .. import training as tr
    from ..theory import landscape
    data, test = _draw(p["draw"]), _teacher().test_set()
    wd = INJECTED_SETUPS[int(p["draw"])]
    m = data.moments()
    s_trap, s_run = rng.spawn(2)
    trap = tr.prepare_trap(data, trap_weight_decays=(0.0, tr.trap_weight_decay(data, 1, n_layers=3)),
                           trap_epochs=tuple(p["trap_epochs"]), n_layers=3, width=p["width"], lr=0.08, batch_size=64,
                           n_seeds=p["n_seeds"], rng=s_trap)
    barrier = float(landscape(3, m.spectrum[1], wd, m.a[1], convention="paper").barrier_fwd)
    return tr.train(data, n_layers=3, width=p["width"], lr=0.1, sampling="full", weight_decay=wd, convention="paper",
                    init=trap, epochs=p["epochs"], temperature=barrier / p["ratio"], test=test, log_every=5,
                    layer_log_every=p["epochs"], rng=s_run)


# -- the comparison, from stored results ----------------------------------------------------------------------
def _fit(ep, ok):
    from ..stats import exponential_mle
    return exponential_mle(np.asarray(ep, dtype=float), ~np.asarray(ok, dtype=bool), time_unit="epochs")


def _safe(fn):
    """``fn()``'s value, or NaN where the theory has no prediction (it raises ValueError)."""
    try:
        return float(fn())
    except ValueError:
        return float("nan")


def _sweep_points(sw, draw, regime):
    """(a) and (b): one point per (lr, batch size) of an ArrheniusSweep, with every model column."""
    from ..compare import MeasuredPoint
    from ..training import predict_escape
    data = _draw(draw)
    out = []
    for i in range(sw.lr.size):
        kw = dict(n_layers=sw.n_layers, width=sw.width, weight_decay=sw.target_weight_decay, lr=float(sw.lr[i]),
                  batch_size=int(sw.batch_size[i]))
        try:
            base = predict_escape(data, **kw)
        except ValueError:          # e.g. no metastable learned state at this weight decay: no prediction
            base = None
        preds = {"isotropic T_eff": np.nan if base is None else base.tau_isotropic_epochs}
        if sw.sampling == "replacement":
            preds["prediction"] = np.nan if base is None else base.tau_epochs
            for name, extra in _ABLATIONS:
                preds[name] = _safe(lambda extra=extra: predict_escape(data, **kw, **extra).tau_epochs)
        else:
            preds.update(_shuffle_predictions(data, kw, sw.epochs, sw.escaped.shape[1], sw.sampling))
            preds["with-replacement model (contrast)"] = np.nan if base is None else base.tau_epochs
        label = (f"draw {draw}, wd {sw.target_weight_decay:g}, lr {sw.lr[i]:g}, B {sw.batch_size[i]}, "
                 f"sampling {sw.sampling}")
        out.append(MeasuredPoint(label, regime, _fit(sw.escape_epoch[i], sw.escaped[i]), preds))
    return out


def _shuffle_predictions(data, kw, epochs, n_seeds, sampling) -> dict:
    """Prediction (b) and its no-coupling ablation where the toolkit has a reshuffling model.

    Uses ``training.predict_shuffled_escape`` (an exact reduced simulation of the shuffled epochs,
    fixed ``rng``) when it exists, with as many simulated seeds as the measurement has (at least
    16) and twice its epoch budget (at least 500): enough to tell a measured escape from a
    censored one; otherwise ``predict_escape(sampling=...)``, which refuses ``"shuffle"``: the
    column is then NaN ("no model").
    """
    from .. import training
    model = getattr(training, "predict_shuffled_escape", None)
    if model is None:
        return {"prediction": _safe(lambda: training.predict_escape(data, **kw, sampling=sampling).tau_epochs)}
    budget = dict(max_epochs=int(max(500, 2 * epochs)), n_seeds=int(max(16, n_seeds)), rng=0)
    return {"prediction": _safe(lambda: model(data, **kw, **budget).tau_epochs),
            "no mode coupling": _safe(lambda: model(data, **kw, cross=False, **budget).tau_epochs)}


def escaping_mode(run) -> int:
    """The mode a reshuffled release can lose: the checkpoint's rank minus one, as
    :func:`phasetools.training.arrhenius_sweep` picks it for ``criterion="rank"``.

    Parameters
    ----------
    run : phasetools.training.TrainingRun
        The release; its first log point is the checkpoint.

    Returns
    -------
    int
        The index of the weakest learned mode among the end-to-end singular values (descending);
        ValueError when the checkpoint has no learned mode.
    """
    from ..training import RANK_THRESHOLD
    sv = np.nan_to_num(np.asarray(run.singular_values[:, 0], dtype=float), nan=0.0)
    k = int(np.median(np.sum(sv > RANK_THRESHOLD, axis=-1))) - 1
    if k < 0:
        raise ValueError("run: the checkpoint has no learned mode to lose (its rank is 0)")
    return k


def _shuffled_points(runs):
    """(b): the rank criterion on each reshuffled release, beside the reshuffling model and the contrasts."""
    from ..compare import MeasuredPoint
    from ..training import escape_epochs, predict_escape
    out = []
    for draw, run in runs:
        data = _draw(draw)
        kw = dict(n_layers=run.n_layers, width=run.width, weight_decay=float(run.weight_decay), lr=float(run.lr),
                  batch_size=int(run.batch_size))
        k = escaping_mode(run)
        base = predict_escape(data, **kw, mode=k)
        ep, ok = escape_epochs(run.log_epochs, run.singular_values[:, :, k], base.b_target ** run.n_layers,
                               direction="down")
        preds = {"isotropic T_eff": base.tau_isotropic_epochs, "with-replacement model (contrast)": base.tau_epochs}
        preds.update(_shuffle_predictions(data, kw, run.epochs, ep.size, run.sampling))
        label = (f"draw {draw}, wd {run.weight_decay:g}, lr {run.lr:g}, B {run.batch_size}, sampling {run.sampling} "
                 "(rank criterion)")
        out.append(MeasuredPoint(label, REGIMES[1], _fit(ep, ok), preds))
    return out


def _injected_points(runs):
    from ..compare import MeasuredPoint
    from ..training import escape_epochs, mse_levels, predict_injected
    out = []
    for draw, ratio, run in runs:
        wd = float(run.weight_decay)
        lev = mse_levels(run.train_moments, wd, n_layers=run.n_layers, test=run.test_moments)
        ep, ok = escape_epochs(run.log_epochs, run.test_mse, 0.5 * (lev[1] + lev[2]), direction="down")
        p = predict_injected(run.train_moments, n_layers=run.n_layers, width=run.width, weight_decay=wd,
                             temperature=run.temperature, lr=run.lr)
        out.append(MeasuredPoint(f"draw {draw}, wd {wd:g}, width {run.width}, dU/T {ratio:g}, sampling {run.sampling}",
                                 REGIMES[2], _fit(ep, ok), {"prediction": p.tau_epochs,
                                                            "width-1 chain (no entropy)": p.tau_isotropic_epochs}))
    return out


def _plateau_points(sg):
    from ..compare import MeasuredPoint
    from ..training import predict_plateau
    out = []
    for i in np.flatnonzero(sg.trapped & sg.full_batch):
        p = predict_plateau(sg.train_moments, float(sg.seed_size[i]), n_layers=sg.n_layers,
                            weight_decay=sg.weight_decay, lr=sg.lr)
        e = float(sg.escape_epoch[i])
        meas = (e, e, e) if sg.escaped[i] else (None, e, np.inf)
        out.append(MeasuredPoint(f"E5 seed {sg.seed_size[i]:.3g}, sampling full", REGIMES[3], meas,
                                 {"prediction": p.tau_epochs}))
    return out


def prediction_table(R):
    """Predicted against measured escape times (epochs) of every regime the results hold.

    Parameters
    ----------
    R : mapping
        Experiment name -> result (:func:`phasetools.reproduce.collect`): ``predict_replacement``
        (list of ``(draw, ArrheniusSweep)``), ``predict_shuffle`` (list of ``(draw,
        TrainingRun)``), ``predict_injected`` (list of ``(draw, ratio, TrainingRun)``) and
        ``e5``; missing ones give no points.

    Returns
    -------
    phasetools.compare.PredictedVsMeasured or None
        Columns :data:`MODEL_NAMES` (NaN where a model says nothing); None without any point.
        Computed from the stored measurements; no result is changed.
    """
    from ..compare import predicted_vs_measured
    pts = []
    for draw, sw in R.get("predict_replacement", []):
        pts += _sweep_points(sw, draw, REGIMES[0])
    pts += _shuffled_points(R.get("predict_shuffle", []))
    pts += _injected_points(R.get("predict_injected", []))
    if "e5" in R:
        pts += _plateau_points(R["e5"])
    if not pts:
        return None
    for p in pts:   # every point names every column, in one order
        p.predictions.update({m: p.predictions.get(m, np.nan) for m in MODEL_NAMES})
        ordered = {m: p.predictions[m] for m in MODEL_NAMES}
        p.predictions.clear()
        p.predictions.update(ordered)
    return predicted_vs_measured(pts, factor=2.0, unit="epochs")


def prediction_figure(table):
    """The predicted-against-measured figure of :func:`prediction_table` (log-log, factor-2 band).

    Parameters
    ----------
    table : phasetools.compare.PredictedVsMeasured

    Returns
    -------
    phasetools.plot.Plot
        Every column that has a value somewhere: the prediction filled, the ablations and the
        isotropic-``T_eff`` contrast hollow (off scale: at the right edge), lower bounds as triangles.
    """
    from ..plot import predicted_vs_measured
    cols = [str(m) for j, m in enumerate(table.models) if np.isfinite(table.predicted[:, j]).any()]
    if str(table.models[0]) not in cols:
        cols.insert(0, str(table.models[0]))
    return predicted_vs_measured(table, models=cols)


def _ratio_moves(table, model, sel):
    """Median of ``model / prediction`` over the points of ``sel`` where both exist."""
    p0 = table.predicted[:, 0]
    pm = table.predicted[:, table._col(model)]
    ok = sel & np.isfinite(p0) & np.isfinite(pm) & (p0 > 0)
    return float(np.median(pm[ok] / p0[ok])) if ok.any() else float("nan")


def _g(x):
    return "-" if not np.isfinite(x) else f"{x:.3g}"


def prediction_lines(table, figure_name="predict_vs_measured.png") -> list:
    """The report's section: the figure, one row per point and the ablation table.

    Parameters
    ----------
    table : phasetools.compare.PredictedVsMeasured or None
        From :func:`prediction_table` (None: the section says no point was run).
    figure_name : str
        The figure's file next to the report.

    Returns
    -------
    list of str
        Markdown lines.
    """
    head = ["## Predicted against measured escape times", ""]
    if table is None:
        return head + ["No prediction experiment in these results.", ""]
    out = table.outcomes()
    lines = head + [
        "Every measured point is a censoring-aware exponential MLE over its seeds (epochs); every prediction is "
        "computed from the training data and the settings alone, with no fitted parameter (docs/predict.md). "
        "A point where nothing escaped is a lower bound and agrees when the prediction times 2 reaches it. "
        "Each label states the sampler that ran.", "",
        f"![predicted against measured escape and plateau times]({figure_name})", "",
        "| regime | set-up | measured (epochs) | predicted | ratio | within x2 |", "|---|---|---|---|---|---|"]
    for i in range(table.label.size):
        m = (f"> {table.measured_low[i]:.3g}" if table.lower_bound[i] else
             f"{table.measured[i]:.3g} [{table.measured_low[i]:.3g}, {table.measured_high[i]:.3g}]")
        p = table.predicted[i, 0]
        pred = "no model" if np.isnan(p) else ("never" if np.isinf(p) else f"{p:.3g}")
        ratio = _g(table.ratio()[i]) if np.isfinite(p) else "-"
        lines.append(f"| {table.regime[i]} | {table.label[i]} | {m} | {pred} | {ratio} | {out[i]} |")
    lines += ["", "**Ablation**: what each ingredient buys. `moves the prediction by` is the median of the model's "
              "prediction over the full prediction on the same points; the other columns compare it with the "
              "measurements.", "",
              "| regime | model | within x2 | median measured/predicted | worst factor | moves the prediction by |",
              "|---|---|---|---|---|---|"]
    for reg in dict.fromkeys(str(r) for r in table.regime):
        sel = table.regime == reg
        for m, k, n, med, worst in table.ablation(reg):
            if n:
                move = 1.0 if m == str(table.models[0]) else _ratio_moves(table, m, sel)
                moved = "-" if not np.isfinite(move) else f"x{move:.3g}"
                lines.append(f"| {reg} | {m} | {k}/{n} | {_g(med)} | {_g(10 ** worst)} | {moved} |")
            elif m == str(table.models[0]):
                lines.append(f"| {reg} | {m} | no model | - | - | - |")
    return lines + [""]


def write_prediction_figure(table, out) -> list:
    """Draw :func:`prediction_figure` into ``out/predict_vs_measured.png``; returns the paths written.

    Parameters
    ----------
    table : phasetools.compare.PredictedVsMeasured or None
    out : str or Path
        The reproduction folder.

    Returns
    -------
    list of Path
    """
    if table is None:
        return []
    import matplotlib.pyplot as plt
    plot = prediction_figure(table)
    paths = plot.save(Path(out) / "predict_vs_measured.png")
    plt.close(plot.figure)
    return list(paths)
