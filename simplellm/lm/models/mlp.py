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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

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

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        B, T = idx.shape
        emb = self.embedding(self.contexts(idx) + self.offsets)  # (B, T, k, E)
        h = torch.tanh(self.hidden(emb.reshape(B, T, -1)))
        return self.head(self.drop(h))
