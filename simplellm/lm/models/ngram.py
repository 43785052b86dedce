"""The count n-gram: the next token's probability is how often it followed the last n-1 tokens.

Shannon (1948, "A Mathematical Theory of Communication") generated English from letter n-gram tables;
add-k (Lidstone) smoothing and backing off to shorter contexts are as in Jurafsky & Martin, "Speech and
Language Processing", ch. 3. A bigram is ``order=2``, a trigram ``order=3``.

This model has no gradient and no torch: training is counting. Everything here is exact, so it is the
yardstick the neural models are measured against (the neural bigram must converge to ``order=2``).

* Context. The token at position t is predicted from the ``order - 1`` tokens before it. A sample starts
  with BOS, and a context that is too short is padded on the left with more BOS, so the first letter of a
  sample is predicted from ``(BOS,) * (order - 1)``: the model knows where a sample begins.
* Smoothing. ``q(w | c) = (count(c, w) + k) / (count(c) + k * |targets|)``, where the targets are every
  token except PAD and BOS, which never follow anything in a framed sample (they get probability 0 at
  any k). ``k = 0`` is maximum likelihood: tokens never seen after ``c`` get probability 0.
* Unseen contexts. A context never seen in training backs off to its longest suffix that was seen
  (``c[1:]``, then ``c[2:]``, ... down to the empty context, the unigram), smoothed the same way; a model
  that has counted nothing is uniform over the targets. Generation from BOS with ``k = 0`` never needs
  this: every context it can reach was seen, because a sampled token was seen after the context and
  therefore (not being EOS) was itself followed by something. So with ``k = 0`` a model of high enough
  order samples only strings of the training language.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from simplellm.lm.models.base import LanguageModel
from simplellm.lm.tokenizers import BOS, PAD


@dataclass
class NGramConfig:
    vocab_size: int
    order: int = 3  # n: predict from the previous n - 1 tokens
    k: float = 0.0  # add-k smoothing; 0 is maximum likelihood


class CountNGram(LanguageModel):
    """Counts of (previous n-1 tokens, next token), smoothed with add-k, backing off when unseen."""

    family: ClassVar[str] = "ngram"
    Config: ClassVar[type] = NGramConfig

    def __init__(self, config: NGramConfig) -> None:
        if config.order < 1:
            raise ValueError(f"order must be >= 1 (1 is the unigram), not {config.order}")
        if not config.k >= 0:
            raise ValueError(f"k must be >= 0 (0 is maximum likelihood), not {config.k}")
        if config.vocab_size <= BOS:
            raise ValueError(
                f"vocab_size must include the special tokens, so be > {BOS}, not {config.vocab_size}"
            )
        self.config = config
        self.vocab_size = config.vocab_size
        self.order = config.order
        self.k = float(config.k)
        # the table: counts[rows[c], w] is how often token w followed the context c (a tuple of order - 1 ids)
        self.rows: dict[tuple[int, ...], int] = {}
        self.counts = np.zeros((0, self.vocab_size), dtype=np.int64)
        self.targets = np.ones(self.vocab_size, dtype=bool)
        self.targets[[PAD, BOS]] = False
        self._lookup: dict[tuple[int, ...], int] | None = None  # built lazily, see _tables
        self._logp: np.ndarray | None = None

    # ----------------------------------------------------------------- counting
    def context_of(self, tokens: Sequence[int]) -> tuple[int, ...]:
        """The ``order - 1`` tokens a prediction after ``tokens`` reads, BOS-padded on the left."""
        n = self.order - 1
        if n == 0:
            return ()
        return tuple(([BOS] * n + [int(t) for t in tokens[-n:]])[-n:])

    def _windows(self, sequences: Iterable[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
        """(P, order) rows ``context + (target,)`` for every predicted token, and each row's sequence."""
        n = self.order - 1
        windows, owners = [], []
        for i, seq in enumerate(sequences):
            seq = np.asarray(seq, dtype=np.int64)
            if len(seq) < 2:
                continue
            if seq.min() < 0 or seq.max() >= self.vocab_size:
                raise ValueError(
                    f"token ids must be in [0, {self.vocab_size}), found {seq.min()}..{seq.max()}"
                )
            # BOS padding: the first prediction (of seq[1]) reads n - 1 extra BOS before seq[0]
            padded = np.concatenate([np.full(max(n - 1, 0), BOS), seq]) if n else seq[1:]
            windows.append(np.lib.stride_tricks.sliding_window_view(padded, n + 1))
            owners.append(np.full(len(seq) - 1, i))
        if not windows:
            return np.zeros((0, n + 1), dtype=np.int64), np.zeros(0, dtype=np.int64)
        return np.concatenate(windows), np.concatenate(owners)

    def fit(self, sequences: Iterable[Sequence[int]]) -> CountNGram:
        """Count every (context, next token) of the framed sequences; calling again adds to the counts."""
        windows, _ = self._windows(sequences)
        if len(windows) == 0:
            return self
        grams, how_often = np.unique(windows, axis=0, return_counts=True)
        for gram, c in zip(grams.tolist(), how_often.tolist(), strict=True):
            context = tuple(gram[:-1])
            row = self.rows.get(context)
            if row is None:
                row = self.rows[context] = len(self.rows)
                if row == len(self.counts):  # grow geometrically: appending row by row would be quadratic
                    grown = np.zeros((max(16, 2 * len(self.counts)), self.vocab_size), dtype=np.int64)
                    grown[: len(self.counts)] = self.counts
                    self.counts = grown
            self.counts[row, gram[-1]] += c
        self.counts = self.counts[: len(self.rows)]
        self._lookup = self._logp = None
        return self

    # ----------------------------------------------------------------- probabilities
    def _tables(self) -> tuple[dict[tuple[int, ...], int], np.ndarray]:
        """Every seen context *and every suffix of one* -> row of a (R + 1, V) log-probability table.

        The counts of a shorter context are sums of the full ones: each predicted token has exactly one
        full (BOS-padded) context, whose last j tokens are its length-j context. The last row is the
        uniform distribution over the targets, for a model that has seen nothing.
        """
        if self._lookup is None or self._logp is None:
            lookup: dict[tuple[int, ...], int] = {}
            full = list(self.rows)
            suffix_rows = [  # full contexts first, then ever shorter suffixes, down to ()
                np.array([lookup.setdefault(c[len(c) - j :], len(lookup)) for c in full], dtype=np.int64)
                for j in range(self.order - 1, -1, -1)
            ]
            counts = np.zeros((len(lookup) + 1, self.vocab_size))
            for rows in suffix_rows:
                np.add.at(counts, rows, self.counts)
            smoothed = counts + self.k * self.targets
            smoothed[-1] = self.targets  # the uniform fallback row
            with np.errstate(divide="ignore"):  # log 0 = -inf is the honest answer for unseen tokens
                self._logp = np.log(smoothed) - np.log(smoothed.sum(axis=1, keepdims=True))
            self._lookup = lookup
        return self._lookup, self._logp

    def _row(self, lookup: dict[tuple[int, ...], int], context: tuple[int, ...], fallback: int) -> int:
        for j in range(len(context) + 1):  # longest seen suffix first
            row = lookup.get(context[j:])
            if row is not None:
                return row
        return fallback

    def next_token_logprobs(self, contexts: Sequence[Sequence[int]]) -> np.ndarray:
        lookup, logp = self._tables()
        rows = [self._row(lookup, self.context_of(c), len(logp) - 1) for c in contexts]
        return logp[rows]

    def sequence_logprobs(self, sequences: Sequence[Sequence[int]]) -> np.ndarray:
        lookup, logp = self._tables()
        windows, owners = self._windows(sequences)
        rows = [self._row(lookup, tuple(w[:-1]), len(logp) - 1) for w in windows.tolist()]
        totals = np.zeros(len(sequences))
        np.add.at(totals, owners, logp[rows, windows[:, -1]])
        return totals

    def num_parameters(self) -> int:
        """The number of distinct (context, next token) pairs counted: the numbers the model must store."""
        return int(np.count_nonzero(self.counts))

    # ----------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, torch.Tensor]:
        """The counts as tensors, so a checkpoint holds them and loads with ``weights_only=True``.

        ``contexts`` is (N, order - 1) int64, ``counts`` is (N, V) int64: row i counts what followed
        ``contexts[i]``.
        """
        contexts = torch.tensor(list(self.rows), dtype=torch.long).reshape(len(self.rows), self.order - 1)
        return {"contexts": contexts, "counts": torch.from_numpy(self.counts.copy())}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        contexts, counts = state["contexts"], state["counts"]
        if contexts.ndim != 2 or contexts.shape[1] != self.order - 1:
            raise ValueError(
                f"contexts must be (N, {self.order - 1}) for order {self.order}, not {tuple(contexts.shape)}"
            )
        if counts.shape != (contexts.shape[0], self.vocab_size):
            raise ValueError(
                f"counts must be ({contexts.shape[0]}, {self.vocab_size}), not {tuple(counts.shape)}"
            )
        seen = counts.sum(dim=1) > 0  # a context with no counts says nothing; keep the table minimal
        contexts, counts = contexts[seen], counts[seen]
        self.rows = {tuple(c): i for i, c in enumerate(contexts.tolist())}
        if len(self.rows) != len(contexts):
            raise ValueError("contexts must be distinct")
        self.counts = counts.numpy().astype(np.int64, copy=True)
        self._lookup = self._logp = None
