"""The model family, one file per idea. ``build_model(family, vocab_size=..., **options)`` makes any of them.

Every model has a ``Config`` dataclass (``vocab_size`` plus its own options, each with a default that
works), is built as ``Model(config)``, and names its ``family``; a checkpoint stores the family and
``dataclasses.asdict(config)``, which is all it takes to rebuild the model.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from simplellm.lm.models.base import LanguageModel, TorchLanguageModel, pad_batch
from simplellm.lm.models.bigram import NeuralBigram
from simplellm.lm.models.mlp import MLPLanguageModel
from simplellm.lm.models.ngram import CountNGram
from simplellm.lm.models.numpy_ngram import NumpyNGram
from simplellm.lm.models.numpy_transformer import NumpyTransformer
from simplellm.lm.models.rnn import GRULanguageModel, RNNLanguageModel
from simplellm.lm.models.transformer import GPT

# family name -> class, from counting to attention
FAMILIES: dict[str, type[LanguageModel]] = {
    "ngram": CountNGram,
    "bigram": NeuralBigram,
    "mlp": MLPLanguageModel,
    "rnn": RNNLanguageModel,
    "gru": GRULanguageModel,
    "transformer": GPT,
    # the same ideas without autograd: backward passes written by hand in NumPy
    "numpy-ngram": NumpyNGram,
    "numpy-transformer": NumpyTransformer,
}


def model_class(family: str) -> type[LanguageModel]:
    if family not in FAMILIES:
        raise ValueError(f"unknown model {family!r}; choose one of {', '.join(sorted(FAMILIES))}")
    return FAMILIES[family]


def build_model(family: str, **options: Any) -> LanguageModel:
    """A fresh model of ``family``; ``options`` fill its Config (unknown ones are an error)."""
    cls = model_class(family)
    known = {f.name for f in fields(cls.Config)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(
            f"{family} has no option(s) {', '.join(unknown)}; its options are {', '.join(sorted(known))}"
        )
    return cls(cls.Config(**options))


__all__ = [
    "FAMILIES",
    "GPT",
    "CountNGram",
    "GRULanguageModel",
    "LanguageModel",
    "MLPLanguageModel",
    "NeuralBigram",
    "NumpyNGram",
    "NumpyTransformer",
    "RNNLanguageModel",
    "TorchLanguageModel",
    "build_model",
    "model_class",
    "pad_batch",
]
