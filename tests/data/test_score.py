"""Scoring generated samples: valid, new, duplicated, and an interval for the in-distribution share."""

import math

import pytest

from simplellm.data import grammar, score_samples, wilson_interval


def test_score_counts_each_sample():
    g = grammar("arithmetic", n=1)
    train = ["1+1=2", "2+2=4"]
    samples = ["1+1=2", "3+4=7", "3+4=7", "1+1=3", "1+1=3", "x"]
    score = score_samples(g, samples, train)
    assert (score.total, score.valid, score.invalid, score.new, score.duplicated) == (6, 3, 3, 2, 2)
    assert score.in_distribution == 0.5
    assert score.novelty == pytest.approx(2 / 3)


def test_score_of_nothing():
    score = score_samples(grammar("sticky"), [])
    assert score.total == 0 and math.isnan(score.in_distribution) and math.isnan(score.novelty)
    assert score.in_distribution_interval() == (0.0, 1.0)


@pytest.mark.parametrize(
    "successes, trials, low, high",
    # values from the closed form, checked by hand: Wilson (1927)
    [(0, 10, 0.0, 0.2775327998628893), (10, 10, 0.7224672001371107, 1.0), (5, 10, 0.2365931, 0.7634069)],
)
def test_wilson_interval(successes, trials, low, high):
    interval = wilson_interval(successes, trials)
    assert interval == pytest.approx((low, high), abs=1e-7)


def test_wilson_interval_covers_the_truth_about_95_percent_of_the_time():
    # exact binomial coverage at p = 0.3, n = 50: sum the probabilities of the counts whose interval holds p
    p, n = 0.3, 50
    coverage = sum(
        math.comb(n, k) * p**k * (1 - p) ** (n - k)
        for k in range(n + 1)
        if wilson_interval(k, n)[0] <= p <= wilson_interval(k, n)[1]
    )
    assert 0.93 < coverage < 0.97


def test_wilson_interval_rejects_impossible_counts():
    with pytest.raises(ValueError):
        wilson_interval(5, 3)
