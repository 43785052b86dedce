"""Validators written again, from the rules in words rather than from the generating process.

The languages' ``is_valid`` follows from their ``logprob``, so ``is_valid == (logprob > -inf)`` holds by
construction. These second, independent readings of the rules are what the tests compare against:
two implementations that agree on hundreds of thousands of strings are unlikely to share a bug.
"""

from __future__ import annotations

import itertools
import string

ASCII_DIGITS = set(string.digits)


def char_class(ch: str) -> str:
    if ch in string.ascii_lowercase:
        return "lower"
    if ch in string.ascii_uppercase:
        return "upper"
    return "digit"


def sticky_valid(s: str, n: int, strict: bool = False, min_len: int = 1, max_len: int | None = None) -> bool:
    """Every maximal run of one class but the last is >= n long (strict: == n, and the last <= n)."""
    if not s or any(ch not in string.ascii_letters + string.digits for ch in s):
        return False
    if len(s) < min_len or (max_len is not None and len(s) > max_len):
        return False
    runs = [len(list(group)) for _, group in itertools.groupby(s, key=char_class)]
    if strict:
        return all(r == n for r in runs[:-1]) and runs[-1] <= n
    return all(r >= n for r in runs[:-1])


def plain_number(text: str, max_digits: int) -> bool:
    """ASCII digits, no sign, no leading zero, at most max_digits of them."""
    if not text or len(text) > max_digits or any(ch not in ASCII_DIGITS for ch in text):
        return False
    return text == "0" or text[0] != "0"


def counting_valid(s: str, n: int, max_count: int = 8) -> bool:
    parts = s.split(",")
    if not 2 <= len(parts) <= max_count or not all(plain_number(p, n) for p in parts):
        return False
    numbers = [int(p) for p in parts]
    return all(b == a + 1 for a, b in itertools.pairwise(numbers))


def arithmetic_valid(s: str, n: int, reverse_answer: bool = False) -> bool:
    if s.count("+") != 1 or s.count("=") != 1 or s.index("+") > s.index("="):
        return False
    question, c = s.split("=")
    a, b = question.split("+")
    if not (plain_number(a, n) and plain_number(b, n)):
        return False
    expected = str(int(a) + int(b))
    return c == (expected[::-1] if reverse_answer else expected)


def carries(a: int, b: int) -> int:
    """Column i carries into column i+1 exactly when the numbers' last i+1 digits add up past 10**(i+1)."""
    return sum(1 for i in range(1, 40) if a % 10**i + b % 10**i >= 10**i)
