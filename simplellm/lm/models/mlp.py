"""The MLP language model of Bengio, Ducharme, Vincent & Jauvin (2003),
"A Neural Probabilistic Language Model".

The previous ``context`` tokens are looked up in an embedding table, their vectors concatenated and fed
through one tanh hidden layer to the logits of the next token. Two ideas over the n-gram: similar tokens
get similar vectors, so what is learned about one context transfers to similar ones; and the parameter
count grows linearly with the context instead of exponentially.

* ``position_specific_embeddings=False`` (Bengio's choice): one table shared by every slot of the context.
  ``True``: one table per slot, so a token may mean something different one step back and five steps
  back (the concatenation layer could learn that too, but only through the hidden layer).
* tanh, as in the paper; its output is bounded, which keeps the untuned default stable.
* Like the n-gram, a prediction near the start of a sample reads BOS padding on the left, so the model
  has no window limit: any length is fine, and each position only ever sees its last ``context`` tokens.
  Generation therefore carries just those k tokens from step to step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from simplellm.lm.models.base import TorchLanguageModel
from simplellm.lm.tokenizers import BOS


@dataclass
class MLPConfig:
    vocab_size: int
    context: int = 8  # k: how many previous tokens a prediction reads
    embedding_dim: int = 16
    hidden: int = 256
    position_specific_embeddings: bool = False
    dropout: float = 0.0  # on the hidden layer


class MLPLanguageModel(TorchLanguageModel):
    """Embed the last ``context`` tokens, concatenate, tanh hidden layer, logits."""

    family: ClassVar[str] = "mlp"
    Config: ClassVar[type] = MLPConfig

    def __init__(self, config: MLPConfig) -> None:
        super().__init__(config)
        if config.context < 1:
            raise ValueError(f"context must be >= 1, not {config.context}")
        tables = config.context if config.position_specific_embeddings else 1
        # position-specific tables are stacked in one (context * V, E) table: slot p uses rows p*V .. p*V+V-1
        self.embedding = nn.Embedding(tables * config.vocab_size, config.embedding_dim)
        self.hidden = nn.Linear(config.context * config.embedding_dim, config.hidden)
        self.drop = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.hidden, config.vocab_size)
        # small output weights: the model starts close to uniform (loss ~ log V) instead of confidently wrong
        nn.init.normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)
        offsets = torch.arange(config.context) * config.vocab_size if tables > 1 else torch.zeros(1)
        self.register_buffer("offsets", offsets.long(), persistent=False)

    def contexts(self, idx: torch.Tensor) -> torch.Tensor:
        """(B, T, k): at position t, the tokens t-k+1 .. t, with BOS where the sample has not begun."""
        k = self.config.context
        padded = F.pad(idx, (k, 0), value=BOS)  # (B, k + T)
        return padded.unfold(1, k, 1)[:, 1:]  # window t+1 of the padded row ends at token t

    def window_logits(self, windows: torch.Tensor) -> torch.Tensor:
        """(..., V) logits of the token after each window of k tokens, (..., k)."""
        emb = self.embedding(windows + self.offsets)  # (..., k, E)
        h = torch.tanh(self.hidden(emb.flatten(-2)))  # the k vectors concatenated
        return self.head(self.drop(h))

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.window_logits(self.contexts(idx))

    # ----------------------------------------------------------------- generation: slide the window
    def _logprobs(self, windows: torch.Tensor) -> np.ndarray:
        return F.log_softmax(self.window_logits(windows).double(), dim=-1).cpu().numpy()

    def start(self, contexts: Sequence[Sequence[int]]) -> tuple[torch.Tensor, np.ndarray]:
        """The state is each row's last k tokens, (B, k): all a prediction ever reads."""
        k = self.config.context
        windows = [([BOS] * k + [int(t) for t in c])[-k:] for c in contexts]
        with self.evaluating():
            state = torch.tensor(windows, dtype=torch.long, device=self.device).reshape(len(contexts), k)
            return state, self._logprobs(state)

    def advance(self, state: torch.Tensor, tokens: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
        new = torch.as_tensor(np.asarray(tokens), dtype=torch.long, device=state.device)
        with self.evaluating():
            state = torch.cat([state[:, 1:], new[:, None]], dim=1)
            return state, self._logprobs(state)

    def select(self, state: torch.Tensor, rows: np.ndarray) -> torch.Tensor:
        return state.index_select(0, torch.as_tensor(np.asarray(rows), dtype=torch.long, device=state.device))
