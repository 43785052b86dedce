"""The neural bigram: a (V, V) table of logits, learned by gradient descent instead of counted.

Row ``a`` of the table holds the logits of the token that follows ``a``; softmax turns them into a
distribution. Minimising the cross-entropy of the training data over a free table has one answer: the
counted bigram's maximum-likelihood probabilities (``CountNGram`` with ``order=2``, ``k=0``). So this model
is the bridge from counting to learning (Karpathy's makemore, part 1): same model, found by descent.
The table is a bigram in the sense of Shannon (1948); as a "neural" model it is the one-layer,
no-hidden-unit case of Bengio et al. (2003), "A Neural Probabilistic Language Model".

Weight decay pulls logits towards 0, i.e. towards the uniform distribution: it plays the part that
add-k smoothing plays for counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from simplellm.lm.models.base import TorchLanguageModel


@dataclass
class BigramConfig:
    vocab_size: int


class NeuralBigram(TorchLanguageModel):
    """logits of the next token = row ``x_t`` of a learned (V, V) table."""

    family: ClassVar[str] = "bigram"
    Config: ClassVar[type] = BigramConfig

    def __init__(self, config: BigramConfig) -> None:
        super().__init__(config)
        # zeros: the model starts uniform, its loss exactly log V
        self.logits = nn.Parameter(torch.zeros(config.vocab_size, config.vocab_size))

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.logits[idx]
