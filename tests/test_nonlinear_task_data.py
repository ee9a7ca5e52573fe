"""A task's data arrays are read-only, so the trainer's remembered metrics cannot go stale."""

from __future__ import annotations

import numpy as np
import pytest

from phasetools import nonlinear as nl


def test_task_arrays_refuse_in_place_changes():
    t = nl.modular_addition(7)
    for name in ("X_train", "y_train", "X_test", "y_test"):
        with pytest.raises(ValueError, match="read-only"):
            getattr(t, name)[:1] = 0
    with pytest.raises(ValueError, match="read-only"):
        t.extra["pairs_train"][0, 0] = 1


def test_task_copies_the_callers_arrays():
    """The caller's arrays stay writeable, and changing them does not change the task."""
    X, y = np.zeros((4, 3)), np.array([0, 1, 0, 1])
    t = nl.Task("synthetic_images", {}, 3, 2, X, y, X.copy(), y.copy(), False)
    X[0, 0], y[0] = 5.0, 1
    assert t.X_train[0, 0] == 0.0 and t.y_train[0] == 0
    assert X.flags.writeable and not t.X_train.flags.writeable


def test_evaluate_after_training_matches_a_fresh_task():
    """The reviewer's reproduction: mutating y_train after a run used to make evaluate stale."""
    t, m = nl.modular_addition(7), nl.quadratic_mlp(7, 8)
    run = nl.train(t, m, nl.sgd(0.1), epochs=1, rng=1)
    with pytest.raises(ValueError, match="read-only"):
        t.y_train[:] = (t.y_train + 1) % 7
    assert np.array_equal(t.y_train, nl.modular_addition(7).y_train)
    got, fresh = nl.evaluate(t, m, run.weights), nl.evaluate(nl.modular_addition(7), m, run.weights)
    for k in ("train_loss", "train_acc", "test_loss", "test_acc"):
        assert np.array_equal(got[k], fresh[k])
