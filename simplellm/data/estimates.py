"""Numbers that describe a language: exact where we can sum, Monte-Carlo with a standard error where we can't.

Two numbers make a model's scores readable:

* the entropy rate, E[-log p(x)] / E[len(x) + 1] in nats per token (the +1 is the end-of-sequence token,
  which a model has to predict too). No model's validation cross-entropy can go below it.
* the ideal novelty at training-set size T, sum over x of p(x) (1 - p(x))**T: the share of samples that
  a *perfect* model would generate that are not among T training draws. A model's novelty is read
  against it: a memorising model scores below it, and no honest model can beat it on average.

Every language computes both exactly where it can. The Monte-Carlo versions below work for any language
that can sample and score itself; they are the fallback and the independent check of the exact ones.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from simplellm.data.grammar import Grammar


@dataclass(frozen=True)
class Estimate:
    """A number together with how far to trust it.

    ``exact`` means computed by summation (to float precision, or within a stated bound far below
    any figure we report); otherwise ``stderr`` is the Monte-Carlo standard error.
    ``float(e)`` gives the value, and ``f"{e:.4f}"`` prints ``1.2345`` or ``1.2345 ± 0.0012``.
    """

    value: float
    stderr: float = 0.0
    exact: bool = True
    method: str = ""

    def __float__(self) -> float:
        return self.value

    def __format__(self, spec: str) -> str:
        text = format(self.value, spec or ".6g")
        return text if self.exact else f"{text} ± {format(self.stderr, spec or '.2g')}"

    def __str__(self) -> str:
        return format(self, "")


def monte_carlo_entropy_rate(g: Grammar, num_samples: int = 20_000, seed: int = 0) -> Estimate:
    """E[-log p(x)] / E[len(x) + 1] from samples and their exact log-probabilities.

    A ratio of two means; its standard error comes from the delta method:
    Var(A/B) ~ Var(A - R B) / (m E[B]^2) with R the ratio.
    """
    if num_samples < 2:
        raise ValueError(f"num_samples must be at least 2, got {num_samples}")
    rng = random.Random(seed)
    surprisals, tokens = [], []
    for _ in range(num_samples):
        x = g.sample(rng)
        surprisals.append(-g.logprob(x))
        tokens.append(len(x) + 1)
    mean_tokens = sum(tokens) / num_samples
    rate = sum(surprisals) / sum(tokens)
    residuals = [a - rate * b for a, b in zip(surprisals, tokens, strict=True)]
    variance = sum(r * r for r in residuals) / (num_samples - 1)
    stderr = math.sqrt(variance / num_samples) / mean_tokens
    return Estimate(rate, stderr, exact=False, method=f"Monte-Carlo, {num_samples} samples, seed {seed}")


def monte_carlo_ideal_novelty(
    g: Grammar, train_size: int, num_samples: int = 20_000, seed: int = 0
) -> Estimate:
    """E over x ~ p of (1 - p(x))**train_size: the chance that x is missing from train_size draws."""
    check_train_size(train_size)
    if num_samples < 2:
        raise ValueError(f"num_samples must be at least 2, got {num_samples}")
    rng = random.Random(seed)
    values = [probability_missing(math.exp(g.logprob(g.sample(rng))), train_size) for _ in range(num_samples)]
    mean = sum(values) / num_samples
    variance = sum((v - mean) ** 2 for v in values) / (num_samples - 1)
    return Estimate(
        mean, math.sqrt(variance / num_samples), exact=False, method=f"Monte-Carlo, {num_samples} samples"
    )


def probability_missing(p: float, train_size: int) -> float:
    """(1 - p)**train_size, accurate even when p is tiny (log1p keeps the digits that 1 - p loses)."""
    if p >= 1.0:
        return 0.0 if train_size > 0 else 1.0
    return math.exp(train_size * math.log1p(-p))


def check_train_size(train_size: int) -> None:
    if isinstance(train_size, bool) or not isinstance(train_size, int) or train_size < 0:
        raise ValueError(f"train_size must be an integer >= 0, got {train_size!r}")
