"""``kick_escape``: the escape rate of SGD with replacement by importance sampling the kicking minibatch.

With ``sampling="replacement"`` every SGD step draws its minibatch independently, so the
weights are a Markov chain. With ``A`` the well (the mode's singular value in ``[lo, hi]``),
``B`` the target and ``nu`` the quasi-stationary distribution (QSD) of the chain killed at
``B``, every escape has exactly one last exit from ``A``, and the escape probability per step
from ``nu`` is (the last-exit / reactive-flux decomposition)::

    k = sum_{x in A} nu(x) sum_mb p(mb) q(x'(x, mb)),        tau = 1 / k steps,

``x'`` the state after the step with minibatch ``mb`` and ``q`` the committor
``P(B before A)`` (``q = 0`` in ``A``, ``1`` in ``B``). This is exact for any ``A`` up to the
QSD mass outside ``A`` that reaches ``B`` without visiting ``A`` (negligible for a metastable
well). ``nu`` is sampled by plain SGD runs; the inner sum by minibatches drawn from a tilted
distribution over the samples (defensive mixture with the uniform one), each weighted by its
likelihood ratio; ``q(x')`` by continuation runs of the real trainer, or runs whose first steps
may be tilted too (routes of several kicks: ``KickOptions(continuation="kicks")``). See docs/rare.md.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np
from scipy import stats as _st
from scipy.special import comb

from .._rng import seed_sequence, seeds_record
from .._validation import check_int
from ..results import Result, register
from ..training import as_moments, resolve_training_convention
from ._engine import excursions
from ._training import SharpnessScore, TrainingEngine, network_rank

__all__ = ["KickEscape", "KickOptions", "kick_escape", "tilted_minibatches"]


@dataclass(frozen=True)
class KickOptions:
    """Options of :func:`kick_escape`.

    Parameters
    ----------
    n_chains : int >= 2, default 40
        Independent plain SGD runs sampling the QSD; each gives an independent estimate of
        ``k`` (the interval comes from their spread).
    burn_in_epochs : int >= 0, default 4
        Epochs of each chain before its states are used.
    n_epochs : int >= 1, default 16
        Epochs of each chain after the burn-in.
    thin : int >= 1, optional
        SGD steps between the QSD states used. None (default): 32 with replacement; with
        ``sampling="shuffle"`` the smallest value >= 32 coprime to the steps per epoch (33 for
        128), so that the kept states cover every position in the epoch (an explicit ``thin``
        sharing a factor with the steps per epoch is refused there). The value used is stored in
        the result's ``options``.
    phase : {"fixed", "random"}, optional
        Where each QSD chain's kept states fall: ``"fixed"``, every chain keeps steps
        ``burn + thin - 1 + k thin`` (the same positions in the epoch in every chain);
        ``"random"``, chain ``c`` keeps steps ``burn + off_c + thin - 1 + k thin`` with ``off_c``
        drawn uniformly in ``[0, steps_per_epoch)`` from the run's seed (those past the chain's end
        dropped), so that every kept state's epoch position is uniform over the epoch. None
        (default): ``"fixed"`` with replacement (no positions there), ``"random"`` with
        ``sampling="shuffle"``. The value used is stored in the result's ``options``.
    n_draws : int >= 1, default 8
        Minibatches drawn at each QSD state.
    n_continue : int >= 1, optional
        Continuation runs from each post-step state outside the well and the target. None
        (default): 4 with replacement, 256 with ``sampling="shuffle"`` (the committor after a
        reshuffled kick is about 1e-3: with 4 runs a handful of states carry the estimate).
    defensive : float in (0, 1), default 0.1
        Probability of an untilted minibatch in the mixture (bounds every weight by ``1 / defensive``).
    kick : float > 0 and finite, default 1.0
        The tilt aims a minibatch's linearised step at ``lr * lambda = kick`` after it,
        ``lambda = 2 kappa h`` the mode's Gauss-Newton curvature (``kick`` about 1: the
        step-size instability the catapult starts from).
    max_steps : int >= 1, default 100_000
        Step budget of one continuation run (a censored run counts as not reaching ``B``;
        their number is recorded).
    confidence : float in (0, 1), default 0.95
        Level of the interval of ``tau``.
    continuation : {"trainer", "tilted", "kicks"}, default "trainer"
        How ``q`` of a post-step state is estimated: ``"trainer"``, plain runs of
        :func:`phasetools.training.train` (only the exit step is importance-sampled);
        ``"tilted"`` replays the trainer's step (the mean of per-sample steps, checked
        against ``train``) with minibatches tilted while the state lies above the well and
        below the aimed curvature, each run weighted by the product of its likelihood ratios
        (unbiased, and it samples routes of two or more kicks, but the products of weights
        are heavier-tailed; docs/rare.md); ``"kicks"`` splits over the kicks of a route: the
        first ``kick_window`` steps of a run are replayed, and a run chooses (with probability
        ``kick_share``) up to ``n_kicks`` of them whose minibatch is tilted, the other steps
        plain, then the trainer finishes it; the run's weight is that of the mixture over all
        such choices (balance heuristic), so it is at most ``1 / (1 - kick_share)`` (routes of
        up to ``1 + n_kicks`` kicks, docs/rare.md).
    n_kicks : int >= 1, default 2
        ``continuation="kicks"``: the most tilted steps of one continuation run.
    kick_window : int >= 1, default 4
        ``continuation="kicks"``: the first steps of a continuation run that may be tilted.
    kick_share : float in (0, 1), default 0.5
        ``continuation="kicks"``: the probability that a run tilts any step.
    """

    n_chains: int = 40
    burn_in_epochs: int = 4
    n_epochs: int = 16
    thin: int | None = None
    phase: str | None = None
    n_draws: int = 8
    n_continue: int | None = None
    defensive: float = 0.1
    kick: float = 1.0
    max_steps: int = 100_000
    confidence: float = 0.95
    continuation: str = "trainer"
    n_kicks: int = 2
    kick_window: int = 4
    kick_share: float = 0.5

    def __post_init__(self):
        check_int(self.n_chains, "n_chains", minimum=2)
        check_int(self.burn_in_epochs, "burn_in_epochs", minimum=0)
        for name in ("n_epochs", "thin", "n_draws", "n_continue", "max_steps", "n_kicks", "kick_window"):
            if getattr(self, name) is not None or name not in ("thin", "n_continue"):
                check_int(getattr(self, name), name, minimum=1)
        if self.n_kicks > self.kick_window:
            raise ValueError(f"n_kicks must be in [1, kick_window = {self.kick_window}], got {self.n_kicks}")
        for name in ("defensive", "confidence", "kick_share"):
            if not 0.0 < float(getattr(self, name)) < 1.0:
                raise ValueError(f"{name} must be in (0, 1), got {getattr(self, name)}")
        if self.continuation not in ("kicks", "tilted", "trainer"):
            raise ValueError(f"continuation must be 'trainer', 'tilted' or 'kicks', got {self.continuation!r}")
        if self.phase is not None and self.phase not in ("fixed", "random"):
            raise ValueError(f"phase must be None, 'fixed' or 'random', got {self.phase!r}")
        if not (np.isfinite(float(self.kick)) and float(self.kick) > 0):
            raise ValueError(f"kick must be > 0 and finite, got {self.kick}")


def _resolve_options(options, sampling, steps_per_epoch):
    """The :class:`KickOptions` a run uses: ``thin``, ``phase`` and ``n_continue`` filled in for ``sampling``.

    Parameters
    ----------
    options : KickOptions
        As given (``thin``, ``phase`` or ``n_continue`` None: the default of ``sampling``).
    sampling : {"replacement", "shuffle"}
        With replacement: ``thin`` 32, ``phase`` "fixed", ``n_continue`` 4. Reshuffled: ``thin``
        the smallest value >= 32 coprime to ``steps_per_epoch``, ``phase`` "random",
        ``n_continue`` 256.
    steps_per_epoch : int
        SGD steps per epoch.

    Returns
    -------
    KickOptions
        With all three filled in.

    Raises
    ------
    ValueError
        ``sampling="shuffle"`` with an explicit ``thin`` sharing a factor with ``steps_per_epoch``
        (the kept states would see only some positions in the epoch, and the kick rate depends on
        the position).
    """
    spe = int(steps_per_epoch)
    shuffle = sampling == "shuffle"
    thin, n_continue = options.thin, options.n_continue
    if thin is None:
        thin = next(t for t in range(32, 32 + spe + 1) if math.gcd(t, spe) == 1) if shuffle else 32
    elif shuffle and math.gcd(thin, spe) > 1:
        raise ValueError(f"thin must be coprime to the steps per epoch ({spe}) with sampling='shuffle' (so the "
                         f"kept states cover every position in the epoch; gcd(thin, steps per epoch) must be 1, "
                         f"e.g. thin=33 for 128), got thin={thin}")
    if n_continue is None:
        n_continue = 256 if shuffle else 4
    phase = options.phase if options.phase is not None else "random" if shuffle else "fixed"
    return replace(options, thin=thin, phase=phase, n_continue=n_continue)


@register
@dataclass(frozen=True, eq=False, repr=False)
class KickEscape(Result):
    """The mean escape time of SGD with replacement from the kick estimator (made by :func:`kick_escape`).

    Parameters
    ----------
    n_layers, width : int
        The network.
    lr, batch_size, weight_decay : float, int, float
        SGD.
    convention : str
        ``"paper"`` or ``"canonical"``.
    mode : int
        The mode whose singular value ``s`` defines the sets (0: the largest).
    target : float
        ``B = {s <= target}``.
    well : (float, float)
        ``A = {lo <= s <= hi}``.
    options : dict
        The :class:`KickOptions` used (``thin`` and ``n_continue`` resolved,
        :func:`_resolve_options`), and ``sampling``.
    k : float
        Escape probability per SGD step from the QSD: the mean over the chains used
        (NaN, with a RuntimeWarning, when fewer than two are).
    k_stderr : float
        Its standard error (spread of the chains used over ``sqrt(n_chains_used)``).
    k_chains : ndarray (n_chains,)
        Each chain's estimate; NaN for a chain without any QSD state (it diverged or reached
        ``B`` before its first kept state), which is left out (``n_chains_used``).
    tau, tau_stderr, tau_lower, tau_upper : float
        Mean escape time in epochs ``1 / (k * steps_per_epoch)``, its delta-method error and
        the interval ``[1 / (k + t se), 1 / (k - t se)]`` (inf when ``k - t se <= 0``;
        ``t`` Student's quantile with ``n_chains_used - 1`` degrees of freedom).
    steps_per_epoch : int
        ``n_samples // batch_size``.
    n_states, n_in_well : int
        QSD states sampled and those in ``A``.
    n_draws, n_outside, n_target_direct : int
        Minibatches drawn, post-step states outside ``A`` (continued), and those in ``B`` at once.
    n_reached, n_censored : int
        Continuation runs that reached ``B`` and that hit the step budget.
    weight_mean : float
        Mean likelihood-ratio weight of all draws (1 in expectation).
    top_share : float
        Share of the estimate from the single largest contribution (near 1: one lucky draw
        carries it and the interval is not to be trusted).
    tail_share : float
        Share of the estimate from the draws at the 5 % of QSD states with the largest ``s``
        (near 1: the route starts in the QSD's tail, which the chains sample poorly; longer
        chains are needed and the interval is optimistic).
    cost : dict
        SGD steps: ``qsd`` (every step of the QSD chains: a chain runs to the end, its states
        after its first step in ``B`` unused, unless it diverges), ``continue`` (replayed and
        trainer steps), ``total``.
    """

    n_layers: int
    width: int
    lr: float
    batch_size: int
    weight_decay: float
    convention: str
    mode: int
    target: float
    well: tuple
    options: dict
    k: float
    k_stderr: float
    k_chains: np.ndarray
    tau: float
    tau_stderr: float
    tau_lower: float
    tau_upper: float
    steps_per_epoch: int
    n_states: int
    n_in_well: int
    n_draws: int
    n_outside: int
    n_target_direct: int
    n_reached: int
    n_censored: int
    weight_mean: float
    top_share: float
    tail_share: float
    cost: dict

    _config_fields = ("n_layers", "width", "lr", "batch_size", "weight_decay", "convention", "mode", "target",
                      "well", "options")
    @property
    def n_chains_used(self):
        """int: QSD chains that kept a state and enter ``k`` (the finite ``k_chains``)."""
        return int(np.sum(np.isfinite(self.k_chains)))

    _units: ClassVar[dict] = {"tau": "epochs", "tau_stderr": "epochs", "tau_lower": "epochs", "tau_upper": "epochs",
              "k": "1/step", "k_stderr": "1/step"}


def _set_code(s, target, lo, hi):
    """1 in ``B`` (``s <= target``), -1 in ``A`` (``lo <= s <= hi``), 0 elsewhere (NaN stays NaN)."""
    out = np.where(s <= target, 1.0, np.where((s >= lo) & (s <= hi), -1.0, 0.0))
    return np.where(np.isfinite(s), out, np.nan)


class _Sets:
    """The mode's singular value as the code of the sets, for :class:`TrainingEngine`."""

    def __init__(self, mode, target, well):
        self.mode, self.target, (self.lo, self.hi) = mode, target, well
        self.__name__ = "kick_sets"

    def sv(self, M):
        """The mode's singular value of each ``M (n, d_out, d_in)`` (NaN where ``M`` is not finite)."""
        M = np.asarray(M, dtype=float)
        out = np.full(M.shape[0], np.nan)
        ok = np.all(np.isfinite(M), axis=(1, 2))
        if ok.any():
            out[ok] = np.linalg.svd(M[ok], compute_uv=False)[:, self.mode]
        return out

    def __call__(self, M):
        return _set_code(self.sv(M), self.target, self.lo, self.hi)


def _check(lr, batch_size, weight_decay, target, well, sampling):
    for name, v in (("lr", lr), ("weight_decay", weight_decay), ("target", target)):
        if not (np.isfinite(v) and v >= 0 and (name == "weight_decay" or v > 0)):
            raise ValueError(f"{name} must be {'>= 0' if name == 'weight_decay' else '> 0'} and finite, got {v}")
    check_int(batch_size, "batch_size", minimum=1)
    if sampling != "replacement":
        raise ValueError(f"sampling must be 'replacement' or 'shuffle' (reshuffled epochs), got {sampling!r}")
    try:
        w = np.asarray(well, dtype=float)
    except (TypeError, ValueError):
        w = None
    if w is None or w.shape != (2,) or not np.all(np.isfinite(w)):
        raise ValueError(f"well must be two finite numbers (lo, hi) with target < lo < hi, got well={well!r}")
    lo, hi = float(w[0]), float(w[1])
    if not target < lo < hi:
        raise ValueError(f"well must be (lo, hi) with target < lo < hi, got well={well} and target={target}")
    return lo, hi


def _qsd(eng, x0, opts, entropy, sets, offsets=None):
    """Plain SGD chains from ``x0``: the states every ``thin`` steps after the burn-in (chain ``c``
    shifted by ``offsets[c]`` steps, those past the chain's end dropped; None: no shift), each
    chain's states ending at its first step in ``B`` or with non-finite weights. Returns
    (states (n, T, dim), valid (n, T), cost).

    A chain whose weights are no longer finite (diverged) is not advanced again (the trainer
    refuses such a start); the others go on together. A chain that reached ``B`` with finite
    weights runs on with them, its states unused (so the minibatches of every chain are the
    same as without the divergence check when no chain diverges: the trainer's draws depend on
    the batch it advances). ``cost`` counts every SGD step taken, those of such a chain after
    it reached ``B`` included."""
    n = opts.n_chains
    x = np.repeat(np.asarray(x0, dtype=float)[None, :], n, axis=0)
    streams = eng.streams(entropy, np.arange(n))
    spe = eng.steps_per_epoch
    total = (opts.burn_in_epochs + opts.n_epochs) * spe
    burn = opts.burn_in_epochs * spe
    keep = np.arange(burn + opts.thin - 1, total, opts.thin)            # step index (0-based) of kept states
    keep = keep[None, :] + (np.zeros((n, 1), dtype=int) if offsets is None else np.asarray(offsets)[:, None])
    states = np.full((n, keep.shape[1], x.shape[1]), np.nan)
    alive = np.ones(n, dtype=bool)
    done, cost = 0, 0
    while done < total:
        c = min(eng.max_chunk, total - done)
        xe, code, path = _advance_finite(eng, x, streams, c)
        cost += int(np.all(np.isfinite(x), axis=1).sum()) * c           # every row advanced, alive or not
        hit = np.nan_to_num(code, nan=1.0) >= 1
        first = np.where(hit.any(axis=1), hit.argmax(axis=1), c)
        rows, cols = np.nonzero((keep >= done) & (keep < done + c))     # kept steps past the end never match
        j = keep[rows, cols] - done
        ok = alive[rows] & (j < first[rows])
        states[rows[ok], cols[ok]] = path[rows[ok], j[ok]]
        alive &= ~hit.any(axis=1)
        x, done = xe, done + c
    return states, np.all(np.isfinite(states), axis=2), cost


def _advance_finite(eng, x, streams, n_steps):
    """``eng.advance`` of the rows of ``x`` whose weights are finite (all rows at once, as one
    batch, when every row is finite): end states, codes ``(n, n_steps)`` and paths
    ``(n, n_steps, dim)``, NaN for the rows not advanced. ``streams`` is bumped in place."""
    run = np.all(np.isfinite(x), axis=1)
    if run.all():
        xe, _, _, code, path = eng.advance(x, streams, n_steps, -np.inf)
        return xe, code, path
    xe = np.full_like(x, np.nan)
    code = np.full((x.shape[0], n_steps), np.nan)
    path = np.full((x.shape[0], n_steps, x.shape[1]), np.nan)
    if run.any():
        st = streams[run]
        xe[run], _, _, code[run], path[run] = eng.advance(x[run], st, n_steps, -np.inf)
        streams[run] = st
    return xe, code, path


def _end_to_end(eng, x):
    ws = eng.layers(x)
    M = ws[0]
    for W in ws[1:]:
        M = W @ M
    return M


def _tilt(d, target):
    """Log-probabilities ``(m, n)`` of the exponential tilts ``w(i) ∝ exp(theta d_i)`` of each
    row of ``d (m, n)`` whose tilted mean is ``target (m,)`` (``theta = 0`` where the plain mean
    is above it, ``theta = 50 / span`` at most)."""
    d = np.asarray(d, dtype=float)
    dmax = d.max(axis=1, keepdims=True)
    span = (dmax - d.min(axis=1, keepdims=True))[:, 0]
    cap = np.where(span > 0, 50.0 / np.where(span > 0, span, 1.0), 0.0)

    def mean_at(th):
        e = np.exp(th[:, None] * (d - dmax))
        return (e * d).sum(axis=1) / e.sum(axis=1)
    lo, hi = np.zeros_like(cap), cap.copy()
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        below = mean_at(mid) < target
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    theta = np.where(mean_at(cap) <= target, cap, 0.5 * (lo + hi))
    theta = np.where((target > d.mean(axis=1)) & (span > 0), theta, 0.0)
    logw = theta[:, None] * (d - dmax)
    return logw - np.log(np.exp(logw).sum(axis=1, keepdims=True))


def tilted_minibatches(scores, target_mean, batch_size, n_draws, *, defensive, gen):
    """Draw minibatches (with replacement) from the defensive mixture of the uniform and an
    exponentially tilted distribution over the samples, with their likelihood ratios.

    The tilt is ``w(i) ∝ exp(theta * scores[i])``, ``theta >= 0`` chosen so that the tilted
    mean of ``scores`` is ``target_mean`` (``theta = 0`` when the plain mean is already
    above it; at most ``50 / (max - min)``). A minibatch is untilted with probability
    ``defensive``; its weight is ``p(mb) / p_mix(mb) = 1 / (defensive + (1 - defensive)
    n^B prod_k w(i_k))``, at most ``1 / defensive``, with mean 1 under the mixture.

    Parameters
    ----------
    scores : array (n,)
        Per-sample scores (larger: more towards the escape), finite, ``n >= 1``.
    target_mean : float
        Aimed tilted mean of a sample's score (finite).
    batch_size : int >= 1
        ``B``.
    n_draws : int >= 1
        Minibatches.
    defensive : float in (0, 1]
        Mixture weight of the uniform distribution: ``> 0`` bounds every weight by
        ``1 / defensive`` (at 0 a weight is unbounded); 1 draws plain uniform minibatches
        (every weight 1).
    gen : numpy.random.Generator
        Randomness.

    Returns
    -------
    (ndarray (n_draws, B) of int, ndarray (n_draws,), float)
        Sample indices, likelihood-ratio weights, and ``theta``.
    """
    s = _check_tilt(scores, target_mean, batch_size, n_draws, defensive)
    logw = _tilt(s[None], np.array([float(target_mean)]))
    idx, weight = _mixture_draws(np.repeat(logw, n_draws, axis=0), batch_size, defensive, gen)
    span = s.max() - s.min()
    theta = float((logw[0].max() - logw[0].min()) / span) if span > 0 else 0.0
    return idx, weight, theta


def _check_tilt(scores, target_mean, batch_size, n_draws, defensive):
    """The checks of :func:`tilted_minibatches`; returns ``scores`` as a float array."""
    check_int(batch_size, "batch_size", minimum=1)
    check_int(n_draws, "n_draws", minimum=1)
    try:
        d = float(defensive)
    except (TypeError, ValueError):
        d = np.nan
    if not 0.0 < d <= 1.0:
        raise ValueError(f"defensive must be in (0, 1], got {defensive!r}")
    s = np.asarray(scores, dtype=float)
    if s.ndim != 1 or s.size == 0 or not np.all(np.isfinite(s)):
        raise ValueError(f"scores must be a non-empty 1-d array of finite numbers, got shape {s.shape}")
    if not np.isfinite(float(target_mean)):
        raise ValueError(f"target_mean must be finite, got {target_mean}")
    return s


def _mixture_draws(logw, batch_size, defensive, gen):
    """One minibatch per row of ``logw (m, n)`` from ``defensive * uniform + (1 - defensive) * tilt``:
    indices ``(m, B)`` and weights ``p / p_mix``."""
    m, n = logw.shape
    plain = gen.random(m) < defensive
    cdf = np.cumsum(np.exp(logw), axis=1)
    cdf /= cdf[:, -1:]
    rows = np.arange(m)[:, None]
    u = gen.random((m, batch_size))
    tilted = np.searchsorted((cdf + rows).ravel(), (u + rows).ravel(), side="right").reshape(m, batch_size)
    tilted = np.clip(tilted - rows * n, 0, n - 1)
    idx = np.where(plain[:, None], gen.integers(0, n, (m, batch_size)), tilted)
    log_ratio = batch_size * np.log(n) + np.take_along_axis(logw, idx, axis=1).sum(axis=1)   # ln p_tilt / p
    with np.errstate(over="ignore"):
        return idx, 1.0 / (defensive + (1.0 - defensive) * np.exp(log_ratio))


def _log_curvature(score, eng, x):
    """``ln h`` of flat weights ``x (n, dim)`` (the mode's curvature factor)."""
    _, h = score.parts(eng.layers(x))
    return np.log(h)


class _Kicker:
    """The trainer's SGD step replayed for many states at once, with minibatches drawn from the
    tilted mixture (``draw``); tilting aims each step's linearised ``ln h`` at ``aim``."""

    block = 1024

    def __init__(self, eng, X, Y, *, lr, weight_decay, kappa, batch_size, score, sets, aim, defensive):
        self.eng, self.X, self.Y = eng, X, Y
        self.lr, self.wd, self.kappa, self.batch_size = lr, weight_decay, kappa, batch_size
        self.score, self.sets, self.aim, self.defensive = score, sets, aim, defensive

    def per_sample(self, xs):
        """``(m, n_samples, dim)``: the state after a step on each sample alone."""
        layers = self.eng.layers(xs)
        acts = [np.broadcast_to(self.X, (xs.shape[0], *self.X.shape))]
        for W in layers:
            acts.append(np.einsum("mrc,mnc->mnr", W, acts[-1]))
        delta = -2.0 * self.kappa * (self.Y[None] - acts[-1])
        grads = [None] * len(layers)
        for k in range(len(layers) - 1, -1, -1):
            grads[k] = np.einsum("mnr,mnc->mnrc", delta, acts[k]).reshape(xs.shape[0], self.X.shape[0], -1)
            delta = np.einsum("mrc,mnr->mnc", layers[k], delta)
        g = np.concatenate(grads, axis=2)
        return xs[:, None, :] - self.lr * (g + self.wd * xs[:, None, :])

    def log_h(self, xs):
        return _log_curvature(self.score, self.eng, xs)

    def grad_log_h(self, xs, eps=1e-6):
        dim = xs.shape[1]
        out = np.empty_like(xs)
        for j in range(dim):
            e = np.zeros(dim)
            e[j] = eps
            out[:, j] = (self.log_h(xs + e) - self.log_h(xs - e)) / (2 * eps)
        return out

    def draw(self, xs, tilt, gen):
        """One SGD step of each state ``xs (m, dim)``, tilted where ``tilt``: the new states and
        the likelihood-ratio weights (1 where untilted)."""
        out, weight = np.empty_like(xs), np.ones(xs.shape[0])
        for a in range(0, xs.shape[0], self.block):
            x, t = xs[a:a + self.block], tilt[a:a + self.block]
            ys = self.per_sample(x)
            n = ys.shape[1]
            logw = np.full((x.shape[0], n), -np.log(n))
            if t.any():
                d = np.einsum("mnd,md->mn", ys[t] - x[t][:, None], self.grad_log_h(x[t]))
                logw[t] = _tilt(d, self.aim - self.log_h(x[t]))
            idx, w = _mixture_draws(logw, self.batch_size, self.defensive, gen)
            out[a:a + self.block] = np.take_along_axis(ys, idx[:, :, None], axis=1).mean(axis=1)
            weight[a:a + self.block] = np.where(t, w, 1.0)
        return out, weight


    def drop_logw(self, xs, ys, n_theta=26):
        """Log-probabilities ``(m, n)`` of the tilt towards ``B`` at states ``xs (m, dim)`` with
        per-sample steps ``ys (m, n, dim)``: ``w(i) ∝ exp(theta e_i)``, ``e_i = -grad s . (y_i - x)``
        the linearised drop of ``s`` by sample ``i``, ``theta`` on a grid of ``n_theta`` values up
        to ``50 / span`` chosen so that the step of the tilted mean lands lowest in ``s`` (the
        catapult through ``s = 0`` is far from linear; any tilt leaves the estimate unbiased)."""
        m, _, dim = ys.shape
        u = ys - xs[:, None]
        grad = np.empty_like(xs)
        for j in range(dim):
            e = np.zeros(dim)
            e[j] = 1e-6
            grad[:, j] = (self.sets.sv(_end_to_end(self.eng, xs + e))
                          - self.sets.sv(_end_to_end(self.eng, xs - e))) / 2e-6
        d = -np.einsum("mnd,md->mn", u, grad)
        d = d - d.max(axis=1, keepdims=True)
        span = -d.min(axis=1)
        theta = np.linspace(0.0, 50.0, n_theta)[None, :] / np.where(span > 0, span, 1.0)[:, None]   # (m, G)
        logw = theta[:, :, None] * d[:, None, :]
        logw -= np.log(np.exp(logw).sum(axis=2, keepdims=True))
        mean = xs[:, None] + np.einsum("mgn,mnd->mgd", np.exp(logw), u)
        post = self.sets.sv(_end_to_end(self.eng, mean.reshape(m * n_theta, dim))).reshape(m, n_theta)
        best = np.argmin(np.where(np.isfinite(post), post, np.inf), axis=1)
        return logw[np.arange(m), best]

    def draw_ratio(self, xs, climb, above, tilted, gen):
        """One SGD step of each state ``xs (m, dim)``: where ``tilted & above``, its minibatch from
        ``defensive * uniform + (1 - defensive) / 2 * (up + down)``, ``up`` the tilt towards the
        aimed curvature (uniform unless ``climb``), ``down`` the tilt towards ``B``
        (:meth:`drop_logw`); uniform elsewhere. Returns the new states and the ratio ``p_mix / p``
        of each drawn minibatch whichever law drew it (1 where not ``above``: no step is tilted
        there)."""
        out, ratio = np.empty_like(xs), np.ones(xs.shape[0])
        for a in range(0, xs.shape[0], self.block):
            sl = slice(a, a + self.block)
            x, c, e = xs[sl], climb[sl] & above[sl], above[sl]
            ys = self.per_sample(x)
            m, n = ys.shape[:2]
            up = np.full((m, n), -np.log(n))
            down = up.copy()
            if c.any():
                d = np.einsum("mnd,md->mn", ys[c] - x[c][:, None], self.grad_log_h(x[c]))
                up[c] = _tilt(d, self.aim - self.log_h(x[c]))
            if e.any():
                down[e] = self.drop_logw(x[e], ys[e])
            t = e & tilted[sl]
            which = gen.random(m) < 0.5
            idx, _ = _mixture_draws(np.where(which[:, None], up, down), self.batch_size,
                                    np.where(t, self.defensive, 1.0), gen)
            out[sl] = np.take_along_axis(ys, idx[:, :, None], axis=1).mean(axis=1)
            base = self.batch_size * np.log(n)
            with np.errstate(over="ignore"):
                rho = (np.exp(base + np.take_along_axis(up, idx, axis=1).sum(axis=1))
                       + np.exp(base + np.take_along_axis(down, idx, axis=1).sum(axis=1)))
                ratio[sl] = np.where(e, self.defensive + 0.5 * (1.0 - self.defensive) * rho, 1.0)
        return out, ratio


def _exit_draws(kicker, states, valid, n_draws, gen):
    """Tilted minibatches at every QSD state in ``A``: post-step states, weights, the chain and
    the singular value of the state each comes from."""
    dim = states.shape[2]
    flat, chain = states[valid], np.nonzero(valid)[0]
    s = kicker.sets.sv(_end_to_end(kicker.eng, flat)) if flat.size else np.zeros(0)
    inside = (s >= kicker.sets.lo) & (s <= kicker.sets.hi)
    xs = np.repeat(flat[inside], n_draws, axis=0)
    if xs.size == 0:
        return np.zeros((0, dim)), np.zeros(0), np.zeros(0, dtype=int), np.zeros(0)
    post, weight = kicker.draw(xs, np.ones(xs.shape[0], dtype=bool), gen)
    return post, weight, np.repeat(chain[inside], n_draws), np.repeat(s[inside], n_draws)


def _continue_tilted(kicker, starts, gen, max_steps):
    """Continuation runs from ``starts`` by the replayed step, tilted while the state is above the
    well and below the aimed curvature: per run ``W 1{B before A}`` (``W`` the product of its
    weights), its outcome (2: B, 1: A, 0: censored, -1: not finite) and the steps taken."""
    m = starts.shape[0]
    x, logW = starts.copy(), np.zeros(m)
    outcome = np.zeros(m, dtype=np.int8)
    active, steps, cost = np.arange(m), 0, 0
    sets = kicker.sets
    while active.size and steps < max_steps:
        xa = x[active]
        s = sets.sv(_end_to_end(kicker.eng, xa))
        tilt = s > sets.hi
        if tilt.any():
            tilt[tilt] = kicker.log_h(xa[tilt]) < kicker.aim
        xn, w = kicker.draw(xa, tilt, gen)
        logW[active] += np.log(w)
        x[active] = xn
        code = sets(_end_to_end(kicker.eng, xn))
        outcome[active[code == 1.0]] = 2
        outcome[active[code == -1.0]] = 1
        outcome[active[np.isnan(code)]] = -1
        cost += active.size
        active = active[code == 0.0]
        steps += 1
    return np.where(outcome == 2, np.exp(logW), 0.0), outcome, cost


def _kick_plan(m, window, n_kicks, share, gen):
    """The tilted steps ``(m, window)`` of ``m`` runs: none with probability ``1 - share``, else
    ``k`` steps (``k`` uniform in ``1 .. n_kicks``) forming a uniform subset of the window."""
    k = np.where(gen.random(m) < share, gen.integers(1, n_kicks + 1, m), 0)
    rank = np.argsort(np.argsort(gen.random((m, window)), axis=1), axis=1)      # a uniform permutation
    return rank < k[:, None]


def _plan_ratio(r, n_kicks, share):
    """``Q / P`` of runs whose window steps drew minibatches with tilt ratios ``r (m, window)``
    (1 at a step that could not be tilted, or after the run ended), ``Q`` the mixture of
    :func:`_kick_plan`: ``1 - share + (share / n_kicks) sum_k e_k(r) / C(window, k)``, ``e_k``
    the elementary symmetric polynomials of the row (summed by the recursion
    ``e_k <- e_k + r_j e_(k-1)``: positive terms, no cancellation)."""
    m, window = r.shape
    e = np.zeros((m, n_kicks + 1))
    e[:, 0] = 1.0
    for j in range(window):
        e[:, 1:] = e[:, 1:] + r[:, j:j + 1] * e[:, :-1]
    ks = np.arange(1, n_kicks + 1)
    return 1.0 - share + share / n_kicks * (e[:, 1:] / comb(window, ks)).sum(axis=1)


def _continue_kicks(kicker, eng, starts, entropy, gen, opts):
    """Continuation runs split over kicks: the first ``kick_window`` steps replayed, the steps
    of each run's plan (:func:`_kick_plan`) tilted where the state lies above the well (there the
    minibatch comes from the mixture of the down-tilt towards ``B``, at any height above the well, and
    the up-tilt towards the aimed curvature, which is uniform unless the state is also below that
    curvature; :meth:`_Kicker.draw_ratio`), plain elsewhere (between ``target`` and the well's low
    end too), then the trainer until ``A`` or ``B``. Per run ``W 1{B before A}``
    with ``W = P / Q = 1 / _plan_ratio`` (at most ``1 / (1 - kick_share)``), its outcome
    (2: B, 1: A, 0: censored, -1: not finite) and the steps taken."""
    m, window = starts.shape[0], min(opts.kick_window, opts.max_steps)
    plan = _kick_plan(m, opts.kick_window, opts.n_kicks, opts.kick_share, gen)
    r = np.ones((m, opts.kick_window))
    x, outcome = starts.copy(), np.zeros(m, dtype=np.int8)
    active, cost, sets = np.arange(m), 0, kicker.sets
    for j in range(window):
        if not active.size:
            break
        xa = x[active]
        above = sets.sv(_end_to_end(eng, xa)) > sets.hi
        climb = above.copy()
        if above.any():
            climb[above] = kicker.log_h(xa[above]) < kicker.aim
        x[active], r[active, j] = kicker.draw_ratio(xa, climb, above, plan[active, j], gen)
        code = sets(_end_to_end(eng, x[active]))
        outcome[active[code == 1.0]] = 2
        outcome[active[code == -1.0]] = 1
        outcome[active[np.isnan(code)]] = -1
        cost += active.size
        active = active[code == 0.0]
    if active.size and opts.max_steps > window:
        outcome[active], c = _continue_trainer(eng, x[active], entropy, opts.max_steps - window, eng.batch_size)
        cost += c
    return np.where(outcome == 2, 1.0 / _plan_ratio(r, opts.n_kicks, opts.kick_share), 0.0), outcome, cost


def _continue_trainer(eng, starts, entropy, max_steps, batch_size):
    """Plain continuation runs of the trainer until ``A`` or ``B``, in blocks small enough for
    ``record_steps`` (16 epochs of a block stay under the trainer's 2e7 recorded values):
    outcomes (2: B, 1: A or not finite, 0: censored) and SGD steps."""
    block = max(1, int(2e7 // (16 * eng.steps_per_epoch * (batch_size + eng.dim + 1))))
    streams = eng.streams(entropy, np.arange(starts.shape[0]))
    outcome, cost = np.zeros(starts.shape[0], dtype=np.int8), 0
    for a in range(0, starts.shape[0], block):
        sl = slice(a, a + block)
        st = streams[sl]
        ex = excursions(eng, starts[sl], st, low=-0.5, high=0.5, max_steps=max_steps, chunk=eng.steps_per_epoch)
        outcome[sl], cost = ex.outcome, cost + int(ex.cost)
    return outcome, cost


def kick_escape(data, init, *, n_layers, width, lr, batch_size, weight_decay, target, well, mode=0,
                sampling="replacement", convention="paper", options=None, rng=None, n_threads=None) -> KickEscape:
    """Mean escape time of SGD with replacement, down in a mode's singular value, by importance
    sampling the minibatch that kicks the network out of its well.

    The escape probability per step from the quasi-stationary distribution ``nu`` of the
    well is ``k = sum_{x in A} nu(x) sum_mb p(mb) q(x'(x, mb))`` (one last exit from the
    well ``A`` per escape; ``q`` the committor ``P(B before A)``, module docstring). Plain
    chains sample ``nu``; at each of their states in ``A`` minibatches are drawn from a
    defensive mixture of the uniform distribution and an exponential tilt of the samples
    towards a larger curvature of the mode (the catapult route of backward SGD escapes,
    docs/rare.md), each weighted by its likelihood ratio; ``q`` of a post-step state outside
    ``A`` and ``B`` is the mean over ``n_continue`` continuation runs of
    ``W 1{B before A}``: by default plain runs of the trainer (``W = 1``), or
    (``KickOptions(continuation="tilted")``) the trainer's step replayed with minibatches
    tilted while the state climbs above the well (``W`` the product of their likelihood
    ratios), so that routes of two or more kicks are sampled too, or
    (``KickOptions(continuation="kicks")``) runs that tilt at most ``n_kicks`` of their first
    ``kick_window`` steps, up towards the aimed curvature or down towards ``B`` (a catapult),
    weighted by the mixture over which steps are tilted (each weight at most
    ``1 / (1 - kick_share)``; the routes of several kicks below ``lr`` 0.055 in docs/rare.md). The
    estimate is unbiased for any tilt; the tilt sets its variance.

    Parameters
    ----------
    data : (X, Y) or Dataset
        Training samples.
    init : list of arrays
        Start layers ``W_1 ... W_n`` (in or near the well; the burn-in relaxes them).
    n_layers, width : int
        The network.
    lr, batch_size, weight_decay : float > 0, int >= 1, float >= 0
        SGD.
    target : float > 0
        ``B = {s <= target}``, ``s`` the mode's singular value of the end-to-end map.
    well : (float, float)
        ``A = {lo <= s <= hi}``, two finite numbers with ``target < lo < hi`` (so ``lo > 0``:
        a backward escape leaves the well down to the target): the region where the committor is
        flat (choose ``hi`` below the step-size instability, e.g. ``lr * lambda`` about 0.7).
    mode : int >= 0, default 0
        Which singular value.
    sampling : {"replacement", "shuffle"}
        Independent minibatches, or reshuffled epochs: then the QSD states carry the position in
        the epoch and the used samples, the kicking minibatch is drawn without replacement from
        the unused ones and the continuation runs finish the same epoch (``_kick_shuffle``;
        ``continuation="trainer"`` only).
    convention : {"paper", "canonical"}
        Loss convention of the trainer.
    options : KickOptions, optional
        Sizes of the estimator.
    rng : None, int, SeedSequence or Generator
        Seed: the same seed (and options) gives the same estimate.
    n_threads : int, optional
        numba threads of the trainer.

    Returns
    -------
    KickEscape
    """
    if sampling == "shuffle":                                # the augmented chain (epoch position, used samples)
        from ._kick_shuffle import kick_escape_shuffle
        return kick_escape_shuffle(data, init, n_layers=n_layers, width=width, lr=lr, batch_size=batch_size,
                                   weight_decay=weight_decay, target=target, well=well, mode=mode,
                                   convention=convention, options=options, rng=rng, n_threads=n_threads)
    opts = options if options is not None else KickOptions()
    if not isinstance(opts, KickOptions):
        raise ValueError(f"options must be a KickOptions, got {type(opts).__name__}")  # noqa: TRY004 (house rule)
    lo, hi = _check(lr, batch_size, weight_decay, target, well, sampling)
    t_start = time.perf_counter()
    X, Y = (np.asarray(a, dtype=float) for a in (data if isinstance(data, tuple) else (data.X, data.Y)))
    init = [np.asarray(w, dtype=float) for w in init]
    check_int(mode, "mode", minimum=0)
    if mode >= network_rank(init):
        raise ValueError(f"mode must be in [0, {network_rank(init) - 1}] (the network's rank), got {mode}")
    sets = _Sets(mode, float(target), (lo, hi))
    shapes = [w.shape for w in init]
    eng = TrainingEngine((X, Y), n_layers=n_layers, width=width, lr=lr, weight_decay=weight_decay,
                         batch_size=batch_size, sampling="replacement", convention=convention, coordinate=sets,
                         sign=1.0, shapes=shapes, n_threads=n_threads)
    x0 = np.concatenate([w.ravel() for w in init])
    opts = _resolve_options(opts, "replacement", eng.steps_per_epoch)
    config = {"n_layers": n_layers, "width": width, "lr": float(lr), "batch_size": int(batch_size),
              "weight_decay": float(weight_decay), "convention": str(convention), "mode": int(mode),
              "target": float(target), "well": (lo, hi)}
    return _estimate(eng, x0, (X, Y), init, sets, opts, config, rng, t_start,
                     draws=_exit_draws, cont=_continue_replacement)


def _continue_replacement(kicker, eng, starts, e_cont, gen, opts):
    """Continuation runs of SGD with replacement from ``starts``: ``(value, outcome, cost)``
    with ``value`` each run's contribution to ``q`` (1 for a run that reached ``B``, or its
    path weight with the tilted continuation)."""
    if opts.continuation == "tilted":
        return _continue_tilted(kicker, starts, gen, opts.max_steps)
    if opts.continuation == "kicks":
        return _continue_kicks(kicker, eng, starts, e_cont, gen, opts)
    outcome, cost = _continue_trainer(eng, starts, e_cont, opts.max_steps, eng.batch_size)
    return (outcome == 2).astype(float), outcome, cost


def _estimate(eng, x0, data, init, sets, opts, config, rng, t_start, *, draws, cont):
    """The estimator shared by both samplings: the QSD from ``x0``, ``draws(kicker, states,
    valid, n_draws, gen)`` exit draws, ``cont(kicker, eng, starts, e_cont, gen, opts)``
    continuation runs for the post-step states in neither set, and the stored result."""
    X, Y = data
    lr, weight_decay, batch_size = config["lr"], config["weight_decay"], config["batch_size"]
    kappa = resolve_training_convention(config["convention"], Y.shape[1]).kappa
    score = SharpnessScore(config["target"], init, as_moments((X, Y)).input_cov, mode=config["mode"])
    root = seed_sequence(rng)
    s_qsd, s_draw, s_cont = root.spawn(3)
    e_qsd, e_cont = (int(s.generate_state(2, np.uint64)[0] % 2**63) for s in (s_qsd, s_cont))
    offsets = _phase_offsets(opts, root, eng.steps_per_epoch)
    with np.errstate(over="ignore", invalid="ignore"):      # weights after a catapult may overflow
        states, valid, cost_qsd = _qsd(eng, x0, opts, e_qsd, sets, offsets)
    aim = float(np.log(opts.kick / (2.0 * kappa * lr)))
    kicker = _Kicker(eng, X, Y, lr=lr, weight_decay=weight_decay, kappa=kappa, batch_size=batch_size, score=score,
                     sets=sets, aim=aim, defensive=opts.defensive)
    gen = np.random.default_rng(s_draw)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        post, weight, chain, origin = draws(kicker, states, valid, opts.n_draws, gen)
        code = sets(_end_to_end(eng, post)) if post.size else np.zeros(0)
        q = np.where(code == 1.0, 1.0, 0.0)
        out = np.nonzero(code == 0.0)[0]
        n_reached = n_censored = cost_cont = 0
        if out.size:
            starts = np.repeat(post[out], opts.n_continue, axis=0)
            value, outcome, cost_cont = cont(kicker, eng, starts, e_cont, gen, opts)
            q[out] = value.reshape(out.size, opts.n_continue).mean(axis=1)
            n_reached, n_censored = int(np.sum(outcome == 2)), int(np.sum(outcome == 0))
    contrib = weight * q
    n_per_chain = valid.sum(axis=1).astype(float)                       # QSD states of each chain (all of nu)
    k_chains = _chain_estimates(contrib, chain, n_per_chain, opts.n_draws)
    tail = origin >= np.quantile(origin, 0.95) if origin.size else origin.astype(bool)
    tail_share = float(contrib[tail].sum() / contrib.sum()) if contrib.sum() > 0 else np.nan
    return _result(k_chains, contrib, weight, q, code, tail_share, n_per_chain, states, valid, sets, eng, opts,
                   config, dict(qsd=cost_qsd, **{"continue": cost_cont}, total=cost_qsd + cost_cont),
                   n_reached, n_censored, root, time.perf_counter() - t_start)


def _phase_offsets(opts, root, steps_per_epoch):
    """Each QSD chain's shift of its kept steps: None for ``phase="fixed"``; for ``"random"``
    uniform in ``[0, steps_per_epoch)``, drawn from the fourth child of the run's seed (the
    first three, QSD, draws and continuation, are those of ``"fixed"``)."""
    if opts.phase != "random":
        return None
    child = np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, 3))
    return np.random.default_rng(child).integers(0, steps_per_epoch, opts.n_chains)


def _chain_estimates(contrib, chain, n_per_chain, n_draws):
    """Each chain's estimate of ``k``: the sum of its draws' contributions over ``n_draws`` times
    its QSD states; NaN for a chain without any state (it diverged or reached ``B`` before its
    first kept state, so it estimates nothing: a 0 would bias ``k`` down and shrink its error)."""
    return np.array([contrib[chain == c].sum() / n_draws / n_per_chain[c] if n_per_chain[c] > 0 else np.nan
                     for c in range(n_per_chain.size)])


def _result(k_chains, contrib, weight, q, code, tail_share, n_per_chain, states, valid, sets, eng, opts, cfg, cost,
            n_reached, n_censored, root, wall):
    used = k_chains[np.isfinite(k_chains)]
    n = used.size
    spe = eng.steps_per_epoch
    if n < 2:
        warnings.warn(f"kick_escape: only {n} of {k_chains.size} QSD chains kept a state (the others diverged or "
                      "reached the target first), so k has no error: k and tau are NaN (lower lr, start in the well "
                      "or shorten burn_in_epochs)", RuntimeWarning, stacklevel=3)
        k = se = t = np.nan
    else:
        k = float(used.mean())
        se = float(used.std(ddof=1) / np.sqrt(n))
        t = float(_st.t.ppf(0.5 + opts.confidence / 2, n - 1))
    with np.errstate(divide="ignore"):
        tau = 1.0 / (k * spe) if k > 0 else np.inf if k == 0 else np.nan
        lower = 1.0 / ((k + t * se) * spe) if k + t * se > 0 else np.inf if n >= 2 else np.nan
        upper = 1.0 / ((k - t * se) * spe) if k - t * se > 0 else np.inf if n >= 2 else np.nan
    flat = states[valid]
    in_well = int(np.sum(sets(_end_to_end(eng, flat)) == -1.0)) if flat.size else 0
    total = contrib.sum()
    return KickEscape(**cfg, options=dict(opts.__dict__), k=k, k_stderr=se, k_chains=k_chains, tau=float(tau),
                      tau_stderr=float(se / k**2 / spe) if k > 0 else np.inf if n >= 2 else np.nan, tau_lower=float(lower),
                      tau_upper=float(upper), steps_per_epoch=int(spe), n_states=int(n_per_chain.sum()),
                      n_in_well=in_well, n_draws=int(weight.size), n_outside=int(np.sum(code == 0.0)),
                      n_target_direct=int(np.sum(code == 1.0)), n_reached=n_reached, n_censored=n_censored,
                      weight_mean=float(weight.mean()) if weight.size else np.nan,
                      top_share=float(contrib.max() / total) if total > 0 else np.nan, tail_share=tail_share,
                      cost=cost,
                      seeds=seeds_record(root), stats={"wall_seconds": wall})
