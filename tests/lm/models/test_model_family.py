"""Every model family answers the same questions: built with defaults from the registry, each one scores,
generates, checkpoints and learns."""

import dataclasses
import io
import math
import re
import sys

import numpy as np
import pytest
import torch

from simplellm.lm.models import FAMILIES, LanguageModel, TorchLanguageModel, build_model, pad_batch
from simplellm.lm.sampling import beam_search, sample
from simplellm.lm.tokenizers import BOS, EOS, PAD

V = 66  # the size of a character vocabulary of the synthetic languages
TORCH_FAMILIES = [name for name, cls in FAMILIES.items() if issubclass(cls, TorchLanguageModel)]


def random_samples(num, seed, low=4, high=V, max_len=20):
    rng = np.random.default_rng(seed)
    return [[BOS, *rng.integers(low, high, size=rng.integers(1, max_len)).tolist(), EOS] for _ in range(num)]


def fresh(family, **options):
    torch.manual_seed(0)
    model = build_model(family, vocab_size=V, **options)
    if family == "ngram":
        model.fit(random_samples(200, seed=1))
    return model


def test_the_registry_holds_every_family_with_a_config_that_starts_with_the_vocabulary():
    assert set(FAMILIES) == {
        "ngram",
        "bigram",
        "mlp",
        "rnn",
        "gru",
        "transformer",
        "numpy-ngram",
        "numpy-transformer",
    }
    for name, cls in FAMILIES.items():
        assert cls.family == name
        assert dataclasses.fields(cls.Config)[0].name == "vocab_size"
        paper = sys.modules[cls.__module__].__doc__
        # the module docstring names its paper: a year and a quoted title
        assert re.search(r"(19|20)\d\d", paper) and re.search(r'"[A-Z][^"]{10,}"', paper), name
    with pytest.raises(ValueError, match="no option"):
        build_model("gru", vocab_size=V, heads=3)
    with pytest.raises(ValueError, match="unknown model"):
        build_model("lstm", vocab_size=V)


@pytest.mark.parametrize("family", TORCH_FAMILIES)
def test_forward_on_a_padded_batch_and_the_loss_at_initialisation(family):
    model = fresh(family)
    batch = pad_batch(random_samples(16, seed=0))
    assert (batch == PAD).any()
    logits = model(batch[:, :-1])
    assert logits.shape == (16, batch.shape[1] - 1, V)
    loss = model.loss(batch)
    # a fresh model should be unsure, not confidently wrong: close to the uniform log V = 4.19
    assert torch.isfinite(loss) and abs(loss.item() - math.log(V)) < 0.05
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("family", list(FAMILIES))
def test_sequence_scores_equal_the_token_by_token_definition(family):
    model = fresh(family)
    if isinstance(model, torch.nn.Module):
        model.double()  # exact arithmetic on both paths, so any disagreement is a real one
    seqs = random_samples(12, seed=2)
    np.testing.assert_allclose(
        model.sequence_logprobs(seqs), LanguageModel.sequence_logprobs(model, seqs), rtol=1e-10
    )
    logp = model.next_token_logprobs([[BOS], [BOS, 5, 6]])
    assert logp.shape == (2, V) and logp.dtype == np.float64
    np.testing.assert_allclose(np.exp(logp).sum(axis=1), 1.0, rtol=1e-10)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_generate_returns_token_lists_reproducibly_even_from_prompts_past_any_window(family):
    model = fresh(family, **({"block_size": 8} if family == "transformer" else {}))
    out = model.generate(5, seed=3, max_new_tokens=12)
    assert len(out) == 5 and all(isinstance(t, int) for s in out for t in s)
    assert all(1 <= len(s) <= 12 and (s[-1] == EOS or len(s) == 12) for s in out)
    assert model.generate(5, seed=3, max_new_tokens=12) == out
    long = model.generate(3, prompt=[BOS] + [7] * 30, seed=0, max_new_tokens=12)
    assert len(long) == 3


INCREMENTAL = [name for name, cls in FAMILIES.items() if cls.start is not LanguageModel.start]


def test_the_models_that_carry_a_state_are_the_ones_expected():
    assert set(INCREMENTAL) == {"mlp", "rnn", "gru", "transformer"}


@pytest.mark.parametrize("family", INCREMENTAL)
def test_generation_with_a_carried_state_equals_re_reading_the_context(family, rereading):
    model = fresh(family, **({"block_size": 8} if family == "transformer" else {})).double()
    for options in [
        {"seed": 0},
        {"seed": 1, "top_k": 10},
        {"greedy": True},
        {"prompt": [BOS, 5, 6, 7], "seed": 2},
    ]:
        out = sample(model, 10, max_new_tokens=12, batch_size=4, **options)
        assert out == sample(rereading(model), 10, max_new_tokens=12, batch_size=4, **options)
    ours = beam_search(model, beam_width=3, max_new_tokens=12)
    theirs = beam_search(rereading(model), beam_width=3, max_new_tokens=12)
    assert [b.tokens for b in ours] == [b.tokens for b in theirs]


@pytest.mark.parametrize("family", list(FAMILIES))
def test_a_weights_only_checkpoint_rebuilds_the_same_model(family):
    model = fresh(family)
    buffer = io.BytesIO()
    torch.save(
        {"family": model.family, "config": dataclasses.asdict(model.config), "state": model.state_dict()},
        buffer,
    )
    buffer.seek(0)
    checkpoint = torch.load(buffer, weights_only=True)
    rebuilt = build_model(checkpoint["family"], **checkpoint["config"])
    rebuilt.load_state_dict(checkpoint["state"])
    seqs = random_samples(5, seed=4)
    np.testing.assert_array_equal(rebuilt.sequence_logprobs(seqs), model.sequence_logprobs(seqs))


TOY = [[BOS, 4, 5, 6, 7, EOS], [BOS, 5, 4, 4, 6, EOS], [BOS, 6, 7, 5, EOS]]


@pytest.mark.slow
@pytest.mark.parametrize("family", TORCH_FAMILIES)
def test_each_torch_model_learns_three_samples_down_to_what_its_context_allows(family):
    # The best a model can do on its own training set is the maximum-likelihood count model over the
    # context it reads: the first letter stays a 1-in-3 guess for all; the bigram cannot see more than
    # one token back, where 4 -> 5, 4 or 6 is ambiguous.
    order = 2 if family == "bigram" else 8
    floor = build_model("ngram", vocab_size=V, order=order).fit(TOY).cross_entropy(TOY)
    model = fresh(family)
    # a free logit table takes big steps; a transformer without warm-up diverges at 1e-2
    lr = {"bigram": 0.3, "transformer": 3e-3}.get(family, 1e-2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    batch = pad_batch(TOY)
    for _ in range(300):
        loss = model.loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert floor > 0.2  # the floor is not zero: learning below it would mean a bug in the scoring
    assert floor - 1e-6 < model.cross_entropy(TOY) < floor + 0.02
