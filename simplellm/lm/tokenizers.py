"""Tokenizers: text <-> token ids, with the special tokens every model shares.

Every sample is framed as ``BOS x1 ... xn EOS``: the model reads BOS to know a sample has begun and
must *predict* EOS to say it has ended, so it learns when to stop. The four special tokens have the
same ids in every tokenizer, so padding and masking code never needs to ask which one it has.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

PAD, UNK, BOS, EOS = 0, 1, 2, 3
SPECIAL_TOKENS = ("<pad>", "<unk>", "<bos>", "<eos>")


class Tokenizer:
    """The shared part: a list of token strings whose position is the id."""

    kind = "base"

    def __init__(self, tokens: Sequence[str]) -> None:
        self.itos: list[str] = list(SPECIAL_TOKENS) + list(tokens)
        self.stoi: dict[str, int] = {tok: i for i, tok in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise ValueError("tokens must be distinct and must not repeat the special tokens")

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def split(self, text: str) -> list[str]:
        raise NotImplementedError

    def join(self, tokens: list[str]) -> str:
        raise NotImplementedError

    def encode(self, text: str, frame: bool = True) -> list[int]:
        """Token ids of ``text``; with ``frame``, wrapped as BOS ... EOS. Unknown pieces become UNK."""
        ids = [self.stoi.get(tok, UNK) for tok in self.split(text)]
        return [BOS, *ids, EOS] if frame else ids

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids``, stopping at the first EOS; PAD and BOS are dropped, UNK shows as <unk>."""
        pieces = []
        for i in ids:
            i = int(i)
            if i == EOS:
                break
            if i in (PAD, BOS):
                continue
            if not 0 <= i < len(self.itos):
                raise ValueError(f"token id {i} is outside the vocabulary (size {self.vocab_size})")
            pieces.append(self.itos[i])
        return self.join(pieces)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "tokens": self.itos[len(SPECIAL_TOKENS) :]}

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=1), encoding="utf-8")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocab_size={self.vocab_size})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.to_dict() == other.to_dict()  # type: ignore[union-attr]


class CharTokenizer(Tokenizer):
    """One token per character of a fixed alphabet (a grammar's ``alphabet``, or a text's characters)."""

    kind = "char"

    def __init__(self, alphabet: Iterable[str]) -> None:
        chars = sorted(set(alphabet))
        if any(len(c) != 1 for c in chars):
            raise ValueError("a character alphabet holds single characters")
        super().__init__(chars)

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> CharTokenizer:
        return cls(set().union(*map(set, texts)))

    def split(self, text: str) -> list[str]:
        return list(text)

    def join(self, tokens: list[str]) -> str:
        return "".join(tokens)


# A word is a run of letters, digits or apostrophes; every other visible character is its own token.
_WORD_OR_PUNCT = re.compile(r"[\w']+|[^\w\s]")
_NO_SPACE_BEFORE = set(".,;:!?)]}%")
_NO_SPACE_AFTER = set("([{$")


class WordTokenizer(Tokenizer):
    """Lower-cased words and punctuation marks; rare words become UNK.

    Ids are deterministic: the specials, then words by decreasing frequency, ties alphabetical.
    Decoding re-attaches punctuation (``"the cat , sat ."`` -> ``"the cat, sat."``); the
    round trip is exact for text that is lower-case and spaced the usual way.
    """

    kind = "word"

    def __init__(self, words: Sequence[str]) -> None:
        super().__init__(words)

    @classmethod
    def from_texts(
        cls, texts: Iterable[str], min_frequency: int = 1, max_vocab: int | None = None
    ) -> WordTokenizer:
        if min_frequency < 1:
            raise ValueError(f"min_frequency must be >= 1, not {min_frequency}")
        if max_vocab is not None and max_vocab < len(SPECIAL_TOKENS) + 1:
            raise ValueError(f"max_vocab must leave room for 4 special tokens and a word, not {max_vocab}")
        counts = Counter(tok for text in texts for tok in cls.split_words(text))
        ranked = sorted((w for w, c in counts.items() if c >= min_frequency), key=lambda w: (-counts[w], w))
        if max_vocab is not None:
            ranked = ranked[: max_vocab - len(SPECIAL_TOKENS)]
        return cls(ranked)

    @staticmethod
    def split_words(text: str) -> list[str]:
        return _WORD_OR_PUNCT.findall(text.lower())

    def split(self, text: str) -> list[str]:
        return self.split_words(text)

    def join(self, tokens: list[str]) -> str:
        out: list[str] = []
        for tok in tokens:
            if out and tok not in _NO_SPACE_BEFORE and out[-1][-1:] not in _NO_SPACE_AFTER:
                out.append(" ")
            out.append(tok)
        return "".join(out)


TOKENIZERS = {"char": CharTokenizer, "word": WordTokenizer}


def tokenizer_from_dict(data: dict) -> Tokenizer:
    """Rebuild a tokenizer from ``to_dict()`` output (as stored in checkpoints and JSON files)."""
    kind = data.get("kind")
    if kind not in TOKENIZERS:
        raise ValueError(f"unknown tokenizer kind {kind!r}; expected one of {sorted(TOKENIZERS)}")
    tokens = data.get("tokens")
    if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
        raise ValueError("a tokenizer needs 'tokens': a list of strings")
    return TOKENIZERS[kind](tokens)


def load_tokenizer(path: str | Path) -> Tokenizer:
    return tokenizer_from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
