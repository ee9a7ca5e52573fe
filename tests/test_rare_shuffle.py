"""AMS over reshuffled SGD: the trainer engine's replica state carries its position in the epoch and the
epoch's used samples, so a replica resumed mid-epoch (a clone) finishes the epoch on the unused samples."""

import numpy as np
import pytest

from phasetools.rare import TrainingEngine
from phasetools.training import GaussianTeacher

N, B, LR, WD = 40, 4, 0.05, 0.1
X, Y = GaussianTeacher([0.9, 0.8]).sample(N, rng=3)
SHAPES = [(2, 2), (2, 2)]
W0 = np.array([0.9, 0.1, -0.2, 0.8, 1.0, 0.05, 0.1, 0.7])


def _engine(lr=LR, exact_epochs=True, data=(X, Y)):
    return TrainingEngine(data, n_layers=2, width=2, lr=lr, weight_decay=WD, batch_size=B, sampling="shuffle",
                          convention="paper", coordinate=lambda M: M[:, 0, 0], sign=1.0, shapes=SHAPES,
                          n_threads=1, exact_epochs=exact_epochs)


def _step(w, rows, lr):
    """The trainer's step (paper convention, kappa = 1/2) in numpy on the batch ``rows``."""
    W1, W2 = w[:4].reshape(2, 2), w[4:].reshape(2, 2)
    x, y = X[rows], Y[rows]
    G = 2 * 0.5 / len(rows) * ((W2 @ W1 @ x.T).T - y).T @ x
    g1, g2 = W2.T @ G, G @ W1.T
    return np.concatenate([(W1 - lr * (g1 + WD * W1)).ravel(), (W2 - lr * (g2 + WD * W2)).ravel()])


def _advance_in_pieces(eng, x, pieces, seed=1):
    streams = eng.streams(seed, np.arange(x.shape[0]))
    out = []
    for k in pieces:
        x, steps, _, _, path = eng.advance(x, streams, k, -np.inf)
        assert np.all(steps == k)
        out.append(path)
    return np.concatenate(out, axis=1)


def test_a_reshuffled_replica_state_is_weights_epoch_position_and_mask():
    eng = _engine()
    spe = N // B
    assert eng.dim == W0.size + 1 + 1 and eng.n_words == 1        # 40 samples: one mask word
    x0 = eng.state(W0)[None]
    path = _advance_in_pieces(eng, np.repeat(x0, 2, axis=0), [3, 7, 13, 2, 15])   # 40 steps, cut mid-epoch
    t = np.arange(1, path.shape[1] + 1)
    assert np.array_equal(path[0, :, W0.size], t % spe)
    prev_w, prev_used = W0, np.zeros(N, bool)
    for s in range(path.shape[1]):
        used = eng.used(path[0, s])
        if t[s] % spe == 0:                       # the epoch's last step: its batch is every unused sample
            assert not used.any()
            rows = np.nonzero(~prev_used)[0]
        else:
            assert np.all(used >= prev_used) and used.sum() == B * (t[s] % spe)
            rows = np.nonzero(used & ~prev_used)[0]
        assert rows.size == B
        w = path[0, s, :W0.size]
        np.testing.assert_allclose(w, _step(prev_w, rows, LR), rtol=0, atol=1e-12)   # the weights took that batch
        prev_w, prev_used = w, used


def test_a_clone_finishes_its_parents_epoch_on_the_unused_samples():
    eng = _engine()
    path = _advance_in_pieces(eng, eng.state(W0)[None], [6])
    clone = np.repeat(path[:, -1], 3, axis=0)          # three clones at position 6 of the parent's epoch
    used0 = eng.used(clone[0])
    rest = _advance_in_pieces(eng, clone, [4], seed=9)
    for j in range(3):
        before = used0
        for s in range(3):
            used = eng.used(rest[j, s])
            assert not (used & ~before & used0).any() and (used & ~before).sum() == B
            before = used
        assert rest[j, -1, W0.size] == 0 and not eng.used(rest[j, -1]).any()
    assert len({tuple(eng.used(rest[j, 0])) for j in range(3)}) > 1     # fresh draws among the unused samples


@pytest.mark.parametrize("exact", [True, False])
def test_an_epoch_cut_in_two_calls_sums_the_full_gradient_only_when_exact(exact):
    """Every sample once per epoch: at small lr one epoch moves the weights by lr * (N / B) times the full
    gradient, up to O(lr^2). A fresh permutation at the cut (the earlier approximation) reuses samples and
    misses others: an O(lr) error."""
    lr = 1e-6
    eng = _engine(lr=lr, exact_epochs=exact)
    x0 = eng.state(W0)[None]
    path = _advance_in_pieces(eng, x0, [3, 7])
    move = (path[0, -1, :W0.size] - W0) / lr
    full = (_step(W0, np.arange(N), lr) - W0) / lr * (N // B)
    err = np.abs(move - full).max() / np.abs(full).max()
    if exact:
        assert err < 1e-4
    else:
        assert err > 1e-2


def test_with_replacement_the_state_is_the_weights():
    eng = TrainingEngine((X, Y), n_layers=2, width=2, lr=LR, weight_decay=WD, batch_size=B, sampling="replacement",
                         convention="paper", coordinate=lambda M: M[:, 0, 0], sign=1.0, shapes=SHAPES)
    assert eng.dim == W0.size and np.array_equal(eng.state(W0), W0)


def test_a_diverged_replica_has_no_coordinate_instead_of_an_svd_error():
    """A replica whose weights overflowed (a catapult at large lr) scores NaN (the engine then stops it);
    numpy's SVD raised LinAlgError on it and ended the whole AMS call."""
    from phasetools.rare import SharpnessScore

    layers = [W0[:4].reshape(2, 2), W0[4:].reshape(2, 2)]
    score = SharpnessScore(0.05, layers, np.eye(2))
    for coordinate in (lambda M: np.linalg.svd(M, compute_uv=False)[:, 0], score):
        eng = TrainingEngine((X, Y), n_layers=2, width=2, lr=LR, weight_decay=WD, batch_size=B,
                             sampling="shuffle", convention="paper", coordinate=coordinate, sign=1.0, shapes=SHAPES)
        x = np.repeat(eng.state(W0)[None], 3, axis=0)
        x[1, 2], x[2, 5] = np.nan, np.inf
        xi = eng.coordinate(x)
        assert np.isfinite(xi[0]) and np.isnan(xi[1:]).all()


@pytest.mark.long   # about 6 minutes on a loaded 2-core machine (two AMS calls and 100 brute-force runs)
def test_reshuffled_ams_with_the_sharpness_score_agrees_with_brute_force():
    """The width-1 chain of examples/rare_sgd_shuffle.py at lr 0.11, B = 4, reshuffled epochs (brute force by
    the trainer: tau about 210 epochs): the exact engine's AMS interval holds brute force."""
    from phasetools.langevin import escape_problem
    from phasetools.rare import AMSOptions, ams_training_escape, excursions
    from phasetools.stats import exponential_mle

    target = 0.0462726
    x1, y1 = GaussianTeacher([0.8]).sample(512, 1)
    b0 = escape_problem("chain", n_layers=3, c=0.8, gamma=0.32, direction="bwd", convention="paper").x0
    sgd = dict(n_layers=3, width=1, batch_size=4, weight_decay=0.32, lr=0.11)
    res = ams_training_escape((x1, y1), [np.full((1, 1), v) for v in b0], **sgd, target=target, direction="down",
                              coordinate="sharpness", sampling="shuffle", rng=2,
                              options=AMSOptions(n_replicas=50, n_kill=5, n_runs=20, n_walkers=50, n_rounds=4))
    eng = TrainingEngine((x1, y1), **sgd, sampling="shuffle", convention="paper", sign=-1.0, shapes=[(1, 1)] * 3,
                         coordinate=lambda M: np.linalg.svd(M, compute_uv=False)[:, 0])
    n = 100
    x = np.repeat(eng.state(np.asarray(b0))[None], n, axis=0)
    ex = excursions(eng, x, eng.streams(5, np.arange(n)), low=-np.inf, high=-target, max_steps=2000 * 128,
                    chunk=2048)
    brute = exponential_mle(ex.steps * eng.time_unit, ex.outcome != 2)
    print(f"AMS {res.tau:.4g} [{res.tau_lower:.4g}, {res.tau_upper:.4g}]; brute force {brute.tau:.4g} +- "
          f"{brute.tau_stderr:.3g}")
    assert brute.tau_stderr / brute.tau < 0.15 and 120 < brute.tau < 350
    assert res.tau_lower <= brute.tau <= res.tau_upper, (res.tau, res.tau_lower, res.tau_upper, brute.tau)


def _tiny_chain_ams(**kw):
    """A tiny AMS over the reshuffled width-1 chain (lr 0.12, the sharpness score, 4 runs of 10 replicas)."""
    from phasetools.langevin import escape_problem
    from phasetools.rare import AMSOptions, ams_training_escape

    x1, y1 = GaussianTeacher([0.8]).sample(512, 1)
    b0 = escape_problem("chain", n_layers=3, c=0.8, gamma=0.32, direction="bwd", convention="paper").x0
    return ams_training_escape((x1, y1), [np.full((1, 1), v) for v in b0], n_layers=3, width=1, batch_size=4,
                               weight_decay=0.32, lr=0.12, target=0.0462726, direction="down",
                               coordinate="sharpness", start=0.5, level=0.8, rng=1,
                               options=AMSOptions(n_replicas=10, n_kill=2, n_runs=4, n_walkers=10, n_rounds=2), **kw)


@pytest.mark.filterwarnings("ignore:.*too skewed:RuntimeWarning")   # 4 runs of 10 replicas: a plumbing check
def test_ams_training_escape_passes_exact_epochs_to_the_engine():
    """``exact_epochs`` reaches the engine: the result records it, and the exact engine makes one extra
    ``train`` call for every replica resumed mid-epoch, so the same seed costs more calls."""
    exact = _tiny_chain_ams(sampling="shuffle")
    fresh = _tiny_chain_ams(sampling="shuffle", exact_epochs=False)
    assert exact.noise["exact_epochs"] is True and fresh.noise["exact_epochs"] is False
    assert exact.stats["n_train_calls"] > fresh.stats["n_train_calls"]


def test_exact_epochs_false_is_refused_with_replacement():
    with pytest.raises(ValueError, match="exact_epochs=False applies to sampling='shuffle' only"):
        _tiny_chain_ams(sampling="replacement", exact_epochs=False)
    with pytest.raises(ValueError, match="exact_epochs must be True or False"):
        _tiny_chain_ams(sampling="shuffle", exact_epochs="no")
