"""How much of a language a model has learned, read against what a perfect model would score.

Every figure here compares a model with the language that generated its data, and each comes with the
number it should be read against (see "How results are judged" in the design guide):

* ``in_distribution`` -- the share of the model's samples (temperature 1) that the validator accepts,
  with a 95% Wilson interval. A sample counts only if it is *finished*: it ends with EOS and holds no
  special token (PAD, UNK, BOS) before it. Unfinished samples are strings the language cannot emit.
* novelty -- the share of accepted samples that are not training strings, beside ``ideal_novelty``:
  what an exact model would score against the same training set. Far below the ideal: memorising.
* ``paired_excess`` -- cross-entropy on fresh samples (nats per token, EOS counted) beside the entropy
  rate, and their difference measured sample by sample: the mean of ``-log q(x) + log p(x)`` over
  fresh ``x ~ p`` divided by the mean token count. That is the KL divergence KL(p || q) per token.
  Measured in pairs, the noise of ``-log p(x)`` (which is large: strings differ a lot in probability)
  cancels, so a few thousand samples pin the excess down to a few thousandths of a nat.
* ``arithmetic_exact_match`` -- greedy answers to held-out additions, by number of carries.
* ``smallest_reaching``, ``largest_jump`` and ``predicted_threshold`` -- for a sweep over an n-gram's
  order or an MLP's context: where the sweep first reaches its target, where it rises most, and where
  theory says it must.

Nothing here trains; every function takes a model that answers the questions of
``simplellm.lm.models.base.LanguageModel`` (so counts, NumPy and torch models are judged alike).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from simplellm.data import Grammar, wilson_interval
from simplellm.lm.models.base import LanguageModel
from simplellm.lm.sampling import continue_batch
from simplellm.lm.tokenizers import BOS, EOS, PAD, UNK, Tokenizer

#: a model whose novelty is more than this below the ideal is reported as memorising (3 points)
MEMORISING_MARGIN = 0.03


# ------------------------------------------------------------------ samples -> text
def finished_text(ids: Sequence[int], tokenizer: Tokenizer) -> str | None:
    """The text of generated ``ids`` if they form a finished sample, else None.

    Finished: the last id is EOS and no id before it is a special token. ``Tokenizer.decode`` drops PAD
    and BOS, so without this check a model that emits BOS mid-sample could pass for a valid one.
    """
    if len(ids) == 0 or int(ids[-1]) != EOS:
        return None
    body = [int(i) for i in ids[:-1]]
    if any(i in (PAD, UNK, BOS, EOS) for i in body):
        return None
    return tokenizer.decode(body)


def generate_texts(
    model: Any,
    tokenizer: Tokenizer,
    num: int,
    *,
    seed: int = 0,
    temperature: float = 1.0,
    max_new_tokens: int = 256,
    batch_size: int = 256,
) -> list[str | None]:
    """``num`` samples of ``model`` from BOS, as text; None for each unfinished one."""
    ids = model.generate(
        num, seed=seed, temperature=temperature, max_new_tokens=max_new_tokens, batch_size=batch_size
    )
    return [finished_text(s, tokenizer) for s in ids]


# ------------------------------------------------------------------ in-distribution and novelty
@dataclass(frozen=True)
class GenerationScore:
    """How a list of generated samples fares against a language and a training set."""

    total: int
    valid: int  # accepted by the validator (unfinished samples never are)
    new: int  # valid and not a training string
    unfinished: int  # no EOS within the length limit, or a special token inside

    @property
    def in_distribution(self) -> float:
        return self.valid / self.total if self.total else math.nan

    @property
    def interval(self) -> tuple[float, float]:
        """95% Wilson interval of the in-distribution share."""
        return wilson_interval(self.valid, self.total)

    @property
    def novelty(self) -> float:
        return self.new / self.valid if self.valid else math.nan

    def to_dict(self) -> dict[str, Any]:
        low, high = self.interval
        return {
            **asdict(self),
            "in_distribution": self.in_distribution,
            "interval": [low, high],
            "novelty": self.novelty,
        }


def score_texts(g: Grammar, texts: Iterable[str | None], train: Iterable[str] = ()) -> GenerationScore:
    """Count valid and new samples; None stands for an unfinished sample (invalid)."""
    train_set = train if isinstance(train, (set, frozenset)) else set(train)
    total = valid = new = unfinished = 0
    for x in texts:
        total += 1
        if x is None:
            unfinished += 1
        elif g.is_valid(x):
            valid += 1
            new += x not in train_set
    return GenerationScore(total, valid, new, unfinished)


def in_distribution(
    model: Any,
    g: Grammar,
    tokenizer: Tokenizer,
    num: int,
    *,
    train: Iterable[str] = (),
    seed: int = 0,
    temperature: float = 1.0,
    max_new_tokens: int = 256,
) -> GenerationScore:
    """Generate ``num`` samples (temperature 1 by default) and score them against ``g`` and ``train``."""
    texts = generate_texts(
        model, tokenizer, num, seed=seed, temperature=temperature, max_new_tokens=max_new_tokens
    )
    return score_texts(g, texts, train)


def ideal_novelty(g: Grammar, train: Iterable[str]) -> float:
    """The novelty an exact model would have against this training set: 1 - p(training strings).

    An exact model's sample is a training string with probability sum of p(x) over the distinct
    training strings, so this is exact for the set at hand. ``g.ideal_novelty(T)`` is its average over
    all sets of T independent draws.
    """
    # max: when training covers the support, rounding could leave -1e-16
    return max(0.0, 1.0 - math.fsum(math.exp(g.logprob(x)) for x in set(train)))


def is_memorising(novelty: float, ideal: float, margin: float = MEMORISING_MARGIN) -> bool:
    """More than ``margin`` below the ideal novelty: the model repeats its training set."""
    return bool(novelty < ideal - margin)


# ------------------------------------------------------------------ losses against the entropy rate
@dataclass(frozen=True)
class LossReport:
    """Cross-entropy on fresh samples beside the entropy rate, and the paired excess, in nats per token.

    ``excess`` is KL(p || q) per token; ``excess_se`` its standard error (delta method, as for a
    ratio of means). ``unseen`` counts samples the model gives probability 0 (then both are infinite).
    """

    samples: int
    mean_tokens: float
    cross_entropy: float
    cross_entropy_se: float
    entropy_rate: float
    excess: float
    excess_se: float
    unseen: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ratio_of_means(values: np.ndarray, tokens: np.ndarray) -> tuple[float, float]:
    """sum(values) / sum(tokens) and its standard error: Var(A/B) ~ Var(A - R B) / (m E[B]^2)."""
    m = len(values)
    if not np.all(np.isfinite(values)):
        return math.inf, math.nan
    rate = float(values.sum() / tokens.sum())
    if m < 2:
        return rate, math.nan
    residuals = values - rate * tokens
    return rate, float(np.sqrt(residuals.var(ddof=1) / m) / tokens.mean())


def paired_excess(model: Any, g: Grammar, tokenizer: Tokenizer, samples: Sequence[str]) -> LossReport:
    """Cross-entropy of ``model`` on ``samples`` (fresh draws of ``g``) and its excess over ``g``'s.

    The samples must be fresh, unconditioned draws (``g.stream(seed)``): a validation set drawn outside
    the training set is rarer than the language, and even a perfect model's loss on it is too high.
    """
    if len(samples) == 0:
        raise ValueError("paired_excess needs at least one sample")
    sequences = [tokenizer.encode(x) for x in samples]
    logq = np.asarray(model.sequence_logprobs(sequences), dtype=np.float64)
    logp = np.array([g.logprob(x) for x in samples])
    if not np.all(np.isfinite(logp)):
        raise ValueError("paired_excess needs samples of the language (some have probability 0 under it)")
    tokens = np.array([len(s) - 1 for s in sequences], dtype=np.float64)
    ce, ce_se = _ratio_of_means(-logq, tokens)
    excess, excess_se = _ratio_of_means(logp - logq, tokens)
    return LossReport(
        samples=len(samples),
        mean_tokens=float(tokens.mean()),
        cross_entropy=ce,
        cross_entropy_se=ce_se,
        entropy_rate=float(g.entropy_rate().value),
        excess=excess,
        excess_se=excess_se,
        unseen=int(np.sum(~np.isfinite(logq))),
    )


def fresh_samples(g: Grammar, num: int, seed: int) -> list[str]:
    """The first ``num`` samples of ``g.stream(seed)``: unconditioned draws, never a training split."""
    stream = g.stream(seed)
    return [next(stream) for _ in range(num)]


# ------------------------------------------------------------------ arithmetic: answers to held-out sums
def greedy_completions(
    model: Any, tokenizer: Tokenizer, prompts: Sequence[str], max_new_tokens: int = 16
) -> list[str | None]:
    """The greedy (argmax) continuation of each prompt, as text; None where it does not finish.

    Prompts of one length are decoded together, one batch per length, so a transformer's key/value
    cache and a recurrent state serve a whole batch.
    """
    out: list[str | None] = [None] * len(prompts)
    by_length: dict[int, list[int]] = {}
    encoded = [[BOS, *tokenizer.encode(p, frame=False)] for p in prompts]
    for i, ids in enumerate(encoded):
        by_length.setdefault(len(ids), []).append(i)
    for _, rows in sorted(by_length.items()):
        for start in range(0, len(rows), 512):
            chunk = rows[start : start + 512]
            generated = continue_batch(
                model, [encoded[i] for i in chunk], max_new_tokens, lambda logp: logp.argmax(axis=-1)
            )
            for i, ids in zip(chunk, generated, strict=True):
                out[i] = finished_text(ids, tokenizer)
    return out


@dataclass(frozen=True)
class ExactMatch:
    """Greedy answers that are exactly right, overall and by number of carries."""

    correct: int
    total: int
    by_carries: dict[int, tuple[int, int]]  # carries -> (correct, total)
    wrong_examples: list[str] = field(default_factory=list)  # "a+b=<model's answer>" for a few misses
    # "digits of a + digits of b" (e.g. "1+2") -> (correct, total): where the answer sits in the string
    by_digits: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.correct / self.total if self.total else math.nan

    def to_dict(self) -> dict[str, Any]:
        return {
            "correct": self.correct,
            "total": self.total,
            "rate": self.rate,
            "by_carries": {str(c): {"correct": k, "total": n} for c, (k, n) in self.by_carries.items()},
            "by_digits": {d: {"correct": k, "total": n} for d, (k, n) in self.by_digits.items()},
            "wrong_examples": self.wrong_examples,
        }


def arithmetic_exact_match(
    model: Any, g: Any, tokenizer: Tokenizer, pairs: Sequence[tuple[int, int]], examples: int = 5
) -> ExactMatch:
    """Prompt with ``a+b=`` for each pair and compare the greedy completion with ``g.answer(a, b)``."""
    questions = [g.format_question(a, b) for a, b in pairs]
    replies = greedy_completions(model, tokenizer, questions, max_new_tokens=g.max_length())
    by_carries: dict[int, list[int]] = {}
    by_digits: dict[str, list[int]] = {}
    correct, wrong = 0, []
    for (a, b), question, reply in zip(pairs, questions, replies, strict=True):
        right = reply == g.answer(a, b)
        for tally in (
            by_carries.setdefault(g.carries(a, b), [0, 0]),
            by_digits.setdefault(f"{len(str(a))}+{len(str(b))}", [0, 0]),
        ):
            tally[0] += right
            tally[1] += 1
        correct += right
        if not right and len(wrong) < examples:
            wrong.append(question + ("<unfinished>" if reply is None else reply))
    return ExactMatch(
        correct,
        len(pairs),
        {c: (k, n) for c, (k, n) in sorted(by_carries.items())},
        wrong,
        {d: (k, n) for d, (k, n) in sorted(by_digits.items())},
    )


# ------------------------------------------------------------------ sweeps and what theory predicts
def smallest_reaching(scores: Mapping[int, float], target: float) -> int | None:
    """The smallest setting (order, context) whose score reaches ``target``; None if none does."""
    reached = [k for k, v in scores.items() if v >= target]
    return min(reached) if reached else None


def largest_jump(scores: Mapping[int, float]) -> int | None:
    """The setting whose score rises most above the setting before it (in sorted order); None for < 2.

    Where theory predicts a threshold, this is where a sweep should show it even when training is too
    short for the score to reach its target.
    """
    keys = sorted(scores)
    if len(keys) < 2:
        return None
    return max(keys[1:], key=lambda k: scores[k] - scores[keys[keys.index(k) - 1]])


def predicted_threshold(g: Grammar, family: str) -> int | None:
    """The smallest n-gram order (``family="ngram"``) or MLP context (``"mlp"``) that can be exact.

    Sticky with memoryless length: whether a run may end depends on the last n characters, so a model
    must see n previous tokens: an n-gram of order n + 1, an MLP with a context of n. (A model that sees
    fewer cannot tell a run of n from a shorter one and must sometimes leave a run too early.)
    Other languages have no such finite threshold: counting must know how many numbers it has written.
    """
    if getattr(g, "name", None) != "sticky" or getattr(g, "max_len", None) is not None:
        return None
    if getattr(g, "strict", False):
        return None
    if family == "ngram":
        return g.n + 1
    if family == "mlp":
        return g.n
    raise ValueError(f"no threshold theory for {family!r}; expected 'ngram' or 'mlp'")


class UniformBaseline(LanguageModel):
    """The random baseline: every next token uniform over the language's characters and EOS.

    Its cross-entropy is log(|alphabet| + 1) on every string, and its samples are what chance gives.
    It answers the same questions as every other model, so the same code scores it.
    """

    family = "uniform"

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.vocab_size = tokenizer.vocab_size
        self.logp = np.full(self.vocab_size, -np.inf)
        allowed = [i for i in range(self.vocab_size) if i not in (PAD, UNK, BOS)]
        self.logp[allowed] = -math.log(len(allowed))

    def next_token_logprobs(self, contexts: Sequence[Sequence[int]]) -> np.ndarray:
        return np.tile(self.logp, (len(contexts), 1))

    def sequence_logprobs(self, sequences: Sequence[Sequence[int]]) -> np.ndarray:
        return np.array([float(self.logp[list(s[1:])].sum()) for s in sequences])
