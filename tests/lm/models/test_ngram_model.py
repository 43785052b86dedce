"""The count n-gram: exact probabilities on corpora small enough to count by hand."""

import io
import math

import numpy as np
import pytest
import torch

from simplellm.lm.models import build_model
from simplellm.lm.models.base import LanguageModel
from simplellm.lm.models.ngram import CountNGram, NGramConfig
from simplellm.lm.tokenizers import BOS, EOS, PAD, UNK

A, B = 4, 5  # two letters; V = 6: PAD UNK BOS EOS A B
TINY = [[BOS, A, B, EOS], [BOS, A, A, EOS]]


def probs(model, context):
    return np.exp(model.next_token_logprobs([context])[0])


def test_bigram_maximum_likelihood_is_counts_over_context_counts():
    model = CountNGram(NGramConfig(vocab_size=6, order=2, k=0.0)).fit(TINY)
    # after A: A once, B once, EOS once
    assert probs(model, [BOS, A]) == pytest.approx([0, 0, 0, 1 / 3, 1 / 3, 1 / 3], abs=1e-15)
    assert probs(model, [BOS]) == pytest.approx([0, 0, 0, 0, 1, 0], abs=1e-15)
    # the logprob of a sample is the sum over its predicted tokens, EOS included
    (score,) = model.sequence_logprobs([[BOS, A, B, EOS]])
    assert score == pytest.approx(math.log(1 * (1 / 3) * 1))


def test_add_k_spreads_k_over_every_token_that_can_follow_but_never_pad_or_bos():
    model = CountNGram(NGramConfig(vocab_size=6, order=2, k=1.0)).fit(TINY)
    # targets: UNK, EOS, A, B (4 of them); after A: 3 counts + 4k
    assert probs(model, [BOS, A]) == pytest.approx([0, 1 / 7, 0, 2 / 7, 2 / 7, 2 / 7], abs=1e-15)
    assert probs(model, [BOS, A])[[PAD, BOS]].tolist() == [0.0, 0.0]


def test_the_first_token_is_predicted_from_bos_padding():
    data = [[BOS, A, EOS], [BOS, B, B, EOS], [BOS, B, EOS]]
    model = CountNGram(NGramConfig(vocab_size=6, order=4)).fit(data)
    assert model.context_of([BOS]) == (BOS, BOS, BOS)
    assert model.context_of([BOS, B]) == (BOS, BOS, B)
    assert probs(model, [BOS]) == pytest.approx([0, 0, 0, 0, 1 / 3, 2 / 3], abs=1e-15)
    # (BOS, BOS, B) was followed by B once and by EOS once
    assert probs(model, [BOS, B]) == pytest.approx([0, 0, 0, 1 / 2, 0, 1 / 2], abs=1e-15)


def test_unseen_contexts_back_off_to_their_longest_seen_suffix(language):
    train, _ = language
    trigram = CountNGram(NGramConfig(vocab_size=10, order=3)).fit(train)
    bigram = CountNGram(NGramConfig(vocab_size=10, order=2)).fit(train)
    unigram = CountNGram(NGramConfig(vocab_size=10, order=1)).fit(train)
    seen = set(trigram.rows)
    unseen = next((a, b) for a in range(4, 10) for b in range(4, 10) if (a, b) not in seen)
    assert unseen[1:] in trigram._tables()[0]  # its suffix was seen
    np.testing.assert_allclose(probs(trigram, [BOS, *unseen]), probs(bigram, [BOS, unseen[1]]), rtol=1e-12)
    # a token never seen at all backs off to the unigram (UNK never occurs in the data)
    np.testing.assert_allclose(probs(trigram, [BOS, A, UNK]), probs(unigram, [BOS]), rtol=1e-12)
    # and a model that has counted nothing is uniform over the tokens that can follow
    empty = probs(CountNGram(NGramConfig(vocab_size=10, order=3)), [BOS])
    assert empty[[PAD, BOS]].tolist() == [0, 0] and empty[[UNK, EOS, 4, 9]] == pytest.approx([1 / 8] * 4)


@pytest.mark.parametrize("order", [1, 2, 3, 5])
@pytest.mark.parametrize("k", [0.0, 0.5])
def test_distributions_normalise_and_sequence_scores_match_the_token_by_token_definition(language, order, k):
    train, other = language
    model = CountNGram(NGramConfig(vocab_size=10, order=order, k=k)).fit(train)
    contexts = [s[:t] for s in other[:20] for t in range(1, len(s))]
    np.testing.assert_allclose(np.exp(model.next_token_logprobs(contexts)).sum(axis=1), 1.0, rtol=1e-12)
    for data in (train[:50], other):
        fast = model.sequence_logprobs(data)
        slow = LanguageModel.sequence_logprobs(model, data)
        np.testing.assert_allclose(fast, slow, rtol=1e-12)
    if k == 0.0 and order > 3:
        assert np.isneginf(model.sequence_logprobs(other)).any()  # k = 0: unseen n-grams are impossible
    if k > 0:
        assert np.isfinite(model.sequence_logprobs(other)).all()


def test_the_true_order_reaches_the_language_and_a_too_short_one_does_not(language):
    train, other = language
    ce = {
        n: build_model("ngram", vocab_size=10, order=n, k=0.01).fit(train).cross_entropy(other)
        for n in (1, 2, 3)
    }
    assert ce[3] < ce[2] - 0.2 < ce[1] - 0.2  # the language is second-order: the trigram is much better


def test_with_k0_an_order_3_model_samples_only_trigrams_it_has_seen(language):
    train, _ = language
    model = CountNGram(NGramConfig(vocab_size=10, order=3, k=0.0)).fit(train)
    seen = {tuple(w) for w in model._windows(train)[0].tolist()}
    samples = model.generate(300, seed=0, max_new_tokens=40)
    for s in samples:
        assert s[-1] == EOS
        windows = {tuple(w) for w in model._windows([[BOS, *s]])[0].tolist()}
        assert windows <= seen


def test_fitting_twice_adds_counts():
    once = CountNGram(NGramConfig(vocab_size=6, order=3)).fit(TINY + TINY[:1])
    twice = CountNGram(NGramConfig(vocab_size=6, order=3)).fit(TINY).fit(TINY[:1])
    assert once.rows.keys() == twice.rows.keys()
    for ctx in once.rows:
        assert (once.counts[once.rows[ctx]] == twice.counts[twice.rows[ctx]]).all()
    assert twice.cross_entropy(TINY) == pytest.approx(once.cross_entropy(TINY), rel=1e-15)


def test_num_parameters_counts_distinct_ngrams():
    model = CountNGram(NGramConfig(vocab_size=6, order=2)).fit(TINY)
    # (BOS,A) (A,B) (B,EOS) (A,A) (A,EOS)
    assert model.num_parameters() == 5


def test_state_dict_is_tensors_and_round_trips_through_a_weights_only_checkpoint(language):
    train, other = language
    model = build_model("ngram", vocab_size=10, order=4, k=0.1)
    model.fit(train)
    state = model.state_dict()
    assert state["contexts"].dtype == torch.int64 and state["contexts"].shape[1] == 3
    assert state["counts"].shape == (state["contexts"].shape[0], 10)
    buffer = io.BytesIO()
    torch.save({"family": "ngram", "state": state}, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)
    fresh = build_model("ngram", vocab_size=10, order=4, k=0.1)
    fresh.load_state_dict(loaded["state"])
    np.testing.assert_array_equal(fresh.sequence_logprobs(other), model.sequence_logprobs(other))
    with pytest.raises(ValueError, match="contexts"):
        build_model("ngram", vocab_size=10, order=3).load_state_dict(state)


def test_bad_configs_raise():
    with pytest.raises(ValueError, match="order"):
        CountNGram(NGramConfig(vocab_size=6, order=0))
    with pytest.raises(ValueError, match="k"):
        CountNGram(NGramConfig(vocab_size=6, k=-1))
    with pytest.raises(ValueError, match="token ids"):
        CountNGram(NGramConfig(vocab_size=6)).fit([[BOS, 7, EOS]])
