"""arithmetic: additions ``a+b=c`` of n-digit numbers, such as ``47+8=55``.

The process (sampler, validator and log-probability all follow from it)
-----------------------------------------------------------------------
``a`` and ``b`` are independent and uniform in [0, 10**n), written in decimal without leading zeros;
``c = a + b``. Every valid string has probability 10**(-2n).

``reverse_answer=True`` writes c least-significant digit first (``47+8=55`` stays ``55``, ``95+7=102``
becomes ``201``). A left-to-right model must otherwise produce the highest digit of the sum first, which
depends on every carry below it; reversed, each answer digit needs only the digits at that position and
one carry, and addition becomes far easier to learn. A reversed answer may start with zeros (100 is
written ``001``): it is the sum's usual digits in reverse, and the validator requires exactly that.

The milestone trains on half of all operand pairs and tests exact-match answers on the other half,
by number of carries: ``split_operands``, ``format_question``, ``answer``, ``parse`` and ``carries`` serve it.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import ClassVar

from simplellm.data.decimal_numbers import MAX_DIGITS, is_canonical, num_digits, total_digits_below
from simplellm.data.estimates import Estimate, check_train_size, probability_missing
from simplellm.data.grammar import Grammar
from simplellm.data.params import check_bool, check_int

_SHAPE = re.compile(r"([0-9]+)\+([0-9]+)=([0-9]+)")  # ASCII digits only; canonical form checked apart
MAX_SPLIT_DIGITS = 3  # split_operands lists all 10**(2n) pairs: a million at n=3


@dataclass(frozen=True)
class OperandSplit:
    """Operand pairs (a, b), each sorted: ``train`` for training, ``held_out`` never seen in training."""

    train: list[tuple[int, int]]
    held_out: list[tuple[int, int]]


@dataclass(frozen=True)
class Arithmetic(Grammar):
    name: ClassVar[str] = "arithmetic"
    alphabet: ClassVar[str] = "".join(sorted("0123456789+="))

    n: int = 2
    reverse_answer: bool = False

    def __post_init__(self) -> None:
        check_int("n", self.n, minimum=1, maximum=MAX_DIGITS)
        check_bool("reverse_answer", self.reverse_answer)

    # ---------------------------------------------------------------- the pieces of a problem
    def format_question(self, a: int, b: int) -> str:
        """``"a+b="``: the prompt a model completes."""
        self._check_operand(a)
        self._check_operand(b)
        return f"{a}+{b}="

    def answer(self, a: int, b: int) -> str:
        """The completion of ``format_question(a, b)``: the sum, reversed when ``reverse_answer``."""
        self._check_operand(a)
        self._check_operand(b)
        text = str(a + b)
        return text[::-1] if self.reverse_answer else text

    def parse(self, s: str) -> tuple[int, int, int] | None:
        """(a, b, c) of a valid string, the sum c as a number; None for a string the language cannot emit."""
        match = _SHAPE.fullmatch(s) if isinstance(s, str) else None
        if match is None:
            return None
        a_text, b_text, c_text = match.groups()
        if (
            len(a_text) > self.n
            or len(b_text) > self.n
            or not (is_canonical(a_text) and is_canonical(b_text))
        ):
            return None
        a, b = int(a_text), int(b_text)
        if c_text != self.answer(a, b):
            return None
        return a, b, a + b

    @staticmethod
    def carries(a: int, b: int) -> int:
        """How many columns of the written addition carry a one into the next column."""
        count = carry = 0
        while a or b:
            carry = (a % 10 + b % 10 + carry) // 10
            count += carry
            a, b = a // 10, b // 10
        return count

    def split_operands(self, seed: int, train_fraction: float = 0.5) -> OperandSplit:
        """All operand pairs shuffled by ``seed``; round(train_fraction * 10**(2n)) of them go to training."""
        if self.n > MAX_SPLIT_DIGITS:
            raise ValueError(
                f"split_operands lists every pair, so it allows n <= {MAX_SPLIT_DIGITS}; n is {self.n}"
            )
        if isinstance(train_fraction, bool) or not isinstance(train_fraction, (int, float)):
            raise ValueError(f"train_fraction must be a number between 0 and 1, got {train_fraction!r}")
        if not 0 <= train_fraction <= 1:
            raise ValueError(f"train_fraction must be a number between 0 and 1, got {train_fraction!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed must be an integer, got {seed!r}")
        size = 10**self.n
        pairs = [(a, b) for a in range(size) for b in range(size)]
        random.Random(f"simplellm.data/{seed}/operands").shuffle(pairs)
        cut = round(train_fraction * len(pairs))
        return OperandSplit(sorted(pairs[:cut]), sorted(pairs[cut:]))

    def _check_operand(self, x: int) -> None:
        if isinstance(x, bool) or not isinstance(x, int) or not 0 <= x < 10**self.n:
            raise ValueError(f"operands must be integers in [0, 10**{self.n}), got {x!r}")

    # ---------------------------------------------------------------- sampling and scoring
    def sample(self, rng: random.Random) -> str:
        a, b = rng.randrange(10**self.n), rng.randrange(10**self.n)
        return self.format_question(a, b) + self.answer(a, b)

    def logprob(self, s: str) -> float:
        if not isinstance(s, str):
            raise TypeError(f"logprob expects a str, got {type(s).__name__}")
        return -2 * self.n * math.log(10) if self.parse(s) is not None else -math.inf

    # ---------------------------------------------------------------- exact sums
    def _mean_tokens(self) -> Fraction:
        """E[len(x) + 1] = E[digits(a)] + E[digits(b)] + E[digits(a + b)] + 3 ('+', '=' and the end)."""
        size = 10**self.n
        operand_digits = Fraction(total_digits_below(size), size)
        # digits(c) = 1 + the number of j >= 1 with c >= 10**j
        sum_digits = Fraction(1)
        j = 1
        while 10**j <= 2 * size - 2:
            sum_digits += 1 - Fraction(_pairs_with_sum_below(10**j, size), size * size)
            j += 1
        return 2 * operand_digits + sum_digits + 3

    def entropy_rate(self) -> Estimate:
        return Estimate(2 * self.n * math.log(10) / float(self._mean_tokens()), method="exact: closed form")

    def ideal_novelty(self, train_size: int) -> Estimate:
        check_train_size(train_size)
        return Estimate(
            probability_missing(10.0 ** (-2 * self.n), train_size), method="exact: uniform support"
        )

    def max_length(self) -> int:
        return 2 * self.n + 2 + num_digits(2 * (10**self.n - 1))

    def support_size(self) -> int:
        return 10 ** (2 * self.n)

    def enumerate_support(self) -> Iterator[tuple[str, float]]:
        p = 10.0 ** (-2 * self.n)
        for a in range(10**self.n):
            for b in range(10**self.n):
                yield self.format_question(a, b) + self.answer(a, b), p


def _pairs_with_sum_below(t: int, size: int) -> int:
    """Number of pairs (a, b) in [0, size)**2 with a + b < t, for 0 <= t <= 2 * size - 1."""
    if t <= size:
        return t * (t + 1) // 2
    u = 2 * size - 1 - t  # mirror: a + b >= t  <=>  (size-1-a) + (size-1-b) < u
    return size * size - u * (u + 1) // 2
