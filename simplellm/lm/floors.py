"""Loss floors: the best training loss any model could reach on a corpus, given the context it sees.

A model that reads the previous k tokens can do no better on its training set than the *count model*
that memorises it: for every context c it predicts the empirical distribution of the tokens that
followed c in the data. Its loss is the empirical conditional entropy

    H(next | context) = -(1/N) sum over (c, x) of count(c, x) * log(count(c, x) / count(c)),

N the number of predicted tokens. No distribution scores lower on those pairs (cross-entropy is
minimised by the empirical distribution itself), so this is a floor for *every* model with that
context, however large. A small corpus repeats few contexts: its floor is low, far below the loss
on unseen text, and a network whose training loss approaches it is memorising, not learning more
about the language. Printed beside a model's loss, it tells the two apart.

Contexts are read the way the models read them: sequences are framed ``BOS x1 .. xn EOS``, every
token after the first is predicted (EOS included), and a context shorter than k is padded on the
left with BOS. ``k=None`` means the whole prefix, what a transformer with a long enough window sees.
``ordered=False`` keys a context by its words whatever their order (a multiset): the floor of a model
that averages its context's embeddings, which cannot tell "a b" from "b a".
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

from simplellm.lm.tokenizers import BOS


def contexts_and_targets(
    sequences: Sequence[Sequence[int]], k: int | None
) -> Iterator[tuple[tuple[int, ...], int]]:
    """Every (context, next token) pair of framed sequences: the last k tokens, BOS-padded on the left."""
    if k is not None and k < 0:
        raise ValueError(f"k must be >= 0 (or None for the whole prefix), not {k}")
    for seq in sequences:
        seq = [int(t) for t in seq]
        for t in range(1, len(seq)):
            if k is None:
                yield tuple(seq[:t]), seq[t]
            else:
                window = seq[max(0, t - k) : t]
                yield (BOS,) * (k - len(window)) + tuple(window), seq[t]


def conditional_entropy(sequences: Sequence[Sequence[int]], k: int | None, ordered: bool = True) -> float:
    """H(next token | previous k tokens) on ``sequences``, in nats per predicted token (see the module doc).

    ``k=0`` is the unigram entropy, ``k=None`` conditions on the whole prefix; ``ordered=False`` on the
    previous k tokens as a multiset.
    """
    pairs = contexts_and_targets(sequences, k)
    if not ordered:
        pairs = ((tuple(sorted(c)), x) for c, x in pairs)
    pair_counts: Counter[tuple[tuple[int, ...], int]] = Counter(pairs)
    n = sum(pair_counts.values())
    if n == 0:
        raise ValueError("conditional_entropy needs at least one sequence with a token after BOS")
    context_counts: Counter[tuple[int, ...]] = Counter()
    for (context, _), count in pair_counts.items():
        context_counts[context] += count
    total = sum(count * math.log(count / context_counts[c]) for (c, _), count in pair_counts.items())
    return -total / n


def context_length(model: Any) -> int | None:
    """How many previous tokens a model's predictions read: ``k`` of an n-gram network or a Bengio MLP
    (``config.context``), ``n - 1`` of a count n-gram (``config.order``), else its ``context_window``
    (a transformer's block size); None, the whole prefix, for a recurrent model."""
    config = getattr(model, "config", None)
    if hasattr(config, "context"):
        return int(config.context)
    if hasattr(config, "order"):
        return int(config.order) - 1
    return getattr(model, "context_window", None)


def floor_report(sequences: Sequence[Sequence[int]], k: int | None, model_loss: float) -> str:
    """One line a learner can read: a model's loss on its training set beside the floor for its context."""
    floor = conditional_entropy(sequences, k)
    seen = "the whole prefix" if k is None else f"{k} previous token{'s' * (k != 1)}"
    return (
        f"{model_loss:.4f} nats/token on the training set; floor {floor:.4f} (the count model that "
        f"memorises it, seeing {seen}); gap {model_loss - floor:+.4f}"
    )
