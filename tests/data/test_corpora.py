"""The shipped corpora and the loader for any UTF-8 text file."""

import pytest

from simplellm.data import CORPORA, load_corpus, load_text


def test_the_sentences_corpus():
    lines = load_corpus("animals")
    assert 60 <= len(lines) <= 150
    assert len(set(lines)) == len(lines)
    assert all(line[0].isupper() and line[-1] in ".!?" for line in lines)


def test_the_story_corpus():
    text = load_corpus("story", mode="text")
    words = text.split()
    assert 3000 <= len(words) <= 6000
    # plain vocabulary with repetition: a tiny word model needs to see words more than once
    distinct = {w.strip(".,!?;:\"'").lower() for w in words}
    assert len(distinct) < len(words) / 4
    assert load_corpus("story") == [p for p in text.split("\n") if p.strip()]


@pytest.mark.parametrize("name", CORPORA)
def test_corpora_are_plain_printable_text(name):
    text = load_corpus(name, mode="text")
    assert text.isascii()
    assert all(ch.isprintable() or ch == "\n" for ch in text)
    assert "\r" not in text and text.endswith("\n")


def test_unknown_corpus():
    with pytest.raises(ValueError, match="choose one of: animals, story"):
        load_corpus("lyrics")


def test_lines_are_stripped_and_blank_lines_dropped(tmp_path):
    path = tmp_path / "names.txt"
    path.write_bytes("anna\r\n  bob  \n\n\t\ncarl\u00e9\n".encode())
    assert load_text(path) == ["anna", "bob", "carlé"]
    assert load_text(str(path), mode="text") == "anna\n  bob  \n\n\t\ncarlé\n"


def test_a_byte_order_mark_is_not_text(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes(b"\xef\xbb\xbfhello\nworld\n")
    assert load_text(path) == ["hello", "world"]


def test_one_sample_keeps_its_unusual_characters(tmp_path):
    # form feed and the unicode line separator are characters inside a sample, not line ends
    path = tmp_path / "odd.txt"
    path.write_text("a\x0cb\nc\u2028d\n", encoding="utf-8")
    assert load_text(path) == ["a\x0cb", "c\u2028d"]


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such text file"):
        load_text(tmp_path / "nowhere.txt")


def test_bytes_that_are_not_utf8(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("caf\u00e9\n".encode("latin-1"))
    with pytest.raises(ValueError, match="not UTF-8 text: cannot decode byte 0xe9 at offset 3"):
        load_text(path)


def test_unknown_mode(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("a\n", encoding="utf-8")
    with pytest.raises(ValueError, match="mode must be one of lines, text"):
        load_text(path, mode="words")
