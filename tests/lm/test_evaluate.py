"""The milestone's measurements, on models whose answers are known exactly.

The exact model of a finite language is a count n-gram whose context covers a whole string, fitted on
every string of the support once (arithmetic's strings are equally likely): it *is* the language.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest

from simplellm.data import grammar, wilson_interval
from simplellm.lm import evaluate as ev
from simplellm.lm.models import LanguageModel, build_model
from simplellm.lm.tokenizers import BOS, EOS, CharTokenizer


def exact_model(g):
    """A count model of order max_length + 2 fitted on the whole (uniform) support: q = p exactly."""
    tok = CharTokenizer(g.alphabet)
    support = [x for x, _ in g.enumerate_support()]
    model = build_model("ngram", vocab_size=tok.vocab_size, order=g.max_length() + 2, k=0.0)
    model.fit([tok.encode(x) for x in support])
    return model, tok


@pytest.fixture(scope="module")
def arithmetic1():
    g = grammar("arithmetic", n=1)
    model, tok = exact_model(g)
    return g, model, tok


# ------------------------------------------------------------------ samples -> text
def test_a_sample_is_finished_only_with_eos_and_no_special_token_inside():
    tok = CharTokenizer("ab")
    a, b = tok.stoi["a"], tok.stoi["b"]
    assert ev.finished_text([a, b, EOS], tok) == "ab"
    assert ev.finished_text([EOS], tok) == ""
    assert ev.finished_text([a, b], tok) is None  # ran out of tokens
    assert ev.finished_text([], tok) is None
    assert ev.finished_text([a, BOS, b, EOS], tok) is None  # decode() would silently drop the BOS
    assert ev.finished_text([a, 0, EOS], tok) is None  # PAD
    assert ev.finished_text([a, 1, EOS], tok) is None  # UNK


def test_score_counts_unfinished_samples_as_invalid_and_novelty_among_valid_ones():
    g = grammar("arithmetic", n=1)
    score = ev.score_texts(g, ["1+2=3", "1+2=3", "2+2=4", "2+2=5", None], train={"1+2=3"})
    assert (score.total, score.valid, score.new, score.unfinished) == (5, 3, 1, 1)
    assert score.in_distribution == pytest.approx(0.6)
    assert score.novelty == pytest.approx(1 / 3)
    assert score.interval == wilson_interval(3, 5)
    assert ev.score_texts(g, []).to_dict()["in_distribution"] != ev.score_texts(g, []).in_distribution  # nan


def test_wilson_interval_of_no_success_in_ten_is_z2_over_n_plus_z2():
    z2 = 1.959963984540054**2
    score = ev.GenerationScore(total=10, valid=0, new=0, unfinished=0)
    low, high = score.interval
    assert low == 0.0
    assert high == pytest.approx(z2 / (10 + z2), abs=1e-12)


# ------------------------------------------------------------------ the exact model
def test_the_exact_model_has_zero_paired_excess_and_its_loss_is_the_samples_entropy(arithmetic1):
    g, model, tok = arithmetic1
    samples = ev.fresh_samples(g, 300, seed=3)
    report = ev.paired_excess(model, g, tok, samples)
    assert report.excess == pytest.approx(0.0, abs=1e-12)
    assert report.excess_se == pytest.approx(0.0, abs=1e-12)
    tokens = sum(len(x) + 1 for x in samples)
    assert report.cross_entropy == pytest.approx(300 * 2 * math.log(10) / tokens, rel=1e-12)
    assert report.entropy_rate == g.entropy_rate().value
    assert report.unseen == 0


def test_the_exact_model_generates_only_valid_strings_at_the_ideal_novelty(arithmetic1):
    g, model, tok = arithmetic1
    train = [x for x, _ in g.enumerate_support()][:30]  # 30 of the 100 equally likely strings
    assert ev.ideal_novelty(g, train + train[:5]) == pytest.approx(0.7, abs=1e-12)  # repeats count once
    score = ev.in_distribution(model, g, tok, 2000, train=train, seed=5)
    assert score.in_distribution == 1.0 and score.unfinished == 0
    se = math.sqrt(0.7 * 0.3 / score.valid)
    assert abs(score.novelty - 0.7) < 4 * se  # a binomial draw around the ideal


def test_the_uniform_baseline_scores_log_of_its_choices_exactly():
    g = grammar("arithmetic", n=1)
    tok = CharTokenizer(g.alphabet)
    baseline = ev.UniformBaseline(tok)
    samples = ev.fresh_samples(g, 200, seed=1)
    report = ev.paired_excess(baseline, g, tok, samples)
    choices = len(g.alphabet) + 1  # the characters and EOS
    assert report.cross_entropy == pytest.approx(math.log(choices), rel=1e-12)
    tokens = sum(len(x) + 1 for x in samples)
    # excess = (sum log p - sum log q) / tokens, with log p = -2 log 10 for every string
    assert report.excess == pytest.approx(math.log(choices) - 200 * 2 * math.log(10) / tokens, rel=1e-12)
    # and the cross-entropy exceeds the entropy rate by about the excess (they differ by sampling noise)
    assert report.cross_entropy - report.entropy_rate == pytest.approx(report.excess, abs=0.05)


def test_a_model_that_gives_some_sample_probability_zero_has_infinite_loss():
    g = grammar("arithmetic", n=1)
    tok = CharTokenizer(g.alphabet)
    model = build_model("ngram", vocab_size=tok.vocab_size, order=8, k=0.0)
    model.fit([tok.encode("1+2=3")])
    report = ev.paired_excess(model, g, tok, ["1+2=3", "2+2=4"])
    assert report.unseen == 1
    assert math.isinf(report.excess) and math.isinf(report.cross_entropy)


def test_paired_excess_refuses_strings_outside_the_language(arithmetic1):
    g, model, tok = arithmetic1
    with pytest.raises(ValueError, match="samples of the language"):
        ev.paired_excess(model, g, tok, ["1+1=3"])


def test_the_excess_standard_error_is_the_delta_method_of_a_ratio_of_means():
    values = np.array([1.0, 2.0, 4.0, 3.0])
    tokens = np.array([2.0, 3.0, 5.0, 4.0])
    rate, se = ev._ratio_of_means(values, tokens)
    assert rate == pytest.approx(10 / 14)
    residuals = values - rate * tokens
    assert se == pytest.approx(math.sqrt(residuals.var(ddof=1) / 4) / 3.5)


# ------------------------------------------------------------------ arithmetic exact match
class DropsTheCarry(LanguageModel):
    """Answers a+b= with (a+b) mod 10 (one digit), and is sure of it: right exactly when nothing carries."""

    def __init__(self, tok: CharTokenizer) -> None:
        self.tok, self.vocab_size = tok, tok.vocab_size

    def next_token_logprobs(self, contexts: Sequence[Sequence[int]]) -> np.ndarray:
        out = np.full((len(contexts), self.vocab_size), -np.inf)
        for row, ctx in enumerate(contexts):
            text = self.tok.decode(ctx)
            question, _, answered = text.partition("=")
            if not _ or answered:  # before '=' (not asked here) or after the digit: stop
                out[row, EOS] = 0.0
            else:
                a, b = map(int, question.split("+"))
                out[row, self.tok.stoi[str((a + b) % 10)]] = 0.0
        return out


def test_exact_match_is_counted_by_carries():
    g = grammar("arithmetic", n=1)
    tok = CharTokenizer(g.alphabet)
    pairs = [(a, b) for a in range(10) for b in range(10)]
    result = ev.arithmetic_exact_match(DropsTheCarry(tok), g, tok, pairs)
    no_carry = sum(a + b < 10 for a, b in pairs)
    assert result.by_carries == {0: (no_carry, no_carry), 1: (0, 100 - no_carry)}
    assert result.correct == no_carry and result.total == 100
    assert result.wrong_examples[0] == "1+9=0"
    assert result.to_dict()["by_carries"]["1"] == {"correct": 0, "total": 100 - no_carry}


def test_the_exact_model_answers_every_sum(arithmetic1):
    g, model, tok = arithmetic1
    pairs = [(a, b) for a in range(10) for b in range(10)]
    assert ev.arithmetic_exact_match(model, g, tok, pairs).rate == 1.0
    assert ev.greedy_completions(model, tok, ["3+4=", "9+9="], max_new_tokens=4) == ["7", "18"]


def test_greedy_answers_are_right_exactly_when_every_answer_token_is_the_argmax_given_the_true_prefix():
    # an order-4 count model reads only "+b=" or "b=x" and so gets some sums wrong
    g = grammar("arithmetic", n=1)
    tok = CharTokenizer(g.alphabet)
    model = build_model("ngram", vocab_size=tok.vocab_size, order=4, k=0.0)
    model.fit([tok.encode(x) for x, _ in g.enumerate_support()])
    pairs = [(a, b) for a in range(10) for b in range(10)]
    teacher_forced = 0
    for a, b in pairs:
        ids = tok.encode(g.format_question(a, b) + g.answer(a, b))
        start = len(g.format_question(a, b)) + 1  # the first answer token's position
        logp = model.next_token_logprobs([ids[:t] for t in range(start, len(ids))])
        teacher_forced += all(logp[i].argmax() == ids[start + i] for i in range(len(logp)))
    result = ev.arithmetic_exact_match(model, g, tok, pairs)
    assert 0 < result.correct < 100
    assert result.correct == teacher_forced


# ------------------------------------------------------------------ sweeps, thresholds, memorising
def test_smallest_reaching_and_the_predicted_thresholds():
    assert ev.smallest_reaching({1: 0.2, 2: 0.5, 3: 1.0, 4: 1.0}, 1.0) == 3
    assert ev.smallest_reaching({1: 0.2, 2: 0.995, 3: 0.98}, 0.99) == 2
    assert ev.smallest_reaching({1: 0.2}, 0.99) is None
    assert ev.largest_jump({1: 0.36, 2: 0.42, 3: 0.93, 4: 0.92}) == 3
    assert ev.largest_jump({4: 0.5, 2: 0.1, 3: 0.2}) == 4  # in sorted order of the settings
    assert ev.largest_jump({1: 0.5}) is None
    assert ev.predicted_threshold(grammar("sticky", n=3), "ngram") == 4
    assert ev.predicted_threshold(grammar("sticky", n=3), "mlp") == 3
    assert ev.predicted_threshold(grammar("sticky", n=3, max_len=20), "ngram") is None
    assert ev.predicted_threshold(grammar("counting", n=3), "ngram") is None
    with pytest.raises(ValueError):
        ev.predicted_threshold(grammar("sticky", n=3), "gru")


def test_memorising_means_more_than_three_points_below_the_ideal():
    assert ev.is_memorising(0.90, 0.954)
    assert not ev.is_memorising(0.93, 0.954)
    assert not ev.is_memorising(0.99, 0.954)  # above the ideal is not memorising
