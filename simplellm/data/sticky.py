"""sticky: runs of one character class, each at least n long.

The process (sampler, validator and log-probability all follow from it)
-----------------------------------------------------------------------
Characters come in three classes: lower-case a-z (26), upper-case A-Z (26) and digits 0-9 (10).
A *run* is a maximal block of characters of one class. A string is written left to right:

1. The first character's class is uniform over the three classes.
2. After each character, with the string ``length`` long and its last run ``run`` long:

   * if ``length == max_len``, the string ends (``max_len=None``: no bound);
   * else, if ``length >= min_len``, it ends with probability ``p_stop``;
   * else the next character's class is chosen:

     - ``run < n``: the same class (a run may not be left before it is n long);
     - ``run >= n`` (default): the same class with probability ``1 - p_switch``, otherwise one of the
       two other classes, ``p_switch / 2`` each;
     - ``run == n`` with ``strict=True``: one of the two other classes, 1/2 each (``p_switch`` is unused).

3. Every character is uniform within its class.

So a string is valid exactly when every run except the last is at least n long (strict: exactly n, and
the last run at most n; the end of the string may cut the last run short), and its length lies in
[min_len, max_len]. Example, n=2: ``acXYZ13a``.

Why the length is memoryless. By default ``min_len=1`` and ``max_len=None``: the string may end after any
character with the same probability. Then whether the next character is allowed depends only on the last
n characters (are they one class?), so a counting n-gram model of order n+1 can reach 100% in-distribution.
A bounded length would make validity depend on the whole string, which no n-gram can count. ``max_len``
stays available, and the length is then forced to end at ``max_len`` so probabilities still sum to 1.

Defaults: n=3, ``p_stop=1/16`` (mean length 16 with min_len=1) and ``p_switch=1/2`` (a run lasts n + 1
characters on average), so at n = 2, 3, 4 a typical string holds several runs.
"""

from __future__ import annotations

import bisect
import math
import random
import string
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import ClassVar

from simplellm.data import class_chain
from simplellm.data.class_chain import Move, Step
from simplellm.data.estimates import Estimate, check_train_size
from simplellm.data.grammar import Grammar
from simplellm.data.params import check_bool, check_int, check_probability

CLASS_CHARS = (string.ascii_lowercase, string.ascii_uppercase, string.digits)
CLASS_SIZES = tuple(len(chars) for chars in CLASS_CHARS)
CLASS_OF = {ch: cls for cls, chars in enumerate(CLASS_CHARS) for ch in chars}

# A state is (length, class of the last run, length of the last run capped at n). With max_len=None the
# length is capped at min_len too: beyond it every length behaves alike, so the states are finitely many.
START = (0, -1, 0)


@dataclass(frozen=True)
class Sticky(Grammar):
    name: ClassVar[str] = "sticky"
    alphabet: ClassVar[str] = "".join(sorted("".join(CLASS_CHARS)))

    n: int = 3
    strict: bool = False
    p_stop: float = 1 / 16
    p_switch: float = 0.5
    min_len: int = 1
    max_len: int | None = None
    # caches of the process per state, filled on first use (not part of the language's identity)
    _steps: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    _tables: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    _chars: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_int("n", self.n, minimum=1)
        check_bool("strict", self.strict)
        object.__setattr__(self, "p_stop", check_probability("p_stop", self.p_stop))
        object.__setattr__(self, "p_switch", check_probability("p_switch", self.p_switch))
        check_int("min_len", self.min_len, minimum=1)
        if self.max_len is None:
            if self.p_stop == 0:
                raise ValueError("p_stop must be > 0 when max_len is None, or strings would never end")
        else:
            check_int("max_len", self.max_len, minimum=self.min_len, minimum_text="min_len")

    # ---------------------------------------------------------------- the process, once
    def _step(self, state: tuple[int, int, int]) -> Step:
        step = self._steps.get(state)
        if step is None:
            step = self._steps[state] = self._make_step(state)
        return step

    def _make_step(self, state: tuple[int, int, int]) -> Step:
        length, cls, run = state
        if length == 0:
            return self._step_with(state, 0.0, [(c, 1 / 3) for c in range(3)])
        if self.max_len is not None and length >= self.max_len:
            return self._step_with(state, 1.0, [])
        p_end = self.p_stop if length >= self.min_len else 0.0
        go = 1.0 - p_end
        others = [c for c in range(3) if c != cls]
        if run < self.n:
            classes = [(cls, go)]
        elif self.strict:
            classes = [(c, go / 2) for c in others]
        else:
            classes = [(cls, go * (1 - self.p_switch))] + [(c, go * self.p_switch / 2) for c in others]
        return self._step_with(state, p_end, classes)

    def _step_with(self, state: tuple[int, int, int], p_end: float, classes: list[tuple[int, float]]) -> Step:
        moves = tuple(Move(c, p, self._advance(state, c)) for c, p in classes if p > 0)
        return Step(p_end, moves)

    def _advance(self, state: tuple[int, int, int], c: int) -> tuple[int, int, int]:
        length, cls, run = state
        length += 1
        if self.max_len is None:
            length = min(length, self.min_len)
        return (length, c, min(run + 1, self.n) if c == cls else 1)

    # ---------------------------------------------------------------- sampling and scoring
    # The two loops below run once per character of every training sample the lm milestone draws and
    # scores (millions of them), so each looks its state up in a table built on first use.
    def sample(self, rng: random.Random) -> str:
        chars = []
        state = START
        tables, uniform = self._tables, rng.random
        while True:
            # One uniform number picks the end or one character, each owning a slice of [0, 1) as wide
            # as its probability (float rounding shifts a slice edge by ~1e-16, far below what tests see).
            thresholds, outcomes, last = tables.get(state) or self._sampling_table(state)
            i = bisect.bisect_right(thresholds, uniform())
            outcome = outcomes[i if i < last else last]  # a draw past the last edge (rounding): the last
            if outcome is None:
                break
            ch, state = outcome
            chars.append(ch)
        return "".join(chars)

    def _sampling_table(self, state: tuple[int, int, int]) -> tuple[list[float], list, int]:
        table = self._tables.get(state)
        if table is None:
            step = self._step(state)
            thresholds, outcomes, total = [step.p_end], [None], step.p_end
            for move in step.moves:
                each = move.p / CLASS_SIZES[move.cls]
                for ch in CLASS_CHARS[move.cls]:
                    total += each
                    thresholds.append(total)
                    outcomes.append((ch, move.next_state))
            table = self._tables[state] = (thresholds, outcomes, len(outcomes) - 1)
        return table

    def logprob(self, s: str) -> float:
        if not isinstance(s, str):
            raise TypeError(f"logprob expects a str, got {type(s).__name__}")
        total = 0.0
        state = START
        chars = self._chars
        for ch in s:
            key = (state, ch)
            move = chars[key] if key in chars else self._char_move(key)
            if move is None:
                return -math.inf
            logp, state = move
            total += logp
        p_end = self._step(state).p_end
        return total + math.log(p_end) if p_end > 0 else -math.inf

    def _char_move(self, key: tuple[tuple[int, int, int], str]) -> tuple[float, tuple[int, int, int]] | None:
        """log p(ch | state) and the next state, or None where ch cannot follow (cached per state, ch)."""
        state, ch = key
        move = self._step(state).by_class.get(CLASS_OF.get(ch, -1))
        entry = None if move is None else (math.log(move.p / CLASS_SIZES[move.cls]), move.next_state)
        if ch in CLASS_OF:  # any other character is refused without being remembered
            self._chars[key] = entry
        return entry

    # ---------------------------------------------------------------- exact sums
    def entropy_rate(self) -> Estimate:
        return class_chain.entropy_rate(self._step, START, CLASS_SIZES)

    def ideal_novelty(self, train_size: int) -> Estimate:
        check_train_size(train_size)
        return class_chain.ideal_novelty(self._step, START, CLASS_SIZES, train_size)

    def max_length(self) -> int | None:
        return self.max_len

    def support_size(self) -> int | None:
        return None if self.max_len is None else class_chain.support_size(self._step, START, CLASS_SIZES)

    def enumerate_support(self) -> Iterator[tuple[str, float]]:
        if self.max_len is None:
            return super().enumerate_support()
        return class_chain.enumerate_support(self._step, START, CLASS_CHARS)
