"""Decimal numerals the way our languages write them: ASCII digits, no sign, no leading zeros."""

from __future__ import annotations

import re

# Numbers of up to MAX_DIGITS digits: far beyond what a character model can learn, and well inside
# Python's limit on converting long integers to and from text (4300 digits).
MAX_DIGITS = 100

# [0-9], not \d: \d also matches other scripts' digits ('٣', '३'), which int() would happily read.
CANONICAL = re.compile(r"0|[1-9][0-9]*")


def is_canonical(text: str) -> bool:
    """True for '0', '7', '120'; False for '', '07', '+7', ' 7', '٧'."""
    return CANONICAL.fullmatch(text) is not None


def num_digits(x: int) -> int:
    return len(str(x))


def total_digits_below(x: int) -> int:
    """Digits needed to write every integer in [0, x): 0..9 take 1 each, 10..99 take 2 each, and so on."""
    total, width, low = 0, 1, 0
    while low < x:
        high = 10**width  # numbers with `width` digits are [low, high)
        total += width * (min(x, high) - low)
        low, width = high, width + 1
    return total
