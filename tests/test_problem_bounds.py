"""TrainingProblem.bounds: the MAX_BOUND limit is for the hidden layers (the constants of the
ReLU encodings); the output layer has no ReLU and is only checked to be finite, so a large
weight box on a one-hidden-layer network is not refused for its B^2-sized output range."""

import numpy as np
import pytest

from unrectify.formulations import InputError, build_training_model, forward, random_instance
from unrectify.formulations.problem import MAX_BOUND


def test_large_B_on_one_hidden_layer_is_accepted_and_exact():
    B = 1e6
    p = random_instance(3, (1, 2, 1), 0, "mse", B)
    (lo1, hi1), (lo2, hi2) = p.bounds()
    # interval arithmetic: hidden |z| <= B (|x| + 1); output |z| <= B (sum_j hi1_j + 1)
    assert np.allclose(hi1, B * (np.abs(p.X) + 1.0)) and np.array_equal(lo1, -hi1)
    assert hi1.max() <= MAX_BOUND < hi2.max()
    assert np.allclose(hi2[:, 0], B * (hi1.sum(axis=1) + 1.0)) and np.array_equal(lo2, -hi2)
    # the forward pass of weights at the corners of the box lies inside, and is feasible in the model
    w = [(np.full((2, 1), B), np.full(2, B)), (np.full((1, 2), B), np.full(1, B))]
    zs, _ = forward(w, p.X)
    for (lo, hi), z in zip(p.bounds(), zs):
        assert np.all(lo <= z) and np.all(z <= hi)
    tm = build_training_model(p, "split", "binary")
    assert tm.model.evaluate(tm.point_from_weights(w)).max_violation <= 1e-9 * B * B


def test_hidden_layer_bounds_beyond_the_limit_are_refused():
    p = random_instance(3, (1, 2, 2, 1), 0, "mse", 1e6)     # layer 2 is hidden: a B^2-sized big-M
    with pytest.raises(InputError, match=r"layer 2 exceed 1e\+08"):
        p.bounds()
    with pytest.raises(InputError, match=r"layer 1 exceed 1e\+08"):
        random_instance(3, (1, 2, 1), 0, "mse", 1e9).bounds()
