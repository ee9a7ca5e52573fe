"""Predicted against measured escape and plateau times of trained linear networks (docs/predict.md).

Every measurement is a small real training run (16 seeds, seconds each); every prediction is a
quadrature from the data and the settings (about 0.3 s). Regimes:

(a) minibatch SGD with replacement, the weak mode lost (rank 2 -> 1): two draws, two weight decays,
    two learning rates, B/lr from 80 to 400;
(b) random reshuffling (sampling="shuffle"): the exact reduced simulation (predict_shuffled_escape) against
    32 trained seeds per point, two draws, two weight decays, a one-mode teacher at widths 1 and 10;
(c) upward escape (rank 1 -> 2) under injected noise, full batch, width 10 and 2, Delta U / T = 3 ... 10;
(d) E5 plateaus: full-batch growth of mode 2 from its residual seed.

    python examples/predict_escape.py            # about 25 minutes on two busy cores ((b): about 20)
    python examples/predict_escape.py --quick    # a third of the points, about 2 minutes
    python examples/predict_escape.py --only b   # one regime (repeat --only for several)

Writes predict_vs_measured.png and prints the table and the ablation.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from phasetools.compare import MeasuredPoint, predicted_vs_measured
from phasetools.plot import predicted_vs_measured as figure
from phasetools.stats import exponential_mle
from phasetools.theory import data_mode_noise, landscape, log_first_passage_time
from phasetools.training import (GaussianTeacher, escape_epochs, mse_levels, predict_escape, predict_injected,
                                 predict_plateau, predict_shuffled_escape, prepare_trap, sparse_grokking, train,
                                 trap_weight_decay)

TEACHER = GaussianTeacher([0.9, 0.8])
TEST = TEACHER.test_set()
N_SEEDS = 16


def _fit(ep, ok):
    return exponential_mle(ep.astype(float), ~ok, time_unit="epochs")


MODELS_A = (("data + coupling", {}), ("Gaussian + coupling", dict(moments="gaussian")),
            ("data, no coupling", dict(coupling=False)), ("Gaussian, no coupling", dict(moments="gaussian", coupling=False)))


def backward(draw, wd, lr, batch_sizes, sampling="replacement", width=10, max_epochs=20_000):
    """(a)/(b): rank 2 -> 1 from a trapped rank-2 checkpoint at ``wd``; one point per batch size.

    The epoch budget is 8 x the predicted tau (at least 100, at most ``max_epochs``): a seed is
    censored with probability ~e^-8 if the prediction is right, and the MLE counts censored seeds.
    """
    data = TEACHER.sample(512, rng=draw)
    trap = prepare_trap(data, trap_weight_decays=(0.0, wd), trap_epochs=(300, 300), n_layers=3, width=width, lr=0.08,
                        batch_size=64, n_seeds=N_SEEDS, rng=np.random.SeedSequence(4242))
    lev = mse_levels(data, wd, n_layers=3, test=TEST)
    mid = 0.5 * (lev[1] + lev[2])
    points = []
    for B in batch_sizes:
        preds = {name: predict_escape(data, n_layers=3, width=width, weight_decay=wd, lr=lr, batch_size=B, **kw)
                 for name, kw in MODELS_A}
        epochs = (max_epochs if sampling == "shuffle"       # no prediction to size the budget by
                  else int(np.clip(8 * preds["data + coupling"].tau_epochs, 100, max_epochs)))
        run = train(data, n_layers=3, width=width, lr=lr, batch_size=B, sampling=sampling, weight_decay=wd,
                    convention="paper", init=trap, epochs=epochs, test=TEST, log_every=1, layer_log_every=epochs,
                    rng=np.random.SeedSequence([draw, int(wd * 1000), B, int(lr * 1000)]))
        fit = _fit(*escape_epochs(run.log_epochs, run.test_mse, mid, direction="up"))
        iso = preds["data + coupling"].tau_isotropic_epochs
        preds = {name: p.tau_epochs for name, p in preds.items()}
        preds["isotropic T_eff"] = iso
        regime = "(a) replacement" if sampling == "replacement" else "(b) reshuffling"
        points.append(MeasuredPoint(f"draw {draw}, wd {wd}, lr {lr}, B {B}, {sampling}", regime, fit, preds))
    return points


#: (b): (teacher eta, draw, weight decay, lr, width) -> ((B, epoch budget), ...) of the measured points.
SHUFFLED = {((0.9, 0.8), 1, 0.35, 0.1, 10): ((4, 300), (6, 600), (8, 1000), (9, 3000)),
            ((0.9, 0.8), 1, 0.35, 0.09, 10): ((8, 3000),),
            ((0.9, 0.8), 1, 0.345, 0.1, 10): ((6, 1000), (7, 3000), (8, 3000)),
            ((0.9, 0.8), 2, 0.286, 0.1, 10): ((4, 300), (6, 1000), (7, 3000), (8, 3000)),
            ((0.9, 0.8), 2, 0.286, 0.115, 10): ((8, 3000),),
            ((0.9, 0.8), 1, 0.35, 0.1, 2): ((8, 1000),),
            ((0.8,), 1, 0.55, 0.1, 1): ((6, 1000), (8, 2000), (10, 3000)),
            ((0.8,), 1, 0.55, 0.1, 10): ((8, 2000), (10, 3000))}
QUICK_SHUFFLED = {((0.9, 0.8), 1, 0.35, 0.1, 10): ((6, 600), (8, 1000))}


def derived_epoch_diffusion(data, wd, lr, B, n=3):
    """The 1-D model one derives by expanding the shuffled epoch map in ``lr`` (docs/predict.md, (b)):
    the balanced ray ``b`` of the weak mode with ``D_eff = eps D(b) [(lr F'(b))^2 (m^2 - 1)/12 + (N mod B)/(B m)]``
    (the partial sums of the batch noise under the curvature, and the samples ``drop_last`` leaves out),
    no coupling; its mean first-passage time in epochs (``inf`` where ``D_eff`` vanishes on the path)."""
    modes = data_mode_noise(data.X, data.Y)
    md = modes[-1]
    ref = predict_escape(data, n_layers=n, width=len(modes), weight_decay=wd, lr=lr, batch_size=B, coupling=False)
    kappa = 1.0 / data.Y.shape[1]
    gamma = wd / (2 * kappa)
    m, drop = data.n_samples // B, data.n_samples % B

    def force(b):
        return kappa * (-2 * md.c * b ** (n - 1) + 2 * md.a * b ** (2 * n - 1) + 2 * gamma * b)

    def curvature(b):
        return kappa * (-2 * md.c * (n - 1) * b ** (n - 2) + 2 * md.a * (2 * n - 1) * b ** (2 * n - 2) + 2 * gamma)

    def diffusion(b):
        D = 2 * kappa ** 2 * np.maximum(md.kernel(b ** n), 0.0) * b ** (2 * n - 2)
        return lr / B * D * ((lr * curvature(b)) ** 2 * (m * m - 1) / 12 + drop / (B * m)) + 1e-300

    with np.errstate(all="ignore"):
        return float(np.exp(log_first_passage_time(force, diffusion, ref.b_start, ref.b_target)) / (lr * m))


def reshuffled(eta, draw, wd, lr, width, points, n_seeds=32, ablate=False):
    """(b): the weak mode lost under random reshuffling, from a trapped checkpoint, 32 seeds per point.

    Escape = the escaping mode's end-to-end singular value below the prediction's target (the MSE
    midpoint of the mode): under reshuffling the test MSE crosses its midpoint many times while the
    mode is still learned (``tau_mse`` below, printed for contrast), so the test-MSE criterion of
    (a) would count excursions, not escapes. Predictions: the reduced simulation (64 seeds, budget
    as the measurement's), the with-replacement theory (a), and with ``ablate`` the reduced
    simulation without cross-mode entries (one scalar chain per mode).
    """
    teacher = GaussianTeacher(list(eta))
    test = teacher.test_set()
    data = teacher.sample(512, rng=draw)
    k = len(eta) - 1
    trap = prepare_trap(data, trap_weight_decays=(0.0, wd), trap_epochs=(300, 300), n_layers=3, width=width, lr=0.08,
                        batch_size=64, n_seeds=n_seeds, rng=np.random.SeedSequence(4242))
    lev = mse_levels(data, wd, n_layers=3, test=test)
    out = []
    for B, epochs in points:
        t0 = time.process_time()
        pred = predict_shuffled_escape(data, n_layers=3, width=width, weight_decay=wd, lr=lr, batch_size=B,
                                       max_epochs=epochs)
        cost = time.process_time() - t0
        preds = {"data + coupling": pred.tau_epochs, "isotropic T_eff": pred.tau_isotropic_epochs,
                 "with replacement (a)": predict_escape(data, n_layers=3, width=width, weight_decay=wd, lr=lr,
                                                        batch_size=B).tau_epochs,
                 "derived lr^2 diffusion": derived_epoch_diffusion(data, wd, lr, B)}
        if ablate:
            preds["scalar chains, no cross"] = predict_shuffled_escape(
                data, n_layers=3, weight_decay=wd, lr=lr, batch_size=B, cross=False, max_epochs=epochs).tau_epochs
        run = train(data, n_layers=3, width=width, lr=lr, batch_size=B, sampling="shuffle", weight_decay=wd,
                    convention="paper", init=trap, epochs=epochs, test=test, log_every=1, layer_log_every=epochs,
                    rng=np.random.SeedSequence([draw, int(wd * 1000), B, int(lr * 1000)]))
        fit = _fit(*escape_epochs(run.log_epochs, run.singular_values[:, :, k], pred.b_target ** 3, direction="down"))
        mse = _fit(*escape_epochs(run.log_epochs, run.test_mse, 0.5 * (lev[-2] + lev[-1]), direction="up"))
        print(f"(b) eta {eta}, draw {draw}, wd {wd}, lr {lr}, width {width}, B {B}: measured {fit.tau} "
              f"({fit.n_escaped}/{fit.n} in {epochs}; test-MSE crossings {mse.tau}), predicted {pred.tau_epochs:.4g} "
              f"({cost:.2f} s CPU), with replacement {preds['with replacement (a)']:.3g}, derived "
              f"{preds['derived lr^2 diffusion']:.3g}")
        label = f"{'1 mode' if k == 0 else f'draw {draw}'}, wd {wd}, lr {lr}, width {width}, B {B}, shuffle"
        out.append(MeasuredPoint(label, "(b) reshuffling", fit, preds))
    return out


def upward(draw, wd, ratios, epochs, width=10):
    """(c): rank 1 -> 2 under injected noise at Delta U / T = ``ratios``, full batch."""
    data = TEACHER.sample(512, rng=draw)
    m = data.moments()
    trap = prepare_trap(data, trap_weight_decays=(0.0, trap_weight_decay(data, 1, n_layers=3)),
                        trap_epochs=(300, 600), n_layers=3, width=width, lr=0.08, batch_size=64, n_seeds=N_SEEDS,
                        rng=np.random.SeedSequence(4243))
    lev = mse_levels(data, wd, n_layers=3, test=TEST)
    mid = 0.5 * (lev[1] + lev[2])
    barrier = float(landscape(3, m.spectrum[1], wd, m.a[1], convention="paper").barrier_fwd)
    points = []
    for r in ratios:
        T = barrier / r
        run = train(data, n_layers=3, width=width, lr=0.1, sampling="full", weight_decay=wd, convention="paper",
                    init=trap, epochs=epochs, temperature=T, test=TEST, log_every=5, layer_log_every=epochs,
                    rng=np.random.SeedSequence([draw, r, width]))
        fit = _fit(*escape_epochs(run.log_epochs, run.test_mse, mid, direction="down"))
        p = predict_injected(data, n_layers=3, width=width, weight_decay=wd, temperature=T, lr=0.1)
        points.append(MeasuredPoint(f"draw {draw}, wd {wd}, width {width}, dU/T {r}", "(c) injected, upward", fit,
                                    {"data + coupling": p.tau_epochs, "isotropic T_eff": p.tau_isotropic_epochs}))
    return points


def plateaus(rng, trap_epochs):
    """(d): E5 releases (25 samples, full batch, weight decay 0.0025, lr 0.1) from seeds of several sizes."""
    sg = sparse_grokking(TEACHER, pool_size=5000, n_train=25, test_size=1000, weight_decay=0.0025, lr=0.1,
                         batch_size=64, trap_epochs=trap_epochs, epochs=10_000, n_layers=3, width=10, n_seeds=2,
                         rng=rng, quiet=True)
    points = []
    for i in np.flatnonzero(sg.trapped):
        p = predict_plateau(sg.train_moments, sg.seed_size[i], n_layers=3, weight_decay=0.0025, lr=0.1)
        e = float(sg.escape_epoch[i])
        meas = (e, e, e) if sg.escaped[i] else (None, e, np.inf)
        points.append(MeasuredPoint(f"E5 rng {rng}, seed {sg.seed_size[i]:.3g}", "(d) plateau", meas,
                                    {"data + coupling": p.tau_epochs}))
    return points


OUT = "predict_vs_measured.png"


REGIMES = ("a", "b", "c", "d")


def main(quick=False, regimes=REGIMES):
    t0 = time.time()
    pts = []
    if "a" in regimes:
        pts += backward(1, 0.35, 0.1, (6, 24, 40) if quick else (6, 8, 16, 24, 32, 40))
        pts += backward(2, 0.286, 0.1, (8, 24) if quick else (8, 16, 24, 32, 40))
        if not quick:
            pts += backward(1, 0.345, 0.1, (8, 16, 24, 32, 40))
            pts += backward(1, 0.35, 0.05, (4, 8, 12, 16))
    if "b" in regimes:
        for (eta, draw, wd, lr, width), points in (QUICK_SHUFFLED if quick else SHUFFLED).items():
            pts += reshuffled(eta, draw, wd, lr, width, points, ablate=not quick and width == 10 and points[0][0] == 6)
    if "c" in regimes:
        pts += upward(1, 0.30, (3, 10) if quick else (3, 5, 7, 10), 5000)
        if not quick:
            pts += upward(1, 0.28, (3, 5, 7, 10), 5000)
            pts += upward(2, 0.241, (3, 5, 7, 10), 5000)
            pts += upward(1, 0.30, (3, 5, 7), 20000, width=2)
    if "d" in regimes:
        pts += plateaus(6, (110, 150) if quick else (110, 130, 150, 160, 170, 200))
        if not quick:
            pts += plateaus(7, (200, 240, 260, 280))
    table = predicted_vs_measured(pts, factor=2.0, unit="epochs")
    for lab, reg, m, lo, out, p in zip(table.label, table.regime, table.measured, table.measured_low,
                                       table.outcomes(), table.predicted[:, 0]):
        shown = f"{m:10.4g}" if np.isfinite(m) else f"  > {lo:7.4g}"
        print(f"{reg:24s} {lab:42s} measured {shown}  predicted {p:10.4g}  {out}")
    for reg in dict.fromkeys(table.regime):
        sel = table.regime == reg
        print(f"{reg}: {int(np.sum(table.outcomes()[sel] == 'agrees'))}/{int(sel.sum())} within x2")
    if "a" in regimes:
        print(table.table("(a) replacement"))
    shuffled = [p for p in pts if p.regime == "(b) reshuffling"]
    if shuffled:
        print(predicted_vs_measured(shuffled, factor=3.0, unit="epochs").table())   # (b): the target is x3
    out = figure(table).save(OUT)
    print(f"wrote {out[0]} ({time.time() - t0:.0f} s)")
    return table


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a third of the points")
    ap.add_argument("--out", default=OUT, help=f"the figure (default {OUT})")
    ap.add_argument("--only", choices=REGIMES, action="append", default=None,
                    help="run only this regime (repeat for several; default all): a replacement, b reshuffling, "
                         "c injected noise, d plateaus")
    a = ap.parse_args()
    OUT = a.out
    main(a.quick, tuple(a.only or REGIMES))
