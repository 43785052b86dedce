"""Data adapters: what a batch holds, how long sequences are cropped, and that the data state resumes."""

import collections
import io
import random

import pytest
import torch
from simplellm.data import grammar

from simplellm.lm.datasets import (
    FixedSet,
    crop,
    data_from_config,
    grammar_data,
    rng_state,
    set_rng_state,
    split_sentences,
    text_data,
)
from simplellm.lm.tokenizers import BOS, EOS, UNK


def test_crop_keeps_short_sequences_and_cuts_long_ones_to_a_window_starting_anywhere():
    rng = random.Random(0)
    seq = list(range(10))
    assert crop(seq, None, rng) is seq
    assert crop(seq, 9, rng) is seq  # 9 inputs + 1 target = all 10 tokens
    starts = collections.Counter()
    for _ in range(2000):
        piece = crop(seq, 4, rng)
        assert len(piece) == 5 and piece == seq[piece[0] : piece[0] + 5]
        starts[piece[0]] += 1
    # every start 0..5 is possible and roughly equally likely (2000/6 = 333 each)
    assert sorted(starts) == [0, 1, 2, 3, 4, 5]
    assert min(starts.values()) > 250 and max(starts.values()) < 420


def test_fixed_set_visits_every_sequence_once_per_epoch_in_a_new_order():
    train = [[BOS, 4 + i, EOS] for i in range(10)]
    data = FixedSet(train, [], tokenizer=None, config={}, seed=3)
    first = [tuple(s) for s in data.next_batch(4) + data.next_batch(6)]
    second = [tuple(s) for s in data.next_batch(10)]
    assert sorted(first) == sorted(map(tuple, train)) == sorted(second)
    assert first != second
    again = FixedSet(train, [], tokenizer=None, config={}, seed=3)
    assert [tuple(s) for s in again.next_batch(10)] == first
    other_seed = FixedSet(train, [], tokenizer=None, config={}, seed=4)
    assert [tuple(s) for s in other_seed.next_batch(10)] != first


@pytest.mark.parametrize("train_size", [None, 50])
def test_data_state_resumes_the_exact_batches(train_size):
    g = grammar("sticky", n=3)
    data = grammar_data(g, train_size=train_size, val_size=8, seed=1)
    data.next_batch(37, window=8)
    state = data.state_dict()
    # the state goes through a weights_only torch file, like every checkpoint entry
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    expected = [data.next_batch(16, window=8) for _ in range(5)]
    restored = grammar_data(g, train_size=train_size, val_size=8, seed=1)
    restored.load_state_dict(state)
    assert [restored.next_batch(16, window=8) for _ in range(5)] == expected


def test_fresh_samples_are_valid_framed_sentences_of_the_language_and_seeded():
    g = grammar("sticky", n=2)
    data = grammar_data(g, val_size=20, seed=0)
    batch = data.next_batch(200)
    for seq in batch:
        assert seq[0] == BOS and seq[-1] == EOS and UNK not in seq
        assert g.is_valid(data.tokenizer.decode(seq))
    assert grammar_data(g, val_size=20, seed=0).next_batch(200) == batch
    assert grammar_data(g, val_size=20, seed=1).next_batch(200) != batch
    # fresh means fresh: 200 draws of a language this large are almost all distinct
    assert len({tuple(s) for s in batch}) > 150
    assert len(data.validation) == 20 and all(g.is_valid(data.tokenizer.decode(s)) for s in data.validation)


def test_a_fixed_set_holds_k_samples_and_validation_lies_outside_it():
    g = grammar("sticky", n=3)
    data = grammar_data(g, train_size=100, val_size=50, seed=0)
    train = {tuple(s) for s in data.training_sequences()}
    assert len(data.training_sequences()) == 100
    assert not train & {tuple(s) for s in data.validation}
    seen = {tuple(s) for _ in range(10) for s in data.next_batch(10)}
    assert seen == train  # batches come from the K samples and nothing else


def test_data_is_rebuilt_from_its_config():
    data = grammar_data(grammar("counting", n=2, max_count=4), train_size=30, val_size=10, seed=5)
    again = data_from_config(data.config)
    assert again.config == data.config and again.tokenizer == data.tokenizer
    assert again.validation == data.validation and again.next_batch(40) == data.next_batch(40)


def write_lines(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def test_text_is_split_by_line_and_the_vocabulary_comes_from_training_only(tmp_path):
    lines = [f"line {i} says {'abc'[i % 3]}" for i in range(40)] + ["zebra quartz"]
    data = text_data(write_lines(tmp_path / "t.txt", lines), tokenizer="char", val_fraction=0.25, seed=0)
    train = [data.tokenizer.decode(s) for s in data.training_sequences()]
    val = [data.tokenizer.decode(s) for s in data.validation]
    assert len(val) == round(0.25 * len(lines)) and len(train) + len(val) == len(lines)
    # whole lines, each on exactly one side: never a cut through a line
    assert set(train) <= set(lines) and set(train).isdisjoint(val)
    assert sorted(train + [v for v in val if "<unk>" not in v]) == sorted(
        line for line in lines if line in train or line in val
    )
    assert sum("<unk>" in v for v in val) == sum(line not in train and line not in val for line in lines)
    train_chars = set("".join(train))
    assert set(data.tokenizer.itos[4:]) == train_chars
    # a held-out line with a character training never had is encoded with UNK
    unseen = [s for s in data.validation if UNK in s]
    assert all(set(data.tokenizer.decode(s).replace("<unk>", "")) <= train_chars for s in unseen)


def test_word_text_keeps_frequent_words_and_sentences_can_be_the_samples(tmp_path):
    text = "The cat sat. The dog sat! A cat ran? The end.\nThe cat sat again."
    path = tmp_path / "s.txt"
    path.write_text(text, encoding="utf-8")
    assert split_sentences(text) == [
        "The cat sat.",
        "The dog sat!",
        "A cat ran?",
        "The end.",
        "The cat sat again.",
    ]
    data = text_data(str(path), tokenizer="word", unit="sentence", val_fraction=0.2, min_frequency=2, seed=0)
    assert data.tokenizer.kind == "word"
    assert len(data.validation) == 1 and len(data.training_sequences()) == 4
    words = data.tokenizer.itos[4:]
    assert "the" in words and "zebra" not in words
    counts = collections.Counter(
        w for s in data.training_sequences() for w in data.tokenizer.decode(s).split()
    )
    assert all(
        counts[w] + counts[w + "."] + counts[w + "!"] + counts[w + "?"] >= 2 for w in words if w.isalpha()
    )


def test_shipped_corpora_load_by_name():
    data = text_data("animals", tokenizer="word", seed=0)
    assert len(data.validation) >= 1 and len(data.training_sequences()) > len(data.validation)


def test_bad_data_options_are_refused_with_a_message(tmp_path):
    g = grammar("sticky")
    with pytest.raises(ValueError, match="train_size"):
        grammar_data(g, train_size=0)
    with pytest.raises(ValueError, match="tokenizer"):
        text_data("animals", tokenizer="bpe")
    with pytest.raises(ValueError, match="val_fraction"):
        text_data("animals", val_fraction=1.0)
    with pytest.raises(FileNotFoundError):
        text_data(str(tmp_path / "missing.txt"))
    with pytest.raises(ValueError, match="at least 2"):
        text_data(write_lines(tmp_path / "one.txt", ["only line"]))
    with pytest.raises(ValueError, match="source"):
        data_from_config({"source": "stream"})


def test_random_state_is_plain_data_and_round_trips():
    rng = random.Random(7)
    rng.random()
    state = rng_state(rng)
    assert isinstance(state["internal"], list) and all(isinstance(x, int) for x in state["internal"])
    expected = [rng.random() for _ in range(5)]
    other = random.Random(0)
    set_rng_state(other, state)
    assert [other.random() for _ in range(5)] == expected
