"""The Bengio MLP: vectorised windows equal a loop written straight from the paper's description."""

import numpy as np
import pytest
import torch

from simplellm.lm.models import build_model
from simplellm.lm.tokenizers import BOS, EOS


def reference_logits(model, seq):
    """Position by position: concatenate the embeddings of the previous k tokens (BOS before the start),
    tanh hidden layer, logits."""
    k, V = model.config.context, model.config.vocab_size
    table = model.embedding.weight
    rows = []
    for t in range(len(seq)):
        window = [seq[i] if i >= 0 else BOS for i in range(t - k + 1, t + 1)]
        if model.config.position_specific_embeddings:
            vectors = [table[slot * V + tok] for slot, tok in enumerate(window)]
        else:
            vectors = [table[tok] for tok in window]
        h = torch.tanh(model.hidden(torch.cat(vectors)))
        rows.append(model.head(h))
    return torch.stack(rows)


@pytest.mark.parametrize("position_specific", [False, True])
def test_forward_equals_the_position_by_position_definition(position_specific):
    torch.manual_seed(0)
    model = build_model("mlp", vocab_size=10, context=3, position_specific_embeddings=position_specific)
    model.double()
    assert model.embedding.weight.shape[0] == (30 if position_specific else 10)
    seqs = [[BOS, 4, 5, 6, 7, 8, EOS], [BOS, 9, EOS, 0, 0, 0, 0]]
    logits = model(torch.tensor(seqs))
    for row, seq in enumerate(seqs):
        torch.testing.assert_close(logits[row], reference_logits(model, seq), rtol=0, atol=1e-12)


def test_a_prediction_reads_exactly_the_last_k_tokens():
    torch.manual_seed(0)
    model = build_model("mlp", vocab_size=10, context=3)
    seq = torch.tensor([[BOS, 4, 5, 6, 7, 8, 9, 4]])
    base = model(seq)
    for changed in range(1, 8):
        other = seq.clone()
        other[0, changed] = 9 if seq[0, changed] != 9 else 4
        moved = (model(other) - base).abs().amax(dim=-1)[0]
        # position t reads tokens t-2 .. t: only positions changed .. changed+2 may move
        reads_it = np.zeros(8, dtype=bool)
        reads_it[changed : changed + 3] = True
        assert (moved[torch.from_numpy(~reads_it)] == 0).all()
        assert (moved[torch.from_numpy(reads_it)] > 1e-4).all()


def test_context_windows_are_bos_padded():
    model = build_model("mlp", vocab_size=10, context=3)
    windows = model.contexts(torch.tensor([[BOS, 4, 5, 6]]))[0].tolist()
    assert windows == [[BOS, BOS, BOS], [BOS, BOS, 4], [BOS, 4, 5], [4, 5, 6]]


def test_bad_context_raises():
    with pytest.raises(ValueError, match="context"):
        build_model("mlp", vocab_size=10, context=0)
