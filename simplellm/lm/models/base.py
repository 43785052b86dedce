"""What every language model answers, whatever it is built from (counts, NumPy or PyTorch).

A language model here is anything that, given the tokens so far, gives a probability for every
possible next token. Everything else follows from that one question:

* ``next_token_logprobs(contexts)`` -- the distribution itself, as log-probabilities;
* ``sequence_logprobs(sequences)`` / ``cross_entropy(sequences)`` -- how well it predicts data;
* ``start`` / ``advance`` / ``select`` -- the same question asked one token at a time, which is
  what generation does. The default answers by re-reading the whole context at every step;
  a recurrent model instead carries its hidden state, a transformer its key/value cache.
* ``generate`` -- sampling, written once in ``simplellm.lm.sampling`` for every model.

Sequences are lists of token ids framed as ``BOS x1 ... xn EOS`` (see ``simplellm.lm.tokenizers``).
The model predicts every token after BOS, EOS included, so the log-probability of a sample is
``sum_t log q(x_t | x_<t)`` over ``t = 1 .. n+1`` and the cross-entropy is per predicted token.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from simplellm.lm.sampling import sample
from simplellm.lm.tokenizers import PAD

State = Any  # whatever a model carries between generation steps


class LanguageModel:
    """The interface. Subclasses implement ``next_token_logprobs``; the rest has defaults."""

    family: ClassVar[str] = "base"  # the name used by the command line and in checkpoints
    vocab_size: int
    #: the longest context the model can read, in tokens (None: unbounded). Longer contexts are
    #: cropped to their last ``context_window`` tokens, in generation and in evaluation alike.
    context_window: int | None = None

    # ----------------------------------------------------------------- the one question
    def next_token_logprobs(self, contexts: Sequence[Sequence[int]]) -> np.ndarray:
        """(B, V) float64 log-probabilities of the next token after each context."""
        raise NotImplementedError

    # ----------------------------------------------------------------- scoring data
    def sequence_logprobs(self, sequences: Sequence[Sequence[int]]) -> np.ndarray:
        """(B,) log q(x) of each framed sequence: log-probabilities of every token after the first."""
        prefixes = [(i, seq[:t]) for i, seq in enumerate(sequences) for t in range(1, len(seq))]
        totals = np.zeros(len(sequences))
        for start in range(0, len(prefixes), 1024):
            chunk = prefixes[start : start + 1024]
            logp = self.next_token_logprobs([ctx for _, ctx in chunk])
            for row, (i, ctx) in enumerate(chunk):
                totals[i] += logp[row, sequences[i][len(ctx)]]
        return totals

    def cross_entropy(self, sequences: Sequence[Sequence[int]]) -> float:
        """Mean negative log-likelihood in nats per predicted token (EOS counted)."""
        n_tokens = sum(len(s) - 1 for s in sequences)
        if n_tokens == 0:
            raise ValueError("cross_entropy needs at least one sequence with a token after BOS")
        return float(-self.sequence_logprobs(sequences).sum() / n_tokens)

    # ----------------------------------------------------------------- one token at a time
    def start(self, contexts: Sequence[Sequence[int]]) -> tuple[State, np.ndarray]:
        """Read the prompts; return the generation state and the (B, V) next-token log-probs."""
        state = [list(c) for c in contexts]
        return state, self.next_token_logprobs(state)

    def advance(self, state: State, tokens: np.ndarray) -> tuple[State, np.ndarray]:
        """Append one token to each row; return the new state and the next (B, V) log-probs."""
        state = [ctx + [int(t)] for ctx, t in zip(state, tokens, strict=True)]
        return state, self.next_token_logprobs(state)

    def select(self, state: State, rows: np.ndarray) -> State:
        """Keep (or repeat, or reorder) the rows of a state: for dropping finished samples and for beams."""
        return [state[int(i)] for i in rows]

    # ----------------------------------------------------------------- generation
    def generate(self, num: int, **options: Any) -> list[list[int]]:
        """``num`` samples; options as in :func:`simplellm.lm.sampling.sample`."""
        return sample(self, num, **options)

    def num_parameters(self) -> int:
        return 0

    def crop(self, context: Sequence[int]) -> list[int]:
        """The part of a context the model can read."""
        if self.context_window is not None and len(context) > self.context_window:
            return list(context[-self.context_window :])
        return list(context)


def pad_batch(sequences: Sequence[Sequence[int]], device: torch.device | str = "cpu") -> torch.Tensor:
    """(B, T) LongTensor of the sequences, right-padded with PAD."""
    if not sequences:
        raise ValueError("pad_batch needs at least one sequence")
    width = max(len(s) for s in sequences)
    if all(isinstance(s, list) for s in sequences):  # the usual case: one tensor from padded lists
        out = torch.tensor([s + [PAD] * (width - len(s)) for s in sequences], dtype=torch.long)
    else:  # tuples, arrays, tensors: row by row
        out = torch.full((len(sequences), width), PAD, dtype=torch.long)
        for i, seq in enumerate(sequences):
            out[i, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
    return out.to(device)


class TorchLanguageModel(nn.Module, LanguageModel):
    """A language model written with PyTorch: implement ``forward(idx) -> logits``.

    ``forward`` takes a (B, T) batch of token ids and returns (B, T, V) logits, where position t
    predicts token t+1 from tokens 0..t. From that one method this class derives the training loss,
    next-token distributions, sequence scores and (by re-reading) generation.
    """

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config
        self.vocab_size = config.vocab_size

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def loss(self, batch: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of a padded (B, T) batch of framed sequences; PAD targets are ignored."""
        inputs, targets = batch[:, :-1], batch[:, 1:]
        if self.context_window is not None and inputs.shape[1] > self.context_window:
            raise ValueError(
                f"a training batch of {inputs.shape[1]} input tokens exceeds the context window "
                f"({self.context_window}); crop samples to at most {self.context_window + 1} tokens"
            )
        logits = self(inputs)
        return F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=PAD)

    @contextmanager
    def evaluating(self) -> Iterator[None]:
        """Eval mode (no dropout) and no autograd graph, restoring the training flag afterwards."""
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                yield
        finally:
            self.train(was_training)

    def next_token_logprobs(self, contexts: Sequence[Sequence[int]]) -> np.ndarray:
        with self.evaluating():
            return self._next_token_logprobs(contexts)

    def _next_token_logprobs(self, contexts: Sequence[Sequence[int]]) -> np.ndarray:
        cropped = [self.crop(c) for c in contexts]
        if any(len(c) == 0 for c in cropped):
            raise ValueError("every context needs at least one token (start with BOS)")
        lengths = torch.tensor([len(c) for c in cropped], device=self.device)
        logits = self(pad_batch(cropped, self.device))
        last = logits[torch.arange(len(cropped), device=self.device), lengths - 1]
        return F.log_softmax(last.double(), dim=-1).cpu().numpy()

    def sequence_logprobs(self, sequences: Sequence[Sequence[int]], batch_size: int = 256) -> np.ndarray:
        with self.evaluating():
            return self._sequence_logprobs(sequences, batch_size)

    def _sequence_logprobs(self, sequences: Sequence[Sequence[int]], batch_size: int) -> np.ndarray:
        totals = np.zeros(len(sequences))
        window = self.context_window
        short = [i for i, s in enumerate(sequences) if window is None or len(s) - 1 <= window]
        for start in range(0, len(short), batch_size):
            rows = short[start : start + batch_size]
            batch = pad_batch([sequences[i] for i in rows], self.device)
            logp = F.log_softmax(self(batch[:, :-1]).double(), dim=-1)
            targets = batch[:, 1:]
            picked = logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
            totals[rows] = torch.where(targets != PAD, picked, 0.0).sum(dim=1).cpu().numpy()
        short_set = set(short)
        long = [i for i in range(len(sequences)) if i not in short_set]
        if long:  # longer than the window: every token past it is scored from its cropped context
            totals[long] = LanguageModel.sequence_logprobs(self, [sequences[i] for i in long])
        return totals

    def generate(self, num: int, **options: Any) -> list[list[int]]:
        with self.evaluating():
            return super().generate(num, **options)
