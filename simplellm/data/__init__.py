"""Synthetic languages whose every sample a program can check, and small text corpora.

Pure Python standard library: nothing here imports torch, numpy or the rest of simplellm.

    >>> import random
    >>> from simplellm.data import grammar
    >>> g = grammar("sticky", n=3)
    >>> x = g.sample(random.Random(0))
    >>> g.is_valid(x), g.is_valid("aB")
    (True, False)

Languages: ``sticky`` (runs of a character class at least n long), ``counting`` (consecutive numbers),
``arithmetic`` (additions). Each module's docstring defines its process exactly.
"""

from __future__ import annotations

from typing import Any

from simplellm.data.arithmetic import Arithmetic, OperandSplit
from simplellm.data.corpora import CORPORA, load_corpus, load_text
from simplellm.data.counting import Counting
from simplellm.data.estimates import Estimate, monte_carlo_entropy_rate, monte_carlo_ideal_novelty
from simplellm.data.grammar import Grammar
from simplellm.data.score import SampleScore, score_samples, wilson_interval
from simplellm.data.splits import Splits
from simplellm.data.sticky import Sticky

_LANGUAGES: dict[str, type[Grammar]] = {cls.name: cls for cls in (Sticky, Counting, Arithmetic)}
GRAMMARS: tuple[str, ...] = tuple(sorted(_LANGUAGES))


def grammar(name: str, **params: Any) -> Grammar:
    """The language called ``name`` with the given parameters; ``grammar(**g.config)`` rebuilds ``g``.

    Raises ValueError, saying what is allowed, for an unknown name, an unknown parameter or a bad value.
    """
    if name not in _LANGUAGES:
        raise ValueError(f"unknown language {name!r}; choose one of: {', '.join(GRAMMARS)}")
    language = _LANGUAGES[name]
    allowed = language_parameters(name)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValueError(
            f"{name} does not take {', '.join(unknown)}; its parameters are: "
            + ", ".join(f"{key}={value!r}" for key, value in allowed.items())
        )
    return language(**params)


def language_parameters(name: str) -> dict[str, Any]:
    """The parameters of language ``name`` with their defaults."""
    if name not in _LANGUAGES:
        raise ValueError(f"unknown language {name!r}; choose one of: {', '.join(GRAMMARS)}")
    defaults = _LANGUAGES[name]()
    return {key: value for key, value in defaults.config.items() if key != "name"}


__all__ = [
    "CORPORA",
    "GRAMMARS",
    "Arithmetic",
    "Counting",
    "Estimate",
    "Grammar",
    "OperandSplit",
    "SampleScore",
    "Splits",
    "Sticky",
    "grammar",
    "language_parameters",
    "load_corpus",
    "load_text",
    "monte_carlo_entropy_rate",
    "monte_carlo_ideal_novelty",
    "score_samples",
    "wilson_interval",
]
