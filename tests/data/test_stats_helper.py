"""The chi-square p-value that the frequency tests rely on, checked against values known in closed form."""

import math
import random
from collections import Counter

import pytest

from .stats import chi_square_survival, chi_square_test


@pytest.mark.parametrize("x", [0.01, 0.5, 2.0, 7.3, 30.0, 200.0])
def test_two_degrees_of_freedom_is_an_exponential(x):
    # chi-square with 2 dof is Exp(1/2): P(X >= x) = exp(-x/2)
    assert math.isclose(chi_square_survival(x, 2), math.exp(-x / 2), rel_tol=1e-10)


@pytest.mark.parametrize("x", [0.1, 1.0, 3.841458820694124, 10.0])
def test_one_degree_of_freedom_is_a_squared_normal(x):
    # P(Z**2 >= x) = erfc(sqrt(x / 2))
    assert math.isclose(chi_square_survival(x, 1), math.erfc(math.sqrt(x / 2)), rel_tol=1e-10)


@pytest.mark.parametrize(
    "x, dof",  # 95% quantiles from standard tables: each should leave 5% above it
    [(3.841458820694124, 1), (18.307038053275146, 10), (124.34211340400407, 100), (10233.751, 10000)],
)
def test_tabulated_quantiles(x, dof):
    assert chi_square_survival(x, dof) == pytest.approx(0.05, abs=2e-4)


def test_the_test_accepts_a_fair_die_and_rejects_a_loaded_one():
    rng = random.Random(5)
    fair = {face: 1 / 6 for face in range(6)}
    rolls = Counter(rng.randrange(6) for _ in range(60_000))
    assert chi_square_test(rolls, fair)[2] > 0.001
    loaded = Counter(min(rng.randrange(6), rng.randrange(6) + 1) for _ in range(60_000))
    assert chi_square_test(loaded, fair)[2] < 1e-6


def test_an_impossible_observation_fails():
    with pytest.raises(AssertionError, match="probability 0"):
        chi_square_test(Counter({"a": 5, "b": 1}), {"a": 1.0})
