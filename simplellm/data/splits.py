"""Reproducible data sets drawn from a language: train / validation / test, and a stream of fresh samples.

The training set is ``train_size`` independent draws, duplicates included: that is what sampling
from the language gives, and repeated strings are how a model learns that some strings are likelier.

Validation and test are drawn from the language *conditioned on not being in the training set*
(rejection sampling), so they measure generalisation rather than recall. Two consequences to keep in mind:

* The conditioning biases cross-entropy. When probabilities are unequal, the likely strings are the ones
  that land in training, so held-out strings are rarer than fresh samples and even a perfect model's
  validation loss sits *above* the entropy rate. ``train_mass`` (the probability that a fresh sample is in
  the training set) says how strong the effect is; compare losses with the entropy rate on ``stream``
  samples, which are unconditioned.
* Where the training set covers (nearly) the whole support, a held-out string cannot be found. After
  ``max_tries`` rejected draws we keep the last draw and count it in ``validation_overlap`` /
  ``test_overlap`` rather than loop forever; those counts are reported, never hidden.

Each set has its own random stream derived from the seed, so asking for a larger validation set does not
change the training set, and ``stream(seed)`` never repeats the draws of ``splits(seed, ...)``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from simplellm.data.grammar import Grammar

MAX_TRIES = 1000


@dataclass
class Splits:
    train: list[str]
    validation: list[str]
    test: list[str]
    validation_overlap: int  # validation samples that are also training samples (only when unavoidable)
    test_overlap: int
    # probability that one fresh sample is a training string: sum of p(x) over the distinct training strings
    train_mass: float


def seeded_rng(seed: int, purpose: str) -> random.Random:
    """An independent random stream per (seed, purpose). String seeds hash with SHA-512: stable everywhere."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    return random.Random(f"simplellm.data/{seed}/{purpose}")


def make_splits(
    g: Grammar, seed: int, train_size: int, val_size: int = 0, test_size: int = 0, max_tries: int = MAX_TRIES
) -> Splits:
    for label, size in (("train_size", train_size), ("val_size", val_size), ("test_size", test_size)):
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError(f"{label} must be an integer >= 0, got {size!r}")
    train = training_samples(g, seed, train_size)
    seen = set(train)
    train_mass = math.fsum(math.exp(g.logprob(x)) for x in seen)
    support = g.support_size()
    # When training holds every string, rejection can never succeed: skip the futile tries.
    tries = 1 if support is not None and len(seen) >= support else max_tries
    validation, validation_overlap = _held_out(g, seeded_rng(seed, "validation"), val_size, seen, tries)
    test, test_overlap = _held_out(g, seeded_rng(seed, "test"), test_size, seen, tries)
    return Splits(train, validation, test, validation_overlap, test_overlap, train_mass)


def training_samples(g: Grammar, seed: int, size: int) -> list[str]:
    """The first ``size`` training draws for ``seed``: ``splits(seed, size).train`` without the rest."""
    rng = seeded_rng(seed, "train")
    return [g.sample(rng) for _ in range(size)]


def _held_out(
    g: Grammar, rng: random.Random, size: int, exclude: set[str], tries: int
) -> tuple[list[str], int]:
    samples, overlap = [], 0
    for _ in range(size):
        for _ in range(tries):
            x = g.sample(rng)
            if x not in exclude:
                break
        else:
            overlap += 1
        samples.append(x)
    return samples, overlap


def stream_samples(g: Grammar, seed: int) -> Iterator[str]:
    return _endless(g, seeded_rng(seed, "stream"))  # the seed is checked now, not at the first next()


def _endless(g: Grammar, rng: random.Random) -> Iterator[str]:
    while True:
        yield g.sample(rng)
