"""arithmetic: a+b=c, with the answer optionally reversed."""

import math
import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simplellm.data import grammar, monte_carlo_entropy_rate

from . import reference
from .helpers import STRANGE_STRINGS, check_exhaustively, draw, mutations
from .stats import assert_frequencies_match

SETTINGS = [dict(n=1), dict(n=2), dict(n=3), dict(n=1, reverse_answer=True), dict(n=2, reverse_answer=True)]


def reference_for(params):
    return lambda s: reference.arithmetic_valid(s, **params)


@pytest.mark.parametrize("params", SETTINGS[:2] + SETTINGS[3:], ids=str)
def test_100k_samples_are_valid_and_their_frequencies_match_logprob(params):
    g = grammar("arithmetic", **params)
    samples = draw(g, 100_000, seed=1)
    assert all(g.is_valid(s) for s in samples)
    assert all(map(reference_for(params), samples[:10_000]))
    support = dict(g.enumerate_support())
    assert len(support) == g.support_size() == 10 ** (2 * g.n)
    assert all(math.exp(g.logprob(s)) == pytest.approx(p, rel=1e-12) for s, p in support.items())
    assert_frequencies_match(Counter(samples), support)

    # Coarser: the carries, which the milestone's results are broken down by, and the operand widths.
    def coarse(s):
        a, b, _ = g.parse(s)
        return g.carries(a, b), len(str(a)), len(str(b))

    coarse_p = Counter()
    for s, p in support.items():
        coarse_p[coarse(s)] += p
    assert_frequencies_match(Counter(map(coarse, samples)), coarse_p)


@pytest.mark.parametrize("reverse_answer", [False, True])
def test_every_short_string_is_judged_right_and_the_support_sums_to_one(reverse_answer):
    g = grammar("arithmetic", n=1, reverse_answer=reverse_answer)
    valid_by_reference = reference_for(dict(n=1, reverse_answer=reverse_answer))
    support = {s for s, _ in g.enumerate_support()}
    # every string over the alphabet up to length 5, then every length-6 string over some of it
    # ("9+9=18" is the longest string: all 12**6 would take too long, these cover carries and zeros)
    valid = check_exhaustively(g, g.alphabet, 5, valid_by_reference)
    assert valid == {s for s in support if len(s) <= 5}
    valid |= {s for s in check_exhaustively(g, "0189+=", 6, valid_by_reference) if len(s) == 6}
    assert valid <= support
    assert {
        "9+9=18" if not reverse_answer else "9+9=81",
        "1+9=10" if not reverse_answer else "1+9=01",
    } <= valid
    assert len(support) == 100
    assert math.fsum(math.exp(g.logprob(s)) for s in support) == pytest.approx(1.0, abs=1e-12)


def test_near_misses():
    g = grammar("arithmetic", n=2)
    for s in ["1+1=2", "0+0=0", "99+99=198", "50+50=100", "7+30=37"]:
        assert g.is_valid(s), s
    near_misses = [
        "",
        "01+02=3",  # leading zeros
        "1+1=02",
        "1+01=2",
        "00+1=1",
        "1+1=3",  # wrong sum
        "99+99=197",
        "100+1=101",  # an operand longer than n digits
        "1+100=101",
        "-1+2=1",  # signs
        "+1+2=3",
        "1+-2=-1",
        "1 + 1 = 2",  # spaces
        "1+1=2 ",
        "1+1=",  # no answer
        "+1=1",
        "1+=1",
        "1+1",
        "1=1+0",
        "1+1=2=2",
        "1+1+1=3",
        "١+١=٢",  # Arabic-Indic digits
        "１+１=２",  # full-width digits
        "1+1=2\n",
        "1+1=002",
    ]
    for s in near_misses:
        assert not g.is_valid(s), s
        assert g.logprob(s) == -math.inf
        assert g.parse(s) is None


def test_reversed_answers():
    g = grammar("arithmetic", n=2, reverse_answer=True)
    assert g.is_valid("95+7=201") and not g.is_valid("95+7=102")
    assert g.is_valid("50+50=001") and not g.is_valid("50+50=1") and not g.is_valid("50+50=100")
    assert g.is_valid("0+0=0") and g.is_valid("12+34=64")
    assert g.answer(95, 7) == "201" and g.parse("95+7=201") == (95, 7, 102)
    assert grammar("arithmetic", n=2).answer(95, 7) == "102"


def test_the_pieces_the_milestone_uses():
    g = grammar("arithmetic", n=2)
    assert g.format_question(47, 8) + g.answer(47, 8) == "47+8=55"
    assert g.parse("47+8=55") == (47, 8, 55)
    pairs = [(12, 34), (5, 5), (95, 7), (99, 1), (99, 99), (0, 0)]
    assert [g.carries(a, b) for a, b in pairs] == [0, 1, 2, 2, 2, 0]
    with pytest.raises(ValueError, match="operands"):
        g.format_question(100, 1)
    with pytest.raises(ValueError, match="operands"):
        g.answer(-1, 1)


@given(st.integers(0, 10**9 - 1), st.integers(0, 10**9 - 1))
def test_carries_agree_with_the_column_rule(a, b):
    assert grammar("arithmetic", n=9).carries(a, b) == reference.carries(a, b)


def test_split_operands():
    g = grammar("arithmetic", n=2)
    split = g.split_operands(seed=0)
    everything = {(a, b) for a in range(100) for b in range(100)}
    assert len(split.train) == len(split.held_out) == 5000
    assert set(split.train) | set(split.held_out) == everything
    assert not set(split.train) & set(split.held_out)
    assert split == g.split_operands(seed=0)
    assert split.train != g.split_operands(seed=1).train
    assert len(g.split_operands(seed=0, train_fraction=0.8).train) == 8000
    # every carry count is represented among the held-out pairs, so results can be broken down by it
    assert {g.carries(a, b) for a, b in split.held_out} == {0, 1, 2}
    for bad in (-0.1, 1.5, "half"):
        with pytest.raises(ValueError, match="train_fraction"):
            g.split_operands(seed=0, train_fraction=bad)
    with pytest.raises(ValueError, match="n <= 3"):
        grammar("arithmetic", n=4).split_operands(seed=0)


@pytest.mark.parametrize("s", STRANGE_STRINGS + ["1+1=" + "2" * 10_000, "9" * 5000 + "+1=1" + "0" * 5000])
def test_strange_strings_get_an_answer(s):
    for g in (grammar("arithmetic", n=1), grammar("arithmetic", n=3, reverse_answer=True)):
        assert (
            g.is_valid(s)
            is (g.logprob(s) > -math.inf)
            is reference.arithmetic_valid(s, g.n, g.reverse_answer)
        )


@settings(max_examples=300, deadline=None)
@given(st.text(), st.sampled_from(SETTINGS))
def test_any_text_is_judged_like_the_rules_in_words(s, params):
    g = grammar("arithmetic", **params)
    assert g.is_valid(s) == reference_for(params)(s) == (g.logprob(s) > -math.inf)


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet="0123456789+= -٣", max_size=12), st.sampled_from(SETTINGS))
def test_text_over_the_alphabet_is_judged_like_the_rules_in_words(s, params):
    g = grammar("arithmetic", **params)
    assert g.is_valid(s) == reference_for(params)(s) == (g.logprob(s) > -math.inf)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32), st.sampled_from(SETTINGS))
def test_mutated_samples_are_judged_like_the_rules_in_words(seed, params):
    g = grammar("arithmetic", **params)
    rng = random.Random(seed)
    for s in mutations(g.sample(rng), "0123456789+=- ", rng):
        assert g.is_valid(s) == reference_for(params)(s) == (g.logprob(s) > -math.inf), s


@pytest.mark.parametrize("params", [p for p in SETTINGS if p["n"] <= 2], ids=str)
def test_exact_sums_agree_with_enumeration(params):
    g = grammar("arithmetic", **params)
    support = list(g.enumerate_support())
    entropy = -math.fsum(p * math.log(p) for _, p in support)
    tokens = math.fsum(p * (len(s) + 1) for s, p in support)
    assert g.entropy_rate().value == pytest.approx(entropy / tokens, rel=1e-12)
    for train_size in (0, 1, 1000, 10**6):
        by_enumeration = math.fsum(p * (1 - p) ** train_size for _, p in support)
        assert g.ideal_novelty(train_size).value == pytest.approx(by_enumeration, rel=1e-9, abs=1e-15)
    assert g.max_length() == max(len(s) for s, _ in support)


def test_exact_sums_for_many_digits_agree_with_monte_carlo():
    g = grammar("arithmetic", n=30)
    estimate = monte_carlo_entropy_rate(g, num_samples=5_000, seed=2)
    assert abs(g.entropy_rate().value - estimate.value) < 4 * estimate.stderr
    assert g.ideal_novelty(10**9).value == pytest.approx(1.0, abs=1e-15)


def test_both_answer_orders_have_the_same_entropy_rate():
    # reversing the answer changes how learnable the language is, not how much information it holds
    forward, backward = grammar("arithmetic", n=2), grammar("arithmetic", n=2, reverse_answer=True)
    assert forward.entropy_rate().value == backward.entropy_rate().value
