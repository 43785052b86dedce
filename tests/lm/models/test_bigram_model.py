"""The neural bigram is the count bigram found by gradient descent."""

import math

import numpy as np
import pytest
import torch

from simplellm.lm.models import build_model, pad_batch
from simplellm.lm.tokenizers import BOS


def test_starts_uniform():
    model = build_model("bigram", vocab_size=10)
    assert model.num_parameters() == 100
    assert model.loss(pad_batch([[BOS, 4, 5, 3], [BOS, 6, 3]])).item() == pytest.approx(
        math.log(10), rel=1e-6
    )


def test_gradient_descent_converges_to_the_count_bigram(language):
    train, _ = language
    counts = build_model("ngram", vocab_size=10, order=2, k=0.0).fit(train)
    contexts = [[c] for (c,) in counts.rows]  # every token that was ever followed by something
    target = np.exp(counts.next_token_logprobs(contexts))
    floor = counts.cross_entropy(train)  # the maximum-likelihood bigram: no bigram can do better

    torch.manual_seed(0)
    model = build_model("bigram", vocab_size=10)
    start_gap = np.abs(np.exp(model.next_token_logprobs(contexts)) - target).max()
    # Full batch, no weight decay: the minimiser of this loss over a free table is the MLE. Adam's
    # step size does not shrink with the gradient, so the logits of never-seen pairs keep falling.
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.3, weight_decay=0.0)
    batch = pad_batch(train)
    for _ in range(600):
        loss = model.loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    learned = np.exp(model.next_token_logprobs(contexts))
    assert start_gap > 0.2  # uniform is far from the counts: converging is not a given
    assert np.abs(learned - target).max() < 1e-4
    gap = model.cross_entropy(train) - floor
    assert 0 <= gap < 2e-4  # within 0.0002 nats of the optimum, never below it
