"""Shared pieces of the language tests."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Iterator

from simplellm.data import Grammar

# Strings no language can emit and that a sloppy validator might accept or choke on.
STRANGE_STRINGS = [
    "",
    " ",
    "\n",
    "\x00",
    "\x1b[31m",
    "٣",  # Arabic-Indic digit three: str.isdigit() is True, int() reads it
    "१२",  # Devanagari digits
    "１２",  # full-width digits
    "²",
    "é",
    "🙂",
    "\ud800",  # a lone surrogate: a valid Python str, not valid UTF-8
    "a" * 10_000,
    "1" * 10_000,
    "1," * 5_000,
    "1+" * 5_000,
]


def draw(g: Grammar, count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [g.sample(rng) for _ in range(count)]


def all_strings(alphabet: str, max_length: int) -> Iterator[str]:
    """Every string over ``alphabet`` of length 0 to max_length."""
    for length in range(max_length + 1):
        for chars in itertools.product(alphabet, repeat=length):
            yield "".join(chars)


def check_exhaustively(
    g: Grammar, alphabet: str, max_length: int, reference: Callable[[str], bool]
) -> set[str]:
    """For every string up to max_length: logprob and is_valid agree with each other and with the reference
    validator. Returns the valid strings."""
    valid = set()
    for s in all_strings(alphabet, max_length):
        accepted = g.logprob(s) > -math.inf
        assert g.is_valid(s) is accepted, s
        assert accepted == reference(s), f"{s!r}: language says {accepted}, reference says {not accepted}"
        if accepted:
            valid.add(s)
    return valid


def mutations(s: str, extra: str, rng: random.Random) -> list[str]:
    """Near misses of s: one character deleted, inserted, replaced or swapped, at random places."""
    out = []
    symbols = extra
    for _ in range(8):
        i = rng.randrange(len(s) + 1)
        ch = rng.choice(symbols)
        out.append(s[:i] + ch + s[i:])
        if s:
            j = rng.randrange(len(s))
            out.append(s[:j] + s[j + 1 :])
            out.append(s[:j] + ch + s[j + 1 :])
            k = rng.randrange(len(s))
            chars = list(s)
            chars[j], chars[k] = chars[k], chars[j]
            out.append("".join(chars))
    return out
