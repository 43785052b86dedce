"""Tokenizers: fixed special ids, framing, UNK handling, deterministic vocabularies, round trips."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simplellm.lm.tokenizers import (
    BOS,
    EOS,
    PAD,
    UNK,
    CharTokenizer,
    WordTokenizer,
    load_tokenizer,
    tokenizer_from_dict,
)


def test_special_ids_are_fixed_and_shared():
    assert (PAD, UNK, BOS, EOS) == (0, 1, 2, 3)
    for tok in (CharTokenizer("abc"), WordTokenizer.from_texts(["a b c"])):
        assert tok.itos[:4] == ["<pad>", "<unk>", "<bos>", "<eos>"]


def test_char_tokenizer_frames_and_round_trips():
    tok = CharTokenizer("cab")
    assert tok.vocab_size == 7
    assert tok.encode("abc") == [BOS, 4, 5, 6, EOS]
    assert tok.encode("abc", frame=False) == [4, 5, 6]
    assert tok.decode(tok.encode("cabbage"[:4])) == "cabb"
    assert tok.encode("axb") == [BOS, 4, UNK, 5, EOS]  # unknown -> UNK, never PAD


@given(st.text(alphabet="abcXYZ019", max_size=40))
def test_char_round_trip(text):
    tok = CharTokenizer("abcXYZ019")
    assert tok.decode(tok.encode(text)) == text


def test_word_tokenizer_lowercases_splits_punctuation_and_reattaches_it():
    tok = WordTokenizer.from_texts(["The cat sat. The dog, too!"])
    assert tok.split("The cat sat.") == ["the", "cat", "sat", "."]
    assert tok.decode(tok.encode("The dog, too!")) == "the dog, too!"
    assert tok.decode(tok.encode("the cat sat. the dog, too!")) == "the cat sat. the dog, too!"


def test_word_ids_are_by_frequency_then_alphabetical():
    tok = WordTokenizer.from_texts(["b a b c", "c b z"])
    assert tok.itos[4:] == ["b", "c", "a", "z"]


def test_min_frequency_and_vocabulary_cap_send_rare_words_to_unk():
    texts = ["a a a b b c"]
    assert WordTokenizer.from_texts(texts, min_frequency=2).itos[4:] == ["a", "b"]
    capped = WordTokenizer.from_texts(texts, max_vocab=5)
    assert capped.itos[4:] == ["a"]
    assert capped.encode("a b zebra") == [BOS, 4, UNK, UNK, EOS]
    with pytest.raises(ValueError, match="min_frequency"):
        WordTokenizer.from_texts(texts, min_frequency=0)
    with pytest.raises(ValueError, match="max_vocab"):
        WordTokenizer.from_texts(texts, max_vocab=3)


@given(st.lists(st.sampled_from(["the", "cat", "sat", "on", "mat", "it's", "2", ".", ",", "!"]), max_size=30))
def test_word_round_trip_for_normally_spaced_text(words):
    tok = WordTokenizer.from_texts(["the cat sat on mat it's 2 . , !"])
    text = tok.join(words)
    assert tok.decode(tok.encode(text)) == text


def test_json_save_and_load_give_the_same_tokenizer(tmp_path):
    for tok in (CharTokenizer("xyz"), WordTokenizer.from_texts(["hello world, hello"])):
        tok.save(tmp_path / "tok.json")
        loaded = load_tokenizer(tmp_path / "tok.json")
        assert loaded == tok and type(loaded) is type(tok)
        assert loaded.encode("hello xyz") == tok.encode("hello xyz")


def test_bad_tokenizer_data_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown tokenizer kind"):
        tokenizer_from_dict({"kind": "bpe", "tokens": []})
    with pytest.raises(ValueError, match="list of strings"):
        tokenizer_from_dict({"kind": "char", "tokens": "abc"})
    with pytest.raises(ValueError, match="outside the vocabulary"):
        CharTokenizer("ab").decode([4, 99])
