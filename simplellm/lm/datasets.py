"""Training data: a language or a text turned into framed token sequences, and batches of them.

Two ways to feed a model, because they answer different questions:

* ``FixedSet``: K training samples drawn once, visited epoch after epoch in a new random order. This is
  the usual setting of machine learning, and the only one in which a model can memorise; novelty is
  measured against these K samples.
* ``FreshSamples``: a new sample from the language for every slot of every batch. No sample is seen
  twice on purpose, so the model can only learn the language itself: the best case for generalisation.

Validation sequences are fixed once and never trained on (for a text: whole held-out lines or sentences,
never the tail of a stream, whose topic would differ from the rest). A sequence longer than the model's
context window is cut to a random window of ``window + 1`` tokens (``window`` inputs, each predicting
the next), drawn afresh each time it is used, so every part of a long sample gets trained on.

Everything random comes from ``random.Random`` generators seeded from one seed; their state is part of
``state_dict()``, so a run resumed from a checkpoint draws exactly the batches it would have drawn.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from simplellm.data import CORPORA, grammar, load_corpus, load_text
from simplellm.lm.tokenizers import CharTokenizer, Tokenizer, WordTokenizer

TokenSequence = list[int]


# ------------------------------------------------------------------ small pieces
def seeded(seed: int, purpose: str) -> random.Random:
    """An independent stream per (seed, purpose); string seeds hash the same on every platform."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    return random.Random(f"simplellm.lm/{seed}/{purpose}")


def rng_state(rng: random.Random) -> dict[str, Any]:
    """``rng``'s state as plain lists and ints: what ``torch.load(weights_only=True)`` accepts everywhere."""
    version, internal, gauss_next = rng.getstate()
    return {"version": version, "internal": list(internal), "gauss_next": gauss_next}


def set_rng_state(rng: random.Random, state: dict[str, Any]) -> None:
    rng.setstate((state["version"], tuple(state["internal"]), state["gauss_next"]))


def frame(texts: Sequence[str], tokenizer: Tokenizer) -> list[TokenSequence]:
    """``BOS x1 .. xn EOS`` token ids of every text."""
    return [tokenizer.encode(t) for t in texts]


def crop(sequence: TokenSequence, window: int | None, rng: random.Random) -> TokenSequence:
    """A random run of ``window + 1`` tokens of a sequence too long for the model, else the sequence.

    Every start is equally likely, so the first and the last tokens are trained on less often than the
    middle ones; the alternative, always the start, would never teach the model how long samples end.
    """
    if window is None or len(sequence) <= window + 1:
        return sequence
    start = rng.randrange(len(sequence) - window)
    return sequence[start : start + window + 1]


def split_sentences(text: str) -> list[str]:
    """Sentences of a running text: a break after ., ! or ? (and any closing quote) followed by space."""
    pieces = re.split(r"(?<=[.!?])[\"')\]]*\s+", " ".join(text.split()))
    return [p.strip() for p in pieces if p.strip()]


# ------------------------------------------------------------------ the two ways to feed a model
class TrainingData:
    """What the trainer needs: a tokenizer, validation sequences, and batch after batch of training ones.

    ``config`` is a JSON-able dict that rebuilds the same data with :func:`data_from_config`; checkpoints
    store it, so a resumed run or a sampler knows what the model was trained on.
    """

    tokenizer: Tokenizer
    validation: list[TokenSequence]
    config: dict[str, Any]

    def next_batch(self, size: int, window: int | None = None) -> list[TokenSequence]:
        """The next ``size`` training sequences, each cropped to at most ``window + 1`` tokens."""
        raise NotImplementedError

    def training_sequences(self, limit: int) -> list[TokenSequence]:
        """Up to ``limit`` whole training sequences, for models fitted in one pass (the counting n-gram)."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def load_state_dict(self, state: dict[str, Any]) -> None:
        raise NotImplementedError


class FixedSet(TrainingData):
    """K training sequences, shuffled anew at every epoch (a permutation seeded by the epoch number)."""

    def __init__(
        self,
        train: list[TokenSequence],
        validation: list[TokenSequence],
        tokenizer: Tokenizer,
        config: dict[str, Any],
        seed: int = 0,
    ) -> None:
        if not train:
            raise ValueError("a fixed training set needs at least one sequence")
        self.train, self.validation, self.tokenizer, self.config = train, validation, tokenizer, config
        self.seed = seed
        self.epoch, self.position = 0, 0
        self.order = self._order(0)
        self.crop_rng = seeded(seed, "crop")

    def _order(self, epoch: int) -> list[int]:
        # the order is a function of (seed, epoch) alone: a checkpoint needs two ints, not K of them
        order = list(range(len(self.train)))
        seeded(self.seed, f"epoch/{epoch}").shuffle(order)
        return order

    def next_batch(self, size: int, window: int | None = None) -> list[TokenSequence]:
        batch = []
        for _ in range(size):
            if self.position == len(self.order):
                self.epoch, self.position = self.epoch + 1, 0
                self.order = self._order(self.epoch)
            batch.append(crop(self.train[self.order[self.position]], window, self.crop_rng))
            self.position += 1
        return batch

    def training_sequences(self, limit: int | None = None) -> list[TokenSequence]:
        return self.train[:limit]

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "position": self.position, "crop_rng": rng_state(self.crop_rng)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self.order = self._order(self.epoch)
        set_rng_state(self.crop_rng, state["crop_rng"])


class FreshSamples(TrainingData):
    """A new sample from the language for every training sequence."""

    def __init__(
        self,
        language: Any,
        validation: list[TokenSequence],
        tokenizer: Tokenizer,
        config: dict[str, Any],
        seed: int = 0,
    ) -> None:
        self.language, self.validation, self.tokenizer, self.config = language, validation, tokenizer, config
        # our own generators rather than ``language.stream(seed)``: a generator object's position cannot
        # be saved in a checkpoint, a Random's state can
        self.sample_rng = seeded(seed, "fresh")
        self.crop_rng = seeded(seed, "crop")

    def _draw(self) -> TokenSequence:
        return self.tokenizer.encode(self.language.sample(self.sample_rng))

    def next_batch(self, size: int, window: int | None = None) -> list[TokenSequence]:
        return [crop(self._draw(), window, self.crop_rng) for _ in range(size)]

    def training_sequences(self, limit: int) -> list[TokenSequence]:
        return [self._draw() for _ in range(limit)]

    def state_dict(self) -> dict[str, Any]:
        return {"sample_rng": rng_state(self.sample_rng), "crop_rng": rng_state(self.crop_rng)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        set_rng_state(self.sample_rng, state["sample_rng"])
        set_rng_state(self.crop_rng, state["crop_rng"])


# ------------------------------------------------------------------ sources
def grammar_data(
    language: Any, train_size: int | None = None, val_size: int = 512, seed: int = 0
) -> TrainingData:
    """Data from a synthetic language: a fixed set of ``train_size`` samples, or fresh ones (None).

    With a fixed set, validation samples are drawn from the language *outside* the training set
    (``language.splits``), which measures generalisation but sits a little above the entropy rate; with
    fresh samples, validation samples are plain draws, so a perfect model's loss *is* the entropy rate.
    """
    if train_size is not None and train_size < 1:
        raise ValueError(f"train_size must be >= 1 (or None for fresh samples), not {train_size}")
    tokenizer = CharTokenizer(language.alphabet)
    config = {
        "source": "grammar",
        "grammar": dict(language.config),
        "train_size": train_size,
        "val_size": val_size,
        "seed": seed,
    }
    if train_size is None:
        validation = language.splits(seed, 0, val_size).validation
        return FreshSamples(language, frame(validation, tokenizer), tokenizer, config, seed)
    splits = language.splits(seed, train_size, val_size)
    return FixedSet(
        frame(splits.train, tokenizer), frame(splits.validation, tokenizer), tokenizer, config, seed
    )


def load_texts(source: str, unit: str = "line") -> list[str]:
    """The samples of a shipped corpus (by name) or of a UTF-8 file: its lines, or its sentences."""
    if unit not in ("line", "sentence"):
        raise ValueError(f"unit must be 'line' or 'sentence', not {unit!r}")
    mode = "lines" if unit == "line" else "text"
    if source in CORPORA and not Path(source).exists():
        loaded = load_corpus(source, mode=mode)
    else:
        loaded = load_text(source, mode=mode)
    texts = loaded if unit == "line" else split_sentences(loaded)
    if len(texts) < 2:
        raise ValueError(f"{source} holds {len(texts)} {unit}(s); training and validation need at least 2")
    return list(texts)


def text_data(
    source: str,
    tokenizer: str = "char",
    unit: str = "line",
    val_fraction: float = 0.1,
    min_frequency: int = 2,
    seed: int = 0,
) -> FixedSet:
    """A text as a fixed set of lines (or sentences); a random ``val_fraction`` of them is held out.

    The tokenizer's vocabulary comes from the training part only: what validation holds that training
    lacks becomes UNK, as it would for any text the model meets later. Word tokenizers keep words seen at
    least ``min_frequency`` times, so that UNK occurs in training and the model learns to predict it.
    """
    if tokenizer not in ("char", "word"):
        raise ValueError(f"tokenizer must be 'char' or 'word', not {tokenizer!r}")
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), not {val_fraction}")
    texts = load_texts(source, unit)
    order = list(range(len(texts)))
    seeded(seed, "text-split").shuffle(order)
    n_val = min(len(texts) - 1, max(1, round(val_fraction * len(texts))))
    held_out = set(order[:n_val])
    train = [t for i, t in enumerate(texts) if i not in held_out]  # file order kept within each part
    validation = [t for i, t in enumerate(texts) if i in held_out]
    if tokenizer == "char":
        tok: Tokenizer = CharTokenizer.from_texts(train)
    else:
        tok = WordTokenizer.from_texts(train, min_frequency=min_frequency)
    config = {
        "source": "text",
        "text": str(source),
        "tokenizer": tokenizer,
        "unit": unit,
        "val_fraction": val_fraction,
        "min_frequency": min_frequency,
        "seed": seed,
    }
    return FixedSet(frame(train, tok), frame(validation, tok), tok, config, seed)


def data_from_config(config: dict[str, Any]) -> TrainingData:
    """Rebuild the data described by ``TrainingData.config`` (as stored in a checkpoint)."""
    source = config.get("source")
    if source == "grammar":
        language = grammar(**config["grammar"])
        return grammar_data(language, config["train_size"], config["val_size"], config["seed"])
    if source == "text":
        keys = ("tokenizer", "unit", "val_fraction", "min_frequency", "seed")
        return text_data(config["text"], **{k: config[k] for k in keys})
    raise ValueError(f"unknown data source {source!r} in a data configuration; expected 'grammar' or 'text'")
