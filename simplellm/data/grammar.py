"""What every synthetic language offers, whatever it generates.

A language is one probabilistic generator. Its subclass writes two things, ``sample`` and ``logprob``,
from the same definition; everything else follows:

* ``is_valid(s)`` is ``logprob(s) > -inf``, so the validator accepts exactly what the generator can emit:
  a validator that accepts more would inflate every score, one that accepts less would cap it.
* ``splits`` and ``stream`` give reproducible data sets; ``entropy_rate`` and ``ideal_novelty`` say what
  a perfect model would score.

A language is a frozen dataclass of its parameters, so two equal configurations are equal objects, and
``grammar(**g.config)`` rebuilds ``g`` (checkpoints store the config).
"""

from __future__ import annotations

import dataclasses
import math
import random
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any, ClassVar

from simplellm.data.estimates import Estimate, monte_carlo_entropy_rate, monte_carlo_ideal_novelty
from simplellm.data.splits import Splits, make_splits, stream_samples


class Grammar(ABC):
    """Base class of the synthetic languages. Subclasses are frozen dataclasses."""

    name: ClassVar[str]
    alphabet: ClassVar[str]  # sorted, every character the generator can emit

    @abstractmethod
    def sample(self, rng: random.Random) -> str:
        """One string drawn from the language's distribution."""

    @abstractmethod
    def logprob(self, s: str) -> float:
        """Natural log of the probability that ``sample`` returns exactly ``s``; ``-math.inf`` if it cannot.

        Defined for every ``str`` (never raises for one); raises ``TypeError`` for anything else.
        """

    def is_valid(self, s: object) -> bool:
        """True exactly when the generator can emit ``s``. Never raises; a non-string is not valid."""
        return isinstance(s, str) and self.logprob(s) > -math.inf

    @property
    def config(self) -> dict[str, Any]:
        """JSON-able parameters and the language's name: ``grammar(**config)`` rebuilds an equal language."""
        params = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.init}
        return {"name": self.name, **params}

    # ---------------------------------------------------------------- what a perfect model would score
    def entropy_rate(self) -> Estimate:
        """Nats per token, end of sequence counted: E[-log p(x)] / E[len(x) + 1]; no model's loss is lower.

        This default is a Monte-Carlo estimate; languages that can sum exactly override it.
        """
        return monte_carlo_entropy_rate(self)

    def ideal_novelty(self, train_size: int) -> Estimate:
        """Share of a perfect model's samples absent from ``train_size`` training draws:
        sum over x of p(x) (1 - p(x))**train_size. Monte-Carlo here; exact in languages that can sum it."""
        return monte_carlo_ideal_novelty(self, train_size)

    def max_length(self) -> int | None:
        """Length of the longest string in the support, or None when lengths are unbounded."""
        return None

    def support_size(self) -> int | None:
        """Number of strings with non-zero probability, or None when it is infinite."""
        return None

    def enumerate_support(self) -> Iterator[tuple[str, float]]:
        """Every string of a finite support with its probability. Raises ValueError for an infinite one."""
        raise ValueError(f"{self!r} has an infinite support; it cannot be enumerated")

    # ---------------------------------------------------------------- data sets
    def splits(self, seed: int, train_size: int, val_size: int = 0, test_size: int = 0) -> Splits:
        """Deterministic train / validation / test samples; see ``simplellm.data.splits``."""
        return make_splits(self, seed, train_size, val_size, test_size)

    def stream(self, seed: int) -> Iterator[str]:
        """An endless stream of fresh samples, independent of ``splits(seed, ...)``."""
        return stream_samples(self, seed)
