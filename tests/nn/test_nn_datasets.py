"""The milestone's data: deterministic by seed, exactly the stated functions, plain Python numbers."""

from __future__ import annotations

import math

import pytest

from simplellm.nn.datasets import Quadratic, make_moons, make_quadratic, train_test_split


def test_quadratic_is_the_stated_function_on_the_stated_square():
    target = Quadratic(w1=2.0, w2=-3.0, b=0.5, low=-2.0, high=1.0)
    X, y = make_quadratic(200, seed=1, target=target)
    assert len(X) == len(y) == 200
    for (x1, x2), t in zip(X, y, strict=True):
        assert -2.0 <= x1 <= 1.0 and -2.0 <= x2 <= 1.0
        assert t == 2.0 * x1**2 - 3.0 * x2**2 + 0.5
        assert type(x1) is float and type(t) is float
    assert min(x for x, _ in X) < -1.5 and max(x for x, _ in X) > 0.5  # it covers the square


def test_quadratic_is_deterministic_by_seed():
    assert make_quadratic(50, seed=3) == make_quadratic(50, seed=3)
    assert make_quadratic(50, seed=3) != make_quadratic(50, seed=4)
    assert make_quadratic(10, seed=3)[0] == make_quadratic(50, seed=3)[0][:10]  # a prefix, not a new draw


def test_moons_without_noise_lie_on_their_two_half_circles_and_are_balanced():
    X, y = make_moons(101, noise=0.0, seed=0)
    assert len(X) == 101 and sorted(set(y)) == [0, 1] and y.count(0) == 50 and y.count(1) == 51
    for (x1, x2), label in zip(X, y, strict=True):
        if label == 0:
            assert math.hypot(x1, x2) == pytest.approx(1.0) and x2 >= -1e-12
        else:
            assert math.hypot(x1 - 1.0, x2 - 0.5) == pytest.approx(1.0) and x2 <= 0.5 + 1e-12
    assert y != sorted(y)  # shuffled, not one class after the other


def test_moons_noise_and_seed():
    clean, labels = make_moons(40, noise=0.0, seed=2)
    noisy, noisy_labels = make_moons(40, noise=0.1, seed=2)
    assert labels == noisy_labels
    offsets = [a - b for p, q in zip(clean, noisy, strict=True) for a, b in zip(p, q, strict=True)]
    assert 0.03 < math.sqrt(sum(d * d for d in offsets) / len(offsets)) < 0.3
    assert make_moons(40, 0.1, seed=2) == make_moons(40, 0.1, seed=2) != make_moons(40, 0.1, seed=3)


def test_train_test_split_partitions_the_examples():
    X, y = make_quadratic(100, seed=0)
    X_train, y_train, X_test, y_test = train_test_split(X, y, test_fraction=0.2, seed=0)
    assert len(X_test) == 20 and len(X_train) == 80
    pairs = sorted(zip(map(tuple, X_train + X_test), y_train + y_test, strict=True))
    assert pairs == sorted(zip(map(tuple, X), y, strict=True))
    assert train_test_split(X, y, 0.2, seed=0) == train_test_split(X, y, 0.2, seed=0)
    assert train_test_split(X, y, 0.2, seed=0) != train_test_split(X, y, 0.2, seed=1)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: make_quadratic(0, seed=0), "at least 1"),
        (lambda: make_moons(1, 0.1, seed=0), "at least 2"),
        (lambda: make_moons(10, -0.1, seed=0), "noise"),
        (lambda: train_test_split([[0.0]] * 3, [0.0] * 2, 0.5, seed=0), "3 inputs but 2 targets"),
        (lambda: train_test_split([[0.0]] * 3, [0.0] * 3, 1.5, seed=0), "test_fraction"),
        (lambda: train_test_split([[0.0]] * 2, [0.0] * 2, 0.1, seed=0), "too few"),
    ],
)
def test_bad_arguments_raise_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()
