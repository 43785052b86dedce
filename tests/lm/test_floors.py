"""Loss floors: the empirical conditional entropy, on corpora small enough to count by hand."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from simplellm.lm.floors import conditional_entropy, context_length, contexts_and_targets, floor_report
from simplellm.lm.models.ngram import CountNGram, NGramConfig
from simplellm.lm.tokenizers import BOS, EOS

A, B_, C = 4, 5, 6


def test_contexts_are_bos_padded_on_the_left_and_every_token_after_bos_is_predicted():
    pairs = list(contexts_and_targets([[BOS, A, B_, EOS]], k=3))
    assert pairs == [((BOS, BOS, BOS), A), ((BOS, BOS, A), B_), ((BOS, A, B_), EOS)]
    assert list(contexts_and_targets([[BOS, A, EOS]], k=None)) == [((BOS,), A), ((BOS, A), EOS)]
    assert list(contexts_and_targets([[BOS, A, EOS]], k=0)) == [((), A), ((), EOS)]
    with pytest.raises(ValueError, match="k must be"):
        list(contexts_and_targets([[BOS, A, EOS]], k=-1))


def test_two_sentences_that_differ_in_their_first_word():
    seqs = [[BOS, A, EOS], [BOS, B_, EOS]]
    # k >= 1: after BOS, A or B half the time each (log 2 nats, 2 of the 4 predictions); the rest is certain
    for k in (1, 2, 5, None):
        assert conditional_entropy(seqs, k) == pytest.approx(math.log(2) / 2, rel=1e-15)
    # k = 0, the unigram: A 1/4, B 1/4, EOS 1/2 -> (log 4 + log 4 + 2 log 2) / 4
    assert conditional_entropy(seqs, 0) == pytest.approx(1.5 * math.log(2), rel=1e-15)


def test_a_longer_context_can_only_lower_the_floor_and_a_memorised_corpus_reaches_zero():
    # "a b c" and "c b a": after "b" the next word depends on the word before "b"
    seqs = [[BOS, A, B_, C, EOS], [BOS, C, B_, A, EOS]]
    n = 8  # predicted tokens
    # k = 1: every prediction is a coin flip (after BOS: a or c; after a: b or EOS; after b: c or a; ...)
    assert conditional_entropy(seqs, 1) == pytest.approx(math.log(2))
    # k = 2: only the first word is left uncertain
    assert conditional_entropy(seqs, 2) == pytest.approx(2 * math.log(2) / n)
    # repeating the corpus changes nothing: the floor is a property of the distribution of pairs
    assert conditional_entropy(seqs * 3, 2) == pytest.approx(conditional_entropy(seqs, 2), rel=1e-15)
    # a model that averages the two words it sees confuses "b c" with "c b" and "a b" with "b a": it is
    # unsure of the first word and of the words after (a,b) and (b,c), 6 of the 8 predictions
    assert conditional_entropy(seqs, 2, ordered=False) == pytest.approx(6 * math.log(2) / n)
    # one sentence, memorised: every prediction certain
    assert conditional_entropy([[BOS, A, A, B_, EOS]], None) == 0.0


def test_an_empty_corpus_is_refused():
    with pytest.raises(ValueError, match="at least one sequence"):
        conditional_entropy([[BOS]], 2)


sequences = st.lists(
    st.lists(st.integers(4, 7), min_size=0, max_size=6).map(lambda s: [BOS, *s, EOS]), min_size=1, max_size=8
)


@given(sequences, st.integers(0, 4))
def test_the_floor_is_the_loss_of_the_count_model_of_that_context_on_its_own_training_set(seqs, k):
    # an independent implementation: the project's maximum-likelihood n-gram (order k + 1) scoring the data
    # it counted; by definition it predicts the empirical distribution of each context
    count_model = CountNGram(NGramConfig(vocab_size=8, order=k + 1, k=0.0)).fit(seqs)
    assert conditional_entropy(seqs, k) == pytest.approx(count_model.cross_entropy(seqs), abs=1e-12)
    assert conditional_entropy(seqs, k + 1) <= conditional_entropy(seqs, k) + 1e-12
    assert conditional_entropy(seqs, None) <= conditional_entropy(seqs, k) + 1e-12
    # forgetting the order can only raise the floor; with one token of context there is no order
    assert conditional_entropy(seqs, k, ordered=False) >= conditional_entropy(seqs, k) - 1e-12
    if k <= 1:
        assert conditional_entropy(seqs, k, ordered=False) == conditional_entropy(seqs, k)


@given(sequences, st.integers(0, 3), st.integers(0, 1000))
def test_no_distribution_scores_below_the_floor(seqs, k, seed):
    # any model with k tokens of context is a table context -> distribution; a random table never beats it
    pairs = list(contexts_and_targets(seqs, k))
    rng = np.random.default_rng(seed)
    table = {c: rng.dirichlet(np.ones(8)) for c, _ in pairs}
    loss = -np.mean([math.log(table[c][x]) for c, x in pairs])
    assert loss >= conditional_entropy(seqs, k) - 1e-12


def test_the_report_puts_the_model_beside_the_floor():
    line = floor_report([[BOS, A, EOS], [BOS, B_, EOS]], 3, model_loss=0.5)
    assert line.startswith("0.5000 nats/token on the training set")
    assert f"floor {math.log(2) / 2:.4f}" in line and "3 previous tokens" in line
    assert "gap +0.1534" in line
    assert "the whole prefix" in floor_report([[BOS, A, EOS]], None, 0.0)


def test_the_context_a_model_sees_is_read_from_its_configuration():
    from simplellm.lm.models import build_model

    assert context_length(build_model("numpy-ngram", vocab_size=9, context=4)) == 4
    assert context_length(build_model("mlp", vocab_size=9, context=5)) == 5
    assert context_length(build_model("ngram", vocab_size=9, order=3)) == 2
    assert context_length(build_model("transformer", vocab_size=9, block_size=16)) == 16
    assert context_length(build_model("numpy-transformer", vocab_size=9, block_size=12)) == 12
    assert context_length(build_model("gru", vocab_size=9)) is None
