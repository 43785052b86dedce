"""counting: consecutive non-negative integers, comma-separated, such as ``98,99`` or ``7,8,9,10``.

The process (sampler, validator and log-probability all follow from it)
-----------------------------------------------------------------------
1. The number of terms k is uniform in [2, max_count].
2. The start is uniform over the starts that keep every term below 10**n: [0, 10**n - k].
   (No clipping at the top: a sampler that clipped would emit shorter sequences, even single numbers,
   that its own rules reject.)
3. The terms start, start+1, ..., start+k-1 are written in decimal without leading zeros, joined by ','.

A string fixes (k, start), so p(x) = 1 / ((max_count - 1) * (10**n - k + 1)) for every valid x. Everything
else is a finite sum over k. ``max_count`` is at most 10**n (k numbers below 10**n need k <= 10**n).
Defaults: n=3, max_count=8 (mean 5 terms, about 20 characters at n=3).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import ClassVar

from simplellm.data.decimal_numbers import MAX_DIGITS, is_canonical, total_digits_below
from simplellm.data.estimates import Estimate, check_train_size, probability_missing
from simplellm.data.grammar import Grammar
from simplellm.data.params import check_int


@dataclass(frozen=True)
class Counting(Grammar):
    name: ClassVar[str] = "counting"
    alphabet: ClassVar[str] = ",0123456789"

    n: int = 3
    max_count: int = 8

    def __post_init__(self) -> None:
        check_int("n", self.n, minimum=1, maximum=MAX_DIGITS)
        check_int("max_count", self.max_count, minimum=2)
        if self.max_count > 10**self.n:
            raise ValueError(
                f"max_count must be at most 10**n = {10**self.n} (that many numbers below 10**n exist), "
                f"got {self.max_count}"
            )

    def _num_starts(self, k: int) -> int:
        return 10**self.n - k + 1

    def _logprob_of_count(self, k: int) -> float:
        return -math.log(self.max_count - 1) - math.log(self._num_starts(k))

    def sample(self, rng: random.Random) -> str:
        k = rng.randint(2, self.max_count)
        start = rng.randrange(self._num_starts(k))
        return ",".join(str(start + i) for i in range(k))

    def logprob(self, s: str) -> float:
        if not isinstance(s, str):
            raise TypeError(f"logprob expects a str, got {type(s).__name__}")
        terms = s.split(",", self.max_count)  # at most max_count + 1 pieces: enough to see too many
        k = len(terms)
        if not 2 <= k <= self.max_count:
            return -math.inf
        if not all(len(t) <= self.n and is_canonical(t) for t in terms):
            return -math.inf
        start = int(terms[0])
        if any(int(t) != start + i for i, t in enumerate(terms)):
            return -math.inf
        return self._logprob_of_count(k)

    # ---------------------------------------------------------------- exact sums
    def _mean_tokens(self) -> Fraction:
        """E[len(x) + 1]: digits of all terms, k - 1 commas and one end token, averaged over k and start.

        Over all starts, term i of a k-term sequence runs through [i, top - k + i] (top = 10**n), which
        takes D(top - k + i + 1) - D(i) digits, D(x) being the digits of all of [0, x). Summed over i,
        that is tail(k) - head(k), where tail(k) = D(top - k + 1) + ... + D(top) and
        head(k) = D(0) + ... + D(k - 1). Each grows by one term per k: one pass over k.
        """
        top = 10**self.n
        tail = head = 0
        total = Fraction(0)
        for k in range(1, self.max_count + 1):
            tail += total_digits_below(top - k + 1)
            head += total_digits_below(k - 1)
            if k >= 2:
                total += Fraction(tail - head, self._num_starts(k)) + k  # k - 1 commas and the end token
        return total / (self.max_count - 1)

    def entropy_rate(self) -> Estimate:
        counts = range(2, self.max_count + 1)
        mean_surprisal = -math.fsum(self._logprob_of_count(k) for k in counts) / len(counts)
        return Estimate(mean_surprisal / float(self._mean_tokens()), method="exact: sum over term counts")

    def ideal_novelty(self, train_size: int) -> Estimate:
        # the num_starts(k) strings with k terms share p; together they weigh 1 / (max_count - 1)
        check_train_size(train_size)
        counts = range(2, self.max_count + 1)
        value = math.fsum(
            probability_missing(math.exp(self._logprob_of_count(k)), train_size) for k in counts
        )
        return Estimate(value / len(counts), method="exact: sum over term counts")

    def max_length(self) -> int:
        k = self.max_count  # the longest string counts the most terms up to 10**n - 1
        return total_digits_below(10**self.n) - total_digits_below(10**self.n - k) + k - 1

    def support_size(self) -> int:
        return sum(self._num_starts(k) for k in range(2, self.max_count + 1))

    def enumerate_support(self) -> Iterator[tuple[str, float]]:
        for k in range(2, self.max_count + 1):
            p = math.exp(self._logprob_of_count(k))
            for start in range(self._num_starts(k)):
                yield ",".join(str(start + i) for i in range(k)), p
