"""Train / validation / test sets and the stream of fresh samples."""

import itertools
import math

import pytest

from simplellm.data import grammar


def test_splits_are_deterministic_and_held_out_sets_avoid_training():
    g = grammar("counting", n=2)
    first = g.splits(seed=7, train_size=300, val_size=100, test_size=100)
    assert first == g.splits(seed=7, train_size=300, val_size=100, test_size=100)
    assert first.train != g.splits(seed=8, train_size=300).train
    assert (len(first.train), len(first.validation), len(first.test)) == (300, 100, 100)
    assert first.validation_overlap == first.test_overlap == 0
    assert not set(first.validation) & set(first.train)
    assert not set(first.test) & set(first.train)
    assert all(map(g.is_valid, first.train + first.validation + first.test))


def test_each_set_has_its_own_stream():
    # a bigger validation set leaves training alone, and a bigger training set extends the smaller one
    g = grammar("sticky", n=3)
    small = g.splits(seed=1, train_size=100, val_size=10, test_size=10)
    large = g.splits(seed=1, train_size=200, val_size=50, test_size=10)
    assert large.train[:100] == small.train
    assert large.test == small.test


def test_train_mass_is_the_chance_that_a_fresh_sample_is_a_training_string():
    g = grammar("counting", n=2)
    splits = g.splits(seed=3, train_size=300)
    train = set(splits.train)
    assert splits.train_mass == pytest.approx(math.fsum(math.exp(g.logprob(x)) for x in train))
    fresh = list(itertools.islice(g.stream(seed=3), 20_000))
    share = sum(x in train for x in fresh) / len(fresh)
    stderr = math.sqrt(splits.train_mass * (1 - splits.train_mass) / len(fresh))
    assert abs(share - splits.train_mass) < 4 * stderr


def test_when_training_holds_the_whole_support_the_overlap_is_reported():
    g = grammar("arithmetic", n=1)  # 100 strings; 2000 draws leave none out
    splits = g.splits(seed=0, train_size=2000, val_size=30, test_size=20)
    assert len(set(splits.train)) == 100 and splits.train_mass == pytest.approx(1.0)
    assert (splits.validation_overlap, splits.test_overlap) == (30, 20)
    assert len(splits.validation) == 30 and all(map(g.is_valid, splits.validation))


def test_when_training_holds_almost_everything_held_out_strings_are_the_rest():
    g = grammar("arithmetic", n=1)
    splits = g.splits(seed=0, train_size=400, val_size=50)
    missing = {s for s, _ in g.enumerate_support()} - set(splits.train)
    assert 0 < len(missing) < 5  # rare enough that rejection needs many tries, still it finds them
    assert splits.validation_overlap == 0 and set(splits.validation) <= missing


def test_held_out_sets_are_rarer_than_fresh_samples():
    # The documented bias: conditioning on "not in training" removes the likeliest strings, so held-out
    # strings have a higher mean surprisal than fresh ones (counting's probabilities vary with the length).
    g = grammar("counting", n=1)
    splits = g.splits(seed=0, train_size=30, val_size=3000)
    fresh = list(itertools.islice(g.stream(seed=0), 3000))
    support = dict(g.enumerate_support())
    entropy = -math.fsum(p * math.log(p) for p in support.values())
    left_out = {x: p for x, p in support.items() if x not in set(splits.train)}
    conditional = -math.fsum(p * math.log(p) for p in left_out.values()) / math.fsum(left_out.values())
    assert conditional > entropy

    def mean_and_stderr(xs):
        values = [-g.logprob(x) for x in xs]
        mean = sum(values) / len(values)
        return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1) / len(values))

    validation_mean, validation_stderr = mean_and_stderr(splits.validation)
    fresh_mean, fresh_stderr = mean_and_stderr(fresh)
    assert abs(validation_mean - conditional) < 4 * validation_stderr
    assert abs(fresh_mean - entropy) < 4 * fresh_stderr


def test_the_stream_is_reproducible_and_independent_of_the_splits():
    g = grammar("sticky", n=2)
    assert list(itertools.islice(g.stream(seed=4), 50)) == list(itertools.islice(g.stream(seed=4), 50))
    assert list(itertools.islice(g.stream(seed=4), 50)) != list(itertools.islice(g.stream(seed=5), 50))
    assert list(itertools.islice(g.stream(seed=4), 50)) != g.splits(seed=4, train_size=50).train


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(seed=0, train_size=-1), "train_size must be an integer >= 0"),
        (dict(seed=0, train_size=10, val_size=2.5), "val_size must be an integer >= 0"),
        (dict(seed="zero", train_size=10), "seed must be an integer"),
    ],
)
def test_bad_split_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        grammar("sticky").splits(**kwargs)
    with pytest.raises(ValueError, match="seed must be an integer"):
        grammar("sticky").stream(seed=None)
