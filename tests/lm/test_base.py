"""The torch base derives scoring and generation from forward() alone: check it against the generic path."""

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from simplellm.lm.models.base import LanguageModel, TorchLanguageModel, pad_batch
from simplellm.lm.tokenizers import BOS, EOS, PAD


@dataclass
class TinyConfig:
    vocab_size: int = 7
    window: int = 6


class BigramWithPositions(TorchLanguageModel):
    """logits[t] = W[x_t] + P[t]: depends on the absolute position, like a transformer's embeddings."""

    family = "tiny"

    def __init__(self, config: TinyConfig):
        super().__init__(config)
        self.context_window = config.window
        g = torch.Generator().manual_seed(0)
        self.W = torch.nn.Parameter(torch.randn(config.vocab_size, config.vocab_size, generator=g))
        self.P = torch.nn.Parameter(torch.randn(config.window, config.vocab_size, generator=g))
        self.dropout = torch.nn.Dropout(0.5)

    def forward(self, idx):
        return self.dropout(self.W[idx] + self.P[: idx.shape[1]])


def random_sequences(n, rng, max_len):
    return [[BOS, *rng.integers(4, 7, size=rng.integers(0, max_len)).tolist(), EOS] for _ in range(n)]


def test_batched_scores_equal_the_token_by_token_definition():
    model = BigramWithPositions(TinyConfig())
    model.train()  # scoring must switch dropout off by itself
    seqs = random_sequences(20, np.random.default_rng(0), 6)
    batched = model.sequence_logprobs(seqs)
    one_by_one = LanguageModel.sequence_logprobs(model, seqs)
    assert batched == pytest.approx(one_by_one, rel=1e-12)
    assert model.training  # and restore the flag


def test_sequences_longer_than_the_window_are_scored_from_cropped_contexts():
    model = BigramWithPositions(TinyConfig(window=4))
    seq = [BOS, 4, 5, 6, 4, 5, 6, EOS]
    (score,) = model.sequence_logprobs([seq])
    expected = sum(model.next_token_logprobs([seq[max(0, t - 4) : t]])[0, seq[t]] for t in range(1, len(seq)))
    assert score == pytest.approx(expected, rel=1e-12)
    assert model.cross_entropy([seq]) == pytest.approx(-expected / 7)


def test_loss_ignores_padding_and_refuses_batches_beyond_the_window():
    model = BigramWithPositions(TinyConfig())
    model.eval()
    seqs = [[BOS, 4, EOS], [BOS, 4, 5, 6, EOS]]
    batch = pad_batch(seqs)
    assert batch[0].tolist() == [BOS, 4, EOS, PAD, PAD]
    expected = -model.sequence_logprobs(seqs).sum() / 6
    assert model.loss(batch).item() == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="context window"):
        model.loss(pad_batch([[BOS] + [4] * 10 + [EOS]]))


def test_generation_from_the_torch_base_crops_long_prompts():
    model = BigramWithPositions(TinyConfig(window=4))
    out = model.generate(3, prompt=[BOS] + [4] * 20, max_new_tokens=8, seed=0)
    assert len(out) == 3 and all(1 <= len(s) <= 8 for s in out)


def test_pad_batch_gives_one_tensor_for_lists_tuples_arrays_and_tensors():
    rows = [[BOS, 4, 5, EOS], [BOS, EOS], [BOS, 6, EOS]]
    expected = [[BOS, 4, 5, EOS], [BOS, EOS, PAD, PAD], [BOS, 6, EOS, PAD]]
    for kind in (list, tuple, np.array, torch.tensor):
        batch = pad_batch([kind(r) for r in rows])
        assert batch.dtype == torch.long and batch.tolist() == expected
    assert pad_batch([np.array(rows[0]), rows[1]]).tolist() == expected[:2]  # mixed: row by row
    with pytest.raises(ValueError, match="at least one"):
        pad_batch([])
