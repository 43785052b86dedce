"""Goodness-of-fit for the language tests, in pure Python (no scipy): chi-square with an exact p-value."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Mapping

P_VALUE_FLOOR = 1e-3  # a correct sampler fails a fixed-seed test this rarely; a biased one fails it always


def chi_square_survival(statistic: float, dof: int) -> float:
    """P(X >= statistic) for X ~ chi-square with ``dof`` degrees of freedom: Q(dof/2, statistic/2)."""
    return regularized_upper_gamma(dof / 2, statistic / 2)


def regularized_upper_gamma(a: float, x: float) -> float:
    """Q(a, x) = Gamma(a, x) / Gamma(a): the series for small x, Lentz's continued fraction for large x."""
    if a <= 0:
        raise ValueError(f"a must be > 0, got {a}")
    if x <= 0:
        return 1.0
    log_prefactor = -x + a * math.log(x) - math.lgamma(a)
    if x < a + 1:
        term = total = 1 / a
        denominator = a
        for _ in range(100_000):
            denominator += 1
            term *= x / denominator
            total += term
            if abs(term) < abs(total) * 1e-16:
                break
        return max(0.0, 1.0 - total * math.exp(log_prefactor))
    tiny = 1e-300
    b = x + 1 - a
    c, d = 1 / tiny, 1 / b
    h = d
    for i in range(1, 100_000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = 1 / (d if abs(d) > tiny else tiny)
        c = b + an / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        if abs(d * c - 1) < 1e-16:
            break
    return math.exp(log_prefactor) * h


def chi_square_test(
    observed: Counter, probabilities: Mapping[Hashable, float], min_expected: float = 5.0
) -> tuple[float, int, float]:
    """Pearson's test of counts against exact probabilities: (statistic, degrees of freedom, p-value).

    Events whose expected count is below ``min_expected`` are pooled into one "rest" event, so the
    chi-square approximation holds. Observing an event of probability zero fails at once: it means the
    sampler emits what the language's own probability says it never does.
    """
    impossible = [key for key in observed if probabilities.get(key, 0.0) <= 0.0]
    assert not impossible, f"observed events of probability 0: {impossible[:5]}"
    total = sum(observed.values())
    kept = {key: p for key, p in probabilities.items() if p * total >= min_expected}
    cells = [(observed.get(key, 0), p * total) for key, p in kept.items()]
    rest_p = max(0.0, 1.0 - math.fsum(kept.values()))
    if rest_p * total > 1e-9:
        rest_observed = total - sum(o for o, _ in cells)
        cells.append((rest_observed, rest_p * total))
    statistic = sum((o - e) ** 2 / e for o, e in cells)
    dof = len(cells) - 1
    return statistic, dof, chi_square_survival(statistic, dof)


def assert_frequencies_match(observed: Counter, probabilities: Mapping[Hashable, float]) -> None:
    assert math.isclose(math.fsum(probabilities.values()), 1.0, abs_tol=1e-9), "probabilities must sum to 1"
    statistic, dof, p_value = chi_square_test(observed, probabilities)
    assert dof >= 1
    assert p_value > P_VALUE_FLOOR, f"chi-square {statistic:.1f} on {dof} dof, p = {p_value:.2e}"
