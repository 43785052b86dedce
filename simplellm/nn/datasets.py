"""Small, exactly reproducible data sets for the MLP milestone.

Everything here is pure Python (lists of floats, ``random.Random``), so that the same seed gives the
same numbers on every machine and each stage converts the lists to what it computes with: stage 1
keeps them as they are, stages 2 and 3 turn them into float64 tensors.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

Inputs = list[list[float]]


@dataclass(frozen=True)
class Quadratic:
    """The target function ``y = w1 * x1**2 + w2 * x2**2 + b``, sampled on the square [low, high]^2.

    No noise: a network that fits it perfectly reaches zero test error, so what is left is the
    network's (and the optimizer's) doing, not the data's.
    """

    w1: float = 1.5
    w2: float = -0.8
    b: float = 0.3
    low: float = -1.0
    high: float = 1.0

    def __call__(self, x1: float, x2: float) -> float:
        return self.w1 * x1**2 + self.w2 * x2**2 + self.b

    def sample(self, n: int, seed: int) -> tuple[Inputs, list[float]]:
        """``n`` points drawn uniformly from the square, and the function at each: ``(X, y)``."""
        if n < 1:
            raise ValueError(f"sample: n must be at least 1, got {n}")
        rng = random.Random(seed)
        X = [[rng.uniform(self.low, self.high), rng.uniform(self.low, self.high)] for _ in range(n)]
        return X, [self(x1, x2) for x1, x2 in X]


def make_quadratic(n: int, seed: int, target: Quadratic | None = None) -> tuple[Inputs, list[float]]:
    """``n`` noiseless samples of ``y = w1*x1**2 + w2*x2**2 + b`` (default ``Quadratic()``)."""
    return (target or Quadratic()).sample(n, seed)


def make_moons(n: int, noise: float, seed: int) -> tuple[Inputs, list[int]]:
    """Two interleaving half circles, the classic small non-linear classification problem.

    Returns ``(X, y)``: ``X`` a list of ``n`` points ``[x1, x2]``, ``y`` their class, 0 (upper moon) or 1
    (lower moon); write ``2 * y - 1`` for the +-1 labels of a hinge loss. The points are shuffled, and
    each coordinate gets Gaussian noise of standard deviation ``noise``. Same construction as
    scikit-learn's ``make_moons``, but deterministic by ``seed`` with Python's own generator.
    """
    if n < 2:
        raise ValueError(f"make_moons: n must be at least 2 (one point per moon), got {n}")
    if noise < 0:
        raise ValueError(f"make_moons: noise is a standard deviation and must be >= 0, got {noise}")
    rng = random.Random(seed)
    n_upper = n // 2
    n_lower = n - n_upper
    points: list[tuple[list[float], int]] = []
    for i in range(n_upper):
        t = math.pi * i / max(n_upper - 1, 1)
        points.append(([math.cos(t), math.sin(t)], 0))
    for i in range(n_lower):
        t = math.pi * i / max(n_lower - 1, 1)
        points.append(([1.0 - math.cos(t), 0.5 - math.sin(t)], 1))
    rng.shuffle(points)
    X = [[x1 + rng.gauss(0.0, noise), x2 + rng.gauss(0.0, noise)] for (x1, x2), _ in points]
    return X, [label for _, label in points]


def train_test_split(
    X: Inputs, y: list, test_fraction: float, seed: int
) -> tuple[Inputs, list, Inputs, list]:
    """Shuffle with ``seed``, hold out ``test_fraction``: ``(X_train, y_train, X_test, y_test)``."""
    if len(X) != len(y):
        raise ValueError(f"train_test_split: {len(X)} inputs but {len(y)} targets")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"train_test_split: test_fraction must be in (0, 1), got {test_fraction}")
    order = list(range(len(X)))
    random.Random(seed).shuffle(order)
    n_test = round(len(X) * test_fraction)
    if n_test == 0 or n_test == len(X):
        raise ValueError(f"train_test_split: {len(X)} examples are too few to hold out {test_fraction:.0%}")
    test, train = order[:n_test], order[n_test:]
    return [X[i] for i in train], [y[i] for i in train], [X[i] for i in test], [y[i] for i in test]
