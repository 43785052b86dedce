"""Scoring generated samples against a language: how many are valid, new, repeated.

The same figures for every generator, ours or a chat model's:

* in-distribution: the share of samples the validator accepts, with a 95% Wilson interval (it stays
  inside [0, 1] and behaves at 0% and 100%, where the textbook p +- 1.96 sqrt(p(1-p)/n) collapses);
* novelty: the share of *valid* samples that are not training strings. Each sample counts, repeats
  included, because that is how ``Grammar.ideal_novelty`` counts: compare the two;
* duplicated: samples equal to an earlier sample of the same list, valid or not.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from simplellm.data.grammar import Grammar

Z_95 = 1.959963984540054  # the 97.5% quantile of the standard normal


@dataclass(frozen=True)
class SampleScore:
    total: int
    valid: int
    new: int  # valid and not in the training set
    duplicated: int  # equal to an earlier sample in the list

    @property
    def invalid(self) -> int:
        return self.total - self.valid

    @property
    def in_distribution(self) -> float:
        """valid / total (nan when there are no samples)."""
        return self.valid / self.total if self.total else math.nan

    @property
    def novelty(self) -> float:
        """new / valid (nan when no sample is valid)."""
        return self.new / self.valid if self.valid else math.nan

    def in_distribution_interval(self, z: float = Z_95) -> tuple[float, float]:
        return wilson_interval(self.valid, self.total, z)


def score_samples(g: Grammar, samples: Iterable[str], train: Iterable[str] = ()) -> SampleScore:
    """Count valid, new (valid and not in ``train``) and duplicated samples, each taken exactly as given."""
    train_set = set(train)
    seen: set[str] = set()
    total = valid = new = duplicated = 0
    for x in samples:
        total += 1
        if x in seen:
            duplicated += 1
        seen.add(x)
        if g.is_valid(x):
            valid += 1
            new += x not in train_set
    return SampleScore(total, valid, new, duplicated)


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion; (0, 1) when there are no trials."""
    if not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials, got {successes} of {trials}")
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    denominator = 1 + z * z / trials
    center = (p + z * z / (2 * trials)) / denominator
    half_width = z / denominator * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    return max(0.0, center - half_width), min(1.0, center + half_width)
