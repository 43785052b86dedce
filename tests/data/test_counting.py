"""counting: consecutive numbers such as 98,99."""

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

SETTINGS = [dict(n=1), dict(n=2), dict(n=3), dict(n=1, max_count=10), dict(n=2, max_count=2)]


def reference_for(params):
    return lambda s: reference.counting_valid(s, **params)


@pytest.mark.parametrize("params", [dict(n=1), dict(n=2), dict(n=3)], ids=str)
def test_100k_samples_are_valid_and_their_frequencies_match_logprob(params):
    g = grammar("counting", **params)
    samples = draw(g, 100_000, seed=1)
    assert all(g.is_valid(s) for s in samples)
    assert all(map(reference_for(params), samples[:10_000]))
    support = dict(g.enumerate_support())
    assert all(math.isclose(math.exp(g.logprob(s)), p, rel_tol=1e-12) for s, p in support.items())
    observed = Counter(samples)
    assert_frequencies_match(observed, support)  # string by string
    if len(support) < 1000:  # about 150 expected each: a sampler that never reaches some string is caught
        assert set(observed) == set(support)

    # Coarser events see small biases that thousands of string cells would drown: the number of terms,
    # and the width of the first number (a start that never reaches the top of its range shows here).
    def coarse(s):
        terms = s.split(",")
        return len(terms), len(terms[0]), len(terms[-1])

    coarse_p = Counter()
    for s, p in support.items():
        coarse_p[coarse(s)] += p
    assert_frequencies_match(Counter(map(coarse, samples)), coarse_p)


@pytest.mark.parametrize("params", [dict(n=1, max_count=3), dict(n=2, max_count=2)], ids=str)
def test_every_string_up_to_the_longest_is_judged_right_and_the_support_sums_to_one(params):
    g = grammar("counting", **params)
    assert g.max_length() == 5
    valid = check_exhaustively(g, g.alphabet, 5, reference_for(params))
    assert valid == {s for s, _ in g.enumerate_support()}
    assert g.support_size() == len(valid)
    assert math.fsum(math.exp(g.logprob(s)) for s in valid) == pytest.approx(1.0, abs=1e-12)


def test_n2_with_two_terms_ends_at_98_99():
    g = grammar("counting", n=2, max_count=2)
    assert g.support_size() == 99  # starts 0..98
    assert g.is_valid("98,99") and g.is_valid("0,1") and g.is_valid("9,10")
    assert not g.is_valid("99,100")


def test_near_misses():
    g = grammar("counting", n=2, max_count=4)
    for s in ["98,99", "0,1", "9,10,11,12", "97,98,99"]:
        assert g.is_valid(s), s
    near_misses = [
        "",
        "5",  # a single number
        "99",  # the last possible number alone: what a clipping sampler would emit
        "09,10",  # leading zero
        "00,1",
        "1,2,3,4,5",  # more than max_count numbers
        "99,100",  # 100 has more than n digits
        "-1,0",  # a sign
        "+1,2",
        "1, 2",  # a space
        " 1,2",
        "1,2,",  # a trailing comma
        ",1,2",
        "1,,2",
        "1,3",  # not consecutive
        "2,1",  # counting down
        "١,٢",  # Arabic-Indic digits
        "1,2\n",
    ]
    for s in near_misses:
        assert not g.is_valid(s), s
        assert g.logprob(s) == -math.inf


@pytest.mark.parametrize("s", STRANGE_STRINGS)
def test_strange_strings_get_an_answer(s):
    for g in (grammar("counting", n=1), grammar("counting", n=4, max_count=10)):
        assert g.is_valid(s) is (g.logprob(s) > -math.inf) is reference.counting_valid(s, g.n, g.max_count)


@settings(max_examples=300, deadline=None)
@given(st.text(), st.sampled_from(SETTINGS))
def test_any_text_is_judged_like_the_rules_in_words(s, params):
    g = grammar("counting", **params)
    assert g.is_valid(s) == reference_for(params)(s) == (g.logprob(s) > -math.inf)


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet="0123456789,+- ٣", max_size=30), st.sampled_from(SETTINGS))
def test_text_over_the_alphabet_is_judged_like_the_rules_in_words(s, params):
    g = grammar("counting", **params)
    assert g.is_valid(s) == reference_for(params)(s) == (g.logprob(s) > -math.inf)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32), st.sampled_from(SETTINGS))
def test_mutated_samples_are_judged_like_the_rules_in_words(seed, params):
    g = grammar("counting", **params)
    rng = random.Random(seed)
    for s in mutations(g.sample(rng), "0123456789,- ", rng):
        assert g.is_valid(s) == reference_for(params)(s) == (g.logprob(s) > -math.inf), s


@pytest.mark.parametrize("params", [dict(n=1), dict(n=2), dict(n=3), dict(n=1, max_count=10)], ids=str)
def test_exact_sums_agree_with_enumeration(params):
    g = grammar("counting", **params)
    support = list(g.enumerate_support())
    entropy = -math.fsum(p * math.log(p) for _, p in support)
    tokens = math.fsum(p * (len(s) + 1) for s, p in support)
    assert g.entropy_rate().value == pytest.approx(entropy / tokens, rel=1e-12)
    for train_size in (0, 1, 100, 10_000):
        by_enumeration = math.fsum(p * (1 - p) ** train_size for _, p in support)
        assert g.ideal_novelty(train_size).value == pytest.approx(by_enumeration, rel=1e-9, abs=1e-15)
    assert g.max_length() == max(len(s) for s, _ in support)


def test_exact_sums_for_many_digits_agree_with_monte_carlo():
    g = grammar("counting", n=12, max_count=20)  # a support of 2 * 10**13 strings: only the formula sums it
    estimate = monte_carlo_entropy_rate(g, num_samples=5_000, seed=2)
    assert abs(g.entropy_rate().value - estimate.value) < 4 * estimate.stderr
    assert g.ideal_novelty(10_000).value == pytest.approx(1.0, abs=1e-8)
    assert g.support_size() == sum(10**12 - k + 1 for k in range(2, 21))
