"""Shared pieces for the model tests: a small language with known structure, and the re-reading reference."""

import numpy as np
import pytest

from simplellm.lm.models.base import LanguageModel
from simplellm.lm.tokenizers import BOS, EOS

LETTERS = range(4, 10)  # six letters after the four special tokens
VOCAB = 10


def second_order_language(num: int, seed: int = 0, max_letters: int = 12) -> list[list[int]]:
    """Framed samples of a sparse second-order Markov chain: each letter follows from the two tokens
    before it, and only two of the six letters may follow any pair, so most trigrams never occur."""
    table_rng = np.random.default_rng(1234)  # the language is fixed; `seed` only picks its samples
    pairs = [(a, b) for a in (BOS, *LETTERS) for b in LETTERS]
    allowed = {pair: table_rng.choice(LETTERS, size=2, replace=False) for pair in pairs}
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(num):
        seq = [BOS, int(rng.choice(LETTERS))]
        while len(seq) - 1 < max_letters and rng.random() > 0.15:
            seq.append(int(rng.choice(allowed[seq[-2], seq[-1]])))
        samples.append([*seq, EOS])
    return samples


class Rereading:
    """A model seen only through the default start/advance/select, which re-read the whole context at
    every step: the reference that carried hidden states and key/value caches must reproduce."""

    def __init__(self, model: LanguageModel):
        self.model = model
        self.vocab_size = model.vocab_size

    def start(self, contexts):
        return LanguageModel.start(self.model, contexts)

    def advance(self, state, tokens):
        return LanguageModel.advance(self.model, state, tokens)

    def select(self, state, rows):
        return LanguageModel.select(self.model, state, rows)


@pytest.fixture(scope="session")
def language():
    """(train, other): 300 and 100 samples of the second-order language."""
    return second_order_language(300, seed=0), second_order_language(100, seed=1)


@pytest.fixture(scope="session")
def make_language():
    return second_order_language


@pytest.fixture(scope="session")
def rereading():
    return Rereading
