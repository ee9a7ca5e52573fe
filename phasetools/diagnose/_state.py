"""What holds a network where it is: its features, layer balance, the theory's landscape at
the current state, the barrier out, the escape time and whether SGD noise can start a
missing feature (docs/diagnose.md)."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import ClassVar

import numpy as np

from .._validation import check_int, check_scalar
from ..results import Result, register

__all__ = ["StateDiagnosis", "diagnose_state", "load_weights"]

#: A layer singular value below this fraction of the layer's largest is numerically zero.
ABSENT = 1e-8


def load_weights(weights, *, seed: int = 0) -> list:
    """Per-layer weight matrices ``[W_1, ..., W_n]`` (the order they act on the input).

    Parameters
    ----------
    weights : list of arrays, TrainingRun, dict, or str / Path of an ``.npz``
        Arrays per layer; a run (its final weights of ``seed``); a PyTorch-style
        ``state_dict`` of ``nn.Linear`` layers saved as arrays (keys ``*.weight`` in layer
        order; ``*.bias`` must be absent or zero: the theory has no biases), or an ``.npz``
        file of such arrays (read without pickle; no torch needed).
    seed : int >= 0
        The seed of a TrainingRun.

    Returns
    -------
    list of numpy.ndarray
    """
    from ..training import TrainingRun

    if isinstance(weights, TrainingRun):
        s = check_int(seed, "seed", 0)
        if s >= weights.n_seeds:
            raise ValueError(f"seed must be < {weights.n_seeds} (the run's seeds), got {seed}")
        return [np.asarray(w, float) for w in weights.weights(seed=s)]
    if isinstance(weights, (str, Path)):
        path = Path(weights)
        if path.suffix.lower() != ".npz" or not path.is_file():
            raise ValueError(f"weights: must be an existing .npz file, got {str(path)!r}")
        with np.load(path, allow_pickle=False) as z:
            return load_weights({k: z[k] for k in z.files})
    if isinstance(weights, dict):
        keys = [k for k in weights if not str(k).endswith(".bias")]
        for k in weights:
            if str(k).endswith(".bias") and np.any(np.asarray(weights[k]) != 0):
                raise ValueError(f"weights: {k!r} is a non-zero bias; the theory is of bias-free networks")
        return load_weights([weights[k] for k in keys])
    if not isinstance(weights, (list, tuple)) or len(weights) < 2:
        raise ValueError("weights must be a list of at least 2 weight matrices, a TrainingRun, a dict of arrays "
                         "or an .npz path")
    W = [np.asarray(w, dtype=float) for w in weights]
    for i, (w, nxt) in enumerate(pairwise(W)):
        if w.ndim != 2 or nxt.ndim != 2 or nxt.shape[1] != w.shape[0]:
            raise ValueError(f"weights: layer {i + 1} has shape {w.shape}, layer {i + 2} {nxt.shape}: they do not "
                             f"chain (W_{i + 2} W_{i + 1})")
    return W


@register
@dataclass(frozen=True, eq=False, repr=False)
class StateDiagnosis(Result):
    """The diagnosis of one network state against the theory of its data.

    Parameters
    ----------
    n_layers : int
    weight_decay : float
        The run's weight decay (units of ``convention``).
    convention : str
    spectrum, a : numpy.ndarray
        The data's feature strengths ``c_k`` and input variances.
    layer_singular_values : numpy.ndarray
        (layer, k) NaN-padded.
    singular_values : numpy.ndarray
        Of the end-to-end map.
    effective_rank : int
        End-to-end singular values above ``RANK_THRESHOLD``.
    feature_lam : numpy.ndarray
        The end-to-end value of each data feature: the ``k``-th singular value of the
        end-to-end map (the states of the aligned theory order features by strength).
    feature_seed : numpy.ndarray
        (feature, layer): the ``k``-th singular value of every layer (the residual seed).
    learned, absent : numpy.ndarray
        Per feature: at least half of the theory's learned value; numerically zero in every layer.
    layer_balance : numpy.ndarray
        ``||W_{i+1}^T W_{i+1} - W_i W_i^T||_F`` per adjacent pair, relative to their mean squared norm.
    lam_saddle, lam_min, barrier_up, barrier_down, gamma_c, gamma_sp : numpy.ndarray
        The theory's landscape of each feature at ``weight_decay`` (NaN where absent).
    global_state : numpy.ndarray
        Per feature ``"learned"``, ``"trivial"`` or ``"degenerate"``.
    state : str
        ``"local_minimum"``, ``"saddle"`` or ``"on_its_way"``.
    metastable : bool
        A local minimum that is not the global one.
    escape_mode : int
        The feature whose change leads to the global state (-1: none).
    barrier : float
        The barrier of that change (NaN: none).
    feature_noise : numpy.ndarray
        Per feature: trace of the per-sample gradient covariance projected on the weights that
        carry it (first layer along ``v_k``, last along ``u_k``, hidden directions outside
        those of the stronger learned features); 0 when it is absent in every layer.
    noise_trace : float
        The trace of the full per-sample gradient covariance.
    sgd_can_start : bool
        ``feature_noise`` of the escape mode is above ``1e-12 * noise_trace``.
    tau_epochs : float
        Predicted epochs to the global state at the run's settings: for an unlearned
        feature the gradient-flow growth time from its residual seed (inf: the seed is below
        the saddle or absent and SGD noise cannot start it); for a learned feature the
        global state drops, :func:`phasetools.training.predict_escape` (minibatch noise,
        sampling with replacement; needs samples and ``batch_size``); NaN: no prediction.
    cure_seed, cure_weight_decay, cure_epochs : float, float, int
        The theory's cure of an unlearned escape feature (:func:`plan_cure`): re-seed it
        with ``cure_seed`` per layer (the residual seed if that is not numerically zero, else
        a third of its saddle), then train at ``cure_weight_decay`` for ``cure_epochs``
        (NaN / -1: no cure planned).
    summary : str
        The plain-language line.
    """

    n_layers: int
    weight_decay: float
    convention: str
    spectrum: np.ndarray
    a: np.ndarray
    layer_singular_values: np.ndarray
    singular_values: np.ndarray
    effective_rank: int
    feature_lam: np.ndarray
    feature_seed: np.ndarray
    learned: np.ndarray
    absent: np.ndarray
    layer_balance: np.ndarray
    lam_saddle: np.ndarray
    lam_min: np.ndarray
    barrier_up: np.ndarray
    barrier_down: np.ndarray
    gamma_c: np.ndarray
    gamma_sp: np.ndarray
    global_state: np.ndarray
    state: str
    metastable: bool
    escape_mode: int
    barrier: float
    feature_noise: np.ndarray
    noise_trace: float
    sgd_can_start: bool
    tau_epochs: float
    cure_seed: float
    cure_weight_decay: float
    cure_epochs: int
    summary: str

    _config_fields = ("n_layers", "weight_decay", "convention")
    _dims: ClassVar[dict] = {
             "spectrum": ("mode",), "a": ("mode",), "feature_lam": ("mode",), "feature_seed": ("mode", "layer"),
             "learned": ("mode",), "absent": ("mode",), "lam_saddle": ("mode",), "lam_min": ("mode",),
             "barrier_up": ("mode",), "barrier_down": ("mode",), "gamma_c": ("mode",), "gamma_sp": ("mode",),
             "global_state": ("mode",), "feature_noise": ("mode",), "layer_singular_values": ("layer", "k"),
             "singular_values": ("k",), "layer_balance": ("pair",)}

    def __repr__(self):
        return f"StateDiagnosis({self.summary!r})"


def _filled(x):
    return np.ma.filled(np.ma.asarray(x, dtype=float), np.nan).astype(float).ravel()


def _layer_svs(W):
    svs = [np.linalg.svd(w, compute_uv=False) for w in W]
    out = np.full((len(W), max(s.size for s in svs)), np.nan)
    for i, s in enumerate(svs):
        out[i, :s.size] = s
    return out


def _balance(W):
    out = []
    for w, nxt in pairwise(W):
        scale = 0.5 * (np.sum(w ** 2) + np.sum(nxt ** 2))
        out.append(float(np.linalg.norm(nxt.T @ nxt - w @ w.T) / scale) if scale > 0 else 0.0)
    return np.array(out)


def _feature_noise(W, X, Y, U, Vt, n_learned, conv):
    """Per feature, the trace of the per-sample gradient covariance on the weights that carry it."""
    from ..training import per_sample_gradients

    G = per_sample_gradients(W, X, Y, convention=conv)
    total = float(np.sum(np.var(G, axis=0)))
    lefts = [np.linalg.svd(w)[0] for w in W[:-1]]    # the output side of every layer but the last
    out = []
    for k in range(Vt.shape[0]):
        m = min(k, n_learned)                  # hidden directions of the stronger, learned features are not k's
        hidden_q = [np.eye(u.shape[0]) - u[:, :m] @ u[:, :m].T for u in lefts]
        cols, off = [], 0
        for i, w in enumerate(W):
            r, c = w.shape
            g = G[:, off:off + r * c].reshape(-1, r, c)
            off += r * c
            q_in = np.outer(Vt[k], Vt[k]) if i == 0 else hidden_q[i - 1]
            q_out = np.outer(U[:, k], U[:, k]) if i == len(W) - 1 else hidden_q[i]
            cols.append((q_out @ g @ q_in).reshape(g.shape[0], -1))
        out.append(float(np.sum(np.var(np.concatenate(cols, axis=1), axis=0))))
    return np.array(out), total


def data_convention(convention, d_out):
    """The convention of a run on data with ``d_out`` outputs (:func:`phasetools.training.resolve_training_convention`).

    ``"paper"`` averages the MSE over the outputs (``kappa = 1/d_out``, as ``training.train``);
    the theory's bare ``"paper"`` assumes two.

    Parameters
    ----------
    convention : "paper", "canonical" or Convention
    d_out : int
        Output dimension of the data.

    Returns
    -------
    Convention
    """
    from ..training import resolve_training_convention

    return resolve_training_convention(convention, int(d_out))


def diagnose_state(weights, data, *, weight_decay, lr=None, batch_size=None, convention="paper", seed=0,
                   noise_samples=4096, rng=0) -> StateDiagnosis:
    """Features, balance, the theory's landscape, barrier, escape time and SGD noise of one state.

    Parameters
    ----------
    weights : anything :func:`load_weights` reads
        The network state.
    data : (X, Y), Dataset, Moments or GaussianTeacher
        The training data (their moments fix the theory; samples give the SGD noise; for
        moments alone the noise is measured on ``noise_samples`` Gaussian samples with
        those moments).
    weight_decay : float >= 0
        The run's weight decay (units of ``convention``).
    lr : float > 0, optional
        Learning rate (for ``tau_epochs``; default 0.1).
    batch_size : int, optional
        Minibatch size (steps per epoch = N // batch_size; default full batch).
    convention : "paper" (default), "canonical" or Convention
        The units of ``weight_decay`` (a TrainingRun's ``convention``; ``train`` defaults to
        "canonical").
    seed : int >= 0
        The seed of a TrainingRun.
    noise_samples : int >= 2
        Samples drawn for the noise when ``data`` are moments.
    rng : int
        Seed of those samples.

    Returns
    -------
    StateDiagnosis
    """
    from ..theory import critical_points, end_to_end, landscape
    from ..training import RANK_THRESHOLD, Dataset, as_moments

    W = load_weights(weights, seed=seed)
    wd = check_scalar(weight_decay, "weight_decay")
    lr = 0.1 if lr is None else check_scalar(lr, "lr", positive=True)
    n = len(W)
    mom = as_moments(data)
    convention = data_convention(convention, mom.d_out)
    U, spec, Vt = np.linalg.svd(mom.cross_cov, full_matrices=False)
    keep = spec > 1e-12 * max(1.0, float(spec[0]))
    U, spec, Vt = U[:, keep], spec[keep], Vt[keep]
    a = np.einsum("kd,de,ke->k", Vt, mom.input_cov, Vt)
    M = end_to_end(W)
    if M.shape != mom.cross_cov.shape:
        raise ValueError(f"weights map {M.shape[1]} -> {M.shape[0]} but the data are {mom.d_in} -> {mom.d_out}")
    lsv = _layer_svs(W)
    sv = np.linalg.svd(M, compute_uv=False)
    lam = np.zeros(spec.size)
    lam[:min(sv.size, spec.size)] = sv[:spec.size]    # the k-th end-to-end singular value carries feature k
    L = landscape(n, spec, wd, a, convention=convention)
    cp = critical_points(n, spec, a, convention=convention)
    lam_s, lam_m = _filled(L.lam_saddle), _filled(L.lam_min)
    K = spec.size
    seedk = np.array([[lsv[i, k] if k < lsv.shape[1] else np.nan for i in range(n)] for k in range(K)])
    top = np.nanmax(lsv, axis=1)
    absent = np.array([np.all(np.nan_to_num(seedk[k], nan=0.0) <= ABSENT * np.maximum(top, 1.0)) for k in range(K)])
    learned = np.where(np.isfinite(lam_m), np.abs(lam) >= 0.5 * np.nan_to_num(lam_m, nan=np.inf), False)
    learned |= ~np.isfinite(lam_m) & (np.abs(lam) > RANK_THRESHOLD)
    glob = np.asarray(L.global_state, dtype=object).ravel().astype(str)
    state = _state_kind(lam, lam_s, lam_m, learned, _filled(L.curvature_trivial))
    esc = [k for k in range(K) if (glob[k] == "learned") != bool(learned[k]) and glob[k] != "degenerate"]
    emode = esc[0] if esc else -1
    up, down = _filled(L.barrier_fwd), _filled(L.barrier_bwd)
    barrier = float("nan") if emode < 0 else float(down[emode] if learned[emode] else up[emode])
    if isinstance(data, Dataset) or (isinstance(data, tuple) and len(data) == 2):
        d = data if isinstance(data, Dataset) else Dataset(*data)
        X, Y = d.X, d.Y
    else:
        X, Y = _gaussian_samples(mom, check_int(noise_samples, "noise_samples", 2), rng)
    fnoise, total = _feature_noise(W, X, Y, U, Vt, int(np.sum(learned)), convention)
    can = bool(emode >= 0 and fnoise[emode] > 1e-12 * max(total, 1e-300))
    spe = 1 if batch_size is None else max(1, X.shape[0] // check_int(batch_size, "batch_size", 1))
    tau = _tau(n, spec, a, wd, seedk, emode, learned, lam_s, lr, spe, convention, can)
    if emode >= 0 and learned[emode] and batch_size is not None and X.shape[0] == getattr(mom, "n_samples", -1):
        tau = _tau_down(X, Y, n, W[0].shape[0], wd, lr, batch_size, emode, convention)
    metastable = state == "local_minimum" and emode >= 0
    cure = _cure(mom, n, wd, emode, learned, absent, seedk, lr, batch_size, X.shape[0], convention)
    diag = {"n_layers": n, "weight_decay": wd, "convention": getattr(convention, "name", str(convention)),
            "spectrum": spec, "a": a, "layer_singular_values": lsv, "singular_values": sv,
            "effective_rank": int(np.sum(sv > RANK_THRESHOLD)), "feature_lam": lam, "feature_seed": seedk,
            "learned": learned, "absent": absent, "layer_balance": _balance(W), "lam_saddle": lam_s, "lam_min": lam_m,
            "barrier_up": up, "barrier_down": down, "gamma_c": _filled(cp.gamma_c), "gamma_sp": _filled(cp.gamma_sp),
            "global_state": glob, "state": state, "metastable": bool(metastable), "escape_mode": int(emode),
            "barrier": barrier, "feature_noise": fnoise, "noise_trace": total, "sgd_can_start": can,
            "tau_epochs": float(tau), "cure_seed": cure[0], "cure_weight_decay": cure[1], "cure_epochs": cure[2]}
    return StateDiagnosis(**diag, summary=summary_line(diag))


def _cure(mom, n, wd, k, learned, absent, seedk, lr, batch_size, n_samples, convention):
    from ._cures import plan_cure

    if k < 0 or learned[k] or n < 3 or wd <= 0:
        return float("nan"), float("nan"), -1
    try:
        b_s = plan_cure(mom, n_layers=n, weight_decay=wd, mode=k, seed_size=1.0, lr=lr,
                        convention=convention).b_saddle
        seed = b_s / 3 if absent[k] else float(np.nanmin(seedk[k]))
        spe_batch = None if batch_size is None else max(1, n_samples // int(batch_size))
        p = plan_cure(mom, n_layers=n, weight_decay=wd, mode=k, seed_size=seed, lr=lr, batch_size=None,
                      convention=convention)
    except ValueError:
        return float("nan"), float("nan"), -1
    ep = p.dip_epochs if spe_batch is None or p.dip_epochs < 0 else int(np.ceil(p.dip_epochs / spe_batch))
    return float(seed), float(p.dip_weight_decay), int(ep)


def _gaussian_samples(mom, n, rng):
    J = mom.joint_cov
    Z = np.random.default_rng(rng).standard_normal((n, J.shape[0])) @ np.linalg.cholesky(J + 1e-12 * np.eye(len(J))).T
    return Z[:, :mom.d_in], Z[:, mom.d_in:]


def _state_kind(lam, lam_s, lam_m, learned, curv_triv):
    """Every feature at a stable point of its own landscape: a local minimum; one at its saddle: a saddle."""
    lam = np.abs(lam)
    at_saddle = np.isfinite(lam_s) & (np.abs(lam - np.nan_to_num(lam_s)) <= 0.1 * np.nan_to_num(lam_s, nan=1.0))
    if np.any(at_saddle & (lam > 0)):
        return "saddle"
    at_min = np.isfinite(lam_m) & (np.abs(lam - np.nan_to_num(lam_m)) <= 0.05 * np.nan_to_num(lam_m, nan=1.0))
    at_zero = ~learned & (lam <= 0.5 * np.nan_to_num(lam_s, nan=np.inf)) & (curv_triv > 0)
    return "local_minimum" if np.all(at_min | at_zero) else "on_its_way"


def _tau(n, spec, a, wd, seedk, emode, learned, lam_s, lr, spe, convention, can):
    """Epochs to the global state: the deterministic growth time from the residual seed when it is above the
    saddle, inf when the feature is absent and SGD noise cannot start it; NaN when no theory applies."""
    from ..theory import plateau_time

    if emode < 0:
        return 0.0
    if learned[emode]:
        return float("nan")          # a downward escape: see phasetools.training.predict_escape
    s = np.nan_to_num(seedk[emode], nan=0.0)
    if np.all(s > 0) and np.isfinite(lam_s[emode]):
        p = plateau_time(n, float(spec[emode]), wd, s, a=float(a[emode]), lr=lr, threshold=2 * float(lam_s[emode]),
                         steps_per_epoch=spe, convention=convention)
        if np.isfinite(p.tau_epochs):
            return float(p.tau_epochs)
    return float("inf") if not can else float("nan")


def _tau_down(X, Y, n, width, wd, lr, batch_size, k, convention):
    """Predicted epochs for minibatch SGD (with replacement) to drop a learned feature (NaN if no prediction)."""
    from ..training import Dataset, predict_escape

    try:
        return float(predict_escape(Dataset(X, Y), n_layers=n, width=width, weight_decay=wd, lr=lr,
                                    batch_size=int(batch_size), mode=k, convention=convention).tau_epochs)
    except ValueError:
        return float("nan")


_ORDINAL = {0: "strongest", 1: "second", 2: "third"}


def summary_line(d: dict) -> str:
    """The plain-language line of a diagnosis.

    Parameters
    ----------
    d : dict
        The fields of a :class:`StateDiagnosis` (without ``summary``).

    Returns
    -------
    str
    """
    rank = int(np.sum(d["learned"]))
    K = len(d["spectrum"])
    kind = {"local_minimum": "metastable state" if d["metastable"] else "global minimum", "saddle": "saddle",
            "on_its_way": "state on its way"}[d["state"]]
    head = f"rank-{rank} {kind} at weight decay {d['weight_decay']:.3g}"
    k = d["escape_mode"]
    if k < 0:
        return head + ": every feature is where the theory's global state puts it"
    name = "weakest" if k == K - 1 and K > 1 else _ORDINAL.get(k, f"#{k + 1}")
    name = f"the {name} feature (c = {d['spectrum'][k]:.3g})"
    if d["learned"][k]:
        tau = d["tau_epochs"]
        when = f"; SGD noise is predicted to drop it in {tau:.3g} epochs" if np.isfinite(tau) else ""
        return head + f": {name} is learned but the global state drops it; the barrier is {d['barrier']:.3g}" + when
    parts = [head]
    if d["absent"][k]:
        parts.append(f"{name} is absent in every layer")
    else:
        parts.append(f"{name} is unlearned, with a residual seed {np.nanmin(d['feature_seed'][k]):.2g} per layer")
    parts.append("pure SGD can start it" if d["sgd_can_start"] else "pure SGD cannot start it")
    parts.append(f"the barrier is {d['barrier']:.3g}")
    tau = d["tau_epochs"]
    parts.append("it grows in " + f"{tau:.3g} epochs" if np.isfinite(tau) else
                 ("the predicted escape time is infinite" if tau == np.inf else "no escape time is predicted"))
    if d["cure_epochs"] > 0:
        how = (f"no weight-decay dip can start it; re-seeding it with {d['cure_seed']:.2g} per layer and lowering "
               if d["absent"][k] else "lowering ")
        parts.append(how + f"the weight decay to {d['cure_weight_decay']:.3g} for {d['cure_epochs']} epochs grows it "
                     f"past the barrier")
    return parts[0] + ": " + "; ".join(parts[1:])
